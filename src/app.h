/* app: the subcommands of the trackbridge program. Each takes the arguments after its own
 * name (argv[0] is the subcommand) and returns the process exit code: 0 ok, 1 a failure the
 * user must fix, 2 a usage error (trackbridge mail uses sysexits instead). */
#ifndef TB_APP_H
#define TB_APP_H

int cmd_version(int argc, char **argv);
/* cmd_api.c: one TrackplanFM call; a reachability and credentials check. */
int cmd_api(int argc, char **argv);
int cmd_ping(int argc, char **argv);
/* cmd_rules.c: validate configuration and rules; dry-run payloads. */
int cmd_check(int argc, char **argv);
int cmd_test(int argc, char **argv);
/* cmd_mail.c: the MTA pipe (exit codes from sysexits.h). */
int cmd_mail(int argc, char **argv);


/* cmd_serve.c: the server; re-running stored work; a request's trace. */
int cmd_serve(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_explain(int argc, char **argv);

#endif
