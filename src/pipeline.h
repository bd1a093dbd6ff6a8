/* pipeline: turns stored requests into events, plans and deliveries — adapter, rules,
 * correlation — and persists them in one store transaction per request, then kicks the
 * delivery engine. It runs on the event loop, one request at a time in arrival order, so
 * correlation decisions for a key are taken in the order the alarms arrived. */
#ifndef TB_PIPELINE_H
#define TB_PIPELINE_H

#include <event2/event.h>
#include <jansson.h>

#include "config.h"
#include "plan.h"
#include "rules.h"
#include "store.h"

typedef struct pipeline pipeline_t;

/* cfg and rules are borrowed (a reference is taken on rules). planned(arg) runs after a batch
 * of requests produced deliveries. */
pipeline_t *pipeline_new(struct event_base *base, struct store *st, const struct tb_config *cfg,
                         rules_t *rules, void (*planned)(void *arg), void *arg);
/* Swaps configuration and rules (reload); takes a reference on rules, drops the old one. */
void pipeline_set(pipeline_t *p, const struct tb_config *cfg, rules_t *rules);
/* Processes new requests soon. */
void pipeline_kick(pipeline_t *p);
/* Processes every new request now (for replay and tests); returns how many, or -1. */
int pipeline_run_now(pipeline_t *p);
/* The current rules (borrowed). */
rules_t *pipeline_rules(pipeline_t *p);
/* A dlv_plan_fn: rebuilds a stored plan against the current rules (arg is the pipeline). */
plan_t *pipeline_rebuild_plan(json_t *plan_json, void *arg, char **err);
/* The trace of a request (by public id or number) with its events and deliveries: new JSON,
 * or NULL when there is no such request. */
json_t *pipeline_explain(struct store *st, const char *id);
void pipeline_free(pipeline_t *p);

#endif
