/*
 * The workflow kind's hooks (kinds/kinds.def): how flintd's follower of
 * workflows feeds the engine (engine.h) the definitions new invocations
 * run. A definition the store holds is put as it is; the API checked it
 * before it was stored.
 */
#include "kinds/kinds.h"
#include "wf/engine.h"

static int wf_put(void *part, const char *name, uint64_t revision, json_t *spec, struct fl_buf *err)
{
    return fl_wf_engine_put(part, name, revision, spec);
}

static void wf_remove(void *part, const char *name)
{
    fl_wf_engine_remove(part, name);
}

const struct fl_kind_hooks fl_wf_engine_hooks = {.put = wf_put, .remove = wf_remove};
