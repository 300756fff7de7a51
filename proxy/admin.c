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
#include "protocol/reply.h"
#include "proxy/proxy.h"

void (*admin_l1_report)(struct buf *text);

static void stats_section(struct buf *t)
{
    const struct proxy_stats *s = &proxy->stats;
    uint64_t up = (uv_now(proxy->loop) - proxy->start_ms) / 1000;

    buf_printf(t, "# Server\r\nredsnano_version:%s\r\nprocess_id:%d\r\nuptime_in_seconds:%llu\r\n",
               REDSNANO_VERSION, (int)getpid(), (unsigned long long)up);
    if (cluster_on())
        buf_printf(t, "mode:cluster\r\n\r\n");
    else
        buf_printf(t, "mode:%s\r\nprimary:%s\r\nreplicas:%d\r\n\r\n",
                   proxy->cfg->nsentinels > 0 ? "sentinel" : "static", proxy->primary.name, proxy->nreplicas);
    buf_printf(t, "# Stats\r\nconnected_clients:%u\r\ntotal_connections_received:%llu\r\n"
               "rejected_connections:%llu\r\ntotal_commands_processed:%llu\r\n"
               "local_replies:%llu\r\nforwarded:%llu\r\nbackend_errors:%llu\r\n"
               "protocol_errors:%llu\r\ndenied_commands:%llu\r\nstalls:%llu\r\nread_retries:%llu\r\n\r\n",
               proxy->nclients, (unsigned long long)s->connections_received,
               (unsigned long long)s->rejected_connections, (unsigned long long)s->commands,
               (unsigned long long)s->local_replies, (unsigned long long)s->forwarded,
               (unsigned long long)s->backend_errors, (unsigned long long)s->protocol_errors,
               (unsigned long long)s->denied, (unsigned long long)s->stalls,
               (unsigned long long)s->retries);
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
    if (cluster_on()) {
        cluster_report(t);
        return;
    }
    buf_printf(t, "# Backends\r\n");
    backend_line(t, "primary", &proxy->primary);
    for (int i = 0; i < proxy->nreplicas; i++) {
        char label[32];
        snprintf(label, sizeof(label), "replica%d", i);
        backend_line(t, label, &proxy->replicas[i]);
    }
    buf_printf(t, "\r\n");
}

static void l1_section(struct buf *t)
{
    if (admin_l1_report)
        admin_l1_report(t);
    else
        buf_printf(t, "# L1\r\nl1_enabled:0\r\nl1_entries:0\r\nl1_bytes:0\r\n\r\n");
}

int admin_report(struct buf *b, int argc, const char **argv, const size_t *argvlen)
{
    struct buf t = { 0 };
    const char *w = argv[0];
    size_t n = argvlen[0];
    (void)argc;

    if (n == 5 && strncasecmp(w, "stats", 5) == 0) {
        stats_section(&t);
        backends_section(&t);
        l1_section(&t);
    } else if (n == 8 && strncasecmp(w, "backends", 8) == 0) {
        backends_section(&t);
    } else if (n == 2 && strncasecmp(w, "l1", 2) == 0) {
        l1_section(&t);
    } else if (n == 4 && strncasecmp(w, "help", 4) == 0) {
        buf_printf(&t, "REDSNANO STATS    - every figure below\r\n"
                       "REDSNANO BACKENDS - primary and replicas: health, latency, requests\r\n"
                       "REDSNANO L1       - the in-proxy cache's counters\r\n");
    } else {
        return 0;
    }
    reply_bulk(b, t.data ? t.data : "", t.len);
    buf_free(&t);
    return 1;
}
