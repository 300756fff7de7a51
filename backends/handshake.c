/*
 * backends/handshake.c — AUTH and TLS set-up of a backend connection (see
 * handshake.h).
 *
 *   server_connect ─> handshake_begin ─> server_send(AUTH) ─> first in FIFO
 *   first reply ─> handshake_auth_reply: +OK goes on; -ERR closes the
 *                  connection with Redis's text
 */
#include "backends/handshake.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/server.h"
#include "base/log.h"

#define HANDSHAKE_HOST_MAX 256        /* longest host name taken from "host:port" */

static void handshake_auth_reply(struct srvreq *r, const char *reply, size_t len, int failed)
{
    struct server *s = (struct server *)((char *)r - offsetof(struct server, hs_req));

    if (failed || s->state != SERVER_CONNECTED)
        return;                       /* the connection failed on its own: it says why */
    if (len > 0 && reply[0] == '+')
        return;
    char why[160];
    size_t n = len;
    while (n > 0 && (reply[n - 1] == '\r' || reply[n - 1] == '\n'))
        n--;
    if (n > 0 && reply[0] == '-') {
        reply++;
        n--;
    }
    if (n > 100)
        n = 100;
    snprintf(why, sizeof(why), "refused the proxy's credentials: %.*s", (int)n, reply);
    log_warn("%s %s (check %s)", s->name, why, s->hs->directives ? s->hs->directives : "the credentials");
    server_close(s, why);
}

int handshake_begin(struct server *s)
{
    const struct handshake_settings *hs = s->hs;
    char *cmd = NULL;
    int n;

    if (hs == NULL || hs->password == NULL)
        return 0;
    if (hs->user)
        n = redisFormatCommand(&cmd, "AUTH %s %s", hs->user, hs->password);
    else
        n = redisFormatCommand(&cmd, "AUTH %s", hs->password);
    if (n < 0)
        return -ENOMEM;
    memset(&s->hs_req, 0, sizeof(s->hs_req));
    s->hs_req.on_reply = handshake_auth_reply;
    server_send(s, &s->hs_req, cmd, (size_t)n);
    explicit_bzero(cmd, (size_t)n);
    redisFreeCommand(cmd);
    return 0;
}

struct tls_conn *handshake_tls(struct server *s)
{
    const struct handshake_settings *hs = s->hs;
    char host[HANDSHAKE_HOST_MAX];

    if (hs->tls_server_name) {
        snprintf(host, sizeof(host), "%s", hs->tls_server_name);
    } else {
        /* "host:port" or "[v6]:port" -> host */
        const char *p = s->name, *end = strrchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= 2 && p[0] == '[' && p[len - 1] == ']') {
            p++;
            len -= 2;
        }
        if (len >= sizeof(host))
            len = sizeof(host) - 1;
        memcpy(host, p, len);
        host[len] = '\0';
    }
    return tls_conn_new(hs->tls, host);
}
