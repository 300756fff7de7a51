/*
 * harness.c — child processes, hiredis helpers and raw sockets for the
 * integration tests (contract in harness.h).
 *
 *   test ─fork/exec─▶ redis-server | redsnano   (registry, PDEATHSIG, logs in tmpdir)
 *   test ─hiredis──▶ harness_connect / harness_cmd
 *   test ─socket───▶ harness_raw_* (RESP framing by resp_frame_len below)
 *
 * Everything here runs inside one Criterion worker process per test; the
 * registry and temporary directory are per process.
 */
#define _GNU_SOURCE
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define HARNESS_READY_POLL_MS 20  /* retry period while waiting for readiness */
#define HARNESS_PROBE_MS 200      /* connect/read bound of one readiness probe */
#define HARNESS_RAW_CHUNK 65536   /* receive granularity of raw sockets */

static char harness_errbuf[2048];          /* text of harness_error() */
static bool harness_inited;                 /* SIGPIPE ignored, atexit set */
static char harness_tmp[256];               /* per-process temporary dir, "" until made */
static harness_proc *harness_registry;      /* every child started, newest first */

static void harness_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void harness_set_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(harness_errbuf, sizeof(harness_errbuf), fmt, ap);
    va_end(ap);
}

const char *harness_error(void)
{
    return harness_errbuf;
}

/*
 * Fatal signal in the test process: Criterion with --tap shows neither
 * stderr nor the cause, so leave a note in the temporary directory (which
 * survives a crash), kill the children, then die of the same signal.
 */
static void harness_on_crash(int sig)
{
    char path[300];
    int fd;

    if (harness_tmp[0] != '\0') {
        snprintf(path, sizeof(path), "%s/test-crash.log", harness_tmp);
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            char line[96];
            void *frames[32];
            int n = snprintf(line, sizeof(line), "test process %d: fatal signal %d (%s)\n", (int)getpid(),
                             sig, strsignal(sig));

            if (n > 0 && write(fd, line, (size_t)n) < 0)
                n = 0;
            backtrace_symbols_fd(frames, backtrace(frames, 32), fd);
            close(fd);
        }
    }
    for (harness_proc *p = harness_registry; p != NULL; p = p->next)
        if (p->pid > 0)
            kill(-p->pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* First use in a process: writes to closed sockets must not kill the test. */
static void harness_init(void)
{
    static const int fatal[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTERM, SIGINT, SIGHUP, SIGQUIT };
    struct sigaction sa;

    if (harness_inited)
        return;
    harness_inited = true;
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = harness_on_crash;
    sa.sa_flags = SA_RESETHAND;
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        sigaction(fatal[i], &sa, NULL);
    atexit(harness_cleanup);
}

bool harness_direct(void)
{
    const char *v = getenv("HARNESS_DIRECT");

    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

int harness_port(int base, int offset)
{
    const char *shift = getenv("HARNESS_PORT_SHIFT");

    return base + offset + (shift != NULL ? atoi(shift) : 0);
}

/* One "Name:   1234 kB" line of /proc/<pid>/status, in KiB; -1 if absent. */
static long proc_status_kb(const harness_proc *p, const char *name)
{
    char path[64], line[256];
    size_t n = strlen(name);
    long kb = -1;

    if (p == NULL || p->pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, name, n) == 0 && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kb;
}

long harness_proc_rss_kb(const harness_proc *p)
{
    return proc_status_kb(p, "VmRSS");
}

long harness_proc_peak_rss_kb(const harness_proc *p)
{
    return proc_status_kb(p, "VmHWM");
}

int harness_proc_fds(const harness_proc *p)
{
    char path[64];
    int n = 0;

    if (p == NULL || p->pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)p->pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

long long harness_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void harness_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

const char *harness_tmpdir(void)
{
    harness_init();
    if (harness_tmp[0] == '\0') {
        snprintf(harness_tmp, sizeof(harness_tmp), "/tmp/redsnano-it-XXXXXX");
        if (mkdtemp(harness_tmp) == NULL) {
            harness_tmp[0] = '\0';
            cr_assert_fail("mkdtemp: %s", strerror(errno));
        }
    }
    return harness_tmp;
}

const char *harness_status_str(int status)
{
    static char buf[64];

    if (status == -1)
        snprintf(buf, sizeof(buf), "not reaped");
    else if (WIFEXITED(status))
        snprintf(buf, sizeof(buf), "exited %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, sizeof(buf), "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, sizeof(buf), "wait status 0x%x", status);
    return buf;
}

char *harness_log_tail(const harness_proc *p, size_t max_bytes)
{
    static const char *const reports[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                           "runtime error:", "WARNING: AddressSanitizer" };
    FILE *f = p != NULL ? fopen(p->log_path, "rb") : NULL;
    char *all = NULL, *out;
    const char *from = NULL;
    size_t size = 0, n;

    if (f == NULL)
        return strdup("(no log)");
    for (;;) {
        char *nb = realloc(all, size + 65536 + 1);

        if (nb == NULL)
            break;
        all = nb;
        n = fread(all + size, 1, 65536, f);
        size += n;
        if (n < 65536)
            break;
    }
    fclose(f);
    if (all == NULL)
        return strdup("(no memory)");
    all[size] = '\0';
    if (size == 0) {
        free(all);
        return strdup("(empty log)");
    }
    for (size_t i = 0; i < sizeof(reports) / sizeof(reports[0]); i++) {
        const char *hit = strstr(all, reports[i]);

        if (hit != NULL && (from == NULL || hit < from))
            from = hit;
    }
    if (from != NULL) {
        while (from > all && from[-1] != '\n')
            from--;
        n = strnlen(from, max_bytes);
    } else {
        n = size < max_bytes ? size : max_bytes;
        from = all + size - n;
    }
    out = strndup(from, n);
    free(all);
    return out != NULL ? out : strdup("(no memory)");
}

/* Reset what exec keeps (ignored signals, mask), called in the child. */
static void harness_child_signals(void)
{
    static const int sigs[] = { SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGALRM, SIGUSR1, SIGUSR2 };
    struct sigaction sa;
    sigset_t none;
    size_t i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Close every inherited descriptor from 3 up (sockets and pipes of the test). */
static void harness_child_close_fds(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
        return;
#endif
    for (int fd = 3; fd < 65536; fd++)
        close(fd);
}

/*
 * fork+exec argv with PDEATHSIG, stdin /dev/null and stdout/stderr to
 * out_fd (or the log file log_path when out_fd < 0).  Returns the pid or
 * -errno.  The child exits 127 when exec fails.
 */
static pid_t harness_spawn(char *const argv[], const char *log_path, int out_fd)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int fd;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        /* Own process group: nothing the child signals to its group can
         * reach the test, and cleanup can kill the child's own children. */
        setpgid(0, 0);
        harness_child_signals();
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0 && fd != 0) {
            dup2(fd, 0);
            close(fd);
        }
        fd = out_fd >= 0 ? out_fd : open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        harness_child_close_fds();
        execvp(argv[0], argv);
        {
            static const char msg[] = "harness: exec failed\n";
            ssize_t w = write(2, msg, sizeof(msg) - 1);
            (void)w;
        }
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

/* Is something already accepting connections on 127.0.0.1:port? */
static bool harness_port_busy(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool busy;

    if (fd < 0)
        return false;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    busy = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return busy;
}

bool harness_proc_exited(harness_proc *p)
{
    int status;
    pid_t r;

    if (p == NULL || p->pid <= 0)
        return true;
    r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid) {
        p->status = status;
        p->pid = 0;
        return true;
    }
    if (r < 0 && errno == ECHILD) {
        p->status = -1;
        p->pid = 0;
        return true;
    }
    return false;
}

static harness_proc *harness_proc_new(harness_kind kind, int port)
{
    harness_proc *p = calloc(1, sizeof(*p));

    cr_assert_not_null(p, "out of memory");
    p->kind = kind;
    p->port = port;
    p->status = -1;
    p->next = harness_registry;
    harness_registry = p;
    return p;
}

/* Copy argv (NULL-terminated) into p->argv. 0 or -E2BIG. */
static int harness_proc_set_argv(harness_proc *p, const char *const *argv)
{
    size_t i;

    for (i = 0; argv[i] != NULL; i++) {
        if (i + 1 >= HARNESS_MAX_ARGS)
            return -E2BIG;
        p->argv[i] = strdup(argv[i]);
    }
    p->argv[i] = NULL;
    return 0;
}

/* Remove from the registry and free (the process must be gone). */
static void harness_proc_free(harness_proc *p)
{
    harness_proc **pp;

    for (pp = &harness_registry; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    for (size_t i = 0; i < HARNESS_MAX_ARGS && p->argv[i] != NULL; i++)
        free(p->argv[i]);
    free(p);
}

/*
 * One readiness probe: connect, PING.  Returns 1 on +PONG, 2 on another
 * reply (copied into last), 0 when nothing answered.
 */
static int harness_probe(int port, char *last, size_t cap)
{
    redisContext *c = harness_try_connect(port, HARNESS_PROBE_MS);
    redisReply *r;
    int rc = 0;

    if (c == NULL)
        return 0;
    r = redisCommand(c, "PING");
    if (r != NULL) {
        if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) {
            rc = 1;
        } else {
            char *s = harness_reply_str(r);

            snprintf(last, cap, "%s", s);
            free(s);
            rc = 2;
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return rc;
}

/* Does the redis on port report process_id == pid? */
static bool harness_redis_is_pid(int port, pid_t pid)
{
    redisContext *c = harness_try_connect(port, HARNESS_PROBE_MS);
    redisReply *r;
    bool ok = false;
    char want[64];

    if (c == NULL)
        return false;
    r = redisCommand(c, "INFO server");
    snprintf(want, sizeof(want), "process_id:%d\r\n", (int)pid);
    if (r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, want) != NULL)
        ok = true;
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Start p->argv and wait for readiness.  0 or -errno with harness_error set. */
static int harness_proc_launch(harness_proc *p, int bound_ms, bool need_pong)
{
    long long deadline;
    char last[256] = "";
    pid_t pid;

    if (harness_port_busy(p->port)) {
        harness_set_error("port %d is already in use on 127.0.0.1 (stale process?)", p->port);
        return -EADDRINUSE;
    }
    pid = harness_spawn(p->argv, p->log_path, -1);
    if (pid < 0) {
        harness_set_error("fork %s: %s", p->argv[0], strerror(-pid));
        return (int)pid;
    }
    p->pid = pid;
    p->status = -1;
    deadline = harness_now_ms() + bound_ms;
    for (;;) {
        int probe;

        if (harness_proc_exited(p)) {
            char *tail = harness_log_tail(p, 1500);

            harness_set_error("%s on port %d %s before answering PING; log %s:\n%s", p->argv[0],
                              p->port, harness_status_str(p->status), p->log_path, tail);
            free(tail);
            return -ECHILD;
        }
        probe = harness_probe(p->port, last, sizeof(last));
        if (probe == 1 || (probe == 2 && !need_pong)) {
            if (p->kind != HARNESS_REDIS || harness_redis_is_pid(p->port, p->pid))
                return 0;
        }
        if (harness_now_ms() > deadline)
            break;
        harness_sleep_ms(HARNESS_READY_POLL_MS);
    }
    {
        char *tail = harness_log_tail(p, 1500);

        harness_set_error("%s on port %d did not answer PING%s within %d ms (last reply: %s); log %s:\n%s",
                          p->argv[0], p->port, need_pong ? " with +PONG" : "", bound_ms,
                          last[0] ? last : "none", p->log_path, tail);
        free(tail);
    }
    harness_proc_stop(p);
    return -ETIMEDOUT;
}

harness_proc *harness_try_redis_startv(int port, const char *const *extra)
{
    const char *argv[HARNESS_MAX_ARGS];
    char port_s[16], log_path[512];
    const char *dir = harness_tmpdir();
    harness_proc *p;
    size_t n = 0;

    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(log_path, sizeof(log_path), "%s/redis-%d.log", dir, port);
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = port_s;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = dir;
    argv[n++] = "--logfile";
    argv[n++] = log_path;
    argv[n++] = "--enable-debug-command";
    argv[n++] = "local";
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (n + 1 >= HARNESS_MAX_ARGS) {
            harness_set_error("too many redis-server arguments");
            return NULL;
        }
        argv[n++] = extra[i];
    }
    argv[n] = NULL;

    p = harness_proc_new(HARNESS_REDIS, port);
    harness_proc_set_argv(p, argv);
    snprintf(p->log_path, sizeof(p->log_path), "%s", log_path);
    if (harness_proc_launch(p, HARNESS_REDIS_START_MS, true) != 0) {
        harness_proc_free(p);
        return NULL;
    }
    return p;
}

/* Collect a NULL-terminated va_list of strings into out (cap entries). */
static void harness_collect(va_list ap, const char **out, size_t cap)
{
    size_t n = 0;
    const char *s;

    while ((s = va_arg(ap, const char *)) != NULL) {
        cr_assert(n + 1 < cap, "too many harness arguments");
        out[n++] = s;
    }
    out[n] = NULL;
}

harness_proc *harness_redis_startl(int port, ...)
{
    const char *extra[HARNESS_MAX_ARGS];
    harness_proc *p;
    va_list ap;

    va_start(ap, port);
    harness_collect(ap, extra, HARNESS_MAX_ARGS);
    va_end(ap);
    p = harness_try_redis_startv(port, extra);
    cr_assert_not_null(p, "redis-server start failed: %s", harness_error());
    return p;
}

harness_proc *harness_sentinel_start(int port, const char *conf_lines)
{
    const char *dir = harness_tmpdir();
    char conf[512];
    harness_proc *p;

    snprintf(conf, sizeof(conf), "%s/sentinel-%d.conf", dir, port);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f, "cannot write %s: %s", conf, strerror(errno));
    fprintf(f, "port %d\nbind 127.0.0.1\ndaemonize no\ndir \"%s\"\n%s\n", port, dir, conf_lines);
    fclose(f);
    const char *argv[] = { "redis-server", conf, "--sentinel", NULL };
    p = harness_proc_new(HARNESS_SENTINEL, port);
    harness_proc_set_argv(p, argv);
    snprintf(p->log_path, sizeof(p->log_path), "%s/sentinel-%d.log", dir, port);
    cr_assert(harness_proc_launch(p, HARNESS_REDIS_START_MS, false) == 0, "Sentinel start failed: %s",
              harness_error());
    return p;
}

void harness_redis_restart(harness_proc *p)
{
    cr_assert_not_null(p);
    cr_assert(p->kind == HARNESS_REDIS, "restart of a non-redis handle");
    if (!harness_proc_exited(p))
        harness_proc_stop(p);
    cr_assert(harness_proc_launch(p, HARNESS_REDIS_START_MS, true) == 0,
              "redis-server restart failed: %s", harness_error());
}

/* Path of the proxy binary: REDSNANO_BIN, ./redsnano, build/redsnano. */
static const char *harness_proxy_bin(void)
{
    const char *env = getenv("REDSNANO_BIN");

    if (env != NULL && env[0] != '\0')
        return env;
    if (access("./redsnano", X_OK) == 0)
        return "./redsnano";
    return "build/redsnano";
}

harness_proc *harness_try_proxy_startv(int port, const char *const *args, bool need_pong)
{
    const char *argv[HARNESS_MAX_ARGS];
    const char *bin;
    char port_s[16];
    harness_proc *p;
    size_t n = 0;

    harness_init();
    if (harness_direct()) {
        for (size_t i = 0; args[i] != NULL; i++) {
            const char *colon;

            if (strcmp(args[i], "--primary") != 0 || args[i + 1] == NULL)
                continue;
            colon = strrchr(args[i + 1], ':');
            if (colon == NULL)
                break;
            p = harness_proc_new(HARNESS_PSEUDO, atoi(colon + 1));
            p->status = 0;
            return p;
        }
        harness_set_error("HARNESS_DIRECT needs --primary host:port among the proxy arguments");
        return NULL;
    }
    bin = harness_proxy_bin();
    if (access(bin, X_OK) != 0) {
        harness_set_error("proxy binary %s is not executable (%s); set REDSNANO_BIN", bin,
                          strerror(errno));
        return NULL;
    }
    snprintf(port_s, sizeof(port_s), "%d", port);
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = port_s;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    for (size_t i = 0; args[i] != NULL; i++) {
        if (n + 1 >= HARNESS_MAX_ARGS) {
            harness_set_error("too many proxy arguments");
            return NULL;
        }
        argv[n++] = args[i];
    }
    argv[n] = NULL;

    p = harness_proc_new(HARNESS_PROXY, port);
    harness_proc_set_argv(p, argv);
    snprintf(p->log_path, sizeof(p->log_path), "%s/redsnano-%d.log", harness_tmpdir(), port);
    if (harness_proc_launch(p, HARNESS_PROXY_START_MS, need_pong) != 0) {
        harness_proc_free(p);
        return NULL;
    }
    return p;
}

harness_proc *harness_proxy_startl(int port, ...)
{
    const char *args[HARNESS_MAX_ARGS];
    harness_proc *p;
    va_list ap;

    va_start(ap, port);
    harness_collect(ap, args, HARNESS_MAX_ARGS);
    va_end(ap);
    p = harness_try_proxy_startv(port, args, true);
    cr_assert_not_null(p, "redsnano start failed: %s", harness_error());
    return p;
}

harness_proc *harness_proxy_start_unreadyl(int port, ...)
{
    const char *args[HARNESS_MAX_ARGS];
    harness_proc *p;
    va_list ap;

    va_start(ap, port);
    harness_collect(ap, args, HARNESS_MAX_ARGS);
    va_end(ap);
    p = harness_try_proxy_startv(port, args, false);
    cr_assert_not_null(p, "redsnano start failed: %s", harness_error());
    return p;
}

/* Wait for the child until deadline; true when reaped. */
static bool harness_proc_wait_exit(harness_proc *p, long long deadline)
{
    while (!harness_proc_exited(p)) {
        if (harness_now_ms() > deadline)
            return false;
        harness_sleep_ms(5);
    }
    return true;
}

int harness_proc_stop(harness_proc *p)
{
    if (p == NULL)
        return -1;
    if (p->kind == HARNESS_PSEUDO)
        return p->status = 0;
    if (harness_proc_exited(p))
        return p->status;
    kill(p->pid, SIGTERM);
    kill(p->pid, SIGCONT);
    if (!harness_proc_wait_exit(p, harness_now_ms() + HARNESS_STOP_MS)) {
        int status;

        kill(p->pid, SIGKILL);
        if (waitpid(p->pid, &status, 0) == p->pid)
            p->status = status;
        p->pid = 0;
    }
    return p->status;
}

int harness_redis_kill9(harness_proc *p)
{
    int status;

    if (p == NULL || p->kind == HARNESS_PSEUDO)
        return -1;
    if (harness_proc_exited(p))
        return p->status;
    kill(p->pid, SIGKILL);
    if (waitpid(p->pid, &status, 0) == p->pid)
        p->status = status;
    p->pid = 0;
    return p->status;
}

int harness_stop_signal(harness_proc *p, int sig)
{
    if (p == NULL || p->pid <= 0)
        return -ESRCH;
    return kill(p->pid, sig) == 0 ? 0 : -errno;
}

static int harness_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void harness_cleanup(void)
{
    const char *keep = getenv("HARNESS_KEEP_TMP");

    while (harness_registry != NULL) {
        harness_proc *p = harness_registry;

        if (p->kind != HARNESS_PSEUDO && !harness_proc_exited(p)) {
            int status;

            kill(-p->pid, SIGKILL);
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            p->pid = 0;
        }
        harness_proc_free(p);
    }
    if (harness_tmp[0] != '\0' && (keep == NULL || keep[0] == '\0' || strcmp(keep, "0") == 0))
        nftw(harness_tmp, harness_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    harness_tmp[0] = '\0';
}

/* ---- hiredis helpers -------------------------------------------------- */

redisContext *harness_try_connect(int port, int timeout_ms)
{
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    struct timeval io = { HARNESS_IO_MS / 1000, (HARNESS_IO_MS % 1000) * 1000 };
    redisContext *c;

    harness_init();
    c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c == NULL) {
        harness_set_error("connect 127.0.0.1:%d: out of memory", port);
        return NULL;
    }
    if (c->err) {
        harness_set_error("connect 127.0.0.1:%d: %s", port, c->errstr);
        redisFree(c);
        return NULL;
    }
    if (timeout_ms < HARNESS_IO_MS)
        io = tv;
    redisSetTimeout(c, io);
    return c;
}

redisContext *harness_connect(int port)
{
    redisContext *c = harness_try_connect(port, HARNESS_CONNECT_MS);
    struct timeval io = { HARNESS_IO_MS / 1000, (HARNESS_IO_MS % 1000) * 1000 };

    cr_assert_not_null(c, "%s", harness_error());
    redisSetTimeout(c, io);
    return c;
}

redisReply *harness_cmd(redisContext *c, const char *fmt, ...)
{
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    return r;
}

bool harness_reply_equal(const redisReply *a, const redisReply *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case REDIS_REPLY_INTEGER:
        return a->integer == b->integer;
    case REDIS_REPLY_NIL:
        return true;
    case REDIS_REPLY_ARRAY:
        if (a->elements != b->elements)
            return false;
        for (size_t i = 0; i < a->elements; i++)
            if (!harness_reply_equal(a->element[i], b->element[i]))
                return false;
        return true;
    default:
        return false;
    }
}

/* Print at most 120 bytes of s, escaped. */
static void harness_put_escaped(FILE *f, const char *s, size_t len)
{
    size_t shown = len > 120 ? 120 : len;

    for (size_t i = 0; i < shown; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\r')
            fputs("\\r", f);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch < 32 || ch >= 127)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    if (shown < len)
        fprintf(f, "...(%zu bytes)", len);
}

static void harness_put_reply(FILE *f, const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
        fputc('"', f);
        harness_put_escaped(f, r->str, r->len);
        fputc('"', f);
        break;
    case REDIS_REPLY_STATUS:
        fputc('+', f);
        harness_put_escaped(f, r->str, r->len);
        break;
    case REDIS_REPLY_ERROR:
        fputs("(error) ", f);
        harness_put_escaped(f, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        fprintf(f, "(integer) %lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        fputs("(nil)", f);
        break;
    case REDIS_REPLY_ARRAY:
        fputc('[', f);
        for (size_t i = 0; i < r->elements; i++) {
            if (i > 0)
                fputs(", ", f);
            if (i == 16) {
                fprintf(f, "...(%zu elements)", r->elements);
                break;
            }
            harness_put_reply(f, r->element[i]);
        }
        fputc(']', f);
        break;
    default:
        fprintf(f, "(type %d)", r->type);
    }
}

char *harness_reply_str(const redisReply *r)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f;

    if (r == NULL)
        return strdup("(no reply)");
    f = open_memstream(&buf, &size);
    if (f == NULL)
        return strdup("(no memory)");
    harness_put_reply(f, r);
    fclose(f);
    return buf;
}

int harness_proxy_stat(redisContext *c, const char *name, char *out, size_t cap)
{
    redisReply *r = redisCommand(c, "REDSNANO STATS");
    size_t nlen = strlen(name);
    int rc = -ENOENT;
    const char *line;

    if (r == NULL)
        return -EIO;
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return -EPROTO;
    }
    for (line = r->str; line != NULL && *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t llen = eol != NULL ? (size_t)(eol - line) : strlen(line);

        if (llen > 0 && line[llen - 1] == '\r')
            llen--;
        if (llen > nlen && strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
            size_t vlen = llen - nlen - 1;

            if (cap > 0) {
                if (vlen >= cap)
                    vlen = cap - 1;
                memcpy(out, line + nlen + 1, vlen);
                out[vlen] = '\0';
            }
            rc = 0;
            break;
        }
        line = eol != NULL ? eol + 1 : NULL;
    }
    freeReplyObject(r);
    return rc;
}

/* ---- raw sockets ------------------------------------------------------- */

harness_raw *harness_raw_open(int port)
{
    struct sockaddr_in sa;
    harness_raw *r;
    int one = 1;
    int fd;

    harness_init();
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        harness_set_error("socket: %s", strerror(errno));
        return NULL;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        harness_set_error("connect 127.0.0.1:%d: %s", port, strerror(errno));
        close(fd);
        return NULL;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        close(fd);
        harness_set_error("out of memory");
        return NULL;
    }
    r->fd = fd;
    return r;
}

harness_raw *harness_raw_open_tls(int port, const char *ca_file, const char *cert_file,
                                  const char *key_file)
{
    harness_raw *r = harness_raw_open(port);
    SSL_CTX *ctx;
    SSL *ssl;

    if (r == NULL)
        return NULL;
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || !SSL_CTX_load_verify_locations(ctx, ca_file, NULL) ||
        (cert_file != NULL && (!SSL_CTX_use_certificate_chain_file(ctx, cert_file) ||
                               !SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM)))) {
        harness_set_error("TLS configuration: %s", ERR_reason_error_string(ERR_get_error()));
        SSL_CTX_free(ctx);
        harness_raw_close(r, false);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    ssl = SSL_new(ctx);
    SSL_CTX_free(ctx);                  /* the SSL holds its own reference */
    if (ssl == NULL || !X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1") || !SSL_set_fd(ssl, r->fd) ||
        SSL_connect(ssl) != 1) {
        harness_set_error("TLS handshake with 127.0.0.1:%d: %s", port,
                          ERR_reason_error_string(ERR_get_error()));
        SSL_free(ssl);
        harness_raw_close(r, false);
        return NULL;
    }
    r->tls = ssl;
    return r;
}

int harness_raw_send(harness_raw *r, const void *bytes, size_t len)
{
    const char *p = bytes;

    if (r->tls != NULL) {
        size_t done = 0;

        ERR_clear_error();
        if (len > 0 && SSL_write_ex(r->tls, bytes, len, &done) != 1) {
            harness_set_error("TLS send: %s", ERR_reason_error_string(ERR_get_error()));
            return -EPIPE;
        }
        return 0;
    }
    while (len > 0) {
        ssize_t n = send(r->fd, p, len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            harness_set_error("send: %s", strerror(errno));
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int harness_raw_sends(harness_raw *r, const char *str)
{
    return harness_raw_send(r, str, strlen(str));
}

/* Receive what arrives before deadline into r->buf: >0 bytes, 0 EOF, -errno. */
static long harness_raw_fill(harness_raw *r, long long deadline)
{
    struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
    long long left = deadline - harness_now_ms();
    ssize_t n;
    int pr;

    if (r->eof)
        return 0;
    if (left < 0)
        left = 0;
    if (r->tls != NULL && SSL_pending(r->tls) > 0)
        pr = 1;                         /* decrypted bytes wait inside OpenSSL */
    else
        pr = poll(&pfd, 1, (int)left);
    if (pr < 0)
        return errno == EINTR ? -EINTR : -errno;
    if (pr == 0)
        return -ETIMEDOUT;
    if (r->cap - r->len < HARNESS_RAW_CHUNK) {
        size_t cap = r->cap * 2 + HARNESS_RAW_CHUNK;
        char *nb = realloc(r->buf, cap + 1);

        if (nb == NULL)
            return -ENOMEM;
        r->buf = nb;
        r->cap = cap;
    }
    if (r->tls != NULL) {
        size_t got = 0;

        ERR_clear_error();
        if (SSL_read_ex(r->tls, r->buf + r->len, r->cap - r->len, &got) != 1) {
            int se = SSL_get_error(r->tls, 0);
            if (se == SSL_ERROR_WANT_READ)
                return -EINTR;          /* a record's start only: poll again */
            r->eof = true;              /* close_notify, TCP end or TLS failure */
            return 0;
        }
        n = (ssize_t)got;
    } else {
        n = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
    }
    if (n < 0)
        return errno == EINTR ? -EINTR : -errno;
    if (n == 0) {
        r->eof = true;
        return 0;
    }
    r->len += (size_t)n;
    return n;
}

/* Parse a decimal (optionally negative) integer of exactly len bytes. */
static bool harness_parse_ll(const char *s, size_t len, long long *out)
{
    long long v = 0;
    bool neg = false;
    size_t i = 0;

    if (len == 0)
        return false;
    if (s[0] == '-') {
        neg = true;
        i = 1;
        if (len == 1)
            return false;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (1LL << 50))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/*
 * Length of the first complete RESP2/RESP3 value in p[0..len): >0 when
 * complete, 0 when more bytes are needed, -1 when the bytes are no RESP.
 * One counter of values still expected suffices because RESP is prefix
 * order: an aggregate header adds its children to the count.
 */
static long resp_frame_len(const char *p, size_t len)
{
    size_t pos = 0;
    long long pending = 1;

    while (pending > 0) {
        const char *nl;
        const char *arg;
        size_t arglen, after;
        long long n;
        char t;

        if (pos >= len)
            return 0;
        t = p[pos];
        nl = memchr(p + pos, '\n', len - pos);
        if (nl == NULL)
            return 0;
        if (nl == p + pos || nl[-1] != '\r')
            return -1;
        arg = p + pos + 1;
        arglen = (size_t)(nl - 1 - arg);
        after = (size_t)(nl - p) + 1;
        pending--;
        switch (t) {
        case '+': case '-': case ':': case ',': case '_': case '#': case '(':
            pos = after;
            break;
        case '$': case '=': case '!':
            if (!harness_parse_ll(arg, arglen, &n) || n < -1)
                return -1;
            if (n == -1) {
                pos = after;
                break;
            }
            if (len - after < (size_t)n + 2)
                return 0;
            if (p[after + n] != '\r' || p[after + n + 1] != '\n')
                return -1;
            pos = after + (size_t)n + 2;
            break;
        case '*': case '~': case '>': case '%': case '|':
            if (!harness_parse_ll(arg, arglen, &n) || n < -1)
                return -1;
            if (n > 0)
                pending += (t == '%') ? 2 * n : (t == '|') ? 2 * n + 1 : n;
            else if (t == '|')
                pending += 1;
            pos = after;
            break;
        default:
            return -1;
        }
    }
    return (long)pos;
}

long harness_raw_reply(harness_raw *r, int timeout_ms, char **out)
{
    long long deadline = harness_now_ms() + timeout_ms;

    *out = NULL;
    for (;;) {
        long flen = r->len > 0 ? resp_frame_len(r->buf, r->len) : 0;
        long n;

        if (flen < 0) {
            harness_set_error("received bytes are not RESP");
            return -EPROTO;
        }
        if (flen > 0) {
            char *copy = malloc((size_t)flen + 1);

            if (copy == NULL)
                return -ENOMEM;
            memcpy(copy, r->buf, (size_t)flen);
            copy[flen] = '\0';
            memmove(r->buf, r->buf + flen, r->len - (size_t)flen);
            r->len -= (size_t)flen;
            *out = copy;
            return flen;
        }
        n = harness_raw_fill(r, deadline);
        if (n == 0) {
            harness_set_error("peer closed the connection (%zu bytes of an unfinished reply)", r->len);
            return -ECONNRESET;
        }
        if (n == -EINTR)
            continue;
        if (n < 0) {
            harness_set_error("no complete reply within %d ms (%s; %zu bytes buffered)", timeout_ms,
                              strerror((int)-n), r->len);
            return n;
        }
    }
}

int harness_raw_wait_eof(harness_raw *r, int timeout_ms)
{
    long long deadline = harness_now_ms() + timeout_ms;

    for (;;) {
        long n = harness_raw_fill(r, deadline);

        if (n == 0 || n == -ECONNRESET)
            return 0;
        if (n == -EINTR || n > 0)
            continue;
        return (int)n;
    }
}

int harness_http(int port, const char *method, const char *target, const char *body, size_t len,
                 int timeout_ms, harness_http_resp *out)
{
    return harness_http_headers(port, method, target, NULL, body, len, timeout_ms, out);
}

int harness_http_headers(int port, const char *method, const char *target, const char *headers,
                         const char *body, size_t len, int timeout_ms, harness_http_resp *out)
{
    char head[2048];
    int n;
    harness_raw *r = harness_raw_open(port);

    memset(out, 0, sizeof(*out));
    if (r == NULL)
        return -ECONNREFUSED;
    if (headers == NULL)
        headers = "";
    if (body != NULL)
        n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n",
                     method, target, headers, len);
    else
        n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n", method, target, headers);
    int rc = harness_raw_send(r, head, (size_t)n);
    if (rc == 0 && body != NULL && len > 0)
        rc = harness_raw_send(r, body, len);
    if (rc == 0)
        rc = harness_raw_wait_eof(r, timeout_ms);
    if (rc < 0) {
        harness_set_error("HTTP %s %s on port %d: %s", method, target, port, strerror(-rc));
        harness_raw_close(r, false);
        return rc;
    }
    char *end = r->len ? memmem(r->buf, r->len, "\r\n\r\n", 4) : NULL;
    if (end == NULL || sscanf(r->buf, "HTTP/1.%*d %d", &out->status) != 1) {
        harness_set_error("HTTP %s %s on port %d: no complete response head (%zu bytes)", method, target, port, r->len);
        harness_raw_close(r, false);
        return -EPROTO;
    }
    size_t hlen = (size_t)(end - r->buf) + 4;
    out->head = strndup(r->buf, hlen);
    out->len = r->len - hlen;
    out->body = malloc(out->len + 1);
    memcpy(out->body, r->buf + hlen, out->len);
    out->body[out->len] = '\0';
    harness_raw_close(r, false);
    return 0;
}

void harness_http_free(harness_http_resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

void harness_raw_close(harness_raw *r, bool rst)
{
    if (r == NULL)
        return;
    SSL_free(r->tls);
    if (r->fd >= 0) {
        if (rst) {
            struct linger lg = { 1, 0 };

            setsockopt(r->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(r->fd);
    }
    free(r->buf);
    free(r);
}

/* ---- external programs -------------------------------------------------- */

int harness_run_capture(const char *const *argv, int timeout_ms, char **out)
{
    long long deadline = harness_now_ms() + timeout_ms;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool timed_out = false;
    int pipefd[2];
    int status = -1;
    pid_t pid;

    harness_init();
    *out = NULL;
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -errno;
    pid = harness_spawn((char *const *)argv, NULL, pipefd[1]);
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        return (int)pid;
    }
    for (;;) {
        struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
        long long left = deadline - harness_now_ms();
        ssize_t n;

        if (left <= 0) {
            timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap * 2 + 8192);

            if (nb == NULL)
                break;
            buf = nb;
            cap = cap * 2 + 8192;
        }
        n = read(pipefd[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (buf == NULL)
        buf = calloc(1, 1);
    else
        buf[len] = '\0';
    *out = buf;
    return timed_out ? -ETIMEDOUT : status;
}

/* ---- assertions on replies ---------------------------------------------- */

static const harness_proc *harness_diag_proc;  /* log tail appended to failures, or NULL */
static char *(*harness_diag_extra)(void);      /* more text for failures, or NULL */

void harness_diag_set(const harness_proc *p, char *(*extra)(void))
{
    harness_diag_proc = p;
    harness_diag_extra = extra;
}

char *harness_diag(void)
{
    char *buf = NULL, *s;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    if (f == NULL)
        return strdup("");
    if (harness_diag_extra != NULL && (s = harness_diag_extra()) != NULL) {
        fprintf(f, "\n%s", s);
        free(s);
    }
    if (harness_diag_proc != NULL && harness_diag_proc->kind != HARNESS_PSEUDO) {
        s = harness_log_tail(harness_diag_proc, 2000);
        fprintf(f, "\n--- log of port %d (tail) ---\n%s", harness_diag_proc->port, s);
        free(s);
    }
    fclose(f);
    return buf != NULL ? buf : strdup("");
}

/* "SET k v" from a formatted RESP command (args past 8 and long args elided). */
static void harness_cmd_text(const char *resp, size_t len, char *out, size_t cap)
{
    const char *p = resp, *end = resp + len;
    size_t used = 0;
    long n, i;

    out[0] = '\0';
    if (len < 1 || *p != '*')
        return;
    n = strtol(p + 1, NULL, 10);
    p = strstr(p, "\r\n");
    for (i = 0; i < n && p != NULL && p + 2 < end; i++) {
        long alen;

        p += 2;
        if (*p != '$')
            break;
        alen = strtol(p + 1, NULL, 10);
        p = strstr(p, "\r\n");
        if (p == NULL || alen < 0 || p + 2 + alen > end)
            break;
        p += 2;
        if (i >= 8) {
            snprintf(out + used, cap - used, " ...(%ld args)", n);
            return;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s%.*s%s", i ? " " : "", alen > 40 ? 40 : (int)alen, p,
                                 alen > 40 ? "..." : "");
        if (used >= cap)
            return;
        p += alen;
    }
}

/* Send one command (hiredis format), wait for its reply; asserts that one came. */
static redisReply *harness_vexpect(int line, redisContext *c, char *what, size_t cap, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    void *reply = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);

    cr_assert(len > 0, "line %d: '%s': bad command format", line, fmt);
    harness_cmd_text(cmd, (size_t)len, what, cap);
    if (redisAppendFormattedCommand(c, cmd, (size_t)len) != REDIS_OK || redisGetReply(c, &reply) != REDIS_OK ||
        reply == NULL) {
        free(cmd);
        cr_assert_fail("line %d: '%s': no reply: %s%s", line, what, c->errstr, harness_diag());
    }
    free(cmd);
    return reply;
}

redisReply *harness_expect_at(int line, redisContext *c, int type, const char *fmt, ...)
{
    char what[512];
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = harness_vexpect(line, c, what, sizeof(what), fmt, ap);
    va_end(ap);
    if (type != HARNESS_ANY && r->type != type)
        cr_assert_fail("line %d: '%s': replied %s, wanted reply type %d%s", line, what, harness_reply_str(r), type,
                       harness_diag());
    return r;
}

void harness_expect_status_at(int line, redisContext *c, const char *want, const char *fmt, ...)
{
    char what[512];
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = harness_vexpect(line, c, what, sizeof(what), fmt, ap);
    va_end(ap);
    if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, want) != 0)
        cr_assert_fail("line %d: '%s': replied %s, wanted +%s%s", line, what, harness_reply_str(r), want,
                       harness_diag());
    freeReplyObject(r);
}

void harness_expect_bulk_at(int line, redisContext *c, const char *want, const char *fmt, ...)
{
    char what[512];
    redisReply *r;
    va_list ap;
    bool ok;

    va_start(ap, fmt);
    r = harness_vexpect(line, c, what, sizeof(what), fmt, ap);
    va_end(ap);
    if (want == NULL)
        ok = r->type == REDIS_REPLY_NIL;
    else
        ok = r->type == REDIS_REPLY_STRING && r->len == strlen(want) && memcmp(r->str, want, r->len) == 0;
    if (!ok)
        cr_assert_fail("line %d: '%s': replied %s, wanted %s%s%s%s", line, what, harness_reply_str(r),
                       want ? "\"" : "", want ? want : "(nil)", want ? "\"" : "", harness_diag());
    freeReplyObject(r);
}

long long harness_cmd_int_at(int line, redisContext *c, const char *fmt, ...)
{
    char what[512];
    redisReply *r;
    long long v;
    va_list ap;

    va_start(ap, fmt);
    r = harness_vexpect(line, c, what, sizeof(what), fmt, ap);
    va_end(ap);
    if (r->type != REDIS_REPLY_INTEGER)
        cr_assert_fail("line %d: '%s': replied %s, wanted an integer%s", line, what, harness_reply_str(r),
                       harness_diag());
    v = r->integer;
    freeReplyObject(r);
    return v;
}

void harness_expect_int_at(int line, redisContext *c, long long want, const char *fmt, ...)
{
    char what[512];
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = harness_vexpect(line, c, what, sizeof(what), fmt, ap);
    va_end(ap);
    if (r->type != REDIS_REPLY_INTEGER || r->integer != want)
        cr_assert_fail("line %d: '%s': replied %s, wanted :%lld%s", line, what, harness_reply_str(r), want,
                       harness_diag());
    freeReplyObject(r);
}

redisReply *harness_expect_error_at(int line, redisContext *c, const char *prefix, const char *fmt, ...)
{
    char what[512];
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = harness_vexpect(line, c, what, sizeof(what), fmt, ap);
    va_end(ap);
    if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, prefix, strlen(prefix)) != 0)
        cr_assert_fail("line %d: '%s': replied %s, wanted an error starting with \"%s\"%s", line, what,
                       harness_reply_str(r), prefix, harness_diag());
    return r;
}

void harness_pipe_flush_at(int line, redisContext *c)
{
    int done = 0;

    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            cr_assert_fail("line %d: write failed: %s%s", line, c->errstr, harness_diag());
}

redisReply *harness_pipe_reply_at(int line, redisContext *c, const char *what)
{
    void *reply = NULL;

    if (redisGetReply(c, &reply) != REDIS_OK || reply == NULL)
        cr_assert_fail("line %d: %s: no reply: %s%s", line, what, c->errstr, harness_diag());
    return reply;
}

void harness_proxy_check_exit(harness_proc *p)
{
    int status;

    if (p == NULL || p->kind == HARNESS_PSEUDO)
        return;
    status = harness_proxy_stop(p);
    if (status != 0) {
        char *tail = harness_log_tail(p, 3000);

        cr_assert_fail("after the test, SIGTERM did not make the proxy exit 0: %s; proxy log:\n%s",
                       harness_status_str(status), tail);
    }
}

char *harness_resp(const char *first, ...)
{
    char *buf = NULL;
    size_t size = 0;
    va_list ap;
    size_t n = 0;
    FILE *f;

    va_start(ap, first);
    for (const char *s = first; s != NULL; s = va_arg(ap, const char *))
        n++;
    va_end(ap);
    f = open_memstream(&buf, &size);
    cr_assert_not_null(f, "open_memstream: out of memory");
    fprintf(f, "*%zu\r\n", n);
    va_start(ap, first);
    for (const char *s = first; s != NULL; s = va_arg(ap, const char *))
        fprintf(f, "$%zu\r\n%s\r\n", strlen(s), s);
    va_end(ap);
    fclose(f);
    return buf;
}

char *harness_resp_line(const char *line)
{
    char *buf = NULL;
    size_t size = 0, n = 1;
    FILE *f;

    for (const char *p = line; *p; p++)
        n += *p == ' ';
    f = open_memstream(&buf, &size);
    cr_assert_not_null(f, "open_memstream: out of memory");
    fprintf(f, "*%zu\r\n", n);
    for (const char *p = line;;) {
        const char *sp = strchr(p, ' ');
        size_t len = sp ? (size_t)(sp - p) : strlen(p);
        fprintf(f, "$%zu\r\n%.*s\r\n", len, (int)len, p);
        if (sp == NULL)
            break;
        p = sp + 1;
    }
    fclose(f);
    return buf;
}

/* ---- transcripts ---------------------------------------------------------- */

void harness_tx_open(harness_tx *t, int nconns, int port)
{
    memset(t, 0, sizeof(*t));
    t->f = open_memstream(&t->text, &t->len);
    cr_assert_not_null(t->f, "open_memstream: out of memory");
    cr_assert(nconns <= HARNESS_TX_CONNS);
    for (int i = 0; i < nconns; i++)
        harness_tx_connect(t, i, port);
}

void harness_tx_connect(harness_tx *t, int i, int port)
{
    harness_raw_close(t->conn[i], false);
    t->conn[i] = harness_raw_open(port);
    cr_assert_not_null(t->conn[i], "connect to %d: %s", port, harness_error());
}

void harness_tx_drop(harness_tx *t, int i)
{
    harness_raw_close(t->conn[i], false);
    t->conn[i] = NULL;
}

void harness_tx_close(harness_tx *t)
{
    for (int i = 0; i < HARNESS_TX_CONNS; i++)
        harness_tx_drop(t, i);
    fclose(t->f);
    t->f = NULL;
}

void harness_tx_send_as(harness_tx *t, int i, const char *line, const char *log_as)
{
    char *cmd = harness_resp_line(line);
    cr_assert_eq(harness_raw_sends(t->conn[i], cmd), 0, "send %s: %s", line, harness_error());
    free(cmd);
    fprintf(t->f, "%d< %s\n", i, log_as ? log_as : line);
}

void harness_tx_reply(harness_tx *t, int i)
{
    char *r = NULL;
    long n = harness_raw_reply(t->conn[i], HARNESS_TX_REPLY_MS, &r);
    if (n < 0)
        fprintf(t->f, "%d> (no reply: %s)\n", i, harness_error());
    else
        fprintf(t->f, "%d> %s\n", i, r);
    free(r);
}

void harness_tx_reply_masked(harness_tx *t, int i, const char *from, const char *to)
{
    char *r = NULL;
    long n = harness_raw_reply(t->conn[i], HARNESS_TX_REPLY_MS, &r);
    size_t flen = strlen(from);

    if (n < 0) {
        fprintf(t->f, "%d> (no reply: %s)\n", i, harness_error());
        return;
    }
    fprintf(t->f, "%d> ", i);
    for (const char *p = r; *p;) {
        const char *hit = flen ? strstr(p, from) : NULL;
        if (hit == NULL) {
            fputs(p, t->f);
            break;
        }
        fprintf(t->f, "%.*s%s", (int)(hit - p), p, to);
        p = hit + flen;
    }
    fputc('\n', t->f);
    free(r);
}

void harness_tx_reply_type(harness_tx *t, int i)
{
    char *r = NULL;
    long n = harness_raw_reply(t->conn[i], HARNESS_TX_REPLY_MS, &r);
    fprintf(t->f, "%d> type %c\n", i, n > 0 ? r[0] : '?');
    free(r);
}

long long harness_tx_reply_int(harness_tx *t, int i)
{
    char *r = NULL;
    long n = harness_raw_reply(t->conn[i], HARNESS_TX_REPLY_MS, &r);
    long long v = n > 0 && r[0] == ':' ? strtoll(r + 1, NULL, 10) : -1;
    fprintf(t->f, "%d> %s\n", i, n > 0 && r[0] == ':' ? "(integer)" : "(not an integer)");
    free(r);
    return v;
}

void harness_tx_cmd(harness_tx *t, int i, const char *line)
{
    harness_tx_send(t, i, line);
    harness_tx_reply(t, i);
}

void harness_tx_quiet(harness_tx *t, int i)
{
    char *r = NULL;
    long n = harness_raw_reply(t->conn[i], HARNESS_TX_QUIET_MS, &r);
    if (n > 0)
        fprintf(t->f, "%d> unexpected %s\n", i, r);
    free(r);
}

void harness_tx_note(harness_tx *t, const char *what)
{
    fprintf(t->f, "-- %s\n", what);
}

void harness_tx_same_at(int line, const char *what, const char *proxy_tx, const char *redis_tx)
{
    if (strcmp(proxy_tx, redis_tx) == 0)
        return;
    size_t k = 0, start = 0;
    while (proxy_tx[k] && proxy_tx[k] == redis_tx[k]) {
        if (proxy_tx[k] == '\n')
            start = k + 1;
        k++;
    }
    const char *pe = strchr(proxy_tx + start, '\n'), *re = strchr(redis_tx + start, '\n');
    cr_assert_fail("line %d: %s: transcripts differ\n  proxy: %.*s\n  redis: %.*s%s", line, what,
                   pe ? (int)(pe - proxy_tx - start) : (int)strlen(proxy_tx + start), proxy_tx + start,
                   re ? (int)(re - redis_tx - start) : (int)strlen(redis_tx + start), redis_tx + start,
                   harness_diag());
}

/* ---- INFO-style text ------------------------------------------------------ */

int harness_text_field(const char *text, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);

    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *eol = strchr(line, '\n');

        if (strncmp(line, name, nlen) == 0 && line[nlen] == ':') {
            size_t vlen = strcspn(line + nlen + 1, "\r\n");

            if (cap > 0) {
                if (vlen >= cap)
                    vlen = cap - 1;
                memcpy(out, line + nlen + 1, vlen);
                out[vlen] = '\0';
            }
            return 0;
        }
        line = eol != NULL ? eol + 1 : NULL;
    }
    return -ENOENT;
}

long long harness_text_ll(const char *text, const char *name, long long absent)
{
    char v[64];

    if (harness_text_field(text, name, v, sizeof(v)) != 0)
        return absent;
    return strtoll(v, NULL, 10);
}

int harness_info_field(redisContext *c, const char *section, const char *field, char *out, size_t cap)
{
    redisReply *r = redisCommand(c, "INFO %s", section);
    int rc;

    if (r == NULL) {
        harness_set_error("INFO %s: no reply: %s", section, c->errstr);
        return -EIO;
    }
    if (r->type != REDIS_REPLY_STRING) {
        harness_set_error("INFO %s: replied type %d", section, r->type);
        freeReplyObject(r);
        return -EPROTO;
    }
    rc = harness_text_field(r->str, field, out, cap);
    if (rc != 0)
        harness_set_error("INFO %s: no field %s", section, field);
    freeReplyObject(r);
    return rc;
}

long long harness_info_ll(redisContext *c, const char *section, const char *field)
{
    char v[64];
    int rc = harness_info_field(c, section, field, v, sizeof(v));

    cr_assert(rc == 0, "%s", harness_error());
    return strtoll(v, NULL, 10);
}

long long harness_text_cmdstat(const char *info, const char *cmd)
{
    char name[64], v[256];
    const char *calls;

    snprintf(name, sizeof(name), "cmdstat_%s", cmd);
    if (harness_text_field(info, name, v, sizeof(v)) != 0)
        return 0;
    calls = strstr(v, "calls=");
    cr_assert_not_null(calls, "INFO commandstats: %s:%s has no calls=", name, v);
    return strtoll(calls + 6, NULL, 10);
}

long long harness_cmdstat_calls(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, "INFO commandstats");
    long long calls;

    cr_assert(r != NULL && r->type == REDIS_REPLY_STRING, "INFO commandstats: %s",
              r == NULL ? c->errstr : harness_reply_str(r));
    calls = harness_text_cmdstat(r->str, cmd);
    freeReplyObject(r);
    return calls;
}

long long harness_proxy_stat_ll(redisContext *c, const char *name)
{
    char v[64];
    int rc = harness_proxy_stat(c, name, v, sizeof(v));

    cr_assert(rc == 0, "REDSNANO STATS: %s: %s", name, rc == -ENOENT ? "no such field" : strerror(-rc));
    return strtoll(v, NULL, 10);
}

long long harness_proxy_l1_ll(redisContext *c, const char *name)
{
    redisReply *r = redisCommand(c, "REDSNANO L1");
    long long v;

    cr_assert(r != NULL && r->type == REDIS_REPLY_STRING, "REDSNANO L1: %s",
              r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str : "not a bulk string");
    v = harness_text_ll(r->str, name, LLONG_MIN);
    freeReplyObject(r);
    cr_assert(v != LLONG_MIN, "REDSNANO L1: %s: no such field", name);
    return v;
}

/* ---- Redis Cluster ---------------------------------------------------------- */

/* Does the node on port say cluster_state:ok and know n nodes?  Else why not, in last. */
static bool harness_cluster_node_ok(int port, int n, char *last, size_t cap)
{
    redisContext *c = harness_try_connect(port, 500);
    redisReply *r;
    bool ok;

    if (c == NULL) {
        snprintf(last, cap, "%.400s", harness_error());
        return false;
    }
    r = redisCommand(c, "CLUSTER INFO");
    ok = r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, "cluster_state:ok") != NULL &&
         harness_text_ll(r->str, "cluster_known_nodes", -1) == n;
    if (!ok) {
        char *s = harness_reply_str(r);

        snprintf(last, cap, "127.0.0.1:%d: %s", port, s);
        free(s);
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* A node that is a replica has its link to its primary up (primaries pass). */
static bool harness_cluster_link_ok(int port, char *last, size_t cap)
{
    redisContext *c = harness_try_connect(port, 500);
    char role[32] = "", link[32] = "";
    bool ok;

    if (c == NULL) {
        snprintf(last, cap, "%.400s", harness_error());
        return false;
    }
    harness_info_field(c, "replication", "role", role, sizeof(role));
    harness_info_field(c, "replication", "master_link_status", link, sizeof(link));
    redisFree(c);
    ok = strcmp(role, "master") == 0 || (strcmp(role, "slave") == 0 && strcmp(link, "up") == 0);
    if (!ok)
        snprintf(last, cap, "127.0.0.1:%d: role:%s master_link_status:%s", port, role, link);
    return ok;
}

/* Every slot range of the node's CLUSTER SLOTS lists `replicas` replicas. */
static bool harness_cluster_slots_replicated(int port, int replicas, char *last, size_t cap)
{
    redisContext *c = harness_try_connect(port, 500);
    redisReply *r;
    bool ok;

    if (c == NULL) {
        snprintf(last, cap, "%.400s", harness_error());
        return false;
    }
    r = redisCommand(c, "CLUSTER SLOTS");
    ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0;
    for (size_t i = 0; ok && i < r->elements; i++)
        ok = r->element[i]->type == REDIS_REPLY_ARRAY && r->element[i]->elements >= (size_t)(3 + replicas);
    if (!ok) {
        char *s = harness_reply_str(r);

        snprintf(last, cap, "127.0.0.1:%d CLUSTER SLOTS: %.400s", port, s);
        free(s);
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/*
 * The cluster bus port of a node: port + 10000 as Redis does, unless that
 * lies in the kernel's ephemeral range (ip_local_port_range: shifted test
 * ports do), where any outgoing connection of the machine may hold it
 * and make the bind fail; then port - HARNESS_BUS_BELOW.
 */
static int harness_cluster_bus_port(int port)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int lo = 32768, hi = 60999;

    if (f != NULL) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2) {
            lo = 32768;
            hi = 60999;
        }
        fclose(f);
    }
    if ((port + 10000 < lo || port + 10000 > hi) || port - HARNESS_BUS_BELOW < 1024)
        return port + 10000;
    return port - HARNESS_BUS_BELOW;
}

void harness_cluster_start(const int *ports, int n, int node_timeout_ms, harness_proc **procs)
{
    harness_cluster_start_replicas(ports, n, 0, node_timeout_ms, procs);
}

void harness_cluster_start_replicas(const int *ports, int n, int replicas, int node_timeout_ms, harness_proc **procs)
{
    char nrep[16];
    const char *argv[HARNESS_MAX_ARGS];
    char addr[HARNESS_MAX_CLUSTER][32];
    char timeout[16], last[512] = "";
    char *out = NULL;
    int argc = 0, status;

    cr_assert(n >= 1 && n <= HARNESS_MAX_CLUSTER, "harness_cluster_start: %d nodes", n);
    snprintf(timeout, sizeof(timeout), "%d", node_timeout_ms);
    for (int i = 0; i < n; i++) {
        char conf[64];

        snprintf(conf, sizeof(conf), "nodes-%d.conf", ports[i]);
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", ports[i]);
        char bus[16];

        snprintf(bus, sizeof(bus), "%d", harness_cluster_bus_port(ports[i]));
        procs[i] = harness_redis_start(ports[i], "--cluster-enabled", "yes", "--cluster-config-file", conf,
                                       "--cluster-node-timeout", timeout, "--cluster-port", bus);
    }
    argv[argc++] = "redis-cli";
    argv[argc++] = "--cluster";
    argv[argc++] = "create";
    for (int i = 0; i < n; i++)
        argv[argc++] = addr[i];
    snprintf(nrep, sizeof(nrep), "%d", replicas);
    argv[argc++] = "--cluster-replicas";
    argv[argc++] = nrep;
    argv[argc++] = "--cluster-yes";
    argv[argc] = NULL;
    status = harness_run_capture(argv, HARNESS_CLUSTER_CREATE_MS, &out);
    cr_assert(status == 0, "redis-cli --cluster create: %s; output:\n%s",
              status == -ETIMEDOUT ? "timed out" : status < 0 ? strerror(-status) : harness_status_str(status),
              out != NULL ? out : "");
    free(out);
    for (int i = 0; i < n; i++)
        cr_assert(harness_wait_until(harness_cluster_node_ok(ports[i], n, last, sizeof(last)), HARNESS_CLUSTER_OK_MS),
                  "node not cluster_state:ok with %d known nodes within %d ms: %s", n, HARNESS_CLUSTER_OK_MS, last);
    for (int i = 0; i < n && replicas > 0; i++) {
        cr_assert(harness_wait_until(harness_cluster_link_ok(ports[i], last, sizeof(last)), HARNESS_CLUSTER_OK_MS),
                  "replica link not up within %d ms: %s", HARNESS_CLUSTER_OK_MS, last);
        cr_assert(harness_wait_until(harness_cluster_slots_replicated(ports[i], replicas, last, sizeof(last)),
                                     HARNESS_CLUSTER_OK_MS),
                  "CLUSTER SLOTS does not list the replicas within %d ms: %s", HARNESS_CLUSTER_OK_MS, last);
    }
}

bool harness_replica_link_up(int port)
{
    redisContext *c = harness_try_connect(port, 500);
    char v[32] = "";
    bool up;

    if (c == NULL)
        return false;
    up = harness_info_field(c, "replication", "master_link_status", v, sizeof(v)) == 0 && strcmp(v, "up") == 0;
    redisFree(c);
    return up;
}

int harness_proxy_backend_health(redisContext *px, const char *addr)
{
    redisReply *r = harness_cmd(px, "REDSNANO BACKENDS");
    char want[300];
    int h = -1;

    if (r == NULL)
        return -1;
    snprintf(want, sizeof(want), "addr=%s,", addr);
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        const char *line = strstr(r->str, want);
        if (line) {
            const char *eol = strchr(line, '\n');
            const char *hp = strstr(line, "health=");
            if (hp && (eol == NULL || hp < eol))
                h = strncmp(hp + 7, "up", 2) == 0;
        }
    }
    freeReplyObject(r);
    return h;
}
