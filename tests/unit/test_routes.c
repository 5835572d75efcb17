/* Unit tests for src/router/routes: route specs, specificity, matching. */
#include "runner.h"

#include "base/error.h"
#include "router/routes.h"

static struct fl_buf err;

static void put(struct fl_route_table *t, const char *name, const char *spec_json)
{
    json_t *spec = json_loads(spec_json, 0, NULL);
    ASSERT(spec != NULL);
    fl_buf_init(&err, 1024);
    int rc = fl_route_table_put(t, name, spec, &err);
    if (rc != 0)
        fl_test_fail(__FILE__, __LINE__, "put %s: %s", name, err.data);
    fl_buf_release(&err);
    json_decref(spec);
}

static const char *match(struct fl_route_table *t, const char *method, const char *path,
                         struct fl_route_match *m)
{
    int rc = fl_route_table_match(t, method, path, strlen(path), m);
    if (rc == FL_ENOENT)
        return "404";
    if (rc == FL_EACCES)
        return "405";
    if (rc == FL_ETOOBIG)
        return "414";
    if (rc == FL_EINVAL)
        return "400";
    ASSERT_EQ(rc, 0);
    return m->route->name;
}

static void expect_invalid(const char *spec_json, const char *message)
{
    json_t *spec = json_loads(spec_json, 0, NULL);
    ASSERT(spec != NULL);
    fl_buf_init(&err, 1024);
    ASSERT_EQ(fl_route_spec_check(spec, &err), FL_EINVAL);
    if (strstr(err.data, message) == NULL)
        fl_test_fail(__FILE__, __LINE__, "'%s' does not contain '%s'", err.data, message);
    fl_buf_release(&err);
    json_decref(spec);
}

TEST(exact_paths_and_parameters)
{
    struct fl_route_table *t = fl_route_table_new();
    struct fl_route_match m;
    put(t, "user", "{\"path\": \"/users/{id}\", \"target\": {\"function\": \"get-user\"}}");
    put(t, "orders",
        "{\"path\": \"/users/{id}/orders/{order}\", \"target\": {\"function\": \"o\"}}");
    put(t, "root", "{\"path\": \"/\", \"target\": {\"function\": \"home\"}}");
    ASSERT_STR_EQ(match(t, "GET", "/users/42", &m), "user");
    ASSERT_EQ(m.nparams, 1);
    ASSERT_STR_EQ(m.params[0].name, "id");
    ASSERT_STR_EQ(m.params[0].value, "42");
    ASSERT_STR_EQ(m.route->target_name, "get-user");
    ASSERT_STR_EQ(match(t, "POST", "/users/a%20b/orders/7", &m), "orders");
    ASSERT_EQ(m.nparams, 2);
    ASSERT_STR_EQ(m.params[0].value, "a b");
    ASSERT_STR_EQ(m.params[1].name, "order");
    ASSERT_STR_EQ(m.params[1].value, "7");
    ASSERT_STR_EQ(match(t, "GET", "/", &m), "root");
    ASSERT_STR_EQ(match(t, "GET", "/users", &m), "404");
    ASSERT_STR_EQ(match(t, "GET", "/users/42/", &m), "404"); /* exact means exact */
    ASSERT_STR_EQ(match(t, "GET", "/users/42/orders", &m), "404");
    fl_route_table_free(t);
}

TEST(more_specific_routes_win_whatever_the_order)
{
    const char *specs[][2] = {
        {"any", "{\"prefix\": \"/\", \"target\": {\"function\": \"any\"}}"},
        {"api", "{\"prefix\": \"/api/\", \"target\": {\"function\": \"api\"}}"},
        {"api-v2", "{\"prefix\": \"/api/v2\", \"target\": {\"function\": \"v2\"}}"},
        {"param", "{\"path\": \"/api/{x}/items\", \"target\": {\"function\": \"p\"}}"},
        {"literal", "{\"path\": \"/api/v2/items\", \"target\": {\"function\": \"l\"}}"},
        {"late-param", "{\"path\": \"/api/v2/{y}\", \"target\": {\"function\": \"lp\"}}"},
    };
    /* Insert in two different orders: the outcome must be the same. */
    for (int order = 0; order < 2; order++) {
        struct fl_route_table *t = fl_route_table_new();
        struct fl_route_match m;
        for (int i = 0; i < 6; i++) {
            int k = order ? 5 - i : i;
            put(t, specs[k][0], specs[k][1]);
        }
        ASSERT_STR_EQ(match(t, "GET", "/api/v2/items", &m), "literal");
        ASSERT_STR_EQ(match(t, "GET", "/api/v1/items", &m), "param");
        ASSERT_STR_EQ(match(t, "GET", "/api/v2/other", &m), "late-param");
        ASSERT_STR_EQ(match(t, "GET", "/api/v2/a/b", &m), "api-v2");
        ASSERT_STR_EQ(match(t, "GET", "/api/v2", &m), "api-v2");
        ASSERT_STR_EQ(match(t, "GET", "/api/v20", &m), "api"); /* not a segment boundary */
        ASSERT_STR_EQ(match(t, "GET", "/api", &m), "api");
        ASSERT_STR_EQ(match(t, "GET", "/apix", &m), "any");
        ASSERT_STR_EQ(match(t, "GET", "/", &m), "any");
        fl_route_table_free(t);
    }
}

/* Every order of arrival of these routes must give the same winners. */
static const char *const arrival[][2] = {
    {"b", "{\"path\": \"/x\", \"target\": {\"function\": \"f\"}}"},
    {"c", "{\"path\": \"/x/y\", \"target\": {\"function\": \"f\"}}"},
    {"a", "{\"path\": \"/x/{p}\", \"target\": {\"function\": \"f\"}}"},
    {"d", "{\"path\": \"/{q}/y\", \"target\": {\"function\": \"f\"}}"},
    {"e", "{\"path\": \"/{q}\", \"target\": {\"function\": \"f\"}}"},
    {"f", "{\"prefix\": \"/x\", \"target\": {\"function\": \"f\"}}"},
};
#define NARRIVAL (sizeof(arrival) / sizeof(arrival[0]))

static void check_winners(const size_t *order)
{
    struct fl_route_table *t = fl_route_table_new();
    struct fl_route_match m;
    for (size_t i = 0; i < NARRIVAL; i++)
        put(t, arrival[order[i]][0], arrival[order[i]][1]);
    const char *const want[][2] = {{"/x/y", "c"}, {"/x/z", "a"},   {"/w/y", "d"},  {"/x", "b"},
                                   {"/w", "e"},   {"/x/z/k", "f"}, {"/w/z", "404"}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *got = match(t, "GET", want[i][0], &m);
        if (strcmp(got, want[i][1]) != 0)
            fl_test_fail(__FILE__, __LINE__, "%s went to %s, not %s (arrival %zu%zu%zu%zu%zu%zu)",
                         want[i][0], got, want[i][1], order[0], order[1], order[2], order[3],
                         order[4], order[5]);
    }
    fl_route_table_free(t);
}

static void permute(size_t *order, size_t k)
{
    if (k == NARRIVAL) {
        check_winners(order);
        return;
    }
    for (size_t i = k; i < NARRIVAL; i++) {
        size_t tmp = order[k];
        order[k] = order[i], order[i] = tmp;
        permute(order, k + 1);
        order[i] = order[k], order[k] = tmp;
    }
}

TEST(the_winner_does_not_depend_on_the_order_routes_arrive)
{
    size_t order[NARRIVAL];
    for (size_t i = 0; i < NARRIVAL; i++)
        order[i] = i;
    permute(order, 0); /* all 720 orders */
}

TEST(parameters_that_decode_to_control_characters_are_refused)
{
    struct fl_route_table *t = fl_route_table_new();
    struct fl_route_match m;
    put(t, "p", "{\"path\": \"/p/{v}\", \"target\": {\"function\": \"f\"}}");
    ASSERT_STR_EQ(match(t, "GET", "/p/a%20b%2Fc%C3%A9", &m), "p");
    ASSERT_STR_EQ(m.params[0].value, "a b/c\xc3\xa9");
    ASSERT_STR_EQ(match(t, "GET", "/p/a%0D%0AX-Evil:%201", &m), "400");
    ASSERT_STR_EQ(match(t, "GET", "/p/a%00b", &m), "400");
    ASSERT_STR_EQ(match(t, "GET", "/p/%7f", &m), "400");
    ASSERT_STR_EQ(match(t, "GET", "/p/%zz%4", &m), "p"); /* not escapes: kept as they are */
    ASSERT_STR_EQ(m.params[0].value, "%zz%4");
    fl_route_table_free(t);
}

TEST(methods_are_matched_and_mismatches_reported)
{
    struct fl_route_table *t = fl_route_table_new();
    struct fl_route_match m;
    char allowed[64];
    put(t, "read",
        "{\"path\": \"/items\", \"methods\": [\"GET\"], \"target\": {\"function\": \"r\"}}");
    put(t, "write",
        "{\"path\": \"/items\", \"methods\": [\"post\", \"PUT\"], \"target\": {\"function\": "
        "\"w\"}}");
    put(t, "fallback", "{\"prefix\": \"/files\", \"target\": {\"function\": \"f\"}}");
    put(t, "files-get",
        "{\"path\": \"/files/{name}\", \"methods\": [\"GET\"], \"target\": {\"function\": \"g\"}}");
    ASSERT_STR_EQ(match(t, "GET", "/items", &m), "read");
    ASSERT_STR_EQ(match(t, "HEAD", "/items", &m), "read");
    ASSERT_STR_EQ(match(t, "POST", "/items", &m), "write");
    ASSERT_STR_EQ(match(t, "PUT", "/items", &m), "write");
    ASSERT_STR_EQ(match(t, "DELETE", "/items", &m), "405");
    ASSERT_STR_EQ(fl_route_methods_format(m.allowed, allowed, sizeof(allowed)), "GET, POST, PUT");
    /* a less specific route that takes the method wins over a 405 */
    ASSERT_STR_EQ(match(t, "GET", "/files/a", &m), "files-get");
    ASSERT_STR_EQ(match(t, "DELETE", "/files/a", &m), "fallback");
    ASSERT_STR_EQ(match(t, "BREW", "/items", &m), "405");
    fl_route_table_free(t);
}

TEST(put_replaces_and_remove_removes)
{
    struct fl_route_table *t = fl_route_table_new();
    struct fl_route_match m;
    put(t, "hello", "{\"path\": \"/hello\", \"target\": {\"function\": \"one\"}}");
    put(t, "hello", "{\"path\": \"/hi\", \"target\": {\"workflow\": \"two\"}}");
    ASSERT_EQ(fl_route_table_size(t), 1);
    ASSERT_STR_EQ(match(t, "GET", "/hello", &m), "404");
    ASSERT_STR_EQ(match(t, "GET", "/hi", &m), "hello");
    ASSERT_EQ(m.route->target_kind, FL_TARGET_WORKFLOW);
    ASSERT_STR_EQ(m.route->target_name, "two");
    ASSERT_OK(fl_route_table_remove(t, "hello"));
    ASSERT_EQ(fl_route_table_remove(t, "hello"), FL_ENOENT);
    ASSERT_STR_EQ(match(t, "GET", "/hi", &m), "404");
    /* a bad spec leaves the table as it was */
    put(t, "keep", "{\"path\": \"/keep\", \"target\": {\"function\": \"k\"}}");
    json_t *bad = json_loads("{\"path\": \"keep\", \"target\": {\"function\": \"k\"}}", 0, NULL);
    fl_buf_init(&err, 256);
    ASSERT_EQ(fl_route_table_put(t, "keep", bad, &err), FL_EINVAL);
    fl_buf_release(&err);
    json_decref(bad);
    ASSERT_STR_EQ(match(t, "GET", "/keep", &m), "keep");
    fl_route_table_free(t);
}

TEST(invalid_specs_name_the_field)
{
    expect_invalid("[]", "spec: must be an object");
    expect_invalid("{\"target\": {\"function\": \"f\"}}",
                   "exactly one of spec.path and spec.prefix");
    expect_invalid("{\"path\": \"/a\", \"prefix\": \"/b\", \"target\": {\"function\": \"f\"}}",
                   "exactly one");
    expect_invalid("{\"path\": \"a\", \"target\": {\"function\": \"f\"}}",
                   "spec.path: must start with '/'");
    expect_invalid("{\"path\": 3, \"target\": {\"function\": \"f\"}}",
                   "spec.path: must be a string");
    expect_invalid("{\"path\": \"/a b\", \"target\": {\"function\": \"f\"}}",
                   "must not hold spaces");
    expect_invalid("{\"path\": \"/a/{}\", \"target\": {\"function\": \"f\"}}", "parameter name");
    expect_invalid("{\"path\": \"/a/x{id}\", \"target\": {\"function\": \"f\"}}", "whole segment");
    expect_invalid("{\"path\": \"/{id}/{id}\", \"target\": {\"function\": \"f\"}}",
                   "repeats the parameter 'id'");
    expect_invalid("{\"prefix\": \"/a/{id}\", \"target\": {\"function\": \"f\"}}",
                   "a prefix cannot hold");
    expect_invalid("{\"path\": \"/a\", \"methods\": \"GET\", \"target\": {\"function\": \"f\"}}",
                   "spec.methods: must be a list");
    expect_invalid("{\"path\": \"/a\", \"methods\": [\"BREW\"], \"target\": {\"function\": \"f\"}}",
                   "unknown method");
    expect_invalid("{\"path\": \"/a\"}", "spec.target: must be");
    expect_invalid("{\"path\": \"/a\", \"target\": {\"function\": \"f\", \"workflow\": \"w\"}}",
                   "spec.target: must be");
    expect_invalid("{\"path\": \"/a\", \"target\": {\"function\": \"Bad_Name\"}}",
                   "spec.target.function");
    expect_invalid("{\"path\": \"/a\", \"target\": {\"function\": \"f\"}, \"url\": \"/x\"}",
                   "spec.url: is not a route field");
    expect_invalid("{\"path\": \"/a\", \"target\": {\"queue\": \"q\"}}",
                   "{function: NAME}, {workflow: NAME} or {topic: NAME}");
}

TEST(routes_to_topics_take_a_topic_name_and_no_async_fields)
{
    struct fl_route_table *t = fl_route_table_new();
    struct fl_route_match m;
    put(t, "hook",
        "{\"path\": \"/hooks/{src}\", \"methods\": [\"POST\"], "
        "\"target\": {\"topic\": \"orders.in_2\"}, \"async\": false}");
    ASSERT_STR_EQ(match(t, "POST", "/hooks/github", &m), "hook");
    ASSERT_EQ(m.route->target_kind, FL_TARGET_TOPIC);
    ASSERT_STR_EQ(m.route->target_name, "orders.in_2");
    ASSERT_STR_EQ(m.params[0].value, "github");
    fl_route_table_free(t);
    static const char *const bad_names[] = {
        "", ".x", "a..b", "a.", "a/b", "a b", "async-callbacks", "\\u00e9t\\u00e9"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        char spec[200];
        snprintf(spec, sizeof(spec), "{\"path\": \"/a\", \"target\": {\"topic\": \"%s\"}}",
                 bad_names[i]);
        expect_invalid(spec, "spec.target.topic: ");
    }
    char spec[400], name[300];
    memset(name, 'n', 257);
    name[257] = '\0';
    snprintf(spec, sizeof(spec), "{\"path\": \"/a\", \"target\": {\"topic\": \"%s\"}}", name);
    expect_invalid(spec, "1 to 256 letters");
    name[256] = '\0';
    snprintf(spec, sizeof(spec), "{\"path\": \"/a\", \"target\": {\"topic\": \"%s\"}}", name);
    json_t *ok = json_loads(spec, 0, NULL);
    fl_buf_init(&err, 1024);
    ASSERT_OK(fl_route_spec_check(ok, &err));
    fl_buf_release(&err);
    json_decref(ok);
    expect_invalid("{\"path\": \"/a\", \"target\": {\"topic\": 7}}",
                   "spec.target.topic: must be a topic name");
    static const char *const async_fields[] = {"\"async\": true", "\"allowAsync\": true",
                                               "\"retry\": {\"maxAttempts\": 2}",
                                               "\"callback\": \"http://127.0.0.1:9/x\""};
    for (size_t i = 0; i < sizeof(async_fields) / sizeof(async_fields[0]); i++) {
        snprintf(spec, sizeof(spec), "{\"path\": \"/a\", \"target\": {\"topic\": \"t\"}, %s}",
                 async_fields[i]);
        expect_invalid(spec, "is for routes to functions");
    }
}

TEST(limits_are_enforced)
{
    char path[2048] = "";
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(path + n, sizeof(path) - n, "/s%d", i);
    char spec[4096];
    snprintf(spec, sizeof(spec), "{\"path\": \"%s\", \"target\": {\"function\": \"f\"}}", path);
    expect_invalid(spec, "more than 32 segments");

    struct fl_route_table *t = fl_route_table_new();
    struct fl_route_match m;
    put(t, "p", "{\"path\": \"/p/{v}\", \"target\": {\"function\": \"f\"}}");
    char req[600] = "/p/";
    memset(req + 3, 'x', 300);
    req[303] = '\0';
    ASSERT_STR_EQ(match(t, "GET", req, &m), "414");  /* parameter value too long */
    ASSERT_STR_EQ(match(t, "GET", path, &m), "414"); /* too many segments, nothing matched */
    put(t, "all", "{\"prefix\": \"/\", \"target\": {\"function\": \"f\"}}");
    ASSERT_STR_EQ(match(t, "GET", path, &m), "all"); /* a prefix still takes it */
    fl_route_table_free(t);
}

/* The route of name in t (it matches path), for its async fields. */
static const struct fl_route *route_at(struct fl_route_table *t, const char *path)
{
    static struct fl_route_match m;
    ASSERT_OK(fl_route_table_match(t, "POST", path, strlen(path), &m));
    return m.route;
}

TEST(async_fields_default_off_and_are_kept)
{
    struct fl_route_table *t = fl_route_table_new();
    put(t, "plain", "{\"path\": \"/plain\", \"target\": {\"function\": \"f\"}}");
    const struct fl_route *r = route_at(t, "/plain");
    ASSERT(!r->async && !r->allow_async && !r->has_retry);
    ASSERT(r->callback == NULL);
    ASSERT_EQ(r->retry.max_attempts, FL_RETRY_DEFAULT.max_attempts);
    ASSERT_EQ(r->retry.backoff_ms, FL_RETRY_DEFAULT.backoff_ms);
    ASSERT_EQ(r->retry.max_backoff_ms, FL_RETRY_DEFAULT.max_backoff_ms);

    put(t, "jobs",
        "{\"path\": \"/jobs\", \"target\": {\"function\": \"f\"}, \"async\": true,"
        " \"retry\": {\"maxAttempts\": 7, \"backoff\": \"200ms\"},"
        " \"callback\": \"http://127.0.0.1:9000/done?x=1\"}");
    r = route_at(t, "/jobs");
    ASSERT(r->async && !r->allow_async && r->has_retry);
    /* what the route leaves out is the default's, not the function's */
    ASSERT_EQ(r->retry.max_attempts, 7);
    ASSERT_EQ(r->retry.backoff_ms, 200);
    ASSERT_EQ(r->retry.max_backoff_ms, FL_RETRY_DEFAULT.max_backoff_ms);
    ASSERT_STR_EQ(r->callback, "http://127.0.0.1:9000/done?x=1");

    put(t, "maybe",
        "{\"prefix\": \"/maybe\", \"target\": {\"function\": \"f\"}, \"async\": false,"
        " \"allowAsync\": true, \"retry\": null, \"callback\": null}");
    r = route_at(t, "/maybe/x");
    ASSERT(!r->async && r->allow_async && !r->has_retry);
    ASSERT(r->callback == NULL);
    /* replacing a route replaces its async fields (and frees the old callback) */
    put(t, "jobs", "{\"path\": \"/jobs\", \"target\": {\"function\": \"f\"}}");
    r = route_at(t, "/jobs");
    ASSERT(!r->async && !r->has_retry && r->callback == NULL);
    put(t, "jobs",
        "{\"path\": \"/jobs\", \"target\": {\"function\": \"f\"}, \"allowAsync\": true,"
        " \"retry\": {}, \"callback\": \"http://hooks.example:8080/\"}");
    r = route_at(t, "/jobs");
    ASSERT(r->allow_async && r->has_retry); /* an empty policy is the route's own: the defaults */
    ASSERT_EQ(r->retry.max_attempts, FL_RETRY_DEFAULT.max_attempts);
    ASSERT_STR_EQ(r->callback, "http://hooks.example:8080/");
    fl_route_table_free(t);
}

TEST(async_fields_are_checked)
{
    static const struct {
        const char *fields, *message;
    } bad[] = {
        {"\"async\": \"yes\"", "spec.async: must be true or false"},
        {"\"async\": 1", "spec.async: must be true or false"},
        {"\"allowAsync\": null", "spec.allowAsync: must be true or false"},
        {"\"retry\": 3", "spec.retry: must be an object"},
        {"\"retry\": {\"maxAttempts\": 0}", "spec.retry.maxAttempts: must be a whole number"},
        {"\"retry\": {\"backoff\": \"10m\"}", "spec.retry.maxBackoff: 5m is below the backoff"},
        {"\"retry\": {\"tries\": 1}", "spec.retry.tries: is not a field of retry"},
        {"\"callback\": 7", "spec.callback: must be a URL like http://HOST:PORT/path"},
        {"\"callback\": \"\"", "spec.callback: is empty"},
        {"\"callback\": \"https://127.0.0.1/x\"",
         "spec.callback: only http:// URLs are supported, not https://"},
        {"\"callback\": \"http://u:p@127.0.0.1/x\"", "spec.callback: must not hold a user name"},
        {"\"callback\": \"http://127.0.0.1/x#y\"", "spec.callback: must not hold a fragment"},
        {"\"callback\": \"http://127.0.0.1/a b\"", "spec.callback: must not hold spaces"},
        {"\"callBack\": \"http://127.0.0.1/\"",
         "spec.callBack: is not a route field (path, prefix, methods, target, async, allowAsync, "
         "retry, callback)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char spec[512];
        snprintf(spec, sizeof(spec), "{\"path\": \"/x\", \"target\": {\"function\": \"f\"}, %s}",
                 bad[i].fields);
        expect_invalid(spec, bad[i].message);
    }
    /* a NUL inside the text */
    json_t *nul = json_pack("{s:s, s:{s:s}, s:s%}", "path", "/x", "target", "function", "f",
                            "callback", "http://127.0.0.1/a\0b", (size_t)20);
    fl_buf_init(&err, 1024);
    ASSERT_EQ(fl_route_spec_check(nul, &err), FL_EINVAL);
    ASSERT(strstr(err.data, "spec.callback: must be a URL") != NULL);
    fl_buf_release(&err);
    json_decref(nul);
    /* a refused put leaves the table as it was */
    struct fl_route_table *t = fl_route_table_new();
    put(t, "jobs", "{\"path\": \"/jobs\", \"target\": {\"function\": \"f\"}, \"async\": true}");
    json_t *spec = json_loads("{\"path\": \"/jobs\", \"target\": {\"function\": \"f\"},"
                              " \"callback\": \"https://x/\"}",
                              0, NULL);
    fl_buf_init(&err, 1024);
    ASSERT_EQ(fl_route_table_put(t, "jobs", spec, &err), FL_EINVAL);
    fl_buf_release(&err);
    json_decref(spec);
    ASSERT(route_at(t, "/jobs")->async);
    fl_route_table_free(t);
}
