/* adapter_testutil: helpers shared by the adapter unit tests (tests/unit/test_adapters_*.c).
 * They read payloads from tests/golden/payloads/<kind>/, run an adapter over a body and check
 * the outcome, and pick string fields out of events by jpath. Every input carries the source
 * ADAPTER_TEST_SOURCE ("src1" unless the test defines it before including this header) and
 * the receive time RECEIVED. */
#ifndef TB_ADAPTER_TESTUTIL_H
#define TB_ADAPTER_TESTUTIL_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "common/util.h"
#include "jpath.h"
#include "testutil.h"

#define RECEIVED "2025-04-08T12:00:00.000Z"

#ifndef ADAPTER_TEST_SOURCE
#define ADAPTER_TEST_SOURCE "src1"
#endif

/* The payload tests/golden/payloads/<kind>/<name> (malloc'd); the test fails when unreadable. */
static inline char *payload(const char *kind, const char *name, size_t *len)
{
    char *path = util_asprintf("%s/tests/golden/payloads/%s/%s", tu_env("TB_SRC", "."), kind,
                               name);
    char *body = util_read_file(path, 1 << 20, len);
    cr_assert_not_null(body, "cannot read %s", path);
    free(path);
    return body;
}

/* Runs kind over body with options (JSON text or NULL); the test fails unless it is OK. */
static inline json_t *run_body(const char *kind, const char *body, size_t len,
                               const char *ctype, const char *options)
{
    json_t *o = NULL;
    if (options) {
        json_error_t e;
        o = json_loads(options, 0, &e);
        cr_assert_not_null(o, "bad options: %s", e.text);
    }
    struct adapter_input in = {body, len, ctype, NULL, NULL, ADAPTER_TEST_SOURCE, RECEIVED, o, 0};
    json_t *events = NULL;
    char *err = NULL;
    enum adapter_result r = adapter_run(kind, &in, NULL, &events, &err);
    cr_assert_eq(r, ADAPTER_OK, "%s: %s", kind, err ? err : "");
    cr_assert(json_is_array(events));
    json_decref(o);
    return events;
}

/* Runs kind over its payload file name as application/json; the test fails unless it is OK. */
static inline json_t *run_file(const char *kind, const char *name, const char *options)
{
    size_t len;
    char *body = payload(kind, name, &len);
    json_t *events = run_body(kind, body, len, "application/json", options);
    free(body);
    return events;
}

/* The reason a body is rejected with (malloc'd). */
static inline char *reject_body(const char *kind, const char *body, const char *ctype,
                                const char *options)
{
    json_t *o = options ? json_loads(options, 0, NULL) : NULL;
    struct adapter_input in = {body, strlen(body), ctype, NULL, NULL, ADAPTER_TEST_SOURCE,
                               RECEIVED, o, 0};
    json_t *events = NULL;
    char *err = NULL;
    cr_assert_eq(adapter_run(kind, &in, NULL, &events, &err), ADAPTER_REJECT, "%s", body);
    cr_assert_null(events);
    cr_assert_not_null(err);
    json_decref(o);
    return err;
}

#define assert_rejected(kind, body, ctype, options, part)                                    \
    do {                                                                                     \
        char *err_ = reject_body(kind, body, ctype, options);                                \
        cr_assert(strstr(err_, part) != NULL, "'%s' lacks '%s'", err_, part);                \
        free(err_);                                                                          \
    } while (0)

/* String at path in v; fails the test when absent or not a string. */
static inline const char *str(json_t *v, const char *path)
{
    jpath_t *p = jpath_compile(path, NULL, 0, NULL);
    cr_assert_not_null(p, "%s", path);
    json_t *s = jpath_first(p, v);
    jpath_free(p);
    cr_assert(json_is_string(s), "%s is not a string", path);
    return json_string_value(s);
}

#define assert_field(ev, path, expect) cr_assert_str_eq(str(ev, path), expect, "%s", path)

#endif
