/* api: one C function per documented TrackplanFM operation (guide §2, the names of ops.h),
 * each a thin, typed front for tp_client_op. All are asynchronous and return as
 * tp_client_op: 0 when accepted (done then gets the result, which it owns), -1 with errno
 * (EINVAL for a missing GUID or body, EAGAIN when the queue is full). Request bodies are
 * borrowed (serialised before the call returns); unknown fields pass through untouched.
 * For blocking use, give a private-loop client tp_result_keep and run tp_client_run. */
#ifndef TB_TRACKPLAN_API_H
#define TB_TRACKPLAN_API_H

#include <jansson.h>

#include "trackplan/client.h"

/* Paging and query of a list operation; NULL means page 1 of TP_PAGE_DEFAULT_SIZE items,
 * no filter, no ordering. filter / order_by are borrowed (see filter.h, order.h). */
struct tp_page {
    long page;             /* 1-based; 0 means 1 */
    long page_size;        /* 0 means TP_PAGE_DEFAULT_SIZE */
    const char *filter;    /* Gridify expression, or NULL */
    const char *order_by;  /* "field[ desc], ...", or NULL */
};

#define TP_PAGE_DEFAULT_SIZE 50

/* Authentication (§2.1) ------------------------------------------------------------------- */

/* §2.1.1 POST /api/auth/login with the configured user: body {"token": ...}; the
 * token is cached for later calls. EINVAL without a user. */
int tp_login(struct tp_client *c, tp_done_fn done, void *arg);

/* Job requests (§2.2) --------------------------------------------------------------------- */

/* §2.2.1 GET /api/jobrequests: one page {"count", "data"}. */
int tp_list_job_requests(struct tp_client *c, const struct tp_page *pg, tp_done_fn done,
                         void *arg);

/* §2.2.2 POST /api/jobrequests: the new job request's number (tp_result_number). */
int tp_create_job_request(struct tp_client *c, json_t *request, tp_done_fn done, void *arg);

/* Jobs (§2.3) ----------------------------------------------------------------------------- */

/* §2.3.1 GET /api/jobs: one page. */
int tp_list_jobs(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg);

/* §2.3.2 GET /api/jobs/{jobGuid}: the job. */
int tp_get_job(struct tp_client *c, const char *job_guid, tp_done_fn done, void *arg);

/* §2.3.3 POST /api/jobs: the new job's GUID (tp_result_guid). */
int tp_create_job(struct tp_client *c, json_t *job, tp_done_fn done, void *arg);

/* §2.3.4 PUT /api/jobs/complete/{jobGuid} with {jobId, completedNote, ...}: the GUID. */
int tp_complete_job(struct tp_client *c, const char *job_guid, json_t *body, tp_done_fn done,
                    void *arg);

/* Job costs (§2.4) ------------------------------------------------------------------------ */

/* §2.4.1 GET /api/jobcosts/{jobGuid}: one page of the job's costs. */
int tp_list_job_costs(struct tp_client *c, const char *job_guid, const struct tp_page *pg,
                      tp_done_fn done, void *arg);

/* §2.4.2 POST /api/jobCosts/{jobGuid}: the new cost's GUID. */
int tp_create_job_cost(struct tp_client *c, const char *job_guid, json_t *body, tp_done_fn done,
                       void *arg);

/* §2.4.3 PUT /api/jobcosts/update/{jobCostGuid}: the cost's GUID. */
int tp_update_job_cost(struct tp_client *c, const char *job_cost_guid, json_t *body,
                       tp_done_fn done,
                       void *arg);

/* Job tasks (§2.5) ------------------------------------------------------------------------ */

/* §2.5.1 GET /api/JobTasks: one page. */
int tp_list_job_tasks(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg);

/* §2.5.2 GET /api/jobTasks/{jobTaskGuid}: the task. */
int tp_get_job_task(struct tp_client *c, const char *job_task_guid, tp_done_fn done, void *arg);

/* §2.5.3 POST /api/jobTasks with {jobGuid, description, ...}: the task's GUID. */
int tp_create_job_task(struct tp_client *c, json_t *task, tp_done_fn done, void *arg);

/* §2.5.4 PUT /api/jobTasks/StartTask/{jobTaskGuid} with {startDate}: no body
 * promised. */
int tp_start_job_task(struct tp_client *c, const char *job_task_guid, json_t *body,
                      tp_done_fn done,
                      void *arg);

/* §2.5.5 PUT /api/jobTasks/CompleteTask/{jobTaskGuid} with {completeDate,
 * completNote} (the guide's spelling): no body promised. */
int tp_complete_job_task(struct tp_client *c, const char *job_task_guid, json_t *body,
                         tp_done_fn done,
                         void *arg);

/* §2.5.6 PUT /api/JobTasks/Update/{jobTaskGuid}: no body promised. */
int tp_update_job_task(struct tp_client *c, const char *job_task_guid, json_t *body,
                       tp_done_fn done,
                       void *arg);

/* Assets (§2.6) --------------------------------------------------------------------------- */

/* §2.6.1 GET /api/assets: one page. */
int tp_list_assets(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg);

/* §2.6.2 GET /api/assets/{assetGuid}: the asset. */
int tp_get_asset(struct tp_client *c, const char *asset_guid, tp_done_fn done, void *arg);

/* §2.6.3 POST /api/assets: the asset's GUID. */
int tp_create_asset(struct tp_client *c, json_t *asset, tp_done_fn done, void *arg);

/* §2.6.4 PUT /api/assets/{assetGuid}: the asset's GUID. */
int tp_update_asset(struct tp_client *c, const char *asset_guid, json_t *body, tp_done_fn done,
                    void *arg);

/* §2.6.5 DELETE /api/assets/{assetGuid}: no body promised. */
int tp_delete_asset(struct tp_client *c, const char *asset_guid, tp_done_fn done, void *arg);

/* Sites (§2.7) ---------------------------------------------------------------------------- */

/* §2.7.1 GET /api/sites: one page. */
int tp_list_sites(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg);

/* §2.7.2 GET /api/sites/{siteGuid}: the site. */
int tp_get_site(struct tp_client *c, const char *site_guid, tp_done_fn done, void *arg);

/* §2.7.3 POST /api/sites: the site's GUID. */
int tp_create_site(struct tp_client *c, json_t *site, tp_done_fn done, void *arg);

/* §2.7.4 PUT /api/sites/{siteGuid}: the updated site object. */
int tp_update_site(struct tp_client *c, const char *site_guid, json_t *body, tp_done_fn done,
                   void *arg);

/* Resources (§2.8) ------------------------------------------------------------------------ */

/* §2.8.1 GET /api/resources: one page. */
int tp_list_resources(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg);

/* §2.8.2 GET /api/resources/{resourceGuid}: the resource. */
int tp_get_resource(struct tp_client *c, const char *resource_guid, tp_done_fn done, void *arg);

/* §2.8.3 POST /api/resources: the resource's GUID. */
int tp_create_resource(struct tp_client *c, json_t *resource, tp_done_fn done, void *arg);

/* §2.8.4 PUT /api/resources/{resourceGuid}: the resource's GUID. */
int tp_update_resource(struct tp_client *c, const char *resource_guid, json_t *body,
                       tp_done_fn done,
                       void *arg);

/* Storage areas (§2.9) -------------------------------------------------------------------- */

/* §2.9.1 GET /api/storageArea: one page. */
int tp_list_storage_areas(struct tp_client *c, const struct tp_page *pg, tp_done_fn done,
                          void *arg);

/* §2.9.2 GET /api/storageArea/{guid}: the storage area. */
int tp_get_storage_area(struct tp_client *c, const char *guid, tp_done_fn done, void *arg);

/* §2.9.3 POST /api/storageArea: the area's GUID. */
int tp_create_storage_area(struct tp_client *c, json_t *area, tp_done_fn done, void *arg);

/* §2.9.4 PUT /api/storageArea/{guid}: the area's GUID. */
int tp_update_storage_area(struct tp_client *c, const char *guid, json_t *body, tp_done_fn done,
                           void *arg);

/* Stocks (§2.10) -------------------------------------------------------------------------- */

/* §2.10.1 GET /api/stocks: one page. */
int tp_list_stocks(struct tp_client *c, const struct tp_page *pg, tp_done_fn done, void *arg);

/* §2.10.2 GET /api/stocks/{guid}: the stock. */
int tp_get_stock(struct tp_client *c, const char *guid, tp_done_fn done, void *arg);

/* §2.10.3 POST /api/Stocks: the stock's GUID. */
int tp_create_stock(struct tp_client *c, json_t *stock, tp_done_fn done, void *arg);

/* §2.10.4 PUT /api/stocks/{guid}: the stock's GUID. */
int tp_update_stock(struct tp_client *c, const char *guid, json_t *body, tp_done_fn done,
                    void *arg);

/* Stock levels (§2.11) -------------------------------------------------------------------- */

/* §2.11.1 GET /api/stockLevel: one page. */
int tp_list_stock_levels(struct tp_client *c, const struct tp_page *pg, tp_done_fn done,
                         void *arg);

/* §2.11.2 GET /api/stocklevel/{guid}: the stock level. */
int tp_get_stock_level(struct tp_client *c, const char *guid, tp_done_fn done, void *arg);

/* §2.11.3 POST /api/stocklevel: the GUID of the created or updated level. */
int tp_upsert_stock_level(struct tp_client *c, json_t *level, tp_done_fn done, void *arg);

#endif
