/*
 * proxy/listener.h — the sockets clients connect to.
 *
 *   bind:port (TCP) / bind:tls-port (TLS) / unixsocket ─> on connection ─> client_accept
 *
 * The TLS listener hands each client proxy->tls_clients (built by main from
 * the tls-* directives); the Unix socket stays plain.
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
