/*
 * bench/skew.h — the skewed key draw shared by bench/loadgen.c and
 * bench/policysim.c: a Zipf distribution over key ranks, and the generator
 * behind it (xorshift64*, reproducible from a seed).
 *
 *   skew_init(N, s) ─> CDF over ranks 0..N-1, weight 1/(rank+1)^s
 *   skew_draw ─> a rank (binary search of the CDF); rank 0 is the hottest
 *
 * Contract: s = 0 is uniform; skew_free releases the CDF; a draw reads the
 * CDF only, so one CDF serves any number of generators.
 */
#ifndef REDSNANO_BENCH_SKEW_H
#define REDSNANO_BENCH_SKEW_H

#include <stdint.h>

struct skew {
    double *cdf;                        /* P(rank <= i), i in 0..n-1 */
    long n;                             /* ranks */
};

/* Build the CDF of Zipf(s) over n ranks. 0, or -1 when out of memory. */
int skew_init(struct skew *z, long n, double s);
void skew_free(struct skew *z);

/* The next 64 random bits of the generator *state (never 0). */
uint64_t skew_rnd(uint64_t *state);

/* A uniform double in [0, 1). */
double skew_rnd01(uint64_t *state);

/* A rank drawn from the distribution. */
long skew_draw(const struct skew *z, uint64_t *state);

#endif
