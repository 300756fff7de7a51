/*
 * backends/backend.h — one Redis server address and its connection pool.
 *
 *   proxy/router.c ── backend_pick() ──> a shared struct server (least busy)
 *   proxy/client.c ── backend_dedicated() ──> a new struct server for one client
 *
 * A backend keeps `backend-connections` shared connections, opened on
 * demand. A connection that fails leaves its slot empty; the slot is
 * reopened on demand by the next pick after a backoff (at most
 * BACKEND_DEMAND_BACKOFF_MAX_MS: a backend that comes back is used within
 * that much of accepting connections; a refused connect on loopback costs
 * one syscall), and picks in between fail fast with
 * "down since <time> (<how long>), last error: <why>" instead of queueing.
 * Spares are refilled after the long backoff (100 ms doubling to 3.2 s).
 *
 * A backend also keeps `spares` connected connections that nobody uses
 * yet: a client that becomes pinned (MULTI, BLPOP, SUBSCRIBE...) takes one,
 * so its command is written in the loop turn it arrived instead of after a
 * connect. A spare taken is replaced at once; spares that close (Redis's
 * `timeout`) are replaced at the next pick.
 *
 * A backend flagged `readonly` (every Redis Cluster node) sends READONLY
 * ahead of anything else on each connection it opens; its +OK is dropped.
 * Protocols: the shared connections above speak RESP2. RESP3 clients' requests
 * go to a second pool of the same size (conns3, HELLO 3 queued first),
 * opened on demand by backend_pick_proto(b, 3); a dedicated connection for
 * a RESP3 client is switched with HELLO 3 the same way (spares stay RESP2
 * until taken). Replies are then Redis's own bytes for either protocol.
 *
 * Contract: backend_pick() returns a connection that is connected or
 * connecting, or NULL with the reason in b->err. backend_dedicated()
 * returns a connected spare or a connecting connection, owned by the caller
 * (freed by backend_server_free from its on_close, which the caller sets),
 * or NULL. Counters are for INFO.
 */
#ifndef REDSNANO_BACKENDS_BACKEND_H
#define REDSNANO_BACKENDS_BACKEND_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "backends/server.h"
#include "base/hist.h"

#define BACKEND_MAX_CONNS 64
#define BACKEND_MAX_SPARES 8
#define BACKEND_BACKOFF_MIN_MS 100
#define BACKEND_BACKOFF_MAX_MS 3200
#define BACKEND_DEMAND_BACKOFF_MAX_MS 100 /* longest wait between reconnects a request asks for */

enum backend_role { BACKEND_PRIMARY = 0, BACKEND_REPLICA };

enum read_policy {
    READ_PRIMARY = 0,            /* all reads to the primary */
    READ_REPLICA,                /* replicas only; the primary if none is healthy */
    READ_PREFER_REPLICA,         /* replicas when healthy, else the primary (default) */
    READ_NEAREST,                /* lowest measured latency, primary included */
    READ_ROUND_ROBIN,            /* every healthy backend in turn, primary included */
};

/* What the backends layer needs from the configuration. */
struct backend_settings {
    int connections;             /* shared connections per backend (1..BACKEND_MAX_CONNS) */
    int spares;                  /* connected spares per backend for pinning clients (0..BACKEND_MAX_SPARES) */
    uint64_t connect_timeout_ms; /* to establish a connection */
    uint64_t timeout_ms;         /* a backend may take to answer; 0 = no limit */
    uint64_t health_interval_ms; /* between health checks (and cluster map refreshes) */
    uint64_t health_timeout_ms;  /* a health check may take */
    long long replica_max_lag;   /* bytes a replica may trail; 0 = not checked */
    enum read_policy read_policy;
    const struct handshake_settings *hs; /* credentials and TLS for every connection (NULL = none) */
};

struct backend {
    char name[280];                   /* "host:port" */
    struct sockaddr_storage addr;     /* resolved address */
    uv_loop_t *loop;                  /* the loop */
    enum backend_role role;           /* primary or replica */
    int nconns;                       /* shared connections wanted */
    struct server *conns[BACKEND_MAX_CONNS]; /* shared RESP2 connections; NULL = closed */
    struct server *conns3[BACKEND_MAX_CONNS]; /* shared RESP3 connections (opened on demand); NULL = closed */
    int nspares;                      /* connected spares wanted */
    int nspares_open;                 /* spares[] entries in use (connected or connecting) */
    struct server *spares[BACKEND_MAX_SPARES]; /* spare connections; NULL = none */
    uint64_t retry_at;                /* no spare refill before this loop time (ms) */
    uint64_t demand_at;               /* no on-demand reconnect before this loop time (ms) */
    uint64_t down_since;              /* loop ms of the first failure since it was last up; 0 = up */
    uint64_t down_since_wall;         /* the same, wall clock ms since the epoch (messages) */
    uint64_t backoff;                 /* current backoff, ms */
    uint64_t connect_timeout;         /* ms */
    uint64_t timeout;                 /* backend-timeout, ms */
    int next;                         /* round-robin start for picks */
    int healthy;                      /* passes health checks (1 until told otherwise) */
    uint32_t generation;              /* bumped when the address changes (health reconnects) */
    const struct handshake_settings *hs; /* identity and TLS of its connections (NULL = none) */
    char err[160];                    /* the last failure */
    /* figures for INFO */
    uint64_t requests;                /* requests routed here */
    uint64_t errors;                  /* requests answered with a local error */
    uint64_t connections_opened;      /* connections opened */
    double latency_us;                /* EWMA of health-check round trips (us) */
    struct hist latency;              /* requests through the proxy, read to answered (proxy/latency.c) */
    uint8_t readonly;                 /* send READONLY first on every connection (cluster nodes:
                                         a replica then serves reads of its primary's slots) */
};

/* Resolve host:port and prepare the pool (no connection yet) with the
 * connection counts and timeouts of set. Returns 0 or a negative error with
 * b->err set. */
int backend_init(struct backend *b, uv_loop_t *loop, const char *host, int port,
                 enum backend_role role, const struct backend_settings *set);

/* A shared connection for the next request, or NULL (see contract). */
struct server *backend_pick(struct backend *b);

/* The same for a client speaking proto (2 or 3): RESP3 requests get a
 * RESP3 connection. */
struct server *backend_pick_proto(struct backend *b, int proto);

/* Is s one of b's shared RESP2 connections (the ones backend_pick
 * returns, carrying many clients' requests; not a dedicated one)? */
int backend_is_shared(const struct backend *b, const struct server *s);

/* A new connection for one owner. on_close must call backend_server_free. */
struct server *backend_dedicated(struct backend *b);

/* The same, speaking proto (2 or 3; HELLO 3 is queued on it first). */
struct server *backend_dedicated_proto(struct backend *b, int proto);

/* Free a connection made by backend_dedicated (from its on_close). */
void backend_server_free(struct server *s);

/* Close every shared and spare connection (shutdown or role change). They leave
 * their slots at once: the pool is empty afterwards and the closing
 * connections no longer touch b. */
void backend_close_all(struct backend *b, const char *why);

/* Point b at next's address (next from backend_init; NULL = empty, unused
 * slot). b's shared connections must have been closed. Keeps b's counters,
 * bumps its generation. */
void backend_retarget(struct backend *b, const struct backend *next);

/* What is true of b now, for an error reply: "down since 18:02:03.456 UTC
 * (1.234 s), last error: unavailable (connection refused)", or its last
 * error, or "unavailable". Returns buf. */
const char *backend_why(const struct backend *b, char *buf, size_t len);

/* Shared connections currently connected. */
int backend_connected(const struct backend *b);

/* Requests waiting for a reply on the shared connections. */
unsigned backend_inflight(const struct backend *b);

#endif
