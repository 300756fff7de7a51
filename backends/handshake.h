/*
 * backends/handshake.h — the proxy's identity on a backend connection:
 * credentials (AUTH) and TLS, set up before anything else is sent.
 *
 *   server_connect ─> handshake_begin: AUTH [user] password is the first
 *                     request in the FIFO (its reply is checked here)
 *   server_connected ─> handshake_tls: a TLS client engine on the socket;
 *                     server.c moves ciphertext (outq before_write hook,
 *                     read callback)
 *
 * Contract:
 * - Settings come from the proxy at start (struct handshake_settings, kept
 *   by the caller for the process's life) and reach each connection through
 *   struct server's `hs` pointer, set by whoever opens it: the pools and
 *   spares (backend.c), health checks, the L1's connections (pool
 *   dedicated ones), cluster nodes; the Sentinel connections get their
 *   own settings (sentinel-password, sentinel-tls).
 * - The AUTH request goes out before any queued request (the outq is empty
 *   when server_connect queues it). A refusal closes the connection with
 *   "refused the proxy's credentials: <Redis's reply>", so every request
 *   behind it is answered with that text, and health checks report it.
 * - The password is never logged nor copied into any message.
 */
#ifndef REDSNANO_BACKENDS_HANDSHAKE_H
#define REDSNANO_BACKENDS_HANDSHAKE_H

#include "base/tls.h"

struct server;

/* The proxy's identity towards its backends (backend-* directives), or
 * towards the Sentinels (sentinel-password, sentinel-tls). */
struct handshake_settings {
    const char *user;             /* backend-user; NULL = AUTH with the password only */
    const char *password;         /* backend-password; NULL = no AUTH */
    struct tls_ctx *tls;          /* backend-tls: client configuration; NULL = plain TCP */
    const char *tls_server_name;  /* backend-tls-server-name; NULL = the backend's host */
    const char *directives;       /* what to check when credentials are refused, for the log */
};

/* Queue AUTH on a connection that is being opened (called by
 * server_connect when s->hs has a password). Returns 0 or -ENOMEM. */
int handshake_begin(struct server *s);

/* The TLS engine for s once its TCP connection is up (s->hs->tls set):
 * a client in the backend-tls configuration, verifying the backend's name
 * (tls_server_name, else the host part of s->name). NULL out of memory. */
struct tls_conn *handshake_tls(struct server *s);

#endif
