/* filter: Gridify filter expressions with escaped values; see filter.h. */
#include "trackplan/filter.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

struct tp_filter {
    buf_t text;
    int depth;      /* open groups */
    int need_join;  /* the last item was a condition or a closed group */
    int pending_or; /* tp_filter_or() was called for the next item */
    int spoiled;
};

static const char *const tp_filter_tokens[TP_F_COUNT] = {
    "==", "!=", "<", ">", ">=", "<=", "=*", "!*", "^", "!^", "$", "!$",
};

struct tp_filter *tp_filter_new(void)
{
    struct tp_filter *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    buf_init(&f->text, TP_FILTER_MAX_LEN);
    return f;
}

void tp_filter_free(struct tp_filter *f)
{
    if (!f)
        return;
    buf_free(&f->text);
    free(f);
}

const char *tp_filter_op_token(enum tp_filter_op op)
{
    return (unsigned)op < TP_F_COUNT ? tp_filter_tokens[op] : NULL;
}

int tp_filter_op_parse(const char *s, enum tp_filter_op *out)
{
    for (int i = 0; i < TP_F_COUNT; i++)
        if (strcmp(s, tp_filter_tokens[i]) == 0) {
            *out = (enum tp_filter_op)i;
            return 0;
        }
    return -1;
}

/* Appends the escaped value to b; 0 or -1 (cap or OOM). */
static int tp_filter_put_escaped(buf_t *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        int special = *p == ',' || *p == '|' || *p == '(' || *p == ')' || *p == '\\' ||
                      (*p == '/' && p[1] == 'i');
        if (special && buf_putc(b, '\\') < 0)
            return -1;
        if (buf_putc(b, *p) < 0)
            return -1;
    }
    return 0;
}

char *tp_filter_escape(const char *value)
{
    buf_t b;
    buf_init(&b, 0);
    if (tp_filter_put_escaped(&b, value ? value : "") < 0) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b);
}

static int tp_filter_valid_field(const char *s)
{
    size_t n = 0;
    if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
            return 0;
    }
    return n <= TP_FILTER_MAX_FIELD;
}

/* Spoils f and returns -1. */
static int tp_filter_spoil(struct tp_filter *f)
{
    f->spoiled = 1;
    return -1;
}

/* Writes the joiner the next item needs. */
static int tp_filter_join(struct tp_filter *f)
{
    int rc = 0;
    if (f->need_join)
        rc = buf_putc(&f->text, f->pending_or ? '|' : ',');
    f->pending_or = 0;
    return rc;
}

int tp_filter_where(struct tp_filter *f, const char *field, enum tp_filter_op op,
                    const char *value, int nocase)
{
    if (f->spoiled || !tp_filter_valid_field(field) || (unsigned)op >= TP_F_COUNT)
        return tp_filter_spoil(f);
    if (tp_filter_join(f) < 0 || buf_puts(&f->text, field) < 0 ||
        buf_puts(&f->text, tp_filter_tokens[op]) < 0 ||
        tp_filter_put_escaped(&f->text, value ? value : "") < 0 ||
        (nocase && buf_puts(&f->text, "/i") < 0))
        return tp_filter_spoil(f);
    f->need_join = 1;
    return 0;
}

int tp_filter_or(struct tp_filter *f)
{
    if (f->spoiled || !f->need_join || f->pending_or)
        return tp_filter_spoil(f);
    f->pending_or = 1;
    return 0;
}

int tp_filter_open(struct tp_filter *f)
{
    if (f->spoiled || f->depth >= TP_FILTER_MAX_DEPTH)
        return tp_filter_spoil(f);
    if (tp_filter_join(f) < 0 || buf_putc(&f->text, '(') < 0)
        return tp_filter_spoil(f);
    f->depth++;
    f->need_join = 0;
    return 0;
}

int tp_filter_close(struct tp_filter *f)
{
    if (f->spoiled || f->depth == 0 || !f->need_join || f->pending_or)
        return tp_filter_spoil(f);
    if (buf_putc(&f->text, ')') < 0)
        return tp_filter_spoil(f);
    f->depth--;
    return 0;
}

const char *tp_filter_str(const struct tp_filter *f)
{
    if (f->spoiled || f->depth != 0 || f->pending_or)
        return NULL;
    return f->text.data ? f->text.data : "";
}
