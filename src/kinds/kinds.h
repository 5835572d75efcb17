/*
 * The resource-kind registry: one table says, per kind of resource, what
 * the API, the CLI, `flint apply` and flintd need to know of it.
 *
 *   name        "function": the store's kind, `kind:` in spec files
 *   plural      "functions": the API's /v1/functions, "list functions"
 *   word        "fn": `flint fn create|get|list|update|delete`
 *   flags       the CLI's options and the spec field each one sets
 *   columns     the table `flint fn list` prints
 *   check       the spec's fields and their checks (the kind's own parser)
 *   refs        the other kinds it names (a function its environment)
 *   exprs       the expressions its check asks about (a workflow's), which
 *               flintd's sandboxed evaluators compile before the check
 *   status      what its status is made of (documentation; the value
 *               comes from the part of flintd that runs it, see follow.h)
 *
 * The order of fl_kinds[] is the order of dependencies: a kind comes after
 * every kind it refers to. `flint apply` creates in that order and prunes
 * in reverse; flintd follows the kinds in that order, so a function finds
 * its environment.
 *
 * How flintd follows each kind (the part that runs it, and the hooks that
 * feed that part) is the other half of a kind's row, in kinds.def and
 * follow.h, so that this half depends only on src/base, jansson and the
 * kinds' own spec checks: the CLI and the tests link it without the
 * executor or the router.
 *
 * A resource's stored value is {"spec": ...}: what the user declared, and
 * nothing else. What Flint observes of it (a build, instances, a last
 * fire) is its status, computed by the part that runs it when a client
 * asks, and never written into the resource: a new revision is always
 * the user's change.
 */
#ifndef FLINT_KINDS_KINDS_H
#define FLINT_KINDS_KINDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* How a CLI flag sets its field. */
enum fl_kind_flag_type {
    FL_FLAG_STRING,
    FL_FLAG_INT,
    FL_FLAG_NUMBER, /* a decimal number such as 0.5 */
    FL_FLAG_BOOL,   /* takes true or false: --network false */
    FL_FLAG_SWITCH, /* a bool set by the flag alone: --async is true, --async=false false */
    FL_FLAG_LIST,   /* repeatable; appends to an array */
    FL_FLAG_NAMES,  /* repeatable, each a comma list (names hold no comma); appends each
                     * name to an array: --publishes a,b --publishes c; '' alone: [] */
    FL_FLAG_ENVVAR, /* repeatable K=V; sets a key of an object */
    FL_FLAG_CODE,   /* a file path, uploaded; the field gets {sha256, filename} */
    FL_FLAG_PATH,   /* a route's path or prefix: setting one clears the other */
    FL_FLAG_TARGET, /* a target: the field becomes target: {"<field>": value} */
    FL_FLAG_SPEC,   /* a file (YAML or JSON, one document): the whole spec */
};

struct fl_kind_flag {
    const char *name;  /* "--poolsize" */
    const char *field; /* dotted path below spec: "limits.memory" */
    enum fl_kind_flag_type type;
};

struct fl_kind_column {
    const char *title; /* "RUNTIME" */
    const char *path;  /* dotted path into the resource as the API answers it: "spec.runtime" */
};

/* A reference from a spec to a resource of another kind. */
struct fl_kind_ref {
    const char *field; /* dotted path below spec: "environment", "target.function" */
    const char *kind;  /* the kind it names */
    /* whether the named resource may not be deleted while this one names
     * it (an environment in use by functions): the API refuses with 409 */
    bool blocks_delete;
};

/*
 * Names a spec gives where no field path can say, any number of them (a
 * workflow's tasks' `run`, at every level). Each is looked up before the
 * check, as a resource of the first of kinds that has it (a function, else
 * a workflow), and the check is told what it found (ctx->resolve).
 */
struct fl_kind_names {
    /* Call fn for each name in spec (names may repeat; spec may be
     * malformed: what is not shaped right is skipped); stop and return
     * what fn returns when it is not 0. NULL: the kind has none. */
    int (*each)(json_t *spec, int (*fn)(void *arg, const char *name), void *arg);
    const char *kinds[3]; /* the kinds a name may be, tried in order; NULL-ended */
    /* the kind whose resources may not be deleted while a spec names them
     * this way (the API refuses with 409), or NULL */
    const char *blocks_delete;
};

/* The most distinct names a spec may give (struct fl_kind_names). */
#define FL_KIND_MAX_NAMES 256

/* What a check may look up besides the spec. Each callback may be NULL
 * (the CLI, offline): that lookup is not made. */
struct fl_kind_check_ctx {
    /* whether uploaded code exists */
    bool (*has_code)(void *data, const char *sha256);
    /* the kind of resource a name of the kind's names is (one of
     * names.kinds), or NULL when none holds it */
    const char *(*resolve)(void *data, const char *name);
    /* an expression's syntax (one of those the kind's exprs hook gave): 0,
     * or FL_EINVAL with the engine's message in why. flintd answers it
     * from its sandboxed evaluator, asked before the check; the check
     * itself never compiles users' code */
    int (*expr)(void *data, const char *src, struct fl_buf *why);
    /* whether this flintd runs the message-queue connector of that name
     * ("builtin", "nats": a flintd started with --nats) */
    bool (*has_connector)(void *data, const char *name);
    void *data;
};

#define FL_KIND_MAX_FLAGS   24
#define FL_KIND_MAX_COLUMNS 7
#define FL_KIND_MAX_REFS    4

struct fl_kind {
    const char *name;   /* "environment" */
    const char *plural; /* "environments" */
    const char *word;   /* "env" */
    const char *noun;   /* "an environment": the CLI's help ("create an environment") */
    /* the CLI's usage lines (after "--name NAME") for create and update */
    const char *create_usage;
    const char *update_usage;
    struct fl_kind_flag flags[FL_KIND_MAX_FLAGS];           /* ends at a NULL name */
    struct fl_kind_column columns[FL_KIND_MAX_COLUMNS + 1]; /* ends at a NULL title */
    struct fl_kind_ref refs[FL_KIND_MAX_REFS + 1];          /* ends at a NULL field */
    struct fl_kind_names names; /* names no field path can say (a workflow's tasks) */
    /* Call fn for each expression of spec whose syntax the check will ask
     * ctx->expr about (a workflow's `{...}` inputs; spec may be malformed:
     * what is not shaped right is skipped), src NUL-terminated; stop at
     * the first fn that fails and return it (FL_ENOMEM). NULL: the kind
     * has none. */
    int (*exprs)(json_t *spec, int (*fn)(void *arg, const char *src), void *arg);
    /* Check spec: 0, FL_EINVAL with the field and reason in err ("spec.
     * poolsize: must be ..."), or FL_ENOMEM. ctx may be NULL. Never
     * looks at other resources (refs do that). */
    int (*check)(json_t *spec, const struct fl_kind_check_ctx *ctx, struct fl_buf *err);
    const char *status; /* what its status is made of, for docs and help */
};

/* Every kind, in the order of dependencies (see above). */
extern const struct fl_kind *const fl_kinds[];
extern const size_t fl_nkinds;

/* The kind of that name, plural ("functions") or CLI word ("fn"); NULL
 * if none. */
const struct fl_kind *fl_kind_find(const char *name);
const struct fl_kind *fl_kind_by_plural(const char *plural);
const struct fl_kind *fl_kind_by_word(const char *word);

/* The kind's position in fl_kinds[] (its order), or -1 for NULL. */
int fl_kind_index(const struct fl_kind *k);

/* The names of every kind as prose: "environment, function, timetrigger or
 * route". */
const char *fl_kind_names(void);

/* Whether key is a top-level field of a resource document: name, spec and
 * revision, or one of the read-only fields a GET answers (kind, status,
 * createdAt, updatedAt), which may be sent back and are ignored. */
bool fl_kind_field_known(const char *key);

/* The value at a dotted path below spec (a ref's field, a column's path),
 * or NULL. Borrowed from spec. */
json_t *fl_kind_lookup(json_t *v, const char *path);

/* The name ref makes in spec, or NULL when the spec names none there. */
const char *fl_kind_ref_name(const struct fl_kind_ref *ref, json_t *spec);

/* Whether spec, of kind k, names name among its names (k->names) in a way
 * that blocks deleting a resource of kind `kind`. */
bool fl_kind_names_block(const struct fl_kind *k, json_t *spec, const char *kind, const char *name);

/*
 * The hooks through which flintd's part that runs a kind is kept in step
 * with the store (src/kinds/follow.h calls them, on the loop). part is
 * that part (the executor, the router). Each is defined by the module of
 * the part and named in the kind's line of kinds.def.
 */
struct fl_kind_hooks {
    /* The store holds spec for name at revision (a new resource, or a new
     * revision of it): 0, or FL_EINVAL with why in err (the part keeps
     * what it had; the store has something the checks refused, say an
     * older flintd's), or FL_ENOMEM. spec is borrowed for the call. */
    int (*put)(void *part, const char *name, uint64_t revision, json_t *spec, struct fl_buf *err);
    /* name was deleted. */
    void (*remove)(void *part, const char *name);
    /* What the store held at start has all been put (may be NULL). */
    void (*synced)(void *part);
    /* name's status now, as the part sees it (detail: with what is long,
     * such as a build log, for a GET of one resource): a new value the
     * caller owns, or NULL when the part knows nothing of name (the API
     * answers {}). May be NULL: the kind's status is always {}. */
    json_t *(*status)(void *part, const char *name, bool detail);
};

/* The kinds' own rows, fl_kind_<name>, each in src/kinds/<name>.c. */
#define FL_KIND(name, part, hooks) extern const struct fl_kind fl_kind_##name;
#include "kinds/kinds.def"
#undef FL_KIND

#endif
