/*
 * proxy/proxy.h — the process-wide state: one loop, one configuration, the
 * backends, the clients, the counters.
 *
 *   main.c fills it; listener.c adds clients; router.c reads the backends;
 *   admin.c reports the counters.
 *
 * There is exactly one struct proxy per process (`proxy`), created by main
 * before the loop runs and torn down after it stops.
 */
#ifndef REDSNANO_PROXY_PROXY_H
#define REDSNANO_PROXY_PROXY_H

#include <stdint.h>
#include <uv.h>

#include "backends/backend.h"
#include "proxy/config.h"
#include "protocol/request.h"

struct client;
struct topology;

struct proxy_stats {
    uint64_t connections_received;    /* clients accepted */
    uint64_t rejected_connections;    /* refused by maxclients */
    uint64_t commands;                /* requests framed */
    uint64_t local_replies;           /* answered by the proxy itself */
    uint64_t forwarded;               /* sent to a backend */
    uint64_t backend_errors;          /* answered with a backend error */
    uint64_t protocol_errors;         /* clients closed for bad input */
    uint64_t denied;                  /* admin commands refused */
    uint64_t stalls;                  /* times a client waited to change connection */
    uint64_t retries;                 /* reads resent after their replica failed */
};

struct proxy {
    uv_loop_t *loop;                  /* the one event loop */
    struct config *cfg;               /* configuration in force */
    struct reqlimits limits;          /* framing limits from cfg */
    struct backend primary;           /* where writes go */
    struct backend replicas[CONFIG_MAX_ADDRS]; /* where reads may go */
    int nreplicas;                    /* replicas configured or discovered */
    struct client *clients;           /* every connected client (doubly linked) */
    unsigned nclients;                /* clients connected */
    struct proxy_stats stats;         /* counters for REDSNANO STATS / INFO */
    uint64_t start_ms;                /* loop time at start */
    int shutting_down;                /* SIGTERM seen: no new clients */
    char redis_version[32];           /* reported by HELLO */
};

extern struct proxy *proxy;

#endif
