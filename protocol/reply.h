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
 * It frames RESP2 and RESP3 (HELLO 3). The RESP2 types come first on its
 * path; the RESP3 ones are validated as Redis 7 sends them:
 *
 *   _            null: nothing after the type byte
 *   ,<double>    [+-]digits[.digits][(e|E)[+-]digits], inf, -inf, nan, -nan
 *                (Redis 7.0 prints %.17g; a NaN from Lua prints as -nan)
 *   #t #f        boolean
 *   (<text>      big number; any line: Redis 7.0 passes a Lua big_number
 *                string through unchecked (CR/LF become spaces)
 *   !<n> body    blob error, n >= 0
 *   =<n> fmt:body  verbatim string, n >= 4 and body[3] == ':'
 *   %<N>  ~<N>   map (2N elements follow), set (N), N >= 0
 *   |<N>         attribute (2N elements): not a reply by itself; it is framed
 *                together with the reply (or element) that follows it
 *   ><N>         push, N >= 1, only at the top level (out of band)
 *
 * Streamed strings and aggregates (`$?`, `*?`) are refused: Redis never
 * sends them. `$-1` and `*-1` stay valid (RESP2 nulls).
 *
 * Contract: replyframe_scan() returns the length of the complete reply at
 * the start of p, 0 when more bytes are needed (state is kept: call again
 * with the same start and more bytes), or -1 when the bytes are not RESP
 * (the connection is out of sync and must be closed). A complete reply
 * includes the attributes before it. After a return > 0, f->type is the
 * reply's type byte ('>' for a push: route it away from the request FIFO,
 * see replyframe_is_push) and f->attr the bytes of attributes before it
 * (0 when none): the reply proper is p[f->attr, returned length).
 *
 * reply_item_parse() reads one item (a header line, plus the body of a
 * blob) for callers that walk a reply already framed (protocol/resp3.c).
 *
 * The reply_* writers append a RESP2 reply to a buffer and return 0 or
 * -ENOMEM.
 *
 * Multi-key reads answered in parts (the L1's MGET, a cluster MGET split
 * per node) split each part's array reply into element spans
 * (reply_array_split) and write the elements back in request order as one
 * array (reply_array_join): the elements' bytes are copied as they came.
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
    long long *left;                  /* elements still expected per open aggregate;
                                       * negative for an attribute (it counts up to 0) */
    size_t attr;                      /* last complete reply: bytes of attributes before it */
    char type;                        /* last complete reply: its type byte ('>' = push) */
};

/* See the contract above. */
long long replyframe_scan(struct replyframe *f, const char *p, size_t len);

/* After replyframe_scan() returned > 0: was that reply an out-of-band push? */
static inline int replyframe_is_push(const struct replyframe *f) { return f->type == '>'; }

/* Forget a partial reply (after the connection is reset). */
void replyframe_reset(struct replyframe *f);

/* Free the scanner's stack. */
void replyframe_free(struct replyframe *f);

/* One RESP item as reply_item_parse() reads it. */
struct reply_item {
    char type;                        /* its type byte */
    long long n;                      /* aggregates: elements that follow (2N for % and |),
                                       * -1 for *-1; $ ! =: body length, -1 for $-1;
                                       * ':' its value; '#' 1 or 0; others 0 */
    const char *s;                    /* blobs: the body; others: the line after the type byte */
    size_t slen;                      /* bytes at s */
};

/* Read the item at p[0, len): returns its own length (header line, plus the
 * body and its CRLF for a blob; an aggregate's elements are not included),
 * 0 when the bytes end before it does, -1 when it is not valid RESP (same
 * rules as replyframe_scan; the push-at-top-level and depth rules are the
 * caller's). *it is filled only on a return > 0. */
long long reply_item_parse(const char *p, size_t len, struct reply_item *it);

/* The bytes of one element of an array reply (pointers into that reply). */
struct reply_span {
    const char *p;                    /* first byte of the element */
    size_t len;                       /* its length (a whole nested reply for an aggregate) */
};

/* Split the complete array reply p[0, len) ("*N\r\n" then N elements) into
 * its N element spans, written to el[0..N) when N <= max. Returns N, or -1
 * when p is not exactly one well-formed array reply (an error, a nil
 * array "*-1", another type, trailing bytes). Nothing is copied. */
long long reply_array_split(const char *p, size_t len, struct reply_span *el, size_t max);

/* Append "*n\r\n" and the n elements' bytes, in the order given. 0 or
 * -ENOMEM. */
int reply_array_join(struct buf *b, const struct reply_span *el, size_t n);

int reply_status(struct buf *b, const char *s);                   /* +s\r\n */
int reply_error(struct buf *b, const char *s);                    /* -s\r\n (s has its code: "ERR ...") */
int reply_errorf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int reply_integer(struct buf *b, long long v);                    /* :v\r\n */
int reply_bulk(struct buf *b, const char *p, size_t n);           /* $n\r\np\r\n */
int reply_bulk_str(struct buf *b, const char *s);
int reply_nil(struct buf *b);                                     /* $-1\r\n */
int reply_array(struct buf *b, long long n);                      /* *n\r\n (elements follow) */

#endif
