/*
 * proxy/router.c — request routing (see router.h).
 *
 *   reqmsg ─> cmd_lookup_argv ─> flags ─┬─ LOCAL ─────────────> local.c
 *                                       ├─ DENY (no admin) ───> local_deny
 *                                       ├─ PIN / pinned ──────> c->pinned (created on demand)
 *                                       ├─ READONLY ──────────> router_read_backend ─> pool
 *                                       └─ else ──────────────> primary pool
 */
#include "proxy/router.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/backend.h"
#include "backends/cluster.h"
#include "l1/l1.h"
#include "protocol/command.h"
#include "proxy/client.h"
#include "proxy/local.h"
#include "proxy/proxy.h"

static int arg_is(const struct reqmsg *m, int i, const char *s)
{
    size_t n = strlen(s);
    return i < m->argc && m->argvlen[i] == n && strncasecmp(m->argv[i], s, n) == 0;
}

/* XREAD / XREADGROUP block only with a BLOCK option before STREAMS. */
static int has_block_option(const struct reqmsg *m)
{
    for (int i = 1; i < m->argc; i++) {
        if (arg_is(m, i, "streams"))
            return 0;
        if (arg_is(m, i, "block"))
            return 1;
    }
    return 0;
}

static int backend_readable(const struct backend *b)
{
    return b->role == BACKEND_PRIMARY || b->healthy;
}

struct backend *router_read_backend(struct client *c)
{
    static unsigned rr;
    const struct config *cfg = proxy->cfg;
    struct backend *primary = &proxy->primary;

    if (proxy->nreplicas == 0 || cfg->read_policy == READ_PRIMARY)
        return primary;
    if (cfg->read_your_writes > 0 && c->last_write &&
        uv_now(proxy->loop) - c->last_write < (uint64_t)cfg->read_your_writes)
        return primary;

    int n = proxy->nreplicas;
    switch (cfg->read_policy) {
    case READ_NEAREST: {
        struct backend *best = primary;
        for (int i = 0; i < n; i++) {
            struct backend *b = &proxy->replicas[i];
            if (b->healthy && b->latency_us > 0 && (best->latency_us <= 0 || b->latency_us < best->latency_us))
                best = b;
        }
        return best;
    }
    case READ_ROUND_ROBIN:
        for (int k = 0; k <= n; k++) {
            unsigned i = rr++ % (unsigned)(n + 1);
            if (i == (unsigned)n)
                return primary;
            if (proxy->replicas[i].healthy)
                return &proxy->replicas[i];
        }
        return primary;
    default:                              /* replica, prefer-replica */
        for (int k = 0; k < n; k++) {
            struct backend *b = &proxy->replicas[rr++ % (unsigned)n];
            if (b->healthy)
                return b;
        }
        return primary;
    }
}

struct backend *router_retry_backend(struct backend *failed)
{
    static unsigned rr;
    if (failed == NULL || failed->role == BACKEND_PRIMARY)
        return NULL;
    int n = proxy->nreplicas;
    for (int k = 0; k < n; k++) {
        struct backend *b = &proxy->replicas[rr++ % (unsigned)n];
        if (b != failed && b->healthy && backend_connected(b) > 0)
            return b;
    }
    return &proxy->primary;
}

/* The error a client gets when a backend cannot take a request. */
static void unavailable(struct client *c, struct backend *b)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "ERR redsnano: backend %s (%s) %s", b->name,
             b->role == BACKEND_PRIMARY ? "primary" : "replica", b->err[0] ? b->err : "unavailable");
    proxy->stats.backend_errors++;
    b->errors++;
    local_error(c, msg);
}

/* Forward to the client's pinned connection, creating it (to b) if needed. */
static int route_pinned_to(struct client *c, const struct cmd *cmd, struct reqmsg *m, struct backend *b)
{
    uint32_t f = cmd ? cmd->flags : 0;

    if (c->pinned == NULL) {
        if (c->inflight > 0)
            return ROUTER_STALL;
        if (client_pin(c, b) == NULL) {
            unavailable(c, b);
            return ROUTER_DONE;
        }
    }
    if (f & CMD_PROXY_SUBSCRIBE) {
        /* From here on the connection is a stream of pushes: every later
         * request goes through and Redis answers it in-stream. */
        if (c->inflight > 0)
            return ROUTER_STALL;
        client_enter_push(c);
        server_send_raw(c->pinned, m->bytes, m->len);
        return ROUTER_DONE;
    }
    uint64_t deadline = (f & CMD_BLOCKING) ? SRVREQ_NO_DEADLINE : 0;
    void *token = NULL;
    if (l1_on()) {
        /* Writes queued in MULTI run at EXEC: the L1 holds their keys
         * until EXEC (or DISCARD) is answered. */
        if (cmd == NULL || (f & (CMD_WRITE | CMD_PROXY_FLUSH)))
            token = l1_write_begin(cmd, m);
        if (arg_is(m, 0, "multi")) {
            c->flags |= CLIENT_MULTI;
        } else if (arg_is(m, 0, "exec") || arg_is(m, 0, "discard")) {
            c->flags &= ~CLIENT_MULTI;
            token = l1_token_join(c->txn_l1_token, token);
            c->txn_l1_token = NULL;
        } else if ((c->flags & CLIENT_MULTI) && token) {
            c->txn_l1_token = l1_token_join(c->txn_l1_token, token);
            token = NULL;
        }
    }
    client_forward(c, c->pinned, m->bytes, m->len, deadline, token);
    return ROUTER_DONE;
}

static int route_pinned(struct client *c, const struct cmd *cmd, struct reqmsg *m)
{
    return route_pinned_to(c, cmd, m, &proxy->primary);
}

/* Does this call need the client's own connection? */
static int needs_pin(const struct cmd *cmd, const struct reqmsg *m)
{
    if (!(cmd->flags & CMD_PROXY_PIN))
        return 0;
    /* XREAD / XREADGROUP block only with BLOCK. */
    return !((arg_is(m, 0, "xread") || arg_is(m, 0, "xreadgroup")) && !has_block_option(m));
}

/* Cluster mode: every key of a call must hash to one slot; the call goes
 * to that slot's primary and follows -MOVED / -ASK. */
static int route_cluster(struct client *c, const struct cmd *cmd, struct reqmsg *m)
{
    uint32_t f = cmd ? cmd->flags : 0;
    int stack_keys[64], *keys = stack_keys;
    int n = 0, slot = -1;

    if (cmd && (f & CMD_PROXY_TXN)) {
        local_error(c, "ERR redsnano: MULTI, EXEC, DISCARD, WATCH and UNWATCH are not supported in cluster mode");
        return ROUTER_DONE;
    }
    if (arg_is(m, 0, "select")) {
        if (m->argc == 2 && m->argvlen[1] == 1 && m->argv[1][0] == '0')
            local_status(c, "OK");
        else
            local_error(c, "ERR SELECT is not allowed in cluster mode");
        return ROUTER_DONE;
    }
    if (cmd != NULL) {
        n = cmd_keys(cmd, m->argc, m->argv, m->argvlen, keys, NULL, 64);
        if (n > 64) {
            keys = malloc((size_t)n * sizeof(*keys));
            if (keys == NULL) {
                local_error(c, "ERR redsnano: out of memory");
                return ROUTER_DONE;
            }
            n = cmd_keys(cmd, m->argc, m->argv, m->argvlen, keys, NULL, n);
        }
    }
    for (int i = 0; i < n; i++) {
        int s = (int)cluster_keyslot(m->argv[keys[i]], m->argvlen[keys[i]]);
        if (slot >= 0 && s != slot) {
            slot = -2;
            break;
        }
        slot = s;
    }
    if (keys != stack_keys)
        free(keys);
    if (slot == -2) {
        local_error(c, "CROSSSLOT Keys in request don't hash to the same slot");
        return ROUTER_DONE;
    }
    struct backend *b = slot >= 0 ? cluster_node_for_slot((unsigned)slot) : cluster_any_node();
    if (b == NULL) {
        local_error(c, "CLUSTERDOWN redsnano: the cluster's slot map is not known yet");
        return ROUTER_DONE;
    }
    if (c->pinned) {
        if (slot >= 0 && c->pinned->backend != b) {
            local_error(c, "ERR redsnano: this key's slot is served by another node than this client's "
                           "blocking/pub-sub session");
            return ROUTER_DONE;
        }
        return route_pinned_to(c, cmd, m, b);
    }
    if (cmd && needs_pin(cmd, m))
        return route_pinned_to(c, cmd, m, b);

    struct server *s;
    if (c->inflight > 0) {
        s = c->inflight_server;
        if (s->backend != b || s->state == SERVER_CLOSING)
            return ROUTER_STALL;
    } else if ((s = backend_pick(b)) == NULL) {
        unavailable(c, b);
        return ROUTER_DONE;
    }
    b->requests++;
    if (!(f & CMD_READONLY))
        c->last_write = uv_now(proxy->loop);
    client_forward_cluster(c, s, m->bytes, m->len, 0);
    return ROUTER_DONE;
}

int router_dispatch(struct client *c, struct reqmsg *m)
{
    const struct cmd *cmd = cmd_lookup_argv(m->argc, m->argv, m->argvlen);

    if (c->flags & CLIENT_PUSH) {
        /* A push stream: Redis answers in-stream, we cannot tell when a
         * write completes; drop its keys from the L1 now, tracking covers
         * the rest. */
        if (l1_on() && (cmd == NULL || (cmd->flags & (CMD_WRITE | CMD_PROXY_FLUSH))))
            l1_write_end(l1_write_begin(cmd, m));
        server_send_raw(c->pinned, m->bytes, m->len);
        return ROUTER_DONE;
    }
    if (cmd == NULL) {
        if (arg_is(m, 0, "redsnano")) {
            local_redsnano(c, m);
            return ROUTER_DONE;
        }
        /* Unknown to us: Redis answers it (modules, newer commands). */
        if (cluster_on())
            return route_cluster(c, NULL, m);
        if (c->pinned)
            return route_pinned(c, NULL, m);
        goto primary;
    }

    uint32_t f = cmd->flags;
    if ((f & CMD_PROXY_DENY) && !proxy->cfg->allow_admin_commands) {
        local_deny(c, m);
        return ROUTER_DONE;
    }
    /* Replies are matched to requests one for one: a client cannot turn
     * them off. */
    if ((f & CMD_PROXY_PIN) && arg_is(m, 0, "client") && arg_is(m, 1, "reply") && !arg_is(m, 2, "on")) {
        local_error(c, "ERR redsnano: CLIENT REPLY OFF|SKIP is not supported through the proxy");
        return ROUTER_DONE;
    }
    if (f & CMD_PROXY_LOCAL) {
        /* Inside a pinned session only HELLO is intercepted (RESP3 must
         * never be negotiated); the rest is Redis's to answer or queue. */
        if (!c->pinned || arg_is(m, 0, "hello")) {
            if (local_command(c, cmd, m))
                return ROUTER_DONE;
            return route_pinned(c, cmd, m);
        }
    }
    if (cluster_on())
        return route_cluster(c, cmd, m);
    if (c->pinned)
        return route_pinned(c, cmd, m);

    if (f & CMD_PROXY_PIN) {
        if (arg_is(m, 0, "select") && m->argc == 2 && m->argvlen[1] == 1 && m->argv[1][0] == '0') {
            local_status(c, "OK");          /* already in db 0 */
            return ROUTER_DONE;
        }
        if (arg_is(m, 0, "reset")) {
            local_status(c, "RESET");       /* no state to reset */
            return ROUTER_DONE;
        }
        if (needs_pin(cmd, m))
            return route_pinned(c, cmd, m);
    }

    if ((f & CMD_READONLY) && !(f & CMD_WRITE)) {
        uint8_t id = l1_on() ? l1_command_id(m) : 0;
        if (id) {
            const char *bytes;
            size_t n;
            void *pending;
            int may_wait = c->inflight == 0 || c->inflight_server == l1_server();
            int rc = l1_read(id, m, may_wait, &bytes, &n, &pending);
            if (rc == L1_HIT) {
                struct buf *b = client_reply_buf(c);
                if (b != NULL)
                    buf_append(b, bytes, n);
                client_reply_done(c);
                return ROUTER_DONE;
            }
            if (rc == L1_WAIT) {
                struct srvreq *sr = client_wait(c, l1_server());
                if (sr != NULL)
                    l1_wait(pending, sr);
                return ROUTER_DONE;
            }
        }
        struct backend *b = router_read_backend(c);
        struct server *s;
        if (c->inflight > 0) {
            /* Keep the client's requests on one connection: order. */
            s = c->inflight_server;
            if (s->state == SERVER_CLOSING)
                return ROUTER_STALL;
            if (!backend_readable(s->backend) && s->backend != b)
                return ROUTER_STALL;
        } else {
            s = backend_pick(b);
            if (s == NULL && b != &proxy->primary) {
                b = &proxy->primary;
                s = backend_pick(b);
            }
            if (s == NULL) {
                unavailable(c, b);
                return ROUTER_DONE;
            }
        }
        s->backend->requests++;
        if (s->backend->role == BACKEND_REPLICA)
            client_forward_read(c, s, m->bytes, m->len);
        else
            client_forward(c, s, m->bytes, m->len, 0, NULL);
        return ROUTER_DONE;
    }

primary:;
    struct backend *p = &proxy->primary;
    struct server *s;
    c->last_write = uv_now(proxy->loop);
    if (c->inflight > 0) {
        s = c->inflight_server;
        if (s->backend != p || s->state == SERVER_CLOSING)
            return ROUTER_STALL;
    } else {
        s = backend_pick(p);
        if (s == NULL) {
            unavailable(c, p);
            return ROUTER_DONE;
        }
    }
    p->requests++;
    void *token = NULL;
    if (l1_on() && (cmd == NULL || (cmd->flags & (CMD_WRITE | CMD_PROXY_FLUSH))))
        token = l1_write_begin(cmd, m);
    client_forward(c, s, m->bytes, m->len, 0, token);
    return ROUTER_DONE;
}
