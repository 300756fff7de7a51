/*
 * bench/policysim.c — the hit ratio an eviction policy alone allows on the
 * load bench/zipf runs, without the proxy or Redis: plain LRU against an
 * oracle that knows every key's popularity, on one trace of reads and
 * writes (the same Zipf draw as bench/loadgen).
 *
 *   trace: rank ~ Zipf(s) over N keys; a read with probability --reads,
 *          else a write, which invalidates the key in both caches
 *   LRU:    every missed read is cached; the least recently used of
 *           --capacity entries is evicted
 *   oracle: a missed read is cached when there is room or when its key is
 *           more popular than the least popular cached one (evicted) —
 *           the best any admission policy (TinyLFU included) can do
 *           without knowing the future
 *
 * Prints the hit ratio (hits / reads after --warmup operations) of each and
 * their difference, the ceiling of "admission over plain LRU" at that
 * memory. bench/README.md shows the figures for bench/zipf's defaults.
 *
 * Usage: policysim [--zipf 0.99] [--keys 1000000] [--reads 0.95]
 *                  [--capacity 300000] [--ops 30000000] [--warmup 10000000] [--seed 1]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skew.h"

#define NONE (-1L)                      /* no neighbour / not cached */

/* Options. */
static double zipf_s = 0.99, reads = 0.95;
static long keys = 1000000, capacity = 300000, ops = 30000000, warmup = 10000000, seed = 1;

/* LRU over ranks: a doubly linked list in two arrays, in[] flags members. */
static long *prev_, *next_, head = NONE, tail = NONE, lru_n;
static char *in_lru;

static void lru_unlink(long k)
{
    if (prev_[k] != NONE)
        next_[prev_[k]] = next_[k];
    else
        head = next_[k];
    if (next_[k] != NONE)
        prev_[next_[k]] = prev_[k];
    else
        tail = prev_[k];
    in_lru[k] = 0;
    lru_n--;
}

static void lru_push(long k)
{
    prev_[k] = NONE;
    next_[k] = head;
    if (head != NONE)
        prev_[head] = k;
    head = k;
    if (tail == NONE)
        tail = k;
    in_lru[k] = 1;
    lru_n++;
}

/* A read under LRU: 1 on a hit. */
static int lru_read(long k)
{
    if (in_lru[k]) {
        lru_unlink(k);
        lru_push(k);
        return 1;
    }
    lru_push(k);
    if (lru_n > capacity)
        lru_unlink(tail);
    return 0;
}

/* Oracle: members flagged in in_or[], a max-heap of ranks (lazy: entries of
 * keys no longer cached are skipped when they reach the top). */
static char *in_or;
static long *heap, heap_n, heap_cap, or_n;

static void heap_push(long k)
{
    long i = heap_n++;
    while (i > 0 && heap[(i - 1) / 2] < k) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = k;
}

static void heap_pop(void)
{
    long last = heap[--heap_n], i = 0;
    for (;;) {
        long c = 2 * i + 1;
        if (c >= heap_n)
            break;
        if (c + 1 < heap_n && heap[c + 1] > heap[c])
            c++;
        if (heap[c] <= last)
            break;
        heap[i] = heap[c];
        i = c;
    }
    heap[i] = last;
}

/* The least popular cached rank (the top, stale entries dropped). */
static long heap_top(void)
{
    while (heap_n > 0 && !in_or[heap[0]])
        heap_pop();
    return heap_n > 0 ? heap[0] : NONE;
}

/* Rebuild the heap from the members when stale entries pile up. */
static void heap_compact(void)
{
    heap_n = 0;
    for (long k = 0; k < keys; k++)
        if (in_or[k])
            heap_push(k);
}

static int oracle_read(long k)
{
    if (in_or[k])
        return 1;
    if (or_n >= capacity) {
        long worst = heap_top();
        if (worst == NONE || k > worst)
            return 0;                   /* less popular than everything cached: not admitted */
        in_or[worst] = 0;
        or_n--;
    }
    if (heap_n == heap_cap)
        heap_compact();
    in_or[k] = 1;
    or_n++;
    heap_push(k);
    return 0;
}

static long opt_long(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 0) {
        fprintf(stderr, "policysim: %s is not a count\n", v);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--zipf"))
            zipf_s = atof(v);
        else if (!strcmp(a, "--reads"))
            reads = atof(v);
        else if (!strcmp(a, "--keys"))
            keys = opt_long(v);
        else if (!strcmp(a, "--capacity"))
            capacity = opt_long(v);
        else if (!strcmp(a, "--ops"))
            ops = opt_long(v);
        else if (!strcmp(a, "--warmup"))
            warmup = opt_long(v);
        else if (!strcmp(a, "--seed"))
            seed = opt_long(v);
        else {
            fprintf(stderr, "usage: policysim [--zipf S] [--keys N] [--reads F] [--capacity N] [--ops N] "
                            "[--warmup N] [--seed N]\n");
            return 2;
        }
    }
    if (keys < 1 || capacity < 1 || reads < 0 || reads > 1 || zipf_s < 0) {
        fprintf(stderr, "policysim: keys and capacity >= 1, reads in 0..1, zipf >= 0\n");
        return 2;
    }
    struct skew z;
    heap_cap = 4 * capacity + 16;
    prev_ = malloc((size_t)keys * sizeof(long));
    next_ = malloc((size_t)keys * sizeof(long));
    in_lru = calloc((size_t)keys, 1);
    in_or = calloc((size_t)keys, 1);
    heap = malloc((size_t)heap_cap * sizeof(long));
    if (!prev_ || !next_ || !in_lru || !in_or || !heap || skew_init(&z, keys, zipf_s) != 0) {
        fprintf(stderr, "policysim: out of memory\n");
        return 1;
    }
    uint64_t rng = (uint64_t)seed * 0x9e3779b97f4a7c15ULL + 1;
    long n_reads = 0, lru_hits = 0, or_hits = 0;
    for (long t = 0; t < ops; t++) {
        long k = skew_draw(&z, &rng);
        if (skew_rnd01(&rng) >= reads) {
            if (in_lru[k])
                lru_unlink(k);
            if (in_or[k]) {
                in_or[k] = 0;
                or_n--;
            }
            continue;
        }
        int lh = lru_read(k), oh = oracle_read(k);
        if (t >= warmup) {
            n_reads++;
            lru_hits += lh;
            or_hits += oh;
        }
    }
    double lru = n_reads ? (double)lru_hits / (double)n_reads : 0, orc = n_reads ? (double)or_hits / (double)n_reads : 0;
    printf("policysim: zipf %.2f keys %ld reads %.2f capacity %ld ops %ld (warm-up %ld)\n", zipf_s, keys, reads,
           capacity, ops, warmup);
    printf("lru_hit_ratio:%.4f\noracle_hit_ratio:%.4f\noracle_minus_lru_points:%.1f\n", lru, orc, (orc - lru) * 100);
    skew_free(&z);
    free(prev_);
    free(next_);
    free(in_lru);
    free(in_or);
    free(heap);
    return 0;
}
