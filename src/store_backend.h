/* store_backend: the seam between store.c (intake queue, writer thread, completions,
 * argument checks) and a storage backend (store_sqlite.c today). Internal to the store:
 * nothing outside store*.c includes it. A backend has a state side, used by one thread at a
 * time (the loop), and a writer side, used only by the intake writer thread. */
#ifndef TB_STORE_BACKEND_H
#define TB_STORE_BACKEND_H

#include "store.h"

/* One accepted intake request, owned by store.c; the backend reads the copy and fills res. */
struct store_intake_item {
    struct store_intake_item *next;
    char *source, *remote_addr, *content_type, *dedup_key; /* all but source may be NULL */
    char *headers_json;                                     /* may be NULL */
    unsigned char *body;                                    /* may be NULL when body_len 0 */
    size_t body_len;
    int64_t received_at;
    char public_id[40];
    size_t bytes;                       /* accounted against queue_max_bytes */
    struct store_intake_result res;     /* set by the backend's write_batch */
    store_intake_cb cb;                 /* NULL for store_intake_sync */
    void *arg;
    int done;                           /* sync waiters: result ready */
};

struct store_backend;
struct store_writer;

/* A change of one delivery's state (see store.h for what each allows). */
struct store_delivery_change {
    enum store_delivery_state to;
    int64_t next_at;           /* RETRY */
    int http_status;           /* DONE, RETRY, DEAD */
    const char *error;         /* RETRY, DEAD, UNKNOWN; may be NULL */
    const json_t *response;    /* DONE; borrowed, may be NULL */
    const json_t *corr_state;  /* DONE; borrowed, may be NULL */
};

struct store_backend_ops {
    const char *name;
    /* Opens/creates, checks, migrates and recovers; o has defaults filled in. NULL + *err. */
    struct store_backend *(*open)(const char *path, const struct store_opts *o, char **err);
    void (*close)(struct store_backend *b);
    /* Writer side: created on the opening thread, then used only by the writer thread. */
    struct store_writer *(*writer_open)(struct store_backend *b, char **err);
    void (*writer_close)(struct store_writer *w);
    /* Writes n items in one transaction, setting every item's res. Returns OK when the
     * transaction committed (some items may still have failed alone), else the error every
     * item then carries. */
    enum store_status (*write_batch)(struct store_writer *w, struct store_intake_item **items,
                                     size_t n);
    enum store_status (*writer_purge)(struct store_writer *w, int64_t now, size_t limit,
                                      struct store_purge_counts *out);
    /* Checkpoints of both files, every 100 ms on the checkpointer thread (its own
     * connections, so intake commits and loop writes never carry one). */
    void (*writer_idle)(struct store_writer *w);

    /* State side. */
    /* Opens a transaction that the operations until batch_end join (each as a savepoint);
     * batch_end commits it (commit != 0) or rolls everything back. Batches do not nest. */
    enum store_status (*batch_begin)(struct store_backend *b);
    enum store_status (*batch_end)(struct store_backend *b, int commit);
    enum store_status (*check_writable)(struct store_backend *b);
    enum store_status (*requests_new)(struct store_backend *b, int64_t after_id, size_t limit,
                                      struct store_request_row **rows, size_t *n);
    /* By id when public_id is NULL. */
    enum store_status (*request_get)(struct store_backend *b, int64_t id, const char *public_id,
                                     struct store_request_row *out);
    enum store_status (*request_processed)(struct store_backend *b, int64_t request_id,
                                           const struct store_event_in *events, size_t n,
                                           int64_t *event_ids, const json_t *corr_states);
    enum store_status (*request_reject)(struct store_backend *b, int64_t request_id,
                                        const char *error);
    enum store_status (*request_requeue)(struct store_backend *b, int64_t request_id);
    enum store_status (*event_plan)(struct store_backend *b, int64_t id, json_t **plan);
    enum store_status (*event_get)(struct store_backend *b, int64_t id,
                                   struct store_event_row *out);
    enum store_status (*events_for_request)(struct store_backend *b, int64_t request_id,
                                            struct store_event_row **rows, size_t *n);
    enum store_status (*event_set_trace)(struct store_backend *b, int64_t id,
                                         const json_t *trace);
    enum store_status (*deliveries_due)(struct store_backend *b, int64_t now, size_t limit,
                                        struct store_delivery_row **rows, size_t *n);
    enum store_status (*delivery_get)(struct store_backend *b, int64_t id,
                                      struct store_delivery_row *out);
    enum store_status (*deliveries_for_event)(struct store_backend *b, int64_t event_id,
                                              struct store_delivery_row **rows, size_t *n);
    enum store_status (*delivery_change)(struct store_backend *b, int64_t id,
                                         const struct store_delivery_change *c);
    enum store_status (*delivery_requeue)(struct store_backend *b, int64_t id, int64_t now);
    enum store_status (*deliveries_requeue_dead)(struct store_backend *b, int64_t since,
                                                 int64_t now, size_t *count);
    enum store_status (*correlation_get)(struct store_backend *b, const char *key,
                                         json_t **state);
    enum store_status (*correlation_put)(struct store_backend *b, const char *key,
                                         const json_t *state);
    enum store_status (*sent_mail_put)(struct store_backend *b, const char *message_id,
                                       const char *corr_key, int64_t request_id);
    enum store_status (*sent_mail_get)(struct store_backend *b, const char *message_id,
                                       char **corr_key, int64_t *request_id);
    enum store_status (*kv_get)(struct store_backend *b, const char *name, char **value);
    enum store_status (*kv_put)(struct store_backend *b, const char *name, const char *value);
    enum store_status (*outbox_add)(struct store_backend *b, const json_t *message,
                                    const char *message_id, int64_t next_at, int64_t *id);
    enum store_status (*outbox_due)(struct store_backend *b, int64_t now, size_t limit,
                                    struct store_outbox_row **rows, size_t *n);
    enum store_status (*outbox_mark)(struct store_backend *b, int64_t id,
                                     enum store_outbox_state state, int64_t next_at,
                                     const char *error);
    enum store_status (*counters)(struct store_backend *b, int64_t now,
                                  struct store_counters *out);
    enum store_status (*purge)(struct store_backend *b, int64_t now, size_t limit,
                               struct store_purge_counts *out);
};

/* The SQLite backend (store_sqlite.c). */
extern const struct store_backend_ops store_sqlite_ops;

#endif
