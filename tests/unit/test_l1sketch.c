/*
 * tests/unit/test_l1sketch.c — the TinyLFU sketch (l1/sketch.h): one-hit
 * calls stay at 1, repeated ones count up, counts saturate, aging halves,
 * and collisions stay rare at the sized capacity. Links the l1 library.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "l1/sketch.h"

#define T_CAPACITY 4096          /* sketch size of these tests */
#define T_KEYS 4096              /* distinct one-hit keys of the false-positive test */

static uint64_t key_hash(const char *fmt, int i)
{
    char k[64];
    int n = snprintf(k, sizeof(k), fmt, i);
    return l1sketch_hash(1, k, (size_t)n, "", 0);
}

Test(l1sketch, unseen_is_zero_first_sighting_is_one)
{
    struct l1sketch *s = l1sketch_new(T_CAPACITY);
    uint64_t h = key_hash("k%d", 1);
    cr_assert_eq(l1sketch_estimate(s, h), 0);
    l1sketch_add(s, h);
    cr_assert_eq(l1sketch_estimate(s, h), 1, "the doorkeeper alone holds a first sighting");
    l1sketch_add(s, h);
    cr_assert_eq(l1sketch_estimate(s, h), 2);
    l1sketch_free(s);
}

Test(l1sketch, counts_repeats_and_saturates)
{
    struct l1sketch *s = l1sketch_new(T_CAPACITY);
    uint64_t h = key_hash("hot%d", 7);
    for (int i = 0; i < 10; i++)
        l1sketch_add(s, h);
    cr_assert_eq(l1sketch_estimate(s, h), 10);
    for (int i = 0; i < 100; i++)
        l1sketch_add(s, h);
    cr_assert_eq(l1sketch_estimate(s, h), L1SKETCH_MAX + 1, "counters saturate");
    l1sketch_free(s);
}

Test(l1sketch, aging_halves_counts_and_clears_the_doorkeeper)
{
    struct l1sketch *s = l1sketch_new(T_CAPACITY);
    uint64_t hot = key_hash("hot%d", 1), once = key_hash("once%d", 1);
    for (int i = 0; i < 9; i++)
        l1sketch_add(s, hot);            /* doorkeeper + 8 */
    l1sketch_add(s, once);
    l1sketch_reset(s);
    cr_assert_eq(l1sketch_estimate(s, once), 0, "a one-hit call is forgotten");
    cr_assert_eq(l1sketch_estimate(s, hot), 4, "8 halved to 4, the doorkeeper cleared");
    l1sketch_add(s, hot);
    cr_assert_eq(l1sketch_estimate(s, hot), 5, "4 plus the doorkeeper");
    l1sketch_free(s);
}

Test(l1sketch, ages_by_itself_after_its_sample)
{
    struct l1sketch *s = l1sketch_new(64);
    uint64_t hot = key_hash("hot%d", 2);
    for (int i = 0; i < 9; i++)
        l1sketch_add(s, hot);
    /* Capacity 64 * 10 additions: a period of 640 additions. */
    for (int i = 0; i < 700; i++)
        l1sketch_add(s, key_hash("cold%d", i));
    l1sketch_add(s, hot);
    cr_assert_lt(l1sketch_estimate(s, hot), 9, "aged: %u", l1sketch_estimate(s, hot));
    cr_assert_gt(l1sketch_estimate(s, hot), 1, "but not forgotten");
    l1sketch_free(s);
}

Test(l1sketch, one_hit_keys_rarely_look_repeated)
{
    struct l1sketch *s = l1sketch_new(T_CAPACITY);
    for (int i = 0; i < T_KEYS; i++)
        l1sketch_add(s, key_hash("u%d", i));
    int repeated = 0;
    for (int i = 0; i < T_KEYS; i++)
        repeated += l1sketch_estimate(s, key_hash("u%d", i)) >= 2;
    cr_assert_lt(repeated, T_KEYS / 20, "%d of %d one-hit keys estimated >= 2", repeated, T_KEYS);
    l1sketch_free(s);
}

Test(l1sketch, hash_covers_command_key_and_args)
{
    cr_assert_neq(l1sketch_hash(1, "k", 1, "", 0), l1sketch_hash(2, "k", 1, "", 0));
    cr_assert_neq(l1sketch_hash(1, "ab", 2, "", 0), l1sketch_hash(1, "a", 1, "b", 1));
    cr_assert_eq(l1sketch_hash(1, "k", 1, "x", 1), l1sketch_hash(1, "k", 1, "x", 1));
    struct l1sketch *s = l1sketch_new(100);
    cr_assert_eq(l1sketch_bytes(s), sizeof(void *) + sizeof(size_t) * 4 + 128 * 32,
                 "16 counters and 128 doorkeeper bits per power-of-two slot, plus the header");
    l1sketch_free(s);
}

Test(l1sketch, a_skip_ages_like_an_addition_and_touches_no_count)
{
    struct l1sketch *s = l1sketch_new(T_CAPACITY);
    uint64_t h = key_hash("k%d", 3);
    for (int i = 0; i < 20; i++)
        l1sketch_add(s, h);
    unsigned before = l1sketch_estimate(s, h);
    uint32_t period = l1sketch_period(s);
    cr_assert_eq(before, L1SKETCH_MAX + 1);
    /* As many skips as an aging period holds: counts halve once, by the
     * aging clock alone. */
    size_t n = 0;
    while (l1sketch_period(s) == period && n < 100 * T_CAPACITY) {
        cr_assert_eq(l1sketch_estimate(s, h), before, "a skip changed a count");
        l1sketch_skip(s);
        n++;
    }
    cr_assert_eq(l1sketch_period(s), period + 1, "no aging after %zu skips", n);
    cr_assert(n <= 10 * T_CAPACITY, "aging came after %zu skips (sample %d)", n, 10 * T_CAPACITY);
    cr_assert_eq(l1sketch_estimate(s, h), L1SKETCH_MAX / 2, "counts were not halved (doorkeeper cleared)");
    l1sketch_free(s);
}
