/*
 * The expression evaluator's protocol: how flintd (or a test) asks
 * flint-expr (src/wf/exprd) to evaluate a batch of workflow expressions.
 *
 * Why a process. mujs cannot interrupt a running script, and expressions
 * are the users' untrusted JavaScript: they never run inside flintd. The
 * evaluator is a small program linked with mujs, kept warm, that answers
 * one batch (all the expressions of one task's inputs) per round trip. A
 * batch is bounded by the CPU time it may use (FL_WF_EXPR_DEADLINE_MS by
 * default; the evaluator's own timer, --cpu-ms, ends it with exit status
 * FL_WF_EXPR_EXIT_CPU), so a loaded machine slows expressions down without
 * failing them; the client bounds each round trip by a wall-clock backstop
 * too, and the process by a memory limit (an rlimit, and mujs's heap
 * bounded inside it), and replaces an evaluator that ended or missed the
 * backstop. Each batch gets a fresh interpreter, so nothing one invocation
 * leaves (a global, a changed prototype) reaches another.
 *
 * Framing (version 1), both ways on one byte stream (the evaluator's stdin
 * and stdout, or with --fd N one socket, as flintd runs it): a 4-byte big-endian length N (1..FL_WF_EXPR_FRAME_MAX), then
 * N bytes of JSON. A frame that is too long, cut short or not JSON ends the
 * evaluator (exit 2): the client replaces it.
 *
 * Request:
 *   {"task": "A",                      the current task (input(), output()...)
 *    "scope": {"Workflow": {...}, "Invocation": {"Inputs": {...}, ...},
 *              "Tasks": {"A": {"Inputs", "Output", "OutputHeaders", ...}}},
 *    "exprs": ["output('A')", ...],     each the text between the braces
 *    "check": false}                    true: compile only, never run
 * Answer, one result per expression, in order:
 *   {"results": [{"value": V} | {"error": "ReferenceError: 'x' is not defined"}]}
 * A value is what JSON.stringify makes of the result (undefined, a
 * function: null).
 *
 * In an expression, `$` is the scope and the helpers are Fission
 * Workflows': uid() a new unique id; input(task?, key?) a task's input
 * (default: the current task, key "default"); output(task?) a task's
 * output; outputHeaders(task?, key?) its output headers, or one of them;
 * param(key?) the invocation's input (key "default"); task(id?) a task's
 * scope. A lookup that fails (no such task) is undefined, never an error.
 */
#ifndef FLINT_WF_EXPR_H
#define FLINT_WF_EXPR_H

#define FL_WF_EXPR_PROTOCOL    1
#define FL_WF_EXPR_FRAME_MAX   (16u << 20) /* bytes of one frame's JSON */
#define FL_WF_EXPR_DEADLINE_MS 100         /* one batch's bound, by default */
#define FL_WF_EXPR_HEAP        (64u << 20) /* mujs's heap per batch, by default */
#define FL_WF_EXPR_MAX_EXPRS   1024        /* expressions in one batch */
#define FL_WF_EXPR_EXIT_CPU    3           /* flint-expr's exit: a batch used up its CPU time */

#endif
