/* Functions: code, its environment, scaling and limits (exec/spec.h has
 * the fields). */
#include "kinds/kinds.h"

#include "base/error.h"
#include "exec/spec.h"

static int function_check(json_t *spec, const struct fl_kind_check_ctx *ctx, struct fl_buf *err)
{
    struct fl_fn_spec fn;
    int rc = fl_fn_spec_parse(spec, &fn, err);
    if (rc < 0)
        return rc;
    if (ctx != NULL && ctx->has_code != NULL && !ctx->has_code(ctx->data, fn.code_sha256)) {
        fl_buf_reset(err);
        fl_buf_appendf(err,
                       "spec.code.sha256: no code with digest %s: upload it with POST /v1/code "
                       "first",
                       fn.code_sha256);
        rc = FL_EINVAL;
    }
    fl_fn_spec_release(&fn);
    return rc;
}

#define FN_FLAGS                                                                                   \
    "[--entrypoint NAME] [--timeout DURATION] [--idle-timeout DURATION]"                           \
    " [--concurrency N] [--requests-per-instance N] [--min-scale N] [--env-var K=V]..."            \
    " [--memory SIZE] [--cpus N] [--retry-attempts N] [--retry-backoff DURATION]"                  \
    " [--retry-max-backoff DURATION] [--publishes TOPIC[,TOPIC]...]..."

const struct fl_kind fl_kind_function = {
    .name = "function",
    .plural = "functions",
    .word = "fn",
    .noun = "a function",
    .create_usage = "--name NAME --env ENV --code FILE " FN_FLAGS,
    .update_usage = "--name NAME [--env ENV] [--code FILE] " FN_FLAGS,
    .flags = {{"--env", "environment", FL_FLAG_STRING},
              {"--code", "code", FL_FLAG_CODE},
              {"--entrypoint", "entrypoint", FL_FLAG_STRING},
              {"--timeout", "functionTimeout", FL_FLAG_STRING},
              {"--idle-timeout", "idleTimeout", FL_FLAG_STRING},
              {"--concurrency", "concurrency", FL_FLAG_INT},
              {"--requests-per-instance", "requestsPerInstance", FL_FLAG_INT},
              {"--min-scale", "minScale", FL_FLAG_INT},
              {"--env-var", "env", FL_FLAG_ENVVAR},
              {"--memory", "limits.memory", FL_FLAG_STRING},
              {"--cpus", "limits.cpus", FL_FLAG_NUMBER},
              {"--retry-attempts", "retry.maxAttempts", FL_FLAG_INT},
              {"--retry-backoff", "retry.backoff", FL_FLAG_STRING},
              {"--retry-max-backoff", "retry.maxBackoff", FL_FLAG_STRING},
              {"--publishes", "publishes", FL_FLAG_NAMES}},
    .columns = {{"NAME", "name"},
                {"ENV", "spec.environment"},
                {"ENTRYPOINT", "spec.entrypoint"},
                {"CODE", "spec.code.filename"},
                {"BUILD", "status.build"},
                {"PUBLISHES", "spec.publishes"},
                {"REVISION", "revision"}},
    .refs = {{"environment", "environment", true}},
    .check = function_check,
    .status = "the executor's: build, its log, calls, queue, instances",
};
