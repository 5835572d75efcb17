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

/* /v1/invocations... and /v1/deadletters... (invocations.c): true if req
 * was one of them, and is answered (or will be). async may be NULL: 503. */
bool api_async_handle(struct fl_async *async, struct fl_http_request *req);

#endif
