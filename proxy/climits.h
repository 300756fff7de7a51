/*
 * proxy/climits.h — what one client may hold: output buffer limits,
 * backpressure, and the memory of all clients (maxmemory-clients).
 *
 *   server reply ─> client.c (FIFO / outq) ─> climits_output_check ─┬─ over hard/soft: close (async)
 *                                                                   └─ held + expected > bound:
 *   client request ─> client_process ─> climits_backpressure ───────── wait until it reads
 *   input / output grow ─> climits_account ─> total > maxmemory-clients ─> evict the biggest
 *
 * Held output = bytes written for the client and not yet taken by the
 * kernel (its outq) plus reply bytes waiting in its FIFO behind an earlier
 * reply. Expected = its requests in flight times its average reply size
 * (at least CLIMITS_REPLY_EST_MIN; before its first reply, bound /
 * CLIMITS_FIRST_WINDOW), and never more than CLIMITS_INFLIGHT_MAX in
 * flight (a client whose small replies lowered its average cannot then
 * queue thousands of huge ones ahead of the others). Memory of a client = input buffer +
 * framer buffer + output buffers + FIFO replies.
 *
 * Contract:
 * - climits_start() takes the settings (from main, after the config); they
 *   are read through that pointer, so a reload's new values apply at once.
 * - Closing for a limit never happens inside the caller: the client is
 *   marked and put on a list, closed by climits_before_sleep() (as Redis's
 *   freeClientAsync), so callers may keep using it until they return.
 * - climits_forget() must be called by client_close (takes the client off
 *   the list and out of the total).
 */
#ifndef REDSNANO_PROXY_CLIMITS_H
#define REDSNANO_PROXY_CLIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/config.h"

struct client;

#define CLIMITS_REPLY_EST_MIN 512     /* least bytes assumed per expected reply */
#define CLIMITS_FIRST_WINDOW 16       /* requests in flight before a client's first reply is seen */
#define CLIMITS_INFLIGHT_MAX 1024     /* requests in flight per client, whatever their size */

/* What climits needs from the configuration. */
struct climits_settings {
    struct obuf_limit obuf[OBUF_CLASSES]; /* client-output-buffer-limit per class */
    size_t backpressure;              /* client-backpressure-limit, bytes */
    size_t maxmemory_clients;         /* bytes, 0 = off (a percentage already resolved) */
};

/* Resolve the configuration into settings (maxmemory-clients N% = N% of
 * the machine's memory, or of the cgroup limit when lower). */
void climits_settings_from_config(struct climits_settings *set, const struct config *cfg);

/* Take the settings (main, once before clients arrive). */
void climits_start(const struct climits_settings *set);

/* Output the proxy holds for c (outq + FIFO replies). */
size_t climits_held_output(const struct client *c);

/* Memory held for c's input and output. */
size_t climits_client_mem(const struct client *c);

/* A reply of len bytes arrived for c: update its average reply size. */
void climits_note_reply(struct client *c, size_t len);

/* Check c's held output against its class's limit (Redis's rules); a client
 * over it is logged and closed before the loop next polls. Returns 1 if it
 * is to be closed. */
int climits_output_check(struct client *c);

/* Must c's next request wait (held + expected replies over the bound)?
 * A client with nothing held and nothing in flight never waits. */
int climits_backpressure(const struct client *c);

/* c's memory may have changed: update the total, and when it is over
 * maxmemory-clients, schedule evictions. */
void climits_account(struct client *c);

/* c is closing: off the async list, out of the total. */
void climits_forget(struct client *c);

/* Close the clients marked over a limit, then evict the biggest clients
 * while the total is over maxmemory-clients (the loop's before-sleep). */
void climits_before_sleep(void);

/* Bytes counted for all clients now (REDSNANO STATS). */
size_t climits_total(void);

/* Count every client's memory again (after a reload: maxmemory-clients
 * may have been turned on; while it is off nothing is counted per event). */
void climits_recount(void);

#endif
