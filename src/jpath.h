/* jpath: compiled paths into JSON documents ("labels.severity", "alerts[0].labels.site",
 * "raw.x[*]", ["a.b"]) for rule conditions and adapter field mappings. Paths only select;
 * there are no filters or expressions. Keys match exactly first, then case-insensitively,
 * because ASP.NET-style senders vary the case of property names. */
#ifndef TB_JPATH_H
#define TB_JPATH_H

#include <jansson.h>
#include <stddef.h>

typedef struct jpath jpath_t;

/* Longest accepted path text and most segments in one path. */
#define JPATH_MAX_LEN 1024
#define JPATH_MAX_SEGMENTS 64

/* Compiles "a.b", "labels.severity", "alerts[0].labels.site", "raw.x[*]", "a[*].b[*].c",
 * "headers.x-api-key", quoted keys ["a.b"] or ['a.b'] for keys with dots, [-1] for the last
 * element, and * or [*] for every element or member. NULL on syntax error with a message in
 * err and the 0-based column in *errcol (err and errcol may be NULL). */
jpath_t *jpath_compile(const char *path, char *err, size_t errlen, size_t *errcol);
/* Frees a compiled path; NULL is a no-op. */
void jpath_free(jpath_t *p);
/* The source text the path was compiled from (owned by p). */
const char *jpath_text(const jpath_t *p);
/* 1 when the path has a wildcard (so it can select more than one value), else 0. */
int jpath_has_wildcard(const jpath_t *p);
/* First value the path selects in root, borrowed from root; NULL when absent. */
json_t *jpath_first(const jpath_t *p, json_t *root);
/* Calls fn for each selected value (borrowed) in document order; fn returns non-zero to stop.
 * Returns the number of values visited (including the one that stopped the walk). */
size_t jpath_each(const jpath_t *p, json_t *root, int (*fn)(json_t *v, void *ud), void *ud);
/* Renders a value as a string for matching: strings as is, integers "42", reals in their
 * shortest round-trip form ("0.5", "1"), true/false; null → NULL (absent); objects and arrays
 * → compact JSON. Returns a new malloc'd string, or NULL (null, NULL v, out of memory). */
char *jpath_scalar_string(json_t *v);
/* Member key of obj: the exact key, else the first key equal ignoring ASCII case. Borrowed;
 * NULL when absent or obj is not an object. */
json_t *jpath_object_get(json_t *obj, const char *key);

#endif
