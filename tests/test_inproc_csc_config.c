/*
 * test_inproc_csc_config: start(configurationOverride) failing on the OCPS
 * CSC on its own thread, over inproc: a file that does not exist, YAML
 * that does not parse or is not a mapping, a schema violation, a name
 * reserved for the site files, and a configuration the application
 * refuses (no block for its index, an executor not built in, a string
 * longer than its bound or holding a NUL byte). Each time
 * the command fails with salobj's message, the CSC logs it and stays in
 * STANDBY without configurationApplied, and a good start then works. A
 * file read at a git ref is read whole, as from the working tree. And a
 * CSC stopped while a start reads its configuration answers it not.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "ocps_test_iface.h"
#include "inproc/sal_inproc.h"
#include "git_repo.h"
#include "inproc_csc.h"
#include "ocps/ocps_interface.h"
#include "ocps/sal_csc.h"
#include "ocps/yaml_json.h"
#include "sal_fixture.h"
#include "test_util.h"

typedef struct ctx {
    fx f;
    csc_thread *csc;
    char *root;
    char dir[1024];  /* root/OCPS/v4 */
    char real[1024]; /* its real path, as messages give it */
} ctx;

static void write_config(ctx *c, const char *name, const char *text)
{
    char *p = tu_path_join(c->dir, name);
    assert_int_equal(tu_write_file(p, text, strlen(text)), 0);
    free(p);
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    c->root = ct_ocps_config(FAKE_PIPETASK, NULL);
    snprintf(c->dir, sizeof c->dir, "%s/OCPS/v4", c->root);
    char *real = realpath(c->dir, NULL);
    snprintf(c->real, sizeof c->real, "%s", real);
    free(real);
    write_config(c, "broken.yaml", "max_concurrent_jobs: [1, 2\n");
    write_config(c, "list.yaml", "- a\n- b\n");
    write_config(c, "typo.yaml",
                 "instances:\n  - sal_index: 1\n    instance: LATISS\n    url: http://x/\n"
                 "    pol_interval: 1\n    butler: LATISS\n    output_glob: '*'\n");
    write_config(c, "other.yaml",
                 "instances:\n  - sal_index: 2\n    instance: LSSTComCam\n    url: http://x/\n"
                 "    poll_interval: 1\n    butler: LSSTComCam\n    output_glob: '*'\n");
    write_config(c, "uws.yaml",
                 "executor: uws\ninstances:\n  - sal_index: 1\n    instance: LATISS\n    url: file:///etc\n"
                 "    poll_interval: 1\n    butler: LATISS\n    output_glob: '*'\n");
    write_config(c, "slurm.yaml", "executor: slurm\nslurm:\n  extra_options: ['--uid=0']\n");
    write_config(c, "fast.yaml", "max_concurrent_jobs: 2\n");
    char text[1400];
    snprintf(text, sizeof text,
             "instances:\n  - sal_index: 1\n    instance: LATISS\n    url: http://x/\n"
             "    poll_interval: 1\n    butler: /repo/%01100d\n    output_glob: '*'\n",
             0);
    write_config(c, "long.yaml", text);
    write_config(c, "nul.yaml", "work_root: \"/tmp/a\\0b\"\n");
    write_config(c, "date.yaml",
                 "metadata:\n  date: 2024-01-01\ninstances:\n  - sal_index: 1\n    instance: LATISS\n"
                 "    url: http://x/\n    poll_interval: 1\n    butler: LATISS\n"
                 "    input_collection: 2024-01-01\n    output_glob: '*'\n");
    write_config(c, "quoted_date.yaml",
                 "metadata:\n  date: 2024-01-01\ninstances:\n  - sal_index: 1\n    instance: LATISS\n"
                 "    url: http://x/\n    poll_interval: 1\n    butler: LATISS\n"
                 "    input_collection: '2024-01-01'\n    output_glob: '*'\n");
    write_config(c, "floats.yaml",
                 "max_concurrent_jobs: 3.0\nmax_waiting_jobs: 40.0\ninstances:\n  - sal_index: 1.0\n"
                 "    instance: LATISS\n    url: http://x/\n    poll_interval: 1\n    butler: LATISS\n"
                 "    output_glob: '*'\n");
    if (fx_open_transport(&c->f, ocps_test_component(), 1, NULL, &sal_inproc_transport) != 0) {
        return -1;
    }
    ct_options o;
    ct_options_ocps(&o, ocps_test_component(), OCPS_JOB_RUNNER, c->dir);
    c->csc = ct_start(&o);
    return c->csc != NULL && fx_wait_event(&c->f, "logevent_summaryState", 0, 10) >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    ctx *c = *state;
    int code = c->csc != NULL ? ct_stop(c->csc) : 0;
    int rc = fx_close(&c->f);
    tu_remove_tree(c->root);
    free(c->root);
    free(c);
    return code == 0 && sal_inproc_endpoints() == 0 ? rc : -1;
}

static const char *name_of(const fx *f, size_t i)
{
    return f->comp->topics[f->records[i].topic].sal_name;
}

static const char *str_field(const fx *f, size_t i, const char *field)
{
    return sal_sample_get_string(&f->comp->topics[f->records[i].topic], f->records[i].sample, field);
}

/* start with `override` fails with `expect` (the whole result, or its
 * beginning when prefix); the CSC logs why and stays in STANDBY. */
static void start_fails(ctx *c, const char *override, const char *expect, bool prefix)
{
    fx *f = &c->f;
    char result[2048];
    size_t mark = f->nrecords;
    int ack = fx_command_str(f, "start", "configurationOverride", override, 10, result, sizeof result);
    if (ack != SAL_CMD_FAILED) {
        fail_msg("start %s: %s (%s)", override, sal_ack_name(ack), result);
    }
    if (prefix ? strncmp(result, expect, strlen(expect)) != 0 : strcmp(result, expect) != 0) {
        fail_msg("start %s:\n got      %s\n expected %s%s", override, result, expect, prefix ? "..." : "");
    }
    /* everything the CSC wrote for the command was read before its ack */
    char logged[2100];
    snprintf(logged, sizeof logged, "begin_start failed; remaining in state <State.STANDBY: 5>: %s",
             result + strlen("Failed: "));
    bool found = false;
    for (size_t i = mark; i < f->nrecords; i++) {
        assert_string_not_equal(name_of(f, i), "logevent_summaryState");
        assert_string_not_equal(name_of(f, i), "logevent_configurationApplied");
        if (strcmp(name_of(f, i), "logevent_logMessage") == 0 && fx_i32(f, i, "level") == SAL_LOG_ERROR &&
            strcmp(str_field(f, i, "message"), logged) == 0) {
            found = true;
        }
    }
    if (!found) {
        fail_msg("no ERROR logMessage \"%s\"", logged);
    }
    assert_int_equal(ct_state(c->csc), SAL_STATE_STANDBY);
}

/* A good start still works, and applies what it was given. */
static void start_works(ctx *c)
{
    fx *f = &c->f;
    char result[2048];
    size_t mark = f->nrecords;
    assert_int_equal(
        fx_command_str(f, "start", "configurationOverride", "fast.yaml", 10, result, sizeof result),
        SAL_CMD_COMPLETE);
    long applied = fx_wait_event(f, "logevent_configurationApplied", mark, 5);
    assert_true(applied >= 0);
    assert_string_equal(str_field(f, (size_t)applied, "configurations"), "_init.yaml,_test.yaml,fast.yaml");
    assert_int_equal(ct_state(c->csc), SAL_STATE_DISABLED);
}

static void missing_file_or_reserved_name(void **state)
{
    ctx *c = *state;
    char expect[2048];
    snprintf(expect, sizeof expect, "Failed: Config file '%s/nosuch.yaml' does not exist", c->real);
    start_fails(c, "nosuch.yaml", expect, false);
    start_fails(c, "_init.yaml",
                "Failed: configurationOverride filename='_init.yaml' must not start with '_'", false);
    /* nothing outside the configuration directory */
    start_fails(c, "../../../etc/hostname",
                "Failed: configurationOverride filename='../../../etc/hostname' must name a file of the "
                "configuration directory",
                false);
    start_fails(
        c, "/etc/hostname",
        "Failed: configurationOverride filename='/etc/hostname' must name a file of the configuration "
        "directory",
        false);
    /* a git ref is never an option of git show (--output=FILE would write) */
    start_fails(c, "local.yaml:--output=/tmp/x",
                "Failed: configurationOverride git ref '--output=/tmp/x' must not start with '-'", false);
    start_works(c);
}

static void yaml_that_is_not_a_mapping(void **state)
{
    ctx *c = *state;
    char expect[2048];
    snprintf(expect, sizeof expect, "Failed: Could not parse data in %s/broken.yaml as a dict: ", c->real);
    start_fails(c, "broken.yaml", expect, true);
    snprintf(expect, sizeof expect, "Failed: Could not parse data in %s/list.yaml as a dict: ", c->real);
    start_fails(c, "list.yaml", expect, true);
    start_works(c);
}

static void schema_violation(void **state)
{
    ctx *c = *state;
    start_fails(c, "typo.yaml",
                "Failed: Configuration failed validation: <ValidationError: \"Additional properties are not "
                "allowed ('pol_interval' was unexpected)\"> at /instances/0",
                false);
    start_works(c);
}

/* An unquoted date is a date, not a string, as in salobj (PyYAML makes it
 * a datetime): refused where a string is wanted, with a message saying to
 * quote it; quoted it is a string, and metadata (dropped) may hold dates. */
static void unquoted_dates_are_not_strings(void **state)
{
    ctx *c = *state;
    start_fails(
        c, "date.yaml",
        "Failed: Configuration failed validation: <ValidationError: \"2024-01-01 is not of type 'string': "
        "an unquoted YAML date or time is a date, not a string (as for salobj); quote it: "
        "'2024-01-01'\"> at /instances/0/input_collection",
        false);
    char result[2048];
    assert_int_equal(fx_command_str(&c->f, "start", "configurationOverride", "quoted_date.yaml", 10, result,
                                    sizeof result),
                     SAL_CMD_COMPLETE);
}

static void configuration_the_application_refuses(void **state)
{
    ctx *c = *state;
    start_fails(c, "other.yaml", "Failed: No configuration found for sal_index=1", false);
    start_fails(c, "uws.yaml",
                "Failed: executor uws: url must be an http:// or https:// URL, not \"file:///etc\"", false);
    start_fails(c, "slurm.yaml", "Failed: slurm.extra_options[0]: sbatch option '--uid' is not allowed",
                false);
    /* a value is used whole or refused, never cut */
    start_fails(c, "long.yaml",
                "Failed: instances[0].butler: 1106 bytes is longer than the limit of 1023 bytes", false);
    start_fails(c, "nul.yaml", "Failed: work_root: a NUL byte (\\0) at byte 6 is not allowed", false);
    start_works(c);
}

/* Whole numbers written as floats (3.0) are integers to the schema, as to
 * salobj's jsonschema, and are used as such, not read as 0 (the index's
 * block not found, no concurrency, no waiting limit). */
static void whole_number_floats_are_used(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    char result[2048];
    size_t mark = f->nrecords;
    assert_int_equal(
        fx_command_str(f, "start", "configurationOverride", "floats.yaml", 10, result, sizeof result),
        SAL_CMD_COMPLETE);
    bool found = false;
    for (size_t i = mark; i < f->nrecords; i++) {
        if (strcmp(name_of(f, i), "logevent_logMessage") == 0 &&
            strstr(str_field(f, i, "message"), "max_concurrent_jobs=3, max_waiting_jobs=40,") != NULL) {
            found = true;
        }
    }
    assert_true(found);
}

/* --- files read at a git ref --- */

/* start with `override` fails; its result into result. */
static void start_result(ctx *c, const char *override, char *result, size_t len)
{
    int ack = fx_command_str(&c->f, "start", "configurationOverride", override, 30, result, len);
    if (ack != SAL_CMD_FAILED) {
        fail_msg("start %s: %s (%s)", override, sal_ack_name(ack), result);
    }
    assert_int_equal(ct_state(c->csc), SAL_STATE_STANDBY);
}

/* A file read at a git ref is read whole, as from the working tree: the
 * same bytes (a NUL byte, final newlines kept by a |+ block scalar, more
 * than 4 MiB) give the same verdict and message, never a cut file. */
static void git_ref_reads_the_file_whole(void **state)
{
    ctx *c = *state;
    static const char nul[] = "max_concurrent_jobs: 2\n\0# after a NUL byte\n";
    char *p = tu_path_join(c->dir, "nul.yaml");
    assert_int_equal(tu_write_file(p, nul, sizeof nul - 1), 0);
    free(p);
    write_config(c, "keep.yaml",
                 "instances:\n  - sal_index: 1\n    instance: |+\n      LATISS\n\n    url: http://x/\n"
                 "    poll_interval: 1\n    butler: LATISS\n    output_glob: '*'\n");
    size_t big_len = YAML_JSON_MAX_INPUT + 10;
    char *big = malloc(big_len);
    memset(big, 'x', big_len);
    memcpy(big, "max_concurrent_jobs: 2\n# ", 25);
    big[big_len - 1] = '\n';
    p = tu_path_join(c->dir, "big.yaml");
    assert_int_equal(tu_write_file(p, big, big_len), 0);
    free(p);
    free(big);
    git_repo_run(c->dir, "init", "-q", NULL);
    git_repo_run(c->dir, "add", "-A", NULL);
    git_repo_run(c->dir, "commit", "-qm", "configuration");
    static const char *const names[] = {"nul.yaml", "keep.yaml", "big.yaml"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char from_tree[2048], from_git[2048], at_head[64];
        start_result(c, names[i], from_tree, sizeof from_tree);
        snprintf(at_head, sizeof at_head, "%s:HEAD", names[i]);
        start_result(c, at_head, from_git, sizeof from_git);
        print_message("%s: %s\n", names[i], from_git);
        assert_string_equal(from_git, from_tree);
    }
    char result[2048];
    assert_int_equal(
        fx_command_str(&c->f, "start", "configurationOverride", "fast.yaml:HEAD", 30, result, sizeof result),
        SAL_CMD_COMPLETE);
}

/* --- stopped while a start reads its configuration --- */

typedef struct start_acks {
    int n;
    int last;
    bool done;
} start_acks;

static void on_start_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)result;
    (void)timeout;
    start_acks *s = arg;
    s->n++;
    s->last = ack;
    s->done = s->done || final;
}

static bool start_in_progress(fx *f, void *arg)
{
    (void)f;
    return ((start_acks *)arg)->n > 0;
}

static bool ackcmd_writer_gone(fx *f, void *arg)
{
    (void)arg;
    int t = sal_component_find_topic(f->comp, "ackcmd");
    return sal_matched(sal_remote_sal(f->remote), t, false) == 0;
}

static void stop_while_start_reads_configuration(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    ct_pool_hold h;
    ct_pool_fill(&h, &f->loop);
    start_acks acks = {0};
    char err[256];
    void *s = sal_remote_new_command(f->remote, "start");
    assert_int_equal(
        sal_remote_command(f->remote, "start", s, 30, on_start_ack, &acks, NULL, err, sizeof err), 0);
    sal_sample_free(&f->comp->topics[sal_remote_command_topic(f->remote, "start")], s);
    assert_true(fx_run_until(f, start_in_progress, &acks, 10));
    assert_int_equal(acks.last, SAL_CMD_INPROGRESS); /* "Reading the configuration" */
    /* SIGTERM now: the read is abandoned, the start never answered (the
     * CSC's loop ends once the read, let go, has come back) */
    ct_signal(c->csc);
    ct_pool_release(&h);
    assert_int_equal(ct_stop(c->csc), 0);
    c->csc = NULL;
    assert_true(fx_run_until(f, ackcmd_writer_gone, NULL, 10));
    assert_true(fx_run_until(f, ct_pool_empty, &h, 10));
    assert_int_equal(acks.n, 1);
    assert_false(acks.done);
    ct_pool_fini(&h);
}

int main(void)
{
    setenv("LSST_SITE", "test", 1);
    setenv("UV_THREADPOOL_SIZE", "4", 1); /* CT_POOL_SIZE */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(missing_file_or_reserved_name, setup, teardown),
        cmocka_unit_test_setup_teardown(yaml_that_is_not_a_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(schema_violation, setup, teardown),
        cmocka_unit_test_setup_teardown(unquoted_dates_are_not_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(configuration_the_application_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(whole_number_floats_are_used, setup, teardown),
        cmocka_unit_test_setup_teardown(git_ref_reads_the_file_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_while_start_reads_configuration, setup, teardown),
    };
    return cmocka_run_group_tests_name("inproc_csc_config", tests, NULL, NULL);
}
