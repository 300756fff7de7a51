/*
 * l1/l1.h — the in-proxy L1 cache of read replies, kept true.
 *
 *   router: cacheable read ──> l1_read ──┬─ HIT: entry bytes to the client
 *                                        ├─ WAIT: the client's srvreq joins a
 *                                        │  fill / hash check (single-flight)
 *                                        └─ BYPASS: forward as usual
 *   router: any write ──> l1_write_begin (drop keys, cancel fills, hold the
 *                         keys "write pending") ... reply ... l1_write_end
 *                         (cancels the shared reads sent meanwhile)
 *
 * A read of a key with a write in flight is not answered from, nor
 * stored in, the L1; readers that may wait share one plain read of it
 * (FILL_SHARED, l1/fill.c), joinable only until the key's next
 * l1_write_end: every joiner arrived after that read was sent and before
 * any write of the key was acknowledged, so the value it gets was current
 * at some instant between its request and its reply.
 *
 *   primary ── fill connections (l1-fill-connections): CLIENT TRACKING on
 *              REDIRECT <sub id> BCAST on the first (l1-tracking broadcast)
 *              or on each without BCAST (keys); fill: PTTL, read
 *              (pipelined, no MULTI: tracking + cancellation keep it true,
 *              l1/fill.c), on the client's own shared connection to the
 *              primary when it has requests there (broadcast only)
 *              EVALSHA check -> {1, PTTL} (still this SHA1) | {reply, PTTL}
 *           ── subscriber: SUBSCRIBE __redis__:invalidate -> drop keys
 *
 * Admission (TinyLFU, l1/sketch.h): every cacheable read is counted; a miss
 * is filled only when its call was seen before (and, when the L1 is full,
 * more often than the entry it would evict), or, while the L1 has room and
 * at least half of the recent reads were hits, at its first sighting;
 * otherwise it is forwarded as a plain read. Nil replies follow the same
 * rule.
 *
 * Truth, three ways: writes through the proxy drop keys before they are
 * forwarded and keep them uncacheable until answered; tracking reports
 * writes from elsewhere; hash checks ask the origin whether an entry is
 * still current. When invalidations may have been lost (either connection
 * dropped, the primary changed), every entry becomes unverified at once and
 * is revalidated by pipelined hash checks in batches, not flushed. In
 * `strict` mode every hit is a hash check.
 *
 * Cluster mode (l1/origin.c): one origin — fill connections, subscriber,
 * readiness — per primary node; an entry belongs to its key's slot owner.
 * A slot that gets another owner (moved, failed over) has its entries
 * unverified and revalidated against the new owner; losing one node's
 * tracking revalidates that node's entries only.
 *
 * Restarts (l1-snapshot-file, l1/snapshot.h): entries are written every
 * l1-snapshot-interval seconds and at a clean exit, and loaded at start
 * unverified: each is served only once a hash check (the batched
 * revalidation, or the reading client's own) finds it current.
 *
 * Contract: everything here is a no-op / BYPASS when l1-maxmemory is 0.
 * A srvreq given to l1_wait gets exactly one on_reply, like a server's.
 */
#ifndef REDSNANO_L1_L1_H
#define REDSNANO_L1_L1_H

#include <stddef.h>
#include <stdint.h>

#include "backends/server.h"
#include "base/buf.h"
#include "protocol/command.h"
#include "protocol/request.h"

struct topology;

enum l1_result { L1_BYPASS = 0, L1_HIT, L1_WAIT };

enum l1_mode { L1_TRACKING = 0, L1_STRICT };

/* How the origin reports changes (l1-tracking): every write of every key
 * (BCAST: no per-key table in Redis, a fill needs no tracking connection)
 * or the writes of keys the fill connections read (Redis's per-key table). */
enum l1_tracking { L1_TRACK_BROADCAST = 0, L1_TRACK_KEYS };

/* What the L1 needs from the configuration. */
struct l1_settings {
    long long maxmemory;              /* bytes; 0 = L1 off */
    enum l1_mode mode;                /* tracking | strict */
    uint64_t max_ttl_ms;              /* an entry lives at most this long */
    const char *commands;             /* l1-commands: space separated names, NULL = "GET" */
    int serve_stale;                  /* serve entries while the origin is unreachable */
    uint64_t revalidate_after_ms;     /* background revalidation age; 0 = never */
    int fill_connections;             /* tracking fill connections (read at start) */
    enum l1_tracking tracking;        /* broadcast | keys (read at start) */
    int admission;                    /* TinyLFU admission on misses */
    int ttl_jitter;                   /* percent an entry's lifetime is shortened by, at random */
    double audit_rate;                /* fraction of hits hash-checked in the background */
    const char *snapshot_file;        /* l1-snapshot-file: entries kept across restarts; NULL/"" = none */
    int snapshot_interval_s;          /* seconds between snapshots (0 = only at a clean exit) */
};

/* The L1's counters, declared once: name, meaning (REDSNANO L1, metrics). */
#define L1_STATS(X)                                                                      \
    X(hits, "reads served from the L1")                                                  \
    X(misses, "cacheable reads not in the L1 (or not servable)")                        \
    X(fills, "fill requests sent")                                                       \
    X(coalesced, "misses that waited on another client's fill")                          \
    X(bypass, "cacheable reads forwarded (write pending, L1 not ready)")                 \
    X(bypass_pending, "of those, forwarded because a write to the key was in flight")   \
    X(shared_reads, "plain reads sent for a key with a write in flight, shared by its readers") \
    X(shared_joined, "reads of a key with a write in flight that joined such a shared read") \
    X(checks, "hash checks sent")                                                        \
    X(fills_cancelled, "fills whose key was invalidated before the reply")               \
    X(inv_proxy_write, "entries dropped by a write through the proxy")                   \
    X(inv_tracking, "entries dropped by a tracking invalidation")                        \
    X(inv_flush, "entries dropped by a flush (FLUSHALL, SWAPDB, script, null message)")  \
    X(inv_hash_mismatch, "entries dropped because a hash check found another value")     \
    X(inv_expiry, "entries dropped as expired")                                          \
    X(reval_unchanged, "revalidations that found the entry unchanged")                   \
    X(reval_changed, "revalidations that replaced the entry")                            \
    X(reval_missing, "revalidations that found the key gone")                            \
    X(stale_served, "entries served unverified while the origin was unreachable")        \
    X(tracking_resets, "times the invalidation channel was lost")                       \
    X(admission_rejected, "misses forwarded as plain reads: not seen often enough")    \
    X(inv_pattern, "entries dropped by REDSNANO L1 INVALIDATE pattern")                 \
    X(audit_checks, "hits hash-checked in the background (l1-audit-rate)")            \
    X(audit_stale, "audited hits the origin no longer held")                             \
    X(mget, "MGETs answered in whole or in part from the L1 (hits, misses: per key)")  \
    X(mget_asked, "MGET keys the L1 did not hold, asked from Redis as one MGET")         \
    X(snapshot_loaded, "entries loaded from l1-snapshot-file at start (served after a hash check)") \
    X(snapshot_expired, "snapshot records past their expiry at start, not loaded")      \
    X(snapshot_saves, "snapshots written to l1-snapshot-file")                           \
    X(snapshot_errors, "snapshots that could not be read or written (logged)")              \
    X(reval_slot_moved, "entries unverified because their slot's primary changed (cluster)") \
    X(redirected, "fills and hash checks answered -MOVED/-ASK (nothing stored)")

struct l1_stats {
#define L1_STAT_FIELD(name, help) uint64_t name;
    L1_STATS(L1_STAT_FIELD)
#undef L1_STAT_FIELD
};

/* Start the L1 on t with these settings (nothing when set->maxmemory is
 * 0): static mode on t's primary, cluster mode on every primary node of the
 * slot map (learnt through a map listener); the fill and subscriber
 * connections open on the next tick; a primary change (static: topology
 * listener; cluster: a slot's new owner) revalidates. 0 or a negative
 * errno. */
int l1_start(struct topology *t, const struct l1_settings *set);

/* INFO-style lines (REDSNANO L1): state, sizes, every counter. */
void l1_report(struct buf *text);

/* The settings given to l1_start changed in place (live reload): a new
 * l1-commands list (entries are dropped when it changed) and a new budget
 * (LRU entries evicted to fit) are taken; mode, ttl, serve-stale and
 * revalidate-after are read where used. Turning the L1 on or off is not
 * live: a no-op when it was started off. */
void l1_settings_changed(void);

/* Close everything (shutdown); writes the snapshot first when configured. */
void l1_stop(void);

/* Is the L1 on? */
int l1_on(void);

/* The id of a cacheable read (in l1-commands, right arity), or 0. */
uint8_t l1_command_id(const struct reqmsg *m);

/* Answer a cacheable read. HIT: *reply, *len point at bytes to copy now.
 * WAIT: call l1_wait(*pending, sr) with the client's waiter at once.
 * may_wait = 0 turns would-be WAITs into BYPASS (the client has requests in
 * flight elsewhere and must keep its order). cur: the connection to the
 * origin the client already has requests on (NULL: none), one for which
 * l1_may_read_on() holds: a new fill goes there, and a fill in flight on
 * another one is not joined (BYPASS). A hash check runs on the L1's own
 * connections only (BYPASS when cur is another). */
int l1_read(uint8_t id, const struct reqmsg *m, int may_wait, struct server *cur, const char **reply,
            size_t *len, void **pending);

/* MGET key...: the keys the L1 holds (GET entries, verified) are answered
 * from it; the others go to Redis as one MGET on a fill connection
 * (admitted ones with a PTTL each, to be stored), and the elements are
 * merged in request order. Same results and rules as l1_read (HIT: *reply
 * is the whole array, valid until the next L1 call; WAIT: l1_wait). BYPASS
 * when a key has a write pending, GET is not cached, in strict mode, or
 * when no key is held nor admitted (the MGET is forwarded as usual). A nil
 * element is never stored (MGET answers nil for a key of another type,
 * where GET answers WRONGTYPE). */
int l1_mget(const struct reqmsg *m, int may_wait, struct server *cur, const char **reply, size_t *len,
            void **pending);

/* For an MGET l1_mget did not take (cluster: its missing keys span slots;
 * proxy/fanout.c splits it): el[i], ellen[i] = the reply GET of key i + 1
 * would get from the L1 now, el[i] = NULL for a key it does not hold.
 * Returns how many it holds: 0 (every el[i] NULL) when it may answer none
 * now (not ready, strict mode, GET not cached, a key with a write in flight
 * through the proxy). Takes the pending invalidations first, as a hit
 * does; the pointers are valid until the next L1 call; counts nothing
 * (l1_mget_served does, once the caller uses them). */
size_t l1_mget_held(const struct reqmsg *m, const char **el, size_t *ellen);

/* An MGET had this many of its keys answered from l1_mget_held. */
void l1_mget_served(size_t held);

/* Warm the memory GETs of these n keys will touch (store buckets and
 * entries, sketch counters): the proxy calls it with the GETs a client's
 * read brought, before serving any, so their cache misses overlap instead
 * of queueing one after another. Changes nothing; no-op unless the L1 is
 * on and caches GET. */
void l1_prefetch(const char *const *keys, const size_t *klens, int n);

/* May l1_read send its fill on s (the client's connection to the key's
 * origin)? Its own fill connections always; with l1-tracking broadcast,
 * a shared RESP2 connection of the origin's primary as well. l1_mget only
 * takes the L1's own (l1_owns_server). */
int l1_may_read_on(const struct server *s);

/* Attach a waiter to the fill/check returned by l1_read or l1_mget. */
void l1_wait(void *pending, struct srvreq *sr);

/* The connection a pending fill travels on (the client's "in flight"
 * server while it waits). */
struct server *l1_pending_server(const void *pending);

/* Is s one of the L1's fill connections? */
int l1_owns_server(const struct server *s);

/* REDSNANO L1 INVALIDATE pattern: drop every entry whose Redis key matches
 * the glob (Redis's rules) and cancel such fills. Returns entries dropped. */
size_t l1_invalidate(const char *pattern, size_t plen);

/* A write is about to be forwarded: invalidate what it touches. Returns a
 * token to hand to l1_write_end when its reply arrives (NULL: nothing held). */
void *l1_write_begin(const struct cmd *cmd, const struct reqmsg *m);
void l1_write_end(void *token);

/* Chain two tokens into one (a transaction holds its writes until EXEC). */
void *l1_token_join(void *a, void *b);

/* Counters (for REDSNANO L1 / STATS). */
const struct l1_stats *l1_stats(void);

#endif
