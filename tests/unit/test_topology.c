/*
 * tests/unit/test_topology.c — backends/: the topology's picks in the
 * static mode (read policies, spreading, health, retries), primary changes
 * reported to listeners, and the cluster key slots (table CRC16 against its
 * bitwise definition and Redis's documented slots). Links the backends,
 * protocol and base libraries; opens no connection.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "backends/cluster.h"
#include "backends/topology.h"

static uv_loop_t t_loop;
static struct topology T;
static struct backend_settings t_set = {
    .connections = 1, .spares = 0, .connect_timeout_ms = 100, .timeout_ms = 100,
    .health_interval_ms = 100, .health_timeout_ms = 100, .read_policy = READ_PREFER_REPLICA,
};

static void t_init(int nreplicas, enum read_policy policy)
{
    static const struct hostport primary = { "127.0.0.1", 6390 };
    static const struct hostport replicas[3] = { { "127.0.0.1", 6391 }, { "127.0.0.1", 6392 },
                                                 { "127.0.0.1", 6393 } };
    cr_assert_eq(uv_loop_init(&t_loop), 0);
    t_set.read_policy = policy;
    cr_assert_eq(topology_init(&T, &t_loop, &t_set, &primary, replicas, nreplicas), 0);
}

static void t_fini(void)
{
    topology_close(&T, "test over");
    uv_run(&t_loop, UV_RUN_DEFAULT);
    uv_loop_close(&t_loop);
}

TestSuite(topology, .fini = t_fini);

Test(topology, writes_go_to_the_primary)
{
    t_init(2, READ_REPLICA);
    cr_assert_eq(topology_write_backend(&T, -1), &T.primary);
    cr_assert_eq(topology_write_backend(&T, 100), &T.primary);
}

Test(topology, consecutive_reads_alternate_over_replicas)
{
    t_init(2, READ_REPLICA);
    int hits[2] = { 0 };
    /* Any run of reads, even or odd in length, is spread: the rotation
     * moves once per read. */
    for (int i = 0; i < 16; i++) {
        struct backend *b = topology_read_backend(&T, -1);
        cr_assert(b == &T.replicas[0] || b == &T.replicas[1]);
        hits[b - T.replicas]++;
    }
    cr_assert_eq(hits[0], 8);
    cr_assert_eq(hits[1], 8);
}

Test(topology, unhealthy_replicas_are_skipped_then_the_primary_serves)
{
    t_init(2, READ_PREFER_REPLICA);
    T.replicas[0].healthy = 0;
    for (int i = 0; i < 4; i++)
        cr_assert_eq(topology_read_backend(&T, -1), &T.replicas[1]);
    T.replicas[1].healthy = 0;
    cr_assert_eq(topology_read_backend(&T, -1), &T.primary);
}

Test(topology, read_policies)
{
    t_init(2, READ_PRIMARY);
    cr_assert_eq(topology_read_backend(&T, -1), &T.primary);
    t_set.read_policy = READ_ROUND_ROBIN;
    int primary = 0, replica = 0;
    for (int i = 0; i < 9; i++) {
        struct backend *b = topology_read_backend(&T, -1);
        if (b == &T.primary)
            primary++;
        else
            replica++;
    }
    cr_assert_eq(primary, 3, "round-robin includes the primary: 1 of 3");
    cr_assert_eq(replica, 6);
    t_set.read_policy = READ_NEAREST;
    T.primary.latency_us = 300;
    T.replicas[0].latency_us = 500;
    T.replicas[1].latency_us = 100;
    cr_assert_eq(topology_read_backend(&T, -1), &T.replicas[1]);
}

Test(topology, no_replicas_means_the_primary)
{
    t_init(0, READ_REPLICA);
    cr_assert_eq(topology_read_backend(&T, -1), &T.primary);
}

Test(topology, a_failed_replica_read_is_retried_elsewhere_never_a_primary_one)
{
    t_init(2, READ_REPLICA);
    cr_assert_null(topology_retry_backend(&T, &T.primary));
    /* No replica is connected (no connection was ever opened): the primary. */
    cr_assert_eq(topology_retry_backend(&T, &T.replicas[0]), &T.primary);
}

static int t_calls;
static void t_listener(struct topology *t, void *ud)
{
    cr_assert_eq(t, &T);
    cr_assert_eq(ud, &t_calls);
    t_calls++;
}

Test(topology, a_primary_change_is_reported_once_and_keeps_the_struct)
{
    t_init(1, READ_REPLICA);
    t_calls = 0;
    cr_assert_eq(topology_listen(&T, t_listener, &t_calls), 0);
    struct backend *before = topology_write_backend(&T, -1);
    uint32_t gen = T.primary.generation;
    cr_assert_eq(topology_set_primary(&T, "127.0.0.1", 6390), 0);
    cr_assert_eq(t_calls, 0, "same address: nothing changes");
    cr_assert_eq(topology_set_primary(&T, "127.0.0.1", 6399), 0);
    cr_assert_eq(t_calls, 1);
    cr_assert_str_eq(T.primary.name, "127.0.0.1:6399");
    cr_assert_eq(topology_write_backend(&T, -1), before, "connections may keep pointing at it");
    cr_assert_eq(T.primary.generation, gen + 1);
    cr_assert_neq(topology_set_primary(&T, "no-such-host.invalid", 1), 0);
    cr_assert_eq(t_calls, 1);
}

Test(topology, replica_set_changes)
{
    t_init(2, READ_REPLICA);
    struct hostport one = { "127.0.0.1", 6395 };
    cr_assert_eq(topology_set_replicas(&T, &one, 1), 0);
    cr_assert_eq(T.nreplicas, 1);
    cr_assert_str_eq(T.replicas[0].name, "127.0.0.1:6395");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(topology_read_backend(&T, -1), &T.replicas[0]);
}

/* ---- cluster slots ---------------------------------------------------- */

static uint16_t crc16_bitwise(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint8_t)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

Test(cluster, keyslot_matches_the_bitwise_crc16_on_every_byte)
{
    char key[4];
    for (int a = 0; a < 256; a++) {
        for (int b = 0; b < 256; b += 17) {
            key[0] = (char)a;
            key[1] = (char)b;
            key[2] = 'k';
            key[3] = (char)(a ^ b);
            cr_assert_eq(cluster_keyslot(key, 4), crc16_bitwise(key, 4) & 16383u);
        }
    }
}

Test(cluster, keyslot_known_values_and_hashtags)
{
    /* CRC16 check value of "123456789" (XMODEM) is 0x31C3. */
    cr_assert_eq(crc16_bitwise("123456789", 9), 0x31c3);
    cr_assert_eq(cluster_keyslot("123456789", 9), 0x31c3 & 16383);
    cr_assert_eq(cluster_keyslot("foo", 3), 12182);       /* CLUSTER KEYSLOT foo */
    cr_assert_eq(cluster_keyslot("{user1000}.following", 20), cluster_keyslot("{user1000}.followers", 20));
    cr_assert_eq(cluster_keyslot("{user1000}.following", 20), cluster_keyslot("user1000", 8));
    cr_assert_eq(cluster_keyslot("foo{}{bar}", 10), crc16_bitwise("foo{}{bar}", 10) & 16383u,
                 "an empty tag hashes the whole key");
    cr_assert_eq(cluster_keyslot("foo{{bar}}zap", 13), cluster_keyslot("{bar", 4));
}
