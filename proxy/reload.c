/*
 * proxy/reload.c — live reload and CONFIG GET (see reload.h).
 */
#define _GNU_SOURCE                     /* FNM_CASEFOLD */
#include "proxy/reload.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/backend.h"
#include "backends/topology.h"
#include "base/log.h"
#include "base/tls.h"
#include "l1/l1.h"
#include "protocol/reply.h"
#include "proxy/acl.h"
#include "proxy/auth.h"
#include "proxy/climits.h"
#include "proxy/config.h"
#include "proxy/proxy.h"

#define RELOAD_VALUE_MAX 10240          /* longest value text shown (32 addresses fit) */

/* Directives that cannot change while the proxy runs: their running value
 * is kept (and the difference logged). */
static const char *const fixed[] = {
    "port", "bind", "unixsocket", "primary", "sentinel", "sentinel-master", "sentinel-password",
    "cluster", "http-port", "tls-port", "backend-connections", "backend-spare-connections", "l1-fill-connections",
    "l1-tracking",
    NULL,
};

static int saved_argc;                  /* main's argv, read again on reload */
static char **saved_argv;

void reload_init(int argc, char **argv)
{
    saved_argc = argc;
    saved_argv = argv;
}

void reload_settings(void)
{
    struct proxy *p = proxy;
    const struct config *cfg = p->cfg;

    p->limits.max_bulk_len = cfg->proto_max_bulk_len;
    p->backend_set = (struct backend_settings){
        .connections = cfg->backend_connections,
        .spares = cfg->backend_spares,
        .connect_timeout_ms = (uint64_t)cfg->connect_timeout,
        .timeout_ms = (uint64_t)cfg->backend_timeout,
        .health_interval_ms = (uint64_t)cfg->health_interval,
        .health_timeout_ms = (uint64_t)cfg->health_timeout,
        .replica_max_lag = cfg->replica_max_lag,
        .read_policy = cfg->read_policy,
        .hs = &p->backend_hs,
    };
    p->backend_hs.user = cfg->backend_user;
    p->backend_hs.password = cfg->backend_password;
    p->backend_hs.tls_server_name = cfg->backend_tls_server_name;
    p->backend_hs.directives = "backend-user / backend-password";
    p->sentinel_hs.password = cfg->sentinel_password;
    p->sentinel_hs.directives = "sentinel-password";
    p->sentinel_set = (struct sentinel_settings){
        .addrs = cfg->sentinels,
        .naddrs = cfg->nsentinels,
        .master = cfg->sentinel_master,
        .hs = &p->sentinel_hs,
    };
    p->l1_set = (struct l1_settings){
        .maxmemory = cfg->l1_maxmemory,
        .mode = cfg->l1_mode,
        .max_ttl_ms = (uint64_t)cfg->l1_max_ttl,
        .commands = cfg->l1_commands,
        .serve_stale = cfg->l1_serve_stale,
        .revalidate_after_ms = (uint64_t)cfg->l1_revalidate_after,
        .fill_connections = cfg->l1_fill_connections,
        .tracking = cfg->l1_tracking,
        .admission = cfg->l1_admission,
        .ttl_jitter = cfg->l1_ttl_jitter,
        .audit_rate = cfg->l1_audit_rate,
        .snapshot_file = cfg->l1_snapshot_file,
        .snapshot_interval_s = cfg->l1_snapshot_interval,
    };
    climits_settings_from_config(&p->climits_set, cfg);
}

static int is_fixed(const char *name)
{
    for (int i = 0; fixed[i]; i++)
        if (strcmp(fixed[i], name) == 0)
            return 1;
    return 0;
}

/* Keep directive i's running value in next, logging the refused change. */
static void keep(struct config *next, struct config *cur, int i, const char *why)
{
    char was[RELOAD_VALUE_MAX], asked[RELOAD_VALUE_MAX];

    config_value(cur, i, was, sizeof(was));
    config_value(next, i, asked, sizeof(asked));
    log_warn("Reload: %s cannot change %s (\"%s\" asked): kept \"%s\"", config_directive_name(i), why,
             asked, was);
    config_swap(next, cur, i);
}

/* Backends copy their timeouts when they are made: give them the new ones. */
static void backend_retime(struct backend *b, void *ud)
{
    const struct backend_settings *set = ud;
    b->timeout = set->timeout_ms;
    b->connect_timeout = set->connect_timeout_ms;
}

int reload_tls_contexts(const struct config *cfg, struct tls_ctx **clients, struct tls_ctx **outgoing, char *err,
                        size_t cap)
{
    char e[256];

    *clients = *outgoing = NULL;
    if (cfg->tls_port > 0) {
        struct tls_opts o = {
            .cert_file = cfg->tls_cert_file,
            .key_file = cfg->tls_key_file,
            .ca_file = cfg->tls_ca_cert_file,
            .protocols = cfg->tls_protocols,
            .ciphers = cfg->tls_ciphers,
            .ciphersuites = cfg->tls_ciphersuites,
            .auth_clients = (enum tls_auth)cfg->tls_auth_clients,
        };
        if ((*clients = tls_ctx_new_server(&o, e, sizeof(e))) == NULL) {
            snprintf(err, cap, "tls-port: %s", e);
            return -1;
        }
    }
    if (cfg->backend_tls || cfg->sentinel_tls) {
        struct tls_opts o = {
            .cert_file = cfg->backend_tls_cert_file,
            .key_file = cfg->backend_tls_key_file,
            .ca_file = cfg->backend_tls_ca_cert_file,
            .server_name = cfg->backend_tls_server_name,
        };
        if ((*outgoing = tls_ctx_new_client(&o, e, sizeof(e))) == NULL) {
            tls_ctx_unref(*clients);
            *clients = NULL;
            snprintf(err, cap, "%s: %s", cfg->backend_tls ? "backend-tls" : "sentinel-tls", e);
            return -1;
        }
    }
    return 0;
}

void reload_use_tls_contexts(struct tls_ctx *clients, struct tls_ctx *outgoing)
{
    struct proxy *p = proxy;

    tls_ctx_unref(p->tls_clients);
    p->tls_clients = clients;
    tls_ctx_unref(p->backend_hs.tls);
    tls_ctx_unref(p->sentinel_hs.tls);
    p->backend_hs.tls = outgoing && p->cfg->backend_tls ? tls_ctx_ref(outgoing) : NULL;
    p->sentinel_hs.tls = outgoing && p->cfg->sentinel_tls ? tls_ctx_ref(outgoing) : NULL;
    tls_ctx_unref(outgoing);
}

int reload_run(char *err, size_t cap)
{
    struct config next, *cur = proxy->cfg;
    char e[CONFIG_ERR_LEN];

    if (config_load(&next, saved_argc, saved_argv, NULL, e, sizeof(e)) != 0) {
        snprintf(err, cap, "%s", e);
        log_warn("Reload refused, configuration unchanged: %s", e);
        return -1;
    }
    /* Users and certificates are built before anything changes: a file
     * whose certificate does not load is refused whole too. */
    struct tls_ctx *tls_clients = NULL, *tls_outgoing = NULL;
    struct acl *users = auth_build(&next, e, sizeof(e));
    if (users == NULL || reload_tls_contexts(&next, &tls_clients, &tls_outgoing, e, sizeof(e)) < 0) {
        acl_free(users);
        config_free(&next);
        snprintf(err, cap, "%s", e);
        log_warn("Reload refused, configuration unchanged: %s", e);
        return -1;
    }
    int static_mode = proxy->topo.mode == TOPOLOGY_STATIC && cur->nsentinels == 0;
    for (int i = 0; i < config_ndirectives(); i++) {
        const char *name = config_directive_name(i);
        char a[RELOAD_VALUE_MAX], b[RELOAD_VALUE_MAX];
        config_value(cur, i, a, sizeof(a));
        config_value(&next, i, b, sizeof(b));
        if (strcmp(a, b) == 0)
            continue;
        if (is_fixed(name))
            keep(&next, cur, i, "without a restart");
        else if (strcmp(name, "replica") == 0 && !static_mode)
            keep(&next, cur, i, "in Sentinel or cluster mode (they name the replicas)");
        else if (strcmp(name, "l1-maxmemory") == 0 && (cur->l1_maxmemory == 0) != (next.l1_maxmemory == 0))
            keep(&next, cur, i, "between 0 and non-zero without a restart (the L1 is turned on or off at start)");
        else
            log_notice("Reload: %s \"%s\" -> \"%s\"", name, a, b);
    }

    /* Swap in the new configuration; cur's storage stays where the lower
     * layers' pointers (sentinel addresses) point. */
    struct config old = *cur;
    *cur = next;
    config_free(&old);
    reload_settings();
    if (log_init(cur->logfile, cur->loglevel) < 0)
        log_warn("Reload: cannot open logfile %s: logging to standard error", cur->logfile);
    topology_foreach(&proxy->topo, backend_retime, &proxy->backend_set);
    if (static_mode)
        topology_set_replicas(&proxy->topo, cur->replicas, cur->nreplicas);
    l1_settings_changed();
    climits_recount();
    /* New users for every connected client (by name), new certificates for
     * new connections: live TLS sessions keep the context they started with. */
    auth_apply(users, cur, proxy->clients);
    reload_use_tls_contexts(tls_clients, tls_outgoing);
    log_notice("Configuration reloaded%s%s", cur->config_file ? " from " : "",
               cur->config_file ? cur->config_file : "");
    return 0;
}

static int word_is(const char *w, size_t n, const char *s)
{
    return n == strlen(s) && strncasecmp(w, s, n) == 0;
}

static void config_get(struct buf *b, const char *pattern)
{
    int n = 0;
    char v[RELOAD_VALUE_MAX];

    for (int i = 0; i < config_ndirectives(); i++)
        if (fnmatch(pattern, config_directive_name(i), FNM_CASEFOLD) == 0)
            n++;
    reply_array(b, 2LL * n);
    for (int i = 0; i < config_ndirectives(); i++) {
        const char *name = config_directive_name(i);
        if (fnmatch(pattern, name, FNM_CASEFOLD) != 0)
            continue;
        config_value(proxy->cfg, i, v, sizeof(v));
        reply_bulk_str(b, name);
        reply_bulk_str(b, v);
    }
}

int reload_command(struct buf *b, int argc, const char **argv, const size_t *argvlen)
{
    if (!word_is(argv[0], argvlen[0], "config"))
        return 0;
    if (argc == 2 && word_is(argv[1], argvlen[1], "reload")) {
        char err[CONFIG_ERR_LEN];
        if (reload_run(err, sizeof(err)) == 0)
            reply_status(b, "OK");
        else
            reply_errorf(b, "ERR %s", err);
    } else if (argc == 3 && word_is(argv[1], argvlen[1], "get")) {
        char pattern[256];
        size_t n = argvlen[2] < sizeof(pattern) - 1 ? argvlen[2] : sizeof(pattern) - 1;
        memcpy(pattern, argv[2], n);
        pattern[n] = '\0';
        config_get(b, pattern);
    } else {
        reply_error(b, "ERR usage: REDSNANO CONFIG GET pattern | RELOAD");
    }
    return 1;
}
