/*
 * test_uws_hung_mount.c - ocps-engine whose work root hangs like an NFS
 * mount whose server stopped answering (support/stallfs_fixture.h; the
 * state directory is elsewhere). Stopped while a job's start hangs on the
 * work root, it exits within its close grace instead of waiting for the
 * mount (a pod that never ends is never replaced), and the next engine
 * runs that job once the mount answers. Exits 77 (skip) where FUSE
 * cannot be mounted.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "stallfs_fixture.h"
#include "test_util.h"
#include "uws_fixture.h"

/* The stall ends by itself after this long; the engine must have exited
 * well before (its close grace is 10 s). */
#define STALL_SECONDS 40.0
#define EXIT_WITHIN_SECONDS 20.0

typedef struct ctx {
    stallfs_fx sfs;
    uws_fx fx;
    const char *opts[3];
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    *state = c;
    char err[512];
    if (sfx_start(&c->sfs, OCPS_STALLFS, err, sizeof err) != 0) {
        fprintf(stderr, "sfx_start: %s\n", err);
        return -1;
    }
    c->opts[0] = "--work-root"; /* after the fixture's own: this one counts */
    c->opts[1] = c->sfs.mount;
    c->opts[2] = NULL;
    return uws_fx_start(&c->fx, NULL, c->opts);
}

static int teardown(void **state)
{
    ctx *c = *state;
    sfx_unstall(&c->sfs); /* an engine blocked on the work root can end */
    uws_fx_stop(&c->fx);
    sfx_stop(&c->sfs);
    free(c);
    return 0;
}

/* SIGTERM while a job's start hangs on the work root: exit within the
 * grace; the job, accepted and stored but not started, completes under
 * the next engine once the mount answers. */
static void test_stop_while_work_root_hangs(void **state)
{
    ctx *c = *state;
    assert_int_equal(sfx_stall_for(&c->sfs, STALL_SECONDS), 0);
    char id[33];
    assert_int_equal(uws_fx_submit(&c->fx, "{\"argv\": [\"true\"]}", id), 0);
    struct timespec pause = {0, 500 * 1000 * 1000};
    nanosleep(&pause, NULL); /* its start is on the thread pool, waiting for the mount */

    double t0 = tu_now();
    assert_int_equal(kill(c->fx.pid, SIGTERM), 0);
    int status = tu_wait_exit(c->fx.pid, EXIT_WITHIN_SECONDS);
    double took = tu_now() - t0;
    bool still_stalled = sfx_stalled(&c->sfs);
    print_message("SIGTERM while the work root hung: exit status %d after %.2f s%s\n", status, took,
                  still_stalled ? "" : " (the stall had ended by itself)");
    if (status < 0) {
        sfx_unstall(&c->sfs);
        assert_true(tu_wait_exit(c->fx.pid, 30) >= 0);
    }
    c->fx.pid = -1;
    assert_int_equal(status, 0);
    assert_true(still_stalled);

    sfx_unstall(&c->sfs);
    assert_int_equal(uws_fx_restart(&c->fx, c->opts), 0);
    json_t *job = uws_fx_wait(&c->fx, id, NULL, 30);
    assert_non_null(job);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    json_decref(job);
}

int main(void)
{
    if (sfx_unavailable(OCPS_STALLFS)) {
        return SFX_UNAVAILABLE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stop_while_work_root_hangs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
