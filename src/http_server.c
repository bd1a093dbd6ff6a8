/* http_server: evhttp listeners, limits, prefix routing and reply helpers; see
 * http_server.h. Payload parsing and authentication live elsewhere. */
#include "http_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "problem.h"

#define HS_MAX_ROUTES 32

struct hs_route {
    char *prefix;
    size_t len;
    hs_handler fn;
    void *arg;
};

struct hs {
    struct event_base *base;
    struct evhttp *http;      /* plain listener */
    struct evhttp *https;     /* TLS listener, may be NULL */
    struct evhttp_bound_socket *sock, *tls_sock;
    SSL_CTX *ssl_ctx;
    struct hs_route routes[HS_MAX_ROUTES];
    int nroutes;
    char url[128];
    char tls_url[128];
};

/* Splits "host:port", "[v6]:port" or ":port" into host (default 0.0.0.0) and port. */
static int hs_split_addr(const char *addr, char *host, size_t hostlen, unsigned short *port)
{
    const char *colon;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':')
            return -1;
        size_t n = (size_t)(end - addr - 1);
        if (n + 1 > hostlen)
            return -1;
        memcpy(host, addr + 1, n);
        host[n] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -1;
        size_t n = (size_t)(colon - addr);
        if (n + 1 > hostlen)
            return -1;
        memcpy(host, addr, n);
        host[n] = '\0';
        if (n == 0)
            snprintf(host, hostlen, "0.0.0.0");
    }
    long p;
    if (util_parse_long(colon + 1, 0, 65535, &p) < 0)
        return -1;
    *port = (unsigned short)p;
    return 0;
}

static int hs_route_match(const struct hs_route *r, const char *path)
{
    return strncmp(path, r->prefix, r->len) == 0;
}

static void hs_dispatch(struct evhttp_request *req, void *arg)
{
    hs_t *hs = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";
    const struct hs_route *best = NULL;
    for (int i = 0; i < hs->nroutes; i++)
        if (hs_route_match(&hs->routes[i], path) && (!best || hs->routes[i].len > best->len))
            best = &hs->routes[i];
    if (!best) {
        hs_reply_problem(req, 404, "no such endpoint", NULL);
        return;
    }
    best->fn(req, path + best->len, best->arg);
}

static struct bufferevent *hs_tls_bevcb(struct event_base *base, void *arg)
{
    hs_t *hs = arg;
    SSL *ssl = SSL_new(hs->ssl_ctx);
    if (!ssl)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static struct evhttp *hs_make_http(hs_t *hs, const struct hs_opts *o)
{
    struct evhttp *http = evhttp_new(hs->base);
    if (!http)
        return NULL;
    if (o->max_body)
        evhttp_set_max_body_size(http, (ev_ssize_t)o->max_body);
    if (o->max_headers)
        evhttp_set_max_headers_size(http, (ev_ssize_t)o->max_headers);
    evhttp_set_timeout(http, o->timeout_s > 0 ? o->timeout_s : 30);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_default_content_type(http, NULL);
    evhttp_set_gencb(http, hs_dispatch, hs);
    return http;
}

static struct evhttp_bound_socket *hs_bind(struct evhttp *http, const char *addr, char *url,
                                           size_t urllen, const char *scheme, char **err)
{
    char host[128];
    unsigned short port;
    if (hs_split_addr(addr, host, sizeof host, &port) < 0) {
        *err = util_asprintf("listen address '%s' is not HOST:PORT", addr);
        return NULL;
    }
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(http, host, port);
    if (!s) {
        *err = util_asprintf("cannot listen on %s", addr);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
            snprintf(url, urllen, "%s://[%s]:%u", scheme, ip, ntohs(a->sin6_port));
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
            snprintf(url, urllen, "%s://%s:%u", scheme, ip, ntohs(a->sin_port));
        }
    }
    return s;
}

static int hs_tls_setup(hs_t *hs, const struct hs_opts *o, char **err)
{
    hs->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!hs->ssl_ctx)
        goto fail;
    SSL_CTX_set_min_proto_version(hs->ssl_ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(hs->ssl_ctx, o->tls_cert) != 1) {
        *err = util_asprintf("tls.cert %s: cannot load the certificate chain", o->tls_cert);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(hs->ssl_ctx, o->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(hs->ssl_ctx) != 1) {
        *err = util_asprintf("tls.key %s: cannot load the key or it does not match", o->tls_key);
        return -1;
    }
    if (o->tls_client_ca) {
        if (SSL_CTX_load_verify_locations(hs->ssl_ctx, o->tls_client_ca, NULL) != 1) {
            *err = util_asprintf("tls.client_ca %s: cannot load", o->tls_client_ca);
            return -1;
        }
        SSL_CTX_set_verify(hs->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return 0;
fail:
    *err = util_asprintf("TLS set-up failed");
    return -1;
}

hs_t *hs_new(struct event_base *base, const struct hs_opts *o, char **err)
{
    *err = NULL;
    hs_t *hs = calloc(1, sizeof *hs);
    if (!hs)
        return NULL;
    hs->base = base;
    if (o->listen && *o->listen) {
        if (!(hs->http = hs_make_http(hs, o)))
            goto fail;
        hs->sock = hs_bind(hs->http, o->listen, hs->url, sizeof hs->url, "http", err);
        if (!hs->sock)
            goto fail;
    }
    if (o->tls_listen && *o->tls_listen) {
        if (!o->tls_cert || !o->tls_key) {
            *err = util_asprintf("tls.listen needs tls.cert and tls.key");
            goto fail;
        }
        if (hs_tls_setup(hs, o, err) < 0)
            goto fail;
        if (!(hs->https = hs_make_http(hs, o)))
            goto fail;
        evhttp_set_bevcb(hs->https, hs_tls_bevcb, hs);
        hs->tls_sock =
            hs_bind(hs->https, o->tls_listen, hs->tls_url, sizeof hs->tls_url, "https", err);
        if (!hs->tls_sock)
            goto fail;
    }
    return hs;
fail:
    if (!*err)
        *err = util_asprintf("cannot set up the HTTP server");
    hs_free(hs);
    return NULL;
}

void hs_free(hs_t *hs)
{
    if (!hs)
        return;
    if (hs->http)
        evhttp_free(hs->http);
    if (hs->https)
        evhttp_free(hs->https);
    if (hs->ssl_ctx)
        SSL_CTX_free(hs->ssl_ctx);
    for (int i = 0; i < hs->nroutes; i++)
        free(hs->routes[i].prefix);
    free(hs);
}

int hs_route(hs_t *hs, const char *prefix, hs_handler fn, void *arg)
{
    if (hs->nroutes >= HS_MAX_ROUTES)
        return -1;
    struct hs_route *r = &hs->routes[hs->nroutes];
    if (!(r->prefix = strdup(prefix)))
        return -1;
    r->len = strlen(prefix);
    r->fn = fn;
    r->arg = arg;
    hs->nroutes++;
    return 0;
}

void hs_stop_listening(hs_t *hs)
{
    if (hs->sock) {
        evhttp_del_accept_socket(hs->http, hs->sock);
        hs->sock = NULL;
    }
    if (hs->tls_sock) {
        evhttp_del_accept_socket(hs->https, hs->tls_sock);
        hs->tls_sock = NULL;
    }
}

const char *hs_url(const hs_t *hs) { return hs->url; }
const char *hs_tls_url(const hs_t *hs) { return hs->tls_url; }

const char *hs_method(struct evhttp_request *req)
{
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

json_t *hs_headers_json(struct evhttp_request *req)
{
    json_t *o = json_object();
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    for (struct evkeyval *kv = h ? h->tqh_first : NULL; o && kv; kv = kv->next.tqe_next) {
        char name[256];
        size_t n = strlen(kv->key);
        if (n >= sizeof name)
            continue;
        for (size_t i = 0; i <= n; i++)
            name[i] = (char)((kv->key[i] >= 'A' && kv->key[i] <= 'Z') ? kv->key[i] + 32
                                                                       : kv->key[i]);
        if (!json_object_get(o, name))
            json_object_set_new(o, name, json_string(kv->value ? kv->value : ""));
    }
    return o;
}

json_t *hs_query_json(struct evhttp_request *req)
{
    json_t *o = json_object();
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    struct evkeyvalq params;
    params.tqh_first = NULL;
    params.tqh_last = &params.tqh_first;
    if (o && q && evhttp_parse_query_str(q, &params) == 0) {
        for (struct evkeyval *kv = params.tqh_first; kv; kv = kv->next.tqe_next)
            json_object_set_new(o, kv->key, json_string(kv->value ? kv->value : ""));
    }
    evhttp_clear_headers(&params);
    return o;
}

const char *hs_header(struct evhttp_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

int hs_peer(struct evhttp_request *req, struct sockaddr_storage *ss, socklen_t *len)
{
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    const struct sockaddr *sa = c ? evhttp_connection_get_addr(c) : NULL;
    if (!sa)
        return -1;
    socklen_t l = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
    memcpy(ss, sa, l);
    if (len)
        *len = l;
    return 0;
}

void hs_peer_text(struct evhttp_request *req, char *out, size_t n)
{
    struct sockaddr_storage ss;
    if (n == 0)
        return;
    out[0] = '\0';
    if (hs_peer(req, &ss, NULL) < 0)
        return;
    if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)n);
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)n);
}

const char *hs_body(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(b);
    *len = n;
    if (n == 0)
        return "";
    return (const char *)evbuffer_pullup(b, (ev_ssize_t)n);
}

void hs_reply_text(struct evhttp_request *req, int status, const char *ctype, const char *text,
                   size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *out = evbuffer_new();
    if (out && len)
        evbuffer_add(out, text, len);
    evhttp_send_reply(req, status, problem_title(status), out);
    if (out)
        evbuffer_free(out);
}

void hs_reply_json(struct evhttp_request *req, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    if (!s) {
        hs_reply_text(req, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    hs_reply_text(req, status, "application/json", s, strlen(s));
    free(s);
}

void hs_reply_problem(struct evhttp_request *req, int status, const char *detail, json_t *extra)
{
    char *s = problem_json(status, problem_title(status), detail, extra);
    if (!s) {
        hs_reply_text(req, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    hs_reply_text(req, status, "application/problem+json", s, strlen(s));
    free(s);
}
