/* Unit tests for the TrackplanFM filter and orderBy builders: every operator, escaping of
 * Gridify's special characters (so hostile values cannot change a filter's meaning),
 * grouping, and the spoiled state after misuse. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "trackplan/filter.h"
#include "trackplan/order.h"

/* Undoes tp_filter_escape the way a Gridify lexer reads a value: "\x" stands for x. Stops
 * at the first unescaped special, returning where it stopped in *end. */
static char *unescape_value(const char *s, const char **end)
{
    char *out = malloc(strlen(s) + 1);
    size_t o = 0;
    const char *p = s;
    while (*p) {
        if (*p == '\\' && p[1]) {
            out[o++] = p[1];
            p += 2;
            continue;
        }
        if (*p == ',' || *p == '|' || *p == '(' || *p == ')' || (*p == '/' && p[1] == 'i'))
            break;
        out[o++] = *p++;
    }
    out[o] = '\0';
    *end = p;
    return out;
}

Test(filter_escape, leaves_ordinary_text_alone)
{
    char *e = tp_filter_escape("Boiler room 3 - north/east");
    cr_assert_str_eq(e, "Boiler room 3 - north/east");
    free(e);
}

Test(filter_escape, puts_a_backslash_before_each_special_character)
{
    char *e = tp_filter_escape("a,b|c(d)e\\f/ig");
    cr_assert_str_eq(e, "a\\,b\\|c\\(d\\)e\\\\f\\/ig");
    free(e);
}

Test(filter_escape, treats_null_as_the_empty_value)
{
    char *e = tp_filter_escape(NULL);
    cr_assert_str_eq(e, "");
    free(e);
}

Test(filter_escape, round_trips_hostile_values_through_a_gridify_reader)
{
    static const char *const hostile[] = {
        ",|()\\/i", "x),(name=*", "\\", "\\\\,", "a/i", "/i/i/i", "name==x|id>0",
        "((((", "))))", "trailing\\", "é ü – ✓", "=*!^$", "",
    };
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        char *e = tp_filter_escape(hostile[i]);
        const char *end = NULL;
        char *back = unescape_value(e, &end);
        cr_assert_str_eq(back, hostile[i], "value %zu did not survive escaping", i);
        cr_assert_eq(*end, '\0', "escaped value %zu ended early at '%s'", i, end);
        free(back);
        free(e);
    }
}

Test(filter_op, tokens_match_the_guide_table)
{
    static const char *const want[TP_F_COUNT] = {"==", "!=", "<", ">", ">=", "<=",
                                                 "=*", "!*", "^", "!^", "$", "!$"};
    for (int i = 0; i < TP_F_COUNT; i++) {
        cr_assert_str_eq(tp_filter_op_token((enum tp_filter_op)i), want[i]);
        enum tp_filter_op op;
        cr_assert_eq(tp_filter_op_parse(want[i], &op), 0);
        cr_assert_eq(op, (enum tp_filter_op)i);
    }
    enum tp_filter_op op;
    cr_assert_eq(tp_filter_op_parse("=", &op), -1);
    cr_assert_eq(tp_filter_op_parse("===", &op), -1);
    cr_assert_null(tp_filter_op_token(TP_F_COUNT));
}

Test(filter_build, an_empty_filter_is_the_empty_string)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_str_eq(tp_filter_str(f), "");
    tp_filter_free(f);
}

Test(filter_build, joins_conditions_with_and_by_default)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_where(f, "siteId", TP_F_EQ, "3", 0), 0);
    cr_assert_eq(tp_filter_where(f, "jobDetails", TP_F_CONTAINS, "pump", 1), 0);
    cr_assert_str_eq(tp_filter_str(f), "siteId==3,jobDetails=*pump/i");
    tp_filter_free(f);
}

Test(filter_build, builds_or_and_groups)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_open(f), 0);
    cr_assert_eq(tp_filter_where(f, "name", TP_F_STARTS, "A", 0), 0);
    cr_assert_eq(tp_filter_or(f), 0);
    cr_assert_eq(tp_filter_where(f, "name", TP_F_ENDS, "z", 0), 0);
    cr_assert_eq(tp_filter_close(f), 0);
    cr_assert_eq(tp_filter_where(f, "code", TP_F_GE, "10", 0), 0);
    cr_assert_eq(tp_filter_or(f), 0);
    cr_assert_eq(tp_filter_open(f), 0);
    cr_assert_eq(tp_filter_where(f, "code", TP_F_LT, "0", 0), 0);
    cr_assert_eq(tp_filter_close(f), 0);
    cr_assert_str_eq(tp_filter_str(f), "(name^A|name$z),code>=10|(code<0)");
    tp_filter_free(f);
}

Test(filter_build, escapes_a_value_that_tries_to_add_a_condition)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_where(f, "name", TP_F_EQ, "x|id>0", 0), 0);
    cr_assert_str_eq(tp_filter_str(f), "name==x\\|id>0");
    tp_filter_free(f);
}

Test(filter_build, escapes_a_value_that_tries_to_turn_case_insensitive)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_where(f, "name", TP_F_EQ, "ABC/i", 0), 0);
    cr_assert_str_eq(tp_filter_str(f), "name==ABC\\/i");
    tp_filter_free(f);
}

Test(filter_build, rejects_field_names_that_are_not_names)
{
    static const char *const bad[] = {"", "1abc", "na me", "name==1,x", "a(b", "a|b", NULL};
    for (int i = 0; bad[i]; i++) {
        struct tp_filter *f = tp_filter_new();
        cr_assert_eq(tp_filter_where(f, bad[i], TP_F_EQ, "v", 0), -1, "accepted '%s'", bad[i]);
        cr_assert_null(tp_filter_str(f));
        tp_filter_free(f);
    }
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_where(f, NULL, TP_F_EQ, "v", 0), -1);
    tp_filter_free(f);
}

Test(filter_build, accepts_dotted_field_names)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_where(f, "site.name_2", TP_F_NE, "", 0), 0);
    cr_assert_str_eq(tp_filter_str(f), "site.name_2!=");
    tp_filter_free(f);
}

Test(filter_build, is_spoiled_by_a_leading_or)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_or(f), -1);
    cr_assert_eq(tp_filter_where(f, "a", TP_F_EQ, "1", 0), -1, "a spoiled filter stays spoiled");
    cr_assert_null(tp_filter_str(f));
    tp_filter_free(f);
}

Test(filter_build, has_no_string_while_a_group_is_open_or_an_or_dangles)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_open(f), 0);
    cr_assert_eq(tp_filter_where(f, "a", TP_F_EQ, "1", 0), 0);
    cr_assert_null(tp_filter_str(f));
    cr_assert_eq(tp_filter_close(f), 0);
    cr_assert_str_eq(tp_filter_str(f), "(a==1)");
    cr_assert_eq(tp_filter_or(f), 0);
    cr_assert_null(tp_filter_str(f));
    tp_filter_free(f);
}

Test(filter_build, refuses_empty_groups_and_unbalanced_closes)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_open(f), 0);
    cr_assert_eq(tp_filter_close(f), -1);
    tp_filter_free(f);
    f = tp_filter_new();
    cr_assert_eq(tp_filter_close(f), -1);
    tp_filter_free(f);
}

Test(filter_build, bounds_nesting_and_length)
{
    struct tp_filter *f = tp_filter_new();
    int rc = 0;
    for (int i = 0; i <= TP_FILTER_MAX_DEPTH && rc == 0; i++)
        rc = tp_filter_open(f);
    cr_assert_eq(rc, -1);
    tp_filter_free(f);

    char *big = malloc(TP_FILTER_MAX_LEN + 1);
    memset(big, 'x', TP_FILTER_MAX_LEN);
    big[TP_FILTER_MAX_LEN] = '\0';
    f = tp_filter_new();
    cr_assert_eq(tp_filter_where(f, "a", TP_F_EQ, big, 0), -1);
    cr_assert_null(tp_filter_str(f));
    tp_filter_free(f);
    free(big);
}

Test(filter_build, rejects_an_unknown_operator)
{
    struct tp_filter *f = tp_filter_new();
    cr_assert_eq(tp_filter_where(f, "a", TP_F_COUNT, "1", 0), -1);
    tp_filter_free(f);
}

Test(order_build, lists_fields_with_optional_desc)
{
    struct tp_order *o = tp_order_new();
    cr_assert_str_eq(tp_order_str(o), "");
    cr_assert_eq(tp_order_add(o, "region", 0), 0);
    cr_assert_eq(tp_order_add(o, "name", 1), 0);
    cr_assert_str_eq(tp_order_str(o), "region,name desc");
    tp_order_free(o);
}

Test(order_build, rejects_a_field_that_smuggles_syntax)
{
    static const char *const bad[] = {"name desc", "a,b", "", "x;y", "9lives", NULL};
    for (int i = 0; bad[i]; i++) {
        struct tp_order *o = tp_order_new();
        cr_assert_eq(tp_order_add(o, bad[i], 0), -1, "accepted '%s'", bad[i]);
        cr_assert_null(tp_order_str(o));
        tp_order_free(o);
    }
}

Test(order_build, frees_null_quietly)
{
    tp_order_free(NULL);
    tp_filter_free(NULL);
}
