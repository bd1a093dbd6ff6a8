/* sim_opts: command-line parsing for trackplan-sim; see sim_opts.h. */
#include "sim/sim_opts.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

static const char sim_usage[] =
    "usage: trackplan-sim --listen ADDR:PORT [options]\n"
    "\n"
    "A simulator of the TrackplanFM REST API (every operation of the integration guide),\n"
    "for tests and local runs. Prints \"listening on http://ADDR:PORT\" when ready.\n"
    "\n"
    "  --listen ADDR:PORT        address to serve on; port 0 picks a free one ([::1]:0 for IPv6)\n"
    "  --api-key KEY             accept this API key (repeatable)\n"
    "  --api-key-header NAME     header carrying the API key (default X-API-Key)\n"
    "  --user NAME:PASSWORD[:ro] a user who may log in; :ro makes it read-only (repeatable)\n"
    "  --token-ttl SECONDS       lifetime of login tokens (default 3600)\n"
    "  --seed FILE.json          records and users to preload (and re-apply on reset)\n"
    "  --state FILE              load records from FILE at start, save them after changes\n"
    "  --max-log N               API calls kept for GET /_sim/requests (default 100000)\n"
    "  --max-body BYTES          largest request body accepted (default 1048576)\n"
    "  --log-level LEVEL         debug, info, warn or error (default info)\n"
    "  --log-json                JSON log lines instead of logfmt\n"
    "  --help, --version\n"
    "\n"
    "With no --api-key and no user the API is open. Test hooks (no auth): GET /_sim/requests,\n"
    "POST /_sim/reset, GET|POST|DELETE /_sim/faults, GET /_sim/state.\n";

int sim_opts_parse_listen(const char *s, char *host, size_t n, int *port)
{
    const char *colon, *h = s;
    size_t hlen;
    long p;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= n || util_parse_long(colon + 1, 0, 65535, &p) < 0)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

enum sim_opts_result sim_opts_parse(int argc, char **argv, struct sim_opts *o)
{
    enum {
        O_LISTEN = 1000, O_API_KEY, O_KEY_HEADER, O_USER, O_TTL, O_SEED, O_STATE, O_MAX_LOG,
        O_MAX_BODY, O_LOG_LEVEL, O_LOG_JSON, O_HELP, O_VERSION
    };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"api-key", required_argument, NULL, O_API_KEY},
        {"api-key-header", required_argument, NULL, O_KEY_HEADER},
        {"user", required_argument, NULL, O_USER},
        {"token-ttl", required_argument, NULL, O_TTL},
        {"seed", required_argument, NULL, O_SEED},
        {"state", required_argument, NULL, O_STATE},
        {"max-log", required_argument, NULL, O_MAX_LOG},
        {"max-body", required_argument, NULL, O_MAX_BODY},
        {"log-level", required_argument, NULL, O_LOG_LEVEL},
        {"log-json", no_argument, NULL, O_LOG_JSON},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    int have_listen = 0, c;
    memset(o, 0, sizeof(*o));
    o->token_ttl = 3600;
    o->max_log = 100000;
    o->max_body = 1024 * 1024;
    o->level = LOG_LVL_INFO;
    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            if (sim_opts_parse_listen(optarg, o->host, sizeof(o->host), &o->port) < 0) {
                fprintf(stderr, "trackplan-sim: --listen wants ADDR:PORT, got \"%s\"\n", optarg);
                return SIM_OPTS_USAGE;
            }
            have_listen = 1;
            break;
        case O_API_KEY:
            if (!*optarg || o->n_api_keys == SIM_OPTS_MAX_LIST) {
                fprintf(stderr, "trackplan-sim: --api-key must be non-empty (at most %d)\n",
                        SIM_OPTS_MAX_LIST);
                return SIM_OPTS_USAGE;
            }
            o->api_keys[o->n_api_keys++] = optarg;
            break;
        case O_KEY_HEADER:
            if (!*optarg || strpbrk(optarg, " \t\r\n:")) {
                fprintf(stderr, "trackplan-sim: --api-key-header wants a header name\n");
                return SIM_OPTS_USAGE;
            }
            o->key_header = optarg;
            break;
        case O_USER: {
            const char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg || !colon[1] || o->n_users == SIM_OPTS_MAX_LIST) {
                fprintf(stderr, "trackplan-sim: --user wants NAME:PASSWORD[:ro]\n");
                return SIM_OPTS_USAGE;
            }
            o->users[o->n_users++] = optarg;
            break;
        }
        case O_TTL:
            if (util_parse_long(optarg, 1, 10L * 365 * 86400, &o->token_ttl) < 0) {
                fprintf(stderr, "trackplan-sim: --token-ttl wants seconds (1 or more)\n");
                return SIM_OPTS_USAGE;
            }
            break;
        case O_SEED:
            o->seed_path = optarg;
            break;
        case O_STATE:
            o->state_path = optarg;
            break;
        case O_MAX_LOG:
            if (util_parse_long(optarg, 0, 10000000, &o->max_log) < 0) {
                fprintf(stderr, "trackplan-sim: --max-log wants 0 to 10000000\n");
                return SIM_OPTS_USAGE;
            }
            break;
        case O_MAX_BODY:
            if (util_parse_long(optarg, 1024, 64L * 1024 * 1024, &o->max_body) < 0) {
                fprintf(stderr, "trackplan-sim: --max-body wants 1024 to 67108864 bytes\n");
                return SIM_OPTS_USAGE;
            }
            break;
        case O_LOG_LEVEL:
            if (log_parse_level(optarg, &o->level) < 0) {
                fprintf(stderr, "trackplan-sim: --log-level wants debug, info, warn or error\n");
                return SIM_OPTS_USAGE;
            }
            break;
        case O_LOG_JSON:
            o->log_json = 1;
            break;
        case 'h':
        case O_HELP:
            fputs(sim_usage, stdout);
            return SIM_OPTS_EXIT_OK;
        case O_VERSION:
            printf("trackplan-sim %s\n", TB_VERSION);
            return SIM_OPTS_EXIT_OK;
        default:
            fprintf(stderr, "Try 'trackplan-sim --help'.\n");
            return SIM_OPTS_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "trackplan-sim: unexpected argument \"%s\"\n", argv[optind]);
        return SIM_OPTS_USAGE;
    }
    if (!have_listen) {
        fprintf(stderr, "trackplan-sim: --listen ADDR:PORT is required\n");
        return SIM_OPTS_USAGE;
    }
    return SIM_OPTS_RUN;
}
