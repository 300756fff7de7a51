/*
 * bench/tlsengine.c — what base/tls.c costs the proxy per pipelined batch,
 * without sockets, other processes or the machine's load in the figure.
 *
 *   client engine --ciphertext--> [server engine: tls_feed, tls_read,
 *                                   tls_write, tls_take_out] --> client engine
 *
 * A client-role and a server-role tls_conn (certificates made with the
 * openssl CLI in a temp dir, TLS 1.3 with the library's default suites)
 * exchange -P batches as redis-benchmark and the proxy's client side do:
 * the client encrypts `pipeline` GET requests in one write; the server
 * engine is fed that record, reads the plaintext, encrypts `pipeline`
 * bulk replies of `size` bytes in one tls_write and hands the records out
 * with tls_take_out into an emptied buffer (as outq's hook does). Only the
 * server engine's calls are timed (CLOCK_THREAD_CPUTIME_ID): the proxy's
 * TLS cost per client batch, crypto and OpenSSL's per-record work included
 * (the cost of the two clock reads around it, measured first, is subtracted).
 *
 * usage: build/bench/tlsengine [batches (200000)] [reply size (3)] [pipeline (16)] [rounds (3)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/tls.h"

/* Thread CPU time in ns. */
static double cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* What one cpu_ns() pair costs (a system call each), subtracted from
 * every timed batch. */
static double timer_pair_ns(void)
{
    double t0 = cpu_ns(), x = 0;
    for (int i = 0; i < 100000; i++) {
        double a = cpu_ns();
        x += cpu_ns() - a;
    }
    (void)x;
    return (cpu_ns() - t0) / 100000;
}

/* A CA and a certificate for localhost in dir (openssl CLI). 0 or -1. */
static int make_certs(const char *dir)
{
    char cmd[2048];
    const char *gen = "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    snprintf(cmd, sizeof(cmd),
             "(cd %s && printf '[req]\\ndistinguished_name = dn\\n[dn]\\n[ca_ext]\\n"
             "basicConstraints = critical,CA:true\\nkeyUsage = critical,keyCertSign\\n"
             "[cert_ext]\\nbasicConstraints = CA:false\\nsubjectAltName = DNS:localhost\\n' > t.cnf && "
             "%s -x509 -days 1 -keyout ca.key -out ca.crt -subj /CN=ca -config t.cnf -extensions ca_ext && "
             "%s -keyout cert.key -out cert.csr -subj /CN=localhost -config t.cnf && "
             "openssl x509 -req -days 1 -in cert.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
             "-out cert.crt -extfile t.cnf -extensions cert_ext) >/dev/null 2>&1",
             dir, gen, gen);
    return system(cmd) == 0 ? 0 : -1;
}

/* Move c's output into peer's input. */
static void pass(struct tls_conn *from, struct tls_conn *to, struct buf *tmp)
{
    buf_reset(tmp);
    tls_take_out(from, tmp);
    tls_feed(to, tmp->data + tmp->pos, buf_unread(tmp));
}

int main(int argc, char **argv)
{
    long batches = argc > 1 ? atol(argv[1]) : 200000;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 3;
    int pipeline = argc > 3 ? atoi(argv[3]) : 16;
    int rounds = argc > 4 ? atoi(argv[4]) : 3;
    char dir[] = "/tmp/tlsengine-XXXXXX", path[3][128], err[256], sink[65536];

    if (mkdtemp(dir) == NULL || make_certs(dir) != 0) {
        fprintf(stderr, "tlsengine: openssl could not make certificates in %s\n", dir);
        return 1;
    }
    snprintf(path[0], sizeof(path[0]), "%s/cert.crt", dir);
    snprintf(path[1], sizeof(path[1]), "%s/cert.key", dir);
    snprintf(path[2], sizeof(path[2]), "%s/ca.crt", dir);
    struct tls_opts so = { .cert_file = path[0], .key_file = path[1], .auth_clients = TLS_AUTH_NO };
    struct tls_opts co = { .ca_file = path[2], .server_name = "localhost" };
    struct tls_ctx *sctx = tls_ctx_new_server(&so, err, sizeof(err));
    struct tls_ctx *cctx = sctx ? tls_ctx_new_client(&co, err, sizeof(err)) : NULL;
    if (cctx == NULL) {
        fprintf(stderr, "tlsengine: %s\n", err);
        return 1;
    }

    /* one batch: pipeline GETs of key:%012d, pipeline replies of size bytes */
    struct buf req = { 0 }, rep = { 0 }, wire = { 0 }, out = { 0 };
    for (int i = 0; i < pipeline; i++) {
        buf_printf(&req, "*2\r\n$3\r\nGET\r\n$16\r\nkey:%012d\r\n", i);
        buf_printf(&rep, "$%zu\r\n", size);
        buf_reserve(&rep, size + 2);
        memset(rep.data + rep.len, 'v', size);
        rep.len += size;
        buf_append(&rep, "\r\n", 2);
    }
    double timer = timer_pair_ns();
    for (int r = 0; r < rounds; r++) {
        struct tls_conn *s = tls_conn_new(sctx, NULL), *c = tls_conn_new(cctx, NULL);
        for (int i = 0; i < 8 && !(tls_handshake_done(s) && tls_handshake_done(c)); i++) {
            pass(c, s, &wire);
            tls_read(s, sink, sizeof(sink));
            pass(s, c, &wire);
            tls_read(c, sink, sizeof(sink));
        }
        if (!tls_handshake_done(s) || !tls_handshake_done(c)) {
            fprintf(stderr, "tlsengine: no handshake: %s %s\n", tls_reason(s), tls_reason(c));
            return 1;
        }
        double spent = 0;
        for (long b = 0; b < batches; b++) {
            tls_write(c, req.data, req.len);
            buf_reset(&wire);
            tls_take_out(c, &wire);
            double t0 = cpu_ns();
            long n, got = 0;
            tls_feed(s, wire.data + wire.pos, buf_unread(&wire));
            while ((n = tls_read(s, sink, sizeof(sink))) > 0)
                got += n;
            tls_write(s, rep.data, rep.len);
            buf_reset(&out);
            tls_take_out(s, &out);
            spent += cpu_ns() - t0 - timer;
            tls_feed(c, out.data + out.pos, buf_unread(&out));
            while (tls_read(c, sink, sizeof(sink)) > 0)
                ;
            if (got != (long)req.len) {
                fprintf(stderr, "tlsengine: batch %ld: %ld bytes of %zu\n", b, got, req.len);
                return 1;
            }
        }
        printf("round %d: %s %s, -P %d, replies of %zu B: %.0f ns per batch, %.1f ns per request\n",
               r + 1, tls_version(s), tls_cipher(s), pipeline, size, spent / (double)batches,
               spent / (double)batches / pipeline);
        tls_conn_free(s);
        tls_conn_free(c);
    }
    tls_ctx_unref(sctx);
    tls_ctx_unref(cctx);
    buf_free(&req);
    buf_free(&rep);
    buf_free(&wire);
    buf_free(&out);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
