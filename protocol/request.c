/*
 * protocol/request.c — client request framing (see request.h).
 *
 *   client input buffer
 *        |  '*' first?  yes -> feed slices to hiredis's redisReader; callbacks
 *        |                     record (offset, length) of each argument
 *        |              no  -> inline: find '\n', split like sdssplitargs,
 *        v                     re-encode as multibulk into scratch
 *   struct reqmsg (argv + the bytes to forward)
 *
 * hiredis 0.14 does not validate integers and treats a negative bulk length
 * as nil, so the callbacks re-check each header line strictly, as Redis's
 * processMultibulkBuffer does, and reject what Redis rejects.
 */
#include "protocol/request.h"

#include <errno.h>
#include <hiredis/read.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse a strict decimal integer (optional '-', digits, no '+', no leading
 * spaces) ending at '\r'. Returns 0 and *out, or -1. */
static int parse_header_int(const char *p, size_t avail, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0;

    if (i < avail && p[i] == '-') {
        neg = 1;
        i++;
    }
    /* As hiredis's string2ll: no leading zero, no "-0". */
    if (i < avail && p[i] == '0' && (neg || (i + 1 < avail && p[i + 1] != '\r')))
        return -1;
    size_t digits = 0;
    for (; i < avail && p[i] != '\r'; i++, digits++) {
        if (p[i] < '0' || p[i] > '9' || digits >= 18)
            return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (digits == 0 || i >= avail)
        return -1;
    *out = neg ? -(long long)v : (long long)v;
    return 0;
}

static void frame_error(struct reqframe *f, const char *fmt, const char *detail)
{
    snprintf(f->errstr, sizeof(f->errstr), fmt, detail);
    f->bad = 1;
}

static void frame_error_byte(struct reqframe *f, char got)
{
    char byte[2] = { got, '\0' };
    snprintf(f->errstr, sizeof(f->errstr), "Protocol error: expected '$', got '%s'", byte);
    f->bad = 1;
}

static int args_reserve(struct reqframe *f, int n)
{
    if (n <= f->argcap)
        return 0;
    int cap = f->argcap ? f->argcap : 16;
    while (cap < n)
        cap *= 2;
    uint32_t *off = realloc(f->argoff, (size_t)cap * sizeof(*off));
    if (off == NULL)
        return -ENOMEM;
    f->argoff = off;
    size_t *lens = realloc(f->argvlen, (size_t)cap * sizeof(*lens));
    if (lens == NULL)
        return -ENOMEM;
    f->argvlen = lens;
    const char **argv = realloc(f->argv, (size_t)cap * sizeof(*argv));
    if (argv == NULL)
        return -ENOMEM;
    f->argv = argv;
    f->argcap = cap;
    return 0;
}

/* Stream offset of a byte inside the reader's buffer. */
static uint64_t reader_offset(const struct reqframe *f, const char *p)
{
    const redisReader *r = f->reader;
    return f->fed - r->len + (uint64_t)(p - r->buf);
}

/* ---- hiredis callbacks: record, never build ----------------------------- */

static void *frame_string(const redisReadTask *task, char *str, size_t len)
{
    struct reqframe *f = task->privdata;

    if (task->type != REDIS_REPLY_STRING) {
        frame_error_byte(f, task->type == REDIS_REPLY_STATUS ? '+' : '-');
        return NULL;
    }
    if (task->parent == NULL) {           /* cannot happen: we only feed '*' messages */
        frame_error(f, "Protocol error: %s", "expected '*'");
        return NULL;
    }
    /* hiredis 0.14.1 validated the length digits (string2ll); only our
     * own limit is left to check. */
    if ((long long)len > f->lim.max_bulk_len) {
        frame_error(f, "Protocol error: %s", "invalid bulk length");
        return NULL;
    }
    int i = f->argc;
    if (i >= f->argcap && args_reserve(f, i + 1) != 0) {
        frame_error(f, "Protocol error: %s", "out of memory");
        return NULL;
    }
    f->argoff[i] = (uint32_t)(reader_offset(f, str) - f->msg_start);
    f->argvlen[i] = len;
    f->argc = i + 1;
    return f;
}

static void *frame_array(const redisReadTask *task, int elements)
{
    struct reqframe *f = task->privdata;

    if (task->parent != NULL) {
        frame_error_byte(f, '*');
        return NULL;
    }
    if (elements > f->lim.max_args) {
        frame_error(f, "Protocol error: %s", "invalid multibulk length");
        return NULL;
    }
    f->argc = 0;
    return f;
}

static void *frame_integer(const redisReadTask *task, long long value)
{
    struct reqframe *f = task->privdata;
    (void)value;
    if (task->parent == NULL)
        frame_error(f, "Protocol error: %s", "invalid multibulk length");
    else
        frame_error_byte(f, ':');
    return NULL;
}

static void *frame_nil(const redisReadTask *task)
{
    struct reqframe *f = task->privdata;

    if (task->parent != NULL) {           /* "$-1" inside a request */
        frame_error(f, "Protocol error: %s", "invalid bulk length");
        return NULL;
    }
    /* Top level "*-1" (hiredis 0.14.1 rejects junk and other negatives
     * itself): Redis skips it as an empty request. */
    f->argc = 0;
    return f;
}

static void frame_free_object(void *obj)
{
    (void)obj;                            /* nothing was built */
}

static redisReplyObjectFunctions frame_functions = {
    frame_string, frame_array, frame_integer, frame_nil, frame_free_object,
};

/* ---- inline requests ---------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* isspace() in the C locale, as sdssplitargs uses it. */
static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Split one inline line into f->scratch as a multibulk request. Returns the
 * argument count (0 for a blank line) or -1 on unbalanced quotes. Like
 * Redis's sdssplitargs (C strings), a NUL ends the line. */
static int inline_split(struct reqframe *f, const char *p, size_t n)
{
    struct buf *s = &f->scratch;
    struct buf arg = { 0 };
    const char *nul = memchr(p, '\0', n);
    const char *end = nul ? nul : p + n;
    int argc = 0;

    buf_reset(s);
    /* Reserve room for the "*N\r\n" header, written when N is known. */
    if (buf_append(s, "*0000000000\r\n", 13) != 0)
        return -1;
    for (;;) {
        while (p < end && is_space(*p))
            p++;
        if (p >= end)
            break;
        buf_reset(&arg);
        int inq = 0, insq = 0, done = 0;
        while (!done) {
            if (inq) {
                if (p >= end)
                    goto unbalanced;
                if (p[0] == '\\' && p + 3 < end && p[1] == 'x' && hexval(p[2]) >= 0 && hexval(p[3]) >= 0) {
                    char c = (char)(hexval(p[2]) * 16 + hexval(p[3]));
                    buf_append(&arg, &c, 1);
                    p += 3;
                } else if (p[0] == '\\' && p + 1 < end) {
                    char c;
                    p++;
                    switch (*p) {
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'b': c = '\b'; break;
                    case 'a': c = '\a'; break;
                    default: c = *p; break;
                    }
                    buf_append(&arg, &c, 1);
                } else if (*p == '"') {
                    if (p + 1 < end && !is_space(p[1]))
                        goto unbalanced;
                    done = 1;
                } else {
                    buf_append(&arg, p, 1);
                }
            } else if (insq) {
                if (p >= end)
                    goto unbalanced;
                if (p[0] == '\\' && p + 1 < end && p[1] == '\'') {
                    p++;
                    buf_append(&arg, "'", 1);
                } else if (*p == '\'') {
                    if (p + 1 < end && !is_space(p[1]))
                        goto unbalanced;
                    done = 1;
                } else {
                    buf_append(&arg, p, 1);
                }
            } else {
                if (p >= end) {
                    done = 1;
                    break;
                }
                switch (*p) {
                case ' ': case '\n': case '\r': case '\t': case '\0':
                    done = 1;
                    break;
                case '"': inq = 1; break;
                case '\'': insq = 1; break;
                default: buf_append(&arg, p, 1); break;
                }
            }
            if (p < end)
                p++;
        }
        if (args_reserve(f, argc + 1) != 0)
            goto unbalanced;
        buf_printf(s, "$%zu\r\n", buf_unread(&arg));
        f->argoff[argc] = (uint32_t)s->len;
        f->argvlen[argc] = buf_unread(&arg);
        if (buf_unread(&arg))
            buf_append(s, arg.data + arg.pos, buf_unread(&arg));
        buf_append(s, "\r\n", 2);
        argc++;
    }
    buf_free(&arg);
    /* Now that N is known, write a compact header in front. */
    char hdr[16];
    int hl = snprintf(hdr, sizeof(hdr), "*%d\r\n", argc);
    s->pos = (size_t)(13 - hl);
    memcpy(s->data + s->pos, hdr, (size_t)hl);
    for (int i = 0; i < argc; i++)
        f->argoff[i] -= (uint32_t)s->pos;
    return argc;

unbalanced:
    buf_free(&arg);
    return -1;
}

/* ---- framing ------------------------------------------------------------ */

void reqframe_init(struct reqframe *f, const struct reqlimits *lim)
{
    memset(f, 0, sizeof(*f));
    f->lim = *lim;
}

size_t reqframe_mem(const struct reqframe *f)
{
    return (f->reader ? f->reader->len : 0) + f->scratch.cap;
}

void reqframe_free(struct reqframe *f)
{
    if (f->reader)
        redisReaderFree(f->reader);
    free(f->argoff);
    free(f->argvlen);
    free(f->argv);
    buf_free(&f->scratch);
    memset(f, 0, sizeof(*f));
}

/* Create the reader, starting at the current message. (It is dropped when
 * the stream switches to inline with bytes already fed, and after a
 * skipped negative count; both rare.) */
static int reader_fresh(struct reqframe *f)
{
    f->reader = redisReaderCreateWithFunctions(&frame_functions);
    if (f->reader == NULL)
        return -ENOMEM;
    f->reader->privdata = f;
    f->reader->maxbuf = 16 * 1024;        /* free an idle buffer above 16 KiB */
    f->fed = f->msg_start;
    return 0;
}

/* The reader waits for more bytes: check what it is waiting on, so a huge
 * bulk or header is refused before it is buffered. */
static int check_pending(struct reqframe *f)
{
    redisReader *r = f->reader;
    const char *p = r->buf + r->pos;
    size_t avail = r->len - r->pos;

    /* hiredis has consumed the type byte of the item it waits on: the
     * task's type says which, r->pos is at the header digits. */
    if (avail == 0 || r->ridx < 0)
        return 0;
    int type = r->rstack[r->ridx].type;
    if (type != REDIS_REPLY_STRING && type != REDIS_REPLY_ARRAY)
        return 0;
    const char *crlf = memchr(p, '\r', avail < REQ_HEADER_MAX ? avail : REQ_HEADER_MAX);
    if (crlf != NULL && crlf + 1 < p + avail && crlf[1] != '\n') {
        /* A lone CR: hiredis would seek a later CRLF and fail on the
         * digits; fail here too, whatever the reads' sizes. */
        frame_error(f, "Protocol error: %s", type == REDIS_REPLY_STRING ? "invalid bulk length"
                                                                       : "invalid multibulk length");
        return -1;
    }
    if (crlf == NULL) {
        if (avail >= REQ_HEADER_MAX) {
            frame_error(f, "Protocol error: %s", type == REDIS_REPLY_STRING ? "too big bulk count string"
                                                                           : "too big mbulk count string");
            return -1;
        }
        return 0;
    }
    long long n;
    if (type == REDIS_REPLY_STRING) {
        if (parse_header_int(p, (size_t)(crlf - p) + 1, &n) != 0 || n < 0 || n > f->lim.max_bulk_len) {
            frame_error(f, "Protocol error: %s", "invalid bulk length");
            return -1;
        }
    }
    return 0;
}

/* Is the reader inside a bulk string whose header it has and whose body
 * and CRLF are not all in the caller's buffer yet (below limit)? Then
 * feeding on would copy a partial argument into the reader's buffer too:
 * it waits instead, so a partial request is held once (by the caller). */
static int bulk_waits_for_body(const struct reqframe *f, uint64_t limit)
{
    const redisReader *r = f->reader;
    const char *p = r->buf + r->pos;
    size_t avail = r->len - r->pos;
    long long n;

    if (avail == 0 || r->ridx < 0 || r->rstack[r->ridx].type != REDIS_REPLY_STRING)
        return 0;
    const char *crlf = memchr(p, '\r', avail < REQ_HEADER_MAX ? avail : REQ_HEADER_MAX);
    if (crlf == NULL || parse_header_int(p, (size_t)(crlf - p) + 1, &n) != 0 || n < 0)
        return 0;
    if (crlf + 1 >= p + avail || crlf[1] != '\n')
        return 0;                       /* maybe a lone CR: hiredis decides, as when all was read at once */
    uint64_t body = reader_offset(f, crlf) + 2;
    return limit < body + (uint64_t)n + 2;
}

/* Feed the reader the next slice of data (up to limit). */
static int feed_slice(struct reqframe *f, const char *data, uint64_t base, uint64_t limit)
{
    size_t n = (size_t)(limit - f->fed);
    if (n > REQ_FEED_SLICE)
        n = REQ_FEED_SLICE;
    if (redisReaderFeed(f->reader, data + (f->fed - base), n) != REDIS_OK) {
        frame_error(f, "Protocol error: %s", "out of memory");
        return -1;
    }
    f->fed += n;
    return 0;
}

/* hiredis's own protocol errors, in Redis's words. */
static void frame_reader_error(struct reqframe *f)
{
    const char *e = f->reader->errstr;
    const char *got = strstr(e, "got \"");

    if (strstr(e, "ulti-bulk") != NULL)
        frame_error(f, "Protocol error: %s", "invalid multibulk length");
    else if (strstr(e, "ulk string length") != NULL)
        frame_error(f, "Protocol error: %s", "invalid bulk length");
    else if (got != NULL)
        frame_error_byte(f, got[5]);
    else
        frame_error(f, "Protocol error: %.40s", e);
}

/* "*-10\r\n": Redis skips any count <= 0 as an empty request, hiredis
 * refuses counts below -1. When the message is such a line, step past it
 * with a fresh reader. Returns 1 if skipped. */
static int skip_negative_count(struct reqframe *f, const char *data, uint64_t base, uint64_t limit)
{
    const char *p = data + (f->msg_start - base);
    size_t avail = (size_t)(limit - f->msg_start);
    const char *cr = memchr(p, '\r', avail < REQ_HEADER_MAX ? avail : REQ_HEADER_MAX);
    long long n;

    if (avail < 2 || p[0] != '*' || p[1] != '-' || cr == NULL || (size_t)(cr - p) + 1 >= avail ||
        cr[1] != '\n' || parse_header_int(p + 1, (size_t)(cr - p), &n) != 0)
        return 0;
    redisReaderFree(f->reader);
    f->reader = NULL;
    f->msg_start += (uint64_t)(cr - p) + 2;
    f->fed = f->msg_start;
    return 1;
}

static int frame_multibulk(struct reqframe *f, const char *data, size_t len, uint64_t base,
                           struct reqmsg *m)
{
    uint64_t limit = base + len;
    redisReader *r = f->reader;

    for (;;) {
        /* Ask only when the reader holds bytes it has not consumed: a call
         * without new bytes would only rescan. */
        if (r->pos < r->len) {
            void *reply = NULL;
            f->bad = 0;
            if (redisReaderGetReply(r, &reply) != REDIS_OK) {
                if (!f->bad && skip_negative_count(f, data, base, limit))
                    return REQ_SKIPPED;
                if (!f->bad)
                    frame_reader_error(f);
                return REQ_ERR;
            }
            if (reply != NULL) {
                uint64_t end = f->fed - (r->len - r->pos);
                m->start = f->msg_start;
                m->end = end;
                m->is_inline = 0;
                m->argc = f->argc;
                f->msg_start = end;
                return REQ_OK;
            }
        }
        if (f->fed >= limit || bulk_waits_for_body(f, limit))
            return check_pending(f) == 0 ? REQ_MORE : REQ_ERR;
        if (feed_slice(f, data, base, limit) != 0)
            return REQ_ERR;
    }
}

int reqframe_next(struct reqframe *f, const char *data, size_t len, uint64_t base, struct reqmsg *m)
{
    for (;;) {
        uint64_t limit = base + len;
        if (f->msg_start >= limit)
            return REQ_MORE;
        const char *p = data + (f->msg_start - base);
        size_t avail = (size_t)(limit - f->msg_start);

        if (p[0] == '*') {
            if (f->reader == NULL && reader_fresh(f) != 0) {
                frame_error(f, "Protocol error: %s", "out of memory");
                return REQ_ERR;
            }
            int rc = frame_multibulk(f, data, len, base, m);
            if (rc == REQ_SKIPPED)
                continue;
            if (rc != REQ_OK)
                return rc;
            if (m->argc == 0)
                continue;                 /* "*0" / "*-1": skipped, as Redis does */
            return REQ_OK;
        }

        /* Inline. Bytes already fed to the reader belong to this message:
         * start the reader afresh for later multibulk messages. */
        if (f->reader != NULL && f->fed != f->msg_start) {
            redisReaderFree(f->reader);
            f->reader = NULL;
            f->fed = f->msg_start;
        }
        const char *nl = memchr(p, '\n', avail);
        if (nl == NULL) {
            if (avail > REQ_INLINE_MAX) {
                frame_error(f, "Protocol error: %s", "too big inline request");
                return REQ_ERR;
            }
            return REQ_MORE;
        }
        size_t linelen = (size_t)(nl - p);
        if (linelen > REQ_INLINE_MAX) {
            frame_error(f, "Protocol error: %s", "too big inline request");
            return REQ_ERR;
        }
        int argc = inline_split(f, p, linelen);
        if (argc < 0) {
            frame_error(f, "Protocol error: %s", "unbalanced quotes in request");
            return REQ_ERR;
        }
        f->msg_start += linelen + 1;
        f->fed = f->msg_start;
        if (argc == 0)
            continue;
        if (argc > f->lim.max_args) {
            frame_error(f, "Protocol error: %s", "invalid multibulk length");
            return REQ_ERR;
        }
        m->start = f->msg_start - linelen - 1;
        m->end = f->msg_start;
        m->is_inline = 1;
        m->argc = argc;
        m->bytes = f->scratch.data + f->scratch.pos;
        m->len = buf_unread(&f->scratch);
        m->argv = f->argv;
        m->argvlen = f->argvlen;
        for (int i = 0; i < argc; i++)
            f->argv[i] = m->bytes + f->argoff[i];
        return REQ_OK;
    }
}

void reqmsg_resolve(struct reqframe *f, struct reqmsg *m, const char *data, uint64_t base)
{
    if (m->is_inline)
        return;
    m->bytes = data + (m->start - base);
    m->len = (size_t)(m->end - m->start);
    m->argv = f->argv;
    m->argvlen = f->argvlen;
    for (int i = 0; i < m->argc; i++)
        f->argv[i] = m->bytes + f->argoff[i];
}
