/* imap: the IMAP poller. A worker thread talks IMAP with blocking curl_easy calls (STATUS,
 * UID SEARCH, UID FETCH, UID STORE / MOVE) and posts every store call (kv, intake) to the loop
 * thread through a pipe, waiting for its answer; nothing here blocks the loop. See imap.h for
 * the options and the once-only rules. */
#include "mail/imap.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/util.h"
#include "config.h"
#include "mail/parse.h"
#include "store.h"

#define IP_MAILBOX_MAX 100
#define IP_LIST_MAX (4u << 20)   /* bytes of a SEARCH / FETCH listing */
#define IP_SMALL_MAX (64u << 10) /* bytes of any other command's output */
/* UIDs per RFC822.SIZE listing: libcurl 7.88 (Debian 12) takes the untagged lines of a custom
 * command as header data, caps them at 300 KiB and overcounts, so one listing of a few hundred
 * UIDs fails every time; 50 stay well below it (the count starts afresh per command). */
#define IP_SIZES_CHUNK 50
#define IP_FAIL_SKIP 3           /* polls failing on one message before it is left alone */
#define IP_ID_MAX 998

/* ---- Options ----------------------------------------------------------------------------- */

static const char *const ip_keys[] = {
    "url",        "user",     "password", "mailbox",           "interval",     "after",   "move_to",
    "tls_verify", "starttls", "start",    "max_message_bytes", "max_per_poll", "timeout", NULL};

void mail_imap_options_free(struct mail_imap_opts *o)
{
    if (!o)
        return;
    free(o->url);
    free(o->user);
    free(o->password);
    free(o->mailbox);
    free(o->move_to);
    memset(o, 0, sizeof *o);
}

const json_t *mail_imap_options_of(const json_t *source_options)
{
    json_t *v = json_object_get(source_options, "imap");
    return v && !json_is_null(v) ? v : NULL;
}

/* Sets *err to "imap.KEY: what"; returns -1. */
static int ip_err(char **err, const char *key, const char *what)
{
    *err = util_asprintf("imap.%s: %s", key, what);
    return -1;
}

/* A string option; *out malloc'd, or left NULL when absent and not required. */
static int ip_opt_str(const json_t *o, const char *key, int required, char **out, char **err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return required ? ip_err(err, key, "required") : 0;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return ip_err(err, key, "expected a non-empty string");
    if (!(*out = util_strdup(json_string_value(v))))
        return ip_err(err, key, "out of memory");
    return 0;
}

static int ip_opt_bool(const json_t *o, const char *key, int def, int *out, char **err)
{
    json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return ip_err(err, key, "expected true or false");
    *out = json_is_true(v);
    return 0;
}

/* A duration: "30s" style text or a number of seconds, within [min, max] ms. */
static int ip_opt_duration(const json_t *o, const char *key, int64_t def, int64_t min, int64_t max,
                           int64_t *out, char **err)
{
    json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v))
        return 0;
    int64_t ms = -1;
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        json_integer_value(v) <= INT64_MAX / 1000)
        ms = (int64_t)json_integer_value(v) * 1000;
    else if (json_is_string(v) && config_parse_duration(json_string_value(v), &ms) < 0)
        ms = -1;
    if (ms < min || ms > max)
        return ip_err(err, key, "expected a duration such as \"30s\" or \"5m\" within range");
    *out = ms;
    return 0;
}

/* A count or size: an integer, or (sizes) text such as "10MiB", within [min, max]. */
static int ip_opt_size(const json_t *o, const char *key, size_t def, size_t min, size_t max,
                       size_t *out, char **err)
{
    json_t *v = json_object_get(o, key);
    *out = def;
    if (!v || json_is_null(v))
        return 0;
    size_t n = 0;
    int ok = 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        n = (size_t)json_integer_value(v);
        ok = 1;
    } else if (json_is_string(v) && config_parse_size(json_string_value(v), &n) == 0) {
        ok = 1;
    }
    if (!ok || n < min || n > max)
        return ip_err(err, key, "expected a number within range");
    *out = n;
    return 0;
}

/* Printable ASCII without quotes or backslashes (they go in IMAP quoted strings). */
static int ip_mailbox_ok(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > IP_MAILBOX_MAX)
        return 0;
    for (const char *p = m; *p; p++)
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
            return 0;
    return 1;
}

/* imap[s]://host[:port] with an optional "/" and nothing else. */
static int ip_url_ok(char *url)
{
    size_t skip;
    if (strncasecmp(url, "imap://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "imaps://", 8) == 0)
        skip = 8;
    else
        return 0;
    size_t n = strlen(url);
    if (n > skip && url[n - 1] == '/')
        url[--n] = '\0';
    if (n == skip)
        return 0;
    for (const char *p = url + skip; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("/@?#;\"\\", *p))
            return 0;
    return 1;
}

int mail_imap_options_parse(const json_t *imap, struct mail_imap_opts *out, char **err)
{
    memset(out, 0, sizeof *out);
    *err = NULL;
    if (!json_is_object(imap)) {
        *err = util_strdup("imap: expected a mapping of url, user, password, ...");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)imap, key, v)
    {
        int known = 0;
        for (size_t i = 0; ip_keys[i]; i++)
            known |= strcmp(key, ip_keys[i]) == 0;
        if (!known) {
            *err = util_asprintf("imap: unknown key '%.60s'", key);
            goto fail;
        }
    }
    if (ip_opt_str(imap, "url", 1, &out->url, err) < 0 ||
        ip_opt_str(imap, "user", 1, &out->user, err) < 0 ||
        ip_opt_str(imap, "password", 1, &out->password, err) < 0 ||
        ip_opt_str(imap, "mailbox", 0, &out->mailbox, err) < 0 ||
        ip_opt_str(imap, "move_to", 0, &out->move_to, err) < 0)
        goto fail;
    if (!ip_url_ok(out->url)) {
        *err = util_strdup("imap.url: expected imap://host[:port] or imaps://host[:port] "
                           "(credentials go in user and password, the mailbox in mailbox)");
        goto fail;
    }
    if (!out->mailbox && !(out->mailbox = util_strdup("INBOX"))) {
        *err = util_strdup("imap: out of memory");
        goto fail;
    }
    if (!ip_mailbox_ok(out->mailbox)) {
        *err = util_strdup("imap.mailbox: expected 1..100 printable ASCII characters "
                           "without quotes or backslashes");
        goto fail;
    }
    json_t *after = json_object_get(imap, "after");
    const char *as = json_string_value(after);
    if (!after || json_is_null(after) || (as && strcmp(as, "seen") == 0)) {
        out->after = MAIL_IMAP_AFTER_SEEN;
    } else if (as && strcmp(as, "move") == 0) {
        out->after = MAIL_IMAP_AFTER_MOVE;
    } else {
        *err = util_strdup("imap.after: expected \"seen\" or \"move\"");
        goto fail;
    }
    if (out->after == MAIL_IMAP_AFTER_MOVE && (!out->move_to || !ip_mailbox_ok(out->move_to) ||
                                               strcmp(out->move_to, out->mailbox) == 0)) {
        *err = util_strdup("imap.move_to: after: move needs a folder (printable ASCII, not the "
                           "polled mailbox)");
        goto fail;
    }
    if (out->after != MAIL_IMAP_AFTER_MOVE && out->move_to) {
        *err = util_strdup("imap.move_to: only with after: move");
        goto fail;
    }
    json_t *start = json_object_get(imap, "start");
    const char *ss = json_string_value(start);
    if (!start || json_is_null(start) || (ss && strcmp(ss, "unseen") == 0))
        out->start = MAIL_IMAP_START_UNSEEN;
    else if (ss && strcmp(ss, "all") == 0)
        out->start = MAIL_IMAP_START_ALL;
    else if (ss && strcmp(ss, "new") == 0)
        out->start = MAIL_IMAP_START_NEW;
    else {
        *err = util_strdup("imap.start: expected \"unseen\", \"all\" or \"new\"");
        goto fail;
    }
    if (ip_opt_bool(imap, "tls_verify", 1, &out->tls_verify, err) < 0 ||
        ip_opt_bool(imap, "starttls", 0, &out->starttls, err) < 0 ||
        ip_opt_duration(imap, "interval", 60000, 1000, 86400000, &out->interval_ms, err) < 0 ||
        ip_opt_duration(imap, "timeout", 60000, 1000, 3600000, &out->timeout_ms, err) < 0 ||
        ip_opt_size(imap, "max_message_bytes", MAIL_DEFAULT_MAX_BYTES, 1024, (size_t)1 << 30,
                    &out->max_message_bytes, err) < 0 ||
        ip_opt_size(imap, "max_per_poll", 50, 1, 1000, &out->max_per_poll, err) < 0)
        goto fail;
    if (out->starttls && strncasecmp(out->url, "imaps://", 8) == 0) {
        *err = util_strdup("imap.starttls: only for imap:// (imaps:// is TLS from the start)");
        goto fail;
    }
    return 0;
fail:
    mail_imap_options_free(out);
    return -1;
}

int mail_imap_check_options(const json_t *imap, char **err)
{
    struct mail_imap_opts o;
    int rc = mail_imap_options_parse(imap, &o, err);
    mail_imap_options_free(&o);
    return rc;
}

/* ---- Message keys -------------------------------------------------------------------------- */

char *mail_imap_message_key(const char *raw, size_t len)
{
    const char *p = raw, *end = raw + len;
    buf_t v;
    buf_init(&v, 4096);
    char *key = NULL;
    /* The Message-ID header of the header block (up to the first empty line), unfolded. */
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t ll = (size_t)((eol ? eol : end) - p);
        if (ll == 0 || (ll == 1 && p[0] == '\r'))
            break;
        if (ll >= 11 && strncasecmp(p, "message-id:", 11) == 0) {
            const char *q = p + 11;
            for (;;) {
                const char *le = eol ? eol : end;
                for (; q < le; q++)
                    if (*q != '\r' && buf_putc(&v, *q) < 0)
                        break;
                if (!eol || eol + 1 >= end || (eol[1] != ' ' && eol[1] != '\t'))
                    break;
                q = eol + 1;
                eol = memchr(q, '\n', (size_t)(end - q));
            }
            break;
        }
        if (!eol)
            break;
        p = eol + 1;
    }
    if (v.len > 0) {
        const char *s = v.data, *lt = strchr(s, '<');
        const char *gt = lt ? strchr(lt, '>') : NULL;
        size_t n;
        if (lt && gt) {
            s = lt + 1;
            n = (size_t)(gt - s);
        } else {
            while (*s == ' ' || *s == '\t')
                s++;
            n = strcspn(s, " \t");
        }
        int ok = n > 0 && n <= IP_ID_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = s[i] > 0x20 && s[i] < 0x7f;
        if (ok)
            key = util_strndup(s, n);
        if (ok && !key)
            goto done;
    }
    if (!key) {
        unsigned char h[32];
        char hex[65];
        crypto_sha256(raw, len, h);
        crypto_hex(h, sizeof h, hex);
        key = util_asprintf("sha256:%s", hex);
    }
done:
    buf_free(&v);
    return key;
}

/* ---- The poller: loop-thread calls ------------------------------------------------------- */

enum ip_call_kind { IP_KV_GET, IP_KV_PUT, IP_INTAKE };

/* A store call the worker hands to the loop thread. The worker allocates it and frees it once
 * done; when the poller stops first the worker marks it abandoned and leaves it: a queued
 * call is then freed by mail_imap_poller_free, a submitted intake by its store callback. */
struct ip_call {
    struct ip_call *next;
    struct mail_imap_poller *p;
    enum ip_call_kind kind;
    const char *name, *value;        /* kv; the worker's strings */
    const struct store_request *req; /* intake; the store copies it during submit */
    enum store_status status;
    char *out;           /* kv get: malloc'd value */
    int64_t id;          /* intake: the request id */
    int done, abandoned; /* p->mu */
};

struct mail_imap_poller {
    struct event_base *base;
    struct store *store;
    char *source;
    char *kv_name;
    struct mail_imap_opts o;
    mail_imap_stored_fn on_stored;
    void *arg;
    int pipe_r, pipe_w;
    struct event *call_ev;
    pthread_t thread;
    int thread_started;
    int curl_inited;
    pthread_mutex_t mu;
    pthread_cond_t cv;                  /* calls done, kicks and stop; monotonic clock */
    struct ip_call *calls, *calls_tail; /* mu */
    int kicked;                         /* mu */
    atomic_int stopping;
    struct mail_imap_stats st; /* mu */
    /* worker only */
    char *mbox_esc; /* the mailbox, URL-escaped */
    int64_t fail_uid;
    int fail_count;
};

static void ip_stat(struct mail_imap_poller *p, uint64_t *field)
{
    pthread_mutex_lock(&p->mu);
    (*field)++;
    pthread_mutex_unlock(&p->mu);
}

static void ip_call_done(struct ip_call *c, enum store_status st)
{
    struct mail_imap_poller *p = c->p;
    pthread_mutex_lock(&p->mu);
    c->status = st;
    c->done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Store callback of an intake call (loop thread). abandoned is only ever set while the poller
 * stops, which happens on this same thread, so it is read here without the poller's lock:
 * after a stop the poller may be gone. */
static void ip_on_intake(const struct store_intake_result *res, void *arg)
{
    struct ip_call *c = arg;
    if (c->abandoned) {
        free(c);
        return;
    }
    c->id = res->id;
    if (res->status == STORE_OK && c->p->on_stored)
        c->p->on_stored(res->id, c->p->arg);
    ip_call_done(c, res->status);
}

static void ip_on_call(evutil_socket_t fd, short what, void *arg)
{
    struct mail_imap_poller *p = arg;
    char drain[64];
    while (read(p->pipe_r, drain, sizeof drain) > 0) {
    }
    pthread_mutex_lock(&p->mu);
    struct ip_call *list = p->calls;
    p->calls = p->calls_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (list) {
        struct ip_call *c = list;
        list = c->next;
        switch (c->kind) {
        case IP_KV_GET:
            ip_call_done(c, store_kv_get(p->store, c->name, &c->out));
            break;
        case IP_KV_PUT:
            ip_call_done(c, store_kv_put(p->store, c->name, c->value));
            break;
        case IP_INTAKE:
            /* A refusal runs ip_on_intake before this returns; else it runs after commit. */
            store_intake_submit(p->store, c->req, ip_on_intake, c);
            break;
        }
    }
}

/* Runs c on the loop thread and waits for it (worker). Returns its status, or UNAVAILABLE
 * when the poller stops first (then c is abandoned and no longer the caller's). */
static enum store_status ip_call_run(struct mail_imap_poller *p, struct ip_call *c, int *abandoned)
{
    c->p = p;
    *abandoned = 0;
    pthread_mutex_lock(&p->mu);
    if (atomic_load(&p->stopping)) {
        pthread_mutex_unlock(&p->mu);
        return STORE_UNAVAILABLE;
    }
    c->next = NULL;
    if (p->calls_tail)
        p->calls_tail->next = c;
    else
        p->calls = c;
    p->calls_tail = c;
    pthread_mutex_unlock(&p->mu);
    ssize_t wr = write(p->pipe_w, "c", 1);
    (void)wr; /* a full pipe already wakes the loop */
    pthread_mutex_lock(&p->mu);
    while (!c->done && !atomic_load(&p->stopping))
        pthread_cond_wait(&p->cv, &p->mu);
    enum store_status st = c->done ? c->status : STORE_UNAVAILABLE;
    if (!c->done) {
        c->abandoned = 1;
        *abandoned = 1;
    }
    pthread_mutex_unlock(&p->mu);
    return st;
}

static enum store_status ip_kv_get(struct mail_imap_poller *p, char **value)
{
    *value = NULL;
    struct ip_call *c = calloc(1, sizeof *c);
    if (!c)
        return STORE_UNAVAILABLE;
    c->kind = IP_KV_GET;
    c->name = p->kv_name;
    int abandoned;
    enum store_status st = ip_call_run(p, c, &abandoned);
    if (abandoned)
        return st;
    *value = c->out;
    free(c);
    return st;
}

static enum store_status ip_kv_put(struct mail_imap_poller *p, const char *value)
{
    struct ip_call *c = calloc(1, sizeof *c);
    if (!c)
        return STORE_UNAVAILABLE;
    c->kind = IP_KV_PUT;
    c->name = p->kv_name;
    c->value = value;
    int abandoned;
    enum store_status st = ip_call_run(p, c, &abandoned);
    if (!abandoned)
        free(c);
    return st;
}

static enum store_status ip_intake(struct mail_imap_poller *p, const struct store_request *req,
                                   int64_t *id)
{
    struct ip_call *c = calloc(1, sizeof *c);
    *id = 0;
    if (!c)
        return STORE_UNAVAILABLE;
    c->kind = IP_INTAKE;
    c->req = req;
    int abandoned;
    enum store_status st = ip_call_run(p, c, &abandoned);
    if (!abandoned) {
        *id = c->id;
        free(c);
    }
    return st;
}

/* ---- The poller: IMAP over curl (worker thread) ------------------------------------------- */

struct ip_xfer {
    struct mail_imap_poller *p;
    CURL *h;
    buf_t out;
    int too_big;
    char errbuf[CURL_ERROR_SIZE];
};

static size_t ip_write(char *ptr, size_t size, size_t n, void *ud)
{
    struct ip_xfer *x = ud;
    if (buf_append(&x->out, ptr, size * n) < 0) {
        x->too_big = 1;
        return 0;
    }
    return size * n;
}

static int ip_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct mail_imap_poller *p = ud;
    return atomic_load(&p->stopping) ? 1 : 0;
}

static int ip_curl_setup(struct mail_imap_poller *p, struct ip_xfer *x)
{
    CURL *h = x->h;
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "imap,imaps") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_USERNAME, p->o.user) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PASSWORD, p->o.password) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)p->o.timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)p->o.timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, p->o.tls_verify ? 1L : 0L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, p->o.tls_verify ? 2L : 0L) != CURLE_OK;
    if (p->o.starttls)
        bad |= curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ip_write) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, ip_progress) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_XFERINFODATA, p) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
    return bad ? -1 : 0;
}

/* Runs one IMAP command: a URL (mailbox, UIDVALIDITY, UID) and an optional custom command.
 * The output (custom: the untagged responses; fetch: the message) is in x->out, at most max
 * bytes. 0, or -1 with the failure logged as what. */
static int ip_cmd(struct mail_imap_poller *p, struct ip_xfer *x, const char *url,
                  const char *custom, size_t max, const char *what)
{
    buf_reset(&x->out);
    x->out.max = max;
    x->too_big = 0;
    x->errbuf[0] = '\0';
    curl_easy_setopt(x->h, CURLOPT_URL, url);
    curl_easy_setopt(x->h, CURLOPT_CUSTOMREQUEST, custom);
    CURLcode rc = curl_easy_perform(x->h);
    if (rc == CURLE_OK)
        return 0;
    if (!atomic_load(&p->stopping))
        log_warn("imap command failed", "source", p->source, "mailbox", p->o.mailbox, "command",
                 what, "error", x->too_big ? "output too large" : curl_easy_strerror(rc), "detail",
                 x->errbuf);
    return -1;
}

/* Parses the number after "name " in s (e.g. "UIDNEXT 42"); 0 or -1. */
static int ip_field(const char *s, const char *name, int64_t *out)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(s, name); p; p = strstr(p + 1, name)) {
        if ((p != s && p[-1] != ' ' && p[-1] != '(') || p[nl] != ' ')
            continue;
        const char *d = p + nl + 1;
        size_t n = strspn(d, "0123456789");
        char num[24];
        if (n == 0 || n >= sizeof num)
            return -1;
        memcpy(num, d, n);
        num[n] = '\0';
        return util_parse_i64(num, 0, 4294967295LL, out);
    }
    return -1;
}

static char *ip_mbox_url(struct mail_imap_poller *p, const char *uv)
{
    return util_asprintf("%s/%s;UIDVALIDITY=%s", p->o.url, p->mbox_esc, uv);
}

/* STATUS: the mailbox's UIDVALIDITY (as text) and UIDNEXT. */
static int ip_status(struct mail_imap_poller *p, struct ip_xfer *x, char uv[24], int64_t *uidnext)
{
    char *url = util_asprintf("%s/", p->o.url);
    char *cmd = util_asprintf("STATUS \"%s\" (UIDVALIDITY UIDNEXT)", p->o.mailbox);
    int rc = -1;
    int64_t v = 0;
    if (!url || !cmd || ip_cmd(p, x, url, cmd, IP_SMALL_MAX, "STATUS") < 0)
        goto done;
    /* The attributes follow the last '(' (the mailbox name comes before it). */
    const char *attrs = x->out.data ? strrchr(x->out.data, '(') : NULL;
    if (!attrs || ip_field(attrs, "UIDVALIDITY", &v) < 0 ||
        ip_field(attrs, "UIDNEXT", uidnext) < 0 || v == 0) {
        log_warn("imap STATUS answer without UIDVALIDITY/UIDNEXT", "source", p->source, "mailbox",
                 p->o.mailbox);
        goto done;
    }
    snprintf(uv, 24, "%lld", (long long)v);
    rc = 0;
done:
    free(url);
    free(cmd);
    return rc;
}

static int ip_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* UID SEARCH criteria on the mailbox: the UIDs above `above`, ascending, at most max
 * (*uids malloc'd; NULL when *n is 0); *more (may be NULL) tells whether more than max were
 * found. */
static int ip_search(struct mail_imap_poller *p, struct ip_xfer *x, const char *uv,
                     const char *criteria, int64_t above, size_t max, int64_t **uids, size_t *n,
                     int *more)
{
    *uids = NULL;
    *n = 0;
    if (more)
        *more = 0;
    char *url = ip_mbox_url(p, uv);
    char *cmd = util_asprintf("UID SEARCH %s", criteria);
    int64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = -1;
    if (!url || !cmd || ip_cmd(p, x, url, cmd, IP_LIST_MAX, "UID SEARCH") < 0)
        goto done;
    for (const char *line = x->out.data; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > 8 && strncasecmp(line, "* SEARCH", 8) == 0) {
            const char *q = line + 8, *end = line + ll;
            while (q < end) {
                while (q < end && (*q == ' ' || *q == '\r'))
                    q++;
                size_t dl = strspn(q, "0123456789");
                if (dl == 0 || dl > 10)
                    break;
                char num[12];
                memcpy(num, q, dl);
                num[dl] = '\0';
                q += dl;
                int64_t u;
                if (util_parse_i64(num, 1, 4294967295LL, &u) < 0 || u <= above)
                    continue;
                if (cnt == cap) {
                    size_t nc = cap ? cap * 2 : 64;
                    int64_t *nv = realloc(v, nc * sizeof *nv);
                    if (!nv)
                        goto done;
                    v = nv;
                    cap = nc;
                }
                v[cnt++] = u;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof *v, ip_cmp_i64);
    *uids = v;
    *n = cnt < max ? cnt : max;
    if (more)
        *more = cnt > max;
    v = NULL;
    rc = 0;
done:
    free(v);
    free(url);
    free(cmd);
    return rc;
}

/* RFC822.SIZE of each UID (-1 when the server does not say), asked IP_SIZES_CHUNK UIDs at a
 * time. 0, or -1 when a listing failed (logged). */
static int ip_sizes(struct mail_imap_poller *p, struct ip_xfer *x, const char *uv,
                    const int64_t *uids, size_t n, int64_t *sizes)
{
    buf_t set;
    buf_init(&set, 0);
    char *url = ip_mbox_url(p, uv), *cmd = NULL;
    int rc = -1;
    if (!url)
        goto done;
    for (size_t i = 0; i < n; i++)
        sizes[i] = -1;
    for (size_t from = 0; from < n; from += IP_SIZES_CHUNK) {
        size_t to = n - from < IP_SIZES_CHUNK ? n : from + IP_SIZES_CHUNK;
        buf_reset(&set);
        for (size_t i = from; i < to; i++)
            if (buf_printf(&set, "%s%lld", i > from ? "," : "", (long long)uids[i]) < 0)
                goto done;
        free(cmd);
        cmd = util_asprintf("UID FETCH %s (UID RFC822.SIZE)", set.data ? set.data : "");
        if (!cmd || ip_cmd(p, x, url, cmd, IP_LIST_MAX, "UID FETCH (RFC822.SIZE)") < 0)
            goto done;
        for (const char *line = x->out.data; line && *line;) {
            const char *eol = strchr(line, '\n');
            int64_t uid, size;
            char one[512];
            size_t ll = eol ? (size_t)(eol - line) : strlen(line);
            snprintf(one, sizeof one, "%.*s", (int)(ll < sizeof one ? ll : sizeof one - 1), line);
            if (strstr(one, "FETCH (") && ip_field(one, "UID", &uid) == 0 &&
                ip_field(one, "RFC822.SIZE", &size) == 0)
                for (size_t i = from; i < to; i++)
                    if (uids[i] == uid)
                        sizes[i] = size;
            line = eol ? eol + 1 : NULL;
        }
    }
    rc = 0;
done:
    buf_free(&set);
    free(url);
    free(cmd);
    return rc;
}

/* A custom command on the mailbox; 0 or -1 (logged). */
static int ip_mbox_cmd(struct mail_imap_poller *p, struct ip_xfer *x, const char *uv,
                       const char *cmd, const char *what)
{
    char *url = ip_mbox_url(p, uv);
    int rc = url && cmd ? ip_cmd(p, x, url, cmd, IP_SMALL_MAX, what) : -1;
    free(url);
    return rc;
}

static int ip_flag(struct mail_imap_poller *p, struct ip_xfer *x, const char *uv, int64_t uid,
                   const char *change, const char *what)
{
    char *cmd = util_asprintf("UID STORE %lld %s", (long long)uid, change);
    int rc = ip_mbox_cmd(p, x, uv, cmd, what);
    free(cmd);
    return rc;
}

/* Moves uid to move_to: UID MOVE; when refused, the folder is created and MOVE tried again;
 * then COPY + \Deleted + UID EXPUNGE (or EXPUNGE) for servers without MOVE. */
static int ip_move(struct mail_imap_poller *p, struct ip_xfer *x, const char *uv, int64_t uid)
{
    char *move = util_asprintf("UID MOVE %lld \"%s\"", (long long)uid, p->o.move_to);
    char *copy = util_asprintf("UID COPY %lld \"%s\"", (long long)uid, p->o.move_to);
    char *create = util_asprintf("CREATE \"%s\"", p->o.move_to);
    char *expunge = util_asprintf("UID EXPUNGE %lld", (long long)uid);
    char *root = util_asprintf("%s/", p->o.url);
    int rc = -1;
    if (!move || !copy || !create || !expunge || !root)
        goto done;
    if (ip_mbox_cmd(p, x, uv, move, "UID MOVE") == 0) {
        rc = 0;
        goto done;
    }
    if (ip_cmd(p, x, root, create, IP_SMALL_MAX, "CREATE") == 0 &&
        ip_mbox_cmd(p, x, uv, move, "UID MOVE") == 0) {
        rc = 0;
        goto done;
    }
    if (ip_mbox_cmd(p, x, uv, copy, "UID COPY") < 0 ||
        ip_flag(p, x, uv, uid, "+FLAGS.SILENT (\\Deleted)", "UID STORE \\Deleted") < 0)
        goto done;
    if (ip_mbox_cmd(p, x, uv, expunge, "UID EXPUNGE") < 0 &&
        ip_mbox_cmd(p, x, uv, "EXPUNGE", "EXPUNGE") < 0)
        goto done;
    rc = 0;
done:
    free(move);
    free(copy);
    free(create);
    free(expunge);
    free(root);
    return rc;
}

/* Remembers uv and last_uid in the kv (loop thread). */
static int ip_save(struct mail_imap_poller *p, const char *uv, int64_t last)
{
    json_t *v = json_pack("{s:s, s:I}", "uidvalidity", uv, "last_uid", (json_int_t)last);
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    enum store_status st = s ? ip_kv_put(p, s) : STORE_UNAVAILABLE;
    free(s);
    if (st != STORE_OK && !atomic_load(&p->stopping))
        log_warn("imap state not saved", "source", p->source, "mailbox", p->o.mailbox, "status",
                 store_status_str(st));
    return st == STORE_OK ? 0 : -1;
}

/* Where a new baseline starts: the UID after which messages are taken. */
static int ip_baseline(struct mail_imap_poller *p, struct ip_xfer *x, const char *uv,
                       int64_t uidnext, int64_t *last)
{
    *last = uidnext > 0 ? uidnext - 1 : 0;
    if (p->o.start == MAIL_IMAP_START_ALL) {
        *last = 0;
    } else if (p->o.start == MAIL_IMAP_START_UNSEEN) {
        int64_t *uids = NULL;
        size_t n = 0;
        if (ip_search(p, x, uv, "UNSEEN", 0, 1, &uids, &n, NULL) < 0)
            return -1;
        if (n > 0)
            *last = uids[0] - 1;
        free(uids);
    }
    char lasts[24];
    snprintf(lasts, sizeof lasts, "%lld", (long long)*last);
    log_info("imap mailbox baseline", "source", p->source, "mailbox", p->o.mailbox, "uidvalidity",
             uv, "after_uid", lasts);
    return 0;
}

enum ip_take { IP_NEXT, IP_STOP };

/* Takes one message: fetch, intake (committed), then \Seen or move. NEXT: go on and remember
 * the UID; STOP: end the poll without remembering it (try again later). */
static enum ip_take ip_take(struct mail_imap_poller *p, struct ip_xfer *x, const char *uv,
                            int64_t uid, int64_t size)
{
    char uids[24];
    snprintf(uids, sizeof uids, "%lld", (long long)uid);
    if (size > (int64_t)p->o.max_message_bytes) {
        log_warn("imap message too large, left in the mailbox", "source", p->source, "mailbox",
                 p->o.mailbox, "uid", uids);
        ip_stat(p, &p->st.skipped);
        return IP_NEXT;
    }
    char *url = util_asprintf("%s/%s;UIDVALIDITY=%s/;UID=%s", p->o.url, p->mbox_esc, uv, uids);
    json_t *headers = NULL;
    char *key = NULL;
    enum ip_take out = IP_STOP;
    if (!url)
        goto done;
    if (ip_cmd(p, x, url, NULL, p->o.max_message_bytes, "UID FETCH") < 0) {
        if (atomic_load(&p->stopping))
            goto done;
        if (x->too_big) {
            log_warn("imap message too large, left in the mailbox", "source", p->source, "mailbox",
                     p->o.mailbox, "uid", uids);
            ip_flag(p, x, uv, uid, "-FLAGS.SILENT (\\Seen)", "UID STORE -\\Seen");
            ip_stat(p, &p->st.skipped);
            out = IP_NEXT;
            goto done;
        }
        /* One unreadable message must not stop the mailbox for good. */
        if (p->fail_uid != uid) {
            p->fail_uid = uid;
            p->fail_count = 0;
        }
        if (++p->fail_count >= IP_FAIL_SKIP) {
            log_error("imap message cannot be fetched, left in the mailbox", "source", p->source,
                      "mailbox", p->o.mailbox, "uid", uids);
            ip_stat(p, &p->st.skipped);
            out = IP_NEXT;
        }
        goto done;
    }
    p->fail_uid = 0;
    if (x->out.len == 0) {
        log_warn("imap message vanished before it was fetched", "source", p->source, "mailbox",
                 p->o.mailbox, "uid", uids);
        ip_stat(p, &p->st.skipped);
        out = IP_NEXT;
        goto done;
    }
    key = mail_imap_message_key(x->out.data, x->out.len);
    headers = json_pack("{s:s, s:s, s:s}", "x-imap-mailbox", p->o.mailbox, "x-imap-uid", uids,
                        "x-imap-uidvalidity", uv);
    if (!key || !headers)
        goto done;
    struct store_request req = {.source = p->source,
                                .content_type = "message/rfc822",
                                .headers = headers,
                                .body = x->out.data,
                                .body_len = x->out.len,
                                .dedup_key = key};
    int64_t id = 0;
    enum store_status st = ip_intake(p, &req, &id);
    if (st == STORE_OK) {
        ip_stat(p, &p->st.stored);
        char ids[24];
        snprintf(ids, sizeof ids, "%lld", (long long)id);
        log_info("imap message stored", "source", p->source, "mailbox", p->o.mailbox, "uid", uids,
                 "request_id", ids);
    } else if (st == STORE_DUPLICATE) {
        ip_stat(p, &p->st.duplicates);
        log_info("imap message already stored", "source", p->source, "mailbox", p->o.mailbox, "uid",
                 uids);
    } else if (st == STORE_INVALID) {
        log_error("imap message refused by the store, left unseen", "source", p->source, "mailbox",
                  p->o.mailbox, "uid", uids);
        ip_flag(p, x, uv, uid, "-FLAGS.SILENT (\\Seen)", "UID STORE -\\Seen");
        ip_stat(p, &p->st.skipped);
        out = IP_NEXT;
        goto done;
    } else {
        if (!atomic_load(&p->stopping))
            log_warn("imap message not stored, will try again", "source", p->source, "mailbox",
                     p->o.mailbox, "uid", uids, "status", store_status_str(st));
        goto done;
    }
    /* Committed: now the mailbox may forget it. A failure here only leaves it in place. */
    if (p->o.after == MAIL_IMAP_AFTER_MOVE)
        ip_move(p, x, uv, uid);
    else
        ip_flag(p, x, uv, uid, "+FLAGS.SILENT (\\Seen)", "UID STORE +\\Seen");
    out = IP_NEXT;
done:
    free(url);
    free(key);
    json_decref(headers);
    return out;
}

/* One poll. 0 when it ran to the end, -1 when cut short (logged). *more: it ran to the end
 * and left messages for the next poll (more than max_per_poll were waiting). */
static int ip_poll(struct mail_imap_poller *p, struct ip_xfer *x, int *more)
{
    char *state_s = NULL;
    json_t *state = NULL;
    int64_t *uids = NULL, *sizes = NULL;
    size_t n = 0;
    int rc = -1;
    char uv[24];
    int64_t uidnext = 0, last = 0;
    int left = 0;

    *more = 0;
    enum store_status st = ip_kv_get(p, &state_s);
    if (st != STORE_OK && st != STORE_NOTFOUND) {
        if (!atomic_load(&p->stopping))
            log_warn("imap state not readable", "source", p->source, "status",
                     store_status_str(st));
        goto done;
    }
    if (state_s)
        state = json_loads(state_s, 0, NULL);
    if (ip_status(p, x, uv, &uidnext) < 0)
        goto done;
    const char *known_uv = json_string_value(json_object_get(state, "uidvalidity"));
    json_t *lv = json_object_get(state, "last_uid");
    if (!known_uv || strcmp(known_uv, uv) != 0 || !json_is_integer(lv)) {
        if (known_uv) {
            log_warn("imap UIDVALIDITY changed, starting over", "source", p->source, "mailbox",
                     p->o.mailbox, "was", known_uv, "now", uv);
            ip_stat(p, &p->st.uidvalidity_resets);
        }
        if (ip_baseline(p, x, uv, uidnext, &last) < 0 || ip_save(p, uv, last) < 0)
            goto done;
    } else {
        last = (int64_t)json_integer_value(lv);
    }
    char crit[48];
    snprintf(crit, sizeof crit, "UID %lld:*", (long long)last + 1);
    if (ip_search(p, x, uv, crit, last, p->o.max_per_poll, &uids, &n, &left) < 0)
        goto done;
    if (n > 0) {
        sizes = calloc(n, sizeof *sizes);
        if (!sizes || ip_sizes(p, x, uv, uids, n, sizes) < 0)
            goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (atomic_load(&p->stopping) || ip_take(p, x, uv, uids[i], sizes[i]) == IP_STOP ||
            ip_save(p, uv, uids[i]) < 0)
            goto done;
    }
    *more = left;
    rc = 0;
done:
    free(state_s);
    json_decref(state);
    free(uids);
    free(sizes);
    return rc;
}

static void *ip_worker(void *arg)
{
    struct mail_imap_poller *p = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct ip_xfer *x = calloc(1, sizeof *x);
    if (x) {
        x->p = p;
        buf_init(&x->out, IP_SMALL_MAX);
        p->mbox_esc = curl_easy_escape(NULL, p->o.mailbox, 0);
    }
    int ready = x && p->mbox_esc;
    if (!ready)
        log_error("imap poller cannot start: out of memory", "source", p->source);
    int64_t next = 0;
    pthread_mutex_lock(&p->mu);
    while (!atomic_load(&p->stopping)) {
        int64_t now = util_mono_ms();
        if (!p->kicked && (now < next || !ready)) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t wait = ready ? next - now : 60000;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            continue;
        }
        p->kicked = 0;
        p->st.started++;
        pthread_mutex_unlock(&p->mu);
        /* A connection per poll: a fresh SELECT makes the server look at the mailbox again
         * (a selected mailbox kept open between polls need not show new mail), and no idle
         * connection is held between polls. */
        int rc = -1, more = 0;
        x->h = curl_easy_init();
        if (!x->h || ip_curl_setup(p, x) < 0)
            log_error("imap poller cannot set up libcurl", "source", p->source);
        else
            rc = ip_poll(p, x, &more);
        if (x->h)
            curl_easy_cleanup(x->h);
        x->h = NULL;
        pthread_mutex_lock(&p->mu);
        if (rc == 0)
            p->st.polls++;
        else if (!atomic_load(&p->stopping))
            p->st.failures++;
        /* A backlog drains poll after poll, each still bounded by max_per_poll; a failed
         * poll waits the interval. */
        next = rc == 0 && more ? 0 : util_mono_ms() + p->o.interval_ms;
    }
    pthread_mutex_unlock(&p->mu);
    if (x) {
        buf_free(&x->out);
        free(x);
    }
    return NULL;
}

/* ---- The poller: life cycle (loop thread) ------------------------------------------------ */

struct mail_imap_poller *mail_imap_poller_new(struct event_base *base, struct store *store,
                                              const char *source, const json_t *imap,
                                              mail_imap_stored_fn on_stored, void *arg, char **err)
{
    *err = NULL;
    if (!base || !store || !source || !*source) {
        *err = util_strdup("imap poller: no event loop, store or source");
        return NULL;
    }
    struct mail_imap_poller *p = calloc(1, sizeof *p);
    if (!p) {
        *err = util_strdup("out of memory");
        return NULL;
    }
    p->pipe_r = p->pipe_w = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&p->stopping, 0);
    p->base = base;
    p->store = store;
    p->on_stored = on_stored;
    p->arg = arg;
    if (mail_imap_options_parse(imap, &p->o, err) < 0)
        goto fail;
    p->source = util_strdup(source);
    p->kv_name = util_asprintf("imap:%s:%s", source, p->o.mailbox);
    if (!p->source || !p->kv_name) {
        *err = util_strdup("out of memory");
        goto fail;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        *err = util_strdup("imap poller: libcurl initialisation failed");
        goto fail;
    }
    p->curl_inited = 1;
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        *err = util_asprintf("imap poller: pipe: %s", strerror(errno));
        goto fail;
    }
    p->pipe_r = fds[0];
    p->pipe_w = fds[1];
    p->call_ev = event_new(base, p->pipe_r, EV_READ | EV_PERSIST, ip_on_call, p);
    if (!p->call_ev || event_add(p->call_ev, NULL) < 0) {
        *err = util_strdup("imap poller: cannot set up its event");
        goto fail;
    }
    if (pthread_create(&p->thread, NULL, ip_worker, p) != 0) {
        *err = util_strdup("imap poller: cannot start the worker thread");
        goto fail;
    }
    p->thread_started = 1;
    return p;
fail:
    mail_imap_poller_free(p);
    return NULL;
}

uint64_t mail_imap_poller_kick(struct mail_imap_poller *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    p->kicked = 1;
    uint64_t begun = p->st.started;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return begun;
}

void mail_imap_poller_stats(struct mail_imap_poller *p, struct mail_imap_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->mu);
}

void mail_imap_poller_free(struct mail_imap_poller *p)
{
    if (!p)
        return;
    if (p->thread_started) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->stopping, 1);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    /* A call still queued was abandoned by the worker and never reached the store. */
    while (p->calls) {
        struct ip_call *c = p->calls;
        p->calls = c->next;
        free(c->out);
        free(c);
    }
    if (p->call_ev)
        event_free(p->call_ev);
    if (p->pipe_r >= 0)
        close(p->pipe_r);
    if (p->pipe_w >= 0)
        close(p->pipe_w);
    if (p->mbox_esc)
        curl_free(p->mbox_esc);
    if (p->curl_inited)
        curl_global_cleanup();
    mail_imap_options_free(&p->o);
    free(p->source);
    free(p->kv_name);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
