/* fuzz_adapters: every source adapter (except email, fuzzed by the mail harnesses) and the
 * jpath compiler/evaluator over arbitrary bytes. Each input runs through every kind, with and
 * without options and with tight limits; every event produced must honour the event contract
 * (all normalised fields present with the right types), or the harness aborts. An input
 * starting with "#path " uses that line as a jpath over the rest. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "jpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const string_fields[] = {"source", "kind", "status", "key", "severity",
                                            "title", "text", "time", "url", "site", NULL};

static void check_events(json_t *events)
{
    if (!json_is_array(events))
        abort();
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        for (size_t f = 0; string_fields[f]; f++)
            if (!json_is_string(json_object_get(ev, string_fields[f])))
                abort();
        const char *st = json_string_value(json_object_get(ev, "status"));
        if (strcmp(st, "firing") != 0 && strcmp(st, "resolved") != 0)
            abort();
        json_t *labels = json_object_get(ev, "labels");
        if (!json_is_object(labels))
            abort();
        const char *k;
        json_t *v;
        json_object_foreach(labels, k, v) {
            if (!json_is_string(v))
                abort();
        }
        if (!json_object_get(ev, "raw"))
            abort();
    }
}

static void run(const char *kind, const char *body, size_t len, const char *ctype,
                const char *options, const struct adapter_limits *lim)
{
    json_t *o = options ? json_loads(options, 0, NULL) : NULL;
    struct adapter_input in = {body, len, ctype, NULL, NULL, "fuzz", "2025-04-08T00:00:00.000Z",
                               o, 0};
    json_t *events = NULL;
    char *err = NULL;
    enum adapter_result r = adapter_run(kind, &in, lim, &events, &err);
    /* The intake's check refuses exactly what a full run refuses. */
    in.check_only = 1;
    json_t *checked = NULL;
    char *cerr = NULL;
    if (adapter_run(kind, &in, lim, &checked, &cerr) != r)
        abort();
    json_decref(checked);
    free(cerr);
    if (r == ADAPTER_OK) {
        check_events(events);
    } else {
        if (!err || events)
            abort();
        /* Reasons become problem+json details: one line of printable ASCII. */
        for (const char *c = err; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                abort();
    }
    json_decref(events);
    free(err);
    json_decref(o);
}

static int visit(json_t *v, void *ud)
{
    (void)ud;
    free(jpath_scalar_string(v));
    return 0;
}

static void paths(const char *path, json_t *root)
{
    char err[128];
    size_t col;
    jpath_t *p = jpath_compile(path, err, sizeof err, &col);
    if (!p)
        return;
    if (root) {
        jpath_each(p, root, visit, NULL);
        jpath_first(p, root);
    }
    jpath_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    size_t len = size;
    char *path = NULL;
    if (size > 6 && memcmp(data, "#path ", 6) == 0) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t plen = nl ? (size_t)(nl - data) - 6 : size - 6;
        path = malloc(plen + 1);
        if (!path)
            return 0;
        memcpy(path, data + 6, plen);
        path[plen] = '\0';
        body = nl ? (const char *)nl + 1 : body + size;
        len = nl ? size - (size_t)(nl - data) - 1 : 0;
    }

    char *perr = NULL;
    json_t *root = adapter_parse_json(body, len, 0, &perr);
    free(perr);
    if (path)
        paths(path, root);
    static const char *const fixed[] = {"alerts[*].labels", "*", "[0]", "a.b[-1]",
                                        "[\"x.y\"][*][*]", "alerts[-1].annotations.summary"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        paths(fixed[i], root);
    json_decref(root);
    free(path);

    static const struct adapter_limits tight = {8, 3};
    static const char *const kinds[] = {"alertmanager", "grafana", "zabbix", "json", "bms"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        run(kinds[i], body, len, "application/json", NULL, NULL);
        run(kinds[i], body, len, NULL, NULL, &tight);
    }
    run("alertmanager", body, len, NULL, "{\"site_label\":\"building\"}", NULL);
    run("zabbix", body, len, NULL,
        "{\"fields\":{\"key\":[\"ticket\",\"event_id\"],\"status\":\"state\"},"
        "\"status_map\":{\"up\":\"resolved\"},\"site_tag\":\"campus\",\"utc_offset\":\"-05:00\"}",
        NULL);
    run("json", body, len, "application/json",
        "{\"split\":\"[*]\",\"fields\":{\"key\":\"id\",\"labels\":\"tags\",\"time\":\"at\"},"
        "\"status_map\":{\"rtn\":\"resolved\"},\"defaults\":{\"site\":\"HQ\"}}",
        NULL);
    run("json", body, len, NULL, "{\"split\":\"alerts[*]\"}", &tight);
    run("bms", body, len, NULL,
        "{\"split\":\"items[*]\",\"priority_map\":[{\"max\":10,\"severity\":\"p1\"},"
        "{\"max\":100,\"severity\":\"p2\"}],\"fields\":{\"point\":[\"tag\",\"name\"]}}",
        NULL);
    run("form", body, len, "application/x-www-form-urlencoded", NULL, NULL);
    run("form", body, len, "application/x-www-form-urlencoded",
        "{\"fields\":{\"title\":\"subject\",\"labels\":\"tags\"},\"defaults\":{\"site\":\"X\"}}",
        NULL);
    return 0;
}
