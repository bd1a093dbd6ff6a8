/* order: orderBy expressions; see order.h. */
#include "trackplan/order.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

struct tp_order {
    buf_t text;
    int spoiled;
};

struct tp_order *tp_order_new(void)
{
    struct tp_order *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    buf_init(&o->text, TP_ORDER_MAX_LEN);
    return o;
}

void tp_order_free(struct tp_order *o)
{
    if (!o)
        return;
    buf_free(&o->text);
    free(o);
}

static int tp_order_valid_field(const char *s)
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
    return n <= TP_ORDER_MAX_FIELD;
}

int tp_order_add(struct tp_order *o, const char *field, int desc)
{
    if (o->spoiled || !tp_order_valid_field(field))
        goto spoil;
    if ((o->text.len > 0 && buf_putc(&o->text, ',') < 0) || buf_puts(&o->text, field) < 0 ||
        (desc && buf_puts(&o->text, " desc") < 0))
        goto spoil;
    return 0;
spoil:
    o->spoiled = 1;
    return -1;
}

const char *tp_order_str(const struct tp_order *o)
{
    if (o->spoiled)
        return NULL;
    return o->text.data ? o->text.data : "";
}
