/* bench_imap: one IMAP poll of 1,000 messages, end to end. Starts a real dovecot (Debian's
 * dovecot-imapd) on 127.0.0.1 with its own configuration in a temporary folder, delivers a
 * helpdesk-like mix into the maildir's new/ (plain text of 1-3 KiB; every tenth message also
 * carries a 50-200 KiB attachment, base64), then runs the IMAP poller (after: seen) on an
 * event loop with a store until every message is stored. Prints messages, MB, wall seconds,
 * messages/s, MB/s and intake commits. Not a test: it prints figures and gives up after 120 s.
 * usage: bench_imap [MESSAGES [MAX_PER_POLL]]   (default 1000 and 100: ten polls, each started
 * as soon as the one before ended; `bench_imap 1000 1000` takes them in one poll, see
 * README_imap.md)
 * Exits 0 with figures; 1 when it could not run (no dovecot, setup failed); 2 when it gave
 * up before every message was stored (the partial figures are printed). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/util.h"
#include "mail/imap.h"
#include "store.h"
#include "../support/dovecot_conf.h"

#define DOVECOT "/usr/sbin/dovecot"
#define SOURCE "mail"
#define GIVE_UP_MS 120000      /* the whole run, dovecot's start included */
#define WATCHDOG_S 150         /* last resort when something hangs outside the loop */
#define ATTACH_EVERY 10        /* one message in ten has an attachment */
#define FAILED_POLLS_MAX 10    /* polls failing in a row with nothing stored: give up early */

static char dir[256];
static char inbox[512];
static int port;
static volatile pid_t dv_pid = -1;
static uid_t mail_uid;
static gid_t mail_gid;

/* ---- Small helpers ------------------------------------------------------------------------- */

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[768];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int bad = fputs(text, f) < 0;
    return fclose(f) != 0 || bad ? -1 : 0;
}

static int chown_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return lchown(path, mail_uid, mail_gid) < 0 ? -1 : 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int p = -1;
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        p = ntohs(a.sin_port);
    close(fd);
    return p;
}

static int port_open(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Last resort: a hang outside the bounded loop must not leave dovecot running. */
static void on_alarm(int sig)
{
    static const char msg[] = "bench_imap: watchdog expired, giving up\n";
    if (dv_pid > 0)
        kill(dv_pid, SIGKILL);
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(2);
}

/* ---- dovecot ------------------------------------------------------------------------------- */

/* Writes the configuration, passwd-file and maildir and starts dovecot in the foreground, as
 * tests/integration/test_mail_imap.c does: as root the login processes run as dovenull and
 * the mail as the dovecot user (dovecot refuses root for both). 0, or -1 (printed). */
static int dovecot_start(void)
{
    if (access(DOVECOT, X_OK) != 0) {
        fprintf(stderr, "bench_imap: %s is missing: install dovecot-imapd\n", DOVECOT);
        return -1;
    }
    char path[768], text[4096];
    const char *login_user, *internal_user;
    struct passwd *pw;
    if (geteuid() == 0) {
        pw = getpwnam("dovecot");
        if (!pw || !getpwnam("dovenull")) {
            fprintf(stderr, "bench_imap: no 'dovecot' or 'dovenull' user: install dovecot-core\n");
            return -1;
        }
        login_user = "dovenull";
        internal_user = "dovecot";
    } else {
        pw = getpwuid(geteuid());
        if (!pw)
            return -1;
        login_user = internal_user = pw->pw_name;
    }
    mail_uid = pw->pw_uid;
    mail_gid = pw->pw_gid;
    static const char *const subs[] = {"dv/base", "dv/state", "mail/alice/new", "mail/alice/cur",
                                       "mail/alice/tmp"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
        if (mkdir_p(path, 0755) < 0) {
            fprintf(stderr, "bench_imap: mkdir %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    snprintf(inbox, sizeof inbox, "%s/mail/alice", dir);
    snprintf(path, sizeof path, "%s/dv/passwd", dir);
    snprintf(text, sizeof text, "alice:{PLAIN}wonderland:%u:%u::%s\n", (unsigned)mail_uid,
             (unsigned)mail_gid, inbox);
    if (write_text(path, text) < 0)
        return -1;
    if ((port = free_port()) < 0)
        return -1;
    tu_dovecot_conf(text, sizeof text, dir, login_user, internal_user, inbox, port);
    snprintf(path, sizeof path, "%s/dv/dovecot.conf", dir);
    if (write_text(path, text) < 0)
        return -1;
    if (geteuid() == 0) {
        char mailroot[768];
        snprintf(mailroot, sizeof mailroot, "%s/mail", dir);
        if (nftw(mailroot, chown_one, 16, FTW_PHYS) != 0) {
            fprintf(stderr, "bench_imap: chown %s: %s\n", mailroot, strerror(errno));
            return -1;
        }
    }
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the benchmark */
        execl(DOVECOT, "dovecot", "-F", "-c", path, (char *)NULL);
        _exit(127);
    }
    dv_pid = pid;
    for (int i = 0; i < 200 && !port_open(port); i++) {
        int st;
        if (waitpid(dv_pid, &st, WNOHANG) == dv_pid) {
            dv_pid = -1;
            break;
        }
        sleep_ms(100);
    }
    if (dv_pid < 0 || !port_open(port)) {
        char logp[768];
        snprintf(logp, sizeof logp, "%s/dv/dovecot.log", dir);
        char *log = util_read_file(logp, 1 << 16, NULL);
        fprintf(stderr, "bench_imap: dovecot did not start on port %d; its log:\n%s\n", port,
                log ? log : "");
        free(log);
        return -1;
    }
    return 0;
}

static void dovecot_stop(void)
{
    pid_t pid = dv_pid;
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    int st;
    for (int i = 0; i < 50; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            dv_pid = -1;
            return;
        }
        sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    dv_pid = -1;
}

/* ---- The mail ------------------------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ULL; /* fixed seed: every run delivers the same mail */

static uint64_t rnd(uint64_t bound)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % bound;
}

static const char *const subjects[] = {
    "Leak under the kitchen sink",     "Heating not working",         "Broken window latch",
    "Light flickering in the corridor", "Air conditioning too loud",   "Lift stuck between floors",
    "Door access card refused",        "Water stain on the ceiling",
};

static const char *const phrases[] = {
    "Good morning, ",
    "since yesterday afternoon the problem has got worse and the tenants are complaining. ",
    "Could someone from facilities have a look before Friday? ",
    "The caretaker already checked the fuse box but found nothing unusual. ",
    "We have placed a bucket under it for now, but it fills up within a few hours. ",
    "Please note that the room is booked for a client meeting on Thursday morning. ",
    "Access is possible between 8:00 and 17:00; the key is at the reception desk. ",
    "I have attached a photo that shows the damage. ",
    "Thank you in advance for your help. ",
    "This is the second time this month that we report the same issue. ",
};

/* Writes one message in CRLF form (what IMAP serves, so RFC822.SIZE is the file size) through
 * tmp/ and a rename into new/, as an MTA delivers. Returns its size, or -1. */
static long deliver(int n)
{
    static int seq;
    char tmp[1024], dst[1024], name[128];
    snprintf(name, sizeof name, "%lld.M%dP%d.bench", (long long)time(NULL), ++seq, (int)getpid());
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", inbox, name);
    snprintf(dst, sizeof dst, "%s/new/%s", inbox, name);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int attach = n % ATTACH_EVERY == ATTACH_EVERY - 1;
    int room = 100 + (int)rnd(400);
    char subject[128];
    snprintf(subject, sizeof subject, "%s, room %d",
             subjects[rnd(sizeof subjects / sizeof subjects[0])], room);
    fprintf(f,
            "Return-Path: <tenant%d@tenant.example>\r\n"
            "Received: from mx.tenant.example (mx.tenant.example [192.0.2.%d])\r\n"
            "\tby mail.fm.example.com with ESMTPS id bench%d; Tue, 14 Nov 2023 09:%02d:%02d +0000\r\n"
            "From: Tenant %d <tenant%d@tenant.example>\r\n"
            "To: Helpdesk <helpdesk@fm.example.com>\r\n"
            "Subject: %s\r\n"
            "Date: Tue, 14 Nov 2023 09:%02d:%02d +0000\r\n"
            "Message-ID: <bench-%d.%llu@tenant.example>\r\n"
            "MIME-Version: 1.0\r\n",
            n, 1 + n % 250, n, n / 60 % 60, n % 60, n, n, subject, n / 60 % 60, n % 60, n,
            (unsigned long long)rnd(1000000000));
    if (attach)
        fputs("Content-Type: multipart/mixed; boundary=\"=_bench_part\"\r\n\r\n"
              "This is a multi-part message in MIME format.\r\n\r\n--=_bench_part\r\n",
              f);
    fputs("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", f);
    /* The text: 1-3 KiB of prose in lines of at most ~76 characters. */
    long text = 1024 + (long)rnd(2048), col = 0;
    for (long w = 0; w < text;) {
        const char *ph = phrases[rnd(sizeof phrases / sizeof phrases[0])];
        for (const char *p = ph; *p; p++) {
            if (*p == ' ' && col > 66) {
                fputs("\r\n", f);
                col = 0;
                w += 2;
                continue;
            }
            fputc(*p, f);
            col++;
            w++;
        }
    }
    fprintf(f, "\r\n\r\n-- \r\nTenant %d, room %d\r\n", n, room);
    if (attach) {
        size_t len = (size_t)(50 + rnd(151)) * 1024;
        unsigned char *bin = malloc(len);
        char *b64 = NULL;
        if (bin) {
            for (size_t i = 0; i < len; i++)
                bin[i] = (unsigned char)rnd(256);
            b64 = crypto_b64_encode(bin, len, 0);
        }
        free(bin);
        if (!b64) {
            fclose(f);
            return -1;
        }
        fprintf(f,
                "\r\n--=_bench_part\r\nContent-Type: image/jpeg; name=\"photo-%d.jpg\"\r\n"
                "Content-Disposition: attachment; filename=\"photo-%d.jpg\"\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n",
                n, n);
        size_t bl = strlen(b64);
        for (size_t i = 0; i < bl; i += 76) {
            fwrite(b64 + i, 1, bl - i < 76 ? bl - i : 76, f);
            fputs("\r\n", f);
        }
        free(b64);
        fputs("\r\n--=_bench_part--\r\n", f);
    }
    long size = ftell(f);
    if (fclose(f) != 0 || size < 0)
        return -1;
    if (geteuid() == 0 && chown(tmp, mail_uid, mail_gid) < 0)
        return -1;
    if (rename(tmp, dst) < 0)
        return -1;
    return size;
}

/* ---- The run ------------------------------------------------------------------------------- */

struct run {
    struct event_base *base;
    struct mail_imap_poller *poller;
    int want, stored;
    int64_t t0, t_first, t_done, deadline;
    uint64_t kicked_at; /* polls ended when the last kick was made */
};

static void on_stored(int64_t request_id, void *arg)
{
    struct run *r = arg;
    int64_t now = util_mono_ms();
    if (r->stored++ == 0)
        r->t_first = now;
    if (r->stored >= r->want) {
        r->t_done = now;
        event_base_loopbreak(r->base);
    }
}

/* Every 20 ms: gives up at the deadline or when polls keep failing without storing anything;
 * when a poll ended short of the count (max_per_poll below it), kicks the next poll at once
 * instead of waiting for the interval. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    if (util_mono_ms() >= r->deadline) {
        event_base_loopbreak(r->base);
        return;
    }
    struct mail_imap_stats st;
    mail_imap_poller_stats(r->poller, &st);
    if (st.failures >= FAILED_POLLS_MAX && st.stored == 0) {
        event_base_loopbreak(r->base);
        return;
    }
    if (st.polls > r->kicked_at && st.polls == st.started && r->stored < r->want) {
        r->kicked_at = st.polls;
        mail_imap_poller_kick(r->poller);
    }
}

/* Bytes of the request bodies the store holds: what the poll carried into custody. */
static uint64_t stored_bytes(struct store *s)
{
    uint64_t total = 0;
    int64_t after = 0;
    for (;;) {
        struct store_request_row *rows = NULL;
        size_t n = 0;
        if (store_requests_new(s, after, 1000, &rows, &n) != STORE_OK || n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            total += rows[i].body_len;
        after = rows[n - 1].id;
        store_request_rows_free(rows, n);
    }
    return total;
}

int main(int argc, char **argv)
{
    int want = 1000;
    long per_poll = 100, v;
    int rc = 1;
    struct event_base *base = NULL;
    struct store *store = NULL;
    struct run r = {0};
    char *err = NULL;

    if (argc > 1) {
        if (util_parse_long(argv[1], 1, 100000, &v) < 0) {
            fprintf(stderr, "usage: bench_imap [MESSAGES [MAX_PER_POLL]]\n");
            return 1;
        }
        want = (int)v;
    }
    if (argc > 2 && util_parse_long(argv[2], 1, 1000, &per_poll) < 0) {
        fprintf(stderr, "usage: bench_imap [MESSAGES [MAX_PER_POLL (1..1000)]]\n");
        return 1;
    }
    log_init("bench_imap", 0);
    log_set_level(LOG_LVL_WARN); /* the poller logs every message at info */
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm(WATCHDOG_S);
    int64_t start = util_mono_ms();

    const char *tmpdir = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/bench_imap.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) {
        perror("bench_imap: mkdtemp");
        return 1;
    }
    if (chmod(dir, 0755) < 0) /* dovecot's users walk into it */
        goto done;
    if (dovecot_start() < 0)
        goto done;

    double bytes = 0;
    int attachments = 0;
    for (int i = 0; i < want; i++) {
        long sz = deliver(i);
        if (sz < 0) {
            fprintf(stderr, "bench_imap: cannot deliver message %d: %s\n", i, strerror(errno));
            goto done;
        }
        bytes += (double)sz;
        attachments += i % ATTACH_EVERY == ATTACH_EVERY - 1;
    }

    base = event_base_new();
    char path[768];
    snprintf(path, sizeof path, "%s/state.db", dir);
    store = base ? store_open(path, NULL, base, &err) : NULL;
    if (!store) {
        fprintf(stderr, "bench_imap: store_open: %s\n", err ? err : "?");
        goto done;
    }
    char json[512];
    snprintf(json, sizeof json,
             "{\"url\": \"imap://127.0.0.1:%d\", \"user\": \"alice\", \"password\": \"wonderland\","
             " \"after\": \"seen\", \"interval\": 1, \"timeout\": \"30s\", \"max_per_poll\": %ld}",
             port, per_poll);
    json_t *opts = json_loads(json, 0, NULL);
    r.base = base;
    r.want = want;
    r.deadline = start + GIVE_UP_MS;
    r.t0 = util_mono_ms();
    r.poller = opts ? mail_imap_poller_new(base, store, SOURCE, opts, on_stored, &r, &err) : NULL;
    json_decref(opts);
    if (!r.poller) {
        fprintf(stderr, "bench_imap: mail_imap_poller_new: %s\n", err ? err : "?");
        goto done;
    }
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, &r);
    struct timeval every = {0, 20000};
    if (!tick || event_add(tick, &every) < 0) {
        fprintf(stderr, "bench_imap: cannot set up the timer\n");
        event_free(tick);
        goto done;
    }
    event_base_dispatch(base);
    event_free(tick);
    int64_t end = r.t_done ? r.t_done : util_mono_ms();

    struct mail_imap_stats ps;
    struct store_intake_stats is;
    mail_imap_poller_stats(r.poller, &ps);
    store_intake_stats(store, &is);
    double secs = (double)(end - r.t0) / 1000.0;
    double mb = bytes / 1e6;
    double mb_stored = (double)stored_bytes(store) / 1e6;
    printf("IMAP poll of a dovecot maildir on 127.0.0.1:%d, after: seen, max_per_poll %ld,\n"
           "store and maildir in %s (removed afterwards)\n",
           port, per_poll, dir);
    printf("delivered     %d messages (%d with a 50-200 KiB attachment), %.2f MB\n", want,
           attachments, mb);
    printf("messages      %d stored%s\n", r.stored, r.stored < want ? " (gave up)" : "");
    printf("total MB      %.2f\n", mb_stored);
    printf("wall seconds  %.3f (first message stored after %.3f s)\n", secs,
           r.t_first ? (double)(r.t_first - r.t0) / 1000.0 : 0.0);
    printf("messages/s    %.1f\n", secs > 0 ? r.stored / secs : 0.0);
    printf("MB/s          %.2f\n", secs > 0 ? mb_stored / secs : 0.0);
    printf("commits       %llu intake commits (max batch %llu, %.2f requests per commit)\n",
           (unsigned long long)is.commits, (unsigned long long)is.max_batch,
           is.commits ? (double)is.stored / (double)is.commits : 0.0);
    printf("polls         %llu ended, %llu failed; %llu duplicates, %llu skipped\n",
           (unsigned long long)ps.polls, (unsigned long long)ps.failures,
           (unsigned long long)ps.duplicates, (unsigned long long)ps.skipped);
    rc = r.stored >= want ? 0 : 2;
    if (rc)
        fprintf(stderr, "bench_imap: gave up after %.0f s with %d of %d messages stored\n",
                (double)(util_mono_ms() - start) / 1000.0, r.stored, want);

done:
    mail_imap_poller_free(r.poller);
    store_close(store);
    if (base)
        event_base_free(base);
    dovecot_stop();
    free(err);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    alarm(0);
    return rc;
}
