/* plan: compiled action lists, plans, step rendering and execution; see plan.h. Step
 * definitions are compiled once (templates, filters, typed values); a plan borrows them from
 * the rule set that made it, and rendering builds every request with jansson so no rendered
 * value can add fields or change the structure of what is sent. */
#include "plan.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/util.h"
#include "trackplan/filter.h"
#include "trackplan/ops.h"
#include "trackplan/order.h"

#define PLAN_MAX_TEMPLATES 1000
#define PLAN_MAX_TEMPLATE_SIZE (1024u * 1024)
#define PLAN_MAX_STEPS 64
#define PLAN_MAX_NEST 8
#define PLAN_MAX_VALUE_DEPTH 32

/* ---- templates folder ------------------------------------------------------------------ */

struct plan_tmpls {
    size_t n;
    char **names, **texts, **files;
};

static int pt_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static long pt_find(const plan_tmpls_t *t, const char *name)
{
    if (!t || !name)
        return -1;
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->names[i], name) == 0)
            return (long)i;
    return -1;
}

const char *plan_tmpls_text(const plan_tmpls_t *t, const char *name)
{
    long i = pt_find(t, name);
    return i < 0 ? NULL : t->texts[i];
}

const char *plan_tmpls_file(const plan_tmpls_t *t, const char *name)
{
    long i = pt_find(t, name);
    return i < 0 ? NULL : t->files[i];
}

const char *plan_tmpls_name(const plan_tmpls_t *t, const char *name)
{
    long i = pt_find(t, name);
    return i < 0 ? NULL : t->names[i];
}

size_t plan_tmpls_count(const plan_tmpls_t *t)
{
    return t ? t->n : 0;
}

char *plan_tmpls_partial(const char *name, void *ud)
{
    const char *text = plan_tmpls_text(ud, name);
    return text ? util_strdup(text) : NULL;
}

void plan_tmpls_free(plan_tmpls_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->names[i]);
        free(t->texts[i]);
        free(t->files[i]);
    }
    free(t->names);
    free(t->texts);
    free(t->files);
    free(t);
}

/* The place of a tmpl error: in a partial's file when the message names a partial. */
static void pt_error_mark(const plan_tmpls_t *set, const struct tmpl_error *e,
                          const char *fallback_file, struct yamlx_mark *m, const char **msg)
{
    m->origin = fallback_file;
    m->line = e->line;
    m->col = e->col;
    *msg = e->msg;
    if (strncmp(e->msg, "partial '", 9) == 0) {
        const char *end = strchr(e->msg + 9, '\'');
        if (end && end - (e->msg + 9) < 200) {
            char name[256];
            memcpy(name, e->msg + 9, (size_t)(end - (e->msg + 9)));
            name[end - (e->msg + 9)] = '\0';
            const char *file = plan_tmpls_file(set, name);
            if (file) {
                m->origin = file;
                *msg = end[1] == ':' && end[2] == ' ' ? end + 3 : e->msg;
            }
        }
    }
}

struct pt_missing {
    yamlx_diags_t *diags;
    const struct yamlx_mark *at;
};

static void pt_missing_cb(const char *name, int found, void *ud)
{
    struct pt_missing *pm = ud;
    if (!found)
        yamlx_diag(pm->diags, 0, pm->at, "partial '%s' not found in the templates folder", name);
}

plan_tmpls_t *plan_tmpls_load(const char *dir, yamlx_diags_t *diags)
{
    plan_tmpls_t *t = calloc(1, sizeof *t);
    char **names = NULL;
    size_t nn = 0;
    DIR *d = NULL;
    if (!t)
        return NULL;
    if (!dir)
        return t;
    d = opendir(dir);
    if (!d) {
        struct yamlx_mark m = {dir, 0, 0};
        yamlx_diag(diags, 0, &m, "cannot read the templates folder: %s", strerror(errno));
        goto fail;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (nn >= PLAN_MAX_TEMPLATES) {
            struct yamlx_mark m = {dir, 0, 0};
            yamlx_diag(diags, 0, &m, "more than %d templates", PLAN_MAX_TEMPLATES);
            goto fail;
        }
        char **nv = realloc(names, (nn + 1) * sizeof *nv);
        if (!nv)
            goto fail;
        names = nv;
        if (!(names[nn] = util_strdup(e->d_name)))
            goto fail;
        nn++;
    }
    closedir(d);
    d = NULL;
    if (nn)
        qsort(names, nn, sizeof *names, pt_cmp);
    t->names = calloc(nn ? nn : 1, sizeof *t->names);
    t->texts = calloc(nn ? nn : 1, sizeof *t->texts);
    t->files = calloc(nn ? nn : 1, sizeof *t->files);
    if (!t->names || !t->texts || !t->files)
        goto fail;
    for (size_t i = 0; i < nn; i++) {
        char *file = util_asprintf("%s/%s", dir, names[i]);
        size_t len = 0;
        char *text = file ? util_read_file(file, PLAN_MAX_TEMPLATE_SIZE, &len) : NULL;
        if (!text) {
            struct yamlx_mark m = {file ? file : names[i], 0, 0};
            if (errno != EISDIR)
                yamlx_diag(diags, 0, &m, "cannot read template: %s",
                           errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
            free(file);
            continue;
        }
        if (strlen(text) != len) {
            struct yamlx_mark m = {file, 0, 0};
            yamlx_diag(diags, 0, &m, "template contains NUL bytes");
            free(text);
            free(file);
            continue;
        }
        size_t nl = strlen(names[i]);
        if (nl > 9 && strcmp(names[i] + nl - 9, ".mustache") == 0)
            names[i][nl - 9] = '\0';
        t->names[t->n] = names[i];
        names[i] = NULL;
        t->texts[t->n] = text;
        t->files[t->n] = file;
        t->n++;
    }
    /* Compile each once, partials included, so errors point into the right file. */
    for (size_t i = 0; i < t->n; i++) {
        struct tmpl_error te;
        tmpl_t *c = tmpl_compile(t->texts[i], plan_tmpls_partial, t, &te);
        if (!c) {
            struct yamlx_mark m;
            const char *msg;
            pt_error_mark(t, &te, t->files[i], &m, &msg);
            yamlx_diag(diags, 0, &m, "%s", msg);
            continue;
        }
        struct yamlx_mark at = {t->files[i], 0, 0};
        struct pt_missing pm = {diags, &at};
        tmpl_each_partial(c, pt_missing_cb, &pm);
        tmpl_free(c);
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    /* A broken template stays in the set, so the rules are still checked (and those using it
     * report it again, which diags folds into one line). */
    return t;
fail:
    if (d)
        closedir(d);
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    plan_tmpls_free(t);
    return NULL;
}

/* ---- compile helpers ------------------------------------------------------------------- */

static void pc_mark(const struct plan_compile_ctx *cx, json_t *obj, const char *key,
                    struct yamlx_mark *m)
{
    json_t *v = key ? json_object_get(obj, key) : obj;
    if (v && yamlx_where(cx->doc, v, m) == 0)
        return;
    if (key && yamlx_where_member(cx->doc, obj, key, m) == 0)
        return;
    yamlx_where(cx->doc, obj, m);
}

static void pc_err(const struct plan_compile_ctx *cx, json_t *obj, const char *key,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void pc_err(const struct plan_compile_ctx *cx, json_t *obj, const char *key,
                   const char *fmt, ...)
{
    struct yamlx_mark m;
    pc_mark(cx, obj, key, &m);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    yamlx_diag(cx->diags, 0, &m, "%s: %s", cx->where ? cx->where : "step", msg);
}

static int pc_name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 64 || !(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return 0;
    return 1;
}

/* Compiles a YAML string node as a template; NULL with a diagnostic at the right place. */
static tmpl_t *pc_tmpl(const struct plan_compile_ctx *cx, json_t *node, const char *text)
{
    struct tmpl_error te;
    tmpl_t *t = tmpl_compile(text, plan_tmpls_partial, (void *)cx->tmpls, &te);
    if (!t) {
        struct yamlx_mark m;
        const char *msg;
        pt_error_mark(cx->tmpls, &te, NULL, &m, &msg);
        if (!m.origin)
            yamlx_locate_linecol(cx->doc, node, te.line, te.col, &m);
        yamlx_diag(cx->diags, 0, &m, "%s: template: %s", cx->where ? cx->where : "step", msg);
        return NULL;
    }
    struct yamlx_mark at;
    yamlx_where(cx->doc, node, &at);
    struct pt_missing pm = {cx->diags, &at};
    size_t before = cx->diags->errors;
    tmpl_each_partial(t, pt_missing_cb, &pm);
    if (cx->diags->errors > before) {
        tmpl_free(t);
        return NULL;
    }
    return t;
}

/* ---- values: YAML trees whose string leaves are templates ------------------------------ */

enum pv_kind { PV_CONST, PV_TMPL, PV_OBJECT, PV_ARRAY };
enum pv_type { PT_STRING, PT_INT, PT_NUMBER, PT_BOOL };

struct pval {
    enum pv_kind kind;
    enum pv_type type;      /* PV_TMPL: what the rendered text becomes */
    int optional;           /* omitted when it renders empty */
    char *dflt;             /* used when it renders empty */
    json_t *konst;          /* PV_CONST */
    tmpl_t *t;              /* PV_TMPL */
    json_t *node;           /* the YAML node the template came from (borrowed from def) */
    const char *tname;      /* or the name of a template of the folder (borrowed) */
    size_t n;
    char **keys;            /* PV_OBJECT */
    struct pval **items;    /* PV_OBJECT, PV_ARRAY */
};

static void pv_free(struct pval *v)
{
    if (!v)
        return;
    json_decref(v->konst);
    tmpl_free(v->t);
    free(v->dflt);
    for (size_t i = 0; i < v->n; i++) {
        if (v->keys)
            free(v->keys[i]);
        pv_free(v->items[i]);
    }
    free(v->keys);
    free(v->items);
    free(v);
}

static struct pval *pv_tmpl_node(const struct plan_compile_ctx *cx, json_t *node,
                                 enum pv_type type)
{
    struct pval *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    const char *text = json_string_value(node);
    v->type = type;
    v->node = node;
    if (!strstr(text, "{{") && type == PT_STRING) {
        v->kind = PV_CONST;
        v->konst = json_incref(node);
        return v;
    }
    v->kind = PV_TMPL;
    if (!(v->t = pc_tmpl(cx, node, text))) {
        free(v);
        return NULL;
    }
    return v;
}

static const char *const pv_types[] = {"string", "int", "number", "bool", NULL};

/* A mapping of one type key (int, number, bool, string) and optional/default. */
static int pv_is_typed(json_t *obj)
{
    if (!json_is_object(obj) || json_object_size(obj) == 0 || json_object_size(obj) > 3)
        return 0;
    int types = 0;
    const char *k;
    json_t *x;
    json_object_foreach(obj, k, x) {
        int known = 0;
        for (const char *const *t = pv_types; *t; t++)
            if (strcmp(k, *t) == 0)
                known = 1, types++;
        if (!known && strcmp(k, "optional") != 0 && strcmp(k, "default") != 0)
            return 0;
    }
    return types == 1;
}

static struct pval *pv_compile(const struct plan_compile_ctx *cx, json_t *node, int depth)
{
    if (depth > PLAN_MAX_VALUE_DEPTH) {
        pc_err(cx, node, NULL, "value nested too deeply");
        return NULL;
    }
    if (json_is_string(node))
        return pv_tmpl_node(cx, node, PT_STRING);
    if (pv_is_typed(node)) {
        enum pv_type type = PT_STRING;
        json_t *src = NULL;
        const char *tk = NULL;
        for (int i = 0; pv_types[i]; i++)
            if ((src = json_object_get(node, pv_types[i]))) {
                type = (enum pv_type)i;
                tk = pv_types[i];
                break;
            }
        json_t *opt = json_object_get(node, "optional");
        json_t *dflt = json_object_get(node, "default");
        if (opt && !json_is_boolean(opt)) {
            pc_err(cx, node, "optional", "optional: expected true or false");
            return NULL;
        }
        if (dflt && !json_is_string(dflt) && !json_is_number(dflt) && !json_is_boolean(dflt)) {
            pc_err(cx, node, "default", "default: expected a scalar");
            return NULL;
        }
        struct pval *v = NULL;
        if (json_is_string(src)) {
            v = calloc(1, sizeof *v);
            if (!v)
                return NULL;
            v->kind = PV_TMPL;
            v->type = type;
            v->node = src;
            if (!(v->t = pc_tmpl(cx, src, json_string_value(src)))) {
                free(v);
                return NULL;
            }
        } else if ((type == PT_INT && json_is_integer(src)) ||
                   (type == PT_NUMBER && json_is_number(src)) ||
                   (type == PT_BOOL && json_is_boolean(src))) {
            v = calloc(1, sizeof *v);
            if (!v)
                return NULL;
            v->kind = PV_CONST;
            v->konst = json_incref(src);
        } else {
            static const char *const what[] = {"string", "integer", "number", "boolean"};
            pc_err(cx, node, tk, "%s: expected a template string or a literal %s", tk,
                   what[type]);
            return NULL;
        }
        v->optional = json_is_true(opt);
        if (dflt)
            v->dflt = json_is_string(dflt) ? util_strdup(json_string_value(dflt))
                                           : json_dumps(dflt, JSON_ENCODE_ANY);
        return v;
    }
    struct pval *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (json_is_object(node)) {
        v->kind = PV_OBJECT;
        size_t n = json_object_size(node);
        v->keys = calloc(n ? n : 1, sizeof *v->keys);
        v->items = calloc(n ? n : 1, sizeof *v->items);
        if (!v->keys || !v->items)
            goto fail;
        const char *k;
        json_t *x;
        int bad = 0;
        json_object_foreach(node, k, x) {
            struct pval *c = pv_compile(cx, x, depth + 1);
            if (!c) {
                bad = 1;
                continue;
            }
            v->keys[v->n] = util_strdup(k);
            v->items[v->n++] = c;
        }
        if (bad)
            goto fail;
        return v;
    }
    if (json_is_array(node)) {
        v->kind = PV_ARRAY;
        size_t n = json_array_size(node);
        v->items = calloc(n ? n : 1, sizeof *v->items);
        if (!v->items)
            goto fail;
        size_t i;
        json_t *x;
        int bad = 0;
        json_array_foreach(node, i, x) {
            struct pval *c = pv_compile(cx, x, depth + 1);
            if (!c) {
                bad = 1;
                continue;
            }
            v->items[v->n++] = c;
        }
        if (bad)
            goto fail;
        return v;
    }
    v->kind = PV_CONST;
    v->konst = json_incref(node);
    return v;
fail:
    pv_free(v);
    return NULL;
}

static char *pv_trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    size_t lead = 0;
    while (isspace((unsigned char)s[lead]))
        lead++;
    if (lead)
        memmove(s, s + lead, n - lead + 1);
    return s;
}

/* Renders v into *out (new), or *out = NULL when an optional value came out empty.
 * 0, or -1 with *err naming the value's path. */
static int pv_render(const struct pval *v, json_t *data, const struct tmpl_limits *lim,
                     const char *path, json_t **out, char **err)
{
    *out = NULL;
    switch (v->kind) {
    case PV_CONST:
        *out = json_deep_copy(v->konst);
        return *out ? 0 : -1;
    case PV_TMPL: {
        struct tmpl_error te;
        char *s = tmpl_render(v->t, data, 0, lim, &te);
        if (!s) {
            *err = util_asprintf("%s: %s", path, te.msg);
            return -1;
        }
        if (v->type != PT_STRING)
            pv_trim(s);
        if (!*s && v->dflt) {
            free(s);
            if (!(s = util_strdup(v->dflt)))
                return -1;
        } else if (!*s && v->optional) {
            free(s);
            return 0;
        }
        int rc = 0;
        switch (v->type) {
        case PT_STRING:
            *out = json_string(s);
            if (!*out) {
                *err = util_asprintf("%s: rendered text is not valid UTF-8", path);
                rc = -1;
            }
            break;
        case PT_INT: {
            int64_t n;
            if (util_parse_i64(s, INT64_MIN, INT64_MAX, &n) < 0) {
                *err = util_asprintf("%s: \"%.64s\" is not an integer", path, s);
                rc = -1;
            } else {
                *out = json_integer((json_int_t)n);
            }
            break;
        }
        case PT_NUMBER: {
            double d;
            int64_t n;
            if (util_parse_i64(s, INT64_MIN, INT64_MAX, &n) == 0) {
                *out = json_integer((json_int_t)n);
            } else if (util_parse_double(s, &d) == 0) {
                *out = json_real(d);
            } else {
                *err = util_asprintf("%s: \"%.64s\" is not a number", path, s);
                rc = -1;
            }
            break;
        }
        case PT_BOOL:
            if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
                *out = json_true();
            } else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
                *out = json_false();
            } else {
                *err = util_asprintf("%s: \"%.64s\" is not true or false", path, s);
                rc = -1;
            }
            break;
        }
        free(s);
        return rc;
    }
    case PV_OBJECT: {
        json_t *o = json_object();
        if (!o)
            return -1;
        for (size_t i = 0; i < v->n; i++) {
            char *sub = util_asprintf("%s.%s", path, v->keys[i]);
            json_t *c = NULL;
            int rc = sub ? pv_render(v->items[i], data, lim, sub, &c, err) : -1;
            free(sub);
            if (rc < 0) {
                json_decref(o);
                return -1;
            }
            if (c)
                json_object_set_new(o, v->keys[i], c);
        }
        *out = o;
        return 0;
    }
    case PV_ARRAY: {
        json_t *a = json_array();
        if (!a)
            return -1;
        for (size_t i = 0; i < v->n; i++) {
            char *sub = util_asprintf("%s[%zu]", path, i);
            json_t *c = NULL;
            int rc = sub ? pv_render(v->items[i], data, lim, sub, &c, err) : -1;
            free(sub);
            if (rc < 0) {
                json_decref(a);
                return -1;
            }
            if (c)
                json_array_append_new(a, c);
        }
        *out = a;
        return 0;
    }
    }
    return -1;
}

/* Renders a string-typed value into a malloc'd string ("" when omitted). */
static char *pv_render_text(const struct pval *v, json_t *data, const struct tmpl_limits *lim,
                            const char *path, char **err)
{
    json_t *j = NULL;
    if (pv_render(v, data, lim, path, &j, err) < 0)
        return NULL;
    char *s = NULL;
    if (!j)
        s = util_strdup("");
    else if (json_is_string(j))
        s = util_strdup(json_string_value(j));
    else
        s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    return s;
}

static void pv_each_tmpl(const struct pval *v,
                         void (*fn)(const tmpl_t *t, json_t *node, const char *tname, void *ud),
                         void *ud)
{
    if (!v)
        return;
    if (v->kind == PV_TMPL)
        fn(v->t, v->node, v->tname, ud);
    for (size_t i = 0; i < v->n; i++)
        pv_each_tmpl(v->items[i], fn, ud);
}

/* ---- look-up filters (Gridify, escaped by tp_filter) ----------------------------------- */

enum pf_kind { PF_COND, PF_ALL, PF_ANY };

struct pfilt {
    enum pf_kind kind;
    char *field;
    enum tp_filter_op op;
    int nocase;
    struct pval *value;
    struct pfilt **kids;
    size_t n;
};

static void pf_free(struct pfilt *f)
{
    if (!f)
        return;
    free(f->field);
    pv_free(f->value);
    for (size_t i = 0; i < f->n; i++)
        pf_free(f->kids[i]);
    free(f->kids);
    free(f);
}

static struct pfilt *pf_compile(const struct plan_compile_ctx *cx, json_t *node, int depth)
{
    if (depth > TP_FILTER_MAX_DEPTH) {
        pc_err(cx, node, NULL, "filter: groups nested too deeply");
        return NULL;
    }
    struct pfilt *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    json_t *list = NULL;
    if (json_is_array(node)) {
        f->kind = PF_ALL;
        list = node;
    } else if (json_is_object(node) &&
               (json_object_get(node, "all") || json_object_get(node, "any"))) {
        if (json_object_size(node) != 1) {
            pc_err(cx, node, NULL, "filter: a group is a mapping with only all: or any:");
            goto fail;
        }
        f->kind = json_object_get(node, "all") ? PF_ALL : PF_ANY;
        list = json_object_get(node, f->kind == PF_ALL ? "all" : "any");
        if (!json_is_array(list) || json_array_size(list) == 0) {
            pc_err(cx, node, f->kind == PF_ALL ? "all" : "any",
                   "filter: expected a non-empty list of conditions");
            goto fail;
        }
    } else if (json_is_object(node)) {
        f->kind = PF_COND;
        static const char *const keys[] = {"field", "op", "value", "nocase", NULL};
        const char *k;
        json_t *x;
        int bad = 0;
        json_object_foreach(node, k, x) {
            int ok = 0;
            for (const char *const *a = keys; *a; a++)
                ok |= strcmp(*a, k) == 0;
            if (!ok) {
                struct yamlx_mark m;
                yamlx_where_key(cx->doc, node, k, &m);
                yamlx_diag(cx->diags, 0, &m,
                           "%s: filter: unknown key '%s' (field, op, value, nocase, all, any)",
                           cx->where ? cx->where : "step", k);
                bad = 1;
            }
        }
        json_t *field = json_object_get(node, "field");
        json_t *op = json_object_get(node, "op");
        json_t *value = json_object_get(node, "value");
        json_t *nocase = json_object_get(node, "nocase");
        if (!json_is_string(field)) {
            pc_err(cx, node, field ? "field" : NULL, "filter: field is required (a field name)");
            bad = 1;
        } else {
            struct tp_filter *probe = tp_filter_new();
            if (probe && tp_filter_where(probe, json_string_value(field), TP_F_EQ, "x", 0) < 0) {
                pc_err(cx, node, "field", "filter: '%s' is not a field name",
                       json_string_value(field));
                bad = 1;
            }
            tp_filter_free(probe);
            f->field = util_strdup(json_string_value(field));
        }
        f->op = TP_F_EQ;
        if (op && (!json_is_string(op) || tp_filter_op_parse(json_string_value(op), &f->op) < 0)) {
            pc_err(cx, node, "op",
                   "filter: op must be one of == != < > >= <= =* !* ^ !^ $ !$");
            bad = 1;
        }
        if (nocase && !json_is_boolean(nocase)) {
            pc_err(cx, node, "nocase", "filter: nocase: expected true or false");
            bad = 1;
        }
        f->nocase = json_is_true(nocase);
        if (!value || !(json_is_string(value) || json_is_number(value) || json_is_boolean(value))) {
            pc_err(cx, node, value ? "value" : NULL, "filter: value is required (a template)");
            bad = 1;
        } else if (!(f->value = json_is_string(value) ? pv_tmpl_node(cx, value, PT_STRING)
                                                      : pv_compile(cx, value, 0))) {
            bad = 1;
        }
        if (bad)
            goto fail;
        return f;
    } else {
        pc_err(cx, node, NULL, "filter: expected a list of conditions or a mapping");
        goto fail;
    }
    size_t n = json_array_size(list);
    f->kids = calloc(n ? n : 1, sizeof *f->kids);
    if (!f->kids)
        goto fail;
    int bad = 0;
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) {
        struct pfilt *k = pf_compile(cx, x, depth + 1);
        if (!k) {
            bad = 1;
            continue;
        }
        f->kids[f->n++] = k;
    }
    if (bad || f->n == 0) {
        if (!bad)
            pc_err(cx, node, NULL, "filter: expected at least one condition");
        goto fail;
    }
    return f;
fail:
    pf_free(f);
    return NULL;
}

static int pf_render(const struct pfilt *f, struct tp_filter *tf, json_t *data,
                     const struct tmpl_limits *lim, int top, int *empty, char **err)
{
    if (f->kind == PF_COND) {
        char *v = pv_render_text(f->value, data, lim, "filter", err);
        if (!v)
            return -1;
        if (!*v)
            *empty = 1;
        int rc = tp_filter_where(tf, f->field, f->op, v, f->nocase);
        free(v);
        if (rc < 0)
            *err = util_asprintf("filter: the value for %s is too long", f->field);
        return rc;
    }
    int group = !top || f->kind == PF_ANY;
    if (group && tp_filter_open(tf) < 0) {
        *err = util_strdup("filter: groups nested too deeply");
        return -1;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (i > 0 && f->kind == PF_ANY && tp_filter_or(tf) < 0) {
            *err = util_strdup("filter: invalid group");
            return -1;
        }
        if (pf_render(f->kids[i], tf, data, lim, 0, empty, err) < 0)
            return -1;
    }
    if (group && tp_filter_close(tf) < 0) {
        *err = util_strdup("filter: invalid group");
        return -1;
    }
    return 0;
}

static void pf_each_tmpl(const struct pfilt *f,
                         void (*fn)(const tmpl_t *t, json_t *node, const char *tname, void *ud),
                         void *ud)
{
    if (!f)
        return;
    pv_each_tmpl(f->value, fn, ud);
    for (size_t i = 0; i < f->n; i++)
        pf_each_tmpl(f->kids[i], fn, ud);
}

/* ---- steps ------------------------------------------------------------------------------ */

enum ps_kind { PS_API, PS_MAIL };

struct ps_cond {
    char *name;     /* look-up name */
    int missing;    /* 1: run only when it found nothing; 0: only when it found something */
};

struct plan_step {
    json_t *def;
    char *ref;
    enum ps_kind kind;
    const struct tp_op *op;
    char *lookup, *save_as;
    struct pval *id, *body, *fallback, *page, *page_size;
    char *order_by;
    struct pfilt *filter;
    struct pval *mail;          /* PV_OBJECT: to, cc, subject, text, in_reply_to, references */
    struct ps_cond *conds;
    size_t nconds;
    int has_fallback_steps;
};

static void ps_free(struct plan_step *s)
{
    if (!s)
        return;
    json_decref(s->def);
    free(s->ref);
    free(s->lookup);
    free(s->save_as);
    pv_free(s->id);
    pv_free(s->body);
    pv_free(s->fallback);
    pv_free(s->page);
    pv_free(s->page_size);
    free(s->order_by);
    pf_free(s->filter);
    pv_free(s->mail);
    for (size_t i = 0; i < s->nconds; i++)
        free(s->conds[i].name);
    free(s->conds);
    free(s);
}

const char *plan_step_op(const struct plan_step *s)
{
    return s->kind == PS_MAIL ? "send_mail" : s->op->name;
}

const char *plan_step_ref(const struct plan_step *s)
{
    return s->ref;
}

const char *plan_step_lookup(const struct plan_step *s)
{
    return s->lookup;
}

const char *plan_step_save_as(const struct plan_step *s)
{
    return s->save_as;
}

json_t *plan_step_def(const struct plan_step *s)
{
    return s->def;
}

void plan_step_each_tmpl(const struct plan_step *s,
                         void (*fn)(const tmpl_t *t, json_t *node, const char *tname, void *ud),
                         void *ud)
{
    pv_each_tmpl(s->id, fn, ud);
    pv_each_tmpl(s->body, fn, ud);
    pv_each_tmpl(s->fallback, fn, ud);
    pv_each_tmpl(s->page, fn, ud);
    pv_each_tmpl(s->page_size, fn, ud);
    pf_each_tmpl(s->filter, fn, ud);
    pv_each_tmpl(s->mail, fn, ud);
}

static void pc_unknown_keys(const struct plan_compile_ctx *cx, json_t *def,
                            const char *const *allowed, const char *what, int *bad)
{
    const char *k;
    json_t *x;
    json_object_foreach(def, k, x) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, k) == 0;
        if (ok)
            continue;
        struct yamlx_mark m;
        yamlx_where_key(cx->doc, def, k, &m);
        yamlx_diag(cx->diags, 0, &m, "%s: unknown key '%s' for %s", cx->where ? cx->where : "step",
                   k, what);
        *bad = 1;
    }
}

/* Adds a mail field: a template string. */
static int pc_mail_field(const struct plan_compile_ctx *cx, json_t *def, const char *key,
                         struct pval *obj, int required)
{
    json_t *v = json_object_get(def, key);
    if (!v) {
        if (required)
            pc_err(cx, def, NULL, "send_mail needs %s", key);
        return required ? -1 : 0;
    }
    if (!json_is_string(v)) {
        pc_err(cx, def, key, "%s: expected a template string", key);
        return -1;
    }
    struct pval *c = pv_tmpl_node(cx, v, PT_STRING);
    if (!c)
        return -1;
    obj->keys[obj->n] = util_strdup(key);
    obj->items[obj->n++] = c;
    return 0;
}

static int ps_compile_mail(const struct plan_compile_ctx *cx, json_t *def, struct plan_step *s)
{
    static const char *const keys[] = {"op", "to", "cc", "subject", "template", "text",
                                       "in_reply_to", "references", "save_as", NULL};
    int bad = 0;
    pc_unknown_keys(cx, def, keys, "send_mail", &bad);
    s->kind = PS_MAIL;
    struct pval *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    s->mail = m;
    m->kind = PV_OBJECT;
    m->keys = calloc(8, sizeof *m->keys);
    m->items = calloc(8, sizeof *m->items);
    if (!m->keys || !m->items)
        return -1;
    if (pc_mail_field(cx, def, "to", m, 1) < 0)
        bad = 1;
    if (pc_mail_field(cx, def, "cc", m, 0) < 0)
        bad = 1;
    if (pc_mail_field(cx, def, "subject", m, 1) < 0)
        bad = 1;
    json_t *tn = json_object_get(def, "template");
    json_t *text = json_object_get(def, "text");
    if ((tn != NULL) == (text != NULL)) {
        pc_err(cx, def, NULL, "send_mail needs either template (a file of the templates folder) "
                              "or text (an inline template)");
        bad = 1;
    } else if (text) {
        if (pc_mail_field(cx, def, "text", m, 1) < 0)
            bad = 1;
    } else if (!json_is_string(tn)) {
        pc_err(cx, def, "template", "template: expected a template name");
        bad = 1;
    } else {
        const char *name = json_string_value(tn);
        const char *body = plan_tmpls_text(cx->tmpls, name);
        if (!body) {
            pc_err(cx, def, "template", "template '%s' not found in the templates folder", name);
            bad = 1;
        } else {
            struct tmpl_error te;
            tmpl_t *t = tmpl_compile(body, plan_tmpls_partial, (void *)cx->tmpls, &te);
            if (!t) {
                bad = 1; /* reported when the templates folder was loaded */
            } else {
                struct pval *c = calloc(1, sizeof *c);
                if (!c) {
                    tmpl_free(t);
                    return -1;
                }
                c->kind = PV_TMPL;
                c->t = t;
                c->tname = plan_tmpls_name(cx->tmpls, name);
                m->keys[m->n] = util_strdup("text");
                m->items[m->n++] = c;
            }
        }
    }
    if (pc_mail_field(cx, def, "in_reply_to", m, 0) < 0)
        bad = 1;
    if (pc_mail_field(cx, def, "references", m, 0) < 0)
        bad = 1;
    return bad ? -1 : 0;
}

static int ps_compile_query(const struct plan_compile_ctx *cx, json_t *def, struct plan_step *s)
{
    int bad = 0;
    json_t *q = json_object_get(def, "query");
    if (q && !json_is_object(q)) {
        pc_err(cx, def, "query", "query: expected a mapping of page, pageSize, orderBy");
        return -1;
    }
    if (q) {
        static const char *const keys[] = {"page", "pageSize", "orderBy", NULL};
        pc_unknown_keys(cx, q, keys, "query (filters go in filter:)", &bad);
    }
    static const char *const names[] = {"page", "pageSize"};
    struct pval **slots[] = {&s->page, &s->page_size};
    for (int i = 0; i < 2; i++) {
        json_t *v = q ? json_object_get(q, names[i]) : NULL;
        if (!v)
            continue;
        if (json_is_integer(v)) {
            if (json_integer_value(v) < 1 || json_integer_value(v) > (i ? 1000 : 1000000)) {
                pc_err(cx, q, names[i], "%s: %" JSON_INTEGER_FORMAT " is out of range (1 to %d)",
                       names[i], json_integer_value(v), i ? 1000 : 1000000);
                bad = 1;
                continue;
            }
            *slots[i] = pv_compile(cx, v, 0);
        } else if (json_is_string(v)) {
            *slots[i] = pv_tmpl_node(cx, v, PT_INT);
        } else {
            pc_err(cx, q, names[i], "%s: expected an integer", names[i]);
            bad = 1;
            continue;
        }
        if (!*slots[i])
            bad = 1;
    }
    json_t *ob = q ? json_object_get(q, "orderBy") : NULL;
    if (ob) {
        struct tp_order *o = tp_order_new();
        int ok = json_is_string(ob) && o != NULL;
        if (ok) {
            /* "name, code desc": field names checked by tp_order. */
            char *copy = util_strdup(json_string_value(ob));
            char *p = copy;
            while (ok && p && *p) {
                char *comma = strchr(p, ',');
                if (comma)
                    *comma = '\0';
                char *w = pv_trim(p);
                int desc = 0;
                char *sp = strchr(w, ' ');
                if (sp) {
                    *sp = '\0';
                    char *dir = pv_trim(sp + 1);
                    if (strcasecmp(dir, "desc") == 0)
                        desc = 1;
                    else if (strcasecmp(dir, "asc") != 0)
                        ok = 0;
                }
                if (ok && tp_order_add(o, w, desc) < 0)
                    ok = 0;
                p = comma ? comma + 1 : NULL;
            }
            free(copy);
        }
        if (ok && tp_order_str(o) && *tp_order_str(o))
            s->order_by = util_strdup(tp_order_str(o));
        else {
            pc_err(cx, q, "orderBy", "orderBy: expected field names, each optionally followed "
                                     "by asc or desc, separated by commas");
            bad = 1;
        }
        tp_order_free(o);
    }
    json_t *f = json_object_get(def, "filter");
    if (f && !(s->filter = pf_compile(cx, f, 0)))
        bad = 1;
    return bad ? -1 : 0;
}

static int ps_add_conds(struct plan_step *s, const struct ps_cond *conds, size_t n)
{
    if (n == 0)
        return 0;
    s->conds = calloc(n, sizeof *s->conds);
    if (!s->conds)
        return -1;
    for (size_t i = 0; i < n; i++) {
        s->conds[i].name = util_strdup(conds[i].name);
        s->conds[i].missing = conds[i].missing;
        if (!s->conds[i].name)
            return -1;
        s->nconds++;
    }
    return 0;
}

/* Compiles one step (without laying out its fallback_steps). */
static struct plan_step *ps_compile_one(const struct plan_compile_ctx *cx, json_t *def,
                                        const char *ref, const struct ps_cond *conds,
                                        size_t nconds)
{
    struct plan_step *s = calloc(1, sizeof *s);
    int bad = 0;
    if (!s)
        return NULL;
    s->def = json_incref(def);
    s->ref = util_strdup(ref);
    if (!s->ref || ps_add_conds(s, conds, nconds) < 0)
        goto fail;
    if (!json_is_object(def)) {
        pc_err(cx, def, NULL, "a step is a mapping with op: and its arguments");
        goto fail;
    }
    json_t *opn = json_object_get(def, "op");
    if (!json_is_string(opn)) {
        pc_err(cx, def, opn ? "op" : NULL, "op is required (an operation name such as "
                                           "create_job, or send_mail)");
        goto fail;
    }
    const char *name = json_string_value(opn);
    if (strcmp(name, "send_mail") == 0) {
        if (ps_compile_mail(cx, def, s) < 0)
            goto fail;
        json_t *sa = json_object_get(def, "save_as");
        if (sa && !(json_is_string(sa) && pc_name_ok(json_string_value(sa)))) {
            pc_err(cx, def, "save_as", "save_as: expected a name");
            goto fail;
        }
        s->save_as = sa ? util_strdup(json_string_value(sa)) : NULL;
        return s;
    }
    if (strcmp(name, "ignore") == 0) {
        pc_err(cx, def, "op", "ignore must be the only action of its list");
        goto fail;
    }
    s->kind = PS_API;
    s->op = tp_op_find(name);
    if (!s->op || s->op->id == TP_OP_LOGIN) {
        pc_err(cx, def, "op", "unknown operation '%s' (see docs/rules.md for the list)", name);
        goto fail;
    }
    static const char *const keys[] = {"op", "id", "query", "filter", "body", "save_as",
                                       "lookup", "fallback", "fallback_steps", NULL};
    pc_unknown_keys(cx, def, keys, name, &bad);
    json_t *id = json_object_get(def, "id");
    if (s->op->has_id && !id) {
        pc_err(cx, def, NULL, "%s needs id: (the GUID, e.g. \"{{corr.job_guid}}\")", name);
        bad = 1;
    } else if (!s->op->has_id && id) {
        pc_err(cx, def, "id", "%s takes no id", name);
        bad = 1;
    } else if (id && !json_is_string(id)) {
        pc_err(cx, def, "id", "id: expected a template string");
        bad = 1;
    } else if (id && !(s->id = pv_tmpl_node(cx, id, PT_STRING))) {
        bad = 1;
    }
    json_t *body = json_object_get(def, "body");
    if (body && !s->op->has_body) {
        pc_err(cx, def, "body", "%s takes no body", name);
        bad = 1;
    } else if (body && !json_is_object(body)) {
        pc_err(cx, def, "body", "body: expected a mapping (fields of the %s request)", name);
        bad = 1;
    } else if (body && !(s->body = pv_compile(cx, body, 0))) {
        bad = 1;
    }
    if (!s->op->paged && (json_object_get(def, "query") || json_object_get(def, "filter"))) {
        pc_err(cx, def, json_object_get(def, "query") ? "query" : "filter",
               "%s is not a list operation: it takes no query or filter", name);
        bad = 1;
    } else if (s->op->paged && ps_compile_query(cx, def, s) < 0) {
        bad = 1;
    }
    json_t *lk = json_object_get(def, "lookup");
    json_t *sa = json_object_get(def, "save_as");
    if (lk) {
        if (!json_is_string(lk) || !pc_name_ok(json_string_value(lk))) {
            pc_err(cx, def, "lookup", "lookup: expected a name (letters, digits, _ and -)");
            bad = 1;
        } else if (strcmp(s->op->method, "GET") != 0) {
            pc_err(cx, def, "lookup", "lookup needs a reading operation (list_* or get_*), not %s",
                   name);
            bad = 1;
        } else {
            s->lookup = util_strdup(json_string_value(lk));
        }
        if (sa) {
            pc_err(cx, def, "save_as", "a look-up is saved under its lookup: name");
            bad = 1;
        }
    } else if (sa) {
        if (!json_is_string(sa) || !pc_name_ok(json_string_value(sa))) {
            pc_err(cx, def, "save_as", "save_as: expected a name (letters, digits, _ and -)");
            bad = 1;
        } else {
            s->save_as = util_strdup(json_string_value(sa));
        }
    }
    json_t *fb = json_object_get(def, "fallback");
    json_t *fbs = json_object_get(def, "fallback_steps");
    if ((fb || fbs) && !lk) {
        pc_err(cx, def, fb ? "fallback" : "fallback_steps", "only a look-up step has a fallback");
        bad = 1;
    }
    if (fb && !json_is_object(fb)) {
        pc_err(cx, def, "fallback", "fallback: expected a mapping of values used as the record");
        bad = 1;
    } else if (fb && !(s->fallback = pv_compile(cx, fb, 0))) {
        bad = 1;
    }
    if (fbs && (!json_is_array(fbs) || json_array_size(fbs) == 0)) {
        pc_err(cx, def, "fallback_steps", "fallback_steps: expected a non-empty list of steps");
        bad = 1;
    }
    s->has_fallback_steps = fbs != NULL;
    if (bad)
        goto fail;
    return s;
fail:
    ps_free(s);
    return NULL;
}

struct ps_list {
    struct plan_step **v;
    size_t n, cap;
};

static int ps_list_push(struct ps_list *l, struct plan_step *s)
{
    if (l->n >= PLAN_MAX_STEPS)
        return -1;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        struct plan_step **nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = s;
    return 0;
}

/* Lays out list (a YAML sequence) into l; fallback_steps recursively, with conditions. */
static int ps_layout(const struct plan_compile_ctx *cx, json_t *list, const char *prefix,
                     struct ps_cond *conds, size_t nconds, struct ps_list *l, int depth)
{
    int bad = 0;
    size_t nc = nconds;
    size_t i;
    json_t *def;
    if (depth > PLAN_MAX_NEST) {
        pc_err(cx, list, NULL, "fallback_steps nested too deeply");
        return -1;
    }
    json_array_foreach(list, i, def) {
        char *ref = util_asprintf("%s/%zu", prefix, i);
        if (!ref)
            return -1;
        struct plan_step *s = ps_compile_one(cx, def, ref, conds, nc);
        if (!s) {
            free(ref);
            bad = 1;
            continue;
        }
        if (ps_list_push(l, s) < 0) {
            pc_err(cx, list, NULL, "more than %d steps", PLAN_MAX_STEPS);
            ps_free(s);
            free(ref);
            return -1;
        }
        if (s->has_fallback_steps) {
            char *sub = util_asprintf("%s/fallback_steps", ref);
            conds[nc].name = s->lookup;
            conds[nc].missing = 1;
            if (!sub || ps_layout(cx, json_object_get(def, "fallback_steps"), sub, conds, nc + 1,
                                  l, depth + 1) < 0)
                bad = 1;
            free(sub);
            /* The rest of this list runs only when the look-up found something. */
            conds[nc].missing = 0;
            nc++;
        }
        free(ref);
    }
    return bad ? -1 : 0;
}

int plan_steps_compile(json_t *list, const struct plan_compile_ctx *cx, struct plan_steps *out)
{
    memset(out, 0, sizeof *out);
    if (json_is_null(list))
        return 0;
    if (!json_is_array(list)) {
        pc_err(cx, list, NULL, "expected a list of steps");
        return -1;
    }
    if (json_array_size(list) == 1) {
        json_t *op = json_object_get(json_array_get(list, 0), "op");
        if (json_is_string(op) && strcmp(json_string_value(op), "ignore") == 0) {
            if (json_object_size(json_array_get(list, 0)) != 1) {
                pc_err(cx, json_array_get(list, 0), NULL, "ignore takes no arguments");
                return -1;
            }
            out->ignore = 1;
            return 0;
        }
    }
    struct ps_cond conds[PLAN_MAX_NEST * PLAN_MAX_STEPS + 2];
    struct ps_list l = {0};
    int rc = ps_layout(cx, list, cx->prefix ? cx->prefix : "actions", conds, 0, &l, 0);
    if (rc < 0) {
        for (size_t i = 0; i < l.n; i++)
            ps_free(l.v[i]);
        free(l.v);
        return -1;
    }
    out->v = l.v;
    out->n = l.n;
    return 0;
}

void plan_steps_clear(struct plan_steps *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        ps_free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ---- plans ------------------------------------------------------------------------------ */

struct plan {
    char *rule, *phase, *key, *note, *status;
    int correlated, deferred, ignored;
    json_t *event, *captures, *vars;
    int64_t not_before, gen;
    struct plan_step **steps;
    unsigned char *owned;       /* 1: compiled by plan_from_json, freed with the plan */
    size_t n;
    void *keep;
    void (*release)(void *keep);
    struct tmpl_limits lim;
};

static plan_t *plan_alloc(const struct plan_ctx *ctx, size_t nsteps)
{
    plan_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->rule = util_strdup(ctx->rule ? ctx->rule : "");
    p->phase = util_strdup(ctx->phase ? ctx->phase : "actions");
    p->key = ctx->key ? util_strdup(ctx->key) : NULL;
    p->note = ctx->note ? util_strdup(ctx->note) : NULL;
    const char *st = ctx->status ? ctx->status
                                 : json_string_value(json_object_get(ctx->event, "status"));
    p->status = util_strdup(st && strcmp(st, "resolved") == 0 ? "resolved" : "firing");
    p->correlated = ctx->correlated && ctx->key;
    p->deferred = ctx->deferred;
    p->event = ctx->event ? json_incref(ctx->event) : json_object();
    p->captures = ctx->captures ? json_incref(ctx->captures) : json_object();
    p->vars = ctx->vars ? json_incref(ctx->vars) : json_object();
    p->not_before = ctx->not_before;
    p->gen = ctx->gen;
    p->lim.max_output = ctx->max_output;
    p->steps = calloc(nsteps ? nsteps : 1, sizeof *p->steps);
    p->owned = calloc(nsteps ? nsteps : 1, 1);
    if (!p->rule || !p->phase || !p->status || !p->steps || !p->owned || !p->event ||
        !p->captures || !p->vars) {
        plan_free(p);
        return NULL;
    }
    return p;
}

plan_t *plan_new(const struct plan_ctx *ctx, const struct plan_steps *steps, void *keep,
                 void (*release)(void *keep))
{
    plan_t *p = plan_alloc(ctx, steps ? steps->n : 0);
    if (!p) {
        if (release && keep)
            release(keep);
        return NULL;
    }
    p->keep = keep;
    p->release = release;
    if (steps) {
        for (size_t i = 0; i < steps->n; i++)
            p->steps[i] = steps->v[i];
        p->n = steps->n;
        p->ignored = steps->ignore;
    }
    return p;
}

void plan_free(plan_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        if (p->owned && p->owned[i])
            ps_free(p->steps[i]);
    free(p->steps);
    free(p->owned);
    free(p->rule);
    free(p->phase);
    free(p->key);
    free(p->note);
    free(p->status);
    json_decref(p->event);
    json_decref(p->captures);
    json_decref(p->vars);
    if (p->release && p->keep)
        p->release(p->keep);
    free(p);
}

const char *plan_rule(const plan_t *p) { return p->rule; }
const char *plan_phase(const plan_t *p) { return p->phase; }
const char *plan_key(const plan_t *p) { return p->key; }
const char *plan_note(const plan_t *p) { return p->note; }
const char *plan_status(const plan_t *p) { return p->status; }
json_t *plan_event(const plan_t *p) { return p->event; }
json_t *plan_captures(const plan_t *p) { return p->captures; }
size_t plan_step_count(const plan_t *p) { return p->n; }
int64_t plan_not_before(const plan_t *p) { return p->not_before; }
int plan_ignored(const plan_t *p) { return p->ignored; }

const struct plan_step *plan_step_at(const plan_t *p, size_t i)
{
    return i < p->n ? p->steps[i] : NULL;
}

void plan_add_note(plan_t *p, const char *note)
{
    if (!note || !*note)
        return;
    char *n = p->note && *p->note ? util_asprintf("%s; %s", p->note, note) : util_strdup(note);
    if (n) {
        free(p->note);
        p->note = n;
    }
}

json_t *plan_to_json(const plan_t *p)
{
    json_t *steps = json_array();
    for (size_t i = 0; steps && i < p->n; i++) {
        const struct plan_step *s = p->steps[i];
        json_t *when = json_array();
        for (size_t c = 0; when && c < s->nconds; c++)
            json_array_append_new(when, json_pack("{s:s, s:b}", "lookup", s->conds[c].name,
                                                  "found", !s->conds[c].missing));
        json_array_append_new(steps, json_pack("{s:s, s:o, s:o}", "ref", s->ref, "def",
                                               json_deep_copy(s->def), "when",
                                               when ? when : json_array()));
    }
    json_t *js = json_pack("{s:i, s:s, s:s, s:s?, s:s, s:b, s:b, s:b, s:o, s:o, s:o, s:I, s:I, "
                           "s:s?}",
                           "version", 1, "rule", p->rule, "phase", p->phase, "key", p->key,
                           "status", p->status,
                           "correlated", p->correlated, "deferred", p->deferred, "ignored",
                           p->ignored, "event", json_deep_copy(p->event), "captures",
                           json_deep_copy(p->captures), "steps",
                           steps ? steps : json_array(), "not_before", (json_int_t)p->not_before,
                           "gen", (json_int_t)p->gen, "note", p->note);
    return js;
}

plan_t *plan_from_json(json_t *js, const struct plan_resolver *r, char **err)
{
    plan_t *p = NULL;
    *err = NULL;
    json_int_t version = 0, not_before = 0, gen = 0;
    const char *rule = NULL, *phase = NULL, *key = NULL, *note = NULL, *status = NULL;
    int correlated = 0, deferred = 0, ignored = 0;
    json_t *event = NULL, *captures = NULL, *steps = NULL;
    json_error_t je;
    je.text[0] = '\0';
    /* Optional strings are written as null when absent: drop those before unpacking. */
    json_t *view = json_is_object(js) ? json_copy(js) : json_incref(js);
    static const char *const nullable[] = {"key", "status", "note"};
    for (size_t k = 0; json_is_object(view) && k < 3; k++)
        if (json_is_null(json_object_get(view, nullable[k])))
            json_object_del(view, nullable[k]);
    int bad = json_unpack_ex(view, &je, 0,
                       "{s:I, s:s, s:s, s?s, s?s, s:b, s:b, s:b, s:o, s:o, s:o, s:I, s:I, s?s}",
                       "version", &version, "rule", &rule, "phase", &phase, "key", &key,
                       "status", &status,
                       "correlated", &correlated, "deferred", &deferred, "ignored", &ignored,
                       "event", &event, "captures", &captures, "steps", &steps, "not_before",
                       &not_before, "gen", &gen, "note", &note) < 0;
    /* The strings unpacked stay valid: js holds the same values the view refers to. */
    json_decref(view);
    if (bad || version != 1 || !json_is_array(steps)) {
        *err = util_asprintf("not a plan: %s", je.text[0] ? je.text : "unknown version");
        goto fail;
    }
    struct plan_ctx ctx = {rule, phase, key, status, correlated, event, captures,
                           r ? r->vars : NULL, (int64_t)not_before, (int64_t)gen, deferred,
                           note, 0};
    p = plan_alloc(&ctx, json_array_size(steps));
    if (!p) {
        *err = util_strdup("out of memory");
        goto fail;
    }
    p->ignored = ignored;
    p->keep = r ? r->keep : NULL;
    p->release = r ? r->release : NULL;
    size_t i;
    json_t *st;
    json_array_foreach(steps, i, st) {
        const char *ref = json_string_value(json_object_get(st, "ref"));
        json_t *def = json_object_get(st, "def");
        json_t *when = json_object_get(st, "when");
        if (!ref || !def) {
            *err = util_asprintf("not a plan: step %zu has no ref or def", i);
            plan_free(p);
            return NULL;
        }
        const struct plan_step *found = r && r->find ? r->find(r->ud, rule, ref) : NULL;
        if (found && json_equal(found->def, def)) {
            p->steps[p->n++] = (struct plan_step *)found;
            continue;
        }
        /* The rule changed since the plan was made: compile the stored definition. */
        struct ps_cond conds[PLAN_MAX_NEST + 2];
        size_t nc = 0;
        size_t ci;
        json_t *c;
        json_array_foreach(when, ci, c) {
            if (nc >= sizeof conds / sizeof conds[0])
                break;
            conds[nc].name = (char *)json_string_value(json_object_get(c, "lookup"));
            conds[nc].missing = !json_is_true(json_object_get(c, "found"));
            if (conds[nc].name)
                nc++;
        }
        yamlx_diags_t diags;
        yamlx_diags_init(&diags);
        struct plan_compile_ctx cx = {NULL, &diags, r ? r->tmpls : NULL, "stored step", NULL};
        struct plan_step *s = ps_compile_one(&cx, def, ref, conds, nc);
        if (!s) {
            *err = util_asprintf("stored step %s no longer compiles: %s", ref,
                                 diags.n ? diags.msg[0] : "error");
            yamlx_diags_free(&diags);
            plan_free(p);
            return NULL;
        }
        yamlx_diags_free(&diags);
        p->owned[p->n] = 1;
        p->steps[p->n++] = s;
    }
    return p;
fail:
    if (r && r->release && r->keep)
        r->release(r->keep);
    return NULL;
}

/* ---- rendering and applying ------------------------------------------------------------ */

json_t *plan_results_new(void)
{
    return json_pack("{s:{}, s:{}, s:{}}", "lookup", "result", "missing");
}

json_t *plan_context(json_t *event, json_t *captures, json_t *vars)
{
    json_t *d = json_object();
    if (!d)
        return NULL;
    if (json_is_object(event))
        json_object_update(d, event);
    const char *k;
    json_t *v;
    json_object_foreach(captures, k, v) {
        if (!json_object_get(event, k))
            json_object_set(d, k, v);
    }
    json_object_set_new(d, "event", event ? json_incref(event) : json_object());
    json_object_set_new(d, "captures", captures ? json_incref(captures) : json_object());
    json_object_set_new(d, "vars", vars ? json_incref(vars) : json_object());
    return d;
}

static json_t *plan_data(const plan_t *p, json_t *corr, json_t *results)
{
    json_t *d = plan_context(p->event, p->captures, p->vars);
    if (!d)
        return NULL;
    json_object_set_new(d, "corr", corr ? json_incref(corr) : json_object());
    json_t *lk = json_object_get(results, "lookup");
    json_t *rs = json_object_get(results, "result");
    json_object_set_new(d, "lookup", lk ? json_incref(lk) : json_object());
    json_object_set_new(d, "result", rs ? json_incref(rs) : json_object());
    json_object_set_new(d, "rule", json_string(p->rule));
    json_object_set_new(d, "corr_key", p->key ? json_string(p->key) : json_null());
    return d;
}

static int ps_branch_taken(const struct plan_step *s, json_t *results)
{
    json_t *missing = json_object_get(results, "missing");
    json_t *lookup = json_object_get(results, "lookup");
    for (size_t i = 0; i < s->nconds; i++) {
        int is_missing = json_is_true(json_object_get(missing, s->conds[i].name));
        int known = json_object_get(lookup, s->conds[i].name) != NULL || is_missing;
        if (!known || is_missing != s->conds[i].missing)
            return 0;
    }
    return 1;
}

enum plan_render plan_step_render(const plan_t *p, size_t i, json_t *corr, json_t *results,
                                  json_t **req, const char **reason, char **err)
{
    *req = NULL;
    *err = NULL;
    if (reason)
        *reason = NULL;
    if (i >= p->n) {
        *err = util_strdup("no such step");
        return PLAN_RENDER_FAIL;
    }
    const struct plan_step *s = p->steps[i];
    if (!ps_branch_taken(s, results)) {
        if (reason)
            *reason = "branch not taken";
        return PLAN_RENDER_SKIP;
    }
    if (s->kind == PS_MAIL && json_is_true(json_object_get(p->event, "auto"))) {
        if (reason)
            *reason = "not answering automatic mail";
        return PLAN_RENDER_SKIP;
    }
    json_t *data = plan_data(p, corr, results);
    json_t *out = NULL;
    enum plan_render rc = PLAN_RENDER_FAIL;
    if (!data)
        goto done;
    if (s->kind == PS_MAIL) {
        json_t *mail = NULL;
        if (pv_render(s->mail, data, &p->lim, "send_mail", &mail, err) < 0)
            goto done;
        const char *to = json_string_value(json_object_get(mail, "to"));
        if (!to || !*to) {
            json_decref(mail);
            if (reason)
                *reason = "no recipient: 'to' rendered empty";
            rc = PLAN_RENDER_SKIP;
            goto done;
        }
        out = json_pack("{s:s, s:o}", "op", "send_mail", "body", mail);
        rc = out ? PLAN_RENDER_OK : PLAN_RENDER_FAIL;
        goto done;
    }
    char *id = NULL;
    if (s->id && !(id = pv_render_text(s->id, data, &p->lim, "id", err)))
        goto done;
    char *path = tp_op_path(s->op, id);
    if (!path) {
        *err = util_asprintf("%s needs an id, but '%s' rendered empty", s->op->name,
                             json_string_value(json_object_get(s->def, "id")));
        free(id);
        goto done;
    }
    out = json_pack("{s:s, s:s, s:s, s:s?}", "op", s->op->name, "method", s->op->method, "path",
                    path, "id", id);
    free(path);
    free(id);
    if (!out)
        goto done;
    int empty = 0;
    if (s->op->paged) {
        json_t *q = json_object();
        json_t *pg = NULL, *ps = NULL;
        if (s->page && pv_render(s->page, data, &p->lim, "query.page", &pg, err) < 0)
            goto fail_q;
        if (s->page_size && pv_render(s->page_size, data, &p->lim, "query.pageSize", &ps, err) < 0)
            goto fail_q;
        json_object_set_new(q, "page", pg ? pg : json_integer(1));
        json_object_set_new(q, "pageSize", ps ? ps : json_integer(s->lookup ? 1 : 50));
        pg = ps = NULL;
        if (s->order_by)
            json_object_set_new(q, "orderBy", json_string(s->order_by));
        if (s->filter) {
            struct tp_filter *tf = tp_filter_new();
            if (!tf || pf_render(s->filter, tf, data, &p->lim, 1, &empty, err) < 0) {
                tp_filter_free(tf);
                goto fail_q;
            }
            const char *fs = tp_filter_str(tf);
            if (!fs) {
                *err = util_strdup("filter: could not be built");
                tp_filter_free(tf);
                goto fail_q;
            }
            json_object_set_new(q, "filter", json_string(fs));
            tp_filter_free(tf);
        }
        json_object_set_new(out, "query", q);
        goto query_done;
    fail_q:
        json_decref(pg);
        json_decref(ps);
        json_decref(q);
        goto done;
    }
query_done:
    if (s->op->has_body) {
        json_t *body = NULL;
        if (s->body && pv_render(s->body, data, &p->lim, "body", &body, err) < 0)
            goto done;
        json_object_set_new(out, "body", body ? body : json_object());
    }
    if (s->lookup && empty) {
        if (reason)
            *reason = "a filter value rendered empty: look-up not sent";
        rc = PLAN_RENDER_EMPTY;
    } else {
        rc = PLAN_RENDER_OK;
    }
done:
    json_decref(data);
    if (rc == PLAN_RENDER_OK || rc == PLAN_RENDER_EMPTY)
        *req = out;
    else
        json_decref(out);
    if (rc == PLAN_RENDER_FAIL && !*err)
        *err = util_strdup("out of memory");
    return rc;
}

/* The record a look-up result holds: data[0] of a page, the first element of an array, or
 * the object itself; NULL when there is none. Borrowed. */
static json_t *ps_record(json_t *result)
{
    if (json_is_object(result)) {
        json_t *data = json_object_get(result, "data");
        if (json_is_array(data))
            return json_is_object(json_array_get(data, 0)) ? json_array_get(data, 0) : NULL;
        return json_object_size(result) ? result : NULL;
    }
    if (json_is_array(result))
        return json_is_object(json_array_get(result, 0)) ? json_array_get(result, 0) : NULL;
    return NULL;
}

int plan_step_apply(const plan_t *p, size_t i, json_t *result, json_t *results, json_t *corr,
                    char **err)
{
    *err = NULL;
    if (i >= p->n)
        return 0;
    const struct plan_step *s = p->steps[i];
    if (s->lookup) {
        json_t *lk = json_object_get(results, "lookup");
        json_t *missing = json_object_get(results, "missing");
        json_t *rec = ps_record(result);
        if (rec) {
            json_object_set(lk, s->lookup, rec);
            json_object_del(missing, s->lookup);
        } else {
            json_object_set_new(missing, s->lookup, json_true());
            if (s->fallback) {
                json_t *data = plan_data(p, corr, results);
                json_t *fb = NULL;
                int rc = data ? pv_render(s->fallback, data, &p->lim, "fallback", &fb, err) : -1;
                json_decref(data);
                if (rc < 0) {
                    if (!*err)
                        *err = util_strdup("out of memory");
                    return -1;
                }
                json_object_set_new(lk, s->lookup, fb ? fb : json_object());
            } else if (s->has_fallback_steps) {
                json_object_set_new(lk, s->lookup, json_null());
            } else {
                *err = util_asprintf("look-up '%s' (%s) found nothing and has no fallback",
                                     s->lookup, s->op->name);
                return -1;
            }
        }
        return 0;
    }
    if (s->save_as && result)
        json_object_set(json_object_get(results, "result"), s->save_as, result);
    if (corr && p->correlated && s->kind == PS_API && result && !json_is_null(result)) {
        switch (s->op->id) {
        case TP_OP_CREATE_JOB:
            json_object_set(corr, "job_guid", result);
            break;
        case TP_OP_CREATE_JOB_REQUEST:
            json_object_set(corr, "job_request_number", result);
            break;
        case TP_OP_CREATE_JOB_TASK: {
            json_t *tasks = json_object_get(corr, "tasks");
            if (!json_is_object(tasks)) {
                tasks = json_object();
                json_object_set_new(corr, "tasks", tasks);
            }
            json_object_set(tasks, s->save_as ? s->save_as : "task", result);
            break;
        }
        default:
            break;
        }
    }
    return 0;
}

int plan_begin(const plan_t *p, json_t *corr, int64_t now)
{
    if (!p->deferred) {
        /* An open plan starts a new incarnation of the key: the ids of the one before go
         * now (not at the decision), after everything queued before it in the key's lane. */
        if (corr && p->correlated && strcmp(p->phase, "open") == 0 &&
            json_integer_value(json_object_get(corr, "ids_gen")) != p->gen) {
            json_object_del(corr, "job_guid");
            json_object_del(corr, "job_request_number");
            json_object_del(corr, "tasks");
            json_object_set_new(corr, "ids_gen", json_integer(p->gen));
        }
        return 1;
    }
    const char *status = json_string_value(json_object_get(corr, "status"));
    json_int_t gen = json_integer_value(json_object_get(corr, "gen"));
    if (!status || strcmp(status, "resolving") != 0 || gen != p->gen)
        return 0;
    json_object_set_new(corr, "status", json_string("completed"));
    json_object_set_new(corr, "resolved_at", json_integer(now));
    json_object_del(corr, "resolve_due");
    return 1;
}

enum plan_outcome plan_run(const plan_t *p, const struct plan_backend *be,
                           const struct plan_corr_store *cs, int64_t now, json_t *trace,
                           char **err)
{
    *err = NULL;
    enum plan_outcome out = PLAN_DONE;
    json_t *corr = NULL;
    json_t *results = plan_results_new();
    if (!results) {
        *err = util_strdup("out of memory");
        return PLAN_RETRY;
    }
    if (p->key && cs && cs->get)
        corr = cs->get(cs->ud, p->key);
    if (!corr && p->correlated)
        corr = json_object();
    if (!plan_begin(p, corr, now)) {
        out = PLAN_CANCELLED;
        goto done;
    }
    if (p->correlated && cs && cs->put)
        cs->put(cs->ud, p->key, corr);
    for (size_t i = 0; i < p->n; i++) {
        json_t *req = NULL;
        const char *reason = NULL;
        char *rerr = NULL;
        enum plan_render rr = plan_step_render(p, i, corr, results, &req, &reason, &rerr);
        if (rr == PLAN_RENDER_FAIL) {
            *err = util_asprintf("step %zu (%s): %s", i + 1, plan_step_op(p->steps[i]), rerr);
            free(rerr);
            out = PLAN_FAILED;
            goto done;
        }
        if (rr == PLAN_RENDER_SKIP) {
            if (trace && reason && strcmp(reason, "branch not taken") != 0)
                json_array_append_new(trace, json_pack("{s:s, s:s}", "op",
                                                       plan_step_op(p->steps[i]), "skipped",
                                                       reason));
            continue;
        }
        json_t *result = NULL;
        if (rr == PLAN_RENDER_EMPTY) {
            if (trace && req) {
                json_object_set_new(req, "skipped", json_string(reason ? reason : "not sent"));
                if (p->steps[i]->lookup)
                    json_object_set_new(req, "lookup", json_string(p->steps[i]->lookup));
                json_array_append(trace, req);
            }
        } else {
            char *cerr = NULL;
            enum plan_call c = be->call(be->ud, req, &result, &cerr);
            if (c != PLAN_CALL_OK) {
                *err = util_asprintf("step %zu (%s): %s", i + 1, plan_step_op(p->steps[i]),
                                     cerr ? cerr : "failed");
                free(cerr);
                json_decref(req);
                out = c == PLAN_CALL_RETRY ? PLAN_RETRY : PLAN_FAILED;
                goto done;
            }
            free(cerr);
            if (trace) {
                json_object_set(req, "result", result ? result : json_null());
                if (p->steps[i]->lookup)
                    json_object_set_new(req, "lookup", json_string(p->steps[i]->lookup));
                json_array_append(trace, req);
            }
        }
        json_decref(req);
        char *aerr = NULL;
        int arc = plan_step_apply(p, i, result, results, corr, &aerr);
        json_decref(result);
        if (arc < 0) {
            *err = util_asprintf("step %zu (%s): %s", i + 1, plan_step_op(p->steps[i]), aerr);
            free(aerr);
            out = PLAN_FAILED;
            goto done;
        }
        if (corr && p->correlated && cs && cs->put)
            cs->put(cs->ud, p->key, corr);
    }
done:
    json_decref(corr);
    json_decref(results);
    return out;
}

/* ---- fake TrackplanFM ------------------------------------------------------------------- */

static enum plan_call fake_call(void *ud, json_t *req, json_t **result, char **err)
{
    struct plan_fake *f = ud;
    const char *opname = json_string_value(json_object_get(req, "op"));
    *result = NULL;
    *err = NULL;
    if (opname && strcmp(opname, "send_mail") == 0) {
        *result = json_pack("{s:b}", "queued", 1);
        return PLAN_CALL_OK;
    }
    const struct tp_op *op = opname ? tp_op_find(opname) : NULL;
    if (!op) {
        *err = util_asprintf("unknown operation '%s'", opname ? opname : "");
        return PLAN_CALL_FAIL;
    }
    const char *path = json_string_value(json_object_get(req, "path"));
    const char *last = path ? strrchr(path, '/') : NULL;
    char guid[40];
    switch (op->result) {
    case TP_RESULT_GUID:
        if (op->has_id && last) {
            *result = json_string(last + 1);
        } else {
            snprintf(guid, sizeof guid, "00000000-0000-4000-8000-%012u", ++f->guids);
            *result = json_string(guid);
        }
        break;
    case TP_RESULT_NUMBER:
        *result = json_integer(++f->numbers);
        break;
    case TP_RESULT_PAGE:
        *result = json_pack("{s:i, s:[]}", "count", 0, "data");
        break;
    case TP_RESULT_OBJECT:
        /* Reads find nothing in a dry run; an update echoes what it sent. */
        *result = strcmp(op->method, "GET") == 0 ? json_null()
                                                 : json_deep_copy(json_object_get(req, "body"));
        break;
    case TP_RESULT_TOKEN:
        *result = json_pack("{s:s}", "token", "dry-run");
        break;
    case TP_RESULT_NONE:
        *result = json_null();
        break;
    }
    if (!*result)
        *result = json_null();
    return PLAN_CALL_OK;
}

struct plan_backend plan_fake_backend(struct plan_fake *f)
{
    struct plan_backend be = {fake_call, f};
    return be;
}

/* ---- look-up cache ---------------------------------------------------------------------- */

struct plan_cache {
    pthread_mutex_t mu;
    int64_t ttl_ms;
    size_t max;
    json_t *map;          /* key → [expires_ms, result] */
    struct plan_backend inner;
    uint64_t hits, misses;
};

plan_cache_t *plan_cache_new(int64_t ttl_ms, size_t max_entries)
{
    plan_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->map = json_object();
    if (!c->map || pthread_mutex_init(&c->mu, NULL) != 0) {
        json_decref(c->map);
        free(c);
        return NULL;
    }
    c->ttl_ms = ttl_ms;
    c->max = max_entries;
    return c;
}

void plan_cache_free(plan_cache_t *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    json_decref(c->map);
    free(c);
}

void plan_cache_stats(const plan_cache_t *c, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
}

static enum plan_call cache_call(void *ud, json_t *req, json_t **result, char **err)
{
    plan_cache_t *c = ud;
    const char *method = json_string_value(json_object_get(req, "method"));
    if (!method || strcmp(method, "GET") != 0 || c->max == 0 || c->ttl_ms <= 0)
        return c->inner.call(c->inner.ud, req, result, err);
    json_t *k = json_pack("{s:O?, s:O?}", "path", json_object_get(req, "path"), "query",
                          json_object_get(req, "query"));
    char *key = k ? json_dumps(k, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(k);
    if (!key)
        return c->inner.call(c->inner.ud, req, result, err);
    int64_t now = util_mono_ms();
    pthread_mutex_lock(&c->mu);
    json_t *e = json_object_get(c->map, key);
    if (e && json_integer_value(json_array_get(e, 0)) > now) {
        *result = json_deep_copy(json_array_get(e, 1));
        c->hits++;
        pthread_mutex_unlock(&c->mu);
        free(key);
        *err = NULL;
        return *result ? PLAN_CALL_OK : PLAN_CALL_RETRY;
    }
    c->misses++;
    pthread_mutex_unlock(&c->mu);
    enum plan_call rc = c->inner.call(c->inner.ud, req, result, err);
    if (rc == PLAN_CALL_OK && *result) {
        pthread_mutex_lock(&c->mu);
        if (json_object_size(c->map) >= c->max) {
            /* Drop what expired; when still full, start over (bounded, simple). */
            const char *mk;
            json_t *mv, *tmp;
            json_object_foreach_safe(c->map, tmp, mk, mv) {
                if (json_integer_value(json_array_get(mv, 0)) <= now)
                    json_object_del(c->map, mk);
            }
            if (json_object_size(c->map) >= c->max)
                json_object_clear(c->map);
        }
        json_object_set_new(c->map, key,
                            json_pack("[I, o]", (json_int_t)(now + c->ttl_ms),
                                      json_deep_copy(*result)));
        pthread_mutex_unlock(&c->mu);
    }
    free(key);
    return rc;
}

struct plan_backend plan_cache_backend(plan_cache_t *c, const struct plan_backend *inner)
{
    c->inner = *inner;
    struct plan_backend be = {cache_call, c};
    return be;
}
