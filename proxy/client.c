/*
 * proxy/client.c — client sessions (see client.h).
 *
 *   accept ─> client_read ─> client_process ─┬─> router_dispatch ─> client_forward ─> server
 *                                            └─> protocol error: -ERR, close
 *   server ─> req_on_reply ─> (FIFO head?) ─> c->out ─> socket
 */
#include "proxy/client.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cluster.h"
#include "backends/topology.h"
#include "l1/l1.h"
#include "protocol/peek.h"
#include "protocol/reply.h"
#include "protocol/resp3.h"
#include "base/log.h"
#include "base/tls.h"
#include "proxy/auth.h"
#include "proxy/protected.h"
#include "proxy/climits.h"
#include "proxy/latency.h"
#include "proxy/proxy.h"
#include "proxy/router.h"
#include "proxy/txn.h"
#include "proxy/tracking.h"

#define CLIENT_READ_CHUNK (16 * 1024)       /* room offered to each read */
#define CLIENT_IN_KEEP (64 * 1024)          /* keep an empty input buffer up to this size */
#define CLIENT_OUT_PAUSE (32 * 1024 * 1024) /* stop reading while this much output waits */
#define CLIENT_PREFETCH_MAX 16             /* GETs of one read whose L1 memory is warmed together */
#define REQ_FREELIST_MAX 4096               /* spare struct req kept for reuse */

static uint64_t next_client_id = 1;
static struct req *req_freelist;            /* spare requests (linked by next) */
static unsigned req_nfree;
static struct client *resume_head;          /* clients to resume before the next poll */
static char tls_scratch[CLIENT_READ_CHUNK]; /* ciphertext read from a TLS client, fed at once */
static struct buf drop_buf;                 /* a local reply CLIENT REPLY drops: written, then discarded */

/* ---- clients by id (CLIENT TRACKING REDIRECT, invalidations) ------------ */

#define CLIENT_ID_BUCKETS 4096              /* chains of the id table (ids are sequential) */
static struct client *client_ids[CLIENT_ID_BUCKETS];

static void client_id_add(struct client *c)
{
    struct client **b = &client_ids[c->id % CLIENT_ID_BUCKETS];
    c->id_next = *b;
    *b = c;
}

static void client_id_del(struct client *c)
{
    for (struct client **pp = &client_ids[c->id % CLIENT_ID_BUCKETS]; *pp; pp = &(*pp)->id_next) {
        if (*pp == c) {
            *pp = c->id_next;
            return;
        }
    }
}

struct client *client_by_id(uint64_t id)
{
    for (struct client *c = client_ids[id % CLIENT_ID_BUCKETS]; c; c = c->id_next)
        if (c->id == id && !(c->flags & CLIENT_CLOSING))
            return c;
    return NULL;
}

/* ---- requests --------------------------------------------------------- */

static struct req *req_get(struct client *c)
{
    struct req *r = req_freelist;
    if (r != NULL) {
        req_freelist = r->next;
        req_nfree--;
        r->sr = (struct srvreq){ 0 };
        r->next = NULL;
        buf_reset(&r->reply);
        r->reply.oom = 0;
        r->done = r->forwarded = r->retryable = r->redirects = r->kept = 0;
        r->drop = r->resp3_up = 0;
        r->conn = NULL;
        r->l1_token = NULL;
        r->held = 0;
    } else {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return NULL;
    }
    r->lclass = LAT_NONE;
    r->client = c;
    r->drop = c->drop_cur;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->nreqs++;
    return r;
}

static void req_put(struct req *r)
{
    if (req_nfree >= REQ_FREELIST_MAX || r->reply.cap > 4096) {
        buf_free(&r->reply);
        free(r);
        return;
    }
    r->next = req_freelist;
    req_freelist = r;
    req_nfree++;
}

/* Pop the FIFO head. */
static void client_pop(struct client *c)
{
    struct req *r = c->head;
    c->head = r->next;
    if (c->head == NULL)
        c->tail = NULL;
    c->nreqs--;
    c->fifo_bytes -= r->held;
    req_put(r);
}

static void client_maybe_finish(struct client *c)
{
    if ((c->flags & CLIENT_CLOSE_AFTER_REPLY) && c->head == NULL && outq_size(&c->out) == 0)
        client_close(c);
}

/* Write every finished request at the FIFO head. */
static void client_drain(struct client *c)
{
    while (c->head && c->head->done) {
        struct req *r = c->head;
        if (buf_unread(&r->reply) && !r->drop)
            outq_append(&c->out, r->reply.data + r->reply.pos, buf_unread(&r->reply));
        client_pop(c);
    }
    client_maybe_finish(c);
}

static void client_schedule_resume(struct client *c);

/* ---- the connections a client's requests are in flight on ---------------- */

/* Grow c's in-flight table to at least n entries. 0 or -1. */
static int conns_grow(struct client *c, unsigned n)
{
    if (n <= c->nconns)
        return 0;
    if (n > CLIENT_CONNS_MAX)
        return -1;
    unsigned cap = c->nconns * 2 > n ? c->nconns * 2 : n;
    if (cap > CLIENT_CONNS_MAX)
        cap = CLIENT_CONNS_MAX;
    struct client_conn *t = calloc(cap, sizeof(*t));
    if (t == NULL)
        return -1;
    memcpy(t, c->conns, c->nconns * sizeof(*t));
    if (c->nconns > CLIENT_CONNS)
        free(c->conns);                 /* not the framer's entries */
    c->conns = t;
    c->nconns = cap;
    return 0;
}

struct server *client_conn_for(struct client *c, const struct backend *b, int *stall)
{
    unsigned free_entries = 0;

    *stall = 0;
    if (c->inflight == 0)
        return NULL;                    /* every entry is free */
    for (unsigned i = 0; i < c->nconns; i++) {
        struct server *s = c->conns[i].s;
        if (s == NULL) {
            free_entries++;
            continue;
        }
        if (s->backend == b) {
            /* Closing, or of the other protocol (an L1 fill for a RESP3
             * client): the next request waits instead of overtaking. */
            if (s->state == SERVER_CLOSING || s->proto != c->proto)
                *stall = 1;
            return *stall ? NULL : s;
        }
    }
    if (free_entries == 0 && conns_grow(c, c->nconns + 1) < 0)
        *stall = 1;
    return NULL;
}

/* One more request of c in flight on s. */
static void conn_add(struct client *c, struct server *s)
{
    struct client_conn *spare = NULL;

    if (c->inflight++ == 0) {
        c->conns[0].s = s;              /* every entry is free */
        c->conns[0].n = 1;
        return;
    }
    for (unsigned i = 0; i < c->nconns; i++) {
        if (c->conns[i].s == s) {
            c->conns[i].n++;
            return;
        }
        if (c->conns[i].s == NULL && spare == NULL)
            spare = &c->conns[i];
    }
    /* client_conn_for() made sure there is room. */
    assert(spare != NULL);
    spare->s = s;
    spare->n = 1;
}

/* One request of c on s answered. A stalled client is resumed when any of
 * its connections empties: what it waits for may be free now. */
static void conn_del(struct client *c, struct server *s)
{
    c->inflight--;
    for (unsigned i = 0; i < c->nconns; i++) {
        if (c->conns[i].s != s)
            continue;
        if (--c->conns[i].n == 0) {
            c->conns[i].s = NULL;
            if (c->flags & CLIENT_STALLED)
                client_schedule_resume(c);
        }
        return;
    }
}

struct server *client_conn_pick(struct client *c, struct backend *b, int *stall)
{
    struct server *s = client_conn_for(c, b, stall);

    if (s == NULL && !*stall)
        s = client_pick(c, b);
    return s;
}

/* Where a request of c for b goes once more (a retry, a redirect): NULL
 * when there is no connection for it now. */
static struct server *conn_or_pick(struct client *c, struct backend *b)
{
    int stall;
    return client_conn_pick(c, b, &stall);
}

struct server *client_pick(const struct client *c, struct backend *b)
{
    return c->proto == 3 ? backend_pick_proto(b, 3) : backend_pick(b);
}

/* Resend r (its bytes are in r->reply) on s. */
static void req_resend(struct client *c, struct req *r, struct server *s)
{
    s->backend->requests++;
    r->conn = s;
    r->sr.deadline = 0;
    conn_add(c, s);
    server_send(s, &r->sr, r->reply.data + r->reply.pos, buf_unread(&r->reply));
}

/* A read failed on a replica: send it once more to another backend.
 * Returns 1 if it was resent (its reply will come back here). */
static int req_retry(struct client *c, struct req *r, struct backend *failed_on)
{
    struct backend *b = topology_retry_backend(&proxy->topo, failed_on);
    struct server *s = b ? conn_or_pick(c, b) : NULL;

    if (s == NULL)
        return 0;
    proxy->stats.retries++;
    req_resend(c, r, s);
    return 1;
}

struct server *client_redirect(struct client *c, const char *reply, size_t len, unsigned hops)
{
    struct backend *to;
    int ask;

    if (hops >= CLUSTER_MAX_REDIRECTS || !topology_redirect(&proxy->topo, reply, len, &to, &ask))
        return NULL;
    struct server *s = conn_or_pick(c, to);
    if (s == NULL)
        return NULL;
    if (ask && server_send_asking(s) < 0)
        return NULL;
    return s;
}

/* A cluster node answered -MOVED or -ASK: send the request where it says.
 * Redis did not run it, so resending is safe, writes included. Returns 1
 * if resent. */
static int req_redirect(struct client *c, struct req *r, const char *reply, size_t len)
{
    struct server *s = client_redirect(c, reply, len, r->redirects);

    if (s == NULL)
        return 0;
    r->redirects++;
    r->retryable = REQ_RETRY_CLUSTER;
    req_resend(c, r, s);
    return 1;
}

static void req_deliver(struct client *c, struct req *r, const char *reply, size_t len);

static void req_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    struct req *r = (struct req *)((char *)sr - offsetof(struct req, sr));
    struct client *c = r->client;

    if (r->l1_token) {
        l1_write_end(r->l1_token);
        r->l1_token = NULL;
    }
    if (c == NULL) {                    /* client gone: drop the reply */
        req_put(r);
        return;
    }
    struct server *was_on = r->conn;
    r->conn = NULL;
    if (was_on != NULL) {
        conn_del(c, was_on);
    } else {                            /* a fan-out's place (client_place) */
        c->inflight--;
        if (c->flags & CLIENT_STALLED)
            client_schedule_resume(c);
    }
    int kept = r->kept;                 /* r->reply holds the request's bytes */
    if (r->retryable) {
        int kind = r->retryable;
        r->retryable = REQ_RETRY_NONE;
        if ((kind & REQ_RETRY_REPLICA) && failed && was_on != NULL && req_retry(c, r, was_on->backend)) {
            r->kept = 1;                /* its bytes stay in r->reply until the answer */
            return;
        }
        if ((kind & REQ_RETRY_CLUSTER) && !failed && reply[0] == '-' && req_redirect(c, r, reply, len))
            return;
        kept = 1;
    }
    if (r->lclass != LAT_NONE)
        latency_done(r->lclass, r->lclass == LAT_l1 || was_on == NULL ? NULL : was_on->backend, r->start_ns, c,
                     kept ? r->reply.data + r->reply.pos : NULL, kept ? buf_unread(&r->reply) : 0);
    if (kept) {
        buf_reset(&r->reply);
        r->kept = 0;
    }
    if (failed)
        proxy->stats.backend_errors++;
    r->forwarded = 0;
    if (r->resp3_up && !failed) {
        struct buf up = { 0 };
        if (resp3_from_resp2(&up, reply, len, r->resp3_up & 0x7fu) == 0) {
            req_deliver(c, r, up.data, up.len);
            buf_free(&up);
            return;
        }
        buf_free(&up);
    }
    req_deliver(c, r, reply, len);
}

/* Put r's reply in place: written now if r is the FIFO head, else kept. */
static void req_deliver(struct client *c, struct req *r, const char *reply, size_t len)
{
    if (c->head == r) {
        if (!r->drop)
            outq_append(&c->out, reply, len);
        client_pop(c);
        client_drain(c);
    } else {
        if (!r->drop) {
            buf_append(&r->reply, reply, len);
            r->held = len;
            c->fifo_bytes += len;
        }
        r->done = 1;
    }
    climits_note_reply(c, len);
    if (!climits_output_check(c))
        climits_account(c);
}

static void client_out_of_memory(struct client *c)
{
    log_warn("Client %llu: out of memory writing a reply; closing", (unsigned long long)c->id);
    client_close(c);
}

struct buf *client_reply_buf(struct client *c)
{
    struct buf *b;

    if (c->drop_cur) {                  /* CLIENT REPLY OFF|SKIP: written, then discarded */
        buf_reset(&drop_buf);
        b = &drop_buf;
    } else if (c->head == NULL) {
        b = outq_buf(&c->out);
    } else {
        struct req *r = req_get(c);
        if (r == NULL) {
            client_out_of_memory(c);
            return NULL;
        }
        r->done = 1;
        b = &r->reply;
    }
    c->reply = b;
    return b;
}

struct buf *client_push_buf(struct client *c)
{
    uint8_t drop = c->drop_cur;

    if (c->flags & CLIENT_PUSH) {       /* a RESP2 stream: between two whole messages */
        c->reply = outq_buf(&c->out);
        return c->reply;
    }
    c->drop_cur = 0;
    struct buf *b = client_reply_buf(c);
    c->drop_cur = drop;
    return b;
}

void client_reply_done(struct client *c)
{
    if (c->reply != NULL && c->reply->oom) {
        c->reply = NULL;
        client_out_of_memory(c);
        return;
    }
    if (c->reply == &drop_buf) {
        buf_reset(&drop_buf);
        buf_shrink(&drop_buf, 4096);
        c->reply = NULL;
        return;
    }
    c->reply = NULL;
    outq_schedule(&c->out);
    client_maybe_finish(c);
}

void client_forward(struct client *c, struct server *s, const char *bytes, size_t len,
                    const struct fwd *f)
{
    struct req *r = req_get(c);
    if (r == NULL || (f->retry != REQ_RETRY_NONE && buf_append(&r->reply, bytes, len) != 0)) {
        l1_write_end(f->l1_token);
        client_out_of_memory(c);
        return;
    }
    r->l1_token = f->l1_token;
    r->forwarded = 1;
    r->retryable = f->retry;
    r->lclass = f->lclass;
    r->start_ns = c->frame_ns;
    if (f->retry == REQ_RETRY_NONE && f->lclass != LAT_NONE && slowlog_on())
        r->kept = buf_append(&r->reply, bytes, len < SLOWLOG_KEEP ? len : SLOWLOG_KEEP) == 0;
    r->conn = s;
    r->sr.on_reply = req_on_reply;
    r->sr.deadline = f->deadline;
    r->sr.replies = f->replies;
    conn_add(c, s);
    proxy->stats.forwarded++;
    server_send(s, &r->sr, bytes, len);
}

struct srvreq *client_wait(struct client *c, struct server *via)
{
    assert(via != NULL);
    struct req *r = req_get(c);
    if (r == NULL) {
        client_out_of_memory(c);
        return NULL;
    }
    r->forwarded = 1;
    r->conn = via;
    r->lclass = LAT_l1;
    r->start_ns = c->frame_ns;
    r->sr.on_reply = req_on_reply;
    conn_add(c, via);
    return &r->sr;
}

struct srvreq *client_place(struct client *c)
{
    struct req *r = req_get(c);
    if (r == NULL) {
        client_out_of_memory(c);
        return NULL;
    }
    r->forwarded = 1;
    r->sr.on_reply = req_on_reply;
    c->inflight++;
    return &r->sr;
}

struct client *client_place_owner(const struct srvreq *sr)
{
    const struct req *r = (const struct req *)((const char *)sr - offsetof(struct req, sr));
    return r->client;
}

int client_conns_reserve(struct client *c, unsigned n)
{
    unsigned free_entries = 0;
    for (unsigned i = 0; i < c->nconns; i++)
        free_entries += c->conns[i].s == NULL;
    return free_entries >= n ? 0 : conns_grow(c, c->nconns + n - free_entries);
}

void client_part_sent(struct client *c, struct server *s)
{
    conn_add(c, s);
}

void client_part_done(struct client *c, struct server *s)
{
    conn_del(c, s);
}

/* ---- reading and framing ------------------------------------------------ */

static void client_read_start(struct client *c);
static void client_read_stop(struct client *c);

/* Drop the input bytes every framed request is done with. */
static void client_trim(struct client *c)
{
    if (c->rf == NULL)
        return;
    uint64_t keep = reqframe_consumed(c->rf);
    size_t drop = (size_t)(keep - c->in_base);

    if (drop == 0)
        return;
    if (drop >= c->in.len) {
        c->in.len = 0;
        c->in_base = keep;
        buf_shrink(&c->in, CLIENT_IN_KEEP);
        return;
    }
    memmove(c->in.data, c->in.data + drop, c->in.len - drop);
    c->in.len -= drop;
    c->in_base = keep;
}

static void client_protocol_error(struct client *c, const char *msg)
{
    proxy->stats.protocol_errors++;
    log_verbose("Client %llu: %s; closing", (unsigned long long)c->id, msg);
    struct buf *b = client_reply_buf(c);
    if (b != NULL)
        reply_errorf(b, "ERR %s", msg);
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
    client_read_stop(c);
    client_reply_done(c);
}

/* Frame and dispatch every complete request in c->in. */
static void client_process(struct client *c)
{
    while (!(c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER_REPLY))) {
        struct reqmsg *m = c->msg;
        if (!(c->flags & CLIENT_STALLED)) {
            if (reqframe_consumed(c->rf) >= c->in_base + c->in.len)
                break;                  /* every byte framed: nothing to ask */
            int rc = reqframe_next(c->rf, c->in.data, c->in.len, c->in_base, m);
            if (rc == REQ_MORE) {
                uint64_t unread = c->in_base + c->in.len - reqframe_consumed(c->rf);
                if ((long long)unread > proxy->cfg->client_query_buffer_limit)
                    client_protocol_error(c, "Protocol error: query buffer limit exceeded");
                break;
            }
            if (rc == REQ_ERR) {
                client_protocol_error(c, c->rf->errstr);
                break;
            }
            reqmsg_resolve(c->rf, m, c->in.data, c->in_base);
            proxy->stats.commands++;
            /* CLIENT REPLY: OFF drops every reply, SKIP the next one. */
            c->drop_cur = c->reply_mode != CLIENT_REPLY_ON;
            if (c->reply_mode == CLIENT_REPLY_SKIP)
                c->reply_mode = CLIENT_REPLY_ON;
            if (tracking_active())
                tracking_seen(c, cmd_lookup_argv(m->argc, m->argv, m->argvlen), m);
        }
        if (climits_backpressure(c)) {
            /* Its replies pile up: read no more of it, forward nothing
             * more for it, until it has read them (client_out_drained). */
            if (!(c->flags & CLIENT_BACKPRESSURE))
                proxy->stats.backpressure_waits++;
            c->flags |= CLIENT_STALLED | CLIENT_BACKPRESSURE;
            client_read_stop(c);
            return;
        }
        c->flags &= ~CLIENT_STALLED;
        if (router_dispatch(c, m) == ROUTER_STALL) {
            c->flags |= CLIENT_STALLED;
            proxy->stats.stalls++;
            client_read_stop(c);
            return;
        }
    }
    if (!(c->flags & CLIENT_CLOSING))
        client_trim(c);
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct client *c = h->data;
    (void)suggested;

    if (c->tls) {
        *b = uv_buf_init(tls_scratch, sizeof(tls_scratch));
        return;
    }
    if (c->in.len > 0)
        client_trim(c);
    if (c->in.cap - c->in.len < CLIENT_READ_CHUNK && buf_reserve(&c->in, CLIENT_READ_CHUNK) != 0) {
        *b = uv_buf_init(NULL, 0);
        return;
    }
    *b = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

/* Framer, message and in-flight table in one allocation, made on the
 * first read (idle clients cost less). 0 or -ENOMEM. */
static int client_framer(struct client *c)
{
    if (c->rf != NULL)
        return 0;
    struct {
        struct reqframe rf;
        struct reqmsg msg;
        struct client_conn conns[CLIENT_CONNS];
    } *fm = malloc(sizeof(*fm));
    if (fm == NULL)
        return -ENOMEM;
    memset(fm->conns, 0, sizeof(fm->conns));
    c->conns = fm->conns;
    c->nconns = CLIENT_CONNS;
    c->rf = &fm->rf;
    c->msg = &fm->msg;
    reqframe_init(c->rf, &proxy->limits);
    return 0;
}

/* The TLS session failed: log why (once), send the engine's alert, close. */
static void client_tls_failed(struct client *c, const char *what)
{
    log_warn("TLS client %llu: %s: %s; closing", (unsigned long long)c->id, what, tls_reason(c->tls));
    proxy->stats.tls_failures++;
    buf_reset(outq_buf(&c->out));     /* plaintext cannot be sent any more */
    c->out.before_write = NULL;
    tls_take_out(c->tls, outq_buf(&c->out));
    outq_schedule(&c->out);
    client_close_after_reply(c);
}

/* n bytes of ciphertext arrived: decrypt what they complete into c->in.
 * Returns 0, or -1 when the session ended (closing). */
static int client_tls_input(struct client *c, const char *p, size_t n)
{
    long got;

    if (tls_feed(c->tls, p, n) < 0) {
        client_tls_failed(c, tls_handshake_done(c->tls) ? "TLS error" : "TLS handshake failed");
        return -1;
    }
    for (;;) {
        if (c->in.len > 0)
            client_trim(c);
        if (c->in.cap - c->in.len < CLIENT_READ_CHUNK && buf_reserve(&c->in, CLIENT_READ_CHUNK) != 0) {
            client_close(c);
            return -1;
        }
        got = tls_read(c->tls, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (got <= 0)
            break;
        c->in.len += (size_t)got;
    }
    outq_schedule(&c->out);           /* handshake replies */
    if (got == TLS_EOF) {
        client_close(c);
        return -1;
    }
    if (got < 0) {
        client_tls_failed(c, tls_handshake_done(c->tls) ? "TLS error" : "TLS handshake failed");
        return -1;
    }
    return 0;
}

/* outq hook: encrypt this iteration's replies in one go, with the
 * engine's own output (handshake, alerts). */
static int client_tls_encrypt(struct outq *q)
{
    struct client *c = (struct client *)((char *)q - offsetof(struct client, out));
    size_t n = buf_unread(&q->pending);

    if (n > 0 && tls_write(c->tls, q->pending.data + q->pending.pos, n) < 0)
        return -EPROTO;
    buf_reset(&q->pending);
    if (tls_take_out(c->tls, &q->pending) < 0)
        return -ENOMEM;
    return 0;
}

/* Warm the L1's memory for the GETs this read brought, before any is
 * served (l1_prefetch: their cache misses overlap). A look ahead only: the
 * framer still parses every byte. */
static void client_prefetch(struct client *c)
{
    const char *keys[CLIENT_PREFETCH_MAX];
    size_t lens[CLIENT_PREFETCH_MAX], used;
    int n = 0;

    if (!l1_on() || c->pinned != NULL)
        return;
    size_t off = (size_t)(reqframe_consumed(c->rf) - c->in_base);
    const char *p = c->in.data + off;
    size_t left = c->in.len - off;
    while (n < CLIENT_PREFETCH_MAX && (used = reqpeek_get(p, left, &keys[n], &lens[n])) > 0) {
        p += used;
        left -= used;
        n++;
    }
    if (n > 1)                          /* one alone has nothing to overlap with */
        l1_prefetch(keys, lens, n);
}

static void client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    struct client *c = stream->data;

    if (nread < 0) {
        /* verbose only: load balancers' TCP checks connect and leave */
        if (c->tls && !tls_handshake_done(c->tls) && tls_status(c->tls) == 0)
            log_verbose("TLS client %llu: connection closed during the TLS handshake",
                        (unsigned long long)c->id);
        client_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->tls) {
        if (client_tls_input(c, b->base, (size_t)nread) < 0)
            return;
    } else {
        c->in.len += (size_t)nread;
    }
    c->last_active = uv_now(proxy->loop);
    c->frame_ns = latency_now_ns();     /* one clock read per read, not per request */
    if (client_framer(c) < 0) {
        client_close(c);
        return;
    }
    client_prefetch(c);
    client_process(c);
    if (outq_size(&c->out) > CLIENT_OUT_PAUSE)
        client_read_stop(c);
    climits_account(c);
}

static void client_read_start(struct client *c)
{
    if (c->flags & (CLIENT_READING | CLIENT_CLOSING | CLIENT_STALLED | CLIENT_CLOSE_AFTER_REPLY | CLIENT_INTERNAL))
        return;
    if (uv_read_start(&c->h.stream, client_alloc, client_read) == 0)
        c->flags |= CLIENT_READING;
}

static void client_read_stop(struct client *c)
{
    if (!(c->flags & CLIENT_READING))
        return;
    uv_read_stop(&c->h.stream);
    c->flags &= ~CLIENT_READING;
}

/* ---- resuming after a stall -------------------------------------------- */

/* Resumes run from outq's before-flush hook: never from inside a server's
 * reply loop, so the request and reply paths do not recurse into each other. */
static void client_schedule_resume(struct client *c)
{
    if (c->flags & (CLIENT_RESUME_QUEUED | CLIENT_CLOSING))
        return;
    c->flags |= CLIENT_RESUME_QUEUED;
    c->resume_next = resume_head;
    resume_head = c;
}

static void client_unqueue_resume(struct client *c)
{
    if (!(c->flags & CLIENT_RESUME_QUEUED))
        return;
    for (struct client **pp = &resume_head; *pp; pp = &(*pp)->resume_next) {
        if (*pp == c) {
            *pp = c->resume_next;
            break;
        }
    }
    c->flags &= ~CLIENT_RESUME_QUEUED;
}

void client_wait_resp3(struct srvreq *sr, unsigned shape)
{
    struct req *r = (struct req *)((char *)sr - offsetof(struct req, sr));
    r->resp3_up = (uint8_t)shape;
}

void client_run_resumes(void)
{
    while (resume_head) {
        struct client *c = resume_head;
        resume_head = c->resume_next;
        c->flags &= ~CLIENT_RESUME_QUEUED;
        client_resume(c);
    }
}

void client_resume(struct client *c)
{
    if (!(c->flags & CLIENT_STALLED) || (c->flags & CLIENT_CLOSING))
        return;
    client_process(c);
    if (!(c->flags & CLIENT_STALLED) && outq_size(&c->out) <= CLIENT_OUT_PAUSE)
        client_read_start(c);
}

/* ---- output ------------------------------------------------------------ */

static void client_out_error(struct outq *q, int status)
{
    struct client *c = (struct client *)((char *)q - offsetof(struct client, out));
    (void)status;
    client_close(c);
}

static void client_out_drained(struct outq *q)
{
    struct client *c = (struct client *)((char *)q - offsetof(struct client, out));
    client_maybe_finish(c);
    if (c->flags & CLIENT_CLOSING)
        return;
    if (c->flags & CLIENT_BACKPRESSURE) {
        c->flags &= ~CLIENT_BACKPRESSURE;
        client_schedule_resume(c);
    }
    if ((c->flags & CLIENT_PUSH_PAUSED) && c->pinned != NULL) {
        c->flags &= ~CLIENT_PUSH_PAUSED;
        server_read_resume(c->pinned);
    }
    if (!(c->flags & CLIENT_READING))
        client_read_start(c);
    climits_account(c);
}

/* ---- life cycle ------------------------------------------------------- */

static void client_closed(uv_handle_t *h)
{
    struct client *c = h->data;

    if (c->rf) {
        reqframe_free(c->rf);
        free(c->rf);
    }
    if (c->nconns > CLIENT_CONNS)
        free(c->conns);                 /* grown out of the framer's allocation */
    buf_free(&c->in);
    outq_free(&c->out);
    tls_conn_free(c->tls);
    free(c->name);
    free(c);
}

static void client_pinned_closed(struct server *s)
{
    struct client *c = s->data;

    if (c != NULL) {
        c->pinned = NULL;
        /* Its state (transaction, subscriptions, db) is gone with it. */
        client_close_after_reply(c);
    }
    backend_server_free(s);
}

void client_close(struct client *c)
{
    if (c->flags & CLIENT_CLOSING)
        return;
    c->flags |= CLIENT_CLOSING;
    client_id_del(c);
    tracking_client_gone(c);
    climits_forget(c);
    client_unqueue_resume(c);
    client_read_stop(c);
    outq_detach(&c->out);
    if (!(c->flags & CLIENT_INTERNAL)) {
        if (c->prev)
            c->prev->next = c->next;
        else
            proxy->clients = c->next;
        if (c->next)
            c->next->prev = c->prev;
        proxy->nclients--;
    }

    while (c->head) {
        struct req *r = c->head;
        c->head = r->next;
        if (r->forwarded) {
            r->client = NULL;           /* its reply is read and dropped */
            srvreq_abandon(&r->sr);
        } else {
            req_put(r);
        }
    }
    c->tail = NULL;
    l1_write_end(c->txn_l1_token);
    c->txn_l1_token = NULL;
    txn_forget(c);
    if (c->pinned) {
        struct server *s = c->pinned;
        c->pinned = NULL;
        s->data = NULL;
        server_close(s, "closed: its client left");
    }
    if (c->flags & CLIENT_INTERNAL)
        client_closed((uv_handle_t *)&c->h); /* no socket: freed now */
    else
        uv_close((uv_handle_t *)&c->h, client_closed);
}

struct client *client_internal_open(const struct acl_user *user)
{
    struct client *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->h.stream.data = c;
    c->id = next_client_id++;
    c->flags = CLIENT_INTERNAL;
    outq_init(&c->out, client_out_error);
    c->last_active = uv_now(proxy->loop);
    if (user != NULL)
        auth_client_as(c, user);
    else
        auth_client_init(c);
    return c;
}

int client_feed(struct client *c, const char *bytes, size_t len)
{
    assert(c->flags & CLIENT_INTERNAL);
    if (client_framer(c) < 0 || buf_append(&c->in, bytes, len) != 0)
        return -ENOMEM;
    c->frame_ns = latency_now_ns();
    client_process(c);
    return 0;
}

void client_close_after_reply(struct client *c)
{
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
    client_read_stop(c);
    /* Requests still waiting on the dead pinned connection were answered
     * with errors already; write what is left, then close. */
    client_maybe_finish(c);
}

static void client_push(struct server *s, const char *reply, size_t len)
{
    struct client *c = s->data;
    if (c == NULL)
        return;
    outq_append(&c->out, reply, len);
    if (climits_output_check(c))
        return;
    climits_account(c);
    /* A class without any limit (MONITOR is "normal", as in Redis):
     * stop reading its connection rather than hold without bound. Redis
     * keeps the rest, under its own limits, until the client reads. */
    int cls = (c->flags & CLIENT_PUBSUB) ? OBUF_PUBSUB : OBUF_NORMAL;
    if (proxy->cfg->client_obuf[cls].hard == 0 && proxy->cfg->client_obuf[cls].soft == 0 &&
        !(c->flags & CLIENT_PUSH_PAUSED) &&
        outq_size(&c->out) > (size_t)proxy->cfg->client_backpressure) {
        c->flags |= CLIENT_PUSH_PAUSED;
        server_read_pause(s);
    }
}

void client_unpin(struct client *c)
{
    struct server *s = c->pinned;

    c->flags &= ~(CLIENT_PUSH | CLIENT_MULTI | CLIENT_SUBSCRIBED | CLIENT_PUBSUB | CLIENT_PUSH_PAUSED);
    l1_write_end(c->txn_l1_token);
    c->txn_l1_token = NULL;
    if (s == NULL)
        return;
    c->pinned = NULL;
    s->data = NULL;                     /* client_pinned_closed: only frees it */
    server_close(s, "closed: its client ended the session (RESET, or another node)");
}

void client_enter_push(struct client *c)
{
    c->flags |= CLIENT_PUSH;
    c->pinned->push = client_push;
}

struct server *client_pin(struct client *c, struct backend *b)
{
    struct server *s = backend_dedicated_proto(b, c->proto);
    if (s == NULL)
        return NULL;
    s->data = c;
    s->on_close = client_pinned_closed;
    s->on_push = client_push;           /* RESP3: pub/sub pushes between replies */
    c->pinned = s;
    return s;
}

int client_accept(uv_stream_t *listener, int is_unix, struct tls_ctx *tls)
{
    struct client *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL)
        return -ENOMEM;
    if (is_unix)
        rc = uv_pipe_init(proxy->loop, &c->h.pipe, 0);
    else
        rc = uv_tcp_init(proxy->loop, &c->h.tcp);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->h.stream.data = c;
    c->id = next_client_id++;
    c->flags = is_unix ? CLIENT_UNIX : 0;
    c->proto = 2;
    client_id_add(c);
    outq_init(&c->out, client_out_error);
    c->out.on_drained = client_out_drained;

    /* Link first so client_close works on every path below. */
    c->next = proxy->clients;
    if (proxy->clients)
        proxy->clients->prev = c;
    proxy->clients = c;
    proxy->nclients++;

    rc = uv_accept(listener, &c->h.stream);
    if (rc < 0) {
        client_close(c);
        return rc;
    }
    proxy->stats.connections_received++;
    if (!is_unix)
        uv_tcp_nodelay(&c->h.tcp, 1);
    if (tls != NULL) {
        if ((c->tls = tls_conn_new(tls, NULL)) == NULL) {
            client_close(c);
            return -ENOMEM;
        }
        c->out.before_write = client_tls_encrypt;
    }
    outq_attach(&c->out, &c->h.stream);
    c->last_active = c->created = uv_now(proxy->loop);
    auth_client_init(c);

    if (!is_unix) {
        struct sockaddr_storage peer;
        int len = sizeof(peer);
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&peer, &len) == 0 &&
            auth_refuses_peer((struct sockaddr *)&peer)) {
            proxy->stats.protected_denied++;
            outq_append(&c->out, PROTECTED_DENIED_REPLY, sizeof(PROTECTED_DENIED_REPLY) - 1);
            c->flags |= CLIENT_CLOSE_AFTER_REPLY;
            return 0;
        }
    }

    if ((int)proxy->nclients > proxy->cfg->maxclients || proxy->shutting_down) {
        proxy->stats.rejected_connections++;
        outq_append(&c->out, "-ERR max number of clients reached\r\n", 36);
        c->flags |= CLIENT_CLOSE_AFTER_REPLY;
        return 0;
    }
    client_read_start(c);
    return 0;
}

void client_close_pinned(struct backend *b, const char *msg)
{
    struct client *next;
    for (struct client *c = proxy->clients; c; c = next) {
        next = c->next;
        if (c->pinned == NULL || c->pinned->backend != b)
            continue;
        if (c->flags & CLIENT_PUSH) {
            reply_error(outq_buf(&c->out), msg);
            outq_schedule(&c->out);
        }
        server_close(c->pinned, "closed: primary changed");
    }
}

void client_close_all(void)
{
    while (proxy->clients)
        client_close(proxy->clients);
    buf_free(&drop_buf);
}

int client_any_pending(void)
{
    for (struct client *c = proxy->clients; c; c = c->next)
        if (c->inflight > 0 || outq_size(&c->out) > 0)
            return 1;
    return 0;
}

void client_idle_check(uint64_t now)
{
    uint64_t limit = (uint64_t)proxy->cfg->timeout * 1000;
    if (limit == 0)
        return;
    struct client *c = proxy->clients;
    while (c) {
        struct client *next = c->next;
        /* Like Redis: blocked and subscribed clients are not idle. */
        if (c->inflight == 0 && !(c->flags & (CLIENT_PUSH | CLIENT_SUBSCRIBED)) &&
            now - c->last_active > limit) {
            log_verbose("Closing idle client %llu", (unsigned long long)c->id);
            client_close(c);
        }
        c = next;
    }
}
