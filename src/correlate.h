/* correlate: what an event means for its correlation key. A pure state machine (open, repeat,
 * resolve, reopen within reopen_window, min_interval suppression, flap_window deferral) over
 * a JSON state per key, an in-memory state store for the dry run and tests, and the pipeline
 * event → matching rules → key → decision → plan that the server and `trackbridge test`
 * share. The state is JSON so the SQLite store can persist it as is. */
#ifndef TB_CORRELATE_H
#define TB_CORRELATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "plan.h"
#include "rules.h"

enum corr_action {
    CORR_NONE,      /* nothing to do (resolved without an open job, already resolving) */
    CORR_OPEN,      /* first firing, or firing after completion: the open list */
    CORR_REPEAT,    /* firing while open: the repeat list (often empty) */
    CORR_SUPPRESS,  /* firing while open within min_interval of the last action: nothing */
    CORR_RESOLVE,   /* resolved while open: the resolve list (deferred by flap_window) */
    CORR_REOPEN,    /* firing within reopen_window after completion: the reopen list */
    CORR_FLAP       /* firing while a resolve waits: one continuing alarm, resolve cancelled */
};

/* "none", "open", ... Never NULL. */
const char *corr_action_name(enum corr_action a);

struct corr_decision {
    enum corr_action action;
    enum rule_phase phase;   /* the list to run for OPEN, REPEAT, RESOLVE, REOPEN */
    int has_phase;
    json_t *state;           /* new: the key's next state; NULL when it does not change */
    int64_t gen;             /* generation of the next state */
    int deferred;            /* the plan waits until not_before (flap_window) */
    int64_t not_before;
    char note[256];
};

/* Decides for one event. state: the key's current state (borrowed, NULL when unknown);
 * firing: 1 for firing, 0 for resolved; now in ms; p: timing; has_reopen: the rule has a
 * reopen list. Fills out (out->state is new; release with corr_decision_clear). Pure. */
void corr_decide(json_t *state, const char *key, const char *rule, int firing, int64_t now,
                 const struct rule_corr *p, int has_reopen, struct corr_decision *out);
void corr_decision_clear(struct corr_decision *d);

/* ---- in-memory state store (dry run, tests) ----------------------------------------------- */

typedef struct corr_mem corr_mem_t;
corr_mem_t *corr_mem_new(void);
void corr_mem_free(corr_mem_t *m);
/* The store interface over m (m must outlive its use). */
struct plan_corr_store corr_mem_store(corr_mem_t *m);
/* All states by key (borrowed). */
json_t *corr_mem_states(corr_mem_t *m);

/* ---- the pipeline ------------------------------------------------------------------------ */

/* Runs one event through the rule set: every matching rule (first match, then those after a
 * continue) gives one plan — its key rendered, its decision taken against cs (the new state
 * is stored at once; results of the plan's steps are stored as they come back) and the
 * phase's list attached. now: the time of the decision (ms). Returns 0 with *plans (malloc'd
 * array of new plans, free each with plan_free and the array with free) and *n (0 when no
 * rule matched), or -1 with *err (malloc'd) when the state store failed. */
/* corr_process that also appends, to tried (borrowed array, may be NULL), every rule it
 * evaluated for the event in order: {"rule", "where" (file:line), "matched"}. Rules for other
 * sources are not tried; rules after a match without continue are not tried. */
int corr_process_traced(rules_t *r, const struct rules_input *in,
                        const struct plan_corr_store *cs, int64_t now, plan_t ***plans,
                        size_t *n, json_t *tried, char **err);
int corr_process(rules_t *r, const struct rules_input *in, const struct plan_corr_store *cs,
                 int64_t now, plan_t ***plans, size_t *n, char **err);

/* Renders a rule's correlation key for an event (its key template, or the event's own key
 * when the rule has none or it renders empty). Returns a malloc'd string, "" when there is
 * no key, or NULL on a render failure (*err malloc'd). */
char *corr_render_key(const rules_t *r, const struct rule *ru, json_t *event, json_t *captures,
                      char **err);

#endif
