/*
 * protocol/reply.c — resumable RESP2 reply scanner and reply writers.
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
        default:
            return -1;
        }
        /* One item complete: close the aggregates it completes. */
        f->pos = next;
        while (f->depth > 0 && --f->left[f->depth - 1] == 0)
            f->depth--;
        if (f->depth == 0) {
            f->pos = 0;
            return (long long)next;
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
