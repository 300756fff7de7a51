/*
 * l1/fill.c — fills and hash checks in flight (see internal.h).
 *
 *   l1_read miss ──> fill_new ──> PTTL key, then the read itself, pipelined
 *                                 on one tracking fill connection (no MULTI)
 *   l1_read check ─> fill_new ──> EVALSHA check script (check.c)
 *   l1_read, key with a write in flight ─> fill_new(FILL_SHARED): the read
 *                                 alone, delivered, never stored (l1.h)
 *   l1_mget ───────> fill_alloc ─> PTTL per key to store, then one MGET
 *                                 (mget.c; the same argument holds per key)
 *   a write / an invalidation ──> fill_cancel_key: the fill still delivers
 *                                 to its waiters but stores nothing
 *   -MOVED / -ASK (cluster: the slot moved) ──> nothing stored; a fill with
 *                                 waiters is resent once to the node named
 *                                 (fill_redirect), else the entry is dropped
 *   reply ──> store (unless cancelled, an error, or expired in between),
 *             deliver to every waiter (single-flight)
 *
 * Why no MULTI/EXEC: any change of the key after the first of the two
 * commands (PTTL) reads it sends an invalidation to the subscriber — with
 * l1-tracking broadcast because Redis reports every write of every key
 * (so the fill may be read on any connection to the same primary, the
 * client's own included), with keys because the fill connection has
 * CLIENT TRACKING on and Redis remembers the key from that read. A write
 * landing between PTTL and the read, or after the read, therefore always
 * reaches l1/track.c, which cancels the fill (not yet answered) or drops
 * the entry it stored (answered first): what is stored is never served
 * past the invalidation, and a hit first takes the invalidations already on
 * the subscriber's socket (track_drain). A write before the PTTL may be
 * reported after the reply: it drops a current entry, never keeps a stale
 * one. PTTL first means its answer is at hand when the read's reply
 * arrives, so the read's bytes are stored and delivered straight from the
 * reply buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/topology.h"
#include "base/glob.h"
#include "base/log.h"
#include "l1/internal.h"

#define FILL_PTTL_NONE (-3)             /* no PTTL reply yet (or not an integer) */
#define PTTL_MISSING (-2)               /* Redis: the key does not exist */
#define FILL_PTTL_PREFIX "*2\r\n$4\r\nPTTL\r\n" /* a PTTL request up to its key */

struct fill *fill_find(uint8_t cmd, const char *key, size_t klen, const char *args, size_t alen)
{
    uint32_t h = l1_hash_bytes(key, klen);
    for (struct fill *f = L.fills[h % L1_FILL_BUCKETS]; f; f = f->hnext)
        if (f->h == h && f->cmd == cmd && f->kind != FILL_MGET_KEY && f->klen == klen && f->alen == alen &&
            memcmp(f->data, key, klen) == 0 && memcmp(f->data + klen, args, alen) == 0)
            return f;
    return NULL;
}

static void fill_unhash(struct fill *f)
{
    if (!f->hashed)
        return;
    for (struct fill **pp = &L.fills[f->h % L1_FILL_BUCKETS]; *pp; pp = &(*pp)->hnext) {
        if (*pp == f) {
            *pp = f->hnext;
            break;
        }
    }
    f->hashed = 0;
}

static void fill_cancel(struct fill *f)
{
    f->hashed = 0;
    f->cancelled = 1;
    if (f->kind != FILL_SHARED)         /* never stored anyway: no longer joinable */
        L.st.fills_cancelled++;
}

void fill_cancel_key(const char *key, size_t klen)
{
    uint32_t h = l1_hash_bytes(key, klen);
    struct fill **pp = &L.fills[h % L1_FILL_BUCKETS];
    while (*pp) {
        struct fill *f = *pp;
        if (f->h == h && f->klen == klen && memcmp(f->data, key, klen) == 0) {
            *pp = f->hnext;
            fill_cancel(f);
            continue;
        }
        pp = &f->hnext;
    }
}

size_t fill_cancel_matching(const char *pat, size_t plen)
{
    size_t n = 0;
    for (int i = 0; i < L1_FILL_BUCKETS; i++) {
        struct fill **pp = &L.fills[i];
        while (*pp) {
            struct fill *f = *pp;
            if (glob_match(pat, plen, f->data, f->klen)) {
                *pp = f->hnext;
                fill_cancel(f);
                n++;
                continue;
            }
            pp = &f->hnext;
        }
    }
    return n;
}

void fill_cancel_if(int (*pred)(const char *key, size_t klen, void *ctx), void *ctx)
{
    for (int i = 0; i < L1_FILL_BUCKETS; i++) {
        struct fill **pp = &L.fills[i];
        while (*pp) {
            struct fill *f = *pp;
            if (pred(f->data, f->klen, ctx)) {
                *pp = f->hnext;
                fill_cancel(f);
                continue;
            }
            pp = &f->hnext;
        }
    }
}

void fill_cancel_all(void)
{
    for (int i = 0; i < L1_FILL_BUCKETS; i++) {
        while (L.fills[i]) {
            struct fill *f = L.fills[i];
            L.fills[i] = f->hnext;
            fill_cancel(f);
        }
    }
}

void fill_free(struct fill *f)
{
    fill_unhash(f);
    if (f->mget)
        mget_free(f->mget);
    free(f);                            /* f->data is in the same block */
}

void fill_deliver(struct fill *f, const char *reply, size_t len, int failed)
{
    while (f->waiters) {
        struct srvreq *w = f->waiters;
        f->waiters = w->next;
        w->next = NULL;
        w->on_reply(w, reply, len, failed);
    }
    f->waiters_tail = NULL;
}

/* The PTTL sent ahead of a fill's read: keep its answer. */
static void fill_pttl_reply(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    struct fill *f = (struct fill *)((char *)sr - offsetof(struct fill, pre));
    f->pttl = FILL_PTTL_NONE;
    if (!failed && len > 1 && reply[0] == ':')
        f->pttl = strtoll(reply + 1, NULL, 10);
    /* A failure reaches the read's srvreq too. */
}

void fill_send_pttl(struct fill *f)
{
    struct buf *b = &L.req;

    f->pttl = FILL_PTTL_NONE;
    f->pre = (struct srvreq){ 0 };
    f->pre.on_reply = fill_pttl_reply;
    buf_reset(b);
    buf_append(b, FILL_PTTL_PREFIX, sizeof(FILL_PTTL_PREFIX) - 1);
    l1_req_arg(b, f->data, f->klen);
    server_send(f->conn, &f->pre, b->data + b->pos, buf_unread(b));
}

int fill_nargs(const struct fill *f)
{
    const char *args = f->data + f->klen;
    int nargs = 0;

    for (size_t o = 0; o < f->alen; nargs++) {
        uint32_t n;
        memcpy(&n, args + o, sizeof(n));
        o += sizeof(n) + n;
    }
    return nargs;
}

void fill_append_args(struct buf *b, const struct fill *f)
{
    const char *args = f->data + f->klen;

    for (size_t o = 0; o < f->alen;) {
        uint32_t n;
        memcpy(&n, args + o, sizeof(n));
        o += sizeof(n);
        l1_req_arg(b, args + o, n);
        o += n;
    }
}

/* The call itself (command, key, args) on f's connection, f its request. */
static void fill_send_call(struct fill *f)
{
    struct buf *b = &L.req;

    buf_reset(b);
    l1_req_len(b, '*', (size_t)(2 + fill_nargs(f)));
    l1_req_arg(b, l1_cmds[f->cmd].name, strlen(l1_cmds[f->cmd].name));
    l1_req_arg(b, f->data, f->klen);
    fill_append_args(b, f);
    f->sr = (struct srvreq){ 0 };
    f->sr.on_reply = fill_on_reply;
    server_send(f->conn, &f->sr, b->data + b->pos, buf_unread(b));
}

/* PTTL key, then the call itself, as two requests (a shared read: the call
 * alone, it is never stored). */
static void fill_send_read(struct fill *f)
{
    f->check = 0;
    if (f->kind != FILL_SHARED) {
        fill_send_pttl(f);
        L.st.fills++;
    }
    fill_send_call(f);
}

static void fill_send(struct fill *f, const uint8_t *sha)
{
    if (sha == NULL) {
        fill_send_read(f);
        return;
    }
    f->check = 1;
    f->sr = (struct srvreq){ 0 };
    f->sr.on_reply = fill_on_reply;
    check_send(f, sha);
}

struct fill *fill_new(uint8_t cmd, const char *key, size_t klen, const char *args, size_t alen,
                      const uint8_t *sha, enum fill_kind kind, struct server *conn)
{
    struct l1_origin *o = origin_for_key(key, klen);
    conn = origin_ready(o) ? track_pick(o, conn) : NULL;
    if (conn == NULL)
        return NULL;
    struct fill *f = fill_alloc(cmd, key, klen, args, alen, kind, conn);
    if (f == NULL)
        return NULL;
    f->origin = o;
    if (kind == FILL_REVAL)
        L.reval_inflight++;
    fill_send(f, sha);
    return f;
}

struct fill *fill_alloc(uint8_t cmd, const char *key, size_t klen, const char *args, size_t alen,
                        enum fill_kind kind, struct server *conn)
{
    /* One block: the fill, then its key and args (one malloc per fill). */
    struct fill *f = malloc(sizeof(*f) + klen + alen + 1);
    if (f == NULL)
        return NULL;
    *f = (struct fill){ 0 };
    f->data = (char *)(f + 1);
    memcpy(f->data, key, klen);
    memcpy(f->data + klen, args, alen);
    f->conn = conn;
    f->cmd = cmd;
    f->kind = (uint8_t)kind;
    f->klen = klen;
    f->alen = alen;
    f->h = l1_hash_bytes(key, klen);
    f->pttl = FILL_PTTL_NONE;
    if (kind != FILL_MGET) {
        f->hnext = L.fills[f->h % L1_FILL_BUCKETS];
        L.fills[f->h % L1_FILL_BUCKETS] = f;
        f->hashed = 1;
    }
    return f;
}

/* Free f; a finished revalidation lets the next ones go. */
static void fill_done(struct fill *f)
{
    int reval = f->kind == FILL_REVAL;
    fill_free(f);
    if (reval)
        check_reval_next();
}

/* The connection failed: waiters get its error (or the stale entry when
 * the operator allows it). */
static void fill_failed(struct fill *f, struct l1entry *e, const char *reply, size_t len)
{
    if (e && l1_set->serve_stale && f->waiters) {
        size_t n;
        const char *p = l1entry_reply(e, &n);
        L.st.stale_served++;
        fill_deliver(f, p, n, 0);
    } else {
        fill_deliver(f, reply, len, 1);
    }
    fill_done(f);
}

/* A read's reply: store it (fresh, not an error) and deliver it. */
void fill_read_done(struct fill *f, struct l1entry *e, const char *val, size_t vlen)
{
    const char *key = f->data, *args = f->data + f->klen;
    int is_nil = vlen >= 3 && (memcmp(val, "$-1", 3) == 0 || memcmp(val, "*-1", 3) == 0);
    /* A value where PTTL saw no key: created in between, an invalidation is
     * on its way; and no PTTL answer: do not store. */
    int unknown_ttl = f->pttl == FILL_PTTL_NONE || (f->pttl == PTTL_MISSING && !is_nil);

    if (f->kind == FILL_SHARED) {
        /* nothing to store or drop: the key had a write in flight */
    } else if (!f->cancelled && vlen > 0 && val[0] != '-' && !unknown_ttl) {
        /* No SHA1 kept: a hash check computes it from the reply (l1entry_sha1). */
        l1store_put(L.store, f->cmd, key, f->klen, args, f->alen, val, vlen, l1_now(),
                    l1_expiry_for(f->pttl));
    } else if (e && !f->cancelled) {
        l1store_drop(L.store, e);
    }
    fill_deliver(f, val, vlen, 0);
}

int fill_is_redirect(const char *reply, size_t len)
{
    return (len > 7 && memcmp(reply, "-MOVED ", 7) == 0) || (len > 5 && memcmp(reply, "-ASK ", 5) == 0);
}

/* f's call again, alone (an ASKING applies to the next command only): a
 * redirected read is delivered, never stored. */
static void fill_resend(struct fill *f)
{
    f->check = 0;
    f->pttl = FILL_PTTL_NONE;
    fill_send_call(f);
}

int fill_redirect(struct fill *f, const char *reply, size_t len)
{
    struct backend *to;
    int ask;

    if (f->redirects >= L1_MAX_REDIRECTS || (f->kind == FILL_MGET && !mget_resendable(f)) ||
        !topology_redirect(l1_topo, reply, len, &to, &ask))
        return 0;
    struct l1_origin *o = origin_of_backend(to);
    struct server *conn = origin_ready(o) ? track_pick(o, NULL) : NULL;
    if (conn == NULL)
        return 0;
    if (ask && server_send_asking(conn) < 0)
        return 0;
    f->redirects++;
    fill_unhash(f);
    f->cancelled = 1;                   /* read where the map did not say: never stored */
    f->conn = conn;
    f->origin = o;
    if (f->kind == FILL_MGET)
        mget_resend(f);
    else
        fill_resend(f);
    return 1;
}

/* A fill or check answered -MOVED/-ASK: its slot moved (the map is told).
 * Nothing is stored and a checked entry counts as changed (dropped); the
 * waiters get the value from the node named, or the redirection itself
 * when that cannot be asked. */
static void fill_redirected(struct fill *f, struct l1entry *e, const char *reply, size_t len)
{
    L.st.redirected++;
    if (e != NULL && f->check && !f->cancelled) {
        l1store_drop(L.store, e);
        L.st.inv_hash_mismatch++;
    }
    if (f->waiters != NULL && fill_redirect(f, reply, len)) {
        if (f->kind == FILL_REVAL)
            L.reval_inflight++;         /* still one of the pass's checks */
        return;
    }
    fill_deliver(f, reply, len, 0);
    fill_done(f);
}

void fill_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    struct fill *f = (struct fill *)((char *)sr - offsetof(struct fill, sr));
    const char *key = f->data, *args = f->data + f->klen;
    const char *val = NULL;
    size_t vlen = 0;
    long long pttl = -1;

    if (f->kind == FILL_MGET) {
        if (!failed && fill_is_redirect(reply, len) && fill_redirect(f, reply, len))
            return;                     /* the MGET again, on the node named */
        mget_reply(f, reply, len, failed);
        return;
    }
    if (f->kind == FILL_REVAL)
        L.reval_inflight--;
    if (f->kind == FILL_AUDIT && !failed && f->origin->sub != NULL && server_read_now(f->origin->sub) < 0)
        track_unready(f->origin, "invalidation channel closed");
    /* (An audit first takes the invalidations already sent: a write made
     * after the audited hit, reported but not yet read, is no stale hit.) */
    struct l1entry *e = l1store_get(L.store, f->cmd, key, f->klen, args, f->alen);
    if (failed) {
        fill_failed(f, e, reply, len);
        return;
    }
    if (fill_is_redirect(reply, len)) {
        fill_redirected(f, e, reply, len);
        return;
    }
    if (f->check && len > 9 && memcmp(reply, "-NOSCRIPT", 9) == 0 && !f->retried_eval) {
        f->retried_eval = 1;
        if (f->kind == FILL_REVAL)
            L.reval_inflight++;
        fill_send(f, e ? l1entry_sha1(e) : NULL);
        return;
    }
    if (!f->check) {
        fill_read_done(f, e, reply, len);
        fill_done(f);
        return;
    }
    int kind = check_parse(reply, len, &val, &vlen, &pttl);
    if (kind == 0) {
        /* An error from Redis (OOM, BUSY...): pass it on, store nothing. */
        fill_deliver(f, reply, len, 0);
        fill_done(f);
        return;
    }
    if (kind == 2 && e == NULL) {
        /* Unchanged, but dropped meanwhile (evicted, invalidated). */
        if (f->waiters == NULL) {
            fill_done(f);
            return;
        }
        if (f->kind == FILL_REVAL)
            L.reval_inflight++;
        fill_send(f, NULL);             /* fetch the value for the waiters */
        return;
    }
    check_done(f, e, kind == 1, kind == 1 && pttl == PTTL_MISSING);
    if (kind == 2) {
        if (!f->cancelled)
            l1store_verify(L.store, e, l1_now(), l1_expiry_for(pttl));
        if (f->waiters) {
            size_t n;
            const char *p = l1entry_reply(e, &n);
            for (struct srvreq *w = f->waiters; w; w = w->next)
                L.st.hits++;            /* answered with the L1's bytes */
            fill_deliver(f, p, n, 0);
        }
    } else if (f->kind == FILL_REVAL && pttl == PTTL_MISSING) {
        if (e)
            l1store_drop(L.store, e);
        fill_deliver(f, val, vlen, 0);
    } else {
        f->pttl = pttl;
        fill_read_done(f, e, val, vlen);
    }
    fill_done(f);
}
