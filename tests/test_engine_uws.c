/*
 * test_engine_uws.c - the engine's UWS executor against a real
 * ocps-engine (started for real, on loopback): submission with the argv
 * extension or a custom body, exit status, results, environment byte for
 * byte, a second step (then_argv: ocps-engine only), abort (UWS 1.1
 * extension and DELETE), prerequisites, a server that
 * is down then comes up (retry, one warning), a 4xx answer, the server
 * SIGKILLed and restarted while polled, the engine closed and reopened
 * (re-adoption by the stored id).
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <microhttpd.h>
#include <sqlite3.h>

#include "ocps/engine.h"
#include "engine_fixture.h"
#include "test_util.h"
#include "uws_fixture.h"

typedef struct fixture {
    efx x; /* the engine, on the test's loop */
    uws_fx server;
    char url[256];
} fixture;

/* The index of the job's final event, waiting up to `timeout` s. */
static int fx_wait_final(fixture *fx, const char *id, double timeout)
{
    return (int)(efx_wait_final(&fx->x, id, timeout) - fx->x.events);
}

static bool fx_saw(const fixture *fx, const char *id, engine_phase phase)
{
    return efx_find(&fx->x, id, phase) >= 0;
}

static void fx_setup_engine(fixture *fx, bool abort_extension)
{
    efx_init(&fx->x, "work", "/nonexistent/ocps-job-runner"); /* no runner for this executor */
    fx->x.publish_final = true;
    fx->x.opts.max_results = 0; /* the engine's default */
    fx->x.opts.executor = ENGINE_EXECUTOR_UWS;
    fx->x.opts.uws.url = fx->url;
    fx->x.opts.uws.abort_extension = abort_extension;
    fx->x.opts.uws.timeout = 5;
    fx->x.opts.uws.max_backoff = 0.5;
}

/* An engine on a new ocps-engine started with `extra` options (NULL: none). */
static int setup_common(void **state, bool abort_extension, const char *const *extra)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    if (uws_fx_start(&fx->server, NULL, extra) != 0) {
        return -1;
    }
    snprintf(fx->url, sizeof fx->url, "%s/api/v1", fx->server.base);
    fx_setup_engine(fx, abort_extension);
    efx_open(&fx->x);
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_common(state, true, NULL);
}

static int setup_delete(void **state)
{
    return setup_common(state, false, NULL);
}

static int teardown(void **state)
{
    fixture *fx = *state;
    efx_free(&fx->x);
    uws_fx_stop(&fx->server);
    free(fx);
    return 0;
}

/* The server's job, by its id (GET, through curl). */
static json_t *server_job(fixture *fx, const char *uws_id, int *status)
{
    char path[128];
    snprintf(path, sizeof path, "/job/%s", uws_id);
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx->server, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    *status = r.status;
    json_t *j = json_incref(r.json);
    uws_resp_clear(&r);
    return j;
}

static void test_completes_with_results_and_env(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit(
        &fx->x, id,
        (engine_job_spec){
            .argv = (const char *[]){"sh", "-c", "printf '%s' \"$X\" > \"$JOB_OUTPUT_DIR/x.txt\"", NULL},
            .env = (const char *[]){"X=${CP_PIPE_DIR} 'q' \"d\" $(touch no)", NULL}});
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
    assert_int_equal(fx->x.events[i].exit_code, 0);
    assert_true(fx_saw(fx, id, ENGINE_QUEUED));
    assert_true(fx_saw(fx, id, ENGINE_EXECUTING));
    assert_non_null(strstr(fx->x.events[i].first_result, "/out/x.txt"));
    char *text = tu_read_file(fx->x.events[i].first_result, NULL);
    assert_non_null(text);
    assert_string_equal(text, "${CP_PIPE_DIR} 'q' \"d\" $(touch no)");
    free(text);
    const engine_job *job = engine_job_get(fx->x.e, id);
    assert_non_null(job);
    assert_string_equal(job->executor_id, id); /* the PUT's Idempotency-Key: ocps-engine takes it */
    assert_string_equal(job->slurm_job_id, "");
    int status;
    json_t *remote = server_job(fx, job->executor_id, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(remote, "runId")), id); /* run_id = our id */
    json_decref(remote);
}

static void test_exit_status(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, id, "exit 3");
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ERROR);
    assert_int_equal(fx->x.events[i].exit_code, 3);
    assert_int_equal(engine_job_get(fx->x.e, id)->reason, ENGINE_REASON_PIPELINE_FAILED);
}

/* A second step (then_argv): sent to ocps-engine as its extension
 * then_argv, run there after the first in the job's output directory (its
 * file a result); refused at submit for the reference (no job). */
static void test_then_argv(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_job_spec spec = {
        .argv = (const char *[]){"sh", "-c", "echo one > \"$JOB_OUTPUT_DIR/first.txt\"", NULL},
        .then_argv = (const char *[]){"sh", "-c", "cat first.txt > second.txt", NULL}};
    if (!fx->x.opts.uws.abort_extension) {
        char err[256];
        engine_new_job_id(fx->x.e, id);
        assert_int_equal(engine_job_submit(fx->x.e, id, &spec, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "uws-api-server runs no second step"));
        assert_null(engine_job_get(fx->x.e, id));
        return;
    }
    efx_submit(&fx->x, id, spec);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
    assert_int_equal(fx->x.events[i].nresults, 2); /* the server's: first.txt, second.txt */
    char second[sizeof fx->x.events[i].first_result];
    snprintf(second, sizeof second, "%s", fx->x.events[i].first_result);
    char *slash = strrchr(second, '/');
    assert_non_null(slash);
    assert_string_equal(slash, "/first.txt");
    assert_non_null(strstr(second, "/out/first.txt"));
    snprintf(slash, sizeof second - (size_t)(slash - second), "/second.txt");
    char *text = tu_read_file(second, NULL);
    assert_non_null(text);
    assert_string_equal(text, "one\n");
    free(text);
    int status;
    json_t *remote = server_job(fx, engine_job_get(fx->x.e, id)->executor_id, &status);
    assert_int_equal(status, 200);
    json_t *then = json_object_get(json_object_get(remote, "parameters"), "then_argv");
    assert_string_equal(json_string_value(json_array_get(then, 2)), "cat first.txt > second.txt");
    json_decref(remote);
}

/* Simulation mode: the server sleeps and exits with the asked code. */
static void test_simulate(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit(&fx->x, id, (engine_job_spec){.simulate = "0.2:3"});
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ERROR);
    assert_int_equal(fx->x.events[i].exit_code, 3);
}

/* Simulation mode against the reference's API (no argv): the server is
 * sent "sleep N; exit C", never the job's real body (here a command that
 * would write a result). */
static void test_simulate_reference(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    json_t *body = json_pack("{s:s}", "command", "echo real > \"$JOB_OUTPUT_DIR/real.txt\"");
    efx_submit(&fx->x, id, (engine_job_spec){.simulate = "0.2:3", .uws_body = body});
    json_decref(body);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ERROR);
    assert_int_equal(fx->x.events[i].exit_code, 3);
    assert_int_equal(fx->x.events[i].results_total, 0);
}

/* The ended job's metrics.json is written off the loop: its directory
 * hangs (the temporary file a FIFO that nobody opens for 2 s, as a file
 * of a hung NFS mount), the loop keeps its 100 ms timer, and the job ends
 * once the write is done (here: failed, fsync of a FIFO, said in the log). */
static void test_metrics_written_off_the_loop(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->x.e, id);
    char dir[700];
    char fifo[800];
    snprintf(dir, sizeof dir, "%s/%s", fx->x.work_root, id);
    snprintf(fifo, sizeof fifo, "%s/.metrics.json.tmp", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    fflush(NULL);
    pid_t helper = fork();
    assert_true(helper >= 0);
    if (helper == 0) { /* the mount answers after 2 s */
        for (int fd = 3; fd < 1024; fd++) {
            close(fd); /* not the engine's: its store's lock */
        }
        usleep(2000000);
        int fd = open(fifo, O_RDWR);
        usleep(5000000);
        _exit(fd >= 0 ? 0 : 1);
    }
    efx_meter m;
    efx_meter_start(&fx->x, &m);
    char err[256];
    engine_job_spec spec = {.argv = (const char *[]){"sh", "-c", "printf '{}' > metrics.json", NULL}};
    assert_int_equal(engine_job_submit(fx->x.e, id, &spec, err, sizeof err), 0);
    int i = fx_wait_final(fx, id, 30);
    double max_gap_ms = efx_meter_stop(&m);
    efx_meter_close(&m);
    efx_spin(&fx->x); /* closed before m goes */
    kill(helper, SIGKILL);
    tu_wait_exit(helper, 5);
    assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
    assert_non_null(strstr(fx->x.log, "cannot keep its metrics.json"));
    if (max_gap_ms >= 500) {
        fail_msg("the loop stopped for %.0f ms while the job's directory hung", max_gap_ms);
    }
}

/* libuv's thread pool, as this test sets it (UV_THREADPOOL_SIZE, read once
 * per process: main sets it before the first use), and more jobs than that
 * whose metrics.json writes hang. */
#define POOL_THREADS 4
#define HUNG_WRITES (POOL_THREADS + 2)

/* A trivial job of the test's own on libuv's thread pool. */
typedef struct pool_probe {
    uv_work_t req;
    double queued;
    double done; /* tu_now() when back on the loop, 0 before */
} pool_probe;

static void pool_probe_work(uv_work_t *req)
{
    (void)req;
}

static void pool_probe_done(uv_work_t *req, int status)
{
    (void)status;
    pool_probe *p = req->data;
    p->done = tu_now();
}

/* Job id's directory with its metrics.json's temporary file a FIFO that
 * nobody opens: the write of its metrics.json hangs, as on a hung mount. */
#define FIFO_PATH_MAX 800

static void hang_metrics_write(fixture *fx, const char *id, char fifo[FIFO_PATH_MAX])
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/%.*s", fx->x.work_root, ENGINE_JOB_ID_LEN, id);
    snprintf(fifo, FIFO_PATH_MAX, "%s/.metrics.json.tmp", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkfifo(fifo, 0644), 0);
}

/* Ended jobs' metrics.json writes go to the thread pool one at a time:
 * with more of them hung than libuv has threads, the pool still runs the
 * rest of the process's work (here a probe of the test's own, within 1 s),
 * and every job completes once the mount answers. */
static void test_metrics_writes_leave_the_pool_free(void **state)
{
    fixture *fx = *state;
    efx_close(&fx->x);
    fx->x.opts.max_concurrent = HUNG_WRITES; /* all of them ending at once */
    efx_open(&fx->x);
    char ids[HUNG_WRITES][ENGINE_JOB_ID_LEN + 1];
    char fifos[HUNG_WRITES][FIFO_PATH_MAX];
    for (int k = 0; k < HUNG_WRITES; k++) {
        engine_new_job_id(fx->x.e, ids[k]);
        hang_metrics_write(fx, ids[k], fifos[k]);
        engine_job_spec spec = {.argv = (const char *[]){"sh", "-c", "printf '{}' > metrics.json", NULL}};
        char err[256];
        assert_int_equal(engine_job_submit(fx->x.e, ids[k], &spec, err, sizeof err), 0);
    }
    for (int k = 0; k < HUNG_WRITES; k++) {
        efx_wait_phase(&fx->x, ids[k], ENGINE_EXECUTING, 20);
    }
    efx_run_for(&fx->x, 2.0); /* the server's jobs end, their metrics are read: every write hangs */
    for (int k = 0; k < HUNG_WRITES; k++) {
        assert_int_equal(efx_final(&fx->x, ids[k]), -1);
    }
    pool_probe probe = {.queued = tu_now()};
    probe.req.data = &probe;
    assert_int_equal(uv_queue_work(&fx->x.loop, &probe.req, pool_probe_work, pool_probe_done), 0);
    while (probe.done == 0 && tu_now() < probe.queued + 1.5) {
        efx_spin(&fx->x);
    }
    int fds[HUNG_WRITES];
    for (int k = 0; k < HUNG_WRITES; k++) { /* the mount answers (O_RDWR: this open never waits) */
        fds[k] = open(fifos[k], O_RDWR | O_CLOEXEC);
        assert_true(fds[k] >= 0);
    }
    for (int k = 0; k < HUNG_WRITES; k++) {
        int i = fx_wait_final(fx, ids[k], 30);
        assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
    }
    efx_run_for(&fx->x, 0.1); /* the probe is back (it waited for the writes at worst) */
    for (int k = 0; k < HUNG_WRITES; k++) {
        close(fds[k]);
    }
    assert_true(probe.done > 0);
    if (probe.done - probe.queued >= 1.0) {
        fail_msg("a job of the thread pool waited %.1f s behind %d hung metrics.json writes",
                 probe.done - probe.queued, HUNG_WRITES);
    }
}

static void on_engine_closed(void *arg)
{
    *(bool *)arg = true;
}

/* engine_close while one metrics.json write hangs on the pool and others
 * wait for it: the close waits for that one (the engine is freed once it
 * is back), drops the others without writing, and the jobs stay as they
 * were in the store: the next engine reads their metrics again, and they
 * complete. */
static void test_close_with_metrics_writes_waiting(void **state)
{
    fixture *fx = *state;
    enum { N = 3 };
    efx_close(&fx->x);
    fx->x.opts.max_concurrent = N;
    efx_open(&fx->x);
    char ids[N][ENGINE_JOB_ID_LEN + 1];
    char fifos[N][FIFO_PATH_MAX];
    for (int k = 0; k < N; k++) {
        engine_new_job_id(fx->x.e, ids[k]);
        hang_metrics_write(fx, ids[k], fifos[k]);
        engine_job_spec spec = {.argv = (const char *[]){"sh", "-c", "printf '{}' > metrics.json", NULL}};
        char err[256];
        assert_int_equal(engine_job_submit(fx->x.e, ids[k], &spec, err, sizeof err), 0);
    }
    for (int k = 0; k < N; k++) {
        efx_wait_phase(&fx->x, ids[k], ENGINE_EXECUTING, 20);
    }
    efx_run_for(&fx->x, 2.0); /* one write hangs on the pool, the others wait */
    bool closed = false;
    engine_close(fx->x.e, on_engine_closed, &closed);
    fx->x.e = NULL;
    efx_run_for(&fx->x, 0.3);
    bool closed_while_hung = closed;
    int fds[N];
    for (int k = 0; k < N; k++) { /* the mount answers */
        fds[k] = open(fifos[k], O_RDWR | O_CLOEXEC);
        assert_true(fds[k] >= 0);
    }
    double end = tu_now() + 10;
    while (!closed && tu_now() < end) {
        efx_spin(&fx->x);
    }
    assert_false(closed_while_hung);
    assert_true(closed);
    for (int k = 0; k < N; k++) {
        assert_int_equal(efx_final(&fx->x, ids[k]), -1);
    }
    efx_open(&fx->x);
    for (int k = 0; k < N; k++) {
        int i = fx_wait_final(fx, ids[k], 30);
        assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
    }
    for (int k = 0; k < N; k++) {
        close(fds[k]);
    }
}

static void test_abort(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    char err[256];
    efx_submit_sh(&fx->x, id, "sleep 60");
    double end = tu_now() + 20;
    while (!fx_saw(fx, id, ENGINE_EXECUTING) && tu_now() < end) {
        efx_spin(&fx->x);
    }
    assert_true(fx_saw(fx, id, ENGINE_EXECUTING));
    char uws_id[64];
    snprintf(uws_id, sizeof uws_id, "%s", engine_job_get(fx->x.e, id)->executor_id);
    assert_int_equal(engine_job_abort(fx->x.e, id, err, sizeof err), 0);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ABORTED);
    int status;
    json_t *remote = server_job(fx, uws_id, &status);
    if (fx->x.opts.uws.abort_extension) {
        assert_int_equal(status, 200); /* kept, with its evidence */
        assert_string_equal(json_string_value(json_object_get(remote, "phase")), "aborted");
    } else {
        assert_int_equal(status, 404); /* DELETE: gone */
    }
    json_decref(remote);
    /* aborted before the server answered: never runs */
    char early[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, early, "sleep 60");
    assert_int_equal(engine_job_abort(fx->x.e, early, err, sizeof err), 0);
    i = fx_wait_final(fx, early, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ABORTED);
}

static void test_prerequisites(void **state)
{
    fixture *fx = *state;
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    char bad[ENGINE_JOB_ID_LEN + 1];
    char c[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, a, "sleep 0.5");
    efx_submit(
        &fx->x, b,
        (engine_job_spec){.argv = (const char *[]){"true", NULL}, .prereqs = (const char *[]){a, NULL}});
    efx_submit_sh(&fx->x, bad, "exit 1");
    efx_submit(&fx->x, c,
               (engine_job_spec){.argv = (const char *[]){"true", NULL},
                                 .prereqs = (const char *[]){bad, NULL},
                                 .prereq_must_succeed = true});
    int ia = fx_wait_final(fx, a, 30);
    int ib = fx_wait_final(fx, b, 30);
    assert_true(ia < ib);
    assert_int_equal(fx->x.events[ib].phase, ENGINE_COMPLETED);
    assert_true(fx_saw(fx, b, ENGINE_PENDING));
    int ic = fx_wait_final(fx, c, 30);
    assert_int_equal(fx->x.events[ic].phase, ENGINE_ERROR);
    assert_int_equal(engine_job_get(fx->x.e, c)->reason, ENGINE_REASON_PREREQUISITE);
    assert_string_equal(engine_job_get(fx->x.e, c)->executor_id, "");
}

/* A 4xx answer ends the job with the server's message. */
static void test_refused(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    json_t *body = json_pack("{s:i}", "command", 42);
    efx_submit(&fx->x, id, (engine_job_spec){.argv = (const char *[]){"true", NULL}, .uws_body = body});
    json_decref(body);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ERROR);
    const engine_job *job = engine_job_get(fx->x.e, id);
    assert_int_equal(job->reason, ENGINE_REASON_INFRASTRUCTURE);
    assert_non_null(strstr(job->message, "HTTP 400"));
    assert_non_null(strstr(job->message, "'command' must be a string"));
}

/* Has the server logged a request line holding `what`? Waits up to 5 s
 * (it writes its log in batches). */
static bool server_logged(fixture *fx, const char *what)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/engine.log", fx->server.root);
    double end = tu_now() + 5;
    do {
        char *log = tu_read_file(path, NULL);
        bool found = log != NULL && strstr(log, what) != NULL;
        free(log);
        if (found) {
            return true;
        }
        efx_spin(&fx->x);
    } while (tu_now() < end);
    return false;
}

/* A server that runs one job and lets one wait (--max-concurrent 1
 * --max-waiting 1), the extension on. */
static int setup_full(void **state)
{
    const char *const extra[] = {"--max-concurrent", "1", "--max-waiting", "1", NULL};
    return setup_common(state, true, extra);
}

/* A job aborted while the server refuses it for a full line (503) ends
 * at once, never created there: the abort is not left waiting for the
 * server to take the job. The abort comes while its first PUT is in
 * flight (sent by the submit itself). */
static void test_abort_while_refused(void **state)
{
    fixture *fx = *state;
    char err[256];
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, a, "sleep 60");
    efx_submit_sh(&fx->x, b, "sleep 60");
    double end = tu_now() + 20;
    while (!(fx_saw(fx, a, ENGINE_EXECUTING) && fx_saw(fx, b, ENGINE_EXECUTING)) && tu_now() < end) {
        efx_spin(&fx->x);
    }
    assert_true(fx_saw(fx, b, ENGINE_EXECUTING)); /* the server runs a, b waits there */
    char c[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, c, "sleep 60");
    assert_int_equal(engine_job_abort(fx->x.e, c, err, sizeof err), 0);
    int i = fx_wait_final(fx, c, 10);
    assert_true(i >= 0);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ABORTED);
    assert_string_equal(engine_job_get(fx->x.e, c)->message, "aborted before it was submitted");
    assert_string_equal(engine_job_get(fx->x.e, c)->executor_id, "");
    assert_true(server_logged(fx, " PUT /api/v1/job 503 ")); /* it was refused */
    assert_int_equal(uws_fx_count(&fx->server), 2);
}

/* A server with the reference's answers where its DELETE keeps failing
 * (it deletes the Kubernetes Job, then its rm -rf of the job's files fails:
 * HTTP 500 every time): one job, "executing" until it has refused two
 * DELETEs, "completed" after. The reference itself needs Kubernetes. */
typedef struct failing_delete {
    struct MHD_Daemon *d;
    bool refuse_put; /* PUT: 400 with a long message in UTF-8 instead */
    bool fail_put;   /* PUT: 500 as the reference's when it cannot make the job; GET /job: [] */
    /* GET of the job: this many answers 200 with an HTML page (a proxy's
     * login page) first, then the job failed with jobInfo.reason
     * infrastructure, as ocps-engine reports a job it could not start */
    atomic_int html_polls;
    bool html_mode;
    atomic_int puts;
    atomic_int deletes;
    atomic_int polls_after_delete;
    /* an ocps-engine from before the then_argv extension: its job object
     * (completed) has parameters without it; the engine uses the
     * extensions (abort, then_argv) */
    bool old_engine;
} failing_delete;

static enum MHD_Result failing_delete_answer(void *cls, struct MHD_Connection *c, const char *url,
                                             const char *method, const char *version, const char *upload,
                                             size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    failing_delete *f = cls;
    if (*con_cls == NULL) {
        *con_cls = f;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0; /* the PUT's body: any */
        return MHD_YES;
    }
    char body[512];
    unsigned status = 200;
    if (strcmp(method, "PUT") == 0) {
        atomic_fetch_add(&f->puts, 1);
    }
    if (f->fail_put && strcmp(method, "PUT") == 0) {
        status = 500;
        snprintf(body, sizeof body, "while scanning a double-quoted scalar: unacceptable character #x0090");
    } else if (f->fail_put && strcmp(method, "GET") == 0 && strcmp(url, "/api/v1/job") == 0) {
        snprintf(body, sizeof body, "[]"); /* the lookup: not made */
    } else if (f->refuse_put && strcmp(method, "PUT") == 0) {
        /* 399 ASCII bytes, then two-byte characters: byte 400 is inside one */
        status = 400;
        memset(body, 'x', 399);
        for (size_t i = 399; i + 2 < sizeof body; i += 2) {
            memcpy(body + i, "\xc3\xa9", 2);
            body[i + 2] = '\0';
        }
    } else if (strcmp(method, "DELETE") == 0) {
        atomic_fetch_add(&f->deletes, 1);
        status = 500;
        snprintf(body, sizeof body, "{\"status\": \"error\", \"message\": \"rmtree failed\", \"code\": 500}");
    } else if (f->old_engine && strcmp(method, "GET") == 0 && strcmp(url, "/api/v1/job/fake1") == 0) {
        snprintf(body, sizeof body,
                 "{\"jobId\": \"fake1\", \"phase\": \"completed\", \"results\": [], \"parameters\": "
                 "{\"command\": [\"true\"], \"environment\": []}, \"jobInfo\": {\"exitCode\": 0}}");
    } else if (f->html_mode && strcmp(method, "GET") == 0 && strcmp(url, "/api/v1/job/fake1") == 0) {
        if (atomic_fetch_sub(&f->html_polls, 1) > 0) {
            snprintf(body, sizeof body, "<html><body>Sign in</body></html>");
        } else {
            snprintf(body, sizeof body,
                     "{\"jobId\": \"fake1\", \"phase\": \"error\", \"results\": [], \"errorSummary\": "
                     "{\"message\": \"cannot make the job's directory\"}, \"jobInfo\": {\"exitCode\": -1, "
                     "\"reason\": \"infrastructure\"}}");
        }
    } else if (strcmp(method, "GET") == 0 && strcmp(url, "/api/v1/job/fake1") == 0) {
        int deletes = atomic_load(&f->deletes);
        if (deletes > 0) {
            atomic_fetch_add(&f->polls_after_delete, 1);
        }
        snprintf(body, sizeof body, "{\"jobId\": \"fake1\", \"phase\": \"%s\", \"results\": []}",
                 deletes >= 2 ? "completed" : "executing");
    } else if (strcmp(method, "PUT") == 0 && strcmp(url, "/api/v1/job") == 0) {
        snprintf(body, sizeof body, "{\"jobId\": \"fake1\", \"phase\": \"pending\"}");
    } else {
        status = 404;
        snprintf(body, sizeof body, "{}");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* Start f's server on a free port and an engine (DELETE to abort, as with
 * the reference) that uses it. */
static fixture *fake_server_engine(failing_delete *f)
{
    unsigned port = tu_free_port();
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL,
                            failing_delete_answer, f, MHD_OPTION_END);
    assert_non_null(f->d);
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:%u/api/v1", port);
    fx_setup_engine(fx, f->old_engine);
    fx->x.opts.uws.max_backoff = 0.2;
    efx_open(&fx->x);
    return fx;
}

static void fake_server_engine_free(failing_delete *f, fixture *fx)
{
    efx_free(&fx->x);
    free(fx);
    MHD_stop_daemon(f->d);
}

/* A second step sent to an ocps-engine older than then_argv, which drops
 * the key: its job completes having run only the first step. The job
 * fails, saying so, rather than complete without its retrieval. */
static void test_then_argv_ignored_by_old_engine(void **state)
{
    (void)state;
    failing_delete f = {.old_engine = true};
    fixture *fx = fake_server_engine(&f);
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_job_spec spec = {.argv = (const char *[]){"true", NULL},
                            .then_argv = (const char *[]){"butler", "retrieve-artifacts", NULL}};
    efx_submit(&fx->x, id, spec);
    int i = fx_wait_final(fx, id, 30);
    const engine_job *job = engine_job_get(fx->x.e, id);
    print_message("%s: %s\n", engine_phase_name(fx->x.events[i].phase), job->message);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ERROR);
    assert_int_equal(job->reason, ENGINE_REASON_INFRASTRUCTURE);
    assert_non_null(strstr(job->message, "the UWS server ran no step 2: it ignored then_argv"));
    /* the same server's job without a second step completes */
    efx_submit_sh(&fx->x, id, "true");
    i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
    fake_server_engine_free(&f, fx);
}

/* An abort the server keeps failing does not stop the polls: the job
 * still ends when it ends on the server. */
static void test_abort_failing_keeps_polling(void **state)
{
    (void)state;
    failing_delete f = {0};
    fixture *fx = fake_server_engine(&f);
    char id[ENGINE_JOB_ID_LEN + 1];
    char err[256];
    efx_submit_sh(&fx->x, id, "sleep 60");
    efx_wait_phase(&fx->x, id, ENGINE_EXECUTING, 20);
    assert_int_equal(engine_job_abort(fx->x.e, id, err, sizeof err), 0);
    int i = fx_wait_final(fx, id, 20);
    assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED); /* as the server says */
    assert_true(atomic_load(&f.deletes) >= 2);
    assert_true(atomic_load(&f.polls_after_delete) >= 1);
    fake_server_engine_free(&f, fx);
}

/* How many times `what` occurs in `text`. */
static int count_in(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = strstr(text, what); p != NULL; p = strstr(p + 1, what)) {
        n++;
    }
    return n;
}

/* A poll answered 200 with no job object (an HTML page of a proxy) is a
 * failed request: one warning, polled again with backoff, not taken as a
 * job still running; the job's failure then keeps ocps-engine's reason
 * (infrastructure), not "pipeline_failed". */
static void test_poll_without_job_object_warns(void **state)
{
    (void)state;
    failing_delete f = {.html_mode = true};
    atomic_store(&f.html_polls, 3);
    fixture *fx = fake_server_engine(&f);
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, id, "true");
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ERROR);
    const engine_job *job = engine_job_get(fx->x.e, id);
    assert_int_equal(job->reason, ENGINE_REASON_INFRASTRUCTURE);
    assert_string_equal(job->message, "cannot make the job's directory");
    print_message("%s", fx->x.log);
    assert_non_null(strstr(fx->x.log, "GET /job/{id} (no job object) answered HTTP 200: <html>"));
    assert_int_equal(count_in(fx->x.log, "retrying with backoff"), 1);
    assert_int_equal(count_in(fx->x.log, "answers again"), 1);
    fake_server_engine_free(&f, fx);
}

/* A PUT the server's application fails (500, and the lookup that
 * follows finds no job) is sent again with a growing backoff that the
 * lookup's answer does not reset, with one warning, and at most 5 times:
 * the job then fails with the server's answer, instead of holding a slot
 * and sending a PUT and a listing every poll interval for ever. */
static void test_put_failing_500_gives_up(void **state)
{
    (void)state;
    failing_delete f = {.fail_put = true};
    fixture *fx = fake_server_engine(&f);
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, id, "true");
    assert_true(fx_wait_final(fx, id, 30) >= 0);
    const engine_job *job = engine_job_get(fx->x.e, id);
    print_message("%s\n", job->message);
    assert_int_equal(job->phase, ENGINE_ERROR);
    assert_int_equal(job->reason, ENGINE_REASON_INFRASTRUCTURE);
    assert_non_null(strstr(job->message, "failed the job's PUT /job 5 times"));
    assert_non_null(strstr(job->message, "HTTP 500: while scanning a double-quoted scalar"));
    assert_int_equal(atomic_load(&f.puts), 5);
    assert_int_equal(count_in(fx->x.log, "retrying with backoff"), 1);
    assert_null(strstr(fx->x.log, "answers again"));
    fake_server_engine_free(&f, fx);
}

/* A long 4xx answer ends the job with the start of it as its message,
 * still valid UTF-8 (a JSON string) where the cut falls inside a
 * character. */
static void test_refused_message_stays_utf8(void **state)
{
    (void)state;
    failing_delete f = {.refuse_put = true};
    fixture *fx = fake_server_engine(&f);
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, id, "true");
    int i = fx_wait_final(fx, id, 20);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ERROR);
    const char *message = engine_job_get(fx->x.e, id)->message;
    assert_non_null(strstr(message, "(HTTP 400): xxxxxxxx"));
    json_t *as_json = json_string(message); /* NULL if not valid UTF-8 */
    assert_non_null(as_json);
    json_decref(as_json);
    assert_int_equal(message[strlen(message) - 1], 'x'); /* cut before the split character */
    fake_server_engine_free(&f, fx);
}

/* A custom body (the reference server's command + environment). */
static void test_custom_body(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    json_t *body = json_pack("{s:s, s:[{s:s, s:s}]}", "command", "test \"$IMAGE_TAG\" = w_2025_01",
                             "environment", "name", "IMAGE_TAG", "value", "w_2025_01");
    efx_submit(&fx->x, id, (engine_job_spec){.argv = (const char *[]){"false", NULL}, .uws_body = body});
    json_decref(body);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
}

/* The server SIGKILLed and restarted while its job is polled: the job's
 * end is still reported, once. */
static void test_server_killed_while_polled(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, id, "sleep 1.5");
    double end = tu_now() + 20;
    while (!fx_saw(fx, id, ENGINE_EXECUTING) && tu_now() < end) {
        efx_spin(&fx->x);
    }
    uws_fx_kill(&fx->server);
    efx_run_for(&fx->x, 1.0);
    assert_int_equal(efx_final(&fx->x, id), -1);
    assert_non_null(strstr(fx->x.log, "retrying with backoff"));
    /* same port again */
    char port[16];
    snprintf(port, sizeof port, "%u", fx->server.port);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", fx->server.port);
    const char *const extra[] = {"--listen", listen, NULL};
    assert_int_equal(uws_fx_restart(&fx->server, extra), 0);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
    efx_run_for(&fx->x, 0.3);
    assert_int_equal(efx_count_final(&fx->x, id), 1);
    assert_non_null(strstr(fx->x.log, "answers again"));
    /* one warning for the whole outage */
    const char *w = strstr(fx->x.log, "retrying with backoff");
    assert_null(strstr(w + 1, "retrying with backoff"));
}

/* Closed and reopened on the same store while the job runs remotely;
 * `rewind`, if not NULL, changes the stored job in between (the store's
 * path, the job's id). The job is polled again by its stored id and ends
 * once, COMPLETED, with one job on the server. */
static void fx_reopen_while_running(fixture *fx, void (*rewind)(const char *store, const char *id))
{
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, id, "sleep 1");
    double end = tu_now() + 20;
    while (!fx_saw(fx, id, ENGINE_EXECUTING) && tu_now() < end) {
        efx_spin(&fx->x);
    }
    char uws_id[64];
    snprintf(uws_id, sizeof uws_id, "%s", engine_job_get(fx->x.e, id)->executor_id);
    assert_true(uws_id[0] != '\0');
    efx_close(&fx->x);
    if (rewind != NULL) {
        rewind(fx->x.store, id);
    }
    efx_clear_events(&fx->x);
    efx_open(&fx->x);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
    assert_string_equal(engine_job_get(fx->x.e, id)->executor_id, uws_id);
    efx_run_for(&fx->x, 0.3);
    assert_int_equal(efx_count_final(&fx->x, id), 1);
    assert_int_equal(uws_fx_count(&fx->server), 1); /* not submitted twice */
}

/* An abort asked while the server is down, then the engine closed before
 * the server came back: the reopened engine (same store) asks it again,
 * and the job ends ABORTED instead of running on. */
static void test_abort_kept_across_reopen(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    char err[256];
    efx_submit_sh(&fx->x, id, "sleep 60");
    efx_wait_phase(&fx->x, id, ENGINE_EXECUTING, 20);
    uws_fx_kill(&fx->server); /* its job's runner lives on: re-adopted by the next server */
    assert_int_equal(engine_job_abort(fx->x.e, id, err, sizeof err), 0);
    efx_run_for(&fx->x, 0.5);
    assert_int_equal(efx_final(&fx->x, id), -1); /* not taken: the server is down */
    efx_close(&fx->x);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", fx->server.port);
    const char *const extra[] = {"--listen", listen, NULL};
    assert_int_equal(uws_fx_restart(&fx->server, extra), 0);
    efx_clear_events(&fx->x);
    efx_open(&fx->x);
    int i = fx_wait_final(fx, id, 20); /* well before the job's 60 s */
    assert_int_equal(fx->x.events[i].phase, ENGINE_ABORTED);
    efx_run_for(&fx->x, 0.3);
    assert_int_equal(efx_count_final(&fx->x, id), 1);
}

/* After a restart, a job still waiting for a slot (max 1, held by a
 * long job) is aborted: it is looked up at once (it may have been sent
 * before the restart) and ends, instead of waiting for the slot. */
static void test_abort_queued_after_reopen(void **state)
{
    fixture *fx = *state;
    char err[256];
    engine_set_max_concurrent(fx->x.e, 1);
    char busy[ENGINE_JOB_ID_LEN + 1];
    char waiting[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, busy, "sleep 60");
    efx_wait_phase(&fx->x, busy, ENGINE_EXECUTING, 20);
    efx_submit_sh(&fx->x, waiting, "sleep 60");
    efx_run_for(&fx->x, 0.3);
    assert_int_equal(engine_job_get(fx->x.e, waiting)->phase, ENGINE_QUEUED);
    efx_close(&fx->x);
    efx_clear_events(&fx->x);
    fx->x.opts.max_concurrent = 1;
    efx_open(&fx->x);
    efx_run_for(&fx->x, 0.3);
    assert_int_equal(engine_job_abort(fx->x.e, waiting, err, sizeof err), 0);
    int i = fx_wait_final(fx, waiting, 10); /* well before the busy job's 60 s */
    assert_int_equal(fx->x.events[i].phase, ENGINE_ABORTED);
    assert_int_equal(engine_job_get(fx->x.e, busy)->phase, ENGINE_EXECUTING);
    assert_int_equal(engine_job_abort(fx->x.e, busy, err, sizeof err), 0);
    fx_wait_final(fx, busy, 20);
}

/* A store whose unfinished job runs on this UWS server: an engine with
 * another executor (local) or another server does not open on it (the
 * job would be run again, or reported lost while it runs on), saying
 * why; the same executor and server adopt the job again. */
static void test_other_executor_refused_while_jobs_live(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    char err[512];
    efx_submit_sh(&fx->x, id, "sleep 2");
    efx_wait_phase(&fx->x, id, ENGINE_EXECUTING, 20);
    efx_close(&fx->x);
    engine *e = NULL;
    engine_options local = fx->x.opts;
    local.executor = ENGINE_EXECUTOR_LOCAL;
    assert_int_equal(engine_open(&e, &fx->x.loop, &local, NULL, NULL, err, sizeof err), -1);
    uv_run(&fx->x.loop, UV_RUN_DEFAULT); /* the refused engine's handles closed */
    print_message("%s\n", err);
    assert_non_null(strstr(err, "1 unfinished job of another executor (uws http://"));
    assert_non_null(strstr(err, "this one is local"));
    engine_options other = fx->x.opts;
    other.uws.url = "http://127.0.0.1:9/api/v1";
    assert_int_equal(engine_open(&e, &fx->x.loop, &other, NULL, NULL, err, sizeof err), -1);
    uv_run(&fx->x.loop, UV_RUN_DEFAULT);
    assert_non_null(strstr(err, "this one is uws http://127.0.0.1:9/api/v1"));
    efx_clear_events(&fx->x);
    efx_open(&fx->x);
    int i = fx_wait_final(fx, id, 20);
    assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
    assert_int_equal(efx_count_final(&fx->x, id), 1);
    /* no job live: another executor may take the store */
    efx_close(&fx->x);
    assert_int_equal(engine_open(&e, &fx->x.loop, &local, NULL, NULL, err, sizeof err), 0);
    engine_close(e, NULL, NULL);
    uv_run(&fx->x.loop, UV_RUN_DEFAULT);
}

/* Whether a connection to the server's port (127.0.0.1) is established
 * with bytes waiting to be read (a request the stopped server has not
 * read: it waits in its accept queue). */
static bool request_waits_at(unsigned port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (f == NULL) {
        return false;
    }
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        unsigned local_port = 0, st = 0;
        unsigned long tx = 0, rx = 0;
        if (sscanf(line, " %*d: %*8X:%X %*8X:%*X %X %lX:%lX", &local_port, &st, &tx, &rx) == 4) {
            found = local_port == port && st == 1 && rx > 0;
        }
    }
    fclose(f);
    return found;
}

/* An abort while the server holds the PUT (stopped), then the engine
 * closed: the server takes that PUT when it wakes; the reopened engine
 * looks the job up (by run_id) before deciding, and aborts it there,
 * instead of ending it at home and leaving the server's job running. */
static void test_abort_during_put_kept_across_reopen(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    char err[256];
    assert_int_equal(kill(fx->server.pid, SIGSTOP), 0);
    efx_submit_sh(&fx->x, id, "sleep 60");
    for (double end = tu_now() + 10; !request_waits_at(fx->server.port) && tu_now() < end;) {
        efx_run_for(&fx->x, 0.05); /* until its PUT waits for the stopped server */
    }
    assert_true(request_waits_at(fx->server.port));
    assert_int_equal(engine_job_abort(fx->x.e, id, err, sizeof err), 0);
    efx_run_for(&fx->x, 0.2);
    assert_int_equal(efx_final(&fx->x, id), -1); /* the PUT's answer decides */
    efx_close(&fx->x);
    assert_int_equal(kill(fx->server.pid, SIGCONT), 0);
    int status = 0;
    json_t *job = NULL;
    for (double end = tu_now() + 10; status != 200 && tu_now() < end;) {
        json_decref(job);
        job = server_job(fx, id, &status); /* the key made our id the server's */
        if (status != 200) {
            usleep(100000);
        }
    }
    assert_int_equal(status, 200); /* the server took the held PUT */
    json_decref(job);
    efx_clear_events(&fx->x);
    efx_open(&fx->x);
    int i = fx_wait_final(fx, id, 20);
    assert_int_equal(fx->x.events[i].phase, ENGINE_ABORTED);
    job = server_job(fx, id, &status);
    if (status == 200) { /* the abort extension keeps it */
        const char *phase = json_string_value(json_object_get(job, "phase"));
        for (double end = tu_now() + 10; strcmp(phase, "aborted") != 0 && tu_now() < end;) {
            json_decref(job);
            usleep(100000);
            job = server_job(fx, id, &status);
            phase = json_string_value(json_object_get(job, "phase"));
        }
        assert_string_equal(phase, "aborted");
    } else {
        assert_int_equal(status, 404); /* DELETE */
    }
    json_decref(job);
}

static void test_reopen_readopts(void **state)
{
    fx_reopen_while_running(*state, NULL);
}

/* The store as an engine stopped between storing the server's job id and
 * the EXECUTING phase leaves it: QUEUED, not started, with the id. */
static void rewind_to_queued(const char *store, const char *id)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(store, &db), SQLITE_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE jobs SET phase = 'queued', started = 0 WHERE id = '%s'", id);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
}

/* Killed between the two writes: at the next start the job is the
 * server's, followed by its id and never submitted again. */
static void test_reopen_between_id_and_phase(void **state)
{
    fx_reopen_while_running(*state, rewind_to_queued);
}

/* No server yet: the job waits (QUEUED, holding its slot) and is sent
 * once the server is up; one warning. */
static void test_server_down_at_submit(void **state)
{
    (void)state;
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    unsigned port = tu_free_port();
    snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:%u/api/v1", port);
    fx_setup_engine(fx, true);
    efx_open(&fx->x);
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(&fx->x, id, "exit 0");
    efx_run_for(&fx->x, 1.0);
    assert_int_equal(efx_final(&fx->x, id), -1);
    assert_int_equal(engine_job_get(fx->x.e, id)->phase, ENGINE_QUEUED);
    assert_non_null(strstr(fx->x.log, "retrying with backoff"));
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    const char *const extra[] = {"--listen", listen, NULL};
    assert_int_equal(uws_fx_start(&fx->server, NULL, extra), 0);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->x.events[i].phase, ENGINE_COMPLETED);
    const char *w = strstr(fx->x.log, "retrying with backoff");
    assert_null(strstr(w + 1, "retrying with backoff"));
    assert_int_equal(uws_fx_count(&fx->server), 1);
    void *st = fx;
    teardown(&st);
}

int main(void)
{
    char threads[16];
    snprintf(threads, sizeof threads, "%d", POOL_THREADS);
    setenv("UV_THREADPOOL_SIZE", threads, 1); /* before libuv's pool starts */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_completes_with_results_and_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_then_argv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_then_argv, setup_delete, teardown),
        cmocka_unit_test(test_then_argv_ignored_by_old_engine),
        cmocka_unit_test_setup_teardown(test_simulate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simulate_reference, setup_delete, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_written_off_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_writes_leave_the_pool_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_metrics_writes_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup_delete, teardown),
        cmocka_unit_test_setup_teardown(test_abort_kept_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_queued_after_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_executor_refused_while_jobs_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_kept_across_reopen, setup_delete, teardown),
        cmocka_unit_test_setup_teardown(test_abort_during_put_kept_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_during_put_kept_across_reopen, setup_delete, teardown),
        cmocka_unit_test_setup_teardown(test_prerequisites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_while_refused, setup_full, teardown),
        cmocka_unit_test(test_abort_failing_keeps_polling),
        cmocka_unit_test(test_refused_message_stays_utf8),
        cmocka_unit_test(test_put_failing_500_gives_up),
        cmocka_unit_test(test_poll_without_job_object_warns),
        cmocka_unit_test_setup_teardown(test_custom_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_killed_while_polled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_readopts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_between_id_and_phase, setup, teardown),
        cmocka_unit_test(test_server_down_at_submit),
    };
    return cmocka_run_group_tests_name("engine_uws", tests, NULL, NULL);
}
