/*
 * test_ops.c — the operations port and the latency figures.
 *
 *   test ──HTTP──▶ redsnano http-port (PORT 2) ──┬─ /metrics ─▶ promtool check metrics
 *        ──RESP──▶ redsnano port      (PORT 1) ──┤  /readyz  ◀─ primary killed / restarted
 *                                                └─ /cache/{key} ─▶ redis (PORT 0)
 *   test ──▶ redis directly: its own view of the keys the HTTP API wrote
 *
 * Each test starts its own redis and proxy. Ports 7110-7129 (this file).
 */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OPS_PORT_BASE 7110                   /* this file's port range start */
#define OPS_PORT(n) harness_port(OPS_PORT_BASE, (n))
#define OPS_HTTP_MS 5000                     /* bound for one HTTP exchange */
#define OPS_HEALTH_INTERVAL "100"            /* --health-interval, ms */
#define OPS_READY_MS 10000                   /* bound for /readyz to change */
#define OPS_HTTP_TIMEOUT "300"               /* --http-timeout of the slow-client test, ms */

static harness_proc *ops_redis;     /* the primary */
static harness_proc *ops_proxy;     /* the proxy */
static char ops_primary[32];        /* "127.0.0.1:<port>" */

/* Start redis and the proxy with the HTTP port and up to two extra proxy
 * arguments (NULL: none). */
static void ops_start(const char *extra1, const char *extra2)
{
    char http[16];

    ops_redis = harness_redis_start(OPS_PORT(0));
    snprintf(ops_primary, sizeof(ops_primary), "127.0.0.1:%d", OPS_PORT(0));
    snprintf(http, sizeof(http), "%d", OPS_PORT(2));
    ops_proxy = harness_proxy_start(OPS_PORT(1), "--primary", ops_primary, "--http-port", http,
                                    "--health-interval", OPS_HEALTH_INTERVAL, "--health-timeout", "80",
                                    extra1 ? extra1 : "--loglevel", extra2 ? extra2 : "notice",
                                    "--l1-admission", "no"); /* every cacheable miss fills: counts are exact */
    harness_diag_set(ops_proxy, NULL);
}

/* One HTTP exchange with the proxy; asserts that a response came. */
static harness_http_resp ops_http(const char *method, const char *target, const char *body, size_t len)
{
    harness_http_resp r;
    int rc = harness_http(OPS_PORT(2), method, target, body, len, OPS_HTTP_MS, &r);
    char *diag = rc < 0 ? harness_diag() : NULL;
    cr_assert_eq(rc, 0, "%s %s: %s%s", method, target, harness_error(), diag ? diag : "");
    free(diag);
    return r;
}

static int ops_status(const char *target)
{
    harness_http_resp r;
    if (harness_http(OPS_PORT(2), "GET", target, NULL, 0, OPS_HTTP_MS, &r) < 0)
        return -1;
    int s = r.status;
    harness_http_free(&r);
    return s;
}

/* ---- /healthz, /metrics ----------------------------------------------------- */

Test(ops, healthz_answers_200_while_the_loop_runs)
{
    harness_skip_if_direct();
    ops_start(NULL, NULL);
    harness_http_resp r = ops_http("GET", "/healthz", NULL, 0);
    cr_assert_eq(r.status, 200, "%s", r.head);
    cr_assert_str_eq(r.body, "ok\n");
    harness_http_free(&r);
    r = ops_http("GET", "/no-such-page", NULL, 0);
    cr_assert_eq(r.status, 404, "%s", r.head);
    harness_http_free(&r);
    r = ops_http("POST", "/healthz", "", 0);
    cr_assert_eq(r.status, 405, "%s", r.head);
    harness_http_free(&r);
    harness_proxy_check_exit(ops_proxy);
}

Test(ops, metrics_pass_promtool_and_count_requests)
{
    harness_skip_if_direct();
    ops_start("--l1-maxmemory", "1mb");
    redisContext *c = harness_connect(OPS_PORT(1));
    for (int i = 0; i < 5; i++)
        harness_cmd_ok(c, "SET k%d v", i);
    harness_expect_bulk(c, "v", "GET k0");
    harness_expect_bulk(c, "v", "GET k0");
    harness_expect_int(c, 2, "DEL k1 k2");

    harness_http_resp r = ops_http("GET", "/metrics", NULL, 0);
    cr_assert_eq(r.status, 200, "%s", r.head);
    cr_assert(strstr(r.head, "Content-Type: text/plain; version=0.0.4") != NULL, "%s", r.head);
    /* Counters and histograms reflect what was sent. */
    const char *cmds = strstr(r.body, "\nredsnano_commands_total ");
    cr_assert(cmds != NULL && strtoll(cmds + 25, NULL, 10) >= 8, "%s", r.body);
    cr_assert(strstr(r.body, "\nredsnano_request_duration_seconds_count{class=\"write\"} 6\n") != NULL,
              "5 SET + 1 DEL: %s", r.body);
    cr_assert(strstr(r.body, "\nredsnano_request_duration_seconds_bucket{class=\"write\",le=\"+Inf\"} 6\n") != NULL,
              "%s", r.body);
    cr_assert(strstr(r.body, "\nredsnano_request_duration_seconds_count{class=\"l1\"} 2\n") != NULL,
              "the two GETs went through the L1: %s", r.body);
    char want[128];
    snprintf(want, sizeof(want), "\nredsnano_backend_healthy{backend=\"%s\",role=\"primary\"} 1\n", ops_primary);
    cr_assert(strstr(r.body, want) != NULL, "%s", r.body);
    snprintf(want, sizeof(want), "\nredsnano_backend_request_duration_seconds_count{backend=\"%s\",role=\"primary\"} 6\n",
             ops_primary);
    cr_assert(strstr(r.body, want) != NULL, "%s", r.body);
    cr_assert(strstr(r.body, "\nredsnano_l1_hits_total 1\n") != NULL, "%s", r.body);

    /* promtool check metrics reads the exposition on stdin. */
    char path[600];
    snprintf(path, sizeof(path), "%s/metrics.txt", harness_tmpdir());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fwrite(r.body, 1, r.len, f);
    fclose(f);
    harness_http_free(&r);
    char *out = NULL;
    const char *which[] = { "sh", "-c", "command -v promtool", NULL };
    if (harness_run_capture(which, 5000, &out) != 0) {
        free(out);
        redisFree(c);
        harness_proxy_check_exit(ops_proxy);
        cr_skip_test("promtool is not installed (Debian package prometheus): metrics not linted");
    }
    free(out);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s'", path);
    const char *argv[] = { "sh", "-c", cmd, NULL };
    int st = harness_run_capture(argv, 20000, &out);
    cr_assert_eq(st, 0, "promtool check metrics: %s\n%s", harness_status_str(st), out ? out : "");
    free(out);
    redisFree(c);
    harness_proxy_check_exit(ops_proxy);
}

/* ---- /readyz ---------------------------------------------------------------- */

Test(ops, readyz_follows_the_primary)
{
    harness_skip_if_direct();
    ops_start(NULL, NULL);
    cr_assert_eq(ops_status("/readyz"), 200);
    harness_redis_kill9(ops_redis);
    cr_assert(harness_wait_until(ops_status("/readyz") == 503, OPS_READY_MS), "readyz stays %d with the primary dead",
              ops_status("/readyz"));
    harness_http_resp r = ops_http("GET", "/readyz", NULL, 0);
    cr_assert(strstr(r.body, "primary") != NULL && strstr(r.body, ops_primary) != NULL, "reason: %s", r.body);
    harness_http_free(&r);
    cr_assert_eq(ops_status("/healthz"), 200, "the loop still runs");
    harness_redis_restart(ops_redis);
    cr_assert(harness_wait_until(ops_status("/readyz") == 200, OPS_READY_MS), "readyz stays %d with the primary back",
              ops_status("/readyz"));
    harness_proxy_check_exit(ops_proxy);
}

/* ---- /cache/{key} ----------------------------------------------------------- */

/* Redis's own view of key (bulk) on the primary, or NULL. */
static redisReply *ops_redis_get(redisContext *direct, const char *key, size_t klen)
{
    redisReply *r = harness_cmd(direct, "GET %b", key, klen);
    cr_assert_not_null(r);
    return r;
}

Test(ops, cache_api_matches_redis)
{
    harness_skip_if_direct();
    ops_start("--l1-maxmemory", "1mb");
    redisContext *direct = harness_connect(OPS_PORT(0));
    const char value[] = "bytes\0with\r\nnul and crlf";
    size_t vlen = sizeof(value) - 1;

    /* PUT stores the body; the key is URL-decoded. */
    harness_http_resp r = ops_http("PUT", "/cache/user%3A1%20x%2Fy", value, vlen);
    cr_assert_eq(r.status, 204, "%s%s", r.head, r.body);
    harness_http_free(&r);
    redisReply *g = ops_redis_get(direct, "user:1 x/y", 10);
    cr_assert_eq(g->type, REDIS_REPLY_STRING);
    cr_assert_eq(g->len, vlen);
    cr_assert(memcmp(g->str, value, vlen) == 0);
    freeReplyObject(g);
    harness_expect_int(direct, -1, "TTL %s", "user:1 x/y");

    /* GET returns Redis's bytes, twice (the second from the L1). */
    harness_cmd_ok(direct, "SET %s %b", "k2", "from redis\n", (size_t)11);
    for (int i = 0; i < 2; i++) {
        r = ops_http("GET", "/cache/k2", NULL, 0);
        cr_assert_eq(r.status, 200, "%s", r.head);
        cr_assert_eq(r.len, 11);
        cr_assert(memcmp(r.body, "from redis\n", 11) == 0, "%s", r.body);
        harness_http_free(&r);
    }
    /* A write elsewhere is seen (the L1 is kept true). */
    harness_cmd_ok(direct, "SET k2 changed");
    cr_assert(harness_wait_until(({
        harness_http_resp x = ops_http("GET", "/cache/k2", NULL, 0);
        bool same = x.status == 200 && strcmp(x.body, "changed") == 0;
        harness_http_free(&x);
        same;
    }), 5000), "the HTTP GET follows Redis");

    /* ?ttl= sets an expiry. */
    r = ops_http("PUT", "/cache/t?ttl=100", "v", 1);
    cr_assert_eq(r.status, 204, "%s", r.head);
    harness_http_free(&r);
    long long ttl = harness_cmd_int(direct, "TTL t");
    cr_assert(ttl > 0 && ttl <= 100, "TTL %lld", ttl);

    /* Absent keys: 404; DELETE removes. */
    r = ops_http("GET", "/cache/absent", NULL, 0);
    cr_assert_eq(r.status, 404, "%s", r.head);
    harness_http_free(&r);
    r = ops_http("DELETE", "/cache/t", NULL, 0);
    cr_assert_eq(r.status, 204, "%s", r.head);
    harness_http_free(&r);
    harness_expect_int(direct, 0, "EXISTS t");
    r = ops_http("DELETE", "/cache/t", NULL, 0);
    cr_assert_eq(r.status, 404, "%s", r.head);
    harness_http_free(&r);

    /* Not a string: Redis's WRONGTYPE as 409. */
    harness_expect_int(direct, 1, "LPUSH l a");
    r = ops_http("GET", "/cache/l", NULL, 0);
    cr_assert_eq(r.status, 409, "%s", r.head);
    cr_assert(strncmp(r.body, "WRONGTYPE", 9) == 0, "%s", r.body);
    harness_http_free(&r);
    redisFree(direct);
    harness_proxy_check_exit(ops_proxy);
}

/* ---- bad and slow HTTP clients ------------------------------------------------- */

/* An HTTP exchange with an Authorization header (NULL = none): its status. */
static int ops_status_as(const char *method, const char *target, const char *authz)
{
    char hdr[256] = "";
    harness_http_resp r;

    if (authz != NULL)
        snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", authz);
    int rc = harness_http_headers(OPS_PORT(2), method, target, hdr, method[0] == 'P' ? "v" : NULL,
                                  method[0] == 'P' ? 1 : 0, OPS_HTTP_MS, &r);
    cr_assert_eq(rc, 0, "%s %s: %s", method, target, harness_error());
    int s = r.status;
    if (s == 401)
        cr_assert(strstr(r.head, "WWW-Authenticate: Basic") != NULL, "%s", r.head);
    harness_http_free(&r);
    return s;
}

/* ops_start for a proxy that requires AUTH (PING needs it too: started
 * unready, then waited on through its HTTP port). */
#define ops_start_auth(...)                                                                              \
    do {                                                                                                 \
        char http_[16];                                                                                  \
        ops_redis = harness_redis_start(OPS_PORT(0));                                                    \
        snprintf(ops_primary, sizeof(ops_primary), "127.0.0.1:%d", OPS_PORT(0));                         \
        snprintf(http_, sizeof(http_), "%d", OPS_PORT(2));                                               \
        ops_proxy = harness_proxy_start_unready(OPS_PORT(1), "--primary", ops_primary, "--http-port", http_, \
                                                "--l1-admission", "no", __VA_ARGS__);                    \
        harness_diag_set(ops_proxy, NULL);                                                               \
        cr_assert(harness_wait_until(ops_status("/healthz") == 200, 10000), "no /healthz");              \
    } while (0)

Test(ops, cache_api_checks_basic_credentials_against_the_proxy_users)
{
    harness_skip_if_direct();
    ops_start_auth("--requirepass", "s3cret");
    redisContext *direct = harness_connect(OPS_PORT(0));
    harness_cmd_ok(direct, "SET %s %s", "r:1", "one");

    /* base64("default:s3cret"), ("default:wrong"), (":s3cret") */
    cr_assert_eq(ops_status_as("GET", "/cache/r:1", NULL), 401);
    cr_assert_eq(ops_status_as("GET", "/cache/r:1", "Basic ZGVmYXVsdDp3cm9uZw=="), 401);
    cr_assert_eq(ops_status_as("GET", "/cache/r:1", "Bearer x"), 401);
    cr_assert_eq(ops_status_as("GET", "/cache/r:1", "Basic !!!"), 401);
    cr_assert_eq(ops_status_as("GET", "/cache/r:1", "Basic ZGVmYXVsdDpzM2NyZXQ="), 200);
    cr_assert_eq(ops_status_as("GET", "/cache/r:1", "basic OnMzY3JldA=="), 200, "an empty user name is the default user");
    cr_assert_eq(ops_status_as("PUT", "/cache/w:1", "Basic ZGVmYXVsdDpzM2NyZXQ="), 204);
    harness_expect_bulk(direct, "v", "GET %s", "w:1");
    /* Health and metrics stay open for load balancers and scrapers. */
    cr_assert_eq(ops_status("/healthz"), 200);
    cr_assert_eq(ops_status("/metrics"), 200);
    redisFree(direct);
}

Test(ops, cache_api_enforces_a_users_key_patterns)
{
    harness_skip_if_direct();
    ops_start_auth("--user", "reader", "on", ">pw", "%R~r:*", "+@read");
    redisContext *direct = harness_connect(OPS_PORT(0));
    harness_cmd_ok(direct, "SET %s %s", "r:1", "one");
    harness_cmd_ok(direct, "SET %s %s", "x:1", "one");
    /* base64("reader:pw") */
    cr_assert_eq(ops_status_as("GET", "/cache/r:1", "Basic cmVhZGVyOnB3"), 200);
    cr_assert_eq(ops_status_as("GET", "/cache/x:1", "Basic cmVhZGVyOnB3"), 403, "NOPERM for a key outside %%R~r:*");
    cr_assert_eq(ops_status_as("PUT", "/cache/r:1", "Basic cmVhZGVyOnB3"), 403, "NOPERM: SET is not @read");
    harness_expect_bulk(direct, "one", "GET %s", "r:1");
    redisFree(direct);
}

Test(ops, bad_requests_get_400_and_big_bodies_413)
{
    harness_skip_if_direct();
    ops_start("--http-max-body", "1kb");
    harness_raw *raw = harness_raw_open(OPS_PORT(2));
    cr_assert_not_null(raw);
    cr_assert_eq(harness_raw_sends(raw, "NOT HTTP AT ALL\r\n\r\n"), 0);
    cr_assert_eq(harness_raw_wait_eof(raw, OPS_HTTP_MS), 0, "closed after the answer");
    cr_assert(raw->len > 12 && strncmp(raw->buf, "HTTP/1.1 400", 12) == 0, "%.*s", (int)raw->len, raw->buf);
    harness_raw_close(raw, false);

    harness_http_resp r = ops_http("GET", "/cache/%zz", NULL, 0);
    cr_assert_eq(r.status, 400, "a bad escape: %s", r.head);
    harness_http_free(&r);
    r = ops_http("PUT", "/cache/k?ttl=-3", "v", 1);
    cr_assert_eq(r.status, 400, "%s", r.head);
    harness_http_free(&r);

    char *big = malloc(2048);
    memset(big, 'x', 2048);
    r = ops_http("PUT", "/cache/big", big, 2048);
    cr_assert_eq(r.status, 413, "%s", r.head);
    harness_http_free(&r);
    free(big);
    redisContext *direct = harness_connect(OPS_PORT(0));
    harness_expect_int(direct, 0, "EXISTS big");
    redisFree(direct);
    cr_assert_eq(ops_status("/healthz"), 200, "still serving");
    harness_proxy_check_exit(ops_proxy);
}

Test(ops, slow_http_clients_time_out)
{
    harness_skip_if_direct();
    ops_start("--http-timeout", OPS_HTTP_TIMEOUT);
    harness_raw *raw = harness_raw_open(OPS_PORT(2));
    cr_assert_not_null(raw);
    cr_assert_eq(harness_raw_sends(raw, "GET /healthz HTTP/1.1\r\nHost: x\r\n"), 0); /* never finished */
    long long t0 = harness_now_ms();
    cr_assert_eq(harness_raw_wait_eof(raw, 5000), 0, "the proxy closes a client that never finishes");
    long long took = harness_now_ms() - t0;
    cr_assert(took >= 250, "closed after %lld ms, before http-timeout", took);
    cr_assert_eq(raw->len, 0, "nothing answered to half a request");
    harness_raw_close(raw, false);
    cr_assert_eq(ops_status("/healthz"), 200);
    harness_proxy_check_exit(ops_proxy);
}

/* ---- REDSNANO LATENCY / SLOWLOG ------------------------------------------------ */

Test(ops, latency_reports_percentiles_per_class_and_backend)
{
    harness_skip_if_direct();
    ops_start(NULL, NULL);
    redisContext *c = harness_connect(OPS_PORT(1));
    for (int i = 0; i < 20; i++)
        harness_cmd_ok(c, "SET k v");
    for (int i = 0; i < 10; i++)
        harness_expect_bulk(c, "v", "GET k");
    redisReply *r = harness_expect(c, REDIS_REPLY_STRING, "REDSNANO LATENCY");
    /* prefer-replica without replicas: reads go to the primary. */
    cr_assert(strstr(r->str, "class_write:count=20,") != NULL, "%s", r->str);
    cr_assert(strstr(r->str, "class_read:count=10,") != NULL, "%s", r->str);
    char want[96];
    snprintf(want, sizeof(want), "backend_%s:count=30,", ops_primary);
    cr_assert(strstr(r->str, want) != NULL, "%s", r->str);
    cr_assert(strstr(r->str, "p99.9_us=") != NULL, "%s", r->str);
    freeReplyObject(r);
    harness_cmd_ok(c, "REDSNANO LATENCY RESET");
    r = harness_expect(c, REDIS_REPLY_STRING, "REDSNANO LATENCY");
    cr_assert(strstr(r->str, "class_write:count=0,") != NULL, "%s", r->str);
    freeReplyObject(r);
    redisFree(c);
    harness_proxy_check_exit(ops_proxy);
}

Test(ops, slowlog_is_shaped_as_redis)
{
    harness_skip_if_direct();
    ops_start("--slowlog-log-slower-than", "0");
    redisContext *c = harness_connect(OPS_PORT(1));
    redisContext *direct = harness_connect(OPS_PORT(0));
    harness_cmd_ok(direct, "CONFIG SET slowlog-log-slower-than 0");
    harness_cmd_ok(direct, "SLOWLOG RESET");
    char big[300];
    memset(big, 'x', sizeof(big));
    harness_expect_int(c, 1, "RPUSH list %b", big, sizeof(big));
    harness_expect_int(direct, 2, "RPUSH list2 %b a", big, sizeof(big));
    redisReply *mine = harness_expect(c, REDIS_REPLY_ARRAY, "REDSNANO SLOWLOG GET 1");
    redisReply *theirs = harness_expect(direct, REDIS_REPLY_ARRAY, "SLOWLOG GET 1");
    cr_assert_eq(mine->elements, 1);
    cr_assert_eq(theirs->elements, 1);
    redisReply *m = mine->element[0], *t = theirs->element[0];
    cr_assert_eq(m->elements, t->elements, "entries of %zu fields", t->elements);
    for (size_t i = 0; i < t->elements; i++)
        cr_assert_eq(m->element[i]->type, t->element[i]->type, "field %zu", i);
    cr_assert_eq(m->element[3]->elements, 3);
    cr_assert_str_eq(m->element[3]->element[0]->str, "RPUSH");
    /* A long argument is cut as Redis cuts it. */
    cr_assert_str_eq(m->element[3]->element[2]->str + 128, "... (172 more bytes)");
    cr_assert_str_eq(t->element[3]->element[2]->str + 128, "... (172 more bytes)");
    freeReplyObject(mine);
    freeReplyObject(theirs);
    long long len = harness_cmd_int(c, "REDSNANO SLOWLOG LEN");
    cr_assert_geq(len, 1);
    harness_cmd_ok(c, "REDSNANO SLOWLOG RESET");
    harness_expect_int(c, 0, "REDSNANO SLOWLOG LEN");
    redisFree(direct);
    redisFree(c);
    harness_proxy_check_exit(ops_proxy);
}

/* ---- reload ----------------------------------------------------------------- */

/* Write text to the proxy's configuration file (in the tmpdir); its path. */
static const char *ops_conf_write(const char *text)
{
    static char path[600];
    snprintf(path, sizeof(path), "%s/ops.conf", harness_tmpdir());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* GET calls a redis has served. */
static long long ops_gets(harness_proc *r)
{
    redisContext *c = harness_connect(r->port);
    long long n = harness_cmdstat_calls(c, "get");
    redisFree(c);
    return n;
}

Test(ops, sighup_adds_a_replica_that_serves_reads_while_a_client_stays)
{
    harness_skip_if_direct();
    char text[512], replicaof[16];
    ops_redis = harness_redis_start(OPS_PORT(0));
    snprintf(ops_primary, sizeof(ops_primary), "127.0.0.1:%d", OPS_PORT(0));
    snprintf(replicaof, sizeof(replicaof), "%d", OPS_PORT(0));
    harness_proc *replica = harness_redis_start(OPS_PORT(3), "--replicaof", "127.0.0.1", replicaof);
    cr_assert(harness_wait_until(harness_replica_link_up(replica->port), 10000), "replica in sync");
    snprintf(text, sizeof(text), "primary %s\nread-policy replica\nread-your-writes 0\nhealth-interval 100\n",
             ops_primary);
    const char *conf = ops_conf_write(text);
    ops_proxy = harness_proxy_start(OPS_PORT(1), "--config", conf);
    harness_diag_set(ops_proxy, NULL);

    redisContext *c = harness_connect(OPS_PORT(1));
    harness_cmd_ok(c, "SET k v");
    harness_expect_bulk(c, "v", "GET k");
    cr_assert_eq(ops_gets(replica), 0, "no replica configured yet");
    /* The replica has the key before it may serve it (replication is
     * asynchronous). */
    redisContext *rd = harness_connect(replica->port);
    cr_assert(harness_wait_until(({
        redisReply *x = harness_cmd(rd, "EXISTS k");
        bool has = x && x->type == REDIS_REPLY_INTEGER && x->integer == 1;
        freeReplyObject(x);
        has;
    }), 10000), "k replicated");
    redisFree(rd);
    long long replica_gets = ops_gets(replica);
    long long conns = harness_proxy_stat_ll(c, "total_connections_received");

    snprintf(text, sizeof(text), "primary %s\nread-policy replica\nread-your-writes 0\nhealth-interval 100\n"
             "replica 127.0.0.1:%d\n", ops_primary, OPS_PORT(3));
    ops_conf_write(text);
    cr_assert_eq(harness_stop_signal(ops_proxy, SIGHUP), 0);
    /* The same connection keeps working and its reads reach the replica. */
    cr_assert(harness_wait_until(({
        harness_expect_bulk(c, "v", "GET k");
        ops_gets(replica) > replica_gets;
    }), 10000), "the added replica serves reads");
    redisReply *r = harness_expect(c, REDIS_REPLY_ARRAY, "REDSNANO CONFIG GET replica");
    cr_assert_eq(r->elements, 2);
    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%d", OPS_PORT(3));
    cr_assert_str_eq(r->element[1]->str, want);
    freeReplyObject(r);
    cr_assert_eq(harness_proxy_stat_ll(c, "total_connections_received"), conns, "no client reconnected");
    harness_cmd_ok(c, "SET k w");
    redisFree(c);
    harness_proxy_check_exit(ops_proxy);
}

/* Every directive and value of REDSNANO CONFIG GET * as one string. */
static char *ops_config_all(redisContext *c)
{
    redisReply *r = harness_expect(c, REDIS_REPLY_ARRAY, "REDSNANO CONFIG GET *");
    size_t cap = 1, len = 0;
    for (size_t i = 0; i < r->elements; i++)
        cap += r->element[i]->len + 1;
    char *s = malloc(cap);
    for (size_t i = 0; i < r->elements; i++) {
        memcpy(s + len, r->element[i]->str, r->element[i]->len);
        len += r->element[i]->len;
        s[len++] = i % 2 ? '\n' : '=';
    }
    s[len] = '\0';
    freeReplyObject(r);
    return s;
}

Test(ops, a_bad_file_on_reload_changes_nothing)
{
    harness_skip_if_direct();
    char text[512];
    ops_redis = harness_redis_start(OPS_PORT(0));
    snprintf(ops_primary, sizeof(ops_primary), "127.0.0.1:%d", OPS_PORT(0));
    snprintf(text, sizeof(text), "primary %s\nread-policy primary\nslowlog-max-len 7\n", ops_primary);
    const char *conf = ops_conf_write(text);
    ops_proxy = harness_proxy_start(OPS_PORT(1), "--config", conf);
    harness_diag_set(ops_proxy, NULL);
    redisContext *c = harness_connect(OPS_PORT(1));
    char *before = ops_config_all(c);
    cr_assert(strstr(before, "\nslowlog-max-len=7\n") != NULL, "%s", before);
    cr_assert(strstr(before, "\nread-policy=primary\n") != NULL, "%s", before);

    /* Line 3 is wrong; line 2 alone would be a valid change. */
    snprintf(text, sizeof(text), "primary %s\nread-policy round-robin\nslowlog-max-len lots\n", ops_primary);
    ops_conf_write(text);
    cr_assert_eq(harness_stop_signal(ops_proxy, SIGHUP), 0);
    cr_assert(harness_wait_until(({
        char *log = harness_log_tail(ops_proxy, 4096);
        bool seen = strstr(log, "Reload refused") != NULL;
        free(log);
        seen;
    }), 5000), "the refusal is logged");
    char *after = ops_config_all(c);
    cr_assert_str_eq(after, before, "nothing changed");
    free(after);

    redisReply *e = harness_expect_error(c, "ERR", "REDSNANO CONFIG RELOAD");
    cr_assert(strstr(e->str, "ops.conf:3: ") != NULL, "file:line: in %s", e->str);
    freeReplyObject(e);
    after = ops_config_all(c);
    cr_assert_str_eq(after, before, "nothing changed");
    free(after);

    /* Fixed, the same file is taken. */
    snprintf(text, sizeof(text), "primary %s\nread-policy round-robin\nslowlog-max-len 9\n", ops_primary);
    ops_conf_write(text);
    harness_cmd_ok(c, "REDSNANO CONFIG RELOAD");
    redisReply *r = harness_expect(c, REDIS_REPLY_ARRAY, "REDSNANO CONFIG GET read-policy");
    cr_assert_str_eq(r->element[1]->str, "round-robin");
    freeReplyObject(r);
    free(before);
    redisFree(c);
    harness_proxy_check_exit(ops_proxy);
}
