/*
 * test_routing.c — where requests go, and that nothing waits without need.
 *
 *   replicas:  test ──▶ redsnano (PORT 3, --read-policy replica) ──▶ primary (PORT 0)
 *                                                                 ├─▶ replica (PORT 1)
 *                                                                 └─▶ replica (PORT 2)
 *   cluster:   test ──▶ redsnano (PORT 13, --cluster ...) ──▶ nodes (PORT 10..12)
 *   single:    test ──▶ redsnano (PORT 21) ──▶ redis (PORT 20) ◀── test (directly, to compare)
 *
 * The behaviours checked here are those of the issue-8 refactor:
 *   - reads of pipelining clients spread over the replicas (measured on the
 *     replicas themselves, INFO commandstats);
 *   - a client does not wait to change backend connection (REDSNANO STATS
 *     stalls) where the order of replies cannot be observed: reads spread
 *     over replicas, keys spread over cluster nodes;
 *   - a blocking command that pins a connection reaches Redis as soon as a
 *     plain command would (no connect first);
 *   - UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE from a client that is not
 *     subscribed answer what Redis answers, byte for byte.
 * Every test also requires that the proxy then exits 0 on SIGTERM.
 *
 * Ports 7040-7069 (cluster bus ports 17050-17052), see tests/harness.h.
 * Proxy-only tests skip with HARNESS_DIRECT=1, except the byte comparisons.
 */
#include "tests/harness.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_PORT_BASE 7040                   /* this file's port range start */
#define RT_PORT(n) harness_port(RT_PORT_BASE, (n))
#define RT_PROXY 3                          /* port offset of the replicas' proxy */
#define RT_CLU_FIRST 10                     /* port offset of cluster node 0 */
#define RT_CLU_NODES 3                      /* cluster primaries */
#define RT_CLU_PROXY 13                     /* port offset of the cluster proxy */
#define RT_SINGLE 20                        /* port offset of the single redis */
#define RT_SINGLE_PROXY 21                  /* port offset of its proxy */
#define RT_SYNC_MS 10000                    /* bound for replicas to sync / be healthy */
#define RT_READY_MS 5000                    /* bound for the cluster proxy to route a key */
#define RT_KEYS 1000                        /* keys SET before the reads */
#define RT_SPREAD_CLIENTS 10                /* clients of the spreading test */
#define RT_SPREAD_GETS 100                  /* GETs each of them pipelines */
#define RT_BENCH_GETS 1000                  /* GETs of the redis-benchmark-like client */
#define RT_BENCH_PIPELINE 16                /* ... sent this many at a time */
#define RT_SHARE_MIN 40                     /* percent of the GETs each replica serves, at least */
#define RT_SHARE_MAX 60                     /* ... at most */
#define RT_STALL_GETS 1000                  /* GETs pipelined in the stalls test */
#define RT_STALL_SHARE 10                   /* percent each replica must serve there, at least */
#define RT_CLU_OPS 1000                     /* SETs, then GETs, of the cluster stalls test */
#define RT_CLU_MIN_PER_NODE 200             /* keys each node must get (expected ~333) */
#define RT_SEED 0x7e57u                     /* PRNG seed of the cluster keys */
#define RT_PIN_TRIALS 100                   /* XREADGROUP-vs-DEL trials, each way */
#define RT_PIN_SLACK 15                     /* binomial noise allowed at n = 100 */
#define RT_RAW_MS 5000                      /* bound for one raw reply */

static harness_proc *rt_redis[3];               /* primary, replica 1, replica 2 */
static harness_proc *rt_nodes[RT_CLU_NODES];    /* cluster nodes */
static harness_proc *rt_single;                 /* the single redis */
static harness_proc *rt_proxy;                  /* the proxy of the test, NULL before */
static char rt_addr[3][32];                     /* "127.0.0.1:<port>" of rt_redis[i] */

static void rt_fini(void)
{
    harness_cleanup();
}

TestSuite(routing, .fini = rt_fini, .timeout = 120);

/* A routing test: the body, then the clean-exit check of the proxy. */
#define RT_TEST(name, ...)                            \
    static void rt_body_##name(void);                 \
    Test(routing, name, ##__VA_ARGS__)                \
    {                                                 \
        rt_body_##name();                             \
        harness_proxy_check_exit(rt_proxy);           \
    }                                                 \
    static void rt_body_##name(void)

/* ---- primary + two replicas behind the proxy ------------------------------ */

/*
 * Primary + two replicas in sync, RT_KEYS keys rt:<i> = v<i> written on the
 * primary and present on both replicas, then the proxy with both replicas
 * and --read-policy replica, both replicas healthy in it.
 */
static void rt_replicas_start(void)
{
    char port0[16];
    redisContext *prim, *px;

    harness_skip_if_direct();
    snprintf(port0, sizeof(port0), "%d", RT_PORT(0));
    rt_redis[0] = harness_redis_start(RT_PORT(0), "--repl-diskless-sync-delay", "0");
    for (int i = 1; i <= 2; i++)
        rt_redis[i] = harness_redis_start(RT_PORT(i), "--replicaof", "127.0.0.1", port0);
    for (int i = 0; i < 3; i++)
        snprintf(rt_addr[i], sizeof(rt_addr[i]), "127.0.0.1:%d", RT_PORT(i));
    for (int i = 1; i <= 2; i++)
        cr_assert(harness_wait_until(harness_replica_link_up(RT_PORT(i)), RT_SYNC_MS), "replica %s not in sync within %d ms",
                  rt_addr[i], RT_SYNC_MS);

    prim = harness_connect(RT_PORT(0));
    for (int i = 0; i < RT_KEYS; i++)
        redisAppendCommand(prim, "SET rt:%d v%d", i, i);
    harness_pipe_flush(prim);
    for (int i = 0; i < RT_KEYS; i++) {
        redisReply *r = harness_pipe_reply(prim, "SET rt:<i> on the primary");

        cr_assert(r->type == REDIS_REPLY_STATUS, "SET rt:%d on the primary: %s", i, harness_reply_str(r));
        freeReplyObject(r);
    }
    redisFree(prim);
    for (int i = 1; i <= 2; i++) {
        redisContext *c = harness_connect(RT_PORT(i));

        cr_assert(harness_wait_until(harness_cmd_int(c, "EXISTS rt:%d", RT_KEYS - 1) == 1, RT_SYNC_MS),
                  "replica %s did not get the keys within %d ms", rt_addr[i], RT_SYNC_MS);
        redisFree(c);
    }

    rt_proxy = harness_proxy_start(RT_PORT(RT_PROXY), "--primary", rt_addr[0], "--replica", rt_addr[1], "--replica",
                                   rt_addr[2], "--read-policy", "replica", "--health-interval", "200",
                                   "--loglevel", "verbose");
    harness_diag_set(rt_proxy, NULL);
    px = harness_connect(rt_proxy->port);
    for (int i = 1; i <= 2; i++)
        cr_assert(harness_wait_until(harness_proxy_backend_health(px, rt_addr[i]) == 1, RT_SYNC_MS),
                  "replica %s not healthy in the proxy within %d ms%s", rt_addr[i], RT_SYNC_MS, harness_diag());
    redisFree(px);
}

/* CONFIG RESETSTAT on both replicas, directly. */
static void rt_replicas_resetstat(void)
{
    for (int i = 1; i <= 2; i++) {
        redisContext *c = harness_connect(RT_PORT(i));

        harness_cmd_ok(c, "CONFIG RESETSTAT");
        redisFree(c);
    }
}

/* GETs served by each replica since the reset; both must be within the share. */
static void rt_assert_spread(long long sent, const char *load)
{
    long long calls[3] = { 0, 0, 0 };

    for (int i = 1; i <= 2; i++) {
        redisContext *c = harness_connect(RT_PORT(i));

        calls[i] = harness_cmdstat_calls(c, "get");
        redisFree(c);
    }
    cr_log_info("%s: replica 1 served %lld GETs, replica 2 %lld, of %lld", load, calls[1], calls[2], sent);
    for (int i = 1; i <= 2; i++)
        cr_assert(calls[i] * 100 >= sent * RT_SHARE_MIN && calls[i] * 100 <= sent * RT_SHARE_MAX,
                  "%s: replica %s served %lld of %lld GETs (%lld%%), wanted %d-%d%% (the other served %lld)", load,
                  rt_addr[i], calls[i], sent, calls[i] * 100 / sent, RT_SHARE_MIN, RT_SHARE_MAX, calls[3 - i]);
}

/* The GET reply of rt:<key> must be v<key>. */
static void rt_check_get(const redisReply *r, int key, int n)
{
    char want[32];
    int wlen = snprintf(want, sizeof(want), "v%d", key);

    if (r->type != REDIS_REPLY_STRING || r->len != (size_t)wlen || memcmp(r->str, want, (size_t)wlen) != 0) {
        char *s = harness_reply_str(r);

        cr_assert_fail("reply %d (GET rt:%d) is %s, wanted \"%s\"%s", n, key, s, want, harness_diag());
    }
}

/* ---- a: reads spread for pipelining clients -------------------------------- */

RT_TEST(reads_of_ten_pipelining_clients_spread_over_replicas)
{
    redisContext *cl[RT_SPREAD_CLIENTS];

    rt_replicas_start();
    for (int c = 0; c < RT_SPREAD_CLIENTS; c++)
        cl[c] = harness_connect(rt_proxy->port);
    rt_replicas_resetstat();
    for (int c = 0; c < RT_SPREAD_CLIENTS; c++)
        for (int i = 0; i < RT_SPREAD_GETS; i++)
            redisAppendCommand(cl[c], "GET rt:%d", (c * RT_SPREAD_GETS + i) % RT_KEYS);
    for (int c = 0; c < RT_SPREAD_CLIENTS; c++)
        harness_pipe_flush(cl[c]);
    for (int c = 0; c < RT_SPREAD_CLIENTS; c++) {
        for (int i = 0; i < RT_SPREAD_GETS; i++) {
            redisReply *r = harness_pipe_reply(cl[c], "pipelined GET");

            rt_check_get(r, (c * RT_SPREAD_GETS + i) % RT_KEYS, i);
            freeReplyObject(r);
        }
        redisFree(cl[c]);
    }
    rt_assert_spread((long long)RT_SPREAD_CLIENTS * RT_SPREAD_GETS, "10 clients x 100 pipelined GETs");
}

RT_TEST(reads_of_one_client_pipelining_16_spread_over_replicas)
{
    redisContext *c;

    rt_replicas_start();
    c = harness_connect(rt_proxy->port);
    rt_replicas_resetstat();
    for (int done = 0; done < RT_BENCH_GETS; done += RT_BENCH_PIPELINE) {
        int n = RT_BENCH_GETS - done < RT_BENCH_PIPELINE ? RT_BENCH_GETS - done : RT_BENCH_PIPELINE;

        for (int i = 0; i < n; i++)
            redisAppendCommand(c, "GET rt:%d", (done + i) % RT_KEYS);
        harness_pipe_flush(c);
        for (int i = 0; i < n; i++) {
            redisReply *r = harness_pipe_reply(c, "pipelined GET");

            rt_check_get(r, (done + i) % RT_KEYS, done + i);
            freeReplyObject(r);
        }
    }
    redisFree(c);
    rt_assert_spread(RT_BENCH_GETS, "1 client, 1,000 GETs pipelined 16 at a time");
}

/* ---- b: no waiting where order cannot be observed ------------------------ */

RT_TEST(pipelined_reads_over_replicas_never_stall)
{
    redisContext *c, *admin;
    long long stalls0, stalls;

    rt_replicas_start();
    c = harness_connect(rt_proxy->port);
    admin = harness_connect(rt_proxy->port);
    rt_replicas_resetstat();
    stalls0 = harness_proxy_stat_ll(admin, "stalls");
    for (int i = 0; i < RT_STALL_GETS; i++)
        redisAppendCommand(c, "GET rt:%d", (i * 7) % RT_KEYS);
    harness_pipe_flush(c);
    for (int i = 0; i < RT_STALL_GETS; i++) {
        redisReply *r = harness_pipe_reply(c, "pipelined GET");

        rt_check_get(r, (i * 7) % RT_KEYS, i);
        freeReplyObject(r);
    }
    stalls = harness_proxy_stat_ll(admin, "stalls") - stalls0;
    cr_log_info("1,000 pipelined GETs over two replicas: %lld stalls", stalls);
    /* Zero stalls mean something only when the reads did change connection. */
    for (int i = 1; i <= 2; i++) {
        redisContext *r = harness_connect(RT_PORT(i));
        long long calls = harness_cmdstat_calls(r, "get");

        cr_assert(calls * 100 >= (long long)RT_STALL_GETS * RT_STALL_SHARE,
                  "replica %s served %lld of the %d pipelined GETs, wanted >= %d%%: the reads were not spread, so "
                  "0 stalls proves nothing", rt_addr[i], calls, RT_STALL_GETS, RT_STALL_SHARE);
        redisFree(r);
    }
    cr_assert_eq(stalls, 0, "1,000 pipelined GETs over two replicas: the client stalled %lld times, wanted 0%s",
                 stalls, harness_diag());
    redisFree(c);
    redisFree(admin);
}

/* xorshift64*: reproducible from RT_SEED. */
static uint64_t rt_rng = RT_SEED;

static uint64_t rt_rand(void)
{
    rt_rng ^= rt_rng >> 12;
    rt_rng ^= rt_rng << 25;
    rt_rng ^= rt_rng >> 27;
    return rt_rng * 0x2545F4914F6CDD1Dull;
}

/* Three-node cluster, the proxy in front of it routing keyed commands. */
static void rt_cluster_start(void)
{
    int ports[RT_CLU_NODES];
    char addr[RT_CLU_NODES][32];
    redisContext *px;

    harness_skip_if_direct();
    for (int i = 0; i < RT_CLU_NODES; i++) {
        ports[i] = RT_PORT(RT_CLU_FIRST + i);
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", ports[i]);
    }
    harness_cluster_start(ports, RT_CLU_NODES, 2000, rt_nodes);
    rt_proxy = harness_proxy_start(RT_PORT(RT_CLU_PROXY), "--cluster", addr[0], "--cluster", addr[1], "--cluster",
                                   addr[2], "--loglevel", "verbose");
    harness_diag_set(rt_proxy, NULL);
    /* PING is answered by the proxy itself; EXISTS proves the slot map is loaded. */
    px = harness_connect(rt_proxy->port);
    cr_assert(harness_wait_until(({
                                     redisReply *r_ = harness_cmd(px, "EXISTS rt:ready:probe");
                                     bool ok_ = r_ != NULL && r_->type == REDIS_REPLY_INTEGER;
                                     if (r_ != NULL)
                                         freeReplyObject(r_);
                                     ok_;
                                 }),
                                 RT_READY_MS),
              "the proxy did not route EXISTS within %d ms%s", RT_READY_MS, harness_diag());
    redisFree(px);
}

RT_TEST(pipelined_sets_and_gets_over_cluster_nodes_stay_in_order_and_never_stall)
{
    static char keys[RT_CLU_OPS][48];
    static char vals[RT_CLU_OPS][48];
    redisContext *c, *admin;
    long long stalls0, stalls;

    rt_cluster_start();
    c = harness_connect(rt_proxy->port);
    admin = harness_connect(rt_proxy->port);
    for (int i = 0; i < RT_CLU_OPS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "rk:%d:%llx", i, (unsigned long long)(rt_rand() & 0xffffffffffull));
        snprintf(vals[i], sizeof(vals[i]), "val-%d-%llx", i, (unsigned long long)(rt_rand() & 0xffffffull));
    }
    stalls0 = harness_proxy_stat_ll(admin, "stalls");
    for (int i = 0; i < RT_CLU_OPS; i++)
        redisAppendCommand(c, "SET %s %s", keys[i], vals[i]);
    for (int i = 0; i < RT_CLU_OPS; i++)
        redisAppendCommand(c, "GET %s", keys[i]);
    harness_pipe_flush(c);
    for (int i = 0; i < RT_CLU_OPS; i++) {
        redisReply *r = harness_pipe_reply(c, "pipelined SET");

        if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)
            cr_assert_fail("reply %d (SET %s) is %s, wanted +OK%s", i, keys[i], harness_reply_str(r), harness_diag());
        freeReplyObject(r);
    }
    for (int i = 0; i < RT_CLU_OPS; i++) {
        redisReply *r = harness_pipe_reply(c, "pipelined GET");

        if (r->type != REDIS_REPLY_STRING || strcmp(r->str, vals[i]) != 0)
            cr_assert_fail("reply %d (GET %s) is %s, wanted \"%s\"%s", RT_CLU_OPS + i, keys[i], harness_reply_str(r),
                           vals[i], harness_diag());
        freeReplyObject(r);
    }
    stalls = harness_proxy_stat_ll(admin, "stalls") - stalls0;
    for (int i = 0; i < RT_CLU_NODES; i++) {
        redisContext *n = harness_connect(rt_nodes[i]->port);
        long long keys_here = harness_cmd_int(n, "DBSIZE");

        cr_assert(keys_here >= RT_CLU_MIN_PER_NODE, "node %d holds %lld of the %d keys: not spread over all nodes",
                  rt_nodes[i]->port, keys_here, RT_CLU_OPS);
        redisFree(n);
    }
    cr_log_info("1,000 SETs + 1,000 GETs pipelined over 3 cluster nodes: %lld stalls", stalls);
    cr_assert_eq(stalls, 0, "1,000 SETs + 1,000 GETs pipelined over 3 cluster nodes: the client stalled %lld times, "
                 "wanted 0%s", stalls, harness_diag());
    redisFree(c);
    redisFree(admin);
}

/* ---- c: pinning without a connect ---------------------------------------- */

/*
 * RT_PIN_TRIALS times: A sends XREADGROUP ... BLOCK 0 on stream s, B at once
 * sends DEL s.  Returns how often A was blocked when the DEL came (Redis
 * answers A "-UNBLOCKED the stream key no longer exists"); otherwise the DEL
 * came first and A gets -NOGROUP.  Anything else fails.
 */
static int rt_pin_trials(int port, const char *where)
{
    redisContext *b = harness_connect(port);
    int blocked = 0;

    for (int t = 0; t < RT_PIN_TRIALS; t++) {
        /* A fresh client each time: nothing is pinned yet when XREADGROUP arrives. */
        redisContext *a = harness_connect(port);
        redisReply *r;

        harness_cmd_int(b, "DEL s");
        harness_cmd_ok(b, "XGROUP CREATE s g $ MKSTREAM");
        harness_expect_status(a, "PONG", "PING");
        redisAppendCommand(a, "XREADGROUP GROUP g c BLOCK 0 STREAMS s >");
        harness_pipe_flush(a);
        harness_expect_int(b, 1, "DEL s");
        r = harness_pipe_reply(a, "XREADGROUP");
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "UNBLOCKED", 9) == 0)
            blocked++;
        else if (!(r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) == 0))
            cr_assert_fail("%s, trial %d: XREADGROUP replied %s, wanted -UNBLOCKED or -NOGROUP%s", where, t,
                           harness_reply_str(r), harness_diag());
        freeReplyObject(r);
        redisFree(a);
    }
    redisFree(b);
    return blocked;
}

RT_TEST(a_blocking_command_reaches_redis_as_soon_as_directly)
{
    int direct, proxied;

    harness_skip_if_direct();
    rt_single = harness_redis_start(RT_PORT(RT_SINGLE));
    {
        char primary[32];

        snprintf(primary, sizeof(primary), "127.0.0.1:%d", rt_single->port);
        rt_proxy = harness_proxy_start(RT_PORT(RT_SINGLE_PROXY), "--primary", primary, "--loglevel", "warning");
        harness_diag_set(rt_proxy, NULL);
    }
    direct = rt_pin_trials(rt_single->port, "directly");
    proxied = rt_pin_trials(rt_proxy->port, "through the proxy");
    cr_log_info("XREADGROUP blocked before a concurrent DEL: %d/%d directly, %d/%d through the proxy", direct,
                RT_PIN_TRIALS, proxied, RT_PIN_TRIALS);
    cr_assert(proxied >= direct - RT_PIN_SLACK,
              "XREADGROUP was blocked before a concurrent DEL in %d/%d trials through the proxy but %d/%d directly "
              "(allowed: %d less): the proxy delays blocking commands",
              proxied, RT_PIN_TRIALS, direct, RT_PIN_TRIALS, RT_PIN_SLACK);
}

/* ---- d: unsubscribing when not subscribed --------------------------------- */

/*
 * Send bytes to Redis and to the proxy (fresh connections kept across calls
 * of one test) and require the same nreplies replies, byte for byte.
 */
static void rt_same_raw(harness_raw *rd, harness_raw *px, const char *bytes, int nreplies, const char *what)
{
    cr_assert_eq(harness_raw_sends(rd, bytes), 0, "%s: send to redis: %s", what, harness_error());
    cr_assert_eq(harness_raw_sends(px, bytes), 0, "%s: send to the proxy: %s", what, harness_error());
    for (int i = 0; i < nreplies; i++) {
        char *want = NULL, *got = NULL;
        long wlen = harness_raw_reply(rd, RT_RAW_MS, &want);
        long glen;

        cr_assert(wlen > 0, "%s: reply %d of redis: %s", what, i + 1, strerror((int)-wlen));
        glen = harness_raw_reply(px, RT_RAW_MS, &got);
        cr_assert(glen > 0, "%s: reply %d of %d through the proxy: %s (redis answered %s)%s", what, i + 1, nreplies,
                  glen == -ECONNRESET ? "the proxy closed the connection" : strerror((int)-glen), want,
                  harness_diag());
        cr_assert(glen == wlen && memcmp(got, want, (size_t)wlen) == 0,
                  "%s: reply %d: the proxy answered %s, redis %s", what, i + 1, got, want);
        free(want);
        free(got);
    }
}

/* cmd with three channels, then with none, then PING, on one connection. */
static void rt_unsubscribe_like_redis(const char *cmd, const char *three_first)
{
    char primary[32], *bytes;
    harness_raw *rd, *px;

    rt_single = harness_redis_start(RT_PORT(RT_SINGLE));
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", rt_single->port);
    rt_proxy = harness_proxy_start(RT_PORT(RT_SINGLE_PROXY), "--primary", primary, "--loglevel", "warning");
    harness_diag_set(rt_proxy, NULL);
    rd = harness_raw_open(rt_single->port);
    px = harness_raw_open(rt_proxy->port);
    cr_assert(rd != NULL && px != NULL, "raw connect: %s", harness_error());

    bytes = harness_resp_cmd(cmd, "foo", "bar", "quux");
    rt_same_raw(rd, px, bytes, 3, "<cmd> foo bar quux");
    free(bytes);
    bytes = harness_resp_cmd(cmd);
    rt_same_raw(rd, px, bytes, 1, "<cmd> without channels");
    free(bytes);
    rt_same_raw(rd, px, "*1\r\n$4\r\nPING\r\n", 1, "PING afterwards");
    harness_raw_close(rd, false);
    harness_raw_close(px, false);

    /* And what Redis answers is what this test means (one reply per channel, count 0; nil channel). */
    rd = harness_raw_open(rt_single->port);
    cr_assert_not_null(rd, "raw connect: %s", harness_error());
    bytes = harness_resp_cmd(cmd, "foo");
    cr_assert_eq(harness_raw_sends(rd, bytes), 0, "send: %s", harness_error());
    free(bytes);
    {
        char *got = NULL;
        long len = harness_raw_reply(rd, RT_RAW_MS, &got);

        cr_assert(len > 0 && strcmp(got, three_first) == 0, "redis answered %s to %s foo, this test expects %s",
                  len > 0 ? got : "nothing", cmd, three_first);
        free(got);
    }
    harness_raw_close(rd, false);
}

RT_TEST(unsubscribe_when_not_subscribed_answers_like_redis)
{
    rt_unsubscribe_like_redis("UNSUBSCRIBE", "*3\r\n$11\r\nunsubscribe\r\n$3\r\nfoo\r\n:0\r\n");
}

RT_TEST(punsubscribe_when_not_subscribed_answers_like_redis)
{
    rt_unsubscribe_like_redis("PUNSUBSCRIBE", "*3\r\n$12\r\npunsubscribe\r\n$3\r\nfoo\r\n:0\r\n");
}

RT_TEST(sunsubscribe_when_not_subscribed_answers_like_redis)
{
    rt_unsubscribe_like_redis("SUNSUBSCRIBE", "*3\r\n$12\r\nsunsubscribe\r\n$3\r\nfoo\r\n:0\r\n");
}
