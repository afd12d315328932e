/*
 * test_ocps_uws_body: the body the CSC sends to the reference UWS server
 * (uws_api: uws-api-server): the uws_scripts command, url and ref, the six
 * variables of the Python OCPS from the job's environment, and values that
 * server's job template would not escape refused with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps/ocps_job.h"

static json_t *env_of(const char *query)
{
    return json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "name",
                     "JOB_ID", "value", "0123456789abcdef0123456789abcdef", "name", "PIPELINE_URL", "value",
                     "${CP_PIPE_DIR}/pipelines/LATISS/cpBias.yaml", "name", "BUTLER_REPO", "value", "LATISS",
                     "name", "RUN_OPTIONS", "value", "-i LATISS/raw/all -j 8", "name", "OUTPUT_GLOB", "value",
                     "*", "name", "DATA_QUERY", "value", query, "name", "OUTPUT_COLLECTION", "value",
                     "u/ocps/0123");
}

static const char *value_of(json_t *env, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0) {
            return json_string_value(json_object_get(e, "value"));
        }
    }
    return NULL;
}

static void reference_body(void **state)
{
    (void)state;
    char err[256];
    json_t *env = env_of("instrument='LATISS' AND exposure IN (1, 2)");
    json_t *body = ocps_job_uws_reference_body(env, err, sizeof err);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "command")),
                        "cd $JOB_SOURCE_DIR && bash bin/pipetask.sh");
    assert_string_equal(json_string_value(json_object_get(body, "url")),
                        "https://github.com/lsst-dm/uws_scripts");
    assert_string_equal(json_string_value(json_object_get(body, "commit_ref")), "main");
    json_t *e = json_object_get(body, "environment");
    assert_int_equal(json_array_size(e), 6);
    assert_string_equal(value_of(e, "IMAGE_TAG"), ""); /* no version: empty, as the Python OCPS sends it */
    assert_string_equal(value_of(e, "PIPELINE_URL"), "${CP_PIPE_DIR}/pipelines/LATISS/cpBias.yaml");
    assert_string_equal(value_of(e, "BUTLER_REPO"), "LATISS");
    assert_string_equal(value_of(e, "RUN_OPTIONS"), "-i LATISS/raw/all -j 8");
    assert_string_equal(value_of(e, "OUTPUT_GLOB"), "*");
    assert_string_equal(value_of(e, "DATA_QUERY"), "instrument='LATISS' AND exposure IN (1, 2)");
    assert_null(value_of(e, "JOB_ID")); /* the server sets its own */
    json_decref(body);
    json_decref(env);
}

static void unescaped_values_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"a=\"x\"", "a\\b", "line\nbreak", "cr\r", "{{ x }}", "{% if %}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        json_t *env = env_of(bad[i]);
        assert_null(ocps_job_uws_reference_body(env, err, sizeof err));
        assert_non_null(strstr(err, "DATA_QUERY cannot be sent to uws-api-server"));
        json_decref(env);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_body),
        cmocka_unit_test(unescaped_values_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
