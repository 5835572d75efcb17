/*
 * Declarative specs: YAML and JSON documents to jansson values and back.
 *
 * Environments, functions, routes and workflows are written by people as
 * YAML (or JSON) and handled inside Flint as jansson values. This module is
 * the one place that converts between them, with the limits an untrusted
 * document needs: nesting depth, input size, no aliases (so no "billion
 * laughs"), duplicate keys refused, and every error located by line and
 * column.
 *
 * Plain YAML scalars are typed as in the YAML 1.2 core schema: null, ~ and
 * the empty scalar are null; true/false (any case) are booleans; decimal,
 * 0x and 0o integers are integers; decimal floats, .inf and .nan are reals;
 * everything else, and every quoted or block scalar, is a string.
 */
#ifndef FLINT_SPEC_SPEC_H
#define FLINT_SPEC_SPEC_H

#include <jansson.h>
#include <stddef.h>

#include "base/buf.h"

#define FL_SPEC_MAX_DEPTH 64
#define FL_SPEC_MAX_BYTES (8u << 20)

/*
 * Parse text (len bytes; YAML, which may hold several "---" documents, or
 * JSON when its first non-blank character is '{' or '[') into a JSON array
 * holding one value per document. name is used in error messages (a file
 * name, or "request body").
 *
 * Returns 0 and stores a new reference in *out (the caller json_decref()s
 * it), or FL_EPARSE / FL_ETOOBIG / FL_ENOMEM with a message in err such as
 * "hello.yaml:3:7: duplicate key 'name'" and *out left NULL.
 */
int fl_spec_parse(const char *text, size_t len, const char *name, json_t **out, struct fl_buf *err);

/* Read the file at path and parse it as fl_spec_parse() does. Also fails
 * with a negative errno code (message in err) if the file cannot be read. */
int fl_spec_parse_file(const char *path, json_t **out, struct fl_buf *err);

/*
 * Append v as one YAML document (block style, keys in the order the object
 * holds them) to out. Strings that would read back as another type ("true",
 * "12", "") are quoted, and multi-line strings use the literal block style,
 * so that fl_spec_parse() gives back an equal value.
 * 0, FL_ETOOBIG (out is full) or FL_ENOMEM.
 */
int fl_spec_emit_yaml(json_t *v, struct fl_buf *out);

#endif
