/* sim_api: the TrackplanFM REST API (guide §2.1–2.11, errors §3, queries §4) as the simulator
 * answers it — the route table of all 40 operations (matched ignoring case, trailing slash
 * allowed), authentication and roles, paging, Gridify filters and ordering, validation, and
 * the domain rules a client relies on. Transport-free: a request in, a status and JSON out;
 * sim_http does the HTTP. */
#ifndef TB_SIM_API_H
#define TB_SIM_API_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim/sim_auth.h"
#include "sim/sim_store.h"

#define SIM_API_MAX_PAGE_SIZE 1000

struct sim_api_req {
    const char *method;         /* "GET", "POST", "PUT", "DELETE", ... */
    const char *path;           /* percent-decoded path without the query */
    const char *query;          /* raw query string without '?', or NULL */
    json_t *body;               /* parsed body (borrowed), NULL when absent or unparsable */
    int body_present;           /* a non-empty body was sent */
    const char *body_error;     /* why the body did not parse (when present and body NULL) */
    const char *authorization;  /* Authorization header value, or NULL */
    const char *api_key;        /* value of the configured API key header, or NULL */
    int64_t now_ms;
};

struct sim_api_resp {
    int status;
    json_t *body;         /* new reference, or NULL for an empty body */
    int problem;          /* body is application/problem+json */
    const char *op;       /* the operation's name ("create_job"), NULL when no route matched */
    char allow[48];       /* Allow header for 405, else "" */
    char www_auth[160];   /* WWW-Authenticate header for 401, else "" */
};

typedef struct sim_api sim_api_t;

/* New API over a store and an authenticator (both borrowed, outliving the API). NULL on OOM. */
sim_api_t *sim_api_new(sim_store_t *st, sim_auth_t *auth);
/* Releases the API (not the store or authenticator); NULL is a no-op. */
void sim_api_free(sim_api_t *api);

/* Answers one request; resp is overwritten (release it with sim_api_resp_clear). */
void sim_api_handle(sim_api_t *api, const struct sim_api_req *req, struct sim_api_resp *resp);
/* Drops the response body reference. */
void sim_api_resp_clear(struct sim_api_resp *resp);

/* Loads a seed document (borrowed): {"users":[...], "sites":[...], ..., "jobs":[...]} —
 * records as the API accepts them on create, created through the same rules, in dependency
 * order; users are added to the authenticator. 0, or -1 with a message in err. */
int sim_api_seed(sim_api_t *api, json_t *seed, int64_t now_ms, char *err, size_t errlen);

/* The name of the operation at method and path ("create_job"), or NULL when none. Static. */
const char *sim_api_op(const char *method, const char *path);

/* A §3.1-style problem body for status (new): type, title, status and detail. */
json_t *sim_api_problem(int status, const char *detail);
/* The standard reason phrase for status ("Not Found"); "Unknown" for others. */
const char *sim_api_reason(int status);

#endif
