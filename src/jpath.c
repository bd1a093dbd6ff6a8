/* jpath: path compiler and evaluator over jansson values; see jpath.h. Compiled paths are
 * immutable and may be shared between threads. */
#include "jpath.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/util.h"

enum seg_type { SEG_KEY, SEG_INDEX, SEG_WILD };

struct jseg {
    enum seg_type type;
    char *key;   /* SEG_KEY: owned, NUL-terminated */
    long index;  /* SEG_INDEX: negative counts from the end */
};

struct jpath {
    char *text;
    size_t nseg;
    struct jseg seg[JPATH_MAX_SEGMENTS];
    int wild;
};

/* Records a syntax error; always returns -1 so callers can `return perr(...)`. */
static int perr(char *err, size_t errlen, size_t *errcol, size_t col, const char *msg)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s", msg);
    if (errcol)
        *errcol = col;
    return -1;
}

static int bare_key_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '.' && c != '[' && c != ']' && c != '"' &&
           c != '\'';
}

static int add_seg(jpath_t *p, enum seg_type t, char *key, long index)
{
    if (p->nseg >= JPATH_MAX_SEGMENTS) {
        free(key);
        return -1;
    }
    p->seg[p->nseg].type = t;
    p->seg[p->nseg].key = key;
    p->seg[p->nseg].index = index;
    p->nseg++;
    if (t == SEG_WILD)
        p->wild = 1;
    return 0;
}

/* Parses a bare key at s[*i]; "*" alone is a wildcard. */
static int parse_bare(jpath_t *p, const char *s, size_t *i, char *err, size_t errlen,
                      size_t *errcol)
{
    size_t start = *i;
    while (bare_key_char((unsigned char)s[*i]))
        (*i)++;
    if (*i == start) {
        if (s[*i] == '\0')
            return perr(err, errlen, errcol, *i, "key expected at end of path");
        if ((unsigned char)s[*i] <= 0x20)
            return perr(err, errlen, errcol, *i, "whitespace or control character in key "
                                                 "(quote the key: [\"a b\"])");
        return perr(err, errlen, errcol, *i, "key expected");
    }
    if (*i - start == 1 && s[start] == '*')
        return add_seg(p, SEG_WILD, NULL, 0) < 0
                   ? perr(err, errlen, errcol, start, "too many path segments")
                   : 0;
    char *key = util_strndup(s + start, *i - start);
    if (!key)
        return perr(err, errlen, errcol, start, "out of memory");
    if (add_seg(p, SEG_KEY, key, 0) < 0)
        return perr(err, errlen, errcol, start, "too many path segments");
    return 0;
}

/* Parses the inside of [...] with s[*i] just past '['; leaves *i past ']'. */
static int parse_bracket(jpath_t *p, const char *s, size_t *i, char *err, size_t errlen,
                         size_t *errcol)
{
    size_t open = *i - 1;
    char c = s[*i];
    if (c == '*') {
        (*i)++;
        if (s[*i] != ']')
            return perr(err, errlen, errcol, *i, "']' expected after '*'");
        (*i)++;
        return add_seg(p, SEG_WILD, NULL, 0) < 0
                   ? perr(err, errlen, errcol, open, "too many path segments")
                   : 0;
    }
    if (c == '"' || c == '\'') {
        char q = c;
        buf_t b;
        buf_init(&b, JPATH_MAX_LEN);
        (*i)++;
        for (;;) {
            char d = s[*i];
            if (d == '\0') {
                buf_free(&b);
                return perr(err, errlen, errcol, open, "unterminated quoted key");
            }
            if (d == q)
                break;
            if (d == '\\') {
                char e = s[*i + 1];
                if (e != '\\' && e != '"' && e != '\'') {
                    buf_free(&b);
                    return perr(err, errlen, errcol, *i,
                                "bad escape in quoted key (only \\\\, \\\" and \\' )");
                }
                d = e;
                (*i)++;
            }
            if (buf_putc(&b, d) < 0) {
                buf_free(&b);
                return perr(err, errlen, errcol, *i, "out of memory");
            }
            (*i)++;
        }
        (*i)++;
        if (s[*i] != ']') {
            buf_free(&b);
            return perr(err, errlen, errcol, *i, "']' expected after quoted key");
        }
        (*i)++;
        char *key = buf_steal(&b);
        if (!key)
            return perr(err, errlen, errcol, open, "out of memory");
        if (add_seg(p, SEG_KEY, key, 0) < 0)
            return perr(err, errlen, errcol, open, "too many path segments");
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t start = *i;
        if (c == '-')
            (*i)++;
        size_t digits = *i;
        while (s[*i] >= '0' && s[*i] <= '9')
            (*i)++;
        if (*i == digits)
            return perr(err, errlen, errcol, *i, "digit expected in index");
        if (s[*i] != ']')
            return perr(err, errlen, errcol, *i, "']' expected after index");
        char num[16];
        long v = 0;
        size_t n = *i - start;
        if (n >= sizeof num)
            return perr(err, errlen, errcol, start, "index out of range");
        memcpy(num, s + start, n);
        num[n] = '\0';
        if (util_parse_long(num, -1000000000L, 1000000000L, &v) < 0)
            return perr(err, errlen, errcol, start, "index out of range");
        (*i)++;
        return add_seg(p, SEG_INDEX, NULL, v) < 0
                   ? perr(err, errlen, errcol, open, "too many path segments")
                   : 0;
    }
    if (c == '\0')
        return perr(err, errlen, errcol, *i, "unterminated '['");
    return perr(err, errlen, errcol, *i, "index, '*' or quoted key expected after '['");
}

jpath_t *jpath_compile(const char *path, char *err, size_t errlen, size_t *errcol)
{
    jpath_t *p = NULL;
    if (err && errlen > 0)
        err[0] = '\0';
    if (errcol)
        *errcol = 0;
    if (!path || !*path) {
        perr(err, errlen, errcol, 0, "empty path");
        return NULL;
    }
    size_t len = strlen(path);
    if (len > JPATH_MAX_LEN) {
        perr(err, errlen, errcol, JPATH_MAX_LEN, "path too long");
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (!p || !(p->text = util_strdup(path))) {
        perr(err, errlen, errcol, 0, "out of memory");
        goto fail;
    }
    size_t i = 0;
    if (path[0] == '[') {
        i = 1;
        if (parse_bracket(p, path, &i, err, errlen, errcol) < 0)
            goto fail;
    } else if (parse_bare(p, path, &i, err, errlen, errcol) < 0) {
        goto fail;
    }
    while (path[i]) {
        if (path[i] == '.') {
            i++;
            if (path[i] == '.' || path[i] == '[' || path[i] == ']') {
                perr(err, errlen, errcol, i, "key expected after '.'");
                goto fail;
            }
            if (parse_bare(p, path, &i, err, errlen, errcol) < 0)
                goto fail;
        } else if (path[i] == '[') {
            i++;
            if (parse_bracket(p, path, &i, err, errlen, errcol) < 0)
                goto fail;
        } else {
            perr(err, errlen, errcol, i, "'.' or '[' expected");
            goto fail;
        }
    }
    return p;
fail:
    jpath_free(p);
    return NULL;
}

void jpath_free(jpath_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nseg; i++)
        free(p->seg[i].key);
    free(p->text);
    free(p);
}

const char *jpath_text(const jpath_t *p)
{
    return p ? p->text : "";
}

int jpath_has_wildcard(const jpath_t *p)
{
    return p && p->wild;
}

json_t *jpath_object_get(json_t *obj, const char *key)
{
    if (!json_is_object(obj) || !key)
        return NULL;
    json_t *v = json_object_get(obj, key);
    if (v)
        return v;
    const char *k;
    json_object_foreach(obj, k, v) {
        if (strcasecmp(k, key) == 0)
            return v;
    }
    return NULL;
}

struct walk {
    const jpath_t *p;
    int (*fn)(json_t *v, void *ud);
    void *ud;
    size_t count;
    int stop;
};

static void walk(struct walk *w, size_t i, json_t *v)
{
    if (w->stop || !v)
        return;
    if (i == w->p->nseg) {
        w->count++;
        if (w->fn(v, w->ud))
            w->stop = 1;
        return;
    }
    const struct jseg *s = &w->p->seg[i];
    switch (s->type) {
    case SEG_KEY:
        walk(w, i + 1, jpath_object_get(v, s->key));
        break;
    case SEG_INDEX:
        if (json_is_array(v)) {
            size_t n = json_array_size(v);
            long idx = s->index;
            if (idx < 0)
                idx += (long)n;
            if (idx >= 0 && (size_t)idx < n)
                walk(w, i + 1, json_array_get(v, (size_t)idx));
        }
        break;
    case SEG_WILD:
        if (json_is_array(v)) {
            size_t k;
            json_t *e;
            json_array_foreach(v, k, e) {
                walk(w, i + 1, e);
                if (w->stop)
                    break;
            }
        } else if (json_is_object(v)) {
            const char *k;
            json_t *e;
            json_object_foreach(v, k, e) {
                walk(w, i + 1, e);
                if (w->stop)
                    break;
            }
        }
        break;
    }
}

size_t jpath_each(const jpath_t *p, json_t *root, int (*fn)(json_t *v, void *ud), void *ud)
{
    if (!p || !root || !fn)
        return 0;
    struct walk w = {p, fn, ud, 0, 0};
    walk(&w, 0, root);
    return w.count;
}

static int take_first(json_t *v, void *ud)
{
    *(json_t **)ud = v;
    return 1;
}

json_t *jpath_first(const jpath_t *p, json_t *root)
{
    json_t *found = NULL;
    jpath_each(p, root, take_first, &found);
    return found;
}

/* Shortest "%.Ng" that reads back as the same double. */
static char *real_string(double d)
{
    char tmp[40];
    if (!isfinite(d))
        return NULL;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        double back;
        if (util_parse_double(tmp, &back) == 0 && back == d)
            break;
    }
    return util_strdup(tmp);
}

char *jpath_scalar_string(json_t *v)
{
    if (!v)
        return NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return util_strdup(json_string_value(v));
    case JSON_INTEGER:
        return util_asprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return real_string(json_real_value(v));
    case JSON_TRUE:
        return util_strdup("true");
    case JSON_FALSE:
        return util_strdup("false");
    case JSON_NULL:
        return NULL;
    case JSON_OBJECT:
    case JSON_ARRAY:
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    return NULL;
}
