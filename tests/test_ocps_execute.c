/*
 * test_ocps_execute: the execute fields are checked before any job exists
 * (csc/app/ocps_job.h). Output patterns (output_dataset_types, and the
 * configured output_glob) must stay inside the job's directory: a corpus
 * of escapes is refused with a message naming the field, the pattern and
 * the rule; ordinary patterns pass. The number of processes that
 * execute.config asks pipetask for (-j N, -jN, --processes N,
 * --processes=N) is what a Slurm job asks CPUs for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ocps/ocps_job.h"

/* The fields of an execute with this pipeline, every other one empty. */
static ocps_execute fields(const char *pipeline)
{
    return (ocps_execute){.pipeline = pipeline,
                          .version = "",
                          .config = "",
                          .data_query = "",
                          .prereq_jobs = "",
                          .output_dataset_types = ""};
}

static int validate_outputs(const char *outputs, char *err, size_t errlen)
{
    ocps_execute x = fields("cpBias.yaml");
    x.output_dataset_types = outputs;
    err[0] = '\0';
    return ocps_execute_validate(&x, err, errlen);
}

static void refused(const char *outputs, const char *expected)
{
    char err[512];
    if (validate_outputs(outputs, err, sizeof err) == 0) {
        fail_msg("output_dataset_types '%s' was accepted", outputs);
    }
    print_message("  %-28s -> %s\n", outputs, err);
    assert_string_equal(err, expected);
}

#define INSIDE "; output patterns must stay inside the job's directory"
#define ABSOLUTE "; output patterns are relative to the job's directory"

static void escapes_are_refused(void **state)
{
    (void)state;
    refused("../../../../etc/passwd",
            "execute.output_dataset_types: '../../../../etc/passwd' has a '..' component" INSIDE);
    refused("../*", "execute.output_dataset_types: '../*' has a '..' component" INSIDE);
    refused("..", "execute.output_dataset_types: '..' has a '..' component" INSIDE);
    refused("a/../../x", "execute.output_dataset_types: 'a/../../x' has a '..' component" INSIDE);
    refused("sub/..", "execute.output_dataset_types: 'sub/..' has a '..' component" INSIDE);
    refused("x,../../etc/host*",
            "execute.output_dataset_types: '../../etc/host*' has a '..' component" INSIDE);
    refused("*.fits, ../B/*", "execute.output_dataset_types: '../B/*' has a '..' component" INSIDE);
    refused("/etc/passwd", "execute.output_dataset_types: '/etc/passwd' is an absolute path" ABSOLUTE);
    refused("x, /etc/host*", "execute.output_dataset_types: '/etc/host*' is an absolute path" ABSOLUTE);
    refused("\\/etc/passwd", "execute.output_dataset_types: '\\/etc/passwd' is an absolute path" ABSOLUTE);
    /* glob characters that match ".." (glob matches a leading '.' only
     * explicitly, so "*" and "?*" never do) */
    refused(".*", "execute.output_dataset_types: '.*' has a component ('.*') that matches '..'" INSIDE);
    refused(".*/*", "execute.output_dataset_types: '.*/*' has a component ('.*') that matches '..'" INSIDE);
    refused("x/.?/y",
            "execute.output_dataset_types: 'x/.?/y' has a component ('.?') that matches '..'" INSIDE);
    refused("\\.\\./*",
            "execute.output_dataset_types: '\\.\\./*' has a component ('\\.\\.') that matches '..'" INSIDE);
    refused(".[.]/*",
            "execute.output_dataset_types: '.[.]/*' has a component ('.[.]') that matches '..'" INSIDE);
    refused("..*", "execute.output_dataset_types: '..*' has a component ('..*') that matches '..'" INSIDE);
}

static void ordinary_patterns_pass(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "",    "*.fits", "*.fits, *.json", "sub/*.fits", "./a.fits", "*/*", "?*",     "[.].",
        "*..", "a..b",   ".hidden.fits",   ".h*",        "x/./y",    "..a", "sub//x", " *.fits , ",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char err[512];
        if (validate_outputs(ok[i], err, sizeof err) != 0) {
            fail_msg("'%s' refused: %s", ok[i], err);
        }
    }
}

/* The configured output_glob follows the same rule, named as such. */
static void configured_output_glob(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(ocps_output_globs_check("output_glob", "*.fits", err, sizeof err), 0);
    assert_int_equal(ocps_output_globs_check("output_glob", "../*", err, sizeof err), -1);
    assert_string_equal(err, "output_glob: '../*' has a '..' component" INSIDE);
}

/* A field that is not UTF-8 says where. */
static void bad_utf8_says_where(void **state)
{
    (void)state;
    ocps_execute x = fields("cp\xc3(.yaml");
    char err[256];
    assert_int_equal(ocps_execute_validate(&x, err, sizeof err), -1);
    assert_string_equal(err, "execute.pipeline: is not valid UTF-8 at byte 2");
}

/* Tab, newline and CR pass in config and data_query (and become spaces);
 * every other control character, and any in the other fields, is refused
 * naming the field, the character and where it is. */
static void control_characters(void **state)
{
    (void)state;
    char err[256];
    ocps_execute x = fields("cpBias.yaml");
    x.config = "-j 2\t--register-dataset-types\r\n";
    x.data_query = "instrument='LATISS'\nAND exposure IN (1, 2)\n";
    assert_int_equal(ocps_execute_validate(&x, err, sizeof err), 0);
    char config[8193];
    char query[16385];
    ocps_execute_flatten(&x, config, query);
    assert_string_equal(x.config, "-j 2 --register-dataset-types  ");
    assert_string_equal(x.data_query, "instrument='LATISS' AND exposure IN (1, 2) ");
    static const struct {
        int field; /* 0 config, 1 data_query, 2 version, 3 output_dataset_types */
        const char *value;
        const char *message;
    } refused[] = {
        {1, "instrument='LATISS'\x1b[2J",
         "execute.data_query: control character 0x1b at byte 19 is not allowed"},
        {0, "-j 2\x01", "execute.config: control character 0x01 at byte 4 is not allowed"},
        {2, "w_2024_01\n", "execute.version: control character 0x0a at byte 9 is not allowed"},
        {3, "*.fits\t", "execute.output_dataset_types: control character 0x09 at byte 6 is not allowed"},
    };
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
        x = fields("cpBias.yaml");
        const char **slot[] = {&x.config, &x.data_query, &x.version, &x.output_dataset_types};
        *slot[refused[k].field] = refused[k].value;
        assert_int_equal(ocps_execute_validate(&x, err, sizeof err), -1);
        assert_string_equal(err, refused[k].message);
    }
    /* a backslash before a line break joins the lines, as a shell and YAML do */
    x = fields("cpBias.yaml");
    x.config = "-j 2 \\\n-c isr:doDark=False \\\r\n--register-dataset-types";
    assert_int_equal(ocps_execute_validate(&x, err, sizeof err), 0);
    ocps_execute_flatten(&x, config, query);
    assert_string_equal(x.config, "-j 2 -c isr:doDark=False --register-dataset-types");
    const char *plain = "-j 2 --register-dataset-types"; /* without any: left as it is */
    x = fields("cpBias.yaml");
    x.config = plain;
    ocps_execute_flatten(&x, config, query);
    assert_ptr_equal(x.config, plain);
}

/* A pipeline that starts with '-' would be an option after -p. */
static void pipeline_option_refused(void **state)
{
    (void)state;
    ocps_execute x = fields("--help");
    char err[256];
    assert_int_equal(ocps_execute_validate(&x, err, sizeof err), -1);
    assert_string_equal(err, "execute.pipeline: must not start with '-' (a pipeline file, not an option)");
    x.pipeline = "pipelines/-odd.yaml"; /* inside a path: a file name */
    assert_int_equal(ocps_execute_validate(&x, err, sizeof err), 0);
}

/* plan.processes for an execute whose config is `config`. */
static int processes_of(const char *config)
{
    ocps_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.pipetask, sizeof cfg.pipetask, "pipetask");
    cfg.command = json_pack("[s, s]", "{pipetask}", "{config_words}");
    ocps_execute x = fields("cpBias.yaml");
    x.config = config;
    ocps_job_plan plan;
    char err[256];
    int rc = ocps_job_plan_build(&cfg, &x, "0123456789abcdef0123456789abcdef", &plan, err, sizeof err);
    assert_int_equal(rc, 0);
    int n = plan.processes;
    ocps_job_plan_free(&plan);
    json_decref(cfg.command);
    return n;
}

static void processes_from_config(void **state)
{
    (void)state;
    assert_int_equal(processes_of(""), 0);
    assert_int_equal(processes_of("-j 8 --register-dataset-types"), 8);
    assert_int_equal(processes_of("-j4"), 4);
    assert_int_equal(processes_of("--processes 3"), 3);
    assert_int_equal(processes_of("--processes=6"), 6);
    assert_int_equal(processes_of("-j 2 -j 5"), 5); /* the last one, as pipetask reads it */
    assert_int_equal(processes_of("-j x"), 0);
    assert_int_equal(processes_of("-j 0"), 0);
    assert_int_equal(processes_of("-j"), 0);
    assert_int_equal(processes_of("--jobs 9"), 0);
}

/* The plan's words of list v (NULL: none) joined by '|'. */
static void joined(char *const *v, char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%s", i > 0 ? "|" : "", v[i]);
    }
}

/* The retrieval step (retrieve_command, the Rubin job script's butler
 * retrieve-artifacts): a --dataset-type word pair per glob of
 * output_dataset_types (else output_glob; none when empty), the capture
 * glob "*"; with the embedded ocps-pipetask its "butler" is the embedded
 * ocps-butler (none known: no step); with executor uws on ocps-engine
 * too (its extension then_argv); none on uws-api-server or with an empty
 * retrieve_command (the globs are then file names). */
static void retrieval_step_in_the_plan(void **state)
{
    (void)state;
    ocps_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.pipetask, sizeof cfg.pipetask, "pipetask");
    snprintf(cfg.butler, sizeof cfg.butler, "LATISS");
    snprintf(cfg.output_glob, sizeof cfg.output_glob, "*");
    cfg.command = json_pack("[s, s]", "{pipetask}", "run");
    cfg.retrieve_command = json_pack("[s, s, s, s, s, s, s, s, s, s]", "butler", "retrieve-artifacts",
                                     "--collections", "{output_run}", "{dataset_type_options}", "--transfer",
                                     "auto", "--no-preserve-path", "{butler}", ".");
    const char *id = "0123456789abcdef0123456789abcdef";
    ocps_execute x = fields("cpBias.yaml");
    x.output_dataset_types = " verify*Stats ,bias";
    ocps_job_plan plan;
    char err[256];
    char text[1024];
    assert_int_equal(ocps_job_plan_build(&cfg, &x, id, &plan, err, sizeof err), 0);
    joined(plan.then_argv, text, sizeof text);
    assert_string_equal(text,
                        "butler|retrieve-artifacts|--collections|u/ocps/0123456789abcdef0123456789abcdef/run|"
                        "--dataset-type|verify*Stats|--dataset-type|bias|--transfer|auto|"
                        "--no-preserve-path|LATISS|.");
    joined(plan.globs, text, sizeof text);
    assert_string_equal(text, "*");
    ocps_job_plan_free(&plan);

    x.output_dataset_types = ""; /* the configured output_glob */
    assert_int_equal(ocps_job_plan_build(&cfg, &x, id, &plan, err, sizeof err), 0);
    joined(plan.then_argv, text, sizeof text);
    assert_non_null(strstr(text, "|--dataset-type|*|--transfer|"));
    ocps_job_plan_free(&plan);
    cfg.output_glob[0] = '\0'; /* none: every type */
    assert_int_equal(ocps_job_plan_build(&cfg, &x, id, &plan, err, sizeof err), 0);
    joined(plan.then_argv, text, sizeof text);
    assert_null(strstr(text, "--dataset-type"));
    ocps_job_plan_free(&plan);

    x.output_dataset_types = "bias";
    cfg.embedded_pipetask = true; /* its "butler" is the embedded ocps-butler */
    snprintf(cfg.embedded_butler, sizeof cfg.embedded_butler, "/opt/ocps/bin/ocps-butler");
    assert_int_equal(ocps_job_plan_build(&cfg, &x, id, &plan, err, sizeof err), 0);
    joined(plan.then_argv, text, sizeof text);
    assert_string_equal(text,
                        "/opt/ocps/bin/ocps-butler|retrieve-artifacts|--collections|"
                        "u/ocps/0123456789abcdef0123456789abcdef/run|--dataset-type|bias|--transfer|auto|"
                        "--no-preserve-path|LATISS|.");
    ocps_job_plan_free(&plan);
    cfg.embedded_butler[0] = '\0'; /* none known: no retrieval */
    assert_int_equal(ocps_job_plan_build(&cfg, &x, id, &plan, err, sizeof err), 0);
    assert_null(plan.then_argv);
    joined(plan.globs, text, sizeof text);
    assert_string_equal(text, "bias");
    ocps_job_plan_free(&plan);
    cfg.embedded_pipetask = false;
    cfg.executor = OCPS_EXECUTOR_UWS; /* ocps-engine: sent as its extension then_argv */
    assert_int_equal(ocps_job_plan_build(&cfg, &x, id, &plan, err, sizeof err), 0);
    joined(plan.then_argv, text, sizeof text);
    assert_string_equal(text,
                        "butler|retrieve-artifacts|--collections|"
                        "u/ocps/0123456789abcdef0123456789abcdef/run|--dataset-type|bias|--transfer|auto|"
                        "--no-preserve-path|LATISS|.");
    joined(plan.globs, text, sizeof text);
    assert_string_equal(text, "*");
    ocps_job_plan_free(&plan);
    cfg.uws_reference = true; /* uws-api-server: its job script retrieves */
    assert_int_equal(ocps_job_plan_build(&cfg, &x, id, &plan, err, sizeof err), 0);
    assert_null(plan.then_argv);
    ocps_job_plan_free(&plan);
    cfg.uws_reference = false;
    cfg.executor = OCPS_EXECUTOR_LOCAL;
    json_array_clear(cfg.retrieve_command);
    assert_int_equal(ocps_job_plan_build(&cfg, &x, id, &plan, err, sizeof err), 0);
    assert_null(plan.then_argv);
    joined(plan.globs, text, sizeof text);
    assert_string_equal(text, "bias");
    ocps_job_plan_free(&plan);
    json_decref(cfg.command);
    json_decref(cfg.retrieve_command);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(escapes_are_refused),    cmocka_unit_test(ordinary_patterns_pass),
        cmocka_unit_test(configured_output_glob), cmocka_unit_test(bad_utf8_says_where),
        cmocka_unit_test(control_characters),     cmocka_unit_test(pipeline_option_refused),
        cmocka_unit_test(processes_from_config),  cmocka_unit_test(retrieval_step_in_the_plan),
    };
    return cmocka_run_group_tests_name("ocps_execute", tests, NULL, NULL);
}
