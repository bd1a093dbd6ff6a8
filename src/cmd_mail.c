/* cmd_mail: `trackbridge mail`, the MTA pipe — reads one message on stdin (size-capped) and
 * posts it to trackbridge's intake (/hooks/NAME) as message/rfc822 with its Message-ID as the
 * Idempotency-Key, then exits with a sysexits code an MTA understands: 0 stored, 75 try again
 * later (the MTA keeps the mail), 65 rejected (the MTA bounces it), 64 bad usage, 74 stdin
 * unreadable. For Postfix's pipe(8), Exim's pipe transport and fetchmail's mda. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>

#include "app.h"
#include "common/buf.h"
#include "common/util.h"
#include "config.h"
#include "mail/imap.h"
#include "mail/parse.h"

#define MP_TOKEN_MAX 4096
#define MP_REPLY_MAX (64u << 10)

struct mail_args {
    const char *url;
    const char *token;
    const char *token_file;
    const char *source;
    const char *cacert;
    long timeout_s;
    size_t max_size;
};

static void mail_usage(FILE *f)
{
    fprintf(f,
            "usage: trackbridge mail --url URL [--token T | --token-file F] [--source NAME]\n"
            "                        [--timeout S] [--max-size BYTES] [--cacert FILE] < message\n"
            "\n"
            "Posts one mail message from stdin to trackbridge's intake as message/rfc822, for an\n"
            "MTA's pipe transport (Postfix pipe(8), Exim) or fetchmail's mda.\n"
            "  --url URL           trackbridge's base URL (http://127.0.0.1:8080); a URL that\n"
            "                      already contains /hooks/ is used as it is\n"
            "  --source NAME       the email source: posts to URL/hooks/NAME (default email)\n"
            "  --token T           bearer token (else --token-file, else $TRACKBRIDGE_TOKEN)\n"
            "  --token-file F      read the bearer token from a file\n"
            "  --timeout S         seconds for the whole request (default 30)\n"
            "  --max-size BYTES    refuse larger messages, e.g. 25MiB (default 25MiB)\n"
            "  --cacert FILE       CA bundle for an https:// URL\n"
            "Exit status (sysexits): 0 stored (or already stored); 75 trackbridge unreachable,\n"
            "busy or failing (5xx, 429, 408): the MTA keeps the mail and retries; 65 rejected\n"
            "(other 4xx, reason on stderr): the MTA bounces it; 64 usage; 74 stdin unreadable.\n");
}

/* Reads the token file: its first line, without the line end. NULL on failure (stderr). */
static char *mail_read_token(const char *path)
{
    size_t len = 0;
    char *t = util_read_file(path, MP_TOKEN_MAX, &len);
    if (!t) {
        fprintf(stderr, "trackbridge mail: cannot read token file %s: %s\n", path, strerror(errno));
        return NULL;
    }
    t[strcspn(t, "\r\n")] = '\0';
    return t;
}

/* A token goes into a header: printable ASCII only. */
static int mail_token_ok(const char *t)
{
    if (!*t)
        return 0;
    for (const char *p = t; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return 0;
    return 1;
}

/* Reads all of fd, up to max bytes. 0, 1 when larger than max, -1 on a read error. */
static int mail_read_stdin(int fd, size_t max, buf_t *b)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (b->len + (size_t)n > max)
            return 1;
        if (buf_append(b, chunk, (size_t)n) < 0)
            return -1;
    }
}

static size_t mail_on_reply(char *ptr, size_t size, size_t n, void *ud)
{
    buf_t *b = ud;
    buf_append(b, ptr, size * n); /* past the cap the rest is dropped: only a summary is shown */
    return size * n;
}

/* "title: detail" of a problem+json reply, else the start of the body; malloc'd one line. */
static char *mail_problem(const buf_t *reply)
{
    json_t *j = reply->len ? json_loadb(reply->data, reply->len, 0, NULL) : NULL;
    const char *title = json_string_value(json_object_get(j, "title"));
    const char *detail = json_string_value(json_object_get(j, "detail"));
    char *raw = NULL, *out;
    if (title || detail) {
        raw = util_asprintf("%s%s%s", title ? title : "", title && detail ? ": " : "",
                            detail ? detail : "");
    } else {
        raw = util_strndup(reply->data ? reply->data : "", reply->len < 300 ? reply->len : 300);
    }
    out = mail_parse_clean_line(raw ? raw : "");
    free(raw);
    json_decref(j);
    return out;
}

static int mail_parse_args(int argc, char **argv, struct mail_args *a)
{
    static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
                                         {"token", required_argument, NULL, 't'},
                                         {"token-file", required_argument, NULL, 'f'},
                                         {"source", required_argument, NULL, 's'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"max-size", required_argument, NULL, 'm'},
                                         {"cacert", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    a->source = "email";
    a->timeout_s = 30;
    a->max_size = MAIL_DEFAULT_MAX_BYTES;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            a->url = optarg;
            break;
        case 't':
            a->token = optarg;
            break;
        case 'f':
            a->token_file = optarg;
            break;
        case 's':
            a->source = optarg;
            break;
        case 'c':
            a->cacert = optarg;
            break;
        case 'T':
            if (util_parse_long(optarg, 1, 3600, &a->timeout_s) < 0) {
                fprintf(stderr, "trackbridge mail: --timeout: expected 1..3600 seconds\n");
                return -1;
            }
            break;
        case 'm':
            if (config_parse_size(optarg, &a->max_size) < 0 || a->max_size == 0 ||
                a->max_size > ((size_t)1 << 30)) {
                fprintf(stderr, "trackbridge mail: --max-size: expected a size up to 1GiB\n");
                return -1;
            }
            break;
        case 'h':
            mail_usage(stdout);
            return 1;
        default:
            mail_usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "trackbridge mail: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!a->url || (strncmp(a->url, "http://", 7) != 0 && strncmp(a->url, "https://", 8) != 0)) {
        fprintf(stderr, "trackbridge mail: --url http(s)://HOST:PORT is required\n");
        return -1;
    }
    size_t sl = strlen(a->source);
    if (sl == 0 || sl > 128 ||
        strspn(a->source, "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != sl) {
        fprintf(stderr, "trackbridge mail: --source: expected a source name ([A-Za-z0-9_.-])\n");
        return -1;
    }
    if (a->token && a->token_file) {
        fprintf(stderr, "trackbridge mail: give --token or --token-file, not both\n");
        return -1;
    }
    return 0;
}

int cmd_mail(int argc, char **argv)
{
    struct mail_args a;
    int rc = mail_parse_args(argc, argv, &a);
    if (rc != 0)
        return rc > 0 ? EX_OK : EX_USAGE;

    int ex = EX_TEMPFAIL;
    char *token_owned = NULL, *url = NULL, *key = NULL, *auth = NULL, *idem = NULL;
    char *problem = NULL;
    struct curl_slist *hdrs = NULL;
    CURL *h = NULL;
    buf_t msg, reply;
    buf_init(&msg, 0);
    buf_init(&reply, MP_REPLY_MAX);
    int curl_inited = 0;

    const char *token = a.token;
    if (a.token_file) {
        /* An unreadable token file is the host's problem, not the mail's: keep the mail. */
        if (!(token = token_owned = mail_read_token(a.token_file)))
            goto done;
    } else if (!token) {
        token = getenv("TRACKBRIDGE_TOKEN");
    }
    if (token && !mail_token_ok(token)) {
        fprintf(stderr, "trackbridge mail: the token must be printable ASCII without spaces\n");
        ex = EX_USAGE;
        goto done;
    }

    int r = mail_read_stdin(STDIN_FILENO, a.max_size, &msg);
    if (r < 0) {
        fprintf(stderr, "trackbridge mail: cannot read the message from stdin: %s\n",
                strerror(errno));
        ex = EX_IOERR;
        goto done;
    }
    if (r > 0) {
        fprintf(stderr, "trackbridge mail: message larger than %zu bytes, refused\n", a.max_size);
        ex = EX_DATAERR;
        goto done;
    }
    if (msg.len == 0) {
        fprintf(stderr, "trackbridge mail: empty message, refused\n");
        ex = EX_DATAERR;
        goto done;
    }

    if (strstr(a.url, "/hooks/")) {
        url = util_strdup(a.url);
    } else {
        size_t ul = strlen(a.url);
        while (ul > 0 && a.url[ul - 1] == '/')
            ul--;
        url = util_asprintf("%.*s/hooks/%s", (int)ul, a.url, a.source);
    }
    key = mail_imap_message_key(msg.data, msg.len);
    idem = key ? util_asprintf("Idempotency-Key: %s", key) : NULL;
    auth = token ? util_asprintf("Authorization: Bearer %s", token) : NULL;
    if (!url || !idem || (token && !auth)) {
        fprintf(stderr, "trackbridge mail: out of memory\n");
        goto done;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "trackbridge mail: libcurl initialisation failed\n");
        goto done;
    }
    curl_inited = 1;
    if (!(h = curl_easy_init())) {
        fprintf(stderr, "trackbridge mail: libcurl initialisation failed\n");
        goto done;
    }
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: message/rfc822");
    hdrs = l;
    if (l && (l = curl_slist_append(hdrs, idem)) != NULL)
        hdrs = l;
    if (l && auth && (l = curl_slist_append(hdrs, auth)) != NULL)
        hdrs = l;
    if (l && (l = curl_slist_append(hdrs, "Expect:")) != NULL)
        hdrs = l;
    if (!l) {
        fprintf(stderr, "trackbridge mail: out of memory\n");
        goto done;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, msg.data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)msg.len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, a.timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, a.timeout_s < 10 ? a.timeout_s : 10L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, mail_on_reply);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "trackbridge-mail/" TB_VERSION);
    if (a.cacert)
        curl_easy_setopt(h, CURLOPT_CAINFO, a.cacert);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        fprintf(stderr, "trackbridge mail: cannot deliver to %s: %s%s%s (will be retried)\n", url,
                curl_easy_strerror(cc), errbuf[0] ? ": " : "", errbuf);
        goto done;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        ex = EX_OK;
        goto done;
    }
    problem = mail_problem(&reply);
    if (status >= 400 && status < 500 && status != 408 && status != 429) {
        fprintf(stderr, "trackbridge mail: rejected by %s: %ld %s\n", url, status,
                problem ? problem : "");
        ex = EX_DATAERR;
    } else {
        fprintf(stderr, "trackbridge mail: %s answered %ld %s (will be retried)\n", url, status,
                problem ? problem : "");
    }
done:
    if (h)
        curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (curl_inited)
        curl_global_cleanup();
    buf_free(&msg);
    buf_free(&reply);
    free(token_owned);
    free(url);
    free(key);
    free(auth);
    free(idem);
    free(problem);
    return ex;
}
