/*
 * proxy/admin.c — REDSNANO STATS / BACKENDS / L1 (see admin.h).
 */
#include "proxy/admin.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/cluster.h"
#include "backends/health.h"
#include "l1/l1.h"
#include "protocol/reply.h"
#include "proxy/proxy.h"
#include "proxy/tracking.h"

static void stats_section(struct buf *t)
{
    const struct proxy_stats *s = &proxy->stats;
    uint64_t up = (uv_now(proxy->loop) - proxy->start_ms) / 1000;

    buf_printf(t, "# Server\r\nredsnano_version:%s\r\nprocess_id:%d\r\nuptime_in_seconds:%llu\r\n",
               REDSNANO_VERSION, (int)getpid(), (unsigned long long)up);
    if (proxy_cluster_mode())
        buf_printf(t, "mode:cluster\r\n\r\n");
    else
        buf_printf(t, "mode:%s\r\nprimary:%s\r\nreplicas:%d\r\n\r\n",
                   proxy->cfg->nsentinels > 0 ? "sentinel" : "static", proxy->topo.primary.name,
                   proxy->topo.nreplicas);
    buf_printf(t, "# Stats\r\nconnected_clients:%u\r\n", proxy->nclients);
#define STAT_LINE(field, name, help) buf_printf(t, name ":%llu\r\n", (unsigned long long)s->field);
    PROXY_STATS(STAT_LINE)
#undef STAT_LINE
    buf_printf(t, "\r\n");
}

static void backend_line(struct buf *t, const char *label, const struct backend *b)
{
    struct health_figures h;
    int have = health_figures(b, &h) == 0;

    buf_printf(t, "%s:addr=%s,role=%s,health=%s,latency_us=%.0f,requests=%llu,errors=%llu,"
               "in_flight=%u,connected=%d,connections_opened=%llu",
               label, b->name, b->role == BACKEND_PRIMARY ? "primary" : "replica",
               b->healthy ? "up" : "down", b->latency_us, (unsigned long long)b->requests,
               (unsigned long long)b->errors, backend_inflight(b), backend_connected(b),
               (unsigned long long)b->connections_opened);
    if (have)
        buf_printf(t, ",link=%s,lag=%lld,checks=%llu,check_failures=%llu",
                   h.link_up < 0 ? "unknown" : h.link_up ? "up" : "down", h.lag,
                   (unsigned long long)h.checks, (unsigned long long)h.failures);
    buf_printf(t, "\r\n");
}

static void backends_section(struct buf *t)
{
    if (proxy_cluster_mode()) {
        cluster_report(t);
        return;
    }
    buf_printf(t, "# Backends\r\n");
    backend_line(t, "primary", &proxy->topo.primary);
    for (int i = 0; i < proxy->topo.nreplicas; i++) {
        char label[32];
        snprintf(label, sizeof(label), "replica%d", i);
        backend_line(t, label, &proxy->topo.replicas[i]);
    }
    buf_printf(t, "\r\n");
}

static void l1_section(struct buf *t)
{
    l1_report(t);
}

int admin_report(struct buf *b, int argc, const char **argv, const size_t *argvlen)
{
    struct buf t = { 0 };
    const char *w = argv[0];
    size_t n = argvlen[0];

    if (n == 2 && strncasecmp(w, "l1", 2) == 0 && argc >= 2) {
        /* REDSNANO L1 INVALIDATE pattern: entries dropped. */
        if (argc != 3 || argvlen[1] != 10 || strncasecmp(argv[1], "invalidate", 10) != 0)
            return 0;
        reply_integer(b, (long long)l1_invalidate(argv[2], argvlen[2]));
        return 1;
    }
    if (n == 5 && strncasecmp(w, "stats", 5) == 0) {
        stats_section(&t);
        backends_section(&t);
        l1_section(&t);
        tracking_report(&t);
    } else if (n == 8 && strncasecmp(w, "backends", 8) == 0) {
        backends_section(&t);
    } else if (n == 2 && strncasecmp(w, "l1", 2) == 0) {
        l1_section(&t);
    } else if (n == 8 && strncasecmp(w, "tracking", 8) == 0) {
        tracking_report(&t);
    } else if (n == 4 && strncasecmp(w, "help", 4) == 0) {
        buf_printf(&t, "REDSNANO STATS    - every figure below\r\n"
                       "REDSNANO BACKENDS - primary and replicas: health, latency, requests\r\n"
                       "REDSNANO L1       - the in-proxy cache's counters\r\n"
                       "REDSNANO L1 INVALIDATE pattern - drop the L1 entries of keys matching a glob\r\n"
                       "REDSNANO LATENCY [RESET] - p50/p99/p99.9 per command class and per backend\r\n"
                       "REDSNANO SLOWLOG GET [n] | LEN | RESET - requests slower than slowlog-log-slower-than\r\n"
                       "REDSNANO CONFIG GET pattern | RELOAD - the configuration in force; read the file again\r\n"

                       "REDSNANO TRACKING - the tracking server: clients, keys, invalidations\r\n");
    } else {
        return 0;
    }
    reply_bulk(b, t.data ? t.data : "", t.len);
    buf_free(&t);
    return 1;
}
