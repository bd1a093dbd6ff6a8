/* Unit tests for rules: every operator, all/any/not, continue, first match, the sources
 * filter, header and source conditions, captures, wildcard paths, regex limits, and the load
 * errors and warnings check prints. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "regex.h"
#include "rules.h"

static struct tb_source srcs[] = {
    {(char *)"prom", (char *)"alertmanager", NULL, NULL, 0, 0, 0},
    {(char *)"bms", (char *)"bms", NULL, NULL, 0, 0, 0},
    {(char *)"mail", (char *)"email", NULL, NULL, 0, 0, 0},
};

static struct rules_opts opts(void)
{
    struct rules_opts o;
    memset(&o, 0, sizeof o);
    o.sources = srcs;
    o.nsources = 3;
    return o;
}

static rules_t *load_ok(const char *text)
{
    yamlx_diags_t dg;
    yamlx_diags_init(&dg);
    struct rules_opts o = opts();
    rules_t *r = rules_load_text("r.yaml", text, &o, &dg);
    for (size_t i = 0; i < dg.n; i++)
        cr_log_info("diag: %s", dg.msg[i]);
    cr_assert_not_null(r, "rules did not load");
    yamlx_diags_free(&dg);
    return r;
}

/* Loads text expecting failure; returns the diagnostics joined by newlines. */
static char *load_fail(const char *text)
{
    yamlx_diags_t dg;
    yamlx_diags_init(&dg);
    struct rules_opts o = opts();
    rules_t *r = rules_load_text("r.yaml", text, &o, &dg);
    cr_assert_null(r, "rules loaded but should not have");
    size_t len = 1;
    for (size_t i = 0; i < dg.n; i++)
        len += strlen(dg.msg[i]) + 1;
    char *all = calloc(1, len);
    for (size_t i = 0; i < dg.n; i++) {
        strcat(all, dg.msg[i]);
        strcat(all, "\n");
    }
    yamlx_diags_free(&dg);
    return all;
}

/* The name of the first rule matching ev (JSON text) from source, or NULL. */
static const char *first_match(rules_t *r, const char *ev_json, const char *source, json_t *headers,
                               json_t **caps_out)
{
    json_t *ev = json_loads(ev_json, 0, NULL);
    cr_assert_not_null(ev, "bad test JSON");
    struct rules_input in = {ev, headers, source};
    size_t idx;
    json_t *caps = NULL;
    const char *name = NULL;
    if (rules_next(r, &in, 0, &idx, &caps) == RULES_MATCH)
        name = rule_name(rules_at(r, idx));
    if (caps_out)
        *caps_out = caps;
    else
        json_decref(caps);
    json_decref(ev);
    return name;
}

#define IGNORE_ACTIONS "    actions: [{op: ignore}]\n"

Test(rules, regex_equals_and_in_select_the_first_matching_rule)
{
    rules_t *r = load_ok(
        "rules:\n"
        "  - name: by-regex\n    when: {field: title, regex: '^Disk'}\n" IGNORE_ACTIONS
        "  - name: by-equals\n    when: {field: severity, equals: critical}\n" IGNORE_ACTIONS
        "  - name: by-in\n    when: {field: severity, in: [warning, minor]}\n" IGNORE_ACTIONS);
    cr_expect_str_eq(first_match(r, "{\"title\": \"Disk full\", \"severity\": \"critical\"}",
                                 "prom", NULL, NULL),
                     "by-regex");
    cr_expect_str_eq(
        first_match(r, "{\"title\": \"CPU\", \"severity\": \"critical\"}", "prom", NULL, NULL),
        "by-equals");
    cr_expect_str_eq(
        first_match(r, "{\"title\": \"CPU\", \"severity\": \"minor\"}", "prom", NULL, NULL),
        "by-in");
    cr_expect_null(
        first_match(r, "{\"title\": \"CPU\", \"severity\": \"info\"}", "prom", NULL, NULL));
    rules_unref(r);
}

Test(rules, equals_compares_numbers_booleans_and_strings_across_types)
{
    rules_t *r = load_ok("rules:\n"
                         "  - name: num\n    when: {field: n, equals: 3}\n" IGNORE_ACTIONS
                         "  - name: bool\n    when: {field: b, equals: true}\n" IGNORE_ACTIONS
                         "  - name: str\n    when: {field: s, equals: '42'}\n" IGNORE_ACTIONS);
    cr_expect_str_eq(first_match(r, "{\"n\": 3.0}", "prom", NULL, NULL), "num");
    cr_expect_str_eq(first_match(r, "{\"n\": \"3\"}", "prom", NULL, NULL), "num");
    cr_expect_str_eq(first_match(r, "{\"b\": true}", "prom", NULL, NULL), "bool");
    cr_expect_str_eq(first_match(r, "{\"b\": \"true\"}", "prom", NULL, NULL), "bool");
    cr_expect_str_eq(first_match(r, "{\"s\": 42}", "prom", NULL, NULL), "str");
    cr_expect_null(first_match(r, "{\"n\": 4, \"b\": false, \"s\": \"43\"}", "prom", NULL, NULL));
    rules_unref(r);
}

Test(rules, exists_tells_present_from_absent_and_null)
{
    rules_t *r = load_ok(
        "rules:\n"
        "  - name: has-site\n    when: {field: labels.site, exists: true}\n" IGNORE_ACTIONS
        "  - name: no-site\n    when: {field: labels.site, exists: false}\n" IGNORE_ACTIONS);
    cr_expect_str_eq(first_match(r, "{\"labels\": {\"site\": \"HQ\"}}", "prom", NULL, NULL),
                     "has-site");
    cr_expect_str_eq(first_match(r, "{\"labels\": {}}", "prom", NULL, NULL), "no-site");
    cr_expect_str_eq(first_match(r, "{\"labels\": {\"site\": null}}", "prom", NULL, NULL),
                     "no-site");
    rules_unref(r);
}

Test(rules, numeric_comparisons_read_numbers_and_numeric_strings)
{
    rules_t *r = load_ok("rules:\n"
                         "  - name: band\n    when: {field: value, ge: 10, lt: 20}\n" IGNORE_ACTIONS
                         "  - name: high\n    when: {field: value, gt: 20}\n" IGNORE_ACTIONS
                         "  - name: low\n    when: {field: value, le: 0}\n" IGNORE_ACTIONS);
    cr_expect_str_eq(first_match(r, "{\"value\": 10}", "prom", NULL, NULL), "band");
    cr_expect_str_eq(first_match(r, "{\"value\": \"19.5\"}", "prom", NULL, NULL), "band");
    cr_expect_null(first_match(r, "{\"value\": 20}", "prom", NULL, NULL));
    cr_expect_str_eq(first_match(r, "{\"value\": 20.01}", "prom", NULL, NULL), "high");
    cr_expect_str_eq(first_match(r, "{\"value\": -3}", "prom", NULL, NULL), "low");
    cr_expect_null(first_match(r, "{\"value\": \"n/a\"}", "prom", NULL, NULL));
    cr_expect_null(first_match(r, "{}", "prom", NULL, NULL));
    rules_unref(r);
}

Test(rules, all_any_and_not_nest)
{
    rules_t *r = load_ok("rules:\n"
                         "  - name: nested\n"
                         "    when:\n"
                         "      all:\n"
                         "        - {field: kind, equals: alertmanager}\n"
                         "        - any:\n"
                         "            - {field: severity, equals: critical}\n"
                         "            - all:\n"
                         "                - {field: severity, equals: warning}\n"
                         "                - {field: labels.team, equals: facilities}\n"
                         "        - not: {field: labels.env, equals: test}\n" IGNORE_ACTIONS);
    const char *yes1 = "{\"kind\": \"alertmanager\", \"severity\": \"critical\", \"labels\": {}}";
    const char *yes2 = "{\"kind\": \"alertmanager\", \"severity\": \"warning\", "
                       "\"labels\": {\"team\": \"facilities\"}}";
    const char *no1 = "{\"kind\": \"alertmanager\", \"severity\": \"warning\", \"labels\": {}}";
    const char *no2 = "{\"kind\": \"alertmanager\", \"severity\": \"critical\", "
                      "\"labels\": {\"env\": \"test\"}}";
    cr_expect_str_eq(first_match(r, yes1, "prom", NULL, NULL), "nested");
    cr_expect_str_eq(first_match(r, yes2, "prom", NULL, NULL), "nested");
    cr_expect_null(first_match(r, no1, "prom", NULL, NULL));
    cr_expect_null(first_match(r, no2, "prom", NULL, NULL));
    rules_unref(r);
}

Test(rules, a_list_of_conditions_means_all_of_them)
{
    rules_t *r = load_ok("rules:\n  - name: both\n    when:\n      - {field: a, equals: 1}\n"
                         "      - {field: b, equals: 2}\n" IGNORE_ACTIONS);
    cr_expect_str_eq(first_match(r, "{\"a\": 1, \"b\": 2}", "prom", NULL, NULL), "both");
    cr_expect_null(first_match(r, "{\"a\": 1, \"b\": 3}", "prom", NULL, NULL));
    rules_unref(r);
}

Test(rules, continue_lets_later_rules_match_too)
{
    rules_t *r = load_ok("rules:\n"
                         "  - name: audit\n    continue: true\n" IGNORE_ACTIONS
                         "  - name: skipped\n    when: {field: x, equals: 0}\n" IGNORE_ACTIONS
                         "  - name: main\n" IGNORE_ACTIONS "  - name: never\n" IGNORE_ACTIONS);
    json_t *ev = json_pack("{s:i}", "x", 1);
    struct rules_input in = {ev, NULL, "prom"};
    size_t idx, from = 0;
    json_t *caps;
    const char *seen[4] = {0};
    int n = 0;
    while (n < 4 && rules_next(r, &in, from, &idx, &caps) == RULES_MATCH) {
        json_decref(caps);
        const struct rule *ru = rules_at(r, idx);
        seen[n++] = rule_name(ru);
        if (!rule_continue(ru))
            break;
        from = idx + 1;
    }
    cr_assert_eq(n, 2);
    cr_expect_str_eq(seen[0], "audit");
    cr_expect_str_eq(seen[1], "main");
    json_decref(ev);
    rules_unref(r);
}

Test(rules, the_sources_filter_and_source_condition_restrict_a_rule)
{
    rules_t *r =
        load_ok("rules:\n"
                "  - name: bms-only\n    sources: bms\n" IGNORE_ACTIONS
                "  - name: by-condition\n    when: {source: [mail]}\n" IGNORE_ACTIONS
                "  - name: by-field\n    when: {field: source, equals: prom}\n" IGNORE_ACTIONS);
    cr_expect_str_eq(first_match(r, "{}", "bms", NULL, NULL), "bms-only");
    cr_expect_str_eq(first_match(r, "{}", "mail", NULL, NULL), "by-condition");
    cr_expect_str_eq(first_match(r, "{\"source\": \"prom\"}", "prom", NULL, NULL), "by-field");
    cr_expect_null(first_match(r, "{\"source\": \"other\"}", "other", NULL, NULL));
    rules_unref(r);
}

Test(rules, header_conditions_look_at_request_headers_by_lowercase_name)
{
    rules_t *r =
        load_ok("rules:\n"
                "  - name: grafana-org\n"
                "    when: {header: X-Grafana-Org-Id, regex: '^(?<org>\\d+)$'}\n" IGNORE_ACTIONS);
    json_t *h = json_pack("{s:s}", "x-grafana-org-id", "17");
    json_t *caps = NULL;
    cr_expect_str_eq(first_match(r, "{}", "prom", h, &caps), "grafana-org");
    cr_expect_str_eq(json_string_value(json_object_get(caps, "org")), "17");
    json_decref(caps);
    cr_expect_null(first_match(r, "{}", "prom", NULL, NULL));
    json_decref(h);
    rules_unref(r);
}

Test(rules, named_captures_are_returned_and_only_named_ones)
{
    rules_t *r =
        load_ok("rules:\n"
                "  - name: cap\n"
                "    when:\n"
                "      - {field: title, regex: '^(?<host>[a-z0-9]+)-(\\d+) (?<what>.*)$'}\n"
                "      - not: {field: title, regex: '(?<never>zzz)'}\n" IGNORE_ACTIONS);
    json_t *caps = NULL;
    cr_expect_str_eq(first_match(r, "{\"title\": \"fs01-7 disk full\"}", "prom", NULL, &caps),
                     "cap");
    cr_assert_not_null(caps);
    cr_expect_str_eq(json_string_value(json_object_get(caps, "host")), "fs01");
    cr_expect_str_eq(json_string_value(json_object_get(caps, "what")), "disk full");
    cr_expect_eq(json_object_size(caps), 2, "numbered groups and groups under not: stay out");
    json_decref(caps);
    rules_unref(r);
}

Test(rules, captures_of_a_failed_any_branch_are_not_kept)
{
    rules_t *r = load_ok("rules:\n"
                         "  - name: any\n"
                         "    when:\n"
                         "      any:\n"
                         "        - all:\n"
                         "            - {field: a, regex: '(?<first>.+)'}\n"
                         "            - {field: b, equals: never}\n"
                         "        - {field: a, regex: '(?<second>.+)'}\n" IGNORE_ACTIONS);
    json_t *caps = NULL;
    cr_expect_str_eq(first_match(r, "{\"a\": \"x\", \"b\": \"y\"}", "prom", NULL, &caps), "any");
    cr_expect_null(json_object_get(caps, "first"));
    cr_expect_str_eq(json_string_value(json_object_get(caps, "second")), "x");
    json_decref(caps);
    rules_unref(r);
}

Test(rules, a_wildcard_path_matches_when_any_element_matches)
{
    rules_t *r = load_ok("rules:\n"
                         "  - name: any-alert\n"
                         "    when: {field: 'raw.alerts[*].labels.site', regex: "
                         "'^(?<site>B\\d+)$'}\n" IGNORE_ACTIONS);
    json_t *caps = NULL;
    const char *ev = "{\"raw\": {\"alerts\": [{\"labels\": {\"site\": \"HQ\"}}, "
                     "{\"labels\": {\"site\": \"B12\"}}]}}";
    cr_expect_str_eq(first_match(r, ev, "prom", NULL, &caps), "any-alert");
    cr_expect_str_eq(json_string_value(json_object_get(caps, "site")), "B12");
    json_decref(caps);
    cr_expect_null(first_match(r, "{\"raw\": {\"alerts\": [{\"labels\": {\"site\": \"HQ\"}}]}}",
                               "prom", NULL, NULL));
    rules_unref(r);
}

Test(rules, a_regex_hitting_its_limit_counts_as_no_match)
{
    struct rx_limits lim = {200, 0, 0, 0};
    rx_set_limits(&lim);
    rules_t *r =
        load_ok("rules:\n"
                "  - name: catastrophic\n    when: {field: s, regex: '^(a+)+$'}\n" IGNORE_ACTIONS
                "  - name: next\n" IGNORE_ACTIONS);
    uint64_t before = rules_regex_limit_hits();
    cr_expect_str_eq(
        first_match(r, "{\"s\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"}", "prom", NULL, NULL), "next");
    cr_expect_gt(rules_regex_limit_hits(), before);
    rules_unref(r);
    rx_set_limits(NULL);
}

Test(rules, a_bad_regex_reports_pcre2_text_at_the_offending_column)
{
    char *all =
        load_fail("rules:\n  - name: bad\n    when: {field: t, regex: 'ab(c'}\n" IGNORE_ACTIONS);
    /* The pattern starts at column 30 (after the quote); PCRE2 reports the offset at the
     * end of the pattern for a missing parenthesis. */
    cr_expect(strstr(all, "r.yaml:3:34: rule 'bad': regex: missing closing parenthesis") != NULL,
              "got: %s", all);
    free(all);
}

Test(rules, an_unknown_operation_is_reported_at_the_op)
{
    char *all = load_fail("rules:\n  - name: x\n    actions:\n      - op: create_jobs\n");
    cr_expect(strstr(all, "r.yaml:4:13: rule 'x' actions: unknown operation 'create_jobs'") != NULL,
              "got: %s", all);
    free(all);
}

Test(rules, a_bad_template_is_reported_inside_the_yaml_string)
{
    char *all = load_fail("rules:\n  - name: t\n    actions:\n      - op: create_job\n"
                          "        body:\n          jobDetails: \"Alarm {{#open}} x\"\n");
    cr_expect(strstr(all, "r.yaml:6:") != NULL && strstr(all, "template:") != NULL, "got: %s", all);
    free(all);
}

Test(rules, body_shape_and_ids_are_checked_per_operation)
{
    char *all = load_fail("rules:\n  - name: s\n    actions:\n"
                          "      - op: complete_job\n        body: {completedNote: x}\n"
                          "      - op: list_sites\n        body: {name: x}\n"
                          "      - op: create_job\n        body: [1]\n");
    cr_expect(strstr(all, "complete_job needs id:") != NULL, "got: %s", all);
    cr_expect(strstr(all, "list_sites takes no body") != NULL, "got: %s", all);
    cr_expect(strstr(all, "body: expected a mapping") != NULL, "got: %s", all);
    free(all);
}

Test(rules, unknown_sources_and_duplicate_names_are_errors)
{
    char *all = load_fail("rules:\n  - name: a\n    sources: [prom, prometheus]\n" IGNORE_ACTIONS
                          "  - name: a\n" IGNORE_ACTIONS);
    cr_expect(strstr(all, "r.yaml:3:21: rule 'a': unknown source 'prometheus'") != NULL, "got: %s",
              all);
    cr_expect(strstr(all, "rule 'a' is already defined at r.yaml:2") != NULL, "got: %s", all);
    free(all);
}

Test(rules, unknown_keys_and_conditions_without_operators_are_errors)
{
    char *all =
        load_fail("rules:\n  - name: k\n    wen: {}\n    when: {field: x}\n" IGNORE_ACTIONS);
    cr_expect(strstr(all, "r.yaml:3:5: rule 'k': unknown key 'wen'") != NULL, "got: %s", all);
    cr_expect(strstr(all, "a condition needs an operator") != NULL, "got: %s", all);
    free(all);
}

Test(rules, variables_nothing_provides_are_warned_about)
{
    yamlx_diags_t dg;
    yamlx_diags_init(&dg);
    struct rules_opts o = opts();
    json_t *vars = json_pack("{s:s}", "fallback_site", "HQ");
    o.vars = vars;
    rules_t *r = rules_load_text(
        "r.yaml",
        "rules:\n  - name: w\n    sources: [prom]\n    when: {field: title, regex: "
        "'(?<host>\\w+)'}\n"
        "    actions:\n      - op: create_job\n        body:\n"
        "          jobDetails: \"{{title}} {{host}} {{hots}} {{vars.fallback_site}} "
        "{{vars.nope}} {{lookup.site.siteId}} {{captures.hots}}\"\n",
        &o, &dg);
    cr_assert_not_null(r);
    cr_expect_eq(dg.errors, 0);
    cr_expect_eq(dg.warnings, 4);
    int hots = 0, nope = 0, site = 0, cap = 0;
    for (size_t i = 0; i < dg.n; i++) {
        cr_log_info("diag: %s", dg.msg[i]);
        hots |= strstr(dg.msg[i], "r.yaml:8:43: warning: rule 'w': 'hots'") != NULL;
        nope |= strstr(dg.msg[i], "'vars.nope'") != NULL;
        site |= strstr(dg.msg[i], "'lookup.site.siteId': no earlier step has lookup: site") != NULL;
        cap |= strstr(dg.msg[i], "'captures.hots'") != NULL;
    }
    cr_expect(hots && nope && site && cap);
    rules_unref(r);
    json_decref(vars);
    yamlx_diags_free(&dg);
}

Test(rules, a_rule_set_is_reference_counted)
{
    rules_t *r = load_ok("- name: only\n  actions: [{op: ignore}]\n");
    cr_expect_eq(rules_count(r), 1);
    rules_t *r2 = rules_ref(r);
    rules_unref(r);
    cr_expect_str_eq(rule_name(rules_at(r2, 0)), "only");
    rules_unref(r2);
}
