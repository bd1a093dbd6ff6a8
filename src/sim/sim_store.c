/* sim_store: in-memory collections for the simulator; see sim_store.h. Lookups by GUID and the
 * field-name map are jansson hash objects (O(1) average); listing walks an insertion-ordered
 * array that removals leave holes in, compacted lazily on the next list. */
#include "sim/sim_store.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "sim/sim_json.h"

#define SIM_MAX_IDS 2
#define SIM_KEY_MAX 512 /* longer field names are stored as sent, without case folding */

struct sim_coll_def {
    const char *name;
    const char *ids[SIM_MAX_IDS]; /* integer ids assigned from counters, in order */
    int64_t first[SIM_MAX_IDS];   /* the first value of each counter */
    int created_date;             /* stamps createdDate when absent */
    const char *const *known;     /* documented camelCase names, NULL-ended */
};

static const char *const known_job_requests[] = {
    "guid", "jobRequestId", "jobRequestNumber", "description", "details", "site", "siteId",
    "siteName", "raisedBy", "raisedByEmail", "requestStatus", "priority", "createdDate", NULL};
static const char *const known_jobs[] = {
    "guid", "jobId", "jobNumber", "jobDetails", "siteId", "siteName", "raisedBy", "reportedBy",
    "status", "priority", "createdDate", "completedNote", "completedByUserId", "completedDate",
    NULL};
static const char *const known_job_costs[] = {
    "guid", "jobCostId", "jobGuid", "jobNumber", "jobDetails", "invoiceNo", "invoiceDate",
    "costMaterials", "costLabour", "budget", "costDescription", "createdDate", NULL};
static const char *const known_job_tasks[] = {
    "guid", "taskId", "taskNumber", "jobGuid", "jobNumber", "description", "status",
    "assignedToUserId", "assignedUserName", "assignedToUserName", "durationInHours", "duration",
    "resourceId", "priorityName", "expectedStartDate", "expectedEndDate", "startDate",
    "completeDate", "completedDate", "completNote", "completeNote", "completedNote",
    "createdDate", NULL};
static const char *const known_assets[] = {"guid", "assetId", "description", "assetClassId",
                                           "assetClass", "siteId", NULL};
static const char *const known_sites[] = {"guid", "siteId", "name", "code", "region", NULL};
static const char *const known_resources[] = {"guid", "resourceId", "name", "resourceType",
                                              "emailAddress", NULL};
static const char *const known_storage_areas[] = {"guid", "storageAreaId", "storageId",
                                                  "storageName", "code", "siteId", NULL};
static const char *const known_stocks[] = {"guid", "stockId", "stockTypeId", NULL};
static const char *const known_stock_levels[] = {"guid", "stockLevelId", "stockId", "storageId",
                                                 "quantity", NULL};

static const struct sim_coll_def sim_defs[SIM_COLL_COUNT] = {
    [SIM_COLL_JOB_REQUESTS] = {"jobRequests", {"jobRequestId", "jobRequestNumber"}, {1, 1000}, 1,
                               known_job_requests},
    [SIM_COLL_JOBS] = {"jobs", {"jobId", "jobNumber"}, {1, 1}, 1, known_jobs},
    [SIM_COLL_JOB_COSTS] = {"jobCosts", {"jobCostId", NULL}, {1, 0}, 1, known_job_costs},
    [SIM_COLL_JOB_TASKS] = {"jobTasks", {"taskId", NULL}, {1, 0}, 1, known_job_tasks},
    [SIM_COLL_ASSETS] = {"assets", {"assetId", NULL}, {1, 0}, 0, known_assets},
    [SIM_COLL_SITES] = {"sites", {"siteId", NULL}, {1, 0}, 0, known_sites},
    [SIM_COLL_RESOURCES] = {"resources", {"resourceId", NULL}, {1, 0}, 0, known_resources},
    [SIM_COLL_STORAGE_AREAS] = {"storageAreas", {"storageAreaId", NULL}, {1, 0}, 0,
                                known_storage_areas},
    [SIM_COLL_STOCKS] = {"stocks", {"stockId", NULL}, {1, 0}, 0, known_stocks},
    [SIM_COLL_STOCK_LEVELS] = {"stockLevels", {NULL, NULL}, {0, 0}, 0, known_stock_levels},
};

struct coll_data {
    json_t *by_guid;  /* object: lowercase GUID -> record */
    json_t **items;   /* insertion order, each holding a reference; may hold removed records */
    size_t n, cap;
    size_t dead;      /* removals since the last compaction */
    int64_t next[SIM_MAX_IDS];
    json_t *fields;   /* object: lowercase field name -> stored name (string) */
};

struct sim_store {
    struct coll_data c[SIM_COLL_COUNT];
    json_t *pairs;    /* object: "stockId\x1fstorageId" -> stock level record */
    uint64_t version;
};

const char *sim_store_coll_name(enum sim_coll c)
{
    return (unsigned)c < SIM_COLL_COUNT ? sim_defs[c].name : NULL;
}

int sim_store_coll_find(const char *name)
{
    for (int i = 0; i < SIM_COLL_COUNT; i++)
        if (strcasecmp(sim_defs[i].name, name) == 0)
            return i;
    return -1;
}

/* Lowercases key into small, or a malloc'd copy when longer; *heap tells which. */
static char *lower_key(const char *key, char *small, size_t n, int *heap)
{
    size_t len = strlen(key);
    char *out = small;
    *heap = 0;
    if (len >= n) {
        out = malloc(len + 1);
        if (!out)
            return NULL;
        *heap = 1;
    }
    for (size_t i = 0; i <= len; i++)
        out[i] = (char)tolower((unsigned char)key[i]);
    return out;
}

/* The stored name for key in c, registering key as sent when it is new. Borrowed; NULL on
 * OOM. */
static const char *coll_canon(struct coll_data *c, const char *key)
{
    char small[SIM_KEY_MAX];
    int heap;
    const char *res = NULL;
    char *low = lower_key(key, small, sizeof(small), &heap);
    if (!low)
        return NULL;
    json_t *name = json_object_get(c->fields, low);
    if (!name) {
        name = json_string(key);
        if (!name || json_object_set_new(c->fields, low, name) < 0)
            goto out;
    }
    res = json_string_value(name);
out:
    if (heap)
        free(low);
    return res;
}

static int coll_init(struct coll_data *c, const struct sim_coll_def *def)
{
    memset(c, 0, sizeof(*c));
    c->by_guid = json_object();
    c->fields = json_object();
    if (!c->by_guid || !c->fields)
        return -1;
    for (int i = 0; i < SIM_MAX_IDS; i++)
        c->next[i] = def->first[i];
    for (const char *const *k = def->known; *k; k++)
        if (!coll_canon(c, *k))
            return -1;
    return 0;
}

static void coll_free(struct coll_data *c)
{
    for (size_t i = 0; i < c->n; i++)
        json_decref(c->items[i]);
    free(c->items);
    json_decref(c->by_guid);
    json_decref(c->fields);
    memset(c, 0, sizeof(*c));
}

sim_store_t *sim_store_new(void)
{
    sim_store_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->pairs = json_object();
    if (!st->pairs)
        goto fail;
    for (int i = 0; i < SIM_COLL_COUNT; i++)
        if (coll_init(&st->c[i], &sim_defs[i]) < 0)
            goto fail;
    return st;
fail:
    sim_store_free(st);
    return NULL;
}

void sim_store_free(sim_store_t *st)
{
    if (!st)
        return;
    for (int i = 0; i < SIM_COLL_COUNT; i++)
        coll_free(&st->c[i]);
    json_decref(st->pairs);
    free(st);
}

void sim_store_clear(sim_store_t *st)
{
    for (int i = 0; i < SIM_COLL_COUNT; i++) {
        coll_free(&st->c[i]);
        if (coll_init(&st->c[i], &sim_defs[i]) < 0)
            coll_free(&st->c[i]); /* left empty; later inserts report OOM */
    }
    json_object_clear(st->pairs);
    st->version++;
}

uint64_t sim_store_version(const sim_store_t *st) { return st->version; }
void sim_store_touch(sim_store_t *st) { st->version++; }

json_t *sim_store_get(sim_store_t *st, enum sim_coll c, const char *guid)
{
    char low[40];
    if (!guid || strlen(guid) >= sizeof(low))
        return NULL;
    sim_json_lower(guid, low, sizeof(low));
    return json_object_get(st->c[c].by_guid, low);
}

/* Drops removed records from the listing array (one pass, only after removals). */
static void coll_compact(struct coll_data *c)
{
    if (c->dead == 0)
        return;
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        json_t *rec = c->items[i];
        const char *g = json_string_value(json_object_get(rec, "guid"));
        if (g && json_object_get(c->by_guid, g) == rec)
            c->items[w++] = rec;
        else
            json_decref(rec);
    }
    c->n = w;
    c->dead = 0;
}

json_t **sim_store_list(sim_store_t *st, enum sim_coll c, size_t *n)
{
    coll_compact(&st->c[c]);
    *n = st->c[c].n;
    return st->c[c].n ? st->c[c].items : NULL;
}

size_t sim_store_count(sim_store_t *st, enum sim_coll c)
{
    return json_object_size(st->c[c].by_guid);
}

/* The pair index key of two scalars, in key (n bytes); 0, or -1 when either is not one. */
static int pair_key(json_t *a, json_t *b, char *key, size_t n)
{
    char x[128], y[128];
    if (!a || !b || sim_json_text(a, x, sizeof(x)) < 0 || sim_json_text(b, y, sizeof(y)) < 0)
        return -1;
    snprintf(key, n, "%s\x1f%s", x, y);
    return 0;
}

json_t *sim_store_stock_level(sim_store_t *st, json_t *stock_id, json_t *storage_id)
{
    char key[260];
    if (pair_key(stock_id, storage_id, key, sizeof(key)) < 0)
        return NULL;
    return json_object_get(st->pairs, key);
}

/* Adds rec to c's map, array and (for stock levels) the pair index. 0, or -1 on OOM. */
static int coll_add(sim_store_t *st, enum sim_coll cid, const char *guid, json_t *rec)
{
    struct coll_data *c = &st->c[cid];
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        json_t **grown = realloc(c->items, cap * sizeof(*grown));
        if (!grown)
            return -1;
        c->items = grown;
        c->cap = cap;
    }
    if (json_object_set(c->by_guid, guid, rec) < 0)
        return -1;
    c->items[c->n++] = json_incref(rec);
    if (cid == SIM_COLL_STOCK_LEVELS) {
        char key[260];
        if (pair_key(json_object_get(rec, "stockId"), json_object_get(rec, "storageId"), key,
                     sizeof(key)) == 0)
            json_object_set(st->pairs, key, rec);
    }
    st->version++;
    return 0;
}

static void set_err(struct sim_store_err *err, int status, const char *field, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

static void set_err(struct sim_store_err *err, int status, const char *field, const char *fmt,
                    ...)
{
    va_list ap;
    err->status = status;
    err->field = field;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* Index of name among the collection's integer ids, or -1. */
static int id_index(const struct sim_coll_def *def, const char *name)
{
    for (int i = 0; i < SIM_MAX_IDS; i++)
        if (def->ids[i] && strcasecmp(def->ids[i], name) == 0)
            return i;
    return -1;
}

json_t *sim_store_insert(sim_store_t *st, enum sim_coll cid, json_t *body, int64_t now_ms,
                         struct sim_store_err *err)
{
    const struct sim_coll_def *def = &sim_defs[cid];
    struct coll_data *c = &st->c[cid];
    json_t *rec = json_object();
    json_t *res = NULL;
    char guid[37];
    int64_t ids[SIM_MAX_IDS] = {0, 0};
    set_err(err, 500, NULL, "out of memory"); /* until a refusal or success says otherwise */
    if (!rec)
        goto out;

    /* guid: kept when a valid, non-zero, unused one is sent */
    json_t *g = sim_json_ci_get(body, "guid", NULL);
    if (json_is_string(g)) {
        const char *s = json_string_value(g);
        if (!util_is_uuid(s)) {
            set_err(err, 400, "$.guid",
                    "The JSON value could not be converted to System.Guid. Path: $.guid");
            goto out;
        }
        sim_json_lower(s, guid, sizeof(guid));
        if (strcmp(guid, "00000000-0000-0000-0000-000000000000") == 0) {
            util_uuid4(guid);
        } else if (json_object_get(c->by_guid, guid)) {
            set_err(err, 400, "guid", "A record with guid %s already exists.", guid);
            goto out;
        }
    } else if (!g || json_is_null(g)) {
        util_uuid4(guid);
    } else {
        set_err(err, 400, "$.guid",
                "The JSON value could not be converted to System.Guid. Path: $.guid");
        goto out;
    }
    if (json_object_set_new(rec, "guid", json_string(guid)) < 0)
        goto out;

    /* integer ids: kept when a non-zero integer is sent, drawn from the counter otherwise */
    for (int i = 0; i < SIM_MAX_IDS && def->ids[i]; i++) {
        json_t *v = sim_json_ci_get(body, def->ids[i], NULL);
        if (json_is_integer(v) && json_integer_value(v) != 0) {
            ids[i] = json_integer_value(v);
        } else if (!v || json_is_null(v) || (json_is_integer(v) && json_integer_value(v) == 0)) {
            ids[i] = c->next[i];
        } else {
            set_err(err, 400, def->ids[i],
                    "The JSON value could not be converted to System.Int32. Path: $.%s",
                    def->ids[i]);
            goto out;
        }
        if (json_object_set_new(rec, def->ids[i], json_integer(ids[i])) < 0)
            goto out;
    }

    const char *key;
    json_t *val;
    json_object_foreach(body, key, val) {
        const char *name = coll_canon(c, key);
        if (!name)
            goto out;
        if (strcmp(name, "guid") == 0 || id_index(def, name) >= 0)
            continue;
        if (json_object_set(rec, name, val) < 0)
            goto out;
    }
    if (def->created_date && !json_object_get(rec, "createdDate")) {
        char iso[32];
        util_iso8601(now_ms, iso);
        if (json_object_set_new(rec, "createdDate", json_string(iso)) < 0)
            goto out;
    }
    if (coll_add(st, cid, guid, rec) < 0)
        goto out;
    for (int i = 0; i < SIM_MAX_IDS && def->ids[i]; i++)
        if (ids[i] >= c->next[i])
            c->next[i] = ids[i] + 1;
    res = rec;
out:
    json_decref(rec); /* the collection holds its own references */
    return res;
}

int sim_store_merge(sim_store_t *st, enum sim_coll cid, json_t *rec, json_t *body,
                    const char *const *keep)
{
    const struct sim_coll_def *def = &sim_defs[cid];
    struct coll_data *c = &st->c[cid];
    const char *key;
    json_t *val;
    json_object_foreach(body, key, val) {
        const char *name = coll_canon(c, key);
        if (!name)
            return -1;
        if (strcmp(name, "guid") == 0 || id_index(def, name) >= 0)
            continue;
        int skip = 0;
        for (const char *const *k = keep; k && *k && !skip; k++)
            skip = strcasecmp(*k, name) == 0;
        if (skip)
            continue;
        /* a record loaded from a state file may hold the name in another casing */
        const char *stored = NULL;
        if (!json_object_get(rec, name) && sim_json_ci_get(rec, name, &stored))
            name = stored;
        if (json_object_set(rec, name, val) < 0)
            return -1;
    }
    st->version++;
    return 0;
}

int sim_store_remove(sim_store_t *st, enum sim_coll cid, const char *guid)
{
    char low[40];
    struct coll_data *c = &st->c[cid];
    if (!guid || strlen(guid) >= sizeof(low))
        return -1;
    sim_json_lower(guid, low, sizeof(low));
    json_t *rec = json_object_get(c->by_guid, low);
    if (!rec)
        return -1;
    if (cid == SIM_COLL_STOCK_LEVELS) {
        char key[260];
        if (pair_key(json_object_get(rec, "stockId"), json_object_get(rec, "storageId"), key,
                     sizeof(key)) == 0 &&
            json_object_get(st->pairs, key) == rec)
            json_object_del(st->pairs, key);
    }
    json_object_del(c->by_guid, low);
    c->dead++;
    st->version++;
    return 0;
}

const char *sim_store_field(sim_store_t *st, enum sim_coll c, const char *name)
{
    char small[SIM_KEY_MAX];
    int heap;
    char *low = lower_key(name, small, sizeof(small), &heap);
    if (!low)
        return NULL;
    const char *res = json_string_value(json_object_get(st->c[c].fields, low));
    if (heap)
        free(low);
    return res;
}

json_t *sim_store_dump(sim_store_t *st)
{
    json_t *out = json_object(), *counters = json_object();
    if (!out || !counters || json_object_set_new(out, "version", json_integer(1)) < 0)
        goto fail;
    for (int i = 0; i < SIM_COLL_COUNT; i++) {
        const struct sim_coll_def *def = &sim_defs[i];
        size_t n;
        json_t **items = sim_store_list(st, (enum sim_coll)i, &n);
        json_t *arr = json_array();
        if (!arr || json_object_set_new(out, def->name, arr) < 0)
            goto fail;
        for (size_t k = 0; k < n; k++)
            if (json_array_append(arr, items[k]) < 0)
                goto fail;
        if (!def->ids[0])
            continue;
        json_t *cc = json_object();
        if (!cc || json_object_set_new(counters, def->name, cc) < 0)
            goto fail;
        for (int k = 0; k < SIM_MAX_IDS && def->ids[k]; k++)
            if (json_object_set_new(cc, def->ids[k], json_integer(st->c[i].next[k])) < 0)
                goto fail;
    }
    if (json_object_set_new(out, "counters", counters) < 0) {
        counters = NULL;
        goto fail;
    }
    return out;
fail:
    json_decref(counters);
    json_decref(out);
    return NULL;
}

int sim_store_load(sim_store_t *st, json_t *dump, char *err, size_t errlen)
{
    if (!json_is_object(dump)) {
        snprintf(err, errlen, "state is not a JSON object");
        return -1;
    }
    sim_store_clear(st);
    json_t *counters = json_object_get(dump, "counters");
    for (int i = 0; i < SIM_COLL_COUNT; i++) {
        const struct sim_coll_def *def = &sim_defs[i];
        struct coll_data *c = &st->c[i];
        json_t *arr = json_object_get(dump, def->name);
        size_t k;
        json_t *rec;
        if (arr && !json_is_array(arr)) {
            snprintf(err, errlen, "\"%s\" is not an array", def->name);
            goto fail;
        }
        json_array_foreach(arr, k, rec) {
            const char *g = json_string_value(json_object_get(rec, "guid"));
            char guid[37];
            if (!json_is_object(rec) || !g || !util_is_uuid(g)) {
                snprintf(err, errlen, "%s[%zu] has no valid \"guid\"", def->name, k);
                goto fail;
            }
            sim_json_lower(g, guid, sizeof(guid));
            if (json_object_get(c->by_guid, guid)) {
                snprintf(err, errlen, "%s[%zu]: guid %s appears twice", def->name, k, guid);
                goto fail;
            }
            const char *key;
            json_t *val;
            json_object_foreach(rec, key, val) {
                if (!coll_canon(c, key)) {
                    snprintf(err, errlen, "out of memory");
                    goto fail;
                }
            }
            if (coll_add(st, (enum sim_coll)i, guid, rec) < 0) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            for (int d = 0; d < SIM_MAX_IDS && def->ids[d]; d++) {
                json_t *v = json_object_get(rec, def->ids[d]);
                if (json_is_integer(v) && json_integer_value(v) >= c->next[d])
                    c->next[d] = json_integer_value(v) + 1;
            }
        }
        json_t *cc = json_object_get(counters, def->name);
        for (int d = 0; d < SIM_MAX_IDS && def->ids[d]; d++) {
            json_t *v = json_object_get(cc, def->ids[d]);
            if (json_is_integer(v) && json_integer_value(v) > c->next[d])
                c->next[d] = json_integer_value(v);
        }
    }
    st->version++;
    return 0;
fail:
    sim_store_clear(st);
    return -1;
}
