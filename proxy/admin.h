/*
 * proxy/admin.h — the proxy's own figures, Redis INFO style.
 *
 *   REDSNANO STATS | BACKENDS | L1  ─> admin_report ─> a bulk string of
 *   "# Section" headers and "name:value" lines.
 *   REDSNANO L1 INVALIDATE pattern ─> l1_invalidate ─> :entries dropped
 *
 * Contract: admin_report() appends one complete reply to b and returns 1,
 * or returns 0 (nothing appended) when the subcommand is unknown.
 */
#ifndef REDSNANO_PROXY_ADMIN_H
#define REDSNANO_PROXY_ADMIN_H

#include <stddef.h>

#include "base/buf.h"

int admin_report(struct buf *b, int argc, const char **argv, const size_t *argvlen);

#endif
