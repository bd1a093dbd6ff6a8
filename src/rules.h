/* rules: rule files (the .yaml files of rules/, in file-name order; rules in document order)
 * → an immutable, reference-counted rule set. Evaluating an event finds the matching rules
 * the way OpenSMTPD's ruleset does — a flat ordered list, first match wins unless the rule
 * says continue. Conditions (regex, equals, exists, in, gt/ge/lt/le, all/any/not over event
 * fields, request headers and the source), templates and regexes are compiled once at load.
 * Evaluation does no I/O; correlation and plans are built from a match by correlate.c. */
#ifndef TB_RULES_H
#define TB_RULES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "plan.h"
#include "tmpl.h"
#include "yamlx.h"

typedef struct rules rules_t;
struct rule;

enum rule_phase { RULE_ACTIONS = 0, RULE_OPEN, RULE_REPEAT, RULE_RESOLVE, RULE_REOPEN,
                  RULE_PHASES };

/* Correlation timing of a rule: the config's defaults unless the rule overrides them. */
struct rule_corr {
    int64_t reopen_window_ms;   /* a firing this soon after completion runs reopen */
    int64_t min_interval_ms;    /* repeats closer than this are suppressed */
    int64_t flap_window_ms;     /* a resolve waits this long for a new firing */
};

struct rules_opts {
    const char *path;                 /* a folder (its *.yaml, *.yml), one file, or a glob */
    const char *templates;            /* templates folder, or NULL */
    json_t *vars;                     /* borrowed; NULL = {} */
    const struct tb_source *sources;  /* configured sources: names checked; NULL = not checked */
    size_t nsources;
    struct rule_corr corr;            /* defaults */
    size_t template_output;           /* bytes; 0 = default */
};

/* Loads and compiles every rule file under o->path and the templates folder. Problems (and
 * warnings: template variables nothing provides) go to diags as file:line:col. Returns a new
 * rule set (one reference), or NULL when anything failed. */
rules_t *rules_load(const struct rules_opts *o, yamlx_diags_t *diags);
/* The same from one rule document in memory (origin names it in messages). */
rules_t *rules_load_text(const char *origin, const char *text, const struct rules_opts *o,
                         yamlx_diags_t *diags);
/* Takes another reference; returns r. Thread-safe. */
rules_t *rules_ref(rules_t *r);
/* Drops a reference; the last frees the set. NULL is a no-op. Thread-safe. */
void rules_unref(rules_t *r);
/* For plan keep/release callbacks (ud is a rules_t *). */
void rules_release(void *r);

size_t rules_count(const rules_t *r);
size_t rules_file_count(const rules_t *r);
size_t rules_template_count(const rules_t *r);
const plan_tmpls_t *rules_templates(const rules_t *r);
json_t *rules_vars(const rules_t *r);        /* borrowed */
size_t rules_template_output(const rules_t *r);

/* What evaluation looks at. All borrowed. */
struct rules_input {
    json_t *event;            /* a normalised event (adapter.h) */
    json_t *headers;          /* request headers, lowercased names → strings; may be NULL */
    const char *source;       /* the source's name */
};

enum rules_match { RULES_MATCH, RULES_NOMATCH };

/* Evaluates the rules from index from on, in order. MATCH: *index is the first matching
 * rule and *captures a new object of its named captures. NOMATCH when none from there on.
 * A regex that hits a PCRE2 limit counts as not matching (logged, counted). Thread-safe. */
enum rules_match rules_next(const rules_t *r, const struct rules_input *in, size_t from,
                            size_t *index, json_t **captures);

const struct rule *rules_at(const rules_t *r, size_t i);
/* The rule named name, or NULL. */
const struct rule *rules_find(const rules_t *r, const char *name);
/* The compiled step (rule, ref) of the set, or NULL (a plan_resolver find callback; ud is
 * the rules_t *). */
const struct plan_step *rules_find_step(void *r, const char *rule, const char *ref);

const char *rule_name(const struct rule *ru);
/* 1 when the rule applies to events of that source (its sources: list, or every source). */
int rule_for_source(const struct rule *ru, const char *source);
/* "file:line" where the rule starts (borrowed). */
const char *rule_where(const struct rule *ru);
int rule_continue(const struct rule *ru);
/* 1 when the rule has lifecycle lists (open/repeat/resolve/reopen), 0 for plain actions. */
int rule_lifecycle(const struct rule *ru);
/* The compiled key template, or NULL (the event's own key). */
const tmpl_t *rule_key(const struct rule *ru);
/* The compiled status template (renders "firing" or "resolved"), or NULL: the event's. */
const tmpl_t *rule_status(const struct rule *ru);
/* The action list of a phase, or NULL when the rule does not define it. */
const struct plan_steps *rule_steps(const struct rule *ru, enum rule_phase ph);
const struct rule_corr *rule_corr(const struct rule *ru);
const char *rule_phase_name(enum rule_phase ph);

/* Regex matches that hit a PCRE2 limit since start (counted as no match). */
uint64_t rules_regex_limit_hits(void);
/* Called (from any thread) on each such hit with the rule's name; NULL to remove. */
void rules_set_limit_hook(void (*fn)(const char *rule, void *ud), void *ud);

#endif
