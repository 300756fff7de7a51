/*
 * proxy/latency.c — latency histograms and the slow log (see latency.h).
 */
#include "proxy/latency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include "backends/backend.h"
#include "backends/topology.h"
#include "protocol/reply.h"
#include "proxy/client.h"
#include "proxy/proxy.h"

/* One slow log entry, as Redis keeps it. */
struct slowlog_entry {
    struct slowlog_entry *next;       /* newer entry (list from oldest to newest) */
    long long id;                     /* unique, increasing */
    long long time;                   /* unix time the request completed, s */
    long long duration_us;            /* its latency */
    int argc;                         /* strings in argv */
    char **argv;                      /* arguments as shown (truncated) */
    size_t *argvlen;                  /* their lengths */
    char peer[64];                    /* client address, "ip:port" */
};

static struct hist class_hist[LAT_NCLASSES];
static struct slowlog_entry *slow_oldest, *slow_newest;
static long long slow_len;            /* entries kept */
static long long slow_next_id;        /* id of the next entry */

static const char *const class_names[] = {
#define LATENCY_CLASS_NAME(name, help) #name,
    LATENCY_CLASSES(LATENCY_CLASS_NAME)
#undef LATENCY_CLASS_NAME
};
static const char *const class_helps[] = {
#define LATENCY_CLASS_HELP(name, help) help,
    LATENCY_CLASSES(LATENCY_CLASS_HELP)
#undef LATENCY_CLASS_HELP
};

uint64_t latency_now_ns(void)
{
    return uv_hrtime();
}

int slowlog_on(void)
{
    return proxy->cfg->slowlog_log_slower_than >= 0;
}

const struct hist *latency_class_hist(enum latency_class k)
{
    return &class_hist[k];
}

const char *latency_class_name(enum latency_class k)
{
    return class_names[k];
}

const char *latency_class_help(enum latency_class k)
{
    return class_helps[k];
}

/* ---- the slow log ------------------------------------------------------ */

static void entry_free(struct slowlog_entry *e)
{
    for (int i = 0; i < e->argc; i++)
        free(e->argv[i]);
    free(e->argv);
    free(e->argvlen);
    free(e);
}

/* Drop the oldest entries beyond slowlog-max-len. */
static void slowlog_trim(void)
{
    while (slow_len > proxy->cfg->slowlog_max_len && slow_oldest) {
        struct slowlog_entry *e = slow_oldest;
        slow_oldest = e->next;
        if (slow_oldest == NULL)
            slow_newest = NULL;
        slow_len--;
        entry_free(e);
    }
}

/* Add one shown argument (bytes p[0, n) of a declared length full). */
static int entry_arg(struct slowlog_entry *e, const char *p, size_t n, long long full)
{
    char *s;
    size_t len;

    if (full > SLOWLOG_MAX_STRING) {
        char tail[64];
        int t = snprintf(tail, sizeof(tail), "... (%lld more bytes)", full - SLOWLOG_MAX_STRING);
        if (n > SLOWLOG_MAX_STRING)
            n = SLOWLOG_MAX_STRING;
        len = n + (size_t)t;
        if ((s = malloc(len + 1)) == NULL)
            return -1;
        memcpy(s, p, n);
        memcpy(s + n, tail, (size_t)t + 1);
    } else {
        len = n;
        if ((s = malloc(len + 1)) == NULL)
            return -1;
        memcpy(s, p, n);
        s[n] = '\0';
    }
    e->argv[e->argc] = s;
    e->argvlen[e->argc] = len;
    e->argc++;
    return 0;
}

/* The arguments of a RESP request from its kept prefix req[0, len):
 * what is complete is shown, a cut argument is shown as far as kept with
 * its missing bytes counted, missing arguments are counted. */
static int entry_parse(struct slowlog_entry *e, const char *req, size_t len)
{
    struct reply_item it;

    if ((e->argv = calloc(SLOWLOG_MAX_ARGC, sizeof(*e->argv))) == NULL ||
        (e->argvlen = calloc(SLOWLOG_MAX_ARGC, sizeof(*e->argvlen))) == NULL)
        return -1;
    long long hl = reply_item_parse(req, len, &it);
    if (hl <= 0 || req[0] != '*' || it.n <= 0)
        return entry_arg(e, "(unknown)", 9, 9);
    long long total = it.n;
    int shown = total > SLOWLOG_MAX_ARGC ? SLOWLOG_MAX_ARGC - 1 : (int)total;
    size_t pos = (size_t)hl;
    for (int i = 0; i < shown; i++) {
        /* "$<n>\r\n" then the bytes: parse the header alone. */
        const char *p = req + pos;
        const char *nl = pos < len ? memchr(p, '\n', len - pos) : NULL;
        if (nl == NULL || *p != '$') {
            char more[64];
            int t = snprintf(more, sizeof(more), "... (%lld more arguments)", total - i);
            return entry_arg(e, more, (size_t)t, t);
        }
        long long n = strtoll(p + 1, NULL, 10);
        pos = (size_t)(nl - req) + 1;
        size_t have = len - pos < (size_t)n ? len - pos : (size_t)n;
        if (entry_arg(e, req + pos, have, n) < 0)
            return -1;
        if (have < (size_t)n) {
            if (i + 1 < shown) {
                char more[64];
                int t = snprintf(more, sizeof(more), "... (%lld more arguments)", total - i - 1);
                return entry_arg(e, more, (size_t)t, t);
            }
            return 0;
        }
        pos += (size_t)n + 2;
        if (pos > len)
            pos = len;
    }
    if (total > shown) {
        char more[64];
        int t = snprintf(more, sizeof(more), "... (%lld more arguments)", total - shown);
        return entry_arg(e, more, (size_t)t, t);
    }
    return 0;
}

static void peer_name(const struct client *c, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int n = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (c == NULL || (c->flags & CLIENT_INTERNAL)) {
        snprintf(out, cap, "http:0");  /* the HTTP cache API's internal client */
        return;
    }
    if (c->flags & CLIENT_UNIX) {
        snprintf(out, cap, "%s:0", proxy->cfg->unixsocket ? proxy->cfg->unixsocket : "");
        return;
    }
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &n) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(out, cap, "%s:%d", ip, port);
}

static void slowlog_add(uint64_t us, const struct client *c, const char *req, size_t len)
{
    struct slowlog_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return;
    if (entry_parse(e, req, len) < 0) {
        entry_free(e);
        return;
    }
    e->id = slow_next_id++;
    e->time = (long long)time(NULL);
    e->duration_us = (long long)us;
    peer_name(c, e->peer, sizeof(e->peer));
    if (slow_newest)
        slow_newest->next = e;
    else
        slow_oldest = e;
    slow_newest = e;
    slow_len++;
    slowlog_trim();
}

void slowlog_free(void)
{
    while (slow_oldest) {
        struct slowlog_entry *e = slow_oldest;
        slow_oldest = e->next;
        entry_free(e);
    }
    slow_newest = NULL;
    slow_len = 0;
}

/* ---- measuring --------------------------------------------------------- */

void latency_done(enum latency_class k, struct backend *b, uint64_t start_ns, const struct client *c,
                  const char *req, size_t len)
{
    if (k >= LAT_NCLASSES)
        return;
    uint64_t us = (latency_now_ns() - start_ns) / 1000;
    hist_add(&class_hist[k], us);
    if (b != NULL)
        hist_add(&b->latency, us);
    long long slower = proxy->cfg->slowlog_log_slower_than;
    if (slower >= 0 && (long long)us >= slower && req != NULL && len > 0)
        slowlog_add(us, c, req, len);
}

/* ---- REDSNANO LATENCY / SLOWLOG ------------------------------------------ */

static int word_is(const char *w, size_t n, const char *s)
{
    return n == strlen(s) && strncasecmp(w, s, n) == 0;
}

static void hist_line(struct buf *t, const char *label, const struct hist *h)
{
    char q[3][24];
    const double qs[3] = { 0.5, 0.99, 0.999 };
    for (int i = 0; i < 3; i++) {
        uint64_t v = hist_quantile(h, qs[i]);
        if (v == UINT64_MAX)
            snprintf(q[i], sizeof(q[i]), "inf");
        else
            snprintf(q[i], sizeof(q[i]), "%llu", (unsigned long long)v);
    }
    buf_printf(t, "%s:count=%llu,avg_us=%llu,p50_us=%s,p99_us=%s,p99.9_us=%s\r\n", label,
               (unsigned long long)h->count,
               (unsigned long long)(h->count ? h->sum_us / h->count : 0), q[0], q[1], q[2]);
}

static void backend_hist_line(struct backend *b, void *ud)
{
    char label[300];
    snprintf(label, sizeof(label), "backend_%s", b->name);
    hist_line(ud, label, &b->latency);
}

static void backend_hist_reset(struct backend *b, void *ud)
{
    (void)ud;
    hist_reset(&b->latency);
}

static void latency_report(struct buf *b)
{
    struct buf t = { 0 };
    buf_printf(&t, "# Latency by command class (microseconds; bucket upper bounds, <= 25%% above)\r\n");
    for (int k = 0; k < LAT_NCLASSES; k++) {
        char label[64];
        snprintf(label, sizeof(label), "class_%s", class_names[k]);
        hist_line(&t, label, &class_hist[k]);
    }
    buf_printf(&t, "\r\n# Latency by backend\r\n");
    topology_foreach(&proxy->topo, backend_hist_line, &t);
    reply_bulk(b, t.data ? t.data : "", t.len);
    buf_free(&t);
}

static void slowlog_get(struct buf *b, long long count)
{
    /* Newest first, as Redis. */
    long long n = count < 0 || count > slow_len ? slow_len : count;
    struct slowlog_entry **v = n > 0 ? malloc((size_t)slow_len * sizeof(*v)) : NULL;
    long long i = 0;

    if (n > 0 && v == NULL) {
        reply_error(b, "ERR out of memory");
        return;
    }
    for (struct slowlog_entry *e = slow_oldest; e && v; e = e->next)
        v[i++] = e;
    reply_array(b, n);
    for (long long k = 0; k < n; k++) {
        struct slowlog_entry *e = v[slow_len - 1 - k];
        reply_array(b, 6);
        reply_integer(b, e->id);
        reply_integer(b, e->time);
        reply_integer(b, e->duration_us);
        reply_array(b, e->argc);
        for (int a = 0; a < e->argc; a++)
            reply_bulk(b, e->argv[a], e->argvlen[a]);
        reply_bulk_str(b, e->peer);
        reply_bulk_str(b, "");
    }
    free(v);
}

static int slowlog_command(struct buf *b, int argc, const char **argv, const size_t *argvlen)
{
    if (argc == 2 && word_is(argv[1], argvlen[1], "len")) {
        reply_integer(b, slow_len);
    } else if (argc == 2 && word_is(argv[1], argvlen[1], "reset")) {
        slowlog_free();
        reply_status(b, "OK");
    } else if ((argc == 2 || argc == 3) && word_is(argv[1], argvlen[1], "get")) {
        long long count = 10;
        if (argc == 3) {
            char num[24], *end;
            size_t n = argvlen[2] < sizeof(num) - 1 ? argvlen[2] : sizeof(num) - 1;
            memcpy(num, argv[2], n);
            num[n] = '\0';
            count = strtoll(num, &end, 10);
            if (n == 0 || *end != '\0' || count < -1) {
                reply_error(b, "ERR count should be greater than or equal to -1");
                return 1;
            }
        }
        slowlog_get(b, count);
    } else {
        reply_error(b, "ERR usage: REDSNANO SLOWLOG GET [count] | LEN | RESET");
    }
    return 1;
}

int latency_command(struct buf *b, int argc, const char **argv, const size_t *argvlen)
{
    if (word_is(argv[0], argvlen[0], "slowlog"))
        return slowlog_command(b, argc, argv, argvlen);
    if (!word_is(argv[0], argvlen[0], "latency"))
        return 0;
    if (argc == 2 && word_is(argv[1], argvlen[1], "reset")) {
        for (int k = 0; k < LAT_NCLASSES; k++)
            hist_reset(&class_hist[k]);
        topology_foreach(&proxy->topo, backend_hist_reset, NULL);
        reply_status(b, "OK");
    } else if (argc == 1) {
        latency_report(b);
    } else {
        reply_error(b, "ERR usage: REDSNANO LATENCY [RESET]");
    }
    return 1;
}
