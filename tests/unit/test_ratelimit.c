/* Unit tests for ratelimit: a full bucket at start, burst, refill over (injected) time,
 * the cap at burst, Retry-After, clocks going backwards and bad parameters. */
#include <criterion/criterion.h>
#include <math.h>

#include "ratelimit.h"

Test(ratelimit, a_new_bucket_allows_a_full_burst_then_limits)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 1, 5), 0);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(rl_take(&b, 1000, 1), 1, "take %d of the burst", i);
    cr_expect_eq(rl_take(&b, 1000, 1), 0);
    cr_expect_eq(rl_take(&b, 1000, 1), 0);
}

Test(ratelimit, refills_at_the_configured_rate)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 10, 2), 0); /* one token every 100 ms */
    cr_expect_eq(rl_take(&b, 0, 2), 1);
    cr_expect_eq(rl_take(&b, 0, 1), 0);
    cr_expect_eq(rl_take(&b, 99, 1), 0);
    cr_expect_eq(rl_take(&b, 100, 1), 1);
    cr_expect_eq(rl_take(&b, 150, 1), 0);
    cr_expect_eq(rl_take(&b, 200, 1), 1);
}

Test(ratelimit, never_holds_more_than_the_burst)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 100, 3), 0);
    cr_expect_eq(rl_take(&b, 0, 3), 1);
    /* An hour idle refills to 3, not to 360000. */
    cr_expect_eq(rl_take(&b, 3600 * 1000, 3), 1);
    cr_expect_eq(rl_take(&b, 3600 * 1000, 1), 0);
}

Test(ratelimit, takes_several_tokens_at_once_or_none)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 1, 4), 0);
    cr_expect_eq(rl_take(&b, 0, 3), 1);
    cr_expect_eq(rl_take(&b, 0, 2), 0); /* only one left: nothing taken */
    cr_expect_eq(rl_take(&b, 0, 1), 1);
    cr_expect_eq(rl_take(&b, 0, 5), 0); /* above the burst: never */
    cr_expect_eq(rl_take(&b, 1000000, 5), 0);
    cr_expect_eq(rl_take(&b, 0, 0), 1);
}

Test(ratelimit, fractional_rates_refill_slowly)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 0.5, 1), 0); /* one token every 2 s */
    cr_expect_eq(rl_take(&b, 0, 1), 1);
    cr_expect_eq(rl_take(&b, 1999, 1), 0);
    cr_expect_eq(rl_take(&b, 2000, 1), 1);
}

Test(ratelimit, retry_after_is_zero_while_tokens_remain)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 1, 2), 0);
    cr_expect_eq(rl_retry_after_s(&b, 0), 0);
    cr_expect_eq(rl_take(&b, 0, 1), 1);
    cr_expect_eq(rl_retry_after_s(&b, 0), 0);
}

Test(ratelimit, retry_after_rounds_the_wait_up_to_whole_seconds)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 0.1, 1), 0); /* one token every 10 s */
    cr_expect_eq(rl_take(&b, 0, 1), 1);
    cr_expect_eq(rl_take(&b, 0, 1), 0);
    cr_expect_eq(rl_retry_after_s(&b, 0), 10);
    cr_expect_eq(rl_retry_after_s(&b, 500), 10);
    cr_expect_eq(rl_retry_after_s(&b, 1000), 9);
    cr_expect_eq(rl_retry_after_s(&b, 9999), 1);
    cr_expect_eq(rl_retry_after_s(&b, 10000), 0);
    cr_expect_eq(rl_take(&b, 10000, 1), 1);
}

Test(ratelimit, retry_after_is_at_least_one_second_for_fast_rates)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 50, 1), 0);
    cr_expect_eq(rl_take(&b, 0, 1), 1);
    cr_expect_eq(rl_take(&b, 0, 1), 0);
    cr_expect_eq(rl_retry_after_s(&b, 0), 1);
}

Test(ratelimit, retry_after_does_not_change_the_bucket)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 1, 1), 0);
    cr_expect_eq(rl_take(&b, 0, 1), 1);
    (void)rl_retry_after_s(&b, 5000);
    cr_expect_eq(rl_take(&b, 999, 1), 0);
    cr_expect_eq(rl_take(&b, 1000, 1), 1);
}

Test(ratelimit, a_clock_going_backwards_adds_no_tokens)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 1, 1), 0);
    cr_expect_eq(rl_take(&b, 5000, 1), 1);
    cr_expect_eq(rl_take(&b, 1000, 1), 0);
    cr_expect_eq(rl_take(&b, 5999, 1), 0);
    cr_expect_eq(rl_take(&b, 6000, 1), 1);
}

Test(ratelimit, bad_parameters_are_refused_and_deny_everything)
{
    rl_bucket_t b;
    cr_expect_eq(rl_init(&b, 0, 5), -1);
    cr_expect_eq(rl_take(&b, 0, 1), 0);
    cr_expect_eq(rl_retry_after_s(&b, 0), 86400);
    cr_expect_eq(rl_init(&b, -1, 5), -1);
    cr_expect_eq(rl_init(&b, 1, 0.5), -1);
    cr_expect_eq(rl_init(&b, NAN, 5), -1);
    cr_expect_eq(rl_init(&b, 1, INFINITY), -1);
    cr_expect_eq(rl_take(&b, 1000000, 1), 0);
}

Test(ratelimit, extreme_times_do_not_overflow)
{
    rl_bucket_t b;
    cr_assert_eq(rl_init(&b, 1, 2), 0);
    cr_expect_eq(rl_take(&b, INT64_MIN, 2), 1);
    cr_expect_eq(rl_take(&b, INT64_MAX, 2), 1);
    cr_expect_eq(rl_take(&b, INT64_MAX, 1), 0);
}
