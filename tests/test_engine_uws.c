/*
 * test_engine_uws.c - the engine's UWS executor against a real
 * ocps-engine (started for real, on loopback): submission with the argv
 * extension or a custom body, exit status, results, environment byte for
 * byte, abort (UWS 1.1 extension and DELETE), prerequisites, a server that
 * is down then comes up (retry, one warning), a 4xx answer, the server
 * SIGKILLed and restarted while polled, the engine closed and reopened
 * (re-adoption by the stored id).
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps/engine.h"
#include "test_util.h"
#include "uws_fixture.h"

#define MAX_NOTES 256

typedef struct fixture {
    uws_fx server;
    char *dir;
    char work_root[600];
    char store[600];
    char url[256];
    uv_loop_t loop;
    engine *e;
    engine_options opts;
    char ids[MAX_NOTES][ENGINE_JOB_ID_LEN + 1];
    engine_phase phases[MAX_NOTES];
    int exit_codes[MAX_NOTES];
    char results[MAX_NOTES][512];
    int n;
    char log[8192];
} fixture;

static void on_job(void *arg, const engine_job *job)
{
    fixture *fx = arg;
    assert_true(fx->n < MAX_NOTES);
    snprintf(fx->ids[fx->n], sizeof fx->ids[0], "%s", job->id);
    fx->phases[fx->n] = job->phase;
    fx->exit_codes[fx->n] = job->exit_code;
    const char *first = json_string_value(json_array_get(job->results, 0));
    snprintf(fx->results[fx->n], sizeof fx->results[0], "%s", first != NULL ? first : "");
    fx->n++;
    if (engine_phase_final(job->phase)) {
        assert_int_equal(engine_job_mark_published(fx->e, job->id), 0);
    }
}

static void on_log(void *arg, int level, const char *message)
{
    fixture *fx = arg;
    size_t n = strlen(fx->log);
    snprintf(fx->log + n, sizeof fx->log - n, "%d %s\n", level, message);
}

static void fx_open(fixture *fx)
{
    char err[512];
    if (engine_open(&fx->e, &fx->loop, &fx->opts, on_job, fx, err, sizeof err) != 0) {
        fail_msg("engine_open: %s", err);
    }
}

static void fx_close(fixture *fx)
{
    if (fx->e != NULL) {
        engine_close(fx->e, NULL, NULL);
        fx->e = NULL;
        uv_run(&fx->loop, UV_RUN_DEFAULT);
    }
}

static void fx_spin(fixture *fx)
{
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void fx_run_for(fixture *fx, double seconds)
{
    double end = tu_now() + seconds;
    while (tu_now() < end) {
        fx_spin(fx);
    }
}

/* The index of the job's final notification, or -1. */
static int fx_final(const fixture *fx, const char *id)
{
    for (int i = 0; i < fx->n; i++) {
        if (strcmp(fx->ids[i], id) == 0 && engine_phase_final(fx->phases[i])) {
            return i;
        }
    }
    return -1;
}

static int fx_count_final(const fixture *fx, const char *id)
{
    int k = 0;
    for (int i = 0; i < fx->n; i++) {
        k += strcmp(fx->ids[i], id) == 0 && engine_phase_final(fx->phases[i]);
    }
    return k;
}

static int fx_wait_final(fixture *fx, const char *id, double timeout)
{
    double end = tu_now() + timeout;
    int i;
    while ((i = fx_final(fx, id)) < 0) {
        if (tu_now() > end) {
            fail_msg("job %s did not end within %.1f s; log:\n%s", id, timeout, fx->log);
        }
        fx_spin(fx);
    }
    return i;
}

static bool fx_saw(const fixture *fx, const char *id, engine_phase phase)
{
    for (int i = 0; i < fx->n; i++) {
        if (strcmp(fx->ids[i], id) == 0 && fx->phases[i] == phase) {
            return true;
        }
    }
    return false;
}

static void fx_submit(fixture *fx, char id[ENGINE_JOB_ID_LEN + 1], engine_job_spec spec)
{
    char err[512];
    engine_new_job_id(fx->e, id);
    int rc = engine_job_submit(fx->e, id, &spec, err, sizeof err);
    if (rc != 0) {
        fail_msg("engine_job_submit: %d %s", rc, err);
    }
}

static void fx_submit_sh(fixture *fx, char id[ENGINE_JOB_ID_LEN + 1], const char *script)
{
    fx_submit(fx, id, (engine_job_spec){.argv = (const char *[]){"sh", "-c", script, NULL}});
}

static void fx_setup_engine(fixture *fx, bool abort_extension)
{
    fx->dir = tu_make_temp_dir();
    assert_non_null(fx->dir);
    snprintf(fx->work_root, sizeof fx->work_root, "%s/work", fx->dir);
    snprintf(fx->store, sizeof fx->store, "%s/jobs.sqlite", fx->dir);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->opts.work_root = fx->work_root;
    fx->opts.store_path = fx->store;
    fx->opts.runner = "/nonexistent/ocps-job-runner"; /* never used by this executor */
    fx->opts.max_concurrent = 4;
    fx->opts.abort_grace = 1.0;
    fx->opts.poll_interval = 0.05;
    fx->opts.log = on_log;
    fx->opts.log_arg = fx;
    fx->opts.executor = ENGINE_EXECUTOR_UWS;
    fx->opts.uws.url = fx->url;
    fx->opts.uws.abort_extension = abort_extension;
    fx->opts.uws.timeout = 5;
    fx->opts.uws.max_backoff = 0.5;
}

static int setup_common(void **state, bool abort_extension)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    if (uws_fx_start(&fx->server, NULL, NULL) != 0) {
        return -1;
    }
    snprintf(fx->url, sizeof fx->url, "%s/api/v1", fx->server.base);
    fx_setup_engine(fx, abort_extension);
    fx_open(fx);
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_common(state, true);
}

static int setup_delete(void **state)
{
    return setup_common(state, false);
}

static int teardown(void **state)
{
    fixture *fx = *state;
    fx_close(fx);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    uws_fx_stop(&fx->server);
    tu_remove_tree(fx->dir);
    free(fx->dir);
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
    fx_submit(
        fx, id,
        (engine_job_spec){
            .argv = (const char *[]){"sh", "-c", "printf '%s' \"$X\" > \"$JOB_OUTPUT_DIR/x.txt\"", NULL},
            .env = (const char *[]){"X=${CP_PIPE_DIR} 'q' \"d\" $(touch no)", NULL}});
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->phases[i], ENGINE_COMPLETED);
    assert_int_equal(fx->exit_codes[i], 0);
    assert_true(fx_saw(fx, id, ENGINE_QUEUED));
    assert_true(fx_saw(fx, id, ENGINE_EXECUTING));
    assert_non_null(strstr(fx->results[i], "/out/x.txt"));
    char *text = tu_read_file(fx->results[i], NULL);
    assert_non_null(text);
    assert_string_equal(text, "${CP_PIPE_DIR} 'q' \"d\" $(touch no)");
    free(text);
    const engine_job *job = engine_job_get(fx->e, id);
    assert_non_null(job);
    assert_int_equal(strlen(job->executor_id), 32);
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
    fx_submit_sh(fx, id, "exit 3");
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->phases[i], ENGINE_ERROR);
    assert_int_equal(fx->exit_codes[i], 3);
    assert_int_equal(engine_job_get(fx->e, id)->reason, ENGINE_REASON_PIPELINE_FAILED);
}

/* Simulation mode: the server sleeps and exits with the asked code. */
static void test_simulate(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit(fx, id, (engine_job_spec){.simulate = "0.2:3"});
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->phases[i], ENGINE_ERROR);
    assert_int_equal(fx->exit_codes[i], 3);
}

static void test_abort(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    char err[256];
    fx_submit_sh(fx, id, "sleep 60");
    double end = tu_now() + 20;
    while (!fx_saw(fx, id, ENGINE_EXECUTING) && tu_now() < end) {
        fx_spin(fx);
    }
    assert_true(fx_saw(fx, id, ENGINE_EXECUTING));
    char uws_id[64];
    snprintf(uws_id, sizeof uws_id, "%s", engine_job_get(fx->e, id)->executor_id);
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->phases[i], ENGINE_ABORTED);
    int status;
    json_t *remote = server_job(fx, uws_id, &status);
    if (fx->opts.uws.abort_extension) {
        assert_int_equal(status, 200); /* kept, with its evidence */
        assert_string_equal(json_string_value(json_object_get(remote, "phase")), "aborted");
    } else {
        assert_int_equal(status, 404); /* DELETE: gone */
    }
    json_decref(remote);
    /* aborted before the server answered: never runs */
    char early[ENGINE_JOB_ID_LEN + 1];
    fx_submit_sh(fx, early, "sleep 60");
    assert_int_equal(engine_job_abort(fx->e, early, err, sizeof err), 0);
    i = fx_wait_final(fx, early, 30);
    assert_int_equal(fx->phases[i], ENGINE_ABORTED);
}

static void test_prerequisites(void **state)
{
    fixture *fx = *state;
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    char bad[ENGINE_JOB_ID_LEN + 1];
    char c[ENGINE_JOB_ID_LEN + 1];
    fx_submit_sh(fx, a, "sleep 0.5");
    fx_submit(
        fx, b,
        (engine_job_spec){.argv = (const char *[]){"true", NULL}, .prereqs = (const char *[]){a, NULL}});
    fx_submit_sh(fx, bad, "exit 1");
    fx_submit(fx, c,
              (engine_job_spec){.argv = (const char *[]){"true", NULL},
                                .prereqs = (const char *[]){bad, NULL},
                                .prereq_must_succeed = true});
    int ia = fx_wait_final(fx, a, 30);
    int ib = fx_wait_final(fx, b, 30);
    assert_true(ia < ib);
    assert_int_equal(fx->phases[ib], ENGINE_COMPLETED);
    assert_true(fx_saw(fx, b, ENGINE_PENDING));
    int ic = fx_wait_final(fx, c, 30);
    assert_int_equal(fx->phases[ic], ENGINE_ERROR);
    assert_int_equal(engine_job_get(fx->e, c)->reason, ENGINE_REASON_PREREQUISITE);
    assert_string_equal(engine_job_get(fx->e, c)->executor_id, "");
}

/* A 4xx answer ends the job with the server's message. */
static void test_refused(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    json_t *body = json_pack("{s:i}", "command", 42);
    fx_submit(fx, id, (engine_job_spec){.argv = (const char *[]){"true", NULL}, .uws_body = body});
    json_decref(body);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->phases[i], ENGINE_ERROR);
    const engine_job *job = engine_job_get(fx->e, id);
    assert_int_equal(job->reason, ENGINE_REASON_INFRASTRUCTURE);
    assert_non_null(strstr(job->message, "HTTP 400"));
    assert_non_null(strstr(job->message, "'command' must be a string"));
}

/* A custom body (the reference server's command + environment). */
static void test_custom_body(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    json_t *body = json_pack("{s:s, s:[{s:s, s:s}]}", "command", "test \"$IMAGE_TAG\" = w_2025_01",
                             "environment", "name", "IMAGE_TAG", "value", "w_2025_01");
    fx_submit(fx, id, (engine_job_spec){.argv = (const char *[]){"false", NULL}, .uws_body = body});
    json_decref(body);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->phases[i], ENGINE_COMPLETED);
}

/* The server SIGKILLed and restarted while its job is polled: the job's
 * end is still reported, once. */
static void test_server_killed_while_polled(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit_sh(fx, id, "sleep 1.5");
    double end = tu_now() + 20;
    while (!fx_saw(fx, id, ENGINE_EXECUTING) && tu_now() < end) {
        fx_spin(fx);
    }
    uws_fx_kill(&fx->server);
    fx_run_for(fx, 1.0);
    assert_int_equal(fx_final(fx, id), -1);
    assert_non_null(strstr(fx->log, "retrying with backoff"));
    /* same port again */
    char port[16];
    snprintf(port, sizeof port, "%u", fx->server.port);
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", fx->server.port);
    const char *const extra[] = {"--listen", listen, NULL};
    assert_int_equal(uws_fx_restart(&fx->server, extra), 0);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->phases[i], ENGINE_COMPLETED);
    fx_run_for(fx, 0.3);
    assert_int_equal(fx_count_final(fx, id), 1);
    assert_non_null(strstr(fx->log, "answers again"));
    /* one warning for the whole outage */
    const char *w = strstr(fx->log, "retrying with backoff");
    assert_null(strstr(w + 1, "retrying with backoff"));
}

/* Closed and reopened on the same store while the job runs remotely: the
 * job is polled again by its stored id and ends once. */
static void test_reopen_readopts(void **state)
{
    fixture *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit_sh(fx, id, "sleep 1");
    double end = tu_now() + 20;
    while (!fx_saw(fx, id, ENGINE_EXECUTING) && tu_now() < end) {
        fx_spin(fx);
    }
    char uws_id[64];
    snprintf(uws_id, sizeof uws_id, "%s", engine_job_get(fx->e, id)->executor_id);
    fx_close(fx);
    fx->n = 0;
    fx_open(fx);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->phases[i], ENGINE_COMPLETED);
    assert_string_equal(engine_job_get(fx->e, id)->executor_id, uws_id);
    fx_run_for(fx, 0.3);
    assert_int_equal(fx_count_final(fx, id), 1);
    assert_int_equal(uws_fx_count(&fx->server), 1); /* not submitted twice */
}

/* A free loopback port (bound, then released). */
static unsigned free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* No server yet: the job waits (QUEUED, holding its slot) and is sent
 * once the server is up; one warning. */
static void test_server_down_at_submit(void **state)
{
    (void)state;
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    unsigned port = free_port();
    snprintf(fx->url, sizeof fx->url, "http://127.0.0.1:%u/api/v1", port);
    fx_setup_engine(fx, true);
    fx_open(fx);
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_submit_sh(fx, id, "exit 0");
    fx_run_for(fx, 1.0);
    assert_int_equal(fx_final(fx, id), -1);
    assert_int_equal(engine_job_get(fx->e, id)->phase, ENGINE_QUEUED);
    assert_non_null(strstr(fx->log, "retrying with backoff"));
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
    const char *const extra[] = {"--listen", listen, NULL};
    assert_int_equal(uws_fx_start(&fx->server, NULL, extra), 0);
    int i = fx_wait_final(fx, id, 30);
    assert_int_equal(fx->phases[i], ENGINE_COMPLETED);
    const char *w = strstr(fx->log, "retrying with backoff");
    assert_null(strstr(w + 1, "retrying with backoff"));
    assert_int_equal(uws_fx_count(&fx->server), 1);
    void *st = fx;
    teardown(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_completes_with_results_and_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simulate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup_delete, teardown),
        cmocka_unit_test_setup_teardown(test_prerequisites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_killed_while_polled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_readopts, setup, teardown),
        cmocka_unit_test(test_server_down_at_submit),
    };
    return cmocka_run_group_tests_name("engine_uws", tests, NULL, NULL);
}
