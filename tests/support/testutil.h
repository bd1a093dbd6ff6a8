/* testutil: helpers for criterion tests that run the real binaries on loopback. Paths come
 * from the environment set by ctest: TB_BIN, SIM_BIN, TB_SRC, TB_BUILD, TB_TESTDATA. */
#ifndef TB_TESTUTIL_H
#define TB_TESTUTIL_H

#include <sys/types.h>

/* Starts trackplan-sim on 127.0.0.1 with a free port and the extra arguments (NULL-ended
 * list, may be NULL). Waits for its "listening on" line and writes the base URL into url.
 * Returns the pid, or -1 (and the test should fail). */
pid_t tu_sim_start(char url[128], const char *const *args);
/* Starts any program and waits until it prints a line containing "listening on http://";
 * the URL that follows is written into url. */
pid_t tu_spawn_listening(const char *prog, const char *const *argv, char url[128]);
/* Sends SIGTERM, waits up to 5 s, then SIGKILL. Returns the exit status as waitpid gives it. */
int tu_proc_stop(pid_t pid);
/* Creates a fresh temporary directory; returns a malloc'd path. */
char *tu_tmpdir(void);
/* Environment value or a fallback. */
const char *tu_env(const char *name, const char *fallback);
/* Runs a command line through /bin/sh, captures stdout (malloc'd, may be NULL) and returns
 * the exit code (or -1). */
int tu_run(const char *cmdline, char **out);

#endif
