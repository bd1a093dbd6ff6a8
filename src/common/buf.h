/* buf: a growable byte buffer with an optional size cap (modelled on curl's dynbuf).
 * data is always NUL-terminated once anything was added; appends past the cap fail and
 * leave the buffer as it was, so callers can report "too large" instead of truncating. */
#ifndef TB_BUF_H
#define TB_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data;   /* NULL until the first append */
    size_t len;   /* bytes used, excluding the terminating NUL */
    size_t cap;   /* bytes allocated */
    size_t max;   /* cap on len; 0 means unlimited */
} buf_t;

void buf_init(buf_t *b, size_t max);
/* Each returns 0, or -1 when memory runs out or the cap would be passed. */
int buf_append(buf_t *b, const void *p, size_t n);
int buf_puts(buf_t *b, const char *s);
int buf_putc(buf_t *b, char c);
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for extra more bytes without changing the contents (a caller that knows the
 * likely size avoids repeated growth). 0, or -1 on OOM or when the cap would be passed. */
int buf_reserve(buf_t *b, size_t extra);
/* Hands data to the caller (free() it); an empty buffer yields "" (allocated). NULL on OOM. */
char *buf_steal(buf_t *b);
void buf_reset(buf_t *b);   /* len = 0, memory kept */
void buf_free(buf_t *b);    /* releases memory; the buffer may be reused after buf_init */

#endif
