/* Unit tests for plan: rendering (no JSON injection, typed leaves, ids, filters with Gridify
 * escaping), look-ups and their fallbacks, send_mail, serialisation, the fake TrackplanFM
 * and the look-up cache. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "trackplan/filter.h"

/* Compiles a YAML action list; fails the test on errors. */
static struct plan_steps compile(const char *yaml, yamlx_doc_t **doc_out)
{
    char *err = NULL;
    yamlx_doc_t *doc = yamlx_parse(yaml, strlen(yaml), "s.yaml", NULL, &err);
    cr_assert_not_null(doc, "%s", err ? err : "");
    yamlx_diags_t dg;
    yamlx_diags_init(&dg);
    struct plan_compile_ctx cx = {doc, &dg, NULL, "test", "actions"};
    struct plan_steps st;
    int rc = plan_steps_compile(yamlx_root(doc), &cx, &st);
    for (size_t i = 0; i < dg.n; i++)
        cr_log_info("diag: %s", dg.msg[i]);
    yamlx_diags_free(&dg);
    cr_assert_eq(rc, 0, "steps did not compile");
    *doc_out = doc;
    return st;
}

static plan_t *make_plan(const struct plan_steps *st, json_t *event, const char *key)
{
    json_t *vars = json_pack("{s:s, s:i}", "fallback_site", "Head Office", "fallback_id", 7);
    struct plan_ctx ctx = {"r",  "open", key, NULL, key != NULL, event, NULL,
                           vars, 0,      1,   0,    NULL,        0};
    plan_t *p = plan_new(&ctx, st, NULL, NULL);
    json_decref(vars);
    cr_assert_not_null(p);
    return p;
}

static json_t *render_ok(plan_t *p, size_t i, json_t *corr, json_t *results)
{
    json_t *req = NULL;
    const char *reason = NULL;
    char *err = NULL;
    enum plan_render rc = plan_step_render(p, i, corr, results, &req, &reason, &err);
    cr_assert_eq(rc, PLAN_RENDER_OK, "render: %s %s", err ? err : "", reason ? reason : "");
    return req;
}

Test(plan, a_label_full_of_json_syntax_stays_one_string)
{
    yamlx_doc_t *doc;
    struct plan_steps st = compile("- op: create_job\n  body:\n    jobDetails: \"{{labels.x}}\"\n"
                                   "    siteName: fixed\n",
                                   &doc);
    json_t *ev = json_pack("{s:{s:s}}", "labels", "x", "\", \"siteId\": 1, \"x\": \"");
    plan_t *p = make_plan(&st, ev, NULL);
    json_t *results = plan_results_new();
    json_t *req = render_ok(p, 0, NULL, results);
    json_t *body = json_object_get(req, "body");
    cr_expect_eq(json_object_size(body), 2);
    cr_expect_str_eq(json_string_value(json_object_get(body, "jobDetails")),
                     "\", \"siteId\": 1, \"x\": \"");
    cr_expect_null(json_object_get(body, "siteId"));
    cr_expect_str_eq(json_string_value(json_object_get(req, "path")), "/api/jobs");
    cr_expect_str_eq(json_string_value(json_object_get(req, "method")), "POST");
    json_decref(req);
    json_decref(results);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, typed_leaves_become_numbers_booleans_or_are_omitted)
{
    yamlx_doc_t *doc;
    struct plan_steps st =
        compile("- op: create_job\n  body:\n    siteId: {int: \"{{vars.fallback_id}}\"}\n"
                "    ratio: {number: \"{{n}}\"}\n    urgent: {bool: \"{{flag}}\"}\n"
                "    note: {string: \"{{missing}}\", optional: true}\n"
                "    who: {string: \"{{missing}}\", default: nobody}\n    list: [\"{{n}}\", 3]\n",
                &doc);
    json_t *ev = json_pack("{s:s, s:s}", "n", "2.5", "flag", "true");
    plan_t *p = make_plan(&st, ev, NULL);
    json_t *results = plan_results_new();
    json_t *req = render_ok(p, 0, NULL, results);
    json_t *body = json_object_get(req, "body");
    cr_expect_eq(json_integer_value(json_object_get(body, "siteId")), 7);
    cr_expect_float_eq(json_real_value(json_object_get(body, "ratio")), 2.5, 1e-9);
    cr_expect(json_is_true(json_object_get(body, "urgent")));
    cr_expect_null(json_object_get(body, "note"));
    cr_expect_str_eq(json_string_value(json_object_get(body, "who")), "nobody");
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(body, "list"), 0)), "2.5");
    cr_expect_eq(json_integer_value(json_array_get(json_object_get(body, "list"), 1)), 3);
    json_decref(req);
    json_decref(results);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, a_value_that_is_not_an_integer_fails_the_step_with_its_path)
{
    yamlx_doc_t *doc;
    struct plan_steps st =
        compile("- op: create_job\n  body:\n    siteId: {int: \"{{site}}\"}\n", &doc);
    json_t *ev = json_pack("{s:s}", "site", "HQ");
    plan_t *p = make_plan(&st, ev, NULL);
    json_t *results = plan_results_new(), *req = NULL;
    char *err = NULL;
    cr_expect_eq(plan_step_render(p, 0, NULL, results, &req, NULL, &err), PLAN_RENDER_FAIL);
    cr_expect_str_eq(err, "body.siteId: \"HQ\" is not an integer");
    free(err);
    json_decref(results);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, ids_come_from_the_correlation_state_and_are_escaped_into_the_path)
{
    yamlx_doc_t *doc;
    struct plan_steps st = compile("- op: complete_job\n  id: \"{{corr.job_guid}}\"\n"
                                   "  body: {completedNote: done}\n",
                                   &doc);
    json_t *ev = json_object();
    plan_t *p = make_plan(&st, ev, "k");
    json_t *results = plan_results_new();
    json_t *corr = json_pack("{s:s}", "job_guid", "a/b c");
    json_t *req = render_ok(p, 0, corr, results);
    cr_expect_str_eq(json_string_value(json_object_get(req, "path")),
                     "/api/jobs/complete/a%2Fb%20c");
    cr_expect_str_eq(json_string_value(json_object_get(req, "id")), "a/b c");
    json_decref(req);
    /* No id yet: the step cannot be sent. */
    char *err = NULL;
    cr_expect_eq(plan_step_render(p, 0, NULL, results, &req, NULL, &err), PLAN_RENDER_FAIL);
    cr_expect(strstr(err, "needs an id") != NULL);
    free(err);
    json_decref(corr);
    json_decref(results);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, filter_values_are_escaped_so_they_cannot_change_the_filter)
{
    yamlx_doc_t *doc;
    struct plan_steps st =
        compile("- op: list_sites\n  lookup: site\n  filter:\n"
                "    - any:\n        - {field: code, value: \"{{site}}\"}\n"
                "        - {field: name, op: \"=*\", value: \"{{site}}\", nocase: true}\n"
                "  fallback: {name: x}\n",
                &doc);
    json_t *ev = json_pack("{s:s}", "site", "A,B|(C)");
    plan_t *p = make_plan(&st, ev, NULL);
    json_t *results = plan_results_new();
    json_t *req = render_ok(p, 0, NULL, results);
    json_t *q = json_object_get(req, "query");
    char *esc = tp_filter_escape("A,B|(C)");
    char *want = NULL;
    cr_assert(asprintf(&want, "(code==%s|name=*%s/i)", esc, esc) > 0);
    cr_expect_str_eq(json_string_value(json_object_get(q, "filter")), want);
    cr_expect_eq(json_integer_value(json_object_get(q, "page")), 1);
    cr_expect_eq(json_integer_value(json_object_get(q, "pageSize")), 1);
    free(esc);
    free(want);
    json_decref(req);
    json_decref(results);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, a_lookup_that_finds_nothing_uses_its_fallback_values)
{
    yamlx_doc_t *doc;
    struct plan_steps st = compile(
        "- op: list_sites\n  lookup: site\n  filter: [{field: code, value: \"{{site}}\"}]\n"
        "  fallback: {siteId: {int: \"{{vars.fallback_id}}\"}, name: \"{{vars.fallback_site}}\"}\n"
        "- op: create_job\n  body: {siteId: {int: \"{{lookup.site.siteId}}\"}, siteName: "
        "\"{{lookup.site.name}}\"}\n",
        &doc);
    json_t *ev = json_pack("{s:s}", "site", "");
    plan_t *p = make_plan(&st, ev, NULL);
    json_t *results = plan_results_new(), *req = NULL;
    const char *reason = NULL;
    char *err = NULL;
    /* An empty site: the look-up is not sent at all. */
    cr_assert_eq(plan_step_render(p, 0, NULL, results, &req, &reason, &err), PLAN_RENDER_EMPTY);
    json_decref(req);
    cr_assert_eq(plan_step_apply(p, 0, NULL, results, NULL, &err), 0);
    req = render_ok(p, 1, NULL, results);
    json_t *body = json_object_get(req, "body");
    cr_expect_eq(json_integer_value(json_object_get(body, "siteId")), 7);
    cr_expect_str_eq(json_string_value(json_object_get(body, "siteName")), "Head Office");
    json_decref(req);
    /* A found record wins over the fallback. */
    json_t *page =
        json_pack("{s:i, s:[{s:i, s:s}]}", "count", 1, "data", "siteId", 42, "name", "Depot");
    cr_assert_eq(plan_step_apply(p, 0, page, results, NULL, &err), 0);
    req = render_ok(p, 1, NULL, results);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(req, "body"), "siteId")), 42);
    json_decref(req);
    json_decref(page);
    json_decref(results);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, a_lookup_without_fallback_that_finds_nothing_fails_the_plan)
{
    yamlx_doc_t *doc;
    struct plan_steps st =
        compile("- op: list_assets\n  lookup: asset\n  filter: [{field: tag, value: x}]\n", &doc);
    json_t *ev = json_object();
    plan_t *p = make_plan(&st, ev, NULL);
    json_t *results = plan_results_new();
    json_t *empty = json_pack("{s:i, s:[]}", "count", 0, "data");
    char *err = NULL;
    cr_expect_eq(plan_step_apply(p, 0, empty, results, NULL, &err), -1);
    cr_expect_str_eq(err, "look-up 'asset' (list_assets) found nothing and has no fallback");
    free(err);
    json_decref(empty);
    json_decref(results);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, fallback_steps_replace_the_rest_of_the_list_when_nothing_is_found)
{
    yamlx_doc_t *doc;
    struct plan_steps st = compile(
        "- op: list_assets\n  lookup: asset\n  filter: [{field: tag, value: \"{{tag}}\"}]\n"
        "  fallback_steps:\n    - op: create_job_request\n      body: {description: unresolved}\n"
        "- op: create_job\n  body: {jobDetails: \"{{lookup.asset.guid}}\"}\n",
        &doc);
    cr_assert_eq(st.n, 3);
    cr_expect_str_eq(plan_step_ref(st.v[1]), "actions/0/fallback_steps/0");
    json_t *ev = json_pack("{s:s}", "tag", "PUMP-7");
    plan_t *p = make_plan(&st, ev, NULL);
    struct plan_fake fake = {0, 0};
    struct plan_backend be = plan_fake_backend(&fake);
    json_t *trace = json_array();
    char *err = NULL;
    cr_assert_eq(plan_run(p, &be, NULL, 0, trace, &err), PLAN_DONE, "%s", err ? err : "");
    cr_assert_eq(json_array_size(trace), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(trace, 1), "op")),
                     "create_job_request");
    json_decref(trace);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, send_mail_is_rendered_and_never_sent_to_automatic_mail)
{
    yamlx_doc_t *doc;
    struct plan_steps st =
        compile("- op: send_mail\n  to: \"{{from.address}}\"\n"
                "  subject: \"Re: {{subject}}\"\n  text: \"Hello {{from.name}}\"\n",
                &doc);
    json_t *ev = json_pack("{s:{s:s, s:s}, s:s, s:b}", "from", "address", "a@example.com", "name",
                           "Ann", "subject", "Help", "auto", 0);
    plan_t *p = make_plan(&st, ev, NULL);
    json_t *results = plan_results_new();
    json_t *req = render_ok(p, 0, NULL, results);
    json_t *body = json_object_get(req, "body");
    cr_expect_str_eq(json_string_value(json_object_get(req, "op")), "send_mail");
    cr_expect_str_eq(json_string_value(json_object_get(body, "to")), "a@example.com");
    cr_expect_str_eq(json_string_value(json_object_get(body, "subject")), "Re: Help");
    cr_expect_str_eq(json_string_value(json_object_get(body, "text")), "Hello Ann");
    json_decref(req);
    plan_free(p);
    json_object_set_new(ev, "auto", json_true());
    p = make_plan(&st, ev, NULL);
    const char *reason = NULL;
    char *err = NULL;
    cr_expect_eq(plan_step_render(p, 0, NULL, results, &req, &reason, &err), PLAN_RENDER_SKIP);
    cr_expect_str_eq(reason, "not answering automatic mail");
    json_decref(results);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, results_reach_later_steps_and_the_correlation_state)
{
    yamlx_doc_t *doc;
    struct plan_steps st =
        compile("- op: create_job\n  save_as: job\n  body: {jobDetails: x}\n"
                "- op: create_job_task\n  save_as: alarm\n  body: {jobGuid: \"{{result.job}}\"}\n"
                "- op: create_job_request\n  body: {description: \"for {{corr.job_guid}}\"}\n",
                &doc);
    json_t *ev = json_object();
    plan_t *p = make_plan(&st, ev, "key-1");
    struct plan_fake fake = {0, 0};
    struct plan_backend be = plan_fake_backend(&fake);
    json_t *trace = json_array();
    char *err = NULL;
    json_t *state = json_object();
    /* A one-key store over a local object. */
    struct plan_corr_store cs = {NULL, NULL, NULL};
    cr_assert_eq(plan_run(p, &be, &cs, 0, trace, &err), PLAN_DONE, "%s", err ? err : "");
    json_t *task = json_array_get(trace, 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(task, "body"), "jobGuid")),
                     "00000000-0000-4000-8000-000000000001");
    json_t *jr = json_array_get(trace, 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(jr, "body"), "description")),
                     "for 00000000-0000-4000-8000-000000000001");
    cr_expect_eq(json_integer_value(json_object_get(jr, "result")), 1);
    /* Applying results by hand fills the state the way the delivery engine will. */
    json_t *results = plan_results_new();
    json_t *g = json_string("g-1");
    json_t *t = json_string("t-1");
    json_t *n = json_integer(77);
    cr_assert_eq(plan_step_apply(p, 0, g, results, state, &err), 0);
    cr_assert_eq(plan_step_apply(p, 1, t, results, state, &err), 0);
    cr_assert_eq(plan_step_apply(p, 2, n, results, state, &err), 0);
    cr_expect_str_eq(json_string_value(json_object_get(state, "job_guid")), "g-1");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(state, "tasks"), "alarm")),
                     "t-1");
    cr_expect_eq(json_integer_value(json_object_get(state, "job_request_number")), 77);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(results, "result"), "job")),
                     "g-1");
    json_decref(g);
    json_decref(t);
    json_decref(n);
    json_decref(results);
    json_decref(state);
    json_decref(trace);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

static const struct plan_step *find_in(void *ud, const char *rule, const char *ref)
{
    const struct plan_steps *st = ud;
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(plan_step_ref(st->v[i]), ref) == 0)
            return st->v[i];
    return NULL;
}

Test(plan, a_plan_survives_serialisation_and_recompiles_a_changed_step)
{
    yamlx_doc_t *doc;
    struct plan_steps st = compile("- op: create_job\n  body: {jobDetails: \"{{title}}\"}\n", &doc);
    json_t *ev = json_pack("{s:s}", "title", "Boiler");
    plan_t *p = make_plan(&st, ev, "k");
    plan_add_note(p, "first firing");
    json_t *js = plan_to_json(p);
    cr_assert_not_null(js);
    struct plan_resolver r = {find_in, &st, NULL, NULL, NULL, NULL};
    char *err = NULL;
    plan_t *back = plan_from_json(js, &r, &err);
    cr_assert_not_null(back, "%s", err ? err : "");
    cr_expect_eq(plan_step_at(back, 0), st.v[0], "an unchanged step is shared, not recompiled");
    cr_expect_str_eq(plan_key(back), "k");
    cr_expect_str_eq(plan_note(back), "first firing");
    json_t *again = plan_to_json(back);
    cr_expect(json_equal(js, again));
    json_decref(again);
    plan_free(back);
    /* The rule changed since: the stored definition is compiled and used. */
    json_t *def = json_object_get(json_array_get(json_object_get(js, "steps"), 0), "def");
    json_object_set_new(json_object_get(def, "body"), "jobDetails", json_string("old {{title}}"));
    back = plan_from_json(js, &r, &err);
    cr_assert_not_null(back, "%s", err ? err : "");
    cr_expect_neq(plan_step_at(back, 0), st.v[0]);
    json_t *results = plan_results_new();
    json_t *req = render_ok(back, 0, NULL, results);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(req, "body"), "jobDetails")),
                     "old Boiler");
    json_decref(req);
    json_decref(results);
    plan_free(back);
    json_decref(js);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, a_plan_without_key_status_or_note_survives_serialisation)
{
    yamlx_doc_t *doc;
    struct plan_steps st = compile("- op: create_job\n  body: {jobDetails: \"{{title}}\"}\n", &doc);
    json_t *ev = json_pack("{s:s}", "title", "Boiler");
    plan_t *p = make_plan(&st, ev, NULL);
    json_t *js = plan_to_json(p);
    struct plan_resolver r = {find_in, &st, NULL, NULL, NULL, NULL};
    char *err = NULL;
    plan_t *back = plan_from_json(js, &r, &err);
    cr_assert_not_null(back, "%s", err ? err : "");
    cr_expect_null(plan_key(back));
    cr_expect_null(plan_note(back));
    free(err);
    plan_free(back);
    json_decref(js);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}

Test(plan, not_a_plan_is_refused_when_deserialising)
{
    json_t *js = json_pack("{s:i}", "version", 9);
    char *err = NULL;
    cr_expect_null(plan_from_json(js, NULL, &err));
    cr_expect(strncmp(err, "not a plan", 10) == 0);
    free(err);
    json_decref(js);
}

Test(plan, the_fake_trackplan_numbers_creates_and_finds_nothing)
{
    struct plan_fake f = {0, 0};
    struct plan_backend be = plan_fake_backend(&f);
    json_t *res = NULL;
    char *err = NULL;
    json_t *req =
        json_pack("{s:s, s:s, s:s}", "op", "create_job", "method", "POST", "path", "/api/jobs");
    cr_assert_eq(be.call(be.ud, req, &res, &err), PLAN_CALL_OK);
    cr_expect_str_eq(json_string_value(res), "00000000-0000-4000-8000-000000000001");
    json_decref(res);
    cr_assert_eq(be.call(be.ud, req, &res, &err), PLAN_CALL_OK);
    cr_expect_str_eq(json_string_value(res), "00000000-0000-4000-8000-000000000002");
    json_decref(res);
    json_decref(req);
    req = json_pack("{s:s, s:s, s:s}", "op", "create_job_request", "method", "POST", "path",
                    "/api/jobrequests");
    cr_assert_eq(be.call(be.ud, req, &res, &err), PLAN_CALL_OK);
    cr_expect_eq(json_integer_value(res), 1);
    json_decref(res);
    json_decref(req);
    req = json_pack("{s:s, s:s, s:s}", "op", "list_sites", "method", "GET", "path", "/api/sites");
    cr_assert_eq(be.call(be.ud, req, &res, &err), PLAN_CALL_OK);
    cr_expect_eq(json_array_size(json_object_get(res, "data")), 0);
    json_decref(res);
    json_decref(req);
}

static int inner_calls;

static enum plan_call counting_call(void *ud, json_t *req, json_t **result, char **err)
{
    inner_calls++;
    *err = NULL;
    *result = json_pack("{s:i, s:[{s:i}]}", "count", 1, "data", "siteId", inner_calls);
    return PLAN_CALL_OK;
}

Test(plan, the_lookup_cache_answers_repeated_reads_only)
{
    inner_calls = 0;
    struct plan_backend inner = {counting_call, NULL};
    plan_cache_t *c = plan_cache_new(60000, 10);
    struct plan_backend be = plan_cache_backend(c, &inner);
    json_t *get = json_pack("{s:s, s:s, s:s, s:{s:s}}", "op", "list_sites", "method", "GET", "path",
                            "/api/sites", "query", "filter", "code==HQ");
    json_t *post =
        json_pack("{s:s, s:s, s:s}", "op", "create_job", "method", "POST", "path", "/api/jobs");
    json_t *res = NULL;
    char *err = NULL;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(be.call(be.ud, get, &res, &err), PLAN_CALL_OK);
        cr_expect_eq(json_integer_value(json_object_get(
                         json_array_get(json_object_get(res, "data"), 0), "siteId")),
                     1);
        json_decref(res);
    }
    cr_assert_eq(be.call(be.ud, post, &res, &err), PLAN_CALL_OK);
    json_decref(res);
    cr_assert_eq(be.call(be.ud, post, &res, &err), PLAN_CALL_OK);
    json_decref(res);
    cr_expect_eq(inner_calls, 3, "one GET, two POSTs reach the backend");
    uint64_t hits, misses;
    plan_cache_stats(c, &hits, &misses);
    cr_expect_eq(hits, 2);
    cr_expect_eq(misses, 1);
    json_decref(get);
    json_decref(post);
    plan_cache_free(c);
}

Test(plan, steps_with_unknown_keys_or_misplaced_arguments_do_not_compile)
{
    const char *yaml = "- op: create_job\n  bodi: {}\n- op: get_job\n  id: x\n  lookup: j\n"
                       "  fallback: 3\n- op: create_job\n  lookup: j\n- op: send_mail\n  to: x\n";
    char *err = NULL;
    yamlx_doc_t *doc = yamlx_parse(yaml, strlen(yaml), "s.yaml", NULL, &err);
    cr_assert_not_null(doc);
    yamlx_diags_t dg;
    yamlx_diags_init(&dg);
    struct plan_compile_ctx cx = {doc, &dg, NULL, "test", "actions"};
    struct plan_steps st;
    cr_expect_eq(plan_steps_compile(yamlx_root(doc), &cx, &st), -1);
    int bodi = 0, fb = 0, lk = 0, mail = 0;
    for (size_t i = 0; i < dg.n; i++) {
        cr_log_info("diag: %s", dg.msg[i]);
        bodi |= strstr(dg.msg[i], "s.yaml:2:3: test: unknown key 'bodi' for create_job") != NULL;
        fb |= strstr(dg.msg[i], "fallback: expected a mapping") != NULL;
        lk |= strstr(dg.msg[i], "lookup needs a reading operation") != NULL;
        mail |= strstr(dg.msg[i], "send_mail needs subject") != NULL;
    }
    cr_expect(bodi && fb && lk && mail);
    yamlx_diags_free(&dg);
    yamlx_free(doc);
}

static enum plan_call finding_call(void *ud, json_t *req, json_t **result, char **err)
{
    *err = NULL;
    const char *op = json_string_value(json_object_get(req, "op"));
    if (strcmp(op, "list_assets") == 0)
        *result = json_pack("{s:i, s:[{s:s}]}", "count", 1, "data", "guid", "asset-guid-1");
    else
        *result = json_string("new-guid");
    return PLAN_CALL_OK;
}

Test(plan, when_the_lookup_finds_a_record_the_fallback_steps_are_skipped)
{
    yamlx_doc_t *doc;
    struct plan_steps st = compile(
        "- op: list_assets\n  lookup: asset\n  filter: [{field: tag, value: \"{{tag}}\"}]\n"
        "  fallback_steps:\n    - op: create_job_request\n      body: {description: unresolved}\n"
        "- op: create_job\n  body: {jobDetails: \"{{lookup.asset.guid}}\"}\n",
        &doc);
    json_t *ev = json_pack("{s:s}", "tag", "PUMP-7");
    plan_t *p = make_plan(&st, ev, NULL);
    struct plan_backend be = {finding_call, NULL};
    json_t *trace = json_array();
    char *err = NULL;
    cr_assert_eq(plan_run(p, &be, NULL, 0, trace, &err), PLAN_DONE, "%s", err ? err : "");
    cr_assert_eq(json_array_size(trace), 2);
    json_t *job = json_array_get(trace, 1);
    cr_expect_str_eq(json_string_value(json_object_get(job, "op")), "create_job");
    cr_expect_str_eq(
        json_string_value(json_object_get(json_object_get(job, "body"), "jobDetails")),
        "asset-guid-1");
    json_decref(trace);
    plan_free(p);
    json_decref(ev);
    plan_steps_clear(&st);
    yamlx_free(doc);
}
