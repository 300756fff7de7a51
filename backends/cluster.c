/*
 * backends/cluster.c — Redis Cluster slot map and redirections (see cluster.h).
 *
 *   timer (100 ms) ─ due or asked for? ─> CLUSTER SLOTS on the map connection
 *        └─ reply ─> owner[slot] = node (a struct backend per primary)
 *   -MOVED from a node ─> owner[slot] = new node at once, full refresh soon
 *   map connection fails ─> next seed / known node on the next tick
 */
#include "backends/cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/server.h"
#include "base/log.h"
#include "proxy/proxy.h"

#define CLUSTER_TICK_MS 100             /* how often the timer looks at the map */

static const char SLOTS_CMD[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

static struct {
    int on;                             /* seeds configured */
    struct backend *nodes[CLUSTER_MAX_NODES]; /* every node seen, never freed before exit */
    int nnodes;                         /* nodes in use */
    uint16_t owner[CLUSTER_SLOTS];      /* node index + 1 owning each slot; 0 = unknown */
    int known;                          /* slots with an owner */
    struct server *conn;                /* map connection (CLUSTER SLOTS) */
    int next_source;                    /* node to ask when the connection must be remade */
    struct srvreq req;                  /* the CLUSTER SLOTS request, one at a time */
    int asking;                         /* req is in flight */
    int soon;                           /* a MOVED asked for a refresh */
    uint64_t next_refresh;              /* loop ms of the next periodic refresh */
    uint64_t maps;                      /* maps applied */
    uint64_t moved, asked;              /* redirections followed */
    uv_timer_t timer;                   /* the tick */
    int stopping;                       /* cluster_stop called */
} C;

int cluster_on(void)
{
    return C.on;
}

/* CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with. */
static uint16_t crc16(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint8_t)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

unsigned cluster_keyslot(const char *key, size_t len)
{
    /* Only the part between the first '{' and the next '}' counts, if
     * that part is not empty. */
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) & (CLUSTER_SLOTS - 1);
    }
    return crc16(key, len) & (CLUSTER_SLOTS - 1);
}

/* The node at host:port, created on first sight. NULL if unresolvable or full. */
static struct backend *node_get(const char *host, int port)
{
    char name[300];
    if (strchr(host, ':'))
        snprintf(name, sizeof(name), "[%s]:%d", host, port);
    else
        snprintf(name, sizeof(name), "%s:%d", host, port);
    for (int i = 0; i < C.nnodes; i++)
        if (strcmp(C.nodes[i]->name, name) == 0)
            return C.nodes[i];
    if (C.nnodes == CLUSTER_MAX_NODES)
        return NULL;
    const struct config *cfg = proxy->cfg;
    struct backend *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    if (backend_init(b, proxy->loop, host, port, BACKEND_PRIMARY, cfg->backend_connections,
                     (uint64_t)cfg->connect_timeout, (uint64_t)cfg->backend_timeout) < 0) {
        log_warn("Cluster node %s: %s", name, b->err);
        free(b);
        return NULL;
    }
    b->err[0] = '\0';
    C.nodes[C.nnodes++] = b;
    return b;
}

static int node_index(const struct backend *b)
{
    for (int i = 0; i < C.nnodes; i++)
        if (C.nodes[i] == b)
            return i;
    return -1;
}

struct backend *cluster_node_for_slot(unsigned slot)
{
    unsigned o = C.owner[slot & (CLUSTER_SLOTS - 1)];
    return o ? C.nodes[o - 1] : NULL;
}

struct backend *cluster_any_node(void)
{
    struct backend *b = cluster_node_for_slot(0);
    if (b != NULL)
        return b;
    for (int s = 0; s < CLUSTER_SLOTS; s++)
        if (C.owner[s])
            return C.nodes[C.owner[s] - 1];
    return C.nnodes ? C.nodes[0] : NULL;
}

/* Apply a CLUSTER SLOTS reply: [[start, end, [host, port, id...], replicas...]...]. */
static void apply_slots(const redisReply *r, const char *asked_host)
{
    uint16_t owner[CLUSTER_SLOTS];
    int known = 0;

    memset(owner, 0, sizeof(owner));
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || e->element[2]->type != REDIS_REPLY_ARRAY ||
            e->element[2]->elements < 2 || e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
            e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        const char *host = e->element[2]->element[0]->str;
        int port = (int)e->element[2]->element[1]->integer;
        if (host[0] == '\0' || strcmp(host, "?") == 0)
            host = asked_host;        /* "" = the node that answered */
        struct backend *b = node_get(host, port);
        if (b == NULL || lo < 0 || hi >= CLUSTER_SLOTS || lo > hi)
            continue;
        int idx = node_index(b);
        for (long long s = lo; s <= hi; s++) {
            owner[s] = (uint16_t)(idx + 1);
            known++;
        }
    }
    if (known == 0)
        return;                       /* an empty or broken answer: keep what we had */
    if (C.known != known || memcmp(owner, C.owner, sizeof(owner)) != 0)
        log_notice("Cluster slot map: %d slots over %d node(s) known", known, C.nnodes);
    memcpy(C.owner, owner, sizeof(owner));
    C.known = known;
    C.maps++;
}

static void on_slots(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    (void)sr;
    C.asking = 0;
    if (failed || C.stopping)
        return;
    redisReader *rd = redisReaderCreate();
    redisReply *r = NULL;
    if (rd != NULL && redisReaderFeed(rd, reply, len) == REDIS_OK &&
        redisReaderGetReply(rd, (void **)&r) == REDIS_OK && r != NULL) {
        if (r->type == REDIS_REPLY_ARRAY) {
            /* The host the map connection talks to, for "" addresses. */
            char host[256] = "127.0.0.1";
            const char *name = C.conn ? C.conn->name : "";
            const char *colon = strrchr(name, ':');
            if (colon != NULL && name[0] != '[' && (size_t)(colon - name) < sizeof(host)) {
                memcpy(host, name, (size_t)(colon - name));
                host[colon - name] = '\0';
            }
            apply_slots(r, host);
        } else if (r->type == REDIS_REPLY_ERROR) {
            log_warn("Cluster: CLUSTER SLOTS refused: %s", r->str);
        }
        freeReplyObject(r);
    }
    if (rd != NULL)
        redisReaderFree(rd);
}

static void conn_closed(struct server *s)
{
    if (s == C.conn)
        C.conn = NULL;
    C.asking = 0;
    backend_server_free(s);
}

static void refresh(void)
{
    if (C.asking)
        return;
    if (C.conn == NULL || C.conn->state == SERVER_CLOSING) {
        if (C.conn != NULL || C.nnodes == 0)
            return;                   /* wait for the close, or nothing to ask */
        struct backend *b = C.nodes[C.next_source++ % C.nnodes];
        C.conn = backend_dedicated(b);
        if (C.conn == NULL)
            return;
        C.conn->on_close = conn_closed;
    }
    C.asking = 1;
    C.soon = 0;
    C.req.on_reply = on_slots;
    C.req.deadline = 0;
    server_send(C.conn, &C.req, SLOTS_CMD, sizeof(SLOTS_CMD) - 1);
}

static void tick(uv_timer_t *t)
{
    uint64_t now = uv_now(t->loop);
    if (C.soon || now >= C.next_refresh || C.known == 0) {
        C.next_refresh = now + (uint64_t)proxy->cfg->health_interval;
        refresh();
    }
}

int cluster_start(void)
{
    const struct config *cfg = proxy->cfg;

    if (cfg->ncluster == 0)
        return 0;
    for (int i = 0; i < cfg->ncluster; i++)
        node_get(cfg->cluster[i].host, cfg->cluster[i].port);
    if (C.nnodes == 0) {
        log_warn("Cluster: no seed node could be resolved");
        return -EINVAL;
    }
    C.on = 1;
    uv_timer_init(proxy->loop, &C.timer);
    uv_timer_start(&C.timer, tick, 0, CLUSTER_TICK_MS);
    log_notice("Cluster mode: %d seed node(s)", C.nnodes);
    return 0;
}

void cluster_stop(void)
{
    if (!C.on || C.stopping)
        return;
    C.stopping = 1;
    uv_timer_stop(&C.timer);
    uv_close((uv_handle_t *)&C.timer, NULL);
    if (C.conn)
        server_close(C.conn, "shutting down");
    for (int i = 0; i < C.nnodes; i++)
        backend_close_all(C.nodes[i], "shutting down");
}

int cluster_redirect(const char *reply, size_t len, struct backend **to, int *ask)
{
    const char *p;
    if (len > 7 && memcmp(reply, "-MOVED ", 7) == 0) {
        *ask = 0;
        p = reply + 7;
    } else if (len > 5 && memcmp(reply, "-ASK ", 5) == 0) {
        *ask = 1;
        p = reply + 5;
    } else {
        return 0;
    }
    /* "slot host:port\r\n" */
    char *end;
    long slot = strtol(p, &end, 10);
    if (*end != ' ' || slot < 0 || slot >= CLUSTER_SLOTS)
        return 0;
    const char *addr = end + 1;
    const char *crlf = memchr(addr, '\r', len - (size_t)(addr - reply));
    const char *colon = NULL;
    for (const char *q = addr; crlf != NULL && q < crlf; q++)
        if (*q == ':')
            colon = q;              /* the last ':' (IPv6 hosts have more) */
    if (colon == NULL || colon == addr || (size_t)(colon - addr) >= 256)
        return 0;
    char host[256];
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    int port = atoi(colon + 1);
    struct backend *b = node_get(host, port);
    if (b == NULL)
        return 0;
    if (!*ask) {
        C.owner[slot] = (uint16_t)(node_index(b) + 1);
        C.soon = 1;
        C.moved++;
    } else {
        C.asked++;
    }
    log_verbose("Cluster: %s slot %ld -> %s", *ask ? "ASK" : "MOVED", slot, b->name);
    *to = b;
    return 1;
}

void cluster_report(struct buf *t)
{
    unsigned slots[CLUSTER_MAX_NODES] = { 0 };
    for (int s = 0; s < CLUSTER_SLOTS; s++)
        if (C.owner[s])
            slots[C.owner[s] - 1]++;
    buf_printf(t, "# Cluster\r\ncluster_mode:1\r\ncluster_slots_known:%d\r\ncluster_maps:%llu\r\n"
               "cluster_moved:%llu\r\ncluster_ask:%llu\r\n", C.known, (unsigned long long)C.maps,
               (unsigned long long)C.moved, (unsigned long long)C.asked);
    for (int i = 0; i < C.nnodes; i++) {
        const struct backend *b = C.nodes[i];
        buf_printf(t, "node%d:addr=%s,slots=%u,requests=%llu,errors=%llu,in_flight=%u,connected=%d\r\n", i,
                   b->name, slots[i], (unsigned long long)b->requests, (unsigned long long)b->errors,
                   backend_inflight(b), backend_connected(b));
    }
    buf_printf(t, "\r\n");
}
