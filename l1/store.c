/*
 * l1/store.c — the L1's memory: entries, hash index, LRU, budget.
 *
 *   l1store_get(cmd, key, args) ──siphash(key)──> buckets[h & mask]
 *                                                   │ chain of every entry of
 *                                                   │ that key (any cmd/args)
 *                                                   v
 *   head (most recent) <──newer── entry ──older──> tail (least recent)
 *                                   │                  ^  evicted first,
 *                                   │                  │  walks start here
 *                                   v
 *   one malloc: [struct l1entry | key | args | reply]
 *
 * The index is keyed on the Redis key only: every variant of a key (GET k,
 * HGET k f, LRANGE k 0 9) lies in the same chain, so l1store_drop_key() is
 * one chain walk; an entry's identity is (cmd, key, args) compared exactly.
 * The bucket array doubles when an insert would put the load above 1
 * (count > buckets); the growth is charged to the budget before the insert
 * (least recently used entries are evicted for it too), so the budget holds
 * for the table as well. No hash is cached per entry: rehashing recomputes
 * it from the key (SipHash-1-3 with a per-store random key, so clients
 * choosing keys cannot flood one chain).
 *
 * Recency is approximate: a use moves an entry to the head only once it
 * has left the newest 1/L1STORE_BUMP_FRACTION of the list (a push clock
 * stamped on each entry bounds how many are newer), so hot entries are not
 * relinked on every hit.
 *
 * Validity is an epoch (always even). An entry is verified when its epoch
 * equals the store's; epoch - 1 marks "unverified, already visited by the
 * current unverified walk", so an entry moved to the head by a use after
 * its visit is not visited twice. l1store_unverify_all() adds 2: both old
 * marks become plain "unverified". Epochs never exceed the store's; on
 * wrap-around (after 2^31 bumps) every entry is re-marked once.
 *
 * The two walks keep a cursor: the next entry to examine (towards the
 * head). Whenever an entry leaves its place in the LRU list (dropped,
 * evicted, replaced, moved to the head by a use) a cursor on it moves to
 * its newer neighbour first, so no entry is skipped and no freed entry is
 * touched.
 *
 * Memory: an entry costs malloc_usable_size() plus the allocator's chunk
 * header (glibc keeps one size_t in front of every chunk, which
 * malloc_usable_size does not report); the bucket array costs its size.
 */
#include "l1/store.h"

#include <assert.h>
#include <errno.h>
#include <endian.h>
#include <malloc.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define L1STORE_MIN_BUCKETS 16             /* initial bucket array (power of two) */
#define L1STORE_PREFETCH_MAX 16            /* keys whose buckets l1store_prefetch warms at once */
#define L1STORE_CHUNK_HEADER sizeof(size_t) /* glibc's per-chunk size field, not in usable size */
#define L1STORE_EPOCH_FIRST 2u             /* first store epoch (even, leaves room for the mark) */
#define L1STORE_EPOCH_STEP 2u              /* per l1store_unverify_all(): epoch and its mark */
#define L1STORE_MAX_LEN UINT32_MAX         /* key, args and reply lengths are stored on 32 bits */
#define L1STORE_SIP_C 1                    /* SipHash compression rounds */
#define L1STORE_SIP_D 3                    /* SipHash finalisation rounds */
#define L1STORE_BUMP_FRACTION 8            /* a use moves an entry only once it left the newest 1/8 */

/* One cached reply; the struct is followed by key, args and reply bytes. */
struct l1entry {
    struct l1entry *hnext;   /* next entry in the same bucket chain */
    struct l1entry *newer;   /* LRU neighbour towards the head (NULL at the head) */
    struct l1entry *older;   /* LRU neighbour towards the tail (NULL at the tail) */
    uint64_t filled;         /* caller's clock (ms) at put / last verify */
    uint64_t expires;        /* caller's clock (ms) when the entry expires */
    uint32_t klen;           /* Redis key length */
    uint32_t alen;           /* encoded args length */
    uint32_t rlen;           /* reply length (RESP bytes) */
    uint32_t epoch;          /* store epoch when verified (epoch - 1: visited unverified) */
    uint32_t pushed;         /* store's push clock when last put at the head */
    uint8_t cmd;             /* command id */
    uint8_t mark;            /* the caller's (l1entry_mark), 0 when put */
    char data[];             /* key, then args, then reply; no terminator */
};

/* The store: index, LRU list, budget and walk cursors. */
struct l1store {
    struct l1entry **buckets;     /* chains by siphash(key) & (nbuckets - 1) */
    size_t nbuckets;              /* power of two, >= L1STORE_MIN_BUCKETS */
    struct l1entry *head;         /* most recently used */
    struct l1entry *tail;         /* least recently used, evicted first */
    size_t count;                 /* entries */
    size_t bytes;                 /* entry costs + bucket array */
    size_t payload;               /* sum of klen + alen + rlen */
    size_t max;                   /* budget for bytes */
    uint64_t evictions;           /* entries evicted to make room */
    uint64_t sipkey[2];           /* per-store SipHash key */
    uint32_t epoch;               /* current epoch (even) */
    uint32_t pushes;              /* push clock: entries put at the head so far (wraps) */
    struct l1entry *uv_next;      /* unverified walk: next to examine, NULL = done */
    struct l1entry *old_next;     /* older walk: next to examine, NULL = end of pass */
    int old_pass;                 /* older walk: a pass is in progress */
};

/* --- hashing --------------------------------------------------------- */

static inline uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

/* One SipRound on the four state words. */
static inline void sip_round(uint64_t *v0, uint64_t *v1, uint64_t *v2, uint64_t *v3)
{
    *v0 += *v1; *v1 = rotl64(*v1, 13); *v1 ^= *v0; *v0 = rotl64(*v0, 32);
    *v2 += *v3; *v3 = rotl64(*v3, 16); *v3 ^= *v2;
    *v0 += *v3; *v3 = rotl64(*v3, 21); *v3 ^= *v0;
    *v2 += *v1; *v1 = rotl64(*v1, 17); *v1 ^= *v2; *v2 = rotl64(*v2, 32);
}

/* SipHash-c-d (c, d above) of p[0..n) under key k, words read little-endian. */
static uint64_t l1store_siphash(const uint64_t k[2], const char *p, size_t n)
{
    const unsigned char *in = (const unsigned char *)p;
    uint64_t v0 = k[0] ^ 0x736f6d6570736575ULL;
    uint64_t v1 = k[1] ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k[0] ^ 0x6c7967656e657261ULL;
    uint64_t v3 = k[1] ^ 0x7465646279746573ULL;
    uint64_t m, last = (uint64_t)n << 56;
    size_t i, words = n / 8;
    int r;

    for (i = 0; i < words; i++, in += 8) {
        memcpy(&m, in, 8);
        m = le64toh(m);
        v3 ^= m;
        for (r = 0; r < L1STORE_SIP_C; r++)
            sip_round(&v0, &v1, &v2, &v3);
        v0 ^= m;
    }
    for (i = 0; i < (n & 7); i++)
        last |= (uint64_t)in[i] << (8 * i);
    v3 ^= last;
    for (r = 0; r < L1STORE_SIP_C; r++)
        sip_round(&v0, &v1, &v2, &v3);
    v0 ^= last;
    v2 ^= 0xff;
    for (r = 0; r < L1STORE_SIP_D; r++)
        sip_round(&v0, &v1, &v2, &v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* The chain head for this Redis key. */
static inline struct l1entry **l1store_bucket(const struct l1store *s, const char *key, size_t klen)
{
    return &s->buckets[l1store_siphash(s->sipkey, key, klen) & (s->nbuckets - 1)];
}

/* --- entries --------------------------------------------------------- */

/* Bytes one entry costs: the usable size of its chunk plus the chunk header. */
static inline size_t l1entry_cost(const struct l1entry *e)
{
    return malloc_usable_size((void *)e) + L1STORE_CHUNK_HEADER;
}

const char *l1entry_key(const struct l1entry *e, size_t *len)
{
    *len = e->klen;
    return e->data;
}

const char *l1entry_args(const struct l1entry *e, size_t *len)
{
    *len = e->alen;
    return e->data + e->klen;
}

const char *l1entry_reply(const struct l1entry *e, size_t *len)
{
    *len = e->rlen;
    return e->data + e->klen + e->alen;
}

const uint8_t *l1entry_sha1(const struct l1entry *e)
{
    /* Computed at each call (hash checks and snapshots are rare next to
     * hits): 21 bytes less in every entry. */
    static uint8_t sha1[20];
    SHA1((const unsigned char *)e->data + e->klen + e->alen, e->rlen, sha1);
    return sha1;
}

uint8_t l1entry_cmd(const struct l1entry *e)
{
    return e->cmd;
}

uint8_t *l1entry_mark(struct l1entry *e)
{
    return &e->mark;
}

uint64_t l1entry_expires(const struct l1entry *e)
{
    return e->expires;
}

uint64_t l1entry_filled(const struct l1entry *e)
{
    return e->filled;
}

/* --- LRU list -------------------------------------------------------- */

/* Take e out of the LRU list; cursors on e move to its newer neighbour. */
static void l1store_lru_unlink(struct l1store *s, struct l1entry *e)
{
    if (s->uv_next == e)
        s->uv_next = e->newer;
    if (s->old_next == e)
        s->old_next = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        s->head = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        s->tail = e->newer;
    e->newer = e->older = NULL;
}

/* Put e at the head (most recently used). */
static void l1store_lru_push(struct l1store *s, struct l1entry *e)
{
    e->pushed = ++s->pushes;
    e->older = s->head;
    e->newer = NULL;
    if (s->head)
        s->head->newer = e;
    else
        s->tail = e;
    s->head = e;
}

/* --- index ----------------------------------------------------------- */

/* The link that points at the entry (cmd, key, args), or at the NULL ending
 * its chain when absent. */
static struct l1entry **l1store_find(const struct l1store *s, uint8_t cmd, const char *key,
                                     size_t klen, const char *args, size_t alen)
{
    struct l1entry **link = l1store_bucket(s, key, klen);
    struct l1entry *e;

    for (; (e = *link) != NULL; link = &e->hnext) {
        if (e->cmd == cmd && e->klen == klen && e->alen == alen &&
            memcmp(e->data, key, klen) == 0 && memcmp(e->data + klen, args, alen) == 0)
            return link;
    }
    return link;
}

/* The link that points at e in its chain (e must be stored). */
static struct l1entry **l1store_link_of(const struct l1store *s, const struct l1entry *e)
{
    struct l1entry **link = l1store_bucket(s, e->data, e->klen);

    while (*link != e) {
        assert(*link != NULL);
        link = &(*link)->hnext;
    }
    return link;
}

/* Unlink *link from its chain and the LRU list, uncount and free it. */
static void l1store_remove(struct l1store *s, struct l1entry **link)
{
    struct l1entry *e = *link;

    *link = e->hnext;
    l1store_lru_unlink(s, e);
    s->count--;
    s->bytes -= l1entry_cost(e);
    s->payload -= (size_t)e->klen + e->alen + e->rlen;
    free(e);
}

/* Double the bucket array, moving every entry. Returns 0 or -ENOMEM (the
 * old table stays in use). */
static int l1store_grow(struct l1store *s)
{
    size_t i, n = s->nbuckets * 2;
    struct l1entry **b = calloc(n, sizeof(*b));
    struct l1entry *e, *next;

    if (b == NULL)
        return -ENOMEM;
    for (i = 0; i < s->nbuckets; i++) {
        for (e = s->buckets[i]; e != NULL; e = next) {
            struct l1entry **head = &b[l1store_siphash(s->sipkey, e->data, e->klen) & (n - 1)];

            next = e->hnext;
            e->hnext = *head;
            *head = e;
        }
    }
    free(s->buckets);
    s->bytes += (n - s->nbuckets) * sizeof(*b);
    s->buckets = b;
    s->nbuckets = n;
    return 0;
}

/* Bytes of the bucket array. */
static inline size_t l1store_table_bytes(const struct l1store *s)
{
    return s->nbuckets * sizeof(*s->buckets);
}

/* Seed the SipHash key: getrandom, or address-space randomness if it fails. */
static void l1store_seed(struct l1store *s)
{
    static uint64_t counter;   /* distinguishes stores when getrandom fails */

    if (getrandom(s->sipkey, sizeof(s->sipkey), GRND_NONBLOCK) == (ssize_t)sizeof(s->sipkey))
        return;
    s->sipkey[0] = (uint64_t)(uintptr_t)s ^ 0x9e3779b97f4a7c15ULL * ++counter;
    s->sipkey[1] = (uint64_t)(uintptr_t)&counter ^ (uint64_t)(uintptr_t)l1store_seed;
}

/* --- public API ------------------------------------------------------ */

struct l1store *l1store_new(size_t maxmemory)
{
    struct l1store *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->nbuckets = L1STORE_MIN_BUCKETS;
    s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
    if (s->buckets == NULL) {
        free(s);
        return NULL;
    }
    s->bytes = l1store_table_bytes(s);
    s->max = maxmemory;
    s->epoch = L1STORE_EPOCH_FIRST;
    l1store_seed(s);
    return s;
}

void l1store_free(struct l1store *s)
{
    if (s == NULL)
        return;
    l1store_flush(s);
    free(s->buckets);
    free(s);
}

void l1store_prefetch(const struct l1store *s, const char *const *keys, const size_t *klens, int n)
{
    struct l1entry **b[L1STORE_PREFETCH_MAX];

    for (int done = 0; done < n; done += L1STORE_PREFETCH_MAX) {
        int m = n - done < L1STORE_PREFETCH_MAX ? n - done : L1STORE_PREFETCH_MAX;
        for (int i = 0; i < m; i++) {
            b[i] = l1store_bucket(s, keys[done + i], klens[done + i]);
            __builtin_prefetch(b[i]);
        }
        for (int i = 0; i < m; i++) {
            const struct l1entry *e = *b[i];   /* the first load waits; the others are on their way */
            if (e != NULL) {
                __builtin_prefetch(e);
                __builtin_prefetch((const char *)e + 64);
                __builtin_prefetch((const char *)e + 128);
            }
        }
    }
}

struct l1entry *l1store_get(struct l1store *s, uint8_t cmd, const char *key, size_t klen,
                            const char *args, size_t alen)
{
    struct l1entry *e = *l1store_find(s, cmd, key, klen, args, alen);

    /* At most pushes - pushed entries are newer than e: when that is under
     * 1/L1STORE_BUMP_FRACTION of the list, e is among the newest already
     * and stays where it is. A hot entry is not relinked on every hit (two
     * neighbours' cache lines written each time), at the price of an LRU
     * order off by at most that fraction. */
    if (e != NULL && e != s->head &&
        (uint32_t)(s->pushes - e->pushed) >= s->count / L1STORE_BUMP_FRACTION) {
        l1store_lru_unlink(s, e);
        l1store_lru_push(s, e);
    }
    return e;
}

/*
 * Evicts from the tail until the entry, and the doubled bucket array when
 * the insert needs one, fit in the budget. Refuses (NULL, nothing evicted)
 * an entry that would not fit in an otherwise empty store. Every byte is
 * copied before anything is dropped or evicted, so key, args and reply
 * may point into stored entries (the one replaced included).
 */
struct l1entry *l1store_put(struct l1store *s, uint8_t cmd, const char *key, size_t klen,
                            const char *args, size_t alen, const char *reply, size_t rlen,
                            uint64_t now, uint64_t expires)
{
    struct l1entry **link = l1store_find(s, cmd, key, klen, args, alen);
    struct l1entry *e = NULL;
    size_t size, cost;

    /* lengths on 32 bits, and no sum can overflow below the budget */
    if (klen > L1STORE_MAX_LEN || alen > L1STORE_MAX_LEN || rlen > L1STORE_MAX_LEN ||
        klen > s->max || alen > s->max - klen || rlen > s->max - klen - alen)
        goto refuse;
    size = offsetof(struct l1entry, data) + klen + alen + rlen;
    if (size < sizeof(*e))
        size = sizeof(*e);   /* never less than the struct, for the sanitizers' sake */
    if (size + L1STORE_CHUNK_HEADER + l1store_table_bytes(s) > s->max)
        goto refuse;
    e = malloc(size);
    if (e == NULL)
        goto refuse;
    cost = l1entry_cost(e);
    if (cost + l1store_table_bytes(s) > s->max)
        goto refuse;

    e->klen = (uint32_t)klen;
    e->alen = (uint32_t)alen;
    e->rlen = (uint32_t)rlen;
    e->cmd = cmd;
    e->mark = 0;
    e->epoch = s->epoch;
    e->filled = now;
    e->expires = expires;
    if (klen)
        memcpy(e->data, key, klen);
    if (alen)
        memcpy(e->data + klen, args, alen);
    if (rlen)
        memcpy(e->data + klen + alen, reply, rlen);
    /* the caller's pointers are not used past this line */

    if (*link != NULL)
        l1store_remove(s, link);
    for (;;) {
        int grow = s->count + 1 > s->nbuckets;
        size_t need = cost + (grow ? l1store_table_bytes(s) : 0);   /* doubling adds as much again */

        if (s->bytes + need <= s->max)
            break;
        assert(s->tail != NULL);   /* empty store: bytes == table bytes, the check above holds */
        l1store_remove(s, l1store_link_of(s, s->tail));
        s->evictions++;
    }
    if (s->count + 1 > s->nbuckets)
        (void)l1store_grow(s);   /* on failure the load just goes above 1 */

    link = l1store_bucket(s, e->data, klen);
    e->hnext = *link;
    *link = e;
    l1store_lru_push(s, e);
    s->count++;
    s->bytes += cost;
    s->payload += klen + alen + rlen;
    return e;

refuse:
    free(e);
    if (*link != NULL)
        l1store_remove(s, link);
    return NULL;
}

void l1store_verify(struct l1store *s, struct l1entry *e, uint64_t now, uint64_t expires)
{
    e->epoch = s->epoch;
    e->filled = now;
    e->expires = expires;
}

int l1store_verified(const struct l1store *s, const struct l1entry *e)
{
    return e->epoch == s->epoch;
}

void l1store_unverify_all(struct l1store *s)
{
    s->epoch += L1STORE_EPOCH_STEP;
    if (s->epoch < L1STORE_EPOCH_FIRST) {
        /* wrapped: old stamps could equal the new epoch; re-mark them all */
        struct l1entry *e;

        for (e = s->head; e != NULL; e = e->older)
            e->epoch = 0;
        s->epoch = L1STORE_EPOCH_FIRST;
    }
    s->uv_next = s->tail;
}

size_t l1store_unverify_if(struct l1store *s, int (*pred)(const struct l1entry *e, void *ctx), void *ctx)
{
    size_t n = 0;

    for (struct l1entry *e = s->head; e != NULL; e = e->older) {
        if (pred(e, ctx)) {
            e->epoch = 0;            /* neither the epoch nor its visited mark (both >= 1) */
            n++;
        }
    }
    s->uv_next = s->tail;
    return n;
}

void l1store_drop(struct l1store *s, struct l1entry *e)
{
    l1store_remove(s, l1store_link_of(s, e));
}

size_t l1store_drop_key(struct l1store *s, const char *key, size_t klen)
{
    struct l1entry **link = l1store_bucket(s, key, klen);
    struct l1entry *e;
    size_t n = 0;

    while ((e = *link) != NULL) {
        if (e->klen == klen && memcmp(e->data, key, klen) == 0) {
            l1store_remove(s, link);   /* *link is now the next entry */
            n++;
        } else {
            link = &e->hnext;
        }
    }
    return n;
}

void l1store_set_max(struct l1store *s, size_t maxmemory)
{
    s->max = maxmemory;
    while (s->bytes > s->max && s->tail != NULL) {
        l1store_remove(s, l1store_link_of(s, s->tail));
        s->evictions++;
    }
}

size_t l1store_flush(struct l1store *s)
{
    struct l1entry *e, *older;
    size_t n = s->count;

    for (e = s->head; e != NULL; e = older) {
        older = e->older;
        free(e);
    }
    memset(s->buckets, 0, l1store_table_bytes(s));
    s->head = s->tail = NULL;
    s->count = 0;
    s->payload = 0;
    s->bytes = l1store_table_bytes(s);
    s->uv_next = NULL;
    s->old_next = NULL;
    s->old_pass = 0;
    return n;
}

/*
 * Unverified entries not yet visited since the last l1store_unverify_all()
 * are visited once each, oldest use first; visiting marks them (epoch - 1),
 * so an entry used (moved to the head) after its visit is skipped later.
 */
size_t l1store_walk_unverified(struct l1store *s, size_t max,
                               void (*fn)(struct l1entry *e, void *ctx), void *ctx)
{
    struct l1entry *e;
    size_t n = 0;

    while (n < max && (e = s->uv_next) != NULL) {
        s->uv_next = e->newer;   /* before fn, which may drop e */
        if (e->epoch == s->epoch || e->epoch == s->epoch - 1)
            continue;            /* verified, or visited already */
        e->epoch = s->epoch - 1;
        n++;
        fn(e, ctx);
    }
    return n;
}

/*
 * One pass goes from the tail to the head across calls; a call that finds
 * the pass finished returns 0 and the next call starts a new pass at the
 * tail. An entry used after its visit may be visited again in the same pass
 * (it moved ahead of the cursor).
 */
size_t l1store_walk_older(struct l1store *s, uint64_t before, size_t max,
                          void (*fn)(struct l1entry *e, void *ctx), void *ctx)
{
    struct l1entry *e;
    size_t n = 0;

    if (!s->old_pass) {
        s->old_pass = 1;
        s->old_next = s->tail;
    }
    while (n < max && (e = s->old_next) != NULL) {
        s->old_next = e->newer;  /* before fn, which may drop e */
        if (e->epoch != s->epoch || e->filled >= before)
            continue;
        n++;
        fn(e, ctx);
    }
    if (n == 0 && s->old_next == NULL)
        s->old_pass = 0;
    return n;
}

size_t l1store_count(const struct l1store *s)
{
    return s->count;
}

size_t l1store_bytes(const struct l1store *s)
{
    return s->bytes;
}

size_t l1store_payload(const struct l1store *s)
{
    return s->payload;
}

uint64_t l1store_evictions(const struct l1store *s)
{
    return s->evictions;
}

size_t l1store_maxmemory(const struct l1store *s)
{
    return s->max;
}

struct l1entry *l1store_oldest(const struct l1store *s)
{
    return s->tail;
}

size_t l1store_drop_if(struct l1store *s, int (*pred)(const struct l1entry *e, void *ctx), void *ctx)
{
    struct l1entry *e, *newer;
    size_t n = 0;

    for (e = s->tail; e != NULL; e = newer) {
        newer = e->newer;        /* before the drop, which frees e */
        if (pred(e, ctx)) {
            l1store_drop(s, e);
            n++;
        }
    }
    return n;
}

int l1store_each(const struct l1store *s, int (*fn)(const struct l1entry *e, void *ctx), void *ctx)
{
    for (const struct l1entry *e = s->tail; e != NULL; e = e->newer) {
        int rc = fn(e, ctx);
        if (rc != 0)
            return rc;
    }
    return 0;
}
