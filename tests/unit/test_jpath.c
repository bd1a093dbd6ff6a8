/* Unit tests for jpath: compiling, selecting, case-insensitive fallback, scalar rendering and
 * syntax errors with their column. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "jpath.h"

static json_t *doc(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert_not_null(v, "bad test JSON: %s", e.text);
    return v;
}

/* Value at path rendered as a string ("<absent>" when nothing is selected); caller frees. */
static char *at(const char *path, json_t *root)
{
    char err[128];
    size_t col;
    jpath_t *p = jpath_compile(path, err, sizeof err, &col);
    cr_assert_not_null(p, "compile %s: %s at %zu", path, err, col);
    json_t *v = jpath_first(p, root);
    char *s = v ? jpath_scalar_string(v) : strdup("<absent>");
    if (!s)
        s = strdup("<null>");
    jpath_free(p);
    return s;
}

#define assert_at(root, path, expect)                                                        \
    do {                                                                                     \
        char *got_ = at(path, root);                                                         \
        cr_assert_str_eq(got_, expect, "path %s", path);                                     \
        free(got_);                                                                          \
    } while (0)

static int collect(json_t *v, void *ud)
{
    json_t *arr = ud;
    json_array_append(arr, v);
    return 0;
}

static char *each_dump(const char *path, json_t *root, size_t *count)
{
    jpath_t *p = jpath_compile(path, NULL, 0, NULL);
    cr_assert_not_null(p, "compile %s", path);
    json_t *arr = json_array();
    *count = jpath_each(p, root, collect, arr);
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    jpath_free(p);
    return s;
}

Test(jpath, dotted_keys_select_nested_members)
{
    json_t *r = doc("{\"a\":{\"b\":\"x\"},\"labels\":{\"severity\":\"critical\"}}");
    assert_at(r, "a.b", "x");
    assert_at(r, "labels.severity", "critical");
    assert_at(r, "a.c", "<absent>");
    assert_at(r, "a.b.c", "<absent>");
    json_decref(r);
}

Test(jpath, indexes_select_array_elements_and_negative_counts_from_the_end)
{
    json_t *r = doc("{\"alerts\":[{\"labels\":{\"site\":\"HQ\"}},{\"labels\":{\"site\":\"DC2\"}}]}");
    assert_at(r, "alerts[0].labels.site", "HQ");
    assert_at(r, "alerts[1].labels.site", "DC2");
    assert_at(r, "alerts[-1].labels.site", "DC2");
    assert_at(r, "alerts[2].labels.site", "<absent>");
    assert_at(r, "alerts[-3]", "<absent>");
    assert_at(r, "alerts.labels", "<absent>");
    json_decref(r);
}

Test(jpath, a_path_may_start_with_a_bracket)
{
    json_t *r = doc("[{\"id\":7},{\"id\":8}]");
    assert_at(r, "[1].id", "8");
    json_decref(r);
}

Test(jpath, wildcards_visit_every_element_in_document_order)
{
    json_t *r = doc("{\"a\":[{\"b\":[{\"c\":1},{\"c\":2}]},{\"b\":[{\"c\":3}]},{\"x\":0}],"
                    "\"raw\":{\"x\":[\"p\",\"q\"]}}");
    size_t n;
    char *s = each_dump("a[*].b[*].c", r, &n);
    cr_assert_str_eq(s, "[1,2,3]");
    cr_assert_eq(n, 3);
    free(s);
    s = each_dump("raw.x[*]", r, &n);
    cr_assert_str_eq(s, "[\"p\",\"q\"]");
    free(s);
    json_decref(r);
}

Test(jpath, a_star_over_an_object_visits_its_member_values)
{
    json_t *r = doc("{\"labels\":{\"a\":\"1\",\"b\":\"2\"}}");
    size_t n;
    char *s = each_dump("labels.*", r, &n);
    cr_assert_str_eq(s, "[\"1\",\"2\"]");
    free(s);
    s = each_dump("labels[*]", r, &n);
    cr_assert_str_eq(s, "[\"1\",\"2\"]");
    free(s);
    json_decref(r);
}

static int stop_at_second(json_t *v, void *ud)
{
    int *seen = ud;
    (*seen)++;
    return *seen == 2;
}

Test(jpath, each_stops_when_the_callback_asks_and_counts_the_visits)
{
    json_t *r = doc("{\"a\":[1,2,3,4]}");
    jpath_t *p = jpath_compile("a[*]", NULL, 0, NULL);
    int seen = 0;
    cr_assert_eq(jpath_each(p, r, stop_at_second, &seen), 2);
    cr_assert_eq(seen, 2);
    cr_assert_eq(json_integer_value(jpath_first(p, r)), 1);
    jpath_free(p);
    json_decref(r);
}

Test(jpath, has_wildcard_tells_single_from_multi_paths)
{
    jpath_t *a = jpath_compile("a.b[0]", NULL, 0, NULL);
    jpath_t *b = jpath_compile("a[*].b", NULL, 0, NULL);
    cr_assert_not(jpath_has_wildcard(a));
    cr_assert(jpath_has_wildcard(b));
    cr_assert_str_eq(jpath_text(b), "a[*].b");
    jpath_free(a);
    jpath_free(b);
}

Test(jpath, quoted_keys_may_contain_dots_brackets_and_quotes)
{
    json_t *r = doc("{\"a.b\":{\"c\":\"dot\"},\"x[0]\":\"br\",\"it's\":\"q\",\"say \\\"hi\\\"\":\"dq\"}");
    assert_at(r, "[\"a.b\"].c", "dot");
    assert_at(r, "['a.b'].c", "dot");
    assert_at(r, "[\"x[0]\"]", "br");
    assert_at(r, "[\"it's\"]", "q");
    assert_at(r, "['it\\'s']", "q");
    assert_at(r, "[\"say \\\"hi\\\"\"]", "dq");
    json_decref(r);
}

Test(jpath, header_names_with_dashes_are_bare_keys)
{
    json_t *r = doc("{\"headers\":{\"x-api-key\":\"k1\",\"content-type\":\"application/json\"}}");
    assert_at(r, "headers.x-api-key", "k1");
    json_decref(r);
}

Test(jpath, an_exact_key_wins_over_a_case_insensitive_match)
{
    json_t *r = doc("{\"Severity\":\"upper\",\"severity\":\"lower\",\"Site\":{\"Name\":\"HQ\"}}");
    assert_at(r, "severity", "lower");
    assert_at(r, "Severity", "upper");
    assert_at(r, "SEVERITY", "upper");
    assert_at(r, "site.name", "HQ");
    assert_at(r, "sitename", "<absent>");
    json_decref(r);
}

Test(jpath, scalars_render_as_matching_strings)
{
    json_t *r = doc("{\"s\":\"text\",\"i\":42,\"n\":-7,\"r\":0.5,\"r1\":1.0,\"r3\":0.1,"
                    "\"big\":1e300,\"t\":true,\"f\":false,\"z\":null,"
                    "\"o\":{\"a\":1,\"b\":[true]},\"e\":[]}");
    assert_at(r, "s", "text");
    assert_at(r, "i", "42");
    assert_at(r, "n", "-7");
    assert_at(r, "r", "0.5");
    assert_at(r, "r1", "1");
    assert_at(r, "r3", "0.1");
    assert_at(r, "big", "1e+300");
    assert_at(r, "t", "true");
    assert_at(r, "f", "false");
    assert_at(r, "z", "<null>");
    assert_at(r, "o", "{\"a\":1,\"b\":[true]}");
    assert_at(r, "e", "[]");
    cr_assert_null(jpath_scalar_string(NULL));
    json_decref(r);
}

Test(jpath, a_null_member_is_selected_but_renders_as_absent)
{
    json_t *r = doc("{\"z\":null}");
    jpath_t *p = jpath_compile("z", NULL, 0, NULL);
    json_t *v = jpath_first(p, r);
    cr_assert(json_is_null(v));
    cr_assert_null(jpath_scalar_string(v));
    jpath_free(p);
    json_decref(r);
}

static void assert_error(const char *path, size_t col, const char *msg_part)
{
    char err[128] = "";
    size_t c = 999;
    jpath_t *p = jpath_compile(path, err, sizeof err, &c);
    cr_assert_null(p, "%s should not compile", path);
    cr_assert_eq(c, col, "%s: column %zu, expected %zu (%s)", path, c, col, err);
    cr_assert(strstr(err, msg_part) != NULL, "%s: message '%s' lacks '%s'", path, err,
              msg_part);
}

Test(jpath, syntax_errors_name_the_problem_and_its_column)
{
    assert_error("", 0, "empty path");
    assert_error("a..b", 2, "key expected");
    assert_error("a.", 2, "key expected");
    assert_error(".a", 0, "key expected");
    assert_error("a[", 2, "unterminated");
    assert_error("a[x]", 2, "expected after '['");
    assert_error("a[1", 3, "']' expected");
    assert_error("a[*", 3, "']' expected");
    assert_error("a[-]", 3, "digit expected");
    assert_error("a[\"b]", 1, "unterminated quoted key");
    assert_error("a[\"b\"c]", 5, "']' expected");
    assert_error("a b", 1, "'.' or '['");
    assert_error("a.b c", 3, "'.' or '['");
    assert_error("a]", 1, "'.' or '['");
    assert_error("a[99999999999]", 2, "out of range");
    assert_error("a[\"\\n\"]", 3, "bad escape");
}

Test(jpath, overlong_and_overdeep_paths_are_refused)
{
    char longp[JPATH_MAX_LEN + 10];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    char err[64];
    size_t col;
    cr_assert_null(jpath_compile(longp, err, sizeof err, &col));
    cr_assert_str_eq(err, "path too long");

    char deep[2 * (JPATH_MAX_SEGMENTS + 1) + 1];
    size_t n = 0;
    for (int i = 0; i < JPATH_MAX_SEGMENTS + 1; i++) {
        deep[n++] = i ? '.' : 'a';
        if (i)
            deep[n++] = 'a';
    }
    deep[n] = '\0';
    cr_assert_null(jpath_compile(deep, err, sizeof err, &col));
    cr_assert_str_eq(err, "too many path segments");
}

Test(jpath, evaluation_on_absent_or_mismatched_types_selects_nothing)
{
    json_t *r = doc("{\"a\":\"str\",\"b\":[1]}");
    assert_at(r, "a[0]", "<absent>");
    assert_at(r, "b.c", "<absent>");
    assert_at(r, "a[*]", "<absent>");
    jpath_t *p = jpath_compile("a", NULL, 0, NULL);
    cr_assert_null(jpath_first(p, NULL));
    jpath_free(p);
    json_decref(r);
}
