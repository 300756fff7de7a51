/*
 * proxy/txn.h — MULTI / EXEC / WATCH in front of a Redis Cluster: one
 * transaction, one node, as Redis Cluster itself allows.
 *
 *   WATCH k...  ─> pins the client to k's node at once (the router's pin path)
 *   MULTI       ─> +OK from the proxy; the transaction is held (commands
 *                  without keys get +QUEUED and wait in c->txn_held)
 *   first keyed command ─> pin to its slot's node, send MULTI + the held
 *                  commands (their replies dropped), then the command itself
 *   keyed command for another node inside it ─> -CROSSSLOT, and EXEC then
 *                  answers -EXECABORT (the node gets DISCARD)
 *   EXEC of a transaction with no key ─> any primary runs it
 *
 * Contract: txn_route() is called by the router in cluster mode for every
 * request of a client not in push mode, with the call's slot (>= 0, or
 * SLOT_NONE = -1; never cross-slot). It returns TXN_PASS when the request
 * is not its business (route it as usual: a pinned client's commands go to
 * its connection), or ROUTER_DONE / ROUTER_STALL as router_dispatch does.
 * txn_forget() drops a held transaction (client closing).
 * txn_exec_aborted() is the EXEC of a transaction flagged CLIENT_TXN_ABORT
 * (a command refused while it was queued), in either mode: the node gets
 * DISCARD, the client -EXECABORT as Redis words it; returns 1 when it
 * answered, 0 when the transaction is not aborted.
 */
#ifndef REDSNANO_PROXY_TXN_H
#define REDSNANO_PROXY_TXN_H

#include "protocol/command.h"
#include "protocol/request.h"

struct client;

#define TXN_PASS (-1)

int txn_route(struct client *c, const struct cmd *cmd, struct reqmsg *m, int slot);

void txn_forget(struct client *c);

int txn_exec_aborted(struct client *c);

#endif
