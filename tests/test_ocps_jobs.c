/*
 * test_ocps_jobs: OCPS's reason to exist, over real DDS with ocps-csc as a
 * separate process and the local engine running fake-pipetask: execute's
 * INPROGRESS with the job id, the job_id event, job_result with the
 * documented fields before the final ack, the last job_result and job_id
 * read by a late-joining Remote, failures, 20 concurrent jobs,
 * abort_job, prerequisites, injection attempts that stay literal, refused
 * control characters and output patterns outside the job, kill -9 and
 * re-adoption, heartbeats under load, and simulation mode.
 *
 * With OCPS_TEST_EXECUTOR=slurm (ctest test_ocps_jobs_slurm) the same tests
 * run with executor: slurm on a private Slurm cluster started once for the
 * group (tests/support/slurm_cluster.sh); without Slurm they are skipped.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps_test_iface.h"
#include "ocps/sal_csc.h"
#include "ocps_run.h"
#include "sal_fixture.h"
#include "slurm_cluster.h"
#include "test_util.h"

typedef struct ctx {
    fx f;
    char *root; /* DM_CONFIG_OCPS_DIR */
    char work[600];
    char *csc_argv[10];
    sal *acks; /* a plain ackcmd reader, when a test counts acks */
} ctx;

/* One execute in flight. */
typedef or_run run;

/* The Slurm cluster of the group (OCPS_TEST_EXECUTOR=slurm), else unused. */
static slurm_cluster cluster;

static bool slurm_wanted(void)
{
    const char *x = getenv("OCPS_TEST_EXECUTOR");
    return x != NULL && strcmp(x, "slurm") == 0;
}

static int group_setup(void **state)
{
    (void)state;
    char err[4096];
    if (slurm_wanted() && slurm_cluster_start(&cluster, err, sizeof err) != 0) {
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

static void make_config(ctx *c, const char *extra)
{
    c->root = tu_make_ocps_config();
    assert_non_null(c->root);
    snprintf(c->work, sizeof c->work, "%s/jobs", c->root);
    char executor[1024] = "";
    if (slurm_wanted()) {
        snprintf(executor, sizeof executor, "executor: slurm\nslurm:\n  slurm_conf: %s\n  cpus_per_job: 1\n",
                 cluster.slurm_conf);
    }
    /* 8 slots unless extra says otherwise */
    const char *slots =
        extra != NULL && strstr(extra, "max_concurrent_jobs:") ? "" : "max_concurrent_jobs: 8\n";
    char site[4096];
    snprintf(site, sizeof site,
             "work_root: %s\npipetask: %s\ninprogress_interval: 1\n%sabort_grace: 2\n"
             "simulation_duration: 0.5\n%s%s%s",
             c->work, FAKE_PIPETASK, slots, executor,
             /* fake-pipetask registers nothing to retrieve: no retrieval step unless asked */
             extra != NULL && strstr(extra, "retrieve_command") ? "" : "retrieve_command: []\n",
             extra ? extra : "");
    assert_int_equal(tu_write_ocps_site(c->root, site), 0);
}

static int start_csc(ctx *c, bool simulate)
{
    int n = 0;
    c->csc_argv[n++] = OCPS_CSC;
    c->csc_argv[n++] = "--duplicate-check";
    c->csc_argv[n++] = "0.2";
    c->csc_argv[n++] = "--state";
    c->csc_argv[n++] = "enabled";
    if (simulate) {
        c->csc_argv[n++] = "--simulate";
    }
    c->csc_argv[n++] = "1";
    c->csc_argv[n] = NULL;
    if (fx_start_csc(&c->f, c->csc_argv) != 0) {
        return -1;
    }
    /* wait for ENABLED */
    return or_wait_enabled(&c->f, 0, 15);
}

static int setup_with(void **state, const char *extra, bool simulate)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    make_config(c, extra);
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", c->root, 1);
    if (fx_open(&c->f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    return start_csc(c, simulate);
}

static int setup(void **state)
{
    return setup_with(state, NULL, false);
}

static int setup_waiting_limit(void **state)
{
    /* one slot: the jobs after the first wait in the CSC, also with Slurm
     * (a job handed to Slurm holds a slot and does not count as waiting) */
    return setup_with(state, "max_concurrent_jobs: 1\nmax_waiting_jobs: 2\n", false);
}

static int setup_simulate(void **state)
{
    return setup_with(state, NULL, true);
}

/* A site whose Kafka producers give a message up after 1.5 s (our
 * default waits without limit): the CSC and the Remote both read it. */
static int setup_short_message_timeout(void **state)
{
    if (strcmp(fx_transport(), "kafka") != 0) {
        return setup(state);
    }
    char *dir = tu_make_temp_dir();
    if (dir == NULL) {
        return -1;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/producer.yaml", dir);
    FILE *fp = fopen(path, "w");
    if (fp == NULL) {
        return -1;
    }
    fputs("message.timeout.ms: 1500\n", fp);
    fclose(fp);
    setenv("LSST_KAFKA_PRODUCER_CONFIGURATION", path, 1);
    int rc = setup(state);
    unsetenv("LSST_KAFKA_PRODUCER_CONFIGURATION");
    tu_remove_tree(dir); /* read when the clients were made */
    free(dir);
    return rc;
}

static int teardown(void **state)
{
    ctx *c = *state;
    sal_close(c->acks, NULL, NULL);
    int rc = fx_close(&c->f);
    tu_remove_tree(c->root);
    free(c->root);
    free(c);
    return rc;
}

/* --- commanding --- */

/* Send execute with output_dataset_types; returns once sent. */
static void execute_outputs(fx *f, run *r, const char *pipeline, const char *config, const char *query,
                            const char *prereqs, const char *outputs)
{
    assert_true(or_commands_ready(f, 10));
    or_fields x = {pipeline, config, query, prereqs ? prereqs : "", outputs};
    assert_int_equal(or_execute(f, r, &x, 120), 0);
}

/* Send execute; returns once sent. */
static void execute(fx *f, run *r, const char *pipeline, const char *config, const char *query,
                    const char *prereqs)
{
    execute_outputs(f, r, pipeline, config, query, prereqs, "");
}

static void wait_done(fx *f, run *r, double timeout)
{
    if (!or_wait_done(f, r, timeout)) {
        fail_msg("execute did not end in %.0f s (job %s)", timeout, r->job_id);
    }
}

static int abort_job(fx *f, const char *id, char *result, size_t len)
{
    return fx_command_str(f, "abort_job", "job_id", id, 10, result, len);
}

/* --- reading events --- */

/* The job's only job_result (on Kafka it may be read after the final
 * ack: different topics): its record index. */
static long one_result(fx *f, const char *id)
{
    long i = or_one_result(f, id, 5, 0.2);
    if (i < 0) {
        fail_msg("job %s: %s job_result", id, i == -1 ? "no" : "more than one");
    }
    return i;
}

static json_t *result_of(fx *f, long i)
{
    json_t *j = or_result_json(f, i);
    assert_non_null(j);
    return j;
}

static char *read_job_file(ctx *c, const char *id, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s/%s", c->work, id, name);
    return tu_read_file(path, NULL);
}

/* --- tests --- */

static void execute_runs_a_job_and_reports_it(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    size_t mark = f->nrecords;
    execute(f, &r, "cpBias.yaml", "-j 2 --register-dataset-types", "instrument='LATISS'", NULL);
    wait_done(f, &r, 30);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    /* first ack: INPROGRESS with {"job_id": ...} and a timeout */
    assert_true(r.nacks >= 2);
    assert_int_equal(r.acks[0].ack, SAL_CMD_INPROGRESS);
    assert_true(r.acks[0].timeout > 0);
    assert_int_equal(strlen(r.job_id), 32);
    char expect[128];
    snprintf(expect, sizeof expect, "{\"job_id\": \"%s\"}", r.job_id);
    assert_string_equal(r.acks[0].result, expect);
    /* the job_id event links the command to the job */
    long jid = fx_wait_event(f, "logevent_job_id", mark, 5);
    assert_true(jid >= 0);
    assert_string_equal(or_record_string(f, (size_t)jid, "event_name"), "cmd_execute");
    assert_string_equal(or_record_string(f, (size_t)jid, "job_id"), r.job_id);
    assert_int_equal(fx_i32(f, (size_t)jid, "seq_num"), r.seqnum);
    /* exactly one job_result, written before the final ack (read before it
     * on DDS; Kafka keeps order only within a topic) */
    long i = one_result(f, r.job_id);
    if (strcmp(fx_transport(), "dds") == 0) {
        assert_true(f->records[i].at <= r.done_at);
    }
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 0);
    json_t *res = result_of(f, i);
    assert_string_equal(json_string_value(json_object_get(res, "jobId")), r.job_id);
    assert_string_equal(json_string_value(json_object_get(res, "job_id")), r.job_id);
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "completed");
    assert_string_equal(json_string_value(json_object_get(res, "reason")), "success");
    json_t *slurm = json_object_get(res, "slurm"); /* only for jobs run by Slurm */
    if (slurm_wanted()) {
        assert_true(strlen(json_string_value(json_object_get(slurm, "job_id"))) > 0);
        assert_true(strlen(json_string_value(json_object_get(slurm, "nodes"))) > 0);
        assert_true(json_is_number(json_object_get(slurm, "elapsed")));
    } else {
        assert_null(slurm);
    }
    char coll[80];
    snprintf(coll, sizeof coll, "u/ocps/%s", r.job_id);
    assert_string_equal(json_string_value(json_object_get(res, "output_collection")), coll);
    char run_coll[90];
    snprintf(run_coll, sizeof run_coll, "%s/run", coll);
    assert_string_equal(json_string_value(json_object_get(res, "output_run")), run_coll);
    assert_non_null(json_string_value(json_object_get(res, "creationTime")));
    assert_non_null(json_string_value(json_object_get(res, "startTime")));
    assert_non_null(json_string_value(json_object_get(res, "endTime")));
    assert_true(json_number_value(json_object_get(res, "executionDuration")) >= 0);
    json_t *env = json_object_get(json_object_get(res, "parameters"), "environment");
    bool has_butler = false;
    size_t k;
    json_t *e;
    json_array_foreach(env, k, e)
    {
        has_butler =
            has_butler || (strcmp(json_string_value(json_object_get(e, "name")), "BUTLER_REPO") == 0 &&
                           strcmp(json_string_value(json_object_get(e, "value")), "LATISS") == 0);
    }
    assert_true(has_butler);
    /* outputs captured by the configured glob (*.fits): calexp.fits only */
    assert_int_equal(json_integer_value(json_object_get(res, "results_count")), 1);
    const char *uri =
        json_string_value(json_object_get(json_array_get(json_object_get(res, "results"), 0), "uri"));
    assert_non_null(strstr(uri, "calexp.fits"));
    assert_false(json_is_true(json_object_get(res, "results_truncated")));
    assert_non_null(strstr(json_string_value(json_object_get(res, "log")), "/ocps.log"));
    json_decref(res);
    /* the final ack carries the caller's own outcome */
    json_t *summary = json_loads(r.result, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(summary, "job_id")), r.job_id);
    assert_string_equal(json_string_value(json_object_get(summary, "phase")), "completed");
    assert_int_equal(json_integer_value(json_object_get(summary, "exit_code")), 0);
    assert_string_equal(json_string_value(json_object_get(summary, "output_collection")), coll);
    json_decref(summary);
    /* pipetask got the Rubin job script's command line, as argv */
    char *inv = read_job_file(c, r.job_id, "invocation.json");
    json_t *j = json_loads(inv, 0, NULL);
    free(inv);
    json_t *argv = json_object_get(j, "argv");
    const char *expected[] = {FAKE_PIPETASK,
                              "--long-log",
                              "run",
                              "-p",
                              "cpBias.yaml",
                              "-b",
                              "LATISS",
                              "-o",
                              coll,
                              "-i",
                              "LATISS/raw/all",
                              "-j",
                              "2",
                              "--register-dataset-types",
                              "--output-run",
                              run_coll,
                              "-d",
                              "instrument='LATISS'"};
    assert_int_equal(json_array_size(argv), sizeof expected / sizeof expected[0]);
    for (size_t a = 0; a < sizeof expected / sizeof expected[0]; a++) {
        assert_string_equal(json_string_value(json_array_get(argv, a)), expected[a]);
    }
    json_t *jenv = json_object_get(j, "env");
    assert_string_equal(json_string_value(json_object_get(jenv, "JOB_ID")), r.job_id);
    assert_string_equal(json_string_value(json_object_get(jenv, "DATA_QUERY")), "instrument='LATISS'");
    assert_string_equal(json_string_value(json_object_get(jenv, "PIPELINE_URL")), "cpBias.yaml");
    assert_string_equal(json_string_value(json_object_get(jenv, "OUTPUT_GLOB")), "*.fits");
    json_decref(j);
}

/* The job's largest resident set comes back in job_result (measured by
 * its runner, whichever executor ran it); on Slurm, -j N in config asks
 * for N CPUs and the Slurm part carries the same max RSS. */
static void max_rss_and_cpus_are_reported(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, "cpBias.yaml", "-j 2", "MEM=64", NULL);
    wait_done(f, &r, 30);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    json_t *res = result_of(f, one_result(f, r.job_id));
    json_int_t rss = json_integer_value(json_object_get(res, "max_rss_kb"));
    print_message("max_rss_kb of a job that touched 64 MiB: %lld\n", (long long)rss);
    assert_true(rss >= 64 * 1024);
    assert_true(rss < 4 * 64 * 1024);
    json_t *slurm = json_object_get(res, "slurm");
    if (slurm_wanted()) {
        assert_int_equal(json_integer_value(json_object_get(slurm, "max_rss_kb")), rss);
        char *squeue[] = {"squeue", "-h", "-t",
                          "all",    "-j", (char *)json_string_value(json_object_get(slurm, "job_id")),
                          "-o",     "%C", NULL};
        char *out = NULL;
        assert_int_equal(tu_run(squeue, &out), 0);
        assert_non_null(out);
        assert_int_equal(atoi(out), 2); /* CPUs of the Slurm job */
        free(out);
    }
    json_decref(res);
}

static bool late_has_job_events(fx *late, void *arg)
{
    (void)arg;
    return sal_remote_last(late->remote, "logevent_job_result") != NULL &&
           sal_remote_last(late->remote, "logevent_job_id") != NULL;
}

static void late_joiner_reads_last_job_result(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, "cpBias.yaml", "", "visit=7", NULL);
    wait_done(f, &r, 30);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    one_result(f, r.job_id);
    /* LOVE's producer starts now and reads the last sample of every event */
    fx late;
    assert_int_equal(fx_open(&late, f->comp, 1, NULL), 0);
    bool got = fx_run_until(&late, late_has_job_events, NULL, 5);
    if (got) {
        int t = sal_component_find_topic(f->comp, "logevent_job_result");
        const void *res = sal_remote_last(late.remote, "logevent_job_result");
        got = strcmp(sal_sample_get_string(&f->comp->topics[t], res, "job_id"), r.job_id) == 0;
        t = sal_component_find_topic(f->comp, "logevent_job_id");
        const void *jid = sal_remote_last(late.remote, "logevent_job_id");
        got = got && strcmp(sal_sample_get_string(&f->comp->topics[t], jid, "job_id"), r.job_id) == 0 &&
              sal_sample_get_i32(&f->comp->topics[t], jid, "seq_num") == r.seqnum;
    }
    fx_close(&late);
    assert_true(got);
}

static void failing_job_reports_exit_code(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, "cpBias.yaml", "", "FAIL=3", NULL);
    wait_done(f, &r, 30);
    /* failed_job_ack complete (the default): CMD_COMPLETE, as the Python
     * OCPS answers, with the summary saying how the job ended */
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_non_null(strstr(r.result, "\"phase\":\"error\""));
    assert_non_null(strstr(r.result, "\"reason\":\"pipeline_failed\""));
    assert_non_null(strstr(r.result, "\"exit_code\":3"));
    long i = one_result(f, r.job_id);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 3);
    json_t *res = result_of(f, i);
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "error");
    json_decref(res);

    execute(f, &r, "cpBias.yaml", "", "KILL=9", NULL);
    wait_done(f, &r, 30);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_non_null(strstr(r.result, "\"phase\":\"error\""));
    i = one_result(f, r.job_id);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 128 + 9);
}

static void twenty_concurrent_executes(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run *runs = calloc(20, sizeof *runs);
    for (int i = 0; i < 20; i++) {
        char query[64];
        snprintf(query, sizeof query, "visit=%d SLEEP=0.3", i);
        execute(f, &runs[i], "cpBias.yaml", "", query, NULL);
    }
    for (int i = 0; i < 20; i++) {
        wait_done(f, &runs[i], 60);
        assert_int_equal(runs[i].ack, SAL_CMD_COMPLETE);
        for (int k = 0; k < i; k++) {
            assert_string_not_equal(runs[i].job_id, runs[k].job_id);
        }
    }
    fx_run_for(f, 0.3);
    for (int i = 0; i < 20; i++) {
        one_result(f, runs[i].job_id);
        char *inv = read_job_file(c, runs[i].job_id, "invocation.json");
        char query[64];
        snprintf(query, sizeof query, "visit=%d SLEEP=0.3", i);
        assert_non_null(strstr(inv, query)); /* each job ran its own query */
        free(inv);
    }
    free(runs);
}

/* Is pid gone within `timeout` seconds? A zombie counts as gone: it runs
 * nothing, and its reaper (init, or slurmstepd on Slurm) may be slower. */
static bool process_gone(fx *f, int pid, double timeout)
{
    double end = tu_now() + timeout;
    for (;;) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        char *stat = tu_read_file(path, NULL);
        const char *p = stat != NULL ? strrchr(stat, ')') : NULL;
        bool gone = stat == NULL || (p != NULL && (p[2] == 'Z' || p[2] == 'X'));
        if (!gone && tu_now() > end) {
            fprintf(stderr, "process %d still there: %s\n", pid, stat);
        }
        free(stat);
        if (gone || tu_now() > end) {
            return gone;
        }
        fx_run_for(f, 0.05);
    }
}

static void abort_job_stops_a_running_job(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, "cpBias.yaml", "", "SLEEP=60 CHILD=1", NULL);
    assert_true(fx_run_until(f, or_has_job_id, &r, 10));
    /* let it start and fork its child */
    char *pidtext = NULL;
    for (int i = 0; i < 200 && (pidtext = read_job_file(c, r.job_id, "child.pid")) == NULL; i++) {
        fx_run_for(f, 0.05);
    }
    assert_non_null(pidtext);
    int child = atoi(pidtext);
    free(pidtext);
    char result[1024];
    assert_int_equal(abort_job(f, r.job_id, result, sizeof result), SAL_CMD_COMPLETE);
    wait_done(f, &r, 30);
    assert_int_equal(r.ack, SAL_CMD_ABORTED);
    long i = one_result(f, r.job_id);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 255);
    json_t *res = result_of(f, i);
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "aborted");
    assert_string_equal(json_string_value(json_object_get(res, "reason")), "aborted");
    json_decref(res);
    /* evidence kept; the whole process group is gone */
    char *log = read_job_file(c, r.job_id, "ocps.log");
    assert_non_null(log);
    free(log);
    assert_true(process_gone(f, child, 5.0));
    /* idempotent, and a second abort writes no second job_result; its ack
     * says there was nothing to abort */
    assert_int_equal(abort_job(f, r.job_id, result, sizeof result), SAL_CMD_COMPLETE);
    char expect[160];
    snprintf(expect, sizeof expect, "Done: nothing to abort: job %s had already ended (aborted)", r.job_id);
    assert_string_equal(result, expect);
    fx_run_for(f, 0.5);
    assert_int_equal(or_job_results(f, r.job_id, &i), 1);
    /* unknown ids are refused */
    assert_int_equal(abort_job(f, "0123456789abcdef0123456789abcdef", result, sizeof result), SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: No such job id: 0123456789abcdef0123456789abcdef");
}

static void prerequisites_wait_or_fail_fast(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run a;
    run b;
    execute(f, &a, "cpBias.yaml", "", "SLEEP=1", NULL);
    assert_true(fx_run_until(f, or_has_job_id, &a, 10));
    execute(f, &b, "cpDark.yaml", "", "visit=2", a.job_id);
    /* B answers at once with its id, before A ends */
    assert_true(fx_run_until(f, or_has_job_id, &b, 5));
    assert_false(a.done);
    wait_done(f, &a, 30);
    wait_done(f, &b, 30);
    assert_int_equal(b.ack, SAL_CMD_COMPLETE);
    long ia = one_result(f, a.job_id);
    long ib = one_result(f, b.job_id);
    json_t *ra = result_of(f, ia);
    json_t *rb = result_of(f, ib);
    assert_true(strcmp(json_string_value(json_object_get(rb, "startTime")),
                       json_string_value(json_object_get(ra, "endTime"))) >= 0);
    json_decref(ra);
    json_decref(rb);

    /* A fails: B ends at once without running */
    execute(f, &a, "cpBias.yaml", "", "FAIL=1", NULL);
    assert_true(fx_run_until(f, or_has_job_id, &a, 10));
    execute(f, &b, "cpDark.yaml", "", "visit=3", a.job_id);
    wait_done(f, &a, 30);
    wait_done(f, &b, 30);
    assert_int_equal(b.ack, SAL_CMD_COMPLETE); /* ended in error: the summary says why */
    assert_non_null(strstr(b.result, "\"phase\":\"error\""));
    assert_non_null(strstr(b.result, "prerequisite"));
    char *inv = read_job_file(c, b.job_id, "invocation.json");
    assert_null(inv);
    /* a malformed prerequisite id is refused at validation */
    execute(f, &b, "cpDark.yaml", "", "visit=4", "not-a-job");
    wait_done(f, &b, 10);
    assert_int_equal(b.ack, SAL_CMD_FAILED);
    assert_non_null(strstr(b.result, "execute.prereq_jobs"));
}

/* max_waiting_jobs: an execute beyond the waiting line's limit fails at
 * once with the reason and creates no job; the line drains and takes new
 * ones again. */
static void full_waiting_line_fails_the_execute(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run a;
    run b;
    run d;
    run extra;
    execute(f, &a, "cpBias.yaml", "", "SLEEP=6", NULL);
    assert_true(fx_run_until(f, or_has_job_id, &a, 10));
    execute(f, &b, "cpDark.yaml", "", "visit=2", a.job_id);
    assert_true(fx_run_until(f, or_has_job_id, &b, 5));
    execute(f, &d, "cpDark.yaml", "", "visit=3", a.job_id);
    assert_true(fx_run_until(f, or_has_job_id, &d, 5));
    execute(f, &extra, "cpDark.yaml", "", "visit=4", a.job_id);
    wait_done(f, &extra, 10);
    assert_false(a.done); /* refused while the line was full, not after */
    assert_int_equal(extra.ack, SAL_CMD_FAILED);
    assert_non_null(strstr(extra.result, "too many jobs wait to run (2; the limit is 2)"));
    assert_null(strstr(extra.result, "infrastructure"));
    assert_string_equal(extra.job_id, "");
    wait_done(f, &a, 30);
    wait_done(f, &b, 30);
    wait_done(f, &d, 30);
    assert_int_equal(b.ack, SAL_CMD_COMPLETE);
    assert_int_equal(d.ack, SAL_CMD_COMPLETE);
    execute(f, &extra, "cpDark.yaml", "", "visit=4", NULL);
    wait_done(f, &extra, 30);
    assert_int_equal(extra.ack, SAL_CMD_COMPLETE);
}

static void injection_stays_literal(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char canary[200];
    snprintf(canary, sizeof canary, "%s/CANARY", c->root);
    char config[4096];
    snprintf(config, sizeof config,
             "-j 1 '; touch %s' \"$(touch %s)\" `touch %s` && touch %s -c 'a=*' \\$HOME ~ | cat", canary,
             canary, canary, canary);
    char query[2048];
    snprintf(query, sizeof query, "x; touch %s && $(touch %s) `touch %s` * ?", canary, canary, canary);
    char pipeline[1024];
    snprintf(pipeline, sizeof pipeline, "p.yaml; touch %s", canary);
    run r;
    execute(f, &r, pipeline, config, query, NULL);
    wait_done(f, &r, 30);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    struct stat st;
    assert_true(stat(canary, &st) != 0); /* nothing ran */
    char *inv = read_job_file(c, r.job_id, "invocation.json");
    json_t *j = json_loads(inv, 0, NULL);
    free(inv);
    json_t *argv = json_object_get(j, "argv");
    /* the config words arrived as single, unexpanded words */
    char w1[700];
    char w2[700];
    snprintf(w1, sizeof w1, "; touch %s", canary);
    snprintf(w2, sizeof w2, "$(touch %s)", canary);
    bool saw1 = false, saw2 = false, saw_home = false, saw_pipe = false;
    size_t i;
    json_t *w;
    json_array_foreach(argv, i, w)
    {
        const char *s = json_string_value(w);
        saw1 = saw1 || strcmp(s, w1) == 0;
        saw2 = saw2 || strcmp(s, w2) == 0;
        saw_home = saw_home || strcmp(s, "$HOME") == 0;
        saw_pipe = saw_pipe || strcmp(s, "|") == 0;
    }
    assert_true(saw1 && saw2 && saw_home && saw_pipe);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "env"), "DATA_QUERY")), query);
    assert_string_equal(json_string_value(json_array_get(argv, 4)), pipeline);
    json_decref(j);
}

/* A script's YAML block (`config: >`) leaves tabs and newlines in config
 * and data_query: as the Python OCPS's job template folds them, they are
 * spaces (word separators in config), and the job runs. */
static void tabs_and_newlines_are_spaces(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, "cpBias.yaml", "-j 2\t--register-dataset-types\n-c 'isr:doDark=False'\r\n",
            "instrument='LATISS'\nAND exposure.observation_type='bias'\n", NULL);
    wait_done(f, &r, 30);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    char *inv = read_job_file(c, r.job_id, "invocation.json");
    json_t *j = json_loads(inv, 0, NULL);
    free(inv);
    json_t *argv = json_object_get(j, "argv");
    const char *want[] = {"-j", "2", "--register-dataset-types", "-c", "isr:doDark=False"};
    size_t at = 0;
    size_t i;
    json_t *w;
    json_array_foreach(argv, i, w)
    {
        if (at < 5 && strcmp(json_string_value(w), want[at]) == 0) {
            at++;
        }
        assert_null(strpbrk(json_string_value(w), "\t\r")); /* no word keeps one */
    }
    assert_int_equal(at, 5); /* the words, in order */
    const char *query = "instrument='LATISS' AND exposure.observation_type='bias' ";
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "env"), "DATA_QUERY")), query);
    json_decref(j);
}

static void control_characters_are_refused(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    /* (the runtime sends no control character but tab, newline and CR;
     * the others are refused too: test_ocps_execute) */
    execute(f, &r, "cpBias.yaml", "", "", NULL);
    wait_done(f, &r, 10);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    execute(f, &r, "cpBias.yaml\n", "", "", NULL);
    wait_done(f, &r, 10);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_string_equal(r.result,
                        "Failed: execute.pipeline: control character 0x0a at byte 11 is not allowed");
    execute(f, &r, "cp\tBias.yaml", "", "", NULL);
    wait_done(f, &r, 10);
    assert_non_null(strstr(r.result, "execute.pipeline: control character 0x09"));
    execute(f, &r, "cpBias.yaml", "'unterminated", "", NULL);
    wait_done(f, &r, 10);
    assert_string_equal(r.result, "Failed: execute.config: unterminated single quote");
    /* no job was created for any of them (but the good one) */
    long first = fx_wait_event(f, "logevent_job_id", 0, 0.3);
    assert_true(first >= 0);
    assert_true(fx_wait_event(f, "logevent_job_id", (size_t)first + 1, 0.3) < 0);
}

/* Output patterns that would reach outside the job's directory are
 * refused before any job exists (the runner also never captures outside
 * it: test_job_runner). */
static void output_patterns_outside_the_job_are_refused(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    static const struct {
        const char *outputs;
        const char *message;
    } cases[] = {
        {"../../../../etc/passwd", "'../../../../etc/passwd' has a '..' component"},
        {"x,../../etc/host*", "'../../etc/host*' has a '..' component"},
        {"../*", "'../*' has a '..' component"},
        {"a/../../x", "'a/../../x' has a '..' component"},
        {"/etc/passwd", "'/etc/passwd' is an absolute path"},
        {".*/*", "'.*/*' has a component ('.*') that matches '..'"},
        {"\\.\\./*", "'\\.\\./*' has a component ('\\.\\.') that matches '..'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run r;
        execute_outputs(f, &r, "cpBias.yaml", "", "", NULL, cases[i].outputs);
        wait_done(f, &r, 10);
        assert_int_equal(r.ack, SAL_CMD_FAILED);
        char expected[512];
        snprintf(expected, sizeof expected, "Failed: execute.output_dataset_types: %s", cases[i].message);
        if (strncmp(r.result, expected, strlen(expected)) != 0) {
            fail_msg("output_dataset_types '%s': got \"%s\", expected \"%s...\"", cases[i].outputs, r.result,
                     expected);
        }
    }
    assert_true(fx_wait_event(f, "logevent_job_id", 0, 0.3) < 0); /* no job for any of them */
    /* an ordinary pattern still runs */
    run ok;
    execute_outputs(f, &ok, "cpBias.yaml", "", "", NULL, "*.json");
    wait_done(f, &ok, 30);
    assert_int_equal(ok.ack, SAL_CMD_COMPLETE);
}

static bool all_results(fx *f, void *arg)
{
    run *runs = arg;
    for (int i = 0; i < 3; i++) {
        long first;
        if (or_job_results(f, runs[i].job_id, &first) < 1) {
            return false;
        }
    }
    return true;
}

/* Final acks written for the executes of `runs`, read by a plain ackcmd
 * reader (the Remote forgets a command after its first final ack). */
typedef struct final_acks {
    const sal_component_info *comp;
    const run *runs;
    int n;
    const char *identity;
    int32_t origin;
    int count[3];
} final_acks;

static void count_final_ack(void *arg, int topic, const void *sample)
{
    final_acks *fa = arg;
    const sal_topic_info *t = &fa->comp->topics[topic];
    int ack = sal_sample_get_i32(t, sample, "ack");
    const char *identity = sal_sample_get_string(t, sample, "identity");
    if (ack == SAL_CMD_INPROGRESS || sal_sample_get_i32(t, sample, "origin") != fa->origin ||
        identity == NULL || strcmp(identity, fa->identity) != 0) {
        return;
    }
    for (int i = 0; i < fa->n; i++) {
        fa->count[i] += sal_sample_get_i32(t, sample, "private_seqNum") == fa->runs[i].seqnum;
    }
}

/* Three runs, and when Slurm may be asked next (at most 5 squeue a second). */
typedef struct slurm_watch {
    const run *runs;
    double next;
} slurm_watch;

/* Slurm has exactly these three jobs RUNNING (by their job names). */
static bool three_running_in_slurm(fx *f, void *arg)
{
    (void)f;
    slurm_watch *w = arg;
    if (tu_now() < w->next) {
        return false;
    }
    w->next = tu_now() + 0.2;
    const run *runs = w->runs;
    char *argv[] = {"squeue", "-h", "-t", "running", "-o", "%j", NULL};
    char *out = NULL;
    int mine = 0;
    int lines = 0;
    if (tu_run(argv, &out) == 0 && out != NULL) {
        for (const char *p = out; *p != '\0'; p++) {
            lines += *p == '\n';
        }
        for (int i = 0; i < 3; i++) {
            char name[80];
            snprintf(name, sizeof name, "ocps-%s", runs[i].job_id);
            mine += runs[i].job_id[0] != '\0' && strstr(out, name) != NULL;
        }
    }
    free(out);
    return mine == 3 && lines == 3;
}

static void kill_9_and_restart_reports_each_job_once(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run runs[3];
    final_acks fa = {
        f->comp, runs, 3, sal_identity(sal_remote_sal(f->remote)), sal_origin(sal_remote_sal(f->remote)),
        {0}};
    char err[256];
    assert_int_equal(
        sal_open(&c->acks, &f->loop, f->comp, 1, sal_transport_find(fx_transport()), "acks", err, sizeof err),
        0);
    assert_int_equal(sal_reader_add(c->acks, sal_component_find_topic(f->comp, "ackcmd"), count_final_ack,
                                    &fa, err, sizeof err),
                     0);
    for (int i = 0; i < 3; i++) {
        char query[64];
        snprintf(query, sizeof query, "visit=%d SLEEP=%d", i, (slurm_wanted() ? 6 : 3) + i);
        execute(f, &runs[i], "cpBias.yaml", "", query, NULL);
        assert_true(fx_run_until(f, or_has_job_id, &runs[i], 10));
    }
    if (slurm_wanted()) {
        slurm_watch w = {runs, 0};
        assert_true(fx_run_until(f, three_running_in_slurm, &w, 30)); /* exactly these 3 run in Slurm */
    } else {
        fx_run_for(f, 1.0); /* all three are executing */
    }
    kill(f->csc_pid, SIGKILL);
    assert_true(tu_wait_exit(f->csc_pid, 5) >= 0);
    f->csc_pid = -1;
    /* a new CSC process adopts the jobs from the store */
    assert_int_equal(start_csc(c, false), 0);
    assert_true(fx_run_until(f, all_results, runs, 30));
    fx_run_for(f, 2.0);
    for (int i = 0; i < 3; i++) {
        long first;
        assert_int_equal(or_job_results(f, runs[i].job_id, &first), 1);
        assert_int_equal(fx_i32(f, (size_t)first, "exit_code"), 0);
        char *runs_log = read_job_file(c, runs[i].job_id, "runs.log"); /* fake-pipetask: a line per run */
        assert_non_null(runs_log);
        assert_non_null(strstr(runs_log, "run "));
        assert_null(strstr(strstr(runs_log, "run ") + 4, "run ")); /* it ran once */
        free(runs_log);
        /* the restarted CSC still answers the original execute: on DDS
         * ackcmd readers are EXCLUSIVE, so its acks count once the killed
         * CSC's participant lease (10 s) has expired; it repeats them */
        wait_done(f, &runs[i], 25);
        assert_int_equal(runs[i].ack, SAL_CMD_COMPLETE);
    }
    if (strcmp(fx_transport(), "kafka") == 0) {
        /* no such problem on Kafka: one final ack each, none repeated
         * after the DDS repeat period (6 s) */
        fx_run_for(f, 7.0);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(fa.count[i], 1);
        }
    } else {
        for (int i = 0; i < 3; i++) {
            assert_true(fa.count[i] >= 1);
        }
    }
}

static void heartbeats_keep_time_while_jobs_run(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    size_t mark = f->nrecords;
    run *runs = calloc(20, sizeof *runs);
    for (int i = 0; i < 20; i++) {
        execute(f, &runs[i], "cpBias.yaml", "", "SLEEP=2", NULL);
    }
    for (int i = 0; i < 20; i++) {
        wait_done(f, &runs[i], 60);
        assert_int_equal(runs[i].ack, SAL_CMD_COMPLETE);
    }
    /* 8 run at a time: the last ones waited in the queue, and every job got
     * INPROGRESS again each second (inprogress_interval 1) while it lived */
    run *last = &runs[19];
    int refreshed = 0;
    bool saw_queued = false;
    for (size_t k = 1; k < last->nacks; k++) {
        refreshed += last->acks[k].ack == SAL_CMD_INPROGRESS;
        saw_queued =
            saw_queued || strstr(last->acks[k].result, "\"phase\": \"queued\", \"queue_position\"") != NULL;
    }
    assert_true(refreshed >= 2);
    assert_true(saw_queued);
    double sent_gap;
    double arrival_gap;
    int n = fx_heartbeat_gaps(f, mark, &sent_gap, &arrival_gap);
    print_message("%d heartbeats while 20 jobs ran; largest gap %.3f s as sent, %.3f s as read\n", n,
                  sent_gap, arrival_gap);
    assert_true(n >= 3);
    /* the CSC's cadence; what a loaded machine adds on the way is bounded
     * more loosely (a CI run with load 5 on 2 cores read a 1.6 s gap) */
    assert_true(sent_gap < 1.5);
    assert_true(arrival_gap < 2.5);
    free(runs);
}

static void broker_outage_loses_nothing(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    if (strcmp(fx_transport(), "kafka") != 0) {
        skip(); /* a Kafka broker outage */
    }
    run r;
    execute(f, &r, "cpBias.yaml", "", "SLEEP=4", NULL);
    assert_true(fx_run_until(f, or_has_job_id, &r, 10));
    fx_run_for(f, 0.5);
    size_t mark = f->nrecords;
    assert_int_equal(fx_broker_command(f, "down 1"), 0);
    fx_run_for(f, 5.0); /* the job ends during the outage */
    assert_int_equal(fx_broker_command(f, "up 1"), 0);
    wait_done(f, &r, 60);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    long i = one_result(f, r.job_id);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 0);
    /* heartbeats kept being written during the outage and all arrived:
     * consecutive sequence numbers */
    fx_run_for(f, 2.0);
    int t = sal_component_find_topic(f->comp, "logevent_heartbeat");
    int32_t prev = -1;
    int n = 0;
    for (size_t k = mark; k < f->nrecords; k++) {
        if (f->records[k].topic != t) {
            continue;
        }
        int32_t seq = fx_i32(f, k, "private_seqNum");
        if (prev >= 0) {
            assert_int_equal(seq, prev + 1);
        }
        prev = seq;
        n++;
    }
    print_message("%d heartbeats across the outage, none missing\n", n);
    assert_true(n >= 6);
}

/* Messages given up to an outage (a site's message.timeout.ms) are lost,
 * but the CSC is not at fault: it stays ENABLED, says so once, and works
 * when the broker is back (salobj's CSCs survive it too). */
static void outage_beyond_message_timeout_is_no_fault(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    if (strcmp(fx_transport(), "kafka") != 0) {
        skip(); /* a Kafka broker outage */
    }
    size_t mark = f->nrecords;
    assert_int_equal(fx_broker_command(f, "down 1"), 0);
    fx_run_for(f, 4.0); /* heartbeats written now wait 1.5 s, then are given up */
    assert_int_equal(fx_broker_command(f, "up 1"), 0);
    fx_run_for(f, 3.0);
    int st = sal_component_find_topic(f->comp, "logevent_summaryState");
    int hb = sal_component_find_topic(f->comp, "logevent_heartbeat");
    int after = 0;
    for (size_t k = mark; k < f->nrecords; k++) {
        assert_int_not_equal(f->records[k].topic, st); /* no FAULT, no state change at all */
        after += f->records[k].topic == hb;
    }
    assert_true(after >= 2); /* heartbeats again once the broker is back */
    run r;
    execute(f, &r, "cpBias.yaml", "", "", NULL);
    wait_done(f, &r, 60);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    one_result(f, r.job_id);
    /* the loss is in the CSC's log, as a warning */
    FILE *log = fopen(f->log_path, "r");
    assert_non_null(log);
    char line[2048];
    bool said = false;
    while (fgets(line, sizeof line, log) != NULL) {
        said =
            said || (strstr(line, "was not delivered") != NULL && strstr(line, "message.timeout.ms") != NULL);
    }
    fclose(log);
    assert_true(said);
}

static void simulation_mode_pipelines(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    /* as dm_OCPS's own test_simulation: true.yaml and false.yaml complete
     * (CMD_COMPLETE, exit_code 0) with a result of true and false, and
     * their ids begin with the pipeline */
    static const char *const pipelines[] = {"true.yaml", "false.yaml"};
    for (int k = 0; k < 2; k++) {
        execute(f, &r, pipelines[k], "ignored", "", NULL);
        wait_done(f, &r, 30);
        assert_int_equal(r.acks[0].ack, SAL_CMD_INPROGRESS);
        assert_int_equal(strncmp(r.job_id, pipelines[k], strlen(pipelines[k])), 0);
        assert_int_equal(r.job_id[strlen(pipelines[k])], '-');
        assert_int_equal(r.ack, SAL_CMD_COMPLETE);
        long i = one_result(f, r.job_id);
        assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 0);
        json_t *j = result_of(f, i);
        assert_true(json_is_boolean(json_object_get(j, "result")));
        assert_int_equal(json_is_true(json_object_get(j, "result")), k == 0);
        assert_string_equal(json_string_value(json_object_get(j, "jobId")), r.job_id);
        json_decref(j);
    }
    /* the shown id is the one abort_job and prereq_jobs take */
    char result[512];
    assert_int_equal(abort_job(f, r.job_id, result, sizeof result), SAL_CMD_COMPLETE);
    assert_non_null(strstr(result, "nothing to abort"));
    char first[64];
    snprintf(first, sizeof first, "%s", r.job_id);
    execute(f, &r, "true.yaml", "", "", first);
    wait_done(f, &r, 30);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_non_null(strstr(r.result, "\"phase\":\"completed\""));
    execute(f, &r, "unknown$pipeline.yaml", "", "", NULL);
    wait_done(f, &r, 10);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_non_null(strstr(r.result, "Unknown (simulated) pipeline: unknown$pipeline.yaml"));
    size_t mark = f->nrecords;
    execute(f, &r, "fault.yaml", "", "", NULL);
    wait_done(f, &r, 30);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    long err = fx_wait_change(f, "logevent_errorCode", "errorCode", mark, 5);
    assert_true(err >= 0);
    assert_int_equal(fx_i32(f, (size_t)err, "errorCode"), 2);
    long st = fx_wait_change(f, "logevent_summaryState", "summaryState", mark, 5);
    assert_true(st >= 0);
    assert_int_equal(fx_i32(f, (size_t)st, "summaryState"), SAL_STATE_FAULT);
    /* errorCode is written before summaryState (compared by send time:
     * Kafka keeps order within a topic only) */
    const fx_record *re = &f->records[err];
    const fx_record *rs = &f->records[st];
    assert_true(sal_sample_get_number(&f->comp->topics[re->topic], re->sample, "private_sndStamp", 0) <=
                sal_sample_get_number(&f->comp->topics[rs->topic], rs->sample, "private_sndStamp", 0));
}

/* Stands for every test when Slurm is not installed. */
static void slurm_not_installed(void **state)
{
    (void)state;
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(execute_runs_a_job_and_reports_it, setup, teardown),
        cmocka_unit_test_setup_teardown(max_rss_and_cpus_are_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(late_joiner_reads_last_job_result, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_job_reports_exit_code, setup, teardown),
        cmocka_unit_test_setup_teardown(twenty_concurrent_executes, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_job_stops_a_running_job, setup, teardown),
        cmocka_unit_test_setup_teardown(prerequisites_wait_or_fail_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(full_waiting_line_fails_the_execute, setup_waiting_limit, teardown),
        cmocka_unit_test_setup_teardown(injection_stays_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(control_characters_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(tabs_and_newlines_are_spaces, setup, teardown),
        cmocka_unit_test_setup_teardown(output_patterns_outside_the_job_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_9_and_restart_reports_each_job_once, setup, teardown),
        cmocka_unit_test_setup_teardown(heartbeats_keep_time_while_jobs_run, setup, teardown),
        cmocka_unit_test_setup_teardown(broker_outage_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(outage_beyond_message_timeout_is_no_fault,
                                        setup_short_message_timeout, teardown),
        cmocka_unit_test_setup_teardown(simulation_mode_pipelines, setup_simulate, teardown),
    };
    char why[256];
    if (slurm_wanted() && !slurm_cluster_available(why, sizeof why)) {
        const struct CMUnitTest skipped[] = {cmocka_unit_test(slurm_not_installed)};
        fprintf(stderr, "SKIPPED (executor slurm): %s\n", why);
        return cmocka_run_group_tests_name("ocps_jobs_slurm", skipped, NULL, NULL);
    }
    return cmocka_run_group_tests_name(slurm_wanted() ? "ocps_jobs_slurm" : "ocps_jobs", tests, group_setup,
                                       group_teardown);
}
