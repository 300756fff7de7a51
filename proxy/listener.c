/*
 * proxy/listener.c — TCP and Unix listeners (see listener.h).
 */
#include "proxy/listener.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proxy/client.h"
#include "base/log.h"
#include "proxy/proxy.h"

#define LISTEN_BACKLOG 511             /* as Redis's tcp-backlog default */

static uv_tcp_t tcp_listener;
static uv_tcp_t tls_listener;
static uv_pipe_t unix_listener;
static int tcp_open, tls_open, unix_open;

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) {
        log_warn("Accepting a client failed: %s", uv_strerror(status));
        return;
    }
    int rc = client_accept(server, server == (uv_stream_t *)&unix_listener,
                           server == (uv_stream_t *)&tls_listener ? proxy->tls_clients : NULL);
    if (rc < 0)
        log_warn("Accepting a client failed: %s", uv_strerror(rc));
}

/* Listen on bind:port with h. Returns 0 or a negative error (logged). */
static int listen_tcp(uv_tcp_t *h, int *open, int port, const char *what)
{
    const struct config *cfg = proxy->cfg;
    struct sockaddr_storage ss;
    int rc;

    if (strchr(cfg->bind, ':'))
        rc = uv_ip6_addr(cfg->bind, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(cfg->bind, port, (struct sockaddr_in *)&ss);
    if (rc < 0) {
        log_warn("Bad bind address %s: %s", cfg->bind, uv_strerror(rc));
        return rc;
    }
    uv_tcp_init(proxy->loop, h);
    *open = 1;
    if ((rc = uv_tcp_bind(h, (const struct sockaddr *)&ss, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)h, LISTEN_BACKLOG, on_connection)) < 0) {
        log_warn("Could not listen on %s:%d: %s", cfg->bind, port, uv_strerror(rc));
        return rc;
    }
    log_notice("Ready to accept %sconnections on %s:%d", what, cfg->bind, port);
    return 0;
}

int listener_open(void)
{
    const struct config *cfg = proxy->cfg;
    int rc;

    if (cfg->port > 0 && (rc = listen_tcp(&tcp_listener, &tcp_open, cfg->port, "")) < 0) {
        listener_close();
        return rc;
    }
    if (cfg->tls_port > 0 && (rc = listen_tcp(&tls_listener, &tls_open, cfg->tls_port, "TLS ")) < 0) {
        listener_close();
        return rc;
    }
    if (cfg->unixsocket && cfg->unixsocket[0]) {
        unlink(cfg->unixsocket);
        uv_pipe_init(proxy->loop, &unix_listener, 0);
        unix_open = 1;
        if ((rc = uv_pipe_bind(&unix_listener, cfg->unixsocket)) < 0 ||
            (rc = uv_listen((uv_stream_t *)&unix_listener, LISTEN_BACKLOG, on_connection)) < 0) {
            log_warn("Could not listen on %s: %s", cfg->unixsocket, uv_strerror(rc));
            listener_close();
            return rc;
        }
        log_notice("Ready to accept connections on %s", cfg->unixsocket);
    }
    if (!tcp_open && !tls_open && !unix_open) {
        log_warn("Nothing to listen on: set port or unixsocket");
        return UV_EINVAL;
    }
    return 0;
}

void listener_close(void)
{
    if (tcp_open) {
        uv_close((uv_handle_t *)&tcp_listener, NULL);
        tcp_open = 0;
    }
    if (tls_open) {
        uv_close((uv_handle_t *)&tls_listener, NULL);
        tls_open = 0;
    }
    if (unix_open) {
        uv_close((uv_handle_t *)&unix_listener, NULL);
        unix_open = 0;
        if (proxy->cfg->unixsocket)
            unlink(proxy->cfg->unixsocket);
    }
}
