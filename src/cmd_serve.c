/* cmd_serve: `trackbridge serve` (the server: intake, pipeline, delivery, on one event loop,
 * with signals, reload and systemd notification), `trackbridge replay` (re-run stored or
 * dead-lettered work through the current rules) and `trackbridge explain` (a request's
 * trace). Start-up order: config, rules, store, client, listeners; stop in reverse. */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef TB_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "app.h"
#include "common/log.h"
#include "common/util.h"
#include "config.h"
#include "delivery.h"
#include "mail/imap.h"
#include "mail/send.h"
#include "metrics.h"
#include "pipeline.h"
#include "regex.h"
#include "rules.h"
#include "server.h"
#include "store.h"
#include "trackplan/client.h"

struct serve {
    struct event_base *base;
    char *config_path;
    const char **sets;
    size_t nsets;
    struct tb_config *cfg;
    rules_t *rules;
    struct store *store;
    struct tp_client *client;
    srv_t *srv;
    pipeline_t *pipe;
    dlv_t *dlv;
    struct mail_sender *mailer;          /* NULL without smtp.host */
    struct mail_imap_poller **pollers;   /* one per email source with options.imap */
    size_t npollers;
    struct event *sig_term, *sig_int, *sig_hup, *stop_timer, *watchdog, *purge;
    int64_t stop_deadline;
    int stopping;
};


/* The store's options from the configuration (zero fields keep the store's defaults). */
static struct store_opts serve_store_opts(const struct tb_config *cfg)
{
    struct store_opts o = {0};
    o.intake_max_bytes = (int64_t)cfg->store.max_size;
    o.request_retention_ms = cfg->store.retention_ms;
    o.done_retention_ms = cfg->store.retention_ms;
    return o;
}

static void serve_notify(const char *state)
{
#ifdef TB_HAVE_SYSTEMD
    sd_notify(0, state);
#else
    (void)state;
#endif
}

/* Options shared by the subcommands here: -c FILE, --set k=v, -v. Returns the index of the
 * first operand, or -1 on a usage error (message printed). */
static int serve_opts(int argc, char **argv, struct serve *s, int *verbose, const char *usage)
{
    s->config_path = NULL;
    s->sets = calloc((size_t)argc + 1, sizeof *s->sets);
    if (!s->sets)
        return -1;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            s->config_path = argv[++i];
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
            s->sets[s->nsets++] = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            s->sets[s->nsets++] = a + 6;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            (*verbose)++;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("%s", usage);
            exit(0);
        } else {
            break;
        }
    }
    if (!s->config_path)
        s->config_path = (char *)config_default_path();
    return i;
}

static struct tb_config *serve_load_config(struct serve *s)
{
    yamlx_diags_t diags;
    yamlx_diags_init(&diags);
    struct tb_config *cfg = config_load(s->config_path, s->sets, s->nsets, &diags);
    yamlx_diags_print(&diags, stderr);
    yamlx_diags_free(&diags);
    return cfg;
}

static rules_t *serve_load_rules(const struct tb_config *cfg)
{
    struct rules_opts ro = {
        .path = cfg->rules,
        .templates = cfg->templates,
        .vars = cfg->vars,
        .sources = cfg->sources,
        .nsources = cfg->nsources,
        .corr = {cfg->correlation.reopen_window_ms, cfg->correlation.min_interval_ms,
                 cfg->correlation.flap_window_ms},
        .template_output = cfg->limits.template_output,
    };
    yamlx_diags_t diags;
    yamlx_diags_init(&diags);
    rules_t *r = rules_load(&ro, &diags);
    yamlx_diags_print(&diags, stderr);
    yamlx_diags_free(&diags);
    return r;
}

static void serve_limits(const struct tb_config *cfg)
{
    struct rx_limits lim = {cfg->limits.regex_match, cfg->limits.regex_depth,
                            (uint32_t)(cfg->limits.regex_heap / 1024),
                            cfg->limits.regex_jit_stack / 1024};
    rx_set_limits(&lim);
}

static void serve_planned(void *arg)
{
    struct serve *s = arg;
    if (s->dlv)
        dlv_kick(s->dlv);
    if (s->mailer)
        mail_sender_kick(s->mailer);
}

static void serve_mail_stored(int64_t request_id, void *arg)
{
    (void)request_id;
    struct serve *s = arg;
    pipeline_kick(s->pipe);
}

/* The outbound mailer (when smtp.host is set) and an IMAP poller per email source that has
 * options.imap. Returns 0, or -1 with the reason logged. */
static int serve_mail_start(struct serve *s)
{
    struct mail_sender_opts mo;
    char *err = NULL;
    if (mail_sender_opts_from_config(s->cfg, &mo) == 0) {
        if (!(s->mailer = mail_sender_new(s->base, s->store, &mo, &err))) {
            log_error("cannot start the mail sender", "error", err);
            free(err);
            return -1;
        }
    }
    s->pollers = calloc(s->cfg->nsources ? s->cfg->nsources : 1, sizeof *s->pollers);
    if (!s->pollers)
        return -1;
    for (size_t i = 0; i < s->cfg->nsources; i++) {
        const struct tb_source *src = &s->cfg->sources[i];
        const json_t *imap = mail_imap_options_of(src->options);
        if (strcmp(src->adapter, "email") != 0 || !imap)
            continue;
        struct mail_imap_poller *p =
            mail_imap_poller_new(s->base, s->store, src->name, imap, serve_mail_stored, s, &err);
        if (!p) {
            log_error("cannot start the IMAP poller", "source", src->name, "error", err);
            free(err);
            return -1;
        }
        s->pollers[s->npollers++] = p;
    }
    return 0;
}

/* 1 when two configurations differ in what the mail sender or the IMAP pollers use. */
static int serve_mail_changed(const struct tb_config *a, const struct tb_config *b)
{
#define SERVE_STR_NE(x, y) ((x) == NULL ? (y) != NULL : (y) == NULL || strcmp((x), (y)) != 0)
    if (SERVE_STR_NE(a->smtp.host, b->smtp.host) || a->smtp.port != b->smtp.port ||
        a->smtp.starttls != b->smtp.starttls || SERVE_STR_NE(a->smtp.user, b->smtp.user) ||
        SERVE_STR_NE(a->smtp.password, b->smtp.password) ||
        SERVE_STR_NE(a->smtp.from, b->smtp.from))
        return 1;
#undef SERVE_STR_NE
    json_t *ia = json_object(), *ib = json_object();
    const struct tb_config *cf[2] = {a, b};
    json_t *sets[2] = {ia, ib};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < cf[k]->nsources; i++) {
            const struct tb_source *src = &cf[k]->sources[i];
            const json_t *imap = mail_imap_options_of(src->options);
            if (strcmp(src->adapter, "email") == 0 && imap)
                json_object_set(sets[k], src->name, (json_t *)imap);
        }
    int changed = !ia || !ib || !json_equal(ia, ib);
    json_decref(ia);
    json_decref(ib);
    return changed;
}

static void serve_mail_stop(struct serve *s)
{
    for (size_t i = 0; i < s->npollers; i++)
        mail_imap_poller_free(s->pollers[i]);
    free(s->pollers);
    s->pollers = NULL;
    s->npollers = 0;
    mail_sender_free(s->mailer);
    s->mailer = NULL;
}

static void serve_stored(void *arg)
{
    struct serve *s = arg;
    pipeline_kick(s->pipe);
}

static json_t *serve_explain(const char *id, void *arg)
{
    struct serve *s = arg;
    return pipeline_explain(s->store, id);
}

static int serve_ready(void *arg)
{
    struct serve *s = arg;
    return s->rules != NULL && !s->stopping;
}

static void serve_stop_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct serve *s = arg;
    int idle = srv_inflight(s->srv) == 0 && dlv_inflight(s->dlv) == 0;
    if (idle || util_mono_ms() >= s->stop_deadline) {
        if (!idle)
            log_warn("stopping with work in flight", "deadline", "10s");
        event_base_loopexit(s->base, NULL);
        return;
    }
    struct timeval tv = {0, 50 * 1000};
    evtimer_add(s->stop_timer, &tv);
}

static void serve_on_term(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct serve *s = arg;
    if (s->stopping)
        return;
    s->stopping = 1;
    serve_notify("STOPPING=1");
    log_info("stopping", "signal", sig == SIGINT ? "INT" : "TERM");
    srv_stop_listening(s->srv);
    dlv_drain(s->dlv);
    s->stop_deadline = util_mono_ms() + 10000;
    serve_stop_check(-1, 0, s);
}

static void serve_on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct serve *s = arg;
    serve_notify("RELOADING=1");
    log_info("reloading", "config", s->config_path);
    struct tb_config *cfg = serve_load_config(s);
    rules_t *rules = cfg ? serve_load_rules(cfg) : NULL;
    char *err = NULL;
    if (!cfg || !rules || srv_set_config(s->srv, cfg, &err) < 0) {
        log_error("reload failed; keeping the running configuration", "error",
                  err ? err : "configuration or rules invalid (see above)");
        free(err);
        rules_unref(rules);
        config_free(cfg);
        serve_notify("READY=1");
        return;
    }
    pipeline_set(s->pipe, cfg, rules);
    serve_limits(cfg);
    rules_unref(s->rules);
    s->rules = rules;
    /* New mailboxes or relay: the pollers and the sender start again on the new settings
     * (a poll cut short is taken up again by UID; queued mail waits in the outbox). */
    int mail_changed = serve_mail_changed(s->cfg, cfg);
    dlv_set_mail_from(s->dlv, cfg->smtp.host ? cfg->smtp.from : NULL);
    if (mail_changed)
        serve_mail_stop(s);
    config_free(s->cfg);
    s->cfg = cfg;
    if (mail_changed && serve_mail_start(s) < 0)
        log_error("the mail sender or an IMAP poller did not start with the new "
                  "configuration; fix it and reload again");
    else if (mail_changed)
        log_info("mail settings reloaded", "pollers", NULL);
    log_set_level(cfg->log.level);
    log_info("reloaded", "rules", NULL);
    serve_notify("READY=1");
}

static void serve_on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    serve_notify("WATCHDOG=1");
}

/* Retention: settled events, deliveries and sent-mail ids past their retention go, a
 * bounded number per run so the loop never stalls; dead letters are kept. */
static void serve_on_purge(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct serve *s = arg;
    struct store_purge_counts c = {0};
    if (store_purge(s->store, util_now_ms(), 2000, &c) == STORE_OK && c.events + c.deliveries) {
        char ev[24], dl[24];
        snprintf(ev, sizeof ev, "%zu", c.events);
        snprintf(dl, sizeof dl, "%zu", c.deliveries);
        log_info("purged settled work past retention", "events", ev, "deliveries", dl);
    }
}

static void serve_cleanup(struct serve *s)
{
    if (s->sig_term)
        event_free(s->sig_term);
    if (s->sig_int)
        event_free(s->sig_int);
    if (s->sig_hup)
        event_free(s->sig_hup);
    if (s->stop_timer)
        event_free(s->stop_timer);
    if (s->watchdog)
        event_free(s->watchdog);
    if (s->purge)
        event_free(s->purge);
    srv_free(s->srv);
    serve_mail_stop(s);
    tp_client_free(s->client);
    dlv_free(s->dlv);
    pipeline_free(s->pipe);
    store_close(s->store);
    rules_unref(s->rules);
    config_free(s->cfg);
    if (s->base)
        event_base_free(s->base);
    free(s->sets);
    metrics_reset();
}

static const char serve_usage[] =
    "usage: trackbridge serve [-c FILE] [--set key.path=value]... [-v]\n"
    "Runs the server: webhook intake, processing and delivery to TrackplanFM.\n"
    "  -c, --config FILE   configuration (default " CONFIG_DEFAULT_PATH ")\n"
    "  --set key=value     override a configuration key (repeatable)\n"
    "  -v, --verbose       debug logging\n";

int cmd_serve(int argc, char **argv)
{
    struct serve s;
    memset(&s, 0, sizeof s);
    int verbose = 0;
    int first = serve_opts(argc, argv, &s, &verbose, serve_usage);
    if (first < 0 || first != argc) {
        fprintf(stderr, "%s", serve_usage);
        free(s.sets);
        return 2;
    }
    int rc = 1;
    char *err = NULL;
    if (!(s.cfg = serve_load_config(&s)))
        goto out;
    log_init("trackbridge", s.cfg->log.json);
    log_set_level(verbose ? LOG_LVL_DEBUG : s.cfg->log.level);
    serve_limits(s.cfg);
    if (!(s.rules = serve_load_rules(s.cfg)))
        goto out;
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    if (!(s.base = event_base_new()))
        goto out;
    /* Three priorities: network I/O and timers at the default (1); planning of stored
     * requests at 2, so a burst of senders is answered first (see pipeline.c). */
    event_base_priority_init(s.base, 3);
    struct store_opts so = serve_store_opts(s.cfg);
    s.store = store_open(s.cfg->store.path, &so, s.base, &err);
    if (!s.store) {
        log_error("cannot open the store", "path", s.cfg->store.path, "error", err);
        goto out;
    }
    struct tp_options o;
    tp_options_init(&o);
    config_tp_options(s.cfg, &o);
    if (!(s.client = tp_client_new(&o, s.base))) {
        char e[256];
        tp_options_check(&o, e, sizeof e);
        log_error("cannot set up the TrackplanFM client", "error", e);
        goto out;
    }
    if (!(s.pipe = pipeline_new(s.base, s.store, s.cfg, s.rules, serve_planned, &s)))
        goto out;
    struct dlv_opts dopt = {
        .concurrency = s.cfg->delivery.concurrency,
        .rate = s.cfg->delivery.rate,
        .max_attempts = s.cfg->delivery.max_attempts,
        .backoff_base_ms = s.cfg->delivery.backoff_base_ms,
        .backoff_cap_ms = s.cfg->delivery.backoff_cap_ms,
        .breaker_failures = s.cfg->delivery.breaker_failures,
        .breaker_cooldown_ms = s.cfg->delivery.breaker_cooldown_ms,
        .poll_ms = 500,
        .lookup_ttl_ms = s.cfg->lookups.ttl_ms,
        .lookup_max = s.cfg->lookups.max_entries,
        .mail_from = s.cfg->smtp.host ? s.cfg->smtp.from : NULL,
    };
    if (!(s.dlv = dlv_new(s.base, s.store, s.client, &dopt, pipeline_rebuild_plan, s.pipe)))
        goto out;
    if (serve_mail_start(&s) < 0)
        goto out;
    struct srv_hooks hooks = {serve_stored, serve_explain, serve_ready, &s};
    if (!(s.srv = srv_new(s.base, s.cfg, s.store, &hooks, &err))) {
        log_error("cannot start the HTTP server", "error", err);
        goto out;
    }
    s.sig_term = evsignal_new(s.base, SIGTERM, serve_on_term, &s);
    s.sig_int = evsignal_new(s.base, SIGINT, serve_on_term, &s);
    s.sig_hup = evsignal_new(s.base, SIGHUP, serve_on_hup, &s);
    s.stop_timer = evtimer_new(s.base, serve_stop_check, &s);
    if (!s.sig_term || !s.sig_int || !s.sig_hup || !s.stop_timer)
        goto out;
    event_add(s.sig_term, NULL);
    event_add(s.sig_int, NULL);
    event_add(s.sig_hup, NULL);
    if ((s.purge = event_new(s.base, -1, EV_PERSIST, serve_on_purge, &s))) {
        struct timeval every = {300, 0};
        event_add(s.purge, &every);
    }
#ifdef TB_HAVE_SYSTEMD
    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
        s.watchdog = event_new(s.base, -1, EV_PERSIST, serve_on_watchdog, &s);
        struct timeval tv = {(time_t)(wd_usec / 2 / 1000000),
                             (suseconds_t)(wd_usec / 2 % 1000000)};
        if (s.watchdog)
            event_add(s.watchdog, &tv);
    }
#else
    (void)serve_on_watchdog;
#endif
    printf("listening on %s\n", srv_url(s.srv));
    if (srv_tls_url(s.srv)[0])
        printf("listening on %s\n", srv_tls_url(s.srv));
    fflush(stdout);
    char nsrc[16];
    snprintf(nsrc, sizeof nsrc, "%zu", s.cfg->nsources);
    log_info("started", "listen", srv_url(s.srv), "sources", nsrc, "store", s.cfg->store.path,
             "trackplan", s.cfg->trackplan.url);
    serve_notify("READY=1");
    event_base_dispatch(s.base);
    log_info("stopped");
    rc = 0;
out:
    free(err);
    serve_cleanup(&s);
    return rc;
}

/* For the offline commands (replay, explain): the configuration and the store without a loop
 * (a running server may hold the same store; SQLite's WAL lets both work). 0, or -1 with the
 * reason printed. */
static int serve_open_offline(struct serve *s, const char *who)
{
    char *err = NULL;
    if (!(s->cfg = serve_load_config(s)))
        return -1;
    struct store_opts so = serve_store_opts(s->cfg);
    if (!(s->store = store_open(s->cfg->store.path, &so, NULL, &err))) {
        fprintf(stderr, "%s: %s: %s\n", who, s->cfg->store.path, err ? err : "cannot open");
        free(err);
        return -1;
    }
    return 0;
}

static void serve_close_offline(struct serve *s)
{
    store_close(s->store);
    config_free(s->cfg);
    free(s->sets);
}

static const char replay_usage[] =
    "usage: trackbridge replay [-c FILE] [--set k=v]... (--id ID | --dead | --since TIME) "
    "[--dry-run]\n"
    "Re-runs stored requests (--id) or dead-lettered deliveries (--dead, --since) through the\n"
    "current rules; a running server picks the requeued work up within seconds.\n";

int cmd_replay(int argc, char **argv)
{
    struct serve s;
    memset(&s, 0, sizeof s);
    int verbose = 0;
    int i = serve_opts(argc, argv, &s, &verbose, replay_usage);
    const char *id = NULL, *since = NULL;
    int dead = 0, dry = 0;
    for (; i >= 0 && i < argc; i++) {
        if (strcmp(argv[i], "--id") == 0 && i + 1 < argc)
            id = argv[++i];
        else if (strcmp(argv[i], "--dead") == 0)
            dead = 1;
        else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc)
            since = argv[++i];
        else if (strcmp(argv[i], "--dry-run") == 0)
            dry = 1;
        else
            i = -2;
    }
    if (i < 0 || (!!id + dead + !!since) != 1) {
        fprintf(stderr, "%s", replay_usage);
        free(s.sets);
        return 2;
    }
    int rc = 1;
    int64_t since_ms = 0;
    if (since && util_parse_iso8601(since, &since_ms) < 0) {
        int64_t ago;
        if (config_parse_duration(since, &ago) < 0) {
            fprintf(stderr, "trackbridge replay: --since takes an ISO 8601 time or a duration "
                            "(e.g. 2h)\n");
            free(s.sets);
            return 2;
        }
        since_ms = util_now_ms() - ago;
    }
    if (serve_open_offline(&s, "trackbridge replay") < 0)
        goto out;
    if (id) {
        json_t *ex = pipeline_explain(s.store, id);
        if (!ex) {
            fprintf(stderr, "trackbridge replay: no request %s\n", id);
            goto out;
        }
        int64_t num = json_integer_value(json_object_get(ex, "number"));
        json_decref(ex);
        if (dry) {
            printf("would re-run request %s\n", id);
            rc = 0;
            goto out;
        }
        enum store_status st = store_request_requeue(s.store, num);
        if (st != STORE_OK && st != STORE_CONFLICT) {
            fprintf(stderr, "trackbridge replay: %s\n", store_status_str(st));
            goto out;
        }
        printf("request %s queued again\n", id);
        rc = 0;
        goto out;
    }
    struct store_counters c;
    if (dry) {
        store_counters(s.store, util_now_ms(), &c);
        printf("%lld dead letters in the store\n", (long long)c.deliveries_dead);
        rc = 0;
        goto out;
    }
    size_t count = 0;
    enum store_status st = store_deliveries_requeue_dead(s.store, since_ms, util_now_ms(), &count);
    if (st != STORE_OK) {
        fprintf(stderr, "trackbridge replay: %s\n", store_status_str(st));
        goto out;
    }
    printf("%zu dead letters queued again\n", count);
    rc = 0;
out:
    serve_close_offline(&s);
    return rc;
}

static const char explain_usage[] =
    "usage: trackbridge explain [-c FILE] [--set k=v]... ID\n"
    "Prints the trace of a stored request (its id from the 202 answer, or its number):\n"
    "events, rules matched, captures, key, and each API call with status and result.\n";

int cmd_explain(int argc, char **argv)
{
    struct serve s;
    memset(&s, 0, sizeof s);
    int verbose = 0;
    int i = serve_opts(argc, argv, &s, &verbose, explain_usage);
    if (i < 0 || i + 1 != argc) {
        fprintf(stderr, "%s", explain_usage);
        free(s.sets);
        return 2;
    }
    int rc = 1;
    if (serve_open_offline(&s, "trackbridge explain") < 0)
        goto out;
    json_t *ex = pipeline_explain(s.store, argv[i]);
    if (!ex) {
        fprintf(stderr, "trackbridge explain: no request %s\n", argv[i]);
        goto out;
    }
    json_dumpf(ex, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(ex);
    rc = 0;
out:
    serve_close_offline(&s);
    return rc;
}
