/* store: durable custody of everything trackbridge accepts and decides — raw requests, events
 * and their plans, deliveries, correlations, the mail outbox and small state (kv).
 * Intake is group-committed with fsync on a writer thread, completions posted back to the
 * event loop; every other call runs on the calling (loop) thread and never waits on an fsync.
 * It does not parse payloads or decide anything: adapters, rules and delivery do. */
#ifndef TB_STORE_H
#define TB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct event_base;
struct store;

/* Every outcome keeps "no" (NOTFOUND, DUPLICATE, CONFLICT, INVALID) apart from "try later"
 * (FULL, UNAVAILABLE). */
enum store_status {
    STORE_OK = 0,
    STORE_NOTFOUND,    /* no such row */
    STORE_DUPLICATE,   /* intake: same (source, dedup key) within retention; id is the first's */
    STORE_CONFLICT,    /* the row exists but its state does not allow this change */
    STORE_INVALID,     /* bad argument, or a value the store cannot hold */
    STORE_FULL,        /* intake queue full or disk full: try later (HTTP 503) */
    STORE_UNAVAILABLE, /* I/O error, locked too long, closing: try later (HTTP 503) */
};

/* Lower-case name of st ("ok", "notfound", ...). Never NULL. */
const char *store_status_str(enum store_status st);
/* 1 when st means "try again later" (FULL, UNAVAILABLE), 0 otherwise. */
int store_status_is_temporary(enum store_status st);

/* Options; a zero field takes the default shown. */
struct store_opts {
    size_t queue_max_count;        /* intake requests accepted, not yet completed: 10000 */
    size_t queue_max_bytes;        /* their bytes (body, headers, strings): 64 MiB */
    size_t batch_max;              /* requests per intake transaction: 512 */
    int64_t dedup_retention_ms;    /* a dedup key holds this long: 3 days */
    int64_t request_retention_ms;  /* settled requests are kept this long: 7 days */
    int64_t done_retention_ms;     /* done events, deliveries, sent mail, closed keys: 7 days */
    int64_t purge_interval_ms;     /* the writer purges the intake file this often: 60 s;
                                      negative: never on its own */
    int busy_timeout_ms;           /* SQLite busy timeout on every connection: 5000 */
    int64_t intake_max_bytes;      /* cap on the intake file (SQLITE_FULL past it): none */
};

/* Opens (creating file and folder, mode 0600/0700) the store at path: the state database at
 * path and the intake database at path + ".intake". Checks that both files belong together
 * and their schema versions (newer than this binary → error), migrates, turns deliveries
 * left inflight by a crash into unknown and mail left sending into retry, then starts the
 * intake writer. base is the loop that runs intake callbacks; NULL allows only
 * store_intake_sync. opts may be NULL. Returns NULL with *err (malloc'd, may be NULL). */
struct store *store_open(const char *path, const struct store_opts *opts,
                         struct event_base *base, char **err);
/* Drains the intake queue (commits what was accepted), runs the remaining callbacks on the
 * calling thread, stops the writer and closes. Call on the loop thread, not from a store
 * callback. NULL is a no-op. */
void store_close(struct store *s);
/* For /readyz: OK when the state database takes a write lock, the writer runs, its queue is
 * not full and its last transaction did not fail; else FULL or UNAVAILABLE. Never blocks on
 * fsync (it may wait up to busy_timeout for another process's lock). */
enum store_status store_check_writable(struct store *s);

/* Batches of state changes: between store_batch_begin and store_batch_commit every state-side
 * operation joins one transaction (each still all-or-nothing on its own), so a loop turn's
 * work costs one commit instead of one per operation. Nothing is visible to other connections,
 * nor durable, before the commit; when the commit fails, every operation of the batch is
 * undone (the caller treats them as not done). Batches do not nest (INVALID) and must not
 * stay open across a turn of the loop. store_batch_rollback undoes the whole batch. */
enum store_status store_batch_begin(struct store *s);
enum store_status store_batch_commit(struct store *s);
enum store_status store_batch_rollback(struct store *s);

/* ---- Intake (custody of raw requests) ------------------------------------------------ */

/* A raw request as the server received it. Everything is borrowed for the call only. */
struct store_request {
    const char *source;       /* required, 1..128 bytes */
    int64_t received_at;      /* ms since the epoch; 0: now */
    const char *remote_addr;  /* may be NULL */
    const char *content_type; /* may be NULL */
    const json_t *headers;    /* borrowed; the relevant headers as an object, may be NULL */
    const void *body;         /* may be NULL when body_len is 0 */
    size_t body_len;
    const char *dedup_key;    /* webhook-id / Idempotency-Key / message id; NULL or "": none */
};

struct store_intake_result {
    enum store_status status; /* OK, DUPLICATE, INVALID, FULL or UNAVAILABLE */
    int64_t id;               /* OK: the new id; DUPLICATE: the first request's id; else 0 */
    char public_id[40];       /* the same as a public string (UUID); "" when id is 0 */
};

/* Runs on the loop thread of store_open's base. res is valid during the call only. */
typedef void (*store_intake_cb)(const struct store_intake_result *res, void *arg);

/* Copies req into the writer's queue; cb runs exactly once. When the request is accepted
 * (return OK) cb runs later on the loop thread after the commit, with OK (fsync'd) or
 * DUPLICATE or an error. When refused (queue full → FULL, closing → UNAVAILABLE, bad
 * request or no loop → INVALID) cb runs before this returns with that status. */
enum store_status store_intake_submit(struct store *s, const struct store_request *req,
                                      store_intake_cb cb, void *arg);
/* Blocking variant for the CLI and tests: waits for the commit (fsync). Same dedup and
 * limits as submit. Returns out->status. Never call it on a loop the store posts to while
 * that loop must stay responsive. */
enum store_status store_intake_sync(struct store *s, const struct store_request *req,
                                    struct store_intake_result *out);
/* hold != 0 stops the writer from taking queued requests until called with 0 (maintenance,
 * and tests that need a full queue). Closing ignores the hold. */
void store_intake_hold(struct store *s, int hold);

struct store_intake_stats {
    uint64_t submitted;     /* accepted into the queue */
    uint64_t stored;        /* committed as new requests */
    uint64_t duplicates;    /* answered DUPLICATE */
    uint64_t refused;       /* refused at submit (FULL, INVALID, UNAVAILABLE) */
    uint64_t failed;        /* accepted but failed in the writer (FULL, UNAVAILABLE) */
    uint64_t commits;       /* intake transactions committed (one WAL fsync each) */
    uint64_t max_batch;     /* most requests written by one transaction */
    size_t queued;          /* accepted, not yet completed */
    size_t queued_bytes;
};
/* Snapshot of the writer's counters. Thread-safe. */
void store_intake_stats(struct store *s, struct store_intake_stats *out);

struct store_purge_counts {
    size_t dedup_keys, requests, request_marks, events, deliveries, outbox, sent_mail,
        correlations;
};
/* Purges the intake file now through the writer (expired dedup keys; settled requests older
 * than request_retention at now), at most limit rows of each kind, adding to *out (may be
 * NULL). Blocks until done (fsync): for the CLI and tests; the writer also does this every
 * purge_interval. */
enum store_status store_intake_purge_sync(struct store *s, int64_t now, size_t limit,
                                          struct store_purge_counts *out);

/* ---- Requests (processing side; loop thread) ----------------------------------------- */

enum store_request_state { STORE_REQ_NEW = 0, STORE_REQ_PROCESSED, STORE_REQ_REJECTED };

struct store_request_row {
    int64_t id;
    char public_id[40];
    char *source;
    int64_t received_at;
    char *remote_addr;   /* may be NULL */
    char *content_type;  /* may be NULL */
    json_t *headers;     /* new reference owned by the row; may be NULL */
    unsigned char *body; /* body_len bytes plus a NUL for convenience; never NULL */
    size_t body_len;
    char *dedup_key;     /* may be NULL */
    enum store_request_state state;
    char *error;         /* rejection reason; may be NULL */
};
/* Frees what a row owns (not the row). */
void store_request_row_clear(struct store_request_row *r);
/* Frees an array returned by a list call (NULL is a no-op). */
void store_request_rows_free(struct store_request_row *rows, size_t n);

/* The oldest new (unsettled) requests with id > after_id, by id, at most limit (≤ 1000).
 * *rows is malloc'd (free with store_request_rows_free), NULL when *n is 0. */
enum store_status store_requests_new(struct store *s, int64_t after_id, size_t limit,
                                     struct store_request_row **rows, size_t *n);
/* One request by id or by public id, into *out (cleared first). NOTFOUND when absent. */
enum store_status store_request_get(struct store *s, int64_t id, struct store_request_row *out);
enum store_status store_request_get_public(struct store *s, const char *public_id,
                                           struct store_request_row *out);

/* ---- Events and deliveries ------------------------------------------------------------- */

enum store_event_state {
    STORE_EV_PLANNED = 0, STORE_EV_DONE, STORE_EV_IGNORED, STORE_EV_FAILED
};
enum store_delivery_state {
    STORE_DLV_PENDING = 0, STORE_DLV_INFLIGHT, STORE_DLV_DONE, STORE_DLV_RETRY,
    STORE_DLV_DEAD, STORE_DLV_UNKNOWN
};

/* One step of a plan to run against TrackplanFM (or the mailer). Borrowed. */
struct store_delivery_in {
    int step;              /* index in the plan; steps of an event run in this order */
    const char *op;        /* operation name, required (≤ 128 bytes) */
    const json_t *payload; /* borrowed; what the step needs to run, may be NULL */
    int64_t next_at;       /* not before (ms); 0: at once */
};

/* One event produced from a request, with its plan and deliveries. Borrowed. */
struct store_event_in {
    int seq;                /* position in the request */
    const char *status;     /* e.g. "firing" / "resolved"; may be NULL */
    const char *key;        /* correlation key; may be NULL (then the event is its own lane) */
    const json_t *event;    /* borrowed; required */
    const char *rule;       /* the matching rule's name; may be NULL */
    const json_t *plan;     /* borrowed; may be NULL */
    const json_t *trace;    /* borrowed; may be NULL */
    enum store_event_state state; /* PLANNED (becomes DONE at once without deliveries),
                                     IGNORED or FAILED */
    const struct store_delivery_in *deliveries;
    size_t n_deliveries;
};

/* In one transaction: inserts the events and their deliveries and marks the request
 * processed. CONFLICT when the request is already settled (nothing written), NOTFOUND when
 * it does not exist. event_ids (may be NULL) receives n ids. */
enum store_status store_request_processed(struct store *s, int64_t request_id,
                                          const struct store_event_in *events, size_t n,
                                          int64_t *event_ids);
/* The same, also storing the correlation states decided while planning (an object key →
 * state, borrowed, may be NULL) in the same transaction, so a key's state never runs ahead
 * of the events and deliveries that act on it. */
enum store_status store_request_processed_corr(struct store *s, int64_t request_id,
                                               const struct store_event_in *events, size_t n,
                                               int64_t *event_ids, const json_t *corr_states);
/* Marks a new request rejected with a reason (bad payload: kept for explain). CONFLICT
 * when already settled, NOTFOUND when absent. */
enum store_status store_request_reject(struct store *s, int64_t request_id, const char *error);
/* Makes a settled request new again (replay); its earlier events stay. NOTFOUND, or
 * CONFLICT when it is already new. */
enum store_status store_request_requeue(struct store *s, int64_t request_id);

struct store_event_row {
    int64_t id, request_id;
    int seq;
    char *source, *status, *key, *rule; /* status, key, rule may be NULL */
    json_t *event, *plan, *trace;       /* new references owned by the row; plan, trace may
                                           be NULL */
    enum store_event_state state;
    int64_t created_at, updated_at;
};
void store_event_row_clear(struct store_event_row *r);
void store_event_rows_free(struct store_event_row *rows, size_t n);
/* One event (with its trace) into *out. NOTFOUND when absent. */
enum store_status store_event_get(struct store *s, int64_t id, struct store_event_row *out);
/* Only the plan of an event: *plan a new reference, NULL when the event has none. NOTFOUND
 * when there is no such event. */
enum store_status store_event_plan(struct store *s, int64_t id, json_t **plan);
/* The events of a request by seq; *rows malloc'd (store_event_rows_free), NULL if *n is 0. */
enum store_status store_events_for_request(struct store *s, int64_t request_id,
                                           struct store_event_row **rows, size_t *n);
/* Replaces an event's trace (borrowed). NOTFOUND when absent. */
enum store_status store_event_set_trace(struct store *s, int64_t id, const json_t *trace);

struct store_delivery_row {
    int64_t id, event_id;
    char *corr_key;    /* may be NULL */
    int step;
    char *op;
    json_t *payload;   /* new reference owned by the row; may be NULL */
    enum store_delivery_state state;
    int attempts;      /* times marked inflight */
    int64_t next_at;
    int last_status;   /* last HTTP status, 0 when none */
    char *last_error;  /* may be NULL */
    json_t *response;  /* new reference owned by the row; may be NULL */
    int64_t created_at, updated_at;
};
void store_delivery_row_clear(struct store_delivery_row *r);
void store_delivery_rows_free(struct store_delivery_row *rows, size_t n);

/* Due deliveries: pending, retry or unknown (outcome to be checked first) with next_at <= now,
 * by id, at most limit (≤ 1000), and only the oldest unfinished delivery of each correlation
 * key (lane), so one key never has two deliveries in flight nor runs out of order: a lane
 * with an inflight or earlier not-yet-due delivery yields nothing. Dead deliveries do not hold their lane. */
enum store_status store_deliveries_due(struct store *s, int64_t now, size_t limit,
                                       struct store_delivery_row **rows, size_t *n);
enum store_status store_delivery_get(struct store *s, int64_t id, struct store_delivery_row *out);
/* The deliveries of an event by step. */
enum store_status store_deliveries_for_event(struct store *s, int64_t event_id,
                                             struct store_delivery_row **rows, size_t *n);

/* State changes. Each returns OK, NOTFOUND, or CONFLICT when the current state does not
 * allow it (nothing changed). The event's state follows: DONE when all its deliveries are
 * done, FAILED while one is dead, PLANNED otherwise. */
/* pending | retry | unknown → inflight; attempts + 1. Only for its lane's head (the oldest
 * unfinished delivery of its key): CONFLICT otherwise. */
enum store_status store_delivery_inflight(struct store *s, int64_t id);
/* inflight | unknown → done, keeping the response (borrowed, may be NULL). When corr_state
 * (borrowed) is not NULL it is stored as the delivery's correlation state in the same
 * transaction (INVALID when the delivery has no correlation key). */
enum store_status store_delivery_done(struct store *s, int64_t id, int http_status,
                                      const json_t *response, const json_t *corr_state);
/* inflight | unknown → retry at next_at. */
enum store_status store_delivery_retry(struct store *s, int64_t id, int64_t next_at,
                                       int http_status, const char *error);
/* pending | retry | inflight | unknown → dead (a dead letter). The later steps of the same
 * event that have not run yet become dead too ("an earlier step failed"). */
enum store_status store_delivery_dead(struct store *s, int64_t id, int http_status,
                                      const char *error);
/* inflight → unknown: the outcome is not known (timeout, crash); the engine searches before
 * sending again. */
enum store_status store_delivery_unknown(struct store *s, int64_t id, const char *error);
/* Replay of one dead letter: it and the later dead steps of its event become pending at
 * now with attempts reset. CONFLICT when it is not dead. */
enum store_status store_delivery_requeue(struct store *s, int64_t id, int64_t now);
/* Replay of every dead letter whose last change is at or after since (0: all); *count
 * (may be NULL) receives how many were requeued. */
enum store_status store_deliveries_requeue_dead(struct store *s, int64_t since, int64_t now,
                                                size_t *count);

/* ---- Correlations, sent mail, kv -------------------------------------------------------- */

/* The state of a correlation key: *state receives a new reference (an object such as
 * {job_request_number, job_guid, tasks, status: open|completed, opened_at, ...}).
 * NOTFOUND when the key is unknown. */
enum store_status store_correlation_get(struct store *s, const char *key, json_t **state);
/* Stores state (borrowed, an object) for key, replacing any earlier state. */
enum store_status store_correlation_put(struct store *s, const char *key, const json_t *state);

/* Remembers a Message-ID we sent, with its correlation key and request (either may be
 * NULL / 0), for threading replies. */
enum store_status store_sent_mail_put(struct store *s, const char *message_id,
                                      const char *corr_key, int64_t request_id);
/* *corr_key receives a malloc'd copy or NULL; *request_id 0 when none. NOTFOUND. */
enum store_status store_sent_mail_get(struct store *s, const char *message_id,
                                      char **corr_key, int64_t *request_id);

/* Small named values (e.g. IMAP UIDs per mailbox). get: *value malloc'd; NOTFOUND. */
enum store_status store_kv_get(struct store *s, const char *name, char **value);
enum store_status store_kv_put(struct store *s, const char *name, const char *value);

/* ---- Mail outbox ---------------------------------------------------------------------- */

enum store_outbox_state {
    STORE_OUT_PENDING = 0, STORE_OUT_SENDING, STORE_OUT_SENT, STORE_OUT_RETRY, STORE_OUT_DEAD
};
struct store_outbox_row {
    int64_t id;
    json_t *message;     /* new reference owned by the row */
    char *message_id;    /* may be NULL */
    enum store_outbox_state state;
    int attempts;        /* times marked sending */
    int64_t next_at;
    char *error;         /* may be NULL */
    int64_t created_at, updated_at;
};
void store_outbox_row_clear(struct store_outbox_row *r);
void store_outbox_rows_free(struct store_outbox_row *rows, size_t n);

/* Queues a message (borrowed JSON) to send at next_at (0: at once); *id may be NULL. */
enum store_status store_outbox_add(struct store *s, const json_t *message,
                                   const char *message_id, int64_t next_at, int64_t *id);
/* Pending or retry messages with next_at <= now, by id, at most limit (≤ 1000). */
enum store_status store_outbox_due(struct store *s, int64_t now, size_t limit,
                                   struct store_outbox_row **rows, size_t *n);
/* Moves a message to state: SENDING (from pending | retry; attempts + 1), SENT (from
 * sending), RETRY at next_at (from sending), DEAD (from anything but sent). error may be
 * NULL. OK, NOTFOUND, CONFLICT, or INVALID for PENDING. */
enum store_status store_outbox_mark(struct store *s, int64_t id, enum store_outbox_state state,
                                    int64_t next_at, const char *error);

/* ---- Metrics and retention ------------------------------------------------------------ */

struct store_counters {
    int64_t requests_new;          /* requests not yet settled */
    int64_t oldest_new_age_ms;     /* now - received_at of the oldest; 0 when none */
    int64_t deliveries_pending;    /* pending + retry */
    int64_t deliveries_inflight;
    int64_t deliveries_unknown;
    int64_t deliveries_dead;
    int64_t oldest_pending_age_ms; /* now - created_at of the oldest pending/retry; 0 if none */
    int64_t outbox_pending;        /* pending + retry + sending */
    int64_t outbox_dead;
    size_t intake_queued;          /* accepted, not yet committed */
};
enum store_status store_counters(struct store *s, int64_t now, struct store_counters *out);

/* Purges the state database (no fsync): done or ignored events older than done_retention at
 * now with their deliveries, sent mail and remembered Message-IDs as old, completed
 * correlations as old, and request marks whose request is gone. At most limit rows of each
 * kind; adds to *out (may be NULL). Dead letters are never purged. */
enum store_status store_purge(struct store *s, int64_t now, size_t limit,
                              struct store_purge_counts *out);

#endif
