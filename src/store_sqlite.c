/* store_sqlite: the SQLite backend of the store (see store.h, store_backend.h).
 * Two files in WAL mode: the intake file (requests, dedup keys), written only by the intake
 * writer with synchronous=FULL, and the state file (request marks, events, deliveries,
 * correlations, outbox, sent Message-IDs, kv), written by the loop thread with
 * synchronous=NORMAL. Separate files keep the loop from ever waiting on the writer's lock,
 * which is held through each commit's fsync. */
#include "store_backend.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"
#include "common/util.h"

#define SQ_FLOOR_KEY "store.requests_floor"
#define SQ_DEAD_CASCADE "an earlier step failed"
/* The checkpointer checkpoints a file once its WAL holds this many frames (SQLite's own
 * autocheckpoint default); past the second figure, writes kept the WAL from restarting and it
 * forces a restart (blocking writes for the short remainder). */
#define SQ_STATE_CKPT_FRAMES 1000
#define SQ_STATE_FORCE_FRAMES 8000

struct store_backend {
    sqlite3 *db;      /* state connection: state file as main, intake file attached */
    sqlite3 *intake;  /* intake connection until writer_open takes it */
    char *path, *intake_path;
    struct store_opts o;
    int64_t floor;    /* every request id <= floor is settled or gone */
    atomic_int state_frames; /* frames in the state WAL after the loop's last commit */
    int batch;        /* a batch transaction is open (store_batch_begin) */
    int batch_failed; /* an operation of the batch failed after writing: it cannot commit */
    sqlite3_int64 tx_changes; /* sqlite3_total_changes64 when the operation began */
};

struct store_writer {
    sqlite3 *db;      /* intake file, synchronous=FULL */
    sqlite3 *aux;     /* state file: request marks for purge */
    sqlite3 *ck_intake, *ck_state; /* the checkpointer's (writer_idle) */
    atomic_int intake_frames;      /* frames in the intake WAL after the writer's last commit */
    struct store_backend *b; /* outlives the writer: read for state_frames only */
    int ck_frames;           /* frames in the state WAL after ck_state's last commit */
    sqlite3_stmt *sel_dedup, *ins_req, *put_dedup;
    struct store_opts o;
};

/* ---- Schemas ---------------------------------------------------------------------------- */

/* The states of a delivery that still has work ahead (its lane waits for it), and of one that
 * may be started; exactly the predicates of the partial indexes deliveries_open and
 * deliveries_runnable, which a query must repeat word for word to use them. */
#define SQ_DLV_OPEN "(state = 'pending' OR state = 'retry' OR state = 'inflight' OR state = 'unknown')"
#define SQ_DLV_RUNNABLE "(state = 'pending' OR state = 'retry' OR state = 'unknown')"

/* Migrations, applied in order; user_version is the number applied. Never edit a shipped
 * step: append a new one. */
static const char *const state_migrations[] = {
    /* 1 */
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE request_marks ("
    "  request_id INTEGER PRIMARY KEY,"
    "  state TEXT NOT NULL CHECK (state IN ('processed','rejected')),"
    "  error TEXT,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX request_marks_age ON request_marks(updated_at);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  request_id INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  source TEXT NOT NULL,"
    "  status TEXT,"
    "  key TEXT,"
    "  event TEXT NOT NULL,"
    "  rule TEXT,"
    "  plan TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('planned','done','ignored','failed')),"
    "  trace TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX events_request ON events(request_id, seq);"
    "CREATE INDEX events_settled ON events(updated_at) WHERE state IN ('done','ignored');"
    "CREATE TABLE deliveries ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  event_id INTEGER NOT NULL,"
    "  corr_key TEXT,"
    "  lane TEXT NOT NULL,"
    "  step INTEGER NOT NULL,"
    "  op TEXT NOT NULL,"
    "  payload TEXT,"
    "  state TEXT NOT NULL CHECK (state IN"
    "    ('pending','inflight','done','retry','dead','unknown')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  response TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX deliveries_event ON deliveries(event_id, step);"
    "CREATE INDEX deliveries_open ON deliveries(lane, id)"
    "  WHERE state IN ('pending','retry','inflight','unknown');"
    "CREATE INDEX deliveries_due ON deliveries(next_at) WHERE state IN ('pending','retry');"
    "CREATE INDEX deliveries_state ON deliveries(state, updated_at);"
    "CREATE TABLE correlations ("
    "  key TEXT PRIMARY KEY,"
    "  state TEXT NOT NULL,"
    "  status TEXT,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX correlations_closed ON correlations(updated_at) WHERE status = 'completed';"
    "CREATE TABLE mail_outbox ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  message TEXT NOT NULL,"
    "  message_id TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('pending','sending','sent','retry','dead')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL,"
    "  error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX outbox_due ON mail_outbox(next_at) WHERE state IN ('pending','retry');"
    "CREATE INDEX outbox_state ON mail_outbox(state, updated_at);"
    "CREATE TABLE sent_mail_ids ("
    "  message_id TEXT PRIMARY KEY,"
    "  corr_key TEXT,"
    "  request_id INTEGER,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX sent_mail_age ON sent_mail_ids(created_at);"
    "CREATE TABLE kv (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL);",
    /* 2: the due query walks runnable deliveries in id order and stops at its LIMIT, instead
     * of visiting every delivery ever made (done ones included). */
    "CREATE INDEX deliveries_runnable ON deliveries(id)"
    "  WHERE state IN ('pending','retry','unknown');"
    "DROP INDEX deliveries_due;",
    /* 3: the same tables with states tested by OR instead of IN. SQLite builds a temporary
     * b-tree for every IN list of more than two values on every statement that evaluates
     * it, and each delivery state change evaluated five (its CHECK and two partial indexes,
     * old and new row): a state change cost 20 us instead of 5. The ids' sequences are kept,
     * so a [tb:N] marker is never handed out twice. */
    "CREATE TABLE deliveries_new ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  event_id INTEGER NOT NULL,"
    "  corr_key TEXT,"
    "  lane TEXT NOT NULL,"
    "  step INTEGER NOT NULL,"
    "  op TEXT NOT NULL,"
    "  payload TEXT,"
    "  state TEXT NOT NULL CHECK (state = 'pending' OR state = 'inflight' OR state = 'done'"
    "    OR state = 'retry' OR state = 'dead' OR state = 'unknown'),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  response TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "INSERT INTO deliveries_new SELECT id, event_id, corr_key, lane, step, op, payload, state,"
    "  attempts, next_at, last_status, last_error, response, created_at, updated_at"
    "  FROM deliveries;"
    "CREATE TABLE events_new ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  request_id INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  source TEXT NOT NULL,"
    "  status TEXT,"
    "  key TEXT,"
    "  event TEXT NOT NULL,"
    "  rule TEXT,"
    "  plan TEXT,"
    "  state TEXT NOT NULL CHECK (state = 'planned' OR state = 'done' OR state = 'ignored'"
    "    OR state = 'failed'),"
    "  trace TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "INSERT INTO events_new SELECT id, request_id, seq, source, status, key, event, rule, plan,"
    "  state, trace, created_at, updated_at FROM events;"
    "INSERT INTO sqlite_sequence(name, seq) SELECT t.n, 0 FROM (SELECT 'deliveries_new' AS n"
    "  UNION ALL SELECT 'events_new') t"
    "  WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence q WHERE q.name = t.n);"
    "UPDATE sqlite_sequence SET seq = (SELECT max(q.seq) FROM sqlite_sequence q"
    "  WHERE q.name = 'deliveries' OR q.name = 'deliveries_new') WHERE name = 'deliveries_new';"
    "UPDATE sqlite_sequence SET seq = (SELECT max(q.seq) FROM sqlite_sequence q"
    "  WHERE q.name = 'events' OR q.name = 'events_new') WHERE name = 'events_new';"
    "DROP TABLE deliveries;"
    "DROP TABLE events;"
    "ALTER TABLE deliveries_new RENAME TO deliveries;"
    "ALTER TABLE events_new RENAME TO events;"
    "CREATE INDEX events_request ON events(request_id, seq);"
    "CREATE INDEX events_settled ON events(updated_at) WHERE state = 'done' OR state = 'ignored';"
    "CREATE INDEX deliveries_event ON deliveries(event_id, step);"
    "CREATE INDEX deliveries_open ON deliveries(lane, id) WHERE " SQ_DLV_OPEN ";"
    "CREATE INDEX deliveries_runnable ON deliveries(id) WHERE " SQ_DLV_RUNNABLE ";"
    "CREATE INDEX deliveries_state ON deliveries(state, updated_at);",
};

static const char *const intake_migrations[] = {
    /* 1 */
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE requests ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  public_id TEXT NOT NULL UNIQUE,"
    "  source TEXT NOT NULL,"
    "  received_at INTEGER NOT NULL,"
    "  remote_addr TEXT,"
    "  content_type TEXT,"
    "  headers TEXT,"
    "  body BLOB NOT NULL,"
    "  dedup_key TEXT);"
    "CREATE INDEX requests_received ON requests(received_at);"
    "CREATE TABLE dedup ("
    "  source TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  request_id INTEGER NOT NULL,"
    "  public_id TEXT NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  PRIMARY KEY (source, key)) WITHOUT ROWID;"
    "CREATE INDEX dedup_expiry ON dedup(expires_at);",
};

#define N_STATE_MIGRATIONS ((int)(sizeof state_migrations / sizeof state_migrations[0]))
#define N_INTAKE_MIGRATIONS ((int)(sizeof intake_migrations / sizeof intake_migrations[0]))

/* ---- Small helpers ---------------------------------------------------------------------- */

static enum store_status sq_status(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_FULL:
        return STORE_FULL;
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_CONSTRAINT:
        return STORE_INVALID;
    default:
        return STORE_UNAVAILABLE;
    }
}

/* Logs a database failure: the operation and SQLite's message, never bound values. */
static void sq_log(sqlite3 *db, const char *what, int rc)
{
    char code[16];
    snprintf(code, sizeof code, "%d", rc);
    log_warn("store: database error", "op", what, "code", code, "error",
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Maps rc to a status, logging real failures (not constraint outcomes the caller maps). */
static enum store_status sq_fail(sqlite3 *db, const char *what, int rc)
{
    sq_log(db, what, rc);
    return sq_status(rc);
}

static int sq_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Steps a statement that returns no rows: SQLITE_OK or the error. */
static int sq_run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void sq_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sq_exec(db, "ROLLBACK");
}

/* Binds text (SQLITE_STATIC: callers keep it alive until the statement is reset) or NULL.
 * Indexes past the statement's parameters are ignored, so one numbering fits several SQL
 * texts. */
static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (i > sqlite3_bind_parameter_count(st))
        return SQLITE_OK;
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int bind_i64(sqlite3_stmt *st, int i, int64_t v)
{
    if (i > sqlite3_bind_parameter_count(st))
        return SQLITE_OK;
    return sqlite3_bind_int64(st, i, v);
}

/* Binds the compact serialisation of j (borrowed), or NULL. */
static int bind_json(sqlite3_stmt *st, int i, const json_t *j)
{
    if (i > sqlite3_bind_parameter_count(st))
        return SQLITE_OK;
    if (!j)
        return sqlite3_bind_null(st, i);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return SQLITE_NOMEM;
    return sqlite3_bind_text(st, i, s, -1, free); /* SQLite frees s, even on failure */
}

static char *col_str(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    return t ? util_strndup((const char *)t, (size_t)n) : NULL;
}

/* A new reference parsed from a JSON text column, or NULL (NULL column or bad JSON). */
static json_t *col_json(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    return t ? json_loadb((const char *)t, (size_t)n, JSON_DECODE_ANY, NULL) : NULL;
}

static void col_public_id(sqlite3_stmt *st, int i, char out[40])
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, 40, "%s", t ? (const char *)t : "");
}

/* Grows *arr (elements of size elem) to hold n + 1; 0 or -1. New slots are zeroed. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    memset((char *)p + *cap * elem, 0, (ncap - *cap) * elem);
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Prepared statements of the hot paths (delivery state changes, look-ups by id, lists) are
 * kept per connection instead of being parsed again on every call: parsing was a quarter of
 * the event loop's time under load. Only SQL with static storage may be cached (the key is
 * the text's address); every user hands the statement back with sq_unprep, which resets it.
 * Connections are used by one thread each; the table itself is shared, hence the mutex. */
#define SQ_CACHE_MAX 96

static struct {
    sqlite3 *db;
    const char *sql;
    sqlite3_stmt *st;
    int busy;
} sq_cache[SQ_CACHE_MAX];
static pthread_mutex_t sq_cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* Like sqlite3_prepare_v2 for a static SQL text: a cached statement when there is one. */
static int sq_prep(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    int free_slot = -1;
    pthread_mutex_lock(&sq_cache_lock);
    for (int i = 0; i < SQ_CACHE_MAX; i++) {
        if (sq_cache[i].db == db && sq_cache[i].sql == sql && !sq_cache[i].busy) {
            sq_cache[i].busy = 1;
            *st = sq_cache[i].st;
            pthread_mutex_unlock(&sq_cache_lock);
            return SQLITE_OK;
        }
        if (!sq_cache[i].db && free_slot < 0)
            free_slot = i;
    }
    if (free_slot >= 0) /* reserve it before leaving the lock */
        sq_cache[free_slot].db = db;
    pthread_mutex_unlock(&sq_cache_lock);
    int rc = sqlite3_prepare_v3(db, sql, -1, free_slot >= 0 ? SQLITE_PREPARE_PERSISTENT : 0, st,
                                NULL);
    if (free_slot >= 0) {
        pthread_mutex_lock(&sq_cache_lock);
        if (rc == SQLITE_OK) {
            sq_cache[free_slot].sql = sql;
            sq_cache[free_slot].st = *st;
            sq_cache[free_slot].busy = 1;
        } else {
            sq_cache[free_slot].db = NULL;
        }
        pthread_mutex_unlock(&sq_cache_lock);
    }
    return rc;
}

/* Hands back a statement from sq_prep (reset for the next use) or finalizes one that is not
 * cached. NULL is a no-op. */
static void sq_unprep(sqlite3_stmt *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&sq_cache_lock);
    for (int i = 0; i < SQ_CACHE_MAX; i++) {
        if (sq_cache[i].st == st && sq_cache[i].busy) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            sq_cache[i].busy = 0;
            pthread_mutex_unlock(&sq_cache_lock);
            return;
        }
    }
    pthread_mutex_unlock(&sq_cache_lock);
    sqlite3_finalize(st);
}

/* Finalizes the cached statements of db; call before closing it. */
static void sq_cache_drop(sqlite3 *db)
{
    pthread_mutex_lock(&sq_cache_lock);
    for (int i = 0; i < SQ_CACHE_MAX; i++) {
        if (sq_cache[i].db == db) {
            if (sq_cache[i].st)
                sqlite3_finalize(sq_cache[i].st);
            memset(&sq_cache[i], 0, sizeof sq_cache[i]);
        }
    }
    pthread_mutex_unlock(&sq_cache_lock);
}

/* Runs a static statement that returns nothing through the cache; SQLITE_OK or the error. */
static int sq_do(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(db, sql, &st);
    if (rc == SQLITE_OK)
        rc = sq_run(st);
    sq_unprep(st);
    return rc;
}

/* Transactions of the state connection. Each operation runs in its own transaction, or
 * inside a batch (store_batch_begin) in the batch's. An operation of a batch that fails after
 * it wrote something cannot be undone alone (savepoints cost a fifth of a delivery's time),
 * so it fails the whole batch: batch_end then rolls everything back and reports it, and the
 * caller does the work again one operation at a time. Failures that wrote nothing (a
 * conflict, a missing row) leave the batch alone. */
static const char SQL_BEGIN[] = "BEGIN", SQL_BEGIN_WRITE[] = "BEGIN IMMEDIATE",
                  SQL_COMMIT[] = "COMMIT";

static int tx_begin(struct store_backend *b)
{
    b->tx_changes = sqlite3_total_changes64(b->db);
    return b->batch ? SQLITE_OK : sq_do(b->db, SQL_BEGIN);
}

static int tx_commit(struct store_backend *b)
{
    return b->batch ? SQLITE_OK : sq_do(b->db, SQL_COMMIT);
}

static void tx_rollback(struct store_backend *b)
{
    if (!b->batch)
        sq_rollback(b->db);
    else if (sqlite3_total_changes64(b->db) != b->tx_changes)
        b->batch_failed = 1;
}

/* Reads one integer from a query (bound with one optional integer); 0 or an SQLite rc. */
static int sq_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = SQLITE_OK;
    }
out:
    sq_unprep(st);
    return rc;
}

/* Reads the current row of st into row (a zeroed slot): 0, or -1 when memory ran out, with
 * nothing left to free in the slot. */
typedef int (*sq_read_fn)(sqlite3_stmt *st, void *row);
/* Frees n rows read into rows, then rows. */
typedef void (*sq_free_fn)(void *rows, size_t n);

/* Steps st to its end, reading each row with read_row into a new slot of elem bytes at the
 * end of *arr (NULL, with *n 0, on entry). SQLITE_OK, SQLITE_NOMEM or the step's error; *arr
 * and *n hold the rows read either way. */
static int step_rows(sqlite3_stmt *st, size_t elem, sq_read_fn read_row, void **arr, size_t *n)
{
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (grow(arr, &cap, *n, elem) < 0 || read_row(st, (char *)*arr + *n * elem) < 0)
            return SQLITE_NOMEM;
        (*n)++;
    }
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* An sq_read_fn for one integer column. */
static int read_i64(sqlite3_stmt *st, void *row)
{
    *(int64_t *)row = sqlite3_column_int64(st, 0);
    return 0;
}

/* Runs a list query with the integers p1, p2 as ?1, ?2 (those it has). OK: *rows is a new
 * array of elem-byte rows (NULL when *n is 0). Otherwise no rows, the failure logged as what. */
static enum store_status sq_list(sqlite3 *db, const char *what, const char *sql, int64_t p1,
                                 int64_t p2, size_t elem, sq_read_fn read_row,
                                 sq_free_fn free_rows, void **rows, size_t *n)
{
    sqlite3_stmt *st = NULL;
    void *arr = NULL;
    size_t cnt = 0;
    enum store_status ret = STORE_OK;
    int rc = sq_prep(db, sql, &st);
    if (rc == SQLITE_OK) {
        bind_i64(st, 1, p1);
        bind_i64(st, 2, p2);
        rc = step_rows(st, elem, read_row, &arr, &cnt);
    }
    if (rc != SQLITE_OK) {
        ret = sq_fail(db, what, rc);
        free_rows(arr, cnt);
        arr = NULL;
        cnt = 0;
    }
    *rows = arr;
    *n = cnt;
    sq_unprep(st);
    return ret;
}

/* Finishes a one-row lookup: st is prepared and bound, rc the first failure so far. Calls
 * read_row on the row (ctx as its slot); NOTFOUND when there is none. Logs failures as what;
 * finalizes st. */
static enum store_status lookup_row(sqlite3 *db, const char *what, sqlite3_stmt *st, int rc,
                                    sq_read_fn read_row, void *ctx)
{
    enum store_status ret = STORE_OK;
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            ret = STORE_NOTFOUND;
            rc = SQLITE_OK;
        } else if (rc == SQLITE_ROW) {
            rc = read_row(st, ctx) < 0 ? SQLITE_NOMEM : SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK)
        ret = sq_fail(db, what, rc);
    sq_unprep(st);
    return ret;
}

/* Finishes a write: st is prepared and bound, rc the first failure so far. Runs it, logs a
 * failure as what and finalizes st; sqlite3_changes and sqlite3_last_insert_rowid still
 * describe the write afterwards. */
static enum store_status write_row(sqlite3 *db, const char *what, sqlite3_stmt *st, int rc)
{
    enum store_status ret = STORE_OK;
    if (rc == SQLITE_OK)
        rc = sq_run(st);
    if (rc != SQLITE_OK)
        ret = sq_fail(db, what, rc);
    sq_unprep(st);
    return ret;
}

/* Prepares and runs sql with the integers p1, p2, p3 as ?1, ?2, ?3 (those it has);
 * SQLITE_OK or the error. */
static int run_ints(sqlite3 *db, const char *sql, int64_t p1, int64_t p2, int64_t p3)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(db, sql, &st);
    if (rc == SQLITE_OK) {
        bind_i64(st, 1, p1);
        bind_i64(st, 2, p2);
        bind_i64(st, 3, p3);
        rc = sq_run(st);
    }
    sq_unprep(st);
    return rc;
}

/* Counts the rows of table with this id (0 or 1) into *exists; SQLITE_OK or the error. */
static int row_exists(sqlite3 *db, const char *table, int64_t id, int64_t *exists)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE id = %lld", table, (long long)id);
    return sq_int(db, sql, exists);
}

/* After a conditional update of row id of table changed nothing: NOTFOUND when the row does
 * not exist, CONFLICT when it does (in another state). A failed lookup is logged as what. */
static enum store_status row_missing(sqlite3 *db, const char *table, int64_t id,
                                     const char *what)
{
    int64_t exists = 0;
    int rc = row_exists(db, table, id, &exists);
    if (rc != SQLITE_OK)
        return sq_fail(db, what, rc);
    return exists ? STORE_CONFLICT : STORE_NOTFOUND;
}

/* write_row for an update of row id: when it changed nothing, NOTFOUND, or with table (for a
 * conditional update) row_missing's answer. */
static enum store_status update_row(sqlite3 *db, const char *what, sqlite3_stmt *st, int rc,
                                    const char *table, int64_t id)
{
    enum store_status ret = write_row(db, what, st, rc);
    if (ret == STORE_OK && sqlite3_changes(db) == 0)
        ret = table ? row_missing(db, table, id, what) : STORE_NOTFOUND;
    return ret;
}

static int64_t add_sat(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

static const char *const dlv_names[] = {"pending", "inflight", "done", "retry", "dead",
                                        "unknown"};
static const char *const ev_names[] = {"planned", "done", "ignored", "failed"};
static const char *const out_names[] = {"pending", "sending", "sent", "retry", "dead"};

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return 0;
}

/* ---- Opening ---------------------------------------------------------------------------- */

/* Creates the folders above path (mode 0700). 0 or -1 (errno). */
static int mkdir_parents(const char *path)
{
    char *copy = util_strdup(path);
    int ret = -1;
    if (!copy)
        goto out;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) < 0 && errno != EEXIST)
            goto out;
        *p = '/';
    }
    ret = 0;
out:
    free(copy);
    return ret;
}

/* Creates path with mode 0600 when missing. 0 or -1 (errno). */
static int ensure_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

/* Busy handler: waits in 0.2 ms steps for the first 10 ms, then 2 ms steps, up to the
 * timeout (arg) — SQLite's default sleeps coarsely, so short lock holds cost little. */
static int sq_busy(void *arg, int count)
{
    int64_t timeout = (int64_t)(intptr_t)arg;
    int64_t waited_us = count < 50 ? (int64_t)count * 200 : 10000 + (int64_t)(count - 50) * 2000;
    if (waited_us >= timeout * 1000)
        return 0;
    usleep(count < 50 ? 200 : 2000);
    return 1;
}

/* Opens a WAL connection on an existing file. sync_full selects synchronous=FULL. */
static int sq_connect(const char *path, int sync_full, const struct store_opts *o,
                      sqlite3 **out, char **err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_handler(db, sq_busy, (void *)(intptr_t)o->busy_timeout_ms);
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        goto fail;
    const unsigned char *mode = sqlite3_column_text(st, 0);
    if (!mode || strcmp((const char *)mode, "wal") != 0) {
        rc = SQLITE_ERROR;
        goto fail;
    }
    sq_unprep(st);
    st = NULL;
    rc = sq_exec(db, sync_full ? "PRAGMA synchronous=FULL; PRAGMA journal_size_limit=16777216"
                               : "PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=16777216");
    if (rc != SQLITE_OK)
        goto fail;
    *out = db;
    return 0;
fail:
    *err = util_asprintf("%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sq_unprep(st);
    sqlite3_close_v2(db);
    return -1;
}

/* Applies the missing migrations, each in its own transaction; refuses a newer schema. */
static int sq_migrate(sqlite3 *db, const char *path, const char *const *steps, int nsteps,
                      char **err)
{
    int64_t v = 0;
    int rc = sq_int(db, "PRAGMA user_version", &v);
    if (rc != SQLITE_OK)
        goto fail;
    if (v > nsteps || v < 0) {
        *err = util_asprintf("%s: schema version %lld is newer than this program knows (%d); "
                             "run a newer trackbridge", path, (long long)v, nsteps);
        return -1;
    }
    for (int i = (int)v; i < nsteps; i++) {
        rc = sq_exec(db, "BEGIN IMMEDIATE");
        if (rc != SQLITE_OK)
            goto fail;
        int64_t now_v = 0; /* another process may have migrated meanwhile */
        rc = sq_int(db, "PRAGMA user_version", &now_v);
        if (rc != SQLITE_OK)
            goto fail;
        if (now_v <= i) {
            rc = sq_exec(db, steps[i]);
            if (rc != SQLITE_OK)
                goto fail;
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version=%d", i + 1);
            rc = sq_exec(db, sql);
            if (rc != SQLITE_OK)
                goto fail;
        }
        rc = sq_exec(db, "COMMIT");
        if (rc != SQLITE_OK)
            goto fail;
    }
    return 0;
fail:
    *err = util_asprintf("%s: migration failed: %s", path, sqlite3_errmsg(db));
    sq_rollback(db);
    return -1;
}

static int meta_get(sqlite3 *db, const char *name, char **out)
{
    sqlite3_stmt *st = NULL;
    *out = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto out;
    bind_text(st, 1, name);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = col_str(st, 0);
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
out:
    sq_unprep(st);
    return rc;
}

static int meta_put(sqlite3 *db, const char *name, const char *value)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(name, value) VALUES (?1, ?2)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto out;
    bind_text(st, 1, name);
    bind_text(st, 2, value);
    rc = sq_run(st);
out:
    sq_unprep(st);
    return rc;
}

/* Both files carry the same store id, written when the pair is created. A missing or foreign
 * half (restored alone, deleted) would make new requests collide with settled ids or old
 * requests run again, so it is refused unless both halves hold no data yet. */
static int sq_pair(struct store_backend *b, char **err)
{
    char *sid = NULL, *iid = NULL;
    int64_t seq = 0, state_data = 0, max_mark = 0;
    int ret = -1;
    if (meta_get(b->db, "store_id", &sid) != SQLITE_OK ||
        meta_get(b->intake, "store_id", &iid) != SQLITE_OK ||
        sq_int(b->intake, "SELECT coalesce((SELECT seq FROM sqlite_sequence "
                          "WHERE name = 'requests'), 0)", &seq) != SQLITE_OK ||
        sq_int(b->db, "SELECT EXISTS (SELECT 1 FROM request_marks) OR "
                      "EXISTS (SELECT 1 FROM events)", &state_data) != SQLITE_OK ||
        sq_int(b->db, "SELECT coalesce(max(request_id), 0) FROM request_marks",
               &max_mark) != SQLITE_OK) {
        *err = util_asprintf("%s: cannot read store identity: %s", b->path,
                             sqlite3_errmsg(b->db));
        goto out;
    }
    if (sid && iid && strcmp(sid, iid) == 0) {
        if (max_mark > seq) {
            *err = util_asprintf("%s: the intake file %s is older than the state file "
                                 "(restored alone?); restore both files together", b->path,
                                 b->intake_path);
            goto out;
        }
        ret = 0;
        goto out;
    }
    if ((sid && iid) || seq > 0 || state_data) {
        *err = util_asprintf("%s and %s do not belong together (one was replaced or "
                             "removed); restore both files together or move both away",
                             b->path, b->intake_path);
        goto out;
    }
    char id[37];
    if (sid)
        snprintf(id, sizeof id, "%s", sid);
    else if (iid)
        snprintf(id, sizeof id, "%s", iid);
    else
        util_uuid4(id);
    if (meta_put(b->intake, "store_id", id) != SQLITE_OK ||
        meta_put(b->db, "store_id", id) != SQLITE_OK) {
        *err = util_asprintf("%s: cannot write store identity: %s", b->path,
                             sqlite3_errmsg(b->db));
        goto out;
    }
    ret = 0;
out:
    free(sid);
    free(iid);
    return ret;
}

/* Crash recovery: a delivery inflight when the process stopped has an unknown outcome; mail
 * being handed to the MTA is retried. */
static int sq_recover(struct store_backend *b, char **err)
{
    int64_t now = util_now_ms();
    int rc = run_ints(b->db,
                      "UPDATE deliveries SET state = 'unknown', updated_at = ?1, "
                      "last_error = 'interrupted while in flight' "
                      "WHERE state = 'inflight'", now, 0, 0);
    if (rc != SQLITE_OK)
        goto fail;
    int n = sqlite3_changes(b->db);
    if (n > 0) {
        char num[24];
        snprintf(num, sizeof num, "%d", n);
        log_warn("store: deliveries interrupted in flight are now unknown", "count", num);
    }
    rc = run_ints(b->db,
                  "UPDATE mail_outbox SET state = 'retry', next_at = ?1, "
                  "updated_at = ?1 WHERE state = 'sending'", now, 0, 0);
    if (rc != SQLITE_OK)
        goto fail;
    return 0;
fail:
    *err = util_asprintf("%s: recovery failed: %s", b->path, sqlite3_errmsg(b->db));
    return -1;
}

static enum store_status kv_get_db(sqlite3 *db, const char *name, char **value);
static enum store_status kv_put_db(sqlite3 *db, const char *name, const char *value);

static void sq_close(struct store_backend *b);

/* Runs on the loop thread after each state commit; replaces SQLite's autocheckpoint. */
static int state_wal_hook(void *arg, sqlite3 *db, const char *schema, int frames)
{
    struct store_backend *b = arg;
    (void)db;
    if (strcmp(schema, "main") == 0)
        atomic_store(&b->state_frames, frames);
    return SQLITE_OK;
}

static struct store_backend *sq_open(const char *path, const struct store_opts *o, char **err)
{
    struct store_backend *b = calloc(1, sizeof *b);
    sqlite3_stmt *st = NULL;
    char *floor_s = NULL;
    if (!b) {
        *err = util_strdup("out of memory");
        goto fail;
    }
    b->o = *o;
    b->path = util_strdup(path);
    b->intake_path = util_asprintf("%s.intake", path);
    if (!b->path || !b->intake_path) {
        *err = util_strdup("out of memory");
        goto fail;
    }
    if (mkdir_parents(path) < 0 || ensure_file(path) < 0 || ensure_file(b->intake_path) < 0) {
        *err = util_asprintf("%s: %s", path, strerror(errno));
        goto fail;
    }
    if (sq_connect(path, 0, o, &b->db, err) < 0 ||
        sq_connect(b->intake_path, 1, o, &b->intake, err) < 0)
        goto fail;
    /* The loop's connection never checkpoints (a checkpoint fsyncs): the writer does. */
    if (sq_exec(b->db, "PRAGMA wal_autocheckpoint=0") != SQLITE_OK) {
        *err = util_asprintf("%s: %s", path, sqlite3_errmsg(b->db));
        goto fail;
    }
    sqlite3_wal_hook(b->db, state_wal_hook, b);
    if (sq_migrate(b->db, path, state_migrations, N_STATE_MIGRATIONS, err) < 0 ||
        sq_migrate(b->intake, b->intake_path, intake_migrations, N_INTAKE_MIGRATIONS, err) < 0)
        goto fail;
    if (sq_pair(b, err) < 0 || sq_recover(b, err) < 0)
        goto fail;
    if (sqlite3_prepare_v2(b->db, "ATTACH DATABASE ?1 AS intake", -1, &st, NULL) != SQLITE_OK ||
        bind_text(st, 1, b->intake_path) != SQLITE_OK || sq_run(st) != SQLITE_OK) {
        *err = util_asprintf("%s: cannot attach the intake file: %s", path,
                             sqlite3_errmsg(b->db));
        goto fail;
    }
    sq_unprep(st);
    st = NULL;
    if (kv_get_db(b->db, SQ_FLOOR_KEY, &floor_s) == STORE_OK &&
        util_parse_i64(floor_s, 0, INT64_MAX, &b->floor) < 0)
        b->floor = 0;
    int64_t seq = 0;
    if (sq_int(b->intake, "SELECT coalesce((SELECT seq FROM sqlite_sequence "
                          "WHERE name = 'requests'), 0)", &seq) == SQLITE_OK && b->floor > seq)
        b->floor = seq; /* never trust a floor above what the intake file has seen */
    if (o->intake_max_bytes > 0) {
        int64_t page = 0;
        char sql[64];
        if (sq_int(b->intake, "PRAGMA page_size", &page) != SQLITE_OK || page <= 0)
            page = 4096;
        int64_t pages = o->intake_max_bytes / page;
        snprintf(sql, sizeof sql, "PRAGMA max_page_count=%lld", (long long)(pages > 1 ? pages : 1));
        if (sq_exec(b->intake, sql) != SQLITE_OK) {
            *err = util_asprintf("%s: %s", b->intake_path, sqlite3_errmsg(b->intake));
            goto fail;
        }
    }
    free(floor_s);
    return b;
fail:
    sq_unprep(st);
    free(floor_s);
    if (b)
        sq_close(b);
    return NULL;
}

static void sq_close(struct store_backend *b)
{
    if (!b)
        return;
    if (b->db && b->floor > 0) {
        char v[24];
        snprintf(v, sizeof v, "%lld", (long long)b->floor);
        kv_put_db(b->db, SQ_FLOOR_KEY, v);
    }
    sq_cache_drop(b->db);
    sq_cache_drop(b->intake);
    sqlite3_close_v2(b->db);
    sqlite3_close_v2(b->intake);
    free(b->path);
    free(b->intake_path);
    free(b);
}

/* ---- Intake writer ---------------------------------------------------------------------- */

static void sq_writer_close(struct store_writer *w);
static int ck_state_wal_hook(void *arg, sqlite3 *db, const char *schema, int frames);
static int restart_write(struct store_writer *w, int log_frames);

static int intake_wal_hook(void *arg, sqlite3 *db, const char *schema, int frames)
{
    struct store_writer *w = arg;
    (void)db;
    if (strcmp(schema, "main") == 0)
        atomic_store(&w->intake_frames, frames);
    return SQLITE_OK;
}

static struct store_writer *sq_writer_open(struct store_backend *b, char **err)
{
    struct store_writer *w = calloc(1, sizeof *w);
    if (!w) {
        *err = util_strdup("out of memory");
        return NULL;
    }
    w->o = b->o;
    w->b = b;
    w->db = b->intake;
    b->intake = NULL;
    if (sq_connect(b->path, 0, &b->o, &w->aux, err) < 0)
        goto fail;
    if (sq_connect(b->intake_path, 1, &b->o, &w->ck_intake, err) < 0 ||
        sq_connect(b->path, 0, &b->o, &w->ck_state, err) < 0)
        goto fail;
    sqlite3_wal_hook(w->ck_state, ck_state_wal_hook, w);
    /* Intake commits never checkpoint: the checkpointer does it from its own connection. */
    if (sq_exec(w->db, "PRAGMA wal_autocheckpoint=0") != SQLITE_OK) {
        *err = util_asprintf("%s: %s", b->intake_path, sqlite3_errmsg(w->db));
        goto fail;
    }
    sqlite3_wal_hook(w->db, intake_wal_hook, w);
    if (sqlite3_prepare_v3(w->db,
                           "SELECT request_id, public_id, expires_at FROM dedup "
                           "WHERE source = ?1 AND key = ?2", -1, SQLITE_PREPARE_PERSISTENT,
                           &w->sel_dedup, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(w->db,
                           "INSERT INTO requests(public_id, source, received_at, remote_addr, "
                           "content_type, headers, body, dedup_key) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1,
                           SQLITE_PREPARE_PERSISTENT, &w->ins_req, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(w->db,
                           "INSERT INTO dedup(source, key, request_id, public_id, expires_at) "
                           "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(source, key) DO UPDATE SET "
                           "request_id = excluded.request_id, public_id = excluded.public_id, "
                           "expires_at = excluded.expires_at", -1, SQLITE_PREPARE_PERSISTENT,
                           &w->put_dedup, NULL) != SQLITE_OK) {
        *err = util_asprintf("%s: %s", b->intake_path, sqlite3_errmsg(w->db));
        goto fail;
    }
    /* Starts the state WAL here, so its header sync is not the loop's first commit's. */
    if (restart_write(w, INT32_MAX) < 0) {
        *err = util_asprintf("%s: %s", b->path, sqlite3_errmsg(w->ck_state));
        goto fail;
    }
    return w;
fail:
    sq_writer_close(w);
    return NULL;
}

static void sq_writer_close(struct store_writer *w)
{
    if (!w)
        return;
    sq_unprep(w->sel_dedup);
    sq_unprep(w->ins_req);
    sq_unprep(w->put_dedup);
    sq_cache_drop(w->db);
    sq_cache_drop(w->aux);
    sq_cache_drop(w->ck_intake);
    sq_cache_drop(w->ck_state);
    sqlite3_close_v2(w->db);
    sqlite3_close_v2(w->aux);
    sqlite3_close_v2(w->ck_intake);
    sqlite3_close_v2(w->ck_state);
    free(w);
}

static void item_fail(struct store_intake_item *it, enum store_status st)
{
    it->res.status = st;
    it->res.id = 0;
    it->res.public_id[0] = '\0';
}

/* Writes one item inside the open transaction: a duplicate answer or a new row. */
static enum store_status w_write_one(struct store_writer *w, struct store_intake_item *it)
{
    enum store_status st = STORE_OK;
    int64_t id = 0;
    int has_key = it->dedup_key && *it->dedup_key;
    int rc = SQLITE_OK;
    if (has_key) {
        bind_text(w->sel_dedup, 1, it->source);
        bind_text(w->sel_dedup, 2, it->dedup_key);
        rc = sqlite3_step(w->sel_dedup);
        if (rc == SQLITE_ROW && sqlite3_column_int64(w->sel_dedup, 2) > it->received_at) {
            it->res.status = STORE_DUPLICATE;
            it->res.id = sqlite3_column_int64(w->sel_dedup, 0);
            col_public_id(w->sel_dedup, 1, it->res.public_id);
            rc = SQLITE_OK;
            goto out;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            goto out;
        rc = SQLITE_OK;
    }
    bind_text(w->ins_req, 1, it->public_id);
    bind_text(w->ins_req, 2, it->source);
    bind_i64(w->ins_req, 3, it->received_at);
    bind_text(w->ins_req, 4, it->remote_addr);
    bind_text(w->ins_req, 5, it->content_type);
    bind_text(w->ins_req, 6, it->headers_json);
    sqlite3_bind_blob64(w->ins_req, 7, it->body ? (const void *)it->body : "",
                        it->body_len, SQLITE_STATIC);
    bind_text(w->ins_req, 8, has_key ? it->dedup_key : NULL);
    rc = sq_run(w->ins_req);
    if (rc != SQLITE_OK)
        goto out;
    id = sqlite3_last_insert_rowid(w->db);
    if (has_key) {
        bind_text(w->put_dedup, 1, it->source);
        bind_text(w->put_dedup, 2, it->dedup_key);
        bind_i64(w->put_dedup, 3, id);
        bind_text(w->put_dedup, 4, it->public_id);
        bind_i64(w->put_dedup, 5, add_sat(it->received_at, w->o.dedup_retention_ms));
        rc = sq_run(w->put_dedup);
        if (rc != SQLITE_OK)
            goto out;
    }
    it->res.status = STORE_OK;
    it->res.id = id;
    memcpy(it->res.public_id, it->public_id, sizeof it->res.public_id);
out:
    if (rc != SQLITE_OK) {
        st = sq_fail(w->db, "intake write", rc);
        if (st == STORE_INVALID)
            st = STORE_UNAVAILABLE; /* nothing in a copied request can violate the schema */
        item_fail(it, st);
    }
    sqlite3_reset(w->sel_dedup);
    sqlite3_reset(w->ins_req);
    sqlite3_reset(w->put_dedup);
    sqlite3_clear_bindings(w->ins_req); /* drops the pointers into the item's memory */
    return st;
}

static enum store_status sq_write_batch(struct store_writer *w, struct store_intake_item **items,
                                        size_t n)
{
    enum store_status st = STORE_OK;
    int rc = sq_exec(w->db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        st = sq_fail(w->db, "intake begin", rc);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        rc = sq_exec(w->db, "SAVEPOINT item");
        if (rc != SQLITE_OK) {
            st = sq_fail(w->db, "intake savepoint", rc);
            goto fail;
        }
        enum store_status one = w_write_one(w, items[i]);
        if (one == STORE_OK) {
            rc = sq_exec(w->db, "RELEASE item");
            if (rc != SQLITE_OK) {
                st = sq_fail(w->db, "intake release", rc);
                goto fail;
            }
            continue;
        }
        if (sqlite3_get_autocommit(w->db)) { /* the error rolled the whole batch back */
            st = one;
            goto fail;
        }
        if (sq_exec(w->db, "ROLLBACK TO item") != SQLITE_OK ||
            sq_exec(w->db, "RELEASE item") != SQLITE_OK) {
            st = sq_fail(w->db, "intake rollback to", rc);
            goto fail;
        }
    }
    rc = sq_exec(w->db, "COMMIT");
    if (rc != SQLITE_OK) {
        st = sq_fail(w->db, "intake commit", rc);
        goto fail;
    }
    return STORE_OK;
fail:
    if (st == STORE_OK || st == STORE_INVALID || st == STORE_DUPLICATE)
        st = STORE_UNAVAILABLE;
    sq_rollback(w->db);
    for (size_t i = 0; i < n; i++)
        item_fail(items[i], st);
    return st;
}

static enum store_status sq_writer_purge(struct store_writer *w, int64_t now, size_t limit,
                                         struct store_purge_counts *out)
{
    sqlite3_stmt *cand = NULL, *mark = NULL, *delreq = NULL;
    sqlite3 *failed_db = w->db;
    int64_t *ids = NULL;
    size_t n = 0, dedup_keys = 0, requests = 0;
    enum store_status st = STORE_OK;
    int rc = sq_exec(w->db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        goto out;
    rc = run_ints(w->db,
                  "DELETE FROM dedup WHERE (source, key) IN (SELECT source, key "
                  "FROM dedup WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
                  now, (int64_t)limit, 0);
    if (rc != SQLITE_OK)
        goto out;
    dedup_keys = (size_t)sqlite3_changes(w->db);

    /* Requests go only once settled (a mark in the state file) and past retention. The
     * candidates are read first, then deleted, so no scan runs over rows being deleted. */
    if ((rc = sqlite3_prepare_v2(w->db, "SELECT id FROM requests WHERE received_at < ?1 "
                                        "ORDER BY received_at LIMIT ?2", -1, &cand, NULL)) ||
        (rc = sqlite3_prepare_v2(w->db, "DELETE FROM requests WHERE id = ?1", -1, &delreq,
                                 NULL)))
        goto out;
    failed_db = w->aux;
    rc = sqlite3_prepare_v2(w->aux, "SELECT 1 FROM request_marks WHERE request_id = ?1", -1,
                            &mark, NULL);
    if (rc != SQLITE_OK)
        goto out;
    failed_db = w->db;
    bind_i64(cand, 1, add_sat(now, -w->o.request_retention_ms));
    bind_i64(cand, 2, (int64_t)limit);
    rc = step_rows(cand, sizeof *ids, read_i64, (void **)&ids, &n);
    if (rc != SQLITE_OK)
        goto out;
    sqlite3_reset(cand);
    for (size_t i = 0; i < n; i++) {
        bind_i64(mark, 1, ids[i]);
        rc = sqlite3_step(mark);
        sqlite3_reset(mark);
        if (rc == SQLITE_DONE)
            continue; /* not settled yet: keep */
        if (rc != SQLITE_ROW) {
            failed_db = w->aux;
            goto out;
        }
        bind_i64(delreq, 1, ids[i]);
        rc = sq_run(delreq);
        sqlite3_reset(delreq);
        if (rc != SQLITE_OK)
            goto out;
        requests++;
    }
    rc = sq_exec(w->db, "COMMIT");
    if (rc == SQLITE_OK) {
        out->dedup_keys += dedup_keys;
        out->requests += requests;
    }
out:
    if (rc != SQLITE_OK) {
        st = sq_fail(failed_db, "intake purge", rc);
        sq_rollback(w->db);
    }
    sq_unprep(cand);
    sq_unprep(mark);
    sq_unprep(delreq);
    free(ids);
    return st;
}

static int ck_state_wal_hook(void *arg, sqlite3 *db, const char *schema, int frames)
{
    struct store_writer *w = arg;
    (void)db;
    (void)schema;
    w->ck_frames = frames;
    return SQLITE_OK;
}

/* A one-row write on the writer's state connection. When it begins with the WAL fully
 * checkpointed, SQLite restarts the WAL in it (and syncs the new header here, not on the
 * loop). Returns 1 when the WAL restarted, 0 when not, -1 on error. */
static int restart_write(struct store_writer *w, int log_frames)
{
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO meta(name, value) "
                              "VALUES ('checkpointed_at', '%lld')", (long long)util_now_ms());
    w->ck_frames = INT32_MAX;
    int rc = sq_exec(w->ck_state, sql);
    if (rc != SQLITE_OK) {
        sq_log(w->ck_state, "state wal restart", rc);
        return -1;
    }
    return w->ck_frames < log_frames;
}

/* Checkpoints the intake file once its WAL is large, from the checkpointer's connection:
 * PASSIVE runs beside the writer's commits, and when it copied everything the writer's next
 * transaction starts the WAL over. When commits never pause long enough for that and the WAL
 * keeps growing, a RESTART checkpoint holds the writer off for the remainder. */
static void ck_intake(struct store_writer *w)
{
    int frames = atomic_load(&w->intake_frames);
    if (frames < SQ_STATE_CKPT_FRAMES)
        return;
    int log_frames = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(w->ck_intake, "main",
                                       frames >= SQ_STATE_FORCE_FRAMES ? SQLITE_CHECKPOINT_RESTART
                                                                       : SQLITE_CHECKPOINT_PASSIVE,
                                       &log_frames, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        sq_log(w->ck_intake, "intake checkpoint", rc);
}

/* Checkpoints the state file once its WAL is large: PASSIVE (never blocks the loop), then a
 * restart write. When loop writes keep winning that race and the WAL keeps growing, a
 * RESTART checkpoint holds loop writes off for the short remainder so the restart write can
 * win. Runs on the checkpointer thread, with the intake file's. */
static void sq_writer_idle(struct store_writer *w)
{
    ck_intake(w);
    int frames = atomic_load(&w->b->state_frames);
    if (frames < SQ_STATE_CKPT_FRAMES)
        return;
    int log_frames = 0, done = 0, restarted = 0;
    int rc = sqlite3_wal_checkpoint_v2(w->ck_state, "main", SQLITE_CHECKPOINT_PASSIVE,
                                       &log_frames, &done);
    if (rc == SQLITE_OK && done >= log_frames)
        restarted = restart_write(w, log_frames);
    if (rc == SQLITE_OK && restarted == 0 && frames >= SQ_STATE_FORCE_FRAMES) {
        rc = sqlite3_wal_checkpoint_v2(w->ck_state, "main", SQLITE_CHECKPOINT_RESTART,
                                       &log_frames, &done);
        if (rc == SQLITE_OK)
            restarted = restart_write(w, log_frames);
    }
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        sq_log(w->ck_state, "state checkpoint", rc);
    if (restarted > 0)
        atomic_store(&w->b->state_frames, 0);
}

/* ---- State side: batches ---------------------------------------------------------------- */

static enum store_status sq_batch_begin(struct store_backend *b)
{
    if (b->batch)
        return STORE_INVALID;
    /* The write lock now (waiting for it as any write does): a batch that read first could
     * not take it later once another connection has written. */
    int rc = sq_do(b->db, SQL_BEGIN_WRITE);
    if (rc != SQLITE_OK)
        return sq_fail(b->db, "batch begin", rc);
    b->batch = 1;
    b->batch_failed = 0;
    return STORE_OK;
}

static enum store_status sq_batch_end(struct store_backend *b, int commit)
{
    if (!b->batch)
        return STORE_INVALID;
    b->batch = 0;
    if (commit && b->batch_failed) {
        sq_rollback(b->db);
        return STORE_UNAVAILABLE;
    }
    int rc = commit ? sq_do(b->db, SQL_COMMIT) : SQLITE_OK;
    enum store_status ret = rc == SQLITE_OK ? STORE_OK : sq_fail(b->db, "batch commit", rc);
    sq_rollback(b->db); /* what is left open after a failed commit, or the whole batch */
    return ret;
}

/* ---- State side: readiness -------------------------------------------------------------- */

static enum store_status sq_check_writable(struct store_backend *b)
{
    /* A write statement that matches nothing still takes main's write lock; no commit. */
    int rc = tx_begin(b);
    if (rc == SQLITE_OK)
        rc = sq_exec(b->db, "DELETE FROM main.kv WHERE name IS NULL");
    if (rc == SQLITE_OK && sqlite3_txn_state(b->db, "main") != SQLITE_TXN_WRITE)
        rc = SQLITE_ERROR;
    tx_rollback(b);
    return rc == SQLITE_OK ? STORE_OK : sq_fail(b->db, "check writable", rc);
}

/* ---- Requests --------------------------------------------------------------------------- */

#define REQ_SELECT                                                                          \
    "SELECT r.id, r.public_id, r.source, r.received_at, r.remote_addr, r.content_type, "    \
    "r.headers, r.body, r.dedup_key, m.state, m.error "                                     \
    "FROM intake.requests r LEFT JOIN main.request_marks m ON m.request_id = r.id "

/* An sq_read_fn: a failed read clears what it took. */
static int read_request(sqlite3_stmt *st, void *row)
{
    struct store_request_row *r = row;
    r->id = sqlite3_column_int64(st, 0);
    col_public_id(st, 1, r->public_id);
    r->source = col_str(st, 2);
    r->received_at = sqlite3_column_int64(st, 3);
    r->remote_addr = col_str(st, 4);
    r->content_type = col_str(st, 5);
    r->headers = col_json(st, 6);
    const void *body = sqlite3_column_blob(st, 7);
    int n = sqlite3_column_bytes(st, 7);
    r->body_len = n > 0 ? (size_t)n : 0;
    r->body = malloc(r->body_len + 1);
    if (!r->body || !r->source) {
        store_request_row_clear(r);
        return -1;
    }
    if (r->body_len)
        memcpy(r->body, body, r->body_len);
    r->body[r->body_len] = '\0';
    r->dedup_key = col_str(st, 8);
    const unsigned char *state = sqlite3_column_text(st, 9);
    r->state = !state                                      ? STORE_REQ_NEW
               : strcmp((const char *)state, "rejected") == 0 ? STORE_REQ_REJECTED
                                                           : STORE_REQ_PROCESSED;
    r->error = col_str(st, 10);
    return 0;
}

static enum store_status sq_requests_new(struct store_backend *b, int64_t after_id, size_t limit,
                                         struct store_request_row **rows, size_t *n)
{
    sqlite3_stmt *st = NULL;
    struct store_request_row *arr = NULL;
    size_t cnt = 0;
    enum store_status ret = STORE_OK;
    int from_floor = after_id <= b->floor;
    /* One read transaction: the scan and the max id below see the same snapshot. */
    int rc = tx_begin(b);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sq_prep(b->db, REQ_SELECT "WHERE r.id > ?1 AND m.request_id IS NULL "
                                              "ORDER BY r.id LIMIT ?2", &st);
    if (rc != SQLITE_OK)
        goto fail;
    bind_i64(st, 1, from_floor ? b->floor : after_id);
    bind_i64(st, 2, (int64_t)limit);
    rc = step_rows(st, sizeof *arr, read_request, (void **)&arr, &cnt);
    if (rc != SQLITE_OK)
        goto fail;
    if (from_floor) {
        int64_t nf = b->floor;
        if (cnt > 0)
            nf = arr[0].id - 1;
        else if (sq_int(b->db, "SELECT coalesce(max(id), 0) FROM intake.requests", &nf) !=
                 SQLITE_OK)
            nf = b->floor;
        if (nf > b->floor)
            b->floor = nf;
    }
    sq_unprep(st);
    st = NULL;
    tx_commit(b);
    *rows = arr;
    *n = cnt;
    return STORE_OK;
fail:
    ret = sq_fail(b->db, "requests new", rc);
    sq_unprep(st);
    tx_rollback(b);
    store_request_rows_free(arr, cnt);
    *rows = NULL;
    *n = 0;
    return ret;
}

static enum store_status sq_request_get(struct store_backend *b, int64_t id,
                                        const char *public_id, struct store_request_row *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(b->db, public_id ? REQ_SELECT "WHERE r.public_id = ?1"
                                                 : REQ_SELECT "WHERE r.id = ?1",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        if (public_id)
            bind_text(st, 1, public_id);
        else
            bind_i64(st, 1, id);
    }
    return lookup_row(b->db, "request get", st, rc, read_request, out);
}

/* Inserts the settling mark first (taking main's write lock on a fresh snapshot), then
 * checks the request exists. CONFLICT when already marked. */
static enum store_status mark_request(struct store_backend *b, int64_t request_id,
                                      const char *state, const char *error, char **source)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(b->db,
                                "INSERT INTO request_marks(request_id, state, error, updated_at) "
                                "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(request_id) DO NOTHING", &st);
    if (rc == SQLITE_OK) {
        bind_i64(st, 1, request_id);
        bind_text(st, 2, state);
        bind_text(st, 3, error);
        bind_i64(st, 4, util_now_ms());
    }
    enum store_status ret = write_row(b->db, "mark request", st, rc);
    if (ret != STORE_OK)
        return ret;
    int inserted = sqlite3_changes(b->db) > 0;
    st = NULL;
    rc = sq_prep(b->db, "SELECT source FROM intake.requests WHERE id = ?1", &st);
    if (rc != SQLITE_OK)
        goto out;
    bind_i64(st, 1, request_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = STORE_NOTFOUND;
        rc = SQLITE_OK;
    } else if (rc == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (!inserted)
            ret = STORE_CONFLICT;
        else if (source && !(*source = col_str(st, 0)))
            rc = SQLITE_NOMEM;
    }
out:
    if (rc != SQLITE_OK)
        ret = sq_fail(b->db, "mark request", rc);
    sq_unprep(st);
    return ret;
}

static enum store_status insert_event(struct store_backend *b, sqlite3_stmt *ins_ev,
                                      sqlite3_stmt *ins_dlv, int64_t request_id,
                                      const char *source, const struct store_event_in *e,
                                      int64_t now, int64_t *event_id)
{
    char *lane = NULL;
    enum store_status ret = STORE_OK;
    enum store_event_state state = e->state;
    int64_t eid = 0;
    if (state == STORE_EV_PLANNED && e->n_deliveries == 0)
        state = STORE_EV_DONE;
    int rc;
    if ((rc = bind_i64(ins_ev, 1, request_id)) || (rc = bind_i64(ins_ev, 2, e->seq)) ||
        (rc = bind_text(ins_ev, 3, source)) || (rc = bind_text(ins_ev, 4, e->status)) ||
        (rc = bind_text(ins_ev, 5, e->key)) || (rc = bind_json(ins_ev, 6, e->event)) ||
        (rc = bind_text(ins_ev, 7, e->rule)) || (rc = bind_json(ins_ev, 8, e->plan)) ||
        (rc = bind_text(ins_ev, 9, ev_names[state])) || (rc = bind_json(ins_ev, 10, e->trace)) ||
        (rc = bind_i64(ins_ev, 11, now)))
        goto out;
    rc = sq_run(ins_ev);
    sqlite3_reset(ins_ev);
    if (rc != SQLITE_OK)
        goto out;
    eid = sqlite3_last_insert_rowid(b->db);
    *event_id = eid;
    lane = e->key && *e->key ? util_asprintf("k:%s", e->key)
                             : util_asprintf("e:%lld", (long long)eid);
    if (!lane) {
        rc = SQLITE_NOMEM;
        goto out;
    }
    for (size_t j = 0; j < e->n_deliveries; j++) {
        const struct store_delivery_in *d = &e->deliveries[j];
        if ((rc = bind_i64(ins_dlv, 1, eid)) || (rc = bind_text(ins_dlv, 2, e->key)) ||
            (rc = bind_text(ins_dlv, 3, lane)) || (rc = bind_i64(ins_dlv, 4, d->step)) ||
            (rc = bind_text(ins_dlv, 5, d->op)) || (rc = bind_json(ins_dlv, 6, d->payload)) ||
            (rc = bind_i64(ins_dlv, 7, d->next_at)) || (rc = bind_i64(ins_dlv, 8, now)))
            goto out;
        rc = sq_run(ins_dlv);
        sqlite3_reset(ins_dlv);
        if (rc != SQLITE_OK)
            goto out;
    }
out:
    if (rc != SQLITE_OK)
        ret = sq_fail(b->db, "insert event", rc);
    sqlite3_clear_bindings(ins_ev);
    sqlite3_clear_bindings(ins_dlv);
    free(lane);
    return ret;
}

static enum store_status corr_put_db(sqlite3 *db, const char *key, const json_t *state,
                                     int64_t now);

static enum store_status sq_request_processed(struct store_backend *b, int64_t request_id,
                                              const struct store_event_in *events, size_t n,
                                              int64_t *event_ids, const json_t *corr_states)
{
    sqlite3_stmt *ins_ev = NULL, *ins_dlv = NULL;
    char *source = NULL;
    int64_t now = util_now_ms();
    enum store_status ret;
    int rc = tx_begin(b);
    if (rc != SQLITE_OK) {
        ret = sq_fail(b->db, "begin", rc);
        goto out;
    }
    ret = mark_request(b, request_id, "processed", NULL, &source);
    if (ret != STORE_OK)
        goto out;
    if ((rc = sq_prep(b->db,
                                 "INSERT INTO events(request_id, seq, source, status, key, event, "
                                 "rule, plan, state, trace, created_at, updated_at) VALUES "
                                 "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)", &ins_ev)) ||
        (rc = sq_prep(b->db,
                                 "INSERT INTO deliveries(event_id, corr_key, lane, step, op, "
                                 "payload, state, next_at, created_at, updated_at) VALUES "
                                 "(?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?8)", &ins_dlv))) {
        ret = sq_fail(b->db, "prepare events", rc);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t eid = 0;
        ret = insert_event(b, ins_ev, ins_dlv, request_id, source, &events[i], now, &eid);
        if (ret != STORE_OK)
            goto out;
        if (event_ids)
            event_ids[i] = eid;
    }
    const char *ckey;
    json_t *cstate;
    json_object_foreach((json_t *)corr_states, ckey, cstate)
    {
        ret = corr_put_db(b->db, ckey, cstate, now);
        if (ret != STORE_OK)
            goto out;
    }
    sq_unprep(ins_ev);
    sq_unprep(ins_dlv);
    ins_ev = ins_dlv = NULL;
    rc = tx_commit(b);
    if (rc != SQLITE_OK)
        ret = sq_fail(b->db, "commit events", rc);
out:
    sq_unprep(ins_ev);
    sq_unprep(ins_dlv);
    if (ret != STORE_OK)
        tx_rollback(b);
    free(source);
    return ret;
}

static enum store_status sq_request_reject(struct store_backend *b, int64_t request_id,
                                           const char *error)
{
    enum store_status ret;
    int rc = tx_begin(b);
    if (rc != SQLITE_OK)
        return sq_fail(b->db, "begin", rc);
    ret = mark_request(b, request_id, "rejected", error, NULL);
    if (ret == STORE_OK && (rc = tx_commit(b)) != SQLITE_OK)
        ret = sq_fail(b->db, "commit reject", rc);
    if (ret != STORE_OK)
        tx_rollback(b);
    return ret;
}

static enum store_status sq_request_requeue(struct store_backend *b, int64_t request_id)
{
    enum store_status ret = STORE_OK;
    int64_t old_floor = b->floor, exists = 0;
    int deleted = 0;
    char v[24];
    int rc = tx_begin(b);
    if (rc != SQLITE_OK)
        goto out;
    rc = run_ints(b->db, "DELETE FROM request_marks WHERE request_id = ?1", request_id, 0, 0);
    if (rc != SQLITE_OK)
        goto out;
    deleted = sqlite3_changes(b->db) > 0;
    rc = row_exists(b->db, "intake.requests", request_id, &exists);
    if (rc != SQLITE_OK)
        goto out;
    if (!exists || !deleted) {
        ret = !exists ? STORE_NOTFOUND : STORE_CONFLICT;
        goto out;
    }
    /* The request is new again: the floor must drop below it, durably with the change. */
    if (request_id - 1 < b->floor)
        b->floor = request_id - 1;
    snprintf(v, sizeof v, "%lld", (long long)b->floor);
    ret = kv_put_db(b->db, SQ_FLOOR_KEY, v);
    if (ret != STORE_OK)
        goto out;
    rc = tx_commit(b);
out:
    if (rc != SQLITE_OK)
        ret = sq_fail(b->db, "request requeue", rc);
    if (ret != STORE_OK) {
        b->floor = old_floor;
        tx_rollback(b);
    }
    return ret;
}

/* ---- Events ----------------------------------------------------------------------------- */

#define EV_SELECT                                                                           \
    "SELECT id, request_id, seq, source, status, key, event, rule, plan, state, trace, "    \
    "created_at, updated_at FROM events "

static int read_event(sqlite3_stmt *st, void *row)
{
    struct store_event_row *r = row;
    r->id = sqlite3_column_int64(st, 0);
    r->request_id = sqlite3_column_int64(st, 1);
    r->seq = sqlite3_column_int(st, 2);
    r->source = col_str(st, 3);
    r->status = col_str(st, 4);
    r->key = col_str(st, 5);
    r->event = col_json(st, 6);
    r->rule = col_str(st, 7);
    r->plan = col_json(st, 8);
    r->state = (enum store_event_state)name_index(ev_names, 4,
                                                  (const char *)sqlite3_column_text(st, 9));
    r->trace = col_json(st, 10);
    r->created_at = sqlite3_column_int64(st, 11);
    r->updated_at = sqlite3_column_int64(st, 12);
    return 0;
}

static void free_events(void *rows, size_t n)
{
    store_event_rows_free(rows, n);
}

static enum store_status sq_event_get(struct store_backend *b, int64_t id,
                                      struct store_event_row *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(b->db, EV_SELECT "WHERE id = ?1", &st);
    if (rc == SQLITE_OK)
        bind_i64(st, 1, id);
    return lookup_row(b->db, "event get", st, rc, read_event, out);
}

static int read_json0(sqlite3_stmt *st, void *ctx);

/* Only the plan of an event: the delivery engine needs nothing else, and parsing the event
 * and trace too was a fifth of a delivery's cost. */
static enum store_status sq_event_plan(struct store_backend *b, int64_t id, json_t **plan)
{
    sqlite3_stmt *st = NULL;
    *plan = NULL;
    int rc = sq_prep(b->db, "SELECT plan FROM events WHERE id = ?1", &st);
    if (rc == SQLITE_OK)
        bind_i64(st, 1, id);
    return lookup_row(b->db, "event plan", st, rc, read_json0, plan);
}

static enum store_status sq_events_for_request(struct store_backend *b, int64_t request_id,
                                               struct store_event_row **rows, size_t *n)
{
    /* The statement has no ?2: the 0 is not bound. */
    return sq_list(b->db, "events for request",
                   EV_SELECT "WHERE request_id = ?1 ORDER BY seq, id LIMIT 10000", request_id, 0,
                   sizeof **rows, read_event, free_events, (void **)rows, n);
}

static enum store_status sq_event_set_trace(struct store_backend *b, int64_t id,
                                            const json_t *trace)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(b->db, "UPDATE events SET trace = ?2, updated_at = ?3 "
                                       "WHERE id = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_i64(st, 1, id);
        bind_i64(st, 3, util_now_ms());
        rc = bind_json(st, 2, trace);
    }
    return update_row(b->db, "event trace", st, rc, NULL, id);
}

/* ---- Deliveries ------------------------------------------------------------------------- */

#define DLV_SELECT                                                                          \
    "SELECT d.id, d.event_id, d.corr_key, d.step, d.op, d.payload, d.state, d.attempts, "   \
    "d.next_at, d.last_status, d.last_error, d.response, d.created_at, d.updated_at "       \
    "FROM deliveries d "

static int read_delivery(sqlite3_stmt *st, void *row)
{
    struct store_delivery_row *r = row;
    r->id = sqlite3_column_int64(st, 0);
    r->event_id = sqlite3_column_int64(st, 1);
    r->corr_key = col_str(st, 2);
    r->step = sqlite3_column_int(st, 3);
    r->op = col_str(st, 4);
    r->payload = col_json(st, 5);
    r->state = (enum store_delivery_state)name_index(dlv_names, 6,
                                                     (const char *)sqlite3_column_text(st, 6));
    r->attempts = sqlite3_column_int(st, 7);
    r->next_at = sqlite3_column_int64(st, 8);
    r->last_status = sqlite3_column_int(st, 9);
    r->last_error = col_str(st, 10);
    r->response = col_json(st, 11);
    r->created_at = sqlite3_column_int64(st, 12);
    r->updated_at = sqlite3_column_int64(st, 13);
    return 0;
}

static void free_deliveries(void *rows, size_t n)
{
    store_delivery_rows_free(rows, n);
}

/* Runs a delivery list query whose parameters are ?1 (an integer) and ?2 (a limit). */
static enum store_status dlv_list(struct store_backend *b, const char *sql, int64_t p1,
                                  size_t limit, struct store_delivery_row **rows, size_t *n)
{
    return sq_list(b->db, "deliveries list", sql, p1, (int64_t)limit, sizeof **rows,
                   read_delivery, free_deliveries, (void **)rows, n);
}

static enum store_status sq_deliveries_due(struct store_backend *b, int64_t now, size_t limit,
                                           struct store_delivery_row **rows, size_t *n)
{
    /* Only a lane's head (its oldest unfinished delivery) may run: one key never has two
     * deliveries in flight and never runs out of order. */
    /* INDEXED BY: walk the runnable deliveries in id order and stop at the LIMIT; the planner
     * would otherwise gather every open delivery by state and sort them all. */
    return dlv_list(b,
                    DLV_SELECT "INDEXED BY deliveries_runnable "
                    "WHERE " SQ_DLV_RUNNABLE " AND d.next_at <= ?1 "
                    "AND d.id = (SELECT min(x.id) FROM deliveries x WHERE x.lane = d.lane "
                    "AND " SQ_DLV_OPEN ") "
                    "ORDER BY d.id LIMIT ?2",
                    now, limit, rows, n);
}

static enum store_status sq_deliveries_for_event(struct store_backend *b, int64_t event_id,
                                                 struct store_delivery_row **rows, size_t *n)
{
    return dlv_list(b, DLV_SELECT "WHERE d.event_id = ?1 ORDER BY d.step, d.id LIMIT ?2",
                    event_id, 10000, rows, n);
}

static enum store_status sq_delivery_get(struct store_backend *b, int64_t id,
                                         struct store_delivery_row *out)
{
    struct store_delivery_row *rows = NULL;
    size_t n = 0;
    enum store_status ret = dlv_list(b, DLV_SELECT "WHERE d.id = ?1 LIMIT ?2", id, 1, &rows, &n);
    if (ret == STORE_OK && n == 0)
        ret = STORE_NOTFOUND;
    if (ret == STORE_OK) {
        *out = rows[0];
        free(rows);
        rows = NULL;
        n = 0;
    }
    store_delivery_rows_free(rows, n);
    return ret;
}

/* Sets an event's state from its deliveries: FAILED while one is dead, DONE when all are
 * done, PLANNED otherwise. IGNORED events have no deliveries and stay. */
static int event_follow(sqlite3 *db, int64_t event_id, int64_t now)
{
    /* Only a change of state is written: rewriting the row (event, plan and trace, a few KiB)
     * for nothing was the dearest part of recording a delivery. */
    return run_ints(db,
                    "UPDATE events SET state = n.state, updated_at = ?2 FROM (SELECT CASE "
                    "WHEN EXISTS (SELECT 1 FROM deliveries WHERE event_id = ?1 "
                    "  AND state = 'dead') THEN 'failed' "
                    "WHEN NOT EXISTS (SELECT 1 FROM deliveries WHERE event_id = ?1 "
                    "  AND state <> 'done') THEN 'done' "
                    "ELSE 'planned' END AS state) AS n "
                    "WHERE events.id = ?1 AND events.state <> 'ignored' "
                    "AND events.state <> n.state",
                    event_id, now, 0);
}

/* After a conditional update of a delivery changed nothing: NOTFOUND or CONFLICT. */
static enum store_status dlv_missing(struct store_backend *b, int64_t id)
{
    return row_missing(b->db, "deliveries", id, "delivery lookup");
}

/* Reads event_id, step and corr_key (malloc'd or NULL) of a delivery. */
static int dlv_where(sqlite3 *db, int64_t id, int64_t *event_id, int *step, char **corr_key)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(db, "SELECT event_id, step, corr_key FROM deliveries "
                                    "WHERE id = ?1", &st);
    if (rc != SQLITE_OK)
        goto out;
    bind_i64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *event_id = sqlite3_column_int64(st, 0);
        *step = sqlite3_column_int(st, 1);
        if (corr_key)
            *corr_key = col_str(st, 2);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
out:
    sq_unprep(st);
    return rc;
}

/* What the state changes return of the delivery they changed. */
#define DLV_WHERE "RETURNING event_id, step, corr_key"

static enum store_status sq_delivery_change(struct store_backend *b, int64_t id,
                                            const struct store_delivery_change *c)
{
    static const char *const sql[] = {
        [STORE_DLV_INFLIGHT] = "UPDATE deliveries SET state = 'inflight', attempts = attempts + 1, "
                               "updated_at = ?2 WHERE id = ?1 AND " SQ_DLV_RUNNABLE " "
                               /* only its lane's head: never two of a key at once */
                               "AND id = (SELECT min(x.id) FROM deliveries x "
                               "WHERE x.lane = deliveries.lane AND " SQ_DLV_OPEN ") " DLV_WHERE,
        [STORE_DLV_DONE] = "UPDATE deliveries SET state = 'done', last_status = ?4, "
                           "response = ?6, last_error = NULL, updated_at = ?2 "
                           "WHERE id = ?1 AND (state = 'inflight' OR state = 'unknown') " DLV_WHERE,
        [STORE_DLV_RETRY] = "UPDATE deliveries SET state = 'retry', next_at = ?3, "
                            "last_status = ?4, last_error = ?5, updated_at = ?2 "
                            "WHERE id = ?1 AND (state = 'inflight' OR state = 'unknown') " DLV_WHERE,
        [STORE_DLV_DEAD] = "UPDATE deliveries SET state = 'dead', last_status = ?4, "
                           "last_error = ?5, updated_at = ?2 "
                           "WHERE id = ?1 AND " SQ_DLV_OPEN " "
                           DLV_WHERE,
        [STORE_DLV_UNKNOWN] = "UPDATE deliveries SET state = 'unknown', last_error = ?5, "
                              "updated_at = ?2 WHERE id = ?1 AND state = 'inflight' " DLV_WHERE,
    };
    sqlite3_stmt *st = NULL;
    char *corr_key = NULL;
    enum store_status ret = STORE_OK;
    int64_t now = util_now_ms(), event_id = 0;
    int step = 0;
    int rc = SQLITE_OK;
    if ((int)c->to < 0 || (size_t)c->to >= sizeof sql / sizeof sql[0] || !sql[c->to]) {
        ret = STORE_INVALID;
        goto out;
    }
    /* The conditional update comes first: it takes the write lock on a fresh snapshot and
     * decides the transition atomically. */
    if ((rc = tx_begin(b)) != SQLITE_OK ||
        (rc = sq_prep(b->db, sql[c->to], &st)) != SQLITE_OK)
        goto out;
    bind_i64(st, 1, id);
    bind_i64(st, 2, now);
    bind_i64(st, 3, c->next_at);
    bind_i64(st, 4, c->http_status);
    bind_text(st, 5, c->error);
    if ((rc = bind_json(st, 6, c->response)) != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) { /* the transition was not allowed */
        rc = SQLITE_OK;
        ret = dlv_missing(b, id);
        goto out;
    }
    if (rc != SQLITE_ROW)
        goto out;
    event_id = sqlite3_column_int64(st, 0);
    step = sqlite3_column_int(st, 1);
    corr_key = col_str(st, 2);
    if ((rc = sqlite3_step(st)) != SQLITE_DONE)
        goto out;
    rc = SQLITE_OK;
    if (c->to == STORE_DLV_DONE && c->corr_state) {
        ret = corr_key ? corr_put_db(b->db, corr_key, c->corr_state, now) : STORE_INVALID;
        if (ret != STORE_OK)
            goto out;
    }
    if (c->to == STORE_DLV_DEAD) {
        sq_unprep(st);
        rc = sq_prep(b->db,
                                "UPDATE deliveries SET state = 'dead', last_error = ?3, "
                                "updated_at = ?2 WHERE event_id = ?1 AND step > ?4 "
                                "AND (state = 'pending' OR state = 'retry')", &st);
        if (rc != SQLITE_OK)
            goto out;
        bind_i64(st, 1, event_id);
        bind_i64(st, 2, now);
        bind_text(st, 3, SQ_DEAD_CASCADE);
        bind_i64(st, 4, step);
        if ((rc = sq_run(st)) != SQLITE_OK)
            goto out;
    }
    /* Only done and dead move an event (to done or failed); in flight, retry and unknown
     * leave it as it is. */
    if ((c->to == STORE_DLV_DONE || c->to == STORE_DLV_DEAD) &&
        (rc = event_follow(b->db, event_id, now)) != SQLITE_OK)
        goto out;
    rc = tx_commit(b);
out:
    if (rc != SQLITE_OK)
        ret = sq_fail(b->db, "delivery change", rc);
    if (ret != STORE_OK)
        tx_rollback(b);
    sq_unprep(st);
    free(corr_key);
    return ret;
}

static enum store_status sq_delivery_requeue(struct store_backend *b, int64_t id, int64_t now)
{
    enum store_status ret = STORE_OK;
    int64_t event_id = 0;
    int step = 0;
    int rc = tx_begin(b);
    if (rc != SQLITE_OK)
        goto out;
    rc = run_ints(b->db, "UPDATE deliveries SET state = 'pending', attempts = 0, "
                         "next_at = ?2, updated_at = ?2 WHERE id = ?1 AND state = 'dead'",
                  id, now, 0);
    if (rc != SQLITE_OK)
        goto out;
    if (sqlite3_changes(b->db) == 0) {
        ret = dlv_missing(b, id);
        goto out;
    }
    if ((rc = dlv_where(b->db, id, &event_id, &step, NULL)) != SQLITE_OK)
        goto out;
    /* The later steps that died with it run again after it. */
    rc = run_ints(b->db, "UPDATE deliveries SET state = 'pending', attempts = 0, "
                         "next_at = ?2, updated_at = ?2 WHERE event_id = ?1 "
                         "AND step > ?3 AND state = 'dead'", event_id, now, step);
    if (rc != SQLITE_OK || (rc = event_follow(b->db, event_id, now)) != SQLITE_OK)
        goto out;
    rc = tx_commit(b);
out:
    if (rc != SQLITE_OK)
        ret = sq_fail(b->db, "delivery requeue", rc);
    if (ret != STORE_OK)
        tx_rollback(b);
    return ret;
}

static enum store_status sq_deliveries_requeue_dead(struct store_backend *b, int64_t since,
                                                    int64_t now, size_t *count)
{
    sqlite3_stmt *st = NULL;
    int64_t *events = NULL;
    size_t n = 0;
    enum store_status ret = STORE_OK;
    int rc = tx_begin(b);
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_prepare_v2(b->db, "UPDATE deliveries SET state = 'pending', attempts = 0, "
                                   "next_at = ?2, updated_at = ?2 WHERE state = 'dead' "
                                   "AND updated_at >= ?1 RETURNING event_id", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto out;
    bind_i64(st, 1, since);
    bind_i64(st, 2, now);
    rc = step_rows(st, sizeof *events, read_i64, (void **)&events, &n);
    if (rc != SQLITE_OK)
        goto out;
    sq_unprep(st);
    st = NULL;
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
        rc = event_follow(b->db, events[i], now);
    if (rc != SQLITE_OK)
        goto out;
    rc = tx_commit(b);
    if (rc == SQLITE_OK && count)
        *count = n;
out:
    if (rc != SQLITE_OK) {
        ret = sq_fail(b->db, "requeue dead", rc);
        tx_rollback(b);
    }
    sq_unprep(st);
    free(events);
    return ret;
}

/* ---- Correlations, sent mail, kv -------------------------------------------------------- */

static enum store_status corr_put_db(sqlite3 *db, const char *key, const json_t *state,
                                     int64_t now)
{
    sqlite3_stmt *st = NULL;
    const char *status = json_string_value(json_object_get(state, "status"));
    int rc = sq_prep(db,
                                "INSERT INTO correlations(key, state, status, updated_at) "
                                "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET "
                                "state = excluded.state, status = excluded.status, "
                                "updated_at = excluded.updated_at", &st);
    if (rc == SQLITE_OK) {
        bind_text(st, 1, key);
        bind_text(st, 3, status);
        bind_i64(st, 4, now);
        rc = bind_json(st, 2, state);
    }
    return write_row(db, "correlation put", st, rc);
}

static enum store_status sq_correlation_put(struct store_backend *b, const char *key,
                                            const json_t *state)
{
    return corr_put_db(b->db, key, state, util_now_ms());
}

/* Runs a one-row lookup with one text parameter; calls read_row on the row. */
static enum store_status lookup_text(sqlite3 *db, const char *sql, const char *arg,
                                     sq_read_fn read_row, void *ctx)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(db, sql, &st);
    if (rc == SQLITE_OK)
        bind_text(st, 1, arg);
    return lookup_row(db, "lookup", st, rc, read_row, ctx);
}

static int read_json0(sqlite3_stmt *st, void *ctx)
{
    *(json_t **)ctx = col_json(st, 0);
    return 0;
}

static enum store_status sq_correlation_get(struct store_backend *b, const char *key,
                                            json_t **state)
{
    *state = NULL;
    enum store_status ret = lookup_text(b->db, "SELECT state FROM correlations WHERE key = ?1",
                                        key, read_json0, state);
    if (ret == STORE_OK && !*state) {
        log_warn("store: unreadable correlation state", "key", key);
        ret = STORE_UNAVAILABLE;
    }
    return ret;
}

static enum store_status sq_sent_mail_put(struct store_backend *b, const char *message_id,
                                          const char *corr_key, int64_t request_id)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(b->db,
                                "INSERT INTO sent_mail_ids(message_id, corr_key, request_id, "
                                "created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(message_id) "
                                "DO UPDATE SET corr_key = excluded.corr_key, "
                                "request_id = excluded.request_id", &st);
    if (rc == SQLITE_OK) {
        bind_text(st, 1, message_id);
        bind_text(st, 2, corr_key);
        if (request_id > 0)
            bind_i64(st, 3, request_id);
        bind_i64(st, 4, util_now_ms());
    }
    return write_row(b->db, "sent mail put", st, rc);
}

struct sent_ctx {
    char *corr_key;
    int64_t request_id;
};

static int read_sent(sqlite3_stmt *st, void *ctx)
{
    struct sent_ctx *c = ctx;
    c->corr_key = col_str(st, 0);
    c->request_id = sqlite3_column_int64(st, 1);
    return 0;
}

static enum store_status sq_sent_mail_get(struct store_backend *b, const char *message_id,
                                          char **corr_key, int64_t *request_id)
{
    struct sent_ctx c = {NULL, 0};
    enum store_status ret = lookup_text(b->db, "SELECT corr_key, request_id FROM sent_mail_ids "
                                               "WHERE message_id = ?1", message_id, read_sent, &c);
    *corr_key = c.corr_key;
    *request_id = c.request_id;
    return ret;
}

static int read_str0(sqlite3_stmt *st, void *ctx)
{
    *(char **)ctx = col_str(st, 0);
    return 0;
}

static enum store_status kv_get_db(sqlite3 *db, const char *name, char **value)
{
    *value = NULL;
    enum store_status ret = lookup_text(db, "SELECT value FROM kv WHERE name = ?1", name,
                                        read_str0, value);
    if (ret == STORE_OK && !*value)
        ret = STORE_UNAVAILABLE; /* out of memory */
    return ret;
}

static enum store_status kv_put_db(sqlite3 *db, const char *name, const char *value)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT INTO kv(name, value, updated_at) VALUES (?1, ?2, ?3) "
                                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value, "
                                    "updated_at = excluded.updated_at", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_text(st, 1, name);
        bind_text(st, 2, value);
        bind_i64(st, 3, util_now_ms());
    }
    return write_row(db, "kv put", st, rc);
}

static enum store_status sq_kv_get(struct store_backend *b, const char *name, char **value)
{
    return kv_get_db(b->db, name, value);
}

static enum store_status sq_kv_put(struct store_backend *b, const char *name, const char *value)
{
    return kv_put_db(b->db, name, value);
}

/* ---- Outbox ----------------------------------------------------------------------------- */

static enum store_status sq_outbox_add(struct store_backend *b, const json_t *message,
                                       const char *message_id, int64_t next_at, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(b->db,
                                "INSERT INTO mail_outbox(message, message_id, state, next_at, "
                                "created_at, updated_at) VALUES (?1, ?2, 'pending', ?3, ?4, ?4)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_text(st, 2, message_id);
        bind_i64(st, 3, next_at);
        bind_i64(st, 4, util_now_ms());
        rc = bind_json(st, 1, message);
    }
    enum store_status ret = write_row(b->db, "outbox add", st, rc);
    if (ret == STORE_OK && id)
        *id = sqlite3_last_insert_rowid(b->db);
    return ret;
}

static int read_outbox(sqlite3_stmt *st, void *row)
{
    struct store_outbox_row *r = row;
    r->id = sqlite3_column_int64(st, 0);
    r->message = col_json(st, 1);
    r->message_id = col_str(st, 2);
    r->state = (enum store_outbox_state)name_index(out_names, 5,
                                                   (const char *)sqlite3_column_text(st, 3));
    r->attempts = sqlite3_column_int(st, 4);
    r->next_at = sqlite3_column_int64(st, 5);
    r->error = col_str(st, 6);
    r->created_at = sqlite3_column_int64(st, 7);
    r->updated_at = sqlite3_column_int64(st, 8);
    return 0;
}

static void free_outbox(void *rows, size_t n)
{
    store_outbox_rows_free(rows, n);
}

static enum store_status sq_outbox_due(struct store_backend *b, int64_t now, size_t limit,
                                       struct store_outbox_row **rows, size_t *n)
{
    return sq_list(b->db, "outbox due",
                   "SELECT id, message, message_id, state, attempts, next_at, error, "
                   "created_at, updated_at FROM mail_outbox "
                   "WHERE state IN ('pending','retry') AND next_at <= ?1 "
                   "ORDER BY id LIMIT ?2",
                   now, (int64_t)limit, sizeof **rows, read_outbox, free_outbox, (void **)rows,
                   n);
}

static enum store_status sq_outbox_mark(struct store_backend *b, int64_t id,
                                        enum store_outbox_state state, int64_t next_at,
                                        const char *error)
{
    static const char *const sql[] = {
        [STORE_OUT_SENDING] = "UPDATE mail_outbox SET state = 'sending', attempts = attempts + 1, "
                              "updated_at = ?2 WHERE id = ?1 AND state IN ('pending','retry')",
        [STORE_OUT_SENT] = "UPDATE mail_outbox SET state = 'sent', error = NULL, updated_at = ?2 "
                           "WHERE id = ?1 AND state = 'sending'",
        [STORE_OUT_RETRY] = "UPDATE mail_outbox SET state = 'retry', next_at = ?3, error = ?4, "
                            "updated_at = ?2 WHERE id = ?1 AND state = 'sending'",
        [STORE_OUT_DEAD] = "UPDATE mail_outbox SET state = 'dead', error = ?4, updated_at = ?2 "
                           "WHERE id = ?1 AND state IN ('pending','sending','retry')",
    };
    sqlite3_stmt *st = NULL;
    if ((int)state < 0 || (size_t)state >= sizeof sql / sizeof sql[0] || !sql[state])
        return STORE_INVALID;
    int rc = sqlite3_prepare_v2(b->db, sql[state], -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_i64(st, 1, id);
        bind_i64(st, 2, util_now_ms());
        bind_i64(st, 3, next_at);
        bind_text(st, 4, error);
    }
    return update_row(b->db, "outbox mark", st, rc, "mail_outbox", id);
}

/* ---- Metrics and retention -------------------------------------------------------------- */

static enum store_status sq_counters(struct store_backend *b, int64_t now,
                                     struct store_counters *out)
{
    sqlite3_stmt *st = NULL;
    enum store_status ret = STORE_OK;
    int rc = tx_begin(b);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_prepare_v2(b->db,
                            "SELECT count(*), min(r.received_at) FROM intake.requests r "
                            "LEFT JOIN main.request_marks m ON m.request_id = r.id "
                            "WHERE r.id > ?1 AND m.request_id IS NULL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    bind_i64(st, 1, b->floor);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW)
        goto fail;
    out->requests_new = sqlite3_column_int64(st, 0);
    if (out->requests_new > 0)
        out->oldest_new_age_ms = now - sqlite3_column_int64(st, 1);
    sq_unprep(st);
    rc = sqlite3_prepare_v2(b->db,
                            "SELECT state, count(*), min(created_at) FROM deliveries "
                            "WHERE state IN ('pending','retry','inflight','unknown','dead') "
                            "GROUP BY state", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    int64_t oldest = INT64_MAX;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int s = name_index(dlv_names, 6, (const char *)sqlite3_column_text(st, 0));
        int64_t c = sqlite3_column_int64(st, 1);
        if (s == STORE_DLV_PENDING || s == STORE_DLV_RETRY) {
            out->deliveries_pending += c;
            if (sqlite3_column_int64(st, 2) < oldest)
                oldest = sqlite3_column_int64(st, 2);
        } else if (s == STORE_DLV_INFLIGHT) {
            out->deliveries_inflight += c;
        } else if (s == STORE_DLV_UNKNOWN) {
            out->deliveries_unknown += c;
        } else if (s == STORE_DLV_DEAD) {
            out->deliveries_dead += c;
        }
    }
    if (rc != SQLITE_DONE)
        goto fail;
    if (oldest != INT64_MAX)
        out->oldest_pending_age_ms = now - oldest;
    sq_unprep(st);
    rc = sqlite3_prepare_v2(b->db,
                            "SELECT count(*) FILTER (WHERE state <> 'dead'), "
                            "count(*) FILTER (WHERE state = 'dead') FROM mail_outbox "
                            "WHERE state IN ('pending','sending','retry','dead')", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    if ((rc = sqlite3_step(st)) != SQLITE_ROW)
        goto fail;
    out->outbox_pending = sqlite3_column_int64(st, 0);
    out->outbox_dead = sqlite3_column_int64(st, 1);
    sq_unprep(st);
    st = NULL;
    tx_commit(b);
    return STORE_OK;
fail:
    ret = sq_fail(b->db, "counters", rc);
    sq_unprep(st);
    tx_rollback(b);
    return ret;
}

static enum store_status sq_purge(struct store_backend *b, int64_t now, size_t limit,
                                  struct store_purge_counts *out)
{
    /* Each statement takes ?1 (cut-off) and ?2 (limit); the two event statements pick the
     * same rows inside one transaction. */
    static const char *const sql[] = {
        "DELETE FROM deliveries WHERE event_id IN (SELECT id FROM events "
        "WHERE (state = 'done' OR state = 'ignored') AND updated_at < ?1 "
        "ORDER BY updated_at, id LIMIT ?2)",
        "DELETE FROM events WHERE id IN (SELECT id FROM events "
        "WHERE (state = 'done' OR state = 'ignored') AND updated_at < ?1 "
        "ORDER BY updated_at, id LIMIT ?2)",
        "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox "
        "WHERE state = 'sent' AND updated_at < ?1 ORDER BY updated_at LIMIT ?2)",
        "DELETE FROM sent_mail_ids WHERE message_id IN (SELECT message_id FROM sent_mail_ids "
        "WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)",
        "DELETE FROM correlations WHERE key IN (SELECT key FROM correlations "
        "WHERE status = 'completed' AND updated_at < ?1 ORDER BY updated_at LIMIT ?2)",
        /* old marks whose request the writer has purged */
        "DELETE FROM request_marks WHERE request_id IN (SELECT m.request_id FROM request_marks m "
        "WHERE m.updated_at < ?1 AND NOT EXISTS (SELECT 1 FROM intake.requests r "
        "WHERE r.id = m.request_id) ORDER BY m.updated_at LIMIT ?2)",
    };
    size_t got[sizeof sql / sizeof sql[0]] = {0};
    enum store_status ret = STORE_OK;
    int64_t cut = add_sat(now, -b->o.done_retention_ms);
    int rc = tx_begin(b);
    if (rc != SQLITE_OK)
        goto fail;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
        rc = run_ints(b->db, sql[i], cut, (int64_t)limit, 0);
        if (rc != SQLITE_OK)
            goto fail;
        got[i] = (size_t)sqlite3_changes(b->db);
    }
    if ((rc = tx_commit(b)) != SQLITE_OK)
        goto fail;
    out->deliveries += got[0];
    out->events += got[1];
    out->outbox += got[2];
    out->sent_mail += got[3];
    out->correlations += got[4];
    out->request_marks += got[5];
    return STORE_OK;
fail:
    ret = sq_fail(b->db, "purge", rc);
    tx_rollback(b);
    return ret;
}

const struct store_backend_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .writer_open = sq_writer_open,
    .writer_close = sq_writer_close,
    .write_batch = sq_write_batch,
    .writer_purge = sq_writer_purge,
    .writer_idle = sq_writer_idle,
    .batch_begin = sq_batch_begin,
    .batch_end = sq_batch_end,
    .check_writable = sq_check_writable,
    .requests_new = sq_requests_new,
    .request_get = sq_request_get,
    .request_processed = sq_request_processed,
    .request_reject = sq_request_reject,
    .request_requeue = sq_request_requeue,
    .event_get = sq_event_get,
    .events_for_request = sq_events_for_request,
    .event_set_trace = sq_event_set_trace,
    .deliveries_due = sq_deliveries_due,
    .event_plan = sq_event_plan,
    .delivery_get = sq_delivery_get,
    .deliveries_for_event = sq_deliveries_for_event,
    .delivery_change = sq_delivery_change,
    .delivery_requeue = sq_delivery_requeue,
    .deliveries_requeue_dead = sq_deliveries_requeue_dead,
    .correlation_get = sq_correlation_get,
    .correlation_put = sq_correlation_put,
    .sent_mail_put = sq_sent_mail_put,
    .sent_mail_get = sq_sent_mail_get,
    .kv_get = sq_kv_get,
    .kv_put = sq_kv_put,
    .outbox_add = sq_outbox_add,
    .outbox_due = sq_outbox_due,
    .outbox_mark = sq_outbox_mark,
    .counters = sq_counters,
    .purge = sq_purge,
};
