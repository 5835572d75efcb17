/*
 * The executor as the part that runs environments and functions: the
 * hooks kinds.def names for them (see kinds/kinds.h), turning what the
 * store holds into fl_executor_set_*() and the executor's view into their
 * status.
 */
#include "exec/executor.h"

#include "base/error.h"
#include "base/log.h"
#include "kinds/kinds.h"

static int environment_put(void *part, const char *name, uint64_t revision, json_t *spec,
                           struct fl_buf *err)
{
    struct fl_env_spec env;
    int rc = fl_env_spec_parse(spec, &env, err);
    if (rc < 0)
        return rc;
    return fl_executor_set_environment(part, name, (int64_t)revision, &env);
}

static void environment_remove(void *part, const char *name)
{
    fl_executor_remove_environment(part, name);
}

const struct fl_kind_hooks fl_executor_environment_hooks = {
    .put = environment_put,
    .remove = environment_remove,
};

static int function_put(void *part, const char *name, uint64_t revision, json_t *spec,
                        struct fl_buf *err)
{
    struct fl_fn_spec fn;
    int rc = fl_fn_spec_parse(spec, &fn, err);
    if (rc < 0)
        return rc;
    return fl_executor_set_function(part, name, (int64_t)revision, &fn);
}

static void function_remove(void *part, const char *name)
{
    fl_executor_remove_function(part, name);
}

static void functions_synced(void *part)
{
    fl_executor_functions_loaded(part);
    fl_log(FL_LOG_INFO, "flintd", "functions loaded", NULL);
}

/* Live, from the executor: its build, calls, queue and instances (the
 * build log only for one function's GET). */
static json_t *function_status(void *part, const char *name, bool detail)
{
    json_t *status = fl_executor_function_status(part, name);
    if (status != NULL && !detail)
        json_object_del(status, "buildLog");
    return status;
}

const struct fl_kind_hooks fl_executor_function_hooks = {
    .put = function_put,
    .remove = function_remove,
    .synced = functions_synced,
    .status = function_status,
};
