/* tmpl: Mustache templates (the mustache spec: variables, sections, inverted sections,
 * comments, partials, set delimiters, standalone lines) rendered over jansson values.
 * A template is compiled once at load together with its partials; rendering does no parsing
 * and allocates only its output. Lambdas and template inheritance ({{$ }}, {{< }}) are not
 * supported and are reported as syntax errors. */
#ifndef TB_TMPL_H
#define TB_TMPL_H

#include <stddef.h>

#include <jansson.h>

typedef struct tmpl tmpl_t;

struct tmpl_error {
    char msg[256];
    int line;  /* 1-based position in the text (of the partial when msg names one) */
    int col;   /* 1-based, in bytes */
};

/* Partial loader: returns a malloc'd template text for name (the template takes it and frees
 * it), or NULL when there is none (a missing partial renders empty, per spec). */
typedef char *(*tmpl_partial_fn)(const char *name, void *ud);

/* Compiles text once. Every partial reachable from text is loaded through fn (may be NULL:
 * no partials) and compiled once, then linked by name, so recursive partials work. Returns a
 * new template, or NULL with err filled (when not NULL) on a syntax error: unclosed tag or
 * section, mismatched section end, bad name or delimiter, unsupported tag. */
tmpl_t *tmpl_compile(const char *text, tmpl_partial_fn fn, void *ud, struct tmpl_error *err);
/* Frees a template; NULL is a no-op. */
void tmpl_free(tmpl_t *t);

/* 0 = defaults: 1 MiB of output, 64 levels of section/partial nesting (capped at 1024). */
struct tmpl_limits {
    size_t max_output;
    int max_depth;
};

/* Renders with data as the root context (borrowed; NULL renders as null). Returns a malloc'd
 * string, or NULL with err filled when a limit is passed (output too large, sections and
 * partials nested too deep) or memory runs out. escape=1 HTML-escapes {{x}} (& < > " ') as
 * the spec says; escape=0 never escapes. Values: strings as is, integers in decimal, reals
 * in the shortest form that reads back the same (1.21, 3 for 3.0), true/false, null as "",
 * arrays and objects as compact JSON. Falsy for sections: missing, null, false, "" and [].
 * Thread-safe: a compiled template is read-only. */
char *tmpl_render(const tmpl_t *t, json_t *data, int escape, const struct tmpl_limits *lim,
                  struct tmpl_error *err);

/* Calls fn for each variable and section name used in the template's own text and in every
 * partial it reaches (each partial once), dotted names as written; the implicit iterator "."
 * is left out. line/col are positions in the text that holds the name. */
void tmpl_each_name(const tmpl_t *t, void (*fn)(const char *name, int line, int col, void *ud),
                    void *ud);
/* Same walk as tmpl_each_name, also passing the partial holding the name (NULL for the
 * template's own text), so a checker can point at the right file. */
void tmpl_each_name_in(const tmpl_t *t,
                       void (*fn)(const char *partial, const char *name, int line, int col,
                                  void *ud),
                       void *ud);
/* Calls fn for each partial the template reaches, with found=0 when the loader had none. */
void tmpl_each_partial(const tmpl_t *t, void (*fn)(const char *name, int found, void *ud),
                       void *ud);

/* Convenience: compile (no partials) + render with default limits + free. Returns a malloc'd
 * string or NULL with err filled. */
char *tmpl_render_string(const char *text, json_t *data, int escape, struct tmpl_error *err);

#endif
