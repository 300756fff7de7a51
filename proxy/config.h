/*
 * proxy/config.h — redsnano's configuration, redis.conf style.
 *
 *   redsnano.conf ─┐
 *   REDSNANO_*   ──┼─> config_load() -> struct config -> main.c -> everything
 *   --directive  ──┘
 *
 * Contract:
 * - Every directive lives in one data table in config.c (name, type, where it
 *   is stored, default, bounds, help line). Adding a directive = adding a row.
 * - Precedence: command line > environment (REDSNANO_<NAME>, upper case,
 *   '-' -> '_') > config file > default. A repeatable directive (replica,
 *   sentinel) given at a higher level replaces the lower levels' list.
 * - Files are redis.conf-like: `directive value ...`, '#' comments, blank
 *   lines, values quoted with "..." (C escapes) or '...'.
 * - Errors name the place: "file:line: message", "command line: message" or
 *   "environment REDSNANO_X: message"; config_load returns -1 and the message
 *   is in err. Nothing is half-applied: on error the config is left freed.
 */
#ifndef REDSNANO_PROXY_CONFIG_H
#define REDSNANO_PROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backends/backend.h"
#include "base/hostport.h"
#include "l1/l1.h"
#include "base/log.h"

#define CONFIG_ERR_LEN 512
#define CONFIG_MAX_ADDRS 32      /* replicas / sentinels at most */
#define CONFIG_MAX_USERS 256     /* `user` lines at most */

/* One `user NAME rules...` line (rules as written, applied in order). */
struct config_user {
    char *name;                  /* the user name */
    char **rules;                /* ACL SETUSER rules, each malloc'ed */
    int nrules;                  /* how many */
};

/* Every `user` line, in order (later lines for a name add rules to it). */
struct config_users {
    struct config_user *v;       /* the lines, malloc'ed */
    int n;                       /* how many */
};

/* client-output-buffer-limit classes, as Redis names them. */
enum obuf_class { OBUF_NORMAL = 0, OBUF_REPLICA, OBUF_PUBSUB, OBUF_CLASSES };

/* One class's output limit (Redis's client-output-buffer-limit). */
struct obuf_limit {
    long long hard;              /* bytes held that close a client at once; 0 = none */
    long long soft;              /* bytes held that close it after soft_seconds; 0 = none */
    int soft_seconds;            /* how long it may stay over soft */
};

/* A memory size given in bytes or as a percentage (maxmemory-clients). */
struct mempct {
    long long bytes;             /* bytes given (percent == 0) */
    int percent;                 /* 1..100: percent of the machine's memory; 0 = bytes */
};



struct config {
    /* core (issue 2) */
    int port;                    /* TCP port to listen on; 0 = no TCP listener (default 7379) */
    char *bind;                  /* address to bind (default "127.0.0.1") */
    char *unixsocket;            /* path of a Unix socket to listen on, or NULL */
    struct hostport primary;  /* the primary (default 127.0.0.1:6379) */
    int backend_connections;     /* shared connections per backend (default 1) */
    int backend_spares;          /* connected spares per backend for pinning clients (default 2) */
    int backend_timeout;         /* ms a backend may take to answer (default 5000; 0 = none) */
    int connect_timeout;         /* ms to establish a backend connection (default 1000) */
    enum loglevel loglevel;      /* debug|verbose|notice|warning|nothing (default notice) */
    char *logfile;               /* log file path; "" or NULL = stderr */
    int maxclients;              /* most clients at once (default 10000) */
    int timeout;                 /* close clients idle this many seconds; 0 = never (default 0) */
    long long proto_max_bulk_len;        /* largest bulk string accepted (default 512mb) */
    long long client_query_buffer_limit; /* most unprocessed input per client (default 1gb) */
    bool allow_admin_commands;   /* forward commands that change a server (default no) */

    /* bounded resources under hostile clients (issue 9) */
    struct obuf_limit client_obuf[OBUF_CLASSES]; /* per class (normal 0 0 0, replica 256mb 64mb 60, pubsub 32mb 8mb 60) */
    long long client_backpressure; /* bytes of unsent + expected replies before a client's requests wait (default 16mb) */
    struct mempct maxmemory_clients; /* input + output held for all clients; 0 = off (default 0) */

    /* replicas, Sentinel, health (issue 4) */
    struct hostport replicas[CONFIG_MAX_ADDRS];
    int nreplicas;
    struct hostport sentinels[CONFIG_MAX_ADDRS];
    int nsentinels;
    char *sentinel_master;       /* master name to ask the sentinels about, or NULL */
    struct hostport cluster[CONFIG_MAX_ADDRS]; /* Redis Cluster seed nodes: cluster mode when any */
    int ncluster;
    char *sentinel_password;     /* AUTH for the sentinels, or NULL */
    enum read_policy read_policy;/* default prefer-replica */
    int health_interval;         /* ms between health checks (default 1000) */
    int health_timeout;          /* ms a health check may take (default 500) */
    long long replica_max_lag;   /* bytes of replication offset a replica may trail (default 1mb) */
    int read_your_writes;        /* ms reads follow a client's write to the primary (default 1000; 0 = off) */

    /* L1 (issue 5) */
    long long l1_maxmemory;      /* bytes; 0 = L1 off (default 0) */
    enum l1_mode l1_mode;        /* tracking (default) | strict */
    enum l1_tracking l1_tracking; /* broadcast (default) | keys */
    int l1_max_ttl;              /* ms an entry may live (default 60000) */
    char *l1_commands;           /* space separated, upper case (default "GET") */
    bool l1_serve_stale;         /* serve entries while the origin is unreachable (default no) */
    int l1_revalidate_after;     /* ms after which entries are revalidated in the background (default 0 = never) */
    int l1_fill_connections;     /* tracking fill connections (default 4) */
    bool l1_admission;           /* TinyLFU admission of missed reads (default yes) */
    int l1_ttl_jitter;           /* percent of an entry's lifetime taken off at random (default 10) */
    double l1_audit_rate;        /* fraction of hits hash-checked in the background (default 0) */
    char *l1_snapshot_file;      /* where L1 entries are kept across restarts, or NULL */
    int l1_snapshot_interval;    /* seconds between L1 snapshots; 0 = only at a clean exit (default 300) */

    /* operations (issue 14) */
    int http_port;               /* HTTP port for /metrics, /healthz, /readyz, /cache; 0 = off (default 0) */
    long long http_max_body;     /* largest HTTP request body (default 1mb) */
    int http_timeout;            /* ms an HTTP client may take to send its request (default 10000) */
    int slowlog_log_slower_than; /* µs: requests at least this slow enter the slow log; -1 = off (default 10000) */
    int slowlog_max_len;         /* slow log entries kept (default 128) */

    /* security (issue 10) */
    char *backend_user;          /* backend-user: the proxy's ACL user on backends, or NULL */
    char *backend_password;      /* backend-password: AUTH on every backend connection, or NULL */
    char *requirepass;           /* the default user's password, or NULL (no password) */
    struct config_users users;   /* `user NAME rules...` lines (proxy ACL users) */
    bool protected_mode;         /* refuse non-loopback clients when no auth is set (default yes) */
    int tls_port;                /* TLS port for clients; 0 = none (default) */
    char *tls_cert_file;         /* server certificate (PEM), or NULL */
    char *tls_key_file;          /* its private key (PEM), or NULL */
    char *tls_ca_cert_file;      /* CA to verify client certificates, or NULL */
    int tls_auth_clients;        /* enum tls_auth: yes (default) | no | optional */
    char *tls_protocols;         /* "TLSv1.2 TLSv1.3" (default when NULL) */
    char *tls_ciphers;           /* TLS <= 1.2 cipher list, or NULL */
    char *tls_ciphersuites;      /* TLS 1.3 suites, or NULL */
    bool backend_tls;            /* TLS to every backend (default no) */
    char *backend_tls_ca_cert_file; /* CA to verify backends, or NULL (system default) */
    char *backend_tls_cert_file; /* client certificate sent to backends, or NULL */
    char *backend_tls_key_file;  /* its private key, or NULL */
    char *backend_tls_server_name; /* name backends' certificates must carry; NULL = their host */
    bool sentinel_tls;           /* TLS to the Sentinels, with the backend-tls-* files (default no) */

    /* not directives: what the command line asked for */
    char *config_file;           /* the file read, or NULL */
    bool test_config;            /* --test-config: check and exit */
};

/* Fill cfg from defaults, then file, environment and command line, in that
 * precedence. argv is the full argv of main (argv[0] is skipped); envp is
 * the environment (NULL = use environ). Returns 0 on success, 1 if --help or
 * --version was printed to stdout (caller exits 0), -1 on error with err set
 * (caller exits 1). */
int config_load(struct config *cfg, int argc, char **argv, char **envp, char *err, size_t errlen);

/* Set one directive from its text value, as a file line would. Returns 0, or
 * -1 with a message (without a place) in err. Used by config_load and tests. */
int config_set(struct config *cfg, const char *name, int argc, const char *const *argv,
               char *err, size_t errlen);

/* Reset cfg to defaults (allocating default strings). */
void config_defaults(struct config *cfg);

/* Free what cfg owns; cfg may be reused after config_defaults(). */
void config_free(struct config *cfg);

/* Parse "host:port" / "[v6]:port". Returns 0 or -1. */
int config_parse_addr(const char *s, struct hostport *out);

/* Parse a redis.conf memory value: "512", "64kb", "64k", "1mb", "1m", "1gb", "1g"
 * (kb/mb/gb = 1024-based, k/m/g = 1000-based as in Redis). Returns 0 or -1. */
int config_parse_memory(const char *s, long long *out);

/* The directives, by index 0 .. config_ndirectives() - 1. */
int config_ndirectives(void);
const char *config_directive_name(int i);

/* Directive i's value in cfg as text (a file line's value; lists space
 * separated, "" for none), truncated to cap. */
void config_value(const struct config *cfg, int i, char *out, size_t cap);

/* Exchange directive i's value between a and b (ownership of strings
 * moves with it): a reload keeps what cannot change live. */
void config_swap(struct config *a, struct config *b, int i);

/* Print the directive table (for --help and the README). */
void config_print_directives(FILE *out);

#endif
