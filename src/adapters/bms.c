/* bms: building-management alarms as JSON → one event per alarm. The default mapping knows
 * Niagara-style records (sourceName, sourceState, alarmClass, uuid, msgText, alarmData.*),
 * BACnet-gateway notifications (deviceInstance, objectType, objectInstance, toState, ...)
 * and Metasys-style alarms (itemReference, type, priority, creationTime, triggerValue); the
 * body may be one alarm, an array, or {"alarms": [...]}. Options override any of it. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/adapter.h"
#include "common/util.h"

static const struct adapter_field_def bms_fields[] = {
    {"status",
     {"sourceState", "toState", "eventState", "alarmState", "state", "status", "type",
      "alarmData.sourceState", "alarmData.toState", NULL}},
    {"key", {"uuid", "alarmId", "alarm_id", "alarmUuid", "guid", NULL}},
    {"severity", {"severity", "priority", "alarmClass", "alarmData.priority", NULL}},
    {"title", {"title", "alarmTitle", NULL}},
    {"text",
     {"msgText", "alarmData.msgText", "messageText", "message", "description", "text",
      "alarmText", NULL}},
    {"time",
     {"timestamp", "creationTime", "eventTime", "time", "dateTime", "alarmData.timestamp",
      NULL}},
    {"end_time", {"normalTime", "returnTime", "clearedTime", "endTime", NULL}},
    {"url", {"url", "link", "href", NULL}},
    {"site", {"site", "siteName", "building", "buildingName", "station", "stationName", NULL}},
    {"labels", {"labels", "tags", NULL}},
    {"point",
     {"sourceName", "alarmData.sourceName", "itemReference", "objectName", "pointName", "point",
      "name", "source", NULL}},
    {"point_name",
     {"sourceName", "alarmData.sourceName", "objectName", "name", "pointName", "point",
      "itemReference", NULL}},
    {"alarm_id", {"uuid", "alarmId", "alarm_id", "alarmUuid", "guid", "id", NULL}},
    {"alarm_class", {"alarmClass", "category", NULL}},
    {"priority", {"priority", "alarmData.priority", NULL}},
    {"value",
     {"triggerValue.value", "triggerValue", "presentValue", "alarmData.presentValue", "value",
      NULL}},
    {"units", {"triggerValue.units", "units", "alarmData.units", NULL}},
    {"device_instance", {"deviceInstance", NULL}},
    {"object_type", {"objectType", NULL}},
    {"object_instance", {"objectInstance", NULL}},
    {"notify_type", {"notifyType", NULL}},
    {"ack_required", {"isAckRequired", "ackRequired", "ack_required", NULL}},
};
#define BMS_NFIELDS (sizeof bms_fields / sizeof bms_fields[0])

static const char *const bms_options[] = {"split",      "fields",       "defaults",
                                          "status_map", "priority_map", NULL};

/* BMS state words, compared after lowercasing and dropping punctuation ("ack'd-normal" →
 * "ackdnormal", Metasys "alarmValueEnumSet.avHighAlarm" → "highalarm"). */
static const char *const bms_firing[] = {
    "offnormal", "fault",   "alarm",     "highlimit",   "lowlimit",   "highalarm",
    "lowalarm",  "alert",   "lifesafetyalarm", "unreliable", "offline", "trouble",
    "highwarning", "lowwarning", "warning", "inalarm", "active", NULL};
static const char *const bms_resolved[] = {
    "normal",    "returntonormal", "returnedtonormal", "rtn",    "cleared", "clear",
    "acknormal", "ackdnormal",     "ackednormal",      "online", "ok",      "inactive",
    NULL};

/* BACnet network priority classes: 0-63 life safety, 64-127 critical equipment, 128-191
 * urgent, 192-255 normal. */
static const struct {
    long max;
    const char *severity;
} default_priorities[] = {{63, "critical"}, {127, "high"}, {191, "medium"}, {255, "low"}};

static int check_priority_map(json_t *pm, char **err)
{
    if (!pm)
        return 0;
    if (!json_is_array(pm) || json_array_size(pm) == 0) {
        *err = adapter_errf("priority_map must be a list of {max: N, severity: NAME}");
        return -1;
    }
    json_int_t prev = 0;
    size_t i;
    json_t *e;
    json_array_foreach(pm, i, e) {
        json_t *max = json_object_get(e, "max");
        json_t *sev = json_object_get(e, "severity");
        if (!json_is_integer(max) || !json_is_string(sev) || !*json_string_value(sev) ||
            json_object_size(e) != 2) {
            *err = adapter_errf("priority_map[%zu] must be {max: N, severity: NAME}", i);
            return -1;
        }
        if (i > 0 && json_integer_value(max) <= prev) {
            *err = adapter_errf("priority_map[%zu].max must be greater than the one before", i);
            return -1;
        }
        prev = json_integer_value(max);
    }
    return 0;
}

int adapter_bms_check(json_t *options, char **err)
{
    jpath_t *split = NULL;
    if (adapter_check_known_options("bms", options, bms_options, err) < 0 ||
        adapter_check_status_map(json_object_get(options, "status_map"), err) < 0 ||
        check_priority_map(json_object_get(options, "priority_map"), err) < 0 ||
        adapter_split_option(options, &split, err) < 0)
        return -1;
    jpath_free(split);
    struct adapter_map *m = adapter_map_new(bms_fields, BMS_NFIELDS, options, err);
    if (!m)
        return -1;
    adapter_map_free(m);
    return 0;
}

static int in_list(const char *w, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(w, list[i]) == 0)
            return 1;
    return 0;
}

/* 1 firing, 0 resolved; unknown states fire (an alarm system that speaks is reporting). */
static int bms_status(const char *v, json_t *status_map)
{
    if (!v)
        return 1;
    int r = adapter_status_word(v, status_map);
    if (r >= 0)
        return r;
    const char *dot = strrchr(v, '.');
    const char *p = dot ? dot + 1 : v;
    char w[64];
    size_t n = 0;
    for (; *p && n + 1 < sizeof w; p++)
        if (isalnum((unsigned char)*p))
            w[n++] = (char)tolower((unsigned char)*p);
    w[n] = '\0';
    const char *word = w;
    if (dot && strncmp(w, "av", 2) == 0)
        word = w + 2;
    r = adapter_status_word(word, status_map);
    if (r >= 0)
        return r;
    if (in_list(word, bms_firing))
        return 1;
    if (in_list(word, bms_resolved))
        return 0;
    return 1;
}

/* Severity from a value that may be a priority number or a name. New string or NULL. */
static char *bms_severity(json_t *v, json_t *priority_map)
{
    char *text = jpath_scalar_string(v);
    double num;
    if (!text || util_parse_double(text, &num) < 0) {
        if (text)
            for (char *p = text; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        return text;
    }
    free(text);
    /* Clamped so any number, however odd, lands in the first or last class. */
    long prio = num < -1e9 ? -1000000000L : num > 1e9 ? 1000000000L : (long)num;
    if (json_is_array(priority_map)) {
        size_t i;
        json_t *e;
        const char *last = NULL;
        json_array_foreach(priority_map, i, e) {
            last = json_string_value(json_object_get(e, "severity"));
            if (prio <= json_integer_value(json_object_get(e, "max")))
                return util_strdup(last);
        }
        return util_strdup(last);
    }
    size_t n = sizeof default_priorities / sizeof default_priorities[0];
    for (size_t i = 0; i < n; i++)
        if (prio <= default_priorities[i].max)
            return util_strdup(default_priorities[i].severity);
    return util_strdup(default_priorities[n - 1].severity);
}

static int is_truthy(json_t *v)
{
    if (json_is_boolean(v))
        return json_is_true(v);
    const char *s = json_string_value(v);
    return (s && (strcmp(s, "1") == 0 || strcasecmp(s, "true") == 0 ||
                  strcasecmp(s, "yes") == 0)) ||
           (json_is_integer(v) && json_integer_value(v) != 0);
}

/* One alarm → new event, or NULL with *err (an adapter_item_fn). */
static json_t *bms_event(const struct adapter_input *in, const struct adapter_map *m,
                         json_t *item, size_t index, char **err)
{
    json_t *ev = NULL;
    char *state = NULL, *key = NULL, *title = NULL, *text = NULL, *url = NULL, *site = NULL;
    char *point = NULL, *alarm_id = NULL, *aclass = NULL, *prio = NULL, *value = NULL;
    char *units = NULL, *dev = NULL, *otype = NULL, *oinst = NULL, *notify = NULL;
    char *sev = NULL, *made = NULL, *pname = NULL;
    json_t *opts = in->options;
    int ok = 0;
    if (!json_is_object(item)) {
        *err = adapter_errf("alarm %zu is not an object", index);
        goto done;
    }
    ev = adapter_event_new(in, "bms", item);
    if (!ev) {
        *err = adapter_errf("out of memory");
        goto done;
    }

    state = adapter_map_text(m, "status", item);
    int firing = bms_status(state, json_object_get(opts, "status_map"));
    adapter_set(ev, "status", firing ? "firing" : "resolved");

    point = adapter_map_text(m, "point", item);
    site = adapter_map_text(m, "site", item);
    if (!site) {
        /* Metasys item references start with the site: "SITE1:NAE-01/Programming.AHU1". */
        const char *ref = adapter_get_str(item, "itemReference");
        const char *colon = ref ? strchr(ref, ':') : NULL;
        if (colon && colon > ref)
            site = util_strndup(ref, (size_t)(colon - ref));
    }
    dev = adapter_map_text(m, "device_instance", item);
    otype = adapter_map_text(m, "object_type", item);
    oinst = adapter_map_text(m, "object_instance", item);
    key = adapter_map_text(m, "key", item);
    if (!key && dev && otype && oinst)
        key = util_asprintf("%s:%s:%s", dev, otype, oinst);
    if (!key && point)
        key = util_asprintf("%s/%s", site ? site : "", point);
    if (!key) {
        *err = adapter_errf("alarm %zu: missing required field: an alarm id (uuid, alarmId) "
                            "or a point name (sourceName, objectName, itemReference)",
                            index);
        goto done;
    }
    adapter_set(ev, "key", key);

    json_t *pm = json_object_get(opts, "priority_map");
    json_t *sv = adapter_map_value(m, "severity", item);
    sev = sv ? bms_severity(sv, pm) : adapter_map_text(m, "severity", item);
    adapter_set_lower(ev, "severity", sev);

    text = adapter_map_text(m, "text", item);
    title = adapter_map_text(m, "title", item);
    pname = adapter_map_text(m, "point_name", item);
    if (!title) {
        const char *who = pname ? pname : point;
        if (who && text)
            made = util_asprintf("%s: %s", who, text);
        else
            made = util_strdup(who ? who : text);
    }
    adapter_set(ev, "title", title ? title : made);
    adapter_set(ev, "text", text);

    json_t *labels = adapter_labels_from(adapter_map_value(m, "labels", item));
    if (!labels) {
        *err = adapter_errf("out of memory");
        goto done;
    }
    json_object_set_new(ev, "labels", labels);

    json_t *end = adapter_map_value(m, "end_time", item);
    if (firing || !end || adapter_set_time(ev, end) < 0) {
        json_t *tv = adapter_map_value(m, "time", item);
        if (tv)
            adapter_set_time(ev, tv);
    }
    url = adapter_map_text(m, "url", item);
    adapter_set(ev, "url", url);
    adapter_set(ev, "site", site);

    alarm_id = adapter_map_text(m, "alarm_id", item);
    aclass = adapter_map_text(m, "alarm_class", item);
    prio = adapter_map_text(m, "priority", item);
    value = adapter_map_text(m, "value", item);
    units = adapter_map_text(m, "units", item);
    notify = adapter_map_text(m, "notify_type", item);
    adapter_set(ev, "point", point);
    adapter_set(ev, "point_name", pname ? pname : point);
    adapter_set(ev, "alarm_id", alarm_id);
    adapter_set(ev, "sender_status", state);
    adapter_set(ev, "priority", prio);
    adapter_set(ev, "alarm_class", aclass);
    adapter_set(ev, "value", value);
    adapter_set(ev, "units", units);
    adapter_set(ev, "device_instance", dev);
    adapter_set(ev, "object_type", otype);
    adapter_set(ev, "object_instance", oinst);
    adapter_set(ev, "notify_type", notify);
    json_object_set_new(ev, "ack_required",
                        json_boolean(is_truthy(adapter_map_value(m, "ack_required", item))));
    ok = 1;
done:
    if (!ok) {
        json_decref(ev);
        ev = NULL;
    }
    free(state);
    free(key);
    free(title);
    free(text);
    free(url);
    free(site);
    free(point);
    free(alarm_id);
    free(aclass);
    free(prio);
    free(value);
    free(units);
    free(dev);
    free(otype);
    free(oinst);
    free(notify);
    free(sev);
    free(made);
    free(pname);
    return ev;
}

/* Default split: an array of alarms, {"alarms": [...]} or {"items": [...]} (Metasys
 * collections), else the body is one alarm. */
static json_t *default_container(json_t *root)
{
    if (json_is_array(root))
        return root;
    json_t *a = jpath_object_get(root, "alarms");
    if (json_is_array(a))
        return a;
    a = jpath_object_get(root, "items");
    if (json_is_array(a))
        return a;
    return NULL;
}

enum adapter_result adapter_bms_run(const struct adapter_input *in,
                                    const struct adapter_limits *lim, json_t **events,
                                    char **err)
{
    enum adapter_result r = ADAPTER_REJECT;
    json_t *root = NULL, *items = NULL;
    jpath_t *split = NULL;
    struct adapter_map *m = NULL;
    if (adapter_bms_check(in->options, err) < 0 ||
        adapter_split_option(in->options, &split, err) < 0)
        goto done;
    m = adapter_map_new(bms_fields, BMS_NFIELDS, in->options, err);
    if (!m)
        goto done;
    if (adapter_body_json(in, lim, &root, err) != ADAPTER_OK)
        goto done;
    size_t max = adapter_max_events(lim);
    json_t *container = split ? NULL : default_container(root);
    if (container) {
        if (json_array_size(container) > max) {
            *err = adapter_errf("too many events: %zu alarms (limit %zu)",
                                json_array_size(container), max);
            goto done;
        }
        items = json_incref(container);
    } else if (adapter_split(root, split, max, &items, err) < 0) {
        goto done;
    }
    r = adapter_map_items(in, m, items, bms_event, events, err);
done:
    adapter_map_free(m);
    jpath_free(split);
    json_decref(items);
    json_decref(root);
    return r;
}
