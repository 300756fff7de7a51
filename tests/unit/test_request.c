/*
 * tests/unit/test_request.c — request framing: every split, inline, errors, limits.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "protocol/peek.h"
#include "protocol/request.h"

static const struct reqlimits lim = { .max_bulk_len = 1024, .max_args = 64 };

/* Feed `in` in pieces of `step` bytes into a growing buffer, as a client's
 * reads would; collect the argv of every message framed, "|"-joined,
 * messages separated by ";". Returns the last framer status. */
static int frame_all(const char *in, size_t n, size_t step, char *out, size_t outlen, char *err)
{
    struct reqframe f;
    char buf[4096];
    size_t have = 0;
    int rc = REQ_MORE;

    reqframe_init(&f, &lim);
    out[0] = '\0';
    for (size_t off = 0; off < n || rc == REQ_OK;) {
        if (rc != REQ_OK) {
            size_t k = n - off < step ? n - off : step;
            memcpy(buf + have, in + off, k);
            have += k;
            off += k;
        }
        struct reqmsg m;
        rc = reqframe_next(&f, buf, have, 0, &m);
        if (rc == REQ_ERR) {
            strcpy(err, f.errstr);
            break;
        }
        if (rc == REQ_OK) {
            reqmsg_resolve(&f, &m, buf, 0);
            for (int i = 0; i < m.argc; i++) {
                strncat(out, m.argv[i], m.argvlen[i]);
                strcat(out, i + 1 < m.argc ? "|" : ";");
            }
            cr_assert(m.len > 0);
            if (!m.is_inline)
                cr_assert(memcmp(m.bytes, in + m.start, m.len) == 0, "bytes forwarded unchanged");
        }
        if (rc == REQ_MORE && off >= n)
            break;
    }
    (void)outlen;
    reqframe_free(&f);
    return rc;
}

Test(request, multibulk_split_at_every_byte_boundary)
{
    const char *in = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
                     "*1\r\n$4\r\nPING\r\n";
    for (size_t step = 1; step <= strlen(in); step++) {
        char out[512], err[128] = "";
        frame_all(in, strlen(in), step, out, sizeof(out), err);
        cr_assert_str_eq(out, "SET|key|value;GET|key;PING;", "step %zu: %s (%s)", step, out, err);
    }
}

Test(request, inline_commands_are_split_and_reencoded)
{
    const char *in = "PING\r\nSET a \"b c\\n\"\r\nGET 'x y'\nECHO \"\\x41\"\r\n";
    for (size_t step = 1; step <= strlen(in); step++) {
        char out[512], err[128] = "";
        frame_all(in, strlen(in), step, out, sizeof(out), err);
        cr_assert_str_eq(out, "PING;SET|a|b c\n;GET|x y;ECHO|A;", "step %zu: %s", step, out);
    }
}

Test(request, inline_reencoding_is_valid_resp)
{
    struct reqframe f;
    struct reqmsg m;
    const char *in = "SET k \"v w\"\r\n";
    reqframe_init(&f, &lim);
    cr_assert_eq(reqframe_next(&f, in, strlen(in), 0, &m), REQ_OK);
    cr_assert_eq(m.len, strlen("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv w\r\n"));
    cr_assert(memcmp(m.bytes, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv w\r\n", m.len) == 0);
    reqframe_free(&f);
}

Test(request, mixed_inline_and_multibulk)
{
    const char *in = "*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n";
    for (size_t step = 1; step <= strlen(in); step++) {
        char out[512], err[128] = "";
        frame_all(in, strlen(in), step, out, sizeof(out), err);
        cr_assert_str_eq(out, "PING;PING;ECHO|x;", "step %zu: %s (%s)", step, out, err);
    }
}

Test(request, empty_requests_are_skipped)
{
    char out[512], err[128] = "";
    const char *in = "*0\r\n*-1\r\n\r\n*1\r\n$4\r\nPING\r\n";
    frame_all(in, strlen(in), strlen(in), out, sizeof(out), err);
    cr_assert_str_eq(out, "PING;", "%s (%s)", out, err);
}

static void expect_error(const char *in, const char *msg)
{
    char out[512], err[128] = "";
    int rc = frame_all(in, strlen(in), strlen(in), out, sizeof(out), err);
    cr_assert_eq(rc, REQ_ERR, "%s: no error (out %s)", in, out);
    cr_assert(strstr(err, msg) != NULL, "%s: got '%s', want '%s'", in, err, msg);
}

Test(request, protocol_errors_match_redis)
{
    expect_error("*abc\r\n", "invalid multibulk length");
    expect_error("*1\r\n$-5\r\n", "invalid bulk length");
    expect_error("*1\r\n$x\r\n", "invalid bulk length");
    expect_error("*1\r\n:1\r\n", "expected '$', got ':'");
    expect_error("*1\r\n+OK\r\n", "expected '$', got '+'");
    expect_error("*1\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'");
    expect_error("*1\r\n!x\r\n", "expected '$', got '!'");
    expect_error("SET \"a b\r\n", "unbalanced quotes");
}

Test(request, limits_are_enforced_before_buffering)
{
    expect_error("*1\r\n$2000\r\nabc", "invalid bulk length");   /* > max_bulk_len, body not sent */
    expect_error("*100\r\n", "invalid multibulk length");         /* > max_args */
    expect_error("*1\r\n$11111111111111111111111111111111111", "too big bulk count string");
}

Test(request, inline_too_long_is_refused)
{
    static char in[REQ_INLINE_MAX + 10];
    memset(in, 'a', sizeof(in) - 1);
    in[sizeof(in) - 1] = '\0';
    struct reqframe f;
    struct reqmsg m;
    reqframe_init(&f, &lim);
    cr_assert_eq(reqframe_next(&f, in, strlen(in), 0, &m), REQ_ERR);
    cr_assert(strstr(f.errstr, "too big inline request"));
    reqframe_free(&f);
}

Test(request, offsets_survive_buffer_compaction)
{
    /* The caller drops framed bytes and moves the rest: base changes. */
    struct reqframe f;
    struct reqmsg m;
    char buf[256];
    const char *a = "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1";
    const char *b = "\r\nk\r\n";
    reqframe_init(&f, &lim);
    strcpy(buf, a);
    cr_assert_eq(reqframe_next(&f, buf, strlen(buf), 0, &m), REQ_OK);
    cr_assert_eq(reqframe_next(&f, buf, strlen(buf), 0, &m), REQ_MORE);
    uint64_t keep = reqframe_consumed(&f);
    cr_assert_eq(keep, 14);
    memmove(buf, buf + keep, strlen(a) - keep);
    size_t have = strlen(a) - keep;
    memcpy(buf + have, b, strlen(b));
    have += strlen(b);
    cr_assert_eq(reqframe_next(&f, buf, have, keep, &m), REQ_OK);
    reqmsg_resolve(&f, &m, buf, keep);
    cr_assert_eq(m.argc, 2);
    cr_assert(m.argvlen[1] == 1 && m.argv[1][0] == 'k');
    cr_assert_eq(m.len, 20);
    reqframe_free(&f);
}

Test(request, negative_counts_are_skipped_like_redis)
{
    char out[512], err[128] = "";
    const char *in = "*-10\r\nPING\r\n*-1\r\n*1\r\n$4\r\nECHO\r\n";
    for (size_t step = 1; step <= strlen(in); step++) {
        frame_all(in, strlen(in), step, out, sizeof(out), err);
        cr_assert_str_eq(out, "PING;ECHO;", "step %zu: %s (%s)", step, out, err);
    }
}

Test(request, nil_count_after_hiredis_compacted_its_buffer)
{
    /* hiredis trims its buffer once 1 KB is consumed, mid-message too:
     * "*-1" split after its '*' must still be skipped cleanly (UBSan). */
    static char in[1200];
    size_t n = (size_t)sprintf(in, "*1\r\n$1010\r\n");
    memset(in + n, 'x', 1010);
    n += 1010;
    n += (size_t)sprintf(in + n, "\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
    char out[2048], err[128] = "";
    frame_all(in, n, 1024, out, sizeof(out), err);
    cr_assert(strstr(out, ";PING;") != NULL, "%.40s... (%s)", out, err);
}

Test(request, inline_line_ends_at_nul_and_vertical_space_closes_quotes)
{
    char out[512], err[128] = "";
    const char in1[] = "GET a\0b\r\n";
    frame_all(in1, sizeof(in1) - 1, sizeof(in1) - 1, out, sizeof(out), err);
    cr_assert_str_eq(out, "GET|a;", "%s", out);
    const char *in2 = "SET \"a\"\vb\r\n";
    frame_all(in2, strlen(in2), strlen(in2), out, sizeof(out), err);
    cr_assert_str_eq(out, "SET|a|b;", "%s (%s)", out, err);
}

/* ---- the look ahead (protocol/peek.h) ---------------------------------- */

Test(peek, finds_the_key_of_a_leading_get_and_its_span)
{
    const char in[] = "*2\r\n$3\r\nget\r\n$5\r\nkey:1\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
    const char *k;
    size_t kl, n = reqpeek_get(in, sizeof(in) - 1, &k, &kl);

    cr_assert_eq(n, 24);
    cr_assert_eq(kl, 5);
    cr_assert(memcmp(k, "key:1", 5) == 0);
    cr_assert_eq(reqpeek_get(in + n, sizeof(in) - 1 - n, &k, &kl), sizeof(in) - 1 - n, "an empty key is a key");
    cr_assert_eq(kl, 0);
}

Test(peek, sees_nothing_but_a_complete_get)
{
    static const char *const no[] = {
        "*2\r\n$3\r\nSET\r\n$1\r\na\r\n",          /* another command */
        "*3\r\n$3\r\nGET\r\n$1\r\na\r\n$1\r\nb\r\n", /* another arity */
        "*2\r\n$3\r\nGET\r\n$1\r\na\r",             /* incomplete */
        "*2\r\n$3\r\nGET\r\n$2\r\na\r\n",           /* short key */
        "*2\r\n$3\r\nGET\r\n$\r\na\r\n",            /* no length */
        "*2\r\n$3\r\nGET\r\n$99999999999\r\na\r\n", /* too many digits */
        "GET a\r\n",                                /* inline */
        "*2\r\n$3\r\nGET\r\n",                      /* no key yet */
    };
    const char *k = NULL;
    size_t kl = 0;

    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        cr_assert_eq(reqpeek_get(no[i], strlen(no[i]), &k, &kl), 0, "%zu: %s", i, no[i]);
    for (size_t n = 0; n < 20; n++)  /* every prefix of a GET is incomplete */
        cr_assert_eq(reqpeek_get("*2\r\n$3\r\nGET\r\n$1\r\na\r\n", n, &k, &kl), 0, "prefix %zu", n);
}
