/*
 * l1/snapshot.c — the L1's entries on disk (format and contract in
 * snapshot.h).
 *
 *   l1store_each ─> l1snap_encode_record ─> stdio ─> path.tmp ─ fsync ─ rename ─> path
 *   path ─> read whole ─> l1snap_parse (validate all, then walk) ─> l1store_put
 */
#include "l1/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "l1/store.h"

#define SNAP_IO_BUF (256 * 1024)        /* stdio buffer of the writer */

/* ---- CRC-32 and little-endian integers ------------------------------------ */

uint32_t l1snap_crc32(const void *p, size_t n)
{
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *b = p;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = table[(c ^ b[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void put_u32(uint8_t *o, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        o[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *o, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        o[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const char *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get_u64(const char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ---- encoding ------------------------------------------------------------- */

int l1snap_encode_header(struct buf *b, uint64_t written_unix_ms)
{
    uint8_t h[L1SNAP_HEADER_LEN];
    memcpy(h, L1SNAP_MAGIC, 8);
    put_u32(h + 8, L1SNAP_VERSION);
    put_u64(h + 12, written_unix_ms);
    put_u32(h + 20, l1snap_crc32(h, 20));
    return buf_append(b, h, sizeof(h));
}

static int append_u32(struct buf *b, uint32_t v)
{
    uint8_t o[4];
    put_u32(o, v);
    return buf_append(b, o, 4);
}

int l1snap_encode_record(struct buf *b, const struct l1snap_rec *r)
{
    size_t body = 1 + 4 + r->klen + 4 + r->alen + 4 + r->rlen + 20 + 8;
    if (body > L1SNAP_MAX_BODY)
        return -EINVAL;
    size_t start = b->len;
    uint8_t tail[28];
    memcpy(tail, r->sha1, 20);
    put_u64(tail + 20, r->expires);
    int rc = append_u32(b, (uint32_t)body) | append_u32(b, 0) | buf_append(b, &r->cmd, 1) |
             append_u32(b, (uint32_t)r->klen) | buf_append(b, r->key, r->klen) | append_u32(b, (uint32_t)r->alen) |
             buf_append(b, r->args, r->alen) | append_u32(b, (uint32_t)r->rlen) | buf_append(b, r->reply, r->rlen) |
             buf_append(b, tail, sizeof(tail));
    if (rc != 0 || b->oom)
        return -ENOMEM;
    put_u32((uint8_t *)b->data + start + 4, l1snap_crc32(b->data + start + 8, body));
    return 0;
}

int l1snap_encode_trailer(struct buf *b, uint64_t count)
{
    uint8_t t[16];
    put_u32(t, L1SNAP_TRAILER_MARK);
    put_u64(t + 8, count);
    put_u32(t + 4, l1snap_crc32(t + 8, 8));
    return buf_append(b, t, sizeof(t));
}

/* ---- parsing -------------------------------------------------------------- */

/* Read a u32 length and that many bytes from the body at *o. */
static int take_field(const char *body, size_t blen, size_t *o, const char **p, size_t *n)
{
    if (blen - *o < 4)
        return -1;
    uint32_t len = get_u32(body + *o);
    *o += 4;
    if (blen - *o < len)
        return -1;
    *p = body + *o;
    *n = len;
    *o += len;
    return 0;
}

static int parse_body(const char *body, size_t blen, struct l1snap_rec *r)
{
    size_t o = 1;
    if (blen < 1)
        return -1;
    r->cmd = (uint8_t)body[0];
    if (take_field(body, blen, &o, &r->key, &r->klen) || take_field(body, blen, &o, &r->args, &r->alen) ||
        take_field(body, blen, &o, &r->reply, &r->rlen) || blen - o != 28)
        return -1;
    r->sha1 = (const uint8_t *)body + o;
    r->expires = get_u64(body + o + 20);
    return 0;
}

/* One pass over the records: validate (fn NULL) or walk. */
static long long walk(const char *p, size_t len, int (*fn)(const struct l1snap_rec *r, void *ctx), void *ctx,
                      const char **why)
{
    size_t o = L1SNAP_HEADER_LEN;
    long long count = 0;
    for (;;) {
        if (len - o < 8) {
            *why = "truncated (no trailer)";
            return -1;
        }
        uint32_t blen = get_u32(p + o), crc = get_u32(p + o + 4);
        o += 8;
        if (blen == L1SNAP_TRAILER_MARK) {
            if (len - o != 8 || crc != l1snap_crc32(p + o, 8)) {
                *why = len - o < 8 ? "truncated trailer" : "bad trailer";
                return -1;
            }
            if (get_u64(p + o) != (uint64_t)count) {
                *why = "record count does not match the trailer";
                return -1;
            }
            return count;
        }
        if (blen > L1SNAP_MAX_BODY || len - o < blen) {
            *why = blen > L1SNAP_MAX_BODY ? "record length out of range" : "truncated record";
            return -1;
        }
        struct l1snap_rec r;
        if (crc != l1snap_crc32(p + o, blen) || parse_body(p + o, blen, &r) != 0) {
            *why = crc != l1snap_crc32(p + o, blen) ? "record checksum mismatch" : "malformed record";
            return -1;
        }
        if (fn != NULL && fn(&r, ctx) != 0)
            return count + 1;
        o += blen;
        count++;
    }
}

long long l1snap_parse(const char *p, size_t len, uint64_t *written,
                       int (*fn)(const struct l1snap_rec *r, void *ctx), void *ctx, const char **why)
{
    *why = "";
    if (len < L1SNAP_HEADER_LEN || memcmp(p, L1SNAP_MAGIC, 8) != 0) {
        *why = len < L1SNAP_HEADER_LEN ? "truncated header" : "not an L1 snapshot (bad magic)";
        return -1;
    }
    if (get_u32(p + 20) != l1snap_crc32(p, 20)) {
        *why = "header checksum mismatch";
        return -1;
    }
    if (get_u32(p + 8) != L1SNAP_VERSION) {
        *why = "unsupported snapshot version";
        return -1;
    }
    *written = get_u64(p + 12);
    long long n = walk(p, len, NULL, NULL, why);
    if (n < 0 || fn == NULL)
        return n;
    return walk(p, len, fn, ctx, why);
}

/* ---- files ---------------------------------------------------------------- */

/* What the writer carries through l1store_each. */
struct save_ctx {
    FILE *fp;                           /* the temporary file */
    struct buf rec;                     /* one encoded record */
    uint64_t now_ms, now_unix_ms;       /* loop and wall clocks, for expiries */
    long long count;                    /* records written */
};

static int save_one(const struct l1entry *e, void *ctx)
{
    struct save_ctx *c = ctx;
    struct l1snap_rec r;
    uint64_t exp = l1entry_expires(e);
    if (exp <= c->now_ms)
        return 0;                       /* expired: not worth a byte */
    r.cmd = l1entry_cmd(e);
    r.key = l1entry_key(e, &r.klen);
    r.args = l1entry_args(e, &r.alen);
    r.reply = l1entry_reply(e, &r.rlen);
    r.sha1 = l1entry_sha1(e);
    r.expires = c->now_unix_ms + (exp - c->now_ms);
    buf_reset(&c->rec);
    if (l1snap_encode_record(&c->rec, &r) != 0)
        return -ENOMEM;
    if (fwrite(c->rec.data, 1, c->rec.len, c->fp) != c->rec.len)
        return -EIO;
    c->count++;
    return 0;
}

long long l1snap_save(const char *path, const struct l1store *s, uint64_t now_ms, uint64_t now_unix_ms)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (tmp == NULL)
        return -ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    struct save_ctx c = { .now_ms = now_ms, .now_unix_ms = now_unix_ms };
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : 0;
    if (rc == 0 && (c.fp = fdopen(fd, "wb")) == NULL) {
        rc = -errno;
        close(fd);
    }
    if (rc == 0) {
        setvbuf(c.fp, NULL, _IOFBF, SNAP_IO_BUF);
        buf_reset(&c.rec);
        if (l1snap_encode_header(&c.rec, now_unix_ms) != 0 || fwrite(c.rec.data, 1, c.rec.len, c.fp) != c.rec.len)
            rc = -EIO;
        if (rc == 0)
            rc = l1store_each(s, save_one, &c);
        buf_reset(&c.rec);
        if (rc == 0 && (l1snap_encode_trailer(&c.rec, (uint64_t)c.count) != 0 ||
                        fwrite(c.rec.data, 1, c.rec.len, c.fp) != c.rec.len))
            rc = -EIO;
        if (rc == 0 && fflush(c.fp) != 0)
            rc = -errno;
        if (rc == 0 && fsync(fileno(c.fp)) != 0)
            rc = -errno;
        if (fclose(c.fp) != 0 && rc == 0)
            rc = -errno;
        if (rc == 0 && rename(tmp, path) != 0)
            rc = -errno;
        if (rc != 0)
            unlink(tmp);
    }
    buf_free(&c.rec);
    free(tmp);
    return rc != 0 ? rc : c.count;
}

/* What the loader carries through l1snap_parse. */
struct load_ctx {
    struct l1store *s;                  /* where entries go */
    unsigned cmdmask;                   /* command ids cached now */
    uint64_t now_ms, now_unix_ms;       /* loop and wall clocks */
    struct l1snap_loaded *out;          /* counts */
};

static int load_one(const struct l1snap_rec *r, void *ctx)
{
    struct load_ctx *c = ctx;
    if (r->cmd >= 32 || !(c->cmdmask & (1u << r->cmd))) {
        c->out->skipped++;
        return 0;
    }
    if (r->expires <= c->now_unix_ms) {
        c->out->expired++;
        return 0;
    }
    if (l1store_put(c->s, r->cmd, r->key, r->klen, r->args, r->alen, r->reply, r->rlen, c->now_ms,
                    c->now_ms + (r->expires - c->now_unix_ms)) != NULL)
        c->out->loaded++;
    return 0;
}

int l1snap_load(const char *path, struct l1store *s, unsigned cmdmask, uint64_t now_ms, uint64_t now_unix_ms,
                struct l1snap_loaded *out, const char **why)
{
    *out = (struct l1snap_loaded){ 0 };
    *why = "";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return -errno;
    }
    struct stat st;
    char *p = NULL;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        *why = strerror(errno);
    } else if ((p = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL) {
        rc = -ENOMEM;
        *why = "out of memory reading it";
    } else {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
            if (n <= 0) {
                rc = n < 0 ? -errno : -EINVAL;
                *why = n < 0 ? strerror(errno) : "file shrank while read";
                break;
            }
            got += (size_t)n;
        }
        uint64_t written;
        struct load_ctx c = { s, cmdmask, now_ms, now_unix_ms, out };
        if (rc == 0 && l1snap_parse(p, got, &written, load_one, &c, why) < 0)
            rc = -EINVAL;
    }
    free(p);
    close(fd);
    return rc;
}
