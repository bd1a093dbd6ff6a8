/* Golden tests for the shipped rules, in the style of Postfix's dict_pcre .in/.ref: each
 * folder of tests/golden/rules/ is one case — `args` (the arguments of `trackbridge test`,
 * one per line; "@name" is a file of the case folder), the payloads, and `expected.json`,
 * the dry run's output. The runner runs the real binary against deploy/trackbridge.yaml with
 * a fixed receive time and compares the JSON. TB_GOLDEN_UPDATE=1 rewrites expected.json
 * (review the diff before committing). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/util.h"
#include "testutil.h"

#define GOLDEN_TIME "2025-04-08T12:00:00Z"

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Single-quotes s for /bin/sh. */
static void sh_quote(buf_t *b, const char *s)
{
    buf_putc(b, '\'');
    for (; *s; s++) {
        if (*s == '\'')
            buf_puts(b, "'\\''");
        else
            buf_putc(b, *s);
    }
    buf_putc(b, '\'');
}

/* Runs one case; returns 1 when it passed. Failures are logged with both outputs. */
static int run_case(const char *src, const char *bin, const char *dir, const char *name)
{
    char *case_dir = util_asprintf("%s/%s", dir, name);
    char *args_path = util_asprintf("%s/args", case_dir);
    char *exp_path = util_asprintf("%s/expected.json", case_dir);
    char *exit_path = util_asprintf("%s/exit", case_dir);
    size_t len = 0;
    char *args = util_read_file(args_path, 65536, &len);
    int ok = 0;
    char *out = NULL;
    json_t *got = NULL, *want = NULL;
    if (!args) {
        cr_log_error("%s: no args file", name);
        goto done;
    }
    buf_t cmd;
    buf_init(&cmd, 0);
    buf_puts(&cmd, "TRACKBRIDGE_TOKEN=golden-token TRACKPLAN_API_KEY=golden-key ");
    sh_quote(&cmd, bin);
    buf_puts(&cmd, " test -c ");
    char *config = util_asprintf("%s/deploy/trackbridge.yaml", src);
    sh_quote(&cmd, config);
    free(config);
    buf_puts(&cmd, " --time " GOLDEN_TIME);
    for (char *line = args, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!*line || line[0] == '#')
            continue;
        buf_putc(&cmd, ' ');
        if (line[0] == '@') {
            char *p = util_asprintf("%s/%s", case_dir, line + 1);
            sh_quote(&cmd, p);
            free(p);
        } else {
            sh_quote(&cmd, line);
        }
    }
    buf_puts(&cmd, " 2>/dev/null");
    int want_exit = 0;
    char *ex = util_read_file(exit_path, 64, &len);
    if (ex) {
        long v;
        ex[strcspn(ex, "\n")] = '\0';
        if (util_parse_long(ex, 0, 255, &v) == 0)
            want_exit = (int)v;
        free(ex);
    }
    int rc = tu_run(cmd.data, &out);
    buf_free(&cmd);
    json_error_t je;
    got = out ? json_loads(out, 0, &je) : NULL;
    if (getenv("TB_GOLDEN_UPDATE") && got) {
        char *text = json_dumps(got, JSON_INDENT(2));
        FILE *f = fopen(exp_path, "w");
        if (f && text) {
            fprintf(f, "%s\n", text);
            cr_log_warn("%s: expected.json rewritten", name);
        }
        if (f)
            fclose(f);
        free(text);
    }
    want = json_load_file(exp_path, 0, &je);
    if (rc != want_exit) {
        cr_log_error("%s: exit %d, expected %d", name, rc, want_exit);
        goto done;
    }
    if (!want) {
        cr_log_error("%s: expected.json: %s", name, je.text);
        goto done;
    }
    if (!got || !json_equal(got, want)) {
        char *w = json_dumps(want, JSON_INDENT(2));
        cr_log_error("%s: output differs.\n--- expected\n%s\n--- got\n%s", name, w ? w : "",
                     out ? out : "(none)");
        free(w);
        goto done;
    }
    ok = 1;
done:
    json_decref(got);
    json_decref(want);
    free(out);
    free(args);
    free(case_dir);
    free(args_path);
    free(exp_path);
    free(exit_path);
    return ok;
}

Test(rules_golden, every_case_gives_its_expected_dry_run, .timeout = 240)
{
    const char *src = tu_env("TB_SRC", ".");
    const char *bin = tu_env("TB_BIN", "./trackbridge");
    char *dir = util_asprintf("%s/tests/golden/rules", src);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        if (e->d_name[0] == '.')
            continue;
        names[n++] = util_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    size_t passed = 0;
    for (size_t i = 0; i < n; i++) {
        if (run_case(src, bin, dir, names[i]))
            passed++;
        free(names[i]);
    }
    free(dir);
    cr_log_info("%zu of %zu golden cases passed", passed, n);
    cr_expect_geq(n, 10, "the golden cases are missing");
    cr_expect_eq(passed, n, "%zu golden case(s) failed", n - passed);
}
