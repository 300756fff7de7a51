/*
 * proxy/txn.c — transactions in cluster mode (see txn.h).
 *
 *   MULTI ─> held (+OK) ─┬─ keyless ─> +QUEUED, bytes kept
 *                        ├─ keyed ──> pin to the slot's node ─> MULTI + kept ─> forward
 *                        ├─ EXEC ───> no command: *0; else any primary, as above
 *                        └─ DISCARD ─> +OK, kept bytes dropped
 *   pinned in MULTI ─ keyed for another node ─> -CROSSSLOT, EXEC ─> -EXECABORT
 */
#include "proxy/txn.h"

#include <stdlib.h>

#include "backends/backend.h"
#include "backends/server.h"
#include "backends/topology.h"
#include "base/buf.h"
#include "proxy/client.h"
#include "proxy/local.h"
#include "proxy/proxy.h"
#include "proxy/router.h"

static const char MULTI_CMD[] = "*1\r\n$5\r\nMULTI\r\n";
static const char DISCARD_CMD[] = "*1\r\n$7\r\nDISCARD\r\n";

/* The commands of a held transaction. */
struct txn_hold {
    struct buf bytes;                 /* their requests, as the client sent them */
    unsigned n;                       /* how many */
};

/* A request whose replies nobody reads (the MULTI and commands the client
 * was already answered for). */
static void dropped_reply(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    (void)reply;
    (void)len;
    (void)failed;
    free(sr);
}

static void send_dropped(struct server *s, const char *bytes, size_t len, unsigned replies)
{
    struct srvreq *sr = calloc(1, sizeof(*sr));
    if (sr == NULL) {
        server_close(s, "out of memory");   /* the transaction cannot be kept whole */
        return;
    }
    sr->on_reply = dropped_reply;
    sr->replies = replies;
    server_send(s, sr, bytes, len);
}

void txn_forget(struct client *c)
{
    if (c->txn_held != NULL) {
        buf_free(&c->txn_held->bytes);
        free(c->txn_held);
        c->txn_held = NULL;
    }
    c->flags &= ~CLIENT_TXN_HELD;
}

int txn_exec_aborted(struct client *c)
{
    if (!(c->flags & CLIENT_TXN_ABORT))
        return 0;
    txn_forget(c);
    c->flags &= ~(CLIENT_TXN_ABORT | CLIENT_MULTI | CLIENT_WATCHING);
    if (c->pinned != NULL)
        send_dropped(c->pinned, DISCARD_CMD, sizeof(DISCARD_CMD) - 1, 1);
    l1_write_end(c->txn_l1_token);    /* its writes never ran */
    c->txn_l1_token = NULL;
    local_error(c, "EXECABORT Transaction discarded because of previous errors.");
    return 1;
}

/* The held transaction goes to b: pin c there (giving up a connection to
 * another node first), send MULTI and the held commands. ROUTER_DONE when
 * sent (or answered with an error), ROUTER_STALL to wait for c's requests. */
static int txn_flush(struct client *c, struct backend *b, int *sent)
{
    *sent = 0;
    if (b == NULL) {
        local_error(c, "CLUSTERDOWN redsnano: the cluster's slot map is not known yet");
        return ROUTER_DONE;
    }
    if (c->inflight > 0)
        return ROUTER_STALL;            /* Redis must see the earlier requests first */
    if (c->pinned != NULL && c->pinned->backend != b)
        client_unpin(c);
    if (c->pinned == NULL && client_pin(c, b) == NULL) {
        char msg[512];
        snprintf(msg, sizeof(msg), "ERR redsnano: backend %s (primary) %s", b->name, b->err[0] ? b->err : "unavailable");
        proxy->stats.backend_errors++;
        local_error(c, msg);
        return ROUTER_DONE;
    }
    struct buf all = { 0 };
    buf_append(&all, MULTI_CMD, sizeof(MULTI_CMD) - 1);
    if (c->txn_held != NULL)
        buf_append(&all, c->txn_held->bytes.data, c->txn_held->bytes.len);
    if (all.oom) {
        buf_free(&all);
        local_error(c, "ERR redsnano: out of memory");
        return ROUTER_DONE;
    }
    send_dropped(c->pinned, all.data, all.len, 1 + (c->txn_held ? c->txn_held->n : 0));
    buf_free(&all);
    txn_forget(c);
    c->flags |= CLIENT_MULTI;
    *sent = 1;
    return ROUTER_DONE;
}

/* A request while the transaction is held. */
static int txn_held(struct client *c, const struct cmd *cmd, struct reqmsg *m, int slot)
{
    uint8_t op = cmd ? cmd->op : CMD_OP_NONE;
    int sent, rc;

    switch (op) {
    case CMD_OP_MULTI:
        local_error(c, "ERR MULTI calls can not be nested");
        return ROUTER_DONE;
    case CMD_OP_WATCH:
        local_error(c, "ERR WATCH inside MULTI is not allowed");
        return ROUTER_DONE;
    case CMD_OP_DISCARD:
        txn_forget(c);
        c->flags &= ~(CLIENT_TXN_ABORT | CLIENT_WATCHING);
        local_status(c, "OK");
        return ROUTER_DONE;
    case CMD_OP_EXEC:
        if (txn_exec_aborted(c))
            return ROUTER_DONE;
        if (c->txn_held == NULL || c->txn_held->n == 0) {
            struct buf *b = client_reply_buf(c);
            txn_forget(c);
            c->flags &= ~CLIENT_WATCHING;
            if (b != NULL) {
                buf_append(b, "*0\r\n", 4);
                client_reply_done(c);
            }
            return ROUTER_DONE;
        }
        rc = txn_flush(c, topology_write_backend(&proxy->topo, -1), &sent);
        return sent ? TXN_PASS : rc;
    default:
        break;
    }
    if (slot < 0) {
        /* No key yet: keep it (Redis answers +QUEUED or flags the
         * transaction when it sees it; EXEC then tells). */
        if (c->txn_held == NULL && (c->txn_held = calloc(1, sizeof(*c->txn_held))) == NULL) {
            local_error(c, "ERR redsnano: out of memory");
            return ROUTER_DONE;
        }
        if (buf_append(&c->txn_held->bytes, m->bytes, m->len) != 0) {
            local_error(c, "ERR redsnano: out of memory");
            return ROUTER_DONE;
        }
        c->txn_held->n++;
        local_status(c, "QUEUED");
        return ROUTER_DONE;
    }
    rc = txn_flush(c, topology_write_backend(&proxy->topo, slot), &sent);
    return sent ? TXN_PASS : rc;
}

int txn_route(struct client *c, const struct cmd *cmd, struct reqmsg *m, int slot)
{
    uint8_t op = cmd ? cmd->op : CMD_OP_NONE;
    struct topology *t = &proxy->topo;

    if (slot < -1 && (c->flags & (CLIENT_TXN_HELD | CLIENT_MULTI))) {
        c->flags |= CLIENT_TXN_ABORT;   /* keys over slots: never in one transaction */
        local_error(c, "CROSSSLOT Keys in request don't hash to the same slot");
        return ROUTER_DONE;
    }
    if (slot < -1)
        return TXN_PASS;
    if (c->flags & CLIENT_TXN_HELD)
        return txn_held(c, cmd, m, slot);
    if (c->flags & CLIENT_MULTI) {
        /* Inside a transaction running on c->pinned's node. */
        if (slot >= 0 && c->pinned != NULL && topology_write_backend(t, slot) != c->pinned->backend) {
            c->flags |= CLIENT_TXN_ABORT;
            local_error(c, "CROSSSLOT Keys in request don't hash to the same slot");
            return ROUTER_DONE;
        }
        if (op == CMD_OP_EXEC && txn_exec_aborted(c))
            return ROUTER_DONE;
        if (op == CMD_OP_EXEC || op == CMD_OP_DISCARD)
            c->flags &= ~(CLIENT_WATCHING | CLIENT_TXN_ABORT);
        return TXN_PASS;
    }
    switch (op) {
    case CMD_OP_MULTI:
        /* After WATCH the node is chosen: MULTI goes there. */
        if (c->pinned != NULL && (c->flags & CLIENT_WATCHING))
            return TXN_PASS;
        c->flags |= CLIENT_TXN_HELD;
        c->flags &= ~CLIENT_TXN_ABORT;
        local_status(c, "OK");
        return ROUTER_DONE;
    case CMD_OP_WATCH:
        /* WATCH picks the node at once; keys of one node only. */
        if (c->pinned != NULL && topology_write_backend(t, slot) != c->pinned->backend) {
            if (c->flags & CLIENT_WATCHING) {
                local_error(c, "CROSSSLOT Keys in request don't hash to the same slot");
                return ROUTER_DONE;
            }
            if (c->inflight > 0)
                return ROUTER_STALL;
            client_unpin(c);
        }
        c->flags |= CLIENT_WATCHING;
        return TXN_PASS;
    case CMD_OP_UNWATCH:
        c->flags &= ~CLIENT_WATCHING;
        return TXN_PASS;
    default:
        return TXN_PASS;
    }
}
