/*
 * base/hostport.h — a backend address as configured: host and port.
 *
 *   config ("host:port", "[v6]:port") ─> struct hostport ─> backends (resolve, connect)
 *
 * Contract: host holds a host name or a literal address without brackets;
 * hostport_name() writes the display form every message uses ("h:p", or
 * "[v6]:p" when the host contains ':'), truncated to cap, NUL-terminated.
 */
#ifndef REDSNANO_BASE_HOSTPORT_H
#define REDSNANO_BASE_HOSTPORT_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct hostport {
    char host[256];              /* host name or literal address, without brackets */
    int port;                    /* 1..65535 */
};

static inline void hostport_name(char *out, size_t cap, const char *host, int port)
{
    if (strchr(host, ':'))
        snprintf(out, cap, "[%s]:%d", host, port);
    else
        snprintf(out, cap, "%s:%d", host, port);
}

#endif
