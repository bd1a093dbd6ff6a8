/* problem: RFC 9457 bodies over jansson; see problem.h. Titles and slugs come from one table
 * so a status always maps to the same type URI. */
#include "problem.h"

#include <stdlib.h>
#include <string.h>

struct problem_kind {
    int status;
    const char *title;
    const char *type;
};

#define KIND(st, title, slug) {st, title, PROBLEM_TYPE_BASE slug}
static const struct problem_kind kinds[] = {
    KIND(400, "Bad Request", "bad-request"),
    KIND(401, "Unauthorized", "unauthorized"),
    KIND(403, "Forbidden", "forbidden"),
    KIND(404, "Not Found", "not-found"),
    KIND(405, "Method Not Allowed", "method-not-allowed"),
    KIND(406, "Not Acceptable", "not-acceptable"),
    KIND(408, "Request Timeout", "request-timeout"),
    KIND(409, "Conflict", "conflict"),
    KIND(411, "Length Required", "length-required"),
    KIND(413, "Content Too Large", "content-too-large"),
    KIND(414, "URI Too Long", "uri-too-long"),
    KIND(415, "Unsupported Media Type", "unsupported-media-type"),
    KIND(422, "Unprocessable Content", "unprocessable-content"),
    KIND(429, "Too Many Requests", "too-many-requests"),
    KIND(431, "Request Header Fields Too Large", "request-header-fields-too-large"),
    KIND(500, "Internal Server Error", "internal-server-error"),
    KIND(501, "Not Implemented", "not-implemented"),
    KIND(502, "Bad Gateway", "bad-gateway"),
    KIND(503, "Service Unavailable", "service-unavailable"),
    KIND(504, "Gateway Timeout", "gateway-timeout"),
};
#undef KIND

static const struct problem_kind *problem_find(int status)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (kinds[i].status == status)
            return &kinds[i];
    return NULL;
}

const char *problem_title(int status)
{
    const struct problem_kind *k = problem_find(status);
    return k ? k->title : NULL;
}

const char *problem_type(int status)
{
    const struct problem_kind *k = problem_find(status);
    return k ? k->type : "about:blank";
}

/* A new JSON string of at most PROBLEM_DETAIL_MAX bytes of s; when that is not valid UTF-8
 * (or was cut inside a character), non-ASCII bytes become '?'. NULL on OOM. */
static json_t *problem_string(const char *s)
{
    char tmp[PROBLEM_DETAIL_MAX];
    size_t n = strlen(s);
    if (n > sizeof tmp)
        n = sizeof tmp;
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    for (size_t i = 0; i < n; i++)
        tmp[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    return json_stringn(tmp, n);
}

char *problem_json(int status, const char *title, const char *detail, json_t *extra)
{
    char *out = NULL;
    json_t *o = NULL;
    if (status < 100 || status > 599)
        goto done;
    if (!title)
        title = problem_title(status);
    if (!title)
        title = "Error";
    o = json_object();
    if (!o || json_object_set_new(o, "type", json_string(problem_type(status))) < 0 ||
        json_object_set_new(o, "title", problem_string(title)) < 0 ||
        json_object_set_new(o, "status", json_integer(status)) < 0)
        goto done;
    if (detail && json_object_set_new(o, "detail", problem_string(detail)) < 0)
        goto done;
    if (json_is_object(extra)) {
        const char *key;
        json_t *val;
        json_object_foreach(extra, key, val) {
            if (strcmp(key, "type") == 0 || strcmp(key, "title") == 0 ||
                strcmp(key, "status") == 0 || strcmp(key, "detail") == 0)
                continue;
            if (json_object_set(o, key, val) < 0)
                goto done;
        }
    }
    out = json_dumps(o, JSON_COMPACT);
done:
    json_decref(o);
    return out;
}
