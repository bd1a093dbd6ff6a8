/* ratelimit: a token bucket (rate per second, burst) for per-source intake limits. Pure: the
 * caller passes the time (a monotonic clock in ms, e.g. util_mono_ms) and owns the bucket;
 * no clocks, locks or allocation here. One bucket per source, used from the event loop. */
#ifndef TB_RATELIMIT_H
#define TB_RATELIMIT_H

#include <stdint.h>

/* A small value: embed it, initialise it with rl_init. Fields are private to ratelimit.c. */
typedef struct rl_bucket {
    double rate;     /* tokens added per second */
    double burst;    /* bucket size: the most tokens ever held */
    double tokens;   /* tokens held at last_ms */
    int64_t last_ms; /* time of the last refill */
    int started;     /* 0 until the first rl_take / rl_retry_after_s sets last_ms */
} rl_bucket_t;

/* Sets up a full bucket refilling rate tokens per second up to burst. Returns 0, or -1
 * when rate is not > 0 or burst is not >= 1 (both finite); the bucket then denies all. */
int rl_init(rl_bucket_t *b, double rate, double burst);
/* Takes n tokens at now_ms: 1 (allowed, tokens taken) or 0 (limited, nothing taken).
 * n == 0 is always allowed; n above the burst is never allowed. Time going backwards adds
 * no tokens. */
int rl_take(rl_bucket_t *b, int64_t now_ms, unsigned n);
/* Whole seconds until one token is available at now_ms: 0 when one is available now, else
 * at least 1 (for a Retry-After header), capped at 86400. Does not change the bucket. */
long rl_retry_after_s(const rl_bucket_t *b, int64_t now_ms);

#endif
