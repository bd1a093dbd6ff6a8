/* config: the one YAML file (deploy/trackbridge.yaml by default) → an immutable, range-checked
 * struct tb_config. Secrets come by reference (${ENV}, file:/path); --set key.path=value
 * overrides any key; every problem is reported as file:line:col (or "--set key.path"), all
 * of them, not just the first. Read at start-up and on reload only; a reload builds anew. */
#ifndef TB_CONFIG_H
#define TB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/log.h"
#include "yamlx.h"

/* The default configuration: the installed one when it exists, else the repository's (relative
 * to the working directory), so both an installed system and a checkout work without -c. */
#define CONFIG_INSTALLED_PATH "/etc/trackbridge/trackbridge.yaml"
#define CONFIG_REPO_PATH "deploy/trackbridge.yaml"
#define CONFIG_DEFAULT_PATH CONFIG_INSTALLED_PATH " or " CONFIG_REPO_PATH
/* The file -c defaults to (see above). Never NULL. */
const char *config_default_path(void);

enum tb_starttls { TB_STARTTLS_DISABLED = 0, TB_STARTTLS_ENABLED, TB_STARTTLS_REQUIRED };

struct tb_source {
    char *name;            /* the map key; the URL path is /hooks/<name> */
    char *adapter;         /* adapter kind (adapter_known) */
    json_t *auth;          /* borrowed from the config; NULL when absent (an open source) */
    json_t *options;       /* borrowed from the config; NULL when absent */
    double rate;           /* rate_limit.rate, requests per second; 0 = unlimited */
    double burst;          /* rate_limit.burst (>= 1 when rate > 0) */
    size_t max_body;       /* bytes; 0 = limits.body */
};

struct tb_limits {
    size_t body;              /* request body bytes */
    size_t headers;           /* request header bytes */
    int json_depth;
    int events_per_request;
    uint32_t regex_match;     /* PCRE2 match limit */
    uint32_t regex_depth;     /* PCRE2 depth limit */
    size_t regex_heap;        /* bytes */
    size_t regex_jit_stack;   /* bytes */
    size_t template_output;   /* bytes of one rendered template */
};

struct tb_config {
    char *path;               /* the file as given */
    char *dir;                /* its folder: relative paths resolve against it */

    char *listen;             /* "host:port" */
    struct {
        char *listen;         /* NULL: no TLS listener */
        char *cert, *key, *client_ca;
    } tls;
    struct {
        char *url;            /* base URL, no trailing slash */
        char *api_key;        /* NULL unless API-key authentication */
        char *user, *password;/* NULL unless JWT login */
        char *api_key_header; /* header that carries the API key */
        int64_t connect_timeout_ms, timeout_ms;
        int retries_max;      /* extra attempts after the first */
        int64_t retries_base_ms, retries_cap_ms;
        char *ca_file;        /* NULL: system CAs */
        int insecure;         /* skip TLS verification (tests only) */
    } trackplan;
    struct {
        char *path;
        size_t max_size;      /* cap on the intake file (503 "store full" past it); 0: none */
        int64_t retention_ms; /* settled requests and finished work are kept this long; 0:
                                 the store's default (7 days) */
    } store;
    struct {
        char *host;           /* NULL: no outbound mail */
        int port;
        enum tb_starttls starttls;
        char *user, *password, *from;
    } smtp;
    struct {
        char *token;          /* NULL: admin API disabled */
    } admin;
    struct {
        enum log_level level;
        int json;             /* format: json (1) or logfmt (0) */
    } log;

    struct tb_source *sources;
    size_t nsources;

    char *rules;              /* folder, file or glob of rule files */
    char *templates;          /* folder of templates and partials; NULL when absent */
    json_t *vars;             /* borrowed from the config: an object, {} when absent */

    struct {
        int64_t reopen_window_ms, min_interval_ms, flap_window_ms;
    } correlation;
    struct {
        int64_t ttl_ms;
        size_t max_entries;
    } lookups;
    struct {
        int concurrency;
        double rate;          /* calls per second to TrackplanFM; 0 = unlimited */
        int max_attempts;
        int64_t backoff_base_ms, backoff_cap_ms;
        int breaker_failures; /* consecutive failures that open the breaker; 0 = never */
        int64_t breaker_cooldown_ms;
    } delivery;
    struct tb_limits limits;

    void *priv;               /* the parsed document the json subtrees live in */
};

/* Loads path, applies the overrides (sets: nsets strings "key.path=value", the value parsed
 * as a YAML scalar or flow node), resolves secrets and validates everything. Returns a new
 * config, or NULL with every problem added to diags (which may also receive warnings on
 * success). */
struct tb_config *config_load(const char *path, const char *const *sets, size_t nsets,
                              yamlx_diags_t *diags);
/* Frees a config and the json subtrees borrowed from it. NULL is a no-op. */
void config_free(struct tb_config *c);

struct tp_options;
/* Fills o (initialised with tp_options_init first) from the trackplan and delivery sections.
 * Strings are borrowed from c. */
void config_tp_options(const struct tb_config *c, struct tp_options *o);

/* The source named name, or NULL. */
const struct tb_source *config_source(const struct tb_config *c, const char *name);
/* The document the config came from (for positions of json subtrees), borrowed. */
const yamlx_doc_t *config_doc(const struct tb_config *c);

/* Parses "30s", "5m", "1h30m", "3d", "250ms" (or a bare number of seconds) into ms.
 * 0 or -1. */
int config_parse_duration(const char *s, int64_t *ms);
/* Parses "1MiB", "512KiB", "64kB", "2GB", "1024" (bytes) into bytes. 0 or -1. */
int config_parse_size(const char *s, size_t *bytes);
/* Formats ms as the shortest of "1h30m", "45s", "250ms" into out. */
void config_format_duration(int64_t ms, char out[32]);

#endif
