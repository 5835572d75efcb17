/*
 * What environments and functions declare (see docs/api.md), parsed from
 * their JSON spec into checked, typed structs with defaults filled in.
 *
 * The control API calls these to refuse a bad spec with a precise message
 * ("spec.concurrency: must be a whole number from 1 to 1000, not 0"); the
 * executor calls them to configure pools and instances. Unknown fields are
 * errors, so a typo never passes silently.
 */
#ifndef FLINT_EXEC_SPEC_H
#define FLINT_EXEC_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

#define FL_NAME_MAX 63

/* Per-instance limits. 0 in a function's limits means "the environment's". */
struct fl_limits {
    uint64_t memory_bytes; /* address space / cgroup memory */
    int64_t cpu_seconds;   /* CPU time of the instance's life */
    int64_t open_files;
    int64_t processes;
    int64_t cpu_millis; /* CPU bandwidth in thousandths of a core (cgroup); 0: unlimited */
};

enum fl_runtime {
    FL_RUNTIME_C,
    FL_RUNTIME_BINARY,
    FL_RUNTIME_PYTHON,
    FL_RUNTIME_NODE,
    FL_RUNTIME_CUSTOM
};

struct fl_env_spec {
    enum fl_runtime runtime;
    char **command;   /* custom runtime's argv, NULL-terminated; NULL otherwise */
    char *builder;    /* build command; NULL: the runtime's own (or none) */
    int64_t poolsize; /* warm generic instances */
    bool network;
    struct fl_limits limits;
};

/* How an async invocation is retried: a function's `retry`, or a route's
 * (docs/api.md). The delay before attempt n+1 is a random time up to
 * min(max_backoff_ms, backoff_ms * 2^(n-1)). */
struct fl_retry_policy {
    uint32_t max_attempts; /* 1..FL_RETRY_MAX_ATTEMPTS */
    int64_t backoff_ms;
    int64_t max_backoff_ms;
};

#define FL_RETRY_MAX_ATTEMPTS 100
#define FL_RETRY_DEFAULT      ((struct fl_retry_policy){3, 1000, 300000})

/* Parse a `retry` object ({"maxAttempts", "backoff", "maxBackoff"}, each
 * optional; durations 10ms..24h, maxBackoff not below backoff) over what
 * out holds (the defaults, or a function's policy under a route's). 0, or
 * FL_EINVAL with "<where>.<field>: why" in err (out unchanged). */
int fl_retry_policy_parse(json_t *v, const char *where, struct fl_retry_policy *out,
                          struct fl_buf *err);

struct fl_fn_spec {
    char environment[FL_NAME_MAX + 1];
    char code_sha256[65];
    char *code_filename;
    char *entrypoint; /* NULL: the runtime's default */
    int64_t timeout_ms;
    int64_t idle_timeout_ms;
    int64_t concurrency;
    int64_t requests_per_instance;
    int64_t min_scale;
    json_t *env; /* object of string values (a reference; never NULL after parse) */
    struct fl_limits limits;
    struct fl_retry_policy retry; /* FL_RETRY_DEFAULT unless the spec says */
    char **publishes;             /* the topics its instances may publish to (topics/publish.h):
                                   * npublishes names checked with fl_topic_name_check(), no
                                   * duplicates, in the spec's order; NULL when none */
    size_t npublishes;
};

#define FL_PUBLISHES_MAX 64 /* topics one function may publish to */

/* Defaults, documented in docs/api.md. */
#define FL_DEFAULT_POOLSIZE    2
#define FL_DEFAULT_MEMORY      (256ULL << 20)
#define FL_DEFAULT_CPU_SECONDS 3600
#define FL_DEFAULT_OPEN_FILES  1024
#define FL_DEFAULT_PROCESSES   64
#define FL_DEFAULT_TIMEOUT_MS  60000
#define FL_DEFAULT_IDLE_MS     120000
#define FL_DEFAULT_CONCURRENCY 5

/* Whether name is a valid resource name: 1 to 63 of [a-z0-9-], starting
 * with a letter or digit. 0 or FL_EINVAL with a message in err. */
int fl_name_check(const char *name, struct fl_buf *err);

/* Whether spec is an object whose fields are all in allowed (ends at a
 * NULL): 0, or FL_EINVAL with "spec: must be an object" or "spec.<key>: is
 * not a field of <what>" in err. */
int fl_spec_check_fields(json_t *spec, const char *const *allowed, const char *what,
                         struct fl_buf *err);

/* Parse spec into out (caller-owned; release with fl_env_spec_release()).
 * 0, or FL_EINVAL with the field and reason in err (out left empty), or
 * FL_ENOMEM. */
int fl_env_spec_parse(json_t *spec, struct fl_env_spec *out, struct fl_buf *err);
void fl_env_spec_release(struct fl_env_spec *s);

int fl_fn_spec_parse(json_t *spec, struct fl_fn_spec *out, struct fl_buf *err);
void fl_fn_spec_release(struct fl_fn_spec *s);

/* The name of a runtime ("python"). */
const char *fl_runtime_name(enum fl_runtime r);

#endif
