/* sim_reqlog: a ring of JSON entries; see sim_reqlog.h. The ring grows by doubling up to its
 * maximum and only wraps once full, so growth never has to unroll it. */
#include "sim/sim_reqlog.h"

#include <stdlib.h>
#include <string.h>

struct sim_reqlog {
    json_t **v;
    size_t cap, max;
    size_t head;    /* index of the oldest entry */
    size_t count;
    uint64_t seq;   /* seq of the newest entry */
};

sim_reqlog_t *sim_reqlog_new(size_t max)
{
    sim_reqlog_t *l = calloc(1, sizeof(*l));
    if (l)
        l->max = max;
    return l;
}

void sim_reqlog_clear(sim_reqlog_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        json_decref(l->v[(l->head + i) % l->cap]);
    l->head = 0;
    l->count = 0;
}

void sim_reqlog_free(sim_reqlog_t *l)
{
    if (!l)
        return;
    sim_reqlog_clear(l);
    free(l->v);
    free(l);
}

void sim_reqlog_add(sim_reqlog_t *l, json_t *entry)
{
    if (!entry)
        return;
    if (l->max == 0) {
        json_decref(entry);
        return;
    }
    if (l->count == l->cap && l->cap < l->max) {
        /* not wrapped yet: head is 0 while cap < max */
        size_t cap = l->cap ? l->cap * 2 : 256;
        if (cap > l->max)
            cap = l->max;
        json_t **grown = realloc(l->v, cap * sizeof(*grown));
        if (!grown) {
            json_decref(entry);
            return;
        }
        l->v = grown;
        l->cap = cap;
    }
    json_object_set_new(entry, "seq", json_integer((json_int_t)++l->seq));
    if (l->count == l->cap) {
        json_decref(l->v[l->head]);
        l->v[l->head] = entry;
        l->head = (l->head + 1) % l->cap;
        return;
    }
    l->v[(l->head + l->count) % l->cap] = entry;
    l->count++;
}

json_t *sim_reqlog_dump(const sim_reqlog_t *l, uint64_t since)
{
    json_t *out = json_array();
    for (size_t i = 0; out && i < l->count; i++) {
        json_t *e = l->v[(l->head + i) % l->cap];
        if ((uint64_t)json_integer_value(json_object_get(e, "seq")) > since &&
            json_array_append(out, e) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
