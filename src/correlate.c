/* correlate: the correlation state machine, the in-memory state store and the event → plan
 * pipeline; see correlate.h. State per key (JSON):
 *   {key, rule, status: open|resolving|completed, gen, count, opened_at, last_fired_at,
 *    last_action_at, resolved_at, reopened_at, resolve_due, job_guid, job_request_number,
 *    tasks: {name: guid}}
 * gen counts transitions; a deferred resolve runs only while the key is still resolving with
 * the gen it was made for (plan_begin), so a firing in the flap window cancels it. */
#include "correlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "config.h"

static const char *const action_names[] = {"none", "open", "repeat", "suppress", "resolve",
                                           "reopen", "flap"};

const char *corr_action_name(enum corr_action a)
{
    return (unsigned)a < sizeof action_names / sizeof action_names[0] ? action_names[a] : "?";
}

static json_int_t corr_int(json_t *state, const char *k)
{
    return json_integer_value(json_object_get(state, k));
}

static void corr_set_int(json_t *state, const char *k, int64_t v)
{
    json_object_set_new(state, k, json_integer((json_int_t)v));
}

void corr_decision_clear(struct corr_decision *d)
{
    json_decref(d->state);
    d->state = NULL;
}

void corr_decide(json_t *state, const char *key, const char *rule, int firing, int64_t now,
                 const struct rule_corr *p, int has_reopen, struct corr_decision *out)
{
    memset(out, 0, sizeof *out);
    const char *status = json_string_value(json_object_get(state, "status"));
    int64_t gen = state ? corr_int(state, "gen") : 0;
    char d[32];
    out->action = CORR_NONE;
    if (!firing) {
        if (status && strcmp(status, "open") == 0) {
            out->action = CORR_RESOLVE;
            out->phase = RULE_RESOLVE;
            out->has_phase = 1;
            out->state = json_deep_copy(state);
            out->gen = gen + 1;
            corr_set_int(out->state, "gen", out->gen);
            if (p->flap_window_ms > 0) {
                out->deferred = 1;
                out->not_before = now + p->flap_window_ms;
                json_object_set_new(out->state, "status", json_string("resolving"));
                corr_set_int(out->state, "resolve_due", out->not_before);
                config_format_duration(p->flap_window_ms, d);
                snprintf(out->note, sizeof out->note,
                         "resolved: held for flap_window %s, cancelled if the alarm fires again "
                         "before",
                         d);
            } else {
                json_object_set_new(out->state, "status", json_string("completed"));
                corr_set_int(out->state, "resolved_at", now);
                snprintf(out->note, sizeof out->note, "resolved: completing what the key opened");
            }
        } else if (status && strcmp(status, "resolving") == 0) {
            snprintf(out->note, sizeof out->note, "resolved again while a resolve waits: nothing "
                                                  "to do");
        } else {
            snprintf(out->note, sizeof out->note, "resolved with no open job for this key: "
                                                  "nothing to do");
        }
        return;
    }
    if (status && strcmp(status, "resolving") == 0) {
        out->action = CORR_FLAP;
        out->state = json_deep_copy(state);
        out->gen = gen + 1;
        corr_set_int(out->state, "gen", out->gen);
        json_object_set_new(out->state, "status", json_string("open"));
        json_object_del(out->state, "resolve_due");
        corr_set_int(out->state, "last_fired_at", now);
        corr_set_int(out->state, "count", corr_int(state, "count") + 1);
        snprintf(out->note, sizeof out->note, "fired again within flap_window: one continuing "
                                              "alarm, the pending resolve is cancelled");
        return;
    }
    if (status && strcmp(status, "open") == 0) {
        out->state = json_deep_copy(state);
        out->gen = gen;
        corr_set_int(out->state, "last_fired_at", now);
        corr_set_int(out->state, "count", corr_int(state, "count") + 1);
        int64_t last = corr_int(state, "last_action_at");
        if (p->min_interval_ms > 0 && now - last < p->min_interval_ms) {
            out->action = CORR_SUPPRESS;
            config_format_duration(p->min_interval_ms, d);
            snprintf(out->note, sizeof out->note, "repeat within min_interval %s: suppressed", d);
            return;
        }
        out->action = CORR_REPEAT;
        out->phase = RULE_REPEAT;
        out->has_phase = 1;
        corr_set_int(out->state, "last_action_at", now);
        snprintf(out->note, sizeof out->note, "repeat: the key is already open");
        return;
    }
    if (status && strcmp(status, "completed") == 0 && has_reopen && p->reopen_window_ms > 0 &&
        now - corr_int(state, "resolved_at") <= p->reopen_window_ms) {
        out->action = CORR_REOPEN;
        out->phase = RULE_REOPEN;
        out->has_phase = 1;
        out->state = json_deep_copy(state);
        out->gen = gen + 1;
        corr_set_int(out->state, "gen", out->gen);
        json_object_set_new(out->state, "status", json_string("open"));
        corr_set_int(out->state, "reopened_at", now);
        corr_set_int(out->state, "last_fired_at", now);
        corr_set_int(out->state, "last_action_at", now);
        corr_set_int(out->state, "count", 1);
        config_format_duration(p->reopen_window_ms, d);
        snprintf(out->note, sizeof out->note, "fired within reopen_window %s of completion: "
                                              "reopen", d);
        return;
    }
    out->action = CORR_OPEN;
    out->phase = RULE_OPEN;
    out->has_phase = 1;
    /* Ids of an earlier incarnation stay until the open plan runs (plan_begin clears them),
     * so a resolve still waiting in the key's lane completes the right job. */
    out->state = state ? json_deep_copy(state) : json_object();
    out->gen = gen + 1;
    json_object_set_new(out->state, "key", json_string(key ? key : ""));
    json_object_set_new(out->state, "rule", json_string(rule ? rule : ""));
    json_object_set_new(out->state, "status", json_string("open"));
    corr_set_int(out->state, "gen", out->gen);
    corr_set_int(out->state, "count", 1);
    corr_set_int(out->state, "opened_at", now);
    corr_set_int(out->state, "last_fired_at", now);
    corr_set_int(out->state, "last_action_at", now);
    json_object_del(out->state, "resolved_at");
    json_object_del(out->state, "reopened_at");
    snprintf(out->note, sizeof out->note, status ? "fired after completion: opening anew"
                                                 : "first firing: opening");
}

/* ---- in-memory store ---------------------------------------------------------------------- */

struct corr_mem {
    json_t *states;
};

corr_mem_t *corr_mem_new(void)
{
    corr_mem_t *m = calloc(1, sizeof *m);
    if (m && !(m->states = json_object())) {
        free(m);
        return NULL;
    }
    return m;
}

void corr_mem_free(corr_mem_t *m)
{
    if (!m)
        return;
    json_decref(m->states);
    free(m);
}

json_t *corr_mem_states(corr_mem_t *m)
{
    return m->states;
}

static json_t *mem_get(void *ud, const char *key)
{
    corr_mem_t *m = ud;
    json_t *s = json_object_get(m->states, key);
    return s ? json_deep_copy(s) : NULL;
}

static int mem_put(void *ud, const char *key, json_t *state)
{
    corr_mem_t *m = ud;
    json_t *copy = json_deep_copy(state);
    return copy ? json_object_set_new(m->states, key, copy) : -1;
}

struct plan_corr_store corr_mem_store(corr_mem_t *m)
{
    struct plan_corr_store cs = {mem_get, mem_put, m};
    return cs;
}

/* ---- pipeline ----------------------------------------------------------------------------- */

char *corr_render_key(const rules_t *r, const struct rule *ru, json_t *event, json_t *captures,
                      char **err)
{
    *err = NULL;
    char *key = NULL;
    if (rule_key(ru)) {
        json_t *ctx = plan_context(event, captures, rules_vars(r));
        struct tmpl_limits lim = {4096, 0};
        struct tmpl_error te;
        key = ctx ? tmpl_render(rule_key(ru), ctx, 0, &lim, &te) : NULL;
        json_decref(ctx);
        if (!key) {
            *err = util_asprintf("key: %s", ctx ? te.msg : "out of memory");
            return NULL;
        }
        /* Keys are compared as text: trim the whitespace a template leaves around. */
        size_t n = strlen(key), lead = 0;
        while (n > 0 && (key[n - 1] == ' ' || key[n - 1] == '\n' || key[n - 1] == '\t'))
            key[--n] = '\0';
        while (key[lead] == ' ' || key[lead] == '\n' || key[lead] == '\t')
            lead++;
        memmove(key, key + lead, n - lead + 1);
        if (*key)
            return key;
        free(key);
    }
    const char *ek = json_string_value(json_object_get(event, "key"));
    return util_strdup(ek ? ek : "");
}

/* Applies a rule's status template: "firing" or "resolved" decide, anything else keeps
 * the event's own status (with a note). */
static void corr_rule_status(const rules_t *r, const struct rule *ru, json_t *event,
                             json_t *captures, int *firing, char *note, size_t notelen)
{
    json_t *ctx = plan_context(event, captures, rules_vars(r));
    struct tmpl_limits lim = {256, 0};
    struct tmpl_error te;
    char *s = ctx ? tmpl_render(rule_status(ru), ctx, 0, &lim, &te) : NULL;
    json_decref(ctx);
    if (s && strcmp(s, "firing") == 0)
        *firing = 1;
    else if (s && strcmp(s, "resolved") == 0)
        *firing = 0;
    else
        snprintf(note, notelen, "status template gave '%.40s', not firing or resolved: the "
                                "event's status is used", s ? s : "");
    free(s);
}

static int push_plan(plan_t ***v, size_t *n, plan_t *p)
{
    plan_t **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    *v = nv;
    nv[(*n)++] = p;
    return 0;
}

/* Appends the rules of [from, to) that apply to the event's source to tried, as not matched,
 * then rule `to` as matched when matched. */
static void corr_tried(rules_t *r, const struct rules_input *in, json_t *tried, size_t from,
                       size_t to, int matched)
{
    if (!tried)
        return;
    for (size_t i = from; i < to && i < rules_count(r); i++) {
        const struct rule *ru = rules_at(r, i);
        if (rule_for_source(ru, in->source))
            json_array_append_new(tried, json_pack("{s:s, s:s, s:b}", "rule", rule_name(ru),
                                                   "where", rule_where(ru), "matched", 0));
    }
    if (matched && to < rules_count(r))
        json_array_append_new(tried, json_pack("{s:s, s:s, s:b}", "rule",
                                               rule_name(rules_at(r, to)), "where",
                                               rule_where(rules_at(r, to)), "matched", 1));
}

int corr_process(rules_t *r, const struct rules_input *in, const struct plan_corr_store *cs,
                 int64_t now, plan_t ***plans, size_t *n, char **err)
{
    return corr_process_traced(r, in, cs, now, plans, n, NULL, err);
}

int corr_process_traced(rules_t *r, const struct rules_input *in,
                        const struct plan_corr_store *cs, int64_t now, plan_t ***plans,
                        size_t *n, json_t *tried, char **err)
{
    *plans = NULL;
    *n = 0;
    *err = NULL;
    size_t from = 0, idx = 0;
    json_t *caps = NULL;
    const char *status = json_string_value(json_object_get(in->event, "status"));
    for (;;) {
        if (rules_next(r, in, from, &idx, &caps) != RULES_MATCH) {
            corr_tried(r, in, tried, from, rules_count(r), 0);
            break;
        }
        corr_tried(r, in, tried, from, idx, 1);
        const struct rule *ru = rules_at(r, idx);
        int firing = !(status && strcmp(status, "resolved") == 0);
        char snote[160] = "";
        if (rule_status(ru))
            corr_rule_status(r, ru, in->event, caps, &firing, snote, sizeof snote);
        char *kerr = NULL;
        char *key = corr_render_key(r, ru, in->event, caps, &kerr);
        struct plan_ctx ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.rule = rule_name(ru);
        ctx.event = in->event;
        ctx.captures = caps;
        ctx.vars = rules_vars(r);
        ctx.max_output = rules_template_output(r);
        ctx.phase = "actions";
        ctx.status = firing ? "firing" : "resolved";
        const struct plan_steps *steps = NULL;
        struct corr_decision d;
        memset(&d, 0, sizeof d);
        char note[512] = "";
        if (!key) {
            snprintf(note, sizeof note, "%s: nothing done", kerr ? kerr : "key failed");
        } else if (!rule_lifecycle(ru)) {
            steps = rule_steps(ru, RULE_ACTIONS);
            ctx.key = *key ? key : NULL;
        } else if (!*key) {
            if (firing) {
                steps = rule_steps(ru, RULE_OPEN);
                ctx.phase = "open";
                snprintf(note, sizeof note, "no correlation key: opening without correlation");
            } else {
                snprintf(note, sizeof note, "resolved without a correlation key: nothing to do");
            }
        } else {
            json_t *state = cs && cs->get ? cs->get(cs->ud, key) : NULL;
            corr_decide(state, key, rule_name(ru), firing, now, rule_corr(ru),
                        rule_steps(ru, RULE_REOPEN) != NULL, &d);
            json_decref(state);
            if (d.state && cs && cs->put && cs->put(cs->ud, key, d.state) < 0) {
                *err = util_asprintf("correlation state for key '%s' could not be stored", key);
                corr_decision_clear(&d);
                free(key);
                free(kerr);
                json_decref(caps);
                for (size_t i = 0; i < *n; i++)
                    plan_free((*plans)[i]);
                free(*plans);
                *plans = NULL;
                *n = 0;
                return -1;
            }
            ctx.key = key;
            ctx.correlated = 1;
            ctx.gen = d.gen;
            ctx.deferred = d.deferred;
            ctx.not_before = d.not_before;
            if (d.has_phase) {
                ctx.phase = rule_phase_name(d.phase);
                steps = rule_steps(ru, d.phase);
                if (!steps)
                    snprintf(note, sizeof note, "%s; the rule has no %s list", d.note, ctx.phase);
            } else {
                ctx.phase = corr_action_name(d.action);
            }
            if (!*note)
                snprintf(note, sizeof note, "%s", d.note);
        }
        if (*snote) {
            size_t l = strlen(note);
            snprintf(note + l, sizeof note - l, "%s%s", l ? "; " : "", snote);
        }
        if (steps && steps->ignore)
            snprintf(note, sizeof note, "ignored by rule '%s'", rule_name(ru));
        ctx.note = *note ? note : NULL;
        plan_t *p = plan_new(&ctx, steps, rules_ref(r), rules_release);
        corr_decision_clear(&d);
        free(key);
        free(kerr);
        json_decref(caps);
        caps = NULL;
        if (!p || push_plan(plans, n, p) < 0) {
            plan_free(p);
            *err = util_strdup("out of memory");
            for (size_t i = 0; i < *n; i++)
                plan_free((*plans)[i]);
            free(*plans);
            *plans = NULL;
            *n = 0;
            return -1;
        }
        if (!rule_continue(ru))
            break;
        from = idx + 1;
    }
    return 0;
}
