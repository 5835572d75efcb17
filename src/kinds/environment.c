/* Environments: a runtime and its warm pool (exec/spec.h has the fields). */
#include "kinds/kinds.h"

#include "exec/spec.h"

static int environment_check(json_t *spec, const struct fl_kind_check_ctx *ctx, struct fl_buf *err)
{
    struct fl_env_spec env;
    int rc = fl_env_spec_parse(spec, &env, err);
    if (rc == 0)
        fl_env_spec_release(&env);
    return rc;
}

const struct fl_kind fl_kind_environment = {
    .name = "environment",
    .plural = "environments",
    .word = "env",
    .noun = "an environment",
    .create_usage = "--name NAME --runtime c|binary|python|node|custom [--poolsize N] [--builder "
                    "CMD] [--command CMD]... [--network true|false] [--memory SIZE] [--cpus N] "
                    "[--cpu-seconds N]",
    .update_usage = "--name NAME [--runtime R] [--poolsize N] [--builder CMD] [--command CMD]... "
                    "[--network true|false] [--memory SIZE] [--cpus N] [--cpu-seconds N]",
    .flags = {{"--runtime", "runtime", FL_FLAG_STRING},
              {"--poolsize", "poolsize", FL_FLAG_INT},
              {"--builder", "builder", FL_FLAG_STRING},
              {"--command", "command", FL_FLAG_LIST},
              {"--network", "network", FL_FLAG_BOOL},
              {"--memory", "limits.memory", FL_FLAG_STRING},
              {"--cpu-seconds", "limits.cpuSeconds", FL_FLAG_INT},
              {"--cpus", "limits.cpus", FL_FLAG_NUMBER}},
    .columns = {{"NAME", "name"},
                {"RUNTIME", "spec.runtime"},
                {"POOLSIZE", "spec.poolsize"},
                {"NETWORK", "spec.network"},
                {"REVISION", "revision"}},
    .check = environment_check,
    .status = "none yet: {} (its pool is in GET /v1/status)",
};
