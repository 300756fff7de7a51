/*
 * base/hist.h — a latency histogram in fixed log-scale buckets.
 *
 *   request framed ─ ... ─ reply complete ──> hist_add(h, µs) ──┬─> hist_quantile (REDSNANO LATENCY)
 *                                                              └─> hist_bound + counts (/metrics)
 *
 * Buckets are fixed for every histogram, so they add up and export as one
 * Prometheus histogram: bucket i holds values v (microseconds) with
 * hist_bound(i-1) < v <= hist_bound(i). The bounds are 1, 2, 3, 4, then
 * four per doubling (5 6 7 8, 10 12 14 16, 20 24 28 32, ...) up to
 * 2^25 µs (~33.5 s); one more bucket holds everything above (+Inf). A
 * quantile is the upper bound of the bucket holding that rank: at most
 * 25% above the true value.
 *
 * Contract: a zeroed struct hist is an empty histogram. Nothing allocates;
 * nothing fails.
 */
#ifndef REDSNANO_BASE_HIST_H
#define REDSNANO_BASE_HIST_H

#include <stdint.h>

#define HIST_SUB 4                      /* buckets per doubling */
#define HIST_MAX_EXP 25                 /* the last finite bound is 2^HIST_MAX_EXP µs */
#define HIST_FINITE (HIST_SUB + HIST_SUB * (HIST_MAX_EXP - 2)) /* buckets with a finite bound */
#define HIST_BUCKETS (HIST_FINITE + 1)  /* plus +Inf */

struct hist {
    uint64_t counts[HIST_BUCKETS];      /* values per bucket (not cumulative) */
    uint64_t count;                     /* values recorded */
    uint64_t sum_us;                    /* their sum, µs */
};

/* The bucket a value of us microseconds falls in (HIST_FINITE = +Inf). */
int hist_bucket(uint64_t us);

/* The upper bound (inclusive, µs) of bucket i < HIST_FINITE. */
uint64_t hist_bound(int i);

/* Record one value. */
static inline void hist_add(struct hist *h, uint64_t us)
{
    h->counts[hist_bucket(us)]++;
    h->count++;
    h->sum_us += us;
}

/* The value at quantile q (0 < q <= 1) in µs: the upper bound of the
 * bucket holding rank ceil(q * count); 0 when empty; UINT64_MAX when that
 * rank is in the +Inf bucket. */
uint64_t hist_quantile(const struct hist *h, double q);

/* Forget everything. */
void hist_reset(struct hist *h);

#endif
