/*
 * backends/cluster.h — Redis Cluster: slot map, slot owners, redirections.
 *
 *   config `cluster` seeds ─> cluster_start ─> CLUSTER SLOTS (every
 *   health-interval, and at once after a -MOVED) ─> slot -> primary node
 *
 *   router: keys ─> cluster_keyslot ─> topology_write_backend(slot) ─> its pool
 *   client: reply -MOVED/-ASK ─> topology_redirect ─> resend there
 *
 * Each primary is a struct backend (its own pool), allocated once and kept
 * for the life of the process, so connections may point at it safely; a
 * node that leaves the cluster simply owns no slots.
 *
 * Contract: everything is inert until cluster_start(). The proxy never
 * changes the cluster.
 */
#ifndef REDSNANO_BACKENDS_CLUSTER_H
#define REDSNANO_BACKENDS_CLUSTER_H

#include <stddef.h>

#include "base/buf.h"

#define CLUSTER_SLOTS 16384
#define CLUSTER_MAX_NODES 256
#define CLUSTER_MAX_REDIRECTS 5        /* MOVED/ASK hops one request may take */
#define CLUSTER_MAX_REPLICAS 8         /* replicas per primary used for reads */

struct backend;
struct hostport;
struct topology;

/* Switch t to the cluster mode and start learning the slot map from the
 * seeds. 0, or a negative error when no seed resolves. The topology's
 * operations then route by slot: write/read_backend(slot) is the slot's
 * primary (NULL until the first map arrives; any known node for slot < 0),
 * redirect() follows "-MOVED slot host:port" (the map is updated and a
 * refresh asked for) and "-ASK slot host:port". */
int cluster_start(struct topology *t, const struct hostport *seeds, int nseeds);

/* Close the map connection (shutdown; the nodes' pools close with the
 * topology). */
void cluster_stop(void);

/* The hash slot of a key, with {hashtag}s, as Redis Cluster computes it. */
unsigned cluster_keyslot(const char *key, size_t len);

/* A node's place in the list of nodes seen (stable for the life of the
 * process: nodes are never forgotten), -1 for a backend that is no node;
 * and back (NULL out of range). SCAN's cursor names its node by it. */
int cluster_node_index(const struct backend *b);
struct backend *cluster_node_at(int i);

/* INFO-style lines about every node (REDSNANO BACKENDS). */
void cluster_report(struct buf *t);

#endif
