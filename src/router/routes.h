/*
 * The routing table: which function or workflow answers a method and path.
 *
 * A route matches either an exact path, whose segments may be parameters
 * ("/users/{id}/orders"), or a prefix ("/api/" matches "/api" and
 * everything below it). When several routes match, the most specific wins:
 *   1. an exact path beats any prefix;
 *   2. between exact paths, comparing segment by segment from the left, a
 *      literal segment beats a parameter at the first position they differ;
 *   3. between prefixes, the longer one wins;
 *   4. what is still tied goes to the route whose name sorts first, so the
 *      choice never depends on the order routes were added.
 * A path that matches routes only for other methods is reported as such
 * (the router answers 405 with an Allow header).
 *
 * A route may also make async invocations (docs/api.md, src/async): every
 * call (`async`), or the calls that ask with Prefer: respond-async
 * (`allowAsync`), with the route's own retry policy and callback URL if it
 * declares them. A route to a topic publishes every call (and takes none
 * of those fields).
 *
 * The table is rebuilt incrementally as routes are put and removed (the
 * router follows the store's watch), and matched on every request: a match
 * does not allocate.
 */
#ifndef FLINT_ROUTER_ROUTES_H
#define FLINT_ROUTER_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "exec/spec.h" /* struct fl_retry_policy */

#define FL_ROUTE_MAX_SEGMENTS 32
#define FL_ROUTE_MAX_PARAMS   16
#define FL_ROUTE_MAX_PATH     1024

/* What a route calls: a function, a workflow, or a topic, which the
 * request is published to (topics/topics.h: a webhook into a queue). */
enum fl_target_kind { FL_TARGET_FUNCTION, FL_TARGET_WORKFLOW, FL_TARGET_TOPIC };

/* HTTP methods a route accepts, as a bit set; 0 means every method. */
enum {
    FL_METHOD_GET = 1 << 0,
    FL_METHOD_HEAD = 1 << 1,
    FL_METHOD_POST = 1 << 2,
    FL_METHOD_PUT = 1 << 3,
    FL_METHOD_DELETE = 1 << 4,
    FL_METHOD_PATCH = 1 << 5,
    FL_METHOD_OPTIONS = 1 << 6,
};

struct fl_route {
    char *name;
    unsigned methods;
    bool prefix;
    char *path;        /* as declared */
    char *target_name; /* the function, workflow or topic */
    enum fl_target_kind target_kind;
    /* parsed form of path */
    size_t nsegments;
    char *segments[FL_ROUTE_MAX_SEGMENTS]; /* literal text, or the name of a {param} */
    bool is_param[FL_ROUTE_MAX_SEGMENTS];
    /* async invocations (spec fields async, allowAsync, retry, callback) */
    bool async;       /* every call is accepted as an async invocation (202) */
    bool allow_async; /* a caller's Prefer: respond-async makes its call async */
    bool has_retry;   /* the spec has a retry object of its own */
    /* has_retry: the route's fields over FL_RETRY_DEFAULT; otherwise
     * FL_RETRY_DEFAULT, and the invocations take the function's policy */
    struct fl_retry_policy retry;
    char *callback; /* the URL that gets each outcome (checked with
                     * fl_http_url_parse()), or NULL */
};

struct fl_route_param {
    const char *name; /* points into the route */
    char value[256];  /* percent-decoded */
};

struct fl_route_match {
    const struct fl_route *route; /* valid until the table next changes */
    size_t nparams;
    struct fl_route_param params[FL_ROUTE_MAX_PARAMS];
    unsigned allowed; /* on a method mismatch: the methods the path accepts */
};

struct fl_route_table;

/* A new empty table; NULL if out of memory. Free with fl_route_table_free(). */
struct fl_route_table *fl_route_table_new(void);
void fl_route_table_free(struct fl_route_table *t);

/*
 * Check a route spec (see docs/api.md) without adding it: 0, or FL_EINVAL
 * with a message naming the field, e.g. "spec.path: segment 2 '{}' has an
 * empty parameter name".
 */
int fl_route_spec_check(json_t *spec, struct fl_buf *err);

/* Add the route name with spec, replacing a route of that name. 0,
 * FL_EINVAL (message in err, table unchanged) or FL_ENOMEM. */
int fl_route_table_put(struct fl_route_table *t, const char *name, json_t *spec,
                       struct fl_buf *err);

/* Remove the route name. 0 or FL_ENOENT. */
int fl_route_table_remove(struct fl_route_table *t, const char *name);

size_t fl_route_table_size(const struct fl_route_table *t);

/*
 * Find the route for method and path (path without the query; len bytes).
 * Returns 0 with m filled; FL_ENOENT if no route has this path; FL_EACCES
 * if routes have the path but not the method (m->allowed says which
 * methods do); FL_ETOOBIG if the path has more segments or a longer
 * parameter value than a route can hold; FL_EINVAL if the parameter of the
 * route that matches decodes to a control character ("%0D", "%00").
 */
int fl_route_table_match(const struct fl_route_table *t, const char *method, const char *path,
                         size_t len, struct fl_route_match *m);

/* The bit of a method name ("GET"), or 0 for a method Flint does not route. */
unsigned fl_route_method_bit(const char *method, size_t len);

/* Write the methods of a set as "GET, POST" into out. Returns out. */
char *fl_route_methods_format(unsigned methods, char *out, size_t size);

#endif
