/*
 * backends/health.h — periodic health checks of the primary and replicas.
 *
 *   timer (health-interval) ─> round: for the primary and every replica,
 *       on the backend's own health connection (not the shared pool):
 *           PING                 -> latency_us (EWMA, alpha 0.2)
 *           INFO replication     -> master_repl_offset (primary),
 *                                   master_link_status, slave_repl_offset (replicas)
 *   round complete ─> verdict per backend ─> b->healthy ─> topology_read_backend
 *
 * A replica leaves the read rotation (b->healthy = 0) at its first failed
 * check: an error or a timeout (health-timeout), its connection down,
 * master_link_status:down, or trailing the primary's offset (taken in the
 * same round) by more than replica-max-lag bytes (0 = lag not checked).
 * It comes back after HEALTH_PASSES_TO_RETURN checks in a row pass. Link
 * status and lag are only held against a replica while the primary itself
 * passes its check: with the primary gone every replica's link is down,
 * and stale reads beat no reads. The primary's verdict is recorded (REDSNANO BACKENDS) but never
 * takes it out of service. Each change of state is logged once.
 *
 * Rounds never overlap: the next one starts health-interval after the
 * start of the previous one, or as soon as it completes if it took longer.
 * A backend whose generation changed (topology moved its address) gets a
 * new health connection; a closed one is reopened by the next round.
 *
 * Contract: health_start() returns 0 (or a negative errno if the timer
 * cannot be created); the first round runs as soon as the loop does; health_stop() closes every handle and connection the
 * module opened (they finish closing on the loop) and may be called once.
 */
#ifndef REDSNANO_BACKENDS_HEALTH_H
#define REDSNANO_BACKENDS_HEALTH_H

#include <stdint.h>

struct backend;
struct topology;

#define HEALTH_PASSES_TO_RETURN 2     /* consecutive passing checks to rejoin the rotation */
#define HEALTH_LATENCY_ALPHA 0.2      /* weight of a new PING round trip in latency_us */

/* Figures of one backend's last checks, for admin commands. */
struct health_figures {
    int checked;                      /* at least one check completed since the address was set */
    int link_up;                      /* replica: master_link_status:up (1), down (0), unknown (-1) */
    long long lag;                    /* replica: bytes behind the primary, -1 if unknown */
    uint64_t checks;                  /* checks completed */
    uint64_t failures;                /* checks failed */
    const char *why;                  /* why the last check failed, "" if it passed */
};

/* Start checking t's primary and replicas (static mode), with t's
 * settings (health-interval, health-timeout, replica-max-lag). */
int health_start(struct topology *t);

/* Stop: close the timer and every health connection. */
void health_stop(void);

/* Fill f for b (the primary or one of the replicas). Returns 0, or
 * -ENOENT if b is not checked by this module. */
int health_figures(const struct backend *b, struct health_figures *f);

#endif
