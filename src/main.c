/* main: dispatches to the subcommands in app.h. No business logic lives here. */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "common/log.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    /* name, entry point, one-line help: keep this list in the order of 'trackbridge --help' */
    {"serve", cmd_serve, "run the server: webhook intake, processing, delivery"},
    {"check", cmd_check, "validate the configuration, rules and templates"},
    {"test", cmd_test, "dry-run payloads through adapters, rules and templates"},
    {"api", cmd_api, "call the TrackplanFM API: an operation, or METHOD PATH"},
    {"ping", cmd_ping, "check that TrackplanFM is reachable and accepts the credentials"},
    {"replay", cmd_replay, "re-run stored requests or dead letters through the current rules"},
    {"explain", cmd_explain, "show the trace of a stored request"},
    {"mail", cmd_mail, "MTA pipe: post one mail from stdin to the intake (sysexits)"},
    {"version", cmd_version, "print the version"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: trackbridge COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'trackbridge COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    log_init("trackbridge", 0);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "trackbridge: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
