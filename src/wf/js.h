/*
 * JavaScript for workflow expressions, on mujs (an ES5 interpreter from
 * Debian's libmujs): a compile-only syntax check, and the bounded heap the
 * evaluator runs scripts in.
 *
 * Where this runs: in the `flint` CLI (`flint wf validate`, on the user's
 * own file) and in the expression evaluator process (src/wf/exprd), never
 * in flintd. mujs cannot interrupt a running script, and its compiler has
 * had memory-safety bugs on hostile input (deep nesting), so flintd hands
 * every expression, even one only to be compiled, to the evaluator process,
 * which runs sandboxed, bounded and replaceable (wf/expr.h).
 *
 * Binaries that use this module link -lmujs (the Makefile does it for the
 * CLI, the evaluator and the unit tests; flintd never pulls it in).
 */
#ifndef FLINT_WF_JS_H
#define FLINT_WF_JS_H

#include <stddef.h>

#include "base/buf.h"

/* The most bytes one interpreter may allocate in a syntax check. */
#define FL_WF_JS_CHECK_HEAP (16u << 20)

/* Bytes of an expression's source the check and the evaluator accept. */
#define FL_WF_JS_SRC_MAX (64u << 10)

/* A heap bound for an interpreter: pass fl_wf_js_alloc and a struct
 * fl_wf_js_heap to js_newstate(). An allocation past max fails (mujs then
 * throws "out of memory" inside the script's try). */
struct fl_wf_js_heap {
    size_t used;
    size_t max;
};

void *fl_wf_js_alloc(void *heap, void *ptr, int size);

/*
 * Compile src (an expression's text between its braces, NUL-terminated)
 * as a script without running it: 0, or FL_EINVAL with mujs's message in
 * why ("SyntaxError: unexpected token in expression: '+'"), FL_ETOOBIG
 * (longer than FL_WF_JS_SRC_MAX), FL_ENOMEM. data is unused (the
 * signature of struct fl_wf_lookup's expr).
 */
int fl_wf_js_check(void *data, const char *src, struct fl_buf *why);

/* Append mujs's error message msg to why without the file name and line
 * it puts in ("SyntaxError: expression:1: unexpected token" ->
 * "SyntaxError: unexpected token"): an expression is one line. */
void fl_wf_js_message(struct fl_buf *why, const char *msg);

#endif
