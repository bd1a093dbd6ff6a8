/* trackplan-sim: a simulator of the TrackplanFM REST API for tests and local runs. main()
 * wires the parts together — options, authenticator, store, seed and state, the HTTP server —
 * and runs the event loop until SIGTERM or SIGINT. No API behaviour lives here. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "sim/sim_api.h"
#include "sim/sim_auth.h"
#include "sim/sim_http.h"
#include "sim/sim_opts.h"
#include "sim/sim_store.h"

#define SIM_MAX_FILE (256L * 1024 * 1024)

/* Reads a JSON file; NULL with a message in err (ENOENT left in errno for the caller). */
static json_t *load_json(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = util_read_file(path, SIM_MAX_FILE, &len);
    if (!text) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    free(text);
    if (!j)
        snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    errno = 0;
    return j;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct event_base *base = arg;
    log_info("stopping", "signal", sig == SIGTERM ? "TERM" : "INT");
    event_base_loopexit(base, NULL);
}

int main(int argc, char **argv)
{
    struct sim_opts o;
    char err[512];
    int rc = 1;
    sim_auth_t *auth = NULL;
    sim_store_t *st = NULL;
    sim_api_t *api = NULL;
    sim_http_t *http = NULL;
    struct event_base *base = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    json_t *seed = NULL, *state = NULL, *users_only = NULL;

    switch (sim_opts_parse(argc, argv, &o)) {
    case SIM_OPTS_EXIT_OK: return 0;
    case SIM_OPTS_USAGE: return 2;
    case SIM_OPTS_RUN: break;
    }
    log_init("trackplan-sim", o.log_json);
    log_set_level(o.level);
    signal(SIGPIPE, SIG_IGN);

    auth = sim_auth_new(o.key_header, o.token_ttl);
    st = sim_store_new();
    api = auth && st ? sim_api_new(st, auth) : NULL;
    if (!api)
        fatal("out of memory");
    for (size_t i = 0; i < o.n_api_keys; i++)
        if (sim_auth_add_key(auth, o.api_keys[i]) < 0)
            fatal("out of memory");
    for (size_t i = 0; i < o.n_users; i++) {
        if (sim_auth_add_user_spec(auth, o.users[i]) < 0) {
            fprintf(stderr, "trackplan-sim: --user wants NAME:PASSWORD[:ro]\n");
            rc = 2;
            goto out;
        }
    }

    if (o.seed_path && !(seed = load_json(o.seed_path, err, sizeof(err)))) {
        log_error("cannot read seed", "error", err);
        goto out;
    }
    if (o.state_path) {
        state = load_json(o.state_path, err, sizeof(err));
        if (!state && errno != ENOENT) {
            log_error("cannot read state", "error", err);
            goto out;
        }
    }
    if (state) {
        if (sim_store_load(st, state, err, sizeof(err)) < 0) {
            log_error("cannot load state", "path", o.state_path, "error", err);
            goto out;
        }
        /* records come from the state; the seed still contributes its users */
        json_t *users = seed ? json_object_get(seed, "users") : NULL;
        users_only = users ? json_pack("{s:O}", "users", users) : NULL;
        if (users_only && sim_api_seed(api, users_only, util_now_ms(), err, sizeof(err)) < 0) {
            log_error("cannot apply seed", "path", o.seed_path, "error", err);
            goto out;
        }
        log_info("state loaded", "path", o.state_path);
    } else if (seed && sim_api_seed(api, seed, util_now_ms(), err, sizeof(err)) < 0) {
        log_error("cannot apply seed", "path", o.seed_path, "error", err);
        goto out;
    }
    if (sim_auth_is_open(auth))
        log_warn("the API is open: no --api-key and no user configured, every call is accepted");

    base = event_base_new();
    if (!base)
        fatal("cannot create the event loop");
    struct sim_http_opts hopts = {
        .host = o.host,
        .port = o.port,
        .max_body = (size_t)o.max_body,
        .max_log = (size_t)o.max_log,
        .state_path = o.state_path,
        .seed = seed,
    };
    http = sim_http_new(base, api, st, auth, &hopts, err, sizeof(err));
    if (!http) {
        log_error("cannot start", "error", err);
        goto out;
    }
    sim_http_save(http);
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) < 0 || evsignal_add(sigint, NULL) < 0)
        fatal("cannot install signal handlers");

    int v6 = strchr(o.host, ':') != NULL;
    printf("listening on http://%s%s%s:%d\n", v6 ? "[" : "", o.host, v6 ? "]" : "",
           sim_http_port(http));
    fflush(stdout);
    char port[16];
    snprintf(port, sizeof(port), "%d", sim_http_port(http));
    log_info("listening", "host", o.host, "port", port);

    event_base_dispatch(base);
    rc = 0;
out:
    sim_http_free(http);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (base)
        event_base_free(base);
    sim_api_free(api);
    sim_store_free(st);
    sim_auth_free(auth);
    json_decref(seed);
    json_decref(state);
    json_decref(users_only);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
