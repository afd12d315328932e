/*
 * engine_exec.c - runner processes (see engine_exec.h).
 */
#define _GNU_SOURCE /* POSIX_SPAWN_SETSID, posix_spawn_file_actions_addchdir_np */
#include "engine__exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ocps/sal_procstat.h"

extern char **environ;

static size_t engine_exec_array_size(const json_t *a)
{
    return json_is_array(a) ? json_array_size(a) : 0;
}

char **engine_exec_runner_argv(const engine_exec_request *req, engine_exec_numbers *nums)
{
    size_t nglobs = engine_exec_array_size(req->globs);
    size_t nargv = engine_exec_array_size(req->argv);
    size_t nthen = engine_exec_array_size(req->then);
    /* 20 fixed slots at most (with --simulate, --exit-status and --log-max), the globs, the
     * second step, argv, NULL */
    char **v = calloc(20 + 2 * nglobs + 2 * nthen + nargv + 1, sizeof *v);
    if (v == NULL) {
        return NULL;
    }
    snprintf(nums->timeout, sizeof nums->timeout, "%.3f", req->timeout > 0 ? req->timeout : 0.0);
    snprintf(nums->grace, sizeof nums->grace, "%.3f", req->grace > 0 ? req->grace : 0.0);
    snprintf(nums->max_results, sizeof nums->max_results, "%zu", req->max_results);
    snprintf(nums->log_max, sizeof nums->log_max, "%llu", (unsigned long long)req->log_max);
    size_t n = 0;
    v[n++] = (char *)req->runner;
    v[n++] = "--workdir";
    v[n++] = (char *)req->workdir;
    v[n++] = "--status";
    v[n++] = (char *)req->status_path;
    v[n++] = "--log";
    v[n++] = (char *)req->log_path;
    v[n++] = "--timeout";
    v[n++] = nums->timeout;
    v[n++] = "--grace";
    v[n++] = nums->grace;
    for (size_t i = 0; i < nglobs; i++) {
        v[n++] = "--glob";
        v[n++] = (char *)json_string_value(json_array_get(req->globs, i));
    }
    v[n++] = "--max-results";
    v[n++] = nums->max_results;
    if (req->simulate != NULL) {
        v[n++] = "--simulate";
        v[n++] = (char *)req->simulate;
    }
    if (req->exit_with_job) {
        v[n++] = "--exit-status";
        v[n++] = "job";
    }
    if (req->log_max > 0) {
        v[n++] = "--log-max";
        v[n++] = nums->log_max;
    }
    for (size_t i = 0; i < nthen; i++) {
        v[n++] = "--then";
        v[n++] = (char *)json_string_value(json_array_get(req->then, i));
    }
    v[n++] = "--";
    for (size_t i = 0; i < nargv; i++) {
        v[n++] = (char *)json_string_value(json_array_get(req->argv, i));
    }
    return v;
}

/* The runner's start: its own session, every signal unblocked and at its
 * default (the caller may be any thread, with signals blocked), stdin
 * /dev/null, stdout and stderr to logfd, in the workdir. */
static int engine_exec_attrs(posix_spawnattr_t *attr, posix_spawn_file_actions_t *fa, int logfd,
                             const char *workdir)
{
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    int rc =
        posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    rc = rc ? rc : posix_spawnattr_setsigmask(attr, &none);
    rc = rc ? rc : posix_spawnattr_setsigdefault(attr, &all);
    rc = rc ? rc : posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(fa, logfd, STDOUT_FILENO);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(fa, logfd, STDERR_FILENO);
    rc = rc ? rc : posix_spawn_file_actions_addchdir_np(fa, workdir);
    return rc;
}

int engine_exec_spawn(const engine_exec_request *req, int *pid, int *pidfd, char *err, size_t errlen)
{
    *pid = 0;
    *pidfd = -1;
    int logfd = open(req->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        int rc = -errno;
        snprintf(err, errlen, "cannot open log %s: %s", req->log_path, strerror(-rc));
        return rc;
    }
    engine_exec_numbers nums;
    char **argv = engine_exec_runner_argv(req, &nums);
    if (argv == NULL) {
        close(logfd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&fa);
    pid_t child = 0;
    int rc = engine_exec_attrs(&attr, &fa, logfd, req->workdir);
    if (rc == 0) {
        rc = posix_spawn(&child, req->runner, &fa, &attr, argv, (char *const *)req->env);
    }
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(argv);
    close(logfd);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start runner %s: %s", req->runner, strerror(rc));
        return -rc;
    }
    int fd = (int)syscall(SYS_pidfd_open, child, 0);
    if (fd < 0) { /* cannot happen for our own unreaped child, but never lose it */
        rc = -errno;
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        snprintf(err, errlen, "cannot watch runner %d: %s", (int)child, strerror(-rc));
        return rc;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    *pid = child;
    *pidfd = fd;
    return 0;
}

int engine_exec_reap(int pid, int64_t *exit_status, int *term_signal)
{
    int status = 0;
    pid_t r;
    do {
        r = waitpid(pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return -1;
    }
    if (r < 0) { /* reaped by someone else: nothing to say about it */
        *exit_status = -1;
        *term_signal = 0;
        return 0;
    }
    *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    *term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return 0;
}

void engine_exec_free_strv(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        free(v[i]);
    }
    free(v);
}

/* Does errno say nothing about the file or process asked for (this
 * process is out of descriptors or memory, or was interrupted)? */
static bool engine_exec_transient(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOMEM || err == EINTR || err == EAGAIN;
}

int engine_exec_start_time(int pid, uint64_t *start, char *state)
{
    sal_procstat ps;
    if (sal_procstat_read(pid, &ps) != 0) {
        return engine_exec_transient(errno) ? -errno : -ESRCH;
    }
    *state = ps.state;
    *start = ps.start;
    return 0;
}

int engine_exec_probe(int pid, uint64_t start)
{
    uint64_t now_start;
    char state;
    if (pid <= 0) {
        return 0;
    }
    int rc = engine_exec_start_time(pid, &now_start, &state);
    if (rc != 0) {
        return rc == -ESRCH ? 0 : rc;
    }
    if (now_start != start) {
        return 0;
    }
    if (state == 'Z' || state == 'X') {
        int status;
        waitpid(pid, &status, WNOHANG); /* ours (ECHILD otherwise): reap it */
        return 0;
    }
    return 1;
}

bool engine_exec_alive(int pid, uint64_t start)
{
    return engine_exec_probe(pid, start) == 1;
}

int engine_exec_signal(int pid, uint64_t start, int sig)
{
    uint64_t now_start;
    char state;
    /* No reaping here: the runner may be a child that libuv still watches. */
    int rc = pid > 0 ? engine_exec_start_time(pid, &now_start, &state) : -ESRCH;
    if (rc != 0) {
        return rc; /* gone (-ESRCH), or cannot tell now: not sent */
    }
    if (now_start != start) {
        return -ESRCH;
    }
    return engine_exec_kill(pid, sig);
}

int engine_exec_kill(int pid, int sig)
{
    if (kill(pid, sig) != 0) {
        return -errno;
    }
    if (sig != SIGKILL && sig != SIGCONT) {
        kill(pid, SIGCONT);
    }
    return 0;
}

int engine_exec_read_claim(const char *workdir, engine_claim *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", workdir, ENGINE_CLAIM_FILE);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int rc = errno == ENOENT ? -ENOENT : -EINVAL;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return rc;
    }
    char line[256];
    long pid;
    long sid;
    unsigned long long start;
    int ret = -EINVAL;
    snprintf(err, errlen, "bad claim file %s", path);
    while (fgets(line, sizeof line, f) != NULL && strchr(line, '\n') != NULL) { /* whole lines only */
        if (sscanf(line, "runner %ld %llu %ld", &pid, &start, &sid) == 3 && pid > 0) {
            c->runner_pid = (int)pid;
            c->runner_start = start;
            c->runner_sid = (int)sid;
            ret = 0;
        } else if (sscanf(line, "job %ld %llu", &pid, &start) == 2 && pid > 0) {
            c->job_pid = (int)pid;
            c->job_start = start;
            c->job_lines++;
        }
    }
    fclose(f);
    return ret;
}

/* Process group, session and start time of a live (not zombie) process
 * from /proc; 0 or -1. */
static int engine_exec_group_of(const char *pid, long *pgrp, long *sid, unsigned long long *start)
{
    sal_procstat ps;
    if (sal_procstat_read(strtoll(pid, NULL, 10), &ps) != 0 || ps.state == 'Z' || ps.state == 'X') {
        return -1;
    }
    *pgrp = ps.pgrp;
    *sid = ps.session;
    *start = ps.start;
    return 0;
}

/* Add pid to the set seen[0..*n) (capacity max); true if it was new. */
static bool engine_exec_first_seen(pid_t *seen, size_t *n, size_t max, pid_t pid)
{
    for (size_t i = 0; i < *n; i++) {
        if (seen[i] == pid) {
            return false;
        }
    }
    if (*n < max) {
        seen[(*n)++] = pid;
    }
    return true;
}

int engine_exec_kill_job_group(const engine_claim *c)
{
    int killed = 0; /* distinct processes: one SIGKILLed in a round may still be there in the next */
    pid_t seen[1024];
    size_t nseen = 0;
    if (c->job_pid <= 0) {
        return 0;
    }
    for (int round = 0; round < 5; round++) { /* again, for what forked meanwhile */
        int found = 0;
        DIR *d = opendir("/proc");
        struct dirent *de;
        while (d != NULL && (de = readdir(d)) != NULL) {
            long pgrp;
            long sid;
            unsigned long long start;
            if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
                engine_exec_group_of(de->d_name, &pgrp, &sid, &start) != 0) {
                continue;
            }
            pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
            if (pgrp == c->job_pid && sid == c->runner_sid && start >= c->job_start &&
                kill(pid, SIGKILL) == 0) {
                found++;
                killed += engine_exec_first_seen(seen, &nseen, sizeof seen / sizeof seen[0], pid) ? 1 : 0;
            }
        }
        if (d != NULL) {
            closedir(d);
        }
        if (found == 0) {
            break;
        }
    }
    return killed;
}

static bool engine_exec_get_bool(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

int engine_exec_read_status(const char *path, engine_status *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int why = errno;
        snprintf(err, errlen, "%s status file %s: %s", why == ENOENT ? "no" : "cannot open the", path,
                 strerror(why));
        return why == ENOENT ? -ENOENT : engine_exec_transient(why) ? -EAGAIN : -EINVAL;
    }
    json_error_t jerr;
    json_t *o = json_loadf(f, 0, &jerr);
    fclose(f);
    if (!json_is_object(o) || !json_is_integer(json_object_get(o, "exit_code"))) {
        snprintf(err, errlen, "bad status file %s: %s", path, o == NULL ? jerr.text : "no exit_code");
        json_decref(o);
        return -EINVAL;
    }
    st->exit_code = (int)json_integer_value(json_object_get(o, "exit_code"));
    st->signal = (int)json_integer_value(json_object_get(o, "signal"));
    st->aborted = engine_exec_get_bool(o, "aborted");
    st->timed_out = engine_exec_get_bool(o, "timed_out");
    const char *se = json_string_value(json_object_get(o, "spawn_error"));
    snprintf(st->spawn_error, sizeof st->spawn_error, "%s", se != NULL ? se : "");
    st->started = json_number_value(json_object_get(o, "started"));
    st->ended = json_number_value(json_object_get(o, "ended"));
    st->job_pid = (int)json_integer_value(json_object_get(o, "job_pid"));
    json_t *rss = json_object_get(o, "max_rss_kb");
    st->max_rss_kb = json_is_integer(rss) ? (long long)json_integer_value(rss) : -1;
    json_t *results = json_object_get(o, "results");
    st->results = json_is_array(results) ? json_incref(results) : json_array();
    st->results_total = (size_t)json_integer_value(json_object_get(o, "results_total"));
    st->results_truncated = engine_exec_get_bool(o, "results_truncated");
    st->step = (int)json_integer_value(json_object_get(o, "step"));
    st->steps = (int)json_integer_value(json_object_get(o, "steps"));
    json_decref(o);
    return 0;
}

void engine_status_clear(engine_status *st)
{
    json_decref(st->results);
    st->results = NULL;
}
