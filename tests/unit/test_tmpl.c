/* Unit tests for tmpl: syntax errors with line:col, limits, escaping, numbers, truthiness,
 * partials (loading once, indentation, recursion) and the name walker. The spec cases
 * themselves live in tests/golden/test_mustache_spec.c. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tmpl.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    cr_assert_not_null(v, "bad test JSON: %s", jerr.text);
    return v;
}

/* Renders text over JSON data (escape on) and compares with expected. */
static void expect_render(const char *text, const char *data, int escape, const char *expected)
{
    json_t *d = parse(data);
    struct tmpl_error err;
    char *out = tmpl_render_string(text, d, escape, &err);
    cr_assert_not_null(out, "%s: %s at %d:%d", text, err.msg, err.line, err.col);
    cr_expect_str_eq(out, expected, "template %s", text);
    free(out);
    json_decref(d);
}

/* Compiles text, expects a failure at line:col whose message contains needle. */
static void expect_error(const char *text, int line, int col, const char *needle)
{
    struct tmpl_error err;
    tmpl_t *t = tmpl_compile(text, NULL, NULL, &err);
    cr_assert_null(t, "compiled but should not: %s", text);
    cr_expect_eq(err.line, line, "%s: line %d, want %d (%s)", text, err.line, line, err.msg);
    cr_expect_eq(err.col, col, "%s: col %d, want %d (%s)", text, err.col, col, err.msg);
    cr_expect(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", text, err.msg,
              needle);
}

/* Partial loader over a JSON object of name -> text, counting calls per name. */
struct partials {
    json_t *texts;
    json_t *calls;
};

static char *load(const char *name, void *ud)
{
    struct partials *p = ud;
    json_t *n = json_object_get(p->calls, name);
    json_object_set_new(p->calls, name, json_integer(n ? json_integer_value(n) + 1 : 1));
    json_t *v = json_object_get(p->texts, name);
    return json_is_string(v) ? util_strdup(json_string_value(v)) : NULL;
}

Test(tmpl_errors, an_unclosed_tag_is_reported_at_its_opening)
{
    expect_error("line one\n  hello {{name\n", 2, 9, "unclosed tag");
    expect_error("{{{raw}}", 1, 1, "unclosed tag");
}

Test(tmpl_errors, an_unclosed_section_is_reported_at_its_opening_tag)
{
    expect_error("a\nb {{#items}}\n{{x}}\n", 2, 3, "unclosed section items");
}

Test(tmpl_errors, a_mismatched_section_end_names_both_tags)
{
    expect_error("{{#a}}\n {{#b}}x{{/a}}", 2, 9, "{{/a}} closes {{#b}} opened at 2:2");
}

Test(tmpl_errors, a_section_end_without_an_open_section_is_an_error)
{
    expect_error("text {{/a}}", 1, 6, "without an open section");
}

Test(tmpl_errors, bad_delimiters_and_names_are_errors)
{
    expect_error("x\n{{=<%=}}", 2, 1, "bad delimiter");
    expect_error("{{= a b c =}}", 1, 1, "bad delimiter");
    expect_error("{{ }}", 1, 1, "empty tag name");
    expect_error("{{a b}}", 1, 1, "whitespace inside tag name");
    expect_error("{{a..b}}", 1, 1, "empty part in dotted name");
    expect_error("{{$block}}x{{/block}}", 1, 1, "inheritance");
}

Test(tmpl_errors, an_error_inside_a_partial_names_the_partial)
{
    struct partials p = {parse("{\"inner\": \"ok\\n{{#x}}\"}"), json_object()};
    struct tmpl_error err;
    tmpl_t *t = tmpl_compile("{{>inner}}", load, &p, &err);
    cr_assert_null(t);
    cr_expect(strstr(err.msg, "partial 'inner'") != NULL, "message: %s", err.msg);
    cr_expect_eq(err.line, 2);
    cr_expect_eq(err.col, 1);
    json_decref(p.texts);
    json_decref(p.calls);
}

Test(tmpl_errors, changed_delimiters_apply_to_later_errors)
{
    expect_error("{{=<% %>=}}\n<% name }}", 2, 1, "missing '%>'");
}

Test(tmpl_limits, output_past_the_cap_fails_with_a_message)
{
    tmpl_t *t = tmpl_compile("{{#items}}{{.}}{{/items}}", NULL, NULL, NULL);
    cr_assert_not_null(t);
    json_t *d = parse("{\"items\": [\"0123456789\", \"0123456789\", \"0123456789\"]}");
    struct tmpl_limits lim = {.max_output = 25};
    struct tmpl_error err;
    cr_expect_null(tmpl_render(t, d, 1, &lim, &err));
    cr_expect(strstr(err.msg, "output larger than 25 bytes") != NULL, "message: %s", err.msg);
    lim.max_output = 30;
    char *out = tmpl_render(t, d, 1, &lim, &err);
    cr_expect_str_eq(out, "012345678901234567890123456789");
    free(out);
    json_decref(d);
    tmpl_free(t);
}

Test(tmpl_limits, a_partial_that_includes_itself_stops_at_the_depth_limit)
{
    struct partials p = {parse("{\"loop\": \"x{{>loop}}\"}"), json_object()};
    tmpl_t *t = tmpl_compile("{{>loop}}", load, &p, NULL);
    cr_assert_not_null(t);
    struct tmpl_error err;
    cr_expect_null(tmpl_render(t, NULL, 1, NULL, &err));
    cr_expect(strstr(err.msg, "nested deeper than 64") != NULL, "message: %s", err.msg);
    struct tmpl_limits lim = {.max_depth = 5};
    cr_expect_null(tmpl_render(t, NULL, 1, &lim, &err));
    cr_expect(strstr(err.msg, "nested deeper than 5") != NULL, "message: %s", err.msg);
    json_decref(p.texts);
    json_decref(p.calls);
    tmpl_free(t);
}

Test(tmpl_limits, nesting_up_to_the_limit_renders_and_one_more_fails)
{
    tmpl_t *t = tmpl_compile("{{#a}}{{#a}}{{#a}}x{{/a}}{{/a}}{{/a}}", NULL, NULL, NULL);
    cr_assert_not_null(t);
    json_t *d = parse("{\"a\": true}");
    struct tmpl_limits lim = {.max_depth = 3};
    char *out = tmpl_render(t, d, 1, &lim, NULL);
    cr_expect_str_eq(out, "x");
    free(out);
    lim.max_depth = 2;
    struct tmpl_error err;
    cr_expect_null(tmpl_render(t, d, 1, &lim, &err));
    cr_expect_eq(err.line, 1);
    cr_expect_eq(err.col, 13);
    json_decref(d);
    tmpl_free(t);
}

Test(tmpl_limits, data_driven_recursion_within_the_limit_renders)
{
    struct partials p = {parse("{\"node\": \"{{name}}({{#kids}}{{>node}}{{/kids}})\"}"),
                         json_object()};
    tmpl_t *t = tmpl_compile("{{>node}}", load, &p, NULL);
    cr_assert_not_null(t);
    json_t *d = parse("{\"name\": \"a\", \"kids\": [{\"name\": \"b\", \"kids\": "
                      "[{\"name\": \"c\", \"kids\": []}]}, {\"name\": \"d\", \"kids\": []}]}");
    char *out = tmpl_render(t, d, 1, NULL, NULL);
    cr_expect_str_eq(out, "a(b(c())d())");
    free(out);
    cr_expect_eq(json_integer_value(json_object_get(p.calls, "node")), 1,
                 "the partial is loaded once");
    json_decref(d);
    json_decref(p.texts);
    json_decref(p.calls);
    tmpl_free(t);
}

Test(tmpl_escape, escaping_covers_the_five_html_characters)
{
    expect_render("{{s}}", "{\"s\": \"<a href='x'>&\\\"</a>\"}", 1,
                  "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
}

Test(tmpl_escape, triple_and_ampersand_tags_never_escape)
{
    expect_render("{{{s}}}|{{&s}}", "{\"s\": \"<&>\"}", 1, "<&>|<&>");
}

Test(tmpl_escape, escape_off_leaves_every_tag_raw)
{
    expect_render("{{s}}|{{{s}}}|{{#l}}{{.}}{{/l}}", "{\"s\": \"a<b\", \"l\": [\"'\"]}", 0,
                  "a<b|a<b|'");
}

Test(tmpl_values, integers_render_without_a_decimal_point)
{
    expect_render("{{a}} {{b}} {{c}} {{d}} {{e}}",
                  "{\"a\": 0, \"b\": -42, \"c\": 9007199254740993,"
                  " \"d\": -9223372036854775808, \"e\": 9223372036854775807}",
                  1, "0 -42 9007199254740993 -9223372036854775808 9223372036854775807");
}

Test(tmpl_values, reals_render_in_their_shortest_round_trip_form)
{
    expect_render("{{a}} {{b}} {{c}} {{d}} {{e}} {{f}}",
                  "{\"a\": 1.210, \"b\": 3.0, \"c\": 0.1, \"d\": -2.5e-7, \"e\": 1e300,"
                  " \"f\": 0.30000000000000004}",
                  1, "1.21 3 0.1 -2.5e-07 1e+300 0.30000000000000004");
}

/* The reference: the shortest of %.15g, %.16g, %.17g that reads back as d. */
static void shortest_g(double d, char out[40])
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

Test(tmpl_values, reals_read_back_exactly_and_match_the_shortest_g_form)
{
    tmpl_t *t = tmpl_compile("{{x}}", NULL, NULL, NULL);
    cr_assert_not_null(t);
    static const double scale[] = {1, 10, 100, 1000, 1e4, 1e6, 1e8, 1e9, 3, 7};
    unsigned long long seed = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 3000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        long long m = (long long)(seed >> 20) % 100000000000LL - 50000000000LL;
        double d = (double)m / scale[i % 10];
        if (i % 7 == 0)
            d = (double)(seed >> 11) * 0x1.0p-53 * 1e6; /* full-precision values */
        json_t *data = json_pack("{s:f}", "x", d);
        char *out = tmpl_render(t, data, 1, NULL, NULL);
        char want[40];
        shortest_g(d, want);
        cr_assert_not_null(out);
        cr_expect(strtod(out, NULL) == d, "%s does not read back as %.17g", out, d);
        cr_expect_str_eq(out, want, "rendering of %.17g", d);
        free(out);
        json_decref(data);
    }
    tmpl_free(t);
}

Test(tmpl_values, booleans_render_as_words_and_null_as_nothing)
{
    expect_render("[{{t}}][{{f}}][{{n}}][{{missing}}]", "{\"t\": true, \"f\": false, \"n\": null}",
                  1, "[true][false][][]");
}

Test(tmpl_values, objects_and_arrays_render_as_compact_escaped_json)
{
    expect_render("{{o}} {{{o}}} {{a}}", "{\"o\": {\"k\": \"<v>\"}, \"a\": [1, \"x\"]}", 1,
                  "{&quot;k&quot;:&quot;&lt;v&gt;&quot;} {\"k\":\"<v>\"} [1,&quot;x&quot;]");
}

Test(tmpl_values, empty_string_is_falsy_and_zero_and_empty_object_are_truthy)
{
    expect_render("{{#s}}S{{/s}}{{^s}}!S{{/s}} {{#z}}Z{{/z}} {{#o}}O{{/o}}",
                  "{\"s\": \"\", \"z\": 0, \"o\": {}}", 1, "!S Z O");
}

Test(tmpl_values, dotted_names_index_into_arrays)
{
    expect_render("{{alerts.1.labels.host}}|{{alerts.7.x}}|{{alerts.x}}",
                  "{\"alerts\": [{}, {\"labels\": {\"host\": \"db1\"}}]}", 1, "db1||");
}

Test(tmpl_values, a_null_root_renders_names_as_empty)
{
    struct tmpl_error err;
    char *out = tmpl_render_string("a{{x}}b{{^x}}c{{/x}}", NULL, 1, &err);
    cr_expect_str_eq(out, "abc");
    free(out);
}

Test(tmpl_partials, nested_standalone_partials_add_their_indentation)
{
    struct partials p = {parse("{\"outer\": \"<\\n  {{>inner}}\\n>\\n\","
                               " \"inner\": \"i1\\ni2 {{v}}\\n\"}"),
                         json_object()};
    tmpl_t *t = tmpl_compile("top\n    {{>outer}}\nend\n", load, &p, NULL);
    cr_assert_not_null(t);
    json_t *d = parse("{\"v\": \"a\\nb\"}");
    char *out = tmpl_render(t, d, 0, NULL, NULL);
    cr_expect_str_eq(out, "top\n    <\n      i1\n      i2 a\nb\n    >\nend\n");
    free(out);
    json_decref(d);
    json_decref(p.texts);
    json_decref(p.calls);
    tmpl_free(t);
}

Test(tmpl_partials, an_inline_partial_inside_an_indented_one_is_not_reindented)
{
    struct partials p = {parse("{\"outer\": \"a {{>inner}}\\nz\\n\", \"inner\": \"b\\nc\"}"),
                         json_object()};
    tmpl_t *t = tmpl_compile("  {{>outer}}\n", load, &p, NULL);
    cr_assert_not_null(t);
    char *out = tmpl_render(t, NULL, 1, NULL, NULL);
    cr_expect_str_eq(out, "  a b\nc\n  z\n");
    free(out);
    json_decref(p.texts);
    json_decref(p.calls);
    tmpl_free(t);
}

Test(tmpl_partials, a_template_without_a_loader_renders_partials_empty)
{
    expect_render("[{{>missing}}]", "{}", 1, "[]");
}

Test(tmpl_partials, standalone_tags_with_crlf_line_endings_are_removed)
{
    expect_render("a\r\n{{#x}}\r\nb\r\n{{/x}}\r\nc", "{\"x\": true}", 1, "a\r\nb\r\nc");
}

static void collect_name(const char *partial, const char *name, int line, int col, void *ud)
{
    char *s = util_asprintf("%s:%s@%d:%d", partial ? partial : "-", name, line, col);
    json_array_append_new(ud, json_string(s));
    free(s);
}

static void collect_plain(const char *name, int line, int col, void *ud)
{
    char *s = util_asprintf("%s@%d:%d", name, line, col);
    json_array_append_new(ud, json_string(s));
    free(s);
}

static void collect_partial(const char *name, int found, void *ud)
{
    json_object_set_new(ud, name, json_boolean(found));
}

Test(tmpl_names, the_walker_reports_each_name_with_its_position_and_partial)
{
    struct partials p = {parse("{\"p\": \"{{x.y}}\\n{{>p}}\"}"), json_object()};
    tmpl_t *t = tmpl_compile("Hi {{labels.host}}\n{{#alerts}}{{.}}{{{name}}}{{/alerts}}"
                             "{{^ok}}{{! note}}{{/ok}}{{>p}}{{>gone}}",
                             load, &p, NULL);
    cr_assert_not_null(t);
    json_t *got = json_array();
    tmpl_each_name_in(t, collect_name, got);
    json_t *want = parse("[\"-:labels.host@1:4\", \"-:alerts@2:1\", \"-:name@2:17\","
                         " \"-:ok@2:38\", \"p:x.y@1:1\"]");
    cr_expect(json_equal(got, want), "names: %s", json_dumps(got, JSON_COMPACT));
    json_decref(got);
    json_decref(want);

    got = json_array();
    tmpl_each_name(t, collect_plain, got);
    want = parse("[\"labels.host@1:4\", \"alerts@2:1\", \"name@2:17\", \"ok@2:38\","
                 " \"x.y@1:1\"]");
    cr_expect(json_equal(got, want), "names: %s", json_dumps(got, JSON_COMPACT));
    json_decref(got);
    json_decref(want);

    json_t *parts = json_object();
    tmpl_each_partial(t, collect_partial, parts);
    want = parse("{\"p\": true, \"gone\": false}");
    cr_expect(json_equal(parts, want), "partials: %s", json_dumps(parts, JSON_COMPACT));
    json_decref(parts);
    json_decref(want);
    json_decref(p.texts);
    json_decref(p.calls);
    tmpl_free(t);
}

Test(tmpl_render, one_compiled_template_renders_many_data_sets)
{
    tmpl_t *t = tmpl_compile("{{n}}:{{#l}}{{.}},{{/l}}", NULL, NULL, NULL);
    cr_assert_not_null(t);
    for (int i = 0; i < 3; i++) {
        json_t *d = json_pack("{s:i, s:[i,i]}", "n", i, "l", i, i + 1);
        char *out = tmpl_render(t, d, 1, NULL, NULL);
        char *want = util_asprintf("%d:%d,%d,", i, i, i + 1);
        cr_expect_str_eq(out, want);
        free(want);
        free(out);
        json_decref(d);
    }
    tmpl_free(t);
}

Test(tmpl_render, free_and_render_accept_null)
{
    tmpl_free(NULL);
    struct tmpl_error err;
    cr_expect_null(tmpl_render(NULL, NULL, 1, NULL, &err));
    cr_expect_null(tmpl_compile(NULL, NULL, NULL, &err));
}

struct render_job {
    const tmpl_t *t;
    json_t *data;
    int ok;
};

static void *render_many(void *p)
{
    struct render_job *j = p;
    for (int i = 0; i < 500; i++) {
        char *out = tmpl_render(j->t, j->data, 1, NULL, NULL);
        j->ok += out && strcmp(out, "x=&lt;1&gt; [1.5][2][o:{&quot;k&quot;:1}]") == 0;
        free(out);
    }
    return NULL;
}

Test(tmpl_render, one_template_renders_from_several_threads_at_once)
{
    tmpl_t *t = tmpl_compile("x={{x}} {{#l}}[{{.}}]{{/l}}[o:{{o}}]", NULL, NULL, NULL);
    cr_assert_not_null(t);
    json_t *d = parse("{\"x\": \"<1>\", \"l\": [1.5, 2], \"o\": {\"k\": 1}}");
    pthread_t th[4];
    struct render_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct render_job){t, d, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, render_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(jobs[i].ok, 500, "thread %d", i);
    }
    json_decref(d);
    tmpl_free(t);
}
