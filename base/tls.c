/*
 * base/tls.c — the TLS engine: an SSL object between two memory BIOs.
 *
 *   tls_feed --BIO_write--> rbio (memory BIO) --SSL_do_handshake / SSL_read--> tls_read
 *   tls_write --SSL_write--> wbio (out_bio: appends to c->out) --swap or copy--> caller's buf
 *
 * OpenSSL never sees a file descriptor: a read that needs more bytes ends
 * with SSL_ERROR_WANT_READ (the rbio is empty, not at EOF), a write always
 * completes because c->out grows. The write side is our own BIO so that
 * records land in c->out directly and tls_take_out can hand that buffer to
 * an empty destination by swapping, instead of two copies through a memory
 * BIO. Every failure goes through conn_fail, which keeps the first status
 * and reason on the connection.
 */
#include "base/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLS_SID_CTX "redsnano"       /* session id context (resumption with client certs) */
#define TLS_DEFAULT_PROTOCOLS "TLSv1.2 TLSv1.3"

struct tls_ctx {
    SSL_CTX *ssl;                    /* OpenSSL's configuration */
    int refs;                        /* owners: the creator, each tls_conn */
    int server;                      /* role of the connections made from it */
    int insecure;                    /* client: no verification of the server */
    char *server_name;               /* client: default SNI / expected name (or NULL) */
};

struct tls_conn {
    struct tls_ctx *ctx;             /* configuration (one reference held) */
    SSL *ssl;                        /* the engine; owns rbio and wbio */
    BIO *rbio;                       /* ciphertext from the peer, fed by tls_feed */
    BIO *wbio;                       /* out_bio: what OpenSSL writes is appended to out */
    struct buf out;                  /* ciphertext for the peer, taken by the caller */
    int out_oom;                     /* appending to out failed (a write then fails: -ENOMEM) */
    struct buf early;                /* plaintext written before the handshake completed */
    int status;                      /* 0, or the first failure (sticky) */
    int handshake_done;              /* SSL_do_handshake returned 1 */
    int shut;                        /* our close_notify is queued */
    int eof;                         /* the peer's close_notify was read */
    char reason[TLS_REASON_MAX];     /* why status is set ("" while healthy) */
};

/* ---- errors ------------------------------------------------------------ */

/* The reason of the oldest queued OpenSSL error into dst (or fallback),
 * then clear the queue. Returns the packed error (0 if none). */
static unsigned long err_take(char *dst, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    if (e != 0 && ERR_SYSTEM_ERROR(e))
        snprintf(dst, len, "%s", strerror(ERR_GET_REASON(e)));   /* fopen's errno */
    else if (r != NULL)
        snprintf(dst, len, "%s", r);
    else if (e != 0)
        snprintf(dst, len, "error:%08lX", e);
    else
        snprintf(dst, len, "%s", fallback);
    ERR_clear_error();
    return e;
}

/* Empty the error queue before an SSL call whose failure SSL_get_error
 * must classify. Peeking is cheap; clearing walks all the queue's slots,
 * and the queue is nearly always empty already (every failure path takes
 * and clears it), so the hot path only peeks. */
static void err_reset(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

/* Record a failure (the first one wins) and return the sticky status. */
static int conn_fail(struct tls_conn *c, int status, int ssl_err)
{
    if (c->status != 0)
        return c->status;
    c->status = status;
    if (status == -ENOMEM) {
        snprintf(c->reason, sizeof(c->reason), "out of memory");
        ERR_clear_error();
        return status;
    }
    unsigned long e = err_take(c->reason, sizeof(c->reason),
                               ssl_err == SSL_ERROR_SYSCALL ? "unexpected end of stream"
                                                            : "tls failure");
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        long v = SSL_get_verify_result(c->ssl);
        size_t used = strlen(c->reason);
        snprintf(c->reason + used, sizeof(c->reason) - used, ": %s",
                 X509_verify_cert_error_string(v));
    }
    return status;
}

/* ---- configuration ----------------------------------------------------- */

/* Never prompt: hand OpenSSL the configured passphrase or nothing. */
static int ctx_pass_cb(char *dst, int size, int rwflag, void *u)
{
    const char *pass = u;
    size_t n = pass ? strlen(pass) : 0;

    if (n > (size_t)size)
        n = (size_t)size;
    memcpy(dst, pass ? pass : "", n);
    return (int)n;
}

/* Fail building a ctx: format "tls: <what>: <openssl reason>". */
static struct tls_ctx *ctx_fail(SSL_CTX *s, char *err, size_t errlen, const char *what)
{
    char reason[TLS_REASON_MAX];

    err_take(reason, sizeof(reason), "invalid");
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "tls: %s: %s", what, reason);
    SSL_CTX_free(s);
    return NULL;
}

/* "TLSv1.2 TLSv1.3" -> min/max versions plus SSL_OP_NO_* for any gap.
 * Returns 0 or -1 with err set. */
static int ctx_set_protocols(SSL_CTX *s, const char *spec, char *err, size_t errlen)
{
    static const struct { const char *name; int version; long no_op; } protos[] = {
        { "TLSv1", TLS1_VERSION, SSL_OP_NO_TLSv1 },
        { "TLSv1.1", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1 },
        { "TLSv1.2", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2 },
        { "TLSv1.3", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3 },
    };
    const size_t nprotos = sizeof(protos) / sizeof(protos[0]);
    int enabled[4] = { 0 };
    const char *p = (spec && *spec) ? spec : TLS_DEFAULT_PROTOCOLS;

    while (*p) {
        size_t n = strcspn(p, " \t,");
        size_t i;

        if (n == 0) {
            p++;
            continue;
        }
        for (i = 0; i < nprotos; i++)
            if (strlen(protos[i].name) == n && strncasecmp(p, protos[i].name, n) == 0)
                break;
        if (i == nprotos) {
            snprintf(err, errlen, "tls: invalid protocol '%.*s' in protocols (want TLSv1, "
                     "TLSv1.1, TLSv1.2, TLSv1.3)", (int)(n > 32 ? 32 : n), p);
            return -1;
        }
        enabled[i] = 1;
        p += n;
    }
    int lo = -1, hi = -1;
    for (size_t i = 0; i < nprotos; i++) {
        if (enabled[i]) {
            if (lo < 0)
                lo = (int)i;
            hi = (int)i;
        } else {
            SSL_CTX_set_options(s, (uint64_t)protos[i].no_op);
        }
    }
    if (lo < 0) {
        snprintf(err, errlen, "tls: protocols names no protocol");
        return -1;
    }
    if (!SSL_CTX_set_min_proto_version(s, protos[lo].version) ||
        !SSL_CTX_set_max_proto_version(s, protos[hi].version)) {
        snprintf(err, errlen, "tls: cannot restrict protocols to '%s'", spec);
        return -1;
    }
    return 0;
}

/* What both roles share: protocols, ciphers, certificate, CA. */
static struct tls_ctx *ctx_new(const struct tls_opts *o, int server, char *err, size_t errlen)
{
    char what[PATH_MAX + 64];
    SSL_CTX *s;

    ERR_clear_error();
    s = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (s == NULL)
        return ctx_fail(s, err, errlen, "cannot create SSL_CTX");
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (ctx_set_protocols(s, o->protocols, err, errlen) != 0) {
        SSL_CTX_free(s);
        return NULL;
    }
    if (o->ciphers && !SSL_CTX_set_cipher_list(s, o->ciphers)) {
        snprintf(what, sizeof(what), "invalid ciphers '%s'", o->ciphers);
        return ctx_fail(s, err, errlen, what);
    }
    if (o->ciphersuites && !SSL_CTX_set_ciphersuites(s, o->ciphersuites)) {
        snprintf(what, sizeof(what), "invalid ciphersuites '%s'", o->ciphersuites);
        return ctx_fail(s, err, errlen, what);
    }
    if (o->cert_file != NULL) {
        const char *key = o->key_file ? o->key_file : o->cert_file;

        if (!SSL_CTX_use_certificate_chain_file(s, o->cert_file)) {
            snprintf(what, sizeof(what), "cannot load certificate %s", o->cert_file);
            return ctx_fail(s, err, errlen, what);
        }
        SSL_CTX_set_default_passwd_cb(s, ctx_pass_cb);
        SSL_CTX_set_default_passwd_cb_userdata(s, (void *)o->key_pass);
        int ok = SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM);
        SSL_CTX_set_default_passwd_cb_userdata(s, NULL);   /* o->key_pass may be freed */
        if (!ok) {
            snprintf(what, sizeof(what), "cannot load private key %s", key);
            return ctx_fail(s, err, errlen, what);
        }
        if (!SSL_CTX_check_private_key(s)) {
            snprintf(what, sizeof(what), "private key %s does not match certificate %s",
                     key, o->cert_file);
            return ctx_fail(s, err, errlen, what);
        }
    } else if (o->key_file != NULL) {
        snprintf(err, errlen, "tls: key file %s given without a certificate", o->key_file);
        SSL_CTX_free(s);
        return NULL;
    }
    if (o->ca_file || o->ca_dir) {
        if (!SSL_CTX_load_verify_locations(s, o->ca_file, o->ca_dir)) {
            snprintf(what, sizeof(what), "cannot load CA %s", o->ca_file ? o->ca_file : o->ca_dir);
            return ctx_fail(s, err, errlen, what);
        }
    }

    struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        snprintf(err, errlen, "tls: out of memory");
        SSL_CTX_free(s);
        return NULL;
    }
    ctx->ssl = s;
    ctx->refs = 1;
    ctx->server = server;
    return ctx;
}

struct tls_ctx *tls_ctx_new_server(const struct tls_opts *o, char *err, size_t errlen)
{
    static const int modes[] = {
        [TLS_AUTH_YES] = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        [TLS_AUTH_NO] = SSL_VERIFY_NONE,
        [TLS_AUTH_OPTIONAL] = SSL_VERIFY_PEER,
    };

    if (o->cert_file == NULL) {
        snprintf(err, errlen, "tls: a server needs a certificate (cert_file)");
        return NULL;
    }
    if ((unsigned)o->auth_clients > TLS_AUTH_OPTIONAL) {
        snprintf(err, errlen, "tls: invalid auth_clients %d", (int)o->auth_clients);
        return NULL;
    }
    if (o->auth_clients != TLS_AUTH_NO && o->ca_file == NULL && o->ca_dir == NULL) {
        snprintf(err, errlen, "tls: authenticating clients needs a CA (ca_file or ca_dir), "
                 "or auth-clients no");
        return NULL;
    }
    struct tls_ctx *ctx = ctx_new(o, 1, err, errlen);
    if (ctx == NULL)
        return NULL;
    SSL_CTX *s = ctx->ssl;
    SSL_CTX_set_verify(s, modes[o->auth_clients], NULL);
    SSL_CTX_set_session_id_context(s, (const unsigned char *)TLS_SID_CTX, sizeof(TLS_SID_CTX) - 1);
    if (o->prefer_server_ciphers)
        SSL_CTX_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (o->auth_clients != TLS_AUTH_NO && o->ca_file != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(s, names);   /* a hint for the client only */
    }
    SSL_CTX_set_dh_auto(s, 1);
    ERR_clear_error();
    return ctx;
}

struct tls_ctx *tls_ctx_new_client(const struct tls_opts *o, char *err, size_t errlen)
{
    struct tls_ctx *ctx = ctx_new(o, 0, err, errlen);

    if (ctx == NULL)
        return NULL;
    if (o->server_name != NULL && (ctx->server_name = strdup(o->server_name)) == NULL) {
        snprintf(err, errlen, "tls: out of memory");
        tls_ctx_unref(ctx);
        return NULL;
    }
    ctx->insecure = o->insecure != 0;
    if (ctx->insecure) {
        SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
        if (o->ca_file == NULL && o->ca_dir == NULL && !SSL_CTX_set_default_verify_paths(ctx->ssl)) {
            ctx_fail(NULL, err, errlen, "cannot load the system's CA paths");
            tls_ctx_unref(ctx);
            return NULL;
        }
    }
    ERR_clear_error();
    return ctx;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx)
{
    ctx->refs++;
    return ctx;
}

void tls_ctx_unref(struct tls_ctx *ctx)
{
    if (ctx == NULL || --ctx->refs > 0)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx->server_name);
    free(ctx);
}

int tls_auth_parse(const char *s, enum tls_auth *out)
{
    if (s == NULL)
        return -EINVAL;
    if (strcasecmp(s, "yes") == 0)
        *out = TLS_AUTH_YES;
    else if (strcasecmp(s, "no") == 0)
        *out = TLS_AUTH_NO;
    else if (strcasecmp(s, "optional") == 0)
        *out = TLS_AUTH_OPTIONAL;
    else
        return -EINVAL;
    return 0;
}

/* ---- the write BIO ----------------------------------------------------- */

#define TLS_OUT_KEEP (64 * 1024)     /* keep an emptied out buffer up to this size */

static BIO_METHOD *out_method;       /* out_bio's methods, made once */

/* OpenSSL writes a record: append it to the connection's out buffer. */
static int out_bio_write(BIO *b, const char *p, int n)
{
    struct tls_conn *c = BIO_get_data(b);

    if (n <= 0)
        return 0;
    if (buf_append(&c->out, p, (size_t)n) != 0) {
        c->out_oom = 1;
        return -1;
    }
    return n;
}

static long out_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct tls_conn *c = BIO_get_data(b);
    (void)num;
    (void)ptr;

    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;                    /* nothing is held back */
    case BIO_CTRL_WPENDING:
        return (long)buf_unread(&c->out);
    default:
        return 0;
    }
}

static int out_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* A write BIO appending to c->out; NULL on allocation failure. */
static BIO *out_bio_new(struct tls_conn *c)
{
    if (out_method == NULL) {
        BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "redsnano out");
        if (m == NULL || !BIO_meth_set_write(m, out_bio_write) ||
            !BIO_meth_set_ctrl(m, out_bio_ctrl) || !BIO_meth_set_create(m, out_bio_create)) {
            BIO_meth_free(m);
            return NULL;
        }
        out_method = m;
    }
    BIO *b = BIO_new(out_method);
    if (b != NULL)
        BIO_set_data(b, c);
    return b;
}

/* ---- connections ------------------------------------------------------- */

/* Encrypt plaintext into wbio. The wbio grows, so a write completes or the
 * connection fails. */
static int conn_encrypt(struct tls_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        size_t done = 0;

        err_reset();
        if (SSL_write_ex(c->ssl, p, n, &done) != 1)
            return conn_fail(c, c->out_oom ? -ENOMEM : -EPROTO, SSL_get_error(c->ssl, 0));
        p += done;
        n -= done;
    }
    return 0;
}

/* Run the handshake as far as the buffered input allows; on completion
 * encrypt what was written early. Returns 0 or the failure status. */
static int conn_advance(struct tls_conn *c)
{
    if (c->status != 0 || c->handshake_done)
        return c->status;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
        int se = SSL_get_error(c->ssl, r);
        if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE)
            return 0;
        return conn_fail(c, -EPROTO, se);
    }
    c->handshake_done = 1;
    if (buf_unread(&c->early) > 0) {
        int rc = conn_encrypt(c, c->early.data + c->early.pos, buf_unread(&c->early));
        buf_free(&c->early);
        return rc;
    }
    return 0;
}

/* Is name an IPv4 or IPv6 literal? */
static int name_is_ip(const char *name)
{
    unsigned char a[16];

    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/* Client role: SNI and the name the server's certificate must carry. */
static int conn_set_name(struct tls_conn *c, const char *name)
{
    if (name == NULL || *name == '\0')
        return 0;
    if (name_is_ip(name)) {
        if (!c->ctx->insecure && !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name))
            return -1;
        return 0;
    }
    if (!SSL_set_tlsext_host_name(c->ssl, name))
        return -1;
    if (!c->ctx->insecure) {
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (!SSL_set1_host(c->ssl, name))
            return -1;
    }
    return 0;
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *server_name)
{
    struct tls_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    ERR_clear_error();
    c->ssl = SSL_new(ctx->ssl);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = out_bio_new(c);
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_mem_eof_return(c->rbio, -1);    /* empty means "wait", not EOF */
    SSL_set_bio(c->ssl, c->rbio, c->wbio);  /* ssl owns both from here */
    c->ctx = tls_ctx_ref(ctx);
    if (ctx->server) {
        SSL_set_accept_state(c->ssl);
        return c;
    }
    SSL_set_connect_state(c->ssl);
    if (conn_set_name(c, server_name ? server_name : ctx->server_name) != 0) {
        conn_fail(c, -EPROTO, SSL_ERROR_SSL);
        return c;
    }
    conn_advance(c);                        /* the ClientHello */
    return c;
}

void tls_conn_free(struct tls_conn *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl);
    tls_ctx_unref(c->ctx);
    buf_free(&c->out);
    buf_free(&c->early);
    free(c);
}

int tls_feed(struct tls_conn *c, const void *p, size_t n)
{
    const char *q = p;

    if (c->status != 0)
        return c->status;
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        int w = BIO_write(c->rbio, q, chunk);
        if (w <= 0)
            return conn_fail(c, -ENOMEM, 0);
        q += w;
        n -= (size_t)w;
    }
    return conn_advance(c);
}

long tls_read(struct tls_conn *c, void *dst, size_t cap)
{
    char *d = dst;
    size_t total = 0;
    int rc = conn_advance(c);

    if (rc != 0)
        return rc;
    if (c->eof)
        return TLS_EOF;
    if (!c->handshake_done)
        return 0;
    while (total < cap) {
        size_t got = 0;

        /* Nothing decrypted waits and rbio is empty: SSL_read could only
         * say WANT_READ (without read-ahead OpenSSL holds no whole record
         * of its own), so skip the call and its error-queue work. */
        if (SSL_pending(c->ssl) == 0 && BIO_ctrl_pending(c->rbio) == 0)
            break;
        err_reset();
        if (SSL_read_ex(c->ssl, d + total, cap - total, &got) == 1) {
            total += got;
            continue;
        }
        int se = SSL_get_error(c->ssl, 0);
        if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE)
            break;
        if (se == SSL_ERROR_ZERO_RETURN) {
            c->eof = 1;
            snprintf(c->reason, sizeof(c->reason), "close_notify received");
            ERR_clear_error();
            return total > 0 ? (long)total : TLS_EOF;
        }
        if (total > 0) {
            /* Hand over what was decrypted; the failure is recorded and
             * returned by the next call. */
            conn_fail(c, -EPROTO, se);
            return (long)total;
        }
        return conn_fail(c, -EPROTO, se);
    }
    return (long)total;
}

int tls_write(struct tls_conn *c, const void *p, size_t n)
{
    if (c->status != 0)
        return c->status;
    if (c->shut || c->eof)
        return -EPIPE;
    if (!c->handshake_done)
        return buf_append(&c->early, p, n) == 0 ? 0 : conn_fail(c, -ENOMEM, 0);
    return conn_encrypt(c, p, n);
}

int tls_shutdown(struct tls_conn *c)
{
    if (c->status != 0)
        return c->status;
    if (c->shut)
        return 0;
    c->shut = 1;
    buf_free(&c->early);
    if (!c->handshake_done)
        return 0;                   /* nothing to close cleanly yet */
    ERR_clear_error();
    if (SSL_shutdown(c->ssl) < 0)
        return conn_fail(c, -EPROTO, SSL_get_error(c->ssl, -1));
    return 0;
}

size_t tls_pending_out(struct tls_conn *c, const char **p, size_t *n)
{
    *p = c->out.data + c->out.pos;
    *n = buf_unread(&c->out);
    return *n;
}

void tls_consume_out(struct tls_conn *c, size_t n)
{
    buf_consume(&c->out, n);
}

long tls_take_out(struct tls_conn *c, struct buf *dst)
{
    size_t held = buf_unread(&c->out);

    if (held == 0)
        return 0;
    if (buf_unread(dst) == 0) {
        /* The usual case (the caller emptied dst after tls_write): hand
         * over our buffer and keep dst's storage for the next records. */
        struct buf t = *dst;
        *dst = c->out;
        c->out = t;
    } else if (buf_append(dst, c->out.data + c->out.pos, held) != 0) {
        return -ENOMEM;
    }
    buf_reset(&c->out);
    buf_shrink(&c->out, TLS_OUT_KEEP);
    return (long)held;
}

int tls_handshake_done(const struct tls_conn *c)
{
    return c->handshake_done;
}

int tls_status(const struct tls_conn *c)
{
    return c->status;
}

const char *tls_reason(const struct tls_conn *c)
{
    return c->reason;
}

const char *tls_version(const struct tls_conn *c)
{
    return c->handshake_done ? SSL_get_version(c->ssl) : "";
}

const char *tls_cipher(const struct tls_conn *c)
{
    return c->handshake_done ? SSL_get_cipher_name(c->ssl) : "";
}

int tls_peer_verified(const struct tls_conn *c)
{
    if (!c->handshake_done || (!c->ctx->server && c->ctx->insecure))
        return 0;
    if (c->ctx->server && (SSL_get_verify_mode(c->ssl) & SSL_VERIFY_PEER) == 0)
        return 0;
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    return peer != NULL && SSL_get_verify_result(c->ssl) == X509_V_OK;
}
