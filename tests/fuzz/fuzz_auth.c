/* fuzz_auth: feeds hostile specs and requests to auth. Input: one selector byte, then either
 * (selector odd) a JSON auth spec for auth_new, or (selector even) newline-separated fields
 * — Authorization, webhook-id, webhook-timestamp, webhook-signature, X-Hub-Signature-256,
 * X-Signature, ?token=, an allow entry, a peer address — followed by the raw body, checked
 * against every scheme. Also drives the Mailgun and problem+json helpers. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "problem.h"

#define NFIELDS 9

static const char *const specs[] = {
    "{\"hmac\": {\"scheme\": \"standard-webhooks\", \"secrets\": "
    "[\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\", \"whsec_QUJDRA==\"]}}",
    "{\"hmac\": {\"scheme\": \"github\", \"secrets\": [\"It's a Secret to Everybody\"]}}",
    "{\"hmac\": {\"scheme\": \"generic\", \"header\": \"X-Signature\", \"prefix\": \"sha256=\", "
    "\"secrets\": [\"k1\"]}}",
    "{\"hmac\": {\"scheme\": \"grafana\", \"header\": \"X-Signature\", "
    "\"timestamp_header\": \"webhook-timestamp\", \"secrets\": [\"k1\"]}}",
    "{\"bearer\": [\"B1\", \"B2\"], \"basic\": {\"user\": \"u\", \"password\": \"p\"}, "
    "\"url_token\": {\"values\": [\"T1\"]}}",
    "{\"allow\": [\"127.0.0.0/8\", \"::1\", \"::ffff:10.0.0.0/104\", \"2001:db8::/33\"]}",
};

struct fields {
    char *f[NFIELDS];
    const char *body;
    size_t body_len;
};

static const char *fz_header(void *ud, const char *name)
{
    const struct fields *x = ud;
    static const char *const names[] = {"Authorization", "webhook-id", "webhook-timestamp",
                                        "webhook-signature", "X-Hub-Signature-256",
                                        "X-Signature"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(names[i], name) == 0)
            return x->f[i][0] ? x->f[i] : NULL;
    return NULL;
}

static const char *fz_query(void *ud, const char *name)
{
    const struct fields *x = ud;
    return strcmp(name, "token") == 0 && x->f[6][0] ? x->f[6] : NULL;
}

static void fuzz_spec(const uint8_t *data, size_t size)
{
    json_t *spec = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    char *err = NULL;
    auth_t *a = auth_new(spec, &err);
    if (a) {
        struct auth_request r = {0};
        (void)auth_check(a, &r, NULL);
        (void)auth_challenge(a);
    }
    auth_free(a);
    free(err);
    json_decref(spec);
}

static void fuzz_request(const uint8_t *data, size_t size)
{
    struct fields x;
    size_t pos = 0;
    memset(&x, 0, sizeof x);
    for (size_t i = 0; i < NFIELDS; i++) {
        const uint8_t *nl = pos < size ? memchr(data + pos, '\n', size - pos) : NULL;
        size_t end = nl ? (size_t)(nl - data) : size;
        x.f[i] = strndup((const char *)data + pos, end - pos);
        if (!x.f[i])
            goto done;
        pos = nl ? end + 1 : size;
    }
    x.body = (const char *)data + pos;
    x.body_len = size - pos;

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    const struct sockaddr *peer = NULL;
    if (inet_pton(AF_INET, x.f[8], &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        peer = (const struct sockaddr *)&ss;
    } else if (inet_pton(AF_INET6, x.f[8], &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        peer = (const struct sockaddr *)&ss;
    }
    struct auth_request r = {
        .header = fz_header, .header_ud = &x, .query = fz_query, .query_ud = &x,
        .body = x.body, .body_len = x.body_len, .peer = peer, .now_s = 1614265330,
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        json_t *spec = json_loads(specs[i], 0, NULL);
        auth_t *a = auth_new(spec, NULL);
        json_decref(spec);
        if (!a)
            abort(); /* the fixed specs are valid */
        const char *why = NULL;
        enum auth_result res = auth_check(a, &r, &why);
        if (!why || (res == AUTH_OK) != (strcmp(why, "authenticated") == 0))
            abort();
        auth_free(a);
    }

    /* The allow entry as a spec: CIDR parsing on hostile text. */
    json_t *entry = json_string(x.f[7]);
    if (entry) {
        json_t *spec = json_pack("{s:[o]}", "allow", entry);
        char *err = NULL;
        auth_t *a = auth_new(spec, &err);
        if (a)
            (void)auth_check(a, &r, NULL);
        auth_free(a);
        free(err);
        json_decref(spec);
    }

    (void)auth_mailgun_verify(x.f[0], x.f[2], x.f[1], x.f[3], 1614265330, 300);
    (void)auth_hmac_sha256_hex_verify(x.f[0], strlen(x.f[0]), x.body, x.body_len, x.f[4]);
    free(problem_json(400 + (int)(x.body_len % 200), NULL, x.f[5], NULL));
done:
    for (size_t i = 0; i < NFIELDS; i++)
        free(x.f[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 1 << 20)
        return 0;
    if (data[0] & 1)
        fuzz_spec(data + 1, size - 1);
    else
        fuzz_request(data + 1, size - 1);
    return 0;
}
