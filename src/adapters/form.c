/* form: application/x-www-form-urlencoded bodies (simple alarm panels, HTML forms, curl -d)
 * → one event. The decoded fields become an object (a repeated name keeps its last value;
 * all values are listed under the `repeated` extra) mapped like the json kind. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "common/buf.h"
#include "common/util.h"

/* Fields per form: generous for any alarm sender, small enough to bound the work. */
#define FORM_MAX_FIELDS 1024

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes s[0..n) (+ and %XX) into a new JSON string. NULL with *err on a NUL byte or invalid
 * UTF-8; off is the byte offset of s in the body, for the message. */
static json_t *decode(const char *s, size_t n, size_t off, char **err)
{
    buf_t b;
    buf_init(&b, 0);
    json_t *out = NULL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        size_t at = i;
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            /* As the WHATWG URL-encoded parser: a '%' without two hex digits stays as is. */
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (c == '\0') {
            *err = adapter_errf("NUL byte in form field at byte %zu", off + at + 1);
            goto done;
        }
        if (buf_putc(&b, c) < 0) {
            *err = adapter_errf("out of memory");
            goto done;
        }
    }
    out = json_stringn(b.data ? b.data : "", b.len);
    if (!out)
        *err = adapter_errf("form field at byte %zu is not valid UTF-8", off + 1);
done:
    buf_free(&b);
    return out;
}

/* Adds name=value to fields (last wins) and records repeats in repeated. */
static void form_put(json_t *fields, json_t *repeated, const char *name, json_t *value)
{
    json_t *prev = json_object_get(fields, name);
    if (prev) {
        json_t *all = json_object_get(repeated, name);
        if (!all) {
            all = json_array();
            json_array_append(all, prev);
            json_object_set_new(repeated, name, all);
        }
        json_array_append(all, value);
    }
    json_object_set(fields, name, value);
}

/* Parses the whole body into fields/repeated; 0 or -1 with *err. */
static int form_parse(const char *body, size_t len, json_t *fields, json_t *repeated,
                      char **err)
{
    size_t i = 0, count = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && body[i] != '&')
            i++;
        size_t end = i++;
        if (end == start)
            continue;
        if (++count > FORM_MAX_FIELDS) {
            *err = adapter_errf("too many form fields (limit %d)", FORM_MAX_FIELDS);
            return -1;
        }
        size_t eq = start;
        while (eq < end && body[eq] != '=')
            eq++;
        json_t *name = decode(body + start, eq - start, start, err);
        if (!name)
            return -1;
        json_t *value = eq < end ? decode(body + eq + 1, end - eq - 1, eq + 1, err)
                                 : json_string("");
        if (!value) {
            json_decref(name);
            return -1;
        }
        if (*json_string_value(name))
            form_put(fields, repeated, json_string_value(name), value);
        json_decref(name);
        json_decref(value);
    }
    return 0;
}

enum adapter_result adapter_form_run(const struct adapter_input *in,
                                     const struct adapter_limits *lim, json_t **events,
                                     char **err)
{
    enum adapter_result r = ADAPTER_REJECT;
    json_t *fields = json_object(), *repeated = json_object(), *out = NULL, *ev = NULL;
    struct adapter_map *m = adapter_generic_map("form", in->options, err);
    if (!m)
        goto done;
    char mt[64] = "";
    size_t n = 0;
    for (const char *p = in->content_type; p && *p && *p != ';' && n + 1 < sizeof mt; p++)
        if (*p != ' ' && *p != '\t')
            mt[n++] = (char)tolower((unsigned char)*p);
    mt[n] = '\0';
    if (strcmp(mt, "application/x-www-form-urlencoded") != 0) {
        *err = adapter_errf("content type %s is not application/x-www-form-urlencoded",
                            *mt ? mt : "(none)");
        goto done;
    }
    if (!fields || !repeated) {
        *err = adapter_errf("out of memory");
        goto done;
    }
    if (form_parse(in->body, in->body_len, fields, repeated, err) < 0)
        goto done;
    if (json_object_size(fields) == 0) {
        *err = adapter_errf("empty form body");
        goto done;
    }
    (void)lim;
    ev = adapter_json_event(in, "form", m, fields);
    out = json_array();
    if (!ev || !out) {
        *err = adapter_errf("out of memory");
        goto done;
    }
    json_object_set(ev, "repeated", repeated);
    json_array_append_new(out, ev);
    ev = NULL;
    *events = out;
    out = NULL;
    r = ADAPTER_OK;
done:
    adapter_map_free(m);
    json_decref(ev);
    json_decref(out);
    json_decref(fields);
    json_decref(repeated);
    return r;
}
