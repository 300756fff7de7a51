/*
 * tests/unit/test_base.c — base/: buffers, host:port names, the output
 * queue over a real socket pair on a libuv loop. Links base_lib only.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/hostport.h"
#include "base/outq.h"

Test(buf, append_consume_and_compact)
{
    struct buf b = { 0 };
    cr_assert_eq(buf_append(&b, "hello ", 6), 0);
    cr_assert_eq(buf_printf(&b, "%s %d", "world", 42), 0);
    cr_assert_eq(buf_unread(&b), 14);
    cr_assert(memcmp(b.data, "hello world 42", 14) == 0);
    buf_consume(&b, 6);
    cr_assert_eq(buf_unread(&b), 8);
    cr_assert(memcmp(b.data + b.pos, "world 42", 8) == 0);
    buf_consume(&b, 8);
    cr_assert_eq(b.pos, 0);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.oom, 0);
    buf_free(&b);
    cr_assert_null(b.data);
}

Test(buf, long_printf_grows)
{
    struct buf b = { 0 };
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(buf_printf(&b, "<%s>", big), 0);
    cr_assert_eq(buf_unread(&b), sizeof(big) + 1);
    cr_assert_eq(b.data[0], '<');
    cr_assert_eq(b.data[sizeof(big)], '>');
    buf_free(&b);
}

Test(buf, failed_growth_is_sticky)
{
    struct buf b = { 0 };
    cr_assert_eq(buf_append(&b, "ab", 2), 0);
    /* More than any allocator gives: the buffer is unchanged and says so. */
    cr_assert_neq(buf_reserve(&b, SIZE_MAX / 2), 0);
    cr_assert_eq(b.oom, 1);
    cr_assert_eq(buf_unread(&b), 2);
    cr_assert_eq(buf_append(&b, "c", 1), 0);
    cr_assert_eq(b.oom, 1, "oom stays set until buf_free");
    buf_free(&b);
    cr_assert_eq(b.oom, 0);
}

Test(hostport, names_as_messages_show_them)
{
    char name[64];
    hostport_name(name, sizeof(name), "127.0.0.1", 6379);
    cr_assert_str_eq(name, "127.0.0.1:6379");
    hostport_name(name, sizeof(name), "::1", 7000);
    cr_assert_str_eq(name, "[::1]:7000");
    hostport_name(name, sizeof(name), "localhost", 1);
    cr_assert_str_eq(name, "localhost:1");
}

/* ---- outq: everything appended in one iteration leaves in order ---------- */

static struct {
    uv_loop_t loop;
    uv_pipe_t pipe;
    struct outq q;
    int errors;
} T;

static void t_on_error(struct outq *q, int status)
{
    (void)q;
    (void)status;
    T.errors++;
}

static void t_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

Test(outq, appends_leave_in_order_in_one_iteration)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(uv_loop_init(&T.loop), 0);
    cr_assert_eq(outq_loop_init(&T.loop), 0);
    cr_assert_eq(uv_pipe_init(&T.loop, &T.pipe, 0), 0);
    cr_assert_eq(uv_pipe_open(&T.pipe, sv[0]), 0);
    outq_init(&T.q, t_on_error);
    outq_attach(&T.q, (uv_stream_t *)&T.pipe);

    uint64_t before = outq_iteration();
    char expect[3000];
    size_t n = 0;
    for (int i = 0; i < 300; i++) {
        char piece[16];
        int k = snprintf(piece, sizeof(piece), "%d,", i);
        cr_assert_eq(outq_append(&T.q, piece, (size_t)k), 0);
        memcpy(expect + n, piece, (size_t)k);
        n += (size_t)k;
    }
    cr_assert_eq(outq_size(&T.q), n);
    uv_timer_t stop;
    uv_timer_init(&T.loop, &stop);
    uv_timer_start(&stop, t_stop, 50, 0);
    uv_run(&T.loop, UV_RUN_DEFAULT);

    cr_assert_geq(outq_iteration(), before + 1);
    cr_assert_eq(outq_size(&T.q), 0);
    cr_assert_eq(T.errors, 0);
    char got[3000];
    ssize_t r = read(sv[1], got, sizeof(got));
    cr_assert_eq((size_t)r, n);
    cr_assert(memcmp(got, expect, n) == 0);

    outq_detach(&T.q);
    outq_free(&T.q);
    uv_close((uv_handle_t *)&T.pipe, NULL);
    uv_close((uv_handle_t *)&stop, NULL);
    outq_loop_close();
    uv_run(&T.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&T.loop), 0);
    close(sv[1]);
}
