/*
 * test_core.c — the proxy behaves like the Redis behind it.
 *
 *   test ──▶ redsnano (PORT 2) ──▶ redis "backend" (PORT 1)
 *   test ──────────────────────▶ redis "reference" (PORT 0)
 *
 * Data-type tests send the same commands to the proxy and to the reference
 * redis and require identical replies; the others check one behaviour of the
 * proxy each (pipelining, large values, many clients, transactions, blocking
 * commands, pub/sub, disconnects, backend loss, protocol errors, inline
 * commands, HELLO, admin commands, shutdown, redis-benchmark).
 * Every test also requires that the proxy then exits 0 on SIGTERM (so that
 * sanitizer and leak reports of the proxy fail the test that caused them).
 *
 * Ports 7000-7019 (see tests/harness.h).  HARNESS_DIRECT=1 runs the same
 * tests against the backend redis itself; proxy-only tests skip.
 */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CORE_PORT_BASE 7000                   /* this file's port range start */
#define CORE_PORT(n) harness_port(CORE_PORT_BASE, (n))
#define CORE_REPLY_MS 5000                    /* bound for one awaited reply */
#define CORE_PIPELINE 10000                   /* pipelined INCRs in order */
#define CORE_BIG_VALUE (10 * 1024 * 1024)     /* byte-exact large value */
#define CORE_CLIENTS 500                      /* concurrent clients */
#define CORE_ABANDONED 1000                   /* INCRs of a client that leaves */
#define CORE_RECOVER_MS 10000                 /* backend restart → success bound */
#define CORE_BENCH_MS 240000                  /* redis-benchmark bound */
#define CORE_BLOCKED_MS 5000                  /* bound for a BLPOP to show up as blocked */

static harness_proc *core_ref;      /* reference redis, never proxied */
static harness_proc *core_backend;  /* redis behind the proxy */
static harness_proc *core_proxy;    /* the proxy (pseudo handle in direct mode) */
static redisContext *core_px;       /* client connection through the proxy */
static redisContext *core_rf;       /* client connection to the reference */
static char core_primary[32];       /* "127.0.0.1:<backend port>" */

static void core_init(void)
{
    core_ref = harness_redis_start(CORE_PORT(0));
    core_backend = harness_redis_start(CORE_PORT(1));
    snprintf(core_primary, sizeof(core_primary), "127.0.0.1:%d", CORE_PORT(1));
    core_proxy = harness_proxy_start(CORE_PORT(2), "--primary", core_primary, "--loglevel", "warning");
    core_px = harness_connect(core_proxy->port);
    core_rf = harness_connect(core_ref->port);
    harness_diag_set(core_proxy, NULL);
}

static void core_fini(void)
{
    if (core_px != NULL)
        redisFree(core_px);
    if (core_rf != NULL)
        redisFree(core_rf);
    core_px = core_rf = NULL;
    harness_cleanup();
}

TestSuite(core, .init = core_init, .fini = core_fini, .timeout = 120);

/* A core test: the body, then the clean-exit check of the proxy. */
#define CORE_TEST(name, ...)                          \
    static void core_body_##name(void);               \
    Test(core, name, ##__VA_ARGS__)                   \
    {                                                 \
        core_body_##name();                           \
        harness_proxy_check_exit(core_proxy);         \
    }                                                 \
    static void core_body_##name(void)

/* ---- observing the backend ---------------------------------------------- */

/* blocked_clients of INFO clients on the backend redis, asked directly. */
static long long core_backend_blocked(void)
{
    redisContext *c = harness_connect(core_backend->port);
    long long n = harness_info_ll(c, "clients", "blocked_clients");

    redisFree(c);
    return n;
}

/* Wait until the backend reports want blocked clients (asserts). */
static void core_wait_blocked(long long want, const char *what)
{
    cr_assert(harness_wait_until(core_backend_blocked() == want, CORE_BLOCKED_MS),
              "%s: the backend reports blocked_clients:%lld after %d ms, wanted %lld%s", what,
              core_backend_blocked(), CORE_BLOCKED_MS, want, harness_diag());
}

/* PTTL of key on redis c is -2 (gone; PTTL expires it lazily). */
static bool core_gone(redisContext *c, const char *key)
{
    return harness_cmd_int(c, "PTTL %s", key) == -2;
}

/* ---- comparison helpers ------------------------------------------------ */

static int core_cmp_str(const void *a, const void *b)
{
    const redisReply *x = *(redisReply *const *)a, *y = *(redisReply *const *)b;
    size_t n;
    int c;

    if (x->type != y->type)
        return x->type - y->type;
    if (x->type == REDIS_REPLY_INTEGER)
        return (x->integer > y->integer) - (x->integer < y->integer);
    if (x->str == NULL || y->str == NULL)
        return (x->str != NULL) - (y->str != NULL);
    n = x->len < y->len ? x->len : y->len;
    c = memcmp(x->str, y->str, n);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/*
 * Send one command (printf-like, hiredis format) to the proxy and to the
 * reference; assert identical replies.  unordered: sort top-level array
 * elements first (sets whose order depends on the hash seed).
 */
static void core_same_v(int line, bool unordered, const char *fmt, va_list ap)
{
    redisReply *a, *b;
    va_list ap2;

    va_copy(ap2, ap);
    a = redisvCommand(core_px, fmt, ap);
    b = redisvCommand(core_rf, fmt, ap2);
    va_end(ap2);
    cr_assert_not_null(a, "line %d: '%s': no reply through the proxy: %s", line, fmt, core_px->errstr);
    cr_assert_not_null(b, "line %d: '%s': no reply from the reference redis: %s", line, fmt,
                       core_rf->errstr);
    if (unordered && a->type == REDIS_REPLY_ARRAY && b->type == REDIS_REPLY_ARRAY) {
        /* An empty array has no element vector (qsort(NULL) is UB). */
        if (a->elements > 0)
            qsort(a->element, a->elements, sizeof(*a->element), core_cmp_str);
        if (b->elements > 0)
            qsort(b->element, b->elements, sizeof(*b->element), core_cmp_str);
    }
    if (!harness_reply_equal(a, b)) {
        char *sa = harness_reply_str(a), *sb = harness_reply_str(b);

        cr_assert_fail("line %d: '%s': proxy replied %s, redis replied %s", line, fmt, sa, sb);
    }
    freeReplyObject(a);
    freeReplyObject(b);
}

static void core_same_at(int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    core_same_v(line, false, fmt, ap);
    va_end(ap);
}

static void core_same_unordered_at(int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    core_same_v(line, true, fmt, ap);
    va_end(ap);
}

#define SAME(...) core_same_at(__LINE__, __VA_ARGS__)
#define SAME_UNORDERED(...) core_same_unordered_at(__LINE__, __VA_ARGS__)

/* ---- data types: same replies as Redis ---------------------------------- */

CORE_TEST(strings_match_redis)
{
    SAME("SET s1 hello");
    SAME("GET s1");
    SAME("GET nosuchkey");
    SAME("APPEND s1 %s", " world");
    SAME("STRLEN s1");
    SAME("GETRANGE s1 0 4");
    SAME("SETRANGE s1 6 %b", "W\0rld", (size_t)5);
    SAME("GET s1");
    SAME("SET n 10");
    SAME("INCR n");
    SAME("INCRBY n 5");
    SAME("DECR n");
    SAME("DECRBY n 100");
    SAME("INCRBYFLOAT n 1.5");
    SAME("INCR s1");
    SAME("SETNX s1 other");
    SAME("SETNX s2 other");
    SAME("GETSET s2 third");
    SAME("GETDEL s2");
    SAME("MSET a 1 b 2 c 3");
    SAME("MGET a b nosuch c");
    SAME("SET s1 x XX GET");
    SAME("SET s3 x NX");
    SAME("SET s3 y NX");
    SAME("SET s3 y BADOPTION");
    SAME("EXISTS a b nosuch");
    SAME("DEL a b nosuch");
    SAME("TYPE c");
    SAME("SET %s %b", "bin\r\nkey", "\0\r\n\xff", (size_t)4);
    SAME("GET %s", "bin\r\nkey");
    SAME("SET empty %s", "");
    SAME("GET empty");
}

CORE_TEST(lists_match_redis)
{
    SAME("RPUSH l a b c");
    SAME("LPUSH l z");
    SAME("LRANGE l 0 -1");
    SAME("LLEN l");
    SAME("LINDEX l 2");
    SAME("LINDEX l 99");
    SAME("LSET l 1 A");
    SAME("LSET l 99 A");
    SAME("LINSERT l BEFORE c b2");
    SAME("LPOS l c");
    SAME("RPUSH l a a");
    SAME("LREM l 2 a");
    SAME("LRANGE l 0 -1");
    SAME("LPOP l");
    SAME("RPOP l 2");
    SAME("LMOVE l l2 LEFT RIGHT");
    SAME("RPOPLPUSH l l2");
    SAME("LRANGE l2 0 -1");
    SAME("LTRIM l2 0 0");
    SAME("LRANGE l2 0 -1");
    SAME("LRANGE nosuch 0 -1");
    SAME("LPOP nosuch");
    SAME("SET str v");
    SAME("LPUSH str x");
    SAME("LPUSHX nosuch x");
}

CORE_TEST(hashes_match_redis)
{
    SAME("HSET h f1 v1 f2 v2 f3 3");
    SAME("HGET h f1");
    SAME("HGET h nosuch");
    SAME("HMGET h f1 nosuch f2");
    SAME("HGETALL h");
    SAME("HINCRBY h f3 4");
    SAME("HINCRBYFLOAT h f3 0.25");
    SAME("HINCRBY h f1 1");
    SAME("HEXISTS h f2");
    SAME("HSETNX h f2 other");
    SAME("HSETNX h f4 new");
    SAME("HSTRLEN h f1");
    SAME("HDEL h f2 nosuch");
    SAME("HLEN h");
    SAME("HKEYS h");
    SAME("HVALS h");
    SAME("HGETALL h");
    SAME("HGETALL nosuch");
    SAME("HSET h");
}

CORE_TEST(sets_match_redis)
{
    SAME("SADD s a b c d");
    SAME("SADD s a e");
    SAME("SCARD s");
    SAME("SISMEMBER s a");
    SAME("SISMEMBER s z");
    SAME("SMISMEMBER s a z b");
    SAME_UNORDERED("SMEMBERS s");
    SAME("SREM s a z");
    SAME("SADD t c d x");
    SAME_UNORDERED("SINTER s t");
    SAME_UNORDERED("SUNION s t");
    SAME_UNORDERED("SDIFF s t");
    SAME("SINTERSTORE st s t");
    SAME("SINTERCARD 2 s t");
    SAME("SMOVE s t b");
    SAME_UNORDERED("SMEMBERS t");
    SAME("SADD ints 5 3 1 4");
    SAME("SMEMBERS ints");
    SAME("SCARD nosuch");
    SAME_UNORDERED("SMEMBERS nosuch");
}

CORE_TEST(sorted_sets_match_redis)
{
    SAME("ZADD z 1 a 2 b 3 c 2.5 bb");
    SAME("ZADD z XX CH 10 a 5 nosuch");
    SAME("ZRANGE z 0 -1 WITHSCORES");
    SAME("ZREVRANGE z 0 1");
    SAME("ZRANGEBYSCORE z 2 (10 WITHSCORES LIMIT 0 2");
    SAME("ZRANGE z (2 +inf BYSCORE");
    SAME("ZSCORE z bb");
    SAME("ZSCORE z nosuch");
    SAME("ZINCRBY z 0.5 c");
    SAME("ZRANK z c");
    SAME("ZREVRANK z c");
    SAME("ZCARD z");
    SAME("ZCOUNT z -inf 3");
    SAME("ZREM z b nosuch");
    SAME("ZPOPMIN z");
    SAME("ZPOPMAX z 2");
    SAME("ZADD z2 1 x 2 y");
    SAME("ZUNIONSTORE zu 2 z z2 WEIGHTS 1 2");
    SAME("ZRANGE zu 0 -1 WITHSCORES");
    SAME("ZRANGESTORE zr zu 0 0");
    SAME("ZRANGE zr 0 -1 WITHSCORES");
    SAME("ZADD z nan a");
    SAME("ZRANGE nosuch 0 -1");
}

CORE_TEST(streams_match_redis)
{
    SAME("XADD st 1-1 f1 v1");
    SAME("XADD st 1-2 f2 v2 f3 v3");
    SAME("XADD st 2-0 f4 v4");
    SAME("XADD st 1-5 late v");
    SAME("XLEN st");
    SAME("XRANGE st - +");
    SAME("XRANGE st 1-2 + COUNT 1");
    SAME("XREVRANGE st + - COUNT 2");
    SAME("XREAD COUNT 10 STREAMS st 0-0");
    SAME("XREAD STREAMS st 2-0");
    SAME("XGROUP CREATE st g 0");
    SAME("XREADGROUP GROUP g c1 COUNT 2 STREAMS st >");
    SAME("XACK st g 1-1 1-2");
    SAME("XDEL st 1-2");
    SAME("XRANGE st - +");
    SAME("XTRIM st MAXLEN 1");
    SAME("XRANGE st - +");
    SAME("XRANGE nosuch - +");
}

CORE_TEST(scripts_match_redis)
{
    redisReply *sha_px, *sha_rf;

    SAME("EVAL %s 1 sk sv", "return redis.call('SET', KEYS[1], ARGV[1])");
    SAME("EVAL %s 1 sk 41", "return {KEYS[1], ARGV[1], tonumber(ARGV[1]) + 1, redis.call('GET', KEYS[1])}");
    SAME("EVAL %s 0", "return {1, 'two', {3, {'four', false}}}");
    SAME("EVAL %s 0", "return redis.status_reply('FINE')");
    SAME("EVAL %s 0", "return redis.error_reply('boom')");
    SAME("EVAL %s 1 sk", "return redis.call('INCR', KEYS[1])");
    SAME("EVAL %s 2 k1 k2 a1 a2", "return {KEYS[2], ARGV[2], #KEYS, #ARGV}");

    sha_px = harness_expect(core_px, REDIS_REPLY_STRING, "SCRIPT LOAD %s", "return {KEYS[1], ARGV[1]}");
    sha_rf = harness_expect(core_rf, REDIS_REPLY_STRING, "SCRIPT LOAD %s", "return {KEYS[1], ARGV[1]}");
    cr_assert_str_eq(sha_px->str, sha_rf->str, "SCRIPT LOAD sha differs: %s vs %s", sha_px->str,
                     sha_rf->str);
    SAME("EVALSHA %s 1 key1 arg1", sha_px->str);
    SAME("SCRIPT EXISTS %s 0000000000000000000000000000000000000000", sha_px->str);
    SAME("EVALSHA 0000000000000000000000000000000000000000 0");
    freeReplyObject(sha_px);
    freeReplyObject(sha_rf);
}

CORE_TEST(expiry_matches_redis)
{
    redisReply *r;

    SAME("SET ek v EX 100");
    r = harness_expect(core_px, REDIS_REPLY_INTEGER, "TTL ek");
    cr_assert(r->integer >= 99 && r->integer <= 100, "TTL through the proxy %lld, wanted 99..100",
              r->integer);
    freeReplyObject(r);
    r = harness_expect(core_px, REDIS_REPLY_INTEGER, "PTTL ek");
    cr_assert(r->integer > 95000 && r->integer <= 100000, "PTTL through the proxy %lld, wanted ~100000",
              r->integer);
    freeReplyObject(r);
    SAME("PEXPIRE ek 100");
    {
        redisContext *bk = harness_connect(core_backend->port);

        cr_assert(harness_wait_until(core_gone(bk, "ek") && core_gone(core_rf, "ek"), CORE_REPLY_MS),
                  "ek (PEXPIRE 100) not expired on both redis within %d ms", CORE_REPLY_MS);
        redisFree(bk);
    }
    SAME("GET ek");
    SAME("EXISTS ek");
    SAME("PTTL ek");
    SAME("SET pk v PX 50000 NX");
    SAME("SET pk w PX 5 NX");
    SAME("PERSIST pk");
    SAME("TTL pk");
    SAME("EXPIRE nosuch 10");
    SAME("TTL nosuch");
    SAME("SET bad v EX 0");
    SAME("SET bad v EX notanumber");
}

CORE_TEST(raw_reply_bytes_match_redis)
{
    static const char echo_bin[] = "*2\r\n$4\r\nECHO\r\n$6\r\na\0\r\n\xff\x01\r\n";
    char *cmds[16];
    size_t lens[16];
    size_t n = 0;
    harness_raw *a = harness_raw_open(core_proxy->port);
    harness_raw *b = harness_raw_open(core_ref->port);

    cr_assert_not_null(a, "%s", harness_error());
    cr_assert_not_null(b, "%s", harness_error());
    cmds[n++] = harness_resp("SET", "rk", "value", NULL);
    cmds[n++] = harness_resp("GET", "rk", NULL);
    cmds[n++] = harness_resp("GET", "nosuch", NULL);
    cmds[n++] = harness_resp("DEL", "rk", "nosuch", NULL);
    cmds[n++] = harness_resp("RPUSH", "rl", "a", "", "c", NULL);
    cmds[n++] = harness_resp("LRANGE", "rl", "0", "-1", NULL);
    cmds[n++] = harness_resp("LRANGE", "nosuch", "0", "-1", NULL);
    cmds[n++] = harness_resp("INCR", "rl", NULL);
    cmds[n++] = harness_resp("EVAL", "return {1,'x',{2,false},{},'\\r\\n'}", "0", NULL);
    cmds[n++] = harness_resp("EVAL", "return redis.status_reply('fine')", "0", NULL);
    cmds[n++] = harness_resp("PING", NULL);
    cmds[n++] = harness_resp("PING", "hi", NULL);
    cmds[n++] = harness_resp("TYPE", "rl", NULL);
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(cmds[i]);
    cmds[n] = malloc(sizeof(echo_bin));
    cr_assert_not_null(cmds[n]);
    memcpy(cmds[n], echo_bin, sizeof(echo_bin));
    lens[n++] = sizeof(echo_bin) - 1;

    /* All commands in one pipelined burst to each side. */
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(harness_raw_send(a, cmds[i], lens[i]), 0, "%s", harness_error());
        cr_assert_eq(harness_raw_send(b, cmds[i], lens[i]), 0, "%s", harness_error());
    }
    for (size_t i = 0; i < n; i++) {
        char *ra = NULL, *rb = NULL;
        long la = harness_raw_reply(a, CORE_REPLY_MS, &ra);
        long lb = harness_raw_reply(b, CORE_REPLY_MS, &rb);

        cr_assert_gt(la, 0, "command %zu: no reply through the proxy: %s", i, harness_error());
        cr_assert_gt(lb, 0, "command %zu: no reply from redis", i);
        cr_assert(la == lb && memcmp(ra, rb, (size_t)la) == 0,
                  "command %zu: proxy bytes \"%s\" differ from redis bytes \"%s\"", i, ra, rb);
        free(ra);
        free(rb);
        free(cmds[i]);
    }
    harness_raw_close(a, false);
    harness_raw_close(b, false);
}

/* ---- pipelining, large values, many clients ----------------------------- */

CORE_TEST(ten_thousand_pipelined_commands_reply_in_order)
{
    for (int i = 0; i < CORE_PIPELINE; i++)
        cr_assert_eq(redisAppendCommand(core_px, "INCR pipecounter"), REDIS_OK);
    for (int i = 0; i < CORE_PIPELINE; i++) {
        redisReply *r = harness_pipe_reply(core_px, "pipelined INCR");

        cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "reply %d has type %d", i, r->type);
        cr_assert_eq(r->integer, i + 1, "reply %d is %lld, wanted %d (out of order?)", i, r->integer,
                     i + 1);
        freeReplyObject(r);
    }
    harness_expect_bulk(core_px, "10000", "GET pipecounter");
}

CORE_TEST(ten_megabyte_value_round_trips_byte_exact)
{
    char *big = malloc(CORE_BIG_VALUE);
    redisReply *r;

    cr_assert_not_null(big);
    for (size_t i = 0; i < CORE_BIG_VALUE; i++)
        big[i] = (char)((i * 31 + (i >> 9)) & 0xff);
    memcpy(big + 1000, "\r\n$-1\r\n*3\r\n", 12);
    harness_expect_status(core_px, "OK", "SET bigkey %b", big, (size_t)CORE_BIG_VALUE);
    r = harness_expect(core_px, REDIS_REPLY_STRING, "GET bigkey");
    cr_assert_eq(r->len, (size_t)CORE_BIG_VALUE, "GET returned %zu bytes", r->len);
    cr_assert(memcmp(r->str, big, CORE_BIG_VALUE) == 0, "GET returned different bytes");
    freeReplyObject(r);
    harness_expect_int(core_px, CORE_BIG_VALUE, "STRLEN bigkey");
    free(big);
}

CORE_TEST(five_hundred_concurrent_clients_each_get_their_own_value)
{
    redisContext **cs = calloc(CORE_CLIENTS, sizeof(*cs));

    cr_assert_not_null(cs);
    for (int i = 0; i < CORE_CLIENTS; i++)
        cs[i] = harness_connect(core_proxy->port);
    /* Every client has its SET and GET in flight before any reply is read. */
    for (int i = 0; i < CORE_CLIENTS; i++) {
        redisAppendCommand(cs[i], "SET client:%d value:%d", i, i);
        redisAppendCommand(cs[i], "GET client:%d", i);
        harness_pipe_flush(cs[i]);
    }
    for (int i = CORE_CLIENTS - 1; i >= 0; i--) {
        char want[32];
        redisReply *r = harness_pipe_reply(cs[i], "SET");

        cr_assert(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0, "client %d: SET failed", i);
        freeReplyObject(r);
        r = harness_pipe_reply(cs[i], "GET");
        snprintf(want, sizeof(want), "value:%d", i);
        cr_assert(r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0,
                  "client %d: GET returned type %d \"%s\", wanted \"%s\"", i, r->type,
                  r->str ? r->str : "", want);
        freeReplyObject(r);
    }
    for (int i = 0; i < CORE_CLIENTS; i++)
        redisFree(cs[i]);
    free(cs);
}

/* ---- transactions, blocking commands, pub/sub --------------------------- */

CORE_TEST(exec_returns_nil_after_watch_conflict)
{
    redisContext *other = harness_connect(core_proxy->port);
    redisReply *r;

    harness_expect_status(core_px, "OK", "SET wk start");
    harness_expect_status(core_px, "OK", "WATCH wk");
    harness_expect_status(other, "OK", "SET wk changed");
    harness_expect_status(core_px, "OK", "MULTI");
    harness_expect_status(core_px, "QUEUED", "SET wk mine");
    r = harness_expect(core_px, REDIS_REPLY_NIL, "EXEC");
    freeReplyObject(r);
    harness_expect_bulk(other, "changed", "GET wk");
    redisFree(other);
}

CORE_TEST(exec_returns_results_without_conflict)
{
    redisReply *r;

    harness_expect_status(core_px, "OK", "WATCH tk");
    harness_expect_status(core_px, "OK", "MULTI");
    harness_expect_status(core_px, "QUEUED", "SET tk mine");
    harness_expect_status(core_px, "QUEUED", "INCR tn");
    harness_expect_status(core_px, "QUEUED", "GET tk");
    r = harness_expect(core_px, REDIS_REPLY_ARRAY, "EXEC");
    cr_assert_eq(r->elements, 3, "EXEC returned %zu results", r->elements);
    cr_assert(r->element[0]->type == REDIS_REPLY_STATUS && strcmp(r->element[0]->str, "OK") == 0);
    cr_assert(r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer == 1);
    cr_assert(r->element[2]->type == REDIS_REPLY_STRING && strcmp(r->element[2]->str, "mine") == 0);
    freeReplyObject(r);
}

CORE_TEST(blpop_is_woken_by_lpush_from_another_client)
{
    redisContext *pusher = harness_connect(core_proxy->port);
    redisReply *r;
    long long t0;

    cr_assert_eq(redisAppendCommand(core_px, "BLPOP bq 10"), REDIS_OK);
    harness_pipe_flush(core_px);
    /* The LPUSH must come after Redis blocked the BLPOP, or the test proves nothing. */
    core_wait_blocked(1, "BLPOP bq 10");
    t0 = harness_now_ms();
    harness_expect_int(pusher, 1, "LPUSH bq woken");
    r = harness_pipe_reply(core_px, "BLPOP");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "BLPOP reply type %d", r->type);
    cr_assert_eq(r->elements, 2);
    cr_assert_str_eq(r->element[0]->str, "bq");
    cr_assert_str_eq(r->element[1]->str, "woken");
    cr_assert_lt(harness_now_ms() - t0, 2000, "BLPOP woke only after %lld ms", harness_now_ms() - t0);
    freeReplyObject(r);
    harness_expect_int(pusher, 0, "LLEN bq");
    core_wait_blocked(0, "after the LPUSH");
    redisFree(pusher);
}

CORE_TEST(subscriber_receives_publish_from_another_client)
{
    redisContext *pub = harness_connect(core_proxy->port);
    redisReply *r;

    r = harness_expect(core_px, REDIS_REPLY_ARRAY, "SUBSCRIBE news");
    cr_assert_eq(r->elements, 3);
    cr_assert_str_eq(r->element[0]->str, "subscribe");
    cr_assert_str_eq(r->element[1]->str, "news");
    cr_assert_eq(r->element[2]->integer, 1);
    freeReplyObject(r);
    harness_expect_int(pub, 1, "PUBLISH news %s", "hello world");
    r = harness_pipe_reply(core_px, "published message");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 3);
    cr_assert_str_eq(r->element[0]->str, "message");
    cr_assert_str_eq(r->element[1]->str, "news");
    cr_assert_str_eq(r->element[2]->str, "hello world");
    freeReplyObject(r);
    redisFree(pub);
}

/* ---- disconnects and backend loss --------------------------------------- */

CORE_TEST(client_gone_mid_pipeline_leaves_consistent_state)
{
    static const char incr[] = "*2\r\n$4\r\nINCR\r\n$7\r\ngone:ctr\r\n";
    size_t one = sizeof(incr) - 1;
    char *batch = malloc(one * CORE_ABANDONED);
    harness_raw *raw = harness_raw_open(core_proxy->port);
    redisContext *fresh, *direct;
    long long prev = -1, value = -2, deadline;
    redisReply *r;

    cr_assert_not_null(batch);
    cr_assert_not_null(raw, "%s", harness_error());
    for (int i = 0; i < CORE_ABANDONED; i++)
        memcpy(batch + (size_t)i * one, incr, one);
    cr_assert_eq(harness_raw_send(raw, batch, one * CORE_ABANDONED), 0, "%s", harness_error());
    harness_raw_close(raw, false);
    free(batch);

    /* Wait until the counter stops moving, then it must be a sane value. */
    fresh = harness_connect(core_proxy->port);
    deadline = harness_now_ms() + CORE_REPLY_MS;
    for (;;) {
        r = harness_cmd(fresh, "GET gone:ctr");
        cr_assert_not_null(r, "GET after the client left: %s", fresh->errstr);
        value = r->type == REDIS_REPLY_STRING ? atoll(r->str) : r->type == REDIS_REPLY_NIL ? 0 : -1;
        cr_assert_geq(value, 0, "GET gone:ctr returned reply type %d", r->type);
        freeReplyObject(r);
        if (value == prev)
            break;
        prev = value;
        cr_assert_lt(harness_now_ms(), deadline, "counter still moving after %d ms", CORE_REPLY_MS);
        harness_sleep_ms(300);
    }
    cr_assert_leq(value, CORE_ABANDONED, "counter %lld exceeds the %d INCRs sent", value, CORE_ABANDONED);
    harness_expect_int(fresh, value + 1, "INCR gone:ctr");
    direct = harness_connect(core_backend->port);
    {
        char want[32];

        snprintf(want, sizeof(want), "%lld", value + 1);
        harness_expect_bulk(direct, want, "GET gone:ctr");
    }
    harness_expect_status(fresh, "PONG", "PING");
    redisFree(direct);
    redisFree(fresh);
}

CORE_TEST(backend_killed_mid_stream_fails_in_flight_requests_with_errors)
{
    static const char get[] = "*2\r\n$3\r\nGET\r\n$6\r\nbigval\r\n";
    enum { GETS = 200, VALUE = 65536 };
    char *value = malloc(VALUE);
    harness_raw *raw;
    redisReply *r;
    long long t0;
    int errors = 0, values = 0;

    harness_skip_if_direct();
    cr_assert_not_null(value);
    memset(value, 'v', VALUE);
    harness_expect_status(core_px, "OK", "SET bigval %b", value, (size_t)VALUE);

    /* One blocked request that is certainly in flight ... */
    cr_assert_eq(redisAppendCommand(core_px, "BLPOP never:pushed 30"), REDIS_OK);
    harness_pipe_flush(core_px);
    /* ... and a pipeline of large replies nobody reads yet. */
    raw = harness_raw_open(core_proxy->port);
    cr_assert_not_null(raw, "%s", harness_error());
    for (int i = 0; i < GETS; i++)
        cr_assert_eq(harness_raw_send(raw, get, sizeof(get) - 1), 0, "%s", harness_error());
    core_wait_blocked(1, "BLPOP never:pushed 30");
    {
        redisContext *bk = harness_connect(core_backend->port);

        cr_assert(harness_wait_until(harness_cmdstat_calls(bk, "get") >= 1, CORE_REPLY_MS),
                  "none of the %d pipelined GETs reached the backend within %d ms%s", GETS, CORE_REPLY_MS,
                  harness_diag());
        redisFree(bk);
    }
    harness_redis_kill9(core_backend);

    t0 = harness_now_ms();
    r = harness_pipe_reply(core_px, "BLPOP in flight when the backend died");
    {
        char *s = harness_reply_str(r);

        cr_assert(r->type == REDIS_REPLY_ERROR && strncmp(r->str, "ERR redsnano: backend", 21) == 0,
                  "BLPOP in flight got %s, wanted -ERR redsnano: backend ...", s);
        free(s);
    }
    cr_assert_lt(harness_now_ms() - t0, CORE_REPLY_MS, "error came after %lld ms",
                 harness_now_ms() - t0);
    freeReplyObject(r);

    /* Every pipelined GET is answered: the value, or the backend error. */
    for (int i = 0; i < GETS; i++) {
        char *bytes = NULL;
        long n = harness_raw_reply(raw, CORE_REPLY_MS, &bytes);

        cr_assert_gt(n, 0, "pipelined GET %d (after %d values, %d errors): %s", i, values, errors,
                     harness_error());
        if (bytes[0] == '$' && n == VALUE + 10)
            values++;
        else if (strncmp(bytes, "-ERR redsnano: backend", 22) == 0)
            errors++;
        else
            cr_assert_fail("pipelined GET %d got unexpected reply: %.80s", i, bytes);
        free(bytes);
    }

    /* The pipelining client stays usable: a request while the backend is
     * down gets an error, not a hang and not a close. */
    {
        char *bytes = NULL;

        t0 = harness_now_ms();
        cr_assert_eq(harness_raw_send(raw, get, sizeof(get) - 1), 0, "%s", harness_error());
        cr_assert_gt(harness_raw_reply(raw, CORE_REPLY_MS, &bytes), 0,
                     "GET on the pipelining client while the backend is down: %s", harness_error());
        cr_assert(bytes[0] == '-', "GET while the backend is down got %.80s", bytes);
        free(bytes);
    }
    harness_raw_close(raw, false);

    /* So does a new client. */
    {
        redisContext *fresh = harness_connect(core_proxy->port);

        t0 = harness_now_ms();
        r = harness_expect(fresh, REDIS_REPLY_ERROR, "GET bigval");
        cr_assert_lt(harness_now_ms() - t0, CORE_REPLY_MS, "error came after %lld ms",
                     harness_now_ms() - t0);
        freeReplyObject(r);
        redisFree(fresh);
    }
    free(value);
}

CORE_TEST(backend_restarted_on_same_port_serves_again)
{
    redisContext *c = core_px;
    long long deadline;
    bool ok = false;
    char last[256] = "";

    harness_skip_if_direct();
    harness_expect_status(c, "OK", "SET before restart");
    harness_redis_kill9(core_backend);
    harness_sleep_ms(200);
    harness_redis_restart(core_backend);

    deadline = harness_now_ms() + CORE_RECOVER_MS;
    while (!ok && harness_now_ms() < deadline) {
        redisReply *r = harness_cmd(c, "SET after restart");

        if (r == NULL) {
            /* The proxy may have closed this client; a new one must work. */
            snprintf(last, sizeof(last), "connection error: %s", c->errstr);
            if (c != core_px)
                redisFree(c);
            c = harness_try_connect(core_proxy->port, 1000);
            if (c == NULL)
                c = core_px;
        } else {
            char *s = harness_reply_str(r);

            snprintf(last, sizeof(last), "%s", s);
            free(s);
            ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
            freeReplyObject(r);
        }
        if (!ok)
            harness_sleep_ms(100);
    }
    cr_assert(ok, "SET still failing %d ms after the backend came back (last: %s)", CORE_RECOVER_MS, last);
    harness_expect_bulk(c, "restart", "GET after");
    harness_expect_status(c, "PONG", "PING");
    if (c != core_px)
        redisFree(c);
    {
        redisContext *fresh = harness_connect(core_proxy->port);

        harness_expect_bulk(fresh, "restart", "GET after");
        redisFree(fresh);
    }
}

/* ---- protocol ----------------------------------------------------------- */

CORE_TEST(protocol_garbage_gets_error_and_close_while_others_work)
{
    static const char *const garbage[] = {
        "*abc\r\n",         /* multibulk length not a number */
        "*1\r\n$-5\r\n",    /* negative bulk length */
        "*1\r\n:1\r\n",     /* element of a request is not a bulk */
    };
    redisContext *bystander = harness_connect(core_proxy->port);

    harness_expect_status(bystander, "OK", "SET bystander alive");
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        harness_raw *raw = harness_raw_open(core_proxy->port);
        char *reply = NULL;
        long n;

        cr_assert_not_null(raw, "%s", harness_error());
        cr_assert_eq(harness_raw_sends(raw, garbage[i]), 0, "%s", harness_error());
        n = harness_raw_reply(raw, CORE_REPLY_MS, &reply);
        cr_assert_gt(n, 0, "garbage %zu: no error reply: %s", i, harness_error());
        cr_assert(strncmp(reply, "-ERR Protocol error", 19) == 0,
                  "garbage %zu: reply \"%s\", wanted -ERR Protocol error...", i, reply);
        free(reply);
        cr_assert_eq(harness_raw_wait_eof(raw, CORE_REPLY_MS), 0,
                     "garbage %zu: connection still open %d ms after the protocol error", i, CORE_REPLY_MS);
        harness_raw_close(raw, false);
        harness_expect_bulk(bystander, "alive", "GET bystander");
    }
    harness_expect_status(bystander, "PONG", "PING");
    redisFree(bystander);
}

CORE_TEST(inline_commands_are_answered)
{
    static const struct {
        const char *send;  /* inline command bytes */
        const char *want;  /* exact reply bytes */
    } cases[] = {
        { "PING\r\n", "+PONG\r\n" },
        { "SET a b\r\n", "+OK\r\n" },
        { "GET a\r\n", "$1\r\nb\r\n" },
        { "PING\n", "+PONG\r\n" },
    };
    harness_raw *raw = harness_raw_open(core_proxy->port);

    cr_assert_not_null(raw, "%s", harness_error());
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *reply = NULL;
        long n;

        cr_assert_eq(harness_raw_sends(raw, cases[i].send), 0, "%s", harness_error());
        n = harness_raw_reply(raw, CORE_REPLY_MS, &reply);
        cr_assert_gt(n, 0, "inline %zu: no reply: %s", i, harness_error());
        cr_assert_str_eq(reply, cases[i].want, "inline %zu: reply \"%s\", wanted \"%s\"", i, reply,
                         cases[i].want);
        free(reply);
    }
    /* Inline and multibulk mixed in one burst keep their order. */
    cr_assert_eq(harness_raw_sends(raw, "GET a\r\n*1\r\n$4\r\nPING\r\nSET a c\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n"), 0);
    {
        static const char *const want[] = { "$1\r\nb\r\n", "+PONG\r\n", "+OK\r\n", "$1\r\nc\r\n" };

        for (size_t i = 0; i < 4; i++) {
            char *reply = NULL;

            cr_assert_gt(harness_raw_reply(raw, CORE_REPLY_MS, &reply), 0, "mixed %zu: %s", i,
                         harness_error());
            cr_assert_str_eq(reply, want[i], "mixed %zu: reply \"%s\", wanted \"%s\"", i, reply, want[i]);
            free(reply);
        }
    }
    harness_raw_close(raw, false);
}

CORE_TEST(hello_4_is_refused_with_noproto)
{
    redisReply *r;

    r = harness_expect(core_px, REDIS_REPLY_ERROR, "HELLO 4");
    cr_assert(strncmp(r->str, "NOPROTO", 7) == 0, "HELLO 4 error \"%s\" does not start with NOPROTO", r->str);
    freeReplyObject(r);
    harness_expect_status(core_px, "PONG", "PING");
    /* HELLO 3 is answered with a RESP3 map hiredis 0.14 cannot read: see
     * test_resp3.c. */
}

CORE_TEST(hello_2_returns_an_array)
{
    redisReply *r = harness_expect(core_px, REDIS_REPLY_ARRAY, "HELLO 2");
    bool proto2 = false;

    cr_assert(r->elements > 0 && r->elements % 2 == 0, "HELLO 2 returned %zu elements", r->elements);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, "proto") == 0)
            proto2 = r->element[i + 1]->type == REDIS_REPLY_INTEGER && r->element[i + 1]->integer == 2;
    }
    cr_assert(proto2, "HELLO 2 reply has no proto => 2 pair");
    freeReplyObject(r);
    harness_expect_status(core_px, "PONG", "PING");
}

/* ---- admin commands ------------------------------------------------------ */

CORE_TEST(admin_commands_are_refused_without_allow_admin_commands)
{
    static const char *const admin[] = {
        "CONFIG SET maxmemory 1mb",
        "SHUTDOWN",
        "SHUTDOWN NOSAVE",
        "DEBUG SLEEP 0",
    };
    redisContext *direct;

    harness_skip_if_direct();
    for (size_t i = 0; i < sizeof(admin) / sizeof(admin[0]); i++) {
        redisReply *r = harness_cmd(core_px, admin[i]);
        char *s = harness_reply_str(r);

        cr_assert_not_null(r, "%s: no reply: %s", admin[i], core_px->errstr);
        cr_assert(r->type == REDIS_REPLY_ERROR && strncmp(r->str, "ERR", 3) == 0 &&
                      strstr(r->str, "allow-admin-commands") != NULL,
                  "%s: reply %s, wanted -ERR ... allow-admin-commands ...", admin[i], s);
        free(s);
        freeReplyObject(r);
    }
    direct = harness_connect(core_backend->port);
    harness_expect_status(direct, "PONG", "PING");
    {
        redisReply *r = harness_expect(direct, REDIS_REPLY_ARRAY, "CONFIG GET maxmemory");

        cr_assert_str_eq(r->element[1]->str, "0", "backend maxmemory changed to %s", r->element[1]->str);
        freeReplyObject(r);
    }
    harness_expect_status(core_px, "PONG", "PING");
    redisFree(direct);
}

CORE_TEST(flushall_is_not_an_admin_command)
{
    harness_expect_status(core_px, "OK", "SET doomed 1");
    harness_expect_status(core_px, "OK", "FLUSHALL");
    harness_expect_int(core_px, 0, "EXISTS doomed");
}

CORE_TEST(config_get_maxmemory_is_answered)
{
    SAME("CONFIG GET maxmemory");
}

CORE_TEST(admin_commands_pass_with_allow_admin_commands_yes)
{
    harness_proc *admin;
    redisContext *c, *direct;
    redisReply *r;
    int status;

    harness_skip_if_direct();
    admin = harness_proxy_start(CORE_PORT(3), "--primary", core_primary, "--loglevel", "warning",
                                "--allow-admin-commands", "yes");
    c = harness_connect(admin->port);
    harness_expect_status(c, "OK", "CONFIG SET maxmemory 1mb");
    harness_expect_status(c, "OK", "DEBUG SLEEP 0");
    direct = harness_connect(core_backend->port);
    r = harness_expect(direct, REDIS_REPLY_ARRAY, "CONFIG GET maxmemory");
    cr_assert_str_eq(r->element[1]->str, "1048576", "backend maxmemory is %s", r->element[1]->str);
    freeReplyObject(r);
    redisFree(direct);
    redisFree(c);
    status = harness_proxy_stop(admin);
    cr_assert_eq(status, 0, "admin proxy: %s", harness_status_str(status));
}

/* ---- the proxy itself ---------------------------------------------------- */

CORE_TEST(sigterm_exits_with_status_0)
{
    redisContext *idle = harness_connect(core_proxy->port);
    long long t0;
    int status;

    harness_skip_if_direct();
    harness_expect_status(core_px, "OK", "SET k v");
    cr_assert_eq(redisAppendCommand(core_px, "BLPOP never:pushed 30"), REDIS_OK);
    harness_pipe_flush(core_px);
    core_wait_blocked(1, "BLPOP never:pushed 30");
    t0 = harness_now_ms();
    status = harness_proxy_stop(core_proxy);
    {
        char *tail = harness_log_tail(core_proxy, 3000);

        cr_assert_eq(status, 0, "SIGTERM with clients connected: %s; log:\n%s", harness_status_str(status),
                     tail);
        free(tail);
    }
    cr_assert_lt(harness_now_ms() - t0, HARNESS_STOP_MS, "exit took %lld ms", harness_now_ms() - t0);
    redisFree(idle);
}

CORE_TEST(redsnano_stats_is_a_bulk_of_name_value_lines)
{
    redisReply *r;
    int fields = 0;
    char value[64];
    char first[64] = "", first_value[64] = "";

    harness_skip_if_direct();
    r = harness_expect(core_px, REDIS_REPLY_STRING, "REDSNANO STATS");
    for (char *line = r->str; line != NULL && *line != '\0';) {
        char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);

        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len > 0 && line[0] != '#') {
            char *colon = memchr(line, ':', len);

            cr_assert(colon != NULL && colon != line, "STATS line \"%.*s\" is not name:value", (int)len, line);
            if (fields++ == 0 && (size_t)(colon - line) < sizeof(first) &&
                (size_t)(line + len - colon - 1) < sizeof(first_value)) {
                memcpy(first, line, (size_t)(colon - line));
                memcpy(first_value, colon + 1, (size_t)(line + len - colon - 1));
            }
        }
        line = eol != NULL ? eol + 1 : NULL;
    }
    cr_assert_gt(fields, 0, "REDSNANO STATS has no fields");
    cr_assert_eq(harness_proxy_stat(core_px, "no_such_stat_name", value, sizeof(value)), -ENOENT);
    if (first[0] != '\0' && strcmp(first, "uptime_in_seconds") != 0) {
        cr_assert_eq(harness_proxy_stat(core_px, first, value, sizeof(value)), 0, "stat %s not found", first);
        cr_assert_str_eq(value, first_value, "stat %s: %s then %s", first, first_value, value);
    }
    freeReplyObject(r);
}

/* Is prog on PATH? */
static bool core_on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[512];

    while (path != NULL && *path != '\0') {
        const char *end = strchr(path, ':');
        size_t len = end != NULL ? (size_t)(end - path) : strlen(path);

        snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, prog);
        if (access(buf, X_OK) == 0)
            return true;
        path = end != NULL ? end + 1 : NULL;
    }
    return false;
}

CORE_TEST(redis_benchmark_completes_without_errors, .timeout = 280)
{
    char port[16];
    const char *argv[] = { "redis-benchmark", "-h", "127.0.0.1", "-p", port, "-q", "-n", "20000",
                           "-P", "100", "-c", "20", NULL };
    char *out = NULL;
    int status, results = 0;

    if (!core_on_path("redis-benchmark"))
        cr_skip_test("redis-benchmark is not installed");
    snprintf(port, sizeof(port), "%d", core_proxy->port);
    status = harness_run_capture(argv, CORE_BENCH_MS, &out);
    cr_assert_neq(status, -ETIMEDOUT, "redis-benchmark still running after %d ms; output:\n%s",
                  CORE_BENCH_MS, out);
    cr_assert_eq(status, 0, "redis-benchmark %s; output:\n%s", harness_status_str(status), out);
    cr_assert_null(strstr(out, "Could not fetch server CONFIG"), "output:\n%s", out);
    cr_assert_null(strstr(out, "ERR"), "error in the output:\n%s", out);
    cr_assert_null(strstr(out, "rror"), "error in the output:\n%s", out);
    for (const char *p = out; (p = strstr(p, "requests per second")) != NULL; p++)
        results++;
    cr_assert_geq(results, 10, "only %d benchmark results; output:\n%s", results, out);
    free(out);
}
