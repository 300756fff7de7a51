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
#include "protocol/resp3.h"
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

struct acl *auth_build(const struct config *cfg, char *err, size_t errlen)
{
    struct acl *a = acl_new();
    if (a == NULL || (cfg->requirepass && acl_requirepass(a, cfg->requirepass, strlen(cfg->requirepass)) < 0)) {
        acl_free(a);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < cfg->users.n; i++) {
        const struct config_user *u = &cfg->users.v[i];
        char msg[256];
        if (acl_setuser(a, u->name, strlen(u->name), (const char *const *)u->rules, NULL, u->nrules,
                        msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "user %s: %s", u->name, msg);
            acl_free(a);
            return NULL;
        }
    }
    return a;
}

/* next's users become the users in force (the old ones are freed). */
static void auth_use(struct acl *next, const struct config *cfg)
{
    acl_free(acl);
    acl = next;
    configured = cfg->requirepass != NULL || cfg->users.n > 0;
    const struct acl_user *d = acl_default_user(acl);
    default_nopass = user_has_flag(d, "nopass");
    default_all = user_unrestricted(d);
}

int auth_init(const struct config *cfg, char *err, size_t errlen)
{
    struct acl *a = auth_build(cfg, err, errlen);
    if (a == NULL)
        return -1;
    auth_use(a, cfg);
    return 0;
}

void auth_apply(struct acl *next, const struct config *cfg, struct client *clients)
{
    /* Each client keeps its user by name: c->user points into the old set. */
    for (struct client *c = clients; c; c = c->next) {
        if (c->flags & CLIENT_CLOSING)
            continue;
        if (c->user == NULL) {
            c->flags &= ~CLIENT_ACL_ALL;
            continue;                   /* set below, once the new users are in force */
        }
        const char *name = acl_user_name(c->user);
        struct acl_user *u = acl_user_get(next, name, strlen(name));
        if (u == NULL || !user_has_flag(u, "on")) {
            /* As Redis: a client whose user is deleted or disabled is closed. */
            log_notice("Client %llu: its user %s is gone or disabled by the reload; closing",
                       (unsigned long long)c->id, name);
            c->user = NULL;
            client_close(c);
            continue;
        }
        c->user = u;                    /* flags recomputed below */
    }
    auth_use(next, cfg);
    for (struct client *c = clients; c; c = c->next) {
        if (c->flags & CLIENT_CLOSING)
            continue;
        if (c->user == NULL)
            auth_client_init(c);        /* needs AUTH now, or the default user */
        else
            auth_client_as(c, c->user);
    }
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

/* words, space-separated, as an array of bulk strings */
static void reply_words(struct buf *b, int proto, const char *words, int as_set)
{
    long long n = 0;
    for (const char *p = words; *p; p++)
        if (*p != ' ' && (p == words || p[-1] == ' '))
            n++;
    if (as_set)
        resp3_set(b, proto, n);
    else
        reply_array(b, n);
    for (const char *p = words; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t len = strcspn(p, " ");
        reply_bulk(b, p, len);
        p += len;
    }
}

/* ACL GETUSER's reply for u, as Redis 7.0 gives it (no selectors). */
static int getuser_reply(struct buf *b, int proto, const struct acl_user *u)
{
    static const struct { const char *name; enum acl_describe part; } parts[] = {
        { "flags", ACL_DESCRIBE_FLAGS },       { "passwords", ACL_DESCRIBE_PASSWORDS },
        { "commands", ACL_DESCRIBE_COMMANDS }, { "keys", ACL_DESCRIBE_KEYS },
        { "channels", ACL_DESCRIBE_CHANNELS },
    };
    size_t nparts = sizeof(parts) / sizeof(parts[0]);

    resp3_map(b, proto, (long long)nparts + 1);
    for (size_t i = 0; i < nparts; i++) {
        char *s = acl_user_describe(u, parts[i].part);
        if (s == NULL)
            return -1;
        reply_bulk_str(b, parts[i].name);
        if (parts[i].part == ACL_DESCRIBE_FLAGS)
            reply_words(b, proto, s, 1);
        else if (parts[i].part == ACL_DESCRIBE_PASSWORDS)
            reply_words(b, proto, s, 0);
        else
            reply_bulk_str(b, s);
        free(s);
    }
    reply_bulk_str(b, "selectors");
    return reply_array(b, 0);
}

void auth_acl_command(struct client *c, const struct cmd *cmd, const struct reqmsg *m)
{
    struct buf *b = client_reply_buf(c);
    size_t n = acl_user_count(acl);
    int failed = 0;

    if (b == NULL)
        return;
    switch (cmd->op) {
    case CMD_OP_ACL_WHOAMI:
        reply_bulk_str(b, acl_user_name(c->user));
        break;
    case CMD_OP_ACL_USERS:
        reply_array(b, (long long)n);
        for (size_t i = 0; i < n; i++)
            reply_bulk_str(b, acl_user_name(acl_user_at(acl, i)));
        break;
    case CMD_OP_ACL_LIST:
        reply_array(b, (long long)n);
        for (size_t i = 0; i < n && !failed; i++) {
            char *line = acl_user_describe(acl_user_at(acl, i), ACL_DESCRIBE_LIST);
            failed = line == NULL || reply_bulk_str(b, line) != 0;
            free(line);
        }
        break;
    default: {                          /* ACL GETUSER name (arity checked by the table) */
        const struct acl_user *u = acl_user_get(acl, m->argv[2], m->argvlen[2]);
        failed = u != NULL ? getuser_reply(b, c->proto, u) != 0 : resp3_null(b, c->proto) != 0;
        break;
    }
    }
    if (failed)
        b->oom = 1;                     /* the client is closed: never half a reply */
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
