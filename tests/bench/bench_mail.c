/* bench_mail: mail parsing throughput on the golden corpus (the .eml files of tests/golden/mail
 * that parse) and on one large synthetic message (text, HTML and a 1.5 MiB attachment). Prints
 * messages per second and MB/s for the parser alone and for the whole email adapter.
 * Rates are per second of CPU time of the benchmark thread, so a busy machine does not skew
 * them. Usage: bench_mail [CORPUS_DIR [SECONDS]] (default $TB_SRC/tests/golden/mail, 2 s). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/adapter.h"
#include "common/buf.h"
#include "common/util.h"
#include "mail/parse.h"

/* CPU time of this thread in ms: rates stay meaningful on a busy machine. */
static int64_t bm_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct bm_msg {
    char *data;
    size_t len;
};

static size_t bm_load(const char *dir, struct bm_msg *out, size_t max)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while (n < max && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".eml") != 0)
            continue;
        char *path = util_asprintf("%s/%s", dir, e->d_name);
        size_t len = 0;
        char *data = path ? util_read_file(path, 64 << 20, &len) : NULL;
        free(path);
        if (!data)
            continue;
        json_t *m = NULL;
        char *err = NULL;
        if (mail_parse_message(data, len, NULL, &m, &err) != MAIL_OK) {
            /* the limit cases measure refusals, not parsing */
            free(data);
            free(err);
            continue;
        }
        json_decref(m);
        out[n].data = data;
        out[n].len = len;
        n++;
    }
    closedir(d);
    return n;
}

static char *bm_large(size_t *len)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "From: Load Test <load@tenant.example>\r\nTo: helpdesk@fm.example.com\r\n"
                 "Subject: =?utf-8?q?Gro=C3=9Fe_Nachricht_mit_Anhang?=\r\n"
                 "Date: Thu, 5 Jun 2025 10:00:00 +0000\r\nMessage-ID: <large@tenant.example>\r\n"
                 "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=L\r\n\r\n"
                 "--L\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n"
                 "--A\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    for (int i = 0; i < 3000; i++)
        buf_printf(&b, "Zeile %d: Die Heizung im B=C3=BCro ist kalt =E2=80=93 bitte pr=C3=BCfen.\r\n", i);
    buf_puts(&b, "\r\n--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>");
    for (int i = 0; i < 3000; i++)
        buf_printf(&b, "<p>Zeile %d: <b>Heizung</b> &ndash; <a href=\"https://fm.example/j/%d\">"
                       "Auftrag</a></p>\r\n", i, i);
    buf_puts(&b, "</body></html>\r\n--A--\r\n--L\r\nContent-Type: application/pdf\r\n"
                 "Content-Disposition: attachment; filename=plan.pdf\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\n");
    for (int i = 0; i < 27000; i++)
        buf_puts(&b, "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURl\r\n");
    buf_puts(&b, "--L--\r\n");
    *len = b.len;
    return buf_steal(&b);
}

static void bm_parse(const char *label, struct bm_msg *msgs, size_t n, int64_t ms)
{
    int64_t start = bm_cpu_ms(), now = start;
    size_t count = 0, bytes = 0, i = 0;
    while ((now = bm_cpu_ms()) - start < ms) {
        json_t *m = NULL;
        char *err = NULL;
        if (mail_parse_message(msgs[i].data, msgs[i].len, NULL, &m, &err) != MAIL_OK) {
            fprintf(stderr, "unexpected rejection: %s\n", err ? err : "");
            free(err);
            return;
        }
        json_decref(m);
        count++;
        bytes += msgs[i].len;
        i = (i + 1) % n;
    }
    double secs = (double)(now - start) / 1000.0;
    printf("%-28s %9.0f msg/s %8.1f MB/s  (%zu messages, %.1f KiB average, CPU time)\n", label,
           (double)count / secs, (double)bytes / secs / 1e6, count,
           (double)bytes / (double)(count ? count : 1) / 1024.0);
}

static void bm_adapter(const char *label, struct bm_msg *msgs, size_t n, int64_t ms)
{
    json_t *opts = json_pack("{s:[s]}", "our_domains", "fm.example.com");
    int64_t start = bm_cpu_ms(), now = start;
    size_t count = 0, bytes = 0, i = 0;
    while ((now = bm_cpu_ms()) - start < ms) {
        struct adapter_input in = {msgs[i].data, msgs[i].len, "message/rfc822", NULL, NULL,
                                   "bench", "2025-06-05T00:00:00.000Z", opts, 0};
        json_t *ev = NULL;
        char *err = NULL;
        if (adapter_email_run(&in, NULL, &ev, &err) != ADAPTER_OK) {
            fprintf(stderr, "unexpected rejection: %s\n", err ? err : "");
            free(err);
            break;
        }
        json_decref(ev);
        count++;
        bytes += msgs[i].len;
        i = (i + 1) % n;
    }
    double secs = (double)(now - start) / 1000.0;
    printf("%-28s %9.0f msg/s %8.1f MB/s\n", label, (double)count / secs,
           (double)bytes / secs / 1e6);
    json_decref(opts);
}

int main(int argc, char **argv)
{
    char *dflt = util_asprintf("%s/tests/golden/mail", getenv("TB_SRC") ? getenv("TB_SRC") : ".");
    const char *dir = argc > 1 ? argv[1] : dflt;
    long secs = 2;
    if (argc > 2 && util_parse_long(argv[2], 1, 600, &secs) < 0) {
        fprintf(stderr, "usage: %s [CORPUS_DIR [SECONDS]]\n", argv[0]);
        free(dflt);
        return 2;
    }
    struct bm_msg msgs[256];
    size_t n = bm_load(dir, msgs, 256);
    if (n == 0) {
        fprintf(stderr, "no parsable .eml files in %s\n", dir);
        free(dflt);
        return 1;
    }
    printf("corpus: %s (%zu messages)\n", dir, n);
    bm_parse("parse, corpus", msgs, n, secs * 1000);
    bm_adapter("email adapter, corpus", msgs, n, secs * 1000);
    struct bm_msg big;
    big.data = bm_large(&big.len);
    if (big.data) {
        printf("large message: %.2f MiB\n", (double)big.len / 1048576.0);
        bm_parse("parse, large message", &big, 1, secs * 1000);
        bm_adapter("email adapter, large", &big, 1, secs * 1000);
        free(big.data);
    }
    for (size_t i = 0; i < n; i++)
        free(msgs[i].data);
    free(dflt);
    return 0;
}
