/*
 * test_auth.c — credentials: the proxy's identity on password-protected
 * backends, its own users (AUTH, HELLO AUTH, ACL users), and Redis's texts.
 *
 *   test ──AUTH / HELLO AUTH──▶ redsnano (requirepass, user ...) ──AUTH backend-password──▶ redis
 *   test ──the same commands──▶ a reference redis with the same users (Redis's own replies)
 *   test ──CLIENT LIST / INFO─▶ each redis directly (who connected, who served what)
 *
 * The redis servers get their password with CONFIG SET after the harness
 * started them (its readiness probe is a plain PING). Each test starts its
 * own servers and proxy.
 *
 * Ports 7240-7254 (this file; test_tls.c uses 7255-7269).
 */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_PORT_BASE 7240                   /* this file's port range start */
#define AUTH_PORT(n) harness_port(AUTH_PORT_BASE, (n))
#define AUTH_REDIS_PASS "s3cret-backend"      /* requirepass of the redis servers */
#define AUTH_PROXY_PASS "top-proxy"           /* the proxy's requirepass */
#define AUTH_UP_MS 10000                      /* bound for backends to be up / in sync */
#define AUTH_CLIENTS 60                       /* authenticated clients of the sharing test */
#define AUTH_MAX_REDIS_CONNS 8                /* "a handful": shared + spares + health + L1 */

static harness_proc *auth_redis[2];  /* primary, replica (or reference redis) */
static harness_proc *auth_proxy;     /* the proxy */

static void auth_fini(void)
{
    harness_proxy_check_exit(auth_proxy);
    auth_proxy = NULL;
    harness_cleanup();
}

TestSuite(auth, .fini = auth_fini, .timeout = 120);

/* ---- helpers ------------------------------------------------------------ */

/* Connect to the redis on port and AUTH with pass (NULL: none). */
static redisContext *auth_connect(int port, const char *user, const char *pass)
{
    redisContext *c = harness_connect(port);
    if (pass != NULL && user != NULL)
        harness_cmd_ok(c, "AUTH %s %s", user, pass);
    else if (pass != NULL)
        harness_cmd_ok(c, "AUTH %s", pass);
    return c;
}

/* Start a redis on port n and give it requirepass AUTH_REDIS_PASS. */
static harness_proc *auth_redis_start(int n, const char *replicaof)
{
    harness_proc *p;
    char port[16];

    if (replicaof != NULL) {
        snprintf(port, sizeof(port), "%s", strchr(replicaof, ' ') + 1);
        char host[64];
        snprintf(host, sizeof(host), "%.*s", (int)(strchr(replicaof, ' ') - replicaof), replicaof);
        p = harness_redis_start(AUTH_PORT(n), "--replicaof", host, port, "--masterauth", AUTH_REDIS_PASS);
    } else {
        p = harness_redis_start(AUTH_PORT(n));
    }
    redisContext *c = harness_connect(p->port);
    harness_cmd_ok(c, "CONFIG SET requirepass %s", AUTH_REDIS_PASS);
    redisFree(c);
    return p;
}

/* The text of a REDSNANO report through an authenticated connection. */
static char *auth_report(redisContext *px, const char *what)
{
    redisReply *r = harness_cmd(px, "REDSNANO %s", what);
    char *s = (r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
                  ? strdup(r->str) : harness_reply_str(r);
    if (r)
        freeReplyObject(r);
    return s;
}

/* Does REDSNANO <what> contain needle? */
static bool auth_report_has(redisContext *px, const char *what, const char *needle)
{
    char *s = auth_report(px, what);
    bool found = strstr(s, needle) != NULL;
    free(s);
    return found;
}

/* Are n backends listed with health=up and none down? */
static bool auth_backends_up(redisContext *px, int n)
{
    char *s = auth_report(px, "BACKENDS");
    int up = 0;
    for (const char *p = s; (p = strstr(p, "health=up")) != NULL; p++)
        up++;
    bool ok = up == n && strstr(s, "health=down") == NULL;
    free(s);
    return ok;
}

/* Does the replica on port have key = want (direct check, authenticated)? */
static bool auth_replica_has(int port, const char *key, const char *want)
{
    redisContext *c = harness_try_connect(port, 500);
    bool ok = false;
    if (c == NULL)
        return false;
    redisReply *r = redisCommand(c, "AUTH %s", AUTH_REDIS_PASS);
    if (r)
        freeReplyObject(r);
    r = redisCommand(c, "GET %s", key);
    ok = r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Lines of CLIENT LIST on a redis (its connected clients, ours included). */
static int auth_redis_clients(int port, char **list)
{
    redisContext *c = auth_connect(port, NULL, AUTH_REDIS_PASS);
    redisReply *r = harness_expect(c, REDIS_REPLY_STRING, "CLIENT LIST");
    int n = 0;
    for (const char *p = r->str; (p = strchr(p, '\n')) != NULL; p++)
        n++;
    if (list)
        *list = strdup(r->str);
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* The same command on the proxy and on the reference redis: same reply. */
#define SAME(px, ref, ...)                                                                    \
    do {                                                                                      \
        redisReply *a_ = harness_reply((px), __VA_ARGS__);                                    \
        redisReply *b_ = harness_reply((ref), __VA_ARGS__);                                   \
        char *as_ = harness_reply_str(a_), *bs_ = harness_reply_str(b_);                      \
        cr_assert(harness_reply_equal(a_, b_), "line %d: proxy replied %s, redis %s",         \
                  __LINE__, as_, bs_);                                                        \
        free(as_);                                                                            \
        free(bs_);                                                                            \
        freeReplyObject(a_);                                                                  \
        freeReplyObject(b_);                                                                  \
    } while (0)

/* ---- the proxy in front of password-protected servers --------------------- */

Test(auth, requirepass_primary_and_masterauth_replica_are_up_l1_serves_replica_reads)
{
    char primary[32], replica[32], rof[64];

    harness_skip_if_direct();
    auth_redis[0] = auth_redis_start(0, NULL);
    snprintf(rof, sizeof(rof), "127.0.0.1 %d", AUTH_PORT(0));
    auth_redis[1] = auth_redis_start(1, rof);
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", AUTH_PORT(0));
    snprintf(replica, sizeof(replica), "127.0.0.1:%d", AUTH_PORT(1));
    auth_proxy = harness_proxy_start_unready(AUTH_PORT(2), "--primary", primary, "--replica", replica,
                                             "--backend-password", AUTH_REDIS_PASS,
                                             "--requirepass", AUTH_PROXY_PASS,
                                             "--l1-maxmemory", "1mb", "--l1-admission", "no", "--read-policy", "replica",
                                             "--read-your-writes", "0",
                                             "--health-interval", "100", "--loglevel", "debug");
    harness_diag_set(auth_proxy, NULL);
    redisContext *px = auth_connect(auth_proxy->port, NULL, AUTH_PROXY_PASS);

    cr_assert(harness_wait_until(auth_backends_up(px, 2), AUTH_UP_MS), "backends not up");
    cr_assert(harness_wait_until(auth_report_has(px, "L1", "l1_ready:1"), AUTH_UP_MS), "L1 not serving");

    harness_cmd_ok(px, "SET auth:k v1");
    cr_assert(harness_wait_until(auth_replica_has(AUTH_PORT(1), "auth:k", "v1"), AUTH_UP_MS));
    harness_expect_bulk(px, "v1", "GET auth:k");     /* fills the L1 */
    harness_expect_bulk(px, "v1", "GET auth:k");     /* hit */
    char *l1 = auth_report(px, "L1");
    cr_assert_geq(harness_text_ll(l1, "l1_hits", 0), 1, "%s", l1);
    free(l1);

    /* A read the L1 does not cache goes to the replica. */
    redisContext *rc = auth_connect(AUTH_PORT(1), NULL, AUTH_REDIS_PASS);
    long long before = harness_cmdstat_calls(rc, "strlen");
    harness_expect_int(px, 2, "STRLEN auth:k");
    cr_assert_eq(harness_cmdstat_calls(rc, "strlen"), before + 1, "STRLEN not served by the replica");
    redisFree(rc);

    /* A write after the replica read is seen through the L1. */
    harness_cmd_ok(px, "SET auth:k v2");
    harness_expect_bulk(px, "v2", "GET auth:k");
    redisFree(px);
}

Test(auth, wrong_backend_password_marks_backend_down_with_redis_reply)
{
    char primary[32];

    harness_skip_if_direct();
    auth_redis[0] = auth_redis_start(0, NULL);
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", AUTH_PORT(0));
    auth_proxy = harness_proxy_start_unready(AUTH_PORT(2), "--primary", primary,
                                             "--backend-password", "not-the-password",
                                             "--health-interval", "100");
    harness_diag_set(auth_proxy, NULL);
    redisContext *px = harness_connect(auth_proxy->port);
    cr_assert(harness_wait_until(auth_report_has(px, "BACKENDS", "health=down"), AUTH_UP_MS));
    redisReply *r = harness_expect_error(px, "ERR redsnano: backend", "GET k");
    cr_assert(strstr(r->str, "refused the proxy's credentials: WRONGPASS invalid username-password pair") != NULL,
              "%s", r->str);
    freeReplyObject(r);
    char *b = auth_report(px, "BACKENDS");
    cr_assert_null(strstr(b, "not-the-password"), "password shown: %s", b);
    free(b);
    redisFree(px);
}

Test(auth, sixty_authenticated_clients_share_a_handful_of_redis_connections)
{
    char primary[32];
    redisContext *cs[AUTH_CLIENTS];

    harness_skip_if_direct();
    auth_redis[0] = auth_redis_start(0, NULL);
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", AUTH_PORT(0));
    auth_proxy = harness_proxy_start_unready(AUTH_PORT(2), "--primary", primary,
                                             "--backend-password", AUTH_REDIS_PASS,
                                             "--requirepass", AUTH_PROXY_PASS,
                                             "--backend-connections", "1",
                                             "--backend-spare-connections", "2");
    harness_diag_set(auth_proxy, NULL);
    for (int i = 0; i < AUTH_CLIENTS; i++) {
        cs[i] = harness_connect(auth_proxy->port);
        freeReplyObject(harness_expect_error(cs[i], "NOAUTH Authentication required.", "GET k"));
        harness_cmd_ok(cs[i], "AUTH %s", AUTH_PROXY_PASS);
    }
    for (int i = 0; i < AUTH_CLIENTS; i++)
        harness_cmd_ok(cs[i], "SET auth:c:%d %d", i, i);
    for (int i = 0; i < AUTH_CLIENTS; i++) {
        char want[16];
        snprintf(want, sizeof(want), "%d", i);
        harness_expect_bulk(cs[i], want, "GET auth:c:%d", i);
    }
    char *list = NULL;
    int n = auth_redis_clients(AUTH_PORT(0), &list);
    /* ours (CLIENT LIST) + the proxy's shared, spare and health connections */
    cr_assert_leq(n, AUTH_MAX_REDIS_CONNS, "%d connections on redis for %d clients:\n%s", n,
                  AUTH_CLIENTS, list);
    cr_assert_null(strstr(list, "user=(null)"), "%s", list);
    free(list);
    redisContext *rc = auth_connect(AUTH_PORT(0), NULL, AUTH_REDIS_PASS);
    cr_assert_leq(harness_cmdstat_calls(rc, "auth"), 12, "AUTH once per proxy connection, not per client");
    redisFree(rc);
    for (int i = 0; i < AUTH_CLIENTS; i++)
        redisFree(cs[i]);
}

/* ---- the proxy's users: Redis's replies ------------------------------------ */

/* Start an open redis (the proxy's backend) and a reference redis with the
 * same users as the proxy's configuration, and the proxy. */
static void auth_start_users(redisContext **px, redisContext **ref)
{
    char primary[32];

    auth_redis[0] = harness_redis_start(AUTH_PORT(0));
    auth_redis[1] = harness_redis_start(AUTH_PORT(1));
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", AUTH_PORT(0));
    auth_proxy = harness_proxy_start_unready(
        AUTH_PORT(2), "--primary", primary, "--requirepass", AUTH_PROXY_PASS,
        "--user", "alice", "on", ">alicepw", "~a:*", "+@read", "+@write", "-@dangerous", "+acl|whoami",
        "--user", "reader", "on", ">readerpw", "%R~*", "+@read", "+@connection",
        "--user", "off-user", "off", ">offpw", "+@all", "~*",
        "--loglevel", "debug");
    harness_diag_set(auth_proxy, NULL);
    redisContext *r = harness_connect(auth_redis[1]->port);
    harness_cmd_ok(r, "ACL SETUSER alice on >alicepw ~a:* +@read +@write -@dangerous +acl|whoami");
    harness_cmd_ok(r, "ACL SETUSER reader on >readerpw %%R~* +@read +@connection");
    harness_cmd_ok(r, "ACL SETUSER off-user off >offpw +@all ~*");
    harness_cmd_ok(r, "CONFIG SET requirepass %s", AUTH_PROXY_PASS);
    redisFree(r);
    *px = harness_connect(auth_proxy->port);
    *ref = harness_connect(auth_redis[1]->port);
}

Test(auth, acl_users_are_allowed_and_refused_per_key_pattern_and_category_as_redis)
{
    redisContext *px, *ref;

    harness_skip_if_direct();
    auth_start_users(&px, &ref);
    SAME(px, ref, "AUTH alice alicepw");
    SAME(px, ref, "SET a:1 x");
    SAME(px, ref, "GET a:1");
    SAME(px, ref, "SET b:1 x");                      /* key outside ~a:* */
    SAME(px, ref, "MSET a:2 y b:2 y");               /* one key outside */
    SAME(px, ref, "FLUSHALL");                       /* -@dangerous */
    SAME(px, ref, "CONFIG GET port");                /* config|get: admin, dangerous */
    SAME(px, ref, "ACL WHOAMI");
    SAME(px, ref, "SUBSCRIBE ch");                   /* no channel permissions (Redis 7 default) */

    SAME(px, ref, "AUTH reader readerpw");
    SAME(px, ref, "ACL WHOAMI");                     /* no +acl|whoami */
    SAME(px, ref, "GET a:1");                        /* %R~* reads anything */
    SAME(px, ref, "SET a:1 z");                      /* no write command */
    SAME(px, ref, "COPY a:1 a:3");                   /* command refused before keys */
    SAME(px, ref, "PING");

    SAME(px, ref, "AUTH off-user offpw");            /* disabled */
    SAME(px, ref, "GET a:1");                        /* still reader */
    redisFree(px);
    redisFree(ref);
}

/* Every word of a reply's strings (elements flattened), sorted, joined by
 * spaces (malloc'd). */
static int auth_word_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void auth_words_collect(const redisReply *r, char ***w, size_t *n, size_t *cap)
{
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++)
            auth_words_collect(r->element[i], w, n, cap);
        return;
    }
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_ERROR)
        return;
    char *copy = strdup(r->str), *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
        if (*n == *cap)
            *w = realloc(*w, (*cap = *cap * 2 + 16) * sizeof(**w));
        (*w)[(*n)++] = strdup(t);
    }
    free(copy);
}

static char *auth_sorted_words(const redisReply *r)
{
    char **w = NULL, *out;
    size_t n = 0, cap = 0, len = 1;

    auth_words_collect(r, &w, &n, &cap);
    qsort(w, n, sizeof(*w), auth_word_cmp);
    for (size_t i = 0; i < n; i++)
        len += strlen(w[i]) + 1;
    out = calloc(1, len);
    for (size_t i = 0; i < n; i++) {
        strcat(out, w[i]);
        strcat(out, " ");
        free(w[i]);
    }
    free(w);
    return out;
}

/* The same rules on the proxy and on the reference redis, word for word:
 * Redis lists single commands in its hash table's order, the proxy in its
 * command table's. */
#define SAME_WORDS(px, ref, cmd)                                                              \
    do {                                                                                      \
        redisReply *a_ = harness_reply((px), cmd), *b_ = harness_reply((ref), cmd);           \
        char *as_ = auth_sorted_words(a_), *bs_ = auth_sorted_words(b_);                      \
        cr_assert(a_->type == b_->type && a_->elements == b_->elements && strcmp(as_, bs_) == 0, \
                  "%s: proxy replied %s, redis %s", cmd, as_, bs_);                          \
        free(as_);                                                                            \
        free(bs_);                                                                            \
        freeReplyObject(a_);                                                                  \
        freeReplyObject(b_);                                                                  \
    } while (0)

/* ACL LIST / USERS / GETUSER describe the proxy's users (the ones it
 * enforces), as Redis describes the same users. */
Test(auth, acl_list_users_and_getuser_describe_the_proxys_users_as_redis)
{
    redisContext *px, *ref;

    harness_skip_if_direct();
    auth_start_users(&px, &ref);
    SAME(px, ref, "ACL LIST");                       /* NOAUTH */
    SAME(px, ref, "AUTH %s", AUTH_PROXY_PASS);
    SAME(px, ref, "ACL USERS");
    SAME_WORDS(px, ref, "ACL LIST");
    SAME_WORDS(px, ref, "ACL GETUSER alice");
    SAME(px, ref, "ACL GETUSER reader");
    SAME(px, ref, "ACL GETUSER off-user");
    SAME(px, ref, "ACL GETUSER default");
    SAME(px, ref, "ACL GETUSER nobody");             /* nil */
    SAME(px, ref, "ACL GETUSER");                    /* arity */
    SAME(px, ref, "AUTH alice alicepw");
    SAME(px, ref, "ACL LIST");                       /* NOPERM: -@dangerous */
    SAME(px, ref, "ACL USERS");
    redisFree(px);
    redisFree(ref);
}

Test(auth, noauth_hello_auth_and_wrong_passwords_reply_as_redis)
{
    redisContext *px, *ref;

    harness_skip_if_direct();
    auth_start_users(&px, &ref);
    SAME(px, ref, "GET a:1");                        /* NOAUTH */
    SAME(px, ref, "ACL WHOAMI");                     /* NOAUTH */
    SAME(px, ref, "HELLO 2");                        /* NOAUTH HELLO ... */
    SAME(px, ref, "AUTH nobody pw");                 /* WRONGPASS */
    SAME(px, ref, "AUTH wrong");                     /* WRONGPASS for default */
    SAME(px, ref, "AUTH a b c");                     /* syntax error */
    SAME(px, ref, "HELLO 2 AUTH alice wrong");       /* WRONGPASS */
    SAME(px, ref, "HELLO 2 FOO");                    /* syntax error in option */
    SAME(px, ref, "GET a:1");                        /* still NOAUTH */

    /* HELLO AUTH authenticates (the reply's id and version differ from Redis's). */
    redisReply *r = harness_expect(px, REDIS_REPLY_ARRAY, "HELLO 2 AUTH alice alicepw");
    cr_assert(r->elements >= 6 && strcmp(r->element[4]->str, "proto") == 0 &&
              r->element[5]->integer == 2);
    freeReplyObject(r);
    harness_expect_bulk(px, "alice", "ACL WHOAMI");
    /* AUTH nobody, AUTH wrong, HELLO AUTH alice wrong; NOAUTH for the
     * harness's readiness PING, GET, ACL WHOAMI, GET */
    cr_assert_eq(harness_proxy_stat_ll(px, "auth_failures"), 3);
    long long denied = harness_proxy_stat_ll(px, "acl_denied");
    cr_assert_eq(denied, 4, "acl_denied %lld", denied);
    harness_cmd_ok(px, "AUTH %s", AUTH_PROXY_PASS);
    harness_expect_bulk(px, "default", "ACL WHOAMI");
    harness_cmd_ok(px, "SET b:1 x");                 /* default: everything */
    harness_expect_status(px, "RESET", "RESET");
    freeReplyObject(harness_expect_error(px, "NOAUTH", "GET b:1")); /* RESET: back to the default user, unauthenticated */

    /* Passwords never reach the log nor REDSNANO output. */
    harness_cmd_ok(px, "AUTH %s", AUTH_PROXY_PASS);
    char *stats = auth_report(px, "STATS");
    cr_assert_null(strstr(stats, AUTH_PROXY_PASS));
    free(stats);
    char *log = harness_log_tail(auth_proxy, 1 << 20);
    cr_assert_null(strstr(log, "alicepw"), "password in the log");
    cr_assert_null(strstr(log, AUTH_PROXY_PASS), "password in the log");
    cr_assert_not_null(strstr(log, "AUTH failed for user 'nobody'"), "%s", log);
    free(log);
    redisFree(px);
    redisFree(ref);
}

Test(auth, open_proxy_answers_auth_as_redis_without_password)
{
    char primary[32];

    harness_skip_if_direct();
    auth_redis[0] = harness_redis_start(AUTH_PORT(0));
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", AUTH_PORT(0));
    auth_proxy = harness_proxy_start(AUTH_PORT(2), "--primary", primary);
    harness_diag_set(auth_proxy, NULL);
    redisContext *px = harness_connect(auth_proxy->port);
    redisContext *ref = harness_connect(auth_redis[0]->port);
    SAME(px, ref, "AUTH pw");                        /* no password configured */
    SAME(px, ref, "AUTH default anything");          /* nopass: any password */
    SAME(px, ref, "ACL WHOAMI");
    redisFree(px);
    redisFree(ref);
}

/* Redis queues AUTH (and CLIENT SETNAME, HELLO...) inside MULTI and runs it
 * at EXEC; the proxy answers those itself, so it refuses them there and
 * the transaction aborts, as after any command refused while queued —
 * rather than an immediate +OK that would leave EXEC's reply one element
 * short of what the client counts. */
Test(auth, auth_inside_multi_is_refused_and_exec_aborts)
{
    char primary[32];

    harness_skip_if_direct();
    auth_redis[0] = harness_redis_start(AUTH_PORT(0));
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", AUTH_PORT(0));
    auth_proxy = harness_proxy_start_unready(AUTH_PORT(2), "--primary", primary,
                                             "--requirepass", AUTH_PROXY_PASS, "--health-interval", "100");
    harness_diag_set(auth_proxy, NULL);
    redisContext *px = auth_connect(auth_proxy->port, NULL, AUTH_PROXY_PASS);

    harness_cmd_ok(px, "MULTI");
    harness_expect_status(px, "QUEUED", "SET multi:k v1");
    redisReply *r = harness_expect_error(px, "ERR redsnano: 'AUTH' is answered by the proxy", "AUTH %s",
                                         AUTH_PROXY_PASS);
    freeReplyObject(r);
    r = harness_expect_error(px, "ERR redsnano: 'CLIENT SETNAME' is answered by the proxy", "CLIENT SETNAME x");
    freeReplyObject(r);
    r = harness_expect_error(px, "EXECABORT Transaction discarded", "EXEC");
    freeReplyObject(r);
    redisContext *rc = harness_connect(AUTH_PORT(0));
    harness_expect_bulk(rc, NULL, "GET multi:k");

    /* The connection stays whole: the next transaction runs. */
    harness_cmd_ok(px, "MULTI");
    harness_expect_status(px, "QUEUED", "SET multi:k v2");
    r = harness_cmd(px, "EXEC");
    cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1, "EXEC: %s", harness_reply_str(r));
    freeReplyObject(r);
    harness_expect_bulk(rc, "v2", "GET multi:k");
    redisFree(rc);
    redisFree(px);
}
