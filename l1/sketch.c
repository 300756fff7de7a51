/*
 * l1/sketch.c — TinyLFU frequency sketch with a doorkeeper (see sketch.h).
 *
 *   add(h) ─ doorkeeper has h? ── no ──> set its L1SKETCH_DOOR_K bits
 *                               └─ yes ─> +1 on the smallest of the
 *                                         L1SKETCH_DEPTH counters of h
 *   every `sample` additions (10 x capacity, as Caffeine's FrequencySketch):
 *   counters >>= 1, doorkeeper cleared
 *
 *   one 64-byte block (a cache line) per call, chosen by its hash:
 *   ┌ row 0: 8 counters ┬ row 1 ┬ row 2 ┬ row 3 ┬ doorkeeper: 256 bits ┐
 *
 * As many counters as Caffeine's FrequencySketch (16 per power-of-two unit
 * of capacity) and, as in its block layout, all of a call's counters in one
 * cache line; the doorkeeper (a blocked Bloom filter) shares that line, so
 * an addition or an estimate costs one cache miss, not seven. Block and
 * positions come from one 64-bit hash re-mixed with per-use odd constants
 * (splitmix64 finaliser). Counters are bytes capped at L1SKETCH_MAX (4
 * bits of range as Caffeine, byte-addressed for simplicity).
 */
#include "l1/sketch.h"

#include <stdlib.h>
#include <string.h>

#define L1SKETCH_DEPTH 4                /* count-min rows */
#define L1SKETCH_ROW 8                  /* counters of a row in one block */
#define L1SKETCH_DOOR_WORDS 4           /* 64-bit doorkeeper words in one block */
#define L1SKETCH_MIN_CAPACITY 64        /* smallest capacity sized for */
#define L1SKETCH_COUNTERS_PER_SLOT 16   /* counters per power-of-two unit of capacity (Caffeine: 16 4-bit ones per long) */
#define L1SKETCH_SAMPLE_PER_CAPACITY 10 /* additions per unit of capacity before aging (Caffeine: 10 x maximum size) */
#define L1SKETCH_DOOR_K 3               /* doorkeeper bits per call */

/* One cache line: a call's counters and doorkeeper bits. */
struct l1sketch_block {
    uint8_t c[L1SKETCH_DEPTH][L1SKETCH_ROW];   /* counters, row by row */
    uint64_t door[L1SKETCH_DOOR_WORDS];        /* doorkeeper bits */
};

/* The sketch: an array of blocks and the aging period. */
struct l1sketch {
    struct l1sketch_block *blocks; /* nblocks blocks, cache-line aligned */
    size_t nblocks;                /* power of two */
    size_t additions;              /* since the last aging */
    size_t sample;                 /* additions per aging period */
    size_t period;                 /* agings so far */
};

_Static_assert(sizeof(struct l1sketch_block) == 64, "a block is one cache line");

static const uint64_t seeds[3] = { 0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL, 0x165667b19e3779f9ULL };

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

struct l1sketch *l1sketch_new(size_t capacity)
{
    struct l1sketch *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (capacity < L1SKETCH_MIN_CAPACITY)
        capacity = L1SKETCH_MIN_CAPACITY;
    s->nblocks = pow2_at_least(capacity) * L1SKETCH_COUNTERS_PER_SLOT / (L1SKETCH_DEPTH * L1SKETCH_ROW);
    s->sample = capacity * L1SKETCH_SAMPLE_PER_CAPACITY;
    s->blocks = aligned_alloc(sizeof(struct l1sketch_block), s->nblocks * sizeof(struct l1sketch_block));
    if (s->blocks == NULL) {
        free(s);
        return NULL;
    }
    memset(s->blocks, 0, s->nblocks * sizeof(struct l1sketch_block));
    return s;
}

void l1sketch_free(struct l1sketch *s)
{
    if (s == NULL)
        return;
    free(s->blocks);
    free(s);
}

/* Where h lives: its block, and the positions (3 bits per row, 8 per
 * doorkeeper bit) drawn from *pos. */
static inline struct l1sketch_block *block_of(const struct l1sketch *s, uint64_t h, uint64_t *pos)
{
    *pos = mix(h ^ seeds[1]);
    return &s->blocks[mix(h ^ seeds[0]) & (s->nblocks - 1)];
}

/* Doorkeeper bit k of a call (0..255), from bits 12.. of pos. */
static inline unsigned door_bit(uint64_t pos, int k)
{
    return (unsigned)(pos >> (12 + 8 * k)) & (L1SKETCH_DOOR_WORDS * 64 - 1);
}

static int door_has(const struct l1sketch_block *b, uint64_t pos)
{
    for (int k = 0; k < L1SKETCH_DOOR_K; k++) {
        unsigned bit = door_bit(pos, k);
        if (!(b->door[bit / 64] & (1ULL << (bit % 64))))
            return 0;
    }
    return 1;
}

/* Counter of a call in row i, from bits 3i..3i+2 of pos. */
static inline uint8_t *counter(struct l1sketch_block *b, uint64_t pos, int i)
{
    return &b->c[i][(pos >> (3 * i)) & (L1SKETCH_ROW - 1)];
}

void l1sketch_add(struct l1sketch *s, uint64_t h)
{
    uint64_t pos;
    struct l1sketch_block *b = block_of(s, h, &pos);

    if (!door_has(b, pos)) {
        for (int k = 0; k < L1SKETCH_DOOR_K; k++) {
            unsigned bit = door_bit(pos, k);
            b->door[bit / 64] |= 1ULL << (bit % 64);
        }
    } else {
        /* Conservative update: raise only the counters at the minimum. */
        uint8_t *c[L1SKETCH_DEPTH];
        uint8_t min = L1SKETCH_MAX;
        for (int i = 0; i < L1SKETCH_DEPTH; i++) {
            c[i] = counter(b, pos, i);
            if (*c[i] < min)
                min = *c[i];
        }
        if (min < L1SKETCH_MAX)
            for (int i = 0; i < L1SKETCH_DEPTH; i++)
                if (*c[i] == min)
                    (*c[i])++;
    }
    if (++s->additions >= s->sample)
        l1sketch_reset(s);
}

void l1sketch_prefetch(const struct l1sketch *s, uint64_t h)
{
    uint64_t pos;
    __builtin_prefetch(block_of(s, h, &pos));
}

void l1sketch_skip(struct l1sketch *s)
{
    if (++s->additions >= s->sample)
        l1sketch_reset(s);
}

uint32_t l1sketch_period(const struct l1sketch *s)
{
    return (uint32_t)s->period;
}

unsigned l1sketch_estimate(const struct l1sketch *s, uint64_t h)
{
    uint64_t pos;
    struct l1sketch_block *b = block_of(s, h, &pos);

    /* As the TinyLFU paper: the counters, plus one when the doorkeeper
     * holds h. Counters outlive an aging (halved) while the doorkeeper is
     * cleared: a hot call not seen since keeps its count, so an entry at
     * the LRU tail still weighs against a candidate. */
    unsigned min = L1SKETCH_MAX;
    for (int i = 0; i < L1SKETCH_DEPTH; i++) {
        unsigned v = *counter(b, pos, i);
        if (v < min)
            min = v;
    }
    return min + (unsigned)door_has(b, pos);
}

void l1sketch_reset(struct l1sketch *s)
{
    for (size_t i = 0; i < s->nblocks; i++) {
        struct l1sketch_block *b = &s->blocks[i];
        for (int r = 0; r < L1SKETCH_DEPTH; r++)
            for (int j = 0; j < L1SKETCH_ROW; j++)
                b->c[r][j] >>= 1;
        memset(b->door, 0, sizeof(b->door));
    }
    s->additions /= 2;
    s->period++;
}

size_t l1sketch_bytes(const struct l1sketch *s)
{
    return sizeof(*s) + s->nblocks * sizeof(struct l1sketch_block);
}

uint64_t l1sketch_hash(uint8_t cmd, const char *p, size_t n, const char *q, size_t m)
{
    /* FNV-1a over both strings, finished by a strong mixer. */
    uint64_t h = 1469598103934665603ULL ^ cmd;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (size_t i = 0; i < m; i++)
        h = (h ^ (uint8_t)q[i]) * 1099511628211ULL;
    return mix(h ^ n);
}
