/* Unit tests for the alertmanager adapter over realistic webhook payloads
 * (tests/golden/payloads/alertmanager/): firing, resolved, several alerts, missing optional
 * fields, odd casing, and rejected bodies. */
/* Every event of these tests comes from the source "prom". */
#define ADAPTER_TEST_SOURCE "prom"
#include "adapter_testutil.h"

Test(alertmanager, a_firing_alert_becomes_one_event_with_normalised_fields)
{
    json_t *events = run_file("alertmanager", "firing.json", NULL);
    cr_assert_eq(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "source", "prom");
    assert_field(ev, "kind", "alertmanager");
    assert_field(ev, "status", "firing");
    assert_field(ev, "key", "5a1fd7cb2a8c3e91");
    assert_field(ev, "severity", "critical");
    assert_field(ev, "title", "Chiller 2 supply temperature above 12 °C");
    assert_field(ev, "text", "Supply water temperature has been 13.4 °C for 10 minutes.");
    assert_field(ev, "labels.plant", "chiller-2");
    assert_field(ev, "labels.severity", "Critical");
    assert_field(ev, "time", "2025-04-08T09:12:44.123Z");
    assert_field(ev, "url", "http://prometheus.example.com:9090/graph?g0.expr="
                            "chiller_supply_temp_celsius+%3E+12&g0.tab=1");
    assert_field(ev, "site", "LDS-HQ");
    assert_field(ev, "fingerprint", "5a1fd7cb2a8c3e91");
    assert_field(ev, "annotations.runbook_url", "https://wiki.example.com/runbooks/chiller-temp");
    assert_field(ev, "startsAt", "2025-04-08T09:12:44.123456789Z");
    assert_field(ev, "endsAt", "0001-01-01T00:00:00Z");
    assert_field(ev, "group.receiver", "trackbridge");
    assert_field(ev, "group.groupKey", "{}:{alertname=\"ChillerSupplyTempHigh\"}");
    assert_field(ev, "group.externalURL", "http://alertmanager.example.com:9093");
    assert_field(ev, "group.groupLabels.alertname", "ChillerSupplyTempHigh");
    assert_field(ev, "group.commonAnnotations.summary", "Chiller 2 supply temperature above 12 °C");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(ev, "group"),
                                                    "truncatedAlerts")), 0);
    assert_field(ev, "raw.labels.alertname", "ChillerSupplyTempHigh");
    assert_field(ev, "raw.endsAt", "0001-01-01T00:00:00Z");
    json_decref(events);
}

Test(alertmanager, the_resolve_keeps_the_key_and_takes_its_time_from_endsAt)
{
    json_t *f = run_file("alertmanager", "firing.json", NULL);
    json_t *events = run_file("alertmanager", "resolved.json", NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "resolved");
    cr_assert_str_eq(str(ev, "key"), str(json_array_get(f, 0), "key"));
    assert_field(ev, "time", "2025-04-08T09:02:14.500Z");
    assert_field(ev, "group.status", "resolved");
    json_decref(events);
    json_decref(f);
}

Test(alertmanager, each_alert_of_a_group_is_its_own_event_in_order)
{
    json_t *events = run_file("alertmanager", "multi.json", "{\"site_label\":\"building\"}");
    cr_assert_eq(json_array_size(events), 3);
    json_t *a = json_array_get(events, 0), *b = json_array_get(events, 1);
    json_t *c = json_array_get(events, 2);
    assert_field(a, "status", "firing");
    assert_field(a, "key", "0b6e1c43d2f7aa10");
    assert_field(a, "severity", "warning");
    assert_field(a, "site", "B2");
    assert_field(a, "title", "UPS ups-b2-1 on battery");

    assert_field(b, "status", "resolved");
    assert_field(b, "severity", "high");
    assert_field(b, "site", "B1");
    assert_field(b, "title", "DoorForcedOpen");
    assert_field(b, "text", "Door D-114 was forced open.");
    assert_field(b, "time", "2025-04-08T10:55:30.000Z");

    assert_field(c, "status", "firing");
    assert_field(c, "fingerprint", "");
    cr_assert_eq(strlen(str(c, "key")), 32, "a label hash stands in for the fingerprint");
    assert_field(c, "severity", "");
    assert_field(c, "title", "LiftOutOfService");
    assert_field(c, "text", "");
    assert_field(c, "url", "");
    assert_field(c, "time", "2025-04-08T10:59:00.000Z");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(c, "group"),
                                                    "truncatedAlerts")), 2);
    json_decref(events);
}

Test(alertmanager, the_label_hash_key_is_stable_across_repeats)
{
    json_t *a = run_file("alertmanager", "minimal.json", NULL);
    json_t *b = run_file("alertmanager", "minimal.json", NULL);
    cr_assert_str_eq(str(json_array_get(a, 0), "key"), str(json_array_get(b, 0), "key"));
    json_decref(a);
    json_decref(b);
}

Test(alertmanager, missing_optional_fields_become_empty_strings_and_defaults)
{
    json_t *events = run_file("alertmanager", "minimal.json", NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "firing");
    assert_field(ev, "title", "DiskFull");
    assert_field(ev, "site", "DC2");
    assert_field(ev, "time", RECEIVED);
    assert_field(ev, "startsAt", "");
    assert_field(ev, "group.receiver", "");
    const char *strings[] = {"severity", "text", "url", "fingerprint", "endsAt"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        assert_field(ev, strings[i], "");
    cr_assert(json_is_object(json_object_get(ev, "annotations")));
    json_decref(events);
}

Test(alertmanager, member_names_in_another_case_are_still_found)
{
    json_t *events =
        run_file("alertmanager", "odd_casing.json", "{\"site_label\":\"campus\"}");
    cr_assert_eq(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "resolved");
    assert_field(ev, "key", "aa00bb11cc22dd33");
    assert_field(ev, "severity", "major");
    assert_field(ev, "title", "Boiler 1 lockout");
    assert_field(ev, "site", "North");
    assert_field(ev, "time", "2025-04-07T23:30:00.000Z");
    assert_field(ev, "url", "http://prom.example.com/graph");
    json_decref(events);
}

Test(alertmanager, bodies_that_are_not_webhook_payloads_are_rejected_with_the_reason)
{
    const char *cases[][2] = {
        {"[1,2]", "expected a JSON object"},
        {"{\"receiver\":\"x\"}", "missing required field alerts"},
        {"{\"alerts\":{}}", "missing required field alerts"},
        {"{\"version\":\"5\",\"alerts\":[]}", "unsupported webhook payload version 5"},
        {"{\"alerts\":[{},\"x\"]}", "alerts[1] is not an object"},
        {"{\"alerts\":[", "line 1, column"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = reject_body("alertmanager", cases[i][0], "application/json", NULL);
        cr_assert(err && strstr(err, cases[i][1]), "%s: '%s'", cases[i][0], err ? err : "");
        free(err);
    }
}

Test(alertmanager, an_empty_alert_list_gives_no_events)
{
    const char *body = "{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[]}";
    struct adapter_input in = {body, strlen(body), NULL, NULL, NULL, "prom", RECEIVED, NULL, 0};
    json_t *events = NULL;
    char *err = NULL;
    cr_assert_eq(adapter_run("alertmanager", &in, NULL, &events, &err), ADAPTER_OK);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
}

/* The intake's check (check_only) takes a quick path for plain payloads: it must refuse
 * exactly what the full run refuses, and leave every unusual body to jansson. */
static enum adapter_result am_run(const char *body, int check_only, int *quick)
{
    struct adapter_input in = {body, strlen(body), "application/json", NULL, NULL, "prom",
                               RECEIVED, NULL, check_only};
    struct adapter_limits lim = {8, 3};
    if (quick)
        *quick = adapter_quick_alerts(&in, &lim, 1);
    json_t *events = NULL;
    char *err = NULL;
    enum adapter_result r = adapter_run("alertmanager", &in, &lim, &events, &err);
    json_decref(events);
    free(err);
    return r;
}

Test(alertmanager, the_intake_check_agrees_with_the_full_run)
{
    static const struct {
        const char *body;
        int quick; /* the quick path is sure */
    } cases[] = {
        {"{\"version\":\"4\",\"alerts\":[{\"labels\":{\"a\":\"b\"}},{}]}", 1},
        {" \r\n{\"alerts\":[], \"x\": [1, -0.5e-3, true, false, null, \"\\u00e9\\n\"]}\n", 1},
        {"\xEF\xBB\xBF{\"alerts\":[{\"t\":\"caf\xC3\xA9 \xF0\x9F\x94\xA5\"}]}", 1},
        {"{\"version\":\"3\",\"alerts\":[]}", 0},
        {"{\"version\":4,\"alerts\":[]}", 0},
        {"{\"VERSION\":\"3\",\"alerts\":[]}", 0},
        {"{\"Alerts\":[]}", 0},
        {"{\"alerts\":[{}, 1]}", 0},
        {"{\"alerts\":[{},{},{},{}]}", 0},
        {"{\"alerts\":{}}", 0},
        {"{\"alerts\":[]} x", 0},
        {"{\"alerts\":[],}", 0},
        {"{\"alerts\":[], \"n\": 12345678901234567890}", 0},
        {"{\"alerts\":[], \"n\": 1e999}", 0},
        {"{\"alerts\":[], \"n\": 01}", 0},
        {"{\"alerts\":[], \"s\": \"\\u0000\"}", 0},
        {"{\"alerts\":[], \"s\": \"\\ud800\"}", 0},
        {"{\"alerts\":[], \"s\": \"\xC0\xAF\"}", 0},
        {"{\"alerts\":[], \"s\": \"\xED\xA0\x80\"}", 0},
        {"{\"alerts\":[], \"s\": \"tab\there\"}", 0},
        {"{\"alerts\":[[[[[[[[[]]]]]]]]]}", 0},
        {"{\"al\\u0065rts\":[]}", 0},
        {"[]", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int quick = -1;
        enum adapter_result checked = am_run(cases[i].body, 1, &quick);
        enum adapter_result full = am_run(cases[i].body, 0, NULL);
        cr_expect_eq(quick, cases[i].quick, "case %zu: quick path %d", i, quick);
        cr_expect_eq(checked, full, "case %zu: the check says %d, the full run %d", i,
                     (int)checked, (int)full);
        if (cases[i].quick)
            cr_expect_eq(full, ADAPTER_OK, "case %zu: a quick yes is a yes", i);
    }
}
