/* Unit tests for src/exec/logs: per-function bounded logs, tail, follow. */
#include "runner.h"

#include "base/error.h"
#include "exec/logs.h"

#include <jansson.h>
#include <sys/stat.h>

static char dir[4200];

static struct fl_logbook *open_book(size_t max)
{
    struct fl_logbook *lb;
    snprintf(dir, sizeof(dir), "%s/logs", fl_test_tmpdir());
    ASSERT_OK(fl_logbook_open(dir, max, &lb));
    return lb;
}

static void append(struct fl_logbook *lb, const char *fn, const char *text)
{
    struct fl_log_line line = {.ts_ms = 1795001522123LL,
                               .function = fn,
                               .revision = 2,
                               .instance = "inst-1",
                               .stream = "stdout",
                               .text = text,
                               .len = strlen(text)};
    ASSERT_OK(fl_logbook_append(lb, &line));
}

/* The "line" fields of the JSON lines in text, joined by '|'. */
static void lines_of(const char *text, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = text;
    size_t used = 0;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        ASSERT(nl != NULL);
        json_t *obj = json_loadb(p, (size_t)(nl - p), 0, NULL);
        ASSERT(obj != NULL);
        used += (size_t)snprintf(out + used, size - used, "%s%s", used ? "|" : "",
                                 json_string_value(json_object_get(obj, "line")));
        json_decref(obj);
        p = nl + 1;
    }
}

TEST(lines_are_kept_as_json_and_tailed)
{
    struct fl_logbook *lb = open_book(1 << 20);
    append(lb, "hello", "one");
    append(lb, "hello", "two \"quoted\"");
    append(lb, "other", "elsewhere");
    append(lb, "hello", "three");
    struct fl_buf out;
    char joined[1024];
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_logbook_tail(lb, "hello", 0, &out));
    lines_of(out.data, joined, sizeof(joined));
    ASSERT_STR_EQ(joined, "one|two \"quoted\"|three");
    ASSERT(strstr(out.data,
                  "\"ts\":\"2026-11-18T11:32:02.123Z\",\"function\":\"hello\","
                  "\"revision\":2,\"instance\":\"inst-1\",\"stream\":\"stdout\"") != NULL);
    fl_buf_reset(&out);
    ASSERT_OK(fl_logbook_tail(lb, "hello", 2, &out));
    lines_of(out.data, joined, sizeof(joined));
    ASSERT_STR_EQ(joined, "two \"quoted\"|three");
    fl_buf_reset(&out);
    ASSERT_OK(fl_logbook_tail(lb, "nobody", 10, &out));
    ASSERT_EQ(out.len, 0);
    ASSERT_EQ(fl_logbook_tail(lb, "../etc", 10, &out), FL_EINVAL);
    fl_buf_release(&out);
    fl_logbook_close(lb);

    /* Reopened, the lines are still there. */
    lb = open_book(1 << 20);
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_logbook_tail(lb, "hello", 1, &out));
    lines_of(out.data, joined, sizeof(joined));
    ASSERT_STR_EQ(joined, "three");
    fl_buf_release(&out);
    fl_logbook_close(lb);
}

TEST(size_is_bounded_by_rotation)
{
    struct fl_logbook *lb = open_book(8192);
    char text[64];
    for (int i = 0; i < 2000; i++) {
        snprintf(text, sizeof(text), "line %d", i);
        append(lb, "busy", text);
    }
    struct stat a, b;
    char path[4300];
    snprintf(path, sizeof(path), "%s/busy.log", dir);
    ASSERT_OK(stat(path, &a));
    snprintf(path, sizeof(path), "%s/busy.log.1", dir);
    ASSERT_OK(stat(path, &b));
    ASSERT(a.st_size + b.st_size <= 8192);
    ASSERT(a.st_size + b.st_size >= 4096 - 200);
    struct fl_buf out;
    char joined[1 << 16];
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_logbook_tail(lb, "busy", 3, &out));
    lines_of(out.data, joined, sizeof(joined));
    ASSERT_STR_EQ(joined, "line 1997|line 1998|line 1999");
    /* all that is kept is the most recent, in order */
    fl_buf_reset(&out);
    ASSERT_OK(fl_logbook_tail(lb, "busy", 0, &out));
    lines_of(out.data, joined, sizeof(joined));
    ASSERT(strstr(joined, "line 1999") != NULL);
    ASSERT(strstr(joined, "line 0|") == NULL);
    fl_buf_release(&out);
    fl_logbook_close(lb);
}

TEST(tail_into_a_small_buffer_keeps_whole_recent_lines)
{
    struct fl_logbook *lb = open_book(1 << 20);
    for (int i = 0; i < 10; i++)
        append(lb, "fn", "0123456789");
    struct fl_buf out;
    fl_buf_init(&out, 300); /* room for two JSON lines of ~120 bytes */
    ASSERT_EQ(fl_logbook_tail(lb, "fn", 0, &out), FL_ETOOBIG);
    ASSERT(out.len > 0);
    ASSERT_EQ(out.data[out.len - 1], '\n');
    char joined[1024];
    lines_of(out.data, joined, sizeof(joined));
    ASSERT_STR_EQ(joined, "0123456789|0123456789");
    fl_buf_release(&out);
    fl_logbook_close(lb);
}

struct seen {
    int count;
    char last[512];
};

static void on_line(void *data, const char *json_line, size_t len)
{
    struct seen *s = data;
    s->count++;
    snprintf(s->last, sizeof(s->last), "%.*s", (int)len, json_line);
}

TEST(followers_get_new_lines_of_their_function)
{
    struct fl_logbook *lb = open_book(1 << 20);
    struct seen a = {0}, b = {0};
    struct fl_log_follower *fa, *fb;
    ASSERT_OK(fl_logbook_follow(lb, "hello", on_line, &a, &fa));
    ASSERT_OK(fl_logbook_follow(lb, "other", on_line, &b, &fb));
    append(lb, "hello", "hi");
    append(lb, "hello", "again");
    append(lb, "other", "x");
    ASSERT_EQ(a.count, 2);
    ASSERT(strstr(a.last, "\"line\":\"again\"}\n") != NULL);
    ASSERT_EQ(b.count, 1);
    fl_logbook_unfollow(lb, fa);
    append(lb, "hello", "unseen");
    ASSERT_EQ(a.count, 2);
    fl_logbook_close(lb); /* frees fb */
}

TEST(odd_output_is_logged_not_dropped)
{
    struct fl_logbook *lb = open_book(1 << 20);
    append(lb, "fn", "bad \xff\xfe bytes \xc3\x28 and \xe2\x82");
    struct fl_log_line nul = {.ts_ms = 0,
                              .function = "fn",
                              .instance = "i",
                              .stream = "stderr",
                              .text = "a\0b",
                              .len = 3};
    ASSERT_OK(fl_logbook_append(lb, &nul));
    char *big = malloc(FL_LOG_LINE_MAX * 2);
    memset(big, 'x', FL_LOG_LINE_MAX * 2 - 1);
    big[FL_LOG_LINE_MAX * 2 - 1] = '\0';
    append(lb, "fn", big);
    free(big);
    struct fl_buf out;
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_logbook_tail(lb, "fn", 0, &out));
    ASSERT(strstr(out.data, "\"line\":\"bad ?? bytes ?( and ??\"") != NULL);
    ASSERT(strstr(out.data, "\"truncated\":true") != NULL);
    ASSERT(strstr(out.data, "a\\u0000b") != NULL || strstr(out.data, "a?b") != NULL);
    fl_buf_release(&out);
    struct fl_log_line bad = {.function = "Bad/Name", .stream = "stdout", .text = "x", .len = 1};
    ASSERT_EQ(fl_logbook_append(lb, &bad), FL_EINVAL);
    ASSERT_OK(fl_logbook_remove(lb, "fn"));
    fl_buf_init(&out, 1 << 20);
    ASSERT_OK(fl_logbook_tail(lb, "fn", 0, &out));
    ASSERT_EQ(out.len, 0);
    fl_buf_release(&out);
    fl_logbook_close(lb);
}
