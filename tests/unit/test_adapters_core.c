/* Unit tests for the adapter dispatch and shared helpers: bounded JSON parsing, kinds and
 * option checks, limits, content types, labels, times, status words and macros. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"

static json_t *opts(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert_not_null(v, "bad test JSON: %s", e.text);
    return v;
}

static char *reject(const char *kind, const char *body, const char *ctype, json_t *options,
                    const struct adapter_limits *lim)
{
    struct adapter_input in = {body, strlen(body), ctype, NULL, NULL, "src", "2025-04-08T00:00:00.000Z", options, 0};
    json_t *events = (json_t *)1;
    char *err = NULL;
    cr_assert_eq(adapter_run(kind, &in, lim, &events, &err), ADAPTER_REJECT, "%s accepted %s",
                 kind, body);
    cr_assert_null(events);
    cr_assert_not_null(err);
    cr_assert_null(strchr(err, '\n'), "reason is one line: %s", err);
    return err;
}

static void assert_reject(const char *kind, const char *body, const char *ctype,
                          json_t *options, const struct adapter_limits *lim, const char *part)
{
    char *err = reject(kind, body, ctype, options, lim);
    cr_assert(strstr(err, part) != NULL, "%s: reason '%s' lacks '%s'", kind, err, part);
    free(err);
}

Test(adapter_parse_json, reports_line_and_column_of_a_syntax_error)
{
    char *err = NULL;
    const char *body = "{\n  \"a\": 1,\n  \"b\": tru\n}";
    cr_assert_null(adapter_parse_json(body, strlen(body), 0, &err));
    cr_assert_not_null(err);
    cr_assert(strncmp(err, "line 3, column ", 15) == 0, "got %s", err);
    free(err);
}

Test(adapter_parse_json, refuses_nesting_beyond_the_limit_before_parsing)
{
    char body[200];
    memset(body, '[', 65);
    memset(body + 65, ']', 65);
    body[130] = '\0';
    char *err = NULL;
    cr_assert_null(adapter_parse_json(body, strlen(body), 64, &err));
    cr_assert_str_eq(err, "nesting deeper than 64");
    free(err);
    json_t *ok = adapter_parse_json(body + 1, strlen(body) - 2, 64, &err);
    cr_assert(json_is_array(ok), "64 levels are allowed");
    json_decref(ok);
}

Test(adapter_parse_json, ignores_brackets_inside_strings_when_measuring_depth)
{
    const char *body = "{\"a\":\"[[[[[[[[[[\\\"{{{{{{{{{{\"}";
    char *err = NULL;
    json_t *v = adapter_parse_json(body, strlen(body), 2, &err);
    cr_assert_not_null(v, "%s", err ? err : "");
    json_decref(v);
}

Test(adapter_parse_json, accepts_a_byte_order_mark_and_rejects_empty_or_invalid_utf8)
{
    char *err = NULL;
    const char *bom = "\xEF\xBB\xBF{\"a\":1}";
    json_t *v = adapter_parse_json(bom, strlen(bom), 0, &err);
    cr_assert(json_is_object(v));
    json_decref(v);
    cr_assert_null(adapter_parse_json("", 0, 0, &err));
    cr_assert_str_eq(err, "empty body where JSON was expected");
    free(err);
    const char *bad = "{\"a\":\"\xff\xfe\"}";
    cr_assert_null(adapter_parse_json(bad, strlen(bad), 0, &err));
    cr_assert(strstr(err, "line 1") != NULL, "%s", err);
    free(err);
    cr_assert_null(adapter_parse_json("\"just a string\"", 15, 0, &err));
    free(err);
}

Test(adapter_kinds, every_documented_kind_is_known_and_others_are_not)
{
    const char *kinds[] = {"alertmanager", "grafana", "zabbix", "json", "form", "bms", "email"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        cr_assert(adapter_known(kinds[i]), "%s", kinds[i]);
    cr_assert_not(adapter_known("Alertmanager"));
    cr_assert_not(adapter_known("xml"));
    cr_assert_not(adapter_known(NULL));
}

Test(adapter_run, rejects_an_unknown_kind_with_its_name)
{
    assert_reject("nagios", "{}", NULL, NULL, NULL, "unknown adapter kind 'nagios'");
}

Test(adapter_check_options, accepts_good_options_for_each_kind)
{
    const char *cases[][2] = {
        {"alertmanager", "{\"site_label\":\"building\"}"},
        {"grafana", "{}"},
        {"zabbix", "{\"site_tag\":\"campus\",\"utc_offset\":\"+01:00\","
                   "\"fields\":{\"title\":[\"subject\",\"name\"]},\"status_map\":{\"UP\":\"resolved\"}}"},
        {"json", "{\"split\":\"alerts[*]\",\"fields\":{\"key\":\"id\",\"labels\":\"tags\"},"
                 "\"defaults\":{\"site\":\"HQ\",\"severity\":3},"
                 "\"status_map\":{\"raised\":\"firing\",\"lowered\":\"resolved\"}}"},
        {"form", "{\"fields\":{\"title\":\"subject\"}}"},
        {"bms", "{\"priority_map\":[{\"max\":10,\"severity\":\"p1\"},{\"max\":255,"
                "\"severity\":\"p2\"}],\"fields\":{\"point\":\"tag\"}}"},
        {"email", "{\"anything\":\"the mail module checks\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = opts(cases[i][1]);
        char *err = NULL;
        cr_assert_eq(adapter_check_options(cases[i][0], o, &err), 0, "%s: %s", cases[i][0],
                     err ? err : "");
        json_decref(o);
    }
    char *err = NULL;
    cr_assert_eq(adapter_check_options("json", NULL, &err), 0);
}

Test(adapter_check_options, names_the_bad_option)
{
    const char *cases[][3] = {
        {"alertmanager", "{\"site_lable\":\"x\"}", "unknown option 'site_lable'"},
        {"alertmanager", "{\"site_label\":5}", "site_label"},
        {"zabbix", "{\"utc_offset\":\"CET\"}", "utc_offset"},
        {"zabbix", "{\"fields\":{\"colour\":\"x\"}}", "fields.colour: unknown field"},
        {"json", "{\"split\":\"alerts[0]\"}", "split must select several items"},
        {"json", "{\"split\":\"alerts[\"}", "split: unterminated"},
        {"json", "{\"fields\":{\"title\":\"a..b\"}}", "fields.title: key expected after '.' at column 3"},
        {"json", "{\"fields\":{\"title\":7}}", "fields.title must be a path"},
        {"json", "{\"status_map\":{\"up\":\"green\"}}", "status_map.up must be firing or resolved"},
        {"json", "{\"defaults\":{\"nope\":\"x\"}}", "defaults.nope: unknown field"},
        {"form", "{\"split\":\"a[*]\"}", "unknown option 'split' for the form adapter"},
        {"bms", "{\"priority_map\":[{\"max\":10,\"severity\":\"a\"},{\"max\":5,\"severity\":\"b\"}]}",
         "priority_map[1].max must be greater"},
        {"bms", "{\"priority_map\":{\"0\":\"a\"}}", "priority_map must be a list"},
        {"xml", "{}", "unknown adapter kind 'xml'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *o = opts(cases[i][1]);
        char *err = NULL;
        cr_assert_eq(adapter_check_options(cases[i][0], o, &err), -1, "%s %s", cases[i][0],
                     cases[i][1]);
        cr_assert(err && strstr(err, cases[i][2]), "%s: '%s' lacks '%s'", cases[i][0],
                  err ? err : "(null)", cases[i][2]);
        free(err);
        json_decref(o);
    }
    json_t *arr = json_array();
    char *err = NULL;
    cr_assert_eq(adapter_check_options("json", arr, &err), -1);
    cr_assert_str_eq(err, "options must be a mapping");
    free(err);
    json_decref(arr);
}

Test(adapter_run, rejects_more_events_than_the_limit_instead_of_truncating)
{
    struct adapter_limits lim = {0, 2};
    const char *am = "{\"version\":\"4\",\"alerts\":[{\"labels\":{}},{\"labels\":{}},{\"labels\":{}}]}";
    assert_reject("alertmanager", am, "application/json", NULL, &lim,
                  "too many events: 3 alerts (limit 2)");
    assert_reject("grafana", am, NULL, NULL, &lim, "too many events");
    json_t *o = opts("{\"split\":\"[*]\"}");
    assert_reject("json", "[{},{},{}]", NULL, o, &lim, "too many events: more than 2 items");
    json_decref(o);
    assert_reject("bms", "[{\"uuid\":\"a\"},{\"uuid\":\"b\"},{\"uuid\":\"c\"}]", NULL, NULL, &lim,
                  "too many events: 3 alarms (limit 2)");
}

Test(adapter_run, rejects_json_nested_deeper_than_the_limit_for_every_json_kind)
{
    struct adapter_limits lim = {4, 0};
    const char *deep = "{\"alerts\":[{\"labels\":{\"a\":[[1]]}}]}";
    const char *kinds[] = {"alertmanager", "grafana", "zabbix", "json", "bms"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        assert_reject(kinds[i], deep, NULL, NULL, &lim, "nesting deeper than 4");
}

Test(adapter_run, rejects_bodies_that_are_plainly_not_json)
{
    assert_reject("json", "<alarm/>", "application/xml", NULL, NULL,
                  "content type application/xml is not JSON");
    assert_reject("json", "--b\r\n", "multipart/form-data; boundary=b", NULL, NULL,
                  "content type multipart/form-data is not JSON");
    assert_reject("alertmanager", "a=1&b=2", "application/x-www-form-urlencoded", NULL, NULL,
                  "use the form adapter");
    assert_reject("json", "{\"a\": }", "application/json", NULL, NULL, "line 1, column 7");
}

Test(adapter_run, accepts_json_posted_with_curls_default_form_content_type)
{
    const char *body = "{\"title\":\"x\"}";
    struct adapter_input in = {body, strlen(body), "application/x-www-form-urlencoded", NULL, NULL,
                               "src", "2025-04-08T00:00:00.000Z", NULL, 0};
    json_t *events = NULL;
    char *err = NULL;
    cr_assert_eq(adapter_run("json", &in, NULL, &events, &err), ADAPTER_OK, "%s", err ? err : "");
    cr_assert_eq(json_array_size(events), 1);
    json_decref(events);
}

Test(adapter_run, keeps_reasons_printable_when_they_quote_the_senders_bytes)
{
    char *err = reject("json", "{\"a\": \xc3\xa9t\xc3\xa9}", NULL, NULL, NULL);
    cr_assert(strncmp(err, "line 1, column ", 15) == 0, "%s", err);
    for (const char *c = err; *c; c++)
        cr_assert((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f, "byte 0x%02x in %s",
                  (unsigned char)*c, err);
    free(err);
}

Test(adapter_run, rejects_options_that_are_not_a_mapping)
{
    json_t *o = json_string("x");
    assert_reject("json", "{}", NULL, o, NULL, "source options must be a mapping");
    json_decref(o);
}

static char *labels_of(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    cr_assert_not_null(v, "%s", text);
    json_t *l = adapter_labels_from(v);
    char *s = json_dumps(l, JSON_COMPACT);
    json_decref(l);
    json_decref(v);
    return s;
}

#define assert_labels(in, expect)                                                            \
    do {                                                                                     \
        char *got_ = labels_of(in);                                                          \
        cr_assert_str_eq(got_, expect, "labels of %s", in);                                  \
        free(got_);                                                                          \
    } while (0)

Test(adapter_labels, come_from_objects_pairs_and_tag_strings)
{
    assert_labels("{\"a\":\"x\",\"n\":3,\"b\":true,\"z\":null,\"o\":{\"k\":1}}",
                  "{\"a\":\"x\",\"n\":\"3\",\"b\":\"true\",\"o\":\"{\\\"k\\\":1}\"}");
    assert_labels("[{\"tag\":\"site\",\"value\":\"HQ\"},{\"name\":\"svc\",\"value\":2},"
                  "{\"Tag\":\"bare\"},{\"value\":\"orphan\"},7]",
                  "{\"site\":\"HQ\",\"svc\":\"2\",\"bare\":\"\"}");
    assert_labels("\"site:Leeds, service:hvac,  lone , :x, url:http://a:b\"",
                  "{\"site\":\"Leeds\",\"service\":\"hvac\",\"lone\":\"\",\"url\":\"http://a:b\"}");
    assert_labels("\"[{\\\"tag\\\":\\\"a\\\",\\\"value\\\":\\\"1\\\"}]\"", "{\"a\":\"1\"}");
    assert_labels("42", "{}");
}

Test(adapter_labels, hash_ignores_member_order_and_tells_sets_apart)
{
    json_t *a = opts("{\"alertname\":\"X\",\"site\":\"HQ\"}");
    json_t *b = opts("{\"site\":\"HQ\",\"alertname\":\"X\"}");
    json_t *c = opts("{\"site\":\"HQ\",\"alertname\":\"Y\"}");
    json_t *d = opts("{\"siteH\":\"Q\",\"alertname\":\"X\"}");
    char *ha = adapter_labels_hash(a), *hb = adapter_labels_hash(b);
    char *hc = adapter_labels_hash(c), *hd = adapter_labels_hash(d);
    cr_assert_eq(strlen(ha), 32);
    cr_assert_str_eq(ha, hb);
    cr_assert_str_neq(ha, hc);
    cr_assert_str_neq(ha, hd);
    free(ha);
    free(hb);
    free(hc);
    free(hd);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
}

static void assert_time(json_t *v, const char *expect)
{
    char out[32];
    if (!expect) {
        cr_assert_eq(adapter_time_norm(v, out), -1);
    } else {
        cr_assert_eq(adapter_time_norm(v, out), 0);
        cr_assert_str_eq(out, expect);
    }
    json_decref(v);
}

Test(adapter_time, normalises_iso_dates_and_epoch_numbers_to_utc)
{
    assert_time(json_string("2025-04-08T10:02:14.5+01:00"), "2025-04-08T09:02:14.500Z");
    assert_time(json_string("2025-04-08T09:12:44.123456789Z"), "2025-04-08T09:12:44.123Z");
    assert_time(json_string("2025-04-08 16:00:00"), "2025-04-08T16:00:00.000Z");
    assert_time(json_string("Tue, 08 Apr 2025 09:00:00 GMT"), "2025-04-08T09:00:00.000Z");
    assert_time(json_integer(1744106700), "2025-04-08T10:05:00.000Z");
    assert_time(json_integer(1744106700123), "2025-04-08T10:05:00.123Z");
    assert_time(json_string("1744106700"), "2025-04-08T10:05:00.000Z");
    assert_time(json_real(1744106700.25), "2025-04-08T10:05:00.250Z");
    assert_time(json_string("0001-01-01T00:00:00Z"), NULL);
    assert_time(json_string("yesterday"), NULL);
    assert_time(json_integer(-5), NULL);
    assert_time(json_true(), NULL);
}

Test(adapter_status, maps_default_words_and_a_custom_map_first)
{
    cr_assert_eq(adapter_status_word("FIRING", NULL), 1);
    cr_assert_eq(adapter_status_word("Triggered", NULL), 1);
    cr_assert_eq(adapter_status_word("critical", NULL), 1);
    cr_assert_eq(adapter_status_word("Recovered", NULL), 0);
    cr_assert_eq(adapter_status_word("cleared", NULL), 0);
    cr_assert_eq(adapter_status_word("acknowledged", NULL), -1);
    cr_assert_eq(adapter_status_word(NULL, NULL), -1);
    json_t *m = opts("{\"Open\":\"resolved\",\"ACK\":\"firing\"}");
    cr_assert_eq(adapter_status_word("open", m), 0);
    cr_assert_eq(adapter_status_word("ack", m), 1);
    json_decref(m);
}

Test(adapter_macros, unexpanded_zabbix_macros_are_recognised)
{
    cr_assert(adapter_is_macro("{EVENT.RECOVERY.ID}"));
    cr_assert(adapter_is_macro("{ALERT.MESSAGE}"));
    cr_assert(adapter_is_macro("{$ZABBIX.URL}"));
    cr_assert(adapter_is_macro("{EVENT.TAGS.site}"));
    cr_assert(adapter_is_macro("*UNKNOWN*"));
    cr_assert_not(adapter_is_macro("{}"));
    cr_assert_not(adapter_is_macro("{json}"));
    cr_assert_not(adapter_is_macro("x{EVENT.ID}"));
    cr_assert_not(adapter_is_macro("50917"));
}
