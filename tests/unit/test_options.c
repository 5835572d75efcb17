/*
 * Unit tests for src/base/options.h: a program's options from one table
 * (flintd's): where each value comes from, the checks and their messages,
 * malformed command lines, and the usage made from the rows.
 */
#include "runner.h"

#include "base/error.h"
#include "base/options.h"
#include "exec/sandbox.h"

#include <stdlib.h>

struct config {
    const char *name;
    int64_t wait_ms;
    uint64_t body;
    int64_t queue;
    struct fl_uid_range uids;
    enum fl_log_level level;
    const char *file; /* no default */
};

static const struct fl_option rows[] = {
    {"name", "TEST_NAME", FL_OPTION_STRING_AT(struct config, name), "anon", "NAME", 0, 0,
     "who it is"},
    {"wait", "TEST_WAIT", FL_OPTION_DURATION_AT(struct config, wait_ms), "10s", "DURATION", 1, 0,
     "how long to wait"},
    {"max-body", "TEST_MAX_BODY", FL_OPTION_SIZE_AT(struct config, body), "1MiB", "SIZE", 1024,
     64 << 20, "largest body"},
    {"queue", NULL, FL_OPTION_COUNT_AT(struct config, queue), "1000", "N", 0, 1000000,
     "requests waiting"},
    {"uids", "TEST_UIDS", FL_OPTION_UID_RANGE_AT(struct config, uids), "2000000000:65536",
     "BASE:COUNT", 16, 65536, "the host uids"},
    {"log-level", "TEST_LOG_LEVEL", FL_OPTION_LOG_LEVEL_AT(struct config, level), "info", "LEVEL",
     0, 0, "debug, info, warn or error"},
    {"file", "TEST_FILE", FL_OPTION_STRING_AT(struct config, file), NULL, "PATH", 0, 0,
     "a file, when one is given; this help is long enough to be wrapped over several lines of "
     "the usage without any of them going past the eightieth column"},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static char err[512];

/* Parse the NULL-terminated arguments (after the program's name). */
static int parse(struct config *c, const char *const *args)
{
    char *argv[32] = {"prog"};
    int argc = 1;
    while (args[argc - 1] != NULL && argc < 31) {
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    memset(c, 0, sizeof(*c));
    err[0] = '\0';
    return fl_options_parse(rows, NROWS, argc, argv, c, err, sizeof(err));
}

TEST(values_come_from_the_flag_then_the_variable_then_the_default)
{
    struct config c;
    ASSERT_OK(parse(&c, (const char *[]){NULL}));
    ASSERT_STR_EQ(c.name, "anon");
    ASSERT_EQ(c.wait_ms, 10000);
    ASSERT_EQ(c.body, 1u << 20);
    ASSERT_EQ(c.queue, 1000);
    ASSERT_EQ(c.uids.base, 2000000000u);
    ASSERT_EQ(c.uids.count, 65536u);
    ASSERT_EQ(c.level, FL_LOG_INFO);
    ASSERT(c.file == NULL); /* no default: left alone */

    setenv("TEST_NAME", "ada", 1);
    setenv("TEST_WAIT", "250ms", 1);
    setenv("TEST_UIDS", "1500000000:64", 1);
    setenv("TEST_LOG_LEVEL", "", 1); /* empty: as if unset */
    setenv("TEST_FILE", "/tmp/f", 1);
    ASSERT_OK(parse(&c, (const char *[]){"--wait", "2m", "--max-body=6MiB", "--queue", "0",
                                         "--log-level", "warn", "--queue", "7", NULL}));
    ASSERT_STR_EQ(c.name, "ada"); /* the variable */
    ASSERT_EQ(c.wait_ms, 120000); /* the flag wins over the variable */
    ASSERT_EQ(c.body, 6u << 20);  /* --name=value */
    ASSERT_EQ(c.queue, 7);        /* the last one given */
    ASSERT_EQ(c.uids.base, 1500000000u);
    ASSERT_EQ(c.uids.count, 64u);
    ASSERT_EQ(c.level, FL_LOG_WARN);
    ASSERT_STR_EQ(c.file, "/tmp/f");
    /* a value that starts with a dash is a value */
    ASSERT_OK(parse(&c, (const char *[]){"--name", "-x", "--", NULL}));
    ASSERT_STR_EQ(c.name, "-x");
}

TEST(a_bad_value_says_where_it_came_from_and_what_the_option_takes)
{
    struct config c;
    static const struct {
        const char *args[3];
        const char *env, *env_value;
        const char *message;
    } cases[] = {
        {{"--max-body", "1TiB"},
         NULL,
         NULL,
         "--max-body takes a size from 1KiB to 64MiB, like 64MiB, not '1TiB'"},
        {{"--max-body", "65MiB"}, NULL, NULL, "--max-body takes a size from 1KiB to 64MiB"},
        {{"--wait", "0"},
         NULL,
         NULL,
         "--wait takes a duration of at least 1ms, like 10s or 500ms, not '0'"},
        {{"--queue", "-1"}, NULL, NULL, "--queue takes a number from 0 to 1000000, not '-1'"},
        {{"--queue", "12x"}, NULL, NULL, "--queue takes a number"},
        {{"--log-level", "loud"},
         NULL,
         NULL,
         "--log-level takes debug, info, warn or error, not 'loud'"},
        {{NULL},
         "TEST_WAIT",
         "soon",
         "TEST_WAIT (for --wait) takes a duration of at least 1ms, like 10s or 500ms, not 'soon'"},
        {{"--uids", "0:64"}, NULL, NULL, "--uids takes BASE:COUNT"},
        {{"--uids", "1500000000"}, NULL, NULL, "--uids takes BASE:COUNT"},
        {{"--uids", "1500000000:1"}, NULL, NULL, "COUNT from 16 to 65536"},
        {{"--uids", "x:y"}, NULL, NULL, "not 'x:y'"},
        {{"--uids", "4294967200:65536"}, NULL, NULL, "--uids takes BASE:COUNT"},
        {{"--uids", "1500000000:65537"}, NULL, NULL, "--uids takes BASE:COUNT"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].env != NULL)
            setenv(cases[i].env, cases[i].env_value, 1);
        int rc = parse(&c, cases[i].args);
        if (cases[i].env != NULL)
            unsetenv(cases[i].env);
        if (rc != FL_EINVAL || strstr(err, cases[i].message) == NULL)
            fl_test_fail(__FILE__, __LINE__, "case %zu: %d '%s'", i, rc, err);
    }
    /* the same values within bounds pass */
    ASSERT_OK(parse(&c, (const char *[]){"--max-body", "64MiB", "--uids", "4294901758:65536",
                                         "--wait", "1ms", NULL}));
    ASSERT_EQ(c.uids.base + c.uids.count, 4294967294u);
}

TEST(a_malformed_command_line_is_a_parse_error_and_help_and_version_are_known)
{
    struct config c;
    ASSERT_EQ(parse(&c, (const char *[]){"--bogus", NULL}), FL_EPARSE);
    ASSERT_STR_EQ(err, "unknown option '--bogus'");
    ASSERT_EQ(parse(&c, (const char *[]){"--nam", "x", NULL}), FL_EPARSE); /* no abbreviations */
    ASSERT_EQ(parse(&c, (const char *[]){"--wait", NULL}), FL_EPARSE);
    ASSERT_STR_EQ(err, "--wait needs a value (DURATION)");
    ASSERT_EQ(parse(&c, (const char *[]){"stray", NULL}), FL_EPARSE);
    ASSERT_STR_EQ(err, "unexpected argument 'stray'");
    ASSERT_EQ(parse(&c, (const char *[]){"--", "stray", NULL}), FL_EPARSE);
    ASSERT_EQ(parse(&c, (const char *[]){"-x", NULL}), FL_EPARSE);
    ASSERT_EQ(parse(&c, (const char *[]){"--queue", "1", "--help", "--bogus", NULL}),
              FL_OPTIONS_HELP);
    ASSERT_EQ(parse(&c, (const char *[]){"-h", NULL}), FL_OPTIONS_HELP);
    ASSERT_EQ(parse(&c, (const char *[]){"--version", NULL}), FL_OPTIONS_VERSION);
}

TEST(a_default_is_checked_like_a_value_given)
{
    static const struct fl_option bad[] = {
        {"wait", NULL, FL_OPTION_DURATION_AT(struct config, wait_ms), "0s", "DURATION", 1, 0,
         "how long"},
    };
    struct config c;
    char *argv[] = {"prog", NULL};
    ASSERT_EQ(fl_options_parse(bad, 1, 1, argv, &c, err, sizeof(err)), FL_EINVAL);
    ASSERT(strstr(err, "the default of --wait takes a duration") != NULL);
}

TEST(the_usage_lists_every_row_with_its_variable_default_and_bounds)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ASSERT(f != NULL);
    fl_options_usage(rows, NROWS, "prog", f);
    ASSERT_OK(fclose(f));
    ASSERT(strncmp(text, "usage: prog [OPTION]...\n", 24) == 0);
    for (size_t i = 0; i < NROWS; i++) {
        char head[64];
        snprintf(head, sizeof(head), "  --%s %s ", rows[i].name, rows[i].arg);
        if (strstr(text, head) == NULL)
            fl_test_fail(__FILE__, __LINE__, "no '%s' in:\n%s", head, text);
        if (rows[i].env != NULL && strstr(text, rows[i].env) == NULL)
            fl_test_fail(__FILE__, __LINE__, "no %s in:\n%s", rows[i].env, text);
    }
    /* the help as one line: the wrapping undone */
    char flat[4096];
    size_t k = 0;
    for (const char *p = text; *p != '\0' && k + 1 < sizeof(flat); p++) {
        if (*p == '\n' || *p == ' ') {
            while (p[1] == ' ' || p[1] == '\n')
                p++;
            flat[k++] = ' ';
        } else {
            flat[k++] = *p;
        }
    }
    flat[k] = '\0';
    ASSERT(strstr(flat, "largest body (TEST_MAX_BODY; default 1MiB; from 1KiB to 64MiB)") != NULL);
    ASSERT(strstr(flat, "requests waiting (default 1000; from 0 to 1000000)") != NULL);
    ASSERT(strstr(flat, "(TEST_UIDS; default 2000000000:65536; COUNT from 16 to 65536)") != NULL);
    ASSERT(strstr(flat, "the eightieth column (TEST_FILE) --help") != NULL); /* in order */
    ASSERT(strstr(text, "--help") != NULL && strstr(text, "--version") != NULL);
    /* wrapped: no line past the eightieth column */
    for (const char *line = text; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        if (n > 80)
            fl_test_fail(__FILE__, __LINE__, "a line of %zu columns: %.*s", n, (int)n, line);
        line += n + (line[n] == '\n');
    }
    free(text);
}

TEST(flintd_s_default_uid_range_is_the_sandbox_s)
{
    char text[64];
    snprintf(text, sizeof(text), "%u:%u", FL_SANDBOX_UID_BASE, FL_SANDBOX_UID_COUNT);
    ASSERT_STR_EQ(text, FL_SANDBOX_UIDS_DEFAULT);
}
