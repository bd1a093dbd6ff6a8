/* filter: builds TrackplanFM "filter" parameters (guide §4.1, the Gridify grammar) from
 * field / operator / value conditions joined by AND (",") or OR ("|") and grouped in
 * parentheses. Values are escaped so that no value can change the meaning of a filter:
 * "\" goes before each of , | ( ) \ and before "/i". Field names are checked, not escaped. */
#ifndef TB_TRACKPLAN_FILTER_H
#define TB_TRACKPLAN_FILTER_H

enum tp_filter_op {
    TP_F_EQ,            /* == */
    TP_F_NE,            /* != */
    TP_F_LT,            /* <  */
    TP_F_GT,            /* >  */
    TP_F_GE,            /* >= */
    TP_F_LE,            /* <= */
    TP_F_CONTAINS,      /* =* */
    TP_F_NOT_CONTAINS,  /* !* */
    TP_F_STARTS,        /* ^  */
    TP_F_NOT_STARTS,    /* !^ */
    TP_F_ENDS,          /* $  */
    TP_F_NOT_ENDS,      /* !$ */
    TP_F_COUNT
};

/* Bounds: the whole expression, one field name, group nesting. */
#define TP_FILTER_MAX_LEN 4096
#define TP_FILTER_MAX_FIELD 128
#define TP_FILTER_MAX_DEPTH 16

struct tp_filter;

/* A new, empty filter (its string is ""), or NULL on OOM. */
struct tp_filter *tp_filter_new(void);
/* Frees f; NULL is a no-op. */
void tp_filter_free(struct tp_filter *f);

/* Adds the condition "field op value" (value NULL means empty: Gridify then matches null or
 * default values), with the "/i" case-insensitive suffix when nocase is set. It is joined
 * to what precedes it by AND, or by OR right after tp_filter_or(). Returns 0, or -1 when
 * the field is not a name ([A-Za-z_][A-Za-z0-9_.]*), op is unknown, or a bound is passed;
 * after any -1 the filter is spoiled: every later call fails and tp_filter_str gives NULL. */
int tp_filter_where(struct tp_filter *f, const char *field, enum tp_filter_op op,
                    const char *value, int nocase);
/* Joins the next condition or group by OR. -1 (spoiling f) when nothing precedes it. */
int tp_filter_or(struct tp_filter *f);
/* Opens a group "(", joined like a condition. -1 (spoiling f) past TP_FILTER_MAX_DEPTH. */
int tp_filter_open(struct tp_filter *f);
/* Closes the innermost group. -1 (spoiling f) when none is open, it is empty, or an OR
 * is left dangling inside it. */
int tp_filter_close(struct tp_filter *f);

/* The expression (borrowed, valid until the next change or free), or NULL when f is
 * spoiled, a group is still open or an OR dangles. */
const char *tp_filter_str(const struct tp_filter *f);

/* The escaped form of value (new string: free()), or NULL on OOM. */
char *tp_filter_escape(const char *value);
/* The operator's token ("==", "=*", ...), or NULL for an unknown op. */
const char *tp_filter_op_token(enum tp_filter_op op);
/* Parses an operator token; 0, or -1 when s is not exactly one of the twelve. */
int tp_filter_op_parse(const char *s, enum tp_filter_op *out);

#endif
