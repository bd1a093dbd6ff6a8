/* sim_faults: the injected-failure list; see sim_faults.h. */
#include "sim/sim_faults.h"

/* The system header by path: the project's own src/regex.h (PCRE2 rules) shadows <regex.h>
 * on the -Isrc include path, and the simulator links no PCRE2. */
#include "/usr/include/regex.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "sim/sim_json.h"

#define SIM_FAULT_MAX_REGEX 1024
#define SIM_FAULT_MAX_COUNT 1000000000L
#define SIM_FAULT_MAX_DELAY 600000L
#define SIM_FAULT_MAX_RETRY 86400L

struct sim_fault {
    struct sim_fault_hit hit;
    long count;
    char *method;     /* NULL: any */
    char *path;       /* NULL: any */
    regex_t re;
};

struct sim_faults {
    struct sim_fault *v[SIM_FAULTS_MAX];
    size_t n;
    long next_id;
};

sim_faults_t *sim_faults_new(void)
{
    sim_faults_t *f = calloc(1, sizeof(*f));
    if (f)
        f->next_id = 1;
    return f;
}

static void fault_free(struct sim_fault *x)
{
    if (!x)
        return;
    if (x->path)
        regfree(&x->re);
    free(x->path);
    free(x->method);
    free(x);
}

void sim_faults_clear(sim_faults_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        fault_free(f->v[i]);
    f->n = 0;
}

void sim_faults_free(sim_faults_t *f)
{
    if (!f)
        return;
    sim_faults_clear(f);
    free(f);
}

/* Reads an optional integer member within [min, max] into *out. 0, or -1 with err set. */
static int int_member(json_t *o, const char *name, long min, long max, long *out, char *err,
                      size_t errlen)
{
    json_t *v = sim_json_ci_get(o, name, NULL);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(err, errlen, "\"%s\" must be an integer from %ld to %ld", name, min, max);
        return -1;
    }
    *out = (long)json_integer_value(v);
    return 0;
}

/* Builds one fault from a JSON object; NULL with err set when invalid. */
static struct sim_fault *fault_parse(json_t *o, char *err, size_t errlen)
{
    struct sim_fault *x = calloc(1, sizeof(*x));
    long status = 0, count = 1, retry = -1, delay = 0;
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!json_is_object(o)) {
        snprintf(err, errlen, "a fault must be a JSON object");
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        static const char *const names[] = {"status", "count", "retryAfter", "delayMs",
                                            "drop", "path", "method", NULL};
        int known = 0;
        for (const char *const *n = names; *n; n++)
            known |= strcasecmp(*n, key) == 0;
        if (!known) {
            snprintf(err, errlen, "unknown fault field \"%s\"", key);
            goto fail;
        }
    }
    if (int_member(o, "status", 200, 599, &status, err, errlen) < 0 ||
        int_member(o, "count", 1, SIM_FAULT_MAX_COUNT, &count, err, errlen) < 0 ||
        int_member(o, "retryAfter", 0, SIM_FAULT_MAX_RETRY, &retry, err, errlen) < 0 ||
        int_member(o, "delayMs", 0, SIM_FAULT_MAX_DELAY, &delay, err, errlen) < 0)
        goto fail;
    json_t *drop = sim_json_ci_get(o, "drop", NULL);
    if (drop && !json_is_boolean(drop)) {
        snprintf(err, errlen, "\"drop\" must be true or false");
        goto fail;
    }
    x->hit.status = (int)status;
    x->hit.retry_after = (int)retry;
    x->hit.delay_ms = (int)delay;
    x->hit.drop = json_is_true(drop);
    x->count = count;
    if (!x->hit.status && !x->hit.delay_ms && !x->hit.drop) {
        snprintf(err, errlen, "a fault needs \"status\", \"delayMs\" or \"drop\"");
        goto fail;
    }
    json_t *m = sim_json_ci_get(o, "method", NULL);
    if (m && !json_is_null(m)) {
        if (!json_is_string(m) || json_string_length(m) == 0 || json_string_length(m) > 16) {
            snprintf(err, errlen, "\"method\" must be an HTTP method name");
            goto fail;
        }
        if (strcmp(json_string_value(m), "*") != 0 &&
            !(x->method = util_strdup(json_string_value(m)))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    json_t *p = sim_json_ci_get(o, "path", NULL);
    if (p && !json_is_null(p)) {
        if (!json_is_string(p) || json_string_length(p) > SIM_FAULT_MAX_REGEX) {
            snprintf(err, errlen, "\"path\" must be a regular expression of at most %d bytes",
                     SIM_FAULT_MAX_REGEX);
            goto fail;
        }
        int rc = regcomp(&x->re, json_string_value(p), REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &x->re, msg, sizeof(msg));
            snprintf(err, errlen, "\"path\" is not a valid regular expression: %s", msg);
            goto fail;
        }
        if (!(x->path = util_strdup(json_string_value(p)))) {
            regfree(&x->re);
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    return x;
fail:
    fault_free(x);
    return NULL;
}

static json_t *fault_json(const struct sim_fault *x)
{
    json_t *o = json_pack("{s:I, s:I, s:I, s:b}", "id", (json_int_t)x->hit.id, "count",
                          (json_int_t)x->count, "delayMs", (json_int_t)x->hit.delay_ms, "drop",
                          x->hit.drop);
    if (!o)
        return NULL;
    json_object_set_new(o, "status", x->hit.status ? json_integer(x->hit.status) : json_null());
    json_object_set_new(o, "retryAfter",
                        x->hit.retry_after >= 0 ? json_integer(x->hit.retry_after) : json_null());
    json_object_set_new(o, "path", x->path ? json_string(x->path) : json_null());
    json_object_set_new(o, "method", x->method ? json_string(x->method) : json_null());
    return o;
}

json_t *sim_faults_add(sim_faults_t *f, json_t *spec, char *err, size_t errlen)
{
    struct sim_fault *parsed[SIM_FAULTS_MAX];
    size_t n = 0, want = json_is_array(spec) ? json_array_size(spec) : 1;
    json_t *out = NULL;
    if (want == 0 || f->n + want > SIM_FAULTS_MAX) {
        snprintf(err, errlen, "between 1 and %d pending faults are allowed", SIM_FAULTS_MAX);
        return NULL;
    }
    for (size_t i = 0; i < want; i++) {
        json_t *o = json_is_array(spec) ? json_array_get(spec, i) : spec;
        if (!(parsed[n] = fault_parse(o, err, errlen)))
            goto fail;
        n++;
    }
    if (!(out = json_array())) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        parsed[i]->hit.id = f->next_id++;
        f->v[f->n++] = parsed[i];
        json_array_append_new(out, fault_json(parsed[i]));
    }
    return out;
fail:
    for (size_t i = 0; i < n; i++)
        fault_free(parsed[i]);
    return NULL;
}

json_t *sim_faults_list(const sim_faults_t *f)
{
    json_t *out = json_array();
    for (size_t i = 0; out && i < f->n; i++)
        json_array_append_new(out, fault_json(f->v[i]));
    return out;
}

int sim_faults_take(sim_faults_t *f, const char *method, const char *path,
                    struct sim_fault_hit *hit)
{
    for (size_t i = 0; i < f->n; i++) {
        struct sim_fault *x = f->v[i];
        if (x->method && strcasecmp(x->method, method) != 0)
            continue;
        if (x->path && regexec(&x->re, path, 0, NULL, 0) != 0)
            continue;
        *hit = x->hit;
        if (--x->count == 0) {
            fault_free(x);
            memmove(&f->v[i], &f->v[i + 1], (f->n - i - 1) * sizeof(f->v[0]));
            f->n--;
        }
        return 1;
    }
    return 0;
}
