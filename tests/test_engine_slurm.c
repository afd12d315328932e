/*
 * test_engine_slurm: the job engine with the Slurm executor on a real
 * single-node cluster (tests/support/slurm_cluster.sh) started once for the
 * group: success and the job's record, exit codes, abort, prerequisites,
 * a prerequisite that timed out but exited 0, re-adoption after a restart,
 * a failed prerequisite purged from Slurm before a restart, no second
 * submission after a crash between sbatch and the store, prerequisites as
 * Slurm dependencies, scancel from outside, the controller down and back,
 * a job submitted during a slow poll, a status file read when descriptors
 * are back, a waiting job aborted while the controller is down, a drained
 * node, Slurm's own time limit (TIMEOUT), polls that ask for our jobs only
 * (--me), the job's environment despite SBATCH_EXPORT=NONE, sbatch's
 * capacity refusals retried, Slurm's reason for a job it could not
 * launch, a job Slurm will never start (PartitionTimeLimit) ended.
 * Skipped (printed) when Slurm is not installed;
 * OCPS_TEST_FILTER=NAME runs one test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "ocps/engine.h"
#include "slurm_cluster.h"
#include "engine_fixture.h"
#include "test_util.h"

static slurm_cluster cluster;
static bool have_slurm;
static char skip_why[256];

static int group_setup(void **state)
{
    (void)state;
    have_slurm = slurm_cluster_available(skip_why, sizeof skip_why);
    if (!have_slurm) {
        return 0;
    }
    char err[4096];
    if (slurm_cluster_start(&cluster, err, sizeof err) != 0) {
        fprintf(stderr, "cannot start the test cluster: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (have_slurm) {
        slurm_cluster_stop(&cluster);
    }
    return 0;
}

static int setup(void **state)
{
    efx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    *state = fx;
    if (!have_slurm) {
        return 0;
    }
    efx_init(fx, "work/jobs", OCPS_JOB_RUNNER);
    fx->log_to_stderr = true;
    fx->opts.max_concurrent = 8;
    fx->opts.poll_interval = 0.2;
    fx->opts.executor = ENGINE_EXECUTOR_SLURM;
    fx->opts.slurm.slurm_conf = cluster.slurm_conf;
    fx->opts.slurm.cpus_per_job = 1;
    efx_open(fx);
    return 0;
}

/* PATH as it was before a test changed it (restored by teardown, also
 * when the test failed); NULL when unchanged. */
static char *saved_path;

static bool partition_limited;
static int partition_max_time(const char *value);

static int teardown(void **state)
{
    if (partition_limited) { /* test_job_that_can_never_start_ends failed */
        partition_max_time("INFINITE");
        partition_limited = false;
    }
    unsetenv("SBATCH_EXPORT"); /* test_job_env_despite_sbatch_export_none, also when it failed */
    unsetenv("OCPS_TEST_CSC_VAR");
    if (saved_path != NULL) {
        setenv("PATH", saved_path, 1);
        free(saved_path);
        saved_path = NULL;
    }
    efx *fx = *state;
    efx_free(fx);
    free(fx);
    return 0;
}

#define NEED_SLURM()                                                                                         \
    do {                                                                                                     \
        if (!have_slurm) {                                                                                   \
            fprintf(stderr, "SKIPPED: %s\n", skip_why);                                                      \
            skip();                                                                                          \
        }                                                                                                    \
    } while (0)

static void fx_submit(efx *fx, char id[ENGINE_JOB_ID_LEN + 1], const char *const *argv)
{
    efx_submit(fx, id, (engine_job_spec){.argv = argv});
}

static char *fx_job_file(efx *fx, const char *id, const char *name)
{
    const engine_job *j = engine_job_get(fx->e, id);
    assert_non_null(j);
    char *path = tu_path_join(j->workdir, name);
    char *text = tu_read_file(path, NULL);
    free(path);
    return text;
}

/* How many Slurm jobs carry this job's name (squeue -t all). */
static int slurm_jobs_named(const char *id)
{
    char name[64];
    snprintf(name, sizeof name, "ocps-%s", id);
    char *argv[] = {"squeue", "-h", "-t", "all", "--name", name, "-o", "%i", NULL};
    char *out = NULL;
    assert_int_equal(tu_run(argv, &out), 0);
    int n = 0;
    for (const char *p = out; p != NULL && *p != '\0'; p++) {
        n += *p == '\n';
    }
    free(out);
    return n;
}

/* Put a wrapper of Slurm's command `name` first in PATH (restored by
 * teardown; one wrapper per test): the shell lines `prologue`, the real
 * command with the same arguments, `epilogue`, then the command's exit
 * status. The real command's path (free it). */
static char *slurm_wrapper(efx *fx, const char *name, const char *prologue, const char *epilogue)
{
    char *which = NULL;
    char find_cmd[64];
    snprintf(find_cmd, sizeof find_cmd, "command -v %s", name);
    char *find[] = {"sh", "-c", find_cmd, NULL};
    assert_int_equal(tu_run(find, &which), 0);
    which[strcspn(which, "\n")] = '\0';
    char *bin = tu_path_join(fx->dir, "wrapbin");
    assert_int_equal(mkdir(bin, 0755), 0);
    char *wrapper = tu_path_join(bin, name);
    char script[4096];
    int n = snprintf(script, sizeof script, "#!/bin/sh\n%s\n%s \"$@\"\nrc=$?\n%s\nexit $rc\n", prologue,
                     which, epilogue);
    assert_in_range(n, 1, sizeof script - 1);
    assert_int_equal(tu_write_file(wrapper, script, (size_t)n), 0);
    assert_int_equal(chmod(wrapper, 0755), 0);
    saved_path = strdup(getenv("PATH"));
    char path[4096];
    snprintf(path, sizeof path, "%s:%s", bin, saved_path);
    setenv("PATH", path, 1);
    free(wrapper);
    free(bin);
    return which;
}

/* A job succeeds on Slurm; its record looks like a local job's (log,
 * status.json, captured outputs), with the Slurm job id and node. */
static void test_success_and_record(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const argv[] = {"sh", "-c", "echo hello from slurm; echo data > out.txt", NULL};
    static const char *const globs[] = {"*.txt", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    double t0 = tu_now();
    efx_submit(fx, id, (engine_job_spec){.argv = argv, .output_globs = globs});
    const efx_event *ev = efx_wait_final(fx, id, 30);
    fprintf(stderr, "submit -> completed: %.2f s\n", tu_now() - t0);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
    assert_int_equal(ev->exit_code, 0);
    assert_int_equal(ev->nresults, 1);
    assert_true(ev->slurm_job_id[0] != '\0');
    assert_true(ev->slurm_nodes[0] != '\0');
    char *log = fx_job_file(fx, id, "ocps.log");
    assert_non_null(log);
    assert_non_null(strstr(log, "hello from slurm"));
    free(log);
    char *status = fx_job_file(fx, id, "status.json");
    assert_non_null(status);
    free(status);
    assert_int_equal(slurm_jobs_named(id), 1);
}

/* Non-zero exit codes come back exactly, from the runner's status. */
static void test_exit_code(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const argv[] = {"sh", "-c", "exit 7", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    const efx_event *ev = efx_wait_final(fx, id, 30);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_PIPELINE_FAILED);
    assert_int_equal(ev->exit_code, 7);
}

/* Arguments reach the job verbatim: nothing passes through a shell. */
static void test_arguments_verbatim(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const argv[] = {
        "sh", "-c", "printf '%s|' \"$@\" > args.out", "x", "a b", "$(touch injected)", "'\"`;", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    assert_int_equal(efx_wait_final(fx, id, 30)->phase, ENGINE_COMPLETED);
    char *out = fx_job_file(fx, id, "args.out");
    assert_non_null(out);
    assert_string_equal(out, "a b|$(touch injected)|'\"`;|");
    free(out);
    char *inj = fx_job_file(fx, id, "injected");
    assert_null(inj);
}

/* Abort of a running job: ABORTED, exit code 255, its log kept. */
static void test_abort_running(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const argv[] = {"sh", "-c", "echo started; sleep 60", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    efx_wait_phase(fx, id, ENGINE_EXECUTING, 30);
    efx_run_for(fx, 0.5);
    char err[256];
    double t0 = tu_now();
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    const efx_event *ev = efx_wait_final(fx, id, 20);
    fprintf(stderr, "abort -> aborted: %.2f s\n", tu_now() - t0);
    assert_int_equal(ev->phase, ENGINE_ABORTED);
    assert_int_equal(ev->exit_code, ENGINE_EXIT_ABORTED);
    char *log = fx_job_file(fx, id, "ocps.log");
    assert_non_null(log);
    assert_non_null(strstr(log, "started"));
    free(log);
}

/* The first event of job id with a Slurm job id (-1 if none). */
static int fx_find_submitted(const efx *fx, const char *id)
{
    for (int i = 0; i < fx->nevents; i++) {
        if (strcmp(fx->events[i].id, id) == 0 && fx->events[i].slurm_job_id[0] != '\0') {
            return i;
        }
    }
    return -1;
}

/* A prerequisite: the second job is submitted at once with a Slurm
 * dependency (its message shows Slurm's reason Dependency) and runs only
 * after the first has ended. */
static void test_prerequisite(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const first[] = {"sh", "-c", "sleep 3; date +%s.%N > \"$JOB_OUTPUT_DIR/../first\"",
                                        NULL};
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, first);
    const char *const prereqs[] = {a, NULL};
    static const char *const second[] = {"sh", "-c", "test -f \"$JOB_OUTPUT_DIR/../first\"", NULL};
    efx_submit(fx, b, (engine_job_spec){.argv = second, .prereqs = prereqs, .prereq_must_succeed = true});
    double end = tu_now() + 20;
    bool dependency_seen = false;
    while (!dependency_seen && efx_count_final(fx, a) == 0 && tu_now() < end) {
        for (int i = 0; i < fx->nevents; i++) {
            dependency_seen = dependency_seen || (strcmp(fx->events[i].id, b) == 0 &&
                                                  strstr(fx->events[i].message, "(Dependency)") != NULL);
        }
        efx_spin(fx);
    }
    assert_true(dependency_seen);
    assert_int_equal(efx_count_final(fx, a), 0); /* b was in Slurm while a ran */
    assert_int_equal(efx_wait_final(fx, a, 30)->phase, ENGINE_COMPLETED);
    assert_int_equal(efx_wait_final(fx, b, 30)->phase, ENGINE_COMPLETED);
}

/* A prerequisite that fails: the dependent job, already in Slurm, is
 * cancelled and ends ERROR / prerequisite without running. */
static void test_prerequisite_fails(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const first[] = {"sh", "-c", "sleep 2; exit 1", NULL};
    static const char *const second[] = {"sh", "-c", "echo ran > ran.txt", NULL};
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, first);
    const char *const prereqs[] = {a, NULL};
    efx_submit(fx, b, (engine_job_spec){.argv = second, .prereqs = prereqs, .prereq_must_succeed = true});
    const efx_event *ev = efx_wait_final(fx, b, 30);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_PREREQUISITE);
    assert_true(fx_find_submitted(fx, b) >= 0); /* it had been handed to Slurm */
    assert_int_equal(efx_find(fx, b, ENGINE_EXECUTING), -1);
    char *ran = fx_job_file(fx, b, "ran.txt");
    assert_null(ran);
}

/* A prerequisite stopped at its max_duration whose program catches
 * SIGTERM and exits 0 did not succeed: its runner's exit status says so to
 * Slurm, so the dependent job (afterok) never runs and ends ERROR /
 * prerequisite, as with the local executor. */
static void test_prerequisite_timed_out_exits_zero(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const first[] = {"sh", "-c", "trap 'exit 0' TERM; sleep 60 & wait", NULL};
    static const char *const second[] = {"sh", "-c", "echo ran > ran.txt", NULL};
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    efx_submit(fx, a, (engine_job_spec){.argv = first, .max_duration = 2});
    const char *const prereqs[] = {a, NULL};
    efx_submit(fx, b, (engine_job_spec){.argv = second, .prereqs = prereqs, .prereq_must_succeed = true});
    const efx_event *ea = efx_wait_final(fx, a, 30);
    assert_int_equal(ea->phase, ENGINE_ERROR);
    assert_int_equal(ea->reason, ENGINE_REASON_TIMEOUT);
    const efx_event *ev = efx_wait_final(fx, b, 30);
    fprintf(stderr, "dependant of a timed-out prerequisite: %s (%s)\n", engine_phase_name(ev->phase),
            ev->message);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_PREREQUISITE);
    assert_int_equal(efx_find(fx, b, ENGINE_EXECUTING), -1);
    char *ran = fx_job_file(fx, b, "ran.txt");
    assert_null(ran);
}

/* The engine closes while the job runs in Slurm; a new engine re-adopts it
 * by its stored Slurm job id and reports its end once. */
static void test_restart_readopts(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const argv[] = {"sh", "-c", "sleep 3; exit 4", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    efx_wait_phase(fx, id, ENGINE_EXECUTING, 30);
    efx_close(fx);
    assert_int_equal(efx_count_final(fx, id), 0);
    efx_open(fx);
    const efx_event *ev = efx_wait_final(fx, id, 30);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->exit_code, 4);
    efx_run_for(fx, 1.0);
    assert_int_equal(efx_count_final(fx, id), 1);
    assert_int_equal(slurm_jobs_named(id), 1);
}

/* The store as a controller that purged a job (MinJobAge) leaves it for a
 * restarted engine: the job's Slurm id is one Slurm does not know. */
static void forget_slurm_id(const char *store, const char *id)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE jobs SET executor_id = '99999' WHERE id = '%s'", id);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
}

/* A prerequisite that failed while the engine was closed and that Slurm
 * has purged since: after the restart its dependant, waiting in the
 * engine's own queue for a slot, is not submitted with an afterok on an id
 * Slurm no longer knows (Slurm takes that as satisfied) before a poll has
 * judged the prerequisite (from its status.json: failed). The dependant
 * ends ERROR / prerequisite without running. */
static void test_purged_failed_prerequisite_after_restart(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    efx_close(fx);
    fx->opts.max_concurrent = 1; /* the dependant waits for the prerequisite's slot */
    efx_open(fx);
    static const char *const first[] = {"sh", "-c", "sleep 2; exit 3", NULL};
    static const char *const second[] = {"sh", "-c", "echo ran > ran.txt", NULL};
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, first);
    efx_wait_phase(fx, a, ENGINE_EXECUTING, 30);
    const char *const prereqs[] = {a, NULL};
    efx_submit(fx, b, (engine_job_spec){.argv = second, .prereqs = prereqs, .prereq_must_succeed = true});
    efx_wait_phase(fx, b, ENGINE_QUEUED, 10);
    char *status = tu_path_join(engine_job_get(fx->e, a)->workdir, "status.json");
    char *bdir = strdup(engine_job_get(fx->e, b)->workdir);
    efx_close(fx);
    assert_int_equal(fx_find_submitted(fx, b), -1); /* still in the engine's queue */
    double end = tu_now() + 30;
    while (access(status, F_OK) != 0 && tu_now() < end) { /* a fails while the engine is closed */
        usleep(100000);
    }
    assert_int_equal(access(status, F_OK), 0);
    forget_slurm_id(fx->store, a);
    fx->opts.max_concurrent = 2; /* a slot for the dependant at once */
    efx_open(fx);
    const efx_event *ea = efx_wait_final(fx, a, 30);
    assert_int_equal(ea->phase, ENGINE_ERROR);
    assert_int_equal(ea->exit_code, 3);
    const efx_event *ev = efx_wait_final(fx, b, 30);
    fprintf(stderr, "dependant of a purged failed prerequisite: %s (%s)\n", engine_phase_name(ev->phase),
            ev->message);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_PREREQUISITE);
    efx_run_for(fx, 2.0);
    char *ran = tu_path_join(bdir, "ran.txt");
    assert_int_not_equal(access(ran, F_OK), 0);
    assert_int_equal(slurm_jobs_named(b), 0); /* never submitted */
    free(ran);
    free(bdir);
    free(status);
}

/* The engine closes after sbatch was started but before its answer was
 * stored (as a crash would): the new engine finds the submission by name
 * and follows it instead of submitting again. The job runs once. */
static void test_no_second_submission(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    /* the wrapper marks that sbatch runs (its job's directory and script
     * are written off the loop first), then gives the close time to come */
    char *marker = tu_path_join(fx->dir, "sbatch-started");
    char prologue[1200];
    snprintf(prologue, sizeof prologue, "touch '%s'; sleep 0.3", marker);
    free(slurm_wrapper(fx, "sbatch", prologue, ""));
    static const char *const argv[] = {"sh", "-c", "echo run >> runs.txt; sleep 1", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    double t0 = tu_now();
    while (access(marker, F_OK) != 0 && tu_now() - t0 < 30) {
        efx_spin(fx);
    }
    free(marker);
    efx_close(fx); /* sbatch finishes, its answer is never stored */
    assert_int_equal(slurm_jobs_named(id), 1);
    efx_open(fx);
    const efx_event *ev = efx_wait_final(fx, id, 30);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
    assert_true(fx->warnings >= 1); /* "found already submitted" */
    assert_int_equal(slurm_jobs_named(id), 1);
    char *runs = fx_job_file(fx, id, "runs.txt");
    assert_non_null(runs);
    assert_string_equal(runs, "run\n");
    free(runs);
}

/* scancel from outside OCPS: the job ends ABORTED and says why. */
static void test_scancel_outside(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const argv[] = {"sleep", "60", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    const efx_event *run = efx_wait_phase(fx, id, ENGINE_EXECUTING, 30);
    char slurm_id[32];
    snprintf(slurm_id, sizeof slurm_id, "%s", run->slurm_job_id);
    assert_true(slurm_id[0] != '\0');
    char *scancel[] = {"scancel", slurm_id, NULL};
    assert_int_equal(tu_run(scancel, NULL), 0);
    const efx_event *ev = efx_wait_final(fx, id, 20);
    assert_int_equal(ev->phase, ENGINE_ABORTED);
    assert_non_null(strstr(ev->message, "outside"));
}

/* slurmctld down while a job runs: the job stays, one warning, and its
 * true outcome once the controller is back. */
static void test_controller_down(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const argv[] = {"sh", "-c", "sleep 3; exit 5", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    efx_wait_phase(fx, id, ENGINE_EXECUTING, 30);
    assert_int_equal(slurm_cluster_ctld_stop(&cluster), 0);
    double end = tu_now() + 20;
    while (fx->warnings == 0 && tu_now() < end) {
        efx_spin(fx);
    }
    assert_int_equal(fx->warnings, 1);
    efx_run_for(fx, 3.0);
    assert_int_equal(fx->warnings, 1); /* once */
    assert_int_equal(efx_count_final(fx, id), 0);
    assert_int_equal(slurm_cluster_ctld_start(&cluster), 0);
    const efx_event *ev = efx_wait_final(fx, id, 40);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->exit_code, 5);
}

/* The first QUEUED message of job id containing `text`, or NULL. */
static const char *queued_message(efx *fx, const char *id, const char *text)
{
    for (int i = 0; i < fx->nevents; i++) {
        if (strcmp(fx->events[i].id, id) == 0 && fx->events[i].phase == ENGINE_QUEUED &&
            strstr(fx->events[i].message, text) != NULL) {
            return fx->events[i].message;
        }
    }
    return NULL;
}

/* slurmctld down when jobs are submitted: they stay QUEUED, saying why,
 * with one warning; one is aborted meanwhile (never submitted); the other
 * is submitted once the controller is back and runs once. */
static void test_controller_down_at_submission(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    assert_int_equal(slurm_cluster_ctld_stop(&cluster), 0);
    static const char *const argv[] = {"sh", "-c", "exit 6", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    char gone[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    fx_submit(fx, gone, argv);
    double end = tu_now() + 40;
    while ((queued_message(fx, id, "controller does not answer") == NULL ||
            queued_message(fx, gone, "controller does not answer") == NULL) &&
           tu_now() < end) {
        efx_spin(fx);
    }
    const char *why = queued_message(fx, id, "controller does not answer");
    assert_non_null(why);
    fprintf(stderr, "controller down at submission: %s\n", why);
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, gone, err, sizeof err), 0);
    const efx_event *ab = efx_wait_final(fx, gone, 5);
    assert_int_equal(ab->phase, ENGINE_ABORTED);
    efx_run_for(fx, 2.0);
    assert_int_equal(efx_count_final(fx, id), 0);
    assert_int_equal(fx->warnings, 1); /* once, not per attempt */
    assert_int_equal(slurm_cluster_ctld_start(&cluster), 0);
    const efx_event *ev = efx_wait_final(fx, id, 90);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->exit_code, 6); /* ran: its own exit status */
    assert_int_equal(slurm_jobs_named(id), 1);
    assert_int_equal(slurm_jobs_named(gone), 0);
}

/* scontrol update of the cluster's one node (this host): "State=DRAIN"
 * (with a reason) or "State=RESUME"; scontrol's exit status. */
static int node_update(const char *state)
{
    char host[256];
    char *hostname[] = {"hostname", "-s", NULL};
    char *out = NULL;
    assert_int_equal(tu_run(hostname, &out), 0);
    snprintf(host, sizeof host, "NodeName=%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    char *update[] = {"scontrol", "update", host, (char *)state, "Reason=ocps-test", NULL};
    if (strcmp(state, "State=DRAIN") != 0) {
        update[4] = NULL; /* a reason only for a drain */
    }
    return tu_run(update, NULL);
}

/* The node drained: the job stays QUEUED with Slurm's reason in its
 * message, and runs once the node is back. */
static void test_drained_node_keeps_job_queued(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    assert_int_equal(node_update("State=DRAIN"), 0);
    static const char *const argv[] = {"true", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    double end = tu_now() + 15;
    const char *why = NULL;
    while (why == NULL && tu_now() < end) {
        for (int i = 0; i < fx->nevents && why == NULL; i++) {
            if (strcmp(fx->events[i].id, id) == 0 && fx->events[i].phase == ENGINE_QUEUED &&
                strstr(fx->events[i].message, "PENDING (") != NULL &&
                strstr(fx->events[i].message, "PENDING (None)") == NULL) {
                why = fx->events[i].message;
            }
        }
        efx_spin(fx);
    }
    efx_run_for(fx, 1.0);
    int ran = efx_find(fx, id, ENGINE_EXECUTING);
    assert_int_equal(node_update("State=RESUME"), 0);
    assert_non_null(why);
    fprintf(stderr, "drained node: %s\n", why);
    assert_int_equal(ran, -1);
    assert_int_equal(efx_wait_final(fx, id, 30)->phase, ENGINE_COMPLETED);
}

/* squeue slowed to 1.5 s an answer (a wrapper first in PATH): a job
 * whose sbatch answers while a poll runs is not in that poll's answer,
 * and is not taken for a job that left Slurm's queue (it was reported
 * lost, with its slot freed, while it ran). */
static void test_submitted_during_a_slow_poll(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    free(slurm_wrapper(fx, "squeue", "sleep 1.5", ""));
    static const char *const first[] = {"sleep", "8", NULL};
    static const char *const second[] = {"sh", "-c", "sleep 2; exit 4", NULL};
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, first);
    efx_wait_phase(fx, a, ENGINE_EXECUTING, 30); /* a poll has just answered */
    efx_run_for(fx, 0.5);                        /* the next one (0.2 s later) is under way */
    fx_submit(fx, b, second);
    const efx_event *ev = efx_wait_final(fx, b, 60);
    fprintf(stderr, "submitted during a slow poll: %s (%s)\n", engine_phase_name(ev->phase), ev->message);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->exit_code, 4); /* its own end, not "left Slurm's queue" */
    assert_int_equal(efx_wait_final(fx, a, 60)->phase, ENGINE_COMPLETED);
}

/* How many lines of text contain `with` and not `without` (NULL: no such condition). */
static int count_lines_with(const char *text, const char *with, const char *without)
{
    int n = 0;
    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char line[4096];
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        n += strstr(line, with) != NULL && (without == NULL || strstr(line, without) == NULL);
        p = end != NULL ? end + 1 : NULL;
    }
    return n;
}

/* Every poll asks only for the CSC user's jobs (squeue --me): with more
 * than one -j id, squeue 22.05 without it loads the whole cluster's job
 * table (REQUEST_JOB_INFO) and filters it itself; with --me a non-root
 * user's squeue sends REQUEST_JOB_USER_INFO (docs/slurm.md). The polls
 * (two jobs, two ids) still see both jobs through to their ends. */
static void test_poll_asks_for_own_jobs(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    char *calls = tu_path_join(fx->dir, "squeue-calls");
    char prologue[1400];
    snprintf(prologue, sizeof prologue, "echo \"$*\" >> '%s'", calls);
    free(slurm_wrapper(fx, "squeue", prologue, ""));
    static const char *const one[] = {"sh", "-c", "sleep 2; exit 3", NULL};
    static const char *const two[] = {"sh", "-c", "sleep 2", NULL};
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, one);
    fx_submit(fx, b, two);
    const efx_event *ea = efx_wait_final(fx, a, 30);
    assert_int_equal(ea->phase, ENGINE_ERROR);
    assert_int_equal(ea->exit_code, 3);
    assert_int_equal(efx_wait_final(fx, b, 30)->phase, ENGINE_COMPLETED);
    char *text = tu_read_file(calls, NULL);
    assert_non_null(text);
    int polls = count_lines_with(text, ",", NULL); /* two ids in -j */
    int without = count_lines_with(text, "-j", "--me");
    fprintf(stderr, "squeue polls with two ids: %d; polls without --me: %d\n", polls, without);
    assert_true(polls >= 1);
    assert_int_equal(without, 0);
    free(text);
    free(calls);
}

/* SBATCH_EXPORT=NONE in the CSC's environment (a site-wide default):
 * the job still gets its environment (JOB_ID, the spec's variables, the
 * CSC's own), as sbatch is given --export=ALL itself. */
static void test_job_env_despite_sbatch_export_none(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    setenv("SBATCH_EXPORT", "NONE", 1);
    setenv("OCPS_TEST_CSC_VAR", "from-csc", 1);
    static const char *const argv[] = {
        "sh", "-c", "printf '%s|%s|%s' \"$JOB_ID\" \"$BUTLER_REPO\" \"$OCPS_TEST_CSC_VAR\" > env.out", NULL};
    static const char *const env[] = {"BUTLER_REPO=/repo/main", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit(fx, id, (engine_job_spec){.argv = argv, .env = env});
    const efx_event *ev = efx_wait_final(fx, id, 30);
    unsetenv("SBATCH_EXPORT");
    unsetenv("OCPS_TEST_CSC_VAR");
    fprintf(stderr, "SBATCH_EXPORT=NONE: %s (%s)\n", engine_phase_name(ev->phase), ev->message);
    char *out = fx_job_file(fx, id, "env.out");
    char want[256];
    snprintf(want, sizeof want, "%s|/repo/main|from-csc", id);
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
}

/* sbatch refuses for want of capacity, with Slurm 22.05's own texts (an
 * sbatch wrapper): first the job queue full (after sbatch's own retries),
 * then a QOS/association submit limit. Both are temporary: the job stays
 * QUEUED saying so, is submitted again after the backoff, and runs once. */
static void test_capacity_refusals_are_retried(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    char *count = tu_path_join(fx->dir, "sbatch-count");
    char prologue[2400];
    snprintf(
        prologue, sizeof prologue,
        "n=$(cat '%s' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '%s'\n"
        "if [ $n = 1 ]; then\n"
        "  echo 'sbatch: error: Slurm job queue full, sleeping and retrying' >&2\n"
        "  echo 'sbatch: error: Batch job submission failed: Unable to create job record, try again' >&2\n"
        "  exit 1\n"
        "fi\n"
        "if [ $n = 2 ]; then\n"
        "  echo \"sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
        "(job submit limit, user's size and/or time limits)\" >&2\n"
        "  exit 1\n"
        "fi",
        count, count);
    free(slurm_wrapper(fx, "sbatch", prologue, ""));
    static const char *const argv[] = {"sh", "-c", "echo run >> runs.txt", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    const efx_event *ev = efx_wait_final(fx, id, 60);
    fprintf(stderr, "capacity refusals: %s (%s)\n", engine_phase_name(ev->phase), ev->message);
    assert_int_equal(ev->phase, ENGINE_COMPLETED);
    const char *full = queued_message(fx, id, "job queue full");
    const char *policy = queued_message(fx, id, "accounting/QOS policy");
    assert_non_null(full);
    assert_non_null(policy);
    fprintf(stderr, "queued: %s\nqueued: %s\n", full, policy);
    assert_int_equal(slurm_jobs_named(id), 1);
    char *runs = fx_job_file(fx, id, "runs.txt");
    assert_non_null(runs);
    assert_string_equal(runs, "run\n");
    free(runs);
    free(count);
}

/* The same accounting/QOS policy refusal, every time (a job its QOS never
 * allows, with DenyOnLimit, gives the text of a submit limit): retried for
 * policy_refusal_limit, then the job ends ERROR / infrastructure with
 * Slurm's text and says why, instead of waiting for ever. */
static void test_policy_refusal_ends_after_limit(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    efx_close(fx);
    fx->opts.slurm.policy_refusal_limit = 3;
    efx_open(fx);
    free(
        slurm_wrapper(fx, "sbatch",
                      "echo \"sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
                      "(job submit limit, user's size and/or time limits)\" >&2\n"
                      "exit 1",
                      ""));
    static const char *const argv[] = {"true", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    double t0 = tu_now();
    fx_submit(fx, id, argv);
    const efx_event *ev = efx_wait_final(fx, id, 30);
    double took = tu_now() - t0;
    fprintf(stderr, "policy refusal: %s after %.1f s (%s)\n", engine_phase_name(ev->phase), took,
            ev->message);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_INFRASTRUCTURE);
    assert_non_null(strstr(ev->message, "Job violates accounting/QOS policy"));
    assert_non_null(strstr(ev->message, "refused so for 3 s"));
    assert_non_null(queued_message(fx, id, "accounting/QOS policy")); /* retried first */
    assert_true(took >= 3.0);
    assert_int_equal(slurm_jobs_named(id), 0);
}

/* Slurm cannot launch the job on the node (its working directory is not
 * there, as with a work_root not mounted on the node: here moved away
 * while the job waits for its begin time): FAILED with reason
 * JobLaunchFailure, before the runner recorded anything. The job ends
 * ERROR / infrastructure and its message gives Slurm's state and reason. */
static void test_launch_failure_says_slurm_reason(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    efx_close(fx);
    static const char *const later[] = {"--begin=now+3", NULL};
    fx->opts.slurm.extra_options = later;
    efx_open(fx);
    static const char *const argv[] = {"true", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    double end = tu_now() + 15;
    while (fx_find_submitted(fx, id) < 0 && tu_now() < end) {
        efx_spin(fx);
    }
    assert_true(fx_find_submitted(fx, id) >= 0);
    const char *workdir = engine_job_get(fx->e, id)->workdir;
    char away[1200];
    snprintf(away, sizeof away, "%s.away", workdir);
    assert_int_equal(rename(workdir, away), 0);
    const efx_event *ev = efx_wait_final(fx, id, 30);
    fprintf(stderr, "launch failure: %s (%s)\n", engine_phase_name(ev->phase), ev->message);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_INFRASTRUCTURE);
    assert_int_equal(ev->exit_code, -1);
    assert_non_null(strstr(ev->message, "FAILED"));
    assert_non_null(strstr(ev->message, "JobLaunchFailure"));
}

/* A two-step job whose runner dies (SIGKILL) in step 2 on the node, so
 * that no outcome is recorded: Slurm ends the batch job, and the message
 * says the job was in step 2 (step 1 completed), from the claim. */
static void test_lost_in_second_step_names_the_step(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    static const char *const first[] = {"true", NULL};
    static const char *const second[] = {"sh", "-c", "kill -9 $PPID; sleep 1", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit(fx, id, (engine_job_spec){.argv = first, .then_argv = second});
    const efx_event *ev = efx_wait_final(fx, id, 60);
    fprintf(stderr, "runner killed in step 2: %s, %s\n", engine_phase_name(ev->phase), ev->message);
    assert_true(ev->phase == ENGINE_ERROR || ev->phase == ENGINE_UNKNOWN);
    assert_int_equal(ev->exit_code, -1);
    assert_non_null(strstr(ev->message, " in step 2 (step 1 completed)"));
}

/* The test partition's MaxTime was lowered (restored by teardown, also
 * when the test failed). */
static bool partition_limited;

static int partition_max_time(const char *value)
{
    char arg[64];
    snprintf(arg, sizeof arg, "MaxTime=%s", value);
    char *update[] = {"scontrol", "update", "PartitionName=test", arg, NULL};
    return tu_run(update, NULL);
}

/* A job whose --time exceeds the partition's MaxTime (EnforcePartLimits=NO:
 * Slurm takes it and leaves it PENDING with reason PartitionTimeLimit
 * forever): once the reason has stood for a while it is cancelled in Slurm
 * and ends ERROR / infrastructure with Slurm's reason, freeing its slot, so
 * the job queued behind it runs. */
static void test_job_that_can_never_start_ends(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    efx_close(fx);
    fx->opts.max_concurrent = 1;     /* the second job waits for the first one's slot */
    fx->opts.slurm.time_limit = 300; /* --time=5 (minutes) */
    efx_open(fx);
    partition_limited = true;
    assert_int_equal(partition_max_time("1"), 0);
    static const char *const argv[] = {"echo", "ran", NULL};
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, a, argv);
    fx_submit(fx, b, argv);
    double t0 = tu_now();
    const efx_event *ev = efx_wait_final(fx, a, 60);
    fprintf(stderr, "never starts: %s after %.1f s (%s)\n", engine_phase_name(ev->phase), tu_now() - t0,
            ev->message);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_INFRASTRUCTURE);
    assert_non_null(strstr(ev->message, "PartitionTimeLimit"));
    assert_non_null(queued_message(fx, a, "(PartitionTimeLimit)")); /* said while it waited */
    assert_int_equal(efx_find(fx, a, ENGINE_EXECUTING), -1);
    assert_int_equal(partition_max_time("INFINITE"), 0);
    partition_limited = false;
    assert_int_equal(efx_wait_final(fx, b, 60)->phase, ENGINE_COMPLETED); /* had waited for the slot */
    char slurm_id[32];
    snprintf(slurm_id, sizeof slurm_id, "%s", fx->events[fx_find_submitted(fx, a)].slurm_job_id);
    char *sq[] = {"squeue", "-h", "-t", "all", "-j", slurm_id, "-o", "%T", NULL};
    char *out = NULL;
    assert_int_equal(tu_run(sq, &out), 0);
    fprintf(stderr, "its Slurm job: %s", out);
    assert_non_null(strstr(out, "CANCELLED")); /* not left pending to run once the limit is lifted */
    free(out);
}

/* A file of the test's directory (tu_path_join). */
static char *fx_path(const efx *fx, const char *name)
{
    return tu_path_join(fx->dir, name);
}

/* The status file of a job that Slurm shows ended cannot be read
 * for want of descriptors (RLIMIT_NOFILE lowered while an squeue, held
 * by a wrapper, is under way): the job stays EXECUTING and its outcome is
 * read at a later poll, instead of ending UNKNOWN / lost (as a local job
 * does: test_outcome_read_after_running_out_of_descriptors). */
static void test_outcome_read_after_running_out_of_descriptors(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    char *hold = fx_path(fx, "hold");
    char *answered = fx_path(fx, "answered");
    char prologue[1400];
    char epilogue[800];
    snprintf(prologue, sizeof prologue, "while [ -e '%s' ]; do sleep 0.05; done", hold);
    snprintf(epilogue, sizeof epilogue, "touch '%s'", answered);
    char *real_squeue = slurm_wrapper(fx, "squeue", prologue, epilogue);
    static const char *const argv[] = {"sh", "-c", "sleep 1; exit 3", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    const efx_event *run = efx_wait_phase(fx, id, ENGINE_EXECUTING, 30);
    char slurm_id[32];
    snprintf(slurm_id, sizeof slurm_id, "%s", run->slurm_job_id);
    assert_int_equal(tu_write_file(hold, "", 0), 0); /* the next squeue waits */
    char *sq[] = {real_squeue, "-h", "-t", "all", "-j", slurm_id, "-o", "%T", NULL}; /* not held */
    double end = tu_now() + 30;
    bool ended = false;
    while (!ended && tu_now() < end) { /* the engine's squeue meanwhile waits for the hold */
        efx_run_for(fx, 0.3);
        char *out = NULL;
        ended = tu_run(sq, &out) == 0 && out != NULL && strncmp(out, "FAILED", 6) == 0; /* exit 3 */
        free(out);
    }
    assert_true(ended);
    assert_int_equal(efx_count_final(fx, id), 0);
    unlink(answered);
    struct rlimit was;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
    struct rlimit low = {.rlim_cur = 3, .rlim_max = was.rlim_max}; /* no new descriptor */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    assert_int_equal(unlink(hold), 0); /* the squeue answers: FAILED (the job ended) */
    end = tu_now() + 10;
    while (access(answered, F_OK) != 0 && tu_now() < end) {
        efx_run_for(fx, 0.05);
    }
    efx_run_for(fx, 1.0);
    int early = efx_final(fx, id);
    bool warned = strstr(fx->log, "reading it again shortly") != NULL;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
    if (early >= 0) {
        fail_msg("ended %s (%s) while its status file could not be read",
                 engine_phase_name(fx->events[early].phase), fx->events[early].message);
    }
    assert_true(warned);
    const efx_event *ev = efx_wait_final(fx, id, 30);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_PIPELINE_FAILED);
    assert_int_equal(ev->exit_code, 3);
    free(real_squeue);
    free(answered);
    free(hold);
}

/* A waiting job aborted while slurmctld is down: its scancel fails, so it
 * is not reported aborted yet; once the controller is back the scancel is
 * sent again, the job ends aborted and never runs. */
static void test_abort_waiting_job_while_controller_down(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    /* kept waiting by its begin time, whatever the restarted controller
     * does with the node */
    efx_close(fx);
    static const char *const later[] = {"--begin=now+1hour", NULL};
    fx->opts.slurm.extra_options = later;
    efx_open(fx);
    static const char *const argv[] = {"sh", "-c", "echo ran", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    double end = tu_now() + 15;
    while (queued_message(fx, id, "PENDING (") == NULL && tu_now() < end) {
        efx_spin(fx);
    }
    assert_non_null(queued_message(fx, id, "PENDING ("));
    assert_int_equal(slurm_cluster_ctld_stop(&cluster), 0);
    char *ping[] = {"squeue", "-h", NULL};
    end = tu_now() + 30;
    while (tu_run(ping, NULL) == 0 && tu_now() < end) { /* down for the clients too */
        efx_run_for(fx, 0.2);
    }
    assert_int_not_equal(tu_run(ping, NULL), 0);
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    efx_run_for(fx, 3.0);
    int early = efx_final(fx, id);
    if (early >= 0) {
        fail_msg("reported %s (%s) while slurmctld was down", engine_phase_name(fx->events[early].phase),
                 fx->events[early].message);
    }
    assert_int_equal(slurm_cluster_ctld_start(&cluster), 0);
    const efx_event *ev = efx_wait_final(fx, id, 60);
    assert_int_equal(ev->phase, ENGINE_ABORTED);
    assert_non_null(strstr(ev->message, "aborted before it started"));
    efx_run_for(fx, 3.0);
    assert_int_equal(efx_count_final(fx, id), 1);
    char *log = fx_job_file(fx, id, "ocps.log");
    assert_true(log == NULL || strstr(log, "ran") == NULL); /* never ran */
    free(log);
}

/* A job that runs past Slurm's own time limit (1 minute, the smallest:
 * Slurm checks limits about every 30 s, so this takes 60-100 s) ends
 * ERROR / timeout, and says that Slurm stopped it. */
static void test_slurm_time_limit(void **state)
{
    NEED_SLURM();
    efx *fx = *state;
    efx_close(fx);
    fx->opts.slurm.time_limit = 1; /* seconds: rounded up to --time=1 (minute) */
    efx_open(fx);
    static const char *const argv[] = {"sleep", "300", NULL};
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, argv);
    efx_wait_phase(fx, id, ENGINE_EXECUTING, 30);
    double t0 = tu_now();
    const efx_event *ev = efx_wait_final(fx, id, 150);
    fprintf(stderr, "Slurm time limit: ended %.1f s after it started: %s\n", tu_now() - t0, ev->message);
    assert_int_equal(ev->phase, ENGINE_ERROR);
    assert_int_equal(ev->reason, ENGINE_REASON_TIMEOUT);
    assert_non_null(strstr(ev->message, "TIMEOUT"));
    assert_true(tu_now() - t0 >= 50); /* not before the minute */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success_and_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arguments_verbatim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prerequisite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prerequisite_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prerequisite_timed_out_exits_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_readopts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_second_submission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purged_failed_prerequisite_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scancel_outside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controller_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submitted_during_a_slow_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outcome_read_after_running_out_of_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_waiting_job_while_controller_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controller_down_at_submission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drained_node_keeps_job_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slurm_time_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll_asks_for_own_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_env_despite_sbatch_export_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_refusals_are_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_refusal_ends_after_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_launch_failure_says_slurm_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_that_can_never_start_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_in_second_step_names_the_step, setup, teardown),
    };
    /* OCPS_TEST_FILTER=NAME runs only that test (a cmocka pattern) */
    const char *filter = getenv("OCPS_TEST_FILTER");
    if (filter != NULL && *filter != '\0') {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
