/*
 * proxy/auth.c — client identity and permissions (see auth.h).
 *
 *   auth_init: acl_new + requirepass + `user` lines ──> acl (static)
 *   client_accept ─> auth_client_init: default user, or none (NOAUTH)
 *   router_dispatch ─> auth_check ─> ok | -NOAUTH | -NOPERM
 *   AUTH, HELLO AUTH ─> acl_authenticate ─> c->user
 */
#include "proxy/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "protocol/reply.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/local.h"
#include "proxy/protected.h"
#include "proxy/proxy.h"

#define AUTH_ERR_NOPASS                                                                 \
    "ERR AUTH <password> called without any password configured for the default user. " \
    "Are you sure your configuration is correct?"
#define AUTH_ERR_HELLO_NOAUTH                                                           \
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the " \
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and " \
    "select the RESP protocol version at the same time"

static struct acl *acl;               /* the proxy's users */
static int configured;                /* requirepass or a user line was given */
static int default_nopass;            /* the default user has nopass (AUTH <pass> is an error) */
static int default_all;               /* the default user may run everything everywhere */

/* May u run every command on every key and channel? (then no check is
 * needed per request) */
static int user_unrestricted(const struct acl_user *u)
{
    char *cmds = acl_user_describe(u, ACL_DESCRIBE_COMMANDS);
    char *keys = acl_user_describe(u, ACL_DESCRIBE_KEYS);
    char *chans = acl_user_describe(u, ACL_DESCRIBE_CHANNELS);
    int all = cmds && keys && chans && strcmp(cmds, "+@all") == 0 && strcmp(keys, "~*") == 0 &&
              strcmp(chans, "&*") == 0;
    free(cmds);
    free(keys);
    free(chans);
    return all;
}

static int user_has_flag(const struct acl_user *u, const char *flag)
{
    char *flags = acl_user_describe(u, ACL_DESCRIBE_FLAGS);
    int found = 0;
    size_t n = strlen(flag);
    for (const char *p = flags; p && (p = strstr(p, flag)) != NULL; p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            found = 1;
    free(flags);
    return found;
}

int auth_init(const struct config *cfg, char *err, size_t errlen)
{
    acl = acl_new();
    if (acl == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cfg->requirepass && acl_requirepass(acl, cfg->requirepass, strlen(cfg->requirepass)) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < cfg->users.n; i++) {
        const struct config_user *u = &cfg->users.v[i];
        char msg[256];
        if (acl_setuser(acl, u->name, strlen(u->name), (const char *const *)u->rules, NULL, u->nrules,
                        msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "user %s: %s", u->name, msg);
            return -1;
        }
    }
    configured = cfg->requirepass != NULL || cfg->users.n > 0;
    const struct acl_user *d = acl_default_user(acl);
    default_nopass = user_has_flag(d, "nopass");
    default_all = user_unrestricted(d);
    return 0;
}

void auth_free(void)
{
    acl_free(acl);
    acl = NULL;
}

int auth_required(void)
{
    return acl_auth_required(acl);
}

/* c is now user u. */
static void auth_set_user(struct client *c, const struct acl_user *u, int unrestricted)
{
    c->user = u;
    if (unrestricted)
        c->flags |= CLIENT_ACL_ALL;
    else
        c->flags &= ~CLIENT_ACL_ALL;
}

void auth_client_init(struct client *c)
{
    if (acl_auth_required(acl))
        auth_set_user(c, NULL, 0);
    else
        auth_set_user(c, acl_default_user(acl), default_all);
}

void auth_client_as(struct client *c, const struct acl_user *u)
{
    auth_set_user(c, u, u == acl_default_user(acl) ? default_all : user_unrestricted(u));
}

void auth_reset(struct client *c)
{
    auth_client_init(c);
}

int auth_check(struct client *c, const struct cmd *cmd, const struct reqmsg *m)
{
    char msg[300];

    if (c->flags & CLIENT_ACL_ALL)
        return 0;
    if (c->user == NULL) {
        if (cmd != NULL && (cmd->acl_flags & CMD_ACL_NO_AUTH))
            return 0;
        proxy->stats.acl_denied++;
        local_error(c, ACL_ERR_NOAUTH);
        return 1;
    }
    if (cmd == NULL) {
        /* Unknown to the table: only a user allowed everything may send it
         * on to Redis. */
        snprintf(msg, sizeof(msg), "NOPERM this user has no permissions to run the '%.*s' command",
                 (int)(m->argvlen[0] > 64 ? 64 : m->argvlen[0]), m->argv[0]);
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p < 32 || (unsigned char)*p > 126)
                *p = '?';
        proxy->stats.acl_denied++;
        local_error(c, msg);
        return 1;
    }
    enum acl_verdict v = acl_check(c->user, cmd, m->argc, (const char *const *)m->argv, m->argvlen, NULL);
    if (v == ACL_OK)
        return 0;
    proxy->stats.acl_denied++;
    local_error(c, acl_error_text(v, cmd, msg, sizeof(msg)));
    return 1;
}

/* Authenticate c as user/pass. 1 on success, 0 (logged) on failure. */
static int auth_try(struct client *c, const char *user, size_t ulen, const char *pass, size_t plen)
{
    const struct acl_user *u = acl_authenticate(acl, user, ulen, pass, plen);
    if (u == NULL) {
        proxy->stats.auth_failures++;
        log_verbose("Client %llu: AUTH failed for user '%.*s'", (unsigned long long)c->id,
                    (int)(ulen > 64 ? 64 : ulen), user);
        return 0;
    }
    auth_client_as(c, u);
    return 1;
}

void auth_command(struct client *c, const struct reqmsg *m)
{
    if (m->argc < 2) {
        local_arity_error(c, m);
        return;
    }
    if (m->argc > 3) {
        local_error(c, "ERR syntax error");
        return;
    }
    if (m->argc == 2 && default_nopass) {
        local_error(c, AUTH_ERR_NOPASS);
        return;
    }
    int ok = m->argc == 2 ? auth_try(c, "default", 7, m->argv[1], m->argvlen[1])
                          : auth_try(c, m->argv[1], m->argvlen[1], m->argv[2], m->argvlen[2]);
    if (ok)
        local_status(c, "OK");
    else
        local_error(c, ACL_ERR_WRONGPASS);
}

int auth_hello(struct client *c, const struct reqmsg *m, int user_at)
{
    if (user_at && !auth_try(c, m->argv[user_at], m->argvlen[user_at], m->argv[user_at + 1],
                             m->argvlen[user_at + 1])) {
        local_error(c, ACL_ERR_WRONGPASS);
        return 1;
    }
    if (c->user == NULL) {
        local_error(c, AUTH_ERR_HELLO_NOAUTH);
        return 1;
    }
    return 0;
}

void auth_whoami(struct client *c)
{
    struct buf *b = client_reply_buf(c);
    if (b == NULL)
        return;
    reply_bulk_str(b, acl_user_name(c->user));
    proxy->stats.local_replies++;
    client_reply_done(c);
}

const struct acl_user *auth_basic(const char *user, size_t ulen, const char *pass, size_t plen)
{
    if (ulen == 0) {
        user = "default";
        ulen = 7;
    }
    return acl_authenticate(acl, user, ulen, pass, plen);
}

int auth_refuses_peer(const struct sockaddr *peer)
{
    return protected_mode_denies(proxy->cfg->protected_mode, configured, proxy->cfg->bind, peer);
}
