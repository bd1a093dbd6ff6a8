/* metrics: Prometheus counters, gauges and histograms for trackbridge serve, rendered in the
 * text exposition format for GET /metrics. Used from the event-loop thread only; values that
 * other threads own (the store writer) are read through their own stats calls at render. */
#ifndef TB_METRICS_H
#define TB_METRICS_H

#include <stddef.h>

#include "common/buf.h"

/* Declares a metric family once, at start-up: type is "counter", "gauge" or "histogram".
 * Re-declaring the same name is a no-op. 0, or -1 on OOM or too many families. */
int metrics_declare(const char *name, const char *type, const char *help);
/* Adds delta to the counter or gauge name{labels}; labels is the text inside the braces,
 * e.g. "source=\"bms\",status=\"202\"" (NULL or "" for none), values already escaped with
 * metrics_escape. Unknown families are ignored. */
void metrics_add(const char *name, const char *labels, double delta);
/* Sets a gauge. */
void metrics_set(const char *name, const char *labels, double value);
/* Records one observation (seconds) in the histogram name{labels}. */
void metrics_observe(const char *name, const char *labels, double value);
/* Writes every family in exposition format into out. 0 or -1 (cap reached). */
int metrics_render(buf_t *out);
/* Escapes a label value (\\, \", \n) into out (n bytes, always terminated). */
void metrics_escape(const char *in, char *out, size_t n);
/* Frees everything (at exit, and between tests). */
void metrics_reset(void);

#endif
