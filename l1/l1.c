/*
 * l1/l1.c — the L1's API: read, wait, report, start/stop, INVALIDATE (see
 * l1.h; the parts live in fill.c, check.c, track.c, holds.c, sketch.c,
 * store.c, as internal.h maps).
 *
 *   l1_read ─ entry verified, not expired ──────────────────> HIT (tracking mode)
 *           │                                 (l1-audit-rate: + background check)
 *           ├ entry present, strict or unverified ─> check ─> WAIT
 *           ├ absent, admitted (sketch) ──────────> fill  ─> WAIT
 *           └ absent, not admitted ─────────────────────────> BYPASS (plain read)
 */
#include "l1/l1.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "backends/backend.h"
#include "backends/topology.h"
#include "base/glob.h"
#include "base/log.h"
#include "l1/internal.h"
#include "l1/snapshot.h"

#define L1_CRON_MS 100                  /* background work period */
#define L1_SKETCH_BYTES_PER_SLOT 256    /* l1-maxmemory per cached entry the sketch is sized for */
#define L1_SKETCH_MIN 1024              /* smallest sketch */
#define L1_SKETCH_MAX ((size_t)1 << 24) /* largest sketch (~200 MB of entries) */
#define L1_ADMIT_MIN 2                  /* a call must have been seen this often to be filled */
#define L1_FULL_MARGIN 256              /* "full" = within 1/256 of the budget: compare with the victim */
#define L1_ADMIT_WINDOW 65536           /* reads in the admission's hit-ratio window (then halved) */
#define L1_ROOM_ADMIT_PCT 50            /* hit ratio (%) above which a first sighting is filled while there is room */

const struct l1_cmd l1_cmds[] = {
    { NULL, 0, 0 },
    { "GET", 2, 2 },
    { "HGET", 3, 3 },
    { "HGETALL", 2, 2 },
    { "LRANGE", 4, 4 },
    { "SMEMBERS", 2, 2 },
    { "ZRANGE", 4, 0 },
};
const size_t l1_ncmds = sizeof(l1_cmds) / sizeof(l1_cmds[0]);

struct l1_state L;
struct topology *l1_topo;
const struct l1_settings *l1_set;

/* ---- helpers shared by the L1's files ---------------------------------- */

uint32_t l1_hash_bytes(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 16777619u;
    }
    return h;
}

uint64_t l1_now(void)
{
    return uv_now(l1_topo->loop);
}

/* Append "<type><n>\r\n" (a RESP array or bulk header), without a printf. */
void l1_req_len(struct buf *b, char type, size_t n)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);

    *--p = '\n';
    *--p = '\r';
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    *--p = type;
    buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* Append one bulk string to a request being built. */
void l1_req_arg(struct buf *b, const char *p, size_t n)
{
    l1_req_len(b, '$', n);
    buf_append(b, p, n);
    buf_append(b, "\r\n", 2);
}

/* xorshift64*: jitter and audit sampling (not security). */
static uint64_t l1_rand(void)
{
    static uint64_t x = 0x9e3779b97f4a7c15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545f4914f6cdd1dULL;
}

/* When an entry filled now with this PTTL expires: the key's own TTL or
 * l1-max-ttl, whichever is sooner, shortened by up to l1-ttl-jitter
 * percent so that entries filled together do not expire together. */
uint64_t l1_expiry_for(long long pttl)
{
    uint64_t ttl = l1_set->max_ttl_ms;
    if (pttl > 0 && (uint64_t)pttl < ttl)
        ttl = (uint64_t)pttl;
    if (l1_set->ttl_jitter > 0 && ttl > 1) {
        uint64_t span = ttl * (uint64_t)l1_set->ttl_jitter / 100;
        if (span > 0)
            ttl -= l1_rand() % (span + 1);
    }
    return l1_now() + ttl;
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

/* ---- admission ------------------------------------------------------------ */

static uint64_t entry_hash(const struct l1entry *e)
{
    size_t klen, alen;
    const char *k = l1entry_key(e, &klen), *a = l1entry_args(e, &alen);
    return l1sketch_hash(l1entry_cmd(e), k, klen, a, alen);
}

/* One cacheable read for the admission's hit-ratio window (hit: answered
 * from the L1). Both counts are halved every L1_ADMIT_WINDOW reads. */
static void admit_note(int hit)
{
    L.win_hits += (uint32_t)hit;
    if (++L.win_reads >= L1_ADMIT_WINDOW) {
        L.win_reads /= 2;
        L.win_hits /= 2;
    }
}

/* Does the L1 pay lately: at least L1_ROOM_ADMIT_PCT percent of the recent
 * cacheable reads were hits? */
static int admit_pays(void)
{
    return (uint64_t)L.win_hits * 100 >= (uint64_t)L.win_reads * L1_ROOM_ADMIT_PCT && L.win_reads > 0;
}

/* Is a missed call with sketch hash h worth a fill?
 * - While the store has room: when seen at least L1_ADMIT_MIN times
 *   lately, or, once the L1 pays (admit_pays), at its first sighting
 *   (Caffeine's "admit while there is room", gated: on a load that
 *   misses, a fill costs Redis a PTTL more than a plain read, the proxy
 *   about 1 µs more, and would never be hit).
 * - When it is (nearly) full: seen L1_ADMIT_MIN times and more often
 *   than the least recently used entry a fill would evict (as often, when
 *   both counts are saturated). */
int l1_admit(uint64_t h)
{
    unsigned f = l1sketch_estimate(L.sketch, h);
    size_t max = l1store_maxmemory(L.store);
    if (l1store_bytes(L.store) + max / L1_FULL_MARGIN < max)
        return f >= L1_ADMIT_MIN || admit_pays();
    if (f < L1_ADMIT_MIN)
        return 0;
    struct l1entry *victim = l1store_oldest(L.store);
    if (victim == NULL)
        return 1;
    /* A tie at saturation (both among the hottest: the sketch cannot tell
     * them apart) goes to recency, as LRU would decide: a hot key dropped
     * by a write comes back at its next read instead of being locked out. */
    unsigned fv = l1sketch_estimate(L.sketch, entry_hash(victim));
    return f > fv || (f == fv && f > L1SKETCH_MAX);
}

/* Count a cacheable read in the sketch (e: its entry, if held). An entry's
 * mark holds the sketch period it was last counted in (the period's low 3
 * bits, in the mark's top 3) and how often it was counted in it (the low 5
 * bits): past L1SKETCH_MAX + 1 its counters cannot rise (only halve at the
 * next aging), so a hot entry's later hits skip the sketch's cache line
 * (and its hash). A period seen again 8 agings later can only undercount
 * an entry for that one period. Returns the call's sketch hash, 0 when it
 * was not needed. */
static uint64_t admit_count(struct l1entry *e, uint8_t id, const char *key, size_t klen, const char *args,
                            size_t alen)
{
    admit_note(0);
    if (e != NULL) {
        uint8_t *mark = l1entry_mark(e);
        unsigned period = l1sketch_period(L.sketch) & 7;
        if ((unsigned)(*mark >> 5) != period)
            *mark = (uint8_t)(period << 5);
        if ((*mark & 31) > L1SKETCH_MAX) {
            l1sketch_skip(L.sketch);
            return 0;
        }
        (*mark)++;
    }
    uint64_t h = l1sketch_hash(id, key, klen, args, alen);
    l1sketch_add(L.sketch, h);
    return h;
}

void l1_hit_audit(struct l1entry *e)
{
    if (l1_set->audit_rate > 0 && (double)(l1_rand() >> 11) * (1.0 / 9007199254740992.0) < l1_set->audit_rate)
        check_audit(e);
}

/* ---- the API ------------------------------------------------------------ */

void l1_report(struct buf *t)
{
    const struct l1_stats *s = &L.st;
    buf_printf(t, "# L1\r\nl1_enabled:%d\r\nl1_mode:%s\r\nl1_ready:%d\r\nl1_entries:%zu\r\nl1_bytes:%zu\r\n"
               "l1_payload_bytes:%zu\r\nl1_maxmemory:%lld\r\nl1_inv_eviction:%llu\r\n",
               L.on, l1_set && l1_set->mode == L1_STRICT ? "strict" : "tracking", L.ready,
               L.store ? l1store_count(L.store) : 0, L.store ? l1store_bytes(L.store) : 0,
               L.store ? l1store_payload(L.store) : 0, l1_set ? l1_set->maxmemory : 0,
               (unsigned long long)(L.store ? l1store_evictions(L.store) : 0));
    buf_printf(t, "l1_fill_connections:%d\r\nl1_sketch_bytes:%zu\r\nl1_audit_max_age_ms:%llu\r\n"
               "l1_audit_last_age_ms:%llu\r\n",
               L.nfill, L.sketch ? l1sketch_bytes(L.sketch) : 0, (unsigned long long)L.audit_max_age,
               (unsigned long long)L.audit_last_age);
    origin_report(t);
#define L1_STAT_LINE(name, help) buf_printf(t, "l1_" #name ":%llu\r\n", (unsigned long long)s->name);
    L1_STATS(L1_STAT_LINE)
#undef L1_STAT_LINE
    buf_printf(t, "\r\n");
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int snapshot_on(void)
{
    return l1_set->snapshot_file != NULL && l1_set->snapshot_file[0] != '\0';
}

/* Write l1-snapshot-file now (synchronously). */
static void snapshot_save(void)
{
    uint64_t t0 = l1_now();
    long long n = l1snap_save(l1_set->snapshot_file, L.store, l1_now(), wall_ms());
    if (n < 0) {
        L.st.snapshot_errors++;
        log_warn("L1 snapshot %s not written: %s", l1_set->snapshot_file, strerror((int)-n));
        return;
    }
    L.st.snapshot_saves++;
    uv_update_time(l1_topo->loop);
    log_verbose("L1 snapshot %s: %lld entries written in %llu ms", l1_set->snapshot_file, n,
                (unsigned long long)(l1_now() - t0));
}

/* Load l1-snapshot-file at start: its entries wait unverified for their
 * hash checks. A bad file is logged and ignored. */
static void snapshot_load(void)
{
    struct l1snap_loaded got;
    const char *why;
    int rc = l1snap_load(l1_set->snapshot_file, L.store, L.cmdmask, l1_now(), wall_ms(), &got, &why);
    if (rc == -ENOENT) {
        log_notice("L1 snapshot %s: none yet, starting cold", l1_set->snapshot_file);
        return;
    }
    if (rc != 0) {
        L.st.snapshot_errors++;
        l1store_flush(L.store);
        log_warn("L1 snapshot %s ignored (%s): starting cold", l1_set->snapshot_file, why);
        return;
    }
    l1store_unverify_all(L.store);
    L.st.snapshot_loaded += (uint64_t)got.loaded;
    L.st.snapshot_expired += (uint64_t)got.expired;
    log_notice("L1 snapshot %s: %lld entries loaded (%lld expired meanwhile, %lld of commands not cached), "
               "each served after its hash check",
               l1_set->snapshot_file, got.loaded, got.expired, got.skipped);
}

static void l1_cron(uv_timer_t *t)
{
    (void)t;
    origin_sync_pending();
    origin_retire_idle();
    for (int i = 0; i < L.norigins; i++)
        track_cron(L.origins[i]);
    if (L.snapshot_at && l1_now() >= L.snapshot_at && snapshot_on()) {
        snapshot_save();
        L.snapshot_at = l1_now() + (uint64_t)l1_set->snapshot_interval_s * 1000;
    }
    if (L.ready && l1_set->revalidate_after_ms > 0 && L.reval_inflight < L1_REVAL_BATCH) {
        uint64_t before = l1_now() - l1_set->revalidate_after_ms;
        l1store_walk_older(L.store, before, (size_t)(L1_REVAL_BATCH - L.reval_inflight), check_reval_one,
                           NULL);
    }
}

static void script_sha(const char *script, char out[41])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t sha[20];
    SHA1((const unsigned char *)script, strlen(script), sha);
    for (int i = 0; i < 20; i++) {
        out[2 * i] = hex[sha[i] >> 4];
        out[2 * i + 1] = hex[sha[i] & 15];
    }
    out[40] = '\0';
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
        for (size_t i = 1; i < l1_ncmds; i++)
            if (strlen(l1_cmds[i].name) == n && strncasecmp(p, l1_cmds[i].name, n) == 0)
                mask |= 1u << i;
        p += n;
    }
    return mask;
}

void l1_settings_changed(void)
{
    if (!L.on || l1_set->maxmemory <= 0)
        return;
    unsigned mask = l1_command_mask(l1_set->commands);
    if (mask != L.cmdmask) {
        /* Entries of commands no longer cached would sit unused: drop all. */
        L.st.inv_flush += l1store_flush(L.store);
        L.cmdmask = mask;
    }
    l1store_set_max(L.store, (size_t)l1_set->maxmemory);
    log_notice("L1: %lld bytes, %s mode, max ttl %llu ms, admission %s", l1_set->maxmemory,
               l1_set->mode == L1_STRICT ? "strict" : "tracking", (unsigned long long)l1_set->max_ttl_ms,
               l1_set->admission ? "on" : "off");
}

int l1_start(struct topology *t, const struct l1_settings *set)
{
    l1_topo = t;
    l1_set = set;
    if (set->maxmemory <= 0)
        return 0;
    L.store = l1store_new((size_t)set->maxmemory);
    size_t slots = (size_t)set->maxmemory / L1_SKETCH_BYTES_PER_SLOT;
    slots = slots < L1_SKETCH_MIN ? L1_SKETCH_MIN : slots > L1_SKETCH_MAX ? L1_SKETCH_MAX : slots;
    L.sketch = l1sketch_new(slots);
    if (L.store == NULL || L.sketch == NULL)
        return -ENOMEM;
    L.cmdmask = l1_command_mask(set->commands);
    script_sha(check_script, L.check_sha);
    L.nfill = set->fill_connections < 1 ? 1
              : set->fill_connections > L1_MAX_FILL_CONNS ? L1_MAX_FILL_CONNS : set->fill_connections;
    if (origin_start() < 0)
        return -ENOMEM;
    L.on = 1;
    if (snapshot_on()) {
        snapshot_load();
        if (set->snapshot_interval_s > 0)
            L.snapshot_at = l1_now() + (uint64_t)set->snapshot_interval_s * 1000;
    }
    uv_timer_init(t->loop, &L.timer);
    uv_timer_start(&L.timer, l1_cron, 0, L1_CRON_MS);
    log_notice("L1 on: %lld bytes, %s mode, max ttl %llu ms, %d fill connections, admission %s",
               set->maxmemory, set->mode == L1_STRICT ? "strict" : "tracking",
               (unsigned long long)set->max_ttl_ms, L.nfill, set->admission ? "on" : "off");
    return 0;
}

void l1_stop(void)
{
    if (!L.on)
        return;
    if (snapshot_on())
        snapshot_save();
    L.stopping = 1;
    L.ready = 0;
    uv_timer_stop(&L.timer);
    uv_close((uv_handle_t *)&L.timer, NULL);
    for (int i = 0; i < L.norigins; i++)
        track_stop(L.origins[i]);
}

int l1_on(void)
{
    return L.on;
}

uint8_t l1_command_id(const struct reqmsg *m)
{
    size_t n = m->argvlen[0];
    for (size_t i = 1; i < l1_ncmds; i++) {
        if (!(L.cmdmask & (1u << i)) || strlen(l1_cmds[i].name) != n ||
            strncasecmp(m->argv[0], l1_cmds[i].name, n) != 0)
            continue;
        if (m->argc < l1_cmds[i].min_argc || (l1_cmds[i].max_argc && m->argc > l1_cmds[i].max_argc))
            return 0;
        return (uint8_t)i;
    }
    return 0;
}

int l1_owns_server(const struct server *s)
{
    return track_owns(s);
}

void l1_prefetch(const char *const *keys, const size_t *klens, int n)
{
    if (!L.on || !(L.cmdmask & (1u << L1_CMD_GET)))
        return;
    if (l1_set->admission)
        for (int i = 0; i < n; i++)
            l1sketch_prefetch(L.sketch, l1sketch_hash(L1_CMD_GET, keys[i], klens[i], "", 0));
    l1store_prefetch(L.store, keys, klens, n);
}

int l1_may_read_on(const struct server *s)
{
    return track_owns(s) || track_shares_any(s);
}

struct server *l1_pending_server(const void *pending)
{
    return ((const struct fill *)pending)->conn;
}

static int origin_unreachable(const struct l1_origin *o)
{
    return o != NULL && backend_connected(o->b) == 0 && o->b->err[0] != '\0';
}

/* A read of a key with a write in flight through the proxy: never a hit
 * nor a fill. A reader that may wait joins the key's shared read (sent
 * after the key's last write_end, see l1.h) or sends one; the others are
 * forwarded as plain reads. L1_WAIT or L1_BYPASS. */
static int read_held(int held, uint8_t id, const struct reqmsg *m, int may_wait, struct server *cur,
                     void **pending)
{
    const char *key = m->argv[1], *args = L.args.data ? L.args.data : "";
    size_t klen = m->argvlen[1], alen = L.args.len;
    struct fill *f = NULL;

    if (held == HOLDS_KEY && may_wait && L.ready) {
        f = fill_find(id, key, klen, args, alen);
        if (f != NULL && f->kind == FILL_SHARED && (cur == NULL || f->conn == cur)) {
            L.st.shared_joined++;
        } else if (f == NULL) {
            f = fill_new(id, key, klen, args, alen, NULL, FILL_SHARED, cur);
            if (f != NULL)
                L.st.shared_reads++;
        } else {
            f = NULL;
        }
    }
    if (f == NULL) {
        L.st.bypass++;
        L.st.bypass_pending++;
        return L1_BYPASS;
    }
    *pending = f;
    return L1_WAIT;
}

int l1_read(uint8_t id, const struct reqmsg *m, int may_wait, struct server *cur, const char **reply,
            size_t *len, void **pending)
{
    const char *key = m->argv[1];
    size_t klen = m->argvlen[1];

    origin_sync_pending();
    struct l1_origin *o = origin_for_key(key, klen);
    encode_args(m);
    const char *args = L.args.data ? L.args.data : "";
    size_t alen = L.args.len;
    uint64_t h = 0;

    int held = holds_pending(key, klen);
    struct l1entry *e = held ? NULL : l1store_get(L.store, id, key, klen, args, alen);
    if (l1_set->admission)
        h = admit_count(e, id, key, klen, args, alen);
    if (held)
        return read_held(held, id, m, may_wait, cur, pending);
    /* Only an answer from the L1 needs the pending invalidations taken
     * first (a miss goes to Redis anyway): misses skip that read. */
    if (e && track_drain(o))
        e = l1store_get(L.store, id, key, klen, args, alen);
    if (e && l1_now() >= l1entry_expires(e)) {
        l1store_drop(L.store, e);
        L.st.inv_expiry++;
        e = NULL;
    }
    if (!origin_ready(o)) {
        if (e && l1_set->serve_stale && origin_unreachable(o)) {
            L.st.stale_served++;
            *reply = l1entry_reply(e, len);
            return L1_HIT;
        }
        L.st.bypass++;
        return L1_BYPASS;
    }
    if (e && l1store_verified(L.store, e) && l1_set->mode == L1_TRACKING) {
        L.st.hits++;
        L.win_hits += (uint32_t)(l1_set->admission != 0);
        *reply = l1entry_reply(e, len);
        l1_hit_audit(e);
        return L1_HIT;
    }
    if (!may_wait) {
        L.st.bypass++;
        return L1_BYPASS;
    }
    /* Join a fill or check in flight for the same call, or start one. */
    struct fill *f = fill_find(id, key, klen, args, alen);
    if (f != NULL && cur != NULL && f->conn != cur) {
        L.st.bypass++;                  /* the client's order is kept on cur */
        return L1_BYPASS;
    }
    if (f != NULL) {
        L.st.coalesced++;
    } else {
        if (e == NULL) {
            L.st.misses++;
            if (l1_set->admission && !l1_admit(h ? h : l1sketch_hash(id, key, klen, args, alen))) {
                L.st.admission_rejected++;
                return L1_BYPASS;
            }
        } else if (cur != NULL && !track_owns(cur)) {
            L.st.bypass++;              /* checks need the fill connections' script */
            return L1_BYPASS;
        }
        f = fill_new(id, key, klen, args, alen, e ? l1entry_sha1(e) : NULL,
                     e ? FILL_CHECK : FILL_READ, cur);
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

/* The pattern of l1_invalidate, for l1store_drop_if. */
struct l1_glob {
    const char *p;                      /* pattern bytes */
    size_t n;                           /* pattern length */
};

static int key_matches(const struct l1entry *e, void *ctx)
{
    const struct l1_glob *g = ctx;
    size_t klen;
    const char *k = l1entry_key(e, &klen);
    return glob_match(g->p, g->n, k, klen);
}

size_t l1_invalidate(const char *pattern, size_t plen)
{
    if (!L.on)
        return 0;
    struct l1_glob g = { pattern, plen };
    size_t n = l1store_drop_if(L.store, key_matches, &g);
    fill_cancel_matching(pattern, plen);
    L.st.inv_pattern += n;
    return n;
}

const struct l1_stats *l1_stats(void)
{
    return &L.st;
}
