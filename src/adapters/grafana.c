/* grafana: Grafana webhook contact points → events. Unified alerting (Grafana 8+) sends an
 * Alertmanager-shaped payload with orgId, title, state, message and per-alert values and
 * links; the legacy (pre-8) dashboard alert webhook sends one rule (ruleId, ruleName, state,
 * evalMatches) and becomes one event. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/adapter.h"
#include "common/util.h"

static const char *const grafana_options[] = {"site_label", NULL};

int adapter_grafana_check(json_t *options, char **err)
{
    if (adapter_check_known_options("grafana", options, grafana_options, err) < 0)
        return -1;
    json_t *sl = json_object_get(options, "site_label");
    if (sl && (!json_is_string(sl) || !*json_string_value(sl))) {
        *err = adapter_errf("site_label must be a label name");
        return -1;
    }
    return 0;
}

static const char *site_label(json_t *options)
{
    const char *s = json_string_value(json_object_get(options, "site_label"));
    return s && *s ? s : NULL;
}

/* A copy of a member that should be a number (ids), else 0. New reference. */
static json_t *number_or_zero(json_t *obj, const char *key)
{
    json_t *v = jpath_object_get(obj, key);
    return json_is_number(v) ? json_copy(v) : json_integer(0);
}

static const char *first_nonempty(const char *a, const char *b, const char *c)
{
    if (a && *a)
        return a;
    if (b && *b)
        return b;
    return c;
}

static json_t *unified_group(json_t *root)
{
    json_t *g = json_object();
    if (!g)
        return NULL;
    adapter_set(g, "receiver", adapter_get_str(root, "receiver"));
    adapter_set(g, "status", adapter_get_str(root, "status"));
    json_object_set_new(g, "orgId", number_or_zero(root, "orgId"));
    adapter_set(g, "groupKey", adapter_get_str(root, "groupKey"));
    adapter_set(g, "externalURL", adapter_get_str(root, "externalURL"));
    json_object_set_new(g, "groupLabels", adapter_labels_from(jpath_object_get(root, "groupLabels")));
    json_object_set_new(g, "commonLabels",
                        adapter_labels_from(jpath_object_get(root, "commonLabels")));
    json_object_set_new(g, "commonAnnotations",
                        adapter_labels_from(jpath_object_get(root, "commonAnnotations")));
    json_t *trunc = jpath_object_get(root, "truncatedAlerts");
    json_object_set_new(g, "truncatedAlerts",
                        json_integer(json_is_integer(trunc) ? json_integer_value(trunc) : 0));
    adapter_set(g, "title", adapter_get_str(root, "title"));
    adapter_set(g, "state", adapter_get_str(root, "state"));
    adapter_set(g, "message", adapter_get_str(root, "message"));
    return g;
}

/* Unified alerting's own fields of one alert's event (see adapter_am_events). */
static void unified_extras(json_t *ev, json_t *alert, json_t *root)
{
    if (!*json_string_value(json_object_get(ev, "title")))
        adapter_set(ev, "title", adapter_get_str(root, "title"));
    const char *panel = adapter_get_str(alert, "panelURL");
    const char *dash = adapter_get_str(alert, "dashboardURL");
    /* A panel or dashboard shows the technician the data; the rule editor is the last
     * resort. */
    adapter_set(ev, "url", first_nonempty(panel, dash, adapter_get_str(alert, "generatorURL")));
    json_t *values = jpath_object_get(alert, "values");
    json_object_set_new(ev, "values", adapter_object_copy(values));
    adapter_set(ev, "valueString", adapter_get_str(alert, "valueString"));
    adapter_set(ev, "dashboardURL", dash);
    adapter_set(ev, "panelURL", panel);
    adapter_set(ev, "silenceURL", adapter_get_str(alert, "silenceURL"));
    adapter_set(ev, "imageURL", adapter_get_str(alert, "imageURL"));
    json_object_set_new(ev, "orgId", number_or_zero(root, "orgId"));
}

/* The one event of a legacy notification; new, or NULL when memory runs out. */
static json_t *legacy_event(const struct adapter_input *in, json_t *root, const char *state,
                            int firing)
{
    json_t *ev = adapter_event_new(in, "grafana", root);
    json_t *labels = adapter_labels_from(jpath_object_get(root, "tags"));
    char *rule_id = adapter_get_text(root, "ruleId"), *hash = NULL;
    const char *rule_name = adapter_get_str(root, "ruleName");
    int ok = 0;
    if (!ev || !labels)
        goto done;
    adapter_set(ev, "status", firing ? "firing" : "resolved");
    if (!rule_id || !*rule_id) {
        const char *parts[] = {"grafana-rule", rule_name ? rule_name : "", NULL};
        if (!(hash = adapter_hash_strings(parts)))
            goto done;
    }
    adapter_set(ev, "key", hash ? hash : rule_id);
    adapter_set_lower(ev, "severity", json_string_value(json_object_get(labels, "severity")));
    const char *sl = site_label(in->options);
    adapter_set(ev, "site", json_string_value(json_object_get(labels, sl ? sl : "site")));
    json_object_set_new(ev, "labels", labels);
    labels = NULL;
    adapter_set(ev, "title", first_nonempty(rule_name, adapter_get_str(root, "title"), ""));
    adapter_set(ev, "text", adapter_get_str(root, "message"));
    adapter_set(ev, "url", adapter_get_str(root, "ruleUrl"));
    json_object_set_new(ev, "legacy", json_true());
    json_object_set_new(ev, "ruleId", number_or_zero(root, "ruleId"));
    adapter_set(ev, "ruleName", rule_name);
    adapter_set(ev, "ruleUrl", adapter_get_str(root, "ruleUrl"));
    adapter_set(ev, "state", state);
    json_t *matches = jpath_object_get(root, "evalMatches");
    json_object_set_new(ev, "evalMatches", json_is_array(matches) ? json_deep_copy(matches)
                                                                   : json_array());
    adapter_set(ev, "imageUrl", adapter_get_str(root, "imageUrl"));
    json_object_set_new(ev, "orgId", number_or_zero(root, "orgId"));
    json_object_set_new(ev, "dashboardId", number_or_zero(root, "dashboardId"));
    json_object_set_new(ev, "panelId", number_or_zero(root, "panelId"));
    ok = 1;
done:
    if (!ok) {
        json_decref(ev);
        ev = NULL;
    }
    json_decref(labels);
    free(rule_id);
    free(hash);
    return ev;
}

/* Legacy dashboard alerts: alerting and no_data fire, ok resolves; paused and pending
 * notifications carry no state change and produce no event. */
static enum adapter_result legacy(const struct adapter_input *in, json_t *root, json_t **events,
                                  char **err)
{
    enum adapter_result r = ADAPTER_REJECT;
    json_t *out = json_array();
    const char *state = adapter_get_str(root, "state");
    int firing = -1;
    if (!out) {
        *err = adapter_errf("out of memory");
        goto done;
    }
    if (state && (strcasecmp(state, "alerting") == 0 || strcasecmp(state, "no_data") == 0))
        firing = 1;
    else if (state && strcasecmp(state, "ok") == 0)
        firing = 0;
    else if (!state || (strcasecmp(state, "paused") != 0 && strcasecmp(state, "pending") != 0)) {
        *err = adapter_errf("unknown legacy alert state '%.32s'", state ? state : "");
        goto done;
    }
    if (firing >= 0) {
        json_t *ev = legacy_event(in, root, state, firing);
        if (!ev) {
            *err = adapter_errf("out of memory");
            goto done;
        }
        json_array_append_new(out, ev);
    }
    *events = out;
    out = NULL;
    r = ADAPTER_OK;
done:
    json_decref(out);
    return r;
}

enum adapter_result adapter_grafana_run(const struct adapter_input *in,
                                        const struct adapter_limits *lim, json_t **events,
                                        char **err)
{
    enum adapter_result r = ADAPTER_REJECT;
    json_t *root = NULL;
    if (adapter_grafana_check(in->options, err) < 0)
        goto done;
    if (in->check_only && adapter_quick_alerts(in, lim, 0)) {
        r = adapter_no_events(events, err);
        goto done;
    }
    if (adapter_body_json(in, lim, &root, err) != ADAPTER_OK)
        goto done;
    if (!json_is_object(root)) {
        *err = adapter_errf("expected a JSON object (Grafana webhook payload)");
        goto done;
    }
    json_t *alerts = jpath_object_get(root, "alerts");
    if (json_is_array(alerts))
        r = adapter_am_events(in, "grafana", root, alerts, adapter_max_events(lim),
                              unified_group, unified_extras, events, err);
    else if (jpath_object_get(root, "ruleId") || jpath_object_get(root, "ruleName") ||
             jpath_object_get(root, "evalMatches"))
        r = legacy(in, root, events, err);
    else
        *err = adapter_errf("missing required field alerts (or ruleName for a legacy alert)");
done:
    json_decref(root);
    return r;
}
