/* sim_opts: trackplan-sim's command line — options, their ranges and the help text. Parsing
 * only: nothing is opened or started here. */
#ifndef TB_SIM_OPTS_H
#define TB_SIM_OPTS_H

#include <stddef.h>

#include "common/log.h"

#define SIM_OPTS_MAX_LIST 64

struct sim_opts {
    char host[256];                          /* without IPv6 brackets */
    int port;
    const char *api_keys[SIM_OPTS_MAX_LIST]; /* borrowed from argv */
    size_t n_api_keys;
    const char *users[SIM_OPTS_MAX_LIST];    /* "NAME:PASSWORD[:ro]", borrowed from argv */
    size_t n_users;
    const char *key_header;                  /* NULL: X-API-Key */
    long token_ttl;
    const char *seed_path;
    const char *state_path;
    long max_log;
    long max_body;
    enum log_level level;
    int log_json;
};

enum sim_opts_result { SIM_OPTS_RUN, SIM_OPTS_EXIT_OK, SIM_OPTS_USAGE };

/* Parses argv into o. SIM_OPTS_RUN to start; SIM_OPTS_EXIT_OK after printing --help or
 * --version; SIM_OPTS_USAGE after printing what is wrong to stderr (exit 2). */
enum sim_opts_result sim_opts_parse(int argc, char **argv, struct sim_opts *o);

/* Splits "HOST:PORT" or "[V6]:PORT" into host (n bytes) and port. 0 or -1. */
int sim_opts_parse_listen(const char *s, char *host, size_t n, int *port);

#endif
