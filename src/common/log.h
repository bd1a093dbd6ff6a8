/* log: structured logs to stderr, logfmt by default or one JSON object per line.
 * Callers pass key/value string pairs; the logger quotes and escapes them. Never pass
 * secrets or whole request bodies: the logger cannot tell them apart from other strings. */
#ifndef TB_LOG_H
#define TB_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Sets the program name shown as prog=, and JSON output when json != 0. */
void log_init(const char *prog, int json);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn" or "error"; returns 0, or -1 when unknown. */
int log_parse_level(const char *s, enum log_level *out);

/* Logs msg with key/value pairs (const char *key, const char *value, ..., NULL).
 * A NULL value is written as an empty string. Thread-safe: one write(2) per line. */
void log_kv(enum log_level level, const char *msg, ...);
void log_kvv(enum log_level level, const char *msg, va_list ap);

#define log_debug(...) log_kv(LOG_LVL_DEBUG, __VA_ARGS__, (const char *)NULL)
#define log_info(...) log_kv(LOG_LVL_INFO, __VA_ARGS__, (const char *)NULL)
#define log_warn(...) log_kv(LOG_LVL_WARN, __VA_ARGS__, (const char *)NULL)
#define log_error(...) log_kv(LOG_LVL_ERROR, __VA_ARGS__, (const char *)NULL)

/* Start-up failures and broken invariants only: prints "prog: message" and exits 1. */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
