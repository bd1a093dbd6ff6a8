/* sim_filter: Gridify filter and orderBy; see sim_filter.h. The grammar follows Gridify's lexer
 * and parser: ',' (AND) and '|' (OR) have equal precedence and group left to right; a value
 * starts after the operator and optional blanks and runs to the next unescaped ( ) , | or /i;
 * a backslash makes the next character literal. Typing follows the stored value: numbers
 * compare numerically, ISO 8601 strings as instants, other strings byte-wise. */
#include "sim/sim_filter.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "sim/sim_json.h"

#define SIM_ORDER_MAX_KEYS 32

enum fop {
    FOP_EQ, FOP_NE, FOP_LT, FOP_GT, FOP_GE, FOP_LE,
    FOP_LIKE, FOP_NLIKE, FOP_SW, FOP_NSW, FOP_EW, FOP_NEW
};

/* A field reference: the resolved first segment, then nested segments matched ignoring case. */
struct fpath {
    char *field;
    char **rest;
    size_t nrest;
};

struct fcond {
    struct fpath path;
    enum fop op;
    int ci;          /* "/i" followed the value */
    int empty;       /* nothing after the operator: null or the type's default */
    int null_kw;     /* the value is the word null (= and != only) */
    char *value;     /* unescaped value; lowercased in place when ci */
    size_t value_len;
    int num_ok;
    double num;
    int ts_ok;
    int64_t ts;
    int bool_ok;
    int bool_val;
};

struct fgroup;

struct fitem {
    char conn;              /* ',' or '|' joining this item to the result so far; 0 first */
    struct fgroup *group;   /* a parenthesised sub-expression, or NULL for cond */
    struct fcond cond;
};

struct fgroup {
    struct fitem *items;
    size_t n, cap;
};

struct sim_filter {
    struct fgroup *root;
};

struct okey {
    struct fpath path;
    int desc;
};

struct sim_order {
    struct okey keys[SIM_ORDER_MAX_KEYS];
    size_t n;
};

struct fparser {
    const char *s;
    size_t len;
    size_t pos;
    sim_field_fn resolve;
    void *ctx;
    char *err;
    size_t errlen;
    size_t terms;
    int failed;
};

/* ---- shared helpers ------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int is_field_start(unsigned char c) { return isalpha(c) || c >= 0x80; }
static int is_field_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '.' || c >= 0x80;
}

static void fpath_free(struct fpath *p)
{
    free(p->field);
    for (size_t i = 0; i < p->nrest; i++)
        free(p->rest[i]);
    free(p->rest);
    memset(p, 0, sizeof(*p));
}

/* Resolves a field token ("a" or "a.b.c") into p. 0, or -1 with err set. */
static int fpath_resolve(struct fpath *p, const char *tok, size_t toklen, sim_field_fn resolve,
                         void *ctx, char *err, size_t errlen)
{
    int rc = -1;
    char *name = util_strndup(tok, toklen);
    memset(p, 0, sizeof(*p));
    if (!name) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    if (name[toklen - 1] == '.' || strstr(name, "..")) {
        set_err(err, errlen, "Invalid field name '%s'", name);
        goto out;
    }
    char *dot = strchr(name, '.');
    if (dot)
        *dot = '\0';
    const char *canon = resolve ? resolve(ctx, name) : name;
    if (!canon) {
        if (dot)
            *dot = '.';
        set_err(err, errlen, "Mapping '%s' not found", name);
        goto out;
    }
    p->field = util_strdup(canon);
    if (!p->field) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    for (char *seg = dot ? dot + 1 : NULL; seg;) {
        char *next = strchr(seg, '.');
        if (next)
            *next++ = '\0';
        char **grown = realloc(p->rest, (p->nrest + 1) * sizeof(*grown));
        if (!grown) {
            set_err(err, errlen, "out of memory");
            goto out;
        }
        p->rest = grown;
        p->rest[p->nrest] = util_strdup(seg);
        if (!p->rest[p->nrest]) {
            set_err(err, errlen, "out of memory");
            goto out;
        }
        p->nrest++;
        seg = next;
    }
    rc = 0;
out:
    if (rc < 0)
        fpath_free(p);
    free(name);
    return rc;
}

/* The record's value at the path (borrowed), or NULL when any step is missing. */
static json_t *fpath_get(const struct fpath *p, json_t *rec)
{
    json_t *v = json_object_get(rec, p->field);
    for (size_t i = 0; v && i < p->nrest; i++)
        v = sim_json_ci_get(v, p->rest[i], NULL);
    return v;
}

/* True when s starts with an ISO 8601 calendar date (YYYY-MM-DD): only such strings are
 * treated as instants, so codes like "2025" stay strings. */
static int looks_like_date(const char *s, size_t n)
{
    static const char shape[] = "dddd-dd-dd";
    if (n < sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
            return 0;
    }
    return 1;
}

/* Copies s without ASCII blanks at both ends into out (n bytes); 0, or -1 when too long. */
static int trimmed(const char *s, char *out, size_t n)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= n)
        return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

/* ---- filter parsing ------------------------------------------------------------------- */

static void fp_fail(struct fparser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fp_fail(struct fparser *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    if (!p->err || p->errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
}

static char fp_cur(const struct fparser *p) { return p->pos < p->len ? p->s[p->pos] : '\0'; }
static char fp_peek(const struct fparser *p, size_t k)
{
    return p->pos + k < p->len ? p->s[p->pos + k] : '\0';
}

static void fp_skip_ws(struct fparser *p)
{
    while (p->pos < p->len && isspace((unsigned char)p->s[p->pos]))
        p->pos++;
}

/* A printable description of the character at the cursor, for error messages. */
static const char *fp_what(const struct fparser *p, char buf[16])
{
    char c = fp_cur(p);
    if (p->pos >= p->len)
        return "end of filter";
    if (isprint((unsigned char)c))
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", (unsigned char)c);
    return buf;
}

static void fcond_free(struct fcond *c)
{
    fpath_free(&c->path);
    free(c->value);
}

static void fgroup_free(struct fgroup *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++) {
        if (g->items[i].group)
            fgroup_free(g->items[i].group);
        else
            fcond_free(&g->items[i].cond);
    }
    free(g->items);
    free(g);
}

/* Reads the operator at the cursor. 0, or -1 when there is none. */
static int fp_operator(struct fparser *p, enum fop *op)
{
    char c = fp_cur(p), d = fp_peek(p, 1);
    static const struct { char a, b; enum fop op; } two[] = {
        {'=', '=', FOP_EQ}, {'=', '*', FOP_LIKE}, {'!', '=', FOP_NE}, {'!', '*', FOP_NLIKE},
        {'!', '^', FOP_NSW}, {'!', '$', FOP_NEW}, {'>', '=', FOP_GE}, {'<', '=', FOP_LE},
    };
    static const struct { char a; enum fop op; } one[] = {
        {'=', FOP_EQ}, {'<', FOP_LT}, {'>', FOP_GT}, {'^', FOP_SW}, {'$', FOP_EW},
    };
    for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++) {
        if (c == two[i].a && d == two[i].b) {
            *op = two[i].op;
            p->pos += 2;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
        if (c == one[i].a) {
            *op = one[i].op;
            p->pos++;
            return 0;
        }
    }
    return -1;
}

/* True when the cursor is at something Gridify's lexer reads as an operator token. */
static int fp_at_operator(const struct fparser *p)
{
    char c = fp_cur(p), d = fp_peek(p, 1);
    if (c == '=' || c == '<' || c == '>' || c == '^' || c == '$')
        return 1;
    return c == '!' && (d == '=' || d == '*' || d == '^' || d == '$');
}

/* Pre-computes the typed forms of a condition's value. */
static void fcond_prepare(struct fcond *c)
{
    char t[128];
    if (c->empty)
        return;
    if ((c->op == FOP_EQ || c->op == FOP_NE) && strcmp(c->value, "null") == 0)
        c->null_kw = 1;
    if (trimmed(c->value, t, sizeof(t)) == 0 && t[0]) {
        if (!strpbrk(t, "xXpP") && util_parse_double(t, &c->num) == 0)
            c->num_ok = 1;
        if (strcasecmp(t, "true") == 0 || strcasecmp(t, "false") == 0) {
            c->bool_ok = 1;
            c->bool_val = strcasecmp(t, "true") == 0;
        }
        if (looks_like_date(t, strlen(t)) && util_parse_iso8601(t, &c->ts) == 0)
            c->ts_ok = 1;
    }
    if (c->ci) {
        for (size_t i = 0; i < c->value_len; i++)
            c->value[i] = (char)tolower((unsigned char)c->value[i]);
    }
}

/* field op value [/i] */
static int fp_cond(struct fparser *p, struct fcond *c)
{
    char what[16];
    memset(c, 0, sizeof(*c));
    fp_skip_ws(p);
    if (!is_field_start((unsigned char)fp_cur(p))) {
        fp_fail(p, "Unexpected %s at index %zu, expected a field name", fp_what(p, what), p->pos);
        return -1;
    }
    size_t start = p->pos;
    while (p->pos < p->len && is_field_char((unsigned char)p->s[p->pos]))
        p->pos++;
    char ferr[160];
    if (fpath_resolve(&c->path, p->s + start, p->pos - start, p->resolve, p->ctx, ferr,
                      sizeof(ferr)) < 0) {
        fp_fail(p, "%s", ferr);
        return -1;
    }
    fp_skip_ws(p);
    if (fp_cur(p) == '[') {
        fp_fail(p, "Indexers are not supported (index %zu)", p->pos);
        return -1;
    }
    if (fp_operator(p, &c->op) < 0) {
        fp_fail(p, "Unexpected %s at index %zu, expected an operator", fp_what(p, what), p->pos);
        return -1;
    }
    fp_skip_ws(p);
    if (fp_at_operator(p)) {
        fp_fail(p, "Unexpected operator %s at index %zu, expected a value (escape it with \\)",
                fp_what(p, what), p->pos);
        return -1;
    }
    /* the value, unescaped; never longer than the rest of the text */
    c->value = malloc(p->len - p->pos + 1);
    if (!c->value) {
        fp_fail(p, "out of memory");
        return -1;
    }
    size_t n = 0;
    int esc = 0;
    while (p->pos < p->len) {
        char ch = p->s[p->pos];
        if (esc) {
            esc = 0;
        } else if (ch == '\\') {
            esc = 1;
            p->pos++;
            continue;
        } else if ((ch == '/' && fp_peek(p, 1) == 'i') || ch == '(' || ch == ')' || ch == ',' ||
                   ch == '|') {
            break;
        }
        c->value[n++] = ch;
        p->pos++;
    }
    c->value[n] = '\0';
    c->value_len = n;
    c->empty = n == 0;
    if (fp_cur(p) == '/' && fp_peek(p, 1) == 'i') {
        c->ci = 1;
        p->pos += 2;
    }
    fcond_prepare(c);
    return 0;
}

static int fgroup_add(struct fparser *p, struct fgroup *g, struct fitem *it)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        struct fitem *grown = realloc(g->items, cap * sizeof(*grown));
        if (!grown) {
            fp_fail(p, "out of memory");
            return -1;
        }
        g->items = grown;
        g->cap = cap;
    }
    g->items[g->n++] = *it;
    return 0;
}

/* A sequence of conditions and parenthesised groups joined by ',' and '|'. Stops before ')'
 * (when depth > 0) or at the end of the text. */
static struct fgroup *fp_group(struct fparser *p, int depth)
{
    char what[16];
    struct fgroup *g = calloc(1, sizeof(*g));
    char conn = 0;
    if (!g) {
        fp_fail(p, "out of memory");
        return NULL;
    }
    for (;;) {
        struct fitem it;
        memset(&it, 0, sizeof(it));
        it.conn = conn;
        if (++p->terms > SIM_FILTER_MAX_TERMS) {
            fp_fail(p, "Filter has more than %d terms", SIM_FILTER_MAX_TERMS);
            goto fail;
        }
        fp_skip_ws(p);
        if (fp_cur(p) == '(') {
            if (depth + 1 > SIM_FILTER_MAX_DEPTH) {
                fp_fail(p, "Parentheses nested deeper than %d", SIM_FILTER_MAX_DEPTH);
                goto fail;
            }
            p->pos++;
            it.group = fp_group(p, depth + 1);
            if (!it.group)
                goto fail;
            fp_skip_ws(p);
            if (fp_cur(p) != ')') {
                fgroup_free(it.group);
                fp_fail(p, "Unexpected %s at index %zu, expected ')'", fp_what(p, what), p->pos);
                goto fail;
            }
            p->pos++;
        } else if (fp_cond(p, &it.cond) < 0) {
            fcond_free(&it.cond);
            goto fail;
        }
        if (fgroup_add(p, g, &it) < 0) {
            if (it.group)
                fgroup_free(it.group);
            else
                fcond_free(&it.cond);
            goto fail;
        }
        fp_skip_ws(p);
        char c = fp_cur(p);
        if (c == ',' || c == '|') {
            conn = c;
            p->pos++;
            continue;
        }
        if (p->pos >= p->len || (c == ')' && depth > 0))
            return g;
        fp_fail(p, "Unexpected %s at index %zu, expected ',', '|' or the end", fp_what(p, what),
                p->pos);
        goto fail;
    }
fail:
    fgroup_free(g);
    return NULL;
}

sim_filter_t *sim_filter_parse(const char *text, sim_field_fn resolve, void *ctx, char *err,
                               size_t errlen)
{
    struct fparser p = {.s = text ? text : "", .resolve = resolve, .ctx = ctx, .err = err,
                        .errlen = errlen};
    sim_filter_t *f = calloc(1, sizeof(*f));
    if (!f) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    p.len = strlen(p.s);
    if (p.len > SIM_FILTER_MAX_LEN) {
        set_err(err, errlen, "Filter longer than %d bytes", SIM_FILTER_MAX_LEN);
        goto fail;
    }
    fp_skip_ws(&p);
    if (p.pos == p.len)
        return f; /* blank: everything matches */
    f->root = fp_group(&p, 0);
    if (!f->root)
        goto fail;
    return f;
fail:
    free(f);
    return NULL;
}

void sim_filter_free(sim_filter_t *f)
{
    if (!f)
        return;
    fgroup_free(f->root);
    free(f);
}

/* ---- filter evaluation ---------------------------------------------------------------- */

static int is_negated(enum fop op)
{
    return op == FOP_NE || op == FOP_NLIKE || op == FOP_NSW || op == FOP_NEW;
}

static int cmp_result(enum fop op, int cmp)
{
    switch (op) {
    case FOP_EQ: return cmp == 0;
    case FOP_NE: return cmp != 0;
    case FOP_LT: return cmp < 0;
    case FOP_GT: return cmp > 0;
    case FOP_GE: return cmp >= 0;
    case FOP_LE: return cmp <= 0;
    default: return 0;
    }
}

/* Substring tests over a haystack that is already lowercased when the condition is /i. */
static int text_op(const struct fcond *c, const char *s, size_t n)
{
    const char *v = c->value;
    size_t vn = c->value_len;
    int r;
    switch (c->op) {
    case FOP_LIKE:
    case FOP_NLIKE:
        r = vn == 0 || memmem(s, n, v, vn) != NULL;
        break;
    case FOP_SW:
    case FOP_NSW:
        r = n >= vn && memcmp(s, v, vn) == 0;
        break;
    case FOP_EW:
    case FOP_NEW:
        r = n >= vn && memcmp(s + n - vn, v, vn) == 0;
        break;
    default: {
        size_t m = n < vn ? n : vn;
        int cmp = memcmp(s, v, m);
        if (cmp == 0)
            cmp = n < vn ? -1 : n > vn;
        return cmp_result(c->op, cmp);
    }
    }
    return is_negated(c->op) ? !r : r;
}

/* Applies the condition to the text s (n bytes), lowercasing a copy first when /i. */
static int text_match(const struct fcond *c, const char *s, size_t n)
{
    if (!c->ci)
        return text_op(c, s, n);
    char small[256];
    char *low = n < sizeof(small) ? small : malloc(n + 1);
    if (!low)
        return 0;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)s[i]);
    low[n] = '\0';
    int r = text_op(c, low, n);
    if (low != small)
        free(low);
    return r;
}

static int is_text_op(enum fop op) { return op >= FOP_LIKE; }

static int null_match(const struct fcond *c)
{
    if (c->op == FOP_EQ)
        return c->empty || c->null_kw;
    if (c->op == FOP_NE)
        return !(c->empty || c->null_kw);
    return is_negated(c->op);
}

static int number_match(const struct fcond *c, json_t *v)
{
    double d = json_number_value(v);
    if (is_text_op(c->op)) {
        char t[64];
        sim_json_text(v, t, sizeof(t));
        return text_match(c, t, strlen(t));
    }
    if (c->empty && (c->op == FOP_EQ || c->op == FOP_NE))
        return c->op == FOP_EQ ? d == 0 : d != 0;
    if (c->null_kw)
        return c->op == FOP_NE;
    if (!c->num_ok)
        return 0; /* Gridify answers "no rows" when the value does not convert */
    return cmp_result(c->op, d < c->num ? -1 : d > c->num);
}

static int bool_match(const struct fcond *c, int b)
{
    if (is_text_op(c->op)) {
        const char *t = b ? "True" : "False";
        return text_match(c, t, strlen(t));
    }
    if (c->empty && (c->op == FOP_EQ || c->op == FOP_NE))
        return c->op == FOP_EQ ? !b : b;
    if (c->null_kw)
        return c->op == FOP_NE;
    if (!c->bool_ok)
        return 0;
    return cmp_result(c->op, b - c->bool_val);
}

static int string_match(const struct fcond *c, json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (!is_text_op(c->op)) {
        if (c->empty && (c->op == FOP_EQ || c->op == FOP_NE))
            return c->op == FOP_EQ ? n == 0 : n != 0;
        if (c->null_kw)
            return c->op == FOP_NE;
        int64_t ts;
        if (c->ts_ok && looks_like_date(s, n) && util_parse_iso8601(s, &ts) == 0)
            return cmp_result(c->op, ts < c->ts ? -1 : ts > c->ts);
    }
    return text_match(c, s, n);
}

static int cond_match(const struct fcond *c, json_t *rec)
{
    json_t *v = fpath_get(&c->path, rec);
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_NULL: return null_match(c);
    case JSON_INTEGER:
    case JSON_REAL: return number_match(c, v);
    case JSON_TRUE: return bool_match(c, 1);
    case JSON_FALSE: return bool_match(c, 0);
    case JSON_STRING: return string_match(c, v);
    default: return is_negated(c->op); /* objects and arrays satisfy only negations */
    }
}

static int group_match(const struct fgroup *g, json_t *rec)
{
    int r = 1;
    for (size_t i = 0; i < g->n; i++) {
        const struct fitem *it = &g->items[i];
        if (i > 0 && ((it->conn == ',' && !r) || (it->conn == '|' && r)))
            continue; /* the result so far decides */
        r = it->group ? group_match(it->group, rec) : cond_match(&it->cond, rec);
    }
    return r;
}

int sim_filter_match(const sim_filter_t *f, json_t *record)
{
    if (!f || !f->root)
        return 1;
    return group_match(f->root, record);
}

/* ---- orderBy -------------------------------------------------------------------------- */

sim_order_t *sim_order_parse(const char *text, sim_field_fn resolve, void *ctx, char *err,
                             size_t errlen)
{
    sim_order_t *o = calloc(1, sizeof(*o));
    char *copy = NULL;
    if (!o) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (!text)
        return o;
    if (strlen(text) > SIM_FILTER_MAX_LEN) {
        set_err(err, errlen, "orderBy longer than %d bytes", SIM_FILTER_MAX_LEN);
        goto fail;
    }
    const char *t = text;
    while (isspace((unsigned char)*t))
        t++;
    if (!*t)
        return o;
    copy = util_strdup(text);
    if (!copy) {
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    char *item = copy;
    for (;;) {
        char *next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        char *s = item;
        while (isspace((unsigned char)*s))
            s++;
        if (!*s) {
            set_err(err, errlen, "Invalid orderBy: an empty field name");
            goto fail;
        }
        if (o->n == SIM_ORDER_MAX_KEYS) {
            set_err(err, errlen, "orderBy has more than %d fields", SIM_ORDER_MAX_KEYS);
            goto fail;
        }
        char *name = s;
        if (!is_field_start((unsigned char)*s)) {
            set_err(err, errlen, "Invalid orderBy field '%s'", name);
            goto fail;
        }
        while (is_field_char((unsigned char)*s))
            s++;
        size_t name_len = (size_t)(s - name);
        char *dir = s;
        while (isspace((unsigned char)*dir))
            dir++;
        char *dir_end = dir;
        while (*dir_end && !isspace((unsigned char)*dir_end))
            dir_end++;
        char *tail = dir_end;
        while (isspace((unsigned char)*tail))
            tail++;
        int desc = 0;
        size_t dir_len = (size_t)(dir_end - dir);
        if (*tail || (dir_len > 0 && dir == s) ||
            (dir_len > 0 && !(dir_len == 3 && strncasecmp(dir, "asc", 3) == 0) &&
             !(dir_len == 4 && strncasecmp(dir, "desc", 4) == 0))) {
            set_err(err, errlen, "Invalid orderBy '%s': expected a field name then asc or desc",
                    name);
            goto fail;
        }
        desc = dir_len == 4;
        if (fpath_resolve(&o->keys[o->n].path, name, name_len, resolve, ctx, err, errlen) < 0)
            goto fail;
        o->keys[o->n].desc = desc;
        o->n++;
        if (!next)
            break;
        item = next;
    }
    free(copy);
    return o;
fail:
    free(copy);
    sim_order_free(o);
    return NULL;
}

void sim_order_free(sim_order_t *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++)
        fpath_free(&o->keys[i].path);
    free(o);
}

static int type_rank(const json_t *v)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_NULL: return 0;
    case JSON_FALSE:
    case JSON_TRUE: return 1;
    case JSON_INTEGER:
    case JSON_REAL: return 2;
    case JSON_STRING: return 3;
    default: return 4;
    }
}

/* Orders two values of any type: null first, then booleans, numbers, strings (ignoring case
 * first, as culture-aware .NET and SQL collations do), then objects and arrays as equal. */
static int value_compare(const json_t *a, const json_t *b)
{
    int ra = type_rank(a), rb = type_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (ra) {
    case 1:
        return json_is_true(a) - json_is_true(b);
    case 2:
        if (json_is_integer(a) && json_is_integer(b)) {
            json_int_t x = json_integer_value(a), y = json_integer_value(b);
            return x < y ? -1 : x > y;
        } else {
            double x = json_number_value(a), y = json_number_value(b);
            return x < y ? -1 : x > y;
        }
    case 3: {
        const char *x = json_string_value(a), *y = json_string_value(b);
        int c = strcasecmp(x, y);
        if (c == 0)
            c = -strcmp(x, y); /* lowercase before uppercase on ties */
        return c < 0 ? -1 : c > 0;
    }
    default:
        return 0;
    }
}

int sim_order_compare(const sim_order_t *o, json_t *a, json_t *b)
{
    for (size_t i = 0; o && i < o->n; i++) {
        int c = value_compare(fpath_get(&o->keys[i].path, a), fpath_get(&o->keys[i].path, b));
        if (c)
            return o->keys[i].desc ? -c : c;
    }
    return 0;
}

/* Bottom-up merge sort: stable, O(n log n), no recursion. */
int sim_order_sort(const sim_order_t *o, json_t **recs, size_t n)
{
    if (!o || o->n == 0 || n < 2)
        return 0;
    json_t **tmp = malloc(n * sizeof(*tmp));
    if (!tmp)
        return -1;
    json_t **src = recs, **dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = sim_order_compare(o, src[j], src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        json_t **swap = src;
        src = dst;
        dst = swap;
    }
    if (src != recs)
        memcpy(recs, src, n * sizeof(*recs));
    free(tmp);
    return 0;
}
