/*
 * proxy/router.h — where each request goes.
 *
 *   client_process ─> router_dispatch(c, msg)
 *        ├─ proxy-answered (PING, ECHO, QUIT, HELLO, REDSNANO ...) ─> local.c
 *        ├─ refused admin command ─> -ERR naming allow-admin-commands
 *        ├─ state-creating (MULTI, WATCH, blocking, SUBSCRIBE, SELECT n...) ─> the client's pinned connection
 *        ├─ write / unknown ─> topology_write_backend (the primary, the slot's node)
 *        └─ read-only ─> the L1, else topology_read_backend (read-policy)
 *
 * Ordering: one client's requests to one backend stay on one connection
 * (Redis sees them in the order sent); requests for different backends go
 * out at once and the client's FIFO puts the replies back in order.
 *
 * Contract: router_dispatch() either gives the request its FIFO place
 * (forwarded or answered) and returns ROUTER_DONE, or returns ROUTER_STALL
 * having done nothing: the request must wait for the client's in-flight
 * requests (it pins the client, or the connection they are on is closing)
 * and is dispatched again when they are answered.
 */
#ifndef REDSNANO_PROXY_ROUTER_H
#define REDSNANO_PROXY_ROUTER_H

#include "protocol/request.h"

struct client;
struct backend;

enum { ROUTER_DONE = 0, ROUTER_STALL = 1 };

int router_dispatch(struct client *c, struct reqmsg *m);

#endif
