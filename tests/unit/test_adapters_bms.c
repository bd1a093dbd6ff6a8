/* Unit tests for the bms adapter over Niagara-, BACnet-gateway- and Metasys-style alarm JSON
 * (tests/golden/payloads/bms/): state words, priorities, keys, sites, options and rejected
 * bodies. */
#include "adapter_testutil.h"

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
