/*
 * tests/unit/test_resp3.c — RESP3 -> RESP2 conversion against what Redis 7.0
 * itself sends (tests/unit/resp3_fixtures.h, tools/resp3_fixtures), each
 * type by itself, attributes, pushes, flags, bad input; the RESP3 writers.
 */
#define _GNU_SOURCE                       /* memmem */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/command.h"
#include "protocol/reply.h"
#include "protocol/resp3.h"
#include "resp3_fixtures.h"

/* Convert `in`; return the RESP2 bytes as a string ("EINVAL" on -EINVAL). */
static char *conv(const char *in, size_t n, unsigned flags)
{
    static char out[8192];
    struct buf b = { 0 };
    int rc = resp3_to_resp2(&b, in, n, flags);
    if (rc == -EINVAL) {
        cr_assert_eq(b.len - b.pos, 0, "output left behind after an error");
        strcpy(out, "EINVAL");
    } else {
        cr_assert_eq(rc, 0);
        cr_assert_lt(b.len, sizeof(out));
        memcpy(out, b.data + b.pos, b.len - b.pos);
        out[b.len - b.pos] = '\0';
    }
    buf_free(&b);
    return out;
}

#define CONV(in, flags, want) cr_assert_str_eq(conv(in, strlen(in), flags), want, "%s", in)

/* The whole of p[0, n) is one complete reply for the scanner. */
static int scans_whole(const char *p, size_t n, char *type)
{
    struct replyframe f = { 0 };
    long long l = replyframe_scan(&f, p, n);
    if (type)
        *type = f.type;
    replyframe_free(&f);
    return l == (long long)n;
}

Test(resp3, matches_redis_byte_for_byte)
{
    size_t n = sizeof(resp3_fixtures) / sizeof(resp3_fixtures[0]);
    cr_assert_gt(n, 50);
    for (size_t i = 0; i < n; i++) {
        const struct resp3_fixture *fx = &resp3_fixtures[i];
        cr_assert(scans_whole(fx->resp3, fx->resp3_len, NULL), "%s: RESP3 reply does not scan", fx->cmd);
        cr_assert(scans_whole(fx->resp2, fx->resp2_len, NULL), "%s: RESP2 reply does not scan", fx->cmd);
        struct buf b = { 0 };
        cr_assert_eq(resp3_to_resp2(&b, fx->resp3, fx->resp3_len, fx->flags), 0, "%s", fx->cmd);
        /* HELLO says which protocol it speaks: the one difference. */
        if (strcmp(fx->cmd, "HELLO") == 0) {
            char *proto = memmem(b.data, b.len, "$5\r\nproto\r\n:3\r\n", 15);
            cr_assert_not_null(proto);
            proto[12] = '2';
        }
        cr_assert_eq(b.len, fx->resp2_len, "%s: %zu bytes, Redis sends %zu:\n%.*s", fx->cmd, b.len,
                     fx->resp2_len, (int)b.len, b.data);
        cr_assert(memcmp(b.data, fx->resp2, b.len) == 0, "%s:\n%.*s", fx->cmd, (int)b.len, b.data);
        buf_free(&b);
    }
}

Test(resp3, fixtures_cover_every_type)
{
    const char *want = "_,#(=%~|>";
    for (const char *t = want; *t; t++) {
        int seen = 0;
        for (size_t i = 0; i < sizeof(resp3_fixtures) / sizeof(resp3_fixtures[0]); i++)
            seen |= memchr(resp3_fixtures[i].resp3, *t, resp3_fixtures[i].resp3_len) != NULL;
        cr_assert(seen, "no fixture has '%c'", *t);
    }
}

Test(resp3, scalars)
{
    CONV("_\r\n", 0, "$-1\r\n");
    CONV(",3.14\r\n", 0, "$4\r\n3.14\r\n");
    CONV(",inf\r\n", 0, "$3\r\ninf\r\n");
    CONV(",-inf\r\n", 0, "$4\r\n-inf\r\n");
    CONV(",-nan\r\n", 0, "$4\r\n-nan\r\n");
    CONV(",1e+300\r\n", 0, "$6\r\n1e+300\r\n");
    CONV("#t\r\n", 0, ":1\r\n");
    CONV("#f\r\n", 0, ":0\r\n");
    CONV("(-12345678901234567890\r\n", 0, "$21\r\n-12345678901234567890\r\n");
    CONV("=15\r\ntxt:Some string\r\n", 0, "$11\r\nSome string\r\n");
    CONV("=6\r\nmkd:**\r\n", 0, "$2\r\n**\r\n");
    CONV("=4\r\ntxt:\r\n", 0, "$0\r\n\r\n");
    CONV("!21\r\nSYNTAX invalid syntax\r\n", 0, "-SYNTAX invalid syntax\r\n");
    CONV("!8\r\nERR a\r\nb\r\n", 0, "-ERR a  b\r\n");
}

Test(resp3, resp2_items_pass_unchanged)
{
    const char *in[] = { "+OK\r\n", "-ERR x\r\n", ":-5\r\n", "$3\r\nfoo\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
                         "*2\r\n$1\r\na\r\n*1\r\n:1\r\n" };
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        CONV(in[i], 0, in[i]);
}

Test(resp3, aggregates)
{
    CONV("%2\r\n+a\r\n:1\r\n+b\r\n#f\r\n", 0, "*4\r\n+a\r\n:1\r\n+b\r\n:0\r\n");
    CONV("~2\r\n,1\r\n_\r\n", 0, "*2\r\n$1\r\n1\r\n$-1\r\n");
    CONV("%0\r\n", 0, "*0\r\n");
    CONV("~0\r\n", 0, "*0\r\n");
    CONV(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", 0, "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
    /* nesting: a map of sets of maps */
    CONV("%1\r\n+k\r\n~2\r\n%1\r\n#t\r\n,2\r\n_\r\n", 0, "*2\r\n+k\r\n*2\r\n*2\r\n:1\r\n$1\r\n2\r\n$-1\r\n");
}

Test(resp3, attributes_are_dropped)
{
    /* before the reply */
    CONV("|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$2\r\nok\r\n", 0, "$2\r\nok\r\n");
    /* before an element, with aggregates and an attribute inside */
    CONV("*2\r\n:1\r\n|2\r\n+a\r\n%1\r\n+x\r\n|1\r\n+y\r\n+z\r\n~1\r\n+w\r\n+b\r\n*0\r\n,2\r\n", 0,
         "*2\r\n:1\r\n$1\r\n2\r\n");
    /* several, and empty */
    CONV("|0\r\n|1\r\n+k\r\n+v\r\n#t\r\n", 0, ":1\r\n");
    /* before a push */
    CONV("|1\r\n+k\r\n+v\r\n>1\r\n+pong\r\n", 0, "*1\r\n+pong\r\n");
}

Test(resp3, nulls_with_and_without_null_array)
{
    CONV("_\r\n", RESP3_NULL_ARRAY, "*-1\r\n");
    CONV("*2\r\n_\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n", RESP3_NULL_ARRAY, "*2\r\n*-1\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    CONV("*1\r\n_\r\n", 0, "*1\r\n$-1\r\n");
}

Test(resp3, flat_pairs)
{
    CONV("*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n", RESP3_FLAT_PAIRS,
         "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n2.5\r\n");
    /* an element of a pair that is itself an aggregate, attributes between pairs */
    CONV("*2\r\n*2\r\n*1\r\n:1\r\n:2\r\n|1\r\n+k\r\n+v\r\n*2\r\n:3\r\n%1\r\n:4\r\n:5\r\n", RESP3_FLAT_PAIRS,
         "*4\r\n*1\r\n:1\r\n:2\r\n:3\r\n*2\r\n:4\r\n:5\r\n");
    CONV("*0\r\n", RESP3_FLAT_PAIRS, "*0\r\n");
    CONV("-ERR wrong type\r\n", RESP3_FLAT_PAIRS, "-ERR wrong type\r\n");
    CONV("_\r\n", RESP3_FLAT_PAIRS, "$-1\r\n");
    /* not pairs */
    CONV("*1\r\n*3\r\n:1\r\n:2\r\n:3\r\n", RESP3_FLAT_PAIRS, "EINVAL");
    CONV("*2\r\n*2\r\n:1\r\n:2\r\n:3\r\n", RESP3_FLAT_PAIRS, "EINVAL");
}

Test(resp3, map_pairs)
{
    CONV("%2\r\n+a\r\n*1\r\n:1\r\n+b\r\n*0\r\n", RESP3_MAP_PAIRS,
         "*2\r\n*2\r\n+a\r\n*1\r\n:1\r\n*2\r\n+b\r\n*0\r\n");
    CONV("%1\r\n|1\r\n+x\r\n+y\r\n+a\r\n%1\r\n:1\r\n:2\r\n", RESP3_MAP_PAIRS, "*1\r\n*2\r\n+a\r\n*2\r\n:1\r\n:2\r\n");
    CONV("%0\r\n", RESP3_MAP_PAIRS, "*0\r\n");
    CONV("_\r\n", RESP3_MAP_PAIRS | RESP3_NULL_ARRAY, "*-1\r\n");
}

Test(resp3, incomplete_trailing_or_bad_input_is_einval)
{
    const char *bad[] = {
        "", "_\r", "$3\r\nab", "*2\r\n:1\r\n", "%1\r\n:1\r\n", "|1\r\n+k\r\n+v\r\n", ">1\r\n",
        "_\r\n_\r\n", "+OK\r\n+", "*1\r\n>1\r\n:1\r\n", "|1\r\n>1\r\n:1\r\n:2\r\n:3\r\n",
        "#x\r\n", ",1.\r\n", "=3\r\ntxt\r\n", "!-1\r\n", "*99999999999\r\n:1\r\n", "%4611686018427387903\r\n",
        "~3\r\n:1\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CONV(bad[i], 0, "EINVAL");
}

Test(resp3, error_keeps_what_out_held)
{
    struct buf b = { 0 };
    buf_append_str(&b, "xx+kept\r\n");
    buf_consume(&b, 2);
    cr_assert_eq(resp3_to_resp2(&b, "*2\r\n,1\r\n", 8, 0), -EINVAL);
    cr_assert_eq(buf_unread(&b), 7);
    cr_assert(memcmp(b.data + b.pos, "+kept\r\n", 7) == 0);
    cr_assert_eq(resp3_to_resp2(&b, "#t\r\n", 4, 0), 0);
    cr_assert(memcmp(b.data + b.pos, "+kept\r\n:1\r\n", 11) == 0);
    buf_free(&b);
}

Test(resp3, reads_no_byte_past_its_input)
{
    /* Each prefix of a valid reply, in a buffer of exactly that size. */
    const char *in = "|1\r\n+k\r\n+v\r\n%2\r\n=8\r\ntxt:abcd\r\n~1\r\n,1.5\r\n!2\r\nEE\r\n(99\r\n";
    size_t n = strlen(in);
    for (size_t k = 0; k <= n; k++) {
        char *p = malloc(k ? k : 1);
        memcpy(p, in, k);
        struct buf b = { 0 };
        cr_assert_eq(resp3_to_resp2(&b, p, k, 0), k == n ? 0 : -EINVAL, "prefix %zu", k);
        buf_free(&b);
        free(p);
    }
}

Test(resp3, writers_for_both_protocols)
{
    struct buf b3 = { 0 }, b2 = { 0 };
    for (int proto = 2; proto <= 3; proto++) {
        struct buf *b = proto == 3 ? &b3 : &b2;
        cr_assert_eq(resp3_map(b, proto, 2), 0);
        reply_bulk_str(b, "server");
        reply_bulk_str(b, "redsnano");
        reply_bulk_str(b, "proto");
        reply_integer(b, proto);
        resp3_set(b, proto, 0);
        resp3_push(b, proto, 1);
        reply_bulk_str(b, "x");
        resp3_null(b, proto);
        resp3_double(b, proto, 2.5);
        resp3_double(b, proto, -INFINITY);
        resp3_double(b, proto, 0.1);
        resp3_bool(b, proto, 1);
        resp3_bool(b, proto, 0);
        resp3_bignum(b, proto, "123", 3);
        resp3_verbatim(b, proto, "txt", "hi", 2);
        resp3_blob_error(b, proto, "ERR a\nb", 7);
    }
    const char *w3 = "%2\r\n$6\r\nserver\r\n$8\r\nredsnano\r\n$5\r\nproto\r\n:3\r\n~0\r\n>1\r\n$1\r\nx\r\n_\r\n"
                     ",2.5\r\n,-inf\r\n,0.10000000000000001\r\n#t\r\n#f\r\n(123\r\n=6\r\ntxt:hi\r\n"
                     "!7\r\nERR a\nb\r\n";
    const char *w2 = "*4\r\n$6\r\nserver\r\n$8\r\nredsnano\r\n$5\r\nproto\r\n:2\r\n*0\r\n*1\r\n$1\r\nx\r\n$-1\r\n"
                     "$3\r\n2.5\r\n$4\r\n-inf\r\n$19\r\n0.10000000000000001\r\n:1\r\n:0\r\n$3\r\n123\r\n$2\r\nhi\r\n"
                     "-ERR a b\r\n";
    cr_assert_eq(b3.len, strlen(w3), "%.*s", (int)b3.len, b3.data);
    cr_assert(memcmp(b3.data, w3, b3.len) == 0, "%.*s", (int)b3.len, b3.data);
    cr_assert_eq(b2.len, strlen(w2), "%.*s", (int)b2.len, b2.data);
    cr_assert(memcmp(b2.data, w2, b2.len) == 0, "%.*s", (int)b2.len, b2.data);

    /* What the writers made in RESP3 scans item by item and converts to
     * what they made in RESP2 (apart from HELLO's proto). */
    struct buf c = { 0 };
    struct replyframe f = { 0 };
    size_t off = 0;
    while (off < b3.len) {
        long long l = replyframe_scan(&f, b3.data + off, b3.len - off);
        cr_assert_gt(l, 0);
        cr_assert_eq(resp3_to_resp2(&c, b3.data + off, (size_t)l, 0), 0);
        off += (size_t)l;
    }
    char *proto = memmem(c.data, c.len, "proto\r\n:3", 9);
    cr_assert_not_null(proto);
    proto[8] = '2';
    cr_assert_eq(c.len, b2.len);
    cr_assert(memcmp(c.data, b2.data, c.len) == 0);
    replyframe_free(&f);
    buf_free(&c);
    buf_free(&b3);
    buf_free(&b2);
}

Test(resp3, verbatim_format_cut_or_padded_like_redis)
{
    struct buf b = { 0 };
    resp3_verbatim(&b, 3, "t", "x", 1);
    resp3_verbatim(&b, 3, "abcde", "y", 1);
    const char *want = "=5\r\nt  :x\r\n=5\r\nabc:y\r\n";
    cr_assert_eq(b.len, strlen(want));
    cr_assert(memcmp(b.data, want, b.len) == 0);
    buf_free(&b);
}

Test(resp3, redis_replies_scan_when_cut_at_any_byte)
{
    for (size_t i = 0; i < sizeof(resp3_fixtures) / sizeof(resp3_fixtures[0]); i++) {
        const struct resp3_fixture *fx = &resp3_fixtures[i];
        size_t n = fx->resp3_len;
        char want_type;
        cr_assert(scans_whole(fx->resp3, n, &want_type));
        /* two reads, cut at k */
        for (size_t k = 0; k < n; k++) {
            struct replyframe f = { 0 };
            cr_assert_eq(replyframe_scan(&f, fx->resp3, k), 0, "%s: cut at %zu", fx->cmd, k);
            cr_assert_eq(replyframe_scan(&f, fx->resp3, n), (long long)n, "%s: cut at %zu", fx->cmd, k);
            cr_assert_eq(f.type, want_type);
            replyframe_free(&f);
        }
        /* one byte per read */
        struct replyframe f = { 0 };
        for (size_t k = 1; k < n; k++)
            cr_assert_eq(replyframe_scan(&f, fx->resp3, k), 0, "%s: %zu bytes", fx->cmd, k);
        cr_assert_eq(replyframe_scan(&f, fx->resp3, n), (long long)n);
        cr_assert_eq(replyframe_is_push(&f), fx->resp3[0] == '>');
        replyframe_free(&f);
    }
}

/* Split a fixture's command line into argv (no '|' arguments). */
static int fixture_argv(const char *cmd, char *copy, size_t cap, const char **argv, int max)
{
    int argc = 0;
    snprintf(copy, cap, "%s", cmd);
    for (char *tok = strtok(copy, " "); tok && argc < max; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    return argc;
}

/* resp3_from_resp2, with the shape from the command table, turns what Redis
 * sends a RESP2 client into what it sends a RESP3 client, for every recorded
 * reply of a command the L1 may cache and of every command with a shape. */
Test(resp3, from_resp2_matches_redis_for_the_l1_commands)
{
    static const char *const l1_cmds[] = { "get", "hget", "hgetall", "lrange", "smembers", "zrange" };
    int checked = 0;

    for (size_t i = 0; i < sizeof(resp3_fixtures) / sizeof(resp3_fixtures[0]); i++) {
        const struct resp3_fixture *fx = &resp3_fixtures[i];
        char copy[512];
        const char *argv[32];
        if (strchr(fx->cmd, '|'))
            continue;
        int argc = fixture_argv(fx->cmd, copy, sizeof(copy), argv, 32);
        const struct cmd *c = cmd_lookup_argv(argc, argv, NULL);
        int l1 = 0;
        for (size_t k = 0; c && k < sizeof(l1_cmds) / sizeof(l1_cmds[0]); k++)
            l1 |= strcmp(c->name, l1_cmds[k]) == 0;
        if (c == NULL || (!l1 && c->resp3 == 0))
            continue;
        struct buf out = { 0 };
        int rc = resp3_from_resp2(&out, fx->resp2, fx->resp2_len, cmd_resp3_shape(c, argc, argv, NULL));
        cr_assert_eq(rc, 0, "%s: %d", fx->cmd, rc);
        cr_assert(out.len == fx->resp3_len && memcmp(out.data, fx->resp3, out.len) == 0,
                  "%s: got %.*s wanted %s", fx->cmd, (int)out.len, out.data, fx->resp3);
        buf_free(&out);
        checked++;
    }
    cr_assert_geq(checked, 12, "only %d recorded replies checked", checked);
}

Test(resp3, from_resp2_refuses_what_is_not_one_reply_of_the_shape)
{
    struct buf out = { 0 };
    buf_append(&out, "x", 1);
    cr_assert_eq(resp3_from_resp2(&out, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", 25, RESP3_UP_MAP), -EINVAL);
    cr_assert_eq(resp3_from_resp2(&out, "*2\r\n$1\r\na\r\n:1\r\n", 15, RESP3_UP_PAIRS), -EINVAL);
    cr_assert_eq(resp3_from_resp2(&out, "$-1\r\n$-1\r\n", 10, 0), -EINVAL);
    cr_assert_eq(resp3_from_resp2(&out, "", 0, 0), -EINVAL);
    cr_assert_eq(out.len, 1, "out is unchanged after a refusal");
    cr_assert_eq(resp3_from_resp2(&out, "-ERR x\r\n", 8, RESP3_UP_MAP), 0);
    cr_assert(out.len == 9 && memcmp(out.data + 1, "-ERR x\r\n", 8) == 0);
    buf_free(&out);
}
