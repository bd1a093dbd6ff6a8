/* regex: PCRE2 (8-bit, UTF) patterns for the rules — compiled once with JIT when available,
 * matched under process-wide limits (match steps, depth, heap, JIT stack) so hostile input
 * costs bounded time, with captures handed back as JSON strings. Invalid UTF-8 in a subject
 * never stops a match: each invalid byte is matched (and captured) as U+FFFD. */
#ifndef TB_REGEX_H
#define TB_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct rx rx_t;

struct rx_limits {
    uint32_t match_limit;
    uint32_t depth_limit;
    uint32_t heap_limit_kib;
    size_t jit_stack_kib;
};

/* Process-wide limits for every match; a 0 field keeps its default (match 1,000,000, depth
 * 10,000, heap 20,000 KiB, JIT stack 512 KiB); NULL restores all defaults. Set once at
 * start-up before any match: threads pick the new values up at their next match. */
void rx_set_limits(const struct rx_limits *lim);

/* rx_compile_ex options. */
enum { RX_NO_JIT = 1 };

/* Compiles pattern (UTF, with flags "i", "m", "s", "x" from an optional flags string) and
 * JITs it when available. Returns a new pattern, or NULL with PCRE2's message in err (when
 * errlen > 0) and the pattern offset in erroff (when not NULL; 0 for a bad flag). */
rx_t *rx_compile(const char *pattern, const char *flags, char *err, size_t errlen,
                 size_t *erroff);
/* As rx_compile, with RX_NO_JIT to keep the interpreter (tests compare both). */
rx_t *rx_compile_ex(const char *pattern, const char *flags, unsigned opts, char *err,
                    size_t errlen, size_t *erroff);
/* Frees a pattern; NULL is a no-op. */
void rx_free(rx_t *rx);
/* 1 when the pattern runs JIT-compiled code. */
int rx_is_jit(const rx_t *rx);

enum rx_result { RX_MATCH, RX_NOMATCH, RX_LIMIT, RX_ERROR };

/* Matches subject (len bytes, need not be NUL-terminated; invalid UTF-8 bytes read as
 * U+FFFD, which costs a copy of the subject). On MATCH and when caps is a JSON
 * object (borrowed), sets caps[name] for every named group that took part and "0", "1", ...
 * for every numbered group that took part (values are new strings stolen into caps).
 * RX_LIMIT when a match/depth/heap/JIT-stack limit was hit (treat as no match and count it);
 * RX_ERROR only for out of memory or a NULL pattern. Thread-safe: match data and JIT stack
 * are per thread. */
enum rx_result rx_match(const rx_t *rx, const char *subject, size_t len, json_t *caps);

/* Number of capture groups (not counting group 0). */
uint32_t rx_capture_count(const rx_t *rx);
/* Calls fn for each named group, in name order. */
void rx_each_name(const rx_t *rx, void (*fn)(const char *name, void *ud), void *ud);

/* Releases the calling thread's match data and JIT stack now (they are released at thread
 * exit anyway); the next match recreates them. */
void rx_thread_cleanup(void);

#endif
