/* sim_store: the simulator's records, in memory — one collection per TrackplanFM entity, each
 * a hash map by GUID plus an insertion-ordered array for listing, per-collection integer id
 * counters, field names kept in one casing per collection, and the stock-level (stockId,
 * storageId) index. It applies no API rules (required fields, statuses): sim_api does. */
#ifndef TB_SIM_STORE_H
#define TB_SIM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum sim_coll {
    SIM_COLL_JOB_REQUESTS,
    SIM_COLL_JOBS,
    SIM_COLL_JOB_COSTS,
    SIM_COLL_JOB_TASKS,
    SIM_COLL_ASSETS,
    SIM_COLL_SITES,
    SIM_COLL_RESOURCES,
    SIM_COLL_STORAGE_AREAS,
    SIM_COLL_STOCKS,
    SIM_COLL_STOCK_LEVELS,
    SIM_COLL_COUNT
};

/* Why an insert or merge was refused: field names the offending property as ASP.NET would
 * ("$.siteId", "guid"); field NULL with status 500 means out of memory. */
struct sim_store_err {
    int status;
    const char *field;
    char msg[192];
};

typedef struct sim_store sim_store_t;

/* A new, empty store (NULL on OOM); free releases every record (NULL is a no-op). */
sim_store_t *sim_store_new(void);
void sim_store_free(sim_store_t *st);
/* Drops every record and resets the counters. */
void sim_store_clear(sim_store_t *st);

/* The collection's name in seeds, state files and dumps ("jobRequests", "storageAreas"). */
const char *sim_store_coll_name(enum sim_coll c);
/* The collection named name (any case), or -1. */
int sim_store_coll_find(const char *name);

/* Increases on every change; callers compare it to decide when to persist. */
uint64_t sim_store_version(const sim_store_t *st);
/* Records an in-place change made by the caller to a record it holds. */
void sim_store_touch(sim_store_t *st);

/* The record with that GUID (any case), borrowed; NULL when absent. */
json_t *sim_store_get(sim_store_t *st, enum sim_coll c, const char *guid);
/* Live records in insertion order (borrowed array of borrowed records, valid until the next
 * change); *n receives the count. NULL only when *n is 0. */
json_t **sim_store_list(sim_store_t *st, enum sim_coll c, size_t *n);
/* How many live records c holds. */
size_t sim_store_count(sim_store_t *st, enum sim_coll c);

/* Builds and stores a record from body (borrowed object): a "guid" (kept when the body has a
 * valid unused one), the collection's integer ids (kept when given), createdDate where the
 * collection has one, then every body field under its collection casing. Returns the new
 * record (borrowed), or NULL with err filled. */
json_t *sim_store_insert(sim_store_t *st, enum sim_coll c, json_t *body, int64_t now_ms,
                         struct sim_store_err *err);
/* Merges body (borrowed object) into rec key by key, ignoring case; guid, the integer ids and
 * the names in keep (NULL-ended, may be NULL) are left as they are. 0, or -1 on OOM. */
int sim_store_merge(sim_store_t *st, enum sim_coll c, json_t *rec, json_t *body,
                    const char *const *keep);
/* Removes the record; 0, or -1 when absent. */
int sim_store_remove(sim_store_t *st, enum sim_coll c, const char *guid);

/* The name a field is stored under in the collection (for a query's field, any case), or NULL
 * when no record or documented field has it. Borrowed. */
const char *sim_store_field(sim_store_t *st, enum sim_coll c, const char *name);

/* The stock level holding that (stockId, storageId) pair (borrowed scalars), or NULL. */
json_t *sim_store_stock_level(sim_store_t *st, json_t *stock_id, json_t *storage_id);

/* Every collection and counter as one new JSON object:
 * {"version":1,"counters":{coll:{field:next}},"<coll>":[records...],...}. NULL on OOM. */
json_t *sim_store_dump(sim_store_t *st);
/* Replaces the contents with a dump (borrowed). 0, or -1 with a message in err. */
int sim_store_load(sim_store_t *st, json_t *dump, char *err, size_t errlen);

#endif
