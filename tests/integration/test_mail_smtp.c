/* Integration tests for the mail sender: a real SMTP server (tests/integration/smtp_sink.py on
 * aiosmtpd) on 127.0.0.1, a real store, and the sender on a libevent loop — delivery with the
 * headers intact, header injection, 4xx retried then delivered, 5xx dead-lettered, a relay
 * that is down, AUTH, and a malformed outbox row. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "common/util.h"
#include "mail/parse.h"
#include "mail/ref.h"
#include "mail/send.h"
#include "store.h"
#include "testutil.h"

#define FROM "Facilities Helpdesk <helpdesk@fm.example.com>"
#define MAX_RESULTS 16

static char *dir;
static char maildir[600];
static pid_t sink_pid = -1;
static int sink_port;
static struct event_base *base;
static struct store *store;
static struct mail_sender *sender;

static struct {
    int n, want;
    int64_t id[MAX_RESULTS];
    enum mail_send_outcome outcome[MAX_RESULTS];
    int code[MAX_RESULTS];
    char error[MAX_RESULTS][300];
    char message_id[MAX_RESULTS][300];
} got;

static void setup(void)
{
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    dir = tu_tmpdir();
    cr_assert_not_null(dir);
    snprintf(maildir, sizeof maildir, "%s/sink", dir);
    cr_assert_eq(mkdir(maildir, 0700), 0);
    base = event_base_new();
    char path[700], *err = NULL;
    snprintf(path, sizeof path, "%s/state.db", dir);
    store = store_open(path, NULL, base, &err);
    cr_assert_not_null(store, "store_open: %s", err ? err : "?");
    memset(&got, 0, sizeof got);
}

static void teardown(void)
{
    mail_sender_free(sender);
    sender = NULL;
    store_close(store);
    event_base_free(base);
    if (sink_pid > 0)
        tu_proc_stop(sink_pid);
    sink_pid = -1;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    tu_run(cmd, NULL);
    free(dir);
}

TestSuite(mail_smtp, .init = setup, .fini = teardown, .timeout = 120);

/* Starts the sink (extra: one more argument or NULL); fails the test when it does not. */
static void start_sink(const char *extra)
{
    char script[600];
    snprintf(script, sizeof script, "%s/tests/integration/smtp_sink.py", tu_env("TB_SRC", "."));
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    sink_pid = fork();
    cr_assert_geq(sink_pid, 0);
    if (sink_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a test that is killed */
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        /* Debian's interpreter, which has python3-aiosmtpd (not whatever is first on PATH). */
        execl("/usr/bin/python3", "python3", script, "--dir", maildir, extra ? extra : (char *)NULL,
              (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[256];
    size_t len = 0;
    time_t deadline = time(NULL) + 20;
    sink_port = 0;
    while (!sink_port && time(NULL) < deadline && len < sizeof line - 1) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t r = read(fds[0], line + len, sizeof line - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        line[len] = '\0';
        char *at = strstr(line, "listening on 127.0.0.1:");
        if (at && strchr(at, '\n')) {
            at += strlen("listening on 127.0.0.1:");
            char num[16];
            snprintf(num, sizeof num, "%.*s", (int)strcspn(at, "\r\n"), at);
            long port = 0;
            if (util_parse_long(num, 1, 65535, &port) == 0)
                sink_port = (int)port;
            else
                break;
        }
    }
    close(fds[0]);
    cr_assert_gt(sink_port, 0, "the SMTP sink did not start (is python3-aiosmtpd installed?)");
}

static void on_result(const struct mail_send_result *r, void *arg)
{
    if (got.n < MAX_RESULTS) {
        got.id[got.n] = r->outbox_id;
        got.outcome[got.n] = r->outcome;
        got.code[got.n] = r->smtp_code;
        snprintf(got.error[got.n], sizeof got.error[0], "%s", r->error ? r->error : "");
        snprintf(got.message_id[got.n], sizeof got.message_id[0], "%s",
                 r->message_id ? r->message_id : "");
    }
    got.n++;
    if (got.n >= got.want)
        event_base_loopbreak(base);
}

static void start_sender(int port, int max_attempts, const char *user, const char *password)
{
    struct mail_sender_opts o = {0};
    o.smtp.host = "127.0.0.1";
    o.smtp.port = port;
    o.smtp.user = user;
    o.smtp.password = password;
    o.smtp.timeout_ms = 10000;
    o.from = FROM;
    o.max_attempts = max_attempts;
    o.backoff_base_ms = 20;
    o.backoff_cap_ms = 100;
    o.poll_interval_ms = 25;
    o.on_result = on_result;
    char *err = NULL;
    sender = mail_sender_new(base, store, &o, &err);
    cr_assert_not_null(sender, "mail_sender_new: %s", err ? err : "?");
}

/* Runs the loop until want outcomes were reported (bounded by a deadline, not asserted on). */
static void run_until(int want)
{
    got.want = want;
    struct timeval limit = {30, 0};
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    cr_assert_geq(got.n, want, "only %d of %d outcomes were reported", got.n, want);
}

static int64_t enqueue(const char *json)
{
    json_error_t je;
    json_t *m = json_loads(json, 0, &je);
    cr_assert_not_null(m, "bad test JSON: %s", je.text);
    int64_t id = 0;
    char *err = NULL;
    cr_assert_eq(mail_send_enqueue(store, m, FROM, 0, &id, &err), STORE_OK, "%s", err ? err : "");
    json_decref(m);
    return id;
}

/* The messages the sink saved, by name; returns how many (at most max). */
static int sink_files(char names[][64], int max)
{
    DIR *d = opendir(maildir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".eml") == 0)
            snprintf(names[n++], 64, "%.*s", (int)(l - 4), e->d_name);
    }
    closedir(d);
    return n;
}

static char *sink_read(const char *name, const char *ext, size_t *len)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s.%s", maildir, name, ext);
    char *data = util_read_file(path, 1 << 20, len);
    cr_assert_not_null(data, "cannot read %s", path);
    return data;
}

static int count_header_lines(const char *raw, const char *prefix)
{
    const char *end = strstr(raw, "\r\n\r\n");
    if (!end)
        end = strstr(raw, "\n\n");
    cr_assert_not_null(end);
    int n = 0;
    size_t pl = strlen(prefix);
    const char *p = raw;
    while (p && p < end) {
        if (strncasecmp(p, prefix, pl) == 0)
            n++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return n;
}

Test(mail_smtp, a_message_reaches_the_relay_with_its_headers_intact)
{
    start_sink(NULL);
    int64_t id = enqueue(
        "{\"to\": \"Alice Ämter <alice@example.org>\", \"cc\": \"reject-cc@example.org\","
        " \"subject\": \"Lüftung defekt\\r\\nBcc: victim@example.com\","
        " \"text\": \"Your request was logged.\\n.a line with a leading dot\\nÄnderung\\n\","
        " \"in_reply_to\": \"<req-1@mail.example.org>\", \"auto\": \"auto-replied\","
        " \"ref\": {\"kind\": \"job_request\", \"number\": 1234}, \"corr_key\": \"email:req-1\"}");
    start_sender(sink_port, 3, NULL, NULL);
    run_until(1);
    cr_assert_eq(got.outcome[0], MAIL_SEND_SENT, "outcome %d: %s", got.outcome[0], got.error[0]);
    cr_assert_eq(got.id[0], id);
    cr_assert_not_null(strstr(got.error[0], "1 of 2 recipients refused"),
                       "the refused Cc is reported: %s", got.error[0]);

    char names[4][64];
    cr_assert_eq(sink_files(names, 4), 1);
    size_t len = 0;
    char *env = sink_read(names[0], "env", &len);
    json_t *envj = json_loads(env, 0, NULL);
    cr_assert_not_null(envj);
    cr_assert_str_eq(json_string_value(json_object_get(envj, "mail_from")),
                     "helpdesk@fm.example.com");
    cr_assert_eq(json_array_size(json_object_get(envj, "rcpt_tos")), 1,
                 "only alice accepted; no injected Bcc recipient");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(envj, "rcpt_tos"), 0)),
                     "alice@example.org");

    char *raw = sink_read(names[0], "eml", &len);
    cr_assert_eq(count_header_lines(raw, "Subject:"), 1);
    cr_assert_eq(count_header_lines(raw, "Bcc:"), 0);
    cr_assert_not_null(strstr(raw, "Subject: =?UTF-8?B?"), "the subject is RFC 2047 encoded");
    json_t *msg = NULL;
    char *perr = NULL;
    cr_assert_eq(mail_parse_message(raw, len, NULL, &msg, &perr), MAIL_OK, "%s", perr ? perr : "");
    json_t *h = json_object_get(msg, "headers");
    cr_assert_str_eq(json_string_value(json_object_get(msg, "subject")),
                     "Lüftung defekt Bcc: victim@example.com");
    cr_assert_str_eq(json_string_value(json_object_get(h, "auto-submitted")), "auto-replied");
    cr_assert_str_eq(json_string_value(json_object_get(h, "x-auto-response-suppress")), "All");
    cr_assert_not_null(json_object_get(h, "x-trackbridge"));
    cr_assert_str_eq(json_string_value(json_object_get(msg, "in_reply_to")),
                     "req-1@mail.example.org");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(msg, "from"), "name")),
                     "Facilities Helpdesk");
    const char *mid = json_string_value(json_object_get(msg, "message_id"));
    struct mail_ref r;
    char domain[64];
    cr_assert_eq(mail_ref_parse_message_id(mid, &r, domain, sizeof domain), 0,
                 "Message-ID %s is not ours", mid);
    cr_assert_eq(r.kind, MAIL_REF_JOB_REQUEST);
    cr_assert_str_eq(r.number, "1234");
    cr_assert_str_eq(domain, "fm.example.com");
    cr_assert_str_eq(mid, got.message_id[0]);
    cr_assert_not_null(strstr(json_string_value(json_object_get(msg, "body")),
                              "\n.a line with a leading dot\nÄnderung"),
                       "body: %s", json_string_value(json_object_get(msg, "body")));

    /* The Message-ID is remembered for threading replies. */
    char *key = NULL;
    int64_t rid = -1;
    cr_assert_eq(store_sent_mail_get(store, mid, &key, &rid), STORE_OK);
    cr_assert_str_eq(key, "email:req-1");
    free(key);
    struct store_counters c;
    cr_assert_eq(store_counters(store, util_now_ms(), &c), STORE_OK);
    cr_assert_eq(c.outbox_pending, 0);
    cr_assert_eq(c.outbox_dead, 0);
    json_decref(msg);
    json_decref(envj);
    free(raw);
    free(env);
}

Test(mail_smtp, a_4xx_is_retried_with_backoff_and_then_delivered)
{
    start_sink(NULL);
    enqueue("{\"to\": \"tempfail-once@example.org\", \"subject\": \"s\", \"text\": \"x\"}");
    start_sender(sink_port, 5, NULL, NULL);
    run_until(2);
    cr_assert_eq(got.outcome[0], MAIL_SEND_RETRY);
    cr_assert_eq(got.code[0], 451);
    cr_assert_not_null(strstr(got.error[0], "451"), "%s", got.error[0]);
    cr_assert_eq(got.outcome[1], MAIL_SEND_SENT, "second outcome: %s", got.error[1]);
    char names[4][64];
    cr_assert_eq(sink_files(names, 4), 1, "delivered exactly once");
    struct mail_sender_stats st;
    mail_sender_stats(sender, &st);
    cr_assert_eq(st.retried, 1);
    cr_assert_eq(st.sent, 1);
}

Test(mail_smtp, a_5xx_for_every_recipient_makes_a_dead_letter_with_the_servers_text)
{
    start_sink(NULL);
    enqueue("{\"to\": \"reject-me@example.org\", \"subject\": \"s\", \"text\": \"x\"}");
    start_sender(sink_port, 5, NULL, NULL);
    run_until(1);
    cr_assert_eq(got.outcome[0], MAIL_SEND_DEAD);
    cr_assert_eq(got.code[0], 550);
    cr_assert_not_null(strstr(got.error[0], "mailbox unavailable"), "%s", got.error[0]);
    char names[4][64];
    cr_assert_eq(sink_files(names, 4), 0);
    struct store_counters c;
    cr_assert_eq(store_counters(store, util_now_ms(), &c), STORE_OK);
    cr_assert_eq(c.outbox_dead, 1);
    cr_assert_eq(c.outbox_pending, 0);
}

Test(mail_smtp, a_relay_that_is_down_is_retried_until_the_attempts_run_out)
{
    /* A port nobody listens on: bind, read the port, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    enqueue("{\"to\": \"a@example.org\", \"subject\": \"s\", \"text\": \"x\"}");
    start_sender(ntohs(a.sin_port), 2, NULL, NULL);
    run_until(2);
    cr_assert_eq(got.outcome[0], MAIL_SEND_RETRY, "%s", got.error[0]);
    cr_assert_eq(got.outcome[1], MAIL_SEND_DEAD);
    cr_assert_not_null(strstr(got.error[1], "gave up after 2 attempts"), "%s", got.error[1]);
}

Test(mail_smtp, auth_credentials_are_used_and_wrong_ones_are_retried_not_dropped)
{
    start_sink("--auth=mailer:s3cret");
    enqueue("{\"to\": \"a@example.org\", \"subject\": \"with auth\", \"text\": \"x\"}");
    start_sender(sink_port, 3, "mailer", "s3cret");
    run_until(1);
    cr_assert_eq(got.outcome[0], MAIL_SEND_SENT, "%s", got.error[0]);
    mail_sender_free(sender);
    sender = NULL;

    memset(&got, 0, sizeof got);
    enqueue("{\"to\": \"a@example.org\", \"subject\": \"wrong auth\", \"text\": \"x\"}");
    start_sender(sink_port, 3, "mailer", "wrong");
    run_until(1);
    cr_assert_eq(got.outcome[0], MAIL_SEND_RETRY, "a credentials problem is not the mail's: %s",
                 got.error[0]);
    cr_assert(got.code[0] == 530 || got.code[0] == 535, "code %d", got.code[0]);
    char names[4][64];
    cr_assert_eq(sink_files(names, 4), 1);
}

Test(mail_smtp, a_malformed_outbox_row_becomes_a_dead_letter_without_contacting_the_relay)
{
    json_t *bad = json_pack("{s:s, s:s}", "subject", "no recipient", "text", "x");
    int64_t id = 0;
    cr_assert_eq(store_outbox_add(store, bad, NULL, 0, &id), STORE_OK);
    json_decref(bad);
    start_sender(1, 3, NULL, NULL); /* port 1: nothing may connect anyway */
    run_until(1);
    cr_assert_eq(got.id[0], id);
    cr_assert_eq(got.outcome[0], MAIL_SEND_DEAD);
    cr_assert_eq(got.code[0], 0);
    cr_assert_not_null(strstr(got.error[0], "to"), "%s", got.error[0]);
}
