/*
 * proxy/router.c — where each request goes (see router.h).
 *
 *   reqmsg ─> cmd_lookup_argv ─> classify ─┬─ LOCAL ───> local.c
 *                                          ├─ DENY ────> local_deny
 *                                          ├─ PIN ─────> the client's own connection
 *                                          ├─ READ ────> L1, else topology_read_backend ─┐
 *                                          └─ WRITE ───> topology_write_backend ─────────┴─> route_to:
 *                                                 the connection the client already uses
 *                                                 for that backend, or a pick
 *
 * What a command does is data (flags and op in the command table); the
 * deployment's shape is the topology's business (static or cluster).
 */
#include "proxy/router.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/backend.h"
#include "backends/cluster.h"
#include "backends/topology.h"
#include "l1/l1.h"
#include "protocol/command.h"
#include "proxy/auth.h"
#include "protocol/resp3.h"
#include "proxy/client.h"
#include "proxy/fanout.h"
#include "proxy/latency.h"
#include "proxy/local.h"
#include "proxy/proxy.h"
#include "proxy/txn.h"

#define ROUTER_STACK_KEYS 64           /* key positions looked at without a malloc */
#define SLOT_NONE (-1)                 /* the call names no key */
#define SLOT_CROSS (-2)                /* its keys hash to several slots */
#define RESP3_UP 0x80u                 /* route_l1: the client speaks RESP3 (shape flags beside it) */

enum route {
    ROUTE_READ = 0,                    /* read-only: read-policy, the L1 */
    ROUTE_WRITE,                       /* writes and unknown commands: the primary */
    ROUTE_PIN,                         /* the client's own connection */
};

/* The error a client gets when a backend cannot take a request. */
static void unavailable(struct client *c, struct backend *b)
{
    char msg[512], why[300];
    snprintf(msg, sizeof(msg), "ERR redsnano: backend %s (%s) %s", b->name,
             b->role == BACKEND_PRIMARY ? "primary" : "replica", backend_why(b, why, sizeof(why)));
    proxy->stats.backend_errors++;
    b->errors++;
    local_error(c, msg);
}

/* Does a write or an unknown command need the L1 to hold its keys? */
static void *l1_hold(const struct cmd *cmd, const struct reqmsg *m)
{
    if (!l1_on() || (cmd != NULL && !(cmd->flags & (CMD_WRITE | CMD_PROXY_FLUSH))))
        return NULL;
    return l1_write_begin(cmd, m);
}

/* The slot of a call's keys (cluster mode), SLOT_NONE or SLOT_CROSS. */
static int call_slot(const struct cmd *cmd, const struct reqmsg *m)
{
    int stack_keys[ROUTER_STACK_KEYS], *keys = stack_keys;
    int slot = SLOT_NONE;

    if (cmd == NULL)
        return SLOT_NONE;
    if (cmd->cluster == CMD_CLUSTER_CHANNEL && m->argc >= 2)
        return (int)cluster_keyslot(m->argv[1], m->argvlen[1]);
    int n = cmd_keys(cmd, m->argc, m->argv, m->argvlen, keys, NULL, ROUTER_STACK_KEYS);
    if (n > ROUTER_STACK_KEYS) {
        keys = malloc((size_t)n * sizeof(*keys));
        if (keys == NULL)
            return SLOT_NONE;           /* the node answers CROSSSLOT if it must */
        n = cmd_keys(cmd, m->argc, m->argv, m->argvlen, keys, NULL, n);
    }
    for (int i = 0; i < n; i++) {
        int s = (int)cluster_keyslot(m->argv[keys[i]], m->argvlen[keys[i]]);
        if (slot >= 0 && s != slot) {
            slot = SLOT_CROSS;
            break;
        }
        slot = s;
    }
    if (keys != stack_keys)
        free(keys);
    return slot;
}

/* Send m to backend b on the connection the client already has requests
 * in flight on for b (Redis then sees them in order), else on a pick. A
 * read that finds its replica unavailable goes to the primary. */
static int route_to(struct client *c, const struct cmd *cmd, struct reqmsg *m, struct backend *b,
                    enum route kind, int slot)
{
    struct topology *t = &proxy->topo;
    int stall = 0;
    struct server *s;

    if (b == NULL) {
        local_error(c, "CLUSTERDOWN redsnano: the cluster's slot map is not known yet");
        return ROUTER_DONE;
    }
    s = client_conn_pick(c, b, &stall);
    if (s == NULL && !stall && kind == ROUTE_READ && b->role == BACKEND_REPLICA) {
        b = topology_write_backend(t, slot);          /* the replica is unavailable: its primary */
        s = client_conn_pick(c, b, &stall);
    }
    if (stall)
        return ROUTER_STALL;
    if (s == NULL) {
        unavailable(c, b);
        return ROUTER_DONE;
    }
    struct fwd f = { .replies = cmd_replies(cmd, m->argc), .lclass = kind == ROUTE_READ ? LAT_read : LAT_write };
    if (t->mode == TOPOLOGY_CLUSTER)
        f.retry = REQ_RETRY_CLUSTER;
    if (b->role == BACKEND_REPLICA)
        f.retry |= REQ_RETRY_REPLICA;
    if (kind == ROUTE_WRITE) {
        c->last_write = uv_now(proxy->loop);
        f.l1_token = l1_hold(cmd, m);
    }
    b->requests++;
    client_forward(c, s, m->bytes, m->len, &f);
    return ROUTER_DONE;
}

/* Forward to the client's pinned connection, creating it (to b) if needed. */
static int route_pinned(struct client *c, const struct cmd *cmd, struct reqmsg *m, struct backend *b)
{
    uint32_t f = cmd ? cmd->flags : 0;
    uint8_t op = cmd ? cmd->op : CMD_OP_NONE;

    if (c->pinned == NULL) {
        /* Its earlier requests are on other connections: Redis must see
         * them first. */
        if (c->inflight > 0)
            return ROUTER_STALL;
        if (client_pin(c, b) == NULL) {
            unavailable(c, b);
            return ROUTER_DONE;
        }
    }
    if (c->proto == 3 && (op == CMD_OP_SUBSCRIBE || op == CMD_OP_UNSUBSCRIBE) &&
        !(c->flags & CLIENT_MULTI) && cmd_arity_ok(cmd, m->argc)) {
        /* RESP3: Redis confirms with pushes, not replies (they reach the
         * client through the connection's on_push, between replies), and
         * commands keep working while subscribed. */
        if (op == CMD_OP_SUBSCRIBE)
            c->flags |= CLIENT_SUBSCRIBED | CLIENT_PUBSUB;   /* and the pubsub output class */
        server_send_raw(c->pinned, m->bytes, m->len);
        return ROUTER_DONE;
    }
    if (f & CMD_PROXY_SUBSCRIBE) {
        /* From here on the connection is a stream of pushes: every later
         * request goes through and Redis answers it in-stream. */
        if (c->inflight > 0)
            return ROUTER_STALL;
        client_enter_push(c);
        if (f & CMD_PUBSUB)
            c->flags |= CLIENT_PUBSUB;    /* the pubsub output class; MONITOR stays normal */
        server_send_raw(c->pinned, m->bytes, m->len);
        return ROUTER_DONE;
    }
    if (op == CMD_OP_EXEC && txn_exec_aborted(c))
        return ROUTER_DONE;
    struct fwd fw = {
        .deadline = cmd_blocks(cmd, m->argc, m->argv, m->argvlen) ? SRVREQ_NO_DEADLINE : 0,
        .replies = cmd_replies(cmd, m->argc),
        .l1_token = l1_hold(cmd, m),
    };
    fw.lclass = fw.deadline == SRVREQ_NO_DEADLINE ? LAT_NONE : LAT_pinned;
    /* Writes queued in MULTI run at EXEC: the L1 holds their keys until
     * EXEC (or DISCARD) is answered. */
    if (op == CMD_OP_MULTI) {
        c->flags |= CLIENT_MULTI;
    } else if (op == CMD_OP_EXEC || op == CMD_OP_DISCARD) {
        c->flags &= ~CLIENT_MULTI;
        fw.l1_token = l1_token_join(c->txn_l1_token, fw.l1_token);
        c->txn_l1_token = NULL;
    } else if ((c->flags & CLIENT_MULTI) && fw.l1_token) {
        c->txn_l1_token = l1_token_join(c->txn_l1_token, fw.l1_token);
        fw.l1_token = NULL;
    }
    client_forward(c, c->pinned, m->bytes, m->len, &fw);
    return ROUTER_DONE;
}

/* A read the L1 may answer (a cacheable read, or MGET per key): 1 when it
 * did (hit, or the client waits on a fill), 0 to forward it. The L1 keeps
 * RESP2 replies; a RESP3 client gets them as Redis would send them in RESP3
 * (resp3_from_resp2, with the command table's shape). via: the primary of
 * the call's keys (its fill would go to via's origin); NULL for an MGET over
 * slots (cluster), which then waits on a fill only when the client has
 * nothing in flight. */
static int route_l1(struct client *c, const struct cmd *cmd, struct reqmsg *m, struct backend *via)
{
    /* MGET's nil elements differ between the protocols (`$-1`, `_`): RESP3
     * clients' MGETs are forwarded. */
    int mget = cmd->op == CMD_OP_MGET && c->proto == 2;
    uint8_t id = mget ? 0 : l1_command_id(m);
    if (id == 0 && !mget)
        return 0;
    const char *bytes;
    size_t n;
    void *pending;
    /* A fill runs on a connection to the primary the L1 may read on: the
     * one holding this client's earlier requests to the primary, if any (a
     * shared one with l1-tracking broadcast, else one of the L1's own). */
    int stall = 0;
    struct server *cur = via != NULL ? client_conn_for(c, via, &stall) : NULL;
    int may_wait = via != NULL ? !stall && (cur == NULL || (mget ? l1_owns_server(cur) : l1_may_read_on(cur)))
                               : c->inflight == 0;
    int rc = mget ? l1_mget(m, may_wait, may_wait ? cur : NULL, &bytes, &n, &pending)
                  : l1_read(id, m, may_wait, may_wait ? cur : NULL, &bytes, &n, &pending);
    unsigned shape = c->proto == 3 ? RESP3_UP | cmd_resp3_shape(cmd, m->argc, m->argv, m->argvlen) : 0;
    if (rc == L1_HIT) {
        struct buf *b = client_reply_buf(c);
        if (b != NULL) {
            if (!shape || resp3_from_resp2(b, bytes, n, shape & ~RESP3_UP) != 0)
                buf_append(b, bytes, n);
            client_reply_done(c);
        }
        latency_done(LAT_l1, NULL, c->frame_ns, c, NULL, 0);
        return 1;
    }
    if (rc == L1_WAIT) {
        struct srvreq *sr = client_wait(c, l1_pending_server(pending));
        if (sr != NULL) {
            client_wait_resp3(sr, shape);
            l1_wait(pending, sr);
        }
        return 1;
    }
    return 0;
}

/* Does the command belong to the client's session with the proxy (its
 * protocol, id, name, tracking, reply mode, RESET, its user and the users
 * it may be)? Those are always the proxy's, pinned or not: the client owns
 * no Redis connection. */
static int session_command(const struct cmd *cmd)
{
    return cmd->op == CMD_OP_HELLO || cmd->op == CMD_OP_RESET || cmd->op == CMD_OP_CLIENT_REPLY ||
           cmd->op == CMD_OP_AUTH || (cmd->op >= CMD_OP_ACL_WHOAMI && cmd->op <= CMD_OP_ACL_GETUSER) ||
           (cmd->op >= CMD_OP_CLIENT_ID && cmd->op <= CMD_OP_CLIENT_GETREDIR);
}

/* Requests the proxy answers or refuses itself, before any routing.
 * Returns 1 when the request was answered, -1 when it must wait for the
 * client's in-flight requests (dispatched again then), 0 to route it. */
static int answer_locally(struct client *c, const struct cmd *cmd, struct reqmsg *m)
{
    uint32_t f = cmd->flags;

    if ((f & CMD_PROXY_DENY) && !proxy->cfg->allow_admin_commands) {
        local_deny(c, m);
        return 1;
    }
    /* Inside a session (a pinned connection, or a held cluster transaction:
     * txn.c) PING, ECHO and QUIT are Redis's to answer or queue; the
     * session's own commands stay the proxy's. */
    int session = c->pinned != NULL || (c->flags & CLIENT_TXN_HELD);
    if ((c->flags & (CLIENT_MULTI | CLIENT_TXN_HELD)) && (f & CMD_PROXY_LOCAL) && session_command(cmd) &&
        cmd->op != CMD_OP_RESET) {
        /* Redis would queue it and run it at EXEC; the proxy answers it
         * and cannot: refused, so EXEC aborts as after any refused
         * command (never an EXEC reply one element short). */
        char text[160];
        int sub = m->argc > 1 && !reqmsg_arg_is(m, 0, cmd->name);   /* CLIENT SETNAME: name the subcommand too */
        snprintf(text, sizeof(text), "ERR redsnano: '%.*s%s%.*s' is answered by the proxy and cannot be queued in MULTI",
                 (int)(m->argvlen[0] > 32 ? 32 : m->argvlen[0]), m->argv[0], sub ? " " : "",
                 sub ? (int)(m->argvlen[1] > 32 ? 32 : m->argvlen[1]) : 0, sub ? m->argv[1] : "");
        c->flags |= CLIENT_TXN_ABORT;
        local_error(c, text);
        return 1;
    }
    if ((f & CMD_PROXY_LOCAL) && (!session || session_command(cmd)))
        return local_command(c, cmd, m);
    if (session)
        return 0;
    if (cmd->op == CMD_OP_SELECT && m->argc == 2 && m->argvlen[1] == 1 && m->argv[1][0] == '0') {
        local_status(c, "OK");          /* already in db 0 */
        return 1;
    }
    if (proxy_cluster_mode()) {
        if (cmd->op == CMD_OP_SELECT) {
            local_error(c, "ERR SELECT is not allowed in cluster mode");
            return 1;
        }
    }
    return 0;
}

/* Read, write or pin? */
static enum route classify(const struct client *c, const struct cmd *cmd, const struct reqmsg *m)
{
    if (c->pinned)
        return ROUTE_PIN;
    if (cmd == NULL)
        return ROUTE_WRITE;             /* unknown to us: Redis answers it (modules, newer commands) */
    /* RESP3 answers UNSUBSCRIBE with pushes: only a pinned session routes them. */
    if (cmd->op == CMD_OP_UNSUBSCRIBE && c->proto == 3)
        return ROUTE_PIN;
    /* State on the connection (MULTI, SUBSCRIBE, MONITOR...), or a call that
     * blocks it: the client's own connection. */
    if (((cmd->flags & (CMD_PROXY_PIN | CMD_PROXY_SUBSCRIBE)) && !(cmd->flags & CMD_BLOCKING)) ||
        cmd_blocks(cmd, m->argc, m->argv, m->argvlen))
        return ROUTE_PIN;
    if ((cmd->flags & CMD_READONLY) && !(cmd->flags & CMD_WRITE))
        return ROUTE_READ;
    return ROUTE_WRITE;
}

int router_dispatch(struct client *c, struct reqmsg *m)
{
    struct topology *t = &proxy->topo;
    const struct cmd *cmd = cmd_lookup_argv(m->argc, m->argv, m->argvlen);

    /* NOAUTH / NOPERM before anything is answered or routed. REDSNANO is
     * the proxy's own: any authenticated user may ask. */
    if (!(c->flags & CLIENT_ACL_ALL) && (c->user == NULL || cmd != NULL || !reqmsg_arg_is(m, 0, "redsnano")) &&
        auth_check(c, cmd, m))
        return ROUTER_DONE;
    if ((c->flags & CLIENT_PUSH) && !(cmd != NULL && cmd->op == CMD_OP_RESET)) {
        /* A push stream: Redis answers in-stream, we cannot tell when a
         * write completes; drop its keys from the L1 now, tracking covers
         * the rest. */
        l1_write_end(l1_hold(cmd, m));
        server_send_raw(c->pinned, m->bytes, m->len);
        return ROUTER_DONE;
    }
    if (cmd == NULL && reqmsg_arg_is(m, 0, "redsnano")) {
        local_redsnano(c, m);
        return ROUTER_DONE;
    }
    if (cmd != NULL && (cmd->op != CMD_OP_NONE || (cmd->flags & (CMD_PROXY_DENY | CMD_PROXY_LOCAL | CMD_PROXY_TXN)))) {
        int rc = answer_locally(c, cmd, m);
        if (rc < 0)
            return ROUTER_STALL;
        if (rc > 0)
            return ROUTER_DONE;
    }

    int slot = SLOT_NONE;
    if (t->mode == TOPOLOGY_CLUSTER) {
        slot = call_slot(cmd, m);
        /* MULTI/EXEC/WATCH on one node (txn.c). */
        int rc = txn_route(c, cmd, m, slot);
        if (rc != TXN_PASS)
            return rc;
        /* Split over slots, or asked of every primary (fanout.c). */
        if (!(c->flags & CLIENT_MULTI) && fanout_wanted(cmd, slot == SLOT_CROSS)) {
            /* MGET over slots: the L1 answers the keys it holds (per node). */
            if (cmd->op == CMD_OP_MGET && l1_on() && c->pinned == NULL && c->trk == NULL &&
                route_l1(c, cmd, m, NULL))
                return ROUTER_DONE;
            return fanout_dispatch(c, cmd, m);
        }
        if (slot == SLOT_CROSS) {
            local_error(c, "CROSSSLOT Keys in request don't hash to the same slot");
            return ROUTER_DONE;
        }
    }
    switch (classify(c, cmd, m)) {
    case ROUTE_PIN: {
        struct backend *b = topology_write_backend(t, slot);
        if (b == NULL)
            return route_to(c, cmd, m, NULL, ROUTE_PIN, slot);
        if (c->pinned && slot >= 0 && c->pinned->backend != b) {
            /* A plain command of a client pinned to another node (after
             * WATCH, or a blocking call) goes to its own node as usual. */
            if (cmd != NULL && !(c->flags & CLIENT_MULTI) &&
                !(cmd->flags & (CMD_PROXY_PIN | CMD_PROXY_SUBSCRIBE)) && !cmd_blocks(cmd, m->argc, m->argv, m->argvlen))
                return route_to(c, cmd, m, b, (cmd->flags & CMD_READONLY) && !(cmd->flags & CMD_WRITE)
                                                  ? ROUTE_READ : ROUTE_WRITE, slot);
            local_error(c, "ERR redsnano: this key's slot is served by another node than this client's "
                           "blocking/pub-sub session");
            return ROUTER_DONE;
        }
        return route_pinned(c, cmd, m, c->pinned ? c->pinned->backend : b);
    }
    case ROUTE_READ:
        /* A tracking client reads from the primary, past the L1: an older
         * value there could arrive after the invalidation that voids it. */
        if (c->trk != NULL)
            return route_to(c, cmd, m, topology_write_backend(t, slot), ROUTE_READ, slot);
        if (l1_on() && route_l1(c, cmd, m, topology_write_backend(t, slot)))
            return ROUTER_DONE;
        /* read-your-writes: a client's reads follow its writes to the
         * primary for a while. */
        if (proxy->cfg->read_your_writes > 0 && c->last_write &&
            uv_now(proxy->loop) - c->last_write < (uint64_t)proxy->cfg->read_your_writes)
            return route_to(c, cmd, m, topology_write_backend(t, slot), ROUTE_READ, slot);
        return route_to(c, cmd, m, topology_read_backend(t, slot), ROUTE_READ, slot);
    case ROUTE_WRITE:
        break;
    }
    return route_to(c, cmd, m, topology_write_backend(t, slot), ROUTE_WRITE, slot);
}
