/* server: intake of webhooks into the store (custody), health, readiness, metrics and the
 * admin API; see server.h. Order of checks on a hook: method, source, size, authentication
 * (over the raw bytes, before any parsing), rate limit, then the source's adapter (content
 * type and payload), then the store. Only a committed request gets a 2xx. */
#include "server.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/adapter.h"
#include "auth.h"
#include "common/buf.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/util.h"
#include "http_server.h"
#include "metrics.h"
#include "ratelimit.h"

/* Per-source runtime built from the configuration. */
struct srv_source {
    const struct tb_source *conf;
    auth_t *auth;
    rl_bucket_t bucket;
};

struct srv_runtime {
    const struct tb_config *cfg;
    struct srv_source *sources;
    size_t n;
};

struct srv {
    struct event_base *base;
    struct store *store;
    hs_t *http;
    struct srv_runtime rt;
    struct srv_hooks hooks;
    size_t inflight;
};

/* One request waiting for its commit. */
struct srv_pending {
    srv_t *srv;
    struct evhttp_request *req;
    char source[129];
    int tags;        /* answer with Zabbix-style tags (the request id as an event tag) */
    int64_t t0_ms;
};

/* Headers never stored: credentials. */
static const char *const srv_secret_headers[] = {"authorization", "proxy-authorization",
                                                 "cookie", "x-api-key", NULL};

static void srv_runtime_free(struct srv_runtime *rt)
{
    for (size_t i = 0; i < rt->n; i++)
        auth_free(rt->sources[i].auth);
    free(rt->sources);
    rt->sources = NULL;
    rt->n = 0;
}

static int srv_runtime_build(struct srv_runtime *rt, const struct tb_config *cfg, char **err)
{
    rt->cfg = cfg;
    rt->n = cfg->nsources;
    rt->sources = calloc(cfg->nsources ? cfg->nsources : 1, sizeof *rt->sources);
    if (!rt->sources)
        return -1;
    for (size_t i = 0; i < cfg->nsources; i++) {
        struct srv_source *s = &rt->sources[i];
        s->conf = &cfg->sources[i];
        char *aerr = NULL;
        s->auth = auth_new(s->conf->auth, &aerr);
        if (!s->auth) {
            *err = util_asprintf("source %s: %s", s->conf->name, aerr ? aerr : "bad auth");
            free(aerr);
            rt->n = i;
            srv_runtime_free(rt);
            return -1;
        }
        if (s->conf->rate > 0)
            rl_init(&s->bucket, s->conf->rate, s->conf->burst > 0 ? s->conf->burst : 1);
    }
    return 0;
}

static struct srv_source *srv_find_source(srv_t *s, const char *name)
{
    for (size_t i = 0; i < s->rt.n; i++)
        if (strcmp(s->rt.sources[i].conf->name, name) == 0)
            return &s->rt.sources[i];
    return NULL;
}

/* Request counter by source and status. */
static void srv_count(const char *source, int status)
{
    char esc[160], labels[256];
    metrics_escape(source, esc, sizeof esc);
    snprintf(labels, sizeof labels, "source=\"%s\",code=\"%d\"", esc, status);
    metrics_add("trackbridge_requests_total", labels, 1);
}

static void srv_problem(struct evhttp_request *req, const char *source, int status,
                        const char *detail)
{
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    srv_count(source, status);
    log_info("request refused", "source", source, "status", code, "detail", detail);
    hs_reply_problem(req, status, detail, NULL);
}

static const char *srv_auth_header(void *ud, const char *name)
{
    return hs_header(ud, name);
}

static const char *srv_auth_query(void *ud, const char *name)
{
    json_t *v = json_object_get(ud, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void srv_commit_done(const struct store_intake_result *res, void *arg)
{
    struct srv_pending *p = arg;
    srv_t *s = p->srv;
    s->inflight--;
    double secs = (double)(util_mono_ms() - p->t0_ms) / 1000.0;
    char esc[160], labels[200];
    metrics_escape(p->source, esc, sizeof esc);
    snprintf(labels, sizeof labels, "source=\"%s\"", esc);
    metrics_observe("trackbridge_intake_seconds", labels, secs);
    if (res->status == STORE_OK || res->status == STORE_DUPLICATE) {
        int dup = res->status == STORE_DUPLICATE;
        srv_count(p->source, dup ? 200 : 202);
        log_debug("request stored", "source", p->source, "id", res->public_id, "duplicate",
                  dup ? "true" : "false");
        if (!dup && !p->tags && util_is_uuid(res->public_id)) {
            /* The common answer, written directly: a UUID needs no escaping. */
            char text[64];
            int n = snprintf(text, sizeof text, "{\"id\":\"%s\"}", res->public_id);
            hs_reply_text(p->req, 202, "application/json", text, (size_t)n);
        } else {
            json_t *body = json_pack("{s:s}", "id", res->public_id);
            if (dup)
                json_object_set_new(body, "duplicate", json_true());
            if (p->tags)
                json_object_set_new(body, "tags", json_pack("{s:s}", "trackbridge_id",
                                                             res->public_id));
            hs_reply_json(p->req, dup ? 200 : 202, body);
            json_decref(body);
        }
        if (!dup && s->hooks.stored)
            s->hooks.stored(s->hooks.arg);
    } else {
        evhttp_add_header(evhttp_request_get_output_headers(p->req), "Retry-After", "5");
        srv_problem(p->req, p->source, 503,
                    res->status == STORE_FULL ? "the store is full; retry later"
                                              : "the store is unavailable; retry later");
    }
    free(p);
}

/* The idempotency key a sender supplied, or the adapter's message id for mail. */
static const char *srv_dedup_key(struct evhttp_request *req, json_t *events)
{
    static const char *const names[] = {"webhook-id", "idempotency-key", "x-github-delivery",
                                        NULL};
    for (int i = 0; names[i]; i++) {
        const char *v = hs_header(req, names[i]);
        if (v && *v)
            return v;
    }
    json_t *first = json_array_get(events, 0);
    json_t *mid = json_object_get(first, "message_id");
    if (json_array_size(events) == 1 && json_is_string(mid) && *json_string_value(mid))
        return json_string_value(mid);
    return NULL;
}

static void srv_hook(struct evhttp_request *req, const char *rest, void *arg)
{
    srv_t *s = arg;
    char name[129];
    size_t nl = strcspn(rest, "/?");
    if (nl == 0 || nl >= sizeof name || rest[nl] == '/') {
        srv_problem(req, "-", 404, "no such source");
        return;
    }
    memcpy(name, rest, nl);
    name[nl] = '\0';
    struct srv_source *src = srv_find_source(s, name);
    if (!src) {
        srv_problem(req, "-", 404, "no such source");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        srv_problem(req, name, 405, "hooks take POST");
        return;
    }
    size_t len = 0;
    const char *body = hs_body(req, &len);
    size_t max = src->conf->max_body ? src->conf->max_body : s->rt.cfg->limits.body;
    if (len > max) {
        srv_problem(req, name, 413, "the body exceeds this source's limit");
        return;
    }
    json_t *query = hs_query_json(req);
    struct sockaddr_storage ss;
    int have_peer = hs_peer(req, &ss, NULL) == 0;
    struct auth_request ar = {
        .header = srv_auth_header,
        .header_ud = req,
        .query = srv_auth_query,
        .query_ud = query,
        .body = body,
        .body_len = len,
        .peer = have_peer ? (const struct sockaddr *)&ss : NULL,
        .now_s = util_now_ms() / 1000,
    };
    const char *reason = NULL;
    enum auth_result ares = auth_check(src->auth, &ar, &reason);
    if (ares != AUTH_OK) {
        int st = auth_http_status(ares);
        const char *chal = auth_challenge(src->auth);
        if (st == 401 && chal)
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", chal);
        srv_problem(req, name, st, reason ? reason : "not allowed");
        goto out;
    }
    if (src->conf->rate > 0 && !rl_take(&src->bucket, util_mono_ms(), 1)) {
        char ra[24];
        snprintf(ra, sizeof ra, "%ld", rl_retry_after_s(&src->bucket, util_mono_ms()));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
        srv_problem(req, name, 429, "rate limit exceeded for this source");
        goto out;
    }
    const char *ctype = hs_header(req, "Content-Type");

    /* Validate the payload now so a sender learns of a bad body at once (400) and nothing
     * unusable is stored; the pipeline runs the adapter in full from the stored bytes. */
    json_t *headers = hs_headers_json(req);
    for (int i = 0; srv_secret_headers[i]; i++)
        json_object_del(headers, srv_secret_headers[i]);
    char stamp[32];
    util_iso8601(util_now_ms(), stamp);
    struct adapter_input in = {
        .body = body,
        .body_len = len,
        .content_type = ctype,
        .headers = headers,
        .query = query,
        .source = name,
        .received_at = stamp,
        .options = src->conf->options,
        .check_only = 1,
    };
    struct adapter_limits lim = {(size_t)s->rt.cfg->limits.json_depth,
                                 (size_t)s->rt.cfg->limits.events_per_request};
    json_t *events = NULL;
    char *aerr = NULL;
    if (adapter_run(src->conf->adapter, &in, &lim, &events, &aerr) != ADAPTER_OK) {
        /* The adapter is the one judge of what it takes; its content-type refusals all begin
         * "content type" (adapter.h) and are 415s, everything else a 400. */
        int st = aerr && strncmp(aerr, "content type", 12) == 0 ? 415 : 400;
        srv_problem(req, name, st, aerr ? aerr : "the payload cannot be read");
        free(aerr);
        json_decref(headers);
        goto out;
    }
    /* The URL token (if any) is a credential: keep the rest of the query for the adapter. */
    json_t *auth_spec = src->conf->auth;
    json_t *ut = json_object_get(auth_spec, "url_token");
    const char *param = json_string_value(json_object_get(ut, "param"));
    if (ut)
        json_object_del(query, param ? param : "token");
    if (json_object_size(query))
        json_object_set(headers, ":query", query);

    char peer[64];
    hs_peer_text(req, peer, sizeof peer);
    struct srv_pending *p = calloc(1, sizeof *p);
    if (!p) {
        json_decref(events);
        json_decref(headers);
        srv_problem(req, name, 503, "out of memory; retry later");
        goto out;
    }
    p->srv = s;
    p->req = req;
    p->t0_ms = util_mono_ms();
    memcpy(p->source, name, nl + 1);
    p->tags = strcmp(src->conf->adapter, "zabbix") == 0;
    struct store_request sr = {
        .source = name,
        .received_at = util_now_ms(),
        .remote_addr = peer,
        .content_type = ctype,
        .headers = headers,
        .body = body,
        .body_len = len,
        .dedup_key = srv_dedup_key(req, events),
    };
    s->inflight++;
    /* On refusal the callback has already run (and freed p) before submit returns. */
    store_intake_submit(s->store, &sr, srv_commit_done, p);
    json_decref(events);
    json_decref(headers);
out:
    json_decref(query);
}

static void srv_healthz(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)arg;
    if (*rest) {
        hs_reply_problem(req, 404, "no such endpoint", NULL);
        return;
    }
    hs_reply_text(req, 200, "text/plain", "ok\n", 3);
}

static void srv_readyz(struct evhttp_request *req, const char *rest, void *arg)
{
    srv_t *s = arg;
    if (*rest) {
        hs_reply_problem(req, 404, "no such endpoint", NULL);
        return;
    }
    enum store_status st = store_check_writable(s->store);
    if (st != STORE_OK) {
        hs_reply_problem(req, 503, "the store is not writable", NULL);
        return;
    }
    if (s->hooks.ready && !s->hooks.ready(s->hooks.arg)) {
        hs_reply_problem(req, 503, "not ready", NULL);
        return;
    }
    hs_reply_text(req, 200, "text/plain", "ready\n", 6);
}

static void srv_metrics(struct evhttp_request *req, const char *rest, void *arg)
{
    srv_t *s = arg;
    if (*rest) {
        hs_reply_problem(req, 404, "no such endpoint", NULL);
        return;
    }
    struct store_counters c;
    if (store_counters(s->store, util_now_ms(), &c) == STORE_OK) {
        metrics_set("trackbridge_requests_pending", NULL, (double)c.requests_new);
        metrics_set("trackbridge_queue_depth", NULL, (double)c.deliveries_pending);
        metrics_set("trackbridge_deliveries_inflight", NULL, (double)c.deliveries_inflight);
        metrics_set("trackbridge_deliveries_unknown", NULL, (double)c.deliveries_unknown);
        metrics_set("trackbridge_dead_letters", NULL, (double)c.deliveries_dead);
        metrics_set("trackbridge_oldest_pending_seconds", NULL,
                    (double)c.oldest_pending_age_ms / 1000.0);
        metrics_set("trackbridge_outbox_pending", NULL, (double)c.outbox_pending);
    }
    struct store_intake_stats is;
    store_intake_stats(s->store, &is);
    metrics_set("trackbridge_intake_commits_total", NULL, (double)is.commits);
    buf_t b;
    buf_init(&b, 8 * 1024 * 1024);
    metrics_render(&b);
    hs_reply_text(req, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
    buf_free(&b);
}

/* Admin API: GET /api/events/<id> with the admin bearer token. */
static void srv_admin(struct evhttp_request *req, const char *rest, void *arg)
{
    srv_t *s = arg;
    const char *token = s->rt.cfg->admin.token;
    if (!token) {
        hs_reply_problem(req, 404, "the admin API is disabled (admin.token)", NULL);
        return;
    }
    const char *auth = hs_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !crypto_str_equal(auth + 7, token)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"trackbridge admin\"");
        hs_reply_problem(req, 401, "admin token required", NULL);
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        hs_reply_problem(req, 405, "GET only", NULL);
        return;
    }
    if (strncmp(rest, "events/", 7) != 0 || !rest[7] || !s->hooks.explain) {
        hs_reply_problem(req, 404, "no such endpoint", NULL);
        return;
    }
    json_t *trace = s->hooks.explain(rest + 7, s->hooks.arg);
    if (!trace) {
        hs_reply_problem(req, 404, "no such request or event", NULL);
        return;
    }
    hs_reply_json(req, 200, trace);
    json_decref(trace);
}

static void srv_declare_metrics(void)
{
    metrics_declare("trackbridge_requests_total", "counter",
                    "Hook requests answered, by source and HTTP status.");
    metrics_declare("trackbridge_intake_seconds", "histogram",
                    "Time from a hook request's arrival to its durable commit.");
    metrics_declare("trackbridge_requests_pending", "gauge",
                    "Stored requests not yet turned into events.");
    metrics_declare("trackbridge_queue_depth", "gauge", "Deliveries pending or waiting to retry.");
    metrics_declare("trackbridge_deliveries_inflight", "gauge", "Deliveries in flight.");
    metrics_declare("trackbridge_deliveries_unknown", "gauge",
                    "Deliveries whose outcome is being checked.");
    metrics_declare("trackbridge_dead_letters", "gauge", "Dead-lettered deliveries.");
    metrics_declare("trackbridge_oldest_pending_seconds", "gauge",
                    "Age of the oldest pending delivery.");
    metrics_declare("trackbridge_outbox_pending", "gauge", "Mails waiting to be sent.");
    metrics_declare("trackbridge_intake_commits_total", "counter",
                    "Intake transactions committed (one fsync each).");
}

srv_t *srv_new(struct event_base *base, const struct tb_config *cfg, struct store *st,
               const struct srv_hooks *hooks, char **err)
{
    *err = NULL;
    srv_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base = base;
    s->store = st;
    if (hooks)
        s->hooks = *hooks;
    if (srv_runtime_build(&s->rt, cfg, err) < 0)
        goto fail;
    size_t max_body = cfg->limits.body;
    for (size_t i = 0; i < cfg->nsources; i++)
        if (cfg->sources[i].max_body > max_body)
            max_body = cfg->sources[i].max_body;
    /* evhttp's own cap sits above every source's limit so that the sources' limits answer
     * with a problem body; only grossly oversized bodies meet libevent's plain 413. */
    struct hs_opts ho = {
        .listen = cfg->listen,
        .tls_listen = cfg->tls.listen,
        .tls_cert = cfg->tls.cert,
        .tls_key = cfg->tls.key,
        .tls_client_ca = cfg->tls.client_ca,
        .max_body = max_body + 1024 * 1024,
        .max_headers = cfg->limits.headers,
        .timeout_s = 30,
    };
    if (!(s->http = hs_new(base, &ho, err)))
        goto fail;
    hs_route(s->http, "/hooks/", srv_hook, s);
    hs_route(s->http, "/healthz", srv_healthz, s);
    hs_route(s->http, "/readyz", srv_readyz, s);
    hs_route(s->http, "/metrics", srv_metrics, s);
    hs_route(s->http, "/api/", srv_admin, s);
    srv_declare_metrics();
    return s;
fail:
    srv_free(s);
    return NULL;
}

int srv_set_config(srv_t *s, const struct tb_config *cfg, char **err)
{
    struct srv_runtime rt = {0};
    if (srv_runtime_build(&rt, cfg, err) < 0)
        return -1;
    /* Keep the rate-limit state of sources that stay. */
    for (size_t i = 0; i < rt.n; i++) {
        struct srv_source *old = srv_find_source(s, rt.sources[i].conf->name);
        if (old && old->conf->rate == rt.sources[i].conf->rate)
            rt.sources[i].bucket = old->bucket;
    }
    srv_runtime_free(&s->rt);
    s->rt = rt;
    return 0;
}

void srv_stop_listening(srv_t *s) { hs_stop_listening(s->http); }
size_t srv_inflight(const srv_t *s) { return s->inflight; }
const char *srv_url(const srv_t *s) { return hs_url(s->http); }
const char *srv_tls_url(const srv_t *s) { return hs_tls_url(s->http); }

void srv_free(srv_t *s)
{
    if (!s)
        return;
    hs_free(s->http);
    srv_runtime_free(&s->rt);
    free(s);
}
