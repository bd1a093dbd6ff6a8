/* Unit tests for problem: RFC 9457 members and their order, titles and type URIs per
 * status, extra members, and hostile strings (invalid UTF-8, very long details). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "problem.h"

Test(problem, builds_the_standard_members_in_order)
{
    char *s = problem_json(401, NULL, "credentials required", NULL);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"type\":\"https://trackbridge.dev/problems/unauthorized\","
                        "\"title\":\"Unauthorized\",\"status\":401,"
                        "\"detail\":\"credentials required\"}");
    free(s);
}

Test(problem, omits_the_detail_when_none_is_given)
{
    char *s = problem_json(404, NULL, NULL, NULL);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"type\":\"https://trackbridge.dev/problems/not-found\","
                        "\"title\":\"Not Found\",\"status\":404}");
    free(s);
}

Test(problem, knows_the_standard_titles)
{
    static const struct {
        int status;
        const char *title;
    } cases[] = {
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {503, "Service Unavailable"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *t = problem_title(cases[i].status);
        cr_assert_not_null(t, "no title for %d", cases[i].status);
        cr_expect_str_eq(t, cases[i].title);
        cr_expect_neq(strcmp(problem_type(cases[i].status), "about:blank"), 0);
    }
    cr_expect_null(problem_title(299));
    cr_expect_null(problem_title(0));
}

Test(problem, gives_each_known_status_a_stable_type_uri)
{
    cr_expect_str_eq(problem_type(429), "https://trackbridge.dev/problems/too-many-requests");
    cr_expect_str_eq(problem_type(413), "https://trackbridge.dev/problems/content-too-large");
    cr_expect_str_eq(problem_type(403), "https://trackbridge.dev/problems/forbidden");
    cr_expect_str_eq(problem_type(418), "about:blank");
}

Test(problem, uses_about_blank_and_a_fallback_title_for_unknown_statuses)
{
    char *s = problem_json(418, NULL, "short and stout", NULL);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"type\":\"about:blank\",\"title\":\"Error\",\"status\":418,"
                        "\"detail\":\"short and stout\"}");
    free(s);
    s = problem_json(418, "I'm a teapot", NULL, NULL);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"type\":\"about:blank\",\"title\":\"I'm a teapot\",\"status\":418}");
    free(s);
}

Test(problem, refuses_statuses_outside_the_http_range)
{
    cr_expect_null(problem_json(99, NULL, NULL, NULL));
    cr_expect_null(problem_json(600, NULL, NULL, NULL));
    cr_expect_null(problem_json(-401, NULL, NULL, NULL));
}

Test(problem, appends_extra_members_without_overriding_the_standard_ones)
{
    json_t *extra = json_pack("{s:i, s:s, s:i, s:s}", "retry_after", 30, "instance",
                              "/hooks/zabbix", "status", 200, "type", "x");
    cr_assert_not_null(extra);
    char *s = problem_json(429, NULL, "rate limited", extra);
    cr_assert_not_null(s);
    cr_expect_str_eq(s, "{\"type\":\"https://trackbridge.dev/problems/too-many-requests\","
                        "\"title\":\"Too Many Requests\",\"status\":429,"
                        "\"detail\":\"rate limited\",\"retry_after\":30,"
                        "\"instance\":\"/hooks/zabbix\"}");
    free(s);
    /* extra is borrowed: still ours, unchanged. */
    cr_expect_eq(json_object_size(extra), 4);
    json_decref(extra);
}

Test(problem, ignores_an_extra_that_is_not_an_object)
{
    json_t *extra = json_string("not an object");
    char *s = problem_json(400, NULL, "bad payload", extra);
    cr_assert_not_null(s);
    cr_expect_null(strstr(s, "not an object"));
    free(s);
    json_decref(extra);
}

Test(problem, replaces_invalid_utf8_instead_of_failing)
{
    char *s = problem_json(400, NULL, "bad byte \xff in caf\xc3\xa9", NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"detail\":\"bad byte ? in caf??\""), "%s", s);
    free(s);
    s = problem_json(400, NULL, "caf\xc3\xa9", NULL);
    cr_assert_not_null(s);
    cr_expect_not_null(strstr(s, "\"detail\":\"caf\xc3\xa9\""), "%s", s);
    free(s);
}

Test(problem, cuts_very_long_details)
{
    size_t n = 10000;
    char *detail = malloc(n + 1);
    cr_assert_not_null(detail);
    memset(detail, 'x', n);
    detail[n] = '\0';
    char *s = problem_json(400, NULL, detail, NULL);
    cr_assert_not_null(s);
    json_t *o = json_loads(s, 0, NULL);
    cr_assert_not_null(o);
    cr_expect_eq(strlen(json_string_value(json_object_get(o, "detail"))), PROBLEM_DETAIL_MAX);
    json_decref(o);
    free(s);
    free(detail);
}

Test(problem, escapes_quotes_and_control_characters)
{
    char *s = problem_json(400, NULL, "field \"a\"\nline", NULL);
    cr_assert_not_null(s);
    json_t *o = json_loads(s, 0, NULL);
    cr_assert_not_null(o, "not JSON: %s", s);
    cr_expect_str_eq(json_string_value(json_object_get(o, "detail")), "field \"a\"\nline");
    json_decref(o);
    free(s);
}
