/* fuzz_yamlx: libFuzzer harness for the YAML loader — any bytes must parse or fail cleanly,
 * within the depth and node limits, and every position query (including offsets inside each
 * string scalar) must stay inside the source. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "yamlx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(yamlx_doc_t *doc, json_t *v, int depth)
{
    struct yamlx_mark m;
    if (!v || depth > 80)
        return;
    yamlx_where(doc, v, &m);
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        for (size_t off = 0; off <= n && off < 64; off += 7)
            yamlx_locate(doc, v, off, &m);
        yamlx_locate(doc, v, n, &m);
        yamlx_locate_linecol(doc, v, 2, 3, &m);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c)
        {
            yamlx_where_key(doc, v, k, &m);
            yamlx_where_member(doc, v, k, &m);
            walk(doc, c, depth + 1);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            yamlx_where_index(doc, v, i, &m);
            walk(doc, c, depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    struct yamlx_limits lim = {32, 20000, 0};
    char *err = NULL;
    yamlx_doc_t *doc = yamlx_parse((const char *)data, size, "fuzz.yaml", &lim, &err);
    if (doc) {
        walk(doc, yamlx_root(doc), 0);
        yamlx_free(doc);
    }
    free(err);
    return 0;
}
