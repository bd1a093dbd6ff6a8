/* cmd_rules: the `check` and `test` subcommands. check validates the configuration, every
 * rule, regex, template and action and prints file:line:col problems; test is the dry run:
 * payloads through adapter, rules, templates and correlation (simulated in memory across the
 * payloads) against a fake TrackplanFM, printing the plans as JSON. Neither touches the
 * network or the store. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/adapter.h"
#include "app.h"
#include "common/buf.h"
#include "common/util.h"
#include "config.h"
#include "correlate.h"
#include "plan.h"
#include "regex.h"
#include "rules.h"

#define CMD_MAX_SETS 256
#define CMD_MAX_HEADERS 256

/* Options shared by check and test. */
struct cmd_common {
    const char *config;
    const char *sets[CMD_MAX_SETS];
    size_t nsets;
};

static int add_set(struct cmd_common *c, const char *arg, const char *prog)
{
    if (c->nsets >= CMD_MAX_SETS) {
        fprintf(stderr, "trackbridge %s: too many --set options\n", prog);
        return -1;
    }
    c->sets[c->nsets++] = arg;
    return 0;
}

/* Loads config and rules; problems (and warnings) go to diags. NULL rules on failure. */
static rules_t *load_all(const struct cmd_common *c, struct tb_config **cfg,
                         yamlx_diags_t *diags)
{
    *cfg = config_load(c->config, c->sets, c->nsets, diags);
    if (!*cfg)
        return NULL;
    struct rx_limits lim = {(*cfg)->limits.regex_match, (*cfg)->limits.regex_depth,
                            (uint32_t)((*cfg)->limits.regex_heap / 1024),
                            (*cfg)->limits.regex_jit_stack / 1024};
    rx_set_limits(&lim);
    struct rules_opts o = {(*cfg)->rules,
                           (*cfg)->templates,
                           (*cfg)->vars,
                           (*cfg)->sources,
                           (*cfg)->nsources,
                           {(*cfg)->correlation.reopen_window_ms,
                            (*cfg)->correlation.min_interval_ms,
                            (*cfg)->correlation.flap_window_ms},
                           (*cfg)->limits.template_output};
    return rules_load(&o, diags);
}

static void check_usage(FILE *f)
{
    fprintf(f, "usage: trackbridge check [-c FILE] [--set key.path=value]...\n"
               "\n"
               "Validates the configuration, every rule file, regex, template and action, and\n"
               "prints each problem as file:line:col: message. Exit 0 when valid, 1 otherwise.\n"
               "  -c, --config FILE   configuration file (default " CONFIG_DEFAULT_PATH ")\n"
               "      --set K=V       override a configuration key (value parsed as YAML)\n");
}

int cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"set", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct cmd_common c = {config_default_path(), {0}, 0};
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            c.config = optarg;
            break;
        case 's':
            if (add_set(&c, optarg, "check") < 0)
                return 2;
            break;
        case 'h':
            check_usage(stdout);
            return 0;
        default:
            check_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "trackbridge check: unexpected argument '%s'\n", argv[optind]);
        check_usage(stderr);
        return 2;
    }
    yamlx_diags_t diags;
    yamlx_diags_init(&diags);
    struct tb_config *cfg = NULL;
    rules_t *rules = load_all(&c, &cfg, &diags);
    yamlx_diags_print(&diags, stdout);
    int rc = 1;
    if (rules && diags.errors == 0) {
        printf("%s: ok: %zu sources, %zu rules, %zu templates%s\n", c.config, cfg->nsources,
               rules_count(rules), rules_template_count(rules),
               diags.warnings ? " (with warnings)" : "");
        rc = 0;
    } else {
        printf("%s: %zu problem%s found\n", c.config, diags.errors, diags.errors == 1 ? "" : "s");
    }
    rules_unref(rules);
    config_free(cfg);
    yamlx_diags_free(&diags);
    return rc;
}

/* ---- test --------------------------------------------------------------------------------- */

static void test_usage(FILE *f)
{
    fprintf(f,
            "usage: trackbridge test [-c FILE] --source NAME [--header 'K: V']... [--set K=V]...\n"
            "                        [--content-type TYPE] [--time ISO8601] PAYLOAD... | -\n"
            "\n"
            "Dry run: each payload (a file, or - for standard input) goes through the source's\n"
            "adapter, the rules, the templates and correlation (kept in memory across the\n"
            "payloads) against a fake TrackplanFM; prints the plans as JSON. Nothing is sent\n"
            "and nothing is written. Exit 0 when every payload was processed, 1 when one was\n"
            "rejected (reason on stderr), 2 on usage errors.\n"
            "  -c, --config FILE       configuration (default " CONFIG_DEFAULT_PATH ")\n"
            "      --source NAME       the source of the payloads after it (/hooks/NAME);\n"
            "                          give it again to switch sources between payloads\n"
            "      --header 'K: V'     a request header (repeatable)\n"
            "      --content-type T    default: message/rfc822 for email, else application/json\n"
            "      --time ISO8601      when the payloads count as received (default now)\n"
            "      --set K=V           override a configuration key\n");
}

/* A deferred plan (resolve held by flap_window) waiting for its time in the simulation. */
struct pending {
    plan_t *plan;
    json_t *entry;   /* the output entry it belongs to (borrowed from the output) */
};

struct dry {
    rules_t *rules;
    corr_mem_t *mem;
    struct plan_corr_store cs;
    struct plan_fake fake;
    struct plan_backend be;
    json_t *events;          /* the output array */
    struct pending *pend;
    size_t npend;
};

static void note_append(json_t *entry, const char *note)
{
    if (!note || !*note)
        return;
    const char *old = json_string_value(json_object_get(entry, "note"));
    char *n = old && *old ? util_asprintf("%s; %s", old, note) : util_strdup(note);
    if (n)
        json_object_set_new(entry, "note", json_string(n));
    free(n);
}

/* Turns plan_run's trace into the printed actions. */
static void trace_to_actions(json_t *trace, json_t *actions)
{
    size_t i;
    json_t *t;
    json_array_foreach(trace, i, t) {
        json_t *a = json_object();
        static const char *const keep[] = {"op", "method", "path", "query", "body"};
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
            json_t *v = json_object_get(t, keep[k]);
            if (v)
                json_object_set(a, keep[k], v);
        }
        const char *skipped = json_string_value(json_object_get(t, "skipped"));
        if (skipped)
            json_object_set_new(a, "note", json_string(skipped));
        else if (json_object_get(t, "lookup"))
            json_object_set_new(a, "note",
                                json_string("dry run: look-up not performed, nothing found"));
        json_array_append_new(actions, a);
    }
}

static void dry_run_plan(struct dry *d, plan_t *p, json_t *entry, int64_t now)
{
    json_t *trace = json_array();
    char *err = NULL;
    enum plan_outcome o = plan_run(p, &d->be, &d->cs, now, trace, &err);
    trace_to_actions(trace, json_object_get(entry, "actions"));
    json_decref(trace);
    if (o == PLAN_CANCELLED)
        note_append(entry, "the held resolve was cancelled by a later firing");
    else if (o != PLAN_DONE) {
        char *msg = util_asprintf("plan stopped: %s", err ? err : "failed");
        note_append(entry, msg);
        free(msg);
    }
    free(err);
}

/* Runs held plans whose time has come (all of them when upto < 0). */
static void run_pending(struct dry *d, int64_t upto)
{
    size_t kept = 0;
    for (size_t i = 0; i < d->npend; i++) {
        struct pending *pd = &d->pend[i];
        int64_t due = plan_not_before(pd->plan);
        if (upto >= 0 && due > upto) {
            d->pend[kept++] = *pd;
            continue;
        }
        dry_run_plan(d, pd->plan, pd->entry, due);
        plan_free(pd->plan);
    }
    d->npend = kept;
}

static int64_t event_time(json_t *ev, int64_t fallback)
{
    int64_t ms;
    const char *t = json_string_value(json_object_get(ev, "time"));
    if (t && util_parse_iso8601(t, &ms) == 0)
        return ms;
    return fallback;
}

/* One printed entry: an event as one rule saw it (rule NULL when none matched). */
static json_t *new_entry(json_t *ev, const plan_t *p)
{
    json_t *src = json_object_get(ev, "source");
    const char *st = p ? plan_status(p) : json_string_value(json_object_get(ev, "status"));
    const char *key = p && plan_key(p) ? plan_key(p)
                                       : json_string_value(json_object_get(ev, "key"));
    return json_pack("{s:O?, s:s?, s:s?, s:s?, s:s?, s:O?, s:[], s:s}", "source", src, "status",
                     st, "key", key, "rule", p ? plan_rule(p) : NULL, "phase",
                     p ? plan_phase(p) : NULL, "captures", p ? plan_captures(p) : NULL,
                     "actions", "note", "");
}

static void dry_event(struct dry *d, json_t *ev, json_t *headers, const char *source,
                      int64_t received)
{
    int64_t now = event_time(ev, received);
    run_pending(d, now);
    struct rules_input in = {ev, headers, source};
    plan_t **plans = NULL;
    size_t n = 0;
    char *err = NULL;
    if (corr_process(d->rules, &in, &d->cs, now, &plans, &n, &err) < 0) {
        json_t *e = new_entry(ev, NULL);
        note_append(e, err);
        json_array_append_new(d->events, e);
        free(err);
        return;
    }
    if (n == 0) {
        json_t *e = new_entry(ev, NULL);
        json_object_set_new(e, "rule", json_null());
        json_object_set_new(e, "phase", json_null());
        json_object_set_new(e, "captures", json_object());
        note_append(e, "no rule matched");
        json_array_append_new(d->events, e);
    }
    for (size_t i = 0; i < n; i++) {
        plan_t *p = plans[i];
        json_t *e = new_entry(ev, p);
        note_append(e, plan_note(p));
        json_array_append_new(d->events, e);
        if (plan_not_before(p) > now) {
            struct pending *np = realloc(d->pend, (d->npend + 1) * sizeof *np);
            if (np) {
                d->pend = np;
                d->pend[d->npend].plan = p;
                d->pend[d->npend].entry = e;
                d->npend++;
                continue;
            }
        }
        dry_run_plan(d, p, e, now);
        plan_free(p);
    }
    free(plans);
}

static int add_header(json_t *headers, const char *arg)
{
    const char *colon = strchr(arg, ':');
    if (!colon || colon == arg || json_object_size(headers) >= CMD_MAX_HEADERS)
        return -1;
    char *name = util_strndup(arg, (size_t)(colon - arg));
    if (!name)
        return -1;
    for (char *p = name; *p; p++) {
        if (*p == ' ' || *p == '\t') {
            free(name);
            return -1;
        }
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    }
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    int rc = json_object_set_new(headers, name, json_string(v));
    free(name);
    return rc;
}

static char *read_stdin(size_t max, size_t *len)
{
    buf_t b;
    buf_init(&b, max);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (buf_append(&b, chunk, n) < 0) {
            buf_free(&b);
            *len = (size_t)-1;
            return NULL;
        }
    }
    *len = b.len;
    char *s = buf_steal(&b);
    buf_free(&b);
    return s;
}

/* One payload to run, with the source and content type in force where it was named. */
struct payload {
    const char *path;
    const char *source;
    const char *ctype;
};

/* The value of option name at argv[*i] ("--name value" or "--name=value"), or NULL when
 * argv[*i] is another option. Advances *i past a separate value. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int cmd_test(int argc, char **argv)
{
    struct cmd_common c = {config_default_path(), {0}, 0};
    const char *source = NULL, *ctype = NULL, *when = NULL;
    json_t *headers = json_object();
    int rc = 2;
    struct tb_config *cfg = NULL;
    struct dry d;
    memset(&d, 0, sizeof d);
    yamlx_diags_t diags;
    yamlx_diags_init(&diags);
    struct payload *pl = calloc((size_t)(argc > 0 ? argc : 1), sizeof *pl);
    size_t npl = 0;
    if (!pl || !headers)
        goto done;
    /* Options apply in order: --source and --content-type hold for the payloads after them,
     * so one run can mix sources (a BMS webhook, then the head-end's mail). */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            test_usage(stdout);
            rc = 0;
            goto done;
        } else if (strcmp(a, "-c") == 0 && i + 1 < argc) {
            c.config = argv[++i];
        } else if ((v = opt_value(argc, argv, &i, "--config", &missing))) {
            c.config = v;
        } else if ((v = opt_value(argc, argv, &i, "--set", &missing))) {
            if (add_set(&c, v, "test") < 0)
                goto done;
        } else if ((v = opt_value(argc, argv, &i, "--source", &missing))) {
            source = v;
        } else if ((v = opt_value(argc, argv, &i, "--content-type", &missing))) {
            ctype = v;
        } else if ((v = opt_value(argc, argv, &i, "--time", &missing))) {
            when = v;
        } else if ((v = opt_value(argc, argv, &i, "--header", &missing))) {
            if (add_header(headers, v) < 0) {
                fprintf(stderr, "trackbridge test: --header wants 'Name: value', got '%s'\n", v);
                goto done;
            }
        } else if (missing || (a[0] == '-' && a[1] != '\0')) {
            fprintf(stderr, "trackbridge test: %s '%s'\n",
                    missing ? "missing value for" : "unknown option", a);
            test_usage(stderr);
            goto done;
        } else {
            if (!source) {
                fprintf(stderr, "trackbridge test: --source is required before a payload\n");
                test_usage(stderr);
                goto done;
            }
            pl[npl].path = a;
            pl[npl].source = source;
            pl[npl].ctype = ctype;
            npl++;
        }
    }
    if (npl == 0) {
        fprintf(stderr, "trackbridge test: %s\n",
                !source ? "--source is required" : "give at least one payload file (or -)");
        test_usage(stderr);
        goto done;
    }
    int64_t received = util_now_ms();
    if (when && util_parse_iso8601(when, &received) < 0) {
        fprintf(stderr, "trackbridge test: --time wants an ISO 8601 time, got '%s'\n", when);
        goto done;
    }
    d.rules = load_all(&c, &cfg, &diags);
    if (!d.rules) {
        yamlx_diags_print(&diags, stderr);
        rc = 1;
        goto done;
    }
    for (size_t i = 0; i < npl; i++) {
        if (config_source(cfg, pl[i].source))
            continue;
        fprintf(stderr, "trackbridge test: unknown source '%s' (configured:", pl[i].source);
        for (size_t k = 0; k < cfg->nsources; k++)
            fprintf(stderr, " %s", cfg->sources[k].name);
        fprintf(stderr, ")\n");
        goto done;
    }
    d.mem = corr_mem_new();
    d.cs = corr_mem_store(d.mem);
    d.be = plan_fake_backend(&d.fake);
    d.events = json_array();
    struct adapter_limits alim = {(size_t)cfg->limits.json_depth,
                                  (size_t)cfg->limits.events_per_request};
    rc = 0;
    for (size_t i = 0; i < npl; i++) {
        const char *name = pl[i].path;
        const struct tb_source *src = config_source(cfg, pl[i].source);
        const char *ct = pl[i].ctype ? pl[i].ctype
                         : strcmp(src->adapter, "email") == 0 ? "message/rfc822"
                                                              : "application/json";
        size_t max_body = src->max_body ? src->max_body : cfg->limits.body;
        size_t len = 0;
        errno = 0;
        char *body = strcmp(name, "-") == 0 ? read_stdin(max_body, &len)
                                             : util_read_file(name, max_body, &len);
        if (!body) {
            fprintf(stderr, "trackbridge test: %s: rejected: %s\n", name,
                    len == (size_t)-1 || errno == EFBIG ? "payload too large"
                                                        : strerror(errno));
            rc = 1;
            continue;
        }
        char at[32];
        util_iso8601(received, at);
        struct adapter_input in = {body, len, ct, headers, NULL, src->name, at, src->options, 0};
        json_t *events = NULL;
        char *err = NULL;
        if (adapter_run(src->adapter, &in, &alim, &events, &err) != ADAPTER_OK) {
            fprintf(stderr, "trackbridge test: %s: rejected: %s\n", name, err ? err : "invalid");
            free(err);
            free(body);
            rc = 1;
            continue;
        }
        size_t k;
        json_t *ev;
        json_array_foreach(events, k, ev)
            dry_event(&d, ev, headers, src->name, received);
        json_decref(events);
        free(body);
    }
    run_pending(&d, -1);
    json_t *out = json_pack("{s:O}", "events", d.events);
    char *text = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
    if (text)
        printf("%s\n", text);
    free(text);
    json_decref(out);
done:
    for (size_t i = 0; i < d.npend; i++)
        plan_free(d.pend[i].plan);
    free(d.pend);
    free(pl);
    json_decref(d.events);
    corr_mem_free(d.mem);
    rules_unref(d.rules);
    config_free(cfg);
    json_decref(headers);
    yamlx_diags_free(&diags);
    return rc;
}
