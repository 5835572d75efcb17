/* Unit tests for src/http/parse.h: what the HTTP server, client and
 * runtimes share (addresses, header blocks, header checks). */
#include "runner.h"

#include "base/buf.h"
#include "base/error.h"
#include "http/parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/un.h>

TEST(addr_parses_ipv4_ipv6_and_unix)
{
    struct fl_http_addr a;
    ASSERT_OK(fl_http_addr_parse("127.0.0.1:8080", 0, &a));
    ASSERT(!a.is_unix);
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&a.sa;
    ASSERT_EQ(in4->sin_family, AF_INET);
    ASSERT_EQ(ntohs(in4->sin_port), 8080);
    ASSERT_EQ(ntohl(in4->sin_addr.s_addr), 0x7f000001);

    ASSERT_OK(fl_http_addr_parse("[::1]:443", 0, &a));
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a.sa;
    ASSERT_EQ(in6->sin6_family, AF_INET6);
    ASSERT_EQ(ntohs(in6->sin6_port), 443);
    ASSERT(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));

    const char *unix_addr = "unix:/run/flint/s";
    ASSERT_OK(fl_http_addr_parse(unix_addr, 0, &a));
    ASSERT(a.is_unix);
    ASSERT_STR_EQ(a.path, "/run/flint/s");
    ASSERT(a.path == unix_addr + 5); /* into the string, not a copy */
}

TEST(addr_port_zero_only_when_asked)
{
    struct fl_http_addr a;
    ASSERT_EQ(fl_http_addr_parse("127.0.0.1:0", 0, &a), FL_EINVAL);
    ASSERT_OK(fl_http_addr_parse("127.0.0.1:0", FL_HTTP_ADDR_PORT_ZERO, &a));
    ASSERT_OK(fl_http_addr_parse("[::]:0", FL_HTTP_ADDR_PORT_ZERO, &a));
    ASSERT_OK(fl_http_addr_parse("127.0.0.1:65535", 0, &a));
    ASSERT_EQ(fl_http_addr_parse("127.0.0.1:65536", FL_HTTP_ADDR_PORT_ZERO, &a), FL_EINVAL);
}

TEST(addr_refuses_what_it_cannot_use)
{
    static const char *const bad[] = {"",
                                      "nonsense",
                                      "127.0.0.1",
                                      "127.0.0.1:",
                                      ":80",
                                      "127.0.0.1:x",
                                      "127.0.0.1:80x",
                                      "127.0.0.1:-1",
                                      "localhost:80",
                                      "[::1]",
                                      "[::1:80",
                                      "::1]:80",
                                      "[]:80",
                                      "[nonsense]:80",
                                      "1.2.3.4.5:80",
                                      "unix:",
                                      "tcp:127.0.0.1:1"};
    struct fl_http_addr a;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (fl_http_addr_parse(bad[i], FL_HTTP_ADDR_PORT_ZERO, &a) != FL_EINVAL)
            fl_test_fail(__FILE__, __LINE__, "'%s' was taken", bad[i]);
    ASSERT_EQ(fl_http_addr_parse(NULL, 0, &a), FL_EINVAL);
    /* a host part longer than any address */
    char long_host[400];
    memset(long_host, '1', sizeof(long_host));
    memcpy(long_host + sizeof(long_host) - 4, ":80", 4);
    ASSERT_EQ(fl_http_addr_parse(long_host, 0, &a), FL_EINVAL);
}

TEST(addr_unix_path_must_fit_a_sockaddr_un)
{
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1; /* and its NUL */
    char addr[300] = "unix:";
    memset(addr + 5, 'p', max);
    addr[5 + max] = '\0';
    struct fl_http_addr a;
    ASSERT_OK(fl_http_addr_parse(addr, 0, &a));
    ASSERT_EQ(strlen(a.path), max);
    addr[5 + max] = 'p';
    addr[6 + max] = '\0';
    ASSERT_EQ(fl_http_addr_parse(addr, 0, &a), FL_EINVAL);
}

/* Feed a header block as http-parser might, in pieces. */
static void feed(struct fl_http_fields *f, struct fl_buf *store, const char *const *pieces)
{
    for (size_t i = 0; pieces[i] != NULL; i++) {
        const char *p = pieces[i];
        bool name = p[0] == 'N';
        if (name)
            ASSERT_OK(fl_http_fields_add_name(f, store, p + 1, strlen(p + 1), SIZE_MAX));
        else
            ASSERT_OK(fl_http_fields_add_value(f, store, p + 1, strlen(p + 1)));
    }
}

TEST(fields_index_a_block_given_in_pieces)
{
    struct fl_http_fields f;
    fl_http_fields_init(&f);
    struct fl_buf store;
    fl_buf_init(&store, 4096);
    /* N: a piece of a name, V: a piece of a value */
    static const char *const pieces[] = {"NCont", "Nent-Type", "Vtext/",   "Vplain", "NX-Empty",
                                         "V",     "NHost",     "Vexample", NULL};
    feed(&f, &store, pieces);
    ASSERT_EQ(f.n, 3);
    ASSERT_OK(fl_buf_appendc(&store, '\0'));
    struct fl_http_header h[3];
    fl_http_fields_expose(&f, store.data, h);
    ASSERT_STR_EQ(h[0].name, "Content-Type");
    ASSERT_EQ(h[0].name_len, 12);
    ASSERT_STR_EQ(h[0].value, "text/plain");
    ASSERT_EQ(h[0].value_len, 10);
    ASSERT_STR_EQ(h[1].name, "X-Empty"); /* an empty value */
    ASSERT_STR_EQ(h[1].value, "");
    ASSERT_EQ(h[1].value_len, 0);
    ASSERT_STR_EQ(h[2].name, "Host");
    ASSERT_STR_EQ(h[2].value, "example");
    /* an empty store gets no NUL before the first name */
    ASSERT_EQ(f.index[0].name_off, 0);

    /* reset keeps the memory and starts again */
    struct fl_http_field *index = f.index;
    fl_http_fields_reset(&f);
    fl_buf_reset(&store);
    ASSERT_EQ(f.n, 0);
    static const char *const again[] = {"NA", "V1", "NB", NULL};
    feed(&f, &store, again);
    ASSERT(f.index == index);
    ASSERT_EQ(f.n, 2);
    ASSERT_OK(fl_buf_appendc(&store, '\0'));
    fl_http_fields_expose(&f, store.data, h);
    ASSERT_STR_EQ(h[0].value, "1");
    ASSERT_STR_EQ(h[1].name, "B"); /* a name no value came for: "" */
    ASSERT_STR_EQ(h[1].value, "");
    fl_http_fields_release(&f);
    ASSERT(f.index == NULL);
    fl_buf_release(&store);
}

TEST(fields_after_a_request_target_close_it_with_a_nul)
{
    struct fl_http_fields f;
    fl_http_fields_init(&f);
    struct fl_buf store;
    fl_buf_init(&store, 4096);
    ASSERT_OK(fl_buf_appends(&store, "/path?q"));
    static const char *const pieces[] = {"NAccept", "V*/*", NULL};
    feed(&f, &store, pieces);
    ASSERT_OK(fl_buf_appendc(&store, '\0'));
    /* the target ends where the first name starts, less its NUL */
    ASSERT_EQ(f.index[0].name_off - 1, 7);
    ASSERT_STR_EQ(store.data, "/path?q");
    struct fl_http_header h[1];
    fl_http_fields_expose(&f, store.data, h);
    ASSERT_STR_EQ(h[0].name, "Accept");
    ASSERT_STR_EQ(h[0].value, "*/*");
    fl_http_fields_release(&f);
    fl_buf_release(&store);
}

TEST(fields_refuse_past_their_bounds)
{
    struct fl_http_fields f;
    fl_http_fields_init(&f);
    struct fl_buf store;
    fl_buf_init(&store, 4096);
    /* at most 2 fields: a third name is FL_ERANGE and changes nothing */
    ASSERT_OK(fl_http_fields_add_name(&f, &store, "A", 1, 2));
    ASSERT_OK(fl_http_fields_add_value(&f, &store, "1", 1));
    ASSERT_OK(fl_http_fields_add_name(&f, &store, "B", 1, 2));
    ASSERT_OK(fl_http_fields_add_name(&f, &store, "b", 1, 2)); /* same field, more name */
    ASSERT_OK(fl_http_fields_add_value(&f, &store, "2", 1));
    size_t len = store.len;
    ASSERT_EQ(fl_http_fields_add_name(&f, &store, "C", 1, 2), FL_ERANGE);
    ASSERT_EQ(f.n, 2);
    ASSERT_EQ(store.len, len);
    ASSERT_EQ(f.index[1].name_len, 2);
    /* a value before any name is refused */
    struct fl_http_fields g;
    fl_http_fields_init(&g);
    ASSERT_EQ(fl_http_fields_add_value(&g, &store, "x", 1), FL_EINVAL);
    /* many fields grow the index */
    for (int i = 0; i < 100; i++) {
        ASSERT_OK(fl_http_fields_add_name(&g, &store, "N", 1, SIZE_MAX));
        ASSERT_OK(fl_http_fields_add_value(&g, &store, "v", 1));
    }
    ASSERT_EQ(g.n, 100);
    ASSERT(g.cap >= 100);
    /* a full store: its error comes back */
    struct fl_buf small;
    fl_buf_init(&small, 8);
    struct fl_http_fields s;
    fl_http_fields_init(&s);
    ASSERT_OK(fl_http_fields_add_name(&s, &small, "Name", 4, SIZE_MAX));
    ASSERT_EQ(fl_http_fields_add_value(&s, &small, "a long value", 12), FL_ETOOBIG);
    fl_http_fields_release(&f);
    fl_http_fields_release(&g);
    fl_http_fields_release(&s);
    fl_buf_release(&store);
    fl_buf_release(&small);
}

TEST(header_settable_refuses_bad_names_values_and_framing)
{
    ASSERT(fl_http_header_settable("X-Thing", 7, "a value\twith a tab", 18));
    ASSERT(fl_http_header_settable("Content-Type", 12, "", 0));
    ASSERT(!fl_http_header_settable("Bad Name", 8, "v", 1));
    ASSERT(!fl_http_header_settable("Transfer-Encoding ", 18, "chunked", 7));
    ASSERT(!fl_http_header_settable("", 0, "v", 1));
    ASSERT(!fl_http_header_settable("X-Split", 7, "a\r\nInjected: 1", 15));
    ASSERT(!fl_http_header_settable("X-Nul", 5, "a\0b", 3));
    ASSERT(!fl_http_header_settable("content-LENGTH", 14, "5", 1));
    ASSERT(!fl_http_header_settable("Transfer-Encoding", 17, "chunked", 7));
}

TEST(hop_by_hop_names_are_known_whatever_their_case)
{
    static const char *const hop[] = {
        "Connection", "keep-alive", "TRANSFER-ENCODING", "Content-Length", "TE",
        "Trailer",    "Upgrade",    "Proxy-Connection",  "Expect"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        ASSERT(fl_http_is_hop_by_hop(hop[i], strlen(hop[i])));
    static const char *const end_to_end[] = {"Content-Type", "Host", "TEx", "T",
                                             "X-Connection", ""};
    for (size_t i = 0; i < sizeof(end_to_end) / sizeof(end_to_end[0]); i++)
        ASSERT(!fl_http_is_hop_by_hop(end_to_end[i], strlen(end_to_end[i])));
}

TEST(content_length_line)
{
    struct fl_buf b;
    fl_buf_init(&b, 64);
    ASSERT_OK(fl_http_append_content_length(&b, 0));
    ASSERT_STR_EQ(b.data, "Content-Length: 0\r\n");
    fl_buf_reset(&b);
    ASSERT_OK(fl_http_append_content_length(&b, UINT64_MAX));
    ASSERT_STR_EQ(b.data, "Content-Length: 18446744073709551615\r\n");
    fl_buf_release(&b);
    struct fl_buf tiny;
    fl_buf_init(&tiny, 10);
    ASSERT_EQ(fl_http_append_content_length(&tiny, 1), FL_ETOOBIG);
    fl_buf_release(&tiny);
}

/* ---- URLs ---- */

TEST(url_parses_names_ipv4_ipv6_ports_and_targets)
{
    static const struct {
        const char *url;
        const char *host, *address, *target;
        unsigned port;
        bool name, v6;
    } good[] = {
        {"http://127.0.0.1:9000/done", "127.0.0.1", "127.0.0.1:9000", "/done", 9000, false, false},
        {"http://127.0.0.1:9000", "127.0.0.1", "127.0.0.1:9000", "/", 9000, false, false},
        {"http://127.0.0.1:9000/", "127.0.0.1", "127.0.0.1:9000", "/", 9000, false, false},
        {"http://127.0.0.1/a/b?x=1&y=%2F", "127.0.0.1", "127.0.0.1:80", "/a/b?x=1&y=%2F", 80, false,
         false},
        {"http://127.0.0.1:1?q", "127.0.0.1", "127.0.0.1:1", "/?q", 1, false, false},
        {"HTTP://Hooks.Example.COM:65535/in", "hooks.example.com", "hooks.example.com:65535", "/in",
         65535, true, false},
        {"http://localhost/x", "localhost", "localhost:80", "/x", 80, true, false},
        {"http://a-1.b2:8080/", "a-1.b2", "a-1.b2:8080", "/", 8080, true, false},
        {"http://[::1]:9000/cb", "::1", "[::1]:9000", "/cb", 9000, false, true},
        {"http://[2001:db8::7]/", "2001:db8::7", "[2001:db8::7]:80", "/", 80, false, true},
        {"http://10.0.0.1:08080/", "10.0.0.1", "10.0.0.1:8080", "/", 8080, false, false},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct fl_http_url u;
        struct fl_buf err;
        fl_buf_init(&err, 256);
        int rc = fl_http_url_parse(good[i].url, &u, &err);
        if (rc != 0)
            fl_test_fail(__FILE__, __LINE__, "'%s' refused: %s", good[i].url, err.data);
        ASSERT_STR_EQ(u.host, good[i].host);
        ASSERT_STR_EQ(u.address, good[i].address);
        ASSERT_STR_EQ(u.target, good[i].target);
        ASSERT_EQ(u.port, good[i].port);
        ASSERT_EQ(u.host_is_name, good[i].name);
        ASSERT_EQ(u.host_is_ipv6, good[i].v6);
        /* an IP host's address is what the client and fl_http_addr_parse() take */
        struct fl_http_addr a;
        ASSERT_EQ(fl_http_addr_parse(u.address, 0, &a), u.host_is_name ? FL_EINVAL : 0);
        fl_buf_release(&err);
    }
}

TEST(url_refuses_with_a_reason)
{
    static const struct {
        const char *url, *message;
    } bad[] = {
        {"", "is empty"},
        {"https://127.0.0.1:9000/cb", "only http:// URLs are supported, not https://"},
        {"HTTPS://example.com/", "only http:// URLs are supported"},
        {"ftp://example.com/", "must start with http://"},
        {"127.0.0.1:9000/cb", "must start with http://"},
        {"http:/127.0.0.1/", "must start with http://"},
        {"http://", "has no host"},
        {"http:///path", "has no host"},
        {"http://:80/", "has no host"},
        {"http://user:pw@127.0.0.1/", "user name or password"},
        {"http://user@127.0.0.1/", "user name or password"},
        {"http://127.0.0.1/a#frag", "fragment"},
        {"http://127.0.0.1/a b", "spaces, control characters"},
        {"http://127.0.0.1/a\r\nX-Evil: 1", "control characters"},
        {"http://127.0.0.1/a\tb", "control characters"},
        {"http://127.0.0.1/\x7f", "control characters"},
        {"http://127.0.0.1/caf\xc3\xa9", "bytes past ASCII"},
        {"http://127.0.0.1/%zz", "'%' that is not followed by two hex digits"},
        {"http://127.0.0.1/%4", "'%' that is not followed"},
        {"http://127.0.0.1:0/", "port that is not a number from 1 to 65535"},
        {"http://127.0.0.1:65536/", "port"},
        {"http://127.0.0.1:/", "port"},
        {"http://127.0.0.1:+80/", "port"},
        {"http://127.0.0.1:123456/", "port"},
        {"http://127.0.0.1:80:81/", "more than one ':'"},
        {"http://::1/", "an IPv6 address goes in [brackets]"},
        {"http://[::1/", "closing ']'"},
        {"http://[::1]x/", "after the IPv6 address"},
        {"http://[1.2.3.4]/", "not an IPv6 address"},
        {"http://[fe80::1%25eth0]/", "not an IPv6 address"},
        {"http://256.0.0.1/", "not a valid IPv4 address"},
        {"http://1.2.3/", "not a valid IPv4 address"},
        {"http://-a.example/", "neither a name"},
        {"http://a-.example/", "neither a name"},
        {"http://a..example/", "neither a name"},
        {"http://example.com./", "neither a name"},
        {"http://a_b.example/", "neither a name"},
        {"http://a~b/", "neither a name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fl_http_url u;
        struct fl_buf err;
        fl_buf_init(&err, 256);
        int rc = fl_http_url_parse(bad[i].url, &u, &err);
        if (rc != FL_EINVAL || strstr(err.data ? err.data : "", bad[i].message) == NULL)
            fl_test_fail(__FILE__, __LINE__, "'%s': %d '%s', expected '%s'", bad[i].url, rc,
                         err.data ? err.data : "", bad[i].message);
        fl_buf_release(&err);
    }
    struct fl_http_url u;
    ASSERT_EQ(fl_http_url_parse(NULL, &u, NULL), FL_EINVAL);
    ASSERT_EQ(fl_http_url_parse("https://x/", &u, NULL), FL_EINVAL); /* err may be NULL */
}

TEST(url_lengths_are_bounded)
{
    struct fl_http_url u;
    struct fl_buf err;
    fl_buf_init(&err, 256);
    char url[FL_HTTP_URL_MAX + 2];
    /* the longest URL is taken whole */
    int n = snprintf(url, sizeof(url), "http://127.0.0.1:9000/");
    memset(url + n, 'a', FL_HTTP_URL_MAX - (size_t)n);
    url[FL_HTTP_URL_MAX] = '\0';
    ASSERT_OK(fl_http_url_parse(url, &u, &err));
    ASSERT_EQ(strlen(u.target), FL_HTTP_URL_MAX - (size_t)n + 1);
    /* one byte more is refused */
    url[FL_HTTP_URL_MAX] = 'a';
    url[FL_HTTP_URL_MAX + 1] = '\0';
    ASSERT_EQ(fl_http_url_parse(url, &u, &err), FL_EINVAL);
    ASSERT(strstr(err.data, "longer than 2048 bytes") != NULL);
    /* names: 63 bytes a label, 253 in all */
    char host[300];
    memset(host, 'a', 63);
    snprintf(url, sizeof(url), "http://%.63s.example/", host);
    ASSERT_OK(fl_http_url_parse(url, &u, &err));
    memset(host, 'a', 64);
    snprintf(url, sizeof(url), "http://%.64s.example/", host);
    ASSERT_EQ(fl_http_url_parse(url, &u, &err), FL_EINVAL);
    /* 4 labels of 63 and a dot between: 255 bytes */
    for (size_t i = 0; i < 4; i++) {
        memset(host + i * 64, 'a', 63);
        host[i * 64 + 63] = '.';
    }
    host[255] = '\0';
    snprintf(url, sizeof(url), "http://%s/", host);
    ASSERT_EQ(fl_http_url_parse(url, &u, &err), FL_EINVAL);
    ASSERT(strstr(err.data, "host longer than 253 bytes") != NULL);
    host[253] = '\0'; /* the last label cut to 61 */
    snprintf(url, sizeof(url), "http://%s:65535/", host);
    ASSERT_OK(fl_http_url_parse(url, &u, &err));
    ASSERT_EQ(strlen(u.address), 253 + 6);
    fl_buf_release(&err);
}

TEST(query_values_are_found_and_decoded)
{
    char v[32];
    ASSERT(fl_http_query_value("a=1&after=inv%2F01a2&b", "after", v, sizeof(v)));
    ASSERT_STR_EQ(v, "inv/01a2");
    ASSERT(fl_http_query_value("a=1&after=inv%2F01a2&b", "b", v, sizeof(v)));
    ASSERT_STR_EQ(v, "");
    ASSERT(fl_http_query_value("q=a+b%20c%zz%4", "q", v, sizeof(v)));
    ASSERT_STR_EQ(v, "a b c%zz%4"); /* malformed escapes stay as they are */
    ASSERT(!fl_http_query_value("ab=1", "a", v, sizeof(v)));
    ASSERT(!fl_http_query_value(NULL, "a", v, sizeof(v)));
    char small[4];
    ASSERT(fl_http_query_value("k=%41%42%43%44%45", "k", small, sizeof(small)));
    ASSERT_STR_EQ(small, "ABC");
}
