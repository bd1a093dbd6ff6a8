/* error: the structured failure of a TrackplanFM call — HTTP status with the server's
 * problem body (title, detail, the §3.1 validation "errors" map), or the transport error
 * (curl code and message). Parsing and formatting only; the client decides what to retry. */
#ifndef TB_TRACKPLAN_ERROR_H
#define TB_TRACKPLAN_ERROR_H

#include <jansson.h>
#include <stddef.h>

#include "common/buf.h"

enum tp_err_kind {
    TP_ERR_NONE = 0,
    TP_ERR_HTTP,       /* the server answered with a non-2xx status */
    TP_ERR_TRANSPORT,  /* no usable answer: curl_code and message say why */
    TP_ERR_PROTOCOL,   /* an answer we could not use (too large, malformed login reply) */
    TP_ERR_AUTH,       /* logging in failed; status / title / detail are the login's */
    TP_ERR_CANCELLED,  /* the client was freed or the request could not be queued */
    TP_ERR_LOCAL       /* a local failure (out of memory, bad arguments) */
};

struct tp_error {
    enum tp_err_kind kind;
    long status;      /* HTTP status, 0 when none */
    char *type;       /* problem "type", or NULL */
    char *title;      /* problem "title", or NULL */
    char *detail;     /* problem "detail", or the start of a non-JSON error body, or NULL */
    json_t *errors;   /* owned: object field -> array of message strings (§3.1), or NULL */
    int curl_code;    /* CURLcode for TP_ERR_TRANSPORT, else 0 */
    char *message;    /* transport / local message, or NULL */
};

/* Longest detail kept from a non-JSON error body. */
#define TP_ERROR_TEXT_MAX 200

void tp_error_init(struct tp_error *e);
/* Frees what e holds and re-initialises it. */
void tp_error_clear(struct tp_error *e);
/* Deep copy of src into dst (dst must be initialised and is cleared first). 0 or -1 (OOM). */
int tp_error_copy(struct tp_error *dst, const struct tp_error *src);

/* Fills e (initialised, cleared first) from an HTTP error response: kind TP_ERR_HTTP, the
 * status, and title / detail / type / errors from a JSON problem body when there is one
 * (a field message given as a string becomes a one-item array; at most 100 fields of 20
 * messages are kept; control characters in names and messages become spaces).
 * A non-JSON body's first TP_ERROR_TEXT_MAX bytes, control characters replaced, become
 * detail. Never fails on peer input; on OOM fields stay NULL. */
void tp_error_from_response(struct tp_error *e, long status, const char *body, size_t len);

/* Fills e with a transport error (curl code and message, which is copied). */
void tp_error_set_transport(struct tp_error *e, int curl_code, const char *message);
/* Fills e with kind and a copied message (for PROTOCOL, AUTH, CANCELLED, LOCAL). */
void tp_error_set(struct tp_error *e, enum tp_err_kind kind, const char *message);

/* The reason phrase of an HTTP status ("Not Found"), or "" when unknown. */
const char *tp_error_reason(long status);

/* Appends a human-readable account to out: a first line such as
 * "HTTP 400 Bad Request: One or more validation errors occurred." (then the detail), and
 * for each validation message a line "  field: message". Returns 0 or -1 (buffer cap/OOM). */
int tp_error_format(const struct tp_error *e, buf_t *out);

#endif
