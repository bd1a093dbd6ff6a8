/* sim_api: routes, authentication, validation and domain rules of the simulated TrackplanFM
 * API; see sim_api.h. Error bodies follow the guide's §3.1 (ASP.NET problem details); list
 * endpoints follow Gridify (page, pageSize, filter, orderBy -> {"count","data"}). */
#include "sim/sim_api.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/crypto.h"
#include "common/util.h"
#include "sim/sim_filter.h"
#include "sim/sim_json.h"

#define SIM_API_MAX_SEGS 8
#define SIM_API_MAX_QUERY 32
#define SIM_API_ID_MAX 128

enum sim_kind {
    K_LOGIN,
    K_LIST,
    K_GET,
    K_CREATE,
    K_UPDATE,
    K_DELETE,
    K_CREATE_JOB_REQUEST,
    K_CREATE_JOB,
    K_COMPLETE_JOB,
    K_LIST_JOB_COSTS,
    K_CREATE_JOB_COST,
    K_UPDATE_JOB_COST,
    K_CREATE_JOB_TASK,
    K_START_JOB_TASK,
    K_COMPLETE_JOB_TASK,
    K_UPDATE_JOB_TASK,
    K_UPDATE_SITE,
    K_CREATE_STORAGE_AREA,
    K_UPSERT_STOCK_LEVEL
};

struct sim_route {
    const char *name;     /* the operation's stable name, as the client's ops table has it */
    const char *method;
    const char *pattern;  /* lowercase; "{id}" is one path segment */
    enum sim_kind kind;
    enum sim_coll coll;
    const char *param;    /* the {id} parameter's name in the guide */
    const char *noun;     /* for "not found" details */
};

/* Guide §2.1–2.11, in its order. */
static const struct sim_route sim_routes[] = {
    {"login", "POST", "/api/auth/login", K_LOGIN, SIM_COLL_JOBS, NULL, NULL},
    {"list_job_requests", "GET", "/api/jobrequests", K_LIST, SIM_COLL_JOB_REQUESTS, NULL, NULL},
    {"create_job_request", "POST", "/api/jobrequests", K_CREATE_JOB_REQUEST,
     SIM_COLL_JOB_REQUESTS, NULL, NULL},
    {"list_jobs", "GET", "/api/jobs", K_LIST, SIM_COLL_JOBS, NULL, NULL},
    {"get_job", "GET", "/api/jobs/{id}", K_GET, SIM_COLL_JOBS, "jobGuid", "Job"},
    {"create_job", "POST", "/api/jobs", K_CREATE_JOB, SIM_COLL_JOBS, NULL, NULL},
    {"complete_job", "PUT", "/api/jobs/complete/{id}", K_COMPLETE_JOB, SIM_COLL_JOBS, "jobGuid",
     "Job"},
    {"list_job_costs", "GET", "/api/jobcosts/{id}", K_LIST_JOB_COSTS, SIM_COLL_JOB_COSTS,
     "jobGuid", "Job"},
    {"create_job_cost", "POST", "/api/jobcosts/{id}", K_CREATE_JOB_COST, SIM_COLL_JOB_COSTS,
     "jobGuid", "Job"},
    {"update_job_cost", "PUT", "/api/jobcosts/update/{id}", K_UPDATE_JOB_COST,
     SIM_COLL_JOB_COSTS, "jobCostGuid", "Job cost"},
    {"list_job_tasks", "GET", "/api/jobtasks", K_LIST, SIM_COLL_JOB_TASKS, NULL, NULL},
    {"get_job_task", "GET", "/api/jobtasks/{id}", K_GET, SIM_COLL_JOB_TASKS, "jobTaskGuid",
     "Job task"},
    {"create_job_task", "POST", "/api/jobtasks", K_CREATE_JOB_TASK, SIM_COLL_JOB_TASKS, NULL,
     NULL},
    {"start_job_task", "PUT", "/api/jobtasks/starttask/{id}", K_START_JOB_TASK,
     SIM_COLL_JOB_TASKS, "jobTaskGuid", "Job task"},
    {"complete_job_task", "PUT", "/api/jobtasks/completetask/{id}", K_COMPLETE_JOB_TASK,
     SIM_COLL_JOB_TASKS, "jobTaskGuid", "Job task"},
    {"update_job_task", "PUT", "/api/jobtasks/update/{id}", K_UPDATE_JOB_TASK,
     SIM_COLL_JOB_TASKS, "jobTaskGuid", "Job task"},
    {"list_assets", "GET", "/api/assets", K_LIST, SIM_COLL_ASSETS, NULL, NULL},
    {"get_asset", "GET", "/api/assets/{id}", K_GET, SIM_COLL_ASSETS, "assetGuid", "Asset"},
    {"create_asset", "POST", "/api/assets", K_CREATE, SIM_COLL_ASSETS, NULL, NULL},
    {"update_asset", "PUT", "/api/assets/{id}", K_UPDATE, SIM_COLL_ASSETS, "assetGuid", "Asset"},
    {"delete_asset", "DELETE", "/api/assets/{id}", K_DELETE, SIM_COLL_ASSETS, "assetGuid",
     "Asset"},
    {"list_sites", "GET", "/api/sites", K_LIST, SIM_COLL_SITES, NULL, NULL},
    {"get_site", "GET", "/api/sites/{id}", K_GET, SIM_COLL_SITES, "siteGuid", "Site"},
    {"create_site", "POST", "/api/sites", K_CREATE, SIM_COLL_SITES, NULL, NULL},
    {"update_site", "PUT", "/api/sites/{id}", K_UPDATE_SITE, SIM_COLL_SITES, "siteGuid", "Site"},
    {"list_resources", "GET", "/api/resources", K_LIST, SIM_COLL_RESOURCES, NULL, NULL},
    {"get_resource", "GET", "/api/resources/{id}", K_GET, SIM_COLL_RESOURCES, "resourceGuid",
     "Resource"},
    {"create_resource", "POST", "/api/resources", K_CREATE, SIM_COLL_RESOURCES, NULL, NULL},
    {"update_resource", "PUT", "/api/resources/{id}", K_UPDATE, SIM_COLL_RESOURCES,
     "resourceGuid", "Resource"},
    {"list_storage_areas", "GET", "/api/storagearea", K_LIST, SIM_COLL_STORAGE_AREAS, NULL,
     NULL},
    {"get_storage_area", "GET", "/api/storagearea/{id}", K_GET, SIM_COLL_STORAGE_AREAS, "guid",
     "Storage area"},
    {"create_storage_area", "POST", "/api/storagearea", K_CREATE_STORAGE_AREA,
     SIM_COLL_STORAGE_AREAS, NULL, NULL},
    {"update_storage_area", "PUT", "/api/storagearea/{id}", K_UPDATE, SIM_COLL_STORAGE_AREAS,
     "guid", "Storage area"},
    {"list_stocks", "GET", "/api/stocks", K_LIST, SIM_COLL_STOCKS, NULL, NULL},
    {"get_stock", "GET", "/api/stocks/{id}", K_GET, SIM_COLL_STOCKS, "guid", "Stock"},
    {"create_stock", "POST", "/api/stocks", K_CREATE, SIM_COLL_STOCKS, NULL, NULL},
    {"update_stock", "PUT", "/api/stocks/{id}", K_UPDATE, SIM_COLL_STOCKS, "guid", "Stock"},
    {"list_stock_levels", "GET", "/api/stocklevel", K_LIST, SIM_COLL_STOCK_LEVELS, NULL, NULL},
    {"get_stock_level", "GET", "/api/stocklevel/{id}", K_GET, SIM_COLL_STOCK_LEVELS, "guid",
     "Stock level"},
    {"upsert_stock_level", "POST", "/api/stocklevel", K_UPSERT_STOCK_LEVEL,
     SIM_COLL_STOCK_LEVELS, NULL, NULL},
};

#define SIM_ROUTE_COUNT (sizeof(sim_routes) / sizeof(sim_routes[0]))

struct sim_api {
    sim_store_t *st;
    sim_auth_t *auth;
};

/* Fields a PUT may not change, per collection (besides guid and the integer ids). */
static const char *const keep_cost[] = {"jobGuid", "jobNumber", NULL};
static const char *const keep_task[] = {"jobGuid", "jobNumber", "taskNumber", "status", NULL};
static const char *const keep_job_complete[] = {"status", NULL};
static const char *const keep_stock_level[] = {"stockId", "storageId", "stockLevelId", NULL};

sim_api_t *sim_api_new(sim_store_t *st, sim_auth_t *auth)
{
    sim_api_t *api = calloc(1, sizeof(*api));
    if (!api)
        return NULL;
    api->st = st;
    api->auth = auth;
    return api;
}

void sim_api_free(sim_api_t *api) { free(api); }

void sim_api_resp_clear(struct sim_api_resp *resp)
{
    json_decref(resp->body);
    resp->body = NULL;
}

/* ---- responses ------------------------------------------------------------------------ */

const char *sim_api_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
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
    default: return "Unknown";
    }
}

static const char *problem_type(int status)
{
    switch (status) {
    case 400: return "https://tools.ietf.org/html/rfc7231#section-6.5.1";
    case 401: return "https://tools.ietf.org/html/rfc7235#section-3.1";
    case 403: return "https://tools.ietf.org/html/rfc7231#section-6.5.3";
    case 404: return "https://tools.ietf.org/html/rfc7231#section-6.5.4";
    case 405: return "https://tools.ietf.org/html/rfc7231#section-6.5.5";
    case 409: return "https://tools.ietf.org/html/rfc7231#section-6.5.8";
    case 413: return "https://tools.ietf.org/html/rfc7231#section-6.5.11";
    case 415: return "https://tools.ietf.org/html/rfc7231#section-6.5.13";
    case 429: return "https://tools.ietf.org/html/rfc6585#section-4";
    case 500: return "https://tools.ietf.org/html/rfc7231#section-6.6.1";
    case 502: return "https://tools.ietf.org/html/rfc7231#section-6.6.3";
    case 503: return "https://tools.ietf.org/html/rfc7231#section-6.6.4";
    case 504: return "https://tools.ietf.org/html/rfc7231#section-6.6.5";
    default: return "about:blank";
    }
}

json_t *sim_api_problem(int status, const char *detail)
{
    return json_pack("{s:s, s:s, s:i, s:s}", "type", problem_type(status), "title",
                     sim_api_reason(status), "status", status, "detail", detail ? detail : "");
}

static void resp_set(struct sim_api_resp *resp, int status, json_t *body /* stolen */)
{
    json_decref(resp->body);
    resp->status = status;
    resp->body = body;
    resp->problem = 0;
}

static void resp_problem(struct sim_api_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void resp_problem(struct sim_api_resp *resp, int status, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    resp_set(resp, status, sim_api_problem(status, detail));
    resp->problem = 1;
}

/* Adds message to errors[field] (creating both as needed); errors is a new object or NULL. */
static void verr_add(json_t **errors, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void verr_add(json_t **errors, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!*errors && !(*errors = json_object()))
        return;
    json_t *list = json_object_get(*errors, field);
    if (!list) {
        list = json_array();
        if (!list || json_object_set_new(*errors, field, list) < 0)
            return;
    }
    json_array_append_new(list, json_string(msg));
}

/* Answers 400 with the ASP.NET validation body around errors (stolen). */
static void resp_validation(struct sim_api_resp *resp, json_t *errors)
{
    unsigned char r[24];
    char hex[49], trace[64];
    if (util_random(r, sizeof(r)) < 0)
        memset(r, 0, sizeof(r));
    crypto_hex(r, sizeof(r), hex);
    snprintf(trace, sizeof(trace), "00-%.32s-%.16s-00", hex, hex + 32);
    json_t *body = json_pack("{s:s, s:s, s:i, s:o, s:s}", "type", problem_type(400), "title",
                             "One or more validation errors occurred.", "status", 400, "errors",
                             errors ? errors : json_object(), "traceId", trace);
    resp_set(resp, 400, body);
    resp->problem = 1;
}

static void resp_invalid(struct sim_api_resp *resp, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void resp_invalid(struct sim_api_resp *resp, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *errors = NULL;
    verr_add(&errors, field, "%s", msg);
    resp_validation(resp, errors);
}

static void resp_guid(struct sim_api_resp *resp, json_t *rec)
{
    resp_set(resp, 200, json_incref(json_object_get(rec, "guid")));
}

static void resp_oom(struct sim_api_resp *resp)
{
    resp_problem(resp, 500, "The simulator ran out of memory.");
}

/* ---- requests ------------------------------------------------------------------------- */

struct sim_query {
    char *keys[SIM_API_MAX_QUERY];
    char *vals[SIM_API_MAX_QUERY];
    size_t n;
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes n bytes of a query component ('+' is a space, %XX a byte) into a new string. */
static char *query_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t w = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[w++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
                   hexval(s[i + 2]) >= 0) {
            out[w++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[w++] = s[i];
        }
    }
    out[w] = '\0';
    return out;
}

static void query_free(struct sim_query *q)
{
    for (size_t i = 0; i < q->n; i++) {
        free(q->keys[i]);
        free(q->vals[i]);
    }
    q->n = 0;
}

/* Splits a raw query into decoded pairs (the first SIM_API_MAX_QUERY). 0, or -1 on OOM. */
static int query_parse(const char *raw, struct sim_query *q)
{
    memset(q, 0, sizeof(*q));
    for (const char *p = raw; p && *p && q->n < SIM_API_MAX_QUERY;) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (klen > 0) {
            q->keys[q->n] = query_decode(p, klen);
            q->vals[q->n] = eq ? query_decode(eq + 1, len - klen - 1) : util_strdup("");
            if (!q->keys[q->n] || !q->vals[q->n]) {
                free(q->keys[q->n]);
                free(q->vals[q->n]);
                query_free(q);
                return -1;
            }
            q->n++;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return 0;
}

/* The first value of key (any case), or NULL. */
static const char *query_get(const struct sim_query *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcasecmp(q->keys[i], key) == 0)
            return q->vals[i];
    return NULL;
}

/* Matches method and path against the route table. Returns 200 with *route and id set, 405
 * (allow filled) when the path exists under other methods, or 404. */
static int route_match(const char *method, const char *path, const struct sim_route **route,
                       char *id, size_t idlen, char *allow, size_t allowlen)
{
    const char *segs[SIM_API_MAX_SEGS];
    size_t lens[SIM_API_MAX_SEGS], nseg = 0;
    const char *p = path;
    size_t plen = strlen(path);
    if (plen > 1 && path[plen - 1] == '/')
        plen--; /* one trailing slash is tolerated */
    if (plen == 0 || p[0] != '/')
        return 404;
    for (size_t i = 1; i <= plen;) {
        size_t len = 0;
        while (i + len < plen && p[i + len] != '/')
            len++;
        if (len == 0 || nseg == SIM_API_MAX_SEGS)
            return 404;
        segs[nseg] = p + i;
        lens[nseg++] = len;
        i += len + 1;
    }
    allow[0] = '\0';
    int found_path = 0;
    for (size_t r = 0; r < SIM_ROUTE_COUNT; r++) {
        const char *pat = sim_routes[r].pattern + 1;
        size_t s = 0;
        int ok = 1;
        const char *idseg = NULL;
        size_t idseglen = 0;
        while (ok && *pat) {
            size_t plen2 = strcspn(pat, "/");
            if (s >= nseg) {
                ok = 0;
                break;
            }
            if (plen2 == 4 && strncmp(pat, "{id}", 4) == 0) {
                idseg = segs[s];
                idseglen = lens[s];
            } else if (plen2 != lens[s] || strncasecmp(pat, segs[s], plen2) != 0) {
                ok = 0;
            }
            s++;
            pat += plen2;
            if (*pat == '/')
                pat++;
        }
        if (!ok || s != nseg)
            continue;
        if (strcasecmp(sim_routes[r].method, method) == 0) {
            *route = &sim_routes[r];
            if (idseg) {
                size_t n = idseglen < idlen - 1 ? idseglen : idlen - 1;
                memcpy(id, idseg, n);
                id[n] = '\0';
            } else {
                id[0] = '\0';
            }
            return 200;
        }
        found_path = 1;
        size_t used = strlen(allow);
        snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", sim_routes[r].method);
    }
    return found_path ? 405 : 404;
}

const char *sim_api_op(const char *method, const char *path)
{
    const struct sim_route *r = NULL;
    char id[SIM_API_ID_MAX], allow[48];
    return route_match(method, path, &r, id, sizeof(id), allow, sizeof(allow)) == 200 ? r->name
                                                                                      : NULL;
}

/* 0 when req carries a JSON object body; otherwise answers 400 as ASP.NET's binder does. */
static int need_object(const struct sim_api_req *req, struct sim_api_resp *resp)
{
    if (!req->body_present) {
        resp_invalid(resp, "", "A non-empty request body is required.");
        return -1;
    }
    if (!req->body) {
        resp_invalid(resp, "$", "'%s' is an invalid JSON body.",
                     req->body_error ? req->body_error : "The request body");
        return -1;
    }
    if (!json_is_object(req->body)) {
        resp_invalid(resp, "$", "The JSON value could not be converted to an object. Path: $");
        return -1;
    }
    return 0;
}

/* Copies a path GUID into out in lowercase; answers 400 and returns -1 when it is not one. */
static int need_guid(const struct sim_route *r, const char *id, char out[37],
                     struct sim_api_resp *resp)
{
    if (!util_is_uuid(id)) {
        resp_invalid(resp, r->param ? r->param : "id", "The value '%s' is not valid.", id);
        return -1;
    }
    sim_json_lower(id, out, 37);
    return 0;
}

/* True when body has field (any case) with a value [Required] accepts: not null, and for
 * strings not blank. */
static int has_value(json_t *body, const char *field)
{
    json_t *v = sim_json_ci_get(body, field, NULL);
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        for (const char *s = json_string_value(v); *s; s++)
            if (!isspace((unsigned char)*s))
                return 1;
        return 0;
    }
    return 1;
}

static void set_now(json_t *rec, const char *field, int64_t now_ms)
{
    char iso[32];
    util_iso8601(now_ms, iso);
    json_object_set_new(rec, field, json_string(iso));
}

/* ---- lists ---------------------------------------------------------------------------- */

struct resolve_ctx {
    sim_store_t *st;
    enum sim_coll coll;
};

static const char *resolve_field(void *ctx, const char *name)
{
    struct resolve_ctx *rc = ctx;
    return sim_store_field(rc->st, rc->coll, name);
}

/* Validates one paging parameter into *out; adds ASP.NET's message to errors otherwise. */
static void paging_param(const struct sim_query *q, const char *name, long *out, json_t **errors)
{
    const char *v = query_get(q, name);
    long n;
    if (!v || !*v)
        verr_add(errors, name, "The %s field is required.", name);
    else if (util_parse_long(v, -2147483648L, 2147483647L, &n) < 0)
        verr_add(errors, name, "The value '%.64s' is not valid for %s.", v, name);
    else if (n < 1)
        verr_add(errors, name, "The field %s must be between 1 and 2147483647.", name);
    else
        *out = n;
}

/* Answers a paged, filtered, ordered list of c; job_guid restricts job costs to one job. */
static void do_list(sim_api_t *api, enum sim_coll c, const char *query, const char *job_guid,
                    struct sim_api_resp *resp)
{
    struct sim_query q;
    json_t *errors = NULL, *data = NULL;
    sim_filter_t *filter = NULL;
    sim_order_t *order = NULL;
    json_t **matched = NULL;
    long page = 0, size = 0;
    char ferr[256];
    struct resolve_ctx rc = {api->st, c};
    if (query_parse(query, &q) < 0) {
        resp_oom(resp);
        return;
    }
    paging_param(&q, "page", &page, &errors);
    paging_param(&q, "pageSize", &size, &errors);
    filter = sim_filter_parse(query_get(&q, "filter"), resolve_field, &rc, ferr, sizeof(ferr));
    if (!filter)
        verr_add(&errors, "filter", "%s", ferr);
    order = sim_order_parse(query_get(&q, "orderBy"), resolve_field, &rc, ferr, sizeof(ferr));
    if (!order)
        verr_add(&errors, "orderBy", "%s", ferr);
    if (errors) {
        resp_validation(resp, errors);
        goto out;
    }
    if (size > SIM_API_MAX_PAGE_SIZE)
        size = SIM_API_MAX_PAGE_SIZE;
    size_t n, count = 0;
    json_t **items = sim_store_list(api->st, c, &n);
    matched = malloc((n ? n : 1) * sizeof(*matched));
    data = json_array();
    if (!matched || !data) {
        resp_oom(resp);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (job_guid) {
            const char *g = json_string_value(json_object_get(items[i], "jobGuid"));
            if (!g || strcasecmp(g, job_guid) != 0)
                continue;
        }
        if (sim_filter_match(filter, items[i]))
            matched[count++] = items[i];
    }
    if (sim_order_sort(order, matched, count) < 0) {
        resp_oom(resp);
        goto out;
    }
    size_t start = (size_t)(page - 1) * (size_t)size;
    for (size_t i = start; i < count && i < start + (size_t)size; i++)
        json_array_append(data, matched[i]);
    resp_set(resp, 200, json_pack("{s:I, s:O}", "count", (json_int_t)count, "data", data));
out:
    json_decref(data);
    free(matched);
    sim_filter_free(filter);
    sim_order_free(order);
    query_free(&q);
}

/* ---- creates -------------------------------------------------------------------------- */

/* Inserts body into c; answers the store's refusal and returns NULL when it fails. */
static json_t *insert(sim_api_t *api, enum sim_coll c, json_t *body, int64_t now_ms,
                      struct sim_api_resp *resp)
{
    struct sim_store_err err;
    json_t *rec = sim_store_insert(api->st, c, body, now_ms, &err);
    if (!rec) {
        if (err.status == 400)
            resp_invalid(resp, err.field, "%s", err.msg);
        else
            resp_oom(resp);
    }
    return rec;
}

static void default_string(json_t *rec, const char *field, const char *value)
{
    if (!json_object_get(rec, field))
        json_object_set_new(rec, field, json_string(value));
}

/* The job a body or path names: answers 400 (field) and returns NULL when it does not. */
static json_t *job_for(sim_api_t *api, json_t *ref, const char *field, struct sim_api_resp *resp)
{
    const char *g = json_string_value(ref);
    if (!ref || json_is_null(ref) || (json_is_string(ref) && !*g)) {
        resp_invalid(resp, field, "The %s field is required.", field);
        return NULL;
    }
    if (!g || !util_is_uuid(g)) {
        resp_invalid(resp, field, "The JSON value could not be converted to System.Guid.");
        return NULL;
    }
    json_t *job = sim_store_get(api->st, SIM_COLL_JOBS, g);
    if (!job)
        resp_invalid(resp, field, "Job %s was not found.", g);
    return job;
}

/* Runs one create; id is the path GUID (job costs) or NULL. Shared by the API and seeds. */
static void do_create(sim_api_t *api, enum sim_kind kind, enum sim_coll c, const char *id,
                      json_t *body, int64_t now_ms, struct sim_api_resp *resp)
{
    json_t *rec = NULL, *job = NULL;
    switch (kind) {
    case K_CREATE_JOB_REQUEST:
        if (!has_value(body, "description")) {
            resp_invalid(resp, "description", "The description field is required.");
            return;
        }
        if (!(rec = insert(api, c, body, now_ms, resp)))
            return;
        default_string(rec, "requestStatus", "New");
        resp_set(resp, 200, json_incref(json_object_get(rec, "jobRequestNumber")));
        return;
    case K_CREATE_JOB:
        if (!has_value(body, "jobDetails")) {
            resp_invalid(resp, "jobDetails", "The jobDetails field is required.");
            return;
        }
        if (!(rec = insert(api, c, body, now_ms, resp)))
            return;
        default_string(rec, "status", "Open");
        break;
    case K_CREATE_JOB_COST: {
        json_t *ref = id ? json_string(id) : json_incref(sim_json_ci_get(body, "jobGuid", NULL));
        job = job_for(api, ref, "jobGuid", resp);
        json_decref(ref);
        if (!job || !(rec = insert(api, c, body, now_ms, resp)))
            return;
        json_object_set(rec, "jobGuid", json_object_get(job, "guid"));
        json_object_set(rec, "jobNumber", json_object_get(job, "jobNumber"));
        break;
    }
    case K_CREATE_JOB_TASK:
        job = job_for(api, sim_json_ci_get(body, "jobGuid", NULL), "jobGuid", resp);
        if (!job || !(rec = insert(api, c, body, now_ms, resp)))
            return;
        json_object_set(rec, "jobGuid", json_object_get(job, "guid"));
        json_object_set(rec, "jobNumber", json_object_get(job, "jobNumber"));
        if (!json_object_get(rec, "taskNumber")) {
            char num[32];
            snprintf(num, sizeof(num), "T-%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(rec, "taskId")));
            json_object_set_new(rec, "taskNumber", json_string(num));
        }
        default_string(rec, "status", "Open");
        break;
    case K_CREATE_STORAGE_AREA:
        if (!(rec = insert(api, c, body, now_ms, resp)))
            return;
        if (!json_object_get(rec, "storageId"))
            json_object_set(rec, "storageId", json_object_get(rec, "storageAreaId"));
        break;
    case K_UPSERT_STOCK_LEVEL: {
        json_t *errors = NULL;
        static const char *const pair[] = {"stockId", "storageId"};
        for (size_t i = 0; i < 2; i++) {
            json_t *v = sim_json_ci_get(body, pair[i], NULL);
            if (!v || json_is_null(v))
                verr_add(&errors, pair[i], "The %s field is required.", pair[i]);
            else if (!json_is_integer(v))
                verr_add(&errors, pair[i],
                         "The JSON value could not be converted to System.Int32. Path: $.%s",
                         pair[i]);
        }
        if (errors) {
            resp_validation(resp, errors);
            return;
        }
        rec = sim_store_stock_level(api->st, sim_json_ci_get(body, "stockId", NULL),
                                    sim_json_ci_get(body, "storageId", NULL));
        if (rec) {
            if (sim_store_merge(api->st, c, rec, body, keep_stock_level) < 0) {
                resp_oom(resp);
                return;
            }
            break;
        }
        /* the pair is the identity: a stale guid or stockLevelId in the body is not reused */
        json_t *copy = json_copy(body);
        const char *k;
        if (!copy) {
            resp_oom(resp);
            return;
        }
        if (sim_json_ci_get(copy, "guid", &k))
            json_object_del(copy, k);
        rec = insert(api, c, copy, now_ms, resp);
        json_decref(copy);
        if (!rec)
            return;
        if (!has_value(rec, "stockLevelId"))
            json_object_set(rec, "stockLevelId", json_object_get(rec, "guid"));
        break;
    }
    default: /* K_CREATE */
        if (!(rec = insert(api, c, body, now_ms, resp)))
            return;
        break;
    }
    sim_store_touch(api->st);
    resp_guid(resp, rec);
}

/* ---- updates -------------------------------------------------------------------------- */

/* The record named by the path, or NULL after answering 400 (not a GUID) or 404. */
static json_t *find(sim_api_t *api, const struct sim_route *r, const char *id,
                    struct sim_api_resp *resp)
{
    char guid[37];
    if (need_guid(r, id, guid, resp) < 0)
        return NULL;
    json_t *rec = sim_store_get(api->st, r->coll, guid);
    if (!rec)
        resp_problem(resp, 404, "%s %s was not found.", r->noun, guid);
    return rec;
}

static int is_status(json_t *rec, const char *status)
{
    const char *s = json_string_value(json_object_get(rec, "status"));
    return s && strcasecmp(s, status) == 0;
}

static void do_update(sim_api_t *api, const struct sim_route *r, const char *id, json_t *body,
                      int64_t now_ms, struct sim_api_resp *resp)
{
    json_t *rec = find(api, r, id, resp);
    const char *const *keep = NULL;
    if (!rec)
        return;
    switch (r->kind) {
    case K_COMPLETE_JOB:
        if (is_status(rec, "Completed"))
            break; /* completing twice changes nothing */
        if (sim_store_merge(api->st, r->coll, rec, body, keep_job_complete) < 0)
            goto oom;
        json_object_set_new(rec, "status", json_string("Completed"));
        if (!has_value(body, "completedDate"))
            set_now(rec, "completedDate", now_ms);
        break;
    case K_START_JOB_TASK:
        if (is_status(rec, "Started") || is_status(rec, "Completed"))
            break;
        if (sim_store_merge(api->st, r->coll, rec, body, keep_task) < 0)
            goto oom;
        json_object_set_new(rec, "status", json_string("Started"));
        if (!has_value(body, "startDate"))
            set_now(rec, "startDate", now_ms);
        break;
    case K_COMPLETE_JOB_TASK:
        if (is_status(rec, "Completed"))
            break;
        if (sim_store_merge(api->st, r->coll, rec, body, keep_task) < 0)
            goto oom;
        json_object_set_new(rec, "status", json_string("Completed"));
        if (!has_value(body, "completeDate"))
            set_now(rec, "completeDate", now_ms);
        break;
    default:
        keep = r->kind == K_UPDATE_JOB_COST   ? keep_cost
               : r->kind == K_UPDATE_JOB_TASK ? keep_task
                                              : NULL;
        if (sim_store_merge(api->st, r->coll, rec, body, keep) < 0)
            goto oom;
        break;
    }
    sim_store_touch(api->st);
    if (r->kind == K_UPDATE_SITE)
        resp_set(resp, 200, json_incref(rec));
    else
        resp_guid(resp, rec);
    return;
oom:
    resp_oom(resp);
}

/* ---- login ---------------------------------------------------------------------------- */

static void do_login(sim_api_t *api, const struct sim_api_req *req, struct sim_api_resp *resp)
{
    json_t *errors = NULL;
    if (need_object(req, resp) < 0)
        return;
    json_t *u = sim_json_ci_get(req->body, "username", NULL);
    json_t *p = sim_json_ci_get(req->body, "password", NULL);
    if (!json_is_string(u) || !*json_string_value(u))
        verr_add(&errors, "username", "The username field is required.");
    if (!json_is_string(p) || !*json_string_value(p))
        verr_add(&errors, "password", "The password field is required.");
    if (errors) {
        resp_validation(resp, errors);
        return;
    }
    char *token = sim_auth_login(api->auth, json_string_value(u), json_string_value(p),
                                 req->now_ms);
    if (!token) {
        resp_problem(resp, 401, "Invalid authentication credentials");
        snprintf(resp->www_auth, sizeof(resp->www_auth), "Bearer");
        return;
    }
    resp_set(resp, 200, json_pack("{s:s}", "token", token));
    free(token);
}

/* ---- dispatch ------------------------------------------------------------------------- */

void sim_api_handle(sim_api_t *api, const struct sim_api_req *req, struct sim_api_resp *resp)
{
    const struct sim_route *r = NULL;
    char id[SIM_API_ID_MAX];
    memset(resp, 0, sizeof(*resp));
    int m = route_match(req->method, req->path, &r, id, sizeof(id), resp->allow,
                        sizeof(resp->allow));
    if (m == 404) {
        resp_problem(resp, 404, "No operation answers %s %.160s.", req->method, req->path);
        return;
    }
    if (m == 405) {
        resp_problem(resp, 405, "%s is not allowed on %.160s (allowed: %s).", req->method,
                     req->path, resp->allow);
        return;
    }
    resp->op = r->name;
    resp->allow[0] = '\0'; /* filled while scanning other methods of the path */
    if (r->kind == K_LOGIN) {
        do_login(api, req, resp);
        return;
    }
    enum sim_role role = SIM_ROLE_NONE;
    enum sim_auth_result ar =
        sim_auth_check(api->auth, req->authorization, req->api_key, req->now_ms, &role);
    if (ar != SIM_AUTH_OK) {
        resp_problem(resp, 401, "Invalid authentication credentials");
        snprintf(resp->www_auth, sizeof(resp->www_auth), "%s",
                 ar == SIM_AUTH_EXPIRED
                     ? "Bearer error=\"invalid_token\", error_description=\"The token expired\""
                 : ar == SIM_AUTH_INVALID ? "Bearer error=\"invalid_token\""
                                          : "Bearer");
        return;
    }
    if (role != SIM_ROLE_FULL && strcasecmp(req->method, "GET") != 0) {
        resp_problem(resp, 403, "Insufficient permissions to access the requested resource");
        return;
    }
    char guid[37];
    json_t *rec;
    switch (r->kind) {
    case K_LIST:
        do_list(api, r->coll, req->query, NULL, resp);
        return;
    case K_LIST_JOB_COSTS:
        if (need_guid(r, id, guid, resp) < 0)
            return;
        if (!sim_store_get(api->st, SIM_COLL_JOBS, guid)) {
            resp_problem(resp, 404, "Job %s was not found.", guid);
            return;
        }
        do_list(api, r->coll, req->query, guid, resp);
        return;
    case K_GET:
        if ((rec = find(api, r, id, resp)))
            resp_set(resp, 200, json_incref(rec));
        return;
    case K_DELETE:
        if ((rec = find(api, r, id, resp))) {
            sim_store_remove(api->st, r->coll, id);
            resp_set(resp, 200, NULL);
        }
        return;
    case K_CREATE_JOB_COST:
        if (need_guid(r, id, guid, resp) < 0 || need_object(req, resp) < 0)
            return;
        do_create(api, r->kind, r->coll, guid, req->body, req->now_ms, resp);
        return;
    case K_CREATE:
    case K_CREATE_JOB:
    case K_CREATE_JOB_REQUEST:
    case K_CREATE_JOB_TASK:
    case K_CREATE_STORAGE_AREA:
    case K_UPSERT_STOCK_LEVEL:
        if (need_object(req, resp) < 0)
            return;
        do_create(api, r->kind, r->coll, NULL, req->body, req->now_ms, resp);
        return;
    default:
        if (need_object(req, resp) < 0)
            return;
        do_update(api, r, id, req->body, req->now_ms, resp);
        return;
    }
}

/* ---- seeds ---------------------------------------------------------------------------- */

/* The first message of a refusal, for seed errors. */
static void resp_message(const struct sim_api_resp *resp, char *out, size_t n)
{
    json_t *errors = json_object_get(resp->body, "errors");
    const char *field;
    json_t *list;
    json_object_foreach(errors, field, list) {
        snprintf(out, n, "%s: %s", field, json_string_value(json_array_get(list, 0)));
        return;
    }
    const char *detail = json_string_value(json_object_get(resp->body, "detail"));
    snprintf(out, n, "%s", detail ? detail : sim_api_reason(resp->status));
}

static int seed_users(sim_api_t *api, json_t *users, char *err, size_t errlen)
{
    size_t i;
    json_t *u;
    if (!json_is_array(users)) {
        snprintf(err, errlen, "\"users\" is not an array");
        return -1;
    }
    json_array_foreach(users, i, u) {
        const char *name = json_string_value(sim_json_ci_get(u, "username", NULL));
        const char *pass = json_string_value(sim_json_ci_get(u, "password", NULL));
        json_t *rolev = sim_json_ci_get(u, "role", NULL);
        enum sim_role role = SIM_ROLE_FULL;
        if (!name || !*name || !pass || !*pass) {
            snprintf(err, errlen, "users[%zu]: username and password are required", i);
            return -1;
        }
        if (rolev && !json_is_null(rolev) &&
            sim_auth_parse_role(json_string_value(rolev), &role) < 0) {
            snprintf(err, errlen, "users[%zu]: role must be \"full\" or \"readonly\"", i);
            return -1;
        }
        if (sim_auth_add_user(api->auth, name, pass, role) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

int sim_api_seed(sim_api_t *api, json_t *seed, int64_t now_ms, char *err, size_t errlen)
{
    /* dependency order: jobs before their tasks and costs */
    static const struct {
        enum sim_coll coll;
        enum sim_kind kind;
    } order[] = {
        {SIM_COLL_SITES, K_CREATE},
        {SIM_COLL_ASSETS, K_CREATE},
        {SIM_COLL_RESOURCES, K_CREATE},
        {SIM_COLL_STORAGE_AREAS, K_CREATE_STORAGE_AREA},
        {SIM_COLL_STOCKS, K_CREATE},
        {SIM_COLL_STOCK_LEVELS, K_UPSERT_STOCK_LEVEL},
        {SIM_COLL_JOBS, K_CREATE_JOB},
        {SIM_COLL_JOB_REQUESTS, K_CREATE_JOB_REQUEST},
        {SIM_COLL_JOB_TASKS, K_CREATE_JOB_TASK},
        {SIM_COLL_JOB_COSTS, K_CREATE_JOB_COST},
    };
    const char *key;
    json_t *val;
    if (!json_is_object(seed)) {
        snprintf(err, errlen, "the seed is not a JSON object");
        return -1;
    }
    json_object_foreach(seed, key, val) {
        if (strcasecmp(key, "users") != 0 && sim_store_coll_find(key) < 0) {
            snprintf(err, errlen, "unknown seed key \"%s\"", key);
            return -1;
        }
    }
    json_t *users = sim_json_ci_get(seed, "users", NULL);
    if (users && seed_users(api, users, err, errlen) < 0)
        return -1;
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        const char *name = sim_store_coll_name(order[k].coll);
        json_t *arr = sim_json_ci_get(seed, name, NULL);
        size_t i;
        json_t *rec;
        if (!arr)
            continue;
        if (!json_is_array(arr)) {
            snprintf(err, errlen, "\"%s\" is not an array", name);
            return -1;
        }
        json_array_foreach(arr, i, rec) {
            struct sim_api_resp resp;
            memset(&resp, 0, sizeof(resp));
            if (!json_is_object(rec)) {
                snprintf(err, errlen, "%s[%zu] is not an object", name, i);
                return -1;
            }
            do_create(api, order[k].kind, order[k].coll, NULL, rec, now_ms, &resp);
            if (resp.status != 200) {
                char msg[256];
                resp_message(&resp, msg, sizeof(msg));
                snprintf(err, errlen, "%s[%zu]: %s", name, i, msg);
                sim_api_resp_clear(&resp);
                return -1;
            }
            sim_api_resp_clear(&resp);
        }
    }
    return 0;
}
