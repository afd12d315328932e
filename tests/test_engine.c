/*
 * test_engine: the job engine (processing/engine.h) with real runner
 * processes: outcomes (success, exit codes, signals, timeout, spawn
 * failure, simulation), abort, FIFO scheduling with a concurrency limit,
 * prerequisites, output globs, and re-adoption of jobs after a restart.
 * Every test has its own work root and store in a fresh temp dir.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ocps/engine.h"
#include "engine_fixture.h"
#include "test_util.h"

static int setup(void **state)
{
    efx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    efx_init(fx, "work/jobs", OCPS_JOB_RUNNER);
    efx_open(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    efx *fx = *state;
    efx_free(fx);
    free(fx);
    return 0;
}

static void fx_submit(efx *fx, char id[ENGINE_JOB_ID_LEN + 1], const char *const *argv)
{
    efx_submit(fx, id, (engine_job_spec){.argv = argv});
}

static char *fx_job_file(const efx *fx, const char *id, const char *name)
{
    const engine_job *j = engine_job_get(fx->e, id);
    assert_non_null(j);
    return tu_path_join(j->workdir, name);
}

/* Wait for a file a job writes; returns its integer content. */
static long fx_wait_pid_file(efx *fx, const char *id, const char *name)
{
    char *path = fx_job_file(fx, id, name);
    double end = tu_now() + 5;
    char *text = NULL;
    while ((text = tu_read_file(path, NULL)) == NULL || strchr(text, '\n') == NULL) {
        free(text);
        text = NULL;
        if (tu_now() > end) {
            fail_msg("%s never written", path);
        }
        efx_spin(fx);
    }
    long pid = strtol(text, NULL, 10);
    free(text);
    free(path);
    return pid;
}

/* Is pid gone (or a zombie nobody reaps)? */
static bool pid_gone(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    char *stat = tu_read_file(path, NULL);
    if (stat == NULL) {
        return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
    }
    const char *p = strrchr(stat, ')');
    bool zombie = p != NULL && (p[2] == 'Z' || p[2] == 'X');
    free(stat);
    return zombie;
}

static bool wait_pid_gone(long pid, double timeout)
{
    double end = tu_now() + timeout;
    while (!pid_gone(pid)) {
        if (tu_now() > end) {
            return false;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* Parent pid of pid (field 4 of /proc/<pid>/stat). */
static long parent_of(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    char *stat = tu_read_file(path, NULL);
    assert_non_null(stat);
    const char *p = strrchr(stat, ')');
    assert_non_null(p);
    char state;
    long ppid = -1;
    assert_int_equal(sscanf(p + 2, "%c %ld", &state, &ppid), 2);
    free(stat);
    return ppid;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- outcomes ---------------------------------------------------------- */

/* On a file system with inode flags (ext4), the engine marks work_root as
 * a top of directory trees (FS_TOPDIR_FL), so that the allocator spreads
 * the jobs' directories over block groups (docs/performance.md). */
static void test_work_root_topdir(void **state)
{
    efx *fx = *state;
    int fd = open(fx->work_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    int flags = 0;
    int rc = ioctl(fd, FS_IOC_GETFLAGS, &flags);
    int err = errno;
    close(fd);
    if (rc != 0) {
        printf("# no inode flags on this file system (%s): nothing to check\n", strerror(err));
        skip();
    }
    if ((flags & FS_TOPDIR_FL) == 0) {
        /* not set: only right where the file system refuses the flag */
        char probe[1200];
        snprintf(probe, sizeof probe, "%s/topdir-probe", fx->work_root);
        assert_int_equal(mkdir(probe, 0755), 0);
        fd = open(probe, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int pflags = 0;
        bool settable = fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &pflags) == 0 &&
                        ioctl(fd, FS_IOC_SETFLAGS, &(int){pflags | FS_TOPDIR_FL}) == 0;
        if (fd >= 0) {
            close(fd);
        }
        rmdir(probe);
        assert_false(settable);
        printf("# this file system refuses FS_TOPDIR_FL: nothing to check\n");
        skip();
    }
}

static void test_success(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, (const char *[]){"true", NULL});
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
    assert_int_equal(ev->reason, ENGINE_REASON_SUCCESS);
    assert_int_equal(ev->exit_code, 0);
    assert_true(ev->started > 0 && ev->ended >= ev->started);
    /* Every phase was reported, in order. */
    int q = efx_find(fx, id, ENGINE_QUEUED);
    int x = efx_find(fx, id, ENGINE_EXECUTING);
    int c = efx_find(fx, id, ENGINE_COMPLETED);
    assert_true(q >= 0 && q < x && x < c);
    const engine_job *j = engine_job_get(fx->e, id);
    assert_non_null(j);
    assert_int_equal(j->phase, ENGINE_COMPLETED);
    assert_true(file_exists(j->log_path));
    assert_non_null(strstr(j->log_path, id));
    assert_int_equal(efx_count_final(fx, id), 1);
}

static void test_env_workdir_meta(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    json_t *meta = json_pack("{s:s, s:i}", "salIndex", "x", "seq", 7);
    efx_submit(fx, id,
               (engine_job_spec){
                   .argv = (const char *[]){"sh", "-c",
                                            "echo \"cwd=$(pwd)\"; echo \"id=$JOB_ID\"; "
                                            "echo \"out=$JOB_OUTPUT_DIR\"; echo \"foo=$FOO\"",
                                            NULL},
                   .env = (const char *[]){"FOO=bar baz", NULL},
                   .meta = meta,
               });
    json_decref(meta);
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
    assert_string_equal(ev->meta, "{\"salIndex\":\"x\",\"seq\":7}");
    const engine_job *j = engine_job_get(fx->e, id);
    char *log = tu_read_file(j->log_path, NULL);
    assert_non_null(log);
    char line[1200];
    snprintf(line, sizeof line, "cwd=%s\n", j->workdir);
    assert_non_null(strstr(log, line));
    snprintf(line, sizeof line, "id=%s\n", id);
    assert_non_null(strstr(log, line));
    snprintf(line, sizeof line, "out=%s\n", j->workdir);
    assert_non_null(strstr(log, line));
    assert_non_null(strstr(log, "foo=bar baz\n"));
    free(log);
    struct stat st;
    assert_int_equal(stat(j->workdir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);
    assert_string_equal(json_string_value(json_array_get(j->argv, 0)), "sh");
}

static void test_failure_exit_code(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, (const char *[]){"sh", "-c", "exit 3", NULL});
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_PIPELINE_FAILED);
    assert_int_equal(ev->exit_code, 3);
    assert_non_null(strstr(ev->message, "3"));
}

static void test_signal_exit(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, (const char *[]){"sh", "-c", "kill -9 $$", NULL});
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_PIPELINE_FAILED);
    assert_int_equal(ev->exit_code, 128 + 9);
    assert_non_null(strstr(ev->message, "signal 9"));
}

static void test_timeout(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    double t0 = tu_now();
    efx_submit(fx, id, (engine_job_spec){.argv = (const char *[]){"sleep", "30", NULL}, .max_duration = 0.5});
    const efx_event *ev = efx_wait_final(fx, id, 5);
    double took = tu_now() - t0;
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_TIMEOUT);
    assert_int_equal(ev->exit_code, 128 + SIGTERM);
    assert_true(took >= 0.45 && took < 2.5);
}

static void test_spawn_failure(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, (const char *[]){"/nonexistent/ocps-pipeline", "x", NULL});
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_INFRASTRUCTURE);
    assert_int_equal(ev->exit_code, 127);
    assert_non_null(strstr(ev->message, "No such file"));
    assert_non_null(strstr(ev->message, "/nonexistent/ocps-pipeline"));
}

/* One job (`true`) on an engine reopened with `runner`, ending as an
 * infrastructure error; the event (the fixture's, valid until the next
 * call). The engine is reopened with the real runner afterwards. */
static const efx_event *run_with_runner(efx *fx, const char *runner)
{
    efx_close(fx);
    fx->opts.runner = runner;
    efx_open(fx);
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, (const char *[]){"true", NULL});
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_INFRASTRUCTURE);
    efx_close(fx);
    fx->opts.runner = OCPS_JOB_RUNNER;
    efx_open(fx);
    return ev;
}

/* A runner that could not prepare the job's files (test_job_runner
 * a_full_disk_runs_nothing: a full disk) exits 4 or 5 and the job did
 * not run: the engine says so, not "lost" or "no status file". */
static void test_runner_setup_failure(void **state)
{
    efx *fx = *state;
    for (int code = 4; code <= 5; code++) {
        char *runner = tu_path_join(fx->dir, "runner.sh");
        char text[64];
        snprintf(text, sizeof text, "#!/bin/sh\nexit %d\n", code);
        assert_int_equal(tu_write_file(runner, text, strlen(text)), 0);
        assert_int_equal(chmod(runner, 0755), 0);
        const efx_event *ev = run_with_runner(fx, runner);
        assert_non_null(strstr(ev->message, "the job did not run"));
        assert_true((strstr(ev->message, "no space left") != NULL) == (code == 4));
        free(runner);
    }
}

/* The job's runner ends while this process is out of descriptors (its
 * status file cannot be opened: EMFILE): the job is not ended as an
 * infrastructure error ("bad status file"); it stays executing, with a
 * warning, and its outcome on disk is read at a later poll, once a
 * descriptor is free: exit 3, the pipeline failed. */
static void test_outcome_read_after_running_out_of_descriptors(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(fx, id, "sleep 1; exit 3");
    efx_wait_phase(fx, id, ENGINE_EXECUTING, 10);
    struct rlimit was;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
    struct rlimit low = {.rlim_cur = 512, .rlim_max = was.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fds[512];
    int n = 0;
    errno = 0;
    while (n < (int)(sizeof fds / sizeof fds[0]) && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
        n++;
    }
    assert_int_equal(errno, EMFILE); /* every descriptor taken */
    efx_run_for(fx, 2.5);            /* the runner ends meanwhile */
    bool warned = strstr(fx->log, "reading it again shortly") != NULL;
    for (int i = 0; i < n; i++) {
        close(fds[i]);
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
    /* (the runner's descriptor, closed, may let a later poll read it meanwhile) */
    assert_true(warned);
    const efx_event *ev = efx_wait_final(fx, id, 10);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->exit_code, 3);
    assert_int_equal(ev->reason, ENGINE_REASON_PIPELINE_FAILED);
}

/* A message longer than the job's is cut at a character boundary and
 * ends in "...": here the runner cannot start from a long non-ASCII path. */
static void test_long_message_cut(void **state)
{
    efx *fx = *state;
    char runner[1000] = "/nonexistent/";
    for (size_t n = strlen(runner); n + 2 < sizeof runner; n += 2) {
        strcat(runner, "\xc3\xa9"); /* U+00E9, two bytes */
    }
    const efx_event *ev = run_with_runner(fx, runner);
    assert_non_null(strstr(ev->message, "cannot start runner /nonexistent/"));
    size_t len = strlen(ev->message);
    assert_in_range(len, 500, 511);
    assert_string_equal(ev->message + len - 3, "...");
    json_t *s = json_string(ev->message); /* NULL unless valid UTF-8 */
    assert_non_null(s);
    json_decref(s);
}

static void test_simulate(void **state)
{
    efx *fx = *state;
    char ok[ENGINE_JOB_ID_LEN + 1];
    char bad[ENGINE_JOB_ID_LEN + 1];
    const char *const argv[] = {"/nonexistent/never-run", NULL};
    double t0 = tu_now();
    efx_submit(fx, ok, (engine_job_spec){.argv = argv, .simulate = "0.2:0"});
    efx_submit(fx, bad, (engine_job_spec){.argv = argv, .simulate = "0.2:1"});
    const efx_event *a = efx_wait_final(fx, ok, 5);
    assert_int_equal(a->phase, ENGINE_COMPLETED);
    assert_int_equal(a->exit_code, 0);
    const efx_event *b = efx_wait_final(fx, bad, 5);
    assert_int_equal(b->phase, ENGINE_ERROR);
    assert_int_equal(b->reason, ENGINE_REASON_PIPELINE_FAILED);
    assert_int_equal(b->exit_code, 1);
    assert_true(tu_now() - t0 >= 0.2);
    /* A bad simulate spec is refused. */
    char err[256];
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, id);
    engine_job_spec spec = {.argv = argv, .simulate = "soon"};
    assert_int_equal(engine_job_submit(fx->e, id, &spec, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "simulate"));
}

/* ---- abort ------------------------------------------------------------- */

static void test_abort_running(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id,
              (const char *[]){"sh", "-c", "echo started; sleep 30 & echo $! > child.pid; wait", NULL});
    long child = fx_wait_pid_file(fx, id, "child.pid");
    assert_true(child > 0);
    assert_false(pid_gone(child));
    char err[256];
    double t0 = tu_now();
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_true(tu_now() - t0 < 2.0);
    assert_int_equal(ev->phase, ENGINE_ABORTED);
    assert_int_equal(ev->reason, ENGINE_REASON_ABORTED);
    assert_int_equal(ev->exit_code, ENGINE_EXIT_ABORTED);
    assert_true(wait_pid_gone(child, 2.0)); /* the whole group was killed */
    const engine_job *j = engine_job_get(fx->e, id);
    char *log = tu_read_file(j->log_path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "started"));
    free(log);
}

static void test_abort_queued(void **state)
{
    efx *fx = *state;
    engine_set_max_concurrent(fx->e, 1);
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, (const char *[]){"sleep", "30", NULL});
    efx_wait_phase(fx, a, ENGINE_EXECUTING, 5); /* started off the loop */
    fx_submit(fx, b, (const char *[]){"sleep", "30", NULL});
    const engine_job *jb = engine_job_get(fx->e, b);
    assert_int_equal(jb->phase, ENGINE_QUEUED);
    assert_int_equal(jb->queue_position, 1);
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, b, err, sizeof err), 0);
    jb = engine_job_get(fx->e, b);
    assert_int_equal(jb->phase, ENGINE_ABORTED); /* at once */
    assert_int_equal(jb->exit_code, ENGINE_EXIT_ABORTED);
    const efx_event *ev = efx_wait_final(fx, b, 2);
    assert_int_equal(ev->reason, ENGINE_REASON_ABORTED);
    assert_int_equal(efx_find(fx, b, ENGINE_EXECUTING), -1);
    assert_int_equal(engine_job_abort(fx->e, a, err, sizeof err), 0);
    assert_int_equal(efx_wait_final(fx, a, 5)->phase, ENGINE_ABORTED);
}

static void test_abort_idempotent_and_unknown(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    char err[256];
    fx_submit(fx, id, (const char *[]){"sleep", "30", NULL});
    efx_wait_phase(fx, id, ENGINE_EXECUTING, 5);
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    assert_string_equal(err, ""); /* started */
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    assert_non_null(strstr(err, "is already being aborted"));
    efx_wait_final(fx, id, 5);
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    assert_non_null(strstr(err, "had already ended (aborted)"));
    efx_run_for(fx, 0.2);
    assert_int_equal(efx_count_final(fx, id), 1);
    char unknown[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, unknown);
    err[0] = '\0';
    assert_int_equal(engine_job_abort(fx->e, unknown, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, unknown));
    assert_null(engine_job_get(fx->e, unknown));
}

/* max_waiting: a submission beyond the waiting line's limit (PENDING and
 * QUEUED together) is refused and leaves nothing; a place that frees up
 * takes the next one; a lowered limit keeps the jobs waiting beyond it. */
static int count_listed(void *arg, const engine_job *job)
{
    (void)job;
    ++*(int *)arg;
    return 0;
}

static int stored_jobs(efx *fx)
{
    int n = 0;
    char err[256];
    assert_int_equal(engine_job_list(fx->e, count_listed, &n, err, sizeof err), 0);
    return n;
}

static void test_max_waiting(void **state)
{
    efx *fx = *state;
    engine_set_max_concurrent(fx->e, 1);
    engine_set_max_waiting(fx->e, 2);
    char run[ENGINE_JOB_ID_LEN + 1];
    char queued[ENGINE_JOB_ID_LEN + 1];
    char pending[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, run, (const char *[]){"sleep", "30", NULL});
    efx_wait_phase(fx, run, ENGINE_EXECUTING, 5);
    fx_submit(fx, queued, (const char *[]){"true", NULL});
    efx_submit(
        fx, pending,
        (engine_job_spec){.argv = (const char *[]){"true", NULL}, .prereqs = (const char *[]){run, NULL}});
    assert_int_equal(engine_job_get(fx->e, pending)->phase, ENGINE_PENDING);
    int before = stored_jobs(fx);
    char extra[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, extra);
    char err[256] = "";
    engine_job_spec spec = {.argv = (const char *[]){"true", NULL}};
    assert_int_equal(engine_job_submit(fx->e, extra, &spec, err, sizeof err), -EAGAIN);
    assert_non_null(strstr(err, "too many jobs wait to run (2; the limit is 2)"));
    assert_null(engine_job_get(fx->e, extra));
    assert_int_equal(stored_jobs(fx), before);
    efx_run_for(fx, 0.1);
    assert_int_equal(efx_find(fx, extra, ENGINE_QUEUED), -1); /* never reported */
    /* in a batch, the jobs of the batch count */
    engine_set_max_waiting(fx->e, 3);
    assert_int_equal(engine_batch_begin(fx->e, err, sizeof err), 0);
    char b1[ENGINE_JOB_ID_LEN + 1];
    char b2[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, b1);
    engine_new_job_id(fx->e, b2);
    assert_int_equal(engine_job_submit(fx->e, b1, &spec, err, sizeof err), 0);
    assert_int_equal(engine_job_submit(fx->e, b2, &spec, err, sizeof err), -EAGAIN);
    assert_int_equal(engine_batch_end(fx->e, err, sizeof err), 0);
    assert_non_null(engine_job_get(fx->e, b1));
    assert_null(engine_job_get(fx->e, b2));
    /* a lowered limit: the three waiting stay, a fourth is refused */
    engine_set_max_waiting(fx->e, 1);
    assert_int_equal(engine_job_submit(fx->e, extra, &spec, err, sizeof err), -EAGAIN);
    assert_int_equal(engine_count(fx->e, ENGINE_PENDING) + engine_count(fx->e, ENGINE_QUEUED), 3);
    /* the running job ends: the line drains and takes new jobs again */
    engine_set_max_waiting(fx->e, 2);
    assert_int_equal(engine_job_abort(fx->e, run, err, sizeof err), 0);
    efx_wait_final(fx, queued, 5);
    efx_wait_final(fx, pending, 5);
    efx_wait_final(fx, b1, 5);
    assert_int_equal(engine_job_submit(fx->e, extra, &spec, err, sizeof err), 0);
    assert_int_equal(efx_wait_final(fx, extra, 5)->phase, ENGINE_COMPLETED);
    /* jobs that free slots will take do not wait, also in a batch (not
     * scheduled before its end): 3 free slots and a limit of 1 take 4 */
    engine_set_max_concurrent(fx->e, 3);
    engine_set_max_waiting(fx->e, 1);
    char burst[5][ENGINE_JOB_ID_LEN + 1];
    int rcs[5];
    assert_int_equal(engine_batch_begin(fx->e, err, sizeof err), 0);
    for (int i = 0; i < 5; i++) {
        engine_new_job_id(fx->e, burst[i]);
        rcs[i] = engine_job_submit(fx->e, burst[i], &spec, err, sizeof err);
    }
    assert_int_equal(engine_batch_end(fx->e, err, sizeof err), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rcs[i], 0);
    }
    assert_int_equal(rcs[4], -EAGAIN);
    assert_int_equal(engine_get_waiting(fx->e).waiting, 1); /* 3 started, 1 queued */
    assert_int_equal(engine_get_waiting(fx->e).refused, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(efx_wait_final(fx, burst[i], 5)->phase, ENGINE_COMPLETED);
    }
    engine_set_max_waiting(fx->e, 0); /* no limit */
}

/* ---- a start that blocks on the work root ------------------------------ */

/* A new job id whose directory (under the work root) holds a FIFO named
 * `name`: the engine's open of that file blocks until release_fifo_later
 * opens it too, as a file of a hung NFS work root would. */
static void fifo_job(efx *fx, char id[ENGINE_JOB_ID_LEN + 1], const char *name)
{
    engine_new_job_id(fx->e, id);
    char *dir = tu_path_join(fx->work_root, id);
    char *fifo = tu_path_join(dir, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    free(fifo);
    free(dir);
}

/* A child process that, after `delay` s, opens job id's FIFO `name` (so
 * that the engine's open returns), keeps it `hold` s, and exits. */
static pid_t release_fifo_later(const efx *fx, const char *id, const char *name, double delay, double hold)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/%s", fx->work_root, id, name);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (int fd = 3; fd < 1024; fd++) {
            close(fd); /* not the engine's: its store's lock */
        }
        usleep((useconds_t)(delay * 1e6));
        int fd = open(path, O_RDWR); /* never blocks on a FIFO */
        usleep((useconds_t)(hold * 1e6));
        _exit(fd >= 0 ? 0 : 1);
    }
    return pid;
}

/* engine_job_submit of job id (argv), which must return at once: the
 * start's file-system work is not done on the loop. */
static void submit_promptly(efx *fx, const char *id, const char *const *argv)
{
    char err[512];
    engine_job_spec spec = {.argv = argv};
    double t0 = tu_now();
    assert_int_equal(engine_job_submit(fx->e, id, &spec, err, sizeof err), 0);
    assert_true(tu_now() - t0 < 0.5);
}

/* Aborted while its directory and claim are looked at (the work root
 * hangs): the job ends ABORTED at once, and never executes. */
static void test_abort_while_starting(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fifo_job(fx, id, "runner.claim");
    pid_t helper = release_fifo_later(fx, id, "runner.claim", 1.5, 0);
    submit_promptly(fx, id, (const char *[]){"sleep", "30", NULL});
    efx_run_for(fx, 0.3); /* the loop runs meanwhile */
    assert_int_equal(engine_job_get(fx->e, id)->phase, ENGINE_QUEUED);
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    assert_int_equal(engine_job_get(fx->e, id)->phase, ENGINE_ABORTED); /* at once */
    assert_int_equal(efx_wait_final(fx, id, 1)->reason, ENGINE_REASON_ABORTED);
    assert_int_equal(tu_wait_exit(helper, 5), 0);
    efx_run_for(fx, 0.3); /* the start's first step is back: dropped */
    assert_int_equal(efx_count_final(fx, id), 1);
    assert_int_equal(efx_find(fx, id, ENGINE_EXECUTING), -1);
}

/* Aborted while its runner is being spawned (the open of its log hangs):
 * the runner is stopped as soon as it exists, and the job ends ABORTED. */
static void test_abort_while_spawning(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fifo_job(fx, id, "ocps.log");
    pid_t helper = release_fifo_later(fx, id, "ocps.log", 1.0, 10);
    submit_promptly(fx, id, (const char *[]){"sleep", "30", NULL});
    efx_run_for(fx, 0.3);
    assert_int_equal(engine_job_get(fx->e, id)->phase, ENGINE_EXECUTING); /* its start is stored */
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    double t0 = tu_now();
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_true(tu_now() - t0 < 3.0);
    assert_int_equal(ev->phase, ENGINE_ABORTED);
    assert_int_equal(ev->reason, ENGINE_REASON_ABORTED);
    kill(helper, SIGKILL);
    tu_wait_exit(helper, 5);
}

/* Aborted while its runner is being spawned (the open of its log hangs),
 * and the spawn then fails (its directory is gone meanwhile): the job
 * ends ABORTED, as asked, saying why its runner could not be started. */
static void test_abort_while_spawning_that_fails(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fifo_job(fx, id, "ocps.log");
    char gone[ENGINE_JOB_ID_LEN + 8];
    snprintf(gone, sizeof gone, "%s.gone", id);
    pid_t helper = release_fifo_later(fx, gone, "ocps.log", 1.0, 10);
    submit_promptly(fx, id, (const char *[]){"sleep", "30", NULL});
    efx_run_for(fx, 0.3);
    assert_int_equal(engine_job_get(fx->e, id)->phase, ENGINE_EXECUTING); /* its start is stored */
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    char *dir = tu_path_join(fx->work_root, id);
    char *moved = tu_path_join(fx->work_root, gone);
    assert_int_equal(rename(dir, moved), 0); /* the runner's chdir fails */
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_ABORTED);
    assert_int_equal(ev->reason, ENGINE_REASON_ABORTED);
    assert_int_equal(ev->exit_code, ENGINE_EXIT_ABORTED);
    assert_non_null(strstr(ev->message, "aborted"));
    assert_non_null(strstr(ev->message, "cannot start runner"));
    kill(helper, SIGKILL);
    tu_wait_exit(helper, 5);
    free(moved);
    free(dir);
}

/* With one slot, a job being started holds it: the next one waits. */
static void test_starting_job_holds_its_slot(void **state)
{
    efx *fx = *state;
    engine_set_max_concurrent(fx->e, 1);
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fifo_job(fx, a, "runner.claim");
    pid_t helper = release_fifo_later(fx, a, "runner.claim", 1.0, 0);
    submit_promptly(fx, a, (const char *[]){"true", NULL});
    engine_new_job_id(fx->e, b);
    submit_promptly(fx, b, (const char *[]){"true", NULL});
    efx_run_for(fx, 0.5);
    assert_int_equal(engine_job_get(fx->e, b)->phase, ENGINE_QUEUED);
    assert_int_equal(engine_job_get(fx->e, b)->queue_position, 2);
    assert_int_equal(efx_find(fx, b, ENGINE_EXECUTING), -1);
    /* the empty claim (a FIFO) cannot be read: a ends, then b runs */
    assert_int_equal(efx_wait_final(fx, a, 5)->phase, ENGINE_ERROR);
    assert_int_equal(efx_wait_final(fx, b, 5)->phase, ENGINE_COMPLETED);
    assert_int_equal(fx->max_executing, 1);
    assert_int_equal(tu_wait_exit(helper, 5), 0);
}

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

/* engine_close while a job is being started: the engine is freed once the
 * start's step is back, the job stays queued in the store, and the next
 * engine runs it. */
static void test_close_while_starting(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fifo_job(fx, id, "runner.claim");
    pid_t helper = release_fifo_later(fx, id, "runner.claim", 1.0, 0);
    submit_promptly(fx, id, (const char *[]){"true", NULL});
    efx_run_for(fx, 0.2);
    bool closed = false;
    engine_close(fx->e, on_closed, &closed);
    fx->e = NULL;
    double t0 = tu_now();
    while (!closed && tu_now() - t0 < 5) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    assert_true(closed);
    assert_true(tu_now() - t0 > 0.3); /* it waited for the start's step */
    assert_int_equal(tu_wait_exit(helper, 5), 0);
    char *fifo = tu_path_join(fx->work_root, id);
    char *claim = tu_path_join(fifo, "runner.claim");
    assert_int_equal(unlink(claim), 0);
    free(claim);
    free(fifo);
    efx_clear_events(fx);
    efx_open(fx);
    assert_int_equal(efx_wait_final(fx, id, 5)->phase, ENGINE_COMPLETED);
}

/* engine_close while a job's runner is being spawned (the open of its log
 * hangs): the runner spawned after the close began keeps running (as
 * close leaves runners), and the next engine follows it to its outcome:
 * the job runs once. */
static void test_close_while_spawning(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fifo_job(fx, id, "ocps.log");
    pid_t helper = release_fifo_later(fx, id, "ocps.log", 1.0, 10);
    submit_promptly(fx, id, (const char *[]){"sh", "-c", "echo run >> runs; sleep 0.5", NULL});
    efx_run_for(fx, 0.3);
    assert_int_equal(engine_job_get(fx->e, id)->phase, ENGINE_EXECUTING); /* its start is stored */
    bool closed = false;
    engine_close(fx->e, on_closed, &closed);
    fx->e = NULL;
    double t0 = tu_now();
    while (!closed && tu_now() - t0 < 5) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    assert_true(closed);
    assert_true(tu_now() - t0 > 0.3); /* it waited for the spawn */
    efx_clear_events(fx);
    efx_open(fx);
    assert_int_equal(efx_wait_final(fx, id, 10)->phase, ENGINE_COMPLETED);
    efx_run_for(fx, 0.5);
    assert_int_equal(efx_count_final(fx, id), 1);
    char *dir = tu_path_join(fx->work_root, id);
    char *runs = tu_path_join(dir, "runs");
    char *text = tu_read_file(runs, NULL);
    assert_non_null(text);
    assert_string_equal(text, "run\n");
    free(text);
    free(runs);
    free(dir);
    kill(helper, SIGKILL);
    tu_wait_exit(helper, 5);
}

/* ---- scheduling -------------------------------------------------------- */

static void test_fifo_concurrency(void **state)
{
    efx *fx = *state;
    engine_set_max_concurrent(fx->e, 2);
    char ids[5][ENGINE_JOB_ID_LEN + 1];
    for (int i = 0; i < 5; i++) {
        fx_submit(fx, ids[i], (const char *[]){"sleep", "0.3", NULL});
    }
    /* the first two hold the slots while they are started (off the loop) */
    assert_int_equal(engine_count(fx->e, ENGINE_EXECUTING) + engine_count(fx->e, ENGINE_QUEUED), 5);
    efx_wait_phase(fx, ids[0], ENGINE_EXECUTING, 5);
    efx_wait_phase(fx, ids[1], ENGINE_EXECUTING, 5);
    assert_int_equal(engine_count(fx->e, ENGINE_EXECUTING), 2);
    assert_int_equal(engine_count(fx->e, ENGINE_QUEUED), 3);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(engine_job_get(fx->e, ids[i])->queue_position, i < 2 ? 0 : i - 1);
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(efx_wait_final(fx, ids[i], 10)->phase, ENGINE_COMPLETED);
    }
    assert_int_equal(fx->max_executing, 2);
    /* Started in submission order. */
    for (int i = 1; i < 5; i++) {
        assert_true(efx_find(fx, ids[i - 1], ENGINE_EXECUTING) < efx_find(fx, ids[i], ENGINE_EXECUTING));
    }
    /* The QUEUED events carried the position (all five were queued: the
     * first two were being started when the last was submitted). */
    assert_int_equal(fx->events[efx_find(fx, ids[4], ENGINE_QUEUED)].queue_position, 5);
}

static int fx_position(efx *fx, const char *id)
{
    const engine_job *j = engine_job_get(fx->e, id);
    assert_non_null(j);
    return j->queue_position;
}

/* Queue positions stay right as jobs join at the tail and leave from the
 * head (started) and from the middle (aborted while queued). */
static void test_queue_positions_as_jobs_leave(void **state)
{
    efx *fx = *state;
    char err[256];
    engine_set_max_concurrent(fx->e, 1);
    char ids[6][ENGINE_JOB_ID_LEN + 1];
    for (int i = 0; i < 5; i++) {
        fx_submit(fx, ids[i], (const char *[]){"sleep", "30", NULL});
        if (i == 0) {
            efx_wait_phase(fx, ids[0], ENGINE_EXECUTING, 5); /* started off the loop */
        }
    }
    for (int i = 1; i < 5; i++) {
        assert_int_equal(fx_position(fx, ids[i]), i);
    }
    assert_int_equal(engine_job_abort(fx->e, ids[2], err, sizeof err), 0); /* from the middle */
    assert_int_equal(fx_position(fx, ids[1]), 1);
    assert_int_equal(fx_position(fx, ids[2]), 0);
    assert_int_equal(fx_position(fx, ids[3]), 2);
    assert_int_equal(fx_position(fx, ids[4]), 3);
    fx_submit(fx, ids[5], (const char *[]){"sleep", "30", NULL}); /* at the tail */
    assert_int_equal(fx_position(fx, ids[5]), 4);
    assert_int_equal(engine_job_abort(fx->e, ids[1], err, sizeof err), 0); /* the head */
    assert_int_equal(fx_position(fx, ids[3]), 1);
    assert_int_equal(fx_position(fx, ids[5]), 3);
    assert_int_equal(engine_job_abort(fx->e, ids[0], err, sizeof err), 0); /* the running one */
    efx_wait_phase(fx, ids[3], ENGINE_EXECUTING, 10);
    assert_int_equal(fx_position(fx, ids[3]), 0);
    assert_int_equal(fx_position(fx, ids[4]), 1);
    assert_int_equal(fx_position(fx, ids[5]), 2);
    fx_submit(fx, ids[1], (const char *[]){"sleep", "30", NULL});
    assert_int_equal(fx_position(fx, ids[1]), 3);
    /* the QUEUED event of a job queued behind others carried its place */
    assert_int_equal(fx->events[efx_find(fx, ids[4], ENGINE_QUEUED)].queue_position, 4);
    const int left[] = {1, 3, 4, 5};
    for (int i = 0; i < 4; i++) {
        engine_job_abort(fx->e, ids[left[i]], err, sizeof err);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(efx_wait_final(fx, ids[left[i]], 10)->phase, ENGINE_ABORTED);
    }
}

static void test_prereq_success(void **state)
{
    efx *fx = *state;
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, (const char *[]){"sleep", "0.3", NULL});
    efx_submit(fx, b,
               (engine_job_spec){.argv = (const char *[]){"true", NULL},
                                 .prereqs = (const char *[]){a, NULL},
                                 .prereq_must_succeed = true});
    assert_int_equal(engine_job_get(fx->e, b)->phase, ENGINE_PENDING);
    const efx_event *eb = efx_wait_final(fx, b, 5);
    assert_int_equal(eb->phase, ENGINE_COMPLETED);
    int a_done = efx_find(fx, a, ENGINE_COMPLETED);
    int b_exec = efx_find(fx, b, ENGINE_EXECUTING);
    assert_true(efx_find(fx, b, ENGINE_PENDING) >= 0);
    assert_true(a_done >= 0 && a_done < b_exec);
    assert_true(fx->events[b_exec].started >= fx->events[a_done].ended);
}

static void test_prereq_failure(void **state)
{
    efx *fx = *state;
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, (const char *[]){"sh", "-c", "sleep 0.1; exit 1", NULL});
    efx_submit(fx, b,
               (engine_job_spec){.argv = (const char *[]){"true", NULL},
                                 .prereqs = (const char *[]){a, NULL},
                                 .prereq_must_succeed = true});
    const efx_event *eb = efx_wait_final(fx, b, 5);
    assert_int_equal(eb->phase, ENGINE_ERROR);
    assert_int_equal(eb->reason, ENGINE_REASON_PREREQUISITE);
    assert_non_null(strstr(eb->message, a));
    assert_int_equal(efx_find(fx, b, ENGINE_EXECUTING), -1);
}

/* A job waits for each of its prerequisites in turn, a chain goes on link
 * by link, and jobs waiting for the first to end are released without
 * waiting for the others. */
static void test_prereq_several_and_a_chain(void **state)
{
    efx *fx = *state;
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    char c[ENGINE_JOB_ID_LEN + 1];
    char d[ENGINE_JOB_ID_LEN + 1];
    char f[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, (const char *[]){"sleep", "0.2", NULL});
    fx_submit(fx, b, (const char *[]){"sleep", "0.6", NULL});
    const char *true_argv[] = {"true", NULL};
    efx_submit(fx, c,
               (engine_job_spec){
                   .argv = true_argv, .prereqs = (const char *[]){a, b, NULL}, .prereq_must_succeed = true});
    efx_submit(fx, d,
               (engine_job_spec){
                   .argv = true_argv, .prereqs = (const char *[]){c, NULL}, .prereq_must_succeed = true});
    efx_submit(fx, f,
               (engine_job_spec){
                   .argv = true_argv, .prereqs = (const char *[]){a, NULL}, .prereq_must_succeed = true});
    const char *ids[] = {a, b, c, d, f};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(efx_wait_final(fx, ids[i], 10)->phase, ENGINE_COMPLETED);
    }
    int a_done = efx_find(fx, a, ENGINE_COMPLETED);
    int b_done = efx_find(fx, b, ENGINE_COMPLETED);
    int c_exec = efx_find(fx, c, ENGINE_EXECUTING);
    int c_done = efx_find(fx, c, ENGINE_COMPLETED);
    int d_exec = efx_find(fx, d, ENGINE_EXECUTING);
    int f_exec = efx_find(fx, f, ENGINE_EXECUTING);
    assert_true(a_done < f_exec && f_exec < b_done); /* f did not wait for b */
    assert_true(a_done < c_exec && b_done < c_exec);
    assert_true(c_done < d_exec);
    assert_true(fx->events[c_exec].started >= fx->events[b_done].ended);
}

/* A prerequisite removed after it ended as needed (DELETE of ocps-engine,
 * retention) still counts, whatever its place in the list: the job waiting
 * for it and for a longer one completes. */
static void test_prereq_removed_after_it_ended(void **state)
{
    efx *fx = *state;
    for (int order = 0; order < 2; order++) {
        char quick[ENGINE_JOB_ID_LEN + 1];
        char slow[ENGINE_JOB_ID_LEN + 1];
        char waiter[ENGINE_JOB_ID_LEN + 1];
        fx_submit(fx, quick, (const char *[]){"true", NULL});
        fx_submit(fx, slow, (const char *[]){"sleep", "2", NULL});
        const char *both[] = {order == 0 ? quick : slow, order == 0 ? slow : quick, NULL};
        efx_submit(fx, waiter,
                   (engine_job_spec){
                       .argv = (const char *[]){"true", NULL}, .prereqs = both, .prereq_must_succeed = true});
        assert_int_equal(efx_wait_final(fx, quick, 5)->phase, ENGINE_COMPLETED);
        char err[512];
        assert_int_equal(engine_job_forget(fx->e, quick, err, sizeof err), 0);
        efx_wait_phase(fx, slow, ENGINE_EXECUTING, 5);                          /* started off the loop */
        assert_int_equal(engine_job_get(fx->e, slow)->phase, ENGINE_EXECUTING); /* still running */
        const efx_event *ew = efx_wait_final(fx, waiter, 10);
        assert_int_equal(ew->phase, ENGINE_COMPLETED);
        assert_true(efx_find(fx, slow, ENGINE_COMPLETED) < efx_find(fx, waiter, ENGINE_EXECUTING));
    }
}

/* A prerequisite that fails fails the job waiting for it at once, also
 * while an earlier one in the list still runs. */
static void test_prereq_failure_while_another_runs(void **state)
{
    efx *fx = *state;
    char slow[ENGINE_JOB_ID_LEN + 1];
    char bad[ENGINE_JOB_ID_LEN + 1];
    char waiter[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, slow, (const char *[]){"sleep", "30", NULL});
    fx_submit(fx, bad, (const char *[]){"sh", "-c", "sleep 0.2; exit 1", NULL});
    efx_submit(fx, waiter,
               (engine_job_spec){.argv = (const char *[]){"true", NULL},
                                 .prereqs = (const char *[]){slow, bad, NULL},
                                 .prereq_must_succeed = true});
    assert_int_equal(efx_wait_final(fx, bad, 5)->phase, ENGINE_ERROR);
    const efx_event *ew = efx_wait_final(fx, waiter, 2); /* not when slow ends, 30 s later */
    assert_int_equal(ew->phase, ENGINE_ERROR);
    assert_int_equal(ew->reason, ENGINE_REASON_PREREQUISITE);
    assert_non_null(strstr(ew->message, bad));
    assert_int_equal(engine_job_get(fx->e, slow)->phase, ENGINE_EXECUTING);
    char err[512];
    engine_job_abort(fx->e, slow, err, sizeof err);
    efx_wait_final(fx, slow, 10);
}

/* A prerequisite that fails as it is being started (its directory cannot
 * be made) fails the job waiting for it at once: that end happens inside a
 * scheduling step, after the waiting jobs were looked at. */
static void test_prereq_fails_at_its_start(void **state)
{
    efx *fx = *state;
    engine_set_max_concurrent(fx->e, 1);
    char x[ENGINE_JOB_ID_LEN + 1];
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, x, (const char *[]){"sleep", "0.3", NULL});
    engine_new_job_id(fx->e, a);
    char *path = tu_path_join(fx->work_root, a);
    assert_int_equal(tu_write_file(path, "", 0), 0); /* a file where a's directory goes */
    free(path);
    char err[512];
    engine_job_spec sa = {.argv = (const char *[]){"true", NULL}, .dirs = (const char *[]){"out", NULL}};
    assert_int_equal(engine_job_submit(fx->e, a, &sa, err, sizeof err), 0);
    efx_submit(fx, b,
               (engine_job_spec){.argv = (const char *[]){"true", NULL},
                                 .prereqs = (const char *[]){a, NULL},
                                 .prereq_must_succeed = true});
    assert_int_equal(efx_wait_final(fx, a, 5)->phase, ENGINE_ERROR);
    const efx_event *eb = efx_wait_final(fx, b, 1); /* before: PENDING until another job came */
    assert_int_equal(eb->phase, ENGINE_ERROR);
    assert_int_equal(eb->reason, ENGINE_REASON_PREREQUISITE);
}

/* A job waiting when the engine stops waits again after the restart, and
 * is released when its prerequisite (re-adopted) ends. */
static void test_prereq_across_a_restart(void **state)
{
    efx *fx = *state;
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, (const char *[]){"sleep", "0.8", NULL});
    efx_submit(fx, b,
               (engine_job_spec){.argv = (const char *[]){"true", NULL},
                                 .prereqs = (const char *[]){a, NULL},
                                 .prereq_must_succeed = true});
    efx_wait_phase(fx, a, ENGINE_EXECUTING, 5);
    efx_close(fx); /* a's runner keeps going */
    efx_clear_events(fx);
    efx_open(fx);
    assert_int_equal(engine_job_get(fx->e, b)->phase, ENGINE_PENDING);
    assert_int_equal(efx_wait_final(fx, b, 5)->phase, ENGINE_COMPLETED);
    assert_true(efx_find(fx, a, ENGINE_COMPLETED) < efx_find(fx, b, ENGINE_EXECUTING));
}

/* Waiting jobs released in one step (their prerequisites, adopted runners,
 * found ended by one poll) are queued and reported in creation order,
 * whatever the order in which their prerequisites were created. */
static void test_prereqs_ending_together_release_in_order(void **state)
{
    efx *fx = *state;
    char *go = tu_path_join(fx->dir, "go");
    const char *const wait_go[] = {"sh", "-c", "while [ ! -e \"$1\" ]; do sleep 0.01; done", "sh", go, NULL};
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    char x[ENGINE_JOB_ID_LEN + 1];
    char y[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, wait_go);
    fx_submit(fx, b, wait_go);
    efx_submit(
        fx, x,
        (engine_job_spec){.argv = (const char *[]){"true", NULL}, .prereqs = (const char *[]){b, NULL}});
    efx_submit(
        fx, y,
        (engine_job_spec){.argv = (const char *[]){"true", NULL}, .prereqs = (const char *[]){a, NULL}});
    efx_wait_phase(fx, a, ENGINE_EXECUTING, 5);
    efx_wait_phase(fx, b, ENGINE_EXECUTING, 5);
    efx_close(fx); /* the runners keep going: adopted, then polled */
    efx_clear_events(fx);
    fx->opts.poll_interval = 1.0; /* both end (within 10 ms) between two polls */
    efx_open(fx);
    assert_int_equal(engine_job_get(fx->e, x)->phase, ENGINE_PENDING);
    assert_int_equal(engine_job_get(fx->e, y)->phase, ENGINE_PENDING);
    efx_run_for(fx, 0.2);
    assert_int_equal(tu_write_file(go, "", 0), 0);
    assert_int_equal(efx_wait_final(fx, x, 5)->phase, ENGINE_COMPLETED);
    assert_int_equal(efx_wait_final(fx, y, 5)->phase, ENGINE_COMPLETED);
    assert_true(efx_find(fx, a, ENGINE_COMPLETED) >= 0 && efx_find(fx, b, ENGINE_COMPLETED) >= 0);
    assert_true(efx_find(fx, x, ENGINE_QUEUED) >= 0);
    assert_true(efx_find(fx, x, ENGINE_QUEUED) < efx_find(fx, y, ENGINE_QUEUED));
    fx->opts.poll_interval = 0.05;
    free(go);
}

static void test_prereq_unknown(void **state)
{
    efx *fx = *state;
    char ghost[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, ghost);
    efx_submit(
        fx, b,
        (engine_job_spec){.argv = (const char *[]){"true", NULL}, .prereqs = (const char *[]){ghost, NULL}});
    const engine_job *j = engine_job_get(fx->e, b);
    assert_int_equal(j->phase, ENGINE_ERROR); /* at once */
    assert_int_equal(j->reason, ENGINE_REASON_PREREQUISITE);
    assert_non_null(strstr(j->message, ghost));
    assert_non_null(strstr(j->message, "unknown"));
    assert_int_equal(efx_wait_final(fx, b, 2)->reason, ENGINE_REASON_PREREQUISITE);
}

/* ---- outputs ----------------------------------------------------------- */

static const char *const write_outputs[] = {"sh", "-c", "echo x > a.fits; echo y > b.fits; echo z > c.txt",
                                            NULL};

static void test_output_globs(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit(fx, id,
               (engine_job_spec){.argv = write_outputs, .output_globs = (const char *[]){"*.fits", NULL}});
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
    const engine_job *j = engine_job_get(fx->e, id);
    assert_int_equal(json_array_size(j->results), 2);
    assert_int_equal(j->results_total, 2);
    assert_false(j->results_truncated);
    char *a = tu_path_join(j->workdir, "a.fits");
    char *b = tu_path_join(j->workdir, "b.fits");
    assert_string_equal(json_string_value(json_array_get(j->results, 0)), a);
    assert_string_equal(json_string_value(json_array_get(j->results, 1)), b);
    assert_true(file_exists(a));
    free(a);
    free(b);
    /* "*" lists the job's files and its log, not the runner's own (its
     * claim and status file) */
    efx_submit(fx, id, (engine_job_spec){.argv = write_outputs, .output_globs = (const char *[]){"*", NULL}});
    assert_int_equal(efx_wait_final(fx, id, 5)->phase, ENGINE_COMPLETED);
    j = engine_job_get(fx->e, id);
    char *claim = tu_path_join(j->workdir, "runner.claim");
    assert_true(file_exists(claim)); /* there, and not listed */
    free(claim);
    const char *const want[] = {"a.fits", "b.fits", "c.txt", "ocps.log"};
    assert_int_equal(json_array_size(j->results), 4);
    for (size_t k = 0; k < 4; k++) {
        char *path = tu_path_join(j->workdir, want[k]);
        assert_string_equal(json_string_value(json_array_get(j->results, k)), path);
        free(path);
    }
}

static void test_output_globs_truncated(void **state)
{
    efx *fx = *state;
    efx_close(fx);
    fx->opts.max_results = 1;
    efx_open(fx);
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit(fx, id,
               (engine_job_spec){.argv = write_outputs, .output_globs = (const char *[]){"*.fits", NULL}});
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
    assert_int_equal(ev->nresults, 1);
    assert_int_equal(ev->results_total, 2);
    assert_true(ev->results_truncated);
}

/* A job writing far more than job_log_max: its log keeps the beginning
 * and the end, says how much was left out, and stays within the limit
 * (plus the runner's two lines); the job runs to its end unhindered. */
static void test_job_log_limited(void **state)
{
    efx *fx = *state;
    efx_close(fx);
    fx->opts.job_log_max = 100000;
    efx_open(fx);
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, (const char *[]){"sh", "-c", "seq 1 300000; echo last line; exit 3", NULL});
    const efx_event *ev = efx_wait_final(fx, id, 20);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->exit_code, 3);
    const engine_job *j = engine_job_get(fx->e, id);
    size_t len = 0;
    char *log = tu_read_file(j->log_path, &len);
    assert_non_null(log);
    assert_true(len > 90000 && len < 100000 + 1000);
    assert_true(strncmp(log, "1\n2\n3\n", 6) == 0);
    const char *end = "299999\n300000\nlast line\n";
    assert_true(len > strlen(end) && strcmp(log + len - strlen(end), end) == 0);
    assert_non_null(strstr(log, "reached the log's limit of 100000 bytes"));
    assert_non_null(strstr(log, "bytes of the job's output were left out here"));
    free(log);
}

/* An abort reaches a runner that was stopped (SIGSTOP: a debugger, a
 * mistaken kill): the engine continues it after its SIGTERM, so the job
 * ends now rather than whenever someone sends SIGCONT; the same for a
 * runner adopted after a restart. */
static void test_abort_stopped_runner(void **state)
{
    efx *fx = *state;
    for (int adopted = 0; adopted < 2; adopted++) {
        char id[ENGINE_JOB_ID_LEN + 1];
        fx_submit(fx, id, (const char *[]){"sh", "-c", "echo $$ > job.pid; exec sleep 30", NULL});
        long job = fx_wait_pid_file(fx, id, "job.pid");
        long runner = parent_of(job);
        assert_true(runner > 1 && runner != getpid());
        if (adopted) {
            efx_close(fx);
            efx_clear_events(fx);
            efx_open(fx);
        }
        assert_int_equal(kill((pid_t)runner, SIGSTOP), 0);
        char err[256];
        double t0 = tu_now();
        assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
        const efx_event *ev = efx_wait_final(fx, id, 5);
        kill((pid_t)runner, SIGCONT); /* in case it failed */
        assert_int_equal(ev->phase, ENGINE_ABORTED);
        assert_true(tu_now() - t0 < 3.0);
        assert_true(wait_pid_gone(job, 2.0));
    }
}

/* A SIGTERM the engine did not send (a shutdown, an operator's kill) stops
 * the job as an abort would, but is not reported as one: ERROR /
 * infrastructure, saying so (a caller that never aborted is not told it
 * did). */
static void test_outside_sigterm_is_not_an_abort(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, (const char *[]){"sh", "-c", "echo $$ > job.pid; exec sleep 30", NULL});
    long job = fx_wait_pid_file(fx, id, "job.pid");
    long runner = parent_of(job);
    assert_true(runner > 1 && runner != getpid());
    assert_int_equal(kill((pid_t)runner, SIGTERM), 0);
    const efx_event *ev = efx_wait_final(fx, id, 10);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_INFRASTRUCTURE);
    assert_non_null(strstr(ev->message, "SIGTERM the engine did not send"));
    assert_true(wait_pid_gone(job, 2.0));
}

/* ---- restart ----------------------------------------------------------- */

static void test_restart_readopts(void **state)
{
    efx *fx = *state;
    char ids[3][ENGINE_JOB_ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        fx_submit(fx, ids[i], (const char *[]){"sleep", "0.8", NULL});
    }
    for (int i = 0; i < 3; i++) {
        efx_wait_phase(fx, ids[i], ENGINE_EXECUTING, 5);
    }
    efx_close(fx); /* the runners keep going */
    efx_clear_events(fx);
    efx_open(fx);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(engine_job_get(fx->e, ids[i])->phase, ENGINE_EXECUTING);
    }
    for (int i = 0; i < 3; i++) {
        const efx_event *ev = efx_wait_final(fx, ids[i], 5);
        assert_int_equal(ev->phase, ENGINE_COMPLETED);
        assert_int_equal(ev->exit_code, 0);
    }
    efx_run_for(fx, 0.3);
    assert_int_equal(fx->nevents, 6); /* each reported as found (executing), then its end */
    for (int i = 0; i < 3; i++) {
        assert_true(efx_find(fx, ids[i], ENGINE_EXECUTING) >= 0);
        assert_int_equal(efx_count_final(fx, ids[i]), 1);
    }
    /* Not published: a second restart reports them again, once. */
    efx_close(fx);
    efx_clear_events(fx);
    efx_open(fx);
    efx_run_for(fx, 0.1);
    assert_int_equal(fx->nevents, 3);
}

static void test_abort_adopted(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, (const char *[]){"sh", "-c", "echo $$ > job.pid; exec sleep 30", NULL});
    long job = fx_wait_pid_file(fx, id, "job.pid");
    efx_close(fx);
    efx_clear_events(fx);
    efx_open(fx);
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_ABORTED);
    assert_int_equal(ev->exit_code, ENGINE_EXIT_ABORTED);
    assert_true(wait_pid_gone(job, 2.0));
    assert_int_equal(fx->nevents, 2); /* executing, as found at open; aborted */
}

static void test_restart_lost(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, (const char *[]){"sh", "-c", "echo $$ > job.pid; exec sleep 30", NULL});
    long job = fx_wait_pid_file(fx, id, "job.pid");
    long runner = parent_of(job);
    assert_true(runner > 1);
    efx_close(fx);
    /* the runner first: killed after its job, it could still record the
     * job's end (killed by signal 9) before its own SIGKILL arrived */
    kill((pid_t)runner, SIGKILL);
    kill((pid_t)-job, SIGKILL);
    assert_true(wait_pid_gone(runner, 2.0));
    efx_clear_events(fx);
    efx_open(fx);
    const efx_event *ev = efx_wait_final(fx, id, 2);
    assert_int_equal(ev->phase, ENGINE_UNKNOWN);
    assert_int_equal(ev->reason, ENGINE_REASON_LOST);
    assert_int_equal(ev->exit_code, -1);
    assert_int_equal(fx->nevents, 1);
}

/* The CSC dies right after spawning a job's runner, before the engine has
 * stored anything more (a child process runs the engine with the test
 * hook OCPS_ENGINE_TEST_EXIT_AFTER_SPAWN); `runner_env` is given to the job
 * (and so to its runner). A new engine on the same store re-adopts the job
 * instead of running it a second time: the job appends one line to `runs`
 * each time it runs. */
static void crash_after_spawn(efx *fx, const char *runner_env)
{
    char runs[600];
    char script[800];
    snprintf(runs, sizeof runs, "%s/runs", fx->dir);
    snprintf(script, sizeof script, "echo run >> '%s'; sleep 0.5; echo x > out.fits", runs);
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(NULL, id);
    efx_close(fx);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("OCPS_ENGINE_TEST_EXIT_AFTER_SPAWN", "77", 1);
        uv_loop_t loop;
        engine *e = NULL;
        char err[512];
        engine_job_spec spec = {.argv = (const char *[]){"sh", "-c", script, NULL},
                                .env = (const char *[]){runner_env, NULL},
                                .output_globs = (const char *[]){"*.fits", NULL}};
        if (uv_loop_init(&loop) == 0 && engine_open(&e, &loop, &fx->opts, NULL, NULL, err, sizeof err) == 0) {
            engine_job_submit(e, id, &spec, err, sizeof err);
            uv_run(&loop, UV_RUN_DEFAULT); /* started off the loop: exits in the hook */
        }
        _exit(1);
    }
    assert_int_equal(tu_wait_exit(pid, 5), 77);
    efx_clear_events(fx);
    efx_open(fx);
    const efx_event *ev = efx_wait_final(fx, id, 10);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
    assert_int_equal(ev->results_total, 1);
    efx_run_for(fx, 0.8); /* a second run would have started by now */
    assert_int_equal(efx_count_final(fx, id), 1);
    char *text = tu_read_file(runs, NULL);
    assert_non_null(text);
    assert_string_equal(text, "run\n");
    free(text);
}

static void test_crash_after_spawn_runs_once(void **state)
{
    crash_after_spawn(*state, "OCPS_TEST_NOTHING=1");
}

/* The same, but the first runner claims the job only 0.3 s after it was
 * spawned: the new engine finds no claim and starts a second runner; the
 * one that claims first runs the job, the other says so in the log and
 * leaves, and the engine follows the winner. */
static void test_crash_before_claim_runs_once(void **state)
{
    efx *fx = *state;
    crash_after_spawn(fx, "OCPS_RUNNER_TEST_CLAIM_DELAY=0.3");
    const engine_job *j = engine_job_get(fx->e, fx->events[fx->nevents - 1].id);
    assert_non_null(j);
    char *log = tu_read_file(j->log_path, NULL);
    assert_non_null(log);
    const char *refused = strstr(log, "it is already claimed by runner");
    assert_non_null(refused);
    assert_null(strstr(refused + 1, "it is already claimed by runner"));
    free(log);
}

/* A job whose leader forks a child that outlives it: the job's pid and
 * the child's are written to job.pid and child.pid. */
static const char *const job_with_child[] = {"sh", "-c",
                                             "echo $$ > job.pid; sleep 30 & echo $! > child.pid; wait", NULL};

/* SIGKILL the runner of job id (running job_with_child) once the job's
 * and its child's pids are written (into *job, *child); the job must end
 * lost: its final event. */
static const efx_event *kill_runner_of(efx *fx, const char *id, long *job, long *child)
{
    *child = fx_wait_pid_file(fx, id, "child.pid");
    *job = fx_wait_pid_file(fx, id, "job.pid");
    long runner = parent_of(*job);
    assert_true(runner > 1 && runner != getpid());
    kill((pid_t)runner, SIGKILL);
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_UNKNOWN);
    assert_int_equal(ev->reason, ENGINE_REASON_LOST);
    return ev;
}

/* Its runner is SIGKILLed while the engine watches: the job's whole process
 * group dies too, and the job ends as lost, saying why. */
static void test_killed_runner_kills_its_job(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, job_with_child);
    long job;
    long child;
    const efx_event *ev = kill_runner_of(fx, id, &job, &child);
    assert_int_equal(ev->exit_code, -1);
    assert_non_null(strstr(ev->message, "killed by signal 9"));
    assert_non_null(strstr(ev->message, "without recording an outcome"));
    assert_non_null(strstr(ev->message, "process group"));
    assert_true(wait_pid_gone(job, 2.0));
    assert_true(wait_pid_gone(child, 2.0));
}

/* The same during a job's second step (then_argv): the message says the
 * first step completed, so its work (pipetask's outputs) is known done. */
static void test_killed_runner_in_second_step(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    static const char *const first[] = {"true", NULL};
    efx_submit(fx, id, (engine_job_spec){.argv = first, .then_argv = job_with_child});
    long job;
    long child;
    const efx_event *ev = kill_runner_of(fx, id, &job, &child);
    print_message("lost in step 2: %s\n", ev->message);
    assert_non_null(strstr(ev->message, "without recording an outcome in step 2 (step 1 completed)"));
    assert_true(wait_pid_gone(child, 2.0));
}

/* The same while no engine watches: the job's leader dies with its runner
 * (PR_SET_PDEATHSIG); the next engine kills the rest of its group and
 * reports the job lost. */
static void test_killed_runner_unwatched(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, job_with_child);
    long child = fx_wait_pid_file(fx, id, "child.pid");
    long job = fx_wait_pid_file(fx, id, "job.pid");
    long runner = parent_of(job);
    efx_close(fx);
    kill((pid_t)runner, SIGKILL);
    assert_true(wait_pid_gone(runner, 2.0));
    assert_true(wait_pid_gone(job, 2.0)); /* with its runner */
    assert_false(pid_gone(child));        /* not yet */
    efx_clear_events(fx);
    efx_open(fx);
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_UNKNOWN);
    assert_int_equal(ev->reason, ENGINE_REASON_LOST);
    assert_non_null(strstr(ev->message, "vanished without recording an outcome"));
    /* the group's leftover (the child) is killed by the new engine; how the
     * message counts it depends on timing, its being gone does not */
    assert_true(wait_pid_gone(child, 2.0));
}

static void test_restart_published_not_reported(void **state)
{
    efx *fx = *state;
    char pub[ENGINE_JOB_ID_LEN + 1];
    char unpub[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, pub, (const char *[]){"true", NULL});
    fx_submit(fx, unpub, (const char *[]){"false", NULL});
    efx_wait_final(fx, pub, 5);
    efx_wait_final(fx, unpub, 5);
    assert_int_equal(engine_job_mark_published(fx->e, pub), 0);
    assert_true(engine_job_get(fx->e, pub)->result_published);
    efx_close(fx);
    efx_clear_events(fx);
    efx_open(fx);
    efx_run_for(fx, 0.2);
    assert_int_equal(fx->nevents, 1);
    assert_string_equal(fx->events[0].id, unpub);
    assert_int_equal(fx->events[0].phase, ENGINE_ERROR);
    assert_int_equal(fx->events[0].exit_code, 1);
    /* Not in memory (no event), but read back from the store. */
    assert_int_equal(engine_count(fx->e, ENGINE_COMPLETED), 0);
    const engine_job *j = engine_job_get(fx->e, pub);
    assert_non_null(j);
    assert_int_equal(j->phase, ENGINE_COMPLETED);
    assert_true(j->result_published);
    /* The published job is still known: aborting it is a no-op, reusing
     * its id is refused, and it satisfies a prerequisite. */
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, pub, err, sizeof err), 0);
    engine_job_spec spec = {.argv = (const char *[]){"true", NULL}};
    assert_int_equal(engine_job_submit(fx->e, pub, &spec, err, sizeof err), -EEXIST);
    char b[ENGINE_JOB_ID_LEN + 1];
    efx_submit(fx, b,
               (engine_job_spec){.argv = (const char *[]){"true", NULL},
                                 .prereqs = (const char *[]){pub, NULL},
                                 .prereq_must_succeed = true});
    assert_int_equal(efx_wait_final(fx, b, 5)->phase, ENGINE_COMPLETED);
}

/* ---- names and validation ---------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(engine_phase_name(ENGINE_PENDING), "pending");
    assert_string_equal(engine_phase_name(ENGINE_QUEUED), "queued");
    assert_string_equal(engine_phase_name(ENGINE_EXECUTING), "executing");
    assert_string_equal(engine_phase_name(ENGINE_COMPLETED), "completed");
    assert_string_equal(engine_phase_name(ENGINE_ERROR), "error");
    assert_string_equal(engine_phase_name(ENGINE_ABORTED), "aborted");
    assert_string_equal(engine_phase_name(ENGINE_UNKNOWN), "unknown");
    assert_string_equal(engine_reason_name(ENGINE_REASON_NONE), "none");
    assert_string_equal(engine_reason_name(ENGINE_REASON_SUCCESS), "success");
    assert_string_equal(engine_reason_name(ENGINE_REASON_PIPELINE_FAILED), "pipeline_failed");
    assert_string_equal(engine_reason_name(ENGINE_REASON_TIMEOUT), "timeout");
    assert_string_equal(engine_reason_name(ENGINE_REASON_ABORTED), "aborted");
    assert_string_equal(engine_reason_name(ENGINE_REASON_LOST), "lost");
    assert_string_equal(engine_reason_name(ENGINE_REASON_INFRASTRUCTURE), "infrastructure");
    assert_string_equal(engine_reason_name(ENGINE_REASON_PREREQUISITE), "prerequisite");
    assert_false(engine_phase_final(ENGINE_EXECUTING));
    assert_true(engine_phase_final(ENGINE_UNKNOWN));
}

static void test_job_ids_and_validation(void **state)
{
    efx *fx = *state;
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, a);
    engine_new_job_id(fx->e, b);
    assert_int_equal(strlen(a), ENGINE_JOB_ID_LEN);
    assert_int_equal(strspn(a, "0123456789abcdef"), ENGINE_JOB_ID_LEN);
    assert_string_not_equal(a, b);
    /* the creation time first (the store's index of ids grows at its end),
     * then random: an id made later sorts after, the random parts differ */
    char later[ENGINE_JOB_ID_LEN + 1];
    struct timespec ms2 = {0, 2000000};
    nanosleep(&ms2, NULL);
    engine_new_job_id(fx->e, later);
    assert_true(strcmp(later, a) > 0 && strcmp(later, b) > 0);
    assert_string_not_equal(a + 12, b + 12);
    char err[256];
    engine_job_spec empty = {.argv = (const char *[]){NULL}};
    assert_int_equal(engine_job_submit(fx->e, a, &empty, err, sizeof err), -EINVAL);
    engine_job_spec ok = {.argv = (const char *[]){"true", NULL}};
    assert_int_equal(engine_job_submit(fx->e, "not-an-id", &ok, err, sizeof err), -EINVAL);
    engine_job_spec abs_glob = {.argv = ok.argv, .output_globs = (const char *[]){"/etc/*", NULL}};
    assert_int_equal(engine_job_submit(fx->e, a, &abs_glob, err, sizeof err), -EINVAL);
    assert_int_equal(engine_job_submit(fx->e, a, &ok, err, sizeof err), 0);
    assert_int_equal(engine_job_submit(fx->e, a, &ok, err, sizeof err), -EEXIST);
    efx_wait_final(fx, a, 5);
}

/* A work root too long for its jobs' directories, or one that is a file,
 * is refused when the engine opens (nothing created), not at every
 * submission; the longest allowed one works. */
static void test_work_root_too_long(void **state)
{
    efx *fx = *state;
    efx_close(fx);
    char root[ENGINE_WORKDIR_MAX + 64];
    size_t max = ENGINE_WORK_ROOT_MAX;
    size_t n = (size_t)snprintf(root, sizeof root, "%s/long", fx->dir);
    while (n < max + 1) {
        root[n] = n % 100 == 0 ? '/' : 'd'; /* components of at most 99 bytes */
        n++;
    }
    root[n] = '\0';
    root[max] = 'd'; /* not a trailing slash */
    assert_int_equal(strlen(root), max + 1);
    fx->opts.work_root = root;
    char err[512];
    engine *e = NULL;
    assert_int_not_equal(engine_open(&e, &fx->loop, &fx->opts, NULL, NULL, err, sizeof err), 0);
    assert_non_null(strstr(err, "work_root is too long"));
    char top[600];
    snprintf(top, sizeof top, "%s/long", fx->dir);
    assert_int_equal(access(top, F_OK), -1);     /* nothing made */
    char *file = tu_path_join(fx->dir, "afile"); /* a work root that is a file */
    assert_int_equal(tu_write_file(file, "x", 1), 0);
    fx->opts.work_root = file;
    assert_int_not_equal(engine_open(&e, &fx->loop, &fx->opts, NULL, NULL, err, sizeof err), 0);
    assert_non_null(strstr(err, "is not a directory"));
    free(file);
    fx->opts.work_root = root;
    root[max] = '\0';
    if (root[max - 1] == '/') {
        root[max - 1] = 'e'; /* not a trailing slash */
    }
    efx_open(fx);
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, id);
    engine_job_spec spec = {.argv = (const char *[]){"true", NULL}};
    assert_int_equal(engine_job_submit(fx->e, id, &spec, err, sizeof err), 0);
    const efx_event *ev = efx_wait_final(fx, id, 5);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
    fx->opts.work_root = fx->work_root;
}

/* One engine per store: a second engine on an open store (another CSC
 * index configured with the same job_store, or the same index on the
 * other transport) is refused with the holder's pid, and runs nothing;
 * once the first has closed, the store opens again. */
static void test_one_engine_per_store(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, id);
    engine_job_spec spec = {.argv = (const char *[]){"sleep", "30", NULL}};
    char err[512];
    assert_int_equal(engine_job_submit(fx->e, id, &spec, err, sizeof err), 0);
    engine *second = NULL;
    assert_int_not_equal(engine_open(&second, &fx->loop, &fx->opts, NULL, NULL, err, sizeof err), 0);
    assert_null(second);
    char expect[64];
    snprintf(expect, sizeof expect, "is in use by another engine (pid %ld)", (long)getpid());
    assert_non_null(strstr(err, expect));
    const engine_job *j = engine_job_get(fx->e, id);
    assert_non_null(j);
    assert_int_not_equal(j->phase, ENGINE_ERROR); /* the first engine's job is untouched */
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    efx_wait_final(fx, id, 10);
    efx_close(fx);
    efx_open(fx); /* released */
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_work_root_topdir),
        T(test_success),
        T(test_env_workdir_meta),
        T(test_failure_exit_code),
        T(test_signal_exit),
        T(test_timeout),
        T(test_spawn_failure),
        T(test_long_message_cut),
        T(test_simulate),
        T(test_abort_running),
        T(test_abort_queued),
        T(test_abort_idempotent_and_unknown),
        T(test_abort_while_starting),
        T(test_abort_while_spawning),
        T(test_abort_while_spawning_that_fails),
        T(test_starting_job_holds_its_slot),
        T(test_close_while_starting),
        T(test_close_while_spawning),
        T(test_max_waiting),
        T(test_fifo_concurrency),
        T(test_queue_positions_as_jobs_leave),
        T(test_prereq_success),
        T(test_prereq_failure),
        T(test_prereq_removed_after_it_ended),
        T(test_prereq_failure_while_another_runs),
        T(test_prereqs_ending_together_release_in_order),
        T(test_prereq_unknown),
        T(test_prereq_several_and_a_chain),
        T(test_prereq_fails_at_its_start),
        T(test_prereq_across_a_restart),
        T(test_output_globs),
        T(test_output_globs_truncated),
        T(test_job_log_limited),
        T(test_runner_setup_failure),
        T(test_outcome_read_after_running_out_of_descriptors),
        T(test_abort_stopped_runner),
        T(test_outside_sigterm_is_not_an_abort),
        T(test_restart_readopts),
        T(test_abort_adopted),
        T(test_restart_lost),
        T(test_restart_published_not_reported),
        T(test_crash_after_spawn_runs_once),
        T(test_crash_before_claim_runs_once),
        T(test_killed_runner_kills_its_job),
        T(test_killed_runner_in_second_step),
        T(test_killed_runner_unwatched),
        cmocka_unit_test(test_names),
        T(test_job_ids_and_validation),
        T(test_work_root_too_long),
        T(test_one_engine_per_store),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
