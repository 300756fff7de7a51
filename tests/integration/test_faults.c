/*
 * tests/integration/test_faults.c — hostile clients and failing backends,
 * each as a check with its figure (issue 9): a client that never reads its
 * replies, a subscriber that never reads, MONITOR beside other clients,
 * half-sent huge requests under maxmemory-clients, the primary killed and
 * restarted or stopped, a client gone mid-pipeline, garbage input.
 *
 *   raw hostile client ──┐
 *   hiredis bystander ───┼──> redsnano ──> redis-server
 *                        └── figures: bystander's worst latency and errors,
 *                            VmHWM of proxy and Redis, time to recover
 *
 * The quick versions run in the suite; bench/soak runs them in rotation for
 * a set time. Figures are logged with cr_log_info (TAP comments).
 *
 * Ports 7070-7099 (tests/harness.h).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tests/harness.h"

#define FLT_PORT_BASE 7070
#define FLT_PORT(n) harness_port(FLT_PORT_BASE, (n))
#define MB (1024L * 1024L)

static harness_proc *flt_redis;
static char flt_primary[32];

static void flt_init(void)
{
    flt_redis = harness_redis_start(FLT_PORT(0));
    snprintf(flt_primary, sizeof(flt_primary), "127.0.0.1:%d", FLT_PORT(0));
}

static void flt_fini(void)
{
    harness_cleanup();
}

TestSuite(faults, .init = flt_init, .fini = flt_fini, .timeout = 120);

/* Send what the kernel takes now without blocking; returns bytes sent
 * (a client that pipelines and never reads stops here). */
static size_t send_what_fits(harness_raw *r, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(r->fd, p + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    return off;
}

/* A bystander's GETs for ms: the worst latency and the count of errors. */
struct bystander {
    long long worst_ms;               /* slowest GET */
    long long requests;               /* GETs sent */
    long long errors;                 /* replies that were errors or missing */
};

static struct bystander bystand(int port, int ms)
{
    struct bystander b = { 0 };
    redisContext *c = harness_connect(port);
    long long end = harness_now_ms() + ms;

    while (harness_now_ms() < end) {
        long long t0 = harness_now_ms();
        redisReply *r = harness_cmd(c, "GET small");
        long long dt = harness_now_ms() - t0;
        if (dt > b.worst_ms)
            b.worst_ms = dt;
        b.requests++;
        if (r == NULL || r->type != REDIS_REPLY_STRING || strcmp(r->str, "v") != 0)
            b.errors++;
        freeReplyObject(r);
        if (r == NULL)
            break;
    }
    redisFree(c);
    return b;
}

static void set_big(int port, size_t len)
{
    redisContext *d = harness_connect(port);
    char *v = malloc(len);
    cr_assert(v != NULL);
    memset(v, 'x', len);
    freeReplyObject(harness_cmd(d, "SET big %b", v, len));
    harness_cmd_ok(d, "SET small v");
    free(v);
    redisFree(d);
}

/* Slow reader: pipelines GET big (100 KB) and never reads. Before issue 9
 * a bystander sharing the backend connection waited behind every reply
 * (1.3 s with 20,000 GETs; a 5 s timeout with 200,000). */
Test(faults, a_client_that_never_reads_does_not_stall_the_others)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(FLT_PORT(1), "--primary", flt_primary);
    harness_diag_set(px, NULL);
    set_big(flt_redis->port, 100 * 1024);

    const char *get = "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";
    size_t one = strlen(get), n = 20000;
    char *pipe = malloc(one * n);
    cr_assert(pipe != NULL);
    for (size_t i = 0; i < n; i++)
        memcpy(pipe + i * one, get, one);
    harness_raw *slow = harness_raw_open(px->port);
    cr_assert(slow != NULL);
    size_t sent = send_what_fits(slow, pipe, one * n);

    struct bystander b = bystand(px->port, 2000);
    redisContext *adm = harness_connect(px->port);
    long long waits = harness_proxy_stat_ll(adm, "backpressure_waits");
    long proxy_kb = harness_proc_peak_rss_kb(px), redis_kb = harness_proc_peak_rss_kb(flt_redis);
    cr_log_info("slow reader: %zu of %zu GET big sent; bystander %lld GETs, worst %lld ms, %lld errors; "
                "peak RSS proxy %ld MB, redis %ld MB; backpressure_waits %lld",
                sent / one, n, b.requests, b.worst_ms, b.errors, proxy_kb / 1024, redis_kb / 1024, waits);
    cr_expect_eq(b.errors, 0, "the bystander got %lld errors", b.errors);
    cr_expect(b.worst_ms <= 250, "the bystander's worst GET took %lld ms (target 250)", b.worst_ms);
    cr_expect(waits >= 1, "the slow reader was paused");
    cr_expect(proxy_kb <= 400 * 1024, "proxy peak RSS %ld MB (target 400)", proxy_kb / 1024);
    cr_expect(redis_kb <= 600 * 1024, "redis peak RSS %ld MB (target 600)", redis_kb / 1024);

    /* It leaves; the proxy is fine. */
    harness_raw_close(slow, true);
    harness_expect_bulk(adm, "v", "GET small");
    redisFree(adm);
    free(pipe);
    harness_proxy_check_exit(px);
}

/* Slow subscriber: subscribed, never reads, 1 KB messages published. Before
 * issue 9 the proxy grew ~155 MB/s and never closed it. */
Test(faults, a_subscriber_that_never_reads_is_closed_by_the_pubsub_limit)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(FLT_PORT(2), "--primary", flt_primary);
    harness_diag_set(px, NULL);
    harness_raw *sub = harness_raw_open(px->port);
    cr_assert(sub != NULL);
    harness_raw_sends(sub, "*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n");
    char *got = NULL;
    cr_assert(harness_raw_reply(sub, 5000, &got) > 0, "%s", harness_error());
    cr_assert(strstr(got, "subscribe") != NULL, "%s", got);
    free(got);

    redisContext *pub = harness_connect(flt_redis->port);
    redisContext *adm = harness_connect(px->port);
    char msg[1024];
    memset(msg, 'm', sizeof(msg));
    long long t0 = harness_now_ms(), closes = 0, published = 0;
    while (harness_now_ms() - t0 < 30000) {
        for (int i = 0; i < 1000; i++)
            redisAppendCommand(pub, "PUBLISH ch %b", msg, sizeof(msg));
        for (int i = 0; i < 1000; i++)
            freeReplyObject(harness_pipe_reply(pub, "PUBLISH"));
        published += 1000;
        if ((closes = harness_proxy_stat_ll(adm, "client_output_limit_closes")) > 0)
            break;
    }
    long long took = harness_now_ms() - t0;
    long proxy_kb = harness_proc_peak_rss_kb(px);
    cr_log_info("slow subscriber: closed after %lld messages of 1 KB in %lld ms; proxy peak RSS %ld MB",
                published, took, proxy_kb / 1024);
    cr_assert_eq(closes, 1, "the subscriber was closed by client-output-buffer-limit pubsub");
    cr_expect(proxy_kb <= 300 * 1024, "proxy peak RSS %ld MB (target 300)", proxy_kb / 1024);
    /* Its Redis connection is gone with it. */
    cr_expect(harness_wait_until(({
                  redisReply *r = harness_cmd(pub, "PUBSUB NUMSUB ch");
                  bool gone = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                              r->element[1]->integer == 0;
                  freeReplyObject(r);
                  gone;
              }), 5000), "the subscriber's Redis connection was closed");
    harness_expect_status(adm, "PONG", "PING");
    harness_raw_close(sub, true);
    redisFree(pub);
    redisFree(adm);
    harness_proxy_check_exit(px);
}

/* A smaller pubsub limit applies its soft rule: over <soft> for
 * <soft-seconds> closes, under it never does. */
Test(faults, a_subscriber_over_the_soft_limit_is_closed_after_its_seconds)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(FLT_PORT(3), "--primary", flt_primary,
                                           "--client-output-buffer-limit", "pubsub 0 64kb 1");
    harness_diag_set(px, NULL);
    harness_raw *sub = harness_raw_open(px->port);
    cr_assert(sub != NULL);
    harness_raw_sends(sub, "*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n");
    char *got = NULL;
    cr_assert(harness_raw_reply(sub, 5000, &got) > 0, "%s", harness_error());
    free(got);
    redisContext *pub = harness_connect(flt_redis->port);
    redisContext *adm = harness_connect(px->port);
    char msg[1024];
    memset(msg, 'm', sizeof(msg));
    long long t0 = harness_now_ms(), closes = 0;
    /* Keep it over the soft limit: a message every 50 ms after a burst. */
    while ((closes = harness_proxy_stat_ll(adm, "client_output_limit_closes")) == 0 &&
           harness_now_ms() - t0 < 10000) {
        int burst = harness_now_ms() - t0 < 100 ? 20000 : 1;
        for (int i = 0; i < burst; i++)
            redisAppendCommand(pub, "PUBLISH ch %b", msg, sizeof(msg));
        for (int i = 0; i < burst; i++)
            freeReplyObject(harness_pipe_reply(pub, "PUBLISH"));
        harness_sleep_ms(50);
    }
    long long took = harness_now_ms() - t0;
    cr_log_info("soft limit 64kb 1 s: closed after %lld ms", took);
    cr_assert_eq(closes, 1);
    cr_expect(took >= 1000, "closed after %lld ms, before its soft seconds", took);
    harness_raw_close(sub, true);
    redisFree(pub);
    redisFree(adm);
    harness_proxy_check_exit(px);
}

/* MONITOR has a connection of its own: the others see none of its
 * traffic, and it sees theirs. */
Test(faults, monitor_sees_the_others_commands_and_they_never_see_its_traffic)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(FLT_PORT(4), "--primary", flt_primary,
                                           "--allow-admin-commands", "yes");
    harness_diag_set(px, NULL);
    harness_raw *mon = harness_raw_open(px->port);
    cr_assert(mon != NULL);
    harness_raw_sends(mon, "*1\r\n$7\r\nMONITOR\r\n");
    char *got = NULL;
    cr_assert(harness_raw_reply(mon, 5000, &got) > 0, "%s", harness_error());
    cr_assert_str_eq(got, "+OK\r\n");
    free(got);

    redisContext *c = harness_connect(px->port);
    long long errors = 0;
    for (int i = 0; i < 200; i++) {
        redisReply *r = harness_cmd(c, "SET mon:%d v%d", i, i);
        errors += r == NULL || r->type != REDIS_REPLY_STATUS;
        freeReplyObject(r);
        r = harness_cmd(c, "GET mon:%d", i);
        char want[16];
        snprintf(want, sizeof(want), "v%d", i);
        errors += r == NULL || r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0;
        freeReplyObject(r);
    }
    cr_assert_eq(errors, 0, "%lld errors for the others while MONITOR runs", errors);
    /* MONITOR's stream carries the last command of the others. */
    bool seen = false;
    long long end = harness_now_ms() + 5000;
    while (!seen && harness_now_ms() < end) {
        char *line = NULL;
        if (harness_raw_reply(mon, 1000, &line) <= 0)
            break;
        seen = strstr(line, "\"GET\" \"mon:199\"") != NULL;
        free(line);
    }
    cr_assert(seen, "MONITOR saw \"GET\" \"mon:199\"");
    harness_raw_close(mon, false);
    harness_expect_status(c, "PONG", "PING");
    redisFree(c);
    harness_proxy_check_exit(px);
}

/* Half-sent huge requests under maxmemory-clients: the biggest holder is
 * closed, smaller ones keep their partial requests, the rest are served.
 * (Before issue 9 each partial request was held twice, with no cap.) */
Test(faults, maxmemory_clients_closes_the_biggest_half_sent_request_first)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(FLT_PORT(5), "--primary", flt_primary,
                                           "--maxmemory-clients", "100mb");
    harness_diag_set(px, NULL);
    size_t small = 20 * MB, huge = 200 * MB;
    char *chunk = malloc(MB);
    cr_assert(chunk != NULL);
    memset(chunk, 'z', MB);

    /* Two clients hold 20 MB of a 20 MB + 1 byte argument each. */
    harness_raw *keep[2];
    for (int i = 0; i < 2; i++) {
        keep[i] = harness_raw_open(px->port);
        cr_assert(keep[i] != NULL);
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "*3\r\n$3\r\nSET\r\n$5\r\nkeep%d\r\n$%zu\r\n", i, small + 1);
        harness_raw_sends(keep[i], hdr);
        for (size_t s = 0; s < small; s += MB)
            cr_assert_eq(harness_raw_send(keep[i], chunk, MB), 0);
    }
    redisContext *adm = harness_connect(px->port);
    /* One announces 200 MB and sends until it is closed. */
    harness_raw *big = harness_raw_open(px->port);
    cr_assert(big != NULL);
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", huge);
    harness_raw_sends(big, hdr);
    size_t sent = 0;
    while (sent < huge - MB && harness_raw_send(big, chunk, MB) == 0)
        sent += MB;
    cr_assert(harness_wait_until(harness_proxy_stat_ll(adm, "evicted_clients") >= 1, 5000),
              "the biggest client was evicted");
    cr_assert_eq(harness_raw_wait_eof(big, 5000), 0, "the biggest client is closed");
    long proxy_kb = harness_proc_peak_rss_kb(px);
    cr_log_info("maxmemory-clients 100mb: 2 x 20 MB kept, a 200 MB request closed after %zu MB sent; "
                "proxy peak RSS %ld MB", sent / MB, proxy_kb / 1024);
    cr_expect(proxy_kb <= 300 * 1024, "proxy peak RSS %ld MB", proxy_kb / 1024);

    /* The smaller ones finish their requests; the others are served. */
    for (int i = 0; i < 2; i++) {
        harness_raw_sends(keep[i], "k\r\n");
        char *got = NULL;
        cr_assert(harness_raw_reply(keep[i], 10000, &got) > 0, "%s", harness_error());
        cr_assert_str_eq(got, "+OK\r\n");
        free(got);
        harness_raw_close(keep[i], false);
    }
    cr_assert_eq(harness_proxy_stat_ll(adm, "evicted_clients"), 1);
    harness_expect_int(adm, small + 1, "STRLEN keep0");
    harness_expect_int(adm, 2, "DEL keep0 keep1");
    redisFree(adm);
    free(chunk);
    harness_raw_close(big, false);
    harness_proxy_check_exit(px);
}

/* The primary killed and restarted: errors say what is true while it is
 * down, and writes succeed as soon as it accepts connections. */
Test(faults, writes_succeed_soon_after_the_primary_comes_back)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(FLT_PORT(6), "--primary", flt_primary);
    harness_diag_set(px, NULL);
    redisContext *c = harness_connect(px->port);
    harness_cmd_ok(c, "SET k v");
    harness_redis_kill9(flt_redis);

    bool truthful = false;
    long long end = harness_now_ms() + 2000;
    char last[512] = "";
    while (harness_now_ms() < end) {
        redisReply *r = harness_cmd(c, "SET k v");
        cr_assert(r != NULL, "the proxy answers while the primary is down");
        cr_assert_eq(r->type, REDIS_REPLY_ERROR);
        snprintf(last, sizeof(last), "%s", r->str);
        truthful |= strstr(r->str, "(primary) down since ") != NULL && strstr(r->str, "last error: ") != NULL;
        freeReplyObject(r);
        harness_sleep_ms(20);
    }
    cr_expect(truthful, "no error said \"down since ..., last error: ...\"; the last was: %s", last);

    harness_redis_restart(flt_redis);   /* returns once it answers PING */
    long long t0 = harness_now_ms(), took = -1;
    while (harness_now_ms() - t0 < 5000) {
        redisReply *r = harness_cmd(c, "SET k v");
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (ok) {
            took = harness_now_ms() - t0;
            break;
        }
        harness_sleep_ms(5);
    }
    cr_log_info("primary restart: first write OK %lld ms after it accepted connections", took);
    cr_assert(took >= 0, "writes never succeeded again");
    cr_expect(took <= 300, "first write OK after %lld ms (target 300)", took);
    redisFree(c);
    harness_proxy_check_exit(px);
}

/* The primary stopped (SIGSTOP): requests time out with the timeout's
 * text, and all is well once it continues. */
Test(faults, a_stopped_primary_times_out_and_recovers_when_continued)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(FLT_PORT(7), "--primary", flt_primary, "--backend-timeout", "300");
    harness_diag_set(px, NULL);
    redisContext *c = harness_connect(px->port);
    harness_cmd_ok(c, "SET small v");
    cr_assert_eq(harness_stop_signal(flt_redis, SIGSTOP), 0);
    long long t0 = harness_now_ms();
    redisReply *r = harness_expect_error(c, "ERR redsnano: backend", "GET small");
    long long took = harness_now_ms() - t0;
    cr_expect(strstr(r->str, "timed out after 300 ms") != NULL, "%s", r->str);
    freeReplyObject(r);
    cr_expect(took >= 250 && took < 3000, "timed out after %lld ms", took);
    cr_assert_eq(harness_stop_signal(flt_redis, SIGCONT), 0);
    cr_assert(harness_wait_until(({
                  redisReply *g = harness_cmd(c, "GET small");
                  bool ok = g && g->type == REDIS_REPLY_STRING;
                  freeReplyObject(g);
                  ok;
              }), 5000), "reads work again after SIGCONT");
    redisFree(c);
    harness_proxy_check_exit(px);
}

/* A client gone mid-pipeline and one sending garbage: the others are
 * served, and the proxy's descriptors return to their baseline. */
Test(faults, clients_gone_mid_pipeline_or_sending_garbage_leave_nothing_behind)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(FLT_PORT(8), "--primary", flt_primary);
    harness_diag_set(px, NULL);
    set_big(flt_redis->port, 10 * 1024);
    redisContext *c = harness_connect(px->port);
    harness_expect_bulk(c, "v", "GET small");
    int base_fds = harness_proc_fds(px);

    const char *get = "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";
    size_t one = strlen(get);
    char *pipe = malloc(one * 5000);
    cr_assert(pipe != NULL);
    for (int i = 0; i < 5000; i++)
        memcpy(pipe + (size_t)i * one, get, one);
    for (int round = 0; round < 10; round++) {
        harness_raw *gone = harness_raw_open(px->port);
        cr_assert(gone != NULL);
        send_what_fits(gone, pipe, one * 5000);
        harness_raw_close(gone, round % 2 == 0);   /* RST or FIN, mid-pipeline */

        harness_raw *bad = harness_raw_open(px->port);
        cr_assert(bad != NULL);
        char junk[512];
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (char)(rand() & 0xff);
        junk[0] = '*';
        junk[1] = 'x';                      /* a bad count: refused at once */
        send_what_fits(bad, junk, sizeof(junk));
        harness_raw_wait_eof(bad, 5000);
        harness_raw_close(bad, false);
        harness_expect_bulk(c, "v", "GET small");
    }
    free(pipe);
    cr_assert(harness_wait_until(harness_proc_fds(px) == base_fds, 5000),
              "proxy descriptors back to %d (now %d)", base_fds, harness_proc_fds(px));
    cr_assert(harness_proxy_stat_ll(c, "protocol_errors") >= 1);
    redisFree(c);
    harness_proxy_check_exit(px);
}
