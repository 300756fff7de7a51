/*
 * base/tls.h — TLS on a byte stream through two OpenSSL memory BIOs.
 *
 *   socket --uv_read--> tls_feed(ciphertext) --> [rbio | SSL | wbio]
 *                                                  |           |
 *   caller <--plaintext-- tls_read <---------------+           |
 *   caller --plaintext--> tls_write -------------------------->+
 *                                                              v
 *   socket <--outq / uv_write-- tls_take_out / tls_pending_out(ciphertext)
 *
 * The engine never touches a socket, a loop or a clock: the caller moves
 * ciphertext between the engine and its uv_stream, so TLS needs no second
 * event loop, no blocking I/O and no threads. It sits under base/outq: the
 * ciphertext is appended to the outq's pending buffer and written with the
 * connection's other output, once per loop iteration.
 *
 * Two objects:
 * - struct tls_ctx: one configuration (certificates, CA, protocols,
 *   ciphers, client authentication), built from file paths. Reference
 *   counted: every tls_conn holds a reference, so a reload may build a new
 *   ctx and drop the old one while old connections keep using theirs.
 * - struct tls_conn: one connection, server or client role after its ctx.
 *
 * Status convention (every int-returning function): 0 or a positive count
 * on success, a negative value on failure:
 *   -ENOMEM      allocation failed (the connection is unusable: close it);
 *   -EPROTO      TLS failed (handshake, verification, bad record, alert from
 *                the peer, plaintext on a TLS port): tls_reason() says why;
 *   TLS_EOF      the peer sent close_notify (a clean end, not an error);
 *   -EPIPE       tls_write() after tls_shutdown() or after TLS_EOF.
 * A failure is sticky: the first one is kept on the connection (tls_status,
 * tls_reason) and every later call returns it again without touching
 * OpenSSL. The caller logs tls_reason() once, writes what tls_pending_out()
 * still holds (usually the alert that tells the peer why) and closes.
 *
 * Output rule: any call may leave ciphertext to send (tls_conn_new for a
 * client: the ClientHello; tls_feed: handshake replies; tls_read: key
 * updates; tls_write: records; tls_shutdown: close_notify; a failure: an
 * alert). After each call, or once per loop iteration, the caller moves it
 * to its socket with tls_take_out() or tls_pending_out()/tls_consume_out().
 *
 * Input rule: tls_feed() buffers everything it is given (the caller's
 * read buffer is free on return); plaintext stays inside the engine until
 * tls_read() takes it, so a caller that stops reading plaintext must also
 * stop reading the socket (uv_read_stop) to bound memory.
 *
 * Use on a uv_stream (the shape of tests/unit/test_tls.c's t_uv_*):
 *   accept/connect: c = tls_conn_new(current_ctx, name); uv_read_start;
 *                   client: move the ClientHello out (below).
 *   read_cb(nread > 0): tls_feed(c, buf, nread); then
 *                   while ((n = tls_read(c, dst, cap)) > 0) parse dst;
 *                   n == TLS_EOF: tls_shutdown(c), flush, close after the write;
 *                   tls_status(c) < 0: log tls_reason(c) once, flush (the
 *                   alert), close after the write.
 *   read_cb(nread < 0): the socket ended; without a prior TLS_EOF the
 *                   stream was truncated (log it if it matters); close.
 *   output:         tls_write(c, plaintext) for each reply, then once per
 *                   loop iteration tls_take_out(c, outq_buf(q)) and
 *                   outq_schedule(q): encryption happens before outq's
 *                   single write. Formatting replies in place (reply_*
 *                   into outq_buf) needs a plaintext buffer per connection
 *                   that is encrypted at flush time instead.
 *   close cb:       tls_conn_free(c) next to outq_free(q).
 *   reload:         ctx = tls_ctx_new_server(&opts, err, len); on success
 *                   tls_ctx_unref(current_ctx); current_ctx = ctx. Live
 *                   connections keep the old configuration until they close.
 *
 * Renegotiation is refused in both roles (SSL_OP_NO_RENEGOTIATION); TLS 1.3
 * key updates are allowed.
 *
 * Memory: OpenSSL keeps each connection's record buffers (about 17 KB in
 * and 17 KB out, allocated on first use) instead of allocating and freeing
 * them around every read and write (SSL_MODE_RELEASE_BUFFERS is not set,
 * as in Redis): a busy connection pays no malloc per record; an idle TLS
 * connection costs ~34 KB more than a plain one. Single-threaded like the rest of redsnano: the
 * OpenSSL error queue is emptied before each operation (a cheap peek when it
 * is already empty, as it nearly always is) and read after it.
 */
#ifndef REDSNANO_BASE_TLS_H
#define REDSNANO_BASE_TLS_H

#include <stddef.h>

#include "base/buf.h"

#define TLS_EOF (-4095)        /* peer's close_notify (same value as UV_EOF) */
#define TLS_REASON_MAX 160     /* bytes of tls_reason(), NUL included */

/* Server role: how client certificates are asked for (auth-clients). */
enum tls_auth {
    TLS_AUTH_YES = 0,          /* required: SSL_VERIFY_PEER|FAIL_IF_NO_PEER_CERT */
    TLS_AUTH_NO,               /* not asked for */
    TLS_AUTH_OPTIONAL,         /* asked for, verified if sent: SSL_VERIFY_PEER */
};

/* Configuration, as file paths and redis.conf-style strings. Every field
 * may be NULL/0 unless said otherwise; strings are only read during
 * tls_ctx_new_*() and may be freed afterwards. */
struct tls_opts {
    const char *cert_file;     /* PEM chain; server: required; client: optional client cert */
    const char *key_file;      /* PEM private key for cert_file (NULL = inside cert_file) */
    const char *key_pass;      /* passphrase of an encrypted key (never prompted for) */
    const char *ca_file;       /* PEM CA bundle to verify the peer */
    const char *ca_dir;        /* hashed CA directory (c_rehash) to verify the peer */
    const char *protocols;     /* "TLSv1.2 TLSv1.3" (the default); TLSv1, TLSv1.1 too */
    const char *ciphers;       /* TLS <= 1.2 cipher list (SSL_CTX_set_cipher_list) */
    const char *ciphersuites;  /* TLS 1.3 suites (SSL_CTX_set_ciphersuites) */
    enum tls_auth auth_clients;/* server: TLS_AUTH_YES (0) unless set */
    int prefer_server_ciphers; /* server: our cipher order wins */
    const char *server_name;   /* client: SNI and the name the certificate must match
                                  (an IP literal is matched against IP SANs, no SNI) */
    int insecure;              /* client: do not verify the server at all (tests, --insecure) */
};

struct tls_ctx;
struct tls_conn;

/* Build a server configuration. cert_file is required; a CA (file or dir)
 * is required unless auth_clients is TLS_AUTH_NO. Returns the ctx with one
 * reference, or NULL with a message in err ("tls: cannot load certificate
 * /p/x.crt: No such file or directory") and no ctx allocated. */
struct tls_ctx *tls_ctx_new_server(const struct tls_opts *o, char *err, size_t errlen);

/* Build a client configuration. The server is verified against ca_file /
 * ca_dir (the system's default paths when both are NULL) and, when
 * server_name is set, its name; unless o->insecure. A client certificate is
 * sent when cert_file is set. Returns as tls_ctx_new_server(). */
struct tls_ctx *tls_ctx_new_client(const struct tls_opts *o, char *err, size_t errlen);

/* Take another reference (returns ctx). */
struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx);

/* Drop a reference; the last one frees the ctx. NULL is a no-op. */
void tls_ctx_unref(struct tls_ctx *ctx);

/* Parse "yes" / "no" / "optional" (case-insensitive). Returns 0, or
 * -EINVAL with *out unchanged. */
int tls_auth_parse(const char *s, enum tls_auth *out);

/* A connection in ctx's role; takes a reference on ctx. server_name
 * (client role, may be NULL) overrides the ctx's o->server_name for this
 * connection (one ctx for many backends). A client starts its handshake at
 * once: the ClientHello waits in the output. Returns NULL on allocation
 * failure (nothing to free). A handshake that cannot even start shows as a
 * failure status on the connection, returned by the next call. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *server_name);

/* Free the connection and drop its ctx reference. No close_notify is sent
 * (call tls_shutdown and write the output first for a clean close).
 * NULL is a no-op. */
void tls_conn_free(struct tls_conn *c);

/* Give the engine n bytes read from the socket (copied; p is free on
 * return) and advance the handshake. Returns 0 (also while the handshake
 * is incomplete), -EPROTO, -ENOMEM, or a sticky earlier status. Plaintext
 * that arrived is taken with tls_read(). n == 0 only advances. */
int tls_feed(struct tls_conn *c, const void *p, size_t n);

/* Copy up to cap bytes of decrypted plaintext into dst. Returns the count
 * (> 0), 0 when no whole record is buffered (feed more), TLS_EOF once the
 * peer's close_notify was read (all plaintext before it has been returned),
 * -EPROTO or -ENOMEM. Plaintext decrypted before a failure is returned
 * first; the failure comes with the next call. Also processes what arrives
 * after the handshake (TLS 1.3 tickets and key updates, alerts), so call it
 * after every tls_feed; loop until it returns <= 0. */
long tls_read(struct tls_conn *c, void *dst, size_t cap);

/* Encrypt n bytes of plaintext (copied). Before the handshake completes
 * they are buffered and encrypted as soon as it does, in order. Returns 0,
 * -EPIPE after tls_shutdown() or TLS_EOF, -EPROTO, -ENOMEM. */
int tls_write(struct tls_conn *c, const void *p, size_t n);

/* Queue our close_notify (once; later calls return 0 and do nothing).
 * Before the handshake completes nothing is queued and plaintext buffered
 * by tls_write is dropped. The caller
 * writes the output and then closes the socket; it need not wait for the
 * peer's close_notify. Returns 0 or the sticky failure status. */
int tls_shutdown(struct tls_conn *c);

/* Ciphertext waiting to be sent: *p (valid until the next call on c) and
 * *n. Returns *n. */
size_t tls_pending_out(struct tls_conn *c, const char **p, size_t *n);

/* Mark n bytes of tls_pending_out() as sent (n <= *n). */
void tls_consume_out(struct tls_conn *c, size_t n);

/* Append all waiting ciphertext to dst (e.g. outq_buf(q); then
 * outq_schedule(q)). When dst holds no unread bytes the engine's buffer is
 * swapped with dst instead of copied (dst->data changes; the engine keeps
 * dst's old storage for the next records). Returns the byte count (>= 0)
 * or -ENOMEM, in which case dst is unchanged and the output stays in the
 * engine. */
long tls_take_out(struct tls_conn *c, struct buf *dst);

/* Handshake completed (and, for a verifying client, the server verified). */
int tls_handshake_done(const struct tls_conn *c);

/* The sticky status: 0 while healthy, else the first failure (see top). */
int tls_status(const struct tls_conn *c);

/* Why the connection failed: OpenSSL's reason for the first error, with
 * the verification result when relevant ("certificate verify failed:
 * hostname mismatch", "wrong version number", "peer did not return a
 * certificate", "sslv3 alert bad certificate"), "close_notify received"
 * after TLS_EOF, or "" while healthy. Valid until tls_conn_free. */
const char *tls_reason(const struct tls_conn *c);

/* Negotiated protocol and cipher ("TLSv1.3", "TLS_AES_256_GCM_SHA384"), or
 * "" before the handshake. For logs and INFO. */
const char *tls_version(const struct tls_conn *c);
const char *tls_cipher(const struct tls_conn *c);

/* The peer sent a certificate that verified (server role with auth yes or
 * optional; client role unless insecure). */
int tls_peer_verified(const struct tls_conn *c);

#endif
