/* Unit tests for src/wf/run.h: a workflow invocation's events folded into
 * its state, table-driven: each case is a list of events and the status
 * of the invocation and of each task they fold into. */
#include "runner.h"

#include "base/error.h"
#include "wf/engine.h"
#include "wf/run.h"

#include <string.h>

#define ID "0193a0c4-0000-7000-8000-000000000001"

/* A definition: A, then B and C in parallel, then D (the output). */
#define CREATED                                                                                    \
    "{\"workflow\":\"w\",\"revision\":7,\"at\":1000,\"trigger\":\"api\","                          \
    "\"inputs\":{\"body\":\"hi\",\"default\":\"hi\"},"                                             \
    "\"definition\":{\"output\":\"D\",\"tasks\":{\"A\":{\"run\":\"f\"},"                           \
    "\"B\":{\"run\":\"sleep\",\"requires\":[\"A\"]},\"C\":{\"run\":\"f\",\"requires\":[\"A\"],"    \
    "\"retry\":{\"maxAttempts\":3}},\"D\":{\"run\":\"compose\",\"requires\":[\"B\",\"C\"]}}}}"

struct event {
    const char *type, *data;
};

struct fold_case {
    const char *name;
    struct event events[16];
    int err;                      /* what the fold returns */
    enum fl_wf_run_status status; /* the invocation's */
    const char *tasks;            /* each task's status's first letter, A B C D */
    const char *failed_task;
};

static const struct fold_case cases[] = {
    {"created", {{"InvocationCreated", CREATED}}, 0, FL_WF_RUN_RUNNING, "pppp", ""},
    {"nothing before created",
     {{"TaskStarted", "{\"task\":\"A\",\"attempt\":1}"}},
     FL_ECORRUPT,
     FL_WF_RUN_RUNNING,
     "",
     ""},
    {"an unknown event",
     {{"InvocationCreated", CREATED}, {"TaskExploded", "{}"}},
     FL_ECORRUPT,
     FL_WF_RUN_RUNNING,
     "pppp",
     ""},
    {"an unknown task",
     {{"InvocationCreated", CREATED}, {"TaskScheduled", "{\"task\":\"Z\",\"inputs\":{}}"}},
     FL_ECORRUPT,
     FL_WF_RUN_RUNNING,
     "pppp",
     ""},
    {"scheduled, started",
     {{"InvocationCreated", CREATED},
      {"TaskScheduled", "{\"task\":\"A\",\"inputs\":{},\"at\":1001}"},
      {"TaskStarted", "{\"task\":\"A\",\"attempt\":1,\"at\":1002}"}},
     0,
     FL_WF_RUN_RUNNING,
     "rppp",
     ""},
    {"fan-out: B sleeps, C retries",
     {{"InvocationCreated", CREATED},
      {"TaskScheduled", "{\"task\":\"A\",\"inputs\":{}}"},
      {"TaskStarted", "{\"task\":\"A\",\"attempt\":1}"},
      {"TaskSucceeded", "{\"task\":\"A\",\"output\":{\"x\":1}}"},
      {"TaskScheduled", "{\"task\":\"B\",\"inputs\":{\"default\":\"1s\"}}"},
      {"TaskStarted", "{\"task\":\"B\",\"attempt\":1}"},
      {"TimerStarted", "{\"task\":\"B\",\"timer\":\"sleep\",\"fireAt\":5000}"},
      {"TaskScheduled", "{\"task\":\"C\",\"inputs\":{}}"},
      {"TaskStarted", "{\"task\":\"C\",\"attempt\":1}"},
      {"TaskFailed", "{\"task\":\"C\",\"attempt\":1,\"error\":\"503\",\"retry\":true}"},
      {"TimerStarted", "{\"task\":\"C\",\"timer\":\"retry\",\"fireAt\":3000}"}},
     0,
     FL_WF_RUN_RUNNING,
     "srrp", /* A succeeded, B running (sleeping), C retrying: 'r' for both */
     ""},
    {"a task failed for good",
     {{"InvocationCreated", CREATED},
      {"TaskScheduled", "{\"task\":\"A\",\"inputs\":{}}"},
      {"TaskStarted", "{\"task\":\"A\",\"attempt\":1}"},
      {"TaskFailed", "{\"task\":\"A\",\"attempt\":1,\"error\":\"boom\",\"retry\":false}"},
      {"InvocationFailed", "{\"task\":\"A\",\"error\":\"boom\",\"at\":2000}"}},
     0,
     FL_WF_RUN_FAILED,
     "fppp",
     "A"},
    {"the first end decides",
     {{"InvocationCreated", CREATED},
      {"InvocationCanceled", "{\"reason\":\"operator\"}"},
      {"InvocationSucceeded", "{\"output\":1}"},
      {"TaskSucceeded", "{\"task\":\"A\",\"output\":2}"}},
     0,
     FL_WF_RUN_CANCELED,
     "sppp",
     ""},
    {"succeeded",
     {{"InvocationCreated", CREATED},
      {"TaskScheduled", "{\"task\":\"A\",\"inputs\":{}}"},
      {"TaskStarted", "{\"task\":\"A\",\"attempt\":1}"},
      {"TaskSucceeded", "{\"task\":\"A\",\"output\":null}"},
      {"TaskSucceeded", "{\"task\":\"B\",\"output\":null}"},
      {"TaskSucceeded", "{\"task\":\"C\",\"output\":\"c\"}"},
      {"TaskSucceeded", "{\"task\":\"D\",\"output\":\"d\"}"},
      {"InvocationSucceeded", "{\"output\":\"d\",\"at\":9000}"}},
     0,
     FL_WF_RUN_SUCCEEDED,
     "ssss",
     ""},
    {"created twice",
     {{"InvocationCreated", CREATED}, {"InvocationCreated", CREATED}},
     FL_ECORRUPT,
     FL_WF_RUN_RUNNING,
     "pppp",
     ""},
};

/* Fold c's events, as a read of the stream gives them. */
static int fold_case(const struct fold_case *c, struct fl_wf_run *r)
{
    struct fl_record rec[16];
    size_t n = 0;
    for (; n < 16 && c->events[n].type != NULL; n++)
        rec[n] = (struct fl_record){.key = "",
                                    .type = c->events[n].type,
                                    .data = c->events[n].data,
                                    .len = strlen(c->events[n].data),
                                    .headers = "",
                                    .reason = "",
                                    .seq = n + 1};
    fl_wf_run_init(r, ID);
    return fl_wf_run_fold(r, rec, n);
}

TEST(fold_table)
{
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const struct fold_case *c = &cases[k];
        struct fl_wf_run r;
        int rc = fold_case(c, &r);
        if (rc != c->err || r.status != c->status) {
            fl_wf_run_release(&r);
            fprintf(stderr, "case '%s': err %d status %d\n", c->name, rc, (int)r.status);
            ASSERT(0);
        }
        ASSERT_EQ(r.ntasks, strlen(c->tasks));
        for (size_t i = 0; i < r.ntasks; i++) {
            char got = fl_wf_task_status_name(r.tasks[i].status)[0];
            if (got != c->tasks[i]) {
                fprintf(stderr, "case '%s': task %s is %s\n", c->name, r.tasks[i].def->id,
                        fl_wf_task_status_name(r.tasks[i].status));
                ASSERT(0);
            }
        }
        ASSERT_STR_EQ(r.failed_task, c->failed_task);
        fl_wf_run_release(&r);
    }
}

TEST(fold_keeps_what_the_api_shows)
{
    struct fl_wf_run r;
    ASSERT_OK(fold_case(&cases[5], &r)); /* fan-out */
    ASSERT_STR_EQ(r.workflow, "w");
    ASSERT_EQ(r.revision, 7);
    ASSERT_EQ(r.created_ms, 1000);
    ASSERT_STR_EQ(json_string_value(json_object_get(r.inputs, "body")), "hi");
    int b = fl_wf_run_task(&r, "B"), c = fl_wf_run_task(&r, "C"), d = fl_wf_run_task(&r, "D");
    ASSERT_STR_EQ(r.tasks[b].timer, "sleep");
    ASSERT_EQ(r.tasks[b].fire_at, 5000);
    ASSERT_STR_EQ(r.tasks[c].timer, "retry");
    ASSERT_EQ(r.tasks[c].status, FL_WF_TASK_RETRYING);
    ASSERT_EQ(r.tasks[c].attempt, 1);
    ASSERT_EQ(r.tasks[c].def->retry.max_attempts, 3);
    ASSERT_STR_EQ(r.tasks[c].error, "503");
    ASSERT(!fl_wf_run_deps_met(&r, (size_t)d));
    ASSERT(fl_wf_run_deps_met(&r, (size_t)b));
    json_t *j = fl_wf_run_json(&r, true);
    ASSERT(j != NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "status")), "running");
    json_t *tasks = json_object_get(j, "tasks");
    ASSERT_EQ(json_array_size(tasks), 4);
    json_t *a_out = json_object_get(json_array_get(tasks, 0), "output");
    ASSERT_EQ(json_integer_value(json_object_get(a_out, "x")), 1);
    json_decref(j);
    fl_wf_run_release(&r);
}

TEST(fold_a_timer_that_fired)
{
    struct fl_wf_run r;
    ASSERT_OK(fold_case(&cases[5], &r));
    json_t *fired = json_pack("{s:s,s:s}", "task", "B", "timer", "sleep");
    json_t *ok = json_pack("{s:s,s:n}", "task", "B", "output");
    ASSERT_OK(fl_wf_run_apply(&r, "TimerFired", fired));
    ASSERT_OK(fl_wf_run_apply(&r, "TaskSucceeded", ok));
    int b = fl_wf_run_task(&r, "B");
    ASSERT_STR_EQ(r.tasks[b].timer, "");
    ASSERT_EQ(r.tasks[b].status, FL_WF_TASK_SUCCEEDED);
    ASSERT(json_is_null(r.tasks[b].output));
    /* a timer of a kind this file does not describe */
    json_t *bad = json_pack("{s:s,s:s,s:i}", "task", "B", "timer", "alarm", "fireAt", 1);
    ASSERT_EQ(fl_wf_run_apply(&r, "TimerStarted", bad), FL_ECORRUPT);
    json_decref(fired);
    json_decref(ok);
    json_decref(bad);
    fl_wf_run_release(&r);
}

TEST(fold_refuses_a_definition_that_does_not_parse)
{
    struct fl_wf_run r;
    fl_wf_run_init(&r, ID);
    json_t *created = json_loads("{\"workflow\":\"w\",\"definition\":{\"tasks\":7}}", 0, NULL);
    ASSERT_EQ(fl_wf_run_apply(&r, "InvocationCreated", created), FL_ECORRUPT);
    ASSERT(!r.created);
    json_decref(created);
    fl_wf_run_release(&r);
}

/* Fold one event given as JSON text into r: what the fold returns. */
static int apply_text(struct fl_wf_run *r, const char *type, const char *text)
{
    json_t *data = json_loads(text, 0, NULL);
    if (data == NULL)
        return FL_EINVAL;
    int rc = fl_wf_run_apply(r, type, data);
    json_decref(data);
    return rc;
}

/* A new run of CREATED whose task A has started its first attempt: what
 * the fold returns. */
static int fold_a_started(struct fl_wf_run *r)
{
    fl_wf_run_init(r, ID);
    int rc = apply_text(r, "InvocationCreated", CREATED);
    if (rc == 0)
        rc = apply_text(r, "TaskScheduled", "{\"task\":\"A\",\"inputs\":{}}");
    if (rc == 0)
        rc = apply_text(r, "TaskStarted", "{\"task\":\"A\",\"attempt\":1}");
    return rc;
}

TEST(fold_task_added_runs_a_child_to_any_depth)
{
    struct fl_wf_run r;
    ASSERT_OK(fold_a_started(&r));
    /* A's output was a workflow of two tasks, y after x */
    ASSERT_OK(apply_text(&r, "TaskAdded",
                         "{\"task\":\"A\",\"workflow\":{\"output\":\"y\",\"tasks\":{"
                         "\"x\":{\"run\":\"f\"},\"y\":{\"run\":\"f\",\"requires\":[\"x\"]}}}}"));
    ASSERT_EQ(r.ntasks, 6);
    int a = fl_wf_run_task(&r, "A"), x = fl_wf_run_task(&r, "A:1/x"),
        y = fl_wf_run_task(&r, "A:1/y");
    ASSERT(x >= 0 && y >= 0);
    ASSERT_EQ(r.tasks[a].status, FL_WF_TASK_RUNNING); /* until its child ends */
    ASSERT_EQ(r.tasks[a].child, y);
    ASSERT_EQ(r.tasks[x].parent, a);
    ASSERT_EQ(r.tasks[y].scope_len, strlen("A:1/"));
    ASSERT_STR_EQ(r.tasks[y].def->id, "y");
    /* requires name tasks of the added workflow, not the top level */
    ASSERT(fl_wf_run_deps_met(&r, (size_t)x));
    ASSERT(!fl_wf_run_deps_met(&r, (size_t)y));
    ASSERT_OK(apply_text(&r, "TaskScheduled", "{\"task\":\"A:1/x\",\"inputs\":{}}"));
    ASSERT_OK(apply_text(&r, "TaskStarted", "{\"task\":\"A:1/x\",\"attempt\":1}"));
    ASSERT_OK(apply_text(&r, "TaskSucceeded", "{\"task\":\"A:1/x\",\"output\":1}"));
    ASSERT(fl_wf_run_deps_met(&r, (size_t)y));
    /* y's output was a task in turn: A:2/main, named after the root A */
    ASSERT_OK(apply_text(&r, "TaskScheduled", "{\"task\":\"A:1/y\",\"inputs\":{}}"));
    ASSERT_OK(apply_text(&r, "TaskStarted", "{\"task\":\"A:1/y\",\"attempt\":1}"));
    ASSERT_OK(apply_text(&r, "TaskAdded",
                         "{\"task\":\"A:1/y\",\"workflow\":{\"output\":\"main\",\"tasks\":{"
                         "\"main\":{\"run\":\"g\"}}}}"));
    int m = fl_wf_run_task(&r, "A:2/main");
    ASSERT(m >= 0);
    ASSERT_EQ(r.tasks[m].parent, y);
    ASSERT_EQ(r.tasks[y].child, m);
    /* the chain ends: each parent ends as its child did (appended by the
     * engine), and output() of A is the last one's */
    ASSERT_OK(apply_text(&r, "TaskSucceeded", "{\"task\":\"A:2/main\",\"output\":\"leaf\"}"));
    ASSERT_OK(apply_text(&r, "TaskSucceeded", "{\"task\":\"A:1/y\",\"output\":\"leaf\"}"));
    ASSERT_OK(apply_text(&r, "TaskSucceeded", "{\"task\":\"A\",\"output\":\"leaf\"}"));
    ASSERT_STR_EQ(json_string_value(r.tasks[a].output), "leaf");
    /* the API shows the dynamic tasks with their parent */
    json_t *j = fl_wf_run_json(&r, false);
    json_t *last = json_array_get(json_object_get(j, "tasks"), 6);
    ASSERT_STR_EQ(json_string_value(json_object_get(last, "id")), "A:2/main");
    ASSERT_STR_EQ(json_string_value(json_object_get(last, "parent")), "A:1/y");
    json_decref(j);
    fl_wf_run_release(&r);
}

TEST(fold_refuses_a_bad_task_added)
{
    static const char *const bad[] = {
        "{\"task\":\"Z\",\"workflow\":{\"output\":\"m\",\"tasks\":{\"m\":{\"run\":\"f\"}}}}",
        "{\"task\":\"A\",\"workflow\":7}",
        "{\"task\":\"A\",\"workflow\":{\"output\":\"nope\",\"tasks\":{\"m\":{\"run\":\"f\"}}}}",
        "{\"task\":\"A\",\"workflow\":{\"output\":\"m\",\"tasks\":{\"m\":{\"rnu\":\"f\"}}}}",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct fl_wf_run r;
        fl_wf_run_init(&r, ID);
        ASSERT_OK(apply_text(&r, "InvocationCreated", CREATED));
        ASSERT_EQ(apply_text(&r, "TaskAdded", bad[k]), FL_ECORRUPT);
        ASSERT_EQ(r.ntasks, 4); /* nothing added */
        fl_wf_run_release(&r);
    }
    /* a task gets one child */
    struct fl_wf_run r;
    fl_wf_run_init(&r, ID);
    ASSERT_OK(apply_text(&r, "InvocationCreated", CREATED));
    const char *added =
        "{\"task\":\"A\",\"workflow\":{\"output\":\"m\",\"tasks\":{\"m\":{\"run\":\"f\"}}}}";
    ASSERT_OK(apply_text(&r, "TaskAdded", added));
    ASSERT_EQ(apply_text(&r, "TaskAdded", added), FL_ECORRUPT);
    ASSERT_EQ(r.ntasks, 5);
    fl_wf_run_release(&r);
}

/* A catch is added to a task that failed for good: the task runs again
 * until the catch's task ends, and the failure it caught is kept. */
TEST(fold_catch_runs_a_failed_task_again)
{
    struct fl_wf_run r;
    ASSERT_OK(fold_a_started(&r));
    const char *added =
        "{\"task\":\"A\",\"catch\":true,\"workflow\":{\"output\":\"catch\","
        "\"tasks\":{\"catch\":{\"run\":\"noop\",\"inputs\":{\"error\":\"boom\"}}}}}";
    /* not while it runs or retries: only once it failed for good */
    ASSERT_EQ(apply_text(&r, "TaskAdded", added), FL_ECORRUPT);
    ASSERT_OK(apply_text(&r, "TaskFailed",
                         "{\"task\":\"A\",\"attempt\":1,\"error\":\"boom\",\"retry\":true}"));
    ASSERT_EQ(apply_text(&r, "TaskAdded", added), FL_ECORRUPT);
    ASSERT_OK(apply_text(&r, "TaskStarted", "{\"task\":\"A\",\"attempt\":2}"));
    ASSERT_OK(apply_text(&r, "TaskFailed",
                         "{\"task\":\"A\",\"attempt\":2,\"error\":\"boom\",\"retry\":false}"));
    ASSERT_EQ(r.ntasks, 4);
    ASSERT_OK(apply_text(&r, "TaskAdded", added));
    int a = fl_wf_run_task(&r, "A"), c = fl_wf_run_task(&r, "A:1/catch");
    ASSERT(c >= 0);
    ASSERT_EQ(r.tasks[a].status, FL_WF_TASK_RUNNING);
    ASSERT_EQ(r.tasks[a].child, c);
    ASSERT_EQ(r.tasks[c].parent, a);
    ASSERT_STR_EQ(r.tasks[a].caught, "boom");
    /* caught once */
    ASSERT_OK(apply_text(&r, "TaskFailed",
                         "{\"task\":\"A\",\"attempt\":2,\"error\":\"again\",\"retry\":false}"));
    ASSERT_EQ(apply_text(&r, "TaskAdded", added), FL_ECORRUPT);
    ASSERT_EQ(r.ntasks, 5);
    fl_wf_run_release(&r);

    /* the catch succeeds: so does the task, and B and C may start */
    ASSERT_OK(fold_a_started(&r));
    ASSERT_OK(apply_text(&r, "TaskFailed",
                         "{\"task\":\"A\",\"attempt\":1,\"error\":\"boom\",\"retry\":false}"));
    ASSERT_OK(apply_text(&r, "TaskAdded", added));
    ASSERT_OK(apply_text(&r, "TaskSucceeded", "{\"task\":\"A:1/catch\",\"output\":\"fallback\"}"));
    ASSERT_OK(apply_text(&r, "TaskSucceeded", "{\"task\":\"A\",\"output\":\"fallback\"}"));
    a = fl_wf_run_task(&r, "A");
    ASSERT_EQ(r.tasks[a].status, FL_WF_TASK_SUCCEEDED);
    ASSERT(fl_wf_run_deps_met(&r, (size_t)fl_wf_run_task(&r, "B")));
    json_t *j = fl_wf_run_json(&r, false);
    json_t *ja = json_array_get(json_object_get(j, "tasks"), (size_t)a);
    ASSERT_STR_EQ(json_string_value(json_object_get(ja, "caughtError")), "boom");
    ASSERT_STR_EQ(json_string_value(json_object_get(ja, "output")), "fallback");
    json_decref(j);
    fl_wf_run_release(&r);
}

/* A task that runs a workflow: its TaskAdded says so, and the API shows it. */
TEST(fold_task_added_running_a_workflow)
{
    struct fl_wf_run r;
    ASSERT_OK(fold_a_started(&r));
    ASSERT_OK(apply_text(&r, "TaskAdded",
                         "{\"task\":\"A\",\"run\":true,\"name\":\"other\",\"revision\":3,"
                         "\"workflow\":{\"output\":\"o\",\"tasks\":{\"o\":{\"run\":\"f\"}}}}"));
    int a = fl_wf_run_task(&r, "A"), o = fl_wf_run_task(&r, "A:1/o");
    ASSERT(o >= 0 && r.tasks[a].runs_workflow && !r.tasks[o].runs_workflow);
    ASSERT_EQ(r.tasks[a].child, o);
    json_t *j = fl_wf_run_json(&r, false);
    json_t *ja = json_array_get(json_object_get(j, "tasks"), (size_t)a);
    ASSERT(json_is_true(json_object_get(ja, "runsWorkflow")));
    json_decref(j);
    fl_wf_run_release(&r);
}

/* Tasks are found by id through the run's index while it grows: a chain of
 * a thousand dynamic tasks, each added to the last. */
TEST(fold_finds_tasks_by_id_as_the_run_grows)
{
    struct fl_wf_run r;
    ASSERT_OK(fold_a_started(&r));
    char id[64] = "A", data[256];
    for (int k = 1; k <= 1000; k++) {
        snprintf(data, sizeof(data),
                 "{\"task\":\"%s\",\"workflow\":{\"output\":\"m\",\"tasks\":{"
                 "\"x\":{\"run\":\"f\"},\"m\":{\"run\":\"f\",\"requires\":[\"x\"]}}}}",
                 id);
        ASSERT_OK(apply_text(&r, "TaskAdded", data));
        snprintf(id, sizeof(id), "A:%d/m", k);
    }
    ASSERT_EQ(r.ntasks, 4 + 2000);
    for (size_t i = 0; i < r.ntasks; i++)
        ASSERT_EQ(fl_wf_run_task(&r, r.tasks[i].id), (int)i);
    ASSERT_EQ(fl_wf_run_task(&r, "A:1001/m"), -1);
    ASSERT_EQ(fl_wf_run_task(&r, "m"), -1);
    /* requires resolve within their own added workflow */
    int x = fl_wf_run_task(&r, "A:500/x"), m = fl_wf_run_task(&r, "A:500/m");
    ASSERT_EQ(r.tasks[m].requires_at[0], x);
    ASSERT_EQ(fl_wf_run_lookup(&r, (size_t)m, "x"), x);
    ASSERT_EQ(fl_wf_run_lookup(&r, (size_t)m, "B"), fl_wf_run_task(&r, "B"));
    ASSERT(!fl_wf_run_deps_met(&r, (size_t)m));
    ASSERT_OK(apply_text(&r, "TaskSucceeded", "{\"task\":\"A:500/x\",\"output\":1}"));
    ASSERT(fl_wf_run_deps_met(&r, (size_t)m));
    fl_wf_run_release(&r);
}

/* A run of a chain T0 -> ... -> T(n-1) and a Join requiring all of them. */
static void fold_chain_and_join(struct fl_wf_run *r, int n)
{
    json_t *tasks = json_object(), *all = json_array();
    for (int i = 0; i < n; i++) {
        char id[16], prev[16];
        snprintf(id, sizeof(id), "T%d", i);
        snprintf(prev, sizeof(prev), "T%d", i - 1);
        json_object_set_new(tasks, id,
                            i ? json_pack("{s:s,s:[s]}", "run", "f", "requires", prev)
                              : json_pack("{s:s}", "run", "f"));
        json_array_append_new(all, json_string(id));
    }
    json_object_set_new(tasks, "Join", json_pack("{s:s,s:o}", "run", "noop", "requires", all));
    json_t *created = json_pack("{s:s,s:{s:s,s:o}}", "workflow", "w", "definition", "output",
                                "Join", "tasks", tasks);
    fl_wf_run_init(r, ID);
    ASSERT_OK(fl_wf_run_apply(r, "InvocationCreated", created));
    json_decref(created);
}

TEST(deps_met_by_indices_resolved_once)
{
    enum { N = 100 };
    struct fl_wf_run r;
    fold_chain_and_join(&r, N);
    ASSERT_EQ(r.ntasks, N + 1);
    int join = fl_wf_run_task(&r, "Join");
    ASSERT(join >= 0);
    /* each requires resolved to the task of that name */
    for (int i = 1; i < N; i++) {
        char prev[16];
        snprintf(prev, sizeof(prev), "T%d", i - 1);
        const struct fl_wf_task_run *t = &r.tasks[fl_wf_run_task(&r, r.wf.tasks[i].id)];
        ASSERT(t->requires_at != NULL);
        ASSERT_EQ(t->requires_at[0], fl_wf_run_task(&r, prev));
    }
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof(id), "T%d", i);
        ASSERT_EQ(r.tasks[join].requires_at[i], fl_wf_run_task(&r, id));
    }
    /* met exactly when what is required has succeeded, in order */
    for (int i = 0; i < N; i++) {
        char id[16], next[16];
        snprintf(id, sizeof(id), "T%d", i);
        snprintf(next, sizeof(next), "T%d", i + 1);
        ASSERT(fl_wf_run_deps_met(&r, (size_t)fl_wf_run_task(&r, id)));
        ASSERT(!fl_wf_run_deps_met(&r, (size_t)join));
        if (i + 1 < N)
            ASSERT(!fl_wf_run_deps_met(&r, (size_t)fl_wf_run_task(&r, next)));
        json_t *ok = json_pack("{s:s,s:n}", "task", id, "output");
        ASSERT_OK(fl_wf_run_apply(&r, "TaskSucceeded", ok));
        json_decref(ok);
        if (i + 1 < N)
            ASSERT(fl_wf_run_deps_met(&r, (size_t)fl_wf_run_task(&r, next)));
    }
    ASSERT(fl_wf_run_deps_met(&r, (size_t)join));
    /* a name not resolved is looked up, and so is every name without indices */
    r.tasks[join].requires_at[N - 1] = -1;
    ASSERT(fl_wf_run_deps_met(&r, (size_t)join));
    r.tasks[fl_wf_run_task(&r, "T99")].status = FL_WF_TASK_RUNNING;
    ASSERT(!fl_wf_run_deps_met(&r, (size_t)join));
    free(r.tasks[join].requires_at);
    r.tasks[join].requires_at = NULL;
    ASSERT(!fl_wf_run_deps_met(&r, (size_t)join));
    r.tasks[fl_wf_run_task(&r, "T99")].status = FL_WF_TASK_SUCCEEDED;
    ASSERT(fl_wf_run_deps_met(&r, (size_t)join));
    fl_wf_run_release(&r);
}

TEST(headers_are_shown_as_fission_workflows_shows_them)
{
    const struct fl_http_header h[] = {
        {"content-type", 12, "text/plain", 10},
        {"X-FLINT-trigger", 15, "api", 3},
        {"prefix", 6, "a", 1},
        {"Prefix", 6, "b", 1}, /* repeated: the last one */
        {"x--y", 4, "", 0},
    };
    json_t *o = fl_wf_headers_json(h, sizeof(h) / sizeof(h[0]));
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    ASSERT_STR_EQ(text, "{\"Content-Type\":\"text/plain\",\"Prefix\":\"b\","
                        "\"X--Y\":\"\",\"X-Flint-Trigger\":\"api\"}");
    free(text);
    /* looked up without regard to case, as events written in lower case are */
    ASSERT_STR_EQ(fl_wf_header_get(o, "content-type"), "text/plain");
    ASSERT(fl_wf_header_get(o, "Date") == NULL);
    json_decref(o);
}
