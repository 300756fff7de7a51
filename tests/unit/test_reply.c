/*
 * tests/unit/test_reply.c — the reply scanner: every split, deep nesting, bad bytes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/reply.h"

/* Scan `in` arriving `step` bytes at a time; return the lengths of the
 * replies found, comma separated. */
static void scan_all(const char *in, size_t n, size_t step, char *out)
{
    struct replyframe f = { 0 };
    size_t start = 0, have = 0;
    out[0] = '\0';
    while (start < n) {
        long long len = replyframe_scan(&f, in + start, have - start);
        if (len < 0) {
            strcat(out, "ERR");
            break;
        }
        if (len == 0) {
            if (have == n)
                break;
            have = have + step > n ? n : have + step;
            continue;
        }
        char num[32];
        snprintf(num, sizeof(num), "%lld,", len);
        strcat(out, num);
        start += (size_t)len;
    }
    replyframe_free(&f);
}

Test(reply, every_type_at_every_split)
{
    const char *in = "+OK\r\n-ERR x\r\n:42\r\n$3\r\nfoo\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n";
    for (size_t step = 1; step <= strlen(in); step++) {
        char out[256];
        scan_all(in, strlen(in), step, out);
        cr_assert_str_eq(out, "5,8,5,9,5,5,4,19,", "step %zu: %s", step, out);
    }
}

Test(reply, nesting_deeper_than_hiredis_allows)
{
    char in[1024] = "";
    for (int i = 0; i < 100; i++)
        strcat(in, "*1\r\n");
    strcat(in, ":7\r\n");
    char out[64];
    scan_all(in, strlen(in), 3, out);
    char want[32];
    snprintf(want, sizeof(want), "%zu,", strlen(in));
    cr_assert_str_eq(out, want);
}

Test(reply, bulk_with_crlf_inside)
{
    const char *in = "$6\r\na\r\nb\r\n\r\n";
    char out[64];
    scan_all(in, strlen(in), 1, out);
    cr_assert_str_eq(out, "12,");
}

Test(reply, garbage_is_an_error)
{
    char out[64];
    scan_all("!x\r\n", 4, 4, out);
    cr_assert_str_eq(out, "ERR");
    scan_all("$3\r\nabcd\r\n", 10, 10, out);
    cr_assert_str_eq(out, "ERR");
    scan_all(":1x\r\n", 5, 5, out);
    cr_assert_str_eq(out, "ERR");
}

Test(reply, large_array_scanned_in_linear_passes)
{
    /* 100k elements arriving 1000 bytes at a time completes. */
    size_t n = 100000;
    char *in = malloc(n * 8 + 32);
    size_t o = (size_t)sprintf(in, "*%zu\r\n", n);
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(in + o, "$1\r\nx\r\n");
    char out[64];
    scan_all(in, o, 1000, out);
    char want[32];
    snprintf(want, sizeof(want), "%zu,", o);
    cr_assert_str_eq(out, want);
    free(in);
}

Test(reply, writers_produce_resp)
{
    struct buf b = { 0 };
    reply_status(&b, "OK");
    reply_errorf(&b, "ERR bad\r\nthing %d", 1);
    reply_integer(&b, -3);
    reply_bulk(&b, "ab", 2);
    reply_nil(&b);
    reply_array(&b, 2);
    const char *want = "+OK\r\n-ERR bad  thing 1\r\n:-3\r\n$2\r\nab\r\n$-1\r\n*2\r\n";
    cr_assert_eq(b.len, strlen(want));
    cr_assert(memcmp(b.data, want, b.len) == 0);
    buf_free(&b);
}

Test(reply, extreme_integers)
{
    char out[64];
    const char *min = ":-9223372036854775808\r\n";     /* INCRBY k -9223372036854775808 on 0 */
    scan_all(min, strlen(min), 3, out);
    char want[32];
    snprintf(want, sizeof(want), "%zu,", strlen(min));
    cr_assert_str_eq(out, want);
    scan_all("$-9999999999999999999\r\n", 23, 23, out);
    cr_assert_str_eq(out, "ERR");
    scan_all("*-9999999999999999999\r\n", 23, 23, out);
    cr_assert_str_eq(out, "ERR");
    scan_all(":9223372036854775808\r\n", 22, 22, out);
    cr_assert_str_eq(out, "ERR");
}
