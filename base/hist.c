/*
 * base/hist.c — fixed log-scale latency buckets (see hist.h).
 */
#include "base/hist.h"

#include <string.h>

int hist_bucket(uint64_t us)
{
    if (us <= HIST_SUB)
        return us == 0 ? 0 : (int)us - 1;
    /* v in (2^e, 2^(e+1)]: e = floor(log2(v - 1)) */
    int e = 63 - __builtin_clzll(us - 1);
    if (e >= HIST_MAX_EXP)
        return HIST_FINITE;
    int shift = e - 2;                    /* step = 2^e / HIST_SUB = 2^(e-2) */
    uint64_t s = (us - (1ULL << e) + (1ULL << shift) - 1) >> shift; /* 1..HIST_SUB */
    return HIST_SUB + (e - 2) * HIST_SUB + (int)s - 1;
}

uint64_t hist_bound(int i)
{
    if (i < HIST_SUB)
        return (uint64_t)i + 1;
    int e = 2 + (i - HIST_SUB) / HIST_SUB;
    uint64_t s = (uint64_t)((i - HIST_SUB) % HIST_SUB) + 1;
    return (1ULL << e) + s * (1ULL << (e - 2));
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;                           /* ceil without libm */
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_FINITE; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            return hist_bound(i);
    }
    return UINT64_MAX;
}

void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}
