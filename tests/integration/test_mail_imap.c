/* Integration tests for the IMAP poller against a real dovecot (Debian's dovecot-imapd) that
 * each test starts on 127.0.0.1 with its own configuration, passwd-file and maildir in a
 * temporary folder: each message stored once (also across a restart and in polls of hundreds),
 * \Seen or moved only after the commit, a backlog drained without waiting the interval, a
 * UIDVALIDITY change, size limits and bad credentials. Also the option checks and dedup keys,
 * which need no server. Without dovecot the tests fail, loudly. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
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

#include "common/util.h"
#include "mail/imap.h"
#include "store.h"
#include "testutil.h"
#include "dovecot_conf.h"

#define DOVECOT "/usr/sbin/dovecot"
#define SOURCE "mail"

static char *dir;
static char inbox[600];
static int port;
static pid_t dv_pid = -1;
static uid_t mail_uid;
static gid_t mail_gid;
static struct event_base *base;
static struct store *store;
static struct mail_imap_poller *poller;
static int stored_calls;

static void mkdirs(const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    cr_assert_eq(tu_run(cmd, NULL), 0, "command failed: %s", cmd);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)p),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Writes the dovecot configuration and starts dovecot in the foreground. As root the login
 * processes run as dovenull and the mail as the dovecot user (dovecot refuses root for
 * both); otherwise everything runs as the calling user. */
static void dovecot_start(void)
{
    cr_assert_eq(access(DOVECOT, X_OK), 0,
                 "%s is missing: install dovecot-imapd (deploy/bootstrap.sh)", DOVECOT);
    char path[700], text[4096];
    const char *login_user, *internal_user;
    struct passwd *pw;
    if (geteuid() == 0) {
        pw = getpwnam("dovecot");
        cr_assert_not_null(pw, "no 'dovecot' user: install dovecot-core");
        cr_assert_not_null(getpwnam("dovenull"), "no 'dovenull' user: install dovecot-core");
        login_user = "dovenull";
        internal_user = "dovecot";
    } else {
        pw = getpwuid(geteuid());
        cr_assert_not_null(pw);
        login_user = internal_user = pw->pw_name;
    }
    mail_uid = pw->pw_uid;
    mail_gid = pw->pw_gid;
    snprintf(path, sizeof path, "%s/dv/base", dir);
    mkdirs(path);
    snprintf(path, sizeof path, "%s/dv/state", dir);
    mkdirs(path);
    snprintf(inbox, sizeof inbox, "%s/mail/alice", dir);
    snprintf(path, sizeof path, "%s/new", inbox);
    mkdirs(path);
    snprintf(path, sizeof path, "%s/cur", inbox);
    mkdirs(path);
    snprintf(path, sizeof path, "%s/tmp", inbox);
    mkdirs(path);
    snprintf(path, sizeof path, "%s/dv/passwd", dir);
    snprintf(text, sizeof text, "alice:{PLAIN}wonderland:%u:%u::%s\n", (unsigned)mail_uid,
             (unsigned)mail_gid, inbox);
    write_text(path, text);
    port = free_port();
    tu_dovecot_conf(text, sizeof text, dir, login_user, internal_user, inbox, port);
    snprintf(path, sizeof path, "%s/dv/dovecot.conf", dir);
    write_text(path, text);
    if (geteuid() == 0) {
        char mailroot[700];
        snprintf(mailroot, sizeof mailroot, "%s/mail", dir);
        cr_assert_eq(chown(mailroot, mail_uid, mail_gid), 0);
        char cmd[800];
        snprintf(cmd, sizeof cmd, "chown -R %u:%u '%s'", (unsigned)mail_uid, (unsigned)mail_gid,
                 inbox);
        cr_assert_eq(tu_run(cmd, NULL), 0);
    }
    dv_pid = fork();
    cr_assert_geq(dv_pid, 0);
    if (dv_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a test that is killed */
        execl(DOVECOT, "dovecot", "-F", "-c", path, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !port_open(port); i++) {
        int st;
        if (waitpid(dv_pid, &st, WNOHANG) == dv_pid) {
            dv_pid = -1;
            break;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!port_open(port)) {
        char logp[700], *log = NULL;
        snprintf(logp, sizeof logp, "%s/dv/dovecot.log", dir);
        log = util_read_file(logp, 1 << 16, NULL);
        cr_assert_fail("dovecot did not start on port %d; its log:\n%s", port, log ? log : "");
    }
}

static void setup(void)
{
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    dir = tu_tmpdir();
    cr_assert_not_null(dir);
    cr_assert_eq(chmod(dir, 0755), 0); /* dovecot's users walk into it */
    base = event_base_new();
    char path[700], *err = NULL;
    snprintf(path, sizeof path, "%s/state.db", dir);
    store = store_open(path, NULL, base, &err);
    cr_assert_not_null(store, "store_open: %s", err ? err : "?");
    stored_calls = 0;
    dovecot_start();
}

static void teardown(void)
{
    mail_imap_poller_free(poller);
    poller = NULL;
    store_close(store);
    event_base_free(base);
    if (dv_pid > 0)
        tu_proc_stop(dv_pid);
    dv_pid = -1;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    tu_run(cmd, NULL);
    free(dir);
}

/* One suite (criterion's runner leaks with two suites run in parallel); the tests that need
 * dovecot say so with .init/.fini. */
TestSuite(mail_imap, .timeout = 120);

/* Delivers a message into the INBOX the way an MTA does: tmp/ then rename into new/. */
static void deliver(int n, const char *message_id, size_t pad)
{
    static int seq;
    char tmp[800], dst[800], name[128];
    snprintf(name, sizeof name, "%lld.M%dP%d.tbtest", (long long)time(NULL), ++seq, (int)getpid());
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", inbox, name);
    snprintf(dst, sizeof dst, "%s/new/%s", inbox, name);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "From: Tenant %d <tenant%d@example.org>\r\nTo: helpdesk@fm.example.com\r\n"
            "Subject: Leak number %d\r\n",
            n, n, n);
    if (message_id)
        fprintf(f, "Message-ID:\r\n <%s>\r\n", message_id);
    fprintf(f, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\nWater on the floor, room %d.\r\n", n);
    for (size_t i = 0; i < pad; i++)
        fputc(i % 64 == 63 ? '\n' : 'x', f);
    fclose(f);
    if (geteuid() == 0)
        cr_assert_eq(chown(tmp, mail_uid, mail_gid), 0);
    cr_assert_eq(rename(tmp, dst), 0);
}

static void on_stored(int64_t request_id, void *arg)
{
    cr_assert_gt(request_id, 0);
    stored_calls++;
}

static void start_poller(const char *extra_json)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"url\": \"imap://127.0.0.1:%d\", \"user\": \"alice\", \"password\": \"wonderland\","
             " \"interval\": 1, \"timeout\": \"10s\"%s%s}",
             port, extra_json ? ", " : "", extra_json ? extra_json : "");
    json_error_t je;
    json_t *opts = json_loads(json, 0, &je);
    cr_assert_not_null(opts, "bad test JSON: %s", je.text);
    char *err = NULL;
    poller = mail_imap_poller_new(base, store, SOURCE, opts, on_stored, NULL, &err);
    json_decref(opts);
    cr_assert_not_null(poller, "mail_imap_poller_new: %s", err ? err : "?");
}

static void stop_poller(void)
{
    mail_imap_poller_free(poller);
    poller = NULL;
}

struct wait_for {
    uint64_t ended; /* polls + failures that mean the kicked poll has ended */
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct wait_for *w = arg;
    struct mail_imap_stats st;
    mail_imap_poller_stats(poller, &st);
    if (st.polls + st.failures >= w->ended)
        event_base_loopbreak(base);
}

/* Kicks the poller and runs the loop (which serves its store calls) until the poll the kick
 * brought has ended (bounded by a deadline); then checks that polls more polls and failures
 * more failed polls ended than before. */
static struct mail_imap_stats run_polls(uint64_t polls, uint64_t failures)
{
    struct mail_imap_stats st;
    mail_imap_poller_stats(poller, &st);
    uint64_t start_polls = st.polls, start_failures = st.failures;
    struct wait_for w = {mail_imap_poller_kick(poller) + 1};
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, &w);
    struct timeval every = {0, 20000}, limit = {40, 0};
    event_add(tick, &every);
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    event_free(tick);
    mail_imap_poller_stats(poller, &st);
    cr_assert(st.polls + st.failures >= w.ended, "the poller did not finish a poll in time");
    cr_assert(st.polls >= start_polls + polls && st.failures >= start_failures + failures,
              "%llu polls and %llu failures ended", (unsigned long long)st.polls,
              (unsigned long long)st.failures);
    return st;
}

static size_t count_requests(struct store_request_row **rows)
{
    size_t n = 0;
    cr_assert_eq(store_requests_new(store, 0, 1000, rows, &n), STORE_OK);
    return n;
}

/* Files in a maildir folder ("cur", ".Processed/new", ...); with flag, only those whose
 * maildir info carries that flag letter. */
static int count_files(const char *sub, char flag)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", inbox, sub);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        const char *info = strstr(e->d_name, ":2,");
        if (!flag || (info && strchr(info + 3, flag)))
            n++;
    }
    closedir(d);
    return n;
}

Test(mail_imap, each_message_is_stored_once_flagged_seen_and_not_taken_again_after_a_restart,
     .init = setup, .fini = teardown)
{
    deliver(1, "m1@example.org", 0);
    deliver(2, "m2@example.org", 0);
    deliver(3, "m3@example.org", 0);
    start_poller(NULL);
    struct mail_imap_stats st = run_polls(1, 0);
    cr_assert_eq(st.stored, 3);
    cr_assert_eq(stored_calls, 3);
    struct store_request_row *rows = NULL;
    size_t n = count_requests(&rows);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(rows[i].source, SOURCE);
        cr_assert_str_eq(rows[i].content_type, "message/rfc822");
        cr_assert_not_null(strstr((const char *)rows[i].body, "Water on the floor"));
        char want[48];
        snprintf(want, sizeof want, "m%zu@example.org", i + 1);
        cr_assert_str_eq(rows[i].dedup_key, want, "the Message-ID is the dedup key");
    }
    store_request_rows_free(rows, n);
    cr_assert_eq(count_files("cur", 'S'), 3, "every stored message is \\Seen");

    /* A restart takes nothing twice; a new message is taken. */
    stop_poller();
    start_poller(NULL);
    st = run_polls(1, 0);
    cr_assert_eq(st.stored, 0);
    cr_assert_eq(st.duplicates, 0, "nothing is even fetched again");
    deliver(4, "m4@example.org", 0);
    st = run_polls(1, 0);
    cr_assert_eq(st.stored, 1);
    n = count_requests(&rows);
    cr_assert_eq(n, 4);
    store_request_rows_free(rows, n);
    cr_assert_eq(stored_calls, 4);
}

Test(mail_imap, messages_are_moved_to_a_folder_that_is_created_on_demand, .init = setup,
     .fini = teardown)
{
    deliver(1, "mv1@example.org", 0);
    deliver(2, "mv2@example.org", 0);
    start_poller("\"after\": \"move\", \"move_to\": \"Processed\"");
    struct mail_imap_stats st = run_polls(1, 0);
    cr_assert_eq(st.stored, 2);
    cr_assert_eq(count_files("new", 0) + count_files("cur", 0), 0, "the INBOX is empty");
    cr_assert_eq(count_files(".Processed/new", 0) + count_files(".Processed/cur", 0), 2);
    struct store_request_row *rows = NULL;
    size_t n = count_requests(&rows);
    cr_assert_eq(n, 2);
    store_request_rows_free(rows, n);
}

Test(mail_imap, a_uidvalidity_change_starts_over_without_storing_anything_twice, .init = setup,
     .fini = teardown)
{
    deliver(1, "uv1@example.org", 0);
    deliver(2, "uv2@example.org", 0);
    start_poller("\"start\": \"all\"");
    struct mail_imap_stats st = run_polls(1, 0);
    cr_assert_eq(st.stored, 2);
    stop_poller();

    /* Dovecot gives the mailbox a new UIDVALIDITY when its uidlist and indexes are gone. */
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/dovecot-uidlist '%s'/dovecot.index*", inbox, inbox);
    cr_assert_eq(tu_run(cmd, NULL), 0);
    deliver(3, "uv3@example.org", 0);
    start_poller("\"start\": \"all\"");
    st = run_polls(1, 0);
    cr_assert_eq(st.uidvalidity_resets, 1);
    cr_assert_eq(st.stored, 1, "only the new message is stored");
    cr_assert_eq(st.duplicates, 2, "the old ones are recognised by their Message-ID");
    struct store_request_row *rows = NULL;
    size_t n = count_requests(&rows);
    cr_assert_eq(n, 3);
    store_request_rows_free(rows, n);
}

Test(mail_imap, oversized_messages_are_left_unseen_and_mail_without_an_id_is_keyed_by_digest,
     .init = setup, .fini = teardown)
{
    deliver(1, "big@example.org", 4096);
    deliver(2, NULL, 0);
    start_poller("\"max_message_bytes\": 2048");
    struct mail_imap_stats st = run_polls(1, 0);
    cr_assert_eq(st.skipped, 1);
    cr_assert_eq(st.stored, 1);
    struct store_request_row *rows = NULL;
    size_t n = count_requests(&rows);
    cr_assert_eq(n, 1);
    cr_assert_eq(strncmp(rows[0].dedup_key, "sha256:", 7), 0, "key %s", rows[0].dedup_key);
    store_request_rows_free(rows, n);
    cr_assert_eq(count_files("cur", 'S'), 1, "only the stored message is \\Seen");
}

Test(mail_imap, only_unseen_mail_onwards_is_taken_the_first_time, .init = setup, .fini = teardown)
{
    deliver(1, "old@example.org", 0);
    /* Read it as a person would: flag it \Seen first. */
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "curl -s --user alice:wonderland 'imap://127.0.0.1:%d/INBOX' -X 'STORE 1 +FLAGS "
             "(\\Seen)' >/dev/null",
             port);
    cr_assert_eq(tu_run(cmd, NULL), 0);
    deliver(2, "unseen@example.org", 0);
    start_poller(NULL);
    struct mail_imap_stats st = run_polls(1, 0);
    cr_assert_eq(st.stored, 1);
    struct store_request_row *rows = NULL;
    size_t n = count_requests(&rows);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(rows[0].dedup_key, "unseen@example.org");
    store_request_rows_free(rows, n);
}

/* Checks that the store holds exactly n requests, keyed "<prefix><1..n>@example.org", each
 * once, and that every one of them is \Seen in the mailbox. */
static void assert_each_stored_once(const char *prefix, size_t n)
{
    struct store_request_row *rows = NULL;
    size_t got = count_requests(&rows);
    cr_assert_eq(got, n, "%zu requests stored, %zu expected", got, n);
    char *seen = calloc(n + 1, 1);
    cr_assert_not_null(seen);
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < got; i++) {
        const char *k = rows[i].dedup_key;
        cr_assert_eq(strncmp(k, prefix, pl), 0, "unexpected key %s", k);
        int64_t num = 0;
        char digits[16];
        size_t dl = strspn(k + pl, "0123456789");
        cr_assert(dl > 0 && dl < sizeof digits && strcmp(k + pl + dl, "@example.org") == 0,
                  "unexpected key %s", k);
        memcpy(digits, k + pl, dl);
        digits[dl] = '\0';
        cr_assert_eq(util_parse_i64(digits, 1, (int64_t)n, &num), 0, "unexpected key %s", k);
        cr_assert_eq(seen[num], 0, "%s is stored twice", k);
        seen[num] = 1;
    }
    free(seen);
    store_request_rows_free(rows, got);
    cr_assert_eq(count_files("cur", 'S'), (int)n, "every stored message is \\Seen");
}

static void deliver_many(const char *prefix, int n)
{
    for (int i = 1; i <= n; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s%d@example.org", prefix, i);
        deliver(i, id, 0);
    }
}

Test(mail_imap, a_poll_of_hundreds_of_messages_takes_them_all_once, .init = setup,
     .fini = teardown)
{
    /* One RFC822.SIZE listing of all 250 UIDs would pass libcurl 7.88's cap on a command's
     * untagged lines; the sizes are asked for in parts. */
    deliver_many("bulk", 250);
    start_poller("\"max_per_poll\": 1000");
    struct mail_imap_stats st = run_polls(1, 0);
    cr_assert_eq(st.failures, 0, "no poll failed");
    cr_assert_eq(st.stored, 250);
    cr_assert_eq(st.duplicates, 0);
    cr_assert_eq(st.skipped, 0);
    cr_assert_eq(stored_calls, 250);
    assert_each_stored_once("bulk", 250);
}

struct wait_stored {
    uint64_t want;
    int64_t deadline;
};

static void on_stored_tick(evutil_socket_t fd, short what, void *arg)
{
    struct wait_stored *w = arg;
    struct mail_imap_stats st;
    mail_imap_poller_stats(poller, &st);
    if (st.stored >= w->want || util_mono_ms() >= w->deadline)
        event_base_loopbreak(base);
}

Test(mail_imap, a_backlog_is_drained_poll_after_poll_without_waiting_the_interval,
     .init = setup, .fini = teardown)
{
    deliver_many("backlog", 35);
    /* An hour between polls: only polls that follow a full one at once can take all 35 in
     * time. No kick: the first poll starts by itself. */
    start_poller("\"max_per_poll\": 10, \"interval\": \"1h\"");
    struct wait_stored w = {35, util_mono_ms() + 30000};
    struct event *tick = event_new(base, -1, EV_PERSIST, on_stored_tick, &w);
    struct timeval every = {0, 20000};
    event_add(tick, &every);
    event_base_dispatch(base);
    event_free(tick);
    struct mail_imap_stats st;
    mail_imap_poller_stats(poller, &st);
    cr_assert_eq(st.stored, 35, "%llu of 35 stored within 30 s of an hour's interval",
                 (unsigned long long)st.stored);
    cr_assert_eq(st.failures, 0);
    cr_assert_geq(st.started, 4, "each poll takes at most 10");
    stop_poller();
    cr_assert_eq(stored_calls, 35);
    assert_each_stored_once("backlog", 35);
}

Test(mail_imap, wrong_credentials_fail_the_poll_and_store_nothing, .init = setup, .fini = teardown)
{
    deliver(1, "x@example.org", 0);
    char json[512];
    snprintf(json, sizeof json,
             "{\"url\": \"imap://127.0.0.1:%d\", \"user\": \"alice\", \"password\": \"wrong\","
             " \"interval\": 1}",
             port);
    json_t *opts = json_loads(json, 0, NULL);
    char *err = NULL;
    poller = mail_imap_poller_new(base, store, SOURCE, opts, on_stored, NULL, &err);
    json_decref(opts);
    cr_assert_not_null(poller);
    struct mail_imap_stats st = run_polls(0, 1);
    cr_assert_eq(st.stored, 0);
    cr_assert_eq(st.polls, 0);
    struct store_request_row *rows = NULL;
    cr_assert_eq(count_requests(&rows), 0);
    store_request_rows_free(rows, 0);
}

/* ---- No server needed ---------------------------------------------------------------------- */

static char *check(const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    cr_assert_not_null(o, "bad test JSON: %s", json);
    char *err = NULL;
    int rc = mail_imap_check_options(o, &err);
    json_decref(o);
    if (rc == 0) {
        cr_assert_null(err);
        return NULL;
    }
    cr_assert_not_null(err);
    return err;
}

Test(mail_imap, good_options_are_read_with_their_defaults)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "url", "imaps://mail.example.org:993/", "user", "u",
                          "password", "p");
    struct mail_imap_opts opts;
    char *err = NULL;
    cr_assert_eq(mail_imap_options_parse(o, &opts, &err), 0, "%s", err ? err : "");
    cr_assert_str_eq(opts.url, "imaps://mail.example.org:993");
    cr_assert_str_eq(opts.mailbox, "INBOX");
    cr_assert_eq(opts.interval_ms, 60000);
    cr_assert_eq(opts.after, MAIL_IMAP_AFTER_SEEN);
    cr_assert_eq(opts.start, MAIL_IMAP_START_UNSEEN);
    cr_assert_eq(opts.tls_verify, 1);
    cr_assert_eq(opts.max_per_poll, 50);
    mail_imap_options_free(&opts);
    json_decref(o);
    cr_assert_null(
        check("{\"url\": \"imap://h\", \"user\": \"u\", \"password\": \"p\","
              " \"mailbox\": \"Help Desk\", \"interval\": \"5m\", \"after\": \"move\","
              " \"move_to\": \"Done\", \"start\": \"new\", \"max_message_bytes\": \"10MiB\","
              " \"max_per_poll\": 10, \"tls_verify\": false, \"starttls\": true}"));
    json_t *src = json_pack("{s:s, s:{s:s}}", "provider", "raw", "imap", "url", "imap://h");
    cr_assert_not_null(mail_imap_options_of(src));
    cr_assert_null(mail_imap_options_of(json_object_get(src, "imap")));
    json_decref(src);
}

Test(mail_imap, bad_options_are_refused_naming_the_key_and_never_the_password)
{
    static const char *const cases[][2] = {
        {"{\"user\": \"u\", \"password\": \"p\"}", "imap.url"},
        {"{\"url\": \"http://h\", \"user\": \"u\", \"password\": \"p\"}", "imap.url"},
        {"{\"url\": \"imap://u:secret@h\", \"user\": \"u\", \"password\": \"p\"}", "imap.url"},
        {"{\"url\": \"imap://h/INBOX\", \"user\": \"u\", \"password\": \"p\"}", "imap.url"},
        {"{\"url\": \"imap://h\", \"password\": \"p\"}", "imap.user"},
        {"{\"url\": \"imap://h\", \"user\": \"u\"}", "imap.password"},
        {"{\"url\": \"imap://h\", \"user\": \"u\", \"password\": \"p\", \"after\": \"delete\"}",
         "imap.after"},
        {"{\"url\": \"imap://h\", \"user\": \"u\", \"password\": \"p\", \"after\": \"move\"}",
         "imap.move_to"},
        {"{\"url\": \"imap://h\", \"user\": \"u\", \"password\": \"p\", \"move_to\": \"X\"}",
         "imap.move_to"},
        {"{\"url\": \"imap://h\", \"user\": \"u\", \"password\": \"p\", \"interval\": \"0s\"}",
         "imap.interval"},
        {"{\"url\": \"imap://h\", \"user\": \"u\", \"password\": \"p\", \"mailbox\": \"a\\\"b\"}",
         "imap.mailbox"},
        {"{\"url\": \"imap://h\", \"user\": \"u\", \"password\": \"p\", \"max_per_poll\": 0}",
         "imap.max_per_poll"},
        {"{\"url\": \"imaps://h\", \"user\": \"u\", \"password\": \"p\", \"starttls\": true}",
         "imap.starttls"},
        {"{\"url\": \"imap://h\", \"user\": \"u\", \"password\": \"p\", \"start\": \"x\"}",
         "imap.start"},
        {"{\"url\": \"imap://h\", \"user\": \"u\", \"password\": \"p\", \"folder\": \"x\"}",
         "folder"},
        {"[]", "imap"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = check(cases[i][0]);
        cr_assert_not_null(err, "case %zu was accepted", i);
        cr_expect_not_null(strstr(err, cases[i][1]), "case %zu: '%s' does not name %s", i, err,
                           cases[i][1]);
        cr_expect_null(strstr(err, "secret"), "case %zu leaks the password: %s", i, err);
        free(err);
    }
}

Test(mail_imap, the_dedup_key_is_the_message_id_or_a_digest)
{
    const char *m1 = "Subject: a\r\nMessage-Id:\r\n\t<Abc.1@Example.org>\r\n\r\nbody\r\n";
    char *k = mail_imap_message_key(m1, strlen(m1));
    cr_assert_str_eq(k, "Abc.1@Example.org");
    free(k);
    const char *m2 = "Subject: a\nMessage-ID: bare-id@x\n\nbody\n";
    k = mail_imap_message_key(m2, strlen(m2));
    cr_assert_str_eq(k, "bare-id@x");
    free(k);
    const char *m3 = "Subject: a\r\n\r\nMessage-ID: <in-body@x>\r\n";
    k = mail_imap_message_key(m3, strlen(m3));
    cr_assert_eq(strncmp(k, "sha256:", 7), 0, "a Message-ID in the body does not count: %s", k);
    cr_assert_eq(strlen(k), 7 + 64);
    char *k2 = mail_imap_message_key(m3, strlen(m3));
    cr_assert_str_eq(k, k2);
    free(k);
    free(k2);
}
