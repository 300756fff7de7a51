/*
 * tests/integration/test_limits.c — the limits and switches a Redis user
 * expects: maxclients, idle timeout, query buffer and bulk length limits,
 * backend-timeout, the Unix socket, and configuration errors.
 *
 * Ports 7020-7039 (tests/harness.h). Every test starts its own redis-server
 * and proxy and stops them, even when it fails (harness registry).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tests/harness.h"

#define LIM_PORT_BASE 7020
#define LIM_PORT(n) harness_port(LIM_PORT_BASE, (n))

static harness_proc *lim_redis;
static char lim_primary[32];

static void lim_init(void)
{
    lim_redis = harness_redis_start(LIM_PORT(0));
    snprintf(lim_primary, sizeof(lim_primary), "127.0.0.1:%d", LIM_PORT(0));
}

static void lim_fini(void)
{
    harness_cleanup();
}

TestSuite(limits, .init = lim_init, .fini = lim_fini, .timeout = 60);

/* Read one raw reply and check it starts with want. */
static void expect_raw_prefix(harness_raw *r, const char *want)
{
    char *got = NULL;
    long n = harness_raw_reply(r, 5000, &got);
    cr_assert(n > 0, "no reply (%ld): %s", n, harness_error());
    cr_assert(strncmp(got, want, strlen(want)) == 0, "got %s, wanted %s...", got, want);
    free(got);
}

Test(limits, clients_over_maxclients_are_refused_with_an_error)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(LIM_PORT(1), "--primary", lim_primary, "--maxclients", "2");
    harness_raw *a = harness_raw_open(px->port);
    harness_raw *b = harness_raw_open(px->port);
    cr_assert(a && b);
    harness_raw_sends(a, "PING\r\n");
    expect_raw_prefix(a, "+PONG");
    harness_raw_sends(b, "PING\r\n");
    expect_raw_prefix(b, "+PONG");
    harness_raw *c = harness_raw_open(px->port);
    cr_assert(c);
    expect_raw_prefix(c, "-ERR max number of clients reached");
    cr_assert_eq(harness_raw_wait_eof(c, 3000), 0, "the refused client is closed");
    harness_raw_close(c, false);
    /* The two admitted clients still work. */
    harness_raw_sends(a, "PING\r\n");
    expect_raw_prefix(a, "+PONG");
    harness_raw_close(a, false);
    harness_raw_close(b, false);
    cr_assert_eq(harness_proxy_stop(px), 0);
}

Test(limits, idle_clients_are_closed_after_timeout)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(LIM_PORT(2), "--primary", lim_primary, "--timeout", "1");
    harness_raw *idle = harness_raw_open(px->port);
    harness_raw *busy = harness_raw_open(px->port);
    cr_assert(idle && busy);
    harness_raw_sends(idle, "PING\r\n");
    expect_raw_prefix(idle, "+PONG");
    long long t0 = harness_now_ms();
    /* The busy client keeps talking and must stay open. */
    for (int i = 0; i < 6; i++) {
        harness_sleep_ms(300);
        harness_raw_sends(busy, "PING\r\n");
        expect_raw_prefix(busy, "+PONG");
    }
    cr_assert_eq(harness_raw_wait_eof(idle, 3000), 0, "idle client not closed");
    long long waited = harness_now_ms() - t0;
    cr_assert(waited >= 900, "closed after %lld ms, before the 1 s timeout", waited);
    harness_raw_close(idle, false);
    harness_raw_close(busy, false);
    cr_assert_eq(harness_proxy_stop(px), 0);
}

Test(limits, query_buffer_over_the_limit_is_a_protocol_error)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(LIM_PORT(3), "--primary", lim_primary,
                                           "--client-query-buffer-limit", "4kb");
    harness_raw *r = harness_raw_open(px->port);
    cr_assert(r);
    /* One unfinished 100 KB argument: more than 4 KB waits unframed. */
    harness_raw_sends(r, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n");
    char chunk[8192];
    memset(chunk, 'x', sizeof(chunk));
    harness_raw_send(r, chunk, sizeof(chunk));
    expect_raw_prefix(r, "-ERR Protocol error: query buffer limit exceeded");
    cr_assert_eq(harness_raw_wait_eof(r, 3000), 0);
    harness_raw_close(r, false);
    cr_assert_eq(harness_proxy_stop(px), 0);
}

Test(limits, bulk_longer_than_proto_max_bulk_len_is_refused_before_it_arrives)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(LIM_PORT(4), "--primary", lim_primary,
                                           "--proto-max-bulk-len", "1000");
    harness_raw *r = harness_raw_open(px->port);
    cr_assert(r);
    harness_raw_sends(r, "*2\r\n$3\r\nGET\r\n$5000\r\n");
    expect_raw_prefix(r, "-ERR Protocol error: invalid bulk length");
    cr_assert_eq(harness_raw_wait_eof(r, 3000), 0);
    harness_raw_close(r, false);
    /* Within the limit works. */
    redisContext *c = harness_connect(px->port);
    redisReply *ok = harness_cmd(c, "SET k %s", "small");
    cr_assert(ok && ok->type == REDIS_REPLY_STATUS);
    freeReplyObject(ok);
    redisFree(c);
    cr_assert_eq(harness_proxy_stop(px), 0);
}

Test(limits, a_hung_backend_answers_an_error_within_backend_timeout)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(LIM_PORT(5), "--primary", lim_primary,
                                           "--backend-timeout", "300");
    redisContext *c = harness_connect(px->port);
    redisReply *r = harness_cmd(c, "SET k v");
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    cr_assert_eq(harness_stop_signal(lim_redis, SIGSTOP), 0);
    long long t0 = harness_now_ms();
    r = harness_cmd(c, "GET k");
    long long took = harness_now_ms() - t0;
    harness_stop_signal(lim_redis, SIGCONT);
    cr_assert(r && r->type == REDIS_REPLY_ERROR, "a hung backend must give an error");
    cr_assert(strstr(r->str, "timed out") != NULL, "%s", r->str);
    cr_assert(took >= 250 && took < 2000, "error after %lld ms with backend-timeout 300", took);
    freeReplyObject(r);
    /* After the backend wakes up, the proxy reconnects and serves again. */
    int ok = 0;
    for (long long end = harness_now_ms() + 5000; harness_now_ms() < end && !ok; harness_sleep_ms(50)) {
        r = harness_cmd(c, "GET k");
        ok = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "v") == 0;
        if (r)
            freeReplyObject(r);
    }
    cr_assert(ok, "the proxy never served again after the backend woke up");
    redisFree(c);
    cr_assert_eq(harness_proxy_stop(px), 0);
}

Test(limits, the_unix_socket_serves_clients)
{
    harness_skip_if_direct();
    char path[600];
    snprintf(path, sizeof(path), "%s/redsnano-%d.sock", harness_tmpdir(), LIM_PORT(6));
    harness_proc *px = harness_proxy_start(LIM_PORT(6), "--primary", lim_primary, "--unixsocket", path);
    redisContext *c = redisConnectUnix(path);
    cr_assert(c && !c->err, "cannot connect to %s", path);
    redisReply *r = redisCommand(c, "SET unix yes");
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = redisCommand(c, "GET unix");
    cr_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "yes") == 0);
    freeReplyObject(r);
    redisFree(c);
    cr_assert_eq(harness_proxy_stop(px), 0);
}

static const char *bin(void)
{
    const char *b = getenv("REDSNANO_BIN");
    return b ? b : "build/redsnano";
}

Test(limits, a_bad_config_file_exits_1_naming_file_and_line)
{
    char path[600], *out = NULL;
    snprintf(path, sizeof(path), "%s/bad.conf", harness_tmpdir());
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("# a comment\nport 7399\nbackend-timeout soon\n", f);
    fclose(f);
    const char *argv[] = { bin(), path, NULL };
    int status = harness_run_capture(argv, 5000, &out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %s", harness_status_str(status));
    char want[700];
    snprintf(want, sizeof(want), "%s:3: backend-timeout", path);
    cr_assert(out && strstr(out, want), "output '%s' lacks '%s'", out ? out : "", want);
    free(out);
}

Test(limits, test_config_checks_without_starting)
{
    char path[600], *out = NULL;
    snprintf(path, sizeof(path), "%s/good.conf", harness_tmpdir());
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("port 7398\nl1-maxmemory 64mb\nl1-commands \"GET HGETALL\"\n", f);
    fclose(f);
    const char *good[] = { bin(), "--test-config", path, NULL };
    int status = harness_run_capture(good, 5000, &out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %s: %s", harness_status_str(status),
              out ? out : "");
    free(out);
    out = NULL;
    const char *bad[] = { bin(), "--test-config", path, "--read-policy", "fastest", NULL };
    status = harness_run_capture(bad, 5000, &out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    cr_assert(out && strstr(out, "read-policy"), "%s", out ? out : "");
    free(out);
}

/* CLIENT REPLY OFF is the proxy's: it drops the replies it would send
 * while the server side stays matched one for one. */
Test(limits, client_reply_off_drops_replies_and_replies_stay_matched)
{
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(LIM_PORT(7), "--primary", lim_primary);
    harness_raw *r = harness_raw_open(px->port);
    char *cmds = NULL, *rep = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&cmds, &n);
    static const char *const lines[] = { "CLIENT REPLY OFF", "SET after yes", "GET after", "INCR cnt",
                                         "CLIENT REPLY ON", "GET after", "GET cnt" };

    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        char *c = harness_resp_line(lines[i]);
        fputs(c, f);
        free(c);
    }
    fclose(f);
    cr_assert_eq(harness_raw_send(r, cmds, n), 0);
    free(cmds);
    cr_assert_gt(harness_raw_reply(r, 5000, &rep), 0, "%s", harness_error());
    cr_assert_str_eq(rep, "+OK\r\n", "the first reply is CLIENT REPLY ON's");
    free(rep);
    cr_assert_gt(harness_raw_reply(r, 5000, &rep), 0, "%s", harness_error());
    cr_assert_str_eq(rep, "$3\r\nyes\r\n", "the write made while OFF ran, its reply was dropped");
    free(rep);
    cr_assert_gt(harness_raw_reply(r, 5000, &rep), 0, "%s", harness_error());
    cr_assert_str_eq(rep, "$1\r\n1\r\n");
    free(rep);
    harness_raw_close(r, false);
    cr_assert_eq(harness_proxy_stop(px), 0);
}

/* Every reply answers its own request, in order, even while the backend
 * dies and comes back: a reply is the request's token or an error, never
 * another request's token. EVAL echoes its argument from Redis itself. */
Test(limits, pipelined_replies_stay_matched_while_the_backend_restarts)
{
    enum { CLIENTS = 4, ROUNDS = 30, DEPTH = 50 };
    harness_skip_if_direct();
    harness_proc *px = harness_proxy_start(LIM_PORT(8), "--primary", lim_primary, "--connect-timeout", "200");
    redisContext *c[CLIENTS];
    for (int k = 0; k < CLIENTS; k++)
        c[k] = harness_connect(px->port);
    long errors = 0, tokens = 0;
    for (int round = 0; round < ROUNDS; round++) {
        if (round == ROUNDS / 3)
            harness_redis_kill9(lim_redis);
        if (round == ROUNDS / 2)
            harness_redis_restart(lim_redis);
        for (int k = 0; k < CLIENTS; k++)
            for (int i = 0; i < DEPTH; i++)
                redisAppendCommand(c[k], "EVAL %s 0 %d:%d:%d", "return ARGV[1]", k, round, i);
        for (int k = 0; k < CLIENTS; k++) {
            for (int i = 0; i < DEPTH; i++) {
                redisReply *r = NULL;
                cr_assert_eq(redisGetReply(c[k], (void **)&r), REDIS_OK, "client %d lost its connection", k);
                char want[48];
                snprintf(want, sizeof(want), "%d:%d:%d", k, round, i);
                if (r->type == REDIS_REPLY_ERROR) {
                    cr_assert(strncmp(r->str, "ERR redsnano: backend", 21) == 0, "unexpected error %s", r->str);
                    errors++;
                } else {
                    cr_assert(r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0,
                              "client %d, request %s got %s", k, want, r->type == REDIS_REPLY_STRING ? r->str : "?");
                    tokens++;
                }
                freeReplyObject(r);
            }
        }
        harness_sleep_ms(20);
    }
    cr_assert(errors > 0, "the backend restart caused no error: the test did not test anything");
    cr_assert(tokens > (long)CLIENTS * DEPTH * ROUNDS / 3, "too few requests answered (%ld)", tokens);
    /* And afterwards (reconnect backoff at most 3.2 s) everything is answered again. */
    int back = 0;
    for (long long end = harness_now_ms() + 5000; !back && harness_now_ms() < end; harness_sleep_ms(50)) {
        redisReply *r = harness_cmd(c[0], "EVAL %s 0 %s", "return ARGV[1]", "last");
        cr_assert(r != NULL);
        back = r->type == REDIS_REPLY_STRING && strcmp(r->str, "last") == 0;
        cr_assert(back || r->type == REDIS_REPLY_ERROR, "a reply that is neither the token nor an error");
        freeReplyObject(r);
    }
    cr_assert(back, "the proxy never served again after the backend came back");
    for (int k = 0; k < CLIENTS; k++)
        redisFree(c[k]);
    cr_assert_eq(harness_proxy_stop(px), 0);
}
