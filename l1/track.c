/*
 * l1/track.c — the invalidation channel: one subscriber, several tracking
 * fill connections redirected to it.
 *
 *   subscriber: CLIENT ID ─> SUBSCRIBE __redis__:invalidate ─> sub_push:
 *               drop the keys' entries, cancel their fills
 *   fill conn i (l1-fill-connections of them): CLIENT TRACKING on
 *               REDIRECT <subscriber id>, SCRIPT LOAD check ─> up
 *   ready = subscriber up and every fill connection up
 *   any of them lost ─> unready: every entry unverified, fills cancelled;
 *               reconnect with backoff, then revalidate (check.c)
 *
 * Losing a fill connection loses the tracking of every key read on it
 * (Redis forgets its tracked keys' owner), so it unreadies the L1 as the
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

static void track_connect(void);
static void connect_fill(int i);
static void setup_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed);

/* Internal setup requests (CLIENT ID, CLIENT TRACKING, SCRIPT LOAD). */
struct setup_req {
    struct srvreq sr;                   /* on a fill or the subscriber connection */
    int step;                           /* which step this answers */
    int conn;                           /* fill connection index (-1: subscriber) */
};

enum { STEP_SUB_ID = 1, STEP_TRACKING, STEP_LOAD_CHECK };

static void setup_send(struct server *s, int conn, int step, const char *bytes, size_t len)
{
    struct setup_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        server_close(s, "out of memory");
        return;
    }
    r->step = step;
    r->conn = conn;
    r->sr.on_reply = setup_on_reply;
    server_send(s, &r->sr, bytes, len);
}

static int fills_up(void)
{
    for (int i = 0; i < L.nfill; i++)
        if (!L.fills_c[i].up)
            return 0;
    return 1;
}

static void check_ready(void)
{
    if (L.ready || !L.sub_up || !fills_up())
        return;
    L.ready = 1;
    L.backoff = TRACK_RECONNECT_MIN_MS;
    log_notice("L1 tracking on (%d fill connections, invalidations to client %lld): serving from the L1",
               L.nfill, L.sub_id);
    if (l1store_count(L.store) > 0) {
        L.reval_active = 1;
        check_reval_next();
    }
}

/* (Re)point fill connection i's tracking at the current subscriber. */
static void send_tracking(int i)
{
    struct buf *b = &L.req;
    char id[32];
    int n = snprintf(id, sizeof(id), "%lld", L.sub_id);

    buf_reset(b);
    buf_printf(b, "*5\r\n");
    l1_req_arg(b, "CLIENT", 6);
    l1_req_arg(b, "TRACKING", 8);
    l1_req_arg(b, "on", 2);
    l1_req_arg(b, "REDIRECT", 8);
    l1_req_arg(b, id, (size_t)n);
    setup_send(L.fills_c[i].s, i, STEP_TRACKING, b->data, b->len);
}

static void send_script_load(int i)
{
    struct buf *b = &L.req;
    buf_reset(b);
    buf_printf(b, "*3\r\n");
    l1_req_arg(b, "SCRIPT", 6);
    l1_req_arg(b, "LOAD", 4);
    l1_req_arg(b, check_script, strlen(check_script));
    setup_send(L.fills_c[i].s, i, STEP_LOAD_CHECK, b->data, b->len);
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
    int step = r->step, i = r->conn;
    free(r);
    if (failed || L.stopping)
        return;                         /* the connection's close handler acts */
    if (reply[0] == '-') {
        log_warn("L1 setup step %d refused by the primary: %.*s", step, (int)(len > 2 ? len - 2 : len),
                 reply);
        if (step == STEP_SUB_ID && L.sub)
            server_close(L.sub, "setup refused");
        else if (i >= 0 && L.fills_c[i].s)
            server_close(L.fills_c[i].s, "setup refused");
        return;
    }
    switch (step) {
    case STEP_SUB_ID:
        L.sub_id = strtoll(reply + 1, NULL, 10);
        L.sub->push = sub_push;
        server_send_raw(L.sub, "*2\r\n$9\r\nSUBSCRIBE\r\n$20\r\n__redis__:invalidate\r\n", 47);
        L.sub_up = 1;
        /* Fill connections may have survived: redirect them here. */
        for (int k = 0; k < L.nfill; k++) {
            if (L.fills_c[k].s && L.fills_c[k].s->state != SERVER_CLOSING)
                send_tracking(k);
            else if (L.fills_c[k].s == NULL)
                connect_fill(k);
        }
        break;
    case STEP_TRACKING:
        if (L.fills_c[i].up)
            check_ready();              /* a re-redirect after the subscriber came back */
        break;
    case STEP_LOAD_CHECK:
        L.fills_c[i].up = 1;
        check_ready();
        break;
    }
}

void track_unready(const char *why)
{
    if (L.ready) {
        L.st.tracking_resets++;
        log_warn("L1 invalidation channel lost (%s): entries unverified until revalidated", why);
    }
    L.ready = 0;
    L.reval_active = 0;
    l1store_unverify_all(L.store);
    /* Fills in flight read at an unknown point: deliver, never store. */
    fill_cancel_all();
    if (L.reconnect_at == 0) {
        L.reconnect_at = l1_now() + L.backoff;
        L.backoff = L.backoff * 2 > TRACK_RECONNECT_MAX_MS ? TRACK_RECONNECT_MAX_MS : L.backoff * 2;
    }
}

static void conn_closed(struct server *s)
{
    const char *why = s->err[0] ? s->err : "closed";
    for (int i = 0; i < L.nfill; i++) {
        if (s == L.fills_c[i].s) {
            L.fills_c[i].s = NULL;
            L.fills_c[i].up = 0;
            if (!L.stopping)
                track_unready(why);
        }
    }
    if (s == L.sub) {
        L.sub = NULL;
        L.sub_up = 0;
        if (!L.stopping)
            track_unready(why);
    }
    backend_server_free(s);
}

static void connect_sub(void)
{
    L.sub = backend_dedicated(&l1_topo->primary);
    if (L.sub == NULL)
        return;
    L.sub->on_close = conn_closed;
    setup_send(L.sub, -1, STEP_SUB_ID, "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n", 24);
}

static void connect_fill(int i)
{
    L.fills_c[i].s = backend_dedicated(&l1_topo->primary);
    if (L.fills_c[i].s == NULL)
        return;
    L.fills_c[i].s->on_close = conn_closed;
    send_tracking(i);
    send_script_load(i);
}

/* Bring up whatever is missing (from the cron, after the backoff). */
static void track_connect(void)
{
    int missing = 0;
    L.reconnect_at = 0;
    if (L.sub == NULL)
        connect_sub();
    for (int i = 0; i < L.nfill; i++) {
        if (L.fills_c[i].s == NULL && L.sub_up)
            connect_fill(i);
        missing |= L.fills_c[i].s == NULL && L.sub_up;
    }
    if (L.sub == NULL || missing) {
        L.reconnect_at = l1_now() + L.backoff;
        L.backoff = L.backoff * 2 > TRACK_RECONNECT_MAX_MS ? TRACK_RECONNECT_MAX_MS : L.backoff * 2;
    }
}

static void on_primary_change(struct topology *t, void *ud)
{
    (void)t;
    (void)ud;
    track_unready("primary changed");
    for (int i = 0; i < L.nfill; i++)
        if (L.fills_c[i].s)
            server_close(L.fills_c[i].s, "closed: primary changed");
    if (L.sub)
        server_close(L.sub, "closed: primary changed");
    L.backoff = TRACK_RECONNECT_MIN_MS;
    L.reconnect_at = l1_now();
}

void track_cron(void)
{
    if (L.reconnect_at && l1_now() >= L.reconnect_at)
        track_connect();
    /* The subscriber is back but a fill connection is not: open it now. */
    if (L.sub_up && L.reconnect_at == 0)
        for (int i = 0; i < L.nfill; i++)
            if (L.fills_c[i].s == NULL) {
                track_connect();
                break;
            }
}

void track_start(void)
{
    L.backoff = TRACK_RECONNECT_MIN_MS;
    L.reconnect_at = 1;                 /* connect on the first cron tick */
    topology_listen(l1_topo, on_primary_change, NULL);
}

void track_stop(void)
{
    for (int i = 0; i < L.nfill; i++)
        if (L.fills_c[i].s)
            server_close(L.fills_c[i].s, "shutting down");
    if (L.sub)
        server_close(L.sub, "shutting down");
}

/* Take the invalidations already on the subscriber's socket before
 * answering from the L1 (once per loop iteration): a client that saw a
 * write elsewhere complete and then reads must not get the old value just
 * because its socket was served first. */
int track_drain(void)
{
    int did = 0;
    if (L.ready && L.drained != outq_iteration()) {
        L.drained = outq_iteration();
        did = 1;
        if (server_read_now(L.sub) < 0)
            track_unready("invalidation channel closed");
    }
    if (!L.ready)
        return did;
    for (int i = 0; i < L.nfill; i++) {
        struct server *s = L.fills_c[i].s;
        if (s == NULL || s->state != SERVER_CONNECTED) {
            track_unready("fill connection closed");
            return did;
        }
    }
    return did;
}

int track_owns(const struct server *s)
{
    for (int i = 0; i < L.nfill; i++)
        if (s != NULL && L.fills_c[i].s == s)
            return 1;
    return 0;
}

struct server *track_pick(struct server *want)
{
    if (want != NULL && track_owns(want))
        return want->state == SERVER_CONNECTED ? want : NULL;
    for (int k = 0; k < L.nfill; k++) {
        struct track_conn *c = &L.fills_c[L.rr++ % (unsigned)L.nfill];
        if (c->up && c->s && c->s->state == SERVER_CONNECTED)
            return c->s;
    }
    return NULL;
}
