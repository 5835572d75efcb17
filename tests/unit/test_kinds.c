/*
 * Unit tests for src/kinds: the registry's table (every row whole, the
 * order of dependencies, lookups, checks, references) and flintd's
 * followers of every kind on a real SQLite store, where a status stored
 * apart from a resource never reaches the part that runs the kind nor
 * changes the resource's revision.
 */
#include "runner.h"

#include "base/error.h"
#include "kinds/follow.h"
#include "kinds/kinds.h"
#include "store/store.h"

TEST(every_kind_has_a_whole_row)
{
    ASSERT(fl_nkinds >= 3);
    for (size_t i = 0; i < fl_nkinds; i++) {
        const struct fl_kind *k = fl_kinds[i];
        ASSERT(k->name != NULL && k->plural != NULL && k->word != NULL && k->noun != NULL);
        ASSERT(k->create_usage != NULL && k->update_usage != NULL && k->check != NULL);
        ASSERT(k->status != NULL);
        ASSERT(k->columns[0].title != NULL && strcmp(k->columns[0].path, "name") == 0);
        ASSERT_EQ(fl_kind_index(k), (int)i);
        ASSERT(fl_kind_find(k->name) == k);
        ASSERT(fl_kind_by_plural(k->plural) == k);
        ASSERT(fl_kind_by_word(k->word) == k);
        /* names, plurals and words are unique across kinds */
        for (size_t j = 0; j < i; j++) {
            ASSERT(strcmp(fl_kinds[j]->name, k->name) != 0);
            ASSERT(strcmp(fl_kinds[j]->plural, k->plural) != 0);
            ASSERT(strcmp(fl_kinds[j]->word, k->word) != 0);
        }
        /* flags are unique within a kind */
        for (size_t f = 0; f < FL_KIND_MAX_FLAGS && k->flags[f].name != NULL; f++)
            for (size_t g = 0; g < f; g++)
                ASSERT(strcmp(k->flags[f].name, k->flags[g].name) != 0);
    }
    ASSERT(fl_kind_find("gadget") == NULL && fl_kind_find(NULL) == NULL);
    ASSERT(fl_kind_by_word("function") == NULL); /* the CLI's word is "fn" */
    ASSERT_STR_EQ(fl_kind_names(), "environment, function, workflow, timetrigger, route or "
                                   "messagequeuetrigger");
}

TEST(a_kind_comes_after_every_kind_it_refers_to)
{
    for (size_t i = 0; i < fl_nkinds; i++) {
        const struct fl_kind *k = fl_kinds[i];
        for (const struct fl_kind_ref *r = k->refs; r->field != NULL; r++) {
            const struct fl_kind *to = fl_kind_find(r->kind);
            /* a reference to a kind not registered yet (a workflow) is
             * not checked by the API */
            if (to != NULL)
                ASSERT(fl_kind_index(to) < (int)i);
        }
    }
}

TEST(references_are_read_from_the_spec)
{
    json_t *fn = json_pack("{s:s}", "environment", "python");
    json_t *route = json_pack("{s:s, s:{s:s}}", "path", "/x", "target", "function", "hello");
    json_t *to_workflow = json_pack("{s:s, s:{s:s}}", "path", "/x", "target", "workflow", "w");
    ASSERT_STR_EQ(fl_kind_ref_name(&fl_kind_function.refs[0], fn), "python");
    ASSERT(fl_kind_function.refs[0].blocks_delete);
    ASSERT_STR_EQ(fl_kind_ref_name(&fl_kind_route.refs[0], route), "hello");
    ASSERT(!fl_kind_route.refs[0].blocks_delete);
    ASSERT(fl_kind_ref_name(&fl_kind_route.refs[0], to_workflow) == NULL);
    ASSERT_STR_EQ(fl_kind_ref_name(&fl_kind_route.refs[1], to_workflow), "w");
    ASSERT(fl_kind_environment.refs[0].field == NULL);
    json_decref(fn);
    json_decref(route);
    json_decref(to_workflow);
}

/* A function "fortune" and a workflow "echowhale" exist. */
static const char *resolve_name(void *data, const char *name)
{
    ++*(int *)data;
    if (strcmp(name, "fortune") == 0)
        return "function";
    return strcmp(name, "echowhale") == 0 ? "workflow" : NULL;
}

TEST(a_workflow_names_its_tasks_functions_and_workflows)
{
    json_t *wf = json_pack("{s:s, s:{s:{s:s}, s:{s:s, s:[s]}, s:{s:s, s:{s:{s:s}}}}}", "output",
                           "B", "tasks", "A", "run", "fortune", "B", "run", "echowhale", "requires",
                           "A", "C", "run", "if", "inputs", "then", "run", "whalesay");
    struct fl_buf err;
    fl_buf_init(&err, 4096);
    /* offline: names are not looked up */
    ASSERT_OK(fl_kind_workflow.check(wf, NULL, &err));
    int asked = 0;
    const struct fl_kind_check_ctx ctx = {.resolve = resolve_name, .data = &asked};
    ASSERT_EQ(fl_kind_workflow.check(wf, &ctx, &err), FL_EINVAL);
    ASSERT_EQ(asked, 3);
    ASSERT_STR_EQ(err.data, "spec: 1 error: tasks.C.inputs.then.run: 'whalesay' is not a "
                            "built-in, a function or a workflow");
    /* the functions it runs may not be deleted; workflows and others are not held */
    ASSERT(fl_kind_names_block(&fl_kind_workflow, wf, "function", "fortune"));
    ASSERT(fl_kind_names_block(&fl_kind_workflow, wf, "function", "whalesay"));
    ASSERT(!fl_kind_names_block(&fl_kind_workflow, wf, "function", "if"));
    ASSERT(!fl_kind_names_block(&fl_kind_workflow, wf, "workflow", "echowhale"));
    ASSERT(!fl_kind_names_block(&fl_kind_route, wf, "function", "fortune"));
    fl_buf_release(&err);
    json_decref(wf);
}

static bool no_code(void *data, const char *sha)
{
    ++*(int *)data;
    return false;
}

TEST(checks_are_the_kinds_own_parsers)
{
    struct fl_buf err;
    fl_buf_init(&err, 1024);
    json_t *env = json_pack("{s:s}", "runtime", "cobol");
    ASSERT_EQ(fl_kind_environment.check(env, NULL, &err), FL_EINVAL);
    ASSERT(strstr(err.data, "spec.runtime: must be c, binary, python, node or custom") != NULL);
    json_object_set_new(env, "runtime", json_string("python"));
    ASSERT_OK(fl_kind_environment.check(env, NULL, &err));

    char sha[65];
    memset(sha, 'a', 64);
    sha[64] = '\0';
    json_t *fn = json_pack("{s:s, s:{s:s, s:s}}", "environment", "python", "code", "sha256", sha,
                           "filename", "f.py");
    ASSERT_OK(fl_kind_function.check(fn, NULL, &err)); /* no context: code not looked up */
    int asked = 0;
    const struct fl_kind_check_ctx ctx = {.has_code = no_code, .data = &asked};
    fl_buf_reset(&err);
    ASSERT_EQ(fl_kind_function.check(fn, &ctx, &err), FL_EINVAL);
    ASSERT_EQ(asked, 1);
    ASSERT(strstr(err.data, "upload it with POST /v1/code first") != NULL);

    json_t *route = json_pack("{s:s, s:{s:s}}", "path", "x", "target", "function", "f");
    fl_buf_reset(&err);
    ASSERT_EQ(fl_kind_route.check(route, NULL, &err), FL_EINVAL);
    ASSERT(strstr(err.data, "spec.path: must start with '/'") != NULL);
    json_decref(env);
    json_decref(fn);
    json_decref(route);
    fl_buf_release(&err);
}

/* Set the dotted path below spec to v (stolen), making objects on the way. */
static void set_path(json_t *spec, const char *path, json_t *v)
{
    char part[64];
    const char *dot = strchr(path, '.');
    if (dot == NULL) {
        json_object_set_new(spec, path, v);
        return;
    }
    snprintf(part, sizeof(part), "%.*s", (int)(dot - path), path);
    json_t *inner = json_object_get(spec, part);
    if (!json_is_object(inner)) {
        inner = json_object();
        json_object_set_new(spec, part, inner);
    }
    set_path(inner, dot + 1, v);
}

TEST(every_flag_sets_a_field_its_kind_knows)
{
    char sha[65];
    memset(sha, 'a', 64);
    sha[64] = '\0';
    struct fl_buf err;
    fl_buf_init(&err, 1024);
    for (size_t i = 0; i < fl_nkinds; i++) {
        const struct fl_kind *k = fl_kinds[i];
        for (size_t f = 0; f < FL_KIND_MAX_FLAGS && k->flags[f].name != NULL; f++) {
            const struct fl_kind_flag *flag = &k->flags[f];
            /* a valid spec of every kind, then the flag's field with a value of its type */
            json_t *spec = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s}}", "runtime", "c",
                                     "environment", "c", "code", "sha256", sha, "filename", "f.c",
                                     "path", "/x", "target", "function", "f");
            if (k == &fl_kind_environment)
                json_object_clear(spec), json_object_set_new(spec, "runtime", json_string("c"));
            else if (k == &fl_kind_function)
                json_object_del(spec, "runtime"), json_object_del(spec, "path"),
                    json_object_del(spec, "target");
            else if (k == &fl_kind_timetrigger)
                json_object_clear(spec), json_object_set_new(spec, "cron", json_string("@hourly")),
                    set_path(spec, "target", json_pack("{s:s}", "function", "f"));
            else
                json_object_del(spec, "runtime"), json_object_del(spec, "environment"),
                    json_object_del(spec, "code");
            if (k == &fl_kind_workflow)
                json_decref(spec), spec = json_pack("{s:s, s:{s:{}}}", "output", "A", "tasks", "A");
            if (k == &fl_kind_messagequeuetrigger) /* a topic where a route has its path */
                json_object_del(spec, "path"), json_object_set_new(spec, "topic", json_string("t"));
            ASSERT_OK(k->check(spec, NULL, &err));
            json_t *v = NULL;
            switch (flag->type) {
            case FL_FLAG_STRING:
                v = json_string("2s");
                break;
            case FL_FLAG_INT:
                v = json_integer(2);
                break;
            case FL_FLAG_NUMBER:
                v = json_real(0.5);
                break;
            case FL_FLAG_BOOL:
            case FL_FLAG_SWITCH:
                v = json_true();
                break;
            case FL_FLAG_LIST:
                v = json_pack("[s]", "GET");
                break;
            case FL_FLAG_NAMES:
                v = json_pack("[s]", "orders");
                break;
            case FL_FLAG_ENVVAR:
                v = json_pack("{s:s}", "A", "b");
                break;
            case FL_FLAG_CODE:
                v = json_pack("{s:s, s:s}", "sha256", sha, "filename", "g.c");
                break;
            case FL_FLAG_PATH:
                json_object_del(spec, "path");
                v = json_string("/y");
                break;
            case FL_FLAG_TARGET:
                v = json_pack("{s:s}", flag->field, "g");
                break;
            case FL_FLAG_SPEC: /* the whole spec: the valid one above */
                break;
            }
            if (v != NULL)
                set_path(spec, flag->type == FL_FLAG_TARGET ? "target" : flag->field, v);
            fl_buf_reset(&err);
            /* the value may be refused for its own sake ("2s" is no environment name),
             * never the field for being unknown */
            if (k->check(spec, NULL, &err) < 0 && strstr(err.data, "is not a") != NULL)
                fl_test_fail(__FILE__, __LINE__, "%s %s: %s", k->word, flag->name, err.data);
            json_decref(spec);
        }
    }
    fl_buf_release(&err);
}

TEST(resource_fields_are_known)
{
    const char *known[] = {"name", "spec", "revision", "kind", "status", "createdAt", "updatedAt"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        ASSERT(fl_kind_field_known(known[i]));
    ASSERT(!fl_kind_field_known("spce"));
    ASSERT(!fl_kind_field_known("Spec"));
    ASSERT(!fl_kind_field_known(""));
}

TEST(lookup_walks_dotted_paths)
{
    json_t *v = json_pack("{s:{s:{s:i}}}", "spec", "limits", "cpus", 2);
    ASSERT_EQ(json_integer_value(fl_kind_lookup(v, "spec.limits.cpus")), 2);
    ASSERT(fl_kind_lookup(v, "spec.limits.memory") == NULL);
    ASSERT(fl_kind_lookup(v, "spec.limits.cpus.more") == NULL);
    ASSERT(fl_kind_lookup(v, "") == v);
    json_decref(v);
}

/* ---- the followers, on a real store ---- */

struct world {
    uv_loop_t loop;
    struct fl_store *store;
    struct fl_kind_followers *followers;
    int applied; /* applied() calls */
    char last[128];
    int done;
};

static void on_applied(void *data, const char *kind, const char *name)
{
    struct world *w = data;
    w->applied++;
    snprintf(w->last, sizeof(w->last), "%s/%s", kind, name);
}

static void on_done(int err, const struct fl_store_result *res, void *data)
{
    struct world *w = data;
    ASSERT_OK(err);
    w->done = (int)res->seq;
}

/* Put value as kind/name and wait: the new revision. */
static uint64_t put(struct world *w, const char *kind, const char *name, const char *value)
{
    w->done = 0;
    ASSERT_OK(fl_store_put(w->store, kind, name, value, strlen(value), FL_REV_ANY, on_done, w));
    while (w->done == 0)
        uv_run(&w->loop, UV_RUN_ONCE);
    return (uint64_t)w->done;
}

static void on_got(int err, const struct fl_store_result *res, void *data)
{
    struct world *w = data;
    ASSERT_OK(err);
    w->done = (int)res->records[0].seq;
}

/* The revision kind/name is at in the store. */
static uint64_t revision_of(struct world *w, const char *kind, const char *name)
{
    w->done = 0;
    ASSERT_OK(fl_store_get(w->store, kind, name, on_got, w));
    while (w->done == 0)
        uv_run(&w->loop, UV_RUN_ONCE);
    return (uint64_t)w->done;
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    ASSERT_OK(uv_loop_init(&w->loop));
    char err[512], uri[4200];
    snprintf(uri, sizeof(uri), "sqlite:%s", fl_test_tmpdir());
    ASSERT_OK(fl_store_open(&w->loop, uri, NULL, &w->store, err, sizeof(err)));
}

static void closed(void *data)
{
    *(bool *)data = true;
}

static void world_release(struct world *w)
{
    fl_kind_followers_free(w->followers);
    bool done = false;
    fl_store_close(w->store, closed, &done);
    while (!done)
        uv_run(&w->loop, UV_RUN_ONCE);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ASSERT_OK(uv_loop_close(&w->loop));
}

TEST(followers_apply_every_kind_and_never_see_a_status_stored_apart)
{
    struct world w;
    world_init(&w);
    uint64_t env_rev = put(&w, "environment", "python", "{\"spec\":{\"runtime\":\"python\"}}");
    /* no parts: revisions are followed, nothing is fed, no status */
    const struct fl_kind_parts none = {0};
    ASSERT_OK(fl_kind_followers_new(w.store, &none, on_applied, &w, &w.followers));
    WAIT_UNTIL(fl_kind_followers_synced(w.followers), 10, uv_run(&w.loop, UV_RUN_NOWAIT));
    ASSERT(fl_kind_followers_applied(w.followers, "environment", "python", env_rev));
    ASSERT(!fl_kind_followers_applied(w.followers, "function", "hello", 1));
    ASSERT(fl_kind_followers_applied(w.followers, "gadget", "x", 5)); /* nobody follows it */
    ASSERT(fl_kind_followers_status(w.followers, "function", "hello", true) == NULL);

    uint64_t fn_rev = put(&w, "function", "hello", "{\"spec\":{\"environment\":\"python\"}}");
    WAIT_UNTIL(fl_kind_followers_applied(w.followers, "function", "hello", fn_rev), 10,
               uv_run(&w.loop, UV_RUN_NOWAIT));
    ASSERT_STR_EQ(w.last, "function/hello");
    int applied = w.applied;

    /* what Flint observes, stored apart: the follower of functions does not
     * see it, and the function's revision stays */
    uint64_t status_rev = put(&w, "function.status", "hello", "{\"build\":\"ok\",\"instances\":3}");
    ASSERT(status_rev > fn_rev);
    /* a later change of the spec's kind is seen: the status one before it
     * was passed over, not still on its way */
    uint64_t route_rev =
        put(&w, "route", "r", "{\"spec\":{\"path\":\"/r\",\"target\":{\"function\":\"hello\"}}}");
    WAIT_UNTIL(fl_kind_followers_applied(w.followers, "route", "r", route_rev), 10,
               uv_run(&w.loop, UV_RUN_NOWAIT));
    ASSERT_EQ(w.applied, applied + 1);
    ASSERT_STR_EQ(w.last, "route/r");
    ASSERT_EQ(revision_of(&w, "function", "hello"), fn_rev);
    ASSERT(fl_kind_followers_applied(w.followers, "function", "hello", fn_rev));
    ASSERT(!fl_kind_followers_applied(w.followers, "function", "hello", status_rev));
    world_release(&w);
}
