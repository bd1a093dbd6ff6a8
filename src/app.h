/* app: the subcommands of the trackbridge program. Each takes the arguments after its own
 * name (argv[0] is the subcommand) and returns the process exit code: 0 ok, 1 a failure the
 * user must fix, 2 a usage error (trackbridge mail uses sysexits instead). */
#ifndef TB_APP_H
#define TB_APP_H

int cmd_version(int argc, char **argv);


#endif
