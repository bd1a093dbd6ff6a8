/* jwt: JWT payload time claims and the refresh rule; see jwt.h. */
#include "trackplan/jwt.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"

/* Reads an optional numeric claim in seconds; 0 when absent, -1 when not a usable number. */
static int tp_jwt_claim(json_t *payload, const char *name, int64_t *out)
{
    json_t *v = json_object_get(payload, name); /* borrowed */
    *out = 0;
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0 || n > (json_int_t)1e12)
            return -1;
        *out = (int64_t)n;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d < 0 || d > 1e12)
            return -1;
        *out = (int64_t)d;
        return 0;
    }
    return -1;
}

int tp_jwt_times(const char *token, int64_t *exp_s, int64_t *iat_s)
{
    int rc = -1;
    unsigned char *raw = NULL;
    json_t *payload = NULL;
    if (!token)
        goto out;
    size_t len = strnlen(token, TP_JWT_MAX + 1);
    if (len > TP_JWT_MAX)
        goto out;
    const char *dot1 = memchr(token, '.', len);
    if (!dot1 || dot1 == token)
        goto out;
    const char *p = dot1 + 1;
    const char *dot2 = memchr(p, '.', len - (size_t)(p - token));
    if (!dot2 || dot2 == p || dot2[1] == '\0' || strchr(dot2 + 1, '.'))
        goto out;
    size_t rawlen = 0;
    raw = crypto_b64_decode(p, (size_t)(dot2 - p), &rawlen);
    if (!raw)
        goto out;
    payload = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(payload))
        goto out;
    if (tp_jwt_claim(payload, "exp", exp_s) < 0 || tp_jwt_claim(payload, "iat", iat_s) < 0)
        goto out;
    rc = 0;
out:
    json_decref(payload);
    free(raw);
    return rc;
}

int tp_jwt_refresh_due(int64_t now_ms, int64_t obtained_ms, int64_t iat_s, int64_t exp_s)
{
    if (exp_s <= 0)
        return 0;
    int64_t exp_ms = exp_s * 1000;
    int64_t start_ms = iat_s > 0 ? iat_s * 1000 : obtained_ms;
    int64_t lifetime = exp_ms - start_ms;
    if (lifetime < 0)
        lifetime = 0;
    int64_t margin = lifetime / 10;
    if (margin > 60000)
        margin = 60000;
    return now_ms >= exp_ms - margin;
}
