/* sim_reqlog: the simulator's record of API calls received, served by GET /_sim/requests so
 * tests can assert what a client sent. A ring of JSON entries: the oldest is dropped once the
 * configured maximum is reached. Entries get an increasing "seq". */
#ifndef TB_SIM_REQLOG_H
#define TB_SIM_REQLOG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct sim_reqlog sim_reqlog_t;

/* New log keeping at most max entries (0 keeps none). NULL on OOM. */
sim_reqlog_t *sim_reqlog_new(size_t max);
/* Releases the log and its entries; NULL is a no-op. */
void sim_reqlog_free(sim_reqlog_t *l);
/* Appends entry (a JSON object, stolen), setting its "seq"; drops it when max is 0 or on OOM. */
void sim_reqlog_add(sim_reqlog_t *l, json_t *entry);
/* The entries with seq > since, oldest first, as a new array (NULL on OOM). */
json_t *sim_reqlog_dump(const sim_reqlog_t *l, uint64_t since);
/* Drops every entry; seq keeps increasing. */
void sim_reqlog_clear(sim_reqlog_t *l);

#endif
