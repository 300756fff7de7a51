/*
 * proxy/local.c — commands answered by the proxy (see local.h).
 */
#include "proxy/local.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/hostport.h"
#include "protocol/reply.h"
#include "protocol/resp3.h"
#include "proxy/admin.h"
#include "proxy/auth.h"
#include "proxy/client.h"
#include "proxy/latency.h"
#include "proxy/reload.h"
#include "proxy/proxy.h"
#include "proxy/tracking.h"

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
    const struct cmd *top = cmd_lookup(m->argv[0], m->argvlen[0]);
    /* a subcommand is named as Redis 7 names it: 'acl|getuser' */
    command_name(m, top != NULL && top->nsubcommands > 0 ? 2 : 1, name, sizeof(name));
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

/* HELLO's map (Redis 7.0's fields), in the client's protocol. */
static void local_hello_reply(struct client *c)
{
    struct buf *b = client_reply_buf(c);
    if (b == NULL)
        return;
    resp3_map(b, c->proto, 7);
    reply_bulk_str(b, "server");
    reply_bulk_str(b, "redis");
    reply_bulk_str(b, "version");
    reply_bulk_str(b, proxy->topo.redis_version[0] ? proxy->topo.redis_version : "7.0.0");
    reply_bulk_str(b, "proto");
    reply_integer(b, c->proto);
    reply_bulk_str(b, "id");
    reply_integer(b, (long long)c->id);
    reply_bulk_str(b, "mode");
    reply_bulk_str(b, "standalone");
    reply_bulk_str(b, "role");
    reply_bulk_str(b, "master");
    reply_bulk_str(b, "modules");
    reply_array(b, 0);
    proxy->stats.local_replies++;
    client_reply_done(c);
}

/* Is name acceptable to CLIENT SETNAME / HELLO SETNAME (no spaces, newlines
 * or other characters outside '!'..'~', as Redis checks)? */
static int name_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '!' || p[i] > '~')
            return 0;
    return 1;
}

static int set_name(struct client *c, const char *p, size_t n)
{
    char *copy = NULL;
    if (n > 0) {
        if ((copy = malloc(n + 1)) == NULL)
            return -1;
        memcpy(copy, p, n);
        copy[n] = '\0';
    }
    free(c->name);
    c->name = copy;
    return 0;
}

/* HELLO [protover [AUTH username password] [SETNAME clientname]]: the
 * options are parsed here, the credentials checked by proxy/auth.c. */
static int local_hello(struct client *c, const struct reqmsg *m)
{
    long ver = c->proto;
    int auth_at = 0, name_at = 0;

    if (m->argc >= 2) {
        char num[24];
        size_t n = m->argvlen[1] < sizeof(num) - 1 ? m->argvlen[1] : sizeof(num) - 1;
        memcpy(num, m->argv[1], n);
        num[n] = '\0';
        char *end;
        ver = strtol(num, &end, 10);
        if (n == 0 || *end != '\0') {
            local_error(c, "ERR Protocol version is not an integer or out of range");
            return 1;
        }
        if (ver < 2 || ver > 3) {
            local_error(c, "NOPROTO unsupported protocol version");
            return 1;
        }
        for (int j = 2; j < m->argc; j++) {
            int more = m->argc - 1 - j;
            if (is(m, j, "auth") && more >= 2) {
                auth_at = j + 1;
                j += 2;
            } else if (is(m, j, "setname") && more) {
                name_at = ++j;
                if (!name_ok(m->argv[j], m->argvlen[j])) {
                    local_error(c, "ERR Client names cannot contain spaces, newlines or special characters.");
                    return 1;
                }
            } else {
                char msg[200];
                snprintf(msg, sizeof(msg), "ERR Syntax error in HELLO option '%.*s'",
                         (int)(m->argvlen[j] > 100 ? 100 : m->argvlen[j]), m->argv[j]);
                local_error(c, msg);
                return 1;
            }
        }
    }
    /* AUTH given: authenticate (WRONGPASS on failure); none: a client
     * that must authenticate gets NOAUTH, as Redis answers HELLO. */
    if (auth_hello(c, m, auth_at))
        return 1;
    if (ver != c->proto) {
        /* Switching with requests in flight would put the next ones on
         * another connection than the earlier ones. */
        if (c->inflight > 0)
            return -1;
        if (c->pinned) {
            if (c->flags & CLIENT_MULTI) {
                local_error(c, "ERR redsnano: HELLO inside MULTI is not supported through the proxy");
                return 1;
            }
            if (server_hello(c->pinned, (int)ver) != 0) {
                local_error(c, "ERR redsnano: out of memory");
                return 1;
            }
        }
        c->proto = (uint8_t)ver;
    }
    if (name_at && set_name(c, m->argv[name_at], m->argvlen[name_at]) != 0) {
        local_error(c, "ERR redsnano: out of memory");
        return 1;
    }
    local_hello_reply(c);
    return 1;
}

/* RESET: everything a fresh connection would not have goes (the name
 * included: Redis 7.0's RESET clears it, whatever its documentation lists). */
static int local_reset(struct client *c)
{
    if (c->inflight > 0 && !(c->flags & CLIENT_PUSH))
        return -1;                      /* after what is in flight */
    client_unpin(c);
    tracking_off(c);
    c->proto = 2;
    set_name(c, NULL, 0);               /* Redis 7.0 forgets the name too */
    c->reply_mode = CLIENT_REPLY_ON;
    c->drop_cur = 0;
    auth_reset(c);                      /* back to the default user, as Redis */
    local_status(c, "RESET");
    return 1;
}

/* "ip:port" of a socket address. */
static void addr_name(char *out, size_t cap, const struct sockaddr_storage *ss)
{
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    }
    hostport_name(out, cap, ip, port);
}

/* CLIENT INFO's line, with the fields Redis 7.0 prints; what the proxy
 * does not keep per client (sub/psub counts, memory) is 0. */
static void local_client_info(struct client *c)
{
    char addr[INET6_ADDRSTRLEN + 16] = "", laddr[INET6_ADDRSTRLEN + 16] = "";
    struct sockaddr_storage ss;
    int len;
    uint64_t now = uv_now(proxy->loop);
    char flags[12];
    int nf = 0;

    if (!(c->flags & CLIENT_UNIX)) {
        len = sizeof(ss);
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
            addr_name(addr, sizeof(addr), &ss);
        len = sizeof(ss);
        if (uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
            addr_name(laddr, sizeof(laddr), &ss);
    }
    if (c->flags & (CLIENT_PUSH | CLIENT_SUBSCRIBED))
        flags[nf++] = 'P';
    if (c->flags & CLIENT_MULTI)
        flags[nf++] = 'x';
    nf += tracking_client_flags(c, flags + nf);
    if (c->flags & CLIENT_UNIX)
        flags[nf++] = 'U';
    if (nf == 0)
        flags[nf++] = 'N';
    flags[nf] = '\0';

    char line[1200];
    int n = snprintf(line, sizeof(line),
                     "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu idle=%llu flags=%s db=0 sub=0 psub=0 "
                     "ssub=0 multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 rbs=%zu rbp=0 obl=0 "
                     "oll=0 omem=%zu tot-mem=%zu events=r cmd=client|info user=default redir=%lld resp=%d\n",
                     (unsigned long long)c->id, addr, laddr, -1, c->name ? c->name : "",
                     (unsigned long long)((now - c->created) / 1000),
                     (unsigned long long)((now - c->last_active) / 1000), flags,
                     (c->flags & CLIENT_MULTI) ? 0 : -1, buf_unread(&c->in), c->in.cap - c->in.len, c->in.cap,
                     outq_size(&c->out), sizeof(*c) + c->in.cap + outq_size(&c->out),
                     tracking_redirect(c), c->proto);
    if (n < 0)
        return;
    struct buf *b = client_reply_buf(c);
    if (b == NULL)
        return;
    resp3_verbatim(b, c->proto, "txt", line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    proxy->stats.local_replies++;
    client_reply_done(c);
}

/* CLIENT ID / INFO / GETNAME / SETNAME / REPLY: the proxy's own session. */
static int local_client(struct client *c, const struct cmd *cmd, const struct reqmsg *m)
{
    struct buf *b;

    switch (cmd->op) {
    case CMD_OP_CLIENT_ID:
        if ((b = client_reply_buf(c)) != NULL) {
            reply_integer(b, (long long)c->id);
            proxy->stats.local_replies++;
            client_reply_done(c);
        }
        return 1;
    case CMD_OP_CLIENT_INFO:
        local_client_info(c);
        return 1;
    case CMD_OP_CLIENT_GETNAME:
        if ((b = client_reply_buf(c)) != NULL) {
            if (c->name)
                reply_bulk_str(b, c->name);
            else
                resp3_null(b, c->proto);
            proxy->stats.local_replies++;
            client_reply_done(c);
        }
        return 1;
    case CMD_OP_CLIENT_SETNAME:
        if (!name_ok(m->argv[2], m->argvlen[2])) {
            local_error(c, "ERR Client names cannot contain spaces, newlines or special characters.");
        } else if (set_name(c, m->argv[2], m->argvlen[2]) != 0) {
            local_error(c, "ERR redsnano: out of memory");
        } else {
            local_status(c, "OK");
        }
        return 1;
    case CMD_OP_CLIENT_REPLY:
        if (is(m, 2, "on")) {
            c->reply_mode = CLIENT_REPLY_ON;
            c->drop_cur = 0;
            local_status(c, "OK");
        } else if (is(m, 2, "off")) {
            c->reply_mode = CLIENT_REPLY_OFF;   /* no reply, this one included */
        } else if (is(m, 2, "skip")) {
            if (c->reply_mode != CLIENT_REPLY_OFF)
                c->reply_mode = CLIENT_REPLY_SKIP;
        } else {
            local_error(c, "ERR syntax error");
        }
        return 1;
    default:
        return tracking_command(c, cmd, m);
    }
}

int local_command(struct client *c, const struct cmd *cmd, const struct reqmsg *m)
{
    if (!cmd_arity_ok(cmd, m->argc)) {
        if ((cmd->op >= CMD_OP_CLIENT_ID && cmd->op <= CMD_OP_CLIENT_GETREDIR) || cmd->op == CMD_OP_CLIENT_REPLY) {
            char msg[200];
            snprintf(msg, sizeof(msg), "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try CLIENT HELP.",
                     (int)(m->argvlen[1] > 64 ? 64 : m->argvlen[1]), m->argv[1]);
            local_error(c, msg);
            return 1;
        }
        local_arity_error(c, m);
        return 1;
    }
    switch (cmd->op) {
    case CMD_OP_PING:
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
    case CMD_OP_ECHO: {
        struct buf *b = client_reply_buf(c);
        if (b) {
            reply_bulk(b, m->argv[1], m->argvlen[1]);
            proxy->stats.local_replies++;
            client_reply_done(c);
        }
        return 1;
    }
    case CMD_OP_QUIT:
        local_status(c, "OK");
        client_close_after_reply(c);
        return 1;
    case CMD_OP_HELLO:
        return local_hello(c, m);
    case CMD_OP_RESET:
        return local_reset(c);
    case CMD_OP_AUTH:
        auth_command(c, m);
        return 1;
    case CMD_OP_ACL_WHOAMI:
    case CMD_OP_ACL_LIST:
    case CMD_OP_ACL_USERS:
    case CMD_OP_ACL_GETUSER:
        auth_acl_command(c, cmd, m);
        return 1;
    default:
        return local_client(c, cmd, m);
    }
}

void local_redsnano(struct client *c, const struct reqmsg *m)
{
    struct buf *b = client_reply_buf(c);
    if (b == NULL)
        return;
    if (m->argc < 2 || (!admin_report(b, m->argc - 1, m->argv + 1, m->argvlen + 1) &&
                        !latency_command(b, m->argc - 1, m->argv + 1, m->argvlen + 1) &&
                        !reload_command(b, m->argc - 1, m->argv + 1, m->argvlen + 1)))
        reply_error(b, "ERR usage: REDSNANO STATS | BACKENDS | L1 [INVALIDATE pattern] | TRACKING | LATENCY | SLOWLOG | CONFIG | HELP");
    proxy->stats.local_replies++;
    client_reply_done(c);
}
