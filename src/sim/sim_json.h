/* sim_json: small jansson helpers the simulator needs everywhere — member lookup that ignores
 * ASCII case (ASP.NET binds JSON properties case-insensitively) and the text form of scalars
 * (Gridify's string operators apply to numbers through their text). No policy here. */
#ifndef TB_SIM_JSON_H
#define TB_SIM_JSON_H

#include <stddef.h>

#include <jansson.h>

/* Member of obj whose key equals key ignoring ASCII case: the exact key first, then a scan.
 * Returns the borrowed value and, when key_out is given, the stored key (borrowed); NULL
 * when absent or when obj is not an object. */
json_t *sim_json_ci_get(json_t *obj, const char *key, const char **key_out);

/* Writes the text of a scalar into out (n bytes): strings as they are (truncated to fit),
 * integers and reals in plain decimal, booleans "True"/"False" as .NET prints them.
 * Returns 0, or -1 for null, objects and arrays (out then holds ""). */
int sim_json_text(const json_t *v, char *out, size_t n);

/* Copies s into out (n bytes) in ASCII lowercase, truncating to fit; returns out. */
char *sim_json_lower(const char *s, char *out, size_t n);

#endif
