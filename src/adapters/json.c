/* json: generic JSON senders. The `split` option selects the items (default: the whole body
 * is one item) and `fields` maps each normalised field to paths within an item; `status_map`
 * and `defaults` cover the rest. The same mapping serves the form kind. */
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "common/util.h"

static const struct adapter_field_def json_fields[] = {
    {"status", {"status", "state", NULL}},
    {"key", {"key", "id", "fingerprint", NULL}},
    {"severity", {"severity", "priority", "level", NULL}},
    {"title", {"title", "summary", "subject", "name", NULL}},
    {"text", {"text", "description", "message", "body", "details", NULL}},
    {"time", {"time", "timestamp", "startsAt", "created_at", "date", NULL}},
    {"url", {"url", "link", "href", NULL}},
    {"site", {"site", "location", "building", NULL}},
    {"labels", {"labels", "tags", NULL}},
};
#define JSON_NFIELDS (sizeof json_fields / sizeof json_fields[0])

static const char *const json_options[] = {"split", "fields", "defaults", "status_map", NULL};
static const char *const form_options[] = {"fields", "defaults", "status_map", NULL};

struct adapter_map *adapter_generic_map(const char *kind, json_t *options, char **err)
{
    const char *const *allowed = strcmp(kind, "form") == 0 ? form_options : json_options;
    if (adapter_check_known_options(kind, options, allowed, err) < 0 ||
        adapter_check_status_map(json_object_get(options, "status_map"), err) < 0)
        return NULL;
    return adapter_map_new(json_fields, JSON_NFIELDS, options, err);
}

int adapter_json_check(json_t *options, char **err)
{
    jpath_t *split = NULL;
    struct adapter_map *m = adapter_generic_map("json", options, err);
    if (!m)
        return -1;
    adapter_map_free(m);
    if (adapter_split_option(options, &split, err) < 0)
        return -1;
    jpath_free(split);
    return 0;
}

int adapter_form_check(json_t *options, char **err)
{
    struct adapter_map *m = adapter_generic_map("form", options, err);
    if (!m)
        return -1;
    adapter_map_free(m);
    return 0;
}

json_t *adapter_json_event(const struct adapter_input *in, const char *kind,
                           const struct adapter_map *m, json_t *item)
{
    json_t *ev = adapter_event_new(in, kind, item);
    json_t *labels = NULL;
    char *status = NULL, *key = NULL, *sev = NULL, *title = NULL, *text = NULL;
    char *url = NULL, *site = NULL, *hash = NULL, *when = NULL;
    int ok = 0;
    if (!ev)
        goto done;
    status = adapter_map_text(m, "status", item);
    int firing = adapter_status_word(status, json_object_get(in->options, "status_map"));
    adapter_set(ev, "status", firing == 0 ? "resolved" : "firing");

    labels = adapter_labels_from(adapter_map_value(m, "labels", item));
    if (!labels)
        goto done;
    sev = adapter_map_text(m, "severity", item);
    title = adapter_map_text(m, "title", item);
    text = adapter_map_text(m, "text", item);
    url = adapter_map_text(m, "url", item);
    site = adapter_map_text(m, "site", item);
    key = adapter_map_text(m, "key", item);
    if (!key) {
        /* Without an id the alarm is what it is about: its labels, else its title and site. */
        if (json_object_size(labels) > 0) {
            hash = adapter_labels_hash(labels);
        } else {
            const char *parts[] = {title ? title : "", site ? site : "", NULL};
            hash = adapter_hash_strings(parts);
        }
        if (!hash)
            goto done;
    }
    adapter_set(ev, "key", key ? key : hash);
    adapter_set_lower(ev, "severity", sev);
    adapter_set(ev, "title", title);
    adapter_set(ev, "text", text);
    adapter_set(ev, "url", url);
    adapter_set(ev, "site", site);
    json_t *tv = adapter_map_value(m, "time", item);
    if (tv) {
        adapter_set_time(ev, tv);
    } else if ((when = adapter_map_text(m, "time", item)) != NULL) {
        json_t *s = json_string(when);
        adapter_set_time(ev, s);
        json_decref(s);
    }
    json_object_set_new(ev, "labels", labels);
    labels = NULL;
    adapter_set(ev, "sender_status", status);
    ok = 1;
done:
    if (!ok) {
        json_decref(ev);
        ev = NULL;
    }
    json_decref(labels);
    free(status);
    free(key);
    free(sev);
    free(title);
    free(text);
    free(url);
    free(site);
    free(hash);
    free(when);
    return ev;
}

/* An adapter_item_fn for the json kind: the event can fail only for memory. */
static json_t *json_item_event(const struct adapter_input *in, const struct adapter_map *m,
                               json_t *item, size_t index, char **err)
{
    (void)index;
    json_t *ev = adapter_json_event(in, "json", m, item);
    if (!ev)
        *err = adapter_errf("out of memory");
    return ev;
}

enum adapter_result adapter_json_run(const struct adapter_input *in,
                                     const struct adapter_limits *lim, json_t **events,
                                     char **err)
{
    enum adapter_result r = ADAPTER_REJECT;
    json_t *root = NULL, *items = NULL;
    jpath_t *split = NULL;
    struct adapter_map *m = adapter_generic_map("json", in->options, err);
    if (!m || adapter_split_option(in->options, &split, err) < 0)
        goto done;
    if (adapter_body_json(in, lim, &root, err) != ADAPTER_OK)
        goto done;
    if (adapter_split(root, split, adapter_max_events(lim), &items, err) < 0)
        goto done;
    r = adapter_map_items(in, m, items, json_item_event, events, err);
done:
    adapter_map_free(m);
    jpath_free(split);
    json_decref(items);
    json_decref(root);
    return r;
}
