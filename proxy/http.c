/*
 * proxy/http.c — the operations port (see http.h).
 *
 *   accept ─> http_read ─> http_parser_execute ─┬─ url / body callbacks (bounded)
 *                                              └─ message complete ─> http_dispatch
 *        ─> respond() ─> outq ─> drained ─> close
 *   /cache: http_dispatch ─> client_feed(internal client, RESP) ... router, L1, backend ...
 *        ─> reply in the internal client's output ─> http_before_sleep ─> respond()
 *
 * Why libhttp-parser: it is a callback parser with no allocation and no
 * I/O of its own, so it sits on our libuv loop and our buffers as hiredis's
 * reader does; libh2o would bring its own event loop glue, HTTP/2 and TLS
 * stacks that an operations port does not need.
 */
#include "proxy/http.h"

#include <errno.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "backends/backend.h"
#include "backends/cluster.h"
#include "backends/health.h"
#include "backends/topology.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/outq.h"
#include "protocol/reply.h"
#include "protocol/command.h"
#include "proxy/auth.h"
#include "proxy/client.h"
#include "proxy/metrics.h"
#include "proxy/proxy.h"

#define LISTEN_BACKLOG 511

enum cache_op { CACHE_NONE = 0, CACHE_GET, CACHE_PUT, CACHE_DELETE };

/* One HTTP connection: one request, one response. */
struct http_conn {
    uv_tcp_t tcp;                     /* the socket */
    uv_timer_t timer;                 /* http-timeout */
    http_parser parser;               /* request parser state */
    struct outq out;                  /* the response */
    struct buf url;                   /* request target as sent */
    struct buf body;                  /* request body */
    int status;                       /* a status decided while parsing (413, 414), 0 = none */
    int complete;                     /* the whole request was read */
    int responded;                    /* a response is queued */
    int open_handles;                 /* tcp + timer not yet closed */
    int closing;                      /* closing started */
    struct client *cache;             /* the internal client of a /cache request, or NULL */
    char hname[16];                   /* the header field being read (first bytes, lower case) */
    size_t hname_len;                 /* its length so far (may exceed the buffer) */
    int in_value;                     /* a header value is being read */
    struct buf authz;                 /* the Authorization header's value (bounded) */
    enum cache_op op;                 /* what that request does */
    struct http_conn *prev, *next;    /* every connection */
    char rbuf[HTTP_READ_CHUNK];       /* read buffer */
};

static uv_tcp_t listener;
static int listening;
static struct http_conn *conns;       /* every open connection */
static http_parser_settings settings;

/* ---- closing -------------------------------------------------------------- */

static void conn_closed(uv_handle_t *h)
{
    struct http_conn *hc = h->data;
    if (--hc->open_handles > 0)
        return;
    outq_free(&hc->out);
    buf_free(&hc->url);
    buf_free(&hc->body);
    buf_free(&hc->authz);
    free(hc);
}

static void conn_close(struct http_conn *hc)
{
    if (hc->closing)
        return;
    hc->closing = 1;
    if (hc->cache) {
        client_close(hc->cache);      /* its requests in flight are abandoned */
        hc->cache = NULL;
    }
    outq_detach(&hc->out);
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    uv_timer_stop(&hc->timer);
    uv_close((uv_handle_t *)&hc->timer, conn_closed);
    uv_close((uv_handle_t *)&hc->tcp, conn_closed);
}

static void out_error(struct outq *q, int status)
{
    struct http_conn *hc = (struct http_conn *)((char *)q - offsetof(struct http_conn, out));
    (void)status;
    conn_close(hc);
}

static void out_drained(struct outq *q)
{
    struct http_conn *hc = (struct http_conn *)((char *)q - offsetof(struct http_conn, out));
    if (hc->responded)
        conn_close(hc);
}

static void on_timeout(uv_timer_t *t)
{
    struct http_conn *hc = t->data;
    log_verbose("HTTP client timed out (http-timeout %d ms)", proxy->cfg->http_timeout);
    conn_close(hc);
}

/* ---- responses -------------------------------------------------------------- */

static const char *reason(int code)
{
    switch (code) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* Queue the response (once) and stop reading: the connection closes when
 * it is written. */
static void respond(struct http_conn *hc, int code, const char *ctype, const char *body, size_t len)
{
    struct buf *b = outq_buf(&hc->out);

    if (hc->responded || hc->closing)
        return;
    hc->responded = 1;
    uv_read_stop((uv_stream_t *)&hc->tcp);
    buf_printf(b, "HTTP/1.1 %d %s\r\nServer: redsnano/%s\r\nConnection: close\r\n", code, reason(code),
               REDSNANO_VERSION);
    if (code == 405)
        buf_printf(b, "Allow: GET, PUT, DELETE\r\n");
    if (code == 401)
        buf_printf(b, "WWW-Authenticate: Basic realm=\"redsnano\", charset=\"UTF-8\"\r\n");
    if (code != 204) {
        buf_printf(b, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n", ctype, len);
        if (hc->parser.method != HTTP_HEAD)
            buf_append(b, body, len);
    } else {
        buf_printf(b, "\r\n");
    }
    if (b->oom) {
        conn_close(hc);
        return;
    }
    outq_schedule(&hc->out);
}

static void respond_text(struct http_conn *hc, int code, const char *text)
{
    respond(hc, code, "text/plain; charset=utf-8", text, strlen(text));
}

/* ---- /readyz ------------------------------------------------------------------ */

/* Can the proxy serve writes? 1, or 0 with the reason in why. */
static int ready(char *why, size_t cap)
{
    struct topology *t = &proxy->topo;

    if (proxy->shutting_down) {
        snprintf(why, cap, "shutting down\n");
        return 0;
    }
    if (t->mode == TOPOLOGY_CLUSTER) {
        for (int slot = 0; slot < CLUSTER_SLOTS; slot++) {
            if (topology_write_backend(t, slot) == NULL) {
                snprintf(why, cap, "cluster slot map incomplete: slot %d has no node\n", slot);
                return 0;
            }
        }
        snprintf(why, cap, "ready: every slot has a primary\n");
        return 1;
    }
    struct backend *p = &t->primary;
    if (!p->healthy) {
        struct health_figures h;
        const char *cause = health_figures(p, &h) == 0 && h.why && h.why[0] ? h.why : p->err;
        snprintf(why, cap, "primary %s is down: %s\n", p->name, cause[0] ? cause : "failing health checks");
        return 0;
    }
    snprintf(why, cap, "ready: primary %s is up\n", p->name);
    return 1;
}

/* ---- /cache/{key} ---------------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode s[0, n) into out. 0, or -1 on a bad escape. */
static int url_decode(const char *s, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]);
            int lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (buf_append(out, &ch, 1) != 0)
            return -1;
    }
    return 0;
}

/* ?ttl=N in query q[0, n): N > 0 in *ttl (0 when absent). 0, or -1 when bad. */
static int query_ttl(const char *q, size_t n, long long *ttl)
{
    *ttl = 0;
    while (n > 0) {
        const char *amp = memchr(q, '&', n);
        size_t plen = amp ? (size_t)(amp - q) : n;
        if (plen > 4 && memcmp(q, "ttl=", 4) == 0) {
            char num[24];
            if (plen - 4 >= sizeof(num))
                return -1;
            memcpy(num, q + 4, plen - 4);
            num[plen - 4] = '\0';
            char *end;
            errno = 0;
            long long v = strtoll(num, &end, 10);
            if (*end != '\0' || errno || v <= 0)
                return -1;
            *ttl = v;
        } else if (plen >= 3 && memcmp(q, "ttl", 3) == 0 && (plen == 3 || q[3] == '=')) {
            return -1;                  /* ttl without a value */
        }
        if (amp == NULL)
            break;
        n -= plen + 1;
        q = amp + 1;
    }
    return 0;
}

static void resp_arg(struct buf *b, const char *p, size_t n)
{
    buf_printf(b, "$%zu\r\n", n);
    buf_append(b, p, n);
    buf_append(b, "\r\n", 2);
}

/* Run the cache request through an internal client: the same router, L1
 * and backends as any client's. */
static void cache_request(struct http_conn *hc, const struct acl_user *user, const char *key, size_t klen,
                          long long ttl)
{
    struct buf req = { 0 };
    char num[24];

    switch (hc->parser.method) {
    case HTTP_GET:
    case HTTP_HEAD:
        hc->op = CACHE_GET;
        buf_printf(&req, "*2\r\n");
        resp_arg(&req, "GET", 3);
        resp_arg(&req, key, klen);
        break;
    case HTTP_PUT:
        hc->op = CACHE_PUT;
        buf_printf(&req, "*%d\r\n", ttl > 0 ? 5 : 3);
        resp_arg(&req, "SET", 3);
        resp_arg(&req, key, klen);
        resp_arg(&req, hc->body.data ? hc->body.data : "", hc->body.len);
        if (ttl > 0) {
            resp_arg(&req, "EX", 2);
            int n = snprintf(num, sizeof(num), "%lld", ttl);
            resp_arg(&req, num, (size_t)n);
        }
        break;
    case HTTP_DELETE:
        hc->op = CACHE_DELETE;
        buf_printf(&req, "*2\r\n");
        resp_arg(&req, "DEL", 3);
        resp_arg(&req, key, klen);
        break;
    default:
        respond_text(hc, 405, "method not allowed: GET, PUT or DELETE\n");
        return;
    }
    if (req.oom || (hc->cache = client_internal_open(user)) == NULL || client_feed(hc->cache, req.data, req.len) < 0) {
        respond_text(hc, 500, "out of memory\n");
    }
    buf_free(&req);
}

/* The proxy user an HTTP request acts as: the one its Basic credentials
 * name (*refused and a 401 answered when they are wrong, or missing while
 * the proxy requires AUTH); NULL without *refused: the default user, as a
 * client that never sent AUTH. */
static const struct acl_user *http_user(struct http_conn *hc, int *refused)
{
    static const char basic[] = "basic ";
    unsigned char dec[HTTP_MAX_AUTHZ];
    const char *v = hc->authz.data;
    size_t n = hc->authz.len;

    *refused = 0;
    if (n == 0 && !auth_required())
        return NULL;                    /* the default user, as a new client */
    while (n > 0 && v[0] == ' ') {
        v++;
        n--;
    }
    if (n > sizeof(basic) - 1 && cmd_word_eq(v, sizeof(basic) - 1, basic)) {
        v += sizeof(basic) - 1;
        n -= sizeof(basic) - 1;
        while (n > 0 && v[n - 1] == ' ')
            n--;
        int len = n % 4 == 0 && n < sizeof(dec) ? EVP_DecodeBlock(dec, (const unsigned char *)v, (int)n) : -1;
        /* EVP_DecodeBlock counts the '=' padding as zero bytes. */
        for (size_t k = n; len > 0 && k > 0 && v[k - 1] == '='; k--)
            len--;
        const unsigned char *colon = len > 0 ? memchr(dec, ':', (size_t)len) : NULL;
        if (colon != NULL) {
            const struct acl_user *u = auth_basic((const char *)dec, (size_t)(colon - dec), (const char *)colon + 1,
                                                  (size_t)len - (size_t)(colon - dec) - 1);
            OPENSSL_cleanse(dec, sizeof(dec));
            if (u != NULL)
                return u;
        }
        OPENSSL_cleanse(dec, sizeof(dec));
    }
    *refused = 1;
    respond_text(hc, 401, "authentication required: HTTP Basic with a proxy user (requirepass / user)\n");
    return NULL;
}

/* The internal client's reply (complete) becomes the response. */
static void cache_reply(struct http_conn *hc, const char *p, size_t n)
{
    struct reply_item it;
    long long hl = reply_item_parse(p, n, &it);

    if (hl <= 0) {
        respond_text(hc, 502, "unreadable reply\n");
        return;
    }
    if (p[0] == '-') {
        /* An error line: "-WRONGTYPE ...\r\n". */
        size_t len = n >= 2 ? n - 2 : n;
        struct buf t = { 0 };
        buf_append(&t, p + 1, len - 1);
        buf_append(&t, "\n", 1);
        int code = len > 10 && memcmp(p + 1, "WRONGTYPE", 9) == 0 ? 409
                 : len > 7 && memcmp(p + 1, "NOPERM", 6) == 0      ? 403
                                                                   : 502;
        respond(hc, code, "text/plain; charset=utf-8", t.data ? t.data : "", t.len);
        buf_free(&t);
        return;
    }
    switch (hc->op) {
    case CACHE_GET:
        if (p[0] == '$' && it.n >= 0) {
            const char *nl = memchr(p, '\n', n);
            respond(hc, 200, "application/octet-stream", nl + 1, (size_t)it.n);
        } else if (p[0] == '$') {
            respond_text(hc, 404, "no such key\n");
        } else {
            respond_text(hc, 502, "unexpected reply to GET\n");
        }
        break;
    case CACHE_PUT:
        if (p[0] == '+')
            respond(hc, 204, "", "", 0);
        else
            respond_text(hc, 502, "unexpected reply to SET\n");
        break;
    case CACHE_DELETE:
        if (p[0] == ':' && n > 1 && p[1] != '0')
            respond(hc, 204, "", "", 0);
        else if (p[0] == ':')
            respond_text(hc, 404, "no such key\n");
        else
            respond_text(hc, 502, "unexpected reply to DEL\n");
        break;
    case CACHE_NONE:
        break;
    }
}

void http_before_sleep(void)
{
    struct http_conn *next;
    for (struct http_conn *hc = conns; hc; hc = next) {
        next = hc->next;
        if (hc->cache == NULL)
            continue;
        struct buf *out = outq_buf(&hc->cache->out);
        size_t n = buf_unread(out);
        if (n == 0)
            continue;
        const char *p = out->data + out->pos;
        struct reply_item it;
        long long hl = reply_item_parse(p, n, &it);
        if (hl == 0)
            continue;                   /* not whole yet */
        cache_reply(hc, p, n);
        client_close(hc->cache);
        hc->cache = NULL;
    }
}

/* ---- dispatch ---------------------------------------------------------------- */

static void http_dispatch(struct http_conn *hc)
{
    struct http_parser_url u;
    const char *url = hc->url.data ? hc->url.data : "";
    int method = hc->parser.method;

    http_parser_url_init(&u);
    if (hc->url.len == 0 || http_parser_parse_url(url, hc->url.len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH))) {
        respond_text(hc, 400, "bad request target\n");
        return;
    }
    const char *path = url + u.field_data[UF_PATH].off;
    size_t plen = u.field_data[UF_PATH].len;
    const char *query = (u.field_set & (1 << UF_QUERY)) ? url + u.field_data[UF_QUERY].off : "";
    size_t qlen = (u.field_set & (1 << UF_QUERY)) ? u.field_data[UF_QUERY].len : 0;

#define PATH_IS(s) (plen == sizeof(s) - 1 && memcmp(path, s, plen) == 0)
    if (PATH_IS("/healthz") || PATH_IS("/readyz") || PATH_IS("/metrics")) {
        if (method != HTTP_GET && method != HTTP_HEAD) {
            respond_text(hc, 405, "method not allowed\n");
            return;
        }
        if (PATH_IS("/healthz")) {
            respond_text(hc, 200, "ok\n");
        } else if (PATH_IS("/readyz")) {
            char why[512];
            int ok = ready(why, sizeof(why));
            respond_text(hc, ok ? 200 : 503, why);
        } else {
            struct buf m = { 0 };
            metrics_render(&m);
            if (m.oom)
                respond_text(hc, 500, "out of memory\n");
            else
                respond(hc, 200, "text/plain; version=0.0.4; charset=utf-8", m.data ? m.data : "", m.len);
            buf_free(&m);
        }
        return;
    }
    if (plen > 7 && memcmp(path, "/cache/", 7) == 0) {
        struct buf key = { 0 };
        long long ttl = 0;
        if (url_decode(path + 7, plen - 7, &key) < 0 || key.len == 0) {
            respond_text(hc, 400, "bad key: empty or a bad %-escape\n");
        } else if (query_ttl(query, qlen, &ttl) < 0 || (ttl > 0 && method != HTTP_PUT)) {
            respond_text(hc, 400, "bad ttl: ?ttl=<seconds > 0>, with PUT only\n");
        } else {
            int refused;
            const struct acl_user *user = http_user(hc, &refused);
            if (!refused)
                cache_request(hc, user, key.data, key.len, ttl);
        }
        buf_free(&key);
        return;
    }
#undef PATH_IS
    respond_text(hc, 404, "not found: /metrics, /healthz, /readyz, /cache/{key}\n");
}

/* ---- parsing -------------------------------------------------------------- */

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    if (hc->url.len + len > HTTP_MAX_URL) {
        hc->status = 414;
        http_parser_pause(p, 1);
        return 0;
    }
    return buf_append(&hc->url, at, len) == 0 ? 0 : -1;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    if (hc->in_value) {                 /* a new field starts */
        hc->in_value = 0;
        hc->hname_len = 0;
    }
    for (size_t i = 0; i < len; i++, hc->hname_len++)
        if (hc->hname_len < sizeof(hc->hname))
            hc->hname[hc->hname_len] = (char)(at[i] >= 'A' && at[i] <= 'Z' ? at[i] + 32 : at[i]);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    hc->in_value = 1;
    if (hc->hname_len != 13 || memcmp(hc->hname, "authorization", 13) != 0)
        return 0;
    if (hc->authz.len + len > HTTP_MAX_AUTHZ) {
        hc->status = 431;
        http_parser_pause(p, 1);
        return 0;
    }
    return buf_append(&hc->authz, at, len) == 0 ? 0 : -1;
}

static int on_headers_complete(http_parser *p)
{
    struct http_conn *hc = p->data;
    if (p->content_length != ULLONG_MAX && p->content_length > (uint64_t)proxy->cfg->http_max_body) {
        hc->status = 413;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *hc = p->data;
    if (hc->body.len + len > (size_t)proxy->cfg->http_max_body) {
        hc->status = 413;              /* chunked, or more than announced */
        http_parser_pause(p, 1);
        return 0;
    }
    return buf_append(&hc->body, at, len) == 0 ? 0 : -1;
}

static int on_message_complete(http_parser *p)
{
    struct http_conn *hc = p->data;
    hc->complete = 1;
    http_parser_pause(p, 1);            /* one request per connection */
    return 0;
}

static void http_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct http_conn *hc = h->data;
    (void)suggested;
    *b = uv_buf_init(hc->rbuf, sizeof(hc->rbuf));
}

static void http_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct http_conn *hc = s->data;

    if (nread < 0) {
        conn_close(hc);                 /* gone before its request was whole */
        return;
    }
    if (nread == 0)
        return;
    http_parser_execute(&hc->parser, &settings, b->base, (size_t)nread);
    enum http_errno e = HTTP_PARSER_ERRNO(&hc->parser);
    if (hc->status) {
        respond_text(hc, hc->status, hc->status == 413 ? "request body too large (http-max-body)\n"
                                                       : "request target too long\n");
        return;
    }
    if (e == HPE_HEADER_OVERFLOW) {
        respond_text(hc, 431, "headers too large\n");
        return;
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
        char msg[160];
        snprintf(msg, sizeof(msg), "bad request: %s\n", http_errno_description(e));
        respond_text(hc, 400, msg);
        return;
    }
    if (hc->complete && !hc->responded && hc->cache == NULL) {
        uv_read_stop(s);
        http_dispatch(hc);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        log_warn("Accepting an HTTP client failed: %s", uv_strerror(status));
        return;
    }
    struct http_conn *hc = calloc(1, sizeof(*hc));
    if (hc == NULL)
        return;
    uv_tcp_init(proxy->loop, &hc->tcp);
    uv_timer_init(proxy->loop, &hc->timer);
    hc->tcp.data = hc->timer.data = hc;
    hc->open_handles = 2;
    outq_init(&hc->out, out_error);
    hc->out.on_drained = out_drained;
    http_parser_init(&hc->parser, HTTP_REQUEST);
    hc->parser.data = hc;
    hc->next = conns;
    if (conns)
        conns->prev = hc;
    conns = hc;
    int rc = uv_accept(server, (uv_stream_t *)&hc->tcp);
    if (rc < 0) {
        log_warn("Accepting an HTTP client failed: %s", uv_strerror(rc));
        conn_close(hc);
        return;
    }
    uv_tcp_nodelay(&hc->tcp, 1);
    outq_attach(&hc->out, (uv_stream_t *)&hc->tcp);
    uv_timer_start(&hc->timer, on_timeout, (uint64_t)proxy->cfg->http_timeout, 0);
    uv_read_start((uv_stream_t *)&hc->tcp, http_alloc, http_read);
}

int http_start(void)
{
    const struct config *cfg = proxy->cfg;
    struct sockaddr_storage ss;
    int rc;

    if (cfg->http_port == 0)
        return 0;
    http_parser_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    if (strchr(cfg->bind, ':'))
        rc = uv_ip6_addr(cfg->bind, cfg->http_port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(cfg->bind, cfg->http_port, (struct sockaddr_in *)&ss);
    if (rc < 0) {
        log_warn("Bad bind address %s: %s", cfg->bind, uv_strerror(rc));
        return rc;
    }
    uv_tcp_init(proxy->loop, &listener);
    listening = 1;
    if ((rc = uv_tcp_bind(&listener, (const struct sockaddr *)&ss, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&listener, LISTEN_BACKLOG, on_connection)) < 0) {
        log_warn("Could not listen for HTTP on %s:%d: %s", cfg->bind, cfg->http_port, uv_strerror(rc));
        http_stop();
        return rc;
    }
    log_notice("HTTP (metrics, health, cache) on %s:%d", cfg->bind, cfg->http_port);
    return 0;
}

void http_stop(void)
{
    if (listening) {
        uv_close((uv_handle_t *)&listener, NULL);
        listening = 0;
    }
    while (conns)
        conn_close(conns);
}
