/*
 * backends/topology.h — who is primary, who are replicas, changed at run time.
 *
 *   config (static)  ─┐
 *   backends/sentinel ┼─> topology_set_primary / topology_set_replicas
 *                     │        ├─ primary moved: its connections close
 *                     │        │  (requests in flight get -ERR), clients
 *                     │        │  pinned to it end with an error, the L1 is
 *                     │        │  told (revalidate, never trust old tracking)
 *                     │        └─ replicas: rotation replaced, health reset
 *
 * The proxy never promotes anything: these are only called with what the
 * configuration or Sentinel says.
 *
 * Contract: both return 0 when applied (or when nothing changed: no
 * disruption then), -1 when the address cannot be resolved (nothing
 * changed). Listeners (topology_on_primary_change) run after the switch.
 */
#ifndef REDSNANO_BACKENDS_TOPOLOGY_H
#define REDSNANO_BACKENDS_TOPOLOGY_H

#include "proxy/config.h"

int topology_set_primary(const char *host, int port);
int topology_set_replicas(const struct config_addr *addrs, int n);

/* Called after the primary changed (the L1 revalidates). One listener. */
extern void (*topology_on_primary_change)(void);

#endif
