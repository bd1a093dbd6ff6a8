/* Unit tests for the grafana adapter over realistic webhook payloads
 * (tests/golden/payloads/grafana/): unified alerting firing and resolved, legacy dashboard
 * alerts, and rejected bodies. */
#include "adapter_testutil.h"

Test(grafana, unified_alerts_become_one_event_each_with_grafana_extras)
{
    json_t *events = run_file("grafana", "unified_firing.json", NULL);
    cr_assert_eq(json_array_size(events), 2);
    json_t *a = json_array_get(events, 0), *b = json_array_get(events, 1);
    assert_field(a, "kind", "grafana");
    assert_field(a, "status", "firing");
    assert_field(a, "key", "c6eadffa33fcdf37");
    assert_field(a, "severity", "warning");
    assert_field(a, "title", "NVR cctv-nvr-1 memory high");
    assert_field(a, "text", "The NVR has used 94% of its memory for 15 minutes");
    assert_field(a, "site", "MAN-01");
    assert_field(a, "time", "2025-04-08T07:51:03.157Z");
    assert_field(a, "url", "https://grafana.example.com/d/nvr01?orgId=1&viewPanel=4");
    assert_field(a, "labels.grafana_folder", "Facilities");
    assert_field(a, "dashboardURL", "https://grafana.example.com/d/nvr01?orgId=1");
    assert_field(a, "panelURL", "https://grafana.example.com/d/nvr01?orgId=1&viewPanel=4");
    cr_assert(strstr(str(a, "silenceURL"), "/alerting/silence/new") != NULL);
    cr_assert(strstr(str(a, "valueString"), "value=94.23943737541908") != NULL);
    cr_assert_float_eq(json_real_value(json_object_get(json_object_get(a, "values"), "B")),
                       94.23943737541908, 1e-9);
    cr_assert_eq(json_integer_value(json_object_get(a, "orgId")), 1);
    assert_field(a, "group.title", "[FIRING:2] Facilities");
    assert_field(a, "group.state", "alerting");
    assert_field(a, "group.receiver", "TrackplanFM");
    cr_assert(strncmp(str(a, "group.message"), "**Firing**", 10) == 0);
    assert_field(a, "raw.fingerprint", "c6eadffa33fcdf37");

    assert_field(b, "key", "bc97ff14869b13e3");
    assert_field(b, "title", "High CPU usage");
    assert_field(b, "severity", "");
    assert_field(b, "site", "");
    assert_field(b, "url", "https://grafana.example.com/alerting/grafana/d1rdpdv7k/view?orgId=1");
    cr_assert(json_is_object(json_object_get(b, "values")));
    cr_assert_eq(json_object_size(json_object_get(b, "values")), 0);
    json_decref(events);
}

Test(grafana, a_unified_resolve_keeps_the_key_and_ends_at_endsAt)
{
    json_t *events = run_file("grafana", "unified_resolved.json", NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "resolved");
    assert_field(ev, "key", "c6eadffa33fcdf37");
    assert_field(ev, "time", "2025-04-08T08:21:03.157Z");
    assert_field(ev, "url", "https://grafana.example.com/d/nvr01?orgId=1");
    assert_field(ev, "group.state", "ok");
    json_decref(events);
}

Test(grafana, site_label_chooses_the_label_that_names_the_site)
{
    json_t *events = run_file("grafana", "unified_firing.json", "{\"site_label\":\"instance\"}");
    assert_field(json_array_get(events, 0), "site", "cctv-nvr-1");
    assert_field(json_array_get(events, 1), "site", "cctv-nvr-2");
    json_decref(events);
}

Test(grafana, a_legacy_alerting_notification_becomes_one_event)
{
    json_t *events = run_file("grafana", "legacy_alerting.json", NULL);
    cr_assert_eq(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "firing");
    assert_field(ev, "key", "42");
    assert_field(ev, "title", "Server room temperature");
    assert_field(ev, "text", "Server room SR-2 is above 30 °C");
    assert_field(ev, "severity", "high");
    assert_field(ev, "site", "LDS-HQ");
    assert_field(ev, "labels.floor", "2");
    assert_field(ev, "url", "https://grafana.example.com/d/srv/server-rooms?tab=alert&editPanel=3&orgId=1");
    assert_field(ev, "time", RECEIVED);
    assert_field(ev, "state", "alerting");
    assert_field(ev, "ruleName", "Server room temperature");
    assert_field(ev, "evalMatches[0].metric", "Server room temperature");
    assert_field(ev, "imageUrl", "https://grafana.example.com/public/img/attachments/render-12.png");
    cr_assert(json_is_true(json_object_get(ev, "legacy")));
    cr_assert_eq(json_integer_value(json_object_get(ev, "ruleId")), 42);
    cr_assert_eq(json_integer_value(json_object_get(ev, "panelId")), 3);
    json_decref(events);
}

Test(grafana, a_legacy_ok_resolves_the_same_key)
{
    json_t *events = run_file("grafana", "legacy_ok.json", NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "resolved");
    assert_field(ev, "key", "42");
    assert_field(ev, "severity", "");
    json_decref(events);
}

Test(grafana, legacy_paused_and_pending_notifications_produce_no_event)
{
    const char *paused = "{\"ruleId\":1,\"ruleName\":\"r\",\"state\":\"paused\"}";
    json_t *events = run_body("grafana", paused, strlen(paused), NULL, NULL);
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
    const char *nodata = "{\"ruleName\":\"Boiler feed\",\"state\":\"no_data\"}";
    events = run_body("grafana", nodata, strlen(nodata), NULL, NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "firing");
    cr_assert_eq(strlen(str(ev, "key")), 32, "a rule-name hash stands in for the id");
    json_decref(events);
}

Test(grafana, bodies_that_are_not_grafana_notifications_are_rejected)
{
    assert_rejected("grafana", "{\"receiver\":\"x\"}", NULL, NULL, "missing required field alerts");
    assert_rejected("grafana", "{\"ruleId\":1,\"state\":\"exploded\"}", NULL, NULL,
                    "unknown legacy alert state 'exploded'");
    assert_rejected("grafana", "[]", NULL, NULL, "expected a JSON object");
    assert_rejected("grafana", "{\"alerts\":[3]}", NULL, NULL, "alerts[0] is not an object");
    assert_rejected("grafana", "{}", NULL, "{\"site\":\"x\"}", "unknown option 'site'");
}
