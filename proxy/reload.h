/*
 * proxy/reload.h — the configuration in force, and changing it live.
 *
 *   SIGHUP ─────────────────┐
 *   REDSNANO CONFIG RELOAD ─┴─> reload_run: config_load(same argv), users (auth_build),
 *                                       │   TLS contexts ─ any error ─> refused whole
 *                                       │                               (file:line: ..., or the file)
 *                                       ├─ port, bind, unixsocket, primary, sentinel*, cluster,
 *                                       │  http-port, tls-port, backend-(spare-)connections,
 *                                       │  l1-fill-connections, l1-tracking, l1 on<->off:
 *                                       │  logged and kept (config_swap back)
 *                                       └─> proxy->cfg replaced; reload_settings() updates
 *                                           backend_set / l1_set / sentinel_set in place;
 *                                           replicas (topology_set_replicas), backend timeouts,
 *                                           L1 budget and commands, log level/file,
 *                                           users and passwords (clients keep their user
 *                                           by name; a deleted/disabled user's are closed),
 *                                           TLS certificates (for new connections)
 *   REDSNANO CONFIG GET pattern ─> [name, value, ...] of the configuration in force
 *
 * The file is read again with the command line and environment of the
 * start, in the same precedence: a directive given on the command line
 * keeps its command-line value. Clients stay connected; reads in flight on
 * a replica that leaves are resent elsewhere (as when a replica fails).
 *
 * Contract: reload_init() is called once before the loop with main's argv
 * (kept, not copied). reload_run() returns 0 when the new configuration is
 * in force, or -1 with the message in err and nothing changed.
 */
#ifndef REDSNANO_PROXY_RELOAD_H
#define REDSNANO_PROXY_RELOAD_H

#include <stddef.h>

#include "base/buf.h"

void reload_init(int argc, char **argv);

/* The settings each lower layer receives, from proxy->cfg (at start and
 * after a reload; the structs are updated in place). */
void reload_settings(void);

int reload_run(char *err, size_t cap);

/* The TLS contexts of cfg: tls-port's server context (*clients) and the
 * client context of outgoing connections (*outgoing: backend-tls and/or
 * sentinel-tls, one context from the backend-tls-* files), each NULL when
 * not configured. 0, or -1 with the reason (file, OpenSSL's error) in err
 * and nothing made. At start, and by reload_run() before anything changes. */
struct tls_ctx;
struct config;
int reload_tls_contexts(const struct config *cfg, struct tls_ctx **clients, struct tls_ctx **outgoing, char *err,
                        size_t cap);

/* Install contexts made by reload_tls_contexts() (their references are
 * taken over): the client listener's, and the outgoing one for backends
 * (when backend-tls) and Sentinels (when sentinel-tls) by the running
 * configuration. The previous ones are released; connections already open
 * keep theirs. (NULL, NULL) at exit releases everything. */
void reload_use_tls_contexts(struct tls_ctx *clients, struct tls_ctx *outgoing);

/* REDSNANO CONFIG GET pattern | RELOAD: appends one reply to b and returns
 * 1, or 0 when argv[0] is not CONFIG. argv starts at CONFIG. */
int reload_command(struct buf *b, int argc, const char **argv, const size_t *argvlen);

#endif
