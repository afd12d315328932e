/*
 * test_ocps_uws_body: the body the CSC sends to the reference UWS server
 * (uws_api: uws-api-server): the uws_scripts command, url and ref, the six
 * variables of the Python OCPS from the job's environment, and values that
 * server's job template would not escape refused with a message. Its job
 * script passes RUN_OPTIONS unquoted (bash splits it at blanks): the
 * config's words are joined by one blank, and a word that splitting would
 * not keep whole (a blank inside, or empty) is refused, so that no option
 * reaches pipetask unchecked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
    ocps_job_plan plan = {.environment = env};
    json_t *body = ocps_job_uws_reference_body(&plan, err, sizeof err);
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
        ocps_job_plan plan = {.environment = env};
        assert_null(ocps_job_uws_reference_body(&plan, err, sizeof err));
        assert_non_null(strstr(err, "DATA_QUERY cannot be sent to uws-api-server"));
        json_decref(env);
    }
}

/* Characters PyYAML refuses in the reference's job template (C0 and C1
 * controls, DEL, U+FFFE/U+FFFF) or folds into a blank (U+0085, U+2028,
 * U+2029) are refused, naming the character; tab and other non-ASCII
 * text pass. */
static void yaml_unsafe_values_refused(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        const char *code;
    } bad[] = {{"a\x01"
                "b",
                "U+0001"},
               {"del\x7f", "U+007F"},
               {"c1\xc2\x90", "U+0090"},
               {"nel\xc2\x85", "U+0085"},
               {"ls\xe2\x80\xa8", "U+2028"},
               {"ps\xe2\x80\xa9", "U+2029"},
               {"nc\xef\xbf\xbe", "U+FFFE"},
               {"nc\xef\xbf\xbf", "U+FFFF"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        json_t *env = env_of(bad[i].value);
        ocps_job_plan plan = {.environment = env};
        assert_null(ocps_job_uws_reference_body(&plan, err, sizeof err));
        assert_non_null(strstr(err, "DATA_QUERY cannot be sent to uws-api-server"));
        assert_non_null(strstr(err, bad[i].code));
        json_decref(env);
    }
    static const char *const good[] = {"tab\there", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xad",
                                       "nbsp\xc2\xa0"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char err[256] = "";
        json_t *env = env_of(good[i]);
        ocps_job_plan plan = {.environment = env};
        json_t *body = ocps_job_uws_reference_body(&plan, err, sizeof err);
        assert_non_null(body);
        assert_string_equal(value_of(json_object_get(body, "environment"), "DATA_QUERY"), good[i]);
        json_decref(body);
        json_decref(env);
    }
}

/* The plan of an execute with this config (-c, -j and
 * --register-dataset-types allowed), its reference body into *body (NULL
 * if refused, err says why). */
/* The reference server's body for an execute with this config (NULL and
 * err when refused). */
static json_t *body_of(const char *config, char *err, size_t errlen)
{
    ocps_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.pipetask, sizeof cfg.pipetask, "pipetask");
    snprintf(cfg.butler, sizeof cfg.butler, "LATISS");
    snprintf(cfg.input_collection, sizeof cfg.input_collection, "LATISS/raw/all");
    cfg.command = json_pack("[s, s]", "{pipetask}", "{config_words}");
    cfg.allowed_options = json_pack("[s, s, s]", "-c", "-j", "--register-dataset-types");
    ocps_execute x = {.pipeline = "cpBias.yaml",
                      .version = "",
                      .config = config,
                      .data_query = "",
                      .prereq_jobs = "",
                      .output_dataset_types = ""};
    ocps_job_plan plan;
    assert_int_equal(ocps_job_plan_build(&cfg, &x, "0123456789abcdef0123456789abcdef", &plan, err, errlen),
                     0);
    json_t *body = ocps_job_uws_reference_body(&plan, err, errlen);
    ocps_job_plan_free(&plan);
    json_decref(cfg.command);
    json_decref(cfg.allowed_options);
    return body;
}

/* Quotes of the config are the CSC's: RUN_OPTIONS carries the words, which
 * the script's splitting gives back one by one. A config without quotes
 * goes byte for byte as the Python OCPS sends it (two blanks stay two). */
static void run_options_are_the_words(void **state)
{
    (void)state;
    static const struct {
        const char *config;
        const char *run_options;
    } cases[] = {
        /* no quotes: byte for byte what the Python OCPS sends */
        {"-j 8 --register-dataset-types  -c isr:doBias=False ",
         "-i LATISS/raw/all -j 8 --register-dataset-types  -c isr:doBias=False "},
        /* quotes: the checked words joined by single blanks */
        {"-j 8 -c \"isr:doBias=False\" -c 'isr:x=[1,2]'",
         "-i LATISS/raw/all -j 8 -c isr:doBias=False -c isr:x=[1,2]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        json_t *body = body_of(cases[i].config, err, sizeof err);
        assert_non_null(body);
        assert_string_equal(value_of(json_object_get(body, "environment"), "RUN_OPTIONS"),
                            cases[i].run_options);
        json_decref(body);
    }
}

/* A quoted blank would let an option past allowed_options (bash splits
 * $RUN_OPTIONS where the CSC saw one value); an empty word would vanish
 * and take the next argument as the option's value. Both refused, named;
 * the argv path (ocps-engine, no shell) is not affected. */
static void words_split_by_the_script_refused(void **state)
{
    (void)state;
    static const struct {
        const char *config;
        const char *word;
    } bad[] = {
        {"-c 'isr:a=1 --prune-replaced=purge '", "'isr:a=1 --prune-replaced=purge '"},
        {"-c \"a=1\t--extend-run\"", "'a=1\t--extend-run'"},
        {"-j 2 -c ''", "''"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256];
        assert_null(body_of(bad[i].config, err, sizeof err));
        char want[200];
        snprintf(want, sizeof want, "execute.config: the word %s cannot be sent to uws-api-server",
                 bad[i].word);
        assert_non_null(strstr(err, want));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reference_body),
        cmocka_unit_test(unescaped_values_refused),
        cmocka_unit_test(yaml_unsafe_values_refused),
        cmocka_unit_test(run_options_are_the_words),
        cmocka_unit_test(words_split_by_the_script_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
