/*
 * proxy/latency.h — request latency per command class and per backend,
 * and the slow log.
 *
 *   client_read: read time ──> struct req (start_ns, lclass)
 *   req_on_reply / L1 hit ──> latency_done ──┬─> class histogram (base/hist)
 *                                            ├─> the backend's histogram
 *                                            └─> slow? ─> slow log entry
 *   REDSNANO LATENCY [RESET]            ──> latency_command (p50/p99/p99.9)
 *   REDSNANO SLOWLOG GET [n]|LEN|RESET  ──> slowlog_command (Redis's shapes)
 *   /metrics                            ──> latency_class_hist / backend->latency
 *
 * A request's latency runs from the read that brought its bytes (one clock
 * read per socket read, shared by the requests pipelined in it) to the
 * moment its reply is complete in the proxy: waits behind a stall, the
 * queue to the backend and the backend's own time are all in it. Blocking commands
 * (BLPOP...) and push streams are not measured.
 *
 * Contract: nothing here allocates on the measuring path except a slow log
 * entry (bounded by slowlog-max-len; the oldest is dropped). The slow log
 * keeps what Redis's does: id, unix time, µs, up to SLOWLOG_MAX_ARGC
 * arguments of at most SLOWLOG_MAX_STRING bytes each (with "... (N more
 * bytes)" / "... (N more arguments)"), the client's address and "" as name.
 */
#ifndef REDSNANO_PROXY_LATENCY_H
#define REDSNANO_PROXY_LATENCY_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/hist.h"

#define SLOWLOG_MAX_ARGC 32             /* arguments kept per entry (as Redis) */
#define SLOWLOG_MAX_STRING 128          /* bytes kept per argument (as Redis) */
#define SLOWLOG_KEEP 512                /* request bytes kept while in flight for the slow log */

struct backend;
struct client;

/* The command classes measured, declared once: name, meaning. */
#define LATENCY_CLASSES(X)                                                               \
    X(read, "reads forwarded to a backend")                                              \
    X(write, "writes and unknown commands forwarded to the primary")                    \
    X(l1, "reads answered by the L1 (hits, and waits on a fill or hash check)")         \
    X(pinned, "commands on a client's own connection (MULTI/EXEC, WATCH, SELECT n...)")

enum latency_class {
#define LATENCY_CLASS_ENUM(name, help) LAT_##name,
    LATENCY_CLASSES(LATENCY_CLASS_ENUM)
#undef LATENCY_CLASS_ENUM
    LAT_NCLASSES,
    LAT_NONE = LAT_NCLASSES             /* not measured (blocking commands) */
};

/* Monotonic time for a request's start, ns. */
uint64_t latency_now_ns(void);

/* Is the slow log on (slowlog-log-slower-than >= 0)? Then a forwarded
 * request keeps its first SLOWLOG_KEEP bytes until answered. */
int slowlog_on(void);

/* A request of class k, framed at start_ns, is answered now. b is the
 * backend that answered it (NULL: none). req/len: its bytes as kept (a
 * prefix; NULL when none): a slow request enters the slow log. */
void latency_done(enum latency_class k, struct backend *b, uint64_t start_ns, const struct client *c,
                  const char *req, size_t len);

/* The class's histogram (k < LAT_NCLASSES) and its name. */
const struct hist *latency_class_hist(enum latency_class k);
const char *latency_class_name(enum latency_class k);
const char *latency_class_help(enum latency_class k);

/* REDSNANO LATENCY [RESET] and REDSNANO SLOWLOG GET [n] | LEN | RESET:
 * append one reply to b and return 1, or 0 when argv[0] is neither. argv
 * starts at the subcommand (LATENCY / SLOWLOG). */
int latency_command(struct buf *b, int argc, const char **argv, const size_t *argvlen);

/* Free the slow log (shutdown). */
void slowlog_free(void);

#endif
