/* Unit tests for src/wf/builtins.c: the built-ins the engine decides at
 * once, table-driven (inputs as JSON -> output as JSON, or the error's
 * text), with Fission Workflows' outputs and messages; and which outputs
 * are tasks or workflows to run as dynamic tasks. */
#include "runner.h"

#include "base/error.h"
#include "wf/engine_internal.h"

#include <string.h>

struct builtin_case {
    const char *run, *inputs;
    const char *output; /* JSON the output equals, or NULL */
    const char *error;  /* text the error contains, or NULL */
};

static const struct builtin_case cases[] = {
    {"if", "{\"if\":true,\"then\":1,\"else\":2}", "1", NULL},
    {"if", "{\"if\":false,\"then\":1}", "null", NULL},
    {"if", "{\"then\":1}", NULL, "input 'if' is not set"},
    {"if", "{\"if\":\"yes\"}", NULL, "condition '\"yes\"' needs to be a 'bool', but was 'string'"},
    {"switch",
     "{\"switch\":\"b\",\"cases\":[{\"case\":\"a\",\"action\":1},{\"case\":\"b\","
     "\"action\":2}],\"default\":3}",
     "2", NULL},
    {"switch", "{\"switch\":\"z\",\"cases\":[{\"case\":\"a\",\"action\":1}],\"default\":3}", "3",
     NULL},
    {"switch", "{\"switch\":\"z\"}", "null", NULL},
    {"switch", "{\"switch\":1}", NULL, "input 'switch' needs to be a 'string'"},
    {"switch", "{\"switch\":\"a\",\"cases\":[7]}", NULL, "invalid case provided"},
    {"switch", "{\"switch\":\"a\",\"cases\":[{\"action\":1}]}", NULL,
     "case in switch does not have a key"},
    {"switch", "{\"switch\":\"a\",\"cases\":[{\"case\":1,\"action\":1}]}", NULL,
     "case key should be a string"},
    {"foreach", "{\"foreach\":3,\"do\":{\"run\":\"noop\"}}", NULL,
     "condition '3' needs to be a 'array', but was 'number'"},
    {"foreach", "{\"foreach\":[1]}", NULL, "input 'do' is not set"},
    {"foreach", "{\"foreach\":[1],\"do\":5}", NULL,
     "input 'do' is not a validType type (expected: [task], was: number)"},
    {"foreach", "{\"foreach\":[1],\"do\":{\"tasks\":{}}}", NULL,
     "foreach does not support workflow inputs (yet)"},
    {"foreach", "{\"foreach\":[1],\"do\":{\"run\":\"noop\"},\"collect\":\"no\"}", NULL,
     "collect could not be parsed into a boolean"},
    {"foreach", "{\"foreach\":[1],\"do\":{\"run\":\"noop\"},\"maxConcurrency\":0}", NULL,
     "input 'maxConcurrency' needs to be at least 1"},
    {"repeat", "{\"do\":{\"run\":\"noop\"}}", NULL, "repeat needs 'times'"},
    {"repeat", "{\"times\":2}", NULL, "repeat needs 'do'"},
    {"repeat", "{\"times\":0,\"do\":{\"run\":\"noop\"}}", "null", NULL},
    {"repeat", "{\"times\":\"x\",\"do\":{\"run\":\"noop\"}}", NULL,
     "input 'times' needs to be a number"},
    {"while", "{\"limit\":1,\"do\":{\"run\":\"noop\"}}", NULL, "input 'expr' is not set"},
    {"while", "{\"expr\":1,\"limit\":1,\"do\":{\"run\":\"noop\"}}", NULL,
     "input 'expr' is not a validType type (expected: [bool], was: number)"},
    {"while", "{\"expr\":false,\"limit\":1,\"do\":{\"run\":\"noop\"},\"_prev\":7}", "7", NULL},
    {"while", "{\"expr\":true,\"limit\":2,\"_count\":2,\"do\":{\"run\":\"noop\"}}", NULL,
     "while limit exceeded"},
    {"while", "{\"expr\":true,\"limit\":2,\"delay\":\"soon\",\"do\":{\"run\":\"noop\"}}", NULL,
     "failed to parse duration: time: invalid duration \"soon\""},
};

TEST(builtins_table)
{
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const struct builtin_case *c = &cases[k];
        const struct builtin *b = builtin_find(c->run);
        ASSERT(b != NULL && b->kind == BUILTIN_NOW);
        json_t *inputs = json_loads(c->inputs, 0, NULL);
        ASSERT(inputs != NULL);
        json_t *out = NULL;
        char *error = NULL;
        int rc = b->run(NULL, inputs, &out, &error);
        bool ok;
        if (c->error != NULL) {
            ok = rc == FL_EINVAL && error != NULL && strstr(error, c->error) != NULL;
        } else {
            json_t *want = json_loads(c->output, JSON_DECODE_ANY, NULL);
            ok = rc == 0 && json_equal(out, want);
            json_decref(want);
        }
        if (!ok) {
            char *got = out ? json_dumps(out, JSON_ENCODE_ANY) : NULL;
            fprintf(stderr, "case %zu (%s %s): rc %d output %s error %s\n", k, c->run, c->inputs,
                    rc, got ? got : "-", error ? error : "-");
            free(got);
        }
        json_decref(out);
        json_decref(inputs);
        free(error);
        ASSERT(ok);
    }
}

/* foreach's workflow: one do_k per item with _item, the window of
 * maxConcurrency as requires, and the collector of their outputs. */
TEST(builtins_foreach_makes_a_workflow)
{
    json_t *inputs = json_loads("{\"foreach\":[\"a\",\"b\",\"c\"],\"maxConcurrency\":2,"
                                "\"do\":{\"run\":\"f\",\"inputs\":\"{ 1 }\"}}",
                                0, NULL);
    json_t *out = NULL;
    char *error = NULL;
    ASSERT_OK(builtin_find("foreach")->run(NULL, inputs, &out, &error));
    ASSERT_STR_EQ(json_string_value(json_object_get(out, "output")), "collector");
    json_t *tasks = json_object_get(out, "tasks");
    ASSERT_EQ(json_object_size(tasks), 4);
    json_t *do2 = json_object_get(tasks, "do_2");
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(do2, "inputs"), "_item")), "c");
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(do2, "inputs"), "default")),
                  "{ 1 }");
    ASSERT_STR_EQ(json_string_value(json_array_get(json_object_get(do2, "requires"), 0)), "do_0");
    ASSERT(json_object_get(json_object_get(tasks, "do_1"), "requires") == NULL);
    json_t *collect =
        json_object_get(json_object_get(json_object_get(tasks, "collector"), "inputs"), "default");
    ASSERT_EQ(json_array_size(collect), 3);
    ASSERT_STR_EQ(json_string_value(json_array_get(collect, 1)), "{output('do_1')}");
    /* it is a workflow to run as a dynamic task */
    json_t *flow = builtin_flow(out);
    ASSERT(flow == out);
    json_decref(flow);
    json_decref(out);
    json_decref(inputs);
}

TEST(builtins_flow_is_a_task_or_a_workflow_only)
{
    static const struct {
        const char *value;
        bool flow;
    } flows[] = {
        {"{\"run\":\"f\",\"inputs\":{\"a\":1}}", true},
        {"{\"output\":\"a\",\"tasks\":{\"a\":{}}}", true},
        {"{\"run\":\"f\",\"extra\":1}", false}, /* not only a task's fields: data */
        {"{\"tasks\":{\"a\":{}}}", false},      /* no output: data */
        {"{\"run\":7}", false},
        {"\"run\"", false},
        {"[1]", false},
    };
    for (size_t k = 0; k < sizeof(flows) / sizeof(flows[0]); k++) {
        json_t *v = json_loads(flows[k].value, JSON_DECODE_ANY, NULL);
        json_t *flow = builtin_flow(v);
        ASSERT_EQ(flow != NULL, flows[k].flow);
        if (flow != NULL && json_object_get(v, "run") != NULL) {
            /* a task becomes the workflow of one task, main */
            ASSERT_STR_EQ(json_string_value(json_object_get(flow, "output")), "main");
            ASSERT(json_equal(json_object_get(json_object_get(flow, "tasks"), "main"), v));
        }
        json_decref(flow);
        json_decref(v);
    }
}

TEST(builtins_javascript_request)
{
    json_t *inputs =
        json_loads("{\"expr\":\"a + b\",\"args\":{\"a\":1,\"b\":\"\\u2028\"}}", 0, NULL);
    json_t *exprs = NULL;
    char *error = NULL;
    ASSERT_OK(builtin_js_exprs(inputs, &exprs, &error));
    ASSERT_EQ(json_array_size(exprs), 2);
    const char *setup = json_string_value(json_array_get(exprs, 0));
    /* JSON as JavaScript: U+2028 escaped */
    ASSERT(strstr(setup, "this[\"a\"] = 1;") != NULL);
    ASSERT(strstr(setup, "\\u2028") != NULL);
    ASSERT_STR_EQ(json_string_value(json_array_get(exprs, 1)), "a + b");
    json_decref(exprs);
    json_decref(inputs);
    inputs = json_loads("{\"args\":1}", 0, NULL);
    ASSERT_EQ(builtin_js_exprs(inputs, &exprs, &error), FL_EINVAL);
    ASSERT_STR_EQ(error, "input 'expr' is not set");
    free(error);
    json_decref(inputs);
}
