/*
 * test_engine_slurm_hung_mount: the job engine with the Slurm executor
 * (a real single-node cluster, tests/support/slurm_cluster.sh) whose work
 * root is on a mount that hangs like an NFS mount whose server stopped
 * answering (support/stallfs_fixture.h). Submitting a job makes its
 * directory and writes its batch script there; the engine's loop must go
 * on running meanwhile, and the job must be submitted and complete once
 * the mount answers; an abort or engine_hold meanwhile acts before
 * sbatch. Exits 77 (skip) where Slurm is not installed, where
 * not root (the cluster's daemons) or where FUSE cannot be mounted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ocps/engine.h"
#include "engine_fixture.h"
#include "slurm_cluster.h"
#include "stallfs_fixture.h"
#include "test_util.h"

/* How long the loop is watched while the work root hangs. */
#define WATCH_SECONDS 2.0
/* The stall ends by itself after this long, even if the loop is blocked. */
#define STALL_LIMIT_SECONDS 3.0
/* The largest gap between ticks of a 100 ms timer the loop may show. */
#define MAX_GAP_MS 500.0

static slurm_cluster cluster;

typedef struct hung {
    efx fx;
    stallfs_fx sfs;
    char work_root[700];
    efx_meter meter;      /* the loop's largest stall */
    uv_timer_t submitter; /* once: submits the job from inside the loop */
    bool timers;          /* submitter initialised (closed by teardown) */
    char id[ENGINE_JOB_ID_LEN + 1];
} hung;

static int group_setup(void **state)
{
    (void)state;
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
    slurm_cluster_stop(&cluster);
    return 0;
}

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
    h->fx.log_to_stderr = true;
    h->fx.opts.work_root = h->work_root;
    h->fx.opts.poll_interval = 0.2;
    h->fx.opts.executor = ENGINE_EXECUTOR_SLURM;
    h->fx.opts.slurm.slurm_conf = cluster.slurm_conf;
    h->fx.opts.slurm.cpus_per_job = 1;
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
    efx_submit(&h->fx, h->id, (engine_job_spec){.argv = (const char *[]){"sh", "-c", "echo ran", NULL}});
}

/* A job submitted to Slurm while the work root hangs: the loop keeps its
 * 100 ms timer within MAX_GAP_MS (the job's directory and its batch
 * script are written off the loop; sbatch waits for them), the job stays
 * QUEUED meanwhile, and it is submitted and completes once the mount
 * answers. */
static void test_loop_runs_while_slurm_work_root_hangs(void **state)
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
    printf("# largest gap between 100 ms ticks while the Slurm work root hung: %.0f ms%s\n", max_gap_ms,
           still_stalled ? "" : " (the stall had ended by itself: the loop was blocked)");
    assert_true(h->id[0] != '\0'); /* submitted */
    if (still_stalled) {
        const engine_job *j = engine_job_get(fx->e, h->id);
        assert_non_null(j);
        assert_int_equal(j->phase, ENGINE_QUEUED);
        assert_string_equal(j->slurm_job_id, ""); /* sbatch waits for its script */
    }

    sfx_unstall(&h->sfs);
    const efx_event *ev = efx_wait_final(fx, h->id, 60);
    assert_string_equal(engine_phase_name(ev->phase), engine_phase_name(ENGINE_COMPLETED));
    assert_int_equal(ev->exit_code, 0);

    if (max_gap_ms >= MAX_GAP_MS) {
        fail_msg("the loop stopped for %.0f ms while the work root hung (at most %.0f expected)", max_gap_ms,
                 MAX_GAP_MS);
    }
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

/* Submit a job while the work root hangs and let the loop run a little:
 * its submission waits for the mount. */
static void submit_while_stalled(hung *h)
{
    assert_int_equal(sfx_stall_for(&h->sfs, STALL_LIMIT_SECONDS), 0);
    efx_submit(&h->fx, h->id, (engine_job_spec){.argv = (const char *[]){"sh", "-c", "echo ran", NULL}});
    efx_run_for(&h->fx, 0.3);
    assert_true(sfx_stalled(&h->sfs)); /* the loop was not blocked */
}

/* A job aborted while its directory and script wait for the hung mount
 * ends ABORTED at once, and is never sent to Slurm. */
static void test_abort_while_work_root_hangs(void **state)
{
    hung *h = *state;
    efx *fx = &h->fx;
    submit_while_stalled(h);
    char err[512];
    assert_int_equal(engine_job_abort(fx->e, h->id, err, sizeof err), 0);
    const engine_job *j = engine_job_get(fx->e, h->id);
    assert_non_null(j);
    assert_string_equal(engine_phase_name(j->phase), engine_phase_name(ENGINE_ABORTED));
    assert_int_equal(j->reason, ENGINE_REASON_ABORTED);

    sfx_unstall(&h->sfs);
    efx_run_for(fx, 1.5); /* the step comes back: nothing is sent */
    assert_int_equal(efx_count_final(fx, h->id), 1);
    assert_int_equal(slurm_jobs_named(h->id), 0);
}

/* engine_hold while a job's submission waits for the hung mount: the job
 * stays QUEUED and is not sent to Slurm; engine_start sends it and it
 * completes. */
static void test_hold_while_work_root_hangs(void **state)
{
    hung *h = *state;
    efx *fx = &h->fx;
    submit_while_stalled(h);
    engine_hold(fx->e);
    sfx_unstall(&h->sfs);
    efx_run_for(fx, 1.5);
    const engine_job *j = engine_job_get(fx->e, h->id);
    assert_non_null(j);
    assert_string_equal(engine_phase_name(j->phase), engine_phase_name(ENGINE_QUEUED));
    assert_string_equal(j->slurm_job_id, "");
    assert_int_equal(slurm_jobs_named(h->id), 0);

    engine_start(fx->e);
    const efx_event *ev = efx_wait_final(fx, h->id, 60);
    assert_string_equal(engine_phase_name(ev->phase), engine_phase_name(ENGINE_COMPLETED));
    assert_int_equal(slurm_jobs_named(h->id), 1);
}

/* Slurm's state of its job slurm_id (squeue -t all), "" if unknown. */
static void slurm_state(const char *slurm_id, char *state, size_t statelen)
{
    char *argv[] = {"squeue", "-h", "-t", "all", "-j", (char *)slurm_id, "-o", "%T", NULL};
    char *out = NULL;
    int rc = tu_run(argv, &out);
    snprintf(state, statelen, "%s", rc == 0 && out != NULL ? out : "");
    state[strcspn(state, "\n")] = '\0';
    free(out);
}

/* On the loop (so that the engine's poll cannot see it meanwhile): wait
 * until Slurm has ended the job (COMPLETED) and its runner's status file
 * is written, then stall the mount before the engine reads that file,
 * and start the meter. */
static void on_slurm_job_ended(uv_timer_t *t)
{
    hung *h = t->data;
    const efx_event *ev = &h->fx.events[efx_find(&h->fx, h->id, ENGINE_EXECUTING)];
    char state[64] = "";
    for (int i = 0; i < 300 && strcmp(state, "COMPLETED") != 0; i++) { /* 30 s at most */
        slurm_state(ev->slurm_job_id, state, sizeof state);
        if (strcmp(state, "COMPLETED") != 0) {
            usleep(100000);
        }
    }
    char status[1200];
    snprintf(status, sizeof status, "%s/work/jobs/%s/status.json", h->sfs.backing, h->id);
    if (strcmp(state, "COMPLETED") != 0 || access(status, F_OK) != 0) {
        h->id[0] = '\0'; /* the test fails: its end was not seen */
        return;
    }
    if (sfx_stall_for(&h->sfs, STALL_LIMIT_SECONDS) == 0) {
        efx_meter_start(&h->fx, &h->meter);
    }
}

/* A Slurm job that ends while the work root hangs (its runner recorded
 * the outcome, then Slurm ended the job, before the engine's poll saw
 * it): the loop keeps its 100 ms timer within MAX_GAP_MS (the status file
 * is read off the loop), the job stays EXECUTING meanwhile and is not
 * finished twice by the polls that follow, and it completes once the
 * mount answers. */
static void test_loop_runs_while_slurm_outcome_waits_for_hung_root(void **state)
{
    hung *h = *state;
    efx *fx = &h->fx;
    efx_submit(fx, h->id, (engine_job_spec){.argv = (const char *[]){"sleep", "1", NULL}});
    efx_wait_phase(fx, h->id, ENGINE_EXECUTING, 60);
    assert_int_equal(uv_timer_init(&fx->loop, &h->submitter), 0);
    h->submitter.data = h;
    h->timers = true;
    assert_int_equal(uv_timer_start(&h->submitter, on_slurm_job_ended, 0, 0), 0);
    efx_run_for(fx, 0.01); /* until the end was seen and the mount stalled */
    efx_run_for(fx, WATCH_SECONDS);
    assert_true(h->id[0] != '\0'); /* Slurm was seen ending the job */
    assert_true(h->meter.started); /* the mount was stalled */
    double max_gap_ms = efx_meter_stop(&h->meter);
    bool still_stalled = sfx_stalled(&h->sfs);
    printf("# largest gap between 100 ms ticks while the Slurm job's outcome waited: %.0f ms%s\n", max_gap_ms,
           still_stalled ? "" : " (the stall had ended by itself: the loop was blocked)");
    const engine_job *j = engine_job_get(fx->e, h->id);
    assert_non_null(j);
    assert_string_equal(engine_phase_name(j->phase), engine_phase_name(ENGINE_EXECUTING));

    sfx_unstall(&h->sfs);
    const efx_event *ev = efx_wait_final(fx, h->id, 30);
    assert_string_equal(engine_phase_name(ev->phase), engine_phase_name(ENGINE_COMPLETED));
    assert_int_equal(ev->exit_code, 0);
    efx_run_for(fx, 1.0);
    assert_int_equal(efx_count_final(fx, h->id), 1);
    if (max_gap_ms >= MAX_GAP_MS) {
        fail_msg("the loop stopped for %.0f ms while the Slurm job's outcome waited for the work root (at "
                 "most %.0f expected)",
                 max_gap_ms, MAX_GAP_MS);
    }
}

int main(void)
{
    char why[256];
    if (!slurm_cluster_available(why, sizeof why)) {
        printf("# skipped: %s\n", why);
        return 77;
    }
    if (geteuid() != 0) {
        printf("# skipped: the test cluster's daemons run as root\n");
        return 77;
    }
    if (sfx_unavailable(OCPS_STALLFS)) {
        return SFX_UNAVAILABLE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loop_runs_while_slurm_work_root_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_while_work_root_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_while_work_root_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_runs_while_slurm_outcome_waits_for_hung_root, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
