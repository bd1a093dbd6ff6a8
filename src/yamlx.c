/* yamlx: YAML → jansson with source positions; see yamlx.h. Built on libyaml's event parser:
 * a stack of open containers, positions kept in a hash table keyed by node identity (and by
 * parent + key / index for members), and every recorded node held by a reference so an
 * address can never be reused for another node while the doc lives. */
#include "yamlx.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/buf.h"
#include "common/util.h"

#define YX_DEFAULT_DEPTH 64
#define YX_DEFAULT_NODES 1000000u
#define YX_MAX_DIAGS 1000

enum yx_kind { YX_NODE = 1, YX_KEY, YX_MEMBER, YX_INDEX };
enum yx_style { YX_CONTAINER = 0, YX_PLAIN, YX_SINGLE, YX_DOUBLE, YX_LITERAL, YX_FOLDED };

struct yx_src {
    char *origin;
    char *text;            /* NUL-terminated copy */
    size_t len;
    size_t *lines;         /* byte offset of each line start */
    size_t nlines;
    int no_lines;
};

struct yx_entry {
    const void *ptr;       /* NULL: empty slot */
    char *key;             /* YX_KEY / YX_MEMBER */
    size_t idx;            /* YX_INDEX */
    unsigned char kind;
    unsigned char style;
    unsigned src;          /* index into srcs */
    int line, col;         /* 1-based */
    size_t byte;           /* byte offset of the token start in the source text */
};

struct yamlx_doc {
    json_t *root;
    struct yx_src *srcs;
    size_t nsrcs;
    struct yx_entry *tab;
    size_t tabcap, tabn;
    json_t **refs;
    size_t nrefs, refcap;
};

/* ---- hash table --------------------------------------------------------------------- */

static uint64_t yx_hash(const void *ptr, int kind, const char *key, size_t idx)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)ptr;
    h *= 1099511628211ull;
    h ^= (uint64_t)kind;
    h *= 1099511628211ull;
    if (key) {
        for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
            h ^= *p;
            h *= 1099511628211ull;
        }
    } else {
        h ^= (uint64_t)idx;
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static int yx_same(const struct yx_entry *e, const void *ptr, int kind, const char *key,
                   size_t idx)
{
    if (e->ptr != ptr || e->kind != kind)
        return 0;
    if (kind == YX_KEY || kind == YX_MEMBER)
        return strcmp(e->key, key) == 0;
    if (kind == YX_INDEX)
        return e->idx == idx;
    return 1;
}

static struct yx_entry *yx_find(const yamlx_doc_t *doc, const void *ptr, int kind,
                                const char *key, size_t idx)
{
    if (!doc || doc->tabcap == 0 || !ptr)
        return NULL;
    size_t mask = doc->tabcap - 1;
    for (size_t i = yx_hash(ptr, kind, key, idx) & mask;; i = (i + 1) & mask) {
        struct yx_entry *e = &doc->tab[i];
        if (!e->ptr)
            return NULL;
        if (yx_same(e, ptr, kind, key, idx))
            return e;
    }
}

static int yx_grow(yamlx_doc_t *doc)
{
    size_t ncap = doc->tabcap ? doc->tabcap * 2 : 256;
    struct yx_entry *nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return -1;
    for (size_t i = 0; i < doc->tabcap; i++) {
        struct yx_entry *e = &doc->tab[i];
        if (!e->ptr)
            continue;
        size_t j = yx_hash(e->ptr, e->kind, e->key, e->idx) & (ncap - 1);
        while (nt[j].ptr)
            j = (j + 1) & (ncap - 1);
        nt[j] = *e;
    }
    free(doc->tab);
    doc->tab = nt;
    doc->tabcap = ncap;
    return 0;
}

/* Inserts or replaces an entry; e's key is copied. 0 or -1 (OOM). */
static int yx_put(yamlx_doc_t *doc, const struct yx_entry *e)
{
    if ((doc->tabn + 1) * 10 >= doc->tabcap * 7 && yx_grow(doc) < 0)
        return -1;
    struct yx_entry *old = yx_find(doc, e->ptr, e->kind, e->key, e->idx);
    char *key = NULL;
    if (e->key && !(key = strdup(e->key)))
        return -1;
    if (old) {
        free(old->key);
        *old = *e;
        old->key = key;
        return 0;
    }
    size_t mask = doc->tabcap - 1;
    size_t i = yx_hash(e->ptr, e->kind, e->key, e->idx) & mask;
    while (doc->tab[i].ptr)
        i = (i + 1) & mask;
    doc->tab[i] = *e;
    doc->tab[i].key = key;
    doc->tabn++;
    return 0;
}

static int yx_is_singleton(const json_t *n)
{
    return json_is_true(n) || json_is_false(n) || json_is_null(n);
}

/* Records a node's own position and keeps it alive for the doc's lifetime. */
static int yx_put_node(yamlx_doc_t *doc, json_t *node, const struct yx_entry *pos)
{
    if (yx_is_singleton(node))
        return 0;
    if (yx_find(doc, node, YX_NODE, NULL, 0))
        return 0; /* an alias: keep the anchor's position */
    if (doc->nrefs == doc->refcap) {
        size_t ncap = doc->refcap ? doc->refcap * 2 : 64;
        json_t **nr = realloc(doc->refs, ncap * sizeof *nr);
        if (!nr)
            return -1;
        doc->refs = nr;
        doc->refcap = ncap;
    }
    struct yx_entry e = *pos;
    e.ptr = node;
    e.kind = YX_NODE;
    e.key = NULL;
    e.idx = 0;
    if (yx_put(doc, &e) < 0)
        return -1;
    doc->refs[doc->nrefs++] = json_incref(node);
    return 0;
}

/* ---- sources and marks -------------------------------------------------------------- */

static int yx_add_src(yamlx_doc_t *doc, const char *origin, const char *text, size_t len,
                      int no_lines)
{
    struct yx_src *ns = realloc(doc->srcs, (doc->nsrcs + 1) * sizeof *ns);
    if (!ns)
        return -1;
    doc->srcs = ns;
    struct yx_src *s = &doc->srcs[doc->nsrcs];
    memset(s, 0, sizeof *s);
    s->origin = strdup(origin ? origin : "");
    s->len = text ? len : 0;
    /* A byte copy: the text may hold NUL bytes (libyaml rejects them, but positions are
     * computed over all len bytes). */
    s->text = malloc(s->len + 1);
    if (s->text) {
        if (s->len)
            memcpy(s->text, text, s->len);
        s->text[s->len] = '\0';
    }
    s->no_lines = no_lines;
    size_t nl = 1;
    for (size_t i = 0; i < s->len; i++)
        if (s->text && s->text[i] == '\n')
            nl++;
    s->lines = malloc(nl * sizeof *s->lines);
    if (!s->origin || !s->text || !s->lines) {
        free(s->origin);
        free(s->text);
        free(s->lines);
        return -1;
    }
    s->lines[0] = 0;
    s->nlines = 1;
    for (size_t i = 0; i < s->len; i++)
        if (s->text[i] == '\n')
            s->lines[s->nlines++] = i + 1;
    doc->nsrcs++;
    return 0;
}

/* Byte offset of a 0-based (line, character column) in a source. */
static size_t yx_byte_of(const struct yx_src *s, size_t line, size_t column)
{
    if (line >= s->nlines)
        return s->len;
    size_t p = s->lines[line];
    while (column > 0 && p < s->len && s->text[p] != '\n') {
        p++;
        while (p < s->len && ((unsigned char)s->text[p] & 0xC0) == 0x80)
            p++;
        column--;
    }
    return p;
}

/* 1-based line and character column of a byte offset. */
static void yx_linecol_of(const struct yx_src *s, size_t byte, int *line, int *col)
{
    size_t lo = 0, hi = s->nlines;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (s->lines[mid] <= byte)
            lo = mid;
        else
            hi = mid;
    }
    int c = 1;
    for (size_t p = s->lines[lo]; p < byte && p < s->len; p++)
        if (((unsigned char)s->text[p] & 0xC0) != 0x80)
            c++;
    *line = (int)lo + 1;
    *col = c;
}

static void yx_mark_of(const yamlx_doc_t *doc, const struct yx_entry *e, struct yamlx_mark *out)
{
    const struct yx_src *s = &doc->srcs[e->src];
    out->origin = s->origin;
    out->line = s->no_lines ? 0 : e->line;
    out->col = s->no_lines ? 0 : e->col;
}

static void yx_mark_none(const yamlx_doc_t *doc, struct yamlx_mark *out)
{
    out->origin = doc && doc->nsrcs ? doc->srcs[0].origin : "";
    out->line = 0;
    out->col = 0;
}

/* ---- scalar resolution (YAML 1.2 core schema) --------------------------------------- */

static int yx_is_int(const char *s, int *base, const char **digits)
{
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o') && p == s) {
        *base = p[1] == 'x' ? 16 : 8;
        p += 2;
        *digits = p;
        if (!*p)
            return 0;
        for (; *p; p++)
            if (*base == 16 ? !strchr("0123456789abcdefABCDEF", *p) : !strchr("01234567", *p))
                return 0;
        return 1;
    }
    *base = 10;
    *digits = s;
    if (!*p)
        return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

static int yx_is_float(const char *s)
{
    const char *p = s;
    int digits = 0;
    if (*p == '-' || *p == '+')
        p++;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (!digits)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

static int yx_word(const char *s, const char *a, const char *b, const char *c)
{
    return strcmp(s, a) == 0 || strcmp(s, b) == 0 || strcmp(s, c) == 0;
}

/* Returns a new node for a scalar, or NULL with *why set to a static message. */
static json_t *yx_scalar(const char *v, size_t len, int plain, const char *tag, const char **why)
{
    *why = NULL;
    if (tag && strcmp(tag, "!") != 0) {
        if (strcmp(tag, YAML_STR_TAG) == 0)
            return json_stringn(v, len);
        if (strcmp(tag, YAML_NULL_TAG) != 0 && strcmp(tag, YAML_BOOL_TAG) != 0 &&
            strcmp(tag, YAML_INT_TAG) != 0 && strcmp(tag, YAML_FLOAT_TAG) != 0) {
            *why = "unsupported tag (only !!str, !!int, !!float, !!bool and !!null)";
            return NULL;
        }
        plain = 1;
    } else if (tag) {
        return json_stringn(v, len);
    }
    if (!plain)
        return json_stringn(v, len);
    if (strlen(v) != len)
        return json_stringn(v, len);
    if (len == 0 || yx_word(v, "~", "null", "Null") || strcmp(v, "NULL") == 0)
        return json_null();
    if (yx_word(v, "true", "True", "TRUE"))
        return json_true();
    if (yx_word(v, "false", "False", "FALSE"))
        return json_false();
    int base;
    const char *digits;
    if (yx_is_int(v, &base, &digits)) {
        errno = 0;
        char *end = NULL;
        long long n = strtoll(digits, &end, base);
        if (errno || !end || *end) {
            *why = "integer out of range";
            return NULL;
        }
        return json_integer((json_int_t)n);
    }
    if (yx_is_float(v)) {
        errno = 0;
        char *end = NULL;
        double d = strtod(v, &end);
        if (errno == ERANGE || !end || *end || !isfinite(d)) {
            *why = "number out of range";
            return NULL;
        }
        return json_real(d);
    }
    if (yx_word(v, ".inf", ".Inf", ".INF") || yx_word(v, "-.inf", "-.Inf", "-.INF") ||
        yx_word(v, ".nan", ".NaN", ".NAN") || yx_word(v, "+.inf", "+.Inf", "+.INF")) {
        *why = "infinite and NaN numbers are not supported";
        return NULL;
    }
    return json_stringn(v, len);
}

/* ---- the event parser --------------------------------------------------------------- */

struct yx_frame {
    json_t *node;
    int is_map;
    char *key;               /* pending mapping key */
    struct yx_entry keypos;
    size_t size;             /* nodes inside, aliases expanded */
    char *anchor;
};

struct yx_anchor {
    char *name;
    json_t *node;            /* borrowed: the doc holds it */
    size_t size;
};

struct yx_parse {
    yamlx_doc_t *doc;
    unsigned src;
    struct yx_frame *stack;
    size_t depth, max_depth;
    size_t total, max_nodes;
    struct yx_anchor *anchors;
    size_t nanchors;
    char *err;
};

static void yx_fail(struct yx_parse *ps, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void yx_fail(struct yx_parse *ps, const yaml_mark_t *m, const char *fmt, ...)
{
    if (ps->err)
        return;
    const struct yx_src *s = &ps->doc->srcs[ps->src];
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s->no_lines || !m)
        ps->err = util_asprintf("%s: %s", s->origin, msg);
    else
        ps->err = util_asprintf("%s:%zu:%zu: %s", s->origin, m->line + 1, m->column + 1, msg);
}

static struct yx_entry yx_pos_of(struct yx_parse *ps, const yaml_mark_t *m, int style)
{
    struct yx_entry e;
    memset(&e, 0, sizeof e);
    const struct yx_src *s = &ps->doc->srcs[ps->src];
    e.src = ps->src;
    e.style = (unsigned char)style;
    e.line = (int)m->line + 1;
    e.col = (int)m->column + 1;
    e.byte = yx_byte_of(s, m->line, m->column);
    return e;
}

static int yx_anchor_add(struct yx_parse *ps, const char *name, json_t *node, size_t size)
{
    struct yx_anchor *na = realloc(ps->anchors, (ps->nanchors + 1) * sizeof *na);
    if (!na)
        return -1;
    ps->anchors = na;
    char *dup = strdup(name);
    if (!dup)
        return -1;
    /* A later anchor of the same name shadows the earlier one: search runs backwards. */
    ps->anchors[ps->nanchors].name = dup;
    ps->anchors[ps->nanchors].node = node;
    ps->anchors[ps->nanchors].size = size;
    ps->nanchors++;
    return 0;
}

/* Adds a finished node (reference stolen) to the open container or as the root. */
static int yx_attach(struct yx_parse *ps, json_t *node, size_t size, const struct yx_entry *pos,
                     const yaml_mark_t *m, int is_scalar, const char *raw)
{
    yamlx_doc_t *doc = ps->doc;
    int rc = -1;
    if (yx_put_node(doc, node, pos) < 0)
        goto done;
    ps->total += size;
    if (ps->total > ps->max_nodes) {
        yx_fail(ps, m, "document too large (more than the node limit after aliases)");
        goto done;
    }
    if (ps->depth == 0) {
        if (doc->root) {
            yx_fail(ps, m, "only one document per file");
            goto done;
        }
        doc->root = node;
        node = NULL;
        rc = 0;
        goto done;
    }
    struct yx_frame *f = &ps->stack[ps->depth - 1];
    f->size += size;
    if (!f->is_map) {
        struct yx_entry e = *pos;
        e.ptr = f->node;
        e.kind = YX_INDEX;
        e.idx = json_array_size(f->node);
        if (json_array_append_new(f->node, node) < 0) {
            node = NULL;
            goto done;
        }
        node = NULL;
        rc = yx_put(doc, &e);
        goto done;
    }
    if (!f->key) {
        if (!is_scalar) {
            yx_fail(ps, m, "mapping keys must be scalars");
            goto done;
        }
        if (json_object_get(f->node, raw)) {
            yx_fail(ps, m, "duplicate key '%s'", raw);
            goto done;
        }
        if (!(f->key = strdup(raw)))
            goto done;
        f->keypos = *pos;
        rc = 0;
        goto done;
    }
    struct yx_entry e = *pos;
    e.ptr = f->node;
    e.kind = YX_MEMBER;
    e.key = f->key;
    struct yx_entry k = f->keypos;
    k.ptr = f->node;
    k.kind = YX_KEY;
    k.key = f->key;
    if (json_object_set_new(f->node, f->key, node) < 0) {
        node = NULL;
        yx_fail(ps, m, "invalid key '%s'", f->key);
        goto done;
    }
    node = NULL;
    if (yx_put(doc, &e) < 0 || yx_put(doc, &k) < 0)
        goto done;
    free(f->key);
    f->key = NULL;
    rc = 0;
done:
    json_decref(node);
    if (rc < 0 && !ps->err)
        yx_fail(ps, m, "out of memory");
    return rc;
}

static int yx_event(struct yx_parse *ps, yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        int style = YX_PLAIN;
        switch (ev->data.scalar.style) {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = YX_SINGLE; break;
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = YX_DOUBLE; break;
        case YAML_LITERAL_SCALAR_STYLE: style = YX_LITERAL; break;
        case YAML_FOLDED_SCALAR_STYLE: style = YX_FOLDED; break;
        default: break;
        }
        struct yx_frame *top = ps->depth ? &ps->stack[ps->depth - 1] : NULL;
        if (top && top->is_map && !top->key) {
            /* A mapping key: kept as text, never as a node. */
            if (strlen(v) != len) {
                yx_fail(ps, m, "mapping keys must not contain NUL bytes");
                return -1;
            }
            if (json_object_get(top->node, v)) {
                yx_fail(ps, m, "duplicate key '%s'", v);
                return -1;
            }
            if (!(top->key = strdup(v))) {
                yx_fail(ps, m, "out of memory");
                return -1;
            }
            top->keypos = yx_pos_of(ps, m, style);
            return 0;
        }
        const char *why = NULL;
        json_t *node = yx_scalar(v, len, ev->data.scalar.plain_implicit && style == YX_PLAIN,
                                 (const char *)ev->data.scalar.tag, &why);
        if (!node) {
            yx_fail(ps, m, "%s", why ? why : "invalid scalar");
            return -1;
        }
        struct yx_entry pos = yx_pos_of(ps, m, style);
        if (ev->data.scalar.anchor &&
            yx_anchor_add(ps, (const char *)ev->data.scalar.anchor, node, 1) < 0) {
            json_decref(node);
            yx_fail(ps, m, "out of memory");
            return -1;
        }
        char *raw = util_strndup(v, len);
        if (!raw) {
            json_decref(node);
            yx_fail(ps, m, "out of memory");
            return -1;
        }
        int rc = yx_attach(ps, node, 1, &pos, m, 1, raw);
        free(raw);
        return rc;
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (ps->depth >= ps->max_depth) {
            yx_fail(ps, m, "nesting deeper than %zu levels", ps->max_depth);
            return -1;
        }
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        json_t *node = is_map ? json_object() : json_array();
        const char *anchor = is_map ? (const char *)ev->data.mapping_start.anchor
                                    : (const char *)ev->data.sequence_start.anchor;
        struct yx_entry pos = yx_pos_of(ps, m, YX_CONTAINER);
        if (!node || yx_put_node(ps->doc, node, &pos) < 0) {
            json_decref(node);
            yx_fail(ps, m, "out of memory");
            return -1;
        }
        struct yx_frame *f = &ps->stack[ps->depth++];
        memset(f, 0, sizeof *f);
        f->node = node;
        f->is_map = is_map;
        f->keypos = pos;
        f->anchor = anchor ? strdup(anchor) : NULL;
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        struct yx_frame f = ps->stack[--ps->depth];
        free(f.key);
        struct yx_entry *pe = yx_find(ps->doc, f.node, YX_NODE, NULL, 0);
        struct yx_entry pos = pe ? *pe : yx_pos_of(ps, m, YX_CONTAINER);
        int rc = 0;
        if (f.anchor && yx_anchor_add(ps, f.anchor, f.node, f.size + 1) < 0) {
            yx_fail(ps, m, "out of memory");
            rc = -1;
        }
        free(f.anchor);
        if (rc < 0) {
            json_decref(f.node);
            return -1;
        }
        /* The node's own size was not counted yet; its children were counted as they came. */
        ps->total -= f.size;
        return yx_attach(ps, f.node, f.size + 1, &pos, m, 0, NULL);
    }
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        for (size_t i = ps->nanchors; i-- > 0;) {
            if (strcmp(ps->anchors[i].name, name) != 0)
                continue;
            json_t *node = json_incref(ps->anchors[i].node);
            struct yx_entry pos = yx_pos_of(ps, m, YX_CONTAINER);
            struct yx_entry *pe = yx_find(ps->doc, node, YX_NODE, NULL, 0);
            if (pe)
                pos = *pe;
            const char *raw = json_is_string(node) ? json_string_value(node) : NULL;
            return yx_attach(ps, node, ps->anchors[i].size, &pos, m, raw != NULL,
                             raw ? raw : "");
        }
        yx_fail(ps, m, "unknown alias '%s'", name);
        return -1;
    }
    default:
        return 0;
    }
}

yamlx_doc_t *yamlx_parse(const char *text, size_t len, const char *origin,
                         const struct yamlx_limits *lim, char **err)
{
    struct yx_parse ps;
    memset(&ps, 0, sizeof ps);
    yaml_parser_t parser;
    int parser_ready = 0;
    yamlx_doc_t *doc = calloc(1, sizeof *doc);
    *err = NULL;
    if (!doc)
        goto fail;
    ps.doc = doc;
    ps.max_depth = lim && lim->max_depth > 0 ? (size_t)lim->max_depth : YX_DEFAULT_DEPTH;
    ps.max_nodes = lim && lim->max_nodes > 0 ? lim->max_nodes : YX_DEFAULT_NODES;
    if (yx_add_src(doc, origin, text, len, lim ? lim->no_lines : 0) < 0)
        goto fail;
    ps.src = 0;
    ps.stack = calloc(ps.max_depth + 1, sizeof *ps.stack);
    if (!ps.stack || !yaml_parser_initialize(&parser))
        goto fail;
    parser_ready = 1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)doc->srcs[0].text, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            buf_t b;
            buf_init(&b, 4096);
            if (doc->srcs[0].no_lines)
                buf_printf(&b, "%s: ", doc->srcs[0].origin);
            else
                buf_printf(&b, "%s:%zu:%zu: ", doc->srcs[0].origin,
                           parser.problem_mark.line + 1, parser.problem_mark.column + 1);
            buf_puts(&b, parser.problem ? parser.problem : "invalid YAML");
            if (parser.context)
                buf_printf(&b, " (%s)", parser.context);
            free(ps.err);
            ps.err = buf_steal(&b);
            buf_free(&b);
            goto fail;
        }
        int stop = ev.type == YAML_STREAM_END_EVENT;
        if (ev.type == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            yx_fail(&ps, &ev.start_mark, "only one document per file");
            yaml_event_delete(&ev);
            goto fail;
        }
        int rc = yx_event(&ps, &ev);
        yaml_event_delete(&ev);
        if (rc < 0)
            goto fail;
        if (stop)
            break;
    }
    if (!doc->root)
        doc->root = json_null();
    goto done;
fail:
    if (!ps.err)
        ps.err = util_asprintf("%s: out of memory", origin ? origin : "");
    *err = ps.err;
    ps.err = NULL;
    while (ps.depth > 0) {
        struct yx_frame *f = &ps.stack[--ps.depth];
        json_decref(f->node);
        free(f->key);
        free(f->anchor);
    }
    yamlx_free(doc);
    doc = NULL;
done:
    if (parser_ready)
        yaml_parser_delete(&parser);
    for (size_t i = 0; i < ps.nanchors; i++)
        free(ps.anchors[i].name);
    free(ps.anchors);
    free(ps.stack);
    free(ps.err);
    return doc;
}

yamlx_doc_t *yamlx_load(const char *path, size_t max, char **err)
{
    size_t len = 0;
    *err = NULL;
    char *text = util_read_file(path, max, &len);
    if (!text) {
        *err = util_asprintf("%s: %s", path, errno == EFBIG ? "file too large" : strerror(errno));
        return NULL;
    }
    yamlx_doc_t *doc = yamlx_parse(text, len, path, NULL, err);
    free(text);
    return doc;
}

void yamlx_free(yamlx_doc_t *doc)
{
    if (!doc)
        return;
    json_decref(doc->root);
    for (size_t i = 0; i < doc->nrefs; i++)
        json_decref(doc->refs[i]);
    free(doc->refs);
    for (size_t i = 0; i < doc->tabcap; i++)
        free(doc->tab[i].key);
    free(doc->tab);
    for (size_t i = 0; i < doc->nsrcs; i++) {
        free(doc->srcs[i].origin);
        free(doc->srcs[i].text);
        free(doc->srcs[i].lines);
    }
    free(doc->srcs);
    free(doc);
}

json_t *yamlx_root(const yamlx_doc_t *doc)
{
    return doc ? doc->root : NULL;
}

const char *yamlx_origin(const yamlx_doc_t *doc)
{
    return doc && doc->nsrcs ? doc->srcs[0].origin : "";
}

/* ---- position queries --------------------------------------------------------------- */

static int yx_where_kind(const yamlx_doc_t *doc, const void *ptr, int kind, const char *key,
                         size_t idx, struct yamlx_mark *out)
{
    const struct yx_entry *e = yx_find(doc, ptr, kind, key, idx);
    if (!e) {
        yx_mark_none(doc, out);
        return -1;
    }
    yx_mark_of(doc, e, out);
    return 0;
}

int yamlx_where(const yamlx_doc_t *doc, const json_t *node, struct yamlx_mark *out)
{
    return yx_where_kind(doc, node, YX_NODE, NULL, 0, out);
}

int yamlx_where_key(const yamlx_doc_t *doc, const json_t *obj, const char *key,
                    struct yamlx_mark *out)
{
    return yx_where_kind(doc, obj, YX_KEY, key, 0, out);
}

int yamlx_where_member(const yamlx_doc_t *doc, const json_t *obj, const char *key,
                       struct yamlx_mark *out)
{
    return yx_where_kind(doc, obj, YX_MEMBER, key, 0, out);
}

int yamlx_where_index(const yamlx_doc_t *doc, const json_t *arr, size_t idx,
                      struct yamlx_mark *out)
{
    return yx_where_kind(doc, arr, YX_INDEX, NULL, idx, out);
}

static int yx_hexval(const char *p, int n, unsigned long *out)
{
    unsigned long v = 0;
    for (int i = 0; i < n; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (unsigned long)d;
    }
    *out = v;
    return 0;
}

static size_t yx_utf8_len(unsigned long cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* At a line break (or trailing blanks before one) inside a flow scalar: skips to the next
 * content and returns how many value bytes the fold produced (1 space, or n newlines). */
static size_t yx_fold(const char *t, size_t len, size_t *pp)
{
    size_t p = *pp;
    while (p < len && (t[p] == ' ' || t[p] == '\t'))
        p++;
    if (p >= len || t[p] != '\n')
        return 0;
    size_t breaks = 0;
    while (p < len && (t[p] == '\n' || t[p] == ' ' || t[p] == '\t' || t[p] == '\r')) {
        if (t[p] == '\n')
            breaks++;
        p++;
    }
    *pp = p;
    return breaks > 1 ? breaks - 1 : 1;
}

static int yx_blank_to_eol(const char *t, size_t len, size_t p)
{
    while (p < len && (t[p] == ' ' || t[p] == '\t'))
        p++;
    return p >= len || t[p] == '\n' || t[p] == '\r';
}

/* Source byte of value offset off in a flow (plain or quoted) scalar starting at p. */
static size_t yx_locate_flow(const struct yx_src *s, int style, size_t p, size_t off)
{
    const char *t = s->text;
    size_t len = s->len;
    if (style == YX_SINGLE || style == YX_DOUBLE)
        p++;
    size_t i = 0;
    while (p < len && i < off) {
        char c = t[p];
        if ((c == ' ' || c == '\t' || c == '\n') && yx_blank_to_eol(t, len, p)) {
            if (style == YX_DOUBLE && c != '\n' && p > 0 && t[p - 1] == '\\') {
                p++;
                i++;
                continue;
            }
            size_t q = p;
            size_t produced = yx_fold(t, len, &q);
            if (produced == 0 || i + produced > off)
                break;
            i += produced;
            p = q;
            continue;
        }
        if (style == YX_SINGLE && c == '\'') {
            if (p + 1 < len && t[p + 1] == '\'') {
                p += 2;
                i++;
                continue;
            }
            break; /* closing quote */
        }
        if (style == YX_DOUBLE && c == '"')
            break;
        if (style == YX_DOUBLE && c == '\\' && p + 1 < len) {
            char e = t[p + 1];
            size_t produced = 1, consumed = 2;
            unsigned long cp = 0;
            if (e == 'x' && yx_hexval(t + p + 2, 2, &cp) == 0) {
                produced = yx_utf8_len(cp);
                consumed = 4;
            } else if (e == 'u' && yx_hexval(t + p + 2, 4, &cp) == 0) {
                produced = yx_utf8_len(cp);
                consumed = 6;
            } else if (e == 'U' && yx_hexval(t + p + 2, 8, &cp) == 0) {
                produced = yx_utf8_len(cp);
                consumed = 10;
            } else if (e == 'N' || e == '_') {
                produced = 2;
            } else if (e == 'L' || e == 'P') {
                produced = 3;
            } else if (e == '\n' || e == '\r') {
                size_t q = p + 1;
                while (q < len && (t[q] == '\n' || t[q] == '\r' || t[q] == ' ' || t[q] == '\t'))
                    q++;
                p = q;
                continue;
            }
            if (i + produced > off)
                break;
            i += produced;
            p += consumed;
            continue;
        }
        p++;
        i++;
    }
    return p;
}

/* Source byte of value offset off in a block scalar whose indicator is at p. */
static size_t yx_locate_block(const struct yx_src *s, size_t p, size_t off)
{
    const char *t = s->text;
    size_t len = s->len;
    while (p < len && t[p] != '\n')
        p++;
    if (p >= len)
        return p;
    p++;
    /* Indentation: that of the first line with content. */
    size_t indent = 0;
    for (size_t q = p; q < len;) {
        size_t sp = 0;
        while (q + sp < len && t[q + sp] == ' ')
            sp++;
        if (q + sp < len && t[q + sp] != '\n') {
            indent = sp;
            break;
        }
        q += sp + 1;
    }
    size_t consumed = 0;
    while (p < len) {
        size_t eol = p;
        while (eol < len && t[eol] != '\n')
            eol++;
        size_t start = p + indent <= eol ? p + indent : eol;
        size_t n = eol - start;
        if (off < consumed + n || eol >= len)
            return start + (off - consumed < n ? off - consumed : n);
        if (off == consumed + n)
            return start + n;
        consumed += n + 1;
        p = eol + 1;
    }
    return len;
}

int yamlx_locate(const yamlx_doc_t *doc, const json_t *str, size_t offset, struct yamlx_mark *out)
{
    const struct yx_entry *e = yx_find(doc, str, YX_NODE, NULL, 0);
    if (!e || !json_is_string(str)) {
        yx_mark_none(doc, out);
        return -1;
    }
    yx_mark_of(doc, e, out);
    const struct yx_src *s = &doc->srcs[e->src];
    if (s->no_lines)
        return 0;
    size_t vlen = json_string_length(str);
    if (offset > vlen)
        offset = vlen;
    size_t byte = e->style == YX_LITERAL || e->style == YX_FOLDED
                      ? yx_locate_block(s, e->byte, offset)
                      : yx_locate_flow(s, e->style, e->byte, offset);
    yx_linecol_of(s, byte, &out->line, &out->col);
    return 0;
}

int yamlx_locate_linecol(const yamlx_doc_t *doc, const json_t *str, int line, int col,
                         struct yamlx_mark *out)
{
    if (!json_is_string(str))
        return yamlx_locate(doc, str, 0, out);
    const char *v = json_string_value(str);
    size_t n = json_string_length(str);
    size_t off = 0;
    for (int l = 1; l < line && off < n; off++)
        if (v[off] == '\n')
            l++;
    if (col > 1)
        off += (size_t)(col - 1);
    return yamlx_locate(doc, str, off > n ? n : off, out);
}

int yamlx_graft(yamlx_doc_t *doc, json_t *obj, const char *key, yamlx_doc_t *other)
{
    int rc = -1;
    if (!doc || !other || !json_is_object(obj))
        goto done;
    unsigned base = (unsigned)doc->nsrcs;
    struct yx_src *ns = realloc(doc->srcs, (doc->nsrcs + other->nsrcs) * sizeof *ns);
    if (!ns)
        goto done;
    doc->srcs = ns;
    if (other->nsrcs)
        memcpy(doc->srcs + doc->nsrcs, other->srcs, other->nsrcs * sizeof *ns);
    doc->nsrcs += other->nsrcs;
    other->nsrcs = 0;
    for (size_t i = 0; i < other->tabcap; i++) {
        struct yx_entry e = other->tab[i];
        if (!e.ptr)
            continue;
        e.src += base;
        if (yx_put(doc, &e) < 0)
            goto done;
    }
    size_t need = doc->nrefs + other->nrefs + 1;
    if (need > doc->refcap) {
        json_t **nr = realloc(doc->refs, need * sizeof *nr);
        if (!nr)
            goto done;
        doc->refs = nr;
        doc->refcap = need;
    }
    if (other->nrefs) /* a scalar value (null, say) has no refs: no NULL to memcpy */
        memcpy(doc->refs + doc->nrefs, other->refs, other->nrefs * sizeof *doc->refs);
    doc->nrefs += other->nrefs;
    other->nrefs = 0;
    /* obj now carries positions: keep it alive so its address is never reused. */
    doc->refs[doc->nrefs++] = json_incref(obj);
    struct yx_entry pos;
    memset(&pos, 0, sizeof pos);
    pos.src = base;
    pos.line = 0;
    pos.col = 0;
    pos.ptr = obj;
    pos.kind = YX_MEMBER;
    pos.key = (char *)key;
    if (yx_put(doc, &pos) < 0)
        goto done;
    pos.kind = YX_KEY;
    if (yx_put(doc, &pos) < 0)
        goto done;
    if (json_object_set(obj, key, other->root) < 0)
        goto done;
    rc = 0;
done:
    yamlx_free(other);
    return rc;
}

/* ---- diagnostics -------------------------------------------------------------------- */

void yamlx_diags_init(yamlx_diags_t *d)
{
    memset(d, 0, sizeof *d);
}

void yamlx_diags_free(yamlx_diags_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->msg[i]);
    free(d->msg);
    memset(d, 0, sizeof *d);
}

static void yx_diag_push(yamlx_diags_t *d, int warning, char *line)
{
    if (warning)
        d->warnings++;
    else
        d->errors++;
    if (!line)
        return;
    /* The same problem found twice (a partial used by several templates) prints once. */
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->msg[i], line) == 0) {
            free(line);
            if (warning)
                d->warnings--;
            else
                d->errors--;
            return;
        }
    if (d->n >= YX_MAX_DIAGS) {
        free(line);
        if (d->n == YX_MAX_DIAGS)
            line = strdup("too many problems; the rest are not shown");
        else
            return;
        if (!line)
            return;
    }
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 16;
        char **nm = realloc(d->msg, ncap * sizeof *nm);
        if (!nm) {
            free(line);
            return;
        }
        d->msg = nm;
        d->cap = ncap;
    }
    d->msg[d->n++] = line;
}

void yamlx_vdiag(yamlx_diags_t *d, int warning, const struct yamlx_mark *at, const char *fmt,
                 va_list ap)
{
    buf_t b;
    buf_init(&b, 8192);
    if (at && at->origin && *at->origin) {
        if (at->line > 0)
            buf_printf(&b, "%s:%d:%d: ", at->origin, at->line, at->col);
        else
            buf_printf(&b, "%s: ", at->origin);
    }
    if (warning)
        buf_puts(&b, "warning: ");
    char tmp[2048];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    buf_puts(&b, tmp);
    yx_diag_push(d, warning, buf_steal(&b));
    buf_free(&b);
}

void yamlx_diag(yamlx_diags_t *d, int warning, const struct yamlx_mark *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    yamlx_vdiag(d, warning, at, fmt, ap);
    va_end(ap);
}

void yamlx_diag_raw(yamlx_diags_t *d, int warning, const char *line)
{
    yx_diag_push(d, warning, strdup(line ? line : ""));
}

void yamlx_diags_print(const yamlx_diags_t *d, FILE *f)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(f, "%s\n", d->msg[i]);
}
