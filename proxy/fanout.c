/*
 * proxy/fanout.c — split and merge over the nodes of a Redis Cluster (see
 * fanout.h).
 *
 *   fanout_dispatch ─> targets (slots of the keys, or every primary)
 *        ─> check room (client conns) ─> client_place ─> parts sent at once,
 *           the parts of one node as one server request (group_send)
 *   group_on_reply ─> the node's replies cut apart, one per part
 *   part_on_reply / each cut reply ─> -MOVED/-ASK? resend that part alone
 *        : keep the reply ─> last part ─> merge ─> place->on_reply (the client's FIFO)
 */
#include "proxy/fanout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cluster.h"
#include "backends/topology.h"
#include "base/buf.h"
#include "l1/l1.h"
#include "protocol/reply.h"
#include "proxy/client.h"
#include "proxy/proxy.h"
#include "proxy/router.h"

#define FANOUT_STACK_KEYS 64           /* key positions looked at without a malloc */
#define FANOUT_SCAN_NODE_MASK ((1ull << FANOUT_SCAN_NODE_BITS) - 1)

struct fanout;

/* One call of a fan-out (a SPLIT: one slot's keys). The parts of one node
 * are consecutive in fo->parts and leave as one server request: the first
 * of them (the lead) holds their bytes back to back and takes their replies
 * together; a part redirected by -MOVED / -ASK is resent alone. */
struct fanout_part {
    struct srvreq sr;                 /* on the node's connection (the lead's: the whole group) */
    struct fanout *fo;                /* the whole it belongs to */
    struct backend *b;                /* where it goes first */
    struct server *conn;              /* where it is in flight (counted in the client's conns) */
    struct fanout_part *lead;         /* the part holding its bytes (itself for a lead) */
    struct buf req;                   /* a lead: its group's request bytes (kept for resends) */
    size_t off;                       /* its own bytes: lead->req.data + off ... */
    size_t len;                       /* ... len bytes */
    int group;                        /* a lead: parts sent with it, itself included; else 0 */
    struct buf reply;                 /* its reply once answered */
    int redirects;                    /* MOVED/ASK hops taken */
    int nkeys;                        /* SPLIT: keys it carries */
};

/* One client request answered by several parts. */
struct fanout {
    struct srvreq *place;             /* the request's FIFO place (client_place) */
    uint8_t kind;                     /* enum cmd_cluster */
    int nparts;                       /* parts[] in use */
    int pending;                      /* parts not answered yet */
    int nkeys;                        /* SPLIT: keys of the call */
    int *key_part;                    /* SPLIT_ARRAY: part of each key, in call order (-1: the L1's) */
    struct buf held;                  /* MGET: the replies the L1 answered, back to back */
    size_t *held_at;                  /* MGET: per key, its reply's offset and length in held */
    size_t nheld;                     /* MGET: keys the L1 answered */
    int scan_node;                    /* SCAN: node index the part went to */
    void *l1_token;                   /* a write's keys held in the L1 until every part answered */
    struct fanout_part parts[];       /* the parts */
};

/* slot -> part index + 1 while a split is being planned (0 = none yet). */
static int slot_part[CLUSTER_SLOTS];

static void fanout_finish(struct fanout *fo);
static void part_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed);

int fanout_wanted(const struct cmd *cmd, int slot_cross)
{
    if (cmd == NULL)
        return 0;
    switch (cmd->cluster) {
    case CMD_CLUSTER_SPLIT_ARRAY:
    case CMD_CLUSTER_SPLIT_OK:
    case CMD_CLUSTER_SPLIT_SUM:
        return slot_cross;
    case CMD_CLUSTER_ALL_SUM:
    case CMD_CLUSTER_ALL_CONCAT:
    case CMD_CLUSTER_ALL_SAME:
    case CMD_CLUSTER_ALL_AND:
    case CMD_CLUSTER_ALL_ANY:
    case CMD_CLUSTER_SCAN:
        return 1;
    default:
        return 0;
    }
}

/* ---- request bytes ------------------------------------------------------ */

static int put_bulk(struct buf *b, const char *p, size_t n)
{
    return buf_printf(b, "$%zu\r\n", n) || buf_append(b, p, n) || buf_append(b, "\r\n", 2);
}

/* Length of the complete RESP item at p (a reply already framed), -1 if not. */
static long long item_len(const char *p, size_t len)
{
    struct replyframe f = { 0 };
    long long n = replyframe_scan(&f, p, len);
    replyframe_free(&f);
    return n > 0 ? n : -1;
}

/* ---- parts ---------------------------------------------------------------- */

/* Send bytes for p on s, expecting `replies` replies, counted in the
 * client's connections. */
static void part_send_bytes(struct client *c, struct fanout_part *p, struct server *s, const char *bytes,
                            size_t len, unsigned replies)
{
    p->conn = s;
    p->sr.replies = replies;
    s->backend->requests++;
    client_part_sent(c, s);
    proxy->stats.forwarded++;
    server_send(s, &p->sr, bytes, len);
}

/* Send part p alone on s (its own bytes). */
static void part_send(struct client *c, struct fanout_part *p, struct server *s)
{
    p->sr.on_reply = part_on_reply;
    part_send_bytes(c, p, s, p->lead->req.data + p->off, p->len, 1);
}

/* A -MOVED / -ASK answer: resend there. 1 if resent. */
static int part_redirect(struct client *c, struct fanout_part *p, const char *reply, size_t len)
{
    struct server *s = client_redirect(c, reply, len, p->redirects);

    if (s == NULL)
        return 0;
    p->redirects++;
    part_send(c, p, s);
    return 1;
}

static void part_answered(struct fanout_part *p, const char *reply, size_t len)
{
    struct fanout *fo = p->fo;
    if (buf_append(&p->reply, reply, len) != 0) {
        buf_reset(&p->reply);
        buf_append_str(&p->reply, "-ERR redsnano: out of memory\r\n");
    }
    if (--fo->pending == 0)
        fanout_finish(fo);
}

/* One part's reply: resent if redirected, else kept. */
static void part_reply(struct client *c, struct fanout_part *p, const char *reply, size_t len, int failed)
{
    if (failed)
        proxy->stats.backend_errors++;
    else if (c != NULL && len > 0 && reply[0] == '-' && part_redirect(c, p, reply, len))
        return;
    part_answered(p, reply, len);
}

static void part_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    struct fanout_part *p = (struct fanout_part *)sr;
    struct client *c = client_place_owner(p->fo->place);
    struct server *was_on = p->conn;

    p->conn = NULL;
    if (c != NULL && was_on != NULL)
        client_part_done(c, was_on);
    part_reply(c, p, reply, len, failed);
}

/* The replies of a group sent as one request: cut apart, one per part in
 * order (a failure, or bytes that do not frame, answer every part alike). */
static void group_on_reply(struct srvreq *sr, const char *reply, size_t len, int failed)
{
    struct fanout_part *lead = (struct fanout_part *)sr;
    struct fanout *fo = lead->fo;
    struct client *c = client_place_owner(fo->place);
    struct server *was_on = lead->conn;
    int n = lead->group;
    size_t pos = 0;

    lead->conn = NULL;
    lead->sr.on_reply = part_on_reply;   /* a redirected lead is resent alone */
    if (c != NULL && was_on != NULL)
        client_part_done(c, was_on);
    fo->pending++;                       /* fo lives until every part is handled */
    for (int i = 0; i < n; i++) {
        struct fanout_part *p = lead + i;
        long long l = failed ? -1 : item_len(reply + pos, len - pos);
        if (l < 0) {
            if (!failed) {
                reply = "-ERR redsnano: a cluster node's replies do not frame\r\n";
                len = strlen(reply);
                failed = 1;
            }
            part_reply(c, p, reply, len, 1);
            continue;
        }
        part_reply(c, p, reply + pos, (size_t)l, 0);
        pos += (size_t)l;
    }
    if (--fo->pending == 0)
        fanout_finish(fo);
}

/* Send the lead's whole group on s as one request. */
static void group_send(struct client *c, struct fanout_part *lead, struct server *s)
{
    if (lead->group == 1) {
        part_send(c, lead, s);
        return;
    }
    lead->sr.on_reply = group_on_reply;
    part_send_bytes(c, lead, s, lead->req.data, lead->req.len, (unsigned)lead->group);
}

/* ---- merging ---------------------------------------------------------------- */

/* The first error among the parts' replies, or NULL. */
static const struct fanout_part *first_error(const struct fanout *fo)
{
    for (int i = 0; i < fo->nparts; i++) {
        const struct buf *r = &fo->parts[i].reply;
        if (r->len == 0 || r->data[0] == '-')
            return &fo->parts[i];
    }
    return NULL;
}

/* An array reply's element count and where its elements start; -1 if not an array. */
static long long array_head(const struct buf *r, size_t *body)
{
    struct reply_item it;
    long long n = reply_item_parse(r->data, r->len, &it);
    if (n <= 0 || it.type != '*' || it.n < 0)
        return -1;
    *body = (size_t)n;
    return it.n;
}

static int merge_sum(const struct fanout *fo, struct buf *out)
{
    long long sum = 0;
    for (int i = 0; i < fo->nparts; i++) {
        struct reply_item it;
        const struct buf *r = &fo->parts[i].reply;
        if (reply_item_parse(r->data, r->len, &it) <= 0 || it.type != ':')
            return -1;
        sum += it.n;
    }
    return reply_integer(out, sum);
}

static int merge_same(const struct fanout *fo, struct buf *out)
{
    const struct buf *first = &fo->parts[0].reply;
    for (int i = 1; i < fo->nparts; i++) {
        const struct buf *r = &fo->parts[i].reply;
        if (r->len != first->len || memcmp(r->data, first->data, r->len) != 0)
            return reply_error(out, "ERR redsnano: the cluster's primaries answered differently");
    }
    return buf_append(out, first->data, first->len);
}

static int merge_concat(const struct fanout *fo, struct buf *out)
{
    long long total = 0;
    size_t body;
    for (int i = 0; i < fo->nparts; i++) {
        long long n = array_head(&fo->parts[i].reply, &body);
        if (n < 0)
            return -1;
        total += n;
    }
    reply_array(out, total);
    for (int i = 0; i < fo->nparts; i++) {
        const struct buf *r = &fo->parts[i].reply;
        body = 0;
        array_head(r, &body);
        buf_append(out, r->data + body, r->len - body);
    }
    return out->oom ? -ENOMEM : 0;
}

/* MGET: part p's k-th element is the k-th key (in call order) sent to p;
 * a key the L1 answered (key_part -1) takes its reply from fo->held. */
static int merge_split_array(const struct fanout *fo, struct buf *out)
{
    size_t *at = calloc(fo->nparts > 0 ? (size_t)fo->nparts : 1, sizeof(*at));
    int rc = 0;

    if (at == NULL)
        return -ENOMEM;
    for (int i = 0; i < fo->nparts && rc == 0; i++)
        if (array_head(&fo->parts[i].reply, &at[i]) != fo->parts[i].nkeys)
            rc = -1;
    if (rc == 0)
        reply_array(out, fo->nkeys);
    for (int k = 0; k < fo->nkeys && rc == 0; k++) {
        if (fo->key_part[k] < 0) {
            buf_append(out, fo->held.data + fo->held_at[2 * k], fo->held_at[2 * k + 1]);
            continue;
        }
        const struct buf *r = &fo->parts[fo->key_part[k]].reply;
        size_t *pos = &at[fo->key_part[k]];
        long long n = item_len(r->data + *pos, r->len - *pos);
        if (n < 0) {
            rc = -1;
            break;
        }
        buf_append(out, r->data + *pos, (size_t)n);
        *pos += (size_t)n;
    }
    free(at);
    return rc;
}

/* SCRIPT EXISTS: 1 where every primary says 1. */
static int merge_and(const struct fanout *fo, struct buf *out)
{
    size_t body, pos[CLUSTER_MAX_NODES];
    long long n = array_head(&fo->parts[0].reply, &body);
    if (n < 0 || fo->nparts > CLUSTER_MAX_NODES)
        return -1;
    for (int i = 0; i < fo->nparts; i++)
        if (array_head(&fo->parts[i].reply, &pos[i]) != n)
            return -1;
    reply_array(out, n);
    for (long long e = 0; e < n; e++) {
        long long all = 1;
        for (int i = 0; i < fo->nparts; i++) {
            const struct buf *r = &fo->parts[i].reply;
            struct reply_item it;
            long long l = reply_item_parse(r->data + pos[i], r->len - pos[i], &it);
            if (l <= 0 || it.type != ':')
                return -1;
            pos[i] += (size_t)l;
            all = all && it.n;
        }
        reply_integer(out, all);
    }
    return 0;
}

/* RANDOMKEY: a key from one of the non-empty primaries, chosen at random. */
static int merge_any(const struct fanout *fo, struct buf *out)
{
    int found[CLUSTER_MAX_NODES], n = 0;
    for (int i = 0; i < fo->nparts && n < CLUSTER_MAX_NODES; i++) {
        const struct buf *r = &fo->parts[i].reply;
        if (r->data[0] == '$' && r->data[1] != '-')
            found[n++] = i;
    }
    if (n == 0)
        return reply_nil(out);
    const struct buf *r = &fo->parts[found[rand() % n]].reply;
    return buf_append(out, r->data, r->len);
}

/* SCAN: the node's cursor becomes (cursor << 8) | node; a finished node
 * hands over to the next primary (cursor 0 there). */
static int merge_scan(const struct fanout *fo, struct buf *out)
{
    const struct buf *r = &fo->parts[0].reply;
    struct reply_item it;
    size_t body;
    if (array_head(r, &body) != 2)
        return -1;
    long long l = reply_item_parse(r->data + body, r->len - body, &it);
    if (l <= 0 || it.type != '$' || it.n <= 0 || it.n > 20)
        return -1;
    char num[24];
    memcpy(num, it.s, (size_t)it.n);
    num[it.n] = '\0';
    char *end;
    unsigned long long nodecur = strtoull(num, &end, 10), cur = 0;
    if (*end != '\0' || nodecur > (~0ull >> FANOUT_SCAN_NODE_BITS))
        return -1;
    if (nodecur != 0) {
        cur = (nodecur << FANOUT_SCAN_NODE_BITS) | (unsigned)fo->scan_node;
    } else {
        struct backend *prim[CLUSTER_MAX_NODES];
        int n = topology_primaries(&proxy->topo, prim, CLUSTER_MAX_NODES);
        int next = -1;
        for (int i = 0; i < n && i < CLUSTER_MAX_NODES; i++) {
            int idx = cluster_node_index(prim[i]);
            if (idx > fo->scan_node && (next < 0 || idx < next))
                next = idx;
        }
        cur = next > 0 ? (unsigned long long)next : 0;
    }
    char curs[24];
    int cl = snprintf(curs, sizeof(curs), "%llu", cur);
    reply_array(out, 2);
    reply_bulk(out, curs, (size_t)cl);
    size_t rest = body + (size_t)l;
    return buf_append(out, r->data + rest, r->len - rest);
}

/* Merge every part's reply into out by fo->kind. */
static void fanout_merge(const struct fanout *fo, struct buf *out)
{
    const struct fanout_part *err = first_error(fo);
    int rc;

    if (err != NULL) {
        if (err->reply.len)
            buf_append(out, err->reply.data, err->reply.len);
        else
            reply_error(out, "ERR redsnano: a cluster node gave no reply");
        return;
    }
    switch (fo->kind) {
    case CMD_CLUSTER_SPLIT_SUM:
    case CMD_CLUSTER_ALL_SUM:
        rc = merge_sum(fo, out);
        break;
    case CMD_CLUSTER_SPLIT_OK:
    case CMD_CLUSTER_ALL_SAME:
        rc = merge_same(fo, out);
        break;
    case CMD_CLUSTER_ALL_CONCAT:
        rc = merge_concat(fo, out);
        break;
    case CMD_CLUSTER_SPLIT_ARRAY:
        rc = merge_split_array(fo, out);
        break;
    case CMD_CLUSTER_ALL_AND:
        rc = merge_and(fo, out);
        break;
    case CMD_CLUSTER_ALL_ANY:
        rc = merge_any(fo, out);
        break;
    case CMD_CLUSTER_SCAN:
        rc = merge_scan(fo, out);
        break;
    default:
        rc = -1;
    }
    if (rc != 0 || out->oom) {
        buf_reset(out);
        out->oom = 0;
        reply_error(out, "ERR redsnano: cannot merge the cluster nodes' replies");
    }
}

static void fanout_free(struct fanout *fo)
{
    l1_write_end(fo->l1_token);
    for (int i = 0; i < fo->nparts; i++) {
        buf_free(&fo->parts[i].req);
        buf_free(&fo->parts[i].reply);
    }
    free(fo->key_part);
    buf_free(&fo->held);
    free(fo->held_at);
    free(fo);
}

static void fanout_finish(struct fanout *fo)
{
    struct buf out = { 0 };

    if (client_place_owner(fo->place) != NULL)
        fanout_merge(fo, &out);
    if (out.oom || (out.len == 0 && client_place_owner(fo->place) != NULL)) {
        buf_reset(&out);
        out.oom = 0;
        reply_error(&out, "ERR redsnano: out of memory");
    }
    fo->place->on_reply(fo->place, out.data, out.len, 0);
    buf_free(&out);
    fanout_free(fo);
}

/* ---- planning ------------------------------------------------------------------ */

static struct fanout *fanout_new(int nparts, uint8_t kind)
{
    struct fanout *fo = calloc(1, sizeof(*fo) + (size_t)nparts * sizeof(struct fanout_part));
    if (fo == NULL)
        return NULL;
    fo->kind = kind;
    fo->nparts = nparts;
    for (int i = 0; i < nparts; i++) {
        fo->parts[i].fo = fo;
        fo->parts[i].sr.on_reply = part_on_reply;
        fo->parts[i].lead = &fo->parts[i];
        fo->parts[i].group = 1;
    }
    return fo;
}

/* Each part its own group, its bytes all of its req (plan_all, plan_scan). */
static void parts_alone(struct fanout *fo)
{
    for (int i = 0; i < fo->nparts; i++)
        fo->parts[i].len = fo->parts[i].req.len;
}

/* Split m by the slots of its keys: one part per slot (Redis Cluster
 * refuses a multi-key call over slots even on one node), the parts of one
 * node consecutive and sent as one request (see struct fanout_part). A
 * key's chunk runs from it to the next key (MSET: key and value); a part
 * keeps its keys in call order. */
static struct fanout *plan_split(const struct cmd *cmd, const struct reqmsg *m, int replica_ok, int l1_ok)
{
    int stack_keys[FANOUT_STACK_KEYS], *keys = stack_keys;
    struct fanout *fo = NULL;
    int n = cmd_keys(cmd, m->argc, m->argv, m->argvlen, keys, NULL, FANOUT_STACK_KEYS);
    const char **el = NULL;             /* MGET: the L1's reply per key (NULL: ask Redis) */
    size_t *ellen = NULL, nheld = 0;

    if (n <= 0)
        return NULL;
    if (n > FANOUT_STACK_KEYS) {
        keys = malloc((size_t)n * sizeof(*keys));
        if (keys == NULL)
            return NULL;
        n = cmd_keys(cmd, m->argc, m->argv, m->argvlen, keys, NULL, n);
    }
    /* Per key: key_part, kslot, next; per slot (<= n): slots, part, first,
     * last, args; per slot: its backend. */
    int *key_part = malloc((size_t)n * sizeof(int));
    int *w = malloc((size_t)n * 7 * sizeof(int));
    struct backend **sb = malloc((size_t)n * sizeof(*sb));
    int nparts = 0;
    if (key_part == NULL || w == NULL || sb == NULL)
        goto out;
    int *kslot = w, *next = w + n, *slots = w + 2 * n, *part = w + 3 * n;
    int *first = w + 4 * n, *last = w + 5 * n, *args = w + 6 * n;
    /* MGET (one key per argument): the keys the L1 holds are answered from
     * it and make no part. */
    if (l1_ok && cmd->op == CMD_OP_MGET && n == m->argc - 1) {
        el = malloc((size_t)n * sizeof(*el));
        ellen = malloc((size_t)n * sizeof(*ellen));
        if (el != NULL && ellen != NULL)
            nheld = l1_mget_held(m, el, ellen);
    }
    for (int i = 0; i < n; i++) {
        if (nheld > 0 && el[i] != NULL) {
            kslot[i] = -1;
            continue;
        }
        int s = (int)cluster_keyslot(m->argv[keys[i]], m->argvlen[keys[i]]);
        if (slot_part[s] == 0) {
            slots[nparts] = s;
            slot_part[s] = ++nparts;
        }
        kslot[i] = slot_part[s] - 1;
    }
    for (int j = 0; j < nparts; j++) {
        slot_part[slots[j]] = 0;
        sb[j] = replica_ok ? topology_read_backend(&proxy->topo, slots[j])
                           : topology_write_backend(&proxy->topo, slots[j]);
        part[j] = -1;
    }
    fo = fanout_new(nparts, cmd->cluster);
    if (fo == NULL)
        goto out;
    fo->nkeys = n;
    if (nheld > 0) {
        fo->held_at = malloc((size_t)n * 2 * sizeof(*fo->held_at));
        if (fo->held_at == NULL) {
            fanout_free(fo);
            fo = NULL;
            goto out;
        }
        for (int i = 0; i < n; i++) {
            if (el[i] == NULL)
                continue;
            fo->held_at[2 * i] = fo->held.len;
            fo->held_at[2 * i + 1] = ellen[i];
            buf_append(&fo->held, el[i], ellen[i]);
        }
        fo->nheld = nheld;
    }
    /* Parts in order of each node's first slot; a node's slots together. */
    for (int j = 0, at = 0; j < nparts; j++) {
        if (part[j] >= 0)
            continue;
        struct fanout_part *lead = &fo->parts[at];
        lead->group = 0;
        for (int j2 = j; j2 < nparts; j2++) {
            if (part[j2] >= 0 || sb[j2] != sb[j])
                continue;
            part[j2] = at;
            fo->parts[at].b = sb[j];
            fo->parts[at].lead = lead;
            fo->parts[at].group = 0;
            lead->group++;
            first[at] = -1;
            args[at] = 0;
            at++;
        }
    }
    for (int i = 0; i < n; i++) {
        if (kslot[i] < 0) {
            key_part[i] = -1;           /* the L1's */
            continue;
        }
        int p = part[kslot[i]];
        key_part[i] = p;
        fo->parts[p].nkeys++;
        args[p] += (i + 1 < n ? keys[i + 1] : m->argc) - keys[i];
        next[i] = -1;
        if (first[p] < 0)
            first[p] = i;
        else
            next[last[p]] = i;
        last[p] = i;
    }
    /* Each part: *<1 + its arguments>, the command's own name, its chunks,
     * appended to its lead's bytes. */
    for (int p = 0; p < nparts; p++) {
        struct fanout_part *fp = &fo->parts[p];
        struct buf *b = &fp->lead->req;
        fp->off = b->len;
        buf_printf(b, "*%d\r\n", 1 + args[p]);
        put_bulk(b, m->argv[0], m->argvlen[0]);
        for (int i = first[p]; i >= 0; i = next[i]) {
            int end = i + 1 < n ? keys[i + 1] : m->argc;
            for (int a = keys[i]; a < end; a++)
                put_bulk(b, m->argv[a], m->argvlen[a]);
        }
        fp->len = b->len - fp->off;
    }
    int oom = fo->held.oom;
    for (int p = 0; p < nparts; p++)
        oom |= fo->parts[p].req.oom;
    if (oom) {
        fanout_free(fo);
        fo = NULL;
        goto out;
    }
    fo->key_part = key_part;
    key_part = NULL;
out:
    free(key_part);
    free(w);
    free(sb);
    free(el);
    free(ellen);
    if (keys != stack_keys)
        free(keys);
    return fo;
}

/* Every primary gets the request as the client sent it. */
static struct fanout *plan_all(const struct cmd *cmd, const struct reqmsg *m)
{
    struct backend *prim[CLUSTER_MAX_NODES];
    int n = topology_primaries(&proxy->topo, prim, CLUSTER_MAX_NODES);
    if (n <= 0)
        return NULL;
    if (n > CLUSTER_MAX_NODES)
        n = CLUSTER_MAX_NODES;
    struct fanout *fo = fanout_new(n, cmd->cluster);
    if (fo == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        fo->parts[i].b = prim[i];
        if (buf_append(&fo->parts[i].req, m->bytes, m->len) != 0) {
            fanout_free(fo);
            return NULL;
        }
    }
    parts_alone(fo);
    return fo;
}

/* SCAN <cursor> ...: the node named by the cursor's low bits (the first
 * primary for 0) gets SCAN <node cursor> with the other arguments. *err is
 * set for a cursor naming no primary. */
static struct fanout *plan_scan(const struct cmd *cmd, const struct reqmsg *m, const char **err)
{
    char num[32];
    char *end;

    if (m->argc < 2 || m->argvlen[1] == 0 || m->argvlen[1] >= sizeof(num)) {
        *err = "ERR invalid cursor";
        return NULL;
    }
    memcpy(num, m->argv[1], m->argvlen[1]);
    num[m->argvlen[1]] = '\0';
    errno = 0;
    unsigned long long cur = strtoull(num, &end, 10);
    if (*end != '\0' || errno != 0 || num[0] == '-') {
        *err = "ERR invalid cursor";
        return NULL;
    }
    struct backend *prim[CLUSTER_MAX_NODES], *b = NULL;
    int n = topology_primaries(&proxy->topo, prim, CLUSTER_MAX_NODES);
    int node = (int)(cur & FANOUT_SCAN_NODE_MASK);
    if (n <= 0)
        return NULL;
    if (cur == 0) {
        node = -1;
        for (int i = 0; i < n && i < CLUSTER_MAX_NODES; i++) {
            int idx = cluster_node_index(prim[i]);
            if (node < 0 || idx < node)
                node = idx;
        }
    }
    for (int i = 0; i < n && i < CLUSTER_MAX_NODES; i++)
        if (cluster_node_index(prim[i]) == node)
            b = prim[i];
    if (b == NULL) {
        *err = "ERR invalid cursor (it names no primary of the cluster)";
        return NULL;
    }
    struct fanout *fo = fanout_new(1, cmd->cluster);
    if (fo == NULL)
        return NULL;
    fo->scan_node = node;
    fo->parts[0].b = b;
    struct buf *q = &fo->parts[0].req;
    int nl = snprintf(num, sizeof(num), "%llu", cur >> FANOUT_SCAN_NODE_BITS);
    buf_printf(q, "*%d\r\n", m->argc);
    put_bulk(q, m->argv[0], m->argvlen[0]);
    put_bulk(q, num, (size_t)nl);
    for (int a = 2; a < m->argc; a++)
        put_bulk(q, m->argv[a], m->argvlen[a]);
    if (q->oom) {
        fanout_free(fo);
        return NULL;
    }
    parts_alone(fo);
    return fo;
}

/* ---- dispatch ------------------------------------------------------------------ */

/* Can every part go out now? 1 yes; 0 the client must wait; -1 never
 * (more nodes than a client may use at once, or out of memory). */
static int fanout_room(struct client *c, const struct fanout *fo)
{
    unsigned need = 0;

    /* One group per node: its lead stands for it. */
    for (int i = 0; i < fo->nparts; i += fo->parts[i].group) {
        const struct backend *b = fo->parts[i].b;
        int stall;
        if (b == NULL)
            continue;
        if (client_conn_for(c, b, &stall) == NULL) {
            if (stall)
                return 0;               /* its connection is closing */
            need++;
        }
    }
    return client_conns_reserve(c, need) == 0 ? 1 : -1;
}

/* May a read part go to a replica (read-policy; not right after this
 * client wrote: read-your-writes)? */
static int fanout_replica_ok(const struct client *c, const struct cmd *cmd)
{
    if (!(cmd->flags & CMD_READONLY) || (cmd->flags & CMD_WRITE))
        return 0;
    return !(proxy->cfg->read_your_writes > 0 && c->last_write &&
             uv_now(proxy->loop) - c->last_write < (uint64_t)proxy->cfg->read_your_writes);
}

/* May the L1 answer some of an MGET's keys (RESP2: a held GET reply is
 * RESP2 bytes; not in a tracking or pinned session, as route_l1)? */
static int fanout_l1_ok(const struct client *c, const struct cmd *cmd)
{
    return l1_on() && cmd->op == CMD_OP_MGET && c->proto == 2 && c->trk == NULL && c->pinned == NULL;
}

int fanout_dispatch(struct client *c, const struct cmd *cmd, struct reqmsg *m)
{
    const char *err = "CLUSTERDOWN redsnano: the cluster's slot map is not known yet";
    struct fanout *fo;

    if (cmd->cluster == CMD_CLUSTER_SCAN)
        fo = plan_scan(cmd, m, &err);
    else if (cmd->cluster == CMD_CLUSTER_SPLIT_ARRAY || cmd->cluster == CMD_CLUSTER_SPLIT_OK ||
             cmd->cluster == CMD_CLUSTER_SPLIT_SUM)
        fo = plan_split(cmd, m, fanout_replica_ok(c, cmd), fanout_l1_ok(c, cmd));
    else
        fo = plan_all(cmd, m);
    if (fo == NULL) {
        struct buf *b = client_reply_buf(c);
        if (b != NULL) {
            reply_error(b, err);
            client_reply_done(c);
        }
        return ROUTER_DONE;
    }
    int room = fanout_room(c, fo);
    if (room == 0) {
        fanout_free(fo);
        return ROUTER_STALL;
    }
    if (room < 0) {
        fanout_free(fo);
        struct buf *b = client_reply_buf(c);
        if (b != NULL) {
            reply_errorf(b, "ERR redsnano: this call needs more than %d cluster nodes at once (or memory)",
                         CLIENT_CONNS_MAX);
            client_reply_done(c);
        }
        return ROUTER_DONE;
    }
    fo->place = client_place(c);
    if (fo->place == NULL) {
        fanout_free(fo);
        return ROUTER_DONE;
    }
    l1_mget_served(fo->nheld);
    if (cmd->flags & CMD_WRITE)
        c->last_write = uv_now(proxy->loop);
    /* A split write (MSET, DEL over nodes) or a flush drops its keys from
     * the L1 and holds them until every part is answered. */
    if (l1_on() && (cmd->flags & (CMD_WRITE | CMD_PROXY_FLUSH)))
        fo->l1_token = l1_write_begin(cmd, m);
    /* Every part counts as pending until all are sent: one answered at
     * once (connection down) must not finish the whole early. */
    fo->pending = fo->nparts + 1;
    for (int i = 0; i < fo->nparts; i += fo->parts[i].group) {
        struct fanout_part *p = &fo->parts[i];
        struct server *s = NULL;
        int stall;
        if (p->b != NULL && (s = client_conn_pick(c, p->b, &stall)) == NULL && !stall &&
            p->b->role == BACKEND_REPLICA && topology_retry_backend(&proxy->topo, p->b) != NULL) {
            p->b = topology_retry_backend(&proxy->topo, p->b);   /* the replica is unavailable */
            s = client_conn_pick(c, p->b, &stall);
            for (int j = 1; j < p->group; j++)
                p[j].b = p->b;
        }
        if (s != NULL) {
            group_send(c, p, s);
            continue;
        }
        char msg[512];
        int n = p->b ? snprintf(msg, sizeof(msg), "-ERR redsnano: backend %s (primary) %s\r\n", p->b->name,
                                p->b->err[0] ? p->b->err : "unavailable")
                     : snprintf(msg, sizeof(msg), "-CLUSTERDOWN Hash slot not served\r\n");
        for (int j = 0; j < p->group; j++) {
            proxy->stats.backend_errors++;
            if (p->b)
                p->b->errors++;
            part_answered(p + j, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
        }
    }
    if (--fo->pending == 0)
        fanout_finish(fo);
    return ROUTER_DONE;
}
