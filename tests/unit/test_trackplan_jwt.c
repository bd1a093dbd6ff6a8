/* Unit tests for JWT time claims and the refresh rule: well-formed tokens, malformed ones
 * (wrong part count, bad base64, non-object payloads, bad claim types), and when a token
 * is due for renewal. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "trackplan/jwt.h"

/* header.payload.sig with the payload JSON base64url-encoded. */
static char *make_token(const char *payload)
{
    char *h = crypto_b64_encode("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27, 1);
    char *p = crypto_b64_encode(payload, strlen(payload), 1);
    size_t n = strlen(h) + strlen(p) + 16;
    char *t = malloc(n);
    snprintf(t, n, "%s.%s.c2lnbmF0dXJl", h, p);
    free(h);
    free(p);
    return t;
}

Test(jwt_times, reads_exp_and_iat)
{
    char *t = make_token("{\"sub\":\"alice\",\"iat\":1700000000,\"exp\":1700003600}");
    int64_t exp = -1, iat = -1;
    cr_assert_eq(tp_jwt_times(t, &exp, &iat), 0);
    cr_assert_eq(exp, 1700003600);
    cr_assert_eq(iat, 1700000000);
    free(t);
}

Test(jwt_times, gives_zero_for_absent_claims)
{
    char *t = make_token("{\"sub\":\"alice\"}");
    int64_t exp = -1, iat = -1;
    cr_assert_eq(tp_jwt_times(t, &exp, &iat), 0);
    cr_assert_eq(exp, 0);
    cr_assert_eq(iat, 0);
    free(t);
}

Test(jwt_times, accepts_a_fractional_exp)
{
    char *t = make_token("{\"exp\":1700003600.75}");
    int64_t exp = 0, iat = 0;
    cr_assert_eq(tp_jwt_times(t, &exp, &iat), 0);
    cr_assert_eq(exp, 1700003600);
    free(t);
}

Test(jwt_times, rejects_tokens_without_three_parts)
{
    int64_t exp, iat;
    static const char *const bad[] = {"", "abc", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.",
                                      NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_eq(tp_jwt_times(bad[i], &exp, &iat), -1, "accepted '%s'", bad[i]);
    cr_assert_eq(tp_jwt_times(NULL, &exp, &iat), -1);
}

Test(jwt_times, rejects_a_payload_that_is_not_base64url)
{
    int64_t exp, iat;
    cr_assert_eq(tp_jwt_times("eyJhbGciOiJIUzI1NiJ9.!!!notbase64!!!.sig", &exp, &iat), -1);
    cr_assert_eq(tp_jwt_times("eyJhbGciOiJIUzI1NiJ9.A.sig", &exp, &iat), -1);
}

Test(jwt_times, rejects_payloads_that_are_not_json_objects)
{
    static const char *const bad[] = {"[1,2]", "\"exp\"", "42", "{\"exp\":", "not json", NULL};
    for (int i = 0; bad[i]; i++) {
        char *t = make_token(bad[i]);
        int64_t exp, iat;
        cr_assert_eq(tp_jwt_times(t, &exp, &iat), -1, "accepted payload %s", bad[i]);
        free(t);
    }
}

Test(jwt_times, rejects_claims_of_the_wrong_type_or_range)
{
    static const char *const bad[] = {"{\"exp\":\"1700000000\"}", "{\"exp\":-5}",
                                      "{\"exp\":true}", "{\"iat\":{}}", "{\"exp\":1e300}",
                                      NULL};
    for (int i = 0; bad[i]; i++) {
        char *t = make_token(bad[i]);
        int64_t exp, iat;
        cr_assert_eq(tp_jwt_times(t, &exp, &iat), -1, "accepted payload %s", bad[i]);
        free(t);
    }
}

Test(jwt_times, rejects_an_oversized_token)
{
    size_t n = TP_JWT_MAX + 10;
    char *t = malloc(n + 1);
    memset(t, 'a', n);
    t[10] = '.';
    t[20] = '.';
    t[n] = '\0';
    int64_t exp, iat;
    cr_assert_eq(tp_jwt_times(t, &exp, &iat), -1);
    free(t);
}

Test(jwt_refresh, is_not_due_early_in_a_long_lifetime)
{
    /* one hour token, iat 1000 s: margin is 60 s (less than 10 % = 360 s) */
    cr_assert_eq(tp_jwt_refresh_due(1000 * 1000 + 1800 * 1000, 0, 1000, 4600), 0);
    cr_assert_eq(tp_jwt_refresh_due(4539 * 1000, 0, 1000, 4600), 0);
}

Test(jwt_refresh, is_due_within_sixty_seconds_of_a_long_lifetime)
{
    cr_assert_eq(tp_jwt_refresh_due(4541 * 1000, 0, 1000, 4600), 1);
    cr_assert_eq(tp_jwt_refresh_due(4600 * 1000, 0, 1000, 4600), 1);
    cr_assert_eq(tp_jwt_refresh_due(5000 * 1000, 0, 1000, 4600), 1);
}

Test(jwt_refresh, uses_ten_percent_for_a_short_lifetime)
{
    /* 100 s token: margin 10 s */
    cr_assert_eq(tp_jwt_refresh_due(189 * 1000, 0, 100, 200), 0);
    cr_assert_eq(tp_jwt_refresh_due(191 * 1000, 0, 100, 200), 1);
}

Test(jwt_refresh, measures_the_lifetime_from_receipt_without_iat)
{
    /* obtained at 100 s, exp 200 s: margin 10 s */
    cr_assert_eq(tp_jwt_refresh_due(150 * 1000, 100 * 1000, 0, 200), 0);
    cr_assert_eq(tp_jwt_refresh_due(195 * 1000, 100 * 1000, 0, 200), 1);
}

Test(jwt_refresh, never_renews_early_a_token_without_exp)
{
    cr_assert_eq(tp_jwt_refresh_due(999999999999, 0, 0, 0), 0);
}
