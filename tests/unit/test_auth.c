/* Unit tests for auth: published signature vectors (Standard Webhooks, GitHub), byte flips,
 * timestamp tolerance edges, key rotation, bearer / basic / URL tokens, CIDR allow-lists and
 * spec validation messages. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "auth.h"
#include "common/crypto.h"

/* ---- a fake request ------------------------------------------------------------------ */

struct fake_req {
    const char *headers[16][2];
    size_t n_headers;
    const char *query[8][2];
    size_t n_query;
    struct sockaddr_storage peer;
    struct auth_request r;
};

static const char *fake_header(void *ud, const char *name)
{
    struct fake_req *f = ud;
    for (size_t i = 0; i < f->n_headers; i++)
        if (strcasecmp(f->headers[i][0], name) == 0)
            return f->headers[i][1];
    return NULL;
}

static const char *fake_query(void *ud, const char *name)
{
    struct fake_req *f = ud;
    for (size_t i = 0; i < f->n_query; i++)
        if (strcmp(f->query[i][0], name) == 0)
            return f->query[i][1];
    return NULL;
}

static void req_init(struct fake_req *f, const char *body)
{
    memset(f, 0, sizeof *f);
    f->r.header = fake_header;
    f->r.header_ud = f;
    f->r.query = fake_query;
    f->r.query_ud = f;
    f->r.body = body;
    f->r.body_len = body ? strlen(body) : 0;
    f->r.now_s = 1614265330;
}

static void req_header(struct fake_req *f, const char *name, const char *value)
{
    cr_assert_lt(f->n_headers, 16);
    f->headers[f->n_headers][0] = name;
    f->headers[f->n_headers][1] = value;
    f->n_headers++;
}

static void req_query(struct fake_req *f, const char *name, const char *value)
{
    cr_assert_lt(f->n_query, 8);
    f->query[f->n_query][0] = name;
    f->query[f->n_query][1] = value;
    f->n_query++;
}

static void req_peer(struct fake_req *f, const char *addr)
{
    memset(&f->peer, 0, sizeof f->peer);
    struct sockaddr_in *sin = (struct sockaddr_in *)&f->peer;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&f->peer;
    if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
    } else {
        cr_assert_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1, "bad test address %s", addr);
        sin6->sin6_family = AF_INET6;
    }
    f->r.peer = (const struct sockaddr *)&f->peer;
}

static auth_t *compile(const char *spec_json)
{
    json_error_t jerr;
    json_t *spec = json_loads(spec_json, JSON_DECODE_ANY, &jerr);
    cr_assert_not_null(spec, "test spec does not parse: %s", jerr.text);
    char *err = NULL;
    auth_t *a = auth_new(spec, &err);
    json_decref(spec);
    cr_assert_not_null(a, "spec rejected: %s", err ? err : "(no message)");
    cr_assert_null(err);
    return a;
}

static char *compile_error(const char *spec_json)
{
    json_error_t jerr;
    json_t *spec = json_loads(spec_json, JSON_DECODE_ANY, &jerr);
    cr_assert_not_null(spec, "test spec does not parse: %s", jerr.text);
    char *err = NULL;
    auth_t *a = auth_new(spec, &err);
    json_decref(spec);
    cr_assert_null(a, "spec %s was accepted", spec_json);
    cr_assert_not_null(err);
    return err;
}

static void expect(const auth_t *a, struct fake_req *f, enum auth_result want,
                   const char *want_reason)
{
    const char *why = NULL;
    enum auth_result got = auth_check(a, &f->r, &why);
    cr_assert_not_null(why);
    cr_expect_eq(got, want, "result %d, wanted %d (reason: %s)", got, want, why);
    if (want_reason)
        cr_expect_str_eq(why, want_reason);
}

/* ---- Standard Webhooks --------------------------------------------------------------- */

#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS "1614265330"
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define SW_SPEC "{\"hmac\": {\"scheme\": \"standard-webhooks\", \"secrets\": [\"" SW_SECRET "\"]}}"

static void sw_request(struct fake_req *f, const char *body, const char *id, const char *ts,
                       const char *sig)
{
    req_init(f, body);
    if (id)
        req_header(f, "webhook-id", id);
    if (ts)
        req_header(f, "webhook-timestamp", ts);
    if (sig)
        req_header(f, "webhook-signature", sig);
}

Test(standard_webhooks, accepts_the_published_example)
{
    auth_t *a = compile(SW_SPEC);
    struct fake_req f;
    sw_request(&f, SW_BODY, SW_ID, SW_TS, SW_SIG);
    expect(a, &f, AUTH_OK, "authenticated");
    cr_expect_eq(auth_needs_body(a), 1);
    cr_expect_eq(auth_is_open(a), 0);
    auth_free(a);
}

Test(standard_webhooks, accepts_a_secret_without_the_whsec_prefix)
{
    auth_t *a = compile("{\"hmac\": {\"scheme\": \"standard-webhooks\", "
                        "\"secrets\": [\"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]}}");
    struct fake_req f;
    sw_request(&f, SW_BODY, SW_ID, SW_TS, SW_SIG);
    expect(a, &f, AUTH_OK, NULL);
    auth_free(a);
}

Test(standard_webhooks, rejects_a_flipped_byte_in_the_body)
{
    auth_t *a = compile(SW_SPEC);
    struct fake_req f;
    sw_request(&f, "{\"test\": 2432232315}", SW_ID, SW_TS, SW_SIG);
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    sw_request(&f, "{\"test\": 2432232314} ", SW_ID, SW_TS, SW_SIG);
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    sw_request(&f, "", SW_ID, SW_TS, SW_SIG);
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    auth_free(a);
}

Test(standard_webhooks, rejects_a_changed_message_id)
{
    auth_t *a = compile(SW_SPEC);
    struct fake_req f;
    sw_request(&f, SW_BODY, "msg_p5jXN8AQM9LWM0D4loKWxJeK", SW_TS, SW_SIG);
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    auth_free(a);
}

Test(standard_webhooks, rejects_a_changed_timestamp_inside_the_tolerance)
{
    auth_t *a = compile(SW_SPEC);
    struct fake_req f;
    sw_request(&f, SW_BODY, SW_ID, "1614265331", SW_SIG);
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    auth_free(a);
}

Test(standard_webhooks, rejects_a_flipped_signature)
{
    auth_t *a = compile(SW_SPEC);
    struct fake_req f;
    sw_request(&f, SW_BODY, SW_ID, SW_TS, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    expect(a, &f, AUTH_OK, NULL);
    sw_request(&f, SW_BODY, SW_ID, SW_TS, "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    sw_request(&f, SW_BODY, SW_ID, SW_TS, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    sw_request(&f, SW_BODY, SW_ID, SW_TS, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    sw_request(&f, SW_BODY, SW_ID, SW_TS, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    sw_request(&f, SW_BODY, SW_ID, SW_TS, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1O");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    auth_free(a);
}

Test(standard_webhooks, accepts_a_timestamp_exactly_at_the_tolerance_edges)
{
    auth_t *a = compile(SW_SPEC);
    struct fake_req f;
    sw_request(&f, SW_BODY, SW_ID, SW_TS, SW_SIG);
    f.r.now_s = 1614265330 + 300;
    expect(a, &f, AUTH_OK, NULL);
    f.r.now_s = 1614265330 - 300;
    expect(a, &f, AUTH_OK, NULL);
    auth_free(a);
}

Test(standard_webhooks, rejects_stale_and_future_timestamps_one_second_past_the_edge)
{
    auth_t *a = compile(SW_SPEC);
    struct fake_req f;
    sw_request(&f, SW_BODY, SW_ID, SW_TS, SW_SIG);
    f.r.now_s = 1614265330 + 301;
    expect(a, &f, AUTH_FORBIDDEN, "timestamp outside tolerance");
    f.r.now_s = 1614265330 - 301;
    expect(a, &f, AUTH_FORBIDDEN, "timestamp outside tolerance");
    auth_free(a);
}

Test(standard_webhooks, honours_a_configured_tolerance)
{
    auth_t *a = compile("{\"hmac\": {\"scheme\": \"standard-webhooks\", \"tolerance\": 10, "
                        "\"secrets\": [\"" SW_SECRET "\"]}}");
    struct fake_req f;
    sw_request(&f, SW_BODY, SW_ID, SW_TS, SW_SIG);
    f.r.now_s = 1614265340;
    expect(a, &f, AUTH_OK, NULL);
    f.r.now_s = 1614265341;
    expect(a, &f, AUTH_FORBIDDEN, "timestamp outside tolerance");
    auth_free(a);
}

Test(standard_webhooks, accepts_the_tolerance_as_a_numeric_string)
{
    auth_t *a = compile("{\"hmac\": {\"scheme\": \"standard-webhooks\", \"tolerance\": \"10\", "
                        "\"secrets\": [\"" SW_SECRET "\"]}}");
    struct fake_req f;
    sw_request(&f, SW_BODY, SW_ID, SW_TS, SW_SIG);
    f.r.now_s = 1614265341;
    expect(a, &f, AUTH_FORBIDDEN, "timestamp outside tolerance");
    auth_free(a);
}

Test(standard_webhooks, rejects_timestamps_that_are_not_plain_decimal_seconds)
{
    static const char *const bad[] = {"abc", "-1614265330", "+1614265330", " 1614265330",
                                      "1614265330.0", "", "99999999999999999999999"};
    auth_t *a = compile(SW_SPEC);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fake_req f;
        sw_request(&f, SW_BODY, SW_ID, bad[i], SW_SIG);
        expect(a, &f, AUTH_FORBIDDEN, "invalid signature timestamp");
    }
    auth_free(a);
}

Test(standard_webhooks, asks_for_a_signature_when_any_header_is_missing)
{
    auth_t *a = compile(SW_SPEC);
    struct fake_req f;
    sw_request(&f, SW_BODY, NULL, SW_TS, SW_SIG);
    expect(a, &f, AUTH_UNAUTHORIZED, "signature required");
    sw_request(&f, SW_BODY, SW_ID, NULL, SW_SIG);
    expect(a, &f, AUTH_UNAUTHORIZED, "signature required");
    sw_request(&f, SW_BODY, SW_ID, SW_TS, NULL);
    expect(a, &f, AUTH_UNAUTHORIZED, "signature required");
    auth_free(a);
}

Test(standard_webhooks, accepts_any_matching_entry_among_several_signatures)
{
    auth_t *a = compile(SW_SPEC);
    struct fake_req f;
    sw_request(&f, SW_BODY, SW_ID, SW_TS,
               "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1a,bm90LWVkMjU1MTk= "
               "garbage v1,!!! " SW_SIG);
    expect(a, &f, AUTH_OK, NULL);
    sw_request(&f, SW_BODY, SW_ID, SW_TS, SW_SIG "  v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    expect(a, &f, AUTH_OK, NULL);
    sw_request(&f, SW_BODY, SW_ID, SW_TS,
               "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1,BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    auth_free(a);
}

Test(standard_webhooks, accepts_either_secret_during_rotation)
{
    /* The new key first, the published one second: both must verify. */
    auth_t *a = compile("{\"hmac\": {\"scheme\": \"standard-webhooks\", \"secrets\": "
                        "[\"whsec_bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3\", \"" SW_SECRET "\"]}}");
    struct fake_req f;
    sw_request(&f, SW_BODY, SW_ID, SW_TS, SW_SIG);
    expect(a, &f, AUTH_OK, NULL);

    /* A signature made with the new key verifies too. */
    unsigned char key[64], mac[32];
    size_t klen = 0;
    unsigned char *k = crypto_b64_decode("bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3", 36, &klen);
    cr_assert_not_null(k);
    memcpy(key, k, klen);
    free(k);
    const char *content = SW_ID "." SW_TS "." SW_BODY;
    crypto_hmac_sha256(key, klen, content, strlen(content), mac);
    char *b64 = crypto_b64_encode(mac, 32, 0);
    char sig[80];
    snprintf(sig, sizeof sig, "v1,%s", b64);
    free(b64);
    sw_request(&f, SW_BODY, SW_ID, SW_TS, sig);
    expect(a, &f, AUTH_OK, NULL);
    auth_free(a);

    /* Once the old key is retired, its signatures fail. */
    a = compile("{\"hmac\": {\"scheme\": \"standard-webhooks\", \"secrets\": "
                "[\"whsec_bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3\"]}}");
    sw_request(&f, SW_BODY, SW_ID, SW_TS, SW_SIG);
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    auth_free(a);
}

/* ---- GitHub -------------------------------------------------------------------------- */

#define GH_SPEC "{\"hmac\": {\"scheme\": \"github\", \"secrets\": [\"It's a Secret to Everybody\"]}}"
#define GH_SIG "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

static void gh_request(struct fake_req *f, const char *body, const char *sig)
{
    req_init(f, body);
    if (sig)
        req_header(f, "X-Hub-Signature-256", sig);
}

Test(github, accepts_the_documented_example)
{
    auth_t *a = compile(GH_SPEC);
    struct fake_req f;
    gh_request(&f, "Hello, World!", GH_SIG);
    expect(a, &f, AUTH_OK, "authenticated");
    gh_request(&f, "Hello, World!",
               "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17");
    expect(a, &f, AUTH_OK, NULL);
    auth_free(a);
}

Test(github, rejects_flipped_bytes_in_body_and_signature)
{
    auth_t *a = compile(GH_SPEC);
    struct fake_req f;
    gh_request(&f, "Hello, World?", GH_SIG);
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    gh_request(&f, "Hello, World!",
               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    gh_request(&f, "Hello, World!",
               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    gh_request(&f, "Hello, World!",
               "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    gh_request(&f, "Hello, World!",
               "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043eZZ");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    auth_free(a);
}

Test(github, asks_for_a_signature_when_the_header_is_missing)
{
    auth_t *a = compile(GH_SPEC);
    struct fake_req f;
    gh_request(&f, "Hello, World!", NULL);
    req_header(&f, "X-Hub-Signature", "sha1=0000");
    expect(a, &f, AUTH_UNAUTHORIZED, "signature required");
    auth_free(a);
}

Test(github, accepts_either_secret_during_rotation)
{
    auth_t *a = compile("{\"hmac\": {\"scheme\": \"github\", \"secrets\": "
                        "[\"a new secret\", \"It's a Secret to Everybody\"]}}");
    struct fake_req f;
    gh_request(&f, "Hello, World!", GH_SIG);
    expect(a, &f, AUTH_OK, NULL);
    auth_free(a);
}

Test(github, verifies_over_raw_bytes_including_nul)
{
    static const char body[] = "a\0b";
    unsigned char mac[32];
    char hex[65], sig[80];
    crypto_hmac_sha256("s3cret", 6, body, 3, mac);
    crypto_hex(mac, 32, hex);
    snprintf(sig, sizeof sig, "sha256=%s", hex);
    auth_t *a = compile("{\"hmac\": {\"scheme\": \"github\", \"secrets\": [\"s3cret\"]}}");
    struct fake_req f;
    gh_request(&f, NULL, sig);
    f.r.body = body;
    f.r.body_len = 3;
    expect(a, &f, AUTH_OK, NULL);
    f.r.body_len = 1;
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    auth_free(a);
}

/* ---- generic and Grafana ------------------------------------------------------------- */

Test(generic_hmac, accepts_hex_or_base64_after_the_configured_prefix)
{
    unsigned char mac[32];
    char hex[65], sig[128];
    crypto_hmac_sha256("k1", 2, "payload", 7, mac);
    crypto_hex(mac, 32, hex);
    auth_t *a = compile("{\"hmac\": {\"scheme\": \"generic\", \"header\": \"X-Signature\", "
                        "\"prefix\": \"sha256=\", \"secrets\": [\"k1\"]}}");
    struct fake_req f;
    snprintf(sig, sizeof sig, "sha256=%s", hex);
    req_init(&f, "payload");
    req_header(&f, "x-signature", sig);
    expect(a, &f, AUTH_OK, NULL);

    char *b64 = crypto_b64_encode(mac, 32, 0);
    snprintf(sig, sizeof sig, "sha256=%s", b64);
    free(b64);
    req_init(&f, "payload");
    req_header(&f, "X-Signature", sig);
    expect(a, &f, AUTH_OK, NULL);

    req_init(&f, "payload");
    req_header(&f, "X-Signature", hex); /* prefix missing */
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");

    req_init(&f, "payload!");
    req_header(&f, "X-Signature", sig);
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");

    req_init(&f, "payload");
    expect(a, &f, AUTH_UNAUTHORIZED, "signature required");
    auth_free(a);
}

Test(grafana_hmac, signs_timestamp_colon_body_when_a_timestamp_header_is_set)
{
    unsigned char mac[32];
    char hex[65];
    const char *content = "1614265330:{\"status\":\"firing\"}";
    crypto_hmac_sha256("gsecret", 7, content, strlen(content), mac);
    crypto_hex(mac, 32, hex);
    auth_t *a = compile("{\"hmac\": {\"scheme\": \"grafana\", \"secrets\": [\"gsecret\"], "
                        "\"timestamp_header\": \"X-Grafana-Alerting-Signature-Timestamp\"}}");
    struct fake_req f;
    req_init(&f, "{\"status\":\"firing\"}");
    req_header(&f, "X-Grafana-Alerting-Signature", hex);
    req_header(&f, "X-Grafana-Alerting-Signature-Timestamp", "1614265330");
    expect(a, &f, AUTH_OK, NULL);
    f.r.now_s += 301;
    expect(a, &f, AUTH_FORBIDDEN, "timestamp outside tolerance");

    req_init(&f, "{\"status\":\"firing\"}");
    req_header(&f, "X-Grafana-Alerting-Signature", hex);
    expect(a, &f, AUTH_UNAUTHORIZED, "signature required");
    auth_free(a);

    /* Without a timestamp header the body alone is signed. */
    crypto_hmac_sha256("gsecret", 7, "{}", 2, mac);
    crypto_hex(mac, 32, hex);
    a = compile("{\"hmac\": {\"scheme\": \"grafana\", \"secrets\": [\"gsecret\"]}}");
    req_init(&f, "{}");
    req_header(&f, "X-Grafana-Alerting-Signature", hex);
    expect(a, &f, AUTH_OK, NULL);
    auth_free(a);
}

/* ---- bearer, basic, URL token -------------------------------------------------------- */

Test(bearer, accepts_either_token_during_rotation)
{
    auth_t *a = compile("{\"bearer\": [\"tok-new-123\", \"tok-old-456\"]}");
    struct fake_req f;
    req_init(&f, NULL);
    req_header(&f, "Authorization", "Bearer tok-new-123");
    expect(a, &f, AUTH_OK, NULL);
    req_init(&f, NULL);
    req_header(&f, "Authorization", "bearer   tok-old-456 ");
    expect(a, &f, AUTH_OK, NULL);
    cr_expect_eq(auth_needs_body(a), 0);
    cr_expect_str_eq(auth_challenge(a), "Bearer realm=\"trackbridge\"");
    auth_free(a);
}

Test(bearer, rejects_wrong_truncated_or_extended_tokens)
{
    static const char *const bad[] = {"Bearer tok-new-12", "Bearer tok-new-1234",
                                      "Bearer TOK-NEW-123", "Bearer", "Bearer ",
                                      "Token tok-new-123", "tok-new-123",
                                      "Basic dTpw"};
    auth_t *a = compile("{\"bearer\": \"tok-new-123\"}");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fake_req f;
        req_init(&f, NULL);
        req_header(&f, "Authorization", bad[i]);
        expect(a, &f, AUTH_UNAUTHORIZED, "invalid credentials");
    }
    auth_free(a);
}

Test(bearer, asks_for_credentials_when_none_are_presented)
{
    auth_t *a = compile("{\"bearer\": \"tok-new-123\"}");
    struct fake_req f;
    req_init(&f, NULL);
    expect(a, &f, AUTH_UNAUTHORIZED, "credentials required");
    f.r.header = NULL;
    expect(a, &f, AUTH_UNAUTHORIZED, "credentials required");
    auth_free(a);
}

Test(basic, accepts_configured_pairs)
{
    /* "alice:pa:ss" and "bob:hunter2" */
    auth_t *a = compile("{\"basic\": [{\"user\": \"alice\", \"password\": \"pa:ss\"}, "
                        "{\"user\": \"bob\", \"password\": \"hunter2\"}]}");
    struct fake_req f;
    req_init(&f, NULL);
    req_header(&f, "Authorization", "Basic YWxpY2U6cGE6c3M=");
    expect(a, &f, AUTH_OK, NULL);
    req_init(&f, NULL);
    req_header(&f, "Authorization", "BASIC Ym9iOmh1bnRlcjI=");
    expect(a, &f, AUTH_OK, NULL);
    cr_expect_str_eq(auth_challenge(a), "Basic realm=\"trackbridge\", charset=\"UTF-8\"");
    auth_free(a);
}

Test(basic, rejects_bad_base64_and_wrong_pairs)
{
    static const char *const bad[] = {
        "Basic !!!notbase64",
        "Basic Ym9iOmh1bnRlcjI", /* valid but of "bob:hunter2" against alice only */
        "Basic YWxpY2U=",        /* "alice" without a colon */
        "Basic YWxpY2U6cGE6c3",  /* "alice:pa:s" */
        "Basic YWxpY2U6cGE6c3Nz", /* "alice:pa:sss" */
        "Basic QUxJQ0U6cGE6c3M=", /* "ALICE:pa:ss" */
        "Basic YWxpY2UAOnBhOnNz", /* "alice\0:pa:ss" */
        "Basic YQ",              /* one byte */
        "Basic",
    };
    auth_t *a = compile("{\"basic\": {\"user\": \"alice\", \"password\": \"pa:ss\"}}");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fake_req f;
        req_init(&f, NULL);
        req_header(&f, "Authorization", bad[i]);
        expect(a, &f, AUTH_UNAUTHORIZED, "invalid credentials");
    }
    auth_free(a);
}

Test(url_token, accepts_any_configured_value_under_the_default_param)
{
    auth_t *a = compile("{\"url_token\": {\"values\": [\"T1\", \"T2\"]}}");
    struct fake_req f;
    req_init(&f, NULL);
    req_query(&f, "token", "T2");
    expect(a, &f, AUTH_OK, NULL);
    req_init(&f, NULL);
    req_query(&f, "token", "T3");
    expect(a, &f, AUTH_UNAUTHORIZED, "invalid credentials");
    req_init(&f, NULL);
    req_query(&f, "key", "T1");
    expect(a, &f, AUTH_UNAUTHORIZED, "credentials required");
    f.r.query = NULL;
    expect(a, &f, AUTH_UNAUTHORIZED, "credentials required");
    cr_expect_null(auth_challenge(a));
    auth_free(a);
}

Test(url_token, uses_the_configured_param_name)
{
    auth_t *a = compile("{\"url_token\": {\"param\": \"k\", \"values\": \"secret-1\"}}");
    struct fake_req f;
    req_init(&f, NULL);
    req_query(&f, "k", "secret-1");
    expect(a, &f, AUTH_OK, NULL);
    req_init(&f, NULL);
    req_query(&f, "token", "secret-1");
    expect(a, &f, AUTH_UNAUTHORIZED, "credentials required");
    auth_free(a);
}

Test(credentials, any_configured_method_may_match)
{
    auth_t *a = compile("{\"bearer\": \"B1\", \"url_token\": {\"values\": [\"U1\"]}}");
    struct fake_req f;
    req_init(&f, NULL);
    req_query(&f, "token", "U1");
    expect(a, &f, AUTH_OK, NULL);
    req_init(&f, NULL);
    req_header(&f, "Authorization", "Bearer wrong");
    req_query(&f, "token", "U1");
    expect(a, &f, AUTH_OK, NULL);
    req_init(&f, NULL);
    req_header(&f, "Authorization", "Bearer wrong");
    req_query(&f, "token", "wrong");
    expect(a, &f, AUTH_UNAUTHORIZED, "invalid credentials");
    auth_free(a);
}

Test(credentials, are_checked_before_the_signature)
{
    auth_t *a = compile("{\"bearer\": \"B1\", \"hmac\": {\"scheme\": \"github\", "
                        "\"secrets\": [\"It's a Secret to Everybody\"]}}");
    struct fake_req f;
    gh_request(&f, "Hello, World!", GH_SIG);
    expect(a, &f, AUTH_UNAUTHORIZED, "credentials required");
    req_header(&f, "Authorization", "Bearer B1");
    expect(a, &f, AUTH_OK, NULL);
    gh_request(&f, "Hello, World.", GH_SIG);
    req_header(&f, "Authorization", "Bearer B1");
    expect(a, &f, AUTH_FORBIDDEN, "signature mismatch");
    auth_free(a);
}

/* ---- allow-lists --------------------------------------------------------------------- */

static void expect_peer(const auth_t *a, const char *addr, int allowed)
{
    struct fake_req f;
    req_init(&f, NULL);
    req_peer(&f, addr);
    const char *why = NULL;
    enum auth_result got = auth_check(a, &f.r, &why);
    if (allowed)
        cr_expect_eq(got, AUTH_OK, "%s should be allowed (%s)", addr, why);
    else
        cr_expect(got == AUTH_FORBIDDEN && strcmp(why, "address not allowed") == 0,
                  "%s should be forbidden, got %d (%s)", addr, got, why);
}

Test(allow, zero_prefix_v4_admits_every_ipv4_but_no_native_ipv6)
{
    auth_t *a = compile("{\"allow\": [\"0.0.0.0/0\"]}");
    expect_peer(a, "0.0.0.0", 1);
    expect_peer(a, "255.255.255.255", 1);
    expect_peer(a, "::ffff:8.8.8.8", 1);
    expect_peer(a, "2001:db8::1", 0);
    expect_peer(a, "::1", 0);
    auth_free(a);
}

Test(allow, zero_prefix_v6_admits_everything)
{
    auth_t *a = compile("{\"allow\": [\"::/0\"]}");
    expect_peer(a, "2001:db8::1", 1);
    expect_peer(a, "10.0.0.1", 1);
    auth_free(a);
}

Test(allow, slash_32_and_bare_addresses_admit_exactly_one_host)
{
    auth_t *a = compile("{\"allow\": [\"10.1.2.3\", \"192.0.2.7/32\"]}");
    expect_peer(a, "10.1.2.3", 1);
    expect_peer(a, "10.1.2.4", 0);
    expect_peer(a, "10.1.2.2", 0);
    expect_peer(a, "192.0.2.7", 1);
    expect_peer(a, "192.0.2.6", 0);
    auth_free(a);
}

Test(allow, slash_128_admits_exactly_one_ipv6_host)
{
    auth_t *a = compile("{\"allow\": [\"::1/128\", \"2001:db8::5\"]}");
    expect_peer(a, "::1", 1);
    expect_peer(a, "::2", 0);
    expect_peer(a, "::", 0);
    expect_peer(a, "2001:db8::5", 1);
    expect_peer(a, "2001:db8::4", 0);
    expect_peer(a, "127.0.0.1", 0);
    auth_free(a);
}

Test(allow, prefix_edges_fall_on_the_right_side)
{
    auth_t *a = compile("{\"allow\": [\"127.0.0.0/8\", \"10.0.0.0/20\", \"2001:db8:8000::/33\"]}");
    expect_peer(a, "127.0.0.0", 1);
    expect_peer(a, "127.255.255.255", 1);
    expect_peer(a, "126.255.255.255", 0);
    expect_peer(a, "128.0.0.0", 0);
    expect_peer(a, "10.0.15.255", 1);
    expect_peer(a, "10.0.16.0", 0);
    expect_peer(a, "2001:db8:8000::", 1);
    expect_peer(a, "2001:db8:ffff:ffff::1", 1);
    expect_peer(a, "2001:db8:7fff:ffff::1", 0);
    expect_peer(a, "2001:db9::", 0);
    auth_free(a);
}

Test(allow, v4_mapped_ipv6_peers_match_ipv4_entries_and_back)
{
    auth_t *a = compile("{\"allow\": [\"127.0.0.0/8\", \"::ffff:10.0.0.0/104\"]}");
    expect_peer(a, "::ffff:127.0.0.1", 1);
    expect_peer(a, "::ffff:128.0.0.1", 0);
    expect_peer(a, "10.9.9.9", 1);
    expect_peer(a, "::ffff:10.9.9.9", 1);
    expect_peer(a, "11.0.0.1", 0);
    expect_peer(a, "::7f00:1", 0); /* IPv4-compatible, not mapped */
    auth_free(a);
}

Test(allow, denies_a_missing_or_non_ip_peer)
{
    auth_t *a = compile("{\"allow\": [\"::/0\"]}");
    struct fake_req f;
    req_init(&f, NULL);
    expect(a, &f, AUTH_FORBIDDEN, "address not allowed");
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    f.r.peer = (const struct sockaddr *)&sun;
    expect(a, &f, AUTH_FORBIDDEN, "address not allowed");
    auth_free(a);
}

Test(allow, is_checked_before_credentials)
{
    auth_t *a = compile("{\"allow\": [\"127.0.0.1\"], \"bearer\": \"B1\"}");
    struct fake_req f;
    req_init(&f, NULL);
    req_peer(&f, "127.0.0.2");
    req_header(&f, "Authorization", "Bearer B1");
    expect(a, &f, AUTH_FORBIDDEN, "address not allowed");
    req_peer(&f, "127.0.0.1");
    expect(a, &f, AUTH_OK, NULL);
    auth_free(a);
}

/* ---- open sources and spec validation ------------------------------------------------ */

Test(spec, nothing_configured_means_an_open_source)
{
    char *err = NULL;
    auth_t *a = auth_new(NULL, &err);
    cr_assert_not_null(a);
    cr_expect_eq(auth_is_open(a), 1);
    cr_expect_eq(auth_needs_body(a), 0);
    struct fake_req f;
    req_init(&f, NULL);
    expect(a, &f, AUTH_OK, "authenticated");
    auth_free(a);

    a = compile("{}");
    cr_expect_eq(auth_is_open(a), 1);
    auth_free(a);
    a = compile("null");
    cr_expect_eq(auth_is_open(a), 1);
    auth_free(a);
    cr_expect_eq(auth_is_open(NULL), 1);
    cr_expect_eq(auth_check(NULL, &f.r, NULL), AUTH_OK);
    auth_free(NULL);
}

Test(spec, an_allow_list_alone_is_not_open)
{
    auth_t *a = compile("{\"allow\": [\"127.0.0.1\"]}");
    cr_expect_eq(auth_is_open(a), 0);
    cr_expect_eq(auth_needs_body(a), 0);
    auth_free(a);
}

Test(spec, bad_specs_are_rejected_with_the_key_named)
{
    static const struct {
        const char *spec, *msg;
    } cases[] = {
        {"\"bearer\"", "auth: must be a mapping"},
        {"{\"bogus\": 1}", "auth.bogus: unknown key"},
        {"{\"bearer\": []}", "auth.bearer: must be a non-empty string or list"},
        {"{\"bearer\": 5}", "auth.bearer: must be a non-empty string or list"},
        {"{\"bearer\": \"\"}", "auth.bearer: must be a non-empty string"},
        {"{\"bearer\": [\"ok\", \"has space\"]}", "auth.bearer[1]: must be printable ASCII"},
        {"{\"bearer\": [\"ok\", 7]}", "auth.bearer[1]: must be a non-empty string"},
        {"{\"basic\": {\"user\": \"u\"}}", "auth.basic.password: must be a non-empty string"},
        {"{\"basic\": [{\"user\": \"a:b\", \"password\": \"p\"}]}",
         "auth.basic[0].user: must not contain ':'"},
        {"{\"basic\": {\"user\": \"u\", \"password\": \"p\", \"realm\": \"x\"}}",
         "auth.basic.realm: unknown key"},
        {"{\"basic\": []}", "auth.basic: must be a mapping or a non-empty list"},
        {"{\"basic\": \"u:p\"}", "auth.basic: must be a mapping with user and password"},
        {"{\"url_token\": {\"param\": \"t\"}}", "auth.url_token.values: required"},
        {"{\"url_token\": {\"values\": []}}", "auth.url_token.values: must be a non-empty"},
        {"{\"url_token\": [\"x\"]}", "auth.url_token: must be a mapping"},
        {"{\"hmac\": {\"scheme\": \"github\", \"secrets\": []}}",
         "auth.hmac.secrets: must be a non-empty list"},
        {"{\"hmac\": {\"scheme\": \"github\"}}", "auth.hmac.secrets: must be a non-empty list"},
        {"{\"hmac\": {\"scheme\": \"github\", \"secrets\": \"x\"}}",
         "auth.hmac.secrets: must be a non-empty list"},
        {"{\"hmac\": {\"scheme\": \"github\", \"secrets\": [\"a\", \"\"]}}",
         "auth.hmac.secrets[1]: must be a non-empty string"},
        {"{\"hmac\": {\"secrets\": [\"x\"]}}", "auth.hmac.scheme: required"},
        {"{\"hmac\": {\"scheme\": \"sha1\", \"secrets\": [\"x\"]}}",
         "auth.hmac.scheme: unknown scheme \"sha1\""},
        {"{\"hmac\": {\"scheme\": \"github\", \"secrets\": [\"x\"], \"tolerance\": 5}}",
         "auth.hmac.tolerance: not used with scheme github"},
        {"{\"hmac\": {\"scheme\": \"github\", \"secrets\": [\"x\"], \"salt\": 5}}",
         "auth.hmac.salt: unknown key"},
        {"{\"hmac\": {\"scheme\": \"generic\", \"secrets\": [\"x\"]}}",
         "auth.hmac.header: required with scheme generic"},
        {"{\"hmac\": {\"scheme\": \"generic\", \"secrets\": [\"x\"], \"header\": \"X Sig\"}}",
         "auth.hmac.header: not a valid header name"},
        {"{\"hmac\": {\"scheme\": \"standard-webhooks\", \"secrets\": [\"whsec_!!!\"]}}",
         "auth.hmac.secrets[0]: not a Standard Webhooks secret"},
        {"{\"hmac\": {\"scheme\": \"standard-webhooks\", \"secrets\": [\"whsec_\"]}}",
         "auth.hmac.secrets[0]: not a Standard Webhooks secret"},
        {"{\"hmac\": {\"scheme\": \"standard-webhooks\", \"secrets\": [\"whsec_QQ==\"], "
         "\"tolerance\": 0}}",
         "auth.hmac.tolerance: must be a number of seconds"},
        {"{\"hmac\": {\"scheme\": \"standard-webhooks\", \"secrets\": [\"whsec_QQ==\"], "
         "\"tolerance\": \"5m\"}}",
         "auth.hmac.tolerance: must be a number of seconds"},
        {"{\"hmac\": [\"x\"]}", "auth.hmac: must be a mapping"},
        {"{\"allow\": []}", "auth.allow: must be a non-empty list"},
        {"{\"allow\": \"127.0.0.1\"}", "auth.allow: must be a non-empty list"},
        {"{\"allow\": [7]}", "auth.allow[0]: must be an address or CIDR string"},
        {"{\"allow\": [\"10.0.0.0/33\"]}", "auth.allow[0]: not an IPv4 or IPv6 address"},
        {"{\"allow\": [\"::/0\", \"::1/129\"]}", "auth.allow[1]: not an IPv4 or IPv6 address"},
        {"{\"allow\": [\"example.com\"]}", "auth.allow[0]: not an IPv4 or IPv6 address"},
        {"{\"allow\": [\"10.0.0.0/\"]}", "auth.allow[0]: not an IPv4 or IPv6 address"},
        {"{\"allow\": [\"10.0.0.0/+8\"]}", "auth.allow[0]: not an IPv4 or IPv6 address"},
        {"{\"allow\": [\"10.0.0.0/-1\"]}", "auth.allow[0]: not an IPv4 or IPv6 address"},
        {"{\"allow\": [\"10.0.0/8\"]}", "auth.allow[0]: not an IPv4 or IPv6 address"},
        {"{\"allow\": [\"fe80::1%eth0\"]}", "auth.allow[0]: not an IPv4 or IPv6 address"},
        {"{\"allow\": [\"10.1.2.3/8\"]}", "auth.allow[0]: host bits set in \"10.1.2.3/8\""},
        {"{\"allow\": [\"2001:db8::1/32\"]}", "auth.allow[0]: host bits set"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = compile_error(cases[i].spec);
        cr_expect(strncmp(err, cases[i].msg, strlen(cases[i].msg)) == 0,
                  "spec %s: got \"%s\", wanted \"%s...\"", cases[i].spec, err, cases[i].msg);
        free(err);
    }
}

Test(spec, error_messages_never_echo_a_secret)
{
    char *err = compile_error("{\"bearer\": \"topsecret value\"}");
    cr_expect_null(strstr(err, "topsecret"), "message leaks the token: %s", err);
    free(err);
    err = compile_error("{\"hmac\": {\"scheme\": \"standard-webhooks\", "
                        "\"secrets\": [\"whsec_topsecret!\"]}}");
    cr_expect_null(strstr(err, "topsecret"), "message leaks the secret: %s", err);
    free(err);
    err = compile_error("{\"basic\": {\"user\": \"u\", \"password\": \"top\\u0001secret\"}}");
    cr_expect_null(strstr(err, "top"), "message leaks the password: %s", err);
    free(err);
}

Test(spec, too_many_entries_are_rejected)
{
    char spec[2048] = "{\"bearer\": [";
    for (int i = 0; i < 17; i++) {
        char item[32];
        snprintf(item, sizeof item, "%s\"t%d\"", i ? ", " : "", i);
        strncat(spec, item, sizeof spec - strlen(spec) - 1);
    }
    strncat(spec, "]}", sizeof spec - strlen(spec) - 1);
    char *err = compile_error(spec);
    cr_expect_str_eq(err, "auth.bearer: at most 16 entries");
    free(err);
}

/* ---- helpers for provider code ------------------------------------------------------- */

Test(status, maps_results_to_http_statuses)
{
    cr_expect_eq(auth_http_status(AUTH_OK), 0);
    cr_expect_eq(auth_http_status(AUTH_UNAUTHORIZED), 401);
    cr_expect_eq(auth_http_status(AUTH_FORBIDDEN), 403);
}

Test(hmac_hex, verifies_the_github_example_in_either_case)
{
    const char *key = "It's a Secret to Everybody";
    cr_expect_eq(auth_hmac_sha256_hex_verify(key, strlen(key), "Hello, World!", 13,
                 "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"), 0);
    cr_expect_eq(auth_hmac_sha256_hex_verify(key, strlen(key), "Hello, World!", 13,
                 "757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17"), 0);
    cr_expect_eq(auth_hmac_sha256_hex_verify(key, strlen(key), "Hello, World?", 13,
                 "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"), -1);
    cr_expect_eq(auth_hmac_sha256_hex_verify(key, strlen(key), "Hello, World!", 13,
                 "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1"), -1);
    cr_expect_eq(auth_hmac_sha256_hex_verify(key, strlen(key), "Hello, World!", 13,
                 "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17 "), -1);
    cr_expect_eq(auth_hmac_sha256_hex_verify(key, strlen(key), "Hello, World!", 13, NULL), -1);
}

#define MG_KEY "key-secret"
#define MG_TS "1700000000"
#define MG_TOKEN "tok123"
#define MG_SIG "c2c6484c4527e441747097dcdc9afadf89a86c4ca7252e4291c9c848e3cbf719"

Test(mailgun, accepts_a_valid_signature_inside_the_tolerance)
{
    cr_expect_eq(auth_mailgun_verify(MG_KEY, MG_TS, MG_TOKEN, MG_SIG, 1700000000, 300), 0);
    cr_expect_eq(auth_mailgun_verify(MG_KEY, MG_TS, MG_TOKEN, MG_SIG, 1700000300, 300), 0);
    cr_expect_eq(auth_mailgun_verify(MG_KEY, MG_TS, MG_TOKEN, MG_SIG, 1699999700, 300), 0);
}

Test(mailgun, rejects_stale_tampered_or_missing_fields)
{
    cr_expect_eq(auth_mailgun_verify(MG_KEY, MG_TS, MG_TOKEN, MG_SIG, 1700000301, 300), -1);
    cr_expect_eq(auth_mailgun_verify(MG_KEY, MG_TS, MG_TOKEN, MG_SIG, 1699999699, 300), -1);
    cr_expect_eq(auth_mailgun_verify(MG_KEY, MG_TS, "tok124", MG_SIG, 1700000000, 300), -1);
    cr_expect_eq(auth_mailgun_verify(MG_KEY, "1700000001", MG_TOKEN, MG_SIG, 1700000001, 300),
                 -1);
    cr_expect_eq(auth_mailgun_verify("key-secreT", MG_TS, MG_TOKEN, MG_SIG, 1700000000, 300),
                 -1);
    cr_expect_eq(auth_mailgun_verify(MG_KEY, MG_TS, MG_TOKEN,
                                     "d2c6484c4527e441747097dcdc9afadf89a86c4ca7252e4291c9c848e3cbf719",
                                     1700000000, 300),
                 -1);
    cr_expect_eq(auth_mailgun_verify(NULL, MG_TS, MG_TOKEN, MG_SIG, 1700000000, 300), -1);
    cr_expect_eq(auth_mailgun_verify(MG_KEY, NULL, MG_TOKEN, MG_SIG, 1700000000, 300), -1);
    cr_expect_eq(auth_mailgun_verify(MG_KEY, MG_TS, NULL, MG_SIG, 1700000000, 300), -1);
    cr_expect_eq(auth_mailgun_verify(MG_KEY, MG_TS, MG_TOKEN, NULL, 1700000000, 300), -1);
    cr_expect_eq(auth_mailgun_verify(MG_KEY, "17e8", MG_TOKEN, MG_SIG, 1700000000, 0), -1);
}

Test(mailgun, skips_the_timestamp_window_when_tolerance_is_zero)
{
    cr_expect_eq(auth_mailgun_verify(MG_KEY, MG_TS, MG_TOKEN, MG_SIG, 1800000000, 0), 0);
}
