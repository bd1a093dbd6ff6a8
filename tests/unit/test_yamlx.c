/* Unit tests for yamlx: YAML → jansson, source positions, scalar typing, limits, locating
 * offsets inside scalars, grafting and diagnostics. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "yamlx.h"

static yamlx_doc_t *parse(const char *text)
{
    char *err = NULL;
    yamlx_doc_t *d = yamlx_parse(text, strlen(text), "t.yaml", NULL, &err);
    cr_assert_not_null(d, "parse failed: %s", err ? err : "?");
    return d;
}

static char *parse_error(const char *text, const struct yamlx_limits *lim)
{
    char *err = NULL;
    yamlx_doc_t *d = yamlx_parse(text, strlen(text), "t.yaml", lim, &err);
    cr_assert_null(d, "expected a parse error");
    cr_assert_not_null(err);
    return err;
}

static void expect_mark(const struct yamlx_mark *m, int line, int col)
{
    cr_expect_str_eq(m->origin, "t.yaml");
    cr_expect_eq(m->line, line, "line %d, expected %d", m->line, line);
    cr_expect_eq(m->col, col, "col %d, expected %d", m->col, col);
}

Test(yamlx, keys_and_values_carry_their_line_and_column)
{
    yamlx_doc_t *d = parse("top:\n  inner: 42\n  name: \"x\"\nlist:\n  - a\n  - {k: v}\n");
    json_t *root = yamlx_root(d);
    json_t *top = json_object_get(root, "top");
    struct yamlx_mark m;
    cr_assert_eq(yamlx_where_key(d, root, "top", &m), 0);
    expect_mark(&m, 1, 1);
    cr_assert_eq(yamlx_where_key(d, top, "inner", &m), 0);
    expect_mark(&m, 2, 3);
    cr_assert_eq(yamlx_where(d, json_object_get(top, "inner"), &m), 0);
    expect_mark(&m, 2, 10);
    cr_assert_eq(yamlx_where(d, json_object_get(top, "name"), &m), 0);
    expect_mark(&m, 3, 9);
    json_t *list = json_object_get(root, "list");
    cr_assert_eq(yamlx_where_index(d, list, 1, &m), 0);
    expect_mark(&m, 6, 5);
    cr_assert_eq(yamlx_where_key(d, json_array_get(list, 1), "k", &m), 0);
    expect_mark(&m, 6, 6);
    yamlx_free(d);
}

Test(yamlx, booleans_and_nulls_are_found_through_their_parent)
{
    yamlx_doc_t *d = parse("a: true\nb: ~\n");
    json_t *root = yamlx_root(d);
    struct yamlx_mark m;
    cr_assert_eq(yamlx_where_member(d, root, "a", &m), 0);
    expect_mark(&m, 1, 4);
    cr_assert_eq(yamlx_where_member(d, root, "b", &m), 0);
    expect_mark(&m, 2, 4);
    /* The singleton itself has no position of its own. */
    cr_expect_eq(yamlx_where(d, json_object_get(root, "a"), &m), -1);
    yamlx_free(d);
}

Test(yamlx, plain_scalars_follow_the_core_schema_and_quoted_ones_stay_strings)
{
    yamlx_doc_t *d = parse("n: ~\nn2: null\nt: true\nf: False\ni: -42\nh: 0x1f\no: 0o17\n"
                           "r: 2.5\ne: 1e3\ns: yes\nq: \"42\"\nsq: 'true'\nblank:\nv: 1.2.3\n"
                           "tagged: !!str 12\n");
    json_t *r = yamlx_root(d);
    cr_expect(json_is_null(json_object_get(r, "n")));
    cr_expect(json_is_null(json_object_get(r, "n2")));
    cr_expect(json_is_true(json_object_get(r, "t")));
    cr_expect(json_is_false(json_object_get(r, "f")));
    cr_expect_eq(json_integer_value(json_object_get(r, "i")), -42);
    cr_expect_eq(json_integer_value(json_object_get(r, "h")), 31);
    cr_expect_eq(json_integer_value(json_object_get(r, "o")), 15);
    cr_expect(json_is_real(json_object_get(r, "r")));
    cr_expect_float_eq(json_real_value(json_object_get(r, "e")), 1000.0, 1e-9);
    cr_expect_str_eq(json_string_value(json_object_get(r, "s")), "yes");
    cr_expect_str_eq(json_string_value(json_object_get(r, "q")), "42");
    cr_expect_str_eq(json_string_value(json_object_get(r, "sq")), "true");
    cr_expect(json_is_null(json_object_get(r, "blank")));
    cr_expect_str_eq(json_string_value(json_object_get(r, "v")), "1.2.3");
    cr_expect_str_eq(json_string_value(json_object_get(r, "tagged")), "12");
    yamlx_free(d);
}

Test(yamlx, a_duplicate_key_is_an_error_at_the_second_key)
{
    char *err = parse_error("a: 1\nb: 2\na: 3\n", NULL);
    cr_expect_str_eq(err, "t.yaml:3:1: duplicate key 'a'");
    free(err);
}

Test(yamlx, syntax_errors_say_file_line_and_column)
{
    char *err = parse_error("a: [1, 2\nb: 3\n", NULL);
    cr_expect(strncmp(err, "t.yaml:", 7) == 0, "got %s", err);
    cr_expect(strstr(err, "flow sequence") != NULL || strstr(err, "expected") != NULL, "got %s",
              err);
    free(err);
}

Test(yamlx, more_than_one_document_is_refused)
{
    char *err = parse_error("a: 1\n---\nb: 2\n", NULL);
    cr_expect(strstr(err, "only one document") != NULL, "got %s", err);
    free(err);
}

Test(yamlx, aliases_share_the_anchored_node)
{
    yamlx_doc_t *d = parse("base: &b {x: 1}\nuse: *b\n");
    json_t *r = yamlx_root(d);
    cr_expect_eq(json_object_get(r, "base"), json_object_get(r, "use"));
    yamlx_free(d);
}

Test(yamlx, alias_expansion_is_bounded)
{
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n";
    struct yamlx_limits lim = {0, 10000, 0};
    char *err = parse_error(bomb, &lim);
    cr_expect(strstr(err, "node limit") != NULL, "got %s", err);
    free(err);
}

Test(yamlx, nesting_deeper_than_the_limit_is_refused)
{
    struct yamlx_limits lim = {3, 0, 0};
    char *err = parse_error("a: {b: {c: {d: 1}}}\n", &lim);
    cr_expect(strstr(err, "nesting deeper than 3") != NULL, "got %s", err);
    free(err);
}

Test(yamlx, an_unknown_alias_is_an_error)
{
    char *err = parse_error("a: *nope\n", NULL);
    cr_expect(strstr(err, "nope") != NULL, "got %s", err);
    free(err);
}

Test(yamlx, offsets_inside_double_quoted_scalars_account_for_escapes)
{
    /* value: a\tb(  — the '(' is at value offset 3, source column 12 */
    yamlx_doc_t *d = parse("pattern: \"a\\tb(\"\n");
    json_t *s = json_object_get(yamlx_root(d), "pattern");
    cr_assert_str_eq(json_string_value(s), "a\tb(");
    struct yamlx_mark m;
    cr_assert_eq(yamlx_locate(d, s, 3, &m), 0);
    expect_mark(&m, 1, 15);
    yamlx_free(d);
}

Test(yamlx, offsets_inside_single_quoted_scalars_account_for_doubled_quotes)
{
    yamlx_doc_t *d = parse("p: 'it''s ('\n");
    json_t *s = json_object_get(yamlx_root(d), "p");
    cr_assert_str_eq(json_string_value(s), "it's (");
    struct yamlx_mark m;
    cr_assert_eq(yamlx_locate(d, s, 5, &m), 0);
    expect_mark(&m, 1, 11);
    yamlx_free(d);
}

Test(yamlx, offsets_inside_plain_scalars_map_one_to_one)
{
    yamlx_doc_t *d = parse("rx:   ^abc(\n");
    json_t *s = json_object_get(yamlx_root(d), "rx");
    struct yamlx_mark m;
    cr_assert_eq(yamlx_locate(d, s, 4, &m), 0);
    expect_mark(&m, 1, 11);
    yamlx_free(d);
}

Test(yamlx, lines_of_a_literal_block_map_to_their_source_lines)
{
    yamlx_doc_t *d = parse("t: |\n  line one\n  {{#open}}\n  end\n");
    json_t *s = json_object_get(yamlx_root(d), "t");
    cr_assert_str_eq(json_string_value(s), "line one\n{{#open}}\nend\n");
    struct yamlx_mark m;
    cr_assert_eq(yamlx_locate_linecol(d, s, 2, 3, &m), 0);
    expect_mark(&m, 3, 5);
    yamlx_free(d);
}

Test(yamlx, a_graft_takes_the_command_line_origin_without_a_line)
{
    yamlx_doc_t *d = parse("a: {b: 1}\n");
    char *err = NULL;
    struct yamlx_limits lim = {0, 0, 1};
    yamlx_doc_t *v = yamlx_parse("[1, 2]", 6, "--set a.c", &lim, &err);
    cr_assert_not_null(v);
    json_t *a = json_object_get(yamlx_root(d), "a");
    cr_assert_eq(yamlx_graft(d, a, "c", v), 0);
    json_t *c = json_object_get(a, "c");
    cr_assert(json_is_array(c));
    struct yamlx_mark m;
    cr_assert_eq(yamlx_where(d, c, &m), 0);
    cr_expect_str_eq(m.origin, "--set a.c");
    cr_expect_eq(m.line, 0);
    cr_assert_eq(yamlx_where_key(d, a, "c", &m), 0);
    cr_expect_str_eq(m.origin, "--set a.c");
    yamlx_free(d);
}

Test(yamlx, diagnostics_print_place_then_message)
{
    yamlx_diags_t dg;
    yamlx_diags_init(&dg);
    struct yamlx_mark m = {"f.yaml", 3, 7};
    struct yamlx_mark cli = {"--set x", 0, 0};
    yamlx_diag(&dg, 0, &m, "bad %s", "thing");
    yamlx_diag(&dg, 1, &m, "odd");
    yamlx_diag(&dg, 0, &cli, "nope");
    cr_assert_eq(dg.n, 3);
    cr_expect_str_eq(dg.msg[0], "f.yaml:3:7: bad thing");
    cr_expect_str_eq(dg.msg[1], "f.yaml:3:7: warning: odd");
    cr_expect_str_eq(dg.msg[2], "--set x: nope");
    cr_expect_eq(dg.errors, 2);
    cr_expect_eq(dg.warnings, 1);
    yamlx_diags_free(&dg);
}

Test(yamlx, diagnostics_are_bounded)
{
    yamlx_diags_t dg;
    yamlx_diags_init(&dg);
    for (int i = 0; i < 1500; i++)
        yamlx_diag(&dg, 0, NULL, "problem %d", i);
    cr_expect_eq(dg.n, 1001);
    cr_expect_eq(dg.errors, 1500);
    cr_expect(strstr(dg.msg[1000], "too many") != NULL);
    yamlx_diags_free(&dg);
}

Test(yamlx, an_empty_document_is_null)
{
    yamlx_doc_t *d = parse("# only a comment\n");
    cr_expect(json_is_null(yamlx_root(d)));
    yamlx_free(d);
}
