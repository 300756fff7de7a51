/*
 * tests/unit/test_tls.c — base/tls.c, the TLS engine over memory BIOs.
 *
 *   fixture: openssl CLI -> CA, server cert (localhost, 127.0.0.1),
 *            client cert, second CA + client cert, in a temp dir
 *   memory:  client tls_conn <--t_pump (bytes, any piece size)--> server tls_conn
 *   sockets: libuv + tls_conn client -> redis-server --tls-port 9731
 *            redis-cli --tls -> libuv + tls_conn server on 9732
 *
 * The memory tests prove the engine's contracts without a socket: the
 * handshake in both roles, data both ways in big and 1-byte pieces,
 * plaintext written before the handshake, every refusal with its reason
 * (protocol mismatch, missing or foreign client certificate, wrong name,
 * foreign server CA, plaintext on a TLS port), close_notify, sticky
 * failures and the ctx reference count. The socket tests prove it talks to
 * real TLS peers through a uv_stream.
 */
#define _GNU_SOURCE               /* memmem */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "base/tls.h"

#define T_REDIS_PORT 9731          /* redis-server --tls-port */
#define T_ECHO_PORT 9732           /* our TLS server for redis-cli (and the next port) */
#define T_SOCKET_MS 10000          /* bound for a socket test's loop */
#define T_BIG (1024 * 1024 + 7)    /* bytes sent each way in the big test */

static char t_dir[64];             /* temp dir with the certificates */

/* A file in the temp dir; the pointer stays valid for the whole test. */
static const char *t_path(const char *name)
{
    static struct { char name[32]; char path[128]; } tab[32];
    size_t i;

    for (i = 0; i < 32 && tab[i].name[0]; i++)
        if (strcmp(tab[i].name, name) == 0)
            return tab[i].path;
    cr_assert_lt(i, 32);
    snprintf(tab[i].name, sizeof(tab[i].name), "%s", name);
    snprintf(tab[i].path, sizeof(tab[i].path), "%s/%s", t_dir, name);
    return tab[i].path;
}

static void t_sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "command failed (%d): %s", rc, cmd);
}

/* A key and a certificate signed by ca (or self-signed when ca is NULL). */
static void t_cert(const char *name, const char *cn, const char *ca, const char *ext)
{
    const char *gen = "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

    if (ca == NULL) {
        t_sh("cd %s && %s -x509 -days 2 -keyout %s.key -out %s.crt -subj '/CN=%s' "
             "-config t.cnf -extensions %s 2>>openssl.log", t_dir, gen, name, name, cn, ext);
        return;
    }
    t_sh("cd %s && %s -keyout %s.key -out %s.csr -subj '/CN=%s' -config t.cnf 2>>openssl.log"
         " && openssl x509 -req -days 2 -in %s.csr -CA %s.crt -CAkey %s.key -CAcreateserial"
         " -out %s.crt -extfile t.cnf -extensions %s 2>>openssl.log",
         t_dir, gen, name, name, cn, name, ca, ca, name, ext);
}

static void t_certs(void)
{
    snprintf(t_dir, sizeof(t_dir), "/tmp/rs-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(t_dir));
    FILE *f = fopen(t_path("t.cnf"), "w");
    cr_assert_not_null(f);
    fputs("[req]\ndistinguished_name = dn\n[dn]\n"
          "[ca_ext]\nbasicConstraints = critical,CA:true\n"
          "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
          "[server_ext]\nbasicConstraints = CA:false\n"
          "subjectAltName = DNS:localhost,IP:127.0.0.1\nextendedKeyUsage = serverAuth\n"
          "[client_ext]\nbasicConstraints = CA:false\nextendedKeyUsage = clientAuth\n", f);
    fclose(f);
    t_cert("ca", "Test CA", NULL, "ca_ext");
    t_cert("server", "localhost", "ca", "server_ext");
    t_cert("client", "client", "ca", "client_ext");
    t_cert("ca2", "Other CA", NULL, "ca_ext");
    t_cert("client2", "client2", "ca2", "client_ext");
}

static void t_cleanup(void)
{
    if (t_dir[0] && getenv("TLS_TEST_KEEP") == NULL)
        t_sh("rm -rf %s", t_dir);
}

TestSuite(tls, .init = t_certs, .fini = t_cleanup, .timeout = 60);

/* ---- configurations ---------------------------------------------------- */

static struct tls_opts t_server_opts(void)
{
    return (struct tls_opts){
        .cert_file = (t_path("server.crt")),
        .key_file = (t_path("server.key")),
        .ca_file = (t_path("ca.crt")),
        .auth_clients = TLS_AUTH_NO,
    };
}

static struct tls_opts t_client_opts(void)
{
    return (struct tls_opts){ .ca_file = (t_path("ca.crt")), .server_name = "localhost" };
}

static struct tls_ctx *t_ctx(const struct tls_opts *o, int server)
{
    char err[512] = "";
    struct tls_ctx *ctx = server ? tls_ctx_new_server(o, err, sizeof(err))
                                 : tls_ctx_new_client(o, err, sizeof(err));
    cr_assert_not_null(ctx, "ctx: %s", err);
    return ctx;
}

/* ---- an engine pair in memory ------------------------------------------- */

struct t_end {
    struct tls_conn *c;            /* the engine */
    struct buf plain;              /* plaintext read from it */
    int eof;                       /* tls_read returned TLS_EOF */
    long err;                      /* first negative tls_read / tls_feed result */
};

static void t_read_all(struct t_end *e)
{
    char tmp[5000];
    long n;

    while ((n = tls_read(e->c, tmp, sizeof(tmp))) > 0)
        cr_assert_eq(buf_append(&e->plain, tmp, (size_t)n), 0);
    if (n == TLS_EOF)
        e->eof = 1;
    else if (n < 0 && e->err == 0)
        e->err = n;
}

/* Move from's ciphertext into to, in pieces of at most piece bytes.
 * Returns the bytes moved. */
static size_t t_move(struct t_end *from, struct t_end *to, size_t piece)
{
    const char *p;
    size_t n, moved = 0;

    while (tls_pending_out(from->c, &p, &n) > 0) {
        size_t k = n < piece ? n : piece;
        int rc = tls_feed(to->c, p, k);
        tls_consume_out(from->c, k);
        moved += k;
        if (rc < 0 && to->err == 0)
            to->err = rc;
        t_read_all(to);
    }
    return moved;
}

/* Shuttle bytes both ways until both engines are quiet. */
static void t_pump(struct t_end *a, struct t_end *b, size_t piece)
{
    for (int i = 0; i < 10000; i++) {
        size_t moved = t_move(a, b, piece);
        moved += t_move(b, a, piece);
        if (moved == 0)
            return;
    }
    cr_assert_fail("engines never went quiet");
}

static void t_end_free(struct t_end *e)
{
    tls_conn_free(e->c);
    buf_free(&e->plain);
}

/* A client and a server from the given options, handshaken. */
static void t_pair(const struct tls_opts *so, const struct tls_opts *co, struct t_end *s,
                   struct t_end *c)
{
    struct tls_ctx *sctx = t_ctx(so, 1), *cctx = t_ctx(co, 0);

    memset(s, 0, sizeof(*s));
    memset(c, 0, sizeof(*c));
    s->c = tls_conn_new(sctx, NULL);
    c->c = tls_conn_new(cctx, NULL);
    cr_assert(s->c && c->c);
    tls_ctx_unref(sctx);           /* the connections keep their ctx alive */
    tls_ctx_unref(cctx);
    t_pump(c, s, SIZE_MAX);
}

static int t_plain_is(const struct t_end *e, const char *s)
{
    return buf_unread(&e->plain) == strlen(s) && memcmp(e->plain.data + e->plain.pos, s, strlen(s)) == 0;
}

#define T_REASON_HAS(end, text) \
    cr_assert(strstr(tls_reason((end)->c), (text)) != NULL, "reason '%s' lacks '%s'", \
              tls_reason((end)->c), (text))

/* ---- handshake and data ------------------------------------------------- */

Test(tls, handshake_then_ping_pong_written_before_it_completes)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct tls_ctx *sctx = t_ctx(&so, 1), *cctx = t_ctx(&co, 0);
    struct t_end s = { .c = tls_conn_new(sctx, NULL) }, c = { .c = tls_conn_new(cctx, NULL) };

    tls_ctx_unref(sctx);
    tls_ctx_unref(cctx);
    const char *hello;
    size_t n;
    cr_assert_gt(tls_pending_out(c.c, &hello, &n), 0, "the ClientHello waits at once");
    cr_assert_eq(tls_write(c.c, "PING\r\n", 6), 0, "buffered until the handshake is done");
    t_pump(&c, &s, SIZE_MAX);
    cr_assert(tls_handshake_done(c.c) && tls_handshake_done(s.c));
    cr_assert_eq(s.err, 0, "%s", tls_reason(s.c));
    cr_assert(t_plain_is(&s, "PING\r\n"));
    cr_assert_str_eq(tls_version(c.c), "TLSv1.3");
    cr_assert_str_eq(tls_version(s.c), "TLSv1.3");
    cr_assert_str_neq(tls_cipher(s.c), "");
    cr_assert(tls_peer_verified(c.c), "the client verified the server");
    cr_assert_not(tls_peer_verified(s.c), "auth-clients no: nothing to verify");
    cr_assert_eq(tls_write(s.c, "+PONG\r\n", 7), 0);
    t_pump(&c, &s, SIZE_MAX);
    cr_assert(t_plain_is(&c, "+PONG\r\n"));
    cr_assert_str_eq(tls_reason(c.c), "");
    t_end_free(&s);
    t_end_free(&c);
}

/* Send len bytes of a pattern from a to b in pieces, check they arrive whole. */
static void t_transfer(struct t_end *a, struct t_end *b, size_t len, size_t wpiece, size_t fpiece,
                       unsigned seed)
{
    char *data = malloc(len);
    cr_assert_not_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)((i * 31 + seed) ^ (i >> 8));
    buf_reset(&b->plain);
    for (size_t off = 0; off < len; off += wpiece) {
        size_t k = len - off < wpiece ? len - off : wpiece;
        cr_assert_eq(tls_write(a->c, data + off, k), 0);
        if (wpiece < 64)
            t_pump(a, b, fpiece);  /* 1-byte writes: one record each, moved at once */
    }
    t_pump(a, b, fpiece);
    cr_assert_eq(buf_unread(&b->plain), len);
    cr_assert(memcmp(b->plain.data + b->plain.pos, data, len) == 0, "bytes differ");
    free(data);
}

Test(tls, a_megabyte_each_way_in_big_writes)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    t_pair(&so, &co, &s, &c);
    t_transfer(&c, &s, T_BIG, T_BIG, SIZE_MAX, 1);
    t_transfer(&s, &c, T_BIG, 100000, 65536, 2);
    cr_assert_eq(s.err + c.err, 0);
    t_end_free(&s);
    t_end_free(&c);
}

Test(tls, handshake_and_data_fed_one_byte_at_a_time)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct tls_ctx *sctx = t_ctx(&so, 1), *cctx = t_ctx(&co, 0);
    struct t_end s = { .c = tls_conn_new(sctx, NULL) }, c = { .c = tls_conn_new(cctx, NULL) };

    tls_ctx_unref(sctx);
    tls_ctx_unref(cctx);
    t_pump(&c, &s, 1);
    cr_assert(tls_handshake_done(c.c) && tls_handshake_done(s.c));
    t_transfer(&c, &s, 300, 1, 1, 3);
    t_transfer(&s, &c, 20000, 7000, 1, 4);
    cr_assert_eq(s.err + c.err, 0);
    t_end_free(&s);
    t_end_free(&c);
}

Test(tls, tls12_works_and_ciphersuites_are_applied)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    so.protocols = "TLSv1.2";
    so.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
    t_pair(&so, &co, &s, &c);
    cr_assert_str_eq(tls_version(c.c), "TLSv1.2");
    cr_assert_str_eq(tls_cipher(c.c), "ECDHE-ECDSA-AES128-GCM-SHA256");
    t_transfer(&c, &s, 5000, 5000, SIZE_MAX, 5);
    t_end_free(&s);
    t_end_free(&c);

    so.protocols = NULL;
    so.ciphers = NULL;
    so.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";
    t_pair(&so, &co, &s, &c);
    cr_assert_str_eq(tls_cipher(s.c), "TLS_CHACHA20_POLY1305_SHA256");
    t_end_free(&s);
    t_end_free(&c);
}

/* ---- refusals ----------------------------------------------------------- */

Test(tls, tls12_only_server_refuses_a_tls13_only_client)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    so.protocols = "TLSv1.2";
    co.protocols = "TLSv1.3";
    t_pair(&so, &co, &s, &c);
    cr_assert_eq(tls_status(s.c), -EPROTO);
    cr_assert_eq(tls_status(c.c), -EPROTO);
    cr_assert_not(tls_handshake_done(c.c));
    T_REASON_HAS(&s, "unsupported protocol");
    T_REASON_HAS(&c, "protocol version");    /* the server's alert */
    t_end_free(&s);
    t_end_free(&c);
}

Test(tls, required_client_cert_missing_fails_on_both_sides)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    so.auth_clients = TLS_AUTH_YES;
    t_pair(&so, &co, &s, &c);
    cr_assert_eq(tls_status(s.c), -EPROTO);
    T_REASON_HAS(&s, "peer did not return a certificate");
    /* TLS 1.3: the client finished first, the alert reaches it as a read error. */
    cr_assert_eq(c.err, -EPROTO);
    T_REASON_HAS(&c, "certificate required");
    cr_assert_eq(tls_write(c.c, "x", 1), -EPROTO, "failures are sticky");
    t_end_free(&s);
    t_end_free(&c);
}

Test(tls, required_client_cert_present_is_verified)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    so.auth_clients = TLS_AUTH_YES;
    co.cert_file = t_path("client.crt");
    co.key_file = t_path("client.key");
    t_pair(&so, &co, &s, &c);
    cr_assert_eq(tls_status(s.c), 0, "%s", tls_reason(s.c));
    cr_assert(tls_peer_verified(s.c));
    t_transfer(&c, &s, 100, 100, SIZE_MAX, 6);
    cr_assert_eq(c.err, 0, "%s", tls_reason(c.c));
    t_end_free(&s);
    t_end_free(&c);
}

Test(tls, optional_client_cert_may_be_absent)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    so.auth_clients = TLS_AUTH_OPTIONAL;
    t_pair(&so, &co, &s, &c);
    t_transfer(&c, &s, 100, 100, SIZE_MAX, 7);
    cr_assert_eq(tls_status(s.c), 0, "%s", tls_reason(s.c));
    cr_assert_not(tls_peer_verified(s.c));
    t_end_free(&s);
    t_end_free(&c);
}

Test(tls, client_cert_from_another_ca_is_refused)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    so.auth_clients = TLS_AUTH_YES;
    co.cert_file = t_path("client2.crt");
    co.key_file = t_path("client2.key");
    t_pair(&so, &co, &s, &c);
    cr_assert_eq(tls_status(s.c), -EPROTO);
    T_REASON_HAS(&s, "certificate verify failed: unable to get local issuer certificate");
    cr_assert_eq(c.err, -EPROTO);
    T_REASON_HAS(&c, "alert unknown ca");
    t_end_free(&s);
    t_end_free(&c);
}

Test(tls, server_name_must_match_the_certificate)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    co.server_name = "redis.example.com";
    t_pair(&so, &co, &s, &c);
    cr_assert_eq(tls_status(c.c), -EPROTO);
    T_REASON_HAS(&c, "certificate verify failed: hostname mismatch");
    cr_assert_eq(tls_status(s.c), -EPROTO, "the client's alert reaches the server");
    T_REASON_HAS(&s, "bad certificate");
    t_end_free(&s);
    t_end_free(&c);
}

Test(tls, per_connection_name_overrides_and_ip_literals_match_ip_sans)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct tls_ctx *sctx = t_ctx(&so, 1), *cctx = t_ctx(&co, 0);
    static const struct { const char *name; const char *reason; } cases[] = {
        { "127.0.0.1", NULL },
        { "127.0.0.2", "IP address mismatch" },
        { "other.example", "hostname mismatch" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct t_end s = { .c = tls_conn_new(sctx, NULL) };
        struct t_end c = { .c = tls_conn_new(cctx, cases[i].name) };
        t_pump(&c, &s, SIZE_MAX);
        if (cases[i].reason == NULL) {
            cr_assert_eq(tls_status(c.c), 0, "%s: %s", cases[i].name, tls_reason(c.c));
            cr_assert(tls_peer_verified(c.c));
        } else {
            cr_assert_eq(tls_status(c.c), -EPROTO, "%s", cases[i].name);
            T_REASON_HAS(&c, cases[i].reason);
        }
        t_end_free(&s);
        t_end_free(&c);
    }
    tls_ctx_unref(sctx);
    tls_ctx_unref(cctx);
}

Test(tls, server_signed_by_an_untrusted_ca_is_refused)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    co.ca_file = t_path("ca2.crt");
    t_pair(&so, &co, &s, &c);
    cr_assert_eq(tls_status(c.c), -EPROTO);
    /* OpenSSL completes the server's chain from its CA file, so the client
     * sees our CA as an untrusted root. */
    T_REASON_HAS(&c, "certificate verify failed: self-signed certificate in certificate chain");
    t_end_free(&s);
    t_end_free(&c);

    co.insecure = 1;               /* unless verification is off */
    t_pair(&so, &co, &s, &c);
    cr_assert_eq(tls_status(c.c), 0, "%s", tls_reason(c.c));
    cr_assert(tls_handshake_done(c.c));
    cr_assert_not(tls_peer_verified(c.c));
    t_end_free(&s);
    t_end_free(&c);
}

Test(tls, plaintext_ping_on_a_tls_port_fails_with_wrong_version_number)
{
    struct tls_opts so = t_server_opts();
    struct tls_ctx *sctx = t_ctx(&so, 1);
    struct tls_conn *s = tls_conn_new(sctx, NULL);

    tls_ctx_unref(sctx);
    cr_assert_eq(tls_feed(s, "PING\r\n", 6), -EPROTO);
    cr_assert_eq(tls_status(s), -EPROTO);
    cr_assert_str_eq(tls_reason(s), "wrong version number");
    cr_assert_eq(tls_feed(s, "PING\r\n", 6), -EPROTO, "sticky: no more parsing");
    char tmp[16];
    cr_assert_eq(tls_read(s, tmp, sizeof(tmp)), -EPROTO);
    tls_conn_free(s);
}

Test(tls, garbage_after_the_handshake_fails_the_connection)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    t_pair(&so, &co, &s, &c);
    static const char junk[] = "\x17\x03\x03\x00\x20" "0123456789abcdef0123456789abcdef";
    cr_assert_eq(tls_feed(s.c, junk, sizeof(junk) - 1), 0, "records are opened by tls_read");
    t_read_all(&s);
    cr_assert_eq(s.err, -EPROTO);
    cr_assert_str_neq(tls_reason(s.c), "");
    const char *p;
    size_t n;
    cr_assert_gt(tls_pending_out(s.c, &p, &n), 0, "an alert waits for the peer");
    t_end_free(&s);
    t_end_free(&c);
}

/* ---- close -------------------------------------------------------------- */

Test(tls, close_notify_ends_the_stream_after_the_data_before_it)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct t_end s, c;

    t_pair(&so, &co, &s, &c);
    cr_assert_eq(tls_write(c.c, "QUIT\r\n", 6), 0);
    cr_assert_eq(tls_shutdown(c.c), 0);
    cr_assert_eq(tls_shutdown(c.c), 0, "a second shutdown does nothing");
    cr_assert_eq(tls_write(c.c, "x", 1), -EPIPE);
    t_pump(&c, &s, SIZE_MAX);
    cr_assert(t_plain_is(&s, "QUIT\r\n"));
    cr_assert(s.eof, "the server read TLS_EOF");
    cr_assert_eq(tls_status(s.c), 0, "a clean end is not a failure");
    cr_assert_str_eq(tls_reason(s.c), "close_notify received");
    cr_assert_eq(tls_write(s.c, "+OK\r\n", 5), -EPIPE, "nothing after the peer's close_notify");
    cr_assert_eq(tls_shutdown(s.c), 0);
    t_pump(&c, &s, SIZE_MAX);
    cr_assert(c.eof, "the client read the server's close_notify");
    char tmp[8];
    cr_assert_eq(tls_read(s.c, tmp, sizeof(tmp)), TLS_EOF, "EOF stays EOF");
    t_end_free(&s);
    t_end_free(&c);
}

Test(tls, shutdown_before_the_handshake_sends_nothing)
{
    struct tls_opts so = t_server_opts();
    struct tls_ctx *sctx = t_ctx(&so, 1);
    struct tls_conn *s = tls_conn_new(sctx, NULL);
    const char *p;
    size_t n;

    cr_assert_eq(tls_write(s, "early", 5), 0);
    cr_assert_eq(tls_shutdown(s), 0);
    cr_assert_eq(tls_pending_out(s, &p, &n), 0);
    tls_conn_free(s);
    tls_ctx_unref(sctx);
}

/* ---- configuration ------------------------------------------------------ */

Test(tls, reload_new_ctx_for_new_connections_old_ones_keep_theirs)
{
    struct tls_opts so = t_server_opts(), co = t_client_opts();
    struct tls_ctx *old = t_ctx(&so, 1), *cctx = t_ctx(&co, 0);
    struct t_end s1 = { .c = tls_conn_new(old, NULL) }, c1 = { .c = tls_conn_new(cctx, NULL) };

    so.protocols = "TLSv1.2";      /* the "reloaded" configuration */
    struct tls_ctx *cur = t_ctx(&so, 1);
    tls_ctx_unref(old);            /* replaced: freed when s1 goes */
    struct t_end s2 = { .c = tls_conn_new(cur, NULL) }, c2 = { .c = tls_conn_new(cctx, NULL) };
    t_pump(&c1, &s1, SIZE_MAX);
    t_pump(&c2, &s2, SIZE_MAX);
    cr_assert_str_eq(tls_version(s1.c), "TLSv1.3", "the old connection kept the old ctx");
    cr_assert_str_eq(tls_version(s2.c), "TLSv1.2");
    t_transfer(&c1, &s1, 1000, 1000, SIZE_MAX, 8);
    t_end_free(&s1);
    t_end_free(&c1);
    t_end_free(&s2);
    t_end_free(&c2);
    cr_assert_eq(tls_ctx_ref(cur), cur);
    tls_ctx_unref(cur);
    tls_ctx_unref(cur);
    tls_ctx_unref(cctx);
    tls_ctx_unref(NULL);
}

Test(tls, configuration_errors_name_what_and_why)
{
    struct tls_opts so = t_server_opts();
    char err[512];

    so.cert_file = t_path("missing.crt");
    cr_assert_null(tls_ctx_new_server(&so, err, sizeof(err)));
    cr_assert(strstr(err, "cannot load certificate") && strstr(err, "missing.crt") &&
              strstr(err, "No such file"), "%s", err);

    so = t_server_opts();
    so.key_file = t_path("client.key");
    cr_assert_null(tls_ctx_new_server(&so, err, sizeof(err)));
    cr_assert(strstr(err, "cannot load private key") && strstr(err, "key values mismatch"), "%s", err);

    so = t_server_opts();
    so.protocols = "TLSv1.2 TLSv9";
    cr_assert_null(tls_ctx_new_server(&so, err, sizeof(err)));
    cr_assert(strstr(err, "invalid protocol 'TLSv9'"), "%s", err);

    so = t_server_opts();
    so.ciphers = "NO-SUCH-CIPHER";
    cr_assert_null(tls_ctx_new_server(&so, err, sizeof(err)));
    cr_assert(strstr(err, "invalid ciphers 'NO-SUCH-CIPHER'"), "%s", err);

    so = t_server_opts();
    so.ca_file = NULL;
    so.auth_clients = TLS_AUTH_YES;
    cr_assert_null(tls_ctx_new_server(&so, err, sizeof(err)));
    cr_assert(strstr(err, "needs a CA"), "%s", err);

    so = t_server_opts();
    so.ca_file = t_path("server.key");
    so.auth_clients = TLS_AUTH_OPTIONAL;
    cr_assert_null(tls_ctx_new_server(&so, err, sizeof(err)));
    cr_assert(strstr(err, "cannot load CA"), "%s", err);

    struct tls_opts co = { .cert_file = NULL };
    cr_assert_null(tls_ctx_new_server(&co, err, sizeof(err)));
    cr_assert(strstr(err, "needs a certificate"), "%s", err);
}

Test(tls, auth_clients_words)
{
    enum tls_auth a = TLS_AUTH_NO;

    cr_assert_eq(tls_auth_parse("yes", &a), 0);
    cr_assert_eq(a, TLS_AUTH_YES);
    cr_assert_eq(tls_auth_parse("OPTIONAL", &a), 0);
    cr_assert_eq(a, TLS_AUTH_OPTIONAL);
    cr_assert_eq(tls_auth_parse("no", &a), 0);
    cr_assert_eq(a, TLS_AUTH_NO);
    cr_assert_eq(tls_auth_parse("maybe", &a), -EINVAL);
    cr_assert_eq(a, TLS_AUTH_NO);
}

/* ---- real sockets: a tls_conn on a uv_tcp_t ----------------------------- */

/* One TLS connection on a TCP handle, integrated the way the proxy would:
 * read callback -> tls_feed -> tls_read loop; any output -> one uv_write. */
struct t_uv {
    uv_tcp_t tcp;                  /* the socket (data = this) */
    struct tls_conn *tls;          /* its engine */
    struct buf plain;              /* plaintext received */
    void (*on_plain)(struct t_uv *u); /* new plaintext arrived */
    int heap;                      /* free this struct in the close callback */
    int ending;                    /* shutdown or close started */
    char why[TLS_REASON_MAX];      /* the TLS failure, logged once */
    char rbuf[16384];              /* read buffer */
};

static char t_server_why[TLS_REASON_MAX]; /* last failure of an accepted connection */

static void t_uv_write_done(uv_write_t *w, int status)
{
    free(w);
}

/* Write all pending ciphertext in one uv_write (the buffer lives after
 * the request and dies with it in the write callback). */
static void t_uv_flush(struct t_uv *u)
{
    struct buf out = { 0 };

    if (tls_take_out(u->tls, &out) > 0) {
        size_t n = buf_unread(&out);
        uv_write_t *w = malloc(sizeof(*w) + n);
        cr_assert_not_null(w);
        memcpy(w + 1, out.data + out.pos, n);
        uv_buf_t b = uv_buf_init((char *)(w + 1), (unsigned)n);
        if (uv_write(w, (uv_stream_t *)&u->tcp, &b, 1, t_uv_write_done) != 0)
            free(w);
    }
    buf_free(&out);
}

static void t_uv_closed(uv_handle_t *h)
{
    struct t_uv *u = h->data;

    tls_conn_free(u->tls);
    u->tls = NULL;
    buf_free(&u->plain);
    if (u->heap)
        free(u);
}

static void t_uv_shut_done(uv_shutdown_t *req, int status)
{
    uv_close((uv_handle_t *)req->handle, t_uv_closed);
    free(req);
}

/* Flush (close_notify or alert included), then FIN, then close. */
static void t_uv_end(struct t_uv *u)
{
    if (u->ending)
        return;
    u->ending = 1;
    t_uv_flush(u);
    uv_read_stop((uv_stream_t *)&u->tcp);
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req == NULL || uv_shutdown(req, (uv_stream_t *)&u->tcp, t_uv_shut_done) != 0) {
        free(req);
        uv_close((uv_handle_t *)&u->tcp, t_uv_closed);
    }
}

static void t_uv_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct t_uv *u = h->data;

    *b = uv_buf_init(u->rbuf, sizeof(u->rbuf));
}

static void t_uv_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct t_uv *u = st->data;
    char tmp[4096];
    long n = 0;

    if (nread == 0)
        return;
    if (nread < 0) {               /* socket EOF or error: nothing more to say */
        uv_read_stop(st);
        if (!u->ending) {
            u->ending = 1;
            uv_close((uv_handle_t *)st, t_uv_closed);
        }
        return;
    }
    if (tls_feed(u->tls, b->base, (size_t)nread) == 0) {
        while ((n = tls_read(u->tls, tmp, sizeof(tmp))) > 0)
            buf_append(&u->plain, tmp, (size_t)n);
        if (buf_unread(&u->plain) > 0 && u->on_plain)
            u->on_plain(u);
    }
    if (tls_status(u->tls) < 0) {  /* logged once: kept for the assertion */
        snprintf(u->why, sizeof(u->why), "%s", tls_reason(u->tls));
        if (u->heap)
            snprintf(t_server_why, sizeof(t_server_why), "%s", u->why);
        t_uv_end(u);               /* the alert goes out first */
    } else if (n == TLS_EOF) {
        tls_shutdown(u->tls);
        t_uv_end(u);
    } else {
        t_uv_flush(u);
    }
}

static struct sockaddr_in t_addr(int port)
{
    struct sockaddr_in a;

    cr_assert_eq(uv_ip4_addr("127.0.0.1", port, &a), 0);
    return a;
}

/* ---- redis-server --tls-port ------------------------------------------- */

static pid_t t_redis_pid;

/* Start redis-server with TLS on port; returns 0 when it accepts
 * connections, or -1 with why set (no TLS support, not installed). */
static int t_redis_start(int port, char *why, size_t len)
{
    char portstr[16];

    snprintf(portstr, sizeof(portstr), "%d", port);
    t_redis_pid = fork();
    cr_assert_geq(t_redis_pid, 0);
    if (t_redis_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(t_path("redis.log"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("redis-server", "redis-server", "--port", "0", "--tls-port", portstr,
               "--bind", "127.0.0.1", "--tls-cert-file", t_path("server.crt"),
               "--tls-key-file", t_path("server.key"), "--tls-ca-cert-file", t_path("ca.crt"),
               "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
               "--dir", t_dir, (char *)NULL);
        _exit(127);
    }
    struct sockaddr_in a = t_addr(port);
    for (int i = 0; i < 200; i++) {
        int st;
        if (waitpid(t_redis_pid, &st, WNOHANG) == t_redis_pid) {
            t_redis_pid = 0;
            snprintf(why, len, "redis-server exited (%s): no TLS support? see %s",
                     WIFEXITED(st) && WEXITSTATUS(st) == 127 ? "not installed" : "failed",
                     t_path("redis.log"));
            return -1;
        }
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok)
            return 0;
        usleep(25000);
    }
    snprintf(why, len, "redis-server did not listen on %d within 5 s", port);
    return -1;
}

static void t_redis_stop(void)
{
    if (t_redis_pid > 0) {
        kill(t_redis_pid, SIGTERM);
        waitpid(t_redis_pid, NULL, 0);
        t_redis_pid = 0;
    }
}

static uv_timer_t t_deadline;      /* ends a socket test that hangs */
static int t_timed_out;

static void t_deadline_fired(uv_timer_t *t)
{
    t_timed_out = 1;
    uv_stop(t->loop);
}

static char t_got[64];             /* the reply a socket test received */

/* Client side: PING written before the connection exists, +PONG awaited. */
static void t_client_got(struct t_uv *u)
{
    if (memchr(u->plain.data + u->plain.pos, '\n', buf_unread(&u->plain)) == NULL)
        return;
    snprintf(t_got, sizeof(t_got), "%.*s", (int)buf_unread(&u->plain), u->plain.data + u->plain.pos);
    tls_shutdown(u->tls);
    t_uv_end(u);
    uv_close((uv_handle_t *)&t_deadline, NULL);
}

static int t_connect_status = 1;

static void t_connected(uv_connect_t *req, int status)
{
    struct t_uv *u = req->data;

    t_connect_status = status;
    if (status < 0) {
        u->ending = 1;
        uv_close((uv_handle_t *)&u->tcp, t_uv_closed);
        uv_close((uv_handle_t *)&t_deadline, NULL);
        return;
    }
    uv_read_start((uv_stream_t *)&u->tcp, t_uv_alloc, t_uv_read);
    t_uv_flush(u);                 /* the ClientHello */
}

Test(tls, real_redis_server_answers_ping_through_a_uv_stream)
{
    char why[256];
    if (t_redis_start(T_REDIS_PORT, why, sizeof(why)) != 0)
        cr_skip_test("%s", why);

    struct tls_opts co = t_client_opts();
    struct tls_ctx *cctx = t_ctx(&co, 0);
    uv_loop_t loop;
    static struct t_uv u;          /* outlives the loop's callbacks */
    uv_connect_t creq;
    struct sockaddr_in a = t_addr(T_REDIS_PORT);

    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&u, 0, sizeof(u));
    u.tls = tls_conn_new(cctx, NULL);
    u.on_plain = t_client_got;
    u.tcp.data = &u;
    creq.data = &u;
    tls_ctx_unref(cctx);
    cr_assert_eq(tls_write(u.tls, "PING\r\n", 6), 0);
    cr_assert_eq(uv_tcp_init(&loop, &u.tcp), 0);
    u.tcp.data = &u;
    cr_assert_eq(uv_tcp_connect(&creq, &u.tcp, (struct sockaddr *)&a, t_connected), 0);
    uv_timer_init(&loop, &t_deadline);
    uv_timer_start(&t_deadline, t_deadline_fired, T_SOCKET_MS, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_not(t_timed_out, "no reply within %d ms (tls: '%s')", T_SOCKET_MS, u.why);
    uv_run(&loop, UV_RUN_DEFAULT);  /* the close callbacks */
    cr_assert_eq(uv_loop_close(&loop), 0, "every handle closed");
    t_redis_stop();
    cr_assert_eq(t_connect_status, 0, "connect: %s", uv_strerror(t_connect_status));
    cr_assert_str_eq(u.why, "");
    cr_assert_str_eq(t_got, "+PONG\r\n");
}

/* ---- redis-cli --tls against a server built on the engine -------------- */

static struct tls_ctx *t_echo_ctx;  /* the listener's current configuration */
static uv_tcp_t t_listener;
static uv_process_t t_cli;
static int64_t t_cli_exit = -1;

/* Answer every complete PING with +PONG (redis-cli sends one command). */
static void t_echo_got(struct t_uv *u)
{
    const char *p = u->plain.data + u->plain.pos, *end = p + buf_unread(&u->plain);
    const char *hit;

    while ((hit = memmem(p, (size_t)(end - p), "PING\r\n", 6)) != NULL) {
        tls_write(u->tls, "+PONG\r\n", 7);
        p = hit + 6;
    }
    buf_consume(&u->plain, (size_t)(p - (u->plain.data + u->plain.pos)));
}

static void t_accepted(uv_stream_t *server, int status)
{
    struct t_uv *u = calloc(1, sizeof(*u));

    cr_assert(status == 0 && u != NULL);
    u->heap = 1;
    u->on_plain = t_echo_got;
    u->tls = tls_conn_new(t_echo_ctx, NULL);
    uv_tcp_init(server->loop, &u->tcp);
    u->tcp.data = u;
    if (uv_accept(server, (uv_stream_t *)&u->tcp) != 0) {
        uv_close((uv_handle_t *)&u->tcp, t_uv_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&u->tcp, t_uv_alloc, t_uv_read);
}

static void t_cli_exited(uv_process_t *p, int64_t status, int signo)
{
    t_cli_exit = signo ? 128 + signo : status;
    uv_close((uv_handle_t *)p, NULL);
    uv_close((uv_handle_t *)&t_listener, NULL);
    uv_close((uv_handle_t *)&t_deadline, NULL);
}

/* Run redis-cli with extra TLS arguments against our server; returns its
 * exit status, its output in out. Skips when redis-cli is missing. */
static int t_run_cli(int port, const char *const *tls_args, char *out, size_t outlen)
{
    uv_loop_t loop;
    struct sockaddr_in a = t_addr(port);
    char *args[24], portstr[16];
    int n = 0;

    args[n++] = "redis-cli";
    args[n++] = "--tls";
    while (*tls_args)
        args[n++] = (char *)*tls_args++;
    snprintf(portstr, sizeof(portstr), "%d", port);
    const char *tail[] = { "-h", "127.0.0.1", "-p", portstr, "PING", NULL };
    for (int i = 0; tail[i]; i++)
        args[n++] = (char *)tail[i];
    args[n] = NULL;

    int fd = open(t_path("cli.out"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_tcp_init(&loop, &t_listener), 0);
    cr_assert_eq(uv_tcp_bind(&t_listener, (struct sockaddr *)&a, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&t_listener, 8, t_accepted), 0);
    uv_stdio_container_t stdio[3] = {
        { .flags = UV_IGNORE },
        { .flags = UV_INHERIT_FD, .data.fd = fd },
        { .flags = UV_INHERIT_FD, .data.fd = fd },
    };
    uv_process_options_t po = {
        .exit_cb = t_cli_exited, .file = "redis-cli", .args = args,
        .stdio_count = 3, .stdio = stdio,
    };
    t_cli_exit = -1;
    int rc = uv_spawn(&loop, &t_cli, &po);
    if (rc != 0) {
        uv_close((uv_handle_t *)&t_listener, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        close(fd);
        cr_skip_test("cannot run redis-cli: %s", uv_strerror(rc));
    }
    uv_timer_init(&loop, &t_deadline);
    uv_timer_start(&t_deadline, t_deadline_fired, T_SOCKET_MS, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_not(t_timed_out, "redis-cli did not finish within %d ms", T_SOCKET_MS);
    uv_run(&loop, UV_RUN_DEFAULT);  /* connections closing after the exit */
    cr_assert_eq(uv_loop_close(&loop), 0, "every handle closed");
    ssize_t k = pread(fd, out, outlen - 1, 0);
    out[k > 0 ? k : 0] = '\0';
    close(fd);
    return (int)t_cli_exit;
}

Test(tls, redis_cli_tls_gets_pong_from_a_server_on_the_engine)
{
    struct tls_opts so = t_server_opts();
    const char *args[] = { "--cacert", t_path("ca.crt"), NULL };
    char out[512];

    t_echo_ctx = t_ctx(&so, 1);
    int st = t_run_cli(T_ECHO_PORT, args, out, sizeof(out));
    tls_ctx_unref(t_echo_ctx);
    cr_assert_eq(st, 0, "redis-cli exit %d: %s", st, out);
    cr_assert_str_eq(out, "PONG\n");
}

Test(tls, redis_cli_with_a_client_cert_passes_auth_clients_yes_without_fails)
{
    struct tls_opts so = t_server_opts();
    const char *with[] = { "--cacert", t_path("ca.crt"), "--cert", t_path("client.crt"),
                           "--key", t_path("client.key"), NULL };
    const char *without[] = { "--cacert", t_path("ca.crt"), NULL };
    char out[512];

    so.auth_clients = TLS_AUTH_YES;
    t_echo_ctx = t_ctx(&so, 1);
    int st = t_run_cli(T_ECHO_PORT + 1, with, out, sizeof(out));
    cr_assert_eq(st, 0, "redis-cli exit %d: %s", st, out);
    cr_assert_str_eq(out, "PONG\n");
    st = t_run_cli(T_ECHO_PORT + 1, without, out, sizeof(out));
    cr_assert_neq(st, 0, "refused without a certificate: %s", out);
    cr_assert_null(strstr(out, "PONG"), "refused without a certificate: %s", out);
    cr_assert_str_eq(t_server_why, "peer did not return a certificate");
    tls_ctx_unref(t_echo_ctx);
}

/* ---- renegotiation ------------------------------------------------------ */

static char t_raw_why[128];         /* first handshake failure of the raw client */

/* Move everything between a raw OpenSSL peer (memory BIOs) and our engine
 * until both are quiet. */
static void t_raw_pump(SSL *raw, BIO *raw_in, BIO *raw_out, struct t_end *s)
{
    char tmp[16384];
    struct buf out = { 0 };

    for (int i = 0; i < 100; i++) {
        int n, moved = 0;
        while ((n = BIO_read(raw_out, tmp, sizeof(tmp))) > 0) {
            moved += n;
            tls_feed(s->c, tmp, (size_t)n);
            t_read_all(s);
        }
        buf_reset(&out);
        tls_take_out(s->c, &out);
        if (buf_unread(&out) > 0) {
            moved += (int)buf_unread(&out);
            BIO_write(raw_in, out.data + out.pos, (int)buf_unread(&out));
        }
        int r = SSL_is_init_finished(raw) ? SSL_read(raw, tmp, sizeof(tmp)) : SSL_do_handshake(raw);
        if (r <= 0 && SSL_get_error(raw, r) == SSL_ERROR_SSL && t_raw_why[0] == '\0') {
            unsigned long e = ERR_get_error();
            snprintf(t_raw_why, sizeof(t_raw_why), "%s",
                     ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?");
        }
        ERR_clear_error();
        if (moved == 0)
            break;
    }
    buf_free(&out);
}

/* OpenSSL 3 servers refuse a client's renegotiation by default
 * (SSL_OP_ALLOW_CLIENT_RENEGOTIATION is off); SSL_OP_NO_RENEGOTIATION
 * keeps it so. The server-initiated test below fails without our option. */
Test(tls, renegotiation_asked_by_a_client_is_refused)
{
    struct tls_opts so = t_server_opts();
    struct tls_ctx *sctx = t_ctx(&so, 1);
    struct t_end s = { .c = tls_conn_new(sctx, NULL) };
    SSL_CTX *rctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(rctx, TLS1_2_VERSION);   /* renegotiation is TLS <= 1.2 */
    SSL *raw = SSL_new(rctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());

    SSL_set_bio(raw, in, out);
    SSL_set_connect_state(raw);
    SSL_do_handshake(raw);
    t_raw_pump(raw, in, out, &s);
    cr_assert(SSL_is_init_finished(raw) && tls_handshake_done(s.c));
    cr_assert_str_eq(tls_version(s.c), "TLSv1.2");

    cr_assert_eq(SSL_renegotiate(raw), 1);
    SSL_do_handshake(raw);
    t_raw_pump(raw, in, out, &s);
    char tmp[64];
    int r = SSL_read(raw, tmp, sizeof(tmp));
    cr_assert_leq(r, 0, "the client's renegotiation did not complete");
    cr_assert_str_eq(t_raw_why, "no renegotiation", "the server answered no_renegotiation");
    cr_assert_eq(tls_status(s.c), -EPROTO, "the client gave up, the server saw its alert");
    T_REASON_HAS(&s, "handshake failure");
    ERR_clear_error();
    SSL_free(raw);
    SSL_CTX_free(rctx);
    t_end_free(&s);
    tls_ctx_unref(sctx);
}

Test(tls, renegotiation_asked_by_a_server_is_refused)
{
    struct tls_opts co = t_client_opts();
    struct tls_ctx *cctx = t_ctx(&co, 0);
    struct t_end c = { .c = tls_conn_new(cctx, NULL) };
    SSL_CTX *rctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_max_proto_version(rctx, TLS1_2_VERSION);
    cr_assert_eq(SSL_CTX_use_certificate_chain_file(rctx, t_path("server.crt")), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey_file(rctx, t_path("server.key"), SSL_FILETYPE_PEM), 1);
    SSL *raw = SSL_new(rctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());

    SSL_set_bio(raw, in, out);
    SSL_set_accept_state(raw);
    t_raw_pump(raw, in, out, &c);
    cr_assert(SSL_is_init_finished(raw) && tls_handshake_done(c.c), "%s", tls_reason(c.c));

    cr_assert_eq(SSL_renegotiate(raw), 1);
    SSL_do_handshake(raw);         /* HelloRequest */
    t_raw_pump(raw, in, out, &c);
    cr_assert_str_eq(t_raw_why, "no renegotiation", "our client answered no_renegotiation");
    cr_assert(SSL_renegotiate_pending(raw), "never renegotiated");
    cr_assert_eq(tls_status(c.c), -EPROTO, "the server gave up, our client saw its alert");
    T_REASON_HAS(&c, "handshake failure");
    SSL_free(raw);
    SSL_CTX_free(rctx);
    t_end_free(&c);
    tls_ctx_unref(cctx);
}
