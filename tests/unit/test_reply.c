/*
 * tests/unit/test_reply.c — the reply scanner: every split, deep nesting, bad bytes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/info.h"
#include "protocol/reply.h"

#include <hiredis/hiredis.h>

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

/* ---- RESP3 ------------------------------------------------------------- */

/* Scan `in` whole; return the first reply's length and the scanner's view. */
static long long scan_one(const char *in, char *type, size_t *attr)
{
    struct replyframe f = { 0 };
    long long n = replyframe_scan(&f, in, strlen(in));
    if (type)
        *type = f.type;
    if (attr)
        *attr = f.attr;
    replyframe_free(&f);
    return n;
}

Test(reply, every_resp3_type_at_every_split)
{
    const char *in =
        "_\r\n"                                       /* 3 */
        ",3.14\r\n,inf\r\n,-inf\r\n,nan\r\n,-nan\r\n" /* 7, 6, 7, 6, 7 */
        ",-1.5e-07\r\n,1E+300\r\n,10\r\n"             /* 11, 9, 5 */
        "#t\r\n#f\r\n"                                /* 4, 4 */
        "(12345678901234567890123\r\n"                /* 26 */
        "!21\r\nSYNTAX invalid syntax\r\n"            /* 28 */
        "=15\r\ntxt:Some string\r\n"                  /* 22 */
        "%2\r\n+a\r\n:1\r\n+b\r\n#f\r\n"              /* 20 */
        "~3\r\n:1\r\n:2\r\n:3\r\n"                    /* 16 */
        "%0\r\n~0\r\n"                                /* 4, 4 */
        ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"; /* 33 */
    for (size_t step = 1; step <= strlen(in); step++) {
        char out[512];
        scan_all(in, strlen(in), step, out);
        cr_assert_str_eq(out, "3,7,6,7,6,7,11,9,5,4,4,26,28,22,20,16,4,4,33,", "step %zu: %s", step, out);
    }
}

Test(reply, type_of_each_reply_is_reported)
{
    const struct { const char *in; char type; } cases[] = {
        { "+OK\r\n", '+' }, { "$-1\r\n", '$' }, { "*1\r\n:1\r\n", '*' }, { "_\r\n", '_' },
        { ",1\r\n", ',' }, { "#t\r\n", '#' }, { "(1\r\n", '(' }, { "!1\r\nx\r\n", '!' },
        { "=5\r\ntxt:x\r\n", '=' }, { "%1\r\n:1\r\n:2\r\n", '%' }, { "~0\r\n", '~' },
        { ">1\r\n+pong\r\n", '>' },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char type;
        size_t attr;
        cr_assert_eq(scan_one(cases[i].in, &type, &attr), (long long)strlen(cases[i].in), "%s", cases[i].in);
        cr_assert_eq(type, cases[i].type, "%s", cases[i].in);
        cr_assert_eq(attr, 0);
    }
}

Test(reply, push_is_flagged_and_a_request_reply_is_not)
{
    struct replyframe f = { 0 };
    const char *in = ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n+OK\r\n";
    cr_assert_eq(replyframe_scan(&f, in, strlen(in)), 33);
    cr_assert(replyframe_is_push(&f));
    cr_assert_eq(replyframe_scan(&f, in + 33, strlen(in) - 33), 5);
    cr_assert(!replyframe_is_push(&f));
    replyframe_free(&f);
}

Test(reply, push_inside_an_aggregate_is_an_error)
{
    cr_assert_eq(scan_one("*1\r\n>1\r\n:1\r\n", NULL, NULL), -1);
    cr_assert_eq(scan_one("%1\r\n>1\r\n:1\r\n:2\r\n", NULL, NULL), -1);
    cr_assert_eq(scan_one("|1\r\n>1\r\n:1\r\n:2\r\n:3\r\n", NULL, NULL), -1);
}

Test(reply, attribute_is_framed_with_the_reply_after_it)
{
    /* DEBUG PROTOCOL attrib, as Redis 7.0 sends it */
    const char *in = "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n"
                     "$39\r\nSome real reply following the attribute\r\n";
    for (size_t step = 1; step <= strlen(in); step++) {
        char out[64];
        scan_all(in, strlen(in), step, out);
        cr_assert_str_eq(out, "93,", "step %zu: %s", step, out);
    }
    char type;
    size_t attr;
    cr_assert_eq(scan_one(in, &type, &attr), 93);
    cr_assert_eq(type, '$');
    cr_assert_eq(attr, 47);
}

Test(reply, attribute_alone_is_not_a_reply)
{
    cr_assert_eq(scan_one("|1\r\n+a\r\n+b\r\n", NULL, NULL), 0);
    cr_assert_eq(scan_one("|0\r\n", NULL, NULL), 0);
}

Test(reply, several_and_nested_attributes_before_a_reply)
{
    char type;
    size_t attr;
    /* two attributes, the first with an attribute on its value */
    const char *in = "|1\r\n+k\r\n|1\r\n+x\r\n+y\r\n+v\r\n|0\r\n:7\r\n";
    cr_assert_eq(scan_one(in, &type, &attr), (long long)strlen(in));
    cr_assert_eq(type, ':');
    cr_assert_eq(attr, strlen(in) - 4);
}

Test(reply, attribute_inside_an_aggregate_is_not_an_element)
{
    /* *2 holds :1 and :2; the attribute describes :2 */
    const char *in = "*2\r\n:1\r\n|1\r\n+ttl\r\n:3\r\n:2\r\n+next\r\n";
    char out[64];
    for (size_t step = 1; step <= strlen(in); step++) {
        scan_all(in, strlen(in), step, out);
        cr_assert_str_eq(out, "26,7,", "step %zu: %s", step, out);
    }
    /* an attribute as the last thing in an array still leaves it open */
    cr_assert_eq(scan_one("*1\r\n|1\r\n+a\r\n+b\r\n", NULL, NULL), 0);
    /* an attribute inside a map value, inside a push */
    const char *p = ">2\r\n+k\r\n%1\r\n+a\r\n|1\r\n+b\r\n+c\r\n#t\r\n";
    char type;
    cr_assert_eq(scan_one(p, &type, NULL), (long long)strlen(p));
    cr_assert_eq(type, '>');
}

Test(reply, deep_resp3_nesting_at_every_split)
{
    char in[4096] = "";
    for (int i = 0; i < 60; i++)
        strcat(in, i % 3 == 0 ? "%1\r\n_\r\n" : i % 3 == 1 ? "~1\r\n" : "|1\r\n#t\r\n#f\r\n*1\r\n");
    strcat(in, ",0.5\r\n");
    char want[32];
    snprintf(want, sizeof(want), "%zu,", strlen(in));
    for (size_t step = 1; step <= 40; step++) {
        char out[64];
        scan_all(in, strlen(in), step, out);
        cr_assert_str_eq(out, want, "step %zu", step);
    }
}

Test(reply, resp3_depth_limit_holds)
{
    size_t n = REPLY_MAX_DEPTH + 1;
    char *in = malloc(n * 4 + 8);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(in + o, "~1\r\n");
    o += (size_t)sprintf(in + o, "_\r\n");
    struct replyframe f = { 0 };
    cr_assert_eq(replyframe_scan(&f, in, o), -1);
    replyframe_free(&f);
    free(in);
}

Test(reply, bad_resp3_is_an_error)
{
    const char *bad[] = {
        "_x\r\n", "_ \r\n",                                    /* null has no payload */
        "#\r\n", "#T\r\n", "#tt\r\n", "#1\r\n", "#x\r\n",      /* booleans */
        ",\r\n", ",1.\r\n", ",.5\r\n", ",1e\r\n", ",1e+\r\n", ",abc\r\n", ",1.2.3\r\n",
        ",inf \r\n", ",Inf\r\n", ",+inf\r\n", ",infinity\r\n", ",1x\r\n", ",--1\r\n", ",-\r\n",
        "!-1\r\n", "!x\r\n", "!3\r\nabcd\r\n", "!1\r\nab\r\n",   /* blob errors */
        "=3\r\ntxt\r\n", "=4\r\ntxt;\r\n", "=5\r\ntxt:ab\r\n", "=-1\r\n", "=0\r\n\r\n",
        "%-1\r\n", "%x\r\n", "%4611686018427387904\r\n", "~-1\r\n", "|-1\r\n", ">0\r\n", ">-1\r\n",
        "$?\r\n", "*?\r\n", "~?\r\n",                           /* streamed: never sent */
        "%1\r\n:1\r\n#x\r\n", "~1\r\n,one\r\n", "|1\r\n#y\r\n+v\r\n:1\r\n",
        "@\r\n", "?\r\n", ";3\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(scan_one(bad[i], NULL, NULL), -1, "%s", bad[i]);
}

Test(reply, good_edge_resp3_is_accepted)
{
    const char *good[] = {
        ",0\r\n", ",-0\r\n", ",+1\r\n", ",1.5E-3\r\n", ",1e5\r\n", ",00.10\r\n",
        "(\r\n", "(12ab  x\r\n",                               /* Lua big_number, see reply.h */
        "!0\r\n\r\n", "=4\r\ntxt:\r\n", "=8\r\nabc:x\r\ny\r\n",
        "%4611686018427387903\r\n",                             /* valid header: needs more */
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert_geq(scan_one(good[i], NULL, NULL), 0, "%s", good[i]);
}

Test(reply, item_parse_reads_one_item)
{
    struct reply_item it;
    cr_assert_eq(reply_item_parse("=15\r\ntxt:Some string\r\n", 22, &it), 22);
    cr_assert_eq(it.type, '=');
    cr_assert_eq(it.n, 15);
    cr_assert_eq(it.slen, 15);
    cr_assert(memcmp(it.s, "txt:Some string", 15) == 0);
    cr_assert_eq(reply_item_parse("%2\r\n+a\r\n", 8, &it), 4);
    cr_assert_eq(it.n, 4);
    cr_assert_eq(reply_item_parse("#f\r\n", 4, &it), 4);
    cr_assert_eq(it.n, 0);
    cr_assert_eq(reply_item_parse("$3\r\nab", 6, &it), 0);
    cr_assert_eq(reply_item_parse(",x\r\n", 4, &it), -1);
    cr_assert_eq(reply_item_parse("", 0, &it), 0);
}

/* MGET answered in parts: split each part, join the elements in request order. */
Test(reply, array_split_and_join_merge_parts_in_order)
{
    const char *a = "*2\r\n$1\r\nx\r\n$-1\r\n";          /* keys 0 and 2 */
    const char *b = "*2\r\n*1\r\n:7\r\n$3\r\nyyy\r\n";   /* keys 1 and 3 (an aggregate element too) */
    struct reply_span ea[2], eb[2], all[4];
    cr_assert_eq(reply_array_split(a, strlen(a), ea, 2), 2);
    cr_assert_eq(reply_array_split(b, strlen(b), eb, 2), 2);
    cr_assert_eq(eb[0].len, 8u);
    all[0] = ea[0];
    all[1] = eb[0];
    all[2] = ea[1];
    all[3] = eb[1];
    struct buf out = { 0 };
    cr_assert_eq(reply_array_join(&out, all, 4), 0);
    const char *want = "*4\r\n$1\r\nx\r\n*1\r\n:7\r\n$-1\r\n$3\r\nyyy\r\n";
    cr_assert_eq(out.len, strlen(want));
    cr_assert(memcmp(out.data, want, out.len) == 0);
    buf_free(&out);
    /* max smaller than N: counted, not written past max. */
    cr_assert_eq(reply_array_split(a, strlen(a), ea, 1), 2);
}

Test(reply, array_split_refuses_what_is_not_one_array)
{
    struct reply_span el[4];
    const char *bad[] = {
        "-ERR no\r\n", "*-1\r\n", "$1\r\nx\r\n", "*2\r\n$1\r\nx\r\n",       /* error, nil array, bulk, short */
        "*1\r\n$1\r\nx\r\n:1\r\n", "*1\r\n$1\r\nx", "*1\r\n>1\r\n:1\r\n",    /* trailing, cut, push inside */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(reply_array_split(bad[i], strlen(bad[i]), el, 4), -1, "accepted %s", bad[i]);
    cr_assert_eq(reply_array_split("*0\r\n", 4, el, 4), 0);
}

/* protocol/info.h: the control queries' replies. */
Test(reply, info_fields_and_slave_lines_are_read_within_their_bounds)
{
    const char info[] = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n"
                        "slave0:ip=127.0.0.1,port=7001,state=online,offset=4242,lag=0\r\n"
                        "master_repl_offset:5000\r\nrepl_backlog_size:x";
    size_t len = sizeof(info) - 1;
    char v[64];

    cr_assert_eq(info_number(info, len, "master_repl_offset"), 5000);
    cr_assert_eq(info_number(info, len, "repl_backlog_size"), -1);       /* not a number */
    cr_assert_eq(info_number(info, len, "master"), -1);                  /* a prefix of a name is not it */
    size_t cut = (size_t)(strstr(info, "master_repl_offset") - info) + 10;
    cr_assert_eq(info_number(info, cut, "master_repl_offset"), -1);      /* past len: not read */
    cr_assert_eq(info_field(info, len, "slave0", v, sizeof(v)), 0);
    cr_assert_str_eq(v, "ip=127.0.0.1,port=7001,state=online,offset=4242,lag=0");
    char s[16];
    cr_assert_eq(info_kv(v, "state", s, sizeof(s)), 0);
    cr_assert_str_eq(s, "online");
    cr_assert_eq(info_kv(v, "lag", s, sizeof(s)), 0);
    cr_assert_str_eq(s, "0");
    cr_assert_eq(info_kv(v, "ip", s, 4), 0);                            /* truncated to cap */
    cr_assert_str_eq(s, "127");
    cr_assert_eq(info_kv(v, "of", s, sizeof(s)), -1);
    cr_assert_eq(info_field(info, len, "slave1", v, sizeof(v)), -1);

    redisReply *r = reply_object("*2\r\n$1\r\na\r\n:1\r\n", 15);
    cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    freeReplyObject(r);
    cr_assert_null(reply_object("*2\r\n$1\r\na\r\n", 11));              /* not complete */
}
