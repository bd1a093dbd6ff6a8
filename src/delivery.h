/* delivery: runs the deliveries the store holds — one per plan step — through the async
 * TrackplanFM client on the event loop: bounded concurrency, a global rate limit, a circuit
 * breaker, persisted exponential backoff with full jitter, dead letters, and the
 * unknown-outcome check (a create whose answer was lost is searched for by its [tb:N]
 * reference before it is sent again). Order per correlation key comes from the store. */
#ifndef TB_DELIVERY_H
#define TB_DELIVERY_H

#include <event2/event.h>
#include <stdint.h>

#include "plan.h"
#include "store.h"
#include "trackplan/client.h"

typedef struct dlv dlv_t;

struct dlv_opts {
    int concurrency;            /* deliveries in flight at once (>= 1) */
    double rate;                /* API calls per second; 0 = unlimited */
    int max_attempts;           /* then a dead letter */
    int64_t backoff_base_ms, backoff_cap_ms;
    int breaker_failures;       /* consecutive temporary failures that open the breaker; 0 off */
    int64_t breaker_cooldown_ms;
    int64_t poll_ms;            /* how often due deliveries are looked for without a kick */
    int64_t lookup_ttl_ms;      /* look-up (GET) answers are reused this long; 0 = never */
    size_t lookup_max;          /* cached look-up answers at most */
    const char *mail_from;      /* smtp.from for send_mail (copied); NULL: no outbound mail */
};

/* Rebuilds a stored plan (borrowed JSON) with the current rules; new plan or NULL + *err. */
typedef plan_t *(*dlv_plan_fn)(json_t *plan_json, void *arg, char **err);

/* Starts the engine on base. store and client are borrowed and must outlive it. */
dlv_t *dlv_new(struct event_base *base, struct store *st, struct tp_client *client,
               const struct dlv_opts *o, dlv_plan_fn rebuild, void *rebuild_arg);
/* Looks for due deliveries soon (after new ones were stored). */
/* A new smtp.from (copied; NULL: no outbound mail), after a reload. */
void dlv_set_mail_from(dlv_t *d, const char *from);
void dlv_kick(dlv_t *d);
/* Stops taking new deliveries (shutdown); those in flight finish. */
void dlv_drain(dlv_t *d);
size_t dlv_inflight(const dlv_t *d);
/* Frees the engine; call after dlv_inflight() reached 0 or with the client freed first. */
void dlv_free(dlv_t *d);

/* The marker a create's text carries so a lost answer can be found: "[tb:<id>]". */
void dlv_ref(int64_t delivery_id, char out[32]);

#endif
