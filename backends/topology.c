/*
 * backends/topology.c — the static mode (primary + replicas) and the
 * changes Sentinel applies to it (see topology.h). The cluster mode's
 * operations live in cluster.c.
 */
#include "backends/topology.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"

static int same_addr(const struct backend *b, const char *host, int port)
{
    char name[sizeof(b->name)];
    hostport_name(name, sizeof(name), host, port);
    return strcmp(b->name, name) == 0;
}

int topology_init(struct topology *t, uv_loop_t *loop, const struct backend_settings *set,
                  const struct hostport *primary, const struct hostport *replicas, int nreplicas)
{
    memset(t, 0, sizeof(*t));
    t->loop = loop;
    t->set = set;
    t->mode = TOPOLOGY_STATIC;
    t->ops = &topology_static_ops;
    if (backend_init(&t->primary, loop, primary->host, primary->port, BACKEND_PRIMARY, set) < 0) {
        log_warn("Primary %s: %s", t->primary.name, t->primary.err);
        return -1;
    }
    t->primary.err[0] = '\0';
    if (nreplicas > TOPOLOGY_MAX_REPLICAS)
        nreplicas = TOPOLOGY_MAX_REPLICAS;
    for (int i = 0; i < nreplicas; i++) {
        struct backend *r = &t->replicas[i];
        if (backend_init(r, loop, replicas[i].host, replicas[i].port, BACKEND_REPLICA, set) < 0) {
            log_warn("Replica %s: %s", r->name, r->err);
            return -1;
        }
        r->err[0] = '\0';
    }
    t->nreplicas = nreplicas;
    return 0;
}

static void close_one(struct backend *b, void *why)
{
    backend_close_all(b, why);
}

void topology_close(struct topology *t, const char *why)
{
    topology_foreach(t, close_one, (void *)why);
}

static int listeners_add(struct topology_listeners *l, topology_listener_fn *fn, void *ud)
{
    if (l->n == TOPOLOGY_MAX_LISTENERS)
        return -1;
    l->v[l->n].fn = fn;
    l->v[l->n].ud = ud;
    l->n++;
    return 0;
}

static void listeners_call(struct topology *t, const struct topology_listeners *l)
{
    for (int i = 0; i < l->n; i++)
        l->v[i].fn(t, l->v[i].ud);
}

int topology_listen(struct topology *t, topology_listener_fn *fn, void *ud)
{
    return listeners_add(&t->on_primary, fn, ud);
}

int topology_listen_map(struct topology *t, topology_listener_fn *fn, void *ud)
{
    return listeners_add(&t->on_map, fn, ud);
}

void topology_map_changed(struct topology *t)
{
    listeners_call(t, &t->on_map);
}

int topology_set_primary(struct topology *t, const char *host, int port)
{
    struct backend *p = &t->primary;
    struct backend next;

    if (same_addr(p, host, port))
        return 0;
    if (backend_init(&next, t->loop, host, port, BACKEND_PRIMARY, t->set) < 0) {
        log_warn("New primary %s:%d: %s", host, port, next.err);
        return -1;
    }
    log_notice("Primary changed: %s -> %s", p->name, next.name);
    backend_close_all(p, "closed: primary changed");
    /* Shared connections of the old primary detach from the struct as
     * they close; the struct itself is reused for the new address. */
    backend_retarget(p, &next);
    t->redis_version[0] = '\0';
    listeners_call(t, &t->on_primary);
    return 0;
}

int topology_set_replicas(struct topology *t, const struct hostport *addrs, int n)
{
    int same = n == t->nreplicas;

    for (int i = 0; same && i < n; i++)
        same = same_addr(&t->replicas[i], addrs[i].host, addrs[i].port);
    if (same)
        return 0;
    if (n > TOPOLOGY_MAX_REPLICAS)
        n = TOPOLOGY_MAX_REPLICAS;
    for (int i = 0; i < t->nreplicas; i++)
        backend_close_all(&t->replicas[i], "closed: replica set changed");
    int k = 0;
    for (int i = 0; i < n; i++) {
        struct backend next;
        if (backend_init(&next, t->loop, addrs[i].host, addrs[i].port, BACKEND_REPLICA, t->set) < 0) {
            log_warn("Replica %s:%d: %s", addrs[i].host, addrs[i].port, next.err);
            continue;
        }
        backend_retarget(&t->replicas[k++], &next);
    }
    for (int i = k; i < t->nreplicas; i++)
        backend_retarget(&t->replicas[i], NULL);
    t->nreplicas = k;
    log_notice("Replicas: %d", k);
    return 0;
}

static struct backend *static_retry_backend(struct topology *t, struct backend *failed)
{
    if (failed == NULL || failed->role == BACKEND_PRIMARY)
        return NULL;
    int n = t->nreplicas;
    for (int k = 0; k < n; k++) {
        struct backend *b = &t->replicas[t->rr++ % (unsigned)n];
        if (b != failed && b->healthy && backend_connected(b) > 0)
            return b;
    }
    return &t->primary;
}

/* ---- the static mode ---------------------------------------------------- */

static struct backend *static_write_backend(struct topology *t, int slot)
{
    (void)slot;
    return &t->primary;
}

/* Where a read goes by read-policy. The rotation moves once per read, so
 * one client's pipelined reads spread over the replicas too. */
static struct backend *static_read_backend(struct topology *t, int slot)
{
    struct backend *primary = &t->primary;
    int n = t->nreplicas;
    (void)slot;

    if (n == 0)
        return primary;
    switch (t->set->read_policy) {
    case READ_PRIMARY:
        return primary;
    case READ_NEAREST: {
        struct backend *best = primary;
        for (int i = 0; i < n; i++) {
            struct backend *b = &t->replicas[i];
            if (b->healthy && b->latency_us > 0 && (best->latency_us <= 0 || b->latency_us < best->latency_us))
                best = b;
        }
        return best;
    }
    case READ_ROUND_ROBIN:
        for (int k = 0; k <= n; k++) {
            unsigned i = t->rr++ % (unsigned)(n + 1);
            if (i == (unsigned)n)
                return primary;
            if (t->replicas[i].healthy)
                return &t->replicas[i];
        }
        return primary;
    case READ_REPLICA:
    case READ_PREFER_REPLICA:
        break;
    }
    for (int k = 0; k < n; k++) {
        struct backend *b = &t->replicas[t->rr++ % (unsigned)n];
        if (b->healthy)
            return b;
    }
    return primary;
}

static int static_redirect(struct topology *t, const char *reply, size_t len, struct backend **to, int *ask)
{
    (void)t;
    (void)reply;
    (void)len;
    (void)to;
    (void)ask;
    return 0;
}

static void static_foreach(struct topology *t, void (*fn)(struct backend *b, void *ud), void *ud)
{
    fn(&t->primary, ud);
    for (int i = 0; i < t->nreplicas; i++)
        fn(&t->replicas[i], ud);
}

static int static_primaries(struct topology *t, struct backend **out, int max)
{
    if (max > 0)
        out[0] = &t->primary;
    return 1;
}

const struct topology_ops topology_static_ops = {
    .write_backend = static_write_backend,
    .read_backend = static_read_backend,
    .redirect = static_redirect,
    .foreach = static_foreach,
    .primaries = static_primaries,
    .retry_backend = static_retry_backend,
};
