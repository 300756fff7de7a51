/*
 * tests/unit/test_protected.c — protected mode's decision
 * (proxy/protected.c), tested without a non-loopback address: which
 * clients a proxy with no authentication refuses, by bind and peer.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "proxy/protected.h"

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    cr_assert_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    cr_assert_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

Test(protected, non_loopback_client_of_an_open_proxy_on_a_public_bind_is_denied)
{
    struct sockaddr_storage p = v4("10.1.2.3"), q = v6("2001:db8::1"), m = v6("::ffff:192.168.1.9");
    cr_assert_eq(protected_mode_denies(true, 0, "0.0.0.0", SA(p)), 1);
    cr_assert_eq(protected_mode_denies(true, 0, "10.1.2.1", SA(p)), 1);
    cr_assert_eq(protected_mode_denies(true, 0, "::", SA(q)), 1);
    cr_assert_eq(protected_mode_denies(true, 0, "0.0.0.0", SA(m)), 1);
    cr_assert_eq(protected_mode_denies(true, 0, "proxy.example", SA(p)), 1);
}

Test(protected, loopback_clients_are_always_accepted)
{
    struct sockaddr_storage a = v4("127.0.0.1"), b = v4("127.9.9.9"), c = v6("::1"),
                            d = v6("::ffff:127.0.0.1");
    cr_assert_eq(protected_mode_denies(true, 0, "0.0.0.0", SA(a)), 0);
    cr_assert_eq(protected_mode_denies(true, 0, "0.0.0.0", SA(b)), 0);
    cr_assert_eq(protected_mode_denies(true, 0, "::", SA(c)), 0);
    cr_assert_eq(protected_mode_denies(true, 0, "::", SA(d)), 0);
}

Test(protected, authentication_or_protected_mode_no_or_a_loopback_bind_lets_everyone_in)
{
    struct sockaddr_storage p = v4("10.1.2.3");
    cr_assert_eq(protected_mode_denies(true, 1, "0.0.0.0", SA(p)), 0, "requirepass / user set");
    cr_assert_eq(protected_mode_denies(false, 0, "0.0.0.0", SA(p)), 0, "protected-mode no");
    cr_assert_eq(protected_mode_denies(true, 0, "127.0.0.1", SA(p)), 0, "loopback bind");
    cr_assert_eq(protected_mode_denies(true, 0, "::1", SA(p)), 0, "loopback bind v6");
    cr_assert_eq(protected_mode_denies(true, 0, "localhost", SA(p)), 0, "localhost");
    cr_assert_eq(protected_mode_denies(true, 0, "0.0.0.0", NULL), 0, "Unix socket");
}

Test(protected, the_refusal_is_redis_denied_error_line)
{
    const char *r = PROTECTED_DENIED_REPLY;
    cr_assert(strncmp(r, "-DENIED Redis is running in protected mode because protected mode is enabled "
                         "and no password is set for the default user.", 114) == 0, "%s", r);
    size_t n = strlen(r);
    cr_assert(n > 2 && r[n - 2] == '\r' && r[n - 1] == '\n');
    cr_assert_eq(strpbrk(r, "\r\n"), r + n - 2, "one line");
}
