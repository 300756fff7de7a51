/*
 * protocol/request.h — framing client requests around hiredis's reader.
 *
 *   socket bytes -> client input buffer -> [reqframe_next] -> struct reqmsg
 *                                              |                 (argv, bytes)
 *                       hiredis redisReader ---+                     |
 *                       (multibulk, no objects)         proxy/router.c, forward
 *
 * A request is either multibulk (`*N\r\n$len\r\narg\r\n...`), framed by
 * hiredis 0.14's redisReader with callbacks that build no objects and only
 * record where each argument lies, or inline (`SET a b\r\n`), split here as
 * Redis's sdssplitargs does and re-encoded as multibulk for forwarding.
 *
 * Offsets: the framer speaks in absolute offsets of the client's byte
 * stream (byte 0 = the first byte the client ever sent). The caller keeps
 * its unread bytes in one buffer whose first byte is at stream offset
 * `base`, and may move or compact that buffer between calls.
 *
 * Contract:
 * - reqframe_next() returns REQ_OK with one message, REQ_MORE when the bytes
 *   hold no complete message yet (the partial message is kept: pass the same
 *   bytes again plus more), or REQ_ERR with a Redis-style message in
 *   f->errstr ("Protocol error: ..."); after REQ_ERR the framer is dead and
 *   the client must be closed.
 * - A multibulk message's bytes are the client's own bytes, unchanged:
 *   [m->start, m->end) in stream offsets. reqmsg_resolve() turns offsets into
 *   pointers for a given buffer. An inline message's bytes live in the
 *   framer's scratch space until the next call.
 * - Empty requests (`*0\r\n`, `*-1\r\n`, a blank inline line) are skipped.
 * - Limits enforced before buffering: bulk length (max_bulk_len), argument
 *   count (max_args), inline line length (REQ_INLINE_MAX), header lines.
 */
#ifndef REDSNANO_PROTOCOL_REQUEST_H
#define REDSNANO_PROTOCOL_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"

#define REQ_INLINE_MAX (64 * 1024)   /* longest inline request, as Redis's PROTO_INLINE_MAX_SIZE */
#define REQ_FEED_SLICE 2048          /* bytes fed to hiredis at a time (its buffer compaction is O(unread)) */
#define REQ_HEADER_MAX 32            /* longest "*N" / "$N" header line without CRLF */

enum { REQ_OK = 1, REQ_MORE = 0, REQ_ERR = -1, REQ_SKIPPED = 2 /* internal */ };

struct redisReader;

struct reqlimits {
    long long max_bulk_len;          /* largest argument, bytes (proto-max-bulk-len) */
    long long max_args;              /* most arguments in one request */
};

/* One framed request. Pointers are valid until the next reqframe_next(). */
struct reqmsg {
    uint64_t start;                  /* stream offset of the first byte (multibulk only) */
    uint64_t end;                    /* stream offset one past the last byte (multibulk and inline) */
    const char *bytes;               /* the request as it is forwarded (resolved or inline scratch) */
    size_t len;                      /* length of bytes */
    int is_inline;                   /* bytes are the framer's re-encoding of an inline command */
    int argc;                        /* number of arguments, >= 1 */
    const char **argv;               /* argument pointers into bytes (after resolve) */
    size_t *argvlen;                 /* argument lengths */
};

struct reqframe {
    struct redisReader *reader;      /* created on first multibulk, reused */
    struct reqlimits lim;            /* limits in force */
    uint64_t fed;                    /* stream offset of the next byte to feed the reader */
    uint64_t msg_start;              /* stream offset where the current message starts */
    int argc;                        /* arguments recorded for the current message */
    int argcap;                      /* capacity of the arrays below */
    uint32_t *argoff;                /* argument offsets relative to the message start */
    size_t *argvlen;                 /* argument lengths */
    const char **argv;               /* argument pointers, filled by reqmsg_resolve */
    struct buf scratch;              /* inline re-encoding */
    int bad;                         /* a callback rejected the input (errstr set) */
    char errstr[64];                 /* "Protocol error: ..." when REQ_ERR */
};

/* Initialise a framer. Never fails (allocation is lazy). */
void reqframe_init(struct reqframe *f, const struct reqlimits *lim);

/* Free everything the framer owns. */
void reqframe_free(struct reqframe *f);

/* Frame the next request from data[0, len), whose first byte is at stream
 * offset base. Bytes before f->msg_start (already framed) are ignored, so
 * data may start anywhere at or before it. See the contract above. */
int reqframe_next(struct reqframe *f, const char *data, size_t len, uint64_t base, struct reqmsg *m);

/* Point m->bytes and m->argv at a buffer holding the message (multibulk:
 * data's first byte is at stream offset base; inline: no-op). */
void reqmsg_resolve(struct reqframe *f, struct reqmsg *m, const char *data, uint64_t base);

/* Bytes the framer holds (the reader's buffer and the inline scratch). */
size_t reqframe_mem(const struct reqframe *f);

/* Stream offset where the next message starts (everything before it has
 * been framed and may be dropped by the caller). */
static inline uint64_t reqframe_consumed(const struct reqframe *f) { return f->msg_start; }

/* Is argument i of m the word w (ASCII case-insensitive)? 0 when m has no
 * argument i. */
static inline int reqmsg_arg_is(const struct reqmsg *m, int i, const char *w)
{
    size_t n = strlen(w);
    return i < m->argc && m->argvlen[i] == n && strncasecmp(m->argv[i], w, n) == 0;
}

#endif
