/*
 * What the control API's files share (api.h says what the API does).
 */
#ifndef FLINT_API_INTERNAL_H
#define FLINT_API_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "async/async.h"
#include "http/server.h"

/* Answer req with status and body as compact JSON (500 when it cannot be
 * written). body stays the caller's. */
void api_respond_json(struct fl_http_request *req, int status, json_t *body);

/* A message's body as the API shows it: a string of it if it is UTF-8
 * (*encoding "text"), else of its base64 form ("base64"). A new value, or
 * NULL (no memory). */
json_t *api_body_json(const void *data, size_t len, const char **encoding);

/* /v1/invocations... and /v1/deadletters... (invocations.c): true if req
 * was one of them, and is answered (or will be). async may be NULL: 503;
 * workflows may be NULL: only async invocations are served; mq may be
 * NULL: every dead letter is the store's. */
struct fl_wf_engine;
struct fl_mq;
bool api_async_handle(struct fl_async *async, struct fl_wf_engine *workflows, struct fl_mq *mq,
                      struct fl_http_request *req);

/* The built-in topics (topics.c): /v1/topics... */
struct api_topics;
struct fl_store;
int api_topics_new(uv_loop_t *loop, struct fl_store *store, struct api_topics **out);
/* After api_topics_end_streams() and once the loop has run what that
 * closed (flintd frees the API after its loop ends). */
void api_topics_free(struct api_topics *t);
/* True if req was a /v1/topics request, and is answered (or will be). */
bool api_topics_handle(struct api_topics *t, struct fl_http_request *req);
/* End every follow of a topic (they never end by themselves). */
void api_topics_end_streams(struct api_topics *t);

#endif
