/* Integration tests for `trackbridge mail`, the MTA pipe: the real binary posts stdin to a
 * small libevent HTTP server on 127.0.0.1 (running in a thread of the test) that answers as
 * the intake would — 202 stored, 200 duplicate, 503/429 busy, 400/404 rejected — and to a
 * port nobody listens on. Asserts the sysexits code, the request as sent, and stderr. */
#include <criterion/criterion.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "common/util.h"
#include "testutil.h"

#define MSG_WITH_ID                                                                                \
    "From: Tenant <tenant@example.org>\r\nTo: helpdesk@fm.example.com\r\n"                         \
    "Subject: Leak\r\nMessage-ID: <leak-1@example.org>\r\n\r\nWater on the floor.\r\n"

static struct event_base *sbase;
static struct evhttp *http;
static pthread_t sthread;
static int sport;
static char *dir;
static char msgfile[600], errfile[600];

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int n;
    char path[256];
    char content_type[128];
    char authorization[256];
    char idempotency[512];
    char *body;
    size_t body_len;
} seen;

static void answer(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                   const char *body)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

/* /hooks/email and /hooks/custom: 202; /hooks/dup: 200; /hooks/busy: 503; /hooks/slow: 429;
 * /hooks/bad: 400 problem; anything else: 404 problem. */
static void on_request(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *ct = evhttp_find_header(h, "Content-Type");
    const char *au = evhttp_find_header(h, "Authorization");
    const char *ik = evhttp_find_header(h, "Idempotency-Key");
    pthread_mutex_lock(&mu);
    seen.n++;
    snprintf(seen.path, sizeof seen.path, "%s", uri);
    snprintf(seen.content_type, sizeof seen.content_type, "%s", ct ? ct : "");
    snprintf(seen.authorization, sizeof seen.authorization, "%s", au ? au : "");
    snprintf(seen.idempotency, sizeof seen.idempotency, "%s", ik ? ik : "");
    free(seen.body);
    seen.body_len = evbuffer_get_length(in);
    seen.body = malloc(seen.body_len + 1);
    evbuffer_copyout(in, seen.body, seen.body_len);
    seen.body[seen.body_len] = '\0';
    pthread_mutex_unlock(&mu);
    const char *pj = "application/problem+json";
    if (strcmp(uri, "/hooks/email") == 0 || strcmp(uri, "/hooks/custom") == 0)
        answer(req, 202, "Accepted", "application/json", "{\"id\": \"1\"}");
    else if (strcmp(uri, "/hooks/dup") == 0)
        answer(req, 200, "OK", "application/json", "{\"id\": \"1\"}");
    else if (strcmp(uri, "/hooks/busy") == 0)
        answer(req, 503, "Service Unavailable", pj,
               "{\"type\": \"about:blank\", \"title\": \"Store unavailable\", \"status\": 503}");
    else if (strcmp(uri, "/hooks/slow") == 0)
        answer(req, 429, "Too Many Requests", pj, "{\"title\": \"Rate limited\", \"status\": 429}");
    else if (strcmp(uri, "/hooks/bad") == 0)
        answer(req, 400, "Bad Request", pj,
               "{\"title\": \"Bad payload\", \"status\": 400, \"detail\": \"not a mail message\"}");
    else
        answer(req, 404, "Not Found", pj,
               "{\"title\": \"Unknown source\", \"status\": 404, \"detail\": \"no such source\"}");
}

static void *serve(void *arg)
{
    event_base_dispatch(sbase);
    return NULL;
}

static void setup(void)
{
    evthread_use_pthreads();
    dir = tu_tmpdir();
    cr_assert_not_null(dir);
    snprintf(msgfile, sizeof msgfile, "%s/msg.eml", dir);
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", dir);
    sbase = event_base_new();
    http = evhttp_new(sbase);
    evhttp_set_gencb(http, on_request, NULL);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    cr_assert_not_null(bs);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    cr_assert_eq(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&a, &al), 0);
    sport = ntohs(a.sin_port);
    memset(&seen, 0, sizeof seen);
    cr_assert_eq(pthread_create(&sthread, NULL, serve, NULL), 0);
}

static void teardown(void)
{
    event_base_loopbreak(sbase); /* the base is notifiable: evthread_use_pthreads */
    pthread_join(sthread, NULL);
    evhttp_free(http);
    event_base_free(sbase);
    free(seen.body);
    seen.body = NULL;
    char rm[700];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    tu_run(rm, NULL);
    free(dir);
}

TestSuite(mail_pipe, .init = setup, .fini = teardown, .timeout = 60);

static void write_msg(const char *text, size_t pad)
{
    FILE *f = fopen(msgfile, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    for (size_t i = 0; i < pad; i++)
        fputc(i % 70 == 69 ? '\n' : 'x', f);
    fclose(f);
}

/* Runs `trackbridge mail ARGS < stdin_path` with env (may be ""); returns the exit code and
 * leaves stderr in *err (malloc'd). */
static int run_mail(const char *env, const char *args, const char *stdin_path, char **err)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s '%s' mail %s < '%s' 2> '%s'", env,
             tu_env("TB_BIN", "./trackbridge"), args, stdin_path, errfile);
    int rc = tu_run(cmd, NULL);
    *err = util_read_file(errfile, 1 << 16, NULL);
    cr_assert_not_null(*err);
    return rc;
}

static int run_to(const char *path_and_args, char **err)
{
    char args[1024];
    snprintf(args, sizeof args, "--url http://127.0.0.1:%d%s", sport, path_and_args);
    return run_mail("", args, msgfile, err);
}

Test(mail_pipe, a_stored_message_exits_0_after_posting_the_raw_mail_with_its_headers)
{
    write_msg(MSG_WITH_ID, 0);
    char *err;
    cr_assert_eq(run_to(" --token s3cr3t-token", &err), 0, "stderr: %s", err);
    cr_assert_str_eq(err, "");
    pthread_mutex_lock(&mu);
    cr_assert_eq(seen.n, 1);
    cr_assert_str_eq(seen.path, "/hooks/email");
    cr_assert_str_eq(seen.content_type, "message/rfc822");
    cr_assert_str_eq(seen.authorization, "Bearer s3cr3t-token");
    cr_assert_str_eq(seen.idempotency, "leak-1@example.org");
    cr_assert_eq(seen.body_len, strlen(MSG_WITH_ID));
    cr_assert_str_eq(seen.body, MSG_WITH_ID);
    pthread_mutex_unlock(&mu);
    free(err);
}

Test(mail_pipe, the_source_names_the_hook_and_a_url_with_hooks_is_used_as_is)
{
    write_msg(MSG_WITH_ID, 0);
    char *err;
    cr_assert_eq(run_to("/ --source custom", &err), 0, "stderr: %s", err);
    cr_assert_str_eq(seen.path, "/hooks/custom");
    free(err);
    cr_assert_eq(run_to("/hooks/dup --source ignored", &err), 0, "a duplicate is stored: %s", err);
    cr_assert_str_eq(seen.path, "/hooks/dup");
    free(err);
}

Test(mail_pipe, the_token_comes_from_a_file_or_the_environment_and_is_never_printed)
{
    write_msg(MSG_WITH_ID, 0);
    char tokfile[700];
    snprintf(tokfile, sizeof tokfile, "%s/token", dir);
    FILE *f = fopen(tokfile, "w");
    fputs("file-token-123\n", f);
    fclose(f);
    char args[1024], *err;
    snprintf(args, sizeof args, "--url http://127.0.0.1:%d --token-file '%s'", sport, tokfile);
    cr_assert_eq(run_mail("", args, msgfile, &err), 0, "%s", err);
    cr_assert_str_eq(seen.authorization, "Bearer file-token-123");
    free(err);
    snprintf(args, sizeof args, "--url http://127.0.0.1:%d/hooks/bad", sport);
    cr_assert_eq(run_mail("TRACKBRIDGE_TOKEN=env-token-456", args, msgfile, &err), 65);
    cr_assert_str_eq(seen.authorization, "Bearer env-token-456");
    cr_assert_null(strstr(err, "env-token-456"), "the token leaked: %s", err);
    free(err);
    snprintf(args, sizeof args, "--url http://127.0.0.1:%d --token-file '%s/missing'", sport, dir);
    cr_assert_eq(run_mail("", args, msgfile, &err), 75, "an unreadable token file keeps the mail");
    free(err);
}

Test(mail_pipe, a_busy_or_rate_limiting_server_gives_75_so_the_mta_retries)
{
    write_msg(MSG_WITH_ID, 0);
    char *err;
    cr_assert_eq(run_to("/hooks/busy", &err), 75);
    cr_assert_not_null(strstr(err, "503"), "%s", err);
    cr_assert_not_null(strstr(err, "Store unavailable"), "%s", err);
    free(err);
    cr_assert_eq(run_to("/hooks/slow", &err), 75);
    free(err);
}

Test(mail_pipe, a_rejection_gives_65_with_the_problem_detail_on_stderr)
{
    write_msg(MSG_WITH_ID, 0);
    char *err;
    cr_assert_eq(run_to("/hooks/bad", &err), 65);
    cr_assert_not_null(strstr(err, "400 Bad payload: not a mail message"), "%s", err);
    free(err);
    cr_assert_eq(run_to(" --source nosuch", &err), 65);
    cr_assert_not_null(strstr(err, "no such source"), "%s", err);
    free(err);
}

Test(mail_pipe, a_server_that_is_down_gives_75)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    write_msg(MSG_WITH_ID, 0);
    char args[256], *err;
    snprintf(args, sizeof args, "--url http://127.0.0.1:%d --timeout 5", ntohs(a.sin_port));
    cr_assert_eq(run_mail("", args, msgfile, &err), 75);
    cr_assert_not_null(strstr(err, "will be retried"), "%s", err);
    free(err);
}

Test(mail_pipe, bad_usage_gives_64_and_sends_nothing)
{
    write_msg(MSG_WITH_ID, 0);
    char *err;
    cr_assert_eq(run_mail("", "", msgfile, &err), 64);
    free(err);
    cr_assert_eq(run_mail("", "--url ftp://x", msgfile, &err), 64);
    free(err);
    cr_assert_eq(run_to(" --timeout abc", &err), 64);
    free(err);
    cr_assert_eq(run_to(" --source 'a/b'", &err), 64);
    free(err);
    cr_assert_eq(run_to(" --bogus", &err), 64);
    free(err);
    cr_assert_eq(run_to(" --token 'has space'", &err), 64);
    free(err);
    cr_assert_eq(seen.n, 0);
}

Test(mail_pipe, an_oversized_or_empty_message_gives_65_and_an_unreadable_stdin_74)
{
    write_msg(MSG_WITH_ID, 4000);
    char *err;
    cr_assert_eq(run_to(" --max-size 1KiB", &err), 65);
    cr_assert_not_null(strstr(err, "larger than 1024"), "%s", err);
    free(err);
    write_msg("", 0);
    cr_assert_eq(run_to("", &err), 65);
    free(err);
    char args[256];
    snprintf(args, sizeof args, "--url http://127.0.0.1:%d", sport);
    cr_assert_eq(run_mail("", args, dir, &err), 74, "a directory as stdin cannot be read");
    free(err);
    cr_assert_eq(seen.n, 0);
}

Test(mail_pipe, a_message_without_message_id_is_keyed_by_its_digest)
{
    write_msg("Subject: no id\r\n\r\nbody\r\n", 0);
    char *err;
    cr_assert_eq(run_to("", &err), 0, "%s", err);
    cr_assert_eq(strncmp(seen.idempotency, "sha256:", 7), 0, "%s", seen.idempotency);
    cr_assert_eq(strlen(seen.idempotency), 7 + 64);
    free(err);
}
