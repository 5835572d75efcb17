/*
 * libFuzzer target: arbitrary bytes as a spec file (YAML or JSON).
 *
 * Specs come from people and from the API's request bodies. Every input
 * must either fail with a located message, or parse into documents that
 * survive a round trip: each is emitted as YAML and parsed back to an
 * equal value (what `flint get -o yaml` prints, `flint apply` takes back).
 * Each document's spec also goes through every kind's check (kinds/kinds.h),
 * which must accept or refuse it with a message.
 * Run it with `make fuzz`.
 */
#include "base/buf.h"
#include "base/error.h"
#include "kinds/kinds.h"
#include "spec/spec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void must_explain(int rc, struct fl_buf *err, const char *what)
{
    if (rc == FL_EINVAL && err->len == 0) {
        fprintf(stderr, "%s refused a spec without saying why\n", what);
        abort();
    }
    fl_buf_reset(err);
}

static void check_spec(json_t *spec)
{
    struct fl_buf err;
    fl_buf_init(&err, 4096);
    for (size_t i = 0; i < fl_nkinds; i++)
        must_explain(fl_kinds[i]->check(spec, NULL, &err), &err, fl_kinds[i]->name);
    fl_buf_release(&err);
}

static void round_trip(json_t *doc)
{
    struct fl_buf yaml, err;
    fl_buf_init(&yaml, 64u << 20);
    fl_buf_init(&err, 4096);
    if (fl_spec_emit_yaml(doc, &yaml) != 0)
        abort();
    json_t *back = NULL;
    if (fl_spec_parse(yaml.data, yaml.len, "emitted", &back, &err) != 0) {
        fprintf(stderr, "emitted YAML does not parse: %.*s\n---\n%.*s\n", (int)err.len, err.data,
                (int)yaml.len, yaml.data);
        abort();
    }
    if (json_array_size(back) != 1 || !json_equal(doc, json_array_get(back, 0))) {
        char *want = json_dumps(doc, JSON_ENCODE_ANY);
        char *got = json_dumps(back, JSON_ENCODE_ANY);
        fprintf(stderr, "round trip changed the value:\nwant %s\ngot  %s\nvia\n%.*s\n", want, got,
                (int)yaml.len, yaml.data);
        abort();
    }
    json_decref(back);
    fl_buf_release(&yaml);
    fl_buf_release(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fl_buf err;
    fl_buf_init(&err, 4096);
    json_t *docs = NULL;
    int rc = fl_spec_parse((const char *)data, size, "fuzz", &docs, &err);
    if (rc != 0) {
        if (docs != NULL || err.len == 0)
            abort(); /* a failure leaves nothing and says why */
        fl_buf_release(&err);
        return 0;
    }
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc)
    {
        round_trip(doc);
        json_t *spec = json_object_get(doc, "spec");
        if (spec != NULL)
            check_spec(spec);
        if (json_is_object(doc))
            check_spec(doc);
    }
    json_decref(docs);
    fl_buf_release(&err);
    return 0;
}
