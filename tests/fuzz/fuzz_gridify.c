/* fuzz_gridify: libFuzzer harness for trackplan-sim's Gridify parser and evaluator. The input's
 * first line is a filter, the rest an orderBy list; both are parsed (fields resolve when they
 * name a fixture field, ignoring case), evaluated and sorted over fixed records. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../src/sim/sim_filter.c"
#include "../../src/sim/sim_json.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fuzz_fields[] = {"name", "age", "score", "created", "active",
                                          "address", "tags", "nickname", NULL};

static const char *fuzz_resolve(void *ctx, const char *name)
{
    (void)ctx;
    for (const char *const *k = fuzz_fields; *k; k++)
        if (strcasecmp(*k, name) == 0)
            return *k;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *recs;
    if (!recs) {
        recs = json_loads("[{\"name\":\"John\",\"age\":30,\"score\":9.5,\"active\":true,"
                          "\"created\":\"2025-04-08T12:00:00Z\",\"address\":{\"city\":\"Leeds\"}},"
                          "{\"name\":\"\",\"age\":-1,\"tags\":[1],\"nickname\":null},"
                          "{\"name\":\"x,y|z\",\"score\":1e300,\"created\":\"2025-13-45\"},{}]",
                          0, NULL);
        if (!recs)
            abort();
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *order_text = strchr(text, '\n');
    if (order_text)
        *order_text++ = '\0';
    char err[256];
    sim_filter_t *f = sim_filter_parse(text, fuzz_resolve, NULL, err, sizeof(err));
    sim_order_t *o = sim_order_parse(order_text, fuzz_resolve, NULL, err, sizeof(err));
    json_t *matched[8];
    size_t n = 0, i;
    json_t *rec;
    json_array_foreach(recs, i, rec) {
        if (!f || sim_filter_match(f, rec))
            matched[n++] = rec;
    }
    if (o)
        sim_order_sort(o, matched, n);
    sim_filter_free(f);
    sim_order_free(o);
    free(text);
    return 0;
}
