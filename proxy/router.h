/*
 * proxy/router.h — where each request goes.
 *
 *   client_process ─> router_dispatch(c, msg)
 *        ├─ proxy-answered (PING, ECHO, QUIT, HELLO, REDSNANO ...) ─> local.c
 *        ├─ refused admin command ─> -ERR naming allow-admin-commands
 *        ├─ state-creating (MULTI, WATCH, blocking, SUBSCRIBE, SELECT n...) ─> the client's pinned connection
 *        ├─ write / unknown ─> the primary's pool
 *        └─ read-only ─> read-policy over healthy replicas and the primary
 *
 * Contract: router_dispatch() either gives the request its FIFO place
 * (forwarded or answered) and returns ROUTER_DONE, or returns ROUTER_STALL
 * having done nothing: the request needs another connection than the one
 * the client's in-flight requests are on, and must be dispatched again
 * when they are answered.
 */
#ifndef REDSNANO_PROXY_ROUTER_H
#define REDSNANO_PROXY_ROUTER_H

#include "protocol/request.h"

struct client;
struct backend;

enum { ROUTER_DONE = 0, ROUTER_STALL = 1 };

int router_dispatch(struct client *c, struct reqmsg *m);

/* The backend a read-only request goes to under read-policy (never NULL:
 * the primary when nothing else qualifies). */
struct backend *router_read_backend(struct client *c);

/* Where a read that failed on `failed` (a replica) is tried once more:
 * another healthy replica, else the primary; NULL if failed is the primary. */
struct backend *router_retry_backend(struct backend *failed);

#endif
