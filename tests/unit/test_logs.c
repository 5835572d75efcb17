/* Unit tests for src/exec/logs: per-function bounded logs, tail, follow. */
#include "runner.h"

#include "base/clock.h"
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

/* What jansson writes for line: the encoding lines had before they were
 * written by hand, and must keep. */
static char *jansson_line(const struct fl_log_line *line)
{
    size_t n = line->len > FL_LOG_LINE_MAX ? FL_LOG_LINE_MAX : line->len;
    char ts[32];
    json_t *obj = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s%}", "ts",
                            fl_clock_format(line->ts_ms, ts, sizeof(ts)), "function",
                            line->function, "revision", (json_int_t)line->revision, "instance",
                            line->instance, "stream", line->stream, "line", line->text, n);
    ASSERT(obj != NULL);
    if (n < line->len)
        json_object_set_new(obj, "truncated", json_true());
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    return text;
}

/* A random UTF-8 string of up to max bytes: ASCII with every control,
 * quotes and backslashes, and code points of every length. */
static size_t random_text(char *out, size_t max, unsigned *seed)
{
    size_t n = 0;
    while (n + 4 < max) {
        unsigned r = (unsigned)rand_r(seed);
        unsigned cp;
        switch (r % 8) {
        case 0:
            cp = (r >> 3) % 0x20;
            break; /* controls, NUL included */
        case 1:
            cp = "\"\\/'"[(r >> 3) % 4];
            break;
        case 2:
            cp = 0x80 + (r >> 3) % 0x780;
            break;
        case 3:
            cp = 0x800 + (r >> 3) % (0xD800 - 0x800);
            break;
        case 4:
            cp = 0xE000 + (r >> 3) % 0x2000;
            break;
        case 5:
            cp = 0x10000 + (r >> 3) % 0x100000;
            break;
        case 6:
            cp = 0x7F;
            break;
        default:
            cp = 0x20 + (r >> 3) % 0x5F;
        }
        if (cp < 0x80) {
            out[n++] = (char)cp;
        } else if (cp < 0x800) {
            out[n++] = (char)(0xC0 | cp >> 6);
            out[n++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[n++] = (char)(0xE0 | cp >> 12);
            out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[n++] = (char)(0xF0 | cp >> 18);
            out[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[n++] = (char)(0x80 | (cp & 0x3F));
        }
        if (r % 97 == 0)
            break;
    }
    return n;
}

struct captured {
    char *text;
    size_t len;
};

static void capture(void *data, const char *json_line, size_t len)
{
    struct captured *c = data;
    free(c->text);
    c->text = malloc(len + 1);
    ASSERT(c->text != NULL);
    memcpy(c->text, json_line, len);
    c->text[len] = '\0';
    c->len = len;
}

TEST(lines_are_encoded_byte_for_byte_as_jansson_encoded_them)
{
    struct fl_logbook *lb = open_book(1u << 20);
    struct captured got = {0};
    struct fl_log_follower *f;
    ASSERT_OK(fl_logbook_follow(lb, "fn", capture, &got, &f));
    static char text[FL_LOG_LINE_MAX + 64];
    unsigned seed = 11;
    for (int i = 0; i < 3000; i++) {
        /* now and then a line past the cut, whole code points before it */
        size_t max = i % 50 == 0 ? sizeof(text) : 300;
        size_t n = random_text(text, max, &seed);
        if (i % 50 == 0) {
            memset(text, 'x', FL_LOG_LINE_MAX);
            n = FL_LOG_LINE_MAX + 10;
        }
        struct fl_log_line line = {.ts_ms = 1795001522123LL,
                                   .function = "fn",
                                   .revision = i % 3 == 0 ? -i : i,
                                   .instance = "0190f1a2-\"x\"",
                                   .stream = i % 2 ? "stdout" : "stderr",
                                   .text = text,
                                   .len = n};
        ASSERT_OK(fl_logbook_append(lb, &line));
        char *want = jansson_line(&line);
        ASSERT(want != NULL);
        ASSERT(got.text != NULL);
        ASSERT_EQ(got.len, strlen(want) + 1);
        ASSERT(got.text[got.len - 1] == '\n');
        size_t at = 0;
        while (at < got.len - 1 && got.text[at] == want[at])
            at++;
        if (at < got.len - 1)
            fl_test_fail(__FILE__, __LINE__, "line %d differs at byte %zu:\n got %.80s\nwant %.80s",
                         i, at, got.text + at, want + at);
        free(want);
    }
    fl_logbook_unfollow(lb, f);
    free(got.text);
    fl_logbook_close(lb);
}
