/* util: small checked helpers every module needs — number parsing (never atoi/strtol
 * unchecked), clocks, randomness, UUIDs, dates and whole-file reads. No policy here. */
#ifndef TB_UTIL_H
#define TB_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parses all of s as a base-10 integer within [min, max]. 0 on success, -1 otherwise. */
int util_parse_long(const char *s, long min, long max, long *out);
int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Parses all of s as a finite double. 0 or -1. */
int util_parse_double(const char *s, double *out);

int64_t util_now_ms(void);   /* wall clock, ms since the epoch */
int64_t util_mono_ms(void);  /* monotonic clock, ms */

/* Fills p with n bytes from the kernel's CSPRNG. 0 or -1. */
int util_random(void *p, size_t n);
/* A uniformly random value in [0, bound) (bound > 0). */
uint64_t util_random_below(uint64_t bound);
/* Writes a random (version 4) UUID, lowercase, NUL-terminated, into out. */
void util_uuid4(char out[37]);
/* A version 7 UUID (RFC 9562): the Unix time in ms first, then 74 random bits. Ids made one
 * after another sort together, so a unique index on them grows at its end instead of
 * touching a random page per insert. */
void util_uuid7(char out[37]);
/* True when s is a UUID in 8-4-4-4-12 hex form (any case). */
int util_is_uuid(const char *s);

/* ISO 8601 UTC with milliseconds: 2025-04-08T12:00:00.000Z. out needs 32 bytes. */
void util_iso8601(int64_t ms, char out[32]);
/* Parses ISO 8601 / RFC 3339 (date, optional time, fraction and zone). 0 or -1. */
int util_parse_iso8601(const char *s, int64_t *ms_out);
/* Parses an RFC 7231 IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"). 0 or -1. */
int util_parse_http_date(const char *s, int64_t *ms_out);

/* Reads a whole file of at most max bytes; returns a NUL-terminated malloc'd copy and its
 * length, or NULL with errno set (EFBIG when larger than max). */
char *util_read_file(const char *path, size_t max, size_t *len_out);
/* Writes data to path through a temporary file, fsync and rename. 0 or -1 (errno). */
int util_write_file_atomic(const char *path, const void *data, size_t len);

/* malloc'd printf; NULL on OOM. */
char *util_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* strdup that aborts nothing: NULL in, NULL out. */
char *util_strdup(const char *s);
/* Copies at most n bytes of s into a new NUL-terminated string. */
char *util_strndup(const char *s, size_t n);

#endif
