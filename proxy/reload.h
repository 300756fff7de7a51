/*
 * proxy/reload.h — the configuration in force, and changing it live.
 *
 *   SIGHUP ─────────────────┐
 *   REDSNANO CONFIG RELOAD ─┴─> reload_run: config_load(same argv) ─ error ─> refused whole
 *                                       │                                   (file:line: ...)
 *                                       ├─ port, bind, unixsocket, primary, sentinel*, cluster,
 *                                       │  http-port, backend-(spare-)connections,
 *                                       │  l1-fill-connections, l1 on<->off:
 *                                       │  logged and kept (config_swap back)
 *                                       └─> proxy->cfg replaced; reload_settings() updates
 *                                           backend_set / l1_set / sentinel_set in place;
 *                                           replicas (topology_set_replicas), backend timeouts,
 *                                           L1 budget and commands, log level/file
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

/* REDSNANO CONFIG GET pattern | RELOAD: appends one reply to b and returns
 * 1, or 0 when argv[0] is not CONFIG. argv starts at CONFIG. */
int reload_command(struct buf *b, int argc, const char **argv, const size_t *argvlen);

#endif
