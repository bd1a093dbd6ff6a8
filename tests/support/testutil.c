/* testutil: spawning the real binaries for tests; see testutil.h. */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *tu_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

pid_t tu_spawn_listening(const char *prog, const char *const *argv, char url[128])
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* The child dies with the test process, even when the test crashes. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char line[512];
    size_t len = 0;
    int found = 0;
    time_t deadline = time(NULL) + 15;
    while (!found && time(NULL) < deadline && len < sizeof line - 1) {
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = read(fds[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
        char *at = strstr(line, "listening on http://");
        if (at && strchr(at, '\n')) {
            at += strlen("listening on ");
            size_t ul = strcspn(at, " \r\n");
            if (ul >= 128)
                ul = 127;
            memcpy(url, at, ul);
            url[ul] = '\0';
            found = 1;
        }
    }
    if (!found) {
        close(fds[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    /* The read end stays open for the child's lifetime so a later line on its stdout never
     * meets a closed pipe (SIGPIPE). */
    return pid;
}

pid_t tu_sim_start(char url[128], const char *const *args)
{
    const char *sim = tu_env("SIM_BIN", "./trackplan-sim");
    const char *argv[64];
    int n = 0;
    argv[n++] = sim;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    for (; args && *args && n < 62; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return tu_spawn_listening(sim, argv, url);
}

int tu_proc_stop(pid_t pid)
{
    int status = -1;
    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    for (int i = 0; i < 50; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return status;
}

char *tu_tmpdir(void)
{
    char tmpl[] = "/tmp/tbtest.XXXXXX";
    if (!mkdtemp(tmpl))
        return NULL;
    return strdup(tmpl);
}

int tu_run(const char *cmdline, char **out)
{
    FILE *f = popen(cmdline, "r");
    if (!f)
        return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 1024) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    if (buf)
        buf[len] = '\0';
    int st = pclose(f);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
