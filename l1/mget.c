/*
 * l1/mget.c — MGET answered per key (see l1_mget in l1.h).
 *
 *   MGET k1 k2 k3 ──> l1_mget ─┬─ k1, k3 held (GET entries, verified): their
 *                              │  reply bytes are copied now (the request's time)
 *                              └─ k2 not held: one MGET k2 on a fill
 *                                 connection; admitted keys get a PTTL first
 *                                 and a FILL_MGET_KEY fill (cancellable)
 *   MGET reply ──> mget_reply: elements split (reply_array_split), stored per
 *                  key, merged in request order (reply_array_join), delivered
 *
 * Truth: the held keys are answered after the pending invalidations are
 * taken (track_drain), as a GET hit is; the others are read from Redis
 * after the request arrived. A key is stored by the argument of fill.c:
 * a write after its PTTL (sent first) is reported — every write with
 * l1-tracking broadcast; with keys, the PTTL on a tracking fill connection
 * makes Redis track it — and cancels the key's fill (or drops the entry).
 * A write through the proxy while a key is held "write pending"
 * makes the whole MGET go through as usual (BYPASS).
 *
 * A nil element is not stored: MGET answers nil for a key of another type,
 * where GET answers WRONGTYPE.
 *
 * Cluster mode: a held key is answered only while its node's origin is
 * ready; when the keys asked from Redis share one slot they go as one MGET
 * on their node's fill connection (its bytes kept to be resent after a
 * -MOVED / -ASK); else the MGET is split per slot by proxy/fanout.c, which
 * takes the held keys' replies from l1_mget_held and asks Redis only for
 * the others (plain reads there: nothing is stored from them).
 */
#include <errno.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "l1/internal.h"
#include "protocol/reply.h"

#define MGET_ASKED SIZE_MAX             /* off[] of a key asked from Redis */
#define MGET_STACK 64                   /* keys handled without a malloc */

static const char mget_bad_reply[] = "-ERR redsnano: unexpected MGET reply from the origin\r\n";
static const char mget_oom[] = "-ERR redsnano: out of memory merging an MGET reply\r\n";

/* One MGET in flight: where each key's element comes from. */
struct mget {
    size_t n;                           /* keys in the request */
    size_t nask;                        /* of those, asked from Redis (in order) */
    size_t *off, *len;                  /* per key: its held reply in `held`, or off MGET_ASKED */
    struct fill **kids;                 /* per asked key: its fill to store it, or NULL */
    struct buf held;                    /* the held keys' replies, copied at request time */
    struct buf req;                     /* cluster: the MGET sent, kept for a redirection */
};

static struct buf mget_out;             /* the merged reply of an MGET answered at once */

void mget_free(struct mget *g)
{
    for (size_t j = 0; j < g->nask; j++)
        if (g->kids[j])
            fill_free(g->kids[j]);
    buf_free(&g->held);
    buf_free(&g->req);
    free(g->off);
    free(g->len);
    free(g->kids);
    free(g);
}

static struct mget *mget_new(size_t n)
{
    struct mget *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->n = n;
    g->off = malloc(n * sizeof(*g->off));
    g->len = malloc(n * sizeof(*g->len));
    g->kids = calloc(n, sizeof(*g->kids));
    if (g->off == NULL || g->len == NULL || g->kids == NULL) {
        mget_free(g);
        return NULL;
    }
    return g;
}

/* May MGET elements be answered from the L1 now (ready, tracking mode,
 * GET cached)? Per key, held_entry decides. */
static int mget_usable(void)
{
    return L.ready && l1_set->mode == L1_TRACKING && (L.cmdmask & (1u << L1_CMD_GET));
}

/* The entry GET key would be answered from (verified, not expired), or NULL. */
static struct l1entry *held_entry(const char *key, size_t klen)
{
    struct l1entry *e = l1store_get(L.store, L1_CMD_GET, key, klen, "", 0);
    if (e == NULL || !origin_ready(origin_for_key(key, klen)))
        return NULL;
    if (l1_now() >= l1entry_expires(e)) {
        l1store_drop(L.store, e);
        L.st.inv_expiry++;
        return NULL;
    }
    return l1store_verified(L.store, e) ? e : NULL;
}

/* Look every key up, copying held replies into g->held; returns how many
 * are held. */
static size_t mget_lookup(struct mget *g, const struct reqmsg *m)
{
    size_t nheld = 0;
    buf_reset(&g->held);
    g->nask = 0;
    for (size_t i = 0; i < g->n; i++) {
        struct l1entry *e = held_entry(m->argv[i + 1], m->argvlen[i + 1]);
        if (e == NULL) {
            g->off[i] = MGET_ASKED;
            g->nask++;
            continue;
        }
        size_t n;
        const char *p = l1entry_reply(e, &n);
        g->off[i] = g->held.len;
        g->len[i] = n;
        buf_append(&g->held, p, n);
        l1_hit_audit(e);
        nheld++;
    }
    return nheld;
}

/* The merged reply: held replies and Redis's elements (asked[j] for the
 * j-th asked key), in request order. */
static int mget_merge(struct buf *out, const struct mget *g, const struct reply_span *asked)
{
    struct reply_span stack[MGET_STACK] = { { 0 } }, *el = g->n <= MGET_STACK ? stack : malloc(g->n * sizeof(*el));
    if (el == NULL)
        return -ENOMEM;
    for (size_t i = 0, j = 0; i < g->n; i++)
        el[i] = g->off[i] == MGET_ASKED ? asked[j++]
                                        : (struct reply_span){ g->held.data + g->off[i], g->len[i] };
    int rc = reply_array_join(out, el, g->n);
    if (el != stack)
        free(el);
    return rc;
}

/* The origin every key not held belongs to, when they share one slot
 * (always in static mode); NULL otherwise or when it is not ready. */
static struct l1_origin *mget_asked_origin(const struct mget *g, const struct reqmsg *m)
{
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < g->n; i++) {
        if (g->off[i] != MGET_ASKED)
            continue;
        if (first == SIZE_MAX)
            first = i;
        else if (!origin_same_slot(m->argv[first + 1], m->argvlen[first + 1], m->argv[i + 1], m->argvlen[i + 1]))
            return NULL;
    }
    if (first == SIZE_MAX)
        return NULL;
    struct l1_origin *o = origin_for_key(m->argv[first + 1], m->argvlen[first + 1]);
    return origin_ready(o) ? o : NULL;
}

int mget_resendable(const struct fill *f)
{
    return f->mget->req.len > 0 && !f->mget->req.oom;
}

void mget_resend(struct fill *f)
{
    struct mget *g = f->mget;
    for (size_t j = 0; j < g->nask; j++) {
        if (g->kids[j])
            fill_free(g->kids[j]);      /* nothing stored from a redirected MGET */
        g->kids[j] = NULL;
    }
    f->sr = (struct srvreq){ 0 };
    f->sr.on_reply = fill_on_reply;
    server_send(f->conn, &f->sr, g->req.data + g->req.pos, buf_unread(&g->req));
}

/* Ask Redis for the keys not held: a PTTL for each admitted one (its
 * FILL_MGET_KEY fill), then one MGET. Returns the FILL_MGET, NULL when it
 * cannot be sent. */
static struct fill *mget_ask(struct mget *g, const struct reqmsg *m, struct server *conn, const uint64_t *h)
{
    struct fill *f = fill_alloc(L1_CMD_GET, "", 0, "", 0, FILL_MGET, conn);
    if (f == NULL)
        return NULL;
    f->mget = g;
    for (size_t i = 0, j = 0; i < g->n; i++) {
        if (g->off[i] != MGET_ASKED)
            continue;
        L.st.misses++;
        if (l1_set->admission && !l1_admit(h[i])) {
            L.st.admission_rejected++;
        } else {
            g->kids[j] = fill_alloc(L1_CMD_GET, m->argv[i + 1], m->argvlen[i + 1], "", 0, FILL_MGET_KEY, conn);
            if (g->kids[j] != NULL) {
                fill_send_pttl(g->kids[j]);
                L.st.fills++;
            }
        }
        j++;
    }
    struct buf *b = &L.req;
    buf_reset(b);
    buf_printf(b, "*%zu\r\n", g->nask + 1);
    l1_req_arg(b, "MGET", 4);
    for (size_t i = 0; i < g->n; i++)
        if (g->off[i] == MGET_ASKED)
            l1_req_arg(b, m->argv[i + 1], m->argvlen[i + 1]);
    f->sr = (struct srvreq){ 0 };
    f->sr.on_reply = fill_on_reply;
    L.st.mget_asked += g->nask;
    if (L.cluster)
        buf_append(&g->req, b->data + b->pos, buf_unread(b));
    server_send(conn, &f->sr, b->data + b->pos, buf_unread(b));
    return f;
}

int l1_mget(const struct reqmsg *m, int may_wait, struct server *cur, const char **reply, size_t *len,
            void **pending)
{
    size_t n = (size_t)m->argc - 1;
    uint64_t hstack[MGET_STACK], *h = hstack;

    if (!mget_usable() || n == 0)
        return L1_BYPASS;
    if (n > MGET_STACK && (h = malloc(n * sizeof(*h))) == NULL)
        return L1_BYPASS;
    int pending_write = 0, admitted = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = m->argv[i + 1];
        size_t kl = m->argvlen[i + 1];
        h[i] = l1sketch_hash(L1_CMD_GET, k, kl, "", 0);
        if (l1_set->admission)
            l1sketch_add(L.sketch, h[i]);
        pending_write |= holds_pending(k, kl);
    }
    /* Held replies are answered only after the invalidations already sent
     * are taken (at most one read of the subscriber per loop iteration). */
    origin_sync_pending();
    if (!pending_write)
        track_drain_all();
    struct mget *g = pending_write || !L.ready ? NULL : mget_new(n);
    size_t nheld = g ? mget_lookup(g, m) : 0;
    for (size_t i = 0; g && nheld == 0 && i < n; i++)
        admitted |= !l1_set->admission || l1_admit(h[i]);
    int rc = L1_BYPASS;
    if (g == NULL || (nheld == 0 && !admitted) || (nheld < n && !may_wait)) {
        L.st.bypass++;
    } else if (nheld == n) {
        buf_reset(&mget_out);
        if (mget_merge(&mget_out, g, NULL) == 0 && !mget_out.oom) {
            L.st.hits += n;
            L.st.mget++;
            *reply = mget_out.data + mget_out.pos;
            *len = buf_unread(&mget_out);
            rc = L1_HIT;
        } else {
            buf_free(&mget_out);        /* its out-of-memory mark is sticky */
            L.st.bypass++;
        }
    } else {
        struct l1_origin *o = mget_asked_origin(g, m);
        struct server *conn = o ? track_pick(o, cur) : NULL;
        struct fill *f = conn ? mget_ask(g, m, conn, h) : NULL;
        if (f != NULL) {
            f->origin = o;
            L.st.hits += nheld;
            L.st.mget++;
            g = NULL;                   /* the fill owns it */
            *pending = f;
            rc = L1_WAIT;
        } else {
            L.st.bypass++;
        }
    }
    if (g)
        mget_free(g);
    if (h != hstack)
        free(h);
    return rc;
}

size_t l1_mget_held(const struct reqmsg *m, const char **el, size_t *ellen)
{
    size_t n = (size_t)m->argc - 1, nheld = 0;

    for (size_t i = 0; i < n; i++)
        el[i] = NULL;
    if (!mget_usable())
        return 0;
    for (size_t i = 0; i < n; i++)
        if (holds_pending(m->argv[i + 1], m->argvlen[i + 1]))
            return 0;
    origin_sync_pending();
    track_drain_all();
    for (size_t i = 0; i < n; i++) {
        struct l1entry *e = held_entry(m->argv[i + 1], m->argvlen[i + 1]);
        if (e == NULL)
            continue;
        el[i] = l1entry_reply(e, &ellen[i]);
        l1_hit_audit(e);
        nheld++;
    }
    return nheld;
}

void l1_mget_served(size_t held)
{
    if (held == 0)
        return;
    L.st.hits += held;
    L.st.mget++;
}

void mget_reply(struct fill *f, const char *reply, size_t len, int failed)
{
    struct mget *g = f->mget;
    struct reply_span stack[MGET_STACK], *asked = g->nask <= MGET_STACK ? stack : malloc(g->nask * sizeof(*asked));
    long long got = failed || asked == NULL ? -1 : reply_array_split(reply, len, asked, g->nask);

    if (got != (long long)g->nask) {
        /* Redis's error (or the connection's) is the MGET's answer. */
        if (failed || (len > 0 && reply[0] == '-'))
            fill_deliver(f, reply, len, failed);
        else
            fill_deliver(f, mget_bad_reply, sizeof(mget_bad_reply) - 1, 0);
        log_verbose("L1 MGET of %zu keys: %s", g->nask, failed ? "failed" : "unexpected reply");
    } else {
        for (size_t j = 0; j < g->nask; j++) {
            struct fill *k = g->kids[j];
            if (k == NULL || asked[j].len < 2 || asked[j].p[0] != '$' || asked[j].p[1] == '-')
                continue;               /* not to store, or nil: maybe another type */
            fill_read_done(k, l1store_get(L.store, L1_CMD_GET, k->data, k->klen, "", 0), asked[j].p,
                           asked[j].len);
        }
        struct buf out = { 0 };
        if (mget_merge(&out, g, asked) == 0 && !out.oom)
            fill_deliver(f, out.data + out.pos, buf_unread(&out), 0);
        else
            fill_deliver(f, mget_oom, sizeof(mget_oom) - 1, 0);
        buf_free(&out);
    }
    if (asked != stack)
        free(asked);
    fill_free(f);
}
