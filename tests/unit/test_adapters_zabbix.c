/* Unit tests for the zabbix adapter over webhook media type bodies
 * (tests/golden/payloads/zabbix/): problem, recovery, update, the parameter spellings of
 * Zabbix templates and guides, unexpanded macros, options and rejected bodies. */
#include "adapter_testutil.h"

Test(zabbix, a_problem_becomes_a_firing_event_keyed_by_the_event_id)
{
    json_t *events = run_file("zabbix", "problem.json", NULL);
    cr_assert_eq(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "kind", "zabbix");
    assert_field(ev, "status", "firing");
    assert_field(ev, "key", "50917");
    assert_field(ev, "severity", "high");
    assert_field(ev, "title", "Server room SR-2 temperature above 30 °C");
    cr_assert(strncmp(str(ev, "text"), "Problem started at 14:05:31", 27) == 0);
    assert_field(ev, "labels.site", "LDS-HQ");
    assert_field(ev, "labels.service", "hvac");
    assert_field(ev, "site", "LDS-HQ");
    assert_field(ev, "time", "2025-04-08T14:05:31.000Z");
    assert_field(ev, "url", "https://zabbix.example.com/tr_events.php?triggerid=23154&eventid=50917");
    assert_field(ev, "event_id", "50917");
    assert_field(ev, "recovery_event_id", "");
    assert_field(ev, "trigger_id", "23154");
    assert_field(ev, "host", "sr2-sensor");
    assert_field(ev, "nseverity", "4");
    assert_field(ev, "opdata", "Current temperature: 31.2 °C");
    assert_field(ev, "sender_status", "1");
    cr_assert(json_is_false(json_object_get(ev, "update")));
    assert_field(ev, "raw.host_ip", "10.20.1.14");
    json_decref(events);
}

Test(zabbix, the_recovery_resolves_the_problems_key_at_the_recovery_time)
{
    json_t *events = run_file("zabbix", "recovery.json", NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "resolved");
    assert_field(ev, "key", "50917");
    assert_field(ev, "recovery_event_id", "51003");
    assert_field(ev, "time", "2025-04-08T15:20:02.000Z");
    assert_field(ev, "url", "https://zabbix.example.com/tr_events.php?triggerid=23154&eventid=50917");
    json_decref(events);
}

Test(zabbix, utc_offset_places_zabbix_local_times)
{
    json_t *events = run_file("zabbix", "problem.json", "{\"utc_offset\":\"+01:00\"}");
    assert_field(json_array_get(events, 0), "time", "2025-04-08T13:05:31.000Z");
    json_decref(events);
}

Test(zabbix, status_words_tag_strings_and_other_spellings_are_understood)
{
    json_t *events = run_file("zabbix", "status_style.json", NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "firing");
    assert_field(ev, "key", "77120");
    assert_field(ev, "title", "Generator G1 fuel level low");
    assert_field(ev, "text", "Fuel level 18% on generator G1");
    assert_field(ev, "host", "gen-g1");
    assert_field(ev, "severity", "disaster");
    assert_field(ev, "labels.site", "BRS-02");
    assert_field(ev, "labels.service", "power");
    assert_field(ev, "labels.ups", "");
    assert_field(ev, "site", "BRS-02");
    assert_field(ev, "time", "2025-04-08T06:30:00.000Z");
    assert_field(ev, "sender_status", "PROBLEM");
    cr_assert(json_is_false(json_object_get(ev, "update")), "a macro is not an update");
    json_decref(events);

    const char *ok = "{\"eventid\":\"77120\",\"status\":\"OK\"}";
    events = run_body("zabbix", ok, strlen(ok), "application/json", NULL);
    assert_field(json_array_get(events, 0), "status", "resolved");
    json_decref(events);
    const char *rec = "{\"event_id\":\"5\",\"event_recovery_id\":\"6\"}";
    events = run_body("zabbix", rec, strlen(rec), NULL, NULL);
    assert_field(json_array_get(events, 0), "status", "resolved");
    json_decref(events);
}

Test(zabbix, macro_named_parameters_and_unexpanded_macros_are_handled)
{
    json_t *events = run_file("zabbix", "dotted_names.json", NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "key", "90001");
    assert_field(ev, "status", "firing");
    assert_field(ev, "title", "Lift L3 controller unreachable");
    assert_field(ev, "severity", "average");
    assert_field(ev, "text", "");
    assert_field(ev, "host", "lift-ctrl-l3");
    assert_field(ev, "labels.building", "B2");
    assert_field(ev, "labels.lift", "L3");
    assert_field(ev, "time", "2025-04-08T07:45:10.000Z");
    assert_field(ev, "trigger_id", "31337");
    assert_field(ev, "url", "");
    json_decref(events);
}

Test(zabbix, an_update_keeps_the_problem_open_and_is_flagged)
{
    json_t *events = run_file("zabbix", "update.json", NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "firing");
    assert_field(ev, "key", "50917");
    cr_assert(json_is_true(json_object_get(ev, "update")));
    assert_field(ev, "severity", "high");
    assert_field(ev, "labels.site", "LDS-HQ");
    assert_field(ev, "labels.noisy", "");
    assert_field(ev, "host", "sr2-sensor");
    assert_field(ev, "time", "2025-04-08T14:05:31.000Z");
    assert_field(ev, "raw.event_update_message", "Engineer dispatched");
    json_decref(events);
}

Test(zabbix, options_choose_fields_the_status_words_and_the_site_tag)
{
    const char *body = "{\"event_id\":\"11\",\"event_value\":\"1\",\"ticket\":\"Z-11\","
                       "\"state\":\"UP\",\"event_tags\":\"campus:South\",\"sev\":\"P1\"}";
    json_t *events = run_body("zabbix", body, strlen(body), NULL,
                              "{\"fields\":{\"key\":\"ticket\",\"status\":\"state\","
                              "\"severity\":\"sev\"},\"status_map\":{\"up\":\"resolved\"},"
                              "\"site_tag\":\"campus\",\"defaults\":{\"title\":\"Zabbix alarm\"}}");
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "key", "Z-11");
    assert_field(ev, "status", "resolved");
    assert_field(ev, "severity", "p1");
    assert_field(ev, "site", "South");
    assert_field(ev, "title", "Zabbix alarm");
    assert_field(ev, "event_id", "11");
    json_decref(events);
}

Test(zabbix, a_body_without_a_usable_event_id_is_rejected)
{
    size_t len;
    char *body = payload("zabbix", "test_dialog.json", &len);
    assert_rejected("zabbix", body, "application/json", NULL, "missing required field event_id");
    free(body);
    assert_rejected("zabbix", "[{\"event_id\":\"1\"}]", NULL, NULL, "expected a JSON object");
    assert_rejected("zabbix", "{\"event_id\":1", NULL, NULL, "line 1");
    assert_rejected("zabbix", "{}", NULL, "{\"utc_offset\":\"1h\"}", "utc_offset");
}
