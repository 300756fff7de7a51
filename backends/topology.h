/*
 * backends/topology.h — the deployment behind the proxy, one object for
 * every shape of it.
 *
 *   proxy/router ── topology_write_backend(slot) ──┐
 *                ── topology_read_backend(slot)  ──┼─> ops of the mode ─> struct backend
 *                ── topology_redirect(-MOVED/-ASK)─┘
 *
 *   mode STATIC:  primary + replicas, from the configuration or from
 *                 backends/sentinel (topology_set_primary / _set_replicas)
 *   mode CLUSTER: backends/cluster's slot map (one primary per slot range)
 *
 *   health.c, admin (figures) ── topology_foreach() ── every backend
 *
 * The proxy never promotes anything: the primary is only what the
 * configuration, Sentinel or the cluster map say.
 *
 * Contract:
 * - topology_init() fills t for the static mode; cluster_start() switches
 *   it to the cluster mode. Nothing here reaches up into proxy/: changes are
 *   reported through the listeners (topology_listen), which run after the
 *   switch (the L1 revalidates, the proxy ends sessions pinned to the old
 *   primary).
 * - topology_write_backend() and topology_read_backend() return a backend
 *   or NULL (cluster: slot map unknown). slot < 0 means the call names no
 *   key. They never allocate and never fail otherwise.
 * - topology_set_primary() / topology_set_replicas() return 0 when applied
 *   (or when nothing changed: no disruption then), -1 when an address cannot
 *   be resolved (nothing changed).
 * - settings are read, never written, and may be replaced between loop
 *   turns (live reload).
 */
#ifndef REDSNANO_BACKENDS_TOPOLOGY_H
#define REDSNANO_BACKENDS_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "backends/backend.h"
#include "base/hostport.h"

#define TOPOLOGY_MAX_REPLICAS 32
#define TOPOLOGY_MAX_LISTENERS 4

enum topology_mode { TOPOLOGY_STATIC = 0, TOPOLOGY_CLUSTER };

struct topology;

/* The operations one mode implements. */
struct topology_ops {
    struct backend *(*write_backend)(struct topology *t, int slot);
    struct backend *(*read_backend)(struct topology *t, int slot);
    /* A -MOVED / -ASK reply: where to resend (1), or not a redirect (0). */
    int (*redirect)(struct topology *t, const char *reply, size_t len, struct backend **to, int *ask);
    void (*foreach)(struct topology *t, void (*fn)(struct backend *b, void *ud), void *ud);
    /* The primaries that hold data: up to max into out, how many there are. */
    int (*primaries)(struct topology *t, struct backend **out, int max);
    /* Another backend for a read that failed on `failed` (see topology_retry_backend). */
    struct backend *(*retry_backend)(struct topology *t, struct backend *failed);
};

/* Called after the primary changed (static mode), with the old primary's
 * struct already pointing at the new address. */
typedef void topology_listener_fn(struct topology *t, void *ud);

/* Callbacks of one kind of change, called in registration order. */
struct topology_listeners {
    struct {
        topology_listener_fn *fn;
        void *ud;
    } v[TOPOLOGY_MAX_LISTENERS];
    int n;                            /* v[] in use */
};

struct topology {
    uv_loop_t *loop;                  /* the loop every connection runs on */
    const struct backend_settings *set; /* settings in force */
    enum topology_mode mode;          /* static or cluster */
    const struct topology_ops *ops;   /* the mode's operations */
    struct backend primary;           /* static: where writes go */
    struct backend replicas[TOPOLOGY_MAX_REPLICAS]; /* static: where reads may go */
    int nreplicas;                    /* replicas configured or discovered */
    unsigned rr;                      /* read rotation */
    char redis_version[32];           /* the primary's, from health checks ("" = unknown) */
    struct topology_listeners on_primary; /* primary-change listeners */
    struct topology_listeners on_map; /* slot-map-change listeners (cluster mode) */
};

/* Static mode over primary + replicas (resolved now). Returns 0, or -1 with
 * the failing backend's err set (logged). */
int topology_init(struct topology *t, uv_loop_t *loop, const struct backend_settings *set,
                  const struct hostport *primary, const struct hostport *replicas, int nreplicas);

/* Close every connection of every backend (shutdown). */
void topology_close(struct topology *t, const char *why);

static inline struct backend *topology_write_backend(struct topology *t, int slot)
{
    return t->ops->write_backend(t, slot);
}

static inline struct backend *topology_read_backend(struct topology *t, int slot)
{
    return t->ops->read_backend(t, slot);
}

static inline int topology_redirect(struct topology *t, const char *reply, size_t len,
                                    struct backend **to, int *ask)
{
    return t->ops->redirect(t, reply, len, to, ask);
}

static inline void topology_foreach(struct topology *t, void (*fn)(struct backend *b, void *ud), void *ud)
{
    t->ops->foreach(t, fn, ud);
}

/* The primaries that hold data (static: the primary; cluster: every node
 * owning a slot, in the order the nodes were first seen, which never
 * changes). Writes up to max of them into out and returns how many there
 * are (0: cluster slot map not known yet). Keyless commands that must see
 * the whole dataset (DBSIZE, KEYS, FLUSHALL...) go to each. */
static inline int topology_primaries(struct topology *t, struct backend **out, int max)
{
    return t->ops->primaries(t, out, max);
}

/* Another backend for a read whose backend failed before answering (static:
 * a healthy, connected replica, else the primary; cluster: the replica's
 * primary), or NULL when failed was a primary (writes and primary reads are
 * never resent). */
static inline struct backend *topology_retry_backend(struct topology *t, struct backend *failed)
{
    return t->ops->retry_backend(t, failed);
}

/* Static mode: Sentinel (or a reload) names the primary / the replicas. */
int topology_set_primary(struct topology *t, const char *host, int port);
int topology_set_replicas(struct topology *t, const struct hostport *addrs, int n);

/* Register a primary-change listener (at most TOPOLOGY_MAX_LISTENERS). */
int topology_listen(struct topology *t, topology_listener_fn *fn, void *ud);

/* Register a slot-map listener (at most TOPOLOGY_MAX_LISTENERS): called
 * after the cluster mode's slot map changed (a slot has another owner, a
 * new map or a -MOVED applied), with write_backend(slot) already answering
 * from the new map. It must be cheap (it may run once per -MOVED): note
 * the change, act on it later. 0, or -1 when full. */
int topology_listen_map(struct topology *t, topology_listener_fn *fn, void *ud);

/* The slot map changed: call the map listeners (cluster.c). */
void topology_map_changed(struct topology *t);

/* The static mode's operations (cluster.c installs its own). */
extern const struct topology_ops topology_static_ops;

#endif
