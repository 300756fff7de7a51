/*
 * backends/server.h — one connection to a Redis server.
 *
 *   proxy/client.c ── server_send(req, bytes) ──> outq ──> Redis
 *                                                          │
 *   req->on_reply(req, reply bytes) <── replyframe_scan <──┘
 *
 * A connection carries requests of many clients (shared), of one client
 * (pinned: MULTI, blocking, SUBSCRIBE...) or of the proxy itself (health
 * checks, L1 fills, Sentinel). Requests wait in a FIFO; each reply is
 * matched to the head (a request that expects several replies, such as
 * UNSUBSCRIBE a b c, gets them together). In push mode (pub/sub) every reply goes to the push
 * callback instead.
 *
 * Protocol: a connection speaks RESP2 (proto 2) unless server_hello()
 * switched it to RESP3 (proto 3: HELLO 3 is queued ahead of everything
 * sent after it, its reply consumed here). On any connection not in push
 * mode, a RESP3 push (`>`: pub/sub messages, tracking invalidations) never
 * matches a request: it goes to on_push (dropped and counted when NULL),
 * even between the replies a request gathers.
 *
 * Contract:
 * - server_send() never fails synchronously: if the connection is down the
 *   request is answered (via on_reply with failed != 0) before it returns
 *   or on the next failure. Each srvreq gets exactly one on_reply call
 *   unless it is abandoned with srvreq_abandon(), after which the reply is
 *   read and dropped.
 * - On any failure (connect error, timeout, reset, protocol desync) every
 *   request in the FIFO is answered with
 *   "-ERR redsnano: backend HOST:PORT (primary|replica) <what happened>",
 *   the connection is
 *   closed, and s->on_close(s) is called from the close callback; only
 *   then may the owner free s.
 * - backend-timeout applies to the oldest request (unless its deadline is
 *   0: blocking commands); connect-timeout to the connection attempt.
 * - With s->hs set before server_connect (backends/handshake.h), AUTH is
 *   the first request on the connection and, with TLS, every byte goes
 *   through a TLS engine: requests are encrypted once per loop iteration
 *   (outq's before_write hook), replies decrypted in the read callback.
 */
#ifndef REDSNANO_BACKENDS_SERVER_H
#define REDSNANO_BACKENDS_SERVER_H

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "base/outq.h"
#include "base/buf.h"
#include "backends/handshake.h"
#include "protocol/reply.h"

struct server;
struct backend;

#define SRVREQ_NO_DEADLINE UINT64_MAX  /* blocking commands: wait as long as Redis does */

/* One request waiting for its reply on a server connection. */
struct srvreq {
    struct srvreq *next;              /* next in the server's FIFO */
    struct server *server;            /* where it was sent (NULL before / after) */
    /* The reply (failed = 0) or a local error reply (failed != 0: the
     * request may not have reached Redis, or its reply was lost). */
    void (*on_reply)(struct srvreq *r, const char *reply, size_t len, int failed);
    uint64_t deadline;                /* loop ms by which the reply is due: 0 = backend-timeout
                                         from now (set by server_send), SRVREQ_NO_DEADLINE = none */
    unsigned replies;                 /* replies Redis sends for it (0 or 1 = one); several are
                                         delivered together, as one span of bytes */
    int abandoned;                    /* its owner is gone: drop the reply */
};

enum server_state {
    SERVER_CONNECTING = 0,            /* connect in progress; sends are queued */
    SERVER_CONNECTED,                 /* ready */
    SERVER_CLOSING,                   /* failed or closed; waiting for the close callback */
};

struct server {
    uv_tcp_t tcp;                     /* the socket */
    uv_connect_t connect_req;         /* in-flight connect */
    uv_timer_t timer;                 /* connect / request deadline */
    struct backend *backend;          /* address, stats (may be NULL for an ad-hoc address) */
    char name[280];                   /* "host:port" for messages */
    const char *role;                 /* "primary", "replica" or NULL ("backend") for messages */
    enum server_state state;          /* see above */
    int handles;                      /* libuv handles still open (tcp, timer) */
    struct outq out;                  /* bytes to send */
    struct buf in;                    /* received bytes of unfinished replies */
    struct replyframe rf;             /* scanner state for the reply at in.pos + gathered */
    size_t gathered;                  /* bytes of complete replies at in.pos held for the head
                                         request (it expects several) */
    unsigned ngathered;               /* how many replies those bytes are */
    struct srvreq *head;              /* oldest request waiting for a reply */
    struct srvreq *tail;              /* newest request */
    unsigned nreqs;                   /* requests in the FIFO */
    uint64_t timeout_ms;              /* backend-timeout (0 = none) */
    /* Push mode: replies go here instead of to the FIFO (pub/sub, MONITOR). */
    void (*push)(struct server *s, const char *reply, size_t len);
    /* Out-of-band RESP3 pushes on a connection not in push mode (NULL = drop). */
    void (*on_push)(struct server *s, const char *reply, size_t len);
    void (*on_connect)(struct server *s);         /* connected (may be NULL) */
    void (*on_close)(struct server *s);           /* handles closed: owner may free s */
    void *data;                       /* owner's pointer */
    char err[160];                    /* why it failed, "" if it did not */
    uint64_t requests;                /* requests sent over its life */
    const struct handshake_settings *hs; /* identity and TLS (set before server_connect; NULL = none) */
    struct srvreq hs_req;             /* the AUTH sent first (handshake.c) */
    struct tls_conn *tls;             /* TLS engine once connected with backend-tls; NULL = plain */
    uint64_t pushes_dropped;          /* out-of-band pushes nobody took (on_push NULL) */
    uint8_t proto;                    /* 2 (RESP2) or 3 (HELLO 3 queued): what its replies are */
};

/* Start connecting to addr. s must be zeroed or freshly allocated by the
 * caller and stay valid until on_close. Returns 0, or a negative uv error
 * (then nothing was started and on_close will not be called). */
int server_connect(struct server *s, uv_loop_t *loop, const struct sockaddr *addr,
                   const char *name, uint64_t connect_timeout_ms, uint64_t timeout_ms);

/* Queue one request: its bytes go out before the loop next polls, r joins
 * the FIFO. See the contract for failures. */
void server_send(struct server *s, struct srvreq *r, const char *bytes, size_t len);

/* Read and handle whatever the socket holds now, without waiting (the
 * L1 takes pending invalidations before it serves a hit). Returns 0, or -1
 * when the connection is closed or closing (an EOF was read). */
int server_read_now(struct server *s);

/* Switch the connection to protocol proto (2 or 3): HELLO proto is queued
 * now (before anything sent later), s->proto is set at once and the reply
 * is consumed here; if Redis refuses it the connection is closed with the
 * reason (every later request then fails instead of being misread).
 * Returns 0 or -ENOMEM (nothing was sent). */
int server_hello(struct server *s, int proto);

/* Stop / restart reading the socket (a push stream whose client does not
 * read: Redis keeps the rest). No-ops unless connected. */
void server_read_pause(struct server *s);
void server_read_resume(struct server *s);

/* Queue ASKING (Redis Cluster: the next request on s may touch a slot being
 * imported); its +OK is read and dropped. 0, or -ENOMEM (nothing queued). */
int server_send_asking(struct server *s);

/* Queue bytes that expect no reply of their own (push mode). */
void server_send_raw(struct server *s, const char *bytes, size_t len);

/* Fail every request and close the connection, with a reason for the
 * errors and the log ("connection lost", "timed out after 5000 ms"...).
 * Safe to call more than once. */
void server_close(struct server *s, const char *why);

/* The owner of r is gone: its reply will be read and dropped. */
static inline void srvreq_abandon(struct srvreq *r) { r->abandoned = 1; }

/* Loop time in ms (uv_now). */
uint64_t server_now(const struct server *s);

#endif
