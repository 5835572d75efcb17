/*
 * An HTTP/1.1 client on libuv and http-parser, with a connection pool per
 * target.
 *
 * A target is "HOST:PORT" (IPv4 or "[v6]:PORT") or "unix:/path". Each
 * target keeps up to max_idle idle keep-alive connections and opens at most
 * max_conns at once; requests beyond that wait in a bounded queue (past it,
 * fl_http_client_request() fails with FL_EAGAIN). Idle connections are
 * watched: one the server closes leaves the pool at once.
 *
 * Errors say whether the request may have reached the server:
 *   FL_ECONNECT   it was not sent (no connection, or the connect timed
 *                 out): safe to send again
 *   FL_ESENT      the connection failed after the request was (maybe)
 *                 written and before a whole response came back: the
 *                 server may have acted on it; do not resend blindly
 *   FL_ETIMEDOUT  no whole response within the response timeout (sent)
 *   FL_EPROTO     the response is not valid HTTP (sent)
 *   FL_ETOOBIG    the response is larger than max_response_bytes (sent)
 *   FL_ECANCELED  fl_http_client_cancel() or fl_http_client_close()
 * A request sent on a pooled connection that turns out to be dead before
 * any response byte arrives is sent once more on a new connection only if
 * the request is marked idempotent; otherwise it fails with FL_ESENT.
 *
 * Pipelining: a request marked pipeline may share a connection with
 * other pipelined requests to the same target, up to pipeline_depth
 * unanswered on each; they spread over pipeline_conns connections first,
 * and when those are all full another opens (up to max_conns).
 * Only for servers that answer pipelined requests in order (the runtime
 * contract says which do). Requests are written from the loop's prepare
 * and check phases, so those made during one loop iteration leave
 * together, one writev per connection. A response timeout fails the
 * requests that timed out with FL_ETIMEDOUT and closes their connection;
 * the others written on it fail with FL_ESENT, those not yet written are
 * sent on another, as are those behind a response that closes the
 * connection (the server processed none of them).
 *
 * Everything runs on the loop's thread. The callback of a request runs
 * exactly once (never from inside fl_http_client_request()); the response
 * it gets, and everything in it, is valid only during the callback.
 */
#ifndef FLINT_HTTP_CLIENT_H
#define FLINT_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http/server.h" /* struct fl_http_header */

struct fl_http_client;
struct fl_http_call;

struct fl_http_client_config {
    unsigned max_idle;            /* idle connections kept per target; default 16 */
    unsigned max_conns;           /* connections per target; default 256 */
    unsigned max_queued;          /* requests waiting per target; default 4096 */
    unsigned pipeline_conns;      /* connections pipelined requests spread over; default 2 */
    unsigned pipeline_depth;      /* unanswered pipelined requests per connection; default 64 */
    uint64_t connect_timeout_ms;  /* default 5 s */
    uint64_t response_timeout_ms; /* request written to response complete; default 60 s */
    uint64_t idle_timeout_ms;     /* idle pooled connections are closed after; default 60 s */
    size_t max_header_bytes;      /* response status line + headers; default 64 KiB */
    size_t max_response_bytes;    /* buffered body; default 16 MiB */
};

void fl_http_client_config_init(struct fl_http_client_config *cfg);

struct fl_http_client_request {
    const char *target; /* "127.0.0.1:8080" or "unix:/path" */
    const char *method; /* "GET" */
    const char *path;   /* the request target: "/x?y=1" */
    const struct fl_http_header *headers;
    size_t nheaders;
    const void *body;
    size_t body_len;
    uint64_t timeout_ms; /* response timeout; 0: the client's */
    bool idempotent;     /* may be resent after a dead pooled connection */
    bool pipeline;       /* may share a connection with other pipelined requests */
};

struct fl_http_client_response {
    int status;
    const struct fl_http_header *headers;
    size_t nheaders;
    const char *body; /* NULL when the body was streamed */
    size_t body_len;
};

/* err is 0 or one of the codes above; resp is NULL unless err is 0. */
typedef void (*fl_http_client_cb)(int err, const struct fl_http_client_response *resp, void *data);

/* For streamed responses: the status and headers, once; then the body in
 * pieces. Return non-zero from either to abandon the response (the
 * request then ends with FL_ECANCELED). */
typedef int (*fl_http_client_head_cb)(const struct fl_http_client_response *head, void *data);
typedef int (*fl_http_client_body_cb)(const char *chunk, size_t len, void *data);

/* A new client on loop (cfg NULL: defaults). 0 or FL_ENOMEM. */
int fl_http_client_new(uv_loop_t *loop, const struct fl_http_client_config *cfg,
                       struct fl_http_client **out);

/* Cancel every request (their callbacks run with FL_ECANCELED), close
 * every connection, and free the client once its handles are closed;
 * done (may be NULL) runs then. */
void fl_http_client_close(struct fl_http_client *client, void (*done)(void *data), void *data);

/*
 * Send req (everything in it is copied) and call cb with the buffered
 * response. If call is not NULL, a handle for fl_http_client_cancel() is
 * stored there; it is valid until cb runs. Returns 0, or FL_EINVAL (bad
 * target, method or path; a header name that is not a token, a value with a
 * control character, or a Content-Length or Transfer-Encoding header, which
 * the client writes itself), FL_EAGAIN (the target's queue is full), FL_ENOMEM,
 * FL_ECANCELED (the client is closing) without calling cb.
 */
int fl_http_client_request(struct fl_http_client *client, const struct fl_http_client_request *req,
                           fl_http_client_cb cb, void *data, struct fl_http_call **call);

/* The same, streaming the response body to on_head and on_body instead of
 * buffering it (then max_response_bytes does not apply); cb still runs
 * once at the end, with resp->body NULL. */
int fl_http_client_request_stream(struct fl_http_client *client,
                                  const struct fl_http_client_request *req,
                                  fl_http_client_head_cb on_head, fl_http_client_body_cb on_body,
                                  fl_http_client_cb cb, void *data, struct fl_http_call **call);

/* Cancel: cb runs with FL_ECANCELED before this returns. A request already
 * written cannot be unsent: its connection is closed, or, if pipelined
 * requests share it, its response is dropped when it comes. */
void fl_http_client_cancel(struct fl_http_call *call);

/* The value of a response header (case-insensitive) or NULL. */
const char *fl_http_client_header(const struct fl_http_client_response *resp, const char *name,
                                  size_t *len);

/* Connections the client holds for target, open or opening (for tests and
 * status). */
unsigned fl_http_client_connections(struct fl_http_client *client, const char *target);

#endif
