/* result: what a TrackplanFM call hands back — the outcome (done, failed for good, try
 * later, or unknown: maybe processed), the HTTP status, the response body as a jansson
 * value, and the structured error. The delivery engine reads the outcome to decide whether
 * to retry, dead-letter, or search before re-sending a create. */
#ifndef TB_TRACKPLAN_RESULT_H
#define TB_TRACKPLAN_RESULT_H

#include <jansson.h>
#include <stdint.h>

#include "trackplan/error.h"
#include "trackplan/ops.h"

enum tp_outcome {
    TP_OK = 0,    /* a 2xx answer */
    TP_FAIL,      /* permanent: repeating the same request gets the same answer (4xx, TLS
                     verification, malformed URL, response too large) */
    TP_TRYLATER,  /* temporary, and the server did not process it: safe to send again later
                     (retries used up, Retry-After too long, queue full, cancelled unsent) */
    TP_UNKNOWN    /* temporary, and the server may have processed it (timeout or connection
                     lost after sending, 500 to a create): search before re-sending a create */
};

struct tp_result {
    enum tp_outcome outcome;
    const struct tp_op *op;   /* the operation, or NULL for a raw request matching none */
    long status;              /* HTTP status of the last attempt, 0 when none */
    json_t *body;             /* owned: the 2xx response body (a JSON value; a non-JSON body
                                 as a JSON string), NULL when empty or not TP_OK */
    struct tp_error error;    /* kind TP_ERR_NONE when outcome is TP_OK */
    int attempts;             /* attempts made, the re-login retry included */
    int64_t retry_after_ms;   /* the last Retry-After received, -1 when none */
    int64_t elapsed_ms;       /* from the call to the result, retries and waits included */
    int truncated;            /* pager only: stopped at its max item count */
};

/* A new result with outcome TP_OK and no body, or NULL on OOM. */
struct tp_result *tp_result_new(const struct tp_op *op);
/* A new result carrying an error of that kind and message. NULL on OOM. */
struct tp_result *tp_result_new_error(const struct tp_op *op, enum tp_outcome outcome,
                                      enum tp_err_kind kind, const char *message);
/* Frees r, its body and its error; NULL is a no-op. */
void tp_result_free(struct tp_result *r);

/* The GUID a create / update returned: the body when it is a JSON string, or the "guid"
 * member of an object body. Borrowed from r; NULL when there is none. */
const char *tp_result_guid(const struct tp_result *r);
/* The number a create returned (create_job_request): the body when it is an integer (or a
 * string of digits), or the "jobRequestNumber" / "id" member of an object. 0 or -1. */
int tp_result_number(const struct tp_result *r, int64_t *out);

/* "ok", "fail", "try-later" or "unknown". */
const char *tp_outcome_name(enum tp_outcome o);

#endif
