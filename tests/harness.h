/*
 * harness.h — processes, connections and sockets for the integration tests.
 *
 *   test_*.c ──harness_redis_start──▶ redis-server  (127.0.0.1:port, child)
 *            ──harness_proxy_start──▶ redsnano      (127.0.0.1:port, child) ──▶ redis-server
 *            ──harness_connect / harness_cmd──────▶ hiredis (sync) to either
 *            ──harness_raw_*─────────────────────▶ plain socket, exact bytes
 *
 * Every child is started with fork+exec, gets prctl(PR_SET_PDEATHSIG, SIGKILL)
 * so it never outlives the test process, has stdin on /dev/null and its
 * stdout/stderr in a log file under a per-process temporary directory, and is
 * kept in a registry.  harness_cleanup() (registered with atexit() on first
 * use; also usable as a Criterion .fini) stops everything still running and
 * removes the temporary directory (kept when HARNESS_KEEP_TMP is set).
 *
 * Criterion runs each test in its own worker process and, with --tap, shows
 * neither the worker's stdout nor its stderr: every diagnostic therefore goes
 * into assertion messages (see harness_log_tail).
 *
 * Environment:
 *   REDSNANO_BIN        path of the proxy binary (meson test sets it); else
 *                       ./redsnano, then build/redsnano.
 *   HARNESS_DIRECT=1    do not start the proxy: harness_proxy_start returns a
 *                       pseudo handle whose port is the --primary redis port,
 *                       so the tests can be checked against Redis itself.
 *                       Tests of proxy-only behaviour skip themselves.
 *   HARNESS_PORT_SHIFT  added to every port from harness_port() (to run two
 *                       trees side by side).
 *   HARNESS_KEEP_TMP=1  keep the temporary directory (logs) after the run.
 *
 * Ports.  meson runs the integration executables one at a time
 * (is_parallel: false) and Criterion runs the tests of one executable one at
 * a time (--jobs 1), yet every test file still owns its own range so that
 * files can be run by hand concurrently:
 *     7000-7019  test_core.c
 *     7020-7039  test_limits.c
 *     7040-7069  test_routing.c (cluster bus ports 17040-17069, see HARNESS_BUS_BELOW)
 *     7070-7099  test_faults.c
 *     7100-7109  test_replicas.c
 *     7110-7129  test_ops.c (HTTP port, latency, slow log, reload)
 *     7150-7169  test_sentinel.c
 *     7200-7239  test_l1.c
 *     7240-7254  test_auth.c
 *     7255-7269  test_tls.c
 *     7300-7349  test_cluster.c (cluster bus ports 17300-17349, see HARNESS_BUS_BELOW)
 *     7400-7419  test_resp3.c
 *     7420-7439  test_tracking.c
 *     7500-7549  test_cluster_l1.c (cluster bus ports 17500-17549)
 * Port 6379 is never used (a system redis may run there).
 *
 * Failure convention: functions named harness_try_* and harness_raw_* report
 * failure by return value (NULL or negative errno) and leave a description
 * in harness_error(); the others assert with Criterion and never return on
 * failure.  The assertion family (harness_expect*, harness_cmd_ok,
 * harness_cmd_int, harness_pipe_*) is called through macros that pass the
 * caller's __LINE__; its failure messages read
 *     line 212: 'GET k': replied (nil), wanted "v"
 * followed by the diagnostics chosen with harness_diag_set (a log tail,
 * counters) so that a failure says what the proxy saw.
 */
#ifndef REDSNANO_TESTS_HARNESS_H
#define REDSNANO_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#define HARNESS_REDIS_START_MS 5000   /* bound for redis-server to answer PING */
#define HARNESS_PROXY_START_MS 10000  /* bound for redsnano to answer PING (ASan is slow) */
#define HARNESS_STOP_MS 5000          /* SIGTERM → SIGKILL grace period */
#define HARNESS_CONNECT_MS 2000       /* connect timeout of harness_connect */
#define HARNESS_IO_MS 10000           /* read/write timeout of harness_connect */
#define HARNESS_MAX_ARGS 64           /* argv entries of one child, NULL included */

/* What a harness_proc runs. */
typedef enum harness_kind {
    HARNESS_REDIS,   /* redis-server */
    HARNESS_PROXY,   /* redsnano */
    HARNESS_SENTINEL, /* redis-server --sentinel */
    HARNESS_PSEUDO,  /* HARNESS_DIRECT: no process, port of the primary redis */
} harness_kind;

/* One child process started by the harness (owned by the registry). */
typedef struct harness_proc {
    harness_kind kind;                /* what it runs */
    pid_t pid;                        /* running child, 0 when not running */
    int port;                         /* 127.0.0.1 port it listens on */
    int status;                       /* last waitpid status, -1 if never reaped */
    char *argv[HARNESS_MAX_ARGS];     /* owned copy of argv, reused by restart */
    char log_path[512];               /* file holding the child's output */
    struct harness_proc *next;        /* registry link */
} harness_proc;

/* Raw client socket with a receive buffer (exact bytes, deadlines). */
typedef struct harness_raw {
    int fd;          /* connected socket, -1 once closed */
    char *buf;       /* received bytes not yet returned */
    size_t len;      /* bytes in buf */
    size_t cap;      /* allocated size of buf */
    bool eof;        /* peer closed its side */
    void *tls;       /* OpenSSL SSL* when opened by harness_raw_open_tls, else NULL */
} harness_raw;

/* Description of the last failure of a harness_try_* / harness_raw_* call. */
const char *harness_error(void);

/* True when HARNESS_DIRECT=1: tests talk to Redis instead of the proxy. */
bool harness_direct(void);

/* Skip the current Criterion test in direct mode (proxy-only behaviour). */
#define harness_skip_if_direct()                                                   \
    do {                                                                           \
        if (harness_direct())                                                      \
            cr_skip_test("proxy-only behaviour: skipped with HARNESS_DIRECT=1");   \
    } while (0)

/* base + offset + HARNESS_PORT_SHIFT; base is the test file's range start. */
int harness_port(int base, int offset);

/* Temporary directory of this process (created on first use). */
const char *harness_tmpdir(void);

/*
 * Start redis-server on 127.0.0.1:port with --save '' --appendonly no
 * --daemonize no --dir <tmpdir> --logfile <tmpdir>/redis-<port>.log plus
 * the extra arguments (NULL-terminated list; the macro adds the NULL).
 * Waits until it answers PING as the started pid (bounded by
 * HARNESS_REDIS_START_MS).  Fails when the port is already taken.
 */
harness_proc *harness_try_redis_startv(int port, const char *const *extra);
harness_proc *harness_redis_startl(int port, ...) __attribute__((sentinel));
#define harness_redis_start(port, ...) harness_redis_startl((port), ##__VA_ARGS__, (const char *)NULL)

/*
 * Start a Sentinel (redis-server <conf> --sentinel) on 127.0.0.1:port: the
 * harness writes <tmpdir>/sentinel-<port>.conf with port, bind, dir and
 * the given lines (sentinel monitor ..., tls-* ...), logs to
 * <tmpdir>/sentinel-<port>.log, and waits for an answer to PING on the
 * plain port (+PONG, or -NOAUTH when the lines set requirepass; bounded by
 * HARNESS_REDIS_START_MS). Stopped like any process.
 */
harness_proc *harness_sentinel_start(int port, const char *conf_lines);

/*
 * Start the proxy: REDSNANO_BIN --port <port> --bind 127.0.0.1 <args...>.
 * harness_proxy_start waits for +PONG (so the backend is reachable);
 * harness_proxy_start_unready accepts any reply to PING, errors included
 * (for tests whose backends are down on purpose).  Both bounded by
 * HARNESS_PROXY_START_MS.  In direct mode no process is started and the
 * returned pseudo handle's port is the redis port named by --primary.
 */
harness_proc *harness_try_proxy_startv(int port, const char *const *args, bool need_pong);
harness_proc *harness_proxy_startl(int port, ...) __attribute__((sentinel));
harness_proc *harness_proxy_start_unreadyl(int port, ...) __attribute__((sentinel));
#define harness_proxy_start(port, ...) harness_proxy_startl((port), ##__VA_ARGS__, (const char *)NULL)
#define harness_proxy_start_unready(port, ...) \
    harness_proxy_start_unreadyl((port), ##__VA_ARGS__, (const char *)NULL)

/*
 * Stop a child: SIGTERM (and SIGCONT, in case it is stopped), wait up to
 * HARNESS_STOP_MS, then SIGKILL; always reaped.  Returns the waitpid status
 * (0 = exited with status 0); also kept in p->status.  The handle stays
 * valid (for restart).  A pseudo or already stopped handle returns its last
 * status (0 for pseudo).
 */
int harness_proc_stop(harness_proc *p);
#define harness_redis_stop(p) harness_proc_stop(p)
#define harness_proxy_stop(p) harness_proc_stop(p)

/* SIGKILL and reap.  Returns the waitpid status. */
int harness_redis_kill9(harness_proc *p);

/* Send a signal (SIGSTOP, SIGCONT, ...) without waiting.  0 or -errno. */
int harness_stop_signal(harness_proc *p, int sig);

/* Start a stopped redis again with the same port and arguments (asserts). */
void harness_redis_restart(harness_proc *p);

/* Has the child exited?  Reaps it if so (then p->pid is 0). */
bool harness_proc_exited(harness_proc *p);

/*
 * Memory and descriptors of a running child, from /proc/<pid>: resident
 * set now (VmRSS) and its peak since start (VmHWM), in KiB; open file
 * descriptors. -1 when the child is not running or /proc cannot be read.
 */
long harness_proc_rss_kb(const harness_proc *p);
long harness_proc_peak_rss_kb(const harness_proc *p);
int harness_proc_fds(const harness_proc *p);

/* "exited 0", "killed by signal 6", ... for messages (static buffer). */
const char *harness_status_str(int status);

/*
 * Excerpt of the child's log for messages (malloc'd, never NULL): from the
 * first sanitizer report line ("ERROR: AddressSanitizer", "runtime error:",
 * ...) when there is one, else the last max_bytes.
 */
char *harness_log_tail(const harness_proc *p, size_t max_bytes);

/* Stop every child still running (SIGKILL), free handles, remove tmpdir. */
void harness_cleanup(void);

/* ---- hiredis helpers -------------------------------------------------- */

/* Connect with HARNESS_CONNECT_MS, set HARNESS_IO_MS timeouts (asserts). */
redisContext *harness_connect(int port);

/* Connect with a timeout; NULL (and harness_error) on failure. */
redisContext *harness_try_connect(int port, int timeout_ms);

/* redisCommand wrapper; NULL on I/O error (c->errstr says why). */
redisReply *harness_cmd(redisContext *c, const char *fmt, ...);

/* Deep comparison of two replies (type, value, elements). */
bool harness_reply_equal(const redisReply *a, const redisReply *b);

/* One-line rendering of a reply for messages (malloc'd; NULL → "(no reply)"). */
char *harness_reply_str(const redisReply *r);

/*
 * Value of one field of REDSNANO STATS ("name:value" lines) as a string
 * copied into out.  0, -ENOENT when absent, -EPROTO on a bad reply, -EIO.
 */
int harness_proxy_stat(redisContext *c, const char *name, char *out, size_t cap);

/* ---- raw sockets ------------------------------------------------------- */

/* Connect (blocking, TCP_NODELAY); NULL on failure. */
harness_raw *harness_raw_open(int port);

/*
 * Connect and complete a TLS handshake (blocking), verifying the server
 * against ca_file (name 127.0.0.1), presenting cert_file/key_file when not
 * NULL.  Every harness_raw_* call then speaks TLS on it.  NULL on failure
 * (harness_error() says why).
 */
harness_raw *harness_raw_open_tls(int port, const char *ca_file, const char *cert_file,
                                  const char *key_file);

/* Send all bytes (MSG_NOSIGNAL; through TLS when opened so).  0 or -errno. */
int harness_raw_send(harness_raw *r, const void *bytes, size_t len);
int harness_raw_sends(harness_raw *r, const char *str);

/*
 * Wait up to timeout_ms for one complete RESP reply (RESP2 or RESP3 types).
 * On success returns its length and sets *out to a malloc'd NUL-terminated
 * copy of its bytes.  -ETIMEDOUT, -ECONNRESET (peer closed before a full
 * reply), -EPROTO (bytes that are no RESP reply), -errno.
 */
long harness_raw_reply(harness_raw *r, int timeout_ms, char **out);

/*
 * Wait up to timeout_ms for the peer to close.  0 when closed, -ETIMEDOUT.
 * Bytes received meanwhile are kept in r->buf.
 */
int harness_raw_wait_eof(harness_raw *r, int timeout_ms);

/* Close the socket (abortive close with RST when rst is true) and free. */
void harness_raw_close(harness_raw *r, bool rst);

/* ---- HTTP (the proxy's http-port) ---------------------------------------- */

/* One HTTP response as harness_http returns it. */
typedef struct harness_http_resp {
    int status;      /* status code, e.g. 200 */
    char *head;      /* status line and headers (malloc'd, NUL-terminated) */
    char *body;      /* body bytes (malloc'd, NUL-terminated after len) */
    size_t len;      /* body length */
} harness_http_resp;

/*
 * Send one HTTP/1.1 request (method, target, optional body of len bytes;
 * Content-Length added when body is not NULL) to 127.0.0.1:port and read
 * the response up to the server's close (bounded by timeout_ms).  0 and
 * *out filled, or a negative errno with harness_error() set.
 */
int harness_http(int port, const char *method, const char *target, const char *body, size_t len,
                 int timeout_ms, harness_http_resp *out);

/* harness_http with extra header lines ("Name: value\r\n"..., or NULL). */
int harness_http_headers(int port, const char *method, const char *target, const char *headers,
                         const char *body, size_t len, int timeout_ms, harness_http_resp *out);

/* Free what harness_http filled (safe on a zeroed struct). */
void harness_http_free(harness_http_resp *r);

/* ---- external programs -------------------------------------------------- */

/*
 * Run argv (PATH lookup, PDEATHSIG set, stdin /dev/null) with stdout+stderr
 * captured into *out (malloc'd).  Killed with SIGKILL after timeout_ms.
 * Returns the waitpid status, or -ETIMEDOUT when killed for time, -errno.
 */
int harness_run_capture(const char *const *argv, int timeout_ms, char **out);

/* ---- assertions on replies (one family for every test file) -------------- */

#define HARNESS_ANY (-1)    /* harness_expect: any reply type */

/*
 * Diagnostics appended to every failure message of this family: the log
 * tail of p (NULL: none) and the text extra() returns (malloc'd; NULL
 * function: none).  Per test process; set it after starting the proxy.
 */
void harness_diag_set(const harness_proc *p, char *(*extra)(void));

/* The diagnostics text for a message of one's own (malloc'd, never NULL). */
char *harness_diag(void);

/*
 * Send one command (hiredis format: %s, %d, %b ...) on c and wait for its
 * reply.  Each asserts that a reply came and what it is:
 *   harness_reply(c, fmt, ...)              any type; returns it (caller frees)
 *   harness_expect(c, type, fmt, ...)       of REDIS_REPLY_<type>; returns it
 *   harness_cmd_ok(c, fmt, ...)             +OK
 *   harness_expect_status(c, want, fmt,...) +want
 *   harness_expect_bulk(c, want, fmt, ...)  the bulk string want; NULL = nil
 *   harness_expect_int(c, want, fmt, ...)   :want
 *   harness_cmd_int(c, fmt, ...)            an integer; returns it
 *   harness_expect_error(c, prefix, fmt...) -prefix...; returns it (caller frees)
 */
redisReply *harness_expect_at(int line, redisContext *c, int type, const char *fmt, ...);
void harness_expect_status_at(int line, redisContext *c, const char *want, const char *fmt, ...);
void harness_expect_bulk_at(int line, redisContext *c, const char *want, const char *fmt, ...);
void harness_expect_int_at(int line, redisContext *c, long long want, const char *fmt, ...);
long long harness_cmd_int_at(int line, redisContext *c, const char *fmt, ...);
redisReply *harness_expect_error_at(int line, redisContext *c, const char *prefix, const char *fmt, ...);
#define harness_reply(c, ...) harness_expect_at(__LINE__, (c), HARNESS_ANY, __VA_ARGS__)
#define harness_expect(c, type, ...) harness_expect_at(__LINE__, (c), (type), __VA_ARGS__)
#define harness_cmd_ok(c, ...) harness_expect_status_at(__LINE__, (c), "OK", __VA_ARGS__)
#define harness_expect_status(c, want, ...) harness_expect_status_at(__LINE__, (c), (want), __VA_ARGS__)
#define harness_expect_bulk(c, want, ...) harness_expect_bulk_at(__LINE__, (c), (want), __VA_ARGS__)
#define harness_expect_int(c, want, ...) harness_expect_int_at(__LINE__, (c), (want), __VA_ARGS__)
#define harness_cmd_int(c, ...) harness_cmd_int_at(__LINE__, (c), __VA_ARGS__)
#define harness_expect_error(c, prefix, ...) harness_expect_error_at(__LINE__, (c), (prefix), __VA_ARGS__)

/*
 * Pipelines: queue with redisAppendCommand, then harness_pipe_flush(c)
 * writes everything queued (asserts) and harness_pipe_reply(c, what) reads
 * the next reply (asserts one came; caller frees).
 */
void harness_pipe_flush_at(int line, redisContext *c);
redisReply *harness_pipe_reply_at(int line, redisContext *c, const char *what);
#define harness_pipe_flush(c) harness_pipe_flush_at(__LINE__, (c))
#define harness_pipe_reply(c, what) harness_pipe_reply_at(__LINE__, (c), (what))

/*
 * The proxy must still be alive and exit 0 on SIGTERM (so sanitizer and
 * leak reports fail the test that caused them).  Asserts; a NULL or pseudo
 * handle passes.
 */
void harness_proxy_check_exit(harness_proc *p);

/* RESP encoding of one command written as a line of words separated by
 * single spaces ("ZRANGE z 0 -1 WITHSCORES"; no word may hold a space),
 * malloc'd. For corpora of commands kept as plain strings. */
char *harness_resp_line(const char *line);

/* RESP encoding of one command, arguments as a NULL-terminated list (malloc'd). */
char *harness_resp(const char *first, ...) __attribute__((sentinel));
#define harness_resp_cmd(...) harness_resp(__VA_ARGS__, (const char *)NULL)

/* ---- transcripts: differential runs over raw sockets ------------------------ */

/*
 * A transcript records what the connections of one run sent and received,
 * reply by reply, as exact bytes ("0< GET k" / "0> $1\r\nv\r\n"). The same
 * scenario is run against the proxy and against a reference redis and the
 * two transcripts compared: the way to test RESP3 (hiredis 0.14 cannot read
 * it) and asynchronous pushes.
 */
#define HARNESS_TX_CONNS 6            /* connections one transcript may use */
#define HARNESS_TX_REPLY_MS 5000      /* bound for one awaited reply */
#define HARNESS_TX_QUIET_MS 200       /* "nothing more arrives" window */

typedef struct harness_tx {
    FILE *f;                          /* open_memstream over text */
    char *text;                       /* the transcript (valid after harness_tx_close) */
    size_t len;                       /* its length */
    harness_raw *conn[HARNESS_TX_CONNS]; /* the run's connections (NULL = unused) */
} harness_tx;

/* Start a transcript with nconns connections to port (asserts). */
void harness_tx_open(harness_tx *t, int nconns, int port);

/* Open connection i to another port (a write straight to Redis). */
void harness_tx_connect(harness_tx *t, int i, int port);

/* Close connection i now (its peer sees it go). */
void harness_tx_drop(harness_tx *t, int i);

/* Close the connections; t->text stays (free it). */
void harness_tx_close(harness_tx *t);

/* Send a command line on connection i and note it; log_as (if not NULL)
 * is written instead of the line (ids that differ between runs). */
void harness_tx_send_as(harness_tx *t, int i, const char *line, const char *log_as);
#define harness_tx_send(t, i, line) harness_tx_send_as((t), (i), (line), NULL)

/* Wait for one reply (or push) on connection i and note its bytes. */
void harness_tx_reply(harness_tx *t, int i);

/* The same, noting only its type byte (replies that differ by nature:
 * HELLO's id). */
void harness_tx_reply_type(harness_tx *t, int i);

/* The same for an integer reply that differs between runs (CLIENT ID):
 * noted as "(integer)", returned (-1 if it is not an integer). */
long long harness_tx_reply_int(harness_tx *t, int i);

/* The same, with each occurrence of `from` in the reply noted as `to`
 * (an id inside a reply that differs between runs). */
void harness_tx_reply_masked(harness_tx *t, int i, const char *from, const char *to);

/* Send and note the reply. */
void harness_tx_cmd(harness_tx *t, int i, const char *line);

/* Nothing arrives on connection i for HARNESS_TX_QUIET_MS (noted if something does). */
void harness_tx_quiet(harness_tx *t, int i);

/* Note a free-form line (a step both runs take). */
void harness_tx_note(harness_tx *t, const char *what);

/* Assert two transcripts are identical, showing the first differing line. */
#define harness_tx_same(what, a, b) harness_tx_same_at(__LINE__, (what), (a), (b))
void harness_tx_same_at(int line, const char *what, const char *proxy_tx, const char *redis_tx);

/* ---- INFO-style text ("name:value" lines) --------------------------------- */

/*
 * Value of field name in text (INFO, CLUSTER INFO, REDSNANO STATS/L1)
 * copied into out (truncated to cap).  0, or -ENOENT when absent.
 */
int harness_text_field(const char *text, const char *name, char *out, size_t cap);

/* The same as a number; absent when the field is missing. */
long long harness_text_ll(const char *text, const char *name, long long absent);

/*
 * INFO <section> on c, value of field into out.  0, -ENOENT (absent),
 * -EIO (no reply), -EPROTO (not a bulk string); harness_error() says which.
 */
int harness_info_field(redisContext *c, const char *section, const char *field, char *out, size_t cap);

/* The same as a number; asserts that the field is there. */
long long harness_info_ll(redisContext *c, const char *section, const char *field);

/* calls= of cmdstat_<cmd> (lower case) in INFO commandstats on c; 0 if never called. */
long long harness_cmdstat_calls(redisContext *c, const char *cmd);

/* The same from an INFO commandstats text already fetched. */
long long harness_text_cmdstat(const char *info, const char *cmd);

/* A REDSNANO STATS counter as a number; asserts that it is there. */
long long harness_proxy_stat_ll(redisContext *c, const char *name);

/* A REDSNANO L1 field as a number; asserts that it is there. */
long long harness_proxy_l1_ll(redisContext *c, const char *name);

/* ---- waiting on observable state ----------------------------------------- */

#define HARNESS_POLL_MS 5   /* polling period of harness_wait_until */

/*
 * Evaluate cond every HARNESS_POLL_MS until it is true or timeout_ms have
 * passed; true when it became true.  The last evaluation starts after the
 * deadline, so a slow machine does not fail a condition that holds.  Use
 * it for every wait whose end can be observed; a fixed sleep is for
 * "nothing must happen during this time" only.
 */
#define harness_wait_until(cond, timeout_ms)                                     \
    ({                                                                          \
        long long harness_deadline_ = harness_now_ms() + (timeout_ms);          \
        bool harness_ok_;                                                       \
        for (;;) {                                                              \
            bool harness_late_ = harness_now_ms() >= harness_deadline_;         \
            if ((harness_ok_ = (cond)) || harness_late_)                        \
                break;                                                          \
            harness_sleep_ms(HARNESS_POLL_MS);                                  \
        }                                                                       \
        harness_ok_;                                                            \
    })

/* ---- Redis Cluster --------------------------------------------------------- */

#define HARNESS_MAX_CLUSTER 16           /* nodes of harness_cluster_start */
#define HARNESS_BUS_BELOW 20000          /* bus port = port - this when port + 10000 is ephemeral */
#define HARNESS_CLUSTER_CREATE_MS 20000  /* bound for redis-cli --cluster create */
#define HARNESS_CLUSTER_OK_MS 10000      /* bound for cluster_state:ok on every node */

/*
 * Start n empty cluster-enabled redis-servers on 127.0.0.1:ports[i]
 * (--cluster-node-timeout node_timeout_ms, bus port = port + 10000, or
 * port - HARNESS_BUS_BELOW when port + 10000 is an ephemeral port, config
 * nodes-<port>.conf in the tmpdir), join them with `redis-cli --cluster
 * create` (no replicas, slots spread evenly) and wait until every node says
 * cluster_state:ok and knows n nodes.  procs[i] receives node i.  Asserts.
 */
void harness_cluster_start(const int *ports, int n, int node_timeout_ms, harness_proc **procs);

/*
 * The same with `replicas` replicas per primary (--cluster-replicas; n must
 * be a multiple of replicas + 1; redis-cli picks the roles: ask CLUSTER
 * SLOTS), and waits as well until every replica's link is up and every
 * node's CLUSTER SLOTS lists them.
 */
void harness_cluster_start_replicas(const int *ports, int n, int replicas, int node_timeout_ms,
                                    harness_proc **procs);

/* Milliseconds from a monotonic clock. */
long long harness_now_ms(void);

/* Sleep for ms milliseconds. */
void harness_sleep_ms(int ms);

/* Is the redis-server on port a replica with master_link_status:up? */
bool harness_replica_link_up(int port);

/* health= of the backend with this address in the proxy's REDSNANO
 * BACKENDS: 1 up, 0 down, -1 not listed or no answer. */
int harness_proxy_backend_health(redisContext *px, const char *addr);

#endif
