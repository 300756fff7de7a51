/*
 * proxy/protected.h — protected mode: the decision to refuse a client, as
 * Redis makes it, kept pure so that it is tested without a non-loopback
 * address.
 *
 *   client_accept ─> auth_refuses_peer ─> protected_mode_denies(cfg, peer)
 *                    ─> 1: PROTECTED_DENIED_REPLY, then close
 *
 * Contract: no I/O, no globals; addresses are sockaddr_in / sockaddr_in6
 * (v4-mapped v6 addresses count as their v4 address).
 */
#ifndef REDSNANO_PROXY_PROTECTED_H
#define REDSNANO_PROXY_PROTECTED_H

#include <stdbool.h>
#include <sys/socket.h>

/* Redis 7.0's protected-mode refusal, as one error line (with "-" and CRLF). */
#define PROTECTED_DENIED_REPLY                                                                      \
    "-DENIED Redis is running in protected mode because protected mode is enabled and no "      \
    "password is set for the default user. In this mode connections are only accepted from "    \
    "the loopback interface. If you want to connect from external computers to Redis you may "  \
    "adopt one of the following solutions: 1) Disable protected mode by setting "               \
    "'protected-mode no' in redsnano's configuration (or --protected-mode no), however MAKE "   \
    "SURE the proxy is not publicly accessible from internet if you do so. 2) Set up an "       \
    "authentication password for the default user (requirepass) or ACL users (user). NOTE: "   \
    "You only need to do one of the above things in order for the server to start accepting "   \
    "connections from the outside.\r\n"

/*
 * Refuse a client from peer? 1 when protected mode is on, no
 * authentication is configured (no requirepass and no user line:
 * auth_configured == 0), the proxy listens on a bind address that is not
 * loopback-only (a host name counts as reachable from outside) and the peer
 * is not a loopback address. peer NULL (Unix socket) is never refused.
 */
int protected_mode_denies(bool protected_mode, int auth_configured, const char *bind,
                          const struct sockaddr *peer);

#endif
