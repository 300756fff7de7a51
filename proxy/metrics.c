/*
 * proxy/metrics.c — Prometheus text exposition (see metrics.h).
 */
#include "proxy/metrics.h"

#include <stdio.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/topology.h"
#include "base/hist.h"
#include "l1/l1.h"
#include "proxy/latency.h"
#include "proxy/proxy.h"

/* Label values: backslash, double quote and newline escaped. */
static void label_value(struct buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            buf_printf(out, "\\%c", *s);
        else if (*s == '\n')
            buf_append_str(out, "\\n");
        else
            buf_append(out, s, 1);
    }
}

static void family(struct buf *out, const char *name, const char *type, const char *help)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The buckets, _sum and _count of one histogram; labels is `k="v"` text
 * (already escaped) put before le. */
static void hist_samples(struct buf *out, const char *name, const char *labels, const struct hist *h)
{
    uint64_t cum = 0;
    for (int i = 0; i < HIST_FINITE; i++) {
        cum += h->counts[i];
        buf_printf(out, "%s_bucket{%s,le=\"%.9g\"} %llu\n", name, labels, (double)hist_bound(i) / 1e6,
                   (unsigned long long)cum);
    }
    buf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)h->count);
    buf_printf(out, "%s_sum{%s} %.9g\n", name, labels, (double)h->sum_us / 1e6);
    buf_printf(out, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

/* ---- per-backend families -------------------------------------------------- */

enum backend_figure {
    BF_HEALTHY, BF_REQUESTS, BF_ERRORS, BF_CONNECTIONS_OPENED, BF_IN_FLIGHT, BF_CONNECTED,
    BF_CHECK_LATENCY, BF_COUNT
};

static const struct {
    const char *name;                 /* metric name */
    const char *type;                 /* counter | gauge */
    const char *help;                 /* HELP text */
} backend_figures[BF_COUNT] = {
    [BF_HEALTHY] = { "redsnano_backend_healthy", "gauge", "1 while the backend passes its health checks" },
    [BF_REQUESTS] = { "redsnano_backend_requests_total", "counter", "requests routed to the backend" },
    [BF_ERRORS] = { "redsnano_backend_request_errors_total", "counter", "requests answered with a local error for the backend" },
    [BF_CONNECTIONS_OPENED] = { "redsnano_backend_connections_opened_total", "counter", "connections opened to the backend" },
    [BF_IN_FLIGHT] = { "redsnano_backend_in_flight", "gauge", "requests waiting for a reply on the shared connections" },
    [BF_CONNECTED] = { "redsnano_backend_connected_connections", "gauge", "shared connections connected" },
    [BF_CHECK_LATENCY] = { "redsnano_backend_check_latency_seconds", "gauge", "moving average of health-check round trips" },
};

struct figure_walk {
    struct buf *out;                  /* where samples go */
    enum backend_figure which;        /* the family being written */
};

static void backend_labels(struct buf *out, const struct backend *b)
{
    buf_append_str(out, "backend=\"");
    label_value(out, b->name);
    buf_printf(out, "\",role=\"%s\"", b->role == BACKEND_PRIMARY ? "primary" : "replica");
}

static void backend_sample(struct backend *b, void *ud)
{
    struct figure_walk *w = ud;
    double v = 0;

    switch (w->which) {
    case BF_HEALTHY: v = b->healthy ? 1 : 0; break;
    case BF_REQUESTS: v = (double)b->requests; break;
    case BF_ERRORS: v = (double)b->errors; break;
    case BF_CONNECTIONS_OPENED: v = (double)b->connections_opened; break;
    case BF_IN_FLIGHT: v = backend_inflight(b); break;
    case BF_CONNECTED: v = backend_connected(b); break;
    case BF_CHECK_LATENCY: v = b->latency_us / 1e6; break;
    case BF_COUNT: return;
    }
    buf_printf(w->out, "%s{", backend_figures[w->which].name);
    backend_labels(w->out, b);
    buf_printf(w->out, "} %.17g\n", v);
}

static void backend_hist(struct backend *b, void *ud)
{
    struct buf labels = { 0 };
    backend_labels(&labels, b);
    buf_append(&labels, "", 1);
    if (!labels.oom)
        hist_samples(ud, "redsnano_backend_request_duration_seconds", labels.data, &b->latency);
    buf_free(&labels);
}

void metrics_render(struct buf *out)
{
    const struct proxy_stats *s = &proxy->stats;

    family(out, "redsnano_up", "gauge", "1: the proxy's loop is running");
    buf_printf(out, "redsnano_up 1\n");
    family(out, "redsnano_uptime_seconds", "gauge", "seconds since the proxy started");
    buf_printf(out, "redsnano_uptime_seconds %llu\n",
               (unsigned long long)((uv_now(proxy->loop) - proxy->start_ms) / 1000));
    family(out, "redsnano_connected_clients", "gauge", "clients connected");
    buf_printf(out, "redsnano_connected_clients %u\n", proxy->nclients);
#define STAT_METRIC(field, name, help)                                             \
    family(out, "redsnano_" #field "_total", "counter", help);                     \
    buf_printf(out, "redsnano_" #field "_total %llu\n", (unsigned long long)s->field);
    PROXY_STATS(STAT_METRIC)
#undef STAT_METRIC

    struct figure_walk w = { .out = out };
    for (int f = 0; f < BF_COUNT; f++) {
        w.which = (enum backend_figure)f;
        family(out, backend_figures[f].name, backend_figures[f].type, backend_figures[f].help);
        topology_foreach(&proxy->topo, backend_sample, &w);
    }

    const struct l1_stats *l = l1_stats();
    family(out, "redsnano_l1_enabled", "gauge", "1 when the L1 cache is on");
    buf_printf(out, "redsnano_l1_enabled %d\n", l1_on() ? 1 : 0);
#define L1_METRIC(name, help)                                                      \
    family(out, "redsnano_l1_" #name "_total", "counter", help);                   \
    buf_printf(out, "redsnano_l1_" #name "_total %llu\n", (unsigned long long)l->name);
    L1_STATS(L1_METRIC)
#undef L1_METRIC

    family(out, "redsnano_request_duration_seconds", "histogram",
           "requests from read to complete reply, by command class");
    for (int k = 0; k < LAT_NCLASSES; k++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "class=\"%s\"", latency_class_name((enum latency_class)k));
        hist_samples(out, "redsnano_request_duration_seconds", labels,
                     latency_class_hist((enum latency_class)k));
    }
    family(out, "redsnano_backend_request_duration_seconds", "histogram",
           "requests from read to complete reply, by the backend that answered");
    topology_foreach(&proxy->topo, backend_hist, out);
}
