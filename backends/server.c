/*
 * backends/server.c — a connection to one Redis server (see server.h).
 *
 *   server_send ─> outq (flushed before poll) ─> socket
 *   socket ─> server_read ─> s->in ─> replyframe_scan ─> head srvreq ─> on_reply
 *                                                     └─> push (pub/sub)
 *   error / EOF / timeout ─> server_close ─> every srvreq gets an -ERR
 */
#include "backends/server.h"

#include "backends/backend.h"

#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define SERVER_READ_CHUNK (64 * 1024)   /* room offered to each read */
#define SERVER_IN_KEEP (256 * 1024)     /* keep an empty input buffer up to this size */

/* Ciphertext read from a TLS connection, handed to its engine at once. */
static char tls_scratch[SERVER_READ_CHUNK];

uint64_t server_now(const struct server *s)
{
    return uv_now(s->tcp.loop);
}

static void server_handle_closed(uv_handle_t *h)
{
    struct server *s = h->data;

    if (--s->handles > 0)
        return;
    outq_free(&s->out);
    buf_free(&s->in);
    replyframe_free(&s->rf);
    tls_conn_free(s->tls);
    s->tls = NULL;
    if (s->on_close)
        s->on_close(s);
}

/* Answer every queued request with an error built from why. */
static void server_fail_all(struct server *s, const char *why)
{
    char msg[400];
    int n = snprintf(msg, sizeof(msg), "-ERR redsnano: backend %s%s%s%s %s\r\n", s->name,
                     s->role ? " (" : "", s->role ? s->role : "", s->role ? ")" : "", why);
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = (int)sizeof(msg) - 1;

    while (s->head) {
        struct srvreq *r = s->head;
        s->head = r->next;
        s->nreqs--;
        if (s->backend)
            s->backend->errors++;
        r->next = NULL;
        r->server = NULL;
        r->on_reply(r, msg, (size_t)n, 1);
    }
    s->tail = NULL;
}

void server_close(struct server *s, const char *why)
{
    if (s->state == SERVER_CLOSING)
        return;
    s->state = SERVER_CLOSING;
    snprintf(s->err, sizeof(s->err), "%s", why);
    outq_detach(&s->out);
    uv_timer_stop(&s->timer);
    uv_read_stop((uv_stream_t *)&s->tcp);
    uv_close((uv_handle_t *)&s->tcp, server_handle_closed);
    uv_close((uv_handle_t *)&s->timer, server_handle_closed);
    server_fail_all(s, why);
}

static void server_out_error(struct outq *q, int status)
{
    struct server *s = (struct server *)((char *)q - offsetof(struct server, out));
    char why[128];
    snprintf(why, sizeof(why), "write failed (%s)", uv_strerror(status));
    log_verbose("Backend %s: %s", s->name, why);
    server_close(s, why);
}

static void server_arm_timer(struct server *s);

static void server_timer_cb(uv_timer_t *t)
{
    struct server *s = t->data;
    char why[96];

    if (s->state == SERVER_CONNECTING) {
        snprintf(why, sizeof(why), "connect timed out");
        log_verbose("Backend %s: %s", s->name, why);
        server_close(s, why);
        return;
    }
    if (s->head == NULL || s->head->deadline == SRVREQ_NO_DEADLINE)
        return;
    uint64_t now = server_now(s);
    if (now >= s->head->deadline) {
        snprintf(why, sizeof(why), "timed out after %llu ms", (unsigned long long)s->timeout_ms);
        log_verbose("Backend %s: %s", s->name, why);
        server_close(s, why);
        return;
    }
    server_arm_timer(s);
}

/* Make sure the timer fires by the head request's deadline. */
static void server_arm_timer(struct server *s)
{
    if (s->head == NULL || s->head->deadline == SRVREQ_NO_DEADLINE || uv_is_active((uv_handle_t *)&s->timer))
        return;
    uint64_t now = server_now(s);
    uint64_t wait = s->head->deadline > now ? s->head->deadline - now : 0;
    uv_timer_start(&s->timer, server_timer_cb, wait, 0);
}

/* Deliver the complete reply at the start of s->in. */
static void server_deliver(struct server *s, const char *reply, size_t len)
{
    struct srvreq *r = s->head;
    if (s->push && r != &s->hs_req) {
        s->push(s, reply, len);
        return;
    }
    if (r == NULL) {
        /* A reply nobody asked for: the stream is out of sync. */
        log_warn("Backend %s: unexpected reply with no request outstanding; closing", s->name);
        server_close(s, "sent an unexpected reply");
        return;
    }
    s->head = r->next;
    if (s->head == NULL)
        s->tail = NULL;
    s->nreqs--;
    r->next = NULL;
    r->server = NULL;
    r->on_reply(r, reply, len, 0);
}

/* A RESP3 push at p (inside s->in, after the gathered replies): hand it
 * to on_push, then remove its bytes from the input. */
static void server_oob_push(struct server *s, const char *p, size_t n)
{
    if (s->on_push)
        s->on_push(s, p, n);
    else
        s->pushes_dropped++;
    if (s->state != SERVER_CONNECTED)
        return;
    size_t off = (size_t)(p - s->in.data);
    memmove(s->in.data + off, s->in.data + off + n, s->in.len - off - n);
    s->in.len -= n;
}

static void server_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct server *s = h->data;
    (void)suggested;

    if (s->tls) {
        *b = uv_buf_init(tls_scratch, sizeof(tls_scratch));
        return;
    }
    if (buf_reserve(&s->in, SERVER_READ_CHUNK) != 0) {
        *b = uv_buf_init(NULL, 0);
        return;
    }
    *b = uv_buf_init(s->in.data + s->in.len, (unsigned)(s->in.cap - s->in.len));
}

/* Close s for a TLS failure, with the engine's reason. */
static void server_tls_failed(struct server *s)
{
    char why[TLS_REASON_MAX + 16];
    snprintf(why, sizeof(why), "TLS failed: %s", tls_reason(s->tls));
    log_warn("Backend %s: %s", s->name, why);
    server_close(s, why);
}

/* n bytes of ciphertext arrived: decrypt what they complete into s->in.
 * Returns 0, or -1 when the connection failed (closed). */
static int server_tls_input(struct server *s, const char *p, size_t n)
{
    long got;

    if (tls_feed(s->tls, p, n) < 0) {
        server_tls_failed(s);
        return -1;
    }
    for (;;) {
        if (buf_reserve(&s->in, SERVER_READ_CHUNK) != 0) {
            server_close(s, "out of memory");
            return -1;
        }
        got = tls_read(s->tls, s->in.data + s->in.len, s->in.cap - s->in.len);
        if (got <= 0)
            break;
        s->in.len += (size_t)got;
    }
    outq_schedule(&s->out);           /* handshake replies, key updates */
    if (got == TLS_EOF) {
        server_close(s, "connection lost (TLS closed by the server)");
        return -1;
    }
    if (got < 0) {
        server_tls_failed(s);
        return -1;
    }
    return 0;
}

/* outq hook: encrypt what was queued this iteration, add the engine's own
 * output (handshake, alerts), and let outq write the ciphertext. */
static int server_tls_encrypt(struct outq *q)
{
    struct server *s = (struct server *)((char *)q - offsetof(struct server, out));
    size_t n = buf_unread(&q->pending);

    if (n > 0 && tls_write(s->tls, q->pending.data + q->pending.pos, n) < 0)
        return -EPROTO;
    buf_reset(&q->pending);
    if (tls_take_out(s->tls, &q->pending) < 0)
        return -ENOMEM;
    return 0;
}

static void server_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    struct server *s = stream->data;

    if (nread < 0) {
        char why[128];
        snprintf(why, sizeof(why), "connection lost (%s)",
                 nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        log_verbose("Backend %s: %s", s->name, why);
        server_close(s, why);
        return;
    }
    if (nread == 0)
        return;
    if (s->tls) {
        if (server_tls_input(s, b->base, (size_t)nread) < 0)
            return;
    } else {
        s->in.len += (size_t)nread;
    }

    while (s->state == SERVER_CONNECTED && buf_unread(&s->in) > s->gathered) {
        const char *p = s->in.data + s->in.pos;
        long long n = replyframe_scan(&s->rf, p + s->gathered, buf_unread(&s->in) - s->gathered);
        if (n == 0)
            break;
        if (n < 0) {
            log_warn("Backend %s: reply is not valid RESP; closing", s->name);
            server_close(s, "sent a reply that is not valid RESP");
            return;
        }
        if (replyframe_is_push(&s->rf) && s->push == NULL) {
            /* Out of band: cut it out of the stream of replies. */
            server_oob_push(s, p + s->gathered, (size_t)n);
            if (s->state != SERVER_CONNECTED)
                return;
            continue;
        }
        s->gathered += (size_t)n;
        s->ngathered++;
        if (s->push == NULL && s->head != NULL && s->ngathered < s->head->replies)
            continue;                 /* the head expects more replies */
        size_t span = s->gathered;
        s->gathered = 0;
        s->ngathered = 0;
        server_deliver(s, p, span);
        buf_consume(&s->in, span);
    }
    if (s->state == SERVER_CONNECTED) {
        buf_shrink(&s->in, SERVER_IN_KEEP);
        server_arm_timer(s);
    }
}

static void server_connected(uv_connect_t *req, int status)
{
    struct server *s = req->data;

    if (s->state == SERVER_CLOSING)
        return;
    if (status < 0) {
        char why[128];
        snprintf(why, sizeof(why), "unavailable (%s)", uv_strerror(status));
        log_verbose("Backend %s: %s", s->name, why);
        server_close(s, why);
        return;
    }
    uv_timer_stop(&s->timer);
    s->state = SERVER_CONNECTED;
    uv_tcp_nodelay(&s->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&s->tcp, server_alloc, server_read);
    if (rc < 0) {
        server_close(s, "could not read");
        return;
    }
    if (s->hs && s->hs->tls) {
        if ((s->tls = handshake_tls(s)) == NULL) {
            server_close(s, "out of memory");
            return;
        }
        s->out.before_write = server_tls_encrypt;
    }
    outq_attach(&s->out, (uv_stream_t *)&s->tcp);
    if (s->tls)
        outq_schedule(&s->out);       /* the ClientHello */
    server_arm_timer(s);
    if (s->on_connect)
        s->on_connect(s);
}

int server_connect(struct server *s, uv_loop_t *loop, const struct sockaddr *addr,
                   const char *name, uint64_t connect_timeout_ms, uint64_t timeout_ms)
{
    int rc;

    snprintf(s->name, sizeof(s->name), "%s", name);
    outq_init(&s->out, server_out_error);
    s->timeout_ms = timeout_ms;
    s->state = SERVER_CONNECTING;
    s->proto = 2;
    if ((rc = uv_tcp_init(loop, &s->tcp)) < 0)
        return rc;
    s->tcp.data = s;
    if ((rc = uv_timer_init(loop, &s->timer)) < 0) {
        s->handles = 1;
        s->on_close = NULL;
        uv_close((uv_handle_t *)&s->tcp, NULL);
        return rc;
    }
    s->timer.data = s;
    s->handles = 2;
    if (handshake_begin(s) < 0) {
        server_close(s, "out of memory");
        return 0;                 /* on_close will be called: report through it */
    }
    s->connect_req.data = s;
    rc = uv_tcp_connect(&s->connect_req, &s->tcp, addr, server_connected);
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof(why), "unavailable (%s)", uv_strerror(rc));
        server_close(s, why);
        return 0;                 /* on_close will be called: report through it */
    }
    if (connect_timeout_ms)
        uv_timer_start(&s->timer, server_timer_cb, connect_timeout_ms, 0);
    return 0;
}

void server_send(struct server *s, struct srvreq *r, const char *bytes, size_t len)
{
    r->next = NULL;
    if (s->state == SERVER_CLOSING) {
        char msg[400];
        int n = snprintf(msg, sizeof(msg), "-ERR redsnano: backend %s%s%s%s %s\r\n", s->name,
                         s->role ? " (" : "", s->role ? s->role : "", s->role ? ")" : "",
                         s->err[0] ? s->err : "unavailable");
        if (n < 0 || (size_t)n >= sizeof(msg))
            n = (int)sizeof(msg) - 1;
        r->server = NULL;
        r->on_reply(r, msg, (size_t)n, 1);
        return;
    }
    if (outq_append(&s->out, bytes, len) != 0) {
        server_close(s, "out of memory");
        r->server = NULL;
        r->on_reply(r, "-ERR redsnano: out of memory\r\n", 30, 1);
        return;
    }
    r->server = s;
    if (r->deadline == 0)
        r->deadline = s->timeout_ms ? server_now(s) + s->timeout_ms : SRVREQ_NO_DEADLINE;
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    s->nreqs++;
    s->requests++;
    if (s->state == SERVER_CONNECTED && s->head == r)
        server_arm_timer(s);
}

int server_read_now(struct server *s)
{
    uv_os_fd_t fd;

    if (s->state != SERVER_CONNECTED || uv_fileno((uv_handle_t *)&s->tcp, &fd) != 0)
        return s->state == SERVER_CONNECTED ? 0 : -1;
    for (;;) {
        uv_buf_t b;
        server_alloc((uv_handle_t *)&s->tcp, SERVER_READ_CHUNK, &b);
        if (b.len == 0)
            return 0;
        ssize_t n = recv(fd, b.base, b.len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        /* Data, EOF (0) or an error: the read callback's own handling. */
        server_read((uv_stream_t *)&s->tcp, n > 0 ? n : n == 0 ? UV_EOF : uv_translate_sys_error(errno), &b);
        if (s->state != SERVER_CONNECTED)
            return -1;
        if ((size_t)n < b.len)
            return 0;
    }
}

static void asking_done(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    (void)reply;
    (void)len;
    (void)failed;
    free(sr);                           /* ASKING's +OK: nobody waits for it */
}

int server_send_asking(struct server *s)
{
    static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
    struct srvreq *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return -ENOMEM;
    a->on_reply = asking_done;
    server_send(s, a, asking, sizeof(asking) - 1);
    return 0;
}

void server_send_raw(struct server *s, const char *bytes, size_t len)
{
    if (s->state == SERVER_CLOSING)
        return;
    if (outq_append(&s->out, bytes, len) != 0)
        server_close(s, "out of memory");
}

/* A HELLO the connection sends for itself. */
struct server_hello_req {
    struct srvreq r;                  /* in the FIFO */
    struct server *s;                 /* the connection */
};

/* HELLO's reply: nothing to keep; a refusal leaves the connection unusable. */
static void server_hello_done(struct srvreq *r, const char *reply, size_t len, int failed)
{
    struct server *s = ((struct server_hello_req *)r)->s;

    if (!failed && len > 0 && (reply[0] == '-' || reply[0] == '!') && s != NULL) {
        char why[160];
        int n = (int)(len > 100 ? 100 : len);
        snprintf(why, sizeof(why), "refused HELLO %d (%.*s)", s->proto, n - 2 > 0 ? n - 2 : 0, reply + 1);
        log_warn("Backend %s: %s", s->name, why);
        server_close(s, why);
    }
    free(r);
}

int server_hello(struct server *s, int proto)
{
    struct server_hello_req *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    h->r.on_reply = server_hello_done;
    h->s = s;
    s->proto = (uint8_t)proto;
    static const char hello3[] = "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", hello2[] = "*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n";
    server_send(s, &h->r, proto == 3 ? hello3 : hello2, sizeof(hello3) - 1);
    return 0;
}

void server_read_pause(struct server *s)
{
    if (s->state == SERVER_CONNECTED)
        uv_read_stop((uv_stream_t *)&s->tcp);
}

void server_read_resume(struct server *s)
{
    if (s->state == SERVER_CONNECTED && uv_read_start((uv_stream_t *)&s->tcp, server_alloc, server_read) < 0)
        server_close(s, "could not read");
}
