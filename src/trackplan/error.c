/* error: problem bodies and transport failures as struct tp_error; see error.h. */
#include "trackplan/error.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define TP_ERROR_FIELDS_MAX 100
#define TP_ERROR_MESSAGES_MAX 20

void tp_error_init(struct tp_error *e) { memset(e, 0, sizeof *e); }

void tp_error_clear(struct tp_error *e)
{
    free(e->type);
    free(e->title);
    free(e->detail);
    free(e->message);
    json_decref(e->errors);
    tp_error_init(e);
}

int tp_error_copy(struct tp_error *dst, const struct tp_error *src)
{
    tp_error_clear(dst);
    dst->kind = src->kind;
    dst->status = src->status;
    dst->curl_code = src->curl_code;
    dst->type = util_strdup(src->type);
    dst->title = util_strdup(src->title);
    dst->detail = util_strdup(src->detail);
    dst->message = util_strdup(src->message);
    dst->errors = src->errors ? json_deep_copy(src->errors) : NULL;
    if ((src->type && !dst->type) || (src->title && !dst->title) ||
        (src->detail && !dst->detail) || (src->message && !dst->message) ||
        (src->errors && !dst->errors))
        return -1;
    return 0;
}

/* A copy of s (at most max bytes) with control characters replaced by spaces. */
static char *tp_error_clean(const char *s, size_t n, size_t max)
{
    if (n > max)
        n = max;
    char *out = util_strndup(s, n);
    if (!out)
        return NULL;
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = ' ';
    return out;
}

/* A copied string member of a problem body (bounded), or NULL. */
static char *tp_error_member(json_t *body, const char *name)
{
    const char *v = json_string_value(json_object_get(body, name)); /* borrowed */
    return v ? tp_error_clean(v, strlen(v), 1024) : NULL;
}

/* Appends a cleaned copy of the string m to list; ignores anything else. */
static void tp_error_add_message(json_t *list, json_t *m)
{
    const char *v = json_string_value(m); /* borrowed */
    if (!v)
        return;
    char *clean = tp_error_clean(v, strlen(v), 1024);
    if (clean)
        json_array_append_new(list, json_string(clean));
    free(clean);
}

/* Normalises the "errors" member into field -> [messages], at most TP_ERROR_FIELDS_MAX
 * fields of TP_ERROR_MESSAGES_MAX messages, names and messages cleaned of control
 * characters. Returns a new reference, or NULL when there is no such object. */
static json_t *tp_error_errors(json_t *body)
{
    json_t *in = json_object_get(body, "errors"); /* borrowed */
    if (!json_is_object(in))
        return NULL;
    json_t *out = json_object();
    if (!out)
        return NULL;
    const char *field;
    json_t *v;
    size_t nfields = 0;
    json_object_foreach(in, field, v) {
        if (nfields++ >= TP_ERROR_FIELDS_MAX)
            break;
        json_t *list = json_array();
        char *name = tp_error_clean(field, strlen(field), 256);
        if (!list || !name) {
            json_decref(list);
            free(name);
            break;
        }
        if (json_is_array(v)) {
            size_t i;
            json_t *m;
            json_array_foreach(v, i, m) {
                if (i >= TP_ERROR_MESSAGES_MAX)
                    break;
                tp_error_add_message(list, m);
            }
        } else {
            tp_error_add_message(list, v);
        }
        json_object_set_new(out, name, list);
        free(name);
    }
    return out;
}

void tp_error_from_response(struct tp_error *e, long status, const char *body, size_t len)
{
    json_t *doc = NULL;
    tp_error_clear(e);
    e->kind = TP_ERR_HTTP;
    e->status = status;
    if (!body || len == 0)
        goto out;
    doc = json_loadb(body, len, 0, NULL);
    if (json_is_object(doc)) {
        e->type = tp_error_member(doc, "type");
        e->title = tp_error_member(doc, "title");
        e->detail = tp_error_member(doc, "detail");
        e->errors = tp_error_errors(doc);
        if (!e->detail && !e->title)
            e->detail = tp_error_member(doc, "message");
    } else if (json_is_string(doc)) {
        const char *s = json_string_value(doc);
        e->detail = tp_error_clean(s, strlen(s), TP_ERROR_TEXT_MAX);
    } else {
        size_t start = 0;
        while (start < len && (body[start] == ' ' || body[start] == '\n' ||
                               body[start] == '\r' || body[start] == '\t'))
            start++;
        if (start < len)
            e->detail = tp_error_clean(body + start, len - start, TP_ERROR_TEXT_MAX);
    }
out:
    json_decref(doc);
}

void tp_error_set_transport(struct tp_error *e, int curl_code, const char *message)
{
    tp_error_clear(e);
    e->kind = TP_ERR_TRANSPORT;
    e->curl_code = curl_code;
    e->message = util_strdup(message);
}

void tp_error_set(struct tp_error *e, enum tp_err_kind kind, const char *message)
{
    tp_error_clear(e);
    e->kind = kind;
    e->message = util_strdup(message);
}

const char *tp_error_reason(long status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

int tp_error_format(const struct tp_error *e, buf_t *out)
{
    int rc = 0;
    switch (e->kind) {
    case TP_ERR_NONE:
        return buf_puts(out, "no error\n");
    case TP_ERR_TRANSPORT:
        return buf_printf(out, "transport error %d: %s\n", e->curl_code,
                          e->message ? e->message : "unknown");
    case TP_ERR_PROTOCOL:
    case TP_ERR_CANCELLED:
    case TP_ERR_LOCAL:
        if (!e->status)
            return buf_printf(out, "%s\n", e->message ? e->message : "error");
        break;
    case TP_ERR_HTTP:
    case TP_ERR_AUTH:
        break;
    }
    const char *reason = tp_error_reason(e->status);
    if (e->kind == TP_ERR_AUTH)
        rc |= buf_puts(out, "login failed: ");
    rc |= buf_printf(out, "HTTP %ld%s%s", e->status, *reason ? " " : "", reason);
    if (e->title && strcmp(e->title, reason) != 0)
        rc |= buf_printf(out, ": %s", e->title);
    if (e->detail)
        rc |= buf_printf(out, ": %s", e->detail);
    if (e->kind != TP_ERR_HTTP && e->kind != TP_ERR_AUTH && e->message)
        rc |= buf_printf(out, " (%s)", e->message);
    rc |= buf_putc(out, '\n');
    if (e->errors) {
        const char *field;
        json_t *list;
        json_object_foreach(e->errors, field, list) {
            size_t i;
            json_t *m;
            json_array_foreach(list, i, m)
                rc |= buf_printf(out, "  %s: %s\n", field, json_string_value(m));
        }
    }
    return rc ? -1 : 0;
}
