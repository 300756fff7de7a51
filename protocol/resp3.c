/*
 * protocol/resp3.c — RESP3 -> RESP2 conversion and RESP3 writers (see resp3.h).
 *
 *   one framed RESP3 reply -> reply_item_parse, item by item -> emit -> out
 *
 * No tree and no stack: three counters say where the walk is. `need` counts
 * the items of the reply still to convert, `skip` the items of attributes
 * still to drop, `pair` the items left in the current pair when
 * RESP3_FLAT_PAIRS flattens the top-level array or RESP3_MAP_PAIRS turns
 * the top-level map into pairs (0: the next item starts a pair).
 */
#include "protocol/resp3.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "protocol/reply.h"

static int is_aggregate(char type)
{
    return type == '*' || type == '%' || type == '~' || type == '>' || type == '|';
}

/* $n\r\ns\r\n */
static int put_bulk(struct buf *b, const char *s, size_t n)
{
    char hdr[32];
    int h = snprintf(hdr, sizeof(hdr), "$%zu\r\n", n);

    if (buf_reserve(b, (size_t)h + n + 2) != 0)
        return -ENOMEM;
    buf_append(b, hdr, (size_t)h);
    buf_append(b, s, n);
    return buf_append(b, "\r\n", 2);
}

/* <c>n\r\n */
static int put_count(struct buf *b, char c, long long n)
{
    return buf_printf(b, "%c%lld\r\n", c, n);
}

/* -s\r\n, CR and LF replaced by spaces (an error is one line). */
static int put_error(struct buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n + 3) != 0)
        return -ENOMEM;
    buf_append(b, "-", 1);
    char *d = b->data + b->len;
    buf_append(b, s, n);
    for (size_t i = 0; i < n; i++)
        if (d[i] == '\r' || d[i] == '\n')
            d[i] = ' ';
    return buf_append(b, "\r\n", 2);
}

/* Write the RESP2 form of one item; item[0, ilen) are its bytes. */
static int emit(struct buf *out, const struct reply_item *it, const char *item, size_t ilen, unsigned flags)
{
    switch (it->type) {
    case '_':
        return buf_append(out, flags & RESP3_NULL_ARRAY ? "*-1\r\n" : "$-1\r\n", 5);
    case ',':
    case '(':
        return put_bulk(out, it->s, it->slen);
    case '#':
        return buf_append(out, it->n ? ":1\r\n" : ":0\r\n", 4);
    case '=':
        return put_bulk(out, it->s + 4, it->slen - 4);
    case '!':
        return put_error(out, it->s, it->slen);
    case '%':
    case '~':
    case '>':
        return put_count(out, '*', it->n);
    default:                                          /* + - : $ *: RESP2 already */
        return buf_append(out, item, ilen);
    }
}

int resp3_to_resp2(struct buf *out, const char *p, size_t len, unsigned flags)
{
    size_t keep = buf_unread(out);
    size_t off = 0;
    long long need = 1;               /* items of the reply still to convert */
    long long skip = 0;               /* items of attributes still to drop */
    long long pair = -1;              /* items left in the current pair; -1: not flattening */
    int wrap = 0;                     /* RESP3_MAP_PAIRS: the top-level map becomes pairs */
    int top = 1;                      /* the next item converted is the reply itself */
    int rc = -EINVAL;

    while (need > 0) {
        struct reply_item it;
        const char *item = p + off;
        long long l = reply_item_parse(item, len - off, &it);
        if (l <= 0)
            goto fail;                                /* incomplete or invalid */
        off += (size_t)l;
        long long kids = is_aggregate(it.type) && it.n > 0 ? it.n : 0;
        if (it.type == '>' && !(top && skip == 0))
            goto fail;                                /* a push is never nested */
        /* Each element takes at least 3 bytes: counts larger than the
         * bytes left are invalid, and the counters cannot overflow. */
        if (kids > (long long)(len - off))
            goto fail;
        if (skip > 0) {                               /* inside an attribute */
            skip += it.type == '|' ? kids : kids - 1; /* an attribute is not an item */
            continue;
        }
        if (it.type == '|') {
            skip = kids;
            continue;
        }
        need += kids - 1;
        if (need > (long long)(len - off))
            goto fail;
        if (pair == 0 && !wrap) {                     /* a pair of the flattened array */
            if (it.type != '*' || it.n != 2)
                goto fail;
            pair = 2;
            continue;
        }
        if (pair == 0 && put_count(out, '*', 2) != 0) /* a key of the map made a pair */
            goto nomem;
        if (pair >= 0)
            pair = (pair == 0 ? 2 : pair) + kids - 1;
        if (top && (flags & RESP3_FLAT_PAIRS) && it.type == '*' && it.n > 0) {
            top = 0;
            pair = 0;
            if (it.n > LLONG_MAX / 2 || put_count(out, '*', it.n * 2) != 0)
                goto nomem;
            continue;
        }
        if (top && (flags & RESP3_MAP_PAIRS) && it.type == '%' && it.n > 0) {
            top = 0;
            pair = 0;
            wrap = 1;
            if (put_count(out, '*', it.n / 2) != 0)
                goto nomem;
            continue;
        }
        top = 0;
        if (emit(out, &it, item, (size_t)l, flags) != 0)
            goto nomem;
    }
    if (off != len)
        goto fail;                                    /* bytes after the reply */
    return 0;
nomem:
    rc = -ENOMEM;
fail:
    out->len = out->pos + keep;
    return rc;
}

int resp3_map(struct buf *b, int proto, long long n)
{
    return proto >= 3 ? put_count(b, '%', n) : put_count(b, '*', n * 2);
}

int resp3_set(struct buf *b, int proto, long long n)
{
    return put_count(b, proto >= 3 ? '~' : '*', n);
}

int resp3_push(struct buf *b, int proto, long long n)
{
    return put_count(b, proto >= 3 ? '>' : '*', n);
}

int resp3_attr(struct buf *b, long long n)
{
    return put_count(b, '|', n);
}

int resp3_null(struct buf *b, int proto)
{
    return proto >= 3 ? buf_append(b, "_\r\n", 3) : buf_append(b, "$-1\r\n", 5);
}

int resp3_double(struct buf *b, int proto, double d)
{
    char num[64];
    int n = snprintf(num, sizeof(num), "%.17g", d);  /* Redis 7.0's addReplyDouble */

    if (proto < 3)
        return put_bulk(b, num, (size_t)n);
    return buf_printf(b, ",%s\r\n", num);
}

int resp3_bool(struct buf *b, int proto, int v)
{
    if (proto >= 3)
        return buf_append(b, v ? "#t\r\n" : "#f\r\n", 4);
    return buf_append(b, v ? ":1\r\n" : ":0\r\n", 4);
}

int resp3_bignum(struct buf *b, int proto, const char *s, size_t n)
{
    if (proto < 3)
        return put_bulk(b, s, n);
    if (buf_reserve(b, n + 3) != 0)
        return -ENOMEM;
    buf_append(b, "(", 1);
    buf_append(b, s, n);
    return buf_append(b, "\r\n", 2);
}

int resp3_verbatim(struct buf *b, int proto, const char *fmt, const char *s, size_t n)
{
    if (proto < 3)
        return put_bulk(b, s, n);
    char hdr[40];
    int h = snprintf(hdr, sizeof(hdr), "=%zu\r\n%-3.3s:", n + 4, fmt);
    if (buf_reserve(b, (size_t)h + n + 2) != 0)
        return -ENOMEM;
    buf_append(b, hdr, (size_t)h);
    buf_append(b, s, n);
    return buf_append(b, "\r\n", 2);
}

int resp3_blob_error(struct buf *b, int proto, const char *s, size_t n)
{
    if (proto < 3)
        return put_error(b, s, n);
    char hdr[32];
    int h = snprintf(hdr, sizeof(hdr), "!%zu\r\n", n);
    if (buf_reserve(b, (size_t)h + n + 2) != 0)
        return -ENOMEM;
    buf_append(b, hdr, (size_t)h);
    buf_append(b, s, n);
    return buf_append(b, "\r\n", 2);
}

int resp3_from_resp2(struct buf *out, const char *p, size_t len, unsigned flags)
{
    struct reply_item it;
    long long n = reply_item_parse(p, len, &it);
    size_t mark = out->len;
    int rc;

    if (n <= 0)
        return -EINVAL;
    if ((it.type == '$' || it.type == '*') && it.n < 0)
        return (size_t)n == len ? buf_append(out, "_\r\n", 3) : -EINVAL;
    if (it.type != '*' || !(flags & (RESP3_UP_MAP | RESP3_UP_SET | RESP3_UP_PAIRS)))
        return buf_append(out, p, len);
    if (flags & RESP3_UP_SET)
        rc = buf_printf(out, "~%lld\r\n", it.n);
    else if (it.n % 2 != 0)
        return -EINVAL;
    else
        rc = buf_printf(out, (flags & RESP3_UP_MAP) ? "%%%lld\r\n" : "*%lld\r\n", it.n / 2);
    if (rc != 0)
        goto fail;
    if (!(flags & RESP3_UP_PAIRS) || (flags & (RESP3_UP_MAP | RESP3_UP_SET))) {
        if ((rc = buf_append(out, p + n, len - (size_t)n)) != 0)
            goto fail;
        return 0;
    }
    size_t off = (size_t)n;
    for (long long i = 0; i < it.n; i += 2) {
        struct reply_item m, sc;
        long long mn = reply_item_parse(p + off, len - off, &m);
        if (mn <= 0 || m.type != '$' || m.n < 0)
            goto bad;
        long long sn = reply_item_parse(p + off + (size_t)mn, len - off - (size_t)mn, &sc);
        if (sn <= 0 || sc.type != '$' || sc.n < 0)
            goto bad;
        if ((rc = buf_append(out, "*2\r\n", 4)) != 0 || (rc = buf_append(out, p + off, (size_t)mn)) != 0 ||
            (rc = buf_append(out, ",", 1)) != 0 || (rc = buf_append(out, sc.s, sc.slen)) != 0 ||
            (rc = buf_append(out, "\r\n", 2)) != 0)
            goto fail;
        off += (size_t)(mn + sn);
    }
    if (off != len)
        goto bad;
    return 0;
bad:
    rc = -EINVAL;
fail:
    out->len = mark;
    return rc;
}
