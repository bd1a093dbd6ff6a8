/* Unit tests for TrackplanFM error bodies (guide §3.1: validation, 401 and 403 problems),
 * non-JSON error bodies, the human-readable format, the masked trace of credential
 * headers, and the result accessors for created GUIDs and numbers. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/buf.h"
#include "trackplan/error.h"
#include "trackplan/result.h"
#include "trackplan/trace.h"

#define UNAUTHORIZED_BODY \
    "{\"title\": \"Unauthorized\", \"detail\": \"Invalid authentication credentials\"}"

static void parse(struct tp_error *e, long status, const char *body)
{
    tp_error_init(e);
    tp_error_from_response(e, status, body, body ? strlen(body) : 0);
}

static char *format(const struct tp_error *e)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(tp_error_format(e, &b), 0);
    return buf_steal(&b);
}

Test(error_body, reads_the_validation_errors_map)
{
    struct tp_error e;
    parse(&e, 400,
          "{\"errors\": {\"jobDetails\": [\"The JobDetails field is required.\"],"
          " \"siteId\": [\"Must be positive.\", \"Unknown site.\"]},"
          " \"title\": \"One or more validation errors occurred.\", \"status\": 400}");
    cr_assert_eq(e.kind, TP_ERR_HTTP);
    cr_assert_eq(e.status, 400);
    cr_assert_str_eq(e.title, "One or more validation errors occurred.");
    cr_assert_null(e.detail);
    cr_assert_eq(json_object_size(e.errors), 2);
    json_t *site = json_object_get(e.errors, "siteId");
    cr_assert_eq(json_array_size(site), 2);
    cr_assert_str_eq(json_string_value(json_array_get(site, 1)), "Unknown site.");
    tp_error_clear(&e);
    cr_assert_null(e.errors);
}

Test(error_body, reads_the_401_problem)
{
    struct tp_error e;
    parse(&e, 401,
          "{\"type\": \"https://tools.ietf.org/html/rfc7235#section-3.1\", \"title\": "
          "\"Unauthorized\", \"status\": 401, \"detail\": \"Invalid authentication credentials\"}");
    cr_assert_str_eq(e.type, "https://tools.ietf.org/html/rfc7235#section-3.1");
    cr_assert_str_eq(e.title, "Unauthorized");
    cr_assert_str_eq(e.detail, "Invalid authentication credentials");
    cr_assert_null(e.errors);
    tp_error_clear(&e);
}

Test(error_body, reads_the_403_problem)
{
    struct tp_error e;
    parse(&e, 403,
          "{\"type\": \"https://tools.ietf.org/html/rfc7231#section-6.5.3\", \"title\": "
          "\"Forbidden\", \"status\": 403, \"detail\": \"Insufficient permissions to access the "
          "requested resource\"}");
    cr_assert_eq(e.status, 403);
    cr_assert_str_eq(e.detail, "Insufficient permissions to access the requested resource");
    tp_error_clear(&e);
}

Test(error_body, keeps_a_single_string_message_as_a_list)
{
    struct tp_error e;
    parse(&e, 400, "{\"errors\": {\"name\": \"Too long\", \"code\": 5}}");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(e.errors, "name"), 0)),
                     "Too long");
    cr_assert_eq(json_array_size(json_object_get(e.errors, "code")), 0);
    tp_error_clear(&e);
}

Test(error_body, keeps_the_start_of_a_text_body_as_detail)
{
    struct tp_error e;
    parse(&e, 502, "\n  <html>Bad gateway\r\nfrom proxy</html>");
    cr_assert_str_eq(e.detail, "<html>Bad gateway  from proxy</html>");
    tp_error_clear(&e);
}

Test(error_body, bounds_a_long_text_body)
{
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct tp_error e;
    parse(&e, 500, big);
    cr_assert_eq(strlen(e.detail), TP_ERROR_TEXT_MAX);
    tp_error_clear(&e);
}

Test(error_body, survives_empty_and_odd_bodies)
{
    static const char *const odd[] = {NULL, "", "null", "[1,2]", "{\"title\": 5}", "{", "42"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        struct tp_error e;
        parse(&e, 500, odd[i]);
        cr_assert_eq(e.kind, TP_ERR_HTTP);
        cr_assert_eq(e.status, 500);
        cr_assert_null(e.title);
        cr_assert_null(e.errors);
        tp_error_clear(&e);
    }
}

Test(error_body, strips_control_characters_from_peer_text)
{
    struct tp_error e;
    parse(&e, 400, "{\"title\": \"bad\\u001b[31m\\nthing\", \"errors\": {\"a\\nb\": [\"x\\ry\"]}}");
    cr_assert_str_eq(e.title, "bad [31m thing");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(e.errors, "a b"), 0)),
                     "x y");
    tp_error_clear(&e);
}

Test(error_format, lists_each_field_message)
{
    struct tp_error e;
    parse(&e, 400,
          "{\"errors\": {\"jobDetails\": [\"Required.\"]}, \"title\": \"One or more validation "
          "errors occurred.\", \"status\": 400}");
    char *s = format(&e);
    cr_assert_str_eq(s, "HTTP 400 Bad Request: One or more validation errors occurred.\n"
                        "  jobDetails: Required.\n");
    free(s);
    tp_error_clear(&e);
}

Test(error_format, shows_status_title_and_detail)
{
    struct tp_error e;
    parse(&e, 404, "{\"title\": \"Job not found\", \"detail\": \"No job abc\"}");
    char *s = format(&e);
    cr_assert_str_eq(s, "HTTP 404 Not Found: Job not found: No job abc\n");
    free(s);
    tp_error_clear(&e);
}

Test(error_format, does_not_repeat_a_title_equal_to_the_reason)
{
    struct tp_error e;
    parse(&e, 401, UNAUTHORIZED_BODY);
    char *s = format(&e);
    cr_assert_str_eq(s, "HTTP 401 Unauthorized: Invalid authentication credentials\n");
    free(s);
    tp_error_clear(&e);
}

Test(error_format, describes_a_transport_error)
{
    struct tp_error e;
    tp_error_init(&e);
    tp_error_set_transport(&e, 7, "Failed to connect");
    char *s = format(&e);
    cr_assert_str_eq(s, "transport error 7: Failed to connect\n");
    free(s);
    tp_error_clear(&e);
}

Test(error_format, marks_a_failed_login)
{
    struct tp_error e;
    parse(&e, 401, UNAUTHORIZED_BODY);
    e.kind = TP_ERR_AUTH;
    char *s = format(&e);
    cr_assert_str_eq(s,
                     "login failed: HTTP 401 Unauthorized: Invalid authentication credentials\n");
    free(s);
    tp_error_clear(&e);
}

Test(error_copy, copies_deeply)
{
    struct tp_error a, b;
    parse(&a, 400, "{\"title\": \"t\", \"errors\": {\"f\": [\"m\"]}}");
    tp_error_init(&b);
    cr_assert_eq(tp_error_copy(&b, &a), 0);
    tp_error_clear(&a);
    cr_assert_str_eq(b.title, "t");
    cr_assert_eq(b.status, 400);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(b.errors, "f"), 0)), "m");
    tp_error_clear(&b);
}

static char *mask(const char *line, const char *key_header)
{
    buf_t b;
    buf_init(&b, 0);
    cr_assert_eq(tp_trace_mask_line(line, strlen(line), key_header, &b), 0);
    return buf_steal(&b);
}

Test(trace_mask, hides_a_bearer_token_but_keeps_the_scheme)
{
    char *s = mask("Authorization: Bearer eyJhbGciOi.secret.sig", NULL);
    cr_assert_str_eq(s, "Authorization: Bearer ***");
    free(s);
}

Test(trace_mask, hides_the_api_key_under_any_configured_header_name)
{
    char *s = mask("X-API-Key: TP-1of43zzJgKLQ", NULL);
    cr_assert_str_eq(s, "X-API-Key: ***");
    free(s);
    s = mask("x-api-key: TP-1of43zzJgKLQ", NULL);
    cr_assert_str_eq(s, "x-api-key: ***");
    free(s);
    s = mask("ApiKey: TP-secret", "ApiKey");
    cr_assert_str_eq(s, "ApiKey: ***");
    free(s);
}

Test(trace_mask, leaves_other_headers_and_request_lines_alone)
{
    char *s = mask("Content-Type: application/json", NULL);
    cr_assert_str_eq(s, "Content-Type: application/json");
    free(s);
    s = mask("GET /api/sites?page=1 HTTP/1.1", NULL);
    cr_assert_str_eq(s, "GET /api/sites?page=1 HTTP/1.1");
    free(s);
}

Test(trace_mask, hides_a_schemeless_authorization_value_entirely)
{
    char *s = mask("Authorization: tokenvalue", NULL);
    cr_assert_str_eq(s, "Authorization: ***");
    free(s);
}

Test(trace_headers, prefixes_and_masks_every_line_of_a_block)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    const char block[] = "POST /api/jobs HTTP/1.1\r\nHost: x\r\nX-API-Key: K-123\r\n\r\n";
    tp_trace_headers(f, "> ", block, sizeof block - 1, NULL);
    fclose(f);
    cr_assert_str_eq(out, "> POST /api/jobs HTTP/1.1\n> Host: x\n> X-API-Key: ***\n");
    cr_assert_null(strstr(out, "K-123"));
    free(out);
}

Test(result_accessors, read_a_guid_and_a_number)
{
    struct tp_result *r = tp_result_new(NULL);
    r->body = json_string("3f2b8c4e-0000-4000-8000-000000000001");
    cr_assert_str_eq(tp_result_guid(r), "3f2b8c4e-0000-4000-8000-000000000001");
    int64_t n;
    cr_assert_eq(tp_result_number(r, &n), -1);
    json_decref(r->body);
    r->body = json_integer(1234);
    cr_assert_eq(tp_result_number(r, &n), 0);
    cr_assert_eq(n, 1234);
    cr_assert_null(tp_result_guid(r));
    json_decref(r->body);
    r->body = json_pack("{s:s, s:i}", "guid", "g-1", "jobRequestNumber", 77);
    cr_assert_str_eq(tp_result_guid(r), "g-1");
    cr_assert_eq(tp_result_number(r, &n), 0);
    cr_assert_eq(n, 77);
    r->outcome = TP_FAIL;
    cr_assert_null(tp_result_guid(r), "a failed result has no GUID");
    tp_result_free(r);
    tp_result_free(NULL);
}

Test(result_accessors, name_the_outcomes)
{
    cr_assert_str_eq(tp_outcome_name(TP_OK), "ok");
    cr_assert_str_eq(tp_outcome_name(TP_FAIL), "fail");
    cr_assert_str_eq(tp_outcome_name(TP_TRYLATER), "try-later");
    cr_assert_str_eq(tp_outcome_name(TP_UNKNOWN), "unknown");
}
