/* bench_store: durable intake throughput of the store on this disk. For 1, 8 and 64
 * concurrent submitters (requests outstanding on the event loop, each completion submitting
 * the next) it prints requests/s, intake commits and the real fsync count, counted by a thin
 * SQLite VFS shim around the default one. Not a test: it prints figures.
 * usage: bench_store [DIR] [SECONDS_PER_LEVEL]   (DIR defaults to a new folder in ".") */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <sqlite3.h>

#include "common/log.h"
#include "common/util.h"
#include "store.h"

/* ---- fsync-counting VFS ------------------------------------------------------------------- */

struct cnt_file {
    sqlite3_file base;
    sqlite3_file *real; /* the default VFS's file, allocated right after this struct */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs cnt_vfs;
static atomic_ulong n_sync;

#define REAL(f) (((struct cnt_file *)(f))->real)

static int c_close(sqlite3_file *f)
{
    return REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
}
static int c_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}
static int c_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}
static int c_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int c_sync(sqlite3_file *f, int flags)
{
    atomic_fetch_add(&n_sync, 1);
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int c_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int c_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int c_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int c_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int c_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int c_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int c_device_chars(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int c_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}
static int c_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void c_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int c_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int c_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}
static int c_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods cnt_io = {
    3, c_close, c_read, c_write, c_truncate, c_sync, c_file_size, c_lock, c_unlock,
    c_check_reserved, c_file_control, c_sector_size, c_device_chars, c_shm_map, c_shm_lock,
    c_shm_barrier, c_shm_unmap, c_fetch, c_unfetch,
};

static int c_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                  int *out_flags)
{
    struct cnt_file *c = (struct cnt_file *)f;
    (void)vfs;
    c->real = (sqlite3_file *)(c + 1);
    int rc = real_vfs->xOpen(real_vfs, name, c->real, flags, out_flags);
    c->base.pMethods = c->real->pMethods ? &cnt_io : NULL;
    return rc;
}

static int vfs_install(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs || real_vfs->iVersion < 3)
        return -1;
    cnt_vfs = *real_vfs;
    cnt_vfs.szOsFile = (int)sizeof(struct cnt_file) + real_vfs->szOsFile;
    cnt_vfs.zName = "tb-count";
    cnt_vfs.pNext = NULL;
    cnt_vfs.xOpen = c_open;
    return sqlite3_vfs_register(&cnt_vfs, 1) == SQLITE_OK ? 0 : -1;
}

/* ---- load ----------------------------------------------------------------------------------- */

struct run {
    struct store *s;
    struct event_base *base;
    int64_t deadline;     /* monotonic ms: no new submits after it */
    long submitted, completed, failed, outstanding;
    char body[1024];
};

static void submit_one(struct run *r);

static void on_stored(const struct store_intake_result *res, void *arg)
{
    struct run *r = arg;
    r->completed++;
    r->outstanding--;
    if (res->status != STORE_OK)
        r->failed++;
    if (util_mono_ms() < r->deadline)
        submit_one(r);
    else if (r->outstanding == 0)
        event_base_loopbreak(r->base);
}

static void submit_one(struct run *r)
{
    char key[48];
    snprintf(key, sizeof key, "bench-%ld", r->submitted);
    struct store_request req = {.source = "bench", .body = r->body, .body_len = strlen(r->body),
                                .dedup_key = key, .content_type = "application/json",
                                .remote_addr = "127.0.0.1"};
    r->submitted++;
    r->outstanding++;
    store_intake_submit(r->s, &req, on_stored, r);
}

static int run_level(const char *dir, int level, int seconds)
{
    char path[1024], *err = NULL;
    struct event_base *base = event_base_new();
    struct store *s = NULL;
    if (snprintf(path, sizeof path, "%s/level-%d/store.db", dir, level) < (int)sizeof path &&
        base)
        s = store_open(path, NULL, base, &err);
    if (!s) {
        fprintf(stderr, "bench_store: %s\n", err ? err : "cannot open");
        free(err);
        if (base)
            event_base_free(base);
        return -1;
    }
    static struct run r;
    memset(&r, 0, sizeof r);
    r.s = s;
    r.base = base;
    memset(r.body, 'a', sizeof r.body - 1); /* a typical 1 KiB alert */
    r.body[0] = '"';
    r.body[sizeof r.body - 2] = '"';

    struct store_intake_stats before, after;
    store_intake_stats(s, &before);
    unsigned long sync0 = atomic_load(&n_sync);
    int64_t t0 = util_mono_ms();
    r.deadline = t0 + (int64_t)seconds * 1000;
    for (int i = 0; i < level; i++)
        submit_one(&r);
    event_base_dispatch(base);
    int64_t t1 = util_mono_ms();
    unsigned long syncs = atomic_load(&n_sync) - sync0;
    store_intake_stats(s, &after);
    uint64_t commits = after.commits - before.commits;
    double secs = (double)(t1 - t0) / 1000.0;
    printf("%-11d %10.0f %9ld %9llu %9lu %10.1f %10.2f %6ld\n", level,
           (double)r.completed / (secs > 0 ? secs : 1), r.completed,
           (unsigned long long)commits, syncs,
           commits ? (double)r.completed / (double)commits : 0.0,
           r.completed ? (double)syncs / (double)r.completed : 0.0, r.failed);
    fflush(stdout);
    store_close(s);
    event_base_free(base);
    return 0;
}

int main(int argc, char **argv)
{
    char dir[1024];
    int seconds = 3;
    log_init("bench_store", 0);
    log_set_level(LOG_LVL_WARN);
    evthread_use_pthreads();
    if (argc > 1) {
        snprintf(dir, sizeof dir, "%s", argv[1]);
    } else {
        snprintf(dir, sizeof dir, "./bench_store.XXXXXX");
        if (!mkdtemp(dir)) {
            perror("bench_store: mkdtemp");
            return 1;
        }
    }
    long v;
    if (argc > 2 && util_parse_long(argv[2], 1, 600, &v) == 0)
        seconds = (int)v;
    if (vfs_install() < 0) {
        fprintf(stderr, "bench_store: cannot install the counting VFS\n");
        return 1;
    }
    printf("durable intake (synchronous=FULL, WAL, group commit), 1 KiB bodies, %d s per level\n"
           "folder: %s\n\n", seconds, dir);
    printf("%-11s %10s %9s %9s %9s %10s %10s %6s\n", "submitters", "req/s", "requests",
           "commits", "fsyncs", "req/commit", "fsync/req", "failed");
    const int levels[] = {1, 8, 64};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (run_level(dir, levels[i], seconds) < 0)
            return 1;
    return 0;
}
