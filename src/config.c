/* config: loading, secret references, --set overrides and validation of the configuration
 * file; see config.h. Every check reports at the node it concerns and carries on, so one run
 * of `trackbridge check` lists every problem. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include "adapters/adapter.h"
#include "auth.h"
#include "common/buf.h"
#include "common/util.h"
#include "mail/provider.h"
#include "trackplan/client.h"

#define CFG_MAX_FILE (4u * 1024 * 1024)
#define CFG_MAX_SECRET_FILE (64u * 1024)
#define CFG_MAX_SOURCES 256

struct cfg {
    yamlx_doc_t *doc;
    yamlx_diags_t *diags;
    struct tb_config *c;
    json_t *seen;  /* nodes whose secrets were resolved (aliases share nodes) */
};

/* ---- durations and sizes -------------------------------------------------------------- */

int config_parse_duration(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return -1;
    int64_t v;
    if (util_parse_i64(s, 0, INT64_MAX / 1000, &v) == 0) {
        *ms = v * 1000;
        return 0;
    }
    int64_t total = 0;
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return -1;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > (INT64_MAX - 9) / 10)
                return -1;
            n = n * 10 + (*p++ - '0');
        }
        int64_t unit;
        if (strncmp(p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60 * 1000;
            p++;
        } else if (*p == 'h') {
            unit = 3600 * 1000;
            p++;
        } else if (*p == 'd') {
            unit = 86400 * 1000;
            p++;
        } else {
            return -1;
        }
        if (n > (INT64_MAX - total) / unit)
            return -1;
        total += n * unit;
    }
    *ms = total;
    return 0;
}

void config_format_duration(int64_t ms, char out[32])
{
    static const struct {
        const char *suffix;
        int64_t unit;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    if (ms <= 0) {
        snprintf(out, 32, "0s");
        return;
    }
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0] && ms > 0; i++) {
        if (ms < units[i].unit)
            continue;
        int n = snprintf(out + len, 32 - len, "%" PRId64 "%s", ms / units[i].unit,
                         units[i].suffix);
        if (n < 0 || (size_t)n >= 32 - len)
            break;
        len += (size_t)n;
        ms %= units[i].unit;
    }
}

int config_parse_size(const char *s, size_t *bytes)
{
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -1;
    const char *p = s;
    uint64_t n = 0;
    while (isdigit((unsigned char)*p)) {
        if (n > (UINT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*p++ - '0');
    }
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},           {"B", 1},
                 {"KiB", 1024},     {"MiB", 1024 * 1024},
                 {"GiB", 1024ull * 1024 * 1024},
                 {"kB", 1000},      {"KB", 1000},
                 {"MB", 1000000},   {"GB", 1000000000ull},
                 {"K", 1024},       {"M", 1024 * 1024},
                 {"G", 1024ull * 1024 * 1024}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (n > SIZE_MAX / units[i].mult)
            return -1;
        *bytes = (size_t)(n * units[i].mult);
        return 0;
    }
    return -1;
}

/* ---- reporting ------------------------------------------------------------------------ */

/* The place of obj[key]'s value: the value node itself when it has one, else the member. */
static void cfg_mark(struct cfg *x, json_t *obj, const char *key, struct yamlx_mark *m)
{
    json_t *v = key ? json_object_get(obj, key) : obj;
    if (v && yamlx_where(x->doc, v, m) == 0)
        return;
    if (key && yamlx_where_member(x->doc, obj, key, m) == 0)
        return;
    yamlx_where(x->doc, obj, m);
}

static void cfg_err(struct cfg *x, json_t *obj, const char *key, const char *path,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Reports "path: message" at obj[key] (or at obj when key is NULL). */
static void cfg_err(struct cfg *x, json_t *obj, const char *key, const char *path,
                    const char *fmt, ...)
{
    struct yamlx_mark m;
    cfg_mark(x, obj, key, &m);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    yamlx_diag(x->diags, 0, &m, "%s: %s", path, msg);
}

static char *cfg_join(const char *prefix, const char *key)
{
    if (!prefix || !*prefix)
        return util_strdup(key);
    return util_asprintf("%s.%s", prefix, key);
}

static size_t cfg_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32)
        return 99;
    size_t d[33][33];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) !=
                                            tolower((unsigned char)b[j - 1]));
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

/* Reports every key of obj not in allowed (NULL-ended), at the key. */
static void cfg_known_keys(struct cfg *x, json_t *obj, const char *path,
                           const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        const char *near = NULL;
        size_t best = 3;
        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(*a, key) == 0) {
                ok = 1;
                break;
            }
            size_t d = cfg_distance(*a, key);
            if (d < best) {
                best = d;
                near = *a;
            }
        }
        if (ok)
            continue;
        struct yamlx_mark m;
        yamlx_where_key(x->doc, obj, key, &m);
        if (near)
            yamlx_diag(x->diags, 0, &m, "unknown key '%s' in %s (did you mean '%s'?)", key,
                       path && *path ? path : "the configuration", near);
        else
            yamlx_diag(x->diags, 0, &m, "unknown key '%s' in %s", key,
                       path && *path ? path : "the configuration");
    }
}

/* ---- typed readers: each leaves *out unchanged when the key is absent or null ---------- */

static const char *cfg_kind(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a mapping";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* A section: an object (its keys checked against allowed) or NULL when absent. */
static json_t *cfg_section(struct cfg *x, json_t *obj, const char *key, const char *path,
                           const char *const *allowed)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_object(v)) {
        cfg_err(x, obj, key, path, "expected a mapping, got %s", cfg_kind(v));
        return NULL;
    }
    if (allowed)
        cfg_known_keys(x, v, path, allowed);
    return v;
}

static void cfg_str(struct cfg *x, json_t *obj, const char *key, const char *prefix, char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return;
    char *path = cfg_join(prefix, key);
    if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v))
            cfg_err(x, obj, key, path, "must not contain NUL bytes");
        else if (json_string_length(v) == 0)
            cfg_err(x, obj, key, path, "must not be empty");
        else {
            free(*out);
            *out = util_strdup(json_string_value(v));
        }
    } else if (json_is_integer(v) || json_is_real(v)) {
        /* A number where text is wanted (a port-less host, a numeric password): take it. */
        free(*out);
        *out = json_is_integer(v) ? util_asprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v))
                                  : util_asprintf("%g", json_real_value(v));
    } else {
        cfg_err(x, obj, key, path, "expected a string, got %s", cfg_kind(v));
    }
    free(path);
}

/* dir + "/" + rel with "." and "name/.." folded away lexically ("deploy" + "../rules" →
 * "rules"), so messages show the paths a user would write. New string or NULL. */
static char *cfg_join_path(const char *dir, const char *rel)
{
    char *joined = util_asprintf("%s/%s", dir, rel);
    if (!joined)
        return NULL;
    int absolute = joined[0] == '/';
    char *parts[256];
    size_t n = 0, kept_up = 0;
    char *save = joined;
    while (save) {
        char *comp = save;
        char *slash = strchr(save, '/');
        if (slash)
            *slash = '\0';
        save = slash ? slash + 1 : NULL;
        if (!*comp || strcmp(comp, ".") == 0)
            continue;
        if (strcmp(comp, "..") == 0 && n > kept_up) {
            n--;
            continue;
        }
        if (n >= sizeof parts / sizeof parts[0]) {
            free(joined);
            return util_asprintf("%s/%s", dir, rel);
        }
        if (strcmp(comp, "..") == 0) {
            if (absolute)
                continue; /* "/.." is "/" */
            kept_up++;
        }
        parts[n++] = comp;
    }
    buf_t b;
    buf_init(&b, 0);
    if (absolute)
        buf_putc(&b, '/');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&b, '/');
        buf_puts(&b, parts[i]);
    }
    if (n == 0 && !absolute)
        buf_putc(&b, '.');
    char *out = buf_steal(&b);
    buf_free(&b);
    free(joined);
    return out;
}

/* A path: relative ones resolve against the config file's folder, or the working directory
 * for values given with --set. */
static void cfg_path(struct cfg *x, json_t *obj, const char *key, const char *prefix, char **out)
{
    char *s = NULL;
    cfg_str(x, obj, key, prefix, &s);
    if (!s)
        return;
    struct yamlx_mark m;
    yamlx_where_member(x->doc, obj, key, &m);
    int from_cli = m.origin && strncmp(m.origin, "--set ", 6) == 0;
    free(*out);
    if (s[0] == '/' || from_cli || !x->c->dir || strcmp(x->c->dir, ".") == 0) {
        *out = s;
        return;
    }
    *out = cfg_join_path(x->c->dir, s);
    free(s);
}

static void cfg_bool(struct cfg *x, json_t *obj, const char *key, const char *prefix, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return;
    }
    char *path = cfg_join(prefix, key);
    cfg_err(x, obj, key, path, "expected true or false, got %s", cfg_kind(v));
    free(path);
}

static void cfg_int(struct cfg *x, json_t *obj, const char *key, const char *prefix, long min,
                    long max, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return;
    char *path = cfg_join(prefix, key);
    if (!json_is_integer(v))
        cfg_err(x, obj, key, path, "expected an integer, got %s", cfg_kind(v));
    else if (json_integer_value(v) < min || json_integer_value(v) > max)
        cfg_err(x, obj, key, path, "%" JSON_INTEGER_FORMAT " is out of range (%ld to %ld)",
                json_integer_value(v), min, max);
    else
        *out = (int)json_integer_value(v);
    free(path);
}

static void cfg_double(struct cfg *x, json_t *obj, const char *key, const char *prefix,
                       double min, double max, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return;
    char *path = cfg_join(prefix, key);
    if (!json_is_number(v))
        cfg_err(x, obj, key, path, "expected a number, got %s", cfg_kind(v));
    else if (json_number_value(v) < min || json_number_value(v) > max)
        cfg_err(x, obj, key, path, "%g is out of range (%g to %g)", json_number_value(v), min,
                max);
    else
        *out = json_number_value(v);
    free(path);
}

static void cfg_duration(struct cfg *x, json_t *obj, const char *key, const char *prefix,
                         int64_t min_ms, int64_t max_ms, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return;
    char *path = cfg_join(prefix, key);
    int64_t ms = -1;
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        json_integer_value(v) <= INT64_MAX / 1000)
        ms = json_integer_value(v) * 1000;
    else if (json_is_string(v) && config_parse_duration(json_string_value(v), &ms) < 0)
        ms = -1;
    if (ms < 0) {
        cfg_err(x, obj, key, path, "expected a duration such as 250ms, 30s, 5m, 1h or 3d");
    } else if (ms < min_ms || ms > max_ms) {
        char a[32], b[32];
        config_format_duration(min_ms, a);
        config_format_duration(max_ms, b);
        cfg_err(x, obj, key, path, "out of range (%s to %s)", a, b);
    } else {
        *out = ms;
    }
    free(path);
}

static void cfg_size(struct cfg *x, json_t *obj, const char *key, const char *prefix,
                     size_t min, size_t max, size_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return;
    char *path = cfg_join(prefix, key);
    size_t n = 0;
    int ok = 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        n = (size_t)json_integer_value(v);
        ok = 1;
    } else if (json_is_string(v) && config_parse_size(json_string_value(v), &n) == 0) {
        ok = 1;
    }
    if (!ok)
        cfg_err(x, obj, key, path, "expected a size such as 65536, 64KiB or 1MiB");
    else if (n < min || n > max)
        cfg_err(x, obj, key, path, "%zu bytes is out of range (%zu to %zu)", n, min, max);
    else
        *out = n;
    free(path);
}

/* "host:port" or "[v6]:port"; port 0 picks a free one (tests). */
static int cfg_hostport_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return 0;
    if (s[0] == '[' && colon[-1] != ']')
        return 0;
    long port;
    return util_parse_long(colon + 1, 0, 65535, &port) == 0;
}

static void cfg_listen(struct cfg *x, json_t *obj, const char *key, const char *prefix,
                       char **out)
{
    char *s = NULL;
    cfg_str(x, obj, key, prefix, &s);
    if (!s)
        return;
    if (!cfg_hostport_ok(s)) {
        char *path = cfg_join(prefix, key);
        cfg_err(x, obj, key, path, "expected host:port (port 0 to 65535), got \"%s\"", s);
        free(path);
        free(s);
        return;
    }
    free(*out);
    *out = s;
}

/* ---- secrets: ${ENV}, ${ENV:-default}, $${ and file:PATH -------------------------------- */

static void cfg_secret_error(struct cfg *x, json_t *str, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void cfg_secret_error(struct cfg *x, json_t *str, size_t offset, const char *fmt, ...)
{
    struct yamlx_mark m;
    yamlx_locate(x->doc, str, offset, &m);
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    yamlx_diag(x->diags, 0, &m, "%s", msg);
}

static void cfg_expand_string(struct cfg *x, json_t *str)
{
    const char *s = json_string_value(str);
    size_t n = json_string_length(str);
    if (n > 5 && strncmp(s, "file:", 5) == 0) {
        const char *p = s + 5;
        struct yamlx_mark m;
        yamlx_where(x->doc, str, &m);
        char *path = p[0] == '/' || !x->c->dir ? util_strdup(p) : cfg_join_path(x->c->dir, p);
        size_t len = 0;
        char *data = path ? util_read_file(path, CFG_MAX_SECRET_FILE, &len) : NULL;
        if (!data) {
            yamlx_diag(x->diags, 0, &m, "cannot read secret file %s: %s", p,
                       errno == EFBIG ? "larger than 64 KiB" : strerror(errno));
        } else {
            while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
                data[--len] = '\0';
            if (strlen(data) != len)
                yamlx_diag(x->diags, 0, &m, "secret file %s contains NUL bytes", p);
            else if (json_string_setn(str, data, len) < 0)
                yamlx_diag(x->diags, 0, &m, "secret file %s is not valid UTF-8", p);
        }
        free(data);
        free(path);
        return;
    }
    if (!memchr(s, '$', n))
        return;
    buf_t b;
    buf_init(&b, 1024 * 1024);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '$' && i + 2 < n && s[i + 1] == '$' && s[i + 2] == '{') {
            buf_putc(&b, '$');
            i++; /* "$${" → literal "${" */
            continue;
        }
        if (!(s[i] == '$' && i + 1 < n && s[i + 1] == '{')) {
            buf_putc(&b, s[i]);
            continue;
        }
        const char *close = memchr(s + i + 2, '}', n - i - 2);
        if (!close) {
            cfg_secret_error(x, str, i, "unterminated ${ (write $${ for a literal ${)");
            bad = 1;
            break;
        }
        size_t inner_len = (size_t)(close - (s + i + 2));
        char *inner = util_strndup(s + i + 2, inner_len);
        if (!inner) {
            bad = 1;
            break;
        }
        char *dflt = strstr(inner, ":-");
        if (dflt) {
            *dflt = '\0';
            dflt += 2;
        }
        int name_ok = inner[0] && (isalpha((unsigned char)inner[0]) || inner[0] == '_');
        for (const char *q = inner; *q && name_ok; q++)
            if (!isalnum((unsigned char)*q) && *q != '_')
                name_ok = 0;
        if (!name_ok) {
            cfg_secret_error(x, str, i, "invalid environment variable name in ${%s}", inner);
            bad = 1;
        } else {
            const char *val = getenv(inner);
            if (val && *val)
                buf_puts(&b, val);
            else if (dflt)
                buf_puts(&b, dflt);
            else {
                cfg_secret_error(x, str, i, "environment variable %s is %s", inner,
                                 val ? "empty" : "not set");
                bad = 1;
            }
        }
        free(inner);
        i += inner_len + 2;
    }
    if (!bad && json_string_setn(str, b.data ? b.data : "", b.len) < 0) {
        struct yamlx_mark m;
        yamlx_where(x->doc, str, &m);
        yamlx_diag(x->diags, 0, &m, "value after substitution is too long or not UTF-8");
    }
    buf_free(&b);
}

static void cfg_expand(struct cfg *x, json_t *v, int depth)
{
    if (depth > 128 || !v)
        return;
    if (json_is_object(v) || json_is_array(v) || json_is_string(v)) {
        char id[32];
        snprintf(id, sizeof id, "%p", (void *)v);
        if (json_object_get(x->seen, id))
            return;
        json_object_set_new(x->seen, id, json_true());
    }
    if (json_is_string(v)) {
        cfg_expand_string(x, v);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c)
            cfg_expand(x, c, depth + 1);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
            cfg_expand(x, c, depth + 1);
    }
}

/* ---- --set overrides ------------------------------------------------------------------- */

static int cfg_apply_set(struct cfg *x, const char *arg)
{
    const char *eq = strchr(arg, '=');
    int rc = -1;
    char *keypath = eq ? util_strndup(arg, (size_t)(eq - arg)) : util_strdup(arg);
    char *origin = util_asprintf("--set %s", keypath ? keypath : "");
    struct yamlx_mark m = {origin, 0, 0};
    if (!keypath || !origin)
        goto done;
    if (!eq) {
        yamlx_diag(x->diags, 0, &m, "expected key.path=value");
        goto done;
    }
    /* Components: dot-separated names of letters, digits, '_' and '-'. */
    int ok = keypath[0] != '\0';
    for (const char *p = keypath; *p && ok; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.') ||
            (*p == '.' && (p == keypath || p[1] == '\0' || p[1] == '.')))
            ok = 0;
    if (!ok) {
        yamlx_diag(x->diags, 0, &m,
                   "invalid key path (dot-separated names of letters, digits, _ and -)");
        goto done;
    }
    const char *value = eq + 1;
    struct yamlx_limits lim = {0, 0, 1};
    char *perr = NULL;
    yamlx_doc_t *vdoc = yamlx_parse(value, strlen(value), origin, &lim, &perr);
    if (!vdoc) {
        yamlx_diag_raw(x->diags, 0, perr);
        free(perr);
        goto done;
    }
    json_t *node = yamlx_root(x->doc);
    char *parts = util_strdup(keypath);
    char *comp = parts;
    while (comp) {
        char *next = strchr(comp, '.');
        if (next)
            *next++ = '\0';
        if (!json_is_object(node)) {
            yamlx_diag(x->diags, 0, &m, "the value it goes into is not a mapping");
            yamlx_free(vdoc);
            free(parts);
            goto done;
        }
        if (!next) {
            if (yamlx_graft(x->doc, node, comp, vdoc) < 0)
                yamlx_diag(x->diags, 0, &m, "out of memory");
            else
                rc = 0;
            free(parts);
            goto done;
        }
        json_t *child = json_object_get(node, comp);
        if (!child || json_is_null(child)) {
            /* A missing section: an empty mapping that says it came from this option. */
            char *perr2 = NULL;
            yamlx_doc_t *empty = yamlx_parse("{}", 2, origin, &lim, &perr2);
            free(perr2);
            if (!empty || yamlx_graft(x->doc, node, comp, empty) < 0 ||
                !(child = json_object_get(node, comp))) {
                yamlx_free(vdoc);
                free(parts);
                goto done;
            }
        }
        node = child;
        comp = next;
    }
    yamlx_free(vdoc);
    free(parts);
done:
    free(keypath);
    free(origin);
    return rc;
}

/* ---- sections ------------------------------------------------------------------------- */

static void cfg_defaults(struct tb_config *c)
{
    c->listen = util_strdup("127.0.0.1:8080");
    c->trackplan.api_key_header = util_strdup("X-API-Key");
    c->trackplan.connect_timeout_ms = 5000;
    c->trackplan.timeout_ms = 30000;
    c->trackplan.retries_max = 3;
    c->trackplan.retries_base_ms = 200;
    c->trackplan.retries_cap_ms = 10000;
    c->smtp.port = 25;
    c->smtp.starttls = TB_STARTTLS_ENABLED;
    c->log.level = LOG_LVL_INFO;
    c->correlation.reopen_window_ms = 0;
    c->correlation.min_interval_ms = 0;
    c->correlation.flap_window_ms = 0;
    c->lookups.ttl_ms = 10 * 60 * 1000;
    c->lookups.max_entries = 10000;
    c->delivery.concurrency = 8;
    c->delivery.rate = 0;
    c->delivery.max_attempts = 10;
    c->delivery.backoff_base_ms = 1000;
    c->delivery.backoff_cap_ms = 10 * 60 * 1000;
    c->delivery.breaker_failures = 5;
    c->delivery.breaker_cooldown_ms = 30000;
    c->limits.body = 1024 * 1024;
    c->limits.headers = 64 * 1024;
    c->limits.json_depth = 64;
    c->limits.events_per_request = 1000;
    c->limits.regex_match = 1000000;
    c->limits.regex_depth = 10000;
    c->limits.regex_heap = 20u * 1024 * 1024;
    c->limits.regex_jit_stack = 512u * 1024;
    c->limits.template_output = 1024 * 1024;
}

static void cfg_trackplan(struct cfg *x, json_t *root)
{
    static const char *const keys[] = {"url", "api_key", "user", "password", "api_key_header",
                                       "connect_timeout", "timeout", "retries", "ca_file",
                                       "insecure", NULL};
    struct tb_config *c = x->c;
    json_t *t = cfg_section(x, root, "trackplan", "trackplan", keys);
    if (!t) {
        if (!json_object_get(root, "trackplan")) {
            struct yamlx_mark m = {yamlx_origin(x->doc), 0, 0};
            yamlx_diag(x->diags, 0, &m, "trackplan: missing (url and credentials are required)");
        }
        return;
    }
    cfg_str(x, t, "url", "trackplan", &c->trackplan.url);
    if (!json_object_get(t, "url"))
        cfg_err(x, t, NULL, "trackplan", "url is required");
    else if (c->trackplan.url) {
        const char *u = c->trackplan.url;
        if ((strncmp(u, "http://", 7) != 0 || !u[7]) && (strncmp(u, "https://", 8) != 0 || !u[8]))
            cfg_err(x, t, "url", "trackplan.url", "expected an http:// or https:// URL");
        size_t n = strlen(u);
        while (n > 0 && u[n - 1] == '/')
            c->trackplan.url[--n] = '\0';
    }
    cfg_str(x, t, "api_key", "trackplan", &c->trackplan.api_key);
    cfg_str(x, t, "user", "trackplan", &c->trackplan.user);
    cfg_str(x, t, "password", "trackplan", &c->trackplan.password);
    int has_key = json_object_get(t, "api_key") != NULL;
    int has_user = json_object_get(t, "user") != NULL;
    int has_pass = json_object_get(t, "password") != NULL;
    if (has_key && (has_user || has_pass))
        cfg_err(x, t, "api_key", "trackplan.api_key",
                "use either api_key or user and password, not both");
    else if (!has_key && !has_user && !has_pass)
        cfg_err(x, t, NULL, "trackplan",
                "credentials are required: api_key, or user and password");
    else if (!has_key && has_user != has_pass)
        cfg_err(x, t, has_user ? "user" : "password",
                has_user ? "trackplan.user" : "trackplan.password",
                "user and password go together");
    cfg_str(x, t, "api_key_header", "trackplan", &c->trackplan.api_key_header);
    if (c->trackplan.api_key_header)
        for (const char *p = c->trackplan.api_key_header; *p; p++)
            if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_')) {
                cfg_err(x, t, "api_key_header", "trackplan.api_key_header",
                        "expected a header name (letters, digits, - and _)");
                break;
            }
    cfg_duration(x, t, "connect_timeout", "trackplan", 100, 300000,
                 &c->trackplan.connect_timeout_ms);
    cfg_duration(x, t, "timeout", "trackplan", 100, 3600000, &c->trackplan.timeout_ms);
    static const char *const rkeys[] = {"max", "base", "cap", NULL};
    json_t *r = cfg_section(x, t, "retries", "trackplan.retries", rkeys);
    if (r) {
        cfg_int(x, r, "max", "trackplan.retries", 0, 100, &c->trackplan.retries_max);
        cfg_duration(x, r, "base", "trackplan.retries", 1, 3600000, &c->trackplan.retries_base_ms);
        cfg_duration(x, r, "cap", "trackplan.retries", 1, 86400000, &c->trackplan.retries_cap_ms);
        if (c->trackplan.retries_cap_ms < c->trackplan.retries_base_ms)
            cfg_err(x, r, "cap", "trackplan.retries.cap", "must not be less than base");
    }
    cfg_path(x, t, "ca_file", "trackplan", &c->trackplan.ca_file);
    cfg_bool(x, t, "insecure", "trackplan", &c->trackplan.insecure);
}

static void cfg_tls(struct cfg *x, json_t *root)
{
    static const char *const keys[] = {"listen", "cert", "key", "client_ca", NULL};
    json_t *t = cfg_section(x, root, "tls", "tls", keys);
    if (!t)
        return;
    struct tb_config *c = x->c;
    cfg_listen(x, t, "listen", "tls", &c->tls.listen);
    cfg_path(x, t, "cert", "tls", &c->tls.cert);
    cfg_path(x, t, "key", "tls", &c->tls.key);
    cfg_path(x, t, "client_ca", "tls", &c->tls.client_ca);
    if (json_object_get(t, "listen") && (!json_object_get(t, "cert") || !json_object_get(t, "key")))
        cfg_err(x, t, "listen", "tls.listen", "needs tls.cert and tls.key");
    if (!json_object_get(t, "listen") && (json_object_get(t, "cert") || json_object_get(t, "key")))
        cfg_err(x, t, NULL, "tls", "cert and key are set but listen is not");
}

static void cfg_smtp(struct cfg *x, json_t *root)
{
    static const char *const keys[] = {"host", "port", "starttls", "user", "password", "from",
                                       NULL};
    json_t *s = cfg_section(x, root, "smtp", "smtp", keys);
    if (!s)
        return;
    struct tb_config *c = x->c;
    cfg_str(x, s, "host", "smtp", &c->smtp.host);
    cfg_int(x, s, "port", "smtp", 1, 65535, &c->smtp.port);
    json_t *st = json_object_get(s, "starttls");
    if (json_is_boolean(st)) {
        c->smtp.starttls = json_is_true(st) ? TB_STARTTLS_REQUIRED : TB_STARTTLS_DISABLED;
    } else if (json_is_string(st)) {
        const char *v = json_string_value(st);
        if (strcmp(v, "disabled") == 0)
            c->smtp.starttls = TB_STARTTLS_DISABLED;
        else if (strcmp(v, "enabled") == 0)
            c->smtp.starttls = TB_STARTTLS_ENABLED;
        else if (strcmp(v, "required") == 0)
            c->smtp.starttls = TB_STARTTLS_REQUIRED;
        else
            cfg_err(x, s, "starttls", "smtp.starttls",
                    "expected disabled, enabled, required, true or false");
    } else if (st && !json_is_null(st)) {
        cfg_err(x, s, "starttls", "smtp.starttls",
                "expected disabled, enabled, required, true or false");
    }
    cfg_str(x, s, "user", "smtp", &c->smtp.user);
    cfg_str(x, s, "password", "smtp", &c->smtp.password);
    cfg_str(x, s, "from", "smtp", &c->smtp.from);
    if (c->smtp.from && !strchr(c->smtp.from, '@'))
        cfg_err(x, s, "from", "smtp.from", "expected a mail address");
    if (!c->smtp.host && (c->smtp.user || c->smtp.from))
        cfg_err(x, s, NULL, "smtp", "host is required");
    if ((c->smtp.user != NULL) != (c->smtp.password != NULL))
        cfg_err(x, s, c->smtp.user ? "user" : "password", "smtp", "user and password go together");
}

static void cfg_log(struct cfg *x, json_t *root)
{
    static const char *const keys[] = {"level", "format", NULL};
    json_t *l = cfg_section(x, root, "log", "log", keys);
    if (!l)
        return;
    json_t *lv = json_object_get(l, "level");
    if (lv && !json_is_null(lv) &&
        (!json_is_string(lv) || log_parse_level(json_string_value(lv), &x->c->log.level) < 0))
        cfg_err(x, l, "level", "log.level", "expected debug, info, warn or error");
    json_t *f = json_object_get(l, "format");
    if (f && !json_is_null(f)) {
        if (json_is_string(f) && strcmp(json_string_value(f), "json") == 0)
            x->c->log.json = 1;
        else if (json_is_string(f) && strcmp(json_string_value(f), "logfmt") == 0)
            x->c->log.json = 0;
        else
            cfg_err(x, l, "format", "log.format", "expected logfmt or json");
    }
}

static void cfg_small_sections(struct cfg *x, json_t *root)
{
    struct tb_config *c = x->c;
    static const char *const store_keys[] = {"path", "max_size", "retention", NULL};
    json_t *s = cfg_section(x, root, "store", "store", store_keys);
    if (s) {
        cfg_path(x, s, "path", "store", &c->store.path);
        cfg_size(x, s, "max_size", "store", 64 * 1024, (size_t)1 << 50, &c->store.max_size);
        cfg_duration(x, s, "retention", "store", 60 * 1000, INT64_C(3650) * 86400 * 1000,
                     &c->store.retention_ms);
    }
    if (!c->store.path)
        c->store.path = cfg_join_path(c->dir ? c->dir : ".", "trackbridge.db");

    static const char *const admin_keys[] = {"token", NULL};
    json_t *a = cfg_section(x, root, "admin", "admin", admin_keys);
    if (a) {
        cfg_str(x, a, "token", "admin", &c->admin.token);
        if (c->admin.token && strlen(c->admin.token) < 16)
            cfg_err(x, a, "token", "admin.token", "too short (at least 16 characters)");
    }

    static const char *const corr_keys[] = {"reopen_window", "min_interval", "flap_window", NULL};
    json_t *co = cfg_section(x, root, "correlation", "correlation", corr_keys);
    if (co) {
        cfg_duration(x, co, "reopen_window", "correlation", 0, 365LL * 86400000,
                     &c->correlation.reopen_window_ms);
        cfg_duration(x, co, "min_interval", "correlation", 0, 30LL * 86400000,
                     &c->correlation.min_interval_ms);
        cfg_duration(x, co, "flap_window", "correlation", 0, 86400000,
                     &c->correlation.flap_window_ms);
    }

    static const char *const lk_keys[] = {"ttl", "max_entries", NULL};
    json_t *lk = cfg_section(x, root, "lookups", "lookups", lk_keys);
    if (lk) {
        cfg_duration(x, lk, "ttl", "lookups", 0, 7LL * 86400000, &c->lookups.ttl_ms);
        int n = (int)c->lookups.max_entries;
        cfg_int(x, lk, "max_entries", "lookups", 0, 1000000, &n);
        c->lookups.max_entries = (size_t)n;
    }

    static const char *const dl_keys[] = {"concurrency", "rate", "max_attempts", "backoff",
                                          "breaker", NULL};
    json_t *d = cfg_section(x, root, "delivery", "delivery", dl_keys);
    if (d) {
        cfg_int(x, d, "concurrency", "delivery", 1, 256, &c->delivery.concurrency);
        cfg_double(x, d, "rate", "delivery", 0, 100000, &c->delivery.rate);
        cfg_int(x, d, "max_attempts", "delivery", 1, 1000, &c->delivery.max_attempts);
        static const char *const bo_keys[] = {"base", "cap", NULL};
        json_t *b = cfg_section(x, d, "backoff", "delivery.backoff", bo_keys);
        if (b) {
            cfg_duration(x, b, "base", "delivery.backoff", 1, 86400000,
                         &c->delivery.backoff_base_ms);
            cfg_duration(x, b, "cap", "delivery.backoff", 1, 7LL * 86400000,
                         &c->delivery.backoff_cap_ms);
            if (c->delivery.backoff_cap_ms < c->delivery.backoff_base_ms)
                cfg_err(x, b, "cap", "delivery.backoff.cap", "must not be less than base");
        }
        static const char *const br_keys[] = {"failures", "cooldown", NULL};
        json_t *br = cfg_section(x, d, "breaker", "delivery.breaker", br_keys);
        if (br) {
            cfg_int(x, br, "failures", "delivery.breaker", 0, 10000,
                    &c->delivery.breaker_failures);
            cfg_duration(x, br, "cooldown", "delivery.breaker", 1000, 86400000,
                         &c->delivery.breaker_cooldown_ms);
        }
    }

    static const char *const lim_keys[] = {"body", "headers", "json_depth", "events_per_request",
                                           "regex", "template_output", NULL};
    json_t *l = cfg_section(x, root, "limits", "limits", lim_keys);
    if (l) {
        cfg_size(x, l, "body", "limits", 1024, 1024u * 1024 * 1024, &c->limits.body);
        cfg_size(x, l, "headers", "limits", 1024, 16u * 1024 * 1024, &c->limits.headers);
        cfg_int(x, l, "json_depth", "limits", 2, 1024, &c->limits.json_depth);
        cfg_int(x, l, "events_per_request", "limits", 1, 100000, &c->limits.events_per_request);
        cfg_size(x, l, "template_output", "limits", 1024, 64u * 1024 * 1024,
                 &c->limits.template_output);
        static const char *const rx_keys[] = {"match", "depth", "heap", "jit_stack", NULL};
        json_t *r = cfg_section(x, l, "regex", "limits.regex", rx_keys);
        if (r) {
            int m = (int)c->limits.regex_match, dp = (int)c->limits.regex_depth;
            cfg_int(x, r, "match", "limits.regex", 1000, 1000000000, &m);
            cfg_int(x, r, "depth", "limits.regex", 100, 10000000, &dp);
            c->limits.regex_match = (uint32_t)m;
            c->limits.regex_depth = (uint32_t)dp;
            cfg_size(x, r, "heap", "limits.regex", 64 * 1024, (size_t)4096 * 1024 * 1024,
                     &c->limits.regex_heap);
            cfg_size(x, r, "jit_stack", "limits.regex", 32 * 1024, 64u * 1024 * 1024,
                     &c->limits.regex_jit_stack);
        }
    }
}

/* Finds the node a message like "auth.hmac.secrets[0]: ..." names, under base (whose own
 * name is the first component); falls back to base. */
static json_t *cfg_named_node(json_t *base, const char *msg, json_t **parent, const char **key)
{
    *parent = NULL;
    *key = NULL;
    const char *colon = strstr(msg, ": ");
    if (!colon || colon - msg > 200)
        return base;
    char path[256];
    memcpy(path, msg, (size_t)(colon - msg));
    path[colon - msg] = '\0';
    json_t *node = base;
    /* The first component is the base's own name. */
    char *comp = strchr(path, '.');
    comp = comp ? comp + 1 : NULL;
    while (comp && *comp) {
        char *nextc = strchr(comp, '.');
        if (nextc)
            *nextc++ = '\0';
        char *br = strchr(comp, '[');
        if (br)
            *br = '\0';
        json_t *next = json_is_object(node) ? json_object_get(node, comp) : NULL;
        if (!next)
            return node;
        *parent = node;
        *key = json_object_iter_key(json_object_iter_at(node, comp));
        node = next;
        while (br && json_is_array(node)) {
            long idx;
            char *end = strchr(br + 1, ']');
            if (!end)
                break;
            *end = '\0';
            if (util_parse_long(br + 1, 0, LONG_MAX, &idx) < 0 ||
                (size_t)idx >= json_array_size(node))
                break;
            *parent = NULL;
            node = json_array_get(node, (size_t)idx);
            br = strchr(end + 1, '[');
        }
        comp = nextc;
    }
    return node;
}

/* Reports a message from another module's validator ("auth.bearer: must be ...") at the
 * node it names under src[member], prefixed with the source's path. */
static void cfg_report_named(struct cfg *x, json_t *src, const char *member, const char *prefix,
                             const char *msg)
{
    json_t *base = json_object_get(src, member);
    json_t *parent;
    const char *key;
    json_t *node = cfg_named_node(base, msg, &parent, &key);
    struct yamlx_mark m;
    if (yamlx_where(x->doc, node, &m) < 0 &&
        !(parent && key && yamlx_where_member(x->doc, parent, key, &m) == 0))
        cfg_mark(x, src, member, &m);
    size_t ml = strlen(member);
    if (strncmp(msg, member, ml) == 0 && (msg[ml] == '.' || msg[ml] == ':' || msg[ml] == '['))
        yamlx_diag(x->diags, 0, &m, "%s.%s", prefix, msg);
    else
        yamlx_diag(x->diags, 0, &m, "%s.%s: %s", prefix, member, msg);
}

static int cfg_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !isalnum((unsigned char)s[0]))
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            return 0;
    return 1;
}

static void cfg_rate(struct cfg *x, json_t *rl, const char *prefix, double *rate)
{
    json_t *v = json_object_get(rl, "rate");
    if (!v || json_is_null(v))
        return;
    char *path = cfg_join(prefix, "rate");
    double r = -1;
    if (json_is_number(v)) {
        r = json_number_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        const char *slash = strchr(s, '/');
        char *num = slash ? util_strndup(s, (size_t)(slash - s)) : util_strdup(s);
        double n;
        if (num && util_parse_double(num, &n) == 0) {
            if (!slash || strcmp(slash, "/s") == 0)
                r = n;
            else if (strcmp(slash, "/m") == 0)
                r = n / 60.0;
            else if (strcmp(slash, "/h") == 0)
                r = n / 3600.0;
        }
        free(num);
    }
    if (!(r > 0) || r > 1e6)
        cfg_err(x, rl, "rate", path, "expected a positive rate such as 10, \"10/s\", \"600/m\"");
    else
        *rate = r;
    free(path);
}

static void cfg_sources(struct cfg *x, json_t *root)
{
    struct tb_config *c = x->c;
    json_t *srcs = json_object_get(root, "sources");
    if (!srcs || json_is_null(srcs))
        return;
    if (!json_is_object(srcs)) {
        cfg_err(x, root, "sources", "sources", "expected a mapping of source names, got %s",
                cfg_kind(srcs));
        return;
    }
    size_t n = json_object_size(srcs);
    if (n > CFG_MAX_SOURCES) {
        cfg_err(x, root, "sources", "sources", "at most %d sources", CFG_MAX_SOURCES);
        return;
    }
    c->sources = calloc(n ? n : 1, sizeof *c->sources);
    if (!c->sources)
        return;
    static const char *const keys[] = {"adapter", "auth", "options", "rate_limit", "max_body",
                                       NULL};
    const char *name;
    json_t *s;
    json_object_foreach(srcs, name, s) {
        char *prefix = util_asprintf("sources.%s", name);
        if (!prefix)
            return;
        if (!cfg_name_ok(name)) {
            struct yamlx_mark m;
            yamlx_where_key(x->doc, srcs, name, &m);
            yamlx_diag(x->diags, 0, &m,
                       "%s: a source name is 1 to 64 letters, digits, _ and - (it is the URL "
                       "path /hooks/<name>)",
                       prefix);
        }
        if (!json_is_object(s)) {
            cfg_err(x, srcs, name, prefix, "expected a mapping, got %s", cfg_kind(s));
            free(prefix);
            continue;
        }
        cfg_known_keys(x, s, prefix, keys);
        struct tb_source *src = &c->sources[c->nsources++];
        src->name = util_strdup(name);
        cfg_str(x, s, "adapter", prefix, &src->adapter);
        if (!json_object_get(s, "adapter"))
            cfg_err(x, srcs, name, prefix, "adapter is required");
        json_t *opts = json_object_get(s, "options");
        if (opts && !json_is_null(opts) && !json_is_object(opts))
            cfg_err(x, s, "options", prefix, "options: expected a mapping, got %s",
                    cfg_kind(opts));
        else if (opts && json_is_object(opts))
            src->options = opts;
        if (src->adapter) {
            if (!adapter_known(src->adapter)) {
                char *p = cfg_join(prefix, "adapter");
                cfg_err(x, s, "adapter", p,
                        "unknown adapter '%s' (known: alertmanager, grafana, zabbix, json, form, "
                        "bms, email)",
                        src->adapter);
                free(p);
            } else {
                char *err = NULL;
                int bad = adapter_check_options(src->adapter, src->options, &err) < 0;
                /* The email kind's options belong to the mail module. */
                if (!bad && strcmp(src->adapter, "email") == 0)
                    bad = mail_provider_options_check(src->options, &err) < 0;
                if (bad)
                    cfg_report_named(x, s, "options", prefix, err ? err : "invalid options");
                free(err);
            }
        }
        json_t *auth = json_object_get(s, "auth");
        if (auth && !json_is_null(auth)) {
            char *err = NULL;
            auth_t *a = auth_new(auth, &err);
            if (!a)
                cfg_report_named(x, s, "auth", prefix, err ? err : "invalid auth");
            auth_free(a);
            free(err);
            src->auth = auth;
        }
        static const char *const rl_keys[] = {"rate", "burst", NULL};
        char *rlp = cfg_join(prefix, "rate_limit");
        json_t *rl = cfg_section(x, s, "rate_limit", rlp, rl_keys);
        if (rl) {
            cfg_rate(x, rl, rlp, &src->rate);
            /* Default burst: one second's worth, rounded up, at least 1. */
            src->burst = (double)(long long)src->rate;
            if (src->burst < src->rate)
                src->burst += 1;
            if (src->burst < 1)
                src->burst = 1;
            cfg_double(x, rl, "burst", rlp, 1, 1e6, &src->burst);
            if (!json_object_get(rl, "rate"))
                cfg_err(x, rl, NULL, rlp, "rate is required");
        }
        free(rlp);
        cfg_size(x, s, "max_body", prefix, 1024, 1024u * 1024 * 1024, &src->max_body);
        free(prefix);
    }
}

static void cfg_rest(struct cfg *x, json_t *root)
{
    struct tb_config *c = x->c;
    cfg_listen(x, root, "listen", "", &c->listen);
    cfg_path(x, root, "rules", "", &c->rules);
    if (!c->rules)
        c->rules = cfg_join_path(c->dir ? c->dir : ".", "rules");
    cfg_path(x, root, "templates", "", &c->templates);
    json_t *vars = json_object_get(root, "vars");
    if (vars && !json_is_null(vars) && !json_is_object(vars))
        cfg_err(x, root, "vars", "vars", "expected a mapping, got %s", cfg_kind(vars));
    else if (json_is_object(vars))
        c->vars = json_incref(vars);
    if (!c->vars)
        c->vars = json_object();
}

struct tb_config *config_load(const char *path, const char *const *sets, size_t nsets,
                              yamlx_diags_t *diags)
{
    static const char *const top[] = {"listen", "tls", "trackplan", "store", "smtp", "admin",
                                      "log", "sources", "rules", "templates", "vars",
                                      "correlation", "lookups", "delivery", "limits", NULL};
    struct cfg x;
    memset(&x, 0, sizeof x);
    x.diags = diags;
    size_t errors_before = diags->errors;
    struct tb_config *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    x.c = c;
    cfg_defaults(c);
    c->path = util_strdup(path);
    const char *slash = strrchr(path, '/');
    c->dir = slash ? util_strndup(path, slash == path ? 1 : (size_t)(slash - path))
                   : util_strdup(".");
    char *err = NULL;
    x.doc = yamlx_load(path, CFG_MAX_FILE, &err);
    if (!x.doc) {
        yamlx_diag_raw(diags, 0, err);
        free(err);
        goto fail;
    }
    c->priv = x.doc;
    json_t *root = yamlx_root(x.doc);
    if (json_is_null(root)) {
        /* An empty file: --set may still build a whole configuration. */
        yamlx_doc_t *empty = yamlx_parse("{}", 2, path, NULL, &err);
        if (!empty) {
            free(err);
            goto fail;
        }
        yamlx_free(x.doc);
        x.doc = empty;
        c->priv = empty;
        root = yamlx_root(empty);
    }
    if (!json_is_object(root)) {
        struct yamlx_mark m;
        yamlx_where(x.doc, root, &m);
        yamlx_diag(diags, 0, &m, "the configuration must be a mapping");
        goto fail;
    }
    for (size_t i = 0; i < nsets; i++)
        cfg_apply_set(&x, sets[i]);
    x.seen = json_object();
    cfg_expand(&x, root, 0);
    json_decref(x.seen);
    x.seen = NULL;
    cfg_known_keys(&x, root, "", top);
    cfg_rest(&x, root);
    cfg_tls(&x, root);
    cfg_trackplan(&x, root);
    cfg_smtp(&x, root);
    cfg_log(&x, root);
    cfg_small_sections(&x, root);
    cfg_sources(&x, root);
    if (diags->errors > errors_before)
        goto fail;
    return c;
fail:
    config_free(c);
    return NULL;
}

void config_free(struct tb_config *c)
{
    if (!c)
        return;
    free(c->path);
    free(c->dir);
    free(c->listen);
    free(c->tls.listen);
    free(c->tls.cert);
    free(c->tls.key);
    free(c->tls.client_ca);
    free(c->trackplan.url);
    free(c->trackplan.api_key);
    free(c->trackplan.user);
    free(c->trackplan.password);
    free(c->trackplan.api_key_header);
    free(c->trackplan.ca_file);
    free(c->store.path);
    free(c->smtp.host);
    free(c->smtp.user);
    free(c->smtp.password);
    free(c->smtp.from);
    free(c->admin.token);
    for (size_t i = 0; i < c->nsources; i++) {
        free(c->sources[i].name);
        free(c->sources[i].adapter);
    }
    free(c->sources);
    free(c->rules);
    free(c->templates);
    json_decref(c->vars);
    yamlx_free(c->priv);
    free(c);
}

const struct tb_source *config_source(const struct tb_config *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (size_t i = 0; i < c->nsources; i++)
        if (strcmp(c->sources[i].name, name) == 0)
            return &c->sources[i];
    return NULL;
}

const yamlx_doc_t *config_doc(const struct tb_config *c)
{
    return c ? c->priv : NULL;
}

const char *config_default_path(void)
{
    return access(CONFIG_INSTALLED_PATH, R_OK) == 0 ? CONFIG_INSTALLED_PATH : CONFIG_REPO_PATH;
}

void config_tp_options(const struct tb_config *c, struct tp_options *o)
{
    o->url = c->trackplan.url;
    o->api_key = c->trackplan.api_key;
    o->api_key_header = c->trackplan.api_key_header;
    o->user = c->trackplan.user;
    o->password = c->trackplan.password;
    o->connect_timeout_ms = (long)c->trackplan.connect_timeout_ms;
    o->timeout_ms = (long)c->trackplan.timeout_ms;
    o->retry.max_attempts = c->trackplan.retries_max + 1;
    o->retry.base_ms = c->trackplan.retries_base_ms;
    o->retry.cap_ms = c->trackplan.retries_cap_ms;
    o->ca_file = c->trackplan.ca_file;
    o->insecure = c->trackplan.insecure;
    o->max_transfers = c->delivery.concurrency;
}
