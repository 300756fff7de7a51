/*
 * backends/health.c — health checks of the primary and replicas (see health.h).
 *
 *   health_tick ─┬─ slot 0: primary     ─ its own struct server ─ PING, INFO replication
 *                ├─ slot 1: replicas[0] ─ its own struct server ─ PING, INFO replication
 *                └─ ...
 *   every reply ─> health_on_reply ─> results of the slot for this round
 *   last reply of the round ─> health_round_done ─> verdicts ─> b->healthy,
 *                                                  b->latency_us, log lines
 *                            └─> timer for the next round
 *
 * A slot is bound to the backend at the same index (slot 0 = the topology's primary,
 * slot i = its replicas[i - 1]) and to its generation: when topology
 * retargets the backend, the slot's connection is replaced and its verdict
 * state starts over (topology has already put the backend back in rotation).
 * The srvreqs live in the slots (static storage), so a reply can never
 * outlive its request; a round waits for every reply (each has a deadline).
 */
#include "backends/health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "backends/backend.h"
#include "backends/server.h"
#include "backends/topology.h"
#include "base/log.h"
#include "protocol/info.h"

#define HEALTH_SLOTS (1 + TOPOLOGY_MAX_REPLICAS)   /* the primary + every replica */
#define HEALTH_WHY_LEN 160                    /* room for a failure reason */

static const char PING_CMD[] = "*1\r\n$4\r\nPING\r\n";
/* The server section gives the version HELLO reports; replication the lag. */
static const char INFO_CMD[] = "*3\r\n$4\r\nINFO\r\n$6\r\nserver\r\n$11\r\nreplication\r\n";

enum hcheck_kind { HCHECK_PING = 0, HCHECK_INFO };

struct hslot;

/* One check request of a slot; reused every round. */
struct hcheck {
    struct srvreq req;                /* the request on the health connection */
    struct hslot *slot;               /* the slot it belongs to */
    enum hcheck_kind kind;            /* PING or INFO replication */
};

/* Health state of one backend position (see the file comment). */
struct hslot {
    struct server *conn;              /* health connection, NULL when none */
    int bound;                        /* generation below is meaningful */
    uint32_t generation;              /* backend generation the state belongs to */
    struct hcheck ping;               /* PING of the current round */
    struct hcheck info;               /* INFO replication of the current round */
    /* the current round */
    int in_round;                     /* checks were sent for this round */
    uint32_t round_gen;               /* backend generation when the round started */
    int pending;                      /* replies still due this round */
    uint64_t ping_sent_ns;            /* uv_hrtime when PING was queued */
    int failed;                       /* a check of this round failed */
    char why[HEALTH_WHY_LEN];         /* the first failure of this round */
    double rtt_us;                    /* PING round trip this round, < 0 if none */
    int fresh;                        /* the connection was opened for this round */
    int link_up;                      /* master_link_status: 1 up, 0 down, -1 absent */
    long long offset;                 /* master_repl_offset (primary) or slave_repl_offset
                                         (replica); -1 if absent */
    /* verdicts */
    int down;                         /* out of rotation (replica) / reported down (primary) */
    int passes;                       /* consecutive passing checks while down */
    int checked;                      /* a verdict was given since bound */
    long long lag;                    /* last lag in bytes, -1 if unknown */
    int last_link;                    /* last master_link_status seen (as link_up) */
    uint64_t checks;                  /* verdicts given */
    uint64_t failures;                /* failing verdicts */
    char last_why[HEALTH_WHY_LEN];    /* why the last verdict failed, "" if it passed */
};

static struct topology *T;             /* the backends checked */
static struct hslot slots[HEALTH_SLOTS];
static uv_timer_t timer;               /* starts the next round */
static int started;                    /* timer initialised */
static int stopping;                   /* health_stop called: ignore replies */
static int round_pending;              /* slots of the round not yet complete (+1 while starting) */
static uint64_t round_start;           /* loop ms when the round started */

static struct backend *slot_backend(int i)
{
    if (i == 0)
        return &T->primary;
    return i - 1 < T->nreplicas ? &T->replicas[i - 1] : NULL;
}

static const char *role_word(int i)
{
    return i == 0 ? "Primary" : "Replica";
}

static uint64_t check_timeout_ms(void)
{
    return T->set->health_timeout_ms;
}

/* Record the first failure of the round; error replies are shortened to
 * what happened ("-ERR redsnano: backend H:P timed out..." -> "timed out..."). */
static void slot_fail(struct hslot *sl, const char *reply, size_t len)
{
    if (sl->failed)
        return;
    sl->failed = 1;
    if (len > 0 && (reply[0] == '-' || reply[0] == '+'))
        reply++, len--;
    while (len > 0 && (reply[len - 1] == '\r' || reply[len - 1] == '\n'))
        len--;
    static const char prefix[] = "ERR redsnano: backend ";
    if (len > sizeof(prefix) - 1 && memcmp(reply, prefix, sizeof(prefix) - 1) == 0) {
        const char *sp = memchr(reply + sizeof(prefix) - 1, ' ', len - (sizeof(prefix) - 1));
        if (sp) {
            len -= (size_t)(sp + 1 - reply);
            reply = sp + 1;
        }
    }
    if (len >= sizeof(sl->why))
        len = sizeof(sl->why) - 1;
    memcpy(sl->why, reply, len);
    sl->why[len] = '\0';
}

static void slot_fail_str(struct hslot *sl, const char *why)
{
    slot_fail(sl, why, strlen(why));
}

static void health_round_done(void);

/* One slot's replies are all in. */
static void slot_complete(struct hslot *sl)
{
    if (--sl->pending > 0)
        return;
    if (--round_pending == 0)
        health_round_done();
}

static void health_on_ping(struct hslot *sl, const char *reply, size_t len)
{
    if (len >= 5 && memcmp(reply, "+PONG", 5) == 0) {
        /* A new connection's first round trip includes the handshake. */
        if (!sl->fresh)
            sl->rtt_us = (double)(uv_hrtime() - sl->ping_sent_ns) / 1000.0;
        return;
    }
    slot_fail(sl, reply, len);
}

static void health_on_info(struct hslot *sl, const char *reply, size_t len)
{
    redisReply *r = reply_object(reply, len);

    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        if (r && r->type == REDIS_REPLY_ERROR)
            slot_fail_str(sl, r->str);
        else
            slot_fail_str(sl, "INFO replication: unexpected reply");
        freeReplyObject(r);
        return;
    }
    const char *info = r->str;
    size_t n = r->len;
    char v[16];
    sl->link_up = -1;
    if (info_field(info, n, "master_link_status", v, sizeof(v)) == 0)
        sl->link_up = strcmp(v, "up") == 0;
    if (sl == &slots[0]) {
        sl->offset = info_number(info, n, "master_repl_offset");
        info_field(info, n, "redis_version", T->redis_version, sizeof(T->redis_version));
    }
    else
        sl->offset = info_number(info, n, "slave_repl_offset");
    freeReplyObject(r);
}

static void health_on_reply(struct srvreq *r, const char *reply, size_t len, int failed)
{
    struct hcheck *hc = (struct hcheck *)((char *)r - offsetof(struct hcheck, req));
    struct hslot *sl = hc->slot;

    if (stopping)
        return;
    if (failed)
        slot_fail(sl, reply, len);
    else if (hc->kind == HCHECK_PING)
        health_on_ping(sl, reply, len);
    else
        health_on_info(sl, reply, len);
    slot_complete(sl);
}

static void health_conn_closed(struct server *s)
{
    struct hslot *sl = s->data;

    if (sl->conn == s)
        sl->conn = NULL;
    free(s);
}

/* Close the slot's connection (its replies, if any, still arrive as failures). */
static void slot_disconnect(struct hslot *sl, const char *why)
{
    struct server *s = sl->conn;

    if (s == NULL)
        return;
    sl->conn = NULL;
    server_close(s, why);
}

/* Make the slot follow its backend's current address. */
static void slot_bind(struct hslot *sl, const struct backend *b)
{
    if (sl->bound && sl->generation == b->generation)
        return;
    slot_disconnect(sl, "closed: address changed");
    sl->bound = 1;
    sl->generation = b->generation;
    sl->down = 0;
    sl->passes = 0;
    sl->checked = 0;
    sl->lag = -1;
    sl->last_link = -1;
    sl->last_why[0] = '\0';
}

static void slot_unbind(struct hslot *sl)
{
    slot_disconnect(sl, "closed: no longer a backend");
    sl->bound = 0;
    sl->in_round = 0;
}

/* Open a new health connection to b. NULL with the reason in sl->why. */
static struct server *slot_connect(struct hslot *sl, struct backend *b)
{
    struct server *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        slot_fail_str(sl, "out of memory");
        return NULL;
    }
    s->data = sl;
    s->hs = b->hs;
    s->on_close = health_conn_closed;
    int rc = server_connect(s, T->loop, (const struct sockaddr *)&b->addr, b->name,
                            check_timeout_ms(), check_timeout_ms());
    if (rc < 0) {
        char why[HEALTH_WHY_LEN];
        snprintf(why, sizeof(why), "cannot open a connection (%s)", uv_strerror(rc));
        slot_fail_str(sl, why);
        free(s);
        return NULL;
    }
    return s;
}

/* Send this round's checks for slot i. */
static void slot_begin(int i, struct backend *b, uint64_t now)
{
    struct hslot *sl = &slots[i];

    slot_bind(sl, b);
    sl->in_round = 1;
    sl->round_gen = b->generation;
    sl->failed = 0;
    sl->why[0] = '\0';
    sl->rtt_us = -1;
    sl->link_up = -1;
    sl->offset = -1;

    if (sl->conn && sl->conn->state == SERVER_CLOSING)
        sl->conn = NULL;              /* closing on its own: on_close frees it */
    sl->fresh = sl->conn == NULL;
    if (sl->conn == NULL)
        sl->conn = slot_connect(sl, b);
    if (sl->conn == NULL)
        return;                       /* failed at once: no replies due */

    round_pending++;
    sl->pending = 2;
    sl->ping.req.deadline = now + check_timeout_ms();
    sl->info.req.deadline = sl->ping.req.deadline;
    sl->ping.req.abandoned = 0;
    sl->info.req.abandoned = 0;
    sl->ping_sent_ns = uv_hrtime();
    server_send(sl->conn, &sl->ping.req, PING_CMD, sizeof(PING_CMD) - 1);
    server_send(sl->conn, &sl->info.req, INFO_CMD, sizeof(INFO_CMD) - 1);
}

static void health_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_now(T->loop);

    round_start = now;
    round_pending = 1;                /* held while the round starts */
    for (int i = 0; i < HEALTH_SLOTS; i++) {
        struct backend *b = slot_backend(i);
        if (b == NULL) {
            if (slots[i].bound)
                slot_unbind(&slots[i]);
            continue;
        }
        slot_begin(i, b, now);
    }
    if (--round_pending == 0)
        health_round_done();
}

/* Apply one verdict to slot i and its backend b. */
static void slot_verdict(int i, struct backend *b, int fail, const char *why)
{
    struct hslot *sl = &slots[i];

    sl->checked = 1;
    sl->checks++;
    if (fail) {
        sl->failures++;
        sl->passes = 0;
        snprintf(sl->last_why, sizeof(sl->last_why), "%s", why);
        if (!sl->down) {
            sl->down = 1;
            log_notice("%s %s is down: %s", role_word(i), b->name, why);
        }
    } else {
        sl->last_why[0] = '\0';
        if (sl->down && ++sl->passes >= HEALTH_PASSES_TO_RETURN) {
            sl->down = 0;
            sl->passes = 0;
            log_notice("%s %s is back", role_word(i), b->name);
        }
    }
    b->healthy = !sl->down;
}

static void health_round_done(void)
{
    const struct backend_settings *set = T->set;
    struct hslot *p = &slots[0];
    int primary_ok = p->in_round && !p->failed && p->round_gen == T->primary.generation;
    long long primary_offset = primary_ok ? p->offset : -1;

    for (int i = 0; i < HEALTH_SLOTS; i++) {
        struct hslot *sl = &slots[i];
        struct backend *b = slot_backend(i);
        if (!sl->in_round)
            continue;
        sl->in_round = 0;
        if (b == NULL || b->generation != sl->round_gen)
            continue;                 /* moved during the round: results are about another address */

        if (sl->rtt_us >= 0)
            b->latency_us = b->latency_us > 0
                ? HEALTH_LATENCY_ALPHA * sl->rtt_us + (1 - HEALTH_LATENCY_ALPHA) * b->latency_us
                : sl->rtt_us;
        int fail = sl->failed;
        char why[HEALTH_WHY_LEN];
        snprintf(why, sizeof(why), "%s", sl->why);
        if (i > 0) {
            sl->last_link = sl->link_up;
            sl->lag = primary_offset >= 0 && sl->offset >= 0
                ? (primary_offset > sl->offset ? primary_offset - sl->offset : 0) : -1;
            if (!fail && primary_ok && sl->link_up == 0) {
                fail = 1;
                snprintf(why, sizeof(why), "master_link_status:down");
            } else if (!fail && primary_ok && set->replica_max_lag > 0 && sl->lag > set->replica_max_lag) {
                fail = 1;
                snprintf(why, sizeof(why), "%lld bytes behind the primary (replica-max-lag %lld)",
                         sl->lag, set->replica_max_lag);
            }
        }
        log_debug("Health %s: %s rtt=%.0fus link=%d offset=%lld lag=%lld", b->name,
                  fail ? why : "ok", sl->rtt_us, sl->link_up, sl->offset, sl->lag);
        slot_verdict(i, b, fail, why);
    }

    if (stopping)
        return;
    uint64_t now = uv_now(T->loop);
    uint64_t interval = set->health_interval_ms;
    uint64_t elapsed = now - round_start;
    uv_timer_start(&timer, health_tick, elapsed < interval ? interval - elapsed : 0, 0);
}

int health_start(struct topology *t)
{
    int rc;

    T = t;
    memset(slots, 0, sizeof(slots));
    for (int i = 0; i < HEALTH_SLOTS; i++) {
        slots[i].ping.slot = slots[i].info.slot = &slots[i];
        slots[i].ping.kind = HCHECK_PING;
        slots[i].info.kind = HCHECK_INFO;
        slots[i].ping.req.on_reply = health_on_reply;
        slots[i].info.req.on_reply = health_on_reply;
        slots[i].lag = -1;
        slots[i].last_link = -1;
    }
    stopping = 0;
    if ((rc = uv_timer_init(T->loop, &timer)) < 0)
        return rc;
    started = 1;
    /* First round as soon as the loop runs: figures early. */
    uv_timer_start(&timer, health_tick, 0, 0);
    return 0;
}

void health_stop(void)
{
    if (!started || stopping)
        return;
    stopping = 1;
    uv_timer_stop(&timer);
    uv_close((uv_handle_t *)&timer, NULL);
    for (int i = 0; i < HEALTH_SLOTS; i++)
        slot_disconnect(&slots[i], "shutting down");
}

int health_figures(const struct backend *b, struct health_figures *f)
{
    int i;

    if (T == NULL)
        return -ENOENT;
    if (b == &T->primary)
        i = 0;
    else if (b >= T->replicas && b < T->replicas + T->nreplicas)
        i = 1 + (int)(b - T->replicas);
    else
        return -ENOENT;
    const struct hslot *sl = &slots[i];
    int current = sl->bound && sl->generation == b->generation;
    f->checked = current && sl->checked;
    f->link_up = current && i > 0 ? sl->last_link : -1;
    f->lag = current && i > 0 ? sl->lag : -1;
    f->checks = current ? sl->checks : 0;
    f->failures = current ? sl->failures : 0;
    f->why = current ? sl->last_why : "";
    return 0;
}
