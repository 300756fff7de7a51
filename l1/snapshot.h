/*
 * l1/snapshot.h — the L1's entries on disk across restarts (l1-snapshot-file).
 *
 *   l1 cron (l1-snapshot-interval), l1_stop ──> l1snap_save ──> path.tmp,
 *                                               fsync, rename to path
 *   l1_start ──> l1snap_load ──> entries put UNVERIFIED: none is served
 *                before a hash check (l1/check.c) says the origin still
 *                holds it; the batched revalidation checks them all
 *
 * Format (version 1), every integer little-endian:
 *
 *   header   "RSNL1SNP" | u32 version | u64 written (unix ms) | u32 crc32 of the 20 bytes before
 *   record   u32 body length | u32 crc32 of the body | body:
 *            u8 command id | u32 klen | key | u32 alen | args | u32 rlen |
 *            reply (RESP bytes) | 20 bytes SHA1 of the reply | u64 expires (unix ms)
 *   trailer  u32 0xffffffff | u32 crc32 of the count | u64 record count
 *
 * Records are written least recently used first, so that loading them in
 * order rebuilds the LRU. A snapshot is all or nothing: the whole file is
 * validated (header, every record's length and CRC, the trailer and its
 * count, nothing after it) before the first entry is used; a bad, cut or
 * foreign file is reported and ignored (the L1 starts cold).
 *
 * Contract: l1snap_encode_* append to a buffer (0 or -ENOMEM);
 * l1snap_parse is pure (no I/O); l1snap_save / l1snap_load do the file
 * I/O, synchronously (a 64 MB L1 costs one write of that size per
 * snapshot, on the loop).
 */
#ifndef REDSNANO_L1_SNAPSHOT_H
#define REDSNANO_L1_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define L1SNAP_VERSION 1                /* the format above */
#define L1SNAP_MAGIC "RSNL1SNP"         /* 8 bytes, no terminator in the file */
#define L1SNAP_HEADER_LEN 24            /* magic, version, written, crc */
#define L1SNAP_TRAILER_MARK 0xffffffffu /* a record length that marks the trailer */
#define L1SNAP_MAX_BODY (1u << 30)      /* a longer record is corruption */

struct l1store;

/* One record, pointing into the snapshot's bytes (or an entry's). */
struct l1snap_rec {
    uint8_t cmd;                        /* l1_cmds id */
    const char *key;                    /* Redis key */
    size_t klen;                        /* its length */
    const char *args;                   /* encoded args after the key */
    size_t alen;                        /* their length */
    const char *reply;                  /* RESP bytes */
    size_t rlen;                        /* their length */
    const uint8_t *sha1;                /* 20 bytes: SHA1 of reply (kept in the format; a load
                                           hash-checks the reply itself, l1entry_sha1) */
    uint64_t expires;                   /* unix ms */
};

/* CRC-32 (IEEE, as zlib's crc32) of p[0, n). */
uint32_t l1snap_crc32(const void *p, size_t n);

int l1snap_encode_header(struct buf *b, uint64_t written_unix_ms);
int l1snap_encode_record(struct buf *b, const struct l1snap_rec *r);
int l1snap_encode_trailer(struct buf *b, uint64_t count);

/* Validate p[0, len) as a whole snapshot; then, only if valid, call fn for
 * each record in order (fn returning non-zero stops the walk). Returns
 * the record count, or -1 with *why set to a static description of the
 * first fault. *written gets the header's time. */
long long l1snap_parse(const char *p, size_t len, uint64_t *written,
                       int (*fn)(const struct l1snap_rec *r, void *ctx), void *ctx, const char **why);

/* Write every entry of s to path atomically (path.tmp, fsync, rename).
 * Loop clock now_ms and wall clock now_unix_ms convert expiries. Returns
 * the entries written, or a negative errno (path is then untouched). */
long long l1snap_save(const char *path, const struct l1store *s, uint64_t now_ms, uint64_t now_unix_ms);

/* What l1snap_load did. */
struct l1snap_loaded {
    long long loaded;                   /* entries put in the store */
    long long expired;                  /* records past their expiry, skipped */
    long long skipped;                  /* records of a command not cached now, skipped */
};

/* Read path and put its entries in s (expiries converted to the loop
 * clock now_ms). Entries of commands outside cmdmask (bit per id) are
 * skipped. The caller marks them unverified. 0, -ENOENT when there is no
 * file, or -EINVAL / another negative errno with *why set when the file is
 * unusable (nothing was put then). */
int l1snap_load(const char *path, struct l1store *s, unsigned cmdmask, uint64_t now_ms, uint64_t now_unix_ms,
                struct l1snap_loaded *out, const char **why);

#endif
