/*
 * backends/cluster.h — Redis Cluster: slot map, slot owners, redirections.
 *
 *   config `cluster` seeds ─> cluster_start ─> CLUSTER SLOTS (every
 *   health-interval, and at once after a -MOVED) ─> slot -> primary node
 *
 *   router: keys ─> cluster_keyslot ─> cluster_node_for_slot ─> its pool
 *   client: reply -MOVED/-ASK ─> cluster_redirect ─> resend there
 *
 * Each primary is a struct backend (its own pool), allocated once and kept
 * for the life of the process, so connections may point at it safely; a
 * node that leaves the cluster simply owns no slots.
 *
 * Contract: everything is inert unless the configuration names cluster
 * seeds. cluster_node_for_slot() returns NULL until the first map arrives
 * (the router answers an error then). The proxy never changes the cluster.
 */
#ifndef REDSNANO_BACKENDS_CLUSTER_H
#define REDSNANO_BACKENDS_CLUSTER_H

#include <stddef.h>

#include "base/buf.h"

#define CLUSTER_SLOTS 16384
#define CLUSTER_MAX_NODES 256
#define CLUSTER_MAX_REDIRECTS 5        /* MOVED/ASK hops one request may take */

struct backend;

/* Is the proxy in cluster mode? */
int cluster_on(void);

/* Start learning the slot map (no-op without seeds). 0 or negative error. */
int cluster_start(void);

/* Close the map connection and every node's pool (shutdown). */
void cluster_stop(void);

/* The hash slot of a key, with {hashtag}s, as Redis Cluster computes it. */
unsigned cluster_keyslot(const char *key, size_t len);

/* The primary owning slot, or NULL while unknown. */
struct backend *cluster_node_for_slot(unsigned slot);

/* A node for keyless commands: the owner of slot 0, or any known node. */
struct backend *cluster_any_node(void);

/* If reply is "-MOVED slot host:port" or "-ASK slot host:port", set *to
 * (the node, created if new) and *ask, record a MOVED in the map and ask
 * for a refresh, and return 1. Return 0 for any other reply. */
int cluster_redirect(const char *reply, size_t len, struct backend **to, int *ask);

/* INFO-style lines about every node (REDSNANO BACKENDS). */
void cluster_report(struct buf *t);

#endif
