/*
 * bench/loadgen.c — a skewed (Zipf) GET/SET load, for the L1's targets.
 *
 *   C clients (libuv TCP) ── batches of P commands ──> redsnano / redis
 *        │  key rank ~ Zipf(s) over N keys; GET with probability --reads, else SET
 *        └─ replies framed by hiredis 0.14's reader; latency per command = batch
 *           sent -> its reply read
 *   before / after: REDSNANO L1 on --admin-port -> hit ratio of the run
 *
 * redis-benchmark draws keys uniformly; a cache is judged on skew. The
 * ratio reported is l1 hits / GETs sent during the timed run (warm-up
 * excluded). Not installed; built by meson next to the proxy.
 *
 * Usage: loadgen [--host 127.0.0.1] [--port 7379] [--admin-port PORT]
 *                [--zipf 0.99] [--keys 1000000] [--reads 0.95] [--value-size 100]
 *                [--pipeline 1] [--clients 50] [--duration 10] [--warmup 0]
 *                [--populate PORT] [--seed 1] [--prefix key:]
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "skew.h"

#define LG_HIST_US 1000000              /* latency histogram range, us (1 us buckets up to 1 s) */
#define LG_POPULATE_BATCH 1000          /* SETs per pipelined batch when populating */
#define LG_MAX_PIPELINE 1024            /* most commands per batch */
#define LG_READ_CHUNK 65536             /* bytes per read callback */

/* The run's parameters. */
struct opts {
    const char *host;                   /* target address */
    int port;                           /* target port */
    int admin_port;                     /* where REDSNANO L1 is asked (0 = port) */
    double zipf;                        /* Zipf exponent s (0 = uniform) */
    long keys;                          /* key count N */
    double reads;                       /* fraction of GETs */
    int value_size;                     /* bytes per SET value */
    int pipeline;                       /* commands per batch */
    int clients;                        /* connections */
    double duration;                    /* seconds measured */
    double warmup;                      /* seconds run before measuring */
    int populate_port;                  /* SET every key there first (0 = no) */
    uint64_t seed;                      /* PRNG seed */
    const char *prefix;                 /* key prefix */
};

/* One connection and its batch in flight. */
struct client {
    uv_tcp_t tcp;                       /* the socket */
    uv_connect_t conn;                  /* its connect request */
    redisReader *reader;                /* reply framing */
    uint64_t rng;                       /* xorshift64* state */
    uint64_t sent_ns;                   /* when the batch in flight was sent */
    int inflight;                       /* replies still expected */
    int gets;                           /* GETs in the batch */
    char *out;                          /* the batch's bytes */
    size_t outlen, outcap;              /* their length, capacity */
    char inbuf[LG_READ_CHUNK];          /* read buffer */
};

static struct opts O = { "127.0.0.1", 7379, 0, 0.99, 1000000, 0.95, 100, 1, 50, 10, 0, 0, 1, "key:" };
static struct skew zipf;                /* key ranks (bench/skew.h) */
static char *value;                     /* the SET value */
static uv_loop_t *loop;
static int measuring, stopping, open_clients;
static uint64_t t_start, t_end;         /* the measured window (ns) */
static uint64_t n_ops, n_gets, n_sets, n_errors; /* measured commands */
static uint64_t *hist;                  /* per-us latency counts, measured */
static uint64_t hist_over;              /* latencies over LG_HIST_US */

static void out_append(struct client *c, const char *p, size_t n)
{
    if (c->outlen + n > c->outcap) {
        c->outcap = (c->outlen + n) * 2;
        c->out = realloc(c->out, c->outcap);
        if (c->out == NULL) {
            fprintf(stderr, "loadgen: out of memory\n");
            exit(1);
        }
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

/* Append one command as RESP: argc bulk strings. */
static void out_cmd(struct client *c, int argc, const char **argv, const size_t *len)
{
    char hdr[32];
    out_append(c, hdr, (size_t)snprintf(hdr, sizeof(hdr), "*%d\r\n", argc));
    for (int i = 0; i < argc; i++) {
        out_append(c, hdr, (size_t)snprintf(hdr, sizeof(hdr), "$%zu\r\n", len[i]));
        out_append(c, argv[i], len[i]);
        out_append(c, "\r\n", 2);
    }
}

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static void on_written(uv_write_t *w, int status)
{
    if (status < 0 && !stopping)
        fprintf(stderr, "loadgen: write: %s\n", uv_strerror(status));
    free(w);
}

static void client_close(struct client *c);

/* Build and send the next batch of O.pipeline commands. */
static void send_batch(struct client *c)
{
    char key[64];
    c->outlen = 0;
    c->gets = 0;
    for (int i = 0; i < O.pipeline; i++) {
        size_t klen = (size_t)snprintf(key, sizeof(key), "%s%ld", O.prefix, skew_draw(&zipf, &c->rng));
        if (skew_rnd01(&c->rng) < O.reads) {
            const char *argv[] = { "GET", key };
            size_t len[] = { 3, klen };
            out_cmd(c, 2, argv, len);
            c->gets++;
        } else {
            const char *argv[] = { "SET", key, value };
            size_t len[] = { 3, klen, (size_t)O.value_size };
            out_cmd(c, 3, argv, len);
        }
    }
    uv_write_t *w = malloc(sizeof(*w));
    uv_buf_t b = uv_buf_init(c->out, (unsigned)c->outlen);
    c->inflight = O.pipeline;
    c->sent_ns = now_ns();
    /* out is rewritten only after every reply of this batch arrived, so
     * the write has completed by then. */
    if (w == NULL || uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
        free(w);
        client_close(c);
    }
}

static void batch_done(struct client *c)
{
    uint64_t t = now_ns();
    if (measuring) {
        uint64_t us = (t - c->sent_ns) / 1000;
        n_ops += (uint64_t)O.pipeline;
        n_gets += (uint64_t)c->gets;
        n_sets += (uint64_t)(O.pipeline - c->gets);
        if (us < LG_HIST_US)
            hist[us] += (uint64_t)O.pipeline;
        else
            hist_over += (uint64_t)O.pipeline;
    }
    if (stopping)
        client_close(c);
    else
        send_batch(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct client *c = h->data;
    *buf = uv_buf_init(c->inbuf, sizeof(c->inbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (n < 0) {
        if (!stopping)
            fprintf(stderr, "loadgen: read: %s\n", uv_strerror((int)n));
        client_close(c);
        return;
    }
    if (redisReaderFeed(c->reader, buf->base, (size_t)n) != REDIS_OK) {
        fprintf(stderr, "loadgen: bad reply\n");
        client_close(c);
        return;
    }
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            fprintf(stderr, "loadgen: bad reply: %s\n", c->reader->errstr);
            client_close(c);
            return;
        }
        if (reply == NULL)
            break;
        if (((redisReply *)reply)->type == REDIS_REPLY_ERROR && measuring && n_errors++ == 0)
            fprintf(stderr, "loadgen: error reply: %s\n", ((redisReply *)reply)->str);
        freeReplyObject(reply);
        if (--c->inflight == 0)
            batch_done(c);
    }
}

static void on_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    redisReaderFree(c->reader);
    free(c->out);
    free(c);
    open_clients--;
}

static void client_close(struct client *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct client *c = req->data;
    if (status < 0) {
        fprintf(stderr, "loadgen: connect %s:%d: %s\n", O.host, O.port, uv_strerror(status));
        client_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_batch(c);
}

static void on_phase(uv_timer_t *t)
{
    if (!measuring && !stopping) {      /* the warm-up is over: measure from now */
        measuring = 1;
        t_start = now_ns();
        uv_timer_start(t, on_phase, (uint64_t)(O.duration * 1000), 0);
        return;
    }
    measuring = 0;
    stopping = 1;
    t_end = now_ns();
    uv_close((uv_handle_t *)t, NULL);
}

/* REDSNANO L1 counter (-1 when not available). */
static long long l1_counter(redisContext *ac, const char *name)
{
    if (ac == NULL)
        return -1;
    redisReply *r = redisCommand(ac, "REDSNANO L1");
    long long v = -1;
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        char pat[64];
        snprintf(pat, sizeof(pat), "\n%s:", name);
        const char *p = strstr(r->str, pat);
        if (p != NULL)
            v = strtoll(p + strlen(pat), NULL, 10);
    }
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

static int populate(void)
{
    redisContext *pc = redisConnect(O.host, O.populate_port);
    if (pc == NULL || pc->err) {
        fprintf(stderr, "loadgen: populate: cannot connect to %s:%d\n", O.host, O.populate_port);
        return -1;
    }
    char key[64];
    for (long i = 0; i < O.keys; i += LG_POPULATE_BATCH) {
        long end = i + LG_POPULATE_BATCH < O.keys ? i + LG_POPULATE_BATCH : O.keys;
        for (long k = i; k < end; k++) {
            snprintf(key, sizeof(key), "%s%ld", O.prefix, k);
            redisAppendCommand(pc, "SET %s %b", key, value, (size_t)O.value_size);
        }
        for (long k = i; k < end; k++) {
            void *r;
            if (redisGetReply(pc, &r) != REDIS_OK) {
                fprintf(stderr, "loadgen: populate: %s\n", pc->errstr);
                redisFree(pc);
                return -1;
            }
            freeReplyObject(r);
        }
    }
    redisFree(pc);
    return 0;
}

static double percentile(double q, uint64_t total)
{
    uint64_t want = (uint64_t)ceil(q * (double)total), seen = 0;
    for (int us = 0; us < LG_HIST_US; us++) {
        seen += hist[us];
        if (seen >= want && want > 0)
            return us / 1000.0;
    }
    return LG_HIST_US / 1000.0;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen [--host H] [--port P] [--admin-port P] [--zipf S] [--keys N] [--reads F]\n"
                    "               [--value-size B] [--pipeline P] [--clients C] [--duration SEC] [--warmup SEC]\n"
                    "               [--populate PORT] [--seed N] [--prefix STR]\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        i++;
        if (!strcmp(a, "--host"))
            O.host = v;
        else if (!strcmp(a, "--port"))
            O.port = atoi(v);
        else if (!strcmp(a, "--admin-port"))
            O.admin_port = atoi(v);
        else if (!strcmp(a, "--zipf"))
            O.zipf = atof(v);
        else if (!strcmp(a, "--keys"))
            O.keys = atol(v);
        else if (!strcmp(a, "--reads"))
            O.reads = atof(v);
        else if (!strcmp(a, "--value-size"))
            O.value_size = atoi(v);
        else if (!strcmp(a, "--pipeline"))
            O.pipeline = atoi(v);
        else if (!strcmp(a, "--clients"))
            O.clients = atoi(v);
        else if (!strcmp(a, "--duration"))
            O.duration = atof(v);
        else if (!strcmp(a, "--warmup"))
            O.warmup = atof(v);
        else if (!strcmp(a, "--populate"))
            O.populate_port = atoi(v);
        else if (!strcmp(a, "--seed"))
            O.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--prefix"))
            O.prefix = v;
        else
            usage();
    }
    if (O.keys < 1 || O.clients < 1 || O.pipeline < 1 || O.pipeline > LG_MAX_PIPELINE || O.duration <= 0 ||
        O.value_size < 0 || O.reads < 0 || O.reads > 1 || O.zipf < 0)
        usage();
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    value = malloc((size_t)O.value_size + 1);
    hist = calloc(LG_HIST_US, sizeof(*hist));
    if (value == NULL || hist == NULL || skew_init(&zipf, O.keys, O.zipf) != 0) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    memset(value, 'v', (size_t)O.value_size);
    if (O.populate_port && populate() != 0)
        return 1;
    redisContext *ac = redisConnect(O.host, O.admin_port ? O.admin_port : O.port);
    if (ac != NULL && ac->err) {
        redisFree(ac);
        ac = NULL;
    }

    loop = uv_default_loop();
    struct sockaddr_in addr;
    if (uv_ip4_addr(O.host, O.port, &addr) != 0) {
        fprintf(stderr, "loadgen: bad address %s\n", O.host);
        return 1;
    }
    for (int i = 0; i < O.clients; i++) {
        struct client *c = calloc(1, sizeof(*c));
        if (c == NULL)
            return 1;
        c->reader = redisReaderCreate();
        c->rng = O.seed * 0x9e3779b97f4a7c15ULL + (uint64_t)i + 1;
        uv_tcp_init(loop, &c->tcp);
        uv_tcp_nodelay(&c->tcp, 1);
        c->tcp.data = c;
        c->conn.data = c;
        open_clients++;
        uv_tcp_connect(&c->conn, &c->tcp, (const struct sockaddr *)&addr, on_connect);
    }
    uv_timer_t phase;
    uv_timer_init(loop, &phase);
    long long hits0 = -1, miss0 = -1;
    if (O.warmup > 0) {
        uv_timer_start(&phase, on_phase, (uint64_t)(O.warmup * 1000), 0);
        /* The counters are read when the warm-up ends (below, on the loop's
         * first return): run the warm-up first. */
        uv_run(loop, UV_RUN_ONCE);
        while (!measuring && open_clients > 0)
            uv_run(loop, UV_RUN_ONCE);
    } else {
        measuring = 1;
        t_start = now_ns();
        uv_timer_start(&phase, on_phase, (uint64_t)(O.duration * 1000), 0);
    }
    hits0 = l1_counter(ac, "l1_hits");
    miss0 = l1_counter(ac, "l1_misses");
    /* Counting started before these were read: their skew is at most one
     * batch per client. */
    uv_run(loop, UV_RUN_DEFAULT);
    long long hits1 = l1_counter(ac, "l1_hits"), miss1 = l1_counter(ac, "l1_misses");
    long long entries = l1_counter(ac, "l1_entries");
    if (t_end == 0)
        t_end = now_ns();
    double secs = (double)(t_end - t_start) / 1e9;
    printf("loadgen: %s:%d zipf %.2f keys %ld reads %.2f value %d B pipeline %d clients %d duration %.1f s\n",
           O.host, O.port, O.zipf, O.keys, O.reads, O.value_size, O.pipeline, O.clients, secs);
    printf("ops_per_sec:%.0f\nops:%llu\ngets:%llu\nsets:%llu\nerrors:%llu\n", (double)n_ops / secs,
           (unsigned long long)n_ops, (unsigned long long)n_gets, (unsigned long long)n_sets,
           (unsigned long long)n_errors);
    uint64_t total = n_ops;
    if (total > 0)
        printf("p50_ms:%.3f\np90_ms:%.3f\np99_ms:%.3f\np999_ms:%.3f\n", percentile(0.50, total),
               percentile(0.90, total), percentile(0.99, total), percentile(0.999, total));
    if (hits0 >= 0 && hits1 >= 0 && n_gets > 0) {
        long long dh = hits1 - hits0, dm = miss1 - miss0;
        printf("l1_hits:%lld\nl1_misses:%lld\nl1_entries:%lld\nhit_ratio:%.4f\n", dh, dm, entries,
               (double)dh / (double)n_gets);
    } else {
        printf("hit_ratio:n/a (no REDSNANO L1 on the admin port)\n");
    }
    if (ac)
        redisFree(ac);
    skew_free(&zipf);
    free(hist);
    free(value);
    return n_errors > 0 ? 3 : 0;
}
