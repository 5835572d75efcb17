/* Unit tests for src/spec: YAML/JSON specs to jansson values and back. */
#include "runner.h"

#include "base/error.h"
#include "spec/spec.h"

static json_t *parse_ok(const char *text)
{
    struct fl_buf err;
    json_t *docs = NULL;
    fl_buf_init(&err, 1024);
    int rc = fl_spec_parse(text, strlen(text), "test.yaml", &docs, &err);
    if (rc != 0)
        fl_test_fail(__FILE__, __LINE__, "parse failed: %s", err.data);
    fl_buf_release(&err);
    return docs;
}

static void expect_error(const char *text, int code, const char *message)
{
    struct fl_buf err;
    json_t *docs = (json_t *)1;
    fl_buf_init(&err, 1024);
    ASSERT_EQ(fl_spec_parse(text, strlen(text), "test.yaml", &docs, &err), code);
    ASSERT(docs == NULL);
    if (strstr(err.data, message) == NULL)
        fl_test_fail(__FILE__, __LINE__, "error '%s' does not contain '%s'", err.data, message);
    fl_buf_release(&err);
}

TEST(yaml_scalars_are_typed_by_the_core_schema)
{
    json_t *docs = parse_ok("a: 12\n"
                            "b: -7\n"
                            "c: 0x1f\n"
                            "d: 1.5\n"
                            "e: true\n"
                            "f: False\n"
                            "g: ~\n"
                            "h:\n"
                            "i: hello world\n"
                            "j: \"12\"\n"
                            "k: '{ output(\"x\") }'\n"
                            "l: !!str 3\n"
                            "m: 1e3\n"
                            "n: 99999999999999999999999\n"
                            "o: 1.2.3\n");
    ASSERT_EQ(json_array_size(docs), 1);
    json_t *d = json_array_get(docs, 0);
    ASSERT_EQ(json_integer_value(json_object_get(d, "a")), 12);
    ASSERT_EQ(json_integer_value(json_object_get(d, "b")), -7);
    ASSERT_EQ(json_integer_value(json_object_get(d, "c")), 31);
    ASSERT(json_is_real(json_object_get(d, "d")));
    ASSERT(json_is_true(json_object_get(d, "e")));
    ASSERT(json_is_false(json_object_get(d, "f")));
    ASSERT(json_is_null(json_object_get(d, "g")));
    ASSERT(json_is_null(json_object_get(d, "h")));
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "i")), "hello world");
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "j")), "12");
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "k")), "{ output(\"x\") }");
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "l")), "3");
    ASSERT(json_is_real(json_object_get(d, "m")));
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "n")), "99999999999999999999999");
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "o")), "1.2.3");
    json_decref(docs);
}

TEST(yaml_nesting_and_multiple_documents)
{
    json_t *docs = parse_ok("kind: function\n"
                            "spec:\n"
                            "  env: {A: 1, B: two}\n"
                            "  methods: [GET, POST]\n"
                            "  tasks:\n"
                            "    - run: fortune\n"
                            "    - run: whalesay\n"
                            "      requires: [GenerateFortune]\n"
                            "---\n"
                            "kind: route\n"
                            "---\n"
                            "- 1\n"
                            "- [2, [3]]\n");
    ASSERT_EQ(json_array_size(docs), 3);
    json_t *spec = json_object_get(json_array_get(docs, 0), "spec");
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(spec, "env"), "A")), 1);
    ASSERT_STR_EQ(json_string_value(json_array_get(json_object_get(spec, "methods"), 1)), "POST");
    json_t *task = json_array_get(json_object_get(spec, "tasks"), 1);
    ASSERT_STR_EQ(json_string_value(json_object_get(task, "run")), "whalesay");
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(docs, 1), "kind")), "route");
    ASSERT_EQ(json_array_size(json_array_get(docs, 2)), 2);
    json_decref(docs);
}

TEST(numeric_keys_stay_strings)
{
    json_t *docs = parse_ok("200: ok\ntrue: yes\n");
    json_t *d = json_array_get(docs, 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "200")), "ok");
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "true")), "yes");
    json_decref(docs);
}

TEST(json_input_is_parsed_as_json)
{
    json_t *docs = parse_ok("  {\"name\": \"hello\", \"n\": [1, 2.5, null]}");
    json_t *d = json_array_get(docs, 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(d, "name")), "hello");
    ASSERT(json_is_real(json_array_get(json_object_get(d, "n"), 1)));
    json_decref(docs);
}

TEST(bad_input_is_refused_with_a_location)
{
    expect_error("a: 1\na: 2\n", FL_EPARSE, "test.yaml:2:1: duplicate key 'a'");
    expect_error("a: [1, 2\n", FL_EPARSE, "test.yaml:");
    expect_error("a: &x 1\nb: *x\n", FL_EPARSE, "not supported");
    expect_error("? [1, 2]\n: v\n", FL_EPARSE, "mapping keys must be scalars");
    expect_error("{\"a\": 1, \"a\": 2}", FL_EPARSE, "duplicate");
    expect_error("{\"a\": ", FL_EPARSE, "test.yaml:1:");
    expect_error("\tkey: value\n", FL_EPARSE, "test.yaml:1:");
}

TEST(deep_nesting_is_refused)
{
    char yaml[4096], json[4096];
    size_t n = 0, m = 0;
    for (int i = 0; i < 100; i++) {
        yaml[n++] = '[';
        json[m++] = '[';
    }
    for (int i = 0; i < 100; i++) {
        yaml[n++] = ']';
        json[m++] = ']';
    }
    yaml[n] = json[m] = '\0';
    expect_error(yaml + 0, FL_EPARSE, "nested deeper than");
    /* the same text is JSON (first character '['), so force YAML with a leading key */
    char yaml2[4200];
    snprintf(yaml2, sizeof(yaml2), "a: %s\n", yaml);
    expect_error(yaml2, FL_EPARSE, "nested deeper than");
}

TEST(oversized_input_is_refused)
{
    size_t len = FL_SPEC_MAX_BYTES + 1;
    char *big = malloc(len);
    ASSERT(big != NULL);
    memset(big, 'a', len);
    struct fl_buf err;
    json_t *docs;
    fl_buf_init(&err, 1024);
    ASSERT_EQ(fl_spec_parse(big, len, "big.yaml", &docs, &err), FL_ETOOBIG);
    ASSERT(strstr(err.data, "big.yaml: larger than") != NULL);
    fl_buf_release(&err);
    free(big);
}

TEST(emitted_yaml_reads_back_equal)
{
    json_t *v = json_pack("{s:s, s:i, s:f, s:b, s:n, s:s, s:s, s:s, s:[s, {s:s}, []], s:{}, s:s}",
                          "name", "hello", "count", 3, "ratio", 2.0, "on", 1, "none", "text",
                          "true", "num", "12", "multi", "line one\nline two\n", "list", "a", "k",
                          "v", "empty", "quote", "it's \"quoted\": yes");
    ASSERT(v != NULL);
    struct fl_buf out, err;
    fl_buf_init(&out, 1 << 16);
    fl_buf_init(&err, 1024);
    ASSERT_OK(fl_spec_emit_yaml(v, &out));
    json_t *docs = NULL;
    if (fl_spec_parse(out.data, out.len, "emitted", &docs, &err) != 0)
        fl_test_fail(__FILE__, __LINE__, "re-parse failed: %s\n%s", err.data, out.data);
    if (!json_equal(json_array_get(docs, 0), v))
        fl_test_fail(__FILE__, __LINE__, "round trip differs:\n%s", out.data);
    ASSERT(strstr(out.data, "name: hello\n") != NULL);
    json_decref(docs);
    json_decref(v);
    fl_buf_release(&out);
    fl_buf_release(&err);
}

TEST(emit_reports_a_full_buffer)
{
    json_t *v = json_pack("{s:s}", "key", "a value longer than the buffer allows");
    struct fl_buf out;
    fl_buf_init(&out, 16);
    ASSERT_EQ(fl_spec_emit_yaml(v, &out), FL_ETOOBIG);
    fl_buf_release(&out);
    json_decref(v);
}

TEST(parse_file_reports_missing_files)
{
    char path[4200];
    struct fl_buf err;
    json_t *docs;
    fl_buf_init(&err, 1024);
    snprintf(path, sizeof(path), "%s/missing.yaml", fl_test_tmpdir());
    ASSERT_EQ(fl_spec_parse_file(path, &docs, &err), FL_ENOENT);
    ASSERT(strstr(err.data, "cannot open") != NULL);
    snprintf(path, sizeof(path), "%s/ok.yaml", fl_test_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("kind: environment\nname: python\n", f);
    fclose(f);
    ASSERT_OK(fl_spec_parse_file(path, &docs, &err));
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(docs, 0), "name")), "python");
    json_decref(docs);
    fl_buf_release(&err);
}
