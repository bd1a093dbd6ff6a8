/* ops: the table of TrackplanFM API operations (integration guide §2.1–2.11), by stable name.
 * The names are the vocabulary of rules, plans, logs, metrics and docs; the table gives each
 * one's method, path and the shape of its result. Pure data, no I/O. */
#ifndef TB_TRACKPLAN_OPS_H
#define TB_TRACKPLAN_OPS_H

#include <stddef.h>

enum tp_result_kind {
    TP_RESULT_TOKEN,   /* {"token": "..."} */
    TP_RESULT_NUMBER,  /* a JSON integer (job request number) */
    TP_RESULT_GUID,    /* a JSON string GUID */
    TP_RESULT_OBJECT,  /* one record */
    TP_RESULT_PAGE,    /* {"count": N, "data": [...]} */
    TP_RESULT_NONE     /* no body promised */
};

enum tp_op_id {
    TP_OP_LOGIN,
    TP_OP_LIST_JOB_REQUESTS, TP_OP_CREATE_JOB_REQUEST,
    TP_OP_LIST_JOBS, TP_OP_GET_JOB, TP_OP_CREATE_JOB, TP_OP_COMPLETE_JOB,
    TP_OP_LIST_JOB_COSTS, TP_OP_CREATE_JOB_COST, TP_OP_UPDATE_JOB_COST,
    TP_OP_LIST_JOB_TASKS, TP_OP_GET_JOB_TASK, TP_OP_CREATE_JOB_TASK, TP_OP_START_JOB_TASK,
    TP_OP_COMPLETE_JOB_TASK, TP_OP_UPDATE_JOB_TASK,
    TP_OP_LIST_ASSETS, TP_OP_GET_ASSET, TP_OP_CREATE_ASSET, TP_OP_UPDATE_ASSET, TP_OP_DELETE_ASSET,
    TP_OP_LIST_SITES, TP_OP_GET_SITE, TP_OP_CREATE_SITE, TP_OP_UPDATE_SITE,
    TP_OP_LIST_RESOURCES, TP_OP_GET_RESOURCE, TP_OP_CREATE_RESOURCE, TP_OP_UPDATE_RESOURCE,
    TP_OP_LIST_STORAGE_AREAS, TP_OP_GET_STORAGE_AREA, TP_OP_CREATE_STORAGE_AREA,
    TP_OP_UPDATE_STORAGE_AREA,
    TP_OP_LIST_STOCKS, TP_OP_GET_STOCK, TP_OP_CREATE_STOCK, TP_OP_UPDATE_STOCK,
    TP_OP_LIST_STOCK_LEVELS, TP_OP_GET_STOCK_LEVEL, TP_OP_UPSERT_STOCK_LEVEL,
    TP_OP_COUNT
};

struct tp_op {
    enum tp_op_id id;
    const char *name;        /* e.g. "create_job" */
    const char *method;      /* "GET", "POST", "PUT", "DELETE" */
    const char *path;        /* as the guide writes it; "{id}" stands for the GUID */
    int has_id;              /* path contains {id} */
    int has_body;            /* a JSON request body is sent */
    int paged;               /* takes page, pageSize, orderBy, filter */
    int auth;                /* needs credentials (all but login) */
    enum tp_result_kind result;
    const char *summary;     /* one line for help and docs */
};

/* The op with that id; never NULL for a valid id. */
const struct tp_op *tp_op_get(enum tp_op_id id);
/* The op with that name (exact, lowercase), or NULL. */
const struct tp_op *tp_op_find(const char *name);
/* The op whose method and path (already split from its query, any case, a GUID or number in
 * the id position) match, or NULL. Used to name raw calls in logs. */
const struct tp_op *tp_op_match(const char *method, const char *path);
/* Builds the path with id URL-escaped into {id}; returns a new string (free()), or NULL when
 * the op needs an id and none was given, or on OOM. */
char *tp_op_path(const struct tp_op *op, const char *id);

#endif
