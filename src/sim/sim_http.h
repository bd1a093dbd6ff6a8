/* sim_http: the simulator's HTTP face on libevent's evhttp — binds the listener, turns each
 * request into a sim_api call (with keep-alive, body and header limits), applies injected
 * faults, records calls in the request log, serves the /_sim test hooks, and persists the
 * store to --state (coalesced, atomic). It owns no records; the store, API and auth are
 * borrowed from the caller. */
#ifndef TB_SIM_HTTP_H
#define TB_SIM_HTTP_H

#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

#include "sim/sim_api.h"
#include "sim/sim_auth.h"
#include "sim/sim_store.h"

#define SIM_HTTP_SAVE_INTERVAL_MS 200

struct sim_http_opts {
    const char *host;        /* address to bind */
    int port;                /* 0 picks a free port */
    size_t max_body;         /* larger bodies get 413 */
    size_t max_log;          /* request log capacity */
    const char *state_path;  /* NULL: no persistence */
    json_t *seed;            /* borrowed seed re-applied by POST /_sim/reset, or NULL */
};

typedef struct sim_http sim_http_t;

/* Binds and starts serving on base. Returns NULL with a message in err when the address cannot
 * be bound or memory runs out. */
sim_http_t *sim_http_new(struct event_base *base, sim_api_t *api, sim_store_t *st,
                         sim_auth_t *auth, const struct sim_http_opts *opts, char *err,
                         size_t errlen);
/* The port actually bound (useful when 0 was asked for). */
int sim_http_port(const sim_http_t *h);
/* Writes the state file now when it is configured and the store changed since the last
 * write. 0, or -1 when writing failed (logged). */
int sim_http_save(sim_http_t *h);
/* Answers calls still stalled by a delay fault, stops listening, saves the state and frees. */
void sim_http_free(sim_http_t *h);

#endif
