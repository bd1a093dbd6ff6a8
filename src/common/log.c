/* log: logfmt / JSON line logger. One formatted line is written with a single write(2) so
 * lines from threads never interleave. Not a sink for secrets: see log.h. */
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/util.h"

static const char *log_prog = "trackbridge";
static int log_json;
static enum log_level log_level_min = LOG_LVL_INFO;
static const char *const log_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *prog, int json)
{
    if (prog)
        log_prog = prog;
    log_json = json;
}

void log_set_level(enum log_level level) { log_level_min = level; }
enum log_level log_get_level(void) { return log_level_min; }

int log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, log_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    return -1;
}

/* logfmt value: bare when it has no space, quote, '=' or control byte; quoted otherwise. */
static void log_put_logfmt(buf_t *b, const char *v)
{
    int bare = *v != '\0';
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '=' || *p == '\\')
            bare = 0;
    if (bare) {
        buf_puts(b, v);
        return;
    }
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)*p);
        } else if (*p == '\n') {
            buf_puts(b, "\\n");
        } else if (*p < ' ' || *p == 0x7f) {
            buf_printf(b, "\\x%02x", *p);
        } else {
            buf_putc(b, (char)*p);
        }
    }
    buf_putc(b, '"');
}

static void log_put_json(buf_t *b, const char *v)
{
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)*p);
        } else if (*p < ' ') {
            buf_printf(b, "\\u%04x", *p);
        } else {
            buf_putc(b, (char)*p);
        }
    }
    buf_putc(b, '"');
}

static void log_field(buf_t *b, const char *k, const char *v, int first)
{
    if (log_json) {
        if (!first)
            buf_putc(b, ',');
        log_put_json(b, k);
        buf_putc(b, ':');
        log_put_json(b, v ? v : "");
    } else {
        if (!first)
            buf_putc(b, ' ');
        buf_puts(b, k);
        buf_putc(b, '=');
        log_put_logfmt(b, v ? v : "");
    }
}

void log_kvv(enum log_level level, const char *msg, va_list ap)
{
    if (level < log_level_min)
        return;
    char ts[40];
    util_iso8601(util_now_ms(), ts);
    buf_t b;
    buf_init(&b, 64 * 1024);
    if (log_json)
        buf_putc(&b, '{');
    log_field(&b, "ts", ts, 1);
    log_field(&b, "level", log_names[level], 0);
    log_field(&b, "prog", log_prog, 0);
    log_field(&b, "msg", msg, 0);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        log_field(&b, k, v, 0);
    }
    if (log_json)
        buf_putc(&b, '}');
    buf_putc(&b, '\n');
    if (b.data) {
        ssize_t off = 0;
        while ((size_t)off < b.len) {
            ssize_t n = write(STDERR_FILENO, b.data + off, b.len - (size_t)off);
            if (n <= 0)
                break;
            off += n;
        }
    }
    buf_free(&b);
}

void log_kv(enum log_level level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    log_kvv(level, msg, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", log_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}
