/* pipeline: stored request → adapter → events → rules and correlation → plans → events and
 * deliveries in the store; see pipeline.h. Correlation state changes made while planning one
 * request are buffered and written in the same transaction as its events, so a crash can
 * never leave a key's state ahead of the deliveries that act on it. */
#include "pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "common/log.h"
#include "common/util.h"
#include "correlate.h"
#include "mail/loop.h"
#include "metrics.h"

#define PIPELINE_BATCH 64
/* A batch stops after this long, so a burst of big payloads never holds the loop (and the
 * answers to senders waiting on it) for more than a few milliseconds. */
#define PIPELINE_SLICE_MS 1
/* The per-sender mail breaker: more than this many mails from one address within the window
 * is the signature of two auto-responders answering each other. */
#define PIPELINE_MAIL_MAX 20
#define PIPELINE_MAIL_WINDOW_MS (10 * 60 * 1000)
#define PIPELINE_MAIL_SENDERS 10000

struct pipeline {
    struct event_base *base;
    struct store *store;
    const struct tb_config *cfg;
    rules_t *rules;
    void (*planned)(void *arg);
    void *arg;
    struct event *timer;      /* low priority: runs when no request is waiting for I/O */
    struct event *guard;      /* normal priority: bounds how long a busy intake can starve it */
    int64_t last_run;         /* monotonic ms of the last batch */
    int unbatched;            /* the last batch failed: settle the next one request by request */
    size_t fetch;             /* requests to read for the next batch */
    struct mail_loop_breaker *breaker;
};

/* A correlation store that reads through to the SQLite store and buffers writes. */
struct pipeline_corr {
    struct store *store;
    json_t *pending; /* key → state */
};

static json_t *pipeline_corr_get(void *ud, const char *key)
{
    struct pipeline_corr *c = ud;
    json_t *v = json_object_get(c->pending, key);
    if (v)
        return json_deep_copy(v);
    json_t *state = NULL;
    if (store_correlation_get(c->store, key, &state) != STORE_OK)
        return NULL;
    return state;
}

static int pipeline_corr_put(void *ud, const char *key, json_t *state)
{
    struct pipeline_corr *c = ud;
    return json_object_set_new(c->pending, key, json_deep_copy(state));
}

static void pipeline_count(const char *name, const char *labels)
{
    metrics_add(name, labels, 1);
}

/* A person's mail that trips the per-sender breaker is treated as machine mail from then on
 * (rules ignore auto mail, and nothing answers it). Judged by arrival time, so a backlog
 * processed after a restart is not mistaken for a burst. */
static void pipeline_mail_breaker(pipeline_t *p, json_t *ev, int64_t received_at)
{
    if (!p->breaker || !json_is_false(json_object_get(ev, "auto")))
        return;
    const char *from = json_string_value(json_object_get(json_object_get(ev, "from"), "address"));
    if (!from || !*from)
        return;
    if (mail_loop_breaker_hit(p->breaker, from, received_at) == MAIL_BREAKER_TRIP) {
        json_object_set_new(ev, "auto", json_true());
        json_object_set_new(ev, "auto_reason", json_string("sender over its mail rate (loop breaker)"));
        metrics_add("trackbridge_mail_loop_breaks_total", NULL, 1);
        log_warn("mail loop breaker tripped", "sender", from);
    }
}

/* Runs one stored request through adapter, rules and correlation and persists the outcome.
 * Returns 0 when the request is settled (processed or rejected), -1 to try again later. */
static int pipeline_one(pipeline_t *p, struct store_request_row *row)
{
    int rc = -1;
    const struct tb_source *src = config_source(p->cfg, row->source);
    if (!src) {
        store_request_reject(p->store, row->id, "the source is no longer configured");
        return 0;
    }
    char stamp[32];
    util_iso8601(row->received_at, stamp);
    json_t *headers = row->headers ? json_incref(row->headers) : json_object();
    json_t *query = json_object_get(headers, ":query");
    struct adapter_input in = {
        .body = (const char *)row->body,
        .body_len = row->body_len,
        .content_type = row->content_type,
        .headers = headers,
        .query = query,
        .source = row->source,
        .received_at = stamp,
        .options = src->options,
    };
    struct adapter_limits lim = {(size_t)p->cfg->limits.json_depth,
                                 (size_t)p->cfg->limits.events_per_request};
    json_t *events = NULL;
    char *err = NULL;
    if (adapter_run(src->adapter, &in, &lim, &events, &err) != ADAPTER_OK) {
        log_warn("request rejected by its adapter", "request", row->public_id, "source",
                 row->source, "error", err);
        store_request_reject(p->store, row->id, err ? err : "rejected");
        free(err);
        json_decref(headers);
        return 0;
    }

    struct pipeline_corr corr = {p->store, json_object()};
    struct plan_corr_store cs = {pipeline_corr_get, pipeline_corr_put, &corr};
    size_t nev = json_array_size(events);
    /* One stored event per plan (an event matching several rules with continue gives
     * several), or one per event that matched nothing. */
    size_t cap = nev * 2 + 1, used = 0;
    struct store_event_in *evs = calloc(cap, sizeof *evs);
    json_t **plan_js = calloc(cap, sizeof *plan_js);
    struct store_delivery_in **dls = calloc(cap, sizeof *dls);
    plan_t **all_plans = NULL;
    size_t nall = 0;
    /* Per source event: {"rules": [the rules tried, in order, and whether they matched]}. */
    json_t **traces = calloc(nev ? nev : 1, sizeof *traces);
    if (!evs || !plan_js || !dls || !traces)
        goto out;
    int64_t now = util_now_ms();
    for (size_t i = 0; i < nev; i++) {
        json_t *ev = json_array_get(events, i);
        pipeline_mail_breaker(p, ev, row->received_at);
        struct rules_input ri = {ev, headers, row->source};
        plan_t **plans = NULL;
        size_t np = 0;
        json_t *tried = json_array();
        traces[i] = json_object();
        if (traces[i] && tried)
            json_object_set(traces[i], "rules", tried);
        int crc = corr_process_traced(p->rules, &ri, &cs, now, &plans, &np, tried, &err);
        json_decref(tried);
        if (crc < 0) {
            log_warn("correlation state unavailable", "request", row->public_id, "error", err);
            free(err);
            err = NULL;
            for (size_t k = 0; k < np; k++)
                plan_free(plans[k]);
            free(plans);
            goto out;
        }
        plan_t **grown = np ? realloc(all_plans, (nall + np) * sizeof *grown) : all_plans;
        if (np && !grown) {
            for (size_t k = 0; k < np; k++)
                plan_free(plans[k]);
            free(plans);
            goto out;
        }
        all_plans = grown;
        for (size_t k = 0; k < np; k++)
            all_plans[nall++] = plans[k];
        const char *status = json_string_value(json_object_get(ev, "status"));
        if (np == 0) {
            if (used + 1 > cap)
                goto out;
            struct store_event_in *e = &evs[used++];
            e->seq = (int)(used - 1);
            e->status = status;
            e->key = json_string_value(json_object_get(ev, "key"));
            e->event = ev;
            e->trace = traces[i];
            e->state = STORE_EV_IGNORED;
            pipeline_count("trackbridge_events_total", "outcome=\"unmatched\"");
        }
        for (size_t k = 0; k < np; k++) {
            plan_t *pl = plans[k];
            if (used + 1 > cap) {
                size_t ncap = cap * 2;
                struct store_event_in *e2 = realloc(evs, ncap * sizeof *e2);
                json_t **p2 = e2 ? realloc(plan_js, ncap * sizeof *p2) : NULL;
                struct store_delivery_in **d2 = p2 ? realloc(dls, ncap * sizeof *d2) : NULL;
                if (e2)
                    evs = e2;
                if (p2)
                    plan_js = p2;
                if (!d2)
                    goto out;
                dls = d2;
                memset(evs + cap, 0, (ncap - cap) * sizeof *evs);
                memset(plan_js + cap, 0, (ncap - cap) * sizeof *plan_js);
                memset(dls + cap, 0, (ncap - cap) * sizeof *dls);
                cap = ncap;
            }
            size_t slot = used++;
            struct store_event_in *e = &evs[slot];
            plan_js[slot] = plan_to_json(pl);
            size_t nsteps = plan_ignored(pl) ? 0 : plan_step_count(pl);
            if (nsteps) {
                dls[slot] = calloc(nsteps, sizeof **dls);
                if (!dls[slot])
                    goto out;
                for (size_t s = 0; s < nsteps; s++) {
                    dls[slot][s].step = (int)s;
                    dls[slot][s].op = plan_step_op(plan_step_at(pl, s));
                    dls[slot][s].next_at = plan_not_before(pl);
                }
            }
            e->seq = (int)slot;
            e->status = status;
            e->key = plan_key(pl);
            e->event = ev;
            e->rule = plan_rule(pl);
            e->plan = plan_js[slot];
            e->trace = traces[i];
            e->state = plan_ignored(pl) ? STORE_EV_IGNORED : STORE_EV_PLANNED;
            e->deliveries = dls[slot];
            e->n_deliveries = nsteps;
            char labels[200];
            snprintf(labels, sizeof labels, "outcome=\"%s\"", plan_phase(pl));
            pipeline_count("trackbridge_events_total", labels);
            char rl[200], esc[160];
            metrics_escape(plan_rule(pl), esc, sizeof esc);
            snprintf(rl, sizeof rl, "rule=\"%s\"", esc);
            pipeline_count("trackbridge_rule_matches_total", rl);
            log_info("event planned", "request", row->public_id, "rule", plan_rule(pl), "key",
                     plan_key(pl), "phase", plan_phase(pl), "note", plan_note(pl));
        }
        free(plans);
    }
    enum store_status st = store_request_processed_corr(p->store, row->id, evs, used, NULL,
                                                        corr.pending);
    if (st == STORE_OK || st == STORE_CONFLICT)
        rc = 0;
    else
        log_warn("cannot record the events of a request", "request", row->public_id, "error",
                 store_status_str(st));
out:
    for (size_t i = 0; i < nall; i++)
        plan_free(all_plans[i]);
    free(all_plans);
    for (size_t i = 0; plan_js && dls && i < cap; i++) {
        json_decref(plan_js[i]);
        free(dls[i]);
    }
    free(plan_js);
    free(dls);
    free(evs);
    for (size_t i = 0; traces && i < nev; i++)
        json_decref(traces[i]);
    free(traces);
    json_decref(corr.pending);
    json_decref(events);
    json_decref(headers);
    return rc;
}

/* Settles at most one batch of new requests. Returns how many, -1 when the store failed;
 * *more is set when the batch was full or cut short by its time slice (more may be waiting). */
static int pipeline_batch(pipeline_t *p, int *more)
{
    struct store_request_row *rows = NULL;
    size_t n = 0;
    *more = 0;
    size_t want = p->fetch ? p->fetch : PIPELINE_BATCH;
    if (store_requests_new(p->store, 0, want, &rows, &n) != STORE_OK)
        return -1;
    /* The batch's requests share one transaction; each is still settled all or nothing. */
    int batched = n > 1 && !p->unbatched && store_batch_begin(p->store) == STORE_OK;
    p->unbatched = 0;
    int settled = 0, out_of_time = 0;
    int64_t until = util_mono_ms() + PIPELINE_SLICE_MS;
    for (size_t i = 0; i < n; i++) {
        if (pipeline_one(p, &rows[i]) < 0)
            break;
        settled++;
        if (i + 1 < n && util_mono_ms() >= until) { /* the rest comes back next turn */
            out_of_time = 1;
            break;
        }
    }
    /* Read about as many as a slice settles, not a full batch of bodies for nothing. */
    p->fetch = out_of_time ? (size_t)settled * 2 + 2 : want * 2;
    if (p->fetch > PIPELINE_BATCH)
        p->fetch = PIPELINE_BATCH;
    store_request_rows_free(rows, n);
    if (batched && store_batch_commit(p->store) != STORE_OK) {
        /* Nothing of the batch was kept: its requests are still new and come back, one
         * transaction each so that one that cannot be stored holds back only itself. */
        log_warn("cannot commit a batch of planned requests; they will be planned again");
        p->unbatched = 1;
        p->last_run = util_mono_ms();
        return -1;
    }
    if (settled && p->planned)
        p->planned(p->arg);
    *more = settled > 0 && (n == want || out_of_time);
    p->last_run = util_mono_ms();
    return settled;
}

int pipeline_run_now(pipeline_t *p)
{
    int total = 0, more = 1;
    while (more) {
        int n = pipeline_batch(p, &more);
        if (n < 0)
            return total ? total : -1;
        total += n;
    }
    return total;
}

/* One batch per turn of the loop, at a lower priority than network I/O: under a burst the
 * loop answers senders first (their requests are durable once stored) and plans in the gaps;
 * the guard below still plans a batch every PIPELINE_GUARD_MS when the gaps never come. */
static void pipeline_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pipeline_t *p = arg;
    int more = 0;
    int n = pipeline_batch(p, &more);
    /* Poll again later in any case: a request that could not be settled is retried. */
    struct timeval tv = {n < 0 ? 1 : more ? 0 : 2, 0};
    evtimer_add(p->timer, &tv);
}

#define PIPELINE_GUARD_MS 200

static void pipeline_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pipeline_t *p = arg;
    if (util_mono_ms() - p->last_run >= PIPELINE_GUARD_MS)
        pipeline_tick(-1, 0, p);
}

pipeline_t *pipeline_new(struct event_base *base, struct store *st, const struct tb_config *cfg,
                         rules_t *rules, void (*planned)(void *arg), void *arg)
{
    pipeline_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base = base;
    p->store = st;
    p->cfg = cfg;
    p->rules = rules_ref(rules);
    p->planned = planned;
    p->arg = arg;
    p->timer = evtimer_new(base, pipeline_tick, p);
    p->guard = event_new(base, -1, EV_PERSIST, pipeline_guard, p);
    if (!p->timer || !p->guard) {
        if (p->timer)
            event_free(p->timer);
        if (p->guard)
            event_free(p->guard);
        rules_unref(p->rules);
        free(p);
        return NULL;
    }
    /* The lowest priority the base has (all of them when it has only one). */
    event_priority_set(p->timer, event_base_get_npriorities(base) - 1);
    struct timeval every = {0, PIPELINE_GUARD_MS * 1000};
    event_add(p->guard, &every);
    p->breaker = mail_loop_breaker_new(PIPELINE_MAIL_MAX, PIPELINE_MAIL_WINDOW_MS,
                                       PIPELINE_MAIL_SENDERS);
    metrics_declare("trackbridge_events_total", "counter",
                    "Events planned, by correlation outcome (open, repeat, resolve, ...).");
    metrics_declare("trackbridge_rule_matches_total", "counter", "Rule matches by rule.");
    metrics_declare("trackbridge_mail_loop_breaks_total", "counter",
                    "Mails treated as machine mail because their sender exceeded its rate.");
    pipeline_kick(p);
    return p;
}

void pipeline_set(pipeline_t *p, const struct tb_config *cfg, rules_t *rules)
{
    rules_t *old = p->rules;
    p->cfg = cfg;
    p->rules = rules_ref(rules);
    rules_unref(old);
}

void pipeline_kick(pipeline_t *p)
{
    struct timeval tv = {0, 0};
    evtimer_add(p->timer, &tv);
}

rules_t *pipeline_rules(pipeline_t *p) { return p->rules; }

plan_t *pipeline_rebuild_plan(json_t *plan_json, void *arg, char **err)
{
    pipeline_t *p = arg;
    struct plan_resolver r = {
        .find = rules_find_step,
        .ud = p->rules,
        .tmpls = rules_templates(p->rules),
        .vars = rules_vars(p->rules),
        .keep = rules_ref(p->rules),
        .release = rules_release,
    };
    return plan_from_json(plan_json, &r, err);
}

static const char *const pipeline_req_states[] = {"new", "processed", "rejected"};
static const char *const pipeline_ev_states[] = {"planned", "done", "ignored", "failed"};
static const char *const pipeline_dlv_states[] = {"pending", "inflight", "done",
                                                  "retry",   "dead",     "unknown"};

json_t *pipeline_explain(struct store *st, const char *id)
{
    struct store_request_row rq = {0};
    int64_t num;
    enum store_status s = util_is_uuid(id) ? store_request_get_public(st, id, &rq)
                          : util_parse_i64(id, 1, INT64_MAX, &num) == 0
                              ? store_request_get(st, num, &rq)
                              : STORE_NOTFOUND;
    if (s != STORE_OK) {
        store_request_row_clear(&rq);
        return NULL;
    }
    char t[32];
    util_iso8601(rq.received_at, t);
    json_t *out = json_pack("{s:s, s:I, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:I}", "id",
                            rq.public_id, "number", (json_int_t)rq.id, "source", rq.source,
                            "received_at", t, "remote_addr", rq.remote_addr, "content_type",
                            rq.content_type, "state", pipeline_req_states[rq.state], "error",
                            rq.error, "bytes", (json_int_t)rq.body_len);
    json_t *evs = json_array();
    struct store_event_row *rows = NULL;
    size_t n = 0;
    if (store_events_for_request(st, rq.id, &rows, &n) == STORE_OK) {
        for (size_t i = 0; i < n; i++) {
            struct store_event_row *e = &rows[i];
            json_t *plan = e->plan;
            json_t *je = json_pack(
                "{s:I, s:i, s:s?, s:s?, s:s?, s:s, s:O?, s:O?, s:O?, s:O?}", "id",
                (json_int_t)e->id, "seq", e->seq, "status", e->status, "key", e->key, "rule",
                e->rule, "state", pipeline_ev_states[e->state], "phase",
                json_object_get(plan, "phase"), "note", json_object_get(plan, "note"),
                "captures", json_object_get(plan, "captures"), "event", e->event);
            char ec[32];
            util_iso8601(e->created_at, ec);
            json_object_set_new(je, "planned_at", json_string(ec));
            json_t *jd = json_array();
            struct store_delivery_row *d = NULL;
            size_t nd = 0;
            if (store_deliveries_for_event(st, e->id, &d, &nd) == STORE_OK) {
                for (size_t k = 0; k < nd; k++) {
                    char u[32];
                    util_iso8601(d[k].updated_at, u);
                    /* Timings: ms from the event's planning to this step's last change. */
                    json_int_t after = (json_int_t)(d[k].updated_at - e->created_at);
                    json_array_append_new(
                        jd, json_pack("{s:I, s:i, s:s, s:s, s:i, s:i, s:s?, s:O?, s:s, s:I}",
                                      "id", (json_int_t)d[k].id, "step", d[k].step, "op",
                                      d[k].op, "state", pipeline_dlv_states[d[k].state],
                                      "attempts", d[k].attempts, "status", d[k].last_status,
                                      "error", d[k].last_error, "result", d[k].response,
                                      "updated_at", u, "ms_after_planning", after));
                }
                store_delivery_rows_free(d, nd);
            }
            json_object_set_new(je, "deliveries", jd);
            if (e->trace)
                json_object_set(je, "trace", e->trace);
            json_array_append_new(evs, je);
        }
        store_event_rows_free(rows, n);
    }
    json_object_set_new(out, "events", evs);
    store_request_row_clear(&rq);
    return out;
}

void pipeline_free(pipeline_t *p)
{
    if (!p)
        return;
    if (p->timer)
        event_free(p->timer);
    if (p->guard)
        event_free(p->guard);
    mail_loop_breaker_free(p->breaker);
    rules_unref(p->rules);
    free(p);
}
