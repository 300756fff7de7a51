/*
 * proxy/proxy.h — the process-wide state: one loop, one configuration, the
 * backends, the clients, the counters.
 *
 *   main.c fills it; listener.c adds clients; router.c asks the topology;
 *   admin.c reports the counters.
 *
 * Only proxy/ names it: the layers below receive what they need (the loop,
 * their settings, the topology) when they start.
 *
 * There is exactly one struct proxy per process (`proxy`), created by main
 * before the loop runs and torn down after it stops.
 */
#ifndef REDSNANO_PROXY_PROXY_H
#define REDSNANO_PROXY_PROXY_H

#include <stdint.h>
#include <uv.h>

#include "backends/sentinel.h"
#include "backends/topology.h"
#include "l1/l1.h"
#include "protocol/request.h"
#include "proxy/climits.h"
#include "proxy/config.h"

struct client;

/* The proxy's counters, declared once: field, REDSNANO STATS name, meaning.
 * The struct, the report and (later) the metrics come from this list. */
#define PROXY_STATS(X)                                                                   \
    X(connections_received, "total_connections_received", "clients accepted")           \
    X(rejected_connections, "rejected_connections", "clients refused by maxclients")    \
    X(commands, "total_commands_processed", "requests framed")                          \
    X(local_replies, "local_replies", "requests answered by the proxy itself")          \
    X(forwarded, "forwarded", "requests sent to a backend")                             \
    X(backend_errors, "backend_errors", "requests answered with a backend error")       \
    X(protocol_errors, "protocol_errors", "clients closed for bad input")               \
    X(denied, "denied_commands", "admin commands refused")                              \
    X(stalls, "stalls", "times a client waited for its in-flight requests to change connection") \
    X(retries, "read_retries", "reads resent after their replica failed")                 \
    X(backpressure_waits, "backpressure_waits", "times a client's requests waited for it to read its replies") \
    X(output_limit_closes, "client_output_limit_closes", "clients closed over client-output-buffer-limit") \
    X(evicted_clients, "evicted_clients", "clients closed by maxmemory-clients")                 \
    X(auth_failures, "auth_failures", "AUTH / HELLO AUTH refused (WRONGPASS)")           \
    X(acl_denied, "acl_denied", "requests refused with NOAUTH or NOPERM")                \
    X(protected_denied, "protected_mode_denied", "clients refused by protected mode")  \
    X(tls_failures, "tls_failures", "TLS clients closed for a handshake or TLS error")

struct proxy_stats {
#define PROXY_STAT_FIELD(field, name, help) uint64_t field;
    PROXY_STATS(PROXY_STAT_FIELD)
#undef PROXY_STAT_FIELD
};

struct proxy {
    uv_loop_t *loop;                  /* the one event loop */
    struct config *cfg;               /* configuration in force */
    struct reqlimits limits;          /* framing limits from cfg */
    struct backend_settings backend_set; /* the backends' settings, from cfg */
    struct sentinel_settings sentinel_set; /* the Sentinels', from cfg */
    struct l1_settings l1_set;        /* the L1's, from cfg */
    struct handshake_settings backend_hs; /* the proxy's identity and TLS on backends, from cfg */
    struct handshake_settings sentinel_hs; /* ... and towards the Sentinels */
    struct tls_ctx *tls_clients;      /* tls-port's server configuration, or NULL */
    struct climits_settings climits_set; /* client limits, from cfg */
    struct topology topo;             /* primary + replicas, or the cluster */
    struct client *clients;           /* every connected client (doubly linked) */
    unsigned nclients;                /* clients connected */
    struct proxy_stats stats;         /* counters for REDSNANO STATS */
    uint64_t start_ms;                /* loop time at start */
    int shutting_down;                /* SIGTERM seen: no new clients */
};

extern struct proxy *proxy;

/* Is the proxy in front of a Redis Cluster? */
static inline int proxy_cluster_mode(void)
{
    return proxy->topo.mode == TOPOLOGY_CLUSTER;
}

#endif
