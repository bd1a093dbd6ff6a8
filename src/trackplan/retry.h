/* retry: the client's retry policy as pure functions — which failures are worth another
 * attempt, whether repeating a request could do its work twice, how long to wait (exponential
 * backoff with full jitter, or the server's Retry-After). No I/O, no clocks read here: callers
 * pass the time and the random source, so every decision is unit-testable. */
#ifndef TB_TRACKPLAN_RETRY_H
#define TB_TRACKPLAN_RETRY_H

#include <stdint.h>

struct tp_retry_policy {
    int max_attempts;           /* attempts in all, first included (>= 1) */
    int64_t base_ms;            /* first backoff ceiling */
    int64_t cap_ms;             /* backoff ceiling never grows past this */
    int64_t retry_after_cap_ms; /* a longer Retry-After ends the retries (outcome "try later") */
};

/* What one attempt's outcome means for the request. */
enum tp_retry_verdict {
    TP_RV_OK,        /* 2xx: done */
    TP_RV_RETRY,     /* temporary, and safe to send again */
    TP_RV_FAIL,      /* permanent: sending it again gives the same answer */
    TP_RV_UNKNOWN    /* temporary, but the server may have done the work: not repeated
                        unless the caller opted in to retrying unsafe requests */
};

/* One attempt as the transport saw it. */
struct tp_attempt {
    int curl_code;   /* CURLcode; 0 when a response arrived */
    long status;     /* HTTP status, 0 when none */
    int sent;        /* 1 when the request (or part of it) reached the wire */
};

/* Fills p with the defaults: 4 attempts, 200 ms base, 10 s cap, Retry-After up to 30 s. */
void tp_retry_policy_init(struct tp_retry_policy *p);

/* 1 when the transport error or status says the server cannot have processed the request:
 * connect / resolve failures, nothing sent, and the statuses 429, 502, 503 and 504. */
int tp_retry_not_processed(const struct tp_attempt *a);

/* Classifies an attempt. Transport errors, 5xx, 408 and 429 are temporary; other 4xx (and
 * 1xx/3xx, as redirects are not followed) are permanent. A temporary failure of a request
 * that is not idempotent is TP_RV_UNKNOWN unless tp_retry_not_processed() holds or
 * retry_unsafe is set. */
enum tp_retry_verdict tp_retry_classify(const struct tp_attempt *a, int idempotent,
                                        int retry_unsafe);

/* Random source: a uniformly random value in [0, bound), bound > 0. */
typedef uint64_t (*tp_rand_fn)(uint64_t bound, void *ctx);

/* The wait before attempt number failures + 1, after `failures` (>= 1) failed attempts.
 * With retry_after_ms >= 0 (the server's Retry-After) that value is used as is, or -1 is
 * returned when it exceeds the policy's retry_after_cap_ms (stop retrying: try later).
 * Without it: full jitter, a random value in [0, min(cap, base * 2^(failures-1))]. */
int64_t tp_retry_delay_ms(const struct tp_retry_policy *p, int failures, int64_t retry_after_ms,
                          tp_rand_fn rnd, void *rnd_ctx);

/* Parses a Retry-After value: delta-seconds or an HTTP date (relative to now_ms; a date in
 * the past gives 0). Writes milliseconds; 0 on success, -1 when malformed or absurd. */
int tp_retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms);

/* The default random source (kernel CSPRNG); ctx is unused. */
uint64_t tp_retry_rand(uint64_t bound, void *ctx);

#endif
