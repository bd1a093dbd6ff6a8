/* sim_filter: the Gridify query language that TrackplanFM list endpoints accept (guide §4) —
 * `filter` expressions (twelve operators, ',' AND, '|' OR, parentheses, '/i', backslash
 * escapes) and `orderBy` lists — parsed once per request, then evaluated over jansson records.
 * Field names are resolved through the caller's callback; this module knows no collections. */
#ifndef TB_SIM_FILTER_H
#define TB_SIM_FILTER_H

#include <stddef.h>

#include <jansson.h>

/* Limits: longer or deeper expressions are rejected as errors, never truncated. */
#define SIM_FILTER_MAX_LEN 8192
#define SIM_FILTER_MAX_DEPTH 32
#define SIM_FILTER_MAX_TERMS 512

/* Resolves a field name as written in a query (any case) to the name records store it
 * under; returns a string valid until the parse returns, or NULL when the field is unknown. */
typedef const char *(*sim_field_fn)(void *ctx, const char *name);

typedef struct sim_filter sim_filter_t;
typedef struct sim_order sim_order_t;

/* Parses a filter (NULL or blank text yields a filter matching everything). Returns a new
 * filter, or NULL with a readable message in err (unknown field, bad syntax, limits, OOM). */
sim_filter_t *sim_filter_parse(const char *text, sim_field_fn resolve, void *ctx, char *err,
                               size_t errlen);
/* 1 when the record (borrowed JSON object) satisfies the filter, 0 otherwise. */
int sim_filter_match(const sim_filter_t *f, json_t *record);
/* Releases a filter; NULL is a no-op. */
void sim_filter_free(sim_filter_t *f);

/* Parses an orderBy list ("a", "a desc", "a, b DESC"; NULL or blank means no ordering).
 * Returns a new order, or NULL with a message in err. */
sim_order_t *sim_order_parse(const char *text, sim_field_fn resolve, void *ctx, char *err,
                             size_t errlen);
/* Sorts n borrowed records in place, stably. 0, or -1 on OOM (array left unchanged). */
int sim_order_sort(const sim_order_t *o, json_t **recs, size_t n);
/* Compares two records by the order's keys: <0, 0 or >0. */
int sim_order_compare(const sim_order_t *o, json_t *a, json_t *b);
/* Releases an order; NULL is a no-op. */
void sim_order_free(sim_order_t *o);

#endif
