/*
 * base/buf.h — a growable byte buffer with a read cursor.
 *
 *   [0 ........ pos ............ len ......... cap)
 *     consumed   unread bytes      free space
 *
 * Used for client query buffers, reply buffers and output queues. All
 * functions keep data[pos, len) intact; buf_reserve may move data (pointers
 * into the buffer die), buf_consume never does.
 *
 * Contract: functions returning int return 0 or -ENOMEM; on -ENOMEM the
 * buffer is unchanged and `oom` is set (sticky until buf_free), so a writer
 * of several pieces can check once at the end. A zeroed struct is a valid
 * empty buffer.
 */
#ifndef REDSNANO_BASE_BUF_H
#define REDSNANO_BASE_BUF_H

#include <stddef.h>
#include <string.h>

struct buf {
    char *data;      /* heap storage, or NULL when nothing was ever reserved */
    size_t pos;      /* first unread byte */
    size_t len;      /* end of the bytes written */
    size_t cap;      /* bytes allocated */
    int oom;         /* an append or reserve failed (sticky until buf_free) */
};

/* Bytes not yet consumed. */
static inline size_t buf_unread(const struct buf *b) { return b->len - b->pos; }

/* Make room for at least extra more bytes after len. Compacts (moves the
 * unread bytes to the front) before growing. */
int buf_reserve(struct buf *b, size_t extra);

/* Append n bytes (the slow path grows the buffer). */
int buf_append_slow(struct buf *b, const void *p, size_t n);
static inline int buf_append(struct buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n || n == 0)
        return buf_append_slow(b, p, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Append a NUL-terminated string. */
int buf_append_str(struct buf *b, const char *s);

/* Append printf-formatted text. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Mark n unread bytes consumed; the buffer empties (pos = len = 0) when
 * everything is consumed. */
void buf_consume(struct buf *b, size_t n);

/* Forget all bytes, keep the allocation. */
static inline void buf_reset(struct buf *b) { b->pos = b->len = 0; }

/* Release the storage when it is larger than keep bytes and empty. */
void buf_release(struct buf *b);
static inline void buf_shrink(struct buf *b, size_t keep)
{
    if (b->pos == b->len && b->cap > keep)
        buf_release(b);
}

/* Free the storage; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);

#endif
