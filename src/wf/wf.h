/*
 * Workflow definitions: Fission Workflows' format (YAML or JSON, read by
 * spec/spec.h) parsed into a struct fl_wf, and checked before a workflow is
 * stored, so that a mistake is an error at create, never an invocation that
 * hangs. A pure module (no loop, no store, no global state; base and
 * exec/spec.h for retry policies): the CLI, the API's check and the engine
 * use the same parser, so they never disagree about what a definition
 * means.
 *
 * The format (docs/api.md, "workflow spec"):
 *
 *   apiVersion   optional: v1 (or 1, as Fission Workflows' examples write it)
 *   description  optional text
 *   output       required: the task whose output is the workflow's
 *   timeout      Flint's: the whole invocation's bound, a duration (none)
 *   tasks        required, at least one: task id -> task
 *
 * A task:
 *
 *   run       what it runs: a built-in (fl_wf_builtins[]), else a function,
 *             else a workflow, looked up in that order; default noop
 *   inputs    a scalar or a list is the input "default"; a map gives named
 *             inputs. A named input whose value is a map with `run` is an
 *             inline task, a map with `tasks` an inline workflow (the value
 *             of foreach's `do`, if's `then`)
 *   requires  the ids of the tasks it waits for
 *   retry     Flint's: {maxAttempts, backoff, maxBackoff} as the async
 *             retry policy spells it (exec/spec.h); by default one attempt
 *   timeout   Flint's: one attempt's bound, a duration (none)
 *   catch     Flint's: an inline task run when this one has failed for
 *             good (retries used up, timeouts included); its outcome is
 *             then the task's (docs/api.md, "catch")
 *   id        accepted and ignored (Fission Workflows' field)
 *
 * A null task is a noop task. Unknown fields are errors (a misspelt
 * `require` would otherwise start a task too early).
 *
 * Expressions: a string whose whole value is `{...}` on one line (Fission
 * Workflows' /^\{(.*)\}$/: it starts with '{', ends with '}' and holds no
 * newline) is JavaScript, anywhere in an input's value (inside lists and
 * maps too, but an inline task's own inputs belong to that task). Its
 * source is what lies between the braces.
 *
 * Errors are collected, not stopped at: fl_wf_parse() and fl_wf_validate()
 * append every mistake, each naming where it is as a dotted path from the
 * definition's root (`tasks.B.requires: 'C' is not a task of this
 * workflow`, `tasks.If.inputs.then.run: ...` for an inline task), one per
 * line, to a struct fl_wf_errors.
 */
#ifndef FLINT_WF_WF_H
#define FLINT_WF_WF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "exec/spec.h"

/* Bounds of one definition, inline tasks and workflows included. */
#define FL_WF_MAX_TASKS   1000 /* tasks, at every level together */
#define FL_WF_MAX_NESTING 16   /* inline tasks and workflows within each other */
#define FL_WF_ID_MAX      128  /* bytes of a task id */
#define FL_WF_RUN_MAX     256  /* bytes of a run target */
#define FL_WF_MAX_ERRORS  50   /* errors listed; more are counted only */

/* A task's retry policy when it gives none: one attempt. */
#define FL_WF_RETRY_DEFAULT ((struct fl_retry_policy){1, 1000, 60000})

/* What a task's run names, once validated. */
enum fl_wf_target {
    FL_WF_TARGET_UNKNOWN,  /* not looked up (no lookup given), or not found */
    FL_WF_TARGET_BUILTIN,  /* one of fl_wf_builtins[] */
    FL_WF_TARGET_FUNCTION, /* a function of that name */
    FL_WF_TARGET_WORKFLOW, /* a workflow of that name */
};

/* The built-ins, in the order of docs/api.md, and Fission Workflows'
 * alias nop (noop). NULL-terminated. */
extern const char *const fl_wf_builtins[];

/* Whether name is a built-in. */
bool fl_wf_is_builtin(const char *name);

/* The name a task's run refers to: Fission Workflows' function references
 * "fission://NAMESPACE/NAME" and "fission://NAME" name NAME (Flint has one
 * namespace); any other run is a name as it is. */
const char *fl_wf_run_name(const char *run);

struct fl_wf;
struct fl_wf_task;

/* One input of a task. */
struct fl_wf_input {
    char *key;               /* "default" for a scalar or list `inputs` */
    json_t *value;           /* the value as written (a reference held) */
    struct fl_wf_task *task; /* a map with `run`: the inline task, else NULL */
    struct fl_wf *workflow;  /* a map with `tasks`: the inline workflow, else NULL */
    bool has_expr;           /* the value holds an expression (not an inline one's) */
};

struct fl_wf_task {
    char *id;  /* its key in tasks; for an inline task, the input's key */
    char *run; /* "noop" when not given */
    enum fl_wf_target target;
    struct fl_wf_input *inputs;
    size_t ninputs;
    char **requires;
    size_t nrequires;
    bool has_retry;                /* false: FL_WF_RETRY_DEFAULT */
    struct fl_retry_policy retry;  /* FL_WF_RETRY_DEFAULT unless given */
    int64_t timeout_ms;            /* one attempt's bound; 0: none */
    struct fl_wf_task *catch_task; /* NULL: none */
    json_t *catch_spec;            /* the catch as written (a reference held), or NULL */
};

struct fl_wf {
    char api_version[8]; /* "v1" */
    char *description;   /* NULL: none */
    char *output;        /* NULL only in a definition that failed to parse */
    struct fl_wf_task *tasks;
    size_t ntasks;
    int64_t timeout_ms; /* 0: none */
};

/* The errors of one definition: each a line of text ("path: why\n"). */
struct fl_wf_errors {
    struct fl_buf text; /* at most FL_WF_MAX_ERRORS lines */
    size_t n;           /* every error, listed or not */
};

void fl_wf_errors_init(struct fl_wf_errors *e);
void fl_wf_errors_release(struct fl_wf_errors *e);

/* Append one error, "<path>: <why>" (path may be empty: "<why>"). Past
 * FL_WF_MAX_ERRORS it is only counted. */
void fl_wf_error(struct fl_wf_errors *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The errors as one line, "; " between them and "(N more)" after the
 * listed ones, appended to out (for an API message). */
void fl_wf_errors_join(const struct fl_wf_errors *e, struct fl_buf *out);

/*
 * Parse a definition (a JSON value as spec/spec.h gives it) into *out.
 * Every structural mistake (a field of the wrong type, an unknown field, a
 * bad duration or retry, too many tasks, nesting too deep) is appended to
 * errs and the rest is still parsed, so that fl_wf_validate() can add what
 * it finds. Returns 0 when errs got nothing, FL_EINVAL when it did (*out
 * is still filled as far as it could be, and must be released), FL_ENOMEM.
 * out is owned by the caller: fl_wf_release().
 */
int fl_wf_parse(json_t *def, struct fl_wf *out, struct fl_wf_errors *errs);

/* Free what a parse put in wf (wf itself is the caller's). */
void fl_wf_release(struct fl_wf *wf);

/* What validation may look up. Either callback may be NULL: that check is
 * not made (`flint wf validate` offline has no functions to look up). */
struct fl_wf_lookup {
    /* What name is, of FL_WF_TARGET_FUNCTION, FL_WF_TARGET_WORKFLOW (a
     * function first, as the engine resolves it), else UNKNOWN. */
    enum fl_wf_target (*target)(void *data, const char *name);
    /* Check one expression's syntax (src: the text between the braces,
     * NUL-terminated): 0, or FL_EINVAL with the engine's message in why.
     * Compiles, never runs. */
    int (*expr)(void *data, const char *src, struct fl_buf *why);
    void *data;
};

/*
 * Validate a parsed definition, every level: each task's run (built-ins
 * first, then lookup->target), its requires (a task of the same workflow),
 * cycles (named: "circular dependency: A -> B -> A"), at least one start
 * task (one that requires nothing), the output task, and every
 * expression's syntax (lookup->expr). Sets each task's target. Appends
 * every error to errs. 0 when errs got nothing from this call, FL_EINVAL
 * when it did, FL_ENOMEM.
 */
int fl_wf_validate(struct fl_wf *wf, const struct fl_wf_lookup *lookup, struct fl_wf_errors *errs);

/* Parse and validate, and release: the whole check of a definition. 0,
 * FL_EINVAL (errs has every error), FL_ENOMEM. */
int fl_wf_check(json_t *def, const struct fl_wf_lookup *lookup, struct fl_wf_errors *errs);

/* Whether s (n bytes) is an expression: "{...}" on one line. */
bool fl_wf_is_expr(const char *s, size_t n);

/* Call fn for each expression in v (an input's value, walked into lists
 * and maps), with its source between the braces (n bytes, not
 * NUL-terminated). Stops and returns what fn returns when it is not 0. */
int fl_wf_each_expr(json_t *v, int (*fn)(void *arg, const char *src, size_t n), void *arg);

/* Call fn for each run target of def (a raw definition, walked leniently:
 * what is not shaped right is skipped), at every level, that is not a
 * built-in: the names the definition needs looked up. Names may repeat.
 * Stops at the first fn that returns non-zero and returns it. */
int fl_wf_each_target(json_t *def, int (*fn)(void *arg, const char *name), void *arg);

#endif
