/*
 * The expression client: flintd's side of the evaluator (expr.h).
 *
 * A pool of warm flint-expr processes (src/wf/exprd), each started in the
 * functions' sandbox (exec/sandbox.h: bubblewrap + seccomp as an
 * unprivileged uid, or the rlimits-only development mode when bubblewrap
 * is unusable) with a memory bound (the sandbox's cgroup, or its data
 * rlimit), talking the framed protocol of expr.h over a socket handed to
 * the sandbox as fd 3 (its stdout and stderr are lines for the log). An
 * evaluator counts as warm once it has answered an empty batch.
 *
 * One batch (all the expressions of one task's inputs) goes to one idle
 * evaluator; when all are busy, batches wait in a bounded queue, first in
 * first out, so with one evaluator callbacks come in the order of the
 * evals.
 *
 * Each batch is bounded by the CPU time it may use: deadline_ms, or
 * check_deadline_ms for a batch with "check": true (compiling only;
 * flintd's create-time syntax check). The evaluator bounds it itself (a
 * profiling timer that ends it) and the batch fails with FL_ETIMEDOUT
 * ("expression took longer than 100 ms"); CPU time, so that a machine busy
 * with other work, or a loop that reads answers late, never fails a batch
 * that did not loop. A wall-clock backstop timed on the loop from the
 * moment a batch is sent (FL_WF_EXPRC_WALL_FACTOR times its bound, at
 * least FL_WF_EXPRC_WALL_MIN_MS) ends an evaluator that stopped making
 * progress: it is killed (its sandbox's process group and cgroup) and
 * replaced, and the batch fails with FL_ETIMEDOUT too. An evaluator that exits, is killed from outside, hits its
 * memory bound or sends a bad frame is replaced the same way and its batch
 * fails: FL_ETOOBIG (memory), FL_EPROTO (a bad frame), FL_EPIPE (it
 * ended). A batch the evaluator refuses as a whole (more than
 * FL_WF_EXPR_MAX_EXPRS expressions, a scope it cannot read) fails with
 * FL_EINVAL and its message, and the evaluator goes on. A failed batch is never retried here: an
 * expression is the user's code, and running it again could only fail again.
 *
 * An evaluator that dies before it is warm is started again after a
 * growing pause (up to 5 s); while no evaluator is warm or starting, the
 * queued batches fail with FL_EIO ("cannot start the expression evaluator:
 * ..."), so a missing program never leaves a caller waiting.
 *
 * Everything runs on the loop given to fl_wf_exprc_new(); nothing here is
 * thread-safe.
 */
#ifndef FLINT_WF_EXPRC_H
#define FLINT_WF_EXPRC_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

struct fl_sandbox_mode;
struct fl_wf_exprc; /* a pool of warm evaluators */

#define FL_WF_EXPRC_MEM_DEFAULT   (256u << 20) /* the process's memory bound */
#define FL_WF_EXPRC_QUEUE_DEFAULT 1024         /* batches waiting for an evaluator */
#define FL_WF_EXPRC_QUEUE_BYTES   (64u << 20)  /* bytes of frames waiting, at most */
#define FL_WF_EXPRC_CHECK_MS      2000         /* a syntax check's deadline, by default */
#define FL_WF_EXPRC_START_MS      30000        /* an evaluator's start, at most */
#define FL_WF_EXPRC_WALL_FACTOR   20   /* a batch's wall-clock backstop: its CPU bound times this */
#define FL_WF_EXPRC_WALL_MIN_MS   5000 /* and at least this */
#define FL_WF_EXPRC_EXIT_GRACE_MS 2000 /* an evaluator whose channel ended has this to exit */

struct fl_wf_exprc_config {
    const char *program;        /* path of flint-expr (copied) */
    unsigned deadline_ms;       /* one batch's bound; 0: FL_WF_EXPR_DEADLINE_MS */
    size_t mem_max;             /* the process's memory bound; 0: FL_WF_EXPRC_MEM_DEFAULT
                                   (mujs's heap is bounded at half of it, 64 MiB at most) */
    unsigned procs;             /* evaluators kept warm; 0: 1 */
    unsigned queue_max;         /* batches waiting for an evaluator; 0: FL_WF_EXPRC_QUEUE_DEFAULT */
    unsigned check_deadline_ms; /* a "check": true batch's bound; 0: FL_WF_EXPRC_CHECK_MS
                                   (compiling cannot loop: this bounds only hostile sizes) */
    /* how evaluators are sandboxed (fl_sandbox_probe(), as flintd probed it
     * for instances; copied); NULL: probe here */
    const struct fl_sandbox_mode *mode;
};

/* cb runs once, on the loop, later (never inside fl_wf_exprc_eval):
 * status 0 and answer = the evaluator's {"results": [...]} (borrowed for the
 * call), or a negative FL_E* status and error a message such as
 * "expression took longer than 100 ms" (answer NULL). */
typedef void (*fl_wf_exprc_cb)(void *data, int status, json_t *answer, const char *error);

/* Create a pool on loop and start cfg->procs evaluators. Returns 0 and
 * *out, or FL_EINVAL (no program), FL_ENOENT (no flint-sandbox launcher),
 * FL_ENOMEM, or the error starting the first evaluator. The caller frees
 * the pool with fl_wf_exprc_free(). */
int fl_wf_exprc_new(uv_loop_t *loop, const struct fl_wf_exprc_config *cfg,
                    struct fl_wf_exprc **out);

/* Send request (an expr.h request object; borrowed, serialized before this
 * returns) to the next idle evaluator, or queue it. Returns 0 and cb runs
 * once later; or FL_EINVAL (not an object), FL_ETOOBIG (over
 * FL_WF_EXPR_FRAME_MAX), FL_EAGAIN (the queue is full: busy, try later),
 * FL_ECLOSED (the pool is being freed), FL_ENOMEM; then cb never runs.
 * A callback may call fl_wf_exprc_eval() and fl_wf_exprc_free(). */
int fl_wf_exprc_eval(struct fl_wf_exprc *c, json_t *request, fl_wf_exprc_cb cb, void *data);

/* Kill the evaluators and free the pool; pending callbacks (running and
 * queued batches) run with FL_ECANCELED before this returns. The memory
 * goes once the evaluators' processes are gone, so the loop must run on
 * afterwards (uv_run until it has nothing left). NULL is a no-op. */
void fl_wf_exprc_free(struct fl_wf_exprc *c);

/* The pid of evaluator i's sandbox (0 <= i < procs: the head of its
 * process group), while it is warm; -1 while it starts or is replaced.
 * For tests and diagnostics. */
int fl_wf_exprc_pid(const struct fl_wf_exprc *c, unsigned i);

/* The flint-expr next to this program (DIR/flint-expr, else
 * DIR/../bin/flint-expr, DIR the directory of /proc/self/exe), as the
 * sandbox finds its launcher, into out: 0, or FL_ENOENT ("" in out). */
int fl_wf_exprc_find_program(char *out, size_t size);

#endif
