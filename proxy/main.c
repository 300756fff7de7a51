/*
 * proxy/main.c — start, run one event loop, stop.
 *
 *   config_load ─> log_init ─> backends (primary, replicas) ─> listeners
 *   ─> uv_run ─┬─ clients ─> router ─> servers
 *              ├─ cron (100 ms): idle clients, health, graceful shutdown
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
#include "l1/l1.h"
#include "backends/sentinel.h"
#include "base/outq.h"
#include "proxy/client.h"
#include "proxy/config.h"
#include "proxy/listener.h"
#include "base/log.h"
#include "proxy/proxy.h"

#define CRON_INTERVAL_MS 100           /* housekeeping period */
#define SHUTDOWN_GRACE_MS 3000         /* how long in-flight replies may take at exit */

struct proxy *proxy;

static struct proxy the_proxy;
static struct config the_config;
static uv_signal_t sigterm, sigint;
static uv_timer_t cron;
static uint64_t shutdown_deadline;     /* 0 = running */

static void stop_everything(void)
{
    sentinel_stop();
    health_stop();
    cluster_stop();
    l1_stop();
    client_close_all();
    backend_close_all(&proxy->primary, "shutting down");
    for (int i = 0; i < proxy->nreplicas; i++)
        backend_close_all(&proxy->replicas[i], "shutting down");
    uv_timer_stop(&cron);
    uv_close((uv_handle_t *)&cron, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
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

static int start_backends(void)
{
    const struct config *cfg = proxy->cfg;
    struct backend *p = &proxy->primary;

    if (backend_init(p, proxy->loop, cfg->primary.host, cfg->primary.port, BACKEND_PRIMARY,
                     cfg->backend_connections, (uint64_t)cfg->connect_timeout,
                     (uint64_t)cfg->backend_timeout) < 0) {
        log_warn("Primary %s: %s", p->name, p->err);
        return -1;
    }
    p->err[0] = '\0';
    for (int i = 0; i < cfg->nreplicas; i++) {
        struct backend *r = &proxy->replicas[i];
        if (backend_init(r, proxy->loop, cfg->replicas[i].host, cfg->replicas[i].port,
                         BACKEND_REPLICA, cfg->backend_connections, (uint64_t)cfg->connect_timeout,
                         (uint64_t)cfg->backend_timeout) < 0) {
            log_warn("Replica %s: %s", r->name, r->err);
            return -1;
        }
        r->err[0] = '\0';
    }
    proxy->nreplicas = cfg->nreplicas;
    return 0;
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
    if (start_backends() < 0)
        return 1;
    outq_loop_init(proxy->loop);
    client_module_init();
    if (listener_open() < 0)
        return 1;
    if (the_config.ncluster > 0) {
        /* Cluster mode: the slot map decides; no fixed primary to check. */
        if (cluster_start() < 0)
            return 1;
    } else if (health_start() < 0 || sentinel_start() < 0 || l1_start() < 0) {
        return 1;
    }
    if (the_config.ncluster == 0)
        log_notice("Primary %s, %d replica(s), %d connection(s) per backend", proxy->primary.name,
                   proxy->nreplicas, the_config.backend_connections);
    else if (the_config.l1_maxmemory > 0)
        log_warn("The L1 is off in cluster mode (l1-maxmemory ignored)");

    uv_signal_init(proxy->loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_init(proxy->loop, &sigint);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_timer_init(proxy->loop, &cron);
    uv_timer_start(&cron, cron_cb, CRON_INTERVAL_MS, CRON_INTERVAL_MS);

    uv_run(proxy->loop, UV_RUN_DEFAULT);

    uv_walk(proxy->loop, close_stragglers, NULL);
    uv_run(proxy->loop, UV_RUN_DEFAULT);
    uv_loop_close(proxy->loop);
    config_free(&the_config);
    return 0;
}
