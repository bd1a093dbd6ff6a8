/* trace: the verbose view of HTTP exchanges (request and response lines and headers, as
 * `curl -v` shows them) with credentials masked: "Authorization: Bearer ***" and
 * "<api key header>: ***". Bodies are never traced (a login body holds a password). */
#ifndef TB_TRACKPLAN_TRACE_H
#define TB_TRACKPLAN_TRACE_H

#include <stddef.h>
#include <stdio.h>

#include "common/buf.h"

/* Appends one header line (without its CR LF) to out, its value replaced by "***" when it
 * is a credential: Authorization (the scheme kept), Proxy-Authorization, Cookie, and the
 * API key header named key_header (any case; NULL means X-API-Key). 0 or -1 (OOM). */
int tp_trace_mask_line(const char *line, size_t len, const char *key_header, buf_t *out);

/* Writes a block of header lines (CR LF or LF separated) to f, each prefixed with prefix
 * ("> " or "< ") and masked as above. Control bytes other than tab are shown as '.'. */
void tp_trace_headers(FILE *f, const char *prefix, const char *data, size_t len,
                      const char *key_header);

#endif
