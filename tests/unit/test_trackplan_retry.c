/* Unit tests for the retry policy: which attempts are retried, when a create could be
 * doubled (outcome unknown), backoff with full jitter under an injected random source, and
 * Retry-After in seconds and as an HTTP date. */
#include <criterion/criterion.h>
#include <curl/curl.h>

#include "trackplan/retry.h"

static uint64_t rand_max(uint64_t bound, void *ctx)
{
    (void)ctx;
    return bound - 1;
}

static uint64_t rand_zero(uint64_t bound, void *ctx)
{
    (void)bound;
    (void)ctx;
    return 0;
}

/* Records the bound it was asked for and returns a fixed value. */
struct fixed_rand {
    uint64_t bound;
    uint64_t value;
};

static uint64_t rand_fixed(uint64_t bound, void *ctx)
{
    struct fixed_rand *f = ctx;
    f->bound = bound;
    return f->value < bound ? f->value : bound - 1;
}

static enum tp_retry_verdict classify(int code, long status, int sent, int idem, int unsafe)
{
    struct tp_attempt a = {code, status, sent};
    return tp_retry_classify(&a, idem, unsafe);
}

Test(retry_classify, accepts_any_2xx)
{
    cr_assert_eq(classify(CURLE_OK, 200, 1, 0, 0), TP_RV_OK);
    cr_assert_eq(classify(CURLE_OK, 201, 1, 0, 0), TP_RV_OK);
    cr_assert_eq(classify(CURLE_OK, 204, 1, 1, 0), TP_RV_OK);
    cr_assert_eq(classify(CURLE_OK, 299, 1, 1, 0), TP_RV_OK);
}

Test(retry_classify, never_retries_other_4xx)
{
    static const long st[] = {400, 401, 403, 404, 405, 409, 413, 422};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        cr_assert_eq(classify(CURLE_OK, st[i], 1, 1, 0), TP_RV_FAIL, "%ld retried", st[i]);
        cr_assert_eq(classify(CURLE_OK, st[i], 1, 0, 1), TP_RV_FAIL, "%ld retried", st[i]);
    }
}

Test(retry_classify, fails_redirects_and_informational_answers)
{
    cr_assert_eq(classify(CURLE_OK, 302, 1, 1, 0), TP_RV_FAIL);
    cr_assert_eq(classify(CURLE_OK, 101, 1, 1, 0), TP_RV_FAIL);
}

Test(retry_classify, retries_5xx_408_and_429_for_idempotent_requests)
{
    static const long st[] = {408, 429, 500, 502, 503, 504, 599};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        cr_assert_eq(classify(CURLE_OK, st[i], 1, 1, 0), TP_RV_RETRY, "%ld not retried", st[i]);
}

Test(retry_classify, retries_a_create_only_when_it_was_not_processed)
{
    cr_assert_eq(classify(CURLE_OK, 429, 1, 0, 0), TP_RV_RETRY);
    cr_assert_eq(classify(CURLE_OK, 502, 1, 0, 0), TP_RV_RETRY);
    cr_assert_eq(classify(CURLE_OK, 503, 1, 0, 0), TP_RV_RETRY);
    cr_assert_eq(classify(CURLE_OK, 504, 1, 0, 0), TP_RV_RETRY);
    cr_assert_eq(classify(CURLE_COULDNT_CONNECT, 0, 0, 0, 0), TP_RV_RETRY);
    cr_assert_eq(classify(CURLE_COULDNT_RESOLVE_HOST, 0, 0, 0, 0), TP_RV_RETRY);
    cr_assert_eq(classify(CURLE_OK, 500, 1, 0, 0), TP_RV_UNKNOWN);
    cr_assert_eq(classify(CURLE_OK, 408, 1, 0, 0), TP_RV_UNKNOWN);
}

Test(retry_classify, calls_a_timeout_after_sending_a_create_unknown)
{
    cr_assert_eq(classify(CURLE_OPERATION_TIMEDOUT, 0, 1, 0, 0), TP_RV_UNKNOWN);
    cr_assert_eq(classify(CURLE_GOT_NOTHING, 0, 1, 0, 0), TP_RV_UNKNOWN);
    cr_assert_eq(classify(CURLE_RECV_ERROR, 0, 1, 0, 0), TP_RV_UNKNOWN);
}

Test(retry_classify, retries_a_timeout_before_sending_even_for_a_create)
{
    cr_assert_eq(classify(CURLE_OPERATION_TIMEDOUT, 0, 0, 0, 0), TP_RV_RETRY);
}

Test(retry_classify, retries_unknown_outcomes_when_the_caller_opts_in)
{
    cr_assert_eq(classify(CURLE_OPERATION_TIMEDOUT, 0, 1, 0, 1), TP_RV_RETRY);
    cr_assert_eq(classify(CURLE_OK, 500, 1, 0, 1), TP_RV_RETRY);
}

Test(retry_classify, retries_transport_errors_of_idempotent_requests)
{
    cr_assert_eq(classify(CURLE_OPERATION_TIMEDOUT, 0, 1, 1, 0), TP_RV_RETRY);
    cr_assert_eq(classify(CURLE_RECV_ERROR, 0, 1, 1, 0), TP_RV_RETRY);
}

Test(retry_classify, never_retries_tls_verification_or_bad_urls)
{
    cr_assert_eq(classify(CURLE_PEER_FAILED_VERIFICATION, 0, 0, 1, 1), TP_RV_FAIL);
    cr_assert_eq(classify(CURLE_SSL_CACERT_BADFILE, 0, 0, 1, 1), TP_RV_FAIL);
    cr_assert_eq(classify(CURLE_URL_MALFORMAT, 0, 0, 1, 1), TP_RV_FAIL);
    cr_assert_eq(classify(CURLE_WRITE_ERROR, 0, 1, 1, 1), TP_RV_FAIL);
}

Test(retry_not_processed, knows_which_answers_mean_untouched)
{
    struct tp_attempt a = {CURLE_OK, 503, 1};
    cr_assert(tp_retry_not_processed(&a));
    a.status = 500;
    cr_assert_not(tp_retry_not_processed(&a));
    struct tp_attempt t = {CURLE_OPERATION_TIMEDOUT, 0, 0};
    cr_assert(tp_retry_not_processed(&t));
    t.sent = 1;
    cr_assert_not(tp_retry_not_processed(&t));
    struct tp_attempt r = {CURLE_COULDNT_CONNECT, 0, 1};
    cr_assert(tp_retry_not_processed(&r), "a refused connection never processed anything");
}

Test(retry_delay, grows_exponentially_up_to_the_cap)
{
    struct tp_retry_policy p = {10, 100, 1000, 30000};
    cr_assert_eq(tp_retry_delay_ms(&p, 1, -1, rand_max, NULL), 100);
    cr_assert_eq(tp_retry_delay_ms(&p, 2, -1, rand_max, NULL), 200);
    cr_assert_eq(tp_retry_delay_ms(&p, 3, -1, rand_max, NULL), 400);
    cr_assert_eq(tp_retry_delay_ms(&p, 4, -1, rand_max, NULL), 800);
    cr_assert_eq(tp_retry_delay_ms(&p, 5, -1, rand_max, NULL), 1000);
    cr_assert_eq(tp_retry_delay_ms(&p, 60, -1, rand_max, NULL), 1000, "no overflow");
}

Test(retry_delay, draws_the_full_jitter_range_from_zero)
{
    struct tp_retry_policy p = {10, 100, 1000, 30000};
    cr_assert_eq(tp_retry_delay_ms(&p, 3, -1, rand_zero, NULL), 0);
    struct fixed_rand f = {0, 123};
    cr_assert_eq(tp_retry_delay_ms(&p, 3, -1, rand_fixed, &f), 123);
    cr_assert_eq(f.bound, 401, "the draw covers [0, 400]");
}

Test(retry_delay, honours_retry_after_within_the_cap)
{
    struct tp_retry_policy p = {10, 100, 1000, 30000};
    cr_assert_eq(tp_retry_delay_ms(&p, 1, 2000, rand_zero, NULL), 2000);
    cr_assert_eq(tp_retry_delay_ms(&p, 1, 0, rand_max, NULL), 0);
    cr_assert_eq(tp_retry_delay_ms(&p, 1, 30000, rand_zero, NULL), 30000);
}

Test(retry_delay, gives_up_when_retry_after_exceeds_the_cap)
{
    struct tp_retry_policy p = {10, 100, 1000, 30000};
    cr_assert_eq(tp_retry_delay_ms(&p, 1, 30001, rand_zero, NULL), -1);
}

Test(retry_policy, has_sane_defaults)
{
    struct tp_retry_policy p;
    tp_retry_policy_init(&p);
    cr_assert_gt(p.max_attempts, 1);
    cr_assert_gt(p.base_ms, 0);
    cr_assert_geq(p.cap_ms, p.base_ms);
}

Test(retry_after, parses_delta_seconds)
{
    int64_t d = -1;
    cr_assert_eq(tp_retry_after_parse("5", 0, &d), 0);
    cr_assert_eq(d, 5000);
    cr_assert_eq(tp_retry_after_parse("  0 \r\n", 0, &d), 0);
    cr_assert_eq(d, 0);
}

Test(retry_after, parses_an_http_date_relative_to_now)
{
    int64_t d = -1;
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s */
    cr_assert_eq(tp_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 784111770000, &d), 0);
    cr_assert_eq(d, 7000);
}

Test(retry_after, treats_a_past_date_as_now)
{
    int64_t d = -1;
    cr_assert_eq(tp_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 784111800000, &d), 0);
    cr_assert_eq(d, 0);
}

Test(retry_after, rejects_malformed_values)
{
    static const char *const bad[] = {"", "  ", "-1", "5s", "1.5", "soon", "99999999999",
                                      "Sun, 06 Nov 1994 08:49:37 PST", NULL};
    for (int i = 0; bad[i]; i++) {
        int64_t d = 42;
        cr_assert_eq(tp_retry_after_parse(bad[i], 0, &d), -1, "accepted '%s'", bad[i]);
    }
    int64_t d;
    cr_assert_eq(tp_retry_after_parse(NULL, 0, &d), -1);
}

Test(retry_rand, stays_below_the_bound)
{
    for (int i = 0; i < 100; i++)
        cr_assert_lt(tp_retry_rand(7, NULL), 7);
}
