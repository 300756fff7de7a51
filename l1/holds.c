/*
 * l1/holds.c — keys with writes in flight through the proxy.
 *
 *   router: write ──> l1_write_begin: drop the keys' entries, cancel their
 *                     fills, hold each key (count++) ──> token
 *   reply ──────────> l1_write_end(token): release (count--)
 *                     and cancel the key's shared reads (l1.h)
 *   l1_read ────────> holds_pending(key)? no fill, no hit: the write may not
 *                     have reached Redis yet, a fill could store the old
 *                     value; readers share one plain read (FILL_SHARED)
 *
 * A write that may touch any key (FLUSHALL, a script without declared
 * keys, too many keys) holds everything (global count) and flushes.
 *
 * Contract: every token from l1_write_begin is released exactly once by
 * l1_write_end (a transaction's tokens are chained by l1_token_join).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "l1/internal.h"

#define HOLDS_MAX_KEYS 64               /* keys of one write held one by one */

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

static struct pend *pend[L1_PEND_BUCKETS]; /* keys with writes in flight */
static size_t npend;                    /* entries in pend (0: reads skip the lookup) */
static uint64_t global_pending;         /* writes in flight that may touch any key */

static struct pend *pend_find(const char *key, size_t klen, int create)
{
    uint32_t h = l1_hash_bytes(key, klen) % L1_PEND_BUCKETS;
    for (struct pend *p = pend[h]; p; p = p->next)
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
    p->next = pend[h];
    pend[h] = p;
    npend++;
    return p;
}

static void pend_release(struct pend *p)
{
    if (--p->count > 0)
        return;
    uint32_t h = l1_hash_bytes(p->key, p->klen) % L1_PEND_BUCKETS;
    for (struct pend **pp = &pend[h]; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    npend--;
    free(p);
}

int holds_pending(const char *key, size_t klen)
{
    if (global_pending > 0)
        return HOLDS_ALL;
    return npend > 0 && pend_find(key, klen, 0) != NULL ? HOLDS_KEY : 0;
}

/* Drop one key everywhere and hold it while the write is in flight. */
static struct pend *holds_take(const char *key, size_t klen)
{
    L.st.inv_proxy_write += l1store_drop_key(L.store, key, klen);
    fill_cancel_key(key, klen);
    struct pend *p = pend_find(key, klen, 1);
    if (p)
        p->count++;
    return p;
}

void *l1_write_begin(const struct cmd *cmd, const struct reqmsg *m)
{
    if (!L.on)
        return NULL;
    int keys[HOLDS_MAX_KEYS];
    int n = -1;
    int flush = cmd == NULL || (cmd->flags & CMD_PROXY_FLUSH);

    if (cmd != NULL) {
        n = cmd_keys(cmd, m->argc, m->argv, m->argvlen, keys, NULL, HOLDS_MAX_KEYS);
        /* Scripts that declare keys touch those (EVAL s 2 a b); without
         * declared keys they may touch anything. */
        if (flush && n > 0 && (strncasecmp(cmd->name, "eval", 4) == 0 || strncasecmp(cmd->name, "fcall", 5) == 0))
            flush = 0;
        if (n < 0 || n > HOLDS_MAX_KEYS)
            flush = 1;
    }
    if (flush) {
        L.st.inv_flush += l1store_flush(L.store);
        fill_cancel_all();
        global_pending++;
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
        struct pend *p = holds_take(m->argv[k], m->argvlen[k]);
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
        if (t->global && global_pending > 0)
            global_pending--;
        for (int i = 0; i < t->nkeys; i++) {
            /* A shared read sent before this write's reply may have run
             * before the write: no later reader may join it. */
            fill_cancel_key(t->keys[i]->key, t->keys[i]->klen);
            pend_release(t->keys[i]);
        }
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
