/* client: the TrackplanFM REST client engine — libcurl's multi interface driven by a
 * libevent loop (sockets and timers, as curl's hiperfifo example), a bounded number of
 * concurrent transfers with a bounded queue, API-key or JWT authentication (login, cached
 * token, refresh before expiry, one re-login on 401), retries with backoff, and a pager.
 * Results come back by callback; a client on a private loop also offers blocking calls.
 * It knows operations (ops.h), not rules or deliveries. */
#ifndef TB_TRACKPLAN_CLIENT_H
#define TB_TRACKPLAN_CLIENT_H

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "trackplan/ops.h"
#include "trackplan/result.h"
#include "trackplan/retry.h"

/* Options: a plain struct filled from the command line or the configuration. Strings are
 * borrowed: tp_client_new copies what it keeps. Times are milliseconds. */
struct tp_options {
    const char *url;             /* base URL, "https://cafm.example.com" (required) */
    const char *api_key;         /* API-key authentication when set (wins over user) */
    const char *api_key_header;  /* NULL: "X-API-Key" */
    const char *user;            /* JWT authentication: login with user / password */
    const char *password;
    long connect_timeout_ms;     /* default 10000 */
    long timeout_ms;             /* per attempt, default 30000 */
    struct tp_retry_policy retry;
    const char *ca_file;         /* CA bundle for TLS verification, NULL: the system's */
    int insecure;                /* 1: skip TLS verification (logged as a warning) */
    int retry_unsafe;            /* 1: also retry creates whose outcome is unknown */
    int max_transfers;           /* concurrent transfers, default 8 */
    int max_queue;               /* requests waiting beyond those, default 1024 */
    size_t max_response;         /* response body cap in bytes, default 8 MiB */
    FILE *trace;                 /* verbose trace of lines and headers (masked), or NULL */
    tp_rand_fn rand;             /* backoff jitter source, NULL: the kernel CSPRNG */
    void *rand_ctx;
};

/* Fills o with the defaults above (no URL, no credentials). */
void tp_options_init(struct tp_options *o);
/* Checks o: URL present and http(s), credentials complete, numbers in range. Returns 0, or
 * -1 with a readable message in err. */
int tp_options_check(const struct tp_options *o, char *err, size_t errlen);

/* Completion callback: called exactly once per accepted call, from the event loop (never
 * from inside the call that submitted it). res is the callee's: tp_result_free() it. */
typedef void (*tp_done_fn)(struct tp_result *res, void *arg);

/* A query parameter; both strings are borrowed for the duration of the submitting call. */
struct tp_kv {
    const char *key;
    const char *value;
};

/* The variable parts of one call; every member is optional and borrowed (copied or
 * serialised before the submitting function returns). */
struct tp_call {
    const char *id;              /* fills "{id}" in the op's path */
    const struct tp_kv *query;   /* query parameters, URL-encoded by the client */
    size_t nquery;
    json_t *body;                /* borrowed: the JSON request body */
    int retry_unsafe;            /* 1: this call may be retried even if maybe processed */
};

struct tp_client;

/* A new client on base (which must outlive it), or on a private loop when base is NULL
 * (then use tp_client_run or the blocking calls). Returns NULL when the options do not
 * pass tp_options_check or on OOM. */
struct tp_client *tp_client_new(const struct tp_options *o, struct event_base *base);
/* Cancels what is pending (each callback gets a cancelled result: TP_TRYLATER, or
 * TP_UNKNOWN for a non-idempotent request already on the wire) and frees c. NULL is a
 * no-op. Must not be called from inside a completion callback of c. */
void tp_client_free(struct tp_client *c);

/* Submits operation op (a paged op without page / pageSize gets page=1, pageSize=50).
 * Returns 0 when accepted (done will be called), or -1 with errno:
 * EINVAL (bad op, missing id, a body-taking op without body or vice versa, login without
 * user), EAGAIN (queue full: try later), ECANCELED (client closing) or ENOMEM; done is then
 * never called. login (TP_OP_LOGIN) without a body logs in with the configured user and,
 * like the client's own logins, caches the token. */
int tp_client_op(struct tp_client *c, enum tp_op_id op, const struct tp_call *call,
                 tp_done_fn done, void *arg);
/* Submits a raw request: method (GET, POST, PUT, DELETE, PATCH) and a path starting with
 * "/" (it may carry a query; call->query is appended). The op it matches, if any, names it
 * in logs and decides authentication (none for login). Returns as tp_client_op. */
int tp_client_request(struct tp_client *c, const char *method, const char *path,
                      const struct tp_call *call, tp_done_fn done, void *arg);
/* Walks every page of a paged op (page 1, 2, ... of page_size items; call->query may add
 * filter and orderBy but not page / pageSize) until a short or empty page, "count" items,
 * or max_items (then res->truncated is set). done gets one result whose body is
 * {"count": N, "data": [all items]}; a failing page fails the whole walk. Returns as
 * tp_client_op (EINVAL when op is not paged). */
int tp_client_list_all(struct tp_client *c, enum tp_op_id op, const struct tp_call *call,
                       int page_size, size_t max_items, tp_done_fn done, void *arg);

/* The number of accepted calls whose callback has not run yet. */
size_t tp_client_pending(const struct tp_client *c);

/* Private-loop clients only: runs the loop until no call is pending. 0, or -1 (shared
 * loop, or the loop failed). */
int tp_client_run(struct tp_client *c);
/* A tp_done_fn that stores the result into *(struct tp_result **)arg (freeing any result
 * already there), for blocking use: submit with it, then tp_client_run. */
void tp_result_keep(struct tp_result *res, void *arg);
/* Blocking forms of tp_client_op / tp_client_request / tp_client_list_all on a
 * private-loop client. Return 0 with *out set (a new result, whatever its outcome), or -1
 * with errno as the submitting functions (*out then NULL). */
int tp_client_call(struct tp_client *c, enum tp_op_id op, const struct tp_call *call,
                   struct tp_result **out);
int tp_client_call_raw(struct tp_client *c, const char *method, const char *path,
                       const struct tp_call *call, struct tp_result **out);
int tp_client_call_all(struct tp_client *c, enum tp_op_id op, const struct tp_call *call,
                       int page_size, size_t max_items, struct tp_result **out);

#endif
