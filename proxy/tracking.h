/*
 * proxy/tracking.h — the proxy as its clients' tracking server
 * (client-side caching, CLIENT TRACKING).
 *
 *   client ── CLIENT TRACKING on ... ──> tracking_command (local answer)
 *   client ── read (default mode) ─────> tracking_seen: remember its keys
 *   client ── write ───────────────────> tracking_seen: invalidate its keys
 *                                        (NOLOOP: not to the writer)
 *   Redis ── `>2 invalidate [keys]|_` ──> one RESP3 connection of the proxy to
 *            the primary with CLIENT TRACKING ON BCAST (every change: writes
 *            from anywhere, expiry, eviction, FLUSHALL)
 *                    │
 *                    ▼
 *   invalidate(key) ─┬─> default-mode clients that read it (then forgotten)
 *                    └─> BCAST clients whose prefix matches
 *        each as a RESP3 `invalidate` push, or, for a REDIRECT to a RESP2
 *        client in pub/sub mode, a `__redis__:invalidate` message; the loss
 *        of the redirect client: `tracking-redir-broken` (RESP3).
 *
 * A BCAST client gets, for each Redis report, one message per prefix of its
 * own with the keys under it (as Redis batches them per event loop).
 * Semantics follow Redis 7.0's tracking.c: OPTIN/OPTOUT with CLIENT
 * CACHING (for the next command only), BCAST prefixes that must not
 * overlap, NOLOOP, a flush sends the null invalidation to every tracking
 * client. Keys are remembered when a read is dispatched (before Redis runs
 * it) and invalidated when a write is dispatched and again when Redis
 * reports it: a client can get an invalidation it did not need, never miss
 * one. The invalidation is written after every reply the client is owed
 * (client_push_buf), so it never overtakes the reply of a read it voids.
 * While a client tracks, its reads go to the primary and skip the L1 (a
 * replica or the L1 could hand it a value older than an invalidation it has
 * already seen). When the proxy's Redis connection is lost, every tracking
 * client gets the null invalidation (flush) at once and again when the
 * connection is back (changes in between were not seen). NOLOOP is exact
 * for default-mode clients; a BCAST NOLOOP client also hears of its own
 * writes through Redis's report (a needless invalidation, not a missed one).
 *
 * Contract: everything here runs on the loop thread. tracking_command()
 * answers CLIENT TRACKING / CACHING / TRACKINGINFO / GETREDIR and returns 1
 * (0 for other commands). tracking_seen() must be called once per framed
 * request while tracking_active(). tracking_client_gone() and
 * tracking_off() forget a client's state (close, RESET).
 */
#ifndef REDSNANO_PROXY_TRACKING_H
#define REDSNANO_PROXY_TRACKING_H

#include <stdint.h>

#include "base/buf.h"
#include "protocol/command.h"
#include "protocol/request.h"

struct client;

/* The tracking server's counters: field, REDSNANO STATS name, meaning. */
#define TRACKING_STATS(X)                                                                        \
    X(invalidations, "tracking_invalidations", "invalidation messages sent to clients")         \
    X(redir_broken, "tracking_redir_broken", "tracking-redir-broken messages sent")             \
    X(flushes, "tracking_flushes", "flushes (null invalidations) sent to every tracking client") \
    X(reports, "tracking_redis_reports", "invalidation reports received from Redis")            \
    X(redis_links, "tracking_redis_links", "times the proxy's tracking connection to Redis came up") \
    X(evictions, "tracking_table_evictions", "keys forgotten (with an invalidation) at the table limit")

struct tracking_stats {
#define TRACKING_STAT_FIELD(field, name, help) uint64_t field;
    TRACKING_STATS(TRACKING_STAT_FIELD)
#undef TRACKING_STAT_FIELD
};

#define TRACKING_MAX_KEYS 1000000      /* keys remembered at most (Redis's tracking-table-max-keys) */

/* Clients with tracking on: the per-request hook runs only when > 0. */
extern unsigned tracking_nclients;
static inline int tracking_active(void) { return tracking_nclients > 0; }

/* See the contract above. */
int tracking_command(struct client *c, const struct cmd *cmd, const struct reqmsg *m);

/* A request of c was framed (cmd may be NULL): remember the keys of a read,
 * invalidate those of a write, end a CLIENT CACHING yes/no. */
void tracking_seen(struct client *c, const struct cmd *cmd, const struct reqmsg *m);

/* CLIENT INFO: the redirect id (-1 when c does not track, 0 = none). */
long long tracking_redirect(const struct client *c);

/* CLIENT INFO: write c's tracking flag letters ('t', 'B', 'R') at out;
 * returns how many (at most 3). */
int tracking_client_flags(const struct client *c, char *out);

/* Turn c's tracking off (CLIENT TRACKING off, RESET). */
void tracking_off(struct client *c);

/* c is closing. */
void tracking_client_gone(struct client *c);

/* Once a second: reconnect to Redis if clients track and the link is down. */
void tracking_cron(void);

/* The primary moved: the link is redone (and clients flushed). */
void tracking_primary_changed(void);

/* Close the proxy's tracking connection (shutdown). */
void tracking_stop(void);

/* "# Tracking" section of REDSNANO STATS. */
void tracking_report(struct buf *text);

#endif
