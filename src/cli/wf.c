/* flint wf validate: check a workflow definition here, without a daemon:
 * its structure, its graph and its expressions' syntax (compiled with
 * mujs in this process, never run: wf/js.h). Functions and workflows its
 * tasks run are looked up only when it is created. */
#include "cli/cli.h"

#include "base/error.h"
#include "spec/spec.h"
#include "wf/js.h"
#include "wf/wf.h"

#include <stdio.h>
#include <string.h>

int cmd_wf_validate(struct cli *cli, int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 2; i < argc; i++) {
        const char *v = cli_option_value(argc, argv, &i, "--spec");
        if (v == NULL)
            return cli_error("'flint wf validate' has no option '%s'", argv[i]), 2;
        file = v;
    }
    if (file == NULL)
        return cli_error("'flint wf validate' needs --spec FILE"), 2;

    struct fl_buf err;
    json_t *docs = NULL;
    int rc = 1;
    fl_buf_init(&err, 4096);
    if (fl_spec_parse_file(file, &docs, &err) != 0) {
        cli_error("%s", err.data);
        goto out;
    }
    if (json_array_size(docs) != 1) {
        cli_error("%s: must hold one document, the workflow's definition", file);
        goto out;
    }
    const struct fl_wf_lookup lookup = {.expr = fl_wf_js_check};
    struct fl_wf_errors errs;
    fl_wf_errors_init(&errs);
    int check = fl_wf_check(json_array_get(docs, 0), &lookup, &errs);
    if (check == 0) {
        printf("%s: a valid workflow (the functions and workflows it runs are checked when it "
               "is created)\n",
               file);
        rc = 0;
    } else if (check == FL_EINVAL) {
        const char *p = errs.text.data != NULL ? errs.text.data : "";
        size_t listed = 0;
        while (*p != '\0') {
            size_t n = strcspn(p, "\n");
            fprintf(stderr, "%s: %.*s\n", file, (int)n, p);
            listed++;
            p += n + (p[n] == '\n');
        }
        if (errs.n > listed)
            fprintf(stderr, "%s: ... and %zu more\n", file, errs.n - listed);
        fprintf(stderr, "%s: %zu error%s\n", file, errs.n, errs.n > 1 ? "s" : "");
    } else {
        cli_error("%s: %s", file, fl_strerror(check));
    }
    fl_wf_errors_release(&errs);
out:
    json_decref(docs);
    fl_buf_release(&err);
    return rc;
}
