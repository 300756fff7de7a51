/*
 * bench/skew.c — Zipf ranks for the bench tools (see skew.h).
 */
#include "skew.h"

#include <math.h>
#include <stdlib.h>

int skew_init(struct skew *z, long n, double s)
{
    z->n = n;
    z->cdf = malloc((size_t)n * sizeof(*z->cdf));
    if (z->cdf == NULL)
        return -1;
    double sum = 0;
    for (long i = 0; i < n; i++) {
        sum += s > 0 ? pow((double)(i + 1), -s) : 1.0;
        z->cdf[i] = sum;
    }
    for (long i = 0; i < n; i++)
        z->cdf[i] /= sum;
    return 0;
}

void skew_free(struct skew *z)
{
    free(z->cdf);
    z->cdf = NULL;
}

uint64_t skew_rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dULL;
}

double skew_rnd01(uint64_t *s)
{
    return (double)(skew_rnd(s) >> 11) * (1.0 / 9007199254740992.0);
}

long skew_draw(const struct skew *z, uint64_t *s)
{
    double u = skew_rnd01(s);
    long lo = 0, hi = z->n - 1;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (z->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
