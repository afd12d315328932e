/*
 * engine_exec.h - starting and watching ocps-job-runner processes for the
 * engine: the runner's command line and environment, the detached spawn,
 * liveness checks by pid and start time (/proc/<pid>/stat field 22, so a
 * reused pid is not mistaken for the runner) and reading status.json.
 */
#ifndef ENGINE_EXEC_H
#define ENGINE_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

/* What the runner is started with. */
typedef struct engine_exec_request {
    const char *runner;
    const char *workdir;
    const char *status_path;
    const char *log_path;
    double timeout; /* seconds; <= 0: none */
    double grace;
    const json_t *globs; /* array of strings, or NULL */
    size_t max_results;
    uint64_t log_max;     /* bytes of the job's output kept in its log; 0: all */
    const char *simulate; /* "SECONDS:CODE" or NULL */
    const json_t *argv;   /* array of strings */
    const json_t *then;   /* array of strings: the second step's argv (--then), or NULL */
    bool exit_with_job;   /* the runner exits with the job's code (--exit-status job), for Slurm */
    char *const *env;     /* complete environment, NULL-terminated */
} engine_exec_request;

/* Numbers formatted for the runner's command line. */
typedef struct engine_exec_numbers {
    char timeout[32];
    char grace[32];
    char max_results[32];
    char log_max[32];
} engine_exec_numbers;

/* The runner's argv (pointers into req and nums), NULL-terminated; free()
 * the array only. NULL if out of memory. */
char **engine_exec_runner_argv(const engine_exec_request *req, engine_exec_numbers *nums);

/* Start the runner detached (own session, default signal mask and
 * dispositions, in the workdir), stdin /dev/null, stdout and stderr
 * appended to the log, with posix_spawn (no copy of the caller's memory
 * map, whatever its size). *pid is the runner's, *pidfd a descriptor that
 * becomes readable when it exits (close it; reap with engine_exec_reap).
 * 0 or a negative errno (message in err). */
int engine_exec_spawn(const engine_exec_request *req, int *pid, int *pidfd, char *err, size_t errlen);

/* Reap child pid if it has exited: 0 with its exit status (or the signal
 * that killed it, else 0), -1 if it is still running. */
int engine_exec_reap(int pid, int64_t *exit_status, int *term_signal);

/* Free a NULL-terminated vector of strings it owns (NULL is fine). */
void engine_exec_free_strv(char **v);

/* The start time of process pid (clock ticks after boot) and its state
 * letter; 0, -ESRCH if there is no such process, or another -errno when
 * this process cannot tell now (out of descriptors or memory: EMFILE,
 * ENFILE, ENOMEM, EINTR, EAGAIN). */
int engine_exec_start_time(int pid, uint64_t *start, char *state);

/* Is the runner (pid, start time) still running: 1 yes, 0 no (a zombie
 * that is our own child, a runner started by an engine closed in this
 * process, is reaped and counts as gone), or a -errno when this process
 * cannot tell now (as engine_exec_start_time): ask again later. */
int engine_exec_probe(int pid, uint64_t start);

/* engine_exec_probe(pid, start) == 1. */
bool engine_exec_alive(int pid, uint64_t start);

/* Send sig to the runner if it is still the same process (never reaps),
 * then SIGCONT (a stopped runner would hold a SIGTERM until continued);
 * 0 or -errno. */
int engine_exec_signal(int pid, uint64_t start, int sig);

/* kill(pid, sig) then SIGCONT, for a runner known to be ours (a child
 * libuv watches); 0 or -errno. */
int engine_exec_kill(int pid, int sig);

/* The claim a runner makes on its job before running it: the file
 * <workdir>/runner.claim, created exclusively (complete when it appears),
 * "runner PID STARTTIME SID\n" then "job PID STARTTIME\n" once the job
 * runs (processing/runner/ocps_job_runner.c). A runner that finds the job
 * claimed exits with ENGINE_RUNNER_EXIT_CLAIMED without touching it. */
#define ENGINE_CLAIM_FILE "runner.claim"
#define ENGINE_RUNNER_EXIT_CLAIMED 3
/* A runner that could not make its claim or reserve the status file exits
 * with one of these, and the job did not run: no space left (or over
 * quota) in its directory, or another error (said in the job's log). */
#define ENGINE_RUNNER_EXIT_NO_SPACE 4
#define ENGINE_RUNNER_EXIT_SETUP 5

typedef struct engine_claim {
    int runner_pid;
    uint64_t runner_start;
    int runner_sid;
    int job_pid; /* 0 until the job was started; also its process group */
    uint64_t job_start;
    int job_lines; /* "job" lines: the step last started (a second step adds one) */
} engine_claim;

/* Read <workdir>/runner.claim: 0, -ENOENT when there is none, -EINVAL when
 * it cannot be read (message in err). */
int engine_exec_read_claim(const char *workdir, engine_claim *c, char *err, size_t errlen);

/* SIGKILL what is left of the job's process group after its runner died
 * (the processes of group c->job_pid in session c->runner_sid started no
 * earlier than the job, so that a reused number is left alone). Returns
 * how many processes were signalled. */
int engine_exec_kill_job_group(const engine_claim *c);

/* The runner's status.json. */
typedef struct engine_status {
    int exit_code;
    int signal;
    bool aborted;
    bool timed_out;
    char spawn_error[512];
    double started;
    double ended;
    int job_pid;
    long long max_rss_kb; /* the job's ru_maxrss from wait4 (kB); -1 absent */
    json_t *results;      /* owned array of strings */
    size_t results_total;
    bool results_truncated;
    int step;  /* the step that ended the job (1-based; 0: a runner without steps) */
    int steps; /* the job's steps (0 or 1: one) */
} engine_status;

/* Read status.json: 0, -ENOENT when absent, -EAGAIN when this process
 * cannot open it now (out of descriptors or memory: read it later),
 * -EINVAL when unreadable (message in err). On 0 release with
 * engine_status_clear. */
int engine_exec_read_status(const char *path, engine_status *st, char *err, size_t errlen);
void engine_status_clear(engine_status *st);

#endif
