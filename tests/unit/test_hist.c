/*
 * test_hist.c — base/hist: fixed log-scale latency buckets and quantiles.
 */
#include <criterion/criterion.h>

#include <stdint.h>

#include "base/hist.h"

Test(hist, bounds_are_increasing_and_log_scale)
{
    cr_assert_eq(hist_bound(0), 1);
    cr_assert_eq(hist_bound(3), 4);
    cr_assert_eq(hist_bound(4), 5);
    cr_assert_eq(hist_bound(7), 8);
    cr_assert_eq(hist_bound(8), 10);
    cr_assert_eq(hist_bound(HIST_FINITE - 1), 1ULL << HIST_MAX_EXP);
    for (int i = 1; i < HIST_FINITE; i++) {
        cr_assert_gt(hist_bound(i), hist_bound(i - 1), "bucket %d", i);
        if (i >= HIST_SUB)
            cr_assert_leq(hist_bound(i) * 4, hist_bound(i - 1) * 5, "bucket %d is at most 25%% wider", i);
    }
}

Test(hist, every_value_lands_in_the_bucket_whose_bounds_hold_it)
{
    for (uint64_t v = 0; v < 300000; v++) {
        int i = hist_bucket(v);
        cr_assert_lt(i, HIST_FINITE, "value %llu", (unsigned long long)v);
        cr_assert_leq(v, hist_bound(i), "value %llu in bucket %d", (unsigned long long)v, i);
        if (i > 0)
            cr_assert_gt(v, hist_bound(i - 1), "value %llu in bucket %d", (unsigned long long)v, i);
    }
    cr_assert_eq(hist_bucket(1ULL << HIST_MAX_EXP), HIST_FINITE - 1);
    cr_assert_eq(hist_bucket((1ULL << HIST_MAX_EXP) + 1), HIST_FINITE, "above the last bound: +Inf");
    cr_assert_eq(hist_bucket(UINT64_MAX), HIST_FINITE);
}

Test(hist, quantiles_are_the_bound_of_the_rank_bucket)
{
    struct hist h = { 0 };
    cr_assert_eq(hist_quantile(&h, 0.5), 0, "empty");
    for (int i = 0; i < 990; i++)
        hist_add(&h, 100);             /* bucket (96, 112] */
    for (int i = 0; i < 9; i++)
        hist_add(&h, 5000);            /* (4096, 5120] */
    hist_add(&h, 1000000);             /* (983040, 1048576] */
    cr_assert_eq(h.count, 1000);
    cr_assert_eq(h.sum_us, 990 * 100 + 9 * 5000 + 1000000);
    cr_assert_eq(hist_quantile(&h, 0.5), 112);
    cr_assert_eq(hist_quantile(&h, 0.99), 112, "rank 990 is the last 100");
    cr_assert_eq(hist_quantile(&h, 0.999), 5120, "rank 999");
    cr_assert_eq(hist_quantile(&h, 1.0), 1048576);
    hist_add(&h, UINT64_MAX / 2);
    cr_assert_eq(hist_quantile(&h, 1.0), UINT64_MAX, "+Inf");
    hist_reset(&h);
    cr_assert_eq(h.count, 0);
    cr_assert_eq(hist_quantile(&h, 0.99), 0);
}
