/*
 * backends/cluster.c — Redis Cluster slot map and redirections (see cluster.h).
 *
 *   timer (100 ms) ─ due or asked for? ─> CLUSTER SLOTS on the map connection
 *        └─ reply ─> owner[slot] = node (a struct backend per primary)
 *   -MOVED from a node ─> owner[slot] = new node at once, full refresh soon
 *   map connection fails ─> next seed / known node on the next tick
 *   same period ─ INFO replication to each primary with replicas ─> each
 *        replica's lag (master_repl_offset - its acked offset) and state:
 *        one lagging past replica-max-lag, or not online, serves no reads
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
#include "backends/topology.h"
#include "base/hostport.h"
#include "base/log.h"
#include "protocol/info.h"

#define CLUSTER_TICK_MS 100             /* how often the timer looks at the map */

extern const struct topology_ops cluster_ops;

static const char SLOTS_CMD[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
static const char INFO_REPL_CMD[] = "*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n";

/* Replication state of a node, from its primary's INFO replication. */
struct nodestate {
    struct server *conn;                /* primary: INFO replication connection, NULL when none */
    struct srvreq req;                  /* primary: its request, one at a time */
    int asking;                         /* primary: req is in flight */
    long long lag;                      /* replica: bytes behind its primary; -1 = unknown */
    int syncing;                        /* replica: its primary lists it, not online (syncing) */
    int lagging;                        /* replica: kept from reads (syncing, or lag > replica-max-lag) */
};

static struct {
    struct topology *topo;              /* the topology this map drives */
    int on;                             /* seeds configured */
    struct backend *nodes[CLUSTER_MAX_NODES]; /* every node seen, never freed before exit */
    int nnodes;                         /* nodes in use */
    uint16_t owner[CLUSTER_SLOTS];      /* node index + 1 owning each slot; 0 = unknown */
    uint8_t nrep[CLUSTER_MAX_NODES];    /* replicas CLUSTER SLOTS lists for each primary */
    uint8_t rep[CLUSTER_MAX_NODES][CLUSTER_MAX_REPLICAS]; /* their node indexes */
    struct nodestate ns[CLUSTER_MAX_NODES]; /* replication state per node */
    unsigned rr;                        /* read rotation over a shard's replicas */
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

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), the checksum Redis
 * Cluster hashes keys with, one table lookup per byte. Entry i is the CRC of
 * the byte i shifted into the high half (generated, checked in
 * tests/unit/test_cluster.c against the bitwise definition). */
static const uint16_t crc16_table[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
    0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
    0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
    0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
    0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
    0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
    0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
    0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
    0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
    0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
    0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
    0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
    0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
    0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
    0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
    0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
    0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
    0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
    0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
    0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
    0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

static uint16_t crc16(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++)
        crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ (uint8_t)p[i]) & 0xff]);
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
    hostport_name(name, sizeof(name), host, port);
    for (int i = 0; i < C.nnodes; i++)
        if (strcmp(C.nodes[i]->name, name) == 0)
            return C.nodes[i];
    if (C.nnodes == CLUSTER_MAX_NODES)
        return NULL;
    struct backend *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    if (backend_init(b, C.topo->loop, host, port, BACKEND_PRIMARY, C.topo->set) < 0) {
        log_warn("Cluster node %s: %s", name, b->err);
        free(b);
        return NULL;
    }
    b->err[0] = '\0';
    b->readonly = 1;                  /* a replica then serves its primary's slots */
    C.ns[C.nnodes].lag = -1;
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

static struct backend *cluster_node_for_slot(unsigned slot)
{
    unsigned o = C.owner[slot & (CLUSTER_SLOTS - 1)];
    return o ? C.nodes[o - 1] : NULL;
}

static struct backend *cluster_any_node(void)
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
/* The node of a CLUSTER SLOTS [host, port, id...] entry, or NULL. */
static struct backend *entry_node(const redisReply *e, const char *asked_host)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[1]->type != REDIS_REPLY_INTEGER)
        return NULL;
    const char *host = e->element[0]->str;
    if (host[0] == '\0' || strcmp(host, "?") == 0)
        host = asked_host;            /* "" = the node that answered */
    return node_get(host, (int)e->element[1]->integer);
}

static void apply_slots(const redisReply *r, const char *asked_host)
{
    uint16_t owner[CLUSTER_SLOTS];
    uint8_t nrep[CLUSTER_MAX_NODES] = { 0 };
    uint8_t rep[CLUSTER_MAX_NODES][CLUSTER_MAX_REPLICAS];
    uint8_t listed[CLUSTER_MAX_NODES] = { 0 };
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
        listed[idx] = 1;
        /* Its replicas (Redis leaves failed ones out of CLUSTER SLOTS). */
        nrep[idx] = 0;
        for (size_t k = 3; k < e->elements && nrep[idx] < CLUSTER_MAX_REPLICAS; k++) {
            struct backend *rb = entry_node(e->element[k], asked_host);
            int ri = rb ? node_index(rb) : -1;
            if (ri >= 0 && ri != idx) {
                rep[idx][nrep[idx]++] = (uint8_t)ri;
                listed[ri] = 2;
            }
        }
    }
    if (known == 0)
        return;                       /* an empty or broken answer: keep what we had */
    /* Roles as the map says; a node the map leaves out serves no reads. */
    for (int i = 0; i < C.nnodes; i++) {
        struct backend *b = C.nodes[i];
        if (listed[i] == 1)
            b->role = BACKEND_PRIMARY;
        else if (listed[i] == 2)
            b->role = BACKEND_REPLICA;
        b->healthy = listed[i] != 0;
    }
    memcpy(C.nrep, nrep, sizeof(nrep));
    memcpy(C.rep, rep, sizeof(rep));
    int changed = C.known != known || memcmp(owner, C.owner, sizeof(owner)) != 0;
    if (changed)
        log_notice("Cluster slot map: %d slots over %d node(s) known", known, C.nnodes);
    memcpy(C.owner, owner, sizeof(owner));
    C.known = known;
    C.maps++;
    if (changed)
        topology_map_changed(C.topo);
}

static void on_slots(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    (void)sr;
    C.asking = 0;
    if (failed || C.stopping)
        return;
    redisReply *r = reply_object(reply, len);
    if (r != NULL) {
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
}

static void conn_closed(struct server *s)
{
    if (s == C.conn)
        C.conn = NULL;
    C.asking = 0;
    backend_server_free(s);
}

/* The node named ip:port, or -1 (never creates one). */
static int node_find(const char *ip, const char *port)
{
    char name[300];
    hostport_name(name, sizeof(name), ip, atoi(port));
    for (int i = 0; i < C.nnodes; i++)
        if (strcmp(C.nodes[i]->name, name) == 0)
            return i;
    return -1;
}

/* Replica i is (not) kept from reads now: log the change once. */
static void set_lagging(int i, int lagging)
{
    struct nodestate *ns = &C.ns[i];
    if (ns->lagging == lagging)
        return;
    ns->lagging = lagging;
    if (lagging && ns->syncing)
        log_notice("Cluster replica %s is not online (syncing with its primary): its reads go elsewhere",
                   C.nodes[i]->name);
    else if (lagging)
        log_notice("Cluster replica %s is %lld bytes behind its primary (replica-max-lag %lld): its reads go "
                   "elsewhere", C.nodes[i]->name, ns->lag, C.topo->set->replica_max_lag);
    else
        log_notice("Cluster replica %s has caught up: it serves reads again", C.nodes[i]->name);
}

/* A primary's INFO replication: the lag and state of each replica it lists
 * (master_repl_offset minus the offset the replica acknowledged, once a
 * second). Replicas it does not list keep what was known. */
static void on_repl_info(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    struct nodestate *pns = (struct nodestate *)((char *)sr - offsetof(struct nodestate, req));
    pns->asking = 0;
    if (failed || C.stopping)
        return;
    redisReply *r = reply_object(reply, len);
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        if (r)
            freeReplyObject(r);
        return;
    }
    long long mo = info_number(r->str, r->len, "master_repl_offset");
    char line[512], ip[256], port[16], state[32], off[32];
    for (int k = 0; mo >= 0; k++) {
        char field[16];
        snprintf(field, sizeof(field), "slave%d", k);
        if (info_field(r->str, r->len, field, line, sizeof(line)) < 0)
            break;
        if (info_kv(line, "ip", ip, sizeof(ip)) < 0 || info_kv(line, "port", port, sizeof(port)) < 0 ||
            info_kv(line, "state", state, sizeof(state)) < 0 || info_kv(line, "offset", off, sizeof(off)) < 0)
            continue;
        int i = node_find(ip, port);
        if (i < 0)
            continue;
        struct nodestate *ns = &C.ns[i];
        long long o = strtoll(off, NULL, 10);
        ns->lag = mo > o ? mo - o : 0;
        ns->syncing = strcmp(state, "online") != 0;
        long long max = C.topo->set->replica_max_lag;
        set_lagging(i, ns->syncing || (max > 0 && ns->lag > max));
    }
    freeReplyObject(r);
}

static void repl_conn_closed(struct server *s)
{
    for (int i = 0; i < C.nnodes; i++)
        if (C.ns[i].conn == s) {
            C.ns[i].conn = NULL;
            C.ns[i].asking = 0;
        }
    backend_server_free(s);
}

/* Ask each primary that has replicas for its INFO replication. */
static void poll_replication(void)
{
    for (int i = 0; i < C.nnodes; i++) {
        struct nodestate *ns = &C.ns[i];
        if (C.nrep[i] == 0 || C.nodes[i]->role != BACKEND_PRIMARY || ns->asking)
            continue;
        if (ns->conn != NULL && ns->conn->state == SERVER_CLOSING)
            continue;                   /* its on_close clears it */
        if (ns->conn == NULL) {
            if ((ns->conn = backend_dedicated(C.nodes[i])) == NULL)
                continue;
            ns->conn->on_close = repl_conn_closed;
        }
        ns->asking = 1;
        ns->req.on_reply = on_repl_info;
        ns->req.deadline = 0;
        server_send(ns->conn, &ns->req, INFO_REPL_CMD, sizeof(INFO_REPL_CMD) - 1);
    }
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
        C.next_refresh = now + C.topo->set->health_interval_ms;
        refresh();
        poll_replication();
    }
}

int cluster_start(struct topology *t, const struct hostport *seeds, int nseeds)
{
    C.topo = t;
    for (int i = 0; i < nseeds; i++)
        node_get(seeds[i].host, seeds[i].port);
    if (C.nnodes == 0) {
        log_warn("Cluster: no seed node could be resolved");
        return -EINVAL;
    }
    C.on = 1;
    t->mode = TOPOLOGY_CLUSTER;
    t->ops = &cluster_ops;
    uv_timer_init(t->loop, &C.timer);
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
        if (C.ns[i].conn)
            server_close(C.ns[i].conn, "shutting down");
}

static int cluster_redirect(struct topology *t, const char *reply, size_t len, struct backend **to, int *ask)
{
    (void)t;
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
        uint16_t was = C.owner[slot];
        C.owner[slot] = (uint16_t)(node_index(b) + 1);
        C.soon = 1;
        C.moved++;
        if (was != C.owner[slot])
            topology_map_changed(C.topo);
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
        int of = -1;                    /* a replica's primary */
        for (int p = 0; p < C.nnodes && of < 0; p++)
            for (int k = 0; k < C.nrep[p]; k++)
                if (C.rep[p][k] == i)
                    of = p;
        buf_printf(t, "node%d:addr=%s,slots=%u,requests=%llu,errors=%llu,in_flight=%u,connected=%d,role=%s", i,
                   b->name, slots[i], (unsigned long long)b->requests, (unsigned long long)b->errors,
                   backend_inflight(b), backend_connected(b), b->role == BACKEND_PRIMARY ? "primary" : "replica");
        if (of >= 0)
            buf_printf(t, ",replica_of=%s,lag=%lld,serves_reads=%d", C.nodes[of]->name, C.ns[i].lag,
                       !C.ns[i].lagging);
        buf_printf(t, ",listed=%d\r\n", b->healthy);
    }
    buf_printf(t, "\r\n");
}

/* ---- the cluster mode's topology operations ------------------------------ */

static struct backend *cluster_write_backend(struct topology *t, int slot)
{
    (void)t;
    return slot >= 0 ? cluster_node_for_slot((unsigned)slot) : cluster_any_node();
}

/* Where a read of slot goes by read-policy: the slot's primary or one of
 * the replicas CLUSTER SLOTS lists for it (READONLY on their connections).
 * A replica counts as healthy while the map lists it and its connections
 * are not backing off after a failure; route_to falls back to the primary
 * when a pick fails. */
static int replica_usable(int i, uint64_t now)
{
    const struct backend *b = C.nodes[i];
    return b->healthy && b->retry_at <= now && !C.ns[i].lagging;
}

static struct backend *cluster_read_backend(struct topology *t, int slot)
{
    struct backend *p = cluster_write_backend(t, slot);
    int idx = p ? node_index(p) : -1;
    int n = idx >= 0 ? C.nrep[idx] : 0;
    uint64_t now = uv_now(t->loop);

    if (n == 0 || slot < 0 || t->set->read_policy == READ_PRIMARY)
        return p;
    if (t->set->read_policy == READ_ROUND_ROBIN || t->set->read_policy == READ_NEAREST) {
        /* Every healthy member of the shard in turn (no latency figures
         * for cluster nodes: nearest rotates too). */
        for (int k = 0; k <= n; k++) {
            unsigned i = C.rr++ % (unsigned)(n + 1);
            if (i == (unsigned)n)
                return p;
            if (replica_usable(C.rep[idx][i], now))
                return C.nodes[C.rep[idx][i]];
        }
        return p;
    }
    for (int k = 0; k < n; k++) {
        int i = C.rep[idx][C.rr++ % (unsigned)n];
        if (replica_usable(i, now))
            return C.nodes[i];
    }
    return p;
}

/* A read that failed on a replica is sent once more to its primary. */
static struct backend *cluster_retry_backend(struct topology *t, struct backend *failed)
{
    (void)t;
    int fi = node_index(failed);
    if (fi < 0 || failed->role != BACKEND_REPLICA)
        return NULL;
    for (int i = 0; i < C.nnodes; i++)
        for (int k = 0; k < C.nrep[i]; k++)
            if (C.rep[i][k] == fi)
                return C.nodes[i];
    return NULL;
}

static void cluster_foreach(struct topology *t, void (*fn)(struct backend *b, void *ud), void *ud)
{
    (void)t;
    for (int i = 0; i < C.nnodes; i++)
        fn(C.nodes[i], ud);
}

static int cluster_primaries(struct topology *t, struct backend **out, int max)
{
    unsigned char owns[CLUSTER_MAX_NODES] = { 0 };
    int n = 0;

    (void)t;
    for (int s = 0; s < CLUSTER_SLOTS; s++)
        if (C.owner[s])
            owns[C.owner[s] - 1] = 1;
    for (int i = 0; i < C.nnodes; i++) {
        if (!owns[i])
            continue;
        if (n < max)
            out[n] = C.nodes[i];
        n++;
    }
    return n;
}

int cluster_node_index(const struct backend *b)
{
    return node_index(b);
}

struct backend *cluster_node_at(int i)
{
    return i >= 0 && i < C.nnodes ? C.nodes[i] : NULL;
}

const struct topology_ops cluster_ops = {
    .write_backend = cluster_write_backend,
    .read_backend = cluster_read_backend,
    .redirect = cluster_redirect,
    .foreach = cluster_foreach,
    .primaries = cluster_primaries,
    .retry_backend = cluster_retry_backend,
};
