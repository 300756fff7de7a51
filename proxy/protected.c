/*
 * proxy/protected.c — protected mode's decision (see protected.h).
 */
#include "proxy/protected.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

static int addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return 1;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return in6->sin6_addr.s6_addr[12] == 127;
        return 0;
    }
    return 1;                         /* AF_UNIX and the like: local */
}

/* Is the bind address loopback only ("127.x", "::1", "localhost")? */
static int bind_is_loopback(const char *bind)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (bind == NULL || strcasecmp(bind, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, bind, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, bind, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;                         /* a host name: assume it may be reached from outside */
}

int protected_mode_denies(bool protected_mode, int auth_configured, const char *bind,
                          const struct sockaddr *peer)
{
    if (!protected_mode || auth_configured || peer == NULL || bind_is_loopback(bind))
        return 0;
    return !addr_is_loopback(peer);
}

