/* rules: loading, compiling and evaluating rule files; see rules.h. A rule set is built once
 * (conditions, regexes, templates, action lists) and then only read, from any thread; a
 * reload builds a new set and swaps it whole. */
#include "rules.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "jpath.h"
#include "regex.h"
#include "trackplan/ops.h"

#define RULES_MAX_FILES 1000
#define RULES_MAX_FILE_SIZE (4u * 1024 * 1024)
#define RULES_MAX_RULES 100000
#define RULES_MAX_COND_DEPTH 32
#define RULES_MAX_IN 1000

/* ---- conditions --------------------------------------------------------------------------- */

enum cond_kind { C_ALL, C_ANY, C_NOT, C_TEST, C_SOURCE };
enum cmp_op { CMP_GT, CMP_GE, CMP_LT, CMP_LE, CMP_N };

struct operand {
    json_type type;     /* JSON_STRING, JSON_INTEGER/JSON_REAL (number), JSON_TRUE (bool), NULL */
    char *s;            /* strings */
    size_t len;
    double num;         /* numbers, and strings that read as numbers */
    int is_num;
    int b;              /* booleans */
};

struct cond {
    enum cond_kind kind;
    struct cond **kids;
    size_t n;
    int captures;                 /* this subtree sets named captures */
    /* C_TEST */
    jpath_t *path;                /* field: */
    int wildcard;
    char *header;                 /* header: (lowercased) */
    rx_t *rx;
    char **names;                 /* the regex's named groups */
    size_t nnames;
    int has_eq;
    struct operand eq;
    int has_exists, exists;
    struct operand *in;
    size_t nin;
    int has_cmp[CMP_N];
    double cmp[CMP_N];
    /* C_SOURCE */
    char **srcs;
    size_t nsrcs;
};

struct rule {
    char *name;
    char *where;                  /* file:line */
    char **sources;               /* NULL: every source */
    size_t nsources;
    struct cond *when;            /* NULL: always */
    tmpl_t *key;
    tmpl_t *status;               /* overrides the event's status for correlation, or NULL */
    int cont;
    int lifecycle;
    int has[RULE_PHASES];
    struct plan_steps phases[RULE_PHASES];
    struct rule_corr corr;
    /* While loading only: the document the rule came from, for the warnings pass. */
    size_t doc;
    json_t *key_node;
};

struct rules {
    atomic_int refs;
    struct rule *v;
    size_t n;
    size_t nfiles;
    plan_tmpls_t *tmpls;
    json_t *vars;
    size_t template_output;
};

static atomic_uint_fast64_t rules_limit_hits;
static pthread_mutex_t rules_hook_mu = PTHREAD_MUTEX_INITIALIZER;
static void (*rules_hook)(const char *rule, void *ud);
static void *rules_hook_ud;

uint64_t rules_regex_limit_hits(void)
{
    return atomic_load(&rules_limit_hits);
}

void rules_set_limit_hook(void (*fn)(const char *rule, void *ud), void *ud)
{
    pthread_mutex_lock(&rules_hook_mu);
    rules_hook = fn;
    rules_hook_ud = ud;
    pthread_mutex_unlock(&rules_hook_mu);
}

static void rules_limit_hit(const char *rule)
{
    atomic_fetch_add(&rules_limit_hits, 1);
    log_warn("regex limit hit: counted as no match", "rule", rule);
    pthread_mutex_lock(&rules_hook_mu);
    void (*fn)(const char *, void *) = rules_hook;
    void *ud = rules_hook_ud;
    pthread_mutex_unlock(&rules_hook_mu);
    if (fn)
        fn(rule, ud);
}

static void operand_clear(struct operand *o)
{
    free(o->s);
    memset(o, 0, sizeof *o);
}

static void cond_free(struct cond *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        cond_free(c->kids[i]);
    free(c->kids);
    jpath_free(c->path);
    free(c->header);
    rx_free(c->rx);
    for (size_t i = 0; i < c->nnames; i++)
        free(c->names[i]);
    free(c->names);
    operand_clear(&c->eq);
    for (size_t i = 0; i < c->nin; i++)
        operand_clear(&c->in[i]);
    free(c->in);
    for (size_t i = 0; i < c->nsrcs; i++)
        free(c->srcs[i]);
    free(c->srcs);
    free(c);
}

/* Does value v (borrowed, NULL when absent) equal the operand? */
static int operand_match(const struct operand *o, json_t *v)
{
    double d;
    switch (o->type) {
    case JSON_NULL:
        return !v || json_is_null(v);
    case JSON_STRING:
        if (json_is_string(v))
            return json_string_length(v) == o->len &&
                   memcmp(json_string_value(v), o->s, o->len) == 0;
        if (json_is_number(v))
            return o->is_num && json_number_value(v) == o->num;
        if (json_is_boolean(v))
            return strcmp(o->s, json_is_true(v) ? "true" : "false") == 0;
        return 0;
    case JSON_INTEGER:
    case JSON_REAL:
        if (json_is_number(v))
            return json_number_value(v) == o->num;
        if (json_is_string(v) && util_parse_double(json_string_value(v), &d) == 0)
            return d == o->num;
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        if (json_is_boolean(v))
            return json_is_true(v) == o->b;
        if (json_is_string(v))
            return strcmp(json_string_value(v), o->b ? "true" : "false") == 0;
        return 0;
    default:
        return 0;
    }
}

static int value_number(json_t *v, double *d)
{
    if (json_is_number(v)) {
        *d = json_number_value(v);
        return 0;
    }
    if (json_is_string(v))
        return util_parse_double(json_string_value(v), d);
    return -1;
}

struct eval {
    const struct rule *rule;
    const struct rules_input *in;
};

/* Applies a test's operators to one selected value. caps: where named captures go (NULL:
 * nowhere; *caps is created on the first capture, so rules that fail allocate nothing). */
static int test_value(const struct eval *ev, const struct cond *c, json_t *v, json_t **caps)
{
    int present = v && !json_is_null(v);
    if (c->has_exists && present != c->exists)
        return 0;
    if (c->has_eq && !operand_match(&c->eq, v))
        return 0;
    if (c->nin) {
        int any = 0;
        for (size_t i = 0; i < c->nin && !any; i++)
            any = operand_match(&c->in[i], v);
        if (!any)
            return 0;
    }
    for (int k = 0; k < CMP_N; k++) {
        if (!c->has_cmp[k])
            continue;
        double d;
        if (!present || value_number(v, &d) < 0)
            return 0;
        if ((k == CMP_GT && !(d > c->cmp[k])) || (k == CMP_GE && !(d >= c->cmp[k])) ||
            (k == CMP_LT && !(d < c->cmp[k])) || (k == CMP_LE && !(d <= c->cmp[k])))
            return 0;
    }
    if (c->rx) {
        if (!present)
            return 0;
        char *owned = NULL;
        const char *s;
        size_t len;
        if (json_is_string(v)) {
            s = json_string_value(v);
            len = json_string_length(v);
        } else {
            owned = jpath_scalar_string(v);
            if (!owned)
                return 0;
            s = owned;
            len = strlen(owned);
        }
        /* Match first without collecting: most subjects do not match, and those cost no
         * allocation. Captures are collected by matching again only on success. */
        enum rx_result r = rx_match(c->rx, s, len, NULL);
        json_t *scratch = NULL;
        if (r == RX_MATCH && c->nnames && caps) {
            scratch = json_object();
            r = scratch ? rx_match(c->rx, s, len, scratch) : RX_ERROR;
        }
        free(owned);
        if (r == RX_LIMIT)
            rules_limit_hit(ev->rule->name);
        if (r != RX_MATCH) {
            json_decref(scratch);
            return 0;
        }
        for (size_t i = 0; scratch && i < c->nnames; i++) {
            json_t *cv = json_object_get(scratch, c->names[i]);
            if (!cv)
                continue;
            if (!*caps && !(*caps = json_object()))
                break;
            json_object_set(*caps, c->names[i], cv);
        }
        json_decref(scratch);
    }
    return 1;
}

struct each_ctx {
    const struct eval *ev;
    const struct cond *c;
    json_t **caps;
    int matched;
};

static int each_cb(json_t *v, void *ud)
{
    struct each_ctx *e = ud;
    if (test_value(e->ev, e->c, v, e->caps)) {
        e->matched = 1;
        return 1;
    }
    return 0;
}

static int cond_eval(const struct eval *ev, const struct cond *c, json_t **caps)
{
    switch (c->kind) {
    case C_ALL:
        for (size_t i = 0; i < c->n; i++)
            if (!cond_eval(ev, c->kids[i], caps))
                return 0;
        return 1;
    case C_ANY:
        for (size_t i = 0; i < c->n; i++) {
            const struct cond *k = c->kids[i];
            if (!k->captures || !caps) {
                if (cond_eval(ev, k, NULL))
                    return 1;
                continue;
            }
            /* A branch's captures count only when the branch holds. */
            json_t *tmp = NULL;
            int ok = cond_eval(ev, k, &tmp);
            if (ok && tmp) {
                if (!*caps)
                    *caps = json_incref(tmp);
                else
                    json_object_update(*caps, tmp);
            }
            json_decref(tmp);
            if (ok)
                return 1;
        }
        return 0;
    case C_NOT:
        return !cond_eval(ev, c->kids[0], NULL);
    case C_SOURCE:
        for (size_t i = 0; i < c->nsrcs; i++)
            if (ev->in->source && strcmp(c->srcs[i], ev->in->source) == 0)
                return 1;
        return 0;
    case C_TEST:
        if (c->header) {
            json_t *h = ev->in->headers ? json_object_get(ev->in->headers, c->header) : NULL;
            if (json_is_array(h)) {
                size_t i;
                json_t *x;
                json_array_foreach(h, i, x)
                    if (test_value(ev, c, x, caps))
                        return 1;
                return 0;
            }
            return test_value(ev, c, h, caps);
        }
        if (!c->wildcard)
            return test_value(ev, c, jpath_first(c->path, ev->in->event), caps);
        struct each_ctx e = {ev, c, caps, 0};
        size_t seen = jpath_each(c->path, ev->in->event, each_cb, &e);
        /* exists: false over a wildcard holds when nothing is selected at all. */
        if (!e.matched && seen == 0 && c->has_exists && !c->exists && !c->has_eq && !c->nin &&
            !c->rx)
            return 1;
        return e.matched;
    }
    return 0;
}

/* ---- compiling ---------------------------------------------------------------------------- */

struct lctx {
    const struct rules_opts *o;
    yamlx_doc_t *doc;
    yamlx_diags_t *diags;
    const plan_tmpls_t *tmpls;
    const char *rule;     /* name, for messages */
};

static void lx_mark(const struct lctx *x, json_t *obj, const char *key, struct yamlx_mark *m)
{
    json_t *v = key ? json_object_get(obj, key) : obj;
    if (v && yamlx_where(x->doc, v, m) == 0)
        return;
    if (key && yamlx_where_member(x->doc, obj, key, m) == 0)
        return;
    yamlx_where(x->doc, obj, m);
}

static void lx_err(const struct lctx *x, json_t *obj, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void lx_err(const struct lctx *x, json_t *obj, const char *key, const char *fmt, ...)
{
    struct yamlx_mark m;
    lx_mark(x, obj, key, &m);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (x->rule)
        yamlx_diag(x->diags, 0, &m, "rule '%s': %s", x->rule, msg);
    else
        yamlx_diag(x->diags, 0, &m, "%s", msg);
}

static int operand_set(struct operand *o, json_t *v)
{
    memset(o, 0, sizeof *o);
    if (json_is_string(v)) {
        o->type = JSON_STRING;
        o->len = json_string_length(v);
        o->s = util_strndup(json_string_value(v), o->len);
        o->is_num = util_parse_double(json_string_value(v), &o->num) == 0;
        return o->s ? 0 : -1;
    }
    if (json_is_number(v)) {
        o->type = JSON_REAL;
        o->num = json_number_value(v);
        return 0;
    }
    if (json_is_boolean(v)) {
        o->type = JSON_TRUE;
        o->b = json_is_true(v);
        return 0;
    }
    if (json_is_null(v)) {
        o->type = JSON_NULL;
        return 0;
    }
    return -1;
}

static void rx_name_cb(const char *name, void *ud)
{
    struct cond *c = ud;
    char **nv = realloc(c->names, (c->nnames + 1) * sizeof *nv);
    if (!nv)
        return;
    c->names = nv;
    if ((c->names[c->nnames] = util_strdup(name)))
        c->nnames++;
}

static struct cond *cond_compile(const struct lctx *x, json_t *node, int depth);

static struct cond *cond_group(const struct lctx *x, json_t *list, enum cond_kind kind,
                               int depth)
{
    struct cond *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->kind = kind;
    size_t n = json_array_size(list);
    c->kids = calloc(n ? n : 1, sizeof *c->kids);
    if (!c->kids) {
        free(c);
        return NULL;
    }
    int bad = 0;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        struct cond *k = cond_compile(x, item, depth + 1);
        if (!k) {
            bad = 1;
            continue;
        }
        c->captures |= k->captures;
        c->kids[c->n++] = k;
    }
    if (bad) {
        cond_free(c);
        return NULL;
    }
    return c;
}

static struct cond *cond_test(const struct lctx *x, json_t *node)
{
    static const char *const keys[] = {"field", "header", "regex", "flags", "equals", "exists",
                                       "in", "gt", "ge", "lt", "le", NULL};
    static const char *const cmp_keys[CMP_N] = {"gt", "ge", "lt", "le"};
    struct cond *c = calloc(1, sizeof *c);
    int bad = 0;
    if (!c)
        return NULL;
    c->kind = C_TEST;
    const char *k;
    json_t *v;
    json_object_foreach(node, k, v) {
        int ok = 0;
        for (const char *const *a = keys; *a; a++)
            ok |= strcmp(*a, k) == 0;
        if (!ok) {
            struct yamlx_mark m;
            yamlx_where_key(x->doc, node, k, &m);
            yamlx_diag(x->diags, 0, &m,
                       "rule '%s': unknown condition key '%s' (field, header, source, regex, "
                       "equals, exists, in, gt, ge, lt, le, all, any, not)",
                       x->rule, k);
            bad = 1;
        }
    }
    json_t *field = json_object_get(node, "field");
    json_t *header = json_object_get(node, "header");
    if ((field != NULL) == (header != NULL)) {
        lx_err(x, node, NULL, "a condition names exactly one of field: or header:");
        bad = 1;
    } else if (field) {
        char err[256] = "";
        size_t errcol = 0;
        if (!json_is_string(field)) {
            lx_err(x, node, "field", "field: expected a path such as labels.severity");
            bad = 1;
        } else if (!(c->path = jpath_compile(json_string_value(field), err, sizeof err,
                                             &errcol))) {
            struct yamlx_mark m;
            yamlx_locate(x->doc, field, errcol, &m);
            yamlx_diag(x->diags, 0, &m, "rule '%s': field: %s", x->rule, err);
            bad = 1;
        } else {
            c->wildcard = jpath_has_wildcard(c->path);
        }
    } else if (!json_is_string(header) || !json_string_length(header)) {
        lx_err(x, node, "header", "header: expected a header name");
        bad = 1;
    } else {
        c->header = util_strdup(json_string_value(header));
        for (char *p = c->header; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    int ops = 0;
    json_t *rx = json_object_get(node, "regex");
    json_t *flags = json_object_get(node, "flags");
    if (flags && !rx) {
        lx_err(x, node, "flags", "flags go with regex:");
        bad = 1;
    }
    if (flags && !json_is_string(flags)) {
        lx_err(x, node, "flags", "flags: expected letters among i, m, s, x");
        bad = 1;
        flags = NULL;
    }
    if (rx) {
        ops++;
        if (!json_is_string(rx)) {
            lx_err(x, node, "regex", "regex: expected a pattern string");
            bad = 1;
        } else {
            char err[256] = "";
            size_t erroff = 0;
            c->rx = rx_compile(json_string_value(rx), flags ? json_string_value(flags) : NULL,
                               err, sizeof err, &erroff);
            if (!c->rx) {
                struct yamlx_mark m;
                if (flags && erroff == 0 && strstr(err, "flag"))
                    lx_mark(x, node, "flags", &m);
                else
                    yamlx_locate(x->doc, rx, erroff, &m);
                yamlx_diag(x->diags, 0, &m, "rule '%s': regex: %s", x->rule, err);
                bad = 1;
            } else {
                rx_each_name(c->rx, rx_name_cb, c);
                c->captures = c->nnames > 0;
            }
        }
    }
    json_t *eq = json_object_get(node, "equals");
    if (eq) {
        ops++;
        c->has_eq = 1;
        if (operand_set(&c->eq, eq) < 0) {
            lx_err(x, node, "equals", "equals: expected a scalar (string, number, boolean, null)");
            bad = 1;
        }
    }
    json_t *ex = json_object_get(node, "exists");
    if (ex) {
        ops++;
        if (!json_is_boolean(ex)) {
            lx_err(x, node, "exists", "exists: expected true or false");
            bad = 1;
        }
        c->has_exists = 1;
        c->exists = json_is_true(ex);
    }
    json_t *in = json_object_get(node, "in");
    if (in) {
        ops++;
        if (!json_is_array(in) || json_array_size(in) == 0 || json_array_size(in) > RULES_MAX_IN) {
            lx_err(x, node, "in", "in: expected a non-empty list of values");
            bad = 1;
        } else {
            c->in = calloc(json_array_size(in), sizeof *c->in);
            size_t i;
            json_t *item;
            json_array_foreach(in, i, item) {
                if (!c->in)
                    break;
                if (operand_set(&c->in[c->nin], item) < 0) {
                    struct yamlx_mark m;
                    yamlx_where_index(x->doc, in, i, &m);
                    yamlx_diag(x->diags, 0, &m, "rule '%s': in: values must be scalars", x->rule);
                    bad = 1;
                    continue;
                }
                c->nin++;
            }
        }
    }
    for (int i = 0; i < CMP_N; i++) {
        json_t *cv = json_object_get(node, cmp_keys[i]);
        if (!cv)
            continue;
        ops++;
        if (!json_is_number(cv)) {
            lx_err(x, node, cmp_keys[i], "%s: expected a number", cmp_keys[i]);
            bad = 1;
            continue;
        }
        c->has_cmp[i] = 1;
        c->cmp[i] = json_number_value(cv);
    }
    if (ops == 0 && !bad) {
        lx_err(x, node, NULL, "a condition needs an operator: regex, equals, exists, in, gt, ge, "
                              "lt or le");
        bad = 1;
    }
    if (bad) {
        cond_free(c);
        return NULL;
    }
    return c;
}

static int rx_source_known(const struct lctx *x, const char *name)
{
    if (!x->o->sources)
        return 1;
    for (size_t i = 0; i < x->o->nsources; i++)
        if (strcmp(x->o->sources[i].name, name) == 0)
            return 1;
    return 0;
}

/* A source name list (string or list of strings) into *out; diagnostics at node. */
static int names_list(const struct lctx *x, json_t *parent, const char *key, char ***out,
                      size_t *n)
{
    json_t *v = json_object_get(parent, key);
    *out = NULL;
    *n = 0;
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if (!(json_is_string(v) || (json_is_array(v) && count > 0))) {
        lx_err(x, parent, key, "%s: expected a source name or a list of them", key);
        return -1;
    }
    *out = calloc(count, sizeof **out);
    if (!*out)
        return -1;
    int bad = 0;
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(item)) {
            struct yamlx_mark m;
            yamlx_where_index(x->doc, v, i, &m);
            yamlx_diag(x->diags, 0, &m, "rule '%s': %s: expected source names", x->rule, key);
            bad = 1;
            continue;
        }
        if (!rx_source_known(x, json_string_value(item))) {
            struct yamlx_mark m;
            if (yamlx_where(x->doc, item, &m) < 0)
                lx_mark(x, parent, key, &m);
            yamlx_diag(x->diags, 0, &m, "rule '%s': unknown source '%s' (not in the "
                                        "configuration's sources)",
                       x->rule, json_string_value(item));
            bad = 1;
        }
        (*out)[(*n)++] = util_strdup(json_string_value(item));
    }
    return bad ? -1 : 0;
}

static struct cond *cond_compile(const struct lctx *x, json_t *node, int depth)
{
    if (depth > RULES_MAX_COND_DEPTH) {
        lx_err(x, node, NULL, "conditions nested too deeply");
        return NULL;
    }
    if (json_is_array(node)) {
        if (json_array_size(node) == 0) {
            lx_err(x, node, NULL, "an empty list of conditions");
            return NULL;
        }
        return cond_group(x, node, C_ALL, depth);
    }
    if (!json_is_object(node)) {
        lx_err(x, node, NULL, "a condition is a mapping (field:/header: with an operator, "
                              "source:, all:, any: or not:)");
        return NULL;
    }
    static const char *const groups[] = {"all", "any", "not", "source"};
    for (int g = 0; g < 4; g++) {
        json_t *v = json_object_get(node, groups[g]);
        if (!v)
            continue;
        if (json_object_size(node) != 1) {
            lx_err(x, node, groups[g], "%s: must be alone in its mapping", groups[g]);
            return NULL;
        }
        if (g == 3) {
            struct cond *c = calloc(1, sizeof *c);
            if (!c)
                return NULL;
            c->kind = C_SOURCE;
            if (names_list(x, node, "source", &c->srcs, &c->nsrcs) < 0) {
                cond_free(c);
                return NULL;
            }
            return c;
        }
        if (g == 2) {
            struct cond *k = cond_compile(x, v, depth + 1);
            if (!k)
                return NULL;
            struct cond *c = calloc(1, sizeof *c);
            if (!c || !(c->kids = calloc(1, sizeof *c->kids))) {
                free(c);
                cond_free(k);
                return NULL;
            }
            c->kind = C_NOT;
            c->kids[0] = k;
            c->n = 1;
            return c; /* captures under not: are never kept */
        }
        if (!json_is_array(v) || json_array_size(v) == 0) {
            lx_err(x, node, groups[g], "%s: expected a non-empty list of conditions", groups[g]);
            return NULL;
        }
        return cond_group(x, v, g == 0 ? C_ALL : C_ANY, depth);
    }
    return cond_test(x, node);
}

/* ---- variable warnings -------------------------------------------------------------------- */

/* Fields some adapter sets on its events (docs/adapters.md, the mail fields of src/mail/):
 * a name outside these, the captures and the namespaces draws a warning. */
static const char *const event_fields[] = {
    "source", "kind", "status", "key", "severity", "title", "text", "labels", "time", "url",
    "site", "raw",
    /* alertmanager, grafana */
    "fingerprint", "annotations", "group", "startsAt", "endsAt", "values", "valueString",
    "dashboardURL", "panelURL", "silenceURL", "imageURL", "orgId", "legacy", "ruleId",
    "ruleName", "ruleUrl", "state", "evalMatches", "imageUrl", "dashboardId", "panelId",
    /* zabbix, json, form */
    "event_id", "recovery_event_id", "trigger_id", "host", "nseverity", "update", "opdata",
    "sender_status", "repeated",
    /* bms */
    "point", "point_name", "alarm_id", "priority", "alarm_class", "value", "units",
    "device_instance", "object_type", "object_instance", "notify_type", "ack_required",
    "end_time",
    /* email */
    "subject", "from", "to", "cc", "reply_to", "date", "message_id", "in_reply_to",
    "references", "body", "body_stripped", "html", "headers", "attachments", "return_path",
    "provider", "ticket_ref", "auto", "auto_reason",
    NULL};

static const char *const corr_fields[] = {"key", "status", "rule", "opened_at", "last_fired_at",
                                          "last_action_at", "resolved_at", "reopened_at",
                                          "resolve_due", "gen", "count", "job_guid",
                                          "job_request_number", "tasks", "ids_gen", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

struct wctx {
    const struct lctx *x;
    const struct rule *ru;
    json_t *caps;          /* capture names of the rule */
    json_t *lookups;       /* defined by earlier steps of the list */
    json_t *results;
    json_t *tasks;         /* create_job_task save_as names, all lists */
    int open_fields;       /* a source with configurable fields: roots are not checked */
    int key_only;          /* the key template: no corr, lookup or result yet */
    json_t *node;          /* the template's YAML node, or NULL */
    const char *tname;     /* or the name of its file in the templates folder */
    int sections;          /* the template has sections: names may be relative */
};

static int text_has_sections(const char *t)
{
    return t && (strstr(t, "{{#") || strstr(t, "{{^") || strstr(t, "{{="));
}

static void warn_at(struct wctx *w, const char *partial, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void warn_at(struct wctx *w, const char *partial, int line, int col, const char *fmt, ...)
{
    struct yamlx_mark m = {NULL, line, col};
    if (partial)
        m.origin = plan_tmpls_file(w->x->tmpls, partial);
    else if (w->tname)
        m.origin = plan_tmpls_file(w->x->tmpls, w->tname);
    else
        yamlx_locate_linecol(w->x->doc, w->node, line, col, &m);
    if (!m.origin)
        m.origin = yamlx_origin(w->x->doc);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    yamlx_diag(w->x->diags, 1, &m, "rule '%s': %s", w->ru->name, msg);
}

/* Splits a dotted name's first three components (empty when absent). */
static int split_name(const char *name, char root[128], char second[128], char third[128])
{
    char *parts[3] = {root, second, third};
    for (int i = 0; i < 3; i++)
        parts[i][0] = '\0';
    const char *p = name;
    for (int i = 0; i < 3 && p; i++) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l >= 128)
            return -1;
        memcpy(parts[i], p, l);
        parts[i][l] = '\0';
        p = dot ? dot + 1 : NULL;
    }
    return 0;
}

static void name_cb(const char *partial, const char *name, int line, int col, void *ud)
{
    struct wctx *w = ud;
    char root[128], second[128], third[128];
    if (split_name(name, root, second, third) < 0)
        return;
    int sections = partial ? text_has_sections(plan_tmpls_text(w->x->tmpls, partial))
                           : w->sections;
    if (w->key_only && (strcmp(root, "lookup") == 0 || strcmp(root, "result") == 0 ||
                        strcmp(root, "corr") == 0 || strcmp(root, "corr_key") == 0)) {
        warn_at(w, partial, line, col, "'%s' is not known yet when the key is rendered", name);
        return;
    }
    if (strcmp(root, "lookup") == 0) {
        if (*second && !json_object_get(w->lookups, second))
            warn_at(w, partial, line, col, "'%s': no earlier step has lookup: %s", name, second);
        return;
    }
    if (strcmp(root, "result") == 0) {
        if (*second && !json_object_get(w->results, second))
            warn_at(w, partial, line, col, "'%s': no earlier step has save_as: %s", name, second);
        return;
    }
    if (strcmp(root, "captures") == 0) {
        if (*second && !json_object_get(w->caps, second))
            warn_at(w, partial, line, col, "'%s': the rule's regexes have no group named %s",
                    name, second);
        return;
    }
    if (strcmp(root, "vars") == 0) {
        if (*second && json_is_object(w->x->o->vars) && !json_object_get(w->x->o->vars, second))
            warn_at(w, partial, line, col, "'%s': no vars: entry named %s in the configuration",
                    name, second);
        return;
    }
    if (strcmp(root, "corr") == 0) {
        if (*second && !in_list(corr_fields, second))
            warn_at(w, partial, line, col, "'%s': the correlation state has no field %s", name,
                    second);
        else if (strcmp(second, "tasks") == 0 && *third && !json_object_get(w->tasks, third))
            warn_at(w, partial, line, col, "'%s': no create_job_task step has save_as: %s", name,
                    third);
        return;
    }
    if (strcmp(root, "event") == 0 || strcmp(root, "rule") == 0 ||
        strcmp(root, "corr_key") == 0 || json_object_get(w->caps, root) ||
        in_list(event_fields, root) || w->open_fields || sections)
        return;
    warn_at(w, partial, line, col,
            "'%s': no event field, capture, look-up or variable is named %s", name, root);
}

static void tmpl_cb(const tmpl_t *t, json_t *node, const char *tname, void *ud)
{
    struct wctx *w = ud;
    w->node = node;
    w->tname = tname;
    w->sections = text_has_sections(tname ? plan_tmpls_text(w->x->tmpls, tname)
                                          : json_string_value(node));
    tmpl_each_name_in(t, name_cb, w);
}

static void caps_of(const struct cond *c, json_t *caps)
{
    if (!c || c->kind == C_NOT)
        return;
    for (size_t i = 0; i < c->nnames; i++)
        json_object_set_new(caps, c->names[i], json_true());
    for (size_t i = 0; i < c->n; i++)
        caps_of(c->kids[i], caps);
}

static int sources_open_fields(const struct lctx *x, const struct rule *ru)
{
    if (!x->o->sources)
        return 1;
    for (size_t i = 0; i < x->o->nsources; i++) {
        const struct tb_source *s = &x->o->sources[i];
        int applies = !ru->sources;
        for (size_t j = 0; j < ru->nsources && !applies; j++)
            applies = strcmp(ru->sources[j], s->name) == 0;
        if (applies && s->adapter &&
            (strcmp(s->adapter, "json") == 0 || strcmp(s->adapter, "form") == 0))
            return 1;
    }
    return 0;
}

/* Adds the task names the rule's create_job_task steps save under to tasks. */
static void rule_task_names(const struct rule *ru, json_t *tasks)
{
    for (int ph = 0; ph < RULE_PHASES; ph++)
        for (size_t i = 0; i < ru->phases[ph].n; i++) {
            const struct plan_step *s = ru->phases[ph].v[i];
            if (strcmp(plan_step_op(s), "create_job_task") == 0)
                json_object_set_new(tasks, plan_step_save_as(s) ? plan_step_save_as(s) : "task",
                                    json_true());
        }
}

/* Warns about template names nothing provides. tasks: the task names of the whole set (a
 * key's tasks may come from another rule with the same key). */
static void rule_warnings(const struct lctx *x, const struct rule *ru, json_t *key_node,
                          json_t *tasks)
{
    struct wctx w;
    memset(&w, 0, sizeof w);
    w.x = x;
    w.ru = ru;
    w.caps = json_object();
    w.tasks = tasks;
    w.open_fields = sources_open_fields(x, ru);
    caps_of(ru->when, w.caps);
    if (ru->key) {
        w.key_only = 1;
        w.node = key_node;
        w.sections = text_has_sections(json_string_value(key_node));
        tmpl_each_name_in(ru->key, name_cb, &w);
        w.key_only = 0;
    }
    for (int ph = 0; ph < RULE_PHASES; ph++) {
        w.lookups = json_object();
        w.results = json_object();
        for (size_t i = 0; i < ru->phases[ph].n; i++) {
            const struct plan_step *s = ru->phases[ph].v[i];
            plan_step_each_tmpl(s, tmpl_cb, &w);
            if (plan_step_lookup(s))
                json_object_set_new(w.lookups, plan_step_lookup(s), json_true());
            if (plan_step_save_as(s))
                json_object_set_new(w.results, plan_step_save_as(s), json_true());
        }
        json_decref(w.lookups);
        json_decref(w.results);
    }
    json_decref(w.caps);
}

/* ---- rules ---------------------------------------------------------------------------- */

static void rule_clear(struct rule *ru)
{
    free(ru->name);
    free(ru->where);
    for (size_t i = 0; i < ru->nsources; i++)
        free(ru->sources[i]);
    free(ru->sources);
    cond_free(ru->when);
    tmpl_free(ru->key);
    tmpl_free(ru->status);
    for (int i = 0; i < RULE_PHASES; i++)
        plan_steps_clear(&ru->phases[i]);
}

static const char *const phase_names[RULE_PHASES] = {"actions", "open", "repeat", "resolve",
                                                     "reopen"};

const char *rule_phase_name(enum rule_phase ph)
{
    return (unsigned)ph < RULE_PHASES ? phase_names[ph] : "?";
}

static void rule_duration(const struct lctx *x, json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    int64_t ms = -1;
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        ms = json_integer_value(v) * 1000;
    else if (json_is_string(v) && config_parse_duration(json_string_value(v), &ms) < 0)
        ms = -1;
    if (ms < 0 || ms > 365LL * 86400000)
        lx_err(x, obj, key, "correlation.%s: expected a duration such as 30s, 5m or 1d", key);
    else
        *out = ms;
}

/* Compiles one rule mapping into ru. 0, or -1 after reporting. */
static int rule_compile(struct lctx *x, json_t *def, struct rule *ru)
{
    static const char *const keys[] = {"name", "description", "sources", "when", "key",
                                       "status", "continue", "actions", "open", "repeat",
                                       "resolve", "reopen", "correlation", NULL};
    int bad = 0;
    struct yamlx_mark at;
    yamlx_where(x->doc, def, &at);
    ru->where = at.line ? util_asprintf("%s:%d", at.origin, at.line) : util_strdup(at.origin);
    json_t *name = json_object_get(def, "name");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) > 128) {
        x->rule = NULL;
        lx_err(x, def, name ? "name" : NULL, "a rule needs a name (1 to 128 characters)");
        return -1;
    }
    ru->name = util_strdup(json_string_value(name));
    x->rule = ru->name;
    const char *k;
    json_t *v;
    json_object_foreach(def, k, v) {
        if (in_list(keys, k))
            continue;
        struct yamlx_mark m;
        yamlx_where_key(x->doc, def, k, &m);
        yamlx_diag(x->diags, 0, &m, "rule '%s': unknown key '%s'", ru->name, k);
        bad = 1;
    }
    if (json_object_get(def, "sources") && names_list(x, def, "sources", &ru->sources,
                                                      &ru->nsources) < 0)
        bad = 1;
    json_t *when = json_object_get(def, "when");
    if (when && !json_is_null(when) && !(ru->when = cond_compile(x, when, 0)))
        bad = 1;
    json_t *key = json_object_get(def, "key");
    if (key) {
        if (!json_is_string(key)) {
            lx_err(x, def, "key", "key: expected a template such as "
                                  "\"{{labels.alertname}}/{{labels.instance}}\"");
            bad = 1;
        } else {
            struct tmpl_error te;
            ru->key = tmpl_compile(json_string_value(key), plan_tmpls_partial, (void *)x->tmpls,
                                   &te);
            if (!ru->key) {
                struct yamlx_mark m;
                yamlx_locate_linecol(x->doc, key, te.line, te.col, &m);
                yamlx_diag(x->diags, 0, &m, "rule '%s': key: template: %s", ru->name, te.msg);
                bad = 1;
            }
        }
    }
    json_t *st = json_object_get(def, "status");
    if (st) {
        if (!json_is_string(st)) {
            lx_err(x, def, "status", "status: expected firing, resolved or a template giving one");
            bad = 1;
        } else if (!strstr(json_string_value(st), "{{") &&
                   strcmp(json_string_value(st), "firing") != 0 &&
                   strcmp(json_string_value(st), "resolved") != 0) {
            lx_err(x, def, "status", "status: expected firing or resolved, got '%s'",
                   json_string_value(st));
            bad = 1;
        } else {
            struct tmpl_error te;
            ru->status = tmpl_compile(json_string_value(st), plan_tmpls_partial,
                                      (void *)x->tmpls, &te);
            if (!ru->status) {
                struct yamlx_mark m;
                yamlx_locate_linecol(x->doc, st, te.line, te.col, &m);
                yamlx_diag(x->diags, 0, &m, "rule '%s': status: template: %s", ru->name, te.msg);
                bad = 1;
            }
        }
    }
    json_t *cont = json_object_get(def, "continue");
    if (cont && !json_is_boolean(cont)) {
        lx_err(x, def, "continue", "continue: expected true or false");
        bad = 1;
    }
    ru->cont = json_is_true(cont);
    ru->corr = x->o->corr;
    json_t *corr = json_object_get(def, "correlation");
    if (corr) {
        static const char *const ck[] = {"reopen_window", "min_interval", "flap_window", NULL};
        if (!json_is_object(corr)) {
            lx_err(x, def, "correlation", "correlation: expected a mapping");
            bad = 1;
        } else {
            json_object_foreach(corr, k, v) {
                if (in_list(ck, k))
                    continue;
                struct yamlx_mark m;
                yamlx_where_key(x->doc, corr, k, &m);
                yamlx_diag(x->diags, 0, &m, "rule '%s': unknown key '%s' in correlation",
                           ru->name, k);
                bad = 1;
            }
            size_t before = x->diags->errors;
            rule_duration(x, corr, "reopen_window", &ru->corr.reopen_window_ms);
            rule_duration(x, corr, "min_interval", &ru->corr.min_interval_ms);
            rule_duration(x, corr, "flap_window", &ru->corr.flap_window_ms);
            if (x->diags->errors > before)
                bad = 1;
        }
    }
    int has_actions = json_object_get(def, "actions") != NULL;
    int has_life = 0;
    for (int ph = RULE_OPEN; ph < RULE_PHASES; ph++)
        has_life |= json_object_get(def, phase_names[ph]) != NULL;
    if (has_actions && has_life) {
        lx_err(x, def, "actions", "use either actions: or the lifecycle lists (open, repeat, "
                                  "resolve, reopen), not both");
        bad = 1;
    } else if (!has_actions && !has_life) {
        lx_err(x, def, NULL, "a rule needs actions: or lifecycle lists (open, repeat, resolve, "
                             "reopen)");
        bad = 1;
    }
    if (st && has_actions) {
        lx_err(x, def, "status", "status: applies to lifecycle lists only");
        bad = 1;
    }
    if (corr && has_actions) {
        lx_err(x, def, "correlation", "correlation: applies to lifecycle lists only");
        bad = 1;
    }
    ru->lifecycle = has_life;
    for (int ph = 0; ph < RULE_PHASES; ph++) {
        json_t *list = json_object_get(def, phase_names[ph]);
        if (!list)
            continue;
        char where[200];
        snprintf(where, sizeof where, "rule '%s' %s", ru->name, phase_names[ph]);
        struct plan_compile_ctx cx = {x->doc, x->diags, x->tmpls, where, phase_names[ph]};
        ru->has[ph] = 1;
        if (plan_steps_compile(list, &cx, &ru->phases[ph]) < 0)
            bad = 1;
    }
    ru->key_node = key;
    return bad ? -1 : 0;
}

static int rules_push(rules_t *r, size_t *cap)
{
    if (r->n >= RULES_MAX_RULES)
        return -1;
    if (r->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct rule *nv = realloc(r->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        r->v = nv;
        *cap = ncap;
    }
    memset(&r->v[r->n], 0, sizeof r->v[r->n]);
    return 0;
}

/* Compiles every rule of one parsed document (number docno of the load) into r. */
static void rules_doc(rules_t *r, size_t *cap, struct lctx *x, json_t *names, size_t docno)
{
    json_t *root = yamlx_root(x->doc);
    json_t *list = root;
    x->rule = NULL;
    if (json_is_null(root))
        return;
    if (json_is_object(root)) {
        list = json_object_get(root, "rules");
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v) {
            if (strcmp(k, "rules") == 0)
                continue;
            struct yamlx_mark m;
            yamlx_where_key(x->doc, root, k, &m);
            yamlx_diag(x->diags, 0, &m, "unknown key '%s' (a rule file holds rules:)", k);
        }
        if (!list || json_is_null(list))
            return;
    }
    if (!json_is_array(list)) {
        lx_err(x, list, NULL, "expected a list of rules");
        return;
    }
    size_t i;
    json_t *def;
    json_array_foreach(list, i, def) {
        if (!json_is_object(def)) {
            x->rule = NULL;
            lx_err(x, def, NULL, "a rule is a mapping (name, sources, when, actions ...)");
            continue;
        }
        if (rules_push(r, cap) < 0) {
            lx_err(x, def, NULL, "too many rules (at most %d)", RULES_MAX_RULES);
            return;
        }
        struct rule *ru = &r->v[r->n];
        ru->doc = docno;
        int rc = rule_compile(x, def, ru);
        if (ru->name) {
            json_t *prev = json_object_get(names, ru->name);
            if (prev) {
                x->rule = NULL;
                lx_err(x, def, "name", "rule '%s' is already defined at %s", ru->name,
                       json_string_value(prev));
                rc = -1;
            } else {
                json_object_set_new(names, ru->name, json_string(ru->where ? ru->where : ""));
            }
        }
        if (rc < 0) {
            rule_clear(ru);
            continue;
        }
        r->n++;
    }
}

static int path_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The rule files of path: a folder's .yaml and .yml files sorted by name, a glob's matches, or the
 * file itself. *files malloc'd (each malloc'd). -1 after reporting. */
static int rules_files(const char *path, yamlx_diags_t *diags, char ***files, size_t *n)
{
    *files = NULL;
    *n = 0;
    struct yamlx_mark m = {path, 0, 0};
    if (strpbrk(path, "*?[")) {
        glob_t g;
        int rc = glob(path, 0, NULL, &g);
        if (rc == GLOB_NOMATCH) {
            yamlx_diag(diags, 1, &m, "no rule files match");
            return 0;
        }
        if (rc != 0) {
            yamlx_diag(diags, 0, &m, "cannot list rule files");
            return -1;
        }
        size_t cnt = g.gl_pathc > RULES_MAX_FILES ? RULES_MAX_FILES : g.gl_pathc;
        *files = calloc(cnt ? cnt : 1, sizeof **files);
        for (size_t i = 0; *files && i < cnt; i++)
            (*files)[(*n)++] = util_strdup(g.gl_pathv[i]);
        globfree(&g);
        return *files ? 0 : -1;
    }
    struct stat st;
    if (stat(path, &st) < 0) {
        yamlx_diag(diags, 0, &m, "cannot read rules: %s", strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        *files = calloc(1, sizeof **files);
        if (!*files || !((*files)[0] = util_strdup(path)))
            return -1;
        *n = 1;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) {
        yamlx_diag(diags, 0, &m, "cannot read the rules folder: %s", strerror(errno));
        return -1;
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' ||
            !((l > 5 && strcmp(e->d_name + l - 5, ".yaml") == 0) ||
              (l > 4 && strcmp(e->d_name + l - 4, ".yml") == 0)))
            continue;
        if (*n >= RULES_MAX_FILES)
            break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(*files, cap * sizeof *nv);
            if (!nv)
                break;
            *files = nv;
        }
        (*files)[(*n)++] = util_asprintf("%s/%s", path, e->d_name);
    }
    closedir(d);
    if (*n)
        qsort(*files, *n, sizeof **files, path_cmp);
    return 0;
}

static rules_t *rules_begin(const struct rules_opts *o, yamlx_diags_t *diags)
{
    rules_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    r->vars = o->vars ? json_incref(o->vars) : json_object();
    r->template_output = o->template_output;
    r->tmpls = plan_tmpls_load(o->templates, diags);
    if (!r->tmpls) {
        rules_unref(r);
        return NULL;
    }
    return r;
}

/* The warnings pass, once every rule of the set is compiled; then the documents go. */
static void rules_finish(rules_t *r, const struct rules_opts *o, yamlx_diags_t *diags,
                         yamlx_doc_t **docs, size_t ndocs)
{
    json_t *tasks = json_object();
    for (size_t i = 0; tasks && i < r->n; i++)
        rule_task_names(&r->v[i], tasks);
    for (size_t i = 0; tasks && i < r->n; i++) {
        struct rule *ru = &r->v[i];
        if (ru->doc < ndocs && docs[ru->doc]) {
            struct lctx x = {o, docs[ru->doc], diags, r->tmpls, ru->name};
            rule_warnings(&x, ru, ru->key_node, tasks);
        }
        ru->key_node = NULL;
    }
    json_decref(tasks);
    for (size_t i = 0; i < ndocs; i++)
        yamlx_free(docs[i]);
}

rules_t *rules_load(const struct rules_opts *o, yamlx_diags_t *diags)
{
    size_t errors = diags->errors;
    rules_t *r = rules_begin(o, diags);
    char **files = NULL;
    size_t nfiles = 0, cap = 0;
    yamlx_doc_t **docs = NULL;
    json_t *names = json_object();
    if (!r || !names)
        goto fail;
    if (!o->path || rules_files(o->path, diags, &files, &nfiles) < 0)
        goto fail;
    docs = calloc(nfiles ? nfiles : 1, sizeof *docs);
    if (!docs)
        goto fail;
    for (size_t i = 0; i < nfiles; i++) {
        char *err = NULL;
        docs[i] = yamlx_load(files[i], RULES_MAX_FILE_SIZE, &err);
        if (!docs[i]) {
            yamlx_diag_raw(diags, 0, err);
            free(err);
            continue;
        }
        struct lctx x = {o, docs[i], diags, r->tmpls, NULL};
        rules_doc(r, &cap, &x, names, i);
        r->nfiles++;
    }
    if (diags->errors > errors)
        goto fail;
    rules_finish(r, o, diags, docs, nfiles);
    goto done;
fail:
    for (size_t i = 0; docs && i < nfiles; i++)
        yamlx_free(docs[i]);
    rules_unref(r);
    r = NULL;
done:
    free(docs);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    json_decref(names);
    return r;
}

rules_t *rules_load_text(const char *origin, const char *text, const struct rules_opts *o,
                         yamlx_diags_t *diags)
{
    size_t errors = diags->errors;
    rules_t *r = rules_begin(o, diags);
    json_t *names = json_object();
    size_t cap = 0;
    char *err = NULL;
    yamlx_doc_t *doc = NULL;
    if (!r || !names)
        goto fail;
    doc = yamlx_parse(text, strlen(text), origin, NULL, &err);
    if (!doc) {
        yamlx_diag_raw(diags, 0, err);
        free(err);
        goto fail;
    }
    struct lctx x = {o, doc, diags, r->tmpls, NULL};
    rules_doc(r, &cap, &x, names, 0);
    r->nfiles = 1;
    if (diags->errors > errors)
        goto fail;
    rules_finish(r, o, diags, &doc, 1);
    json_decref(names);
    return r;
fail:
    yamlx_free(doc);
    json_decref(names);
    rules_unref(r);
    return NULL;
}

rules_t *rules_ref(rules_t *r)
{
    if (r)
        atomic_fetch_add(&r->refs, 1);
    return r;
}

void rules_unref(rules_t *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    for (size_t i = 0; i < r->n; i++)
        rule_clear(&r->v[i]);
    free(r->v);
    plan_tmpls_free(r->tmpls);
    json_decref(r->vars);
    free(r);
}

void rules_release(void *r)
{
    rules_unref(r);
}

size_t rules_count(const rules_t *r) { return r ? r->n : 0; }
size_t rules_file_count(const rules_t *r) { return r ? r->nfiles : 0; }
size_t rules_template_count(const rules_t *r) { return r ? plan_tmpls_count(r->tmpls) : 0; }
const plan_tmpls_t *rules_templates(const rules_t *r) { return r->tmpls; }
json_t *rules_vars(const rules_t *r) { return r->vars; }
size_t rules_template_output(const rules_t *r) { return r->template_output; }

const struct rule *rules_at(const rules_t *r, size_t i)
{
    return r && i < r->n ? &r->v[i] : NULL;
}

const struct rule *rules_find(const rules_t *r, const char *name)
{
    for (size_t i = 0; r && name && i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return &r->v[i];
    return NULL;
}

const struct plan_step *rules_find_step(void *rp, const char *rule, const char *ref)
{
    const struct rule *ru = rules_find(rp, rule);
    if (!ru || !ref)
        return NULL;
    for (int ph = 0; ph < RULE_PHASES; ph++)
        for (size_t i = 0; i < ru->phases[ph].n; i++)
            if (strcmp(plan_step_ref(ru->phases[ph].v[i]), ref) == 0)
                return ru->phases[ph].v[i];
    return NULL;
}

const char *rule_name(const struct rule *ru) { return ru->name; }
const char *rule_where(const struct rule *ru) { return ru->where; }
int rule_continue(const struct rule *ru) { return ru->cont; }
int rule_lifecycle(const struct rule *ru) { return ru->lifecycle; }
const tmpl_t *rule_key(const struct rule *ru) { return ru->key; }
const tmpl_t *rule_status(const struct rule *ru) { return ru->status; }
const struct rule_corr *rule_corr(const struct rule *ru) { return &ru->corr; }

const struct plan_steps *rule_steps(const struct rule *ru, enum rule_phase ph)
{
    return (unsigned)ph < RULE_PHASES && ru->has[ph] ? &ru->phases[ph] : NULL;
}

int rule_for_source(const struct rule *ru, const char *source)
{
    if (!ru->sources)
        return 1;
    for (size_t s = 0; s < ru->nsources; s++)
        if (source && strcmp(ru->sources[s], source) == 0)
            return 1;
    return 0;
}

enum rules_match rules_next(const rules_t *r, const struct rules_input *in, size_t from,
                            size_t *index, json_t **captures)
{
    *captures = NULL;
    for (size_t i = from; r && i < r->n; i++) {
        const struct rule *ru = &r->v[i];
        if (!rule_for_source(ru, in->source))
            continue;
        struct eval ev = {ru, in};
        json_t *caps = NULL;
        if (ru->when && !cond_eval(&ev, ru->when, ru->when->captures ? &caps : NULL)) {
            json_decref(caps);
            continue;
        }
        *index = i;
        *captures = caps ? caps : json_object();
        return RULES_MATCH;
    }
    return RULES_NOMATCH;
}
