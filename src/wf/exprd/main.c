/*
 * flint-expr: the workflow expression evaluator (the protocol is in
 * wf/expr.h). Reads one request frame at a time from stdin, evaluates its
 * expressions in a fresh mujs interpreter whose heap is bounded, writes
 * one answer frame to stdout, and goes on until stdin ends.
 *
 *   flint-expr [--heap BYTES] [--fd N] [--cpu-ms N] [--check-cpu-ms N]
 *
 * --fd N: read and write the frames on descriptor N (a socket) instead of
 * stdin and stdout, as flintd runs it: its sandbox's stdout and stderr are
 * lines for the log, and the channel comes in as fd 3, as an instance's
 * listening socket does.
 *
 * --cpu-ms N (--check-cpu-ms N for a "check" batch): the CPU time one
 * batch may use, 0 for no bound. mujs cannot stop a script that loops, so
 * a profiling timer armed for each batch ends the process (exit
 * FL_WF_EXPR_EXIT_CPU) when the batch has used it up; its client replaces
 * it. CPU time, not wall time: a machine busy with other work slows a
 * batch down, and that is no reason to fail it.
 *
 * It trusts nothing it reads and holds nothing between batches. Exit: 0 at
 * the end of stdin, 2 on a bad frame, 1 when out of memory outside a
 * script, FL_WF_EXPR_EXIT_CPU when a batch used up its CPU time.
 */
#include "base/buf.h"
#include "base/str.h"
#include "wf/expr.h"
#include "wf/js.h"

#include <errno.h>
#include <jansson.h>
#include <mujs.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <sys/random.h>
#include <unistd.h>

/* The helpers, Fission Workflows' semantics: a lookup that throws (no such
 * task) is undefined. taskId is the current task. */
static const char prelude[] =
    "var $ = JSON.parse(__flint_scope);\n"
    "var taskId = __flint_task;\n"
    "function __flint_get(f) { try { return f(); } catch (e) { return undefined; } }\n"
    "function input(t, k) {\n"
    "  var id = arguments.length > 0 ? String(t) : taskId;\n"
    "  var key = arguments.length > 1 ? String(k) : 'default';\n"
    "  return __flint_get(function () { return $.Tasks[id].Inputs[key]; });\n"
    "}\n"
    "function output(t) {\n"
    "  var id = arguments.length > 0 ? String(t) : taskId;\n"
    "  return __flint_get(function () { return $.Tasks[id].Output; });\n"
    "}\n"
    "function outputHeaders(t, k) {\n"
    "  var id = arguments.length > 0 ? String(t) : taskId;\n"
    "  var key = arguments.length > 1 ? String(k) : '';\n"
    "  return __flint_get(function () {\n"
    "    return key.length > 0 ? $.Tasks[id].OutputHeaders[key] : $.Tasks[id].OutputHeaders;\n"
    "  });\n"
    "}\n"
    "function param(k) {\n"
    "  var key = arguments.length > 0 ? String(k) : 'default';\n"
    "  return __flint_get(function () { return $.Invocation.Inputs[key]; });\n"
    "}\n"
    "function task(t) {\n"
    "  var id = arguments.length > 0 ? String(t) : taskId;\n"
    "  return __flint_get(function () { return $.Tasks[id]; });\n"
    "}\n"
    "delete __flint_scope;\n";

static void quiet(js_State *J, const char *message)
{
}

/* uid(): 16 random bytes as 32 hex characters. */
static void js_uid(js_State *J)
{
    unsigned char bytes[16];
    char hex[33];
    size_t got = 0;
    while (got < sizeof(bytes)) {
        ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            js_error(J, "uid: no random bytes");
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(bytes); i++)
        snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    js_pushstring(J, hex);
}

/* The message of the error on the top of the stack, popped, into a new
 * JSON string. */
static json_t *take_error(js_State *J)
{
    struct fl_buf text;
    fl_buf_init(&text, 4096);
    fl_wf_js_message(&text, js_trystring(J, -1, "error"));
    js_pop(J, 1);
    json_t *msg = json_string(text.data != NULL ? text.data : "error");
    fl_buf_release(&text);
    return msg != NULL ? msg : json_string("error (not text)");
}

/* Evaluate (or compile only) one expression in J: {"value"} or {"error"}. */
static json_t *eval_one(js_State *J, const char *src, bool check)
{
    if (js_ploadstring(J, "expression", src) != 0)
        return json_pack("{s:o}", "error", take_error(J));
    if (check) {
        js_pop(J, 1);
        return json_pack("{s:n}", "value");
    }
    js_pushundefined(J);
    if (js_pcall(J, 0) != 0)
        return json_pack("{s:o}", "error", take_error(J));
    js_setglobal(J, "__flint_result");
    if (js_ploadstring(J, "result", "JSON.stringify(__flint_result)") != 0)
        return json_pack("{s:o}", "error", take_error(J));
    js_pushundefined(J);
    if (js_pcall(J, 0) != 0)
        return json_pack("{s:o}", "error", take_error(J));
    json_t *value = NULL;
    if (!js_isundefined(J, -1)) {
        const char *text = js_trystring(J, -1, NULL);
        value = text != NULL ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
        if (value == NULL) {
            js_pop(J, 1);
            return json_pack("{s:s}", "error", "the result cannot be written as JSON");
        }
    }
    js_pop(J, 1);
    return json_pack("{s:o}", "value", value != NULL ? value : json_null());
}

/* Every expression of one request, in a fresh interpreter. */
static json_t *evaluate(json_t *req, size_t heap_max)
{
    json_t *exprs = json_object_get(req, "exprs");
    const char *task = json_string_value(json_object_get(req, "task"));
    bool check = json_is_true(json_object_get(req, "check"));
    if (!json_is_array(exprs) || json_array_size(exprs) > FL_WF_EXPR_MAX_EXPRS)
        return json_pack("{s:s}", "error", "exprs: must be a list of at most 1024 expressions");
    json_t *scope_value = json_object_get(req, "scope");
    char *scope = scope_value != NULL ? json_dumps(scope_value, JSON_COMPACT | JSON_ENCODE_ANY)
                                      : strdup("{}");
    json_t *results = json_array();
    struct fl_wf_js_heap heap = {0, heap_max};
    js_State *J = js_newstate(fl_wf_js_alloc, &heap, 0);
    json_t *failed = NULL;
    if (J == NULL || scope == NULL || results == NULL) {
        failed = json_pack("{s:s}", "error", "out of memory");
        goto out;
    }
    js_setreport(J, quiet);
    js_newcfunction(J, js_uid, "uid", 0);
    js_setglobal(J, "uid");
    js_pushstring(J, scope);
    js_setglobal(J, "__flint_scope");
    js_pushstring(J, task != NULL ? task : "");
    js_setglobal(J, "__flint_task");
    if (js_ploadstring(J, "prelude", prelude) != 0) {
        failed = json_pack("{s:o}", "error", take_error(J));
        goto out;
    }
    js_pushundefined(J);
    if (js_pcall(J, 0) != 0) {
        /* the scope is no JSON, or the heap is too small for it */
        failed = json_pack("{s:o}", "error", take_error(J));
        goto out;
    }
    js_pop(J, 1);
    size_t i;
    json_t *e;
    json_array_foreach(exprs, i, e)
    {
        const char *src = json_string_value(e);
        json_t *r = src == NULL ? json_pack("{s:s}", "error", "an expression must be text")
                    : strlen(src) > FL_WF_JS_SRC_MAX
                        ? json_pack("{s:s}", "error", "the expression is too long")
                        : eval_one(J, src, check);
        json_array_append_new(results, r != NULL ? r : json_pack("{s:s}", "error", "no memory"));
    }
out:
    if (J != NULL)
        js_freestate(J);
    free(scope);
    if (failed != NULL) {
        json_decref(results);
        return failed;
    }
    return json_pack("{s:o}", "results", results);
}

/* Read exactly n bytes: 1, 0 at the end of input before any byte, -1 on a
 * cut or an error. */
static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 && got == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

static int write_full(int fd, const void *buf, size_t n)
{
    size_t put = 0;
    while (put < n) {
        ssize_t w = write(fd, (const char *)buf + put, n - put);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        put += (size_t)w;
    }
    return 0;
}

static int write_frame(int fd, json_t *answer)
{
    char *text = json_dumps(answer, JSON_COMPACT);
    if (text == NULL)
        return -1;
    size_t n = strlen(text);
    unsigned char len[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    int rc = n > FL_WF_EXPR_FRAME_MAX ? -1 : write_full(fd, len, 4);
    if (rc == 0)
        rc = write_full(fd, text, n);
    free(text);
    return rc;
}

static void on_cpu_used_up(int sig)
{
    (void)sig;
    _exit(FL_WF_EXPR_EXIT_CPU);
}

/* Arm (ms > 0) or disarm (0) the batch's CPU-time bound. */
static void cpu_bound(int64_t ms)
{
    struct itimerval t = {{0, 0}, {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000}};
    setitimer(ITIMER_PROF, &t, NULL);
}

int main(int argc, char **argv)
{
    uint64_t heap = FL_WF_EXPR_HEAP;
    int in = 0, out = 1;
    int64_t cpu_ms = 0, check_cpu_ms = 0;
    for (int i = 1; i < argc; i++) {
        int64_t fd;
        int64_t *bound = strcmp(argv[i], "--cpu-ms") == 0         ? &cpu_ms
                         : strcmp(argv[i], "--check-cpu-ms") == 0 ? &check_cpu_ms
                                                                  : NULL;
        if (bound != NULL && i + 1 < argc && fl_parse_i64(argv[i + 1], 0, 3600000, bound) == 0) {
            i++;
        } else if (strcmp(argv[i], "--heap") == 0 && i + 1 < argc &&
            fl_parse_size(argv[i + 1], &heap) == 0 && heap >= (1u << 20) && heap <= (1ull << 32)) {
            i++;
        } else if (strcmp(argv[i], "--fd") == 0 && i + 1 < argc &&
                   fl_parse_i64(argv[i + 1], 0, 1023, &fd) == 0) {
            in = out = (int)fd;
            i++;
        } else {
            fprintf(stderr, "usage: flint-expr [--heap BYTES] (1MiB..4GiB) [--fd N] [--cpu-ms N] "
                            "[--check-cpu-ms N]\n");
            return 2;
        }
    }
    signal(SIGPROF, on_cpu_used_up);
    char *frame = malloc(FL_WF_EXPR_FRAME_MAX + 1);
    if (frame == NULL)
        return 1;
    for (;;) {
        unsigned char len[4];
        int rc = read_full(in, len, 4);
        if (rc == 0)
            break;
        uint32_t n = (uint32_t)len[0] << 24 | (uint32_t)len[1] << 16 | (uint32_t)len[2] << 8 |
                     (uint32_t)len[3];
        if (rc < 0 || n == 0 || n > FL_WF_EXPR_FRAME_MAX || read_full(in, frame, n) != 1) {
            fprintf(stderr, "flint-expr: a frame cut short or longer than %u bytes\n",
                    FL_WF_EXPR_FRAME_MAX);
            free(frame);
            return 2;
        }
        json_t *req = json_loadb(frame, n, 0, NULL);
        if (!json_is_object(req)) {
            fprintf(stderr, "flint-expr: a frame that is no JSON object\n");
            json_decref(req);
            free(frame);
            return 2;
        }
        cpu_bound(json_is_true(json_object_get(req, "check")) ? check_cpu_ms : cpu_ms);
        json_t *answer = evaluate(req, (size_t)heap);
        cpu_bound(0);
        json_decref(req);
        rc = answer != NULL ? write_frame(out, answer) : -1;
        json_decref(answer);
        if (rc < 0) {
            free(frame);
            return 1;
        }
    }
    free(frame);
    return 0;
}
