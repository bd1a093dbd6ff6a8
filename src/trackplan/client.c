/* client: TrackplanFM requests on curl multi + libevent; see client.h.
 *
 * A request lives in exactly one list: queued (ready, waiting for a transfer slot),
 * authwait (waiting for a login), active (a curl transfer), sleeping (a backoff timer, or
 * a result waiting to be delivered from the loop). Sockets and timeouts follow curl's
 * hiperfifo example: curl tells us which sockets to watch (tp_client_sock_cb) and when to
 * call it back (tp_client_timer_cb); libevent calls curl_multi_socket_action. */
#include "trackplan/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "trackplan/jwt.h"
#include "trackplan/trace.h"

#define TP_USER_AGENT "trackbridge/" TB_VERSION
#define TP_URL_MAX 8192
#define TP_DEFAULT_PAGE_SIZE "50"

enum tp_req_state { TP_RQ_DETACHED, TP_RQ_QUEUED, TP_RQ_AUTHWAIT, TP_RQ_ACTIVE, TP_RQ_SLEEPING };

struct tp_req {
    TAILQ_ENTRY(tp_req) link;
    struct tp_client *c;
    enum tp_req_state state;
    const struct tp_op *op;      /* NULL for a raw request matching no op */
    char method[8];
    char *url;
    char *log_path;              /* path without its query: the only part logged */
    char *body;                  /* serialised JSON, or NULL */
    size_t body_len;
    int needs_auth, idempotent, retry_unsafe, is_login;
    int internal;                /* the client's own login: no callback */
    int stale_ok;                /* a refresh failed: send with the old, still valid token */
    CURL *easy;
    struct curl_slist *headers;
    buf_t resp;
    char errbuf[CURL_ERROR_SIZE];
    long status;
    int curl_code;
    int64_t retry_after_ms;      /* this attempt's Retry-After, -1 none */
    int64_t last_retry_after_ms; /* the last one seen on any attempt */
    int attempts, failures, relogged, maybe_processed, too_large;
    unsigned long token_gen;     /* the token generation this attempt carried */
    struct event *timer;
    struct tp_result *final;     /* a result to deliver from the loop */
    int64_t start_ms;
    tp_done_fn done;
    void *arg;
};
TAILQ_HEAD(tp_req_list, tp_req);

struct tp_sock {
    LIST_ENTRY(tp_sock) link;
    curl_socket_t fd;
    struct event *ev;
};
LIST_HEAD(tp_sock_list, tp_sock);

struct tp_client {
    struct event_base *base;
    int own_base;
    CURLM *multi;
    struct event *curl_timer;
    struct tp_options o;         /* strings below are the client's own copies */
    char *url, *api_key, *key_header, *user, *password, *ca_file;
    struct tp_req_list queued, authwait, active, sleeping;
    struct tp_sock_list socks;
    size_t nqueued, nactive;
    size_t pending;              /* accepted calls with a callback still to run */
    int closing;
    int running;
    /* JWT state: the token is never logged */
    char *token;
    unsigned long token_gen;
    int64_t token_obtained_ms, token_exp_s, token_iat_s;
    int login_inflight;
};

static void tp_client_pump(struct tp_client *c);
static void tp_client_check_done(struct tp_client *c);

/* Options ------------------------------------------------------------------------------ */

void tp_options_init(struct tp_options *o)
{
    memset(o, 0, sizeof *o);
    o->connect_timeout_ms = 10000;
    o->timeout_ms = 30000;
    tp_retry_policy_init(&o->retry);
    o->max_transfers = 8;
    o->max_queue = 1024;
    o->max_response = 8u << 20;
}

/* 1 when s has no control bytes (CR / LF would split a header). */
static int tp_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f)
            return 0;
    return 1;
}

/* 1 when s is an HTTP header name (RFC 7230 token). */
static int tp_header_name(const char *s)
{
    if (!*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!(((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return 0;
    return 1;
}

int tp_options_check(const struct tp_options *o, char *err, size_t errlen)
{
    const char *msg = NULL;
    if (!o->url || !*o->url)
        msg = "no TrackplanFM URL given";
    else if (strncasecmp(o->url, "http://", 7) != 0 && strncasecmp(o->url, "https://", 8) != 0)
        msg = "the URL must start with http:// or https://";
    else if (strlen(o->url) > 2048 || !tp_printable(o->url) || strchr(o->url, ' '))
        msg = "the URL is too long or contains spaces or control characters";
    else if (o->api_key && (!*o->api_key || !tp_printable(o->api_key)))
        msg = "the API key is empty or contains control characters";
    else if (o->api_key_header && !tp_header_name(o->api_key_header))
        msg = "the API key header is not a valid header name";
    else if (!o->api_key && o->user && (!*o->user || !o->password))
        msg = "a user needs a password";
    else if (o->connect_timeout_ms < 1 || o->connect_timeout_ms > 3600000 ||
             o->timeout_ms < 1 || o->timeout_ms > 3600000)
        msg = "timeouts must be between 1 ms and 1 hour";
    else if (o->retry.max_attempts < 1 || o->retry.max_attempts > 100 || o->retry.base_ms < 1 ||
             o->retry.cap_ms < o->retry.base_ms || o->retry.cap_ms > 86400000 ||
             o->retry.retry_after_cap_ms < 0 || o->retry.retry_after_cap_ms > 86400000)
        msg = "retries: max 1..100 attempts, 1 <= base <= cap <= 1 day";
    else if (o->max_transfers < 1 || o->max_transfers > 1024 || o->max_queue < 1 ||
             o->max_queue > 1000000)
        msg = "max transfers must be 1..1024 and max queue 1..1000000";
    else if (o->max_response < 1024 || o->max_response > ((size_t)1 << 30))
        msg = "the response cap must be between 1 KiB and 1 GiB";
    if (msg) {
        if (err && errlen)
            snprintf(err, errlen, "%s", msg);
        return -1;
    }
    return 0;
}

/* Requests ----------------------------------------------------------------------------- */

static struct tp_req_list *tp_client_list(struct tp_client *c, enum tp_req_state s)
{
    switch (s) {
    case TP_RQ_QUEUED: return &c->queued;
    case TP_RQ_AUTHWAIT: return &c->authwait;
    case TP_RQ_ACTIVE: return &c->active;
    case TP_RQ_SLEEPING: return &c->sleeping;
    case TP_RQ_DETACHED: break;
    }
    return NULL;
}

/* Takes r out of whatever list holds it. */
static void tp_req_unlink(struct tp_req *r)
{
    struct tp_client *c = r->c;
    struct tp_req_list *l = tp_client_list(c, r->state);
    if (!l)
        return;
    TAILQ_REMOVE(l, r, link);
    if (r->state == TP_RQ_QUEUED)
        c->nqueued--;
    else if (r->state == TP_RQ_ACTIVE)
        c->nactive--;
    else if (r->state == TP_RQ_SLEEPING)
        evtimer_del(r->timer);
    r->state = TP_RQ_DETACHED;
}

/* Puts a detached r into list s (at the head when head is set). */
static void tp_req_link(struct tp_req *r, enum tp_req_state s, int head)
{
    struct tp_client *c = r->c;
    struct tp_req_list *l = tp_client_list(c, s);
    if (head)
        TAILQ_INSERT_HEAD(l, r, link);
    else
        TAILQ_INSERT_TAIL(l, r, link);
    r->state = s;
    if (s == TP_RQ_QUEUED)
        c->nqueued++;
    else if (s == TP_RQ_ACTIVE)
        c->nactive++;
}

static void tp_req_free(struct tp_req *r)
{
    if (!r)
        return;
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    buf_free(&r->resp);
    if (r->body) {
        explicit_bzero(r->body, r->body_len); /* a login body holds a password */
        free(r->body);
    }
    free(r->url);
    free(r->log_path);
    if (r->timer)
        event_free(r->timer);
    tp_result_free(r->final);
    free(r);
}

static const char *tp_req_name(const struct tp_req *r)
{
    return r->op ? r->op->name : "request";
}

/* Hands res to r's callback (or frees it for an internal request) and frees r. */
static void tp_req_deliver(struct tp_req *r, struct tp_result *res)
{
    struct tp_client *c = r->c;
    tp_done_fn done = r->done;
    void *arg = r->arg;
    tp_req_unlink(r);
    if (r->final == res)
        r->final = NULL;
    res->elapsed_ms = util_mono_ms() - r->start_ms;
    tp_req_free(r);
    if (done) {
        done(res, arg);
        c->pending--;
    } else {
        tp_result_free(res);
    }
}

static void tp_req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tp_req *r = arg;
    (void)fd;
    (void)what;
    if (r->final) {
        tp_req_deliver(r, r->final);
        return;
    }
    tp_req_unlink(r);
    tp_req_link(r, TP_RQ_QUEUED, 1);
    tp_client_pump(r->c);
}

/* Delivers res from the loop rather than from the current call stack. */
static void tp_req_defer(struct tp_req *r, struct tp_result *res)
{
    static const struct timeval now = {0, 0};
    tp_req_unlink(r);
    tp_result_free(r->final);
    r->final = res;
    tp_req_link(r, TP_RQ_SLEEPING, 0);
    evtimer_add(r->timer, &now);
}

/* Defers a local failure. When even the result cannot be built (out of memory), r is
 * dropped with a log line: its callback is never given NULL. */
static void tp_req_fail_later(struct tp_req *r, enum tp_outcome outcome, enum tp_err_kind kind,
                              const char *msg)
{
    struct tp_result *res = tp_result_new_error(r->op, outcome, kind, msg);
    if (res) {
        res->attempts = r->attempts;
        tp_req_defer(r, res);
        return;
    }
    log_error("trackplan: out of memory building a result", "op", tp_req_name(r));
    tp_req_unlink(r);
    if (r->done)
        r->c->pending--;
    tp_req_free(r);
}

/* Percent-encodes s (RFC 3986 unreserved characters kept). */
static int tp_url_escape(buf_t *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                 (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        if ((ok ? buf_putc(b, (char)*p) : buf_printf(b, "%%%02X", *p)) < 0)
            return -1;
    }
    return 0;
}

static int tp_method_ok(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
           strcmp(m, "DELETE") == 0 || strcmp(m, "PATCH") == 0;
}

/* Builds a request (not yet queued). path may hold a query; body is serialised here.
 * Returns NULL with errno set. */
static struct tp_req *tp_req_new(struct tp_client *c, const struct tp_op *op, const char *method,
                                 const char *path, const struct tp_call *call, json_t *body)
{
    struct tp_req *r = calloc(1, sizeof *r);
    buf_t url;
    buf_init(&url, TP_URL_MAX);
    int err = ENOMEM;
    if (!r)
        goto fail;
    r->c = c;
    r->op = op;
    r->start_ms = util_mono_ms();
    r->retry_after_ms = r->last_retry_after_ms = -1;
    buf_init(&r->resp, c->o.max_response);
    snprintf(r->method, sizeof r->method, "%s", method);
    r->timer = evtimer_new(c->base, tp_req_timer_cb, r);
    if (!r->timer)
        goto fail;
    size_t plen = strcspn(path, "?");
    r->log_path = util_strndup(path, plen);
    if (!r->log_path)
        goto fail;
    err = EINVAL;
    if (buf_puts(&url, c->url) < 0 || buf_puts(&url, path) < 0)
        goto fail;
    int sep = path[plen] == '?' ? '&' : '?';
    for (size_t i = 0; call && i < call->nquery; i++) {
        const struct tp_kv *kv = &call->query[i];
        if (!kv->key || !*kv->key || !kv->value)
            goto fail;
        if (buf_putc(&url, (char)sep) < 0 || tp_url_escape(&url, kv->key) < 0 ||
            buf_putc(&url, '=') < 0 || tp_url_escape(&url, kv->value) < 0)
            goto fail;
        sep = '&';
    }
    r->url = buf_steal(&url);
    if (!r->url) {
        err = ENOMEM;
        goto fail;
    }
    if (body) {
        r->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!r->body) {
            err = ENOMEM;
            goto fail;
        }
        r->body_len = strlen(r->body);
    }
    r->is_login = op && op->id == TP_OP_LOGIN;
    r->needs_auth = op ? op->auth : 1;
    r->idempotent = r->is_login || strcmp(method, "GET") == 0 || strcmp(method, "PUT") == 0 ||
                    strcmp(method, "DELETE") == 0;
    r->retry_unsafe = c->o.retry_unsafe || (call && call->retry_unsafe);
    return r;
fail:
    buf_free(&url);
    tp_req_free(r);
    errno = err;
    return NULL;
}

/* Accepts r: counts it, queues it and pumps. */
static int tp_req_submit(struct tp_req *r, tp_done_fn done, void *arg)
{
    struct tp_client *c = r->c;
    if (c->nqueued >= (size_t)c->o.max_queue) {
        tp_req_free(r);
        errno = EAGAIN;
        return -1;
    }
    r->done = done;
    r->arg = arg;
    if (done)
        c->pending++;
    tp_req_link(r, TP_RQ_QUEUED, 0);
    tp_client_pump(c);
    return 0;
}

/* Authentication ----------------------------------------------------------------------- */

static int tp_client_jwt(const struct tp_client *c) { return !c->api_key && c->user; }

static void tp_client_drop_token(struct tp_client *c)
{
    if (c->token) {
        explicit_bzero(c->token, strlen(c->token));
        free(c->token);
        c->token = NULL;
    }
}

static int tp_client_token_usable(const struct tp_client *c)
{
    return c->token &&
           !tp_jwt_refresh_due(util_now_ms(), c->token_obtained_ms, c->token_iat_s, c->token_exp_s);
}

/* 1 while the cached token has not yet expired (it may be inside its refresh margin). */
static int tp_client_token_alive(const struct tp_client *c)
{
    return c->token && (c->token_exp_s == 0 || util_now_ms() < c->token_exp_s * 1000);
}

/* The login body from the configured credentials: a new reference, or NULL. */
static json_t *tp_client_login_body(const struct tp_client *c)
{
    return json_pack("{s:s, s:s}", "username", c->user, "password", c->password);
}

/* Queues the client's own login ahead of everything else. 0 or -1. */
static int tp_client_start_login(struct tp_client *c)
{
    const struct tp_op *op = tp_op_get(TP_OP_LOGIN);
    json_t *body = tp_client_login_body(c);
    struct tp_req *r = body ? tp_req_new(c, op, op->method, op->path, NULL, body) : NULL;
    json_decref(body);
    if (!r)
        return -1;
    r->internal = 1;
    c->login_inflight = 1;
    log_debug("trackplan login", "user", c->user);
    tp_req_link(r, TP_RQ_QUEUED, 1);
    return 0;
}

/* Fails (or, while the old token lives, releases) every request waiting for a login. */
static void tp_client_fail_waiters(struct tp_client *c, const struct tp_result *login)
{
    struct tp_req_list waiters;
    struct tp_req *r;
    TAILQ_INIT(&waiters);
    while ((r = TAILQ_FIRST(&c->authwait))) {
        tp_req_unlink(r);
        TAILQ_INSERT_TAIL(&waiters, r, link);
    }
    /* a refresh that failed while the old token lives: use the old one until it expires */
    int alive = login && tp_client_token_alive(c);
    while ((r = TAILQ_FIRST(&waiters))) {
        TAILQ_REMOVE(&waiters, r, link);
        if (alive && !r->relogged) {
            r->stale_ok = 1;
            tp_req_link(r, TP_RQ_QUEUED, 0);
            continue;
        }
        enum tp_outcome outcome = login && login->outcome == TP_FAIL ? TP_FAIL : TP_TRYLATER;
        if (r->maybe_processed && outcome == TP_TRYLATER)
            outcome = TP_UNKNOWN;
        struct tp_result *res = tp_result_new(r->op);
        if (!res) {
            log_error("trackplan: out of memory failing a request", "op", tp_req_name(r));
            if (r->done)
                c->pending--;
            tp_req_free(r);
            continue;
        }
        res->outcome = outcome;
        res->attempts = r->attempts;
        if (login) {
            tp_error_copy(&res->error, &login->error);
            res->status = login->status;
        } else {
            tp_error_set(&res->error, TP_ERR_LOCAL, "could not start a login");
        }
        res->error.kind = TP_ERR_AUTH;
        if (!res->error.message)
            res->error.message = util_strdup("login failed");
        r->state = TP_RQ_DETACHED;
        tp_req_defer(r, res);
    }
}

/* Records what a login returned and wakes (or fails) the requests waiting for it. res may
 * be changed: a 2xx without a usable token becomes a protocol failure. */
static void tp_client_login_done(struct tp_client *c, struct tp_req *r, struct tp_result *res)
{
    if (r->internal)
        c->login_inflight = 0;
    if (res->outcome == TP_OK) {
        const char *tok = json_string_value(json_object_get(res->body, "token"));
        if (!tok || !*tok || strlen(tok) > TP_JWT_MAX || !tp_printable(tok) || strchr(tok, ' ')) {
            res->outcome = TP_FAIL;
            tp_error_set(&res->error, TP_ERR_PROTOCOL, "the login answer holds no usable token");
        } else {
            char *copy = strdup(tok);
            if (copy) {
                tp_client_drop_token(c);
                c->token = copy;
                c->token_gen++;
                c->token_obtained_ms = util_now_ms();
                if (tp_jwt_times(copy, &c->token_exp_s, &c->token_iat_s) < 0) {
                    c->token_exp_s = c->token_iat_s = 0;
                    log_debug("trackplan token is not a JWT; renewed on 401 only");
                }
            } else {
                res->outcome = TP_TRYLATER;
                tp_error_set(&res->error, TP_ERR_LOCAL, "out of memory");
            }
        }
    }
    if (res->outcome == TP_OK) {
        struct tp_req *w;
        /* wake the waiters in their order, ahead of newer work */
        while ((w = TAILQ_LAST(&c->authwait, tp_req_list))) {
            tp_req_unlink(w);
            tp_req_link(w, TP_RQ_QUEUED, 1);
        }
        return;
    }
    if (r->internal) {
        buf_t why;
        buf_init(&why, 512);
        tp_error_format(&res->error, &why);
        log_warn("trackplan login failed", "user", c->user, "error", why.data ? why.data : "");
        buf_free(&why);
        tp_client_fail_waiters(c, res);
    }
}

/* Transfers ---------------------------------------------------------------------------- */

static size_t tp_req_write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct tp_req *r = userp;
    if (buf_append(&r->resp, data, size * n) < 0) {
        r->too_large = 1;
        return 0;
    }
    return size * n;
}

static size_t tp_req_header_cb(char *data, size_t size, size_t n, void *userp)
{
    struct tp_req *r = userp;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        r->retry_after_ms = -1; /* a new response (after a 100 Continue) starts afresh */
    } else if (len > 12 && strncasecmp(data, "Retry-After:", 12) == 0 && len < 128) {
        char v[128];
        memcpy(v, data + 12, len - 12);
        v[len - 12] = '\0';
        int64_t ms;
        if (tp_retry_after_parse(v, util_now_ms(), &ms) == 0)
            r->retry_after_ms = ms;
    }
    return len;
}

static int tp_req_debug_cb(CURL *e, curl_infotype type, char *data, size_t n, void *userp)
{
    struct tp_req *r = userp;
    FILE *f = r->c->o.trace;
    (void)e;
    switch (type) {
    case CURLINFO_TEXT:
        tp_trace_headers(f, "* ", data, n, r->c->key_header);
        break;
    case CURLINFO_HEADER_OUT:
        tp_trace_headers(f, "> ", data, n, r->c->key_header);
        break;
    case CURLINFO_HEADER_IN:
        tp_trace_headers(f, "< ", data, n, r->c->key_header);
        break;
    default:
        break; /* bodies are never traced */
    }
    return 0;
}

/* Sets the options that stay the same across attempts. 0 or -1. */
static int tp_req_setup(struct tp_req *r)
{
    struct tp_client *c = r->c;
    CURL *e = curl_easy_init();
    if (!e)
        return -1;
    r->easy = e;
    int rc = 0;
    rc |= curl_easy_setopt(e, CURLOPT_URL, r->url);
    rc |= curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, TP_USER_AGENT);
    rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->o.timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, tp_req_write_cb);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, tp_req_header_cb);
    rc |= curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    rc |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->o.insecure ? 0L : 1L);
    rc |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->o.insecure ? 0L : 2L);
    if (c->ca_file)
        rc |= curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (c->o.trace) {
        rc |= curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, tp_req_debug_cb);
        rc |= curl_easy_setopt(e, CURLOPT_DEBUGDATA, r);
        rc |= curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    }
    if (strcmp(r->method, "GET") == 0) {
        rc |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(r->method, "POST") != 0)
            rc |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
        if (r->body || strcmp(r->method, "POST") == 0) {
            rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
            rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        }
    }
    return rc ? -1 : 0;
}

/* Appends "name: value" to the list; the temporary copy is wiped (it may be a secret). */
static int tp_req_add_header(struct curl_slist **l, const char *name, const char *value)
{
    char *h = util_asprintf("%s: %s", name, value);
    if (!h)
        return -1;
    struct curl_slist *n = curl_slist_append(*l, h);
    explicit_bzero(h, strlen(h));
    free(h);
    if (!n)
        return -1;
    *l = n;
    return 0;
}

/* Starts one attempt of r. 0, or -1 when the transfer could not be set up. */
static int tp_req_start(struct tp_req *r)
{
    struct tp_client *c = r->c;
    if (!r->easy && tp_req_setup(r) < 0)
        return -1;
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    int rc = tp_req_add_header(&r->headers, "Accept", "application/json");
    if (r->body)
        rc |= tp_req_add_header(&r->headers, "Content-Type", "application/json");
    r->headers = rc ? r->headers : curl_slist_append(r->headers, "Expect:");
    if (!rc && r->needs_auth) {
        if (c->api_key) {
            rc |= tp_req_add_header(&r->headers, c->key_header, c->api_key);
        } else if (c->token) {
            char *v = util_asprintf("Bearer %s", c->token);
            rc |= v ? tp_req_add_header(&r->headers, "Authorization", v) : -1;
            if (v) {
                explicit_bzero(v, strlen(v));
                free(v);
            }
            r->token_gen = c->token_gen;
        }
    }
    if (rc || !r->headers || curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK)
        return -1;
    buf_reset(&r->resp);
    r->status = 0;
    r->curl_code = 0;
    r->retry_after_ms = -1;
    r->too_large = 0;
    r->errbuf[0] = '\0';
    r->attempts++;
    if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        r->attempts--;
        return -1;
    }
    tp_req_link(r, TP_RQ_ACTIVE, 0);
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", r->attempts);
    log_debug("trackplan send", "op", tp_req_name(r), "method", r->method, "path", r->log_path,
              "attempt", attempt);
    return 0;
}

/* The result of r's last attempt with the given outcome. NULL on OOM. */
static struct tp_result *tp_req_result(struct tp_req *r, enum tp_outcome outcome)
{
    struct tp_result *res = tp_result_new(r->op);
    if (!res)
        return NULL;
    res->outcome = outcome;
    res->status = r->status;
    res->attempts = r->attempts;
    res->retry_after_ms = r->last_retry_after_ms;
    if (outcome == TP_OK) {
        if (r->resp.len > 0) {
            res->body = json_loadb(r->resp.data, r->resp.len, JSON_DECODE_ANY, NULL);
            if (!res->body) {
                /* a bare text answer (a GUID without quotes) is kept as a JSON string */
                size_t a = 0, z = r->resp.len;
                while (a < z && strchr(" \t\r\n", r->resp.data[a]))
                    a++;
                while (z > a && strchr(" \t\r\n", r->resp.data[z - 1]))
                    z--;
                res->body = json_stringn(r->resp.data + a, z - a);
            }
        }
    } else if (r->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "the response is larger than %zu bytes", r->c->o.max_response);
        tp_error_set(&res->error, TP_ERR_PROTOCOL, msg);
        res->error.status = r->status;
    } else if (r->curl_code != CURLE_OK) {
        tp_error_set_transport(&res->error, r->curl_code,
                               r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->curl_code));
    } else {
        tp_error_from_response(&res->error, r->status, r->resp.data, r->resp.len);
    }
    return res;
}

/* Ends r with outcome: logs, lets a login update the token, delivers. */
static void tp_req_finish(struct tp_req *r, enum tp_outcome outcome)
{
    struct tp_client *c = r->c;
    struct tp_result *res = tp_req_result(r, outcome);
    if (!res) {
        tp_req_fail_later(r, TP_UNKNOWN, TP_ERR_LOCAL, "out of memory");
        return;
    }
    if (r->is_login)
        tp_client_login_done(c, r, res);
    char status[16], attempts[16];
    snprintf(status, sizeof status, "%ld", r->status);
    snprintf(attempts, sizeof attempts, "%d", r->attempts);
    if (res->outcome == TP_OK)
        log_debug("trackplan done", "op", tp_req_name(r), "path", r->log_path, "status", status,
                  "attempts", attempts);
    else
        log_info("trackplan failed", "op", tp_req_name(r), "path", r->log_path,
                 "outcome", tp_outcome_name(res->outcome), "status", status,
                 "error", r->curl_code ? curl_easy_strerror(r->curl_code) : NULL,
                 "attempts", attempts);
    tp_req_deliver(r, res);
}

/* Decides what follows an attempt that just ended: done, re-login, retry or give up. */
static void tp_req_attempt_done(struct tp_req *r)
{
    struct tp_client *c = r->c;
    long status = 0, reqsize = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &reqsize);
    r->status = status;
    if (r->retry_after_ms >= 0)
        r->last_retry_after_ms = r->retry_after_ms;
    if (r->too_large) {
        tp_req_finish(r, TP_FAIL);
        return;
    }
    struct tp_attempt a = {r->curl_code, r->curl_code == CURLE_OK ? status : 0, reqsize > 0};
    if (r->curl_code == CURLE_OK && status == 401 && r->needs_auth && tp_client_jwt(c) &&
        !r->relogged) {
        /* the token was refused (expired early, revoked): log in once more, retry once */
        r->relogged = 1;
        if (c->token && c->token_gen == r->token_gen)
            tp_client_drop_token(c);
        log_info("trackplan token refused, logging in again", "op", tp_req_name(r));
        tp_req_link(r, TP_RQ_AUTHWAIT, 0);
        if (!c->login_inflight && tp_client_start_login(c) < 0)
            tp_client_fail_waiters(c, NULL);
        return;
    }
    enum tp_retry_verdict v = tp_retry_classify(&a, r->idempotent, r->retry_unsafe);
    if (v == TP_RV_OK || v == TP_RV_FAIL) {
        tp_req_finish(r, v == TP_RV_OK ? TP_OK : TP_FAIL);
        return;
    }
    if (!r->idempotent && !tp_retry_not_processed(&a))
        r->maybe_processed = 1;
    enum tp_outcome giveup = r->maybe_processed ? TP_UNKNOWN : TP_TRYLATER;
    if (v == TP_RV_UNKNOWN) {
        tp_req_finish(r, TP_UNKNOWN);
        return;
    }
    r->failures++;
    if (r->attempts - r->relogged >= c->o.retry.max_attempts) {
        tp_req_finish(r, giveup);
        return;
    }
    int64_t ra = r->curl_code == CURLE_OK ? r->retry_after_ms : -1;
    tp_rand_fn rnd = c->o.rand ? c->o.rand : tp_retry_rand;
    int64_t delay = tp_retry_delay_ms(&c->o.retry, r->failures, ra, rnd, c->o.rand_ctx);
    if (delay < 0) {
        tp_req_finish(r, giveup); /* Retry-After beyond the cap: the caller waits instead */
        return;
    }
    char ds[24], st[16], at[16];
    snprintf(ds, sizeof ds, "%lld", (long long)delay);
    snprintf(st, sizeof st, "%ld", status);
    snprintf(at, sizeof at, "%d", r->attempts);
    log_info("trackplan retry", "op", tp_req_name(r), "path", r->log_path, "status", st,
             "error", r->curl_code ? curl_easy_strerror(r->curl_code) : NULL, "attempt", at,
             "delay_ms", ds);
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    tp_req_link(r, TP_RQ_SLEEPING, 0);
    evtimer_add(r->timer, &tv);
}

/* Starts queued requests while transfer slots are free; requests needing a token wait for
 * a login, which is queued first. */
static void tp_client_pump(struct tp_client *c)
{
    struct tp_req *r;
    while (!c->closing && c->nactive < (size_t)c->o.max_transfers &&
           (r = TAILQ_FIRST(&c->queued))) {
        tp_req_unlink(r);
        if (r->needs_auth && tp_client_jwt(c) && !(r->stale_ok && c->token) &&
            (c->login_inflight || !tp_client_token_usable(c))) {
            tp_req_link(r, TP_RQ_AUTHWAIT, 0);
            if (!c->login_inflight && tp_client_start_login(c) < 0)
                tp_client_fail_waiters(c, NULL);
            continue;
        }
        if (tp_req_start(r) < 0)
            tp_req_fail_later(r, TP_TRYLATER, TP_ERR_LOCAL, "could not start the transfer");
    }
}

/* Collects finished transfers, then acts on each (callbacks may submit new calls). */
static void tp_client_check_done(struct tp_client *c)
{
    struct tp_req_list done;
    struct tp_req *r;
    CURLMsg *m;
    int left;
    TAILQ_INIT(&done);
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *e = m->easy_handle;
        int code = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        r = (struct tp_req *)priv;
        curl_multi_remove_handle(c->multi, e);
        if (!r)
            continue;
        r->curl_code = code;
        tp_req_unlink(r);
        TAILQ_INSERT_TAIL(&done, r, link);
    }
    while ((r = TAILQ_FIRST(&done))) {
        TAILQ_REMOVE(&done, r, link);
        tp_req_attempt_done(r);
    }
    tp_client_pump(c);
}

/* curl multi on libevent (hiperfifo) -------------------------------------------------- */

static void tp_client_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tp_client *c = arg;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
                 ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(c->multi, fd, action, &c->running);
    tp_client_check_done(c);
}

static void tp_client_curl_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct tp_client *c = arg;
    (void)fd;
    (void)what;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
    tp_client_check_done(c);
}

static int tp_client_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct tp_client *c = userp;
    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(c->curl_timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(c->curl_timer, &tv) < 0 ? -1 : 0;
}

static int tp_client_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
    struct tp_client *c = userp;
    struct tp_sock *ts = sockp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (ts) {
            LIST_REMOVE(ts, link);
            event_free(ts->ev);
            free(ts);
        }
        return 0;
    }
    if (!ts) {
        ts = calloc(1, sizeof *ts);
        if (!ts)
            return -1;
        ts->fd = s;
        LIST_INSERT_HEAD(&c->socks, ts, link);
        curl_multi_assign(c->multi, s, ts);
    } else if (ts->ev) {
        event_free(ts->ev);
        ts->ev = NULL;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    ts->ev = event_new(c->base, s, kind, tp_client_event_cb, c);
    if (!ts->ev || event_add(ts->ev, NULL) < 0)
        return -1;
    return 0;
}

/* Client ------------------------------------------------------------------------------- */

struct tp_client *tp_client_new(const struct tp_options *o, struct event_base *base)
{
    char err[160];
    if (tp_options_check(o, err, sizeof err) < 0) {
        log_error("trackplan client options", "error", err);
        errno = EINVAL;
        return NULL;
    }
    struct tp_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    TAILQ_INIT(&c->queued);
    TAILQ_INIT(&c->authwait);
    TAILQ_INIT(&c->active);
    TAILQ_INIT(&c->sleeping);
    LIST_INIT(&c->socks);
    c->o = *o;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    size_t ulen = strlen(o->url);
    while (ulen > 0 && o->url[ulen - 1] == '/')
        ulen--;
    c->url = util_strndup(o->url, ulen);
    c->api_key = util_strdup(o->api_key);
    c->key_header = strdup(o->api_key_header ? o->api_key_header : "X-API-Key");
    c->user = o->api_key ? NULL : util_strdup(o->user);
    c->password = o->api_key ? NULL : util_strdup(o->password);
    c->ca_file = util_strdup(o->ca_file);
    c->o.url = c->o.api_key = c->o.api_key_header = c->o.user = c->o.password = NULL;
    c->o.ca_file = NULL;
    if (!c->url || !c->key_header || (o->api_key && !c->api_key) || (o->ca_file && !c->ca_file))
        goto fail;
    if (!o->api_key && o->user && (!c->user || !c->password))
        goto fail;
    if (base) {
        c->base = base;
    } else {
        c->base = event_base_new();
        c->own_base = 1;
        if (!c->base)
            goto fail;
    }
    c->curl_timer = evtimer_new(c->base, tp_client_curl_timeout, c);
    c->multi = curl_multi_init();
    if (!c->curl_timer || !c->multi)
        goto fail;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, tp_client_sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, tp_client_timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o->max_transfers);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)o->max_transfers);
    if (o->insecure)
        log_warn("trackplan TLS verification is off (insecure)", "url", c->url);
    return c;
fail:
    tp_client_free(c);
    errno = ENOMEM;
    return NULL;
}

/* The result a pending request gets when the client goes away. */
static struct tp_result *tp_req_cancel_result(struct tp_req *r, int on_wire)
{
    if (r->final) {
        struct tp_result *res = r->final;
        r->final = NULL;
        return res;
    }
    int unknown = r->maybe_processed || (on_wire && !r->idempotent);
    return tp_result_new_error(r->op, unknown ? TP_UNKNOWN : TP_TRYLATER, TP_ERR_CANCELLED,
                               "the client was closed");
}

static void tp_client_secret_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void tp_client_free(struct tp_client *c)
{
    if (!c)
        return;
    c->closing = 1;
    struct tp_req_list *lists[] = {&c->active, &c->sleeping, &c->authwait, &c->queued};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        struct tp_req *r;
        while ((r = TAILQ_FIRST(lists[i]))) {
            int on_wire = r->state == TP_RQ_ACTIVE;
            if (on_wire)
                curl_multi_remove_handle(c->multi, r->easy);
            tp_req_unlink(r);
            struct tp_result *res = tp_req_cancel_result(r, on_wire);
            if (res) {
                tp_req_deliver(r, res);
            } else {
                if (r->done)
                    c->pending--;
                tp_req_free(r);
            }
        }
    }
    if (c->multi)
        curl_multi_cleanup(c->multi);
    struct tp_sock *ts;
    while ((ts = LIST_FIRST(&c->socks))) {
        LIST_REMOVE(ts, link);
        event_free(ts->ev);
        free(ts);
    }
    if (c->curl_timer)
        event_free(c->curl_timer);
    if (c->own_base && c->base)
        event_base_free(c->base);
    tp_client_drop_token(c);
    free(c->url);
    tp_client_secret_free(c->api_key);
    free(c->key_header);
    free(c->user);
    tp_client_secret_free(c->password);
    free(c->ca_file);
    free(c);
    curl_global_cleanup();
}

size_t tp_client_pending(const struct tp_client *c) { return c->pending; }

int tp_client_op(struct tp_client *c, enum tp_op_id id, const struct tp_call *call,
                 tp_done_fn done, void *arg)
{
    const struct tp_op *op = tp_op_get(id);
    static const struct tp_call none = {0};
    json_t *login_body = NULL;
    char *path = NULL;
    struct tp_kv *query = NULL;
    int rc = -1;
    if (c->closing) {
        errno = ECANCELED;
        return -1;
    }
    if (!call)
        call = &none;
    errno = EINVAL;
    if (!op || (op->has_id && !call->id) || (!op->has_id && call->id))
        goto out;
    if (id == TP_OP_LOGIN && !call->body) {
        if (!tp_client_jwt(c))
            goto out;
        login_body = tp_client_login_body(c);
        if (!login_body) {
            errno = ENOMEM;
            goto out;
        }
    } else if (op->has_body != (call->body != NULL)) {
        goto out;
    }
    path = tp_op_path(op, call->id);
    if (!path)
        goto out;
    struct tp_call paged = *call;
    if (op->paged) {
        /* the API requires page and pageSize: default them to the first page */
        int has_page = 0, has_size = 0;
        for (size_t i = 0; i < call->nquery; i++) {
            const char *k = call->query[i].key ? call->query[i].key : "";
            has_page |= strcasecmp(k, "page") == 0;
            has_size |= strcasecmp(k, "pageSize") == 0;
        }
        if (!has_page || !has_size) {
            query = calloc(call->nquery + 2, sizeof *query);
            if (!query) {
                errno = ENOMEM;
                goto out;
            }
            if (call->nquery)
                memcpy(query, call->query, call->nquery * sizeof *query);
            paged.query = query;
            paged.nquery = call->nquery;
            if (!has_page)
                query[paged.nquery++] = (struct tp_kv){"page", "1"};
            if (!has_size)
                query[paged.nquery++] = (struct tp_kv){"pageSize", TP_DEFAULT_PAGE_SIZE};
        }
    }
    struct tp_req *r = tp_req_new(c, op, op->method, path, &paged,
                                  login_body ? login_body : call->body);
    if (!r)
        goto out;
    rc = tp_req_submit(r, done, arg);
out:
    json_decref(login_body);
    free(query);
    free(path);
    return rc;
}

int tp_client_request(struct tp_client *c, const char *method, const char *path,
                      const struct tp_call *call, tp_done_fn done, void *arg)
{
    char m[8];
    if (c->closing) {
        errno = ECANCELED;
        return -1;
    }
    size_t ml = method ? strlen(method) : 0;
    if (ml == 0 || ml >= sizeof m || !path || path[0] != '/' || !tp_printable(path) ||
        strchr(path, ' ') || strchr(path, '#')) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i <= ml; i++)
        m[i] = (char)(method[i] >= 'a' && method[i] <= 'z' ? method[i] - 32 : method[i]);
    if (!tp_method_ok(m)) {
        errno = EINVAL;
        return -1;
    }
    char *bare = util_strndup(path, strcspn(path, "?"));
    if (!bare) {
        errno = ENOMEM;
        return -1;
    }
    const struct tp_op *op = tp_op_match(m, bare);
    free(bare);
    struct tp_req *r = tp_req_new(c, op, m, path, call, call ? call->body : NULL);
    if (!r)
        return -1;
    return tp_req_submit(r, done, arg);
}

/* Pager -------------------------------------------------------------------------------- */

struct tp_pager {
    struct tp_client *c;
    enum tp_op_id op;
    char *id;
    struct tp_kv *query;     /* the caller's parameters (copies) + page + pageSize */
    size_t nquery;
    char page_s[24], size_s[24];
    long page;
    int page_size;
    size_t max_items;
    json_t *items;           /* owned */
    json_int_t count;        /* the server's "count", -1 until seen */
    int retry_unsafe;
    tp_done_fn done;
    void *arg;
};

static void tp_pager_free(struct tp_pager *p)
{
    if (!p)
        return;
    /* the last two parameters (page, pageSize) point into p itself */
    for (size_t i = 0; p->query && i + 2 < p->nquery; i++) {
        free((char *)p->query[i].key);
        free((char *)p->query[i].value);
    }
    free(p->query);
    free(p->id);
    json_decref(p->items);
    free(p);
}

static void tp_pager_page_cb(struct tp_result *res, void *arg);

/* Submits the pager's current page. 0 or -1 (errno). */
static int tp_pager_next(struct tp_pager *p)
{
    snprintf(p->page_s, sizeof p->page_s, "%ld", p->page);
    p->query[p->nquery - 2].value = p->page_s;
    struct tp_call call = {.id = p->id, .query = p->query, .nquery = p->nquery,
                           .retry_unsafe = p->retry_unsafe};
    return tp_client_op(p->c, p->op, &call, tp_pager_page_cb, p);
}

static void tp_pager_page_cb(struct tp_result *res, void *arg)
{
    struct tp_pager *p = arg;
    if (res->outcome != TP_OK)
        goto deliver;
    json_t *data = json_object_get(res->body, "data"); /* borrowed */
    if (!json_is_array(data)) {
        res->outcome = TP_FAIL;
        tp_error_set(&res->error, TP_ERR_PROTOCOL, "a page has no \"data\" array");
        goto deliver;
    }
    json_t *count = json_object_get(res->body, "count");
    if (json_is_integer(count))
        p->count = json_integer_value(count);
    size_t n = json_array_size(data);
    for (size_t i = 0; i < n; i++) {
        if (json_array_size(p->items) >= p->max_items) {
            res->truncated = 1;
            break;
        }
        json_array_append(p->items, json_array_get(data, i));
    }
    size_t have = json_array_size(p->items);
    /* the server's count decides when it gives one (it may cap the page size); without
     * it a short page is the last */
    int more = n > 0 && (p->count >= 0 ? (json_int_t)have < p->count : n >= (size_t)p->page_size);
    if (more && have >= p->max_items) {
        res->truncated = 1;
        more = 0;
    }
    if (more) {
        p->page++;
        tp_result_free(res);
        res = NULL;
        if (tp_pager_next(p) == 0)
            return;
        res = tp_result_new_error(tp_op_get(p->op), errno == EAGAIN ? TP_TRYLATER : TP_FAIL,
                                  errno == ECANCELED ? TP_ERR_CANCELLED : TP_ERR_LOCAL,
                                  "could not request the next page");
        if (!res) {
            log_error("trackplan: out of memory in the pager");
            tp_pager_free(p);
            return;
        }
        goto deliver;
    }
    json_t *all = json_pack("{s:I, s:O}", "count",
                            (json_int_t)(p->count >= 0 ? p->count : (json_int_t)have), "data",
                            p->items);
    if (!all) {
        res->outcome = TP_TRYLATER;
        tp_error_set(&res->error, TP_ERR_LOCAL, "out of memory");
        goto deliver;
    }
    json_decref(res->body);
    res->body = all;
deliver:
    if (res->outcome != TP_OK) {
        json_decref(res->body);
        res->body = NULL;
    }
    tp_done_fn done = p->done;
    void *darg = p->arg;
    tp_pager_free(p);
    done(res, darg);
}

int tp_client_list_all(struct tp_client *c, enum tp_op_id id, const struct tp_call *call,
                       int page_size, size_t max_items, tp_done_fn done, void *arg)
{
    const struct tp_op *op = tp_op_get(id);
    static const struct tp_call none = {0};
    if (!call)
        call = &none;
    if (!op || !op->paged || page_size < 1 || page_size > 10000 || max_items < 1 || !done) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < call->nquery; i++)
        if (!call->query[i].key || !call->query[i].value ||
            strcasecmp(call->query[i].key, "page") == 0 ||
            strcasecmp(call->query[i].key, "pageSize") == 0) {
            errno = EINVAL;
            return -1;
        }
    struct tp_pager *p = calloc(1, sizeof *p);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    p->c = c;
    p->op = id;
    p->page = 1;
    p->page_size = page_size;
    p->max_items = max_items;
    p->count = -1;
    p->retry_unsafe = call->retry_unsafe;
    p->done = done;
    p->arg = arg;
    p->nquery = call->nquery + 2;
    p->query = calloc(p->nquery, sizeof *p->query);
    p->items = json_array();
    p->id = util_strdup(call->id);
    int ok = p->query && p->items && (!call->id || p->id);
    for (size_t i = 0; ok && i < call->nquery; i++) {
        p->query[i].key = strdup(call->query[i].key);
        p->query[i].value = strdup(call->query[i].value);
        ok = p->query[i].key && p->query[i].value;
    }
    if (!ok) {
        tp_pager_free(p);
        errno = ENOMEM;
        return -1;
    }
    snprintf(p->size_s, sizeof p->size_s, "%d", page_size);
    p->query[p->nquery - 2].key = "page";
    p->query[p->nquery - 1].key = "pageSize";
    p->query[p->nquery - 1].value = p->size_s;
    if (tp_pager_next(p) < 0) {
        int e = errno;
        tp_pager_free(p);
        errno = e;
        return -1;
    }
    return 0;
}

/* Blocking use ----------------------------------------------------------------------- */

int tp_client_run(struct tp_client *c)
{
    if (!c->own_base)
        return -1;
    while (c->pending > 0) {
        int rc = event_base_loop(c->base, EVLOOP_ONCE);
        if (rc < 0)
            return -1;
        if (rc == 1 && c->pending > 0) {
            log_error("trackplan: calls pending but nothing to wait for");
            return -1;
        }
    }
    return 0;
}

void tp_result_keep(struct tp_result *res, void *arg)
{
    struct tp_result **slot = arg;
    tp_result_free(*slot);
    *slot = res;
}

/* Runs the private loop after a successful submission; *out is then set. */
static int tp_client_wait(struct tp_client *c, int submitted, struct tp_result **out)
{
    if (submitted < 0)
        return -1;
    if (tp_client_run(c) < 0 || !*out) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int tp_client_call(struct tp_client *c, enum tp_op_id op, const struct tp_call *call,
                   struct tp_result **out)
{
    *out = NULL;
    if (!c->own_base) {
        errno = EINVAL;
        return -1;
    }
    return tp_client_wait(c, tp_client_op(c, op, call, tp_result_keep, out), out);
}

int tp_client_call_raw(struct tp_client *c, const char *method, const char *path,
                       const struct tp_call *call, struct tp_result **out)
{
    *out = NULL;
    if (!c->own_base) {
        errno = EINVAL;
        return -1;
    }
    return tp_client_wait(c, tp_client_request(c, method, path, call, tp_result_keep, out), out);
}

int tp_client_call_all(struct tp_client *c, enum tp_op_id op, const struct tp_call *call,
                       int page_size, size_t max_items, struct tp_result **out)
{
    *out = NULL;
    if (!c->own_base) {
        errno = EINVAL;
        return -1;
    }
    return tp_client_wait(
        c, tp_client_list_all(c, op, call, page_size, max_items, tp_result_keep, out), out);
}
