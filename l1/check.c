/*
 * l1/check.c — hash checks: "does the origin still hold this reply?"
 *
 *   fill.c ─ check_send ─> EVALSHA check_script 1 key sha1hex cmd args...
 *            <─ {1, pttl} unchanged | {reply, pttl} another value
 *   revalidation: every unverified entry, L1_REVAL_BATCH checks in flight
 *   audit: l1-audit-rate of hits are also checked in the background; a
 *          check that finds another value counts a stale hit and its age
 *
 * The comparison runs in Redis (redis.sha1hex over the reply re-encoded
 * as RESP2), so an unchanged entry costs one integer back, not its value.
 */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "l1/internal.h"

/* Reply encoding: a Lua value back to RESP2 bytes. */
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
const char check_script[] =
    L1_LUA_ENC
    "local r = enc(redis.pcall(ARGV[2], KEYS[1], unpack(ARGV, 3)))\n"
    "local ttl = redis.call('PTTL', KEYS[1])\n"
    "if redis.sha1hex(r) == ARGV[1] then return {1, ttl} end\n"
    "return {r, ttl}\n";

static void sha1_hex(const uint8_t sha[20], char out[41])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        out[2 * i] = hex[sha[i] >> 4];
        out[2 * i + 1] = hex[sha[i] & 15];
    }
    out[40] = '\0';
}

void check_send(struct fill *f, const uint8_t *sha)
{
    struct buf *b = &L.req;
    int nargs = fill_nargs(f);
    buf_reset(b);
    buf_printf(b, "*%d\r\n", 6 + nargs);
    if (f->retried_eval) {
        l1_req_arg(b, "EVAL", 4);
        l1_req_arg(b, check_script, strlen(check_script));
    } else {
        l1_req_arg(b, "EVALSHA", 7);
        l1_req_arg(b, L.check_sha, 40);
    }
    l1_req_arg(b, "1", 1);
    l1_req_arg(b, f->data, f->klen);
    char hex[41];
    sha1_hex(sha, hex);
    l1_req_arg(b, hex, 40);
    l1_req_arg(b, l1_cmds[f->cmd].name, strlen(l1_cmds[f->cmd].name));
    fill_append_args(b, f);
    L.st.checks++;
    server_send(f->conn, &f->sr, b->data + b->pos, buf_unread(b));
}

int check_parse(const char *p, size_t len, const char **rp, size_t *rlen, long long *pttl)
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

void check_done(struct fill *f, struct l1entry *e, int changed, int missing)
{
    if (f->kind == FILL_AUDIT) {
        L.st.audit_checks++;
        if (changed && e && !f->cancelled) {
            /* Served from the L1 while the origin held another value. */
            uint64_t age = l1_now() - l1entry_filled(e);
            L.st.audit_stale++;
            L.audit_last_age = age;
            if (age > L.audit_max_age)
                L.audit_max_age = age;
            log_warn("L1 audit: a hit on %.*s was stale (entry %llu ms old)", (int)(f->klen > 64 ? 64 : f->klen),
                     f->data, (unsigned long long)age);
        }
    }
    if (!changed) {
        if (f->kind == FILL_REVAL)
            L.st.reval_unchanged++;
        return;
    }
    if (e)
        L.st.inv_hash_mismatch++;
    if (f->kind == FILL_REVAL) {
        if (e)
            L.st.reval_changed++;
        if (missing)
            L.st.reval_missing++;
    }
}

/* ---- revalidation and the audit ----------------------------------------- */

void check_reval_one(struct l1entry *e, void *ctx)
{
    (void)ctx;
    size_t klen, alen;
    const char *key = l1entry_key(e, &klen);
    const char *args = l1entry_args(e, &alen);
    uint8_t cmd = l1entry_cmd(e);

    if (holds_pending(key, klen) || fill_find(cmd, key, klen, args, alen))
        return;                       /* a write or a check is on it already */
    fill_new(cmd, key, klen, args, alen, l1entry_sha1(e), FILL_REVAL, NULL);
}

/* Keep L1_REVAL_BATCH checks in flight until every entry is verified. */
void check_reval_next(void)
{
    if (!L.ready || !L.reval_active || L.reval_inflight > L1_REVAL_BATCH / 2)
        return;
    size_t visited = l1store_walk_unverified(L.store, (size_t)(L1_REVAL_BATCH - L.reval_inflight),
                                             check_reval_one, NULL);
    if (visited == 0 && L.reval_inflight == 0) {
        L.reval_active = 0;
        log_notice("L1 revalidated: %llu unchanged, %llu changed, %llu missing so far",
                   (unsigned long long)L.st.reval_unchanged, (unsigned long long)L.st.reval_changed,
                   (unsigned long long)L.st.reval_missing);
    }
}

void check_audit(struct l1entry *e)
{
    size_t klen, alen;
    const char *key = l1entry_key(e, &klen);
    const char *args = l1entry_args(e, &alen);
    uint8_t cmd = l1entry_cmd(e);

    if (fill_find(cmd, key, klen, args, alen))
        return;                       /* a check or fill is on it already */
    fill_new(cmd, key, klen, args, alen, l1entry_sha1(e), FILL_AUDIT, NULL);
}
