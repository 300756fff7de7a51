/*
 * backends/sentinel.c — following Redis Sentinel (see sentinel.h).
 *
 *   sentinel_tick (health-interval) ─> per Sentinel:
 *       cmd connection ─ SENTINEL master / get-master-addr-by-name / replicas
 *           └─ last reply of the poll ─> sentinel_poll_done ─┬─ failed: close, back off
 *                                                            └─ sentinel_adopt ─> topology
 *       sub connection (push mode) ─ SUBSCRIBE +switch-master
 *   (both connections open through the handshake: TLS with sentinel-tls,
 *   AUTH sentinel-password; a refused AUTH closes them with Redis's text)
 *           └─ sentinel_on_push ─> sentinel_switch ─> topology_set_primary
 *
 * Every Sentinel struct holds its srvreqs, so replies never outlive their
 * requests; a query is "active" from its send to its reply, and replies of
 * queries made inactive (the Sentinel was closed on purpose) are ignored.
 */
#include "backends/sentinel.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "backends/server.h"
#include "backends/topology.h"
#include "base/hostport.h"
#include "base/log.h"
#include "protocol/info.h"

#define SENTINEL_WHY_LEN 200          /* room for a failure reason */
#define SENTINEL_NAME_LEN 280         /* "host:port" / "[v6]:port" */

enum squery_kind {
    SQ_MASTER = 0,                    /* SENTINEL master NAME (config-epoch) */
    SQ_ADDR,                          /* SENTINEL get-master-addr-by-name NAME */
    SQ_REPLICAS,                      /* SENTINEL replicas NAME */
    SQ_KINDS
};

struct sentinel;

/* One query of a Sentinel's command connection; reused every poll. */
struct squery {
    struct srvreq req;                /* the request */
    struct sentinel *sn;              /* whose */
    enum squery_kind kind;            /* which command */
    int active;                       /* sent, reply not yet handled */
};

/* One configured Sentinel. */
struct sentinel {
    char name[SENTINEL_NAME_LEN];     /* "host:port" for messages */
    struct sockaddr_storage addr;     /* resolved address */
    int resolved;                     /* addr is valid (else the Sentinel is ignored) */
    struct server *cmd;               /* command connection, NULL when none */
    struct server *sub;               /* +switch-master subscription, NULL when none */
    struct squery q[SQ_KINDS];        /* the queries */
    int pending;                      /* poll replies still due */
    /* the poll in progress */
    int failed;                       /* a query of this poll failed */
    char why[SENTINEL_WHY_LEN];       /* the first failure */
    long long epoch;                  /* config-epoch of its view */
    char host[256];                   /* primary it names */
    int port;                         /* ... and its port */
    struct hostport reps[SENTINEL_MAX]; /* live replicas it lists, primary excluded */
    int nreps;                        /* entries in reps */
    /* last complete poll */
    int have_view;                    /* view_* below hold its last good answer */
    long long view_epoch;             /* its config epoch */
    char view_name[SENTINEL_NAME_LEN];/* the primary it named, "host:port" */
    /* failures */
    int down;                         /* failing (logged once) */
    uint64_t retry_at;                /* no reconnect before this loop ms */
    uint64_t backoff;                 /* next backoff, ms */
};

static struct sentinel sentinels[SENTINEL_MAX];
static int nsentinels;
static uv_timer_t timer;               /* polls */
static int started;                    /* timer initialised */
static int stopping;                   /* sentinel_stop called */
static char *cmds[SQ_KINDS];           /* formatted commands (malloc'd by hiredis) */
static int cmdlen[SQ_KINDS];           /* their lengths */
static char *subscribe_cmd;            /* SUBSCRIBE +switch-master */
static int subscribe_len;
static int following;                  /* a Sentinel answer was adopted */
static long long follow_epoch;         /* config epoch of the view in force */

static struct topology *T;            /* what the Sentinels' answers change */
static const struct sentinel_settings *S; /* the Sentinels and the master name */

static int is_primary(const char *name)
{
    return strcmp(T->primary.name, name) == 0;
}

/* The value of key in a flat key/value array reply, or NULL. */
static const redisReply *kv_get(const redisReply *r, const char *key)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, key) == 0)
            return r->element[i + 1];
    }
    return NULL;
}

static const char *kv_str(const redisReply *r, const char *key)
{
    const redisReply *v = kv_get(r, key);
    return v && v->type == REDIS_REPLY_STRING ? v->str : NULL;
}

static int parse_port(const char *s)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    return s && end != s && *end == '\0' && v > 0 && v <= 65535 ? (int)v : -1;
}

static void sn_fail(struct sentinel *sn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sn_fail(struct sentinel *sn, const char *fmt, ...)
{
    va_list ap;

    if (sn->failed)
        return;
    sn->failed = 1;
    va_start(ap, fmt);
    vsnprintf(sn->why, sizeof(sn->why), fmt, ap);
    va_end(ap);
}

/* Record an error reply as the failure (without the "-" and CRLF). */
static void sn_fail_reply(struct sentinel *sn, const char *what, const char *reply, size_t len)
{
    if (len > 0 && reply[0] == '-')
        reply++, len--;
    while (len > 0 && (reply[len - 1] == '\r' || reply[len - 1] == '\n'))
        len--;
    sn_fail(sn, "%s: %.*s", what, (int)len, reply);
}

/* Close both connections; replies still due are ignored. */
static void sn_disconnect(struct sentinel *sn, const char *why)
{
    for (int k = 0; k < SQ_KINDS; k++)
        sn->q[k].active = 0;
    sn->pending = 0;
    struct server *c = sn->cmd, *s = sn->sub;
    sn->cmd = sn->sub = NULL;
    if (c)
        server_close(c, why);
    if (s)
        server_close(s, why);
}

/* The Sentinel failed: close, back off, log the first failure only. */
static void sn_give_up(struct sentinel *sn, const char *why)
{
    uint64_t now = uv_now(T->loop);

    sn_disconnect(sn, "closed: Sentinel failed");
    sn->have_view = 0;
    sn->retry_at = now + sn->backoff;
    if (!sn->down) {
        sn->down = 1;
        log_warn("Sentinel %s is unavailable: %s (retrying with backoff)", sn->name, why);
    } else {
        log_verbose("Sentinel %s still unavailable: %s (next try in %llu ms)", sn->name, why,
                    (unsigned long long)sn->backoff);
    }
    sn->backoff = sn->backoff * 2 > SENTINEL_BACKOFF_MAX_MS ? SENTINEL_BACKOFF_MAX_MS : sn->backoff * 2;
}

static int rep_cmp(const void *a, const void *b)
{
    const struct hostport *x = a, *y = b;
    int c = strcmp(x->host, y->host);
    return c ? c : x->port - y->port;
}

/* Is Sentinel i's last view the one in force? */
static int sn_current(const struct sentinel *sn)
{
    return sn->have_view && !sn->down && sn->view_epoch == follow_epoch && is_primary(sn->view_name);
}

/* A complete, good poll of sn: adopt its view if it is newer, and take its
 * replicas if it is the first Sentinel whose view is in force. */
static void sentinel_adopt(struct sentinel *sn)
{
    char name[SENTINEL_NAME_LEN];

    log_debug("Sentinel %s: epoch %lld primary %s:%d, %d replica(s)", sn->name, sn->epoch, sn->host,
              sn->port, sn->nreps);

    hostport_name(name, sizeof(name), sn->host, sn->port);
    sn->have_view = 1;
    sn->view_epoch = sn->epoch;
    snprintf(sn->view_name, sizeof(sn->view_name), "%s", name);

    if (!following || sn->epoch > follow_epoch) {
        if (!is_primary(name)) {
            log_notice("Sentinel %s names %s as primary of %s (config epoch %lld)", sn->name, name,
                       S->master, sn->epoch);
            if (topology_set_primary(T, sn->host, sn->port) < 0)
                return;
        }
        following = 1;
        follow_epoch = sn->epoch;
    }
    if (!sn_current(sn))
        return;                       /* an older view, or one that disagrees: ignore */
    for (struct sentinel *o = sentinels; o < sn; o++)
        if (sn_current(o))
            return;                   /* an earlier Sentinel provides the replicas */

    /* The primary named by the Sentinel may have changed in between (a
     * +switch-master): exclude the one in force too. */
    struct hostport reps[SENTINEL_MAX];
    int n = 0;
    for (int i = 0; i < sn->nreps; i++) {
        hostport_name(name, sizeof(name), sn->reps[i].host, sn->reps[i].port);
        if (!is_primary(name))
            reps[n++] = sn->reps[i];
    }
    qsort(reps, (size_t)n, sizeof(reps[0]), rep_cmp);
    topology_set_replicas(T, reps, n);
}

static void sentinel_poll_done(struct sentinel *sn)
{
    if (sn->failed) {
        sn_give_up(sn, sn->why);
        return;
    }
    if (sn->down) {
        sn->down = 0;
        log_notice("Sentinel %s is back", sn->name);
    }
    sn->backoff = SENTINEL_BACKOFF_MIN_MS;
    sentinel_adopt(sn);
}

static void on_master(struct sentinel *sn, const redisReply *r)
{
    const char *e = kv_str(r, "config-epoch");
    char *end;

    sn->epoch = e ? strtoll(e, &end, 10) : -1;
    if (e == NULL || end == e || *end != '\0')
        sn_fail(sn, "SENTINEL master: no config-epoch in the reply");
}

static void on_addr(struct sentinel *sn, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        sn_fail(sn, "does not know master %s", S->master);
        return;
    }
    int port = parse_port(r->element[1]->str);
    if (port < 0 || r->element[0]->len >= sizeof(sn->host)) {
        sn_fail(sn, "SENTINEL get-master-addr-by-name: bad address");
        return;
    }
    snprintf(sn->host, sizeof(sn->host), "%s", r->element[0]->str);
    sn->port = port;
}

static void on_replicas(struct sentinel *sn, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY) {
        sn_fail(sn, "SENTINEL replicas: unexpected reply");
        return;
    }
    sn->nreps = 0;
    for (size_t i = 0; i < r->elements && sn->nreps < SENTINEL_MAX; i++) {
        const redisReply *e = r->element[i];
        const char *ip = kv_str(e, "ip"), *flags = kv_str(e, "flags");
        int port = parse_port(kv_str(e, "port"));
        if (ip == NULL || port < 0 || strlen(ip) >= sizeof(sn->reps[0].host))
            continue;
        if (flags && (strstr(flags, "s_down") || strstr(flags, "o_down") || strstr(flags, "disconnected")))
            continue;
        struct hostport *a = &sn->reps[sn->nreps++];
        snprintf(a->host, sizeof(a->host), "%s", ip);
        a->port = port;
    }
}

static void sentinel_on_reply(struct srvreq *req, const char *reply, size_t len, int failed)
{
    struct squery *q = (struct squery *)((char *)req - offsetof(struct squery, req));
    struct sentinel *sn = q->sn;
    static const char *const what[SQ_KINDS] = {
        "SENTINEL master", "SENTINEL get-master-addr-by-name", "SENTINEL replicas" };

    if (!q->active || stopping)
        return;
    q->active = 0;
    if (failed) {
        sn_fail_reply(sn, "connection", reply, len);
    } else if (len > 0 && reply[0] == '-') {
        sn_fail_reply(sn, what[q->kind], reply, len);
    } else {
        redisReply *r = reply_object(reply, len);
        if (r == NULL)
            sn_fail(sn, "%s: unreadable reply", what[q->kind]);
        else if (q->kind == SQ_MASTER)
            on_master(sn, r);
        else if (q->kind == SQ_ADDR)
            on_addr(sn, r);
        else
            on_replicas(sn, r);
        freeReplyObject(r);
    }
    if (--sn->pending == 0)
        sentinel_poll_done(sn);
}

/* +switch-master "<name> <oldip> <oldport> <newip> <newport>". */
static void sentinel_switch(struct sentinel *sn, const char *msg)
{
    char name[256], oldip[256], newip[256], old[SENTINEL_NAME_LEN];
    int oldport, newport;

    if (sscanf(msg, "%255s %255s %d %255s %d", name, oldip, &oldport, newip, &newport) != 5) {
        log_warn("Sentinel %s: unreadable +switch-master message '%s'", sn->name, msg);
        return;
    }
    if (strcmp(name, S->master) != 0)
        return;
    hostport_name(old, sizeof(old), oldip, oldport);
    if (!is_primary(old)) {
        log_verbose("Sentinel %s: +switch-master from %s ignored: the primary is %s", sn->name, old,
                    T->primary.name);
        return;
    }
    log_notice("Sentinel %s: +switch-master %s %s:%d -> %s:%d", sn->name, name, oldip, oldport,
               newip, newport);
    topology_set_primary(T, newip, newport);
}

static void sentinel_on_push(struct server *s, const char *reply, size_t len)
{
    struct sentinel *sn = s->data;

    if (stopping || sn->sub != s)
        return;
    if (len > 0 && reply[0] == '-') {
        char why[SENTINEL_WHY_LEN];
        snprintf(why, sizeof(why), "subscription refused: %.*s", (int)(len > 3 ? len - 3 : 0), reply + 1);
        sn_give_up(sn, why);
        return;
    }
    if (len == 0 || reply[0] != '*')
        return;
    redisReply *r = reply_object(reply, len);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "message") == 0 &&
        r->element[1]->type == REDIS_REPLY_STRING && strcmp(r->element[1]->str, "+switch-master") == 0 &&
        r->element[2]->type == REDIS_REPLY_STRING)
        sentinel_switch(sn, r->element[2]->str);
    freeReplyObject(r);
}

static void sentinel_conn_closed(struct server *s)
{
    struct sentinel *sn = s->data;

    if (sn->cmd == s)
        sn->cmd = NULL;
    if (sn->sub == s)
        sn->sub = NULL;
    free(s);
}

/* A new connection to sn (NULL if it could not be started). */
static struct server *sn_connect(struct sentinel *sn)
{
    struct server *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->data = sn;
    s->on_close = sentinel_conn_closed;
    s->hs = S->hs;
    if (server_connect(s, T->loop, (const struct sockaddr *)&sn->addr, sn->name,
                       T->set->connect_timeout_ms, T->set->health_timeout_ms) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void sn_send(struct sentinel *sn, enum squery_kind k, uint64_t deadline)
{
    struct squery *q = &sn->q[k];

    q->active = 1;
    q->req.deadline = deadline;
    q->req.abandoned = 0;
    sn->pending++;
    server_send(sn->cmd, &q->req, cmds[k], (size_t)cmdlen[k]);
}

/* Forget the results of the previous poll. */
static void sn_poll_reset(struct sentinel *sn)
{
    sn->failed = 0;
    sn->why[0] = '\0';
    sn->epoch = -1;
    sn->host[0] = '\0';
    sn->port = 0;
    sn->nreps = 0;
}

static void sentinel_poll(struct sentinel *sn, uint64_t now)
{
    uint64_t deadline = now + T->set->health_timeout_ms;

    if (now < sn->retry_at)
        return;
    if (sn->cmd && sn->cmd->state == SERVER_CLOSING)
        sn->cmd = NULL;               /* its on_close frees it */
    if (sn->sub && sn->sub->state == SERVER_CLOSING)
        sn->sub = NULL;
    if (sn->cmd == NULL) {
        sn->pending = 0;
        sn_poll_reset(sn);
        if ((sn->cmd = sn_connect(sn)) == NULL) {
            sn_give_up(sn, "cannot open a connection");
            return;
        }
    }
    if (sn->sub == NULL && (sn->sub = sn_connect(sn)) != NULL) {
        sn->sub->push = sentinel_on_push;
        server_send_raw(sn->sub, subscribe_cmd, (size_t)subscribe_len);
    }
    if (sn->pending > 0)
        return;                       /* the previous poll is still due */
    sn_poll_reset(sn);
    /* Held while sending: a closed connection answers at once, and the
     * poll must not complete before all three are queued. */
    sn->pending = 1;
    sn_send(sn, SQ_MASTER, deadline);
    sn_send(sn, SQ_ADDR, deadline);
    sn_send(sn, SQ_REPLICAS, deadline);
    if (--sn->pending == 0)
        sentinel_poll_done(sn);
}

static void sentinel_tick(uv_timer_t *t)
{
    uint64_t now = uv_now(t->loop);

    for (int i = 0; i < nsentinels && !stopping; i++)
        if (sentinels[i].resolved)
            sentinel_poll(&sentinels[i], now);
}

static int sn_resolve(struct sentinel *sn, const struct hostport *a)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];

    hostport_name(sn->name, sizeof(sn->name), a->host, a->port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%d", a->port);
    int rc = getaddrinfo(a->host, portstr, &hints, &res);
    if (rc != 0 || res == NULL) {
        log_warn("Sentinel %s: cannot resolve %s (%s); ignored", sn->name, a->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&sn->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    sn->resolved = 1;
    return 0;
}

static void free_cmds(void)
{
    for (int k = 0; k < SQ_KINDS; k++) {
        free(cmds[k]);
        cmds[k] = NULL;
    }
    free(subscribe_cmd);
    subscribe_cmd = NULL;
}

int sentinel_start(struct topology *t, const struct sentinel_settings *set)
{
    const char *m = set->master;
    int rc, ok = 0;

    if (set->naddrs == 0 || m == NULL)
        return 0;
    T = t;
    S = set;
    memset(sentinels, 0, sizeof(sentinels));
    nsentinels = set->naddrs > SENTINEL_MAX ? SENTINEL_MAX : set->naddrs;
    for (int i = 0; i < nsentinels; i++) {
        struct sentinel *sn = &sentinels[i];
        for (int k = 0; k < SQ_KINDS; k++) {
            sn->q[k].sn = sn;
            sn->q[k].kind = (enum squery_kind)k;
            sn->q[k].req.on_reply = sentinel_on_reply;
        }
        sn->backoff = SENTINEL_BACKOFF_MIN_MS;
        if (sn_resolve(sn, &set->addrs[i]) == 0)
            ok++;
    }
    if (ok == 0) {
        log_warn("No Sentinel address could be resolved");
        return -EINVAL;
    }
    cmdlen[SQ_MASTER] = redisFormatCommand(&cmds[SQ_MASTER], "SENTINEL master %s", m);
    cmdlen[SQ_ADDR] = redisFormatCommand(&cmds[SQ_ADDR], "SENTINEL get-master-addr-by-name %s", m);
    cmdlen[SQ_REPLICAS] = redisFormatCommand(&cmds[SQ_REPLICAS], "SENTINEL replicas %s", m);
    subscribe_len = redisFormatCommand(&subscribe_cmd, "SUBSCRIBE +switch-master");
    for (int k = 0; k < SQ_KINDS; k++)
        if (cmdlen[k] < 0 || cmds[k] == NULL || subscribe_len < 0) {
            free_cmds();
            return -ENOMEM;
        }
    stopping = 0;
    following = 0;
    if ((rc = uv_timer_init(T->loop, &timer)) < 0) {
        free_cmds();
        return rc;
    }
    started = 1;
    uv_timer_start(&timer, sentinel_tick, 0, T->set->health_interval_ms);
    log_notice("Following Sentinel master '%s' through %d Sentinel(s)", m, ok);
    return 0;
}

void sentinel_stop(void)
{
    if (!started || stopping)
        return;
    stopping = 1;
    uv_timer_stop(&timer);
    uv_close((uv_handle_t *)&timer, NULL);
    for (int i = 0; i < nsentinels; i++)
        sn_disconnect(&sentinels[i], "shutting down");
    free_cmds();
}
