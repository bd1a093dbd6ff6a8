/* adapter: the kind table, bounded JSON parsing, and the helpers every adapter kind shares
 * (event skeleton, labels, times, status words, field mappings, splitting, item loops).
 * The kinds themselves live in one file each; see adapter.h for the event contract. */
#include "adapters/adapter.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "common/util.h"

/* ---- kind table ------------------------------------------------------------------------ */

struct kind {
    const char *name;
    adapter_fn run;
    int (*check)(json_t *options, char **err); /* NULL: any mapping is accepted */
};

static const struct kind kinds[] = {
    {"alertmanager", adapter_alertmanager_run, adapter_alertmanager_check},
    {"grafana", adapter_grafana_run, adapter_grafana_check},
    {"zabbix", adapter_zabbix_run, adapter_zabbix_check},
    {"json", adapter_json_run, adapter_json_check},
    {"form", adapter_form_run, adapter_form_check},
    {"bms", adapter_bms_run, adapter_bms_check},
    /* The email kind's options belong to the mail module, which checks them itself. */
    {"email", adapter_email_run, NULL},
};

static const struct kind *kind_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

int adapter_known(const char *kind)
{
    return kind_find(kind) != NULL;
}

char *adapter_errf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

size_t adapter_max_depth(const struct adapter_limits *lim)
{
    return lim && lim->max_depth ? lim->max_depth : ADAPTER_DEFAULT_MAX_DEPTH;
}

size_t adapter_max_events(const struct adapter_limits *lim)
{
    return lim && lim->max_events ? lim->max_events : ADAPTER_DEFAULT_MAX_EVENTS;
}

/* Reasons go into problem+json details and logs: keep them one line of printable ASCII even
 * when they quote a sender's bytes (jansson's "near '...'"). */
static void reason_sanitize(char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

enum adapter_result adapter_run(const char *kind, const struct adapter_input *in,
                                const struct adapter_limits *lim, json_t **events, char **err)
{
    *events = NULL;
    *err = NULL;
    const struct kind *k = kind_find(kind);
    if (!k) {
        *err = adapter_errf("unknown adapter kind '%s'", kind ? kind : "");
        return ADAPTER_REJECT;
    }
    if (!in || (!in->body && in->body_len > 0)) {
        *err = adapter_errf("no request body");
        return ADAPTER_REJECT;
    }
    if (in->options && !json_is_object(in->options)) {
        *err = adapter_errf("source options must be a mapping");
        return ADAPTER_REJECT;
    }
    enum adapter_result r = k->run(in, lim, events, err);
    if (r == ADAPTER_OK && !json_is_array(*events)) {
        json_decref(*events);
        *events = NULL;
        free(*err);
        *err = adapter_errf("%s adapter produced no event list", k->name);
        r = ADAPTER_REJECT;
    }
    if (r == ADAPTER_REJECT) {
        json_decref(*events);
        *events = NULL;
        if (!*err)
            *err = adapter_errf("%s adapter rejected the request", k->name);
        reason_sanitize(*err);
    }
    return r;
}

int adapter_check_options(const char *kind, json_t *options, char **err)
{
    *err = NULL;
    const struct kind *k = kind_find(kind);
    if (!k) {
        *err = adapter_errf("unknown adapter kind '%s' (known: alertmanager, grafana, zabbix, "
                            "json, form, bms, email)",
                            kind ? kind : "");
        return -1;
    }
    if (options && !json_is_object(options)) {
        *err = adapter_errf("options must be a mapping");
        return -1;
    }
    return k->check ? k->check(options, err) : 0;
}

int adapter_check_known_options(const char *kind, json_t *options, const char *const *allowed,
                                char **err)
{
    if (!options)
        return 0;
    if (!json_is_object(options)) {
        *err = adapter_errf("options must be a mapping");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(options, key, v) {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = 1;
        if (!ok) {
            buf_t b;
            buf_init(&b, 512);
            for (size_t i = 0; allowed[i]; i++)
                buf_printf(&b, "%s%s", i ? ", " : "", allowed[i]);
            *err = adapter_errf("unknown option '%s' for the %s adapter (known: %s)", key, kind,
                                b.len ? b.data : "none");
            buf_free(&b);
            return -1;
        }
    }
    return 0;
}

/* ---- bounded JSON ---------------------------------------------------------------------- */

/* Deepest nesting of [ and { outside strings, stopping as soon as max is passed. */
static int depth_exceeds(const char *s, size_t n, size_t max)
{
    size_t depth = 0;
    int in_str = 0, esc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                return 1;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

json_t *adapter_parse_json(const char *body, size_t len, size_t max_depth, char **err)
{
    *err = NULL;
    if (max_depth == 0)
        max_depth = ADAPTER_DEFAULT_MAX_DEPTH;
    if (!body)
        len = 0;
    /* Some senders (.NET, PowerShell) start the body with a UTF-8 byte order mark. */
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0) {
        body += 3;
        len -= 3;
    }
    if (len == 0) {
        *err = adapter_errf("empty body where JSON was expected");
        return NULL;
    }
    if (depth_exceeds(body, len, max_depth)) {
        *err = adapter_errf("nesting deeper than %zu", max_depth);
        return NULL;
    }
    json_error_t e;
    json_t *root = json_loadb(body, len, 0, &e);
    if (!root) {
        *err = adapter_errf("line %d, column %d: %s", e.line, e.column, e.text);
        reason_sanitize(*err);
        return NULL;
    }
    return root;
}

/* Media type without parameters, lowercased, into out. */
static void media_type(const char *ct, char *out, size_t outlen)
{
    size_t n = 0;
    if (ct) {
        while (*ct == ' ' || *ct == '\t')
            ct++;
        while (*ct && *ct != ';' && *ct != ' ' && *ct != '\t' && n + 1 < outlen)
            out[n++] = (char)tolower((unsigned char)*ct++);
    }
    out[n] = '\0';
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int looks_like_json(const char *body, size_t len)
{
    size_t i = 0;
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    return i < len && (body[i] == '{' || body[i] == '[');
}

enum adapter_result adapter_no_events(json_t **events, char **err)
{
    *events = json_array();
    if (*events)
        return ADAPTER_OK;
    *err = adapter_errf("out of memory");
    return ADAPTER_REJECT;
}

/* ---- a quick look at JSON -------------------------------------------------------------- */

/* The intake's check of an alert payload does not need a tree: a strict scanner that accepts
 * only what json_loadb certainly accepts (anything unusual — \u0000, surrogates, long
 * numbers, escaped keys — makes it unsure, and the caller parses with jansson, which judges
 * and words the error) and notes what the check reads of the top level. */
struct qj {
    const char *s;
    size_t n, i;
    size_t max_depth;
};

enum { QJ_OK = 0, QJ_UNSURE = -1 };

static void qj_ws(struct qj *q)
{
    while (q->i < q->n && (q->s[q->i] == ' ' || q->s[q->i] == '\t' || q->s[q->i] == '\n' ||
                           q->s[q->i] == '\r'))
        q->i++;
}

static int qj_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence at q->i (RFC 3629: no overlongs, surrogates or values past U+10FFFF). */
static int qj_utf8(struct qj *q)
{
    const unsigned char *u = (const unsigned char *)q->s + q->i;
    size_t left = q->n - q->i, len;
    unsigned lo = 0x80, hi = 0xBF;
    if (u[0] >= 0xC2 && u[0] <= 0xDF)
        len = 2;
    else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
        len = 3;
        if (u[0] == 0xE0)
            lo = 0xA0;
        else if (u[0] == 0xED)
            hi = 0x9F;
    } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
        len = 4;
        if (u[0] == 0xF0)
            lo = 0x90;
        else if (u[0] == 0xF4)
            hi = 0x8F;
    } else
        return QJ_UNSURE;
    if (left < len || u[1] < lo || u[1] > hi)
        return QJ_UNSURE;
    for (size_t k = 2; k < len; k++)
        if (u[k] < 0x80 || u[k] > 0xBF)
            return QJ_UNSURE;
    q->i += len;
    return QJ_OK;
}

/* A string at q->i ('"'); *escaped when it holds a backslash. */
static int qj_string(struct qj *q, int *escaped)
{
    *escaped = 0;
    q->i++;
    while (q->i < q->n) {
        unsigned char c = (unsigned char)q->s[q->i];
        if (c == '"') {
            q->i++;
            return QJ_OK;
        }
        if (c < 0x20)
            return QJ_UNSURE;
        if (c >= 0x80) {
            if (qj_utf8(q) != QJ_OK)
                return QJ_UNSURE;
            continue;
        }
        if (c == '\\') {
            *escaped = 1;
            if (q->i + 1 >= q->n)
                return QJ_UNSURE;
            char e = q->s[q->i + 1];
            if (e == 'u') {
                if (q->i + 6 > q->n || !qj_hex(q->s[q->i + 2]) || !qj_hex(q->s[q->i + 3]) ||
                    !qj_hex(q->s[q->i + 4]) || !qj_hex(q->s[q->i + 5]))
                    return QJ_UNSURE;
                unsigned v = (unsigned)strtoul((char[]){q->s[q->i + 2], q->s[q->i + 3],
                                                        q->s[q->i + 4], q->s[q->i + 5], 0},
                                               NULL, 16);
                if (v == 0 || (v >= 0xD800 && v <= 0xDFFF))
                    return QJ_UNSURE;
                q->i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0')
                return QJ_UNSURE;
            q->i += 2;
            continue;
        }
        q->i++;
    }
    return QJ_UNSURE;
}

static int qj_digits(struct qj *q, size_t *count)
{
    size_t start = q->i;
    while (q->i < q->n && q->s[q->i] >= '0' && q->s[q->i] <= '9')
        q->i++;
    *count = q->i - start;
    return *count ? QJ_OK : QJ_UNSURE;
}

/* A number small enough that neither strtoll nor strtod can overflow on it. */
static int qj_number(struct qj *q)
{
    size_t d = 0, f = 0, e = 0;
    if (q->s[q->i] == '-')
        q->i++;
    if (q->i < q->n && q->s[q->i] == '0') {
        q->i++;
        d = 1;
    } else if (qj_digits(q, &d) != QJ_OK) {
        return QJ_UNSURE;
    }
    if (q->i < q->n && q->s[q->i] == '.') {
        q->i++;
        if (qj_digits(q, &f) != QJ_OK)
            return QJ_UNSURE;
    }
    if (q->i < q->n && (q->s[q->i] == 'e' || q->s[q->i] == 'E')) {
        q->i++;
        if (q->i < q->n && (q->s[q->i] == '+' || q->s[q->i] == '-'))
            q->i++;
        if (qj_digits(q, &e) != QJ_OK || e > 2)
            return QJ_UNSURE;
    }
    return d <= 18 && d + f <= 40 ? QJ_OK : QJ_UNSURE;
}

static int qj_literal(struct qj *q, const char *word)
{
    size_t l = strlen(word);
    if (q->n - q->i < l || memcmp(q->s + q->i, word, l) != 0)
        return QJ_UNSURE;
    q->i += l;
    return QJ_OK;
}

/* What a value was: '{', '[', '"', or 'x' for a number or literal. For an array, *items and
 * whether every item is an object. */
static int qj_value(struct qj *q, size_t depth, char *kind, size_t *items, int *all_objects)
{
    qj_ws(q);
    if (q->i >= q->n)
        return QJ_UNSURE;
    char c = q->s[q->i];
    *kind = c == '{' || c == '[' || c == '"' ? c : 'x';
    if (c == '"') {
        int esc;
        return qj_string(q, &esc);
    }
    if (c == 't' || c == 'f' || c == 'n')
        return qj_literal(q, c == 't' ? "true" : c == 'f' ? "false" : "null");
    if (c == '-' || (c >= '0' && c <= '9'))
        return qj_number(q);
    if (c != '{' && c != '[')
        return QJ_UNSURE;
    if (depth >= q->max_depth)
        return QJ_UNSURE;
    char close = c == '{' ? '}' : ']';
    size_t count = 0;
    int objects = 1;
    q->i++;
    qj_ws(q);
    if (q->i < q->n && q->s[q->i] == close) {
        q->i++;
    } else {
        for (;;) {
            if (c == '{') {
                int esc;
                qj_ws(q);
                if (q->i >= q->n || q->s[q->i] != '"' || qj_string(q, &esc) != QJ_OK)
                    return QJ_UNSURE;
                qj_ws(q);
                if (q->i >= q->n || q->s[q->i] != ':')
                    return QJ_UNSURE;
                q->i++;
            }
            char k;
            size_t ni;
            int no;
            if (qj_value(q, depth + 1, &k, &ni, &no) != QJ_OK)
                return QJ_UNSURE;
            count++;
            objects = objects && k == '{';
            qj_ws(q);
            if (q->i < q->n && q->s[q->i] == ',') {
                q->i++;
                continue;
            }
            if (q->i < q->n && q->s[q->i] == close) {
                q->i++;
                break;
            }
            return QJ_UNSURE;
        }
    }
    if (items)
        *items = count;
    if (all_objects)
        *all_objects = objects;
    return QJ_OK;
}

int adapter_quick_alerts(const struct adapter_input *in, const struct adapter_limits *lim,
                         int want_version)
{
    char mt[128];
    media_type(in->content_type, mt, sizeof mt);
    if (*mt && strcmp(mt, "application/json") != 0)
        return 0; /* the full check judges other types */
    struct qj q = {in->body, in->body_len, 0, adapter_max_depth(lim)};
    if (!q.s)
        return 0;
    if (q.max_depth > 1024) /* well inside jansson's own limit, and the stack's */
        q.max_depth = 1024;
    if (q.n >= 3 && memcmp(q.s, "\xEF\xBB\xBF", 3) == 0)
        q.i = 3;
    qj_ws(&q);
    if (q.i >= q.n || q.s[q.i] != '{')
        return 0;
    q.i++;
    int have_alerts = 0, alerts_ok = 0;
    qj_ws(&q);
    if (q.i < q.n && q.s[q.i] == '}')
        return 0;
    for (;;) {
        int esc;
        qj_ws(&q);
        if (q.i >= q.n || q.s[q.i] != '"')
            return 0;
        const char *key = q.s + q.i + 1;
        if (qj_string(&q, &esc) != QJ_OK || esc)
            return 0;
        size_t klen = (size_t)(q.s + q.i - 1 - key);
        qj_ws(&q);
        if (q.i >= q.n || q.s[q.i] != ':')
            return 0;
        q.i++;
        qj_ws(&q);
        const char *vstart = q.s + q.i;
        char kind;
        size_t items = 0;
        int objects = 0;
        if (qj_value(&q, 1, &kind, &items, &objects) != QJ_OK)
            return 0;
        size_t vlen = (size_t)(q.s + q.i - vstart);
        int is_alerts = klen == 6 && memcmp(key, "alerts", 6) == 0;
        int is_version = klen == 7 && memcmp(key, "version", 7) == 0;
        if (is_alerts) {
            have_alerts = 1;
            alerts_ok = kind == '[' && objects && items <= adapter_max_events(lim);
        } else if (is_version) {
            if (want_version && !(vlen == 3 && memcmp(vstart, "\"4\"", 3) == 0))
                return 0;
        } else if ((klen == 6 && strncasecmp(key, "alerts", 6) == 0) ||
                   (klen == 7 && strncasecmp(key, "version", 7) == 0)) {
            return 0; /* looked up case-insensitively: leave it to the full check */
        }
        qj_ws(&q);
        if (q.i < q.n && q.s[q.i] == ',') {
            q.i++;
            continue;
        }
        if (q.i < q.n && q.s[q.i] == '}') {
            q.i++;
            break;
        }
        return 0;
    }
    qj_ws(&q);
    return q.i == q.n && have_alerts && alerts_ok;
}

enum adapter_result adapter_body_json(const struct adapter_input *in,
                                      const struct adapter_limits *lim, json_t **root,
                                      char **err)
{
    char mt[128];
    media_type(in->content_type, mt, sizeof mt);
    *root = NULL;
    if (strncmp(mt, "multipart/", 10) == 0 || strncmp(mt, "image/", 6) == 0 ||
        strncmp(mt, "audio/", 6) == 0 || strncmp(mt, "video/", 6) == 0 ||
        ends_with(mt, "/xml") || ends_with(mt, "+xml") || strcmp(mt, "text/html") == 0) {
        *err = adapter_errf("content type %s is not JSON", mt);
        return ADAPTER_REJECT;
    }
    /* curl -d labels JSON as a form; accept it when the body is plainly JSON. */
    if (strcmp(mt, "application/x-www-form-urlencoded") == 0 &&
        !looks_like_json(in->body, in->body_len)) {
        *err = adapter_errf("content type %s is not JSON (use the form adapter for forms)", mt);
        return ADAPTER_REJECT;
    }
    *root = adapter_parse_json(in->body, in->body_len, adapter_max_depth(lim), err);
    return *root ? ADAPTER_OK : ADAPTER_REJECT;
}

/* ---- events ---------------------------------------------------------------------------- */

void adapter_set(json_t *ev, const char *field, const char *s)
{
    json_t *v = json_string(s ? s : "");
    if (!v)
        v = json_string("");
    json_object_set_new(ev, field, v);
}

void adapter_set_lower(json_t *ev, const char *field, const char *s)
{
    char *l = util_strdup(s ? s : "");
    if (!l)
        return;
    for (char *p = l; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    adapter_set(ev, field, l);
    free(l);
}

json_t *adapter_event_new(const struct adapter_input *in, const char *kind, json_t *item)
{
    json_t *ev = json_object();
    if (!ev)
        return NULL;
    char now[32];
    const char *t = in->received_at;
    if (!t || !*t) {
        util_iso8601(util_now_ms(), now);
        t = now;
    }
    adapter_set(ev, "source", in->source);
    adapter_set(ev, "kind", kind);
    adapter_set(ev, "status", "firing");
    adapter_set(ev, "key", "");
    adapter_set(ev, "severity", "");
    adapter_set(ev, "title", "");
    adapter_set(ev, "text", "");
    json_object_set_new(ev, "labels", json_object());
    adapter_set(ev, "time", t);
    adapter_set(ev, "url", "");
    adapter_set(ev, "site", "");
    json_object_set(ev, "raw", item ? item : json_null());
    return ev;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s) && *s != '.')
            return 0;
    return 1;
}

/* Epoch seconds below 1e11 (year 5138), milliseconds above. */
static int epoch_to_ms(double v, int64_t *ms)
{
    if (!(v >= 0) || v > 253402300799999.0)
        return -1;
    *ms = v < 1e11 ? (int64_t)(v * 1000.0) : (int64_t)v;
    return 0;
}

int adapter_time_norm(json_t *when, char out[32])
{
    int64_t ms = 0;
    if (json_is_integer(when) || json_is_real(when)) {
        if (epoch_to_ms(json_number_value(when), &ms) < 0)
            return -1;
    } else if (json_is_string(when)) {
        const char *s = json_string_value(when);
        double d;
        if (all_digits(s)) {
            if (util_parse_double(s, &d) < 0 || epoch_to_ms(d, &ms) < 0)
                return -1;
        } else if (util_parse_iso8601(s, &ms) < 0 && util_parse_http_date(s, &ms) < 0) {
            return -1;
        }
        /* Go's zero time ("0001-01-01T00:00:00Z", Alertmanager's endsAt while firing) and
         * anything before 1970 mean "not set". */
        if (ms < 0)
            return -1;
    } else {
        return -1;
    }
    util_iso8601(ms, out);
    return 0;
}

int adapter_set_time(json_t *ev, json_t *when)
{
    char t[32];
    if (adapter_time_norm(when, t) < 0)
        return -1;
    adapter_set(ev, "time", t);
    return 0;
}

const char *adapter_get_str(json_t *obj, const char *key)
{
    return json_string_value(jpath_object_get(obj, key));
}

char *adapter_get_text(json_t *obj, const char *key)
{
    return jpath_scalar_string(jpath_object_get(obj, key));
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static void label_put(json_t *labels, const char *k, json_t *v)
{
    if (!k || !*k || !v || json_is_null(v))
        return;
    char *s = jpath_scalar_string(v);
    if (s)
        adapter_set(labels, k, s);
    free(s);
}

/* "k:v, k2:v2" (Zabbix {EVENT.TAGS}); a tag without ':' has an empty value. */
static void labels_from_string(json_t *labels, const char *text)
{
    char *copy = util_strdup(text);
    if (!copy)
        return;
    char *p = copy;
    while (p) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        char *colon = strchr(p, ':');
        const char *v = "";
        if (colon) {
            *colon = '\0';
            v = trim(colon + 1);
        }
        char *k = trim(p);
        if (*k)
            adapter_set(labels, k, v);
        p = comma ? comma + 1 : NULL;
    }
    free(copy);
}

json_t *adapter_labels_from(json_t *v)
{
    json_t *labels = json_object();
    if (!labels)
        return NULL;
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
            label_put(labels, k, e);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (json_is_object(e)) {
                const char *k = adapter_get_str(e, "tag");
                if (!k)
                    k = adapter_get_str(e, "name");
                if (!k)
                    k = adapter_get_str(e, "key");
                json_t *val = jpath_object_get(e, "value");
                if (k && *k && (!val || json_is_null(val)))
                    adapter_set(labels, k, "");
                else
                    label_put(labels, k, val);
            } else if (json_is_string(e)) {
                labels_from_string(labels, json_string_value(e));
            }
        }
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s == ' ')
            s++;
        if (*s == '[' || *s == '{') {
            /* {EVENT.TAGSJSON} arrives as a string: media type parameters are strings. */
            char *perr = NULL;
            json_t *inner = adapter_parse_json(s, strlen(s), 8, &perr);
            free(perr);
            if (inner) {
                json_decref(labels);
                labels = adapter_labels_from(inner);
                json_decref(inner);
                return labels;
            }
        }
        labels_from_string(labels, s);
    }
    return labels;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *hex_prefix(const unsigned char md[32])
{
    char hex[65];
    crypto_hex(md, 32, hex);
    hex[32] = '\0';
    return util_strdup(hex);
}

char *adapter_labels_hash(json_t *labels)
{
    size_t n = json_is_object(labels) ? json_object_size(labels) : 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    char *out = NULL;
    buf_t b;
    buf_init(&b, 0);
    if (!keys)
        goto done;
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) {
        keys[i++] = k;
    }
    qsort(keys, n, sizeof *keys, cmp_str);
    for (i = 0; i < n; i++) {
        const char *val = json_string_value(json_object_get(labels, keys[i]));
        if (buf_append(&b, keys[i], strlen(keys[i]) + 1) < 0 ||
            buf_append(&b, val ? val : "", strlen(val ? val : "") + 1) < 0)
            goto done;
    }
    unsigned char md[32];
    crypto_sha256(b.data ? b.data : "", b.len, md);
    out = hex_prefix(md);
done:
    buf_free(&b);
    free(keys);
    return out;
}

char *adapter_hash_strings(const char *const *parts)
{
    buf_t b;
    buf_init(&b, 0);
    char *out = NULL;
    for (size_t i = 0; parts[i]; i++)
        if (buf_append(&b, parts[i], strlen(parts[i]) + 1) < 0)
            goto done;
    unsigned char md[32];
    crypto_sha256(b.data ? b.data : "", b.len, md);
    out = hex_prefix(md);
done:
    buf_free(&b);
    return out;
}

json_t *adapter_object_copy(json_t *v)
{
    return json_is_object(v) ? json_deep_copy(v) : json_object();
}

/* ---- status words ---------------------------------------------------------------------- */

static const char *const firing_words[] = {"firing", "alert",  "alarm",     "problem",
                                           "open",   "active", "triggered", "critical", NULL};
static const char *const resolved_words[] = {"resolved", "ok",     "normal",   "clear",
                                             "cleared",  "closed", "inactive", "recovered",
                                             NULL};

int adapter_status_word(const char *value, json_t *status_map)
{
    if (!value)
        return -1;
    if (json_is_object(status_map)) {
        const char *k;
        json_t *v;
        json_object_foreach(status_map, k, v) {
            if (strcasecmp(k, value) == 0) {
                const char *to = json_string_value(v);
                if (to && strcmp(to, "firing") == 0)
                    return 1;
                if (to && strcmp(to, "resolved") == 0)
                    return 0;
            }
        }
    }
    for (size_t i = 0; firing_words[i]; i++)
        if (strcasecmp(value, firing_words[i]) == 0)
            return 1;
    for (size_t i = 0; resolved_words[i]; i++)
        if (strcasecmp(value, resolved_words[i]) == 0)
            return 0;
    return -1;
}

int adapter_check_status_map(json_t *status_map, char **err)
{
    if (!status_map)
        return 0;
    if (!json_is_object(status_map)) {
        *err = adapter_errf("status_map must be a mapping of sender value to firing|resolved");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(status_map, k, v) {
        const char *to = json_string_value(v);
        if (!to || (strcmp(to, "firing") != 0 && strcmp(to, "resolved") != 0)) {
            *err = adapter_errf("status_map.%s must be firing or resolved", k);
            return -1;
        }
    }
    return 0;
}

/* ---- field mappings -------------------------------------------------------------------- */

#define MAP_MAX_PATHS 16

struct map_field {
    const char *name;
    jpath_t *paths[MAP_MAX_PATHS];
    size_t n;
    int overridden;
    char *dflt;
};

struct adapter_map {
    struct map_field *f;
    size_t n;
    int skip_macros;
};

void adapter_map_free(struct adapter_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        for (size_t j = 0; j < m->f[i].n; j++)
            jpath_free(m->f[i].paths[j]);
        free(m->f[i].dflt);
    }
    free(m->f);
    free(m);
}

static struct map_field *map_find(const struct adapter_map *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->f[i].name, name) == 0)
            return &m->f[i];
    return NULL;
}

static char *field_names(const struct adapter_field_def *defs, size_t n)
{
    buf_t b;
    buf_init(&b, 1024);
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", defs[i].name);
    return buf_steal(&b);
}

static int map_add_path(struct map_field *f, const char *path, const char *what, char **err)
{
    char perr[128];
    size_t col = 0;
    if (f->n >= MAP_MAX_PATHS) {
        *err = adapter_errf("%s: at most %d paths", what, MAP_MAX_PATHS);
        return -1;
    }
    jpath_t *p = jpath_compile(path, perr, sizeof perr, &col);
    if (!p) {
        *err = adapter_errf("%s: %s at column %zu", what, perr, col + 1);
        return -1;
    }
    f->paths[f->n++] = p;
    return 0;
}

static void map_clear_paths(struct map_field *f)
{
    for (size_t j = 0; j < f->n; j++)
        jpath_free(f->paths[j]);
    f->n = 0;
}

/* fields.<k>: the paths of f, one or a list, replacing its built-in ones. */
static int map_set_paths(struct map_field *f, const char *k, json_t *v, char **err)
{
    char what[160];
    snprintf(what, sizeof what, "fields.%s", k);
    map_clear_paths(f);
    f->overridden = 1;
    if (json_is_string(v)) {
        if (map_add_path(f, json_string_value(v), what, err) < 0)
            return -1;
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!json_is_string(e)) {
                *err = adapter_errf("%s: paths must be strings", what);
                return -1;
            }
            if (map_add_path(f, json_string_value(e), what, err) < 0)
                return -1;
        }
    } else {
        *err = adapter_errf("%s must be a path or a list of paths", what);
        return -1;
    }
    return 0;
}

/* defaults.<k>: the constant text of f. */
static int map_set_default(struct map_field *f, const char *k, json_t *v, char **err)
{
    if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v)) {
        *err = adapter_errf("defaults.%s must be a string", k);
        return -1;
    }
    free(f->dflt);
    f->dflt = jpath_scalar_string(v);
    if (!f->dflt) {
        *err = adapter_errf("out of memory");
        return -1;
    }
    return 0;
}

/* Applies the option opt ("fields" or "defaults"; absent: nothing), a mapping of field name
 * to what, through set for each entry; the names must be fields of defs. 0 or -1 with *err. */
static int map_apply_option(struct adapter_map *m, const struct adapter_field_def *defs,
                            size_t n, json_t *options, const char *opt, const char *what,
                            int (*set)(struct map_field *f, const char *k, json_t *v, char **err),
                            char **err)
{
    json_t *map = json_object_get(options, opt);
    if (!map)
        return 0;
    if (!json_is_object(map)) {
        *err = adapter_errf("%s must be a mapping of field name to %s", opt, what);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(map, k, v) {
        struct map_field *f = map_find(m, k);
        if (!f) {
            char *names = field_names(defs, n);
            *err = adapter_errf("%s.%s: unknown field (known: %s)", opt, k, names ? names : "");
            free(names);
            return -1;
        }
        if (set(f, k, v, err) < 0)
            return -1;
    }
    return 0;
}

struct adapter_map *adapter_map_new(const struct adapter_field_def *defs, size_t n,
                                    json_t *options, char **err)
{
    struct adapter_map *m = calloc(1, sizeof *m);
    if (!m || !(m->f = calloc(n ? n : 1, sizeof *m->f))) {
        *err = adapter_errf("out of memory");
        goto fail;
    }
    m->n = n;
    for (size_t i = 0; i < n; i++) {
        m->f[i].name = defs[i].name;
        for (size_t j = 0; j < MAP_MAX_PATHS && defs[i].paths[j]; j++) {
            char what[160];
            snprintf(what, sizeof what, "built-in path for %s", defs[i].name);
            if (map_add_path(&m->f[i], defs[i].paths[j], what, err) < 0)
                goto fail;
        }
    }
    if (map_apply_option(m, defs, n, options, "fields", "path", map_set_paths, err) < 0 ||
        map_apply_option(m, defs, n, options, "defaults", "value", map_set_default, err) < 0)
        goto fail;
    return m;
fail:
    adapter_map_free(m);
    return NULL;
}

void adapter_map_skip_macros(struct adapter_map *m, int on)
{
    m->skip_macros = on;
}

int adapter_is_macro(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "*UNKNOWN*") == 0)
        return 1;
    size_t n = strlen(s);
    if (n < 3 || s[0] != '{' || s[n - 1] != '}')
        return 0;
    const char *p = s + 1, *end = s + n - 1;
    if (*p == '$')
        p++;
    if (p == end)
        return 0;
    /* {EVENT.TAGS.<name>} keeps the tag name's own case. */
    if ((size_t)(end - p) > 11 && strncmp(p, "EVENT.TAGS.", 11) == 0) {
        for (const char *q = p; q < end; q++)
            if (*q == '{' || *q == '}')
                return 0;
        return 1;
    }
    for (; p < end; p++)
        if (!(isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' ||
              *p == '.'))
            return 0;
    return 1;
}

json_t *adapter_map_value(const struct adapter_map *m, const char *field, json_t *item)
{
    struct map_field *f = map_find(m, field);
    if (!f)
        return NULL;
    for (size_t i = 0; i < f->n; i++) {
        json_t *v = jpath_first(f->paths[i], item);
        if (!v || json_is_null(v))
            continue;
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            if (!*s || (m->skip_macros && adapter_is_macro(s)))
                continue;
        }
        return v;
    }
    return NULL;
}

char *adapter_map_text(const struct adapter_map *m, const char *field, json_t *item)
{
    json_t *v = adapter_map_value(m, field, item);
    if (v)
        return jpath_scalar_string(v);
    struct map_field *f = map_find(m, field);
    return f && f->dflt ? util_strdup(f->dflt) : NULL;
}

int adapter_map_overridden(const struct adapter_map *m, const char *field)
{
    struct map_field *f = map_find(m, field);
    return f ? f->overridden : 0;
}

/* ---- splitting ------------------------------------------------------------------------- */

int adapter_split_option(json_t *options, jpath_t **out, char **err)
{
    *out = NULL;
    json_t *v = json_object_get(options, "split");
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        *err = adapter_errf("split must be a path such as alerts[*]");
        return -1;
    }
    char perr[128];
    size_t col = 0;
    jpath_t *p = jpath_compile(json_string_value(v), perr, sizeof perr, &col);
    if (!p) {
        *err = adapter_errf("split: %s at column %zu", perr, col + 1);
        return -1;
    }
    if (!jpath_has_wildcard(p)) {
        *err = adapter_errf("split must select several items with [*], e.g. alerts[*]");
        jpath_free(p);
        return -1;
    }
    *out = p;
    return 0;
}

struct split_ctx {
    json_t *items;
    size_t max;
    int over;
};

static int split_collect(json_t *v, void *ud)
{
    struct split_ctx *c = ud;
    if (json_array_size(c->items) >= c->max) {
        c->over = 1;
        return 1;
    }
    json_array_append(c->items, v);
    return 0;
}

int adapter_split(json_t *root, const jpath_t *split, size_t max, json_t **items, char **err)
{
    struct split_ctx c = {json_array(), max, 0};
    *items = NULL;
    if (!c.items) {
        *err = adapter_errf("out of memory");
        return -1;
    }
    if (!split)
        json_array_append(c.items, root);
    else
        jpath_each(split, root, split_collect, &c);
    if (c.over) {
        *err = adapter_errf("too many events: more than %zu items", max);
        json_decref(c.items);
        return -1;
    }
    *items = c.items;
    return 0;
}

/* ---- item loops ------------------------------------------------------------------------ */

enum adapter_result adapter_map_items(const struct adapter_input *in,
                                      const struct adapter_map *m, json_t *items,
                                      adapter_item_fn make, json_t **events, char **err)
{
    json_t *out = json_array();
    if (!out) {
        *err = adapter_errf("out of memory");
        return ADAPTER_REJECT;
    }
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        json_t *ev = make(in, m, item, i, err);
        if (!ev) {
            json_decref(out);
            return ADAPTER_REJECT;
        }
        json_array_append_new(out, ev);
    }
    *events = out;
    return ADAPTER_OK;
}

enum adapter_result adapter_am_events(const struct adapter_input *in, const char *kind,
                                      json_t *root, json_t *alerts, size_t max,
                                      json_t *(*group_of)(json_t *root),
                                      void (*extras)(json_t *ev, json_t *alert, json_t *root),
                                      json_t **events, char **err)
{
    enum adapter_result r = ADAPTER_REJECT;
    json_t *out = NULL, *group = NULL;
    if (json_array_size(alerts) > max) {
        *err = adapter_errf("too many events: %zu alerts (limit %zu)", json_array_size(alerts),
                            max);
        goto done;
    }
    size_t i;
    if (in->check_only) { /* what the loop below can refuse, without building anything */
        for (i = 0; i < json_array_size(alerts); i++) {
            if (!json_is_object(json_array_get(alerts, i))) {
                *err = adapter_errf("alerts[%zu] is not an object", i);
                goto done;
            }
        }
        r = adapter_no_events(events, err);
        goto done;
    }
    out = json_array();
    group = group_of(root);
    if (!out || !group) {
        *err = adapter_errf("out of memory");
        goto done;
    }
    const char *gstatus = adapter_get_str(root, "status");
    const char *site_lbl = json_string_value(json_object_get(in->options, "site_label"));
    if (site_lbl && !*site_lbl)
        site_lbl = NULL;
    json_t *alert;
    json_array_foreach(alerts, i, alert) {
        if (!json_is_object(alert)) {
            *err = adapter_errf("alerts[%zu] is not an object", i);
            goto done;
        }
        json_t *ev = adapter_am_event(in, kind, alert, gstatus, site_lbl);
        if (!ev) {
            *err = adapter_errf("out of memory");
            goto done;
        }
        if (extras)
            extras(ev, alert, root);
        json_object_set_new(ev, "group", json_deep_copy(group));
        json_array_append_new(out, ev);
    }
    *events = out;
    out = NULL;
    r = ADAPTER_OK;
done:
    json_decref(group);
    json_decref(out);
    return r;
}
