/* order: builds TrackplanFM "orderBy" parameters (guide §4.2): a comma-separated list of
 * field names, each optionally followed by " desc". Field names are checked so a caller's
 * string cannot smuggle in other syntax. */
#ifndef TB_TRACKPLAN_ORDER_H
#define TB_TRACKPLAN_ORDER_H

#define TP_ORDER_MAX_LEN 1024
#define TP_ORDER_MAX_FIELD 128

struct tp_order;

/* A new, empty ordering (its string is ""), or NULL on OOM. */
struct tp_order *tp_order_new(void);
/* Frees o; NULL is a no-op. */
void tp_order_free(struct tp_order *o);
/* Appends field, descending when desc != 0. Returns 0, or -1 when the field is not a name
 * ([A-Za-z_][A-Za-z0-9_.]*) or the bound is passed; after -1 o is spoiled (string NULL). */
int tp_order_add(struct tp_order *o, const char *field, int desc);
/* The expression (borrowed, valid until the next change), or NULL when spoiled. */
const char *tp_order_str(const struct tp_order *o);

#endif
