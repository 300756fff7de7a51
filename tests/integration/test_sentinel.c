/*
 * test_sentinel.c — the proxy follows Redis Sentinel.
 *
 *   test ──▶ redsnano (PORT 8) ──▶ whoever the Sentinels name as primary
 *                 │
 *                 └─ polls / subscribes ──▶ sentinel ×3 (PORT 2, 3, 4)
 *                                               │ monitor "m"
 *   redis primary (PORT 0) ◀───────────────────┤
 *   redis replica (PORT 1, --replicaof PORT 0) ◀┘
 *
 * Sentinels are redis-server --sentinel with a config file each in the
 * harness's temporary directory (harness_sentinel_start;
 * down-after-milliseconds 1000, failover-timeout 5000).
 *
 * Ports 7150-7169 (this file; the replica tests use 7100-7109).
 */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEN_PORT_BASE 7150                    /* this file's port range start */
#define SEN_PORT(n) harness_port(SEN_PORT_BASE, (n))
#define SEN_COUNT 3                           /* Sentinels */
#define SEN_MASTER "m"                        /* the monitored master's name */
#define SEN_READY_MS 20000                    /* Sentinels know the replica and each other */
#define SEN_SWITCH_MS 5000                    /* failover → writes succeed through the proxy */
#define SEN_STOP_MS 5000                      /* SIGTERM → SIGKILL */
#define SEN_HEALTH_INTERVAL "200"             /* --health-interval of the proxy */

static harness_proc *sen_primary;             /* redis primary (PORT 0) */
static harness_proc *sen_replica;             /* redis replica (PORT 1) */
static harness_proc *sen_proxy;               /* the proxy (PORT 8) */
static harness_proc *sen_sentinels[SEN_COUNT]; /* Sentinel processes, NULL = not running */
static char sen_addr[SEN_COUNT][32];          /* "127.0.0.1:<port>" of each Sentinel */
static char sen_primary_addr[32];             /* "127.0.0.1:<PORT 0>" */
static char sen_replica_addr[32];             /* "127.0.0.1:<PORT 1>" */

/* ---- Sentinel processes -------------------------------------------------- */

/* Start Sentinel i (monitoring the primary on PORT 0); waits for PONG. */
static void sen_start_sentinel(int i)
{
    char conf[512];
    int port = SEN_PORT(2 + i);

    snprintf(conf, sizeof(conf),
             "sentinel monitor %s 127.0.0.1 %d 2\n"
             "sentinel down-after-milliseconds %s 1000\n"
             "sentinel failover-timeout %s 5000",
             SEN_MASTER, SEN_PORT(0), SEN_MASTER, SEN_MASTER);
    snprintf(sen_addr[i], sizeof(sen_addr[i]), "127.0.0.1:%d", port);
    sen_sentinels[i] = harness_sentinel_start(port, conf);
}

static void sen_stop_sentinels(void)
{
    for (int i = 0; i < SEN_COUNT; i++) {
        if (sen_sentinels[i] != NULL)
            harness_proc_stop(sen_sentinels[i]);
        sen_sentinels[i] = NULL;
    }
}

static void sen_fini(void)
{
    sen_stop_sentinels();
    harness_cleanup();
}

/* ---- helpers -------------------------------------------------------------- */

/* Value of key in a flat key/value array reply (Sentinel style), or NULL. */
static const char *sen_kv(const redisReply *r, const char *key)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, key) == 0)
            return r->element[i + 1]->type == REDIS_REPLY_STRING ? r->element[i + 1]->str : NULL;
    return NULL;
}

/* Does Sentinel i know a healthy replica and the other Sentinels? */
static bool sen_sentinel_ready(int i)
{
    redisContext *c = harness_try_connect(SEN_PORT(2 + i), 500);
    bool ok = false;

    if (c == NULL)
        return false;
    redisReply *r = harness_cmd(c, "SENTINEL replicas %s", SEN_MASTER);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const char *flags = sen_kv(r->element[0], "flags");
        const char *link = sen_kv(r->element[0], "master-link-status");
        ok = flags && strcmp(flags, "slave") == 0 && link && strcmp(link, "ok") == 0;
    }
    if (r)
        freeReplyObject(r);
    r = harness_cmd(c, "SENTINEL sentinels %s", SEN_MASTER);
    ok = ok && r && r->type == REDIS_REPLY_ARRAY && r->elements == SEN_COUNT - 1;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* INFO replication field of redis r equal to want? (false when unreachable) */
static bool sen_replication_is(harness_proc *r, const char *field, const char *want)
{
    redisContext *c = harness_try_connect(r->port, 500);
    char v[64];
    bool is;

    if (c == NULL)
        return false;
    is = harness_info_field(c, "replication", field, v, sizeof(v)) == 0 && strcmp(v, want) == 0;
    redisFree(c);
    return is;
}

/* master_link_status:up on this replica? */
static bool sen_link_up(harness_proc *r)
{
    return sen_replication_is(r, "master_link_status", "up");
}

/* role:master on this redis? */
static bool sen_is_master(harness_proc *r)
{
    return sen_replication_is(r, "role", "master");
}

/* Primary, replica, three Sentinels that agree on them. */
static void sen_start_servers(void)
{
    char port0[16];

    harness_skip_if_direct();
    snprintf(port0, sizeof(port0), "%d", SEN_PORT(0));
    sen_primary = harness_redis_start(SEN_PORT(0), "--repl-diskless-sync-delay", "0");
    sen_replica = harness_redis_start(SEN_PORT(1), "--replicaof", "127.0.0.1", port0,
                                      "--repl-diskless-sync-delay", "0");
    snprintf(sen_primary_addr, sizeof(sen_primary_addr), "127.0.0.1:%d", SEN_PORT(0));
    snprintf(sen_replica_addr, sizeof(sen_replica_addr), "127.0.0.1:%d", SEN_PORT(1));
    long long deadline = harness_now_ms() + SEN_READY_MS;
    while (!sen_link_up(sen_replica)) {
        cr_assert(harness_now_ms() < deadline, "replica not in sync");
        harness_sleep_ms(20);
    }
    for (int i = 0; i < SEN_COUNT; i++)
        sen_start_sentinel(i);
    for (int i = 0; i < SEN_COUNT; i++)
        while (!sen_sentinel_ready(i)) {
            cr_assert(harness_now_ms() < deadline, "Sentinel %s never saw the replica and its peers", sen_addr[i]);
            harness_sleep_ms(100);
        }
}

/* SET through the proxy until OK or bound_ms; the elapsed ms or -1 (last error in err). */
static long long sen_set_until_ok(redisContext **px, const char *key, const char *val, int bound_ms,
                                  char *err, size_t cap)
{
    long long t0 = harness_now_ms();

    for (;;) {
        if (*px == NULL)
            *px = harness_try_connect(sen_proxy->port, 500);
        if (*px) {
            redisReply *r = harness_cmd(*px, "SET %s %s", key, val);
            if (r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) {
                freeReplyObject(r);
                return harness_now_ms() - t0;
            }
            char *s = r ? harness_reply_str(r) : NULL;
            snprintf(err, cap, "%s", s ? s : (*px)->errstr);
            free(s);
            if (r)
                freeReplyObject(r);
            else {
                redisFree(*px);
                *px = NULL;
            }
        }
        if (harness_now_ms() - t0 > bound_ms)
            return -1;
        harness_sleep_ms(20);
    }
}

static char *sen_backends(redisContext *px)
{
    redisReply *r = px ? harness_cmd(px, "REDSNANO BACKENDS") : NULL;
    char *s = harness_reply_str(r);
    if (r)
        freeReplyObject(r);
    return s;
}

TestSuite(sentinel, .fini = sen_fini, .timeout = 120);

/* ---- tests -------------------------------------------------------------- */

Test(sentinel, failover_moves_writes_to_new_primary)
{
    sen_start_servers();
    sen_proxy = harness_proxy_start(SEN_PORT(8), "--primary", sen_primary_addr,
                                    "--sentinel", sen_addr[0], "--sentinel", sen_addr[1],
                                    "--sentinel", sen_addr[2], "--sentinel-master", SEN_MASTER,
                                    "--health-interval", SEN_HEALTH_INTERVAL, "--loglevel", "verbose");
    redisContext *px = harness_connect(sen_proxy->port);
    redisReply *r = harness_cmd(px, "SET before failover");
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SET before the failover: %s", harness_reply_str(r));
    freeReplyObject(r);
    /* The replica has it before the failover starts (no lost write). */
    redisContext *rc = harness_connect(sen_replica->port);
    long long deadline = harness_now_ms() + SEN_SWITCH_MS;
    for (;;) {
        r = harness_cmd(rc, "GET before");
        bool there = r && r->type == REDIS_REPLY_STRING;
        if (r)
            freeReplyObject(r);
        if (there)
            break;
        cr_assert(harness_now_ms() < deadline, "the replica never got the first write");
        harness_sleep_ms(10);
    }
    redisFree(rc);

    /* Failover through the second Sentinel: the proxy's first one learns
     * of it later (its view is older for a while). */
    redisContext *sc = harness_connect(SEN_PORT(3));
    r = harness_cmd(sc, "SENTINEL FAILOVER %s", SEN_MASTER);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SENTINEL FAILOVER: %s", harness_reply_str(r));
    freeReplyObject(r);
    redisFree(sc);

    /* Poll: a write through the proxy that lands on the promoted replica.
     * (Until the switch, writes still reach the old primary.) */
    char err[512] = "";
    long long t0 = harness_now_ms();
    bool landed = false;
    for (int n = 0; !landed && harness_now_ms() - t0 <= SEN_SWITCH_MS; n++) {
        char key[32];
        snprintf(key, sizeof(key), "after:%d", n);
        if (sen_set_until_ok(&px, key, "failover", SEN_SWITCH_MS, err, sizeof(err)) < 0)
            break;
        /* A new connection each time: Sentinel kills clients when it
         * reconfigures a server. */
        rc = harness_try_connect(sen_replica->port, 500);
        r = rc ? harness_cmd(rc, "GET %s", key) : NULL;
        landed = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "failover") == 0 && sen_is_master(sen_replica);
        if (r)
            freeReplyObject(r);
        if (rc)
            redisFree(rc);
        if (!landed)
            harness_sleep_ms(20);
    }
    cr_assert(landed, "writes did not reach the new primary within %d ms of the failover (last error: %s); "
              "%s; log:\n%s", SEN_SWITCH_MS, err[0] ? err : "none", sen_backends(px),
              harness_log_tail(sen_proxy, 3000));
    cr_log_info("writes reached the new primary %lld ms after SENTINEL FAILOVER", harness_now_ms() - t0);

    /* Data written before is readable through the proxy. */
    r = harness_cmd(px, "GET before");
    cr_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "failover") == 0,
              "GET before: %s", harness_reply_str(r));
    freeReplyObject(r);

    char *b = sen_backends(px);
    char want[64];
    snprintf(want, sizeof(want), "primary:addr=%s,", sen_replica_addr);
    cr_assert(strstr(b, want), "REDSNANO BACKENDS does not show the new primary: %s", b);
    free(b);
    redisFree(px);
    harness_proxy_check_exit(sen_proxy);
}

Test(sentinel, one_working_sentinel_names_the_primary)
{
    sen_start_servers();
    char dead[32];
    snprintf(dead, sizeof(dead), "127.0.0.1:%d", SEN_PORT(5));
    /* Configured primary is wrong (the replica) and the first Sentinel is
     * down: the proxy must still take the primary from a live Sentinel. */
    sen_proxy = harness_proxy_start(SEN_PORT(8), "--primary", sen_replica_addr,
                                    "--sentinel", dead, "--sentinel", sen_addr[1],
                                    "--sentinel", sen_addr[2], "--sentinel-master", SEN_MASTER,
                                    "--health-interval", SEN_HEALTH_INTERVAL, "--loglevel", "verbose");
    redisContext *px = NULL;
    char err[512] = "";
    long long t = sen_set_until_ok(&px, "k", "v", SEN_SWITCH_MS, err, sizeof(err));
    cr_assert(t >= 0, "writes never succeeded (last: %s); %s", err, sen_backends(px));

    redisContext *pc = harness_connect(sen_primary->port);
    redisReply *r = harness_cmd(pc, "GET k");
    cr_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "v") == 0,
              "the primary named by Sentinel does not have the write: %s", harness_reply_str(r));
    freeReplyObject(r);
    redisFree(pc);
    redisFree(px);
    harness_proxy_check_exit(sen_proxy);
}

/* L1 counter from REDSNANO L1 through the proxy (-1 if absent). */
static long long sen_l1_stat(redisContext *px, const char *name)
{
    char v[32];
    if (harness_proxy_stat(px, name, v, sizeof(v)) != 0)
        return -1;
    return atoll(v);
}

Test(sentinel, failover_revalidates_the_l1_instead_of_flushing_it)
{
    sen_start_servers();
    sen_proxy = harness_proxy_start(SEN_PORT(8), "--primary", sen_primary_addr,
                                    "--sentinel", sen_addr[0], "--sentinel", sen_addr[1],
                                    "--sentinel", sen_addr[2], "--sentinel-master", SEN_MASTER,
                                    "--health-interval", SEN_HEALTH_INTERVAL, "--l1-maxmemory", "64mb",
                                    "--l1-admission", "no", /* the first GET fills */
                                    "--loglevel", "verbose");
    redisContext *px = harness_connect(sen_proxy->port);
    long long deadline = harness_now_ms() + SEN_SWITCH_MS;
    while (sen_l1_stat(px, "l1_ready") != 1) {
        cr_assert(harness_now_ms() < deadline, "the L1 never became ready");
        harness_sleep_ms(20);
    }
    for (int i = 0; i < 5; i++) {
        redisReply *r = harness_cmd(px, "SET k%d v%d", i, i);
        cr_assert(r && r->type == REDIS_REPLY_STATUS);
        freeReplyObject(r);
        for (int j = 0; j < 2; j++) {            /* fill, then hit */
            r = harness_cmd(px, "GET k%d", i);
            cr_assert(r && r->type == REDIS_REPLY_STRING);
            freeReplyObject(r);
        }
    }
    cr_assert(sen_l1_stat(px, "l1_hits") >= 5, "the L1 served no hits before the failover");
    /* The replica has caught up (its offset reached the primary's), then fail over. */
    {
        redisContext *pc = harness_connect(sen_primary->port), *rc = harness_connect(sen_replica->port);
        long long want = harness_info_ll(pc, "replication", "master_repl_offset");

        cr_assert(harness_wait_until(harness_info_ll(rc, "replication", "slave_repl_offset") >= want, SEN_STOP_MS),
                  "the replica did not reach the primary's replication offset %lld within %d ms", want, SEN_STOP_MS);
        redisFree(pc);
        redisFree(rc);
    }
    redisContext *sc = harness_connect(SEN_PORT(3));
    redisReply *r = harness_cmd(sc, "SENTINEL FAILOVER %s", SEN_MASTER);
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SENTINEL FAILOVER: %s", harness_reply_str(r));
    freeReplyObject(r);
    redisFree(sc);
    /* Wait for the proxy to follow (REDSNANO BACKENDS names the new primary). */
    char want[64];
    snprintf(want, sizeof(want), "primary:addr=%s,", sen_replica_addr);
    deadline = harness_now_ms() + SEN_SWITCH_MS;
    for (;;) {
        char *b = sen_backends(px);
        bool switched = b && strstr(b, want);
        free(b);
        if (switched)
            break;
        cr_assert(harness_now_ms() < deadline, "the proxy did not follow the failover");
        harness_sleep_ms(50);
    }
    /* A write on the new primary, made directly: the L1 must not keep k3. */
    redisContext *np = harness_connect(sen_replica->port);
    r = harness_cmd(np, "SET k3 changed");
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "SET on the new primary: %s", harness_reply_str(r));
    freeReplyObject(r);
    redisFree(np);
    deadline = harness_now_ms() + 2000;
    for (;;) {
        r = harness_cmd(px, "GET k3");
        bool fresh = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "changed") == 0;
        if (r)
            freeReplyObject(r);
        if (fresh)
            break;
        cr_assert(harness_now_ms() < deadline, "GET k3 through the proxy still not the new primary's value");
        harness_sleep_ms(20);
    }
    for (int i = 0; i < 5; i++) {
        if (i == 3)
            continue;
        r = harness_cmd(px, "GET k%d", i);
        char want_v[8];
        snprintf(want_v, sizeof(want_v), "v%d", i);
        cr_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, want_v) == 0, "GET k%d: %s", i,
                  harness_reply_str(r));
        freeReplyObject(r);
    }
    cr_assert(sen_l1_stat(px, "l1_tracking_resets") >= 1, "the primary change did not reset tracking");
    deadline = harness_now_ms() + 3000;
    while (sen_l1_stat(px, "l1_reval_unchanged") < 1) {
        cr_assert(harness_now_ms() < deadline, "no entry was revalidated as unchanged after the failover");
        harness_sleep_ms(50);
    }
    redisFree(px);
    harness_proxy_check_exit(sen_proxy);
}
