/* ratelimit: token bucket arithmetic in doubles (tokens may be fractional between refills);
 * see ratelimit.h. A NaN or infinite parameter never reaches the arithmetic: rl_init refuses
 * it and leaves a bucket that denies everything. */
#include "ratelimit.h"

#include <string.h>

#define RL_MAX_RETRY_S 86400

/* Tokens held at now_ms, refilled since last_ms and capped at burst. */
static double rl_available(const rl_bucket_t *b, int64_t now_ms)
{
    if (!b->started || now_ms <= b->last_ms)
        return b->tokens;
    int64_t dt;
    if (__builtin_sub_overflow(now_ms, b->last_ms, &dt))
        return b->burst;
    double t = b->tokens + (double)dt * b->rate / 1000.0;
    return t > b->burst ? b->burst : t;
}

int rl_init(rl_bucket_t *b, double rate, double burst)
{
    memset(b, 0, sizeof *b);
    /* The comparisons are false for NaN, so NaN is refused with the rest. */
    if (!(rate > 0 && rate <= 1e12 && burst >= 1 && burst <= 1e12))
        return -1;
    b->rate = rate;
    b->burst = burst;
    b->tokens = burst;
    return 0;
}

int rl_take(rl_bucket_t *b, int64_t now_ms, unsigned n)
{
    if (n == 0)
        return 1;
    double avail = rl_available(b, now_ms);
    if (!b->started || now_ms > b->last_ms) {
        b->tokens = avail;
        b->last_ms = now_ms;
        b->started = 1;
    }
    if (avail < (double)n)
        return 0;
    b->tokens = avail - (double)n;
    return 1;
}

long rl_retry_after_s(const rl_bucket_t *b, int64_t now_ms)
{
    double avail = rl_available(b, now_ms);
    if (avail >= 1.0)
        return 0;
    if (!(b->rate > 0))
        return RL_MAX_RETRY_S;
    double s = (1.0 - avail) / b->rate;
    if (!(s < RL_MAX_RETRY_S))
        return RL_MAX_RETRY_S;
    long whole = (long)s;
    if ((double)whole < s)
        whole++;
    return whole < 1 ? 1 : whole;
}
