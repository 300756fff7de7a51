/*
 * base/buf.c — growable byte buffer (see buf.h).
 */
#include "base/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#define BUF_MIN_CAP 512
#define BUF_GIB ((size_t)1 << 30)      /* growth step past 1 GiB */

int buf_reserve(struct buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    /* Compact first: cheap when little is unread, and often enough. */
    if (b->pos > 0) {
        size_t unread = b->len - b->pos;
        memmove(b->data, b->data + b->pos, unread);
        b->pos = 0;
        b->len = unread;
        if (b->cap - b->len >= extra)
            return 0;
    }
    if (extra > SIZE_MAX / 4 - b->len) {
        b->oom = 1;                   /* no allocator gives that much */
        return -ENOMEM;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    /* Double up to 1 GiB, then grow by whole GiBs. */
    while (cap < need && cap < BUF_GIB)
        cap *= 2;
    if (cap < need)
        cap = (need + BUF_GIB - 1) / BUF_GIB * BUF_GIB;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = 1;
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append_slow(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_reserve(b, n) != 0)
        return -ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof(small))
        return buf_append(b, small, (size_t)n);
    if (buf_reserve(b, (size_t)n + 1) != 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    b->pos += n;
    if (b->pos >= b->len)
        b->pos = b->len = 0;
}

void buf_release(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->pos = b->len = b->cap = 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->pos = b->len = b->cap = 0;
    b->oom = 0;
}
