/* Workflow definitions: validation (see wf.h). */
#include "wf/wf.h"
#include "wf/internal.h"

#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* bytes of an expression quoted in an error */
#define EXPR_QUOTE 80

struct validator {
    const struct fl_wf_lookup *lookup;
    struct fl_wf_errors *errs;
    struct fl_buf why; /* an expression's error */
    int rc;            /* FL_ENOMEM once met */
};

static void check_wf(struct validator *v, struct fl_wf *wf, const char *path);

/* ---- expressions ---- */

struct expr_walk {
    struct validator *v;
    const char *path;
};

static int check_one_expr(void *arg, const char *src, size_t n)
{
    struct expr_walk *w = arg;
    struct validator *v = w->v;
    char *copy = strndup(src, n);
    if (copy == NULL) {
        v->rc = FL_ENOMEM;
        return 1;
    }
    fl_buf_reset(&v->why);
    int rc = v->lookup->expr(v->lookup->data, copy, &v->why);
    if (rc == FL_ENOMEM) {
        v->rc = rc;
    } else if (rc < 0) {
        fl_wf_error(v->errs, w->path, "expression {%.*s%s}: %s",
                    (int)(n < EXPR_QUOTE ? n : EXPR_QUOTE), src, n > EXPR_QUOTE ? "..." : "",
                    v->why.data != NULL ? v->why.data : "is not valid JavaScript");
    }
    free(copy);
    return v->rc < 0;
}

/* ---- tasks ---- */

static void check_target(struct validator *v, struct fl_wf_task *t, const char *path)
{
    if (fl_wf_is_builtin(t->run)) {
        t->target = FL_WF_TARGET_BUILTIN;
        return;
    }
    t->target = FL_WF_TARGET_UNKNOWN;
    if (v->lookup == NULL || v->lookup->target == NULL)
        return;
    t->target = v->lookup->target(v->lookup->data, t->run);
    if (t->target != FL_WF_TARGET_FUNCTION && t->target != FL_WF_TARGET_WORKFLOW) {
        char where[WF_PATH_MAX];
        wf_path_join(where, sizeof(where), path, "run");
        fl_wf_error(v->errs, where, "'%s' is not a built-in, a function or a workflow", t->run);
    }
}

/* The task's run, its inputs' expressions, its inline tasks and workflows
 * and its catch task (requires are the workflow's business). */
static void check_task(struct validator *v, struct fl_wf_task *t, const char *path)
{
    check_target(v, t, path);
    for (size_t i = 0; i < t->ninputs && v->rc == 0; i++) {
        struct fl_wf_input *in = &t->inputs[i];
        char where[WF_PATH_MAX];
        char inputs[WF_PATH_MAX];
        wf_path_join(inputs, sizeof(inputs), path, "inputs");
        wf_path_join(where, sizeof(where), inputs, in->key);
        if (in->task != NULL)
            check_task(v, in->task, where);
        else if (in->workflow != NULL)
            check_wf(v, in->workflow, where);
        else if (in->has_expr && v->lookup != NULL && v->lookup->expr != NULL) {
            struct expr_walk w = {v, where};
            fl_wf_each_expr(in->value, check_one_expr, &w);
        }
    }
    if (t->catch_task != NULL && v->rc == 0) {
        char where[WF_PATH_MAX];
        wf_path_join(where, sizeof(where), path, "catch");
        check_task(v, t->catch_task, where);
    }
}

/* ---- the graph of one workflow ---- */

struct id_index {
    const char *id;
    size_t task;
};

static int cmp_index(const void *a, const void *b)
{
    return strcmp(((const struct id_index *)a)->id, ((const struct id_index *)b)->id);
}

/* The task of that id, or -1. */
static long find_task(const struct id_index *index, size_t n, const char *id)
{
    struct id_index key = {id, 0};
    const struct id_index *hit = bsearch(&key, index, n, sizeof(*index), cmp_index);
    return hit != NULL ? (long)hit->task : -1;
}

enum color { WHITE, GRAY, BLACK };

struct graph {
    struct validator *v;
    struct fl_wf *wf;
    const char *path;
    struct id_index *index;
    enum color *color;
    size_t *stack; /* the tasks of the path being walked */
    size_t depth;
};

/* Name the cycle from the task stack[from] to the top of the stack and
 * back. */
static void report_cycle(struct graph *g, size_t from)
{
    struct fl_buf cycle;
    fl_buf_init(&cycle, 4096);
    for (size_t i = from; i < g->depth; i++)
        fl_buf_appendf(&cycle, "%s -> ", g->wf->tasks[g->stack[i]].id);
    fl_buf_appends(&cycle, g->wf->tasks[g->stack[from]].id);
    char where[WF_PATH_MAX];
    wf_path_join(where, sizeof(where), g->path, "tasks");
    fl_wf_error(g->v->errs, where, "circular dependency: %s",
                cycle.data != NULL ? cycle.data : "(too long to show)");
    fl_buf_release(&cycle);
}

/* Depth first along requires; a task met again while on the path closes
 * a cycle. Depth is bounded by the number of tasks. */
static void visit(struct graph *g, size_t t)
{
    g->color[t] = GRAY;
    g->stack[g->depth++] = t;
    struct fl_wf_task *task = &g->wf->tasks[t];
    for (size_t i = 0; i < task->nrequires; i++) {
        long dep = find_task(g->index, g->wf->ntasks, task->requires[i]);
        if (dep < 0)
            continue;
        if (g->color[dep] == GRAY) {
            size_t from = 0;
            while (g->stack[from] != (size_t)dep)
                from++;
            report_cycle(g, from);
        } else if (g->color[dep] == WHITE) {
            visit(g, (size_t)dep);
        }
    }
    g->depth--;
    g->color[t] = BLACK;
}

static void check_graph(struct validator *v, struct fl_wf *wf, const char *path)
{
    size_t n = wf->ntasks;
    struct graph g = {.v = v, .wf = wf, .path = path};
    g.index = calloc(n, sizeof(*g.index));
    g.color = calloc(n, sizeof(*g.color));
    g.stack = calloc(n, sizeof(*g.stack));
    if (g.index == NULL || g.color == NULL || g.stack == NULL) {
        v->rc = FL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        g.index[i] = (struct id_index){wf->tasks[i].id, i};
    qsort(g.index, n, sizeof(*g.index), cmp_index);

    char where[WF_PATH_MAX];
    if (wf->output != NULL && find_task(g.index, n, wf->output) < 0) {
        wf_path_join(where, sizeof(where), path, "output");
        fl_wf_error(v->errs, where, "'%s' is not a task of this workflow", wf->output);
    }
    bool start = false;
    for (size_t i = 0; i < n; i++) {
        struct fl_wf_task *t = &wf->tasks[i];
        start |= t->nrequires == 0;
        char task_path[WF_PATH_MAX];
        char tasks[WF_PATH_MAX];
        wf_path_join(tasks, sizeof(tasks), path, "tasks");
        wf_path_join(task_path, sizeof(task_path), tasks, t->id);
        wf_path_join(where, sizeof(where), task_path, "requires");
        for (size_t j = 0; j < t->nrequires; j++) {
            if (find_task(g.index, n, t->requires[j]) < 0)
                fl_wf_error(v->errs, where, "'%s' is not a task of this workflow", t->requires[j]);
        }
    }
    if (n > 0 && !start) {
        wf_path_join(where, sizeof(where), path, "tasks");
        fl_wf_error(v->errs, where, "no start task: every task requires another");
    }
    for (size_t i = 0; i < n; i++)
        if (g.color[i] == WHITE)
            visit(&g, i);
out:
    free(g.index);
    free(g.color);
    free(g.stack);
}

static void check_wf(struct validator *v, struct fl_wf *wf, const char *path)
{
    char tasks[WF_PATH_MAX];
    wf_path_join(tasks, sizeof(tasks), path, "tasks");
    for (size_t i = 0; i < wf->ntasks && v->rc == 0; i++) {
        char where[WF_PATH_MAX];
        wf_path_join(where, sizeof(where), tasks, wf->tasks[i].id);
        check_task(v, &wf->tasks[i], where);
    }
    if (v->rc == 0)
        check_graph(v, wf, path);
}

int fl_wf_validate(struct fl_wf *wf, const struct fl_wf_lookup *lookup, struct fl_wf_errors *errs)
{
    static const struct fl_wf_lookup none = {0};
    struct validator v = {.lookup = lookup != NULL ? lookup : &none, .errs = errs};
    fl_buf_init(&v.why, 4096);
    size_t before = errs->n;
    check_wf(&v, wf, "");
    fl_buf_release(&v.why);
    if (v.rc < 0)
        return v.rc;
    return errs->n > before ? FL_EINVAL : 0;
}
