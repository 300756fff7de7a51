/*
 * proxy/climits.c — output limits, backpressure and maxmemory-clients
 * (see climits.h).
 *
 *   req_on_reply / client_push ─> climits_output_check ─> limit_list ─┐
 *   client_read / replies / drains ─> climits_account ─> total         │
 *                                                                      ▼
 *                               before sleep: climits_before_sleep ─> client_close
 */
#include "proxy/climits.h"

#include <string.h>
#include <uv.h>

#include "base/log.h"
#include "proxy/client.h"
#include "proxy/proxy.h"

static const struct climits_settings *S; /* settings in force (proxy-owned, updated on reload) */
static size_t total;                  /* memory counted for all clients (sum of c->mem) */
static struct client *limit_list;     /* clients to close for a limit (linked by limit_next) */
static int evict_pending;             /* total went over maxmemory-clients */

void climits_settings_from_config(struct climits_settings *set, const struct config *cfg)
{
    memcpy(set->obuf, cfg->client_obuf, sizeof(set->obuf));
    set->backpressure = (size_t)cfg->client_backpressure;
    if (cfg->maxmemory_clients.percent > 0) {
        uint64_t mem = uv_get_total_memory();
        uint64_t cg = uv_get_constrained_memory();
        if (cg > 0 && cg < mem)
            mem = cg;
        set->maxmemory_clients = (size_t)(mem / 100 * (uint64_t)cfg->maxmemory_clients.percent);
    } else {
        set->maxmemory_clients = (size_t)cfg->maxmemory_clients.bytes;
    }
}

void climits_start(const struct climits_settings *set)
{
    S = set;
}

size_t climits_held_output(const struct client *c)
{
    return outq_size(&c->out) + c->fifo_bytes;
}

size_t climits_client_mem(const struct client *c)
{
    return c->in.cap + (c->rf ? reqframe_mem(c->rf) : 0) + c->out.pending.cap + c->out.writing.cap +
           c->fifo_bytes;
}

void climits_note_reply(struct client *c, size_t len)
{
    /* EWMA, 1/8 weight: a few big replies are enough to raise the guess. */
    c->reply_avg = c->reply_avg ? c->reply_avg - c->reply_avg / 8 + len / 8 : len;
}

static const char *const class_names[OBUF_CLASSES] = { "normal", "replica", "pubsub" };

/* Put c on the list of clients closed before the next poll. */
static void close_async(struct client *c)
{
    if (c->flags & (CLIENT_LIMIT_CLOSE | CLIENT_CLOSING))
        return;
    c->flags |= CLIENT_LIMIT_CLOSE;
    c->limit_next = limit_list;
    limit_list = c;
}

int climits_output_check(struct client *c)
{
    if (c->flags & (CLIENT_LIMIT_CLOSE | CLIENT_CLOSING))
        return c->flags & CLIENT_LIMIT_CLOSE ? 1 : 0;
    /* The HTTP cache API's internal client holds one reply until its owner
     * takes it (bounded by http-max-body and http-timeout); only the owner
     * may close it. */
    if (c->flags & CLIENT_INTERNAL)
        return 0;
    int cls = (c->flags & CLIENT_PUBSUB) ? OBUF_PUBSUB : OBUF_NORMAL;
    const struct obuf_limit *l = &S->obuf[cls];
    size_t held = climits_held_output(c);
    int hard = l->hard > 0 && held >= (size_t)l->hard;
    int soft = 0;

    if (l->soft > 0 && held >= (size_t)l->soft) {
        uint64_t now = uv_now(proxy->loop);
        if (c->obuf_soft_since == 0)
            c->obuf_soft_since = now;
        else if (now - c->obuf_soft_since > (uint64_t)l->soft_seconds * 1000)
            soft = 1;
    } else {
        c->obuf_soft_since = 0;
    }
    if (!hard && !soft)
        return 0;
    /* Redis's words (networking.c, closeClientOnOutputBufferLimitReached). */
    log_warn("Client id=%llu scheduled to be closed ASAP for overcoming of output buffer limits "
             "(class %s, held %zu bytes, %s limit)", (unsigned long long)c->id, class_names[cls], held,
             hard ? "hard" : "soft");
    proxy->stats.output_limit_closes++;
    close_async(c);
    return 1;
}

int climits_backpressure(const struct client *c)
{
    size_t held = climits_held_output(c);
    size_t est;

    if (held == 0 && c->inflight == 0)
        return 0;
    if (c->inflight >= CLIMITS_INFLIGHT_MAX)
        return 1;
    if (c->reply_avg == 0)              /* nothing seen yet: a first window */
        est = S->backpressure / CLIMITS_FIRST_WINDOW;
    else
        est = c->reply_avg > CLIMITS_REPLY_EST_MIN ? c->reply_avg : CLIMITS_REPLY_EST_MIN;
    return held + (size_t)c->inflight * est > S->backpressure;
}

void climits_account(struct client *c)
{
    /* Counted only while maxmemory-clients is on (climits_total recounts). */
    if (S->maxmemory_clients == 0 || (c->flags & CLIENT_CLOSING))
        return;
    size_t now = climits_client_mem(c);
    total = total - c->mem + now;
    c->mem = now;
    if (S->maxmemory_clients && total > S->maxmemory_clients)
        evict_pending = 1;
}

void climits_forget(struct client *c)
{
    total -= c->mem;
    c->mem = 0;
    if (!(c->flags & CLIENT_LIMIT_CLOSE))
        return;
    for (struct client **pp = &limit_list; *pp; pp = &(*pp)->limit_next) {
        if (*pp == c) {
            *pp = c->limit_next;
            break;
        }
    }
    c->flags &= ~CLIENT_LIMIT_CLOSE;
}

/* Close the clients holding the most until the total is under the limit
 * (Redis 7's client eviction: biggest first). */
static void evict(void)
{
    evict_pending = 0;
    while (total > S->maxmemory_clients) {
        struct client *big = NULL;
        total = 0;                    /* recount: drained output is not reported */
        for (struct client *c = proxy->clients; c; c = c->next) {
            c->mem = climits_client_mem(c);
            total += c->mem;
            if (!(c->flags & CLIENT_CLOSING) && (big == NULL || c->mem > big->mem))
                big = c;
        }
        if (big == NULL || total <= S->maxmemory_clients)
            return;
        log_notice("Evicting client id=%llu holding %zu bytes: clients hold %zu bytes, "
                   "maxmemory-clients is %zu", (unsigned long long)big->id, big->mem, total,
                   S->maxmemory_clients);
        proxy->stats.evicted_clients++;
        client_close(big);
    }
}

void climits_before_sleep(void)
{
    while (limit_list) {
        struct client *c = limit_list;
        limit_list = c->limit_next;
        c->flags &= ~CLIENT_LIMIT_CLOSE;
        client_close(c);
    }
    if (evict_pending)
        evict();
}

size_t climits_total(void)
{
    if (S->maxmemory_clients == 0)
        climits_recount();
    return total;
}

void climits_recount(void)
{
    total = 0;
    for (struct client *c = proxy->clients; c; c = c->next) {
        c->mem = (c->flags & CLIENT_CLOSING) ? 0 : climits_client_mem(c);
        total += c->mem;
    }
}
