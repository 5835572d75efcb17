/*
 * A program's options as one table, after Redis's config table: each row
 * names an option (--name), the environment variable read when the option
 * is not given, the kind of value it takes, where the value is stored, its
 * default, its bounds and its help. Parsing, the environment fallbacks, the
 * checks and their error messages, and --help are all made from the rows,
 * so an option is added by adding a row:
 *
 *     struct config { int64_t retention_ms; };
 *     static const struct fl_option options[] = {
 *         {"retention", "FLINT_RETENTION", FL_OPTION_DURATION_AT(struct config, retention_ms),
 *          "7d", "DURATION", 1000, 0, "how long finished work is kept"},
 *     };
 *
 * A value comes from the command line (`--name VALUE` or `--name=VALUE`;
 * the last one given wins), else from the environment variable when it is
 * set and not empty, else from the row's default, and is parsed the same
 * way whichever it came from, so a default is checked like a value given.
 * `--` ends the options; `--help`/`-h` and `--version` are always known.
 */
#ifndef FLINT_BASE_OPTIONS_H
#define FLINT_BASE_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/log.h"

/* What an option takes, and the type of the field it is stored in. */
enum fl_option_type {
    FL_OPTION_STRING,    /* const char *: the text itself (argv's or the environment's) */
    FL_OPTION_DURATION,  /* int64_t milliseconds: "250ms", "30s", "5m", "1h", "7d" */
    FL_OPTION_SIZE,      /* uint64_t bytes: "512", "64KiB", "1MiB", "2G" */
    FL_OPTION_COUNT,     /* int64_t: a whole number */
    FL_OPTION_UID_RANGE, /* struct fl_uid_range: BASE:COUNT host uids */
    FL_OPTION_LOG_LEVEL, /* enum fl_log_level: debug, info, warn or error */
};

/* A range of host uids no account uses: base .. base+count-1. BASE is at
 * least 1000 (below are the system's and the first users') and the range
 * ends below 4294967295 ((uid_t)-1); the row's min and max bound COUNT. */
struct fl_uid_range {
    uint64_t base;
    uint64_t count;
};

struct fl_option {
    const char *name;         /* "drain": the option --drain */
    const char *env;          /* "FLINT_DRAIN": read when the option is absent; NULL: none */
    enum fl_option_type type; /* with offset, from an FL_OPTION_*_AT() macro */
    size_t offset;            /* where the value goes in the caller's struct */
    const char *fallback;     /* the default, as text; NULL: none (the field is left alone) */
    const char *arg;          /* the value's name in --help: "DURATION" */
    int64_t min, max;         /* durations (ms), sizes (bytes), counts, a uid range's COUNT:
                                 the bounds, inclusive; max 0: no upper bound */
    const char *help;         /* one sentence for --help, without the default */
};

/* The offset of field in struct type, which must be of C type ctype (a
 * mismatch does not compile), and the option type that goes with it. */
#define FL_OPTION_AT(type, field, ctype)                                                           \
    (offsetof(type, field) + 0 * sizeof(&((type *)0)->field == (ctype *)0))
#define FL_OPTION_STRING_AT(type, field)   FL_OPTION_STRING, FL_OPTION_AT(type, field, const char *)
#define FL_OPTION_DURATION_AT(type, field) FL_OPTION_DURATION, FL_OPTION_AT(type, field, int64_t)
#define FL_OPTION_SIZE_AT(type, field)     FL_OPTION_SIZE, FL_OPTION_AT(type, field, uint64_t)
#define FL_OPTION_COUNT_AT(type, field)    FL_OPTION_COUNT, FL_OPTION_AT(type, field, int64_t)
#define FL_OPTION_UID_RANGE_AT(type, field)                                                        \
    FL_OPTION_UID_RANGE, FL_OPTION_AT(type, field, struct fl_uid_range)
#define FL_OPTION_LOG_LEVEL_AT(type, field)                                                        \
    FL_OPTION_LOG_LEVEL, FL_OPTION_AT(type, field, enum fl_log_level)

/* What fl_options_parse() found the program is to do. */
enum fl_options_outcome {
    FL_OPTIONS_RUN = 0,     /* every value is stored */
    FL_OPTIONS_HELP = 1,    /* --help or -h: print fl_options_usage() and exit 0 */
    FL_OPTIONS_VERSION = 2, /* --version */
};

/*
 * Parse argv[1..argc-1] against the n rows of opts and store every value
 * into cfg, the struct the rows' offsets are of (a string points into argv
 * or the environment). Returns an fl_options_outcome (>= 0), or:
 *   FL_EPARSE  the command line is malformed: an unknown option, one
 *              without its value, an argument that is not an option
 *              (show the usage);
 *   FL_EINVAL  a value is not what its option takes, or out of its bounds;
 * with a message in err naming where the value came from and what it must
 * be ("--max-body takes a size from 1KiB to 64MiB, not '1TiB'"). On an
 * error, cfg may hold some of the values.
 */
int fl_options_parse(const struct fl_option *opts, size_t n, int argc, char **argv, void *cfg,
                     char *err, size_t errsize);

/* Print "usage: PROGRAM [OPTION]...", then a line per option (wrapped to 80
 * columns): --name ARG, its help, its variable and its default. */
void fl_options_usage(const struct fl_option *opts, size_t n, const char *program, FILE *to);

#endif
