/*
 * protocol/command.h — the Redis 7.0 command table.
 *
 *   client bytes -> request.c (framing) -> [command.c: name -> struct cmd,
 *   flags, key positions] -> proxy/router.c (where does it go?)
 *                                      -> l1/l1.c (which keys to drop?)
 *
 * Contract:
 * - The table (command_table.c) is generated from `COMMAND INFO` of
 *   redis-server 7.0 by tools/gen_command_table.py, plus the proxy's own
 *   flags (CMD_PROXY_*) from the override list kept in that script.
 * - Lookups are case-insensitive, never allocate, and return NULL for an
 *   unknown name. Container commands (CONFIG, CLIENT, OBJECT, XINFO, ...)
 *   have subcommands; cmd_lookup_argv() resolves "CONFIG GET" to its own entry.
 * - Each command and subcommand carries Redis's ACL categories
 *   (acl_categories, enum cmd_cat from the generated X-macro in
 *   command_cat.h) and each key spec its logical operations (ops), for
 *   proxy/acl.c.
 * - cmd_keys() reads key positions from the Redis 7 key specifications
 *   (begin_search index|keyword, find_keys range|keynum), so variable-key
 *   commands (EVAL, ZUNIONSTORE, XREAD, SORT ... STORE, MIGRATE) come out
 *   right. It never reads past argc.
 */
#ifndef REDSNANO_PROTOCOL_COMMAND_H
#define REDSNANO_PROTOCOL_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/command_cat.h"

/* Flags, from Redis's COMMAND INFO (first group) and the proxy's own (second). */
enum cmd_flag {
    CMD_WRITE        = 1u << 0,  /* may modify the keyspace */
    CMD_READONLY     = 1u << 1,  /* only reads (eligible for replicas and the L1) */
    CMD_ADMIN        = 1u << 2,  /* Redis's "admin" flag */
    CMD_PUBSUB       = 1u << 3,  /* pub/sub related */
    CMD_NOSCRIPT     = 1u << 4,  /* not allowed in scripts */
    CMD_BLOCKING     = 1u << 5,  /* may block the connection (BLPOP, XREAD BLOCK, WAIT...) */
    CMD_FAST         = 1u << 6,  /* O(1) or O(log N) */
    CMD_NO_MANDATORY_KEYS = 1u << 7, /* key specs may find no keys */
    CMD_MOVABLEKEYS  = 1u << 8,  /* key positions depend on arguments */
    CMD_DENYOOM      = 1u << 9,  /* may grow memory */

    CMD_PROXY_DENY   = 1u << 16, /* changes a server: refused unless allow-admin-commands */
    CMD_PROXY_PIN    = 1u << 17, /* creates connection state: pin the client to its own connection */
    CMD_PROXY_LOCAL  = 1u << 18, /* answered by the proxy itself (PING, ECHO, QUIT, HELLO...) */
    CMD_PROXY_TXN    = 1u << 19, /* MULTI/EXEC/DISCARD/WATCH/UNWATCH */
    CMD_PROXY_SUBSCRIBE = 1u << 20, /* (P|S)SUBSCRIBE, MONITOR: connection becomes a push stream */
    CMD_PROXY_FLUSH  = 1u << 21, /* may touch keys it does not name (FLUSHALL, SWAPDB, scripts...) */
};

/* What the proxy does with a command beyond its flags (generated from
 * PROXY_OPS in tools/gen_command_table.py). */
enum cmd_op {
    CMD_OP_NONE = 0,
    CMD_OP_PING,             /* answered by the proxy */
    CMD_OP_ECHO,             /* answered by the proxy */
    CMD_OP_QUIT,             /* answered by the proxy, then the client is closed */
    CMD_OP_HELLO,            /* answered by the proxy (protocol negotiation) */
    CMD_OP_MULTI,            /* opens a transaction (the L1 holds its writes until EXEC) */
    CMD_OP_EXEC,             /* EXEC: ends a transaction */
    CMD_OP_SELECT,           /* SELECT 0 is a no-op through the proxy; other dbs pin */
    CMD_OP_RESET,            /* RESET: answered by the proxy (unpins, leaves tracking, RESP2) */
    CMD_OP_CLIENT_REPLY,     /* CLIENT REPLY ON|OFF|SKIP: the proxy drops the replies */
    CMD_OP_BLOCK_OPTION,     /* XREAD / XREADGROUP: blocking only with BLOCK before STREAMS */
    CMD_OP_UNSUBSCRIBE,      /* (P|S)UNSUBSCRIBE: one reply per channel argument (or one) */
    CMD_OP_MGET,             /* MGET: one reply element per key (the L1 answers per key) */
    CMD_OP_DISCARD,          /* DISCARD: ends a transaction (as EXEC, without running it) */
    CMD_OP_WATCH,            /* WATCH: cluster mode picks the transaction's node by its keys */
    CMD_OP_UNWATCH,          /* UNWATCH */
    CMD_OP_AUTH,             /* AUTH: the proxy's own users (proxy/auth.c) */
    CMD_OP_ACL_WHOAMI,       /* ACL WHOAMI: the proxy's user of this client */
    CMD_OP_ACL_LIST,         /* ACL LIST: the proxy's users, as Redis prints them */
    CMD_OP_ACL_USERS,        /* ACL USERS: their names */
    CMD_OP_ACL_GETUSER,      /* ACL GETUSER name: one of them, part by part */
    CMD_OP_SUBSCRIBE,        /* (P|S)SUBSCRIBE: RESP3 answers with pushes only */
    CMD_OP_CLIENT_ID,        /* CLIENT ID: the proxy's own client id */
    CMD_OP_CLIENT_INFO,      /* CLIENT INFO: the proxy's view of the client */
    CMD_OP_CLIENT_GETNAME,   /* CLIENT GETNAME: kept by the proxy */
    CMD_OP_CLIENT_SETNAME,   /* CLIENT SETNAME: kept by the proxy */
    CMD_OP_CLIENT_TRACKING,  /* CLIENT TRACKING: the proxy is the tracking server */
    CMD_OP_CLIENT_CACHING,   /* CLIENT CACHING yes|no (OPTIN / OPTOUT) */
    CMD_OP_CLIENT_TRACKINGINFO, /* CLIENT TRACKINGINFO */
    CMD_OP_CLIENT_GETREDIR,  /* CLIENT GETREDIR */
};

/* What the proxy does with a command in front of a Redis Cluster beyond
 * routing it by its keys' slot (generated from CLUSTER_OPS in
 * tools/gen_command_table.py; proxy/fanout.c does the work). */
enum cmd_cluster {
    CMD_CLUSTER_NONE = 0,
    CMD_CLUSTER_SPLIT_ARRAY,  /* keys over slots: one call per slot, arrays stitched in key order (MGET) */
    CMD_CLUSTER_SPLIT_OK,     /* keys over slots: one call per slot, +OK if every one is (MSET) */
    CMD_CLUSTER_SPLIT_SUM,    /* keys over slots: one call per slot, integers summed (DEL, EXISTS...) */
    CMD_CLUSTER_ALL_SUM,      /* keyless: every primary, integers summed (DBSIZE) */
    CMD_CLUSTER_ALL_CONCAT,   /* keyless: every primary, arrays concatenated (KEYS) */
    CMD_CLUSTER_ALL_SAME,     /* keyless: every primary, the same reply expected (FLUSHALL, SCRIPT LOAD) */
    CMD_CLUSTER_ALL_AND,      /* keyless: every primary, arrays of 0/1 and-ed (SCRIPT EXISTS) */
    CMD_CLUSTER_ALL_ANY,      /* keyless: every primary, any non-nil reply (RANDOMKEY) */
    CMD_CLUSTER_SCAN,         /* SCAN: the cursor names the primary, walked one after another */
    CMD_CLUSTER_CHANNEL,      /* routed by the slot of argv[1], a shard channel (SPUBLISH) */
};

/* How a command's RESP3 reply differs in shape from its RESP2 reply (the
 * rest is the same: nulls aside, see resp3_from_resp2). Generated from
 * RESP3_SHAPES in tools/gen_command_table.py. */
enum cmd_resp3 {
    CMD_RESP3_MAP = 1u << 0,          /* RESP2 flat field/value array, RESP3 map */
    CMD_RESP3_SET = 1u << 1,          /* RESP2 array, RESP3 set */
    CMD_RESP3_SCORE_PAIRS = 1u << 2,  /* with WITHSCORES: RESP2 flat member/score, RESP3 [member, double] pairs */
};

/* begin_search types */
enum cmd_bs { CMD_BS_INVALID = 0, CMD_BS_INDEX, CMD_BS_KEYWORD };
/* find_keys types */
enum cmd_fk { CMD_FK_INVALID = 0, CMD_FK_RANGE, CMD_FK_KEYNUM };

/* One Redis 7 key specification. */
struct cmd_keyspec {
    uint8_t bs;              /* enum cmd_bs */
    int16_t bs_pos;          /* INDEX: argv position; KEYWORD: startfrom (negative = from the end) */
    const char *bs_keyword;  /* KEYWORD: keyword to find (case-insensitive), else NULL */
    uint8_t fk;              /* enum cmd_fk */
    int16_t fk_a;            /* RANGE: lastkey (-1 = last arg, -2 = one before...); KEYNUM: keynumidx */
    int16_t fk_b;            /* RANGE: keystep;   KEYNUM: firstkey */
    int16_t fk_c;            /* RANGE: limit;     KEYNUM: keystep */
    uint16_t flags;          /* CMD_KS_* */
    uint8_t ops;             /* CMD_KS_OP_* (for ACLs) */
};

/* Key spec flags (subset of Redis's), used to tell written keys from read ones. */
enum cmd_ks_flag {
    CMD_KS_RO = 1u << 0,     /* key is only read */
    CMD_KS_RW = 1u << 1,     /* read and written */
    CMD_KS_OW = 1u << 2,     /* overwritten */
    CMD_KS_RM = 1u << 3,     /* deleted */
    CMD_KS_INCOMPLETE = 1u << 4, /* spec may miss keys (then treat the command as CMD_PROXY_FLUSH) */
};

/* Logical operation flags of a key spec (Redis's ACCESS/INSERT/DELETE/UPDATE
 * and VARIABLE_FLAGS), kept apart from CMD_KS_*: they are what Redis 7.0's
 * ACL %R~/%W~ check reads (read = ACCESS; write = INSERT, DELETE or UPDATE).
 * A key with none of them (EXISTS, TYPE) needs neither permission. */
enum cmd_ks_op {
    CMD_KS_OP_ACCESS = 1u << 0,   /* returns, copies or uses the value */
    CMD_KS_OP_INSERT = 1u << 1,   /* adds data, never modifies or deletes */
    CMD_KS_OP_DELETE = 1u << 2,   /* deletes data */
    CMD_KS_OP_UPDATE = 1u << 3,   /* updates or overwrites data */
    CMD_KS_OP_VARIABLE = 1u << 4, /* the ops depend on the arguments (SET ... GET, BITFIELD) */
};

/* ACL categories: CMD_CAT_<NAME> is bit i of the i-th category of Redis's
 * `ACL CAT` list (command_cat.h, generated). */
enum cmd_cat_index {
#define CMD_CAT_X_(id, name) CMD_CAT_INDEX_##id,
    CMD_CATEGORIES(CMD_CAT_X_)
#undef CMD_CAT_X_
};
enum cmd_cat {
#define CMD_CAT_X_(id, name) CMD_CAT_##id = 1u << CMD_CAT_INDEX_##id,
    CMD_CATEGORIES(CMD_CAT_X_)
#undef CMD_CAT_X_
};
_Static_assert(CMD_CATEGORY_COUNT <= 32, "acl_categories is a uint32_t");

/* acl_flags */
enum cmd_acl_flag {
    CMD_ACL_NO_AUTH = 1u << 0,    /* Redis's "no_auth": ACLs never refuse it (AUTH, HELLO, QUIT, RESET) */
};

struct cmd {
    const char *name;        /* lower case, e.g. "get" or, for a subcommand, "get" under "config" */
    int16_t arity;           /* Redis arity: N exact, -N at least N (counting the name) */
    uint32_t flags;          /* enum cmd_flag */
    const struct cmd_keyspec *keyspecs;
    uint8_t nkeyspecs;
    const struct cmd *subcommands; /* NULL unless a container command */
    uint16_t nsubcommands;
    uint8_t op;              /* enum cmd_op */
    uint32_t acl_categories; /* enum cmd_cat bits */
    uint8_t acl_flags;       /* enum cmd_acl_flag */
    uint8_t cluster;         /* enum cmd_cluster */
    uint8_t resp3;           /* enum cmd_resp3: how its RESP3 reply's shape differs */
};

/* Look up a top-level command by name (any case). NULL if unknown. */
const struct cmd *cmd_lookup(const char *name, size_t len);

/* Look up a subcommand of a container command (any case). NULL if unknown
 * or if parent has no subcommands. */
const struct cmd *cmd_lookup_sub(const struct cmd *parent, const char *name, size_t len);

/* Resolve argv[0] (and argv[1] for container commands) to the most specific
 * entry. Returns NULL when argv[0] is unknown; returns the container itself
 * when the subcommand is unknown or missing. */
const struct cmd *cmd_lookup_argv(int argc, const char *const *argv, const size_t *argvlen);

/* Does argc satisfy the command's arity? 1 yes, 0 no. */
int cmd_arity_ok(const struct cmd *c, int argc);

/* Key positions of a command call. Writes up to max argv indexes into out,
 * in key-spec order, and returns how many keys there are in total (which may
 * exceed max: call again with a larger array). Returns -1 when the arguments
 * do not fit the key specs (bad numkeys, keys past argc...): Redis will
 * refuse the call, the caller should treat it as touching unknown keys.
 * An optional keyword that is absent (SORT without STORE, GEORADIUS without
 * STORE) only means no keys from that spec. Keys found by an INCOMPLETE spec
 * are returned flagged CMD_KS_INCOMPLETE: there may be others.
 * If flags_out is not NULL it receives, per returned key, the CMD_KS_* flags
 * of the spec that found it.
 * In both argv functions argvlen may be NULL when every argv[i] is a
 * NUL-terminated string (tests, literals); the proxy passes lengths. */
int cmd_keys(const struct cmd *c, int argc, const char *const *argv, const size_t *argvlen,
             int *out, uint16_t *flags_out, int max);

/* How many replies Redis sends for this call on a connection that is not
 * in push mode: one, but one per channel argument (at least one) for the
 * (P|S)UNSUBSCRIBE family. c may be NULL (an unknown command: one). */
static inline unsigned cmd_replies(const struct cmd *c, int argc)
{
    if (c != NULL && c->op == CMD_OP_UNSUBSCRIBE && argc > 2)
        return (unsigned)(argc - 1);
    return 1;
}

/* The resp3_from_resp2() flags (RESP3_UP_*) for this call's reply: the
 * command's cmd_resp3 shape, SCORE_PAIRS only with a WITHSCORES argument. */
unsigned cmd_resp3_shape(const struct cmd *c, int argc, const char *const *argv, const size_t *argvlen);

/* Is a[0..alen) the NUL-terminated word kw, in any case (ASCII)? */
int cmd_word_eq(const char *a, size_t alen, const char *kw);

/* Does this call block (blocking commands; XREAD / XREADGROUP only with a
 * BLOCK option before STREAMS)? */
int cmd_blocks(const struct cmd *c, int argc, const char *const *argv, const size_t *argvlen);
/* Like cmd_keys(), but ops_out (not NULL) receives, per returned key, the
 * CMD_KS_OP_* flags Redis 7.0 gives that key for ACL checks (what COMMAND
 * GETKEYSANDFLAGS shows): VARIABLE specs are resolved from the arguments as
 * Redis's own getkeys functions do (SET with GET reads and updates, without
 * it only updates; BITFIELD with only GET/OVERFLOW operations reads,
 * otherwise reads and updates), so CMD_KS_OP_VARIABLE never comes out.
 * Same return values as cmd_keys(). */
int cmd_keys_ops(const struct cmd *c, int argc, const char *const *argv, const size_t *argvlen,
                 int *out, uint8_t *ops_out, int max);

/* The ACL category named name[0..len) (any case, without the '@'): its
 * CMD_CAT_* bit, or 0 if there is no such category. */
uint32_t cmd_cat_lookup(const char *name, size_t len);

/* Name (lower case, without '@') of category index i (0 <= i <
 * CMD_CATEGORY_COUNT, Redis's order), NULL out of range. */
const char *cmd_cat_name(int i);

/* Number of top-level commands in the table (for tests and COMMAND COUNT checks). */
size_t cmd_count(void);

/* The generated table itself (command_table.c): top-level commands sorted by
 * name (byte order, lower case), as are each container's subcommands. Read
 * it only to iterate (tests, COMMAND-like listings); look names up with
 * cmd_lookup*(). */
extern const struct cmd cmd_table[];
extern const size_t cmd_table_len;

/* Internal to command.c: open-addressing index of the top-level names,
 * generated with the table (slot = FNV-1a of the lower-case name masked to
 * the size, linear probing; value = 1 + index into cmd_table, 0 = empty). */
#define CMD_TABLE_HASH_SIZE 1024
extern const uint16_t cmd_table_hash[];

#endif
