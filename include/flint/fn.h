/*
 * flint/fn.h: the interface of a Flint function written in C.
 *
 *   #include <flint/fn.h>
 *
 *   int handler(const struct flint_request *req, struct flint_response *resp)
 *   {
 *       flint_response_printf(resp, "Hello, %s!\n", flint_request_param(req, "who"));
 *       return 0;
 *   }
 *
 * The builder (runtimes/c/build) compiles the function into a shared object;
 * the C runtime loads it once per instance and calls the handler for each
 * request, in the instance's single thread. Return 0 to send the response
 * (status 200 unless set), anything else to answer 500. An optional
 *
 *   int flint_init(void);
 *
 * runs once when the instance loads the function; non-zero fails the load.
 *
 * Versioning: FLINT_FN_API_VERSION grows when this interface grows; a
 * function built against version N runs on runtimes of version N or later.
 * Everything below exists since version 1 but flint_publish() (version 2).
 */
#ifndef FLINT_FN_H
#define FLINT_FN_H

#include <stddef.h>

#define FLINT_FN_API_VERSION 2

#ifdef __cplusplus
extern "C" {
#endif

struct flint_header {
    const char *name;
    const char *value;
};

/* The request, valid during the call. Strings are NUL-terminated. */
struct flint_request {
    const char *method;
    const char *path;  /* without the query */
    const char *query; /* after '?', or "" */
    const struct flint_header *headers;
    size_t nheaders;
    const char *body; /* NUL-terminated too, for text bodies */
    size_t body_len;
};

struct flint_response;

/* A request header by name (case-insensitive), or NULL. */
const char *flint_request_header(const struct flint_request *req, const char *name);

/* A route parameter ({name} in the route's path), or NULL. */
const char *flint_request_param(const struct flint_request *req, const char *name);

/* Set the status (default 200); one outside 200-599 is ignored. */
void flint_response_status(struct flint_response *resp, int status);

/* Add a header. 0, or -1 if the name is not a token, the value holds a
 * control character (a line break, NUL...), there are too many headers
 * (32), or the name is Content-Length or Transfer-Encoding, which the
 * runtime sets. */
int flint_response_header(struct flint_response *resp, const char *name, const char *value);

/* Append to the body. 0, or -1 past the runtime's body limit (16 MiB). */
int flint_response_write(struct flint_response *resp, const void *data, size_t len);
int flint_response_printf(struct flint_response *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Publish a message (len bytes of body, and the headers given, which may be
 * NULL when nheaders is 0; X-Flint-Message-Id names it for de-duplication)
 * to topic, one of those the function's spec lists under `publishes`,
 * through flintd's socket in the sandbox (FLINT_PUBLISH). It blocks until
 * flintd answers (30 s at most) and returns the answer's status: 202 once
 * the message is durable; 403 for a topic the spec does not list, 404 for
 * one that does not exist, 413 for a body over flintd's bound, 400 for a
 * bad message id, 503/507 when the store failed. -1 if it could not ask:
 * no FLINT_PUBLISH, a header that cannot be sent (as for
 * flint_response_header()), the socket unreachable, or no HTTP answer in
 * time. Since version 2.
 */
int flint_publish(const char *topic, const void *body, size_t len,
                  const struct flint_header *headers, size_t nheaders);

/* Every function carries the version it was built against. */
#ifndef FLINT_RUNTIME
__attribute__((weak)) const int flint_fn_api_version = FLINT_FN_API_VERSION;
#endif

#ifdef __cplusplus
}
#endif

#endif
