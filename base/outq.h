/*
 * base/outq.h — an output queue on a libuv stream, flushed once per
 * loop iteration.
 *
 *   replies / requests appended during the iteration's callbacks
 *        -> outq.pending ──(uv_prepare, right before the loop polls)──>
 *           uv_try_write ──(kernel took less)──> outq.writing + uv_write
 *
 * Many small appends from many callbacks become one write per connection
 * per iteration: pipelined requests of many clients go to a server in one
 * write(2), a client's pipelined replies go back in one write(2).
 *
 * Contract:
 * - outq_append() copies; bytes are written in append order, and queues are
 *   flushed in the order they were first scheduled in the iteration.
 * - The writing buffer is never touched while uv_write owns it; appends go
 *   to pending meanwhile and are written when it completes.
 * - On a write error q->on_error(q, status) is called once (from the flush
 *   or the write callback); the owner closes its stream. outq_detach() must
 *   be called before the owner's stream is closed; the owner frees the
 *   outq (outq_free) only in its close callback.
 * - before_write (may be NULL) runs right before each write with pending
 *   holding everything appended since the last one: it may replace those
 *   bytes (TLS encrypts them there, once per connection per iteration, and
 *   adds its own handshake output). A queue with the hook is flushed even
 *   when pending is empty (the hook may have output of its own); it fails
 *   the queue by returning a negative status.
 */
#ifndef REDSNANO_BASE_OUTQ_H
#define REDSNANO_BASE_OUTQ_H

#include <uv.h>

#include "base/buf.h"

struct outq {
    uv_stream_t *stream;              /* where bytes go (NULL until outq_attach) */
    struct buf pending;               /* appended, not yet handed to the kernel */
    struct buf writing;               /* owned by an in-progress uv_write */
    uv_write_t *wreq;                 /* the in-progress write (allocated when first needed) */
    int busy;                         /* a uv_write is in progress */
    int scheduled;                    /* on the flush list */
    int failed;                       /* a write failed: drop further output */
    struct outq *next;                /* flush list link */
    void (*on_error)(struct outq *q, int status); /* write failed (status < 0) */
    void (*on_drained)(struct outq *q); /* everything written (may be NULL) */
    int (*before_write)(struct outq *q); /* transform pending before the write (TLS); may be NULL */
};

/* Prepare q (zeroed memory is fine too); stream may be attached later. */
void outq_init(struct outq *q, void (*on_error)(struct outq *, int));

/* Set the stream once it is connected; schedules a flush if bytes wait. */
void outq_attach(struct outq *q, uv_stream_t *stream);

/* Append bytes and schedule a flush. Returns 0 or -ENOMEM. */
int outq_append(struct outq *q, const void *p, size_t n);

/* The pending buffer, for writers that format in place (reply_*). Call
 * outq_schedule() after writing into it. */
static inline struct buf *outq_buf(struct outq *q) { return &q->pending; }

/* Ask for a flush before the loop next polls. */
void outq_schedule(struct outq *q);

/* Bytes queued and not yet acknowledged by the kernel. */
static inline size_t outq_size(const struct outq *q)
{
    return buf_unread(&q->pending) + buf_unread(&q->writing);
}

/* Stop flushing q (before closing its stream). Bytes are dropped. */
void outq_detach(struct outq *q);

/* Free the buffers (in the owner's close callback). */
void outq_free(struct outq *q);

/* Flush every scheduled queue. Called by the loop's prepare handle. */
void outq_flush_all(void);

/* Run fn at the start of every outq_flush_all (work that produces output
 * and must not run inside another callback: resuming stalled clients). */
void outq_set_before_flush(void (*fn)(void));

/* Loop iterations so far (bumped once per outq_flush_all). */
uint64_t outq_iteration(void);

/* Install the prepare handle on loop that calls outq_flush_all(). */
int outq_loop_init(uv_loop_t *loop);

/* Close the prepare handle (at shutdown). */
void outq_loop_close(void);

#endif
