/*
 * proxy/http.h — the operations port: metrics, health, the cache over HTTP.
 *
 *   http-port (on bind) ─> accept ─> http_parser (libhttp-parser) ─> one request
 *     GET    /metrics      ─> Prometheus text (proxy/metrics.c)
 *     GET    /healthz      ─> 200 while the loop runs
 *     GET    /readyz       ─> 200 | 503 + reason (primary down, slot map incomplete)
 *     GET    /cache/{key}  ─┐ an internal client (client_internal_open): GET / SET / DEL
 *     PUT    /cache/{key}  ─┤ go through the router and the L1 like any client's,
 *     DELETE /cache/{key}  ─┘ the reply comes back here (http_before_sleep)
 *   <─ response, "Connection: close", the connection is closed once written
 *
 * One request per connection (no keep-alive): scrapers and probes open a
 * connection per request anyway, and the server stays small. Limits: a
 * request (line, headers, body) bigger than http-max-body is answered 413;
 * a client that has not sent a whole request, or not read its response,
 * within http-timeout is closed. Bad requests get 400.
 *
 * Contract: http_start() listens when http-port > 0 (0 or a negative
 * error, logged); http_stop() closes the listener and every connection
 * (shutdown). http_before_sleep() must run once per loop iteration, before
 * output is flushed (main.c's before-sleep hook): it answers the cache
 * requests whose replies arrived.
 */
#ifndef REDSNANO_PROXY_HTTP_H
#define REDSNANO_PROXY_HTTP_H

#define HTTP_READ_CHUNK (16 * 1024)      /* room offered to each read */
#define HTTP_MAX_URL 8192                /* longest request target (414 beyond) */
#define HTTP_MAX_AUTHZ 1024              /* longest Authorization header value (431 beyond) */

int http_start(void);
void http_stop(void);
void http_before_sleep(void);

#endif
