/*
 * proxy/tracking.c — the proxy as its clients' tracking server (see tracking.h).
 *
 *   CLIENT TRACKING ── tracking_command ── struct tracking_client (c->trk)
 *   framed request ─── tracking_seen ─┬─ read: key table  key -> client ids
 *                                     └─ write: invalidate(key, writer)
 *   Redis link (RESP3, BCAST) ── `>2 invalidate` ── link_push ── invalidate(key, NULL)
 *                                                              + BCAST prefixes
 *   invalidate ── send_invalidation ── client_push_buf (after owed replies)
 */
#include "proxy/tracking.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/backend.h"
#include "backends/topology.h"
#include "base/log.h"
#include "protocol/reply.h"
#include "protocol/resp3.h"
#include "proxy/client.h"
#include "proxy/local.h"
#include "proxy/proxy.h"

#define TRACKING_STACK_KEYS 64         /* key positions looked at without a malloc */
#define TRACKING_MIN_BUCKETS 1024      /* initial size of the key table */

/* Per-client tracking flags (Redis's CLIENT_TRACKING_*). */
enum trk_flag {
    TRK_BCAST = 1u << 0,               /* broadcast mode: prefixes, no key table */
    TRK_OPTIN = 1u << 1,               /* track reads only after CLIENT CACHING yes */
    TRK_OPTOUT = 1u << 2,              /* track reads except after CLIENT CACHING no */
    TRK_NOLOOP = 1u << 3,              /* no invalidations for the client's own writes */
    TRK_CACHING = 1u << 4,             /* CLIENT CACHING yes|no given for the next command */
    TRK_BROKEN_REDIR = 1u << 5,        /* the redirect client went away */
};

/* One BCAST prefix. */
struct trk_prefix {
    char *p;                           /* its bytes (malloc'd, may be empty) */
    size_t len;                        /* their count */
};

struct tracking_client {
    struct client *c;                  /* the tracking client */
    unsigned flags;                    /* enum trk_flag */
    uint64_t redirect;                 /* REDIRECT client id, 0 = none */
    struct trk_prefix *prefixes;       /* BCAST prefixes, sorted (TRACKINGINFO lists them so) */
    int nprefixes;                     /* their count */
    struct tracking_client *prev, *next; /* every tracking client */
};

/* A key some default-mode clients read: who to tell when it changes. */
struct trk_key {
    struct trk_key *next;              /* bucket chain */
    uint64_t hash;                     /* FNV-1a of the key */
    uint64_t *ids;                     /* ids of the clients that read it */
    uint32_t nids;                     /* ids in use */
    uint32_t capids;                   /* ids allocated */
    size_t len;                        /* key length */
    char key[];                        /* key bytes */
};

/* A CLIENT TRACKING on whose +OK waits for the Redis link. */
struct trk_waiter {
    struct trk_waiter *next;           /* next waiter */
    struct srvreq *sr;                 /* the client's FIFO place (client_wait) */
    uint64_t id;                       /* the client, to turn tracking off on failure */
};

unsigned tracking_nclients;
static struct tracking_stats stats;
static struct tracking_client *trk_all;      /* every tracking client */
static struct trk_key **buckets;             /* the key table */
static size_t nbuckets;                      /* its size (power of two), 0 = none yet */
static size_t nkeys;                         /* keys in it */
static size_t evict_cursor;                  /* next bucket looked at when over the limit */
static struct server *link_conn;             /* RESP3 connection with CLIENT TRACKING ON BCAST */
static int link_ready;                       /* its CLIENT TRACKING was answered +OK */
static int link_lost;                        /* clients tracked while it was down: flush when back */
static struct trk_waiter *waiters;           /* CLIENT TRACKING on replies waiting for the link */

static uint64_t key_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- sending ------------------------------------------------------------ */

static void push_key_array(struct buf *b, const char *key, size_t len)
{
    reply_array(b, 1);
    reply_bulk(b, key, len);
}

/* Start an invalidation message for tc's client (or its redirect), as
 * Redis's sendTrackingMessage: returns the buffer to write the value (the
 * array of keys, or the null) into and sets *to, or NULL when there is
 * nowhere to say it (a RESP2 client without a subscribed redirect; a gone
 * redirect, after telling a RESP3 client `tracking-redir-broken`). */
static struct buf *msg_begin(struct tracking_client *tc, struct client **to_out)
{
    struct client *t = tc->c, *to = t;
    int redirected = 0;
    struct buf *b;

    if (tc->redirect) {
        to = client_by_id(tc->redirect);
        if (to == NULL) {
            tc->flags |= TRK_BROKEN_REDIR;
            if (t->proto == 3 && (b = client_push_buf(t)) != NULL) {
                buf_printf(b, ">2\r\n$21\r\ntracking-redir-broken\r\n:%llu\r\n",
                           (unsigned long long)tc->redirect);
                stats.redir_broken++;
                client_reply_done(t);
            }
            return NULL;
        }
        redirected = 1;
    }
    if (to->proto == 3) {
        if ((b = client_push_buf(to)) == NULL)
            return NULL;
        static const char push[] = ">2\r\n$10\r\ninvalidate\r\n";
        buf_append(b, push, sizeof(push) - 1);
    } else if (redirected && (to->flags & CLIENT_PUSH)) {
        if ((b = client_push_buf(to)) == NULL)
            return NULL;
        static const char msg[] = "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n";
        buf_append(b, msg, sizeof(msg) - 1);
    } else {
        return NULL;
    }
    *to_out = to;
    return b;
}

static void msg_end(struct client *to)
{
    stats.invalidations++;
    client_reply_done(to);
}

/* Tell tc's client that key changed; key NULL = flush (the null message,
 * in the tracking client's own protocol, as Redis writes it). */
static void send_invalidation(struct tracking_client *tc, const char *key, size_t len)
{
    struct client *to;
    int proto = tc->c->proto;
    struct buf *b = msg_begin(tc, &to);

    if (b == NULL)
        return;
    if (key == NULL)
        buf_append(b, proto == 3 ? "_\r\n" : "$-1\r\n", proto == 3 ? 3 : 5);
    else
        push_key_array(b, key, len);
    msg_end(to);
}

/* ---- the key table (default mode) ----------------------------------------- */

static struct trk_key **key_slot(const char *key, size_t len, uint64_t h)
{
    struct trk_key **pp = &buckets[h & (nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0)
            break;
    return pp;
}

static void key_free(struct trk_key *k)
{
    free(k->ids);
    free(k);
}

static void table_grow(void)
{
    size_t n = nbuckets ? nbuckets * 2 : TRACKING_MIN_BUCKETS;
    struct trk_key **nb = calloc(n, sizeof(*nb));
    if (nb == NULL)
        return;                        /* chains get longer, nothing is lost */
    for (size_t i = 0; i < nbuckets; i++) {
        struct trk_key *k = buckets[i], *next;
        for (; k; k = next) {
            next = k->next;
            k->next = nb[k->hash & (n - 1)];
            nb[k->hash & (n - 1)] = k;
        }
    }
    free(buckets);
    buckets = nb;
    nbuckets = n;
}

static void table_clear(void)
{
    for (size_t i = 0; i < nbuckets; i++) {
        struct trk_key *k = buckets[i], *next;
        for (; k; k = next) {
            next = k->next;
            key_free(k);
        }
        buckets[i] = NULL;
    }
    nkeys = 0;
}

/* Send the invalidation of *pp to the clients that read it (not the
 * writer if it asked NOLOOP) and forget it. */
static void key_fire(struct trk_key **pp, const struct client *writer)
{
    struct trk_key *k = *pp;

    *pp = k->next;
    nkeys--;
    for (uint32_t i = 0; i < k->nids; i++) {
        struct client *t = client_by_id(k->ids[i]);
        if (t == NULL || t->trk == NULL || (t->trk->flags & TRK_BCAST))
            continue;
        if ((t->trk->flags & TRK_NOLOOP) && t == writer)
            continue;
        send_invalidation(t->trk, k->key, k->len);
    }
    key_free(k);
}

/* Over the limit: forget one key, telling its readers (as Redis does). */
static void table_evict_one(void)
{
    for (size_t n = 0; n < nbuckets; n++) {
        size_t i = (evict_cursor + n) & (nbuckets - 1);
        if (buckets[i] != NULL) {
            evict_cursor = i + 1;
            stats.evictions++;
            key_fire(&buckets[i], NULL);
            return;
        }
    }
}

static void key_remember(uint64_t id, const char *key, size_t len)
{
    if (nkeys >= nbuckets)
        table_grow();
    if (nbuckets == 0)
        return;
    uint64_t h = key_hash(key, len);
    struct trk_key **pp = key_slot(key, len, h), *k = *pp;

    if (k == NULL) {
        if (nkeys >= TRACKING_MAX_KEYS)
            table_evict_one();
        pp = key_slot(key, len, h);
        k = calloc(1, sizeof(*k) + len);
        if (k == NULL)
            return;
        k->hash = h;
        k->len = len;
        memcpy(k->key, key, len);
        *pp = k;
        nkeys++;
    }
    for (uint32_t i = 0; i < k->nids; i++)
        if (k->ids[i] == id)
            return;
    if (k->nids == k->capids) {
        uint32_t cap = k->capids ? k->capids * 2 : 2;
        uint64_t *ids = realloc(k->ids, cap * sizeof(*ids));
        if (ids == NULL)
            return;
        k->ids = ids;
        k->capids = cap;
    }
    k->ids[k->nids++] = id;
}

/* key changed (writer: the client whose write it was, NULL for Redis's
 * reports): tell the default-mode clients that read it. */
static void invalidate(const char *key, size_t len, const struct client *writer)
{
    if (nkeys > 0) {
        struct trk_key **pp = key_slot(key, len, key_hash(key, len));
        if (*pp != NULL)
            key_fire(pp, writer);
    }
}

/* Does key start with prefix pf? */
static int prefix_match(const struct trk_prefix *pf, const struct reply_item *key)
{
    return pf->len <= key->slen && memcmp(pf->p, key->s, pf->len) == 0;
}

/* keys changed (one report of Redis): each BCAST client gets, per prefix of
 * its own (in order), one message with the keys under it, as Redis
 * batches them. */
static void invalidate_bcast(const struct reply_item *keys, long long n)
{
    struct tracking_client *next;

    for (struct tracking_client *tc = trk_all; tc; tc = next) {
        next = tc->next;
        if (!(tc->flags & TRK_BCAST))
            continue;
        uint64_t id = tc->c->id;        /* a client closed on the way (out of memory) frees tc */
        for (int i = 0; i < tc->nprefixes && client_by_id(id) != NULL; i++) {
            long long m = 0;
            for (long long k = 0; k < n; k++)
                m += prefix_match(&tc->prefixes[i], &keys[k]);
            if (m == 0)
                continue;
            struct client *to;
            struct buf *b = msg_begin(tc, &to);
            if (b == NULL)
                break;
            reply_array(b, m);
            for (long long k = 0; k < n; k++)
                if (prefix_match(&tc->prefixes[i], &keys[k]))
                    reply_bulk(b, keys[k].s, keys[k].slen);
            msg_end(to);
        }
    }
}

/* Everything may have changed: the null message to every tracking client. */
static void flush_all(void)
{
    table_clear();
    struct tracking_client *next;
    for (struct tracking_client *tc = trk_all; tc; tc = next) {
        next = tc->next;
        send_invalidation(tc, NULL, 0);
    }
    stats.flushes++;
}

/* ---- the Redis link ------------------------------------------------------ */

static void link_open(void);

/* Answer the waiting CLIENT TRACKING on replies: +OK, or the error (their
 * clients' tracking is turned off again). */
static void waiters_finish(const char *reply, size_t len, int failed)
{
    while (waiters) {
        struct trk_waiter *w = waiters;
        waiters = w->next;
        if (failed) {
            struct client *c = client_by_id(w->id);
            if (c != NULL)
                tracking_off(c);
        }
        w->sr->on_reply(w->sr, reply, len, failed);
        free(w);
    }
}

static void link_fail_waiters(const char *why)
{
    char msg[300];
    int n = snprintf(msg, sizeof(msg), "-ERR redsnano: no tracking connection to the primary (%s)\r\n", why);
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = (int)sizeof(msg) - 1;
    waiters_finish(msg, (size_t)n, 1);
}

static void link_closed(struct server *s)
{
    int was_current = s == link_conn;

    if (was_current) {
        link_conn = NULL;
        link_ready = 0;
        if (tracking_nclients > 0) {
            log_notice("Tracking: connection to the primary lost (%s); flushing clients' caches",
                       s->err[0] ? s->err : "closed");
            flush_all();
            link_lost = 1;
        }
        link_fail_waiters(s->err[0] ? s->err : "closed");
    }
    backend_server_free(s);
}

/* Closed on purpose (no tracking client left, primary changed): forgotten now. */
static void link_drop(const char *why)
{
    struct server *s = link_conn;
    if (s == NULL)
        return;
    link_conn = NULL;
    link_ready = 0;
    link_fail_waiters(why);
    server_close(s, why);
}

/* `>2 invalidate [keys] | _` from Redis. */
static void link_push(struct server *s, const char *p, size_t len)
{
    struct reply_item it;
    long long n;
    (void)s;

    if ((n = reply_item_parse(p, len, &it)) <= 0 || it.type != '>' || it.n != 2)
        return;
    p += n, len -= (size_t)n;
    if ((n = reply_item_parse(p, len, &it)) <= 0 || it.type != '$' || it.slen != 10 ||
        memcmp(it.s, "invalidate", 10) != 0)
        return;
    p += n, len -= (size_t)n;
    if ((n = reply_item_parse(p, len, &it)) <= 0)
        return;
    stats.reports++;
    if (it.type == '_' || it.n < 0) {
        flush_all();
        return;
    }
    if (it.type != '*')
        return;
    long long nk = it.n;
    struct reply_item stack_keys[TRACKING_STACK_KEYS], *keys = stack_keys;
    if (nk > TRACKING_STACK_KEYS && (keys = malloc((size_t)nk * sizeof(*keys))) == NULL) {
        flush_all();                   /* cannot say which: say everything */
        return;
    }
    p += n, len -= (size_t)n;
    for (long long i = 0; i < nk; i++) {
        if ((n = reply_item_parse(p, len, &keys[i])) <= 0 || keys[i].type != '$') {
            nk = i;
            break;
        }
        p += n, len -= (size_t)n;
    }
    for (long long i = 0; i < nk; i++)
        invalidate(keys[i].s, keys[i].slen, NULL);
    invalidate_bcast(keys, nk);
    if (keys != stack_keys)
        free(keys);
}

/* The link's CLIENT TRACKING ON BCAST answered. */
static void link_tracking_done(struct srvreq *r, const char *reply, size_t len, int failed)
{
    struct server *s = link_conn;

    free(r);
    if (failed || s == NULL)
        return;                        /* link_closed / link_drop answer the waiters */
    if (len < 3 || memcmp(reply, "+OK", 3) != 0) {
        log_warn("Tracking: the primary refused CLIENT TRACKING (%.*s)", (int)(len > 200 ? 200 : len - 2),
                 reply + 1);
        link_drop("CLIENT TRACKING refused by the primary");
        return;
    }
    link_ready = 1;
    stats.redis_links++;
    if (link_lost) {
        link_lost = 0;
        flush_all();                   /* changes while it was down went unseen */
    }
    waiters_finish("+OK\r\n", 5, 0);
}

static void link_open(void)
{
    if (link_conn != NULL || proxy_cluster_mode())
        return;
    struct backend *b = topology_write_backend(&proxy->topo, -1);
    struct server *s = b ? backend_dedicated_proto(b, 3) : NULL;
    struct srvreq *r = calloc(1, sizeof(*r));

    if (s == NULL || r == NULL) {
        free(r);
        if (s != NULL) {
            s->on_close = backend_server_free;
            server_close(s, "out of memory");
        }
        link_fail_waiters(b && b->err[0] ? b->err : "primary unavailable");
        return;
    }
    s->backend = NULL;                 /* not a pool connection: no client request may pick it */
    s->data = NULL;
    s->on_close = link_closed;
    s->on_push = link_push;
    link_conn = s;
    r->on_reply = link_tracking_done;
    static const char cmd[] = "*4\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\nON\r\n$5\r\nBCAST\r\n";
    server_send(s, r, cmd, sizeof(cmd) - 1);
}

void tracking_cron(void)
{
    if (tracking_nclients > 0 && link_conn == NULL)
        link_open();
}

void tracking_primary_changed(void)
{
    if (link_conn == NULL)
        return;
    link_drop("primary changed");
    if (tracking_nclients > 0) {
        flush_all();
        link_lost = 1;
        link_open();
    }
}

void tracking_stop(void)
{
    link_drop("shutting down");
    table_clear();
    free(buckets);
    buckets = NULL;
    nbuckets = 0;
}

/* ---- per client ----------------------------------------------------------- */

static int is_client_subcommand(const struct cmd *cmd)
{
    static const struct cmd *client;
    if (client == NULL)
        client = cmd_lookup("client", 6);
    return client != NULL && cmd >= client->subcommands && cmd < client->subcommands + client->nsubcommands;
}

/* Call the keys of m through fn. */
static void for_keys(const struct cmd *cmd, const struct reqmsg *m,
                     void (*fn)(struct client *c, const char *key, size_t len), struct client *c)
{
    int stack_keys[TRACKING_STACK_KEYS], *keys = stack_keys;
    int n = cmd_keys(cmd, m->argc, m->argv, m->argvlen, keys, NULL, TRACKING_STACK_KEYS);

    if (n > TRACKING_STACK_KEYS) {
        if ((keys = malloc((size_t)n * sizeof(*keys))) == NULL)
            return;
        n = cmd_keys(cmd, m->argc, m->argv, m->argvlen, keys, NULL, n);
    }
    for (int i = 0; i < n; i++)
        fn(c, m->argv[keys[i]], m->argvlen[keys[i]]);
    if (keys != stack_keys)
        free(keys);
}

static void remember_one(struct client *c, const char *key, size_t len)
{
    key_remember(c->id, key, len);
}

static void invalidate_one(struct client *c, const char *key, size_t len)
{
    invalidate(key, len, c);
}

void tracking_seen(struct client *c, const struct cmd *cmd, const struct reqmsg *m)
{
    if (cmd == NULL)
        return;
    if ((cmd->flags & CMD_WRITE) && nkeys > 0)
        for_keys(cmd, m, invalidate_one, c);
    struct tracking_client *tc = c->trk;
    if (tc == NULL)
        return;
    if ((cmd->flags & CMD_READONLY) && !(tc->flags & TRK_BCAST)) {
        int caching = (tc->flags & TRK_CACHING) != 0;
        if (!(((tc->flags & TRK_OPTIN) && !caching) || ((tc->flags & TRK_OPTOUT) && caching)))
            for_keys(cmd, m, remember_one, c);
    }
    if (!(c->flags & CLIENT_MULTI) && !is_client_subcommand(cmd))
        tc->flags &= ~TRK_CACHING;
}

static void prefixes_free(struct tracking_client *tc)
{
    for (int i = 0; i < tc->nprefixes; i++)
        free(tc->prefixes[i].p);
    free(tc->prefixes);
    tc->prefixes = NULL;
    tc->nprefixes = 0;
}

void tracking_off(struct client *c)
{
    struct tracking_client *tc = c->trk;
    if (tc == NULL)
        return;
    c->trk = NULL;
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        trk_all = tc->next;
    if (tc->next)
        tc->next->prev = tc->prev;
    prefixes_free(tc);
    free(tc);
    if (--tracking_nclients == 0) {
        link_drop("no client tracks any more");
        link_lost = 0;
        table_clear();
    }
}

void tracking_client_gone(struct client *c)
{
    tracking_off(c);
}

/* Do two prefixes overlap (one starts the other)? */
static int prefix_overlap(const char *a, size_t an, const char *b, size_t bn)
{
    return memcmp(a, b, an < bn ? an : bn) == 0;
}

static int prefix_cmp(const void *x, const void *y)
{
    const struct trk_prefix *a = x, *b = y;
    int r = memcmp(a->p, b->p, a->len < b->len ? a->len : b->len);
    return r ? r : (a->len > b->len) - (a->len < b->len);
}

static int add_prefix(struct tracking_client *tc, const char *p, size_t len)
{
    struct trk_prefix *np = realloc(tc->prefixes, (size_t)(tc->nprefixes + 1) * sizeof(*np));
    if (np == NULL)
        return -ENOMEM;
    tc->prefixes = np;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, p, len);
    copy[len] = '\0';
    np[tc->nprefixes].p = copy;
    np[tc->nprefixes].len = len;
    tc->nprefixes++;
    qsort(tc->prefixes, (size_t)tc->nprefixes, sizeof(*tc->prefixes), prefix_cmp);
    return 0;
}

static void reply_ok(struct client *c)
{
    local_status(c, "OK");
}

/* Error with printf formatting, the way Redis words it (prefixes shown as given). */
static void errorf(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void errorf(struct client *c, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    local_error(c, msg);
}

/* CLIENT TRACKING on|off [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP] */
static void cmd_tracking(struct client *c, const struct reqmsg *m)
{
    unsigned opts = 0;
    long long redir = 0;
    int prefix_at[256], nprefix = 0;

    for (int j = 3; j < m->argc; j++) {
        int more = m->argc - 1 - j;
        if (reqmsg_arg_is(m, j, "redirect") && more) {
            j++;
            if (redir != 0) {
                local_error(c, "ERR A client can only redirect to a single other client");
                return;
            }
            char num[32], *end;
            size_t n = m->argvlen[j] < sizeof(num) - 1 ? m->argvlen[j] : sizeof(num) - 1;
            memcpy(num, m->argv[j], n);
            num[n] = '\0';
            errno = 0;
            redir = strtoll(num, &end, 10);
            if (n == 0 || *end != '\0' || errno != 0 || m->argvlen[j] >= sizeof(num) - 1) {
                local_error(c, "ERR value is not an integer or out of range");
                return;
            }
            if (redir <= 0 || client_by_id((uint64_t)redir) == NULL) {
                local_error(c, "ERR The client ID you want redirect to does not exist");
                return;
            }
        } else if (reqmsg_arg_is(m, j, "bcast")) {
            opts |= TRK_BCAST;
        } else if (reqmsg_arg_is(m, j, "optin")) {
            opts |= TRK_OPTIN;
        } else if (reqmsg_arg_is(m, j, "optout")) {
            opts |= TRK_OPTOUT;
        } else if (reqmsg_arg_is(m, j, "noloop")) {
            opts |= TRK_NOLOOP;
        } else if (reqmsg_arg_is(m, j, "prefix") && more && nprefix < (int)(sizeof(prefix_at) / sizeof(prefix_at[0]))) {
            prefix_at[nprefix++] = ++j;
        } else {
            local_error(c, "ERR syntax error");
            return;
        }
    }
    if (reqmsg_arg_is(m, 2, "off")) {
        tracking_off(c);
        reply_ok(c);
        return;
    }
    if (!reqmsg_arg_is(m, 2, "on")) {
        local_error(c, "ERR syntax error");
        return;
    }
    if (proxy_cluster_mode()) {
        local_error(c, "ERR redsnano: CLIENT TRACKING is not supported in cluster mode");
        return;
    }
    struct tracking_client *tc = c->trk;
    if (!(opts & TRK_BCAST) && nprefix) {
        local_error(c, "ERR PREFIX option requires BCAST mode to be enabled");
        return;
    }
    if (tc && !!(tc->flags & TRK_BCAST) != !!(opts & TRK_BCAST)) {
        local_error(c, "ERR You can't switch BCAST mode on/off before disabling tracking for this client, "
                       "and then re-enabling it with a different mode.");
        return;
    }
    if ((opts & TRK_BCAST) && (opts & (TRK_OPTIN | TRK_OPTOUT))) {
        local_error(c, "ERR OPTIN and OPTOUT are not compatible with BCAST");
        return;
    }
    if ((opts & TRK_OPTIN) && (opts & TRK_OPTOUT)) {
        local_error(c, "ERR You can't specify both OPTIN mode and OPTOUT mode");
        return;
    }
    if (tc && (((opts & TRK_OPTIN) && (tc->flags & TRK_OPTOUT)) || ((opts & TRK_OPTOUT) && (tc->flags & TRK_OPTIN)))) {
        local_error(c, "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
                       "and then re-enabling it with a different mode.");
        return;
    }
    if (opts & TRK_BCAST) {
        for (int i = 0; i < nprefix; i++) {
            const char *pi = m->argv[prefix_at[i]];
            size_t li = m->argvlen[prefix_at[i]];
            for (int k = 0; tc && k < tc->nprefixes; k++) {
                if (prefix_overlap(tc->prefixes[k].p, tc->prefixes[k].len, pi, li)) {
                    errorf(c, "ERR Prefix '%.*s' overlaps with an existing prefix '%s'. "
                              "Prefixes for a single client must not overlap.",
                           (int)li, pi, tc->prefixes[k].p);
                    return;
                }
            }
            for (int j = i + 1; j < nprefix; j++) {
                const char *pj = m->argv[prefix_at[j]];
                size_t lj = m->argvlen[prefix_at[j]];
                if (prefix_overlap(pi, li, pj, lj)) {
                    errorf(c, "ERR Prefix '%.*s' overlaps with another provided prefix '%.*s'. "
                              "Prefixes for a single client must not overlap.",
                           (int)li, pi, (int)lj, pj);
                    return;
                }
            }
        }
    }
    /* enableTracking */
    if (tc == NULL) {
        if ((tc = calloc(1, sizeof(*tc))) == NULL) {
            local_error(c, "ERR redsnano: out of memory");
            return;
        }
        tc->c = c;
        tc->next = trk_all;
        if (trk_all)
            trk_all->prev = tc;
        trk_all = tc;
        c->trk = tc;
        tracking_nclients++;
    }
    tc->flags &= ~(TRK_BROKEN_REDIR | TRK_BCAST | TRK_OPTIN | TRK_OPTOUT | TRK_NOLOOP);
    tc->redirect = (uint64_t)redir;
    if (opts & TRK_BCAST) {
        tc->flags |= TRK_BCAST;
        if (nprefix == 0 && tc->nprefixes == 0)
            add_prefix(tc, "", 0);
        for (int i = 0; i < nprefix; i++)
            add_prefix(tc, m->argv[prefix_at[i]], m->argvlen[prefix_at[i]]);
    }
    tc->flags |= opts & (TRK_OPTIN | TRK_OPTOUT | TRK_NOLOOP);

    /* The +OK goes out once Redis reports changes to the proxy: from then on
     * no change the client must hear of goes unseen. */
    if (link_ready) {
        reply_ok(c);
        return;
    }
    link_open();
    if (link_conn == NULL) {
        tracking_off(c);
        local_error(c, "ERR redsnano: no tracking connection to the primary (unavailable)");
        return;
    }
    struct trk_waiter *w = calloc(1, sizeof(*w));
    struct srvreq *sr = w ? client_wait(c, link_conn) : NULL;
    if (sr == NULL) {
        free(w);
        return;                        /* out of memory: the client is closed */
    }
    w->sr = sr;
    w->id = c->id;
    w->next = waiters;
    waiters = w;
}

static void cmd_caching(struct client *c, const struct reqmsg *m)
{
    struct tracking_client *tc = c->trk;

    if (tc == NULL) {
        local_error(c, "ERR CLIENT CACHING can be called only when the client is in tracking mode with "
                       "OPTIN or OPTOUT mode enabled");
        return;
    }
    if (reqmsg_arg_is(m, 2, "yes")) {
        if (!(tc->flags & TRK_OPTIN)) {
            local_error(c, "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
            return;
        }
    } else if (reqmsg_arg_is(m, 2, "no")) {
        if (!(tc->flags & TRK_OPTOUT)) {
            local_error(c, "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
            return;
        }
    } else {
        local_error(c, "ERR syntax error");
        return;
    }
    tc->flags |= TRK_CACHING;
    reply_ok(c);
}

static void cmd_trackinginfo(struct client *c)
{
    struct tracking_client *tc = c->trk;
    unsigned f = tc ? tc->flags : 0;
    const char *flags[8];
    int n = 0;

    flags[n++] = tc ? "on" : "off";
    if (f & TRK_BCAST)
        flags[n++] = "bcast";
    if (f & TRK_OPTIN) {
        flags[n++] = "optin";
        if (f & TRK_CACHING)
            flags[n++] = "caching-yes";
    }
    if (f & TRK_OPTOUT) {
        flags[n++] = "optout";
        if (f & TRK_CACHING)
            flags[n++] = "caching-no";
    }
    if (f & TRK_NOLOOP)
        flags[n++] = "noloop";
    if (f & TRK_BROKEN_REDIR)
        flags[n++] = "broken_redirect";

    struct buf *b = client_reply_buf(c);
    if (b == NULL)
        return;
    resp3_map(b, c->proto, 3);
    reply_bulk_str(b, "flags");
    resp3_set(b, c->proto, n);
    for (int i = 0; i < n; i++)
        reply_bulk_str(b, flags[i]);
    reply_bulk_str(b, "redirect");
    reply_integer(b, tc ? (long long)tc->redirect : -1);
    reply_bulk_str(b, "prefixes");
    reply_array(b, tc ? tc->nprefixes : 0);
    for (int i = 0; tc && i < tc->nprefixes; i++)
        reply_bulk(b, tc->prefixes[i].p, tc->prefixes[i].len);
    proxy->stats.local_replies++;
    client_reply_done(c);
}

int tracking_command(struct client *c, const struct cmd *cmd, const struct reqmsg *m)
{
    switch (cmd->op) {
    case CMD_OP_CLIENT_TRACKING:
        cmd_tracking(c, m);
        return 1;
    case CMD_OP_CLIENT_CACHING:
        cmd_caching(c, m);
        return 1;
    case CMD_OP_CLIENT_TRACKINGINFO:
        cmd_trackinginfo(c);
        return 1;
    case CMD_OP_CLIENT_GETREDIR: {
        struct buf *b = client_reply_buf(c);
        if (b == NULL)
            return 1;
        reply_integer(b, c->trk ? (long long)c->trk->redirect : -1);
        proxy->stats.local_replies++;
        client_reply_done(c);
        return 1;
    }
    default:
        return 0;
    }
}

long long tracking_redirect(const struct client *c)
{
    return c->trk ? (long long)c->trk->redirect : -1;
}

int tracking_client_flags(const struct client *c, char *out)
{
    int n = 0;
    if (c->trk == NULL)
        return 0;
    out[n++] = 't';
    if (c->trk->flags & TRK_BCAST)
        out[n++] = 'B';
    if (c->trk->flags & TRK_BROKEN_REDIR)
        out[n++] = 'R';
    return n;
}

void tracking_report(struct buf *t)
{
    buf_printf(t, "# Tracking\r\ntracking_clients:%u\r\ntracking_keys:%zu\r\ntracking_redis_link:%s\r\n",
               tracking_nclients, nkeys, link_ready ? "up" : link_conn ? "connecting" : "down");
#define TRACKING_STAT_LINE(field, name, help) buf_printf(t, name ":%llu\r\n", (unsigned long long)stats.field);
    TRACKING_STATS(TRACKING_STAT_LINE)
#undef TRACKING_STAT_LINE
    buf_printf(t, "\r\n");
}
