/*
 * test_ocps_slurm: the OCPS CSC (a separate ocps-csc process) with
 * executor: slurm against a private single-node Slurm cluster
 * (tests/support/slurm_cluster.sh) when the controller fails:
 *
 * - start while slurmctld is stopped: the start fails naming the
 *   unreachable controller, the CSC stays in STANDBY and its heartbeat
 *   keeps its 1 s pace while it asks; once slurmctld is back the start
 *   succeeds;
 * - slurmctld killed (SIGKILL) and restarted while three jobs run, one of
 *   which ends during the outage: every job ends with its true outcome
 *   (exit codes 0, 3, 4), one job_result each, the CSC stays ENABLED and
 *   the largest heartbeat gap as sent stays at most 1.5 s. The kill comes
 *   once slurmctld has saved its state with the jobs running: a slurmctld
 *   killed before that forgets them (and may hand their Slurm job ids to
 *   new jobs), which no client can repair (docs/slurm.md).
 *
 * Skipped (printed) when Slurm is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps/sal_csc.h"
#include "ocps/sal_sample.h"
#include "ocps_test_iface.h"
#include "ocps_run.h"
#include "sal_fixture.h"
#include "slurm_cluster.h"
#include "test_util.h"

static slurm_cluster cluster;
static bool have_slurm;
static char skip_why[256];

typedef struct ctx {
    fx f;
    char *root;
    char work[600];
} ctx;

/* One execute in flight. */
typedef or_run run;

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

/* The CSC's summaryState `want` at or after record `from`: its index or -1. */
static long wait_state(fx *f, size_t from, int want, double timeout)
{
    double end = tu_now() + timeout;
    long i;
    while (tu_now() < end && (i = fx_wait_event(f, "logevent_summaryState", from, end - tu_now())) >= 0) {
        if (fx_i32(f, (size_t)i, "summaryState") == want) {
            return i;
        }
        from = (size_t)i + 1;
    }
    return -1;
}

static int setup_state(void **state, const char *csc_state, int want)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    if (!have_slurm) {
        return 0;
    }
    c->root = tu_make_ocps_config();
    if (c->root == NULL) {
        return -1;
    }
    snprintf(c->work, sizeof c->work, "%s/jobs", c->root);
    char site[4096];
    snprintf(
        site, sizeof site,
        "work_root: %s\npipetask: %s\nretrieve_command: []\ninprogress_interval: 1\nmax_concurrent_jobs: 8\n"
        "abort_grace: 2\n"
        "executor: slurm\nslurm:\n  slurm_conf: %s\n  cpus_per_job: 1\n",
        c->work, FAKE_PIPETASK, cluster.slurm_conf);
    if (tu_write_ocps_site(c->root, site) != 0) {
        return -1;
    }
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", c->root, 1);
    if (fx_open(&c->f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "--state", (char *)csc_state, "1", NULL};
    if (fx_start_csc(&c->f, argv) != 0) {
        return -1;
    }
    return wait_state(&c->f, 0, want, 20) >= 0 ? 0 : -1;
}

static int setup_standby(void **state)
{
    return setup_state(state, "standby", SAL_STATE_STANDBY);
}

static int setup_enabled(void **state)
{
    return setup_state(state, "enabled", SAL_STATE_ENABLED);
}

static int teardown(void **state)
{
    ctx *c = *state;
    int rc = 0;
    if (c->root != NULL) {
        rc = fx_close(&c->f);
        tu_remove_tree(c->root);
        free(c->root);
    }
    free(c);
    return rc;
}

#define NEED_SLURM()                                                                                         \
    do {                                                                                                     \
        if (!have_slurm) {                                                                                   \
            fprintf(stderr, "SKIPPED: %s\n", skip_why);                                                      \
            skip();                                                                                          \
        }                                                                                                    \
    } while (0)

/* Until the node answers as idle or mixed again (after slurmctld restarts). */
static void wait_node_up(fx *f)
{
    char *argv[] = {"sinfo", "-h", "-N", "-o", "%t", NULL};
    double end = tu_now() + 30;
    while (tu_now() < end) {
        char *out = NULL;
        int rc = tu_run(argv, &out);
        bool up =
            rc == 0 && out != NULL &&
            (strncmp(out, "idle", 4) == 0 || strncmp(out, "mix", 3) == 0 || strncmp(out, "alloc", 5) == 0);
        free(out);
        if (up) {
            return;
        }
        fx_run_for(f, 0.2);
    }
    fail_msg("the Slurm node did not come back");
}

/* start while slurmctld is stopped fails with the reason and leaves the
 * CSC in STANDBY; the heartbeat is not held up; later a start succeeds. */
static void start_fails_while_the_controller_is_down(void **state)
{
    NEED_SLURM();
    ctx *c = *state;
    fx *f = &c->f;
    assert_int_equal(slurm_cluster_ctld_stop(&cluster), 0);
    size_t mark = f->nrecords;
    char result[512];
    double t0 = tu_now();
    int ack = fx_command(f, "start", NULL, 30, result, sizeof result);
    double took = tu_now() - t0;
    print_message("start with slurmctld stopped: ack %d after %.2f s: %s\n", ack, took, result);
    assert_int_equal(ack, SAL_CMD_FAILED);
    assert_non_null(strstr(result, "Slurm controller is not reachable"));
    fx_run_for(f, 2.0);
    assert_int_equal(wait_state(f, mark, SAL_STATE_DISABLED, 0.1), -1); /* still STANDBY */
    double sent_gap;
    double arrival_gap;
    int n = fx_heartbeat_gaps(f, mark, &sent_gap, &arrival_gap);
    print_message("%d heartbeats; largest gap %.3f s as sent\n", n, sent_gap);
    assert_true(n >= 2);
    assert_true(sent_gap <= 1.5);
    /* the controller is back: the same start succeeds */
    assert_int_equal(slurm_cluster_ctld_start(&cluster), 0);
    wait_node_up(f);
    mark = f->nrecords;
    assert_int_equal(fx_command(f, "start", NULL, 30, result, sizeof result), SAL_CMD_COMPLETE);
    assert_true(wait_state(f, mark, SAL_STATE_DISABLED, 5) >= 0);
}

static void execute(fx *f, run *r, const char *query)
{
    or_fields x = {.pipeline = "cpBias.yaml", .data_query = query};
    assert_int_equal(or_execute(f, r, &x, 120), 0);
}

static bool all_done(fx *f, void *arg)
{
    (void)f;
    run *runs = arg;
    return runs[0].done && runs[1].done && runs[2].done;
}

/* How many of this cluster's jobs Slurm has RUNNING. */
static int slurm_running(void)
{
    char *argv[] = {"squeue", "-h", "-t", "running", "-o", "%i", NULL};
    char *out = NULL;
    int n = 0;
    if (tu_run(argv, &out) == 0) {
        for (const char *p = out; p != NULL && *p != '\0'; p++) {
            n += *p == '\n';
        }
    }
    free(out);
    return n;
}

/* arg: when Slurm may be asked next (at most 5 squeue a second). */
static bool three_running(fx *f, void *arg)
{
    (void)f;
    double *next = arg;
    if (tu_now() < *next) {
        return false;
    }
    *next = tu_now() + 0.2;
    return slurm_running() == 3;
}

static bool state_saved_since(fx *f, void *arg)
{
    (void)f;
    return slurm_cluster_state_saved(&cluster) > *(double *)arg;
}

/* slurmctld crashes (SIGKILL) while three jobs run (after it saved its
 * state with them running) and comes back 5 s later; the job that ended meanwhile and the two that end
 * afterwards each report their true exit code once; the heartbeat keeps its pace. */
static void controller_killed_and_restarted_while_jobs_run(void **state)
{
    NEED_SLURM();
    ctx *c = *state;
    fx *f = &c->f;
    run runs[3];
    static const char *const queries[] = {"SLEEP=15", "SLEEP=15 FAIL=3", "SLEEP=6 FAIL=4"};
    static const int codes[] = {0, 3, 4};
    for (int i = 0; i < 3; i++) {
        execute(f, &runs[i], queries[i]);
    }
    double next = 0;
    assert_true(fx_run_until(f, three_running, &next, 30));
    /* a crashed slurmctld forgets what it had not saved (it saves a few
     * seconds after a change): make it save now that the jobs run */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double running_at = (double)now.tv_sec + (double)now.tv_nsec / 1e9; /* as the file's time */
    char *reconfigure[] = {"scontrol", "reconfigure", NULL};
    assert_int_equal(tu_run(reconfigure, NULL), 0);
    assert_true(fx_run_until(f, state_saved_since, &running_at, 20));
    size_t mark = f->nrecords;
    assert_int_equal(slurm_cluster_ctld_kill(&cluster), 0);
    fx_run_for(f, 5.0); /* the short job ends meanwhile */
    assert_false(runs[0].done || runs[1].done || runs[2].done);
    assert_int_equal(slurm_cluster_ctld_start(&cluster), 0);
    assert_true(fx_run_until(f, all_done, runs, 90));
    fx_run_for(f, 1.0);
    long first[3];
    for (int i = 0; i < 3; i++) {
        int n = or_job_results(f, runs[i].job_id, &first[i]);
        const fx_record *rec = first[i] >= 0 ? &f->records[first[i]] : NULL;
        json_t *res =
            rec != NULL
                ? json_loads(sal_sample_get_string(&f->comp->topics[rec->topic], rec->sample, "result"), 0,
                             NULL)
                : NULL;
        char *slurm = json_dumps(json_object_get(res, "slurm"), JSON_COMPACT);
        print_message("job %d (%s): %d job_result: %s/%s exit %d: %s; slurm %s\n", i, queries[i], n,
                      json_string_value(json_object_get(res, "phase")),
                      json_string_value(json_object_get(res, "reason")),
                      (int)json_integer_value(json_object_get(res, "exit_code")),
                      json_string_value(json_object_get(json_object_get(res, "errorSummary"), "message")),
                      slurm);
        free(slurm);
        json_decref(res);
        assert_int_equal(n, 1);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx_i32(f, (size_t)first[i], "exit_code"), codes[i]);
        assert_int_equal(runs[i].ack,
                         SAL_CMD_COMPLETE); /* failed_job_ack complete: the phase in the summary */
        assert_non_null(
            strstr(runs[i].result, codes[i] == 0 ? "\"phase\":\"completed\"" : "\"phase\":\"error\""));
    }
    assert_int_equal(wait_state(f, mark, SAL_STATE_FAULT, 0.1), -1); /* stayed ENABLED */
    double sent_gap;
    double arrival_gap;
    int n = fx_heartbeat_gaps(f, mark, &sent_gap, &arrival_gap);
    print_message("%d heartbeats across the outage; largest gap %.3f s as sent, %.3f s as read\n", n,
                  sent_gap, arrival_gap);
    assert_true(n >= 8);
    assert_true(sent_gap <= 1.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(start_fails_while_the_controller_is_down, setup_standby, teardown),
        cmocka_unit_test_setup_teardown(controller_killed_and_restarted_while_jobs_run, setup_enabled,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
