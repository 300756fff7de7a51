/*
 * protocol/resp3.h — RESP3 replies for RESP2 clients; RESP3 reply writers.
 *
 *   backend (HELLO 3) -> replyframe_scan -> one RESP3 reply
 *        -> [resp3_to_resp2] -> the bytes Redis 7 sends a RESP2 client
 *        -> a client that speaks RESP2
 *
 *   the proxy's own replies (HELLO's map, ...) -> resp3_* (proto 2 or 3) -> client
 *
 * resp3_to_resp2() is a pure function of the reply bytes (and flags): it
 * rewrites each item, never builds a tree, and has no depth limit.
 *
 *   RESP3                 RESP2 (as Redis 7.0 sends it, checked against
 *                         tests/unit/resp3_fixtures.h, made by tools/resp3_fixtures)
 *   %N (map)              *2N, the keys and values in order
 *   ~N (set), >N (push)   *N
 *   _ (null)              $-1, or *-1 with RESP3_NULL_ARRAY
 *   ,<double>             bulk string of the same text (Redis prints %.17g
 *                         for both protocols: "1", "2.5", "inf", "-nan")
 *   #t #f                 :1 :0
 *   (<big number>         bulk string of the digits
 *   =N fmt:text           bulk string of text (the "fmt:" prefix dropped)
 *   !N text               -text (CR and LF become spaces, as Redis does
 *                         for every error line)
 *   |N (attribute)        dropped, with its 2N elements
 *   + - : $ *             unchanged
 *
 * Nulls: Redis 7 sends RESP3 `_` for both RESP2 nulls, `$-1` (a missing
 * string: GET, HGET, ZSCORE, LPOP without count, EVAL returning nil) and
 * `*-1` (a missing array: BLPOP/BRPOP/BLMOVE... timeouts, BZPOPMIN/MAX,
 * BLMPOP/LMPOP/BZMPOP/ZMPOP with nothing to pop, LPOP/RPOP with a count on
 * a missing key, XREAD/XREADGROUP with no data, an aborted EXEC, each
 * missing member of GEOPOS). The reply alone cannot tell them apart; `$-1`
 * is the default because it is by far the common case (every "no such key"
 * of a string read) and every RESP2 client reads both as nil. A caller that
 * knows the command passes RESP3_NULL_ARRAY for the commands listed.
 * (EXEC mixes both inside its array: convert it with neither flag, or
 * element by element with each queued command's flags.)
 *
 * Shape: RESP3 returns score/value pairs as nested two-element arrays where
 * RESP2 returns one flat array: ZRANGE/ZRANGEBYSCORE/ZREVRANGE/
 * ZRANGEBYLEX... WITHSCORES, ZUNION/ZINTER/ZDIFF WITHSCORES, ZRANDMEMBER
 * WITHSCORES, ZPOPMIN/ZPOPMAX with a count, HRANDFIELD WITHVALUES. Pass
 * RESP3_FLAT_PAIRS for those: a top-level array of pairs becomes one flat
 * array (any other top-level reply, e.g. an error, is converted as usual).
 * ZMPOP/BZMPOP keep nested pairs in RESP2 too: no flag. The other way
 * round, XREAD and XREADGROUP return a map (stream name -> entries) in
 * RESP3 and an array of [name, entries] pairs in RESP2: pass
 * RESP3_MAP_PAIRS for those (a top-level map becomes N pairs).
 *
 * The one difference left is HELLO's "proto" field (3 vs 2): the proxy
 * writes its own HELLO reply with the resp3_* writers.
 *
 * Contract: resp3_to_resp2() appends the converted reply to out and returns
 * 0; -EINVAL when p[0, len) is not exactly one complete valid reply (as
 * replyframe_scan frames it) or RESP3_FLAT_PAIRS was given and the
 * top-level array holds something other than two-element arrays; -ENOMEM.
 * (The flags change only the reply's shape at its top level; a reply of
 * another type, e.g. an error, is converted as without them.)
 * On error out's unread bytes are as before the call. It reads only
 * p[0, len).
 *
 * The other way, resp3_from_resp2() gives a RESP3 client the reply Redis 7
 * would send it, from the RESP2 reply of the same command (the L1 keeps RESP2
 * replies): a top-level null (`$-1`, `*-1`) becomes `_`; with RESP3_UP_MAP
 * a top-level array of 2N becomes the map %N, with RESP3_UP_SET a set, with
 * RESP3_UP_PAIRS a flat member/score array becomes N [member, double]
 * pairs (the score's text is Redis's %.17g in both protocols); everything
 * else is the same bytes. The flags come from the command table
 * (cmd_resp3_shape). It is exact for replies whose elements are RESP2
 * blobs and integers (every command the L1 caches); a nested aggregate is
 * copied as it is. Returns 0, -EINVAL when p[0, len) is not one valid reply
 * of the expected shape (out unchanged), -ENOMEM.
 *
 * The writers append one item (an aggregate: its header; the elements
 * follow) for a client speaking `proto` (2 or 3), 0 or -ENOMEM.
 */
#ifndef REDSNANO_PROTOCOL_RESP3_H
#define REDSNANO_PROTOCOL_RESP3_H

#include <stddef.h>

#include "base/buf.h"

#define RESP3_NULL_ARRAY 0x1u         /* nulls become *-1 (not $-1) */
#define RESP3_FLAT_PAIRS 0x2u         /* a top-level array of pairs becomes one flat array */
#define RESP3_MAP_PAIRS  0x4u         /* a top-level map becomes an array of [key, value] pairs */

#define RESP3_UP_MAP   0x10u         /* resp3_from_resp2: top array of 2N -> %N */
#define RESP3_UP_SET   0x20u         /* resp3_from_resp2: top array -> ~N */
#define RESP3_UP_PAIRS 0x40u         /* resp3_from_resp2: flat member/score -> [member, ,score] pairs */

/* See the contract above. */
int resp3_from_resp2(struct buf *out, const char *p, size_t len, unsigned flags);

/* See the contract above. */
int resp3_to_resp2(struct buf *out, const char *p, size_t len, unsigned flags);

int resp3_map(struct buf *b, int proto, long long n);            /* %n     | *2n */
int resp3_set(struct buf *b, int proto, long long n);            /* ~n     | *n */
int resp3_push(struct buf *b, int proto, long long n);           /* >n     | *n */
int resp3_attr(struct buf *b, long long n);                      /* |n: RESP3 clients only */
int resp3_null(struct buf *b, int proto);                        /* _      | $-1 */
int resp3_double(struct buf *b, int proto, double d);            /* ,%.17g | $len %.17g */
int resp3_bool(struct buf *b, int proto, int v);                 /* #t #f  | :1 :0 */
int resp3_bignum(struct buf *b, int proto, const char *s, size_t n);  /* (s | $n s */
/* =n+4 fmt:s | $n s; fmt is "txt" or "mkd" (cut or padded to 3 as Redis does). */
int resp3_verbatim(struct buf *b, int proto, const char *fmt, const char *s, size_t n);
/* !n s | -s with CR and LF as spaces; s has its code ("ERR ..."). */
int resp3_blob_error(struct buf *b, int proto, const char *s, size_t n);

#endif
