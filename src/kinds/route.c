/* Routes (HTTP triggers): a path or prefix, methods, a target (a
 * function, a workflow, or a topic the calls are published to), and how
 * they make async invocations (router/routes.h has the fields). */
#include "kinds/kinds.h"

#include "router/routes.h"

static int route_check(json_t *spec, const struct fl_kind_check_ctx *ctx, struct fl_buf *err)
{
    return fl_route_spec_check(spec, err);
}

#define ROUTE_FLAGS                                                                                \
    "[--method M]... [--workflow NAME] [--async] [--allow-async] [--callback URL]"                 \
    " [--retry-attempts N] [--retry-backoff DURATION] [--retry-max-backoff DURATION]"

const struct fl_kind fl_kind_route = {
    .name = "route",
    .plural = "routes",
    .word = "route",
    .noun = "a route (HTTP trigger)",
    .create_usage =
        "--name NAME (--url PATH | --prefix PATH) (--function FN | --topic T) " ROUTE_FLAGS,
    .update_usage =
        "--name NAME [--url PATH | --prefix PATH] [--function FN | --topic T] " ROUTE_FLAGS,
    .flags = {{"--url", "path", FL_FLAG_PATH},
              {"--prefix", "prefix", FL_FLAG_PATH},
              {"--method", "methods", FL_FLAG_LIST},
              {"--function", "function", FL_FLAG_TARGET},
              {"--workflow", "workflow", FL_FLAG_TARGET},
              {"--topic", "topic", FL_FLAG_TARGET},
              {"--async", "async", FL_FLAG_SWITCH},
              {"--allow-async", "allowAsync", FL_FLAG_SWITCH},
              {"--callback", "callback", FL_FLAG_STRING},
              {"--retry-attempts", "retry.maxAttempts", FL_FLAG_INT},
              {"--retry-backoff", "retry.backoff", FL_FLAG_STRING},
              {"--retry-max-backoff", "retry.maxBackoff", FL_FLAG_STRING}},
    .columns = {{"NAME", "name"},
                {"METHODS", "spec.methods"},
                {"PATH", "spec.path"},
                {"PREFIX", "spec.prefix"},
                {"TARGET", "spec.target"},
                {"REVISION", "revision"}},
    .refs = {{"target.function", "function", false}, {"target.workflow", "workflow", false}},
    .check = route_check,
    .status = "none yet: {}",
};
