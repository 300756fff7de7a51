/*
 * l1/sketch.c — TinyLFU frequency sketch with a doorkeeper (see sketch.h).
 *
 *   add(h) ─ doorkeeper has h? ── no ──> set its L1SKETCH_DOOR_K bits
 *                               └─ yes ─> +1 on the smallest of the
 *                                         L1SKETCH_DEPTH counters of h
 *   every `sample` additions (10 x capacity, as Caffeine's FrequencySketch):
 *   counters >>= 1, doorkeeper cleared
 *
 * Sized and laid out as Caffeine's FrequencySketch: 16 counters per
 * power-of-two unit of capacity, in 64-byte blocks; a call's
 * L1SKETCH_DEPTH counters all lie in one block (one per 16-byte quarter, a
 * "row"), so an addition or an estimate touches one cache line of
 * counters. The doorkeeper is a blocked Bloom filter: a call's
 * L1SKETCH_DOOR_K bits lie in one 512-bit block. Block and positions come
 * from one 64-bit hash re-mixed with per-use odd constants (splitmix64
 * finaliser). Counters are bytes capped at L1SKETCH_MAX (4 bits of range
 * as Caffeine, byte-addressed for simplicity).
 */
#include "l1/sketch.h"

#include <stdlib.h>
#include <string.h>

#define L1SKETCH_DEPTH 4               /* count-min rows */
#define L1SKETCH_MIN_CAPACITY 64       /* smallest capacity sized for */
#define L1SKETCH_COUNTERS_PER_SLOT 16  /* counters per power-of-two unit of capacity (Caffeine: 16 4-bit ones per long) */
#define L1SKETCH_BLOCK 64              /* bytes of a counter block (one cache line), L1SKETCH_DEPTH quarters */
#define L1SKETCH_DOOR_BLOCK 512        /* bits of a doorkeeper block (one cache line) */
#define L1SKETCH_SAMPLE_PER_CAPACITY 10 /* additions per unit of capacity before aging (Caffeine: 10 x maximum size) */
#define L1SKETCH_DOOR_BITS_PER_SAMPLE 8 /* doorkeeper bits per addition of a period (~2% false positives) */
#define L1SKETCH_DOOR_K 3              /* doorkeeper hash functions */

/* The sketch: blocks of counters, then the doorkeeper's bits. */
struct l1sketch {
    uint8_t *rows;               /* nblocks * L1SKETCH_BLOCK counters, cache-line aligned */
    uint64_t *door;              /* doorkeeper bits, cache-line aligned */
    size_t nblocks;              /* counter blocks (power of two) */
    size_t door_bits;            /* doorkeeper size in bits (power of two, >= L1SKETCH_DOOR_BLOCK) */
    size_t additions;            /* since the last aging */
    size_t sample;               /* additions per aging period */
};

static const uint64_t seeds[L1SKETCH_DEPTH + L1SKETCH_DOOR_K] = {
    0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL, 0x165667b19e3779f9ULL, 0xd6e8feb86659fd93ULL,
    0xff51afd7ed558ccdULL, 0xc4ceb9fe1a85ec53ULL, 0x2545f4914f6cdd1dULL,
};

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
    s->nblocks = pow2_at_least(capacity) * L1SKETCH_COUNTERS_PER_SLOT / L1SKETCH_BLOCK;
    s->sample = capacity * L1SKETCH_SAMPLE_PER_CAPACITY;
    s->door_bits = pow2_at_least(s->sample * L1SKETCH_DOOR_BITS_PER_SAMPLE);
    s->rows = aligned_alloc(L1SKETCH_BLOCK, s->nblocks * L1SKETCH_BLOCK);
    s->door = aligned_alloc(L1SKETCH_BLOCK, s->door_bits / 8);
    if (s->rows == NULL || s->door == NULL) {
        l1sketch_free(s);
        return NULL;
    }
    memset(s->rows, 0, s->nblocks * L1SKETCH_BLOCK);
    memset(s->door, 0, s->door_bits / 8);
    return s;
}

void l1sketch_free(struct l1sketch *s)
{
    if (s == NULL)
        return;
    free(s->rows);
    free(s->door);
    free(s);
}

/* Bit k of h's doorkeeper block: 9 bits of one mixed hash per k. */
static inline size_t door_bit(const struct l1sketch *s, uint64_t h, int k)
{
    size_t block = (size_t)mix(h ^ seeds[L1SKETCH_DEPTH]) & (s->door_bits / L1SKETCH_DOOR_BLOCK - 1);
    uint64_t r = mix(h ^ seeds[L1SKETCH_DEPTH + 1]);
    return block * L1SKETCH_DOOR_BLOCK + (size_t)((r >> (9 * k)) & (L1SKETCH_DOOR_BLOCK - 1));
}

static int door_has(const struct l1sketch *s, uint64_t h)
{
    for (int k = 0; k < L1SKETCH_DOOR_K; k++) {
        size_t b = door_bit(s, h, k);
        if (!(s->door[b / 64] & (1ULL << (b % 64))))
            return 0;
    }
    return 1;
}

/* h's counter in row `row`: in h's block, row's quarter, 4 bits of one
 * mixed hash per row. */
static inline uint8_t *counter(const struct l1sketch *s, uint64_t h, int row)
{
    enum { QUARTER = L1SKETCH_BLOCK / L1SKETCH_DEPTH };
    size_t block = (size_t)mix(h ^ seeds[0]) & (s->nblocks - 1);
    uint64_t r = mix(h ^ seeds[1]);
    return &s->rows[block * L1SKETCH_BLOCK + (size_t)row * QUARTER + (size_t)((r >> (4 * row)) & (QUARTER - 1))];
}

void l1sketch_add(struct l1sketch *s, uint64_t h)
{
    if (!door_has(s, h)) {
        for (int k = 0; k < L1SKETCH_DOOR_K; k++) {
            size_t b = door_bit(s, h, k);
            s->door[b / 64] |= 1ULL << (b % 64);
        }
    } else {
        /* Conservative update: raise only the counters at the minimum. */
        uint8_t *c[L1SKETCH_DEPTH];
        uint8_t min = L1SKETCH_MAX;
        for (int i = 0; i < L1SKETCH_DEPTH; i++) {
            c[i] = counter(s, h, i);
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

unsigned l1sketch_estimate(const struct l1sketch *s, uint64_t h)
{
    if (!door_has(s, h))
        return 0;                    /* counters only move after the doorkeeper */
    unsigned min = L1SKETCH_MAX;
    for (int i = 0; i < L1SKETCH_DEPTH; i++) {
        unsigned v = *counter(s, h, i);
        if (v < min)
            min = v;
    }
    return min + 1;
}

void l1sketch_reset(struct l1sketch *s)
{
    size_t n = s->nblocks * L1SKETCH_BLOCK;
    for (size_t i = 0; i < n; i++)
        s->rows[i] >>= 1;
    memset(s->door, 0, s->door_bits / 8);
    s->additions /= 2;
}

size_t l1sketch_bytes(const struct l1sketch *s)
{
    return sizeof(*s) + s->nblocks * L1SKETCH_BLOCK + s->door_bits / 8;
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
