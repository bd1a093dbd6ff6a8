/* plan: what one matched rule wants done for one event — an ordered list of steps (look-ups,
 * TrackplanFM operations by their ops.h name, send_mail) with Mustache templates compiled at
 * load, rendered one step at a time against the event, captures, vars, the key's correlation
 * state and the results so far. The same code serves the dry run (`trackbridge test`, with an
 * in-memory fake TrackplanFM) and the delivery engine (real client, SQLite store). Plans are
 * JSON-serialisable. Bodies are built with jansson from rendered strings, never pasted. */
#ifndef TB_PLAN_H
#define TB_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tmpl.h"
#include "yamlx.h"

/* ---- templates folder ------------------------------------------------------------------ */

typedef struct plan_tmpls plan_tmpls_t;

/* Loads every file of dir (NULL: an empty set) as a template named after the file, less a
 * ".mustache" suffix; each is compiled once to check it (errors as file:line:col into diags;
 * the caller tells success by diags->errors). Returns a new set, or NULL when the folder
 * cannot be read. */
plan_tmpls_t *plan_tmpls_load(const char *dir, yamlx_diags_t *diags);
void plan_tmpls_free(plan_tmpls_t *t);
size_t plan_tmpls_count(const plan_tmpls_t *t);
/* The text of template name (borrowed), or NULL. */
const char *plan_tmpls_text(const plan_tmpls_t *t, const char *name);
/* The set's own copy of name (borrowed, lives as long as the set), or NULL. */
const char *plan_tmpls_name(const plan_tmpls_t *t, const char *name);
/* The file a template came from (borrowed), or NULL. */
const char *plan_tmpls_file(const plan_tmpls_t *t, const char *name);
/* Partial loader for tmpl_compile over a set (ud = the set). */
char *plan_tmpls_partial(const char *name, void *ud);

/* ---- compiled action lists ------------------------------------------------------------- */

struct plan_step;   /* one compiled step (opaque) */

/* A compiled action list: the steps in execution order (a look-up's fallback_steps are laid
 * out after it, guarded by "only when the look-up found nothing"). */
struct plan_steps {
    struct plan_step **v;
    size_t n;
    int ignore;       /* the list is [ {op: ignore} ]: the event is dropped on purpose */
};

struct plan_compile_ctx {
    const yamlx_doc_t *doc;        /* positions of the rule file */
    yamlx_diags_t *diags;
    const plan_tmpls_t *tmpls;     /* for partials and send_mail templates; may be NULL */
    const char *where;             /* e.g. "rule 'disk-full' open" for messages */
    const char *prefix;            /* ref prefix, e.g. "open" */
};

/* Compiles a YAML action list (borrowed; references are kept) into out. Every problem goes to
 * diags at its file:line:col. Returns 0, or -1 when the list has errors (out is then empty). */
int plan_steps_compile(json_t *list, const struct plan_compile_ctx *cx, struct plan_steps *out);
/* Frees what plan_steps_compile built (not out itself). */
void plan_steps_clear(struct plan_steps *s);

/* Introspection for `check` warnings and docs. */
const char *plan_step_op(const struct plan_step *s);       /* "create_job", "send_mail" */
const char *plan_step_ref(const struct plan_step *s);      /* "open/1/fallback_steps/0" */
const char *plan_step_lookup(const struct plan_step *s);   /* look-up name or NULL */
const char *plan_step_save_as(const struct plan_step *s);  /* save_as name or NULL */
json_t *plan_step_def(const struct plan_step *s);          /* the YAML mapping, borrowed */
/* Calls fn for every template of the step with the YAML string node it came from, or NULL
 * and the name of the template in the templates folder (send_mail template:). */
void plan_step_each_tmpl(const struct plan_step *s,
                         void (*fn)(const tmpl_t *t, json_t *node, const char *tname, void *ud),
                         void *ud);

/* ---- plans --------------------------------------------------------------------------- */

typedef struct plan plan_t;

/* Context a rule match gives a plan. Borrowed; the plan takes references / copies. */
struct plan_ctx {
    const char *rule;
    const char *phase;         /* "actions", "open", "repeat", "resolve", "reopen" */
    const char *key;           /* correlation key (may be NULL: not correlated) */
    const char *status;        /* "firing" or "resolved" as decided (a rule may override the
                                  event's); NULL = the event's */
    int correlated;            /* results update the key's correlation state */
    json_t *event;
    json_t *captures;          /* object; NULL = {} */
    json_t *vars;              /* object; NULL = {} */
    int64_t not_before;        /* ms; 0 = at once (deferred resolves set it) */
    int64_t gen;               /* correlation generation the plan was made for */
    int deferred;              /* runs only if the key is still resolving with this gen */
    const char *note;          /* why this plan (decision), may be NULL */
    size_t max_output;         /* template output limit; 0 = default */
};

/* Builds a plan over a compiled list (borrowed: keep is a reference the plan holds on the
 * owner of steps — released with release(keep) when the plan is freed; both may be NULL).
 * Returns a new plan or NULL on OOM. */
plan_t *plan_new(const struct plan_ctx *ctx, const struct plan_steps *steps, void *keep,
                 void (*release)(void *keep));
void plan_free(plan_t *p);

const char *plan_rule(const plan_t *p);
const char *plan_phase(const plan_t *p);
const char *plan_key(const plan_t *p);     /* NULL when not correlated */
const char *plan_status(const plan_t *p);  /* "firing" or "resolved" as decided */
const char *plan_note(const plan_t *p);    /* may be NULL */
json_t *plan_event(const plan_t *p);       /* borrowed */
json_t *plan_captures(const plan_t *p);    /* borrowed */
size_t plan_step_count(const plan_t *p);
const struct plan_step *plan_step_at(const plan_t *p, size_t i);
int64_t plan_not_before(const plan_t *p);
int plan_ignored(const plan_t *p);         /* the rule said ignore */
/* Appends a sentence to the plan's note. */
void plan_add_note(plan_t *p, const char *note);

/* The render context of a match before any step: the event's fields at the top level, the
 * captures there too where no event field has the name, and "event", "captures", "vars".
 * Returns a new object (values borrowed by reference), NULL on OOM. Steps also see "corr",
 * "lookup", "result", "rule" and "corr_key". */
json_t *plan_context(json_t *event, json_t *captures, json_t *vars);

/* Serialises a plan (steps as their YAML definitions with refs). Returns new JSON. */
json_t *plan_to_json(const plan_t *p);

/* How plan_from_json finds compiled steps again. find returns the compiled step for (rule,
 * ref) when it still exists, or NULL; a step whose definition changed (or vanished) since is
 * compiled anew from the stored definition, with tmpls for partials. keep/release as for
 * plan_new. vars: the current config's vars (borrowed). */
struct plan_resolver {
    const struct plan_step *(*find)(void *ud, const char *rule, const char *ref);
    void *ud;
    const plan_tmpls_t *tmpls;
    json_t *vars;
    void *keep;
    void (*release)(void *keep);
};
/* Rebuilds a plan from plan_to_json output (borrowed). NULL with *err (malloc'd) when the
 * JSON is not a plan or a stored step no longer compiles. On failure keep is released. */
plan_t *plan_from_json(json_t *js, const struct plan_resolver *r, char **err);

/* ---- running steps ------------------------------------------------------------------- */

enum plan_render {
    PLAN_RENDER_OK,      /* *req is the request to send */
    PLAN_RENDER_SKIP,    /* nothing to do for this step (branch not taken, automatic mail) */
    PLAN_RENDER_EMPTY,   /* a look-up whose filter value rendered empty: not sent, apply it
                            with a NULL result (the fallback applies) */
    PLAN_RENDER_FAIL     /* permanent: bad rendered value, missing id; *err says why */
};

/* Results so far of a running plan: {"lookup": {name: record}, "result": {name: value},
 * "missing": {name: true}}. Start with plan_results_new() and pass it to every call. */
json_t *plan_results_new(void);

/* Renders step i with the key's correlation state (borrowed, may be NULL) and the results so
 * far (borrowed). OK: *req = new {"op", "method", "path", "id"?, "query"?, "body"?} (path
 * with the id escaped in; query values for the client to URL-encode; for send_mail only
 * "op" and "body": {to, cc?, subject, text, in_reply_to?, references?}). SKIP/EMPTY:
 * *reason (may be NULL) gets a static string. FAIL: *err malloc'd. */
enum plan_render plan_step_render(const plan_t *p, size_t i, json_t *corr, json_t *results,
                                  json_t **req, const char **reason, char **err);
/* Applies step i's outcome: result (borrowed; NULL or JSON null when nothing came back or the
 * step was not sent) goes into results (look-up record or its fallback, save_as value) and,
 * for a correlated plan, into corr (borrowed, modified: job_guid, job_request_number,
 * tasks.<name>). Returns 0, or -1 with *err when a look-up found nothing and the step has no
 * fallback (a permanent failure of the plan). */
int plan_step_apply(const plan_t *p, size_t i, json_t *result, json_t *results, json_t *corr,
                    char **err);

/* Correlation state as the executor sees it: get returns a new reference or NULL (unknown
 * key); put stores state (borrowed), 0 or -1. */
struct plan_corr_store {
    json_t *(*get)(void *ud, const char *key);
    int (*put)(void *ud, const char *key, json_t *state);
    void *ud;
};

/* Before the first step of a plan (corr: the key's state, borrowed, may be NULL; store it
 * after). A deferred plan (a resolve held back by flap_window) gives 1 when still due (corr
 * moves from resolving to completed) and 0 when a later firing cancelled it. An open plan
 * clears the job ids of the key's previous incarnation. Other plans give 1. */
int plan_begin(const plan_t *p, json_t *corr, int64_t now);

enum plan_call { PLAN_CALL_OK, PLAN_CALL_RETRY, PLAN_CALL_FAIL };

/* Performs one rendered request (borrowed). OK: *result new (JSON null when the operation
 * returns nothing). RETRY: try later; FAIL: permanent. *err malloc'd on RETRY/FAIL. */
struct plan_backend {
    enum plan_call (*call)(void *ud, json_t *req, json_t **result, char **err);
    void *ud;
};

enum plan_outcome { PLAN_DONE, PLAN_CANCELLED, PLAN_RETRY, PLAN_FAILED };

/* Runs every step in order through be, reading and writing the key's state through cs (may
 * be NULL). Each step is appended to trace (may be NULL) as its request plus "result" or
 * "skipped"/"note". DONE, CANCELLED (deferred plan no longer due), RETRY or FAILED (*err). */
enum plan_outcome plan_run(const plan_t *p, const struct plan_backend *be,
                           const struct plan_corr_store *cs, int64_t now, json_t *trace,
                           char **err);

/* ---- the dry run's fake TrackplanFM, and the look-up cache ---------------------------- */

/* Creates return sequential GUIDs "00000000-0000-4000-8000-00000000000N" (one counter) and
 * numbers 1, 2, ... (another); operations on a GUID return it; look-ups find nothing (a dry
 * run never calls the network); send_mail returns {"queued": true}. Zero it to start. */
struct plan_fake {
    unsigned guids;
    unsigned numbers;
};
struct plan_backend plan_fake_backend(struct plan_fake *f);

typedef struct plan_cache plan_cache_t;
/* A TTL cache of look-up results (GET operations) in front of another backend; thread-safe.
 * max_entries 0 disables caching. */
plan_cache_t *plan_cache_new(int64_t ttl_ms, size_t max_entries);
void plan_cache_free(plan_cache_t *c);
/* A backend that answers GETs from c when fresh and otherwise calls inner (borrowed: it must
 * outlive the returned backend), caching successful answers. */
struct plan_backend plan_cache_backend(plan_cache_t *c, const struct plan_backend *inner);
/* Hits and misses so far. */
void plan_cache_stats(const plan_cache_t *c, uint64_t *hits, uint64_t *misses);

#endif
