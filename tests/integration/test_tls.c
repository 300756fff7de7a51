/*
 * test_tls.c — TLS on both sides of the proxy, with certificates made by
 * the test (openssl CLI: a CA, a server certificate for 127.0.0.1, a
 * client certificate, and a client certificate from another CA).
 *
 *   redis-cli --tls / redis-benchmark --tls ──TLS──▶ redsnano tls-port ──TLS──▶ redis (TLS only)
 *   hiredis (plain) ──────────────────────────────▶ redsnano port ─────┘
 *   raw socket, plaintext ────────────────────────▶ tls-port: closed
 *
 * The redis server starts with a plain port for the harness's readiness
 * probe and a TLS port; the test then turns the plain port off (CONFIG SET
 * port 0), so only TLS reaches it.
 *
 * Ports 7255-7269 (this file).
 */
#define _GNU_SOURCE                           /* memmem */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TLS_PORT_BASE 7255                    /* this file's port range start */
#define TLS_PORT(n) harness_port(TLS_PORT_BASE, (n))
#define TLS_UP_MS 10000                       /* bound for the backend to be up */
#define TLS_CLI_MS 20000                      /* bound for one redis-cli / redis-benchmark run */
#define TLS_REFUSE_MS 3000                    /* bound for a refused client to be closed */

static harness_proc *tls_redis;    /* TLS-only redis */
static harness_proc *tls_proxy;    /* the proxy */
static char tls_dir[512];          /* certificates */
static char tls_ports[4][16];      /* decimal ports: redis plain, redis TLS, proxy, proxy TLS */

static void tls_fini(void)
{
    harness_proxy_check_exit(tls_proxy);
    tls_proxy = NULL;
    harness_cleanup();
}

TestSuite(tls, .fini = tls_fini, .timeout = 180);

/* ---- certificates --------------------------------------------------------- */

static void tls_sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "command failed (%d): %s", rc, cmd);
}

static const char *tls_file(const char *name)
{
    static char paths[16][600];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, 600, "%s/%s", tls_dir, name);
    return p;
}

/* A key and certificate signed by ca (self-signed when ca is NULL). */
static void tls_cert(const char *name, const char *cn, const char *ca, const char *ext)
{
    const char *gen = "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

    if (ca == NULL) {
        tls_sh("cd %s && %s -x509 -days 2 -keyout %s.key -out %s.crt -subj '/CN=%s' "
               "-config t.cnf -extensions %s 2>>openssl.log", tls_dir, gen, name, name, cn, ext);
        return;
    }
    tls_sh("cd %s && %s -keyout %s.key -out %s.csr -subj '/CN=%s' -config t.cnf 2>>openssl.log"
           " && openssl x509 -req -days 2 -in %s.csr -CA %s.crt -CAkey %s.key -CAcreateserial"
           " -out %s.crt -extfile t.cnf -extensions %s 2>>openssl.log",
           tls_dir, gen, name, name, cn, name, ca, ca, name, ext);
}

static void tls_make_certs(void)
{
    snprintf(tls_dir, sizeof(tls_dir), "%s/certs", harness_tmpdir());
    tls_sh("mkdir -p %s", tls_dir);
    FILE *f = fopen(tls_file("t.cnf"), "w");
    cr_assert_not_null(f);
    fputs("[req]\ndistinguished_name = dn\n[dn]\n"
          "[ca_ext]\nbasicConstraints = critical,CA:true\n"
          "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
          "[server_ext]\nbasicConstraints = CA:false\n"
          "subjectAltName = DNS:localhost,IP:127.0.0.1\nextendedKeyUsage = serverAuth,clientAuth\n"
          "[client_ext]\nbasicConstraints = CA:false\nextendedKeyUsage = clientAuth\n", f);
    fclose(f);
    tls_cert("ca", "Test CA", NULL, "ca_ext");
    tls_cert("server", "localhost", "ca", "server_ext");
    tls_cert("client", "client", "ca", "client_ext");
    tls_cert("ca2", "Other CA", NULL, "ca_ext");
    tls_cert("client2", "client2", "ca2", "client_ext");
}

/* ---- set-up ------------------------------------------------------------------ */

/* A TLS-only redis, and the proxy with a TLS port (client certificates
 * required) in front of it over TLS. */
static void tls_start(void)
{
    char primary[32];

    tls_make_certs();
    for (int i = 0; i < 4; i++)
        snprintf(tls_ports[i], sizeof(tls_ports[i]), "%d", TLS_PORT(i));
    tls_redis = harness_redis_start(TLS_PORT(0), "--tls-port", tls_ports[1],
                                    "--tls-cert-file", tls_file("server.crt"),
                                    "--tls-key-file", tls_file("server.key"),
                                    "--tls-ca-cert-file", tls_file("ca.crt"),
                                    "--tls-auth-clients", "no");
    redisContext *c = harness_connect(tls_redis->port);
    harness_cmd_ok(c, "CONFIG SET port 0");
    redisFree(c);
    cr_assert_null(harness_try_connect(TLS_PORT(0), 500), "redis still listens in plaintext");

    snprintf(primary, sizeof(primary), "127.0.0.1:%d", TLS_PORT(1));
    tls_proxy = harness_proxy_start(TLS_PORT(2), "--primary", primary,
                                    "--tls-port", tls_ports[3],
                                    "--tls-cert-file", tls_file("server.crt"),
                                    "--tls-key-file", tls_file("server.key"),
                                    "--tls-ca-cert-file", tls_file("ca.crt"),
                                    "--tls-auth-clients", "yes",
                                    "--backend-tls", "yes",
                                    "--backend-tls-ca-cert-file", tls_file("ca.crt"),
                                    "--l1-maxmemory", "1mb", "--health-interval", "100");
    harness_diag_set(tls_proxy, NULL);
}

static bool tls_backend_up(redisContext *px)
{
    redisReply *r = harness_cmd(px, "REDSNANO BACKENDS");
    bool up = r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, "health=up") != NULL;
    if (r)
        freeReplyObject(r);
    return up;
}

/* Run redis-cli --tls against the proxy's TLS port with a client
 * certificate (cert NULL: none); returns its exit status, output in *out. */
static int tls_cli(const char *cert, char **out, const char *a1, const char *a2, const char *a3)
{
    char crt[64], key[64];
    const char *argv[20];
    int n = 0;

    argv[n++] = "redis-cli";
    argv[n++] = "--tls";
    argv[n++] = "--cacert";
    argv[n++] = tls_file("ca.crt");
    if (cert != NULL) {
        snprintf(crt, sizeof(crt), "%s.crt", cert);
        snprintf(key, sizeof(key), "%s.key", cert);
        argv[n++] = "--cert";
        argv[n++] = tls_file(crt);
        argv[n++] = "--key";
        argv[n++] = tls_file(key);
    }
    argv[n++] = "-p";
    argv[n++] = tls_ports[3];
    argv[n++] = a1;
    if (a2)
        argv[n++] = a2;
    if (a3)
        argv[n++] = a3;
    argv[n] = NULL;
    return harness_run_capture(argv, TLS_CLI_MS, out);
}

/* How often the proxy log says needle. */
static int tls_log_count(const char *needle)
{
    char *log = harness_log_tail(tls_proxy, 1 << 20);
    int n = 0;
    for (const char *p = log; (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(log);
    return n;
}

/* ---- tests ------------------------------------------------------------------- */

Test(tls, redis_cli_and_benchmark_over_tls_through_the_proxy_to_a_tls_only_redis)
{
    char *out = NULL;

    harness_skip_if_direct();
    tls_start();
    redisContext *px = harness_connect(tls_proxy->port);
    cr_assert(harness_wait_until(tls_backend_up(px), TLS_UP_MS), "backend over TLS not up");

    cr_assert_eq(tls_cli("client", &out, "SET", "tls:k", "v1"), 0, "%s", out);
    cr_assert(strstr(out, "OK") != NULL, "%s", out);
    free(out);
    cr_assert_eq(tls_cli("client", &out, "GET", "tls:k", NULL), 0, "%s", out);
    cr_assert(strstr(out, "v1") != NULL, "%s", out);
    free(out);
    /* the plain port reaches the same TLS backend */
    harness_expect_bulk(px, "v1", "GET tls:k");
    harness_cmd_ok(px, "SET tls:k v2");
    cr_assert_eq(tls_cli("client", &out, "GET", "tls:k", NULL), 0, "%s", out);
    cr_assert(strstr(out, "v2") != NULL, "%s", out);
    free(out);

    /* pipelined load over TLS on both sides */
    const char *bench[] = { "redis-benchmark", "--tls", "--cacert", tls_file("ca.crt"),
                            "--cert", tls_file("client.crt"), "--key", tls_file("client.key"),
                            "-p", tls_ports[3], "-t", "set,get", "-n", "20000", "-c", "20",
                            "-P", "16", "-q", NULL };
    int st = harness_run_capture(bench, TLS_CLI_MS * 3, &out);
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strstr(out, "GET:") != NULL && strstr(out, "requests per second") != NULL, "%s", out);
    cr_assert_null(strstr(out, "rror"), "%s", out);
    free(out);
    cr_assert_eq(tls_log_count("TLS client"), 0, "no TLS failures expected");
    harness_expect_status(px, "PONG", "PING");
    redisFree(px);
}

Test(tls, plaintext_on_the_tls_port_is_refused_and_logged_once)
{
    char *out = NULL;

    harness_skip_if_direct();
    tls_start();
    harness_raw *raw = harness_raw_open(TLS_PORT(3));
    cr_assert_not_null(raw, "%s", harness_error());
    cr_assert_eq(harness_raw_sends(raw, "*1\r\n$4\r\nPING\r\n"), 0);
    cr_assert_eq(harness_raw_wait_eof(raw, TLS_REFUSE_MS), 0, "plaintext client not closed");
    cr_assert(raw->len == 0 || memmem(raw->buf, raw->len, "PONG", 4) == NULL, "answered in plaintext");
    harness_raw_close(raw, false);
    cr_assert(harness_wait_until(tls_log_count("TLS handshake failed") == 1, TLS_REFUSE_MS),
              "one log line for the refused client");

    /* others continue */
    cr_assert_eq(tls_cli("client", &out, "PING", NULL, NULL), 0, "%s", out);
    cr_assert(strstr(out, "PONG") != NULL, "%s", out);
    free(out);
    redisContext *px = harness_connect(tls_proxy->port);
    cr_assert_eq(harness_proxy_stat_ll(px, "tls_failures"), 1);
    redisFree(px);
}

Test(tls, client_certificate_from_another_ca_or_none_is_refused_with_auth_clients_yes)
{
    char *out = NULL;

    harness_skip_if_direct();
    tls_start();
    tls_cli("client2", &out, "PING", NULL, NULL);
    cr_assert_null(strstr(out, "PONG"), "another CA's certificate accepted: %s", out);
    free(out);
    cr_assert(harness_wait_until(tls_log_count("certificate verify failed") == 1, TLS_REFUSE_MS),
              "refusal not logged with its reason");

    tls_cli(NULL, &out, "PING", NULL, NULL);
    cr_assert_null(strstr(out, "PONG"), "no certificate accepted: %s", out);
    free(out);
    cr_assert(harness_wait_until(tls_log_count("did not return a certificate") == 1, TLS_REFUSE_MS),
              "refusal not logged with its reason");

    cr_assert_eq(tls_cli("client", &out, "PING", NULL, NULL), 0, "%s", out);
    cr_assert(strstr(out, "PONG") != NULL, "%s", out);
    free(out);
}

Test(tls, backend_with_an_untrusted_certificate_is_down_with_the_reason)
{
    char primary[32];

    harness_skip_if_direct();
    tls_make_certs();
    snprintf(tls_ports[1], sizeof(tls_ports[1]), "%d", TLS_PORT(1));
    tls_redis = harness_redis_start(TLS_PORT(0), "--tls-port", tls_ports[1],
                                    "--tls-cert-file", tls_file("server.crt"),
                                    "--tls-key-file", tls_file("server.key"),
                                    "--tls-ca-cert-file", tls_file("ca.crt"),
                                    "--tls-auth-clients", "no");
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", TLS_PORT(1));
    tls_proxy = harness_proxy_start(TLS_PORT(2), "--primary", primary, "--backend-tls", "yes",
                                    "--backend-tls-ca-cert-file", tls_file("ca2.crt"),
                                    "--health-interval", "100");
    harness_diag_set(tls_proxy, NULL);
    redisContext *px = harness_connect(tls_proxy->port);
    redisReply *r = harness_expect_error(px, "ERR redsnano: backend", "GET k");
    cr_assert(strstr(r->str, "TLS failed: certificate verify failed") != NULL, "%s", r->str);
    freeReplyObject(r);
    redisFree(px);
}

/* A reload takes new certificates for new connections: here the CA that
 * client certificates are checked against changes from ca to ca2. */
Test(tls, reload_swaps_certificates_for_new_connections)
{
    char primary[32], conf[600], text[2048];

    harness_skip_if_direct();
    tls_make_certs();
    for (int i = 0; i < 4; i++)
        snprintf(tls_ports[i], sizeof(tls_ports[i]), "%d", TLS_PORT(i));
    tls_redis = harness_redis_start(TLS_PORT(0));
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", TLS_PORT(0));
    snprintf(conf, sizeof(conf), "%s/reload.conf", tls_dir);
    const char *fmt = "primary %s\ntls-port %s\ntls-cert-file %s\ntls-key-file %s\n"
                      "tls-auth-clients yes\ntls-ca-cert-file %s\n";
    char server_crt[512], server_key[512];
    snprintf(server_crt, sizeof(server_crt), "%s", tls_file("server.crt"));
    snprintf(server_key, sizeof(server_key), "%s", tls_file("server.key"));
    snprintf(text, sizeof(text), fmt, primary, tls_ports[3], server_crt, server_key, tls_file("ca.crt"));
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    tls_proxy = harness_proxy_start(TLS_PORT(2), "--config", conf);
    harness_diag_set(tls_proxy, NULL);

    char *out = NULL;
    cr_assert_eq(tls_cli("client", &out, "PING", NULL, NULL), 0, "%s", out);
    cr_assert(strstr(out, "PONG") != NULL, "%s", out);
    free(out);
    cr_assert(tls_cli("client2", &out, "PING", NULL, NULL) != 0 || strstr(out, "PONG") == NULL,
              "a certificate of the other CA was accepted before the reload: %s", out);
    free(out);

    /* The CA changes in the file; a reload takes it for new connections. */
    snprintf(text, sizeof(text), fmt, primary, tls_ports[3], server_crt, server_key, tls_file("ca2.crt"));
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    redisContext *px = harness_connect(TLS_PORT(2));
    harness_cmd_ok(px, "REDSNANO CONFIG RELOAD");
    cr_assert_eq(tls_cli("client2", &out, "PING", NULL, NULL), 0, "%s", out);
    cr_assert(strstr(out, "PONG") != NULL, "after the reload, client2: %s", out);
    free(out);
    cr_assert(tls_cli("client", &out, "PING", NULL, NULL) != 0 || strstr(out, "PONG") == NULL,
              "a certificate of the old CA is still accepted after the reload: %s", out);
    free(out);

    /* A certificate file that does not load refuses the reload whole. */
    snprintf(text, sizeof(text), fmt, primary, tls_ports[3], "/nonexistent/server.crt", server_key,
             tls_file("ca.crt"));
    f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    freeReplyObject(harness_expect_error(px, "ERR tls-port", "REDSNANO CONFIG RELOAD"));
    cr_assert_eq(tls_cli("client2", &out, "PING", NULL, NULL), 0, "%s", out);
    cr_assert(strstr(out, "PONG") != NULL, "the refused reload changed the certificates: %s", out);
    free(out);
    redisFree(px);
}

/* ---- Sentinels over TLS ------------------------------------------------------- */

/* A Sentinel's (plain port, requirepass sentpw) answer to SENTINEL sub m;
 * NULL when unreachable. */
static redisReply *tls_sentinel_cmd(const char *sub)
{
    redisContext *c = harness_try_connect(TLS_PORT(6), 500);
    redisReply *r = NULL;

    if (c == NULL)
        return NULL;
    redisReply *a = harness_cmd(c, "AUTH sentpw");
    if (a != NULL && a->type == REDIS_REPLY_STATUS)
        r = harness_cmd(c, "SENTINEL %s m", sub);
    if (a)
        freeReplyObject(a);
    redisFree(c);
    return r;
}

/* Does the Sentinel know the replica, linked over TLS? */
static bool tls_sentinel_knows_replica(void)
{
    redisReply *r = tls_sentinel_cmd("replicas");
    bool ok = false;

    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const redisReply *e = r->element[0];
        for (size_t i = 0; i + 1 < e->elements; i += 2)
            if (strcmp(e->element[i]->str, "master-link-status") == 0)
                ok = strcmp(e->element[i + 1]->str, "ok") == 0;
    }
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Does REDSNANO BACKENDS name 127.0.0.1:port as the primary? */
static bool tls_primary_is(redisContext *px, int port)
{
    char want[64];
    redisReply *r = harness_cmd(px, "REDSNANO BACKENDS");
    snprintf(want, sizeof(want), "primary:addr=127.0.0.1:%d,", port);
    bool is = r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, want) != NULL;
    if (r)
        freeReplyObject(r);
    return is;
}

/* Does a SET through px succeed? */
static bool tls_set_ok(redisContext *px, const char *key, const char *value)
{
    redisReply *r = harness_cmd(px, "SET %s %s", key, value);
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Does p's log hold a (and b, when not NULL)? */
static bool tls_log_has(const harness_proc *p, const char *a, const char *b)
{
    char *log = harness_log_tail(p, 1 << 20);
    bool has = strstr(log, a) != NULL && (b == NULL || strstr(log, b) != NULL);
    free(log);
    return has;
}

/* A TLS-only deployment followed through its Sentinel: the Sentinel's
 * tls-port with requirepass (sentinel-tls, sentinel-password), the data on
 * TLS ports (backend-tls). The proxy is started with the wrong primary (the
 * replica): the Sentinel names the right one, then a failover is followed;
 * a wrong sentinel-password is refused and logged with the directive. */
Test(tls, sentinel_over_tls_with_a_password_names_the_primary_and_a_failover_is_followed)
{
    char rep_tls[16], sen_tls[16], replicaof[16], sentinel[32], wrong_primary[32], conf[2048];

    harness_skip_if_direct();
    tls_make_certs();
    snprintf(tls_ports[1], sizeof(tls_ports[1]), "%d", TLS_PORT(1));
    snprintf(rep_tls, sizeof(rep_tls), "%d", TLS_PORT(5));
    snprintf(sen_tls, sizeof(sen_tls), "%d", TLS_PORT(7));
    snprintf(replicaof, sizeof(replicaof), "%d", TLS_PORT(1));
    const char *tls_args[] = { "--tls-cert-file", tls_file("server.crt"), "--tls-key-file", tls_file("server.key"),
                               "--tls-ca-cert-file", tls_file("ca.crt"), "--tls-auth-clients", "no" };
    tls_redis = harness_redis_start(TLS_PORT(0), "--tls-port", tls_ports[1], tls_args[0], tls_args[1],
                                    tls_args[2], tls_args[3], tls_args[4], tls_args[5], tls_args[6], tls_args[7]);
    harness_redis_start(TLS_PORT(4), "--tls-port", rep_tls, tls_args[0], tls_args[1], tls_args[2], tls_args[3],
                        tls_args[4], tls_args[5], tls_args[6], tls_args[7], "--tls-replication", "yes",
                        "--replicaof", "127.0.0.1", replicaof);
    snprintf(conf, sizeof(conf),
             "tls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n"
             "tls-auth-clients no\ntls-replication yes\nrequirepass sentpw\n"
             "sentinel monitor m 127.0.0.1 %d 1\nsentinel down-after-milliseconds m 1000\n"
             "sentinel failover-timeout m 5000",
             TLS_PORT(7), tls_args[1], tls_args[3], tls_args[5], TLS_PORT(1));
    harness_sentinel_start(TLS_PORT(6), conf);
    cr_assert(harness_wait_until(tls_sentinel_knows_replica(), TLS_UP_MS * 2),
              "the Sentinel never saw the replica linked over TLS");

    snprintf(sentinel, sizeof(sentinel), "127.0.0.1:%d", TLS_PORT(7));
    snprintf(wrong_primary, sizeof(wrong_primary), "127.0.0.1:%d", TLS_PORT(5));
    tls_proxy = harness_proxy_start_unready(TLS_PORT(2), "--primary", wrong_primary,
                                            "--sentinel", sentinel, "--sentinel-master", "m",
                                            "--sentinel-password", "sentpw", "--sentinel-tls", "yes",
                                            "--backend-tls", "yes", "--backend-tls-ca-cert-file", tls_file("ca.crt"),
                                            "--health-interval", "100");
    harness_diag_set(tls_proxy, NULL);
    redisContext *px = harness_connect(tls_proxy->port);
    cr_assert(harness_wait_until(tls_primary_is(px, TLS_PORT(1)), TLS_UP_MS),
              "the TLS Sentinel did not name the primary's TLS port; log:\n%s", harness_log_tail(tls_proxy, 3000));
    harness_cmd_ok(px, "SET sen:k v1");
    harness_expect_bulk(px, "v1", "GET sen:k");

    redisReply *r = tls_sentinel_cmd("failover");
    cr_assert(r != NULL && r->type == REDIS_REPLY_STATUS, "SENTINEL FAILOVER: %s", harness_reply_str(r));
    freeReplyObject(r);
    long long t0 = harness_now_ms();
    cr_assert(harness_wait_until(tls_primary_is(px, TLS_PORT(5)), TLS_UP_MS),
              "the failover was not followed; log:\n%s", harness_log_tail(tls_proxy, 3000));
    cr_log_info("the proxy named the new primary %lld ms after SENTINEL FAILOVER", harness_now_ms() - t0);
    /* Writes land on the new primary (it may still be finishing its switch). */
    cr_assert(harness_wait_until(tls_set_ok(px, "sen:k", "v2"), TLS_UP_MS), "no write succeeded on the new primary");
    harness_expect_bulk(px, "v2", "GET sen:k");
    redisFree(px);

    /* The wrong password: refused, logged with the directive to check. */
    char primary[32];
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", TLS_PORT(5));
    harness_proc *bad = harness_proxy_start_unready(TLS_PORT(8), "--primary", primary,
                                                    "--sentinel", sentinel, "--sentinel-master", "m",
                                                    "--sentinel-password", "nope", "--sentinel-tls", "yes",
                                                    "--backend-tls", "yes",
                                                    "--backend-tls-ca-cert-file", tls_file("ca.crt"),
                                                    "--health-interval", "100");
    cr_assert(harness_wait_until(tls_log_has(bad, "refused the proxy's credentials", "(check sentinel-password)"),
                                 TLS_UP_MS),
              "a wrong sentinel-password was not logged; log:\n%s", harness_log_tail(bad, 3000));
    cr_assert(!tls_log_has(bad, "nope", NULL), "the password appears in the log");
    harness_proxy_check_exit(bad);
}
