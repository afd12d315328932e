/*
 * test_ocps_job_result: the job_result `result` text (csc/app/ocps_job.h)
 * is always built, whatever the job lacks, and never longer than its cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ocps/ocps_job.h"
#include "test_util.h"

static engine_job *new_job(void)
{
    engine_job *j = calloc(1, sizeof *j);
    snprintf(j->id, sizeof j->id, "0123456789abcdef0123456789abcdef");
    j->phase = ENGINE_COMPLETED;
    j->reason = ENGINE_REASON_SUCCESS;
    j->created = 1.7e9;
    j->started = 1.7e9 + 1;
    j->ended = 1.7e9 + 5;
    j->workdir = "/var/tmp/ocps/0123456789abcdef0123456789abcdef";
    j->log_path = "/var/tmp/ocps/0123456789abcdef0123456789abcdef/ocps.log";
    j->argv = json_pack("[s, s]", "pipetask", "run");
    j->results = json_array();
    j->meta = json_pack("{s:i, s:s, s:s, s:[{s:s, s:s}]}", "seq_num", 7, "identity", "user@host", "pipeline",
                        "cpBias.yaml", "environment", "name", "JOB_ID", "value", j->id);
    return j;
}

static void free_job(engine_job *j)
{
    json_decref(j->argv);
    json_decref(j->results);
    json_decref(j->meta);
    free(j);
}

/* The result parsed; fails the test if there is none or it is not JSON. */
static json_t *result_of(const engine_job *j, size_t cap)
{
    char path[1200];
    json_t *metrics = ocps_job_metrics_path(j, path, sizeof path) ? ocps_job_metrics_load(path) : NULL;
    char *text = ocps_job_result_json(j, metrics, NULL, cap);
    json_decref(metrics);
    if (text == NULL) {
        fail_msg("no result built");
    }
    if (strlen(text) > cap) {
        fail_msg("%zu bytes, more than the cap of %zu", strlen(text), cap);
    }
    json_error_t e;
    json_t *o = json_loads(text, 0, &e);
    if (o == NULL) {
        fail_msg("not JSON (%s): %s", e.text, text);
    }
    free(text);
    return o;
}

static void full_result_has_every_field(void **state)
{
    (void)state;
    engine_job *j = new_job();
    json_t *o = result_of(j, 65536);
    assert_string_equal(json_string_value(json_object_get(o, "jobId")), j->id);
    assert_string_equal(json_string_value(json_object_get(o, "runId")), "7"); /* str(seqNum), as Python */
    assert_string_equal(json_string_value(json_object_get(o, "ownerId")), "user@host");
    json_t *params = json_object_get(o, "parameters");
    assert_int_equal(json_array_size(json_object_get(params, "command")), 2);
    assert_int_equal(json_array_size(json_object_get(params, "environment")), 1);
    assert_true(json_is_false(json_object_get(o, "truncated")));
    json_decref(o);
    free_job(j);
}

/* A job without metadata (or argv): the result is still built, with null
 * where the metadata would be. */
static void missing_metadata_gives_nulls(void **state)
{
    (void)state;
    engine_job *j = new_job();
    json_decref(j->meta);
    j->meta = NULL;
    json_decref(j->argv);
    j->argv = NULL;
    json_t *o = result_of(j, 65536);
    assert_string_equal(json_string_value(json_object_get(o, "job_id")), j->id);
    assert_true(json_is_null(json_object_get(o, "runId")));
    assert_true(json_is_null(json_object_get(o, "ownerId")));
    json_t *params = json_object_get(o, "parameters");
    assert_true(json_is_null(json_object_get(params, "command")));
    assert_true(json_is_null(json_object_get(params, "environment")));
    assert_string_equal(json_string_value(json_object_get(o, "phase")), "completed");
    json_decref(o);
    /* metadata lacking the keys */
    j->meta = json_pack("{s:s}", "pipeline", "cpBias.yaml");
    o = result_of(j, 65536);
    assert_true(json_is_null(json_object_get(o, "runId")));
    assert_true(json_is_null(json_object_get(json_object_get(o, "parameters"), "environment")));
    json_decref(o);
    free_job(j);
}

/* Text that is not UTF-8 (a file name, a message) does not lose the result. */
static void text_that_is_not_utf8_is_replaced(void **state)
{
    (void)state;
    engine_job *j = new_job();
    snprintf(j->message, sizeof j->message, "cannot run caf\xe9");
    json_array_append_new(j->results, json_string("/var/tmp/ocps/out.fits"));
    j->results_total = 1;
    /* the engine's results are JSON strings, so UTF-8; a log path need not be */
    j->log_path = "/var/tmp/\xff\xfe/ocps.log";
    json_t *o = result_of(j, 65536);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "errorSummary"), "message")),
                        "cannot run caf\xef\xbf\xbd");
    /* a URI: its bytes percent-encoded, as Path.as_uri gives them */
    assert_string_equal(json_string_value(json_object_get(o, "log")), "file:///var/tmp/%FF%FE/ocps.log");
    json_decref(o);
    free_job(j);
}

/* Result and log URIs are valid URIs whatever the file names hold: a
 * space, a newline, '%', '#', '?' and non-ASCII are percent-encoded;
 * ordinary names (Butler's, with '-', '_', '~', '+', ':') are kept. */
static void file_names_become_valid_uris(void **state)
{
    (void)state;
    engine_job *j = new_job();
    json_array_append_new(j->results, json_string("/w/a b\nc%#?.fits"));
    json_array_append_new(j->results, json_string("/w/postISRCCD_LATISS_empty~SDSSr+x:1.fits"));
    json_array_append_new(j->results, json_string("/w/caf\xc3\xa9.fits"));
    j->results_total = 3;
    json_t *o = result_of(j, 65536);
    json_t *outs = json_object_get(o, "results");
    const char *expect[] = {"file:///w/a%20b%0Ac%25%23%3F.fits",
                            "file:///w/postISRCCD_LATISS_empty~SDSSr%2Bx%3A1.fits",
                            "file:///w/caf%C3%A9.fits"};
    assert_int_equal(json_array_size(outs), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(json_string_value(json_object_get(json_array_get(outs, i), "uri")), expect[i]);
        /* and its index, as the UWS server numbers results */
        assert_int_equal(json_integer_value(json_object_get(json_array_get(outs, i), "id")), i);
    }
    json_decref(o);
    free_job(j);
}

/* Long argv and environment (execute's config and data_query are up to
 * 8 and 16 KiB, and appear in both), many outputs, a long message: every
 * cap from the smallest allowed up is kept, and the identity of the job
 * always stays. */
static void result_stays_within_its_cap(void **state)
{
    (void)state;
    engine_job *j = new_job();
    char *big = malloc(16385);
    memset(big, 'q', 16384);
    big[16384] = '\0';
    json_array_append_new(j->argv, json_string(big));
    json_array_append_new(j->argv, json_string(big));
    json_array_append_new(json_object_get(j->meta, "environment"),
                          json_pack("{s:s, s:s}", "name", "DATA_QUERY", "value", big));
    for (int i = 0; i < 2000; i++) {
        char path[128];
        snprintf(path, sizeof path, "/var/tmp/ocps/%s/out/calexp_%04d.fits", j->id, i);
        json_array_append_new(j->results, json_string(path));
    }
    j->results_total = 2000;
    memset(j->message, '"', sizeof j->message - 1); /* escaped: twice as long in JSON */
    free(big);
    const size_t caps[] = {1024, 4096, 8192, 65536, 100000, 524288};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        json_t *o = result_of(j, caps[i]);
        assert_string_equal(json_string_value(json_object_get(o, "jobId")), j->id);
        assert_string_equal(json_string_value(json_object_get(o, "reason")), "success");
        assert_int_equal(json_integer_value(json_object_get(o, "results_count")), 2000);
        bool all_listed = json_array_size(json_object_get(o, "results")) == 2000;
        assert_true(json_is_boolean(json_object_get(o, "results_truncated")));
        assert_true(json_is_true(json_object_get(o, "results_truncated")) == !all_listed);
        if (caps[i] < 65536) {
            assert_true(json_is_true(json_object_get(o, "truncated")));
        } else { /* room for the parameters and some outputs */
            assert_true(json_is_false(json_object_get(o, "truncated")));
            assert_true(json_array_size(json_object_get(o, "results")) > 0);
        }
        json_decref(o);
    }
    free_job(j);
}

/* A job of the embedded ocps-pipetask: its metrics.json in the work
 * directory gives the metrics summary, the outputs (filtered by the
 * execute's output_dataset_types) and, for a failed job, the reason. */
static void pipetask_metrics_give_summary_outputs_and_reason(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir();
    engine_job *j = new_job();
    j->workdir = dir;
    json_object_set_new(j->meta, "output_dataset_types", json_string("postISR*, bias"));
    const char *metrics =
        "{\"status\":\"succeeded\",\"summary\":{\"status\":\"succeeded\",\"outputs\":3,\"raws\":2},"
        "\"outputs\":[{\"dataset_type\":\"postISRCCD\",\"data_id\":{\"instrument\":\"LATISS\",\"exposure\":5}"
        ","
        "\"collection\":\"u/ocps/x/run\",\"path\":\"/repo/a.fits\"},"
        "{\"dataset_type\":\"quickLookPreview\",\"data_id\":{},\"collection\":\"u/ocps/x/run\",\"path\":\"/"
        "repo/a.png\"},"
        "{\"dataset_type\":\"postISRCCD\",\"data_id\":{\"exposure\":6},\"collection\":\"u/ocps/x/run\","
        "\"path\":\"/repo/b.fits\"}]}";
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    assert_int_equal(tu_write_file(path, metrics, strlen(metrics)), 0);
    json_t *o = result_of(j, 65536);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "metrics"), "raws")), 2);
    json_t *outs = json_object_get(o, "outputs");
    assert_int_equal(json_array_size(outs), 2); /* the preview is filtered out */
    json_t *first = json_array_get(outs, 0);
    assert_string_equal(json_string_value(json_object_get(first, "type")), "postISRCCD");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(first, "dataId"), "exposure")), 5);
    assert_string_equal(json_string_value(json_object_get(first, "collection")), "u/ocps/x/run");
    assert_string_equal(json_string_value(json_object_get(first, "path")), "/repo/a.fits");
    assert_int_equal(json_integer_value(json_object_get(o, "outputs_count")), 2);
    json_decref(o);
    /* a failed job: the pipetask's error after the engine's message */
    const char *failed = "{\"status\":\"failed\",\"error\":\"the data query selected no raw datasets\","
                         "\"summary\":{\"status\":\"failed\"},\"outputs\":[]}";
    assert_int_equal(tu_write_file(path, failed, strlen(failed)), 0);
    j->phase = ENGINE_ERROR;
    j->reason = ENGINE_REASON_PIPELINE_FAILED;
    j->exit_code = 1;
    snprintf(j->message, sizeof j->message, "exited with code 1");
    o = result_of(j, 65536);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "errorSummary"), "message")),
                        "exited with code 1: the data query selected no raw datasets");
    assert_int_equal(json_array_size(json_object_get(o, "outputs")), 0);
    json_decref(o);
    /* without metrics.json (a real pipetask) the shape is as before */
    unlink(path);
    o = result_of(j, 65536);
    assert_null(json_object_get(o, "metrics"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "errorSummary"), "message")),
                        "exited with code 1");
    json_decref(o);
    free_job(j);
    tu_remove_tree(dir);
    free(dir);
}

/* The final ack's summary fits an ack's result (OCPS_ACK_TEXT_MAX): a long
 * message is cut at a character, so the text stays whole JSON saying the
 * phase (an ack cuts longer text, which broke it); a simulated job shows
 * its shown id. */
static void summary_fits_an_ack(void **state)
{
    (void)state;
    engine_job *j = new_job();
    j->phase = ENGINE_ERROR;
    j->reason = ENGINE_REASON_PIPELINE_FAILED;
    j->exit_code = 2;
    size_t n = 0;
    while (n + 3 < sizeof j->message - 1) { /* "é" and "x" by turns: cuts fall inside characters too */
        n += (size_t)snprintf(j->message + n, sizeof j->message - n, "%s", n % 3 ? "x" : "\xc3\xa9");
    }
    char *text = ocps_job_summary_json(j);
    assert_non_null(text);
    print_message("  %zu bytes: %s\n", strlen(text), text);
    assert_true(strlen(text) <= OCPS_ACK_TEXT_MAX);
    json_t *o = json_loads(text, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "phase")), "error");
    const char *message = json_string_value(json_object_get(o, "message"));
    assert_non_null(message);
    assert_true(strlen(message) > 40);
    assert_int_equal(strncmp(message, j->message, strlen(message)), 0);
    json_decref(o);
    free(text);
    json_object_set_new(j->meta, "shown_id", json_string("false.yaml-0123456789abcdef0123456789abcdef"));
    text = ocps_job_summary_json(j);
    assert_true(strlen(text) <= OCPS_ACK_TEXT_MAX);
    assert_non_null(strstr(text, "\"job_id\":\"false.yaml-0123456789abcdef0123456789abcdef\""));
    free(text);
    free_job(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_result_has_every_field),
        cmocka_unit_test(missing_metadata_gives_nulls),
        cmocka_unit_test(text_that_is_not_utf8_is_replaced),
        cmocka_unit_test(file_names_become_valid_uris),
        cmocka_unit_test(result_stays_within_its_cap),
        cmocka_unit_test(summary_fits_an_ack),
        cmocka_unit_test(pipetask_metrics_give_summary_outputs_and_reason),
    };
    return cmocka_run_group_tests_name("ocps_job_result", tests, NULL, NULL);
}
