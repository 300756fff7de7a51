/*
 * proxy/main.c — start, run one event loop, stop.
 *
 *   config_load ─> log_init ─> backends (primary, replicas) ─> listeners
 *   ─> uv_run ─┬─ clients ─> router ─> servers
 *              ├─ cron (100 ms): idle clients, health, graceful shutdown
 *              ├─ SIGHUP: reload the configuration (proxy/reload.c)
 *              └─ SIGTERM/SIGINT: stop accepting, let in-flight replies
 *                 finish (at most SHUTDOWN_GRACE_MS), close, exit 0
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "backends/backend.h"
#include "backends/cluster.h"
#include "backends/health.h"
#include "backends/sentinel.h"
#include "backends/topology.h"
#include "base/log.h"
#include "base/outq.h"
#include "base/tls.h"
#include "l1/l1.h"
#include "proxy/auth.h"
#include "proxy/client.h"
#include "proxy/climits.h"
#include "proxy/config.h"
#include "proxy/http.h"
#include "proxy/latency.h"
#include "proxy/listener.h"
#include "proxy/tracking.h"
#include "proxy/proxy.h"
#include "proxy/reload.h"

#define CRON_INTERVAL_MS 100           /* housekeeping period */
#define SHUTDOWN_GRACE_MS 3000         /* how long in-flight replies may take at exit */

struct proxy *proxy;

static struct proxy the_proxy;
static struct config the_config;
static uv_signal_t sigterm, sigint, sighup;
static uv_timer_t cron;
static uint64_t shutdown_deadline;     /* 0 = running */

static void stop_everything(void)
{
    sentinel_stop();
    health_stop();
    cluster_stop();
    l1_stop();
    http_stop();
    client_close_all();
    slowlog_free();
    tracking_stop();
    topology_close(&proxy->topo, "shutting down");
    uv_timer_stop(&cron);
    uv_close((uv_handle_t *)&cron, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sighup, NULL);
    outq_loop_close();
}

static void cron_cb(uv_timer_t *t)
{
    uint64_t now = uv_now(t->loop);

    if (shutdown_deadline) {
        if (!client_any_pending() || now >= shutdown_deadline) {
            log_notice("redsnano is now ready to exit, bye bye...");
            stop_everything();
        }
        return;
    }
    client_idle_check(now);
    tracking_cron();
}

static void on_signal(uv_signal_t *h, int signum)
{
    if (shutdown_deadline) {
        log_warn("Received %s again: exiting now", signum == SIGINT ? "SIGINT" : "SIGTERM");
        stop_everything();
        return;
    }
    log_notice("Received %s scheduling shutdown...", signum == SIGINT ? "SIGINT" : "SIGTERM");
    proxy->shutting_down = 1;
    listener_close();
    shutdown_deadline = uv_now(h->loop) + SHUTDOWN_GRACE_MS;
}

/* SIGHUP: read the configuration again (refused whole on an error). */
static void on_sighup(uv_signal_t *h, int signum)
{
    char err[CONFIG_ERR_LEN];
    (void)h;
    (void)signum;
    log_notice("Received SIGHUP: reloading the configuration");
    (void)reload_run(err, sizeof(err));
}

/* The primary moved (Sentinel): clients pinned to the old one lose their
 * session state. */
static void on_primary_change(struct topology *t, void *ud)
{
    (void)ud;
    client_close_pinned(&t->primary, "ERR redsnano: primary changed, session ended");
    tracking_primary_changed();
}

/* Work done once per loop iteration, right before the loop polls (Redis's
 * beforeSleep), in this order: stalled clients whose wait ended dispatch
 * their next requests; HTTP cache requests whose replies arrived are
 * answered; then every output queue is written (outq, once per iteration,
 * after this hook). The L1 takes pending invalidations lazily,
 * once per iteration, before its first hit (l1_read). */
static void before_sleep(void)
{
    climits_before_sleep();
    client_run_resumes();
    http_before_sleep();
}

static void close_stragglers(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(int argc, char **argv)
{
    char err[CONFIG_ERR_LEN];

    signal(SIGPIPE, SIG_IGN);
    int rc = config_load(&the_config, argc, argv, NULL, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "redsnano: %s\n", err);
        return 1;
    }
    if (the_config.test_config) {
        printf("redsnano: configuration is valid\n");
        config_free(&the_config);
        return 0;
    }
    if (log_init(the_config.logfile, the_config.loglevel) < 0) {
        fprintf(stderr, "redsnano: cannot open logfile %s\n", the_config.logfile);
        return 1;
    }

    proxy = &the_proxy;
    proxy->loop = uv_default_loop();
    proxy->cfg = &the_config;
    proxy->limits.max_bulk_len = the_config.proto_max_bulk_len;
    proxy->limits.max_args = 1024LL * 1024;
    proxy->start_ms = uv_now(proxy->loop);

    log_notice("redsnano %s starting, pid %d", REDSNANO_VERSION, (int)getpid());
    reload_init(argc, argv);
    reload_settings();
    climits_start(&proxy->climits_set);
    if (auth_init(&the_config, err, sizeof(err)) < 0) {
        log_warn("%s", err);
        return 1;
    }
    struct tls_ctx *tls_clients, *tls_outgoing;
    if (reload_tls_contexts(&the_config, &tls_clients, &tls_outgoing, err, sizeof(err)) < 0) {
        log_warn("%s", err);
        return 1;
    }
    reload_use_tls_contexts(tls_clients, tls_outgoing);
    if (topology_init(&proxy->topo, proxy->loop, &proxy->backend_set, &the_config.primary,
                      the_config.replicas, the_config.nreplicas) < 0)
        return 1;
    topology_listen(&proxy->topo, on_primary_change, NULL);
    outq_loop_init(proxy->loop);
    outq_set_before_flush(before_sleep);
    if (listener_open() < 0 || http_start() < 0)
        return 1;
    if (the_config.ncluster > 0) {
        /* Cluster mode: the slot map decides; no fixed primary to check.
         * The L1 keeps one origin (tracking, hash checks) per primary node. */
        if (cluster_start(&proxy->topo, the_config.cluster, the_config.ncluster) < 0)
            return 1;
    } else if (health_start(&proxy->topo) < 0 || sentinel_start(&proxy->topo, &proxy->sentinel_set) < 0) {
        return 1;
    }
    if (l1_start(&proxy->topo, &proxy->l1_set) < 0)
        return 1;
    if (the_config.ncluster == 0)
        log_notice("Primary %s, %d replica(s), %d connection(s) per backend", proxy->topo.primary.name,
                   proxy->topo.nreplicas, the_config.backend_connections);

    uv_signal_init(proxy->loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_init(proxy->loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_init(proxy->loop, &sighup);
    uv_signal_start(&sighup, on_sighup, SIGHUP);
    uv_timer_init(proxy->loop, &cron);
    uv_timer_start(&cron, cron_cb, CRON_INTERVAL_MS, CRON_INTERVAL_MS);

    uv_run(proxy->loop, UV_RUN_DEFAULT);

    uv_walk(proxy->loop, close_stragglers, NULL);
    uv_run(proxy->loop, UV_RUN_DEFAULT);
    uv_loop_close(proxy->loop);
    reload_use_tls_contexts(NULL, NULL);
    auth_free();
    config_free(&the_config);
    return 0;
}
