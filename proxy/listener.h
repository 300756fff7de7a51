/*
 * proxy/listener.h — the sockets clients connect to.
 *
 *   bind:port (TCP) / unixsocket ─> on connection ─> client_accept
 *
 * Contract: listener_open() opens every configured listener or none
 * (returns a negative error and logs which address failed);
 * listener_close() stops accepting (graceful shutdown).
 */
#ifndef REDSNANO_PROXY_LISTENER_H
#define REDSNANO_PROXY_LISTENER_H

int listener_open(void);
void listener_close(void);

#endif
