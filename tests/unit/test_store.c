/* Unit tests for the store: group commit, completions on the loop thread, dedup, retention,
 * schema versions, delivery state machine and per-key lanes, crash recovery, correlations,
 * disk full, outbox, kv and purge — on real SQLite files in a temporary folder. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <sqlite3.h>

#include "common/util.h"
#include "store.h"
#include "testutil.h"

static char *dir;
static char path[512];
static struct event_base *base;

static void setup(void)
{
    evthread_use_pthreads();
    dir = tu_tmpdir();
    cr_assert_not_null(dir);
    snprintf(path, sizeof path, "%s/var/store.db", dir);
    base = event_base_new();
    cr_assert_not_null(base);
}

static void teardown(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    tu_run(cmd, NULL);
    free(dir);
    event_base_free(base);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

static struct store *open_store(const struct store_opts *o)
{
    char *err = NULL;
    struct store *s = store_open(path, o, base, &err);
    cr_assert_not_null(s, "store_open: %s", err ? err : "?");
    return s;
}

/* ---- intake helpers ----------------------------------------------------------------------- */

struct done {
    int n;
    struct store_intake_result res[256];
    pthread_t thread[256];
};

static void on_result(const struct store_intake_result *r, void *arg)
{
    struct done *d = arg;
    if (d->n < 256) {
        d->res[d->n] = *r;
        d->thread[d->n] = pthread_self();
    }
    d->n++;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Runs the loop until *count reaches n; a 20 s guard turns a hang into a failure. */
static void run_until(const int *count, int n)
{
    int expired = 0;
    struct event *guard = evtimer_new(base, on_timeout, &expired);
    struct timeval tv = {20, 0};
    evtimer_add(guard, &tv);
    while (*count < n && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(guard);
    cr_assert_eq(*count, n, "only %d of %d completions arrived", *count, n);
}

static struct store_request req_of(const char *source, const char *body, const char *key,
                                   int64_t at)
{
    struct store_request r = {.source = source, .received_at = at, .body = body,
                              .body_len = body ? strlen(body) : 0, .dedup_key = key,
                              .content_type = "application/json", .remote_addr = "127.0.0.1"};
    return r;
}

static int64_t put_sync(struct store *s, const char *source, const char *body, const char *key,
                        int64_t at, enum store_status want)
{
    struct store_request r = req_of(source, body, key, at);
    struct store_intake_result res;
    enum store_status st = store_intake_sync(s, &r, &res);
    cr_assert_eq(st, want, "intake: %s, wanted %s", store_status_str(st),
                 store_status_str(want));
    return res.id;
}

static int64_t event_with_steps(struct store *s, const char *key, int nsteps);

/* ---- group commit and completions -------------------------------------------------------- */

Test(store, group_commit_writes_queued_submits_in_batches_of_batch_max)
{
    struct store_opts o = {.batch_max = 64};
    struct store *s = open_store(&o);
    struct done d = {0};
    store_intake_hold(s, 1);
    for (int i = 0; i < 100; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        struct store_request r = req_of("am", body, NULL, 0);
        cr_assert_eq(store_intake_submit(s, &r, on_result, &d), STORE_OK);
    }
    struct store_intake_stats st;
    store_intake_stats(s, &st);
    cr_expect_eq(st.queued, 100);
    cr_expect_eq(st.commits, 0);
    store_intake_hold(s, 0);
    run_until(&d.n, 100);
    store_intake_stats(s, &st);
    cr_expect_eq(st.commits, 2, "100 queued requests with batch_max 64 take 2 commits, not %llu",
                 (unsigned long long)st.commits);
    cr_expect_eq(st.max_batch, 64);
    cr_expect_eq(st.stored, 100);
    cr_expect_eq(st.queued, 0);
    for (int i = 0; i < 100; i++) {
        cr_expect_eq(d.res[i].status, STORE_OK);
        cr_expect(util_is_uuid(d.res[i].public_id));
        cr_expect_eq(d.res[i].public_id[14], '7', "public ids are time-ordered (version 7)");
        if (i > 0) {
            cr_expect_gt(d.res[i].id, d.res[i - 1].id, "completions arrive in submit order");
            /* The first 48 bits are the time in ms: never older than the id before. */
            cr_expect_geq(strncmp(d.res[i].public_id, d.res[i - 1].public_id, 13), 0);
        }
    }
    store_close(s);
}

Test(store, completions_run_on_the_loop_thread_and_never_inside_submit)
{
    struct store *s = open_store(NULL);
    struct done d = {0};
    for (int i = 0; i < 10; i++) {
        struct store_request r = req_of("am", "{}", NULL, 0);
        cr_assert_eq(store_intake_submit(s, &r, on_result, &d), STORE_OK);
        cr_assert_eq(d.n, 0, "an accepted request completes only from the loop");
    }
    run_until(&d.n, 10);
    for (int i = 0; i < 10; i++)
        cr_expect(pthread_equal(d.thread[i], pthread_self()), "callback %d ran off the loop", i);
    store_close(s);
}

Test(store, a_full_queue_refuses_at_once_and_the_accepted_still_commit)
{
    struct store_opts o = {.queue_max_count = 5};
    struct store *s = open_store(&o);
    struct done d = {0};
    store_intake_hold(s, 1);
    for (int i = 0; i < 5; i++) {
        struct store_request r = req_of("am", "{}", NULL, 0);
        cr_assert_eq(store_intake_submit(s, &r, on_result, &d), STORE_OK);
    }
    struct store_request r = req_of("am", "{}", NULL, 0);
    cr_assert_eq(store_intake_submit(s, &r, on_result, &d), STORE_FULL);
    cr_assert_eq(d.n, 1, "the refusal is delivered before submit returns");
    cr_expect_eq(d.res[0].status, STORE_FULL);
    cr_expect_eq(store_check_writable(s), STORE_FULL);
    store_intake_hold(s, 0);
    run_until(&d.n, 6);
    for (int i = 1; i < 6; i++)
        cr_expect_eq(d.res[i].status, STORE_OK);
    cr_expect_eq(store_check_writable(s), STORE_OK);
    store_close(s);
}

Test(store, close_commits_what_was_accepted_and_runs_its_callbacks)
{
    struct store *s = open_store(NULL);
    struct done d = {0};
    store_intake_hold(s, 1);
    for (int i = 0; i < 10; i++) {
        struct store_request r = req_of("am", "{}", NULL, 0);
        cr_assert_eq(store_intake_submit(s, &r, on_result, &d), STORE_OK);
    }
    store_close(s);
    cr_assert_eq(d.n, 10);
    for (int i = 0; i < 10; i++)
        cr_expect_eq(d.res[i].status, STORE_OK);
    s = open_store(NULL);
    struct store_request_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(store_requests_new(s, 0, 100, &rows, &n), STORE_OK);
    cr_expect_eq(n, 10);
    store_request_rows_free(rows, n);
    store_close(s);
}

Test(store, a_bad_request_is_invalid_and_never_queued)
{
    struct store *s = open_store(NULL);
    struct done d = {0};
    struct store_request r = req_of("", "{}", NULL, 0);
    cr_expect_eq(store_intake_submit(s, &r, on_result, &d), STORE_INVALID);
    cr_expect_eq(d.n, 1);
    struct store_intake_stats st;
    store_intake_stats(s, &st);
    cr_expect_eq(st.submitted, 0);
    cr_expect_eq(st.refused, 1);
    store_close(s);
}

/* ---- the loop never fsyncs -------------------------------------------------------------- */

/* A VFS shim around the default one that counts xSync calls made on the test's own thread
 * (the loop thread). */
struct cnt_file {
    sqlite3_file base;
    sqlite3_file *real;
};
static sqlite3_vfs *real_vfs;
static sqlite3_vfs cnt_vfs;
static pthread_t loop_thread;
static volatile int loop_syncs, all_syncs;

#define REAL(f) (((struct cnt_file *)(f))->real)
static int c_close(sqlite3_file *f)
{
    return REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
}
static int c_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), p, n, o);
}
static int c_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xWrite(REAL(f), p, n, o);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 n)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int c_sync(sqlite3_file *f, int flags)
{
    __atomic_add_fetch(&all_syncs, 1, __ATOMIC_SEQ_CST);
    if (pthread_equal(pthread_self(), loop_thread))
        __atomic_add_fetch(&loop_syncs, 1, __ATOMIC_SEQ_CST);
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int c_size(sqlite3_file *f, sqlite3_int64 *n)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), n);
}
static int c_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int c_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int c_reserved(sqlite3_file *f, int *o)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), o);
}
static int c_fcntl(sqlite3_file *f, int op, void *a)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int c_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int c_devchar(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int c_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int c_shm_lock(sqlite3_file *f, int off, int n, int fl)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, fl);
}
static void c_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int c_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int c_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp);
}
static int c_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}
static const sqlite3_io_methods cnt_io = {
    3, c_close, c_read, c_write, c_truncate, c_sync, c_size, c_lock, c_unlock, c_reserved,
    c_fcntl, c_sector, c_devchar, c_shm_map, c_shm_lock, c_shm_barrier, c_shm_unmap, c_fetch,
    c_unfetch,
};
static int c_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
    struct cnt_file *c = (struct cnt_file *)f;
    (void)v;
    c->real = (sqlite3_file *)(c + 1);
    int rc = real_vfs->xOpen(real_vfs, name, c->real, flags, out);
    c->base.pMethods = c->real->pMethods ? &cnt_io : NULL;
    return rc;
}

Test(store, state_writes_and_intake_never_fsync_on_the_loop_thread)
{
    real_vfs = sqlite3_vfs_find(NULL);
    cnt_vfs = *real_vfs;
    cnt_vfs.szOsFile = (int)sizeof(struct cnt_file) + real_vfs->szOsFile;
    cnt_vfs.zName = "test-count";
    cnt_vfs.pNext = NULL;
    cnt_vfs.xOpen = c_open;
    cr_assert_eq(sqlite3_vfs_register(&cnt_vfs, 1), SQLITE_OK);
    loop_thread = pthread_self();

    for (int round = 0; round < 2; round++) { /* a fresh store, then a reopened one */
        struct store *s = open_store(NULL);
        int before_loop = loop_syncs, before_all = all_syncs;
        struct done d = {0};
        for (int i = 0; i < 50; i++) {
            struct store_request r = req_of("am", "{}", NULL, 0);
            cr_assert_eq(store_intake_submit(s, &r, on_result, &d), STORE_OK);
        }
        run_until(&d.n, 50);
        for (int i = 0; i < 200; i++) {
            char v[16];
            snprintf(v, sizeof v, "%d", i);
            cr_assert_eq(store_kv_put(s, "n", v), STORE_OK);
        }
        event_with_steps(s, "k", 2);
        cr_expect_eq(loop_syncs - before_loop, 0, "the loop thread synced %d times",
                     loop_syncs - before_loop);
        cr_expect_gt(all_syncs - before_all, 0, "intake commits sync on the writer thread");
        store_close(s);
    }
    sqlite3_vfs_unregister(&cnt_vfs);
}

/* ---- dedup ---------------------------------------------------------------------------------- */

Test(store, dedup_is_exact_within_one_batch)
{
    struct store *s = open_store(NULL);
    struct done d = {0};
    const char *keys[] = {"wh-1", "wh-1", "wh-2", "wh-1"};
    store_intake_hold(s, 1);
    for (int i = 0; i < 4; i++) {
        struct store_request r = req_of("grafana", "{}", keys[i], 0);
        cr_assert_eq(store_intake_submit(s, &r, on_result, &d), STORE_OK);
    }
    store_intake_hold(s, 0);
    run_until(&d.n, 4);
    struct store_intake_stats st;
    store_intake_stats(s, &st);
    cr_expect_eq(st.commits, 1);
    cr_expect_eq(d.res[0].status, STORE_OK);
    cr_expect_eq(d.res[1].status, STORE_DUPLICATE);
    cr_expect_eq(d.res[1].id, d.res[0].id);
    cr_expect_str_eq(d.res[1].public_id, d.res[0].public_id);
    cr_expect_eq(d.res[2].status, STORE_OK);
    cr_expect_eq(d.res[3].status, STORE_DUPLICATE);
    cr_expect_eq(d.res[3].id, d.res[0].id);
    cr_expect_eq(st.stored, 2);
    cr_expect_eq(st.duplicates, 2);
    store_close(s);
}

Test(store, dedup_holds_across_batches_and_after_reopen_and_is_per_source)
{
    struct store *s = open_store(NULL);
    int64_t first = put_sync(s, "zabbix", "{\"a\":1}", "evt-9", 0, STORE_OK);
    cr_expect_eq(put_sync(s, "zabbix", "{\"a\":2}", "evt-9", 0, STORE_DUPLICATE), first);
    int64_t other = put_sync(s, "grafana", "{}", "evt-9", 0, STORE_OK);
    cr_expect_neq(other, first, "the same key from another source is another request");
    store_close(s);
    s = open_store(NULL);
    cr_expect_eq(put_sync(s, "zabbix", "{\"a\":3}", "evt-9", 0, STORE_DUPLICATE), first);
    struct store_request_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(store_requests_new(s, 0, 100, &rows, &n), STORE_OK);
    cr_expect_eq(n, 2, "duplicates store nothing");
    store_request_rows_free(rows, n);
    store_close(s);
}

Test(store, a_dedup_key_expires_after_the_retention_and_is_purged)
{
    struct store_opts o = {.dedup_retention_ms = 1000, .purge_interval_ms = -1};
    struct store *s = open_store(&o);
    const int64_t t = 1700000000000LL;
    int64_t first = put_sync(s, "am", "{}", "k", t, STORE_OK);
    cr_expect_eq(put_sync(s, "am", "{}", "k", t + 999, STORE_DUPLICATE), first);
    int64_t second = put_sync(s, "am", "{}", "k", t + 1000, STORE_OK);
    cr_expect_neq(second, first);
    cr_expect_eq(put_sync(s, "am", "{}", "k", t + 1500, STORE_DUPLICATE), second,
                 "the window restarts with the request stored after expiry");
    struct store_purge_counts c = {0};
    cr_assert_eq(store_intake_purge_sync(s, t + 1999, 100, &c), STORE_OK);
    cr_expect_eq(c.dedup_keys, 0, "the key is still live at t+1999");
    cr_assert_eq(store_intake_purge_sync(s, t + 2000, 100, &c), STORE_OK);
    cr_expect_eq(c.dedup_keys, 1);
    store_close(s);
}

/* ---- schema ------------------------------------------------------------------------------- */

static int64_t user_version(const char *file)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    cr_assert_eq(sqlite3_open(file, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void sql_on(const char *file, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(file, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

Test(store, a_version_0_database_is_migrated_and_keeps_its_other_tables)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/var'", dir);
    tu_run(cmd, NULL);
    sql_on(path, "CREATE TABLE notes(x); INSERT INTO notes VALUES (42)");
    cr_assert_eq(user_version(path), 0);
    struct store *s = open_store(NULL);
    put_sync(s, "am", "{}", NULL, 0, STORE_OK);
    cr_expect_eq(store_kv_put(s, "imap.inbox.uid", "7"), STORE_OK);
    store_close(s);
    char intake[600];
    snprintf(intake, sizeof intake, "%s.intake", path);
    cr_expect_eq(user_version(path), 3, "every state migration applied");
    cr_expect_eq(user_version(intake), 1);
    sql_on(path, "SELECT x FROM notes");
    sql_on(path, "SELECT count(*) FROM deliveries INDEXED BY deliveries_runnable "
                 "WHERE (state = 'pending' OR state = 'retry' OR state = 'unknown')");
}

/* Schema 2 as shipped, with one event and two deliveries, ids past their rows. */
static const char *const schema2_rows =
    "INSERT INTO events(id, request_id, seq, source, status, key, event, rule, plan, state, "
    "trace, created_at, updated_at) VALUES (7, 1, 0, 'am', 'firing', 'k', '{}', 'r', '{}', "
    "'planned', NULL, 1, 1);"
    "INSERT INTO deliveries(id, event_id, corr_key, lane, step, op, payload, state, attempts, "
    "next_at, created_at, updated_at) VALUES (40, 7, 'k', 'k:k', 0, 'list_sites', NULL, 'done', "
    "1, 0, 1, 1), (41, 7, 'k', 'k:k', 1, 'create_job', NULL, 'pending', 0, 0, 1, 1);"
    "UPDATE sqlite_sequence SET seq = 90 WHERE name = 'deliveries';"
    "UPDATE sqlite_sequence SET seq = 20 WHERE name = 'events';"
    "PRAGMA user_version = 2;";

static int64_t sql_int(const char *file, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(file, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

Test(store, schema_3_keeps_events_deliveries_and_their_id_sequences)
{
    struct store *s = open_store(NULL);
    store_close(s);
    /* Back to schema 2's tables (IN lists) with rows, then migrate again. */
    sql_on(path, "DROP TABLE deliveries; DROP TABLE events;"
                 "DELETE FROM sqlite_sequence WHERE name IN ('deliveries','events');"
                 "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, request_id INTEGER "
                 "NOT NULL, seq INTEGER NOT NULL, source TEXT NOT NULL, status TEXT, key TEXT, "
                 "event TEXT NOT NULL, rule TEXT, plan TEXT, state TEXT NOT NULL CHECK (state "
                 "IN ('planned','done','ignored','failed')), trace TEXT, created_at INTEGER NOT "
                 "NULL, updated_at INTEGER NOT NULL);"
                 "CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id INTEGER "
                 "NOT NULL, corr_key TEXT, lane TEXT NOT NULL, step INTEGER NOT NULL, op TEXT NOT "
                 "NULL, payload TEXT, state TEXT NOT NULL CHECK (state IN ('pending','inflight',"
                 "'done','retry','dead','unknown')), attempts INTEGER NOT NULL DEFAULT 0, next_at "
                 "INTEGER NOT NULL, last_status INTEGER NOT NULL DEFAULT 0, last_error TEXT, "
                 "response TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);");
    sql_on(path, schema2_rows);
    cr_assert_eq(user_version(path), 2);
    s = open_store(NULL);
    struct store_delivery_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(store_deliveries_due(s, util_now_ms(), 10, &rows, &n), STORE_OK);
    cr_assert_eq(n, 1, "the pending step is due");
    cr_expect_eq(rows[0].id, 41);
    cr_expect_eq(rows[0].event_id, 7);
    store_delivery_rows_free(rows, n);
    store_close(s);
    cr_expect_eq(user_version(path), 3);
    cr_expect_eq(sql_int(path, "SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'"), 90,
                 "the delivery ids go on after 90 ([tb:N] markers are never reused)");
    cr_expect_eq(sql_int(path, "SELECT seq FROM sqlite_sequence WHERE name = 'events'"), 20);
    cr_expect_eq(sql_int(path, "SELECT count(*) FROM sqlite_sequence WHERE name LIKE '%_new'"), 0);
    cr_expect_eq(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                               "tbl_name = 'deliveries' AND sql LIKE '%IN (%'"),
                 0, "no IN list left in the deliveries' indexes");
}

Test(store, a_newer_schema_than_the_program_knows_is_refused)
{
    struct store *s = open_store(NULL);
    store_close(s);
    sql_on(path, "PRAGMA user_version=99");
    char *err = NULL;
    s = store_open(path, NULL, base, &err);
    cr_assert_null(s);
    cr_assert_not_null(err);
    cr_expect(strstr(err, "newer") != NULL, "message: %s", err);
    free(err);
}

Test(store, an_intake_file_missing_from_a_used_store_is_refused)
{
    struct store *s = open_store(NULL);
    int64_t id = put_sync(s, "am", "{}", NULL, 0, STORE_OK);
    cr_assert_eq(store_request_reject(s, id, "bad"), STORE_OK);
    store_close(s);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -f '%s.intake' '%s.intake-wal' '%s.intake-shm'", path, path,
             path);
    tu_run(cmd, NULL);
    char *err = NULL;
    s = store_open(path, NULL, base, &err);
    cr_assert_null(s, "a fresh intake file would reuse settled request ids");
    cr_expect(err && strstr(err, "belong together"), "message: %s", err ? err : "");
    free(err);
}

Test(store, the_files_are_created_private)
{
    struct store *s = open_store(NULL);
    store_close(s);
    char cmd[2048];
    char *out = NULL;
    snprintf(cmd, sizeof cmd, "stat -c %%a '%s' '%s.intake' '%s/var'", path, path, dir);
    cr_assert_eq(tu_run(cmd, &out), 0);
    cr_expect_str_eq(out, "600\n600\n700\n");
    free(out);
}

/* ---- requests and events ------------------------------------------------------------------- */

Test(store, requests_keep_their_bytes_and_leave_the_new_list_once_settled)
{
    struct store *s = open_store(NULL);
    const char bin[] = "a\0b\xff";
    json_t *hdr = json_pack("{s:s}", "webhook-id", "msg_1");
    struct store_request r = {.source = "json", .body = bin, .body_len = 4, .headers = hdr};
    struct store_intake_result res;
    cr_assert_eq(store_intake_sync(s, &r, &res), STORE_OK);
    json_decref(hdr);
    int64_t id2 = put_sync(s, "json", "2", NULL, 0, STORE_OK);
    int64_t id3 = put_sync(s, "json", "3", NULL, 0, STORE_OK);

    struct store_request_row row;
    cr_assert_eq(store_request_get_public(s, res.public_id, &row), STORE_OK);
    cr_expect_eq(row.id, res.id);
    cr_expect_eq(row.body_len, 4);
    cr_expect_eq(memcmp(row.body, bin, 4), 0);
    cr_expect_str_eq(json_string_value(json_object_get(row.headers, "webhook-id")), "msg_1");
    cr_expect_eq(row.state, STORE_REQ_NEW);
    store_request_row_clear(&row);

    struct store_request_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(store_requests_new(s, 0, 2, &rows, &n), STORE_OK);
    cr_assert_eq(n, 2);
    cr_expect_eq(rows[0].id, res.id);
    cr_expect_eq(rows[1].id, id2);
    store_request_rows_free(rows, n);

    cr_assert_eq(store_request_processed(s, res.id, NULL, 0, NULL), STORE_OK);
    cr_assert_eq(store_request_reject(s, id2, "not JSON"), STORE_OK);
    cr_expect_eq(store_request_processed(s, id2, NULL, 0, NULL), STORE_CONFLICT);
    cr_expect_eq(store_request_reject(s, 999, "x"), STORE_NOTFOUND);
    cr_assert_eq(store_requests_new(s, 0, 10, &rows, &n), STORE_OK);
    cr_assert_eq(n, 1);
    cr_expect_eq(rows[0].id, id3);
    store_request_rows_free(rows, n);

    cr_assert_eq(store_request_get(s, id2, &row), STORE_OK);
    cr_expect_eq(row.state, STORE_REQ_REJECTED);
    cr_expect_str_eq(row.error, "not JSON");
    store_request_row_clear(&row);

    cr_expect_eq(store_request_requeue(s, id3), STORE_CONFLICT, "a new request is not requeued");
    cr_assert_eq(store_request_requeue(s, id2), STORE_OK);
    cr_assert_eq(store_requests_new(s, 0, 10, &rows, &n), STORE_OK);
    cr_assert_eq(n, 2);
    cr_expect_eq(rows[0].id, id2);
    store_request_rows_free(rows, n);
    store_close(s);
}

/* Stores a request with one event of key and nsteps deliveries; returns the event id. */
static int64_t event_with_steps(struct store *s, const char *key, int nsteps)
{
    int64_t rid = put_sync(s, "am", "{}", NULL, 0, STORE_OK);
    struct store_delivery_in d[4];
    json_t *payload = json_pack("{s:s}", "path", "/api/jobrequests");
    for (int i = 0; i < nsteps; i++)
        d[i] = (struct store_delivery_in){.step = i, .op = "create_job_request",
                                          .payload = payload};
    json_t *ev = json_pack("{s:s,s:s}", "key", key ? key : "", "status", "firing");
    json_t *plan = json_pack("[s]", "create_job_request");
    struct store_event_in e = {.seq = 0, .status = "firing", .key = key, .event = ev,
                               .rule = "disk", .plan = plan, .state = STORE_EV_PLANNED,
                               .deliveries = d, .n_deliveries = (size_t)nsteps};
    int64_t eid = 0;
    cr_assert_eq(store_request_processed(s, rid, &e, 1, &eid), STORE_OK);
    json_decref(payload);
    json_decref(ev);
    json_decref(plan);
    return eid;
}

Test(store, the_plan_of_an_event_can_be_read_alone)
{
    struct store *s = open_store(NULL);
    int64_t eid = event_with_steps(s, "k", 1);
    json_t *plan = NULL;
    cr_assert_eq(store_event_plan(s, eid, &plan), STORE_OK);
    json_t *want = json_pack("[s]", "create_job_request");
    cr_expect(json_equal(plan, want), "the stored plan comes back as it was");
    json_decref(want);
    json_decref(plan);
    plan = NULL;
    cr_expect_eq(store_event_plan(s, eid + 1000, &plan), STORE_NOTFOUND);
    cr_expect_null(plan);
    store_close(s);
}

/* Due delivery ids at now, in order, into ids (max 16); returns the count. */
static size_t due_ids(struct store *s, int64_t now, int64_t ids[16])
{
    struct store_delivery_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(store_deliveries_due(s, now, 16, &rows, &n), STORE_OK);
    for (size_t i = 0; i < n && i < 16; i++)
        ids[i] = rows[i].id;
    store_delivery_rows_free(rows, n);
    return n;
}

static enum store_delivery_state dlv_state(struct store *s, int64_t id)
{
    struct store_delivery_row r;
    cr_assert_eq(store_delivery_get(s, id, &r), STORE_OK);
    enum store_delivery_state st = r.state;
    store_delivery_row_clear(&r);
    return st;
}

static enum store_event_state ev_state(struct store *s, int64_t id)
{
    struct store_event_row r;
    cr_assert_eq(store_event_get(s, id, &r), STORE_OK);
    enum store_event_state st = r.state;
    store_event_row_clear(&r);
    return st;
}

Test(store, events_and_their_plans_are_stored_with_the_request)
{
    struct store *s = open_store(NULL);
    int64_t eid = event_with_steps(s, "site1/disk", 2);
    struct store_event_row ev;
    cr_assert_eq(store_event_get(s, eid, &ev), STORE_OK);
    cr_expect_str_eq(ev.key, "site1/disk");
    cr_expect_str_eq(ev.rule, "disk");
    cr_expect_str_eq(ev.source, "am");
    cr_expect(json_is_array(ev.plan));
    cr_expect_eq(ev.state, STORE_EV_PLANNED);
    json_t *trace = json_pack("{s:[s]}", "steps", "matched rule disk");
    cr_assert_eq(store_event_set_trace(s, eid, trace), STORE_OK);
    cr_expect_eq(store_event_set_trace(s, eid + 100, trace), STORE_NOTFOUND);
    struct store_event_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(store_events_for_request(s, ev.request_id, &rows, &n), STORE_OK);
    cr_assert_eq(n, 1);
    cr_expect(json_equal(rows[0].trace, trace));
    store_event_rows_free(rows, n);
    json_decref(trace);
    store_event_row_clear(&ev);

    struct store_delivery_row *d = NULL;
    cr_assert_eq(store_deliveries_for_event(s, eid, &d, &n), STORE_OK);
    cr_assert_eq(n, 2);
    cr_expect_eq(d[0].step, 0);
    cr_expect_eq(d[1].step, 1);
    cr_expect_str_eq(d[0].op, "create_job_request");
    cr_expect_str_eq(json_string_value(json_object_get(d[0].payload, "path")),
                     "/api/jobrequests");
    cr_expect_eq(d[0].state, STORE_DLV_PENDING);
    store_delivery_rows_free(d, n);
    store_close(s);
}

Test(store, delivery_states_change_only_along_allowed_transitions)
{
    struct store *s = open_store(NULL);
    int64_t eid = event_with_steps(s, "k1", 1);
    int64_t ids[16];
    int64_t now = util_now_ms();
    cr_assert_eq(due_ids(s, now, ids), 1);
    int64_t id = ids[0];

    cr_expect_eq(store_delivery_done(s, id, 200, NULL, NULL), STORE_CONFLICT);
    cr_expect_eq(store_delivery_unknown(s, id, "x"), STORE_CONFLICT);
    cr_expect_eq(store_delivery_retry(s, id, now, 500, "x"), STORE_CONFLICT);
    cr_expect_eq(store_delivery_inflight(s, 424242), STORE_NOTFOUND);

    cr_assert_eq(store_delivery_inflight(s, id), STORE_OK);
    cr_expect_eq(store_delivery_inflight(s, id), STORE_CONFLICT);
    cr_expect_eq(due_ids(s, now, ids), 0, "an inflight delivery is not due");
    cr_assert_eq(store_delivery_retry(s, id, now + 60000, 503, "busy"), STORE_OK);
    cr_expect_eq(due_ids(s, now, ids), 0, "a retry waits for next_at");
    cr_assert_eq(due_ids(s, now + 60000, ids), 1);
    cr_assert_eq(store_delivery_inflight(s, id), STORE_OK);
    cr_assert_eq(store_delivery_unknown(s, id, "timeout"), STORE_OK);
    /* An unknown outcome is handed back (as unknown) so the engine searches before sending. */
    struct store_delivery_row *due = NULL;
    size_t ndue = 0;
    cr_assert_eq(store_deliveries_due(s, now + 60000, 10, &due, &ndue), STORE_OK);
    cr_expect_eq(ndue, 1, "an unknown outcome is due for its check");
    cr_expect(ndue == 1 && due[0].state == STORE_DLV_UNKNOWN, "and is marked unknown");
    store_delivery_rows_free(due, ndue);
    json_t *resp = json_pack("{s:i}", "jobRequestNumber", 1234);
    cr_assert_eq(store_delivery_done(s, id, 201, resp, NULL), STORE_OK);
    cr_expect_eq(store_delivery_dead(s, id, 0, "late"), STORE_CONFLICT);

    struct store_delivery_row r;
    cr_assert_eq(store_delivery_get(s, id, &r), STORE_OK);
    cr_expect_eq(r.state, STORE_DLV_DONE);
    cr_expect_eq(r.attempts, 2);
    cr_expect_eq(r.last_status, 201);
    cr_expect(json_equal(r.response, resp));
    store_delivery_row_clear(&r);
    json_decref(resp);
    cr_expect_eq(ev_state(s, eid), STORE_EV_DONE, "an event is done when its deliveries are");
    store_close(s);
}

Test(store, one_key_has_one_delivery_at_a_time_in_order)
{
    struct store *s = open_store(NULL);
    int64_t e1 = event_with_steps(s, "site/ups", 2);
    int64_t e2 = event_with_steps(s, "site/ups", 1);
    int64_t e3 = event_with_steps(s, "site/hvac", 1);
    int64_t now = util_now_ms(), ids[16];
    struct store_delivery_row *d1 = NULL, *d2 = NULL, *d3 = NULL;
    size_t n1, n2, n3;
    cr_assert_eq(store_deliveries_for_event(s, e1, &d1, &n1), STORE_OK);
    cr_assert_eq(store_deliveries_for_event(s, e2, &d2, &n2), STORE_OK);
    cr_assert_eq(store_deliveries_for_event(s, e3, &d3, &n3), STORE_OK);

    cr_assert_eq(due_ids(s, now, ids), 2, "one head per key");
    cr_expect_eq(ids[0], d1[0].id);
    cr_expect_eq(ids[1], d3[0].id);
    cr_assert_eq(store_delivery_inflight(s, d1[0].id), STORE_OK);
    cr_assert_eq(due_ids(s, now, ids), 1, "the key with a delivery in flight yields nothing");
    cr_expect_eq(ids[0], d3[0].id);
    cr_assert_eq(store_delivery_done(s, d1[0].id, 200, NULL, NULL), STORE_OK);
    cr_assert_eq(due_ids(s, now, ids), 2);
    cr_expect_eq(ids[0], d1[1].id, "step 1 of the first event comes before the next event");
    cr_assert_eq(store_delivery_inflight(s, d1[1].id), STORE_OK);
    cr_assert_eq(store_delivery_retry(s, d1[1].id, now + 5000, 500, "oops"), STORE_OK);
    cr_assert_eq(due_ids(s, now, ids), 1, "a later event waits behind a retry of its key");
    cr_expect_eq(ids[0], d3[0].id);
    store_delivery_rows_free(d1, n1);
    store_delivery_rows_free(d2, n2);
    store_delivery_rows_free(d3, n3);
    store_close(s);
}

Test(store, a_dead_step_takes_its_later_steps_and_replay_brings_them_back)
{
    struct store *s = open_store(NULL);
    int64_t e1 = event_with_steps(s, "k", 3);
    int64_t e2 = event_with_steps(s, "k", 1);
    struct store_delivery_row *d = NULL, *d2 = NULL;
    size_t n, n2;
    int64_t now = util_now_ms(), ids[16];
    cr_assert_eq(store_deliveries_for_event(s, e1, &d, &n), STORE_OK);
    cr_assert_eq(store_deliveries_for_event(s, e2, &d2, &n2), STORE_OK);
    cr_assert_eq(store_delivery_inflight(s, d[0].id), STORE_OK);
    cr_assert_eq(store_delivery_done(s, d[0].id, 200, NULL, NULL), STORE_OK);
    cr_assert_eq(store_delivery_inflight(s, d[1].id), STORE_OK);
    cr_assert_eq(store_delivery_dead(s, d[1].id, 400, "validation failed"), STORE_OK);
    cr_expect_eq(dlv_state(s, d[2].id), STORE_DLV_DEAD);
    cr_expect_eq(ev_state(s, e1), STORE_EV_FAILED);
    cr_assert_eq(due_ids(s, now, ids), 1, "dead letters do not hold their key");
    cr_expect_eq(ids[0], d2[0].id);

    struct store_counters c;
    cr_assert_eq(store_counters(s, now, &c), STORE_OK);
    cr_expect_eq(c.deliveries_dead, 2);
    cr_expect_eq(c.deliveries_pending, 1);

    cr_expect_eq(store_delivery_requeue(s, d[0].id, now), STORE_CONFLICT);
    cr_assert_eq(store_delivery_requeue(s, d[1].id, now), STORE_OK);
    cr_expect_eq(dlv_state(s, d[1].id), STORE_DLV_PENDING);
    cr_expect_eq(dlv_state(s, d[2].id), STORE_DLV_PENDING);
    cr_expect_eq(ev_state(s, e1), STORE_EV_PLANNED);
    cr_assert_eq(due_ids(s, now, ids), 1);
    cr_expect_eq(ids[0], d[1].id, "the replayed step is again the head of its key");

    cr_assert_eq(store_delivery_dead(s, d[1].id, 0, "again"), STORE_OK);
    size_t count = 0;
    cr_assert_eq(store_deliveries_requeue_dead(s, 0, now, &count), STORE_OK);
    cr_expect_eq(count, 2);
    cr_assert_eq(store_counters(s, now, &c), STORE_OK);
    cr_expect_eq(c.deliveries_dead, 0);
    store_delivery_rows_free(d, n);
    store_delivery_rows_free(d2, n2);
    store_close(s);
}

Test(store, inflight_deliveries_become_unknown_after_a_crash)
{
    struct store *s = open_store(NULL);
    int64_t eid = event_with_steps(s, "k", 1);
    struct store_delivery_row *d = NULL;
    size_t n;
    cr_assert_eq(store_deliveries_for_event(s, eid, &d, &n), STORE_OK);
    int64_t id = d[0].id;
    store_delivery_rows_free(d, n);
    cr_assert_eq(store_delivery_inflight(s, id), STORE_OK);
    store_close(s);
    s = open_store(NULL);
    cr_expect_eq(dlv_state(s, id), STORE_DLV_UNKNOWN);
    int64_t ids[16];
    struct store_delivery_row *due = NULL;
    size_t ndue = 0;
    cr_assert_eq(store_deliveries_due(s, util_now_ms(), 10, &due, &ndue), STORE_OK);
    cr_expect(ndue == 1 && due[0].id == id && due[0].state == STORE_DLV_UNKNOWN,
              "an interrupted delivery is handed back marked unknown, to be checked first");
    store_delivery_rows_free(due, ndue);
    (void)ids;
    struct store_counters c;
    cr_assert_eq(store_counters(s, util_now_ms(), &c), STORE_OK);
    cr_expect_eq(c.deliveries_unknown, 1);
    cr_expect_eq(store_delivery_inflight(s, id), STORE_OK, "resent after the search found none");
    store_close(s);
}

/* ---- correlations, kv, sent mail ---------------------------------------------------------- */

Test(store, correlation_state_round_trips_and_can_follow_a_delivery)
{
    struct store *s = open_store(NULL);
    json_t *st = NULL;
    cr_expect_eq(store_correlation_get(s, "site/ups", &st), STORE_NOTFOUND);
    json_t *open = json_pack("{s:i,s:s,s:[],s:s}", "job_request_number", 77, "job_guid",
                             "6f1c3c5e-0000-4000-8000-000000000001", "tasks", "status", "open");
    cr_assert_eq(store_correlation_put(s, "site/ups", open), STORE_OK);
    cr_assert_eq(store_correlation_get(s, "site/ups", &st), STORE_OK);
    cr_expect(json_equal(st, open));
    json_decref(st);
    json_t *not_object = json_integer(1);
    cr_expect_eq(store_correlation_put(s, "site/ups", not_object), STORE_INVALID);
    json_decref(not_object);

    int64_t eid = event_with_steps(s, "site/ups", 1);
    struct store_delivery_row *d = NULL;
    size_t n;
    cr_assert_eq(store_deliveries_for_event(s, eid, &d, &n), STORE_OK);
    cr_assert_eq(store_delivery_inflight(s, d[0].id), STORE_OK);
    json_t *closed = json_deep_copy(open);
    json_object_set_new(closed, "status", json_string("completed"));
    cr_assert_eq(store_delivery_done(s, d[0].id, 200, NULL, closed), STORE_OK);
    cr_assert_eq(store_correlation_get(s, "site/ups", &st), STORE_OK);
    cr_expect_str_eq(json_string_value(json_object_get(st, "status")), "completed");
    json_decref(st);
    store_delivery_rows_free(d, n);
    json_decref(open);
    json_decref(closed);
    store_close(s);
}

Test(store, kv_and_sent_message_ids_round_trip)
{
    struct store *s = open_store(NULL);
    char *v = NULL;
    cr_expect_eq(store_kv_get(s, "imap.INBOX.uid", &v), STORE_NOTFOUND);
    cr_assert_eq(store_kv_put(s, "imap.INBOX.uid", "100"), STORE_OK);
    cr_assert_eq(store_kv_put(s, "imap.INBOX.uid", "101"), STORE_OK);
    cr_assert_eq(store_kv_get(s, "imap.INBOX.uid", &v), STORE_OK);
    cr_expect_str_eq(v, "101");
    free(v);

    char *key = NULL;
    int64_t rid = 0;
    cr_expect_eq(store_sent_mail_get(s, "<a@tb>", &key, &rid), STORE_NOTFOUND);
    cr_assert_eq(store_sent_mail_put(s, "<a@tb>", "site/ups", 12), STORE_OK);
    cr_assert_eq(store_sent_mail_put(s, "<b@tb>", NULL, 0), STORE_OK);
    cr_assert_eq(store_sent_mail_get(s, "<a@tb>", &key, &rid), STORE_OK);
    cr_expect_str_eq(key, "site/ups");
    cr_expect_eq(rid, 12);
    free(key);
    cr_assert_eq(store_sent_mail_get(s, "<b@tb>", &key, &rid), STORE_OK);
    cr_expect_null(key);
    cr_expect_eq(rid, 0);
    store_close(s);
}

/* ---- outbox -------------------------------------------------------------------------------- */

static size_t outbox_due_count(struct store *s, int64_t now, int64_t *first)
{
    struct store_outbox_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(store_outbox_due(s, now, 10, &rows, &n), STORE_OK);
    if (n && first)
        *first = rows[0].id;
    store_outbox_rows_free(rows, n);
    return n;
}

Test(store, outbox_messages_move_through_sending_to_sent_or_retry)
{
    struct store *s = open_store(NULL);
    json_t *msg = json_pack("{s:s,s:s}", "to", "ops@example.com", "subject", "Job 77 opened");
    int64_t id = 0, first = 0, now = util_now_ms();
    cr_assert_eq(store_outbox_add(s, msg, "<m1@tb>", 0, &id), STORE_OK);
    cr_assert_eq(outbox_due_count(s, now, &first), 1);
    cr_expect_eq(first, id);
    cr_expect_eq(store_outbox_mark(s, id, STORE_OUT_SENT, 0, NULL), STORE_CONFLICT);
    cr_assert_eq(store_outbox_mark(s, id, STORE_OUT_SENDING, 0, NULL), STORE_OK);
    cr_expect_eq(outbox_due_count(s, now, NULL), 0);
    cr_assert_eq(store_outbox_mark(s, id, STORE_OUT_RETRY, now + 1000, "421 try later"),
                 STORE_OK);
    cr_expect_eq(outbox_due_count(s, now, NULL), 0);
    cr_expect_eq(outbox_due_count(s, now + 1000, NULL), 1);
    cr_assert_eq(store_outbox_mark(s, id, STORE_OUT_SENDING, 0, NULL), STORE_OK);
    cr_assert_eq(store_outbox_mark(s, id, STORE_OUT_SENT, 0, NULL), STORE_OK);
    cr_expect_eq(store_outbox_mark(s, id, STORE_OUT_DEAD, 0, "x"), STORE_CONFLICT);
    cr_expect_eq(store_outbox_mark(s, 999, STORE_OUT_SENDING, 0, NULL), STORE_NOTFOUND);
    cr_expect_eq(store_outbox_mark(s, id, STORE_OUT_PENDING, 0, NULL), STORE_INVALID);

    int64_t id2 = 0;
    cr_assert_eq(store_outbox_add(s, msg, NULL, 0, &id2), STORE_OK);
    cr_assert_eq(store_outbox_mark(s, id2, STORE_OUT_SENDING, 0, NULL), STORE_OK);
    store_close(s);
    s = open_store(NULL);
    struct store_outbox_row *rows = NULL;
    size_t n = 0;
    cr_assert_eq(store_outbox_due(s, util_now_ms() + 1, 10, &rows, &n), STORE_OK);
    cr_assert_eq(n, 1, "mail left sending by a crash is retried");
    cr_expect_eq(rows[0].id, id2);
    cr_expect_eq(rows[0].state, STORE_OUT_RETRY);
    cr_expect_eq(rows[0].attempts, 1);
    cr_expect(json_equal(rows[0].message, msg));
    store_outbox_rows_free(rows, n);
    json_decref(msg);
    store_close(s);
}

/* ---- disk full, readiness, retention ----------------------------------------------------- */

Test(store, a_full_disk_answers_full_and_readiness_says_so)
{
    struct store_opts o = {.intake_max_bytes = 200 * 1024};
    struct store *s = open_store(&o);
    cr_expect_eq(store_check_writable(s), STORE_OK);
    static char body[32 * 1024];
    memset(body, 'x', sizeof body - 1);
    enum store_status st = STORE_OK;
    int i;
    for (i = 0; i < 64 && st == STORE_OK; i++) {
        struct store_request r = req_of("am", body, NULL, 0);
        struct store_intake_result res;
        st = store_intake_sync(s, &r, &res);
    }
    cr_assert_eq(st, STORE_FULL, "intake ended with %s after %d requests", store_status_str(st),
                 i);
    cr_expect_gt(i, 1, "some requests fit before the cap");
    cr_expect_eq(store_check_writable(s), STORE_FULL);

    struct done d = {0};
    struct store_request r = req_of("am", body, NULL, 0);
    cr_assert_eq(store_intake_submit(s, &r, on_result, &d), STORE_OK);
    run_until(&d.n, 1);
    cr_expect_eq(d.res[0].status, STORE_FULL);
    cr_expect_eq(d.res[0].id, 0);
    struct store_intake_stats stats;
    store_intake_stats(s, &stats);
    cr_expect_eq(stats.failed, 2);
    store_close(s);
}

Test(store, purge_removes_old_settled_rows_and_keeps_the_rest)
{
    struct store_opts o = {.purge_interval_ms = -1};
    struct store *s = open_store(&o);
    int64_t old = util_now_ms();
    int64_t done_rid = put_sync(s, "am", "{}", NULL, 0, STORE_OK);
    int64_t new_rid = put_sync(s, "am", "{}", NULL, 0, STORE_OK);
    json_t *ev = json_object();
    struct store_event_in e = {.event = ev, .state = STORE_EV_IGNORED};
    int64_t eid = 0;
    cr_assert_eq(store_request_processed(s, done_rid, &e, 1, &eid), STORE_OK);
    int64_t dead_event = event_with_steps(s, "k", 1);
    struct store_delivery_row *d = NULL;
    size_t n;
    cr_assert_eq(store_deliveries_for_event(s, dead_event, &d, &n), STORE_OK);
    cr_assert_eq(store_delivery_dead(s, d[0].id, 0, "no"), STORE_OK);
    store_delivery_rows_free(d, n);

    int64_t later = old + 8LL * 24 * 3600 * 1000;
    struct store_purge_counts c = {0};
    cr_assert_eq(store_purge(s, old, 100, &c), STORE_OK);
    cr_expect_eq(c.events, 0, "nothing is old yet");
    cr_assert_eq(store_intake_purge_sync(s, later, 100, &c), STORE_OK);
    cr_expect_eq(c.requests, 2, "the two settled requests go, the new one stays");
    cr_assert_eq(store_purge(s, later, 100, &c), STORE_OK);
    cr_expect_eq(c.events, 1, "the ignored event goes, the failed one stays");
    cr_expect_eq(c.request_marks, 2);
    struct store_event_row row;
    cr_expect_eq(store_event_get(s, eid, &row), STORE_NOTFOUND);
    cr_assert_eq(store_event_get(s, dead_event, &row), STORE_OK);
    store_event_row_clear(&row);

    struct store_request_row *rows = NULL;
    cr_assert_eq(store_requests_new(s, 0, 10, &rows, &n), STORE_OK);
    cr_assert_eq(n, 1);
    cr_expect_eq(rows[0].id, new_rid);
    store_request_rows_free(rows, n);
    json_decref(ev);
    store_close(s);
}

Test(store, counters_report_the_backlog)
{
    struct store *s = open_store(NULL);
    int64_t now = util_now_ms();
    put_sync(s, "am", "{}", NULL, now - 5000, STORE_OK);
    event_with_steps(s, "a", 2);
    struct store_counters c;
    cr_assert_eq(store_counters(s, now, &c), STORE_OK);
    cr_expect_eq(c.requests_new, 1);
    cr_expect_geq(c.oldest_new_age_ms, 5000);
    cr_expect_eq(c.deliveries_pending, 2);
    cr_expect_eq(c.deliveries_inflight, 0);
    cr_expect_eq(c.intake_queued, 0);
    store_close(s);
}
