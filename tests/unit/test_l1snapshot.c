/*
 * test_l1snapshot.c — the L1 snapshot format (l1/snapshot.h): records come
 * back as written; any cut, flipped byte or trailing garbage makes the
 * whole file invalid; save + load through a store keeps entries, skips
 * expired ones and leaves no temporary file.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "l1/snapshot.h"
#include "l1/store.h"

#define SNAP_RECORDS 3                  /* records of the in-memory snapshot */

static const uint8_t sha_a[20] = { 1, 2, 3 };

static void encode_three(struct buf *b)
{
    cr_assert_eq(l1snap_encode_header(b, 1234567), 0);
    for (int i = 0; i < SNAP_RECORDS; i++) {
        char key[16], reply[32];
        snprintf(key, sizeof(key), "key:%d", i);
        snprintf(reply, sizeof(reply), "$2\r\nv%d\r\n", i);
        struct l1snap_rec r = { .cmd = (uint8_t)(1 + i), .key = key, .klen = strlen(key), .args = i == 2 ? "\1\0\0\0f" : "",
                                .alen = i == 2 ? 5 : 0, .reply = reply, .rlen = strlen(reply), .sha1 = sha_a,
                                .expires = 1000000 + (uint64_t)i };
        cr_assert_eq(l1snap_encode_record(b, &r), 0);
    }
    cr_assert_eq(l1snap_encode_trailer(b, SNAP_RECORDS), 0);
}

static int check_rec(const struct l1snap_rec *r, void *ctx)
{
    int *i = ctx;
    char key[16], reply[32];
    snprintf(key, sizeof(key), "key:%d", *i);
    snprintf(reply, sizeof(reply), "$2\r\nv%d\r\n", *i);
    cr_assert_eq(r->cmd, 1 + *i);
    cr_assert(r->klen == strlen(key) && memcmp(r->key, key, r->klen) == 0);
    cr_assert(r->rlen == strlen(reply) && memcmp(r->reply, reply, r->rlen) == 0);
    cr_assert_eq(r->alen, *i == 2 ? 5u : 0u);
    cr_assert(memcmp(r->sha1, sha_a, 20) == 0);
    cr_assert_eq(r->expires, 1000000u + (unsigned)*i);
    (*i)++;
    return 0;
}

Test(l1snapshot, records_come_back_as_written)
{
    struct buf b = { 0 };
    uint64_t written = 0;
    const char *why;
    int i = 0;
    encode_three(&b);
    cr_assert_eq(l1snap_parse(b.data, b.len, &written, check_rec, &i, &why), SNAP_RECORDS, "%s", why);
    cr_assert_eq(i, SNAP_RECORDS);
    cr_assert_eq(written, 1234567u);
    cr_assert_eq(memcmp(b.data, "RSNL1SNP\1\0\0\0", 12), 0, "magic then version 1, little-endian");
    buf_free(&b);
}

static int never(const struct l1snap_rec *r, void *ctx)
{
    (void)r;
    (void)ctx;
    cr_assert_fail("a record of an invalid snapshot was handed out");
    return 0;
}

Test(l1snapshot, every_cut_and_every_flipped_byte_is_refused_whole)
{
    struct buf b = { 0 };
    uint64_t written;
    const char *why;
    encode_three(&b);
    for (size_t n = 0; n < b.len; n++)
        cr_assert_eq(l1snap_parse(b.data, n, &written, never, NULL, &why), -1, "a cut at %zu was accepted", n);
    for (size_t o = 0; o < b.len; o++) {
        b.data[o] ^= 0x40;
        cr_assert_eq(l1snap_parse(b.data, b.len, &written, never, NULL, &why), -1, "byte %zu flipped was accepted", o);
        cr_assert(why[0] != '\0');
        b.data[o] ^= 0x40;
    }
    buf_append(&b, "x", 1);
    cr_assert_eq(l1snap_parse(b.data, b.len, &written, never, NULL, &why), -1, "trailing bytes were accepted");
    buf_free(&b);
}

Test(l1snapshot, crc32_is_the_ieee_one)
{
    cr_assert_eq(l1snap_crc32("123456789", 9), 0xcbf43926u);
}

Test(l1snapshot, save_then_load_keeps_entries_and_skips_expired_ones)
{
    char dir[] = "/tmp/l1snap-XXXXXX", path[64], tmp[80];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/snap", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    struct l1store *s = l1store_new(1 << 20);
    /* loop clock 500 = wall clock 10000 at save */
    l1store_put(s, 1, "a", 1, "", 0, "$1\r\nA\r\n", 7, 0, 600);     /* lives until wall 10100 */
    l1store_put(s, 1, "b", 1, "", 0, "$1\r\nB\r\n", 7, 0, 5500);    /* until wall 15000 */
    l1store_put(s, 2, "h", 1, "\1\0\0\0f", 5, "$-1\r\n", 5, 0, 5500); /* HGET: not cached at load */
    l1store_put(s, 1, "gone", 4, "", 0, "$1\r\nG\r\n", 7, 0, 400); /* already expired at save */
    cr_assert_eq(l1snap_save(path, s, 500, 10000), 3);
    cr_assert_neq(access(tmp, F_OK), 0, "the temporary file was left behind");
    l1store_free(s);

    /* Restart at wall 10200 (a expired while down), loop clock 7. */
    struct l1store *t = l1store_new(1 << 20);
    struct l1snap_loaded got;
    const char *why;
    cr_assert_eq(l1snap_load(path, t, 1u << 1, 7, 10200, &got, &why), 0, "%s", why);
    cr_assert_eq(got.loaded, 1);
    cr_assert_eq(got.expired, 1);
    cr_assert_eq(got.skipped, 1);
    struct l1entry *e = l1store_get(t, 1, "b", 1, "", 0);
    cr_assert_not_null(e);
    size_t n;
    const char *r = l1entry_reply(e, &n);
    cr_assert(n == 7 && memcmp(r, "$1\r\nB\r\n", 7) == 0);
    cr_assert_eq(l1entry_expires(e), 7u + 4800u, "expiry carried over in wall time");
    cr_assert_null(l1store_get(t, 1, "a", 1, "", 0));

    /* A cut file: refused, nothing put. */
    FILE *fp = fopen(path, "r+");
    cr_assert_not_null(fp);
    cr_assert_eq(ftruncate(fileno(fp), 40), 0);
    fclose(fp);
    struct l1store *u = l1store_new(1 << 20);
    cr_assert_eq(l1snap_load(path, u, ~0u, 7, 10200, &got, &why), -EINVAL);
    cr_assert_eq(l1store_count(u), 0u);
    cr_assert(strstr(why, "truncated") != NULL, "%s", why);
    unlink(path);
    cr_assert_eq(l1snap_load(path, u, ~0u, 7, 10200, &got, &why), -ENOENT);
    l1store_free(u);
    l1store_free(t);
    rmdir(dir);
}
