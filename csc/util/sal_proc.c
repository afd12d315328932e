/* sal_proc.c - see sal_proc.h. */
#define _GNU_SOURCE /* pipe2 */
#include "ocps/sal_proc.h"

#include "ocps/sal_clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Read what the child writes until EOF or the deadline; true on EOF. */
static int drain(int fd, char *out, size_t outlen, size_t *used, double deadline)
{
    for (;;) {
        double left = deadline - sal_clock_monotonic();
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

/* Spawn argv with stdout on out[1] and stderr on errp[1]; 0 or errno. */
static int spawn_two(char *const argv[], const int out[2], const int errp[2], pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, errp[1], STDERR_FILENO);
    int rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Wait for pid, SIGKILLed first unless it `ended` (its output read to
 * the end): 128 + signal if a signal ended it (*signalled set, if not
 * NULL), else its exit status. */
static int reap(pid_t pid, bool ended, bool *signalled)
{
    if (!ended) {
        kill(pid, SIGKILL);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (signalled != NULL) {
        *signalled = WIFSIGNALED(status);
    }
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* Drop the final newlines of text[0..*used) and terminate it. */
static void trim_newlines(char *text, size_t *used)
{
    while (*used > 0 && (text[*used - 1] == '\n' || text[*used - 1] == '\r')) {
        (*used)--;
    }
    text[*used] = '\0';
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
    pid_t pid;
    int rc = spawn_two(argv, fds, fds, &pid); /* stdout and stderr on one pipe */
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        snprintf(out, outlen, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    size_t used = 0;
    int eof = drain(fds[0], out, outlen, &used, sal_clock_monotonic() + timeout);
    close(fds[0]);
    int status = reap(pid, eof, NULL);
    trim_newlines(out, &used);
    return status;
}

/* --- sal_proc_capture --- */

/* Standard output kept whole, up to max bytes. */
typedef struct capture {
    char *data;
    size_t len, cap, max;
    bool too_long;
} capture;

/* Append buf[0..n) to the capture; false when out of memory. */
static bool capture_add(capture *c, const char *buf, size_t n)
{
    if (c->len + n > c->max) {
        c->too_long = true;
        return true;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap < c->len + n + 1) {
            cap *= 2;
        }
        char *grown = realloc(c->data, cap);
        if (grown == NULL) {
            return false;
        }
        c->data = grown;
        c->cap = cap;
    }
    memcpy(c->data + c->len, buf, n);
    c->len += n;
    c->data[c->len] = '\0';
    return true;
}

/* Read stdout (fds[0]) into c and stderr (fds[1]) into err until both end,
 * the deadline passes or stdout is too long; 1 if both ended, 0 if not, -1
 * out of memory. */
static int drain_both(const int fds[2], capture *c, char *err, size_t errlen, size_t *err_used,
                      double deadline)
{
    bool open[2] = {true, true};
    while (open[0] || open[1]) {
        double left = deadline - sal_clock_monotonic();
        if (left <= 0 || c->too_long) {
            return 0;
        }
        struct pollfd p[2] = {{open[0] ? fds[0] : -1, POLLIN, 0}, {open[1] ? fds[1] : -1, POLLIN, 0}};
        int r = poll(p, 2, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return 0;
        }
        for (int i = 0; i < 2; i++) {
            if (!open[i] || p[i].revents == 0) {
                continue;
            }
            char buf[4096];
            ssize_t n = read(fds[i], buf, sizeof buf);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                open[i] = false;
            } else if (i == 0 && !capture_add(c, buf, (size_t)n)) {
                return -1;
            } else if (i == 1 && *err_used + 1 < errlen) {
                size_t take = (size_t)n < errlen - 1 - *err_used ? (size_t)n : errlen - 1 - *err_used;
                memcpy(err + *err_used, buf, take);
                *err_used += take;
            }
        }
    }
    return 1;
}

int sal_proc_capture(char *const argv[], size_t max, double timeout, char **data, size_t *len, char *err,
                     size_t errlen)
{
    int out[2], errp[2];
    *data = NULL;
    *len = 0;
    err[0] = '\0';
    /* close-on-exec from the start, as in sal_proc_run */
    if (pipe2(out, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(errp, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        close(out[0]);
        close(out[1]);
        return -1;
    }
    pid_t pid;
    int rc = spawn_two(argv, out, errp, &pid);
    close(out[1]);
    close(errp[1]);
    int fds[2] = {out[0], errp[0]};
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    capture c = {NULL, 0, 0, max, false};
    size_t err_used = 0;
    int ended = drain_both(fds, &c, err, errlen, &err_used, sal_clock_monotonic() + timeout);
    close(fds[0]);
    close(fds[1]);
    bool signalled = false;
    int status = reap(pid, ended == 1, &signalled);
    trim_newlines(err, &err_used);
    if (ended < 0 || c.too_long) {
        free(c.data);
        if (ended < 0) {
            snprintf(err, errlen, "out of memory");
        }
        return ended < 0 ? -1 : SAL_PROC_TOO_LONG;
    }
    if (signalled) {
        free(c.data);
        return status;
    }
    if (c.data == NULL && !capture_add(&c, "", 0)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *data = c.data;
    *len = c.len;
    return status;
}
