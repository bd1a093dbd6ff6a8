/* tmpl: Mustache templates over jansson values; see tmpl.h for the contract.
 * Compiling turns each text (the template and every partial it reaches) into a flat node
 * array; partials are linked by name, so recursion needs no re-parsing. Rendering walks the
 * nodes with the context stack and the partial indentation kept in frames on the C stack. */
#include "tmpl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"

#define TMPL_DEFAULT_OUTPUT ((size_t)1024 * 1024)
#define TMPL_DEFAULT_DEPTH 64
#define TMPL_MAX_DEPTH 1024
#define TMPL_MAX_DELIM 32
#define TMPL_MAX_PARTIALS 256

enum nkind { N_TEXT, N_VAR, N_RAW, N_SECTION, N_INVERTED, N_PARTIAL };

/* One part of a dotted name; idx >= 0 when the part is a decimal array index. */
struct part {
    const char *s;
    size_t len;
    long idx;
};

struct body;

struct node {
    enum nkind kind;
    int line, col;
    const char *text;     /* N_TEXT: bytes in the body's source; N_PARTIAL: indentation */
    size_t len;
    size_t end;           /* N_SECTION, N_INVERTED: index of the first node after the body */
    char *name;           /* tags: the name as written */
    struct part *parts;   /* data names: the parts, followed by their strings (one block) */
    unsigned nparts;      /* 0 for the implicit iterator "." */
    int standalone;       /* N_PARTIAL: the tag stood alone on its line */
    struct body *partial; /* N_PARTIAL: the linked body */
};

/* One compiled text: the template itself or one partial. */
struct body {
    char *name; /* partial name; NULL for the template itself */
    char *src;  /* owned text */
    size_t srclen;
    struct node *nodes;
    size_t n, cap;
    int found; /* partials: the loader returned a text */
};

struct tmpl {
    struct body root;
    size_t size_hint; /* likely output size, reserved up front to avoid regrowth */
    struct body **partials; /* in discovery order */
    size_t npartials, cappartials;
};

static void set_err(struct tmpl_error *err, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_err(struct tmpl_error *err, int line, int col, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->line = line;
    err->col = col;
}

/* ---- compiling ------------------------------------------------------------------------ */

struct parser {
    struct tmpl *t;
    struct body *b;
    const char *src;
    size_t len;
    char otag[TMPL_MAX_DELIM + 1], ctag[TMPL_MAX_DELIM + 1];
    size_t olen, clen;
    size_t lc_pos; /* line/col of src[lc_pos], advanced monotonically */
    int line, col;
    struct tmpl_error *err;
};

static void perr(struct parser *p, int line, int col, const char *what, const char *detail)
{
    if (p->b->name)
        set_err(p->err, line, col, "partial '%s': %s%s", p->b->name, what, detail);
    else
        set_err(p->err, line, col, "%s%s", what, detail);
}

static void pos_at(struct parser *p, size_t pos, int *line, int *col)
{
    for (; p->lc_pos < pos; p->lc_pos++) {
        if (p->src[p->lc_pos] == '\n') {
            p->line++;
            p->col = 1;
        } else {
            p->col++;
        }
    }
    *line = p->line;
    *col = p->col;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int only_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_ws(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_ws((*s)[*n - 1]))
        (*n)--;
}

/* Appends a zeroed node; returns its index, or (size_t)-1 when memory runs out. */
static size_t add_node(struct body *b, enum nkind kind, int line, int col)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct node *nodes = realloc(b->nodes, cap * sizeof *nodes);
        if (!nodes)
            return (size_t)-1;
        b->nodes = nodes;
        b->cap = cap;
    }
    struct node *nd = &b->nodes[b->n];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    nd->line = line;
    nd->col = col;
    return b->n++;
}

static int add_text(struct parser *p, size_t from, size_t to)
{
    if (to <= from)
        return 0;
    int line, col;
    pos_at(p, from, &line, &col);
    size_t i = add_node(p->b, N_TEXT, line, col);
    if (i == (size_t)-1) {
        perr(p, line, col, "out of memory", "");
        return -1;
    }
    p->b->nodes[i].text = p->src + from;
    p->b->nodes[i].len = to - from;
    return 0;
}

/* Checks a trimmed tag name (non-empty, no whitespace) and stores it in nd->name; with
 * dotted != 0 also splits it into parts ("." is the implicit iterator). 0 or -1. */
static int set_name(struct parser *p, struct node *nd, const char *s, size_t n, int dotted)
{
    trim(&s, &n);
    if (n == 0) {
        perr(p, nd->line, nd->col, "empty tag name", "");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (is_ws(s[i])) {
            perr(p, nd->line, nd->col, "whitespace inside tag name", "");
            return -1;
        }
    }
    nd->name = util_strndup(s, n);
    if (!nd->name)
        goto oom;
    if (!dotted || (n == 1 && s[0] == '.'))
        return 0;
    unsigned nparts = 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.')
            nparts++;
    nd->parts = malloc(nparts * sizeof *nd->parts + n + 1);
    if (!nd->parts)
        goto oom;
    char *str = (char *)(nd->parts + nparts);
    memcpy(str, s, n);
    str[n] = '\0';
    nd->nparts = nparts;
    unsigned k = 0;
    char *part = str;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && str[i] != '.')
            continue;
        str[i] = '\0';
        if (*part == '\0') {
            perr(p, nd->line, nd->col, "empty part in dotted name ", nd->name);
            return -1;
        }
        long idx = -1;
        size_t plen = strlen(part);
        if (plen <= 9 && strspn(part, "0123456789") == plen &&
            util_parse_long(part, 0, 999999999, &idx) < 0)
            idx = -1;
        nd->parts[k].s = part;
        nd->parts[k].len = plen;
        nd->parts[k].idx = idx;
        k++;
        part = str + i + 1;
    }
    return 0;
oom:
    perr(p, nd->line, nd->col, "out of memory", "");
    return -1;
}

/* Finds or registers the partial body for name. NULL when out of memory or too many. */
static struct body *partial_get(struct parser *p, const char *name, int line, int col)
{
    struct tmpl *t = p->t;
    for (size_t i = 0; i < t->npartials; i++)
        if (strcmp(t->partials[i]->name, name) == 0)
            return t->partials[i];
    if (t->npartials >= TMPL_MAX_PARTIALS) {
        perr(p, line, col, "too many partials", "");
        return NULL;
    }
    if (t->npartials == t->cappartials) {
        size_t cap = t->cappartials ? t->cappartials * 2 : 4;
        struct body **v = realloc(t->partials, cap * sizeof *v);
        if (!v)
            goto oom;
        t->partials = v;
        t->cappartials = cap;
    }
    struct body *b = calloc(1, sizeof *b);
    if (!b)
        goto oom;
    b->name = util_strdup(name);
    if (!b->name) {
        free(b);
        goto oom;
    }
    t->partials[t->npartials++] = b;
    return b;
oom:
    perr(p, line, col, "out of memory", "");
    return NULL;
}

/* Parses "{{=<% %>=}}" content into new delimiters. 0 or -1. */
static int set_delims(struct parser *p, const char *s, size_t n, int line, int col)
{
    trim(&s, &n);
    size_t a = 0;
    while (a < n && !is_ws(s[a]))
        a++;
    const char *c = s + a;
    size_t cn = n - a;
    trim(&c, &cn);
    int bad = a == 0 || cn == 0 || a > TMPL_MAX_DELIM || cn > TMPL_MAX_DELIM;
    for (size_t i = 0; !bad && i < cn; i++)
        if (is_ws(c[i]))
            bad = 1;
    if (bad) {
        perr(p, line, col, "bad delimiter tag: expected two delimiters of 1 to 32 characters",
             "");
        return -1;
    }
    memcpy(p->otag, s, a);
    p->otag[a] = '\0';
    p->olen = a;
    memcpy(p->ctag, c, cn);
    p->ctag[cn] = '\0';
    p->clen = cn;
    return 0;
}

/* Compiles b->src into b->nodes. 0, or -1 with err filled. */
static int compile_body(struct tmpl *t, struct body *b, struct tmpl_error *err)
{
    struct parser p = {.t = t, .b = b, .src = b->src, .len = b->srclen, .olen = 2, .clen = 2,
                       .line = 1, .col = 1, .err = err};
    memcpy(p.otag, "{{", 3);
    memcpy(p.ctag, "}}", 3);
    const char *src = b->src;
    size_t len = b->srclen;
    size_t *stack = NULL, nstack = 0, capstack = 0;
    size_t pos = 0, line_start = 0, prev_end = 0;
    int rc = -1;

    for (;;) {
        const char *hit = pos < len ? memmem(src + pos, len - pos, p.otag, p.olen) : NULL;
        if (!hit) {
            if (add_text(&p, pos, len) < 0)
                goto out;
            break;
        }
        size_t ts = (size_t)(hit - src);
        const char *nl = ts > pos ? memrchr(src + pos, '\n', ts - pos) : NULL;
        if (nl)
            line_start = (size_t)(nl - src) + 1;
        int line, col;

        size_t cs = ts + p.olen;
        char type = cs < len ? src[cs] : '\0';
        if (type == '$' || type == '<') {
            pos_at(&p, ts, &line, &col);
            perr(&p, line, col, "template inheritance tags are not supported", "");
            goto out;
        }
        if (type && strchr("!#^/>&{=", type))
            cs++;
        else
            type = '\0';

        char closer[TMPL_MAX_DELIM + 2];
        size_t closelen = 0;
        if (type == '{' || type == '=')
            closer[closelen++] = type == '{' ? '}' : '=';
        memcpy(closer + closelen, p.ctag, p.clen + 1);
        closelen += p.clen;
        const char *ce = cs <= len ? memmem(src + cs, len - cs, closer, closelen) : NULL;
        if (!ce) {
            pos_at(&p, ts, &line, &col);
            char what[64];
            snprintf(what, sizeof what, "unclosed tag: missing '%s'", closer);
            perr(&p, line, col, what, "");
            goto out;
        }
        const char *content = src + cs;
        size_t clen = (size_t)(ce - content);
        size_t te = (size_t)(ce - src) + closelen;

        int standalone = 0;
        size_t after = te;
        if (type && type != '&' && type != '{' && prev_end <= line_start &&
            only_blank(src + line_start, ts - line_start)) {
            size_t q = te;
            while (q < len && (src[q] == ' ' || src[q] == '\t'))
                q++;
            if (q == len) {
                standalone = 1;
                after = len;
            } else if (src[q] == '\n') {
                standalone = 1;
                after = q + 1;
            } else if (src[q] == '\r' && q + 1 < len && src[q + 1] == '\n') {
                standalone = 1;
                after = q + 2;
            }
        }
        if (add_text(&p, pos, standalone ? line_start : ts) < 0)
            goto out;
        pos_at(&p, ts, &line, &col);

        switch (type) {
        case '!':
            break;
        case '=':
            if (set_delims(&p, content, clen, line, col) < 0)
                goto out;
            break;
        case '#':
        case '^': {
            size_t i = add_node(b, type == '#' ? N_SECTION : N_INVERTED, line, col);
            if (i == (size_t)-1) {
                perr(&p, line, col, "out of memory", "");
                goto out;
            }
            if (set_name(&p, &b->nodes[i], content, clen, 1) < 0)
                goto out;
            if (nstack == capstack) {
                size_t cap = capstack ? capstack * 2 : 8;
                size_t *s = realloc(stack, cap * sizeof *s);
                if (!s) {
                    perr(&p, line, col, "out of memory", "");
                    goto out;
                }
                stack = s;
                capstack = cap;
            }
            stack[nstack++] = i;
            break;
        }
        case '/': {
            const char *s = content;
            size_t n = clen;
            trim(&s, &n);
            if (nstack == 0) {
                char what[96];
                snprintf(what, sizeof what, "section end {{/%.*s}} without an open section",
                         (int)(n > 48 ? 48 : n), s);
                perr(&p, line, col, what, "");
                goto out;
            }
            struct node *open = &b->nodes[stack[nstack - 1]];
            if (strlen(open->name) != n || memcmp(open->name, s, n) != 0) {
                char what[192];
                snprintf(what, sizeof what,
                         "mismatched section end: {{/%.*s}} closes {{%c%.*s}} opened at %d:%d",
                         (int)(n > 48 ? 48 : n), s, open->kind == N_SECTION ? '#' : '^',
                         (int)(strlen(open->name) > 48 ? 48 : strlen(open->name)), open->name,
                         open->line, open->col);
                perr(&p, line, col, what, "");
                goto out;
            }
            open->end = b->n;
            nstack--;
            break;
        }
        case '>': {
            size_t i = add_node(b, N_PARTIAL, line, col);
            if (i == (size_t)-1) {
                perr(&p, line, col, "out of memory", "");
                goto out;
            }
            struct node *nd = &b->nodes[i];
            if (set_name(&p, nd, content, clen, 0) < 0)
                goto out;
            nd->partial = partial_get(&p, nd->name, line, col);
            if (!nd->partial)
                goto out;
            nd->standalone = standalone;
            if (standalone) {
                nd->text = src + line_start;
                nd->len = ts - line_start;
            }
            break;
        }
        default: {
            size_t i = add_node(b, type ? N_RAW : N_VAR, line, col);
            if (i == (size_t)-1) {
                perr(&p, line, col, "out of memory", "");
                goto out;
            }
            if (set_name(&p, &b->nodes[i], content, clen, 1) < 0)
                goto out;
            break;
        }
        }
        pos = prev_end = after;
        if (standalone)
            line_start = after;
    }
    if (nstack) {
        struct node *open = &b->nodes[stack[nstack - 1]];
        perr(&p, open->line, open->col, "unclosed section ", open->name);
        goto out;
    }
    rc = 0;
out:
    free(stack);
    return rc;
}

static void free_body(struct body *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->nodes[i].name);
        free(b->nodes[i].parts);
    }
    free(b->nodes);
    free(b->src);
    free(b->name);
}

void tmpl_free(tmpl_t *t)
{
    if (!t)
        return;
    free_body(&t->root);
    for (size_t i = 0; i < t->npartials; i++) {
        free_body(t->partials[i]);
        free(t->partials[i]);
    }
    free(t->partials);
    free(t);
}

tmpl_t *tmpl_compile(const char *text, tmpl_partial_fn fn, void *ud, struct tmpl_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
    tmpl_t *t = calloc(1, sizeof *t);
    if (!t || !text) {
        set_err(err, 0, 0, t ? "no template text" : "out of memory");
        goto fail;
    }
    t->root.src = util_strdup(text);
    if (!t->root.src) {
        set_err(err, 0, 0, "out of memory");
        goto fail;
    }
    t->root.srclen = strlen(text);
    t->root.found = 1;
    if (compile_body(t, &t->root, err) < 0)
        goto fail;
    /* The list grows while partials are compiled: each name is loaded and compiled once. */
    for (size_t i = 0; i < t->npartials; i++) {
        struct body *b = t->partials[i];
        char *ptext = fn ? fn(b->name, ud) : NULL;
        if (!ptext)
            continue;
        b->src = ptext;
        b->srclen = strlen(ptext);
        b->found = 1;
        if (compile_body(t, b, err) < 0)
            goto fail;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < t->root.n; i++)
        bytes += t->root.nodes[i].kind == N_TEXT ? t->root.nodes[i].len : 32;
    t->size_hint = bytes < 128 ? 256 : 2 * bytes;
    return t;
fail:
    tmpl_free(t);
    return NULL;
}

/* ---- rendering ------------------------------------------------------------------------ */

struct frame {
    json_t *v;
    const struct frame *up;
};

struct indent {
    const char *s;
    size_t len;
    const struct indent *up;
};

struct render {
    buf_t out;
    int escape;
    int max_depth;
    const struct indent *ind; /* indentation of the standalone partials being rendered */
    size_t indlen;            /* total bytes in ind; 0 skips the newline scan */
    int pending;              /* at the start of a template line, indentation not written */
    struct tmpl_error *err;
};

static int emit(struct render *r, const struct node *n, const void *p, size_t len)
{
    /* Fast path within the reserved space (buf_t's fields are its public contract: cap
     * bytes allocated, one kept for the NUL that tmpl_render writes at the end). */
    buf_t *b = &r->out;
    if (len < b->cap - b->len && (!b->max || len <= b->max - b->len)) {
        memcpy(b->data + b->len, p, len);
        b->len += len;
        return 0;
    }
    if (buf_append(b, p, len) == 0)
        return 0;
    if (r->out.max && (len > r->out.max || r->out.len > r->out.max - len))
        set_err(r->err, n->line, n->col, "output larger than %zu bytes", r->out.max);
    else
        set_err(r->err, n->line, n->col, "out of memory");
    return -1;
}

static int emit_indent(struct render *r, const struct node *n, const struct indent *in)
{
    if (!in)
        return 0;
    if (emit_indent(r, n, in->up) < 0)
        return -1;
    return emit(r, n, in->s, in->len);
}

/* Writes the indentation owed at a line start, once. */
static int settle_indent(struct render *r, const struct node *n)
{
    if (!r->pending || !r->indlen)
        return 0;
    r->pending = 0;
    return emit_indent(r, n, r->ind);
}

static int put_text(struct render *r, const struct node *n)
{
    if (!r->indlen)
        return emit(r, n, n->text, n->len);
    const char *p = n->text;
    size_t len = n->len;
    while (len) {
        if (settle_indent(r, n) < 0)
            return -1;
        const char *nl = memchr(p, '\n', len);
        size_t k = nl ? (size_t)(nl - p) + 1 : len;
        if (emit(r, n, p, k) < 0)
            return -1;
        p += k;
        len -= k;
        if (nl)
            r->pending = 1;
    }
    return 0;
}

/* HTML escapes, indexed by byte: 0 = copy as is. */
static const unsigned char esc_index[256] = {['&'] = 1, ['<'] = 2, ['>'] = 3, ['"'] = 4,
                                             ['\''] = 5};
static const struct {
    const char *s;
    size_t len;
} esc_text[] = {{"", 0}, {"&amp;", 5}, {"&lt;", 4}, {"&gt;", 4}, {"&quot;", 6}, {"&#39;", 5}};

static int put_escaped(struct render *r, const struct node *n, const char *s, size_t len)
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char e = esc_index[(unsigned char)s[i]];
        if (!e)
            continue;
        if ((i > run && emit(r, n, s + run, i - run) < 0) ||
            emit(r, n, esc_text[e].s, esc_text[e].len) < 0)
            return -1;
        run = i + 1;
    }
    return run < len ? emit(r, n, s + run, len - run) : 0;
}

static int put_str(struct render *r, const struct node *n, const char *s, size_t len, int esc)
{
    return esc ? put_escaped(r, n, s, len) : emit(r, n, s, len);
}

struct dump_ctx {
    struct render *r;
    const struct node *n;
    int esc;
};

static int dump_cb(const char *buffer, size_t size, void *data)
{
    struct dump_ctx *d = data;
    return put_str(d->r, d->n, buffer, size, d->esc);
}

/* Writes v in decimal, with at least width digits (zero-padded), ending just before end;
 * returns the first character. end needs room for 20 digits before it. */
static char *fmt_u64(char *end, unsigned long long v, int width)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
        width--;
    } while (v || width > 0);
    return p;
}

/* Decimal text of an integer into out (NUL-terminated); returns its length. */
static size_t fmt_int(json_int_t v, char out[40])
{
    char tmp[24];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *p = fmt_u64(tmp + sizeof tmp, u, 1);
    size_t n = (size_t)(tmp + sizeof tmp - p), o = 0;
    if (v < 0)
        out[o++] = '-';
    memcpy(out + o, p, n);
    out[o + n] = '\0';
    return o + n;
}

/* Fast path for the common reals (1e-4 <= |d| < 1e15 with at most 8 decimals): the fewest
 * decimals k such that round(d * 10^k) / 10^k == d exactly. Division by an exact power of
 * ten rounds correctly, so the text reads back as d, as strtod would. 0, or -1 to fall back. */
static int fmt_real_fast(double d, char out[40])
{
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    double a = d < 0 ? -d : d;
    if (!(a >= 1e-4 && a < 1e15))
        return -1;
    for (int k = 0; k <= 8; k++) {
        double x = a * pow10[k];
        if (x >= 9007199254740992.0) /* 2^53: past exact integers */
            return -1;
        long long q = (long long)(x + 0.5); /* checked below, so rounding may be loose */
        if ((double)q / pow10[k] != a)
            continue;
        unsigned long long p = (unsigned long long)pow10[k], u = (unsigned long long)q;
        char tmp[48];
        char *end = tmp + sizeof tmp, *s = end;
        if (k) {
            s = fmt_u64(end, u % p, k);
            *--s = '.';
        }
        s = fmt_u64(s, u / p, 1);
        if (d < 0)
            *--s = '-';
        memcpy(out, s, (size_t)(end - s));
        out[end - s] = '\0';
        return 0;
    }
    return -1;
}

/* Shortest %g form that reads back as the same double (1.21, 3, 1e+20). */
static void fmt_real(double d, char out[40])
{
    if (fmt_real_fast(d, out) == 0)
        return;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

static int put_value(struct render *r, const struct node *n, json_t *v)
{
    if (settle_indent(r, n) < 0)
        return -1;
    if (!v)
        return 0;
    int esc = r->escape && n->kind == N_VAR;
    char num[40];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return put_str(r, n, json_string_value(v), json_string_length(v), esc);
    case JSON_INTEGER:
        return emit(r, n, num, fmt_int(json_integer_value(v), num));
    case JSON_REAL:
        fmt_real(json_real_value(v), num);
        return emit(r, n, num, strlen(num));
    case JSON_TRUE:
        return emit(r, n, "true", 4);
    case JSON_FALSE:
        return emit(r, n, "false", 5);
    case JSON_NULL:
        return 0;
    case JSON_OBJECT:
    case JSON_ARRAY: {
        struct dump_ctx d = {r, n, esc};
        if (json_dump_callback(v, dump_cb, &d, JSON_COMPACT | JSON_ENCODE_ANY) < 0) {
            if (r->err && !r->err->msg[0])
                set_err(r->err, n->line, n->col, "cannot render value as JSON");
            return -1;
        }
        return 0;
    }
    }
    return 0;
}

static int truthy(json_t *v)
{
    if (!v)
        return 0;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    default:
        return 1;
    }
}

/* Name resolution per spec: the first part walks the context stack, later parts resolve
 * only against the previous result. Returns a borrowed value or NULL. */
static json_t *lookup(const struct frame *ctx, const struct node *n)
{
    if (n->nparts == 0)
        return ctx->v;
    json_t *v = NULL;
    for (const struct frame *f = ctx; f && !v; f = f->up)
        if (json_is_object(f->v))
            v = json_object_getn(f->v, n->parts[0].s, n->parts[0].len);
    for (unsigned i = 1; v && i < n->nparts; i++) {
        if (json_is_object(v))
            v = json_object_getn(v, n->parts[i].s, n->parts[i].len);
        else if (json_is_array(v) && n->parts[i].idx >= 0)
            v = json_array_get(v, (size_t)n->parts[i].idx);
        else
            v = NULL;
    }
    return v;
}

static int render_range(struct render *r, const struct body *b, size_t from, size_t to,
                        const struct frame *ctx, int depth);

static int too_deep(struct render *r, const struct node *n, int depth)
{
    if (depth < r->max_depth)
        return 0;
    set_err(r->err, n->line, n->col, "sections and partials nested deeper than %d",
            r->max_depth);
    return 1;
}

static int render_partial(struct render *r, const struct node *n, const struct frame *ctx,
                          int depth)
{
    const struct body *pb = n->partial;
    if (!pb || pb->n == 0)
        return 0;
    if (too_deep(r, n, depth))
        return -1;
    const struct indent *saved = r->ind;
    size_t savedlen = r->indlen;
    struct indent in = {n->text, n->len, r->ind};
    if (n->standalone) {
        /* Each line of a standalone partial takes the tag's indentation (and the
         * indentation of the partials around it). */
        if (n->len) {
            r->ind = &in;
            r->indlen += n->len;
        }
        r->pending = 1;
    } else {
        /* An inline partial's lines are not indented: the owed indentation goes before it. */
        if (settle_indent(r, n) < 0)
            return -1;
        r->ind = NULL;
        r->indlen = 0;
    }
    int rc = render_range(r, pb, 0, pb->n, ctx, depth + 1);
    r->ind = saved;
    r->indlen = savedlen;
    if (!n->standalone)
        r->pending = 0;
    return rc;
}

static int render_range(struct render *r, const struct body *b, size_t from, size_t to,
                        const struct frame *ctx, int depth)
{
    for (size_t i = from; i < to; i++) {
        const struct node *n = &b->nodes[i];
        switch (n->kind) {
        case N_TEXT:
            if (put_text(r, n) < 0)
                return -1;
            break;
        case N_VAR:
        case N_RAW:
            if (put_value(r, n, lookup(ctx, n)) < 0)
                return -1;
            break;
        case N_SECTION: {
            json_t *v = lookup(ctx, n);
            if (truthy(v)) {
                if (too_deep(r, n, depth))
                    return -1;
                if (json_is_array(v)) {
                    size_t count = json_array_size(v);
                    for (size_t k = 0; k < count; k++) {
                        struct frame f = {json_array_get(v, k), ctx};
                        if (render_range(r, b, i + 1, n->end, &f, depth + 1) < 0)
                            return -1;
                    }
                } else {
                    struct frame f = {v, ctx};
                    if (render_range(r, b, i + 1, n->end, &f, depth + 1) < 0)
                        return -1;
                }
            }
            i = n->end - 1;
            break;
        }
        case N_INVERTED:
            if (!truthy(lookup(ctx, n))) {
                if (too_deep(r, n, depth))
                    return -1;
                if (render_range(r, b, i + 1, n->end, ctx, depth + 1) < 0)
                    return -1;
            }
            i = n->end - 1;
            break;
        case N_PARTIAL:
            if (render_partial(r, n, ctx, depth) < 0)
                return -1;
            break;
        }
    }
    return 0;
}

char *tmpl_render(const tmpl_t *t, json_t *data, int escape, const struct tmpl_limits *lim,
                  struct tmpl_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
    if (!t) {
        set_err(err, 0, 0, "no template");
        return NULL;
    }
    size_t max_output = lim && lim->max_output ? lim->max_output : TMPL_DEFAULT_OUTPUT;
    int max_depth = lim && lim->max_depth > 0 ? lim->max_depth : TMPL_DEFAULT_DEPTH;
    if (max_depth > TMPL_MAX_DEPTH)
        max_depth = TMPL_MAX_DEPTH;
    struct render r = {.escape = escape, .max_depth = max_depth, .err = err};
    buf_init(&r.out, max_output);
    struct frame root = {data, NULL};
    if (buf_reserve(&r.out, t->size_hint < max_output ? t->size_hint : max_output) < 0) {
        set_err(err, 0, 0, "out of memory");
        return NULL;
    }
    if (render_range(&r, &t->root, 0, t->root.n, &root, 0) < 0) {
        buf_free(&r.out);
        return NULL;
    }
    if (r.out.data)
        r.out.data[r.out.len] = '\0';
    char *s = buf_steal(&r.out);
    if (!s)
        set_err(err, 0, 0, "out of memory");
    return s;
}

char *tmpl_render_string(const char *text, json_t *data, int escape, struct tmpl_error *err)
{
    tmpl_t *t = tmpl_compile(text, NULL, NULL, err);
    if (!t)
        return NULL;
    char *s = tmpl_render(t, data, escape, NULL, err);
    tmpl_free(t);
    return s;
}

/* ---- introspection -------------------------------------------------------------------- */

static void names_of(const struct body *b,
                     void (*fn)(const char *partial, const char *name, int line, int col,
                                void *ud),
                     void *ud)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct node *n = &b->nodes[i];
        if (n->kind != N_TEXT && n->kind != N_PARTIAL && n->nparts > 0)
            fn(b->name, n->name, n->line, n->col, ud);
    }
}

void tmpl_each_name_in(const tmpl_t *t,
                       void (*fn)(const char *partial, const char *name, int line, int col,
                                  void *ud),
                       void *ud)
{
    if (!t || !fn)
        return;
    names_of(&t->root, fn, ud);
    for (size_t i = 0; i < t->npartials; i++)
        names_of(t->partials[i], fn, ud);
}

struct each_name_ctx {
    void (*fn)(const char *name, int line, int col, void *ud);
    void *ud;
};

static void each_name_cb(const char *partial, const char *name, int line, int col, void *ud)
{
    struct each_name_ctx *c = ud;
    c->fn(name, line, col, c->ud);
}

void tmpl_each_name(const tmpl_t *t, void (*fn)(const char *name, int line, int col, void *ud),
                    void *ud)
{
    if (!fn)
        return;
    struct each_name_ctx c = {fn, ud};
    tmpl_each_name_in(t, each_name_cb, &c);
}

void tmpl_each_partial(const tmpl_t *t, void (*fn)(const char *name, int found, void *ud),
                       void *ud)
{
    if (!t || !fn)
        return;
    for (size_t i = 0; i < t->npartials; i++)
        fn(t->partials[i]->name, t->partials[i]->found, ud);
}
