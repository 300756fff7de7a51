/*
 * tests/unit/test_l1store.c — l1/store.c, the L1's memory.
 *
 * Lookup by (cmd, key, args), every variant of a key dropped together,
 * LRU eviction under a byte budget that is never exceeded, epoch validity,
 * the two resumable walks (robust to drops between and during calls), and
 * byte accounting recomputed from the entries themselves.
 */
#include <criterion/criterion.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "l1/store.h"

#define T_CHUNK_HEADER sizeof(size_t)   /* what the store adds to malloc_usable_size */
#define T_MIN_BUCKETS 16                /* the store's initial bucket array */
#define T_NKEYS 1000                    /* entries in the walk tests */

enum { T_GET = 1, T_HGETALL = 2, T_LRANGE = 3, T_HGET = 4 };


/* Put with NUL-terminated strings; the reply is the key's text. */
static struct l1entry *t_put(struct l1store *s, uint8_t cmd, const char *key, const char *args,
                             uint64_t now)
{
    return l1store_put(s, cmd, key, strlen(key), args, strlen(args), key, strlen(key), now, now + 1000);
}

static struct l1entry *t_get(struct l1store *s, uint8_t cmd, const char *key, const char *args)
{
    return l1store_get(s, cmd, key, strlen(key), args, strlen(args));
}

/* The index encoded in an entry's key "k<n>". */
static int t_index(const struct l1entry *e)
{
    size_t len;
    const char *k = l1entry_key(e, &len);
    char buf[32];

    cr_assert(len > 1 && len < sizeof(buf) && k[0] == 'k');
    memcpy(buf, k + 1, len - 1);
    buf[len - 1] = '\0';
    return atoi(buf);
}

/* Put T_NKEYS (or n) entries k0..k<n-1> with GET, k0 the least recently used. */
static void t_fill(struct l1store *s, int n)
{
    char key[32];

    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        cr_assert_not_null(t_put(s, T_GET, key, "", (uint64_t)i));
    }
}

/* Recomputed sums over the entries reached by walking. */
struct t_sums {
    size_t count;     /* entries visited */
    size_t cost;      /* malloc_usable_size + chunk header */
    size_t payload;   /* key + args + reply */
};

static void t_sum_fn(struct l1entry *e, void *ctx)
{
    struct t_sums *sum = ctx;
    size_t k, a, r;

    l1entry_key(e, &k);
    l1entry_args(e, &a);
    l1entry_reply(e, &r);
    sum->count++;
    sum->cost += malloc_usable_size(e) + T_CHUNK_HEADER;
    sum->payload += k + a + r;
}

/* Check count, payload and bytes against the entries (all must be verified):
 * what bytes holds beyond the entries is a bucket array of a power of two
 * pointers, at least one per entry (load <= 1). */
static void t_check_accounting(struct l1store *s)
{
    struct t_sums sum = { 0, 0, 0 };
    size_t table, buckets;

    while (l1store_walk_older(s, UINT64_MAX, SIZE_MAX, t_sum_fn, &sum) != 0)
        ;
    cr_assert_eq(sum.count, l1store_count(s));
    cr_assert_eq(sum.payload, l1store_payload(s));
    cr_assert_geq(l1store_bytes(s), sum.cost);
    table = l1store_bytes(s) - sum.cost;
    cr_assert_eq(table % sizeof(void *), 0);
    buckets = table / sizeof(void *);
    cr_assert_geq(buckets, T_MIN_BUCKETS);
    cr_assert_eq(buckets & (buckets - 1), 0, "bucket count %zu not a power of two", buckets);
    cr_assert_geq(buckets, sum.count, "load above 1: %zu entries, %zu buckets", sum.count, buckets);
}

/* Cost of one entry of this shape, measured in a scratch store. */
static size_t t_entry_cost(const char *key, const char *args)
{
    struct l1store *s = l1store_new(1 << 20);
    size_t before = l1store_bytes(s), cost;

    cr_assert_not_null(t_put(s, T_GET, key, args, 0));
    cost = l1store_bytes(s) - before;
    l1store_free(s);
    return cost;
}

Test(l1store, put_get_roundtrip_is_byte_exact)
{
    struct l1store *s = l1store_new(1 << 20);
    const char key[] = { 'k', '\0', 'e', 'y' };
    const char args[] = { '\0', 1, 'a', 'b', '\r', '\n' };
    char reply[300];
    struct l1entry *e;
    const char *p;
    size_t len;

    for (size_t i = 0; i < sizeof(reply); i++)
        reply[i] = (char)(i * 7);
    e = l1store_put(s, T_HGET, key, sizeof(key), args, sizeof(args), reply, sizeof(reply), 1000, 5000);
    cr_assert_not_null(e);
    cr_assert_eq(l1store_get(s, T_HGET, key, sizeof(key), args, sizeof(args)), e);

    p = l1entry_key(e, &len);
    cr_assert_eq(len, sizeof(key));
    cr_assert_arr_eq(p, key, sizeof(key));
    p = l1entry_args(e, &len);
    cr_assert_eq(len, sizeof(args));
    cr_assert_arr_eq(p, args, sizeof(args));
    p = l1entry_reply(e, &len);
    cr_assert_eq(len, sizeof(reply));
    cr_assert_arr_eq(p, reply, sizeof(reply));
    uint8_t want[20];
    SHA1((const unsigned char *)reply, sizeof(reply), want);
    cr_assert_arr_eq(l1entry_sha1(e), want, 20);
    cr_assert_eq(l1entry_cmd(e), T_HGET);
    cr_assert_eq(l1entry_filled(e), 1000);
    cr_assert_eq(l1entry_expires(e), 5000);
    cr_assert(l1store_verified(s, e));

    /* identity is (cmd, key, args) compared exactly */
    cr_assert_null(l1store_get(s, T_GET, key, sizeof(key), args, sizeof(args)));
    cr_assert_null(l1store_get(s, T_HGET, key, sizeof(key) - 1, args, sizeof(args)));
    cr_assert_null(l1store_get(s, T_HGET, key, sizeof(key), args, sizeof(args) - 1));
    cr_assert_null(l1store_get(s, T_HGET, "k", 1, args, sizeof(args)));
    l1store_free(s);
}

Test(l1store, empty_key_args_and_reply_roundtrip)
{
    struct l1store *s = l1store_new(1 << 20);
    struct l1entry *e = l1store_put(s, 0, "", 0, "", 0, "", 0, 1, 2);
    size_t len = 99;

    cr_assert_not_null(e);
    cr_assert_eq(l1store_get(s, 0, "", 0, "", 0), e);
    l1entry_key(e, &len);
    cr_assert_eq(len, 0);
    l1entry_args(e, &len);
    cr_assert_eq(len, 0);
    l1entry_reply(e, &len);
    cr_assert_eq(len, 0);
    cr_assert_eq(l1store_payload(s), 0);
    l1store_free(s);
}

Test(l1store, drop_key_drops_every_variant_and_nothing_else)
{
    struct l1store *s = l1store_new(1 << 20);
    char key[32];

    /* many other keys, so chains are shared with "k" in a small table */
    for (int i = 0; i < 12; i++) {
        snprintf(key, sizeof(key), "other%d", i);
        cr_assert_not_null(t_put(s, T_GET, key, "", 0));
        cr_assert_not_null(t_put(s, T_LRANGE, key, "0 9", 0));
    }
    cr_assert_not_null(t_put(s, T_GET, "k", "", 0));
    cr_assert_not_null(t_put(s, T_HGETALL, "k", "", 0));
    cr_assert_not_null(t_put(s, T_LRANGE, "k", "0 9", 0));
    cr_assert_not_null(t_put(s, T_LRANGE, "k", "0 10", 0));
    cr_assert_not_null(t_put(s, T_GET, "kk", "", 0));
    cr_assert_not_null(t_put(s, T_GET, "K", "", 0));
    cr_assert_not_null(t_put(s, T_LRANGE, "k2", "0 9", 0));
    cr_assert_eq(l1store_count(s), 24 + 4 + 3);

    cr_assert_eq(l1store_drop_key(s, "k", 1), 4);
    cr_assert_eq(l1store_count(s), 24 + 3);
    cr_assert_null(t_get(s, T_GET, "k", ""));
    cr_assert_null(t_get(s, T_HGETALL, "k", ""));
    cr_assert_null(t_get(s, T_LRANGE, "k", "0 9"));
    cr_assert_null(t_get(s, T_LRANGE, "k", "0 10"));
    cr_assert_not_null(t_get(s, T_GET, "kk", ""));
    cr_assert_not_null(t_get(s, T_GET, "K", ""));
    cr_assert_not_null(t_get(s, T_LRANGE, "k2", "0 9"));
    for (int i = 0; i < 12; i++) {
        snprintf(key, sizeof(key), "other%d", i);
        cr_assert_not_null(t_get(s, T_GET, key, ""));
        cr_assert_not_null(t_get(s, T_LRANGE, key, "0 9"));
    }
    cr_assert_eq(l1store_drop_key(s, "k", 1), 0);
    cr_assert_eq(l1store_drop_key(s, "absent", 6), 0);
    t_check_accounting(s);
    l1store_free(s);
}

Test(l1store, drop_removes_one_variant_only)
{
    struct l1store *s = l1store_new(1 << 20);
    struct l1entry *e;

    cr_assert_not_null(t_put(s, T_GET, "k", "", 0));
    e = t_put(s, T_LRANGE, "k", "0 9", 0);
    cr_assert_not_null(e);
    l1store_drop(s, e);
    cr_assert_eq(l1store_count(s), 1);
    cr_assert_null(t_get(s, T_LRANGE, "k", "0 9"));
    cr_assert_not_null(t_get(s, T_GET, "k", ""));
    t_check_accounting(s);
    l1store_free(s);
}

Test(l1store, replace_keeps_one_entry_with_the_new_value)
{
    struct l1store *s = l1store_new(1 << 20);
    struct l1entry *e;
    const char *p;
    size_t len, bytes;

    cr_assert_not_null(l1store_put(s, T_GET, "k", 1, "", 0, "old", 3, 1, 10));
    bytes = l1store_bytes(s);
    e = l1store_put(s, T_GET, "k", 1, "", 0, "new", 3, 2, 20);
    cr_assert_not_null(e);
    cr_assert_eq(l1store_count(s), 1);
    cr_assert_eq(l1store_bytes(s), bytes);
    cr_assert_eq(l1store_payload(s), 4);
    cr_assert_eq(l1store_get(s, T_GET, "k", 1, "", 0), e);
    p = l1entry_reply(e, &len);
    cr_assert_eq(len, 3);
    cr_assert_arr_eq(p, "new", 3);
    cr_assert_eq(l1entry_filled(e), 2);
    cr_assert_eq(l1entry_expires(e), 20);
    cr_assert_eq(l1store_evictions(s), 0);
    t_check_accounting(s);
    l1store_free(s);
}

Test(l1store, put_may_copy_from_the_entry_it_replaces)
{
    struct l1store *s = l1store_new(1 << 20);
    struct l1entry *old, *e;
    const char *k, *a, *r, *p;
    size_t klen, alen, rlen, len;

    old = l1store_put(s, T_LRANGE, "key", 3, "0 9", 3, "reply", 5, 1, 2);
    cr_assert_not_null(old);
    k = l1entry_key(old, &klen);
    a = l1entry_args(old, &alen);
    r = l1entry_reply(old, &rlen);
    e = l1store_put(s, T_LRANGE, k, klen, a, alen, r, rlen, 3, 4);
    cr_assert_not_null(e);
    cr_assert_eq(l1store_count(s), 1);
    p = l1entry_key(e, &len);
    cr_assert_eq(len, 3);
    cr_assert_arr_eq(p, "key", 3);
    p = l1entry_reply(e, &len);
    cr_assert_eq(len, 5);
    cr_assert_arr_eq(p, "reply", 5);
    cr_assert_eq(t_get(s, T_LRANGE, "key", "0 9"), e);
    l1store_free(s);
}

Test(l1store, eviction_follows_least_recent_use)
{
    size_t cost = t_entry_cost("k0", "");
    struct l1store *s = l1store_new(1);
    size_t table = l1store_bytes(s);

    l1store_free(s);
    /* room for exactly five such entries */
    s = l1store_new(table + 5 * cost + cost / 2);
    t_fill(s, 5);
    cr_assert_not_null(t_get(s, T_GET, "k0", ""));
    cr_assert_not_null(t_get(s, T_GET, "k2", ""));
    /* use order now, oldest first: k1 k3 k4 k0 k2 */
    cr_assert_not_null(t_put(s, T_GET, "k5", "", 0));
    cr_assert_null(t_get(s, T_GET, "k1", ""));
    cr_assert_eq(l1store_count(s), 5);
    cr_assert_not_null(t_put(s, T_GET, "k6", "", 0));
    cr_assert_null(t_get(s, T_GET, "k3", ""));
    cr_assert_not_null(t_put(s, T_GET, "k7", "", 0));
    cr_assert_null(t_get(s, T_GET, "k4", ""));
    cr_assert_not_null(t_get(s, T_GET, "k0", ""));
    cr_assert_not_null(t_get(s, T_GET, "k2", ""));
    cr_assert_not_null(t_get(s, T_GET, "k5", ""));
    cr_assert_eq(l1store_evictions(s), 3);
    cr_assert_leq(l1store_bytes(s), table + 5 * cost + cost / 2);
    t_check_accounting(s);
    l1store_free(s);
}

Test(l1store, budget_never_exceeded_over_random_puts)
{
    const size_t max = 256 * 1024;
    struct l1store *s = l1store_new(max);
    static char reply[5000];
    unsigned seed = 42;
    char key[32], args[32];
    size_t stored = 0;

    for (size_t i = 0; i < sizeof(reply); i++)
        reply[i] = (char)rand_r(&seed);
    for (int i = 0; i < 10000; i++) {
        uint8_t cmd = (uint8_t)(rand_r(&seed) % 4);
        size_t rlen = (rand_r(&seed) % 8 == 0) ? 0 : (size_t)rand_r(&seed) % sizeof(reply);
        size_t off = (size_t)rand_r(&seed) % (sizeof(reply) - rlen + 1);
        struct l1entry *e;
        const char *p;
        size_t len;

        snprintf(key, sizeof(key), "key:%d", rand_r(&seed) % 2000);
        snprintf(args, sizeof(args), "%d", rand_r(&seed) % 3);
        e = l1store_put(s, cmd, key, strlen(key), args, strlen(args), reply + off, rlen, (uint64_t)i, (uint64_t)i + 100);
        cr_assert_leq(l1store_bytes(s), max, "put %d: %zu bytes > budget %zu",
                      i, l1store_bytes(s), max);
        cr_assert_not_null(e, "put %d of %zu bytes refused", i, rlen);
        stored++;
        cr_assert_eq(l1store_get(s, cmd, key, strlen(key), args, strlen(args)), e);
        p = l1entry_reply(e, &len);
        cr_assert_eq(len, rlen);
        cr_assert_arr_eq(p, reply + off, rlen);
        if (i % 1000 == 999)
            t_check_accounting(s);
    }
    cr_assert_gt(l1store_evictions(s), 0);
    cr_assert_leq(l1store_count(s), stored);
    t_check_accounting(s);
    l1store_free(s);
}

Test(l1store, bucket_array_growth_counts_against_the_budget)
{
    size_t cost = t_entry_cost("k000", "");
    struct l1store *s = l1store_new(1);
    size_t table = l1store_bytes(s), max;
    char key[32];

    l1store_free(s);
    cr_assert_lt(cost / 2, table, "doubling must cost more than the slack");
    /* 17 entries fit, but not with the doubled table the 17th one needs */
    max = table + (T_MIN_BUCKETS + 1) * cost + cost / 2;
    s = l1store_new(max);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        cr_assert_not_null(t_put(s, T_GET, key, "", 0));
        cr_assert_leq(l1store_bytes(s), max, "put %d: %zu bytes > budget %zu",
                      i, l1store_bytes(s), max);
        t_check_accounting(s);
    }
    cr_assert_eq(l1store_count(s), T_MIN_BUCKETS);
    l1store_free(s);
}

Test(l1store, entry_larger_than_budget_is_refused_without_evicting)
{
    const size_t max = 4096;
    struct l1store *s = l1store_new(max);
    static char big[8192];

    t_fill(s, 5);
    cr_assert_null(l1store_put(s, T_GET, "big", 3, "", 0, big, sizeof(big), 0, 0));
    /* fits the budget alone, but not next to the bucket array */
    cr_assert_null(l1store_put(s, T_GET, "big", 3, "", 0, big, max - 3, 0, 0));
    cr_assert_eq(l1store_count(s), 5);
    cr_assert_eq(l1store_evictions(s), 0);
    /* a refused replacement drops the old entry */
    cr_assert_null(l1store_put(s, T_GET, "k1", 2, "", 0, big, sizeof(big), 0, 0));
    cr_assert_null(t_get(s, T_GET, "k1", ""));
    cr_assert_eq(l1store_count(s), 4);
    cr_assert_leq(l1store_bytes(s), max);
    t_check_accounting(s);
    l1store_free(s);
}

Test(l1store, unverify_all_unverifies_every_entry_and_verify_restamps)
{
    struct l1store *s = l1store_new(1 << 20);
    char key[32];
    struct l1entry *e;

    t_fill(s, 100);
    l1store_unverify_all(s);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        e = t_get(s, T_GET, key, "");
        cr_assert_not_null(e);
        cr_assert_not(l1store_verified(s, e));
    }
    e = t_get(s, T_GET, "k7", "");
    l1store_verify(s, e, 500, 900);
    cr_assert(l1store_verified(s, e));
    cr_assert_eq(l1entry_filled(e), 500);
    cr_assert_eq(l1entry_expires(e), 900);
    cr_assert_not(l1store_verified(s, t_get(s, T_GET, "k8", "")));
    /* a put is verified */
    cr_assert(l1store_verified(s, t_put(s, T_GET, "new", "", 0)));
    /* a second bump unverifies the re-stamped entry again */
    l1store_unverify_all(s);
    cr_assert_not(l1store_verified(s, e));
    l1store_free(s);
}

/* What a walk saw: visits per index, the order, and what fn drops. */
struct t_walk {
    struct l1store *s;      /* the store walked */
    int visits[T_NKEYS];    /* visits per entry index */
    int order[T_NKEYS * 2]; /* indices in visit order */
    int n;                  /* visits so far */
    int drop_every;         /* fn drops every drop_every-th visited entry (0: none) */
    int dropped[T_NKEYS];   /* entries dropped (by fn or between calls) */
};

static void t_walk_fn(struct l1entry *e, void *ctx)
{
    struct t_walk *w = ctx;
    int i = t_index(e);

    cr_assert_lt(i, T_NKEYS);
    cr_assert_not(w->dropped[i], "visited k%d after it was dropped", i);
    w->visits[i]++;
    w->order[w->n++] = i;
    if (w->drop_every && w->n % w->drop_every == 0) {
        w->dropped[i] = 1;
        l1store_drop(w->s, e);
    }
}

Test(l1store, walk_unverified_visits_each_once_oldest_first_when_fn_drops)
{
    struct l1store *s = l1store_new(1 << 24);
    static struct t_walk w;
    size_t total = 0, got;

    memset(&w, 0, sizeof(w));
    w.s = s;
    w.drop_every = 3;
    t_fill(s, T_NKEYS);
    l1store_unverify_all(s);
    while ((got = l1store_walk_unverified(s, 7, t_walk_fn, &w)) != 0) {
        cr_assert_leq(got, 7);
        total += got;
    }
    cr_assert_eq(total, T_NKEYS);
    for (int i = 0; i < T_NKEYS; i++) {
        cr_assert_eq(w.visits[i], 1, "k%d visited %d times", i, w.visits[i]);
        cr_assert_eq(w.order[i], i, "visit %d was k%d", i, w.order[i]);
    }
    cr_assert_eq(l1store_count(s), T_NKEYS - T_NKEYS / 3);
    cr_assert_eq(l1store_walk_unverified(s, 7, t_walk_fn, &w), 0);
    l1store_free(s);
}

Test(l1store, walk_unverified_survives_drops_between_batches)
{
    struct l1store *s = l1store_new(1 << 24);
    static struct t_walk w;
    unsigned seed = 7;
    char key[32];
    int newer = 0;

    memset(&w, 0, sizeof(w));
    w.s = s;
    t_fill(s, T_NKEYS);
    l1store_unverify_all(s);
    while (l1store_walk_unverified(s, 5, t_walk_fn, &w) != 0) {
        /* the next entry to visit (the cursor's), and a random other key */
        int next = w.order[w.n - 1] + 1;

        while (next < T_NKEYS && w.dropped[next])
            next++;
        if (next < T_NKEYS) {
            snprintf(key, sizeof(key), "k%d", next);
            cr_assert_eq(l1store_drop_key(s, key, strlen(key)), 1);
            w.dropped[next] = 1;
        }
        int r = rand_r(&seed) % T_NKEYS;
        snprintf(key, sizeof(key), "k%d", r);
        if (l1store_drop_key(s, key, strlen(key)) == 1)
            w.dropped[r] = 1;
        /* verified newcomers are not part of the walk */
        snprintf(key, sizeof(key), "new%d", newer++);
        cr_assert_not_null(t_put(s, T_GET, key, "", 0));
    }
    for (int i = 0; i < T_NKEYS; i++) {
        if (w.dropped[i])
            cr_assert_leq(w.visits[i], 1, "k%d visited %d times", i, w.visits[i]);
        else
            cr_assert_eq(w.visits[i], 1, "k%d visited %d times", i, w.visits[i]);
    }
    cr_assert_eq(l1store_walk_unverified(s, 5, t_walk_fn, &w), 0);
    l1store_free(s);
}

Test(l1store, walk_unverified_is_not_fooled_by_uses)
{
    struct l1store *s = l1store_new(1 << 24);
    static struct t_walk w;
    char key[32];

    memset(&w, 0, sizeof(w));
    w.s = s;
    t_fill(s, T_NKEYS);
    l1store_unverify_all(s);
    while (l1store_walk_unverified(s, 10, t_walk_fn, &w) != 0) {
        /* use the last visited (moves behind the cursor to the head) and the
         * next to visit (the cursor's own entry moves to the head) */
        int last = w.order[w.n - 1];

        snprintf(key, sizeof(key), "k%d", last);
        cr_assert_not_null(t_get(s, T_GET, key, ""));
        if (last + 1 < T_NKEYS) {
            snprintf(key, sizeof(key), "k%d", last + 1);
            cr_assert_not_null(t_get(s, T_GET, key, ""));
        }
    }
    for (int i = 0; i < T_NKEYS; i++)
        cr_assert_eq(w.visits[i], 1, "k%d visited %d times", i, w.visits[i]);
    l1store_free(s);
}

Test(l1store, walk_unverified_skips_verified_and_restarts_on_unverify_all)
{
    struct l1store *s = l1store_new(1 << 24);
    static struct t_walk w;
    char key[32];

    memset(&w, 0, sizeof(w));
    w.s = s;
    t_fill(s, T_NKEYS);
    cr_assert_eq(l1store_walk_unverified(s, 10, t_walk_fn, &w), 0);   /* all verified */
    l1store_unverify_all(s);
    for (int i = 0; i < T_NKEYS; i += 2) {
        snprintf(key, sizeof(key), "k%d", i);
        l1store_verify(s, t_get(s, T_GET, key, ""), 0, 0);
    }
    cr_assert_eq(l1store_walk_unverified(s, 100, t_walk_fn, &w), 100);
    /* restart: everything unverified again, visited ones included */
    l1store_unverify_all(s);
    while (l1store_walk_unverified(s, 100, t_walk_fn, &w) != 0)
        ;
    cr_assert_eq(w.n, 100 + T_NKEYS);
    for (int i = 0; i < T_NKEYS; i++) {
        int expect = (i % 2 == 1 && i < 200) ? 2 : 1;

        cr_assert_eq(w.visits[i], expect, "k%d visited %d times", i, w.visits[i]);
    }
    l1store_free(s);
}

/* unverify_if predicate: entries whose index is a multiple of 3. */
static int t_every_third(const struct l1entry *e, void *ctx)
{
    (void)ctx;
    return t_index(e) % 3 == 0;
}

Test(l1store, unverify_if_unverifies_the_matching_entries_and_restarts_the_walk)
{
    struct l1store *s = l1store_new(1 << 24);
    static struct t_walk w;
    char key[32];
    size_t n;

    memset(&w, 0, sizeof(w));
    w.s = s;
    t_fill(s, T_NKEYS);
    n = l1store_unverify_if(s, t_every_third, NULL);
    cr_assert_eq(n, (T_NKEYS + 2) / 3);
    for (int i = 0; i < T_NKEYS; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        cr_assert_eq(l1store_verified(s, t_get(s, T_GET, key, "")), i % 3 != 0, "k%d", i);
    }
    /* The walk visits exactly those; visited, they are not visited again... */
    while (l1store_walk_unverified(s, 50, t_walk_fn, &w) != 0)
        ;
    cr_assert_eq((size_t)w.n, n);
    cr_assert_eq(l1store_walk_unverified(s, 50, t_walk_fn, &w), 0);
    /* ...until they are unverified again (an origin came back). */
    cr_assert_eq(l1store_unverify_if(s, t_every_third, NULL), n);
    while (l1store_walk_unverified(s, 50, t_walk_fn, &w) != 0)
        ;
    cr_assert_eq((size_t)w.n, 2 * n);
    for (int i = 0; i < T_NKEYS; i++)
        cr_assert_eq(w.visits[i], i % 3 == 0 ? 2 : 0, "k%d visited %d times", i, w.visits[i]);
    l1store_free(s);
}

Test(l1store, walk_older_visits_verified_entries_filled_before)
{
    struct l1store *s = l1store_new(1 << 24);
    static struct t_walk w;
    char key[32];
    size_t got, total = 0;

    memset(&w, 0, sizeof(w));
    w.s = s;
    w.drop_every = 4;
    t_fill(s, T_NKEYS);                       /* k<i> filled at i */
    l1store_unverify_all(s);
    for (int i = 0; i < T_NKEYS; i++) {
        if (i % 10 == 0)
            continue;                         /* stays unverified */
        snprintf(key, sizeof(key), "k%d", i);
        struct l1entry *e = t_get(s, T_GET, key, "");

        l1store_verify(s, e, (uint64_t)i, 0);
    }
    while ((got = l1store_walk_older(s, 500, 9, t_walk_fn, &w)) != 0)
        total += got;
    cr_assert_eq(total, 450);
    for (int i = 0; i < T_NKEYS; i++) {
        int expect = (i < 500 && i % 10 != 0) ? 1 : 0;

        cr_assert_eq(w.visits[i], expect, "k%d visited %d times", i, w.visits[i]);
    }
    for (int i = 1; i < w.n; i++)
        cr_assert_lt(w.order[i - 1], w.order[i], "not oldest use first");
    /* a new pass starts after the 0; fn's drops are gone from it */
    w.drop_every = 0;
    total = 0;
    while ((got = l1store_walk_older(s, 500, 1000, t_walk_fn, &w)) != 0)
        total += got;
    cr_assert_eq(total, 450 - 450 / 4);
    l1store_free(s);
}

Test(l1store, walk_older_survives_drop_of_its_cursor_and_flush)
{
    struct l1store *s = l1store_new(1 << 24);
    static struct t_walk w;

    memset(&w, 0, sizeof(w));
    w.s = s;
    t_fill(s, 10);
    cr_assert_eq(l1store_walk_older(s, 100, 3, t_walk_fn, &w), 3);    /* k0 k1 k2 */
    cr_assert_eq(l1store_drop_key(s, "k3", 2), 1);                    /* the cursor's */
    cr_assert_eq(l1store_walk_older(s, 100, 3, t_walk_fn, &w), 3);    /* k4 k5 k6 */
    cr_assert_eq(w.order[3], 4);
    cr_assert_eq(w.order[5], 6);
    cr_assert_eq(l1store_flush(s), 9);                                /* mid-pass */
    cr_assert_eq(l1store_walk_older(s, 100, 3, t_walk_fn, &w), 0);
    memset(&w, 0, sizeof(w));
    w.s = s;
    t_fill(s, 10);
    cr_assert_eq(l1store_walk_older(s, 100, 3, t_walk_fn, &w), 3);    /* a new pass */
    cr_assert_eq(w.order[0], 0);
    l1store_free(s);
}

Test(l1store, flush_empties_the_store)
{
    struct l1store *s = l1store_new(1 << 24);
    static struct t_walk w;
    size_t empty = l1store_bytes(s);

    memset(&w, 0, sizeof(w));
    w.s = s;
    t_fill(s, T_NKEYS);
    l1store_unverify_all(s);
    cr_assert_eq(l1store_walk_unverified(s, 10, t_walk_fn, &w), 10);
    cr_assert_eq(l1store_flush(s), T_NKEYS);
    cr_assert_eq(l1store_count(s), 0);
    cr_assert_eq(l1store_payload(s), 0);
    cr_assert_geq(l1store_bytes(s), empty);   /* the bucket array stays */
    cr_assert_null(t_get(s, T_GET, "k5", ""));
    cr_assert_eq(l1store_walk_unverified(s, 10, t_walk_fn, &w), 0);
    cr_assert_eq(l1store_walk_older(s, UINT64_MAX, 10, t_walk_fn, &w), 0);
    cr_assert_eq(l1store_flush(s), 0);
    /* usable afterwards */
    t_fill(s, 10);
    cr_assert_not_null(t_get(s, T_GET, "k5", ""));
    t_check_accounting(s);
    l1store_free(s);
}

Test(l1store, accounting_matches_the_entries_after_mixed_operations)
{
    struct l1store *s = l1store_new(64 * 1024);
    static char reply[3000];
    unsigned seed = 3;
    char key[32];

    for (int i = 0; i < 5000; i++) {
        int op = rand_r(&seed) % 10;

        snprintf(key, sizeof(key), "key%d", rand_r(&seed) % 300);
        if (op < 6) {
            l1store_put(s, (uint8_t)(op % 3), key, strlen(key), "a", (size_t)(op % 2),
                        reply, (size_t)rand_r(&seed) % sizeof(reply), 0, 0);
        } else if (op < 8) {
            l1store_drop_key(s, key, strlen(key));
        } else {
            struct l1entry *e = l1store_get(s, 0, key, strlen(key), "", 0);

            if (e != NULL)
                l1store_drop(s, e);
        }
        cr_assert_leq(l1store_bytes(s), 64 * 1024);
        if (i % 250 == 0)
            t_check_accounting(s);
    }
    t_check_accounting(s);
    l1store_flush(s);
    t_check_accounting(s);
    l1store_free(s);
}

Test(l1store, rehash_under_growth_keeps_every_entry_findable)
{
    struct l1store *s = l1store_new((size_t)256 << 20);
    char key[32];
    int n = 100000;

    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        cr_assert_not_null(t_put(s, T_GET, key, "", 0));
        if ((i & (i + 1)) == 0)   /* right after each power of two */
            t_check_accounting(s);
    }
    cr_assert_eq(l1store_count(s), (size_t)n);
    cr_assert_eq(l1store_evictions(s), 0);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key:%d", i);
        struct l1entry *e = t_get(s, T_GET, key, "");
        const char *p;
        size_t len;

        cr_assert_not_null(e, "key:%d lost", i);
        p = l1entry_key(e, &len);
        cr_assert_eq(len, strlen(key));
        cr_assert_arr_eq(p, key, len);
    }
    t_check_accounting(s);
    for (int i = 0; i < n; i += 2) {
        snprintf(key, sizeof(key), "key:%d", i);
        cr_assert_eq(l1store_drop_key(s, key, strlen(key)), 1);
    }
    cr_assert_eq(l1store_count(s), (size_t)n / 2);
    l1store_free(s);
}

/* Overhead per entry beyond key + reply for n entries of 10-byte keys. */
static double t_overhead(size_t vlen)
{
    struct l1store *s = l1store_new((size_t)1 << 30);
    char key[16], value[128];
    const size_t n = 100000;
    double per;

    memset(value, 'v', sizeof(value));
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key:%06zu", i);
        cr_assert_not_null(l1store_put(s, T_GET, key, 10, "", 0, value, vlen, 0, 0));
    }
    cr_assert_eq(l1store_payload(s), n * (10 + vlen));
    per = (double)(l1store_bytes(s) - l1store_payload(s)) / (double)l1store_count(s);
    l1store_free(s);
    return per;
}

Test(l1store, overhead_per_entry_is_bounded)
{
    double small = t_overhead(3), large = t_overhead(100);

    /* under ASan malloc_usable_size is the requested size: smaller figures */
    fprintf(stderr, "l1store overhead per entry (100k, 10-byte keys): "
            "3-byte values %.1f, 100-byte values %.1f bytes\n", small, large);
    cr_assert_leq(small, 128.0);
    cr_assert_leq(large, 128.0);
}

Test(l1store, a_smaller_budget_evicts_from_the_lru_tail)
{
    struct l1store *s = l1store_new(64 * 1024);
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        cr_assert_not_null(t_put(s, 1, key, "", (uint64_t)i));
    }
    cr_assert_eq(l1store_count(s), 100);
    size_t before = l1store_bytes(s);
    l1store_set_max(s, before / 2);
    cr_assert_leq(l1store_bytes(s), before / 2, "the store fits its new budget");
    cr_assert_lt(l1store_count(s), 100);
    cr_assert_gt(l1store_count(s), 0);
    cr_assert_not_null(t_get(s, 1, "k99", ""), "the most recent entry stays");
    cr_assert_null(t_get(s, 1, "k0", ""), "the least recent one is gone");
    cr_assert_eq(l1store_evictions(s), 100 - l1store_count(s));
    l1store_set_max(s, 1024 * 1024);
    cr_assert_not_null(t_put(s, 1, "k0", "", 200), "a bigger budget takes entries again");
    l1store_free(s);
}

/* An entry's SHA1 is the SHA1 of its reply bytes, the same on every call. */
Test(l1store, sha1_is_computed_from_the_reply)
{
    struct l1store *s = l1store_new(1 << 20);
    const char reply[] = "$5\r\nhello\r\n";
    uint8_t want[20];

    SHA1((const unsigned char *)reply, sizeof(reply) - 1, want);
    struct l1entry *e = l1store_put(s, T_GET, "k", 1, "", 0, reply, sizeof(reply) - 1, 0, 1000);
    cr_assert_not_null(e);
    cr_assert(memcmp(l1entry_sha1(e), want, 20) == 0, "SHA1 differs from SHA1(reply)");
    cr_assert(memcmp(l1entry_sha1(e), want, 20) == 0, "second call differs");
    l1store_free(s);
}
