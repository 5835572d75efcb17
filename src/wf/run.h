/*
 * A workflow invocation's state: the fold of its event stream "wf/<id>".
 * Pure (no loop, no store, no global state): the engine folds events into
 * it as it appends them and when it replays a stream after a restart, the
 * API folds a stream to show it, and the unit tests fold tables of events.
 *
 * Events (type: data; every one carries "at", the wall-clock ms when it
 * was decided, so a fold made while appending and one made by replay
 * agree):
 *
 *   InvocationCreated   {"workflow", "revision", "definition": the workflow's
 *                        spec as it was (the invocation runs this copy,
 *                        whatever updates come later), "inputs": {"body",
 *                        "default", "headers", "query", "method"}, "trigger"}
 *   TaskScheduled       {"task", "inputs"}: its dependencies are met; the
 *                        inputs it runs with (every attempt uses them)
 *   TaskStarted         {"task", "attempt"}: an attempt is made (a function
 *                        called with the idempotency key "<id>/<task>/<attempt>")
 *   TaskSucceeded       {"task", "output", "headers"}
 *   TaskFailed          {"task", "attempt", "error", "retry": whether another
 *                        attempt follows (after a "retry" timer)}
 *   TaskAdded           {"task", "workflow"}: task's output was a task or a
 *                        workflow (a dynamic task): "workflow" is it as a
 *                        workflow spec (a task T becomes {"output": "main",
 *                        "tasks": {"main": T}}). Its tasks join the run as
 *                        "<root>:<n>/<id>", root the top-level task the
 *                        chain started from and n the count of TaskAdded so
 *                        far (1, 2, ...); their requires name tasks of the
 *                        same added workflow. The task stays running until
 *                        the added workflow's output task ends, then ends
 *                        as it did (the engine appends that TaskSucceeded or
 *                        TaskFailed); a chain of them nests to any depth
 *                        and output() of the task is the last one's.
                        With "catch": true, the workflow is the task's
                        catch (docs/api.md, "catch"), added once the task
                        failed for good: the task runs again (status
                        running) until the catch's task ends, and ends as
                        it did; the failure it caught stays in caughtError.
                        With "run": true, the workflow is the definition of
                        the workflow the task runs ("name", "revision": the
                        one current when it started, pinned here): its
                        tasks see the task's inputs as the invocation's.
 *   TimerStarted        {"task", "timer": "sleep" | "retry", "fireAt": ms}
 *   TimerFired          {"task", "timer"}
 *   InvocationSucceeded {"output", "headers"}
 *   InvocationFailed    {"task", "error"} (task: "" when no task is to blame,
 *                        e.g. the workflow's timeout)
 *   InvocationCanceled  {"reason"}
 *
 * The first event that ends the invocation decides its status; events for
 * tasks after it are folded (a call that answered late) but change nothing
 * of the invocation's status.
 */
#ifndef FLINT_WF_RUN_H
#define FLINT_WF_RUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/id.h"
#include "exec/spec.h"
#include "store/store.h"
#include "wf/wf.h"

#define FL_WF_STREAM_PREFIX "wf/"
#define FL_WF_STREAM_MAX    (sizeof(FL_WF_STREAM_PREFIX) + FL_UUID_STRLEN)

enum fl_wf_task_status {
    FL_WF_TASK_PENDING,   /* waiting for its dependencies */
    FL_WF_TASK_SCHEDULED, /* dependencies met, no attempt started yet */
    FL_WF_TASK_RUNNING,   /* an attempt started and has no outcome (or sleeps) */
    FL_WF_TASK_RETRYING,  /* failed, another attempt after its retry timer */
    FL_WF_TASK_SUCCEEDED,
    FL_WF_TASK_FAILED, /* for good */
    FL_WF_TASK_NSTATUS
};

enum fl_wf_run_status {
    FL_WF_RUN_RUNNING,
    FL_WF_RUN_SUCCEEDED,
    FL_WF_RUN_FAILED,
    FL_WF_RUN_CANCELED,
    FL_WF_RUN_NSTATUS
};

/* "pending", ... / "running", ...; the status of a name or -1. */
const char *fl_wf_task_status_name(enum fl_wf_task_status s);
const char *fl_wf_run_status_name(enum fl_wf_run_status s);
int fl_wf_run_status_parse(const char *name);

/* Tasks of one run, dynamic ones included, at most. */
#define FL_WF_RUN_MAX_TASKS 20000

struct fl_wf_task_run {
    const struct fl_wf_task *def; /* in the run's definition, or an added workflow */
    char *id;                     /* owned: "A", or "A:1/main" for a dynamic task */
    size_t scope_len;             /* bytes of id before its own ("A:1/"); 0: top level */
    int parent;                   /* the task whose added workflow this is part of; -1 */
    int child;                    /* the output task of the workflow added for it; -1 */
    enum fl_wf_task_status status;
    uint32_t attempt;   /* the latest attempt started (0: none) */
    json_t *inputs;     /* owned: as scheduled; NULL before */
    json_t *output;     /* owned: NULL until it succeeded (JSON null is a value) */
    json_t *headers;    /* owned: the output's headers, or NULL */
    char *error;        /* owned: the last failure's message, or NULL */
    char *caught;       /* owned: the failure its catch was added for, or NULL (none) */
    bool runs_workflow; /* its child is the output task of a workflow it runs */
    int64_t scheduled_ms, started_ms, ended_ms;
    char timer[8];   /* "sleep", "retry": a timer started and not fired; "" none */
    int64_t fire_at; /* when that timer fires (wall ms) */
    /* owned: for each of def->requires, the index of that task in the run,
     * resolved once when the run is made (-1: no task by that name then);
     * NULL: none resolved (no memory for it), each looked up by name */
    int *requires_at;
};

struct fl_wf_run {
    char id[FL_UUID_STRLEN + 1];
    char workflow[FL_NAME_MAX + 1];
    uint64_t revision;
    json_t *definition; /* owned: the pinned definition */
    struct fl_wf wf;    /* parsed from it */
    json_t *inputs;     /* owned */
    char trigger[32];
    enum fl_wf_run_status status;
    json_t *output;  /* owned: the output task's output once succeeded */
    json_t *headers; /* owned: its headers */
    char *error;     /* owned: why it failed or was canceled */
    char failed_task[FL_WF_ID_MAX + 1];
    int64_t created_ms, ended_ms;
    struct fl_wf_task_run *tasks; /* the definition's top level, then dynamic ones */
    size_t ntasks, cap;
    /* owned: an open-addressing index of tasks by id (index + 1; 0 empty),
     * index_cap slots (a power of two, at least twice ntasks), so that
     * folding an event finds its task in O(1), not by comparing every id;
     * NULL: no memory for it, ids are compared */
    uint32_t *index;
    size_t index_cap;
    struct fl_wf **added; /* owned: the workflows of TaskAdded, in order */
    size_t nadded;
    uint64_t events; /* events folded */
    bool created;    /* InvocationCreated was folded */
};

void fl_wf_run_init(struct fl_wf_run *r, const char *id);
void fl_wf_run_release(struct fl_wf_run *r);

/*
 * Fold one event (type, its data as a JSON value, borrowed) into r. 0,
 * FL_ECORRUPT (an event this file does not describe, or one about a task
 * the run does not have, or anything before InvocationCreated: r is left
 * as it was), or FL_ENOMEM.
 */
int fl_wf_run_apply(struct fl_wf_run *r, const char *type, json_t *data);

/* Fold n records of a read of "wf/<id>" (their type and data). Stops at
 * the first error and returns it. */
int fl_wf_run_fold(struct fl_wf_run *r, const struct fl_record *events, size_t n);

/* The index of the task id names in the expressions of task from: a task
 * of from's own added workflow by its id there, else a top-level task; or
 * -1. */
int fl_wf_run_lookup(const struct fl_wf_run *r, size_t from, const char *id);

/* The index of task id in r, or -1. */
int fl_wf_run_task(const struct fl_wf_run *r, const char *id);

/* Whether every task task i requires (in its own workflow) has succeeded:
 * O(its requires), by the indices resolved when the task was added (a name
 * not resolved then is looked up). */
bool fl_wf_run_deps_met(const struct fl_wf_run *r, size_t i);

/* Whether the invocation has ended. */
static inline bool fl_wf_run_ended(const struct fl_wf_run *r)
{
    return r->status != FL_WF_RUN_RUNNING;
}

/* The API's form of r: {id, workflow, revision, status, createdAt,
 * endedAt, durationMs, output, error, failedTask, inputs (detail),
 * tasks: [{id, run, status, attempts, parent (dynamic ones), inputs (detail), output, error,
 * scheduledAt, startedAt, endedAt, durationMs, timer}]}. A new value, or
 * NULL. */
json_t *fl_wf_run_json(const struct fl_wf_run *r, bool detail);

/* "wf/<id>" into out. */
void fl_wf_stream_name(char out[FL_WF_STREAM_MAX], const char *id);

#endif
