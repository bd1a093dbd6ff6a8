/* alertmanager: Prometheus Alertmanager webhook_config payloads (version 4) → one event per
 * alert. The alert-to-event mapping is shared with Grafana unified alerting, which sends the
 * same shape with a few more fields. */
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "common/util.h"

static const char *const am_options[] = {"site_label", NULL};

int adapter_alertmanager_check(json_t *options, char **err)
{
    if (adapter_check_known_options("alertmanager", options, am_options, err) < 0)
        return -1;
    json_t *sl = json_object_get(options, "site_label");
    if (sl && (!json_is_string(sl) || !*json_string_value(sl))) {
        *err = adapter_errf("site_label must be a label name");
        return -1;
    }
    return 0;
}

json_t *adapter_am_event(const struct adapter_input *in, const char *kind, json_t *alert,
                         const char *group_status, const char *site_lbl)
{
    json_t *ev = adapter_event_new(in, kind, alert);
    json_t *labels = adapter_labels_from(jpath_object_get(alert, "labels"));
    json_t *annotations = adapter_labels_from(jpath_object_get(alert, "annotations"));
    char *hash = NULL;
    if (!ev || !labels || !annotations)
        goto fail;

    const char *st = adapter_get_str(alert, "status");
    int firing = adapter_status_word(st, NULL);
    if (firing < 0)
        firing = adapter_status_word(group_status, NULL);
    if (firing < 0)
        firing = 1;
    adapter_set(ev, "status", firing ? "firing" : "resolved");

    const char *fp = adapter_get_str(alert, "fingerprint");
    if (fp && *fp) {
        adapter_set(ev, "key", fp);
    } else {
        /* Alertmanager derives fingerprints from the label set alone; so does this key. */
        hash = adapter_labels_hash(labels);
        if (!hash)
            goto fail;
        adapter_set(ev, "key", hash);
    }

    adapter_set_lower(ev, "severity", json_string_value(json_object_get(labels, "severity")));
    const char *title = json_string_value(json_object_get(annotations, "summary"));
    if (!title)
        title = json_string_value(json_object_get(labels, "alertname"));
    adapter_set(ev, "title", title);
    const char *text = json_string_value(json_object_get(annotations, "description"));
    if (!text)
        text = json_string_value(json_object_get(annotations, "message"));
    adapter_set(ev, "text", text);

    json_t *starts = jpath_object_get(alert, "startsAt");
    json_t *ends = jpath_object_get(alert, "endsAt");
    if (firing || adapter_set_time(ev, ends) < 0)
        adapter_set_time(ev, starts);
    adapter_set(ev, "url", adapter_get_str(alert, "generatorURL"));
    adapter_set(ev, "site",
                json_string_value(json_object_get(labels, site_lbl ? site_lbl : "site")));

    json_object_set_new(ev, "labels", labels);
    labels = NULL;
    adapter_set(ev, "fingerprint", fp);
    json_object_set_new(ev, "annotations", annotations);
    annotations = NULL;
    adapter_set(ev, "startsAt", json_string_value(starts));
    adapter_set(ev, "endsAt", json_string_value(ends));
    free(hash);
    return ev;
fail:
    free(hash);
    json_decref(labels);
    json_decref(annotations);
    json_decref(ev);
    return NULL;
}

/* The group extra: what the payload says about the whole notification. New object. */
static json_t *am_group(json_t *root)
{
    json_t *g = json_object();
    if (!g)
        return NULL;
    adapter_set(g, "receiver", adapter_get_str(root, "receiver"));
    adapter_set(g, "status", adapter_get_str(root, "status"));
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
    return g;
}

enum adapter_result adapter_alertmanager_run(const struct adapter_input *in,
                                             const struct adapter_limits *lim,
                                             json_t **events, char **err)
{
    enum adapter_result r = ADAPTER_REJECT;
    json_t *root = NULL;
    char *version = NULL;
    if (adapter_alertmanager_check(in->options, err) < 0)
        goto done;
    if (in->check_only && adapter_quick_alerts(in, lim, 1)) {
        r = adapter_no_events(events, err);
        goto done;
    }
    if (adapter_body_json(in, lim, &root, err) != ADAPTER_OK)
        goto done;
    if (!json_is_object(root)) {
        *err = adapter_errf("expected a JSON object (Alertmanager webhook payload)");
        goto done;
    }
    version = adapter_get_text(root, "version");
    if (version && strcmp(version, "4") != 0) {
        *err = adapter_errf("unsupported webhook payload version %.16s (expected 4)", version);
        goto done;
    }
    json_t *alerts = jpath_object_get(root, "alerts");
    if (!json_is_array(alerts)) {
        *err = adapter_errf("missing required field alerts");
        goto done;
    }
    r = adapter_am_events(in, "alertmanager", root, alerts, adapter_max_events(lim), am_group,
                          NULL, events, err);
done:
    free(version);
    json_decref(root);
    return r;
}
