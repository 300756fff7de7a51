/*
 * l1/track.c — an origin's invalidation channel: one subscriber, fill
 * connections, one or all of them tracking, redirected to it (per origin:
 * in cluster mode each primary node has its own, l1/origin.c).
 *
 *   subscriber: CLIENT ID ─> SUBSCRIBE __redis__:invalidate ─> sub_push:
 *               drop the keys' entries, cancel their fills
 *   fill conn i (l1-fill-connections of them): SCRIPT LOAD check ─> up,
 *               after CLIENT TRACKING on REDIRECT <subscriber id>
 *                 l1-tracking broadcast: BCAST, on fill conn 0 only
 *                 l1-tracking keys: on every fill conn
 *   ready = subscriber up and every fill connection up
 *   the subscriber or a tracking fill conn lost ─> unready: the origin's
 *               entries unverified, fills cancelled; reconnect with
 *               backoff, then revalidate (check.c)
 *
 * Broadcast: Redis reports every write of every key (no per-key table, so
 * tracking_total_keys stays 0 however many keys the L1 has read), and a
 * fill may be read on any connection to the origin (fill.c). Keys: Redis
 * remembers each key read on a tracking connection until it changes (or
 * tracking-table-max-keys evicts it, reported as an invalidation); losing
 * such a connection loses the tracking of every key read on it (Redis
 * forgets its tracked keys' owner), so it unreadies the L1 as the
 * subscriber's loss does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/topology.h"
#include "base/log.h"
#include "base/outq.h"
#include "l1/internal.h"

#define TRACK_RECONNECT_MIN_MS 100      /* first reconnect delay */
#define TRACK_RECONNECT_MAX_MS 3200     /* longest reconnect delay */

static void track_connect(struct l1_origin *o);
static void connect_fill(struct l1_origin *o, int i);
static void setup_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed);

/* Internal setup requests (CLIENT ID, CLIENT TRACKING, SCRIPT LOAD). */
struct setup_req {
    struct srvreq sr;                   /* on a fill or the subscriber connection */
    int step;                           /* which step this answers */
    int conn;                           /* fill connection index (-1: subscriber) */
    struct l1_origin *o;                /* whose connection */
};

enum { STEP_SUB_ID = 1, STEP_TRACKING, STEP_LOAD_CHECK };

static void setup_send(struct l1_origin *o, struct server *s, int conn, int step, const char *bytes, size_t len)
{
    struct setup_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        server_close(s, "out of memory");
        return;
    }
    r->step = step;
    r->conn = conn;
    r->o = o;
    r->sr.on_reply = setup_on_reply;
    server_send(s, &r->sr, bytes, len);
}

static int fills_up(const struct l1_origin *o)
{
    for (int i = 0; i < L.nfill; i++)
        if (!o->fills_c[i].up)
            return 0;
    return 1;
}

static void check_ready(struct l1_origin *o)
{
    if (o->ready || o->retired || !o->sub_up || !fills_up(o))
        return;
    o->ready = 1;
    o->backoff = TRACK_RECONNECT_MIN_MS;
    origin_ready_changed();
    log_notice("L1 tracking on %s (%d fill connections, invalidations to client %lld): serving from the L1",
               o->b->name, L.nfill, o->sub_id);
    if (l1store_count(L.store) > 0) {
        /* Its entries were unverified when it was lost; a walk may have
         * passed them meanwhile (another origin was ready): visit again. */
        if (L.cluster)
            origin_unverify(o);
        L.reval_active = 1;
        check_reval_next();
    }
}

/* Does fill connection i carry tracking? (broadcast: conn 0 alone, so
 * each change is reported once) */
static int tracks(int i)
{
    return l1_set->tracking == L1_TRACK_KEYS || i == 0;
}

/* (Re)point fill connection i's tracking at the current subscriber. */
static void send_tracking(struct l1_origin *o, int i)
{
    struct buf *b = &L.req;
    char id[32];
    int n = snprintf(id, sizeof(id), "%lld", o->sub_id);
    int bcast = l1_set->tracking == L1_TRACK_BROADCAST;

    if (!tracks(i))
        return;
    buf_reset(b);
    buf_printf(b, "*%d\r\n", 5 + bcast);
    l1_req_arg(b, "CLIENT", 6);
    l1_req_arg(b, "TRACKING", 8);
    l1_req_arg(b, "on", 2);
    l1_req_arg(b, "REDIRECT", 8);
    l1_req_arg(b, id, (size_t)n);
    if (bcast)
        l1_req_arg(b, "BCAST", 5);
    setup_send(o, o->fills_c[i].s, i, STEP_TRACKING, b->data, b->len);
}

static void send_script_load(struct l1_origin *o, int i)
{
    struct buf *b = &L.req;
    buf_reset(b);
    buf_printf(b, "*3\r\n");
    l1_req_arg(b, "SCRIPT", 6);
    l1_req_arg(b, "LOAD", 4);
    l1_req_arg(b, check_script, strlen(check_script));
    setup_send(o, o->fills_c[i].s, i, STEP_LOAD_CHECK, b->data, b->len);
}

/* Invalidation pushes: ["message", "__redis__:invalidate", [keys] | nil]
 * (Redis 7.0 sends the flush-everything nil as $-1). */
static void sub_push(struct server *s, const char *p, size_t len)
{
    (void)s;
    const char *end = p + len;
    static const char hdr[] = "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n";
    if (len < sizeof(hdr) - 1 || memcmp(p, hdr, sizeof(hdr) - 1) != 0)
        return;                         /* subscribe confirmations */
    p += sizeof(hdr) - 1;
    if (*p != '*' && *p != '$')
        return;
    long long n = strtoll(p + 1, NULL, 10);
    if (*p == '$' && n >= 0)
        return;
    if (n < 0) {
        /* Null: everything tracked is invalid (FLUSHALL, tracking reset). */
        L.st.inv_flush += l1store_flush(L.store);
        fill_cancel_all();
        return;
    }
    p = memchr(p, '\n', (size_t)(end - p));
    if (p == NULL)
        return;
    p++;
    for (long long i = 0; i < n && p < end; i++) {
        if (*p != '$')
            return;
        char *e;
        long long kl = strtoll(p + 1, &e, 10);
        if (kl < 0 || e + 2 + kl + 2 > end)
            return;
        const char *key = e + 2;
        L.st.inv_tracking += l1store_drop_key(L.store, key, (size_t)kl);
        fill_cancel_key(key, (size_t)kl);
        p = key + kl + 2;
    }
}

static void setup_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    struct setup_req *r = (struct setup_req *)sr;
    struct l1_origin *o = r->o;
    int step = r->step, i = r->conn;
    free(r);
    if (failed || L.stopping)
        return;                         /* the connection's close handler acts */
    if (reply[0] == '-') {
        log_warn("L1 setup step %d refused by %s: %.*s", step, o->b->name, (int)(len > 2 ? len - 2 : len),
                 reply);
        if (step == STEP_SUB_ID && o->sub)
            server_close(o->sub, "setup refused");
        else if (i >= 0 && o->fills_c[i].s)
            server_close(o->fills_c[i].s, "setup refused");
        return;
    }
    switch (step) {
    case STEP_SUB_ID:
        o->sub_id = strtoll(reply + 1, NULL, 10);
        o->sub->push = sub_push;
        server_send_raw(o->sub, "*2\r\n$9\r\nSUBSCRIBE\r\n$20\r\n__redis__:invalidate\r\n", 47);
        o->sub_up = 1;
        /* Fill connections may have survived: redirect them here. */
        for (int k = 0; k < L.nfill; k++) {
            if (o->fills_c[k].s && o->fills_c[k].s->state != SERVER_CLOSING)
                send_tracking(o, k);
            else if (o->fills_c[k].s == NULL)
                connect_fill(o, k);
        }
        break;
    case STEP_TRACKING:
        if (o->fills_c[i].up)
            check_ready(o);             /* a re-redirect after the subscriber came back */
        break;
    case STEP_LOAD_CHECK:
        o->fills_c[i].up = 1;
        check_ready(o);
        break;
    }
}

/* Fills of o's keys (o's entries) read at an unknown point. */
static int key_of_origin(const char *key, size_t klen, void *ctx)
{
    return origin_owns_key(ctx, key, klen);
}

void track_unready(struct l1_origin *o, const char *why)
{
    if (o->ready) {
        L.st.tracking_resets++;
        log_warn("L1 invalidation channel of %s lost (%s): its entries unverified until revalidated", o->b->name,
                 why);
    }
    o->ready = 0;
    origin_ready_changed();
    if (!L.ready)
        L.reval_active = 0;
    origin_unverify(o);
    /* Fills in flight read at an unknown point: deliver, never store. */
    if (L.cluster)
        fill_cancel_if(key_of_origin, o);
    else
        fill_cancel_all();
    if (o->reconnect_at == 0 && !o->retired) {
        o->reconnect_at = l1_now() + o->backoff;
        o->backoff = o->backoff * 2 > TRACK_RECONNECT_MAX_MS ? TRACK_RECONNECT_MAX_MS : o->backoff * 2;
    }
}

static void conn_closed(struct server *s)
{
    const char *why = s->err[0] ? s->err : "closed";
    for (int k = 0; k < L.norigins; k++) {
        struct l1_origin *o = L.origins[k];
        for (int i = 0; i < L.nfill; i++) {
            if (s == o->fills_c[i].s) {
                o->fills_c[i].s = NULL;
                o->fills_c[i].up = 0;
                if (!L.stopping && tracks(i))
                    track_unready(o, why);
            }
        }
        if (s == o->sub) {
            o->sub = NULL;
            o->sub_up = 0;
            if (!L.stopping)
                track_unready(o, why);
        }
    }
    backend_server_free(s);
}

static void connect_sub(struct l1_origin *o)
{
    o->sub = backend_dedicated(o->b);
    if (o->sub == NULL)
        return;
    o->sub->on_close = conn_closed;
    setup_send(o, o->sub, -1, STEP_SUB_ID, "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n", 24);
}

static void connect_fill(struct l1_origin *o, int i)
{
    o->fills_c[i].s = backend_dedicated(o->b);
    if (o->fills_c[i].s == NULL)
        return;
    o->fills_c[i].s->on_close = conn_closed;
    send_tracking(o, i);
    send_script_load(o, i);
}

/* Bring up whatever is missing (from the cron, after the backoff). */
static void track_connect(struct l1_origin *o)
{
    int missing = 0;
    o->reconnect_at = 0;
    if (o->sub == NULL)
        connect_sub(o);
    for (int i = 0; i < L.nfill; i++) {
        if (o->fills_c[i].s == NULL && o->sub_up)
            connect_fill(o, i);
        missing |= o->fills_c[i].s == NULL && o->sub_up;
    }
    if (o->sub == NULL || missing) {
        o->reconnect_at = l1_now() + o->backoff;
        o->backoff = o->backoff * 2 > TRACK_RECONNECT_MAX_MS ? TRACK_RECONNECT_MAX_MS : o->backoff * 2;
    }
}

void track_reset(struct l1_origin *o, const char *why)
{
    track_unready(o, why);
    for (int i = 0; i < L.nfill; i++)
        if (o->fills_c[i].s)
            server_close(o->fills_c[i].s, why);
    if (o->sub)
        server_close(o->sub, why);
    o->backoff = TRACK_RECONNECT_MIN_MS;
    o->reconnect_at = o->retired ? 0 : l1_now();
}

/* Static mode: Sentinel (or a reload) named another primary. */
static void on_primary_change(struct topology *t, void *ud)
{
    (void)t;
    (void)ud;
    if (!L.cluster)
        track_reset(L.origins[0], "closed: primary changed");
}

void track_cron(struct l1_origin *o)
{
    if (o->retired)
        return;
    if (o->reconnect_at && l1_now() >= o->reconnect_at)
        track_connect(o);
    /* The subscriber is back but a fill connection is not: open it now. */
    if (o->sub_up && o->reconnect_at == 0)
        for (int i = 0; i < L.nfill; i++)
            if (o->fills_c[i].s == NULL) {
                track_connect(o);
                break;
            }
}

void track_start(struct l1_origin *o)
{
    o->backoff = TRACK_RECONNECT_MIN_MS;
    o->reconnect_at = 1;                /* connect on the next cron tick */
    if (o->index == 0 && !L.cluster)
        topology_listen(l1_topo, on_primary_change, NULL);
}

void track_stop(struct l1_origin *o)
{
    for (int i = 0; i < L.nfill; i++)
        if (o->fills_c[i].s)
            server_close(o->fills_c[i].s, "shutting down");
    if (o->sub)
        server_close(o->sub, "shutting down");
}

/* Take the invalidations already on the subscriber's socket before
 * answering from the L1 (once per loop iteration): a client that saw a
 * write elsewhere complete and then reads must not get the old value just
 * because its socket was served first. */
int track_drain(struct l1_origin *o)
{
    int did = 0;
    if (o == NULL)
        return 0;
    if (o->ready && o->drained != outq_iteration()) {
        o->drained = outq_iteration();
        did = 1;
        if (server_read_now(o->sub) < 0)
            track_unready(o, "invalidation channel closed");
    }
    if (!o->ready)
        return did;
    for (int i = 0; i < L.nfill; i++) {
        struct server *s = o->fills_c[i].s;
        if (s == NULL || s->state != SERVER_CONNECTED) {
            track_unready(o, "fill connection closed");
            return did;
        }
    }
    return did;
}

int track_drain_all(void)
{
    int did = 0;
    for (int i = 0; i < L.norigins; i++)
        if (L.origins[i]->ready)
            did |= track_drain(L.origins[i]);
    return did;
}

/* Is s one of o's fill connections? */
static int origin_owns_server(const struct l1_origin *o, const struct server *s)
{
    for (int i = 0; i < L.nfill; i++)
        if (s != NULL && o->fills_c[i].s == s)
            return 1;
    return 0;
}

int track_owns(const struct server *s)
{
    for (int k = 0; k < L.norigins; k++)
        if (origin_owns_server(L.origins[k], s))
            return 1;
    return 0;
}

int track_shares(const struct l1_origin *o, const struct server *s)
{
    return l1_set->tracking == L1_TRACK_BROADCAST && s->backend == o->b && s->proto == 2 &&
           backend_is_shared(o->b, s);
}

int track_shares_any(const struct server *s)
{
    for (int k = 0; k < L.norigins; k++)
        if (track_shares(L.origins[k], s))
            return 1;
    return 0;
}

struct server *track_pick(struct l1_origin *o, struct server *want)
{
    if (want != NULL && origin_owns_server(o, want))
        return want->state == SERVER_CONNECTED ? want : NULL;
    /* The client's shared connection, still connecting maybe: the fill
     * queues behind the client's requests there. */
    if (want != NULL && track_shares(o, want))
        return want->state != SERVER_CLOSING ? want : NULL;
    for (int k = 0; k < L.nfill; k++) {
        struct track_conn *c = &o->fills_c[o->rr++ % (unsigned)L.nfill];
        if (c->up && c->s && c->s->state == SERVER_CONNECTED)
            return c->s;
    }
    return NULL;
}
