/*
 * tests/fuzz/fuzz_request.c — libFuzzer target for protocol/request.c.
 *
 *   fuzz input = [opts][nsplit][split sizes ...][client bytes ...]
 *                  |      |
 *                  |      +-- reads of these sizes (cycled), as a socket would
 *                  +-- which limits are in force
 *
 * The client bytes are framed twice: once in a single read, once in the
 * reads chosen above, each fed the way proxy/client.c does (a growing
 * buffer; after every batch of framed requests the framed bytes are dropped
 * from the front and the rest compacted, the new base passed on). Each
 * call sees a buffer malloc'ed at exactly its length, so any read past it
 * or through a stale pointer is an ASan report.
 *
 * Checked for every message: argc >= 1; every argv[i] lies inside
 * [bytes, bytes + len); multibulk bytes equal the input at [start, end) and
 * re-parse (independently) into the same argv; inline bytes are the
 * canonical multibulk encoding of argv; start >= the previous end (equal
 * unless empty requests were skipped); and both framings give the same
 * messages (offsets and argv) and the same outcome (REQ_MORE or REQ_ERR).
 * Where reqpeek_get (protocol/peek.h) sees a GET at a message's start, it
 * must be that message: GET, its key, its length.
 * Set FUZZ_STRICT_ERR=1 to also require the same error text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/peek.h"
#include "protocol/request.h"
#include "tests/fuzz/fuzz.h"

#define FUZZ_MAX_SPLITS 16

/* The messages one framing produced, flattened for comparison. */
struct outcome {
    char *log;                       /* per message: start, end, argc, then (len, bytes) per arg */
    size_t len;                      /* bytes used in log */
    size_t cap;                      /* bytes allocated */
    int rc;                          /* final status: REQ_MORE or REQ_ERR */
    char errstr[64];                 /* the framer's error when rc == REQ_ERR */
    uint64_t last_end;               /* end of the last message */
};

static void die(const char *what)
{
    fprintf(stderr, "fuzz_request: invariant failed: %s\n", what);
    abort();
}

static void log_add(struct outcome *o, const void *p, size_t n)
{
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n)
            cap *= 2;
        o->log = realloc(o->log, cap);
        if (o->log == NULL)
            abort();
        o->cap = cap;
    }
    memcpy(o->log + o->len, p, n);
    o->len += n;
}

/* Parse "[-]digits\r\n" leniently (as Redis accepts); returns the number
 * and advances *p, or aborts. */
static long long read_int(const char **p, const char *end)
{
    const char *q = *p;
    int neg = 0;
    long long v = 0;

    if (q < end && *q == '-') {
        neg = 1;
        q++;
    }
    if (q >= end || *q < '0' || *q > '9')
        die("multibulk header has no digits");
    while (q < end && *q >= '0' && *q <= '9') {
        v = v * 10 + (*q - '0');
        q++;
        if (v > (1LL << 40))
            die("multibulk header number too large");
    }
    if (end - q < 2 || q[0] != '\r' || q[1] != '\n')
        die("multibulk header not ended by CRLF");
    *p = q + 2;
    return neg ? -v : v;
}

/* An independent check that a multibulk message's bytes hold exactly the
 * arguments the framer reported. */
static void check_multibulk(const struct reqmsg *m)
{
    const char *p = m->bytes, *end = m->bytes + m->len;

    if (p >= end || *p != '*')
        die("multibulk message does not start with '*'");
    p++;
    long long n = read_int(&p, end);
    if (n != m->argc)
        die("multibulk count differs from argc");
    for (int i = 0; i < m->argc; i++) {
        if (p >= end || *p != '$')
            die("multibulk argument does not start with '$'");
        p++;
        long long l = read_int(&p, end);
        if (l < 0 || (size_t)l != m->argvlen[i])
            die("bulk length differs from argvlen");
        if (p != m->argv[i])
            die("argv does not point at the bulk body");
        /* Redis (and hiredis 0.14) skip the two bytes after a bulk body
         * without checking they are CRLF: so does the framer. */
        if (end - p < l + 2)
            die("bulk body and its terminator not inside the message");
        p += l + 2;
    }
    if (p != end)
        die("multibulk message has trailing bytes");
}

/* Inline messages are re-encoded: bytes must be the canonical encoding. */
static void check_inline(const struct reqmsg *m)
{
    char hdr[32];
    const char *p = m->bytes, *end = m->bytes + m->len;
    int hl = snprintf(hdr, sizeof(hdr), "*%d\r\n", m->argc);

    if ((size_t)(end - p) < (size_t)hl || memcmp(p, hdr, (size_t)hl) != 0)
        die("inline re-encoding header");
    p += hl;
    for (int i = 0; i < m->argc; i++) {
        hl = snprintf(hdr, sizeof(hdr), "$%zu\r\n", m->argvlen[i]);
        if ((size_t)(end - p) < (size_t)hl || memcmp(p, hdr, (size_t)hl) != 0)
            die("inline re-encoding bulk header");
        p += hl;
        if (p != m->argv[i])
            die("inline argv does not point at its bulk body");
        if ((size_t)(end - p) < m->argvlen[i] + 2 || p[m->argvlen[i]] != '\r' || p[m->argvlen[i] + 1] != '\n')
            die("inline re-encoding bulk body");
        p += m->argvlen[i] + 2;
    }
    if (p != end)
        die("inline re-encoding has trailing bytes");
}

static void check_msg(struct outcome *o, const struct reqmsg *m, const uint8_t *in, size_t inlen)
{
    if (m->argc < 1)
        die("argc < 1");
    if (m->bytes == NULL || m->len == 0)
        die("message without bytes");
    if (m->end > inlen || m->start >= m->end)
        die("message offsets outside the input");
    if (m->start < o->last_end)
        die("message starts before the previous one ended");
    /* A gap is only allowed for skipped empty requests: it must open with
     * '*' (multibulk "*0" / "*-1") or be blank inline lines (a NUL ends an
     * inline line, as for Redis's sdssplitargs: "\0..." is blank). */
    if (m->start > o->last_end) {
        uint8_t c = in[o->last_end];
        if (c != '*' && c != '\n' && c != '\r' && c != ' ' && c != '\t' && c != '\v' && c != '\f' && c != '\0')
            die("gap between messages that is not an empty request");
    }
    o->last_end = m->end;
    for (int i = 0; i < m->argc; i++) {
        if (m->argv[i] < m->bytes || m->argv[i] > m->bytes + m->len ||
            m->argvlen[i] > (size_t)(m->bytes + m->len - m->argv[i]))
            die("argv outside [bytes, bytes + len)");
    }
    /* The look ahead (peek.h) agrees with the framer wherever it sees a GET. */
    const char *pk;
    size_t pklen, span = reqpeek_get((const char *)in + m->start, inlen - m->start, &pk, &pklen);
    if (span > 0 && (m->is_inline || span != m->end - m->start || m->argc != 2 || m->argvlen[0] != 3 ||
                     strncasecmp(m->argv[0], "GET", 3) != 0 || pklen != m->argvlen[1] ||
                     memcmp(pk, m->argv[1], pklen) != 0))
        die("reqpeek_get disagrees with the framer");
    if (m->is_inline) {
        check_inline(m);
    } else {
        if (m->len != m->end - m->start || memcmp(m->bytes, in + m->start, m->len) != 0)
            die("multibulk bytes differ from the input at [start, end)");
        check_multibulk(m);
    }
    uint64_t hdr[3] = { m->start, m->end, (uint64_t)m->argc };
    log_add(o, hdr, sizeof(hdr));
    for (int i = 0; i < m->argc; i++) {
        uint64_t l = m->argvlen[i];
        log_add(o, &l, sizeof(l));
        log_add(o, m->argv[i], m->argvlen[i]);
    }
}

/* Frame in[0, inlen) arriving in reads of the given sizes (cycled; nsplit 0
 * = one read), as proxy/client.c does. */
static void frame(struct outcome *o, const struct reqlimits *lim, const uint8_t *in, size_t inlen,
                  const uint8_t *splits, size_t nsplit)
{
    struct reqframe f;
    char *have = NULL;               /* unread bytes, exactly malloc'ed */
    size_t havelen = 0;
    uint64_t base = 0;
    size_t off = 0, k = 0;

    memset(o, 0, sizeof(*o));
    o->rc = REQ_MORE;
    reqframe_init(&f, lim);
    while (off < inlen) {
        size_t n = nsplit ? (size_t)splits[k++ % nsplit] + 1 : inlen;
        if (n > inlen - off)
            n = inlen - off;
        /* A read: a new buffer holding the unread bytes plus the new ones. */
        char *nb = malloc(havelen + n);
        if (nb == NULL)
            abort();
        if (havelen)
            memcpy(nb, have, havelen);
        memcpy(nb + havelen, in + off, n);
        free(have);
        have = nb;
        havelen += n;
        off += n;

        for (;;) {
            struct reqmsg m;
            memset(&m, 0, sizeof(m));
            int rc = reqframe_next(&f, have, havelen, base, &m);
            if (rc == REQ_ERR) {
                o->rc = REQ_ERR;
                snprintf(o->errstr, sizeof(o->errstr), "%s", f.errstr);
                goto out;
            }
            if (rc == REQ_MORE)
                break;
            if (rc != REQ_OK)
                die("reqframe_next returned an unknown status");
            reqmsg_resolve(&f, &m, have, base);
            check_msg(o, &m, in, inlen);
        }
        /* Trim, as client_trim does: drop framed bytes, compact. */
        uint64_t keep = reqframe_consumed(&f);
        if (keep < base || keep > base + havelen)
            die("reqframe_consumed outside the buffer");
        size_t drop = (size_t)(keep - base);
        if (drop) {
            size_t rest = havelen - drop;
            char *cb = rest ? malloc(rest) : NULL;
            if (rest && cb == NULL)
                abort();
            if (rest)
                memcpy(cb, have + drop, rest);
            free(have);
            have = cb;
            havelen = rest;
            base = keep;
        }
    }
out:
    free(have);
    reqframe_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long long bulk_limits[4] = { 512LL * 1024 * 1024, 16, 1, 0 };
    static const long long arg_limits[4] = { 1024 * 1024, 4, 1, 2 };
    static int strict_err = -1;

    if (strict_err < 0) {
        const char *e = getenv("FUZZ_STRICT_ERR");
        strict_err = e != NULL && e[0] == '1';
    }
    if (size < 2)
        return 0;
    uint8_t opts = data[0];
    size_t nsplit = data[1] % (FUZZ_MAX_SPLITS + 1);
    if (size < 2 + nsplit)
        return 0;
    const uint8_t *splits = data + 2;
    const uint8_t *in = data + 2 + nsplit;
    size_t inlen = size - 2 - nsplit;
    struct reqlimits lim = {
        .max_bulk_len = bulk_limits[opts & 3],
        .max_args = arg_limits[(opts >> 2) & 3],
    };

    struct outcome whole, split;
    frame(&whole, &lim, in, inlen, NULL, 0);
    frame(&split, &lim, in, inlen, splits, nsplit);

    if (whole.rc == REQ_OK || split.rc == REQ_OK)
        die("final status REQ_OK");
    if (whole.len != split.len || (whole.len && memcmp(whole.log, split.log, whole.len) != 0)) {
        fprintf(stderr, "whole: %zu log bytes rc %d (%s); split: %zu log bytes rc %d (%s)\n", whole.len,
                whole.rc, whole.errstr, split.len, split.rc, split.errstr);
        die("split framing produced different messages than whole framing");
    }
    if (whole.rc != split.rc) {
        fprintf(stderr, "whole rc %d (%s), split rc %d (%s)\n", whole.rc, whole.errstr, split.rc, split.errstr);
        die("split framing ended differently than whole framing");
    }
    if (strict_err && whole.rc == REQ_ERR && strcmp(whole.errstr, split.errstr) != 0) {
        fprintf(stderr, "whole: \"%s\" split: \"%s\"\n", whole.errstr, split.errstr);
        die("split framing gave a different error text");
    }
    free(whole.log);
    free(split.log);
    return 0;
}
