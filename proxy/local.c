/*
 * proxy/local.c — commands answered by the proxy (see local.h).
 */
#include "proxy/local.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/reply.h"
#include "proxy/admin.h"
#include "proxy/client.h"
#include "proxy/latency.h"
#include "proxy/reload.h"
#include "proxy/proxy.h"

static int is(const struct reqmsg *m, int i, const char *s)
{
    return i < m->argc && cmd_word_eq(m->argv[i], m->argvlen[i], s);
}

void local_error(struct client *c, const char *text)
{
    struct buf *b = client_reply_buf(c);
    if (b == NULL)
        return;
    reply_error(b, text);
    proxy->stats.local_replies++;
    client_reply_done(c);
}

void local_status(struct client *c, const char *text)
{
    struct buf *b = client_reply_buf(c);
    if (b == NULL)
        return;
    reply_status(b, text);
    proxy->stats.local_replies++;
    client_reply_done(c);
}

/* The command's name as the client wrote it, lower case, for messages. */
static void command_name(const struct reqmsg *m, int words, char *out, size_t outlen)
{
    size_t o = 0;
    for (int i = 0; i < words && i < m->argc; i++) {
        if (i > 0 && o + 1 < outlen)
            out[o++] = '|';
        for (size_t k = 0; k < m->argvlen[i] && o + 1 < outlen; k++) {
            unsigned char ch = (unsigned char)m->argv[i][k];
            out[o++] = (ch < 32 || ch > 126) ? '?' : (char)tolower(ch);
        }
    }
    out[o] = '\0';
}

void local_arity_error(struct client *c, const struct reqmsg *m)
{
    char name[64], msg[160];
    command_name(m, 1, name, sizeof(name));
    snprintf(msg, sizeof(msg), "ERR wrong number of arguments for '%s' command", name);
    local_error(c, msg);
}

void local_deny(struct client *c, const struct reqmsg *m)
{
    char name[64], msg[300];
    const struct cmd *top = cmd_lookup(m->argv[0], m->argvlen[0]);
    command_name(m, top && top->subcommands ? 2 : 1, name, sizeof(name));
    for (char *p = name; *p; p++)
        *p = (char)(*p == '|' ? ' ' : toupper((unsigned char)*p));
    snprintf(msg, sizeof(msg),
             "ERR redsnano: '%s' changes the server and is refused by the proxy "
             "(set allow-admin-commands yes to allow it)", name);
    proxy->stats.denied++;
    local_error(c, msg);
}

static void local_hello(struct client *c, const struct reqmsg *m)
{
    struct buf *b = client_reply_buf(c);
    if (b == NULL)
        return;
    reply_array(b, 14);
    reply_bulk_str(b, "server");
    reply_bulk_str(b, "redis");
    reply_bulk_str(b, "version");
    reply_bulk_str(b, proxy->topo.redis_version[0] ? proxy->topo.redis_version : "7.0.0");
    reply_bulk_str(b, "proto");
    reply_integer(b, 2);
    reply_bulk_str(b, "id");
    reply_integer(b, (long long)c->id);
    reply_bulk_str(b, "mode");
    reply_bulk_str(b, "standalone");
    reply_bulk_str(b, "role");
    reply_bulk_str(b, "master");
    reply_bulk_str(b, "modules");
    reply_array(b, 0);
    (void)m;
    proxy->stats.local_replies++;
    client_reply_done(c);
}

int local_command(struct client *c, const struct cmd *cmd, const struct reqmsg *m)
{
    if (!cmd_arity_ok(cmd, m->argc)) {
        local_arity_error(c, m);
        return 1;
    }
    if (is(m, 0, "ping")) {
        if (m->argc == 1) {
            local_status(c, "PONG");
        } else {
            struct buf *b = client_reply_buf(c);
            if (b) {
                reply_bulk(b, m->argv[1], m->argvlen[1]);
                proxy->stats.local_replies++;
                client_reply_done(c);
            }
        }
        return 1;
    }
    if (is(m, 0, "echo")) {
        struct buf *b = client_reply_buf(c);
        if (b) {
            reply_bulk(b, m->argv[1], m->argvlen[1]);
            proxy->stats.local_replies++;
            client_reply_done(c);
        }
        return 1;
    }
    if (is(m, 0, "quit")) {
        local_status(c, "OK");
        client_close_after_reply(c);
        return 1;
    }
    if (is(m, 0, "hello")) {
        if (m->argc >= 2) {
            char num[24];
            size_t n = m->argvlen[1] < sizeof(num) - 1 ? m->argvlen[1] : sizeof(num) - 1;
            memcpy(num, m->argv[1], n);
            num[n] = '\0';
            char *end;
            long ver = strtol(num, &end, 10);
            if (n == 0 || *end != '\0') {
                local_error(c, "ERR Protocol version is not an integer or out of range");
                return 1;
            }
            if (ver != 2) {
                local_error(c, ver == 3 ? "NOPROTO sorry, this protocol version is not supported "
                                          "(redsnano speaks RESP2)"
                                        : "NOPROTO unsupported protocol version");
                return 1;
            }
            if (m->argc > 2)
                return 0;               /* AUTH / SETNAME: Redis's to answer, pinned */
        }
        local_hello(c, m);
        return 1;
    }
    return 0;
}

void local_redsnano(struct client *c, const struct reqmsg *m)
{
    struct buf *b = client_reply_buf(c);
    if (b == NULL)
        return;
    if (m->argc < 2 || (!admin_report(b, m->argc - 1, m->argv + 1, m->argvlen + 1) &&
                        !latency_command(b, m->argc - 1, m->argv + 1, m->argvlen + 1) &&
                        !reload_command(b, m->argc - 1, m->argv + 1, m->argvlen + 1)))
        reply_error(b, "ERR usage: REDSNANO STATS | BACKENDS | L1 [INVALIDATE pattern] | LATENCY | SLOWLOG | CONFIG | HELP");
    proxy->stats.local_replies++;
    client_reply_done(c);
}
