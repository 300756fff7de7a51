/*
 * protocol/reply.c — resumable RESP2/RESP3 reply scanner and reply writers.
 *
 *   server bytes -> replyframe_scan -> (length, type, attr) -> backends/
 *                        |
 *                        +-- RESP3 types: item_parse (also reply_item_parse,
 *                            which protocol/resp3.c walks a reply with)
 */
#include "protocol/reply.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse "[-]digits\r" strictly; returns 0 or -1. */
static int scan_int(const char *p, const char *cr, long long *out)
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
    /* 19 digits fit in 64 bits unsigned; the signed range is checked here
     * (LLONG_MIN itself is a valid INCRBY result). */
    if (v > (unsigned long long)LLONG_MAX + (unsigned)neg)
        return -1;
    *out = neg ? (v ? -(long long)(v - 1) - 1 : 0) : (long long)v;
    return 0;
}

/* A double as RESP3 allows it and Redis 7 prints it (%.17g, which gives
 * "inf", "-inf", "nan", "-nan"): [+-]digits[.digits][(e|E)[+-]digits].
 * Returns 0 or -1. */
static int scan_double(const char *p, const char *cr)
{
    size_t n = (size_t)(cr - p);
    const char *d;

    if ((n == 3 && (memcmp(p, "inf", 3) == 0 || memcmp(p, "nan", 3) == 0)) ||
        (n == 4 && (memcmp(p, "-inf", 4) == 0 || memcmp(p, "-nan", 4) == 0)))
        return 0;
    if (p < cr && (*p == '-' || *p == '+'))
        p++;
    for (d = p; p < cr && *p >= '0' && *p <= '9'; p++)
        ;
    if (p == d)
        return -1;
    if (p < cr && *p == '.') {
        for (d = ++p; p < cr && *p >= '0' && *p <= '9'; p++)
            ;
        if (p == d)
            return -1;
    }
    if (p < cr && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < cr && (*p == '-' || *p == '+'))
            p++;
        for (d = p; p < cr && *p >= '0' && *p <= '9'; p++)
            ;
        if (p == d)
            return -1;
    }
    return p == cr ? 0 : -1;
}

/* The item whose header line is item[0, cr) + CRLF; end is where the bytes
 * stop. Returns the item's own length from item (blobs: with their body),
 * 0 when the body is incomplete, -1 when invalid. */
static long long item_parse(const char *item, const char *cr, const char *end, struct reply_item *it)
{
    size_t next = (size_t)(cr - item) + 2;
    long long n = 0;

    it->type = item[0];
    it->s = item + 1;
    it->slen = (size_t)(cr - item) - 1;
    switch (item[0]) {
    case '+':
    case '-':
    case '(':                                         /* any text: see reply.h */
        break;
    case ':':
        if (scan_int(item + 1, cr, &n) != 0)
            return -1;
        break;
    case '_':
        if (it->slen != 0)
            return -1;
        break;
    case '#':
        if (it->slen != 1 || (item[1] != 't' && item[1] != 'f'))
            return -1;
        n = item[1] == 't';
        break;
    case ',':
        if (scan_double(item + 1, cr) != 0)
            return -1;
        break;
    case '$':
    case '!':
    case '=':
        if (scan_int(item + 1, cr, &n) != 0 || n < (item[0] == '$' ? -1 : item[0] == '=' ? 4 : 0))
            return -1;
        if (n >= 0) {
            if ((size_t)(end - item) - next < (size_t)n + 2)
                return 0;                             /* body incomplete */
            const char *body = item + next;
            if (body[n] != '\r' || body[n + 1] != '\n')
                return -1;
            if (item[0] == '=' && body[3] != ':')
                return -1;
            it->s = body;
            it->slen = (size_t)n;
            next += (size_t)n + 2;
        }
        break;
    case '*':
    case '~':
    case '>':
    case '%':
    case '|':
        if (scan_int(item + 1, cr, &n) != 0 || n < (item[0] == '*' ? -1 : item[0] == '>' ? 1 : 0))
            return -1;
        if (item[0] == '%' || item[0] == '|') {
            if (n > LLONG_MAX / 2)
                return -1;
            n *= 2;
        }
        break;
    default:
        return -1;
    }
    it->n = n;
    return (long long)next;
}

long long reply_item_parse(const char *p, size_t len, struct reply_item *it)
{
    struct reply_item tmp;
    const char *cr = len ? memchr(p, '\r', len) : NULL;

    if (cr == NULL || (size_t)(cr - p) + 1 >= len)
        return 0;
    if (cr[1] != '\n')
        return -1;
    long long l = item_parse(p, cr, p + len, &tmp);
    if (l > 0)
        *it = tmp;
    return l;
}

static int push(struct replyframe *f, long long n)
{
    if (f->depth == f->cap) {
        if (f->cap >= REPLY_MAX_DEPTH)
            return -1;
        int cap = f->cap ? f->cap * 2 : 8;
        long long *left = realloc(f->left, (size_t)cap * sizeof(*left));
        if (left == NULL)
            return -1;
        f->left = left;
        f->cap = cap;
    }
    f->left[f->depth++] = n;
    return 0;
}

long long replyframe_scan(struct replyframe *f, const char *p, size_t len)
{
    for (;;) {
        size_t pos = f->pos;
        if (pos >= len)
            return 0;
        const char *item = p + pos;
        const char *cr = memchr(item, '\r', len - pos);
        if (cr == NULL || (size_t)(cr - p) + 1 >= len)
            return 0;                                 /* header line incomplete */
        if (cr[1] != '\n')
            return -1;
        size_t next = (size_t)(cr - p) + 2;           /* first byte after the header line */
        long long n;

        if (f->depth == 0) {                          /* the reply proper starts here, */
            f->type = item[0];                        /* unless this is an attribute */
            f->attr = pos;
        }
        switch (item[0]) {
        case '+':
        case '-':
            break;
        case ':':
            if (scan_int(item + 1, cr, &n) != 0)
                return -1;
            break;
        case '$':
            if (scan_int(item + 1, cr, &n) != 0 || n < -1)
                return -1;
            if (n >= 0) {
                if (len - next < (size_t)n + 2)
                    return 0;                         /* bulk body incomplete */
                if (p[next + (size_t)n] != '\r' || p[next + (size_t)n + 1] != '\n')
                    return -1;
                next += (size_t)n + 2;
            }
            break;
        case '*':
            if (scan_int(item + 1, cr, &n) != 0 || n < -1)
                return -1;
            if (n > 0) {
                if (push(f, n) != 0)
                    return -1;
                f->pos = next;
                continue;                             /* its elements come next */
            }
            break;
        default: {                                    /* RESP3 */
            struct reply_item it;
            long long l = item_parse(item, cr, p + len, &it);
            if (l <= 0)
                return l;                             /* body incomplete, or invalid */
            next = pos + (size_t)l;
            if (it.type == '>' && f->depth > 0)
                return -1;                            /* a push is never nested */
            if (it.type == '%' || it.type == '~' || it.type == '>' || it.type == '|') {
                if (it.n > 0) {
                    if (push(f, it.type == '|' ? -it.n : it.n) != 0)
                        return -1;
                    f->pos = next;
                    continue;                         /* its elements come next */
                }
                if (it.type == '|') {                 /* an empty attribute: nothing to close */
                    f->pos = next;
                    continue;
                }
            }
            break;
        }
        }
        /* One item complete: close the aggregates it completes. An attribute
         * that completes is not an item of its parent: the item it
         * describes still follows. */
        f->pos = next;
        for (;;) {
            if (f->depth == 0) {
                f->pos = 0;
                return (long long)next;
            }
            long long *left = &f->left[f->depth - 1];
            if (*left > 0) {
                if (--*left != 0)
                    break;
                f->depth--;                           /* an aggregate completes: an item of its parent */
            } else {
                if (++*left != 0)
                    break;
                f->depth--;                           /* an attribute completes */
                break;
            }
        }
    }
}

void replyframe_reset(struct replyframe *f)
{
    f->pos = 0;
    f->depth = 0;
}

void replyframe_free(struct replyframe *f)
{
    free(f->left);
    f->left = NULL;
    f->cap = f->depth = 0;
    f->pos = 0;
}

long long reply_array_split(const char *p, size_t len, struct reply_span *el, size_t max)
{
    struct reply_item it;
    long long h = reply_item_parse(p, len, &it);
    if (h <= 0 || it.type != '*' || it.n < 0)
        return -1;
    struct replyframe f = { 0 };
    size_t pos = (size_t)h;
    long long i;
    for (i = 0; i < it.n; i++) {
        replyframe_reset(&f);
        long long n = replyframe_scan(&f, p + pos, len - pos);
        if (n <= 0 || replyframe_is_push(&f))
            break;
        if ((size_t)i < max)
            el[i] = (struct reply_span){ p + pos, (size_t)n };
        pos += (size_t)n;
    }
    replyframe_free(&f);
    return i == it.n && pos == len ? it.n : -1;
}

int reply_array_join(struct buf *b, const struct reply_span *el, size_t n)
{
    if (reply_array(b, (long long)n) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (buf_append(b, el[i].p, el[i].len) != 0)
            return -ENOMEM;
    return 0;
}

int reply_status(struct buf *b, const char *s)
{
    if (buf_reserve(b, strlen(s) + 3) != 0)
        return -ENOMEM;
    buf_append(b, "+", 1);
    buf_append_str(b, s);
    return buf_append(b, "\r\n", 2);
}

int reply_error(struct buf *b, const char *s)
{
    if (buf_reserve(b, strlen(s) + 3) != 0)
        return -ENOMEM;
    buf_append(b, "-", 1);
    buf_append_str(b, s);
    return buf_append(b, "\r\n", 2);
}

int reply_errorf(struct buf *b, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* An error line cannot hold CR or LF. */
    for (char *c = msg; *c; c++)
        if (*c == '\r' || *c == '\n')
            *c = ' ';
    return reply_error(b, msg);
}

int reply_integer(struct buf *b, long long v)
{
    return buf_printf(b, ":%lld\r\n", v);
}

int reply_bulk(struct buf *b, const char *p, size_t n)
{
    if (buf_reserve(b, n + 32) != 0)
        return -ENOMEM;
    buf_printf(b, "$%zu\r\n", n);
    buf_append(b, p, n);
    return buf_append(b, "\r\n", 2);
}

int reply_bulk_str(struct buf *b, const char *s)
{
    return reply_bulk(b, s, strlen(s));
}

int reply_nil(struct buf *b)
{
    return buf_append(b, "$-1\r\n", 5);
}

int reply_array(struct buf *b, long long n)
{
    return buf_printf(b, "*%lld\r\n", n);
}
