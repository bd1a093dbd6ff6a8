/* problem: RFC 9457 problem details (application/problem+json) for every error reply the
 * server sends — a stable type URI per status, the standard title, the status and a short
 * detail. It only builds bodies; sending them is the HTTP server's job. */
#ifndef TB_PROBLEM_H
#define TB_PROBLEM_H

#include <jansson.h>

#define PROBLEM_CONTENT_TYPE "application/problem+json"
#define PROBLEM_TYPE_BASE "https://trackbridge.dev/problems/"
#define PROBLEM_DETAIL_MAX 1024 /* bytes of title or detail kept; longer ones are cut */

/* The standard reason phrase for status ("Too Many Requests", "Content Too Large"), or NULL
 * for a status this module does not know. */
const char *problem_title(int status);
/* The static type URI for status: PROBLEM_TYPE_BASE + slug ("…/unauthorized") for a known
 * status, "about:blank" otherwise. */
const char *problem_type(int status);

/* Builds a compact problem+json body: type, title (NULL = problem_title(status), or "Error"),
 * status, detail (omitted when NULL), then the members of extra (borrowed, may be NULL; a
 * member named like a standard one is ignored). Strings that are not valid UTF-8 have their
 * non-ASCII bytes replaced by '?'. Returns a new string (free()), or NULL when status is
 * outside 100–599 or memory runs out. */
char *problem_json(int status, const char *title, const char *detail, json_t *extra);

#endif
