/* retry: retry decisions and backoff delays for the TrackplanFM client; see retry.h. */
#include "trackplan/retry.h"

#include <ctype.h>
#include <curl/curl.h>
#include <string.h>

#include "common/util.h"

/* One day: a Retry-After larger than this is treated as malformed. */
#define TP_RETRY_AFTER_MAX_S 86400

void tp_retry_policy_init(struct tp_retry_policy *p)
{
    p->max_attempts = 4;
    p->base_ms = 200;
    p->cap_ms = 10000;
    p->retry_after_cap_ms = 30000;
}

/* Transport errors that happen before any byte of the request is written. */
static int tp_retry_connect_error(int code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;
    }
}

/* Transport errors that no repetition will cure. */
static int tp_retry_permanent_error(int code)
{
    switch (code) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_WRITE_ERROR:      /* our own response cap refused the body */
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_LOGIN_DENIED:
        return 1;
    default:
        return 0;
    }
}

int tp_retry_not_processed(const struct tp_attempt *a)
{
    if (a->curl_code != CURLE_OK)
        return tp_retry_connect_error(a->curl_code) || !a->sent;
    return a->status == 429 || a->status == 502 || a->status == 503 || a->status == 504;
}

enum tp_retry_verdict tp_retry_classify(const struct tp_attempt *a, int idempotent,
                                        int retry_unsafe)
{
    if (a->curl_code == CURLE_OK) {
        if (a->status >= 200 && a->status <= 299)
            return TP_RV_OK;
        if (!(a->status >= 500 && a->status <= 599) && a->status != 408 && a->status != 429)
            return TP_RV_FAIL;
    } else if (tp_retry_permanent_error(a->curl_code)) {
        return TP_RV_FAIL;
    }
    if (idempotent || retry_unsafe || tp_retry_not_processed(a))
        return TP_RV_RETRY;
    return TP_RV_UNKNOWN;
}

int64_t tp_retry_delay_ms(const struct tp_retry_policy *p, int failures, int64_t retry_after_ms,
                          tp_rand_fn rnd, void *rnd_ctx)
{
    if (retry_after_ms >= 0)
        return retry_after_ms > p->retry_after_cap_ms ? -1 : retry_after_ms;
    int64_t base = p->base_ms > 0 ? p->base_ms : 1;
    int64_t cap = p->cap_ms > base ? p->cap_ms : base;
    int64_t ceiling = base;
    for (int i = 1; i < failures && ceiling < cap; i++)
        ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
    if (ceiling > cap)
        ceiling = cap;
    return (int64_t)rnd((uint64_t)ceiling + 1, rnd_ctx);
}

int tp_retry_after_parse(const char *value, int64_t now_ms, int64_t *delay_ms)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(value);
    while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t' || value[n - 1] == '\r' ||
                     value[n - 1] == '\n'))
        n--;
    if (n == 0 || n > 64)
        return -1;
    char v[65];
    memcpy(v, value, n);
    v[n] = '\0';
    if (isdigit((unsigned char)v[0])) {
        int64_t s;
        if (util_parse_i64(v, 0, TP_RETRY_AFTER_MAX_S, &s) < 0)
            return -1;
        *delay_ms = s * 1000;
        return 0;
    }
    int64_t at;
    if (util_parse_http_date(v, &at) < 0)
        return -1;
    int64_t d = at - now_ms;
    if (d < 0)
        d = 0;
    if (d > (int64_t)TP_RETRY_AFTER_MAX_S * 1000)
        return -1;
    *delay_ms = d;
    return 0;
}

uint64_t tp_retry_rand(uint64_t bound, void *ctx)
{
    (void)ctx;
    return util_random_below(bound);
}
