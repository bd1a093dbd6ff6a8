/* fuzz_tmpl: compiles and renders hostile templates. Input: NUL-separated parts — the
 * template, the JSON data, then the texts of partials "a", "b", "c", ... (any other partial
 * name is missing). Renders with escaping on and off under small limits, walks the names, and
 * aborts if an output breaks its limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl.h"

#define MAX_PARTS 8
#define MAX_OUTPUT 65536

struct parts {
    const char *p[MAX_PARTS];
    size_t n;
};

static char *load(const char *name, void *ud)
{
    const struct parts *ps = ud;
    if (name[0] < 'a' || name[1] != '\0')
        return NULL;
    size_t k = (size_t)(name[0] - 'a') + 2;
    if (k >= ps->n)
        return NULL;
    size_t len = strlen(ps->p[k]);
    char *s = malloc(len + 1);
    if (s)
        memcpy(s, ps->p[k], len + 1);
    return s;
}

static void count_name(const char *name, int line, int col, void *ud)
{
    if (!name || !name[0] || line < 1 || col < 1)
        abort();
    (*(size_t *)ud)++;
}

static void count_partial(const char *name, int found, void *ud)
{
    if (!name)
        abort();
    (*(size_t *)ud) += (size_t)found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256 * 1024)
        return 0;
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    struct parts ps = {.n = 0};
    for (char *p = copy; ps.n < MAX_PARTS;) {
        ps.p[ps.n++] = p;
        size_t l = strlen(p);
        if (p + l >= copy + size)
            break;
        p += l + 1;
    }

    json_t *root = NULL;
    if (ps.n > 1)
        root = json_loads(ps.p[1], JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        root = json_pack("{s:s, s:i, s:f, s:b, s:n, s:[s,{s:s}], s:{s:{s:s}}}", "s", "<&'\">",
                         "i", 42, "f", 1.5, "t", 1, "z", "l", "x", "k", "v", "o", "p", "q",
                         "deep");

    struct tmpl_error err;
    tmpl_t *t = tmpl_compile(ps.p[0], load, &ps, &err);
    if (!t) {
        if (err.msg[0] == '\0')
            abort(); /* every failure explains itself */
    } else {
        struct tmpl_limits lim = {.max_output = MAX_OUTPUT, .max_depth = 16};
        for (int escape = 0; escape <= 1; escape++) {
            char *out = tmpl_render(t, root, escape, &lim, &err);
            if (out && strlen(out) > MAX_OUTPUT)
                abort();
            if (!out && err.msg[0] == '\0')
                abort();
            free(out);
        }
        size_t names = 0, found = 0;
        tmpl_each_name(t, count_name, &names);
        tmpl_each_partial(t, count_partial, &found);
        tmpl_free(t);
    }
    json_decref(root);
    free(copy);
    return 0;
}
