/*
 * protocol/info.h — reading the replies of the proxy's own control queries
 * (CLUSTER SLOTS, INFO, SENTINEL ...), which are small and rare: unlike the
 * pass-through path (protocol/reply.h), they are parsed into hiredis
 * objects and looked into.
 *
 *   one complete reply's bytes ─> reply_object() ─> redisReply (freeReplyObject)
 *   INFO text ─> info_field("master_repl_offset") / info_number()
 *   "ip=127.0.0.1,port=7001,state=online,offset=42,lag=0" ─> info_kv("port")
 *
 * Contract: reply_object() takes exactly one complete RESP2 reply and
 * returns NULL when the bytes are not one (or out of memory). The info_*
 * functions never read past len (INFO text is not NUL-terminated inside a
 * reply buffer), copy at most cap - 1 bytes plus a NUL, and return -1 when
 * the field is absent (info_number: also when it is not a number >= 0).
 */
#ifndef REDSNANO_PROTOCOL_INFO_H
#define REDSNANO_PROTOCOL_INFO_H

#include <stddef.h>

struct redisReply;

struct redisReply *reply_object(const char *p, size_t len);

/* The value of the "name:value" line of INFO text into out. 0 or -1. */
int info_field(const char *info, size_t len, const char *name, char *out, size_t cap);

/* The same as a number >= 0, or -1. */
long long info_number(const char *info, size_t len, const char *name);

/* The value of key in a "k1=v1,k2=v2" list (an INFO slaveN line) into out.
 * 0 or -1. */
int info_kv(const char *list, const char *key, char *out, size_t cap);

#endif
