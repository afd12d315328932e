/* sal_proc.c - see sal_proc.h. */
#define _GNU_SOURCE /* pipe2 */
#include "ocps/sal_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Read what the child writes until EOF or the deadline; true on EOF. */
static int drain(int fd, char *out, size_t outlen, size_t *used, double deadline)
{
    for (;;) {
        double left = deadline - now();
        if (left <= 0) {
            return 0;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return 0;
        }
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return 1;
        }
        size_t room = outlen - 1 - *used;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(out + *used, buf, take);
        *used += take;
    }
}

int sal_proc_run(char *const argv[], char *out, size_t outlen, double timeout)
{
    int fds[2];
    out[0] = '\0';
    /* close-on-exec from the start: this runs on a worker thread while the
     * loop spawns other children, and a child that inherited the write end
     * would hold off the EOF below until it exits */
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(out, outlen, "pipe: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        snprintf(out, outlen, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    size_t used = 0;
    int eof = drain(fds[0], out, outlen, &used, now() + timeout);
    close(fds[0]);
    if (!eof) {
        kill(pid, SIGKILL);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    while (used > 0 && (out[used - 1] == '\n' || out[used - 1] == '\r')) {
        used--;
    }
    out[used] = '\0';
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}
