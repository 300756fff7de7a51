/*
 * proxy/fanout.h — one client request answered by several nodes of a Redis
 * Cluster: split by slot and merged, or sent to every primary and merged.
 *
 *   router_dispatch ─(cmd->cluster, keys over slots / keyless)─> fanout_dispatch
 *        │ client_place(): the request's FIFO place
 *        ├─ node A's parts, one request ─> node A (the connection the client uses
 *        │                                  for A, or a pick)
 *        ├─ node B's parts ─> node B      each part follows -MOVED / -ASK itself
 *        └─ ...                           (resent alone)
 *   every part answered ─> merge by cmd->cluster ─> the place's reply
 *
 *   SPLIT_ARRAY  MGET a b c      one MGET per slot (Redis Cluster refuses cross-slot calls even
 *                                on one node), the slots of one node sent as one server
 *                                request; elements put back in key order
 *   SPLIT_OK     MSET a 1 b 2    one MSET per slot; +OK when every part says +OK
 *   SPLIT_SUM    DEL/UNLINK/EXISTS/TOUCH: one call per slot; integers summed
 *   ALL_SUM      DBSIZE          every primary; summed
 *   ALL_CONCAT   KEYS p          every primary; arrays concatenated
 *   ALL_SAME     FLUSHALL, FLUSHDB, SCRIPT LOAD|FLUSH, FUNCTION LOAD|DELETE|FLUSH:
 *                                every primary; the reply when all agree
 *   ALL_AND      SCRIPT EXISTS   every primary; 1 where every primary says 1
 *   ALL_ANY      RANDOMKEY       every primary; a key from a non-empty one
 *   SCAN         SCAN c ...      one primary at a time: the cursor the client
 *                                sees is (node cursor << 8) | node index
 *
 * Any part answering an error makes the whole reply the first such error
 * (in part order); nothing is retried behind the client's back except
 * -MOVED / -ASK (Redis did not run the call).
 *
 * Contract: fanout_dispatch() either gives the request its FIFO place and
 * returns ROUTER_DONE (the reply comes when every part is answered, or at
 * once for an error found before sending), or returns ROUTER_STALL having
 * done nothing (the client has requests in flight on too many connections
 * for the nodes this one needs). Only in cluster mode, outside MULTI; a
 * pinned client's parts for its pinned node go on that connection while it
 * has requests in flight there (after them, as Redis would run them).
 */
#ifndef REDSNANO_PROXY_FANOUT_H
#define REDSNANO_PROXY_FANOUT_H

#include "protocol/command.h"
#include "protocol/request.h"

struct client;

#define FANOUT_SCAN_NODE_BITS 8        /* low bits of a SCAN cursor naming the node */

/* Does this call fan out (cmd->cluster, and for SPLIT_* keys over several
 * slots: slot_cross != 0)? */
int fanout_wanted(const struct cmd *cmd, int slot_cross);

int fanout_dispatch(struct client *c, const struct cmd *cmd, struct reqmsg *m);

#endif
