/* result: call results; see result.h. */
#include "trackplan/result.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct tp_result *tp_result_new(const struct tp_op *op)
{
    struct tp_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->op = op;
    r->outcome = TP_OK;
    r->retry_after_ms = -1;
    tp_error_init(&r->error);
    return r;
}

struct tp_result *tp_result_new_error(const struct tp_op *op, enum tp_outcome outcome,
                                      enum tp_err_kind kind, const char *message)
{
    struct tp_result *r = tp_result_new(op);
    if (!r)
        return NULL;
    r->outcome = outcome;
    tp_error_set(&r->error, kind, message);
    return r;
}

void tp_result_free(struct tp_result *r)
{
    if (!r)
        return;
    json_decref(r->body);
    tp_error_clear(&r->error);
    free(r);
}

const char *tp_result_guid(const struct tp_result *r)
{
    if (!r || r->outcome != TP_OK || !r->body)
        return NULL;
    if (json_is_string(r->body))
        return json_string_value(r->body);
    return json_string_value(json_object_get(r->body, "guid"));
}

int tp_result_number(const struct tp_result *r, int64_t *out)
{
    if (!r || r->outcome != TP_OK || !r->body)
        return -1;
    json_t *v = r->body; /* borrowed */
    if (json_is_object(v)) {
        json_t *n = json_object_get(v, "jobRequestNumber");
        v = n ? n : json_object_get(v, "id");
    }
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v))
        return util_parse_i64(json_string_value(v), INT64_MIN, INT64_MAX, out);
    return -1;
}

const char *tp_outcome_name(enum tp_outcome o)
{
    switch (o) {
    case TP_OK: return "ok";
    case TP_FAIL: return "fail";
    case TP_TRYLATER: return "try-later";
    case TP_UNKNOWN: return "unknown";
    }
    return "unknown";
}
