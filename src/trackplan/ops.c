/* ops: TrackplanFM operation table (guide §2); see ops.h. */
#include "trackplan/ops.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"

static const struct tp_op tp_ops[TP_OP_COUNT] = {
    {TP_OP_LOGIN, "login", "POST", "/api/auth/login", 0, 1, 0, 0, TP_RESULT_TOKEN,
     "log in with a user name and password; returns a JWT"},
    {TP_OP_LIST_JOB_REQUESTS, "list_job_requests", "GET", "/api/jobrequests", 0, 0, 1, 1,
     TP_RESULT_PAGE, "list job requests"},
    {TP_OP_CREATE_JOB_REQUEST, "create_job_request", "POST", "/api/jobrequests", 0, 1, 0, 1,
     TP_RESULT_NUMBER, "create a job request; returns its number"},
    {TP_OP_LIST_JOBS, "list_jobs", "GET", "/api/jobs", 0, 0, 1, 1, TP_RESULT_PAGE, "list jobs"},
    {TP_OP_GET_JOB, "get_job", "GET", "/api/jobs/{id}", 1, 0, 0, 1, TP_RESULT_OBJECT,
     "get a job by GUID"},
    {TP_OP_CREATE_JOB, "create_job", "POST", "/api/jobs", 0, 1, 0, 1, TP_RESULT_GUID,
     "create a job; returns its GUID"},
    {TP_OP_COMPLETE_JOB, "complete_job", "PUT", "/api/jobs/complete/{id}", 1, 1, 0, 1,
     TP_RESULT_GUID, "complete a job"},
    {TP_OP_LIST_JOB_COSTS, "list_job_costs", "GET", "/api/jobcosts/{id}", 1, 0, 1, 1,
     TP_RESULT_PAGE, "list the costs of a job"},
    {TP_OP_CREATE_JOB_COST, "create_job_cost", "POST", "/api/jobCosts/{id}", 1, 1, 0, 1,
     TP_RESULT_GUID, "add a cost to a job; returns the cost's GUID"},
    {TP_OP_UPDATE_JOB_COST, "update_job_cost", "PUT", "/api/jobcosts/update/{id}", 1, 1, 0, 1,
     TP_RESULT_GUID, "update a job cost"},
    {TP_OP_LIST_JOB_TASKS, "list_job_tasks", "GET", "/api/JobTasks", 0, 0, 1, 1, TP_RESULT_PAGE,
     "list job tasks"},
    {TP_OP_GET_JOB_TASK, "get_job_task", "GET", "/api/jobTasks/{id}", 1, 0, 0, 1,
     TP_RESULT_OBJECT, "get a job task by GUID"},
    {TP_OP_CREATE_JOB_TASK, "create_job_task", "POST", "/api/jobTasks", 0, 1, 0, 1,
     TP_RESULT_GUID, "create a job task; returns its GUID"},
    {TP_OP_START_JOB_TASK, "start_job_task", "PUT", "/api/jobTasks/StartTask/{id}", 1, 1, 0, 1,
     TP_RESULT_NONE, "start a job task"},
    {TP_OP_COMPLETE_JOB_TASK, "complete_job_task", "PUT", "/api/jobTasks/CompleteTask/{id}", 1,
     1, 0, 1, TP_RESULT_NONE, "complete a job task"},
    {TP_OP_UPDATE_JOB_TASK, "update_job_task", "PUT", "/api/JobTasks/Update/{id}", 1, 1, 0, 1,
     TP_RESULT_NONE, "update a job task"},
    {TP_OP_LIST_ASSETS, "list_assets", "GET", "/api/assets", 0, 0, 1, 1, TP_RESULT_PAGE,
     "list assets"},
    {TP_OP_GET_ASSET, "get_asset", "GET", "/api/assets/{id}", 1, 0, 0, 1, TP_RESULT_OBJECT,
     "get an asset by GUID"},
    {TP_OP_CREATE_ASSET, "create_asset", "POST", "/api/assets", 0, 1, 0, 1, TP_RESULT_GUID,
     "create an asset; returns its GUID"},
    {TP_OP_UPDATE_ASSET, "update_asset", "PUT", "/api/assets/{id}", 1, 1, 0, 1, TP_RESULT_GUID,
     "update an asset"},
    {TP_OP_DELETE_ASSET, "delete_asset", "DELETE", "/api/assets/{id}", 1, 0, 0, 1,
     TP_RESULT_NONE, "delete an asset"},
    {TP_OP_LIST_SITES, "list_sites", "GET", "/api/sites", 0, 0, 1, 1, TP_RESULT_PAGE,
     "list sites"},
    {TP_OP_GET_SITE, "get_site", "GET", "/api/sites/{id}", 1, 0, 0, 1, TP_RESULT_OBJECT,
     "get a site by GUID"},
    {TP_OP_CREATE_SITE, "create_site", "POST", "/api/sites", 0, 1, 0, 1, TP_RESULT_GUID,
     "create a site; returns its GUID"},
    {TP_OP_UPDATE_SITE, "update_site", "PUT", "/api/sites/{id}", 1, 1, 0, 1, TP_RESULT_OBJECT,
     "update a site; returns the updated site"},
    {TP_OP_LIST_RESOURCES, "list_resources", "GET", "/api/resources", 0, 0, 1, 1,
     TP_RESULT_PAGE, "list resources"},
    {TP_OP_GET_RESOURCE, "get_resource", "GET", "/api/resources/{id}", 1, 0, 0, 1,
     TP_RESULT_OBJECT, "get a resource by GUID"},
    {TP_OP_CREATE_RESOURCE, "create_resource", "POST", "/api/resources", 0, 1, 0, 1,
     TP_RESULT_GUID, "create a resource; returns its GUID"},
    {TP_OP_UPDATE_RESOURCE, "update_resource", "PUT", "/api/resources/{id}", 1, 1, 0, 1,
     TP_RESULT_GUID, "update a resource"},
    {TP_OP_LIST_STORAGE_AREAS, "list_storage_areas", "GET", "/api/storageArea", 0, 0, 1, 1,
     TP_RESULT_PAGE, "list storage areas"},
    {TP_OP_GET_STORAGE_AREA, "get_storage_area", "GET", "/api/storageArea/{id}", 1, 0, 0, 1,
     TP_RESULT_OBJECT, "get a storage area by GUID"},
    {TP_OP_CREATE_STORAGE_AREA, "create_storage_area", "POST", "/api/storageArea", 0, 1, 0, 1,
     TP_RESULT_GUID, "create a storage area; returns its GUID"},
    {TP_OP_UPDATE_STORAGE_AREA, "update_storage_area", "PUT", "/api/storageArea/{id}", 1, 1, 0,
     1, TP_RESULT_GUID, "update a storage area"},
    {TP_OP_LIST_STOCKS, "list_stocks", "GET", "/api/stocks", 0, 0, 1, 1, TP_RESULT_PAGE,
     "list stocks"},
    {TP_OP_GET_STOCK, "get_stock", "GET", "/api/stocks/{id}", 1, 0, 0, 1, TP_RESULT_OBJECT,
     "get a stock by GUID"},
    {TP_OP_CREATE_STOCK, "create_stock", "POST", "/api/Stocks", 0, 1, 0, 1, TP_RESULT_GUID,
     "create a stock; returns its GUID"},
    {TP_OP_UPDATE_STOCK, "update_stock", "PUT", "/api/stocks/{id}", 1, 1, 0, 1, TP_RESULT_GUID,
     "update a stock"},
    {TP_OP_LIST_STOCK_LEVELS, "list_stock_levels", "GET", "/api/stockLevel", 0, 0, 1, 1,
     TP_RESULT_PAGE, "list stock levels"},
    {TP_OP_GET_STOCK_LEVEL, "get_stock_level", "GET", "/api/stocklevel/{id}", 1, 0, 0, 1,
     TP_RESULT_OBJECT, "get a stock level by GUID"},
    {TP_OP_UPSERT_STOCK_LEVEL, "upsert_stock_level", "POST", "/api/stocklevel", 0, 1, 0, 1,
     TP_RESULT_GUID, "update or create the stock level of a stock in a storage area"},
};

const struct tp_op *tp_op_get(enum tp_op_id id)
{
    return (unsigned)id < TP_OP_COUNT ? &tp_ops[id] : NULL;
}

const struct tp_op *tp_op_find(const char *name)
{
    for (size_t i = 0; i < TP_OP_COUNT; i++)
        if (strcmp(tp_ops[i].name, name) == 0)
            return &tp_ops[i];
    return NULL;
}

/* Compares a request path with an op path, "{id}" matching one non-empty segment. */
static int tp_path_match(const char *pattern, const char *path)
{
    while (*pattern && *path) {
        if (strncmp(pattern, "{id}", 4) == 0) {
            size_t seg = strcspn(path, "/");
            if (seg == 0)
                return 0;
            pattern += 4;
            path += seg;
            continue;
        }
        if (tolower((unsigned char)*pattern) != tolower((unsigned char)*path))
            return 0;
        pattern++;
        path++;
    }
    if (*path == '/' && path[1] == '\0')
        path++;
    return *pattern == '\0' && *path == '\0';
}

const struct tp_op *tp_op_match(const char *method, const char *path)
{
    for (size_t i = 0; i < TP_OP_COUNT; i++)
        if (strcasecmp(tp_ops[i].method, method) == 0 && tp_path_match(tp_ops[i].path, path))
            return &tp_ops[i];
    return NULL;
}

char *tp_op_path(const struct tp_op *op, const char *id)
{
    const char *at = strstr(op->path, "{id}");
    if (!at)
        return strdup(op->path);
    if (!id || !*id)
        return NULL;
    buf_t b;
    int rc = 0;
    buf_init(&b, 0);
    rc |= buf_append(&b, op->path, (size_t)(at - op->path));
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
            rc |= buf_putc(&b, (char)*p);
        else
            rc |= buf_printf(&b, "%%%02X", *p);
    }
    rc |= buf_puts(&b, at + 4);
    if (rc) { /* out of memory: never hand back a truncated path */
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b);
}
