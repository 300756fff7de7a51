/*
 * base/outq.c — per-connection output, one write per loop iteration.
 */
#include "base/outq.h"

#include <errno.h>
#include <stdlib.h>

static struct outq *flush_head;       /* queues waiting for the next flush, in scheduling order */
static struct outq **flush_tail = &flush_head; /* where the next scheduled queue links */
static uv_prepare_t flush_prepare;    /* runs outq_flush_all before polling */
static void (*before_flush)(void);    /* deferred work that produces output */
static uint64_t iteration;            /* outq_flush_all calls: one per loop iteration */

void outq_init(struct outq *q, void (*on_error)(struct outq *, int))
{
    memset(q, 0, sizeof(*q));
    q->on_error = on_error;
}

void outq_schedule(struct outq *q)
{
    if (q->scheduled || q->stream == NULL || q->failed)
        return;
    q->scheduled = 1;
    q->next = NULL;
    *flush_tail = q;
    flush_tail = &q->next;
}

void outq_attach(struct outq *q, uv_stream_t *stream)
{
    q->stream = stream;
    if (buf_unread(&q->pending))
        outq_schedule(q);
}

int outq_append(struct outq *q, const void *p, size_t n)
{
    if (q->failed)
        return 0;
    if (buf_append(&q->pending, p, n) != 0)
        return -ENOMEM;
    outq_schedule(q);
    return 0;
}

static void outq_fail(struct outq *q, int status)
{
    if (q->failed)
        return;
    q->failed = 1;
    buf_reset(&q->pending);
    if (q->on_error)
        q->on_error(q, status);
}

static void outq_flush(struct outq *q);

static void outq_write_done(uv_write_t *req, int status)
{
    struct outq *q = req->data;

    q->busy = 0;
    buf_reset(&q->writing);
    buf_shrink(&q->writing, 64 * 1024);
    if (status < 0) {
        if (status != UV_ECANCELED)
            outq_fail(q, status);
        return;
    }
    if (buf_unread(&q->pending) || q->before_write)
        outq_flush(q);
    else if (q->on_drained)
        q->on_drained(q);
}

static void outq_flush(struct outq *q)
{
    if (q->busy || q->failed || q->stream == NULL)
        return;
    if (q->before_write) {
        int rc = q->before_write(q);
        if (rc < 0) {
            outq_fail(q, rc);
            return;
        }
        if (buf_unread(&q->pending) == 0) {
            if (q->on_drained)
                q->on_drained(q);
            return;
        }
    }
    if (buf_unread(&q->pending) == 0)
        return;
    uv_buf_t b = uv_buf_init(q->pending.data + q->pending.pos, (unsigned)buf_unread(&q->pending));
    int n = uv_try_write(q->stream, &b, 1);
    if (n == (int)b.len) {
        buf_reset(&q->pending);
        buf_shrink(&q->pending, 64 * 1024);
        if (q->on_drained)
            q->on_drained(q);
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        outq_fail(q, n);
        return;
    }
    if (n > 0)
        buf_consume(&q->pending, (size_t)n);
    /* Hand the rest to uv_write: swap buffers so appends continue. */
    struct buf t = q->writing;
    q->writing = q->pending;
    q->pending = t;
    buf_reset(&q->pending);
    b = uv_buf_init(q->writing.data + q->writing.pos, (unsigned)buf_unread(&q->writing));
    if (q->wreq == NULL && (q->wreq = malloc(sizeof(*q->wreq))) == NULL) {
        outq_fail(q, UV_ENOMEM);
        return;
    }
    q->wreq->data = q;
    q->busy = 1;
    int rc = uv_write(q->wreq, q->stream, &b, 1, outq_write_done);
    if (rc < 0) {
        q->busy = 0;
        outq_fail(q, rc);
    }
}

void outq_detach(struct outq *q)
{
    if (q->scheduled) {
        for (struct outq **pp = &flush_head; *pp; pp = &(*pp)->next) {
            if (*pp == q) {
                *pp = q->next;
                if (flush_tail == &q->next)
                    flush_tail = pp;
                break;
            }
        }
        q->scheduled = 0;
    }
    q->failed = 1;
    q->on_drained = NULL;
    q->on_error = NULL;
}

void outq_free(struct outq *q)
{
    free(q->wreq);
    q->wreq = NULL;
    buf_free(&q->pending);
    buf_free(&q->writing);
}

void outq_set_before_flush(void (*fn)(void))
{
    before_flush = fn;
}

uint64_t outq_iteration(void)
{
    return iteration;
}

void outq_flush_all(void)
{
    iteration++;
    if (before_flush)
        before_flush();
    /* In scheduling order: what the proxy sent first to one server leaves
     * before what it sent later to another (a pinned BLPOP before the LPUSH
     * that follows it on a shared connection). */
    while (flush_head) {
        struct outq *q = flush_head;
        flush_head = q->next;
        if (flush_head == NULL)
            flush_tail = &flush_head;
        q->scheduled = 0;
        q->next = NULL;
        outq_flush(q);
    }
}

static void flush_cb(uv_prepare_t *h)
{
    (void)h;
    outq_flush_all();
}

int outq_loop_init(uv_loop_t *loop)
{
    int rc = uv_prepare_init(loop, &flush_prepare);
    if (rc < 0)
        return rc;
    uv_unref((uv_handle_t *)&flush_prepare);
    return uv_prepare_start(&flush_prepare, flush_cb);
}

void outq_loop_close(void)
{
    uv_prepare_stop(&flush_prepare);
    uv_close((uv_handle_t *)&flush_prepare, NULL);
}
