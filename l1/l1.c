/*
 * l1/l1.c — the L1: fills, tracking, hash validation (see l1.h).
 *
 *   l1_read ─ entry verified, not expired ─────────────────> HIT (tracking mode)
 *           ├ entry present, strict or unverified ─> check ─> WAIT
 *           └ absent ──────────────────────────────> fill  ─> WAIT
 *
 *   fill (MULTI, read, PTTL, EXEC) / check (EVALSHA) reply ─>
 *       (cancelled? deliver only) : store, deliver
 *   subscriber message ─> drop keys, cancel their fills
 *   either connection lost ─> unverify all, reconnect, then revalidate in
 *                             batches of L1_REVAL_BATCH pipelined checks
 */
#include "l1/l1.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/backend.h"
#include "backends/topology.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/outq.h"
#include "l1/store.h"
#include "protocol/reply.h"

#define L1_REVAL_BATCH 256              /* hash checks in flight while revalidating */
#define L1_RECONNECT_MIN_MS 100         /* first reconnect delay */
#define L1_RECONNECT_MAX_MS 3200        /* longest reconnect delay */
#define L1_FILL_BUCKETS 1024            /* fills-in-flight hash size */
#define L1_PEND_BUCKETS 1024            /* write-pending keys hash size */
#define L1_CRON_MS 100                  /* background work period */

/* Reply encoding shared by both scripts: a Lua value back to RESP2 bytes. */
#define L1_LUA_ENC                                                               \
    "local function enc(v)\n"                                                    \
    "  local t = type(v)\n"                                                      \
    "  if t == 'string' then return '$' .. #v .. '\\r\\n' .. v .. '\\r\\n' end\n"   \
    "  if t == 'number' then return ':' .. string.format('%d', v) .. '\\r\\n' end\n" \
    "  if t == 'table' then\n"                                                   \
    "    if v.err then return '-' .. v.err .. '\\r\\n' end\n"                      \
    "    if v.ok then return '+' .. v.ok .. '\\r\\n' end\n"                        \
    "    local out = {'*' .. #v .. '\\r\\n'}\n"                                    \
    "    for i = 1, #v do out[i + 1] = enc(v[i]) end\n"                           \
    "    return table.concat(out)\n"                                             \
    "  end\n"                                                                    \
    "  return '$-1\\r\\n'\n"                                                       \
    "end\n"

/* KEYS[1] key, ARGV[1] SHA1 hex of the cached reply, ARGV[2] command, ARGV[3..] arguments. */
static const char check_script[] =
    L1_LUA_ENC
    "local r = enc(redis.pcall(ARGV[2], KEYS[1], unpack(ARGV, 3)))\n"
    "local ttl = redis.call('PTTL', KEYS[1])\n"
    "if redis.sha1hex(r) == ARGV[1] then return {1, ttl} end\n"
    "return {r, ttl}\n";

/* Commands the L1 can hold, by id (index). */
static const struct {
    const char *name;                   /* upper case, as in l1-commands */
    int min_argc, max_argc;             /* accepted argc (0 = no upper bound) */
} l1_cmds[] = {
    { NULL, 0, 0 },
    { "GET", 2, 2 },
    { "HGET", 3, 3 },
    { "HGETALL", 2, 2 },
    { "LRANGE", 4, 4 },
    { "SMEMBERS", 2, 2 },
    { "ZRANGE", 4, 0 },
};
#define L1_NCMDS (sizeof(l1_cmds) / sizeof(l1_cmds[0]))

/* A fill or hash check in flight, shared by every client that waits on it. */
struct fill {
    struct srvreq sr;                   /* the request on the fill connection (EXEC or EVALSHA) */
    struct srvreq pre[3];               /* MULTI, the read, PTTL: their +OK/+QUEUED are dropped */
    struct fill *hnext;                 /* fills hash chain */
    struct srvreq *waiters;             /* clients waiting (linked by next) */
    struct srvreq *waiters_tail;        /* last waiter */
    uint8_t cmd;                        /* l1_cmds id */
    uint8_t check;                      /* a hash check (entry existed), not a fill */
    uint8_t cancelled;                  /* key invalidated meanwhile: deliver, don't store */
    uint8_t hashed;                     /* in the fills hash */
    uint8_t reval;                      /* a background revalidation */
    uint8_t retried_eval;               /* resent as EVAL after NOSCRIPT */
    uint32_t h;                         /* hash of the key */
    size_t klen, alen;                  /* key and args lengths */
    char *data;                         /* key then args */
};

/* A key with writes in flight through the proxy. */
struct pend {
    struct pend *next;                  /* hash chain */
    uint32_t count;                     /* writes in flight */
    uint32_t klen;                      /* key length */
    char key[];                         /* key bytes */
};

/* What l1_write_begin holds until l1_write_end. */
struct wtoken {
    struct wtoken *next;                /* chained tokens (a transaction's writes) */
    int global;                         /* held the global flag */
    int nkeys;                          /* keys held */
    struct pend *keys[];                /* each held once */
};

static struct {
    int on;                             /* l1-maxmemory > 0 */
    unsigned cmdmask;                   /* ids enabled by l1-commands */
    struct l1store *store;              /* the entries */
    struct server *fill;                /* tracking-enabled fill connection */
    struct server *sub;                 /* invalidation subscriber */
    int ready;                          /* tracking established: entries may be served */
    int fill_up, sub_up;                /* each connection's setup is complete */
    long long sub_id;                   /* CLIENT ID of the subscriber */
    uv_timer_t timer;                   /* reconnect + background work */
    uint64_t reconnect_at;              /* when to reconnect (0 = connected or connecting) */
    uint64_t backoff;                   /* reconnect delay */
    int reval_inflight;                 /* revalidation checks outstanding */
    int reval_active;                   /* a revalidation pass is running */
    uint64_t drained;                   /* loop iteration whose pending invalidations were taken */
    char check_sha[41];                 /* SHA1 of the check script */
    struct fill *fills[L1_FILL_BUCKETS];/* fills in flight */
    struct pend *pend[L1_PEND_BUCKETS]; /* keys with writes in flight */
    size_t npend;                       /* entries in pend (0: reads skip the lookup) */
    uint64_t global_pending;            /* writes in flight that may touch any key */
    struct buf args;                    /* scratch: encoded args of a request */
    struct buf req;                     /* scratch: a request being built */
    struct l1_stats st;                 /* counters */
    int stopping;                       /* l1_stop called */
} L;

static struct topology *T;             /* where the primary is */
static const struct l1_settings *S;    /* settings in force */

static void l1_connect(void);
static void connect_fill(void);

/* ---- small helpers ---------------------------------------------------- */

static uint32_t hash_bytes(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 16777619u;
    }
    return h;
}

static uint64_t now_ms(void)
{
    return uv_now(T->loop);
}

static void sha1_hex(const uint8_t sha[20], char out[41])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        out[2 * i] = hex[sha[i] >> 4];
        out[2 * i + 1] = hex[sha[i] & 15];
    }
    out[40] = '\0';
}

static void script_sha(const char *script, char out[41])
{
    uint8_t sha[20];
    SHA1((const unsigned char *)script, strlen(script), sha);
    sha1_hex(sha, out);
}

/* Encode argv[2..] as (u32 length, bytes)*: the identity of the call
 * beyond its command and key. */
static void encode_args(const struct reqmsg *m)
{
    buf_reset(&L.args);
    for (int i = 2; i < m->argc; i++) {
        uint32_t n = (uint32_t)m->argvlen[i];
        buf_append(&L.args, &n, sizeof(n));
        buf_append(&L.args, m->argv[i], m->argvlen[i]);
    }
}

/* Append one bulk string to a request being built. */
static void req_arg(struct buf *b, const char *p, size_t n)
{
    buf_printf(b, "$%zu\r\n", n);
    buf_append(b, p, n);
    buf_append(b, "\r\n", 2);
}

/* ---- write-pending keys ---------------------------------------------- */

static struct pend *pend_find(const char *key, size_t klen, int create)
{
    uint32_t h = hash_bytes(key, klen) % L1_PEND_BUCKETS;
    for (struct pend *p = L.pend[h]; p; p = p->next)
        if (p->klen == klen && memcmp(p->key, key, klen) == 0)
            return p;
    if (!create)
        return NULL;
    struct pend *p = malloc(sizeof(*p) + klen);
    if (p == NULL)
        return NULL;
    p->count = 0;
    p->klen = (uint32_t)klen;
    memcpy(p->key, key, klen);
    p->next = L.pend[h];
    L.pend[h] = p;
    L.npend++;
    return p;
}

static void pend_release(struct pend *p)
{
    if (--p->count > 0)
        return;
    uint32_t h = hash_bytes(p->key, p->klen) % L1_PEND_BUCKETS;
    for (struct pend **pp = &L.pend[h]; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    L.npend--;
    free(p);
}

static int write_pending(const char *key, size_t klen)
{
    return L.global_pending > 0 || (L.npend > 0 && pend_find(key, klen, 0) != NULL);
}

/* ---- fills in flight -------------------------------------------------- */

static struct fill *fill_find(uint8_t cmd, const char *key, size_t klen, const char *args, size_t alen)
{
    uint32_t h = hash_bytes(key, klen);
    for (struct fill *f = L.fills[h % L1_FILL_BUCKETS]; f; f = f->hnext)
        if (f->h == h && f->cmd == cmd && f->klen == klen && f->alen == alen &&
            memcmp(f->data, key, klen) == 0 && memcmp(f->data + klen, args, alen) == 0)
            return f;
    return NULL;
}

static void fill_unhash(struct fill *f)
{
    if (!f->hashed)
        return;
    for (struct fill **pp = &L.fills[f->h % L1_FILL_BUCKETS]; *pp; pp = &(*pp)->hnext) {
        if (*pp == f) {
            *pp = f->hnext;
            break;
        }
    }
    f->hashed = 0;
}

/* The key changed: fills in flight for it must not store what they read. */
static void cancel_fills(const char *key, size_t klen)
{
    uint32_t h = hash_bytes(key, klen);
    struct fill **pp = &L.fills[h % L1_FILL_BUCKETS];
    while (*pp) {
        struct fill *f = *pp;
        if (f->h == h && f->klen == klen && memcmp(f->data, key, klen) == 0) {
            *pp = f->hnext;
            f->hashed = 0;
            f->cancelled = 1;
            L.st.fills_cancelled++;
            continue;
        }
        pp = &f->hnext;
    }
}

static void cancel_all_fills(void)
{
    for (int i = 0; i < L1_FILL_BUCKETS; i++) {
        while (L.fills[i]) {
            struct fill *f = L.fills[i];
            L.fills[i] = f->hnext;
            f->hashed = 0;
            f->cancelled = 1;
            L.st.fills_cancelled++;
        }
    }
}

static void fill_free(struct fill *f)
{
    fill_unhash(f);
    free(f->data);
    free(f);
}

static void fill_deliver(struct fill *f, const char *reply, size_t len, int failed)
{
    while (f->waiters) {
        struct srvreq *w = f->waiters;
        f->waiters = w->next;
        w->next = NULL;
        w->on_reply(w, reply, len, failed);
    }
    f->waiters_tail = NULL;
}

static void fill_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed);

/* Send the fill's EVALSHA (or EVAL after NOSCRIPT). */
/* The +OK / +QUEUED of a fill's MULTI, read and PTTL. */
static void fill_pre_reply(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    (void)sr;
    (void)reply;
    (void)len;
    (void)failed;                       /* a failure reaches the EXEC's srvreq too */
}

/* Append the arguments after the key (encoded by encode_args) as bulks. */
static void fill_append_args(struct buf *b, const struct fill *f)
{
    const char *args = f->data + f->klen;

    for (size_t o = 0; o < f->alen;) {
        uint32_t n;
        memcpy(&n, args + o, sizeof(n));
        o += sizeof(n);
        req_arg(b, args + o, n);
        o += n;
    }
}

/* Append the call itself (command, key, args) as one request. */
static void fill_append_call(struct buf *b, const struct fill *f, int nargs)
{
    buf_printf(b, "*%d\r\n", 2 + nargs);
    req_arg(b, l1_cmds[f->cmd].name, strlen(l1_cmds[f->cmd].name));
    req_arg(b, f->data, f->klen);
    fill_append_args(b, f);
}

/* A fill: MULTI, the read, PTTL, EXEC — atomic, one round trip, and the
 * reply bytes are Redis's own (SHA1 computed here). Cheap for Redis, unlike
 * a script; a hash check needs the script (the comparison runs there). */
static void fill_send_multi(struct fill *f, int nargs)
{
    struct buf *b = &L.req;
    static const char multi[] = "*1\r\n$5\r\nMULTI\r\n";
    static const char exec[] = "*1\r\n$4\r\nEXEC\r\n";

    for (int i = 0; i < 3; i++) {
        f->pre[i] = (struct srvreq){ 0 };
        f->pre[i].on_reply = fill_pre_reply;
    }
    server_send(L.fill, &f->pre[0], multi, sizeof(multi) - 1);
    buf_reset(b);
    fill_append_call(b, f, nargs);
    server_send(L.fill, &f->pre[1], b->data + b->pos, buf_unread(b));
    buf_reset(b);
    buf_printf(b, "*2\r\n");
    req_arg(b, "PTTL", 4);
    req_arg(b, f->data, f->klen);
    server_send(L.fill, &f->pre[2], b->data + b->pos, buf_unread(b));
    f->sr.on_reply = fill_on_reply;
    f->sr.deadline = 0;
    L.st.fills++;
    server_send(L.fill, &f->sr, exec, sizeof(exec) - 1);
}

static void fill_send(struct fill *f, const uint8_t *sha)
{
    struct buf *b = &L.req;
    const char *key = f->data, *args = f->data + f->klen;
    int nargs = 0;

    for (size_t o = 0; o < f->alen; nargs++) {
        uint32_t n;
        memcpy(&n, args + o, sizeof(n));
        o += sizeof(n) + n;
    }
    if (sha == NULL) {
        fill_send_multi(f, nargs);
        return;
    }
    buf_reset(b);
    buf_printf(b, "*%d\r\n", 6 + nargs);
    if (f->retried_eval) {
        req_arg(b, "EVAL", 4);
        req_arg(b, check_script, strlen(check_script));
    } else {
        req_arg(b, "EVALSHA", 7);
        req_arg(b, L.check_sha, 40);
    }
    req_arg(b, "1", 1);
    req_arg(b, key, f->klen);
    char hex[41];
    sha1_hex(sha, hex);
    req_arg(b, hex, 40);
    req_arg(b, l1_cmds[f->cmd].name, strlen(l1_cmds[f->cmd].name));
    fill_append_args(b, f);
    f->sr.on_reply = fill_on_reply;
    f->sr.deadline = 0;
    L.st.checks++;
    server_send(L.fill, &f->sr, b->data + b->pos, buf_unread(b));
}

static struct fill *fill_new(uint8_t cmd, const char *key, size_t klen, const char *args, size_t alen,
                             const uint8_t *sha)
{
    struct fill *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->data = malloc(klen + alen + 1);
    if (f->data == NULL) {
        free(f);
        return NULL;
    }
    memcpy(f->data, key, klen);
    memcpy(f->data + klen, args, alen);
    f->cmd = cmd;
    f->klen = klen;
    f->alen = alen;
    f->check = sha != NULL;
    f->h = hash_bytes(key, klen);
    f->hnext = L.fills[f->h % L1_FILL_BUCKETS];
    L.fills[f->h % L1_FILL_BUCKETS] = f;
    f->hashed = 1;
    fill_send(f, sha);
    return f;
}

/* Parse the scripts' reply: *2 then ($reply | :1) then :pttl.
 * Returns 1 value (reply/rlen set), 2 unchanged, 0 not that shape. */
static int parse_script_reply(const char *p, size_t len, const char **rp, size_t *rlen, long long *pttl)
{
    const char *end = p + len;
    if (len < 4 || memcmp(p, "*2\r\n", 4) != 0)
        return 0;
    p += 4;
    int kind;
    if (*p == ':') {
        if (end - p < 4 || memcmp(p, ":1\r\n", 4) != 0)
            return 0;
        p += 4;
        kind = 2;
    } else if (*p == '$') {
        char *e;
        long long n = strtoll(p + 1, &e, 10);
        if (n < 0 || e + 2 > end || e[0] != '\r')
            return 0;
        p = e + 2;
        if (end - p < n + 2)
            return 0;
        *rp = p;
        *rlen = (size_t)n;
        p += n + 2;
        kind = 1;
    } else {
        return 0;
    }
    if (p >= end || *p != ':')
        return 0;
    *pttl = strtoll(p + 1, NULL, 10);
    return kind;
}

/* Parse a fill's EXEC reply: *2 then the read's own reply then :pttl.
 * Returns 1 (reply/rlen set) or 0 (an error such as -EXECABORT, or another shape). */
static int parse_exec_reply(const char *p, size_t len, const char **rp, size_t *rlen, long long *pttl)
{
    struct replyframe rf = { 0 };

    if (len < 4 || memcmp(p, "*2\r\n", 4) != 0)
        return 0;
    long long n = replyframe_scan(&rf, p + 4, len - 4);
    replyframe_free(&rf);
    if (n <= 0 || (size_t)n + 4 >= len || p[4 + n] != ':')
        return 0;
    *rp = p + 4;
    *rlen = (size_t)n;
    *pttl = strtoll(p + 4 + n + 1, NULL, 10);
    return 1;
}

static uint64_t expiry_for(long long pttl)
{
    uint64_t ttl = S->max_ttl_ms;
    if (pttl > 0 && (uint64_t)pttl < ttl)
        ttl = (uint64_t)pttl;
    return now_ms() + ttl;
}

static void reval_next(void);

static void fill_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    struct fill *f = (struct fill *)((char *)sr - offsetof(struct fill, sr));
    const char *key = f->data, *args = f->data + f->klen;
    const char *val = NULL;
    size_t vlen = 0;
    long long pttl = -1;

    if (f->reval) {
        L.reval_inflight--;
    }
    if (failed) {
        /* The fill connection failed: the waiters get its error (or the
         * stale entry when the operator allows it). */
        struct l1entry *e = l1store_get(L.store, f->cmd, key, f->klen, args, f->alen);
        if (e && S->serve_stale && f->waiters) {
            size_t n;
            const char *p = l1entry_reply(e, &n);
            L.st.stale_served++;
            fill_deliver(f, p, n, 0);
        } else {
            fill_deliver(f, reply, len, 1);
        }
        fill_free(f);
        return;
    }
    if (len > 9 && memcmp(reply, "-NOSCRIPT", 9) == 0 && !f->retried_eval) {
        f->retried_eval = 1;
        struct l1entry *e = f->check ? l1store_get(L.store, f->cmd, key, f->klen, args, f->alen) : NULL;
        if (f->check && e == NULL)
            f->check = 0;
        if (f->reval)
            L.reval_inflight++;
        fill_send(f, e ? l1entry_sha1(e) : NULL);
        return;
    }
    int kind = f->check ? parse_script_reply(reply, len, &val, &vlen, &pttl)
                        : parse_exec_reply(reply, len, &val, &vlen, &pttl);
    if (kind == 0) {
        /* An error from Redis (OOM, BUSY...): pass it on, store nothing. */
        fill_deliver(f, reply, len, 0);
        fill_free(f);
        return;
    }
    struct l1entry *e = l1store_get(L.store, f->cmd, key, f->klen, args, f->alen);
    if (kind == 2) {
        /* Unchanged. */
        if (e == NULL) {
            /* Dropped meanwhile (evicted, invalidated): fetch the value. */
            if (f->waiters == NULL) {
                int reval = f->reval;
                fill_free(f);
                if (reval)
                    reval_next();
                return;
            }
            f->check = 0;
            if (f->reval)
                L.reval_inflight++;
            fill_send(f, NULL);
            return;
        }
        if (!f->cancelled)
            l1store_verify(L.store, e, now_ms(), expiry_for(pttl));
        if (f->reval)
            L.st.reval_unchanged++;
        if (f->waiters) {
            size_t n;
            const char *p = l1entry_reply(e, &n);
            for (struct srvreq *w = f->waiters; w; w = w->next)
                L.st.hits++;            /* answered with the L1's bytes */
            fill_deliver(f, p, n, 0);
        }
    } else {
        /* A value: store it (unless cancelled or an error) and deliver. */
        if (f->check && e) {
            L.st.inv_hash_mismatch++;
            if (f->reval)
                L.st.reval_changed++;
        }
        int missing = pttl == -2;
        if (f->reval && missing) {
            L.st.reval_missing++;
            if (e)
                l1store_drop(L.store, e);
        } else if (!f->cancelled && vlen > 0 && val[0] != '-') {
            uint8_t sha[20];
            SHA1((const unsigned char *)val, vlen, sha);
            l1store_put(L.store, f->cmd, key, f->klen, args, f->alen, val, vlen, sha, now_ms(),
                        expiry_for(pttl));
        } else if (e && !f->cancelled) {
            l1store_drop(L.store, e);
        }
        fill_deliver(f, val, vlen, 0);
    }
    int reval = f->reval;
    fill_free(f);
    if (reval)
        reval_next();
}

/* ---- revalidation ------------------------------------------------------ */

static void reval_one(struct l1entry *e, void *ctx)
{
    (void)ctx;
    size_t klen, alen;
    const char *key = l1entry_key(e, &klen);
    const char *args = l1entry_args(e, &alen);
    uint8_t cmd = l1entry_cmd(e);

    if (write_pending(key, klen) || fill_find(cmd, key, klen, args, alen)) {
        return;                       /* a write or a check is on it already */
    }
    struct fill *f = fill_new(cmd, key, klen, args, alen, l1entry_sha1(e));
    if (f == NULL)
        return;
    f->reval = 1;
    L.reval_inflight++;
}

/* Keep L1_REVAL_BATCH checks in flight until every entry is verified. */
static void reval_next(void)
{
    if (!L.ready || !L.reval_active || L.reval_inflight > L1_REVAL_BATCH / 2)
        return;
    size_t visited = l1store_walk_unverified(L.store, (size_t)(L1_REVAL_BATCH - L.reval_inflight),
                                             reval_one, NULL);
    if (visited == 0 && L.reval_inflight == 0) {
        L.reval_active = 0;
        log_notice("L1 revalidated: %llu unchanged, %llu changed, %llu missing so far",
                   (unsigned long long)L.st.reval_unchanged, (unsigned long long)L.st.reval_changed,
                   (unsigned long long)L.st.reval_missing);
    }
}

/* ---- connections ------------------------------------------------------- */

static void setup_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed);

/* Internal setup requests (CLIENT ID, CLIENT TRACKING, SCRIPT LOAD). */
struct setup_req {
    struct srvreq sr;                   /* on the fill or subscriber connection */
    int step;                           /* which step this answers */
};

enum { STEP_SUB_ID = 1, STEP_TRACKING, STEP_LOAD_CHECK };

static void setup_send(struct server *s, int step, const char *bytes, size_t len)
{
    struct setup_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        server_close(s, "out of memory");
        return;
    }
    r->step = step;
    r->sr.on_reply = setup_on_reply;
    server_send(s, &r->sr, bytes, len);
}

static void l1_check_ready(void)
{
    if (L.ready || !L.sub_up || !L.fill_up)
        return;
    L.ready = 1;
    L.backoff = L1_RECONNECT_MIN_MS;
    log_notice("L1 tracking on (invalidations to client %lld): serving from the L1", L.sub_id);
    if (l1store_count(L.store) > 0) {
        L.reval_active = 1;
        reval_next();
    }
}

/* (Re)point the fill connection's tracking at the current subscriber. */
static void send_tracking(void)
{
    struct buf *b = &L.req;
    char id[32];
    int n = snprintf(id, sizeof(id), "%lld", L.sub_id);

    buf_reset(b);
    buf_printf(b, "*5\r\n");
    req_arg(b, "CLIENT", 6);
    req_arg(b, "TRACKING", 8);
    req_arg(b, "on", 2);
    req_arg(b, "REDIRECT", 8);
    req_arg(b, id, (size_t)n);
    setup_send(L.fill, STEP_TRACKING, b->data, b->len);
}

static void send_script_load(int step, const char *script)
{
    struct buf *b = &L.req;
    buf_reset(b);
    buf_printf(b, "*3\r\n");
    req_arg(b, "SCRIPT", 6);
    req_arg(b, "LOAD", 4);
    req_arg(b, script, strlen(script));
    setup_send(L.fill, step, b->data, b->len);
}

static void send_script_loads(void)
{
    send_script_load(STEP_LOAD_CHECK, check_script);
}

/* Invalidation pushes: ["message", "__redis__:invalidate", [keys] | nil]
 * (Redis 7.0 sends the flush-everything nil as $-1). */
static void sub_push(struct server *s, const char *p, size_t len)
{
    (void)s;
    const char *end = p + len;
    static const char hdr[] = "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n";
    if (len < sizeof(hdr) - 1 || memcmp(p, hdr, sizeof(hdr) - 1) != 0)
        return;                         /* subscribe confirmations */
    p += sizeof(hdr) - 1;
    if (*p != '*' && *p != '$')
        return;
    long long n = strtoll(p + 1, NULL, 10);
    if (*p == '$' && n >= 0)
        return;
    if (n < 0) {
        /* Null: everything tracked is invalid (FLUSHALL, tracking reset). */
        size_t dropped = l1store_flush(L.store);
        L.st.inv_flush += dropped;
        cancel_all_fills();
        return;
    }
    p = memchr(p, '\n', (size_t)(end - p));
    if (p == NULL)
        return;
    p++;
    for (long long i = 0; i < n && p < end; i++) {
        if (*p != '$')
            return;
        char *e;
        long long kl = strtoll(p + 1, &e, 10);
        if (kl < 0 || e + 2 + kl + 2 > end)
            return;
        const char *key = e + 2;
        L.st.inv_tracking += l1store_drop_key(L.store, key, (size_t)kl);
        cancel_fills(key, (size_t)kl);
        p = key + kl + 2;
    }
}

static void setup_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    struct setup_req *r = (struct setup_req *)sr;
    int step = r->step;
    free(r);
    if (failed || L.stopping)
        return;                         /* the connection's close handler acts */
    if (reply[0] == '-') {
        log_warn("L1 setup step %d refused by the primary: %.*s", step, (int)(len > 2 ? len - 2 : len),
                 reply);
        if (step == STEP_SUB_ID && L.sub)
            server_close(L.sub, "setup refused");
        else if (L.fill)
            server_close(L.fill, "setup refused");
        return;
    }
    switch (step) {
    case STEP_SUB_ID:
        L.sub_id = strtoll(reply + 1, NULL, 10);
        L.sub->push = sub_push;
        server_send_raw(L.sub, "*2\r\n$9\r\nSUBSCRIBE\r\n$20\r\n__redis__:invalidate\r\n", 47);
        L.sub_up = 1;
        /* The fill connection may have survived: redirect it here. */
        if (L.fill && L.fill->state != SERVER_CLOSING)
            send_tracking();
        else if (L.fill == NULL)
            connect_fill();
        break;
    case STEP_TRACKING:
        if (L.fill_up)
            l1_check_ready();       /* a re-redirect after the subscriber came back */
        break;
    case STEP_LOAD_CHECK:
        L.fill_up = 1;
        l1_check_ready();
        break;
    }
}

/* Invalidations may have been lost: nothing is served until tracking is
 * back, then every entry is revalidated (not flushed). */
static void l1_unready(const char *why)
{
    if (L.ready) {
        L.st.tracking_resets++;
        log_warn("L1 invalidation channel lost (%s): entries unverified until revalidated", why);
    }
    L.ready = 0;
    L.reval_active = 0;
    l1store_unverify_all(L.store);
    /* Fills in flight read at an unknown point: deliver, never store. */
    cancel_all_fills();
    if (L.reconnect_at == 0) {
        L.reconnect_at = now_ms() + L.backoff;
        L.backoff = L.backoff * 2 > L1_RECONNECT_MAX_MS ? L1_RECONNECT_MAX_MS : L.backoff * 2;
    }
}

static void conn_closed(struct server *s)
{
    const char *why = s->err[0] ? s->err : "closed";
    if (s == L.fill) {
        L.fill = NULL;
        L.fill_up = 0;
        if (!L.stopping)
            l1_unready(why);
    }
    if (s == L.sub) {
        L.sub = NULL;
        L.sub_up = 0;
        if (!L.stopping)
            l1_unready(why);
    }
    backend_server_free(s);
}

static void connect_sub(void)
{
    L.sub = backend_dedicated(&T->primary);
    if (L.sub == NULL)
        return;
    L.sub->on_close = conn_closed;
    setup_send(L.sub, STEP_SUB_ID, "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n", 24);
}

static void connect_fill(void)
{
    L.fill = backend_dedicated(&T->primary);
    if (L.fill == NULL)
        return;
    L.fill->on_close = conn_closed;
    send_tracking();
    send_script_loads();
}

/* Bring up whatever is missing (from the cron, after the backoff). */
static void l1_connect(void)
{
    L.reconnect_at = 0;
    if (L.sub == NULL)
        connect_sub();
    if (L.fill == NULL && L.sub_up)
        connect_fill();
    if (L.sub == NULL || (L.fill == NULL && L.sub_up)) {
        L.reconnect_at = now_ms() + L.backoff;
        L.backoff = L.backoff * 2 > L1_RECONNECT_MAX_MS ? L1_RECONNECT_MAX_MS : L.backoff * 2;
    }
}

static void on_primary_change(struct topology *t, void *ud)
{
    (void)t;
    (void)ud;
    l1_unready("primary changed");
    if (L.fill)
        server_close(L.fill, "closed: primary changed");
    if (L.sub)
        server_close(L.sub, "closed: primary changed");
    L.backoff = L1_RECONNECT_MIN_MS;
    L.reconnect_at = now_ms();
}

static void revalidate_old(struct l1entry *e, void *ctx)
{
    reval_one(e, ctx);
}

static void l1_cron(uv_timer_t *t)
{
    (void)t;
    if (L.reconnect_at && now_ms() >= L.reconnect_at)
        l1_connect();
    /* The subscriber is back but the fill connection is not: open it now. */
    if (L.sub_up && L.fill == NULL && L.reconnect_at == 0)
        l1_connect();
    if (L.ready && S->revalidate_after_ms > 0 && L.reval_inflight < L1_REVAL_BATCH) {
        uint64_t before = now_ms() - S->revalidate_after_ms;
        l1store_walk_older(L.store, before, (size_t)(L1_REVAL_BATCH - L.reval_inflight), revalidate_old,
                           NULL);
    }
}

/* ---- the API ------------------------------------------------------------ */

void l1_report(struct buf *t)
{
    const struct l1_stats *s = &L.st;
    buf_printf(t, "# L1\r\nl1_enabled:%d\r\nl1_mode:%s\r\nl1_ready:%d\r\nl1_entries:%zu\r\nl1_bytes:%zu\r\n"
               "l1_payload_bytes:%zu\r\nl1_maxmemory:%lld\r\nl1_inv_eviction:%llu\r\n",
               L.on, S && S->mode == L1_STRICT ? "strict" : "tracking", L.ready,
               L.store ? l1store_count(L.store) : 0, L.store ? l1store_bytes(L.store) : 0,
               L.store ? l1store_payload(L.store) : 0, S ? S->maxmemory : 0,
               (unsigned long long)(L.store ? l1store_evictions(L.store) : 0));
#define L1_STAT_LINE(name, help) buf_printf(t, "l1_" #name ":%llu\r\n", (unsigned long long)s->name);
    L1_STATS(L1_STAT_LINE)
#undef L1_STAT_LINE
    buf_printf(t, "\r\n");
}

/* l1-commands (space separated upper-case names) as a mask of l1_cmds. */
static unsigned l1_command_mask(const char *p)
{
    unsigned mask = 0;

    if (p == NULL)
        p = "GET";
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        for (size_t i = 1; i < L1_NCMDS; i++)
            if (strlen(l1_cmds[i].name) == n && strncasecmp(p, l1_cmds[i].name, n) == 0)
                mask |= 1u << i;
        p += n;
    }
    return mask;
}

void l1_settings_changed(void)
{
    if (!L.on || S->maxmemory <= 0)
        return;
    unsigned mask = l1_command_mask(S->commands);
    if (mask != L.cmdmask) {
        /* Entries of commands no longer cached would sit unused: drop all. */
        L.st.inv_flush += l1store_flush(L.store);
        L.cmdmask = mask;
    }
    l1store_set_max(L.store, (size_t)S->maxmemory);
    log_notice("L1: %lld bytes, %s mode, max ttl %llu ms", S->maxmemory,
               S->mode == L1_STRICT ? "strict" : "tracking", (unsigned long long)S->max_ttl_ms);
}

int l1_start(struct topology *t, const struct l1_settings *set)
{
    T = t;
    S = set;
    if (set->maxmemory <= 0)
        return 0;
    L.store = l1store_new((size_t)set->maxmemory);
    if (L.store == NULL)
        return -ENOMEM;
    L.cmdmask = l1_command_mask(set->commands);
    script_sha(check_script, L.check_sha);
    L.on = 1;
    L.backoff = L1_RECONNECT_MIN_MS;
    L.reconnect_at = 1;                 /* connect on the first cron tick */
    if (topology_listen(t, on_primary_change, NULL) < 0)
        return -ENOSPC;
    uv_timer_init(t->loop, &L.timer);
    uv_timer_start(&L.timer, l1_cron, 0, L1_CRON_MS);
    log_notice("L1 on: %lld bytes, %s mode, max ttl %llu ms", set->maxmemory,
               set->mode == L1_STRICT ? "strict" : "tracking", (unsigned long long)set->max_ttl_ms);
    return 0;
}

void l1_stop(void)
{
    if (!L.on)
        return;
    L.stopping = 1;
    L.ready = 0;
    uv_timer_stop(&L.timer);
    uv_close((uv_handle_t *)&L.timer, NULL);
    if (L.fill)
        server_close(L.fill, "shutting down");
    if (L.sub)
        server_close(L.sub, "shutting down");
}

int l1_on(void)
{
    return L.on;
}

uint8_t l1_command_id(const struct reqmsg *m)
{
    size_t n = m->argvlen[0];
    for (size_t i = 1; i < L1_NCMDS; i++) {
        if (!(L.cmdmask & (1u << i)) || strlen(l1_cmds[i].name) != n ||
            strncasecmp(m->argv[0], l1_cmds[i].name, n) != 0)
            continue;
        if (m->argc < l1_cmds[i].min_argc || (l1_cmds[i].max_argc && m->argc > l1_cmds[i].max_argc))
            return 0;
        return (uint8_t)i;
    }
    return 0;
}

struct server *l1_server(void)
{
    return L.fill;
}

static int origin_unreachable(void)
{
    return backend_connected(&T->primary) == 0 && T->primary.err[0] != '\0';
}

int l1_read(uint8_t id, const struct reqmsg *m, int may_wait, const char **reply, size_t *len,
            void **pending)
{
    const char *key = m->argv[1];
    size_t klen = m->argvlen[1];

    /* Take the invalidations already on the subscriber's socket before
     * answering from the L1 (once per loop iteration): a client that saw
     * a write elsewhere complete and then reads must not get the old
     * value just because its socket was served first. */
    if (L.ready && L.drained != outq_iteration()) {
        L.drained = outq_iteration();
        if (server_read_now(L.sub) < 0)
            l1_unready("invalidation channel closed");
    }
    if (L.ready && (L.fill == NULL || L.fill->state != SERVER_CONNECTED))
        l1_unready("fill connection closed");

    encode_args(m);
    const char *args = L.args.data ? L.args.data : "";
    size_t alen = L.args.len;

    if (write_pending(key, klen)) {
        L.st.bypass++;
        return L1_BYPASS;
    }
    struct l1entry *e = l1store_get(L.store, id, key, klen, args, alen);
    if (e && now_ms() >= l1entry_expires(e)) {
        l1store_drop(L.store, e);
        L.st.inv_expiry++;
        e = NULL;
    }
    if (!L.ready) {
        if (e && S->serve_stale && origin_unreachable()) {
            L.st.stale_served++;
            *reply = l1entry_reply(e, len);
            return L1_HIT;
        }
        L.st.bypass++;
        return L1_BYPASS;
    }
    if (e && l1store_verified(L.store, e) && S->mode == L1_TRACKING) {
        L.st.hits++;
        *reply = l1entry_reply(e, len);
        return L1_HIT;
    }
    if (!may_wait || L.fill == NULL) {
        L.st.bypass++;
        return L1_BYPASS;
    }
    /* Join a fill or check in flight for the same call, or start one. */
    struct fill *f = fill_find(id, key, klen, args, alen);
    if (f != NULL) {
        L.st.coalesced++;
    } else {
        if (e == NULL)
            L.st.misses++;
        f = fill_new(id, key, klen, args, alen, e ? l1entry_sha1(e) : NULL);
        if (f == NULL) {
            L.st.bypass++;
            return L1_BYPASS;
        }
    }
    *pending = f;
    return L1_WAIT;
}

void l1_wait(void *pending, struct srvreq *sr)
{
    struct fill *f = pending;
    sr->next = NULL;
    if (f->waiters_tail)
        f->waiters_tail->next = sr;
    else
        f->waiters = sr;
    f->waiters_tail = sr;
}

/* Drop one key everywhere and hold it while the write is in flight. */
static struct pend *invalidate_key(const char *key, size_t klen)
{
    L.st.inv_proxy_write += l1store_drop_key(L.store, key, klen);
    cancel_fills(key, klen);
    struct pend *p = pend_find(key, klen, 1);
    if (p)
        p->count++;
    return p;
}

void *l1_write_begin(const struct cmd *cmd, const struct reqmsg *m)
{
    if (!L.on)
        return NULL;
    int keys[64];
    int n = -1;
    int flush = cmd == NULL || (cmd->flags & CMD_PROXY_FLUSH);

    if (cmd != NULL) {
        n = cmd_keys(cmd, m->argc, m->argv, m->argvlen, keys, NULL, 64);
        /* Scripts that declare keys touch those (EVAL s 2 a b); without
         * declared keys they may touch anything. */
        if (flush && n > 0 && (strncasecmp(cmd->name, "eval", 4) == 0 || strncasecmp(cmd->name, "fcall", 5) == 0))
            flush = 0;
        if (n < 0 || n > 64)
            flush = 1;
    }
    if (flush) {
        L.st.inv_flush += l1store_flush(L.store);
        cancel_all_fills();
        L.global_pending++;
        struct wtoken *t = calloc(1, sizeof(*t));
        if (t)
            t->global = 1;
        return t;
    }
    if (n == 0)
        return NULL;
    struct wtoken *t = calloc(1, sizeof(*t) + (size_t)n * sizeof(struct pend *));
    if (t == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        int k = keys[i];
        int dup = 0;
        for (int j = 0; j < i; j++)
            if (m->argvlen[keys[j]] == m->argvlen[k] && memcmp(m->argv[keys[j]], m->argv[k], m->argvlen[k]) == 0)
                dup = 1;
        if (dup)
            continue;
        struct pend *p = invalidate_key(m->argv[k], m->argvlen[k]);
        if (p)
            t->keys[t->nkeys++] = p;
    }
    return t;
}

void l1_write_end(void *token)
{
    struct wtoken *t = token;
    while (t != NULL) {
        struct wtoken *next = t->next;
        if (t->global && L.global_pending > 0)
            L.global_pending--;
        for (int i = 0; i < t->nkeys; i++)
            pend_release(t->keys[i]);
        free(t);
        t = next;
    }
}

void *l1_token_join(void *a, void *b)
{
    struct wtoken *ta = a, *tb = b;
    if (ta == NULL)
        return tb;
    if (tb == NULL)
        return ta;
    struct wtoken *t = ta;
    while (t->next)
        t = t->next;
    t->next = tb;
    return ta;
}

const struct l1_stats *l1_stats(void)
{
    return &L.st;
}
