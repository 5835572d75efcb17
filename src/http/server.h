/*
 * An HTTP/1.1 server on libuv and http-parser.
 *
 * One server has any number of listeners (TCP "127.0.0.1:8080", "[::1]:80",
 * or Unix "unix:/path/sock") on one loop, and one handler that receives
 * every complete request. It supports keep-alive, pipelining (responses
 * are always written in request order, whatever order handlers answer
 * in), Content-Length and chunked request bodies, HEAD, and
 * Expect: 100-continue. Every limit is in the config, and every refusal is
 * a JSON error body with the right status:
 *
 *   400 malformed request      408 header or body timeout
 *   413 body too large         431 header block too large or too many headers
 *   503 too many connections (from the server, or from one client address),
 *       or too many bytes in flight (see the budget below)
 *   (idle keep-alive connections just close)
 *
 * Connections
 *   At most max_connections are served. When one more arrives, the
 *   connection idle longest (a keep-alive one between requests, or one
 *   that has sent nothing yet: nothing in flight, nothing unsent) is
 *   closed to make room, as nginx does; only when none is idle is the new
 *   one answered 503. One client address may hold at most
 *   max_connections_per_address of them (an IPv6 client: its /64; Unix
 *   socket peers are not counted): more from it are answered 503. A
 *   request that has begun must have its headers within
 *   header_timeout_ms, whatever the pace of its bytes (slowloris: 408).
 *
 * Bytes in flight (struct fl_http_budget)
 *   Servers may share one budget of bytes in flight: the request bodies
 *   and headers being held, the answers waiting to be written (behind
 *   earlier pipelined ones, or unread by the client) and input parked
 *   while a pipeline is full. Past budget_percent of its limit a server
 *   (1) answers every new request 503 "overloaded" and closes, as soon as
 *   its headers are complete (also when its announced body would not fit),
 *   (2) stops reading from every connection that holds bytes, (3) does not
 *   start pipelined requests ahead of an unanswered one, and (4) closes a
 *   connection whose client leaves more than 1 MiB of answers unread. It
 *   resumes as bytes drain. Giving the server that must stay reachable a
 *   higher percent than the others keeps room for it.
 *
 * Requests and their ownership
 *   The server owns every struct fl_http_request. The handler gets it
 *   when the request is complete, and it stays valid until the handler
 *   finishes it, exactly once, with fl_http_respond(),
 *   fl_http_respond_error() or fl_http_stream_end(); the request is freed
 *   then. A handler may finish a request later, from a callback on the
 *   same loop. If the client goes away first, the abort callback (if set
 *   with fl_http_request_on_abort()) runs; the request is still valid and
 *   must still be finished, which then only frees it (FL_ECANCELED).
 *
 * Everything here runs on the loop's thread.
 */
#ifndef FLINT_HTTP_SERVER_H
#define FLINT_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct fl_http_server;

struct fl_http_header {
    const char *name; /* NUL-terminated */
    size_t name_len;
    const char *value; /* NUL-terminated */
    size_t value_len;
};

struct fl_http_request {
    /* Read-only for handlers; every string is NUL-terminated. */
    const char *method; /* "GET", "POST", ... (static) */
    const char *target; /* the request target in origin form: path and query (an
                         * absolute-form "http://host/x?q" arrives as "/x?q") */
    size_t target_len;
    const char *path; /* target before '?' (not decoded) */
    size_t path_len;
    const char *query; /* after '?', or "" */
    size_t query_len;
    const struct fl_http_header *headers;
    size_t nheaders;
    const char *body; /* decoded from chunked if need be; "" when empty */
    size_t body_len;
    unsigned short http_major, http_minor;
    bool keep_alive;      /* whether the client wants the connection kept */
    const char *listener; /* the listener's address, e.g. "127.0.0.1:8080" */
    const char *remote;   /* the peer, e.g. "127.0.0.1:51234", or "unix" */
    void *user;           /* free for the handler's use */
};

typedef void (*fl_http_handler)(struct fl_http_request *req, void *data);
typedef void (*fl_http_abort_cb)(struct fl_http_request *req, void *data);

/*
 * Called (with the handler's data) when a request's headers are complete,
 * before any byte of its body is read and before 100 Continue is sent. The
 * request's method, target, path, query, headers and remote are set; the
 * hook must not keep req. Return 0 to go on, or a status from 400 to 599
 * to refuse the request: the server answers {"error": {"code": *code,
 * "message": *message}} (the hook points them at static strings), reads no
 * body and closes the connection. The handler never sees a refused request.
 */
typedef int (*fl_http_headers_cb)(const struct fl_http_request *req, void *data, const char **code,
                                  const char **message);

/*
 * A budget of bytes in flight, shared by the servers of one loop (see
 * "Bytes in flight" above). Create it before the servers, free it after the
 * last of them is closed.
 */
struct fl_http_budget;

/* A budget of limit bytes (0: FL_EINVAL). 0 or FL_ENOMEM. */
int fl_http_budget_new(size_t limit, struct fl_http_budget **out);
void fl_http_budget_free(struct fl_http_budget *budget);
/* Bytes the servers using it hold now, and the most they ever held. */
size_t fl_http_budget_used(const struct fl_http_budget *budget);
size_t fl_http_budget_peak(const struct fl_http_budget *budget);

struct fl_http_server_config {
    size_t max_header_bytes;    /* request line + headers; default 16 KiB */
    size_t max_headers;         /* default 100 */
    size_t max_body_bytes;      /* default 1 MiB */
    uint64_t header_timeout_ms; /* first byte of a request to end of headers; default 10 s */
    uint64_t body_timeout_ms;   /* end of headers to end of body; default 30 s */
    uint64_t idle_timeout_ms;   /* keep-alive connection with nothing in flight; default 60 s */
    unsigned max_connections;   /* default 4096 */
    unsigned max_connections_per_address; /* from one client address; default 0: no cap */
    unsigned max_pipeline;                /* requests in flight on one connection; default 32 */
    fl_http_headers_cb on_headers;        /* checks a request before its body; default NULL */
    struct fl_http_budget *budget;        /* shared bytes in flight; default NULL: none */
    unsigned budget_percent;              /* of the budget's limit this server lets be held
                                           * (by all servers) before it sheds; default 100 */
};

/* Fill cfg with the defaults above. */
void fl_http_server_config_init(struct fl_http_server_config *cfg);

/* A new server on loop (cfg NULL: defaults; it is copied). 0 or FL_ENOMEM. */
int fl_http_server_new(uv_loop_t *loop, const struct fl_http_server_config *cfg,
                       fl_http_handler handler, void *data, struct fl_http_server **out);

/*
 * Listen on addr: "HOST:PORT" (IPv4, or "[v6]:PORT"; port 0 picks a free
 * one), "unix:/path" (a stale socket file there is replaced) or "fd:N" (a
 * socket already listening, made close-on-exec here). If bound
 * is not NULL, the address actually bound is written there (e.g.
 * "127.0.0.1:41234"). 0, FL_EINVAL (bad address), or a negative errno code
 * (e.g. -EADDRINUSE). The message in err says which.
 */
int fl_http_server_listen(struct fl_http_server *srv, const char *addr, char *bound,
                          size_t boundsize, char *err, size_t errsize);

/* Serve an already connected stream socket (a socketpair end, for tests
 * and fuzzing). The server takes fd. 0 or a negative errno code. */
int fl_http_server_adopt(struct fl_http_server *srv, int fd);

/*
 * Stop: close the listeners at once, close idle connections, let requests
 * in flight finish for up to drain_ms, then close what is left. done runs
 * (from the loop) when every handle is closed; the server is freed then.
 * Requests still held by handlers stay valid and must still be finished.
 */
void fl_http_server_close(struct fl_http_server *srv, uint64_t drain_ms, void (*done)(void *data),
                          void *data);

/* Connections open now (for status and tests). */
unsigned fl_http_server_connections(const struct fl_http_server *srv);

/* The value of header name (case-insensitive), or NULL; *len gets its
 * length if len is not NULL. The first such header wins. */
const char *fl_http_request_header(const struct fl_http_request *req, const char *name,
                                   size_t *len);

/* Tell cb if the client goes away before req is finished. */
void fl_http_request_on_abort(struct fl_http_request *req, fl_http_abort_cb cb, void *data);

/* Whether the client is gone (the request must still be finished). */
bool fl_http_request_aborted(const struct fl_http_request *req);

/*
 * Answer req and free it. The server adds Date, Content-Length and, when
 * the connection is to close, Connection: close; headers must not contain
 * the others, and a Content-Length among them is ignored, except in the
 * answer to a HEAD request: the body is not sent then, and a Content-Length
 * header (the length a GET would have had, from a proxied answer, say) is
 * announced instead of body_len. 0; FL_ECANCELED if the client is
 * gone (req is freed all the same); FL_EINVAL if a header holds a line
 * break, or FL_ENOMEM (either way req is answered 500 instead).
 */
int fl_http_respond(struct fl_http_request *req, int status, const struct fl_http_header *headers,
                    size_t nheaders, const void *body, size_t body_len);

/* Answer with {"error": {"code": code, "message": <formatted>}} as
 * application/json. Same returns as fl_http_respond(). */
int fl_http_respond_error(struct fl_http_request *req, int status, const char *code,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * A streamed (chunked) response: begin, write any number of times, end.
 * Writes are buffered while earlier pipelined responses are pending and
 * while the client reads slowly, up to FL_HTTP_STREAM_MAX_BUFFERED bytes:
 * past that a write fails with FL_EAGAIN and the caller may drop data or
 * end the stream. After the client is gone, writes fail with FL_ECANCELED
 * (the stream must still be ended). fl_http_stream_end() frees req.
 */
#define FL_HTTP_STREAM_MAX_BUFFERED (4u << 20)
int fl_http_stream_begin(struct fl_http_request *req, int status,
                         const struct fl_http_header *headers, size_t nheaders);
int fl_http_stream_write(struct fl_http_request *req, const void *data, size_t len);
int fl_http_stream_end(struct fl_http_request *req);

/* The reason phrase of a status ("Not Found"), or "Unknown". */
const char *fl_http_status_text(int status);

#endif
