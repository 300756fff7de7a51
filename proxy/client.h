/*
 * proxy/client.h — one client session.
 *
 *   socket ─> client_read ─> c->in ─> reqframe_next ─> router_dispatch
 *                                                        │ local reply / forward
 *   socket <─ c->out <─ replies in request order <───────┘ (struct req FIFO)
 *
 * Ordering: every request, forwarded or answered locally, takes a place in
 * the client's FIFO; a reply is written only when every earlier one has
 * been. A client's in-flight requests to one backend all sit on one server
 * connection (c->conns), so Redis sees them in the order sent; requests to
 * different backends (replicas, cluster nodes) go out at once. Only a
 * request that pins the client, or one whose connection is closing, waits
 * until the in-flight ones are answered ("stall": reading stops meanwhile).
 *
 * Protocol: c->proto is 2 until HELLO 3. A RESP3 client's requests go to
 * RESP3 server connections (backend_pick_proto), so every reply is Redis's
 * own bytes for its protocol. Pushes (RESP3 pub/sub messages on its pinned
 * connection, the proxy's tracking invalidations) are written between
 * replies, never inside one.
 *
 * CLIENT REPLY OFF|SKIP: the request is still forwarded and its reply read
 * (the server side stays matched one for one); only writing it is skipped
 * (req->drop). Pushes are written regardless, as Redis 7 does.
 *
 * Lifetimes: a client is freed in its close callback. Requests still in
 * flight when it closes are abandoned: their replies are read and dropped
 * (the shared connection stays in sync). A pinned connection is closed with
 * its client, and a client whose pinned connection dies is closed.
 */
#ifndef REDSNANO_PROXY_CLIENT_H
#define REDSNANO_PROXY_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "base/outq.h"
#include "backends/server.h"
#include "base/buf.h"
#include "protocol/request.h"

struct client;
struct txn_hold;

/* Why a request keeps a copy of its bytes while in flight (bits: a read on
 * a cluster replica has both). */
enum { REQ_RETRY_NONE = 0, REQ_RETRY_REPLICA = 1 /* resend once if its replica fails */,
       REQ_RETRY_CLUSTER = 2 /* follow -MOVED / -ASK */ };

/* A request in the client's FIFO. */
struct req {
    struct srvreq sr;                 /* the server-side half (FIFO on a server) */
    struct req *next;                 /* next in the client's FIFO */
    struct client *client;            /* owner; NULL once the client is gone */
    struct buf reply;                 /* reply bytes, kept until this is the FIFO head */
    uint8_t done;                     /* the reply is complete */
    uint8_t forwarded;                /* waiting on a server (counted in inflight) */
    uint8_t retryable;                /* REQ_RETRY_*: `reply` holds its bytes until answered */
    uint8_t redirects;                /* cluster MOVED/ASK hops taken */
    uint8_t lclass;                   /* enum latency_class it is measured in (LAT_NONE: not) */
    uint8_t kept;                     /* `reply` holds the request's first bytes (slow log) */
    uint64_t start_ns;                /* when it was framed (latency) */
    uint8_t drop;                     /* CLIENT REPLY OFF|SKIP: read the reply, do not write it */
    uint8_t resp3_up;                 /* an L1 fill's RESP2 reply for a RESP3 client: 0x80 | RESP3_UP_* */
    struct server *conn;              /* forwarded: the connection it is on (c->conns) */
    void *l1_token;                   /* a write's hold on L1 keys, released with its reply */
    size_t held;                      /* reply bytes counted in client->fifo_bytes */
};

enum client_flag {
    CLIENT_CLOSE_AFTER_REPLY = 1u << 0, /* close once the FIFO is empty and output written */
    CLIENT_CLOSING = 1u << 1,           /* uv_close called */
    CLIENT_STALLED = 1u << 2,           /* waiting for in-flight requests before the next one */
    CLIENT_READING = 1u << 3,           /* uv_read_start active */
    CLIENT_PUSH = 1u << 4,              /* pinned connection in push mode (pub/sub, MONITOR) */
    CLIENT_UNIX = 1u << 5,              /* came through the Unix socket */
    CLIENT_RESUME_QUEUED = 1u << 6,     /* on the resume list */
    CLIENT_MULTI = 1u << 7,             /* MULTI sent, EXEC/DISCARD not yet */
    CLIENT_PUBSUB = 1u << 8,            /* push mode for (P|S)SUBSCRIBE: the pubsub output class */
    CLIENT_LIMIT_CLOSE = 1u << 9,       /* over a limit: closed before the next poll (climits) */
    CLIENT_BACKPRESSURE = 1u << 10,     /* stalled until it reads its replies (climits) */
    CLIENT_PUSH_PAUSED = 1u << 11,      /* its pinned push connection is not read meanwhile */
    CLIENT_TXN_HELD = 1u << 12,         /* cluster: MULTI answered, held until a key names the node (txn.c) */
    CLIENT_TXN_ABORT = 1u << 13,        /* cluster: a command of the transaction got CROSSSLOT: EXECABORT */
    CLIENT_WATCHING = 1u << 14,         /* cluster: WATCH sent, EXEC/DISCARD/UNWATCH not yet */
    CLIENT_INTERNAL = 1u << 15,         /* no socket: the proxy's own (HTTP cache API) */
    CLIENT_ACL_ALL = 1u << 16,          /* its user may run everything: no per-request ACL check */
    CLIENT_SUBSCRIBED = 1u << 17,       /* RESP3 pinned session with (P|S)SUBSCRIBE sent */
};

/* CLIENT REPLY modes (c->reply_mode). */
enum { CLIENT_REPLY_ON = 0, CLIENT_REPLY_OFF, CLIENT_REPLY_SKIP };

#define CLIENT_CONNS 8                /* in-flight table entries made with the framer (grows on demand) */
#define CLIENT_CONNS_MAX 1024         /* connections one client may have requests in flight on at most */

/* A connection the client has requests in flight on. */
struct client_conn {
    struct server *s;                 /* NULL = free entry */
    unsigned n;                       /* requests in flight on it */
};

struct client {
    union {
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;                              /* the client's socket */
    struct client *prev, *next;       /* proxy->clients list */
    struct client *resume_next;       /* resume list link */
    uint64_t id;                      /* CLIENT ID-like counter */
    unsigned flags;                   /* enum client_flag */
    uint8_t proto;                    /* 2 (RESP2) or 3 (after HELLO 3) */
    uint8_t reply_mode;               /* CLIENT_REPLY_ON|OFF|SKIP */
    uint8_t drop_cur;                 /* the request being dispatched has its reply dropped */
    struct buf in;                    /* unread input; byte in.data[in.pos] is at stream offset in_base + in.pos */
    uint64_t in_base;                 /* stream offset of in.data[0] */
    struct reqframe *rf;              /* request framer, allocated on the first read (idle clients cost less) */
    struct reqmsg *msg;               /* the framed request being dispatched (waits here while stalled) */
    struct outq out;                  /* replies to write */
    struct req *head, *tail;          /* FIFO of requests not yet answered to the client */
    unsigned nreqs;                   /* requests in the FIFO */
    unsigned inflight;                /* of those, waiting on a server */
    struct client_conn *conns;        /* where the in-flight ones are: nconns entries, the first
                                         CLIENT_CONNS allocated with the framer (idle clients cost less) */
    unsigned nconns;                  /* entries in conns; more than CLIENT_CONNS: conns is its own allocation */
    struct server *pinned;            /* the client's own connection, or NULL */
    uint64_t created;                 /* loop ms it connected (CLIENT INFO age) */
    uint64_t last_active;             /* loop ms of the last request */
    uint64_t last_write;              /* loop ms of the last write command (read-your-writes) */
    uint64_t frame_ns;                /* when the bytes being framed were read (latency start) */
    void *txn_l1_token;               /* L1 holds of writes queued in MULTI, released after EXEC */
    struct buf *reply;                /* the buffer client_reply_buf handed out */
    struct txn_hold *txn_held;        /* cluster: commands queued in a held MULTI (txn.c), or NULL */
    const struct acl_user *user;      /* the proxy user it is authenticated as; NULL = not yet */
    struct tls_conn *tls;             /* TLS engine (tls-port clients); NULL = plain */
    char *name;                       /* CLIENT SETNAME (malloc'd), NULL = none */
    struct tracking_client *trk;      /* CLIENT TRACKING state (proxy/tracking.c), NULL = off */
    struct client *id_next;           /* chain in the id table (client_by_id) */
    size_t fifo_bytes;                /* reply bytes waiting in the FIFO behind an earlier one */
    size_t reply_avg;                 /* average reply size (EWMA), for expected output */
    uint64_t obuf_soft_since;         /* loop ms its output went over the soft limit; 0 = under */
    size_t mem;                       /* bytes counted for it in the maxmemory-clients total */
    struct client *limit_next;        /* climits close list link */
};

/* Accept a client from a listening stream; tls (tls-port) makes it a TLS
 * session in that configuration. Returns 0 or a negative error (the
 * pending connection is dropped). */
struct tls_ctx;
int client_accept(uv_stream_t *server, int is_unix, struct tls_ctx *tls);

/* An internal client (the HTTP cache API): no socket. Its owner feeds it
 * requests (client_feed) and reads the replies from outq_buf(&c->out),
 * which nothing writes anywhere. It is not in proxy->clients (not counted,
 * never closed by idle checks or shutdown): only its owner closes it, and
 * client_close() frees it at once. It acts as user (NULL: as a new client
 * would, the default user unless the proxy requires AUTH). NULL on out of
 * memory. */
struct acl_user;
struct client *client_internal_open(const struct acl_user *user);

/* Frame and route RESP requests as if internal client c had sent them
 * (same routing, L1, ordering). 0, or -ENOMEM (nothing fed). */
int client_feed(struct client *c, const char *bytes, size_t len);

/* Start closing c (safe to call twice). Output not yet written is dropped. */
void client_close(struct client *c);

/* Close after every request is answered and written. */
void client_close_after_reply(struct client *c);

/* The buffer a local reply must be written into, keeping reply order:
 * the output queue when nothing is pending before it, else a new FIFO
 * entry. Call client_reply_done() after writing. NULL on out of memory:
 * the client is closed then (a missing reply would shift every later one),
 * and so it is by client_reply_done() when the buffer could not grow. */
struct buf *client_reply_buf(struct client *c);
void client_reply_done(struct client *c);

/* The buffer an out-of-band push (an invalidation) is written into: after
 * every reply the client is owed (a FIFO entry when some are pending), never
 * dropped by CLIENT REPLY. Then client_reply_done(). NULL: as above. In a
 * RESP2 push-mode session the push goes straight to the output. */
struct buf *client_push_buf(struct client *c);

/* End c's pinned session (RESET; cluster mode: the session moves to
 * another node): the connection is closed without closing c, the state that
 * went with it (transaction, subscriptions, push mode) is dropped. Nothing
 * of c may be in flight on it. */
void client_unpin(struct client *c);

/* The client with this id, or NULL. */
struct client *client_by_id(uint64_t id);

/* How a request is forwarded. */
struct fwd {
    uint64_t deadline;                /* as struct srvreq (0 = backend-timeout) */
    uint8_t retry;                    /* REQ_RETRY_*: keep a copy of the bytes to resend */
    unsigned replies;                 /* replies Redis sends for it (cmd_replies) */
    void *l1_token;                   /* a write's hold on L1 keys, released with its reply */
    uint8_t lclass;                   /* enum latency_class to measure it in (LAT_NONE: not) */
};

/* Forward a framed request to s and give it a FIFO place. With
 * REQ_RETRY_REPLICA a read whose replica fails before answering is sent
 * once more elsewhere; with REQ_RETRY_CLUSTER a -MOVED / -ASK reply is
 * followed (up to CLUSTER_MAX_REDIRECTS hops) instead of reaching the
 * client. */
void client_forward(struct client *c, struct server *s, const char *bytes, size_t len,
                    const struct fwd *f);

/* The connection c already has requests in flight on for backend b, so the
 * next one goes there too (NULL: none, pick one). *stall is set when the
 * request must wait instead: that connection is closing, or c has requests
 * in flight on CLIENT_CONNS_MAX other connections (the table grows to the
 * number of backends a client uses at once, e.g. the nodes of a big
 * cluster). */
struct server *client_conn_for(struct client *c, const struct backend *b, int *stall);

/* A shared connection to b in c's protocol (backend_pick_proto). */
struct server *client_pick(const struct client *c, struct backend *b);

/* The connection for c's next request to b: the one c already uses for b,
 * else backend_pick(b). NULL with *stall set: the request must wait (see
 * client_conn_for); NULL without: b cannot take it (the reason in b->err). */
struct server *client_conn_pick(struct client *c, struct backend *b, int *stall);

/* A -MOVED / -ASK reply to a request of c that took `hops` redirections
 * already: the connection to resend it on (ASKING queued there first for
 * -ASK), or NULL (not a redirection, too many hops, no connection). */
struct server *client_redirect(struct client *c, const char *reply, size_t len, unsigned hops);

/* A FIFO place for a request answered by something else than a server
 * connection (an L1 fill): returns the srvreq to complete. `via` is where
 * the answer comes from, for ordering. NULL on out of memory. */
struct srvreq *client_wait(struct client *c, struct server *via);

/* Fan-outs (proxy/fanout.c): one client request answered from several
 * server requests ("parts").
 * client_place() gives the request its FIFO place and counts it in flight;
 * complete it exactly once through its on_reply (which frees it), even
 * after the client has gone: client_place_owner() is NULL then. NULL on
 * out of memory (the client is closed).
 * client_part_sent() / client_part_done() count a part in flight on s (as
 * c->conns), so the client's next request for that backend goes on the
 * same connection, after it; client_conns_reserve() makes room for n
 * more backends at once (0, or -1 when it cannot: over CLIENT_CONNS_MAX,
 * out of memory). */
struct srvreq *client_place(struct client *c);
struct client *client_place_owner(const struct srvreq *sr);
int client_conns_reserve(struct client *c, unsigned n);
void client_part_sent(struct client *c, struct server *s);
void client_part_done(struct client *c, struct server *s);
/* The reply sr (from client_wait) receives is RESP2 but its client speaks
 * RESP3: convert it (resp3_from_resp2) with shape (0x80 | RESP3_UP_*; 0 =
 * none). */
void client_wait_resp3(struct srvreq *sr, unsigned shape);

/* Resume a stalled client (its in-flight requests are answered). */
void client_resume(struct client *c);

/* Resume the clients whose stall ended (from the loop's before-sleep
 * hook: never from inside a server's reply loop, so the request and reply
 * paths do not recurse into each other). */
void client_run_resumes(void);

/* Give c its own connection to b (MULTI, blocking, SUBSCRIBE...). NULL if
 * b is known to be down. */
struct backend;
struct server *client_pin(struct client *c, struct backend *b);

/* Turn c's pinned connection into a push stream (pub/sub, MONITOR). */
void client_enter_push(struct client *c);

/* End the sessions of clients pinned to b (the primary moved): push-mode
 * clients get `-<msg>`, the others get errors for what is in flight; all
 * are closed after their replies. */
void client_close_pinned(struct backend *b, const char *msg);

/* Close every client (shutdown). */
void client_close_all(void);

/* Are there clients with requests or output pending? (graceful shutdown) */
int client_any_pending(void);

/* Close clients idle longer than the `timeout` directive. */
void client_idle_check(uint64_t now);

#endif
