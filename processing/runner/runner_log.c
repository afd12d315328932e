/* runner_log.c - a job's output into its log file, bounded; see runner_log.h. */
#define _GNU_SOURCE /* pipe2, F_SETPIPE_SZ */
#include "runner_log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner_say.h"

#define RUNNER_LOG_TAIL_MAX (1024 * 1024)
#define RUNNER_LOG_CHUNK (64 * 1024)

/* Write all of buf to the log file (EINTR retried; a full disk loses the
 * rest of this write, the job goes on). */
static void log_write(runner_log *l, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(l->fd, buf, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;
        }
        l->last = buf[w - 1];
        buf += w;
        n -= (size_t)w;
    }
}

int runner_log_open(runner_log *l, const char *path, uint64_t max, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    l->pipe_r = -1;
    l->pipe_w = -1;
    l->last = '\n';
    l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        int rc = errno;
        snprintf(err, errlen, "cannot open log %s: %s", path, strerror(rc));
        return rc;
    }
    if (max == 0) {
        return 0;
    }
    l->max = max;
    l->tail_cap = max / 2 < RUNNER_LOG_TAIL_MAX ? (size_t)(max / 2) : RUNNER_LOG_TAIL_MAX;
    int fds[2];
    l->tail = l->tail_cap > 0 ? malloc(l->tail_cap) : NULL;
    if ((l->tail_cap > 0 && l->tail == NULL) || pipe2(fds, O_CLOEXEC) != 0) {
        int rc = errno != 0 ? errno : ENOMEM;
        snprintf(err, errlen, "cannot make the pipe of the job's log: %s", strerror(rc));
        free(l->tail);
        close(l->fd);
        l->tail = NULL; /* runner_log_finish may still be called */
        l->fd = -1;
        return rc;
    }
    l->pipe_r = fds[0];
    l->pipe_w = fds[1];
    (void)fcntl(l->pipe_w, F_SETPIPE_SZ, RUNNER_LOG_CHUNK * 16); /* a larger buffer if allowed */
    return 0;
}

int runner_log_job_fd(const runner_log *l)
{
    return l->pipe_w >= 0 ? l->pipe_w : l->fd;
}

void runner_log_started(runner_log *l)
{
    if (l->pipe_w >= 0) {
        close(l->pipe_w);
        l->pipe_w = -1;
    }
}

/* Past the head: keep the latest tail_cap bytes. */
static void log_keep_tail(runner_log *l, const char *buf, size_t n)
{
    if (l->tail_cap == 0) {
        return;
    }
    if (n >= l->tail_cap) {
        memcpy(l->tail, buf + n - l->tail_cap, l->tail_cap);
        l->tail_pos = 0;
        l->tail_len = l->tail_cap;
        return;
    }
    size_t first = l->tail_cap - l->tail_pos < n ? l->tail_cap - l->tail_pos : n;
    memcpy(l->tail + l->tail_pos, buf, first);
    memcpy(l->tail, buf + first, n - first);
    l->tail_pos = (l->tail_pos + n) % l->tail_cap;
    l->tail_len = l->tail_len + n < l->tail_cap ? l->tail_len + n : l->tail_cap;
}

static void log_take(runner_log *l, const char *buf, size_t n)
{
    uint64_t head_max = l->max - l->tail_cap;
    if (l->head < head_max) {
        size_t now = head_max - l->head < n ? (size_t)(head_max - l->head) : n;
        log_write(l, buf, now);
        l->head += now;
        l->total += now;
        buf += now;
        n -= now;
    }
    if (n == 0) {
        return;
    }
    if (!l->capped) {
        l->capped = true;
        if (l->last != '\n') {
            log_write(l, "\n", 1);
        }
        runner_say(30, false,
                   "the job's output has reached the log's limit of %llu bytes: only its last %zu bytes "
                   "are kept from here, written when the job ends",
                   (unsigned long long)l->max, l->tail_cap);
        l->last = '\n';
    }
    log_keep_tail(l, buf, n);
    l->total += n;
}

int runner_log_pump(runner_log *l)
{
    char buf[RUNNER_LOG_CHUNK];
    if (l->pipe_r < 0) {
        return -1;
    }
    ssize_t n = read(l->pipe_r, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return 0;
    }
    if (n <= 0) {
        close(l->pipe_r);
        l->pipe_r = -1;
        return -1;
    }
    log_take(l, buf, (size_t)n);
    return 1;
}

void runner_log_wait(runner_log *l, int ms)
{
    if (l->pipe_r < 0) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    struct pollfd p = {.fd = l->pipe_r, .events = POLLIN};
    if (poll(&p, 1, ms) > 0) {
        runner_log_pump(l);
    }
}

void runner_log_finish(runner_log *l)
{
    runner_log_started(l);
    if (l->pipe_r >= 0) {
        int flags = fcntl(l->pipe_r, F_GETFL);
        (void)fcntl(l->pipe_r, F_SETFL, flags | O_NONBLOCK);
        while (runner_log_pump(l) > 0) {
        }
        if (l->pipe_r >= 0) { /* nothing more now: a writer outside the job's group */
            close(l->pipe_r);
            l->pipe_r = -1;
        }
    }
    uint64_t left_out = l->total - l->head - l->tail_len;
    if (l->capped) {
        if (l->last != '\n') {
            log_write(l, "\n", 1);
        }
        runner_say(30, false,
                   "%llu bytes of the job's output were left out here (%llu in all); its last %zu follow",
                   (unsigned long long)left_out, (unsigned long long)l->total, l->tail_len);
        l->last = '\n';
    }
    if (l->tail_len > 0) {
        size_t start = l->tail_len < l->tail_cap ? 0 : l->tail_pos;
        log_write(l, l->tail + start, l->tail_len - start);
        log_write(l, l->tail, start);
    }
    free(l->tail);
    l->tail = NULL;
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}
