/*
 * tests/fuzz/fuzz_reply.c — libFuzzer target for replyframe_scan (protocol/reply.c).
 *
 *   fuzz input = [nsplit][split sizes ...][server bytes ...]
 *
 * The server bytes are scanned three ways: in one piece, in reads of the
 * chosen sizes (cycled) fed as backends/server.c does (scan the unread
 * bytes, consume each complete reply, compact before the next read), and
 * by a small recursive reference scanner written here. Each scan call sees
 * a buffer malloc'ed at exactly its length, so a read past it is an ASan
 * report.
 *
 * Checked: every reply length is > 0 and <= the bytes given; the three
 * give the same reply lengths and the same final outcome (need more bytes,
 * or not RESP).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/reply.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_MAX_SPLITS 16
#define FUZZ_MAX_REPLIES 4096

/* Reply lengths one scan produced. */
struct outcome {
    long long lens[FUZZ_MAX_REPLIES]; /* length of each complete reply, in order */
    int n;                            /* replies found */
    int rc;                           /* final status: 0 (more bytes needed) or -1 (not RESP) */
};

static void die(const char *what)
{
    fprintf(stderr, "fuzz_reply: invariant failed: %s\n", what);
    abort();
}

static void add(struct outcome *o, long long len)
{
    if (o->n >= FUZZ_MAX_REPLIES)
        die("too many replies");
    o->lens[o->n++] = len;
}

/* ---- reference: recursive, restarts from scratch ------------------------ */

/* Strict "[-]digits" in [p, cr), at most 19 digits, value in long long. */
static int ref_int(const char *p, const char *cr, long long *out)
{
    int neg = 0;
    unsigned long long v = 0;

    if (p < cr && *p == '-') {
        neg = 1;
        p++;
    }
    if (p == cr || cr - p > 19)
        return -1;
    for (; p < cr; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > (unsigned long long)INT64_MAX)
        return neg ? -2 : -2;          /* out of range: caller decides */
    *out = neg ? -(long long)v : (long long)v;
    return 0;
}

/* Length of the item at p[0, len): > 0, 0 (incomplete) or -1 (invalid). */
static long long ref_item(const char *p, size_t len, int depth)
{
    const char *cr = len ? memchr(p, '\r', len) : NULL;
    if (cr == NULL || (size_t)(cr - p) + 1 >= len)
        return 0;
    if (cr[1] != '\n')
        return -1;
    size_t next = (size_t)(cr - p) + 2;
    long long n;
    int rc;

    switch (p[0]) {
    case '+':
    case '-':
        return (long long)next;
    case ':':
        rc = ref_int(p + 1, cr, &n);
        return rc == -1 ? -1 : (long long)next;   /* out-of-range integers: value unused */
    case '$':
        if (ref_int(p + 1, cr, &n) != 0 || n < -1)
            return -1;
        if (n == -1)
            return (long long)next;
        if (len - next < (size_t)n + 2)
            return 0;
        if (p[next + (size_t)n] != '\r' || p[next + (size_t)n + 1] != '\n')
            return -1;
        return (long long)(next + (size_t)n + 2);
    case '*':
        if (ref_int(p + 1, cr, &n) != 0 || n < -1)
            return -1;
        if (n > 0 && depth >= REPLY_MAX_DEPTH)
            return -1;
        for (long long i = 0; i < n; i++) {
            long long l = ref_item(p + next, len - next, depth + 1);
            if (l <= 0)
                return l;
            next += (size_t)l;
        }
        return (long long)next;
    default:
        return -1;
    }
}

static void scan_ref(struct outcome *o, const char *in, size_t len)
{
    size_t off = 0;

    memset(o, 0, sizeof(*o));
    for (;;) {
        long long l = off < len ? ref_item(in + off, len - off, 0) : 0;
        if (l <= 0) {
            o->rc = (int)l;
            return;
        }
        add(o, l);
        off += (size_t)l;
    }
}

/* ---- the scanner under test, fed as backends/server.c does -------------- */

static void scan(struct outcome *o, const uint8_t *in, size_t inlen, const uint8_t *splits, size_t nsplit)
{
    struct replyframe f = { 0 };
    char *have = NULL;                /* unread bytes, exactly malloc'ed */
    size_t havelen = 0;
    size_t off = 0, k = 0;

    memset(o, 0, sizeof(*o));
    while (off < inlen) {
        size_t n = nsplit ? (size_t)splits[k++ % nsplit] + 1 : inlen;
        if (n > inlen - off)
            n = inlen - off;
        char *nb = malloc(havelen + n);
        if (nb == NULL)
            abort();
        if (havelen)
            memcpy(nb, have, havelen);
        memcpy(nb + havelen, in + off, n);
        free(have);
        have = nb;
        havelen += n;
        off += n;

        size_t pos = 0;
        while (pos < havelen) {
            long long l = replyframe_scan(&f, have + pos, havelen - pos);
            if (l == 0)
                break;
            if (l < 0) {
                if (l != -1)
                    die("replyframe_scan returned a negative other than -1");
                o->rc = -1;
                goto out;
            }
            if ((unsigned long long)l > havelen - pos)
                die("reply length exceeds the bytes given");
            add(o, l);
            pos += (size_t)l;
        }
        /* Consume and compact, as buf_consume + buf_reserve do. */
        if (pos) {
            size_t rest = havelen - pos;
            char *cb = rest ? malloc(rest) : NULL;
            if (rest && cb == NULL)
                abort();
            if (rest)
                memcpy(cb, have + pos, rest);
            free(have);
            have = cb;
            havelen = rest;
        }
    }
    o->rc = 0;
out:
    free(have);
    replyframe_free(&f);
}

static void compare(const struct outcome *a, const struct outcome *b, const char *what)
{
    if (a->n != b->n || a->rc != b->rc || memcmp(a->lens, b->lens, (size_t)a->n * sizeof(a->lens[0])) != 0) {
        fprintf(stderr, "%s: %d replies rc %d vs %d replies rc %d\n", what, a->n, a->rc, b->n, b->rc);
        for (int i = 0; i < a->n || i < b->n; i++)
            fprintf(stderr, "  [%d] %lld vs %lld\n", i, i < a->n ? a->lens[i] : -9, i < b->n ? b->lens[i] : -9);
        die(what);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct outcome whole, split, ref;

    if (size < 1)
        return 0;
    size_t nsplit = data[0] % (FUZZ_MAX_SPLITS + 1);
    if (size < 1 + nsplit)
        return 0;
    const uint8_t *splits = data + 1;
    const uint8_t *in = data + 1 + nsplit;
    size_t inlen = size - 1 - nsplit;

    scan(&whole, in, inlen, NULL, 0);
    scan(&split, in, inlen, splits, nsplit);
    compare(&whole, &split, "split scan differs from whole scan");

    char *copy = malloc(inlen ? inlen : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, in, inlen);
    scan_ref(&ref, copy, inlen);
    free(copy);
    compare(&whole, &ref, "scanner differs from the reference");
    return 0;
}
