/* Unit tests for src/wf: workflow definitions parsed and validated, and
 * expressions' syntax checked with mujs (compiled, never run). */
#include "runner.h"

#include "base/error.h"
#include "spec/spec.h"
#include "wf/js.h"
#include "wf/wf.h"

/* The functions and workflows the lookup knows. */
static enum fl_wf_target lookup_target(void *data, const char *name)
{
    static const char *const functions[] = {"whalesay", "fortune", "dump", NULL};
    static const char *const workflows[] = {"echowhale", NULL};
    for (size_t i = 0; functions[i] != NULL; i++)
        if (strcmp(name, functions[i]) == 0)
            return FL_WF_TARGET_FUNCTION;
    for (size_t i = 0; workflows[i] != NULL; i++)
        if (strcmp(name, workflows[i]) == 0)
            return FL_WF_TARGET_WORKFLOW;
    return FL_WF_TARGET_UNKNOWN;
}

static const struct fl_wf_lookup full = {lookup_target, fl_wf_js_check, NULL};

static json_t *load(const char *yaml)
{
    struct fl_buf err;
    json_t *docs = NULL;
    fl_buf_init(&err, 4096);
    if (fl_spec_parse(yaml, strlen(yaml), "test.wf.yaml", &docs, &err) != 0)
        fl_test_fail(__FILE__, __LINE__, "yaml: %s", err.data);
    fl_buf_release(&err);
    json_t *def = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return def;
}

/* A definition and the errors it must give: each expected text in a line
 * of its own, in order, and no other line. */
struct wf_case {
    const char *name;
    const char *yaml;
    const char *errors[8]; /* NULL-terminated; none: valid */
};

static const struct wf_case cases[] = {
    {"greetwhale, an input read into a function's body",
     "apiVersion: 1\n"
     "output: Greet\n"
     "tasks:\n"
     "  Greet:\n"
     "    run: whalesay\n"
     "    inputs:\n"
     "      body: \"{ 'Hello, ' + $.Invocation.Inputs.default + '!' }\"\n",
     {NULL}},
    {"askwhale, inline task and expressions without spaces",
     "apiVersion: v1\n"
     "output: Reply\n"
     "tasks:\n"
     "  Heard:\n"
     "    run: noop\n"
     "    inputs: \"{$.Invocation.Inputs.default}\"\n"
     "  QuestionOnly:\n"
     "    run: if\n"
     "    inputs:\n"
     "      if: \"{$.Tasks.Heard.Output.slice(-1)=='?'}\"\n"
     "      then:\n"
     "        run: whalesay\n"
     "        inputs:\n"
     "          body: \"{$.Tasks.Heard.Output}\"\n"
     "      else: \"{'not a question: '+$.Tasks.Heard.Output}\"\n"
     "    requires: [Heard]\n"
     "  Reply:\n"
     "    run: compose\n"
     "    inputs: \"{$.Tasks.QuestionOnly.Output}\"\n"
     "    requires: [QuestionOnly]\n",
     {NULL}},
    {"nestwhale, an inline workflow, and a workflow as a target",
     "output: Inner\n"
     "tasks:\n"
     "  Inner:\n"
     "    run: noop\n"
     "    inputs:\n"
     "      default:\n"
     "        output: Speak\n"
     "        tasks:\n"
     "          Saying:\n"
     "            run: fortune\n"
     "          Speak:\n"
     "            run: echowhale\n"
     "            requires: [Saying]\n",
     {NULL}},
    {"Flint's retry, timeout and catch",
     "output: A\n"
     "timeout: 5m\n"
     "tasks:\n"
     "  A:\n"
     "    run: fortune\n"
     "    retry: {maxAttempts: 5, backoff: 100ms, maxBackoff: 2s}\n"
     "    timeout: 10s\n"
     "    catch:\n"
     "      run: compose\n"
     "      inputs: no fortune today\n",
     {NULL}},
    {"a string with braces that is no expression is a literal",
     "output: A\n"
     "tasks:\n"
     "  A:\n"
     "    run: javascript\n"
     "    inputs:\n"
     "      expr: \"({ 'a': 1 + })\"\n"
     "      text: \"{ unclosed\"\n",
     {NULL}},
    {"unknown run targets, at every level",
     "output: A\n"
     "tasks:\n"
     "  A:\n"
     "    run: whalesy\n"
     "  B:\n"
     "    run: foreach\n"
     "    inputs:\n"
     "      foreach: [1, 2]\n"
     "      do: {run: nosuch}\n"
     "    catch: {run: alsonot}\n",
     {"tasks.A.run: 'whalesy' is not a built-in, a function or a workflow",
      "tasks.B.inputs.do.run: 'nosuch' is not a built-in, a function or a workflow",
      "tasks.B.catch.run: 'alsonot' is not a built-in, a function or a workflow", NULL}},
    {"missing dependency and unknown output",
     "output: Z\n"
     "tasks:\n"
     "  A: {run: noop}\n"
     "  B: {run: noop, requires: [A, C]}\n",
     {"output: 'Z' is not a task of this workflow",
      "tasks.B.requires: 'C' is not a task of this workflow", NULL}},
    {"a cycle is named, and no start task",
     "output: A\n"
     "tasks:\n"
     "  A: {requires: [C]}\n"
     "  B: {requires: [A]}\n"
     "  C: {requires: [B]}\n",
     {"tasks: no start task: every task requires another",
      "tasks: circular dependency: A -> C -> B -> A", NULL}},
    {"a task requiring itself",
     "output: A\n"
     "tasks:\n"
     "  S: {}\n"
     "  A: {requires: [S, A]}\n",
     {"tasks: circular dependency: A -> A", NULL}},
    {"expression syntax, in lists and maps too",
     "output: A\n"
     "tasks:\n"
     "  A:\n"
     "    run: compose\n"
     "    inputs:\n"
     "      ok: \"{ output('A') }\"\n"
     "      bad: \"{ output('A' }\"\n"
     "      deep: {list: [1, \"{ 1 + }\"]}\n",
     {"tasks.A.inputs.bad: expression { output('A' }: SyntaxError",
      "tasks.A.inputs.deep: expression { 1 + }: SyntaxError", NULL}},
    {"structure: unknown fields, wrong types, bad durations and retries",
     "apiVersion: v2\n"
     "output: [A]\n"
     "timeout: soon\n"
     "tasks:\n"
     "  A:\n"
     "    run: noop\n"
     "    require: [B]\n"
     "    requires: B\n"
     "    retry: {maxAttempts: 0}\n"
     "    timeout: 0s\n",
     {"apiVersion: unknown API version", "output: must be a task id", "timeout: must be a duration",
      "tasks.A.require: is not a field of a task", "tasks.A.requires: must be a list of task ids",
      "tasks.A.retry.maxAttempts", "tasks.A.timeout: must be a duration", NULL}},
    {"no tasks, no output",
     "description: empty\n"
     "tasks: {}\n",
     {"output: is required", "tasks: a workflow needs at least one task", NULL}},
    {"not a map", "- a\n- b\n", {"a workflow must be a map", NULL}},
    {"an inline workflow's own errors have its path",
     "output: A\n"
     "tasks:\n"
     "  A:\n"
     "    inputs:\n"
     "      default:\n"
     "        output: Y\n"
     "        tasks:\n"
     "          X: {requires: [X]}\n",
     {"tasks.A.inputs.default.output: 'Y' is not a task of this workflow",
      "tasks.A.inputs.default.tasks: no start task",
      "tasks.A.inputs.default.tasks: circular dependency: X -> X", NULL}},
};

/* Whether line (n bytes) contains want. */
static bool line_has(const char *line, size_t n, const char *want)
{
    size_t w = strlen(want);
    for (size_t i = 0; i + w <= n; i++)
        if (memcmp(line + i, want, w) == 0)
            return true;
    return false;
}

static void run_case(const struct wf_case *c)
{
    json_t *def = load(c->yaml);
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    int rc = fl_wf_check(def, &full, &errs);
    const char *text = errs.text.data != NULL ? errs.text.data : "";
    size_t want = 0;
    while (want < 8 && c->errors[want] != NULL)
        want++;
    if (want == 0 && rc != 0)
        fl_test_fail(__FILE__, __LINE__, "%s: expected valid, got:\n%s", c->name, text);
    if (want > 0 && rc != FL_EINVAL)
        fl_test_fail(__FILE__, __LINE__, "%s: expected FL_EINVAL, got %d", c->name, rc);
    if (errs.n != want)
        fl_test_fail(__FILE__, __LINE__, "%s: expected %zu errors, got %zu:\n%s", c->name, want,
                     errs.n, text);
    const char *p = text;
    for (size_t i = 0; i < want; i++) {
        size_t n = strcspn(p, "\n");
        if (!line_has(p, n, c->errors[i]))
            fl_test_fail(__FILE__, __LINE__, "%s: error %zu is '%.*s', expected '%s'", c->name,
                         i + 1, (int)n, p, c->errors[i]);
        p += n + (p[n] == '\n');
    }
    fl_wf_errors_release(&errs);
    json_decref(def);
}

TEST(wf_definitions_give_exactly_their_errors)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

TEST(wf_parse_fills_the_struct)
{
    json_t *def = load("apiVersion: 1\n"
                       "description: fan out\n"
                       "output: B\n"
                       "timeout: 1m\n"
                       "tasks:\n"
                       "  A:\n"
                       "    run: sleep\n"
                       "    inputs: 10s\n"
                       "  B:\n"
                       "    run: whalesay\n"
                       "    inputs:\n"
                       "      body: \"{ output('A') }\"\n"
                       "      n: 3\n"
                       "      then: {run: fortune}\n"
                       "    requires: [A]\n"
                       "    retry: {maxAttempts: 4}\n"
                       "    timeout: 2s\n"
                       "  C:\n"
                       "    inputs: [1, 2]\n");
    struct fl_wf wf;
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    ASSERT_EQ(fl_wf_parse(def, &wf, &errs), 0);
    ASSERT_EQ(fl_wf_validate(&wf, &full, &errs), 0);
    ASSERT_STR_EQ(wf.api_version, "v1");
    ASSERT_STR_EQ(wf.description, "fan out");
    ASSERT_STR_EQ(wf.output, "B");
    ASSERT_EQ(wf.timeout_ms, 60000);
    ASSERT_EQ(wf.ntasks, 3);

    struct fl_wf_task *a = &wf.tasks[0];
    ASSERT_STR_EQ(a->id, "A");
    ASSERT_STR_EQ(a->run, "sleep");
    ASSERT_EQ(a->target, FL_WF_TARGET_BUILTIN);
    ASSERT_EQ(a->ninputs, 1);
    ASSERT_STR_EQ(a->inputs[0].key, "default");
    ASSERT_STR_EQ(json_string_value(a->inputs[0].value), "10s");
    ASSERT(!a->inputs[0].has_expr);
    ASSERT(!a->has_retry);
    ASSERT_EQ(a->retry.max_attempts, 1);

    struct fl_wf_task *b = &wf.tasks[1];
    ASSERT_EQ(b->target, FL_WF_TARGET_FUNCTION);
    ASSERT_EQ(b->ninputs, 3);
    ASSERT(b->inputs[0].has_expr);
    ASSERT(!b->inputs[1].has_expr);
    ASSERT(b->inputs[2].task != NULL);
    ASSERT_STR_EQ(b->inputs[2].task->run, "fortune");
    ASSERT_EQ(b->inputs[2].task->target, FL_WF_TARGET_FUNCTION);
    ASSERT_EQ(b->nrequires, 1);
    ASSERT_STR_EQ(b->requires[0], "A");
    ASSERT(b->has_retry);
    ASSERT_EQ(b->retry.max_attempts, 4);
    ASSERT_EQ(b->timeout_ms, 2000);

    struct fl_wf_task *c = &wf.tasks[2];
    ASSERT_STR_EQ(c->run, "noop");
    ASSERT(json_is_array(c->inputs[0].value));
    ASSERT_STR_EQ(c->inputs[0].key, "default");
    fl_wf_release(&wf);
    fl_wf_errors_release(&errs);
    json_decref(def);
}

TEST(wf_without_lookups_checks_structure_only)
{
    json_t *def = load("output: A\n"
                       "tasks:\n"
                       "  A: {run: anything, inputs: \"{ 1 + }\"}\n");
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    ASSERT_EQ(fl_wf_check(def, NULL, &errs), 0);
    ASSERT_EQ(errs.n, 0);
    fl_wf_errors_release(&errs);
    json_decref(def);
}

TEST(wf_errors_are_bounded_and_joined)
{
    /* 120 tasks each requiring a missing one: 120 errors, 50 listed */
    struct fl_buf y;
    fl_buf_init(&y, 1 << 20);
    fl_buf_appends(&y, "output: T0\ntasks:\n  S: {}\n");
    for (int i = 0; i < 120; i++)
        fl_buf_appendf(&y, "  T%d: {requires: [missing%d]}\n", i, i);
    json_t *def = load(y.data);
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    ASSERT_EQ(fl_wf_check(def, &full, &errs), FL_EINVAL);
    ASSERT_EQ(errs.n, 120);
    struct fl_buf joined;
    fl_buf_init(&joined, 1 << 20);
    fl_wf_errors_join(&errs, &joined);
    ASSERT(strstr(joined.data, "tasks.T0.requires: 'missing0' is not a task of this workflow; "
                               "tasks.T1.requires") != NULL);
    ASSERT(strstr(joined.data, "(70 more)") != NULL);
    fl_buf_release(&joined);
    fl_buf_release(&y);
    fl_wf_errors_release(&errs);
    json_decref(def);
}

TEST(wf_size_and_nesting_are_bounded)
{
    struct fl_buf y;
    fl_buf_init(&y, 1 << 20);
    fl_buf_appends(&y, "output: T0\ntasks:\n");
    for (int i = 0; i < FL_WF_MAX_TASKS + 5; i++)
        fl_buf_appendf(&y, "  T%d: {}\n", i);
    json_t *def = load(y.data);
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    ASSERT_EQ(fl_wf_check(def, &full, &errs), FL_EINVAL);
    ASSERT_EQ(errs.n, 1);
    ASSERT(strstr(errs.text.data, "more than 1000 tasks") != NULL);
    fl_wf_errors_release(&errs);
    json_decref(def);

    /* inline tasks within each other, deeper than allowed */
    fl_buf_reset(&y);
    fl_buf_appends(&y, "{\"output\": \"A\", \"tasks\": {\"A\": ");
    for (int i = 0; i < FL_WF_MAX_NESTING + 3; i++)
        fl_buf_appends(&y, "{\"run\": \"noop\", \"inputs\": {\"do\": ");
    fl_buf_appends(&y, "{\"run\": \"noop\"}");
    for (int i = 0; i < FL_WF_MAX_NESTING + 3; i++)
        fl_buf_appends(&y, "}}");
    fl_buf_appends(&y, "}}");
    def = load(y.data);
    fl_wf_errors_init(&errs);
    ASSERT_EQ(fl_wf_check(def, &full, &errs), FL_EINVAL);
    ASSERT(strstr(errs.text.data, "nest more than 16 deep") != NULL);
    fl_wf_errors_release(&errs);
    json_decref(def);
    fl_buf_release(&y);
}

static int add(void *arg, const char *name)
{
    return fl_buf_appendf(arg, "%s ", name);
}

TEST(wf_targets_of_a_raw_definition)
{
    json_t *def = load("output: A\n"
                       "tasks:\n"
                       "  A: {run: whalesay}\n"
                       "  B: {run: if, inputs: {then: {run: fortune}, else: 3}}\n"
                       "  C: {inputs: {default: {output: X, tasks: {X: {run: echowhale}}}}}\n"
                       "  D: {run: noop, catch: {run: dump}}\n"
                       "  E: [not, a, task]\n"
                       "  F: {run: 'fission://fission-function/multidump'}\n");
    struct fl_buf names;
    fl_buf_init(&names, 1024);
    ASSERT_EQ(fl_wf_each_target(def, add, &names), 0);
    ASSERT_STR_EQ(names.data, "whalesay fortune echowhale dump multidump ");
    fl_buf_release(&names);
    json_decref(def);
}

TEST(wf_fission_function_references_name_the_function)
{
    ASSERT_STR_EQ(fl_wf_run_name("fission://fission-function/dump"), "dump");
    ASSERT_STR_EQ(fl_wf_run_name("fission://dump"), "dump");
    ASSERT_STR_EQ(fl_wf_run_name("dump"), "dump");
    ASSERT_STR_EQ(fl_wf_run_name("http://x/y"), "http://x/y");
    json_t *def = load("output: A\n"
                       "tasks:\n"
                       "  A: {run: 'fission://ns/whalesay'}\n");
    struct fl_wf wf;
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    ASSERT_OK(fl_wf_parse(def, &wf, &errs));
    ASSERT_EQ(errs.n, 0);
    ASSERT_STR_EQ(wf.tasks[0].run, "whalesay");
    fl_wf_release(&wf);
    json_decref(def);
    /* a reference that names nothing is an error of its own task */
    def = load("output: A\n"
               "tasks:\n"
               "  A: {run: 'fission://ns/'}\n");
    fl_wf_errors_release(&errs);
    fl_wf_errors_init(&errs);
    fl_wf_parse(def, &wf, &errs);
    ASSERT_EQ(errs.n, 1);
    ASSERT(strstr(errs.text.data, "tasks.A.run: must be the name of") != NULL);
    fl_wf_release(&wf);
    fl_wf_errors_release(&errs);
    json_decref(def);
}

TEST(wf_expressions_are_one_line_in_braces)
{
    static const struct {
        const char *s;
        bool expr;
    } strings[] = {{"{ a }", true},   {"{a}", true},      {"{}", true},     {" { a }", false},
                   {"{ a } ", false}, {"{ a\n }", false}, {"{", false},     {"}", false},
                   {"", false},       {"({ a })", false}, {"{a} {b}", true}};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (fl_wf_is_expr(strings[i].s, strlen(strings[i].s)) != strings[i].expr)
            fl_test_fail(__FILE__, __LINE__, "'%s': expected %s", strings[i].s,
                         strings[i].expr ? "an expression" : "no expression");
}

TEST(wf_js_check_compiles_without_running)
{
    struct fl_buf why;
    fl_buf_init(&why, 4096);
    /* an endless loop compiles: it is never run */
    ASSERT_EQ(fl_wf_js_check(NULL, " while(true){} ", &why), 0);
    ASSERT_EQ(fl_wf_js_check(NULL, " $.Tasks.A.Output ", &why), 0);
    ASSERT_EQ(fl_wf_js_check(NULL, " 1 + ", &why), FL_EINVAL);
    ASSERT(strstr(why.data, "SyntaxError") != NULL);
    ASSERT(strstr(why.data, "expression:1") == NULL);
    ASSERT(strstr(why.data, "unexpected token") != NULL);
    fl_buf_reset(&why);
    /* nesting deep enough to exhaust a naive parser's stack is refused */
    struct fl_buf deep;
    fl_buf_init(&deep, 1 << 20);
    for (int i = 0; i < 60000; i++)
        fl_buf_appendc(&deep, '(');
    ASSERT_EQ(fl_wf_js_check(NULL, deep.data, &why), FL_EINVAL);
    ASSERT(strstr(why.data, "too much recursion") != NULL);
    fl_buf_release(&deep);
    fl_buf_release(&why);
}
