/* cmd_api: the `trackbridge api` and `trackbridge ping` subcommands — one TrackplanFM call
 * (an operation by name, or METHOD PATH) printed as JSON, and a reachability and credentials
 * check. Both use the blocking client; option parsing fills a struct tp_options in one
 * function (api_parse) so that a configuration file can pre-fill the same struct. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "config.h"
#include "trackplan/api.h"
#include "trackplan/client.h"

#define API_MAX_QUERY 32
#define API_MAX_DATA (16u << 20)
#define API_DEFAULT_PAGE_SIZE "50"
#define API_ALL_PAGE_SIZE 100
#define API_ALL_MAX_ITEMS 10000

/* Everything the command line says. Strings point into argv or the environment, or into
 * the owned copies freed by api_args_free. */
struct api_args {
    struct tp_options opts;
    int ping;                  /* parsing for `ping`: no request arguments */
    int verbose;
    int help;
    int retries_set;
    const char *pos[3];
    int npos;
    struct tp_kv query[API_MAX_QUERY + 4];
    size_t nquery;
    char *owned[API_MAX_QUERY + 8]; /* split --query copies and --user copies */
    size_t nowned;
    const char *data;
    const char *filter;
    const char *order_by;
    int all;
    long max_items;
};

static const char api_conn_help[] =
    "connection options (environment: TRACKPLAN_URL, TRACKPLAN_API_KEY, TRACKPLAN_USER,\n"
    "TRACKPLAN_PASSWORD):\n"
    "  --url URL               TrackplanFM base URL (https://server)\n"
    "  --api-key KEY           authenticate with an API key\n"
    "  --user NAME[:PASSWORD]  authenticate with a JWT login (password may come from\n"
    "                          TRACKPLAN_PASSWORD)\n"
    "  --api-key-header NAME   header carrying the API key (default X-API-Key)\n"
    "  --ca-file FILE          CA bundle to verify the server's certificate\n"
    "  --insecure              do not verify the server's certificate\n"
    "  --connect-timeout S     seconds to connect (default 10)\n"
    "  --timeout S             seconds per attempt (default 30)\n"
    "  --retries N             attempts in all for temporary failures\n"
    "  -v, --verbose           show request and response lines and headers on stderr\n"
    "                          (credentials masked)\n"
    "  -h, --help              this help\n";

static void api_usage(FILE *f)
{
    fprintf(f,
            "usage: trackbridge api [OPTIONS] METHOD PATH\n"
            "       trackbridge api [OPTIONS] OPERATION [GUID]\n\n"
            "Performs one TrackplanFM API call, with retries, and prints the response JSON.\n"
            "Exit status: 0 on a 2xx answer, 1 on an HTTP or transport error, 2 on a usage\n"
            "error.\n\n"
            "request options:\n"
            "  --query KEY=VALUE       add a query parameter (repeatable)\n"
            "  --filter EXPR           the filter parameter (Gridify: name=*pump,siteId==3)\n"
            "  --order-by EXPR         the orderBy parameter (name desc)\n"
            "  --data JSON|@FILE|@-    the request body (JSON text, a file, or stdin)\n"
            "  --all                   list operations: walk every page, print all items\n"
            "  --max-items N           with --all: stop after N items (default %d)\n"
            "  --retry-unsafe          also retry a create whose outcome is unknown (may\n"
            "                          create it twice)\n\n%s\noperations:\n",
            API_ALL_MAX_ITEMS, api_conn_help);
    for (int i = 0; i < TP_OP_COUNT; i++) {
        const struct tp_op *op = tp_op_get((enum tp_op_id)i);
        fprintf(f, "  %-20s %-6s %-30s %s\n", op->name, op->method, op->path, op->summary);
    }
    fprintf(f, "\nexamples:\n"
               "  trackbridge api get_job 3f2b...-...\n"
               "  trackbridge api list_jobs --query pageSize=10 --filter 'jobDetails=*pump'\n"
               "  trackbridge api create_job --data '{\"jobDetails\": \"Leak\", \"siteId\": 3}'\n"
               "  trackbridge api GET '/api/sites?page=1&pageSize=5'\n");
}

static void ping_usage(FILE *f)
{
    fprintf(f,
            "usage: trackbridge ping [OPTIONS]\n\n"
            "Checks that TrackplanFM is reachable and accepts the credentials: logs in when a\n"
            "user is given, then lists one site. Prints \"ok: URL reachable, credentials\n"
            "accepted (N ms)\" and exits 0, or prints the reason and exits 1 (2: usage).\n\n%s",
            api_conn_help);
}

static void api_args_free(struct api_args *a)
{
    for (size_t i = 0; i < a->nowned; i++) {
        explicit_bzero(a->owned[i], strlen(a->owned[i]));
        free(a->owned[i]);
    }
    a->nowned = 0;
}

/* Keeps s for the life of a; NULL on OOM. */
static char *api_keep(struct api_args *a, const char *s)
{
    if (a->nowned >= sizeof a->owned / sizeof a->owned[0])
        return NULL;
    char *c = strdup(s);
    if (c)
        a->owned[a->nowned++] = c;
    return c;
}

/* -c FILE and --set k=v: the TrackplanFM section of a configuration fills the options first,
 * then the environment and the command line override it. The options are removed from argv
 * (argc updated). Returns the loaded configuration (it owns the strings the options borrow;
 * config_free it at the end), NULL when none was asked for; *bad is set when the file does
 * not load (the problems printed as file:line:col). */
static struct tb_config *api_config(int *argc, char **argv, struct tp_options *o, int *bad)
{
    const char *path = NULL;
    const char **sets = calloc((size_t)*argc + 1, sizeof *sets);
    size_t nsets = 0;
    int out = 1;
    *bad = 0;
    if (!sets) {
        *bad = 1;
        return NULL;
    }
    for (int i = 1; i < *argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < *argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--set") == 0 && i + 1 < *argc)
            sets[nsets++] = argv[++i];
        else
            argv[out++] = argv[i];
    }
    argv[out] = NULL;
    *argc = out;
    struct tb_config *cfg = NULL;
    if (path) {
        yamlx_diags_t diags;
        yamlx_diags_init(&diags);
        cfg = config_load(path, sets, nsets, &diags);
        yamlx_diags_print(&diags, stderr);
        yamlx_diags_free(&diags);
        if (cfg)
            config_tp_options(cfg, o);
        else
            *bad = 1;
    }
    free(sets);
    return cfg;
}

/* Fills the credentials from the environment; the command line may override them. */
static void api_apply_env(struct tp_options *o)
{
    const char *v;
    if ((v = getenv("TRACKPLAN_URL")) && *v)
        o->url = v;
    if ((v = getenv("TRACKPLAN_API_KEY")) && *v)
        o->api_key = v;
    if ((v = getenv("TRACKPLAN_USER")) && *v)
        o->user = v;
    if ((v = getenv("TRACKPLAN_PASSWORD")) && *v)
        o->password = v;
}

/* Parses seconds (integer or decimal) into milliseconds within 1 ms .. 1 h. */
static int api_seconds(const char *s, long *ms)
{
    double d;
    if (util_parse_double(s, &d) < 0 || d < 0.001 || d > 3600)
        return -1;
    *ms = (long)(d * 1000 + 0.5);
    return 0;
}

/* Parses argv (after the subcommand name) into a. Options already set in a (by the
 * environment or a configuration) are overridden only by what the command line gives.
 * Returns 0, or -1 with a message in err (a usage error). */
static int api_parse(int argc, char **argv, struct api_args *a, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        char name[32];
        if (strcmp(arg, "--") == 0) {
            for (i++; i < argc; i++) {
                if (a->npos >= 3)
                    goto too_many;
                a->pos[a->npos++] = argv[i];
            }
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            if (a->npos >= 3)
                goto too_many;
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            a->help = 1;
            continue;
        }
        if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            a->verbose = 1;
            continue;
        }
        if (strcmp(arg, "--insecure") == 0) {
            a->opts.insecure = 1;
            continue;
        }
        if (!a->ping && strcmp(arg, "--all") == 0) {
            a->all = 1;
            continue;
        }
        if (!a->ping && strcmp(arg, "--retry-unsafe") == 0) {
            a->opts.retry_unsafe = 1;
            continue;
        }
        /* options with a value: --name VALUE or --name=VALUE */
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nlen >= sizeof name) {
            snprintf(err, errlen, "unknown option '%s'", arg);
            return -1;
        }
        memcpy(name, arg, nlen);
        name[nlen] = '\0';
        static const char *const with_value[] = {
            "--url", "--api-key", "--user", "--api-key-header", "--ca-file", "--timeout",
            "--connect-timeout", "--retries", "--query", "--filter", "--order-by", "--data",
            "--max-items", NULL};
        int known = 0;
        for (int k = 0; with_value[k]; k++)
            known |= strcmp(name, with_value[k]) == 0;
        int request_opt = strcmp(name, "--query") == 0 || strcmp(name, "--filter") == 0 ||
                          strcmp(name, "--order-by") == 0 || strcmp(name, "--data") == 0 ||
                          strcmp(name, "--max-items") == 0;
        if (!known || (a->ping && request_opt)) {
            snprintf(err, errlen, "unknown option '%s'", name);
            return -1;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            snprintf(err, errlen, "option '%s' needs a value", name);
            return -1;
        }
        if (strcmp(name, "--url") == 0) {
            a->opts.url = val;
        } else if (strcmp(name, "--api-key") == 0) {
            a->opts.api_key = val;
            a->opts.user = a->opts.password = NULL;
        } else if (strcmp(name, "--user") == 0) {
            char *u = api_keep(a, val);
            if (!u)
                goto oom;
            char *colon = strchr(u, ':');
            if (colon) {
                *colon = '\0';
                a->opts.password = colon + 1;
            }
            a->opts.user = u;
            a->opts.api_key = NULL;
        } else if (strcmp(name, "--api-key-header") == 0) {
            a->opts.api_key_header = val;
        } else if (strcmp(name, "--ca-file") == 0) {
            a->opts.ca_file = val;
        } else if (strcmp(name, "--timeout") == 0 || strcmp(name, "--connect-timeout") == 0) {
            long ms;
            if (api_seconds(val, &ms) < 0) {
                snprintf(err, errlen, "%s wants seconds between 0.001 and 3600", name);
                return -1;
            }
            if (strcmp(name, "--timeout") == 0)
                a->opts.timeout_ms = ms;
            else
                a->opts.connect_timeout_ms = ms;
        } else if (strcmp(name, "--retries") == 0) {
            long n;
            if (util_parse_long(val, 1, 100, &n) < 0) {
                snprintf(err, errlen, "--retries wants a number of attempts from 1 to 100");
                return -1;
            }
            a->opts.retry.max_attempts = (int)n;
            a->retries_set = 1;
        } else if (strcmp(name, "--query") == 0) {
            const char *e = strchr(val, '=');
            if (!e || e == val) {
                snprintf(err, errlen, "--query wants KEY=VALUE, not '%s'", val);
                return -1;
            }
            if (a->nquery >= API_MAX_QUERY) {
                snprintf(err, errlen, "at most %d --query options", API_MAX_QUERY);
                return -1;
            }
            char *kv = api_keep(a, val);
            if (!kv)
                goto oom;
            kv[e - val] = '\0';
            a->query[a->nquery++] = (struct tp_kv){kv, kv + (e - val) + 1};
        } else if (strcmp(name, "--filter") == 0) {
            a->filter = val;
        } else if (strcmp(name, "--order-by") == 0) {
            a->order_by = val;
        } else if (strcmp(name, "--data") == 0) {
            a->data = val;
        } else if (strcmp(name, "--max-items") == 0) {
            if (util_parse_long(val, 1, 10000000, &a->max_items) < 0) {
                snprintf(err, errlen, "--max-items wants a number from 1 to 10000000");
                return -1;
            }
        }
    }
    return 0;
too_many:
    snprintf(err, errlen, "too many arguments");
    return -1;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* Reads --data: JSON text, @FILE or @- (stdin). Returns a new reference, or NULL with a
 * message in err. */
static json_t *api_load_data(const char *data, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *v = NULL;
    char *text = NULL;
    size_t len = 0;
    if (data[0] == '@') {
        /* "@-" is standard input, read with the same bound as a file */
        text = util_read_file(strcmp(data, "@-") == 0 ? "/dev/stdin" : data + 1, API_MAX_DATA,
                              &len);
        if (!text) {
            snprintf(err, errlen, "--data %s: %s", data, strerror(errno));
            return NULL;
        }
        v = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    } else {
        v = json_loads(data, JSON_DECODE_ANY, &jerr);
    }
    free(text);
    if (!v)
        snprintf(err, errlen, "--data is not valid JSON (line %d, column %d): %s", jerr.line,
                 jerr.column, jerr.text);
    return v;
}

static int api_is_method(const char *s)
{
    static const char *const m[] = {"GET", "POST", "PUT", "DELETE", "PATCH", NULL};
    for (int i = 0; m[i]; i++)
        if (strcasecmp(s, m[i]) == 0)
            return 1;
    return 0;
}

static int api_has_query(const struct api_args *a, const char *key)
{
    for (size_t i = 0; i < a->nquery; i++)
        if (strcasecmp(a->query[i].key, key) == 0)
            return 1;
    return 0;
}

/* Prints the failure of r on stderr, prefixed with who. */
static void api_print_error(const char *who, const struct tp_result *r)
{
    buf_t b;
    buf_init(&b, 64 * 1024);
    tp_error_format(&r->error, &b);
    fprintf(stderr, "%s: %s", who, b.data ? b.data : "error\n");
    if (r->outcome == TP_UNKNOWN)
        fprintf(stderr, "%s: the request may have been processed; check before repeating it\n",
                who);
    else if (r->outcome == TP_TRYLATER && r->retry_after_ms >= 0)
        fprintf(stderr, "%s: the server asks to retry after %lld s\n", who,
                (long long)((r->retry_after_ms + 999) / 1000));
    buf_free(&b);
}

/* Sets the options both commands share: logging, tracing. */
static void api_prepare(struct api_args *a)
{
    log_set_level(a->verbose ? LOG_LVL_INFO : LOG_LVL_WARN);
    if (a->verbose)
        a->opts.trace = stderr;
}

/* The client for a, or NULL after printing why (a usage error). */
static struct tp_client *api_client(const char *who, struct api_args *a)
{
    char err[160];
    if (tp_options_check(&a->opts, err, sizeof err) < 0) {
        if (!a->opts.url)
            snprintf(err, sizeof err, "no TrackplanFM URL: give --url or set TRACKPLAN_URL");
        fprintf(stderr, "%s: %s\n", who, err);
        return NULL;
    }
    struct tp_client *c = tp_client_new(&a->opts, NULL);
    if (!c)
        fprintf(stderr, "%s: cannot create the client: %s\n", who, strerror(errno));
    return c;
}

/* Fills a from the configuration (-c, --set), then the environment, then the command line,
 * each overriding the one before. Returns 0 to go on, or -1 with *rc set when the command
 * ends here: 1 for a configuration that does not load, 2 for a usage error, 0 after --help
 * (usage printed). *cfg owns the strings the options borrow (config_free it). */
static int api_setup(int argc, char **argv, struct api_args *a, struct tb_config **cfg,
                     const char *who, void (*usage)(FILE *f), int *rc)
{
    char err[256];
    int bad = 0;
    tp_options_init(&a->opts);
    *cfg = api_config(&argc, argv, &a->opts, &bad);
    if (bad) {
        *rc = 1;
        return -1;
    }
    api_apply_env(&a->opts);
    if (api_parse(argc, argv, a, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", who, err, who);
        *rc = 2;
        return -1;
    }
    if (a->help) {
        usage(stdout);
        *rc = 0;
        return -1;
    }
    return 0;
}

int cmd_api(int argc, char **argv)
{
    const char *who = "trackbridge api";
    struct api_args a = {0};
    char err[256];
    int rc = 2;
    json_t *body = NULL;
    struct tp_client *c = NULL;
    struct tp_result *res = NULL;
    struct tb_config *cfg = NULL;
    if (api_setup(argc, argv, &a, &cfg, who, api_usage, &rc) < 0)
        goto out;
    if (a.npos == 0) {
        fprintf(stderr, "%s: give METHOD PATH or an operation\n"
                        "Run 'trackbridge api --help' for usage.\n", who);
        goto out;
    }
    const struct tp_op *op = NULL;
    const char *method = NULL, *path = NULL, *id = NULL;
    if (api_is_method(a.pos[0])) {
        if (a.npos != 2 || a.pos[1][0] != '/') {
            fprintf(stderr, "%s: METHOD wants one PATH starting with '/'\n", who);
            goto out;
        }
        method = a.pos[0];
        path = a.pos[1];
        if (a.all) {
            fprintf(stderr, "%s: --all works with list operations, not METHOD PATH\n", who);
            goto out;
        }
    } else {
        op = tp_op_find(a.pos[0]);
        if (!op) {
            fprintf(stderr, "%s: unknown operation '%s' (see 'trackbridge api --help')\n", who,
                    a.pos[0]);
            goto out;
        }
        if (a.npos != (op->has_id ? 2 : 1)) {
            fprintf(stderr, "%s: %s %s\n", who, op->name,
                    op->has_id ? "wants one GUID argument" : "takes no argument");
            goto out;
        }
        id = op->has_id ? a.pos[1] : NULL;
        if (op->has_body && !a.data && op->id != TP_OP_LOGIN) {
            fprintf(stderr, "%s: %s needs --data JSON\n", who, op->name);
            goto out;
        }
        if (!op->has_body && a.data) {
            fprintf(stderr, "%s: %s takes no --data\n", who, op->name);
            goto out;
        }
        if (a.all && !op->paged) {
            fprintf(stderr, "%s: --all works with list operations only\n", who);
            goto out;
        }
    }
    if (a.data && !(body = api_load_data(a.data, err, sizeof err))) {
        fprintf(stderr, "%s: %s\n", who, err);
        goto out;
    }
    if (a.filter)
        a.query[a.nquery++] = (struct tp_kv){"filter", a.filter};
    if (a.order_by)
        a.query[a.nquery++] = (struct tp_kv){"orderBy", a.order_by};
    if (a.all && (api_has_query(&a, "page") || api_has_query(&a, "pageSize"))) {
        fprintf(stderr, "%s: --all chooses the pages itself: drop page / pageSize\n", who);
        goto out;
    }
    if (op && op->paged && !a.all) {
        if (!api_has_query(&a, "page"))
            a.query[a.nquery++] = (struct tp_kv){"page", "1"};
        if (!api_has_query(&a, "pageSize"))
            a.query[a.nquery++] = (struct tp_kv){"pageSize", API_DEFAULT_PAGE_SIZE};
    }
    api_prepare(&a);
    c = api_client(who, &a);
    if (!c)
        goto out;
    struct tp_call call = {.id = id, .query = a.query, .nquery = a.nquery, .body = body};
    int sub;
    if (method)
        sub = tp_client_call_raw(c, method, path, &call, &res);
    else if (a.all)
        sub = tp_client_call_all(c, op->id, &call, API_ALL_PAGE_SIZE,
                                 a.max_items > 0 ? (size_t)a.max_items : API_ALL_MAX_ITEMS, &res);
    else
        sub = tp_client_call(c, op->id, &call, &res);
    if (sub < 0) {
        fprintf(stderr, "%s: the call could not be made: %s\n", who,
                errno == EINVAL ? "invalid arguments (a login needs --user or --data)"
                                : strerror(errno));
        rc = errno == EINVAL ? 2 : 1;
        goto out;
    }
    if (res->outcome != TP_OK) {
        api_print_error(who, res);
        rc = 1;
        goto out;
    }
    if (res->body) {
        char *text = json_dumps(res->body, JSON_INDENT(2) | JSON_ENCODE_ANY);
        if (!text) {
            fprintf(stderr, "%s: out of memory printing the answer\n", who);
            rc = 1;
            goto out;
        }
        printf("%s\n", text);
        free(text);
    }
    if (res->truncated)
        fprintf(stderr, "%s: stopped after %ld items (--max-items)\n", who,
                a.max_items > 0 ? a.max_items : (long)API_ALL_MAX_ITEMS);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    tp_result_free(res);
    tp_client_free(c);
    json_decref(body);
    api_args_free(&a);
    config_free(cfg);
    return rc;
}

/* Appends why a ping failed: unreachable, TLS, timeout, 401, 403... */
static void ping_reason(const struct tp_result *r, const char *url, buf_t *out)
{
    const struct tp_error *e = &r->error;
    const char *m = e->message ? e->message : "";
    if (e->kind == TP_ERR_TRANSPORT) {
        switch (e->curl_code) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
            buf_printf(out, "unreachable: %s", m);
            break;
        case CURLE_OPERATION_TIMEDOUT:
            buf_printf(out, "timeout: %s", m);
            break;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            buf_printf(out, "TLS: %s", m);
            break;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
            buf_printf(out, "connection failed: %s", m);
            break;
        default:
            buf_printf(out, "transport error: %s", m);
            break;
        }
        return;
    }
    if (e->kind == TP_ERR_PROTOCOL && !e->status) {
        buf_printf(out, "unexpected answer: %s", m);
        return;
    }
    int login = e->kind == TP_ERR_AUTH || (r->op && r->op->id == TP_OP_LOGIN);
    const char *what = login ? "login " : "";
    const char *detail = e->detail ? e->detail : e->title ? e->title : "";
    switch (e->status) {
    case 401:
        buf_printf(out, "%scredentials rejected (401)%s%s", what, *detail ? ": " : "", detail);
        break;
    case 403:
        buf_printf(out, "%sforbidden (403)%s%s", what, *detail ? ": " : "", detail);
        break;
    case 404:
        buf_printf(out, "not found (404): is %s the TrackplanFM base URL?", url);
        break;
    case 429:
        buf_printf(out, "rate limited (429)%s%s", *detail ? ": " : "", detail);
        break;
    default:
        if (e->status >= 500)
            buf_printf(out, "server error (%ld)%s%s", e->status, *detail ? ": " : "", detail);
        else if (e->status)
            buf_printf(out, "HTTP %ld%s%s", e->status, *detail ? ": " : "", detail);
        else
            buf_printf(out, "%s", *m ? m : "failed");
        break;
    }
}

int cmd_ping(int argc, char **argv)
{
    const char *who = "trackbridge ping";
    struct api_args a = {.ping = 1};
    int rc = 2;
    struct tp_client *c = NULL;
    struct tp_result *res = NULL;
    struct tb_config *cfg = NULL;
    if (api_setup(argc, argv, &a, &cfg, who, ping_usage, &rc) < 0)
        goto out;
    if (a.npos) {
        fprintf(stderr, "%s: takes no arguments\nRun 'trackbridge ping --help' for usage.\n",
                who);
        goto out;
    }
    if (!a.retries_set)
        a.opts.retry.max_attempts = 1; /* report the first failure as it is */
    api_prepare(&a);
    c = api_client(who, &a);
    if (!c)
        goto out;
    rc = 1;
    int64_t t0 = util_mono_ms();
    int sub = 0;
    if (!a.opts.api_key && a.opts.user)
        sub = tp_client_call(c, TP_OP_LOGIN, NULL, &res);
    if (sub == 0 && (!res || res->outcome == TP_OK)) {
        static const struct tp_kv q[] = {{"page", "1"}, {"pageSize", "1"}};
        struct tp_call call = {.query = q, .nquery = 2};
        tp_result_free(res);
        res = NULL;
        sub = tp_client_call(c, TP_OP_LIST_SITES, &call, &res);
    }
    if (sub < 0) {
        fprintf(stderr, "%s: the call could not be made: %s\n", who, strerror(errno));
        goto out;
    }
    if (res->outcome == TP_OK) {
        printf("ok: %s reachable, credentials accepted (%lld ms)\n", a.opts.url,
               (long long)(util_mono_ms() - t0));
        rc = fflush(stdout) == 0 ? 0 : 1;
        goto out;
    }
    buf_t why;
    buf_init(&why, 4096);
    ping_reason(res, a.opts.url, &why);
    fprintf(stderr, "%s: %s: %s\n", who, a.opts.url, why.data ? why.data : "failed");
    buf_free(&why);
out:
    tp_result_free(res);
    tp_client_free(c);
    api_args_free(&a);
    config_free(cfg);
    return rc;
}
