/* Unit tests for the generic json and form adapters: default field names, split and field
 * options, status maps and defaults, form decoding, and rejected bodies. Payloads live in
 * tests/golden/payloads/json/; form bodies are written inline. */
#include "adapter_testutil.h"

#define FORM "application/x-www-form-urlencoded"

Test(json, a_single_object_maps_through_the_default_field_names)
{
    json_t *events = run_file("json", "single.json", NULL);
    cr_assert_eq(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "kind", "json");
    assert_field(ev, "status", "firing");
    assert_field(ev, "sender_status", "Triggered");
    assert_field(ev, "key", "INC-20250408-0042");
    assert_field(ev, "severity", "major");
    assert_field(ev, "title", "Cold room 3 door left open");
    assert_field(ev, "text", "Door contact open for 20 minutes; room temperature rising.");
    assert_field(ev, "time", "2025-04-08T08:13:20.000Z");
    assert_field(ev, "url", "https://monitor.example.com/incidents/INC-20250408-0042");
    assert_field(ev, "site", "DUB-WH");
    assert_field(ev, "labels.zone", "cold-store");
    assert_field(ev, "labels.room", "3");
    assert_field(ev, "labels.escalated", "true");
    assert_field(ev, "raw.id", "INC-20250408-0042");
    json_decref(events);
}

static const char *batch_options =
    "{\"split\":\"data.events[*]\","
    "\"fields\":{\"key\":\"alarm.ref\",\"title\":\"alarm.label\",\"status\":\"condition\","
    "\"severity\":\"level\",\"time\":\"at\",\"site\":[\"where.site\",\"where.building\"]},"
    "\"status_map\":{\"rtn\":\"resolved\"},"
    "\"defaults\":{\"url\":\"https://bms.example.com/\",\"text\":\"(no details)\"}}";

Test(json, split_fields_status_map_and_defaults_shape_a_batch)
{
    json_t *events = run_file("json", "batch.json", batch_options);
    cr_assert_eq(json_array_size(events), 2);
    json_t *a = json_array_get(events, 0), *b = json_array_get(events, 1);
    assert_field(a, "key", "WL-7");
    assert_field(a, "title", "Water leak under sink, kitchen 2");
    assert_field(a, "status", "firing");
    assert_field(a, "severity", "p2");
    assert_field(a, "time", "2025-04-08T11:58:01.000Z");
    assert_field(a, "site", "Riverside House");
    assert_field(a, "url", "https://bms.example.com/");
    assert_field(a, "text", "(no details)");
    assert_field(a, "raw.alarm.ref", "WL-7");
    assert_field(b, "key", "SD-3");
    assert_field(b, "status", "resolved");
    assert_field(b, "sender_status", "RTN");
    assert_field(b, "severity", "p3");
    json_decref(events);
}

Test(json, a_split_that_selects_nothing_gives_no_events)
{
    const char *body = "{\"data\":{}}";
    json_t *events = run_body("json", body, strlen(body), NULL, "{\"split\":\"data.events[*]\"}");
    cr_assert_eq(json_array_size(events), 0);
    json_decref(events);
}

Test(json, without_an_id_the_key_is_a_stable_hash_of_the_labels)
{
    json_t *events = run_file("json", "no_id.json", NULL);
    json_t *ev = json_array_get(events, 0);
    json_t *labels = json_pack("{s:s,s:s}", "block", "B", "asset", "WC-B-04");
    char *expect = adapter_labels_hash(labels);
    assert_field(ev, "key", expect);
    assert_field(ev, "status", "firing");
    assert_field(ev, "title", "Toilet block B flush fault");
    assert_field(ev, "time", RECEIVED);
    free(expect);
    json_decref(labels);
    json_decref(events);

    const char *a = "{\"title\":\"Lift stuck\",\"site\":\"B2\",\"status\":\"open\"}";
    const char *b = "{\"title\":\"Lift stuck\",\"site\":\"B2\",\"status\":\"closed\"}";
    json_t *ea = run_body("json", a, strlen(a), NULL, NULL);
    json_t *eb = run_body("json", b, strlen(b), NULL, NULL);
    cr_assert_str_eq(str(json_array_get(ea, 0), "key"), str(json_array_get(eb, 0), "key"));
    assert_field(json_array_get(eb, 0), "status", "resolved");
    json_decref(ea);
    json_decref(eb);
}

Test(json, unknown_or_absent_status_fires_and_keeps_the_senders_word)
{
    const char *body = "{\"id\":\"1\",\"status\":\"Acknowledged\"}";
    json_t *events = run_body("json", body, strlen(body), NULL, NULL);
    assert_field(json_array_get(events, 0), "status", "firing");
    assert_field(json_array_get(events, 0), "sender_status", "Acknowledged");
    json_decref(events);
    const char *none = "{\"id\":\"1\"}";
    events = run_body("json", none, strlen(none), NULL, NULL);
    assert_field(json_array_get(events, 0), "sender_status", "");
    assert_field(json_array_get(events, 0), "status", "firing");
    json_decref(events);
}

Test(json, a_list_of_paths_falls_back_in_order)
{
    const char *body = "{\"headline\":\"\",\"summary\":\"Fallback title\"}";
    json_t *events = run_body("json", body, strlen(body), NULL,
                              "{\"fields\":{\"title\":[\"headline\",\"summary\"]}}");
    assert_field(json_array_get(events, 0), "title", "Fallback title");
    json_decref(events);
}

Test(json, odd_casing_of_member_names_is_tolerated)
{
    const char *body = "{\"ID\":\"A1\",\"Status\":\"RESOLVED\",\"Title\":\"Pump P2 trip\","
                       "\"Severity\":\"Minor\",\"Site\":\"West\"}";
    json_t *events = run_body("json", body, strlen(body), NULL, NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "key", "A1");
    assert_field(ev, "status", "resolved");
    assert_field(ev, "title", "Pump P2 trip");
    assert_field(ev, "severity", "minor");
    assert_field(ev, "site", "West");
    json_decref(events);
}

Test(json, bad_bodies_are_rejected_with_the_reason)
{
    assert_rejected("json", "{\"a\":1,}", "application/json", NULL, "line 1, column");
    assert_rejected("json", "", NULL, NULL, "empty body");
    assert_rejected("json", "{}", NULL, "{\"split\":\"x\"}", "split must select several items");
}

Test(form, a_urlencoded_body_becomes_one_mapped_event)
{
    const char *body = "status=ALARM&title=Boiler+1+lockout&text=Flame+failure%2C+reset+required"
                       "&site=Plant%20Room&severity=High&key=BLR-1&tag=a&tag=b&pct=80%&uni=%C3%A9t%C3%A9"
                       "&&novalue";
    json_t *events = run_body("form", body, strlen(body), FORM "; charset=UTF-8", NULL);
    cr_assert_eq(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "kind", "form");
    assert_field(ev, "status", "firing");
    assert_field(ev, "title", "Boiler 1 lockout");
    assert_field(ev, "text", "Flame failure, reset required");
    assert_field(ev, "site", "Plant Room");
    assert_field(ev, "severity", "high");
    assert_field(ev, "key", "BLR-1");
    assert_field(ev, "raw.tag", "b");
    assert_field(ev, "raw.pct", "80%");
    assert_field(ev, "raw.uni", "\xc3\xa9t\xc3\xa9");
    assert_field(ev, "raw.novalue", "");
    assert_field(ev, "repeated.tag[0]", "a");
    assert_field(ev, "repeated.tag[1]", "b");
    cr_assert_eq(json_object_size(json_object_get(ev, "repeated")), 1);
    json_decref(events);
}

Test(form, fields_and_status_map_apply_to_forms_too)
{
    const char *body = "subject=Lift+L1+stuck&state=reset&ref=L1";
    json_t *events = run_body("form", body, strlen(body), "Application/X-WWW-Form-Urlencoded",
                              "{\"fields\":{\"title\":\"subject\",\"status\":\"state\","
                              "\"key\":\"ref\"},\"status_map\":{\"reset\":\"resolved\"}}");
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "title", "Lift L1 stuck");
    assert_field(ev, "status", "resolved");
    assert_field(ev, "key", "L1");
    json_decref(events);
}

Test(form, wrong_content_types_and_undecodable_fields_are_rejected)
{
    assert_rejected("form", "a=1", "application/json", NULL,
                    "content type application/json is not application/x-www-form-urlencoded");
    assert_rejected("form", "a=1", NULL, NULL, "content type (none) is not");
    assert_rejected("form", "a=x%00y", FORM, NULL, "NUL byte in form field at byte 4");
    assert_rejected("form", "a=1&b=%FF", FORM, NULL, "form field at byte 7 is not valid UTF-8");
    assert_rejected("form", "", FORM, NULL, "empty form body");
    assert_rejected("form", "&&=x", FORM, NULL, "empty form body");
}

Test(form, a_form_with_too_many_fields_is_rejected)
{
    size_t n = 1100 * 4;
    char *body = malloc(n + 1);
    size_t len = 0;
    for (int i = 0; i < 1100; i++) {
        memcpy(body + len, "a=1&", 4);
        len += 4;
    }
    body[len] = '\0';
    assert_rejected("form", body, FORM, NULL, "too many form fields");
    free(body);
}
