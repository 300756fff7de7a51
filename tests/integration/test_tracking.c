/*
 * test_tracking.c — the proxy as its clients' tracking server.
 *
 *   test ──raw──▶ redsnano (PORT 2, L1 off) ──▶ redis "backend" (PORT 1)
 *   test ──raw──▶ redsnano (PORT 3, L1 on)  ──▶ redis "backend" (PORT 1)
 *   test ──raw──────────────────────────────▶ redis "backend" (writes straight to Redis)
 *   test ──raw──────────────────────────────▶ redis "reference" (PORT 0, the same scenario)
 *
 * Each scenario (CLIENT TRACKING in one mode, reads, then writes through
 * the proxy, writes straight to Redis, expiry, FLUSHALL) runs once against
 * the proxy and once against the reference redis; the transcripts (every
 * reply and every invalidation, exact bytes) must be identical. Between a
 * write and the next read of the same key the proxy run waits until the
 * proxy has Redis's report of the write (REDSNANO TRACKING
 * tracking_redis_reports): Redis's own ordering on one connection is what
 * the reference shows.
 *
 * The last test drives a real client library: node-redis 5 with RESP3 and
 * its client-side cache (tests/node, installed by `npm ci` in .ci/run),
 * reading through the proxy while other clients write.
 *
 * Ports 7420-7439 (see tests/harness.h).
 */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TRK_PORT_BASE 7420                    /* this file's port range start */
#define TRK_PORT(n) harness_port(TRK_PORT_BASE, (n))
#define TRK_WAIT_MS 5000                      /* bound for an observable change */

static harness_proc *trk_ref;      /* reference redis, never proxied */
static harness_proc *trk_backend;  /* redis behind the proxies */
static harness_proc *trk_proxy;    /* the proxy, L1 off */
static harness_proc *trk_proxy_l1; /* the proxy, L1 on */

static void trk_init(void)
{
    char primary[32];

    trk_ref = harness_redis_start(TRK_PORT(0));
    trk_backend = harness_redis_start(TRK_PORT(1));
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", TRK_PORT(1));
    trk_proxy = harness_proxy_start(TRK_PORT(2), "--primary", primary, "--loglevel", "warning");
    trk_proxy_l1 = harness_proxy_start(TRK_PORT(3), "--primary", primary, "--loglevel", "warning",
                                       "--l1-maxmemory", "64mb", "--l1-commands", "GET HGETALL");
    harness_diag_set(trk_proxy, NULL);
}

static void trk_fini(void)
{
    harness_cleanup();
}

TestSuite(tracking, .init = trk_init, .fini = trk_fini, .timeout = 120);

/* Where a scenario runs. */
struct trk_target {
    int port;                  /* where clients connect */
    int direct_port;           /* the Redis behind it (writes straight to Redis) */
    harness_proc *proxy;       /* NULL: the reference redis */
    long long reports;         /* proxy: Redis reports seen so far */
};

/* A REDSNANO TRACKING figure of the proxy. */
static long long trk_stat(harness_proc *px, const char *name)
{
    redisContext *c = harness_connect(px->port);
    redisReply *r = harness_cmd(c, "REDSNANO TRACKING");
    long long v = r && r->type == REDIS_REPLY_STRING ? harness_text_ll(r->str, name, -1) : -1;

    freeReplyObject(r);
    redisFree(c);
    return v;
}

/* The proxy has Redis's reports of n more changes (no-op for Redis itself). */
static void trk_sync(struct trk_target *g, int n)
{
    if (g->proxy == NULL)
        return;
    g->reports += n;
    cr_assert(harness_wait_until(trk_stat(g->proxy, "tracking_redis_reports") >= g->reports, TRK_WAIT_MS),
              "the proxy saw %lld Redis reports, wanted %lld%s", trk_stat(g->proxy, "tracking_redis_reports"),
              g->reports, harness_diag());
}

static struct trk_target trk_on_proxy(harness_proc *px)
{
    struct trk_target g = { px->port, trk_backend->port, px, 0 };
    /* The clients of an earlier test are gone: no report of theirs is pending. */
    cr_assert(harness_wait_until(trk_stat(px, "tracking_clients") == 0, TRK_WAIT_MS));
    g.reports = trk_stat(px, "tracking_redis_reports");
    return g;
}

static struct trk_target trk_on_ref(void)
{
    return (struct trk_target){ trk_ref->port, trk_ref->port, NULL, 0 };
}

/* Both targets start empty (FLUSHALL before anyone tracks). */
static void trk_flush(const struct trk_target *g)
{
    redisContext *c = harness_connect(g->direct_port);
    harness_cmd_ok(c, "FLUSHALL");
    redisFree(c);
}

/* Connections: 0 the tracking client, 1 a writer through the target, 2 a
 * writer straight to Redis, 3 a redirect subscriber. */
static void trk_open(harness_tx *t, const struct trk_target *g, int proto)
{
    trk_flush(g);
    harness_tx_open(t, 2, g->port);
    harness_tx_connect(t, 2, g->direct_port);
    if (proto == 3) {
        harness_tx_send(t, 0, "HELLO 3");
        harness_tx_reply_type(t, 0);
    }
}

/* Run scenario on the proxy px and on the reference; compare. */
static void trk_compare(int line, const char *what, harness_proc *px,
                        char *(*scenario)(struct trk_target *g))
{
    harness_skip_if_direct();
    struct trk_target gp = trk_on_proxy(px), gr = trk_on_ref();
    char *a = scenario(&gp), *b = scenario(&gr);

    harness_tx_same_at(line, what, a, b);
    free(a);
    free(b);
    harness_proxy_check_exit(px);
}

/* ---- default mode ------------------------------------------------------------ */

static char *trk_default(struct trk_target *g)
{
    harness_tx t;

    trk_open(&t, g, 3);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on");
    harness_tx_cmd(&t, 0, "GET k1");
    harness_tx_cmd(&t, 0, "GET k2");
    harness_tx_cmd(&t, 0, "MGET k3 k4");
    harness_tx_cmd(&t, 0, "HGETALL h1");
    harness_tx_note(&t, "a write through the proxy");
    harness_tx_cmd(&t, 1, "SET k1 v");
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 1, "SET k1 v2");          /* not read again: no second message */
    trk_sync(g, 2);
    harness_tx_quiet(&t, 0);
    harness_tx_note(&t, "a write straight to Redis");
    harness_tx_cmd(&t, 2, "SET k2 x");
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 2, "HSET h1 f v");
    harness_tx_reply(&t, 0);
    trk_sync(g, 2);
    harness_tx_note(&t, "read again, written again");
    harness_tx_cmd(&t, 0, "GET k1");
    harness_tx_cmd(&t, 2, "DEL k1");
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 1, "MSET k3 a k4 b");     /* two keys, two messages */
    harness_tx_reply(&t, 0);
    harness_tx_reply(&t, 0);
    trk_sync(g, 2);
    harness_tx_note(&t, "expiry");
    harness_tx_cmd(&t, 2, "SET e1 1 PX 500");
    trk_sync(g, 1);
    harness_tx_cmd(&t, 0, "GET e1");
    harness_tx_reply(&t, 0);                      /* expired by Redis */
    harness_tx_note(&t, "flush");
    harness_tx_cmd(&t, 0, "GET k2");
    harness_tx_cmd(&t, 1, "FLUSHALL");
    harness_tx_reply(&t, 0);                      /* the null message */
    trk_sync(g, 2);
    harness_tx_cmd(&t, 0, "CLIENT TRACKINGINFO");
    harness_tx_cmd(&t, 0, "CLIENT TRACKING off");
    harness_tx_cmd(&t, 0, "GET k9");
    harness_tx_cmd(&t, 1, "SET k9 1");
    harness_tx_quiet(&t, 0);
    harness_tx_close(&t);
    return t.text;
}

Test(tracking, default_mode_invalidates_on_writes_anywhere_expiry_and_flush)
{
    trk_compare(__LINE__, "default mode, L1 off", trk_proxy, trk_default);
}

Test(tracking, default_mode_with_the_l1_on)
{
    trk_compare(__LINE__, "default mode, L1 on", trk_proxy_l1, trk_default);
}

/* ---- NOLOOP, OPTIN, OPTOUT -------------------------------------------------------- */

static char *trk_noloop(struct trk_target *g)
{
    harness_tx t;

    trk_open(&t, g, 3);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on NOLOOP");
    harness_tx_cmd(&t, 0, "GET a");
    harness_tx_cmd(&t, 0, "SET a 1");              /* its own write: no message */
    trk_sync(g, 1);
    harness_tx_quiet(&t, 0);
    harness_tx_cmd(&t, 0, "GET a");
    harness_tx_cmd(&t, 1, "SET a 2");              /* another client's: a message */
    harness_tx_reply(&t, 0);
    trk_sync(g, 1);
    harness_tx_cmd(&t, 0, "CLIENT TRACKINGINFO");
    harness_tx_close(&t);
    return t.text;
}

Test(tracking, noloop_skips_the_clients_own_writes)
{
    trk_compare(__LINE__, "NOLOOP", trk_proxy, trk_noloop);
}

static char *trk_optin(struct trk_target *g)
{
    harness_tx t;

    trk_open(&t, g, 3);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on OPTIN");
    harness_tx_cmd(&t, 0, "GET a");                /* not tracked */
    harness_tx_cmd(&t, 1, "SET a 1");
    trk_sync(g, 1);
    harness_tx_quiet(&t, 0);
    harness_tx_cmd(&t, 0, "CLIENT CACHING yes");
    harness_tx_cmd(&t, 0, "CLIENT TRACKINGINFO"); /* a CLIENT command keeps it */
    harness_tx_cmd(&t, 0, "GET a");                /* tracked */
    harness_tx_cmd(&t, 0, "GET b");                /* not: CACHING was for one command */
    harness_tx_cmd(&t, 1, "SET b 1");
    trk_sync(g, 1);
    harness_tx_quiet(&t, 0);
    harness_tx_cmd(&t, 1, "SET a 2");
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 0, "CLIENT CACHING no");    /* OPTOUT's */
    harness_tx_close(&t);
    return t.text;
}

Test(tracking, optin_tracks_only_after_client_caching_yes)
{
    trk_compare(__LINE__, "OPTIN", trk_proxy, trk_optin);
}

static char *trk_optout(struct trk_target *g)
{
    harness_tx t;

    trk_open(&t, g, 3);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on OPTOUT");
    harness_tx_cmd(&t, 0, "CLIENT CACHING no");
    harness_tx_cmd(&t, 0, "GET a");                /* not tracked */
    harness_tx_cmd(&t, 0, "GET b");                /* tracked */
    harness_tx_cmd(&t, 1, "SET a 1");
    harness_tx_cmd(&t, 1, "SET b 1");
    harness_tx_reply(&t, 0);                       /* b only */
    trk_sync(g, 2);
    harness_tx_quiet(&t, 0);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on OPTIN");   /* no switching */
    harness_tx_close(&t);
    return t.text;
}

Test(tracking, optout_tracks_unless_client_caching_no)
{
    trk_compare(__LINE__, "OPTOUT", trk_proxy, trk_optout);
}

/* ---- BCAST ------------------------------------------------------------------------ */

static char *trk_bcast(struct trk_target *g)
{
    harness_tx t;

    trk_open(&t, g, 3);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on BCAST PREFIX user: PREFIX obj:");
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on BCAST PREFIX us");     /* overlaps */
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on BCAST PREFIX a PREFIX ab");
    harness_tx_cmd(&t, 0, "CLIENT TRACKINGINFO");
    harness_tx_cmd(&t, 1, "SET user:1 a");
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 1, "SET other 1");         /* no prefix matches */
    harness_tx_cmd(&t, 2, "SET obj:2 b");
    harness_tx_reply(&t, 0);                       /* obj:2, not other */
    harness_tx_cmd(&t, 2, "SET user:3 x PX 100");
    harness_tx_reply(&t, 0);                       /* the write */
    harness_tx_reply(&t, 0);                       /* its expiry */
    harness_tx_cmd(&t, 2, "MSET user:a 1 obj:b 2 user:c 3 zz 4");
    harness_tx_reply(&t, 0);                       /* one message per prefix, its keys together */
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 1, "FLUSHALL");
    harness_tx_reply(&t, 0);
    trk_sync(g, 7);
    harness_tx_quiet(&t, 0);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on");  /* no switching BCAST off */
    harness_tx_close(&t);
    return t.text;
}

Test(tracking, bcast_prefixes_get_every_matching_change)
{
    trk_compare(__LINE__, "BCAST", trk_proxy, trk_bcast);
}

/* ---- REDIRECT --------------------------------------------------------------------- */

/* Wait until the target counts n connected clients (Redis: INFO; the
 * proxy: REDSNANO STATS). */
static void trk_wait_clients(const struct trk_target *g, long long n)
{
    redisContext *c = harness_connect(g->port);
    bool ok = g->proxy ? harness_wait_until(harness_proxy_stat_ll(c, "connected_clients") == n, TRK_WAIT_MS)
                       : harness_wait_until(harness_info_ll(c, "clients", "connected_clients") == n, TRK_WAIT_MS);
    redisFree(c);
    cr_assert(ok, "the target never counted %lld clients%s", n, harness_diag());
}

static char *trk_redirect(struct trk_target *g)
{
    harness_tx t;
    char line[96];

    trk_open(&t, g, 2);
    harness_tx_connect(&t, 3, g->port);
    harness_tx_send(&t, 3, "CLIENT ID");
    long long sub = harness_tx_reply_int(&t, 3);
    harness_tx_cmd(&t, 3, "SUBSCRIBE __redis__:invalidate");
    snprintf(line, sizeof(line), "CLIENT TRACKING on REDIRECT %lld", sub);
    harness_tx_send_as(&t, 0, line, "CLIENT TRACKING on REDIRECT (subscriber)");
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on REDIRECT 999999");  /* no such client */
    harness_tx_send(&t, 0, "CLIENT GETREDIR");
    cr_assert_eq(harness_tx_reply_int(&t, 0), sub);
    harness_tx_cmd(&t, 0, "GET r1");
    harness_tx_cmd(&t, 1, "SET r1 v");
    harness_tx_reply(&t, 3);                       /* __redis__:invalidate message */
    harness_tx_cmd(&t, 2, "FLUSHALL");
    harness_tx_reply(&t, 3);                       /* the null message */
    trk_sync(g, 2);
    harness_tx_note(&t, "the redirect client leaves");
    harness_tx_drop(&t, 3);
    trk_wait_clients(g, g->proxy ? 3 : 4);
    harness_tx_cmd(&t, 0, "GET r2");
    harness_tx_cmd(&t, 1, "SET r2 v");
    trk_sync(g, 1);
    harness_tx_quiet(&t, 0);                       /* RESP2: nowhere to say it */
    harness_tx_send(&t, 0, "CLIENT TRACKINGINFO");  /* broken_redirect */
    snprintf(line, sizeof(line), ":%lld\r\n", sub);
    harness_tx_reply_masked(&t, 0, line, ":(subscriber)\r\n");
    harness_tx_close(&t);
    return t.text;
}

Test(tracking, resp2_redirect_to_a_subscriber_and_its_loss)
{
    trk_compare(__LINE__, "REDIRECT (RESP2)", trk_proxy, trk_redirect);
}

static char *trk_redirect_broken(struct trk_target *g)
{
    harness_tx t;
    char line[96];

    trk_open(&t, g, 3);
    harness_tx_connect(&t, 3, g->port);
    harness_tx_send(&t, 3, "CLIENT ID");
    long long other = harness_tx_reply_int(&t, 3);
    snprintf(line, sizeof(line), "CLIENT TRACKING on REDIRECT %lld", other);
    harness_tx_send_as(&t, 0, line, "CLIENT TRACKING on REDIRECT (other)");
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 0, "GET x");
    harness_tx_drop(&t, 3);
    trk_wait_clients(g, g->proxy ? 3 : 4);
    harness_tx_cmd(&t, 1, "SET x 1");
    char *r = NULL;
    cr_assert_gt(harness_raw_reply(t.conn[0], TRK_WAIT_MS, &r), 0, "no tracking-redir-broken: %s", harness_error());
    cr_assert(strncmp(r, ">2\r\n$21\r\ntracking-redir-broken\r\n:", 33) == 0 && strtoll(r + 33, NULL, 10) == other,
              "%s", r);
    harness_tx_note(&t, "tracking-redir-broken with the redirect id");
    free(r);
    harness_tx_close(&t);
    return t.text;
}

Test(tracking, resp3_client_hears_its_redirect_is_gone)
{
    trk_compare(__LINE__, "tracking-redir-broken", trk_proxy, trk_redirect_broken);
}

/* ---- the proxy's own figures ----------------------------------------------------- */

/* The Redis link goes when the last client stops tracking, and comes
 * back; a tracking client's +OK waits for it. */
Test(tracking, link_to_redis_follows_the_tracking_clients)
{
    harness_skip_if_direct();
    harness_tx t;
    long long links = trk_stat(trk_proxy, "tracking_redis_links");

    harness_tx_open(&t, 2, trk_proxy->port);
    harness_tx_send(&t, 0, "HELLO 3");
    harness_tx_reply_type(&t, 0);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on");
    cr_assert_eq(trk_stat(trk_proxy, "tracking_clients"), 1);
    cr_assert_eq(trk_stat(trk_proxy, "tracking_redis_links"), links + 1, "the +OK came before the link");
    harness_tx_cmd(&t, 0, "GET lk");
    cr_assert_eq(trk_stat(trk_proxy, "tracking_keys"), 1);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING off");
    cr_assert(harness_wait_until(trk_stat(trk_proxy, "tracking_clients") == 0, TRK_WAIT_MS));
    cr_assert_eq(trk_stat(trk_proxy, "tracking_keys"), 0);
    harness_tx_close(&t);
    cr_assert_not_null(strstr(t.text, "0> +OK\r\n"), "%s", t.text);
    free(t.text);
    harness_proxy_check_exit(trk_proxy);
}

/* The tracking connection to Redis is lost (CLIENT KILL from outside): every
 * tracking client is told to flush, and tracking resumes. */
Test(tracking, lost_link_flushes_clients_and_comes_back)
{
    harness_skip_if_direct();
    harness_tx t;
    long long links = trk_stat(trk_proxy, "tracking_redis_links");

    harness_tx_open(&t, 2, trk_proxy->port);
    harness_tx_send(&t, 0, "HELLO 3");
    harness_tx_reply_type(&t, 0);
    harness_tx_cmd(&t, 0, "CLIENT TRACKING on");
    harness_tx_cmd(&t, 0, "GET lost");
    redisContext *d = harness_connect(trk_backend->port);
    redisReply *r = harness_cmd(d, "CLIENT LIST");
    /* The link: the RESP3 connection with CLIENT TRACKING on in BCAST mode. */
    long long kill_id = -1;
    for (char *line = r && r->str ? r->str : NULL; line && *line;) {
        char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        char one[2048];
        snprintf(one, sizeof(one), "%.*s", (int)(n < sizeof(one) ? n : sizeof(one) - 1), line);
        if (strstr(one, " flags=tB ") && strstr(one, " resp=3"))
            kill_id = strtoll(one + 3, NULL, 10);
        line = eol ? eol + 1 : NULL;
    }
    cr_assert_gt(kill_id, 0, "no tracking connection on Redis: %s", r ? r->str : "");
    freeReplyObject(r);
    r = harness_cmd(d, "CLIENT KILL ID %lld", kill_id);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    harness_tx_reply(&t, 0);                        /* flush at the loss */
    cr_assert(harness_wait_until(trk_stat(trk_proxy, "tracking_redis_links") == links + 2, TRK_WAIT_MS),
              "the link did not come back%s", harness_diag());
    harness_tx_reply(&t, 0);                        /* flush when back */
    harness_tx_cmd(&t, 0, "GET lost");
    harness_tx_cmd(&t, 1, "SET lost 1");
    harness_tx_reply(&t, 0);
    harness_tx_close(&t);
    redisFree(d);
    cr_assert_not_null(strstr(t.text, "0> >2\r\n$10\r\ninvalidate\r\n_\r\n\n0> >2\r\n$10\r\ninvalidate\r\n_\r\n"),
                       "%s", t.text);
    cr_assert_not_null(strstr(t.text, "0> >2\r\n$10\r\ninvalidate\r\n*1\r\n$4\r\nlost\r\n"), "%s", t.text);
    free(t.text);
    harness_proxy_check_exit(trk_proxy);
}

/* ---- a real client library --------------------------------------------------------- */

#define TRK_NODE_MS 60000             /* bound for the node-redis run */

/* Is prog on PATH? */
static bool trk_on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char full[4096];

    for (const char *p = path ? path : ""; *p;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        snprintf(full, sizeof(full), "%.*s/%s", (int)n, p, prog);
        if (access(full, X_OK) == 0)
            return true;
        if (colon == NULL)
            break;
        p = colon + 1;
    }
    return false;
}

/* node-redis 5, RESP3, clientSideCache on, through the proxy (L1 off and
 * on): cached reads are hits that never reach Redis, and a write through
 * the proxy, a write straight to Redis and a hash change are all seen
 * within 100 ms (tests/node/csc.mjs prints each check). */
Test(tracking, node_redis_client_side_cache_is_fresh_through_the_proxy, .timeout = 180)
{
    harness_skip_if_direct();
    const char *dir = getenv("REDSNANO_NODE_DIR") ? getenv("REDSNANO_NODE_DIR") : "tests/node";
    char script[1024], modules[1024], port[16], rport[16];
    struct stat st;

    if (!trk_on_path("node"))
        cr_skip_test("node is not installed: the node-redis client-side caching test is skipped");
    snprintf(script, sizeof(script), "%s/csc.mjs", dir);
    snprintf(modules, sizeof(modules), "%s/node_modules/redis", dir);
    if (stat(modules, &st) != 0)
        cr_skip_test("node-redis is not installed (run `npm ci` in %s): the client-side caching test is skipped",
                     dir);
    snprintf(rport, sizeof(rport), "%d", trk_backend->port);
    harness_proc *targets[] = { trk_proxy, trk_proxy_l1 };
    for (int i = 0; i < 2; i++) {
        char *out = NULL;
        snprintf(port, sizeof(port), "%d", targets[i]->port);
        const char *argv[] = { "node", script, port, rport, NULL };
        int status = harness_run_capture(argv, TRK_NODE_MS, &out);
        cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "node-redis through the proxy (%s): %s\n%s%s", i ? "L1 on" : "L1 off", harness_status_str(status),
                  out ? out : "", harness_diag());
        cr_assert_not_null(strstr(out, "ok 200 reads were cache hits"), "%s", out);
        cr_assert_null(strstr(out, "FAIL"), "%s", out);
        free(out);
        harness_proxy_check_exit(targets[i]);
    }
}
