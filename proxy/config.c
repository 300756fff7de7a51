/*
 * proxy/config.c — the directive table and the three loaders that fill
 * struct config from it.
 *
 *   defaults (table) ──────────────────────────┐
 *   redsnano.conf ──config_split──┐            v
 *   REDSNANO_<NAME> ─config_split─┼─> directive_set(row, values) ─> struct config
 *   --name v1 v2 ... ─────────────┘            ^
 *                                   directive_table[]: one row per directive
 *
 * Contract:
 * - directive_table[] is the only list of directives: parsing, defaults,
 *   environment names, --help and the README's markdown table are all
 *   generated from it. A row names the field (type-checked at compile time),
 *   the value type, the default as it would be written in the file, bounds
 *   and a one-line help.
 * - Levels are applied from lowest to highest (default, file, environment,
 *   command line), so a later level overwrites an earlier one. A repeatable
 *   list (replica, sentinel) appends within a level and is emptied the first
 *   time a higher level sets it.
 * - Every value is checked when set; messages say which directive, what was
 *   wrong and what is accepted. config_load() adds the place ("file:line: ",
 *   "environment REDSNANO_X: ", "command line: ").
 * - Environment variables are looked up per directive; other REDSNANO_*
 *   variables are ignored (the environment is shared with other programs).
 *   A variable that is empty or blank counts as unset.
 * - Nothing here logs: errors travel in the caller's err buffer.
 */
#include "proxy/config.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/acl.h"

#ifndef REDSNANO_VERSION
#define REDSNANO_VERSION "dev"
#endif

extern char **environ;

/* Named limits of the directive table. */
#define MS_MAX INT_MAX                   /* milliseconds: ~24.8 days */
#define L1_MAX_FILL_CONNECTIONS 16       /* l1-fill-connections: what the L1 holds (l1/internal.h) */
#define TIMEOUT_MAX (365 * 24 * 3600)    /* client idle timeout: one year, in seconds */
#define BACKEND_CONNECTIONS_MAX BACKEND_MAX_CONNS /* shared connections per backend: what a pool holds */
#define MAXCLIENTS_MAX 1000000           /* clients at once */
#define ENV_PREFIX "REDSNANO_"           /* environment variable = prefix + NAME */
#define ENV_NAME_LEN 64                  /* longest environment variable name we build */
#define SHOW_MAX 60                      /* bytes of a bad value quoted in a message */
#define SUGGEST_MAX_DISTANCE 2           /* "did you mean" only this close */

/* What kind of value a directive takes, and so how it is parsed and stored. */
enum dtype {
    DT_INT,          /* int, decimal, in [min, max] */
    DT_MS,           /* int milliseconds, decimal, in [min, max] */
    DT_BOOL,         /* bool: yes | no */
    DT_STRING,       /* char *, always allocated; DF_NONEMPTY rejects "" */
    DT_OPTSTRING,    /* char *, NULL when unset or "" */
    DT_ENUM,         /* enum stored as int: index into names[] */
    DT_MEMORY,       /* long long bytes, config_parse_memory(), in [min, max] */
    DT_ADDR,         /* struct hostport */
    DT_ADDRLIST,     /* struct hostport[CONFIG_MAX_ADDRS] + int count; repeatable */
    DT_COMMANDS,     /* char *, space separated upper-case names out of names[] */
    DT_USERS,        /* struct config_users: NAME rules...; repeatable, checked by proxy/acl */
    DT_OBUF,         /* struct obuf_limit[OBUF_CLASSES]: `class hard soft seconds`, repeatable */
    DT_MEMPCT,       /* struct mempct: a memory size, or N% */
    DT_FRACTION,     /* double, decimal, in [0, 1] */
};

#define DF_NONEMPTY 0x1  /* DT_STRING: "" is not a valid value */

/* One row of the directive table. */
struct directive {
    const char *name;           /* as written in the file, lower case */
    enum dtype type;            /* how the value is parsed and stored */
    size_t off;                 /* offset of the field in struct config */
    size_t count_off;           /* DT_ADDRLIST: offset of the int count */
    const char *def;            /* default as file text; NULL = none (field zero/NULL) */
    long long min, max;         /* DT_INT, DT_MS, DT_MEMORY: accepted range */
    const char *const *names;   /* DT_ENUM, DT_COMMANDS: accepted words, NULL ended */
    unsigned flags;             /* DF_* */
    const char *help;           /* one line for --help and the README */
};

/* Offset of field f of struct config, which must have type t (else a
 * negative array size stops the build). */
#define CFG_FIELD(f, t)                                                        \
    (offsetof(struct config, f) +                                              \
     0 * sizeof(char[__builtin_types_compatible_p(                             \
                         __typeof__(((struct config *)0)->f), t) ? 1 : -1]))

#define ROW_INT(n, f, d, lo, hi, h)  { n, DT_INT, CFG_FIELD(f, int), 0, d, lo, hi, NULL, 0, h }
#define ROW_MS(n, f, d, lo, hi, h)   { n, DT_MS, CFG_FIELD(f, int), 0, d, lo, hi, NULL, 0, h }
#define ROW_BOOL(n, f, d, h)         { n, DT_BOOL, CFG_FIELD(f, bool), 0, d, 0, 0, NULL, 0, h }
#define ROW_STR(n, f, d, fl, h)      { n, DT_STRING, CFG_FIELD(f, char *), 0, d, 0, 0, NULL, fl, h }
#define ROW_OPTSTR(n, f, h)          { n, DT_OPTSTRING, CFG_FIELD(f, char *), 0, NULL, 0, 0, NULL, 0, h }
#define ROW_ENUM(n, f, t, d, w, h)   { n, DT_ENUM, CFG_FIELD(f, t), 0, d, 0, 0, w, 0, h }
#define ROW_MEM(n, f, d, lo, hi, h)  { n, DT_MEMORY, CFG_FIELD(f, long long), 0, d, lo, hi, NULL, 0, h }
#define ROW_ADDR(n, f, d, h)         { n, DT_ADDR, CFG_FIELD(f, struct hostport), 0, d, 0, 0, NULL, 0, h }
#define ROW_ADDRS(n, f, c, h)                                                  \
    { n, DT_ADDRLIST, CFG_FIELD(f, struct hostport[CONFIG_MAX_ADDRS]),      \
      CFG_FIELD(c, int), NULL, 0, 0, NULL, 0, h }
#define ROW_USERS(n, f, h)           { n, DT_USERS, CFG_FIELD(f, struct config_users), 0, NULL, 0, 0, NULL, 0, h }
#define ROW_OBUF(n, f, d, h)                                                   \
    { n, DT_OBUF, CFG_FIELD(f, struct obuf_limit[OBUF_CLASSES]), 0, d, 0, 0, obuf_class_names, 0, h }
#define ROW_MEMPCT(n, f, d, h)       { n, DT_MEMPCT, CFG_FIELD(f, struct mempct), 0, d, 0, 0, NULL, 0, h }
#define ROW_FRACTION(n, f, d, h)     { n, DT_FRACTION, CFG_FIELD(f, double), 0, d, 0, 1, NULL, 0, h }
#define ROW_CMDS(n, f, d, w, h)      { n, DT_COMMANDS, CFG_FIELD(f, char *), 0, d, 0, 0, w, 0, h }

/* Enum words, in the order of the enum's values. */
static const char *const loglevel_names[] = { "debug", "verbose", "notice", "warning", "nothing", NULL };
static const char *const read_policy_names[] = {
    "primary", "replica", "prefer-replica", "nearest", "round-robin", NULL };
static const char *const l1_mode_names[] = { "tracking", "strict", NULL };
static const char *const l1_tracking_names[] = { "broadcast", "keys", NULL };
static const char *const tls_auth_names[] = { "yes", "no", "optional", NULL }; /* enum tls_auth */
/* client-output-buffer-limit classes, in enum obuf_class order ("slave" is
 * accepted for replica, as Redis does). */
static const char *const obuf_class_names[] = { "normal", "replica", "pubsub", NULL };
/* Commands whose replies L1 may cache. */
static const char *const l1_command_names[] = {
    "GET", "HGET", "HGETALL", "LRANGE", "SMEMBERS", "ZRANGE", NULL };

_Static_assert(sizeof(enum loglevel) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum read_policy) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum l1_mode) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum l1_tracking) == sizeof(int), "enums are stored as int");

/* THE directive table, grouped as struct config is. Adding a directive =
 * adding a row here, a field in config.h and a paragraph in redsnano.conf. */
static const struct directive directive_table[] = {
    /* core */
    ROW_INT("port", port, "7379", 0, 65535,
            "TCP port to listen on; 0 = no TCP listener"),
    ROW_STR("bind", bind, "127.0.0.1", DF_NONEMPTY,
            "Address to listen on: one IP address or host name"),
    ROW_OPTSTR("unixsocket", unixsocket,
               "Path of a Unix socket to listen on as well; \"\" = none"),
    ROW_ADDR("primary", primary, "127.0.0.1:6379",
             "The primary Redis server; it receives all writes"),
    ROW_INT("backend-connections", backend_connections, "1", 1, BACKEND_CONNECTIONS_MAX,
            "Connections to each backend, shared by all clients (one pipelined connection gives Redis the biggest batches; more avoid head-of-line waits behind huge replies)"),
    ROW_INT("backend-spare-connections", backend_spares, "2", 0, BACKEND_MAX_SPARES,
            "Connected spare connections kept per backend, so that a client starting MULTI, a blocking command or SUBSCRIBE gets its own connection at once"),
    ROW_MS("backend-timeout", backend_timeout, "5000", 0, MS_MAX,
           "Milliseconds a backend may take to answer; 0 = no limit"),
    ROW_MS("connect-timeout", connect_timeout, "1000", 1, MS_MAX,
           "Milliseconds to establish a backend connection"),
    ROW_ENUM("loglevel", loglevel, enum loglevel, "notice", loglevel_names,
             "How much to log"),
    ROW_STR("logfile", logfile, "", 0,
            "File to append log lines to; \"\" = standard error"),
    ROW_INT("maxclients", maxclients, "10000", 1, MAXCLIENTS_MAX,
            "Most clients connected at once; more are refused with an error"),
    ROW_INT("timeout", timeout, "0", 0, TIMEOUT_MAX,
            "Close a client idle for this many seconds; 0 = never"),
    ROW_MEM("proto-max-bulk-len", proto_max_bulk_len, "512mb", 1, LLONG_MAX,
            "Largest bulk string accepted in a request"),
    ROW_MEM("client-query-buffer-limit", client_query_buffer_limit, "1gb", 1, LLONG_MAX,
            "Most unprocessed input kept per client; a client over it is closed"),
    ROW_BOOL("allow-admin-commands", allow_admin_commands, "no",
             "Forward commands that change a server (CONFIG SET/REWRITE/RESETSTAT, SHUTDOWN, DEBUG, REPLICAOF, FAILOVER, SAVE, BGSAVE, MODULE, ACL SETUSER/DELUSER, CLUSTER changes, MONITOR, CLIENT KILL/PAUSE) instead of refusing them"),

    /* bounded resources under hostile clients */
    ROW_OBUF("client-output-buffer-limit", client_obuf,
             "normal 0 0 0 replica 256mb 64mb 60 pubsub 32mb 8mb 60",
             "class hard soft soft-seconds: output the proxy holds for a client of a class (normal; pubsub = subscribed; replica is accepted, unused), as Redis: a client over its hard limit, or over its soft limit for soft-seconds, is closed; 0 = no limit; a line may set one class or several"),
    ROW_MEM("client-backpressure-limit", client_backpressure, "16mb", 1, LLONG_MAX,
            "Bytes of replies a client may have unsent plus expected (in flight, estimated from its recent reply sizes) before its next requests wait until it reads; the shared backend connection is read on meanwhile, so other clients do not wait behind it"),
    ROW_MEMPCT("maxmemory-clients", maxmemory_clients, "0",
               "Memory held for all clients' input and output (partial requests, unsent replies); over it, the clients holding the most are closed first; N% = percent of the machine's physical memory (or of the cgroup limit when lower); 0 = off"),

    /* replicas, Sentinel, health */
    ROW_ADDRS("replica", replicas, nreplicas,
              "A replica that may serve reads; repeat the directive for each replica"),
    ROW_ADDRS("sentinel", sentinels, nsentinels,
              "A Sentinel to ask for the primary and replicas; repeat for each Sentinel"),
    ROW_ADDRS("cluster", cluster, ncluster,
              "A Redis Cluster node to learn the slot map from; repeat for more seeds. Turns on cluster mode: keys go to their slot's primary, MOVED/ASK are followed"),
    ROW_OPTSTR("sentinel-master", sentinel_master,
               "Name of the master the Sentinels monitor; required with sentinel"),
    ROW_OPTSTR("sentinel-password", sentinel_password,
               "Password sent with AUTH to the Sentinels; \"\" = none"),
    ROW_ENUM("read-policy", read_policy, enum read_policy, "prefer-replica", read_policy_names,
             "Where reads go: primary; replica (primary if none is healthy); prefer-replica; "
             "nearest (lowest latency); round-robin (all healthy backends)"),
    ROW_MS("health-interval", health_interval, "1000", 1, MS_MAX,
           "Milliseconds between health checks of each backend"),
    ROW_MS("health-timeout", health_timeout, "500", 1, MS_MAX,
           "Milliseconds a health check may take before it counts as failed"),
    ROW_MEM("replica-max-lag", replica_max_lag, "1mb", 0, LLONG_MAX,
            "Bytes of replication offset a replica may trail the primary and still serve reads; 0 = lag not checked"),
    ROW_MS("read-your-writes", read_your_writes, "1000", 0, MS_MAX,
           "Milliseconds a client's reads go to the primary after it writes; 0 = off"),

    /* L1: the in-process cache */
    ROW_MEM("l1-maxmemory", l1_maxmemory, "0", 0, LLONG_MAX,
            "Memory for the in-process L1 cache; 0 = L1 off"),
    ROW_ENUM("l1-mode", l1_mode, enum l1_mode, "tracking", l1_mode_names,
             "tracking: entries are served until Redis reports a change (CLIENT TRACKING) and revalidated by hash checks when reports may have been lost; strict: every hit is a hash check on the primary"),
    ROW_MS("l1-max-ttl", l1_max_ttl, "60000", 1, MS_MAX,
           "Milliseconds an L1 entry may live at most"),
    ROW_CMDS("l1-commands", l1_commands, "GET", l1_command_names,
             "Read commands whose replies L1 caches"),
    ROW_BOOL("l1-serve-stale", l1_serve_stale, "no",
             "Serve L1 entries while the primary is unreachable"),
    ROW_MS("l1-revalidate-after", l1_revalidate_after, "0", 0, MS_MAX,
           "Milliseconds after which an L1 entry is revalidated in the background; 0 = never"),
    ROW_ENUM("l1-tracking", l1_tracking, enum l1_tracking, "broadcast", l1_tracking_names,
             "How Redis reports changes to the L1: broadcast (CLIENT TRACKING BCAST: every write, no per-key table in Redis, fills ride the client's own connection) or keys (Redis remembers each key the L1 read, up to tracking-table-max-keys)"),
    ROW_INT("l1-fill-connections", l1_fill_connections, "4", 1, L1_MAX_FILL_CONNECTIONS,
            "The L1's own connections to the primary (cluster mode: to each primary node) for hash checks and for fills of clients with no request there (l1-tracking keys: every fill)"),
    ROW_BOOL("l1-admission", l1_admission, "yes",
             "TinyLFU admission: a missed read is filled into the L1 only when it was read before lately (and, with the L1 full, more often than the entry it would evict), or, while the L1 has room and at least half of the recent reads were hits, at its first read; others are forwarded as plain reads"),
    ROW_INT("l1-ttl-jitter", l1_ttl_jitter, "10", 0, 100,
            "Percent by which each L1 entry's lifetime is shortened at random, so that entries filled together do not expire together"),
    ROW_FRACTION("l1-audit-rate", l1_audit_rate, "0",
                 "Fraction of L1 hits also hash-checked against the primary in the background; stale ones are counted with their age (l1_audit_stale)"),
    ROW_OPTSTR("l1-snapshot-file", l1_snapshot_file,
               "File the L1's entries are written to (atomically: temporary file, fsync, rename) and loaded from at start; a loaded entry is served only after a hash check finds it current; a bad file is logged and ignored; \"\" = none"),
    ROW_INT("l1-snapshot-interval", l1_snapshot_interval, "300", 0, 86400,
            "Seconds between L1 snapshots (also written at a clean exit); 0 = only at a clean exit"),

    /* operations: HTTP, latency */
    ROW_INT("http-port", http_port, "0", 0, 65535,
            "TCP port (on bind) for HTTP: GET /metrics (Prometheus), /healthz, /readyz, GET/PUT/DELETE /cache/{key}; 0 = off"),
    ROW_MEM("http-max-body", http_max_body, "1mb", 1, LLONG_MAX,
            "Largest HTTP request body (PUT /cache); a bigger request is answered 413 and closed"),
    ROW_MS("http-timeout", http_timeout, "10000", 1, MS_MAX,
           "Milliseconds an HTTP client may take to send a whole request (and may stay idle); then it is closed"),
    ROW_INT("slowlog-log-slower-than", slowlog_log_slower_than, "10000", -1, INT_MAX,
            "Microseconds from reading a request to its complete reply at or above which a request enters REDSNANO SLOWLOG; -1 = off, 0 = every request"),
    ROW_INT("slowlog-max-len", slowlog_max_len, "128", 0, 1000000,
            "Entries REDSNANO SLOWLOG keeps (the oldest is dropped)"),
    /* security: credentials, ACL users, protected mode, TLS */
    ROW_OPTSTR("backend-user", backend_user,
               "ACL user the proxy authenticates as on every backend connection (pools, pinned, health, L1, replicas, discovered nodes); \"\" = AUTH with the password only"),
    ROW_OPTSTR("backend-password", backend_password,
               "Password sent with AUTH on every backend connection; \"\" = none"),
    ROW_OPTSTR("requirepass", requirepass,
               "Password of the proxy's default user: clients must AUTH first; \"\" = none"),
    ROW_USERS("user", users,
              "A proxy ACL user with Redis's ACL rules (on, >password, ~pattern, %R~, +@category, -command...); repeat for each user"),
    ROW_BOOL("protected-mode", protected_mode, "yes",
             "With no requirepass and no user, refuse clients from non-loopback addresses (Redis's DENIED)"),
    ROW_INT("tls-port", tls_port, "0", 0, 65535,
            "TCP port for TLS clients (on bind); 0 = none"),
    ROW_OPTSTR("tls-cert-file", tls_cert_file,
               "Certificate (PEM) the TLS port presents"),
    ROW_OPTSTR("tls-key-file", tls_key_file,
               "Private key (PEM) of tls-cert-file; \"\" = inside the certificate file"),
    ROW_OPTSTR("tls-ca-cert-file", tls_ca_cert_file,
               "CA bundle (PEM) client certificates are verified against"),
    ROW_ENUM("tls-auth-clients", tls_auth_clients, int, "yes", tls_auth_names,
             "Client certificates: required (yes), not asked for (no), verified if sent (optional)"),
    ROW_OPTSTR("tls-protocols", tls_protocols,
               "TLS versions accepted, e.g. \"TLSv1.2 TLSv1.3\"; \"\" = TLSv1.2 and TLSv1.3"),
    ROW_OPTSTR("tls-ciphers", tls_ciphers,
               "TLS 1.2 cipher list (OpenSSL syntax); \"\" = OpenSSL's default"),
    ROW_OPTSTR("tls-ciphersuites", tls_ciphersuites,
               "TLS 1.3 cipher suites (OpenSSL syntax); \"\" = OpenSSL's default"),
    ROW_BOOL("backend-tls", backend_tls, "no",
             "Connect to every backend (primary, replicas, cluster nodes) with TLS"),
    ROW_OPTSTR("backend-tls-ca-cert-file", backend_tls_ca_cert_file,
               "CA bundle (PEM) backends' certificates are verified against; \"\" = the system's"),
    ROW_OPTSTR("backend-tls-cert-file", backend_tls_cert_file,
               "Client certificate (PEM) presented to backends; \"\" = none"),
    ROW_OPTSTR("backend-tls-key-file", backend_tls_key_file,
               "Private key (PEM) of backend-tls-cert-file"),
    ROW_OPTSTR("backend-tls-server-name", backend_tls_server_name,
               "Name backends' certificates must match (and SNI); \"\" = each backend's host"),
    ROW_BOOL("sentinel-tls", sentinel_tls, "no",
             "Connect to the Sentinels with TLS, verified with backend-tls-ca-cert-file (and presenting "
             "backend-tls-cert-file): each Sentinel's certificate must match its host"),
};

#define NDIRECTIVES ((int)(sizeof(directive_table) / sizeof(directive_table[0])))

/* Where a value came from; higher wins. */
enum level { LEVEL_DEFAULT = 0, LEVEL_FILE, LEVEL_ENV, LEVEL_CMDLINE };

/* A growable array of owned strings: the values of one line. */
struct args {
    char **v;        /* the strings, each malloc'ed */
    int n;           /* how many */
    int cap;         /* allocated slots */
};

/* ---------------------------------------------------------------- helpers */

/* snprintf for messages, which are cut to the caller's buffer on purpose
 * (through vsnprintf, which the compiler does not warn about). */
static void msgf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void msgf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static void *field(struct config *cfg, const struct directive *d)
{
    return (char *)cfg + d->off;
}

static const struct directive *directive_find(const char *name)
{
    for (int i = 0; i < NDIRECTIVES; i++)
        if (strcasecmp(directive_table[i].name, name) == 0)
            return &directive_table[i];
    return NULL;
}

/* Levenshtein distance, or INT_MAX when a string is too long to bother. */
static int edit_distance(const char *a, const char *b)
{
    enum { N = 64 };
    int prev[N + 1], cur[N + 1];
    size_t la = strlen(a), lb = strlen(b);

    if (la > N || lb > N)
        return INT_MAX;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) !=
                                     tolower((unsigned char)b[j - 1]));
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

/* The directive closest to an unknown name, or NULL if none is close. */
static const char *directive_suggest(const char *name)
{
    const char *best = NULL;
    int bestd = SUGGEST_MAX_DISTANCE + 1;

    for (int i = 0; i < NDIRECTIVES; i++) {
        int dist = edit_distance(name, directive_table[i].name);
        if (dist < bestd) {
            bestd = dist;
            best = directive_table[i].name;
        }
    }
    return best;
}

static void unknown_directive(const char *prefix, const char *name, char *err, size_t errlen)
{
    const char *s = directive_suggest(name);

    if (s != NULL)
        msgf(err, errlen, "unknown directive %s%s (did you mean %s%s?)", prefix, name, prefix, s);
    else
        msgf(err, errlen, "unknown directive %s%s (redsnano --help lists them)", prefix, name);
}

/* Quote s for a message: "..." with escapes, cut after SHOW_MAX bytes. */
static void show(const char *s, char *buf, size_t len)
{
    size_t o = 0, i;

    if (len < 8)
        return;
    buf[o++] = '"';
    for (i = 0; s[i] != '\0' && i < SHOW_MAX && o + 6 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (isprint(c)) {
            buf[o++] = (char)c;
        } else {
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
        }
    }
    if (s[i] != '\0' && o + 5 < len) {
        memcpy(buf + o, "\"...", 4);
        o += 4;
    } else {
        buf[o++] = '"';
    }
    buf[o] = '\0';
}

/* Join NULL-ended words with sep into buf. */
static void join_words(const char *const *w, const char *sep, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (int i = 0; w[i] != NULL && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? sep : "", w[i]);
}

/* What a directive accepts, as a noun phrase: "an integer in 0..65535". */
static void describe(const struct directive *d, char *buf, size_t len)
{
    char words[256];

    switch (d->type) {
    case DT_INT:
        msgf(buf, len, "an integer in %lld..%lld", d->min, d->max);
        break;
    case DT_MS:
        msgf(buf, len, "a number of milliseconds in %lld..%lld", d->min, d->max);
        break;
    case DT_FRACTION:
        msgf(buf, len, "a number in 0..1 (0.01 = one in a hundred)");
        break;
    case DT_BOOL:
        msgf(buf, len, "yes or no");
        break;
    case DT_STRING:
        msgf(buf, len, "%s", (d->flags & DF_NONEMPTY) ? "a non-empty string" : "a string");
        break;
    case DT_OPTSTRING:
        msgf(buf, len, "a string, or \"\" for none");
        break;
    case DT_ENUM:
        join_words(d->names, "|", words, sizeof(words));
        msgf(buf, len, "one of %s", words);
        break;
    case DT_MEMORY:
        if (d->max == LLONG_MAX)
            msgf(buf, len, "a memory size >= %lld (bytes, or with suffix k/m/g = 1000, "
                     "kb/mb/gb = 1024)", d->min);
        else
            msgf(buf, len, "a memory size in %lld..%lld (bytes, or with suffix k/m/g = "
                     "1000, kb/mb/gb = 1024)", d->min, d->max);
        break;
    case DT_ADDR:
        msgf(buf, len, "host:port or [ipv6]:port with a port in 1..65535");
        break;
    case DT_ADDRLIST:
        msgf(buf, len, "host:port or [ipv6]:port with a port in 1..65535 "
                 "(repeatable, at most %d)", CONFIG_MAX_ADDRS);
        break;
    case DT_COMMANDS:
        join_words(d->names, " ", words, sizeof(words));
        msgf(buf, len, "one or more of %s", words);
        break;
    case DT_USERS:
        msgf(buf, len, "a user name followed by ACL rules (repeatable, at most %d)", CONFIG_MAX_USERS);
        break;
    case DT_OBUF:
        join_words(d->names, "|", words, sizeof(words));
        msgf(buf, len, "groups of: class hard soft soft-seconds (class %s, sizes as "
                 "memory sizes, seconds an integer >= 0)", words);
        break;
    case DT_MEMPCT:
        msgf(buf, len, "a memory size >= 0 (bytes, or with suffix k/m/g = 1000, kb/mb/gb = 1024), "
                 "or a percentage 1%%..100%%");
        break;
    }
}

static int bad_value(const struct directive *d, const char *value, char *err, size_t errlen)
{
    char shown[SHOW_MAX * 4 + 8], what[512];

    show(value, shown, sizeof(shown));
    describe(d, what, sizeof(what));
    msgf(err, errlen, "%s: %s is not %s", d->name, shown, what);
    return -1;
}

/* Strict decimal: optional sign, digits, nothing else. Returns 0 or -1. */
static int parse_ll(const char *s, long long *out)
{
    const char *digits = (s[0] == '-' || s[0] == '+') ? s + 1 : s;
    char *end;
    long long v;

    if (!isdigit((unsigned char)digits[0]))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int config_parse_memory(const char *s, long long *out)
{
    static const struct { const char *suffix; long long mul; } units[] = {
        { "", 1 }, { "b", 1 },
        { "k", 1000LL }, { "kb", 1024LL },
        { "m", 1000LL * 1000 }, { "mb", 1024LL * 1024 },
        { "g", 1000LL * 1000 * 1000 }, { "gb", 1024LL * 1024 * 1024 },
    };
    const char *p = s;
    long long v = 0, r;

    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++)
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
            return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(p, units[i].suffix) == 0) {
            if (__builtin_mul_overflow(v, units[i].mul, &r))
                return -1;
            *out = r;
            return 0;
        }
    }
    return -1;
}

int config_parse_addr(const char *s, struct hostport *out)
{
    const char *host, *hend, *port;
    size_t hlen;
    long long p;

    if (s[0] == '[') {                       /* [v6]:port */
        host = s + 1;
        hend = strchr(host, ']');
        if (hend == NULL || hend[1] != ':')
            return -1;
        port = hend + 2;
    } else {                                 /* host:port; a bare v6 literal is ambiguous */
        hend = strchr(s, ':');
        if (hend == NULL || strchr(hend + 1, ':') != NULL)
            return -1;
        host = s;
        port = hend + 1;
    }
    hlen = (size_t)(hend - host);
    if (hlen == 0 || hlen >= sizeof(out->host))
        return -1;
    for (const char *c = host; c < hend; c++)
        if (isspace((unsigned char)*c) || *c == '[' || *c == ']' || *c == '/')
            return -1;
    if (strlen(port) > 5 || !isdigit((unsigned char)port[0]) || parse_ll(port, &p) < 0 ||
        p < 1 || p > 65535)
        return -1;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (int)p;
    return 0;
}

/* Replace a string field, taking ownership of v. */
static void set_string(char **slot, char *v)
{
    free(*slot);
    *slot = v;
}

static int oom(char *err, size_t errlen)
{
    msgf(err, errlen, "out of memory");
    return -1;
}

/* l1-commands: words (possibly several per value) from names[], upper-cased,
 * duplicates dropped, stored space separated. */
static int set_commands(struct config *cfg, const struct directive *d, int argc,
                        const char *const *argv, char *err, size_t errlen)
{
    size_t total = 1;
    char *out, *o;
    int nwords = 0;

    for (int i = 0; i < argc; i++)
        total += strlen(argv[i]) + 1;
    out = malloc(total);
    if (out == NULL)
        return oom(err, errlen);
    o = out;
    *o = '\0';
    for (int i = 0; i < argc; i++) {
        const char *p = argv[i];
        for (;;) {
            char word[32];
            size_t n = 0;
            int k;

            while (isspace((unsigned char)*p))
                p++;
            if (*p == '\0')
                break;
            while (*p != '\0' && !isspace((unsigned char)*p)) {
                if (n + 1 < sizeof(word))
                    word[n] = (char)toupper((unsigned char)*p);
                n++;
                p++;
            }
            word[n < sizeof(word) ? n : sizeof(word) - 1] = '\0';
            for (k = 0; d->names[k] != NULL; k++)
                if (n < sizeof(word) && strcmp(d->names[k], word) == 0)
                    break;
            if (d->names[k] == NULL) {
                char shown[SHOW_MAX * 4 + 8], accepted[256];
                char *bad = strndup(p - n, n);
                show(bad != NULL ? bad : word, shown, sizeof(shown));
                free(bad);
                join_words(d->names, " ", accepted, sizeof(accepted));
                msgf(err, errlen, "%s: %s is not a command L1 can cache; accepted: %s",
                         d->name, shown, accepted);
                free(out);
                return -1;
            }
            /* skip a duplicate: search " WORD " in " out " */
            bool dup = false;
            for (const char *q = out; (q = strstr(q, word)) != NULL; q += n)
                if ((q == out || q[-1] == ' ') && (q[n] == ' ' || q[n] == '\0'))
                    dup = true;
            if (dup)
                continue;
            o += sprintf(o, "%s%s", nwords ? " " : "", word);
            nwords++;
        }
    }
    if (nwords == 0) {
        char what[256];
        describe(d, what, sizeof(what));
        msgf(err, errlen, "%s: expects %s", d->name, what);
        free(out);
        return -1;
    }
    set_string(field(cfg, d), out);
    return 0;
}

static void users_free(struct config_users *u)
{
    for (int i = 0; i < u->n; i++) {
        for (int k = 0; k < u->v[i].nrules; k++)
            free(u->v[i].rules[k]);
        free(u->v[i].rules);
        free(u->v[i].name);
    }
    free(u->v);
    u->v = NULL;
    u->n = 0;
}

/* `user NAME rules...`: the rules are checked by proxy/acl (Redis's
 * messages) on a scratch ACL holding the earlier lines, then kept. */
static int set_user(struct config_users *u, const struct directive *d, int argc,
                    const char *const *argv, char *err, size_t errlen)
{
    char msg[256];
    struct acl *scratch;
    int rc = 0;

    if (u->n >= CONFIG_MAX_USERS) {
        msgf(err, errlen, "%s: at most %d can be given", d->name, CONFIG_MAX_USERS);
        return -1;
    }
    if (argv[0][0] == '\0') {
        msgf(err, errlen, "%s: expects a user name followed by ACL rules", d->name);
        return -1;
    }
    if ((scratch = acl_new()) == NULL)
        return oom(err, errlen);
    for (int i = 0; i < u->n && rc == 0; i++)
        rc = acl_setuser(scratch, u->v[i].name, strlen(u->v[i].name),
                         (const char *const *)u->v[i].rules, NULL, u->v[i].nrules, NULL, 0);
    if (rc == 0 && acl_setuser(scratch, argv[0], strlen(argv[0]), argv + 1, NULL, argc - 1,
                               msg, sizeof(msg)) < 0) {
        acl_free(scratch);
        msgf(err, errlen, "%s %s: %s", d->name, argv[0], msg);
        return -1;
    }
    acl_free(scratch);
    struct config_user *v = realloc(u->v, sizeof(*v) * (size_t)(u->n + 1));
    if (v == NULL)
        return oom(err, errlen);
    u->v = v;
    struct config_user *nu = &v[u->n];
    nu->name = strdup(argv[0]);
    nu->rules = calloc((size_t)(argc > 1 ? argc - 1 : 1), sizeof(char *));
    nu->nrules = 0;
    if (nu->name == NULL || nu->rules == NULL) {
        free(nu->name);
        free(nu->rules);
        return oom(err, errlen);
    }
    for (int i = 1; i < argc; i++) {
        if ((nu->rules[nu->nrules] = strdup(argv[i])) == NULL) {
            u->n++;                   /* freed with the config */
            return oom(err, errlen);
        }
        nu->nrules++;
    }
    u->n++;
    return 0;
}

/* client-output-buffer-limit: groups of `class hard soft seconds`, the words
 * possibly several per value. Only the classes named change, and only when
 * every group parsed. */
static int set_obuf(struct config *cfg, const struct directive *d, int argc,
                    const char *const *argv, char *err, size_t errlen)
{
    struct obuf_limit parsed[OBUF_CLASSES];
    struct obuf_limit *slot = field(cfg, d);
    char words[64][64];
    int n = 0;

    memcpy(parsed, slot, sizeof(parsed));
    for (int i = 0; i < argc; i++) {
        for (const char *p = argv[i];;) {
            while (isspace((unsigned char)*p))
                p++;
            if (*p == '\0')
                break;
            size_t l = strcspn(p, " \t\r\n\v\f");
            if (n == 64 || l >= sizeof(words[0]))
                return bad_value(d, argv[i], err, errlen);
            memcpy(words[n], p, l);
            words[n++][l] = '\0';
            p += l;
        }
    }
    if (n == 0 || n % 4 != 0) {
        char what[512];
        describe(d, what, sizeof(what));
        msgf(err, errlen, "%s: expects %s", d->name, what);
        return -1;
    }
    for (int g = 0; g < n; g += 4) {
        int cls = -1;
        long long hard, soft, secs;
        for (int k = 0; d->names[k] != NULL; k++)
            if (strcasecmp(words[g], d->names[k]) == 0)
                cls = k;
        if (strcasecmp(words[g], "slave") == 0)
            cls = OBUF_REPLICA;
        if (cls < 0)
            return bad_value(d, words[g], err, errlen);
        if (config_parse_memory(words[g + 1], &hard) < 0)
            return bad_value(d, words[g + 1], err, errlen);
        if (config_parse_memory(words[g + 2], &soft) < 0)
            return bad_value(d, words[g + 2], err, errlen);
        if (parse_ll(words[g + 3], &secs) < 0 || secs < 0 || secs > INT_MAX)
            return bad_value(d, words[g + 3], err, errlen);
        parsed[cls] = (struct obuf_limit){ .hard = hard, .soft = soft, .soft_seconds = (int)secs };
    }
    memcpy(slot, parsed, sizeof(parsed));
    return 0;
}

/* maxmemory-clients: a memory size, or N% (1..100). */
static int set_mempct(struct config *cfg, const struct directive *d, const char *v,
                      char *err, size_t errlen)
{
    struct mempct *slot = field(cfg, d);
    size_t l = strlen(v);
    long long n;

    if (l > 1 && v[l - 1] == '%') {
        char digits[16];
        if (l - 1 >= sizeof(digits))
            return bad_value(d, v, err, errlen);
        memcpy(digits, v, l - 1);
        digits[l - 1] = '\0';
        if (parse_ll(digits, &n) < 0 || n < 1 || n > 100)
            return bad_value(d, v, err, errlen);
        *slot = (struct mempct){ .bytes = 0, .percent = (int)n };
        return 0;
    }
    if (config_parse_memory(v, &n) < 0)
        return bad_value(d, v, err, errlen);
    *slot = (struct mempct){ .bytes = n, .percent = 0 };
    return 0;
}

/* Set directive d from its values. The field changes only on success
 * (a list is appended to only when every address parsed). */
static int directive_set(struct config *cfg, const struct directive *d, int argc,
                         const char *const *argv, char *err, size_t errlen)
{
    void *slot = field(cfg, d);
    const char *v = argc > 0 ? argv[0] : "";
    long long n;
    char what[512];

    if (argc == 0) {
        describe(d, what, sizeof(what));
        msgf(err, errlen, "%s: expects a value: %s", d->name, what);
        return -1;
    }
    if (argc > 1 && d->type != DT_ADDRLIST && d->type != DT_COMMANDS && d->type != DT_OBUF &&
        d->type != DT_USERS) {
        bool comment = false;
        for (int i = 1; i < argc; i++)
            comment |= argv[i][0] == '#';
        msgf(err, errlen, "%s: expects one value, got %d%s", d->name, argc,
                 comment ? " (a comment must be on a line of its own)"
                         : " (quote a value that contains spaces)");
        return -1;
    }

    switch (d->type) {
    case DT_INT:
    case DT_MS:
        if (parse_ll(v, &n) < 0 || n < d->min || n > d->max)
            return bad_value(d, v, err, errlen);
        *(int *)slot = (int)n;
        return 0;
    case DT_FRACTION: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (errno != 0 || end == v || *end != '\0' || !(x >= 0.0 && x <= 1.0))
            return bad_value(d, v, err, errlen);
        *(double *)slot = x;
        return 0;
    }
    case DT_MEMORY:
        if (config_parse_memory(v, &n) < 0 || n < d->min || n > d->max)
            return bad_value(d, v, err, errlen);
        *(long long *)slot = n;
        return 0;
    case DT_BOOL:
        if (strcasecmp(v, "yes") == 0)
            *(bool *)slot = true;
        else if (strcasecmp(v, "no") == 0)
            *(bool *)slot = false;
        else
            return bad_value(d, v, err, errlen);
        return 0;
    case DT_ENUM:
        for (int i = 0; d->names[i] != NULL; i++) {
            if (strcasecmp(v, d->names[i]) == 0) {
                memcpy(slot, &i, sizeof(int));
                return 0;
            }
        }
        return bad_value(d, v, err, errlen);
    case DT_STRING:
    case DT_OPTSTRING: {
        char *copy = NULL;
        if (v[0] == '\0' && (d->flags & DF_NONEMPTY))
            return bad_value(d, v, err, errlen);
        if (v[0] != '\0' || d->type == DT_STRING) {
            copy = strdup(v);
            if (copy == NULL)
                return oom(err, errlen);
        }
        set_string(slot, copy);
        return 0;
    }
    case DT_ADDR: {
        struct hostport a;
        if (config_parse_addr(v, &a) < 0)
            return bad_value(d, v, err, errlen);
        *(struct hostport *)slot = a;
        return 0;
    }
    case DT_ADDRLIST: {
        struct hostport *list = slot;
        int *count = (int *)((char *)cfg + d->count_off);
        struct hostport parsed[CONFIG_MAX_ADDRS];

        if (*count + argc > CONFIG_MAX_ADDRS) {
            msgf(err, errlen, "%s: at most %d can be given", d->name, CONFIG_MAX_ADDRS);
            return -1;
        }
        for (int i = 0; i < argc; i++)
            if (config_parse_addr(argv[i], &parsed[i]) < 0)
                return bad_value(d, argv[i], err, errlen);
        memcpy(list + *count, parsed, sizeof(parsed[0]) * (size_t)argc);
        *count += argc;
        return 0;
    }
    case DT_COMMANDS:
        return set_commands(cfg, d, argc, argv, err, errlen);
    case DT_USERS:
        return set_user(slot, d, argc, argv, err, errlen);
    case DT_OBUF:
        return set_obuf(cfg, d, argc, argv, err, errlen);
    case DT_MEMPCT:
        return set_mempct(cfg, d, v, err, errlen);
    }
    msgf(err, errlen, "%s: internal error: unknown type", d->name);
    return -1;
}

int config_set(struct config *cfg, const char *name, int argc, const char *const *argv,
               char *err, size_t errlen)
{
    const struct directive *d = directive_find(name);

    if (d == NULL) {
        unknown_directive("", name, err, errlen);
        return -1;
    }
    return directive_set(cfg, d, argc, argv, err, errlen);
}

void config_defaults(struct config *cfg)
{
    char err[CONFIG_ERR_LEN];

    memset(cfg, 0, sizeof(*cfg));
    for (int i = 0; i < NDIRECTIVES; i++) {
        const struct directive *d = &directive_table[i];
        const char *argv[1] = { d->def };
        if (d->def == NULL)
            continue;
        if (directive_set(cfg, d, 1, argv, err, sizeof(err)) < 0) {
            /* a bad default is a bug in the table; say so loudly */
            fprintf(stderr, "redsnano: bad default in config.c: %s\n", err);
            abort();
        }
    }
}

void config_free(struct config *cfg)
{
    for (int i = 0; i < NDIRECTIVES; i++) {
        const struct directive *d = &directive_table[i];
        if (d->type == DT_STRING || d->type == DT_OPTSTRING || d->type == DT_COMMANDS)
            free(*(char **)field(cfg, d));
        else if (d->type == DT_USERS)
            users_free(field(cfg, d));
    }
    free(cfg->config_file);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---------------------------------------------------------------- lines */

static void args_free(struct args *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* Append s (owned) to a. Returns 0, or -1 (s freed) when out of memory. */
static int args_push(struct args *a, char *s)
{
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 8;
        char **v = realloc(a->v, sizeof(char *) * (size_t)cap);
        if (v == NULL) {
            free(s);
            return -1;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = s;
    return 0;
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/* Split a line into values as redis.conf does: blanks separate values;
 * "..." takes the escapes \n \r \t \b \a \\ \" \' \xHH; '...' takes \'.
 * A closing quote must end the value. Appends to a; returns 0 or -1 with
 * err set (a then holds what was split so far; the caller frees it). */
static int config_split(const char *line, struct args *a, char *err, size_t errlen)
{
    const char *p = line;

    for (;;) {
        char *tok;
        size_t n = 0;

        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            return 0;
        tok = malloc(strlen(p) + 1);
        if (tok == NULL)
            return oom(err, errlen);
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            for (;;) {
                if (*p == '\0') {
                    free(tok);
                    msgf(err, errlen, "unbalanced quotes: a %c...%c value is not closed", q, q);
                    return -1;
                }
                if (*p == q) {
                    p++;
                    break;
                }
                if (*p == '\\' && q == '\'' && p[1] == '\'') {
                    tok[n++] = '\'';
                    p += 2;
                } else if (*p == '\\' && q == '"' && p[1] != '\0') {
                    char c = p[1];
                    p += 2;
                    switch (c) {
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'b': c = '\b'; break;
                    case 'a': c = '\a'; break;
                    case 'x':
                        if (isxdigit((unsigned char)p[0]) && isxdigit((unsigned char)p[1])) {
                            c = (char)(hexval((unsigned char)p[0]) * 16 + hexval((unsigned char)p[1]));
                            p += 2;
                            if (c == '\0') {
                                free(tok);
                                msgf(err, errlen, "\\x00 is not allowed in a value");
                                return -1;
                            }
                        }
                        break;
                    default:                 /* \\ \" \' and unknown: the character itself */
                        break;
                    }
                    tok[n++] = c;
                } else {
                    tok[n++] = *p++;
                }
            }
            if (*p != '\0' && !isspace((unsigned char)*p)) {
                free(tok);
                msgf(err, errlen, "a closing quote must be followed by a space or the end of the line");
                return -1;
            }
        } else {
            while (*p != '\0' && !isspace((unsigned char)*p))
                tok[n++] = *p++;
        }
        tok[n] = '\0';
        if (args_push(a, tok) < 0)
            return oom(err, errlen);
    }
}

/* Per-load state: which level last set each directive. */
struct load {
    struct config *cfg;                /* being filled */
    unsigned char level[NDIRECTIVES];  /* enum level of the last setter of each row */
};

/* Apply values to d at level lv: a list set for the first time at a higher
 * level forgets what the lower levels gave. */
static int load_apply(struct load *ld, const struct directive *d, enum level lv, int argc,
                      const char *const *argv, char *err, size_t errlen)
{
    int i = (int)(d - directive_table);

    if (d->type == DT_ADDRLIST && ld->level[i] < lv)
        *(int *)((char *)ld->cfg + d->count_off) = 0;
    if (d->type == DT_USERS && ld->level[i] < lv)
        users_free(field(ld->cfg, d));
    ld->level[i] = (unsigned char)lv;
    return directive_set(ld->cfg, d, argc, argv, err, errlen);
}

/* One file line: blank, comment or `directive value...`. */
static int load_line(struct load *ld, const char *line, char *err, size_t errlen)
{
    struct args a = { 0 };
    const struct directive *d;
    const char *p = line;
    int rc = -1;

    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    if (config_split(p, &a, err, errlen) < 0)
        goto out;
    d = directive_find(a.v[0]);
    if (d == NULL) {
        unknown_directive("", a.v[0], err, errlen);
        goto out;
    }
    rc = load_apply(ld, d, LEVEL_FILE, a.n - 1, (const char *const *)a.v + 1, err, errlen);
out:
    args_free(&a);
    return rc;
}

static int load_file(struct load *ld, const char *path, char *err, size_t errlen)
{
    char msg[CONFIG_ERR_LEN];
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    FILE *fp = fopen(path, "r");

    if (fp == NULL) {
        msgf(err, errlen, "%s: cannot open the config file: %s", path, strerror(errno));
        return -1;
    }
    while ((len = getline(&line, &cap, fp)) != -1) {
        lineno++;
        if (strlen(line) != (size_t)len) {
            msgf(err, errlen, "%s:%d: the line holds a NUL byte", path, lineno);
            rc = -1;
            break;
        }
        if (load_line(ld, line, msg, sizeof(msg)) < 0) {
            msgf(err, errlen, "%s:%d: %s", path, lineno, msg);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(fp)) {
        msgf(err, errlen, "%s: cannot read the config file: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(fp);
    return rc;
}

/* REDSNANO_ + name upper-cased with '-' -> '_'. */
static void env_name(const struct directive *d, char *buf, size_t len)
{
    size_t o = strlen(ENV_PREFIX);

    memcpy(buf, ENV_PREFIX, o);           /* len >= ENV_NAME_LEN > the prefix */
    for (const char *c = d->name; *c != '\0' && o + 1 < len; c++)
        buf[o++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
    buf[o] = '\0';
}

static const char *env_lookup(char **envp, const char *name)
{
    size_t n = strlen(name);

    for (; *envp != NULL; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

static int load_env(struct load *ld, char **envp, char *err, size_t errlen)
{
    char msg[CONFIG_ERR_LEN], name[ENV_NAME_LEN];

    for (int i = 0; i < NDIRECTIVES; i++) {
        const struct directive *d = &directive_table[i];
        struct args a = { 0 };
        const char *v;
        int rc;

        env_name(d, name, sizeof(name));
        v = env_lookup(envp, name);
        if (v == NULL)
            continue;
        rc = config_split(v, &a, msg, sizeof(msg));
        if (rc == 0 && a.n > 0)           /* blank = unset */
            rc = load_apply(ld, d, LEVEL_ENV, a.n, (const char *const *)a.v, msg, sizeof(msg));
        args_free(&a);
        if (rc < 0) {
            msgf(err, errlen, "environment %s: %s", name, msg);
            return -1;
        }
    }
    return 0;
}

/* A directive on the command line: --name argv[first .. first+n-1]. */
struct cmd_group {
    const struct directive *d;  /* the directive */
    int first;                  /* index in argv of its first value */
    int n;                      /* how many values */
};

/* Checks that span directives. */
static int load_check(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->port == 0 && cfg->unixsocket == NULL && cfg->tls_port == 0) {
        msgf(err, errlen, "configuration: port is 0 and unixsocket is not set: "
                 "redsnano would accept no clients");
        return -1;
    }
    if (cfg->nsentinels > 0 && cfg->sentinel_master == NULL) {
        msgf(err, errlen, "configuration: sentinel is given but sentinel-master is not: "
                 "name the master the Sentinels monitor");
        return -1;
    }
    if (cfg->ncluster > 0 && (cfg->nsentinels > 0 || cfg->nreplicas > 0)) {
        msgf(err, errlen, "configuration: cluster cannot be combined with replica or sentinel: "
                 "in cluster mode the nodes come from CLUSTER SLOTS");
        return -1;
    }
    if (cfg->tls_port > 0 && cfg->tls_cert_file == NULL) {
        msgf(err, errlen, "configuration: tls-port is set but tls-cert-file is not");
        return -1;
    }
    if (cfg->tls_port > 0 && cfg->tls_auth_clients != 1 && cfg->tls_ca_cert_file == NULL) {
        msgf(err, errlen, "configuration: tls-auth-clients %s needs tls-ca-cert-file to verify "
                 "client certificates (or set tls-auth-clients no)",
                 cfg->tls_auth_clients == 0 ? "yes" : "optional");
        return -1;
    }
    if (cfg->tls_port > 0 && cfg->tls_port == cfg->port) {
        msgf(err, errlen, "configuration: tls-port and port are both %d", cfg->port);
        return -1;
    }
    if (cfg->backend_user != NULL && cfg->backend_password == NULL) {
        msgf(err, errlen, "configuration: backend-user is given but backend-password is not");
        return -1;
    }
    if (cfg->nsentinels == 0 && cfg->sentinel_master != NULL) {
        msgf(err, errlen, "configuration: sentinel-master is given but no sentinel is: "
                 "add a sentinel host:port");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- output */

static void print_usage(FILE *out)
{
    fprintf(out,
        "Usage: redsnano [/path/to/redsnano.conf] [--directive value ...] [--test-config [FILE]]\n"
        "       redsnano --config /path/to/redsnano.conf [--directive value ...]\n"
        "       redsnano --help | --version | --directives-markdown\n"
        "\n"
        "Examples:\n"
        "       redsnano /etc/redsnano.conf\n"
        "       redsnano --port 7380 --primary 10.0.0.5:6379 --replica 10.0.0.6:6379 10.0.0.7:6379\n"
        "       REDSNANO_LOGLEVEL=debug redsnano redsnano.conf --test-config\n"
        "\n"
        "Every directive may be written in the file (`port 7380`), on the command line\n"
        "(`--port 7380`; the values run until the next --argument) or in the environment\n"
        "(`REDSNANO_PORT=7380`; upper case, '-' becomes '_'). The command line wins over\n"
        "the environment, which wins over the file, which wins over the default.\n"
        "--test-config checks the configuration and exits 0 if it is valid, 1 if not.\n"
        "\n"
        "Directives:\n");
    config_print_directives(out);
}

/* The default as shown to people: "none" when there is none. */
static const char *default_text(const struct directive *d)
{
    if (d->def == NULL)
        return NULL;
    return d->def[0] == '\0' ? "\"\"" : d->def;
}

void config_print_directives(FILE *out)
{
    char what[512];

    for (int i = 0; i < NDIRECTIVES; i++) {
        const struct directive *d = &directive_table[i];
        const char *def = default_text(d);

        describe(d, what, sizeof(what));
        fprintf(out, "  %-27s default %s\n      %s.\n      Accepts %s.\n",
                d->name, def ? def : "none", d->help, what);
    }
}

/* Print s with '|' escaped for a markdown table cell. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void print_markdown(FILE *out)
{
    char what[512];

    fprintf(out, "| directive | default | meaning |\n|---|---|---|\n");
    for (int i = 0; i < NDIRECTIVES; i++) {
        const struct directive *d = &directive_table[i];
        const char *def = default_text(d);

        describe(d, what, sizeof(what));
        fprintf(out, "| `%s` | ", d->name);
        if (def != NULL) {
            fputc('`', out);
            md_cell(out, def);
            fputc('`', out);
        } else {
            fputs("none", out);
        }
        fputs(" | ", out);
        md_cell(out, d->help);
        fputs(". Accepts ", out);
        md_cell(out, what);
        fputs(". |\n", out);
    }
}

/* ------------------------------------------------------- values in force */

int config_ndirectives(void)
{
    return NDIRECTIVES;
}

const char *config_directive_name(int i)
{
    return i >= 0 && i < NDIRECTIVES ? directive_table[i].name : NULL;
}

/* Directives whose values are passwords: shown as "(hidden)" when set. */
static const char *const secret_directives[] = { "requirepass", "backend-password", "sentinel-password", NULL };

static int is_secret(const struct directive *d)
{
    for (int i = 0; secret_directives[i]; i++)
        if (strcmp(secret_directives[i], d->name) == 0)
            return 1;
    return 0;
}

void config_value(const struct config *cfg, int i, char *out, size_t cap)
{
    const struct directive *d = &directive_table[i];
    const char *p = (const char *)cfg + d->off;
    size_t o = 0;

    out[0] = '\0';
    if (is_secret(d)) {
        snprintf(out, cap, "%s", *(char *const *)p ? "(hidden)" : "");
        return;
    }
    switch (d->type) {
    case DT_INT:
    case DT_MS:
        snprintf(out, cap, "%d", *(const int *)p);
        break;
    case DT_BOOL:
        snprintf(out, cap, "%s", *(const bool *)p ? "yes" : "no");
        break;
    case DT_STRING:
    case DT_OPTSTRING:
    case DT_COMMANDS:
        snprintf(out, cap, "%s", *(char *const *)p ? *(char *const *)p : "");
        break;
    case DT_ENUM:
        snprintf(out, cap, "%s", d->names[*(const int *)p]);
        break;
    case DT_MEMORY:
        snprintf(out, cap, "%lld", *(const long long *)p);
        break;
    case DT_FRACTION:
        snprintf(out, cap, "%g", *(const double *)p);
        break;
    case DT_OBUF: {
        /* Redis's CONFIG GET shape: "normal 0 0 0 replica ... pubsub ..." */
        const struct obuf_limit *l = (const struct obuf_limit *)p;
        for (int k = 0; k < OBUF_CLASSES && o + 1 < cap; k++) {
            int w = snprintf(out + o, cap - o, "%s%s %lld %lld %d", k ? " " : "", d->names[k], l[k].hard,
                             l[k].soft, l[k].soft_seconds);
            if (w < 0 || (size_t)w >= cap - o)
                break;
            o += (size_t)w;
        }
        break;
    }
    case DT_MEMPCT: {
        const struct mempct *m = (const struct mempct *)p;
        if (m->percent)
            snprintf(out, cap, "%d%%", m->percent);
        else
            snprintf(out, cap, "%lld", m->bytes);
        break;
    }
    case DT_ADDR: {
        const struct hostport *h = (const struct hostport *)p;
        hostport_name(out, cap, h->host, h->port);
        break;
    }
    case DT_ADDRLIST: {
        const struct hostport *h = (const struct hostport *)p;
        int n = *(const int *)((const char *)cfg + d->count_off);
        for (int k = 0; k < n && o + 1 < cap; k++) {
            char one[300];
            hostport_name(one, sizeof(one), h[k].host, h[k].port);
            int w = snprintf(out + o, cap - o, "%s%s", k ? " " : "", one);
            if (w < 0 || (size_t)w >= cap - o)
                break;
            o += (size_t)w;
        }
        break;
    }
    case DT_USERS: {
        /* The names only: rules hold passwords. */
        const struct config_users *u = (const struct config_users *)p;
        for (int k = 0; k < u->n && o + 1 < cap; k++) {
            int w = snprintf(out + o, cap - o, "%s%s", k ? " " : "", u->v[k].name);
            if (w < 0 || (size_t)w >= cap - o)
                break;
            o += (size_t)w;
        }
        break;
    }
    }
}

/* Bytes of a directive's field in struct config. */
static size_t field_size(const struct directive *d)
{
    switch (d->type) {
    case DT_INT: case DT_MS: case DT_ENUM: return sizeof(int);
    case DT_BOOL: return sizeof(bool);
    case DT_STRING: case DT_OPTSTRING: case DT_COMMANDS: return sizeof(char *);
    case DT_MEMORY: return sizeof(long long);
    case DT_FRACTION: return sizeof(double);
    case DT_OBUF: return sizeof(struct obuf_limit) * OBUF_CLASSES;
    case DT_MEMPCT: return sizeof(struct mempct);
    case DT_ADDR: return sizeof(struct hostport);
    case DT_ADDRLIST: return sizeof(struct hostport) * CONFIG_MAX_ADDRS;
    case DT_USERS: return sizeof(struct config_users);
    }
    return 0;
}

void config_swap(struct config *a, struct config *b, int i)
{
    const struct directive *d = &directive_table[i];
    unsigned char tmp[sizeof(struct hostport) * CONFIG_MAX_ADDRS];
    _Static_assert(sizeof(tmp) >= sizeof(struct obuf_limit) * OBUF_CLASSES, "room for every field type");
    size_t n = field_size(d);

    memcpy(tmp, (char *)a + d->off, n);
    memcpy((char *)a + d->off, (char *)b + d->off, n);
    memcpy((char *)b + d->off, tmp, n);
    if (d->type == DT_ADDRLIST) {
        int *ca = (int *)((char *)a + d->count_off), *cb = (int *)((char *)b + d->count_off);
        int t = *ca;
        *ca = *cb;
        *cb = t;
    }
}

/* ---------------------------------------------------------------- load */

/* See config.h. On 1 (--help, --version, --directives-markdown printed) and
 * on -1, cfg is left all zero, so config_free() on it is harmless. The
 * command line is read in two passes: first the informational flags (which
 * win wherever they are), then [file] and --name groups, which are applied
 * after the file and the environment. */

int config_load(struct config *cfg, int argc, char **argv, char **envp, char *err, size_t errlen)
{
    struct load ld = { .cfg = cfg };
    struct cmd_group *groups = NULL;
    const char *file = NULL;
    int ngroups = 0;
    char msg[CONFIG_ERR_LEN];

    memset(cfg, 0, sizeof(*cfg));
    if (envp == NULL)
        envp = environ;

    /* informational flags win over everything else */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool first = i == 1 && argc == 2;
        if (strcmp(a, "--help") == 0 || (first && strcmp(a, "-h") == 0)) {
            print_usage(stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0 || (first && strcmp(a, "-v") == 0)) {
            printf("redsnano %s\n", REDSNANO_VERSION);
            return 1;
        }
        if (strcmp(a, "--directives-markdown") == 0) {
            print_markdown(stdout);
            return 1;
        }
    }

    config_defaults(cfg);
    groups = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*groups));
    if (groups == NULL) {
        oom(err, errlen);
        goto fail;
    }

    /* command line: [file] then --name values... groups */
    for (int i = 1; i < argc;) {
        const char *a = argv[i], *name = a + 2;
        int j = i + 1, n;

        if (strncmp(a, "--", 2) != 0) {
            if (i == 1) {
                file = a;
                i++;
                continue;
            }
            msgf(err, errlen, "command line: unexpected argument %s: the config file comes "
                     "first, directives are written --name value", a);
            goto fail;
        }
        while (j < argc && strncmp(argv[j], "--", 2) != 0)
            j++;
        n = j - i - 1;
        if (strcmp(name, "test-config") == 0) {
            /* `redsnano --test-config FILE` names the file to check. */
            if (n > 1 || (n == 1 && file != NULL)) {
                msgf(err, errlen, "command line: --test-config takes at most the config file, got %s",
                     argv[i + n]);
                goto fail;
            }
            if (n == 1)
                file = argv[i + 1];
            cfg->test_config = true;
        } else if (strcmp(name, "config") == 0) {
            if (n != 1) {
                msgf(err, errlen, "command line: --config takes one file name, got %d values", n);
                goto fail;
            }
            if (file != NULL) {
                msgf(err, errlen, "command line: two config files given (%s and %s)", file, argv[i + 1]);
                goto fail;
            }
            file = argv[i + 1];
        } else {
            const struct directive *d = directive_find(name);
            if (d == NULL) {
                unknown_directive("--", name, msg, sizeof(msg));
                msgf(err, errlen, "command line: %s", msg);
                goto fail;
            }
            groups[ngroups++] = (struct cmd_group){ d, i + 1, n };
        }
        i = j;
    }

    if (file != NULL) {
        cfg->config_file = strdup(file);
        if (cfg->config_file == NULL) {
            oom(err, errlen);
            goto fail;
        }
        if (load_file(&ld, file, err, errlen) < 0)
            goto fail;
    }
    if (load_env(&ld, envp, err, errlen) < 0)
        goto fail;
    for (int g = 0; g < ngroups; g++) {
        if (load_apply(&ld, groups[g].d, LEVEL_CMDLINE, groups[g].n,
                       (const char *const *)argv + groups[g].first, msg, sizeof(msg)) < 0) {
            msgf(err, errlen, "command line: --%s", msg);
            goto fail;
        }
    }
    if (load_check(cfg, err, errlen) < 0)
        goto fail;
    free(groups);
    return 0;

fail:
    free(groups);
    config_free(cfg);
    return -1;
}
