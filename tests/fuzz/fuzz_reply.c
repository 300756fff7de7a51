/*
 * tests/fuzz/fuzz_reply.c — libFuzzer target for replyframe_scan (protocol/reply.c)
 * and resp3_to_resp2 (protocol/resp3.c).
 *
 *   fuzz input = [nsplit][split sizes ...][server bytes ...]
 *
 * The server bytes (RESP2 or RESP3) are scanned three ways: in one piece,
 * in reads of the chosen sizes (cycled) fed as backends/server.c does (scan
 * the unread bytes, consume each complete reply, compact before the next
 * read), and by a small recursive reference scanner written here. Each
 * scan call sees a buffer malloc'ed at exactly its length, so a read past
 * it is an ASan report.
 *
 * Checked: every reply length is > 0 and <= the bytes given; the three
 * give the same reply lengths, types, attribute lengths and the same final
 * outcome (need more bytes, or not RESP).
 *
 * The converter: each complete reply, in a buffer of exactly its size, is
 * converted with flags 0 (must succeed) and with flags taken from the
 * split byte (may refuse non-pairs only under RESP3_FLAT_PAIRS); the output
 * must be one complete reply holding RESP2 types only, and converting it
 * again must give it back unchanged. The whole input is also converted as
 * if it were one reply: it must succeed exactly when the reference says
 * the input is one complete reply.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/reply.h"
#include "protocol/resp3.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_MAX_SPLITS 16
#define FUZZ_MAX_REPLIES 4096

/* Reply lengths one scan produced. */
struct outcome {
    long long lens[FUZZ_MAX_REPLIES]; /* length of each complete reply, in order */
    size_t attrs[FUZZ_MAX_REPLIES];   /* bytes of attributes before each */
    char types[FUZZ_MAX_REPLIES];     /* type byte of each */
    int n;                            /* replies found */
    int rc;                           /* final status: 0 (more bytes needed) or -1 (not RESP) */
};

static void die(const char *what)
{
    fprintf(stderr, "fuzz_reply: invariant failed: %s\n", what);
    abort();
}

static void add(struct outcome *o, long long len, char type, size_t attr)
{
    if (o->n >= FUZZ_MAX_REPLIES)
        die("too many replies");
    o->types[o->n] = type;
    o->attrs[o->n] = attr;
    o->lens[o->n++] = len;
}

/* ---- reference: recursive, restarts from scratch ------------------------ */

/* Strict "[-]digits" in [p, cr), at most 19 digits, in [-2^63, 2^63). */
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
    if (neg ? v > (unsigned long long)INT64_MAX + 1 : v > (unsigned long long)INT64_MAX)
        return -1;
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

static int digits(const char *s, size_t n, size_t *i)
{
    size_t from = *i;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9')
        (*i)++;
    return *i > from;
}

/* RESP3 double: inf, -inf, nan, -nan, or [+-]D[.D][(e|E)[+-]D]. */
static int ref_double(const char *s, size_t n)
{
    static const char *const words[] = { "inf", "-inf", "nan", "-nan" };
    for (int w = 0; w < 4; w++)
        if (n == strlen(words[w]) && memcmp(s, words[w], n) == 0)
            return 1;
    size_t i = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    if (!digits(s, n, &i))
        return 0;
    if (i < n && s[i] == '.' && (++i, !digits(s, n, &i)))
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!digits(s, n, &i))
            return 0;
    }
    return i == n;
}

static long long ref_value(const char *p, size_t len, int depth, char *type, size_t *attr);

/* Length of the item (not an attribute) at p[0, len): > 0, 0 (incomplete)
 * or -1 (invalid). depth = enclosing aggregates. */
static long long ref_item(const char *p, size_t len, int depth)
{
    const char *cr = len ? memchr(p, '\r', len) : NULL;
    if (cr == NULL || (size_t)(cr - p) + 1 >= len)
        return 0;
    if (cr[1] != '\n')
        return -1;
    size_t next = (size_t)(cr - p) + 2;
    size_t linelen = (size_t)(cr - p) - 1;
    long long n, elems;
    char t;
    size_t a;

    switch (p[0]) {
    case '+':
    case '-':
    case '(':
        return (long long)next;
    case ':':
        return ref_int(p + 1, cr, &n) == 0 ? (long long)next : -1;
    case '_':
        return linelen == 0 ? (long long)next : -1;
    case '#':
        return linelen == 1 && (p[1] == 't' || p[1] == 'f') ? (long long)next : -1;
    case ',':
        return ref_double(p + 1, linelen) ? (long long)next : -1;
    case '$':
    case '!':
    case '=':
        if (ref_int(p + 1, cr, &n) != 0)
            return -1;
        if (n == -1 && p[0] == '$')
            return (long long)next;
        if (n < 0 || (p[0] == '=' && n < 4))
            return -1;
        if (len - next < (size_t)n + 2)
            return 0;
        if (p[next + (size_t)n] != '\r' || p[next + (size_t)n + 1] != '\n')
            return -1;
        if (p[0] == '=' && p[next + 3] != ':')
            return -1;
        return (long long)(next + (size_t)n + 2);
    case '>':
        if (depth > 0)
            return -1;
        /* fall through */
    case '*':
    case '~':
    case '%':
        if (ref_int(p + 1, cr, &n) != 0)
            return -1;
        if (p[0] == '*' && n == -1)
            return (long long)next;
        if (n < (p[0] == '>' ? 1 : 0))
            return -1;
        if (p[0] == '%' && n > INT64_MAX / 2)
            return -1;
        elems = p[0] == '%' ? 2 * n : n;
        if (elems > 0 && depth >= REPLY_MAX_DEPTH)
            return -1;
        for (long long i = 0; i < elems; i++) {
            long long l = ref_value(p + next, len - next, depth + 1, &t, &a);
            if (l <= 0)
                return l;
            next += (size_t)l;
        }
        return (long long)next;
    default:
        return -1;
    }
}

/* Attributes, then the item they describe: its length, its type, the
 * attributes' length. */
static long long ref_value(const char *p, size_t len, int depth, char *type, size_t *attr)
{
    size_t off = 0;
    char t;
    size_t a;

    while (off < len && p[off] == '|') {
        const char *cr = memchr(p + off, '\r', len - off);
        long long n;
        if (cr == NULL || (size_t)(cr - p) + 1 >= len)
            return 0;
        if (cr[1] != '\n')
            return -1;
        if (ref_int(p + off + 1, cr, &n) != 0 || n < 0 || n > INT64_MAX / 2)
            return -1;
        off = (size_t)(cr - p) + 2;
        if (n > 0 && depth >= REPLY_MAX_DEPTH)
            return -1;
        for (long long i = 0; i < 2 * n; i++) {
            long long l = ref_value(p + off, len - off, depth + 1, &t, &a);
            if (l <= 0)
                return l;
            off += (size_t)l;
        }
    }
    if (off >= len)
        return 0;
    *type = p[off];
    *attr = off;
    long long l = ref_item(p + off, len - off, depth);
    return l <= 0 ? l : (long long)off + l;
}

static void scan_ref(struct outcome *o, const char *in, size_t len)
{
    size_t off = 0;

    memset(o, 0, sizeof(*o));
    for (;;) {
        char type = 0;
        size_t attr = 0;
        long long l = off < len ? ref_value(in + off, len - off, 0, &type, &attr) : 0;
        if (l <= 0) {
            o->rc = (int)l;
            return;
        }
        add(o, l, type, attr);
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
            add(o, l, f.type, f.attr);
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

/* ---- the converter ------------------------------------------------------ */

/* p[0, n) is exactly one complete reply made of RESP2 types only. */
static int is_one_resp2_reply(const char *p, size_t n)
{
    struct replyframe f = { 0 };
    long long l = replyframe_scan(&f, p, n);
    replyframe_free(&f);
    if (l != (long long)n)
        return 0;
    /* Walk the items: every type byte must be a RESP2 one. */
    size_t off = 0;
    while (off < n) {
        struct reply_item it;
        long long k = reply_item_parse(p + off, n - off, &it);
        if (k <= 0 || strchr("+-:$*", it.type) == NULL)
            return 0;
        off += (size_t)k;
    }
    return 1;
}

/* Convert in[0, n) (exactly malloc'ed) with flags; returns the rc and
 * checks the output. */
static int convert_checked(const char *in, size_t n, unsigned flags)
{
    char *p = malloc(n ? n : 1);
    struct buf out = { 0 };
    if (p == NULL)
        abort();
    memcpy(p, in, n);
    int rc = resp3_to_resp2(&out, p, n, flags);
    if (rc != 0 && rc != -EINVAL)
        die("resp3_to_resp2 returned neither 0 nor -EINVAL");
    if (rc != 0 && buf_unread(&out) != 0)
        die("resp3_to_resp2 left output after an error");
    if (rc == 0) {
        char *o = malloc(buf_unread(&out) ? buf_unread(&out) : 1);
        if (o == NULL)
            abort();
        size_t on = buf_unread(&out);
        memcpy(o, out.data + out.pos, on);
        if (!is_one_resp2_reply(o, on))
            die("converted reply is not one RESP2 reply");
        struct buf again = { 0 };
        if (resp3_to_resp2(&again, o, on, 0) != 0 || buf_unread(&again) != on ||
            memcmp(again.data + again.pos, o, on) != 0)
            die("converting a RESP2 reply changed it");
        buf_free(&again);
        free(o);
    }
    buf_free(&out);
    free(p);
    return rc;
}

static void check_converter(const struct outcome *whole, const char *in, size_t inlen, unsigned flags,
                            const struct outcome *ref)
{
    size_t off = 0;
    for (int i = 0; i < whole->n; i++) {
        size_t n = (size_t)whole->lens[i];
        if (convert_checked(in + off, n, 0) != 0)
            die("a framed reply does not convert");
        int rc = convert_checked(in + off, n, flags);
        if (rc != 0 && !((flags & RESP3_FLAT_PAIRS) && whole->types[i] == '*'))
            die("a framed reply does not convert with flags");
        off += n;
    }
    /* The input as one reply: converts iff it is exactly one reply. */
    int one = ref->n == 1 && (size_t)ref->lens[0] == inlen;
    if ((convert_checked(in, inlen, 0) == 0) != one)
        die("converter and reference disagree on whether the input is one reply");
}

static void compare(const struct outcome *a, const struct outcome *b, const char *what)
{
    if (a->n != b->n || a->rc != b->rc || memcmp(a->lens, b->lens, (size_t)a->n * sizeof(a->lens[0])) != 0 ||
        memcmp(a->types, b->types, (size_t)a->n) != 0 ||
        memcmp(a->attrs, b->attrs, (size_t)a->n * sizeof(a->attrs[0])) != 0) {
        fprintf(stderr, "%s: %d replies rc %d vs %d replies rc %d\n", what, a->n, a->rc, b->n, b->rc);
        for (int i = 0; i < a->n || i < b->n; i++)
            fprintf(stderr, "  [%d] %lld %c %zu vs %lld %c %zu\n", i, i < a->n ? a->lens[i] : -9,
                    i < a->n ? a->types[i] : '?', i < a->n ? a->attrs[i] : 0, i < b->n ? b->lens[i] : -9,
                    i < b->n ? b->types[i] : '?', i < b->n ? b->attrs[i] : 0);
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

    unsigned flags = nsplit ? splits[0] & (RESP3_NULL_ARRAY | RESP3_FLAT_PAIRS | RESP3_MAP_PAIRS) : 0;
    check_converter(&whole, (const char *)in, inlen, flags, &ref);
    return 0;
}
