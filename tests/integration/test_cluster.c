/*
 * test_cluster.c — the proxy in front of a Redis Cluster (--cluster seeds).
 *
 *   test ──▶ redsnano (PORT 10, --cluster 127.0.0.1:PORT 0..2) ──┬──▶ node 0 (PORT 0)
 *     │        asks a seed for CLUSTER SLOTS, routes by slot,      ├──▶ node 1 (PORT 1)
 *     │        follows -MOVED / -ASK                                └──▶ node 2 (PORT 2)
 *     └──────────────── direct connections (checks, migrations) ──────▶ nodes 0..2
 *
 * Every test builds its own cluster: three redis-server with
 * --cluster-enabled yes (nodes-<port>.conf in the harness's temporary
 * directory, bus ports PORT+10000), joined by `redis-cli --cluster create
 * --cluster-replicas 0`, then waits for cluster_state:ok on all three.
 * Slots are moved by hand (CLUSTER SETSLOT IMPORTING / MIGRATING / NODE and
 * MIGRATE) to make the nodes answer -MOVED and -ASK.  Key slots and owners
 * always come from the cluster itself (CLUSTER KEYSLOT, CLUSTER SLOTS).
 *
 * Unless a test says otherwise the proxy runs with --health-interval 60000,
 * so its slot map changes only when a node answers -MOVED (the periodic
 * refresh has a test of its own, with --health-interval 200).
 * Every test ends by requiring that the proxy exits 0 on SIGTERM.
 *
 * Ports 7300-7349 (this file): nodes 7300-7302, nothing on 7309 (a dead
 * seed), proxy 7310.  Proxy-only behaviour: skipped with HARNESS_DIRECT=1.
 */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLU_PORT_BASE 7300                /* this file's port range start */
#define CLU_PORT(n) harness_port(CLU_PORT_BASE, (n))
#define CLU_NODES 3                       /* primaries of the cluster (PORT 0..2) */
#define CLU_DEAD_SEED 9                   /* port offset nobody listens on */
#define CLU_PROXY 10                      /* port offset of the proxy */
#define CLU_SLOTS 16384                   /* hash slots of Redis Cluster */
#define CLU_NODE_TIMEOUT_MS 2000          /* --cluster-node-timeout of the nodes */
#define CLU_READY_MS 5000                 /* bound for the proxy to route a keyed command */
#define CLU_REFRESH_MS 3000               /* bound for a periodic refresh (interval 200 ms) */
#define CLU_BLOCK_MS 5000                 /* bound for a BLPOP to show up as blocked */
#define CLU_REPLY_MS 5000                 /* read timeout of an awaited push / wake-up */
#define CLU_POLL_MS 20                    /* polling period of the waits above */
#define CLU_KEYS 300                      /* keys of the routing test */
#define CLU_SEED_KEYS 60                  /* keys of the dead-seed test */
#define CLU_STALE_INTERVAL "60000"        /* --health-interval: no refresh during a test */
#define CLU_FAST_INTERVAL "200"           /* --health-interval of the refresh test */
#define CLU_MAX_BACKENDS 16               /* node lines parsed from REDSNANO BACKENDS */

/* One cluster node (a primary). */
typedef struct clu_node {
    harness_proc *proc;   /* its redis-server */
    int port;             /* 127.0.0.1 port */
    char id[64];          /* CLUSTER MYID */
    char addr[32];        /* "127.0.0.1:<port>" (seed argument) */
    redisContext *c;      /* direct connection, never through the proxy */
} clu_node;

/* One "nodeN:" line of REDSNANO BACKENDS. */
typedef struct clu_backend {
    int port;             /* port of addr= */
    long slots;           /* value of slots= */
    long long requests;   /* value of requests= (-1 when absent) */
} clu_backend;

static clu_node clu_nodes[CLU_NODES];     /* the cluster, index = port offset */
static harness_proc *clu_proxy;           /* the proxy, NULL until started */
static redisContext *clu_px;              /* client connection through the proxy */

static void clu_fini(void)
{
    if (clu_px != NULL)
        redisFree(clu_px);
    clu_px = NULL;
    for (int i = 0; i < CLU_NODES; i++) {
        if (clu_nodes[i].c != NULL)
            redisFree(clu_nodes[i].c);
        clu_nodes[i].c = NULL;
    }
    harness_cleanup();
}

TestSuite(cluster, .fini = clu_fini, .timeout = 60);

/* ---- the cluster ------------------------------------------------------------ */

/* Three empty nodes, joined, slots spread, cluster_state:ok everywhere. */
static void clu_cluster_start(void)
{
    int ports[CLU_NODES];
    harness_proc *procs[CLU_NODES];

    for (int i = 0; i < CLU_NODES; i++) {
        clu_nodes[i].port = ports[i] = CLU_PORT(i);
        snprintf(clu_nodes[i].addr, sizeof(clu_nodes[i].addr), "127.0.0.1:%d", ports[i]);
    }
    harness_cluster_start(ports, CLU_NODES, CLU_NODE_TIMEOUT_MS, procs);
    for (int i = 0; i < CLU_NODES; i++)
        clu_nodes[i].proc = procs[i];
    for (int i = 0; i < CLU_NODES; i++) {
        redisReply *r;

        clu_nodes[i].c = harness_connect(clu_nodes[i].port);
        r = harness_reply(clu_nodes[i].c, "CLUSTER MYID");
        cr_assert(r->type == REDIS_REPLY_STRING && r->len < sizeof(clu_nodes[i].id), "CLUSTER MYID: %s",
                  harness_reply_str(r));
        snprintf(clu_nodes[i].id, sizeof(clu_nodes[i].id), "%s", r->str);
        freeReplyObject(r);
    }
}

/* blocked_clients of INFO clients on node i (asked directly). */
static long long clu_blocked(int i)
{
    return harness_info_ll(clu_nodes[i].c, "clients", "blocked_clients");
}

/* Slot of key (CLUSTER KEYSLOT, asked of node 0). */
static int clu_keyslot(const char *key)
{
    return (int)harness_cmd_int(clu_nodes[0].c, "CLUSTER KEYSLOT %s", key);
}

/* Node index of a port, -1 if none. */
static int clu_node_of_port(long long port)
{
    for (int i = 0; i < CLU_NODES; i++)
        if (clu_nodes[i].port == port)
            return i;
    return -1;
}

/* owner[slot] = node index per CLUSTER SLOTS of node `asked` (-1 = unassigned). */
static void clu_slot_table(int asked, int owner[CLU_SLOTS])
{
    redisReply *r = harness_reply(clu_nodes[asked].c, "CLUSTER SLOTS");

    for (int s = 0; s < CLU_SLOTS; s++)
        owner[s] = -1;
    cr_assert(r->type == REDIS_REPLY_ARRAY, "CLUSTER SLOTS: %s", harness_reply_str(r));
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        int node;

        cr_assert(e->type == REDIS_REPLY_ARRAY && e->elements >= 3 && e->element[0]->type == REDIS_REPLY_INTEGER &&
                      e->element[1]->type == REDIS_REPLY_INTEGER && e->element[2]->type == REDIS_REPLY_ARRAY &&
                      e->element[2]->elements >= 2 && e->element[2]->element[1]->type == REDIS_REPLY_INTEGER,
                  "CLUSTER SLOTS entry %zu: %s", i, harness_reply_str(e));
        node = clu_node_of_port(e->element[2]->element[1]->integer);
        cr_assert(node >= 0, "CLUSTER SLOTS names an unknown node: %s", harness_reply_str(e));
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer && s < CLU_SLOTS; s++)
            owner[s] = node;
    }
    freeReplyObject(r);
}

/* Node index owning slot, per node 0. */
static int clu_owner(int slot)
{
    static int owner[CLU_SLOTS];

    clu_slot_table(0, owner);
    cr_assert(owner[slot] >= 0, "slot %d is not assigned", slot);
    return owner[slot];
}

/* Slots of each node (per node 0's CLUSTER SLOTS). */
static void clu_slot_counts(long counts[CLU_NODES])
{
    static int owner[CLU_SLOTS];

    clu_slot_table(0, owner);
    for (int i = 0; i < CLU_NODES; i++)
        counts[i] = 0;
    for (int s = 0; s < CLU_SLOTS; s++)
        if (owner[s] >= 0)
            counts[owner[s]]++;
}

/* Start moving slot from node `from` to node `to` (IMPORTING then MIGRATING). */
static void clu_migration_begin(int slot, int from, int to)
{
    harness_expect_status(clu_nodes[to].c, "OK", "CLUSTER SETSLOT %d IMPORTING %s", slot, clu_nodes[from].id);
    harness_expect_status(clu_nodes[from].c, "OK", "CLUSTER SETSLOT %d MIGRATING %s", slot, clu_nodes[to].id);
}

/* MIGRATE one key from node `from` to node `to` (it must exist). */
static void clu_migrate_key(int from, int to, const char *key)
{
    harness_expect_status(clu_nodes[from].c, "OK", "MIGRATE 127.0.0.1 %d %s 0 5000", clu_nodes[to].port, key);
}

/* Give slot to node `to` on every node: the new owner first, as Redis advises. */
static void clu_slot_assign(int slot, int to)
{
    harness_expect_status(clu_nodes[to].c, "OK", "CLUSTER SETSLOT %d NODE %s", slot, clu_nodes[to].id);
    for (int i = 0; i < CLU_NODES; i++)
        if (i != to)
            harness_expect_status(clu_nodes[i].c, "OK", "CLUSTER SETSLOT %d NODE %s", slot, clu_nodes[to].id);
}

/* Keys stored on node i. */
static long long clu_dbsize(int i)
{
    return harness_cmd_int(clu_nodes[i].c, "DBSIZE");
}

/* ---- the proxy ---------------------------------------------------------------- */

/*
 * Start the proxy with every node as a seed (seeds == NULL) or the given
 * seeds, the given --health-interval and extra arguments (NULL-terminated,
 * may be NULL); connect clu_px and wait until a keyed command is routed.
 * PING is answered by the proxy itself, so the harness's readiness check
 * does not prove that the slot map is loaded: EXISTS does.
 */
static void clu_proxy_start(const char *const *seeds, const char *interval, const char *const *extra)
{
    const char *args[HARNESS_MAX_ARGS];
    char last[512] = "";
    long long deadline;
    size_t n = 0;

    if (seeds == NULL) {
        for (int i = 0; i < CLU_NODES; i++) {
            args[n++] = "--cluster";
            args[n++] = clu_nodes[i].addr;
        }
    } else {
        for (size_t i = 0; seeds[i] != NULL; i++) {
            args[n++] = "--cluster";
            args[n++] = seeds[i];
        }
    }
    args[n++] = "--health-interval";
    args[n++] = interval;
    args[n++] = "--loglevel";
    args[n++] = "verbose";
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    clu_proxy = harness_try_proxy_startv(CLU_PORT(CLU_PROXY), args, true);
    cr_assert_not_null(clu_proxy, "proxy start failed: %s", harness_error());
    clu_px = harness_connect(clu_proxy->port);
    harness_diag_set(clu_proxy, NULL);

    deadline = harness_now_ms() + CLU_READY_MS;
    for (;;) {
        redisReply *r = harness_reply(clu_px, "EXISTS clu:ready:probe");
        bool ok = r->type == REDIS_REPLY_INTEGER;

        if (!ok) {
            char *s = harness_reply_str(r);

            snprintf(last, sizeof(last), "%s", s);
            free(s);
        }
        freeReplyObject(r);
        if (ok)
            return;
        cr_assert(harness_now_ms() < deadline, "the proxy did not route EXISTS within %d ms (last reply: %s); log:\n%s",
                  CLU_READY_MS, last, harness_diag());
        harness_sleep_ms(CLU_POLL_MS);
    }
}

/* The proxy with every seed, --health-interval 60000, no extra arguments. */
static void clu_proxy_start_default(void)
{
    clu_proxy_start(NULL, CLU_STALE_INTERVAL, NULL);
}

/*
 * Parse the "nodeN:addr=HOST:PORT,...,slots=COUNT,..." lines of REDSNANO
 * BACKENDS into out (at most cap); returns how many; *text gets the whole
 * reply (malloc'd) for messages.
 */
static int clu_backends(clu_backend *out, int cap, char **text)
{
    redisReply *r = harness_reply(clu_px, "REDSNANO BACKENDS");
    int n = 0;

    cr_assert(r->type == REDIS_REPLY_STRING, "REDSNANO BACKENDS: %s", harness_reply_str(r));
    *text = strdup(r->str);
    for (const char *line = r->str; line != NULL && *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);
        char buf[1024];
        const char *addr, *slots, *colon;

        snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1), line);
        line = eol != NULL ? eol + 1 : NULL;
        if (strncmp(buf, "node", 4) != 0 || (colon = strchr(buf, ':')) == NULL)
            continue;
        addr = strstr(colon, "addr=");
        slots = strstr(colon, ",slots=");
        cr_assert(addr != NULL && slots != NULL, "REDSNANO BACKENDS line without addr= or slots=: %s", buf);
        cr_assert(n < cap, "more than %d node lines in REDSNANO BACKENDS:\n%s", cap, *text);
        {
            const char *end = strchr(addr, ',');
            const char *pc = NULL;

            for (const char *p = addr; p < (end != NULL ? end : addr + strlen(addr)); p++)
                if (*p == ':')
                    pc = p;
            cr_assert(pc != NULL, "addr= without a port: %s", buf);
            out[n].port = atoi(pc + 1);
        }
        out[n].slots = strtol(slots + strlen(",slots="), NULL, 10);
        {
            const char *req = strstr(colon, ",requests=");
            out[n].requests = req != NULL ? strtoll(req + strlen(",requests="), NULL, 10) : -1;
        }
        n++;
    }
    freeReplyObject(r);
    return n;
}

/* Slots per node index according to REDSNANO BACKENDS (-1 = node not listed). */
static void clu_backend_slots(long slots[CLU_NODES], char **text)
{
    clu_backend b[CLU_MAX_BACKENDS];
    int n = clu_backends(b, CLU_MAX_BACKENDS, text);

    for (int i = 0; i < CLU_NODES; i++)
        slots[i] = -1;
    for (int k = 0; k < n; k++) {
        int i = clu_node_of_port(b[k].port);

        cr_assert(i >= 0, "REDSNANO BACKENDS lists port %d, no node of the cluster:\n%s", b[k].port, *text);
        slots[i] = b[k].slots;
    }
}

/* A cluster test: fresh cluster, the body, then the clean-exit check of the proxy. */
#define CLU_TEST(name, ...)                          \
    static void clu_body_##name(void);               \
    Test(cluster, name, ##__VA_ARGS__)               \
    {                                                \
        harness_skip_if_direct();                    \
        clu_cluster_start();                         \
        clu_body_##name();                           \
        harness_proxy_check_exit(clu_proxy);         \
    }                                                \
    static void clu_body_##name(void)

/* ---- routing -------------------------------------------------------------------- */

CLU_TEST(keys_are_routed_to_their_slot_owner)
{
    static int owner[CLU_SLOTS];
    long long total = 0;
    char key[32], val[32];

    clu_proxy_start_default();
    for (int i = 0; i < CLU_KEYS; i++) {
        snprintf(key, sizeof(key), "route:%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        cr_assert_eq(redisAppendCommand(clu_px, "SET %s %s", key, val), REDIS_OK);
    }
    harness_pipe_flush(clu_px);
    for (int i = 0; i < CLU_KEYS; i++) {
        redisReply *r = harness_pipe_reply(clu_px, "pipelined SET");

        cr_assert(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0, "SET route:%d: %s", i,
                  harness_reply_str(r));
        freeReplyObject(r);
    }
    for (int i = 0; i < CLU_KEYS; i++) {
        snprintf(key, sizeof(key), "route:%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        harness_expect_bulk(clu_px, val, "GET %s", key);
    }
    for (int i = 0; i < CLU_NODES; i++) {
        long long n = clu_dbsize(i);

        cr_assert_gt(n, 0, "node %s holds no key of %d", clu_nodes[i].addr, CLU_KEYS);
        total += n;
    }
    cr_assert_eq(total, CLU_KEYS, "the nodes hold %lld keys in all, %d were set", total, CLU_KEYS);

    clu_slot_table(0, owner);
    for (int i = 0; i < CLU_KEYS; i++) {
        int slot, node;

        snprintf(key, sizeof(key), "route:%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        slot = clu_keyslot(key);
        node = owner[slot];
        cr_assert(node >= 0, "slot %d unassigned", slot);
        harness_expect_bulk(clu_nodes[node].c, val, "GET %s", key);
    }
}

CLU_TEST(same_slot_multikey_works_and_cross_slot_atomic_commands_are_refused)
{
    static const char *const cands[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
                                         "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z" };
    int ncand = (int)(sizeof(cands) / sizeof(cands[0]));
    int sa, sb, sc, tag_owner, same_i = -1, same_j = -1;
    redisReply *r;

    clu_proxy_start_default();
    /* One hash tag: one slot, any number of keys. */
    harness_expect_status(clu_px, "OK", "MSET {t}a 1 {t}b 2");
    r = harness_reply(clu_px, "MGET {t}a {t}b");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[0]->str, "1") == 0 && r->element[1]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[1]->str, "2") == 0,
              "MGET {t}a {t}b: %s", harness_reply_str(r));
    freeReplyObject(r);
    tag_owner = clu_owner(clu_keyslot("{t}a"));
    harness_expect_bulk(clu_nodes[tag_owner].c, "1", "GET {t}a");
    harness_expect_bulk(clu_nodes[tag_owner].c, "2", "GET {t}b");

    /* Keys of three different slots. */
    sa = clu_keyslot("a");
    sb = clu_keyslot("b");
    sc = clu_keyslot("c");
    cr_assert(sa != sb && sa != sc && sb != sc, "precondition: a, b, c share a slot (%d %d %d)", sa, sb, sc);
    r = harness_expect_error(clu_px, "CROSSSLOT", "MSETNX a 1 b 2 c 3");
    freeReplyObject(r);
    r = harness_expect_error(clu_px, "CROSSSLOT", "SUNIONSTORE a b c");
    freeReplyObject(r);

    /* Different slots on the same node are refused too (slots, not nodes). */
    for (int i = 0; i < ncand && same_i < 0; i++)
        for (int j = i + 1; j < ncand && same_i < 0; j++) {
            int si = clu_keyslot(cands[i]), sj = clu_keyslot(cands[j]);

            if (si != sj && clu_owner(si) == clu_owner(sj)) {
                same_i = i;
                same_j = j;
            }
        }
    cr_assert(same_i >= 0, "precondition: no two one-letter keys of different slots on one node");
    harness_expect_status(clu_nodes[clu_owner(clu_keyslot(cands[same_i]))].c, "OK", "SET %s 1", cands[same_i]);
    r = harness_expect_error(clu_px, "CROSSSLOT", "RENAME %s %s", cands[same_i], cands[same_j]);
    freeReplyObject(r);
    harness_expect_bulk(clu_px, "1", "GET %s", cands[same_i]);
    cr_assert_eq(harness_cmd_int(clu_px, "DEL %s", cands[same_i]), 1, "DEL %s", cands[same_i]);

    /* A refused write writes nothing. */
    r = harness_expect_error(clu_px, "CROSSSLOT", "MSETNX a 1 b 2");
    freeReplyObject(r);
    cr_assert_eq(harness_cmd_int(clu_px, "EXISTS a"), 0, "a refused MSET wrote a");
    cr_assert_eq(harness_cmd_int(clu_px, "EXISTS b"), 0, "a refused MSET wrote b");

    /* The connection goes on. */
    cr_assert_eq(harness_cmd_int(clu_px, "DEL {t}a {t}b"), 2, "DEL {t}a {t}b");
    harness_expect_bulk(clu_px, NULL, "GET {t}a");
}

/* MGET through the proxy of keys key_0..key_{n-1}: asserts each element
 * is want[i] (NULL = nil). */
static void clu_expect_mget(const char *const *keys, const char *const *want, int n)
{
    char cmd[4096];
    size_t len = (size_t)snprintf(cmd, sizeof(cmd), "MGET");
    redisReply *r;

    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, " %s", keys[i]);
    r = harness_reply(clu_px, cmd);
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)n, "%s: %s", cmd, harness_reply_str(r));
    for (int i = 0; i < n; i++) {
        redisReply *e = r->element[i];

        if (want[i] == NULL)
            cr_assert(e->type == REDIS_REPLY_NIL, "%s: element %d (%s) should be nil: %s", cmd, i, keys[i],
                      harness_reply_str(r));
        else
            cr_assert(e->type == REDIS_REPLY_STRING && strcmp(e->str, want[i]) == 0,
                      "%s: element %d (%s) should be %s: %s", cmd, i, keys[i], want[i], harness_reply_str(r));
    }
    freeReplyObject(r);
}

CLU_TEST(multikey_commands_over_slots_are_split_and_merged_in_order)
{
    static const char *const keys[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
                                        "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z" };
    enum { N = sizeof(keys) / sizeof(keys[0]) };
    const char *vals[N], *mixed_keys[N + 3], *mixed_want[N + 3];
    char vbuf[N][16], mset[2048];
    size_t len = (size_t)snprintf(mset, sizeof(mset), "MSET");
    bool seen[CLU_NODES] = { false };

    clu_proxy_start_default();
    for (int i = 0; i < N; i++) {
        snprintf(vbuf[i], sizeof(vbuf[i]), "v-%s", keys[i]);
        vals[i] = vbuf[i];
        len += (size_t)snprintf(mset + len, sizeof(mset) - len, " %s %s", keys[i], vals[i]);
        seen[clu_owner(clu_keyslot(keys[i]))] = true;
    }
    cr_assert(seen[0] && seen[1] && seen[2], "precondition: the keys a..z do not cover every node");
    /* MSET over every node: +OK, and each key is on its slot's owner. */
    harness_expect_status(clu_px, "OK", mset);
    for (int i = 0; i < N; i++)
        harness_expect_bulk(clu_nodes[clu_owner(clu_keyslot(keys[i]))].c, vals[i], "GET %s", keys[i]);
    /* MGET: elements in request order, missing keys nil, repeats repeated. */
    clu_expect_mget(keys, vals, N);
    for (int i = 0; i < N; i++) {
        mixed_keys[i] = keys[N - 1 - i];
        mixed_want[i] = vals[N - 1 - i];
    }
    mixed_keys[N] = "missing:1";
    mixed_want[N] = NULL;
    mixed_keys[N + 1] = "a";
    mixed_want[N + 1] = "v-a";
    mixed_keys[N + 2] = "{t}missing";
    mixed_want[N + 2] = NULL;
    clu_expect_mget(mixed_keys, mixed_want, N + 3);
    /* Counts summed over the parts. */
    cr_assert_eq(harness_cmd_int(clu_px, "EXISTS a b c missing:1 a"), 4, "EXISTS a b c missing:1 a");
    cr_assert_eq(harness_cmd_int(clu_px, "TOUCH a b c missing:1"), 3, "TOUCH a b c missing:1");
    cr_assert_eq(harness_cmd_int(clu_px, "DEL a b c missing:1"), 3, "DEL a b c missing:1");
    cr_assert_eq(harness_cmd_int(clu_px, "UNLINK d e f g"), 4, "UNLINK d e f g");
    cr_assert_eq(harness_cmd_int(clu_px, "EXISTS a b c d e f g h"), 1, "EXISTS after DEL/UNLINK");
    for (int i = 0; i < 7; i++)
        cr_assert_eq(harness_cmd_int(clu_nodes[clu_owner(clu_keyslot(keys[i]))].c, "EXISTS %s", keys[i]), 0,
                     "its node still holds the deleted key %s", keys[i]);
    harness_expect_status(clu_px, "OK", "MSET a 1 b 2");
    harness_expect_bulk(clu_px, "1", "GET a");
    /* Pipelined with single-key commands: replies stay in order. */
    cr_assert_eq(redisAppendCommand(clu_px, "SET p1 x"), REDIS_OK);
    cr_assert_eq(redisAppendCommand(clu_px, "MGET p1 a b missing:2"), REDIS_OK);
    cr_assert_eq(redisAppendCommand(clu_px, "DEL p1 a"), REDIS_OK);
    cr_assert_eq(redisAppendCommand(clu_px, "GET p1"), REDIS_OK);
    harness_pipe_flush(clu_px);
    {
        redisReply *r = harness_pipe_reply(clu_px, "SET p1 x");
        cr_assert(r->type == REDIS_REPLY_STATUS, "SET p1 x: %s", harness_reply_str(r));
        freeReplyObject(r);
        r = harness_pipe_reply(clu_px, "MGET p1 a b missing:2");
        cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 4 && r->element[0]->type == REDIS_REPLY_STRING &&
                      strcmp(r->element[0]->str, "x") == 0 && strcmp(r->element[1]->str, "1") == 0 &&
                      strcmp(r->element[2]->str, "2") == 0 && r->element[3]->type == REDIS_REPLY_NIL,
                  "pipelined MGET p1 a b missing:2: %s", harness_reply_str(r));
        freeReplyObject(r);
        r = harness_pipe_reply(clu_px, "DEL p1 a");
        cr_assert(r->type == REDIS_REPLY_INTEGER && r->integer == 2, "pipelined DEL p1 a: %s", harness_reply_str(r));
        freeReplyObject(r);
        r = harness_pipe_reply(clu_px, "GET p1");
        cr_assert(r->type == REDIS_REPLY_NIL, "GET p1 after DEL: %s", harness_reply_str(r));
        freeReplyObject(r);
    }
}

/* Requests the proxy sent each node (REDSNANO BACKENDS requests=, by node index). */
static void clu_backend_requests(long long req[CLU_NODES])
{
    clu_backend b[CLU_MAX_BACKENDS];
    char *text = NULL;
    int n = clu_backends(b, CLU_MAX_BACKENDS, &text);

    for (int i = 0; i < CLU_NODES; i++)
        req[i] = -1;
    for (int k = 0; k < n; k++) {
        int i = clu_node_of_port(b[k].port);
        cr_assert(i >= 0 && b[k].requests >= 0, "REDSNANO BACKENDS line without requests= or of no node:\n%s", text);
        req[i] = b[k].requests;
    }
    free(text);
}

static long long clu_calls(int port, const char *cmd);

CLU_TEST(an_mget_over_slots_is_one_request_per_node)
{
    enum { N = 10 };
    const char *keys[N], *want[N];
    char kbuf[N][32], vbuf[N][32], mset[1024];
    int nodes[CLU_NODES] = { 0 }, slots_seen[N], nslots = 0;
    long long before[CLU_NODES], after[CLU_NODES], mget0 = 0, mget1 = 0;
    size_t len = (size_t)snprintf(mset, sizeof(mset), "MSET");

    clu_proxy_start_default();
    /* 10 keys in 10 slots, on all 3 nodes. */
    for (int i = 0; i < N; i++) {
        int slot;
        snprintf(kbuf[i], sizeof(kbuf[i]), "key:%012d", i * 7919);
        snprintf(vbuf[i], sizeof(vbuf[i]), "v%d", i);
        keys[i] = kbuf[i];
        want[i] = vbuf[i];
        slot = clu_keyslot(keys[i]);
        nodes[clu_owner(slot)]++;
        for (int j = 0; j < nslots; j++)
            cr_assert_neq(slots_seen[j], slot, "precondition: two keys in slot %d", slot);
        slots_seen[nslots++] = slot;
        len += (size_t)snprintf(mset + len, sizeof(mset) - len, " %s %s", keys[i], vbuf[i]);
    }
    cr_assert(nodes[0] > 0 && nodes[1] > 0 && nodes[2] > 0, "precondition: the 10 keys cover every node");
    harness_expect_status(clu_px, "OK", mset);
    clu_backend_requests(before);
    for (int i = 0; i < CLU_NODES; i++)
        mget0 += clu_calls(clu_nodes[i].port, "mget");
    clu_expect_mget(keys, want, N);
    clu_backend_requests(after);
    for (int i = 0; i < CLU_NODES; i++) {
        mget1 += clu_calls(clu_nodes[i].port, "mget");
        cr_assert_eq(after[i] - before[i], 1,
                     "node %d (%d of the keys) got %lld requests from the proxy for one MGET, not 1", i, nodes[i],
                     after[i] - before[i]);
    }
    /* Redis Cluster refuses a multi-key call over slots even on one node:
     * each node's request carries one MGET per slot of its keys. */
    cr_assert_eq(mget1 - mget0, N, "the nodes ran %lld MGETs for 10 keys in 10 slots", mget1 - mget0);
}

CLU_TEST(a_split_part_follows_moved)
{
    const char *k = "moved:split";
    redisReply *r;
    int slot, x, y;

    clu_proxy_start_default();
    slot = clu_keyslot(k);
    x = clu_owner(slot);
    y = (x + 1) % CLU_NODES;
    harness_expect_status(clu_px, "OK", "MSET %s v1 a 1 b 2 c 3", k);
    clu_migration_begin(slot, x, y);
    clu_migrate_key(x, y, k);
    clu_slot_assign(slot, y);
    r = harness_reply(clu_px, "MGET a %s b c", k);
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 4 && r->element[1]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[1]->str, "v1") == 0 && strcmp(r->element[0]->str, "1") == 0 &&
                  strcmp(r->element[3]->str, "3") == 0,
              "MGET a %s b c after the slot moved: %s", k, harness_reply_str(r));
    freeReplyObject(r);
    cr_assert_eq(harness_cmd_int(clu_px, "DEL a %s b c", k), 4, "DEL after the slot moved");
    cr_assert_eq(harness_cmd_int(clu_nodes[y].c, "EXISTS %s", k), 0, "the moved key is still on its new owner");
}

CLU_TEST(a_split_part_error_is_the_reply_and_the_rest_is_done)
{
    harness_proc *down;
    redisReply *r;
    int dead = 2;
    const char *on_dead = NULL, *on_live = NULL;
    static const char *const cands[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m" };

    clu_proxy_start_default();
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
        int o = clu_owner(clu_keyslot(cands[i]));
        if (o == dead && on_dead == NULL)
            on_dead = cands[i];
        if (o != dead && on_live == NULL)
            on_live = cands[i];
    }
    cr_assert(on_dead != NULL && on_live != NULL, "precondition: keys on the dead and on a live node");
    harness_expect_status(clu_px, "OK", "SET %s live", on_live);
    down = clu_nodes[dead].proc;
    harness_redis_kill9(down);
    r = harness_expect_error(clu_px, "ERR redsnano: backend", "MGET %s %s", on_live, on_dead);
    freeReplyObject(r);
    /* The connection goes on, the live node answers. */
    harness_expect_bulk(clu_px, "live", "GET %s", on_live);
}

/* ---- redirections ------------------------------------------------------------------ */

CLU_TEST(moved_is_followed_after_a_slot_migrates)
{
    const char *k = "moved:key";
    int slot, x, y;
    redisReply *r;

    clu_proxy_start_default();
    slot = clu_keyslot(k);
    x = clu_owner(slot);
    y = (x + 1) % CLU_NODES;
    harness_expect_status(clu_px, "OK", "SET %s v1", k);
    harness_expect_bulk(clu_px, "v1", "GET %s", k);          /* the proxy knows slot → x */
    harness_expect_bulk(clu_nodes[x].c, "v1", "GET %s", k);

    clu_migration_begin(slot, x, y);
    clu_migrate_key(x, y, k);
    clu_slot_assign(slot, y);
    /* The scenario: the old owner now redirects. */
    r = harness_expect_error(clu_nodes[x].c, "MOVED", "GET %s", k);
    freeReplyObject(r);
    cr_assert_eq(clu_owner(slot), y, "precondition: slot %d did not move to node %d", slot, y);

    harness_expect_bulk(clu_px, "v1", "GET %s", k);
    char moved[32];
    cr_assert_eq(harness_proxy_stat(clu_px, "cluster_moved", moved, sizeof(moved)), 0);
    cr_assert(atoll(moved) >= 1, "the proxy did not follow a MOVED (cluster_moved:%s)", moved);
    harness_expect_status(clu_px, "OK", "SET %s v2", k);
    harness_expect_bulk(clu_nodes[y].c, "v2", "GET %s", k);
    cr_assert_eq(clu_dbsize(x), 0, "the old owner %s still holds a key", clu_nodes[x].addr);
    harness_expect_bulk(clu_px, "v2", "GET %s", k);
}

CLU_TEST(ask_is_followed_during_a_migration)
{
    const char *k1 = "{ask}1", *k2 = "{ask}2", *k3 = "{ask}3";
    int slot, x, y;
    redisReply *r;

    clu_proxy_start_default();
    slot = clu_keyslot(k1);
    x = clu_owner(slot);
    y = (x + 1) % CLU_NODES;
    harness_expect_status(clu_px, "OK", "SET %s v1", k1);
    harness_expect_status(clu_px, "OK", "SET %s v2", k2);
    harness_expect_bulk(clu_nodes[x].c, "v1", "GET %s", k1);

    /* k1 moved, k2 not yet, the slot still x's. */
    clu_migration_begin(slot, x, y);
    clu_migrate_key(x, y, k1);
    r = harness_expect_error(clu_nodes[x].c, "ASK", "GET %s", k1);    /* the scenario */
    freeReplyObject(r);
    cr_assert_eq(clu_owner(slot), x, "precondition: slot %d should still be node %d's", slot, x);

    harness_expect_bulk(clu_px, "v1", "GET %s", k1);                   /* ASK → ASKING + GET on y */
    char asked[32];
    cr_assert_eq(harness_proxy_stat(clu_px, "cluster_ask", asked, sizeof(asked)), 0);
    cr_assert(atoll(asked) >= 1, "the proxy did not follow an ASK (cluster_ask:%s)", asked);
    harness_expect_bulk(clu_px, "v2", "GET %s", k2);                   /* still on x */
    harness_expect_bulk(clu_px, "v1", "GET %s", k1);                   /* an ASK leaves the map as it was */
    harness_expect_status(clu_px, "OK", "SET %s v3", k3);              /* new key: ASK to y */
    harness_expect_status(clu_nodes[y].c, "OK", "ASKING");
    harness_expect_bulk(clu_nodes[y].c, "v3", "GET %s", k3);

    /* Finish the migration: then MOVED. */
    clu_migrate_key(x, y, k2);
    clu_slot_assign(slot, y);
    harness_expect_bulk(clu_px, "v1", "GET %s", k1);
    harness_expect_bulk(clu_px, "v2", "GET %s", k2);
    harness_expect_bulk(clu_px, "v3", "GET %s", k3);
    harness_expect_bulk(clu_nodes[y].c, "v2", "GET %s", k2);
    cr_assert_eq(clu_dbsize(x), 0, "the old owner %s still holds a key", clu_nodes[x].addr);
}

CLU_TEST(slot_map_is_refreshed_periodically)
{
    const char *k = "refresh:key";
    long before[CLU_NODES], seen[CLU_NODES];
    long long deadline;
    char *text = NULL;
    int slot, x, y;

    clu_proxy_start(NULL, CLU_FAST_INTERVAL, NULL);
    slot = clu_keyslot(k);
    x = clu_owner(slot);
    y = (x + 1) % CLU_NODES;
    clu_slot_counts(before);
    /* An empty slot changes owner; no keyed command goes through the proxy. */
    clu_slot_assign(slot, y);
    cr_assert_eq(clu_owner(slot), y, "precondition: slot %d did not move", slot);
    deadline = harness_now_ms() + CLU_REFRESH_MS;
    for (;;) {
        free(text);
        clu_backend_slots(seen, &text);
        if (seen[x] == before[x] - 1 && seen[y] == before[y] + 1)
            break;
        cr_assert(harness_now_ms() < deadline,
                  "REDSNANO BACKENDS does not show slot %d moved from %s to %s within %d ms "
                  "(--health-interval %s; slots before %ld/%ld):\n%s",
                  slot, clu_nodes[x].addr, clu_nodes[y].addr, CLU_REFRESH_MS, CLU_FAST_INTERVAL, before[x],
                  before[y], text);
        harness_sleep_ms(CLU_POLL_MS * 5);
    }
    free(text);
    harness_expect_status(clu_px, "OK", "SET %s v", k);
    harness_expect_bulk(clu_nodes[y].c, "v", "GET %s", k);
}

CLU_TEST(a_dead_seed_is_skipped_and_one_seed_finds_every_node)
{
    const char *seeds[3];
    char dead[32];
    long long total = 0;

    snprintf(dead, sizeof(dead), "127.0.0.1:%d", CLU_PORT(CLU_DEAD_SEED));
    seeds[0] = dead;
    seeds[1] = clu_nodes[1].addr;
    seeds[2] = NULL;
    clu_proxy_start(seeds, CLU_STALE_INTERVAL, NULL);
    for (int i = 0; i < CLU_SEED_KEYS; i++)
        harness_expect_status(clu_px, "OK", "SET seed:%d x", i);
    for (int i = 0; i < CLU_NODES; i++) {
        long long n = clu_dbsize(i);

        cr_assert_gt(n, 0, "node %s holds no key of %d", clu_nodes[i].addr, CLU_SEED_KEYS);
        total += n;
    }
    cr_assert_eq(total, CLU_SEED_KEYS, "the nodes hold %lld keys in all, %d were set", total, CLU_SEED_KEYS);
}

/* ---- commands with a special place -------------------------------------------------- */

/* Two hash tags owned by different nodes: "{tN}" names; their owners. */
static void clu_two_tags(char *tag_a, char *tag_b, size_t cap, int *node_a, int *node_b)
{
    char cand[8];

    snprintf(tag_a, cap, "{t0}");
    *node_a = clu_owner(clu_keyslot("t0"));
    for (int i = 1; i < 100; i++) {
        snprintf(cand, sizeof(cand), "t%02d", i % 100);
        *node_b = clu_owner(clu_keyslot(cand));
        if (*node_b != *node_a) {
            snprintf(tag_b, cap, "{%s}", cand);
            return;
        }
    }
    cr_assert_fail("precondition: no tag t1..t99 outside node %d", *node_a);
}

/* The reply to EXEC is an array of n elements; returns it (caller frees). */
static redisReply *clu_exec(int n)
{
    redisReply *r = harness_reply(clu_px, "EXEC");

    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)n, "EXEC: %s (wanted %d results)",
              harness_reply_str(r), n);
    return r;
}

CLU_TEST(multi_exec_on_one_slot_runs_on_its_node)
{
    char ta[16], tb[16];
    int na, nb;
    redisReply *r;

    clu_proxy_start_default();
    clu_two_tags(ta, tb, sizeof(ta), &na, &nb);
    /* Held until the first key: PING is queued, not answered. */
    harness_expect_status(clu_px, "OK", "MULTI");
    harness_expect_status(clu_px, "QUEUED", "PING");
    harness_expect_status(clu_px, "QUEUED", "SET %sa 1", ta);
    harness_expect_status(clu_px, "QUEUED", "INCR %sb", ta);
    r = clu_exec(3);
    cr_assert(r->element[0]->type == REDIS_REPLY_STATUS && strcmp(r->element[0]->str, "PONG") == 0 &&
                  r->element[1]->type == REDIS_REPLY_STATUS && r->element[2]->type == REDIS_REPLY_INTEGER &&
                  r->element[2]->integer == 1,
              "EXEC: %s", harness_reply_str(r));
    freeReplyObject(r);
    harness_expect_bulk(clu_nodes[na].c, "1", "GET %sa", ta);
    harness_expect_bulk(clu_nodes[na].c, "1", "GET %sb", ta);

    /* The next transaction may run on another node. */
    harness_expect_status(clu_px, "OK", "MULTI");
    harness_expect_status(clu_px, "QUEUED", "SET %sx 1", tb);
    r = clu_exec(1);
    freeReplyObject(r);
    harness_expect_bulk(clu_nodes[nb].c, "1", "GET %sx", tb);

    /* DISCARD drops it; nested MULTI is refused; EXEC of nothing is empty. */
    harness_expect_status(clu_px, "OK", "MULTI");
    harness_expect_status(clu_px, "QUEUED", "SET %sa 2", ta);
    r = harness_expect_error(clu_px, "ERR MULTI calls can not be nested", "MULTI");
    freeReplyObject(r);
    harness_expect_status(clu_px, "OK", "DISCARD");
    harness_expect_bulk(clu_px, "1", "GET %sa", ta);
    harness_expect_status(clu_px, "OK", "MULTI");
    r = clu_exec(0);
    freeReplyObject(r);
    harness_expect_status(clu_px, "OK", "MULTI");
    harness_expect_status(clu_px, "QUEUED", "PING");
    r = clu_exec(1);
    freeReplyObject(r);
    r = harness_expect_error(clu_px, "ERR EXEC without MULTI", "EXEC");
    freeReplyObject(r);
    /* Out of the transaction, keys of every node work. */
    harness_expect_bulk(clu_px, "1", "GET %sa", ta);
    harness_expect_bulk(clu_px, "1", "GET %sx", tb);
}

CLU_TEST(a_key_of_another_node_in_multi_gets_crossslot_and_exec_execabort)
{
    char ta[16], tb[16];
    int na, nb;
    redisReply *r;

    clu_proxy_start_default();
    clu_two_tags(ta, tb, sizeof(ta), &na, &nb);
    harness_expect_status(clu_px, "OK", "MULTI");
    harness_expect_status(clu_px, "QUEUED", "SET %sa 5", ta);
    r = harness_expect_error(clu_px, "CROSSSLOT", "SET %sx 5", tb);
    freeReplyObject(r);
    r = harness_expect_error(clu_px, "EXECABORT", "EXEC");
    freeReplyObject(r);
    harness_expect_bulk(clu_px, NULL, "GET %sa", ta);
    harness_expect_bulk(clu_nodes[na].c, NULL, "GET %sa", ta);
    harness_expect_bulk(clu_px, NULL, "GET %sx", tb);
    /* Keys over slots inside a transaction: CROSSSLOT too. */
    harness_expect_status(clu_px, "OK", "MULTI");
    r = harness_expect_error(clu_px, "CROSSSLOT", "MGET %sa %sx", ta, tb);
    freeReplyObject(r);
    r = harness_expect_error(clu_px, "EXECABORT", "EXEC");
    freeReplyObject(r);
    /* The connection goes on. */
    harness_expect_status(clu_px, "OK", "SET %sa 6", ta);
    harness_expect_bulk(clu_px, "6", "GET %sa", ta);
}

CLU_TEST(watch_picks_the_node_and_a_write_from_elsewhere_aborts_exec)
{
    char ta[16], tb[16];
    int na, nb;
    redisReply *r;

    clu_proxy_start_default();
    clu_two_tags(ta, tb, sizeof(ta), &na, &nb);
    harness_expect_status(clu_px, "OK", "SET %sa 1", ta);
    harness_expect_status(clu_px, "OK", "WATCH %sa", ta);
    harness_expect_status(clu_nodes[na].c, "OK", "SET %sa 2", ta);   /* another client writes */
    harness_expect_status(clu_px, "OK", "MULTI");
    harness_expect_status(clu_px, "QUEUED", "SET %sa 3", ta);
    r = harness_reply(clu_px, "EXEC");
    cr_assert(r->type == REDIS_REPLY_NIL, "EXEC after the watched key changed: %s", harness_reply_str(r));
    freeReplyObject(r);
    harness_expect_bulk(clu_px, "2", "GET %sa", ta);

    /* Watched and untouched: EXEC runs; reads of another node in between work. */
    harness_expect_status(clu_px, "OK", "WATCH %sa", ta);
    harness_expect_bulk(clu_px, NULL, "GET %sx", tb);
    harness_expect_status(clu_px, "OK", "MULTI");
    harness_expect_status(clu_px, "QUEUED", "INCR %sa", ta);
    r = clu_exec(1);
    cr_assert(r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 3, "EXEC: %s",
              harness_reply_str(r));
    freeReplyObject(r);
    r = harness_expect_error(clu_px, "CROSSSLOT", "WATCH %sa %sx", ta, tb);
    freeReplyObject(r);
}

CLU_TEST(blpop_works_in_cluster_mode)
{
    const char *k = "blpop:list";
    struct timeval tv = { CLU_REPLY_MS / 1000, (CLU_REPLY_MS % 1000) * 1000 };
    redisContext *waiter;
    redisReply *r;
    int node;

    clu_proxy_start_default();
    node = clu_owner(clu_keyslot(k));
    waiter = harness_connect(clu_proxy->port);
    redisSetTimeout(waiter, tv);
    cr_assert_eq(redisAppendCommand(waiter, "BLPOP %s 0", k), REDIS_OK);
    harness_pipe_flush(waiter);
    /* Blocked on the owner of the key before anything is pushed. */
    cr_assert(harness_wait_until(clu_blocked(node) == 1, CLU_BLOCK_MS),
              "BLPOP %s never blocked on its node %s (blocked_clients:%lld)", k, clu_nodes[node].addr,
              clu_blocked(node));
    cr_assert_eq(harness_cmd_int(clu_px, "LPUSH %s x", k), 1, "LPUSH %s x", k);
    r = harness_pipe_reply(waiter, "BLPOP woken by LPUSH");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[0]->str, k) == 0 && r->element[1]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[1]->str, "x") == 0,
              "BLPOP %s 0 after LPUSH: %s", k, harness_reply_str(r));
    freeReplyObject(r);
    /* The waiter's connection goes on, fan-outs included. */
    harness_expect_status(waiter, "PONG", "PING");
    cr_assert_eq(harness_cmd_int(waiter, "LLEN %s", k), 0, "LLEN after BLPOP");
    harness_expect_status(waiter, "OK", "MSET a 1 b 2 c 3");
    r = harness_reply(waiter, "MGET a b c");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[2]->str, "3") == 0,
              "MGET a b c after BLPOP: %s", harness_reply_str(r));
    freeReplyObject(r);
    cr_assert_eq(harness_cmd_int(waiter, "DBSIZE"), 3, "DBSIZE after BLPOP");
    redisFree(waiter);
}

CLU_TEST(publish_reaches_a_subscriber_in_cluster_mode)
{
    struct timeval tv = { CLU_REPLY_MS / 1000, (CLU_REPLY_MS % 1000) * 1000 };
    redisContext *sub;
    redisReply *r;

    clu_proxy_start_default();
    sub = harness_connect(clu_proxy->port);
    redisSetTimeout(sub, tv);
    r = harness_reply(sub, "SUBSCRIBE clu:chan");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[0]->str, "subscribe") == 0,
              "SUBSCRIBE clu:chan: %s", harness_reply_str(r));
    freeReplyObject(r);
    cr_assert_geq(harness_cmd_int(clu_px, "PUBLISH clu:chan hello"), 0, "PUBLISH");
    r = harness_pipe_reply(sub, "message after PUBLISH");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[0]->str, "message") == 0 && strcmp(r->element[1]->str, "clu:chan") == 0 &&
                  r->element[2]->type == REDIS_REPLY_STRING && strcmp(r->element[2]->str, "hello") == 0,
              "the subscriber got %s", harness_reply_str(r));
    freeReplyObject(r);
    redisFree(sub);
}

CLU_TEST(keyless_commands_and_ping)
{
    redisReply *r;

    clu_proxy_start_default();
    harness_expect_status(clu_px, "PONG", "PING");
    harness_expect_bulk(clu_px, "hi", "ECHO hi");
    r = harness_reply(clu_px, "HELLO 2");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->elements % 2 == 0, "HELLO 2: %s",
              harness_reply_str(r));
    freeReplyObject(r);
    r = harness_reply(clu_px, "INFO");
    cr_assert(r->type == REDIS_REPLY_STRING && strstr(r->str, "redis_version:") != NULL, "INFO: %s",
              harness_reply_str(r));
    freeReplyObject(r);
    harness_expect_bulk(clu_px, NULL, "RANDOMKEY");          /* every node empty */
    cr_assert_eq(harness_cmd_int(clu_px, "DBSIZE"), 0, "DBSIZE of an empty cluster");
}

#define CLU_WHOLE_KEYS 1000                /* keys of the whole-cluster test */

CLU_TEST(dbsize_keys_and_scan_cover_the_whole_cluster)
{
    long long per_node = 0, cursor = 0;
    static bool seen[CLU_WHOLE_KEYS];
    int nseen = 0, calls = 0;
    redisReply *r;

    clu_proxy_start_default();
    for (int i = 0; i < CLU_WHOLE_KEYS; i++)
        cr_assert_eq(redisAppendCommand(clu_px, "SET whole:%d x", i), REDIS_OK);
    harness_pipe_flush(clu_px);
    for (int i = 0; i < CLU_WHOLE_KEYS; i++)
        freeReplyObject(harness_pipe_reply(clu_px, "SET whole:N"));
    for (int i = 0; i < CLU_NODES; i++) {
        cr_assert_gt(clu_dbsize(i), 0, "precondition: node %s holds no key", clu_nodes[i].addr);
        per_node += clu_dbsize(i);
    }
    cr_assert_eq(per_node, CLU_WHOLE_KEYS, "precondition: the nodes hold %lld keys", per_node);

    cr_assert_eq(harness_cmd_int(clu_px, "DBSIZE"), CLU_WHOLE_KEYS, "DBSIZE through the proxy");
    r = harness_reply(clu_px, "KEYS whole:*");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == CLU_WHOLE_KEYS, "KEYS whole:* has %zu elements",
              r->type == REDIS_REPLY_ARRAY ? r->elements : 0);
    for (size_t i = 0; i < r->elements; i++) {
        int k = atoi(r->element[i]->str + strlen("whole:"));
        cr_assert(k >= 0 && k < CLU_WHOLE_KEYS && !seen[k], "KEYS: %s out of range or twice", r->element[i]->str);
        seen[k] = true;
    }
    freeReplyObject(r);
    memset(seen, 0, sizeof(seen));

    /* A full SCAN returns every key; its cursor walks node after node. */
    do {
        r = harness_reply(clu_px, "SCAN %lld MATCH whole:* COUNT 100", cursor);
        cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
                      r->element[1]->type == REDIS_REPLY_ARRAY,
                  "SCAN %lld: %s", cursor, harness_reply_str(r));
        cursor = strtoll(r->element[0]->str, NULL, 10);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            int k = atoi(r->element[1]->element[i]->str + strlen("whole:"));
            cr_assert(k >= 0 && k < CLU_WHOLE_KEYS, "SCAN returned %s", r->element[1]->element[i]->str);
            if (!seen[k])
                nseen++;
            seen[k] = true;
        }
        freeReplyObject(r);
        cr_assert_lt(++calls, 10 * CLU_WHOLE_KEYS, "SCAN does not end");
    } while (cursor != 0);
    cr_assert_eq(nseen, CLU_WHOLE_KEYS, "a full SCAN returned %d of %d keys in %d calls", nseen, CLU_WHOLE_KEYS,
                 calls);
    r = harness_expect_error(clu_px, "ERR invalid cursor", "SCAN 255");   /* names no node */
    freeReplyObject(r);

    r = harness_reply(clu_px, "RANDOMKEY");
    cr_assert(r->type == REDIS_REPLY_STRING && strncmp(r->str, "whole:", 6) == 0, "RANDOMKEY: %s",
              harness_reply_str(r));
    freeReplyObject(r);

    /* FLUSHDB empties every primary. */
    harness_expect_status(clu_px, "OK", "FLUSHDB");
    for (int i = 0; i < CLU_NODES; i++)
        cr_assert_eq(clu_dbsize(i), 0, "node %s holds keys after FLUSHDB", clu_nodes[i].addr);
    cr_assert_eq(harness_cmd_int(clu_px, "DBSIZE"), 0, "DBSIZE after FLUSHDB");
}

CLU_TEST(scripts_and_functions_are_loaded_on_every_primary)
{
    static const char *const lib = "#!lua name=clulib\nredis.register_function('cluecho', function(keys, args) "
                                   "return args[1] end)";
    const char *script = "return redis.call('GET', KEYS[1])";
    char sha[64];
    redisReply *r;

    clu_proxy_start_default();
    r = harness_expect(clu_px, REDIS_REPLY_STRING, "SCRIPT LOAD %s", script);
    snprintf(sha, sizeof(sha), "%s", r->str);
    freeReplyObject(r);
    for (int i = 0; i < CLU_NODES; i++) {
        r = harness_expect(clu_nodes[i].c, REDIS_REPLY_ARRAY, "SCRIPT EXISTS %s", sha);
        cr_assert(r->elements == 1 && r->element[0]->integer == 1, "SCRIPT LOAD did not reach %s",
                  clu_nodes[i].addr);
        freeReplyObject(r);
    }
    /* EVALSHA works wherever the key lives. */
    harness_expect_status(clu_px, "OK", "MSET a 1 b 2 c 3");
    harness_expect_bulk(clu_px, "1", "EVALSHA %s 1 a", sha);
    harness_expect_bulk(clu_px, "2", "EVALSHA %s 1 b", sha);
    harness_expect_bulk(clu_px, "3", "EVALSHA %s 1 c", sha);
    /* SCRIPT EXISTS: 1 only where every primary has it. */
    harness_expect_status(clu_nodes[1].c, "OK", "SCRIPT FLUSH");
    r = harness_expect(clu_px, REDIS_REPLY_ARRAY, "SCRIPT EXISTS %s 0000000000000000000000000000000000000000", sha);
    cr_assert(r->elements == 2 && r->element[0]->integer == 0 && r->element[1]->integer == 0,
              "SCRIPT EXISTS with the script on two nodes of three: %s", harness_reply_str(r));
    freeReplyObject(r);
    harness_expect(clu_px, REDIS_REPLY_STRING, "SCRIPT LOAD %s", script);
    r = harness_expect(clu_px, REDIS_REPLY_ARRAY, "SCRIPT EXISTS %s", sha);
    cr_assert(r->elements == 1 && r->element[0]->integer == 1, "SCRIPT EXISTS after reloading: %s",
              harness_reply_str(r));
    freeReplyObject(r);
    harness_expect_status(clu_px, "OK", "SCRIPT FLUSH");
    for (int i = 0; i < CLU_NODES; i++) {
        r = harness_expect(clu_nodes[i].c, REDIS_REPLY_ARRAY, "SCRIPT EXISTS %s", sha);
        cr_assert(r->elements == 1 && r->element[0]->integer == 0, "SCRIPT FLUSH did not reach %s",
                  clu_nodes[i].addr);
        freeReplyObject(r);
    }

    /* Functions: loaded, callable for any key, deleted everywhere. */
    harness_expect_bulk(clu_px, "clulib", "FUNCTION LOAD %s", lib);
    for (int i = 0; i < CLU_NODES; i++)
        harness_expect_bulk(clu_nodes[i].c, "hi", "FCALL cluecho 0 hi");
    harness_expect_bulk(clu_px, "x", "FCALL cluecho 1 a x");
    harness_expect_bulk(clu_px, "y", "FCALL cluecho 1 b y");
    harness_expect_status(clu_px, "OK", "FUNCTION DELETE clulib");
    for (int i = 0; i < CLU_NODES; i++) {
        r = harness_expect_error(clu_nodes[i].c, "ERR", "FCALL cluecho 0 hi");
        freeReplyObject(r);
    }
}

CLU_TEST(spublish_reaches_a_shard_subscriber)
{
    struct timeval tv = { CLU_REPLY_MS / 1000, (CLU_REPLY_MS % 1000) * 1000 };
    const char *chan = "clu:shard";
    int node = -1;
    redisContext *sub;
    redisReply *r;

    clu_proxy_start_default();
    node = clu_owner(clu_keyslot(chan));
    sub = harness_connect(clu_nodes[node].port);      /* directly on the shard's node */
    redisSetTimeout(sub, tv);
    r = harness_reply(sub, "SSUBSCRIBE %s", chan);
    freeReplyObject(r);
    cr_assert_eq(harness_cmd_int(clu_px, "SPUBLISH %s hello", chan), 1, "SPUBLISH %s reached no subscriber", chan);
    r = harness_pipe_reply(sub, "smessage after SPUBLISH");
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 3 && strcmp(r->element[0]->str, "smessage") == 0 &&
                  strcmp(r->element[2]->str, "hello") == 0,
              "the shard subscriber got %s", harness_reply_str(r));
    freeReplyObject(r);
    redisFree(sub);
}

/* ---- the proxy's own view ------------------------------------------------------------ */

CLU_TEST(l1_in_cluster_mode_sees_a_write_made_on_the_node_once_it_reports_it)
{
    static const char *const extra[] = { "--l1-maxmemory", "64mb", "--l1-admission", "no", NULL };
    const char *k = "l1:key";
    int node;

    clu_proxy_start(NULL, CLU_STALE_INTERVAL, extra);
    cr_assert_eq(harness_proxy_l1_ll(clu_px, "l1_enabled"), 1, "the L1 is on in cluster mode");
    /* Cached (a GET is an L1 hit once the key's node's tracking is up), yet
     * a write on the node is seen as soon as that node's tracking reports
     * it (Redis may write the writer's reply a moment before the report;
     * tests/integration/test_cluster_l1.c has the rest). */
    node = clu_owner(clu_keyslot(k));
    harness_expect_status(clu_px, "OK", "SET %s v1", k);
    cr_assert(harness_wait_until(({
                                     long long hits_ = harness_proxy_l1_ll(clu_px, "l1_hits");
                                     harness_expect_bulk(clu_px, "v1", "GET %s", k);
                                     harness_proxy_l1_ll(clu_px, "l1_hits") == hits_ + 1;
                                 }),
                                 CLU_READY_MS),
              "no GET %s was an L1 hit within %d ms", k, CLU_READY_MS);
    long long inv = harness_proxy_l1_ll(clu_px, "l1_inv_tracking");
    harness_expect_status(clu_nodes[node].c, "OK", "SET %s v2", k);
    cr_assert(harness_wait_until(harness_proxy_l1_ll(clu_px, "l1_inv_tracking") > inv, CLU_READY_MS),
              "the node's tracking did not report the write within %d ms", CLU_READY_MS);
    harness_expect_bulk(clu_px, "v2", "GET %s", k);
}

CLU_TEST(backends_list_each_cluster_primary_with_its_slot_count)
{
    long want[CLU_NODES], seen[CLU_NODES];
    char *text = NULL;

    clu_proxy_start_default();
    clu_slot_counts(want);
    clu_backend_slots(seen, &text);
    for (int i = 0; i < CLU_NODES; i++)
        cr_assert_eq(seen[i], want[i], "REDSNANO BACKENDS: node %s should have slots=%ld, shows %ld:\n%s",
                     clu_nodes[i].addr, want[i], seen[i], text);
    free(text);
}

CLU_TEST(proxy_exits_0_on_sigterm)
{
    redisContext *idle, *blocked, *sub;
    long long t0;
    redisReply *r;
    int status;

    clu_proxy_start_default();
    idle = harness_connect(clu_proxy->port);
    blocked = harness_connect(clu_proxy->port);
    sub = harness_connect(clu_proxy->port);
    harness_expect_status(clu_px, "OK", "SET k v");
    cr_assert_eq(redisAppendCommand(blocked, "BLPOP never:pushed 0"), REDIS_OK);
    harness_pipe_flush(blocked);
    r = harness_reply(sub, "SUBSCRIBE clu:quiet");
    freeReplyObject(r);
    {
        int node = clu_owner(clu_keyslot("never:pushed"));

        cr_assert(harness_wait_until(clu_blocked(node) == 1, CLU_BLOCK_MS),
                  "BLPOP never:pushed never blocked on its node %s (blocked_clients:%lld)", clu_nodes[node].addr,
                  clu_blocked(node));
    }
    t0 = harness_now_ms();
    status = harness_proxy_stop(clu_proxy);
    {
        char *tail = harness_diag();

        cr_assert_eq(status, 0, "SIGTERM with clients connected: %s; log:\n%s", harness_status_str(status), tail);
        free(tail);
    }
    cr_assert_lt(harness_now_ms() - t0, HARNESS_STOP_MS, "exit took %lld ms", harness_now_ms() - t0);
    redisFree(idle);
    redisFree(blocked);
    redisFree(sub);
}

/* ---- replica reads (3 primaries + 3 replicas) ------------------------------------------ */

#define CLU_RS_BASE 20                    /* port offsets of the six nodes: 20..25 */
#define CLU_RS_NODES 6                    /* 3 primaries + 1 replica each */
#define CLU_RS_PROXY 30                   /* port offset of the proxy */
#define CLU_RS_READS 50                   /* GETs per phase */
#define CLU_RS_SYNC_MS 5000               /* bound for a write to reach the replica */

/* calls= of INFO commandstats cmdstat_<cmd> on port (0 when never called). */
static long long clu_calls(int port, const char *cmd)
{
    redisContext *c = harness_connect(port);
    char field[64], v[256] = "";
    long long n = 0;

    snprintf(field, sizeof(field), "cmdstat_%s", cmd);
    if (harness_info_field(c, "commandstats", field, v, sizeof(v)) == 0 && strncmp(v, "calls=", 6) == 0)
        n = atoll(v + 6);
    redisFree(c);
    return n;
}

/* Does the replica on port hold key = want (READONLY read)? */
static bool clu_replica_has(int port, const char *key, const char *want)
{
    redisContext *c = harness_try_connect(port, 500);
    redisReply *r;
    bool ok = false;

    if (c == NULL)
        return false;
    r = redisCommand(c, "READONLY");
    if (r != NULL)
        freeReplyObject(r);
    r = redisCommand(c, "GET %s", key);
    ok = r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0;
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* The ports of the primary and of the (first) replica serving key's slot,
 * by CLUSTER SLOTS asked of the node on port. Asserts both exist. */
static void clu_shard_of(int port, const char *key, int *primary, int *replica)
{
    redisContext *n0 = harness_connect(port);
    int slot = (int)harness_cmd_int(n0, "CLUSTER KEYSLOT %s", key);
    redisReply *r = harness_expect(n0, REDIS_REPLY_ARRAY, "CLUSTER SLOTS");
    char *slots_text = harness_reply_str(r);

    *primary = *replica = -1;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];

        if (e->element[0]->integer <= slot && slot <= e->element[1]->integer && e->elements >= 4) {
            *primary = (int)e->element[2]->element[1]->integer;
            *replica = (int)e->element[3]->element[1]->integer;
        }
    }
    freeReplyObject(r);
    redisFree(n0);
    cr_assert(*primary > 0 && *replica > 0, "precondition: slot %d has no primary and replica in CLUSTER SLOTS: %s",
              slot, slots_text);
    free(slots_text);
}

Test(cluster, reads_go_to_the_shards_replica_and_fall_back_to_its_primary)
{
    int ports[CLU_RS_NODES], primary = -1, replica = -1;
    harness_proc *procs[CLU_RS_NODES];
    const char *args[HARNESS_MAX_ARGS];
    char seed[32];
    const char *k = "rs:key";
    redisReply *r;
    size_t a = 0;

    harness_skip_if_direct();
    for (int i = 0; i < CLU_RS_NODES; i++)
        ports[i] = CLU_PORT(CLU_RS_BASE + i);
    harness_cluster_start_replicas(ports, CLU_RS_NODES, 1, CLU_NODE_TIMEOUT_MS, procs);
    clu_shard_of(ports[0], k, &primary, &replica);

    snprintf(seed, sizeof(seed), "127.0.0.1:%d", ports[0]);
    args[a++] = "--cluster";
    args[a++] = seed;
    args[a++] = "--health-interval";
    args[a++] = CLU_STALE_INTERVAL;
    args[a++] = "--read-policy";
    args[a++] = "replica";
    args[a++] = "--read-your-writes";
    args[a++] = "0";
    args[a] = NULL;
    clu_proxy = harness_try_proxy_startv(CLU_PORT(CLU_RS_PROXY), args, true);
    cr_assert_not_null(clu_proxy, "proxy start failed: %s", harness_error());
    clu_px = harness_connect(clu_proxy->port);
    harness_diag_set(clu_proxy, NULL);
    cr_assert(harness_wait_until(({
                                     redisReply *p = harness_cmd(clu_px, "SET %s v", k);
                                     bool ok = p != NULL && p->type == REDIS_REPLY_STATUS;
                                     if (p)
                                         freeReplyObject(p);
                                     ok;
                                 }),
                                 CLU_READY_MS),
              "the proxy did not route SET within %d ms", CLU_READY_MS);
    cr_assert(harness_wait_until(clu_replica_has(replica, k, "v"), CLU_RS_SYNC_MS),
              "precondition: the replica %d never got %s", replica, k);

    /* read-policy replica: every GET is served by the shard's replica. */
    long long p0 = clu_calls(primary, "get"), r0 = clu_calls(replica, "get");
    for (int i = 0; i < CLU_RS_READS; i++)
        harness_expect_bulk(clu_px, "v", "GET %s", k);
    cr_assert_eq(clu_calls(replica, "get") - r0, CLU_RS_READS, "the replica served %lld of %d GETs",
                 clu_calls(replica, "get") - r0, CLU_RS_READS);
    cr_assert_eq(clu_calls(primary, "get") - p0, 0, "the primary served %lld GETs", clu_calls(primary, "get") - p0);
    /* Writes still go to the primary. */
    harness_expect_status(clu_px, "OK", "SET %s w", k);
    cr_assert(harness_wait_until(clu_replica_has(replica, k, "w"), CLU_RS_SYNC_MS), "the write did not replicate");
    {
        char *text = NULL;
        r = harness_reply(clu_px, "REDSNANO BACKENDS");
        text = harness_reply_str(r);
        cr_assert(strstr(r->str, "role=replica") != NULL, "REDSNANO BACKENDS shows no replica:\n%s", text);
        free(text);
        freeReplyObject(r);
    }

    /* The replica dies: reads fall back to the primary, none fails. */
    for (int i = 0; i < CLU_RS_NODES; i++)
        if (ports[i] == replica)
            harness_redis_kill9(procs[i]);
    p0 = clu_calls(primary, "get");
    for (int i = 0; i < CLU_RS_READS; i++)
        harness_expect_bulk(clu_px, "w", "GET %s", k);
    cr_assert_geq(clu_calls(primary, "get") - p0, CLU_RS_READS - 1, "the primary served %lld of %d GETs",
                  clu_calls(primary, "get") - p0, CLU_RS_READS);
    harness_proxy_check_exit(clu_proxy);
}

/* ---- slots moving under load ------------------------------------------------------------ */

#define CLU_LOAD_KEYS 2000                /* keys the load touches */
#define CLU_LOAD_BATCH 64                 /* pipelined SET+GET pairs per round */
#define CLU_RESHARD_SLOTS "300"           /* slots redis-cli moves */
#define CLU_RESHARD_MS 60000              /* bound for the reshard */

CLU_TEST(a_reshard_under_load_gives_no_client_error)
{
    char from[80], to[80], seed[32];
    long long rounds = 0, errors = 0, deadline;
    char first_error[256] = "";
    int status = -1;
    pid_t child;

    clu_proxy_start(NULL, CLU_FAST_INTERVAL, NULL);
    for (int i = 0; i < CLU_LOAD_KEYS; i++)
        cr_assert_eq(redisAppendCommand(clu_px, "SET load:%d %d", i, i), REDIS_OK);
    harness_pipe_flush(clu_px);
    for (int i = 0; i < CLU_LOAD_KEYS; i++)
        freeReplyObject(harness_pipe_reply(clu_px, "prefill SET"));
    snprintf(seed, sizeof(seed), "%s", clu_nodes[0].addr);
    snprintf(from, sizeof(from), "%s", clu_nodes[0].id);
    snprintf(to, sizeof(to), "%s", clu_nodes[1].id);

    /* The reshard runs in a child while this process drives the load. */
    child = fork();
    cr_assert(child >= 0, "fork: %s", strerror(errno));
    if (child == 0) {
        const char *argv[] = { "redis-cli", "--cluster", "reshard", seed, "--cluster-from", from, "--cluster-to", to,
                               "--cluster-slots", CLU_RESHARD_SLOTS, "--cluster-yes", "--cluster-pipeline", "10",
                               NULL };
        char *out = NULL;
        int st = harness_run_capture(argv, CLU_RESHARD_MS, &out);
        _exit(st == 0 ? 0 : 1);
    }
    deadline = harness_now_ms() + CLU_RESHARD_MS + 5000;
    for (;;) {
        int base = (int)((rounds * 7919) % CLU_LOAD_KEYS);

        for (int j = 0; j < CLU_LOAD_BATCH; j++) {
            int k = (base + j * 31) % CLU_LOAD_KEYS;

            cr_assert_eq(redisAppendCommand(clu_px, "SET load:%d %d", k, k), REDIS_OK);
            cr_assert_eq(redisAppendCommand(clu_px, "GET load:%d", k), REDIS_OK);
        }
        harness_pipe_flush(clu_px);
        for (int j = 0; j < CLU_LOAD_BATCH; j++) {
            int k = (base + j * 31) % CLU_LOAD_KEYS;
            redisReply *s = harness_pipe_reply(clu_px, "SET under reshard");
            redisReply *g = harness_pipe_reply(clu_px, "GET under reshard");

            if (s->type != REDIS_REPLY_STATUS || g->type != REDIS_REPLY_STRING || atoi(g->str) != k) {
                if (errors++ == 0) {
                    char *a = harness_reply_str(s), *b = harness_reply_str(g);

                    snprintf(first_error, sizeof(first_error), "SET load:%d -> %s; GET -> %s", k, a, b);
                    free(a);
                    free(b);
                }
            }
            freeReplyObject(s);
            freeReplyObject(g);
        }
        rounds++;
        if (waitpid(child, &status, WNOHANG) == child)
            break;
        cr_assert_lt(harness_now_ms(), deadline, "the reshard did not end within %d ms", CLU_RESHARD_MS);
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "redis-cli --cluster reshard failed (%s)",
              harness_status_str(status));
    cr_assert_eq(errors, 0, "%lld of %lld requests failed while slots moved; first: %s", errors,
                 rounds * CLU_LOAD_BATCH * 2, first_error);
    cr_assert_gt(rounds, 1, "the load ran %lld rounds only: the reshard was not under load", rounds);
    {
        long slots[CLU_NODES];

        clu_slot_counts(slots);
        cr_assert_gt(slots[1], CLU_SLOTS / 3 + 200, "precondition: node 1 did not gain the slots (%ld)", slots[1]);
    }
    /* Every key is still there, through the proxy. */
    cr_assert_eq(harness_cmd_int(clu_px, "DBSIZE"), CLU_LOAD_KEYS, "DBSIZE after the reshard");
    harness_expect_bulk(clu_px, "1234", "GET load:1234");
}

#define CLU_FAILOVER_MS 5000              /* service on the new primary within this */

/* Start a 3+3 cluster (ports CLU_RS_BASE..) and the proxy with extra
 * arguments; *primary / *replica get the ports serving key's slot. */
static void clu_rs_start(const char *key, const char *const *extra, int *primary, int *replica, int ports[CLU_RS_NODES],
                         harness_proc *procs[CLU_RS_NODES])
{
    const char *args[HARNESS_MAX_ARGS];
    static char seed[32];
    size_t a = 0;

    for (int i = 0; i < CLU_RS_NODES; i++)
        ports[i] = CLU_PORT(CLU_RS_BASE + i);
    harness_cluster_start_replicas(ports, CLU_RS_NODES, 1, CLU_NODE_TIMEOUT_MS, procs);
    clu_shard_of(ports[0], key, primary, replica);
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", ports[0]);
    args[a++] = "--cluster";
    args[a++] = seed;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        args[a++] = extra[i];
    args[a] = NULL;
    clu_proxy = harness_try_proxy_startv(CLU_PORT(CLU_RS_PROXY), args, true);
    cr_assert_not_null(clu_proxy, "proxy start failed: %s", harness_error());
    clu_px = harness_connect(clu_proxy->port);
    harness_diag_set(clu_proxy, NULL);
}

/* SET key val through the proxy: +OK? */
static bool clu_set_ok(const char *key, const char *val)
{
    redisReply *r = harness_cmd(clu_px, "SET %s %s", key, val);
    bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;

    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

Test(cluster, a_shard_failover_moves_service_to_the_new_primary_within_5s)
{
    static const char *const extra[] = { "--health-interval", CLU_FAST_INTERVAL, "--read-policy", "primary", NULL };
    int ports[CLU_RS_NODES], primary, replica;
    harness_proc *procs[CLU_RS_NODES];
    const char *k = "fo:key";
    redisContext *rc;
    long long t0, served_at = -1;
    int errors = 0, n = 0;

    harness_skip_if_direct();
    clu_rs_start(k, extra, &primary, &replica, ports, procs);
    cr_assert(harness_wait_until(clu_set_ok(k, "0"), CLU_READY_MS), "the proxy did not route SET within %d ms",
              CLU_READY_MS);
    cr_assert(harness_wait_until(clu_replica_has(replica, k, "0"), CLU_RS_SYNC_MS), "precondition: not replicated");
    rc = harness_connect(replica);
    harness_expect_status(rc, "OK", "CLUSTER FAILOVER");
    t0 = harness_now_ms();
    /* Writes through the proxy until one is served by the new primary. */
    while (harness_now_ms() - t0 < 3 * CLU_FAILOVER_MS) {
        char v[32];
        redisReply *r;

        snprintf(v, sizeof(v), "%d", ++n);
        r = harness_cmd(clu_px, "SET %s %s", k, v);
        cr_assert_not_null(r, "the proxy closed the connection during the failover");
        if (r->type != REDIS_REPLY_STATUS)
            errors++;
        freeReplyObject(r);
        {
            redisReply *g = harness_cmd(rc, "GET %s", k);      /* the new primary answers without MOVED */
            bool there = g != NULL && g->type == REDIS_REPLY_STRING && strcmp(g->str, v) == 0;

            if (g != NULL)
                freeReplyObject(g);
            if (there) {
                served_at = harness_now_ms();
                break;
            }
        }
        harness_sleep_ms(CLU_POLL_MS);
    }
    cr_assert_geq(served_at, 0, "no write through the proxy reached the new primary %d within %d ms", replica,
                  3 * CLU_FAILOVER_MS);
    cr_assert_lt(served_at - t0, CLU_FAILOVER_MS, "service on the new primary after %lld ms", served_at - t0);
    cr_assert_eq(errors, 0, "%d of %d writes failed during a manual failover (nothing was in flight)", errors, n);
    harness_expect_bulk(clu_px, NULL, "GET fo:other");
    redisFree(rc);
    harness_proxy_check_exit(clu_proxy);
}

/* ---- a cluster of more primaries than a client's first in-flight table ---------- */

#define CLU_BIG_BASE 35                   /* port offsets of its nodes: 35..44 */
#define CLU_BIG_NODES 10                  /* primaries (more than CLIENT_CONNS = 8) */
#define CLU_BIG_PROXY 45                  /* port offset of the proxy */
#define CLU_BIG_KEYS 200                  /* keys written over every node at once */

/* Calls touching every node of a 10-primary cluster at once (MSET and MGET
 * split over all, DBSIZE and KEYS over all) are answered whole; the
 * in-flight table grows instead of refusing "more than 8 nodes". */
Test(cluster, calls_over_ten_primaries_at_once_are_answered_whole)
{
    int ports[CLU_BIG_NODES];
    harness_proc *procs[CLU_BIG_NODES];
    char seed[32];
    const char *args[HARNESS_MAX_ARGS];
    size_t a = 0;

    harness_skip_if_direct();
    for (int i = 0; i < CLU_BIG_NODES; i++)
        ports[i] = CLU_PORT(CLU_BIG_BASE + i);
    harness_cluster_start(ports, CLU_BIG_NODES, CLU_NODE_TIMEOUT_MS, procs);
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", ports[0]);
    args[a++] = "--cluster";
    args[a++] = seed;
    args[a++] = "--health-interval";
    args[a++] = CLU_STALE_INTERVAL;
    args[a] = NULL;
    clu_proxy = harness_try_proxy_startv(CLU_PORT(CLU_BIG_PROXY), args, true);
    cr_assert_not_null(clu_proxy, "proxy start failed: %s", harness_error());
    clu_px = harness_connect(clu_proxy->port);
    harness_diag_set(clu_proxy, NULL);

    /* One MSET and one MGET over every node. */
    const char *argv[2 * CLU_BIG_KEYS + 1];
    size_t argvlen[2 * CLU_BIG_KEYS + 1];
    char keys[CLU_BIG_KEYS][16], vals[CLU_BIG_KEYS][16];
    argv[0] = "MSET";
    for (int i = 0; i < CLU_BIG_KEYS; i++) {
        snprintf(keys[i], sizeof(keys[i]), "big:%d", i);
        snprintf(vals[i], sizeof(vals[i]), "v%d", i);
        argv[1 + 2 * i] = keys[i];
        argv[2 + 2 * i] = vals[i];
    }
    for (int i = 0; i < 2 * CLU_BIG_KEYS + 1; i++)
        argvlen[i] = strlen(argv[i]);
    cr_assert(harness_wait_until(({
                                     redisReply *r = redisCommandArgv(clu_px, 2 * CLU_BIG_KEYS + 1, argv, argvlen);
                                     bool ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0;
                                     if (r)
                                         freeReplyObject(r);
                                     ok;
                                 }),
                                 CLU_READY_MS),
              "MSET over %d primaries was not answered +OK; log:\n%s", CLU_BIG_NODES,
              harness_log_tail(clu_proxy, 2000));
    int holding = 0;
    for (int i = 0; i < CLU_BIG_NODES; i++) {
        redisContext *n = harness_connect(ports[i]);
        holding += harness_cmd_int(n, "DBSIZE") > 0;
        redisFree(n);
    }
    cr_assert_eq(holding, CLU_BIG_NODES, "precondition: the keys span %d of %d nodes", holding, CLU_BIG_NODES);

    argv[0] = "MGET";
    for (int i = 0; i < CLU_BIG_KEYS; i++) {
        argv[1 + i] = keys[i];
        argvlen[1 + i] = strlen(keys[i]);
    }
    argvlen[0] = 4;
    redisReply *r = redisCommandArgv(clu_px, CLU_BIG_KEYS + 1, argv, argvlen);
    cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == CLU_BIG_KEYS, "MGET: %s",
              harness_reply_str(r));
    for (int i = 0; i < CLU_BIG_KEYS; i++)
        cr_assert(r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, vals[i]) == 0,
                  "MGET element %d: %s", i, harness_reply_str(r->element[i]));
    freeReplyObject(r);
    harness_expect_int(clu_px, CLU_BIG_KEYS, "DBSIZE");
    r = harness_expect(clu_px, REDIS_REPLY_ARRAY, "KEYS big:*");
    cr_assert_eq(r->elements, CLU_BIG_KEYS);
    freeReplyObject(r);
    harness_proxy_check_exit(clu_proxy);
}

/* Does REDSNANO BACKENDS say of the node on port "serves_reads=<want>"? */
static bool clu_serves_reads(int port, int want)
{
    char needle[64];
    redisReply *r = harness_cmd(clu_px, "REDSNANO BACKENDS");
    bool is = false;

    snprintf(needle, sizeof(needle), "addr=127.0.0.1:%d,", port);
    const char *line = r != NULL && r->type == REDIS_REPLY_STRING ? strstr(r->str, needle) : NULL;
    if (line != NULL) {
        const char *eol = strstr(line, "\r\n"), *f = strstr(line, "serves_reads=");
        is = f != NULL && (eol == NULL || f < eol) && atoi(f + 13) == want;
    }
    if (r)
        freeReplyObject(r);
    return is;
}

/* replica-max-lag in cluster mode: a replica that stops acknowledging the
 * primary's stream (SIGSTOP) while writes go on leaves the read rotation
 * once its primary's INFO shows it behind, and comes back when it catches
 * up (SIGCONT). Its reads go to the primary meanwhile, without waiting on
 * the stopped replica. */
Test(cluster, a_replica_behind_its_primary_past_replica_max_lag_serves_no_reads)
{
    int ports[CLU_RS_NODES], primary, replica, ri = -1;
    harness_proc *procs[CLU_RS_NODES];
    const char *k = "lag:key";
    const char *extra[] = { "--read-policy", "replica", "--read-your-writes", "0", "--replica-max-lag", "100",
                            "--health-interval", "100", NULL };
    char big[2048];

    harness_skip_if_direct();
    clu_rs_start(k, extra, &primary, &replica, ports, procs);
    for (int i = 0; i < CLU_RS_NODES; i++)
        if (ports[i] == replica)
            ri = i;
    cr_assert(harness_wait_until(clu_set_ok(k, "v"), CLU_READY_MS), "the proxy did not route SET");
    cr_assert(harness_wait_until(clu_replica_has(replica, k, "v"), CLU_RS_SYNC_MS), "precondition: not replicated");
    cr_assert(harness_wait_until(clu_serves_reads(replica, 1), CLU_READY_MS), "precondition: the replica serves no reads");
    long long r0 = clu_calls(replica, "get");
    harness_expect_bulk(clu_px, "v", "GET %s", k);
    cr_assert_eq(clu_calls(replica, "get") - r0, 1, "precondition: the replica did not serve the GET");

    /* Frozen replica, writes go on: 2 KB beyond what it acknowledged. */
    cr_assert_eq(harness_stop_signal(procs[ri], SIGSTOP), 0);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    harness_cmd_ok(clu_px, "SET %s %s", k, big);
    long long t0 = harness_now_ms();
    cr_assert(harness_wait_until(clu_serves_reads(replica, 0), 2000),
              "the lagging replica still serves reads; log:\n%s", harness_log_tail(clu_proxy, 2000));
    cr_log_info("the replica left the read rotation %lld ms after the write", harness_now_ms() - t0);
    long long p0 = clu_calls(primary, "get");
    harness_expect_bulk(clu_px, big, "GET %s", k);
    cr_assert_eq(clu_calls(primary, "get") - p0, 1, "the read did not go to the primary");

    /* Thawed: it catches up and serves again. */
    cr_assert_eq(harness_stop_signal(procs[ri], SIGCONT), 0);
    cr_assert(harness_wait_until(clu_serves_reads(replica, 1), 5000), "the replica never came back; log:\n%s",
              harness_log_tail(clu_proxy, 2000));
    char *log = harness_log_tail(clu_proxy, 1 << 20);
    cr_assert_not_null(strstr(log, "bytes behind its primary (replica-max-lag 100)"), "not logged:\n%s", log);
    cr_assert_not_null(strstr(log, "has caught up"), "not logged:\n%s", log);
    free(log);
    harness_proxy_check_exit(clu_proxy);
}
