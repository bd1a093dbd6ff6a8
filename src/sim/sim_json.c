/* sim_json: case-insensitive member lookup and scalar text; see sim_json.h. */
#include "sim/sim_json.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

json_t *sim_json_ci_get(json_t *obj, const char *key, const char **key_out)
{
    if (!json_is_object(obj) || !key)
        return NULL;
    void *it = json_object_iter_at(obj, key);
    if (it) {
        if (key_out)
            *key_out = json_object_iter_key(it);
        return json_object_iter_value(it);
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (strcasecmp(k, key) == 0) {
            if (key_out)
                *key_out = k;
            return v;
        }
    }
    return NULL;
}

int sim_json_text(const json_t *v, char *out, size_t n)
{
    if (n == 0)
        return -1;
    out[0] = '\0';
    switch (json_typeof(v)) {
    case JSON_STRING: {
        size_t len = json_string_length(v);
        if (len >= n)
            len = n - 1;
        memcpy(out, json_string_value(v), len);
        out[len] = '\0';
        return 0;
    }
    case JSON_INTEGER:
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    case JSON_REAL: {
        /* shortest of %.15g / %.17g that reads back as the same double, as .NET prints */
        double d = json_real_value(v), back;
        snprintf(out, n, "%.15g", d);
        if (util_parse_double(out, &back) < 0 || back != d)
            snprintf(out, n, "%.17g", d);
        return 0;
    }
    case JSON_TRUE:
        snprintf(out, n, "True");
        return 0;
    case JSON_FALSE:
        snprintf(out, n, "False");
        return 0;
    default:
        return -1;
    }
}

char *sim_json_lower(const char *s, char *out, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return out;
    for (; s[i] && i + 1 < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
    return out;
}
