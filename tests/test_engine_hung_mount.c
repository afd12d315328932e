/*
 * test_engine_hung_mount: the job engine whose work root is on a mount
 * that hangs like an NFS mount whose server stopped answering
 * (support/stallfs_fixture.h). Every call under the work root blocks
 * while the mount is stalled; the engine's loop must go on running (its
 * timers, the CSC's heartbeats and commands share it), and the job must
 * start and complete once the mount answers again. Exits 77 (skip) where
 * FUSE cannot be mounted.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "ocps/engine.h"
#include "engine_fixture.h"
#include "stallfs_fixture.h"
#include "test_util.h"

/* How long the loop is watched while the work root hangs. */
#define WATCH_SECONDS 2.0
/* The stall ends by itself after this long, even if the loop is blocked. */
#define STALL_LIMIT_SECONDS 3.0
/* The largest gap between ticks of a 100 ms timer the loop may show. */
#define MAX_GAP_MS 500.0

typedef struct hung {
    efx fx;
    stallfs_fx sfs;
    char work_root[700];
    efx_meter meter;      /* the loop's largest stall */
    uv_timer_t submitter; /* once: submits the job from inside the loop */
    bool timers;          /* submitter initialised (closed by teardown) */
    char id[ENGINE_JOB_ID_LEN + 1];
} hung;

static int setup(void **state)
{
    hung *h = calloc(1, sizeof *h);
    assert_non_null(h);
    char err[512];
    if (sfx_start(&h->sfs, OCPS_STALLFS, err, sizeof err) != 0) {
        fprintf(stderr, "sfx_start: %s\n", err);
        sfx_stop(&h->sfs);
        free(h);
        return -1;
    }
    efx_init(&h->fx, "unused", OCPS_JOB_RUNNER);
    snprintf(h->work_root, sizeof h->work_root, "%s/work/jobs", h->sfs.mount);
    h->fx.opts.work_root = h->work_root;
    efx_open(&h->fx);
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    hung *h = *state;
    sfx_unstall(&h->sfs); /* let the engine and its jobs finish with the work root */
    efx_meter_close(&h->meter);
    if (h->timers) {
        uv_close((uv_handle_t *)&h->submitter, NULL);
    }
    efx_free(&h->fx);
    sfx_stop(&h->sfs);
    free(h);
    return 0;
}

static void on_submit(uv_timer_t *t)
{
    hung *h = t->data;
    efx_submit(&h->fx, h->id, (engine_job_spec){.argv = (const char *[]){"true", NULL}});
}

/* A job submitted while the work root hangs: the loop keeps its 100 ms
 * timer within MAX_GAP_MS (the job's directory, its files and its
 * process's start wait off the loop), and the job completes once the
 * mount answers. */
static void test_loop_runs_while_work_root_hangs(void **state)
{
    hung *h = *state;
    efx *fx = &h->fx;
    assert_int_equal(uv_timer_init(&fx->loop, &h->submitter), 0);
    h->submitter.data = h;
    h->timers = true;

    assert_int_equal(sfx_stall_for(&h->sfs, STALL_LIMIT_SECONDS), 0);
    efx_meter_start(fx, &h->meter);
    assert_int_equal(uv_timer_start(&h->submitter, on_submit, 200, 0), 0);
    efx_run_for(fx, WATCH_SECONDS);
    double max_gap_ms = efx_meter_stop(&h->meter);
    bool still_stalled = sfx_stalled(&h->sfs);
    printf("# largest gap between 100 ms ticks while the work root hung: %.0f ms%s\n", max_gap_ms,
           still_stalled ? "" : " (the stall had ended by itself: the loop was blocked)");
    assert_true(h->id[0] != '\0'); /* submitted */

    sfx_unstall(&h->sfs);
    const efx_event *ev = efx_wait_final(fx, h->id, 10);
    assert_string_equal(engine_phase_name(ev->phase), engine_phase_name(ENGINE_COMPLETED));
    assert_int_equal(ev->exit_code, 0);

    if (max_gap_ms >= MAX_GAP_MS) {
        fail_msg("the loop stopped for %.0f ms while the work root hung (at most %.0f expected)", max_gap_ms,
                 MAX_GAP_MS);
    }
}

/* The state letter of process pid in /proc (R, S, Z...), or 0 if gone. */
static char proc_state(long pid)
{
    char path[64];
    char text[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    size_t n = f != NULL ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    text[n] = '\0';
    const char *end = strrchr(text, ')');
    return end != NULL && end[1] == ' ' ? end[2] : 0;
}

/* The runner pid of job id's claim, read from the backing directory
 * (not through the mount), or 0. */
static long runner_pid(const hung *h, const char *id)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/work/jobs/%s/runner.claim", h->sfs.backing, id);
    FILE *f = fopen(path, "re");
    long pid = 0;
    unsigned long long start;
    long sid;
    if (f != NULL) {
        if (fscanf(f, "runner %ld %llu %ld", &pid, &start, &sid) != 3) {
            pid = 0;
        }
        fclose(f);
    }
    return pid;
}

/* Stall the mount (it ends by itself after STALL_LIMIT_SECONDS) and start
 * measuring the loop's gaps. */
static void stall_and_meter(hung *h)
{
    if (sfx_stall_for(&h->sfs, STALL_LIMIT_SECONDS) == 0) {
        efx_meter_start(&h->fx, &h->meter);
    }
}

/* On the loop (so that the engine cannot see it meanwhile): wait until
 * the job's runner has exited (a zombie: the engine has not reaped it),
 * its status file written, then stall the mount before the engine reads
 * that file, and start the meter. */
static void on_runner_ended(uv_timer_t *t)
{
    hung *h = t->data;
    long pid = 0;
    char state = 0;
    for (int i = 0; i < 1000 && state != 'Z'; i++) { /* 10 s at most */
        pid = pid != 0 ? pid : runner_pid(h, h->id);
        state = pid != 0 ? proc_state(pid) : 0;
        if (state != 'Z') {
            usleep(10000);
        }
    }
    char status[1200];
    snprintf(status, sizeof status, "%s/work/jobs/%s/status.json", h->sfs.backing, h->id);
    if (state != 'Z' || access(status, F_OK) != 0) {
        h->id[0] = '\0'; /* the test fails: its runner was not seen ending */
        return;
    }
    stall_and_meter(h);
}

/* A job whose runner ends while the work root hangs (after its runner
 * recorded the outcome, before the engine read it): the loop keeps its
 * 100 ms timer within MAX_GAP_MS (the status file is read off the loop),
 * the job stays EXECUTING meanwhile, and completes once the mount
 * answers. */
static void test_loop_runs_while_outcome_waits_for_hung_root(void **state)
{
    hung *h = *state;
    efx *fx = &h->fx;
    efx_submit(fx, h->id, (engine_job_spec){.argv = (const char *[]){"sleep", "1", NULL}});
    efx_wait_phase(fx, h->id, ENGINE_EXECUTING, 10);
    assert_int_equal(uv_timer_init(&fx->loop, &h->submitter), 0);
    h->submitter.data = h;
    h->timers = true;
    assert_int_equal(uv_timer_start(&h->submitter, on_runner_ended, 0, 0), 0);
    efx_run_for(fx, WATCH_SECONDS);
    assert_true(h->id[0] != '\0'); /* the runner was seen ending */
    assert_true(h->meter.started); /* the mount was stalled */
    double max_gap_ms = efx_meter_stop(&h->meter);
    bool still_stalled = sfx_stalled(&h->sfs);
    printf("# largest gap between 100 ms ticks while the outcome waited: %.0f ms%s\n", max_gap_ms,
           still_stalled ? "" : " (the stall had ended by itself: the loop was blocked)");
    const engine_job *j = engine_job_get(fx->e, h->id);
    assert_non_null(j);
    assert_string_equal(engine_phase_name(j->phase), engine_phase_name(ENGINE_EXECUTING));

    sfx_unstall(&h->sfs);
    const efx_event *ev = efx_wait_final(fx, h->id, 10);
    assert_string_equal(engine_phase_name(ev->phase), engine_phase_name(ENGINE_COMPLETED));
    assert_int_equal(ev->exit_code, 0);
    if (max_gap_ms >= MAX_GAP_MS) {
        fail_msg("the loop stopped for %.0f ms while the outcome waited for the work root (at most %.0f "
                 "expected)",
                 max_gap_ms, MAX_GAP_MS);
    }
}

/* A job adopted by a second engine (its runner is not that engine's
 * child: found alive in the store, polled) whose runner ends while the
 * work root hangs: the loop keeps its 100 ms timer within MAX_GAP_MS (the
 * poll that finds the runner gone reads its status file off the loop),
 * the job stays EXECUTING meanwhile, and completes once the mount
 * answers. */
static void test_loop_runs_while_adopted_outcome_waits_for_hung_root(void **state)
{
    hung *h = *state;
    efx *fx = &h->fx;
    efx_submit(fx, h->id, (engine_job_spec){.argv = (const char *[]){"sleep", "2", NULL}});
    efx_wait_phase(fx, h->id, ENGINE_EXECUTING, 10);
    efx_close(fx); /* its runner keeps going */
    efx_clear_events(fx);
    efx_open(fx); /* adopts it */
    const engine_job *j = engine_job_get(fx->e, h->id);
    assert_non_null(j);
    assert_string_equal(engine_phase_name(j->phase), engine_phase_name(ENGINE_EXECUTING));
    assert_int_equal(uv_timer_init(&fx->loop, &h->submitter), 0);
    h->submitter.data = h;
    h->timers = true;
    assert_int_equal(uv_timer_start(&h->submitter, on_runner_ended, 0, 0), 0);
    efx_run_for(fx, 0.01); /* until the end was seen and the mount stalled */
    efx_run_for(fx, WATCH_SECONDS);
    assert_true(h->id[0] != '\0'); /* the runner was seen ending */
    assert_true(h->meter.started); /* the mount was stalled */
    double max_gap_ms = efx_meter_stop(&h->meter);
    bool still_stalled = sfx_stalled(&h->sfs);
    printf("# largest gap between 100 ms ticks while the adopted job's outcome waited: %.0f ms%s\n",
           max_gap_ms, still_stalled ? "" : " (the stall had ended by itself: the loop was blocked)");
    j = engine_job_get(fx->e, h->id);
    assert_non_null(j);
    assert_string_equal(engine_phase_name(j->phase), engine_phase_name(ENGINE_EXECUTING));

    sfx_unstall(&h->sfs);
    const efx_event *ev = efx_wait_final(fx, h->id, 10);
    assert_string_equal(engine_phase_name(ev->phase), engine_phase_name(ENGINE_COMPLETED));
    assert_int_equal(ev->exit_code, 0);
    efx_run_for(fx, 0.3);
    assert_int_equal(efx_count_final(fx, h->id), 1); /* the poll queued its read once */
    if (max_gap_ms >= MAX_GAP_MS) {
        fail_msg("the loop stopped for %.0f ms while the adopted job's outcome waited for the work root (at "
                 "most %.0f expected)",
                 max_gap_ms, MAX_GAP_MS);
    }
}

/* A child of this process that is a runner and has exited (a zombie),
 * found in /proc, or 0. */
static long exited_runner_child(void)
{
    DIR *d = opendir("/proc");
    long found = 0;
    struct dirent *de;
    while (d != NULL && found == 0 && (de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        char path[300];
        char text[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = pid > 0 && *end == '\0' ? fopen(path, "re") : NULL;
        size_t n = f != NULL ? fread(text, 1, sizeof text - 1, f) : 0;
        if (f != NULL) {
            fclose(f);
        }
        text[n] = '\0';
        const char *open = strchr(text, '(');
        const char *close = strrchr(text, ')');
        char state;
        long ppid;
        if (open != NULL && close != NULL && strncmp(open + 1, "ocps-job-runner", 15) == 0 &&
            sscanf(close + 1, " %c %ld", &state, &ppid) == 2 && state == 'Z' && ppid == (long)getpid()) {
            found = pid;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return found;
}

/* On the loop (so that the engine cannot see it meanwhile): wait until
 * the second runner has left (a zombie: it found the job claimed), then
 * stall the mount before the engine reads the claim, and start the
 * meter. */
static void on_second_runner_left(uv_timer_t *t)
{
    hung *h = t->data;
    long pid = 0;
    for (int i = 0; i < 1000 && pid == 0; i++) { /* 10 s at most */
        pid = exited_runner_child();
        if (pid == 0) {
            usleep(10000);
        }
    }
    if (pid == 0) {
        h->id[0] = '\0'; /* the test fails: no runner was seen refusing the job */
        return;
    }
    stall_and_meter(h);
}

/* The CSC dies right after spawning a job's runner (a child process runs
 * an engine with the test hook OCPS_ENGINE_TEST_EXIT_AFTER_SPAWN), and
 * that runner claims the job only 0.3 s later: a new engine finds no claim
 * and starts a second runner, which finds the job claimed and leaves
 * while the work root hangs. The loop keeps its 100 ms timer within
 * MAX_GAP_MS (the claim is read off the loop), the job stays EXECUTING
 * meanwhile, and the engine follows the first runner, which completes
 * the job once the mount answers. */
static void test_loop_runs_while_claim_waits_for_hung_root(void **state)
{
    hung *h = *state;
    efx *fx = &h->fx;
    engine_new_job_id(NULL, h->id);
    efx_close(fx);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("OCPS_ENGINE_TEST_EXIT_AFTER_SPAWN", "77", 1);
        uv_loop_t loop;
        engine *e = NULL;
        char err[512];
        engine_job_spec spec = {.argv = (const char *[]){"sleep", "1", NULL},
                                .env = (const char *[]){"OCPS_RUNNER_TEST_CLAIM_DELAY=0.3", NULL}};
        if (uv_loop_init(&loop) == 0 && engine_open(&e, &loop, &fx->opts, NULL, NULL, err, sizeof err) == 0) {
            engine_job_submit(e, h->id, &spec, err, sizeof err);
            uv_run(&loop, UV_RUN_DEFAULT); /* started off the loop: exits in the hook */
        }
        _exit(1);
    }
    assert_int_equal(tu_wait_exit(pid, 5), 77);
    efx_clear_events(fx);
    efx_open(fx); /* no claim yet: a second runner is started */
    assert_int_equal(uv_timer_init(&fx->loop, &h->submitter), 0);
    h->submitter.data = h;
    h->timers = true;
    assert_int_equal(uv_timer_start(&h->submitter, on_second_runner_left, 0, 0), 0);
    efx_run_for(fx, 0.01); /* until the second runner left and the mount stalled */
    efx_run_for(fx, WATCH_SECONDS);
    assert_true(h->id[0] != '\0'); /* the second runner was seen leaving */
    assert_true(h->meter.started); /* the mount was stalled */
    double max_gap_ms = efx_meter_stop(&h->meter);
    bool still_stalled = sfx_stalled(&h->sfs);
    printf("# largest gap between 100 ms ticks while the claim waited: %.0f ms%s\n", max_gap_ms,
           still_stalled ? "" : " (the stall had ended by itself: the loop was blocked)");
    const engine_job *j = engine_job_get(fx->e, h->id);
    assert_non_null(j);
    assert_string_equal(engine_phase_name(j->phase), engine_phase_name(ENGINE_EXECUTING));

    sfx_unstall(&h->sfs);
    const efx_event *ev = efx_wait_final(fx, h->id, 10);
    assert_string_equal(engine_phase_name(ev->phase), engine_phase_name(ENGINE_COMPLETED));
    assert_int_equal(ev->exit_code, 0);
    efx_run_for(fx, 0.3);
    assert_int_equal(efx_count_final(fx, h->id), 1);
    if (max_gap_ms >= MAX_GAP_MS) {
        fail_msg(
            "the loop stopped for %.0f ms while the claim waited for the work root (at most %.0f expected)",
            max_gap_ms, MAX_GAP_MS);
    }
}

int main(void)
{
    if (sfx_unavailable(OCPS_STALLFS)) {
        return SFX_UNAVAILABLE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loop_runs_while_work_root_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_runs_while_outcome_waits_for_hung_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_runs_while_adopted_outcome_waits_for_hung_root, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loop_runs_while_claim_waits_for_hung_root, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
