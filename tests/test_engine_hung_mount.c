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
#include <string.h>

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

int main(void)
{
    if (sfx_unavailable(OCPS_STALLFS)) {
        return SFX_UNAVAILABLE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loop_runs_while_work_root_hangs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
