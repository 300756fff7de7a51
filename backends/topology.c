/*
 * backends/topology.c — applying a new primary or replica set (see topology.h).
 */
#include "backends/topology.h"

#include <stdio.h>
#include <string.h>

#include "backends/backend.h"
#include "proxy/client.h"
#include "base/log.h"
#include "proxy/proxy.h"

void (*topology_on_primary_change)(void);

static int same_addr(const struct backend *b, const char *host, int port)
{
    char name[280];
    if (strchr(host, ':'))
        snprintf(name, sizeof(name), "[%s]:%d", host, port);
    else
        snprintf(name, sizeof(name), "%s:%d", host, port);
    return strcmp(b->name, name) == 0;
}

int topology_set_primary(const char *host, int port)
{
    struct backend *p = &proxy->primary;
    struct backend next;

    if (same_addr(p, host, port))
        return 0;
    const struct config *cfg = proxy->cfg;
    if (backend_init(&next, proxy->loop, host, port, BACKEND_PRIMARY, cfg->backend_connections,
                     (uint64_t)cfg->connect_timeout, (uint64_t)cfg->backend_timeout) < 0) {
        log_warn("New primary %s:%d: %s", host, port, next.err);
        return -1;
    }
    log_notice("Primary changed: %s -> %s", p->name, next.name);
    /* Clients pinned to the old primary lose their session state. */
    client_close_pinned(p, "ERR redsnano: primary changed, session ended");
    backend_close_all(p, "closed: primary changed");
    /* Shared connections of the old primary detach from the struct as
     * they close; the struct itself is reused for the new address. */
    backend_retarget(p, &next);
    if (topology_on_primary_change)
        topology_on_primary_change();
    return 0;
}

int topology_set_replicas(const struct config_addr *addrs, int n)
{
    const struct config *cfg = proxy->cfg;
    int same = n == proxy->nreplicas;

    for (int i = 0; same && i < n; i++)
        same = same_addr(&proxy->replicas[i], addrs[i].host, addrs[i].port);
    if (same)
        return 0;
    if (n > CONFIG_MAX_ADDRS)
        n = CONFIG_MAX_ADDRS;
    for (int i = 0; i < proxy->nreplicas; i++)
        backend_close_all(&proxy->replicas[i], "closed: replica set changed");
    int k = 0;
    for (int i = 0; i < n; i++) {
        struct backend next;
        if (backend_init(&next, proxy->loop, addrs[i].host, addrs[i].port, BACKEND_REPLICA,
                         cfg->backend_connections, (uint64_t)cfg->connect_timeout,
                         (uint64_t)cfg->backend_timeout) < 0) {
            log_warn("Replica %s:%d: %s", addrs[i].host, addrs[i].port, next.err);
            continue;
        }
        backend_retarget(&proxy->replicas[k++], &next);
    }
    for (int i = k; i < proxy->nreplicas; i++)
        backend_retarget(&proxy->replicas[i], NULL);
    proxy->nreplicas = k;
    log_notice("Replicas: %d", k);
    return 0;
}
