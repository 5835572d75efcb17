/*
 * The executor as the invoker's handler of functions (see
 * fl_invoker_serve_functions() in invoke.h). The executor knows nothing of
 * the invoker: this file maps one onto the other. A call goes to
 * fl_executor_invoke() with the call's own copies (nothing more is copied);
 * the executor's answer, always an HTTP response, comes back as the
 * outcome, with its error code mapped to an error kind by a table.
 */
#include "exec/executor.h"
#include "invoke/invoke.h"

#include "base/error.h"

#include <string.h>

/* The executor's error codes (executor.c) and what kind of error each is. */
static const struct {
    const char *code;
    enum fl_invoke_error error;
} error_kinds[] = {
    {"function_not_found", FL_INVOKE_NOT_FOUND},
    {"queue_full", FL_INVOKE_BUSY},
    {"concurrency_limit", FL_INVOKE_BUSY},
    {"no_instance", FL_INVOKE_UNAVAILABLE},
    {"stopping", FL_INVOKE_UNAVAILABLE},
    {"instance_unreachable", FL_INVOKE_UNAVAILABLE},
    {"environment_not_found", FL_INVOKE_UNAVAILABLE},
    {"instance_failed", FL_INVOKE_UNAVAILABLE},
    {"build_failed", FL_INVOKE_FAILED},
    {"function_load_failed", FL_INVOKE_FAILED},
    {"too_many_headers", FL_INVOKE_FAILED},
    {"function_timeout", FL_INVOKE_TIMEOUT},
    {"instance_crashed", FL_INVOKE_CRASH},
    {"bad_response", FL_INVOKE_BAD_RESPONSE},
    {"response_too_large", FL_INVOKE_TOO_LARGE},
};

static enum fl_invoke_error error_kind(const char *code, int status)
{
    if (code == NULL)
        return FL_INVOKE_OK;
    for (size_t i = 0; i < sizeof(error_kinds) / sizeof(error_kinds[0]); i++)
        if (strcmp(error_kinds[i].code, code) == 0)
            return error_kinds[i].error;
    return status == 429 ? FL_INVOKE_BUSY : status == 404 ? FL_INVOKE_NOT_FOUND : FL_INVOKE_FAILED;
}

static void on_result(const struct fl_executor_result *res, void *data)
{
    struct fl_invoke *call = data;
    struct fl_invoke_outcome o = {.error = error_kind(res->error_code, res->status),
                                  .status = res->status,
                                  .headers = res->headers,
                                  .nheaders = res->nheaders,
                                  .body = res->body,
                                  .body_len = res->body_len,
                                  .code = res->error_code,
                                  .message = res->error_message};
    fl_invoke_finish(call, &o);
}

static int start(void *data, struct fl_invoke *call)
{
    const struct fl_invoke_request *r = fl_invoke_request_of(call);
    struct fl_executor_request req = {
        .function = r->target.name,
        .method = r->method,
        .target = fl_invoke_uri(call),
        .headers = r->headers,
        .nheaders = r->nheaders,
        .extra = r->added,
        .nextra = r->nadded,
        .body = r->body,
        .body_len = r->body_len,
        .trigger = r->trigger_name != NULL ? r->trigger_name : fl_invoke_trigger_name(r->trigger),
        .invocation_id = fl_invoke_id(call),
        .attempt = (int)r->attempt};
    struct fl_invocation *handle;
    int rc = fl_executor_invoke(data, &req, on_result, call, &handle);
    if (rc < 0)
        return rc;
    fl_invoke_set_state(call, handle);
    return 0;
}

static void cancel(void *data, struct fl_invoke *call)
{
    fl_executor_cancel(fl_invoke_state(call));
}

static int capacity(void *data, const char *name, struct fl_invoke_capacity *out)
{
    struct fl_executor_capacity cap;
    int rc = fl_executor_capacity(data, name, &cap);
    if (rc < 0)
        return rc;
    *out = (struct fl_invoke_capacity){.slots = cap.slots,
                                       .running = cap.running,
                                       .queued = cap.queued,
                                       .queue_max = cap.queue_max};
    return 0;
}

static void on_room(void *data, const char *function)
{
    struct fl_invoke_target t = {FL_INVOKE_FUNCTION, function};
    fl_invoker_room(data, &t);
}

static const struct fl_invoke_handler functions = {
    .start = start, .cancel = cancel, .capacity = capacity};

int fl_invoker_serve_functions(struct fl_invoker *inv, struct fl_executor *ex)
{
    int rc = fl_invoker_register(inv, FL_INVOKE_FUNCTION, &functions, ex);
    if (rc == 0)
        fl_executor_on_room(ex, on_room, inv);
    return rc;
}
