/*
 * proxy/local.h — commands the proxy answers itself.
 *
 *   router_dispatch ─> local_* ─> client_reply_buf (keeps reply order)
 *
 * PING, ECHO, QUIT, HELLO [2|3] [AUTH u p] [SETNAME n] (the client's protocol:
 * its replies and its server connections follow it), RESET (unpins, leaves
 * tracking, back to RESP2 and CLIENT REPLY ON), SELECT 0 on an unpinned
 * client, the client's own session (CLIENT ID, INFO, GETNAME, SETNAME,
 * REPLY; CLIENT TRACKING, CACHING, TRACKINGINFO, GETREDIR through
 * proxy/tracking.c), REDSNANO (the proxy's own introspection: STATS, L1,
 * BACKENDS), and the refusal of admin commands. Replies match Redis 7.0's
 * byte for byte where Redis has the command, in the client's protocol.
 */
#ifndef REDSNANO_PROXY_LOCAL_H
#define REDSNANO_PROXY_LOCAL_H

#include "protocol/command.h"
#include "protocol/request.h"

struct client;

/* Answer a CMD_PROXY_LOCAL command. Returns 1 if answered, -1 if it must
 * wait for the client's in-flight requests (HELLO changing the protocol,
 * RESET: dispatch it again then), 0 if it is not the proxy's after all. */
int local_command(struct client *c, const struct cmd *cmd, const struct reqmsg *m);

/* -ERR for an admin command refused by allow-admin-commands. */
void local_deny(struct client *c, const struct reqmsg *m);

/* -ERR wrong number of arguments, as Redis words it. */
void local_arity_error(struct client *c, const struct reqmsg *m);

/* An error reply with this text (without the leading '-'). */
void local_error(struct client *c, const char *text);

/* A status reply (+text). */
void local_status(struct client *c, const char *text);

/* REDSNANO <subcommand>: the proxy's own introspection. */
void local_redsnano(struct client *c, const struct reqmsg *m);

#endif
