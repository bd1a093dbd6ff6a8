/* yamlx: YAML (libyaml) → jansson trees that remember where every node came from, so that
 * configuration and rule errors can say file:line:col. Plain scalars resolve by the YAML 1.2
 * core schema (null, true/false, integers, floats); quoted and block scalars are strings.
 * Also the diagnostics list that check prints. Not a YAML emitter; one document per file. */
#ifndef TB_YAMLX_H
#define TB_YAMLX_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* A place in a source: origin is a file name or "--set key.path" (borrowed from the doc);
 * line and col are 1-based (col in characters); line 0 means "no line" (command line). */
struct yamlx_mark {
    const char *origin;
    int line;
    int col;
};

struct yamlx_limits {
    int max_depth;      /* nesting of mappings and sequences; 0 = 64 */
    size_t max_nodes;   /* nodes after alias expansion; 0 = 1,000,000 */
    int no_lines;       /* marks carry no line/col (values given on the command line) */
};

typedef struct yamlx_doc yamlx_doc_t;

/* Parses text (len bytes, UTF-8) as one YAML document. origin names it in marks and errors
 * (copied). Returns a new doc, or NULL with *err = malloc'd "origin:line:col: message". An
 * empty document has a JSON null root. lim may be NULL for the defaults. */
yamlx_doc_t *yamlx_parse(const char *text, size_t len, const char *origin,
                         const struct yamlx_limits *lim, char **err);
/* Reads path (at most max bytes) and parses it with origin = path. NULL + *err on failure. */
yamlx_doc_t *yamlx_load(const char *path, size_t max, char **err);
void yamlx_free(yamlx_doc_t *doc);

/* The root node (borrowed; lives as long as the doc). Callers may change the tree in place. */
json_t *yamlx_root(const yamlx_doc_t *doc);
/* The doc's main origin (borrowed). */
const char *yamlx_origin(const yamlx_doc_t *doc);

/* Where node starts. Works for containers, strings and numbers of the doc (by identity), not
 * for true/false/null (shared singletons): use yamlx_where_member/_index for those.
 * Each returns 0 and fills out, or -1 when the doc has no record (out gets the origin, line 0). */
int yamlx_where(const yamlx_doc_t *doc, const json_t *node, struct yamlx_mark *out);
/* Where the key of obj's member starts, and where its value starts. */
int yamlx_where_key(const yamlx_doc_t *doc, const json_t *obj, const char *key,
                    struct yamlx_mark *out);
int yamlx_where_member(const yamlx_doc_t *doc, const json_t *obj, const char *key,
                       struct yamlx_mark *out);
int yamlx_where_index(const yamlx_doc_t *doc, const json_t *arr, size_t idx,
                      struct yamlx_mark *out);
/* Maps a byte offset inside a string scalar's value to the source (escapes, quotes, folding
 * and block indentation accounted for), e.g. a regex error offset. -1 when unknown (out then
 * holds the scalar's start when known). */
int yamlx_locate(const yamlx_doc_t *doc, const json_t *str, size_t offset, struct yamlx_mark *out);
/* Same for a 1-based line and byte column inside the string's value (template errors). */
int yamlx_locate_linecol(const yamlx_doc_t *doc, const json_t *str, int line, int col,
                         struct yamlx_mark *out);

/* Sets obj[key] = other's root (obj must belong to doc) and takes over other's positions and
 * memory (other is freed; do not use it after). The member's key and value marks become
 * other's origin. Returns 0, or -1 on OOM (other is freed either way). */
int yamlx_graft(yamlx_doc_t *doc, json_t *obj, const char *key, yamlx_doc_t *other);

/* Diagnostics: "origin:line:col: message" lines (or "origin: message" without a line), with
 * "warning: " after the place for warnings. Bounded: after 1000 messages one more says so. */
typedef struct yamlx_diags {
    char **msg;
    size_t n, cap;
    size_t errors, warnings;
} yamlx_diags_t;

void yamlx_diags_init(yamlx_diags_t *d);
void yamlx_diags_free(yamlx_diags_t *d);
/* Adds one message at (may be NULL: no place). warning != 0 makes it a warning. */
void yamlx_diag(yamlx_diags_t *d, int warning, const struct yamlx_mark *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void yamlx_vdiag(yamlx_diags_t *d, int warning, const struct yamlx_mark *at, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));
/* Adds a message that already carries its place (e.g. a yamlx_parse error). */
void yamlx_diag_raw(yamlx_diags_t *d, int warning, const char *line);
/* Writes every message, one per line. */
void yamlx_diags_print(const yamlx_diags_t *d, FILE *f);

#endif
