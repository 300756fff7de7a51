/*
 * tests/unit/test_command.c — the command table and protocol/command.c.
 *
 * Lookups (any case, unknown names, subcommands), the flags the router and
 * the L1 depend on, and key positions for the variable-key commands, written
 * as Redis 7.0 would answer COMMAND GETKEYS for the same call.
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <string.h>

#include "protocol/command.h"

#define T_MAXARGS 32

/* One command call split on spaces; argv points into buf. */
struct t_call {
    int argc;                       /* number of arguments */
    const char *argv[T_MAXARGS];    /* arguments, NUL-terminated in buf */
    size_t len[T_MAXARGS];          /* their lengths */
    char buf[512];                  /* storage */
};

static void t_split(struct t_call *c, const char *line)
{
    char *save = NULL, *tok;

    cr_assert(strlen(line) < sizeof(c->buf));
    strcpy(c->buf, line);
    c->argc = 0;
    for (tok = strtok_r(c->buf, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        cr_assert(c->argc < T_MAXARGS);
        /* "''" stands for an empty argument */
        if (strcmp(tok, "''") == 0) {
            tok[0] = '\0';
        }
        c->argv[c->argc] = tok;
        c->len[c->argc] = strlen(tok);
        c->argc++;
    }
}

static const struct cmd *t_resolve(const char *line)
{
    struct t_call c;

    t_split(&c, line);
    return cmd_lookup_argv(c.argc, c.argv, c.len);
}

/* Keys of line; out/flags receive up to T_MAXARGS entries. */
static int t_keys(const char *line, int *out, uint16_t *flags)
{
    struct t_call c;
    const struct cmd *cmd;

    t_split(&c, line);
    cmd = cmd_lookup_argv(c.argc, c.argv, c.len);
    cr_assert_not_null(cmd, "unknown command in \"%s\"", line);
    return cmd_keys(cmd, c.argc, c.argv, c.len, out, flags, T_MAXARGS);
}

/* Assert that line's keys are exactly the n positions given. */
static void expect_keys(const char *line, int n, ...)
{
    int out[T_MAXARGS];
    int got = t_keys(line, out, NULL);
    va_list ap;
    int i;

    cr_assert_eq(got, n, "\"%s\": %d keys, expected %d", line, got, n);
    va_start(ap, n);
    for (i = 0; i < n; i++) {
        int want = va_arg(ap, int);
        cr_expect_eq(out[i], want, "\"%s\": key %d at argv[%d], expected argv[%d]", line, i, out[i], want);
    }
    va_end(ap);
}

static void expect_invalid(const char *line)
{
    int out[T_MAXARGS];
    int got = t_keys(line, out, NULL);

    cr_assert_eq(got, -1, "\"%s\": %d keys, expected -1 (invalid)", line, got);
}

static uint32_t flags_of(const char *line)
{
    const struct cmd *c = t_resolve(line);

    cr_assert_not_null(c, "unknown command \"%s\"", line);
    return c->flags;
}

/* ---- lookups ---------------------------------------------------------- */

Test(command_lookup, finds_names_in_any_case)
{
    const struct cmd *a = cmd_lookup("get", 3);

    cr_assert_not_null(a);
    cr_assert_str_eq(a->name, "get");
    cr_assert_eq(cmd_lookup("GET", 3), a);
    cr_assert_eq(cmd_lookup("gEt", 3), a);
    cr_assert_str_eq(cmd_lookup("GEORADIUSBYMEMBER_RO", 20)->name, "georadiusbymember_ro");
    cr_assert_str_eq(cmd_lookup("Restore-Asking", 14)->name, "restore-asking");
}

Test(command_lookup, uses_len_not_nul)
{
    /* the proxy's argv points into a buffer: no NUL after the name */
    cr_assert_str_eq(cmd_lookup("SETNX whatever", 5)->name, "setnx");
    cr_assert_str_eq(cmd_lookup("SETNX", 3)->name, "set");
}

Test(command_lookup, unknown_names_are_null)
{
    cr_assert_null(cmd_lookup("nosuchcommand", 13));
    cr_assert_null(cmd_lookup("", 0));
    cr_assert_null(cmd_lookup("ge", 2));
    cr_assert_null(cmd_lookup("gett", 4));
    cr_assert_null(cmd_lookup("get\0", 4));
    cr_assert_null(cmd_lookup("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 48));
    cr_assert_null(cmd_lookup("\xff\xfe", 2));
    cr_assert_null(cmd_lookup(NULL, 0));
    /* a subcommand is not a top-level command */
    cr_assert_null(cmd_lookup("setname", 7));
    cr_assert_null(cmd_lookup("config|get", 10));
}

Test(command_lookup, subcommands)
{
    const struct cmd *config = cmd_lookup("config", 6);
    const struct cmd *sub;

    cr_assert_not_null(config);
    cr_assert_not_null(config->subcommands);
    sub = cmd_lookup_sub(config, "GET", 3);
    cr_assert_not_null(sub);
    cr_assert_str_eq(sub->name, "get");
    cr_assert_neq(sub, cmd_lookup("get", 3));

    cr_assert_eq(t_resolve("CONFIG GET maxmemory"), sub);
    cr_assert_eq(t_resolve("config get maxmemory"), sub);
    cr_assert_str_eq(t_resolve("CLIENT SETNAME me")->name, "setname");
    cr_assert_str_eq(t_resolve("OBJECT ENCODING k")->name, "encoding");
    cr_assert_str_eq(t_resolve("xinfo Stream k")->name, "stream");
    cr_assert_str_eq(t_resolve("CLIENT NO-EVICT on")->name, "no-evict");
}

Test(command_lookup, argv_falls_back_to_container_or_null)
{
    const struct cmd *config = cmd_lookup("config", 6);

    cr_assert_eq(t_resolve("CONFIG NOSUCH x"), config);
    cr_assert_eq(t_resolve("CONFIG"), config);
    cr_assert_null(t_resolve("NOSUCH GET"));
    cr_assert_null(cmd_lookup_argv(0, NULL, NULL));
    /* a plain command ignores argv[1] */
    cr_assert_eq(t_resolve("GET config"), cmd_lookup("get", 3));
    cr_assert_null(cmd_lookup_sub(cmd_lookup("get", 3), "x", 1));
    cr_assert_null(cmd_lookup_sub(NULL, "get", 3));
    cr_assert_null(cmd_lookup_sub(config, "nosuch", 6));
}

Test(command_lookup, argvlen_may_be_null)
{
    const char *argv[] = { "Config", "Get", "x" };

    cr_assert_str_eq(cmd_lookup_argv(3, argv, NULL)->name, "get");
}

/* ---- arity ------------------------------------------------------------ */

Test(command_arity, exact_and_minimum)
{
    const struct cmd *get = cmd_lookup("get", 3), *set = cmd_lookup("set", 3);
    const struct cmd *cget = t_resolve("CONFIG GET x");

    cr_assert_eq(get->arity, 2);
    cr_assert(cmd_arity_ok(get, 2));
    cr_assert_not(cmd_arity_ok(get, 1));
    cr_assert_not(cmd_arity_ok(get, 3));
    cr_assert_eq(set->arity, -3);
    cr_assert_not(cmd_arity_ok(set, 2));
    cr_assert(cmd_arity_ok(set, 3));
    cr_assert(cmd_arity_ok(set, 7));
    /* a subcommand's arity counts the whole argv */
    cr_assert(cmd_arity_ok(cget, 3));
    cr_assert_not(cmd_arity_ok(cget, 2));
    cr_assert_not(cmd_arity_ok(NULL, 2));
}

/* ---- flags ------------------------------------------------------------ */

Test(command_flags, redis_flags)
{
    cr_expect(flags_of("GET k") & CMD_READONLY);
    cr_expect(flags_of("GET k") & CMD_FAST);
    cr_expect_not(flags_of("GET k") & CMD_WRITE);
    cr_expect(flags_of("SET k v") & CMD_WRITE);
    cr_expect(flags_of("SET k v") & CMD_DENYOOM);
    cr_expect_not(flags_of("SET k v") & CMD_READONLY);
    cr_expect(flags_of("EVAL_RO s 0") & CMD_READONLY);
    cr_expect(flags_of("EVAL s 0") & CMD_NO_MANDATORY_KEYS);
    cr_expect(flags_of("EVAL s 0") & CMD_MOVABLEKEYS);
    cr_expect(flags_of("PUBLISH c m") & CMD_PUBSUB);
    cr_expect(flags_of("SHUTDOWN") & CMD_ADMIN);
    cr_expect(flags_of("MULTI") & CMD_NOSCRIPT);
}

Test(command_flags, blocking_commands_pin)
{
    static const char *const blocking[] = {
        "BLPOP a 0", "BRPOP a 0", "BLMOVE a b LEFT LEFT 0", "BRPOPLPUSH a b 0",
        "BZPOPMIN a 0", "BZPOPMAX a 0", "BLMPOP 0 1 a LEFT", "BZMPOP 0 1 a MIN",
        "XREAD STREAMS a 0", "XREADGROUP GROUP g c STREAMS a >", "WAIT 1 0",
    };
    size_t i;

    for (i = 0; i < sizeof(blocking) / sizeof(blocking[0]); i++) {
        uint32_t f = flags_of(blocking[i]);

        cr_expect(f & CMD_BLOCKING, "%s: not blocking", blocking[i]);
        cr_expect(f & CMD_PROXY_PIN, "%s: not pinned", blocking[i]);
    }
    cr_expect_not(flags_of("LPOP a") & (CMD_BLOCKING | CMD_PROXY_PIN));
}

Test(command_flags, deny)
{
    cr_expect(flags_of("CONFIG SET maxmemory 0") & CMD_PROXY_DENY);
    cr_expect_not(flags_of("CONFIG GET maxmemory") & CMD_PROXY_DENY);
    cr_expect(flags_of("CONFIG REWRITE") & CMD_PROXY_DENY);
    cr_expect(flags_of("SHUTDOWN") & CMD_PROXY_DENY);
    cr_expect(flags_of("MODULE LIST") & CMD_PROXY_DENY);
    cr_expect(flags_of("MODULE LOAD x") & CMD_PROXY_DENY);
    cr_expect(flags_of("CLIENT KILL ID 1") & CMD_PROXY_DENY);
    cr_expect_not(flags_of("CLIENT LIST") & CMD_PROXY_DENY);
    cr_expect(flags_of("CLUSTER MEET h 1") & CMD_PROXY_DENY);
    cr_expect_not(flags_of("CLUSTER INFO") & CMD_PROXY_DENY);
    cr_expect(flags_of("ACL SETUSER u") & CMD_PROXY_DENY);
    cr_expect_not(flags_of("ACL WHOAMI") & CMD_PROXY_DENY);
    cr_expect(flags_of("MONITOR") & CMD_PROXY_DENY);
    /* an unresolved container is refused if any subcommand would be */
    cr_expect(flags_of("CONFIG NOSUCH") & CMD_PROXY_DENY);
    cr_expect_not(flags_of("GET k") & CMD_PROXY_DENY);
}

Test(command_flags, proxy_pin_txn_local_subscribe)
{
    cr_expect(flags_of("MULTI") & CMD_PROXY_TXN);
    cr_expect(flags_of("MULTI") & CMD_PROXY_PIN);
    cr_expect(flags_of("WATCH k") & CMD_PROXY_PIN);
    cr_expect(flags_of("EXEC") & CMD_PROXY_TXN);
    cr_expect(flags_of("UNWATCH") & CMD_PROXY_TXN);
    cr_expect(flags_of("SELECT 1") & CMD_PROXY_PIN);
    cr_expect(flags_of("CLIENT NO-EVICT on") & CMD_PROXY_PIN);
    cr_expect_not(flags_of("CLIENT GETNAME") & CMD_PROXY_PIN);
    /* The client's session (name, tracking, reply mode, RESET) is the proxy's. */
    cr_expect(flags_of("CLIENT SETNAME x") & CMD_PROXY_LOCAL);
    cr_expect_not(flags_of("CLIENT SETNAME x") & CMD_PROXY_PIN);
    cr_expect(flags_of("CLIENT TRACKING on") & CMD_PROXY_LOCAL);
    cr_expect(flags_of("RESET") & CMD_PROXY_LOCAL);
    cr_expect_not(flags_of("CLIENT LIST") & CMD_PROXY_LOCAL);
    cr_expect(flags_of("PING") & CMD_PROXY_LOCAL);
    cr_expect(flags_of("QUIT") & CMD_PROXY_LOCAL);
    cr_expect(flags_of("HELLO 3") & CMD_PROXY_LOCAL);
    cr_expect(flags_of("SUBSCRIBE c") & CMD_PROXY_SUBSCRIBE);
    cr_expect(flags_of("SUBSCRIBE c") & CMD_PROXY_PIN);
    cr_expect(flags_of("SSUBSCRIBE c") & CMD_PROXY_SUBSCRIBE);
    cr_expect(flags_of("MONITOR") & CMD_PROXY_SUBSCRIBE);
    /* Unsubscribing creates no state: a client that is not subscribed
     * keeps sharing the pool and gets one reply per channel. */
    cr_expect_not(flags_of("PUNSUBSCRIBE") & CMD_PROXY_PIN);
    cr_expect_not(flags_of("PUBLISH c m") & (CMD_PROXY_PIN | CMD_PROXY_SUBSCRIBE));
}

/* argc of a literal call, for cmd_replies / cmd_blocks. */
static int t_argc(const char *line)
{
    struct t_call c;
    t_split(&c, line);
    return c.argc;
}

Test(command_ops, replies_per_call)
{
    cr_expect_eq(cmd_replies(t_resolve("GET k"), t_argc("GET k")), 1);
    cr_expect_eq(cmd_replies(NULL, 3), 1);
    cr_expect_eq(cmd_replies(t_resolve("UNSUBSCRIBE"), 1), 1);
    cr_expect_eq(cmd_replies(t_resolve("UNSUBSCRIBE a"), 2), 1);
    cr_expect_eq(cmd_replies(t_resolve("UNSUBSCRIBE a b c"), t_argc("UNSUBSCRIBE a b c")), 3);
    cr_expect_eq(cmd_replies(t_resolve("PUNSUBSCRIBE a* b*"), t_argc("PUNSUBSCRIBE a* b*")), 2);
    cr_expect_eq(cmd_replies(t_resolve("SUNSUBSCRIBE a b"), t_argc("SUNSUBSCRIBE a b")), 2);
    cr_expect_eq(cmd_replies(t_resolve("MGET a b c"), t_argc("MGET a b c")), 1);
}

static int t_blocks(const char *line)
{
    struct t_call c;
    t_split(&c, line);
    return cmd_blocks(t_resolve(line), c.argc, c.argv, c.len);
}

Test(command_ops, blocking_calls)
{
    cr_expect(t_blocks("BLPOP l 0"));
    cr_expect(t_blocks("WAIT 1 0"));
    cr_expect(t_blocks("XREAD BLOCK 0 STREAMS s 0"));
    cr_expect(t_blocks("XREADGROUP GROUP g c BLOCK 10 STREAMS s >"));
    cr_expect_not(t_blocks("XREAD COUNT 1 STREAMS s 0"));
    cr_expect_not(t_blocks("XREAD STREAMS block 0"));   /* a stream named "block" */
    cr_expect_not(t_blocks("GET k"));
}

Test(command_ops, ops_are_data)
{
    cr_expect_eq(t_resolve("PING")->op, CMD_OP_PING);
    cr_expect_eq(t_resolve("MULTI")->op, CMD_OP_MULTI);
    cr_expect_eq(t_resolve("EXEC")->op, CMD_OP_EXEC);
    cr_expect_eq(t_resolve("DISCARD")->op, CMD_OP_DISCARD);
    cr_expect_eq(t_resolve("WATCH")->op, CMD_OP_WATCH);
    cr_expect_eq(t_resolve("UNWATCH")->op, CMD_OP_UNWATCH);
    cr_expect_eq(t_resolve("CLIENT REPLY OFF")->op, CMD_OP_CLIENT_REPLY);
    cr_expect_eq(t_resolve("CLIENT GETNAME")->op, CMD_OP_CLIENT_GETNAME);
    cr_expect_eq(t_resolve("CLIENT TRACKING on")->op, CMD_OP_CLIENT_TRACKING);
    cr_expect_eq(t_resolve("SSUBSCRIBE a")->op, CMD_OP_SUBSCRIBE);
    cr_expect_eq(t_resolve("CLIENT LIST")->op, CMD_OP_NONE);
    cr_expect_eq(t_resolve("GET k")->op, CMD_OP_NONE);
}

Test(command_flags, flush)
{
    cr_expect(flags_of("FLUSHALL") & CMD_PROXY_FLUSH);
    cr_expect(flags_of("FLUSHDB") & CMD_PROXY_FLUSH);
    cr_expect(flags_of("SWAPDB 0 1") & CMD_PROXY_FLUSH);
    cr_expect(flags_of("EVAL s 0") & CMD_PROXY_FLUSH);
    cr_expect(flags_of("EVALSHA s 0") & CMD_PROXY_FLUSH);
    cr_expect(flags_of("FCALL f 0") & CMD_PROXY_FLUSH);
    cr_expect_not(flags_of("EVAL_RO s 0") & CMD_PROXY_FLUSH);
    cr_expect_not(flags_of("FCALL_RO f 0") & CMD_PROXY_FLUSH);
    cr_expect_not(flags_of("SCRIPT FLUSH") & CMD_PROXY_FLUSH);
    cr_expect_not(flags_of("RESTORE k 0 x") & CMD_PROXY_FLUSH);
    cr_expect(flags_of("MOVE k 1") & CMD_PROXY_FLUSH);
    cr_expect(flags_of("COPY a b DB 1") & CMD_PROXY_FLUSH);
    /* INCOMPLETE key specs */
    cr_expect(flags_of("MIGRATE h 1 k 0 1") & CMD_PROXY_FLUSH);
    cr_expect(flags_of("SORT l") & CMD_PROXY_FLUSH);
    cr_expect_not(flags_of("SORT_RO l") & CMD_PROXY_FLUSH);
    cr_expect_not(flags_of("SET k v") & CMD_PROXY_FLUSH);
}

/* ---- key positions ---------------------------------------------------- */

Test(command_keys, single_and_ranges)
{
    expect_keys("GET k", 1, 1);
    expect_keys("get k", 1, 1);
    expect_keys("SET k v", 1, 1);
    expect_keys("SET k v EX 10 GET", 1, 1);
    expect_keys("MSET a 1 b 2 c 3", 3, 1, 3, 5);
    expect_keys("MGET a b c", 3, 1, 2, 3);
    expect_keys("DEL a", 1, 1);
    expect_keys("DEL a b c d", 4, 1, 2, 3, 4);
    expect_keys("RENAME a b", 2, 1, 2);
    expect_keys("LMOVE a b LEFT RIGHT", 2, 1, 2);
    expect_keys("BITOP AND dst a b", 3, 2, 3, 4);
    expect_keys("BLPOP a b 0", 2, 1, 2);
    expect_keys("PING", 0);
}

Test(command_keys, subcommands)
{
    expect_keys("OBJECT ENCODING k", 1, 2);
    expect_keys("XINFO STREAM k", 1, 2);
    expect_keys("XINFO STREAM k FULL COUNT 5", 1, 2);
    expect_keys("MEMORY USAGE k", 1, 2);
    expect_keys("MEMORY USAGE k SAMPLES 5", 1, 2);
    expect_keys("CONFIG GET maxmemory", 0);
}

Test(command_keys, eval_numkeys)
{
    expect_keys("EVAL return 0", 0);
    expect_keys("EVAL return 2 k1 k2", 2, 3, 4);
    expect_keys("EVAL return 2 k1 k2 arg1 arg2", 2, 3, 4);
    expect_keys("eval return 1 k1", 1, 3);
    expect_invalid("EVAL return x k1");
    expect_invalid("EVAL return -1 k1");
    expect_invalid("EVAL return 01 k1");
    expect_invalid("EVAL return 1x k1");
    expect_invalid("EVAL return '' k1");
    expect_invalid("EVAL return 3 k1 k2");
    expect_invalid("EVAL return 99999999999999999999 k1");
    expect_invalid("EVAL return");
    expect_keys("EVALSHA abc 1 k a", 1, 3);
    expect_keys("EVAL_RO return 1 k", 1, 3);
    expect_keys("FCALL f 2 a b x", 2, 3, 4);
    expect_keys("FCALL_RO f 1 a", 1, 3);
    expect_keys("FCALL f 0", 0);
}

Test(command_keys, numkeys_commands)
{
    expect_keys("ZUNIONSTORE dst 2 a b WEIGHTS 1 2", 3, 1, 3, 4);
    expect_keys("ZINTERSTORE dst 1 a", 2, 1, 3);
    expect_invalid("ZUNIONSTORE dst 3 a b");
    expect_keys("ZINTER 2 a b", 2, 2, 3);
    expect_keys("ZINTER 2 a b WITHSCORES", 2, 2, 3);
    expect_keys("ZDIFF 1 a", 1, 2);
    expect_keys("SINTERCARD 2 a b LIMIT 1", 2, 2, 3);
    expect_keys("LMPOP 2 a b LEFT", 2, 2, 3);
    expect_keys("LMPOP 1 a RIGHT COUNT 2", 1, 2);
    expect_keys("BLMPOP 0 2 a b LEFT", 2, 3, 4);
    expect_keys("BZMPOP 1.5 1 z MIN", 1, 3);
    expect_invalid("LMPOP x a LEFT");
}

Test(command_keys, streams_keyword)
{
    expect_keys("XREAD COUNT 2 STREAMS a b 0 0", 2, 4, 5);
    expect_keys("XREAD STREAMS a 0", 1, 2);
    expect_keys("xread block 0 streams a b c $ $ $", 3, 4, 5, 6);
    expect_keys("XREADGROUP GROUP g c STREAMS a b > >", 2, 5, 6);
    expect_keys("XREADGROUP GROUP g c COUNT 1 BLOCK 0 NOACK STREAMS a >", 1, 10);
    /* keyword missing: that spec finds nothing */
    expect_keys("XREAD COUNT 2", 0);
    /* nothing to split after STREAMS: Redis refuses the call */
    expect_invalid("XREAD STREAMS a");
}

Test(command_keys, sort_store)
{
    int out[T_MAXARGS];
    uint16_t fl[T_MAXARGS];

    expect_keys("SORT l", 1, 1);
    expect_keys("SORT l LIMIT 0 10 ALPHA", 1, 1);
    expect_keys("SORT l STORE dst", 2, 1, 3);
    expect_keys("SORT l BY w_* GET # GET o_* STORE dst", 2, 1, 9);
    expect_keys("SORT l STORE d1 STORE d2", 2, 1, 5);
    expect_keys("SORT_RO l BY w_* GET #", 1, 1);
    /* the STORE spec is INCOMPLETE (SORT's spec is "unknown" in Redis) */
    cr_assert_eq(t_keys("SORT l store dst", out, fl), 2);
    cr_expect_eq(fl[0], CMD_KS_RO);
    cr_expect_eq(fl[1], CMD_KS_OW | CMD_KS_INCOMPLETE);
}

Test(command_keys, migrate)
{
    int out[T_MAXARGS];
    uint16_t fl[T_MAXARGS];

    expect_keys("MIGRATE host 6379 k 0 5000", 1, 3);
    expect_keys("MIGRATE host 6379 k 0 5000 COPY REPLACE", 1, 3);
    /* KEYS form: argv[3] is the empty placeholder, which the spec names too */
    expect_keys("MIGRATE host 6379 '' 0 5000 KEYS a b", 3, 3, 7, 8);
    expect_keys("MIGRATE host 6379 '' 0 5000 COPY AUTH pw KEYS a", 2, 3, 10);
    cr_assert_eq(t_keys("MIGRATE host 6379 '' 0 5000 KEYS a b", out, fl), 3);
    cr_expect_eq(fl[0], CMD_KS_RW);
    cr_expect_eq(fl[1], CMD_KS_RW | CMD_KS_INCOMPLETE);
}

Test(command_keys, georadius_store)
{
    int out[T_MAXARGS];
    uint16_t fl[T_MAXARGS];

    expect_keys("GEORADIUS k 0 0 1 km", 1, 1);
    expect_keys("GEORADIUS k 0 0 1 km STORE dst", 2, 1, 7);
    expect_keys("GEORADIUS k 0 0 1 km WITHDIST COUNT 3 STOREDIST dst", 2, 1, 10);
    expect_keys("GEORADIUSBYMEMBER k m 1 km STORE dst", 2, 1, 6);
    /* STORE as the last argument names no key (and Redis refuses the call) */
    expect_keys("GEORADIUS k 0 0 1 km STORE", 1, 1);
    cr_assert_eq(t_keys("GEORADIUS k 0 0 1 km STORE dst", out, fl), 2);
    cr_expect_eq(fl[0], CMD_KS_RO);
    cr_expect_eq(fl[1], CMD_KS_OW);
}

Test(command_keys, flags_per_key)
{
    int out[T_MAXARGS];
    uint16_t fl[T_MAXARGS];

    cr_assert_eq(t_keys("GET k", out, fl), 1);
    cr_expect_eq(fl[0], CMD_KS_RO);
    cr_assert_eq(t_keys("DEL a b", out, fl), 2);
    cr_expect_eq(fl[1], CMD_KS_RM);
    cr_assert_eq(t_keys("RENAME a b", out, fl), 2);
    cr_expect_eq(fl[0], CMD_KS_RW);
    cr_expect_eq(fl[1], CMD_KS_OW);
    cr_assert_eq(t_keys("ZUNIONSTORE d 1 a", out, fl), 2);
    cr_expect_eq(fl[0], CMD_KS_OW);
    cr_expect_eq(fl[1], CMD_KS_RO);
}

Test(command_keys, total_may_exceed_max)
{
    struct t_call c;
    const struct cmd *mget;
    int out[2] = { -7, -7 };
    int guard = -7;

    t_split(&c, "MGET a b c d");
    mget = cmd_lookup_argv(c.argc, c.argv, c.len);
    cr_assert_eq(cmd_keys(mget, c.argc, c.argv, c.len, out, NULL, 1), 4);
    cr_expect_eq(out[0], 1);
    cr_expect_eq(out[1], -7);
    cr_assert_eq(cmd_keys(mget, c.argc, c.argv, c.len, &guard, NULL, 0), 4);
    cr_expect_eq(guard, -7);
    cr_assert_eq(cmd_keys(mget, c.argc, c.argv, NULL, NULL, NULL, 0), 4);
}

Test(command_keys, never_reads_past_argc)
{
    /* arity violations: keys would lie outside argv */
    expect_invalid("GET");
    expect_invalid("OBJECT ENCODING");
    expect_invalid("BITOP AND");
    expect_invalid("ZUNIONSTORE dst");
    cr_assert_eq(cmd_keys(NULL, 1, NULL, NULL, NULL, NULL, 0), -1);
}

/* ---- the table -------------------------------------------------------- */

static void check_sorted_lower(const struct cmd *tab, size_t n, const char *where)
{
    size_t i;

    for (i = 0; i < n; i++) {
        const char *p;

        cr_assert_not_null(tab[i].name);
        cr_assert(tab[i].name[0] != '\0', "%s[%zu]: empty name", where, i);
        for (p = tab[i].name; *p; p++) {
            cr_assert(!(*p >= 'A' && *p <= 'Z') && *p != '|' && *p != ' ',
                      "%s: name \"%s\" is not a lower-case plain name", where, tab[i].name);
        }
        if (i > 0) {
            cr_assert(strcmp(tab[i - 1].name, tab[i].name) < 0,
                      "%s: \"%s\" before \"%s\" breaks the order", where, tab[i - 1].name, tab[i].name);
        }
    }
}

static void check_specs(const struct cmd *c)
{
    unsigned j;

    cr_assert_eq(c->keyspecs == NULL, c->nkeyspecs == 0, "%s: keyspecs/nkeyspecs disagree", c->name);
    for (j = 0; j < c->nkeyspecs; j++) {
        const struct cmd_keyspec *ks = &c->keyspecs[j];

        cr_assert(ks->bs == CMD_BS_INDEX || ks->bs == CMD_BS_KEYWORD, "%s: bad begin_search", c->name);
        cr_assert(ks->fk == CMD_FK_RANGE || ks->fk == CMD_FK_KEYNUM, "%s: bad find_keys", c->name);
        cr_assert_eq(ks->bs == CMD_BS_KEYWORD, ks->bs_keyword != NULL, "%s: keyword", c->name);
        if (ks->bs == CMD_BS_INDEX) {
            cr_assert_gt(ks->bs_pos, 0, "%s: index", c->name);
        }
        cr_assert_gt(ks->fk == CMD_FK_RANGE ? ks->fk_b : ks->fk_c, 0, "%s: keystep", c->name);
    }
}

Test(command_table, sorted_lower_case_and_well_formed)
{
    size_t i, total = 0;

    cr_assert_geq(cmd_count(), 200);
    cr_assert_eq(cmd_count(), cmd_table_len);
    check_sorted_lower(cmd_table, cmd_table_len, "cmd_table");
    for (i = 0; i < cmd_table_len; i++) {
        const struct cmd *c = &cmd_table[i];
        size_t k;

        check_specs(c);
        cr_assert_eq(c->subcommands == NULL, c->nsubcommands == 0, "%s: subcommands", c->name);
        cr_assert_eq(cmd_lookup(c->name, strlen(c->name)), c, "%s: lookup", c->name);
        if (c->subcommands == NULL) {
            continue;
        }
        check_sorted_lower(c->subcommands, c->nsubcommands, c->name);
        for (k = 0; k < c->nsubcommands; k++) {
            const struct cmd *s = &c->subcommands[k];

            check_specs(s);
            cr_assert_null(s->subcommands);
            cr_assert_eq(cmd_lookup_sub(c, s->name, strlen(s->name)), s, "%s %s", c->name, s->name);
            total++;
        }
    }
    cr_assert_geq(total, 100);
}

Test(command_table, every_name_found_in_upper_case)
{
    size_t i;

    for (i = 0; i < cmd_table_len; i++) {
        char up[64];
        size_t n = strlen(cmd_table[i].name), k;

        cr_assert_lt(n, sizeof(up));
        for (k = 0; k < n; k++) {
            char ch = cmd_table[i].name[k];
            up[k] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
        }
        cr_assert_eq(cmd_lookup(up, n), &cmd_table[i], "%.*s", (int)n, up);
    }
}

/* --- ACL categories and key-spec operations (for proxy/acl.c) ------------ */

static uint32_t cats_of(const char *line)
{
    const struct cmd *c = t_resolve(line);

    cr_assert_not_null(c, "%s", line);
    return c->acl_categories;
}

/* As `COMMAND INFO` of redis-server 7.0.15 lists them (index 6). */
Test(command_categories, as_redis_lists_them)
{
    cr_expect_eq(cats_of("get k"), CMD_CAT_READ | CMD_CAT_STRING | CMD_CAT_FAST);
    cr_expect_eq(cats_of("flushall"),
                 CMD_CAT_KEYSPACE | CMD_CAT_WRITE | CMD_CAT_SLOW | CMD_CAT_DANGEROUS);
    cr_expect_eq(cats_of("config get x"), CMD_CAT_ADMIN | CMD_CAT_SLOW | CMD_CAT_DANGEROUS);
    cr_expect_eq(cats_of("config"), CMD_CAT_SLOW);    /* the container itself */
    cr_expect_eq(cats_of("set k v"), CMD_CAT_WRITE | CMD_CAT_STRING | CMD_CAT_SLOW);
    cr_expect_eq(cats_of("publish c m"), CMD_CAT_PUBSUB | CMD_CAT_FAST);
    cr_expect_eq(cats_of("blpop k 0"),
                 CMD_CAT_WRITE | CMD_CAT_LIST | CMD_CAT_SLOW | CMD_CAT_BLOCKING);
    cr_expect_eq(cats_of("multi"), CMD_CAT_FAST | CMD_CAT_TRANSACTION);
    cr_expect_eq(cats_of("eval s 0"), CMD_CAT_SLOW | CMD_CAT_SCRIPTING);
}

Test(command_categories, lookup_by_name_any_case)
{
    cr_expect_eq(cmd_cat_lookup("read", 4), CMD_CAT_READ);
    cr_expect_eq(cmd_cat_lookup("DANGEROUS", 9), CMD_CAT_DANGEROUS);
    cr_expect_eq(cmd_cat_lookup("readx", 4), CMD_CAT_READ);  /* len, not NUL */
    cr_expect_eq(cmd_cat_lookup("@read", 5), 0);
    cr_expect_eq(cmd_cat_lookup("all", 3), 0);   /* @all is a rule, not a category */
    cr_expect_eq(cmd_cat_lookup("", 0), 0);
}

Test(command_categories, names_in_redis_order)
{
    int i;

    cr_expect_eq(CMD_CATEGORY_COUNT, 21);
    cr_expect_str_eq(cmd_cat_name(0), "keyspace");
    cr_expect_str_eq(cmd_cat_name(CMD_CATEGORY_COUNT - 1), "scripting");
    cr_expect_null(cmd_cat_name(-1));
    cr_expect_null(cmd_cat_name(CMD_CATEGORY_COUNT));
    for (i = 0; i < CMD_CATEGORY_COUNT; i++) {
        const char *n = cmd_cat_name(i);

        cr_expect_eq(cmd_cat_lookup(n, strlen(n)), 1u << i, "%s", n);
    }
}

Test(command_categories, every_command_has_some_and_every_category_is_used)
{
    uint32_t seen = 0;
    size_t i, j;

    for (i = 0; i < cmd_table_len; i++) {
        const struct cmd *c = &cmd_table[i];

        cr_expect_neq(c->acl_categories, 0, "%s", c->name);
        seen |= c->acl_categories;
        for (j = 0; j < c->nsubcommands; j++) {
            cr_expect_neq(c->subcommands[j].acl_categories, 0, "%s|%s", c->name,
                          c->subcommands[j].name);
            seen |= c->subcommands[j].acl_categories;
        }
    }
    cr_expect_eq(seen, (uint32_t)((1ull << CMD_CATEGORY_COUNT) - 1));
}

Test(command_categories, no_auth_commands)
{
    cr_expect_eq(t_resolve("auth p")->acl_flags, CMD_ACL_NO_AUTH);
    cr_expect_eq(t_resolve("hello")->acl_flags, CMD_ACL_NO_AUTH);
    cr_expect_eq(t_resolve("quit")->acl_flags, CMD_ACL_NO_AUTH);
    cr_expect_eq(t_resolve("reset")->acl_flags, CMD_ACL_NO_AUTH);
    cr_expect_eq(t_resolve("get k")->acl_flags, 0);
    cr_expect_eq(t_resolve("ping")->acl_flags, 0);
}

/* Ops of each key, expected as `COMMAND GETKEYSANDFLAGS <line>` answers on
 * redis-server 7.0.15 (access/insert/delete/update). */
static void expect_ops(const char *line, int n, ...)
{
    struct t_call c;
    const struct cmd *cmd;
    int out[T_MAXARGS];
    uint8_t ops[T_MAXARGS];
    va_list ap;
    int i, got;

    t_split(&c, line);
    cmd = cmd_lookup_argv(c.argc, c.argv, c.len);
    cr_assert_not_null(cmd, "%s", line);
    got = cmd_keys_ops(cmd, c.argc, c.argv, c.len, out, ops, T_MAXARGS);
    cr_assert_eq(got, n, "%s: %d keys, expected %d", line, got, n);
    va_start(ap, n);
    for (i = 0; i < n; i++) {
        int pos = va_arg(ap, int);
        int op = va_arg(ap, int);

        cr_expect_eq(out[i], pos, "%s: key %d at %d, expected %d", line, i, out[i], pos);
        cr_expect_eq(ops[i], op, "%s: key %d ops %#x, expected %#x", line, i, ops[i], op);
    }
    va_end(ap);
}

#define A CMD_KS_OP_ACCESS
#define I CMD_KS_OP_INSERT
#define D CMD_KS_OP_DELETE
#define U CMD_KS_OP_UPDATE

Test(command_keys_ops, fixed_specs)
{
    expect_ops("get k", 1, 1, A);
    expect_ops("lpush k v", 1, 1, I);
    expect_ops("exists k", 1, 1, 0);
    expect_ops("type k", 1, 1, 0);
    expect_ops("del a b", 2, 1, D, 2, D);
    expect_ops("getdel k", 1, 1, A | D);
    expect_ops("rename a b", 2, 1, A | D, 2, U);
    expect_ops("copy a b", 2, 1, A, 2, U);
    expect_ops("lmove a b left left", 2, 1, A | D, 2, I);
    expect_ops("xadd s * f v", 1, 1, U);
    expect_ops("eval s 2 a b", 2, 3, A | U, 4, A | U);
    expect_ops("sort k store d", 2, 1, A, 3, U);
    /* Redis (migrateGetKeys) leaves out the empty key before KEYS; the key
     * specs, read as they are, keep it: cmd_keys() returns it too. */
    expect_ops("migrate h 1 '' 0 10 keys a b", 3, 3, A | D, 7, A | D, 8, A | D);
    expect_ops("georadius k 1 1 1 km store d", 2, 1, A, 7, U);
}

Test(command_keys_ops, variable_specs_resolved)
{
    expect_ops("set k v", 1, 1, U);
    expect_ops("set k v get", 1, 1, A | U);
    expect_ops("set k v nx GET", 1, 1, A | U);
    expect_ops("bitfield k get u8 0", 1, 1, A);
    expect_ops("bitfield k get u8 0 overflow sat", 1, 1, A);
    expect_ops("bitfield k set u8 0 1", 1, 1, A | U);
    expect_ops("bitfield k get u8", 1, 1, A | U);   /* incomplete GET: not read-only */
    expect_ops("bitfield k", 1, 1, A);
}

#undef A
#undef I
#undef D
#undef U
