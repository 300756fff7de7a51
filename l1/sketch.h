/*
 * l1/sketch.h — TinyLFU admission: how often has a call been read lately?
 *
 *   l1_read (every cacheable read) ──> l1sketch_add(h)
 *   miss ──> l1sketch_estimate(h) >= 2 (or room and the L1 pays, l1.c)
 *            and, when the store is full, > estimate(LRU victim) ──> fill;
 *            else plain pass-through read
 *
 * A count-min sketch (L1SKETCH_DEPTH rows of saturating 4-bit-range
 * counters, conservative update) behind a doorkeeper (a Bloom filter): a
 * call's first sighting only sets its doorkeeper bits, so one-hit calls
 * never reach the counters. After 10 x capacity additions every counter is
 * halved and the doorkeeper cleared (aging), as Caffeine's TinyLFU does;
 * 16 counters per power-of-two unit of capacity, a call's 4 counters and
 * its doorkeeper bits in one cache line (Caffeine's block layout).
 *
 * Contract:
 * - Pure data: no I/O, no clock, no globals. Hashes are the caller's
 *   (l1sketch_hash gives a good 64-bit one).
 * - An estimate never undercounts the additions since the last reset that
 *   were not halved away; it may overcount (collisions, Bloom false
 *   positives). The doorkeeper adds 1 to the estimate when it holds h.
 * - Memory is fixed at creation: 32 bytes per power-of-two unit of
 *   capacity, 16 counters and 128 doorkeeper bits (l1sketch_bytes).
 */
#ifndef REDSNANO_L1_SKETCH_H
#define REDSNANO_L1_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#define L1SKETCH_MAX 15            /* a counter saturates here */

struct l1sketch;

/* A sketch for a cache of about `capacity` entries (at least 64): 16
 * counters per power-of-two unit of capacity, aged every 10 x capacity
 * additions. NULL on out of memory. */
struct l1sketch *l1sketch_new(size_t capacity);
void l1sketch_free(struct l1sketch *s);

/* Record one access of h. */
void l1sketch_add(struct l1sketch *s, uint64_t h);

/* Estimated recent accesses of h, 0..L1SKETCH_MAX + 1. */
unsigned l1sketch_estimate(const struct l1sketch *s, uint64_t h);

/* Start loading the cache line h's counters live in (no effect otherwise). */
void l1sketch_prefetch(const struct l1sketch *s, uint64_t h);

/* Count an access of h that the sketch already holds at its most this
 * period (the caller knows: it added h L1SKETCH_MAX + 1 times since
 * l1sketch_period last changed): only the aging clock advances, no
 * counter is touched (no cache miss). */
void l1sketch_skip(struct l1sketch *s);

/* How many agings so far (changes when counters are halved). */
uint32_t l1sketch_period(const struct l1sketch *s);

/* Halve every counter and clear the doorkeeper (also done automatically). */
void l1sketch_reset(struct l1sketch *s);

/* Bytes the sketch holds. */
size_t l1sketch_bytes(const struct l1sketch *s);

/* 64-bit hash of a (p, n) then (q, m) byte pair: the identity of a call. */
uint64_t l1sketch_hash(uint8_t cmd, const char *p, size_t n, const char *q, size_t m);

#endif
