/* api: the typed per-operation functions over tp_client_op; see api.h. */
#include "trackplan/api.h"

#include <errno.h>
#include <stdio.h>

/* A list call: page, pageSize, and filter / orderBy when given. */
static int tp_api_list(struct tp_client *c, enum tp_op_id op, const char *id,
                       const struct tp_page *pg, tp_done_fn done, void *arg)
{
    char page[24], size[24];
    struct tp_kv q[4];
    size_t n = 0;
    long p = pg && pg->page > 0 ? pg->page : 1;
    long s = pg && pg->page_size > 0 ? pg->page_size : TP_PAGE_DEFAULT_SIZE;
    if (tp_op_get(op)->has_id && (!id || !*id)) {
        errno = EINVAL;
        return -1;
    }
    snprintf(page, sizeof page, "%ld", p);
    snprintf(size, sizeof size, "%ld", s);
    q[n++] = (struct tp_kv){"page", page};
    q[n++] = (struct tp_kv){"pageSize", size};
    if (pg && pg->filter && *pg->filter)
        q[n++] = (struct tp_kv){"filter", pg->filter};
    if (pg && pg->order_by && *pg->order_by)
        q[n++] = (struct tp_kv){"orderBy", pg->order_by};
    struct tp_call call = {.id = id, .query = q, .nquery = n};
    return tp_client_op(c, op, &call, done, arg);
}

/* Any other call: an optional GUID and an optional borrowed body. */
static int tp_api_send(struct tp_client *c, enum tp_op_id op, const char *id, json_t *body,
                       tp_done_fn done, void *arg)
{
    if (tp_op_get(op)->has_id && (!id || !*id)) {
        errno = EINVAL;
        return -1;
    }
    struct tp_call call = {.id = id, .body = body};
    return tp_client_op(c, op, &call, done, arg);
}

int tp_login(struct tp_client *c, tp_done_fn done, void *arg)
{
    return tp_client_op(c, TP_OP_LOGIN, NULL, done, arg);
}

int tp_list_job_requests(struct tp_client *c, const struct tp_page *pg, tp_done_fn done,
                         void *arg)
{
    return tp_api_list(c, TP_OP_LIST_JOB_REQUESTS, NULL, pg, done, arg);
}

int tp_create_job_request(struct tp_client *c, json_t *request, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_CREATE_JOB_REQUEST, NULL, request, done, arg);
}

int tp_list_jobs(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg)
{
    return tp_api_list(c, TP_OP_LIST_JOBS, NULL, pg, done, arg);
}

int tp_get_job(struct tp_client *c, const char *job_guid, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_GET_JOB, job_guid, NULL, done, arg);
}

int tp_create_job(struct tp_client *c, json_t *job, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_CREATE_JOB, NULL, job, done, arg);
}

int tp_complete_job(struct tp_client *c, const char *job_guid, json_t *body, tp_done_fn done,
                    void *arg)
{
    return tp_api_send(c, TP_OP_COMPLETE_JOB, job_guid, body, done, arg);
}

int tp_list_job_costs(struct tp_client *c, const char *job_guid, const struct tp_page *pg,
                      tp_done_fn done, void *arg)
{
    return tp_api_list(c, TP_OP_LIST_JOB_COSTS, job_guid, pg, done, arg);
}

int tp_create_job_cost(struct tp_client *c, const char *job_guid, json_t *body, tp_done_fn done,
                       void *arg)
{
    return tp_api_send(c, TP_OP_CREATE_JOB_COST, job_guid, body, done, arg);
}

int tp_update_job_cost(struct tp_client *c, const char *job_cost_guid, json_t *body,
                       tp_done_fn done,
                       void *arg)
{
    return tp_api_send(c, TP_OP_UPDATE_JOB_COST, job_cost_guid, body, done, arg);
}

int tp_list_job_tasks(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg)
{
    return tp_api_list(c, TP_OP_LIST_JOB_TASKS, NULL, pg, done, arg);
}

int tp_get_job_task(struct tp_client *c, const char *job_task_guid, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_GET_JOB_TASK, job_task_guid, NULL, done, arg);
}

int tp_create_job_task(struct tp_client *c, json_t *task, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_CREATE_JOB_TASK, NULL, task, done, arg);
}

int tp_start_job_task(struct tp_client *c, const char *job_task_guid, json_t *body,
                      tp_done_fn done,
                      void *arg)
{
    return tp_api_send(c, TP_OP_START_JOB_TASK, job_task_guid, body, done, arg);
}

int tp_complete_job_task(struct tp_client *c, const char *job_task_guid, json_t *body,
                         tp_done_fn done,
                         void *arg)
{
    return tp_api_send(c, TP_OP_COMPLETE_JOB_TASK, job_task_guid, body, done, arg);
}

int tp_update_job_task(struct tp_client *c, const char *job_task_guid, json_t *body,
                       tp_done_fn done,
                       void *arg)
{
    return tp_api_send(c, TP_OP_UPDATE_JOB_TASK, job_task_guid, body, done, arg);
}

int tp_list_assets(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg)
{
    return tp_api_list(c, TP_OP_LIST_ASSETS, NULL, pg, done, arg);
}

int tp_get_asset(struct tp_client *c, const char *asset_guid, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_GET_ASSET, asset_guid, NULL, done, arg);
}

int tp_create_asset(struct tp_client *c, json_t *asset, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_CREATE_ASSET, NULL, asset, done, arg);
}

int tp_update_asset(struct tp_client *c, const char *asset_guid, json_t *body, tp_done_fn done,
                    void *arg)
{
    return tp_api_send(c, TP_OP_UPDATE_ASSET, asset_guid, body, done, arg);
}

int tp_delete_asset(struct tp_client *c, const char *asset_guid, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_DELETE_ASSET, asset_guid, NULL, done, arg);
}

int tp_list_sites(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg)
{
    return tp_api_list(c, TP_OP_LIST_SITES, NULL, pg, done, arg);
}

int tp_get_site(struct tp_client *c, const char *site_guid, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_GET_SITE, site_guid, NULL, done, arg);
}

int tp_create_site(struct tp_client *c, json_t *site, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_CREATE_SITE, NULL, site, done, arg);
}

int tp_update_site(struct tp_client *c, const char *site_guid, json_t *body, tp_done_fn done,
                   void *arg)
{
    return tp_api_send(c, TP_OP_UPDATE_SITE, site_guid, body, done, arg);
}

int tp_list_resources(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg)
{
    return tp_api_list(c, TP_OP_LIST_RESOURCES, NULL, pg, done, arg);
}

int tp_get_resource(struct tp_client *c, const char *resource_guid, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_GET_RESOURCE, resource_guid, NULL, done, arg);
}

int tp_create_resource(struct tp_client *c, json_t *resource, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_CREATE_RESOURCE, NULL, resource, done, arg);
}

int tp_update_resource(struct tp_client *c, const char *resource_guid, json_t *body,
                       tp_done_fn done,
                       void *arg)
{
    return tp_api_send(c, TP_OP_UPDATE_RESOURCE, resource_guid, body, done, arg);
}

int tp_list_storage_areas(struct tp_client *c, const struct tp_page *pg, tp_done_fn done,
                          void *arg)
{
    return tp_api_list(c, TP_OP_LIST_STORAGE_AREAS, NULL, pg, done, arg);
}

int tp_get_storage_area(struct tp_client *c, const char *guid, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_GET_STORAGE_AREA, guid, NULL, done, arg);
}

int tp_create_storage_area(struct tp_client *c, json_t *area, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_CREATE_STORAGE_AREA, NULL, area, done, arg);
}

int tp_update_storage_area(struct tp_client *c, const char *guid, json_t *body, tp_done_fn done,
                           void *arg)
{
    return tp_api_send(c, TP_OP_UPDATE_STORAGE_AREA, guid, body, done, arg);
}

int tp_list_stocks(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg)
{
    return tp_api_list(c, TP_OP_LIST_STOCKS, NULL, pg, done, arg);
}

int tp_get_stock(struct tp_client *c, const char *guid, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_GET_STOCK, guid, NULL, done, arg);
}

int tp_create_stock(struct tp_client *c, json_t *stock, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_CREATE_STOCK, NULL, stock, done, arg);
}

int tp_update_stock(struct tp_client *c, const char *guid, json_t *body, tp_done_fn done,
                    void *arg)
{
    return tp_api_send(c, TP_OP_UPDATE_STOCK, guid, body, done, arg);
}

int tp_list_stock_levels(struct tp_client *c, const struct tp_page *pg, tp_done_fn done,
                         void *arg)
{
    return tp_api_list(c, TP_OP_LIST_STOCK_LEVELS, NULL, pg, done, arg);
}

int tp_get_stock_level(struct tp_client *c, const char *guid, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_GET_STOCK_LEVEL, guid, NULL, done, arg);
}

int tp_upsert_stock_level(struct tp_client *c, json_t *level, tp_done_fn done, void *arg)
{
    return tp_api_send(c, TP_OP_UPSERT_STOCK_LEVEL, NULL, level, done, arg);
}
