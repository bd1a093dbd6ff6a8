/* store: the public face of the store — argument checks, the bounded intake queue, the writer
 * thread that group-commits it (one transaction and one fsync per batch), and completions
 * posted back to the event loop through a non-blocking pipe, so the loop never waits on a
 * sync. Storage itself belongs to the backend (store_sqlite.c). */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/util.h"
#include "store_backend.h"

#define STORE_LIST_MAX 1000          /* rows per list call */
#define STORE_EVENTS_MAX 10000       /* events per request */
#define STORE_STEPS_MAX 1000         /* deliveries per event */
#define STORE_SOURCE_MAX 128
#define STORE_KEY_MAX 1024           /* dedup and correlation keys */
#define STORE_NAME_MAX 256           /* kv names, op names, addresses */
#define STORE_MSGID_MAX 998          /* a Message-ID fits one RFC 5322 line */
#define STORE_KV_VALUE_MAX 65536
#define STORE_FAIL_WINDOW_MS 10000   /* readiness reports an intake failure this long */
#define STORE_IDLE_EVERY_MS 100      /* writer upkeep (checkpoint check) period */
#define STORE_AUTO_PURGE_LIMIT 1000

struct purge_job {
    struct purge_job *next;
    int64_t now;
    size_t limit;
    struct store_purge_counts counts;
    enum store_status status;
    int done;
};

struct store {
    const struct store_backend_ops *ops;
    struct store_backend *be;
    struct store_writer *w;
    struct store_opts o;
    struct event_base *base;
    struct event *done_ev;
    int pipe_r, pipe_w;
    pthread_t thread;
    int thread_started;
    pthread_t ckpt_thread;   /* checkpoints both files, off the commit path */
    int ckpt_started;
    struct store_intake_item **batch; /* writer-owned, batch_max slots */

    pthread_mutex_t mu;
    pthread_cond_t wake;    /* writer: work queued, hold lifted, closing */
    pthread_cond_t settled; /* blocking callers: an item or a purge job is done */
    pthread_cond_t ckpt_wake; /* checkpointer: closing */
    struct store_intake_item *q_head, *q_tail;       /* waiting for the writer */
    struct store_intake_item *done_head, *done_tail; /* completed, callbacks pending */
    struct purge_job *jobs;
    size_t count, bytes; /* accepted and not yet completed: the queue bound */
    int hold, closing;
    struct store_intake_stats st;
    enum store_status last_fail; /* of the latest intake transaction, OK once one succeeds */
    int64_t last_fail_at;        /* monotonic ms */
};

const char *store_status_str(enum store_status st)
{
    switch (st) {
    case STORE_OK: return "ok";
    case STORE_NOTFOUND: return "notfound";
    case STORE_DUPLICATE: return "duplicate";
    case STORE_CONFLICT: return "conflict";
    case STORE_INVALID: return "invalid";
    case STORE_FULL: return "full";
    case STORE_UNAVAILABLE: return "unavailable";
    }
    return "unknown";
}

int store_status_is_temporary(enum store_status st)
{
    return st == STORE_FULL || st == STORE_UNAVAILABLE;
}

static void opts_fill(struct store_opts *o, const struct store_opts *in)
{
    const int64_t day = 24 * 3600 * 1000LL;
    if (in)
        *o = *in;
    else
        memset(o, 0, sizeof *o);
    if (!o->queue_max_count)
        o->queue_max_count = 10000;
    if (!o->queue_max_bytes)
        o->queue_max_bytes = (size_t)64 << 20;
    if (!o->batch_max)
        o->batch_max = 512;
    if (o->batch_max > 65536)
        o->batch_max = 65536;
    if (o->dedup_retention_ms <= 0)
        o->dedup_retention_ms = 3 * day;
    if (o->request_retention_ms <= 0)
        o->request_retention_ms = 7 * day;
    if (o->done_retention_ms <= 0)
        o->done_retention_ms = 7 * day;
    if (!o->purge_interval_ms)
        o->purge_interval_ms = 60000;
    if (o->busy_timeout_ms <= 0)
        o->busy_timeout_ms = 5000;
    if (o->intake_max_bytes < 0)
        o->intake_max_bytes = 0;
}

static int str_ok(const char *s, size_t max, int required)
{
    if (!s)
        return !required;
    size_t n = strnlen(s, max + 1);
    return n <= max && (n > 0 || !required);
}

/* ---- Intake items ----------------------------------------------------------------------- */

static void item_payload_free(struct store_intake_item *it)
{
    free(it->source);
    free(it->remote_addr);
    free(it->content_type);
    free(it->dedup_key);
    free(it->headers_json);
    free(it->body);
    it->source = it->remote_addr = it->content_type = it->dedup_key = it->headers_json = NULL;
    it->body = NULL;
}

static void item_free(struct store_intake_item *it)
{
    if (!it)
        return;
    item_payload_free(it);
    free(it);
}

/* Copies a request into a new item. INVALID for a bad request, UNAVAILABLE when memory runs
 * out. */
static enum store_status item_new(const struct store_request *req,
                                  struct store_intake_item **out)
{
    struct store_intake_item *it = NULL;
    enum store_status st = STORE_INVALID;
    *out = NULL;
    if (!req || !str_ok(req->source, STORE_SOURCE_MAX, 1) ||
        !str_ok(req->remote_addr, STORE_NAME_MAX, 0) ||
        !str_ok(req->content_type, STORE_NAME_MAX * 4, 0) ||
        !str_ok(req->dedup_key, STORE_KEY_MAX, 0) || req->received_at < 0 ||
        (req->body_len && !req->body) || (req->headers && !json_is_object(req->headers)))
        goto fail;
    st = STORE_UNAVAILABLE;
    it = calloc(1, sizeof *it);
    if (!it)
        goto fail;
    it->source = util_strdup(req->source);
    it->remote_addr = util_strdup(req->remote_addr);
    it->content_type = util_strdup(req->content_type);
    it->dedup_key = req->dedup_key && *req->dedup_key ? util_strdup(req->dedup_key) : NULL;
    it->headers_json = req->headers ? json_dumps(req->headers, JSON_COMPACT) : NULL;
    if (!it->source || (req->remote_addr && !it->remote_addr) ||
        (req->content_type && !it->content_type) ||
        (req->dedup_key && *req->dedup_key && !it->dedup_key) ||
        (req->headers && !it->headers_json))
        goto fail;
    if (req->body_len) {
        it->body = malloc(req->body_len);
        if (!it->body)
            goto fail;
        memcpy(it->body, req->body, req->body_len);
    }
    it->body_len = req->body_len;
    it->received_at = req->received_at ? req->received_at : util_now_ms();
    util_uuid7(it->public_id); /* time-ordered: cheap to index */
    it->bytes = sizeof *it + it->body_len + strlen(it->source) +
                (it->remote_addr ? strlen(it->remote_addr) : 0) +
                (it->content_type ? strlen(it->content_type) : 0) +
                (it->dedup_key ? strlen(it->dedup_key) : 0) +
                (it->headers_json ? strlen(it->headers_json) : 0);
    *out = it;
    return STORE_OK;
fail:
    item_free(it);
    return st;
}

/* Queues an accepted item; FULL, UNAVAILABLE (closing) or INVALID (can never fit). */
static enum store_status enqueue(struct store *s, struct store_intake_item *it)
{
    enum store_status st = STORE_OK;
    pthread_mutex_lock(&s->mu);
    if (s->closing)
        st = STORE_UNAVAILABLE;
    else if (it->bytes > s->o.queue_max_bytes)
        st = STORE_INVALID;
    else if (s->count >= s->o.queue_max_count || s->bytes + it->bytes > s->o.queue_max_bytes)
        st = STORE_FULL;
    if (st == STORE_OK) {
        it->next = NULL;
        if (s->q_tail)
            s->q_tail->next = it;
        else
            s->q_head = it;
        s->q_tail = it;
        s->count++;
        s->bytes += it->bytes;
        s->st.submitted++;
        pthread_cond_signal(&s->wake);
    } else {
        s->st.refused++;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- Writer thread ---------------------------------------------------------------------- */

static void notify_loop(struct store *s)
{
    char c = 1;
    for (;;) {
        ssize_t r = write(s->pipe_w, &c, 1);
        if (r >= 0 || errno != EINTR)
            return; /* EAGAIN: a wake-up is already pending */
    }
}

/* Takes a batch off the queue, writes it, and completes its items. Called and returns with
 * s->mu held. */
static void writer_batch(struct store *s)
{
    size_t n = 0;
    while (s->q_head && n < s->o.batch_max) {
        struct store_intake_item *it = s->q_head;
        s->q_head = it->next;
        if (!s->q_head)
            s->q_tail = NULL;
        it->next = NULL;
        s->batch[n++] = it;
    }
    pthread_mutex_unlock(&s->mu);

    enum store_status bst = s->ops->write_batch(s->w, s->batch, n);
    for (size_t i = 0; i < n; i++)
        item_payload_free(s->batch[i]);

    int async = 0, sync = 0;
    enum store_status fail = STORE_OK;
    pthread_mutex_lock(&s->mu);
    if (bst == STORE_OK) {
        s->st.commits++;
        if (n > s->st.max_batch)
            s->st.max_batch = n;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_intake_item *it = s->batch[i];
        s->batch[i] = NULL;
        s->count--;
        s->bytes -= it->bytes;
        switch (it->res.status) {
        case STORE_OK: s->st.stored++; break;
        case STORE_DUPLICATE: s->st.duplicates++; break;
        default:
            s->st.failed++;
            if (fail == STORE_OK || it->res.status == STORE_FULL)
                fail = it->res.status;
            break;
        }
        if (it->cb) {
            if (s->done_tail)
                s->done_tail->next = it;
            else
                s->done_head = it;
            s->done_tail = it;
            async = 1;
        } else {
            it->done = 1;
            sync = 1;
        }
    }
    s->last_fail = fail;
    if (fail != STORE_OK)
        s->last_fail_at = util_mono_ms();
    if (sync)
        pthread_cond_broadcast(&s->settled);
    if (async) {
        pthread_mutex_unlock(&s->mu);
        notify_loop(s);
        pthread_mutex_lock(&s->mu);
    }
}

/* Runs queued purge jobs. Called and returns with s->mu held. */
static void writer_jobs(struct store *s)
{
    struct purge_job *jobs = s->jobs;
    s->jobs = NULL;
    pthread_mutex_unlock(&s->mu);
    for (struct purge_job *j = jobs; j; j = j->next)
        j->status = s->ops->writer_purge(s->w, j->now, j->limit, &j->counts);
    pthread_mutex_lock(&s->mu);
    for (struct purge_job *j = jobs, *next; j; j = next) {
        next = j->next; /* the waiter may free j once done is set */
        j->done = 1;
    }
    pthread_cond_broadcast(&s->settled);
}

static void cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t mono_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(mono_ms / 1000),
                          .tv_nsec = (long)(mono_ms % 1000) * 1000000L};
    pthread_cond_timedwait(c, m, &ts);
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    int64_t next_idle = util_mono_ms() + STORE_IDLE_EVERY_MS;
    int64_t next_purge = s->o.purge_interval_ms > 0 ? util_mono_ms() + s->o.purge_interval_ms
                                                    : INT64_MAX;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->jobs) {
            writer_jobs(s);
        } else if (s->q_head && (!s->hold || s->closing)) {
            writer_batch(s);
        } else if (s->closing) {
            break;
        } else {
            int64_t due = next_idle < next_purge ? next_idle : next_purge;
            if (util_mono_ms() < due)
                cond_wait_until(&s->wake, &s->mu, due);
        }
        int64_t now = util_mono_ms();
        if (now < next_idle && now < next_purge)
            continue;
        pthread_mutex_unlock(&s->mu);
        if (now >= next_purge) {
            struct store_purge_counts c = {0};
            s->ops->writer_purge(s->w, util_now_ms(), STORE_AUTO_PURGE_LIMIT, &c);
            next_purge = now + s->o.purge_interval_ms;
        }
        next_idle = now + STORE_IDLE_EVERY_MS;
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The checkpointer: copies both files' WAL into the databases from its own connections, so
 * neither an intake commit nor a loop write ever carries a checkpoint (they made the slowest
 * commits, the ones a sender waits on at the 99th percentile). */
static void *ckpt_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->closing) {
        cond_wait_until(&s->ckpt_wake, &s->mu, util_mono_ms() + STORE_IDLE_EVERY_MS);
        if (s->closing)
            break;
        pthread_mutex_unlock(&s->mu);
        s->ops->writer_idle(s->w);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- Loop side -------------------------------------------------------------------------- */

static void run_completions(struct store *s)
{
    pthread_mutex_lock(&s->mu);
    struct store_intake_item *it = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (it) {
        struct store_intake_item *next = it->next;
        it->cb(&it->res, it->arg);
        item_free(it);
        it = next;
    }
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    char buf[256];
    (void)what;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    run_completions(arg);
}

/* ---- Open and close --------------------------------------------------------------------- */

static void store_free(struct store *s)
{
    if (s->done_ev)
        event_free(s->done_ev);
    if (s->pipe_r >= 0)
        close(s->pipe_r);
    if (s->pipe_w >= 0)
        close(s->pipe_w);
    if (s->w)
        s->ops->writer_close(s->w);
    if (s->be)
        s->ops->close(s->be);
    free(s->batch);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->settled);
    pthread_cond_destroy(&s->ckpt_wake);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

struct store *store_open(const char *path, const struct store_opts *opts,
                         struct event_base *base, char **err)
{
    char *e = NULL;
    pthread_condattr_t ca;
    struct store *s = NULL;
    if (err)
        *err = NULL;
    if (!path || !*path) {
        e = util_strdup("store: no path");
        goto fail;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        e = util_strdup("store: out of memory");
        goto fail;
    }
    s->pipe_r = s->pipe_w = -1;
    s->ops = &store_sqlite_ops;
    s->base = base;
    opts_fill(&s->o, opts);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_cond_init(&s->settled, &ca);
    pthread_cond_init(&s->ckpt_wake, &ca);
    pthread_condattr_destroy(&ca);

    s->be = s->ops->open(path, &s->o, &e);
    if (!s->be)
        goto fail;
    s->w = s->ops->writer_open(s->be, &e);
    if (!s->w)
        goto fail;
    s->batch = calloc(s->o.batch_max, sizeof *s->batch);
    if (!s->batch) {
        e = util_strdup("store: out of memory");
        goto fail;
    }
    if (base) {
        int fds[2];
        if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
            e = util_asprintf("store: pipe: %s", strerror(errno));
            goto fail;
        }
        s->pipe_r = fds[0];
        s->pipe_w = fds[1];
        s->done_ev = event_new(base, s->pipe_r, EV_READ | EV_PERSIST, on_done, s);
        if (!s->done_ev || event_add(s->done_ev, NULL) < 0) {
            e = util_strdup("store: cannot register with the event loop");
            goto fail;
        }
    }
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        e = util_strdup("store: cannot start the intake writer");
        goto fail;
    }
    s->thread_started = 1;
    if (pthread_create(&s->ckpt_thread, NULL, ckpt_main, s) != 0) {
        e = util_strdup("store: cannot start the checkpointer");
        goto fail;
    }
    s->ckpt_started = 1;
    log_info("store opened", "path", path, "backend", s->ops->name);
    return s;
fail:
    if (err)
        *err = e;
    else
        free(e);
    if (s && s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->closing = 1;
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    if (s)
        store_free(s);
    return NULL;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_cond_broadcast(&s->ckpt_wake);
    pthread_mutex_unlock(&s->mu);
    if (s->thread_started)
        pthread_join(s->thread, NULL);
    if (s->ckpt_started)
        pthread_join(s->ckpt_thread, NULL);
    run_completions(s);
    store_free(s);
}

enum store_status store_batch_begin(struct store *s)
{
    return s ? s->ops->batch_begin(s->be) : STORE_INVALID;
}

enum store_status store_batch_commit(struct store *s)
{
    return s ? s->ops->batch_end(s->be, 1) : STORE_INVALID;
}

enum store_status store_batch_rollback(struct store *s)
{
    return s ? s->ops->batch_end(s->be, 0) : STORE_INVALID;
}

enum store_status store_check_writable(struct store *s)
{
    enum store_status st = STORE_OK;
    if (!s)
        return STORE_INVALID;
    pthread_mutex_lock(&s->mu);
    if (s->closing)
        st = STORE_UNAVAILABLE;
    else if (s->count >= s->o.queue_max_count)
        st = STORE_FULL;
    else if (s->last_fail != STORE_OK &&
             util_mono_ms() - s->last_fail_at < STORE_FAIL_WINDOW_MS)
        st = s->last_fail;
    pthread_mutex_unlock(&s->mu);
    return st == STORE_OK ? s->ops->check_writable(s->be) : st;
}

/* ---- Intake API ------------------------------------------------------------------------- */

enum store_status store_intake_submit(struct store *s, const struct store_request *req,
                                      store_intake_cb cb, void *arg)
{
    struct store_intake_item *it = NULL;
    enum store_status st = STORE_INVALID;
    if (!cb)
        return STORE_INVALID;
    if (!s || !s->base)
        goto refuse;
    st = item_new(req, &it);
    if (st != STORE_OK) {
        pthread_mutex_lock(&s->mu);
        s->st.refused++;
        pthread_mutex_unlock(&s->mu);
        goto refuse;
    }
    it->cb = cb;
    it->arg = arg;
    st = enqueue(s, it);
    if (st != STORE_OK)
        goto refuse;
    return STORE_OK;
refuse:
    item_free(it);
    struct store_intake_result res = {.status = st};
    cb(&res, arg);
    return st;
}

enum store_status store_intake_sync(struct store *s, const struct store_request *req,
                                    struct store_intake_result *out)
{
    struct store_intake_item *it = NULL;
    memset(out, 0, sizeof *out);
    out->status = STORE_INVALID;
    if (!s)
        return out->status;
    out->status = item_new(req, &it);
    if (out->status != STORE_OK) {
        pthread_mutex_lock(&s->mu);
        s->st.refused++;
        pthread_mutex_unlock(&s->mu);
        return out->status;
    }
    out->status = enqueue(s, it);
    if (out->status != STORE_OK) {
        item_free(it);
        return out->status;
    }
    pthread_mutex_lock(&s->mu);
    while (!it->done)
        pthread_cond_wait(&s->settled, &s->mu);
    pthread_mutex_unlock(&s->mu);
    *out = it->res;
    item_free(it);
    return out->status;
}

void store_intake_hold(struct store *s, int hold)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->hold = hold != 0;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

void store_intake_stats(struct store *s, struct store_intake_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->queued = s->count;
    out->queued_bytes = s->bytes;
    pthread_mutex_unlock(&s->mu);
}

static void counts_add(struct store_purge_counts *to, const struct store_purge_counts *c)
{
    to->dedup_keys += c->dedup_keys;
    to->requests += c->requests;
    to->request_marks += c->request_marks;
    to->events += c->events;
    to->deliveries += c->deliveries;
    to->outbox += c->outbox;
    to->sent_mail += c->sent_mail;
    to->correlations += c->correlations;
}

static size_t purge_limit(size_t limit)
{
    return limit == 0 ? STORE_AUTO_PURGE_LIMIT : limit > 100000 ? 100000 : limit;
}

enum store_status store_intake_purge_sync(struct store *s, int64_t now, size_t limit,
                                          struct store_purge_counts *out)
{
    struct purge_job job = {.now = now, .limit = purge_limit(limit)};
    if (!s)
        return STORE_INVALID;
    pthread_mutex_lock(&s->mu);
    if (s->closing) {
        pthread_mutex_unlock(&s->mu);
        return STORE_UNAVAILABLE;
    }
    job.next = s->jobs;
    s->jobs = &job;
    pthread_cond_signal(&s->wake);
    while (!job.done)
        pthread_cond_wait(&s->settled, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (out && job.status == STORE_OK)
        counts_add(out, &job.counts);
    return job.status;
}

/* ---- Row helpers ------------------------------------------------------------------------ */

void store_request_row_clear(struct store_request_row *r)
{
    if (!r)
        return;
    free(r->source);
    free(r->remote_addr);
    free(r->content_type);
    json_decref(r->headers);
    free(r->body);
    free(r->dedup_key);
    free(r->error);
    memset(r, 0, sizeof *r);
}

void store_request_rows_free(struct store_request_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        store_request_row_clear(&rows[i]);
    free(rows);
}

void store_event_row_clear(struct store_event_row *r)
{
    if (!r)
        return;
    free(r->source);
    free(r->status);
    free(r->key);
    free(r->rule);
    json_decref(r->event);
    json_decref(r->plan);
    json_decref(r->trace);
    memset(r, 0, sizeof *r);
}

void store_event_rows_free(struct store_event_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        store_event_row_clear(&rows[i]);
    free(rows);
}

void store_delivery_row_clear(struct store_delivery_row *r)
{
    if (!r)
        return;
    free(r->corr_key);
    free(r->op);
    json_decref(r->payload);
    free(r->last_error);
    json_decref(r->response);
    memset(r, 0, sizeof *r);
}

void store_delivery_rows_free(struct store_delivery_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        store_delivery_row_clear(&rows[i]);
    free(rows);
}

void store_outbox_row_clear(struct store_outbox_row *r)
{
    if (!r)
        return;
    json_decref(r->message);
    free(r->message_id);
    free(r->error);
    memset(r, 0, sizeof *r);
}

void store_outbox_rows_free(struct store_outbox_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        store_outbox_row_clear(&rows[i]);
    free(rows);
}

/* ---- Processing side -------------------------------------------------------------------- */

/* Clamps a list limit; 0 means an empty answer. */
static size_t list_limit(size_t limit)
{
    return limit > STORE_LIST_MAX ? STORE_LIST_MAX : limit;
}

enum store_status store_requests_new(struct store *s, int64_t after_id, size_t limit,
                                     struct store_request_row **rows, size_t *n)
{
    if (!s || !rows || !n)
        return STORE_INVALID;
    *rows = NULL;
    *n = 0;
    if (list_limit(limit) == 0)
        return STORE_OK;
    return s->ops->requests_new(s->be, after_id < 0 ? 0 : after_id, list_limit(limit), rows, n);
}

enum store_status store_request_get(struct store *s, int64_t id, struct store_request_row *out)
{
    if (!s || !out)
        return STORE_INVALID;
    memset(out, 0, sizeof *out);
    return s->ops->request_get(s->be, id, NULL, out);
}

enum store_status store_request_get_public(struct store *s, const char *public_id,
                                           struct store_request_row *out)
{
    if (!s || !out || !str_ok(public_id, 39, 1))
        return STORE_INVALID;
    memset(out, 0, sizeof *out);
    return s->ops->request_get(s->be, 0, public_id, out);
}

static int event_in_ok(const struct store_event_in *e)
{
    if (!e->event || !str_ok(e->key, STORE_KEY_MAX, 0) || !str_ok(e->status, STORE_NAME_MAX, 0) ||
        !str_ok(e->rule, STORE_NAME_MAX, 0) || (int)e->state < STORE_EV_PLANNED ||
        e->state > STORE_EV_FAILED || e->n_deliveries > STORE_STEPS_MAX ||
        (e->n_deliveries && (!e->deliveries || e->state != STORE_EV_PLANNED)))
        return 0;
    for (size_t j = 0; j < e->n_deliveries; j++) {
        const struct store_delivery_in *d = &e->deliveries[j];
        if (!str_ok(d->op, STORE_NAME_MAX / 2, 1) || d->next_at < 0 ||
            (j > 0 && d->step <= e->deliveries[j - 1].step))
            return 0;
    }
    return 1;
}

enum store_status store_request_processed(struct store *s, int64_t request_id,
                                          const struct store_event_in *events, size_t n,
                                          int64_t *event_ids)
{
    if (!s || request_id <= 0 || n > STORE_EVENTS_MAX || (n && !events))
        return STORE_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!event_in_ok(&events[i]))
            return STORE_INVALID;
    return s->ops->request_processed(s->be, request_id, events, n, event_ids, NULL);
}

enum store_status store_request_processed_corr(struct store *s, int64_t request_id,
                                               const struct store_event_in *events, size_t n,
                                               int64_t *event_ids, const json_t *corr_states)
{
    if (!s || request_id <= 0 || n > STORE_EVENTS_MAX || (n && !events) ||
        (corr_states && !json_is_object(corr_states)))
        return STORE_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!event_in_ok(&events[i]))
            return STORE_INVALID;
    return s->ops->request_processed(s->be, request_id, events, n, event_ids, corr_states);
}

enum store_status store_request_reject(struct store *s, int64_t request_id, const char *error)
{
    if (!s || request_id <= 0)
        return STORE_INVALID;
    return s->ops->request_reject(s->be, request_id, error);
}

enum store_status store_request_requeue(struct store *s, int64_t request_id)
{
    if (!s || request_id <= 0)
        return STORE_INVALID;
    return s->ops->request_requeue(s->be, request_id);
}

enum store_status store_event_plan(struct store *s, int64_t id, json_t **plan)
{
    if (!s || !plan || id <= 0)
        return STORE_INVALID;
    return s->ops->event_plan(s->be, id, plan);
}

enum store_status store_event_get(struct store *s, int64_t id, struct store_event_row *out)
{
    if (!s || !out)
        return STORE_INVALID;
    memset(out, 0, sizeof *out);
    return s->ops->event_get(s->be, id, out);
}

enum store_status store_events_for_request(struct store *s, int64_t request_id,
                                           struct store_event_row **rows, size_t *n)
{
    if (!s || !rows || !n)
        return STORE_INVALID;
    *rows = NULL;
    *n = 0;
    return s->ops->events_for_request(s->be, request_id, rows, n);
}

enum store_status store_event_set_trace(struct store *s, int64_t id, const json_t *trace)
{
    if (!s)
        return STORE_INVALID;
    return s->ops->event_set_trace(s->be, id, trace);
}

enum store_status store_deliveries_due(struct store *s, int64_t now, size_t limit,
                                       struct store_delivery_row **rows, size_t *n)
{
    if (!s || !rows || !n)
        return STORE_INVALID;
    *rows = NULL;
    *n = 0;
    if (list_limit(limit) == 0)
        return STORE_OK;
    return s->ops->deliveries_due(s->be, now, list_limit(limit), rows, n);
}

enum store_status store_delivery_get(struct store *s, int64_t id, struct store_delivery_row *out)
{
    if (!s || !out)
        return STORE_INVALID;
    memset(out, 0, sizeof *out);
    return s->ops->delivery_get(s->be, id, out);
}

enum store_status store_deliveries_for_event(struct store *s, int64_t event_id,
                                             struct store_delivery_row **rows, size_t *n)
{
    if (!s || !rows || !n)
        return STORE_INVALID;
    *rows = NULL;
    *n = 0;
    return s->ops->deliveries_for_event(s->be, event_id, rows, n);
}

static enum store_status dlv_change(struct store *s, int64_t id,
                                    const struct store_delivery_change *c)
{
    if (!s || !str_ok(c->error, 4096, 0))
        return STORE_INVALID;
    return s->ops->delivery_change(s->be, id, c);
}

enum store_status store_delivery_inflight(struct store *s, int64_t id)
{
    struct store_delivery_change c = {.to = STORE_DLV_INFLIGHT};
    return dlv_change(s, id, &c);
}

enum store_status store_delivery_done(struct store *s, int64_t id, int http_status,
                                      const json_t *response, const json_t *corr_state)
{
    struct store_delivery_change c = {.to = STORE_DLV_DONE, .http_status = http_status,
                                      .response = response, .corr_state = corr_state};
    if (corr_state && !json_is_object(corr_state))
        return STORE_INVALID;
    return dlv_change(s, id, &c);
}

enum store_status store_delivery_retry(struct store *s, int64_t id, int64_t next_at,
                                       int http_status, const char *error)
{
    struct store_delivery_change c = {.to = STORE_DLV_RETRY, .next_at = next_at,
                                      .http_status = http_status, .error = error};
    return dlv_change(s, id, &c);
}

enum store_status store_delivery_dead(struct store *s, int64_t id, int http_status,
                                      const char *error)
{
    struct store_delivery_change c = {.to = STORE_DLV_DEAD, .http_status = http_status,
                                      .error = error};
    return dlv_change(s, id, &c);
}

enum store_status store_delivery_unknown(struct store *s, int64_t id, const char *error)
{
    struct store_delivery_change c = {.to = STORE_DLV_UNKNOWN, .error = error};
    return dlv_change(s, id, &c);
}

enum store_status store_delivery_requeue(struct store *s, int64_t id, int64_t now)
{
    if (!s)
        return STORE_INVALID;
    return s->ops->delivery_requeue(s->be, id, now);
}

enum store_status store_deliveries_requeue_dead(struct store *s, int64_t since, int64_t now,
                                                size_t *count)
{
    if (count)
        *count = 0;
    if (!s)
        return STORE_INVALID;
    return s->ops->deliveries_requeue_dead(s->be, since, now, count);
}

/* ---- Correlations, sent mail, kv, outbox -------------------------------------------------- */

enum store_status store_correlation_get(struct store *s, const char *key, json_t **state)
{
    if (state)
        *state = NULL;
    if (!s || !state || !str_ok(key, STORE_KEY_MAX, 1))
        return STORE_INVALID;
    return s->ops->correlation_get(s->be, key, state);
}

enum store_status store_correlation_put(struct store *s, const char *key, const json_t *state)
{
    if (!s || !str_ok(key, STORE_KEY_MAX, 1) || !json_is_object(state))
        return STORE_INVALID;
    return s->ops->correlation_put(s->be, key, state);
}

enum store_status store_sent_mail_put(struct store *s, const char *message_id,
                                      const char *corr_key, int64_t request_id)
{
    if (!s || !str_ok(message_id, STORE_MSGID_MAX, 1) || !str_ok(corr_key, STORE_KEY_MAX, 0) ||
        request_id < 0)
        return STORE_INVALID;
    return s->ops->sent_mail_put(s->be, message_id, corr_key, request_id);
}

enum store_status store_sent_mail_get(struct store *s, const char *message_id,
                                      char **corr_key, int64_t *request_id)
{
    if (corr_key)
        *corr_key = NULL;
    if (request_id)
        *request_id = 0;
    if (!s || !corr_key || !request_id || !str_ok(message_id, STORE_MSGID_MAX, 1))
        return STORE_INVALID;
    return s->ops->sent_mail_get(s->be, message_id, corr_key, request_id);
}

enum store_status store_kv_get(struct store *s, const char *name, char **value)
{
    if (value)
        *value = NULL;
    if (!s || !value || !str_ok(name, STORE_NAME_MAX, 1))
        return STORE_INVALID;
    return s->ops->kv_get(s->be, name, value);
}

enum store_status store_kv_put(struct store *s, const char *name, const char *value)
{
    if (!s || !str_ok(name, STORE_NAME_MAX, 1) || !str_ok(value, STORE_KV_VALUE_MAX, 0) || !value)
        return STORE_INVALID;
    return s->ops->kv_put(s->be, name, value);
}

enum store_status store_outbox_add(struct store *s, const json_t *message,
                                   const char *message_id, int64_t next_at, int64_t *id)
{
    if (!s || !message || !str_ok(message_id, STORE_MSGID_MAX, 0) || next_at < 0)
        return STORE_INVALID;
    return s->ops->outbox_add(s->be, message, message_id, next_at, id);
}

enum store_status store_outbox_due(struct store *s, int64_t now, size_t limit,
                                   struct store_outbox_row **rows, size_t *n)
{
    if (!s || !rows || !n)
        return STORE_INVALID;
    *rows = NULL;
    *n = 0;
    if (list_limit(limit) == 0)
        return STORE_OK;
    return s->ops->outbox_due(s->be, now, list_limit(limit), rows, n);
}

enum store_status store_outbox_mark(struct store *s, int64_t id, enum store_outbox_state state,
                                    int64_t next_at, const char *error)
{
    if (!s || state == STORE_OUT_PENDING || !str_ok(error, 4096, 0))
        return STORE_INVALID;
    return s->ops->outbox_mark(s->be, id, state, next_at, error);
}

/* ---- Metrics and retention ---------------------------------------------------------------- */

enum store_status store_counters(struct store *s, int64_t now, struct store_counters *out)
{
    if (!s || !out)
        return STORE_INVALID;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    out->intake_queued = s->count;
    pthread_mutex_unlock(&s->mu);
    return s->ops->counters(s->be, now, out);
}

enum store_status store_purge(struct store *s, int64_t now, size_t limit,
                              struct store_purge_counts *out)
{
    struct store_purge_counts c = {0};
    if (!s)
        return STORE_INVALID;
    enum store_status st = s->ops->purge(s->be, now, purge_limit(limit), &c);
    if (out && st == STORE_OK)
        counts_add(out, &c);
    return st;
}
