/*
 * proxy/acl.c — the proxy's own users and permissions, as Redis 7.0 ACLs.
 *
 *   acl_setuser(rules) -> rule_apply() per rule on a copy -> swapped in
 *   AUTH -> acl_authenticate(): SHA-256 of the password, constant-time compare
 *   request -> acl_check(): command bit / first arg -> keys (cmd_keys_ops)
 *                           -> channels (PUBLISH, [S|P]SUBSCRIBE)
 *   ACL LIST -> acl_user_describe(): Redis 7.0's rendering algorithm
 *
 * Semantics follow Redis 7.0's src/acl.c (ACLSetUser, ACLSetSelector,
 * ACLSelectorCheckCmd, ACLSelectorCheckKey, ACLCheckChannelAgainstList,
 * ACLDescribeSelectorCommandRules); the code is our own.
 *
 * Commands are numbered: top-level command i of cmd_table is id i, then the
 * subcommands of each container follow (acl->sub_base). A user holds one bit
 * per id, like a Redis selector; "+cmd" on a container sets the bits of all
 * its subcommands too, and "+@cat" applies to every command and subcommand
 * of the category (a container in the category takes all its subcommands).
 *
 * Checked against redis-server 7.0.15 on port 9601 (redis-cli), 2026-11-29:
 *  - reply texts: "NOAUTH Authentication required." (requirepass set, GET
 *    before AUTH); "WRONGPASS invalid username-password pair or user is
 *    disabled." (unknown user, off user, wrong password); "NOPERM this user
 *    has no permissions to run the 'config|get' command" (subcommand named
 *    parent|sub) and "... to run the 'set' command"; "NOPERM this user has
 *    no permissions to access one of the keys used as arguments"; "NOPERM
 *    this user has no permissions to access one of the channels used as
 *    arguments";
 *  - ACL SETUSER errors: "ERR Error in ACL SETUSER modifier '<rule>': " +
 *    "Syntax error" (foo, %~x, %, %Rx~y, %RR~x, +get|), "Unknown command or
 *    category name in ACL" (+nosuch, +@nosuch, +config|nosuch, -select|0),
 *    "Allowing first-arg of a subcommand is not supported" (+config|get|x),
 *    "The password hash must be exactly 64 characters and contain only
 *    lowercase hexadecimal characters" (#abc), "The password you are trying
 *    to remove from the user does not exist" (<nope, !<unknown hash>), the
 *    "Adding a pattern after the * pattern ..." texts (~x after ~*, &x after
 *    &*); "ERR Usernames can't contain spaces or null characters";
 *    accepted: "%R" (empty read pattern), "~", "&", ">" (empty password);
 *  - ACL LIST lines: "user default on nopass ~* &* +@all", a new user "off
 *    resetchannels -@all", after reset "off sanitize-payload resetchannels
 *    -@all", "%RW~*" shown as "~*" (but not allkeys), %R~y then %W~y merged
 *    into "~y", "+@all -@dangerous +@all" as "+@all", "-@all +@all -get" as
 *    "+@all -get", first args "-@all +select|2" after -@all, requirepass ""
 *    giving back "on nopass".
 * The verdicts of tests/unit/test_acl.c's differential table were checked
 * the same way (ACL SETUSER, AUTH, then the command).
 */
#include "proxy/acl.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/glob.h"

#define ACL_DIGEST_LEN 32               /* SHA-256 */
#define ACL_CMD_WORDS 8                 /* room for 512 command ids */
#define ACL_CMD_MAX (ACL_CMD_WORDS * 64)

/* Key pattern permissions (%R~, %W~; ~ is both). */
#define ACL_PERM_READ  1u
#define ACL_PERM_WRITE 2u
#define ACL_PERM_ALL   (ACL_PERM_READ | ACL_PERM_WRITE)

/* User flags, in the order Redis prints them. */
enum {
    USER_ON = 1u << 0,             /* "on" (else "off") */
    USER_NOPASS = 1u << 1,         /* any password authenticates */
    USER_SKIP_SANITIZE = 1u << 2,  /* "skip-sanitize-payload" */
    USER_SANITIZE = 1u << 3,       /* "sanitize-payload" */
};

/* Rule errors, each with Redis's text (rule_error_text). */
enum rule_err {
    RULE_OK = 0,
    RULE_SYNTAX,        /* EINVAL */
    RULE_UNKNOWN,       /* ENOENT */
    RULE_KEYS_AFTER_ALL,  /* EEXIST */
    RULE_CHANS_AFTER_ALL, /* EISDIR */
    RULE_NO_SUCH_PASS,  /* ENODEV */
    RULE_BAD_HASH,      /* EBADMSG */
    RULE_SUB_FIRSTARG,  /* ECHILD */
    RULE_SELECTOR,      /* "(...)": not supported here */
    RULE_NOMEM,
};

/* A key or channel pattern. */
struct acl_pattern {
    char *s;            /* pattern bytes, NUL-terminated copy */
    size_t len;         /* length */
    unsigned perm;      /* keys: ACL_PERM_*; channels: unused */
};

/* An allowed first argument of an otherwise denied command (+select|0). */
struct acl_firstarg {
    uint16_t id;        /* command id */
    char *s;            /* the argument, NUL-terminated copy */
    size_t len;         /* its length */
};

struct acl_user {
    struct acl *acl;                    /* owner (command ids) */
    char *name;                         /* NUL-terminated */
    size_t namelen;                     /* length of name */
    unsigned flags;                     /* USER_* */
    unsigned char (*pass)[ACL_DIGEST_LEN]; /* SHA-256 digests, in order added */
    size_t npass;                       /* number of digests */
    struct acl_pattern *keys;           /* key patterns, in order added */
    size_t nkeys;                       /* number of key patterns */
    int allkeys;                        /* ~* / allkeys */
    struct acl_pattern *chans;          /* channel patterns */
    size_t nchans;                      /* number of channel patterns */
    int allchannels;                    /* &* / allchannels */
    uint64_t cmds[ACL_CMD_WORDS];       /* one bit per command id */
    int future;                         /* +@all: Redis's "future commands" bit */
    struct acl_firstarg *fa;            /* allowed first args */
    size_t nfa;                         /* number of them */
};

struct acl {
    struct acl_user **users;            /* sorted by name (byte order) */
    size_t nusers;                      /* number of users */
    size_t cap;                         /* allocated slots in users */
    uint16_t *sub_base;                 /* per cmd_table index: id of its first subcommand */
    uint16_t *containers;               /* cmd_table indexes of commands with subcommands */
    size_t ncontainers;                 /* number of containers */
    size_t nids;                        /* number of command ids */
    const struct cmd *publish, *spublish;      /* channel commands (acl_check) */
    const struct cmd *subscribe, *ssubscribe;
    const struct cmd *psubscribe;
};

/* ------------------------------------------------------------------------
 * Small helpers.
 * ------------------------------------------------------------------------ */

static unsigned char lower(unsigned char c)
{
    return (unsigned char)((unsigned)(c - 'A') < 26u ? c + ('a' - 'A') : c);
}

/* Same bytes, any case, both with lengths. */
static int eq_nocase_len(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i;

    if (alen != blen) {
        return 0;
    }
    for (i = 0; i < alen; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) {
            return 0;
        }
    }
    return 1;
}

/* Redis's ACLStringHasSpaces(): isspace() or NUL anywhere. */
static int has_spaces(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r') || s[i] == '\0') {
            return 1;
        }
    }
    return 0;
}

static char *memdup0(const char *s, size_t len)
{
    char *p = malloc(len + 1);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* SHA-256 of s[0..len): 0, or -1 (out of memory in libcrypto). */
static int sha256(const char *s, size_t len, unsigned char out[ACL_DIGEST_LEN])
{
    unsigned int n = 0;

    if (EVP_Digest(s, len, out, &n, EVP_sha256(), NULL) != 1 || n != ACL_DIGEST_LEN) {
        return -1;
    }
    return 0;
}

/* "#<64 lower-case hex>" digest, as Redis's ACLCheckPasswordHash() wants it. */
static int parse_hash(const char *s, size_t len, unsigned char out[ACL_DIGEST_LEN])
{
    size_t i;

    if (len != 2 * ACL_DIGEST_LEN) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        int v;

        if (s[i] >= '0' && s[i] <= '9') {
            v = s[i] - '0';
        } else if (s[i] >= 'a' && s[i] <= 'f') {
            v = s[i] - 'a' + 10;
        } else {
            return -1;
        }
        if (i % 2 == 0) {
            out[i / 2] = (unsigned char)(v << 4);
        } else {
            out[i / 2] |= (unsigned char)v;
        }
    }
    return 0;
}

/* Redis's glob: base/glob.c (shared with the L1's INVALIDATE pattern). */
int acl_glob_match(const char *pattern, size_t plen, const char *string, size_t slen)
{
    return glob_match(pattern, plen, string, slen);
}

/* ------------------------------------------------------------------------
 * Command ids.
 * ------------------------------------------------------------------------ */

/* Index in cmd_table of the container holding sub, or -1. */
static int parent_index(const struct acl *acl, const struct cmd *sub)
{
    uintptr_t a = (uintptr_t)sub;
    size_t i;

    for (i = 0; i < acl->ncontainers; i++) {
        const struct cmd *c = &cmd_table[acl->containers[i]];
        uintptr_t lo = (uintptr_t)c->subcommands;
        uintptr_t hi = (uintptr_t)(c->subcommands + c->nsubcommands);

        if (a >= lo && a < hi) {
            return acl->containers[i];
        }
    }
    return -1;
}

/* The id of c (top-level or subcommand), -1 if not from cmd_table. */
static int cmd_id(const struct acl *acl, const struct cmd *c)
{
    uintptr_t a = (uintptr_t)c;
    int p;

    if (a >= (uintptr_t)cmd_table && a < (uintptr_t)(cmd_table + cmd_table_len)) {
        return (int)(c - cmd_table);
    }
    p = parent_index(acl, c);
    if (p < 0) {
        return -1;
    }
    return acl->sub_base[p] + (int)(c - cmd_table[p].subcommands);
}

static int bit_get(const uint64_t *bits, int id)
{
    return (int)((bits[id / 64] >> (id % 64)) & 1u);
}

static void bit_set(uint64_t *bits, int id, int v)
{
    if (v) {
        bits[id / 64] |= (uint64_t)1 << (id % 64);
    } else {
        bits[id / 64] &= ~((uint64_t)1 << (id % 64));
    }
}

/* Every command id set (+@all) or cleared (-@all). */
static void bits_all(const struct acl *acl, uint64_t *bits, int v)
{
    size_t id;

    memset(bits, 0, ACL_CMD_WORDS * sizeof(uint64_t));
    for (id = 0; v && id < acl->nids; id++) {
        bit_set(bits, (int)id, 1);
    }
}

/* Drop the allowed first args of command id (all of them if id < 0). */
static void firstargs_reset(struct acl_user *u, int id)
{
    size_t i, j = 0;

    for (i = 0; i < u->nfa; i++) {
        if (id < 0 || u->fa[i].id == id) {
            free(u->fa[i].s);
        } else {
            u->fa[j++] = u->fa[i];
        }
    }
    u->nfa = j;
}

/*
 * Redis's ACLChangeSelectorPerm(): the bit of c, the bits of all its
 * subcommands, and c's first args dropped. bits is u->cmds or a scratch
 * bitmap (u NULL: no first args to drop).
 */
static void change_perm(const struct acl *acl, uint64_t *bits, struct acl_user *u,
                        const struct cmd *c, int v)
{
    int id = cmd_id(acl, c);
    size_t j;

    assert(id >= 0);
    bit_set(bits, id, v);
    if (u != NULL) {
        firstargs_reset(u, id);
    }
    for (j = 0; j < c->nsubcommands; j++) {
        bit_set(bits, acl->sub_base[id] + (int)j, v);
    }
}

/* +@cat / -@cat: every command and subcommand of the category. */
static void change_category(const struct acl *acl, uint64_t *bits, struct acl_user *u,
                            uint32_t cat, int v)
{
    size_t i, j;

    for (i = 0; i < cmd_table_len; i++) {
        const struct cmd *c = &cmd_table[i];

        if (c->acl_categories & cat) {
            change_perm(acl, bits, u, c, v);
        }
        for (j = 0; j < c->nsubcommands; j++) {
            if (c->subcommands[j].acl_categories & cat) {
                change_perm(acl, bits, u, &c->subcommands[j], v);
            }
        }
    }
}

/*
 * Redis's ACLLookupCommand(): "name" or "container|sub" (any case); NULL
 * for an unknown name, a sub of a command without subcommands, or more
 * than one '|'.
 */
static const struct cmd *lookup_rule_name(const char *s, size_t len)
{
    const char *bar = memchr(s, '|', len);
    const struct cmd *c;

    if (bar == NULL) {
        return cmd_lookup(s, len);
    }
    if (memchr(bar + 1, '|', len - (size_t)(bar + 1 - s)) != NULL) {
        return NULL;
    }
    c = cmd_lookup(s, (size_t)(bar - s));
    if (c == NULL || c->nsubcommands == 0) {
        return NULL;
    }
    return cmd_lookup_sub(c, bar + 1, len - (size_t)(bar + 1 - s));
}

/* ------------------------------------------------------------------------
 * Users: create, copy, clear.
 * ------------------------------------------------------------------------ */

static void patterns_free(struct acl_pattern *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(p[i].s);
    }
    free(p);
}

/* Free everything the user holds except the struct and its name. */
static void user_clear(struct acl_user *u)
{
    free(u->pass);
    u->pass = NULL;
    u->npass = 0;
    patterns_free(u->keys, u->nkeys);
    u->keys = NULL;
    u->nkeys = 0;
    patterns_free(u->chans, u->nchans);
    u->chans = NULL;
    u->nchans = 0;
    firstargs_reset(u, -1);
    free(u->fa);
    u->fa = NULL;
}

static void user_free(struct acl_user *u)
{
    if (u != NULL) {
        user_clear(u);
        free(u->name);
        free(u);
    }
}

/* A user as Redis creates one: off, nothing allowed. NULL out of memory. */
static struct acl_user *user_new(struct acl *acl, const char *name, size_t len)
{
    struct acl_user *u = calloc(1, sizeof(*u));

    if (u == NULL) {
        return NULL;
    }
    u->acl = acl;
    u->name = memdup0(name, len);
    u->namelen = len;
    if (u->name == NULL) {
        free(u);
        return NULL;
    }
    return u;
}

static struct acl_pattern *patterns_dup(const struct acl_pattern *p, size_t n)
{
    struct acl_pattern *q;
    size_t i;

    if (n == 0) {
        return NULL;
    }
    q = calloc(n, sizeof(*q));
    for (i = 0; q != NULL && i < n; i++) {
        q[i] = p[i];
        q[i].s = memdup0(p[i].s, p[i].len);
        if (q[i].s == NULL) {
            patterns_free(q, i);
            return NULL;
        }
    }
    return q;
}

/* Deep copy of src's permissions into dst (dst cleared first). -1 on OOM
 * (dst then cleared). */
static int user_copy(struct acl_user *dst, const struct acl_user *src)
{
    size_t i;

    user_clear(dst);
    dst->flags = src->flags;
    dst->allkeys = src->allkeys;
    dst->allchannels = src->allchannels;
    dst->future = src->future;
    memcpy(dst->cmds, src->cmds, sizeof(dst->cmds));
    if (src->npass > 0) {
        dst->pass = malloc(src->npass * sizeof(*dst->pass));
        if (dst->pass == NULL) {
            goto oom;
        }
        memcpy(dst->pass, src->pass, src->npass * sizeof(*dst->pass));
        dst->npass = src->npass;
    }
    if (src->nkeys > 0) {
        if ((dst->keys = patterns_dup(src->keys, src->nkeys)) == NULL) {
            goto oom;
        }
        dst->nkeys = src->nkeys;
    }
    if (src->nchans > 0) {
        if ((dst->chans = patterns_dup(src->chans, src->nchans)) == NULL) {
            goto oom;
        }
        dst->nchans = src->nchans;
    }
    if (src->nfa > 0) {
        dst->fa = calloc(src->nfa, sizeof(*dst->fa));
        if (dst->fa == NULL) {
            goto oom;
        }
        for (i = 0; i < src->nfa; i++) {
            dst->fa[i] = src->fa[i];
            if ((dst->fa[i].s = memdup0(src->fa[i].s, src->fa[i].len)) == NULL) {
                goto oom;
            }
            dst->nfa++;
        }
    }
    return 0;
oom:
    user_clear(dst);
    return -1;
}

/* ------------------------------------------------------------------------
 * Rules (Redis's ACLSetUser / ACLSetSelector).
 * ------------------------------------------------------------------------ */

static enum rule_err pattern_add(struct acl_pattern **arr, size_t *n, const char *s, size_t len,
                                 unsigned perm)
{
    struct acl_pattern *p;
    size_t i;

    for (i = 0; i < *n; i++) {
        if ((*arr)[i].len == len && memcmp((*arr)[i].s, s, len) == 0) {
            (*arr)[i].perm |= perm;  /* same pattern: permissions merge */
            return RULE_OK;
        }
    }
    p = realloc(*arr, (*n + 1) * sizeof(*p));
    if (p == NULL) {
        return RULE_NOMEM;
    }
    *arr = p;
    p[*n].s = memdup0(s, len);
    if (p[*n].s == NULL) {
        return RULE_NOMEM;
    }
    p[*n].len = len;
    p[*n].perm = perm;
    (*n)++;
    return RULE_OK;
}

static enum rule_err pass_add(struct acl_user *u, const unsigned char d[ACL_DIGEST_LEN])
{
    unsigned char (*p)[ACL_DIGEST_LEN];
    size_t i;

    u->flags &= ~(unsigned)USER_NOPASS;
    for (i = 0; i < u->npass; i++) {
        if (memcmp(u->pass[i], d, ACL_DIGEST_LEN) == 0) {
            return RULE_OK;
        }
    }
    p = realloc(u->pass, (u->npass + 1) * sizeof(*p));
    if (p == NULL) {
        return RULE_NOMEM;
    }
    u->pass = p;
    memcpy(u->pass[u->npass++], d, ACL_DIGEST_LEN);
    return RULE_OK;
}

static enum rule_err pass_del(struct acl_user *u, const unsigned char d[ACL_DIGEST_LEN])
{
    size_t i;

    for (i = 0; i < u->npass; i++) {
        if (memcmp(u->pass[i], d, ACL_DIGEST_LEN) == 0) {
            memmove(u->pass[i], u->pass[i + 1], (u->npass - i - 1) * ACL_DIGEST_LEN);
            u->npass--;
            return RULE_OK;
        }
    }
    return RULE_NO_SUCH_PASS;
}

/* ~pat, %R~pat, %W~pat, %RW~pat. */
static enum rule_err rule_keys(struct acl_user *u, const char *op, size_t len)
{
    unsigned perm = 0;
    size_t off = 1;

    if (u->allkeys) {
        return RULE_KEYS_AFTER_ALL;
    }
    if (op[0] == '%') {
        for (; off < len; off++) {
            char c = (char)lower((unsigned char)op[off]);

            if (c == 'r' && !(perm & ACL_PERM_READ)) {
                perm |= ACL_PERM_READ;
            } else if (c == 'w' && !(perm & ACL_PERM_WRITE)) {
                perm |= ACL_PERM_WRITE;
            } else if (op[off] == '~') {
                off++;
                break;
            } else {
                return RULE_SYNTAX;
            }
        }
        if (perm == 0) {
            return RULE_SYNTAX;
        }
    } else {
        perm = ACL_PERM_ALL;
    }
    if (has_spaces(op + off, len - off)) {
        return RULE_SYNTAX;
    }
    return pattern_add(&u->keys, &u->nkeys, op + off, len - off, perm);
}

/* +cmd, +container|sub, +cmd|firstarg. */
static enum rule_err rule_allow(struct acl_user *u, const char *name, size_t len)
{
    const struct acl *acl = u->acl;
    const char *bar = NULL;
    const struct cmd *c;
    struct acl_firstarg *fa;
    size_t i;
    int id;

    for (i = len; i > 0; i--) {
        if (name[i - 1] == '|') {
            bar = name + i - 1;
            break;
        }
    }
    if (bar == NULL) {
        c = lookup_rule_name(name, len);
        if (c == NULL) {
            return RULE_UNKNOWN;
        }
        change_perm(acl, u->cmds, u, c, 1);
        return RULE_OK;
    }
    c = lookup_rule_name(name, (size_t)(bar - name));
    if (c == NULL) {
        return RULE_UNKNOWN;
    }
    if (cmd_id(acl, c) >= (int)cmd_table_len) {
        return RULE_SUB_FIRSTARG;       /* c is itself a subcommand */
    }
    if (bar + 1 == name + len) {
        return RULE_SYNTAX;             /* "get|" */
    }
    if (c->nsubcommands > 0) {
        c = lookup_rule_name(name, len);
        if (c == NULL) {
            return RULE_UNKNOWN;
        }
        change_perm(acl, u->cmds, u, c, 1);
        return RULE_OK;
    }
    /* A first argument of an otherwise denied command (Redis deprecates
     * this but 7.0 still honours it): kept once, compared in any case. */
    id = cmd_id(acl, c);
    {
        const char *arg = bar + 1;
        size_t arglen = (size_t)(name + len - arg);

        for (i = 0; i < u->nfa; i++) {
            if (u->fa[i].id == id && eq_nocase_len(u->fa[i].s, u->fa[i].len, arg, arglen)) {
                return RULE_OK;
            }
        }
        fa = realloc(u->fa, (u->nfa + 1) * sizeof(*fa));
        if (fa == NULL) {
            return RULE_NOMEM;
        }
        u->fa = fa;
        fa[u->nfa].id = (uint16_t)id;
        fa[u->nfa].len = arglen;
        fa[u->nfa].s = memdup0(arg, arglen);
        if (fa[u->nfa].s == NULL) {
            return RULE_NOMEM;
        }
        u->nfa++;
    }
    return RULE_OK;
}

static void rule_resetkeys(struct acl_user *u, int all)
{
    patterns_free(u->keys, u->nkeys);
    u->keys = NULL;
    u->nkeys = 0;
    u->allkeys = all;
}

static void rule_resetchannels(struct acl_user *u, int all)
{
    patterns_free(u->chans, u->nchans);
    u->chans = NULL;
    u->nchans = 0;
    u->allchannels = all;
}

static void rule_commands_all(struct acl_user *u, int v)
{
    bits_all(u->acl, u->cmds, v);
    u->future = v;
    firstargs_reset(u, -1);
}

/* One rule of a selector: keys, channels, commands. */
static enum rule_err rule_selector(struct acl_user *u, const char *op, size_t len)
{
    if (cmd_word_eq(op, len, "allkeys") || cmd_word_eq(op, len, "~*")) {
        rule_resetkeys(u, 1);
    } else if (cmd_word_eq(op, len, "resetkeys")) {
        rule_resetkeys(u, 0);
    } else if (cmd_word_eq(op, len, "allchannels") || cmd_word_eq(op, len, "&*")) {
        rule_resetchannels(u, 1);
    } else if (cmd_word_eq(op, len, "resetchannels")) {
        rule_resetchannels(u, 0);
    } else if (cmd_word_eq(op, len, "allcommands") || cmd_word_eq(op, len, "+@all")) {
        rule_commands_all(u, 1);
    } else if (cmd_word_eq(op, len, "nocommands") || cmd_word_eq(op, len, "-@all")) {
        rule_commands_all(u, 0);
    } else if (op[0] == '~' || op[0] == '%') {
        return rule_keys(u, op, len);
    } else if (op[0] == '&') {
        if (u->allchannels) {
            return RULE_CHANS_AFTER_ALL;
        }
        if (has_spaces(op + 1, len - 1)) {
            return RULE_SYNTAX;
        }
        return pattern_add(&u->chans, &u->nchans, op + 1, len - 1, 0);
    } else if ((op[0] == '+' || op[0] == '-') && len >= 2 && op[1] == '@') {
        uint32_t cat = cmd_cat_lookup(op + 2, len - 2);

        if (cat == 0) {
            return RULE_UNKNOWN;
        }
        change_category(u->acl, u->cmds, u, cat, op[0] == '+');
    } else if (op[0] == '+') {
        return rule_allow(u, op + 1, len - 1);
    } else if (op[0] == '-') {
        const struct cmd *c = lookup_rule_name(op + 1, len - 1);

        if (c == NULL) {
            return RULE_UNKNOWN;
        }
        change_perm(u->acl, u->cmds, u, c, 0);
    } else {
        return RULE_SYNTAX;
    }
    return RULE_OK;
}

/* One rule (Redis's ACLSetUser). */
static enum rule_err rule_apply(struct acl_user *u, const char *op, size_t len)
{
    unsigned char d[ACL_DIGEST_LEN];

    if (len == 0) {
        return RULE_OK;                 /* Redis: an empty rule does nothing */
    }
    if (cmd_word_eq(op, len, "on")) {
        u->flags |= USER_ON;
    } else if (cmd_word_eq(op, len, "off")) {
        u->flags &= ~(unsigned)USER_ON;
    } else if (cmd_word_eq(op, len, "skip-sanitize-payload")) {
        u->flags = (u->flags | USER_SKIP_SANITIZE) & ~(unsigned)USER_SANITIZE;
    } else if (cmd_word_eq(op, len, "sanitize-payload")) {
        u->flags = (u->flags | USER_SANITIZE) & ~(unsigned)USER_SKIP_SANITIZE;
    } else if (cmd_word_eq(op, len, "nopass")) {
        u->flags |= USER_NOPASS;
        u->npass = 0;
    } else if (cmd_word_eq(op, len, "resetpass")) {
        u->flags &= ~(unsigned)USER_NOPASS;
        u->npass = 0;
    } else if (op[0] == '>' || op[0] == '<') {
        if (sha256(op + 1, len - 1, d) != 0) {
            return RULE_NOMEM;
        }
        return op[0] == '>' ? pass_add(u, d) : pass_del(u, d);
    } else if (op[0] == '#' || op[0] == '!') {
        if (parse_hash(op + 1, len - 1, d) != 0) {
            return RULE_BAD_HASH;
        }
        return op[0] == '#' ? pass_add(u, d) : pass_del(u, d);
    } else if (op[0] == '(' && op[len - 1] == ')') {
        return RULE_SELECTOR;
    } else if (cmd_word_eq(op, len, "clearselectors")) {
        /* there are none */
    } else if (cmd_word_eq(op, len, "reset")) {
        u->flags = USER_SANITIZE;       /* off, not nopass */
        u->npass = 0;
        rule_resetkeys(u, 0);
        rule_resetchannels(u, 0);       /* acl-pubsub-default resetchannels (7.0) */
        rule_commands_all(u, 0);
    } else {
        return rule_selector(u, op, len);
    }
    return RULE_OK;
}

static const char *rule_error_text(enum rule_err e)
{
    switch (e) {
    case RULE_OK:
        return "OK";
    case RULE_SYNTAX:
        return "Syntax error";
    case RULE_UNKNOWN:
        return "Unknown command or category name in ACL";
    case RULE_KEYS_AFTER_ALL:
        return "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and "
               "does not have any effect. Try 'resetkeys' to start with an empty list of patterns";
    case RULE_CHANS_AFTER_ALL:
        return "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid "
               "and does not have any effect. Try 'resetchannels' to start with an empty list "
               "of channels";
    case RULE_NO_SUCH_PASS:
        return "The password you are trying to remove from the user does not exist";
    case RULE_BAD_HASH:
        return "The password hash must be exactly 64 characters and contain only lowercase "
               "hexadecimal characters";
    case RULE_SUB_FIRSTARG:
        return "Allowing first-arg of a subcommand is not supported";
    case RULE_SELECTOR:
        return "Selectors are not supported by this proxy";
    case RULE_NOMEM:
        return "Out of memory";
    }
    return "Wrong format";
}

/* ------------------------------------------------------------------------
 * The ACL.
 * ------------------------------------------------------------------------ */

/* Index where name belongs in acl->users; *found says whether it is there. */
static size_t user_slot(const struct acl *acl, const char *name, size_t len, int *found)
{
    size_t lo = 0, hi = acl->nusers;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct acl_user *u = acl->users[mid];
        size_t m = u->namelen < len ? u->namelen : len;
        int r = memcmp(u->name, name, m);

        if (r == 0) {
            r = u->namelen < len ? -1 : u->namelen > len ? 1 : 0;
        }
        if (r == 0) {
            *found = 1;
            return mid;
        }
        if (r < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = 0;
    return lo;
}

static int user_insert(struct acl *acl, struct acl_user *u)
{
    int found;
    size_t at = user_slot(acl, u->name, u->namelen, &found);

    assert(!found);
    if (acl->nusers == acl->cap) {
        size_t cap = acl->cap ? acl->cap * 2 : 8;
        struct acl_user **p = realloc(acl->users, cap * sizeof(*p));

        if (p == NULL) {
            return -1;
        }
        acl->users = p;
        acl->cap = cap;
    }
    memmove(&acl->users[at + 1], &acl->users[at], (acl->nusers - at) * sizeof(*acl->users));
    acl->users[at] = u;
    acl->nusers++;
    return 0;
}

/* Apply rules to u (no rollback: callers work on a copy). */
static enum rule_err rules_apply(struct acl_user *u, const char *const *rules, const size_t *lens,
                                 int n, int *bad)
{
    int i;

    for (i = 0; i < n; i++) {
        size_t len = lens != NULL ? lens[i] : strlen(rules[i]);
        enum rule_err e = rule_apply(u, rules[i], len);

        if (e != RULE_OK) {
            *bad = i;
            return e;
        }
    }
    return RULE_OK;
}

struct acl *acl_new(void)
{
    static const char *const defaults[] = { "+@all", "~*", "&*", "on", "nopass" };
    struct acl *acl = calloc(1, sizeof(*acl));
    struct acl_user *def;
    size_t i, id = cmd_table_len;
    int bad;

    if (acl == NULL) {
        return NULL;
    }
    acl->sub_base = calloc(cmd_table_len, sizeof(*acl->sub_base));
    acl->containers = calloc(cmd_table_len, sizeof(*acl->containers));
    if (acl->sub_base == NULL || acl->containers == NULL) {
        goto fail;
    }
    for (i = 0; i < cmd_table_len; i++) {
        if (cmd_table[i].nsubcommands > 0) {
            acl->sub_base[i] = (uint16_t)id;
            acl->containers[acl->ncontainers++] = (uint16_t)i;
            id += cmd_table[i].nsubcommands;
        }
    }
    acl->nids = id;
    if (acl->nids > ACL_CMD_MAX) {
        goto fail;                      /* raise ACL_CMD_WORDS */
    }
    acl->publish = cmd_lookup("publish", 7);
    acl->spublish = cmd_lookup("spublish", 8);
    acl->subscribe = cmd_lookup("subscribe", 9);
    acl->ssubscribe = cmd_lookup("ssubscribe", 10);
    acl->psubscribe = cmd_lookup("psubscribe", 10);
    def = user_new(acl, "default", 7);
    if (def == NULL) {
        goto fail;
    }
    if (rules_apply(def, defaults, NULL, 5, &bad) != RULE_OK || user_insert(acl, def) != 0) {
        user_free(def);
        goto fail;
    }
    return acl;
fail:
    acl_free(acl);
    return NULL;
}

void acl_free(struct acl *acl)
{
    size_t i;

    if (acl == NULL) {
        return;
    }
    for (i = 0; i < acl->nusers; i++) {
        user_free(acl->users[i]);
    }
    free(acl->users);
    free(acl->sub_base);
    free(acl->containers);
    free(acl);
}

struct acl_user *acl_user_get(const struct acl *acl, const char *name, size_t len)
{
    int found;
    size_t at = user_slot(acl, name, len, &found);

    return found ? acl->users[at] : NULL;
}

struct acl_user *acl_default_user(const struct acl *acl)
{
    struct acl_user *u = acl_user_get(acl, "default", 7);

    assert(u != NULL);
    return u;
}

/* Move src's permissions into dst (dst's freed); src is left empty. */
static void user_move(struct acl_user *dst, struct acl_user *src)
{
    struct acl *acl = dst->acl;
    char *name = dst->name;
    size_t namelen = dst->namelen;

    user_clear(dst);
    *dst = *src;
    dst->acl = acl;
    dst->name = name;
    dst->namelen = namelen;
    src->pass = NULL;
    src->npass = 0;
    src->keys = NULL;
    src->nkeys = 0;
    src->chans = NULL;
    src->nchans = 0;
    src->fa = NULL;
    src->nfa = 0;
}

int acl_setuser(struct acl *acl, const char *name, size_t namelen, const char *const *rules,
                const size_t *rules_len, int n, char *err, size_t errlen)
{
    struct acl_user *old = acl_user_get(acl, name, namelen);
    struct acl_user *u;
    enum rule_err e;
    int bad = 0;

    if (has_spaces(name, namelen)) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "ERR Usernames can't contain spaces or null characters");
        }
        return -1;
    }
    u = user_new(acl, name, namelen);
    if (u == NULL || (old != NULL && user_copy(u, old) != 0)) {
        e = RULE_NOMEM;
        goto fail;
    }
    e = rules_apply(u, rules, rules_len, n, &bad);
    if (e != RULE_OK) {
        goto fail;
    }
    if (old != NULL) {
        user_move(old, u);
        user_free(u);
        return 0;
    }
    if (user_insert(acl, u) != 0) {
        e = RULE_NOMEM;
        goto fail;
    }
    return 0;
fail:
    user_free(u);
    if (err != NULL && errlen > 0) {
        if (e == RULE_NOMEM) {
            snprintf(err, errlen, "ERR Out of memory");
        } else {
            size_t len = rules_len != NULL ? rules_len[bad] : strlen(rules[bad]);

            snprintf(err, errlen, "ERR Error in ACL SETUSER modifier '%.*s': %s",
                     len > INT_MAX ? INT_MAX : (int)len, rules[bad], rule_error_text(e));
        }
    }
    return -1;
}

int acl_requirepass(struct acl *acl, const char *pass, size_t len)
{
    const char *rules[2];
    size_t lens[2];
    char *set = NULL;
    int rc;

    rules[0] = "resetpass";
    lens[0] = 9;
    if (len == 0) {
        rules[1] = "nopass";
        lens[1] = 6;
    } else {
        set = malloc(len + 1);
        if (set == NULL) {
            return -1;
        }
        set[0] = '>';
        memcpy(set + 1, pass, len);
        rules[1] = set;
        lens[1] = len + 1;
    }
    rc = acl_setuser(acl, "default", 7, rules, lens, 2, NULL, 0);
    if (set != NULL) {
        OPENSSL_cleanse(set, len + 1);
        free(set);
    }
    return rc;
}

int acl_deluser(struct acl *acl, const char *name, size_t len)
{
    int found;
    size_t at = user_slot(acl, name, len, &found);

    if (!found || (len == 7 && memcmp(name, "default", 7) == 0)) {
        return -1;
    }
    user_free(acl->users[at]);
    memmove(&acl->users[at], &acl->users[at + 1], (acl->nusers - at - 1) * sizeof(*acl->users));
    acl->nusers--;
    return 0;
}

int acl_auth_required(const struct acl *acl)
{
    const struct acl_user *d = acl_default_user(acl);

    return !(d->flags & USER_NOPASS) || !(d->flags & USER_ON);
}

struct acl_user *acl_authenticate(const struct acl *acl, const char *user, size_t ulen,
                                  const char *pass, size_t plen)
{
    struct acl_user *u = acl_user_get(acl, user, ulen);
    unsigned char d[ACL_DIGEST_LEN];
    int ok = 0;
    size_t i;

    if (u == NULL || !(u->flags & USER_ON)) {
        return NULL;
    }
    if (u->flags & USER_NOPASS) {
        return u;
    }
    if (sha256(pass, plen, d) != 0) {
        return NULL;
    }
    for (i = 0; i < u->npass; i++) {
        ok |= CRYPTO_memcmp(d, u->pass[i], ACL_DIGEST_LEN) == 0;
    }
    OPENSSL_cleanse(d, sizeof(d));
    return ok ? u : NULL;
}

/* ------------------------------------------------------------------------
 * acl_check (Redis's ACLSelectorCheckCmd).
 * ------------------------------------------------------------------------ */

static size_t arglen(const char *const *argv, const size_t *argvlen, int i)
{
    return argvlen != NULL ? argvlen[i] : strlen(argv[i]);
}

/* Redis's ACLSelectorCheckKey(): read if the key is accessed, write if it
 * is inserted, deleted or updated; a pattern must grant all of that. */
static int key_ok(const struct acl_user *u, const char *key, size_t len, uint8_t ops)
{
    unsigned need = 0;
    size_t i;

    if (ops & CMD_KS_OP_ACCESS) {
        need |= ACL_PERM_READ;
    }
    if (ops & (CMD_KS_OP_INSERT | CMD_KS_OP_DELETE | CMD_KS_OP_UPDATE)) {
        need |= ACL_PERM_WRITE;
    }
    for (i = 0; i < u->nkeys; i++) {
        if ((u->keys[i].perm & need) == need &&
            acl_glob_match(u->keys[i].s, u->keys[i].len, key, len)) {
            return 1;
        }
    }
    return 0;
}

/* Redis's ACLCheckChannelAgainstList(): a channel is matched against the
 * patterns, a pattern (PSUBSCRIBE) must equal one of them literally. */
static int channel_ok(const struct acl_user *u, const char *ch, size_t len, int is_pattern)
{
    size_t i;

    for (i = 0; i < u->nchans; i++) {
        const struct acl_pattern *p = &u->chans[i];

        if (is_pattern ? (p->len == len && memcmp(p->s, ch, len) == 0)
                       : acl_glob_match(p->s, p->len, ch, len)) {
            return 1;
        }
    }
    return 0;
}

static enum acl_verdict check_command(const struct acl_user *u, const struct cmd *cmd, int argc,
                                      const char *const *argv, const size_t *argvlen)
{
    int id = cmd_id(u->acl, cmd);
    size_t i;

    if (id < 0) {
        return ACL_DENIED_CMD;
    }
    if (bit_get(u->cmds, id)) {
        return ACL_OK;
    }
    if (argc < 2) {
        return ACL_DENIED_CMD;
    }
    for (i = 0; i < u->nfa; i++) {
        if (u->fa[i].id == id &&
            eq_nocase_len(u->fa[i].s, u->fa[i].len, argv[1], arglen(argv, argvlen, 1))) {
            return ACL_OK;
        }
    }
    return ACL_DENIED_CMD;
}

static enum acl_verdict check_keys(const struct acl_user *u, const struct cmd *cmd, int argc,
                                   const char *const *argv, const size_t *argvlen, int *errpos)
{
    int pos_inline[ACL_KEYS_INLINE];
    uint8_t ops_inline[ACL_KEYS_INLINE];
    int *pos = pos_inline;
    uint8_t *ops = ops_inline;
    enum acl_verdict v = ACL_OK;
    int n, i;

    n = cmd_keys_ops(cmd, argc, argv, argvlen, pos, ops, ACL_KEYS_INLINE);
    if (n > ACL_KEYS_INLINE) {
        pos = malloc((size_t)n * sizeof(*pos));
        ops = malloc((size_t)n * sizeof(*ops));
        if (pos == NULL || ops == NULL) {
            n = -1;
        } else {
            n = cmd_keys_ops(cmd, argc, argv, argvlen, pos, ops, n);
        }
    }
    if (n < 0) {
        *errpos = -1;
        v = ACL_DENIED_KEY;
    }
    for (i = 0; i < n; i++) {
        if (!key_ok(u, argv[pos[i]], arglen(argv, argvlen, pos[i]), ops[i])) {
            *errpos = pos[i];
            v = ACL_DENIED_KEY;
            break;
        }
    }
    if (pos != pos_inline) {
        free(pos);
        free(ops);
    }
    return v;
}

static enum acl_verdict check_channels(const struct acl_user *u, const struct cmd *cmd, int argc,
                                       const char *const *argv, const size_t *argvlen,
                                       int *errpos)
{
    const struct acl *acl = u->acl;
    int first = 1, last, is_pattern = 0, i;

    if (cmd == acl->publish || cmd == acl->spublish) {
        last = argc > 1 ? 1 : 0;
    } else if (cmd == acl->subscribe || cmd == acl->ssubscribe) {
        last = argc - 1;
    } else if (cmd == acl->psubscribe) {
        last = argc - 1;
        is_pattern = 1;
    } else {
        return ACL_OK;
    }
    for (i = first; i <= last; i++) {
        if (!channel_ok(u, argv[i], arglen(argv, argvlen, i), is_pattern)) {
            *errpos = i;
            return ACL_DENIED_CHANNEL;
        }
    }
    return ACL_OK;
}

enum acl_verdict acl_check(const struct acl_user *user, const struct cmd *cmd, int argc,
                           const char *const *argv, const size_t *argvlen, int *errpos)
{
    enum acl_verdict v;
    int pos = -1;

    if (user == NULL || cmd == NULL || argc < 1) {
        return ACL_DENIED_CMD;
    }
    if (!(cmd->acl_flags & CMD_ACL_NO_AUTH)) {
        v = check_command(user, cmd, argc, argv, argvlen);
        if (v != ACL_OK) {
            return v;
        }
    }
    if (!user->allkeys && cmd->nkeyspecs > 0) {
        v = check_keys(user, cmd, argc, argv, argvlen, &pos);
        if (v != ACL_OK) {
            goto denied;
        }
    }
    if (!user->allchannels) {
        v = check_channels(user, cmd, argc, argv, argvlen, &pos);
        if (v != ACL_OK) {
            goto denied;
        }
    }
    return ACL_OK;
denied:
    if (errpos != NULL) {
        *errpos = pos;
    }
    return v;
}

/* The container of sub in cmd_table, or NULL (no acl needed: error path). */
static const struct cmd *parent_of(const struct cmd *sub)
{
    uintptr_t a = (uintptr_t)sub;
    size_t i;

    for (i = 0; i < cmd_table_len; i++) {
        const struct cmd *c = &cmd_table[i];

        if (c->nsubcommands > 0 && a >= (uintptr_t)c->subcommands &&
            a < (uintptr_t)(c->subcommands + c->nsubcommands)) {
            return c;
        }
    }
    return NULL;
}

const char *acl_error_text(enum acl_verdict v, const struct cmd *cmd, char *buf, size_t len)
{
    const struct cmd *parent;

    if (len == 0) {
        return buf;
    }
    switch (v) {
    case ACL_DENIED_CMD:
        parent = cmd != NULL ? parent_of(cmd) : NULL;
        snprintf(buf, len, "NOPERM this user has no permissions to run the '%s%s%s' command",
                 parent != NULL ? parent->name : "", parent != NULL ? "|" : "",
                 cmd != NULL ? cmd->name : "");
        break;
    case ACL_DENIED_KEY:
        snprintf(buf, len, "%s", ACL_ERR_NOPERM_KEY);
        break;
    case ACL_DENIED_CHANNEL:
        snprintf(buf, len, "%s", ACL_ERR_NOPERM_CHANNEL);
        break;
    case ACL_OK:
    default:
        buf[0] = '\0';
        break;
    }
    return buf;
}

const char *acl_user_name(const struct acl_user *u)
{
    return u->name;
}

size_t acl_user_count(const struct acl *acl)
{
    return acl->nusers;
}

struct acl_user *acl_user_at(const struct acl *acl, size_t i)
{
    return i < acl->nusers ? acl->users[i] : NULL;
}

/* ------------------------------------------------------------------------
 * acl_user_describe (Redis's ACLDescribeUser and friends).
 * ------------------------------------------------------------------------ */

/* A growing string; oom sticks. */
struct sbuf {
    char *p;        /* bytes, NUL-terminated when not oom */
    size_t len;     /* used, without the NUL */
    size_t cap;     /* allocated */
    int oom;        /* an allocation failed */
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;

        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* Separator before the next word (none before the first). */
static void sb_word(struct sbuf *b)
{
    if (b->len > 0) {
        sb_add(b, " ", 1);
    }
}

static void describe_flags(const struct acl_user *u, struct sbuf *b)
{
    sb_word(b);
    sb_str(b, u->flags & USER_ON ? "on" : "off");
    if (u->flags & USER_NOPASS) {
        sb_str(b, " nopass");
    }
    if (u->flags & USER_SKIP_SANITIZE) {
        sb_str(b, " skip-sanitize-payload");
    }
    if (u->flags & USER_SANITIZE) {
        sb_str(b, " sanitize-payload");
    }
}

static void describe_passwords(const struct acl_user *u, struct sbuf *b, const char *prefix)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, j;

    for (i = 0; i < u->npass; i++) {
        char h[2 * ACL_DIGEST_LEN];

        for (j = 0; j < ACL_DIGEST_LEN; j++) {
            h[2 * j] = hex[u->pass[i][j] >> 4];
            h[2 * j + 1] = hex[u->pass[i][j] & 15];
        }
        sb_word(b);
        sb_str(b, prefix);
        sb_add(b, h, sizeof(h));
    }
}

static void describe_keys(const struct acl_user *u, struct sbuf *b)
{
    size_t i;

    if (u->allkeys) {
        sb_word(b);
        sb_str(b, "~*");
        return;
    }
    for (i = 0; i < u->nkeys; i++) {
        unsigned perm = u->keys[i].perm;

        sb_word(b);
        sb_str(b, perm == ACL_PERM_ALL ? "~" : perm == ACL_PERM_READ ? "%R~" : "%W~");
        sb_add(b, u->keys[i].s, u->keys[i].len);
    }
}

static void describe_channels(const struct acl_user *u, struct sbuf *b, int for_list)
{
    size_t i;

    if (u->allchannels) {
        sb_word(b);
        sb_str(b, "&*");
        return;
    }
    if (for_list) {
        sb_word(b);
        sb_str(b, "resetchannels");
    }
    for (i = 0; i < u->nchans; i++) {
        sb_word(b);
        sb_str(b, "&");
        sb_add(b, u->chans[i].s, u->chans[i].len);
    }
}

/* Commands and subcommands of category cat allowed (*on) or not (*off) in bits. */
static void count_category(const struct acl *acl, const uint64_t *bits, uint32_t cat,
                           unsigned long *on, unsigned long *off)
{
    size_t i, j;

    *on = *off = 0;
    for (i = 0; i < cmd_table_len; i++) {
        const struct cmd *c = &cmd_table[i];

        if (c->acl_categories & cat) {
            *(bit_get(bits, (int)i) ? on : off) += 1;
        }
        for (j = 0; j < c->nsubcommands; j++) {
            if (c->subcommands[j].acl_categories & cat) {
                *(bit_get(bits, acl->sub_base[i] + (int)j) ? on : off) += 1;
            }
        }
    }
}

/* "+name" / "-name" / "+parent|name", then the fake bitmap follows suit. */
static void describe_one(const struct acl *acl, struct sbuf *b, uint64_t *fake, const uint64_t *real,
                         const struct cmd *parent, const struct cmd *c, int id)
{
    int ub = bit_get(real, id);

    if (ub == bit_get(fake, id)) {
        return;
    }
    sb_word(b);
    sb_str(b, ub ? "+" : "-");
    if (parent != NULL) {
        sb_str(b, parent->name);
        sb_str(b, "|");
    }
    sb_str(b, c->name);
    change_perm(acl, fake, NULL, c, ub);
}

/*
 * Redis 7.0's ACLDescribeSelectorCommandRules(): start from +@all (if the
 * user may run future commands) or -@all, add the category that fits best
 * while one fits (more commands in common than different, fewest
 * differences, then most in common), then fix single commands and list the
 * allowed first args, walking the table in its (name) order.
 */
static void describe_commands(const struct acl_user *u, struct sbuf *b)
{
    const struct acl *acl = u->acl;
    uint64_t fake[ACL_CMD_WORDS], temp[ACL_CMD_WORDS];
    char applied[CMD_CATEGORY_COUNT] = { 0 };
    int additive = !u->future;
    size_t i, j, k;

    sb_word(b);
    sb_str(b, additive ? "-@all" : "+@all");
    bits_all(acl, fake, !additive);
    memcpy(temp, u->cmds, sizeof(temp));
    for (;;) {
        unsigned long mindiff = ULONG_MAX, maxsame = 0;
        int best = -1, c;

        for (c = 0; c < CMD_CATEGORY_COUNT; c++) {
            unsigned long on, off, diff, same;

            if (applied[c]) {
                continue;
            }
            count_category(acl, temp, 1u << c, &on, &off);
            diff = additive ? off : on;
            same = additive ? on : off;
            if (same > diff && (diff < mindiff || (diff == mindiff && same > maxsame))) {
                best = c;
                mindiff = diff;
                maxsame = same;
            }
        }
        if (best < 0) {
            break;
        }
        sb_word(b);
        sb_str(b, additive ? "+@" : "-@");
        sb_str(b, cmd_cat_name(best));
        change_category(acl, fake, NULL, 1u << best, additive);
        change_category(acl, temp, NULL, 1u << best, !additive);
        applied[best] = 1;
    }
    for (i = 0; i < cmd_table_len; i++) {
        const struct cmd *c = &cmd_table[i];

        describe_one(acl, b, fake, u->cmds, NULL, c, (int)i);
        for (j = 0; j < c->nsubcommands; j++) {
            describe_one(acl, b, fake, u->cmds, c, &c->subcommands[j], acl->sub_base[i] + (int)j);
        }
        if (bit_get(u->cmds, (int)i)) {
            continue;
        }
        for (k = 0; k < u->nfa; k++) {
            if (u->fa[k].id == i) {
                sb_word(b);
                sb_str(b, "+");
                sb_str(b, c->name);
                sb_str(b, "|");
                sb_add(b, u->fa[k].s, u->fa[k].len);
            }
        }
    }
    /* As Redis: the rules must rebuild the user's bitmap exactly. */
    assert(memcmp(fake, u->cmds, sizeof(fake)) == 0);
}

char *acl_user_describe(const struct acl_user *u, enum acl_describe what)
{
    struct sbuf b = { NULL, 0, 0, 0 };

    switch (what) {
    case ACL_DESCRIBE_LIST:
        sb_str(&b, "user ");
        sb_add(&b, u->name, u->namelen);
        describe_flags(u, &b);
        describe_passwords(u, &b, "#");
        describe_keys(u, &b);
        describe_channels(u, &b, 1);
        describe_commands(u, &b);
        break;
    case ACL_DESCRIBE_FLAGS:
        describe_flags(u, &b);
        break;
    case ACL_DESCRIBE_PASSWORDS:
        describe_passwords(u, &b, "");
        break;
    case ACL_DESCRIBE_COMMANDS:
        describe_commands(u, &b);
        break;
    case ACL_DESCRIBE_KEYS:
        describe_keys(u, &b);
        break;
    case ACL_DESCRIBE_CHANNELS:
        describe_channels(u, &b, 0);
        break;
    }
    sb_add(&b, "", 0);                  /* an empty part is "" rather than NULL */
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
