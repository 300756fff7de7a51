/*
 * l1/l1.h — the in-proxy L1 cache of read replies, kept true.
 *
 *   router: cacheable read ──> l1_read ──┬─ HIT: entry bytes to the client
 *                                        ├─ WAIT: the client's srvreq joins a
 *                                        │  fill / hash check (single-flight)
 *                                        └─ BYPASS: forward as usual
 *   router: any write ──> l1_write_begin (drop keys, cancel fills, hold the
 *                         keys "write pending") ... reply ... l1_write_end
 *
 *   primary ── fill connection: CLIENT TRACKING on REDIRECT <sub id>;
 *              fill: MULTI, read, PTTL, EXEC -> [reply, PTTL] (SHA1 here)
 *              EVALSHA check -> {1, PTTL} (still this SHA1) | {reply, PTTL}
 *           ── subscriber: SUBSCRIBE __redis__:invalidate -> drop keys
 *
 * Truth, three ways: writes through the proxy drop keys before they are
 * forwarded and keep them uncacheable until answered; tracking reports
 * writes from elsewhere; hash checks ask the origin whether an entry is
 * still current. When invalidations may have been lost (either connection
 * dropped, the primary changed), every entry becomes unverified at once and
 * is revalidated by pipelined hash checks in batches, not flushed. In
 * `strict` mode every hit is a hash check.
 *
 * Contract: everything here is a no-op / BYPASS when l1-maxmemory is 0.
 * A srvreq given to l1_wait gets exactly one on_reply, like a server's.
 */
#ifndef REDSNANO_L1_L1_H
#define REDSNANO_L1_L1_H

#include <stddef.h>
#include <stdint.h>

#include "backends/server.h"
#include "protocol/command.h"
#include "protocol/request.h"

enum l1_result { L1_BYPASS = 0, L1_HIT, L1_WAIT };

struct l1_stats {
    uint64_t hits;                    /* served from the L1 */
    uint64_t misses;                  /* not in the L1 (or not servable) */
    uint64_t fills;                   /* fill requests sent */
    uint64_t coalesced;               /* misses that waited on another's fill */
    uint64_t bypass;                  /* cacheable reads forwarded (write pending, not ready...) */
    uint64_t inv_proxy_write;         /* entries dropped: a write through the proxy */
    uint64_t inv_tracking;            /* ... a tracking invalidation */
    uint64_t inv_flush;               /* ... a flush (FLUSHALL, SWAPDB, undeclared script, null message) */
    uint64_t inv_hash_mismatch;       /* ... a hash check found another value */
    uint64_t inv_expiry;              /* ... expired */
    uint64_t fills_cancelled;         /* fills whose key was invalidated before the reply */
    uint64_t checks;                  /* hash checks sent */
    uint64_t reval_unchanged;         /* revalidated: unchanged */
    uint64_t reval_changed;           /* revalidated: changed (replaced) */
    uint64_t reval_missing;           /* revalidated: key gone (dropped) */
    uint64_t stale_served;            /* served unverified while the origin was unreachable */
    uint64_t tracking_resets;         /* times the invalidation channel was lost */
};

/* Open the fill and subscriber connections (when l1-maxmemory > 0). */
int l1_start(void);

/* Close everything (shutdown). */
void l1_stop(void);

/* Is the L1 on? */
int l1_on(void);

/* The id of a cacheable read (in l1-commands, right arity), or 0. */
uint8_t l1_command_id(const struct reqmsg *m);

/* Answer a cacheable read. HIT: *reply, *len point at bytes to copy now.
 * WAIT: call l1_wait(*pending, sr) with the client's waiter at once.
 * may_wait = 0 turns would-be WAITs into BYPASS (the client has requests in
 * flight elsewhere and must keep its order). */
int l1_read(uint8_t id, const struct reqmsg *m, int may_wait, const char **reply, size_t *len,
            void **pending);

/* Attach a waiter to the fill/check returned by l1_read. */
void l1_wait(void *pending, struct srvreq *sr);

/* The connection fills travel on (the client's "in flight" server while it waits). */
struct server *l1_server(void);

/* A write is about to be forwarded: invalidate what it touches. Returns a
 * token to hand to l1_write_end when its reply arrives (NULL: nothing held). */
void *l1_write_begin(const struct cmd *cmd, const struct reqmsg *m);
void l1_write_end(void *token);

/* Chain two tokens into one (a transaction holds its writes until EXEC). */
void *l1_token_join(void *a, void *b);

/* Counters (for REDSNANO L1 / STATS). */
const struct l1_stats *l1_stats(void);

#endif
