/*
 * test_replicas.c — reads on replicas, writes on the primary, health checks.
 *
 *   test ──▶ redsnano (PORT 3) ──┬─ writes ─▶ redis primary   (PORT 0)
 *                                └─ reads ──▶ redis replica 1 (PORT 1, --replicaof PORT 0)
 *                                             redis replica 2 (PORT 2, --replicaof PORT 0)
 *   test ──▶ each redis directly: INFO commandstats / replication (who served what)
 *
 * Each test starts its own three servers and proxy (--health-interval 200,
 * --health-timeout 150, --backend-timeout 500), waits until both replicas
 * are in sync, then checks one behaviour: where reads and writes go,
 * read-your-writes, a replica killed under load, a replica restarted, a
 * replica frozen (SIGSTOP) and thawed, the primary killed.
 *
 * Ports 7100-7109 (this file; the Sentinel tests use 7150-7169).
 */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REP_PORT_BASE 7100                    /* this file's port range start */
#define REP_PORT(n) harness_port(REP_PORT_BASE, (n))
#define REP_HEALTH_INTERVAL_MS 200            /* --health-interval */
#define REP_HEALTH_TIMEOUT_MS 150             /* --health-timeout */
#define REP_BACKEND_TIMEOUT_MS 500            /* --backend-timeout */
#define REP_SYNC_MS 10000                     /* bound for replicas to be in sync */
#define REP_REJOIN_MS 10000                   /* bound for a restarted replica to serve again */
#define REP_LEAVE_SLACK_MS 60                 /* polling / scheduling slack on "2 intervals" */
#define REP_READS 300                         /* GETs of the spreading test */
#define REP_RYW_ROUNDS 200                    /* SET-then-GET rounds */
#define REP_LOAD_CLIENTS 5                    /* connections of the load test */
#define REP_LOAD_GETS 2000                    /* GETs per connection */
#define REP_KEYS 100                          /* keys the reads use */

static harness_proc *rep_redis[3];  /* primary, replica 1, replica 2 */
static harness_proc *rep_proxy;     /* the proxy */
static char rep_addr[3][32];        /* "127.0.0.1:<port>" of each redis */

/* ---- helpers ------------------------------------------------------------ */

/* Calls of one command on a redis (INFO commandstats), 0 if never called. */
static long long rep_calls(harness_proc *r, const char *cmd)
{
    redisContext *c = harness_connect(r->port);
    long long calls = harness_cmdstat_calls(c, cmd);

    redisFree(c);
    return calls;
}

static char *rep_backends(redisContext *px)
{
    redisReply *r = harness_cmd(px, "REDSNANO BACKENDS");
    char *s = harness_reply_str(r);
    if (r)
        freeReplyObject(r);
    return s;
}

/* Poll rep_health until it equals want; the elapsed ms, or -1 after bound_ms. */
static long long rep_wait_health(redisContext *px, const char *addr, int want, int bound_ms)
{
    long long t0 = harness_now_ms();

    return harness_wait_until(harness_proxy_backend_health(px, addr) == want, bound_ms) ? harness_now_ms() - t0 : -1;
}

/* Start primary + 2 replicas, wait for sync, start the proxy with extra args. */
static void rep_start(const char *const *extra)
{
    const char *args[HARNESS_MAX_ARGS];
    char port0[16];
    size_t n = 0;

    harness_skip_if_direct();
    snprintf(port0, sizeof(port0), "%d", REP_PORT(0));
    /* No 5 s wait before the first full sync. */
    rep_redis[0] = harness_redis_start(REP_PORT(0), "--repl-diskless-sync-delay", "0");
    for (int i = 1; i <= 2; i++)
        rep_redis[i] = harness_redis_start(REP_PORT(i), "--replicaof", "127.0.0.1", port0);
    for (int i = 0; i < 3; i++)
        snprintf(rep_addr[i], sizeof(rep_addr[i]), "127.0.0.1:%d", REP_PORT(i));
    cr_assert(harness_wait_until(harness_replica_link_up(rep_redis[1]->port) && harness_replica_link_up(rep_redis[2]->port), REP_SYNC_MS),
              "replicas not in sync within %d ms", REP_SYNC_MS);

    static char hi[16], ht[16], bt[16];
    snprintf(hi, sizeof(hi), "%d", REP_HEALTH_INTERVAL_MS);
    snprintf(ht, sizeof(ht), "%d", REP_HEALTH_TIMEOUT_MS);
    snprintf(bt, sizeof(bt), "%d", REP_BACKEND_TIMEOUT_MS);
    const char *base[] = { "--primary", rep_addr[0], "--replica", rep_addr[1], "--replica", rep_addr[2],
                           "--health-interval", hi, "--health-timeout", ht, "--backend-timeout", bt,
                           "--loglevel", "verbose", NULL };
    for (size_t i = 0; base[i]; i++)
        args[n++] = base[i];
    for (size_t i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    rep_proxy = harness_try_proxy_startv(REP_PORT(3), args, true);
    cr_assert_not_null(rep_proxy, "redsnano start failed: %s", harness_error());
    harness_diag_set(rep_proxy, NULL);

    /* Both replicas in rotation (a first check may have caught a sync). */
    redisContext *px = harness_connect(rep_proxy->port);
    for (int i = 1; i <= 2; i++)
        cr_assert(rep_wait_health(px, rep_addr[i], 1, REP_SYNC_MS) >= 0,
                  "replica %s never reported up: %s", rep_addr[i], rep_backends(px));
    redisFree(px);
}

static void rep_start_default(void)
{
    const char *extra[] = { "--read-your-writes", "0", NULL };
    rep_start(extra);
}

/* Write REP_KEYS keys through the proxy and wait until both replicas have them. */
static void rep_load_keys(redisContext *px)
{
    for (int i = 0; i < REP_KEYS; i++) {
        redisReply *r = harness_cmd(px, "SET rk:%d v%d", i, i);
        cr_assert(r && r->type == REDIS_REPLY_STATUS, "SET rk:%d failed", i);
        freeReplyObject(r);
    }
    for (int i = 1; i <= 2; i++) {
        redisContext *c = harness_connect(rep_redis[i]->port);

        cr_assert(harness_wait_until(harness_cmd_int(c, "EXISTS rk:%d", REP_KEYS - 1) == 1, REP_SYNC_MS),
                  "replica %s did not get the keys", rep_addr[i]);
        redisFree(c);
    }
}

static void rep_fini(void)
{
    harness_cleanup();
}

TestSuite(replicas, .fini = rep_fini, .timeout = 120);

/* ---- tests -------------------------------------------------------------- */

Test(replicas, reads_spread_over_replicas_not_primary)
{
    rep_start_default();
    redisContext *px = harness_connect(rep_proxy->port);
    rep_load_keys(px);
    long long before[3];
    for (int i = 0; i < 3; i++)
        before[i] = rep_calls(rep_redis[i], "get");

    for (int i = 0; i < REP_READS; i++) {
        redisReply *r = harness_cmd(px, "GET rk:%d", i % REP_KEYS);
        cr_assert(r && r->type == REDIS_REPLY_STRING, "GET %d: %s", i, r ? harness_reply_str(r) : px->errstr);
        freeReplyObject(r);
    }
    long long d[3];
    for (int i = 0; i < 3; i++)
        d[i] = rep_calls(rep_redis[i], "get") - before[i];
    cr_assert_eq(d[0], 0, "the primary served %lld GETs", d[0]);
    cr_assert(d[1] >= REP_READS / 4 && d[2] >= REP_READS / 4,
              "GETs not spread: replica1 %lld, replica2 %lld of %d", d[1], d[2], REP_READS);
    cr_assert_eq(d[1] + d[2], REP_READS, "replicas served %lld of %d GETs", d[1] + d[2], REP_READS);
    redisFree(px);
    harness_proxy_check_exit(rep_proxy);
}

Test(replicas, writes_go_to_primary_only)
{
    rep_start_default();
    redisContext *px = harness_connect(rep_proxy->port);
    long long before = rep_calls(rep_redis[0], "set");

    /* A replica would refuse a SET (READONLY): every OK was the primary's. */
    for (int i = 0; i < REP_READS; i++) {
        redisReply *r = harness_cmd(px, "SET wk:%d x", i);
        cr_assert(r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0, "SET %d: %s", i,
                  r ? harness_reply_str(r) : px->errstr);
        freeReplyObject(r);
    }
    cr_assert_eq(rep_calls(rep_redis[0], "set") - before, REP_READS);
    redisFree(px);
    harness_proxy_check_exit(rep_proxy);
}

Test(replicas, read_your_writes_sees_own_write)
{
    rep_start(NULL);                  /* read-your-writes at its default */
    redisContext *px = harness_connect(rep_proxy->port);

    for (int i = 0; i < REP_RYW_ROUNDS; i++) {
        redisReply *r = harness_cmd(px, "SET ryw:%d val%d", i, i);
        cr_assert(r && r->type == REDIS_REPLY_STATUS, "SET %d: %s", i, harness_reply_str(r));
        freeReplyObject(r);
        r = harness_cmd(px, "GET ryw:%d", i);
        char want[32];
        snprintf(want, sizeof(want), "val%d", i);
        cr_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0,
                  "round %d: GET right after SET returned %s", i, harness_reply_str(r));
        freeReplyObject(r);
    }
    redisFree(px);
    harness_proxy_check_exit(rep_proxy);
}

/* One load client: REP_LOAD_GETS GETs on its own connection. */
struct rep_load {
    pthread_t thread;                 /* the client */
    int port;                         /* proxy port */
    atomic_int *done;                 /* GETs answered by all clients */
    int errors;                       /* error replies and I/O failures */
    char first_error[256];            /* the first of them */
};

static void *rep_load_run(void *arg)
{
    struct rep_load *l = arg;
    redisContext *c = harness_try_connect(l->port, 2000);

    if (c == NULL) {
        l->errors = REP_LOAD_GETS;
        snprintf(l->first_error, sizeof(l->first_error), "connect: %s", harness_error());
        return NULL;
    }
    for (int i = 0; i < REP_LOAD_GETS; i++) {
        redisReply *r = redisCommand(c, "GET rk:%d", i % REP_KEYS);
        if (r == NULL || r->type != REDIS_REPLY_STRING) {
            if (l->errors++ == 0)
                snprintf(l->first_error, sizeof(l->first_error), "GET %d: %s", i,
                         r ? (r->type == REDIS_REPLY_ERROR ? r->str : "not a string") : c->errstr);
            if (r == NULL)
                break;
        }
        if (r)
            freeReplyObject(r);
        atomic_fetch_add(l->done, 1);
    }
    redisFree(c);
    return NULL;
}

Test(replicas, replica_killed_under_load_no_client_errors)
{
    rep_start_default();
    redisContext *px = harness_connect(rep_proxy->port);
    rep_load_keys(px);

    atomic_int done = 0;
    struct rep_load load[REP_LOAD_CLIENTS];
    memset(load, 0, sizeof(load));
    for (int i = 0; i < REP_LOAD_CLIENTS; i++) {
        load[i].port = rep_proxy->port;
        load[i].done = &done;
        cr_assert_eq(pthread_create(&load[i].thread, NULL, rep_load_run, &load[i]), 0);
    }
    /* Kill a replica once a fifth of the load is through. */
    long long deadline = harness_now_ms() + 30000;
    while (atomic_load(&done) < REP_LOAD_CLIENTS * REP_LOAD_GETS / 5 && harness_now_ms() < deadline)
        harness_sleep_ms(1);
    int at = atomic_load(&done);
    harness_redis_kill9(rep_redis[1]);
    int errors = 0;
    const char *first = "";
    for (int i = 0; i < REP_LOAD_CLIENTS; i++) {
        pthread_join(load[i].thread, NULL);
        if (load[i].errors && !errors)
            first = load[i].first_error;
        errors += load[i].errors;
    }
    cr_assert_eq(errors, 0, "%d client errors after killing a replica at %d/%d GETs; first: %s; log:\n%s",
                 errors, at, REP_LOAD_CLIENTS * REP_LOAD_GETS, first, harness_log_tail(rep_proxy, 2000));
    cr_assert_eq(atomic_load(&done), REP_LOAD_CLIENTS * REP_LOAD_GETS);
    cr_log_info("replica killed after %d of %d GETs: no client error", at, REP_LOAD_CLIENTS * REP_LOAD_GETS);
    redisFree(px);
    harness_proxy_check_exit(rep_proxy);
}

Test(replicas, killed_replica_rejoins_after_restart)
{
    rep_start_default();
    redisContext *px = harness_connect(rep_proxy->port);
    rep_load_keys(px);

    harness_redis_kill9(rep_redis[1]);
    cr_assert(rep_wait_health(px, rep_addr[1], 0, 2 * REP_HEALTH_INTERVAL_MS + 1000) >= 0,
              "killed replica still up: %s", rep_backends(px));
    harness_redis_restart(rep_redis[1]);
    long long t = rep_wait_health(px, rep_addr[1], 1, REP_REJOIN_MS);
    cr_assert(t >= 0, "restarted replica not back within %d ms: %s", REP_REJOIN_MS, rep_backends(px));
    cr_log_info("restarted replica back in rotation after %lld ms", t);

    long long before = rep_calls(rep_redis[1], "get");
    for (int i = 0; i < REP_READS; i++) {
        redisReply *r = harness_cmd(px, "GET rk:%d", i % REP_KEYS);
        cr_assert(r && r->type == REDIS_REPLY_STRING, "GET %d after rejoin: %s", i, harness_reply_str(r));
        freeReplyObject(r);
    }
    long long d = rep_calls(rep_redis[1], "get") - before;
    cr_assert(d >= REP_READS / 4, "rejoined replica served %lld of %d GETs", d, REP_READS);
    redisFree(px);
    harness_proxy_check_exit(rep_proxy);
}

Test(replicas, frozen_replica_leaves_and_returns)
{
    rep_start_default();
    redisContext *px = harness_connect(rep_proxy->port);
    rep_load_keys(px);

    cr_assert_eq(harness_stop_signal(rep_redis[2], SIGSTOP), 0);
    long long t = rep_wait_health(px, rep_addr[2], 0, 5000);
    harness_stop_signal(rep_redis[2], SIGCONT);
    cr_assert(t >= 0, "SIGSTOPped replica never left the rotation: %s", rep_backends(px));
    cr_assert(t <= 2 * REP_HEALTH_INTERVAL_MS + REP_LEAVE_SLACK_MS,
              "SIGSTOPped replica left after %lld ms (> 2 health intervals of %d ms)", t,
              REP_HEALTH_INTERVAL_MS);
    cr_log_info("SIGSTOPped replica left the rotation after %lld ms", t);

    cr_assert(rep_wait_health(px, rep_addr[2], 1, 5000) >= 0, "thawed replica did not return: %s",
              rep_backends(px));
    long long before = rep_calls(rep_redis[2], "get");
    for (int i = 0; i < REP_READS; i++) {
        redisReply *r = harness_cmd(px, "GET rk:%d", i % REP_KEYS);
        cr_assert(r && r->type == REDIS_REPLY_STRING, "GET %d after thaw: %s", i, harness_reply_str(r));
        freeReplyObject(r);
    }
    cr_assert(rep_calls(rep_redis[2], "get") - before >= REP_READS / 4, "thawed replica serves no GETs");
    redisFree(px);
    harness_proxy_check_exit(rep_proxy);
}

Test(replicas, primary_killed_writes_fail_fast_reads_work)
{
    rep_start_default();
    redisContext *px = harness_connect(rep_proxy->port);
    rep_load_keys(px);

    harness_redis_kill9(rep_redis[0]);
    /* Writes: an error naming the primary, within backend-timeout, every time. */
    for (int i = 0; i < 10; i++) {
        long long t0 = harness_now_ms();
        redisReply *r = harness_cmd(px, "SET after:%d x", i);
        long long t = harness_now_ms() - t0;
        cr_assert(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "primary"),
                  "SET %d with the primary dead: %s", i, r ? harness_reply_str(r) : px->errstr);
        cr_assert(t <= REP_BACKEND_TIMEOUT_MS, "SET %d took %lld ms (> backend-timeout %d)", i, t,
                  REP_BACKEND_TIMEOUT_MS);
        freeReplyObject(r);
        harness_sleep_ms(100);
    }
    /* Reads: still served, with the data written before. */
    for (int i = 0; i < REP_READS; i++) {
        redisReply *r = harness_cmd(px, "GET rk:%d", i % REP_KEYS);
        char want[16];
        snprintf(want, sizeof(want), "v%d", i % REP_KEYS);
        cr_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0,
                  "GET %d with the primary dead: %s; %s", i, harness_reply_str(r), rep_backends(px));
        freeReplyObject(r);
    }
    redisFree(px);
    harness_proxy_check_exit(rep_proxy);
}
