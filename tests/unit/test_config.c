/* Unit tests for config: the shipped default, exact file:line:col for every kind of problem,
 * secrets by reference, --set overrides, paths, durations and sizes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "config.h"
#include "testutil.h"

#define MINIMAL "trackplan:\n  url: http://127.0.0.1:8081\n  api_key: k\n"

static char *dir;

static void setup(void)
{
    dir = tu_tmpdir();
    cr_assert_not_null(dir);
    setenv("TB_TEST_TOKEN", "secret-token", 1);
    unsetenv("TB_TEST_UNSET");
    setenv("TB_TEST_EMPTY", "", 1);
}

static void teardown(void)
{
    char *cmd = util_asprintf("rm -rf '%s'", dir);
    if (cmd && system(cmd) != 0)
        cr_log_warn("could not remove %s", dir);
    free(cmd);
    free(dir);
}

TestSuite(config, .init = setup, .fini = teardown);

static char *write_file(const char *name, const char *text)
{
    char *path = util_asprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads text as a config; returns it (NULL on errors) with the diagnostics in dg. */
static struct tb_config *load(const char *text, const char *const *sets, size_t nsets,
                              yamlx_diags_t *dg, char **path)
{
    *path = write_file("tb.yaml", text);
    yamlx_diags_init(dg);
    return config_load(*path, sets, nsets, dg);
}

/* 1 when some diagnostic is exactly "<path><suffix>". */
static int has_diag(const yamlx_diags_t *dg, const char *path, const char *suffix)
{
    for (size_t i = 0; i < dg->n; i++) {
        size_t pl = path ? strlen(path) : 0;
        if ((!path || strncmp(dg->msg[i], path, pl) == 0) && strcmp(dg->msg[i] + pl, suffix) == 0)
            return 1;
    }
    return 0;
}

static void dump(const yamlx_diags_t *dg)
{
    for (size_t i = 0; i < dg->n; i++)
        cr_log_info("diag: %s", dg->msg[i]);
}

Test(config, the_shipped_default_loads_with_its_two_variables_set)
{
    setenv("TRACKBRIDGE_TOKEN", "x", 1);
    setenv("TRACKPLAN_API_KEY", "y", 1);
    unsetenv("TRACKBRIDGE_LISTEN");
    unsetenv("TRACKPLAN_URL");
    char *path = util_asprintf("%s/deploy/trackbridge.yaml", tu_env("TB_SRC", "."));
    yamlx_diags_t dg;
    yamlx_diags_init(&dg);
    struct tb_config *c = config_load(path, NULL, 0, &dg);
    dump(&dg);
    cr_assert_not_null(c);
    cr_expect_str_eq(c->listen, "127.0.0.1:8080");
    cr_expect_str_eq(c->trackplan.url, "http://127.0.0.1:8081");
    cr_expect_str_eq(c->trackplan.api_key, "y");
    const char *names[] = {"alertmanager", "grafana", "zabbix", "bms", "json", "email"};
    for (size_t i = 0; i < 6; i++) {
        const struct tb_source *s = config_source(c, names[i]);
        cr_assert_not_null(s, "source %s", names[i]);
        cr_expect_str_eq(json_string_value(json_object_get(s->auth, "bearer")), "x");
    }
    cr_expect(strstr(c->rules, "rules") != NULL);
    config_free(c);
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, an_unknown_key_is_reported_at_the_key)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load(MINIMAL "listne: 127.0.0.1:9\n", NULL, 0, &dg, &path);
    dump(&dg);
    cr_expect_null(c);
    cr_expect(has_diag(&dg, path,
                       ":4:1: unknown key 'listne' in the configuration (did you mean 'listen'?)"));
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, a_wrong_type_is_reported_at_the_value)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load(MINIMAL "  insecure: maybe\n", NULL, 0, &dg, &path);
    dump(&dg);
    cr_expect_null(c);
    cr_expect(
        has_diag(&dg, path, ":4:13: trackplan.insecure: expected true or false, got a string"));
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, an_out_of_range_value_is_reported_with_its_range)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load(MINIMAL "  retries:\n    max: 1000\ndelivery:\n  concurrency: 0\n",
                               NULL, 0, &dg, &path);
    dump(&dg);
    cr_expect_null(c);
    cr_expect(has_diag(&dg, path, ":5:10: trackplan.retries.max: 1000 is out of range (0 to 100)"));
    cr_expect(has_diag(&dg, path, ":7:16: delivery.concurrency: 0 is out of range (1 to 256)"));
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, every_problem_is_reported_not_just_the_first)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load("listen: nowhere\ntrackplan: {url: ftp://x, api_key: k}\n"
                               "log: {level: loud}\nbogus: 1\n",
                               NULL, 0, &dg, &path);
    dump(&dg);
    cr_expect_null(c);
    cr_expect_geq(dg.errors, 4);
    cr_expect(has_diag(&dg, path,
                       ":1:9: listen: expected host:port (port 0 to 65535), got "
                       "\"nowhere\""));
    cr_expect(has_diag(&dg, path, ":2:18: trackplan.url: expected an http:// or https:// URL"));
    cr_expect(has_diag(&dg, path, ":3:14: log.level: expected debug, info, warn or error"));
    cr_expect(has_diag(&dg, path, ":4:1: unknown key 'bogus' in the configuration"));
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, an_unset_environment_variable_is_named_at_its_place)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load("trackplan:\n  url: http://h\n  api_key: \"key-${TB_TEST_UNSET}\"\n",
                               NULL, 0, &dg, &path);
    dump(&dg);
    cr_expect_null(c);
    cr_expect(has_diag(&dg, path, ":3:17: environment variable TB_TEST_UNSET is not set"));
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, an_empty_environment_variable_is_an_error_too)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c =
        load("trackplan:\n  url: http://h\n  api_key: ${TB_TEST_EMPTY}\n", NULL, 0, &dg, &path);
    cr_expect_null(c);
    cr_expect(has_diag(&dg, path, ":3:12: environment variable TB_TEST_EMPTY is empty"));
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, secrets_come_from_the_environment_with_defaults_and_escapes)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load("trackplan:\n  url: ${TB_TEST_UNSET:-http://127.0.0.1:9}\n"
                               "  api_key: \"${TB_TEST_TOKEN}\"\n"
                               "vars: {price: \"$${NOT_EXPANDED}\"}\n",
                               NULL, 0, &dg, &path);
    dump(&dg);
    cr_assert_not_null(c);
    cr_expect_str_eq(c->trackplan.url, "http://127.0.0.1:9");
    cr_expect_str_eq(c->trackplan.api_key, "secret-token");
    cr_expect_str_eq(json_string_value(json_object_get(c->vars, "price")), "${NOT_EXPANDED}");
    config_free(c);
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, a_file_secret_is_read_relative_to_the_config_with_its_newline_trimmed)
{
    char *secret = write_file("key.txt", "from-a-file\n");
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c =
        load("trackplan:\n  url: http://h\n  api_key: file:key.txt\n", NULL, 0, &dg, &path);
    dump(&dg);
    cr_assert_not_null(c);
    cr_expect_str_eq(c->trackplan.api_key, "from-a-file");
    config_free(c);
    yamlx_diags_free(&dg);
    free(path);
    free(secret);
}

Test(config, a_missing_secret_file_is_an_error_at_the_value)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load("trackplan:\n  url: http://h\n  api_key: file:/nonexistent/key\n",
                               NULL, 0, &dg, &path);
    cr_expect_null(c);
    cr_expect(has_diag(&dg, path,
                       ":3:12: cannot read secret file /nonexistent/key: No such file "
                       "or directory"));
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, set_overrides_any_key_and_builds_missing_sections)
{
    const char *sets[] = {"listen=127.0.0.1:18080", "trackplan.url=http://127.0.0.1:18081",
                          "store.path=/tmp/x.db",   "rules=/srv/rules",
                          "vars.site_list=[a, b]",  "trackplan.retries.max=7"};
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load(MINIMAL, sets, 6, &dg, &path);
    dump(&dg);
    cr_assert_not_null(c);
    cr_expect_str_eq(c->listen, "127.0.0.1:18080");
    cr_expect_str_eq(c->trackplan.url, "http://127.0.0.1:18081");
    cr_expect_str_eq(c->store.path, "/tmp/x.db");
    cr_expect_str_eq(c->rules, "/srv/rules");
    cr_expect_eq(json_array_size(json_object_get(c->vars, "site_list")), 2);
    cr_expect_eq(c->trackplan.retries_max, 7);
    config_free(c);
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, a_bad_set_names_the_option)
{
    const char *sets[] = {"trackplan.retries.max=many", "listen", "trackplan.url={oops"};
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load(MINIMAL, sets, 3, &dg, &path);
    dump(&dg);
    cr_expect_null(c);
    cr_expect(has_diag(&dg, NULL,
                       "--set trackplan.retries.max: trackplan.retries.max: expected "
                       "an integer, got a string"));
    cr_expect(has_diag(&dg, NULL, "--set listen: expected key.path=value"));
    int found = 0;
    for (size_t i = 0; i < dg.n; i++)
        found |= strncmp(dg.msg[i], "--set trackplan.url: ", 21) == 0;
    cr_expect(found, "a YAML error in a --set value names the option");
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, relative_paths_resolve_against_the_config_folder)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c =
        load(MINIMAL "rules: ../r\ntemplates: t\nstore: {path: data/tb.db}\n", NULL, 0, &dg, &path);
    dump(&dg);
    cr_assert_not_null(c);
    char *want_t = util_asprintf("%s/t", dir);
    char *want_s = util_asprintf("%s/data/tb.db", dir);
    cr_expect_str_eq(c->templates, want_t);
    cr_expect_str_eq(c->store.path, want_s);
    cr_expect(strstr(c->rules, "/..") == NULL, "folded: %s", c->rules);
    free(want_t);
    free(want_s);
    config_free(c);
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, credentials_are_api_key_or_user_and_password_not_both)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c =
        load("trackplan:\n  url: http://h\n  api_key: k\n  user: u\n", NULL, 0, &dg, &path);
    cr_expect_null(c);
    cr_expect(has_diag(&dg, path,
                       ":3:12: trackplan.api_key: use either api_key or user and "
                       "password, not both"));
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, source_problems_point_into_the_source)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load(MINIMAL "sources:\n  am:\n    adapter: alertmanger\n"
                                       "  web:\n    adapter: json\n    auth:\n      bearer: []\n"
                                       "  \"bad name\":\n    adapter: json\n",
                               NULL, 0, &dg, &path);
    dump(&dg);
    cr_expect_null(c);
    cr_expect(has_diag(&dg, path,
                       ":6:14: sources.am.adapter: unknown adapter 'alertmanger' "
                       "(known: alertmanager, grafana, zabbix, json, form, bms, email)"));
    cr_expect(has_diag(&dg, path,
                       ":10:15: sources.web.auth.bearer: must be a non-empty string "
                       "or list"));
    int named = 0;
    for (size_t i = 0; i < dg.n; i++)
        named |= strstr(dg.msg[i], ":11:3: sources.bad name:") != NULL;
    cr_expect(named, "a bad source name is reported at its key");
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, sources_keep_their_auth_and_options_subtrees)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c =
        load(MINIMAL "sources:\n  prom:\n    adapter: alertmanager\n    options: {site_label: b}\n"
                     "    rate_limit: {rate: 600/m}\n    max_body: 2MiB\n",
             NULL, 0, &dg, &path);
    dump(&dg);
    cr_assert_not_null(c);
    const struct tb_source *s = config_source(c, "prom");
    cr_assert_not_null(s);
    cr_expect_str_eq(json_string_value(json_object_get(s->options, "site_label")), "b");
    cr_expect_null(s->auth);
    cr_expect_float_eq(s->rate, 10.0, 1e-9);
    cr_expect_float_eq(s->burst, 10.0, 1e-9);
    cr_expect_eq(s->max_body, 2u * 1024 * 1024);
    config_free(c);
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, durations_and_sizes_parse_with_units)
{
    int64_t ms;
    cr_expect_eq(config_parse_duration("30s", &ms), 0);
    cr_expect_eq(ms, 30000);
    cr_expect_eq(config_parse_duration("1h30m", &ms), 0);
    cr_expect_eq(ms, 5400000);
    cr_expect_eq(config_parse_duration("250ms", &ms), 0);
    cr_expect_eq(ms, 250);
    cr_expect_eq(config_parse_duration("3d", &ms), 0);
    cr_expect_eq(ms, 3 * 86400000LL);
    cr_expect_eq(config_parse_duration("12", &ms), 0);
    cr_expect_eq(ms, 12000);
    cr_expect_eq(config_parse_duration("5 m", &ms), -1);
    cr_expect_eq(config_parse_duration("m5", &ms), -1);
    cr_expect_eq(config_parse_duration("", &ms), -1);
    size_t n;
    cr_expect_eq(config_parse_size("1MiB", &n), 0);
    cr_expect_eq(n, 1048576u);
    cr_expect_eq(config_parse_size("64kB", &n), 0);
    cr_expect_eq(n, 64000u);
    cr_expect_eq(config_parse_size("100", &n), 0);
    cr_expect_eq(n, 100u);
    cr_expect_eq(config_parse_size("1 MiB", &n), -1);
    cr_expect_eq(config_parse_size("-1", &n), -1);
    char out[32];
    config_format_duration(5400000, out);
    cr_expect_str_eq(out, "1h30m");
    config_format_duration(250, out);
    cr_expect_str_eq(out, "250ms");
}

Test(config, an_empty_file_can_be_completed_by_set)
{
    const char *sets[] = {"trackplan.url=http://127.0.0.1:1", "trackplan.api_key=k"};
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load("", sets, 2, &dg, &path);
    dump(&dg);
    cr_assert_not_null(c);
    cr_expect_str_eq(c->trackplan.api_key, "k");
    config_free(c);
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, a_missing_trackplan_section_is_an_error)
{
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load("listen: 127.0.0.1:1\n", NULL, 0, &dg, &path);
    cr_expect_null(c);
    cr_expect(has_diag(&dg, path, ": trackplan: missing (url and credentials are required)"));
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, the_store_takes_a_size_cap_and_a_retention)
{
    const char *sets[] = {"store.max_size=2MiB", "store.retention=30d"};
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load(MINIMAL, sets, 2, &dg, &path);
    dump(&dg);
    cr_assert_not_null(c);
    cr_expect_eq(c->store.max_size, 2u * 1024 * 1024);
    cr_expect_eq(c->store.retention_ms, 30LL * 86400000);
    config_free(c);
    yamlx_diags_free(&dg);
    free(path);

    const char *bad[] = {"store.max_size=1kB", "store.retention=forever"};
    c = load(MINIMAL, bad, 2, &dg, &path);
    cr_expect_null(c);
    int size = 0, ret = 0;
    for (size_t i = 0; i < dg.n; i++) {
        size |= strstr(dg.msg[i], "store.max_size") && strstr(dg.msg[i], "out of range");
        ret |= strstr(dg.msg[i], "store.retention") != NULL;
    }
    cr_expect(size, "a cap below 64 KiB is refused with its range");
    cr_expect(ret, "a retention that is no duration is refused");
    yamlx_diags_free(&dg);
    free(path);
}

Test(config, set_takes_a_null_value)
{
    const char *sets[] = {"vars.nothing=null", "store.max_size=null"};
    yamlx_diags_t dg;
    char *path;
    struct tb_config *c = load(MINIMAL, sets, 2, &dg, &path);
    dump(&dg);
    cr_assert_not_null(c);
    cr_expect(json_is_null(json_object_get(c->vars, "nothing")));
    cr_expect_eq(c->store.max_size, 0, "null keeps the default");
    config_free(c);
    yamlx_diags_free(&dg);
    free(path);
}
