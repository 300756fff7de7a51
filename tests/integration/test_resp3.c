/*
 * test_resp3.c — RESP3 through the proxy is Redis's RESP3, byte for byte.
 *
 *   test ──raw socket, HELLO 2|3──▶ redsnano (PORT 2) ──▶ redis "backend" (PORT 1)
 *   test ──raw socket, HELLO 2|3──────────────────────▶ redis "reference" (PORT 0)
 *
 * A corpus of commands (every data type, nulls of both kinds, maps, sets,
 * doubles, booleans, verbatim strings, Lua's RESP3 conversions, pinned
 * sessions, the proxy's own answers) runs through the proxy and against
 * the reference in RESP2 and in RESP3; the transcripts (each command and
 * the exact bytes of its reply) must be identical. hiredis 0.14 cannot
 * read RESP3: the harness's raw helpers frame the replies. The other tests
 * check one RESP3 behaviour each (HELLO's map and options, pub/sub pushes
 * between replies, RESET), differentially where Redis has the behaviour.
 *
 * Ports 7400-7419 (see tests/harness.h). HARNESS_DIRECT=1 runs the
 * transcripts against the backend redis itself.
 */
#include "tests/harness.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define R3_PORT_BASE 7400                     /* this file's port range start */
#define R3_PORT(n) harness_port(R3_PORT_BASE, (n))
#define R3_REPLY_MS 5000                      /* bound for one awaited reply */

static harness_proc *r3_ref;      /* reference redis, never proxied */
static harness_proc *r3_backend;  /* redis behind the proxy */
static harness_proc *r3_proxy;    /* the proxy (pseudo handle in direct mode) */
static harness_proc *r3_proxy_l1; /* the proxy with the L1 on (every cacheable command) */

static void r3_init(void)
{
    char primary[32];

    r3_ref = harness_redis_start(R3_PORT(0));
    r3_backend = harness_redis_start(R3_PORT(1));
    snprintf(primary, sizeof(primary), "127.0.0.1:%d", R3_PORT(1));
    r3_proxy = harness_proxy_start(R3_PORT(2), "--primary", primary, "--loglevel", "warning");
    r3_proxy_l1 = harness_proxy_start(R3_PORT(3), "--primary", primary, "--loglevel", "warning",
                                      "--l1-maxmemory", "64mb", "--l1-admission", "no",
                                      "--l1-commands", "GET HGET HGETALL LRANGE SMEMBERS ZRANGE");
    harness_diag_set(r3_proxy, NULL);
}

static void r3_fini(void)
{
    harness_cleanup();
}

TestSuite(resp3, .init = r3_init, .fini = r3_fini, .timeout = 120);

/* ---- the corpus ----------------------------------------------------------- */

/* Commands in the order sent; words separated by one space. Sets hold
 * integers (intsets iterate in order) so that both servers list them alike. */
static const char *const r3_corpus[] = {
    "FLUSHALL",
    /* the proxy's own answers */
    "PING", "PING hi", "ECHO hello",
    "CLIENT GETNAME", "CLIENT SETNAME me", "CLIENT GETNAME", "CLIENT SETNAME bad\x01name",
    "CLIENT TRACKINGINFO", "CLIENT GETREDIR", "CLIENT CACHING yes",
    "CLIENT TRACKING on PREFIX a", "CLIENT TRACKING on OPTIN OPTOUT", "CLIENT TRACKING on BCAST OPTIN",
    "CLIENT TRACKING maybe", "CLIENT REPLY ON", "CLIENT REPLY maybe",
    "HELLO 4", "HELLO x", "HELLO 3 FOO", "HELLO 3 SETNAME has\x01ctl",
    /* strings */
    "SET s1 hello", "GET s1", "GET nosuchkey", "MGET s1 nosuchkey", "APPEND s1 _world", "STRLEN s1",
    "SETRANGE s1 0 J", "GETRANGE s1 0 4", "INCR n", "INCRBYFLOAT n 1.5", "INCR s1", "SET ex 1 EX 100",
    "TTL ex", "PTTL nosuchkey", "EXISTS s1 nosuchkey", "TYPE s1", "OBJECT ENCODING s1",
    "SET lcs1 ohmytext", "SET lcs2 mynewtext", "LCS lcs1 lcs2", "LCS lcs1 lcs2 IDX MINMATCHLEN 4 WITHMATCHLEN",
    /* hashes: a map in RESP3 */
    "HSET h f1 v1 f2 v2 f3 3", "HGET h f1", "HGET h nofield", "HGETALL h", "HGETALL nosuchkey",
    "HMGET h f1 nofield f2", "HKEYS h", "HVALS h", "HLEN h", "HINCRBY h f3 2", "HINCRBYFLOAT h f3 0.5",
    "HSTRLEN h f1", "HEXISTS h f1", "HSCAN h 0",
    /* lists: both kinds of null */
    "RPUSH l a b c d e", "LRANGE l 0 -1", "LPOP l", "LPOP l 2", "LPOP nosuchkey", "LPOP nosuchkey 2",
    "RPOP l", "LINDEX l 5", "LPOS l c", "LLEN l", "LMPOP 1 nosuchkey LEFT", "LMPOP 1 l RIGHT COUNT 1",
    "SORT l ALPHA",
    /* sets: a set in RESP3 */
    "SADD si 3 1 2", "SMEMBERS si", "SISMEMBER si 2", "SMISMEMBER si 1 9", "SINTER si nosuchkey",
    "SCARD si", "SPOP nosuchkey",
    /* sorted sets: doubles, nested pairs */
    "ZADD z 1 a 2 b 3.5 c 4 d", "ZRANGE z 0 -1", "ZRANGE z 0 -1 WITHSCORES", "ZREVRANGE z 0 -1 WITHSCORES",
    "ZRANGEBYSCORE z 1 3 WITHSCORES", "ZSCORE z c", "ZSCORE z nosuch", "ZMSCORE z a nosuch",
    "ZINCRBY z 1.5 a", "ZRANK z b", "ZPOPMIN z", "ZPOPMAX z 1", "ZADD z2 1 x 2 y",
    "ZUNION 2 z z2 WITHSCORES", "ZMPOP 1 z2 MIN", "ZMPOP 1 nosuchkey MIN", "ZSCAN z 0",
    "ZADD z3 INCR 1 m", "ZADD z3 NX INCR 1 m",
    /* streams: XREAD is a map in RESP3 */
    "XADD st 1-1 f v", "XADD st 2-1 f v2", "XRANGE st - +", "XREAD COUNT 5 STREAMS st 0",
    "XREAD STREAMS st 99-0", "XLEN st", "XINFO STREAM st",
    /* geo, hyperloglog, bitmaps */
    "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania", "GEOPOS g Palermo nosuch",
    "GEODIST g Palermo Catania km", "GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km ASC WITHDIST",
    "PFADD hll a b c", "PFCOUNT hll", "SETBIT bm 7 1", "BITCOUNT bm", "BITFIELD bm GET u8 0",
    /* Lua's conversions, both protocols */
    "EVAL return{1,2,{3,'x'}} 0", "EVAL return(nil) 0", "EVAL return{err='my'} 0",
    "EVAL return{false,true} 0", "EVAL return{double=3.5} 0",
    "EVAL redis.setresp(3);return(redis.call('hgetall','h')) 0",
    "EVAL redis.setresp(3);return{map={a=1}} 0", "EVAL redis.setresp(3);return{set={a=true}} 0",
    "EVAL redis.setresp(3);return{true,false} 0", "EVAL redis.setresp(3);return{big_number='12345678901234567890'} 0",
    "EVAL redis.setresp(3);return(redis.call('zscore','z','c')) 0",
    /* introspection with maps */
    "CONFIG GET maxmemory", "COMMAND COUNT", "COMMAND INFO get", "COMMAND DOCS get",
    "DBSIZE", "DEL s1 h nosuchkey",
    /* pinned: blocking timeouts (null arrays), a transaction */
    "BLPOP nosuchkey 0.01", "BZPOPMIN nosuchkey 0.01", "XREAD BLOCK 10 STREAMS st 99-0",
    "MULTI", "SET m1 1", "HGETALL h", "ZRANGE z 0 -1 WITHSCORES", "GET nosuchkey", "EXEC",
    "PING", "CLIENT GETNAME",
};

/* Run the corpus on port in protocol proto; returns the transcript. */
static char *r3_run_corpus(int port, int proto)
{
    harness_tx t;

    harness_tx_open(&t, 1, port);
    harness_tx_send(&t, 0, proto == 3 ? "HELLO 3" : "HELLO 2");
    harness_tx_reply_type(&t, 0);
    for (size_t i = 0; i < sizeof(r3_corpus) / sizeof(r3_corpus[0]); i++)
        harness_tx_cmd(&t, 0, r3_corpus[i]);
    harness_tx_close(&t);
    return t.text;
}

static void r3_corpus_same(int proto)
{
    int port = harness_direct() ? r3_backend->port : r3_proxy->port;
    char *px = r3_run_corpus(port, proto);
    char *rf = r3_run_corpus(r3_ref->port, proto);

    harness_tx_same(proto == 3 ? "RESP3 corpus" : "RESP2 corpus", px, rf);
    cr_assert(strstr(rf, proto == 3 ? "%" : "*") != NULL, "the corpus produced no aggregate");
    free(px);
    free(rf);
    harness_proxy_check_exit(r3_proxy);
}

Test(resp3, corpus_in_resp3_matches_redis_byte_for_byte)
{
    r3_corpus_same(3);
}

Test(resp3, corpus_in_resp2_matches_redis_byte_for_byte)
{
    r3_corpus_same(2);
}

/* ---- HELLO ------------------------------------------------------------------ */

Test(resp3, hello_3_answers_redis_7_map_and_switches_replies)
{
    int port = harness_direct() ? r3_backend->port : r3_proxy->port;
    harness_raw *r = harness_raw_open(port);
    char *rep = NULL, *cmd = harness_resp_line("HELLO 3 SETNAME app1");

    cr_assert_eq(harness_raw_sends(r, cmd), 0);
    free(cmd);
    cr_assert_gt(harness_raw_reply(r, R3_REPLY_MS, &rep), 0, "%s", harness_error());
    cr_assert(strncmp(rep, "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n", 40) == 0,
              "HELLO 3 is not Redis 7's map: %s", rep);
    cr_assert_not_null(strstr(rep, "$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:"), "%s", rep);
    cr_assert_not_null(strstr(rep, "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
                                   "$7\r\nmodules\r\n*0\r\n"), "%s", rep);
    free(rep);
    /* SETNAME took; a missing key is RESP3's null; HELLO 2 goes back. */
    cmd = harness_resp_line("CLIENT GETNAME");
    harness_raw_sends(r, cmd);
    free(cmd);
    cr_assert_gt(harness_raw_reply(r, R3_REPLY_MS, &rep), 0);
    cr_assert_str_eq(rep, "$4\r\napp1\r\n");
    free(rep);
    cmd = harness_resp_line("GET nosuchkey");
    harness_raw_sends(r, cmd);
    cr_assert_gt(harness_raw_reply(r, R3_REPLY_MS, &rep), 0);
    cr_assert_str_eq(rep, "_\r\n");
    free(rep);
    char *h2 = harness_resp_line("HELLO 2");
    harness_raw_sends(r, h2);
    free(h2);
    cr_assert_gt(harness_raw_reply(r, R3_REPLY_MS, &rep), 0);
    cr_assert(rep[0] == '*' && strstr(rep, "$5\r\nproto\r\n:2\r\n"), "HELLO 2 reply: %s", rep);
    free(rep);
    harness_raw_sends(r, cmd);
    free(cmd);
    cr_assert_gt(harness_raw_reply(r, R3_REPLY_MS, &rep), 0);
    cr_assert_str_eq(rep, "$-1\r\n");
    free(rep);
    harness_raw_close(r, false);
    harness_proxy_check_exit(r3_proxy);
}

/* Requests pipelined across a protocol switch keep their order and each
 * is answered in the protocol in force when it was sent. */
Test(resp3, pipelined_requests_around_hello_keep_order_and_protocol)
{
    int port = harness_direct() ? r3_backend->port : r3_proxy->port;
    harness_tx a, b;
    static const char *const lines[] = {
        "HSET hp a 1", "HGETALL hp", "HELLO 3", "HGETALL hp", "GET nosuchkey", "HELLO 2", "HGETALL hp",
        "GET nosuchkey",
    };

    for (int run = 0; run < 2; run++) {
        harness_tx *t = run == 0 ? &a : &b;
        harness_tx_open(t, 1, run == 0 ? port : r3_ref->port);
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
            harness_tx_send(t, 0, lines[i]);
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
            if (strncmp(lines[i], "HELLO", 5) == 0)
                harness_tx_reply_type(t, 0);
            else
                harness_tx_reply(t, 0);
        }
        harness_tx_close(t);
    }
    harness_tx_same("pipeline across HELLO", a.text, b.text);
    free(a.text);
    free(b.text);
    harness_proxy_check_exit(r3_proxy);
}

/* ---- pub/sub in RESP3 -------------------------------------------------------- */

/* One scenario on port (the proxy or the reference): a RESP3 subscriber
 * keeps issuing commands while messages arrive as pushes. */
static char *r3_pubsub(int port)
{
    harness_tx t;

    harness_tx_open(&t, 2, port);
    harness_tx_send(&t, 0, "HELLO 3");
    harness_tx_reply_type(&t, 0);
    harness_tx_send(&t, 0, "SUBSCRIBE ch1 ch2");
    harness_tx_reply(&t, 0);
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 0, "PSUBSCRIBE p*");
    harness_tx_cmd(&t, 0, "PING");
    harness_tx_cmd(&t, 0, "SET k v");
    harness_tx_cmd(&t, 0, "GET k");
    harness_tx_cmd(&t, 1, "PUBLISH ch1 hello");
    harness_tx_reply(&t, 0);                  /* the message */
    harness_tx_cmd(&t, 1, "PUBLISH pq x");
    harness_tx_reply(&t, 0);                  /* the pmessage */
    /* A message and a reply pipelined: both arrive, message first. */
    harness_tx_cmd(&t, 1, "PUBLISH ch2 second");
    harness_tx_cmd(&t, 0, "HGETALL nosuchkey");
    harness_tx_send(&t, 0, "UNSUBSCRIBE ch1 ch2");
    harness_tx_reply(&t, 0);
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 0, "PUNSUBSCRIBE");
    harness_tx_cmd(&t, 0, "UNSUBSCRIBE");
    harness_tx_cmd(&t, 1, "PUBLISH ch1 unheard");
    harness_tx_quiet(&t, 0);
    harness_tx_cmd(&t, 0, "PING");
    harness_tx_close(&t);
    return t.text;
}

Test(resp3, subscriber_gets_pushes_between_replies_like_redis)
{
    int port = harness_direct() ? r3_backend->port : r3_proxy->port;
    char *px = r3_pubsub(port), *rf = r3_pubsub(r3_ref->port);

    harness_tx_same("RESP3 pub/sub", px, rf);
    cr_assert_not_null(strstr(rf, ">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello"), "%s", rf);
    free(px);
    free(rf);
    harness_proxy_check_exit(r3_proxy);
}

/* A RESP3 client's UNSUBSCRIBE without any subscription is a push too. */
Test(resp3, unsubscribe_without_subscriptions_is_a_push)
{
    int port = harness_direct() ? r3_backend->port : r3_proxy->port;
    harness_tx a, b;

    for (int run = 0; run < 2; run++) {
        harness_tx *t = run == 0 ? &a : &b;
        harness_tx_open(t, 1, run == 0 ? port : r3_ref->port);
        harness_tx_send(t, 0, "HELLO 3");
        harness_tx_reply_type(t, 0);
        harness_tx_cmd(t, 0, "UNSUBSCRIBE");
        harness_tx_send(t, 0, "UNSUBSCRIBE a b");
        harness_tx_reply(t, 0);
        harness_tx_reply(t, 0);
        harness_tx_cmd(t, 0, "GET nosuchkey");
        harness_tx_close(t);
    }
    harness_tx_same("UNSUBSCRIBE in RESP3", a.text, b.text);
    free(a.text);
    free(b.text);
    harness_proxy_check_exit(r3_proxy);
}

/* ---- RESET ------------------------------------------------------------------- */

static char *r3_reset(int port)
{
    harness_tx t;

    harness_tx_open(&t, 2, port);
    harness_tx_send(&t, 0, "HELLO 3");
    harness_tx_reply_type(&t, 0);
    harness_tx_cmd(&t, 0, "CLIENT SETNAME keepme");
    harness_tx_cmd(&t, 0, "SUBSCRIBE rch");
    harness_tx_cmd(&t, 0, "RESET");
    harness_tx_cmd(&t, 1, "PUBLISH rch after-reset");
    harness_tx_quiet(&t, 0);
    harness_tx_cmd(&t, 0, "GET nosuchkey");   /* RESP2 again */
    harness_tx_cmd(&t, 0, "MULTI");
    harness_tx_cmd(&t, 0, "SET rk 1");
    harness_tx_cmd(&t, 0, "RESET");           /* the transaction is gone */
    harness_tx_cmd(&t, 0, "EXEC");
    harness_tx_cmd(&t, 0, "GET rk");
    harness_tx_cmd(&t, 0, "CLIENT GETNAME");
    harness_tx_send(&t, 0, "SUBSCRIBE r2");  /* RESP2 push mode, then RESET */
    harness_tx_reply(&t, 0);
    harness_tx_cmd(&t, 0, "RESET");
    harness_tx_cmd(&t, 0, "PING");
    harness_tx_close(&t);
    return t.text;
}

Test(resp3, reset_unpins_unsubscribes_and_returns_to_resp2)
{
    int port = harness_direct() ? r3_backend->port : r3_proxy->port;
    char *px = r3_reset(port), *rf = r3_reset(r3_ref->port);

    harness_tx_same("RESET", px, rf);
    free(px);
    free(rf);
    harness_proxy_check_exit(r3_proxy);
}

/* ---- CLIENT REPLY ------------------------------------------------------------- */

static char *r3_client_reply(int port, int proto)
{
    harness_tx t;

    harness_tx_open(&t, 1, port);
    harness_tx_send(&t, 0, proto == 3 ? "HELLO 3" : "HELLO 2");
    harness_tx_reply_type(&t, 0);
    harness_tx_send(&t, 0, "CLIENT REPLY OFF");
    harness_tx_send(&t, 0, "SET cr 1");
    harness_tx_send(&t, 0, "GET cr");
    harness_tx_send(&t, 0, "PING");
    harness_tx_send(&t, 0, "CLIENT REPLY SKIP");   /* ignored while OFF */
    harness_tx_cmd(&t, 0, "CLIENT REPLY ON");
    harness_tx_cmd(&t, 0, "GET cr");
    harness_tx_send(&t, 0, "CLIENT REPLY SKIP");
    harness_tx_send(&t, 0, "INCR cr");
    harness_tx_cmd(&t, 0, "GET cr");
    harness_tx_send(&t, 0, "CLIENT REPLY SKIP");
    harness_tx_send(&t, 0, "HGETALL nosuchkey");
    harness_tx_cmd(&t, 0, "ECHO last");
    harness_tx_close(&t);
    return t.text;
}

Test(resp3, client_reply_off_skip_on_drop_replies_like_redis)
{
    int port = harness_direct() ? r3_backend->port : r3_proxy->port;

    for (int proto = 2; proto <= 3; proto++) {
        char *px = r3_client_reply(port, proto), *rf = r3_client_reply(r3_ref->port, proto);
        harness_tx_same(proto == 3 ? "CLIENT REPLY, RESP3" : "CLIENT REPLY, RESP2", px, rf);
        cr_assert_not_null(strstr(rf, "$1\r\n2\r\n"), "%s", rf);
        free(px);
        free(rf);
    }
    harness_proxy_check_exit(r3_proxy);
}

/* ---- the L1 serves both protocols ------------------------------------------------ */

/* Reads the L1 caches, each three times (a fill, then hits), between writes. */
static char *r3_l1_reads(int port, int proto)
{
    static const char *const reads[] = {
        "GET s", "GET nosuchkey", "HGET h f1", "HGET h nofield", "HGETALL h", "HGETALL nosuchkey",
        "LRANGE l 0 -1", "SMEMBERS si", "SMEMBERS nosuchkey", "ZRANGE z 0 -1", "ZRANGE z 0 -1 WITHSCORES",
        "ZRANGE z 0 1 REV WITHSCORES", "MGET s nosuchkey l",
    };
    harness_tx t;

    harness_tx_open(&t, 2, port);
    harness_tx_send(&t, 0, proto == 3 ? "HELLO 3" : "HELLO 2");
    harness_tx_reply_type(&t, 0);
    harness_tx_cmd(&t, 1, "FLUSHALL");
    harness_tx_cmd(&t, 1, "SET s hello");
    harness_tx_cmd(&t, 1, "HSET h f1 v1 f2 v2");
    harness_tx_cmd(&t, 1, "RPUSH l a b c");
    harness_tx_cmd(&t, 1, "SADD si 5 3 1");
    harness_tx_cmd(&t, 1, "ZADD z 1 a 2.5 b 3.14159 c");
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
            harness_tx_cmd(&t, 0, reads[i]);
    harness_tx_cmd(&t, 1, "HSET h f3 v3");
    harness_tx_cmd(&t, 0, "HGETALL h");
    harness_tx_cmd(&t, 0, "HGETALL h");
    harness_tx_close(&t);
    return t.text;
}

static long long r3_l1_hits(void)
{
    redisContext *c = harness_connect(r3_proxy_l1->port);
    redisReply *r = harness_cmd(c, "REDSNANO L1");
    long long v = r && r->type == REDIS_REPLY_STRING ? harness_text_ll(r->str, "l1_hits", -1) : -1;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

Test(resp3, l1_hits_are_served_in_the_clients_protocol)
{
    harness_skip_if_direct();
    for (int proto = 2; proto <= 3; proto++) {
        long long hits = r3_l1_hits();
        char *px = r3_l1_reads(r3_proxy_l1->port, proto), *rf = r3_l1_reads(r3_ref->port, proto);
        harness_tx_same(proto == 3 ? "L1 reads, RESP3" : "L1 reads, RESP2", px, rf);
        cr_assert_geq(r3_l1_hits() - hits, 12, "%s: the L1 served %lld hits", proto == 3 ? "RESP3" : "RESP2",
                      r3_l1_hits() - hits);
        free(px);
        free(rf);
    }
    harness_proxy_check_exit(r3_proxy_l1);
}
