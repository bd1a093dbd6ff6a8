/* Unit tests for the bms adapter over Niagara-, BACnet-gateway- and Metasys-style alarm JSON
 * (tests/golden/payloads/bms/): state words, priorities, keys, sites, options and rejected
 * bodies. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "common/util.h"
#include "jpath.h"
#include "testutil.h"

#define RECEIVED "2025-04-08T12:00:00.000Z"

static char *payload(const char *kind, const char *name, size_t *len)
{
    char *path = util_asprintf("%s/tests/golden/payloads/%s/%s", tu_env("TB_SRC", "."), kind,
                               name);
    char *body = util_read_file(path, 1 << 20, len);
    cr_assert_not_null(body, "cannot read %s", path);
    free(path);
    return body;
}

/* Runs kind over body with options (JSON text or NULL); the test fails unless it is OK. */
static json_t *run_body(const char *kind, const char *body, size_t len, const char *ctype,
                        const char *options)
{
    json_t *o = NULL;
    if (options) {
        json_error_t e;
        o = json_loads(options, 0, &e);
        cr_assert_not_null(o, "bad options: %s", e.text);
    }
    struct adapter_input in = {body, len, ctype, NULL, NULL, "src1", RECEIVED, o};
    json_t *events = NULL;
    char *err = NULL;
    enum adapter_result r = adapter_run(kind, &in, NULL, &events, &err);
    cr_assert_eq(r, ADAPTER_OK, "%s: %s", kind, err ? err : "");
    cr_assert(json_is_array(events));
    json_decref(o);
    return events;
}

static json_t *run_file(const char *kind, const char *name, const char *options)
{
    size_t len;
    char *body = payload(kind, name, &len);
    json_t *events = run_body(kind, body, len, "application/json", options);
    free(body);
    return events;
}

/* The reason a body is rejected with (malloc'd). */
static char *reject_body(const char *kind, const char *body, const char *ctype,
                         const char *options)
{
    json_t *o = options ? json_loads(options, 0, NULL) : NULL;
    struct adapter_input in = {body, strlen(body), ctype, NULL, NULL, "src1", RECEIVED, o};
    json_t *events = NULL;
    char *err = NULL;
    cr_assert_eq(adapter_run(kind, &in, NULL, &events, &err), ADAPTER_REJECT, "%s", body);
    cr_assert_null(events);
    cr_assert_not_null(err);
    json_decref(o);
    return err;
}

#define assert_rejected(kind, body, ctype, options, part)                                    \
    do {                                                                                     \
        char *err_ = reject_body(kind, body, ctype, options);                                \
        cr_assert(strstr(err_, part) != NULL, "'%s' lacks '%s'", err_, part);                \
        free(err_);                                                                          \
    } while (0)

/* String at path in v; fails the test when absent or not a string. */
static const char *str(json_t *v, const char *path)
{
    jpath_t *p = jpath_compile(path, NULL, 0, NULL);
    cr_assert_not_null(p, "%s", path);
    json_t *s = jpath_first(p, v);
    jpath_free(p);
    cr_assert(json_is_string(s), "%s is not a string", path);
    return json_string_value(s);
}

#define assert_field(ev, path, expect) cr_assert_str_eq(str(ev, path), expect, "%s", path)

Test(bms, a_niagara_offnormal_alarm_fires_keyed_by_its_uuid)
{
    json_t *events = run_file("bms", "niagara_offnormal.json", NULL);
    cr_assert_eq(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "kind", "bms");
    assert_field(ev, "status", "firing");
    assert_field(ev, "key", "5f1d2a7e-9c1b-4f0a-8b3e-0d6a9b2c4e11");
    assert_field(ev, "severity", "critical");
    assert_field(ev, "title", "AHU-1 Supply Air Temp: Supply air temperature high limit");
    assert_field(ev, "text", "Supply air temperature high limit");
    assert_field(ev, "time", "2025-04-08T12:15:42.118Z");
    assert_field(ev, "site", "BOS-TOWER");
    assert_field(ev, "url", "");
    assert_field(ev, "point", "AHU-1 Supply Air Temp");
    assert_field(ev, "alarm_id", "5f1d2a7e-9c1b-4f0a-8b3e-0d6a9b2c4e11");
    assert_field(ev, "sender_status", "Offnormal");
    assert_field(ev, "priority", "40");
    assert_field(ev, "alarm_class", "Critical");
    assert_field(ev, "value", "78.4 °F");
    cr_assert(json_is_true(json_object_get(ev, "ack_required")));
    assert_field(ev, "raw.alarmData.highLimit", "75.0 °F");
    json_decref(events);
}

Test(bms, the_niagara_return_to_normal_resolves_the_same_key_at_normalTime)
{
    json_t *events = run_file("bms", "niagara_normal.json", NULL);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "resolved");
    assert_field(ev, "key", "5f1d2a7e-9c1b-4f0a-8b3e-0d6a9b2c4e11");
    assert_field(ev, "time", "2025-04-08T13:01:10.000Z");
    json_decref(events);
}

Test(bms, bacnet_notifications_key_on_device_and_object_and_map_priorities)
{
    json_t *events = run_file("bms", "bacnet.json", NULL);
    cr_assert_eq(json_array_size(events), 2);
    json_t *a = json_array_get(events, 0), *b = json_array_get(events, 1);
    assert_field(a, "status", "firing");
    assert_field(a, "key", "260001:analog-input:7");
    assert_field(a, "severity", "high");
    assert_field(a, "title", "CH-2 CHW Supply Temp: Chilled water supply above high limit");
    assert_field(a, "time", "2025-04-08T10:00:05.000Z");
    assert_field(a, "site", "LDS-HQ");
    assert_field(a, "value", "13.4");
    assert_field(a, "sender_status", "high-limit");
    assert_field(a, "notify_type", "alarm");
    assert_field(a, "device_instance", "260001");
    assert_field(a, "object_type", "analog-input");
    assert_field(a, "object_instance", "7");
    cr_assert(json_is_true(json_object_get(a, "ack_required")));
    assert_field(b, "status", "resolved");
    assert_field(b, "key", "260001:binary-input:12");
    assert_field(b, "severity", "low");
    assert_field(b, "time", "2025-04-08T10:05:00.000Z");
    cr_assert(json_is_false(json_object_get(b, "ack_required")));
    json_decref(events);
}

Test(bms, metasys_alarms_key_on_the_item_reference_so_the_normal_resolves_them)
{
    json_t *events = run_file("bms", "metasys.json", NULL);
    cr_assert_eq(json_array_size(events), 2);
    json_t *a = json_array_get(events, 0), *b = json_array_get(events, 1);
    assert_field(a, "status", "firing");
    assert_field(a, "key", "CAMPUS-N/CAMPUS-N:NAE-07/Programming.ZN-T.Room-2-14");
    assert_field(a, "site", "CAMPUS-N");
    assert_field(a, "severity", "high");
    assert_field(a, "title", "Room 2-14 Zone Temp: Zone temperature high");
    assert_field(a, "point", "CAMPUS-N:NAE-07/Programming.ZN-T.Room-2-14");
    assert_field(a, "point_name", "Room 2-14 Zone Temp");
    assert_field(a, "alarm_id", "c4d3b2a1-1111-2222-3333-444455556666");
    assert_field(a, "value", "29.5");
    assert_field(a, "units", "unitEnumSet.degC");
    assert_field(a, "alarm_class", "alarmCategoryEnumSet.acHvac");
    assert_field(a, "time", "2025-04-08T13:20:00.000Z");
    assert_field(a, "sender_status", "alarmValueEnumSet.avHighAlarm");
    assert_field(b, "status", "resolved");
    cr_assert_str_eq(str(b, "key"), str(a, "key"));
    assert_field(b, "severity", "low");
    json_decref(events);
}

Test(bms, a_wrapped_list_with_odd_casing_and_ackd_normal_resolves)
{
    json_t *events = run_file("bms", "wrapped.json", NULL);
    cr_assert_eq(json_array_size(events), 1);
    json_t *ev = json_array_get(events, 0);
    assert_field(ev, "status", "resolved");
    assert_field(ev, "site", "Annex");
    assert_field(ev, "severity", "fire");
    assert_field(ev, "key", "Annex/Fire panel FP-1 trouble");
    assert_field(ev, "title", "Fire panel FP-1 trouble");
    assert_field(ev, "time", "2025-04-08T16:00:00.000Z");
    json_decref(events);
}

Test(bms, options_override_priorities_fields_states_and_split)
{
    json_t *events = run_file("bms", "niagara_offnormal.json",
                              "{\"priority_map\":[{\"max\":50,\"severity\":\"P1\"},"
                              "{\"max\":255,\"severity\":\"p3\"}],"
                              "\"fields\":{\"site\":\"alarmData.toState\"}}");
    assert_field(json_array_get(events, 0), "severity", "p1");
    assert_field(json_array_get(events, 0), "site", "high limit");
    json_decref(events);

    const char *body = "{\"payload\":{\"list\":[{\"tag\":\"FA-1\",\"cond\":\"Reset\"},"
                       "{\"tag\":\"FA-2\",\"cond\":\"Tripped\"}]}}";
    events = run_body("bms", body, strlen(body), NULL,
                      "{\"split\":\"payload.list[*]\",\"fields\":{\"point\":\"tag\","
                      "\"status\":\"cond\"},\"status_map\":{\"reset\":\"resolved\"},"
                      "\"defaults\":{\"site\":\"Depot\"}}");
    cr_assert_eq(json_array_size(events), 2);
    assert_field(json_array_get(events, 0), "status", "resolved");
    assert_field(json_array_get(events, 0), "key", "Depot/FA-1");
    assert_field(json_array_get(events, 1), "status", "firing");
    assert_field(json_array_get(events, 1), "title", "FA-2");
    json_decref(events);
}

Test(bms, alarms_without_identity_or_not_objects_are_rejected)
{
    assert_rejected("bms", "{\"state\":\"alarm\",\"message\":\"x\"}", NULL, NULL,
                    "alarm 0: missing required field");
    assert_rejected("bms", "[{\"uuid\":\"a\"},7]", NULL, NULL, "alarm 1 is not an object");
    assert_rejected("bms", "<alarm/>", "text/xml", NULL, "is not JSON");
}
