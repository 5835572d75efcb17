/*
 * The expression client: flintd's side of the evaluator (expr.h).
 *
 * A pool of warm flint-expr processes (src/wf/exprd), each started in the
 * functions' sandbox (bubblewrap + seccomp as an unprivileged uid, or the
 * launcher's development mode) with a memory bound, talking the framed
 * protocol of expr.h over a socket on the loop. One batch (all the
 * expressions of one task's inputs) goes to one idle evaluator; when all
 * are busy, batches wait in a bounded queue, first in first out.
 *
 * Each batch is bounded by a deadline timed on the loop. An evaluator that
 * misses it is killed (its whole process group) and replaced, and the
 * batch fails with FL_ETIMEDOUT ("expression took longer than 100 ms").
 * An evaluator that exits or sends a bad frame is replaced the same way and
 * its batch fails (FL_EPROTO / FL_EPIPE). A failed batch is never retried
 * here: the caller decides (an expression is the user's code, not a
 * transient failure).
 *
 * Everything runs on the loop given to fl_wf_exprc_new(); nothing here is
 * thread-safe.
 */
#ifndef FLINT_WF_EXPRC_H
#define FLINT_WF_EXPRC_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

struct fl_wf_exprc; /* a pool of warm evaluators */

struct fl_wf_exprc_config {
    const char *program;  /* path of flint-expr (copied) */
    unsigned deadline_ms; /* one batch's bound; 0: FL_WF_EXPR_DEADLINE_MS */
    size_t mem_max;       /* the process's memory bound; 0: a default */
    unsigned procs;       /* evaluators kept warm; 0: 1 */
    unsigned queue_max;   /* batches waiting for an evaluator; 0: a default */
    int no_sandbox;       /* 1: run as flintd's uid without bubblewrap
                             (development mode, as the launcher's) */
};

/* cb runs once, on the loop, later (never inside fl_wf_exprc_eval):
 * status 0 and answer = the evaluator's {"results": [...]} (borrowed for the
 * call), or a negative FL_E* status and error a message such as
 * "expression took longer than 100 ms" (answer NULL). */
typedef void (*fl_wf_exprc_cb)(void *data, int status, json_t *answer, const char *error);

/* Create a pool on loop and start cfg->procs evaluators. Returns 0 and
 * *out, or FL_EINVAL (no program), FL_ENOMEM, or the error starting the
 * first evaluator. The caller frees the pool with fl_wf_exprc_free(). */
int fl_wf_exprc_new(uv_loop_t *loop, const struct fl_wf_exprc_config *cfg,
                    struct fl_wf_exprc **out);

/* Send request (an expr.h request object; borrowed, serialized before this
 * returns) to the next idle evaluator, or queue it. Returns 0 and cb runs
 * once later; or FL_EINVAL (not an object), FL_ETOOBIG (over
 * FL_WF_EXPR_FRAME_MAX), FL_EAGAIN (the queue is full), FL_ECLOSED (the
 * pool is being freed), FL_ENOMEM; then cb never runs. */
int fl_wf_exprc_eval(struct fl_wf_exprc *c, json_t *request, fl_wf_exprc_cb cb, void *data);

/* Kill the evaluators and free the pool; pending callbacks (running and
 * queued batches) run with FL_ECANCELED before this returns. The loop must
 * run afterwards for the handles to close (uv_run or uv_loop_close's
 * caller's usual drain). NULL is a no-op. */
void fl_wf_exprc_free(struct fl_wf_exprc *c);

#endif
