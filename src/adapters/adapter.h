/* adapter: turns one stored HTTP request into events — JSON documents with normalised fields
 * (source, kind, status, key, severity, title, text, labels, time, url, site, raw) that rules
 * rely on, plus per-kind extras (docs/adapters.md). One file per kind; this module holds the
 * dispatch table and the helpers they share. Adapters never call the API or do I/O. */
#ifndef TB_ADAPTER_H
#define TB_ADAPTER_H

#include <jansson.h>
#include <stddef.h>

#include "jpath.h"

struct adapter_input {
    const char *body;
    size_t body_len;          /* raw request body as stored */
    const char *content_type; /* may be NULL */
    json_t *headers;          /* borrowed: object, lowercased header name → string */
    json_t *query;            /* borrowed: object of query parameters, may be NULL */
    const char *source;       /* the source's name */
    const char *received_at;  /* ISO 8601 time the request was stored */
    json_t *options;          /* borrowed: the source's adapter options, may be NULL */
    /* Only judge the payload (the intake's check): an adapter that can tell a good payload
     * without building its events may return an empty event list. It refuses exactly what a
     * full run refuses. */
    int check_only;
};

/* 0 = defaults (ADAPTER_DEFAULT_MAX_DEPTH, ADAPTER_DEFAULT_MAX_EVENTS). */
struct adapter_limits {
    size_t max_depth;
    size_t max_events;
};
#define ADAPTER_DEFAULT_MAX_DEPTH 64
#define ADAPTER_DEFAULT_MAX_EVENTS 1000

enum adapter_result { ADAPTER_OK, ADAPTER_REJECT };

/* Runs the adapter of that kind (lim may be NULL). OK: *events is a new JSON array (possibly
 * empty). REJECT: *err is a malloc'd one-line reason fit for a problem+json detail (bad JSON
 * with line:col, too deep, too many events, wrong content type, missing required field).
 * A refusal of the content type always begins "content type" (the server answers it 415). */
enum adapter_result adapter_run(const char *kind, const struct adapter_input *in,
                                const struct adapter_limits *lim, json_t **events, char **err);
/* 1 when kind is known ("alertmanager", "grafana", "zabbix", "json", "form", "bms", "email"). */
int adapter_known(const char *kind);
/* Validates a source's options (borrowed, may be NULL) for kind at config load; 0, or -1 with
 * *err (malloc'd) naming the bad option (the config module prefixes file:line:col). */
int adapter_check_options(const char *kind, json_t *options, char **err);
/* The answer of a check_only run that judged the payload good: OK with an empty event list
 * (*events new), or REJECT with *err on out of memory. */
enum adapter_result adapter_no_events(json_t **events, char **err);
/* For check_only runs of the alert adapters: 1 when the body is certainly JSON that jansson
 * accepts, an object whose "alerts" is an array of at most the limit's events, all objects
 * (and whose "version", when want_version and present, is "4"); 0 when unsure (run the full
 * check, which words the refusal). Reads the bytes once and builds nothing. */
int adapter_quick_alerts(const struct adapter_input *in, const struct adapter_limits *lim,
                         int want_version);
/* Parses JSON with a nesting-depth limit (0 = 64) checked on the raw bytes before jansson sees
 * them. Returns a new value (object or array) or NULL with *err malloc'd ("line 3, column 7:
 * ..." or "nesting deeper than 64"). Shared by every JSON adapter and the email/provider code. */
json_t *adapter_parse_json(const char *body, size_t len, size_t max_depth, char **err);

/* The same for every adapter kind, so they line up in one table. */
typedef enum adapter_result (*adapter_fn)(const struct adapter_input *in,
                                          const struct adapter_limits *lim, json_t **events,
                                          char **err);
enum adapter_result adapter_alertmanager_run(const struct adapter_input *in,
                                             const struct adapter_limits *lim,
                                             json_t **events, char **err);
enum adapter_result adapter_grafana_run(const struct adapter_input *in,
                                        const struct adapter_limits *lim, json_t **events,
                                        char **err);
enum adapter_result adapter_zabbix_run(const struct adapter_input *in,
                                       const struct adapter_limits *lim, json_t **events,
                                       char **err);
enum adapter_result adapter_json_run(const struct adapter_input *in,
                                     const struct adapter_limits *lim, json_t **events,
                                     char **err);
enum adapter_result adapter_form_run(const struct adapter_input *in,
                                     const struct adapter_limits *lim, json_t **events,
                                     char **err);
enum adapter_result adapter_bms_run(const struct adapter_input *in,
                                    const struct adapter_limits *lim, json_t **events,
                                    char **err);
/* Written in src/adapters/email.c by the mail module. */
enum adapter_result adapter_email_run(const struct adapter_input *in,
                                      const struct adapter_limits *lim, json_t **events,
                                      char **err);

/* Per-kind option checks (options is a borrowed object, may be NULL): 0 or -1 with *err. */
int adapter_alertmanager_check(json_t *options, char **err);
int adapter_grafana_check(json_t *options, char **err);
int adapter_zabbix_check(json_t *options, char **err);
int adapter_json_check(json_t *options, char **err);
int adapter_form_check(json_t *options, char **err);
int adapter_bms_check(json_t *options, char **err);

/* ---- Helpers for adapter implementations (the files of src/adapters/) ------------------ */

/* malloc'd printf for *err; never NULL unless memory ran out. */
char *adapter_errf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
size_t adapter_max_depth(const struct adapter_limits *lim);
size_t adapter_max_events(const struct adapter_limits *lim);
/* Checks the content type is not plainly something else (multipart, XML, HTML, media; a
 * form only when the body starts like JSON) then parses the body with the depth limit. OK with *root new. */
enum adapter_result adapter_body_json(const struct adapter_input *in,
                                      const struct adapter_limits *lim, json_t **root,
                                      char **err);
/* 0 when options is NULL or an object whose keys are all in allowed (NULL-ended); else -1
 * with *err naming the first unknown option. */
int adapter_check_known_options(const char *kind, json_t *options, const char *const *allowed,
                                char **err);

/* New event with every normalised field at its default ("" strings, status "firing", labels
 * {}, time = received_at or now) and raw = item (borrowed; a reference is taken). */
json_t *adapter_event_new(const struct adapter_input *in, const char *kind, json_t *item);
/* Sets field to a string (NULL → ""); adapter_set_lower lowercases ASCII. ev is borrowed. */
void adapter_set(json_t *ev, const char *field, const char *s);
void adapter_set_lower(json_t *ev, const char *field, const char *s);
/* Sets time from a value (ISO 8601/RFC 3339 string, epoch seconds or milliseconds as number
 * or digits) normalised to UTC "YYYY-MM-DDTHH:MM:SS.mmmZ". 0, or -1 leaving time unchanged. */
int adapter_set_time(json_t *ev, json_t *when);
/* Normalises a time value as adapter_set_time does into out; 0 or -1. */
int adapter_time_norm(json_t *when, char out[32]);

/* String member key of obj (exact, then case-insensitive); borrowed; NULL when absent, not a
 * string, or obj is not an object. */
const char *adapter_get_str(json_t *obj, const char *key);
/* Any scalar member rendered as text (jpath_scalar_string); malloc'd or NULL. */
char *adapter_get_text(json_t *obj, const char *key);
/* New object of string labels from v: an object (scalars rendered, null dropped, nested
 * values as compact JSON), an array of {tag|name|key, value} pairs, or a string
 * "k:v, k2:v2". Anything else gives {}. NULL only when memory runs out. */
json_t *adapter_labels_from(json_t *v);
/* Stable key from labels: hex SHA-256 (32 chars) over the sorted name/value pairs; malloc'd. */
char *adapter_labels_hash(json_t *labels);
/* Stable key from strings (NULL-ended list, NULLs in the middle not allowed); malloc'd. */
char *adapter_hash_strings(const char *const *parts);
/* Deep copy of v, or a new empty object when v is not an object. */
json_t *adapter_object_copy(json_t *v);

/* Status words: 1 firing, 0 resolved, -1 unknown. status_map (borrowed, may be NULL) maps a
 * sender's value to "firing"/"resolved" (keys case-insensitive) and is consulted first. */
int adapter_status_word(const char *value, json_t *status_map);
/* Checks a status_map option: an object of string → "firing"|"resolved". 0 or -1 with *err. */
int adapter_check_status_map(json_t *status_map, char **err);

/* A field mapping: for each field name, candidate jpaths tried in order within an item; the
 * first present, non-null value wins. Built from per-kind defaults and the options `fields`
 * (field → path or list of paths) and `defaults` (field → constant string). */
struct adapter_field_def {
    const char *name;
    const char *paths[16]; /* NULL-ended candidate paths */
};
struct adapter_map;
/* Builds a mapping from defs (n entries) and options (borrowed, may be NULL); the options
 * `fields`/`defaults` may only name fields in defs. NULL with *err on a bad option. */
struct adapter_map *adapter_map_new(const struct adapter_field_def *defs, size_t n,
                                    json_t *options, char **err);
void adapter_map_free(struct adapter_map *m);
/* When set, string values that are unexpanded Zabbix macros ("{EVENT.ID}", "*UNKNOWN*") count
 * as absent, so the next candidate is tried. */
void adapter_map_skip_macros(struct adapter_map *m, int on);
/* First value for field in item, borrowed; NULL when absent (defaults are not consulted). */
json_t *adapter_map_value(const struct adapter_map *m, const char *field, json_t *item);
/* Field rendered as text, else the options default for it; malloc'd or NULL when absent. */
char *adapter_map_text(const struct adapter_map *m, const char *field, json_t *item);
/* 1 when the options `fields` named this field (the user chose its path). */
int adapter_map_overridden(const struct adapter_map *m, const char *field);
/* 1 when s is an unexpanded Zabbix macro or *UNKNOWN*. */
int adapter_is_macro(const char *s);
/* Compiles the `split` option (borrowed, may be NULL): NULL *out when absent. -1 with *err
 * when it is not a string, does not compile, or has no wildcard. */
int adapter_split_option(json_t *options, jpath_t **out, char **err);
/* The items split selects in root (split NULL: root itself) as a new array holding references.
 * 0, or -1 with *err when more than max items are selected (never truncated). */
int adapter_split(json_t *root, const jpath_t *split, size_t max, json_t **items, char **err);
/* One Alertmanager-shaped alert (Alertmanager, Grafana unified alerting) → a new event with
 * the normalised fields and the fingerprint, annotations, startsAt and endsAt extras.
 * group_status (may be NULL) is the payload's status, used when the alert has none;
 * site_label (may be NULL) names the label holding the site. NULL when memory runs out. */
json_t *adapter_am_event(const struct adapter_input *in, const char *kind, json_t *alert,
                         const char *group_status, const char *site_label);
/* The events of an Alertmanager-shaped payload root (borrowed) whose array alerts (borrowed)
 * holds at most max alerts: each alert (an object) through adapter_am_event with kind, the
 * payload's status and the site_label option, then extras (may be NULL) for the kind's own
 * fields, then "group": a copy of what group_of (a new object or NULL) made of root. OK with
 * *events a new array; REJECT with *err (too many alerts, not an object, out of memory). */
enum adapter_result adapter_am_events(const struct adapter_input *in, const char *kind,
                                      json_t *root, json_t *alerts, size_t max,
                                      json_t *(*group_of)(json_t *root),
                                      void (*extras)(json_t *ev, json_t *alert, json_t *root),
                                      json_t **events, char **err);
/* Builds the event of item (borrowed), the index-th item, through m: new, or NULL with *err. */
typedef json_t *(*adapter_item_fn)(const struct adapter_input *in, const struct adapter_map *m,
                                   json_t *item, size_t index, char **err);
/* One event per item of the array items (borrowed), in order, each from make. OK with
 * *events a new array; REJECT with make's *err, or "out of memory". */
enum adapter_result adapter_map_items(const struct adapter_input *in,
                                      const struct adapter_map *m, json_t *items,
                                      adapter_item_fn make, json_t **events, char **err);
/* Checks the options of the json or form kind (by name) and builds their mapping (fields
 * status, key, severity, title, text, time, url, site, labels). NULL with *err. */
struct adapter_map *adapter_generic_map(const char *kind, json_t *options, char **err);
/* The generic mapping shared by the json and form kinds: one event from item through m
 * (fields status, key, severity, title, text, time, url, site, labels) and the options
 * status_map. Returns a new event or NULL when memory runs out. */
json_t *adapter_json_event(const struct adapter_input *in, const char *kind,
                           const struct adapter_map *m, json_t *item);

#endif
