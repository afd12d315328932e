/*
 * test_csc_hung_mount: ocps-csc (a separate process, real DDS or Kafka)
 * with the local executor whose work root is on a mount that hangs like
 * an NFS mount whose server stopped answering (support/stallfs_fixture.h;
 * the job store is elsewhere). While the mount hangs, execute is still
 * acknowledged in time and the 1 Hz heartbeat keeps its cadence; once the
 * mount answers, the job runs and its result arrives. A CSC told to stop
 * while a job's start hangs on the work root exits within its close grace
 * all the same, and the next CSC runs that job once the mount answers. A
 * first start while the work root hangs fails within its timeout, the
 * heartbeat keeping its cadence, and succeeds once the mount answers.
 * Exits 77 (skip) where FUSE cannot be mounted.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ocps/sal_csc.h"
#include "ocps_run.h"
#include "ocps_test_iface.h"
#include "sal_fixture.h"
#include "stallfs_fixture.h"
#include "test_util.h"

/* How long the CSC is watched while the work root hangs. */
#define WATCH_SECONDS 5.0
/* The stall ends by itself after this long (a CSC that blocks still ends). */
#define STALL_LIMIT_SECONDS 6.0
/* execute's own timeout, and the most its first ack may take. */
#define EXECUTE_TIMEOUT 120.0
#define FIRST_ACK_SECONDS 2.0
/* A stop while the work root hangs: the stall ends by itself after this
 * long, and the CSC must have exited well before (its close grace is 10 s). */
#define EXIT_STALL_SECONDS 40.0
#define EXIT_WITHIN_SECONDS 20.0

typedef struct ctx {
    fx f;
    stallfs_fx sfs;
    char *root; /* DM_CONFIG_OCPS_DIR, and the job store */
} ctx;

static int start_csc(ctx *c)
{
    size_t from = c->f.nrecords;
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "--state", "enabled", "1", NULL};
    if (fx_start_csc(&c->f, argv) != 0) {
        return -1;
    }
    return or_wait_enabled(&c->f, from, 15);
}

/* The CSC in STANDBY (nothing opened yet); with ctx c's configuration. */
static int start_csc_standby(ctx *c)
{
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "1", NULL};
    if (fx_start_csc(&c->f, argv) != 0) {
        return -1;
    }
    return fx_wait_event(&c->f, "logevent_summaryState", 0, 15) >= 0 ? 0 : -1;
}

static int setup_csc(void **state, bool standby)
{
    ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    *state = c;
    char err[512];
    if (sfx_start(&c->sfs, OCPS_STALLFS, err, sizeof err) != 0) {
        fprintf(stderr, "sfx_start: %s\n", err);
        return -1;
    }
    c->root = tu_make_ocps_config();
    assert_non_null(c->root);
    char site[4096];
    snprintf(site, sizeof site,
             "work_root: %s/jobs\njob_store: %s/jobs.sqlite\npipetask: %s\nretrieve_command: "
             "[]\ninprogress_interval: 1\n"
             "max_concurrent_jobs: 2\nabort_grace: 2\n",
             c->sfs.mount, c->root, FAKE_PIPETASK);
    assert_int_equal(tu_write_ocps_site(c->root, site), 0);
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", c->root, 1);
    if (fx_open(&c->f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    return standby ? start_csc_standby(c) : start_csc(c);
}

static int setup(void **state)
{
    return setup_csc(state, false);
}

static int setup_standby(void **state)
{
    return setup_csc(state, true);
}

static int teardown(void **state)
{
    ctx *c = *state;
    sfx_unstall(&c->sfs); /* a CSC blocked on the work root can end */
    int rc = fx_close(&c->f);
    sfx_stop(&c->sfs);
    if (c->root != NULL) {
        tu_remove_tree(c->root);
        free(c->root);
    }
    free(c);
    return rc;
}

/* execute while the work root hangs: its first ack in time, heartbeats at
 * 1 Hz; the job completes, with its job_result, once the mount answers. */
static void heartbeat_and_execute_while_work_root_hangs(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    assert_true(or_commands_ready(f, 10));
    assert_int_equal(sfx_stall_for(&c->sfs, STALL_LIMIT_SECONDS), 0);
    size_t mark = f->nrecords;
    double t0 = tu_now();
    or_run r;
    or_fields x = {"cpBias.yaml", "", "", "", ""};
    assert_int_equal(or_execute(f, &r, &x, EXECUTE_TIMEOUT), 0);
    fx_run_for(f, WATCH_SECONDS - (tu_now() - t0));
    bool still_stalled = sfx_stalled(&c->sfs);
    double first_ack = r.nacks > 0 ? r.acks[0].at - r.sent_at : -1;
    double sent_gap = 0;
    double arrival_gap = 0;
    int n = fx_heartbeat_gaps(f, mark, &sent_gap, &arrival_gap);
    print_message("while the work root hung%s: first ack of execute after %.3f s (-1: none), %d heartbeats, "
                  "largest gap %.3f s sent, %.3f s arrived\n",
                  still_stalled ? "" : " (until the stall ended by itself)", first_ack, n, sent_gap,
                  arrival_gap);

    sfx_unstall(&c->sfs);
    if (!or_wait_done(f, &r, 30)) {
        fail_msg("execute did not end within 30 s of the mount answering (job %s)", r.job_id);
    }
    assert_true(or_job_completed(&r));
    assert_true(or_one_result(f, r.job_id, 5, 0.2) >= 0);

    assert_true(first_ack >= 0 && first_ack < FIRST_ACK_SECONDS);
    assert_true(n >= 3);
    assert_true(sent_gap < 1.5);
}

/* SIGTERM while a job's start hangs on the work root: the CSC says
 * OFFLINE and exits within its close grace instead of waiting for the
 * mount (a pod that never ends is never restarted); the job, stored but
 * not started, runs once under the next CSC once the mount answers. */
static void stop_while_work_root_hangs(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    assert_true(or_commands_ready(f, 10));
    assert_int_equal(sfx_stall_for(&c->sfs, EXIT_STALL_SECONDS), 0);
    or_run r;
    or_fields x = {"cpBias.yaml", "", "", "", ""};
    assert_int_equal(or_execute(f, &r, &x, EXECUTE_TIMEOUT), 0);
    assert_true(fx_run_until(f, or_has_job_id, &r, 5));
    fx_run_for(f, 0.5); /* its start is on the thread pool, blocked */

    bool still_stalled = false;
    int status = sfx_sigterm_wait(&c->sfs, f->csc_pid, EXIT_WITHIN_SECONDS, &still_stalled);
    f->csc_pid = -1;
    assert_true(status >= 0 && still_stalled);

    sfx_unstall(&c->sfs);
    assert_int_equal(start_csc(c), 0);
    assert_true(or_one_result(f, r.job_id, 30, 1.0) >= 0);
}

/* The first start (it opens the job engine on work_root) while work_root
 * hangs: it fails naming work_root after the probe's 10 s, the heartbeat
 * keeping its cadence, the CSC in STANDBY; so does the next (it waits for
 * the same stat); once the mount answers, start succeeds. */
static void start_while_work_root_hangs(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    assert_int_equal(sfx_stall_for(&c->sfs, EXIT_STALL_SECONDS), 0);
    size_t mark = f->nrecords;
    char result[1024];
    double t0 = tu_now();
    int ack = fx_command(f, "start", NULL, 30, result, sizeof result);
    double took = tu_now() - t0;
    double t1 = tu_now();
    int again = fx_command(f, "start", NULL, 30, result + 512, sizeof result - 512);
    double took_again = tu_now() - t1;
    double sent_gap = 0;
    double arrival_gap = 0;
    int n = fx_heartbeat_gaps(f, mark, &sent_gap, &arrival_gap);
    print_message("start while the work root hung: %s after %.2f s (%s); again: %s after %.2f s (%s); %d "
                  "heartbeats, largest gap %.3f s sent\n",
                  sal_ack_name(ack), took, result, sal_ack_name(again), took_again, result + 512, n,
                  sent_gap);
    assert_true(sfx_stalled(&c->sfs));
    assert_int_equal(ack, SAL_CMD_FAILED);
    assert_non_null(strstr(result, c->sfs.mount));
    assert_non_null(strstr(result, "has not answered"));
    assert_true(took < 15);
    assert_int_equal(again, SAL_CMD_FAILED);
    assert_non_null(strstr(result + 512, "has not answered"));
    assert_true(took_again < 15);
    assert_true(n >= 16);
    assert_true(sent_gap < 1.5);

    sfx_unstall(&c->sfs);
    mark = f->nrecords;
    assert_int_equal(fx_command(f, "start", NULL, 30, result, sizeof result), SAL_CMD_COMPLETE);
    long i = fx_wait_change(f, "logevent_summaryState", "summaryState", mark, 5);
    assert_true(i >= 0);
    assert_int_equal(fx_i32(f, (size_t)i, "summaryState"), SAL_STATE_DISABLED);
}

int main(void)
{
    if (sfx_unavailable(OCPS_STALLFS)) {
        return SFX_UNAVAILABLE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(heartbeat_and_execute_while_work_root_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_while_work_root_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(start_while_work_root_hangs, setup_standby, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
