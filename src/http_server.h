/* http_server: the evhttp set-up of trackbridge serve — listeners (plain and TLS), limits on
 * bodies, headers and slow clients, routing by path prefix, and reply helpers (JSON and
 * application/problem+json). It parses no payloads: handlers get the raw request. */
#ifndef TB_HTTP_SERVER_H
#define TB_HTTP_SERVER_H

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct hs hs_t;

struct hs_opts {
    const char *listen;        /* "127.0.0.1:8080", "[::1]:8080", ":8080"; port 0 = any */
    const char *tls_listen;    /* optional second listener with TLS, NULL for none */
    const char *tls_cert;      /* PEM chain, required with tls_listen */
    const char *tls_key;       /* PEM key, required with tls_listen */
    const char *tls_client_ca; /* optional: require client certificates signed by this CA */
    size_t max_body;           /* hard cap on any body (evhttp answers 413 beyond it) */
    size_t max_headers;        /* cap on the size of the header block */
    int timeout_s;             /* read/write timeout against slow clients */
};

/* A route handler gets the request and the rest of the path after the prefix. */
typedef void (*hs_handler)(struct evhttp_request *req, const char *rest, void *arg);

/* Binds the listeners on base. NULL with *err (malloc'd) when an address cannot be parsed or
 * bound, or TLS cannot be set up. */
hs_t *hs_new(struct event_base *base, const struct hs_opts *opts, char **err);
/* Stops accepting and frees the server; requests in flight are answered by libevent first. */
void hs_free(hs_t *hs);
/* Registers a handler for paths starting with prefix (longest prefix wins). 0 or -1. */
int hs_route(hs_t *hs, const char *prefix, hs_handler fn, void *arg);
/* Closes the listening sockets (no new connections) while keeping open ones served. */
void hs_stop_listening(hs_t *hs);
/* The URL of the plain listener, e.g. "http://127.0.0.1:43121" (with the real port). */
const char *hs_url(const hs_t *hs);
const char *hs_tls_url(const hs_t *hs);

/* Request helpers ---------------------------------------------------------------------- */
const char *hs_method(struct evhttp_request *req);
/* Headers as a new JSON object: lowercased names → the first value. */
json_t *hs_headers_json(struct evhttp_request *req);
/* Query parameters as a new JSON object (last value wins); {} when none or malformed. */
json_t *hs_query_json(struct evhttp_request *req);
/* Case-insensitive header lookup; NULL when absent. Borrowed from the request. */
const char *hs_header(struct evhttp_request *req, const char *name);
/* The peer address; 0, or -1 when unknown. */
int hs_peer(struct evhttp_request *req, struct sockaddr_storage *ss, socklen_t *len);
/* The peer address as text ("127.0.0.1"); writes at most n bytes. */
void hs_peer_text(struct evhttp_request *req, char *out, size_t n);
/* The body as contiguous bytes (pulled up in place; borrowed) and its length. */
const char *hs_body(struct evhttp_request *req, size_t *len);

/* Reply helpers ------------------------------------------------------------------------ */
/* Sends a JSON body (borrowed) with the status; Content-Type application/json. */
void hs_reply_json(struct evhttp_request *req, int status, json_t *body);
/* Sends an application/problem+json body; extra (borrowed, may be NULL) adds members. */
void hs_reply_problem(struct evhttp_request *req, int status, const char *detail, json_t *extra);
/* Sends a text body with the given content type. */
void hs_reply_text(struct evhttp_request *req, int status, const char *ctype, const char *text,
                   size_t len);

#endif
