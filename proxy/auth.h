/*
 * proxy/auth.h — who a client is: the proxy's own users (requirepass,
 * `user` lines), AUTH, HELLO ... AUTH, ACL WHOAMI, the per-request
 * permission check, and protected mode.
 *
 *   config (requirepass, user...) ──auth_init──> [acl: users]  (proxy/acl.c)
 *   accept ──auth_refuses_peer (protected.h)──> DENIED + close, or a session
 *   AUTH / HELLO AUTH ──auth_command / auth_hello──> c->user
 *   every request ──auth_check──> NOAUTH / NOPERM, or on to the router
 *
 * The backends never see a client's identity: every backend connection is
 * authenticated as the proxy (backend-user / backend-password), so
 * authenticated clients keep sharing the pools; the proxy enforces its own
 * users' permissions before routing.
 *
 * Contract:
 * - Replies and error texts are Redis 7.0's (NOAUTH, WRONGPASS, NOPERM).
 * - Passwords are never logged nor echoed; a failed AUTH is logged at
 *   verbose level with the user name only.
 * - auth_check() costs one flag test for a client whose user may run
 *   everything on every key and channel (the default user without
 *   requirepass: the open proxy), and acl_check() otherwise.
 */
#ifndef REDSNANO_PROXY_AUTH_H
#define REDSNANO_PROXY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "protocol/command.h"
#include "protocol/request.h"
#include "proxy/acl.h"

struct client;
struct config;

/* Build the users from cfg (requirepass, then every `user` line in order).
 * Returns 0, or -1 with a message in err. */
int auth_init(const struct config *cfg, char *err, size_t errlen);

/* Build cfg's users without putting them in force (a reload checks them
 * first). NULL with a message in err. */
struct acl;
struct acl *auth_build(const struct config *cfg, char *err, size_t errlen);

/* Put next (from auth_build) in force, after a reload: every connected
 * client (the list from clients, linked by next) keeps its user by name;
 * one whose user is gone or disabled is closed, as Redis closes the
 * clients of a deleted user; unauthenticated ones get the default user
 * when AUTH is no longer required. The old users are freed. */
void auth_apply(struct acl *next, const struct config *cfg, struct client *clients);

/* Free the users (at exit). */
void auth_free(void);

/* Set a new client's identity: the default user when it needs no AUTH,
 * else none (NOAUTH until it authenticates). */
void auth_client_init(struct client *c);

/* Check one request before routing. Returns 0 when it may go on, 1 when it
 * was refused (the NOAUTH / NOPERM reply is written). cmd may be NULL (a
 * command the table does not know: allowed only to unrestricted users). */
int auth_check(struct client *c, const struct cmd *cmd, const struct reqmsg *m);

/* AUTH [user] password. Always answers. */
void auth_command(struct client *c, const struct reqmsg *m);

/* HELLO's AUTH option (argv[user_at], argv[user_at + 1]; user_at 0 = not
 * given), after proxy/local.c parsed HELLO's options: authenticate when
 * given. Returns 0 when HELLO's own reply may follow, 1 when an error was
 * answered (WRONGPASS, or NOAUTH for an unauthenticated HELLO without AUTH). */
int auth_hello(struct client *c, const struct reqmsg *m, int user_at);

/* c acts as user u from now on (a front door that authenticated it
 * itself: HTTP Basic). */
void auth_client_as(struct client *c, const struct acl_user *u);

/* ACL WHOAMI | LIST | USERS | GETUSER name (cmd->op): the proxy's users,
 * as Redis 7.0 answers (passwords only as SHA-256 digests; GETUSER of an
 * unknown user is nil; no selectors). Always answers. */
void auth_acl_command(struct client *c, const struct cmd *cmd, const struct reqmsg *m);

/* RESET: back to the default user (authenticated only if it needs no AUTH). */
void auth_reset(struct client *c);

/* user/password check for other front doors (HTTP Basic): the user if the
 * pair is valid (ulen 0 = "default"), else NULL. */
const struct acl_user *auth_basic(const char *user, size_t ulen, const char *pass, size_t plen);

/* Must any client authenticate (requirepass or a default user that is off
 * or has passwords)? */
int auth_required(void);

/* protected_mode_denies() (proxy/protected.h) with this process's
 * configuration: 1 = answer PROTECTED_DENIED_REPLY and close. */
int auth_refuses_peer(const struct sockaddr *peer);

#endif
