/* Unit tests for src/base: buffers, strings, numbers, ids, time, logs. */
#include "runner.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/id.h"
#include "base/log.h"
#include "base/str.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <stdint.h>
#include <unistd.h>

TEST(buf_appends_and_terminates)
{
    struct fl_buf b;
    fl_buf_init(&b, 1024);
    ASSERT(b.data == NULL);
    ASSERT_OK(fl_buf_appends(&b, "hello"));
    ASSERT_OK(fl_buf_appendc(&b, ' '));
    ASSERT_OK(fl_buf_appendf(&b, "%d-%s", 42, "x"));
    ASSERT_STR_EQ(b.data, "hello 42-x");
    ASSERT_EQ(b.len, 10);
    fl_buf_consume(&b, 6);
    ASSERT_STR_EQ(b.data, "42-x");
    fl_buf_reset(&b);
    ASSERT_EQ(b.len, 0);
    ASSERT_STR_EQ(b.data, "");
    fl_buf_release(&b);
}

TEST(buf_refuses_to_pass_its_maximum)
{
    struct fl_buf b;
    fl_buf_init(&b, 8);
    ASSERT_OK(fl_buf_appends(&b, "12345678"));
    ASSERT_EQ(fl_buf_appendc(&b, '9'), FL_ETOOBIG);
    ASSERT_STR_EQ(b.data, "12345678"); /* unchanged */
    fl_buf_reset(&b);
    ASSERT_EQ(fl_buf_appendf(&b, "%s", "a long formatted string"), FL_ETOOBIG);
    ASSERT_EQ(b.len, 0);
    ASSERT_EQ(fl_buf_grow(&b, SIZE_MAX), FL_ETOOBIG);
    fl_buf_release(&b);
}

/* s (len bytes) through fl_buf_append_json_string after a prefix, checked
 * against what jansson dumps for the same string. */
static void json_string_as_jansson(const char *s, size_t len)
{
    struct fl_buf b;
    fl_buf_init(&b, 1 << 20);
    ASSERT_OK(fl_buf_appends(&b, "x:"));
    ASSERT_OK(fl_buf_append_json_string(&b, s, len));
    json_t *v = json_stringn(s, len);
    ASSERT(v != NULL);
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    ASSERT(want != NULL);
    ASSERT_EQ(b.len, 2 + strlen(want));
    ASSERT_STR_EQ(b.data + 2, want);
    /* and it reads back as s */
    json_t *back = json_loadb(b.data + 2, b.len - 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    ASSERT(back != NULL);
    ASSERT_EQ(json_string_length(back), len);
    ASSERT(memcmp(json_string_value(back), s, len) == 0);
    json_decref(back);
    free(want);
    json_decref(v);
    fl_buf_release(&b);
}

TEST(buf_appends_json_strings_as_jansson_writes_them)
{
    static const char *const texts[] = {
        "",
        "plain",
        "/v1/functions/f/invoke?a=1&b=%20",
        "quote \" and backslash \\ and slash /",
        "\b\f\n\r\t",
        "\x01\x02\x1f\x7f end",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* 2, 3 and 4-byte UTF-8 */
        "\xef\xbf\xbf\xf4\x8f\xbf\xbf",              /* U+FFFF, U+10FFFF */
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        json_string_as_jansson(texts[i], strlen(texts[i]));
    json_string_as_jansson("nul\0inside", 10);
    /* every byte below 0x80, one string */
    char all[128];
    for (int c = 0; c < 128; c++)
        all[c] = (char)c;
    json_string_as_jansson(all, sizeof(all));

    struct fl_buf b;
    fl_buf_init(&b, 64);
    ASSERT_OK(fl_buf_append_json_string(&b, "\x1f", 1));
    ASSERT_STR_EQ(b.data, "\"\\u001F\"");
    fl_buf_release(&b);
}

TEST(buf_refuses_json_strings_that_are_not_utf8_and_stays_unchanged)
{
    static const char *const bad[] = {
        "\xff",                 /* never in UTF-8 */
        "ab\x80",               /* a continuation alone */
        "\xc3",                 /* cut short */
        "\xe2\x82",             /* cut short */
        "\xc0\xaf",             /* overlong '/' */
        "\xe0\x80\xaf",         /* overlong */
        "\xed\xa0\x80",         /* a surrogate, U+D800 */
        "\xf4\x90\x80\x80",     /* past U+10FFFF */
        "\xf8\x88\x80\x80\x80", /* five bytes */
        "ok \xc3\x28 then",     /* a bad continuation in the middle */
    };
    struct fl_buf b;
    fl_buf_init(&b, 1024);
    ASSERT_OK(fl_buf_appends(&b, "kept"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ASSERT_EQ(fl_buf_append_json_string(&b, bad[i], strlen(bad[i])), FL_EINVAL);
        ASSERT_EQ(b.len, 4);
        ASSERT_STR_EQ(b.data, "kept");
        /* jansson refuses the same */
        ASSERT(json_stringn(bad[i], strlen(bad[i])) == NULL);
    }
    fl_buf_release(&b);
    /* past the maximum: FL_ETOOBIG, unchanged */
    fl_buf_init(&b, 8);
    ASSERT_OK(fl_buf_appends(&b, "ab"));
    ASSERT_EQ(fl_buf_append_json_string(&b, "\n\n\n", 3), FL_ETOOBIG);
    ASSERT_STR_EQ(b.data, "ab");
    ASSERT_OK(fl_buf_append_json_string(&b, "\n", 1));
    ASSERT_STR_EQ(b.data, "ab\"\\n\"");
    fl_buf_release(&b);
}

TEST(buf_without_a_limit_grows_and_never_wraps)
{
    /* max SIZE_MAX: max + 1 used to wrap to 0, and the first append wrote
     * into a zero-byte allocation */
    struct fl_buf b;
    fl_buf_init(&b, SIZE_MAX);
    ASSERT_OK(fl_buf_appends(&b, "abc"));
    ASSERT_STR_EQ(b.data, "abc");
    ASSERT(b.cap >= 4);
    for (int i = 0; i < 1000; i++)
        ASSERT_OK(fl_buf_appendf(&b, "%04d", i));
    ASSERT_EQ(b.len, 3 + 4000);
    ASSERT_EQ(fl_buf_grow(&b, SIZE_MAX), FL_ETOOBIG);
    ASSERT_EQ(fl_buf_grow(&b, SIZE_MAX - 1), FL_ETOOBIG); /* len + extra + NUL would wrap */
    ASSERT_EQ(fl_buf_append(&b, "x", SIZE_MAX - 2), FL_ETOOBIG);
    ASSERT_EQ(b.len, 4003); /* unchanged */
    fl_buf_release(&b);
}

TEST(buf_long_format_and_detach)
{
    struct fl_buf b;
    char big[1000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fl_buf_init(&b, 1 << 20);
    for (int i = 0; i < 100; i++)
        ASSERT_OK(fl_buf_appendf(&b, "%s|", big));
    ASSERT_EQ(b.len, 100 * 1000);
    size_t len;
    char *s = fl_buf_detach(&b, &len);
    ASSERT_EQ(len, 100000);
    ASSERT_EQ(s[999], '|');
    ASSERT(b.data == NULL && b.len == 0);
    free(s);
    s = fl_buf_detach(&b, &len); /* empty buffer detaches to "" */
    ASSERT_STR_EQ(s, "");
    ASSERT_EQ(len, 0);
    free(s);
}

TEST(parse_integers_strictly)
{
    int64_t v;
    uint64_t u;
    ASSERT_OK(fl_parse_i64("-42", -100, 100, &v));
    ASSERT_EQ(v, -42);
    ASSERT_EQ(fl_parse_i64("", 0, 10, &v), FL_EINVAL);
    ASSERT_EQ(fl_parse_i64("12x", 0, 100, &v), FL_EINVAL);
    ASSERT_EQ(fl_parse_i64(" 1", 0, 100, &v), FL_EINVAL);
    ASSERT_EQ(fl_parse_i64("101", 0, 100, &v), FL_ERANGE);
    ASSERT_EQ(fl_parse_i64("99999999999999999999", INT64_MIN, INT64_MAX, &v), FL_ERANGE);
    ASSERT_OK(fl_parse_u64("18446744073709551615", UINT64_MAX, &u));
    ASSERT_EQ(fl_parse_u64("-1", UINT64_MAX, &u), FL_EINVAL);
    ASSERT_EQ(fl_parse_u64("18446744073709551616", UINT64_MAX, &u), FL_ERANGE);
}

TEST(parse_durations_and_sizes)
{
    int64_t ms;
    uint64_t n;
    ASSERT_OK(fl_parse_duration_ms("250ms", &ms));
    ASSERT_EQ(ms, 250);
    ASSERT_OK(fl_parse_duration_ms("30", &ms));
    ASSERT_EQ(ms, 30000);
    ASSERT_OK(fl_parse_duration_ms("5m", &ms));
    ASSERT_EQ(ms, 300000);
    ASSERT_OK(fl_parse_duration_ms("2h", &ms));
    ASSERT_EQ(ms, 7200000);
    ASSERT_EQ(fl_parse_duration_ms("5 m", &ms), FL_EINVAL);
    ASSERT_EQ(fl_parse_duration_ms("m", &ms), FL_EINVAL);
    ASSERT_EQ(fl_parse_duration_ms("9999999999999999999d", &ms), FL_ERANGE);
    ASSERT_OK(fl_parse_size("64M", &n));
    ASSERT_EQ(n, 64ULL << 20);
    ASSERT_OK(fl_parse_size("1KiB", &n));
    ASSERT_EQ(n, 1024);
    ASSERT_OK(fl_parse_size("512", &n));
    ASSERT_EQ(n, 512);
    ASSERT_EQ(fl_parse_size("1X", &n), FL_EINVAL);
    ASSERT_EQ(fl_parse_size("99999999999G", &n), FL_ERANGE);
    /* durations written back in the largest unit that divides them, and read again */
    static const struct {
        int64_t ms;
        const char *text;
    } forms[] = {{7200000, "2h"}, {90000, "90s"}, {1500, "1500ms"}, {0, "0ms"}, {60000, "1m"}};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char text[32];
        ASSERT_STR_EQ(fl_fmt_duration_ms(forms[i].ms, text, sizeof(text)), forms[i].text);
        ASSERT_OK(fl_parse_duration_ms(text, &ms));
        ASSERT_EQ(ms, forms[i].ms);
    }
}

TEST(string_helpers)
{
    char small[4];
    ASSERT_EQ(fl_strlcpy(small, "abcdef", sizeof(small)), 6);
    ASSERT_STR_EQ(small, "abc");
    ASSERT(fl_str_has_prefix("/v1/functions", "/v1/"));
    ASSERT(!fl_str_has_prefix("/v", "/v1/"));
    ASSERT(fl_str_has_suffix("fn.tar.gz", ".tar.gz"));
    ASSERT(!fl_str_has_suffix("gz", ".tar.gz"));
    ASSERT(fl_str_ieq("Content-Length", 14, "content-length"));
    ASSERT(!fl_str_ieq("Content-Len", 11, "content-length"));
    ASSERT(!fl_str_ieq("Content-Lengthy", 15, "content-length"));
    ASSERT(!fl_str_ieq("Content-Lengti", 14, "content-length"));
    ASSERT(!fl_str_has_ctl("text/plain; q=\"a b\"\t", 19));
    ASSERT(!fl_str_has_ctl("\x80\xff", 2)); /* obs-text is allowed */
    ASSERT(fl_str_has_ctl("a\0b", 3));
    ASSERT(fl_str_has_ctl("a\r", 2));
    ASSERT(fl_str_has_ctl("\x7f", 1));
    ASSERT(fl_str_is_token("X-Flint-Param-who_1", 19));
    ASSERT(fl_str_is_token("!#$%&'*+.^_`|~", 14));
    ASSERT(!fl_str_is_token("", 0));
    ASSERT(!fl_str_is_token("Bad Name", 8));
    ASSERT(!fl_str_is_token("X:Y", 3));
    ASSERT(!fl_str_is_token("X\r\nY", 4));
    ASSERT(!fl_str_is_token("caf\xc3\xa9", 5));
    ASSERT(fl_str_ieq("Content-Lengthy", 14, "CONTENT-LENGTH")); /* only n bytes count */
    ASSERT(fl_str_ieq("", 0, ""));
    ASSERT(!fl_str_ieq("[", 1, "{")); /* '[' | 0x20 would be '{': ASCII letters only fold */
    char num[FL_U64_CHARS];
    ASSERT_EQ(fl_fmt_u64(num, 0), 1);
    ASSERT_STR_EQ(num, "0");
    ASSERT_EQ(fl_fmt_u64(num, 429), 3);
    ASSERT_STR_EQ(num, "429");
    ASSERT_EQ(fl_fmt_u64(num, UINT64_MAX), 20);
    ASSERT_STR_EQ(num, "18446744073709551615");
    char *d = fl_strndup("hello world", 5);
    ASSERT_STR_EQ(d, "hello");
    free(d);
    char hex[9];
    fl_hex_encode(hex, "\x01\xab\xff\x00", 4);
    ASSERT_STR_EQ(hex, "01abff00");
}

TEST(base64_matches_rfc4648_vectors)
{
    /* RFC 4648, section 10 */
    static const char *const cases[][2] = {{"", ""},
                                           {"f", "Zg=="},
                                           {"fo", "Zm8="},
                                           {"foo", "Zm9v"},
                                           {"foob", "Zm9vYg=="},
                                           {"fooba", "Zm9vYmE="},
                                           {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[FL_BASE64_LEN(6) + 1];
        size_t n = fl_base64_encode(out, cases[i][0], strlen(cases[i][0]));
        ASSERT_STR_EQ(out, cases[i][1]);
        ASSERT_EQ(n, strlen(cases[i][1]));
    }
    char bin[FL_BASE64_LEN(3) + 1];
    fl_base64_encode(bin, "\xff\xfe\x00", 3);
    ASSERT_STR_EQ(bin, "//4A");
}

TEST(uuid7_is_well_formed_and_increasing)
{
    char prev[FL_UUID_STRLEN + 1] = "";
    for (int i = 0; i < 20000; i++) {
        char id[FL_UUID_STRLEN + 1];
        ASSERT_OK(fl_uuid7(id));
        ASSERT_EQ(strlen(id), 36);
        ASSERT(id[8] == '-' && id[13] == '-' && id[18] == '-' && id[23] == '-');
        ASSERT_EQ(id[14], '7');                 /* version */
        ASSERT(strchr("89ab", id[19]) != NULL); /* variant */
        ASSERT(strcmp(prev, id) < 0);
        memcpy(prev, id, sizeof(prev));
    }
    /* The timestamp is now, give or take a second. */
    char id[FL_UUID_STRLEN + 1], hex[13];
    ASSERT_OK(fl_uuid7(id));
    memcpy(hex, id, 8);
    memcpy(hex + 8, id + 9, 4);
    hex[12] = '\0';
    long long ms = strtoll(hex, NULL, 16);
    ASSERT(llabs(ms - fl_clock_wall_ms()) < 1000);
}

TEST(clock_formats_rfc3339)
{
    char out[32];
    ASSERT_STR_EQ(fl_clock_format(0, out, sizeof(out)), "1970-01-01T00:00:00.000Z");
    ASSERT_STR_EQ(fl_clock_format(1795001522123LL, out, sizeof(out)), "2026-11-18T11:32:02.123Z");
    uint64_t a = fl_clock_mono_ns(), b = fl_clock_mono_ns();
    ASSERT(b >= a);
}

TEST(log_writes_one_line_of_fields)
{
    char path[4200], line[1024], q[64];
    snprintf(path, sizeof(path), "%s/log", fl_test_tmpdir());
    ASSERT_OK(fl_log_open(path));
    fl_log_set_level(FL_LOG_INFO);
    fl_log(FL_LOG_DEBUG, "test", "dropped", NULL);
    fl_log(FL_LOG_INFO, "test", "started", "port=%d name=%s", 8080,
           fl_log_quote(q, sizeof(q), "a \"b\"\n"));
    fl_log(FL_LOG_ERROR, "test", "failed", NULL);
    ASSERT_OK(fl_log_open(NULL));
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    ASSERT(fgets(line, sizeof(line), f) != NULL);
    ASSERT(
        strstr(line, "level=info sub=test msg=\"started\" port=8080 name=\"a \\\"b\\\"\\x0a\"\n"));
    ASSERT(fl_str_has_prefix(line, "ts="));
    ASSERT(fgets(line, sizeof(line), f) != NULL);
    ASSERT(strstr(line, "level=error sub=test msg=\"failed\"\n"));
    ASSERT(fgets(line, sizeof(line), f) == NULL);
    fclose(f);
    enum fl_log_level level;
    ASSERT_OK(fl_log_parse_level("warn", &level));
    ASSERT_EQ(level, FL_LOG_WARN);
    ASSERT_EQ(fl_log_parse_level("loud", &level), FL_EINVAL);
}

TEST(log_rate_limit_is_a_token_bucket_per_call_site)
{
    const uint64_t s = 1000000000ULL;
    struct fl_log_ratelimit rl = FL_LOG_RATELIMIT_INIT(3, 60); /* 3 at once, then 1 a second */
    uint64_t dropped = 99;
    for (int i = 0; i < 3; i++) {
        ASSERT(fl_log_ratelimit_allow(&rl, 10 * s, &dropped));
        ASSERT_EQ(dropped, 0);
    }
    for (int i = 0; i < 1000; i++)
        ASSERT(!fl_log_ratelimit_allow(&rl, 10 * s + (uint64_t)i, &dropped));
    ASSERT(!fl_log_ratelimit_allow(&rl, 10 * s + s / 2, &dropped)); /* half a line earned */
    ASSERT(fl_log_ratelimit_allow(&rl, 11 * s, &dropped));          /* one line earned */
    ASSERT_EQ(dropped, 1001); /* said once, then counted afresh */
    ASSERT(!fl_log_ratelimit_allow(&rl, 11 * s, &dropped));
    /* a long quiet time refills the bucket up to its burst, not beyond */
    for (int i = 0; i < 3; i++)
        ASSERT(fl_log_ratelimit_allow(&rl, 1000 * s, &dropped));
    ASSERT(!fl_log_ratelimit_allow(&rl, 1000 * s, &dropped));
    /* a clock that goes back earns nothing */
    ASSERT(!fl_log_ratelimit_allow(&rl, 5 * s, &dropped));
}

TEST(log_rate_limited_lines_and_their_summary)
{
    char path[4200], line[1024];
    snprintf(path, sizeof(path), "%s/log", fl_test_tmpdir());
    ASSERT_OK(fl_log_open(path));
    fl_log_set_level(FL_LOG_INFO);
    /* one line a minute after the burst: no test run earns a second one */
    struct fl_log_ratelimit rl = FL_LOG_RATELIMIT_INIT(2, 1);
    for (int i = 0; i < 2000; i++)
        fl_log_ratelimited(&rl, FL_LOG_WARN, "test", "refused", "i=%d", i);
    for (int i = 0; i < 50; i++)
        fl_log_ratelimited(&rl, FL_LOG_DEBUG, "test", "below the level", NULL); /* not counted */
    rl.last_ns -= 60000000000ULL; /* a minute passes */
    fl_log_ratelimited(&rl, FL_LOG_WARN, "test", "refused", "i=%d", 2000);
    /* another call site has a bucket of its own */
    for (int i = 0; i < 100; i++)
        FL_LOG_LIMITED(FL_LOG_ERROR, "test", "elsewhere", "i=%d", i);
    ASSERT_OK(fl_log_open(NULL));
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    const char *want[] = {"msg=\"refused\" i=0\n", "msg=\"refused\" i=1\n",
                          "msg=\"suppressed similar lines\" count=1998 like=\"refused\"\n",
                          "msg=\"refused\" i=2000\n"};
    for (size_t i = 0; i < 4; i++) {
        ASSERT(fgets(line, sizeof(line), f) != NULL);
        if (strstr(line, want[i]) == NULL)
            fl_test_fail(__FILE__, __LINE__, "line %zu: %s", i, line);
    }
    int elsewhere = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        ASSERT(strstr(line, "msg=\"elsewhere\"") != NULL);
        elsewhere++;
    }
    ASSERT_EQ(elsewhere, FL_LOG_BURST);
    fclose(f);
}

TEST(errors_have_names_and_text)
{
    ASSERT_STR_EQ(fl_errname(FL_ECONFLICT), "ECONFLICT");
    ASSERT_STR_EQ(fl_errname(FL_ENOENT), "ENOENT");
    ASSERT_STR_EQ(fl_strerror(FL_ETOOBIG), "over the size limit");
    ASSERT_STR_EQ(fl_strerror(FL_ENOENT), "No such file or directory");
    ASSERT_STR_EQ(fl_errname(-99999), "EUNKNOWN");
}

/* ---- fs.h ---- */

TEST(files_are_replaced_whole_read_within_bounds_and_trees_linked)
{
    char dir[4200], path[4300], copy[4300], file[4400];
    snprintf(dir, sizeof(dir), "%s/tree", fl_test_tmpdir());
    ASSERT_OK(mkdir(dir, 0755));
    snprintf(path, sizeof(path), "%s/sub", dir);
    ASSERT_OK(mkdir(path, 0755));
    snprintf(file, sizeof(file), "%s/a.txt", path);
    ASSERT_OK(fl_file_write_atomic(file, "first", 5));
    ASSERT_OK(fl_file_write_atomic(file, "second", 6)); /* replaced, not appended */
    snprintf(file, sizeof(file), "%s/link", dir);
    ASSERT_OK(symlink("sub/a.txt", file));

    struct fl_buf b;
    fl_buf_init(&b, 64);
    snprintf(file, sizeof(file), "%s/a.txt", path);
    ASSERT_OK(fl_file_read(file, &b));
    ASSERT_STR_EQ(b.data, "second");
    fl_buf_release(&b);
    fl_buf_init(&b, 3);
    ASSERT_EQ(fl_file_read(file, &b), FL_ETOOBIG);
    fl_buf_release(&b);
    fl_buf_init(&b, 64);
    ASSERT_OK(fl_file_read("/nonexistent/file", &b)); /* missing: nothing, no error */
    ASSERT_EQ(b.len, 0);
    fl_buf_release(&b);

    snprintf(copy, sizeof(copy), "%s/copy", fl_test_tmpdir());
    ASSERT_OK(fl_link_tree(dir, copy, NULL));
    struct stat orig, linked;
    snprintf(file, sizeof(file), "%s/sub/a.txt", copy);
    ASSERT_OK(stat(file, &linked));
    snprintf(file, sizeof(file), "%s/a.txt", path);
    ASSERT_OK(stat(file, &orig));
    ASSERT_EQ(linked.st_ino, orig.st_ino); /* a hard link, not a copy */
    char target[64] = "";
    snprintf(file, sizeof(file), "%s/link", copy);
    ASSERT(readlink(file, target, sizeof(target) - 1) > 0);
    ASSERT_STR_EQ(target, "sub/a.txt");
    ASSERT(fl_link_tree(dir, copy, NULL) < 0); /* dst must not exist */

    ASSERT_OK(fl_remove_tree(copy));
    ASSERT(access(copy, F_OK) != 0);
    ASSERT(access(path, F_OK) == 0); /* the source is untouched */
    ASSERT_OK(fl_remove_tree(copy)); /* missing is fine */
}
