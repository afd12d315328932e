/*
 * test_uws_api.c - API conformance of ocps-engine (the uws-api-server
 * API, docs/uws.md): the real daemon, spoken to with curl. Every route,
 * status code, JSON shape and phase, errors included.
 */
#define _XOPEN_SOURCE 700
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

#include "test_util.h"
#include "uws_fixture.h"

static uws_fx fx;

static int setup(void **state)
{
    (void)state;
    return uws_fx_start(&fx, NULL, NULL);
}

static int teardown(void **state)
{
    (void)state;
    uws_fx_stop(&fx);
    return 0;
}

static void job_path(char *out, size_t outlen, const char *id, const char *rest)
{
    snprintf(out, outlen, "/job/%s%s", id, rest);
}

/* GET /job/{id}{rest} into r; its HTTP status. */
static int get_job(const char *id, const char *rest, uws_resp *r)
{
    char path[160];
    job_path(path, sizeof path, id, rest);
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, r), 0);
    return r->status;
}

static bool is_time_string(json_t *v)
{
    const char *s = json_string_value(v);
    /* "2021-04-29 15:39:06+00:00" */
    return s != NULL && strlen(s) == 25 && s[4] == '-' && s[10] == ' ' && s[13] == ':' &&
           strcmp(s + 19, "+00:00") == 0;
}

/* The job object has exactly the reference's keys (jobInfo may carry ours). */
static void check_shape(json_t *job)
{
    static const char *const keys[] = {"jobId",        "runId",      "ownerId", "phase",
                                       "creationTime", "startTime",  "endTime", "executionDuration",
                                       "destruction",  "parameters", "results", "errorSummary",
                                       "jobInfo"};
    assert_true(json_is_object(job));
    assert_int_equal(json_object_size(job), sizeof keys / sizeof keys[0]);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        assert_non_null(json_object_get(job, keys[i]));
    }
    assert_int_equal(strlen(json_string_value(json_object_get(job, "jobId"))), 32);
    assert_string_equal(json_string_value(json_object_get(job, "ownerId")), "");
    assert_true(is_time_string(json_object_get(job, "creationTime")));
    assert_true(json_is_null(json_object_get(job, "destruction")));
    json_t *params = json_object_get(job, "parameters");
    assert_true(json_is_array(json_object_get(params, "command")));
    assert_true(json_is_array(json_object_get(params, "environment")));
    assert_true(json_is_array(json_object_get(job, "results")));
    assert_true(json_is_string(json_object_get(json_object_get(job, "errorSummary"), "message")));
    assert_true(json_is_object(json_object_get(job, "jobInfo")));
}

static const char *env_value(json_t *job, const char *name)
{
    json_t *env = json_object_get(json_object_get(job, "parameters"), "environment");
    size_t i;
    json_t *item;
    const char *found = NULL;
    json_array_foreach(env, i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "name")), name) == 0) {
            found = json_string_value(json_object_get(item, "value"));
        }
    }
    return found;
}

/* PUT /job with `command`: 200 and the job object; it runs with bash -c,
 * sees JOB_ID, JOB_OUTPUT_DIR (created), JOB_SOURCE_DIR and the caller's
 * environment byte for byte; completed; its files are its results. */
static void test_put_command_runs(void **state)
{
    (void)state;
    const char *body =
        "{\"command\": \"printf '%s' \\\"$WEIRD\\\" > $JOB_OUTPUT_DIR/env.txt; "
        "printf '%s' \\\"$JOB_ID\\\" > $JOB_OUTPUT_DIR/id.txt; mkdir -p $JOB_OUTPUT_DIR/sub; "
        "echo nested > $JOB_OUTPUT_DIR/sub/n.txt; echo hidden > $JOB_OUTPUT_DIR/.h; "
        "mkdir $JOB_OUTPUT_DIR/.d && echo in-hidden-dir > $JOB_OUTPUT_DIR/.d/f.txt; "
        "ln -s /etc/passwd $JOB_OUTPUT_DIR/link\","
        " \"run_id\": \"run-42.a_b\","
        " \"environment\": [{\"name\": \"WEIRD\", \"value\": \"${CP_PIPE_DIR} 'q' \\\"d\\\" \\\\ $(x)\"}]}";
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "PUT", "/job", "application/json", body, strlen(body), NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    assert_non_null(strstr(r.headers, "Access-Control-Allow-Origin: *"));
    check_shape(r.json);
    char id[33];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "jobId")));
    assert_string_equal(json_string_value(json_object_get(r.json, "runId")), "run-42.a_b");
    json_t *cmd = json_object_get(json_object_get(r.json, "parameters"), "command");
    assert_int_equal(json_array_size(cmd), 3);
    assert_string_equal(json_string_value(json_array_get(cmd, 0)), "/bin/bash");
    assert_string_equal(json_string_value(json_array_get(cmd, 1)), "-c");
    assert_string_equal(env_value(r.json, "WEIRD"), "${CP_PIPE_DIR} 'q' \"d\" \\ $(x)");
    assert_string_equal(env_value(r.json, "JOB_ID"), id);
    assert_non_null(env_value(r.json, "JOB_OUTPUT_DIR"));
    assert_non_null(env_value(r.json, "JOB_SOURCE_DIR"));
    const char *phase = json_string_value(json_object_get(r.json, "phase"));
    assert_true(strcmp(phase, "pending") == 0 || strcmp(phase, "queued") == 0 ||
                strcmp(phase, "executing") == 0 || strcmp(phase, "completed") == 0);
    uws_resp_clear(&r);

    json_t *job = uws_fx_wait(&fx, id, NULL, 30);
    assert_non_null(job);
    check_shape(job);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    assert_true(is_time_string(json_object_get(job, "startTime")));
    assert_true(is_time_string(json_object_get(job, "endTime")));
    assert_true(json_is_real(json_object_get(job, "executionDuration")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(job, "jobInfo"), "exitCode")), 0);
    /* results: .d/f.txt, env.txt, id.txt, sub/n.txt sorted; no hidden
     * file (a hidden directory is walked, as the reference's os.walk), no
     * link */
    json_t *results = json_object_get(job, "results");
    assert_int_equal(json_array_size(results), 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(json_integer_value(json_object_get(json_array_get(results, i), "id")),
                         (json_int_t)i);
    }
    const char *uri0 = json_string_value(json_object_get(json_array_get(results, 0), "uri"));
    assert_non_null(strstr(uri0, "/out/.d/f.txt"));
    assert_true(uri0[0] == '/');
    json_decref(job);

    /* the index as the reference's int(): negative from the end; not an
     * integer: 404; empty: 400 with a JSON string */
    static const struct {
        const char *index;
        unsigned status;
        const char *body;
    } served[] = {
        {"0", 200, "in-hidden-dir\n"},
        {"1", 200, "${CP_PIPE_DIR} 'q' \"d\" \\ $(x)"},
        {"2", 200, NULL}, /* the job id */
        {"-1", 200, "nested\n"},
        {"+3", 200, "nested\n"},
        {"4", 404, "Result file not found."},
        {"-5", 404, "Result file not found."},
        {"x", 404, "Result file not found."},
        {"", 400, "\"Invalid result ID.\""},
    };
    char path[256];
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++) {
        snprintf(path, sizeof path, "/job/result/%s/%s", id, served[i].index);
        assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
        assert_int_equal(r.status, served[i].status);
        assert_string_equal(r.body, served[i].body != NULL ? served[i].body : id);
        uws_resp_clear(&r);
    }
    snprintf(path, sizeof path, "/job/result/%s/1", id);
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_non_null(strstr(r.headers, "Content-Type: text/plain"));
    uws_resp_clear(&r);

    /* properties */
    assert_int_equal(get_job(id, "/phase", &r), 200);
    assert_string_equal(json_string_value(r.json), "completed");
    uws_resp_clear(&r);
    assert_int_equal(get_job(id, "/results", &r), 200);
    assert_int_equal(json_array_size(r.json), 4);
    uws_resp_clear(&r);
    assert_int_equal(get_job(id, "/parameters", &r), 200);
    assert_true(json_is_array(json_object_get(r.json, "command")));
    uws_resp_clear(&r);
    assert_int_equal(get_job(id, "/owner", &r), 400);
    assert_non_null(strstr(json_string_value(r.json), "Supported properties are phase, results, parameters"));
    uws_resp_clear(&r);
}

/* The argv extension runs without any shell: nothing in it is expanded. */
static void test_argv_no_shell(void **state)
{
    (void)state;
    const char *body = "{\"argv\": [\"touch\", \"out/$(touch canary)\", \"out/;touch canary\", "
                       "\"out/`touch canary`\"], \"run_id\": \"7\"}";
    char id[33];
    assert_int_equal(uws_fx_submit(&fx, body, id), 0);
    json_t *job = uws_fx_wait(&fx, id, NULL, 30);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    assert_int_equal(json_array_size(json_object_get(job, "results")), 3);
    json_t *cmd = json_object_get(json_object_get(job, "parameters"), "command");
    assert_string_equal(json_string_value(json_array_get(cmd, 0)), "touch");
    assert_false(json_is_true(json_object_get(json_object_get(job, "jobInfo"), "shell")));
    json_decref(job);
    char canary[1200];
    snprintf(canary, sizeof canary, "%s/%s/canary", fx.work_root, id);
    assert_int_not_equal(access(canary, F_OK), 0);
    snprintf(canary, sizeof canary, "%s/%s/out/canary", fx.work_root, id);
    assert_int_not_equal(access(canary, F_OK), 0);
}

/* The extension then_argv: a second step, run without a shell in the
 * job's output directory once argv has exited 0; its files are results;
 * parameters show it after command. None after a failed first step. */
static void test_then_argv_second_step(void **state)
{
    (void)state;
    const char *body = "{\"argv\": [\"touch\", \"out/first\"], \"then_argv\": [\"sh\", \"-c\", "
                       "\"test -f first && echo \\\"$0 $1\\\" > second\", \"$(touch canary)\", \"x y\"]}";
    char id[33];
    assert_int_equal(uws_fx_submit(&fx, body, id), 0);
    json_t *job = uws_fx_wait(&fx, id, NULL, 30);
    check_shape(job);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    json_t *results = json_object_get(job, "results");
    assert_int_equal(json_array_size(results), 2);
    const char *second = json_string_value(json_object_get(json_array_get(results, 1), "uri"));
    char want[1200];
    snprintf(want, sizeof want, "%s/%s/out/second", fx.work_root, id);
    assert_string_equal(second, want);
    json_t *params = json_object_get(job, "parameters");
    assert_int_equal(json_object_size(params), 3);
    json_t *then = json_object_get(params, "then_argv");
    assert_int_equal(json_array_size(then), 5);
    assert_string_equal(json_string_value(json_array_get(then, 3)), "$(touch canary)");
    assert_string_equal(json_string_value(json_array_get(json_object_get(params, "command"), 0)), "touch");
    json_decref(job);
    char *text = tu_read_file(want, NULL);
    assert_non_null(text);
    assert_string_equal(text, "$(touch canary) x y\n"); /* words as given, never expanded */
    free(text);
    /* the first step failed: the second never runs */
    body = "{\"argv\": [\"sh\", \"-c\", \"exit 3\"], \"then_argv\": [\"touch\", \"second\"]}";
    assert_int_equal(uws_fx_submit(&fx, body, id), 0);
    job = uws_fx_wait(&fx, id, NULL, 30);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "error");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(job, "jobInfo"), "exitCode")), 3);
    assert_int_equal(json_array_size(json_object_get(job, "results")), 0);
    json_decref(job);
    /* a job without it shows no then_argv (the reference's parameters) */
    assert_int_equal(uws_fx_submit(&fx, "{\"argv\": [\"true\"]}", id), 0);
    job = uws_fx_wait(&fx, id, NULL, 30);
    assert_int_equal(json_object_size(json_object_get(job, "parameters")), 2);
    json_decref(job);
}

/* then_argv refused (400, no job): with command, alone, in a form, not
 * a non-empty list of strings. */
static void test_then_argv_refused(void **state)
{
    (void)state;
    static const struct {
        const char *ctype;
        const char *body;
        const char *message;
    } cases[] = {
        {"application/json", "{\"command\": \"true\", \"then_argv\": [\"true\"]}",
         "'then_argv' needs 'argv' (not 'command')"},
        {"application/json", "{\"then_argv\": [\"true\"]}", "'then_argv' needs 'argv'"},
        {"application/json", "{\"argv\": [\"true\"], \"then_argv\": \"true\"}",
         "'then_argv' must be a non-empty list of at most"},
        {"application/json", "{\"argv\": [\"true\"], \"then_argv\": []}",
         "'then_argv' must be a non-empty list of at most"},
        {"application/json", "{\"argv\": [\"true\"], \"then_argv\": null}",
         "'then_argv' must be a non-empty list of at most"},
        {"application/json", "{\"argv\": [\"true\"], \"then_argv\": [\"\"]}", "'then_argv' item 0 must be"},
        {"application/json", "{\"argv\": [\"true\"], \"then_argv\": [\"a\", 1]}",
         "'then_argv' item 1 must be"},
        {"application/x-www-form-urlencoded", "command=true&then_argv=true", "'then_argv' need a JSON body"},
    };
    int before = uws_fx_count(&fx);
    assert_true(before >= 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uws_resp r;
        assert_int_equal(uws_fx_request(&fx, "PUT", "/job", cases[i].ctype, cases[i].body,
                                        strlen(cases[i].body), NULL, &r),
                         0);
        if (r.status != 400 || r.body == NULL || strstr(r.body, cases[i].message) == NULL) {
            fail_msg("case %zu: %ld %s", i, (long)r.status, r.body != NULL ? r.body : "");
        }
        uws_resp_clear(&r);
    }
    assert_int_equal(uws_fx_count(&fx), before);
}

/* A result file whose name is not valid UTF-8 (no JSON string can hold
 * it) is left out of the listing; every other file is listed, before and
 * after it in the walk, in its directory and in others. */
static void test_results_skip_names_not_utf8(void **state)
{
    (void)state;
    /* 100 files beside the bad one (whichever entry readdir gives first,
     * a walk that stopped there would miss some), one in a subdirectory */
    const char *body =
        "{\"command\": \"cd $JOB_OUTPUT_DIR && touch $(seq -f f%03g.txt 100) && "
        "echo bad > \\\"$(printf 'bad\\\\377')\\\" && mkdir sub && echo c > sub/c.txt && "
        "mkdir \\\"$(printf 'd\\\\377')\\\" && echo d > \\\"$(printf 'd\\\\377')\\\"/in.txt\", "
        "\"run_id\": \"not-utf8\"}";
    char id[33];
    assert_int_equal(uws_fx_submit(&fx, body, id), 0);
    json_t *job = uws_fx_wait(&fx, id, NULL, 30);
    assert_non_null(job);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    char bad[1200];
    snprintf(bad, sizeof bad, "%s/%s/out/bad\377", fx.work_root, id);
    assert_int_equal(access(bad, F_OK), 0); /* the job did make it */
    json_t *results = json_object_get(job, "results");
    assert_int_equal(json_array_size(results), 101);
    for (size_t i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "/out/f%03zu.txt", i + 1);
        const char *uri = json_string_value(json_object_get(json_array_get(results, i), "uri"));
        assert_non_null(uri);
        assert_non_null(strstr(uri, name));
    }
    const char *last = json_string_value(json_object_get(json_array_get(results, 100), "uri"));
    assert_non_null(strstr(last, "/out/sub/c.txt"));
    json_decref(job);
    uws_resp r; /* the list too */
    assert_int_equal(uws_fx_request(&fx, "GET", "/job?run_id=not-utf8", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(json_array_get(r.json, 0), "results")), 101);
    uws_resp_clear(&r);
}

/* Extensions a CSC reads for its job_result: GET .../job/{id}/metrics (the
 * job's metrics.json, as written), .../job/{id}/log (its ocps.log), 404
 * while there is none; jobInfo.maxRssKb once it ended. */
static void test_metrics_and_log(void **state)
{
    (void)state;
    const char *body = "{\"argv\": [\"sh\", \"-c\", \"echo hello-from-the-job; "
                       "printf '{\\\"outputs\\\": [], \\\"summary\\\": {\\\"status\\\": \\\"ok\\\"}}' "
                       "> metrics.json\"]}";
    char id[33];
    assert_int_equal(uws_fx_submit(&fx, body, id), 0);
    json_t *job = uws_fx_wait(&fx, id, NULL, 30);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    assert_true(json_integer_value(json_object_get(json_object_get(job, "jobInfo"), "maxRssKb")) > 0);
    json_decref(job);
    uws_resp r;
    assert_int_equal(get_job(id, "/metrics", &r), 200);
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "summary"), "status")),
                        "ok");
    uws_resp_clear(&r);
    assert_int_equal(get_job(id, "/log", &r), 200);
    assert_non_null(strstr(r.body, "hello-from-the-job"));
    uws_resp_clear(&r);
    /* a job that wrote none: 404 with a message; an unknown job: 404 */
    assert_int_equal(uws_fx_submit(&fx, "{\"argv\": [\"true\"]}", id), 0);
    json_decref(uws_fx_wait(&fx, id, NULL, 30));
    assert_int_equal(get_job(id, "/metrics", &r), 404);
    assert_non_null(strstr(r.body, "No metrics for this job."));
    uws_resp_clear(&r);
    assert_int_equal(get_job("00000000000000000000000000000000", "/log", &r), 404);
    uws_resp_clear(&r);
}

/* `completed` only for exit 0; run_id defaults to the job id. */
static void test_failure_is_error(void **state)
{
    (void)state;
    char id[33];
    assert_int_equal(uws_fx_submit(&fx, "{\"command\": \"exit 3\"}", id), 0);
    json_t *job = uws_fx_wait(&fx, id, NULL, 30);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "error");
    assert_string_equal(json_string_value(json_object_get(job, "runId")), id);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(job, "jobInfo"), "exitCode")), 3);
    json_decref(job);
}

/* GET /job[?phase=] */
static void test_list_and_filter(void **state)
{
    (void)state;
    char ok[33];
    char bad[33];
    assert_int_equal(uws_fx_submit(&fx, "{\"command\": \"true\"}", ok), 0);
    assert_int_equal(uws_fx_submit(&fx, "{\"command\": \"false\"}", bad), 0);
    json_decref(uws_fx_wait(&fx, ok, NULL, 30));
    json_decref(uws_fx_wait(&fx, bad, NULL, 30));
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "GET", "/job?phase=completed", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(json_is_array(r.json));
    size_t i;
    json_t *j;
    bool seen = false;
    json_array_foreach(r.json, i, j)
    {
        check_shape(j);
        assert_string_equal(json_string_value(json_object_get(j, "phase")), "completed");
        seen = seen || strcmp(json_string_value(json_object_get(j, "jobId")), ok) == 0;
    }
    assert_true(seen);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", "/job?phase=error", NULL, NULL, 0, NULL, &r), 0);
    seen = false;
    json_array_foreach(r.json, i, j)
    {
        seen = seen || strcmp(json_string_value(json_object_get(j, "jobId")), bad) == 0;
    }
    assert_true(seen);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", "/job?phase=held", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 0);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", "/job?phase=COMPLETED", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "Valid job categories are: ['pending'"));
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", "/job/", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(json_is_array(r.json));
    uws_resp_clear(&r);
}

/* GET /job?run_id= (ocps-engine's extension, for a client looking up the
 * job it may have created): only the jobs with that runId (given, or the
 * job id when none was), with the phase filter too; a run_id no job can
 * have is a 400 and no list. */
static void test_list_by_run_id(void **state)
{
    (void)state;
    char a1[33];
    char a2[33];
    char b[33];
    char plain[33];
    assert_int_equal(uws_fx_submit(&fx, "{\"command\": \"true\", \"run_id\": \"run-a\"}", a1), 0);
    assert_int_equal(uws_fx_submit(&fx, "{\"command\": \"false\", \"run_id\": \"run-a\"}", a2), 0);
    assert_int_equal(uws_fx_submit(&fx, "{\"command\": \"true\", \"run_id\": \"run-b\"}", b), 0);
    assert_int_equal(uws_fx_submit(&fx, "{\"command\": \"true\"}", plain), 0);
    json_decref(uws_fx_wait(&fx, a1, NULL, 30));
    json_decref(uws_fx_wait(&fx, a2, NULL, 30));
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "GET", "/job?run_id=run-a", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 2);
    size_t i;
    json_t *j;
    json_array_foreach(r.json, i, j)
    {
        check_shape(j);
        assert_string_equal(json_string_value(json_object_get(j, "runId")), "run-a");
        const char *id = json_string_value(json_object_get(j, "jobId"));
        assert_true(strcmp(id, a1) == 0 || strcmp(id, a2) == 0);
    }
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", "/job?run_id=run-a&phase=error", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.json, 0), "jobId")), a2);
    uws_resp_clear(&r);
    char path[64];
    snprintf(path, sizeof path, "/job?run_id=%s", plain); /* no run_id given: the job id */
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(json_array_size(r.json), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.json, 0), "jobId")), plain);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", "/job?run_id=run-none", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(json_is_array(r.json));
    assert_int_equal(json_array_size(r.json), 0);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", "/job?run_id=", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200); /* empty: no filter, as an empty phase */
    assert_true(json_array_size(r.json) >= 4);
    uws_resp_clear(&r);
    static const char *const bad[] = {
        "/job?run_id=-a", "/job?run_id=a%2Fb",
        "/job?run_id=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        assert_int_equal(uws_fx_request(&fx, "GET", bad[k], NULL, NULL, 0, NULL, &r), 0);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "the run_id filter: Invalid run_id"));
        uws_resp_clear(&r);
    }
}

/* Start a job that records its pid and its child's pid, and wait until
 * both are running; returns the job id in id, pids in pids. */
static void start_sleeper(char id[33], int pids[2], const char *tag)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"command\": \"sleep 300 & echo $$ $! > %s/%s.pids.tmp; mv %s/%s.pids.tmp %s/%s.pids; wait\"}",
             fx.root, tag, fx.root, tag, fx.root, tag);
    assert_int_equal(uws_fx_submit(&fx, body, id), 0);
    char file[1200];
    snprintf(file, sizeof file, "%s/%s.pids", fx.root, tag);
    double until = tu_now() + 30;
    char *text = NULL;
    while ((text = tu_read_file(file, NULL)) == NULL && tu_now() < until) {
        usleep(50 * 1000);
    }
    assert_non_null(text);
    assert_int_equal(sscanf(text, "%d %d", &pids[0], &pids[1]), 2);
    free(text);
}

static bool gone_within(int pid, double seconds)
{
    double until = tu_now() + seconds;
    while (tu_now() < until) {
        if (kill(pid, 0) != 0) {
            return true;
        }
        usleep(20 * 1000);
    }
    return false;
}

/* The result names of GET /job/{id}, joined by spaces (basenames). */
static void result_names(const char *id, char *out, size_t outlen)
{
    uws_resp r;
    assert_int_equal(get_job(id, "", &r), 200);
    out[0] = '\0';
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(r.json, "results"), i, item)
    {
        const char *uri = json_string_value(json_object_get(item, "uri"));
        assert_non_null(uri);
        size_t n = strlen(out);
        snprintf(out + n, outlen - n, "%s%s", n > 0 ? " " : "", strrchr(uri, '/') + 1);
    }
    uws_resp_clear(&r);
}

/* A running job's answer is kept between polls, but never hides a result
 * file for longer than UWS_LIVE_TRUSTED_FOR (0.3 s; its directories are
 * checked again off the loop): added, removed, in a new or an old
 * subdirectory, just after a poll or long after. */
#define CHANGE_SEEN_WITHIN_US (350 * 1000)
static void test_running_results_fresh(void **state)
{
    (void)state;
    char id[33];
    int pids[2];
    start_sleeper(id, pids, "fresh");
    char out[1200];
    char file[1300];
    char names[512];
    snprintf(out, sizeof out, "%s/%s/out", fx.work_root, id);
    for (double until = tu_now() + 10; access(out, F_OK) != 0 && tu_now() < until; usleep(20000)) {
    }
    result_names(id, names, sizeof names);
    assert_string_equal(names, "");
    usleep(300 * 1000); /* the directory is old enough for its time to be trusted */
    result_names(id, names, sizeof names);
    result_names(id, names, sizeof names); /* kept */
    assert_string_equal(names, "");
    snprintf(file, sizeof file, "%s/a.txt", out);
    assert_int_equal(tu_write_file(file, "a", 1), 0);
    usleep(CHANGE_SEEN_WITHIN_US);
    result_names(id, names, sizeof names); /* soon after the change */
    assert_string_equal(names, "a.txt");
    snprintf(file, sizeof file, "%s/sub", out);
    assert_int_equal(mkdir(file, 0755), 0);
    snprintf(file, sizeof file, "%s/sub/b.txt", out);
    assert_int_equal(tu_write_file(file, "b", 1), 0);
    usleep(CHANGE_SEEN_WITHIN_US);
    result_names(id, names, sizeof names);
    assert_string_equal(names, "a.txt b.txt");
    usleep(300 * 1000);
    result_names(id, names, sizeof names);
    result_names(id, names, sizeof names); /* kept, both directories stamped */
    assert_string_equal(names, "a.txt b.txt");
    snprintf(file, sizeof file, "%s/sub/c.txt", out);
    assert_int_equal(tu_write_file(file, "c", 1), 0);
    usleep(CHANGE_SEEN_WITHIN_US);
    result_names(id, names, sizeof names); /* a file in the old subdirectory */
    assert_string_equal(names, "a.txt b.txt c.txt");
    usleep(300 * 1000);
    result_names(id, names, sizeof names);
    snprintf(file, sizeof file, "%s/a.txt", out);
    assert_int_equal(unlink(file), 0);
    usleep(CHANGE_SEEN_WITHIN_US);
    result_names(id, names, sizeof names);
    assert_string_equal(names, "b.txt c.txt");
    char path[128];
    uws_resp r;
    job_path(path, sizeof path, id, "");
    assert_int_equal(uws_fx_request(&fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    assert_true(gone_within(pids[1], 10));
}

/* DELETE kills the process group promptly; the job is gone (404) at once. */
static void test_delete_kills_and_forgets(void **state)
{
    (void)state;
    char id[33];
    int pids[2];
    start_sleeper(id, pids, "del");
    char path[128];
    job_path(path, sizeof path, id, "");
    uws_resp r;
    double t0 = tu_now();
    assert_int_equal(uws_fx_request(&fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "Success");
    assert_string_equal(json_string_value(json_object_get(r.json, "message")), "");
    assert_int_equal(json_integer_value(json_object_get(r.json, "code")), 200);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
    assert_true(gone_within(pids[0], 5));
    assert_true(gone_within(pids[1], 5));
    print_message("delete: process group gone after %.2f s\n", tu_now() - t0);
    /* and its files go */
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", fx.work_root, id);
    double until = tu_now() + 10;
    while (access(dir, F_OK) == 0 && tu_now() < until) {
        usleep(50 * 1000);
    }
    assert_int_not_equal(access(dir, F_OK), 0);
    assert_int_equal(uws_fx_request(&fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    assert_true(json_is_string(r.json)); /* as GET's 404: a JSON string naming the job */
    assert_non_null(strstr(json_string_value(r.json), id));
    uws_resp_clear(&r);
    /* not listed */
    assert_int_equal(uws_fx_request(&fx, "GET", "/job", NULL, NULL, 0, NULL, &r), 0);
    assert_null(strstr(r.body, id));
    uws_resp_clear(&r);

    /* an ended job is deleted at once */
    char done[33];
    assert_int_equal(uws_fx_submit(&fx, "{\"command\": \"true\"}", done), 0);
    json_decref(uws_fx_wait(&fx, done, NULL, 30));
    job_path(path, sizeof path, done, "");
    assert_int_equal(uws_fx_request(&fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
}

/* UWS 1.1 abort: POST /job/{id}/phase PHASE=ABORT; the job stays, aborted. */
static void test_abort_extension(void **state)
{
    (void)state;
    char id[33];
    int pids[2];
    start_sleeper(id, pids, "abort");
    char path[128];
    job_path(path, sizeof path, id, "/phase");
    uws_resp r;
    assert_int_equal(
        uws_fx_request(&fx, "POST", path, "application/x-www-form-urlencoded", "PHASE=RUN", 9, NULL, &r), 0);
    assert_int_equal(r.status, 400);
    uws_resp_clear(&r);
    assert_int_equal(
        uws_fx_request(&fx, "POST", path, "application/x-www-form-urlencoded", "PHASE=ABORT", 11, NULL, &r),
        0);
    assert_int_equal(r.status, 303);
    char loc[128];
    snprintf(loc, sizeof loc, "Location: /api/v1/job/%s", id);
    assert_non_null(strstr(r.headers, loc));
    uws_resp_clear(&r);
    assert_true(gone_within(pids[0], 5));
    assert_true(gone_within(pids[1], 5));
    json_t *job = uws_fx_wait(&fx, id, "aborted", 10);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "aborted");
    json_decref(job);
    /* idempotent */
    assert_int_equal(
        uws_fx_request(&fx, "POST", path, "application/x-www-form-urlencoded", "PHASE=ABORT", 11, NULL, &r),
        0);
    assert_int_equal(r.status, 303);
    uws_resp_clear(&r);
    job_path(path, sizeof path, "0123456789abcdef0123456789abcdef", "/phase");
    assert_int_equal(
        uws_fx_request(&fx, "POST", path, "application/x-www-form-urlencoded", "PHASE=ABORT", 11, NULL, &r),
        0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
}

/* OPTIONS, CORS, 404 and 405. */
static void test_options_cors_and_unknown(void **state)
{
    (void)state;
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "OPTIONS", "/job", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 204);
    assert_non_null(strstr(r.headers, "Access-Control-Allow-Origin: *"));
    assert_non_null(strstr(r.headers, "Access-Control-Allow-Methods:"));
    assert_non_null(strstr(r.headers, "Access-Control-Allow-Headers:"));
    uws_resp_clear(&r);
    assert_int_equal(
        uws_fx_request(&fx, "OPTIONS", "/job/0123456789abcdef0123456789abcdef", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 204);
    uws_resp_clear(&r);
    assert_int_equal(
        uws_fx_request(&fx, "GET", "/job/0123456789abcdef0123456789abcdef", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    assert_true(json_is_string(r.json));
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", "/job/not-a-job", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "POST", "/job", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "Allow: GET, PUT, OPTIONS"));
    uws_resp_clear(&r);
    assert_int_equal(
        uws_fx_request(&fx, "PUT", "/job/0123456789abcdef0123456789abcdef", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "Allow: GET, DELETE, OPTIONS\r\n"));
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "DELETE", "/job/result/0123456789abcdef0123456789abcdef/0", NULL,
                                    NULL, 0, NULL, &r),
                     0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "Allow: GET, OPTIONS\r\n"));
    uws_resp_clear(&r);
    /* of the properties only phase takes POST */
    const char *get_only[] = {
        "/job/0123456789abcdef0123456789abcdef/metrics", "/job/0123456789abcdef0123456789abcdef/log",
        "/job/0123456789abcdef0123456789abcdef/results", "/job/0123456789abcdef0123456789abcdef/parameters"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(uws_fx_request(&fx, "POST", get_only[i], NULL, NULL, 0, NULL, &r), 0);
        assert_int_equal(r.status, 405);
        assert_non_null(strstr(r.headers, "Allow: GET, OPTIONS\r\n"));
        uws_resp_clear(&r);
    }
    assert_int_equal(
        uws_fx_request(&fx, "DELETE", "/job/0123456789abcdef0123456789abcdef/phase", NULL, NULL, 0, NULL, &r),
        0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "Allow: GET, POST, OPTIONS\r\n"));
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "GET", "/jobs", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
    uws_fx other = fx;
    snprintf(other.base_path, sizeof other.base_path, "%s", "");
    assert_int_equal(uws_fx_request(&other, "GET", "/job", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
}

/* A form body works as on the reference (Tornado's get_argument). */
static void test_form_submission(void **state)
{
    (void)state;
    uws_resp r;
    const char *form = "command=echo+form+%26+done&run_id=form1";
    assert_int_equal(
        uws_fx_request(&fx, "PUT", "/job", "application/x-www-form-urlencoded", form, strlen(form), NULL, &r),
        0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "runId")), "form1");
    json_t *cmd = json_object_get(json_object_get(r.json, "parameters"), "command");
    assert_string_equal(json_string_value(json_array_get(cmd, 2)), "echo form & done");
    uws_resp_clear(&r);
    /* JSON sent as a form (curl -d without -H): the reference's 400, with a hint */
    const char *json = "{\"command\": \"echo hi\"}";
    assert_int_equal(
        uws_fx_request(&fx, "PUT", "/job", "application/x-www-form-urlencoded", json, strlen(json), NULL, &r),
        0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "missing argument: 'command' (the body looks like JSON: send it with "
                                   "Content-Type: application/json)"));
    uws_resp_clear(&r);
}

/* What the reference takes that a strict reading would refuse: an empty
 * run_id is none (runId is the job id); environment values that are
 * numbers, booleans or null become Python's str() of them, an absent one
 * ""; a form's fields may come in the query (the body's win). */
static void test_reference_leniency(void **state)
{
    (void)state;
    const char *body =
        "{\"command\": \"printf '%s|' \\\"$I\\\" \\\"$R\\\" \\\"$B\\\" \\\"$N\\\" "
        "\\\"$A\\\" > $JOB_OUTPUT_DIR/env.txt\", \"run_id\": \"\", "
        "\"environment\": [{\"name\": \"I\", \"value\": 5}, {\"name\": \"R\", \"value\": 100.0}, "
        "{\"name\": \"B\", \"value\": true}, {\"name\": \"N\", \"value\": null}, {\"name\": \"A\"}]}";
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "PUT", "/job", "application/json", body, strlen(body), NULL, &r), 0);
    assert_int_equal(r.status, 200);
    char id[33];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "jobId")));
    assert_string_equal(json_string_value(json_object_get(r.json, "runId")), id);
    uws_resp_clear(&r);
    json_decref(uws_fx_wait(&fx, id, "completed", 30));
    char path[256];
    snprintf(path, sizeof path, "/job/result/%s/0", id);
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "5|100.0|True|None||");
    uws_resp_clear(&r);

    const char *form = "run_id=&url=";
    assert_int_equal(uws_fx_request(&fx, "PUT", "/job?command=echo+q&run_id=from-query",
                                    "application/x-www-form-urlencoded", form, strlen(form), NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    json_t *cmd = json_object_get(json_object_get(r.json, "parameters"), "command");
    assert_string_equal(json_string_value(json_array_get(cmd, 2)), "echo q");
    assert_string_equal(json_string_value(json_object_get(r.json, "runId")),
                        json_string_value(json_object_get(r.json, "jobId"))); /* the body's empty run_id */
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&fx, "PUT", "/job?command=echo+q&run_id=bad%20id",
                                    "application/x-www-form-urlencoded", "", 0, NULL, &r),
                     0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "Invalid run_id"));
    uws_resp_clear(&r);
}

/* `url` + `commit_ref`: cloned into JOB_SOURCE_DIR before the command; a
 * failed clone is tolerated as the reference tolerates it. */
static void test_git_clone(void **state)
{
    (void)state;
    char *repo = tu_path_join(fx.root, "repo");
    char *script = tu_path_join(repo, "run.sh");
    assert_int_equal(mkdir(repo, 0755), 0);
    assert_int_equal(tu_write_file(script, "echo from-repo > \"$JOB_OUTPUT_DIR/repo.txt\"\n", 44), 0);
    char *const init[] = {"git", "-C", repo, "init", "-q", "-b", "main", NULL};
    char *const add[] = {"git", "-C", repo, "add", "run.sh", NULL};
    char *const commit[] = {"git",    "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t",
                            "commit", "-q", "-m", "x",  NULL};
    assert_int_equal(tu_run(init, NULL), 0);
    assert_int_equal(tu_run(add, NULL), 0);
    assert_int_equal(tu_run(commit, NULL), 0);
    char body[2048];
    snprintf(body, sizeof body,
             "{\"command\": \"cd $JOB_SOURCE_DIR && bash run.sh\", \"url\": \"file://%s\", \"commit_ref\": "
             "\"main\"}",
             repo);
    char id[33];
    assert_int_equal(uws_fx_submit(&fx, body, id), 0);
    json_t *job = uws_fx_wait(&fx, id, NULL, 60);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    char *results = json_dumps(json_object_get(job, "results"), 0);
    assert_non_null(results);
    assert_non_null(strstr(results, "repo.txt"));
    free(results);
    char expect[1200];
    snprintf(expect, sizeof expect, "file://%s", repo);
    assert_string_equal(env_value(job, "SRC_GIT_URL"), expect);
    assert_string_equal(env_value(job, "GIT_COMMIT_REF"), "main");
    json_decref(job);
    /* a clone that fails: the command runs anyway */
    assert_int_equal(
        uws_fx_submit(
            &fx, "{\"command\": \"echo ran > $JOB_OUTPUT_DIR/ran\", \"url\": \"file:///nonexistent/repo\"}",
            id),
        0);
    job = uws_fx_wait(&fx, id, NULL, 60);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    assert_int_equal(json_array_size(json_object_get(job, "results")), 1);
    json_decref(job);
    free(script);
    free(repo);
}

/* PUT /job with key `key` (a curl -H) and `body`: the reply. */
static void put_keyed(uws_fx *f, const char *key, const char *body, uws_resp *r)
{
    char header[128];
    snprintf(header, sizeof header, "Idempotency-Key: %s", key);
    const char *const extra[] = {"-H", header, NULL};
    assert_int_equal(uws_fx_request(f, "PUT", "/job", "application/json", body, strlen(body), extra, r), 0);
}

/* The Idempotency-Key extension: the key becomes the job's id; the same
 * PUT sent again (a client whose answer was lost) gets that job, 200, also
 * once it has ended, and no second job; another run_id or command under
 * the key is 409, a key that is not a job id 400, and neither makes one. */
static void test_idempotency_key(void **state)
{
    (void)state;
    static const char key[] = "fedcba9876543210fedcba9876543210";
    static const char body[] = "{\"argv\": [\"true\"], \"run_id\": \"keyed\"}";
    int before = uws_fx_count(&fx);
    uws_resp r;
    put_keyed(&fx, key, body, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "jobId")), key);
    uws_resp_clear(&r);
    json_t *job = uws_fx_wait(&fx, key, NULL, 30);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    json_decref(job);
    put_keyed(&fx, key, body, &r);
    assert_int_equal(r.status, 200);
    check_shape(r.json);
    assert_string_equal(json_string_value(json_object_get(r.json, "jobId")), key);
    assert_string_equal(json_string_value(json_object_get(r.json, "phase")), "completed");
    uws_resp_clear(&r);
    static const char *const other[] = {"{\"argv\": [\"true\"], \"run_id\": \"other\"}",
                                        "{\"argv\": [\"false\"], \"run_id\": \"keyed\"}",
                                        "{\"command\": \"true\", \"run_id\": \"keyed\"}"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        put_keyed(&fx, key, other[i], &r);
        assert_int_equal(r.status, 409);
        assert_non_null(strstr(r.body, "Idempotency-Key fedcba9876543210fedcba9876543210 names another job"));
        uws_resp_clear(&r);
    }
    static const char *const bad[] = {"0123456789ABCDEF0123456789ABCDEF", "0123", "../../etc/passwd"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_keyed(&fx, bad[i], body, &r);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "Idempotency-Key: must be a job id"));
        uws_resp_clear(&r);
    }
    assert_int_equal(uws_fx_count(&fx), before + 1);
}

/* A key whose job was deleted makes a new job at once, which runs: the
 * old job's files (30,000 of them: their removal takes a while) are out
 * of its way, not taken for its run (it ended at once with the old
 * outcome). */
static void test_key_reused_after_delete(void **state)
{
    (void)state;
    static const char key[] = "00112233445566778899aabbccddeeff";
    static const char first[] = "{\"command\": \"mkdir -p $JOB_OUTPUT_DIR/many && cd $JOB_OUTPUT_DIR/many && "
                                "seq 30000 | xargs touch && echo first > $JOB_OUTPUT_DIR/which.txt\", "
                                "\"run_id\": \"r1\"}";
    static const char second[] = "{\"command\": \"echo second > $JOB_OUTPUT_DIR/which.txt; exit 3\", "
                                 "\"run_id\": \"r2\"}";
    uws_resp r;
    put_keyed(&fx, key, first, &r);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    json_t *job = uws_fx_wait(&fx, key, NULL, 60);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    json_decref(job);
    char path[128];
    snprintf(path, sizeof path, "/job/%s", key);
    assert_int_equal(uws_fx_request(&fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    put_keyed(&fx, key, second, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "runId")), "r2");
    uws_resp_clear(&r);
    job = uws_fx_wait(&fx, key, NULL, 30);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "error"); /* its own run: exit 3 */
    assert_int_equal(json_array_size(json_object_get(job, "results")), 1);
    json_decref(job);
    snprintf(path, sizeof path, "/job/result/%s/0", key);
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_string_equal(r.body, "second\n");
    uws_resp_clear(&r);
}

/* A keyed PUT while the DELETE of its job is still ending it (the job
 * ignores SIGTERM; --abort-grace 5 s before SIGKILL) is 503 with
 * Retry-After, the same submission or another: the job is gone for the
 * API, but its id is not free yet. Once it has ended, the keyed PUT makes
 * a new job, which runs. */
static void test_key_while_deleting(void **state)
{
    (void)state;
    uws_fx own;
    const char *const opts[] = {"--abort-grace", "5", NULL};
    assert_int_equal(uws_fx_start(&own, NULL, opts), 0);
    static const char key[] = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
    char first[1024];
    snprintf(first, sizeof first,
             "{\"command\": \"trap '' TERM; sleep 30 & touch %s/trapped; wait\", \"run_id\": \"dying\"}",
             own.root);
    static const char second[] = "{\"command\": \"echo second > $JOB_OUTPUT_DIR/which.txt\", "
                                 "\"run_id\": \"after\"}";
    uws_resp r;
    put_keyed(&own, key, first, &r);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    char trapped[1100];
    snprintf(trapped, sizeof trapped, "%s/trapped", own.root);
    for (double until = tu_now() + 30; access(trapped, F_OK) != 0 && tu_now() < until; usleep(20000)) {
    }
    assert_int_equal(access(trapped, F_OK), 0);
    char path[128];
    snprintf(path, sizeof path, "/job/%s", key);
    assert_int_equal(uws_fx_request(&own, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    double deleted = tu_now();
    const char *const bodies[] = {first, second};
    for (size_t i = 0; i < 2; i++) {
        put_keyed(&own, key, bodies[i], &r);
        assert_true(tu_now() - deleted < 4); /* still within the grace: the job is ending */
        assert_int_equal(r.status, 503);
        assert_non_null(strstr(r.headers, "\r\nRetry-After: 1\r\n"));
        assert_non_null(strstr(r.body, "names a job being deleted"));
        uws_resp_clear(&r);
    }
    assert_int_equal(uws_fx_request(&own, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
    /* sent again as the Retry-After asks, until the old job has ended */
    int status = 0;
    for (double until = tu_now() + 30; status != 200 && tu_now() < until;) {
        put_keyed(&own, key, second, &r);
        status = r.status;
        if (status == 200) {
            assert_string_equal(json_string_value(json_object_get(r.json, "runId")), "after");
        } else {
            assert_int_equal(status, 503);
            usleep(200 * 1000);
        }
        uws_resp_clear(&r);
    }
    assert_int_equal(status, 200);
    assert_true(tu_now() - deleted > 4); /* the old one was killed at the end of its grace */
    json_t *job = uws_fx_wait(&own, key, NULL, 30);
    assert_non_null(job);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    assert_string_equal(json_string_value(json_object_get(job, "runId")), "after");
    json_decref(job);
    snprintf(path, sizeof path, "/job/result/%s/0", key);
    assert_int_equal(uws_fx_request(&own, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_string_equal(r.body, "second\n");
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_count(&own), 1);
    uws_fx_stop(&own);
}

/* --max-waiting: a PUT beyond the waiting line's limit is answered 503
 * with the reason, and creates no job; a place freed takes the next. A
 * keyed PUT of an ended job sent again is answered with that job. */
static void test_full_line_refused(void **state)
{
    (void)state;
    uws_fx own;
    const char *const opts[] = {"--max-concurrent", "1", "--max-waiting", "2", NULL};
    assert_int_equal(uws_fx_start(&own, NULL, opts), 0);
    static const char key[] = "0123456789abcdef0123456789abcdef";
    static const char keyed_body[] = "{\"argv\": [\"true\"], \"run_id\": \"keyed\"}";
    uws_resp r;
    put_keyed(&own, key, keyed_body, &r);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    json_decref(uws_fx_wait(&own, key, "completed", 30));
    char holder[33];
    char q1[33];
    char q2[33];
    assert_int_equal(uws_fx_submit(&own, "{\"command\": \"exec sleep 300\"}", holder), 0);
    json_decref(uws_fx_wait(&own, holder, "executing", 30));
    assert_int_equal(uws_fx_submit(&own, "{\"argv\": [\"true\"]}", q1), 0);
    assert_int_equal(uws_fx_submit(&own, "{\"argv\": [\"true\"]}", q2), 0);
    const char *body = "{\"argv\": [\"true\"]}";
    assert_int_equal(uws_fx_request(&own, "PUT", "/job", "application/json", body, strlen(body), NULL, &r),
                     0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "too many jobs wait to run (2; the limit is 2)"));
    assert_non_null(strstr(r.headers, "\r\nRetry-After: 1\r\n"));
    uws_resp_clear(&r);
    /* a keyed PUT sent again for an ended job is not waiting: its job, 200 */
    put_keyed(&own, key, keyed_body, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "phase")), "completed");
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_count(&own), 4); /* nothing created */
    assert_int_equal(uws_fx_request(&own, "GET", "/metrics", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\nocps_engine_waiting_jobs 2\n"));
    assert_non_null(strstr(r.body, "\nocps_engine_max_waiting_jobs 2\n"));
    assert_non_null(strstr(r.body, "\nocps_engine_jobs_refused_total 1\n"));
    uws_resp_clear(&r);
    char path[128];
    snprintf(path, sizeof path, "/job/%s", q2);
    assert_int_equal(uws_fx_request(&own, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    char q3[33];
    assert_int_equal(uws_fx_submit(&own, body, q3), 0);
    assert_int_equal(uws_fx_count(&own), 4);
    snprintf(path, sizeof path, "/job/%s", holder);
    assert_int_equal(uws_fx_request(&own, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    uws_resp_clear(&r);
    json_t *job = uws_fx_wait(&own, q3, NULL, 30);
    assert_non_null(job);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    json_decref(job);
    uws_fx_stop(&own);
}

/* A large result (19 MB, sent a part at a time) arrives byte for byte,
 * with its Content-Length and type; clients that leave in the middle of
 * it (or before its first byte) cost nothing afterwards: the next ones
 * are served, and the service stops cleanly (exit 0; under ASan, no
 * leak), one transfer still in progress. */
static void test_large_result_and_clients_that_leave(void **state)
{
    (void)state;
    uws_fx own;
    assert_int_equal(uws_fx_start(&own, NULL, NULL), 0);
    char id[33];
    assert_int_equal(uws_fx_submit(&own,
                                   "{\"argv\": [\"sh\", \"-c\", \"echo writing-big; seq 1 2500000 > "
                                   "\\\"$JOB_OUTPUT_DIR/big.fits\\\"\"]}",
                                   id),
                     0);
    json_t *job = uws_fx_wait(&own, id, NULL, 60);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    json_decref(job);
    size_t want_len = 0;
    char *want = uws_seq_text(2500000, &want_len);
    assert_non_null(want);
    char clen[64];
    snprintf(clen, sizeof clen, "\r\nContent-Length: %zu\r\n", want_len);
    char path[96];
    snprintf(path, sizeof path, "/job/result/%s/0", id);

    /* clients that leave: before the reply, within the first part, later */
    static const size_t leave_after[] = {0, 100, 70000, 300000, 600000, 3000000};
    for (size_t i = 0; i < sizeof leave_after / sizeof leave_after[0]; i++) {
        uws_raw raw;
        assert_int_equal(uws_raw_get(&raw, &own, path, 8192), 0);
        assert_int_equal(uws_raw_read(&raw, leave_after[i], 20), 0);
        assert_true(raw.len >= leave_after[i]);
        uws_raw_close(&raw);
    }
    uws_resp r;
    for (int k = 0; k < 2; k++) { /* curl, then one that reads slowly */
        if (k == 0) {
            assert_int_equal(uws_fx_request(&own, "GET", path, NULL, NULL, 0, NULL, &r), 0);
        } else {
            uws_raw raw;
            assert_int_equal(uws_raw_get(&raw, &own, path, 8192), 0);
            for (size_t got = 0; got < 1000000; got += 250000) {
                assert_int_equal(uws_raw_read(&raw, got, 20), 0);
                usleep(20000);
            }
            assert_int_equal(uws_raw_read(&raw, SIZE_MAX, 60), 0);
            assert_true(raw.eof);
            assert_int_equal(uws_raw_reply(&raw, &r), 0);
            uws_raw_close(&raw);
        }
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.headers, clen));
        assert_non_null(strstr(r.headers, "Content-Type: application/fits\r\n"));
        assert_int_equal(r.len, want_len);
        assert_true(memcmp(r.body, want, want_len) == 0);
        uws_resp_clear(&r);
    }
    /* a small file: whole */
    char log_path[96];
    job_path(log_path, sizeof log_path, id, "/log");
    assert_int_equal(uws_fx_request(&own, "GET", log_path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "writing-big\n"));
    uws_resp_clear(&r);
    uws_raw open;
    assert_int_equal(uws_raw_get(&open, &own, path, 8192), 0);
    assert_int_equal(uws_raw_read(&open, 400000, 20), 0);
    kill(own.pid, SIGTERM); /* one transfer in progress */
    assert_int_equal(tu_wait_exit(own.pid, 20), 0);
    own.pid = -1;
    uws_raw_close(&open);
    free(want);
    uws_fx_stop(&own);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_command_runs),
        cmocka_unit_test(test_argv_no_shell),
        cmocka_unit_test(test_then_argv_second_step),
        cmocka_unit_test(test_then_argv_refused),
        cmocka_unit_test(test_results_skip_names_not_utf8),
        cmocka_unit_test(test_failure_is_error),
        cmocka_unit_test(test_list_and_filter),
        cmocka_unit_test(test_list_by_run_id),
        cmocka_unit_test(test_idempotency_key),
        cmocka_unit_test(test_delete_kills_and_forgets),
        cmocka_unit_test(test_running_results_fresh),
        cmocka_unit_test(test_abort_extension),
        cmocka_unit_test(test_options_cors_and_unknown),
        cmocka_unit_test(test_form_submission),
        cmocka_unit_test(test_reference_leniency),
        cmocka_unit_test(test_git_clone),
        cmocka_unit_test(test_full_line_refused),
        cmocka_unit_test(test_key_reused_after_delete),
        cmocka_unit_test(test_key_while_deleting),
        cmocka_unit_test(test_metrics_and_log),
        cmocka_unit_test(test_large_result_and_clients_that_leave),
    };
    /* OCPS_TEST_FILTER=NAME runs only that test (a cmocka pattern) */
    const char *filter = getenv("OCPS_TEST_FILTER");
    if (filter != NULL && *filter != '\0') {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
