/* sim_http: evhttp glue for the simulator; see sim_http.h. One event loop, no threads: each
 * request is answered in its callback, except those a delay fault stalls on a timer. A drop
 * fault shuts the socket down before answering, so the client sees the connection close with
 * no reply and evhttp frees the connection on the failed write. */
#include "sim/sim_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/log.h"
#include "common/util.h"
#include "sim/sim_faults.h"
#include "sim/sim_json.h"
#include "sim/sim_reqlog.h"

#define SIM_HTTP_MAX_HEADERS (64 * 1024)
#define SIM_HTTP_TIMEOUT_S 120
#define SIM_HTTP_LOG_BODY_MAX (64 * 1024)

struct sim_delayed {
    sim_http_t *h;
    struct evhttp_request *req;
    struct sim_fault_hit hit;
    struct event *ev;
    struct sim_delayed *prev, *next;
};

struct sim_http {
    struct event_base *base;
    struct evhttp *http;
    sim_api_t *api;
    sim_store_t *st;
    sim_auth_t *auth;
    sim_faults_t *faults;
    sim_reqlog_t *log;
    json_t *seed;
    int port;
    char *state_path;
    struct event *save_ev;
    int save_pending;
    int save_failed;
    int started;      /* bound and serving: only then is the state written on exit */
    uint64_t saved_version;
    int64_t last_save_ms;
    struct sim_delayed *delayed;
};

/* One request as received: decoded path, raw query, body bytes and their parse. */
struct sim_call {
    const char *method;
    char *path;
    const char *query;
    const char *body_raw;
    size_t body_len;
    json_t *body;
    char body_err[200];
};

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "UNKNOWN";
    }
}

static int dump_to_evbuffer(const char *buf, size_t size, void *data)
{
    return evbuffer_add(data, buf, size);
}

/* Sends status with body (borrowed, may be NULL) as JSON or problem+json. */
static void send_json(struct evhttp_request *req, int status, json_t *body, int problem)
{
    struct evbuffer *out = evbuffer_new();
    struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
    if (body && out) {
        json_dump_callback(body, dump_to_evbuffer, out, JSON_COMPACT | JSON_ENCODE_ANY);
        evhttp_add_header(hdr, "Content-Type",
                          problem ? "application/problem+json; charset=utf-8"
                                  : "application/json; charset=utf-8");
    }
    evhttp_send_reply(req, status, sim_api_reason(status), out);
    if (out)
        evbuffer_free(out);
}

static void send_problem(struct evhttp_request *req, int status, const char *detail)
{
    json_t *body = sim_api_problem(status, detail);
    send_json(req, status, body, 1);
    json_decref(body);
}

/* ---- calls ---------------------------------------------------------------------------- */

static int call_init(struct sim_call *c, struct evhttp_request *req)
{
    memset(c, 0, sizeof(*c));
    c->method = method_name(evhttp_request_get_command(req));
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *raw = u ? evhttp_uri_get_path(u) : NULL;
    c->query = u ? evhttp_uri_get_query(u) : NULL;
    c->path = evhttp_uridecode(raw && *raw ? raw : "/", 0, NULL);
    if (!c->path)
        return -1;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    c->body_len = in ? evbuffer_get_length(in) : 0;
    if (c->body_len > 0) {
        c->body_raw = (const char *)evbuffer_pullup(in, -1);
        if (!c->body_raw)
            return -1;
        json_error_t jerr;
        c->body = json_loadb(c->body_raw, c->body_len, JSON_DECODE_ANY, &jerr);
        if (!c->body)
            snprintf(c->body_err, sizeof(c->body_err), "%s. LineNumber: %d | Position: %d",
                     jerr.text, jerr.line, jerr.position);
    }
    return 0;
}

static void call_free(struct sim_call *c)
{
    free(c->path);
    json_decref(c->body);
}

/* A JSON string of s, or a marker when s is not UTF-8. New reference. */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("<not UTF-8>");
}

/* The body as the request log shows it: parsed JSON (a login's password masked), the raw
 * text when it is not JSON, a size note when large; null when empty. New reference. */
static json_t *log_body(const struct sim_call *c, const char *op)
{
    if (c->body_len == 0)
        return json_null();
    if (c->body_len > SIM_HTTP_LOG_BODY_MAX)
        return json_sprintf("<%zu bytes>", c->body_len);
    if (!c->body) {
        json_t *s = json_stringn(c->body_raw, c->body_len);
        return s ? s : json_sprintf("<%zu bytes, not UTF-8>", c->body_len);
    }
    if (op && strcmp(op, "login") == 0 && json_is_object(c->body)) {
        json_t *copy = json_copy(c->body);
        const char *k;
        if (copy && sim_json_ci_get(copy, "password", &k))
            json_object_set_new(copy, k, json_string("***"));
        return copy;
    }
    return json_incref(c->body);
}

/* Request headers with credential values masked. New reference (NULL on OOM). */
static json_t *log_headers(const sim_http_t *h, struct evhttp_request *req)
{
    json_t *o = json_object();
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyval *kv;
    const char *key_header = sim_auth_key_header(h->auth);
    if (!o)
        return NULL;
    TAILQ_FOREACH(kv, in, next) {
        char masked[40];
        const char *v = kv->value;
        if (strcasecmp(kv->key, "Authorization") == 0) {
            size_t scheme = strcspn(v, " ");
            snprintf(masked, sizeof(masked), "%.*s ***", (int)(scheme < 20 ? scheme : 20), v);
            v = masked;
        } else if (strcasecmp(kv->key, key_header) == 0) {
            v = "***";
        }
        json_object_set_new(o, kv->key, jstr(v));
    }
    return o;
}

static void log_call(sim_http_t *h, struct evhttp_request *req, const struct sim_call *c,
                     const char *op, int status, int dropped, int64_t now_ms)
{
    char iso[32];
    util_iso8601(now_ms, iso);
    json_t *e = json_object();
    if (e) {
        json_object_set_new(e, "time", json_string(iso));
        json_object_set_new(e, "method", json_string(c->method));
        json_object_set_new(e, "path", jstr(c->path));
        json_object_set_new(e, "query", jstr(c->query));
        json_object_set_new(e, "op", op ? json_string(op) : json_null());
        json_object_set_new(e, "status", json_integer(status));
        json_object_set_new(e, "body", log_body(c, op));
        json_object_set_new(e, "headers", log_headers(h, req));
        if (dropped)
            json_object_set_new(e, "dropped", json_true());
    }
    sim_reqlog_add(h->log, e);
    if (log_get_level() <= LOG_LVL_DEBUG) {
        char st[16];
        snprintf(st, sizeof(st), "%d", status);
        log_debug("request", "method", c->method, "path", c->path, "op", op, "status", st);
    }
}

/* ---- persistence ---------------------------------------------------------------------- */

int sim_http_save(sim_http_t *h)
{
    int rc = -1;
    char *text = NULL;
    json_t *dump = NULL;
    if (!h->state_path || sim_store_version(h->st) == h->saved_version)
        return 0;
    uint64_t version = sim_store_version(h->st);
    dump = sim_store_dump(h->st);
    text = dump ? json_dumps(dump, JSON_COMPACT) : NULL;
    if (!text) {
        log_error("cannot save state", "path", h->state_path, "error", "out of memory");
        goto out;
    }
    if (util_write_file_atomic(h->state_path, text, strlen(text)) < 0) {
        if (!h->save_failed)
            log_error("cannot save state", "path", h->state_path, "error", strerror(errno));
        h->save_failed = 1;
        goto out;
    }
    h->save_failed = 0;
    h->saved_version = version;
    rc = 0;
out:
    h->last_save_ms = util_mono_ms();
    free(text);
    json_decref(dump);
    return rc;
}

static void on_save_timer(evutil_socket_t fd, short what, void *arg)
{
    sim_http_t *h = arg;
    h->save_pending = 0;
    sim_http_save(h);
}

/* Arms the save timer when the store changed: at most one write per interval. */
static void schedule_save(sim_http_t *h)
{
    if (!h->state_path || h->save_pending || sim_store_version(h->st) == h->saved_version)
        return;
    int64_t wait = h->last_save_ms + SIM_HTTP_SAVE_INTERVAL_MS - util_mono_ms();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
    if (evtimer_add(h->save_ev, &tv) == 0)
        h->save_pending = 1;
}

/* ---- API calls ------------------------------------------------------------------------ */

/* Closes the connection under req without an answer; evhttp then frees both. */
static void drop_connection(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    /* the write fails on the shut socket; evhttp frees the request and its connection */
    evhttp_send_reply(req, 500, "Dropped", NULL);
}

/* Answers one API call, suffering hit (may be NULL) first. */
static void handle_api(sim_http_t *h, struct evhttp_request *req, const struct sim_fault_hit *hit)
{
    struct sim_call c;
    int64_t now = util_now_ms();
    if (call_init(&c, req) < 0) {
        call_free(&c);
        send_problem(req, 500, "The simulator ran out of memory.");
        return;
    }
    if (hit && hit->drop) {
        log_call(h, req, &c, sim_api_op(c.method, c.path), 0, 1, now);
        drop_connection(req);
    } else if (hit && hit->status) {
        struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
        char detail[64];
        if (hit->retry_after >= 0) {
            char ra[24];
            snprintf(ra, sizeof(ra), "%d", hit->retry_after);
            evhttp_add_header(hdr, "Retry-After", ra);
        }
        snprintf(detail, sizeof(detail), "Injected fault %ld.", hit->id);
        send_problem(req, hit->status, detail);
        log_call(h, req, &c, sim_api_op(c.method, c.path), hit->status, 0, now);
    } else {
        struct evkeyvalq *in = evhttp_request_get_input_headers(req);
        struct sim_api_req areq = {
            .method = c.method,
            .path = c.path,
            .query = c.query,
            .body = c.body,
            .body_present = c.body_len > 0,
            .body_error = c.body_err,
            .authorization = evhttp_find_header(in, "Authorization"),
            .api_key = evhttp_find_header(in, sim_auth_key_header(h->auth)),
            .now_ms = now,
        };
        struct sim_api_resp resp;
        sim_api_handle(h->api, &areq, &resp);
        struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
        if (resp.allow[0])
            evhttp_add_header(hdr, "Allow", resp.allow);
        if (resp.www_auth[0])
            evhttp_add_header(hdr, "WWW-Authenticate", resp.www_auth);
        send_json(req, resp.status, resp.body, resp.problem);
        log_call(h, req, &c, resp.op, resp.status, 0, now);
        sim_api_resp_clear(&resp);
    }
    call_free(&c);
    schedule_save(h);
}

static void delayed_unlink(sim_http_t *h, struct sim_delayed *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        h->delayed = d->next;
    if (d->next)
        d->next->prev = d->prev;
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    struct sim_delayed *d = arg;
    sim_http_t *h = d->h;
    struct evhttp_request *req = d->req;
    struct sim_fault_hit hit = d->hit;
    delayed_unlink(h, d);
    event_free(d->ev);
    free(d);
    hit.delay_ms = 0;
    handle_api(h, req, &hit);
}

/* Stalls req for hit->delay_ms, then answers it; answers at once when no timer can be made. */
static void delay_call(sim_http_t *h, struct evhttp_request *req, const struct sim_fault_hit *hit)
{
    struct sim_delayed *d = calloc(1, sizeof(*d));
    struct timeval tv = {hit->delay_ms / 1000, (suseconds_t)(hit->delay_ms % 1000) * 1000};
    if (!d || !(d->ev = evtimer_new(h->base, on_delay, d)) || evtimer_add(d->ev, &tv) < 0) {
        if (d && d->ev)
            event_free(d->ev);
        free(d);
        handle_api(h, req, hit);
        return;
    }
    d->h = h;
    d->req = req;
    d->hit = *hit;
    d->next = h->delayed;
    if (h->delayed)
        h->delayed->prev = d;
    h->delayed = d;
}

/* ---- test hooks ----------------------------------------------------------------------- */

static void hook_reset(sim_http_t *h, struct evhttp_request *req)
{
    char err[256];
    sim_store_clear(h->st);
    sim_reqlog_clear(h->log);
    sim_faults_clear(h->faults);
    if (h->seed && sim_api_seed(h->api, h->seed, util_now_ms(), err, sizeof(err)) < 0) {
        log_error("seed failed on reset", "error", err);
        send_problem(req, 500, err);
        return;
    }
    json_t *body = json_pack("{s:b}", "reset", 1);
    send_json(req, 200, body, 0);
    json_decref(body);
    log_info("reset");
}

static void hook_faults_add(sim_http_t *h, struct evhttp_request *req)
{
    struct sim_call c;
    char err[256];
    if (call_init(&c, req) < 0) {
        send_problem(req, 500, "The simulator ran out of memory.");
    } else if (!c.body) {
        send_problem(req, 400, c.body_len ? c.body_err : "A JSON fault is required.");
    } else {
        json_t *added = sim_faults_add(h->faults, c.body, err, sizeof(err));
        if (added)
            send_json(req, 200, added, 0);
        else
            send_problem(req, 400, err);
        json_decref(added);
    }
    call_free(&c);
}

static void handle_hook(sim_http_t *h, struct evhttp_request *req, const char *method,
                        const char *path, const char *query)
{
    char p[64];
    size_t len = strlen(path);
    if (len >= sizeof(p)) {
        send_problem(req, 404, "No such simulator hook.");
        return;
    }
    memcpy(p, path, len + 1);
    if (len > 1 && p[len - 1] == '/')
        p[len - 1] = '\0';
    json_t *body = NULL;
    const char *allow = NULL;
    if (strcasecmp(p, "/_sim/requests") == 0) {
        if (strcmp(method, "GET") != 0) {
            allow = "GET";
        } else {
            uint64_t since = 0;
            const char *s = query ? strstr(query, "since=") : NULL;
            int64_t v;
            if (s && (s == query || s[-1] == '&')) {
                char num[24];
                size_t n = strcspn(s + 6, "&");
                snprintf(num, sizeof(num), "%.*s", (int)(n < 23 ? n : 23), s + 6);
                if (util_parse_i64(num, 0, INT64_MAX, &v) < 0) {
                    send_problem(req, 400, "since must be a non-negative integer");
                    return;
                }
                since = (uint64_t)v;
            }
            body = sim_reqlog_dump(h->log, since);
        }
    } else if (strcasecmp(p, "/_sim/reset") == 0) {
        if (strcmp(method, "POST") != 0) {
            allow = "POST";
        } else {
            hook_reset(h, req);
            schedule_save(h);
            return;
        }
    } else if (strcasecmp(p, "/_sim/faults") == 0) {
        if (strcmp(method, "GET") == 0) {
            body = sim_faults_list(h->faults);
        } else if (strcmp(method, "POST") == 0) {
            hook_faults_add(h, req);
            return;
        } else if (strcmp(method, "DELETE") == 0) {
            sim_faults_clear(h->faults);
            body = json_array();
        } else {
            allow = "GET, POST, DELETE";
        }
    } else if (strcasecmp(p, "/_sim/state") == 0) {
        if (strcmp(method, "GET") != 0)
            allow = "GET";
        else
            body = sim_store_dump(h->st);
    } else {
        send_problem(req, 404, "No such simulator hook.");
        return;
    }
    if (allow) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        send_problem(req, 405, "Method not allowed on this hook.");
        return;
    }
    if (!body) {
        send_problem(req, 500, "The simulator ran out of memory.");
        return;
    }
    send_json(req, 200, body, 0);
    json_decref(body);
}

/* ---- dispatch ------------------------------------------------------------------------- */

static void on_request(struct evhttp_request *req, void *arg)
{
    sim_http_t *h = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *raw = u ? evhttp_uri_get_path(u) : NULL;
    const char *method = method_name(evhttp_request_get_command(req));
    char *path = evhttp_uridecode(raw && *raw ? raw : "/", 0, NULL);
    if (!path) {
        send_problem(req, 500, "The simulator ran out of memory.");
        return;
    }
    if (strncasecmp(path, "/_sim/", 6) == 0 || strcasecmp(path, "/_sim") == 0) {
        handle_hook(h, req, method, path, u ? evhttp_uri_get_query(u) : NULL);
        free(path);
        return;
    }
    struct sim_fault_hit hit;
    int faulted = sim_faults_take(h->faults, method, path, &hit);
    free(path);
    if (faulted && hit.delay_ms > 0)
        delay_call(h, req, &hit);
    else
        handle_api(h, req, faulted ? &hit : NULL);
}

sim_http_t *sim_http_new(struct event_base *base, sim_api_t *api, sim_store_t *st,
                         sim_auth_t *auth, const struct sim_http_opts *opts, char *err,
                         size_t errlen)
{
    sim_http_t *h = calloc(1, sizeof(*h));
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->base = base;
    h->api = api;
    h->st = st;
    h->auth = auth;
    h->seed = opts->seed;
    h->faults = sim_faults_new();
    h->log = sim_reqlog_new(opts->max_log);
    h->http = evhttp_new(base);
    h->save_ev = evtimer_new(base, on_save_timer, h);
    if (opts->state_path)
        h->state_path = util_strdup(opts->state_path);
    if (!h->faults || !h->log || !h->http || !h->save_ev ||
        (opts->state_path && !h->state_path)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(h->http, (ev_ssize_t)opts->max_body);
    evhttp_set_max_headers_size(h->http, SIM_HTTP_MAX_HEADERS);
    evhttp_set_timeout(h->http, SIM_HTTP_TIMEOUT_S);
    evhttp_set_gencb(h->http, on_request, h);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(h->http, opts->host, (ev_uint16_t)opts->port);
    if (!bound) {
        snprintf(err, errlen, "cannot listen on %s port %d: %s", opts->host, opts->port,
                 strerror(errno));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) < 0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        goto fail;
    }
    h->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    h->last_save_ms = util_mono_ms() - SIM_HTTP_SAVE_INTERVAL_MS;
    h->started = 1;
    return h;
fail:
    sim_http_free(h);
    return NULL;
}

int sim_http_port(const sim_http_t *h) { return h->port; }

void sim_http_free(sim_http_t *h)
{
    if (!h)
        return;
    /* stalled calls are answered before evhttp frees their connections */
    while (h->delayed) {
        struct sim_delayed *d = h->delayed;
        delayed_unlink(h, d);
        event_free(d->ev);
        send_problem(d->req, 503, "The simulator is shutting down.");
        free(d);
    }
    if (h->http)
        evhttp_free(h->http);
    if (h->save_ev)
        event_free(h->save_ev);
    if (h->started)
        sim_http_save(h);
    sim_faults_free(h->faults);
    sim_reqlog_free(h->log);
    free(h->state_path);
    free(h);
}
