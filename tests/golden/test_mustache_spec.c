/* The mustache spec (../shared/testdata/mustache-spec/ modules) run through tmpl: every case of
 * every required module is compiled with its partials, rendered with HTML escaping on and
 * compared with the expected text. Optional "~" modules (lambdas, inheritance) are skipped. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "testutil.h"
#include "tmpl.h"

static char *spec_dir(void)
{
    const char *data = tu_env("TB_TESTDATA", NULL);
    char *dir = NULL;
    struct stat st;
    if (data) {
        dir = util_asprintf("%s/mustache-spec", data);
        if (dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return dir;
        free(dir);
    }
    const char *src = tu_env("TB_SRC", NULL);
    if (src) {
        dir = util_asprintf("%s/../shared/testdata/mustache-spec", src);
        if (dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return dir;
        free(dir);
    }
    return NULL;
}

static char *load_partial(const char *name, void *ud)
{
    json_t *v = json_object_get(ud, name);
    return json_is_string(v) ? util_strdup(json_string_value(v)) : NULL;
}

/* Runs every case of one spec file; each case is its own expectation. Returns the count. */
static int run_spec_file(const char *file)
{
    char *dir = spec_dir();
    cr_assert_not_null(dir, "mustache spec folder not found (TB_TESTDATA or TB_SRC/../shared)");
    char *path = util_asprintf("%s/%s", dir, file);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    cr_assert_not_null(doc, "%s: %s (line %d)", path, jerr.text, jerr.line);
    json_t *tests = json_object_get(doc, "tests");
    cr_assert(json_is_array(tests) && json_array_size(tests) > 0, "%s has no tests", path);

    int count = 0;
    size_t i;
    json_t *tc;
    json_array_foreach(tests, i, tc) {
        const char *name = json_string_value(json_object_get(tc, "name"));
        const char *text = json_string_value(json_object_get(tc, "template"));
        const char *expected = json_string_value(json_object_get(tc, "expected"));
        cr_assert(name && text && expected, "%s: case %zu is malformed", file, i);
        struct tmpl_error err;
        tmpl_t *t = tmpl_compile(text, load_partial, json_object_get(tc, "partials"), &err);
        cr_expect_not_null(t, "%s / %s: compile failed at %d:%d: %s", file, name, err.line,
                           err.col, err.msg);
        if (t) {
            char *out = tmpl_render(t, json_object_get(tc, "data"), 1, NULL, &err);
            cr_expect_not_null(out, "%s / %s: render failed: %s", file, name, err.msg);
            if (out)
                cr_expect_str_eq(out, expected, "%s / %s: template %s", file, name, text);
            free(out);
            tmpl_free(t);
        }
        count++;
    }
    json_decref(doc);
    free(path);
    free(dir);
    return count;
}

static const char *const required[] = {"comments.json", "delimiters.json",
                                       "interpolation.json", "inverted.json",
                                       "partials.json", "sections.json"};
#define NREQUIRED (sizeof required / sizeof required[0])

static int is_required(const char *file)
{
    for (size_t i = 0; i < NREQUIRED; i++)
        if (strcmp(file, required[i]) == 0)
            return 1;
    return 0;
}

Test(mustache_spec, the_spec_folder_holds_every_required_module)
{
    char *dir = spec_dir();
    cr_assert_not_null(dir, "mustache spec folder not found (TB_TESTDATA or TB_SRC/../shared)");
    for (size_t i = 0; i < NREQUIRED; i++) {
        char *path = util_asprintf("%s/%s", dir, required[i]);
        struct stat st;
        cr_expect_eq(stat(path, &st), 0, "missing spec module %s", path);
        free(path);
    }
    free(dir);
}

Test(mustache_spec, any_other_non_optional_module_in_the_folder_passes)
{
    /* The six known modules have their own tests below; this picks up any module added to
     * the folder later. */
    char *dir = spec_dir();
    cr_assert_not_null(dir, "mustache spec folder not found (TB_TESTDATA or TB_SRC/../shared)");
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || e->d_name[0] == '~' || n < 6 ||
            strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        files++;
        if (!is_required(e->d_name))
            (void)run_spec_file(e->d_name);
    }
    closedir(d);
    free(dir);
    cr_expect_geq(files, (int)NREQUIRED, "expected at least %zu spec modules, found %d",
                  NREQUIRED, files);
}

Test(mustache_spec, comments_cases_pass) { cr_expect_gt(run_spec_file("comments.json"), 0); }
Test(mustache_spec, delimiters_cases_pass) { cr_expect_gt(run_spec_file("delimiters.json"), 0); }
Test(mustache_spec, interpolation_cases_pass)
{
    cr_expect_gt(run_spec_file("interpolation.json"), 0);
}
Test(mustache_spec, inverted_cases_pass) { cr_expect_gt(run_spec_file("inverted.json"), 0); }
Test(mustache_spec, partials_cases_pass) { cr_expect_gt(run_spec_file("partials.json"), 0); }
Test(mustache_spec, sections_cases_pass) { cr_expect_gt(run_spec_file("sections.json"), 0); }
