/*
 * proxy/acl.h — the proxy's own users and permissions (Redis 7.0 ACLs).
 *
 *   config (user / requirepass lines) --acl_setuser()--> [acl: users]
 *   AUTH / HELLO AUTH ---------------acl_authenticate()--> struct acl_user *
 *   request argv -> cmd_lookup_argv() -> acl_check(user, cmd, argv) -> ok
 *                                        or NOPERM command / key / channel
 *   ACL LIST / WHOAMI / GETUSER <------- acl_user_describe()
 *
 * Contract:
 * - Pure: no I/O, no event loop, no globals. An acl owns its users; a user
 *   pointer stays valid (and sees later ACL SETUSER changes, as a Redis
 *   client sees them) until acl_deluser() of that name or acl_free().
 * - Rules are Redis 7.0's ACL SETUSER syntax, applied left to right (later
 *   rules win): on, off, nopass, resetpass, >pass, <pass, #sha256hex,
 *   !sha256hex, ~pat, %R~pat, %W~pat, %RW~pat, allkeys, resetkeys, &pat,
 *   allchannels, resetchannels, +@cat, -@cat, +cmd, -cmd, +cmd|sub, -cmd|sub,
 *   +cmd|firstarg, allcommands, nocommands, reset, sanitize-payload,
 *   skip-sanitize-payload, clearselectors. Selectors "(...)" are refused.
 * - Passwords are kept only as SHA-256 digests and compared in constant
 *   time (over every stored digest, whatever matches).
 * - Error texts are Redis 7.0.15's, checked against a live server (see the
 *   comment at the top of acl.c); replies are built by the caller as
 *   "-" + text + "\r\n".
 * - acl_check() never allocates except for calls with more than
 *   ACL_KEYS_INLINE keys; it follows Redis 7.0's ACLSelectorCheckCmd():
 *   command bit (or allowed first argument), then keys, then channels.
 */
#ifndef REDSNANO_PROXY_ACL_H
#define REDSNANO_PROXY_ACL_H

#include <stddef.h>

#include "protocol/command.h"

/* Reply texts (without the leading '-' and the CRLF), as Redis 7.0 sends them. */
#define ACL_ERR_NOAUTH    "NOAUTH Authentication required."
#define ACL_ERR_WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."
#define ACL_ERR_NOPERM_KEY \
    "NOPERM this user has no permissions to access one of the keys used as arguments"
#define ACL_ERR_NOPERM_CHANNEL \
    "NOPERM this user has no permissions to access one of the channels used as arguments"

/* Keys checked without allocating (more are checked from a heap array). */
#define ACL_KEYS_INLINE 64

struct acl;
struct acl_user;

/* Verdict of acl_check(). */
enum acl_verdict {
    ACL_OK = 0,           /* may run */
    ACL_DENIED_CMD,       /* NOPERM ... run the '<cmd>' command */
    ACL_DENIED_KEY,       /* NOPERM ... one of the keys */
    ACL_DENIED_CHANNEL,   /* NOPERM ... one of the channels */
};

/* Parts of a user for acl_user_describe(). */
enum acl_describe {
    ACL_DESCRIBE_LIST,      /* the ACL LIST line: "user <name> <flags> #<hash>... <keys> <channels> <commands>" */
    ACL_DESCRIBE_FLAGS,     /* "on nopass" ... (GETUSER flags, space-separated) */
    ACL_DESCRIBE_PASSWORDS, /* hex SHA-256 digests, space-separated (GETUSER passwords) */
    ACL_DESCRIBE_COMMANDS,  /* "-@all +@read -keys" (GETUSER commands) */
    ACL_DESCRIBE_KEYS,      /* "~a:* %R~r:*" (GETUSER keys) */
    ACL_DESCRIBE_CHANNELS,  /* "&ch:*" (GETUSER channels) */
};

/* A new ACL holding only the user "default" (on, nopass, ~*, &*, +@all).
 * NULL if out of memory. */
struct acl *acl_new(void);

/* Free the ACL and all its users. NULL is a no-op. */
void acl_free(struct acl *acl);

/*
 * ACL SETUSER name rules...: create the user name[0..namelen) if needed (a new user starts
 * off, without passwords, keys, channels or commands), then apply rules[0..n)
 * in order; rules[i] is rules_len[i] bytes (rules_len may be NULL when every
 * rule is NUL-terminated). Returns 0, or -1 with nothing changed (no user
 * created either) and err (if not NULL) holding Redis's message, e.g.
 * "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category
 * name in ACL", truncated to errlen.
 */
int acl_setuser(struct acl *acl, const char *name, size_t namelen, const char *const *rules,
                const size_t *rules_len, int n, char *err, size_t errlen);

/*
 * requirepass: `default` gets "resetpass" then ">pass" (an empty pass gives
 * "nopass" instead, as Redis's config does). Returns 0, -1 out of memory.
 */
int acl_requirepass(struct acl *acl, const char *pass, size_t len);

/* Delete a user (not "default": -1). The caller must first drop every
 * reference to it (Redis disconnects its clients). 0, or -1 if unknown. */
int acl_deluser(struct acl *acl, const char *name, size_t len);

/* The user called name[0..len), or NULL. */
struct acl_user *acl_user_get(const struct acl *acl, const char *name, size_t len);

/* The "default" user (always exists). */
struct acl_user *acl_default_user(const struct acl *acl);

/* Must a new connection authenticate before running commands (the default
 * user is off or has passwords)? 1 yes, 0 no: it is `default` already. */
int acl_auth_required(const struct acl *acl);

/*
 * AUTH user pass: the user if it exists, is on, and pass matches one of
 * its passwords (any pass if nopass); NULL otherwise (reply
 * ACL_ERR_WRONGPASS). Constant time in the password for a given user.
 */
struct acl_user *acl_authenticate(const struct acl *acl, const char *user, size_t ulen,
                                  const char *pass, size_t plen);

/*
 * May user run cmd with argv[0..argc)? cmd is what cmd_lookup_argv() found
 * for argv (NULL: unknown command, ACL_DENIED_CMD). On a denial of a key or
 * channel, *errpos (if not NULL) gets its argv index (-1 when the keys
 * could not be determined: such a call is denied unless the user has
 * allkeys, where Redis would refuse it with a syntax error instead).
 * Commands Redis flags no_auth (AUTH, HELLO, QUIT, RESET) pass the command
 * check. Whether the user is on is not checked (Redis keeps running the
 * connections of a disabled user).
 */
enum acl_verdict acl_check(const struct acl_user *user, const struct cmd *cmd, int argc,
                           const char *const *argv, const size_t *argvlen, int *errpos);

/*
 * The reply text for a denial (without '-' and CRLF): for ACL_DENIED_CMD
 * "NOPERM this user has no permissions to run the '<cmd>' command", where
 * <cmd> is "get" or "config|get"; the key and channel texts otherwise.
 * Writes at most len bytes including the NUL; returns buf.
 */
const char *acl_error_text(enum acl_verdict v, const struct cmd *cmd, char *buf, size_t len);

/* The user's name (NUL-terminated). */
const char *acl_user_name(const struct acl_user *u);

/* Number of users, and the i-th in name order (byte order, as ACL LIST). */
size_t acl_user_count(const struct acl *acl);
struct acl_user *acl_user_at(const struct acl *acl, size_t i);

/*
 * Render a part of user as Redis 7.0 prints it (passwords only as their
 * SHA-256 hex). The command rules are rebuilt from the permissions as Redis
 * 7.0 does (+@all or -@all, best-fitting categories, then single commands),
 * so they describe the same permissions, though single commands come out in
 * this table's name order rather than Redis's internal one. Returns a
 * malloc'd NUL-terminated string the caller frees, NULL out of memory.
 */
char *acl_user_describe(const struct acl_user *u, enum acl_describe what);

/*
 * Redis's glob (stringmatchlen, case-sensitive): *, ?, [set], [^set],
 * [a-z], \x. 1 if string[0..slen) matches pattern[0..plen), else 0.
 */
int acl_glob_match(const char *pattern, size_t plen, const char *string, size_t slen);

#endif
