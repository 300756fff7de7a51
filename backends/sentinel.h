/*
 * backends/sentinel.h — following Redis Sentinel: who is primary, who are replicas.
 *
 *   every health-interval, per Sentinel (command connection, AUTH first if
 *   sentinel-password is set):
 *       SENTINEL master NAME                  -> config-epoch of its view
 *       SENTINEL get-master-addr-by-name NAME -> the primary's address
 *       SENTINEL replicas NAME                -> replicas not s_down/o_down/disconnected
 *   per Sentinel (push connection): SUBSCRIBE +switch-master
 *       "<name> <oldip> <oldport> <newip> <newport>"
 *                 │
 *                 └─> backends/topology.c: topology_set_primary / topology_set_replicas
 *
 * Which answer wins: Sentinels can disagree for a while after a failover
 * (the others learn the new configuration from hello messages). Each view
 * carries its config epoch, and the proxy adopts a polled primary only from
 * a view with a higher epoch than the one it follows (the first answer is
 * adopted as is); a +switch-master is applied when its old address is the
 * primary in force, so a late message cannot undo a newer switch. Replica
 * lists are taken from the lowest-numbered Sentinel whose view is the one
 * in force (sorted, the primary excluded), so that Sentinels that see
 * replicas slightly differently do not make the rotation flap.
 *
 * The proxy never promotes anything. Until a Sentinel answers, the
 * configured primary and replicas are used. A Sentinel that fails (connect
 * error, timeout, error reply) has both connections closed and is retried
 * after a backoff (SENTINEL_BACKOFF_MIN_MS doubling to _MAX_MS); one working
 * Sentinel is enough.
 *
 * Contract: sentinel_start() does nothing and returns 0 unless sentinels
 * and sentinel-master are configured; it returns a negative errno when no
 * Sentinel address resolves or the timer cannot be created (the caller
 * exits). sentinel_stop() closes every handle and connection it opened.
 */
#ifndef REDSNANO_BACKENDS_SENTINEL_H
#define REDSNANO_BACKENDS_SENTINEL_H

#include "base/hostport.h"

#define SENTINEL_BACKOFF_MIN_MS 250   /* first retry delay after a Sentinel fails */
#define SENTINEL_BACKOFF_MAX_MS 8000  /* longest retry delay */
#define SENTINEL_MAX 32               /* Sentinels followed at most */

struct handshake_settings;
struct topology;

/* The Sentinels to ask and what about (the configuration's). */
struct sentinel_settings {
    const struct hostport *addrs;     /* the Sentinels */
    int naddrs;
    const char *master;               /* the master name they monitor, NULL = none */
    const struct handshake_settings *hs; /* AUTH and TLS towards the Sentinels; NULL = none */
};

/* Start polling and subscribing (first poll as soon as the loop runs). */
int sentinel_start(struct topology *t, const struct sentinel_settings *set);

/* Stop: close the timer and every Sentinel connection. */
void sentinel_stop(void);

#endif
