/*
 * The executor: functions' code turned into warm, sandboxed instances, and
 * invocations sent to them.
 *
 * flintd tells the executor what exists (environments and functions, each
 * with its store revision) as its watch on the store sees them; the
 * executor does the rest:
 *
 *  - builds each function revision's code (exec/build.h), once per key;
 *  - keeps `poolsize` generic instances per environment started ahead;
 *    specialization takes one, links the build into the instance's private
 *    /code and calls POST /v2/specialize; the pool refills behind it. A
 *    function with its own env vars or limits cannot use a generic instance
 *    (they are fixed when the process starts) and gets instances of its own;
 *  - scales each function between minScale and concurrency instances,
 *    requestsPerInstance requests at a time on each; a request that finds
 *    every instance busy waits in the function's queue (bounded in length
 *    and in time, then 429), a request that finds no instance starts one;
 *  - reaps instances idle for idleTimeout (down to minScale);
 *  - on functionTimeout answers 504 and recycles the instance; when an
 *    instance dies, its in-flight requests get 502 saying why (exit status,
 *    signal, memory or CPU limit) and the next request starts another;
 *  - a new revision gets new instances; the old ones finish what they
 *    have in flight and stop;
 *  - every line an instance prints goes to the logbook (exec/logs.h) with
 *    the function, revision and instance id; the executor's own notes about
 *    a function (build failures, crashes, load errors) go there too, as
 *    stream "flint".
 *
 * Instances live under DIR/run/<n>/ (code/ bound at /code, p/ read-only
 * at /run/flint when publishing is on, s the listening socket) which is
 * emptied at start; their cgroups are removed by the sandbox. Linking a build into code/ and
 * removing an instance's directory run on libuv's thread pool (an instance is never picked before
 * its link is done); everything else runs on the loop's thread.
 *
 * Collection (every gc_interval_ms, once fl_executor_functions_loaded()
 * said the function list is whole, file work on the thread pool, see
 * exec/sweep.h): a build (DIR/builds/<key>) that no current function
 * revision and no instance uses, and that no build job holds, is removed
 * once unused for build_grace_ms; a code blob (DIR/code/sha256/<digest>)
 * that no function names is removed once unnamed for code_grace_ms (an
 * upload comes before the function naming it: the grace covers that).
 */
#ifndef FLINT_EXEC_EXECUTOR_H
#define FLINT_EXEC_EXECUTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/metrics.h"
#include "exec/logs.h"
#include "exec/sandbox.h"
#include "exec/spec.h"
#include "http/server.h" /* struct fl_http_header */
#include "kinds/kinds.h"

struct fl_executor;
struct fl_invocation;

/*
 * Publishing from instances (topics/publish.h serves it). With these set,
 * every instance gets a directory DIR/run/<n>/p (0755, in the instance's
 * 0700 directory: no other sandbox and no host user can reach it), bound
 * read-only at /run/flint inside its sandbox; open() is asked to listen on
 * p/publish, which the instance sees as FLINT_PUBLISH=unix:/run/flint/publish
 * (without bubblewrap, the host path: unreachable by the unprivileged uid, so
 * publishing needs the sandbox). assign() names the function the instance is
 * given (once: a started-for or taken warm instance); close() runs when the
 * instance is gone. An open() that fails starts the instance without it.
 */
struct fl_executor_publish {
    int (*open)(void *data, const char *path, void **handle);
    void (*assign)(void *handle, const char *function);
    void (*close)(void *handle);
    void *data;
};

struct fl_executor_config {
    const char *data_dir;     /* builds/ and run/ are made here */
    const char *runtimes_dir; /* <dir>/<runtime>/: the runtime tree (share/flint/runtimes) */
    const struct fl_sandbox_mode *mode;
    struct fl_logbook *logs;    /* where instance output goes (borrowed) */
    size_t queue_max;           /* waiting requests per function; default 1000 */
    uint64_t queue_wait_ms;     /* longest wait for an instance; default 10 s */
    uint64_t start_timeout_ms;  /* a new instance must be healthy within; default 30 s */
    uint64_t tick_ms;           /* idle reaping and minScale period; default 1 s */
    size_t max_response_bytes;  /* an instance's response; default 16 MiB */
    struct fl_metrics *metrics; /* builds, instance starts, queue waits; may be NULL */
    uint64_t build_max_files;   /* a build's output: entries; 0: FL_BUILD_MAX_FILES */
    uint64_t build_max_bytes;   /* and bytes; 0: FL_BUILD_MAX_BYTES */
    uint64_t gc_interval_ms;    /* collection period (see below); default 5 min, 0: never */
    uint64_t build_grace_ms;    /* a build unused this long is removed; default 1 h */
    uint64_t code_grace_ms;     /* a code blob unnamed this long is removed; default 1 h */
    const struct fl_executor_publish *publish; /* borrowed; NULL: instances cannot publish */
};

void fl_executor_config_init(struct fl_executor_config *cfg);

/* A new executor. 0 or a negative error (the run directory could not be
 * made, FL_ENOMEM, -ENAMETOOLONG: the data or runtimes directory's name is
 * too long for the paths made under it). */
int fl_executor_new(uv_loop_t *loop, const struct fl_executor_config *cfg,
                    struct fl_executor **out);

/* The function list is whole (the store's functions were all declared):
 * collection may start. Before this call nothing is collected. */
void fl_executor_functions_loaded(struct fl_executor *ex);

/* Fail every waiting and running invocation (503, "flintd is stopping"),
 * stop every instance and build, and free the executor when all are gone;
 * done (may be NULL) runs then. */
void fl_executor_close(struct fl_executor *ex, void (*done)(void *data), void *data);

/* Declare an environment or function as the store has it now (spec is a
 * parsed copy the executor takes over: the caller must not release it; on
 * error it is released here). A revision already known is ignored. 0 or
 * FL_ENOMEM. */
int fl_executor_set_environment(struct fl_executor *ex, const char *name, int64_t revision,
                                struct fl_env_spec *spec);
int fl_executor_set_function(struct fl_executor *ex, const char *name, int64_t revision,
                             struct fl_fn_spec *spec);

/* The executor as the part that runs environments and functions
 * (kinds/kinds.def): put parses the spec and declares it (above), remove
 * forgets it (below), functions' synced is fl_executor_functions_loaded(),
 * and a function's status is fl_executor_function_status() (the build log
 * only in detail). part is the struct fl_executor. */
extern const struct fl_kind_hooks fl_executor_environment_hooks;
extern const struct fl_kind_hooks fl_executor_function_hooks;

/* Forget an environment or function: its instances finish their in-flight
 * requests and stop; its waiting requests get 404. */
void fl_executor_remove_environment(struct fl_executor *ex, const char *name);
void fl_executor_remove_function(struct fl_executor *ex, const char *name);

/* One call of a function (the invoker's function handler makes it, see
 * invoke/invoke.h). Everything pointed to must stay valid until the
 * callback runs or the invocation is canceled; after cancel the executor
 * never reads it again. */
struct fl_executor_request {
    const char *function;
    const char *method;
    const char *target;                   /* path and query as the instance should see them */
    const struct fl_http_header *headers; /* the caller's; X-Flint-* and hop-by-hop are dropped */
    size_t nheaders;
    const struct fl_http_header *extra; /* trusted headers to add, replacing the caller's of
                                         * the same name (params, topics, X-Forwarded-For) */
    size_t nextra; /* at most 64 (more: the call is answered 500 too_many_headers); the
                    * caller's headers fill what is left of 124, past that they are dropped */
    const void *body;
    size_t body_len;
    const char *trigger;       /* X-Flint-Trigger: "http" by default */
    const char *invocation_id; /* NULL: a new UUIDv7 */
    int attempt;               /* X-Flint-Attempt; 0 means 1 */
};

/* The outcome, always an HTTP response: the function's own, or the
 * executor's JSON error (404 unknown function, 429 over its limits, 500
 * failed build or load, 502 instance crashed, 503 no instance in time or
 * stopping, 504 timeout). error_code is NULL for the function's own
 * response, else the error's code ("function_timeout"), and error_message
 * its message (the one in the JSON body). Valid only during the callback. */
struct fl_executor_result {
    int status;
    const struct fl_http_header *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
    const char *error_code;
    const char *error_message;
    const char *invocation_id;
};

typedef void (*fl_executor_cb)(const struct fl_executor_result *res, void *data);

/* Invoke: cb runs exactly once, never from inside this call, unless the
 * invocation is canceled first. If handle is not NULL, the invocation is
 * stored there for fl_executor_cancel(); it is valid until cb runs.
 * 0 or FL_ENOMEM (no callback then). */
int fl_executor_invoke(struct fl_executor *ex, const struct fl_executor_request *req,
                       fl_executor_cb cb, void *data, struct fl_invocation **handle);

/* The caller is gone: cb will not run. One waiting leaves the queue; one
 * already sent to an instance runs on, and keeps its place on the instance
 * (requestsPerInstance) until the instance answers, or its functionTimeout
 * passes and the instance is recycled, so that a caller who hangs up never
 * frees room for more work than the function can take. */
void fl_executor_cancel(struct fl_invocation *inv);

/* What a function can take: slots = concurrency x requestsPerInstance;
 * running = requests on its instances now (those whose caller left
 * included); queued = requests waiting; queue_max = the executor's bound. */
struct fl_executor_capacity {
    uint64_t slots, running, queued, queue_max;
};

/* Fill out for function name: 0, or FL_ENOENT (unknown function). When
 * it says every slot is taken or requests wait, the room callback (below)
 * runs once the function has room again, or is removed. */
int fl_executor_capacity(struct fl_executor *ex, const char *name,
                         struct fl_executor_capacity *out);

/* Who hears that a function reported full has room again (or is gone):
 * room(data, name) runs on the loop, from inside the executor's own
 * callbacks (defer what may call back into the executor). NULL: nobody. */
void fl_executor_on_room(struct fl_executor *ex, void (*room)(void *data, const char *function),
                         void *data);

/* A JSON snapshot for status and the API: environments with their pools,
 * functions with their build, instances and queue. The caller owns it. */
json_t *fl_executor_status(struct fl_executor *ex);

/* Set the gauges of cfg->metrics to what runs now: flint_instances
 * {function,state}, flint_queued{function}, flint_pool_instances
 * {environment,state}. Called before /metrics is rendered. */
void fl_executor_update_metrics(struct fl_executor *ex);

/* The retry policy of function name's current revision (its spec's
 * `retry`, or the defaults): 0, or FL_ENOENT. */
int fl_executor_function_retry(struct fl_executor *ex, const char *name,
                               struct fl_retry_policy *out);

/* The topics function name's current revision may publish to (its spec's
 * `publishes`): 0 with *topics (n names) valid until the function changes
 * (use them at once, on the loop), or FL_ENOENT. */
int fl_executor_function_publishes(struct fl_executor *ex, const char *name, char *const **topics,
                                   size_t *n);

/* One function's state, with its build log (NULL if unknown). The caller
 * owns it. */
json_t *fl_executor_function_status(struct fl_executor *ex, const char *name);

#endif
