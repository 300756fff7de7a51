/*
 * proxy/metrics.h — the proxy's figures in the Prometheus text format.
 *
 *   PROXY_STATS (proxy.h) ─┐
 *   topology_foreach       ├─> metrics_render ─> "# HELP / # TYPE / samples" ─> GET /metrics
 *   L1_STATS (l1.h)        │
 *   latency histograms  ───┘
 *
 * Names are redsnano_*; counters end in _total; per-backend families carry
 * backend="host:port" and role="primary|replica" labels; latency is two
 * histograms in seconds (redsnano_request_duration_seconds{class},
 * redsnano_backend_request_duration_seconds{backend}) over base/hist's
 * fixed buckets. The lists are rendered from their X-macros: no name is
 * written twice.
 *
 * Contract: appends the whole exposition to out (text format 0.0.4).
 */
#ifndef REDSNANO_PROXY_METRICS_H
#define REDSNANO_PROXY_METRICS_H

#include "base/buf.h"

void metrics_render(struct buf *out);

#endif
