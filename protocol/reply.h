/*
 * protocol/reply.h — framing server replies and writing the proxy's own.
 *
 *   server socket -> server input buffer -> [replyframe_scan] -> one reply's
 *   bytes -> the client that asked (or an internal callback)
 *
 * hiredis 0.14's reader stops at nesting depth 7; Redis replies nest deeper
 * (EVAL returning nested tables, COMMAND DOCS). Replies are passed through,
 * never rebuilt, so this scanner only finds where each one ends: it is
 * resumable (a reply arriving over many reads is scanned once, not from the
 * start each time), has no depth limit but REPLY_MAX_DEPTH, and never copies.
 *
 * Contract: replyframe_scan() returns the length of the complete reply at
 * the start of p, 0 when more bytes are needed (state is kept: call again
 * with the same start and more bytes), or -1 when the bytes are not RESP2
 * (the connection is out of sync and must be closed).
 *
 * The reply_* writers append a RESP2 reply to a buffer and return 0 or
 * -ENOMEM.
 */
#ifndef REDSNANO_PROTOCOL_REPLY_H
#define REDSNANO_PROTOCOL_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define REPLY_MAX_DEPTH 4096          /* nesting a reply may have */

struct replyframe {
    size_t pos;                       /* offset (in the current reply) of the next item to scan */
    int depth;                        /* open aggregates */
    int cap;                          /* capacity of left */
    long long *left;                  /* elements still expected per open aggregate */
};

/* See the contract above. */
long long replyframe_scan(struct replyframe *f, const char *p, size_t len);

/* Forget a partial reply (after the connection is reset). */
void replyframe_reset(struct replyframe *f);

/* Free the scanner's stack. */
void replyframe_free(struct replyframe *f);

int reply_status(struct buf *b, const char *s);                   /* +s\r\n */
int reply_error(struct buf *b, const char *s);                    /* -s\r\n (s has its code: "ERR ...") */
int reply_errorf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int reply_integer(struct buf *b, long long v);                    /* :v\r\n */
int reply_bulk(struct buf *b, const char *p, size_t n);           /* $n\r\np\r\n */
int reply_bulk_str(struct buf *b, const char *s);
int reply_nil(struct buf *b);                                     /* $-1\r\n */
int reply_array(struct buf *b, long long n);                      /* *n\r\n (elements follow) */

#endif
