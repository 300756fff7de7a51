/*
 * protocol/peek.h — a look at a client's unread requests before they are
 * framed, for prefetching.
 *
 *   unread bytes ── reqpeek_get ──> the key of a leading `GET key` request
 *                                   and the bytes it spans
 *
 * Only the exact multibulk shape clients send for GET is recognised
 * (`*2\r\n$3\r\nGET\r\n$<n>\r\n<key>\r\n`, GET in any case); anything else
 * ends the look. It frames nothing and decides nothing: the framer
 * (request.h) still parses every byte, so a peek costs at worst a useless
 * prefetch, never a different answer.
 *
 * Contract: reads only p[0, n). Returns the length of the complete GET
 * request at p (> 0) with *key, *klen set to its key inside p, or 0 when p
 * does not start with one (other command, other shape, incomplete).
 */
#ifndef REDSNANO_PROTOCOL_PEEK_H
#define REDSNANO_PROTOCOL_PEEK_H

#include <stddef.h>

size_t reqpeek_get(const char *p, size_t n, const char **key, size_t *klen);

#endif
