/*
 * test_uws_job_text: the API's answer for one job written directly
 * (uws_job_text) is byte for byte the job object (uws_job_object) as
 * json_dumps with JSON_INDENT(2) wrote it: every phase, with and without
 * results, times, run id, git url, shell, then_argv, escapes in the message, and
 * what makes the object fail fails the text too; and nested in GET /job's
 * list (uws_job_text_at), byte for byte json_dumps of that list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps/uws_job.h"

static void assert_same_text(const engine_job *job, json_t *results)
{
    json_t *obj = uws_job_object(job, results);
    assert_non_null(obj);
    char *want = json_dumps(obj, JSON_INDENT(2) | JSON_ENCODE_ANY);
    size_t len = 0;
    char *got = uws_job_text(job, results, &len);
    assert_non_null(want);
    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(want);
    free(got);
    /* as the items of GET /job's list, nested one level deeper */
    json_t *list = json_pack("[OO]", obj, obj);
    want = json_dumps(list, JSON_INDENT(2));
    json_text_buf b = {.indent = 2};
    json_text_raw(&b, "[", 1);
    json_text_indent(&b, 1);
    assert_true(uws_job_text_at(&b, job, results, 1));
    json_text_raw(&b, ",", 1);
    json_text_indent(&b, 1);
    assert_true(uws_job_text_at(&b, job, results, 1));
    json_text_indent(&b, 0);
    json_text_raw(&b, "]", 1);
    got = json_text_finish(&b, NULL);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
    free(got);
    json_decref(list);
    json_decref(obj);
}

static void job_init(engine_job *job, const char *body)
{
    memset(job, 0, sizeof *job);
    snprintf(job->id, sizeof job->id, "%s", "019ad3a1b2c3d4e5f60718293a4b5c6d");
    job->workdir = "/work/019ad3a1b2c3d4e5f60718293a4b5c6d";
    uws_submit sub;
    char err[256];
    assert_int_equal(uws_submit_parse("application/json", body, strlen(body), NULL, &sub, err, sizeof err),
                     0);
    job->meta = uws_job_meta(&sub, job->id, job->workdir);
    job->argv = uws_job_run_argv(&sub);
    uws_submit_clear(&sub);
    assert_non_null(job->meta);
    assert_non_null(job->argv);
    job->results = json_array();
    job->exit_code = -1;
}

static void job_clear(engine_job *job)
{
    json_decref(job->meta);
    json_decref(job->argv);
    json_decref(job->results);
}

static void test_every_phase(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"argv\": [\"true\"]}",
        "{\"argv\": [\"echo\", \"a \\\"b\\\" \\\\ \\n caf\\u00e9\"], \"run_id\": \"bench-1\"}",
        ("{\"command\": \"echo $JOB_ID > $JOB_OUTPUT_DIR/x\", \"environment\": [{\"name\": \"A\", \"value\": "
         "\"1\\t2\"}]}"),
        "{\"argv\": [\"make\"], \"url\": \"https://example.org/r.git\", \"commit_ref\": \"v1\"}",
        /* the extension then_argv: shown in parameters after command */
        "{\"argv\": [\"pipetask\"], \"then_argv\": [\"butler\", \"a \\\"b\\\"\", \".\"], \"run_id\": \"t\"}",
    };
    json_t *none = json_array();
    json_t *some = json_pack("[sss]", "/work/x/out/a.txt", "/work/x/out/b \"q\".fits", "/work/x/out/sub/c");
    for (size_t k = 0; k < sizeof bodies / sizeof bodies[0]; k++) {
        for (int p = ENGINE_PENDING; p <= ENGINE_UNKNOWN; p++) {
            engine_job job;
            job_init(&job, bodies[k]);
            job.phase = (engine_phase)p;
            job.created = 1764630000.25;
            job.reason = p == ENGINE_COMPLETED ? ENGINE_REASON_SUCCESS : ENGINE_REASON_NONE;
            if (p >= ENGINE_EXECUTING) {
                job.started = 1764630001.5;
            }
            if (engine_phase_final(job.phase)) {
                job.ended = 1764630042.75;
                job.exit_code = p == ENGINE_COMPLETED ? 0 : 3;
                snprintf(job.message, sizeof job.message, "ended \"badly\"\n\x01 at line %d", p);
            }
            assert_same_text(&job, none);
            assert_same_text(&job, some);
            /* maxRssKb: unknown (null), a large one */
            job.max_rss_kb = -1;
            assert_same_text(&job, none);
            job.max_rss_kb = 123456789012LL;
            assert_same_text(&job, some);
            job.max_rss_kb = 0;
            job.started = 0; /* ended before it started */
            assert_same_text(&job, none);
            job_clear(&job);
        }
    }
    json_decref(some);
    json_decref(none);
}

static void test_fails_as_the_object(void **state)
{
    (void)state;
    engine_job job;
    job_init(&job, "{\"argv\": [\"true\"]}");
    job.phase = ENGINE_ERROR;
    job.ended = 1764630042.0;
    snprintf(job.message, sizeof job.message, "%s", "not UTF-8: \xff\xfe");
    json_t *none = json_array();
    json_t *obj = uws_job_object(&job, none);
    assert_null(obj);
    assert_null(uws_job_text(&job, none, NULL));
    job.phase = ENGINE_COMPLETED; /* the message is not shown then */
    assert_same_text(&job, none);
    json_decref(none);
    job_clear(&job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_phase),
        cmocka_unit_test(test_fails_as_the_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
