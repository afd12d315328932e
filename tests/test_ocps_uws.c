/*
 * test_ocps_uws: the CSC with executor uws, end to end over real DDS:
 * ocps-csc (a process) sends its jobs with the argv extension to a real
 * ocps-engine (a process, local executor) running fake-pipetask.
 * INPROGRESS with the job id, the job_id event, one job_result with the
 * exit status, failures, abort (the job kept as aborted on the server),
 * prerequisites, an injection canary, ocps-engine SIGKILLed and restarted
 * while the CSC polls (each result once, heartbeats on time, the CSC stays
 * ENABLED), the CSC SIGKILLed and restarted (jobs re-adopted), and the
 * retrieval step (butler retrieve-artifacts) sent as ocps-engine's
 * then_argv, its file in results.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps/sal_csc.h"
#include "ocps_test_iface.h"
#include "ocps_run.h"
#include "sal_fixture.h"
#include "test_util.h"
#include "uws_fixture.h"

typedef struct ctx {
    fx f;
    uws_fx server;
    char *root; /* DM_CONFIG_OCPS_DIR */
    char work[600];
    char *csc_argv[10];
    char *token_dir;  /* setup_token_server: the bearer token's file */
    char *butler_dir; /* setup_butler: the fake butler's directory, first in PATH */
    char *old_path;   /* setup_butler: PATH before */
} ctx;

/* One execute in flight. */
typedef or_run run;

static void make_config(ctx *c)
{
    c->root = tu_make_ocps_config();
    assert_non_null(c->root);
    snprintf(c->work, sizeof c->work, "%s/jobs", c->root);
    char site[4096];
    snprintf(
        site, sizeof site,
        "work_root: %s\npipetask: %s\ninprogress_interval: 1\nmax_concurrent_jobs: 8\n"
        "executor: uws\nuws_api: ocps-engine\n%s"
        "instances:\n  - sal_index: 1\n    instance: LATISS\n    url: %s/api/v1\n    poll_interval: 0.2\n"
        "    butler: LATISS\n    input_collection: LATISS/raw/all\n    output_glob: '*.fits'\n",
        c->work, FAKE_PIPETASK,
        c->butler_dir != NULL ? "# retrieve_command: the default\n" : "retrieve_command: []\n",
        c->server.base);
    assert_int_equal(tu_write_ocps_site(c->root, site), 0);
}

static int start_csc(ctx *c)
{
    int n = 0;
    c->csc_argv[n++] = OCPS_CSC;
    c->csc_argv[n++] = "--duplicate-check";
    c->csc_argv[n++] = "0.2";
    c->csc_argv[n++] = "--state";
    c->csc_argv[n++] = "enabled";
    c->csc_argv[n++] = "1";
    c->csc_argv[n] = NULL;
    if (fx_start_csc(&c->f, c->csc_argv) != 0) {
        return -1;
    }
    return or_wait_enabled(&c->f, 0, 15);
}

/* A fake `butler` in butler_dir (which ocps-engine, started after, finds
 * first in its PATH): records its argv in butler_dir/butler.argv, one
 * word a line, and its working directory, then writes a dataset's file
 * into its last argument (as retrieve-artifacts). */
static int fake_butler(ctx *c)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/butler", c->butler_dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f,
            "#!/bin/sh\n"
            ": > '%s/butler.argv'\n"
            "for a in \"$@\"; do printf '%%s\\n' \"$a\" >> '%s/butler.argv'; last=$a; done\n"
            "pwd > '%s/butler.pwd'\n"
            "echo '{\"mean\": 0.5}' > \"$last/verifyBiasStats_LATISS_R00_u_ocps_run.json\"\n",
            c->butler_dir, c->butler_dir, c->butler_dir);
    fclose(f);
    if (chmod(path, 0755) != 0) {
        return -1;
    }
    const char *old = getenv("PATH");
    c->old_path = strdup(old != NULL ? old : "/usr/bin:/bin");
    char *now = malloc(strlen(c->butler_dir) + strlen(c->old_path) + 2);
    if (c->old_path == NULL || now == NULL) {
        free(now);
        return -1;
    }
    sprintf(now, "%s:%s", c->butler_dir, c->old_path);
    setenv("PATH", now, 1);
    free(now);
    return 0;
}

static int setup_server_with(void **state, const char *const *server_options, bool retrieval)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    if (retrieval && ((c->butler_dir = tu_make_temp_dir()) == NULL || fake_butler(c) != 0)) {
        return -1;
    }
    if (uws_fx_start(&c->server, NULL, server_options) != 0) {
        return -1;
    }
    make_config(c);
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", c->root, 1);
    if (fx_open(&c->f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    return start_csc(c);
}

static int setup_server(void **state, const char *const *server_options)
{
    return setup_server_with(state, server_options, false);
}

static int setup(void **state)
{
    return setup_server(state, NULL);
}

/* the default retrieve_command, a fake butler in ocps-engine's PATH */
static int setup_butler(void **state)
{
    return setup_server_with(state, NULL, true);
}

/* a server that runs one job and lets one wait */
static int setup_small_server(void **state)
{
    static const char *const opts[] = {"--max-concurrent", "1", "--max-waiting", "1", NULL};
    return setup_server(state, opts);
}

/* a server that wants a bearer token (as beyond loopback), which the CSC
 * reads from OCPS_UWS_TOKEN_FILE */
static int setup_token_server(void **state)
{
    static char token_file[600];
    char *dir = tu_make_temp_dir();
    if (dir == NULL) {
        return -1;
    }
    snprintf(token_file, sizeof token_file, "%s/token", dir);
    if (tu_write_file(token_file, "  s3cret-Token.42 \n", 19) != 0) {
        return -1;
    }
    setenv("OCPS_UWS_TOKEN_FILE", token_file, 1);
    const char *const opts[] = {"--token-file", token_file, NULL};
    int rc = setup_server(state, opts);
    ((ctx *)*state)->token_dir = dir;
    return rc;
}

static int teardown(void **state)
{
    ctx *c = *state;
    unsetenv("OCPS_UWS_TOKEN_FILE");
    if (c->token_dir != NULL) {
        tu_remove_tree(c->token_dir);
        free(c->token_dir);
    }
    int rc = fx_close(&c->f);
    uws_fx_stop(&c->server);
    if (c->old_path != NULL) {
        setenv("PATH", c->old_path, 1);
        free(c->old_path);
    }
    if (c->butler_dir != NULL) {
        tu_remove_tree(c->butler_dir);
        free(c->butler_dir);
    }
    tu_remove_tree(c->root);
    free(c->root);
    free(c);
    return rc;
}

/* --- commanding (as test_ocps_jobs) --- */

static void execute(fx *f, run *r, const char *pipeline, const char *config, const char *query,
                    const char *prereqs)
{
    assert_true(or_commands_ready(f, 10));
    or_fields x = {pipeline, config, query, prereqs ? prereqs : "", ""};
    assert_int_equal(or_execute(f, r, &x, 120), 0);
}

static void wait_done(fx *f, run *r, double timeout)
{
    if (!or_wait_done(f, r, timeout)) {
        fail_msg("execute did not end in %.0f s (job %s)", timeout, r->job_id);
    }
}

/* The job's only job_result (on Kafka it may be read after the final
 * ack: different topics): its record index. */
static long one_result(fx *f, const char *id)
{
    long i = or_one_result(f, id, 30, 0.3);
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

/* The server's job whose runId is the CSC's job id (owned), or NULL. */
static json_t *server_job_of(ctx *c, const char *csc_id)
{
    uws_resp r;
    json_t *found = NULL;
    if (uws_fx_request(&c->server, "GET", "/job", NULL, NULL, 0, NULL, &r) == 0) {
        size_t i;
        json_t *j;
        json_array_foreach(r.json, i, j)
        {
            if (strcmp(json_string_value(json_object_get(j, "runId")), csc_id) == 0) {
                found = json_incref(j);
            }
        }
    }
    uws_resp_clear(&r);
    return found;
}

/* A file the job wrote in its output directory on the server. */
static char *server_file(ctx *c, const char *csc_id, const char *name)
{
    json_t *job = server_job_of(c, csc_id);
    json_t *env = json_object_get(json_object_get(job, "parameters"), "environment");
    const char *out = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        if (out == NULL && strcmp(json_string_value(json_object_get(e, "name")), "JOB_OUTPUT_DIR") == 0) {
            out = json_string_value(json_object_get(e, "value"));
        }
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", out != NULL ? out : "/nonexistent", name);
    json_decref(job);
    return tu_read_file(path, NULL);
}

/* --- tests --- */

static void execute_runs_on_ocps_engine(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    size_t mark = f->nrecords;
    execute(f, &r, "cpBias.yaml", "-j 2", "instrument='LATISS'", NULL);
    wait_done(f, &r, 60);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    assert_int_equal(r.acks[0].ack, SAL_CMD_INPROGRESS);
    assert_int_equal(strlen(r.job_id), 32);
    char expect[128];
    snprintf(expect, sizeof expect, "{\"job_id\": \"%s\"}", r.job_id);
    assert_string_equal(r.acks[0].result, expect);
    long jid = fx_wait_event(f, "logevent_job_id", mark, 5);
    assert_true(jid >= 0);
    assert_string_equal(or_record_string(f, (size_t)jid, "job_id"), r.job_id);
    long i = one_result(f, r.job_id);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 0);
    json_t *res = result_of(f, i);
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "completed");
    /* the outputs are the server's: calexp.fits and summary.txt (and invocation.json) */
    json_t *results = json_object_get(res, "results");
    assert_true(json_array_size(results) >= 2);
    /* the server ran it without a shell, with the CSC's argv and environment */
    json_t *job = server_job_of(c, r.job_id);
    assert_non_null(job);
    /* the server's own id of the job, to find it there */
    assert_string_equal(json_string_value(json_object_get(json_object_get(res, "uws"), "jobId")),
                        json_string_value(json_object_get(job, "jobId")));
    json_decref(res);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    assert_false(json_is_true(json_object_get(json_object_get(job, "jobInfo"), "shell")));
    json_decref(job);
    char *inv = server_file(c, r.job_id, "invocation.json");
    assert_non_null(inv);
    json_t *j = json_loads(inv, 0, NULL);
    free(inv);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "argv"), 0)), FAKE_PIPETASK);
    json_t *jenv = json_object_get(j, "env");
    assert_string_equal(json_string_value(json_object_get(jenv, "DATA_QUERY")), "instrument='LATISS'");
    assert_string_equal(json_string_value(json_object_get(jenv, "JOB_ID")), r.job_id);
    json_decref(j);
}

/* With uws_api: ocps-engine the job has the retrieval step too (as the
 * Python OCPS's job script, and the local executor): sent as ocps-engine's
 * extension then_argv, run after pipetask in the job's output directory;
 * the retrieved file is in job_result's results. */
static void retrieval_step_runs_on_ocps_engine(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    assert_true(or_commands_ready(f, 10));
    or_fields x = {"cpBias.yaml", "", "instrument='LATISS'", "", "verify*Stats, bias"};
    assert_int_equal(or_execute(f, &r, &x, 120), 0);
    wait_done(f, &r, 60);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    char path[1300];
    snprintf(path, sizeof path, "%s/butler.argv", c->butler_dir);
    char *argv = tu_read_file(path, NULL);
    assert_non_null(argv); /* the retrieval ran */
    char expect[512];
    or_retrieval_argv(expect, sizeof expect, r.job_id);
    assert_string_equal(argv, expect);
    free(argv);
    long i = one_result(f, r.job_id);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 0);
    json_t *res = result_of(f, i);
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "completed");
    assert_true(or_result_lists(res, "/out/verifyBiasStats_LATISS_R00_u_ocps_run.json"));
    assert_true(or_result_lists(res, "/out/calexp.fits"));
    json_t *retrieve = json_object_get(json_object_get(res, "parameters"), "retrieve_command");
    assert_int_equal(json_array_size(retrieve), 13);
    json_decref(res);
    /* it ran in the server job's output directory, given as then_argv */
    json_t *job = server_job_of(c, r.job_id);
    assert_non_null(job);
    json_t *then = json_object_get(json_object_get(job, "parameters"), "then_argv");
    assert_int_equal(json_array_size(then), 13);
    assert_string_equal(json_string_value(json_array_get(then, 0)), "butler");
    json_decref(job);
    snprintf(path, sizeof path, "%s/butler.pwd", c->butler_dir);
    char *pwd = tu_read_file(path, NULL);
    assert_non_null(pwd);
    char *inv = server_file(c, r.job_id, "verifyBiasStats_LATISS_R00_u_ocps_run.json");
    assert_non_null(inv); /* in JOB_OUTPUT_DIR */
    free(inv);
    assert_non_null(strstr(pwd, "/out\n"));
    free(pwd);
}

/* execute cpBias.yaml with config and query; its final ack and the exit
 * code its one job_result reports. */
static void execute_expect(fx *f, const char *config, const char *query, int ack, int exit_code)
{
    run r;
    execute(f, &r, "cpBias.yaml", config, query, NULL);
    wait_done(f, &r, 60);
    assert_int_equal(r.ack, ack);
    long i = one_result(f, r.job_id);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), exit_code);
}

static void failing_job_reports_exit_code(void **state)
{
    ctx *c = *state;
    execute_expect(&c->f, "", "FAIL=3", SAL_CMD_COMPLETE, 3); /* ended in error (failed_job_ack complete) */
}

static void abort_job_keeps_the_server_job(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run r;
    execute(f, &r, "cpBias.yaml", "", "SLEEP=60 CHILD=1", NULL);
    assert_true(fx_run_until(f, or_has_job_id, &r, 10));
    char *pidtext = NULL;
    for (int k = 0; k < 400 && (pidtext = server_file(c, r.job_id, "child.pid")) == NULL; k++) {
        fx_run_for(f, 0.05);
    }
    assert_non_null(pidtext);
    int child = atoi(pidtext);
    free(pidtext);
    char result[1024];
    assert_int_equal(fx_command_str(f, "abort_job", "job_id", r.job_id, 10, result, sizeof result),
                     SAL_CMD_COMPLETE);
    wait_done(f, &r, 30);
    assert_int_equal(r.ack, SAL_CMD_ABORTED);
    long i = one_result(f, r.job_id);
    assert_int_equal(fx_i32(f, (size_t)i, "exit_code"), 255);
    json_t *job = server_job_of(c, r.job_id);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "aborted");
    json_decref(job);
    double end = tu_now() + 5;
    while (kill(child, 0) == 0 && tu_now() < end) {
        fx_run_for(f, 0.05);
    }
    assert_int_not_equal(kill(child, 0), 0);
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
    assert_true(fx_run_until(f, or_has_job_id, &b, 5));
    assert_false(a.done);
    wait_done(f, &a, 60);
    wait_done(f, &b, 60);
    assert_int_equal(b.ack, SAL_CMD_COMPLETE);
    execute(f, &a, "cpBias.yaml", "", "FAIL=1", NULL);
    assert_true(fx_run_until(f, or_has_job_id, &a, 10));
    execute(f, &b, "cpDark.yaml", "", "visit=3", a.job_id);
    wait_done(f, &a, 60);
    wait_done(f, &b, 60);
    assert_int_equal(b.ack, SAL_CMD_COMPLETE); /* ended in error: the summary says why */
    assert_non_null(strstr(b.result, "\"phase\":\"error\""));
    assert_non_null(strstr(b.result, "prerequisite"));
    json_t *never = server_job_of(c, b.job_id);
    assert_null(never); /* never sent */
}

static void injection_stays_literal(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char canary[200];
    snprintf(canary, sizeof canary, "%s/CANARY", c->root);
    char query[800];
    snprintf(query, sizeof query, "x='$(touch %s)' AND y='`touch %s`'; touch %s", canary, canary, canary);
    run r;
    execute(f, &r, "cpBias.yaml", "", query, NULL);
    wait_done(f, &r, 60);
    assert_int_equal(r.ack, SAL_CMD_COMPLETE);
    char *inv = server_file(c, r.job_id, "invocation.json");
    json_t *j = json_loads(inv, 0, NULL);
    free(inv);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "env"), "DATA_QUERY")), query);
    json_decref(j);
    assert_int_not_equal(access(canary, F_OK), 0);
}

/* logMessage events since record `mark` whose message contains `needle`,
 * at `level` (-1: any level). */
static int count_messages(fx *f, size_t mark, const char *needle, int level)
{
    int n = 0;
    int t = sal_component_find_topic(f->comp, "logevent_logMessage");
    for (size_t k = mark; k < f->nrecords; k++) {
        if (f->records[k].topic == t && strstr(or_record_string(f, k, "message"), needle) != NULL &&
            (level < 0 || fx_i32(f, k, "level") == level)) {
            n++;
        }
    }
    return n;
}

static bool all_done(fx *f, void *arg)
{
    (void)f;
    run *runs = arg;
    for (int i = 0; i < 3; i++) {
        if (!runs[i].done) {
            return false;
        }
    }
    return true;
}

/* ocps-engine SIGKILLed and restarted while the CSC polls: every job's
 * result arrives exactly once, heartbeats keep time, the CSC stays ENABLED. */
static void server_killed_and_restarted(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    size_t mark = f->nrecords;
    run runs[3];
    for (int i = 0; i < 3; i++) {
        char query[64];
        snprintf(query, sizeof query, "visit=%d SLEEP=%d", i, 2 + i);
        execute(f, &runs[i], "cpBias.yaml", "", query, NULL);
        assert_true(fx_run_until(f, or_has_job_id, &runs[i], 10));
    }
    fx_run_for(f, 1.0);
    uws_fx_kill(&c->server);
    fx_run_for(f, 3.0); /* down for 3 s: the jobs go on on the server's host */
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", c->server.port);
    const char *const extra[] = {"--listen", listen, NULL};
    assert_int_equal(uws_fx_restart(&c->server, extra), 0);
    assert_true(fx_run_until(f, all_done, runs, 60));
    fx_run_for(f, 1.0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(runs[i].ack, SAL_CMD_COMPLETE);
        long first;
        assert_int_equal(or_job_results(f, runs[i].job_id, &first), 1);
        assert_int_equal(fx_i32(f, (size_t)first, "exit_code"), 0);
    }
    double sent_gap;
    double arrival_gap;
    int n = fx_heartbeat_gaps(f, mark, &sent_gap, &arrival_gap);
    print_message("%d heartbeats across the outage; largest gap %.3f s as sent, %.3f s as read\n", n,
                  sent_gap, arrival_gap);
    assert_true(n >= 5);
    assert_true(sent_gap <= 1.5);
    /* no state change */
    assert_true(fx_wait_event(f, "logevent_summaryState", mark, 0.1) < 0);
    /* one warning for the outage (logMessage), and one when the server is back */
    assert_int_equal(count_messages(f, mark, "retrying with backoff", SAL_LOG_WARNING), 1);
    assert_int_equal(count_messages(f, mark, "answers again", -1), 1);
}

/* The CSC SIGKILLed and restarted: its jobs are found again on the
 * server by their stored ids, each result once. */
static void csc_killed_and_restarted(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    run runs[3];
    for (int i = 0; i < 3; i++) {
        char query[64];
        snprintf(query, sizeof query, "visit=%d SLEEP=%d", i, 3 + i);
        execute(f, &runs[i], "cpBias.yaml", "", query, NULL);
        assert_true(fx_run_until(f, or_has_job_id, &runs[i], 10));
    }
    fx_run_for(f, 1.0);
    kill(f->csc_pid, SIGKILL);
    assert_true(tu_wait_exit(f->csc_pid, 5) >= 0);
    f->csc_pid = -1;
    assert_int_equal(start_csc(c), 0);
    for (int i = 0; i < 3; i++) {
        long first = or_one_result(f, runs[i].job_id, 60, 0.5);
        assert_true(first >= 0); /* exactly one */
        assert_int_equal(fx_i32(f, (size_t)first, "exit_code"), 0);
    }
    assert_int_equal(uws_fx_count(&c->server), 3); /* none sent twice */
}

/* The value of an unlabelled sample in a /metrics text, -1 if absent. */
static double metric(const char *text, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    return p != NULL ? strtod(p + strlen(key), NULL) : -1;
}

/* ocps-engine refuses a PUT while its line is full (503, --max-waiting):
 * the CSC sends it again with backoff, never looking the job up in the
 * server's whole list (the refusal created nothing), and every job runs
 * once; one warning, and one message when the server takes jobs again. */
static void a_full_server_line_is_retried(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    size_t mark = f->nrecords;
    run runs[3];
    for (int i = 0; i < 3; i++) {
        char query[64];
        snprintf(query, sizeof query, "visit=%d SLEEP=%d", i, i == 0 ? 2 : 0);
        execute(f, &runs[i], "cpBias.yaml", "", query, NULL);
        assert_true(fx_run_until(f, or_has_job_id, &runs[i], 10));
    }
    assert_true(fx_run_until(f, all_done, runs, 90));
    uws_resp m;
    assert_int_equal(uws_fx_request(&c->server, "GET", "/metrics", NULL, NULL, 0, NULL, &m), 0);
    double refused = metric(m.body, "ocps_engine_jobs_refused_total");
    print_message("the server refused %.0f PUT(s) while its line was full\n", refused);
    assert_true(refused >= 1);
    assert_null(strstr(m.body, "route=\"jobs\",method=\"GET\"")); /* no GET /job lookup */
    uws_resp_clear(&m);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(runs[i].ack, SAL_CMD_COMPLETE);
        assert_true(one_result(f, runs[i].job_id) >= 0);
    }
    assert_int_equal(uws_fx_count(&c->server), 3); /* none created twice */
    assert_int_equal(count_messages(f, mark, "too many jobs wait to run", SAL_LOG_WARNING), 1);
    assert_int_equal(count_messages(f, mark, "takes new jobs again", -1), 1);
    /* a full server is not an unreachable one */
    assert_int_equal(count_messages(f, mark, "retrying with backoff", -1),
                     count_messages(f, mark, "takes no new job", -1));
}

/* With a token on the server, the CSC's requests carry it (read from
 * OCPS_UWS_TOKEN_FILE, blanks around it dropped): the job runs. */
static void token_from_a_file_is_sent(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    uws_resp resp;
    assert_int_equal(uws_fx_request(&c->server, "GET", "/job", NULL, NULL, 0, NULL, &resp), 0);
    assert_int_equal(resp.status, 401); /* without it, nothing */
    uws_resp_clear(&resp);
    execute_expect(f, "-j 2", "instrument='LATISS'", SAL_CMD_COMPLETE, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(execute_runs_on_ocps_engine, setup, teardown),
        cmocka_unit_test_setup_teardown(retrieval_step_runs_on_ocps_engine, setup_butler, teardown),
        cmocka_unit_test_setup_teardown(failing_job_reports_exit_code, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_job_keeps_the_server_job, setup, teardown),
        cmocka_unit_test_setup_teardown(prerequisites_wait_or_fail_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(injection_stays_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(server_killed_and_restarted, setup, teardown),
        cmocka_unit_test_setup_teardown(csc_killed_and_restarted, setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_server_line_is_retried, setup_small_server, teardown),
        cmocka_unit_test_setup_teardown(token_from_a_file_is_sent, setup_token_server, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
