/* auth: authenticates an intake request before anything parses it — IP allow-lists, bearer
 * tokens, HTTP Basic, URL tokens and HMAC signatures (Standard Webhooks, GitHub, Grafana,
 * generic) over the raw body, every secret compared in constant time. It knows nothing of
 * HTTP libraries: the server hands in header and query look-ups as callbacks. It never sees
 * parsed payloads and never logs or returns a secret. */
#ifndef TB_AUTH_H
#define TB_AUTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct auth auth_t;

enum auth_result {
    AUTH_OK,           /* let the request through */
    AUTH_UNAUTHORIZED, /* 401: credentials or signature missing, or credentials wrong */
    AUTH_FORBIDDEN,    /* 403: address not allowed, signature wrong or stale */
};

/* One request as the server sees it. Look-ups return NULL when absent; the returned strings
 * are borrowed and must stay valid for the duration of auth_check. */
struct auth_request {
    /* Header value by name, case-insensitive (first occurrence). May be NULL: no headers. */
    const char *(*header)(void *ud, const char *name);
    void *header_ud;
    /* URL query parameter by exact name, already percent-decoded. May be NULL: no query. */
    const char *(*query)(void *ud, const char *name);
    void *query_ud;
    const char *body;             /* raw bytes exactly as received (may be NULL when 0) */
    size_t body_len;
    const struct sockaddr *peer;  /* AF_INET or AF_INET6; NULL makes allow-lists deny */
    int64_t now_s;                /* current time (s since the epoch) for timestamp checks */
};

/* Compiles an `auth:` subtree (borrowed; NULL, JSON null or {} = an open source). Returns a
 * new auth_t, or NULL with *err set to a malloc'd message naming the key ("auth.hmac.secrets:
 * must be a non-empty list") when the spec is invalid or memory runs out. */
auth_t *auth_new(json_t *spec, char **err);
/* Frees a, wiping its secrets. NULL is a no-op. */
void auth_free(auth_t *a);

/* Checks r against a (NULL a = open); a is not modified, so one auth_t may serve several
 * threads. *reason (when reason is not NULL) gets a static
 * string fit for a problem detail, never a secret: "address not allowed", "credentials
 * required", "invalid credentials", "signature required", "signature mismatch", "invalid
 * signature timestamp", "timestamp outside tolerance", "signature check failed" (out of
 * memory: fails closed), or "authenticated" on AUTH_OK. */
enum auth_result auth_check(const auth_t *a, const struct auth_request *r, const char **reason);

/* 1 when a accepts every request (no allow-list, credentials or signature), else 0. */
int auth_is_open(const auth_t *a);
/* 1 when checking needs the whole raw body (an HMAC is configured), so the server reads it
 * fully before calling auth_check; 0 when headers, query and peer are enough. */
int auth_needs_body(const auth_t *a);
/* The HTTP status for a result: 0 for AUTH_OK, 401 or 403. */
int auth_http_status(enum auth_result r);
/* A static WWW-Authenticate value for 401 replies ("Basic realm=..." when basic is
 * configured, else "Bearer realm=..." when bearer is), or NULL when neither is. */
const char *auth_challenge(const auth_t *a);

/* Verifies hex (64 hex digits, either case) against HMAC-SHA256(key, msg) in constant time.
 * Returns 0 on a match, -1 otherwise (including malformed hex or NULL arguments). */
int auth_hmac_sha256_hex_verify(const void *key, size_t klen, const void *msg, size_t mlen,
                                const char *hex);
/* Mailgun webhook check: signature_hex == hex HMAC-SHA256(signing_key, timestamp + token)
 * and, when tolerance_s > 0, |now_s - timestamp| <= tolerance_s. Returns 0 when valid, -1
 * otherwise (missing field, bad timestamp, stale, mismatch). Replayed tokens are not
 * detected here: callers deduplicate by token. */
int auth_mailgun_verify(const char *signing_key, const char *timestamp, const char *token,
                        const char *signature_hex, int64_t now_s, int64_t tolerance_s);

#endif
