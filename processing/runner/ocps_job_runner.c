/*
 * ocps-job-runner - the supervisor of one OCPS job (see processing/engine.h).
 *
 *   ocps-job-runner --workdir DIR --status FILE --log FILE --timeout SECONDS
 *                   --grace SECONDS [--glob PATTERN]... [--max-results N]
 *                   [--simulate SECONDS:CODE] [--log-max BYTES]
 *                   [--then ARG]... -- ARGV...
 *
 * Starts ARGV (PATH lookup, never a shell) in its own process group,
 * working directory DIR, stdin /dev/null, stdout and stderr appended to the
 * log file (through the runner, bounded, with --log-max: runner_log.h) and
 * the inherited environment; the job's process is killed
 * (PR_SET_PDEATHSIG) if the runner dies. On SIGTERM, or
 * when --timeout seconds (0: no limit) have passed, it sends SIGTERM to the
 * job's process group and SIGKILL --grace seconds later. When the job has
 * ended it lists the files matching the globs (relative to DIR; only those
 * whose real path is inside DIR, see runner_collect) and writes
 * FILE atomically (FILE.tmp, rename) as JSON (with max_rss_kb: wait4's
 * ru_maxrss of the job, see runner_supervise), then exits 0 (with
 * --exit-status job: with the job's exit code, 128+signal if killed, and
 * never 0 if it was aborted, timed out or not started, so a batch system
 * such as Slurm sees the job's outcome: runner_exit_status).
 *
 * With --then (one per word), the job has a second step: once ARGV has
 * exited 0 (not aborted, not timed out), the words given with --then are
 * run as a second command, exactly as ARGV was (its own process group, the
 * same log, working directory and environment, the rest of the --timeout,
 * its "job PID STARTTIME" line added to the claim, which the engine
 * follows), and the job's outcome is the second step's: a step that fails
 * fails the job (its exit code; status.json's "step" says which step ended
 * the job, "steps" how many it has). An abort (SIGTERM) while the first
 * step runs, or between the steps, runs no second step. The globs are
 * matched after the last step that ran. (The OCPS: pipetask run, then
 * butler retrieve-artifacts of the run's outputs into the directory.)
 *
 * Exactly one runner runs a job: before anything else the runner claims
 * the job by creating DIR/runner.claim exclusively (a complete file, linked
 * into place, so it never appears half written), with the line
 * "runner PID STARTTIME SID" (STARTTIME: /proc/<pid>/stat field 22), and
 * later "job PID STARTTIME" once the job runs. A runner that finds the job
 * already claimed says so on stderr (the job's log), leaves status.json
 * alone and exits with status 3; the engine then follows the claim's
 * runner instead (processing/engine_run.c).
 *
 * The runner ignores SIGHUP, SIGINT and SIGPIPE so that it outlives the
 * CSC. SIGTERM and SIGCHLD are blocked and taken synchronously with
 * sigtimedwait(), so there is no signal handler and no global state.
 */
#define _GNU_SOURCE /* close_range, pipe2 */

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <glob.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ocps/sal_procstat.h"
#include "ocps/sal_clock.h"
#include "runner_log.h"
#include "runner_orphans.h"
#include "runner_say.h"

extern char **environ;

/* The claim file in the job's directory, and the exit status of a runner
 * that found the job claimed by another (both known to engine__exec.h). */
#define RUNNER_CLAIM_FILE "runner.claim"
#define RUNNER_SLURM_SCRIPT "ocps-slurm.sh" /* engine_slurm.c's ENGINE_SLURM_SCRIPT */
#define RUNNER_EXIT_CLAIMED 3
/* Exit statuses of a runner that could not make the job's claim or
 * reserve its status file, so the job did not run: no space (ENOSPC,
 * EDQUOT), or another error (said on stderr, the job's log). */
#define RUNNER_EXIT_NO_SPACE 4
#define RUNNER_EXIT_SETUP 5
/* Bytes reserved for the status file before the job runs: an outcome
 * without its results list always fits, however full the disk gets. */
#define RUNNER_STATUS_RESERVE 16384

/* Command line. Strings point into argv. */
typedef struct runner_args {
    const char *workdir;
    const char *status;
    const char *log;
    double timeout; /* seconds; <= 0: none */
    double grace;   /* seconds between SIGTERM and SIGKILL */
    const char **globs;
    size_t nglobs;
    size_t max_results;
    bool simulate;
    double sim_seconds;
    int sim_code;
    bool exit_with_job;         /* --exit-status job: exit with the job's code (batch systems) */
    unsigned long long log_max; /* --log-max: bytes of the job's output kept in its log; 0 all */
    char **job_argv;
    char **then_argv; /* --then words, NULL-terminated (empty: one step only) */
    size_t nthen;
} runner_args;

/* Outcome, written to the status file. */
typedef struct runner_outcome {
    int exit_code;
    int signal;
    bool aborted;
    bool timed_out;
    char spawn_error[512];
    int claim_error; /* the job's line could not be written to the claim: the job did not run */
    double started;
    double ended;
    pid_t job_pid;
    long max_rss_kb; /* wait4's ru_maxrss of the job (kB), -1 unknown */
    char **results;
    size_t nresults;
    size_t results_total;
    bool truncated;
    int step;          /* the step that ended the job (1-based) */
    int steps;         /* the job's steps (1, or 2 with --then) */
    uint64_t log_kept; /* --log-max: bytes of the first step's output its log kept */
} runner_outcome;

/* Supervision state of the running job (pid 0 when simulating). */
typedef struct runner_watch {
    pid_t pid;
    double timeout_at; /* monotonic; 0: none */
    double sim_end_at; /* monotonic; simulation only */
    bool term_sent;
    bool kill_sent;
    double kill_at;
    bool done;
    int wstatus;
    struct rusage usage; /* the job's, from wait4 */
} runner_watch;

static double runner_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void runner_usage(void)
{
    fprintf(stderr, "usage: ocps-job-runner --workdir DIR --status FILE --log FILE --timeout SECONDS "
                    "--grace SECONDS [--glob PATTERN]... [--max-results N] [--simulate SECONDS:CODE] "
                    "[--exit-status status|job] [--log-max BYTES] [--then ARG]... -- ARGV...\n");
}

static int runner_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

static int runner_parse_simulate(runner_args *a, const char *s)
{
    char *end;
    errno = 0;
    a->sim_seconds = strtod(s, &end);
    if (errno != 0 || end == s || *end != ':' || !isfinite(a->sim_seconds) || a->sim_seconds < 0) {
        return -1;
    }
    const char *code = end + 1;
    long c = strtol(code, &end, 10);
    if (end == code || *end != '\0' || c < 0 || c > 255) {
        return -1;
    }
    a->sim_code = (int)c;
    a->simulate = true;
    return 0;
}

static int runner_parse_count(const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        return -1;
    }
    *out = n;
    return 0;
}

/* One option with a value; returns 0, or -1 on a bad value or option. */
static int runner_parse_option(runner_args *a, const char *opt, const char *val)
{
    if (strcmp(opt, "--workdir") == 0) {
        a->workdir = val;
    } else if (strcmp(opt, "--status") == 0) {
        a->status = val;
    } else if (strcmp(opt, "--log") == 0) {
        a->log = val;
    } else if (strcmp(opt, "--timeout") == 0) {
        return runner_parse_double(val, &a->timeout);
    } else if (strcmp(opt, "--grace") == 0) {
        return runner_parse_double(val, &a->grace);
    } else if (strcmp(opt, "--glob") == 0) {
        a->globs[a->nglobs++] = val;
    } else if (strcmp(opt, "--then") == 0) {
        a->then_argv[a->nthen++] = (char *)val;
    } else if (strcmp(opt, "--max-results") == 0) {
        unsigned long long n;
        if (runner_parse_count(val, &n) != 0) {
            return -1;
        }
        a->max_results = (size_t)n;
    } else if (strcmp(opt, "--log-max") == 0) {
        return runner_parse_count(val, &a->log_max);
    } else if (strcmp(opt, "--simulate") == 0) {
        return runner_parse_simulate(a, val);
    } else if (strcmp(opt, "--exit-status") == 0) {
        if (strcmp(val, "job") != 0 && strcmp(val, "status") != 0) {
            return -1;
        }
        a->exit_with_job = strcmp(val, "job") == 0;
    } else {
        return -1;
    }
    return 0;
}

/* Parse argv; a->globs and a->then_argv are malloc'd (freed by the
 * caller). */
static int runner_parse(runner_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->max_results = 1000;
    a->globs = calloc((size_t)argc, sizeof *a->globs);
    a->then_argv = calloc((size_t)argc + 1, sizeof *a->then_argv);
    if (a->globs == NULL || a->then_argv == NULL) {
        return -1;
    }
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (i + 1 >= argc || runner_parse_option(a, argv[i], argv[i + 1]) != 0) {
            fprintf(stderr, "ocps-job-runner: bad option or value: %s\n", argv[i]);
            return -1;
        }
    }
    if (i < argc) {
        a->job_argv = &argv[i + 1];
    }
    if (a->workdir == NULL || a->status == NULL || a->log == NULL) {
        fprintf(stderr, "ocps-job-runner: --workdir, --status and --log are required\n");
        return -1;
    }
    if (!a->simulate && (a->job_argv == NULL || a->job_argv[0] == NULL)) {
        fprintf(stderr, "ocps-job-runner: nothing to run after --\n");
        return -1;
    }
    if (a->grace < 0) {
        a->grace = 0;
    }
    return 0;
}

/* Block SIGTERM and SIGCHLD (taken with sigtimedwait); ignore the others
 * that could end the runner when its parent or terminal goes away. */
static void runner_setup_signals(sigset_t *waitset)
{
    sigemptyset(waitset);
    sigaddset(waitset, SIGTERM);
    sigaddset(waitset, SIGCHLD);
    sigprocmask(SIG_BLOCK, waitset, NULL);
    signal(SIGCHLD, SIG_DFL); /* an ignored SIGCHLD (inherited) would reap the job unseen */
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
}

/* In the job's process, between fork and exec: its own process group,
 * death with the runner, default signal mask and dispositions, cwd, stdin
 * /dev/null, stdout and stderr to logfd, no other descriptor kept. Writes
 * errno to errfd (close-on-exec) if it cannot exec. Never returns. */
static void runner_exec_job(const runner_args *a, int logfd, int errfd, pid_t runner)
{
    int err = 0;
    setpgid(0, 0);
    /* A SIGKILLed runner cannot stop its job: the job's leader gets SIGKILL
     * when the runner dies (the engine kills the rest of the group). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != runner) {
        _exit(127); /* the runner is already gone */
    }
    static const int defaults[] = {SIGHUP, SIGINT, SIGPIPE, SIGTERM, SIGCHLD};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        signal(defaults[i], SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int nullfd = -1;
    if (chdir(a->workdir) != 0 || (nullfd = open("/dev/null", O_RDONLY)) < 0 ||
        (nullfd != 0 && dup2(nullfd, 0) < 0) || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0) {
        err = errno;
    } else {
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC); /* errfd stays open until exec */
        execvp(a->job_argv[0], a->job_argv);
        err = errno;
    }
    while (write(errfd, &err, sizeof err) < 0 && errno == EINTR) {
    }
    _exit(127);
}

static unsigned long long runner_start_time(pid_t pid);

/* Write all of line to fd (EINTR retried); 0, or an errno value. */
static int runner_write_line(int fd, const char *line)
{
    size_t n = strlen(line);
    while (n > 0) {
        ssize_t w = write(fd, line, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return w < 0 ? errno : EIO;
        }
        line += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Add the job's line to the claim: its pid, start time and process group
 * (its pid), so that a group left behind by a killed runner can be found.
 * 0, or an errno value (the job must not run then). */
static int runner_claim_job(int claimfd, pid_t job)
{
    char line[128];
    snprintf(line, sizeof line, "job %ld %llu\n", (long)job, runner_start_time(job));
    return runner_write_line(claimfd, line);
}

/* fork the job (runner_exec_job); 0, or an errno value. The job's line
 * is in the claim before the job may run (it waits on `go`), so an engine
 * that finds this runner dead knows the job started and which process
 * group to stop, however soon the runner died. */
static int runner_fork_job(const runner_args *a, int logfd, int claimfd, pid_t *pid, int *claim_error)
{
    int pipefd[2];
    int go[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        return errno;
    }
    if (pipe2(go, O_CLOEXEC) != 0) {
        int err = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return err;
    }
    pid_t runner = getpid();
    *pid = fork();
    if (*pid == 0) {
        close(pipefd[0]);
        close(go[1]);
        char c;
        ssize_t n;
        while ((n = read(go[0], &c, 1)) < 0 && errno == EINTR) {
        }
        if (n != 1) {
            _exit(127); /* the runner died before it let the job go */
        }
        runner_exec_job(a, logfd, pipefd[1], runner);
    }
    int rc = *pid < 0 ? errno : 0;
    close(pipefd[1]);
    close(go[0]);
    int claimed = 0;
    if (*pid > 0) {
        setpgid(*pid, *pid); /* also here, so that it holds before killpg (EACCES once it ran exec) */
        claimed = runner_claim_job(claimfd, *pid);
        while (claimed == 0 && write(go[1], "g", 1) < 0 && errno == EINTR) {
        }
    }
    close(go[1]); /* without a "g": the child exits 127 without running the job */
    if (*pid > 0 && claimed != 0) {
        waitpid(*pid, NULL, 0);
        rc = claimed;
        *claim_error = claimed;
    } else if (*pid > 0) {
        int err = 0;
        ssize_t n;
        while ((n = read(pipefd[0], &err, sizeof err)) < 0 && errno == EINTR) {
        }
        if (n == (ssize_t)sizeof err) { /* it could not exec */
            waitpid(*pid, NULL, 0);
            rc = err != 0 ? err : EIO;
        }
    }
    close(pipefd[0]);
    return rc;
}

/* Start the job, its output into `log` (opened here); returns 0, or an
 * errno value with a message in out. */
static int runner_start_job(const runner_args *a, int claimfd, runner_log *log, runner_outcome *out)
{
    int rc = runner_log_open(log, a->log, a->log_max, out->spawn_error, sizeof out->spawn_error);
    if (rc != 0) {
        return rc;
    }
    rc = runner_fork_job(a, runner_log_job_fd(log), claimfd, &out->job_pid, &out->claim_error);
    runner_log_started(log);
    if (rc != 0) {
        out->job_pid = 0;
        snprintf(out->spawn_error, sizeof out->spawn_error, "cannot start %s in %s: %s", a->job_argv[0],
                 a->workdir, strerror(rc));
    }
    return rc;
}

/* SIGTERM to the job (its whole group), SIGKILL after the grace period. */
static void runner_terminate(runner_watch *w, double grace)
{
    if (w->term_sent) {
        return;
    }
    w->term_sent = true;
    w->kill_at = sal_clock_monotonic() + grace;
    if (w->pid > 0) {
        killpg(w->pid, SIGTERM);
        killpg(w->pid, SIGCONT); /* a stopped job would hold the SIGTERM */
    } else {
        w->done = true; /* a simulation ends at once */
        w->wstatus = SIGTERM;
    }
}

/* Wait until the nearest deadline for a signal of `set` (blocked; sigfd
 * its signalfd, or -1: looked at every 50 ms) or the job's output (log);
 * takes what came: returns the signal, or 0. */
static int runner_wait(const sigset_t *set, int sigfd, runner_log *log, const runner_watch *w)
{
    double next = 0;
    if (w->timeout_at > 0 && !w->term_sent) {
        next = w->timeout_at;
    }
    if (w->term_sent && !w->kill_sent && w->pid > 0 && (next == 0 || w->kill_at < next)) {
        next = w->kill_at;
    }
    if (w->pid == 0 && (next == 0 || w->sim_end_at < next)) {
        next = w->sim_end_at;
    }
    int timeout = -1;
    if (next > 0) {
        double left = next - sal_clock_monotonic();
        if (left <= 0) {
            return 0;
        }
        timeout = left > 86400 ? 86400 * 1000 : (int)ceil(left * 1000);
    }
    if (sigfd < 0 && (timeout < 0 || timeout > 50)) {
        timeout = 50;
    }
    struct pollfd p[2] = {{.fd = sigfd, .events = POLLIN}, {.fd = log->pipe_r, .events = POLLIN}};
    (void)poll(p, 2, timeout); /* a negative fd is left out */
    if (p[1].revents != 0) {
        runner_log_pump(log);
    }
    struct timespec now = {0, 0};
    int sig = sigtimedwait(set, NULL, &now); /* the signal sigfd shows, if any */
    return sig < 0 ? 0 : sig;
}

/* After any wake-up: reap the job when a child has ended (chld: a SIGCHLD
 * was taken; a wake-up for the job's output alone costs no wait), apply
 * the deadlines. */
static void runner_check(runner_watch *w, runner_outcome *out, double grace, bool chld)
{
    if (chld) {
        runner_reap_others(w->done ? 0 : w->pid);
    }
    if (chld && w->pid > 0 && !w->done && wait4(w->pid, &w->wstatus, WNOHANG, &w->usage) == w->pid) {
        w->done = true;
        return;
    }
    double now = sal_clock_monotonic();
    if (!w->term_sent && w->timeout_at > 0 && now >= w->timeout_at) {
        out->timed_out = true;
        runner_terminate(w, grace);
    }
    if (w->pid > 0 && w->term_sent && !w->kill_sent && now >= w->kill_at) {
        killpg(w->pid, SIGKILL);
        w->kill_sent = true;
    }
    if (w->pid == 0 && !w->done && now >= w->sim_end_at) {
        w->done = true;
    }
}

/* Once the leader has ended, nothing of the job may outlive it (as a
 * Kubernetes Job's pod ends with its main container): after a SIGTERM the
 * rest of its group and what left the group have until the grace
 * deadline, then SIGKILL; a leader that ended by itself leaving processes
 * (a background child, a daemon) gets them SIGTERM, and SIGKILL after the
 * grace period. */
static void runner_end_leftovers(runner_watch *w, double grace, runner_log *log)
{
    if (w->pid <= 0) {
        return;
    }
    double kill_at = w->kill_sent ? 0 : w->kill_at; /* already SIGKILLed: what left the group is due too */
    if (!w->term_sent) {
        kill_at = sal_clock_monotonic() + grace;
        if (killpg(w->pid, 0) == 0) {
            runner_say(30, false, "the job ended leaving processes in its group: SIGTERM, SIGKILL after %g s",
                       grace);
            killpg(w->pid, SIGTERM);
            killpg(w->pid, SIGCONT);
        }
    }
    runner_sweep(w->pid, w->kill_sent, kill_at, log);
}

static void runner_supervise(const runner_args *a, const sigset_t *set, runner_log *log, runner_outcome *out)
{
    runner_watch w = {.pid = out->job_pid};
    int sigfd = signalfd(-1, set, SFD_CLOEXEC);
    double now = sal_clock_monotonic();
    if (a->timeout > 0) {
        w.timeout_at = now + a->timeout;
    }
    w.sim_end_at = now + a->sim_seconds;
    while (!w.done) {
        int sig = runner_wait(set, sigfd, log, &w);
        if (sig == SIGTERM && !out->timed_out) {
            out->aborted = true;
            runner_terminate(&w, a->grace);
        }
        runner_check(&w, out, a->grace, sig == SIGCHLD);
    }
    if (sigfd >= 0) {
        close(sigfd);
    }
    runner_end_leftovers(&w, a->grace, log);
    runner_log_finish(log); /* the rest of the output, once nothing of the job is left */
    /* wait4's usage of a child is getrusage(RUSAGE_BOTH) of it: ru_maxrss
     * is the largest resident set of one process, the job's or one of its
     * descendants that were waited for inside the job (not a sum) */
    out->max_rss_kb = w.pid > 0 ? w.usage.ru_maxrss : -1;
    if (w.pid == 0) { /* simulation: wstatus is the signal that ended it, if any */
        out->signal = w.wstatus;
        out->exit_code = w.wstatus != 0 ? 128 + w.wstatus : a->sim_code;
    } else if (WIFSIGNALED(w.wstatus)) {
        out->signal = WTERMSIG(w.wstatus);
        out->exit_code = 128 + out->signal;
    } else {
        out->exit_code = WEXITSTATUS(w.wstatus);
    }
}

static int runner_add_result(runner_outcome *out, const char *workdir, const char *rel, size_t max)
{
    out->results_total++;
    if (out->nresults >= max) {
        out->truncated = true;
        return 0;
    }
    size_t len = strlen(workdir) + strlen(rel) + 2;
    char *p = malloc(len);
    if (p == NULL) {
        return -1;
    }
    snprintf(p, len, "%s/%s", workdir, rel);
    out->results[out->nresults++] = p;
    return 0;
}

/* Is the resolved path `real` strictly inside the resolved directory `root`? */
static bool runner_inside(const char *root, const char *real)
{
    size_t n = strlen(root);
    if (n > 0 && root[n - 1] == '/') { /* root is "/" */
        n--;
    }
    return strncmp(real, root, n) == 0 && real[n] == '/' && real[n + 1] != '\0';
}

/* Is `real` (resolved, inside root) one of the runner's own files in the
 * job's directory: its claim (and the claim's temporary link), its status
 * file (and its temporary), the Slurm executor's batch script that started
 * it (engine_slurm.c)? Those are not the job's outputs. */
static bool runner_own_file(const runner_args *a, const char *root, const char *real)
{
    size_t n = strlen(root);
    const char *name = real + n + (root[n - 1] == '/' ? 0 : 1);
    if (strchr(name, '/') != NULL) {
        return false; /* not at the top of the job's directory */
    }
    const char *status = strrchr(a->status, '/') != NULL ? strrchr(a->status, '/') + 1 : a->status;
    size_t claim = strlen(RUNNER_CLAIM_FILE);
    size_t slen = strlen(status);
    return strcmp(name, RUNNER_SLURM_SCRIPT) == 0 ||
           (strncmp(name, RUNNER_CLAIM_FILE, claim) == 0 && (name[claim] == '\0' || name[claim] == '.')) ||
           (strncmp(name, status, slen) == 0 && (name[slen] == '\0' || strcmp(name + slen, ".tmp") == 0));
}

/* Match the globs relative to the workdir (the runner chdirs there). Only
 * matches whose real path (every symlink and ".." resolved) is inside the
 * workdir are listed or counted: a pattern with "..", ".*" or an absolute
 * path, or a symlink to a file or directory outside, captures nothing
 * outside. */
static void runner_collect(const runner_args *a, runner_outcome *out)
{
    if (a->nglobs == 0 || chdir(a->workdir) != 0) {
        return;
    }
    char *root = realpath(".", NULL);
    out->results = calloc(a->max_results + 1, sizeof *out->results);
    if (root == NULL || out->results == NULL) {
        free(root);
        return;
    }
    for (size_t i = 0; i < a->nglobs; i++) {
        glob_t g;
        memset(&g, 0, sizeof g);
        if (glob(a->globs[i], 0, NULL, &g) == 0) {
            for (size_t j = 0; j < g.gl_pathc; j++) {
                char *real = realpath(g.gl_pathv[j], NULL);
                if (real != NULL && runner_inside(root, real) && !runner_own_file(a, root, real)) {
                    runner_add_result(out, a->workdir, g.gl_pathv[j], a->max_results);
                }
                free(real);
            }
        }
        globfree(&g);
    }
    free(root);
}

static void runner_json_body(FILE *f, const runner_outcome *o)
{
    fprintf(f, "{\"exit_code\": %d, \"signal\": %d, \"aborted\": %s, \"timed_out\": %s, \"spawn_error\": ",
            o->exit_code, o->signal, o->aborted ? "true" : "false", o->timed_out ? "true" : "false");
    runner_json_string(f, o->spawn_error);
    fprintf(f, ", \"started\": %.6f, \"ended\": %.6f, \"job_pid\": %ld, \"max_rss_kb\": %ld, \"results\": [",
            o->started, o->ended, (long)o->job_pid, o->max_rss_kb);
    for (size_t i = 0; i < o->nresults; i++) {
        fputs(i > 0 ? ", " : "", f);
        runner_json_string(f, o->results[i]);
    }
    fprintf(f, "], \"results_total\": %zu, \"results_truncated\": %s, \"step\": %d, \"steps\": %d}\n",
            o->results_total, o->truncated ? "true" : "false", o->step, o->steps);
}

/* Reserve the status file's space before the job runs: FILE.tmp with
 * RUNNER_STATUS_RESERVE bytes allocated, later overwritten in place by
 * runner_write_status. 0, or an errno value (reason on stderr). */
static int runner_reserve_status(const char *path)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? errno : posix_fallocate(fd, 0, RUNNER_STATUS_RESERVE);
    if (fd >= 0) {
        close(fd);
    }
    if (rc != 0) {
        runner_say(40, false, "cannot reserve %s: %s", tmp, strerror(rc));
        unlink(tmp);
    }
    return rc;
}

/* The outcome as JSON at the start of fd, cut to its length; with_results
 * false leaves the list out (counted, marked truncated). 0 or -1 (errno). */
static int runner_status_body(int fd, const runner_outcome *o, bool with_results)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m == NULL) {
        return -1;
    }
    runner_outcome shown = *o;
    if (!with_results) {
        shown.nresults = 0;
        shown.truncated = o->results_total > 0;
    }
    runner_json_body(m, &shown);
    if (fclose(m) != 0) {
        free(text);
        return -1;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, text + done, len - done, (off_t)done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            free(text);
            errno = w < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)w;
    }
    free(text);
    return ftruncate(fd, (off_t)len);
}

/* Write the status file atomically (FILE.tmp, reserved before the job ran,
 * then rename): with its results list, or without it when the disk has no
 * room for it. Returns 0 or -1 (reason on stderr). */
static int runner_write_status(const char *path, const runner_outcome *o)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        runner_say(40, false, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    /* no fsync: the file survives the runner and the CSC crashing, as
     * the job store's commits do (SQLite WAL, synchronous=NORMAL); a
     * power loss ends the job's processes anyway, and a job without
     * its status file is then reported lost */
    int rc = runner_status_body(fd, o, true);
    if (rc != 0 && (errno == ENOSPC || errno == EDQUOT) && o->nresults > 0) {
        runner_say(30, false, "no room for the list of the job's %zu results in %s: written without it",
                   o->results_total, tmp);
        rc = runner_status_body(fd, o, false);
    }
    int err = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        err = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        err = errno;
    }
    if (rc != 0) {
        runner_say(40, false, "cannot write %s: %s", path, strerror(err));
        unlink(tmp);
    }
    return rc;
}

/* The start time of pid (/proc/<pid>/stat field 22, clock ticks after
 * boot), or 0. */
static unsigned long long runner_start_time(pid_t pid)
{
    sal_procstat ps;
    return sal_procstat_read(pid, &ps) == 0 ? ps.start : 0;
}

/* Test hook: OCPS_RUNNER_TEST_CLAIM_DELAY=<seconds> waits before claiming,
 * so that a test can start a second runner for the same job meanwhile. */
static void runner_test_claim_delay(void)
{
    const char *d = getenv("OCPS_RUNNER_TEST_CLAIM_DELAY");
    double secs = d != NULL ? strtod(d, NULL) : 0;
    if (secs > 0) {
        struct timespec ts = {.tv_sec = (time_t)secs, .tv_nsec = (long)((secs - floor(secs)) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* Claim the job (see the top of this file). Returns the claim's descriptor
 * (kept open to add the job's line), -RUNNER_EXIT_CLAIMED if another runner
 * holds it, or -1 on an error with its errno value in *error (both
 * explained on stderr). */
static int runner_claim(const char *workdir, int *error)
{
    char claim[4096];
    char tmp[4200];
    pid_t self = getpid();
    if (snprintf(claim, sizeof claim, "%s/%s", workdir, RUNNER_CLAIM_FILE) >= (int)sizeof claim) {
        runner_say(40, false, "working directory path too long");
        *error = ENAMETOOLONG;
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.%ld", claim, (long)self);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        *error = errno;
        runner_say(40, false, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    char line[128];
    snprintf(line, sizeof line, "runner %ld %llu %ld\n", (long)self, runner_start_time(self),
             (long)getsid(0));
    int err = runner_write_line(fd, line);
    int rc = err == 0 ? link(tmp, claim) : -1;
    err = err != 0 ? err : errno;
    unlink(tmp);
    if (rc == 0) {
        return fd;
    }
    close(fd);
    if (err != EEXIST) {
        *error = err;
        runner_say(40, false, "cannot create %s: %s", claim, strerror(err));
        return -1;
    }
    long holder = 0;
    FILE *f = fopen(claim, "re");
    if (f != NULL) {
        if (fscanf(f, "runner %ld", &holder) != 1) {
            holder = 0;
        }
        fclose(f);
    }
    runner_say(30, true,
               "not running the job of %s: it is already claimed by runner %ld (%s); "
               "its status file is left alone",
               workdir, holder, claim);
    return -RUNNER_EXIT_CLAIMED;
}

static void runner_outcome_free(runner_outcome *o)
{
    for (size_t i = 0; i < o->nresults; i++) {
        free(o->results[i]);
    }
    free(o->results);
}

/* The exit status of a runner that could not prepare the job (errno
 * error), which therefore did not run. */
static int runner_setup_exit(int error)
{
    return error == ENOSPC || error == EDQUOT ? RUNNER_EXIT_NO_SPACE : RUNNER_EXIT_SETUP;
}

/* The runner's exit status once the job has ended: 1 if its status could
 * not be written (`written` non-zero); as runner_setup_exit if the job's
 * line could not be added to the claim in its first step (the job did not
 * run; in the second, the first did, as its status says); else 0, or
 * with --exit-status job the job's own, never 0 for a job that was
 * aborted, timed out or could not start whatever its program returned
 * (128+SIGTERM then, or 1): Slurm's afterok must not take it for a success. */
static int runner_exit_status(const runner_args *a, const runner_outcome *out, int written)
{
    if (written != 0) {
        return 1;
    }
    if (out->claim_error != 0 && out->step == 1) {
        return runner_setup_exit(out->claim_error);
    }
    if (!a->exit_with_job) {
        return 0;
    }
    int code = out->exit_code >= 0 && out->exit_code <= 255 ? out->exit_code : 1;
    bool failed = out->aborted || out->timed_out || out->spawn_error[0] != '\0';
    if (failed && code == 0) {
        code = out->spawn_error[0] != '\0' ? 1 : 128 + SIGTERM; /* it was stopped by the runner's SIGTERM */
    }
    return code;
}

/* Has a SIGTERM come that nobody took yet (blocked, pending)? Takes it. */
static bool runner_sigterm_pending(void)
{
    sigset_t pending;
    sigemptyset(&pending);
    if (sigpending(&pending) != 0 || !sigismember(&pending, SIGTERM)) {
        return false;
    }
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    struct timespec now = {0, 0};
    return sigtimedwait(&term, NULL, &now) == SIGTERM;
}

/* The --log-max of a job's first step: with a second step, the limit less
 * a reserve (a quarter, at most 1 MiB) that the second always has, so that
 * a verbose first step leaves room for the retrieval's error. */
static unsigned long long runner_first_step_log_max(const runner_args *a)
{
    if (a->nthen == 0 || a->log_max < 2) {
        return a->log_max;
    }
    unsigned long long reserve = a->log_max / 4 < (1ULL << 20) ? a->log_max / 4 : 1ULL << 20;
    return a->log_max - (reserve > 0 ? reserve : 1);
}

/* The second step (--then) of a job whose first step succeeded: run and
 * supervised as the first, within what is left of the timeout; the
 * outcome becomes the second step's (the larger max_rss_kb of the two). */
static void runner_then(const runner_args *a, const sigset_t *set, int claimfd, double mono_started,
                        runner_outcome *out)
{
    bool succeeded = out->exit_code == 0 && out->signal == 0 && !out->aborted && !out->timed_out &&
                     out->spawn_error[0] == '\0' && out->claim_error == 0;
    if (a->nthen == 0 || a->simulate || !succeeded) {
        return;
    }
    if (runner_sigterm_pending()) { /* aborted between the steps: the second does not start */
        out->aborted = true;
        out->exit_code = 128 + SIGTERM;
        out->signal = SIGTERM;
        out->step = 2;
        runner_say(30, false, "step 1 of 2 (%s) completed; aborted before step 2 (%s)", a->job_argv[0],
                   a->then_argv[0]);
        return;
    }
    runner_args second = *a;
    second.job_argv = a->then_argv;
    if (a->log_max > 0) { /* --log-max bounds both steps' output together (at least the reserve) */
        second.log_max = a->log_max > out->log_kept ? a->log_max - out->log_kept : 1;
    }
    if (a->timeout > 0) {
        second.timeout = a->timeout - (sal_clock_monotonic() - mono_started);
        if (second.timeout <= 0) {
            second.timeout = 1e-3; /* past it already: the second step is stopped at once */
        }
    }
    runner_say(20, false, "step 1 of 2 (%s) completed; step 2: %s", a->job_argv[0], a->then_argv[0]);
    long first_rss = out->max_rss_kb;
    out->step = 2;
    out->exit_code = 0;
    runner_log log = {.fd = -1, .pipe_r = -1, .pipe_w = -1};
    if (runner_start_job(&second, claimfd, &log, out) == 0) {
        runner_supervise(&second, set, &log, out);
    } else {
        runner_log_finish(&log);
        out->exit_code = 127;
        runner_say(40, false, "step 2 of 2: %s", out->spawn_error);
    }
    if (first_rss > out->max_rss_kb) {
        out->max_rss_kb = first_rss;
    }
}

/* Close every descriptor inherited above stderr: the CSC's (Cyclone's UDP
 * sockets, the job store, Kafka connections) carry no CLOEXEC flag, and a
 * runner outlives the CSC, so it would keep the CSC's ports bound and pass
 * them on to the job. */
static void runner_close_inherited(void)
{
    close_range(3, ~0U, 0);
}

int main(int argc, char **argv)
{
    runner_close_inherited();
    runner_args a;
    if (runner_parse(&a, argc, argv) != 0) {
        runner_usage();
        free(a.globs);
        free(a.then_argv);
        return 2;
    }
    sigset_t waitset;
    runner_setup_signals(&waitset);
    /* the job's orphans (daemons) become the runner's: runner_sweep */
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1);
    runner_test_claim_delay();
    int error = 0;
    int claimfd = runner_claim(a.workdir, &error);
    if (claimfd < 0) {
        free(a.globs);
        free(a.then_argv);
        return claimfd == -RUNNER_EXIT_CLAIMED ? RUNNER_EXIT_CLAIMED : runner_setup_exit(error);
    }
    unlink(a.status); /* the job is ours: a status file there is stale */
    error = runner_reserve_status(a.status);
    if (error != 0) {
        close(claimfd);
        free(a.globs);
        free(a.then_argv);
        return runner_setup_exit(error); /* the claim stays: this runner had the job, which did not run */
    }
    runner_outcome out = {
        .started = runner_wall(), .max_rss_kb = -1, .step = 1, .steps = a.nthen > 0 ? 2 : 1};
    /* ended is started plus the monotonic clock's duration: a step of the
     * wall clock while the job runs does not change executionDuration */
    double mono_started = sal_clock_monotonic();
    runner_log log = {.fd = -1, .pipe_r = -1, .pipe_w = -1};
    runner_args first = a;
    first.log_max = runner_first_step_log_max(&a);
    if (a.simulate) {
        runner_supervise(&a, &waitset, &log, &out);
    } else if (runner_start_job(&first, claimfd, &log, &out) == 0) {
        runner_supervise(&first, &waitset, &log, &out);
    } else {
        runner_log_finish(&log);
        out.exit_code = 127;
        runner_say(40, false, "%s", out.spawn_error);
    }
    out.log_kept = log.total < log.max ? log.total : log.max; /* 0 without a limit */
    runner_then(&a, &waitset, claimfd, mono_started, &out);
    out.ended = out.started + (sal_clock_monotonic() - mono_started);
    runner_collect(&a, &out);
    int exit_status = runner_exit_status(&a, &out, runner_write_status(a.status, &out));
    close(claimfd);
    runner_outcome_free(&out);
    free(a.globs);
    free(a.then_argv);
    return exit_status;
}
