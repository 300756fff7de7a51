/*
 * l1/internal.h — what the L1's files share (not for other layers).
 *
 *   l1.c ─ API: read, wait, report, start/stop, INVALIDATE
 *     ├── fill.c   fills and hash checks in flight (single-flight, cancel)
 *     ├── mget.c   MGET answered per key: held keys + one MGET of the others
 *     ├── check.c  the hash-check script, revalidation, the audit
 *     ├── origin.c one origin per primary node (cluster: slot -> origin)
 *     ├── track.c  an origin's subscriber and tracking fill connections
 *     ├── holds.c  keys with writes in flight through the proxy
 *     ├── sketch.c TinyLFU admission counts
 *     └── store.c  entries, LRU, budget
 *
 * Contract: one L1 per process (l1_state), started by l1_start with the
 * topology and a pointer to the settings, which are read through that
 * pointer every time (a reload may change them).
 */
#ifndef REDSNANO_L1_INTERNAL_H
#define REDSNANO_L1_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "backends/server.h"
#include "base/buf.h"
#include "l1/l1.h"
#include "l1/sketch.h"
#include "l1/store.h"

#define L1_MAX_FILL_CONNS 16            /* most tracking fill connections (l1-fill-connections) */
#define L1_FILL_BUCKETS 1024            /* fills-in-flight hash size */
#define L1_PEND_BUCKETS 1024            /* write-pending keys hash size */
#define L1_REVAL_BATCH 256              /* hash checks in flight while revalidating */
#define L1_MAX_ORIGINS 256              /* primary nodes with their own tracking (CLUSTER_MAX_NODES) */
#define L1_MAX_REDIRECTS 3              /* -MOVED/-ASK hops a fill follows for its waiters */

#define L1_CMD_GET 1                    /* l1_cmds index of GET (an MGET's elements are GET replies) */

/* Commands the L1 can hold, by id (index; 0 = none). */
struct l1_cmd {
    const char *name;                   /* upper case, as in l1-commands */
    int min_argc, max_argc;             /* accepted argc (0 = no upper bound) */
};
extern const struct l1_cmd l1_cmds[];
extern const size_t l1_ncmds;

/* What a fill or check is for. */
enum fill_kind {
    FILL_READ = 0,                      /* a miss: PTTL then the read, stored */
    FILL_CHECK,                         /* a client's hash check (strict, unverified) */
    FILL_REVAL,                         /* a background revalidation */
    FILL_AUDIT,                         /* an audit of a hit already served */
    FILL_MGET,                          /* an MGET of the keys the L1 lacks (mget.c): the
                                           client waits on it; not in the fills hash */
    FILL_MGET_KEY,                      /* one key of that MGET to store: PTTL only, in the
                                           fills hash for cancellation, never joined */
    FILL_SHARED,                        /* a plain read of a key with a write in flight, shared
                                           by its readers until the key's next write_end;
                                           never stored, no PTTL */
};

struct mget;

/* A fill or hash check in flight, shared by every client that waits on it. */
struct fill {
    struct srvreq sr;                   /* the completing request (the read or EVALSHA) */
    struct srvreq pre;                  /* a fill's PTTL, sent first */
    struct fill *hnext;                 /* fills hash chain */
    struct srvreq *waiters;             /* clients waiting (linked by next) */
    struct srvreq *waiters_tail;        /* last waiter */
    struct server *conn;                /* the fill connection it travels on */
    struct l1_origin *origin;           /* the origin conn belongs to */
    long long pttl;                     /* a fill's PTTL reply (-3 = not yet / failed) */
    uint8_t cmd;                        /* l1_cmds id */
    uint8_t kind;                       /* enum fill_kind */
    uint8_t check;                      /* a hash check (entry existed), not a fill */
    uint8_t cancelled;                  /* key invalidated meanwhile: deliver, don't store */
    uint8_t hashed;                     /* in the fills hash */
    uint8_t retried_eval;               /* resent as EVAL after NOSCRIPT */
    uint8_t redirects;                  /* -MOVED/-ASK hops followed (fill_redirect) */
    uint32_t h;                         /* hash of the key */
    size_t klen, alen;                  /* key and args lengths */
    char *data;                         /* key then args (in the fill's own block, after it) */
    struct mget *mget;                  /* FILL_MGET: its keys and held replies (mget.c) */
};

/* One tracking fill connection. */
struct track_conn {
    struct server *s;                   /* NULL when down */
    int up;                             /* tracking redirected and script loaded */
};

/* One origin: a primary node, its tracking and its keys' truth (origin.c,
 * track.c). Tracking is per node: a node reports only its own keys. */
struct l1_origin {
    struct backend *b;                  /* the primary node (lives as long as the process) */
    int index;                          /* place in L.origins */
    int retired;                        /* owns no slot now: closed, not reconnected */
    struct track_conn fills_c[L1_MAX_FILL_CONNS]; /* tracking fill connections */
    unsigned rr;                        /* round-robin cursor over fill connections */
    struct server *sub;                 /* invalidation subscriber */
    int ready;                          /* tracking established: its entries may be served */
    int sub_up;                         /* the subscriber's setup is complete */
    long long sub_id;                   /* CLIENT ID of the subscriber */
    uint64_t reconnect_at;              /* when to reconnect (0 = connected or connecting) */
    uint64_t backoff;                   /* reconnect delay */
    uint64_t drained;                   /* loop iteration whose pending invalidations were taken */
};

/* The L1's state. */
struct l1_state {
    int on;                             /* l1-maxmemory > 0 */
    unsigned cmdmask;                   /* ids enabled by l1-commands */
    struct l1store *store;              /* the entries */
    struct l1sketch *sketch;            /* admission counts */
    int nfill;                          /* fill connections per origin (at start) */
    struct l1_origin *origins[L1_MAX_ORIGINS]; /* static mode: [0], the primary; cluster: per node */
    int norigins;                       /* origins[] in use */
    int cluster;                        /* the topology is a cluster: entries' origin by slot */
    int map_dirty;                      /* the slot map changed since origin_sync */
    uint16_t *slot_origin;              /* cluster: origin index + 1 per slot (0 = none) */
    int ready;                          /* some origin is ready (revalidation may run) */
    uv_timer_t timer;                   /* reconnect + background work */
    int reval_inflight;                 /* revalidation checks outstanding */
    int reval_active;                   /* a revalidation pass is running */
    char check_sha[41];                 /* SHA1 of the check script */
    struct fill *fills[L1_FILL_BUCKETS];/* fills in flight */
    struct buf args;                    /* scratch: encoded args of a request */
    struct buf req;                     /* scratch: a request being built */
    struct l1_stats st;                 /* counters */
    uint32_t win_reads;                 /* admission window: cacheable reads (halved, l1.c) */
    uint32_t win_hits;                  /* admission window: of those, hits */
    uint64_t audit_max_age;             /* oldest stale entry an audit found (ms since fill) */
    uint64_t audit_last_age;            /* the last one's age */
    int stopping;                       /* l1_stop called */
    uint64_t snapshot_at;               /* loop ms of the next periodic snapshot (0 = none) */
};

extern struct l1_state L;               /* the one L1 */
extern struct topology *l1_topo;        /* where the primary is */
extern const struct l1_settings *l1_set; /* settings in force (read through, never copied) */

/* l1.c: helpers. */
uint32_t l1_hash_bytes(const char *p, size_t n);
uint64_t l1_now(void);
/* Append "<type><n>\r\n" ('*' an array, '$' a bulk string header). */
void l1_req_len(struct buf *b, char type, size_t n);
/* Append one bulk string. */
void l1_req_arg(struct buf *b, const char *p, size_t n);
uint64_t l1_expiry_for(long long pttl);
/* Is a missed call with sketch hash h worth a fill? (admission) */
int l1_admit(uint64_t h);
/* A hit was served: sample it for the audit (l1-audit-rate). */
void l1_hit_audit(struct l1entry *e);

/* fill.c */
struct fill *fill_find(uint8_t cmd, const char *key, size_t klen, const char *args, size_t alen);
/* Start a fill (sha NULL) or a hash check of the entry whose reply hashes
 * to sha, on connection conn (NULL: any). NULL when none can be sent. */
struct fill *fill_new(uint8_t cmd, const char *key, size_t klen, const char *args, size_t alen,
                      const uint8_t *sha, enum fill_kind kind, struct server *conn);
/* A fill that is not sent (FILL_MGET, FILL_MGET_KEY), on conn; a
 * FILL_MGET_KEY is put in the fills hash. NULL on out of memory. */
struct fill *fill_alloc(uint8_t cmd, const char *key, size_t klen, const char *args, size_t alen,
                        enum fill_kind kind, struct server *conn);
/* Send f's PTTL (its answer lands in f->pttl). */
void fill_send_pttl(struct fill *f);

/* How many arguments after the key a fill's call has (f->data holds them
 * length-prefixed after the key). */
int fill_nargs(const struct fill *f);

/* Append those arguments to b as RESP bulk strings. */
void fill_append_args(struct buf *b, const struct fill *f);
/* A read's reply for f: stored (fresh, not an error, TTL known, not
 * cancelled) replacing e, and delivered to f's waiters. */
void fill_read_done(struct fill *f, struct l1entry *e, const char *val, size_t vlen);
/* Give every waiter of f this reply. */
void fill_deliver(struct fill *f, const char *reply, size_t len, int failed);
/* The completion of every fill's sr (an MGET's too). */
void fill_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed);
/* Unhash and free f (and an MGET's keys). */
void fill_free(struct fill *f);
void fill_cancel_key(const char *key, size_t klen);
void fill_cancel_all(void);
/* Cancel the fills whose key matches a glob; returns how many. */
size_t fill_cancel_matching(const char *pat, size_t plen);
/* Cancel the fills of keys for which pred(key, klen, ctx) holds. */
void fill_cancel_if(int (*pred)(const char *key, size_t klen, void *ctx), void *ctx);
/* A -MOVED/-ASK reply to f: resend f's read (never stored) to the node
 * named, on its origin's fill connection; 1 when resent. */
int fill_redirect(struct fill *f, const char *reply, size_t len);
/* Is this reply a cluster redirection (-MOVED / -ASK)? */
int fill_is_redirect(const char *reply, size_t len);

/* mget.c */
/* The reply to a FILL_MGET: merge, store, deliver, free f. */
void mget_reply(struct fill *f, const char *reply, size_t len, int failed);
/* Free an MGET's state and its keys' fills. */
void mget_free(struct mget *g);
/* Send a FILL_MGET's MGET again on f->conn (fill_redirect): its keys'
 * fills are cancelled (nothing stored). */
void mget_resend(struct fill *f);
/* Were the MGET's bytes kept (cluster mode, memory permitting)? */
int mget_resendable(const struct fill *f);

/* check.c */
extern const char check_script[];
void check_send(struct fill *f, const uint8_t *sha);
/* Parse the script's reply: 1 value (*rp, *rlen), 2 unchanged, 0 other. */
int check_parse(const char *p, size_t len, const char **rp, size_t *rlen, long long *pttl);
void check_reval_one(struct l1entry *e, void *ctx);
void check_reval_next(void);
void check_audit(struct l1entry *e);
/* A check finished: account revalidation and audit outcomes (changed: the
 * origin holds another value; missing: the key is gone). */
void check_done(struct fill *f, struct l1entry *e, int changed, int missing);

/* origin.c */
/* Learn the origins from the topology (static: its primary; cluster: the
 * slot map, and a map listener for its changes). 0 or -ENOMEM. */
int origin_start(void);
/* The origin of a key's entries: static mode the primary's; cluster mode
 * its slot's primary as of the last origin_sync, NULL while the slot has
 * no owner. */
struct l1_origin *origin_for_key(const char *key, size_t klen);
/* May entries of o be served / checked now? (NULL: no) */
static inline int origin_ready(const struct l1_origin *o)
{
    return o != NULL && o->ready;
}
/* Apply the slot map's changes now (cluster): origins for new primaries,
 * retire the ones owning nothing, and every entry of a slot whose owner
 * changed becomes unverified (its fills cancelled) and is revalidated
 * against the new owner. */
void origin_sync(void);
/* Apply the slot map's changes, if any, at an entry point (l1_read,
 * l1_mget, the tick): never inside a store walk or a reply. */
static inline void origin_sync_pending(void)
{
    if (L.map_dirty)
        origin_sync();
}
/* Close the origins owning no slot since the last origin_sync, reconnect
 * the ones owning slots again (the tick). */
void origin_retire_idle(void);
/* o's entries become unverified (its tracking was lost): the unverified
 * walk visits them again once o is ready. Static mode: every entry. */
void origin_unverify(struct l1_origin *o);
/* Recount L.ready (some origin ready). */
void origin_ready_changed(void);
/* Is the key's entry o's? */
int origin_owns_key(const struct l1_origin *o, const char *key, size_t klen);
/* Do the two keys hash to one slot (always, in static mode)? */
int origin_same_slot(const char *a, size_t alen, const char *b, size_t blen);
/* The origin of backend b, NULL if none. */
struct l1_origin *origin_of_backend(const struct backend *b);
/* REDSNANO L1's per-origin lines. */
void origin_report(struct buf *t);

/* track.c */
void track_start(struct l1_origin *o);
void track_stop(struct l1_origin *o);
void track_cron(struct l1_origin *o);
void track_unready(struct l1_origin *o, const char *why);
/* Take o's pending invalidations (once per loop iteration) and notice its
 * lost fill connections; 1 when it read the subscriber (entries may be
 * gone). 0 for NULL. */
int track_drain(struct l1_origin *o);
/* The same for every ready origin (an MGET's keys may be anywhere). */
int track_drain_all(void);
/* A connection of o for a new fill: want if it is an up fill connection
 * of o or one o's fills may share (track_shares), else o's next up fill
 * connection; NULL when none. */
struct server *track_pick(struct l1_origin *o, struct server *want);
/* Is s a fill connection of any origin? */
int track_owns(const struct server *s);
/* May a fill of o be read on s though it is not o's: broadcast tracking
 * (a fill needs no tracking connection) and s is a shared RESP2
 * connection of o's primary (the client's own, so its order is kept)? */
int track_shares(const struct l1_origin *o, const struct server *s);
/* track_shares for any origin. */
int track_shares_any(const struct server *s);
/* The origin primary changed (static mode) or o stops owning slots:
 * close its connections; reconnect soon unless retired. */
void track_reset(struct l1_origin *o, const char *why);

/* holds.c */
#define HOLDS_KEY 1                     /* holds_pending: this key has a write in flight */
#define HOLDS_ALL 2                     /* holds_pending: a write that may touch any key is */
/* Has the key a write in flight through the proxy? 0, HOLDS_KEY or HOLDS_ALL. */
int holds_pending(const char *key, size_t klen);

#endif
