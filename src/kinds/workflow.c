/* Workflows: the spec is the definition, in Fission Workflows' format
 * (wf/wf.h has the fields and the checks). */
#include "kinds/kinds.h"

#include "base/error.h"
#include "wf/wf.h"

#include <string.h>

/* What the API found for each name (ctx->resolve), as the validator
 * wants it. */
static enum fl_wf_target resolve_target(void *data, const char *name)
{
    const struct fl_kind_check_ctx *ctx = data;
    const char *kind = ctx->resolve(ctx->data, name);
    if (kind == NULL)
        return FL_WF_TARGET_UNKNOWN;
    return strcmp(kind, "function") == 0 ? FL_WF_TARGET_FUNCTION : FL_WF_TARGET_WORKFLOW;
}

static int expr_syntax(void *data, const char *src, struct fl_buf *why)
{
    const struct fl_kind_check_ctx *ctx = data;
    return ctx->expr(ctx->data, src, why);
}

static int workflow_check(json_t *spec, const struct fl_kind_check_ctx *ctx, struct fl_buf *err)
{
    struct fl_wf_lookup lookup = {.data = (void *)ctx};
    if (ctx != NULL && ctx->resolve != NULL)
        lookup.target = resolve_target;
    if (ctx != NULL && ctx->expr != NULL)
        lookup.expr = expr_syntax;
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    int rc = fl_wf_check(spec, &lookup, &errs);
    if (rc == FL_EINVAL) {
        fl_buf_reset(err);
        fl_buf_appendf(err, "spec: %zu error%s: ", errs.n, errs.n > 1 ? "s" : "");
        fl_wf_errors_join(&errs, err);
    }
    fl_wf_errors_release(&errs);
    return rc;
}

/* The expressions the validator checks, found by the validator itself (a
 * pass that only collects them), so that the two never disagree on which
 * strings are expressions. */
struct expr_collect {
    int (*fn)(void *arg, const char *src);
    void *arg;
};

static int collect_expr(void *data, const char *src, struct fl_buf *why)
{
    struct expr_collect *k = data;
    int rc = k->fn(k->arg, src);
    return rc == FL_ENOMEM ? rc : 0;
}

static int workflow_exprs(json_t *spec, int (*fn)(void *arg, const char *src), void *arg)
{
    struct expr_collect k = {fn, arg};
    const struct fl_wf_lookup lookup = {.expr = collect_expr, .data = &k};
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    int rc = fl_wf_check(spec, &lookup, &errs);
    fl_wf_errors_release(&errs);
    return rc == FL_ENOMEM ? rc : 0;
}

const struct fl_kind fl_kind_workflow = {
    .name = "workflow",
    .plural = "workflows",
    .word = "wf",
    .noun = "a workflow",
    .create_usage = "--name NAME --spec FILE",
    .update_usage = "--name NAME --spec FILE",
    .flags = {{"--spec", "", FL_FLAG_SPEC}},
    .columns = {{"NAME", "name"},
                {"OUTPUT", "spec.output"},
                {"DESCRIPTION", "spec.description"},
                {"REVISION", "revision"}},
    /* its tasks' run targets: a function, else a workflow; a function
     * a workflow runs may not be deleted under it */
    .names = {fl_wf_each_target, {"function", "workflow", NULL}, "function"},
    .exprs = workflow_exprs,
    .check = workflow_check,
    .status = "none until the engine runs workflows: {}",
};
