/* trace: masked header tracing for verbose output; see trace.h. */
#include "trackplan/trace.h"

#include <strings.h>
#include <string.h>

/* 1 when the header name at line (length n, up to the colon) equals name, any case. */
static int tp_trace_is(const char *line, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(line, name, n) == 0;
}

int tp_trace_mask_line(const char *line, size_t len, const char *key_header, buf_t *out)
{
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return buf_append(out, line, len);
    size_t n = (size_t)(colon - line);
    if (tp_trace_is(line, n, "Authorization") || tp_trace_is(line, n, "Proxy-Authorization")) {
        /* keep the scheme ("Bearer", "Basic") so the trace still says which one was used */
        const char *v = colon + 1;
        const char *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        const char *sp = v;
        while (sp < end && *sp != ' ' && *sp != '\t')
            sp++;
        if (buf_append(out, line, n + 1) < 0 || buf_putc(out, ' ') < 0)
            return -1;
        if (sp < end && buf_append(out, v, (size_t)(sp - v)) < 0)
            return -1;
        return buf_puts(out, sp < end ? " ***" : "***");
    }
    if (tp_trace_is(line, n, key_header ? key_header : "X-API-Key") ||
        tp_trace_is(line, n, "Cookie") || tp_trace_is(line, n, "Set-Cookie")) {
        if (buf_append(out, line, n + 1) < 0)
            return -1;
        return buf_puts(out, " ***");
    }
    return buf_append(out, line, len);
}

void tp_trace_headers(FILE *f, const char *prefix, const char *data, size_t len,
                      const char *key_header)
{
    const char *p = data, *end = data + len;
    buf_t b;
    buf_init(&b, 64 * 1024);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        const char *e = stop;
        if (e > p && e[-1] == '\r')
            e--;
        if (e > p) {
            buf_reset(&b);
            if (tp_trace_mask_line(p, (size_t)(e - p), key_header, &b) == 0) {
                for (size_t i = 0; i < b.len; i++)
                    if ((unsigned char)b.data[i] < ' ' && b.data[i] != '\t')
                        b.data[i] = '.';
                fprintf(f, "%s%s\n", prefix, b.data);
            }
        }
        p = nl ? nl + 1 : end;
    }
    fflush(f);
    buf_free(&b);
}
