/* runner_orphans.c - processes a job left outside its process group; see
 * runner_orphans.h. */
#define _GNU_SOURCE
#include "runner_orphans.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ocps/sal_clock.h"
#include "runner_say.h"

/* Reap the runner's children that are not the job's leader: processes
 * of the job that left it (a daemon's setsid and double fork) and were
 * given to the runner as their subreaper, then ended. */
void runner_reap_others(pid_t leader)
{
    siginfo_t si;
    for (;;) {
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0 ||
            si.si_pid == leader) {
            return;
        }
        waitpid(si.si_pid, NULL, 0);
    }
}

/* The name (comm) of process pid into name, or "?". */
static void runner_comm(pid_t pid, char *name, size_t namelen)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL || fgets(name, (int)namelen, f) == NULL) {
        snprintf(name, namelen, "?");
    }
    name[strcspn(name, "\n")] = '\0';
    if (f != NULL) {
        fclose(f);
    }
}

/* The runner's children from /proc/self/task/<pid>/children (the runner
 * has one thread); -1 if the kernel has no such file. */
static long runner_children_fast(pid_t *pids, size_t max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)getpid());
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return -1;
    }
    size_t n = 0;
    long pid;
    while (n < max && fscanf(f, "%ld", &pid) == 1) {
        pids[n++] = (pid_t)pid;
    }
    fclose(f);
    return (long)n;
}

/* The runner's children (processes of the job that left its group and
 * were orphaned, reparented to the runner, their subreaper; zombies are
 * reaped before): up to `max` pids into pids, the first one's name into
 * name; returns how many were found. */
static size_t runner_children(pid_t *pids, size_t max, char *name, size_t namelen)
{
    long fast = runner_children_fast(pids, max);
    if (fast >= 0) {
        if (fast > 0) {
            runner_comm(pids[0], name, namelen);
        }
        return (size_t)fast;
    }
    size_t n = 0;
    DIR *d = opendir("/proc");
    if (d == NULL) {
        return 0;
    }
    long self = (long)getpid();
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9') {
            continue;
        }
        char path[300];
        char buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "re");
        if (f == NULL) {
            continue;
        }
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *open = strchr(buf, '(');
        char *close = strrchr(buf, ')');
        char state;
        long ppid;
        if (open == NULL || close == NULL || sscanf(close + 1, " %c %ld", &state, &ppid) != 2 ||
            ppid != self || state == 'Z') {
            continue;
        }
        if (n == 0 && namelen > 0) {
            snprintf(name, namelen, "%.*s", (int)(close - open - 1), open + 1);
        }
        pids[n++] = (pid_t)strtol(de->d_name, NULL, 10);
    }
    closedir(d);
    return n;
}

#define RUNNER_SWEEP_MAX 256

/* A child of the runner outside the job's group, and what it was sent. */
typedef struct runner_swept {
    pid_t pid;
    bool term;
    bool kill;
} runner_swept;

/* The runner's children outside `group` into out (their flags carried
 * over from `was`, nw entries): how many; the first one's name in name. */
static size_t runner_outside(pid_t group, const runner_swept *was, size_t nw, runner_swept *out, char *name,
                             size_t namelen)
{
    pid_t pids[RUNNER_SWEEP_MAX];
    char first[64] = "";
    size_t n = runner_children(pids, RUNNER_SWEEP_MAX, first, sizeof first);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (group > 0 && getpgid(pids[i]) == group) {
            continue; /* the group's: its leader's killpg reaches it */
        }
        out[k] = (runner_swept){.pid = pids[i]};
        for (size_t j = 0; j < nw; j++) {
            if (was[j].pid == pids[i]) {
                out[k] = was[j];
                break;
            }
        }
        if (k == 0) {
            snprintf(name, namelen, "%s", i == 0 ? first : "?");
            if (i != 0) {
                runner_comm(pids[i], name, namelen);
            }
        }
        k++;
    }
    return k;
}

void runner_sweep(pid_t group, bool group_killed, double kill_at, runner_log *log)
{
    double give_up = (kill_at > sal_clock_monotonic() ? kill_at : sal_clock_monotonic()) + 5;
    bool told = false;
    runner_swept a[RUNNER_SWEEP_MAX], b[RUNNER_SWEEP_MAX];
    runner_swept *was = a, *now_set = b;
    size_t nw = 0;
    for (;;) {
        runner_reap_others(0);
        double now = sal_clock_monotonic();
        bool due = now >= kill_at;
        bool group_left = group > 0 && killpg(group, 0) == 0; /* until its last process is reaped */
        if (group_left && due && !group_killed) {
            killpg(group, SIGKILL);
            group_killed = true;
        }
        char name[64] = "";
        size_t n = runner_outside(group, was, nw, now_set, name, sizeof name);
        if (n > 0 && !told) {
            told = true;
            runner_say(30, false,
                       "the job left %zu%s process%s running outside its process group (pid %ld, %s): "
                       "SIGTERM, SIGKILL in %.3g s",
                       n, n == RUNNER_SWEEP_MAX ? " or more" : "", n == 1 ? "" : "es", (long)now_set[0].pid,
                       name, due ? 0.0 : kill_at - now);
        }
        for (size_t i = 0; i < n; i++) {
            runner_swept *c = &now_set[i];
            if (due && !c->kill) {
                kill(c->pid, SIGKILL);
                c->kill = true;
            } else if (!due && !c->term) {
                kill(c->pid, SIGTERM);
                kill(c->pid, SIGCONT);
                c->term = true;
            }
        }
        if ((!group_left && n == 0) || now > give_up) {
            return;
        }
        runner_swept *t = was;
        was = now_set;
        now_set = t;
        nw = n;
        runner_log_wait(log, 20);
    }
}
