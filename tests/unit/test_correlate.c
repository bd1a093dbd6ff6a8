/* Unit tests for correlate: the state machine (open, repeat, resolve, reopen window,
 * min_interval, flap window, resolved without state) and the pipeline over the in-memory
 * store with the fake TrackplanFM, including two sources landing on the same key. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "correlate.h"

#define MIN (60 * 1000LL)

static const struct rule_corr plain = {0, 0, 0};

static json_t *decide(json_t *state, int firing, int64_t now, const struct rule_corr *p,
                      int has_reopen, enum corr_action want)
{
    struct corr_decision d;
    corr_decide(state, "k", "r", firing, now, p, has_reopen, &d);
    cr_expect_eq(d.action, want, "action %s, expected %s (%s)", corr_action_name(d.action),
                 corr_action_name(want), d.note);
    json_t *next = d.state ? json_incref(d.state) : (state ? json_incref(state) : NULL);
    corr_decision_clear(&d);
    json_decref(state);
    return next;
}

static const char *status_of(json_t *s)
{
    return json_string_value(json_object_get(s, "status"));
}

Test(correlate, a_first_firing_opens_and_repeats_do_nothing_more)
{
    json_t *s = decide(NULL, 1, 0, &plain, 0, CORR_OPEN);
    cr_expect_str_eq(status_of(s), "open");
    cr_expect_eq(json_integer_value(json_object_get(s, "gen")), 1);
    s = decide(s, 1, MIN, &plain, 0, CORR_REPEAT);
    s = decide(s, 1, 2 * MIN, &plain, 0, CORR_REPEAT);
    cr_expect_eq(json_integer_value(json_object_get(s, "count")), 3);
    cr_expect_eq(json_integer_value(json_object_get(s, "gen")), 1, "repeats keep the generation");
    json_decref(s);
}

Test(correlate, a_resolve_completes_and_a_second_resolve_does_nothing)
{
    json_t *s = decide(NULL, 1, 0, &plain, 0, CORR_OPEN);
    s = decide(s, 0, 5 * MIN, &plain, 0, CORR_RESOLVE);
    cr_expect_str_eq(status_of(s), "completed");
    cr_expect_eq(json_integer_value(json_object_get(s, "resolved_at")), 5 * MIN);
    s = decide(s, 0, 6 * MIN, &plain, 0, CORR_NONE);
    json_decref(s);
}

Test(correlate, a_resolve_without_an_open_key_does_nothing)
{
    struct corr_decision d;
    corr_decide(NULL, "k", "r", 0, 0, &plain, 0, &d);
    cr_expect_eq(d.action, CORR_NONE);
    cr_expect_null(d.state);
    cr_expect(strstr(d.note, "no open job") != NULL);
    corr_decision_clear(&d);
}

Test(correlate, repeats_within_min_interval_are_suppressed)
{
    struct rule_corr p = {0, 10 * MIN, 0};
    json_t *s = decide(NULL, 1, 0, &p, 0, CORR_OPEN);
    s = decide(s, 1, 5 * MIN, &p, 0, CORR_SUPPRESS);
    s = decide(s, 1, 11 * MIN, &p, 0, CORR_REPEAT);
    s = decide(s, 1, 12 * MIN, &p, 0, CORR_SUPPRESS);
    json_decref(s);
}

Test(correlate, a_firing_within_the_reopen_window_reopens_and_later_opens_anew)
{
    struct rule_corr p = {30 * MIN, 0, 0};
    json_t *s = decide(NULL, 1, 0, &p, 1, CORR_OPEN);
    json_object_set_new(s, "job_guid", json_string("g1"));
    s = decide(s, 0, 10 * MIN, &p, 1, CORR_RESOLVE);
    s = decide(s, 1, 20 * MIN, &p, 1, CORR_REOPEN);
    cr_expect_str_eq(status_of(s), "open");
    cr_expect_str_eq(json_string_value(json_object_get(s, "job_guid")), "g1",
                     "reopen keeps the ids");
    s = decide(s, 0, 25 * MIN, &p, 1, CORR_RESOLVE);
    s = decide(s, 1, 25 * MIN + 31 * MIN, &p, 1, CORR_OPEN);
    /* Without a reopen list, a firing after completion always opens anew. */
    s = decide(s, 0, 60 * MIN, &p, 0, CORR_RESOLVE);
    s = decide(s, 1, 61 * MIN, &p, 0, CORR_OPEN);
    json_decref(s);
}

Test(correlate, a_resolve_is_held_for_the_flap_window_and_a_firing_cancels_it)
{
    struct rule_corr p = {0, 0, 2 * MIN};
    json_t *s = decide(NULL, 1, 0, &p, 0, CORR_OPEN);
    struct corr_decision d;
    corr_decide(s, "k", "r", 0, 10 * MIN, &p, 0, &d);
    cr_expect_eq(d.action, CORR_RESOLVE);
    cr_expect(d.deferred);
    cr_expect_eq(d.not_before, 12 * MIN);
    cr_expect_str_eq(status_of(d.state), "resolving");
    json_decref(s);
    s = json_incref(d.state);
    corr_decision_clear(&d);
    s = decide(s, 1, 11 * MIN, &p, 0, CORR_FLAP);
    cr_expect_str_eq(status_of(s), "open");
    s = decide(s, 1, 12 * MIN, &p, 0, CORR_REPEAT);
    json_decref(s);
}

/* ---- the pipeline ------------------------------------------------------------------------- */

static struct tb_source srcs[] = {
    {(char *)"bms", (char *)"bms", NULL, NULL, 0, 0, 0},
    {(char *)"email", (char *)"email", NULL, NULL, 0, 0, 0},
};

static const char *rules_yaml =
    "rules:\n"
    "  - name: by-webhook\n"
    "    sources: [bms]\n"
    "    key: \"bms:{{site}}/{{point}}\"\n"
    "    open:\n"
    "      - op: create_job\n        save_as: job\n        body: {jobDetails: \"{{point}}\"}\n"
    "      - op: create_job_task\n        save_as: alarm\n"
    "        body: {jobGuid: \"{{result.job}}\", description: attend}\n"
    "    repeat:\n"
    "      - op: update_job_task\n        id: \"{{corr.tasks.alarm}}\"\n"
    "        body: {description: \"still in alarm\"}\n"
    "    resolve:\n"
    "      - op: complete_job\n        id: \"{{corr.job_guid}}\"\n"
    "        body: {completedNote: normal}\n"
    "  - name: by-mail\n"
    "    sources: [email]\n"
    "    when: {field: subject, regex: '^NORMAL (?<s>\\w+)/(?<p>\\S+)$'}\n"
    "    key: \"bms:{{s}}/{{p}}\"\n"
    "    status: resolved\n"
    "    resolve:\n"
    "      - op: complete_job\n        id: \"{{corr.job_guid}}\"\n"
    "        body: {completedNote: \"normal by mail\"}\n";

struct world {
    rules_t *rules;
    corr_mem_t *mem;
    struct plan_corr_store cs;
    struct plan_fake fake;
    struct plan_backend be;
};

static void world_init(struct world *w)
{
    yamlx_diags_t dg;
    yamlx_diags_init(&dg);
    struct rules_opts o;
    memset(&o, 0, sizeof o);
    o.sources = srcs;
    o.nsources = 2;
    w->rules = rules_load_text("c.yaml", rules_yaml, &o, &dg);
    for (size_t i = 0; i < dg.n; i++)
        cr_log_info("diag: %s", dg.msg[i]);
    yamlx_diags_free(&dg);
    cr_assert_not_null(w->rules);
    w->mem = corr_mem_new();
    w->cs = corr_mem_store(w->mem);
    memset(&w->fake, 0, sizeof w->fake);
    w->be = plan_fake_backend(&w->fake);
}

static void world_free(struct world *w)
{
    rules_unref(w->rules);
    corr_mem_free(w->mem);
}

/* Runs one event through; returns the trace of the (single) plan as new JSON, and its phase
 * through *phase (static storage of the plan is gone: copied). */
static json_t *run(struct world *w, const char *source, json_t *ev, int64_t now, char *phase)
{
    struct rules_input in = {ev, NULL, source};
    plan_t **plans = NULL;
    size_t n = 0;
    char *err = NULL;
    cr_assert_eq(corr_process(w->rules, &in, &w->cs, now, &plans, &n, &err), 0);
    cr_assert_eq(n, 1, "one rule matches");
    snprintf(phase, 32, "%s", plan_phase(plans[0]));
    json_t *trace = json_array();
    cr_assert_eq(plan_run(plans[0], &w->be, &w->cs, now, trace, &err), PLAN_DONE, "%s",
                 err ? err : "");
    plan_free(plans[0]);
    free(plans);
    json_decref(ev);
    return trace;
}

static const char *path_of(json_t *trace, size_t i)
{
    return json_string_value(json_object_get(json_array_get(trace, i), "path"));
}

Test(correlate, open_repeat_and_resolve_reach_the_same_job_and_task)
{
    struct world w;
    world_init(&w);
    char phase[32];
    json_t *t = run(&w, "bms",
                    json_pack("{s:s, s:s, s:s}", "status", "firing", "site", "HQ", "point", "AHU1"),
                    0, phase);
    cr_expect_str_eq(phase, "open");
    cr_expect_eq(json_array_size(t), 2);
    json_decref(t);
    t = run(&w, "bms",
            json_pack("{s:s, s:s, s:s}", "status", "firing", "site", "HQ", "point", "AHU1"), MIN,
            phase);
    cr_expect_str_eq(phase, "repeat");
    cr_expect_str_eq(path_of(t, 0), "/api/JobTasks/Update/00000000-0000-4000-8000-000000000002");
    json_decref(t);
    t = run(&w, "bms",
            json_pack("{s:s, s:s, s:s}", "status", "resolved", "site", "HQ", "point", "AHU1"),
            2 * MIN, phase);
    cr_expect_str_eq(phase, "resolve");
    cr_expect_str_eq(path_of(t, 0), "/api/jobs/complete/00000000-0000-4000-8000-000000000001");
    json_decref(t);
    json_t *st = json_object_get(corr_mem_states(w.mem), "bms:HQ/AHU1");
    cr_expect_str_eq(status_of(st), "completed");
    world_free(&w);
}

Test(correlate, a_key_rendered_the_same_by_another_source_lands_on_the_same_job)
{
    struct world w;
    world_init(&w);
    char phase[32];
    json_t *t = run(&w, "bms",
                    json_pack("{s:s, s:s, s:s}", "status", "firing", "site", "HQ", "point", "AHU1"),
                    0, phase);
    json_decref(t);
    /* The head-end's mail says the same point is normal again. */
    t = run(&w, "email", json_pack("{s:s, s:s}", "status", "firing", "subject", "NORMAL HQ/AHU1"),
            MIN, phase);
    cr_expect_str_eq(phase, "resolve");
    cr_expect_str_eq(path_of(t, 0), "/api/jobs/complete/00000000-0000-4000-8000-000000000001");
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(json_array_get(t, 0), "body"), "completedNote")),
                     "normal by mail");
    json_decref(t);
    world_free(&w);
}

Test(correlate, a_new_incarnation_forgets_the_previous_jobs_ids_when_it_runs)
{
    struct world w;
    world_init(&w);
    char phase[32];
    json_decref(run(&w, "bms",
                    json_pack("{s:s, s:s, s:s}", "status", "firing", "site", "HQ", "point", "P"), 0,
                    phase));
    json_decref(run(&w, "bms",
                    json_pack("{s:s, s:s, s:s}", "status", "resolved", "site", "HQ", "point", "P"),
                    MIN, phase));
    json_t *t =
        run(&w, "bms", json_pack("{s:s, s:s, s:s}", "status", "firing", "site", "HQ", "point", "P"),
            2 * MIN, phase);
    cr_expect_str_eq(phase, "open");
    json_t *task = json_array_get(t, 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(task, "body"), "jobGuid")),
                     "00000000-0000-4000-8000-000000000003");
    json_decref(t);
    json_t *st = json_object_get(corr_mem_states(w.mem), "bms:HQ/P");
    cr_expect_str_eq(json_string_value(json_object_get(st, "job_guid")),
                     "00000000-0000-4000-8000-000000000003");
    world_free(&w);
}

Test(correlate, a_deferred_resolve_is_cancelled_by_a_firing_in_the_window)
{
    struct world w;
    world_init(&w);
    struct rule_corr p = {0, 0, 2 * MIN};
    json_t *open = NULL;
    struct corr_decision d;
    corr_decide(NULL, "k", "by-webhook", 1, 0, &p, 0, &d);
    open = json_incref(d.state);
    corr_decision_clear(&d);
    corr_decide(open, "k", "by-webhook", 0, MIN, &p, 0, &d);
    cr_assert(d.deferred);
    json_t *resolving = json_incref(d.state);
    struct plan_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.rule = "by-webhook";
    ctx.phase = "resolve";
    ctx.key = "k";
    ctx.correlated = 1;
    ctx.gen = d.gen;
    ctx.deferred = 1;
    ctx.not_before = d.not_before;
    json_t *ev = json_object();
    ctx.event = ev;
    plan_t *plan =
        plan_new(&ctx, rule_steps(rules_find(w.rules, "by-webhook"), RULE_RESOLVE), NULL, NULL);
    corr_decision_clear(&d);
    /* Still resolving with the same generation: the plan runs and completes the key. */
    json_t *copy = json_deep_copy(resolving);
    cr_expect_eq(plan_begin(plan, copy, 3 * MIN), 1);
    cr_expect_str_eq(status_of(copy), "completed");
    json_decref(copy);
    /* A firing in the window moved the key on: the plan is cancelled. */
    corr_decide(resolving, "k", "by-webhook", 1, 2 * MIN - 1, &p, 0, &d);
    cr_expect_eq(d.action, CORR_FLAP);
    cr_expect_eq(plan_begin(plan, d.state, 3 * MIN), 0);
    corr_decision_clear(&d);
    plan_free(plan);
    json_decref(ev);
    json_decref(open);
    json_decref(resolving);
    world_free(&w);
}

Test(correlate, an_event_no_rule_matches_gives_no_plan)
{
    struct world w;
    world_init(&w);
    json_t *ev = json_pack("{s:s}", "subject", "hello");
    struct rules_input in = {ev, NULL, "email"};
    plan_t **plans = NULL;
    size_t n = 5;
    char *err = NULL;
    cr_expect_eq(corr_process(w.rules, &in, &w.cs, 0, &plans, &n, &err), 0);
    cr_expect_eq(n, 0);
    free(plans);
    json_decref(ev);
    world_free(&w);
}
