/* Integration tests of the TrackplanFM client against the real trackplan-sim on loopback:
 * every operation (blocking on a private loop, and asynchronously on a shared event_base),
 * both authentication modes, token refresh and re-login, retries (503, 429 + Retry-After,
 * dropped connections), the create-safety rules, error surfacing, filters, sorting and
 * the pager. Faults are injected and calls counted through the simulator's /_sim hooks. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "testutil.h"
#include "trackplan/api.h"
#include "trackplan/client.h"
#include "trackplan/filter.h"
#include "trackplan/order.h"

/* Simulator plumbing ------------------------------------------------------------------- */

static pid_t sim_pid = -1;
static char sim_url[128];

static void sim_up(const char *const *args)
{
    sim_pid = tu_sim_start(sim_url, args);
    cr_assert_gt(sim_pid, 0, "trackplan-sim did not start");
}

static void sim_down(void)
{
    if (sim_pid > 0)
        tu_proc_stop(sim_pid);
    sim_pid = -1;
}

static size_t hook_write(char *p, size_t size, size_t n, void *ud)
{
    buf_append(ud, p, size * n);
    return size * n;
}

/* Calls a /_sim hook (not through the client under test); returns its JSON answer (new). */
static json_t *sim_hook(const char *method, const char *path, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", sim_url, path);
    CURL *e = curl_easy_init();
    buf_t out;
    buf_init(&out, 0);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, hook_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(e);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    cr_assert_eq(rc, CURLE_OK, "hook %s %s: %s", method, path, curl_easy_strerror(rc));
    json_t *v = json_loadb(out.data ? out.data : "", out.len, JSON_DECODE_ANY, NULL);
    buf_free(&out);
    cr_assert_not_null(v, "hook %s %s answered no JSON", method, path);
    return v;
}

static void sim_fault(const char *spec)
{
    json_decref(sim_hook("POST", "/_sim/faults", spec));
}

/* How many logged calls have op name op (and status, when status > 0). */
static size_t sim_count(const char *op, long status)
{
    json_t *log = sim_hook("GET", "/_sim/requests", NULL);
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(log, i, e) {
        const char *o = json_string_value(json_object_get(e, "op"));
        long st = (long)json_integer_value(json_object_get(e, "status"));
        if (o && strcmp(o, op) == 0 && (status <= 0 || st == status))
            n++;
    }
    json_decref(log);
    return n;
}

/* Client plumbing ---------------------------------------------------------------------- */

static uint64_t rand_zero(uint64_t bound, void *ctx)
{
    (void)bound;
    (void)ctx;
    return 0;
}

/* Options for fast tests: short backoff, 4 attempts. */
static void fast_options(struct tp_options *o)
{
    tp_options_init(o);
    o->url = sim_url;
    o->retry.base_ms = 10;
    o->retry.cap_ms = 50;
    o->retry.max_attempts = 4;
    o->timeout_ms = 5000;
}

static struct tp_client *key_client(void)
{
    struct tp_options o;
    fast_options(&o);
    o.api_key = "K-test";
    struct tp_client *c = tp_client_new(&o, NULL);
    cr_assert_not_null(c);
    return c;
}

static struct tp_client *user_client(void)
{
    struct tp_options o;
    fast_options(&o);
    o.user = "alice";
    o.password = "wonder:land";
    struct tp_client *c = tp_client_new(&o, NULL);
    cr_assert_not_null(c);
    return c;
}

/* Runs a private-loop client until res is set. */
static struct tp_result *wait_for(struct tp_client *c, int submitted, struct tp_result **res)
{
    cr_assert_eq(submitted, 0, "call not accepted: %s", strerror(errno));
    cr_assert_eq(tp_client_run(c), 0);
    cr_assert_not_null(*res);
    struct tp_result *r = *res;
    *res = NULL;
    return r;
}

static void assert_ok(const struct tp_result *r, const char *what)
{
    buf_t b;
    buf_init(&b, 0);
    tp_error_format(&r->error, &b);
    cr_assert_eq(r->outcome, TP_OK, "%s: %s %s", what, tp_outcome_name(r->outcome),
                 b.data ? b.data : "");
    buf_free(&b);
}

/* The GUID of an OK result, copied. */
static char *guid_of(const struct tp_result *r, const char *what)
{
    assert_ok(r, what);
    const char *g = tp_result_guid(r);
    cr_assert_not_null(g, "%s returned no GUID", what);
    return strdup(g);
}

static json_t *obj(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert_not_null(v, "bad test JSON: %s", e.text);
    return v;
}

/* A failed assertion ends a test early: its simulator is stopped all the same. */
TestSuite(client_blocking, .fini = sim_down);
TestSuite(client_async, .fini = sim_down);
TestSuite(client_auth, .fini = sim_down);
TestSuite(client_retry, .fini = sim_down);
TestSuite(client_errors, .fini = sim_down);
TestSuite(client_filter, .fini = sim_down);
TestSuite(client_pager, .fini = sim_down);

/* Every operation, blocking ---------------------------------------------------------- */

#define CALL(expr) wait_for(c, (expr), &res)

Test(client_blocking, performs_every_operation_with_an_api_key)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *res = NULL, *r;
    json_t *b;

    /* sites */
    b = obj("{\"name\": \"HQ\", \"code\": 10, \"region\": \"North\", \"customField\": \"kept\"}");
    r = CALL(tp_create_site(c, b, tp_result_keep, &res));
    char *site = guid_of(r, "create_site");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_get_site(c, site, tp_result_keep, &res));
    assert_ok(r, "get_site");
    cr_assert_str_eq(json_string_value(json_object_get(r->body, "name")), "HQ");
    cr_assert_str_eq(json_string_value(json_object_get(r->body, "customField")), "kept",
                     "unknown fields pass through");
    json_int_t site_id = json_integer_value(json_object_get(r->body, "siteId"));
    tp_result_free(r);
    b = obj("{\"name\": \"HQ2\", \"code\": 10, \"region\": \"South\"}");
    r = CALL(tp_update_site(c, site, b, tp_result_keep, &res));
    assert_ok(r, "update_site");
    cr_assert(json_is_object(r->body), "update_site returns the site");
    cr_assert_str_eq(json_string_value(json_object_get(r->body, "region")), "South");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_list_sites(c, NULL, tp_result_keep, &res));
    assert_ok(r, "list_sites");
    cr_assert_eq(json_integer_value(json_object_get(r->body, "count")), 1);
    tp_result_free(r);

    /* job requests */
    b = json_pack("{s:s, s:s, s:s, s:s}", "description", "Leak in plant room", "site", "HQ2",
                  "raisedBy", "ops", "raisedByEmail", "ops@example.com");
    r = CALL(tp_create_job_request(c, b, tp_result_keep, &res));
    assert_ok(r, "create_job_request");
    int64_t number;
    cr_assert_eq(tp_result_number(r, &number), 0, "create_job_request returns a number");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_list_job_requests(c, NULL, tp_result_keep, &res));
    assert_ok(r, "list_job_requests");
    json_t *jr = json_array_get(json_object_get(r->body, "data"), 0);
    cr_assert_eq(json_integer_value(json_object_get(jr, "jobRequestNumber")), number);
    tp_result_free(r);

    /* jobs */
    b = json_pack("{s:s, s:I, s:s}", "jobDetails", "Replace pump", "siteId", site_id,
                  "siteName", "HQ2");
    r = CALL(tp_create_job(c, b, tp_result_keep, &res));
    char *job = guid_of(r, "create_job");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_get_job(c, job, tp_result_keep, &res));
    assert_ok(r, "get_job");
    cr_assert_str_eq(json_string_value(json_object_get(r->body, "jobDetails")), "Replace pump");
    json_int_t job_id = json_integer_value(json_object_get(r->body, "jobId"));
    tp_result_free(r);
    r = CALL(tp_list_jobs(c, NULL, tp_result_keep, &res));
    assert_ok(r, "list_jobs");
    cr_assert_eq(json_integer_value(json_object_get(r->body, "count")), 1);
    tp_result_free(r);

    /* job costs */
    b = obj("{\"costMaterials\": 30, \"costLabour\": 34, \"budget\": 100, "
            "\"costDescription\": \"parts\"}");
    r = CALL(tp_create_job_cost(c, job, b, tp_result_keep, &res));
    char *cost = guid_of(r, "create_job_cost");
    tp_result_free(r);
    json_decref(b);
    b = obj("{\"costMaterials\": 40, \"costLabour\": 34, \"budget\": 100, "
            "\"costDescription\": \"more parts\"}");
    r = CALL(tp_update_job_cost(c, cost, b, tp_result_keep, &res));
    assert_ok(r, "update_job_cost");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_list_job_costs(c, job, NULL, tp_result_keep, &res));
    assert_ok(r, "list_job_costs");
    json_t *costrec = json_array_get(json_object_get(r->body, "data"), 0);
    cr_assert_eq(json_integer_value(json_object_get(costrec, "costMaterials")), 40);
    tp_result_free(r);

    /* job tasks */
    b = json_pack("{s:s, s:s, s:i}", "jobGuid", job, "description", "Isolate supply",
                  "durationInHours", 2);
    r = CALL(tp_create_job_task(c, b, tp_result_keep, &res));
    char *task = guid_of(r, "create_job_task");
    tp_result_free(r);
    json_decref(b);
    b = obj("{\"startDate\": \"2025-04-08T12:00:00Z\"}");
    r = CALL(tp_start_job_task(c, task, b, tp_result_keep, &res));
    assert_ok(r, "start_job_task");
    tp_result_free(r);
    json_decref(b);
    b = obj("{\"description\": \"Isolate supply (valve 3)\", \"duration\": 3}");
    r = CALL(tp_update_job_task(c, task, b, tp_result_keep, &res));
    assert_ok(r, "update_job_task");
    tp_result_free(r);
    json_decref(b);
    b = obj("{\"completeDate\": \"2025-04-08T14:00:00Z\", \"completNote\": \"done\"}");
    r = CALL(tp_complete_job_task(c, task, b, tp_result_keep, &res));
    assert_ok(r, "complete_job_task");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_get_job_task(c, task, tp_result_keep, &res));
    assert_ok(r, "get_job_task");
    cr_assert_str_eq(json_string_value(json_object_get(r->body, "description")),
                     "Isolate supply (valve 3)");
    tp_result_free(r);
    r = CALL(tp_list_job_tasks(c, NULL, tp_result_keep, &res));
    assert_ok(r, "list_job_tasks");
    cr_assert_eq(json_integer_value(json_object_get(r->body, "count")), 1);
    tp_result_free(r);
    b = json_pack("{s:I, s:s}", "jobId", job_id, "completedNote", "fixed");
    r = CALL(tp_complete_job(c, job, b, tp_result_keep, &res));
    assert_ok(r, "complete_job");
    cr_assert_str_eq(tp_result_guid(r), job);
    tp_result_free(r);
    json_decref(b);

    /* assets */
    b = obj("{\"description\": \"Chiller 1\", \"assetClassId\": 10, \"assetClass\": \"HVAC\"}");
    r = CALL(tp_create_asset(c, b, tp_result_keep, &res));
    char *asset = guid_of(r, "create_asset");
    tp_result_free(r);
    json_decref(b);
    b = obj("{\"description\": \"Chiller 1A\", \"assetClassId\": 10, \"assetClass\": \"HVAC\"}");
    r = CALL(tp_update_asset(c, asset, b, tp_result_keep, &res));
    assert_ok(r, "update_asset");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_get_asset(c, asset, tp_result_keep, &res));
    assert_ok(r, "get_asset");
    cr_assert_str_eq(json_string_value(json_object_get(r->body, "description")), "Chiller 1A");
    tp_result_free(r);
    r = CALL(tp_list_assets(c, NULL, tp_result_keep, &res));
    assert_ok(r, "list_assets");
    tp_result_free(r);
    r = CALL(tp_delete_asset(c, asset, tp_result_keep, &res));
    assert_ok(r, "delete_asset");
    tp_result_free(r);
    r = CALL(tp_get_asset(c, asset, tp_result_keep, &res));
    cr_assert_eq(r->outcome, TP_FAIL, "a deleted asset is gone");
    cr_assert_eq(r->status, 404);
    tp_result_free(r);

    /* resources */
    b = obj("{\"name\": \"Eve\", \"resourceType\": \"Engineer\", \"emailAddress\": \"e@x.org\"}");
    r = CALL(tp_create_resource(c, b, tp_result_keep, &res));
    char *resource = guid_of(r, "create_resource");
    tp_result_free(r);
    json_decref(b);
    b = obj("{\"name\": \"Eve\", \"resourceType\": \"Supervisor\"}");
    r = CALL(tp_update_resource(c, resource, b, tp_result_keep, &res));
    assert_ok(r, "update_resource");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_get_resource(c, resource, tp_result_keep, &res));
    assert_ok(r, "get_resource");
    cr_assert_str_eq(json_string_value(json_object_get(r->body, "resourceType")), "Supervisor");
    tp_result_free(r);
    r = CALL(tp_list_resources(c, NULL, tp_result_keep, &res));
    assert_ok(r, "list_resources");
    tp_result_free(r);

    /* storage areas, stocks, stock levels */
    b = json_pack("{s:s, s:s, s:I}", "storageName", "Store A", "code", "SA", "siteId", site_id);
    r = CALL(tp_create_storage_area(c, b, tp_result_keep, &res));
    char *area = guid_of(r, "create_storage_area");
    tp_result_free(r);
    json_decref(b);
    b = json_pack("{s:s, s:s, s:I}", "storageName", "Store A1", "code", "SA", "siteId", site_id);
    r = CALL(tp_update_storage_area(c, area, b, tp_result_keep, &res));
    assert_ok(r, "update_storage_area");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_get_storage_area(c, area, tp_result_keep, &res));
    assert_ok(r, "get_storage_area");
    json_int_t storage_id = json_integer_value(json_object_get(r->body, "storageId"));
    tp_result_free(r);
    r = CALL(tp_list_storage_areas(c, NULL, tp_result_keep, &res));
    assert_ok(r, "list_storage_areas");
    tp_result_free(r);
    b = obj("{\"stockTypeId\": 1, \"description\": \"Filter F7\"}");
    r = CALL(tp_create_stock(c, b, tp_result_keep, &res));
    char *stock = guid_of(r, "create_stock");
    tp_result_free(r);
    json_decref(b);
    b = obj("{\"stockTypeId\": 2, \"description\": \"Filter F7\"}");
    r = CALL(tp_update_stock(c, stock, b, tp_result_keep, &res));
    assert_ok(r, "update_stock");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_get_stock(c, stock, tp_result_keep, &res));
    assert_ok(r, "get_stock");
    json_int_t stock_id = json_integer_value(json_object_get(r->body, "stockId"));
    tp_result_free(r);
    r = CALL(tp_list_stocks(c, NULL, tp_result_keep, &res));
    assert_ok(r, "list_stocks");
    tp_result_free(r);
    b = json_pack("{s:I, s:I, s:i}", "stockId", stock_id, "storageId", storage_id, "quantity", 5);
    r = CALL(tp_upsert_stock_level(c, b, tp_result_keep, &res));
    char *level = guid_of(r, "upsert_stock_level");
    tp_result_free(r);
    json_decref(b);
    r = CALL(tp_get_stock_level(c, level, tp_result_keep, &res));
    assert_ok(r, "get_stock_level");
    cr_assert_eq(json_integer_value(json_object_get(r->body, "quantity")), 5);
    tp_result_free(r);
    r = CALL(tp_list_stock_levels(c, NULL, tp_result_keep, &res));
    assert_ok(r, "list_stock_levels");
    tp_result_free(r);

    /* login needs a user: refused up front in API-key mode */
    errno = 0;
    cr_assert_eq(tp_login(c, tp_result_keep, &res), -1);
    cr_assert_eq(errno, EINVAL);

    cr_assert_eq(sim_count("login", 0), 0, "API-key mode never logs in");
    free(site);
    free(job);
    free(cost);
    free(task);
    free(asset);
    free(resource);
    free(area);
    free(stock);
    free(level);
    tp_client_free(c);
    sim_down();
}

Test(client_blocking, refuses_calls_missing_their_guid_or_body)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *res = NULL;
    cr_assert_eq(tp_get_job(c, NULL, tp_result_keep, &res), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(tp_create_job(c, NULL, tp_result_keep, &res), -1);
    cr_assert_eq(errno, EINVAL);
    struct tp_call call = {.id = "x"};
    cr_assert_eq(tp_client_op(c, TP_OP_LIST_SITES, &call, tp_result_keep, &res), -1);
    cr_assert_eq(tp_client_request(c, "BREW", "/api/sites", NULL, tp_result_keep, &res), -1);
    cr_assert_eq(tp_client_request(c, "GET", "api/sites", NULL, tp_result_keep, &res), -1);
    cr_assert_eq(tp_client_pending(c), 0);
    cr_assert_null(res);
    tp_client_free(c);
    sim_down();
}

/* Every operation, asynchronously on a shared loop ---------------------------------- */

struct async_run {
    struct event_base *base;
    struct tp_client *c;
    int phase;
    int outstanding;
    int seen[TP_OP_COUNT];
    int failures;
    char fail_msg[512];
    char site[40], job[40], cost[40], task[40], asset[40], resource[40], area[40], stock[40];
    char level[40];
    json_int_t site_id, job_id, storage_id, stock_id;
    int ticks_while_pending;
    struct event *ticker;
};

static void async_phase(struct async_run *a);

static void async_copy_guid(char dst[40], const struct tp_result *r)
{
    const char *g = tp_result_guid(r);
    snprintf(dst, 40, "%s", g ? g : "");
}

static void async_done(struct tp_result *r, void *arg)
{
    struct async_run *a = arg;
    if (r->outcome != TP_OK || !r->op) {
        buf_t b;
        buf_init(&b, 0);
        tp_error_format(&r->error, &b);
        if (!a->failures++)
            snprintf(a->fail_msg, sizeof a->fail_msg, "%s: %s", r->op ? r->op->name : "?",
                     b.data ? b.data : "");
        buf_free(&b);
    } else {
        a->seen[r->op->id]++;
        json_t *body = r->body;
        switch (r->op->id) {
        case TP_OP_CREATE_SITE: async_copy_guid(a->site, r); break;
        case TP_OP_CREATE_JOB: async_copy_guid(a->job, r); break;
        case TP_OP_CREATE_JOB_COST: async_copy_guid(a->cost, r); break;
        case TP_OP_CREATE_JOB_TASK: async_copy_guid(a->task, r); break;
        case TP_OP_CREATE_ASSET: async_copy_guid(a->asset, r); break;
        case TP_OP_CREATE_RESOURCE: async_copy_guid(a->resource, r); break;
        case TP_OP_CREATE_STORAGE_AREA: async_copy_guid(a->area, r); break;
        case TP_OP_CREATE_STOCK: async_copy_guid(a->stock, r); break;
        case TP_OP_UPSERT_STOCK_LEVEL: async_copy_guid(a->level, r); break;
        case TP_OP_GET_SITE:
            a->site_id = json_integer_value(json_object_get(body, "siteId"));
            break;
        case TP_OP_GET_JOB:
            a->job_id = json_integer_value(json_object_get(body, "jobId"));
            break;
        case TP_OP_GET_STORAGE_AREA:
            a->storage_id = json_integer_value(json_object_get(body, "storageId"));
            break;
        case TP_OP_GET_STOCK:
            a->stock_id = json_integer_value(json_object_get(body, "stockId"));
            break;
        default: break;
        }
    }
    tp_result_free(r);
    if (--a->outstanding == 0) {
        a->phase++;
        async_phase(a);
    }
}

/* Submits one call; a refusal counts as a failure. */
static void async_submit(struct async_run *a, int rc, const char *what)
{
    if (rc == 0) {
        a->outstanding++;
    } else if (!a->failures++) {
        snprintf(a->fail_msg, sizeof a->fail_msg, "%s not accepted: %s", what, strerror(errno));
    }
}

#define SUBMIT(call) async_submit(a, (call), #call)

static void async_phase(struct async_run *a)
{
    struct tp_client *c = a->c;
    json_t *b[8] = {0};
    if (a->failures) {
        event_base_loopexit(a->base, NULL);
        return;
    }
    switch (a->phase) {
    case 0: /* independent creates and lists, all at once (one login must serve them all) */
        b[0] = json_pack("{s:s, s:i}", "name", "Depot", "code", 7);
        b[1] = json_pack("{s:s}", "jobDetails", "Door sensor fault");
        b[2] = json_pack("{s:s}", "description", "Lift alarm");
        b[3] = json_pack("{s:s, s:i}", "description", "AHU 2", "assetClassId", 3);
        b[4] = json_pack("{s:s, s:s}", "name", "Tom", "resourceType", "Technician");
        b[5] = json_pack("{s:s, s:i}", "description", "Belt", "stockTypeId", 1);
        SUBMIT(tp_create_site(c, b[0], async_done, a));
        SUBMIT(tp_create_job(c, b[1], async_done, a));
        SUBMIT(tp_create_job_request(c, b[2], async_done, a));
        SUBMIT(tp_create_asset(c, b[3], async_done, a));
        SUBMIT(tp_create_resource(c, b[4], async_done, a));
        SUBMIT(tp_create_stock(c, b[5], async_done, a));
        SUBMIT(tp_list_job_requests(c, NULL, async_done, a));
        SUBMIT(tp_list_jobs(c, NULL, async_done, a));
        SUBMIT(tp_list_job_tasks(c, NULL, async_done, a));
        SUBMIT(tp_list_assets(c, NULL, async_done, a));
        SUBMIT(tp_list_sites(c, NULL, async_done, a));
        SUBMIT(tp_list_resources(c, NULL, async_done, a));
        SUBMIT(tp_list_storage_areas(c, NULL, async_done, a));
        SUBMIT(tp_list_stocks(c, NULL, async_done, a));
        SUBMIT(tp_list_stock_levels(c, NULL, async_done, a));
        break;
    case 1:
        SUBMIT(tp_get_site(c, a->site, async_done, a));
        SUBMIT(tp_get_job(c, a->job, async_done, a));
        SUBMIT(tp_get_asset(c, a->asset, async_done, a));
        SUBMIT(tp_get_resource(c, a->resource, async_done, a));
        SUBMIT(tp_get_stock(c, a->stock, async_done, a));
        b[0] = json_pack("{s:i, s:s}", "costLabour", 12, "costDescription", "call-out");
        b[1] = json_pack("{s:s, s:s}", "jobGuid", a->job, "description", "Inspect");
        SUBMIT(tp_create_job_cost(c, a->job, b[0], async_done, a));
        SUBMIT(tp_create_job_task(c, b[1], async_done, a));
        break;
    case 2:
        b[0] = json_pack("{s:s, s:s, s:I}", "storageName", "Van 1", "code", "V1", "siteId",
                         a->site_id);
        b[1] = json_pack("{s:s, s:i}", "name", "Depot", "code", 8);
        b[2] = json_pack("{s:s, s:i}", "description", "AHU 2B", "assetClassId", 3);
        b[3] = json_pack("{s:s, s:s}", "name", "Tom", "resourceType", "Lead");
        b[4] = json_pack("{s:s, s:i}", "description", "Belt", "stockTypeId", 2);
        b[5] = json_pack("{s:i}", "costLabour", 15);
        b[6] = json_pack("{s:s}", "startDate", "2025-04-08T12:00:00Z");
        SUBMIT(tp_create_storage_area(c, b[0], async_done, a));
        SUBMIT(tp_update_site(c, a->site, b[1], async_done, a));
        SUBMIT(tp_update_asset(c, a->asset, b[2], async_done, a));
        SUBMIT(tp_update_resource(c, a->resource, b[3], async_done, a));
        SUBMIT(tp_update_stock(c, a->stock, b[4], async_done, a));
        SUBMIT(tp_update_job_cost(c, a->cost, b[5], async_done, a));
        SUBMIT(tp_start_job_task(c, a->task, b[6], async_done, a));
        SUBMIT(tp_list_job_costs(c, a->job, NULL, async_done, a));
        SUBMIT(tp_get_job_task(c, a->task, async_done, a));
        break;
    case 3:
        b[0] = json_pack("{s:s, s:s, s:I}", "storageName", "Van 1A", "code", "V1", "siteId",
                         a->site_id);
        b[1] = json_pack("{s:s}", "description", "Inspect and clean");
        b[2] = json_pack("{s:s, s:s}", "completeDate", "2025-04-08T13:00:00Z", "completNote",
                         "ok");
        SUBMIT(tp_get_storage_area(c, a->area, async_done, a));
        SUBMIT(tp_update_storage_area(c, a->area, b[0], async_done, a));
        SUBMIT(tp_update_job_task(c, a->task, b[1], async_done, a));
        SUBMIT(tp_complete_job_task(c, a->task, b[2], async_done, a));
        SUBMIT(tp_delete_asset(c, a->asset, async_done, a));
        break;
    case 4:
        b[0] = json_pack("{s:I, s:I, s:i}", "stockId", a->stock_id, "storageId", a->storage_id,
                         "quantity", 9);
        b[1] = json_pack("{s:I, s:s}", "jobId", a->job_id, "completedNote", "closed");
        SUBMIT(tp_upsert_stock_level(c, b[0], async_done, a));
        SUBMIT(tp_complete_job(c, a->job, b[1], async_done, a));
        break;
    case 5:
        SUBMIT(tp_get_stock_level(c, a->level, async_done, a));
        SUBMIT(tp_login(c, async_done, a));
        break;
    default:
        event_base_loopexit(a->base, NULL);
        break;
    }
    for (int i = 0; i < 8; i++)
        json_decref(b[i]);
    if (a->outstanding == 0)
        event_base_loopexit(a->base, NULL);
}

static void async_tick(evutil_socket_t fd, short what, void *arg)
{
    struct async_run *a = arg;
    (void)fd;
    (void)what;
    if (tp_client_pending(a->c) > 0)
        a->ticks_while_pending++;
}

Test(client_async, performs_every_operation_on_a_shared_event_base_with_a_jwt)
{
    static const char *const args[] = {"--user", "alice:wonder:land", NULL};
    sim_up(args);
    /* stall one early call so the loop has time to prove it keeps turning */
    sim_fault("{\"delayMs\": 300, \"count\": 1, \"path\": \"^/api/jobs$\", \"method\": \"GET\"}");
    struct async_run *a = calloc(1, sizeof *a);
    a->base = event_base_new();
    struct tp_options o;
    fast_options(&o);
    o.user = "alice";
    o.password = "wonder:land";
    o.max_transfers = 4;
    a->c = tp_client_new(&o, a->base);
    cr_assert_not_null(a->c);
    a->ticker = event_new(a->base, -1, EV_PERSIST, async_tick, a);
    struct timeval tick = {0, 20 * 1000};
    event_add(a->ticker, &tick);
    struct timeval limit = {45, 0};
    event_base_loopexit(a->base, &limit);
    async_phase(a);
    event_base_dispatch(a->base);
    cr_assert_eq(a->failures, 0, "%d failures, first: %s", a->failures, a->fail_msg);
    cr_assert_eq(a->phase, 6, "stopped in phase %d", a->phase);
    for (int i = 0; i < TP_OP_COUNT; i++)
        cr_assert_geq(a->seen[i], 1, "%s never succeeded", tp_op_get((enum tp_op_id)i)->name);
    cr_assert_gt(a->ticks_while_pending, 0, "the loop ran timers while calls were in flight");
    cr_assert_eq(sim_count("login", 200), 2,
                 "one automatic login served the whole first burst, plus the explicit one");
    cr_assert_eq(sim_count("login", 0), 2);
    event_free(a->ticker);
    tp_client_free(a->c);
    event_base_free(a->base);
    free(a);
    sim_down();
}

struct cancel_count {
    int calls;
    int trylater;
};

static void cancel_done(struct tp_result *r, void *arg)
{
    struct cancel_count *n = arg;
    n->calls++;
    n->trylater += r->outcome == TP_TRYLATER && r->error.kind == TP_ERR_CANCELLED;
    tp_result_free(r);
}

Test(client_async, calls_back_every_pending_request_when_freed)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct event_base *base = event_base_new();
    struct tp_options o;
    fast_options(&o);
    o.api_key = "K-test";
    struct tp_client *c = tp_client_new(&o, base);
    struct cancel_count n = {0, 0};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(tp_list_sites(c, NULL, cancel_done, &n), 0);
    cr_assert_eq(n.calls, 0, "no callback runs inside the submitting call");
    cr_assert_eq(tp_client_pending(c), 5);
    tp_client_free(c);
    cr_assert_eq(n.calls, 5);
    cr_assert_eq(n.trylater, 5, "nothing was sent, so each may be sent again");
    event_base_free(base);
    sim_down();
}

Test(client_async, refuses_work_beyond_its_queue_bound)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct event_base *base = event_base_new();
    struct tp_options o;
    fast_options(&o);
    o.api_key = "K-test";
    o.max_transfers = 1;
    o.max_queue = 2;
    struct tp_client *c = tp_client_new(&o, base);
    struct cancel_count n = {0, 0};
    /* one transfer starts, two wait, the fourth is refused */
    cr_assert_eq(tp_list_sites(c, NULL, cancel_done, &n), 0);
    cr_assert_eq(tp_list_sites(c, NULL, cancel_done, &n), 0);
    cr_assert_eq(tp_list_sites(c, NULL, cancel_done, &n), 0);
    errno = 0;
    cr_assert_eq(tp_list_sites(c, NULL, cancel_done, &n), -1);
    cr_assert_eq(errno, EAGAIN);
    tp_client_free(c);
    cr_assert_eq(n.calls, 3);
    event_base_free(base);
    sim_down();
}

/* Authentication ----------------------------------------------------------------------- */

Test(client_auth, sends_the_api_key_in_the_configured_header)
{
    static const char *const args[] = {"--api-key", "K-test", "--api-key-header", "X-Custom-Key",
                                       NULL};
    sim_up(args);
    struct tp_options o;
    fast_options(&o);
    o.api_key = "K-test";
    o.api_key_header = "X-Custom-Key";
    struct tp_client *c = tp_client_new(&o, NULL);
    struct tp_result *r = NULL;
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    assert_ok(r, "list_sites with X-Custom-Key");
    tp_result_free(r);
    tp_client_free(c);

    c = key_client(); /* default header: the key goes unseen */
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    cr_assert_eq(r->outcome, TP_FAIL);
    cr_assert_eq(r->status, 401);
    cr_assert_eq(r->attempts, 1, "a 401 with an API key is not retried");
    tp_result_free(r);
    tp_client_free(c);
    sim_down();
}

Test(client_auth, logs_in_once_and_reuses_the_token)
{
    static const char *const args[] = {"--user", "alice:wonder:land", NULL};
    sim_up(args);
    struct tp_client *c = user_client();
    struct tp_result *r = NULL;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
        assert_ok(r, "list_sites");
        tp_result_free(r);
    }
    cr_assert_eq(sim_count("login", 200), 1);
    cr_assert_eq(sim_count("list_sites", 200), 3);
    tp_client_free(c);
    sim_down();
}

Test(client_auth, refreshes_the_token_before_it_expires)
{
    static const char *const args[] = {"--user", "alice:wonder:land", "--token-ttl", "2", NULL};
    sim_up(args);
    struct tp_client *c = user_client();
    struct tp_result *r = NULL;
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    assert_ok(r, "first list_sites");
    tp_result_free(r);
    cr_assert_eq(sim_count("login", 200), 1);
    /* the simulator rounds exp up to a whole second: 2 s of TTL may last up to 3 s */
    struct timespec ts = {3, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    assert_ok(r, "list_sites after expiry");
    cr_assert_eq(r->attempts, 1, "the old token was never sent");
    tp_result_free(r);
    cr_assert_eq(sim_count("login", 200), 2, "a new login replaced the expired token");
    cr_assert_eq(sim_count("list_sites", 401), 0, "no call went out with an expired token");
    tp_client_free(c);
    sim_down();
}

Test(client_auth, logs_in_again_once_when_the_token_is_refused)
{
    static const char *const args[] = {"--user", "alice:wonder:land", NULL};
    sim_up(args);
    struct tp_client *c = user_client();
    struct tp_result *r = NULL;
    sim_fault("{\"status\": 401, \"count\": 1, \"path\": \"^/api/sites$\"}");
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    assert_ok(r, "list_sites after one 401");
    cr_assert_eq(r->attempts, 2);
    tp_result_free(r);
    cr_assert_eq(sim_count("login", 200), 2);

    /* refused twice: one re-login only, then the 401 is the answer */
    sim_fault("{\"status\": 401, \"count\": 2, \"path\": \"^/api/sites$\"}");
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    cr_assert_eq(r->outcome, TP_FAIL);
    cr_assert_eq(r->status, 401);
    cr_assert_eq(r->attempts, 2);
    tp_result_free(r);
    cr_assert_eq(sim_count("login", 200), 3);
    tp_client_free(c);
    sim_down();
}

Test(client_auth, reports_a_failed_login_on_the_waiting_call)
{
    static const char *const args[] = {"--user", "alice:wonder:land", NULL};
    sim_up(args);
    struct tp_options o;
    fast_options(&o);
    o.user = "alice";
    o.password = "wrong";
    struct tp_client *c = tp_client_new(&o, NULL);
    struct tp_result *r = NULL;
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    cr_assert_eq(r->outcome, TP_FAIL);
    cr_assert_eq(r->error.kind, TP_ERR_AUTH);
    cr_assert_eq(r->status, 401);
    tp_result_free(r);
    cr_assert_eq(sim_count("login", 401), 1, "a refused login is not retried");
    cr_assert_eq(sim_count("list_sites", 0), 0, "the call never went out without a token");
    tp_client_free(c);
    sim_down();
}

static char *trace_run(struct tp_options *o, char **token_out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    o->trace = f;
    struct tp_client *c = tp_client_new(o, NULL);
    struct tp_result *r = NULL;
    if (token_out) {
        cr_assert_eq(tp_client_call(c, TP_OP_LOGIN, NULL, &r), 0);
        assert_ok(r, "login");
        *token_out = strdup(json_string_value(json_object_get(r->body, "token")));
        tp_result_free(r);
    }
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    assert_ok(r, "list_sites");
    tp_result_free(r);
    tp_client_free(c);
    fclose(f);
    return text;
}

Test(client_auth, masks_credentials_in_the_verbose_trace)
{
    static const char *const args[] = {"--api-key", "K-secret-123", "--user",
                                       "alice:wonder:land", NULL};
    sim_up(args);
    struct tp_options o;
    fast_options(&o);
    o.api_key = "K-secret-123";
    char *text = trace_run(&o, NULL);
    cr_assert_not_null(strstr(text, "> GET /api/sites?page=1&pageSize=50 HTTP/1.1"), "%s", text);
    cr_assert_not_null(strstr(text, "X-API-Key: ***"), "%s", text);
    cr_assert_not_null(strstr(text, "< HTTP/1.1 200"), "%s", text);
    cr_assert_null(strstr(text, "K-secret-123"), "the key leaked: %s", text);
    free(text);

    fast_options(&o);
    o.user = "alice";
    o.password = "wonder:land";
    char *token = NULL;
    text = trace_run(&o, &token);
    cr_assert_not_null(strstr(text, "Authorization: Bearer ***"), "%s", text);
    cr_assert_null(strstr(text, token), "the token leaked: %s", text);
    cr_assert_null(strstr(text, "wonder:land"), "the password leaked: %s", text);
    free(token);
    free(text);
    sim_down();
}

/* Retries and the create-safety rules ------------------------------------------------ */

Test(client_retry, retries_a_503_until_it_succeeds)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    sim_fault("{\"status\": 503, \"count\": 2, \"path\": \"^/api/sites$\"}");
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    assert_ok(r, "list_sites after two 503");
    cr_assert_eq(r->attempts, 3);
    tp_result_free(r);
    cr_assert_eq(sim_count("list_sites", 503), 2);
    cr_assert_eq(sim_count("list_sites", 200), 1);
    tp_client_free(c);
    sim_down();
}

Test(client_retry, gives_up_after_max_attempts_and_says_try_later)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    sim_fault("{\"status\": 503, \"count\": 10, \"path\": \"^/api/jobs$\"}");
    json_t *b = obj("{\"jobDetails\": \"x\"}");
    struct tp_call call = {.body = b};
    cr_assert_eq(tp_client_call(c, TP_OP_CREATE_JOB, &call, &r), 0);
    cr_assert_eq(r->outcome, TP_TRYLATER, "a 503 means not processed: safe to send later");
    cr_assert_eq(r->status, 503);
    cr_assert_eq(r->attempts, 4);
    cr_assert_eq(r->error.kind, TP_ERR_HTTP);
    tp_result_free(r);
    json_decref(b);
    cr_assert_eq(sim_count("create_job", 503), 4);
    tp_client_free(c);
    sim_down();
}

Test(client_retry, waits_as_long_as_retry_after_says)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_options o;
    fast_options(&o);
    o.api_key = "K-test";
    o.rand = rand_zero; /* without Retry-After the backoff would be 0 ms */
    struct tp_client *c = tp_client_new(&o, NULL);
    struct tp_result *r = NULL;
    sim_fault("{\"status\": 429, \"count\": 1, \"retryAfter\": 1, \"path\": \"^/api/sites$\"}");
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    assert_ok(r, "list_sites after a 429");
    cr_assert_eq(r->attempts, 2);
    cr_assert_eq(r->retry_after_ms, 1000);
    cr_assert_geq(r->elapsed_ms, 1000, "the retry waited for Retry-After");
    tp_result_free(r);
    tp_client_free(c);
    sim_down();
}

Test(client_retry, hands_back_a_retry_after_beyond_its_cap)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    sim_fault("{\"status\": 429, \"count\": 1, \"retryAfter\": 120, \"path\": \"^/api/sites$\"}");
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    cr_assert_eq(r->outcome, TP_TRYLATER);
    cr_assert_eq(r->attempts, 1);
    cr_assert_eq(r->retry_after_ms, 120000);
    tp_result_free(r);
    tp_client_free(c);
    sim_down();
}

Test(client_retry, retries_a_dropped_connection_for_a_read)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    sim_fault("{\"drop\": true, \"count\": 1, \"path\": \"^/api/sites$\"}");
    cr_assert_eq(tp_client_call(c, TP_OP_LIST_SITES, NULL, &r), 0);
    assert_ok(r, "list_sites after a dropped connection");
    cr_assert_eq(r->attempts, 2);
    tp_result_free(r);
    tp_client_free(c);
    sim_down();
}

Test(client_retry, does_not_repeat_a_create_after_a_500)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    json_t *b = obj("{\"jobDetails\": \"x\"}");
    struct tp_call call = {.body = b};
    sim_fault("{\"status\": 500, \"count\": 1, \"path\": \"^/api/jobs$\", \"method\": \"POST\"}");
    cr_assert_eq(tp_client_call(c, TP_OP_CREATE_JOB, &call, &r), 0);
    cr_assert_eq(r->outcome, TP_UNKNOWN, "a 500 to a create may have created it");
    cr_assert_eq(r->attempts, 1);
    tp_result_free(r);
    cr_assert_eq(sim_count("create_job", 0), 1);

    /* the caller may opt in */
    sim_fault("{\"status\": 500, \"count\": 1, \"path\": \"^/api/jobs$\", \"method\": \"POST\"}");
    call.retry_unsafe = 1;
    cr_assert_eq(tp_client_call(c, TP_OP_CREATE_JOB, &call, &r), 0);
    assert_ok(r, "create_job with retry_unsafe");
    cr_assert_eq(r->attempts, 2);
    tp_result_free(r);
    json_decref(b);
    tp_client_free(c);
    sim_down();
}

Test(client_retry, repeats_a_create_refused_with_503)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    json_t *b = obj("{\"jobDetails\": \"x\"}");
    struct tp_call call = {.body = b};
    sim_fault("{\"status\": 503, \"count\": 1, \"path\": \"^/api/jobs$\", \"method\": \"POST\"}");
    cr_assert_eq(tp_client_call(c, TP_OP_CREATE_JOB, &call, &r), 0);
    assert_ok(r, "create_job after a 503");
    cr_assert_eq(r->attempts, 2);
    cr_assert_not_null(tp_result_guid(r));
    tp_result_free(r);
    json_decref(b);
    tp_client_free(c);
    sim_down();
}

Test(client_retry, calls_a_create_that_timed_out_after_sending_unknown)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_options o;
    fast_options(&o);
    o.api_key = "K-test";
    o.timeout_ms = 1000;
    struct tp_client *c = tp_client_new(&o, NULL);
    struct tp_result *r = NULL;
    json_t *b = obj("{\"jobDetails\": \"slow\"}");
    struct tp_call call = {.body = b};
    sim_fault("{\"delayMs\": 3000, \"count\": 1, \"path\": \"^/api/jobs$\", \"method\": \"POST\"}");
    cr_assert_eq(tp_client_call(c, TP_OP_CREATE_JOB, &call, &r), 0);
    cr_assert_eq(r->outcome, TP_UNKNOWN);
    cr_assert_eq(r->error.kind, TP_ERR_TRANSPORT);
    cr_assert_eq(r->error.curl_code, CURLE_OPERATION_TIMEDOUT);
    cr_assert_eq(r->attempts, 1, "not repeated: it may have been processed");
    tp_result_free(r);
    json_decref(b);
    tp_client_free(c);
    sim_down();
}

Test(client_retry, says_try_later_when_the_server_is_unreachable)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    sim_down(); /* its port is now closed */
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    json_t *b = obj("{\"jobDetails\": \"x\"}");
    struct tp_call call = {.body = b};
    cr_assert_eq(tp_client_call(c, TP_OP_CREATE_JOB, &call, &r), 0);
    cr_assert_eq(r->outcome, TP_TRYLATER, "a refused connection processed nothing");
    cr_assert_eq(r->error.kind, TP_ERR_TRANSPORT);
    cr_assert_eq(r->error.curl_code, CURLE_COULDNT_CONNECT);
    cr_assert_eq(r->attempts, 4);
    tp_result_free(r);
    json_decref(b);
    tp_client_free(c);
}

/* Errors ------------------------------------------------------------------------------- */

Test(client_errors, surfaces_the_field_errors_of_a_400)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    json_t *b = obj("{\"siteId\": 1}");
    struct tp_call call = {.body = b};
    cr_assert_eq(tp_client_call(c, TP_OP_CREATE_JOB, &call, &r), 0);
    cr_assert_eq(r->outcome, TP_FAIL);
    cr_assert_eq(r->status, 400);
    cr_assert_eq(r->attempts, 1);
    cr_assert_not_null(r->error.title);
    json_t *msgs = json_object_get(r->error.errors, "jobDetails");
    cr_assert_geq(json_array_size(msgs), 1, "jobDetails has a message");
    cr_assert_null(r->body);
    tp_result_free(r);
    json_decref(b);
    tp_client_free(c);
    sim_down();
}

Test(client_errors, reports_a_404_without_retrying)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    struct tp_call call = {.id = "6f1c2d3e-0000-4000-8000-00000000abcd"};
    cr_assert_eq(tp_client_call(c, TP_OP_GET_JOB, &call, &r), 0);
    cr_assert_eq(r->outcome, TP_FAIL);
    cr_assert_eq(r->status, 404);
    cr_assert_eq(r->attempts, 1);
    cr_assert_eq(r->error.kind, TP_ERR_HTTP);
    tp_result_free(r);
    cr_assert_eq(sim_count("get_job", 404), 1);
    tp_client_free(c);
    sim_down();
}

Test(client_errors, answers_raw_requests_and_names_their_op)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    static const struct tp_kv q[] = {{"pageSize", "5"}};
    struct tp_call call = {.query = q, .nquery = 1};
    cr_assert_eq(tp_client_call_raw(c, "get", "/API/Sites?page=1", &call, &r), 0);
    assert_ok(r, "GET /API/Sites");
    cr_assert_not_null(r->op);
    cr_assert_str_eq(r->op->name, "list_sites");
    cr_assert(json_is_array(json_object_get(r->body, "data")));
    tp_result_free(r);
    tp_client_free(c);
    sim_down();
}

/* Filters, sorting, paging ------------------------------------------------------------ */

static const char hostile_name[] = "Gamma,|()\\/i";

static void make_site(struct tp_client *c, const char *name, int code)
{
    struct tp_result *r = NULL;
    json_t *b = json_pack("{s:s, s:i}", "name", name, "code", code);
    struct tp_call call = {.body = b};
    cr_assert_eq(tp_client_call(c, TP_OP_CREATE_SITE, &call, &r), 0);
    assert_ok(r, name);
    tp_result_free(r);
    json_decref(b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names of the sites the filter selects, in byte order, joined with ';'. */
static char *names_for(struct tp_client *c, const struct tp_filter *f)
{
    const char *expr = tp_filter_str(f);
    cr_assert_not_null(expr);
    struct tp_kv q[] = {{"filter", expr}};
    struct tp_call call = {.query = q, .nquery = 1};
    struct tp_result *r = NULL;
    cr_assert_eq(tp_client_call_all(c, TP_OP_LIST_SITES, &call, 50, 1000, &r), 0);
    assert_ok(r, expr);
    json_t *data = json_object_get(r->body, "data");
    size_t n = json_array_size(data);
    const char **names = calloc(n + 1, sizeof *names);
    for (size_t i = 0; i < n; i++)
        names[i] = json_string_value(json_object_get(json_array_get(data, i), "name"));
    qsort(names, n, sizeof *names, cmp_str);
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&b, ';');
        buf_puts(&b, names[i]);
    }
    free(names);
    tp_result_free(r);
    return buf_steal(&b);
}

static void expect_names(struct tp_client *c, const char *field, enum tp_filter_op op,
                         const char *value, int nocase, const char *want)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_where(f, field, op, value, nocase), 0);
    char *got = names_for(c, f);
    cr_assert_str_eq(got, want, "%s %s %s%s: got [%s], want [%s]", field,
                     tp_filter_op_token(op), value, nocase ? "/i" : "", got, want);
    free(got);
    tp_filter_free(f);
}

Test(client_filter, applies_every_operator_and_escapes_values_exactly)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    make_site(c, "Alpha", 1);
    make_site(c, "Beta", 2);
    make_site(c, "alpine", 3);
    make_site(c, hostile_name, 4);
    make_site(c, "Gamma", 5);
    make_site(c, "Gamma,x", 6);

    const char *all_but_beta = "Alpha;Gamma;Gamma,x;Gamma,|()\\/i;alpine";
    expect_names(c, "name", TP_F_EQ, "Beta", 0, "Beta");
    expect_names(c, "name", TP_F_NE, "Beta", 0, all_but_beta);
    expect_names(c, "code", TP_F_LT, "2", 0, "Alpha");
    expect_names(c, "code", TP_F_GT, "5", 0, "Gamma,x");
    expect_names(c, "code", TP_F_GE, "5", 0, "Gamma;Gamma,x");
    expect_names(c, "code", TP_F_LE, "2", 0, "Alpha;Beta");
    expect_names(c, "name", TP_F_CONTAINS, "lp", 0, "Alpha;alpine");
    expect_names(c, "name", TP_F_NOT_CONTAINS, "lp", 0, "Beta;Gamma;Gamma,x;Gamma,|()\\/i");
    expect_names(c, "name", TP_F_STARTS, "Al", 0, "Alpha");
    expect_names(c, "name", TP_F_STARTS, "Al", 1, "Alpha;alpine");
    expect_names(c, "name", TP_F_NOT_STARTS, "Al", 0, "Beta;Gamma;Gamma,x;Gamma,|()\\/i;alpine");
    expect_names(c, "name", TP_F_ENDS, "ta", 0, "Beta");
    expect_names(c, "name", TP_F_NOT_ENDS, "ta", 0, all_but_beta);
    expect_names(c, "name", TP_F_EQ, "ALPHA", 1, "Alpha");

    /* values holding the grammar's own characters match exactly the record that has them */
    expect_names(c, "name", TP_F_EQ, hostile_name, 0, hostile_name);
    expect_names(c, "name", TP_F_EQ, "Gamma,x", 0, "Gamma,x");
    expect_names(c, "name", TP_F_CONTAINS, "|()\\/i", 0, hostile_name);
    expect_names(c, "name", TP_F_EQ, "Gamma|name==Beta", 0, "");

    /* OR and groups: (code==1|code==4),name=*a */
    struct tp_filter *f = tp_filter_new();
    tp_filter_open(f);
    tp_filter_where(f, "code", TP_F_EQ, "1", 0);
    tp_filter_or(f);
    tp_filter_where(f, "code", TP_F_EQ, "4", 0);
    tp_filter_close(f);
    tp_filter_where(f, "name", TP_F_CONTAINS, "a", 0);
    char *got = names_for(c, f);
    cr_assert_str_eq(got, "Alpha;Gamma,|()\\/i");
    free(got);
    tp_filter_free(f);
    tp_client_free(c);
    sim_down();
}

Test(client_pager, walks_every_page_in_order)
{
    static const char *const args[] = {"--api-key", "K-test", NULL};
    sim_up(args);
    struct tp_client *c = key_client();
    struct tp_result *r = NULL;
    for (int i = 0; i < 25; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%02d", i);
        json_t *b = json_pack("{s:s, s:s}", "name", name, "resourceType", "Engineer");
        struct tp_call call = {.body = b};
        cr_assert_eq(tp_client_call(c, TP_OP_CREATE_RESOURCE, &call, &r), 0);
        assert_ok(r, name);
        tp_result_free(r);
        json_decref(b);
    }
    struct tp_order *o = tp_order_new();
    cr_assert_eq(tp_order_add(o, "name", 1), 0);
    struct tp_kv q[] = {{"orderBy", tp_order_str(o)}};
    struct tp_call call = {.query = q, .nquery = 1};
    cr_assert_eq(tp_client_call_all(c, TP_OP_LIST_RESOURCES, &call, 10, 1000, &r), 0);
    assert_ok(r, "list_all resources");
    json_t *data = json_object_get(r->body, "data");
    cr_assert_eq(json_array_size(data), 25);
    cr_assert_eq(json_integer_value(json_object_get(r->body, "count")), 25);
    cr_assert_eq(r->truncated, 0);
    for (size_t i = 0; i < 25; i++) {
        char want[16];
        snprintf(want, sizeof want, "r%02zu", 24 - i);
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(data, i), "name")),
                         want, "item %zu out of order", i);
    }
    tp_result_free(r);
    cr_assert_eq(sim_count("list_resources", 200), 3, "three pages of at most ten");

    /* bounded by max_items */
    cr_assert_eq(tp_client_call_all(c, TP_OP_LIST_RESOURCES, &call, 10, 12, &r), 0);
    assert_ok(r, "list_all resources, max 12");
    cr_assert_eq(json_array_size(json_object_get(r->body, "data")), 12);
    cr_assert_eq(r->truncated, 1);
    tp_result_free(r);
    cr_assert_eq(sim_count("list_resources", 200), 5, "two more pages, not three");

    /* a failing page fails the walk */
    sim_fault("{\"status\": 403, \"count\": 1, \"path\": \"^/api/resources$\"}");
    cr_assert_eq(tp_client_call_all(c, TP_OP_LIST_RESOURCES, &call, 10, 1000, &r), 0);
    cr_assert_eq(r->outcome, TP_FAIL);
    cr_assert_eq(r->status, 403);
    cr_assert_null(r->body);
    tp_result_free(r);

    cr_assert_eq(tp_client_call_all(c, TP_OP_GET_JOB, NULL, 10, 100, &r), -1,
                 "only list operations page");
    tp_order_free(o);
    tp_client_free(c);
    sim_down();
}
