/*
 * test_cluster_l1.c — the L1 in cluster mode: one origin (tracking, hash
 * checks) per primary node.
 *
 *   test ──▶ redsnano (--cluster, --l1-maxmemory) ──┬─ node A: fills, checks, tracking of A's keys
 *     │                                             ├─ node B: the same for B's keys
 *     │                                             └─ node C: ...
 *     └──── direct connections: writes the proxy does not see, slot moves, failovers
 *
 * Every test builds its own cluster (harness_cluster_start, or with one
 * replica per primary for the failover), starts the proxy with the L1 on
 * (admission off: a key read once is filled) and waits until every
 * primary's origin says ready=1 in REDSNANO L1.  Waits are on observable
 * state (REDSNANO L1 counters, replies), never a fixed sleep.
 *
 * Ports 7500-7549 (this file): nodes 7500-7502, proxy 7510; the 3+3
 * cluster 7520-7525, its proxy 7530.
 */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CL1_PORT_BASE 7500                /* this file's port range start */
#define CL1_PORT(n) harness_port(CL1_PORT_BASE, (n))
#define CL1_NODES 3                       /* primaries (PORT 0..2) */
#define CL1_PROXY 10                      /* port offset of the proxy */
#define CL1_RS_BASE 20                    /* the 3+3 cluster: offsets 20..25 */
#define CL1_RS_NODES 6                    /* 3 primaries + 1 replica each */
#define CL1_RS_PROXY 30                   /* its proxy */
#define CL1_SLOTS 16384                   /* hash slots */
#define CL1_NODE_TIMEOUT_MS 2000          /* --cluster-node-timeout */
#define CL1_READY_MS 10000                /* bound for every origin to be ready */
#define CL1_INV_MS 5000                   /* bound for an invalidation / a revalidation */
#define CL1_SYNC_MS 5000                  /* bound for a write to reach a replica */
#define CL1_FAILOVER_MS 15000             /* bound for the proxy to see the new primary */
#define CL1_KEY_TRIES 10000               /* candidate names tried to find a key per node */
#define CL1_INTERVAL "200"                /* --health-interval: the slot map is re-read this often */
#define CL1_STALE_INTERVAL "60000"        /* --health-interval: no periodic re-read during a test */

/* One cluster node, seen directly. */
typedef struct cl1_node {
    int port;             /* 127.0.0.1 port */
    char id[64];          /* CLUSTER MYID */
    char addr[32];        /* "127.0.0.1:<port>" */
    redisContext *c;      /* direct connection, never through the proxy */
} cl1_node;

static cl1_node cl1_nodes[CL1_RS_NODES];  /* the cluster's nodes */
static int cl1_nnodes;                    /* cl1_nodes[] in use */
static harness_proc *cl1_proxy;           /* the proxy */
static redisContext *cl1_px;              /* client connection through the proxy */
static redisContext *cl1_admin;           /* REDSNANO L1 through the proxy */

static void cl1_fini(void)
{
    if (cl1_px != NULL)
        redisFree(cl1_px);
    if (cl1_admin != NULL)
        redisFree(cl1_admin);
    cl1_px = cl1_admin = NULL;
    for (int i = 0; i < cl1_nnodes; i++) {
        if (cl1_nodes[i].c != NULL)
            redisFree(cl1_nodes[i].c);
        cl1_nodes[i].c = NULL;
    }
    cl1_nnodes = 0;
    harness_cleanup();
}

TestSuite(cluster_l1, .fini = cl1_fini, .timeout = 90);

/* ---- the cluster ---------------------------------------------------------- */

static void cl1_connect_nodes(const int *ports, int n)
{
    cl1_nnodes = n;
    for (int i = 0; i < n; i++) {
        redisReply *r;

        cl1_nodes[i].port = ports[i];
        snprintf(cl1_nodes[i].addr, sizeof(cl1_nodes[i].addr), "127.0.0.1:%d", ports[i]);
        cl1_nodes[i].c = harness_connect(ports[i]);
        r = harness_expect(cl1_nodes[i].c, REDIS_REPLY_STRING, "CLUSTER MYID");
        snprintf(cl1_nodes[i].id, sizeof(cl1_nodes[i].id), "%s", r->str);
        freeReplyObject(r);
    }
}

/* Index in cl1_nodes of the node on port, -1 if none. */
static int cl1_node_of_port(long long port)
{
    for (int i = 0; i < cl1_nnodes; i++)
        if (cl1_nodes[i].port == port)
            return i;
    return -1;
}

/* The node owning slot, per node 0's CLUSTER SLOTS (-1: unassigned). */
static int cl1_owner(int slot)
{
    redisReply *r = harness_expect(cl1_nodes[0].c, REDIS_REPLY_ARRAY, "CLUSTER SLOTS");
    int owner = -1;

    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];

        if (e->element[0]->integer <= slot && slot <= e->element[1]->integer)
            owner = cl1_node_of_port(e->element[2]->element[1]->integer);
    }
    freeReplyObject(r);
    return owner;
}

static int cl1_keyslot(const char *key)
{
    return (int)harness_cmd_int(cl1_nodes[0].c, "CLUSTER KEYSLOT %s", key);
}

/* A key "<prefix>N" whose slot node `node` owns (into out). */
static void cl1_key_on(int node, const char *prefix, char *out, size_t cap)
{
    for (int i = 0; i < CL1_KEY_TRIES; i++) {
        snprintf(out, cap, "%s%d", prefix, i);
        if (cl1_owner(cl1_keyslot(out)) == node)
            return;
    }
    cr_assert_fail("no key %s* on node %d in %d tries", prefix, node, CL1_KEY_TRIES);
}

/* ---- the proxy ------------------------------------------------------------ */

static long long cl1_stat(const char *name)
{
    return harness_proxy_l1_ll(cl1_admin, name);
}

/* How many origins say ready=1 in REDSNANO L1. */
static int cl1_ready_origins(void)
{
    redisReply *r = harness_expect(cl1_admin, REDIS_REPLY_STRING, "REDSNANO L1");
    int n = 0;

    for (const char *p = r->str; (p = strstr(p, ",ready=1")) != NULL; p++)
        n++;
    freeReplyObject(r);
    return n;
}

static char *cl1_diag(void)
{
    redisReply *r = cl1_admin ? redisCommand(cl1_admin, "REDSNANO L1") : NULL;
    char *out = strdup(r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "(no REDSNANO L1)");

    if (r != NULL)
        freeReplyObject(r);
    return out;
}

/* Start the proxy on port offset `at` with seed, the L1 on, the slot map
 * re-read every `interval` ms, and wait for `origins` ready origins. */
static void cl1_proxy_start(int at, const char *seed, int origins, const char *interval)
{
    const char *args[] = { "--cluster", seed, "--health-interval", interval, "--read-policy", "primary",
                           "--l1-maxmemory", "64mb", "--l1-admission", "no", "--loglevel", "verbose", NULL };

    cl1_proxy = harness_try_proxy_startv(CL1_PORT(at), args, true);
    cr_assert_not_null(cl1_proxy, "proxy start failed: %s", harness_error());
    cl1_px = harness_connect(cl1_proxy->port);
    cl1_admin = harness_connect(cl1_proxy->port);
    harness_diag_set(cl1_proxy, cl1_diag);
    cr_assert(harness_wait_until(cl1_ready_origins() == origins, CL1_READY_MS),
              "%d origins ready after %d ms, wanted %d:\n%s", cl1_ready_origins(), CL1_READY_MS, origins,
              harness_diag());
}

/* The 3-primary cluster and its proxy (map re-read every interval ms). */
static void cl1_start_interval(const char *interval)
{
    int ports[CL1_NODES];
    harness_proc *procs[CL1_NODES];

    harness_skip_if_direct();
    for (int i = 0; i < CL1_NODES; i++)
        ports[i] = CL1_PORT(i);
    harness_cluster_start(ports, CL1_NODES, CL1_NODE_TIMEOUT_MS, procs);
    cl1_connect_nodes(ports, CL1_NODES);
    cl1_proxy_start(CL1_PROXY, cl1_nodes[0].addr, CL1_NODES, interval);
}

static void cl1_start(void)
{
    cl1_start_interval(CL1_INTERVAL);
}

/* GET key through the proxy twice: the first fills, the second must be a
 * hit; checks the value both times (NULL = nil). */
static void cl1_cache(const char *key, const char *want)
{
    long long hits = cl1_stat("l1_hits");

    harness_expect_bulk(cl1_px, want, "GET %s", key);
    harness_expect_bulk(cl1_px, want, "GET %s", key);
    cr_assert_eq(cl1_stat("l1_hits"), hits + 1, "the second GET %s was not an L1 hit:\n%s", key, harness_diag());
}

/* GET key through the proxy is an L1 hit answering want (NULL = nil). */
static void cl1_hit(const char *key, const char *want)
{
    long long hits = cl1_stat("l1_hits");

    harness_expect_bulk(cl1_px, want, "GET %s", key);
    cr_assert_eq(cl1_stat("l1_hits"), hits + 1, "GET %s was not an L1 hit:\n%s", key, harness_diag());
}

/* GET key through the proxy answers want (NULL = nil)? */
static bool cl1_get_is(const char *key, const char *want)
{
    redisReply *r = harness_cmd(cl1_px, "GET %s", key);
    bool ok = r != NULL && (want == NULL ? r->type == REDIS_REPLY_NIL
                                         : r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0);

    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

/* Wait until every entry unverified by slot moves since the counters were
 * (moved0, unchanged0) has been found unchanged by its revalidation (no
 * write happened meanwhile): the new owner tracks them from then on. */
static bool cl1_revalidated(long long moved0, long long unchanged0)
{
    return cl1_stat("l1_reval_unchanged") - unchanged0 >= cl1_stat("l1_reval_slot_moved") - moved0;
}

/* ---- tests ---------------------------------------------------------------- */

Test(cluster_l1, reads_hit_the_l1_for_keys_on_every_node)
{
    char key[CL1_NODES][32], val[32];

    cl1_start();
    for (int i = 0; i < CL1_NODES; i++) {
        cl1_key_on(i, "hit:", key[i], sizeof(key[i]));
        snprintf(val, sizeof(val), "v%d", i);
        harness_expect_status(cl1_px, "OK", "SET %s %s", key[i], val);
        cl1_cache(key[i], val);
        /* Filled from its own node: the value is there, not elsewhere. */
        harness_expect_bulk(cl1_nodes[i].c, val, "GET %s", key[i]);
    }
    cr_assert_eq(cl1_stat("l1_origins"), CL1_NODES, "one origin per primary");
    cr_assert_geq(cl1_stat("l1_entries"), CL1_NODES, "an entry per key");
    cr_assert_eq(cl1_stat("l1_redirected"), 0, "no fill went to the wrong node");
    harness_proxy_check_exit(cl1_proxy);
}

Test(cluster_l1, a_write_made_directly_on_a_node_is_invalidated_by_that_nodes_tracking)
{
    char key[CL1_NODES][32];

    cl1_start();
    for (int i = 0; i < CL1_NODES; i++) {
        cl1_key_on(i, "trk:", key[i], sizeof(key[i]));
        harness_expect_status(cl1_px, "OK", "SET %s old", key[i]);
        cl1_cache(key[i], "old");
    }
    long long inv = cl1_stat("l1_inv_tracking");
    for (int i = 0; i < CL1_NODES; i++) {
        harness_expect_status(cl1_nodes[i].c, "OK", "SET %s new%d", key[i], i);
        cr_assert(harness_wait_until(cl1_stat("l1_inv_tracking") >= inv + i + 1, CL1_INV_MS),
                  "node %d's write to %s was not reported by its tracking:\n%s", i, key[i], harness_diag());
        char want[16];
        snprintf(want, sizeof(want), "new%d", i);
        /* the new value, cached again from that node */
        cl1_cache(key[i], want);
    }
    harness_proxy_check_exit(cl1_proxy);
}

Test(cluster_l1, mget_over_three_nodes_answers_held_keys_from_the_l1_in_order)
{
    char k0[32], k2[32], tag[32], m1[48], m2[48];

    cl1_start();
    cl1_key_on(0, "mg:a", k0, sizeof(k0));
    cl1_key_on(2, "mg:c", k2, sizeof(k2));
    cl1_key_on(1, "mg:t", tag, sizeof(tag));
    /* Two missing keys in one slot of node 1 (a hash tag). */
    snprintf(m1, sizeof(m1), "{%s}b", tag);
    snprintf(m2, sizeof(m2), "{%s}d", tag);
    cr_assert_eq(cl1_owner(cl1_keyslot(m1)), 1, "precondition: %s on node 1", m1);
    harness_expect_status(cl1_px, "OK", "SET %s A", k0);
    harness_expect_status(cl1_px, "OK", "SET %s C", k2);
    harness_expect_status(cl1_px, "OK", "SET %s B", m1);
    cl1_cache(k0, "A");
    cl1_cache(k2, "C");

    long long hits = cl1_stat("l1_hits"), mget = cl1_stat("l1_mget"), asked = cl1_stat("l1_mget_asked");
    redisReply *r = harness_expect(cl1_px, REDIS_REPLY_ARRAY, "MGET %s %s %s %s", k0, m1, k2, m2);
    cr_assert_eq(r->elements, 4, "MGET of 4 keys: %zu elements", r->elements);
    cr_assert(r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "A") == 0, "element 1");
    cr_assert(r->element[1]->type == REDIS_REPLY_STRING && strcmp(r->element[1]->str, "B") == 0, "element 2");
    cr_assert(r->element[2]->type == REDIS_REPLY_STRING && strcmp(r->element[2]->str, "C") == 0, "element 3");
    cr_assert(r->element[3]->type == REDIS_REPLY_NIL, "element 4 (missing key)");
    freeReplyObject(r);
    cr_assert_eq(cl1_stat("l1_mget"), mget + 1, "the MGET was not answered by the L1:\n%s", harness_diag());
    cr_assert_eq(cl1_stat("l1_hits"), hits + 2, "two keys held (nodes 0 and 2)");
    cr_assert_eq(cl1_stat("l1_mget_asked"), asked + 2, "only the two missing keys went to node 1");

    /* The key asked for is held now: the same MGET over three nodes again,
     * three elements from the L1 and one asked. */
    hits = cl1_stat("l1_hits");
    r = harness_expect(cl1_px, REDIS_REPLY_ARRAY, "MGET %s %s %s %s", k0, m1, k2, m2);
    cr_assert(r->elements == 4 && r->element[1]->type == REDIS_REPLY_STRING && strcmp(r->element[1]->str, "B") == 0 &&
                  r->element[3]->type == REDIS_REPLY_NIL, "the second MGET");
    freeReplyObject(r);
    cr_assert_eq(cl1_stat("l1_hits"), hits + 3, "three keys held after the first MGET stored one");

    /* Missing keys over two slots: split per slot, the held keys still
     * answered from the L1 (not asked of their nodes), all in order. */
    const char *none1 = "mg:none:1", *none2 = "mg:none:2";
    cr_assert_neq(cl1_keyslot(none1), cl1_keyslot(none2), "precondition: two slots");
    long long khits = 0, kmiss = 0;
    for (int i = 0; i < CL1_NODES; i++) {
        khits -= harness_info_ll(cl1_nodes[i].c, "stats", "keyspace_hits");
        kmiss -= harness_info_ll(cl1_nodes[i].c, "stats", "keyspace_misses");
    }
    hits = cl1_stat("l1_hits");
    mget = cl1_stat("l1_mget");
    r = harness_expect(cl1_px, REDIS_REPLY_ARRAY, "MGET %s %s %s %s", none1, k0, none2, k2);
    cr_assert(r->elements == 4 && r->element[0]->type == REDIS_REPLY_NIL &&
                  r->element[1]->type == REDIS_REPLY_STRING && strcmp(r->element[1]->str, "A") == 0 &&
                  r->element[2]->type == REDIS_REPLY_NIL && r->element[3]->type == REDIS_REPLY_STRING &&
                  strcmp(r->element[3]->str, "C") == 0,
              "MGET with missing keys over slots, in order");
    freeReplyObject(r);
    for (int i = 0; i < CL1_NODES; i++) {
        khits += harness_info_ll(cl1_nodes[i].c, "stats", "keyspace_hits");
        kmiss += harness_info_ll(cl1_nodes[i].c, "stats", "keyspace_misses");
    }
    cr_assert_eq(cl1_stat("l1_hits"), hits + 2, "the two held keys were not answered by the L1:\n%s", harness_diag());
    cr_assert_eq(cl1_stat("l1_mget"), mget + 1, "the MGET was not counted as answered in part by the L1");
    cr_assert(khits == 0 && kmiss == 2, "the nodes looked up %lld existing and %lld missing keys (want 0 and 2)",
              khits, kmiss);
    /* A write split over nodes (MSET) drops what it touches. */
    harness_expect_status(cl1_px, "OK", "MSET %s A2 %s C2", k0, k2);
    harness_expect_bulk(cl1_px, "A2", "GET %s", k0);
    harness_expect_bulk(cl1_px, "C2", "GET %s", k2);
    harness_expect_int(cl1_px, 2, "DEL %s %s", k0, k2);
    harness_expect_bulk(cl1_px, NULL, "GET %s", k0);
    harness_expect_bulk(cl1_px, NULL, "GET %s", k2);
    harness_proxy_check_exit(cl1_proxy);
}

Test(cluster_l1, a_moved_slot_is_revalidated_against_its_new_owner)
{
    char tag[32], moved[48], absent[48], same[48];

    cl1_start();
    cl1_key_on(0, "mv:", tag, sizeof(tag));
    snprintf(moved, sizeof(moved), "{%s}k", tag);   /* exists: MIGRATE moves it */
    snprintf(absent, sizeof(absent), "{%s}n", tag); /* cached as nil, written on the new owner */
    snprintf(same, sizeof(same), "{%s}s", tag);     /* cached as nil, unchanged */
    int slot = cl1_keyslot(moved);
    cr_assert_eq(cl1_owner(slot), 0, "precondition: slot %d on node 0", slot);
    harness_expect_status(cl1_px, "OK", "SET %s v1", moved);
    cl1_cache(moved, "v1");
    cl1_cache(absent, NULL);
    cl1_cache(same, NULL);

    long long slot_moved = cl1_stat("l1_reval_slot_moved"), unchanged = cl1_stat("l1_reval_unchanged");
    /* Move the slot from node 0 to node 1. */
    harness_expect_status(cl1_nodes[1].c, "OK", "CLUSTER SETSLOT %d IMPORTING %s", slot, cl1_nodes[0].id);
    harness_expect_status(cl1_nodes[0].c, "OK", "CLUSTER SETSLOT %d MIGRATING %s", slot, cl1_nodes[1].id);
    harness_expect_status(cl1_nodes[0].c, "OK", "MIGRATE 127.0.0.1 %d %s 0 5000", cl1_nodes[1].port, moved);
    harness_expect_status(cl1_nodes[1].c, "OK", "CLUSTER SETSLOT %d NODE %s", slot, cl1_nodes[1].id);
    harness_expect_status(cl1_nodes[0].c, "OK", "CLUSTER SETSLOT %d NODE %s", slot, cl1_nodes[1].id);
    harness_expect_status(cl1_nodes[2].c, "OK", "CLUSTER SETSLOT %d NODE %s", slot, cl1_nodes[1].id);
    /* The proxy re-reads the map: the slot's entries are unverified and
     * revalidated against node 1. */
    cr_assert(harness_wait_until(cl1_stat("l1_reval_slot_moved") >= slot_moved + 2, CL1_INV_MS),
              "the slot's entries were not revalidated after the move:\n%s", harness_diag());
    cr_assert(harness_wait_until(cl1_revalidated(slot_moved, unchanged), CL1_INV_MS),
              "the slot's entries were not checked against node 1:\n%s", harness_diag());
    /* Changed on the new owner, behind the proxy's back: the revalidation
     * made node 1 track the entry it checked, so node 1 reports the write
     * (waited for: Redis may write its reply to the writer before the
     * report). */
    long long inv = cl1_stat("l1_inv_tracking");
    harness_expect_status(cl1_nodes[1].c, "OK", "SET %s v2", moved);
    harness_expect_status(cl1_nodes[1].c, "OK", "SET %s now", absent);
    cr_assert(harness_wait_until(cl1_stat("l1_inv_tracking") > inv, CL1_INV_MS),
              "node 1 did not report the write to %s:\n%s", absent, harness_diag());
    cr_assert(cl1_get_is(moved, "v2"), "%s served stale after the slot moved:\n%s", moved, harness_diag());
    cr_assert(cl1_get_is(absent, "now"), "%s served as nil after the slot moved and it was written:\n%s", absent,
              harness_diag());
    /* Served from the L1 again: the unchanged entry once revalidated, the
     * others once refilled from node 1. */
    cl1_hit(same, NULL);
    cl1_hit(moved, "v2");
    cl1_hit(absent, "now");
    harness_expect_bulk(cl1_nodes[1].c, "v2", "GET %s", moved);
    harness_proxy_check_exit(cl1_proxy);
}

Test(cluster_l1, a_fill_answered_moved_is_resent_to_the_new_owner_and_not_stored)
{
    char tag[32], key[48], held[48];

    cl1_start_interval(CL1_STALE_INTERVAL);     /* the proxy learns the move from -MOVED only */
    cl1_key_on(0, "rd:", tag, sizeof(tag));
    snprintf(key, sizeof(key), "{%s}k", tag);
    snprintf(held, sizeof(held), "{%s}h", tag);
    int slot = cl1_keyslot(key);
    cl1_cache(held, NULL);                      /* an entry of the slot, cached as nil on node 0 */
    /* The slot moves to node 1 (empty: nothing to migrate) and the key is
     * written there directly. */
    harness_expect_status(cl1_nodes[1].c, "OK", "CLUSTER SETSLOT %d NODE %s", slot, cl1_nodes[1].id);
    harness_expect_status(cl1_nodes[0].c, "OK", "CLUSTER SETSLOT %d NODE %s", slot, cl1_nodes[1].id);
    harness_expect_status(cl1_nodes[2].c, "OK", "CLUSTER SETSLOT %d NODE %s", slot, cl1_nodes[1].id);
    harness_expect_status(cl1_nodes[1].c, "OK", "SET %s v", key);
    long long redirected = cl1_stat("l1_redirected"), moved = cl1_stat("l1_reval_slot_moved");
    long long unchanged = cl1_stat("l1_reval_unchanged");
    /* The fill goes to node 0, which answers -MOVED: the L1 resends it to
     * node 1 for the client and stores nothing. */
    harness_expect_bulk(cl1_px, "v", "GET %s", key);
    cr_assert_eq(cl1_stat("l1_redirected"), redirected + 1, "the fill was not redirected:\n%s", harness_diag());
    /* The -MOVED updated the map: the slot's entry is revalidated against
     * node 1, and the key is filled from node 1 next time. */
    cr_assert(harness_wait_until(cl1_stat("l1_reval_slot_moved") > moved, CL1_INV_MS),
              "the slot's entries were not revalidated after the -MOVED:\n%s", harness_diag());
    cr_assert(harness_wait_until(cl1_revalidated(moved, unchanged), CL1_INV_MS),
              "the slot's entries were not checked against node 1:\n%s", harness_diag());
    cl1_cache(key, "v");
    long long inv = cl1_stat("l1_inv_tracking");
    harness_expect_status(cl1_nodes[1].c, "OK", "SET %s now", held);
    cr_assert(harness_wait_until(cl1_stat("l1_inv_tracking") > inv, CL1_INV_MS),
              "node 1 did not report the write to %s (revalidated there):\n%s", held, harness_diag());
    cr_assert(cl1_get_is(held, "now"), "%s served stale after the -MOVED:\n%s", held, harness_diag());
    harness_proxy_check_exit(cl1_proxy);
}

Test(cluster_l1, a_shard_failover_revalidates_that_nodes_entries_only)
{
    int ports[CL1_RS_NODES];
    harness_proc *procs[CL1_RS_NODES];
    char key[32], other[32];
    int primary = -1, replica = -1;

    harness_skip_if_direct();
    for (int i = 0; i < CL1_RS_NODES; i++)
        ports[i] = CL1_PORT(CL1_RS_BASE + i);
    harness_cluster_start_replicas(ports, CL1_RS_NODES, 1, CL1_NODE_TIMEOUT_MS, procs);
    cl1_connect_nodes(ports, CL1_RS_NODES);
    /* key's shard: its primary and replica; other: a key on another primary. */
    snprintf(key, sizeof(key), "fo:key");
    int slot = cl1_keyslot(key);
    redisReply *r = harness_expect(cl1_nodes[0].c, REDIS_REPLY_ARRAY, "CLUSTER SLOTS");
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->element[0]->integer <= slot && slot <= e->element[1]->integer && e->elements >= 4) {
            primary = cl1_node_of_port(e->element[2]->element[1]->integer);
            replica = cl1_node_of_port(e->element[3]->element[1]->integer);
        }
    }
    freeReplyObject(r);
    cr_assert(primary >= 0 && replica >= 0, "precondition: slot %d has a primary and a replica", slot);
    for (int i = 0;; i++) {
        snprintf(other, sizeof(other), "fo:other%d", i);
        int o = cl1_owner(cl1_keyslot(other));
        if (o >= 0 && o != primary)
            break;
        cr_assert_lt(i, CL1_KEY_TRIES, "no key on another primary");
    }
    cl1_proxy_start(CL1_RS_PROXY, cl1_nodes[0].addr, 3, CL1_INTERVAL);

    harness_expect_status(cl1_px, "OK", "SET %s v1", key);
    harness_expect_status(cl1_px, "OK", "SET %s o1", other);
    cl1_cache(key, "v1");
    cl1_cache(other, "o1");
    harness_expect_status(cl1_nodes[replica].c, "OK", "READONLY");
    cr_assert(harness_wait_until(
                  ({
                      redisReply *g = harness_cmd(cl1_nodes[replica].c, "GET %s", key);
                      bool ok = g != NULL && g->type == REDIS_REPLY_STRING && strcmp(g->str, "v1") == 0;
                      if (g != NULL)
                          freeReplyObject(g);
                      ok;
                  }),
                  CL1_SYNC_MS),
              "precondition: %s not replicated", key);

    long long slot_moved = cl1_stat("l1_reval_slot_moved"), unchanged = cl1_stat("l1_reval_unchanged");
    harness_expect_status(cl1_nodes[replica].c, "OK", "CLUSTER FAILOVER");
    /* The proxy sees the shard's new primary: that shard's entries (one:
     * key) are revalidated against it, the other node's are not. */
    cr_assert(harness_wait_until(cl1_stat("l1_reval_slot_moved") > slot_moved, CL1_FAILOVER_MS),
              "the failed-over shard's entries were not revalidated:\n%s", harness_diag());
    cr_assert_eq(cl1_stat("l1_reval_slot_moved"), slot_moved + 1, "only the failed-over node's entry");
    cr_assert(harness_wait_until(cl1_revalidated(slot_moved, unchanged), CL1_FAILOVER_MS),
              "the entry was not checked against the new primary:\n%s", harness_diag());
    cr_assert(harness_wait_until(cl1_ready_origins() == 3, CL1_READY_MS), "the new primary's origin is not ready:\n%s",
              harness_diag());
    cl1_hit(other, "o1");               /* the other node's entry is still served */
    /* Written on the new primary behind the proxy's back: the revalidation
     * made it track the key, so it reports the write; never stale. */
    long long inv = cl1_stat("l1_inv_tracking");
    harness_expect_status(cl1_nodes[replica].c, "OK", "SET %s v2", key);
    cr_assert(harness_wait_until(cl1_stat("l1_inv_tracking") > inv, CL1_INV_MS),
              "the new primary did not report the write (revalidated there):\n%s", harness_diag());
    cr_assert(cl1_get_is(key, "v2"), "%s served stale after the failover:\n%s", key, harness_diag());
    cl1_hit(key, "v2");
    /* and the new primary's tracking reports its writes to refilled keys */
    inv = cl1_stat("l1_inv_tracking");
    harness_expect_status(cl1_nodes[replica].c, "OK", "SET %s v3", key);
    cr_assert(harness_wait_until(cl1_stat("l1_inv_tracking") > inv, CL1_INV_MS),
              "the new primary's tracking did not report the write:\n%s", harness_diag());
    harness_expect_bulk(cl1_px, "v3", "GET %s", key);
    harness_proxy_check_exit(cl1_proxy);
}
