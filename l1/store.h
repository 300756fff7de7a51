/*
 * l1/store.h — the L1's memory: entries, lookup, LRU, budget.
 *
 *   l1/l1.c (fills, tracking, validation) ──> l1store_get / put / drop_key
 *                                                   │
 *                 hash index on the Redis key ──────┤ every variant of one key
 *                 (GET k, HGET k f, LRANGE k 0 9)   │ sits in one bucket chain,
 *                 LRU list, byte budget ────────────┘ so a key drops in one walk
 *
 * An entry caches the reply of one read command call: (command id, Redis
 * key, the arguments after the key) -> the reply as RESP bytes ready to
 * write, SHA1 of those bytes, and an expiry. Pure data: no I/O, no clock
 * (callers pass times), no Redis knowledge.
 *
 * Validity: the store has an epoch. An entry is verified when its epoch
 * equals the store's. l1store_unverify_all() bumps the epoch (O(1)): every
 * entry becomes unverified at once; l1store_verify() re-stamps one entry.
 *
 * Contract:
 * - Memory: every byte an entry costs (struct, key, args, reply, allocator
 *   overhead via malloc_usable_size, its share of the hash table) counts
 *   towards l1store_bytes(). l1store_put() evicts least recently used
 *   entries until the new entry fits; an entry bigger than the whole budget
 *   is not stored (NULL).
 * - Pointers to entries stay valid until that entry is dropped, replaced,
 *   evicted or the store is flushed/freed; l1store_put() may evict others.
 * - Counters in struct l1store_stats are maintained by the store for
 *   evictions; the caller counts the rest.
 */
#ifndef REDSNANO_L1_STORE_H
#define REDSNANO_L1_STORE_H

#include <stddef.h>
#include <stdint.h>

struct l1store;
struct l1entry;

/* Read one entry's fields (pointers valid while the entry lives). */
const char *l1entry_key(const struct l1entry *e, size_t *len);
const char *l1entry_args(const struct l1entry *e, size_t *len);   /* args after the key, encoded by the caller */
const char *l1entry_reply(const struct l1entry *e, size_t *len);  /* RESP bytes */
const uint8_t *l1entry_sha1(const struct l1entry *e);             /* 20 bytes: SHA1 of the reply,
                                                                     computed at each call into a
                                                                     buffer the next call reuses */
uint8_t l1entry_cmd(const struct l1entry *e);
/* A byte the caller may keep in an entry (0 when put; the store never
 * reads it). */
uint8_t *l1entry_mark(struct l1entry *e);
uint64_t l1entry_expires(const struct l1entry *e);                /* caller's clock, ms */
uint64_t l1entry_filled(const struct l1entry *e);                 /* when put/refreshed, ms */

/* Create a store with this budget in bytes (> 0). NULL on out of memory. */
struct l1store *l1store_new(size_t maxmemory);
void l1store_free(struct l1store *s);

/* Find the entry for (cmd, key, args). Marks it most recently used (moved
 * to the head unless it is among the newest count/8 already: the LRU order
 * is approximate to that fraction). NULL if absent. */
struct l1entry *l1store_get(struct l1store *s, uint8_t cmd, const char *key, size_t klen,
                            const char *args, size_t alen);

/* Warm the memory lookups of these n keys will touch: their buckets
 * first, then the first entry of each chain (its first three cache lines:
 * header, key and the start of a reply), so that the cache misses of a
 * batch overlap. Changes nothing. */
void l1store_prefetch(const struct l1store *s, const char *const *keys, const size_t *klens, int n);

/* Store (or replace) the entry for (cmd, key, args), verified, copying
 * every byte. Returns it, or NULL when it cannot fit or memory is short
 * (any previous entry for the same id is dropped in that case). */
struct l1entry *l1store_put(struct l1store *s, uint8_t cmd, const char *key, size_t klen,
                            const char *args, size_t alen, const char *reply, size_t rlen,
                            uint64_t now, uint64_t expires);

/* Refresh an entry in place (unchanged value): new expiry, verified now. */
void l1store_verify(struct l1store *s, struct l1entry *e, uint64_t now, uint64_t expires);

/* Is the entry verified in the current epoch? */
int l1store_verified(const struct l1store *s, const struct l1entry *e);

/* Every entry becomes unverified (epoch bump, O(1)). */
void l1store_unverify_all(struct l1store *s);

/* The entries for which pred returns non-zero become unverified (and
 * unvisited: the unverified walk restarts at the LRU tail and visits them
 * again). pred must not change the store. Returns how many matched. O(entries):
 * for rare events (one origin of several lost, a slot moved). */
size_t l1store_unverify_if(struct l1store *s, int (*pred)(const struct l1entry *e, void *ctx), void *ctx);

/* Drop one entry. */
void l1store_drop(struct l1store *s, struct l1entry *e);

/* Drop every entry of this Redis key (any command, any args). Returns how many. */
size_t l1store_drop_key(struct l1store *s, const char *key, size_t klen);

/* Drop everything. Returns how many. */
size_t l1store_flush(struct l1store *s);

/* Walk entries that are unverified, oldest use first, calling fn for up to
 * max of them; fn may drop the entry it is given (not others). The walk
 * remembers where it stopped: the next call continues there, and
 * l1store_unverify_all() restarts it. Returns how many were visited;
 * 0 means none is left. */
size_t l1store_walk_unverified(struct l1store *s, size_t max,
                               void (*fn)(struct l1entry *e, void *ctx), void *ctx);

/* Walk up to max verified entries filled before `before` (ms), oldest use
 * first, same rules as above (background revalidation). */
size_t l1store_walk_older(struct l1store *s, uint64_t before, size_t max,
                          void (*fn)(struct l1entry *e, void *ctx), void *ctx);

/* Drop every entry for which pred returns non-zero (pred must not change
 * the store). Returns how many. O(entries). */
size_t l1store_drop_if(struct l1store *s, int (*pred)(const struct l1entry *e, void *ctx), void *ctx);

/* Call fn for every entry, least recently used first (fn must not change
 * the store): putting them back in that order rebuilds the LRU order.
 * Stops early when fn returns non-zero; returns that value, else 0. */
int l1store_each(const struct l1store *s, int (*fn)(const struct l1entry *e, void *ctx), void *ctx);

/* The least recently used entry (the next eviction), or NULL when empty. */
struct l1entry *l1store_oldest(const struct l1store *s);

size_t l1store_maxmemory(const struct l1store *s); /* the budget given to l1store_new */

/* Change the budget (live reload); evicts from the LRU tail until the
 * store fits. */
void l1store_set_max(struct l1store *s, size_t maxmemory);

size_t l1store_count(const struct l1store *s);
size_t l1store_bytes(const struct l1store *s);     /* every byte counted, see contract */
size_t l1store_payload(const struct l1store *s);   /* key + args + reply bytes only */
uint64_t l1store_evictions(const struct l1store *s);

#endif
