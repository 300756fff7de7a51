/*
 * test_l1.c — the L1 cache never serves a value the origin no longer holds.
 *
 *   test ──▶ redsnano (PORT 2s+1, --l1-maxmemory ...) ──fill / check──▶ redis (PORT 2s)
 *   test ─────────────────────────────────────────────── direct ──────▶ redis (PORT 2s)
 *
 * Every test starts its own redis-server and proxy (slot s: ports 7200+2s
 * and 7201+2s), waits for l1_ready:1 in REDSNANO L1, and checks one
 * behaviour of the L1 (l1/l1.h): reads after writes through the proxy,
 * writes made elsewhere (tracking, strict mode), a write racing a fill,
 * loss of the invalidation channel, single-flight fills, the memory bound,
 * expiry, FLUSHALL, HGETALL entries, and the default (off).  Writes "made
 * elsewhere" go straight to redis.  Races are forced with a short CLIENT PAUSE
 * ALL on redis, left to expire (an UNPAUSE would be paused too): it holds the
 * proxy's fill (PTTL then the read) while the proxy keeps counting.
 *
 * Every test then requires that the proxy exits 0 on SIGTERM, and every
 * failure message carries the REDSNANO L1 counters and the proxy log tail.
 *
 * Ports 7200-7299.  HARNESS_DIRECT=1 runs the read-after-write tests against
 * redis itself (checks the model); the rest are proxy-only and skip.
 */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define L1_PORT_BASE 7200                 /* this file's port range start */
#define L1_PORT(n) harness_port(L1_PORT_BASE, (n))
#define L1_READY_MS 5000                  /* bound for l1_ready:1 after start */
#define L1_FRESH_MS 100                   /* a write elsewhere is visible within this */
#define L1_POLL_MS 5                      /* polling period of the freshness tests */
#define L1_SEED 0x5eed1u                  /* PRNG seed of the random interleavings */
#define L1_RANDOM_OPS 10000               /* operations of the random interleaving */
#define L1_RANDOM_KEYS 50                 /* keys it works on */
#define L1_RANDOM_CONNS 4                 /* client connections it spreads them over */
#define L1_RANDOM_MAXLEN 64               /* APPEND turns into SET past this length */
#define L1_PIPE_ROUNDS 2000               /* GET/SET/GET/APPEND/GET rounds pipelined */
#define L1_PIPE_BATCH 8                   /* most rounds in one pipeline batch */
#define L1_ROUNDS 5                       /* repetitions of the timing / race tests */
#define L1_STRICT_ROUNDS 20               /* repetitions of the strict-mode test */
#define L1_PAUSE_MS 400                   /* CLIENT PAUSE ALL: holds a fill this long */
#define L1_STEP_MS 2000                   /* bound for the proxy to reach a counted step */
#define L1_HELD_KEYS 20                   /* entries held across the subscriber kill */
#define L1_REVAL_MS 5000                  /* bound for the revalidation after the kill */
#define L1_CONCURRENT 100                 /* clients of the single-flight test */
#define L1_LRU_KEYS 5000                  /* keys read through a 1 MB L1 */
#define L1_LRU_VALUE 1024                 /* bytes per value */
#define L1_LRU_MAXMEMORY 1048576          /* --l1-maxmemory 1mb */
#define L1_LRU_CHECK_EVERY 50             /* GETs between checks of l1_bytes */
#define L1_SHORT_PX 200                   /* PX of the expiry test */
#define L1_SHORT_WAIT 250                 /* sleep past that expiry */
#define L1_FLUSH_KEYS 10                  /* entries before FLUSHALL */
#define L1_MAX_ARGS 24                    /* proxy arguments of one test */

static harness_proc *l1_redis;            /* the origin */
static harness_proc *l1_proxy;            /* the proxy (pseudo handle in direct mode) */
static redisContext *l1_px;               /* a client through the proxy */
static redisContext *l1_admin;            /* REDSNANO L1 through the proxy */
static redisContext *l1_rd;               /* straight to redis ("elsewhere") */
static char l1_primary[32];               /* "127.0.0.1:<redis port>" */

static void l1_fini(void)
{
    if (l1_px != NULL)
        redisFree(l1_px);
    if (l1_admin != NULL)
        redisFree(l1_admin);
    if (l1_rd != NULL)
        redisFree(l1_rd);
    l1_px = l1_admin = l1_rd = NULL;
    harness_cleanup();
}

TestSuite(l1, .fini = l1_fini, .timeout = 60);

/* ---- counters and failure messages -------------------------------------- */

/* The REDSNANO L1 text (malloc'd), or a description of why it is missing. */
static char *l1_stats_text(void)
{
    redisContext *c = l1_admin;
    redisReply *r;
    char *out;

    if (l1_proxy == NULL)
        return strdup("(no proxy)");
    if (c == NULL || c->err)
        c = harness_try_connect(l1_proxy->port, 1000);
    if (c == NULL)
        return strdup("(proxy unreachable)");
    r = redisCommand(c, "REDSNANO L1");
    if (r == NULL)
        out = strdup("(no reply to REDSNANO L1)");
    else if (r->type != REDIS_REPLY_STRING)
        out = harness_reply_str(r);
    else
        out = strdup(r->str);
    if (r != NULL)
        freeReplyObject(r);
    if (c != l1_admin)
        redisFree(c);
    return out;
}

/* Fail with msg, the L1 counters and the proxy log tail (harness_diag). */
static void l1_fail_at(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void l1_fail_at(int line, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cr_assert_fail("line %d: %s%s", line, msg, harness_diag());
    abort();                            /* cr_assert_fail does not return */
}

/* REDSNANO L1 counters for failure messages (harness_diag_set). */
static char *l1_diag(void)
{
    char *stats = l1_stats_text();
    size_t cap = strlen(stats) + 32;
    char *out = malloc(cap);

    if (out != NULL)
        snprintf(out, cap, "--- REDSNANO L1 ---\n%s", stats);
    free(stats);
    return out;
}

#define L1_FAIL(...) l1_fail_at(__LINE__, __VA_ARGS__)
#define L1_CHECK(cond, ...)          \
    do {                             \
        if (!(cond))                 \
            L1_FAIL(__VA_ARGS__);    \
    } while (0)

/* One REDSNANO L1 counter (fails when absent). */
static long long l1_stat_at(int line, const char *name)
{
    redisReply *r = harness_expect_at(line, l1_admin, REDIS_REPLY_STRING, "REDSNANO L1");
    char v[64];
    int rc = harness_text_field(r->str, name, v, sizeof(v));

    freeReplyObject(r);
    if (rc != 0)
        l1_fail_at(line, "REDSNANO L1 has no %s", name);
    return strtoll(v, NULL, 10);
}

#define L1_STAT(name) l1_stat_at(__LINE__, (name))

/* Wait until counter name >= want; its last value. */
static long long l1_wait_stat_at(int line, const char *name, long long want, int bound_ms)
{
    long long v;

    if (!harness_wait_until((v = l1_stat_at(line, name)) >= want, bound_ms))
        l1_fail_at(line, "%s stayed at %lld for %d ms, wanted >= %lld", name, v, bound_ms, want);
    return v;
}

#define L1_WAIT_STAT(name, want, bound_ms) l1_wait_stat_at(__LINE__, (name), (want), (bound_ms))

/* ---- processes ------------------------------------------------------------ */

/*
 * Start redis on slot s and the proxy in front of it with the given extra
 * arguments (NULL-terminated), connect, and wait for l1_ready:1 when l1 is
 * on.  Proxy-only tests call harness_skip_if_direct() first.
 */
static const char *l1_args[L1_MAX_ARGS];  /* the proxy's arguments (for a restart) */

/* Start the proxy with args on port, connect l1_px and l1_admin, and wait
 * for l1_ready:1 when l1 is on. */
static void l1_proxy_start_at(int line, int port, const char *const *args, bool l1_on)
{
    l1_proxy = harness_try_proxy_startv(port, args, true);
    cr_assert_not_null(l1_proxy, "line %d: redsnano start failed: %s", line, harness_error());
    l1_px = harness_connect(l1_proxy->port);
    l1_admin = harness_connect(l1_proxy->port);
    harness_diag_set(l1_proxy, l1_diag);
    if (l1_on && !harness_direct())
        l1_wait_stat_at(line, "l1_ready", 1, L1_READY_MS);
}

static void l1_start_at(int line, int slot, bool l1_on, const char *const *extra)
{
    const char **args = l1_args;
    size_t n = 0;

    l1_redis = harness_redis_start(L1_PORT(2 * slot), "--enable-debug-command", "local");
    snprintf(l1_primary, sizeof(l1_primary), "127.0.0.1:%d", l1_redis->port);
    args[n++] = "--primary";
    args[n++] = l1_primary;
    /* These tests read a key once and expect it filled: admission off
     * unless a test turns it on (the last --l1-admission given wins). */
    args[n++] = "--l1-admission";
    args[n++] = "no";
    for (size_t i = 0; extra[i] != NULL && n + 1 < L1_MAX_ARGS; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    l1_rd = harness_connect(l1_redis->port);
    l1_proxy_start_at(line, L1_PORT(2 * slot + 1), args, l1_on);
}

/* Stop the proxy with SIGTERM (it must exit 0), closing l1_px and
 * l1_admin; l1_proxy_start_at(line, l1_proxy->port, l1_args, ...) starts
 * it again as it was. */
static void l1_proxy_stop_at(int line)
{
    redisFree(l1_px);
    redisFree(l1_admin);
    l1_px = l1_admin = NULL;
    int st = harness_proxy_stop(l1_proxy);
    if (st != 0)
        l1_fail_at(line, "the proxy %s on SIGTERM", harness_status_str(st));
}

#define L1_PROXY_STOP() l1_proxy_stop_at(__LINE__)

#define L1_START(slot, ...)                                                          \
    do {                                                                            \
        static const char *const l1_extra_[] = { __VA_ARGS__, NULL };               \
        l1_start_at(__LINE__, (slot), true, l1_extra_);                             \
    } while (0)

/* An L1 test: the body, then the clean-exit check of the proxy. */
#define L1_TEST(name, ...)                            \
    static void l1_body_##name(void);                 \
    Test(l1, name, ##__VA_ARGS__)                     \
    {                                                 \
        l1_body_##name();                             \
        harness_proxy_check_exit(l1_proxy);           \
    }                                                 \
    static void l1_body_##name(void)

/* ---- commands ------------------------------------------------------------ */

/* A GET-like reply as a malloc'd string, NULL for nil; fails on other types. */
static char *l1_value_at(int line, redisReply *r, const char *what)
{
    char *v = NULL;

    if (r->type == REDIS_REPLY_STRING)
        v = strdup(r->str);
    else if (r->type != REDIS_REPLY_NIL)
        l1_fail_at(line, "%s: replied %s, wanted a bulk string or nil", what, harness_reply_str(r));
    freeReplyObject(r);
    return v;
}

/* GET key through c. */
static char *l1_get_at(int line, redisContext *c, const char *key)
{
    return l1_value_at(line, harness_expect_at(line, c, HARNESS_ANY, "GET %s", key), key);
}

#define L1_GET(c, key) l1_get_at(__LINE__, (c), (key))

/* The id of redis's client running cmd=subscribe (the L1's subscriber). */
static long long l1_subscriber_id(void)
{
    redisReply *r = harness_reply(l1_rd, "CLIENT LIST");
    long long id = -1;
    int found = 0;

    L1_CHECK(r->type == REDIS_REPLY_STRING, "CLIENT LIST replied %s", harness_reply_str(r));
    for (char *line = r->str; line != NULL && *line != '\0';) {
        char *eol = strchr(line, '\n');

        if (eol != NULL)
            *eol = '\0';
        if (strstr(line, " cmd=subscribe") != NULL && strncmp(line, "id=", 3) == 0) {
            id = strtoll(line + 3, NULL, 10);
            found++;
        }
        line = eol != NULL ? eol + 1 : NULL;
    }
    freeReplyObject(r);
    L1_CHECK(found == 1, "CLIENT LIST on redis shows %d clients with cmd=subscribe, wanted 1", found);
    return id;
}

/* ---- the model of the random interleaving -------------------------------- */

/* xorshift64*: reproducible from L1_SEED. */
static uint64_t l1_rng_state;

static uint64_t l1_rand(void)
{
    l1_rng_state ^= l1_rng_state >> 12;
    l1_rng_state ^= l1_rng_state << 25;
    l1_rng_state ^= l1_rng_state >> 27;
    return l1_rng_state * 2685821657736338717ull;
}

static unsigned l1_rand_below(unsigned n)
{
    return (unsigned)((l1_rand() >> 33) % n);
}

/* Redis's integer reading of a string value (string2ll): no sign '+', no
 * leading zeros, no spaces, within long long. */
static bool l1_model_ll(const char *s, long long *out)
{
    size_t n = strlen(s), i = 0;
    unsigned long long v = 0;
    bool neg = false;

    if (n == 0 || n > 20)
        return false;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    if (s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i >= n || s[i] < '1' || s[i] > '9')
        return false;
    for (; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');

        if (s[i] < '0' || s[i] > '9' || v > (ULLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return false;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}

/* Describe a reply briefly for messages (static buffer). */
static const char *l1_brief(const redisReply *r)
{
    static char buf[512];
    char *s = harness_reply_str(r);

    snprintf(buf, sizeof(buf), "%s", s != NULL ? s : "?");
    free(s);
    return buf;
}

/* ---- 1. read after write --------------------------------------------------- */

L1_TEST(read_after_write_through_the_proxy_is_never_stale)
{
    redisContext *conns[L1_RANDOM_CONNS];
    char *model[L1_RANDOM_KEYS] = { 0 };
    long long gets = 0, hits0 = 0;

    L1_START(0, "--l1-maxmemory", "64mb");
    for (int i = 0; i < L1_RANDOM_CONNS; i++)
        conns[i] = harness_connect(l1_proxy->port);
    if (!harness_direct())
        hits0 = L1_STAT("l1_hits");
    l1_rng_state = L1_SEED;
    for (int op = 0; op < L1_RANDOM_OPS; op++) {
        unsigned k = l1_rand_below(L1_RANDOM_KEYS), kind = l1_rand_below(100);
        redisContext *c = conns[l1_rand_below(L1_RANDOM_CONNS)];
        char key[32], val[64];
        char **m = &model[k];
        redisReply *r;

        snprintf(key, sizeof(key), "rk:%u", k);
        if (kind < 40) {                                  /* GET */
            r = harness_reply(c, "GET %s", key);
            gets++;
            if (*m == NULL ? r->type != REDIS_REPLY_NIL
                           : r->type != REDIS_REPLY_STRING || strcmp(r->str, *m) != 0)
                L1_FAIL("op %d (seed 0x%x): GET %s returned %s, the model holds %s%s%s", op, L1_SEED, key,
                        l1_brief(r), *m ? "\"" : "", *m ? *m : "nil", *m ? "\"" : "");
        } else if (kind < 60 || (kind >= 85 && *m != NULL && strlen(*m) > L1_RANDOM_MAXLEN)) {  /* SET */
            switch (l1_rand_below(4)) {
            case 0:
                snprintf(val, sizeof(val), "%d", (int)l1_rand_below(2001) - 1000);
                break;
            case 1:
                snprintf(val, sizeof(val), "%s", l1_rand_below(2) ? "0" : "");
                break;
            default:
                snprintf(val, sizeof(val), "s%x", (unsigned)l1_rand_below(1u << 20));
                break;
            }
            r = harness_reply(c, "SET %s %s", key, val);
            if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
                L1_FAIL("op %d: SET %s %s returned %s", op, key, val, l1_brief(r));
            free(*m);
            *m = strdup(val);
        } else if (kind < 70) {                           /* DEL */
            r = harness_reply(c, "DEL %s", key);
            if (r->type != REDIS_REPLY_INTEGER || r->integer != (*m != NULL))
                L1_FAIL("op %d: DEL %s returned %s, wanted :%d", op, key, l1_brief(r), *m != NULL);
            free(*m);
            *m = NULL;
        } else if (kind < 85) {                           /* INCR */
            long long v = 0;
            bool ok = *m == NULL || (l1_model_ll(*m, &v) && v != LLONG_MAX);

            r = harness_reply(c, "INCR %s", key);
            if (ok) {
                if (r->type != REDIS_REPLY_INTEGER || r->integer != v + 1)
                    L1_FAIL("op %d: INCR %s returned %s, wanted :%lld (model \"%s\")", op, key, l1_brief(r),
                            v + 1, *m ? *m : "nil");
                snprintf(val, sizeof(val), "%lld", v + 1);
                free(*m);
                *m = strdup(val);
            } else if (r->type != REDIS_REPLY_ERROR) {
                L1_FAIL("op %d: INCR %s returned %s, wanted an error (model \"%s\")", op, key, l1_brief(r),
                        *m);
            }
        } else {                                          /* APPEND */
            static const char *const chunks[] = { "1", "9", "0", "x", "-", "" };
            const char *chunk = chunks[l1_rand_below(sizeof(chunks) / sizeof(chunks[0]))];
            size_t len = (*m ? strlen(*m) : 0) + strlen(chunk);

            r = harness_reply(c, "APPEND %s %s", key, chunk);
            if (r->type != REDIS_REPLY_INTEGER || r->integer != (long long)len)
                L1_FAIL("op %d: APPEND %s %s returned %s, wanted :%zu", op, key, chunk, l1_brief(r), len);
            char *nv = malloc(len + 1);
            cr_assert_not_null(nv);
            snprintf(nv, len + 1, "%s%s", *m ? *m : "", chunk);
            free(*m);
            *m = nv;
        }
        freeReplyObject(r);
    }
    /* The interleaving must have exercised the cache, or it proves nothing. */
    if (!harness_direct()) {
        long long hits = L1_STAT("l1_hits") - hits0;

        L1_CHECK(hits > 0, "%lld GETs, none served from the L1", gets);
    }
    for (int i = 0; i < L1_RANDOM_CONNS; i++)
        redisFree(conns[i]);
    for (int i = 0; i < L1_RANDOM_KEYS; i++)
        free(model[i]);
}

L1_TEST(read_after_write_in_one_pipeline_is_never_stale)
{
    char *model[L1_RANDOM_KEYS] = { 0 };
    long long hits0 = 0;
    int round = 0;

    L1_START(1, "--l1-maxmemory", "64mb");
    if (!harness_direct())
        hits0 = L1_STAT("l1_hits");
    l1_rng_state = L1_SEED + 1;
    while (round < L1_PIPE_ROUNDS) {
        unsigned batch = 1 + l1_rand_below(L1_PIPE_BATCH);
        unsigned keys[L1_PIPE_BATCH];
        char vals[L1_PIPE_BATCH][32];
        char key[32];

        /* A lone GET first, so that the batch starts on a cached entry. */
        keys[0] = l1_rand_below(L1_RANDOM_KEYS);
        snprintf(key, sizeof(key), "pk:%u", keys[0]);
        harness_expect_bulk(l1_px, model[keys[0]], "GET %s", key);
        for (unsigned b = 0; b < batch; b++) {
            if (b > 0)
                keys[b] = l1_rand_below(L1_RANDOM_KEYS);
            snprintf(key, sizeof(key), "pk:%u", keys[b]);
            snprintf(vals[b], sizeof(vals[b]), "v%d.%u", round + (int)b, (unsigned)l1_rand_below(1000));
            redisAppendCommand(l1_px, "GET %s", key);
            redisAppendCommand(l1_px, "SET %s %s", key, vals[b]);
            redisAppendCommand(l1_px, "GET %s", key);
            redisAppendCommand(l1_px, "APPEND %s +", key);
            redisAppendCommand(l1_px, "GET %s", key);
        }
        harness_pipe_flush(l1_px);
        for (unsigned b = 0; b < batch; b++, round++) {
            char **m = &model[keys[b]];
            char after[sizeof(vals[0]) + 2];
            redisReply *r;

            snprintf(key, sizeof(key), "pk:%u", keys[b]);
            snprintf(after, sizeof(after), "%s+", vals[b]);
            r = harness_pipe_reply(l1_px, "GET before SET");
            if (*m == NULL ? r->type != REDIS_REPLY_NIL
                           : r->type != REDIS_REPLY_STRING || strcmp(r->str, *m) != 0)
                L1_FAIL("round %d: pipelined GET %s (before SET) returned %s, model \"%s\"", round, key,
                        l1_brief(r), *m ? *m : "nil");
            freeReplyObject(r);
            r = harness_pipe_reply(l1_px, "SET");
            L1_CHECK(r->type == REDIS_REPLY_STATUS, "round %d: SET %s returned %s", round, key, l1_brief(r));
            freeReplyObject(r);
            r = harness_pipe_reply(l1_px, "GET after SET");
            if (r->type != REDIS_REPLY_STRING || strcmp(r->str, vals[b]) != 0)
                L1_FAIL("round %d: SET %s %s; GET %s in one pipeline returned %s", round, key, vals[b], key,
                        l1_brief(r));
            freeReplyObject(r);
            r = harness_pipe_reply(l1_px, "APPEND");
            L1_CHECK(r->type == REDIS_REPLY_INTEGER && r->integer == (long long)strlen(after),
                     "round %d: APPEND %s + returned %s", round, key, l1_brief(r));
            freeReplyObject(r);
            r = harness_pipe_reply(l1_px, "GET after APPEND");
            if (r->type != REDIS_REPLY_STRING || strcmp(r->str, after) != 0)
                L1_FAIL("round %d: APPEND %s +; GET %s in one pipeline returned %s, wanted \"%s\"", round,
                        key, key, l1_brief(r), after);
            freeReplyObject(r);
            free(*m);
            *m = strdup(after);
        }
    }
    if (!harness_direct())
        L1_CHECK(L1_STAT("l1_hits") > hits0, "no read of the pipelined test was served from the L1");
    for (int i = 0; i < L1_RANDOM_KEYS; i++)
        free(model[i]);
}

/* ---- 2, 3. writes elsewhere ------------------------------------------------ */

L1_TEST(write_elsewhere_is_seen_within_100ms_in_tracking_mode)
{
    long long worst = 0;

    harness_skip_if_direct();
    L1_START(2, "--l1-maxmemory", "64mb", "--l1-mode", "tracking");
    for (int round = 0; round < L1_ROUNDS; round++) {
        char key[32], v1[32], v2[32];
        long long hits, t0, seen = -1;

        snprintf(key, sizeof(key), "tk:%d", round);
        snprintf(v1, sizeof(v1), "old-%d", round);
        snprintf(v2, sizeof(v2), "new-%d", round);
        harness_cmd_ok(l1_rd, "SET %s %s", key, v1);
        harness_expect_bulk(l1_px, v1, "GET %s", key);              /* fill */
        hits = L1_STAT("l1_hits");
        harness_expect_bulk(l1_px, v1, "GET %s", key);              /* hit */
        L1_CHECK(L1_STAT("l1_hits") == hits + 1, "round %d: the second GET %s was no L1 hit", round, key);
        harness_cmd_ok(l1_rd, "SET %s %s", key, v2);
        t0 = harness_now_ms();
        while (seen < 0) {
            char *v = L1_GET(l1_px, key);
            long long now = harness_now_ms();

            L1_CHECK(v != NULL && (strcmp(v, v1) == 0 || strcmp(v, v2) == 0),
                     "round %d: GET %s returned %s, wanted \"%s\" or \"%s\"", round, key, v ? v : "nil", v1, v2);
            if (strcmp(v, v2) == 0)
                seen = now - t0;
            else if (now - t0 > L1_FRESH_MS)
                L1_FAIL("round %d: %lld ms after SET %s %s on redis, the proxy still returns \"%s\"", round,
                        now - t0, key, v2, v);
            free(v);
            if (seen < 0)
                harness_sleep_ms(L1_POLL_MS);
        }
        if (seen > worst)
            worst = seen;
    }
    cr_log_info("tracking: slowest invalidation seen after %lld ms", worst);
}

L1_TEST(write_elsewhere_is_seen_on_the_next_read_in_strict_mode)
{
    harness_skip_if_direct();
    L1_START(3, "--l1-maxmemory", "64mb", "--l1-mode", "strict");
    for (int round = 0; round < L1_STRICT_ROUNDS; round++) {
        char key[32], v1[32], v2[32];
        long long checks, hits;

        snprintf(key, sizeof(key), "sk:%d", round);
        snprintf(v1, sizeof(v1), "old-%d", round);
        snprintf(v2, sizeof(v2), "new-%d", round);
        harness_cmd_ok(l1_rd, "SET %s %s", key, v1);
        harness_expect_bulk(l1_px, v1, "GET %s", key);              /* fill */
        checks = L1_STAT("l1_checks");
        hits = L1_STAT("l1_hits");
        harness_expect_bulk(l1_px, v1, "GET %s", key);              /* a hit, made by a hash check */
        L1_CHECK(L1_STAT("l1_checks") == checks + 1 && L1_STAT("l1_hits") == hits + 1,
                 "round %d: in strict mode the second GET %s was not a hash-checked hit", round, key);
        harness_cmd_ok(l1_rd, "SET %s %s", key, v2);
        harness_expect_bulk(l1_px, v2, "GET %s", key);              /* the very next read */
        harness_expect_bulk(l1_px, v2, "GET %s", key);
    }
}

/* ---- 4. a write racing a fill ---------------------------------------------- */

L1_TEST(invalidate_before_fill_reply_is_not_cached)
{
    redisContext *a, *b;

    harness_skip_if_direct();
    L1_START(4, "--l1-maxmemory", "64mb");
    a = harness_connect(l1_proxy->port);
    b = harness_connect(l1_proxy->port);
    for (int round = 0; round < L1_ROUNDS; round++) {
        char key[32], old[32], new[32];
        long long fills, cancelled;
        redisReply *ra, *rb;
        char *va;

        snprintf(key, sizeof(key), "race:%d", round);
        snprintf(old, sizeof(old), "old-%d", round);
        snprintf(new, sizeof(new), "new-%d", round);
        harness_cmd_ok(l1_rd, "SET %s %s", key, old);
        fills = L1_STAT("l1_fills");
        cancelled = L1_STAT("l1_fills_cancelled");

        harness_cmd_ok(l1_rd, "CLIENT PAUSE %d ALL", L1_PAUSE_MS);
        /* A's GET misses: its fill reaches redis and is held. */
        redisAppendCommand(a, "GET %s", key);
        harness_pipe_flush(a);
        L1_WAIT_STAT("l1_fills", fills + 1, L1_STEP_MS);
        /* B's SET through the proxy cancels that fill before redis runs it. */
        redisAppendCommand(b, "SET %s %s", key, new);
        harness_pipe_flush(b);
        L1_WAIT_STAT("l1_fills_cancelled", cancelled + 1, L1_STEP_MS);
        /* The pause expires by itself; then redis runs the fill and the SET. */

        ra = harness_pipe_reply(a, "A's GET");
        va = l1_value_at(__LINE__, ra, "A's GET");
        L1_CHECK(va != NULL && (strcmp(va, old) == 0 || strcmp(va, new) == 0),
                 "round %d: A's GET %s returned %s, wanted \"%s\" or \"%s\"", round, key, va ? va : "nil", old,
                 new);
        free(va);
        rb = harness_pipe_reply(b, "B's SET");
        L1_CHECK(rb->type == REDIS_REPLY_STATUS && strcmp(rb->str, "OK") == 0,
                 "round %d: B's SET %s returned %s", round, key, l1_brief(rb));
        freeReplyObject(rb);
        harness_expect_bulk(l1_px, new, "GET %s", key);
        harness_expect_bulk(l1_px, new, "GET %s", key);
    }
    redisFree(a);
    redisFree(b);
}

/* ---- 5. losing the invalidation channel -------------------------------------- */

L1_TEST(client_kill_of_subscriber_revalidates_instead_of_flushing)
{
    enum { CHANGED = 7 };
    long long hits, sub_id, deadline, unchanged0, changed0, reads = 0;
    char key[32], val[32];
    redisReply *r;

    harness_skip_if_direct();
    L1_START(5, "--l1-maxmemory", "64mb");
    for (int i = 0; i < L1_HELD_KEYS; i++) {
        snprintf(key, sizeof(key), "hk:%d", i);
        snprintf(val, sizeof(val), "v-%d", i);
        harness_cmd_ok(l1_rd, "SET %s %s", key, val);
        harness_expect_bulk(l1_px, val, "GET %s", key);
    }
    hits = L1_STAT("l1_hits");
    for (int i = 0; i < L1_HELD_KEYS; i++) {
        snprintf(key, sizeof(key), "hk:%d", i);
        snprintf(val, sizeof(val), "v-%d", i);
        harness_expect_bulk(l1_px, val, "GET %s", key);
    }
    L1_CHECK(L1_STAT("l1_hits") == hits + L1_HELD_KEYS, "the %d keys were not all L1 hits", L1_HELD_KEYS);
    L1_CHECK(L1_STAT("l1_entries") == L1_HELD_KEYS, "l1_entries is not %d", L1_HELD_KEYS);
    unchanged0 = L1_STAT("l1_reval_unchanged");
    changed0 = L1_STAT("l1_reval_changed");

    sub_id = l1_subscriber_id();
    r = harness_reply(l1_rd, "CLIENT KILL ID %lld", sub_id);
    L1_CHECK(r->type == REDIS_REPLY_INTEGER && r->integer == 1, "CLIENT KILL ID %lld returned %s", sub_id,
             l1_brief(r));
    freeReplyObject(r);
    /* Changed while nobody listens for invalidations. */
    harness_cmd_ok(l1_rd, "SET hk:%d changed", CHANGED);

    deadline = harness_now_ms() + L1_REVAL_MS;
    for (;;) {
        long long entries, unchanged, changed;

        snprintf(key, sizeof(key), "hk:%d", CHANGED);
        harness_expect_bulk(l1_px, "changed", "GET %s", key);
        reads++;
        entries = L1_STAT("l1_entries");
        unchanged = L1_STAT("l1_reval_unchanged") - unchanged0;
        changed = L1_STAT("l1_reval_changed") - changed0;
        L1_CHECK(entries >= L1_HELD_KEYS - 1, "after the kill l1_entries fell to %lld (flushed?)", entries);
        if (unchanged >= L1_HELD_KEYS - 1 && changed >= 1)
            break;
        if (harness_now_ms() > deadline)
            L1_FAIL("%d ms after the kill: %lld revalidated unchanged (wanted %d), %lld changed (wanted >= 1)",
                    L1_REVAL_MS, unchanged, L1_HELD_KEYS - 1, changed);
        harness_sleep_ms(L1_POLL_MS);
    }
    L1_CHECK(L1_STAT("l1_ready") == 1, "the L1 is not ready again after revalidating");
    L1_CHECK(L1_STAT("l1_tracking_resets") >= 1, "the kill was not counted in l1_tracking_resets");
    /* Every entry is current afterwards; and the subscriber is back. */
    for (int i = 0; i < L1_HELD_KEYS; i++) {
        snprintf(key, sizeof(key), "hk:%d", i);
        snprintf(val, sizeof(val), "v-%d", i);
        harness_expect_bulk(l1_px, i == CHANGED ? "changed" : val, "GET %s", key);
    }
    L1_CHECK(l1_subscriber_id() != sub_id, "the subscriber did not reconnect");
    cr_log_info("subscriber kill: %lld reads of the changed key, all current", reads);
}

/* ---- 6. single flight ------------------------------------------------------- */

L1_TEST(hundred_concurrent_gets_of_a_cold_key_cost_one_redis_get)
{
    redisContext *cs[L1_CONCURRENT];
    long long coalesced0, fills0;
    redisReply *r;

    harness_skip_if_direct();
    L1_START(6, "--l1-maxmemory", "64mb");
    for (int i = 0; i < L1_CONCURRENT; i++)
        cs[i] = harness_connect(l1_proxy->port);
    harness_cmd_ok(l1_rd, "SET cold the-value");
    harness_cmd_ok(l1_rd, "CONFIG RESETSTAT");
    coalesced0 = L1_STAT("l1_coalesced");
    fills0 = L1_STAT("l1_fills");

    harness_cmd_ok(l1_rd, "CLIENT PAUSE %d ALL", L1_PAUSE_MS);
    for (int i = 0; i < L1_CONCURRENT; i++) {
        redisAppendCommand(cs[i], "GET cold");
        harness_pipe_flush(cs[i]);
    }
    /* All 100 are at the proxy, waiting on the one held fill. */
    L1_WAIT_STAT("l1_coalesced", coalesced0 + L1_CONCURRENT - 1, L1_STEP_MS);
    /* The pause expires by itself. */
    for (int i = 0; i < L1_CONCURRENT; i++) {
        char *v = l1_value_at(__LINE__, harness_pipe_reply(cs[i], "GET cold"), "GET cold");

        L1_CHECK(v != NULL && strcmp(v, "the-value") == 0, "client %d: GET cold returned %s", i,
                 v ? v : "nil");
        free(v);
        redisFree(cs[i]);
    }
    L1_CHECK(L1_STAT("l1_fills") == fills0 + 1, "the 100 GETs made %lld fills, wanted 1",
             L1_STAT("l1_fills") - fills0);
    r = harness_reply(l1_rd, "INFO commandstats");
    L1_CHECK(r->type == REDIS_REPLY_STRING, "INFO commandstats returned %s", l1_brief(r));
    {
        long long gets = harness_text_cmdstat(r->str, "get");
        long long pttls = harness_text_cmdstat(r->str, "pttl");
        long long execs = harness_text_cmdstat(r->str, "exec");
        long long evalshas = harness_text_cmdstat(r->str, "evalsha");

        /* A fill is PTTL then GET, pipelined, no transaction (l1/fill.c). */
        if (gets != 1 || pttls != 1 || execs > 0)
            L1_FAIL("redis ran GET %lld times, PTTL %lld times, %lld transactions (EVALSHA %lld) for 100 "
                    "concurrent GETs; wanted 1, 1, none; commandstats:\n%s",
                    gets, pttls, execs, evalshas, r->str);
    }
    freeReplyObject(r);
}

/* ---- 7. the memory bound ------------------------------------------------------ */

L1_TEST(lru_stays_within_maxmemory)
{
    static char value[L1_LRU_VALUE + 1];
    long long worst = 0;

    harness_skip_if_direct();
    L1_START(7, "--l1-maxmemory", "1mb");
    L1_CHECK(L1_STAT("l1_maxmemory") == L1_LRU_MAXMEMORY, "l1_maxmemory is not %d", L1_LRU_MAXMEMORY);
    memset(value, 'x', L1_LRU_VALUE);
    for (int i = 0; i < L1_LRU_KEYS; i++)
        redisAppendCommand(l1_rd, "SET lru:%d %d:%s", i, i, value + 8);
    harness_pipe_flush(l1_rd);
    for (int i = 0; i < L1_LRU_KEYS; i++)
        freeReplyObject(harness_pipe_reply(l1_rd, "SET lru:i"));
    for (int i = 0; i < L1_LRU_KEYS; i++) {
        char key[32];
        char *v;

        snprintf(key, sizeof(key), "lru:%d", i);
        v = L1_GET(l1_px, key);
        L1_CHECK(v != NULL && atoi(v) == i && strlen(v) >= L1_LRU_VALUE - 8, "GET %s returned a wrong value",
                 key);
        free(v);
        if (i % L1_LRU_CHECK_EVERY == 0 || i == L1_LRU_KEYS - 1) {
            long long bytes = L1_STAT("l1_bytes");

            L1_CHECK(bytes <= L1_LRU_MAXMEMORY, "after %d GETs l1_bytes is %lld > %d", i + 1, bytes,
                     L1_LRU_MAXMEMORY);
            if (bytes > worst)
                worst = bytes;
        }
    }
    L1_CHECK(L1_STAT("l1_inv_eviction") > 0, "5000 KB read through a 1 MB L1 evicted nothing");
    L1_CHECK(L1_STAT("l1_entries") > 0, "the 1 MB L1 holds nothing");
    cr_log_info("lru: l1_bytes peaked at %lld of %d", worst, L1_LRU_MAXMEMORY);
}

/* ---- 8. expiry ---------------------------------------------------------------- */

L1_TEST(pexpire_entry_not_served_after_expiry)
{
    long long hits;

    harness_skip_if_direct();
    L1_START(8, "--l1-maxmemory", "64mb");
    /* Redis itself then expires the key only when it is read, so neither its
     * expiry cycle nor a tracking message can hide an L1 entry that
     * outlives its PTTL: only the entry's own expiry can. */
    harness_cmd_ok(l1_rd, "DEBUG SET-ACTIVE-EXPIRE 0");
    harness_cmd_ok(l1_px, "SET pk v PX %d", L1_SHORT_PX);
    harness_expect_bulk(l1_px, "v", "GET %s", "pk");                /* fill: PTTL ~200 bounds the entry */
    hits = L1_STAT("l1_hits");
    harness_expect_bulk(l1_px, "v", "GET %s", "pk");
    L1_CHECK(L1_STAT("l1_hits") == hits + 1, "the second GET pk was no L1 hit");
    harness_sleep_ms(L1_SHORT_WAIT);
    harness_expect_bulk(l1_px, NULL, "GET %s", "pk");
    harness_expect_bulk(l1_px, NULL, "GET %s", "pk");
}

/* ---- 9. FLUSHALL elsewhere ---------------------------------------------------- */

L1_TEST(flushall_elsewhere_empties_the_l1)
{
    char key[32], val[32];
    long long t0, entries;

    harness_skip_if_direct();
    L1_START(9, "--l1-maxmemory", "64mb");
    for (int i = 0; i < L1_FLUSH_KEYS; i++) {
        snprintf(key, sizeof(key), "fk:%d", i);
        snprintf(val, sizeof(val), "v-%d", i);
        harness_cmd_ok(l1_rd, "SET %s %s", key, val);
        harness_expect_bulk(l1_px, val, "GET %s", key);
        harness_expect_bulk(l1_px, val, "GET %s", key);
    }
    L1_CHECK(L1_STAT("l1_entries") == L1_FLUSH_KEYS, "l1_entries is not %d before FLUSHALL", L1_FLUSH_KEYS);
    harness_cmd_ok(l1_rd, "FLUSHALL");
    t0 = harness_now_ms();
    while ((entries = L1_STAT("l1_entries")) != 0) {
        if (harness_now_ms() - t0 > L1_FRESH_MS) {
            char *v = L1_GET(l1_px, "fk:0");

            L1_FAIL("%lld ms after FLUSHALL on redis, l1_entries is still %lld (GET fk:0 returns %s)",
                    harness_now_ms() - t0, entries, v ? v : "nil");
        }
        harness_sleep_ms(L1_POLL_MS);
    }
    for (int i = 0; i < L1_FLUSH_KEYS; i++) {
        snprintf(key, sizeof(key), "fk:%d", i);
        harness_expect_bulk(l1_px, NULL, "GET %s", key);
    }
}

/* ---- 10. HGETALL ------------------------------------------------------------- */

/* Does an HGETALL reply hold exactly the given field/value pairs ("a=1")? */
static bool l1_hash_is(const redisReply *r, const char *const *pairs, size_t n)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool found = false;

        for (size_t j = 0; j + 1 < r->elements; j += 2) {
            char pair[128];

            snprintf(pair, sizeof(pair), "%s=%s", r->element[j]->str, r->element[j + 1]->str);
            if (strcmp(pair, pairs[i]) == 0)
                found = true;
        }
        if (!found)
            return false;
    }
    return true;
}

#define L1_EXPECT_HASH(c, key, ...)                                                           \
    do {                                                                                      \
        static const char *const want_[] = { __VA_ARGS__ };                                   \
        redisReply *r_ = harness_reply((c), "HGETALL %s", (key));                                   \
        if (!l1_hash_is(r_, want_, sizeof(want_) / sizeof(want_[0])))                         \
            L1_FAIL("HGETALL %s returned %s, wanted %s", (key), l1_brief(r_), #__VA_ARGS__);  \
        freeReplyObject(r_);                                                                  \
    } while (0)

L1_TEST(hgetall_entries_invalidated_by_hset)
{
    long long hits, t0;

    harness_skip_if_direct();
    L1_START(10, "--l1-maxmemory", "64mb", "--l1-commands", "GET HGETALL");
    redisReply *r = harness_reply(l1_px, "HSET h a 1");
    freeReplyObject(r);
    L1_EXPECT_HASH(l1_px, "h", "a=1");             /* fill */
    hits = L1_STAT("l1_hits");
    L1_EXPECT_HASH(l1_px, "h", "a=1");             /* hit */
    L1_CHECK(L1_STAT("l1_hits") == hits + 1, "the second HGETALL h was no L1 hit");
    freeReplyObject(harness_reply(l1_px, "HSET h b 2"));
    L1_EXPECT_HASH(l1_px, "h", "a=1", "b=2");      /* write through the proxy */
    L1_EXPECT_HASH(l1_px, "h", "a=1", "b=2");      /* cached again */
    freeReplyObject(harness_reply(l1_rd, "HSET h c 3"));  /* write elsewhere */
    t0 = harness_now_ms();
    for (;;) {
        static const char *const all[] = { "a=1", "b=2", "c=3" };
        redisReply *h = harness_reply(l1_px, "HGETALL h");
        long long now = harness_now_ms();

        if (l1_hash_is(h, all, 3)) {
            freeReplyObject(h);
            break;
        }
        if (!l1_hash_is(h, all, 2))
            L1_FAIL("HGETALL h returned %s, neither the old nor the new hash", l1_brief(h));
        if (now - t0 > L1_FRESH_MS)
            L1_FAIL("%lld ms after HSET h c 3 on redis, HGETALL h through the proxy is still %s", now - t0,
                    l1_brief(h));
        freeReplyObject(h);
        harness_sleep_ms(L1_POLL_MS);
    }
}

/* ---- 11. off by default --------------------------------------------------------- */

L1_TEST(l1_off_by_default)
{
    static const char *const none[] = { NULL };

    harness_skip_if_direct();
    l1_start_at(__LINE__, 11, false, none);
    L1_CHECK(L1_STAT("l1_enabled") == 0, "l1_enabled is not 0 without --l1-maxmemory");
    harness_cmd_ok(l1_px, "SET k v");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    harness_cmd_ok(l1_rd, "SET k w");
    harness_expect_bulk(l1_px, "w", "GET %s", "k");
    L1_CHECK(L1_STAT("l1_entries") == 0, "the L1 holds entries while off");
}

/* ---- 12. the other cacheable commands ----------------------------------------- */

/* A command through the proxy must equal the same command on redis (cmd is
 * a hiredis format without '%': its words are the arguments). */
static void l1_same_as_redis_at(int line, const char *cmd)
{
    redisReply *a = harness_expect_at(line, l1_px, HARNESS_ANY, cmd);
    redisReply *b = harness_expect_at(line, l1_rd, HARNESS_ANY, cmd);
    if (!harness_reply_equal(a, b))
        l1_fail_at(line, "%s: proxy %s, redis %s", cmd, l1_brief(a), l1_brief(b));
    freeReplyObject(a);
    freeReplyObject(b);
}
#define L1_SAME_AS_REDIS(cmd) l1_same_as_redis_at(__LINE__, (cmd))

L1_TEST(hget_lrange_smembers_zrange_are_cached_and_invalidated)
{
    static const char *const reads[] = { "HGET h f", "LRANGE l 0 -1", "SMEMBERS s", "ZRANGE z 0 -1 WITHSCORES" };
    static const char *const writes_proxy[] = { "HSET h f 2", "RPUSH l c", "SADD s c", "ZADD z 3 c" };
    static const char *const writes_elsewhere[] = { "HSET h f 3", "RPUSH l d", "SADD s d", "ZADD z 4 d" };

    harness_skip_if_direct();
    L1_START(12, "--l1-maxmemory", "64mb", "--l1-commands", "HGET LRANGE SMEMBERS ZRANGE");
    freeReplyObject(harness_reply(l1_px, "HSET h f 1"));
    freeReplyObject(harness_reply(l1_px, "RPUSH l a b"));
    freeReplyObject(harness_reply(l1_px, "SADD s a b"));
    freeReplyObject(harness_reply(l1_px, "ZADD z 1 a 2 b"));
    for (size_t i = 0; i < 4; i++) {
        long long fills = L1_STAT("l1_fills"), hits = L1_STAT("l1_hits");
        L1_SAME_AS_REDIS(reads[i]);                /* fill */
        L1_SAME_AS_REDIS(reads[i]);                /* hit */
        L1_CHECK(L1_STAT("l1_fills") == fills + 1 && L1_STAT("l1_hits") == hits + 1,
                 "%s: not filled once then hit", reads[i]);
        freeReplyObject(harness_expect_at(__LINE__, l1_px, HARNESS_ANY, writes_proxy[i]));
        L1_SAME_AS_REDIS(reads[i]);                /* the write through the proxy is seen */
        freeReplyObject(harness_expect_at(__LINE__, l1_rd, HARNESS_ANY, writes_elsewhere[i]));
        long long t0 = harness_now_ms();
        for (;;) {
            redisReply *a = harness_expect_at(__LINE__, l1_px, HARNESS_ANY, reads[i]);
            redisReply *b = harness_expect_at(__LINE__, l1_rd, HARNESS_ANY, reads[i]);
            int same = harness_reply_equal(a, b);
            freeReplyObject(a);
            freeReplyObject(b);
            if (same)
                break;
            if (harness_now_ms() - t0 > L1_FRESH_MS)
                L1_FAIL("%s: a write on redis not seen within %d ms", reads[i], L1_FRESH_MS);
            harness_sleep_ms(L1_POLL_MS);
        }
    }
    /* Different arguments are different entries of the same key. */
    L1_SAME_AS_REDIS("LRANGE l 0 0");
    L1_SAME_AS_REDIS("LRANGE l 1 1");
    freeReplyObject(harness_reply(l1_px, "LPUSH l z"));
    L1_SAME_AS_REDIS("LRANGE l 0 0");
    L1_SAME_AS_REDIS("LRANGE l 1 1");
}

/* ---- 13. background revalidation ------------------------------------------- */

L1_TEST(old_entries_are_revalidated_in_the_background)
{
    harness_skip_if_direct();
    L1_START(13, "--l1-maxmemory", "64mb", "--l1-revalidate-after", "200");
    harness_cmd_ok(l1_px, "SET k v");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    /* Nobody touches k: the cron re-checks its hash every ~200 ms. */
    L1_WAIT_STAT("l1_reval_unchanged", 2, 3000);
    L1_CHECK(L1_STAT("l1_entries") == 1, "the revalidated entry is gone");
    long long hits = L1_STAT("l1_hits");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    L1_CHECK(L1_STAT("l1_hits") == hits + 1, "the revalidated entry is not served");
}

/* ---- 14. serving stale entries while the origin is down ---------------------- */

L1_TEST(serve_stale_answers_from_the_l1_while_the_origin_is_down)
{
    harness_skip_if_direct();
    L1_START(14, "--l1-maxmemory", "64mb", "--l1-serve-stale", "yes", "--backend-timeout", "300",
             "--connect-timeout", "200");
    harness_cmd_ok(l1_px, "SET k v");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    harness_redis_kill9(l1_redis);
    /* Writes fail, reads of cached keys are still answered, and counted. */
    long long t0 = harness_now_ms();
    int served = 0;
    while (!served && harness_now_ms() - t0 < 3000) {
        redisReply *r = harness_reply(l1_px, "GET k");
        served = r->type == REDIS_REPLY_STRING && strcmp(r->str, "v") == 0 && L1_STAT("l1_stale_served") > 0;
        freeReplyObject(r);
        if (!served)
            harness_sleep_ms(50);
    }
    L1_CHECK(served, "GET k was not served stale with the origin down");
    redisReply *w = harness_reply(l1_px, "SET k w");
    L1_CHECK(w->type == REDIS_REPLY_ERROR, "a write succeeded with the origin down: %s", l1_brief(w));
    freeReplyObject(w);
    /* That write never reached Redis (no connection): k is still "v". */
    long long stale = L1_STAT("l1_stale_served");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    L1_CHECK(L1_STAT("l1_stale_served") == stale + 1, "the stale read was not counted");
    harness_redis_restart(l1_redis);
}

L1_TEST(without_serve_stale_reads_fail_while_the_origin_is_down)
{
    harness_skip_if_direct();
    L1_START(15, "--l1-maxmemory", "64mb", "--backend-timeout", "300", "--connect-timeout", "200");
    harness_cmd_ok(l1_px, "SET k v");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    harness_redis_kill9(l1_redis);
    /* Once the proxy has noticed, a cached key is not served. */
    long long t0 = harness_now_ms();
    int failed = 0;
    while (!failed && harness_now_ms() - t0 < 3000) {
        redisReply *r = harness_reply(l1_px, "GET k");
        failed = r->type == REDIS_REPLY_ERROR;
        if (!failed && !(r->type == REDIS_REPLY_STRING && strcmp(r->str, "v") == 0))
            L1_FAIL("GET k answered %s", l1_brief(r));
        freeReplyObject(r);
        if (!failed)
            harness_sleep_ms(50);
    }
    L1_CHECK(failed, "GET k kept being answered with the origin down and l1-serve-stale no");
    L1_CHECK(L1_STAT("l1_stale_served") == 0, "stale reads were served without l1-serve-stale");
    harness_redis_restart(l1_redis);
}

/* ---- 12. issue 13: admission, fills without MULTI, INVALIDATE, the audit -- */

#define L1_ONE_HIT_KEYS 200               /* distinct keys read once in the admission test */
#define L1_RACE_ROUNDS 300                /* write-vs-fill rounds of the no-MULTI race test */
#define L1_RACE_READS 4                   /* pipelined proxy GETs per round */
#define L1_PATTERN_KEYS 10                /* keys per prefix in the INVALIDATE test */
#define L1_HOT_READS 40                   /* reads of the hot key before the room-admission test */
#define L1_ROOM_KEYS 1500                 /* 1 KB keys read once through a 1 MB L1 (more than fit) */

/* The value of key straight from redis (malloc'd, NULL for nil). */
static char *l1_direct_get(const char *key)
{
    return l1_value_at(__LINE__, harness_expect_at(__LINE__, l1_rd, HARNESS_ANY, "GET %s", key), key);
}

/* A cold L1 (no hits yet): one-hit keys pass through, and are not stored. */
L1_TEST(admission_keeps_one_hit_keys_out)
{
    char key[32];

    harness_skip_if_direct();
    L1_START(16, "--l1-maxmemory", "64mb", "--l1-admission", "yes");
    /* Half the keys exist, half do not: nil replies follow the same rule. */
    for (int i = 0; i < L1_ONE_HIT_KEYS; i += 2)
        harness_cmd_ok(l1_rd, "SET once:%d v%d", i, i);
    long long fills0 = L1_STAT("l1_fills");
    for (int i = 0; i < L1_ONE_HIT_KEYS; i++) {
        snprintf(key, sizeof(key), "once:%d", i);
        char *v = L1_GET(l1_px, key);
        char want[32];
        snprintf(want, sizeof(want), "v%d", i);
        L1_CHECK(i % 2 ? v == NULL : (v != NULL && strcmp(v, want) == 0), "GET %s returned %s", key,
                 v ? v : "nil");
        free(v);
    }
    L1_CHECK(L1_STAT("l1_entries") == 0, "%lld one-hit keys were stored", L1_STAT("l1_entries"));
    L1_CHECK(L1_STAT("l1_fills") == fills0, "%lld fills for one-hit keys", L1_STAT("l1_fills") - fills0);
    L1_CHECK(L1_STAT("l1_admission_rejected") == L1_ONE_HIT_KEYS, "%lld of %d one-hit reads passed through",
             L1_STAT("l1_admission_rejected"), L1_ONE_HIT_KEYS);
    /* A second read of an existing and of a missing key fills them; a
     * third is a hit. */
    harness_expect_bulk(l1_px, "v0", "GET %s", "once:0");
    char *nil = L1_GET(l1_px, "once:1");
    L1_CHECK(nil == NULL, "GET once:1 returned %s", nil);
    L1_CHECK(L1_STAT("l1_entries") == 2, "a key read twice was not stored (%lld entries)", L1_STAT("l1_entries"));
    long long hits = L1_STAT("l1_hits");
    harness_expect_bulk(l1_px, "v0", "GET %s", "once:0");
    nil = L1_GET(l1_px, "once:1");
    L1_CHECK(nil == NULL, "GET once:1 returned %s", nil);
    L1_CHECK(L1_STAT("l1_hits") == hits + 2, "the third reads were not L1 hits");
}

/*
 * Fills are PTTL then GET without MULTI: a write landing anywhere around
 * them must never leave a stale entry. Each round races a direct SET with
 * pipelined proxy GETs (fills, coalesced waits, hits), then requires that
 * the proxy answers the written value within L1_FRESH_MS and keeps
 * answering it (a stale entry would keep the old one until its TTL).
 */
/* Rounds of: the entry dropped, L1_RACE_READS pipelined GETs from two
 * clients with a direct SET racing them; then the new value must be served
 * within L1_FRESH_MS and never the old one again. side_writes: each GET
 * follows a write of another key from the same client, so its fill is read
 * on the client's own (shared) connection to the primary, not on a fill
 * connection. */
static void l1_race_at(int line, bool side_writes)
{
    char want[32];
    redisContext *px2 = harness_connect(l1_proxy->port);

    harness_cmd_ok(l1_rd, "SET race v0");
    for (int round = 1; round <= L1_RACE_ROUNDS; round++) {
        /* Drop the entry so that the reads below fill again. */
        redisReply *dr = harness_reply(l1_admin, "REDSNANO L1 INVALIDATE race");
        freeReplyObject(dr);
        for (int i = 0; i < L1_RACE_READS; i++) {
            if (side_writes)
                redisAppendCommand(i % 2 ? px2 : l1_px, "SET race:side%d x", i % 2);
            redisAppendCommand(i % 2 ? px2 : l1_px, "GET race");
            harness_pipe_flush(i % 2 ? px2 : l1_px);
            if (i == round % L1_RACE_READS) {
                redisAppendCommand(l1_rd, "SET race v%d", round);
                harness_pipe_flush(l1_rd);
            }
        }
        for (int i = 0; i < L1_RACE_READS; i++) {
            if (side_writes)
                freeReplyObject(harness_pipe_reply(i % 2 ? px2 : l1_px, "SET race:side"));
            free(l1_value_at(line, harness_pipe_reply(i % 2 ? px2 : l1_px, "GET race"), "GET race"));
        }
        freeReplyObject(harness_pipe_reply(l1_rd, "SET race"));
        snprintf(want, sizeof(want), "v%d", round);
        char *v = NULL;
        bool fresh = harness_wait_until((free(v), v = L1_GET(l1_px, "race"), v && strcmp(v, want) == 0),
                                        L1_FRESH_MS);
        if (!fresh)
            l1_fail_at(line, "round %d: GET race answered %s %d ms after SET race %s", round, v ? v : "nil",
                       L1_FRESH_MS, want);
        free(v);
        for (int i = 0; i < 2; i++) {
            v = l1_get_at(line, i ? px2 : l1_px, "race");
            if (!(v && strcmp(v, want) == 0))
                l1_fail_at(line, "round %d: GET race went back to %s (want %s)", round, v ? v : "nil", want);
            free(v);
        }
    }
    if (!(l1_stat_at(line, "l1_hits") > 0 && l1_stat_at(line, "l1_fills") >= L1_RACE_ROUNDS))
        l1_fail_at(line, "the race test made no hits or too few fills");
    redisFree(px2);
}

L1_TEST(a_write_racing_fills_without_multi_never_leaves_a_stale_entry)
{
    harness_skip_if_direct();
    L1_START(17, "--l1-maxmemory", "64mb", "--l1-fill-connections", "4");
    l1_race_at(__LINE__, false);
}

L1_TEST(a_write_racing_fills_on_the_clients_own_connection_never_leaves_a_stale_entry)
{
    harness_skip_if_direct();
    L1_START(22, "--l1-maxmemory", "64mb");
    long long bypass0 = L1_STAT("l1_bypass");
    l1_race_at(__LINE__, true);
    /* The reads rode the clients' connections (before l1-tracking
     * broadcast, a read after a write in flight was forwarded around the
     * L1, and the race above never filled). */
    long long bypass = L1_STAT("l1_bypass") - bypass0, pending = L1_STAT("l1_bypass_pending");
    L1_CHECK(bypass - pending <= L1_RACE_ROUNDS, "%lld reads forwarded around the L1 (%lld for a write in flight)",
             bypass, pending);
}

L1_TEST(broadcast_tracking_keeps_no_key_table_in_redis_and_fills_on_the_clients_connection)
{
    char key[32], want[32];

    harness_skip_if_direct();
    L1_START(23, "--l1-maxmemory", "64mb");
    for (int i = 0; i < 200; i++)
        harness_cmd_ok(l1_rd, "SET bc:%d v%d", i, i);
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "bc:%d", i);
        snprintf(want, sizeof(want), "v%d", i);
        char *v = L1_GET(l1_px, key);
        L1_CHECK(v && strcmp(v, want) == 0, "GET %s answered %s", key, v ? v : "nil");
        free(v);
    }
    L1_CHECK(L1_STAT("l1_fills") >= 200, "only %lld fills for 200 cold keys", L1_STAT("l1_fills"));
    /* Redis keeps no per-key table for the L1: one BCAST prefix (""). */
    long long keys = harness_info_ll(l1_rd, "stats", "tracking_total_keys");
    long long prefixes = harness_info_ll(l1_rd, "stats", "tracking_total_prefixes");
    L1_CHECK(keys == 0 && prefixes == 1, "Redis tracks %lld keys and %lld prefixes (want 0 and 1)", keys, prefixes);

    /* A write elsewhere is still reported. */
    harness_cmd_ok(l1_rd, "SET bc:7 changed");
    char *v = NULL;
    bool fresh = harness_wait_until((free(v), v = L1_GET(l1_px, "bc:7"), v && strcmp(v, "changed") == 0), L1_FRESH_MS);
    L1_CHECK(fresh, "GET bc:7 answered %s %d ms after a direct SET", v ? v : "nil", L1_FRESH_MS);
    free(v);

    /* Reads pipelined after a write: filled on the client's connection
     * (where the write is in flight), not forwarded around the L1. */
    for (int i = 0; i < 10; i++)
        harness_cmd_ok(l1_rd, "SET bc:cold:%d c%d", i, i);
    long long fills0 = L1_STAT("l1_fills"), bypass0 = L1_STAT("l1_bypass");
    redisAppendCommand(l1_px, "SET bc:side x");
    for (int i = 0; i < 10; i++)
        redisAppendCommand(l1_px, "GET bc:cold:%d", i);
    harness_pipe_flush(l1_px);
    freeReplyObject(harness_pipe_reply(l1_px, "SET bc:side"));
    for (int i = 0; i < 10; i++) {
        snprintf(want, sizeof(want), "c%d", i);
        v = l1_value_at(__LINE__, harness_pipe_reply(l1_px, "GET bc:cold"), "GET bc:cold");
        L1_CHECK(v && strcmp(v, want) == 0, "GET bc:cold:%d answered %s", i, v ? v : "nil");
        free(v);
    }
    long long fills = L1_STAT("l1_fills") - fills0, bypass = L1_STAT("l1_bypass") - bypass0;
    L1_CHECK(fills == 10 && bypass == 0, "10 reads after a write: %lld fills, %lld forwarded (want 10, 0)", fills,
             bypass);
    long long hits0 = L1_STAT("l1_hits");
    v = L1_GET(l1_px, "bc:cold:3");
    L1_CHECK(v && strcmp(v, "c3") == 0 && L1_STAT("l1_hits") == hits0 + 1, "GET bc:cold:3 answered %s, %lld hits",
             v ? v : "nil", L1_STAT("l1_hits") - hits0);
    free(v);
}

L1_TEST(keys_tracking_has_redis_remember_the_keys_read)
{
    char key[32];

    harness_skip_if_direct();
    L1_START(24, "--l1-maxmemory", "64mb", "--l1-tracking", "keys");
    for (int i = 0; i < 50; i++) {
        harness_cmd_ok(l1_rd, "SET kt:%d v", i);
        snprintf(key, sizeof(key), "kt:%d", i);
        free(L1_GET(l1_px, key));
    }
    long long keys = harness_info_ll(l1_rd, "stats", "tracking_total_keys");
    long long prefixes = harness_info_ll(l1_rd, "stats", "tracking_total_prefixes");
    L1_CHECK(keys >= 50 && prefixes == 0, "Redis tracks %lld keys and %lld prefixes (want >= 50 and 0)", keys,
             prefixes);
    harness_cmd_ok(l1_rd, "SET kt:7 changed");
    char *v = NULL;
    bool fresh = harness_wait_until((free(v), v = L1_GET(l1_px, "kt:7"), v && strcmp(v, "changed") == 0), L1_FRESH_MS);
    L1_CHECK(fresh, "GET kt:7 answered %s %d ms after a direct SET", v ? v : "nil", L1_FRESH_MS);
    free(v);
}

L1_TEST(invalidate_pattern_drops_matching_entries)
{
    char key[32];

    harness_skip_if_direct();
    L1_START(18, "--l1-maxmemory", "64mb");
    for (int i = 0; i < L1_PATTERN_KEYS; i++) {
        harness_cmd_ok(l1_rd, "SET user:%d u", i);
        harness_cmd_ok(l1_rd, "SET item:%d i", i);
        snprintf(key, sizeof(key), "user:%d", i);
        free(L1_GET(l1_px, key));
        snprintf(key, sizeof(key), "item:%d", i);
        free(L1_GET(l1_px, key));
    }
    L1_CHECK(L1_STAT("l1_entries") == 2 * L1_PATTERN_KEYS, "%lld entries", L1_STAT("l1_entries"));
    redisReply *r = harness_reply(l1_admin, "REDSNANO L1 INVALIDATE user:*");
    L1_CHECK(r->type == REDIS_REPLY_INTEGER && r->integer == L1_PATTERN_KEYS, "INVALIDATE user:* returned %s",
             l1_brief(r));
    freeReplyObject(r);
    L1_CHECK(L1_STAT("l1_entries") == L1_PATTERN_KEYS, "%lld entries left", L1_STAT("l1_entries"));
    L1_CHECK(L1_STAT("l1_inv_pattern") == L1_PATTERN_KEYS, "inv_pattern %lld", L1_STAT("l1_inv_pattern"));
    /* item:* still hits; user:* fills again. */
    long long hits = L1_STAT("l1_hits"), fills = L1_STAT("l1_fills");
    harness_expect_bulk(l1_px, "i", "GET %s", "item:3");
    harness_expect_bulk(l1_px, "u", "GET %s", "user:3");
    L1_CHECK(L1_STAT("l1_hits") == hits + 1 && L1_STAT("l1_fills") == fills + 1,
             "after INVALIDATE: item:3 should hit and user:3 fill");
    r = harness_reply(l1_admin, "REDSNANO L1 INVALIDATE [");
    L1_CHECK(r->type == REDIS_REPLY_INTEGER && r->integer == 0, "INVALIDATE [ returned %s", l1_brief(r));
    freeReplyObject(r);
}

/*
 * The audit catches an injected stale entry. Redis 7.0 does not report
 * SWAPDB through CLIENT TRACKING: a SWAPDB made straight on redis changes
 * what GET k answers behind the L1's back, which only a hash check sees.
 */
L1_TEST(the_audit_catches_an_injected_stale_entry)
{
    harness_skip_if_direct();
    L1_START(19, "--l1-maxmemory", "64mb", "--l1-audit-rate", "1");
    harness_cmd_ok(l1_rd, "SET k old");
    harness_cmd_ok(l1_rd, "SELECT 1");
    harness_cmd_ok(l1_rd, "SET k new");
    harness_cmd_ok(l1_rd, "SELECT 0");
    harness_expect_bulk(l1_px, "old", "GET %s", "k");      /* fill */
    harness_expect_bulk(l1_px, "old", "GET %s", "k");      /* a hit, audited */
    L1_WAIT_STAT("l1_audit_checks", 1, L1_STEP_MS);
    L1_CHECK(L1_STAT("l1_audit_stale") == 0, "an entry still current was counted stale");
    harness_cmd_ok(l1_rd, "SWAPDB 0 1");
    char *v = l1_direct_get("k");
    L1_CHECK(v && strcmp(v, "new") == 0, "SWAPDB did not swap: %s", v ? v : "nil");
    free(v);
    long long checks = L1_STAT("l1_audit_checks");
    /* The stale entry is served once more (nothing told the L1)... */
    harness_expect_bulk(l1_px, "old", "GET %s", "k");
    /* ...and its audit counts it, with its age, and replaces it. */
    L1_WAIT_STAT("l1_audit_stale", 1, L1_STEP_MS);
    L1_CHECK(L1_STAT("l1_audit_checks") >= checks + 1, "the stale hit was not audited");
    L1_CHECK(L1_STAT("l1_audit_max_age_ms") >= L1_STAT("l1_audit_last_age_ms"), "audit ages not reported");
    harness_expect_bulk(l1_px, "new", "GET %s", "k");
    L1_CHECK(L1_STAT("l1_audit_stale") == 1, "the replaced entry was counted stale again");
}

/* ---- 13. issue 13: MGET answered per key ------------------------------------ */

#define L1_MGET_KEYS 10                   /* keys of the mixed MGET; the first half is read first */
#define L1_MGET_RACE_ROUNDS 200           /* write-vs-partial-fill rounds */

/* The reply to MGET through c must equal redis's own (l1_rd) answer. */
static void l1_expect_same_mget_at(int line, redisContext *c, const char *cmd)
{
    /* cmd is the format: its words are the arguments (keys have no '%'). */
    redisReply *want = harness_expect_at(line, l1_rd, REDIS_REPLY_ARRAY, cmd);
    redisReply *got = harness_expect_at(line, c, HARNESS_ANY, cmd);

    if (!harness_reply_equal(want, got))
        l1_fail_at(line, "%s through the proxy: %s, redis: %s", cmd, harness_reply_str(got), harness_reply_str(want));
    freeReplyObject(want);
    freeReplyObject(got);
}

/*
 * An MGET of held keys, missing keys, a key that does not exist and a hash
 * answers exactly as redis does; only the keys the L1 lacks were asked
 * (one MGET), and they are then held (a second MGET is answered whole by
 * the L1, redis sees no MGET); the hash's nil is not stored as a GET entry.
 */
L1_TEST(mget_answers_held_keys_from_the_l1_and_asks_only_the_others)
{
    char cmd[512];
    size_t n = 0;

    harness_skip_if_direct();
    L1_START(20, "--l1-maxmemory", "64mb");
    harness_expect_int(l1_rd, 1, "HSET h f v");
    n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, "MGET");
    for (int i = 0; i < L1_MGET_KEYS; i++) {
        char key[32];
        harness_cmd_ok(l1_rd, "SET mk:%d v%d", i, i);
        snprintf(key, sizeof(key), "mk:%d", i);
        if (i < L1_MGET_KEYS / 2)
            free(L1_GET(l1_px, key));   /* held */
        n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " %s", key);
    }
    snprintf(cmd + n, sizeof(cmd) - n, " nosuchkey h mk:0");
    long long hits = L1_STAT("l1_hits"), asked = L1_STAT("l1_mget_asked");
    long long calls = harness_cmdstat_calls(l1_rd, "mget");
    l1_expect_same_mget_at(__LINE__, l1_px, cmd);
    L1_CHECK(L1_STAT("l1_hits") == hits + L1_MGET_KEYS / 2 + 1, "held keys answered: %lld, wanted %d",
             L1_STAT("l1_hits") - hits, L1_MGET_KEYS / 2 + 1);
    L1_CHECK(L1_STAT("l1_mget_asked") == asked + L1_MGET_KEYS / 2 + 2, "keys asked from redis: %lld, wanted %d",
             L1_STAT("l1_mget_asked") - asked, L1_MGET_KEYS / 2 + 2);
    /* One MGET reached redis (harness_cmdstat_calls' own MGET counts too). */
    L1_CHECK(harness_cmdstat_calls(l1_rd, "mget") == calls + 2, "redis saw %lld MGETs, wanted 1 from the proxy",
             harness_cmdstat_calls(l1_rd, "mget") - calls - 1);
    /* Now every existing string key is held: answered whole by the L1. */
    snprintf(cmd + n, sizeof(cmd) - n, " mk:3");
    calls = harness_cmdstat_calls(l1_rd, "mget");
    l1_expect_same_mget_at(__LINE__, l1_px, cmd);
    L1_CHECK(harness_cmdstat_calls(l1_rd, "mget") == calls + 1, "an MGET of held keys reached redis");
    /* A nil element is not a GET entry: GET h is still WRONGTYPE. */
    redisReply *r = harness_expect_error(l1_px, "WRONGTYPE", "GET h");
    freeReplyObject(r);
    /* A write through the proxy is seen by the next MGET at once. */
    harness_cmd_ok(l1_px, "SET mk:1 changed");
    l1_expect_same_mget_at(__LINE__, l1_px, cmd);
}

/*
 * A write racing the partial fill of an MGET: held key "mh", key "mr"
 * asked from redis. Through the proxy (B's SET while A's MGET is held by
 * CLIENT PAUSE): the key's fill is cancelled, A gets the old or the new
 * value, and every read after B's OK gets the new one. From elsewhere
 * (a direct SET pipelined among MGETs): the proxy answers the new value
 * within L1_FRESH_MS and never goes back.
 */
L1_TEST(a_write_racing_a_partial_mget_fill_leaves_no_stale_entry)
{
    redisContext *b;

    harness_skip_if_direct();
    L1_START(21, "--l1-maxmemory", "64mb", "--l1-fill-connections", "4");
    b = harness_connect(l1_proxy->port);
    harness_cmd_ok(l1_rd, "SET mh held");
    harness_expect_bulk(l1_px, "held", "GET %s", "mh");
    for (int round = 0; round < L1_ROUNDS; round++) {
        harness_cmd_ok(l1_rd, "SET mr old%d", round);
        freeReplyObject(harness_reply(l1_admin, "REDSNANO L1 INVALIDATE mr"));
        long long asked = L1_STAT("l1_mget_asked"), cancelled = L1_STAT("l1_fills_cancelled");
        harness_cmd_ok(l1_rd, "CLIENT PAUSE %d ALL", L1_PAUSE_MS);
        redisAppendCommand(l1_px, "MGET mh mr");
        harness_pipe_flush(l1_px);
        L1_WAIT_STAT("l1_mget_asked", asked + 1, L1_STEP_MS);
        redisAppendCommand(b, "SET mr new%d", round);
        harness_pipe_flush(b);
        L1_WAIT_STAT("l1_fills_cancelled", cancelled + 1, L1_STEP_MS);
        redisReply *ra = harness_pipe_reply(l1_px, "A's MGET");
        char old[32], new[32];
        snprintf(old, sizeof(old), "old%d", round);
        snprintf(new, sizeof(new), "new%d", round);
        L1_CHECK(ra->type == REDIS_REPLY_ARRAY && ra->elements == 2 && ra->element[0]->type == REDIS_REPLY_STRING &&
                     strcmp(ra->element[0]->str, "held") == 0 && ra->element[1]->type == REDIS_REPLY_STRING &&
                     (strcmp(ra->element[1]->str, old) == 0 || strcmp(ra->element[1]->str, new) == 0),
                 "round %d: A's MGET returned %s", round, l1_brief(ra));
        freeReplyObject(ra);
        redisReply *rb = harness_pipe_reply(b, "B's SET");
        L1_CHECK(rb->type == REDIS_REPLY_STATUS, "round %d: B's SET returned %s", round, l1_brief(rb));
        freeReplyObject(rb);
        for (int i = 0; i < 2; i++) {
            l1_expect_same_mget_at(__LINE__, l1_px, "MGET mh mr");
            harness_expect_bulk(l1_px, new, "GET %s", "mr");
        }
    }
    /* Writes from elsewhere, pipelined among MGETs of two clients. */
    for (int round = 1; round <= L1_MGET_RACE_ROUNDS; round++) {
        char want[32];
        freeReplyObject(harness_reply(l1_admin, "REDSNANO L1 INVALIDATE mr"));
        for (int i = 0; i < L1_RACE_READS; i++) {
            redisAppendCommand(i % 2 ? b : l1_px, "MGET mh mr");
            harness_pipe_flush(i % 2 ? b : l1_px);
            if (i == round % L1_RACE_READS) {
                redisAppendCommand(l1_rd, "SET mr v%d", round);
                harness_pipe_flush(l1_rd);
            }
        }
        for (int i = 0; i < L1_RACE_READS; i++)
            freeReplyObject(harness_pipe_reply(i % 2 ? b : l1_px, "MGET mh mr"));
        freeReplyObject(harness_pipe_reply(l1_rd, "SET mr"));
        snprintf(want, sizeof(want), "v%d", round);
        char *v = NULL;
        bool fresh = harness_wait_until((free(v), v = L1_GET(l1_px, "mr"), v && strcmp(v, want) == 0), L1_FRESH_MS);
        L1_CHECK(fresh, "round %d: GET mr answered %s %d ms after SET mr %s", round, v ? v : "nil", L1_FRESH_MS, want);
        free(v);
        for (int i = 0; i < 2; i++)
            l1_expect_same_mget_at(__LINE__, i ? b : l1_px, "MGET mh mr");
    }
    L1_CHECK(L1_STAT("l1_mget") >= L1_MGET_RACE_ROUNDS, "the race made too few MGETs through the L1");
    redisFree(b);
}

/* ---- 14. issue 13: restarts (l1-snapshot-file) ------------------------------- */

#define L1_SNAP_KEYS 10                   /* keys per kind: unchanged, changed, deleted, expiring */
#define L1_SNAP_PX 300                    /* PX of the keys that expire while the proxy is down */
#define L1_SNAP_GONE_MS 3000              /* bound for them to be gone from redis */

/* Start slot's redis and a proxy with an L1 snapshot file in the tmpdir. */
static void l1_start_snap_at(int line, int slot, char *path, size_t cap)
{
    snprintf(path, cap, "%s/l1-snap-%d", harness_tmpdir(), slot);
    const char *extra[] = { "--l1-maxmemory", "64mb", "--l1-snapshot-file", path, "--l1-snapshot-interval", "0",
                            NULL };
    l1_start_at(line, slot, true, extra);
}

/* GET key through the proxy must equal redis's answer now. */
static void l1_same_get_at(int line, const char *key)
{
    char *want = l1_direct_get(key), *got = l1_get_at(line, l1_px, key);
    if (!((want == NULL && got == NULL) || (want && got && strcmp(want, got) == 0)))
        l1_fail_at(line, "GET %s: proxy %s, redis %s", key, got ? got : "nil", want ? want : "nil");
    free(want);
    free(got);
}

/*
 * A restart keeps the L1 warm and never serves what changed while the
 * proxy was down: keys changed, deleted, and expired meanwhile read as
 * redis holds them; the unchanged ones are answered from the loaded
 * entries after their hash check, without a single full read (fill); and
 * a write made elsewhere after the restart is still reported (the checks
 * made redis track the keys again).
 */
L1_TEST(a_restart_keeps_the_l1_warm_and_never_serves_what_changed_meanwhile)
{
    static const char *const kinds[] = { "same", "chg", "del", "exp" };
    char path[512], key[32];

    harness_skip_if_direct();
    l1_start_snap_at(__LINE__, 22, path, sizeof(path));
    for (int i = 0; i < L1_SNAP_KEYS; i++) {
        harness_cmd_ok(l1_rd, "SET same:%d s%d", i, i);
        harness_cmd_ok(l1_rd, "SET chg:%d old%d", i, i);
        harness_cmd_ok(l1_rd, "SET del:%d d%d", i, i);
        harness_cmd_ok(l1_rd, "SET exp:%d e%d PX %d", i, i, L1_SNAP_PX * 100);
        for (int k = 0; k < 4; k++) {
            snprintf(key, sizeof(key), "%s:%d", kinds[k], i);
            free(L1_GET(l1_px, key));
        }
    }
    L1_CHECK(L1_STAT("l1_entries") == 4 * L1_SNAP_KEYS, "%lld entries before the restart", L1_STAT("l1_entries"));
    /* Down: the snapshot is written at the clean exit; meanwhile redis changes. */
    L1_PROXY_STOP();
    L1_CHECK(access(path, F_OK) == 0, "no snapshot at %s after a clean exit", path);
    for (int i = 0; i < L1_SNAP_KEYS; i++) {
        harness_cmd_ok(l1_rd, "SET chg:%d new%d", i, i);
        harness_expect_int(l1_rd, 1, "DEL del:%d", i);
        harness_expect_int(l1_rd, 1, "PEXPIRE exp:%d %d", i, L1_SNAP_PX);
    }
    bool gone = harness_wait_until(harness_cmd_int(l1_rd, "EXISTS exp:0 exp:%d", L1_SNAP_KEYS - 1) == 0,
                                   L1_SNAP_GONE_MS);
    L1_CHECK(gone, "exp:* did not expire on redis");
    l1_proxy_start_at(__LINE__, l1_proxy->port, l1_args, true);
    L1_CHECK(L1_STAT("l1_snapshot_loaded") == 4 * L1_SNAP_KEYS, "%lld entries loaded",
             L1_STAT("l1_snapshot_loaded"));
    /* Read at once (the background revalidation may not have reached them). */
    long long fills = L1_STAT("l1_fills"), hits = L1_STAT("l1_hits");
    for (int i = 0; i < L1_SNAP_KEYS; i++) {
        snprintf(key, sizeof(key), "same:%d", i);
        l1_same_get_at(__LINE__, key);
    }
    L1_CHECK(L1_STAT("l1_fills") == fills, "%lld full reads for unchanged keys", L1_STAT("l1_fills") - fills);
    L1_CHECK(L1_STAT("l1_hits") == hits + L1_SNAP_KEYS, "%lld of %d unchanged keys answered from the L1",
             L1_STAT("l1_hits") - hits, L1_SNAP_KEYS);
    for (int k = 1; k < 4; k++) {
        for (int i = 0; i < L1_SNAP_KEYS; i++) {
            snprintf(key, sizeof(key), "%s:%d", kinds[k], i);
            l1_same_get_at(__LINE__, key);
            l1_same_get_at(__LINE__, key);
        }
    }
    /* Every loaded entry is checked in the background too, then served as hits. */
    L1_WAIT_STAT("l1_reval_unchanged", 1, L1_REVAL_MS);
    L1_CHECK(L1_STAT("l1_reval_changed") + L1_STAT("l1_inv_hash_mismatch") >= 1 || L1_STAT("l1_checks") >= 3 * L1_SNAP_KEYS,
             "the changed keys were never hash-checked");
    /* Tracked again: a write elsewhere is seen. */
    harness_cmd_ok(l1_rd, "SET same:0 later");
    char *v = NULL;
    bool fresh = harness_wait_until((free(v), v = L1_GET(l1_px, "same:0"), v && strcmp(v, "later") == 0), L1_FRESH_MS);
    L1_CHECK(fresh, "GET same:0 answered %s %d ms after a write elsewhere, after the restart", v ? v : "nil",
             L1_FRESH_MS);
    free(v);
}

/* Cut, then garbage: the snapshot is logged, ignored, and the proxy starts cold. */
L1_TEST(a_bad_or_truncated_snapshot_is_ignored_and_the_l1_starts_cold)
{
    char path[512];

    harness_skip_if_direct();
    l1_start_snap_at(__LINE__, 23, path, sizeof(path));
    harness_cmd_ok(l1_rd, "SET k v");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    for (int round = 0; round < 2; round++) {
        L1_PROXY_STOP();
        FILE *fp = fopen(path, round == 0 ? "r+" : "w");
        L1_CHECK(fp != NULL, "snapshot %s: %s", path, strerror(errno));
        if (round == 0) {
            fseek(fp, 0, SEEK_END);
            long len = ftell(fp);
            L1_CHECK(len > 16 && ftruncate(fileno(fp), len - 9) == 0, "could not cut the snapshot (%ld bytes)", len);
        } else {
            fputs("RSNL1SNP but not really a snapshot", fp);
        }
        fclose(fp);
        harness_cmd_ok(l1_rd, "SET k v%d", round);       /* changed while down */
        l1_proxy_start_at(__LINE__, l1_proxy->port, l1_args, true);
        L1_CHECK(L1_STAT("l1_snapshot_errors") == 1 && L1_STAT("l1_snapshot_loaded") == 0 &&
                     L1_STAT("l1_entries") == 0,
                 "round %d: a bad snapshot was not ignored", round);
        char *log = harness_log_tail(l1_proxy, 4096);
        L1_CHECK(strstr(log, "ignored") != NULL, "round %d: nothing logged about the bad snapshot: %s", round, log);
        free(log);
        char want[8];
        snprintf(want, sizeof(want), "v%d", round);
        harness_expect_bulk(l1_px, want, "GET %s", "k");
    }
}

/* l1-snapshot-interval: written while running, atomically (no FILE.tmp left). */
L1_TEST(the_snapshot_is_written_every_interval)
{
    char path[512], tmp[600];

    harness_skip_if_direct();
    snprintf(path, sizeof(path), "%s/l1-snap-periodic", harness_tmpdir());
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    const char *extra[] = { "--l1-maxmemory", "64mb", "--l1-snapshot-file", path, "--l1-snapshot-interval", "1", NULL };
    l1_start_at(__LINE__, 25, true, extra);
    harness_cmd_ok(l1_rd, "SET k v");
    harness_expect_bulk(l1_px, "v", "GET %s", "k");
    L1_WAIT_STAT("l1_snapshot_saves", 2, 3000);
    L1_CHECK(access(path, F_OK) == 0 && access(tmp, F_OK) != 0, "after a periodic snapshot: %s %s, %s %s", path,
             access(path, F_OK) == 0 ? "exists" : "missing", tmp, access(tmp, F_OK) == 0 ? "left behind" : "gone");
    L1_CHECK(L1_STAT("l1_snapshot_errors") == 0, "a periodic snapshot failed");
}

/*
 * Readers of a key with a write in flight through the proxy share one
 * plain read (l1.h): A's SET is held by CLIENT PAUSE; B's GET sends the
 * shared read, C's GET joins it; B and C get the same value, old or new
 * (their reads are concurrent with the write), nothing is forwarded on
 * its own, and every read after A's OK gets the new value.
 */
L1_TEST(readers_of_a_key_with_a_write_in_flight_share_one_read)
{
    redisContext *a, *b, *c;

    harness_skip_if_direct();
    L1_START(30, "--l1-maxmemory", "64mb");
    a = harness_connect(l1_proxy->port);
    b = harness_connect(l1_proxy->port);
    c = harness_connect(l1_proxy->port);
    harness_cmd_ok(l1_rd, "SET wip v0");
    for (int round = 1; round <= L1_ROUNDS; round++) {
        char old[32], new[32];
        snprintf(old, sizeof(old), "v%d", round - 1);
        snprintf(new, sizeof(new), "v%d", round);
        harness_expect_bulk(l1_px, old, "GET %s", "wip");       /* an entry to drop */
        long long dropped = L1_STAT("l1_inv_proxy_write"), shared = L1_STAT("l1_shared_reads"),
                  joined = L1_STAT("l1_shared_joined"), bypass = L1_STAT("l1_bypass_pending");
        harness_cmd_ok(l1_rd, "CLIENT PAUSE %d ALL", L1_PAUSE_MS);
        redisAppendCommand(a, "SET wip %s", new);
        harness_pipe_flush(a);
        L1_WAIT_STAT("l1_inv_proxy_write", dropped + 1, L1_STEP_MS);
        redisAppendCommand(b, "GET wip");
        harness_pipe_flush(b);
        L1_WAIT_STAT("l1_shared_reads", shared + 1, L1_STEP_MS);
        redisAppendCommand(c, "GET wip");
        harness_pipe_flush(c);
        L1_WAIT_STAT("l1_shared_joined", joined + 1, L1_STEP_MS);
        redisReply *rb = harness_pipe_reply(b, "B's GET"), *rc = harness_pipe_reply(c, "C's GET");
        L1_CHECK(rb->type == REDIS_REPLY_STRING && rc->type == REDIS_REPLY_STRING && strcmp(rb->str, rc->str) == 0 &&
                     (strcmp(rb->str, old) == 0 || strcmp(rb->str, new) == 0),
                 "round %d: B got %s, C got %s (want both %s or both %s)", round,
                 rb->type == REDIS_REPLY_STRING ? rb->str : "no string", rc->type == REDIS_REPLY_STRING ? rc->str : "no string",
                 old, new);
        freeReplyObject(rb);
        freeReplyObject(rc);
        redisReply *ra = harness_pipe_reply(a, "A's SET");
        L1_CHECK(ra->type == REDIS_REPLY_STATUS, "round %d: A's SET returned %s", round, l1_brief(ra));
        freeReplyObject(ra);
        L1_CHECK(L1_STAT("l1_shared_reads") == shared + 1 && L1_STAT("l1_bypass_pending") == bypass,
                 "round %d: %lld shared reads, %lld forwarded, for two readers", round,
                 L1_STAT("l1_shared_reads") - shared, L1_STAT("l1_bypass_pending") - bypass);
        /* After A's OK: the new value, then from the L1. */
        long long hits = L1_STAT("l1_hits");
        for (int i = 0; i < 2; i++) {
            harness_expect_bulk(b, new, "GET %s", "wip");
            harness_expect_bulk(a, new, "GET %s", "wip");
        }
        L1_CHECK(L1_STAT("l1_hits") >= hits + 2, "round %d: the key was not cached again after the write", round);
    }
    redisFree(a);
    redisFree(b);
    redisFree(c);
}

/*
 * Admission while the L1 pays (at least half of the recent reads hits):
 * a key's first read is filled while the L1 has room; once it is full, a
 * one-hit key is not filled (it would evict a key read more often) and the
 * frequent key stays a hit. (A cold L1 keeps them out: the test above.)
 */
L1_TEST(admission_fills_first_reads_only_while_the_l1_pays_and_has_room)
{
    char key[32];

    harness_skip_if_direct();
    L1_START(31, "--l1-maxmemory", "1mb", "--l1-admission", "yes");
    harness_cmd_ok(l1_rd, "SET hot v");
    for (int i = 0; i < L1_HOT_READS; i++)
        harness_expect_bulk(l1_px, "v", "GET %s", "hot");
    redisReply *r = harness_reply(l1_rd, "EVAL %s 0 %d %d",
                                  "for i=0,tonumber(ARGV[1])-1 do redis.call('SET', 'room:'..i, "
                                  "string.rep('x', tonumber(ARGV[2]))) end return 1",
                                  L1_ROOM_KEYS, L1_LRU_VALUE);
    freeReplyObject(r);
    long long fills = L1_STAT("l1_fills");
    harness_expect_bulk(l1_px, NULL, "GET %s", "never-set");       /* a nil is admitted alike */
    L1_CHECK(L1_STAT("l1_fills") == fills + 1 && L1_STAT("l1_admission_rejected") == 1,
             "a first read while the L1 pays was not filled (%lld fills, %lld rejected)",
             L1_STAT("l1_fills") - fills, L1_STAT("l1_admission_rejected"));
    long long rejected = 0;
    for (int i = 0; i < L1_ROOM_KEYS && rejected == 0; i++) {
        snprintf(key, sizeof(key), "room:%d", i);
        char *v = L1_GET(l1_px, key);
        L1_CHECK(v != NULL && strlen(v) == L1_LRU_VALUE, "GET %s returned %s", key, v ? "a wrong value" : "nil");
        free(v);
        harness_expect_bulk(l1_px, "v", "GET %s", "hot");            /* keeps the hit ratio at 1/2+ */
        rejected = L1_STAT("l1_admission_rejected") - 1;
    }
    L1_CHECK(rejected == 1, "one-hit keys were filled until the end: the L1 never counted as full");
    long long bytes = L1_STAT("l1_bytes"), max = L1_STAT("l1_maxmemory");
    L1_CHECK(bytes + max / 16 >= max, "a first read was refused with room left (%lld of %lld bytes)", bytes, max);
    /* Full: more one-hit keys are refused, the frequent key stays. */
    fills = L1_STAT("l1_fills");
    long long evicted = L1_STAT("l1_inv_eviction"), hits = L1_STAT("l1_hits");
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "once-more:%d", i);
        harness_expect_bulk(l1_px, NULL, "GET %s", key);
    }
    harness_expect_bulk(l1_px, "v", "GET %s", "hot");
    L1_CHECK(L1_STAT("l1_fills") == fills && L1_STAT("l1_inv_eviction") == evicted,
             "one-hit keys were filled into a full L1 (%lld fills, %lld evictions)", L1_STAT("l1_fills") - fills,
             L1_STAT("l1_inv_eviction") - evicted);
    L1_CHECK(L1_STAT("l1_hits") == hits + 1, "the frequent key is no longer a hit");
}
