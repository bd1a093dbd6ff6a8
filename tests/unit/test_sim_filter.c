/* Unit tests for sim_filter: the Gridify filter and orderBy language of trackplan-sim. The
 * simulator is not part of tb_core, so its modules are compiled into this test directly. */
#include <criterion/criterion.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"

#include "../../src/sim/sim_filter.c"
#include "../../src/sim/sim_json.c"

static const char *const known[] = {"name", "age", "score", "nickname", "active", "created",
                                    "code", "address", "note", "tags", NULL};

/* Resolves names ignoring case, as the store's field map does. */
static const char *resolve(void *ctx, const char *name)
{
    (void)ctx;
    for (const char *const *k = known; *k; k++)
        if (strcasecmp(*k, name) == 0)
            return *k;
    return NULL;
}

static json_t *people;

static void setup(void)
{
    json_error_t e;
    people = json_loads(
        "["
        "{\"name\":\"John\",\"age\":30,\"score\":9.5,\"active\":true,"
        " \"created\":\"2025-04-08T12:00:00.000Z\",\"code\":\"A-1\","
        " \"address\":{\"City\":\"Leeds\"},\"note\":\"a,b|c(d)/i\\\\e\"},"
        "{\"name\":\"jane\",\"age\":9,\"score\":7,\"active\":false,"
        " \"created\":\"2024-12-31T23:59:59Z\",\"code\":\"B-22\",\"nickname\":\"\","
        " \"address\":{\"City\":\"York\"}},"
        "{\"name\":\"Johnny Smith\",\"age\":100,\"nickname\":\"JJ\",\"active\":true,"
        " \"created\":\"2025-01-01\",\"code\":\"A-3\",\"tags\":[\"x\"]},"
        "{\"name\":\"Smith, John\",\"age\":30,\"nickname\":null,\"code\":\"C-4\"}"
        "]",
        0, &e);
    cr_assert_not_null(people, "fixture: %s", e.text);
}

static void teardown(void) { json_decref(people); }

TestSuite(sim_filter, .init = setup, .fini = teardown);

/* Names of the records matching text, joined by ';', or "ERROR: message". */
static const char *run(const char *text)
{
    static char out[512];
    char err[256] = "";
    sim_filter_t *f = sim_filter_parse(text, resolve, NULL, err, sizeof(err));
    if (!f) {
        snprintf(out, sizeof(out), "ERROR: %s", err);
        return out;
    }
    out[0] = '\0';
    size_t i;
    json_t *rec;
    json_array_foreach(people, i, rec) {
        if (sim_filter_match(f, rec)) {
            if (out[0])
                strncat(out, ";", sizeof(out) - strlen(out) - 1);
            strncat(out, json_string_value(json_object_get(rec, "name")),
                    sizeof(out) - strlen(out) - 1);
        }
    }
    sim_filter_free(f);
    return out;
}

Test(sim_filter, equal_matches_the_exact_string)
{
    cr_assert_str_eq(run("name=John"), "John");
}

Test(sim_filter, double_equal_means_equal_too)
{
    cr_assert_str_eq(run("name==John"), "John");
}

Test(sim_filter, not_equal_excludes_the_value)
{
    cr_assert_str_eq(run("name!=John"), "jane;Johnny Smith;Smith, John");
}

Test(sim_filter, numbers_compare_numerically_not_as_text)
{
    cr_assert_str_eq(run("age>9"), "John;Johnny Smith;Smith, John");
    cr_assert_str_eq(run("age>=30"), "John;Johnny Smith;Smith, John");
    cr_assert_str_eq(run("age<30"), "jane");
    cr_assert_str_eq(run("age<=30"), "John;jane;Smith, John");
    cr_assert_str_eq(run("age=30"), "John;Smith, John");
    cr_assert_str_eq(run("score>7.25"), "John");
}

Test(sim_filter, a_value_that_is_not_a_number_matches_no_numeric_field)
{
    cr_assert_str_eq(run("age=abc"), "");
    cr_assert_str_eq(run("age!=abc"), "");
}

Test(sim_filter, contains_and_not_contains)
{
    cr_assert_str_eq(run("name=*ohn"), "John;Johnny Smith;Smith, John");
    cr_assert_str_eq(run("name!*ohn"), "jane");
}

Test(sim_filter, starts_with_and_not_starts_with)
{
    cr_assert_str_eq(run("name^John"), "John;Johnny Smith");
    cr_assert_str_eq(run("name!^John"), "jane;Smith, John");
}

Test(sim_filter, ends_with_and_not_ends_with)
{
    cr_assert_str_eq(run("name$Smith"), "Johnny Smith");
    cr_assert_str_eq(run("name!$Smith"), "John;jane;Smith, John");
}

Test(sim_filter, string_operators_apply_to_the_text_of_numbers)
{
    cr_assert_str_eq(run("age^10"), "Johnny Smith");
    cr_assert_str_eq(run("age$0"), "John;Johnny Smith;Smith, John");
}

Test(sim_filter, case_insensitive_suffix_applies_to_equal_and_contains)
{
    cr_assert_str_eq(run("name=JOHN/i"), "John");
    cr_assert_str_eq(run("name=JOHN"), "");
    cr_assert_str_eq(run("name=*SMITH/i"), "Johnny Smith;Smith, John");
    cr_assert_str_eq(run("name^JANE/i"), "jane");
}

Test(sim_filter, comma_is_and_and_pipe_is_or)
{
    cr_assert_str_eq(run("name^John,age>50"), "Johnny Smith");
    cr_assert_str_eq(run("name=jane|age>50"), "jane;Johnny Smith");
}

Test(sim_filter, and_and_or_group_left_to_right_as_in_gridify)
{
    /* ((name=jane | age=100), active=true) */
    cr_assert_str_eq(run("name=jane|age=100,active=true"), "Johnny Smith");
    cr_assert_str_eq(run("name=jane|(age=100,active=true)"), "jane;Johnny Smith");
}

Test(sim_filter, parentheses_group_and_nest)
{
    cr_assert_str_eq(run("(name=John|name=jane),(age<20|score>9)"), "John;jane");
    cr_assert_str_eq(run("((name=John))"), "John");
}

Test(sim_filter, backslash_escapes_the_special_characters)
{
    cr_assert_str_eq(run("name=Smith\\, John"), "Smith, John");
    cr_assert_str_eq(run("note=a\\,b\\|c\\(d\\)\\/i\\\\e"), "John");
}

Test(sim_filter, spaces_around_operators_and_connectors_are_optional)
{
    cr_assert_str_eq(run("name = John"), "John");
    cr_assert_str_eq(run("  name=John ,  age > 10"), "");   /* the value is "John " */
    cr_assert_str_eq(run("age > 10 , name = John"), "John");
    cr_assert_str_eq(run("( name=John | name=jane )"), "");  /* "jane " */
    cr_assert_str_eq(run("(name=John| name=jane)"), "John;jane");
}

Test(sim_filter, empty_value_means_null_or_empty)
{
    cr_assert_str_eq(run("nickname="), "John;jane;Smith, John");
    cr_assert_str_eq(run("nickname!="), "Johnny Smith");
}

Test(sim_filter, null_keyword_matches_only_null_or_missing)
{
    cr_assert_str_eq(run("nickname=null"), "John;Smith, John");
    cr_assert_str_eq(run("nickname!=null"), "jane;Johnny Smith");
}

Test(sim_filter, missing_fields_satisfy_only_negations)
{
    cr_assert_str_eq(run("score>0"), "John;jane");
    cr_assert_str_eq(run("nickname!*J"), "John;jane;Smith, John");
}

Test(sim_filter, iso_dates_compare_as_instants)
{
    cr_assert_str_eq(run("created>2025-01-01T00:00:00Z"), "John");
    cr_assert_str_eq(run("created>=2025-01-01"), "John;Johnny Smith");
    cr_assert_str_eq(run("created=2025-04-08T12:00:00Z"), "John");
}

Test(sim_filter, booleans_compare_as_booleans)
{
    cr_assert_str_eq(run("active=true"), "John;Johnny Smith");
    cr_assert_str_eq(run("active=FALSE"), "jane");
    cr_assert_str_eq(run("active="), "jane;Smith, John"); /* false or missing */
}

Test(sim_filter, field_names_ignore_case_and_may_be_nested)
{
    cr_assert_str_eq(run("NAME=John"), "John");
    cr_assert_str_eq(run("address.city=York"), "jane");
}

Test(sim_filter, objects_and_arrays_satisfy_only_negations)
{
    cr_assert_str_eq(run("tags=x"), "");
    cr_assert_str_eq(run("tags!=x"), "John;jane;Johnny Smith;Smith, John");
}

Test(sim_filter, blank_filter_matches_everything)
{
    cr_assert_str_eq(run(""), "John;jane;Johnny Smith;Smith, John");
    cr_assert_str_eq(run("   "), "John;jane;Johnny Smith;Smith, John");
}

Test(sim_filter, unknown_field_is_reported_by_name)
{
    cr_assert_str_eq(run("colour=red"), "ERROR: Mapping 'colour' not found");
    cr_assert_str_eq(run("name=x,Colour=red"), "ERROR: Mapping 'Colour' not found");
}

Test(sim_filter, syntax_errors_are_reported)
{
    cr_assert(strncmp(run("name"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(run("name John"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(run("=John"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(run("name=John)"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(run("(name=John"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(run("name=John,"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(run("()"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(run("name=^x"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(run("name[0]=x"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(run("name=x/iy"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(run("name..x=1"), "ERROR: ", 7) == 0);
}

Test(sim_filter, operators_inside_a_value_are_plain_text)
{
    cr_assert_str_eq(run("code=A-1"), "John");
    cr_assert_str_eq(run("name=Jo=hn"), "");
    cr_assert_str_eq(run("name=\\^x"), "");
}

Test(sim_filter, nesting_deeper_than_the_limit_is_refused)
{
    char text[256] = "";
    for (int i = 0; i < SIM_FILTER_MAX_DEPTH + 1; i++)
        strcat(text, "(");
    strcat(text, "name=John");
    for (int i = 0; i < SIM_FILTER_MAX_DEPTH + 1; i++)
        strcat(text, ")");
    cr_assert(strncmp(run(text), "ERROR: ", 7) == 0);
}

Test(sim_filter, filters_longer_than_the_limit_are_refused)
{
    size_t n = SIM_FILTER_MAX_LEN + 16;
    char *text = malloc(n + 1);
    cr_assert_not_null(text);
    memcpy(text, "name=", 5);
    memset(text + 5, 'x', n - 5);
    text[n] = '\0';
    cr_assert(strncmp(run(text), "ERROR: ", 7) == 0);
    free(text);
}

Test(sim_filter, too_many_terms_are_refused)
{
    buf_t b;
    buf_init(&b, 0);
    for (int i = 0; i <= SIM_FILTER_MAX_TERMS; i++)
        cr_assert_eq(buf_puts(&b, i ? ",age>1" : "age>1"), 0);
    cr_assert(strncmp(run(b.data), "ERROR: ", 7) == 0);
    buf_free(&b);
}

/* ---- orderBy ---------------------------------------------------------------------------- */

/* Names after sorting by text, joined by ';', or "ERROR: message". */
static const char *sorted(const char *text)
{
    static char out[512];
    char err[256] = "";
    sim_order_t *o = sim_order_parse(text, resolve, NULL, err, sizeof(err));
    if (!o) {
        snprintf(out, sizeof(out), "ERROR: %s", err);
        return out;
    }
    json_t *recs[8];
    size_t n = json_array_size(people);
    for (size_t i = 0; i < n; i++)
        recs[i] = json_array_get(people, i);
    cr_assert_eq(sim_order_sort(o, recs, n), 0);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (out[0])
            strncat(out, ";", sizeof(out) - strlen(out) - 1);
        strncat(out, json_string_value(json_object_get(recs[i], "name")),
                sizeof(out) - strlen(out) - 1);
    }
    sim_order_free(o);
    return out;
}

Test(sim_filter, order_by_a_number_sorts_numerically)
{
    cr_assert_str_eq(sorted("age"), "jane;John;Smith, John;Johnny Smith");
    cr_assert_str_eq(sorted("age desc"), "Johnny Smith;John;Smith, John;jane");
}

Test(sim_filter, order_direction_is_case_insensitive)
{
    cr_assert_str_eq(sorted("age DESC"), sorted("age desc"));
    cr_assert_str_eq(sorted("age ASC"), sorted("age"));
}

Test(sim_filter, order_is_stable_for_equal_keys)
{
    /* John and "Smith, John" share age 30 and keep their original order either way */
    cr_assert_str_eq(sorted("age"), "jane;John;Smith, John;Johnny Smith");
    cr_assert_str_eq(sorted("age desc"), "Johnny Smith;John;Smith, John;jane");
}

Test(sim_filter, order_by_several_fields)
{
    cr_assert_str_eq(sorted("age desc, name desc"), "Johnny Smith;Smith, John;John;jane");
    cr_assert_str_eq(sorted("age,name"), "jane;John;Smith, John;Johnny Smith");
}

Test(sim_filter, order_puts_missing_values_first)
{
    cr_assert_str_eq(sorted("score"), "Johnny Smith;Smith, John;jane;John");
}

Test(sim_filter, order_by_strings_ignores_case_first)
{
    cr_assert_str_eq(sorted("name"), "jane;John;Johnny Smith;Smith, John");
}

Test(sim_filter, order_by_an_unknown_field_is_refused)
{
    cr_assert_str_eq(sorted("colour"), "ERROR: Mapping 'colour' not found");
}

Test(sim_filter, order_with_a_bad_direction_or_shape_is_refused)
{
    cr_assert(strncmp(sorted("age sideways"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(sorted("age desc extra"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(sorted("age,"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(sorted(",age"), "ERROR: ", 7) == 0);
    cr_assert(strncmp(sorted("-age"), "ERROR: ", 7) == 0);
}

Test(sim_filter, blank_order_keeps_the_original_order)
{
    cr_assert_str_eq(sorted(""), "John;jane;Johnny Smith;Smith, John");
}
