/*
 * l1/origin.c — one origin per primary node: where an entry's truth lives.
 *
 *   static mode:  one origin, the topology's primary (origins[0])
 *   cluster mode: one origin per node that owns slots, each with its own
 *                 tracking (track.c: a node reports only its own keys)
 *
 *   cluster map listener ─> map_dirty ─> origin_sync (at the next l1_read,
 *       l1_mget or tick, never inside a walk or a reply):
 *       slot -> origin from topology_write_backend(slot); a new primary
 *       gets an origin (connected on the next tick); a node owning no slot
 *       is retired (closed at the tick); every entry of a slot whose owner changed
 *       becomes unverified, its fills are cancelled, and a revalidation
 *       pass checks it against the new owner (check.c)
 *   origin_for_key ─> static: origins[0]; cluster: slot_origin[CRC16 slot]
 *
 * An entry does not store its origin: its key's slot (CRC16 of the hash
 * tag) says it, so one store keeps one memory budget and one LRU for all
 * nodes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cluster.h"
#include "backends/topology.h"
#include "base/log.h"
#include "l1/internal.h"

static uint8_t slot_moved[CLUSTER_SLOTS]; /* origin_sync: slots whose owner changed */
static uint8_t origin_owns[L1_MAX_ORIGINS]; /* origin_sync: origins owning a slot */
static int retire_due;                    /* origin_sync ran: origin_retire_idle has work */

static void on_map_change(struct topology *t, void *ud)
{
    (void)t;
    (void)ud;
    L.map_dirty = 1;                    /* applied before the next use (origin_for_key, cron) */
}

/* A new origin for b (connected on the next tick). NULL when full / out of memory. */
static struct l1_origin *origin_new(struct backend *b)
{
    if (L.norigins == L1_MAX_ORIGINS)
        return NULL;
    struct l1_origin *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return NULL;
    o->b = b;
    o->index = L.norigins;
    L.origins[L.norigins++] = o;
    track_start(o);
    return o;
}

struct l1_origin *origin_of_backend(const struct backend *b)
{
    for (int i = 0; i < L.norigins; i++)
        if (L.origins[i]->b == b)
            return L.origins[i];
    return NULL;
}

int origin_start(void)
{
    L.cluster = l1_topo->mode == TOPOLOGY_CLUSTER;
    if (!L.cluster)
        return origin_new(&l1_topo->primary) ? 0 : -ENOMEM;
    L.slot_origin = calloc(CLUSTER_SLOTS, sizeof(*L.slot_origin));
    if (L.slot_origin == NULL)
        return -ENOMEM;
    L.map_dirty = 1;                    /* a map known already is taken at the first use */
    return topology_listen_map(l1_topo, on_map_change, NULL) < 0 ? -ENOMEM : 0;
}

struct l1_origin *origin_for_key(const char *key, size_t klen)
{
    if (!L.cluster)
        return L.origins[0];
    unsigned v = L.slot_origin[cluster_keyslot(key, klen)];
    return v ? L.origins[v - 1] : NULL;
}

int origin_owns_key(const struct l1_origin *o, const char *key, size_t klen)
{
    return origin_for_key(key, klen) == o;
}

int origin_same_slot(const char *a, size_t alen, const char *b, size_t blen)
{
    return !L.cluster || cluster_keyslot(a, alen) == cluster_keyslot(b, blen);
}

void origin_ready_changed(void)
{
    L.ready = 0;
    for (int i = 0; i < L.norigins; i++)
        L.ready |= L.origins[i]->ready;
}

static int entry_of_origin(const struct l1entry *e, void *ctx)
{
    size_t klen;
    const char *k = l1entry_key(e, &klen);
    return origin_for_key(k, klen) == ctx;
}

void origin_unverify(struct l1_origin *o)
{
    if (!L.cluster)
        l1store_unverify_all(L.store);
    else
        l1store_unverify_if(L.store, entry_of_origin, o);
}

static int key_in_moved_slot(const char *key, size_t klen, void *ctx)
{
    (void)ctx;
    return slot_moved[cluster_keyslot(key, klen)];
}

static int entry_in_moved_slot(const struct l1entry *e, void *ctx)
{
    size_t klen;
    const char *k = l1entry_key(e, &klen);
    return key_in_moved_slot(k, klen, ctx);
}

/* Take the map: slot -> origin (origins made for new primaries); returns
 * how many slots changed owner (slot_moved marks them). */
static size_t sync_slots(uint8_t *owns)
{
    size_t nmoved = 0;

    for (int s = 0; s < CLUSTER_SLOTS; s++) {
        struct backend *b = topology_write_backend(l1_topo, s);
        struct l1_origin *o = b ? origin_of_backend(b) : NULL;
        if (b != NULL && o == NULL)
            o = origin_new(b);
        uint16_t v = o ? (uint16_t)(o->index + 1) : 0;
        if (o)
            owns[o->index] = 1;
        slot_moved[s] = L.slot_origin[s] != 0 && v != L.slot_origin[s];
        nmoved += slot_moved[s];
        L.slot_origin[s] = v;
    }
    return nmoved;
}

/* Origins owning no slot are closed; one that owns slots again reconnects
 * (at the tick: closing connections answers their requests at once, which
 * must not happen inside a client's read). */
void origin_retire_idle(void)
{
    const uint8_t *owns = origin_owns;

    if (!retire_due)
        return;
    retire_due = 0;
    for (int i = 0; i < L.norigins; i++) {
        struct l1_origin *o = L.origins[i];
        if (!owns[i] && !o->retired) {
            o->retired = 1;
            log_notice("L1: %s owns no slot now: its tracking is closed", o->b->name);
            track_reset(o, "closed: node owns no slot");
        } else if (owns[i] && o->retired) {
            o->retired = 0;
            log_notice("L1: %s owns slots again: tracking reconnects", o->b->name);
            track_reset(o, "closed: node owns slots again");
        }
    }
    origin_ready_changed();
}

void origin_sync(void)
{
    if (!L.cluster || L.stopping)
        return;
    L.map_dirty = 0;
    memset(origin_owns, 0, sizeof(origin_owns));
    size_t nmoved = sync_slots(origin_owns);
    retire_due = 1;
    if (nmoved == 0)
        return;
    /* Their fills read the old owner: deliver, never store. */
    fill_cancel_if(key_in_moved_slot, NULL);
    size_t n = l1store_unverify_if(L.store, entry_in_moved_slot, NULL);
    L.st.reval_slot_moved += n;
    log_notice("L1: %zu slot(s) have another primary: %zu entr%s revalidated against the new owner", nmoved, n,
               n == 1 ? "y" : "ies");
    if (n > 0) {
        L.reval_active = 1;
        check_reval_next();
    }
}

void origin_report(struct buf *t)
{
    buf_printf(t, "l1_origins:%d\r\n", L.norigins);
    for (int i = 0; i < L.norigins; i++) {
        const struct l1_origin *o = L.origins[i];
        buf_printf(t, "l1_origin%d:addr=%s,ready=%d,retired=%d\r\n", i, o->b->name, o->ready, o->retired);
    }
}
