/*
 * The pieces of HTTP/1.1 that the server, the client and the runtimes
 * share, so that each is written once: listening and target addresses,
 * the header block of a message as http-parser hands it over in pieces,
 * the checks on a header a program may set, the names a proxy does not
 * pass on, the Content-Length line, and the http:// URLs that name where
 * flintd itself calls out (an async invocation's callback).
 *
 * Depends only on base/ and libuv (for the socket address). Nothing here
 * keeps state between calls but what the caller passes in.
 */
#ifndef FLINT_HTTP_PARSE_H
#define FLINT_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "http/server.h" /* struct fl_http_header */

/* ---- addresses ---- */

/* A parsed address: a Unix socket path, or a TCP socket address. */
struct fl_http_addr {
    bool is_unix;
    const char *path;           /* is_unix: points into the parsed string, after "unix:" */
    struct sockaddr_storage sa; /* otherwise: IPv4 or IPv6, with the port */
};

/* Port 0 is allowed (to listen on a port the kernel picks). */
#define FL_HTTP_ADDR_PORT_ZERO 1u

/*
 * Parse "HOST:PORT" (a numeric IPv4 address), "[V6]:PORT" or "unix:PATH"
 * into out. The port is 1..65535, or 0..65535 with FL_HTTP_ADDR_PORT_ZERO;
 * PATH is non-empty and fits a sockaddr_un with its NUL. No name is
 * resolved. 0, or FL_EINVAL for anything else (out is then unspecified).
 */
int fl_http_addr_parse(const char *addr, unsigned flags, struct fl_http_addr *out);

/* ---- URLs ---- */

#define FL_HTTP_URL_MAX        2048 /* a whole URL, in bytes */
#define FL_HTTP_URL_HOST_MAX   253  /* a DNS name; IP literals are shorter */
#define FL_HTTP_URL_TARGET_MAX FL_HTTP_URL_MAX

/* A parsed http:// URL, in fixed buffers (no allocation). */
struct fl_http_url {
    char host[FL_HTTP_URL_HOST_MAX + 1]; /* a name (lowercased), an IPv4 address, or an
                                          * IPv6 address without its brackets */
    bool host_is_name;                   /* a name, which must be resolved before
                                          * connecting: fl_http_addr_parse() and the
                                          * client take IP addresses only */
    bool host_is_ipv6;
    uint16_t port;                           /* 80 when the URL gives none */
    char address[FL_HTTP_URL_HOST_MAX + 10]; /* "HOST:PORT" or "[V6]:PORT", always with
                                              * the port: the form fl_http_addr_parse()
                                              * and the client's target take (for an IP
                                              * host), and a Host header's value */
    char target[FL_HTTP_URL_TARGET_MAX + 1]; /* the request target: "/path?query", "/"
                                              * when the URL has no path */
};

/*
 * Parse url, strictly: "http://HOST[:PORT][/PATH][?QUERY]", the scheme in
 * any case, HOST a DNS name (labels of letters, digits and '-'), a dotted
 * IPv4 address or "[V6]" (no zone), PORT 1..65535 (80 when left out).
 * Refused: another scheme ("https" with its own message: only http is
 * supported), user information ("user:pass@"), a fragment ('#'), spaces,
 * control characters and bytes past ASCII (percent-encode them), a '%' not
 * followed by two hex digits, and a URL longer than FL_HTTP_URL_MAX.
 * 0 with out filled, or FL_EINVAL with why in err (lowercase, without the
 * URL: "only http:// URLs are supported, not https://"; err may be NULL)
 * and out unspecified. No name is resolved.
 */
int fl_http_url_parse(const char *url, struct fl_http_url *out, struct fl_buf *err);

/* The value of key in a query string ("a=1&b=2"; NULL for none), decoded
 * (%XX, and '+' as a space) into out, cut to size - 1 bytes: true, or
 * false if key is absent. A key without '=' has the value "". A decoded
 * value may hold any byte, NUL included (it then ends there): check it. */
bool fl_http_query_value(const char *query, const char *key, char *out, size_t size);

/* ---- a header block being parsed ---- */

/* Where one header's name and value are in the caller's store, by offset
 * (the store may move as it grows). value_off 0: no value came. */
struct fl_http_field {
    size_t name_off, name_len, value_off, value_len;
};

/*
 * The header fields of one message, as http-parser gives them: a name and
 * a value each in one or more pieces. Their bytes go into a store the
 * caller owns (a struct fl_buf, whose maximum bounds them), each name and
 * value NUL-terminated once the next begins; the fields index them.
 * The caller checks the pieces (token names, control characters) and its
 * own byte limits before handing them over.
 */
struct fl_http_fields {
    struct fl_http_field *index;
    size_t n;      /* fields so far */
    size_t cap;    /* room in index */
    bool in_value; /* the last piece was a value */
};

/* An empty set of fields, owning no memory. */
void fl_http_fields_init(struct fl_http_fields *f);

/* Forget the fields, keeping the index's memory for the next message. */
void fl_http_fields_reset(struct fl_http_fields *f);

/* Free the index. */
void fl_http_fields_release(struct fl_http_fields *f);

/*
 * A piece of a header name. After a value (or as the first piece) it
 * starts a new field; what the store held before is closed with a NUL
 * first (a store that is empty gets none). 0; FL_ERANGE if a new field
 * would make more than max (nothing is changed); FL_ENOMEM or FL_ETOOBIG
 * (the store is full) otherwise.
 */
int fl_http_fields_add_name(struct fl_http_fields *f, struct fl_buf *store, const char *at,
                            size_t len, size_t max);

/* A piece of the current field's value (a name came first). 0, FL_ENOMEM
 * or FL_ETOOBIG. */
int fl_http_fields_add_value(struct fl_http_fields *f, struct fl_buf *store, const char *at,
                             size_t len);

/*
 * Point out[0..f->n) at the names and values in base (the store's data
 * now, NUL-terminated after the last value: append a NUL first). A field
 * without a value gets "". The headers are valid while the store is not
 * changed.
 */
void fl_http_fields_expose(const struct fl_http_fields *f, const char *base,
                           struct fl_http_header *out);

/* ---- header names and lines ---- */

/*
 * Whether a program may set this header on a message the library frames:
 * the name is a token, the value holds no control character (but HTAB),
 * and it is not Content-Length or Transfer-Encoding, which the library
 * writes itself. The client refuses a request with any other, and the C
 * runtime a response header.
 */
bool fl_http_header_settable(const char *name, size_t name_len, const char *value,
                             size_t value_len);

/* Whether name is one of the hop-by-hop headers (RFC 9110 7.6.1) and the
 * framing ones a proxy never passes on as they came: Connection,
 * Keep-Alive, Transfer-Encoding, Content-Length, TE, Trailer, Upgrade,
 * Proxy-Connection, Expect. Case-insensitive. */
bool fl_http_is_hop_by_hop(const char *name, size_t len);

/* Append "Content-Length: N\r\n" to out. 0, or out's error (FL_ENOMEM,
 * FL_ETOOBIG). */
int fl_http_append_content_length(struct fl_buf *out, uint64_t n);

#endif
