/* zabbix: Zabbix webhook media type bodies → one event. The body is whatever the media type's
 * script posts from its parameters, so every field is found through a mapping whose defaults
 * cover the parameter names of Zabbix's own templates and guides (event_id, event_value,
 * trigger_name, event_tags, ...). Unexpanded macros ({EVENT.RECOVERY.ID}, *UNKNOWN*) count
 * as absent. The key is the problem's event id, which recovery messages repeat. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "common/util.h"

static const struct adapter_field_def zbx_fields[] = {
    {"status",
     {"status", "event_status", "trigger_status", "[\"event.status\"]", "[\"trigger.status\"]",
      NULL}},
    {"key", {NULL}},
    {"severity",
     {"event_severity", "severity", "trigger_severity", "[\"event.severity\"]",
      "[\"trigger.severity\"]", NULL}},
    {"title",
     {"trigger_name", "event_name", "alert_subject", "subject", "[\"event.name\"]",
      "[\"trigger.name\"]", "[\"alert.subject\"]", "title", "name", NULL}},
    {"text",
     {"alert_message", "message", "[\"alert.message\"]", "trigger_description",
      "[\"trigger.description\"]", "description", NULL}},
    {"time", {"event_timestamp", "timestamp", NULL}},
    {"url", {"url", "event_url", "trigger_url", "[\"trigger.url\"]", NULL}},
    {"site", {"site", NULL}},
    {"labels",
     {"event_tags", "tags", "event_tagsjson", "[\"event.tags\"]", "[\"event.tagsjson\"]", NULL}},
    {"event_id", {"event_id", "eventid", "[\"event.id\"]", NULL}},
    {"recovery_id",
     {"event_recovery_id", "recovery_event_id", "recovery_id", "[\"event.recovery.id\"]", NULL}},
    {"value", {"event_value", "[\"event.value\"]", "trigger_value", "[\"trigger.value\"]", NULL}},
    {"update", {"event_update_status", "[\"event.update.status\"]", NULL}},
    {"host",
     {"host", "host_name", "hostname", "host_host", "[\"host.name\"]", "[\"host.host\"]", NULL}},
    {"nseverity",
     {"event_nseverity", "nseverity", "trigger_nseverity", "[\"event.nseverity\"]",
      "[\"trigger.nseverity\"]", NULL}},
    {"trigger_id", {"trigger_id", "triggerid", "[\"trigger.id\"]", NULL}},
    {"date", {"event_date", "[\"event.date\"]", "event_date_time", "date", NULL}},
    {"clock", {"event_time", "[\"event.time\"]", NULL}},
    {"recovery_date",
     {"event_recovery_date", "recovery_date", "[\"event.recovery.date\"]", NULL}},
    {"recovery_clock",
     {"event_recovery_time", "recovery_time", "[\"event.recovery.time\"]", NULL}},
    {"zabbix_url", {"zabbix_url", "[\"zabbix.url\"]", NULL}},
    {"opdata", {"event_opdata", "opdata", "[\"event.opdata\"]", NULL}},
};
#define ZBX_NFIELDS (sizeof zbx_fields / sizeof zbx_fields[0])

static const char *const zbx_options[] = {"fields", "defaults", "status_map", "site_tag",
                                          "utc_offset", NULL};

/* Zabbix severities by number ({EVENT.NSEVERITY}). */
static const char *const zbx_severity[] = {"not classified", "information", "warning",
                                           "average",        "high",        "disaster"};

static int valid_offset(const char *s)
{
    if (strcmp(s, "Z") == 0)
        return 1;
    return strlen(s) == 6 && (s[0] == '+' || s[0] == '-') && isdigit((unsigned char)s[1]) &&
           isdigit((unsigned char)s[2]) && s[3] == ':' && isdigit((unsigned char)s[4]) &&
           isdigit((unsigned char)s[5]) && (s[1] - '0') * 10 + (s[2] - '0') <= 14 &&
           (s[4] - '0') < 6;
}

int adapter_zabbix_check(json_t *options, char **err)
{
    if (adapter_check_known_options("zabbix", options, zbx_options, err) < 0 ||
        adapter_check_status_map(json_object_get(options, "status_map"), err) < 0)
        return -1;
    json_t *tag = json_object_get(options, "site_tag");
    if (tag && (!json_is_string(tag) || !*json_string_value(tag))) {
        *err = adapter_errf("site_tag must be a tag name");
        return -1;
    }
    json_t *off = json_object_get(options, "utc_offset");
    if (off && (!json_is_string(off) || !valid_offset(json_string_value(off)))) {
        *err = adapter_errf("utc_offset must be Z or +HH:MM / -HH:MM, e.g. +01:00");
        return -1;
    }
    struct adapter_map *m = adapter_map_new(zbx_fields, ZBX_NFIELDS, options, err);
    if (!m)
        return -1;
    adapter_map_free(m);
    return 0;
}

/* Zabbix's {EVENT.DATE} "2024.01.15" and {EVENT.TIME} "12:34:56" (server local time, no
 * zone; the utc_offset option supplies it) → normalised time. date may hold both, separated
 * by a space ("{EVENT.DATE} {EVENT.TIME}"). 0 or -1. */
static int zbx_date_time(const char *date, const char *clock, const char *offset, char out[32])
{
    char buf[64];
    if (!date)
        return -1;
    size_t n = 0;
    const char *p = date;
    for (; *p && *p != ' ' && *p != 'T' && n < 10; p++)
        buf[n++] = *p == '.' ? '-' : *p;
    if (n != 10)
        return -1;
    while (*p == ' ' || *p == 'T')
        p++;
    const char *t = *p ? p : clock;
    if (!t || !*t || strlen(t) > 12)
        return -1;
    int w = snprintf(buf + n, sizeof buf - n, "T%s%s", t, offset ? offset : "Z");
    if (w < 0 || (size_t)w >= sizeof buf - n)
        return -1;
    json_t *s = json_string(buf);
    int rc = s ? adapter_time_norm(s, out) : -1;
    json_decref(s);
    return rc;
}

static int is_true_flag(const char *s)
{
    return s && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0);
}

/* Fills ev from the body; returns 0, or -1 with *err. */
static int zbx_fill(const struct adapter_input *in, const struct adapter_map *m, json_t *root,
                    json_t *ev, char **err)
{
    int rc = -1;
    char *event_id = NULL, *recovery_id = NULL, *value = NULL, *status = NULL, *key = NULL;
    char *severity = NULL, *nsev = NULL, *title = NULL, *text = NULL, *url = NULL;
    char *site = NULL, *host = NULL, *trigger_id = NULL, *update = NULL, *zurl = NULL;
    char *date = NULL, *clock = NULL, *rdate = NULL, *rclock = NULL, *opdata = NULL;
    char *link = NULL;
    json_t *opts = in->options;

    event_id = adapter_map_text(m, "event_id", root);
    key = adapter_map_text(m, "key", root);
    if (!key && !event_id) {
        *err = adapter_errf("missing required field event_id (the problem's {EVENT.ID})");
        goto done;
    }
    adapter_set(ev, "key", key ? key : event_id);

    recovery_id = adapter_map_text(m, "recovery_id", root);
    value = adapter_map_text(m, "value", root);
    status = adapter_map_text(m, "status", root);
    json_t *status_map = json_object_get(opts, "status_map");
    int firing = -1;
    if (status && adapter_map_overridden(m, "status"))
        firing = adapter_status_word(status, status_map);
    if (firing < 0 && value && (strcmp(value, "1") == 0 || strcmp(value, "0") == 0))
        firing = value[0] == '1';
    if (firing < 0 && status)
        firing = adapter_status_word(status, status_map);
    if (firing < 0 && recovery_id)
        firing = 0;
    if (firing < 0)
        firing = 1;
    adapter_set(ev, "status", firing ? "firing" : "resolved");

    severity = adapter_map_text(m, "severity", root);
    nsev = adapter_map_text(m, "nseverity", root);
    long level = -1;
    int nsev_ok = nsev && util_parse_long(nsev, 0, 5, &level) == 0;
    if (severity && util_parse_long(severity, 0, 5, &level) == 0)
        adapter_set(ev, "severity", zbx_severity[level]);
    else if (severity)
        adapter_set_lower(ev, "severity", severity);
    else if (level >= 0)
        adapter_set(ev, "severity", zbx_severity[level]);

    title = adapter_map_text(m, "title", root);
    text = adapter_map_text(m, "text", root);
    adapter_set(ev, "title", title);
    adapter_set(ev, "text", text);

    json_t *labels = adapter_labels_from(adapter_map_value(m, "labels", root));
    if (!labels) {
        *err = adapter_errf("out of memory");
        goto done;
    }
    json_object_set_new(ev, "labels", labels);

    site = adapter_map_text(m, "site", root);
    if (!site) {
        const char *tag = json_string_value(json_object_get(opts, "site_tag"));
        site = util_strdup(json_string_value(json_object_get(labels, tag ? tag : "site")));
    }
    adapter_set(ev, "site", site);

    const char *offset = json_string_value(json_object_get(opts, "utc_offset"));
    char when[32];
    int have_time = 0;
    if (!firing) {
        rdate = adapter_map_text(m, "recovery_date", root);
        rclock = adapter_map_text(m, "recovery_clock", root);
        have_time = zbx_date_time(rdate, rclock, offset, when) == 0;
    }
    if (!have_time && adapter_map_value(m, "time", root))
        have_time = adapter_time_norm(adapter_map_value(m, "time", root), when) == 0;
    if (!have_time) {
        date = adapter_map_text(m, "date", root);
        clock = adapter_map_text(m, "clock", root);
        have_time = zbx_date_time(date, clock, offset, when) == 0;
    }
    if (have_time)
        adapter_set(ev, "time", when);

    host = adapter_map_text(m, "host", root);
    trigger_id = adapter_map_text(m, "trigger_id", root);
    url = adapter_map_text(m, "url", root);
    zurl = adapter_map_text(m, "zabbix_url", root);
    if (!url && zurl && trigger_id && event_id) {
        size_t n = strlen(zurl);
        while (n > 0 && zurl[n - 1] == '/')
            zurl[--n] = '\0';
        link = util_asprintf("%s/tr_events.php?triggerid=%s&eventid=%s", zurl, trigger_id,
                             event_id);
    }
    adapter_set(ev, "url", url ? url : link);

    update = adapter_map_text(m, "update", root);
    opdata = adapter_map_text(m, "opdata", root);
    adapter_set(ev, "event_id", event_id);
    adapter_set(ev, "recovery_event_id", recovery_id);
    adapter_set(ev, "trigger_id", trigger_id);
    adapter_set(ev, "host", host);
    adapter_set(ev, "nseverity", nsev_ok ? nsev : "");
    json_object_set_new(ev, "update", json_boolean(is_true_flag(update)));
    adapter_set(ev, "opdata", opdata);
    adapter_set(ev, "sender_status", status ? status : value);
    rc = 0;
done:
    free(event_id);
    free(recovery_id);
    free(value);
    free(status);
    free(key);
    free(severity);
    free(nsev);
    free(title);
    free(text);
    free(url);
    free(site);
    free(host);
    free(trigger_id);
    free(update);
    free(zurl);
    free(date);
    free(clock);
    free(rdate);
    free(rclock);
    free(opdata);
    free(link);
    return rc;
}

enum adapter_result adapter_zabbix_run(const struct adapter_input *in,
                                       const struct adapter_limits *lim, json_t **events,
                                       char **err)
{
    enum adapter_result r = ADAPTER_REJECT;
    json_t *root = NULL, *ev = NULL, *out = NULL;
    struct adapter_map *m = NULL;
    if (adapter_zabbix_check(in->options, err) < 0)
        goto done;
    m = adapter_map_new(zbx_fields, ZBX_NFIELDS, in->options, err);
    if (!m)
        goto done;
    adapter_map_skip_macros(m, 1);
    if (adapter_body_json(in, lim, &root, err) != ADAPTER_OK)
        goto done;
    if (!json_is_object(root)) {
        *err = adapter_errf("expected a JSON object (Zabbix webhook body)");
        goto done;
    }
    ev = adapter_event_new(in, "zabbix", root);
    out = json_array();
    if (!ev || !out) {
        *err = adapter_errf("out of memory");
        goto done;
    }
    if (zbx_fill(in, m, root, ev, err) < 0)
        goto done;
    json_array_append_new(out, ev);
    ev = NULL;
    *events = out;
    out = NULL;
    r = ADAPTER_OK;
done:
    adapter_map_free(m);
    json_decref(ev);
    json_decref(out);
    json_decref(root);
    return r;
}
