/* server: the intake of trackbridge serve — POST /hooks/<source> authenticated, limited,
 * validated and committed to the store before any 2xx; plus /healthz, /readyz, /metrics and
 * the admin API (GET /api/events/<id>, GET /api/requests/<id>). It decides nothing about
 * what a request means: the pipeline takes stored requests from there. */
#ifndef TB_SERVER_H
#define TB_SERVER_H

#include <event2/event.h>

#include "config.h"
#include "store.h"

typedef struct srv srv_t;

/* Called on the loop after a request was committed (new, not a duplicate). */
typedef void (*srv_stored_fn)(void *arg);
/* Fills a JSON trace for GET /api/events/<id> (new reference) or returns NULL (404). */
typedef json_t *(*srv_explain_fn)(const char *id, void *arg);
/* Readiness beyond the store: 1 when ready (rules loaded...). */
typedef int (*srv_ready_fn)(void *arg);

struct srv_hooks {
    srv_stored_fn stored;
    srv_explain_fn explain;
    srv_ready_fn ready;
    void *arg;
};

/* Builds the per-source runtime (auth, rate limits) from cfg (borrowed; must outlive the
 * server or be swapped with srv_set_config), binds the listeners and routes. NULL with *err
 * (malloc'd) on failure. */
srv_t *srv_new(struct event_base *base, const struct tb_config *cfg, struct store *st,
               const struct srv_hooks *hooks, char **err);
/* Swaps in a new configuration (reload). Listen addresses are not re-bound. Returns 0, or -1
 * with *err and the old configuration kept. */
int srv_set_config(srv_t *s, const struct tb_config *cfg, char **err);
/* Stops accepting new connections (shutdown); requests in flight are still answered. */
void srv_stop_listening(srv_t *s);
/* Requests whose store commit has not completed yet. */
size_t srv_inflight(const srv_t *s);
/* The URL of the plain listener with its real port. */
const char *srv_url(const srv_t *s);
/* The URL of the TLS listener, or "" when there is none. */
const char *srv_tls_url(const srv_t *s);
void srv_free(srv_t *s);

#endif
