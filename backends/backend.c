/*
 * backends/backend.c — address + shared connection pool (see backend.h).
 */
#include "backends/backend.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/hostport.h"
#include "base/log.h"

int backend_init(struct backend *b, uv_loop_t *loop, const char *host, int port,
                 enum backend_role role, const struct backend_settings *set)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];

    memset(b, 0, sizeof(*b));
    hostport_name(b->name, sizeof(b->name), host, port);
    b->loop = loop;
    b->role = role;
    assert(set->connections >= 1 && set->connections <= BACKEND_MAX_CONNS);
    assert(set->spares >= 0 && set->spares <= BACKEND_MAX_SPARES);
    b->nconns = set->connections;
    b->nspares = set->spares;
    b->connect_timeout = set->connect_timeout_ms;
    b->timeout = set->timeout_ms;
    b->hs = set->hs;
    b->backoff = BACKEND_BACKOFF_MIN_MS;
    b->healthy = 1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(b->err, sizeof(b->err), "cannot resolve %s (%s)", host, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(&b->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static void backend_slot_closed(struct server *s)
{
    struct backend *b = s->backend;

    for (int i = 0; i < b->nconns; i++) {
        if (b->conns[i] == s)
            b->conns[i] = NULL;
        if (b->conns3[i] == s)
            b->conns3[i] = NULL;
    }
    free(s);
}

static void backend_slot_connected(struct server *s)
{
    struct backend *b = s->backend;
    if (b->down_since)
        log_notice("Backend %s: up again after %llu ms", b->name,
                   (unsigned long long)(uv_now(b->loop) - b->down_since));
    b->backoff = BACKEND_BACKOFF_MIN_MS;
    b->down_since = 0;
    b->err[0] = '\0';
}

static void readonly_done(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    (void)reply;
    (void)len;
    (void)failed;
    free(sr);                           /* READONLY's +OK (or the connection's failure) */
}

/* Queue READONLY first on a new connection (it is sent once connected). */
static void backend_send_readonly(struct server *s)
{
    static const char cmd[] = "*1\r\n$8\r\nREADONLY\r\n";
    struct srvreq *sr = calloc(1, sizeof(*sr));
    if (sr == NULL)
        return;                         /* reads there get -MOVED to the primary: still right */
    sr->on_reply = readonly_done;
    server_send(s, sr, cmd, sizeof(cmd) - 1);
}

static void backend_server_free_cb(struct server *s)
{
    free(s);
}

static struct server *backend_new_server(struct backend *b)
{
    struct server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(b->err, sizeof(b->err), "out of memory");
        return NULL;
    }
    s->backend = b;
    s->hs = b->hs;
    s->role = b->role == BACKEND_PRIMARY ? "primary" : "replica";
    if (server_connect(s, b->loop, (const struct sockaddr *)&b->addr, b->name,
                       b->connect_timeout, b->timeout) < 0) {
        snprintf(b->err, sizeof(b->err), "unavailable (cannot create socket)");
        free(s);
        return NULL;
    }
    b->connections_opened++;
    if (b->readonly)
        backend_send_readonly(s);
    return s;
}

/* One of b's connections failed: remember why and back off. */
static void backend_note_failure(struct backend *b, const struct server *s)
{
    if (s->err[0] && strcmp(s->err, "shutting down") != 0) {
        snprintf(b->err, sizeof(b->err), "%s", s->err);
        uint64_t now = uv_now(b->loop);
        if (b->down_since == 0 && backend_connected(b) == 0) {
            uv_timeval64_t tv;
            b->down_since = now;
            b->down_since_wall = uv_gettimeofday(&tv) == 0
                                     ? (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000 : 0;
        }
        b->demand_at = now + (b->backoff < BACKEND_DEMAND_BACKOFF_MAX_MS ? b->backoff
                                                                         : BACKEND_DEMAND_BACKOFF_MAX_MS);
        b->retry_at = now + b->backoff;
        b->backoff = b->backoff * 2 > BACKEND_BACKOFF_MAX_MS ? BACKEND_BACKOFF_MAX_MS : b->backoff * 2;
    }
}

/* A shared slot's connection closed. */
static void backend_slot_failed(struct server *s)
{
    backend_note_failure(s->backend, s);
    backend_slot_closed(s);
}

static void backend_spare_closed(struct server *s)
{
    struct backend *b = s->backend;

    backend_note_failure(b, s);
    for (int i = 0; i < b->nspares; i++) {
        if (b->spares[i] == s) {
            b->spares[i] = NULL;
            b->nspares_open--;
        }
    }
    free(s);
}

/* Open the missing spares (not while backing off after a failure). */
static void backend_fill_spares(struct backend *b)
{
    if (uv_now(b->loop) < b->retry_at)
        return;
    for (int i = 0; i < b->nspares; i++) {
        if (b->spares[i] != NULL)
            continue;
        struct server *s = backend_new_server(b);
        if (s == NULL)
            return;
        s->on_connect = backend_slot_connected;
        s->on_close = backend_spare_closed;
        b->spares[i] = s;
        b->nspares_open++;
    }
}

/* Pick from one pool (conns or conns3) of b. */
static struct server *backend_pick_in(struct backend *b, struct server **conns, int proto)
{
    struct server *best = NULL;
    int empty = -1;

    if (b->nspares_open < b->nspares)
        backend_fill_spares(b);
    /* One connection, up: the common case needs no search. */
    if (b->nconns == 1 && conns[0] != NULL && conns[0]->state == SERVER_CONNECTED)
        return conns[0];

    for (int k = 0; k < b->nconns; k++) {
        int i = (b->next + k) % b->nconns;
        struct server *s = conns[i];
        if (s == NULL) {
            if (empty < 0)
                empty = i;
            continue;
        }
        if (s->state == SERVER_CLOSING)
            continue;
        if (best == NULL || (best->state != SERVER_CONNECTED && s->state == SERVER_CONNECTED) ||
            (s->state == best->state && s->nreqs < best->nreqs))
            best = s;
    }
    b->next = (b->next + 1) % b->nconns;
    /* Open another connection while some are missing, unless backing off. */
    if (empty >= 0 && (best == NULL || best->nreqs > 0) && uv_now(b->loop) >= b->demand_at) {
        struct server *s = backend_new_server(b);
        if (s != NULL) {
            s->on_connect = backend_slot_connected;
            s->on_close = backend_slot_failed;
            conns[empty] = s;
            if (proto == 3)
                server_hello(s, 3);   /* out of memory: it fails and closes */
            if (best == NULL)
                best = s;
        }
    }
    if (best == NULL && b->err[0] == '\0')
        snprintf(b->err, sizeof(b->err), "unavailable");
    return best;
}

struct server *backend_pick(struct backend *b)
{
    return backend_pick_in(b, b->conns, 2);
}

struct server *backend_pick_proto(struct backend *b, int proto)
{
    return proto == 3 ? backend_pick_in(b, b->conns3, 3) : backend_pick_in(b, b->conns, 2);
}

int backend_is_shared(const struct backend *b, const struct server *s)
{
    for (int i = 0; i < b->nconns; i++)
        if (b->conns[i] == s)
            return 1;
    return 0;
}

struct server *backend_dedicated(struct backend *b)
{
    struct server *s = NULL;

    for (int i = 0; i < b->nspares; i++) {
        struct server *sp = b->spares[i];
        if (sp != NULL && sp->state == SERVER_CONNECTED) {
            b->spares[i] = NULL;
            b->nspares_open--;
            s = sp;
            s->on_close = NULL;       /* the caller's from here on */
            break;
        }
    }
    if (s == NULL) {
        if (uv_now(b->loop) < b->demand_at && backend_connected(b) == 0)
            return NULL;              /* known down: fail fast */
        s = backend_new_server(b);
    }
    if (b->nspares_open < b->nspares)
        backend_fill_spares(b);
    return s;
}

struct server *backend_dedicated_proto(struct backend *b, int proto)
{
    struct server *s = backend_dedicated(b);

    if (s != NULL && proto != 2 && server_hello(s, proto) != 0) {
        s->on_close = backend_server_free_cb;
        server_close(s, "out of memory");
        return NULL;
    }
    return s;
}

void backend_server_free(struct server *s)
{
    free(s);
}

static void backend_detached_closed(struct server *s)
{
    free(s);
}

static void backend_detach_close(struct server **slot, const char *why)
{
    struct server *s = *slot;
    if (s == NULL)
        return;
    *slot = NULL;
    s->on_close = backend_detached_closed;
    s->on_connect = NULL;
    server_close(s, why);
}

void backend_close_all(struct backend *b, const char *why)
{
    for (int i = 0; i < b->nconns; i++) {
        backend_detach_close(&b->conns[i], why);
        backend_detach_close(&b->conns3[i], why);
    }
    for (int i = 0; i < b->nspares; i++)
        backend_detach_close(&b->spares[i], why);
    b->nspares_open = 0;
}

void backend_retarget(struct backend *b, const struct backend *next)
{
    uint32_t gen = b->generation + 1;
    uint64_t requests = b->requests, errors = b->errors, opened = b->connections_opened;

    if (next == NULL) {
        memset(b, 0, sizeof(*b));
    } else {
        *b = *next;
        b->requests = requests;
        b->errors = errors;
        b->connections_opened = opened;
    }
    b->generation = gen;
}

unsigned backend_inflight(const struct backend *b)
{
    unsigned n = 0;
    for (int i = 0; i < b->nconns; i++) {
        if (b->conns[i])
            n += b->conns[i]->nreqs;
        if (b->conns3[i])
            n += b->conns3[i]->nreqs;
    }
    return n;
}

const char *backend_why(const struct backend *b, char *buf, size_t len)
{
    const char *last = b->err[0] ? b->err : "unavailable";

    if (b->down_since == 0 || backend_connected(b) > 0) {
        snprintf(buf, len, "%s", last);
        return buf;
    }
    time_t secs = (time_t)(b->down_since_wall / 1000);
    struct tm tm;
    char when[32] = "?";
    if (gmtime_r(&secs, &tm) != NULL)
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
    uint64_t for_ms = uv_now(b->loop) - b->down_since;
    snprintf(buf, len, "down since %s.%03u UTC (%llu.%03u s), last error: %s", when,
             (unsigned)(b->down_since_wall % 1000), (unsigned long long)(for_ms / 1000),
             (unsigned)(for_ms % 1000), last);
    return buf;
}

int backend_connected(const struct backend *b)
{
    int n = 0;
    for (int i = 0; i < b->nconns; i++)
        if (b->conns[i] && b->conns[i]->state == SERVER_CONNECTED)
            n++;
    return n;
}
