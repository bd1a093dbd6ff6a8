/* delivery: the engine that turns stored plan steps into TrackplanFM calls; see delivery.h.
 * One job = one delivery row = one step of one event's plan. A job rebuilds the plan from the
 * event, replays the results of the steps before it (their stored responses), renders its
 * step against the key's current correlation state, sends it, and records the outcome and
 * the new correlation state in one store transaction.
 *
 * Store writes are batched per turn of the loop: the due deliveries of a scan are claimed
 * (marked in flight) in one transaction before any is sent, and the completions of a turn are
 * recorded together by a flush at the highest priority, before anything else runs. A crash
 * before that flush leaves them in flight, which a restart turns into unknown outcomes: a
 * create is then looked for by its marker before it is sent again. */
#include "delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "mail/ref.h"
#include "mail/send.h"
#include "metrics.h"
#include "ratelimit.h"
#include "trackplan/filter.h"

struct dlv {
    struct event_base *base;
    struct store *store;
    struct tp_client *client;
    struct dlv_opts o;
    dlv_plan_fn rebuild;
    void *rebuild_arg;
    struct event *timer;
    rl_bucket_t bucket;
    size_t inflight;
    int draining;
    json_t *cache;            /* look-up answers: "GET path?query" → {"exp": ms, "v": body} */
    int failures;             /* consecutive temporary failures (breaker) */
    int64_t breaker_until;    /* ms (monotonic); 0 when closed */
    struct event *flush_ev;   /* highest priority: records the completions of a turn */
    struct dlv_job *done_head, **done_tail; /* completed, not yet recorded */
};

struct dlv_job {
    dlv_t *d;
    struct store_delivery_row row;
    plan_t *plan;
    json_t *results;          /* results of earlier steps */
    json_t *corr;             /* the key's correlation state (object), NULL if uncorrelated */
    json_t *req;              /* the rendered request */
    char ref[32];             /* [tb:N] marker of a create */
    int searching;            /* the in-flight call is the unknown-outcome search */
    char *cache_key;          /* set when the call is a cacheable look-up */
    int64_t t0;
    int begun;                /* plan_begin changed j->corr (step 0) */
    int done;                 /* completed: recorded by the next flush */
    int done_status;
    json_t *done_value;       /* the step's result, stored as the delivery's response */
    int done_applied;         /* the result was applied to j->corr */
    json_t *recorded_corr;    /* the correlation state recorded with the completion */
    /* The event's next step (in rows), claimed with the completion; NULL when none was. */
    struct store_delivery_row *chained;
    struct store_delivery_row *rows; /* the event's deliveries as read at the start */
    size_t nrows;
    struct dlv_job *next;     /* in the flush list */
};

/* Creates whose text carries the marker, the field it goes in, and how to search for it. */
static const struct {
    const char *op, *field;
    enum tp_op_id list;
    const char *id_field;
} dlv_marked[] = {
    {"create_job", "jobDetails", TP_OP_LIST_JOBS, "guid"},
    {"create_job_request", "description", TP_OP_LIST_JOB_REQUESTS, "jobRequestNumber"},
    {"create_job_task", "description", TP_OP_LIST_JOB_TASKS, "guid"},
};

static void dlv_schedule(dlv_t *d, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(d->timer, &tv);
}

void dlv_ref(int64_t delivery_id, char out[32])
{
    snprintf(out, 32, "[tb:%lld]", (long long)delivery_id);
}

static int dlv_marked_index(const char *op)
{
    for (size_t i = 0; i < sizeof dlv_marked / sizeof dlv_marked[0]; i++)
        if (strcmp(dlv_marked[i].op, op) == 0)
            return (int)i;
    return -1;
}

static void dlv_count(const char *op, const char *outcome)
{
    char labels[200];
    snprintf(labels, sizeof labels, "op=\"%s\",outcome=\"%s\"", op, outcome);
    metrics_add("trackbridge_deliveries_total", labels, 1);
}

static void dlv_job_free(struct dlv_job *j)
{
    if (!j)
        return;
    store_delivery_row_clear(&j->row);
    plan_free(j->plan);
    json_decref(j->results);
    json_decref(j->corr);
    json_decref(j->req);
    json_decref(j->done_value);
    json_decref(j->recorded_corr);
    store_delivery_rows_free(j->rows, j->nrows);
    free(j->cache_key);
    free(j);
}

/* The cache key of a look-up request: path and query, query keys in order. */
static char *dlv_cache_key(json_t *req)
{
    json_t *q = json_object_get(req, "query");
    char *qs = q ? json_dumps(q, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *k = util_asprintf("%s?%s", json_string_value(json_object_get(req, "path")),
                            qs ? qs : "");
    free(qs);
    return k;
}

/* A fresh cached answer for key (borrowed), or NULL. */
static json_t *dlv_cache_get(dlv_t *d, const char *key)
{
    json_t *e = json_object_get(d->cache, key);
    if (!e)
        return NULL;
    if (json_integer_value(json_object_get(e, "exp")) < util_mono_ms()) {
        json_object_del(d->cache, key);
        return NULL;
    }
    return json_object_get(e, "v");
}

static void dlv_cache_put(dlv_t *d, const char *key, json_t *value)
{
    if (d->o.lookup_ttl_ms <= 0 || d->o.lookup_max == 0 || !value)
        return;
    if (json_object_size(d->cache) >= d->o.lookup_max) {
        /* Drop what has expired; when everything is fresh, start over (bounded memory). */
        const char *k;
        json_t *e, *tmp;
        int64_t now = util_mono_ms();
        json_object_foreach_safe(d->cache, tmp, k, e)
        {
            if (json_integer_value(json_object_get(e, "exp")) < now)
                json_object_del(d->cache, k);
        }
        if (json_object_size(d->cache) >= d->o.lookup_max)
            json_object_clear(d->cache);
    }
    json_object_set_new(d->cache, key,
                        json_pack("{s:I, s:O}", "exp",
                                  (json_int_t)(util_mono_ms() + d->o.lookup_ttl_ms), "v",
                                  value));
}

static void dlv_finish(struct dlv_job *j)
{
    dlv_t *d = j->d;
    if (j->done) {
        /* Still in flight until the flush has recorded it. */
        j->next = NULL;
        if (!d->done_head)
            event_active(d->flush_ev, EV_TIMEOUT, 0);
        *d->done_tail = j;
        d->done_tail = &j->next;
        return;
    }
    d->inflight--;
    dlv_job_free(j);
    if (!d->draining)
        dlv_schedule(d, 0);
}

static void dlv_dead(struct dlv_job *j, int status, const char *why)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)j->row.id);
    log_warn("delivery dead-lettered", "delivery", id, "op", j->row.op, "key", j->row.corr_key,
             "error", why);
    store_delivery_dead(j->d->store, j->row.id, status, why);
    dlv_count(j->row.op, "dead");
    metrics_add("trackbridge_dead_letters_total", NULL, 1);
}

/* Marks j done; dlv_finish hands it to the next flush, which records it. */
static void dlv_done(struct dlv_job *j, int status, json_t *result, int applied)
{
    j->done = 1;
    j->done_status = status;
    j->done_value = result ? json_incref(result) : NULL;
    j->done_applied = applied;
}

/* The correlation state to record with a completion: the key's state as it is now (the
 * pipeline may have moved it on while the call was out: a resolve, a repeat) with this step's
 * own effects applied again, so they never undo what was decided meanwhile. NULL when the
 * step changed nothing. */
static json_t *dlv_corr_to_record(struct dlv_job *j)
{
    int creates = j->done_applied && dlv_marked_index(j->row.op) >= 0;
    if (!j->row.corr_key || !j->corr || (!j->begun && !creates))
        return NULL;
    json_t *now = NULL;
    if (store_correlation_get(j->d->store, j->row.corr_key, &now) != STORE_OK || !now)
        return json_incref(j->corr);
    if (j->begun)
        plan_begin(j->plan, now, util_now_ms());
    if (creates) {
        json_t *scratch = plan_results_new();
        char *err = NULL;
        plan_step_apply(j->plan, (size_t)j->row.step, j->done_value, scratch, now, &err);
        free(err);
        json_decref(scratch);
    }
    return now;
}

/* Records j as done with its correlation state. */
static enum store_status dlv_record_done(struct dlv_job *j)
{
    json_t *corr = dlv_corr_to_record(j);
    enum store_status st = store_delivery_done(j->d->store, j->row.id, j->done_status,
                                               j->done_value, corr);
    json_decref(j->recorded_corr);
    j->recorded_corr = st == STORE_OK ? corr : NULL;
    if (st != STORE_OK) {
        json_decref(corr);
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)j->row.id);
        log_warn("cannot record a delivery as done", "delivery", id, "error",
                 store_status_str(st));
    }
    /* Not recorded but sent: as an unknown outcome it is checked before anything is sent
     * again (a create by its marker) instead of staying in flight until a restart. */
    if (st == STORE_UNAVAILABLE || st == STORE_FULL)
        store_delivery_unknown(j->d->store, j->row.id,
                               "unknown: the completion could not be recorded");
    return st;
}

static void dlv_run(struct dlv_job *j);

/* The event's next step when it may follow j's at once, else NULL. */
static struct store_delivery_row *dlv_next_row(struct dlv_job *j)
{
    dlv_t *d = j->d;
    if (!j->done_applied || d->draining || d->breaker_until)
        return NULL;
    struct store_delivery_row *next = NULL;
    for (size_t i = 0; i < j->nrows; i++)
        if (j->rows[i].step == j->row.step + 1 && (!next || j->rows[i].id < next->id))
            next = &j->rows[i];
    if (!next || next->next_at > util_now_ms() ||
        !(next->state == STORE_DLV_PENDING || next->state == STORE_DLV_RETRY ||
          next->state == STORE_DLV_UNKNOWN))
        return NULL;
    return next;
}

/* With j's completion in the flush's transaction: claims the event's next step for j, so it
 * runs as soon as that transaction commits, without a scan, nor reading the plan again. */
static void dlv_claim_next(struct dlv_job *j)
{
    dlv_t *d = j->d;
    struct store_delivery_row *next = dlv_next_row(j);
    if (!next || (d->o.rate > 0 && !rl_take(&d->bucket, util_mono_ms(), 1)))
        return;
    if (store_delivery_inflight(d->store, next->id) == STORE_OK)
        j->chained = next;
}

/* Moves j on to the step claimed by dlv_claim_next and runs it. */
static void dlv_chain(struct dlv_job *j)
{
    struct store_delivery_row *next = j->chained;
    j->chained = NULL;
    store_delivery_row_clear(&j->row);
    j->row = *next;
    memset(next, 0, sizeof *next);
    next->step = -1;
    j->row.attempts++;
    if (j->recorded_corr) {
        json_decref(j->corr);
        j->corr = j->recorded_corr;
        j->recorded_corr = NULL;
    } else if (j->row.corr_key) {
        json_decref(j->corr);
        j->corr = NULL;
        if (store_correlation_get(j->d->store, j->row.corr_key, &j->corr) != STORE_OK)
            j->corr = json_object();
    }
    json_decref(j->req);
    j->req = NULL;
    json_decref(j->done_value);
    j->done_value = NULL;
    free(j->cache_key);
    j->cache_key = NULL;
    j->done = j->done_applied = j->begun = j->searching = 0;
    j->t0 = util_mono_ms();
    dlv_run(j);
}

/* Records the completions of this turn in one transaction. */
static void dlv_flush(dlv_t *d)
{
    struct dlv_job *list = d->done_head;
    if (!list)
        return;
    d->done_head = NULL;
    d->done_tail = &d->done_head;
    int batched = store_batch_begin(d->store) == STORE_OK;
    for (struct dlv_job *j = list; j; j = j->next)
        if (dlv_record_done(j) == STORE_OK && batched)
            dlv_claim_next(j);
    if (batched && store_batch_commit(d->store) != STORE_OK) {
        /* Nothing of the batch was kept: record them one by one. */
        log_warn("cannot record a batch of completed deliveries; recording them one by one");
        for (struct dlv_job *j = list; j; j = j->next) {
            j->chained = NULL;
            dlv_record_done(j);
        }
    }
    while (list) {
        struct dlv_job *j = list;
        list = j->next;
        dlv_count(j->row.op, "done");
        d->failures = 0;
        if (j->chained) {
            dlv_chain(j);
            continue;
        }
        d->inflight--;
        dlv_job_free(j);
    }
    if (!d->draining)
        dlv_schedule(d, 0);
}

static void dlv_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dlv_flush(arg);
}

/* A temporary failure: retry later with backoff, or a dead letter when attempts are spent. */
static void dlv_later(struct dlv_job *j, int status, int64_t retry_after_ms, const char *why,
                      int unknown)
{
    dlv_t *d = j->d;
    if (j->row.attempts >= d->o.max_attempts) {
        char *msg = util_asprintf("gave up after %d attempts: %s", j->row.attempts, why);
        dlv_dead(j, status, msg ? msg : why);
        free(msg);
        return;
    }
    int64_t cap = d->o.backoff_base_ms;
    for (int i = 1; i < j->row.attempts && cap < d->o.backoff_cap_ms; i++)
        cap *= 2;
    if (cap > d->o.backoff_cap_ms)
        cap = d->o.backoff_cap_ms;
    int64_t delay = (int64_t)util_random_below((uint64_t)cap + 1); /* full jitter */
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    /* An unknown outcome is remembered in the error ("unknown: ...") so that the next attempt
     * searches for the record before creating it again. */
    char *msg = unknown ? util_asprintf("unknown: %s", why) : NULL;
    if (unknown)
        store_delivery_unknown(d->store, j->row.id, msg ? msg : why);
    store_delivery_retry(d->store, j->row.id, util_now_ms() + delay, status, msg ? msg : why);
    free(msg);
    dlv_count(j->row.op, unknown ? "unknown" : "retry");
    metrics_add("trackbridge_retries_total", NULL, 1);
    if (d->o.breaker_failures > 0 && ++d->failures >= d->o.breaker_failures) {
        d->breaker_until = util_mono_ms() + d->o.breaker_cooldown_ms;
        char n[16];
        snprintf(n, sizeof n, "%d", d->failures);
        log_warn("circuit breaker open: TrackplanFM keeps failing", "failures", n);
    }
}

static char *dlv_error_text(const struct tp_result *r)
{
    buf_t b;
    buf_init(&b, 4096);
    tp_error_format(&r->error, &b);
    return buf_steal(&b);
}

/* The value a step's result is: the GUID, number or object the operation returned. */
static json_t *dlv_result_value(const struct tp_result *r)
{
    return r->body ? json_incref(r->body) : json_null();
}

static void dlv_apply_and_done(struct dlv_job *j, int status, json_t *value)
{
    char *err = NULL;
    if (plan_step_apply(j->plan, (size_t)j->row.step, value, j->results, j->corr, &err) < 0) {
        dlv_dead(j, status, err ? err : "the step's result could not be applied");
        free(err);
        return;
    }
    dlv_done(j, status, value, 1);
}

static void dlv_send(struct dlv_job *j);

static void dlv_call_done(struct tp_result *res, void *arg)
{
    struct dlv_job *j = arg;
    char labels[160];
    snprintf(labels, sizeof labels, "op=\"%s\"", j->row.op);
    metrics_observe("trackbridge_api_seconds", labels, (double)res->elapsed_ms / 1000.0);
    if (j->searching) {
        j->searching = 0;
        if (res->outcome == TP_OK) {
            int mi = dlv_marked_index(j->row.op);
            json_t *first = json_array_get(json_object_get(res->body, "data"), 0);
            json_t *id = first ? json_object_get(first, dlv_marked[mi].id_field) : NULL;
            if (id) {
                log_info("lost create found by its reference", "op", j->row.op, "ref", j->ref);
                json_t *v = json_incref(id);
                dlv_apply_and_done(j, 200, v);
                json_decref(v);
                tp_result_free(res);
                dlv_finish(j);
                return;
            }
            tp_result_free(res);
            dlv_send(j); /* not there: the create never happened, send it */
            return;
        }
        char *why = dlv_error_text(res);
        dlv_later(j, (int)res->status, res->retry_after_ms, why ? why : "search failed", 1);
        free(why);
        tp_result_free(res);
        dlv_finish(j);
        return;
    }
    switch (res->outcome) {
    case TP_OK: {
        json_t *v = dlv_result_value(res);
        if (j->cache_key)
            dlv_cache_put(j->d, j->cache_key, v);
        dlv_apply_and_done(j, (int)res->status, v);
        json_decref(v);
        break;
    }
    case TP_FAIL: {
        char *why = dlv_error_text(res);
        dlv_dead(j, (int)res->status, why ? why : "failed");
        free(why);
        break;
    }
    case TP_TRYLATER:
    case TP_UNKNOWN: {
        char *why = dlv_error_text(res);
        dlv_later(j, (int)res->status, res->retry_after_ms, why ? why : "temporary failure",
                  res->outcome == TP_UNKNOWN && dlv_marked_index(j->row.op) >= 0);
        free(why);
        break;
    }
    }
    tp_result_free(res);
    dlv_finish(j);
}

/* Sends the rendered request of j through the client. */
static void dlv_send(struct dlv_job *j)
{
    json_t *req = j->req;
    const char *method = json_string_value(json_object_get(req, "method"));
    const char *path = json_string_value(json_object_get(req, "path"));
    json_t *q = json_object_get(req, "query");
    struct tp_kv kv[18];
    size_t nq = 0;
    /* List operations need page and pageSize (guide §2): a look-up wants the first page. */
    const struct tp_op *op = method && path ? tp_op_match(method, path) : NULL;
    if (op && op->paged) {
        if (!json_object_get(q, "page"))
            kv[nq++] = (struct tp_kv){"page", "1"};
        if (!json_object_get(q, "pageSize"))
            kv[nq++] = (struct tp_kv){"pageSize", "20"};
    }
    const char *k;
    json_t *v;
    char nums[18][32];
    json_object_foreach(q, k, v)
    {
        if (nq >= 18)
            break;
        if (json_is_string(v)) {
            kv[nq].key = k;
            kv[nq].value = json_string_value(v);
            nq++;
        } else if (json_is_integer(v)) {
            snprintf(nums[nq], sizeof nums[nq], "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            kv[nq].key = k;
            kv[nq].value = nums[nq];
            nq++;
        }
    }
    struct tp_call call = {.query = kv, .nquery = nq, .body = json_object_get(req, "body")};
    if (tp_client_request(j->d->client, method, path, &call, dlv_call_done, j) < 0) {
        dlv_later(j, 0, 1000, "the client queue is full", 0);
        dlv_finish(j);
    }
}

/* The unknown-outcome check: list the records whose text holds the marker. */
static void dlv_search(struct dlv_job *j, int mi)
{
    struct tp_filter *f = tp_filter_new();
    if (!f || tp_filter_where(f, dlv_marked[mi].field, TP_F_CONTAINS, j->ref, 0) < 0) {
        tp_filter_free(f);
        dlv_send(j);
        return;
    }
    struct tp_kv kv[3] = {{"page", "1"}, {"pageSize", "5"}, {"filter", tp_filter_str(f)}};
    struct tp_call call = {.query = kv, .nquery = 3};
    j->searching = 1;
    if (tp_client_op(j->d->client, dlv_marked[mi].list, &call, dlv_call_done, j) < 0) {
        j->searching = 0;
        dlv_later(j, 0, 1000, "the client queue is full", 1);
        dlv_finish(j);
    }
    tp_filter_free(f);
}

/* Adds the [tb:N] marker to a create's text field. */
static void dlv_mark(struct dlv_job *j, int mi)
{
    json_t *body = json_object_get(j->req, "body");
    if (!json_is_object(body))
        return;
    const char *field = dlv_marked[mi].field;
    const char *text = json_string_value(json_object_get(body, field));
    char *marked = util_asprintf("%s%s%s", text ? text : "", text && *text ? " " : "", j->ref);
    if (marked)
        json_object_set_new(body, field, json_string(marked));
    free(marked);
}

/* Was step 0 of this event's plan cancelled (a deferred resolve that is no longer due)? */
static int dlv_rebuild_results(struct dlv_job *j, int *cancelled)
{
    struct store_delivery_row *rows = NULL;
    size_t n = 0;
    *cancelled = 0;
    if (store_deliveries_for_event(j->d->store, j->row.event_id, &rows, &n) != STORE_OK)
        return -1;
    json_t *scratch = json_object();
    for (size_t i = 0; i < n; i++) {
        if (rows[i].step >= j->row.step)
            continue;
        if (rows[i].step == 0 &&
            json_is_true(json_object_get(rows[i].response, "cancelled")))
            *cancelled = 1;
        char *err = NULL;
        plan_step_apply(j->plan, (size_t)rows[i].step, rows[i].response, j->results, scratch,
                        &err);
        free(err);
    }
    json_decref(scratch);
    j->rows = rows;
    j->nrows = n;
    return 0;
}

static void dlv_start(dlv_t *d, struct store_delivery_row *row)
{
    struct dlv_job *j = calloc(1, sizeof *j);
    if (!j) {
        store_delivery_retry(d->store, row->id, util_now_ms() + 1000, 0, "out of memory");
        store_delivery_row_clear(row);
        return;
    }
    j->d = d;
    j->row = *row;
    memset(row, 0, sizeof *row);
    j->t0 = util_mono_ms();
    d->inflight++;

    json_t *plan_js = NULL;
    char *err = NULL;
    if (store_event_plan(d->store, j->row.event_id, &plan_js) != STORE_OK || !plan_js) {
        json_decref(plan_js);
        dlv_dead(j, 0, "the event or its plan is missing");
        goto finish;
    }
    j->plan = d->rebuild(plan_js, d->rebuild_arg, &err);
    json_decref(plan_js);
    if (!j->plan) {
        dlv_dead(j, 0, err ? err : "the plan cannot be rebuilt");
        goto finish;
    }
    j->results = plan_results_new();
    int cancelled = 0;
    if (dlv_rebuild_results(j, &cancelled) < 0) {
        dlv_later(j, 0, 1000, "the store is busy", 0);
        goto finish;
    }
    if (j->row.corr_key) {
        if (store_correlation_get(d->store, j->row.corr_key, &j->corr) != STORE_OK)
            j->corr = json_object();
    }
    if (cancelled) {
        json_t *c = json_pack("{s:b}", "cancelled", 1);
        dlv_done(j, 0, c, 0);
        json_decref(c);
        goto finish;
    }
    free(err);
    dlv_run(j);
    return;
finish:
    free(err);
    dlv_finish(j);
}

/* Runs j's step: its plan, the results of the steps before it and the key's correlation
 * state are in j. */
static void dlv_run(struct dlv_job *j)
{
    dlv_t *d = j->d;
    char *err = NULL;
    dlv_ref(j->row.id, j->ref);
    if (j->row.step == 0) {
        if (!plan_begin(j->plan, j->corr, util_now_ms())) {
            json_t *c = json_pack("{s:b}", "cancelled", 1);
            dlv_done(j, 0, c, 0);
            json_decref(c);
            goto finish;
        }
        j->begun = 1;
    }
    const char *reason = NULL;
    enum plan_render pr = plan_step_render(j->plan, (size_t)j->row.step, j->corr, j->results,
                                           &j->req, &reason, &err);
    if (pr == PLAN_RENDER_FAIL) {
        dlv_dead(j, 0, err ? err : "the step cannot be rendered");
        goto finish;
    }
    if (pr != PLAN_RENDER_OK) {
        dlv_apply_and_done(j, 0, NULL);
        goto finish;
    }
    const char *op = json_string_value(json_object_get(j->req, "op"));
    if (op && strcmp(op, "send_mail") == 0 && !d->o.mail_from) {
        /* No smtp block: mail is not part of this installation; the step is a no-op. */
        log_info("send_mail skipped: no smtp configured", "key", j->row.corr_key);
        json_t *q = json_pack("{s:b, s:s}", "queued", 0, "reason", "no smtp configured");
        dlv_apply_and_done(j, 0, q);
        json_decref(q);
        goto finish;
    }
    if (op && strcmp(op, "send_mail") == 0) {
        json_t *msg = json_object_get(j->req, "body");
        /* The ticket named in our subject ([JR-1042], [Job 4711]) goes into our Message-ID, so
         * a reply finds its ticket even when its subject was rewritten. */
        struct mail_ref ref;
        const char *subject = json_string_value(json_object_get(msg, "subject"));
        if (json_is_object(msg) && !json_object_get(msg, "ref") && subject &&
            mail_ref_match_subject(mail_ref_set_default(), subject, &ref) == 1)
            json_object_set_new(msg, "ref", json_pack("{s:s, s:s}", "kind",
                                                      mail_ref_kind_name(ref.kind), "number",
                                                      ref.number));
        if (j->row.corr_key && json_is_object(msg))
            json_object_set_new(msg, "corr_key", json_string(j->row.corr_key));
        /* RFC 3834: a mail that answers a person's mail is auto-replied, others generated. */
        if (json_is_object(msg) && !json_object_get(msg, "auto"))
            json_object_set_new(msg, "auto",
                                json_string(json_object_get(msg, "in_reply_to")
                                                ? "auto-replied"
                                                : "auto-generated"));
        /* The mail enters the outbox in the transaction that records the step done: a crash
         * can neither lose it nor, by sending the step again, queue it twice. */
        if (store_batch_begin(d->store) != STORE_OK) {
            dlv_later(j, 0, 1000, "the store is busy", 0);
            goto finish;
        }
        enum store_status st = mail_send_enqueue(d->store, msg, d->o.mail_from, 0, NULL, &err);
        if (st == STORE_OK) {
            json_t *q = json_pack("{s:b}", "queued", 1);
            if (plan_step_apply(j->plan, (size_t)j->row.step, q, j->results, j->corr, &err) < 0)
                st = STORE_INVALID;
            else
                dlv_done(j, 0, q, 1);
            json_decref(q);
        }
        if (st == STORE_OK && dlv_record_done(j) == STORE_OK &&
            store_batch_commit(d->store) == STORE_OK) {
            j->done = 0; /* recorded */
            dlv_count(j->row.op, "done");
            goto finish;
        }
        store_batch_rollback(d->store); /* INVALID when the failed commit already closed it */
        j->done = 0;
        if (st == STORE_INVALID)
            dlv_dead(j, 0, err ? err : "the mail cannot be built");
        else
            dlv_later(j, 0, 1000, "the outbox is unavailable", 0);
        goto finish;
    }
    const char *method = json_string_value(json_object_get(j->req, "method"));
    if (method && strcmp(method, "GET") == 0 && d->o.lookup_ttl_ms > 0) {
        j->cache_key = dlv_cache_key(j->req);
        json_t *hit = j->cache_key ? dlv_cache_get(d, j->cache_key) : NULL;
        if (hit) {
            metrics_add("trackbridge_lookup_cache_total", "result=\"hit\"", 1);
            json_t *v = json_incref(hit);
            dlv_apply_and_done(j, 200, v);
            json_decref(v);
            goto finish;
        }
        metrics_add("trackbridge_lookup_cache_total", "result=\"miss\"", 1);
    }
    int mi = op ? dlv_marked_index(op) : -1;
    if (mi >= 0)
        dlv_mark(j, mi);
    if (mi >= 0 && j->row.state == STORE_DLV_UNKNOWN)
        dlv_search(j, mi);
    else if (mi >= 0 && j->row.last_error && strncmp(j->row.last_error, "unknown:", 8) == 0)
        dlv_search(j, mi);
    else
        dlv_send(j);
    free(err);
    return;
finish:
    free(err);
    dlv_finish(j);
}

static void dlv_scan(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dlv_t *d = arg;
    if (d->draining)
        return;
    int64_t mono = util_mono_ms();
    if (d->breaker_until && mono < d->breaker_until) {
        dlv_schedule(d, d->breaker_until - mono);
        return;
    }
    d->breaker_until = 0;
    dlv_flush(d); /* completions first: they free their lanes */
    size_t room = d->o.concurrency > 0 && (size_t)d->o.concurrency > d->inflight
                      ? (size_t)d->o.concurrency - d->inflight
                      : 0;
    int64_t next = d->o.poll_ms > 0 ? d->o.poll_ms : 500;
    if (room > 0) {
        struct store_delivery_row *rows = NULL;
        size_t n = 0;
        if (store_deliveries_due(d->store, util_now_ms(), room, &rows, &n) == STORE_OK) {
            size_t take = 0;
            for (; take < n; take++) {
                /* The global rate limit: a delivery not started now stays due. */
                if (d->o.rate > 0 && !rl_take(&d->bucket, util_mono_ms(), 1)) {
                    long wait_s = rl_retry_after_s(&d->bucket, util_mono_ms());
                    int64_t per = (int64_t)(1000.0 / d->o.rate);
                    next = per > 0 && per < wait_s * 1000 ? per : wait_s * 1000;
                    break;
                }
            }
            /* Claimed in one transaction, committed before the first is sent. */
            unsigned char *claimed = calloc(take ? take : 1, 1);
            int batched = claimed && take > 1 && store_batch_begin(d->store) == STORE_OK;
            for (size_t i = 0; claimed && i < take; i++)
                claimed[i] = store_delivery_inflight(d->store, rows[i].id) == STORE_OK;
            if (batched && store_batch_commit(d->store) != STORE_OK) {
                memset(claimed, 0, take);
                next = 1000;
            }
            for (size_t i = 0; claimed && i < take; i++) {
                if (!claimed[i])
                    continue;
                rows[i].attempts++;
                dlv_start(d, &rows[i]);
            }
            free(claimed);
            store_delivery_rows_free(rows, n);
        }
    }
    dlv_schedule(d, next);
}

dlv_t *dlv_new(struct event_base *base, struct store *st, struct tp_client *client,
               const struct dlv_opts *o, dlv_plan_fn rebuild, void *rebuild_arg)
{
    dlv_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->base = base;
    d->store = st;
    d->client = client;
    d->o = *o;
    if (d->o.concurrency < 1)
        d->o.concurrency = 1;
    if (d->o.max_attempts < 1)
        d->o.max_attempts = 1;
    if (d->o.backoff_base_ms < 1)
        d->o.backoff_base_ms = 1000;
    if (d->o.backoff_cap_ms < d->o.backoff_base_ms)
        d->o.backoff_cap_ms = d->o.backoff_base_ms;
    d->rebuild = rebuild;
    d->rebuild_arg = rebuild_arg;
    d->o.mail_from = NULL;
    dlv_set_mail_from(d, o->mail_from);
    if (d->o.rate > 0)
        rl_init(&d->bucket, d->o.rate, d->o.rate < 1 ? 1 : d->o.rate);
    d->timer = evtimer_new(base, dlv_scan, d);
    d->flush_ev = event_new(base, -1, 0, dlv_flush_cb, d);
    if (d->flush_ev)
        event_priority_set(d->flush_ev, 0);
    d->done_tail = &d->done_head;
    d->cache = json_object();
    if (!d->timer || !d->flush_ev || !d->cache) {
        if (d->timer)
            event_free(d->timer);
        if (d->flush_ev)
            event_free(d->flush_ev);
        json_decref(d->cache);
        free((char *)d->o.mail_from);
        free(d);
        return NULL;
    }
    metrics_declare("trackbridge_deliveries_total", "counter",
                    "Delivery attempts by operation and outcome (done, retry, unknown, dead).");
    metrics_declare("trackbridge_retries_total", "counter", "Deliveries scheduled for retry.");
    metrics_declare("trackbridge_dead_letters_total", "counter", "Deliveries dead-lettered.");
    metrics_declare("trackbridge_lookup_cache_total", "counter",
                    "Look-ups answered from the cache (hit) or by TrackplanFM (miss).");
    metrics_declare("trackbridge_api_seconds", "histogram",
                    "TrackplanFM call latency by operation, retries included.");
    dlv_schedule(d, 0);
    return d;
}

void dlv_set_mail_from(dlv_t *d, const char *from)
{
    free((char *)d->o.mail_from);
    d->o.mail_from = from ? util_strdup(from) : NULL;
}

void dlv_kick(dlv_t *d)
{
    if (!d->draining)
        dlv_schedule(d, 0);
}

void dlv_drain(dlv_t *d)
{
    d->draining = 1;
    evtimer_del(d->timer);
}

size_t dlv_inflight(const dlv_t *d) { return d->inflight; }

void dlv_free(dlv_t *d)
{
    if (!d)
        return;
    d->draining = 1;
    dlv_flush(d);
    if (d->flush_ev)
        event_free(d->flush_ev);
    if (d->timer)
        event_free(d->timer);
    json_decref(d->cache);
    free((char *)d->o.mail_from);
    free(d);
}
