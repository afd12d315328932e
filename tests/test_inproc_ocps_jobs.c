/*
 * test_inproc_ocps_jobs: the OCPS application on its own thread, ENABLED
 * at start-up (--state enabled), running jobs with the local engine and
 * fake-pipetask, commanded over inproc: execute's INPROGRESS with the job
 * id, job_id, job_result before the final ack; a failing job; executes
 * that do not wait for each other, and abort_job; simulation mode, whose
 * fault.yaml takes the CSC to FAULT; and a CSC stopped with an execute in
 * flight, which leaves it unanswered, while the next CSC on the same job
 * store answers it once (no ownership on this transport); and an execute's
 * final ack no sooner than final_ack_min_delay after its first
 * CMD_INPROGRESS.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "ocps_test_iface.h"
#include "inproc/sal_inproc.h"
#include "inproc_csc.h"
#include "ocps/ocps_interface.h"
#include "ocps/sal_csc.h"
#include "ocps_run.h"
#include "sal_fixture.h"
#include "test_util.h"

typedef struct ctx {
    fx f;
    csc_thread *csc;
    char *root;
    char dir[1024];
    int simulation_mode;
    bool failed_ack; /* configured failed_job_ack: failed */
    fx stranger;     /* a second Remote (here: closed by teardown if a test fails) */
} ctx;

/* One execute and what came back for it. */
typedef struct run {
    char job_id[64];
    int32_t seqnum;
    int acks[64];
    char first_result[256];
    double first_timeout;
    double timeouts[64]; /* of each ack */
    double at[64];       /* when each ack came, tu_now() */
    double sent[64];     /* when the CSC sent it (private_sndStamp) */
    int nacks;
    bool done;
    int ack;
    char result[2048];
    size_t records_at_end; /* events read when the final ack came */
} run;

typedef struct run_arg {
    fx *f;
    run *r;
} run_arg;

static bool enabled(fx *f, void *arg)
{
    (void)arg;
    const void *s = sal_remote_last(f->remote, "logevent_summaryState");
    int t = sal_component_find_topic(f->comp, "logevent_summaryState");
    return s != NULL && sal_sample_get_i32(&f->comp->topics[t], s, "summaryState") == SAL_STATE_ENABLED;
}

/* A CSC as `ocps-csc --state enabled [--simulate] 1`. */
static int start_csc(ctx *c)
{
    ct_options o;
    ct_options_ocps(&o, ocps_test_component(), OCPS_JOB_RUNNER, c->dir);
    o.csc.initial_state = SAL_STATE_ENABLED;
    o.csc.simulation_mode = c->simulation_mode;
    c->csc = ct_start(&o);
    return c->csc != NULL && fx_run_until(&c->f, enabled, NULL, 10) ? 0 : -1;
}

/* A CSC in simulation_mode with `extra` (NULL: none) added to its
 * configuration. */
static int setup_with(void **state, int simulation_mode, const char *extra)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    c->simulation_mode = simulation_mode;
    c->failed_ack = extra != NULL && strstr(extra, "failed_job_ack: failed") != NULL;
    c->root = ct_ocps_config(FAKE_PIPETASK, extra);
    snprintf(c->dir, sizeof c->dir, "%s/OCPS/v4", c->root);
    if (fx_open_transport(&c->f, ocps_test_component(), 1, NULL, &sal_inproc_transport) != 0) {
        return -1;
    }
    return start_csc(c);
}

static int setup(void **state)
{
    return setup_with(state, 0, NULL);
}

static int setup_simulate(void **state)
{
    return setup_with(state, 1, NULL);
}

/* A CSC configured with failed_job_ack: failed. */
static int setup_failed_ack(void **state)
{
    return setup_with(state, 0, "failed_job_ack: failed\n");
}

/* A CSC configured with a retention policy: keep 1 published job, a pass
 * every second; its jobs' final acks not held (final_ack_min_delay 0), so
 * that all three are published within one pass. */
static int setup_retention(void **state)
{
    return setup_with(state, 0, "retention:\n  max_jobs: 1\n  interval: 1\nfinal_ack_min_delay: 0\n");
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (c->stranger.comp != NULL) {
        fx_close(&c->stranger);
    }
    int code = c->csc != NULL ? ct_stop(c->csc) : 0;
    int rc = fx_close(&c->f);
    tu_remove_tree(c->root);
    free(c->root);
    free(c);
    return code == 0 && sal_inproc_endpoints() == 0 ? rc : -1;
}

/* --- commanding --- */

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    run_arg *a = arg;
    run *r = a->r;
    if (r->nacks == 0) {
        snprintf(r->first_result, sizeof r->first_result, "%s", result);
        r->first_timeout = timeout;
    }
    if (r->nacks < 64) {
        r->timeouts[r->nacks] = timeout;
        r->at[r->nacks] = tu_now();
        r->sent[r->nacks] = sal_remote_ack_sent(a->f->remote);
        r->acks[r->nacks++] = ack;
    }
    if (ack == SAL_CMD_INPROGRESS && r->job_id[0] == '\0') {
        json_t *j = json_loads(result, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "job_id"));
        snprintf(r->job_id, sizeof r->job_id, "%s", id ? id : "");
        json_decref(j);
    }
    if (final) {
        r->done = true;
        r->ack = ack;
        r->records_at_end = a->f->nrecords;
        snprintf(r->result, sizeof r->result, "%s", result);
    }
}

static bool ready(fx *f, void *arg)
{
    (void)arg;
    return sal_remote_ready(f->remote, "execute") && sal_remote_ready(f->remote, "abort_job");
}

static run_arg args[8];

/* Send execute with `pipeline`, DATA_QUERY `query` (fake-pipetask's
 * instructions) and, unless NULL, output_dataset_types `types`; returns at
 * once. */
static void execute_with(fx *f, run *r, int slot, const char *pipeline, const char *query, const char *types)
{
    memset(r, 0, sizeof *r);
    char err[256];
    sal_remote_prepare(f->remote, "execute", err, sizeof err);
    sal_remote_prepare(f->remote, "abort_job", err, sizeof err);
    assert_true(fx_run_until(f, ready, NULL, 10));
    int t = sal_remote_command_topic(f->remote, "execute");
    const sal_topic_info *ti = &f->comp->topics[t];
    void *s = sal_remote_new_command(f->remote, "execute");
    assert_int_equal(sal_sample_set_string(ti, s, "pipeline", pipeline, err, sizeof err), 0);
    assert_int_equal(sal_sample_set_string(ti, s, "data_query", query, err, sizeof err), 0);
    if (types != NULL) {
        assert_int_equal(sal_sample_set_string(ti, s, "output_dataset_types", types, err, sizeof err), 0);
    }
    args[slot] = (run_arg){f, r};
    assert_int_equal(
        sal_remote_command(f->remote, "execute", s, 60, on_ack, &args[slot], &r->seqnum, err, sizeof err), 0);
    sal_sample_free(ti, s);
}

static void execute(fx *f, run *r, int slot, const char *pipeline, const char *query)
{
    execute_with(f, r, slot, pipeline, query, NULL);
}

static bool run_done(fx *f, void *arg)
{
    (void)f;
    return ((run *)arg)->done;
}

static bool has_job_id(fx *f, void *arg)
{
    (void)f;
    return ((run *)arg)->job_id[0] != '\0' || ((run *)arg)->done;
}

static void wait_done(fx *f, run *r)
{
    if (!fx_run_until(f, run_done, r, 30)) {
        fail_msg("execute did not end in 30 s (job %s)", r->job_id);
    }
}

/* The job's one job_result, which was read before its final ack. */
static long result_before_ack(const fx *f, const run *r)
{
    long first;
    assert_int_equal(or_job_results(f, r->job_id, &first), 1);
    assert_true(first >= 0 && (size_t)first < r->records_at_end);
    return first;
}

static json_t *json_field(const fx *f, long i, const char *name)
{
    json_t *j = json_loads(or_record_string(f, (size_t)i, name), 0, NULL);
    assert_non_null(j);
    return j;
}

/* --- tests --- */

static void execute_runs_a_job_and_reports_it(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    size_t mark = f->nrecords;
    execute(f, &r, 0, "cpBias.yaml", "instrument='LATISS'");
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    /* first INPROGRESS with the job id and 3 x inprogress_interval */
    assert_int_equal(r.acks[0], SAL_CMD_INPROGRESS);
    assert_int_equal(strlen(r.job_id), 32);
    char expect[128];
    snprintf(expect, sizeof expect, "{\"job_id\": \"%s\"}", r.job_id);
    assert_string_equal(r.first_result, expect);
    assert_true(r.first_timeout == 3.0);
    long jid = fx_wait_event(f, "logevent_job_id", mark, 5);
    assert_true(jid >= 0);
    assert_string_equal(or_record_string(f, (size_t)jid, "event_name"), "cmd_execute");
    assert_string_equal(or_record_string(f, (size_t)jid, "job_id"), r.job_id);
    assert_int_equal(fx_i32(f, (size_t)jid, "seq_num"), r.seqnum);
    long i = result_before_ack(f, &r);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 0);
    json_t *res = json_field(f, i, "result");
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "completed");
    assert_string_equal(json_string_value(json_object_get(res, "reason")), "success");
    assert_int_equal(json_integer_value(json_object_get(res, "results_count")), 1); /* calexp.fits */
    json_decref(res);
    json_t *summary = json_loads(r.result, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(summary, "job_id")), r.job_id);
    assert_string_equal(json_string_value(json_object_get(summary, "phase")), "completed");
    json_decref(summary);
    /* pipetask ran in the job's directory with its query */
    char path[1200];
    snprintf(path, sizeof path, "%s/jobs/%s/invocation.json", c->root, r.job_id);
    char *inv = tu_read_file(path, NULL);
    assert_non_null(inv);
    assert_non_null(strstr(inv, "instrument='LATISS'"));
    free(inv);
}

/* A job that ended in error: its execute's final ack is CMD_COMPLETE, as
 * the Python OCPS answers (failed_job_ack complete, the default), or
 * CMD_FAILED (failed_job_ack failed); the summary says how it ended either
 * way. */
static void failing_job_ends_its_command(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, 0, "cpBias.yaml", "FAIL=3");
    wait_done(f, &r);
    assert_int_equal(r.ack, c->failed_ack ? SAL_CMD_FAILED : SAL_CMD_COMPLETE);
    assert_non_null(strstr(r.result, "\"phase\":\"error\""));
    assert_non_null(strstr(r.result, "\"reason\":\"pipeline_failed\""));
    assert_non_null(strstr(r.result, "\"exit_code\":3"));
    long i = result_before_ack(f, &r);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 3);
}

/* --- the retrieval step (butler retrieve-artifacts after pipetask) --- */

/* A CSC with the default retrieve_command (the Rubin job script's
 * `butler retrieve-artifacts`), a fake `butler` first in PATH. */
static int setup_retrieve(void **state)
{
    return setup_with(state, 0, "# retrieve_command: the default\nmax_job_duration: 6\n");
}

/* execute with output_dataset_types `types`. */
static void execute_types(fx *f, run *r, const char *query, const char *types)
{
    execute_with(f, r, 0, "cpBias.yaml", query, types);
}

/* A fake `butler` in <root>/bin: its arguments a line each in
 * <root>/butler.argv, a dataset's file in its last argument (the
 * destination), exit 3 when DATA_QUERY says BUTLERFAILS, 30 s when it
 * says BUTLERSLEEPS (past max_job_duration, 6 s). PATH gets the
 * directory first; the old PATH is returned (malloc'd). */
static char *fake_butler(const ctx *c)
{
    char bin[1200];
    snprintf(bin, sizeof bin, "%s/bin", c->root);
    assert_int_equal(mkdir(bin, 0755), 0);
    char path[1300];
    snprintf(path, sizeof path, "%s/butler", bin);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            ": > '%s/butler.argv'\n"
            "for a in \"$@\"; do printf '%%s\\n' \"$a\" >> '%s/butler.argv'; last=$a; done\n"
            "case \"$DATA_QUERY\" in *BUTLERFAILS*) echo 'butler: no such collection' >&2; exit 3;; esac\n"
            "case \"$DATA_QUERY\" in *BUTLERSLEEPS*) sleep 30;; esac\n"
            "echo '{\"mean\": 0.5}' > \"$last/verifyBiasStats_LATISS_R00_u_ocps_run.json\"\n",
            c->root, c->root);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    const char *old = getenv("PATH");
    char *saved = strdup(old != NULL ? old : "/usr/bin:/bin");
    char *now = malloc(strlen(bin) + strlen(saved) + 2);
    sprintf(now, "%s:%s", bin, saved);
    setenv("PATH", now, 1);
    free(now);
    return saved;
}

/* The retrieval's argv (the fake butler's record), one line each; NULL if
 * it did not run. */
static char *butler_argv(const ctx *c)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/butler.argv", c->root);
    return tu_read_file(path, NULL);
}

/* As the Python OCPS's job script: after pipetask, `butler
 * retrieve-artifacts --collections u/ocps/<id>/run --dataset-type <glob>
 * ... --transfer auto --no-preserve-path <repo> <job dir>` (argv, a
 * --dataset-type per glob), and its files are the job's results. A failed
 * retrieval fails the job (its exit code, the step said); a failed
 * pipetask runs no retrieval. */
static void retrieval_step_lists_the_outputs(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char *old_path = fake_butler(c);
    run r;
    execute_types(f, &r, "instrument='LATISS'", "verify*Stats, bias");
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    char *argv = butler_argv(c);
    assert_non_null(argv); /* the retrieval ran */
    char expect[512];
    or_retrieval_argv(expect, sizeof expect, r.job_id);
    assert_string_equal(argv, expect);
    free(argv);
    long i = result_before_ack(f, &r);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 0);
    json_t *res = json_field(f, i, "result");
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "completed");
    assert_true(or_result_lists(res, "/verifyBiasStats_LATISS_R00_u_ocps_run.json"));
    assert_true(or_result_lists(res, "/ocps.log"));
    json_t *retrieve = json_object_get(json_object_get(res, "parameters"), "retrieve_command");
    assert_int_equal(json_array_size(retrieve), 13);
    assert_string_equal(json_string_value(json_array_get(retrieve, 0)), "butler");
    json_decref(res);

    /* the retrieval fails: the job fails, saying the pipetask step completed */
    char path[1200];
    snprintf(path, sizeof path, "%s/butler.argv", c->root);
    unlink(path);
    execute_types(f, &r, "instrument='LATISS' AND BUTLERFAILS", "bias");
    wait_done(f, &r);
    assert_non_null(strstr(r.result, "\"phase\":\"error\""));
    assert_non_null(strstr(r.result, "\"exit_code\":3"));
    i = result_before_ack(f, &r);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 3);
    res = json_field(f, i, "result");
    const char *msg = json_string_value(json_object_get(json_object_get(res, "errorSummary"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "step 2 of 2 (step 1 completed) exited with code 3"));
    json_decref(res);
    argv = butler_argv(c);
    assert_non_null(argv);
    free(argv);

    /* the retrieval outlives max_job_duration: the job times out, saying
     * the pipetask step completed */
    unlink(path);
    execute_types(f, &r, "instrument='LATISS' AND BUTLERSLEEPS", "bias");
    wait_done(f, &r);
    assert_non_null(strstr(r.result, "\"phase\":\"error\""));
    i = result_before_ack(f, &r);
    res = json_field(f, i, "result");
    msg = json_string_value(json_object_get(json_object_get(res, "errorSummary"), "message"));
    assert_non_null(msg);
    print_message("retrieval timed out: %s\n", msg);
    assert_non_null(strstr(msg, "step 2 of 2 (step 1 completed) exceeded its maximum duration of 6 s"));
    json_decref(res);

    /* pipetask fails: no retrieval */
    unlink(path);
    execute_types(f, &r, "FAIL=2", "bias");
    wait_done(f, &r);
    assert_non_null(strstr(r.result, "\"exit_code\":2"));
    assert_null(butler_argv(c));
    setenv("PATH", old_path, 1);
    free(old_path);
}

static void executes_do_not_wait_for_each_other(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run slow;
    run quick;
    execute(f, &slow, 0, "cpBias.yaml", "SLEEP=60");
    assert_true(fx_run_until(f, has_job_id, &slow, 10));
    execute(f, &quick, 1, "cpBias.yaml", "visit=1");
    wait_done(f, &quick); /* ends while the first still runs */
    assert_int_equal(quick.ack, SAL_CMD_COMPLETE);
    assert_false(slow.done);
    /* abort_job (concurrent too) ends the slow one */
    char result[1024];
    assert_int_equal(fx_command_str(f, "abort_job", "job_id", slow.job_id, 10, result, sizeof result),
                     SAL_CMD_COMPLETE);
    wait_done(f, &slow);
    assert_int_equal(slow.ack, SAL_CMD_ABORTED);
    long i = result_before_ack(f, &slow);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 255);
    /* an unknown job id */
    assert_int_equal(fx_command_str(f, "abort_job", "job_id", "0123456789abcdef0123456789abcdef", 10, result,
                                    sizeof result),
                     SAL_CMD_FAILED);
    assert_string_equal(result, "Failed: No such job id: 0123456789abcdef0123456789abcdef");
}

static void simulation_mode_and_its_fault(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, 0, "true.yaml", "");
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    execute(f, &r, 0, "false.yaml", ""); /* as the Python OCPS: exit 0, result false */
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_int_equal(fx_i32(f, (size_t)result_before_ack(f, &r), "exit_code"), 0);
    json_t *j = json_field(f, result_before_ack(f, &r), "result");
    assert_true(json_is_false(json_object_get(j, "result")));
    json_decref(j);
    execute(f, &r, 0, "cpBias.yaml", "");
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_non_null(strstr(r.result, "true.yaml, false.yaml or fault.yaml"));
    /* fault.yaml: job_result, FAULT with errorCode 2 and the Python OCPS's
     * report, then the failed final ack */
    size_t mark = f->nrecords;
    execute(f, &r, 0, "fault.yaml", "");
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    result_before_ack(f, &r);
    long err = fx_wait_change(f, "logevent_errorCode", "errorCode", mark, 5);
    long st = fx_wait_change(f, "logevent_summaryState", "summaryState", mark, 5);
    assert_true(err >= 0 && st > err);
    assert_true((size_t)st < r.records_at_end);
    assert_int_equal(fx_i32(f, (size_t)err, "errorCode"), 2);
    assert_string_equal(or_record_string(f, (size_t)err, "errorReport"),
                        "404 Simulation cannot contact execution service");
    assert_int_equal(fx_i32(f, (size_t)st, "summaryState"), SAL_STATE_FAULT);
    assert_int_equal(ct_state(c->csc), SAL_STATE_FAULT);
}

/* The CSC's store held by another connection (BEGIN EXCLUSIVE, past the
 * store's busy timeout): that connection, to COMMIT and close. */
static sqlite3 *lock_store(const ctx *c)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/jobs/jobs-1.sqlite", c->root);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

/* A job started (SLEEP=1, its job_id seen), then the store locked. */
static void stored_job(const ctx *c, const char *id, char *phase, size_t len, int *published,
                       int *runner_pid);

/* Runs until job r's runner is in the store (its start is stored after
 * the job_id event's loop turn: its directory is made on the thread pool
 * first, its runner spawned there next); its pid. */
static int wait_runner_stored(ctx *c, const run *r)
{
    char phase[32] = "";
    int published = 0;
    int runner_pid = 0;
    for (int i = 0; i < 200 && runner_pid <= 0; i++) {
        fx_run_for(&c->f, 0.05);
        stored_job(c, r->job_id, phase, sizeof phase, &published, &runner_pid);
    }
    assert_string_equal(phase, "executing");
    assert_true(runner_pid > 0);
    return runner_pid;
}

/* A job running, the store then locked: what it misses is the job's end. */
static sqlite3 *run_with_store_locked(ctx *c, run *r)
{
    execute(&c->f, r, 0, "cpBias.yaml", "SLEEP=1");
    assert_true(fx_run_until(&c->f, has_job_id, r, 10));
    wait_runner_stored(c, r);
    return lock_store(c);
}

/* A job store that cannot record a job's end (held by another connection
 * past its busy timeout) takes the CSC to FAULT with errorCode 3 and the
 * store's reason; the job's result and final ack still come. */
static void store_write_failure_faults(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    sqlite3 *db = run_with_store_locked(c, &r);
    wait_done(f, &r);
    long err = -1; /* the errorCode 3 (the start-up's 0 comes first) */
    for (long i = fx_wait_event(f, "logevent_errorCode", 0, 10); i >= 0 && err < 0;
         i = fx_wait_event(f, "logevent_errorCode", (size_t)i + 1, 10)) {
        err = fx_i32(f, (size_t)i, "errorCode") == 3 ? i : -1;
    }
    long st = err >= 0 ? fx_wait_event(f, "logevent_summaryState", (size_t)err, 10) : -1;
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_true(err >= 0 && st > err);
    const char *report = or_record_string(f, (size_t)err, "errorReport");
    assert_non_null(strstr(report, "The job store could not record a change: job "));
    assert_non_null(strstr(report, "locked"));
    assert_int_equal(fx_i32(f, (size_t)st, "summaryState"), SAL_STATE_FAULT);
}

/* The phase and result_published of job `id` as its store keeps them (read
 * by SQLite apart from the CSC, as a restart reads them). */
/* The stored phase of job `id`, whether its result was published and, if
 * `runner_pid` is not NULL, the pid of its runner. */
static void stored_job(const ctx *c, const char *id, char *phase, size_t len, int *published, int *runner_pid)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/jobs/jobs-1.sqlite", c->root);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT phase, result_published, runner_pid FROM jobs WHERE id = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(phase, len, "%s", (const char *)sqlite3_column_text(st, 0));
    *published = sqlite3_column_int(st, 1);
    if (runner_pid != NULL) {
        *runner_pid = sqlite3_column_int(st, 2);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void stored_phase(const ctx *c, const char *id, char *phase, size_t len, int *published)
{
    stored_job(c, id, phase, len, published, NULL);
}

/* Runs f until the runner `pid`, a child of this process, has exited (it
 * writes its status file before its exit, which takes a while under ASan).
 * Reaps it, so that the engine sees it gone. */
static void wait_runner_gone(fx *f, int pid)
{
    assert_true(pid > 0);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid || (kill(pid, 0) != 0 && errno == ESRCH)) {
            return;
        }
        fx_run_for(f, 0.1);
    }
    fail_msg("runner %d still running", pid);
}

/* The end of a job that the store could not record (it was held by
 * another process) is kept: the recovery's start writes it, or fails while
 * it still cannot (the FAULT is not over), so that a restart afterwards
 * neither reports the job again nor runs it. */
static void unrecorded_end_is_written_at_start(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    sqlite3 *db = run_with_store_locked(c, &r);
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    for (int i = 0; i < 100 && ct_state(c->csc) != SAL_STATE_FAULT; i++) {
        fx_run_for(f, 0.1);
    }
    assert_int_equal(ct_state(c->csc), SAL_STATE_FAULT);
    char result[1024];
    assert_int_equal(fx_command(f, "standby", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_non_null(strstr(result, "the job store still cannot record"));
    assert_int_equal(ct_state(c->csc), SAL_STATE_STANDBY);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    char phase[32];
    int published = 0;
    stored_phase(c, r.job_id, phase, sizeof phase, &published);
    assert_string_equal(phase, "completed");
    assert_int_equal(published, 1);
    /* a restart on this store: the job is not reported again */
    assert_int_equal(ct_stop(c->csc), 0);
    c->csc = NULL;
    size_t mark = f->nrecords;
    assert_int_equal(start_csc(c), 0);
    assert_true(fx_wait_event(f, "logevent_summaryState", mark, 10) >= 0);
    fx_run_for(f, 1.5);
    assert_true(fx_wait_event(f, "logevent_job_result", mark, 0.1) < 0);
}

/* A job of an earlier run that ended while the CSC was down, and a store
 * that cannot record that end at the next start (locked): that start
 * fails saying so and the CSC stays STANDBY (a STORE_FAILED while STANDBY
 * raises no FAULT); once the store takes it, a start succeeds and the
 * job's result comes, once. */
static void unrecordable_end_fails_the_first_start(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, 0, "cpBias.yaml", "SLEEP=0.5");
    assert_true(fx_run_until(f, has_job_id, &r, 10));
    wait_runner_stored(c, &r);
    assert_int_equal(ct_stop(c->csc), 0);
    c->csc = NULL;
    char status[1200];
    snprintf(status, sizeof status, "%s/jobs/%s/status.json", c->root, r.job_id);
    for (int i = 0; i < 100 && access(status, F_OK) != 0; i++) {
        fx_run_for(f, 0.1); /* the runner writes it as the job ends */
    }
    assert_int_equal(access(status, F_OK), 0);
    char phase[32];
    int published = 0;
    int runner = 0;
    stored_job(c, r.job_id, phase, sizeof phase, &published, &runner);
    assert_string_equal(phase, "executing"); /* the stopped CSC did not see it end */
    wait_runner_gone(f, runner);
    sqlite3 *db = lock_store(c);
    ct_options o;
    ct_options_ocps(&o, ocps_test_component(), OCPS_JOB_RUNNER, c->dir);
    o.csc.initial_state = SAL_STATE_STANDBY;
    size_t mark = f->nrecords;
    c->csc = ct_start(&o);
    assert_non_null(c->csc);
    assert_true(fx_wait_event(f, "logevent_summaryState", mark, 10) >= 0);
    char result[1024];
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_non_null(strstr(result, "the job store cannot record what it found at start"));
    assert_int_equal(ct_state(c->csc), SAL_STATE_STANDBY);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    long first;
    assert_int_equal(or_job_results(f, r.job_id, &first), 1);
    stored_phase(c, r.job_id, phase, sizeof phase, &published);
    assert_string_equal(phase, "completed");
    assert_int_equal(published, 1);
}

/* An execute from a commander whose identity is not UTF-8: no job (it
 * could not be kept with the job, as JSON takes only UTF-8, and no ack can
 * name that identity either: the runtime writes acks of such a command
 * with an empty one). */
static void identity_not_utf8_runs_nothing(void **state)
{
    ctx *c = *state;
    fx *s = &c->stranger;
    assert_int_equal(fx_open_transport(s, ocps_test_component(), 1, "bad\xff@host", &sal_inproc_transport),
                     0);
    size_t mark = c->f.nrecords;
    run r;
    execute(s, &r, 0, "cpBias.yaml", "instrument='LATISS'");
    fx_run_for(s, 0.5);
    fx_run_for(&c->f, 1.5);
    assert_true(fx_wait_event(&c->f, "logevent_job_id", mark, 0.1) < 0);
    assert_false(r.done);
    /* the same execute from f is run */
    run ok;
    execute(&c->f, &ok, 1, "cpBias.yaml", "instrument='LATISS'");
    wait_done(&c->f, &ok);
    assert_int_equal(ok.ack, SAL_CMD_COMPLETE);
}

/* Remove the CSC's job store (its file, WAL and shared memory). */
static void remove_store(const ctx *c)
{
    static const char *const parts[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/jobs/jobs-1.sqlite%s", c->root, parts[i]);
        unlink(path);
    }
}

/* The store's file removed under the CSC: the next execute fails saying
 * so (no job that no store keeps), the CSC goes to FAULT (errorCode 3),
 * and the usual recovery (standby, start) is refused until a restart opens
 * a new store, since it would run jobs nothing records. */
static void removed_store_refuses_jobs_and_start(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, 0, "cpBias.yaml", "");
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    remove_store(c);
    size_t mark = f->nrecords;
    execute(f, &r, 0, "cpBias.yaml", "");
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_FAILED);
    assert_non_null(strstr(r.result, "the job store's file was removed or replaced while open"));
    long err = fx_wait_change(f, "logevent_errorCode", "errorCode", mark, 10);
    assert_true(err >= 0);
    assert_int_equal(fx_i32(f, (size_t)err, "errorCode"), 3);
    assert_true(fx_wait_event(f, "logevent_summaryState", (size_t)err, 10) > err);
    assert_int_equal(ct_state(c->csc), SAL_STATE_FAULT);
    char result[1024];
    assert_int_equal(fx_command(f, "standby", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_non_null(strstr(result, "restart the CSC to open a new job store"));
    assert_int_equal(ct_state(c->csc), SAL_STATE_STANDBY);
}

/* The same found first by a start (nothing was written meanwhile): the
 * start fails saying why, and the CSC stays in STANDBY (no FAULT after it). */
static void removed_store_found_by_start(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, 0, "cpBias.yaml", "");
    wait_done(f, &r);
    remove_store(c);
    char result[1024];
    assert_int_equal(fx_command(f, "disable", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    assert_int_equal(fx_command(f, "standby", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    size_t mark = f->nrecords;
    assert_int_equal(fx_command(f, "start", NULL, 10, result, sizeof result), SAL_CMD_FAILED);
    assert_non_null(strstr(result, "removed or replaced while open"));
    fx_run_for(f, 0.5);
    assert_true(fx_wait_event(f, "logevent_summaryState", mark, 0.1) < 0);
    assert_int_equal(ct_state(c->csc), SAL_STATE_STANDBY);
}

/* salobj's Remote adds each CMD_INPROGRESS ack's timeout to its wait: the
 * re-sent acks of a long job keep its deadline 3 x inprogress_interval
 * ahead of the last ack, not further each time (a Remote whose CSC died
 * would otherwise wait about twice as long as the job had run). */
static void in_progress_acks_keep_a_steady_deadline(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, 0, "cpBias.yaml", "SLEEP=4.5");
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    int n = 0;
    double deadline = r.at[0]; /* the Remote's, from its first ack */
    for (int i = 0; i < r.nacks && r.acks[i] == SAL_CMD_INPROGRESS; i++, n++) {
        deadline += r.timeouts[i];
        double ahead = deadline - r.at[i];
        if (ahead < 2.0 || ahead > 4.5) { /* 3, give or take delivery delays; the bug gave 5 at the second */
            fail_msg("INPROGRESS ack %d: the Remote's deadline %.2f s after it (want 3)", i, ahead);
        }
    }
    assert_true(n >= 4); /* the first, then one every second of the job */
}

static bool ackcmd_writer_gone(fx *f, void *arg)
{
    (void)arg;
    int t = sal_component_find_topic(f->comp, "ackcmd");
    return sal_matched(sal_remote_sal(f->remote), t, false) == 0;
}

/* Final acks on the wire for one command, whoever they are for. */
typedef struct final_acks {
    int32_t seqnum;
    int n;
} final_acks;

static void count_final_ack(void *arg, int topic, const void *sample)
{
    final_acks *fa = arg;
    const sal_topic_info *t = &ocps_test_component()->topics[topic];
    int ack = sal_sample_get_i32(t, sample, "ack");
    if (ack != SAL_CMD_INPROGRESS && ack != SAL_CMD_ACK &&
        sal_sample_get_i32(t, sample, "private_seqNum") == fa->seqnum) {
        fa->n++;
    }
}

/* Stopping the CSC (SIGTERM) with an execute in flight: the job lives on
 * (its runner is detached) and the stopping CSC writes no final ack, as
 * salobj would not; the next CSC on the same job store adopts the job
 * and, when it ends, answers the original command, once: inproc has no
 * EXCLUSIVE ackcmd readers (exclusive_acks) for which to repeat it. */
static void stop_with_execute_in_flight_then_restart(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, 0, "cpBias.yaml", "SLEEP=0.5");
    assert_true(fx_run_until(f, has_job_id, &r, 10));
    final_acks fa = {r.seqnum, 0};
    sal *wire = NULL;
    char err[256];
    assert_int_equal(
        sal_open(&wire, &f->loop, ocps_test_component(), 1, &sal_inproc_transport, "wire", err, sizeof err),
        0);
    assert_int_equal(sal_reader_add(wire, sal_component_find_topic(ocps_test_component(), "ackcmd"),
                                    count_final_ack, &fa, err, sizeof err),
                     0);
    assert_int_equal(ct_stop(c->csc), 0);
    c->csc = NULL;
    assert_true(fx_run_until(f, ackcmd_writer_gone, NULL, 10));
    assert_false(r.done);
    for (int i = 0; i < r.nacks; i++) {
        assert_int_equal(r.acks[i], SAL_CMD_INPROGRESS);
    }
    assert_int_equal(fa.n, 0);
    int acks_before = r.nacks;
    size_t mark = f->nrecords;
    assert_int_equal(start_csc(c), 0);
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    /* the new CSC announced the adopted job again: INPROGRESS for the
     * original execute, and the job_id event with its seqNum */
    assert_true(r.nacks >= acks_before + 2);
    assert_int_equal(r.acks[acks_before], SAL_CMD_INPROGRESS);
    long jid = fx_wait_event(f, "logevent_job_id", mark, 5);
    assert_true(jid >= 0);
    const sal_topic_info *jt = &f->comp->topics[f->records[jid].topic];
    assert_string_equal(sal_sample_get_string(jt, f->records[jid].sample, "job_id"), r.job_id);
    assert_int_equal(sal_sample_get_i32(jt, f->records[jid].sample, "seq_num"), r.seqnum);
    json_t *summary = json_loads(r.result, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(summary, "job_id")), r.job_id);
    json_decref(summary);
    result_before_ack(f, &r);
    assert_false(sal_acks_exclusive(sal_remote_sal(f->remote)));
    /* a setLogLevel answered now: its ack is read after everything the
     * CSC wrote before it */
    char result[256];
    int t = sal_remote_command_topic(f->remote, "setLogLevel");
    void *s = sal_remote_new_command(f->remote, "setLogLevel");
    sal_sample_set_i32(&f->comp->topics[t], s, "level", SAL_LOG_INFO);
    assert_int_equal(fx_command(f, "setLogLevel", s, 10, result, sizeof result), SAL_CMD_COMPLETE);
    sal_sample_free(&f->comp->topics[t], s);
    sal_close(wire, NULL, NULL);
    assert_int_equal(fa.n, 1);
}

/* A logMessage whose message contains `text` (arg), read after the mark. */
typedef struct log_wait {
    const char *text;
    size_t from;
} log_wait;

static bool has_log(fx *f, void *arg)
{
    const log_wait *w = arg;
    int t = sal_component_find_topic(f->comp, "logevent_logMessage");
    for (size_t i = w->from; i < f->nrecords; i++) {
        if (f->records[i].topic == t && strstr(or_record_string(f, i, "message"), w->text) != NULL) {
            return true;
        }
    }
    return false;
}

static bool job_dir_exists(const ctx *c, const char *id)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/jobs/%s", c->root, id);
    return access(path, F_OK) == 0;
}

/* An execute that reaches the CSC twice (Kafka stores a command again
 * when its producer retries after a lost ack) runs one job: one job_id
 * event, one job_result, and a warning that says why the copy was
 * dropped. */
static void execute_delivered_twice_runs_once(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    size_t mark = f->nrecords;
    sal_inproc_repeat_writes("command_execute", 1);
    execute(f, &r, 0, "cpBias.yaml", "instrument='LATISS'");
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    log_wait w = {.text = "Ignoring command_execute from", .from = mark};
    assert_true(fx_run_until(f, has_log, &w, 5));
    fx_run_for(f, 1.0); /* a second job would have been reported by now */
    sal_inproc_repeat_writes("command_execute", 0);
    int jobs = 0;
    for (long i = fx_wait_event(f, "logevent_job_id", mark, 0); i >= 0;
         i = fx_wait_event(f, "logevent_job_id", (size_t)i + 1, 0)) {
        jobs++;
    }
    assert_int_equal(jobs, 1);
    long first;
    assert_int_equal(or_job_results(f, r.job_id, &first), 1);
    w.text = "delivered again";
    assert_true(has_log(f, &w));
}

/* retention (configuration) reaches the engine: of three published jobs
 * the two oldest are removed, and the CSC says so in a logMessage. */
static void retention_from_configuration(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r[3];
    log_wait w = {"retention: removed 2 jobs", f->nrecords};
    for (int i = 0; i < 3; i++) {
        execute(f, &r[i], i, "cpBias.yaml", "instrument='LATISS'");
        wait_done(f, &r[i]);
        assert_int_equal(r[i].ack, SAL_CMD_COMPLETE);
    }
    assert_true(fx_run_until(f, has_log, &w, 10));
    assert_false(job_dir_exists(c, r[0].job_id));
    assert_false(job_dir_exists(c, r[1].job_id));
    assert_true(job_dir_exists(c, r[2].job_id));
}

/* A job_result the transport refuses (as Kafka's full queue while the
 * broker is away) is written again until it is taken: the job's one
 * job_result, then its final ack, and the CSC says what happened. */
static void refused_job_result_is_written_again(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    log_wait refused = {"job_result not written", f->nrecords};
    log_wait written = {"job_result written (2 earlier tries failed)", f->nrecords};
    sal_inproc_fail_writes("logevent_job_result", 2, -EAGAIN);
    execute(f, &r, 0, "cpBias.yaml", "instrument='LATISS'");
    if (!fx_run_until(f, run_done, &r, 40)) { /* two retries 5 s apart */
        sal_inproc_fail_writes("logevent_job_result", 0, 0);
        fail_msg("execute did not end in 40 s (job %s)", r.job_id);
    }
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    long i = result_before_ack(f, &r); /* exactly one */
    json_t *res = json_field(f, i, "result");
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "completed");
    json_decref(res);
    assert_true(has_log(f, &refused));
    assert_true(fx_run_until(f, has_log, &written, 5));
}

/* A job_result the transport can never take (an error other than "not
 * now") is not tried again: logged, and the execute answered as before. */
static void unwritable_job_result_is_not_retried(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    log_wait refused = {"job_result not written: the write failed", f->nrecords};
    sal_inproc_fail_writes("logevent_job_result", 1, -EIO);
    execute(f, &r, 0, "cpBias.yaml", "instrument='LATISS'");
    wait_done(f, &r); /* within 30 s, no retry after 5 */
    sal_inproc_fail_writes("logevent_job_result", 0, 0);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    long first;
    assert_int_equal(or_job_results(f, r.job_id, &first), 0);
    assert_true(fx_run_until(f, has_log, &refused, 5));
    log_wait again = {"written again every", refused.from};
    assert_false(has_log(f, &again));
}

/* Seconds from the first CMD_INPROGRESS of r's execute to its final ack,
 * as the CSC sent them (as read here, a late read of the first would
 * shorten the gap on a loaded machine). */
static double first_to_final(const run *r)
{
    assert_true(r->nacks >= 2 && r->nacks < 64);
    assert_int_equal(r->acks[0], SAL_CMD_INPROGRESS);
    assert_true(r->sent[0] > 0 && r->sent[r->nacks - 1] > 0);
    return r->sent[r->nacks - 1] - r->sent[0];
}

/* final_ack_min_delay (1 s by default, as configured here): an execute's
 * final ack comes that long after its first CMD_INPROGRESS at the
 * soonest, whatever the outcome, its job_result still before it: salobj's
 * Remote forgets a command as it reads its final ack, and a script that
 * waits with next_ackcmd after set_start(wait_done=False) fails when both
 * came in one read. A disable meanwhile does not lose it; a job that runs
 * longer than the delay is not delayed. */
static void final_ack_waits_for_its_minimum_delay(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    const double delay = 1.0; /* the default */
    run r;
    execute(f, &r, 0, "cpBias.yaml", "FAIL=3"); /* fails at once */
    wait_done(f, &r);
    double gap = first_to_final(&r);
    if (gap < delay) {
        fail_msg("failed job: final ack %.4f s after the first INPROGRESS, expected >= %.1f", gap, delay);
    }
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    result_before_ack(f, &r);
    /* aborted at once */
    run slow;
    execute(f, &slow, 0, "cpBias.yaml", "SLEEP=60");
    assert_true(fx_run_until(f, has_job_id, &slow, 10));
    char result[1024];
    assert_int_equal(fx_command_str(f, "abort_job", "job_id", slow.job_id, 10, result, sizeof result),
                     SAL_CMD_COMPLETE);
    wait_done(f, &slow);
    assert_int_equal(slow.ack, SAL_CMD_ABORTED);
    assert_true(first_to_final(&slow) >= delay);
    result_before_ack(f, &slow);
    /* a disable while the final ack waits: it still comes, when due */
    execute(f, &r, 0, "cpBias.yaml", "FAIL=3");
    assert_true(fx_run_until(f, has_job_id, &r, 10));
    assert_int_equal(fx_command(f, "disable", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    wait_done(f, &r);
    assert_true(first_to_final(&r) >= delay);
    result_before_ack(f, &r);
    assert_int_equal(fx_command(f, "enable", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    /* a job longer than the delay: its final ack follows its end, not
     * delay after it */
    execute(f, &r, 0, "cpBias.yaml", "SLEEP=1.5");
    wait_done(f, &r);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    long i = result_before_ack(f, &r);
    json_t *res = json_field(f, i, "result");
    double ran = json_number_value(json_object_get(res, "executionDuration"));
    json_decref(res);
    gap = first_to_final(&r);
    if (ran < 1.5 || gap - ran > 0.8) { /* not held a whole delay after its end */
        fail_msg("long job: ran %.3f s, final ack %.3f s after the first INPROGRESS", ran, gap);
    }
}

int main(void)
{
    setenv("LSST_SITE", "test", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(execute_runs_a_job_and_reports_it, setup, teardown),
        cmocka_unit_test_setup_teardown(in_progress_acks_keep_a_steady_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_job_ends_its_command, setup, teardown),
        cmocka_unit_test_setup_teardown(failing_job_ends_its_command, setup_failed_ack, teardown),
        cmocka_unit_test_setup_teardown(executes_do_not_wait_for_each_other, setup, teardown),
        cmocka_unit_test_setup_teardown(simulation_mode_and_its_fault, setup_simulate, teardown),
        cmocka_unit_test_setup_teardown(store_write_failure_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(unrecorded_end_is_written_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(removed_store_refuses_jobs_and_start, setup, teardown),
        cmocka_unit_test_setup_teardown(removed_store_found_by_start, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_with_execute_in_flight_then_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(retention_from_configuration, setup_retention, teardown),
        cmocka_unit_test_setup_teardown(refused_job_result_is_written_again, setup, teardown),
        cmocka_unit_test_setup_teardown(unwritable_job_result_is_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(unrecordable_end_fails_the_first_start, setup, teardown),
        cmocka_unit_test_setup_teardown(identity_not_utf8_runs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(execute_delivered_twice_runs_once, setup, teardown),
        cmocka_unit_test_setup_teardown(final_ack_waits_for_its_minimum_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(retrieval_step_lists_the_outputs, setup_retrieve, teardown),
    };
    return cmocka_run_group_tests_name("inproc_ocps_jobs", tests, NULL, NULL);
}
