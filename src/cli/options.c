/* Commands' options as tables (cli.h: cli_parse_options()). */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

/* Whether flag is a word of the space-separated list. */
static bool listed(const char *list, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = list; (p = strstr(p, flag)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* Whether the n bytes of arg are word (NULL: never). */
static bool is(const char *arg, size_t n, const char *word)
{
    return word != NULL && strlen(word) == n && strncmp(arg, word, n) == 0;
}

int cli_parse_options(const char *cmd, const struct cli_opt *table, size_t nrows, const char *takes,
                      int argc, char **argv, void *opts,
                      int (*positional)(void *opts, const char *arg))
{
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (positional == NULL)
                return cli_error("'flint %s' takes no argument '%s'", cmd, arg), 2;
            int rc = positional(opts, arg);
            if (rc != 0)
                return rc;
            continue;
        }
        size_t k, n = strcspn(arg, "=");
        for (k = 0; k < nrows; k++)
            if ((is(arg, n, table[k].flag) || is(arg, n, table[k].alias)) &&
                listed(takes, table[k].flag))
                break;
        if (k == nrows)
            return cli_error("'flint %s' has no option '%s'", cmd, arg), 2;
        if (table[k].kind == CLI_OPT_SWITCH) {
            if (arg[n] == '=')
                return cli_error("%.*s takes no value", (int)n, arg), 2;
            *(bool *)((char *)opts + table[k].offset) = true;
            continue;
        }
        char flag[32];
        snprintf(flag, sizeof(flag), "%.*s", (int)n, arg);
        const char *v = cli_option_value(argc, argv, &i, flag);
        if (v == NULL)
            return cli_error("%s needs a value", flag), 2;
        if (table[k].kind == CLI_OPT_VALUE) {
            *(const char **)((char *)opts + table[k].offset) = v;
            continue;
        }
        struct cli_headers *h = (struct cli_headers *)((char *)opts + table[k].offset);
        if (h->n == CLI_MAX_HEADERS)
            return cli_error("at most %d %s", CLI_MAX_HEADERS, flag), 2;
        if (table[k].kind == CLI_OPT_LIST && strchr(v, '=') == NULL)
            return cli_error("%s takes 'name=value', not '%s'", flag, v), 2;
        if (table[k].kind == CLI_OPT_HEADER && strchr(v, ':') == NULL)
            return cli_error("-H takes 'Name: value', not '%s'", v), 2;
        h->lines[h->n++] = v;
    }
    return 0;
}
