/*
 * test_ocps_pipetask: real processing through the OCPS over real DDS, with
 * ocps-csc as a separate process on its embedded default (no pipetask in
 * PATH: the local engine runs ocps-pipetask). A butler-lite repository of
 * small synthetic LATISS raws (ocps-fakeraws --small) is named by its label
 * through $DAF_BUTLER_REPOSITORY_INDEX, as the site config's `butler: LATISS`.
 * execute cpBias.yaml, then isr.yaml and quickLook.yaml with prereq_jobs on
 * the bias job: job_results name the registered outputs (filtered by
 * output_dataset_types), which ocps-butler finds. Bad input (a query that
 * selects nothing, a query syntax error, an unknown pipeline, a missing
 * calibration, a corrupt raw): failed jobs with the reason in job_result,
 * the CSC stays ENABLED, nothing registered.
 */
#include <setjmp.h>
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

#include "ocps_test_iface.h"
#include "ocps/sal_csc.h"
#include "ocps_run.h"
#include "sal_fixture.h"
#include "test_util.h"

#define MAX_ACKS 64

typedef struct ctx {
    fx f;
    char *root; /* DM_CONFIG_OCPS_DIR */
    char *dir;  /* raws, repository, index */
    char *repo;
    char work[1200];
    char bias_id[64];
    bool csc_started;
} ctx;

typedef or_run run;

static int run_prog(char **out, const char *prog, ...)
{
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)prog;
    va_list ap;
    va_start(ap, prog);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 23) {
        argv[n++] = (char *)a;
    }
    va_end(ap);
    argv[n] = NULL;
    return tu_run(argv, out);
}

/* Is there a real pipetask in PATH (then the CSC would run it)? */
static bool real_pipetask_in_path(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", getenv("PATH") ? getenv("PATH") : "");
    for (char *save = NULL, *d = strtok_r(path, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
        char file[4200];
        snprintf(file, sizeof file, "%s/pipetask", d);
        if (access(file, X_OK) == 0) {
            return true;
        }
    }
    return false;
}

/* Raws: 3 biases and 2 science frames of 20240624, one science frame of
 * 20240625 damaged after its ingest. */
static int make_repository(ctx *c)
{
    c->dir = tu_make_temp_dir();
    c->repo = tu_path_join(c->dir, "repo");
    char raws[1200], raws2[1200];
    snprintf(raws, sizeof raws, "%s/raws", c->dir);
    snprintf(raws2, sizeof raws2, "%s/raws2", c->dir);
    if (run_prog(NULL, OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "bias", "--count", "3", "--small",
                 "--out", raws, NULL) != 0 ||
        run_prog(NULL, OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "science", "--count", "2",
                 "--small", "--start-seq", "10", "--out", raws, NULL) != 0 ||
        run_prog(NULL, OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "science", "--count", "1",
                 "--small", "--day-obs", "20240625", "--out", raws2, NULL) != 0 ||
        run_prog(NULL, OCPS_BUTLER, "create", c->repo, NULL) != 0) {
        return -1;
    }
    char **names = NULL;
    int n = tu_list_files(raws, ".fits", &names);
    if (n != 5) {
        return -1;
    }
    char paths[6][1400];
    char *argv[10] = {OCPS_BUTLER, "ingest-raws", c->repo};
    for (int i = 0; i < n; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/%s", raws, names[i]);
        argv[3 + i] = paths[i];
    }
    snprintf(paths[5], sizeof paths[5], "%s/AT_O_20240625_000001.fits", raws2);
    argv[3 + n] = paths[5];
    argv[4 + n] = NULL;
    tu_free_names(names, n);
    if (tu_run(argv, NULL) != 0) {
        return -1;
    }
    char bad[1400];
    snprintf(bad, sizeof bad, "%s/LATISS/raw/20240625/2024062500001/AT_O_20240625_000001.fits", c->repo);
    struct stat st;
    if (stat(bad, &st) != 0 || truncate(bad, st.st_size / 2) != 0) {
        return -1;
    }
    /* the label the site config uses (butler: LATISS) */
    char index[1200], text[1400];
    snprintf(index, sizeof index, "%s/repositories.yaml", c->dir);
    snprintf(text, sizeof text, "LATISS: %s\n", c->repo);
    if (tu_write_file(index, text, strlen(text)) != 0) {
        return -1;
    }
    setenv("DAF_BUTLER_REPOSITORY_INDEX", index, 1);
    return 0;
}

static int group_setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    if (real_pipetask_in_path()) {
        return 0; /* the tests skip */
    }
    if (make_repository(c) != 0) {
        fprintf(stderr, "could not make the test repository\n");
        return -1;
    }
    c->root = tu_make_ocps_config();
    snprintf(c->work, sizeof c->work, "%s/jobs", c->root);
    char site[2048];
    snprintf(site, sizeof site, "work_root: %s\ninprogress_interval: 1\nmax_concurrent_jobs: 4\n", c->work);
    if (c->root == NULL || tu_write_ocps_site(c->root, site) != 0) {
        return -1;
    }
    fx_env(CYCLONE_CONFIG);
    setenv("DM_CONFIG_OCPS_DIR", c->root, 1);
    unsetenv("OCPS_PIPETASK");
    if (fx_open(&c->f, ocps_test_component(), 1, NULL) != 0) {
        return -1;
    }
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "--state", "enabled", "1", NULL};
    if (fx_start_csc(&c->f, argv) != 0) {
        return -1;
    }
    c->csc_started = true;
    return or_wait_enabled(&c->f, 0, 20);
}

static int group_teardown(void **state)
{
    ctx *c = *state;
    int rc = c->csc_started ? fx_close(&c->f) : 0;
    if (c->root != NULL) {
        tu_remove_tree(c->root);
    }
    if (c->dir != NULL) {
        tu_remove_tree(c->dir);
    }
    free(c->root);
    free(c->repo);
    free(c->dir);
    free(c);
    return rc;
}

/* --- commanding --- */

static void execute(fx *f, run *r, const char *pipeline, const char *config, const char *query,
                    const char *prereqs, const char *outputs)
{
    or_fields x = {pipeline, config, query, prereqs, outputs};
    assert_int_equal(or_execute(f, r, &x, 120), 0);
}

static void wait_all(fx *f, run **runs, double timeout)
{
    if (!fx_run_until(f, or_all_done, runs, timeout)) {
        fail_msg("the jobs did not end in %.0f s", timeout);
    }
}

/* The job's job_result, parsed (waits for it: on Kafka it may come after the final ack). */
typedef struct result_wait {
    const char *id;
    long index;
} result_wait;

static bool result_seen(fx *f, void *arg)
{
    result_wait *w = arg;
    int t = sal_component_find_topic(f->comp, "logevent_job_result");
    for (size_t i = 0; i < f->nrecords; i++) {
        const sal_topic_info *ti = &f->comp->topics[f->records[i].topic];
        if (f->records[i].topic == t &&
            strcmp(sal_sample_get_string(ti, f->records[i].sample, "job_id"), w->id) == 0) {
            w->index = (long)i;
            return true;
        }
    }
    return false;
}

static json_t *job_result(fx *f, const char *id)
{
    result_wait w = {id, -1};
    assert_true(fx_run_until(f, result_seen, &w, 10));
    const sal_topic_info *ti = &f->comp->topics[f->records[w.index].topic];
    json_error_t e;
    json_t *j = json_loads(sal_sample_get_string(ti, f->records[w.index].sample, "result"), 0, &e);
    assert_non_null(j);
    return j;
}

/* The outputs of a job_result, checked: every path exists and is in the
 * output run; returns how many have type `type`. */
static size_t outputs_of_type(json_t *res, const char *job_id, const char *type)
{
    char run_coll[128];
    snprintf(run_coll, sizeof run_coll, "u/ocps/%s/run", job_id);
    size_t n = 0, i;
    json_t *o;
    json_array_foreach(json_object_get(res, "outputs"), i, o)
    {
        assert_string_equal(json_string_value(json_object_get(o, "collection")), run_coll);
        assert_int_equal(access(json_string_value(json_object_get(o, "path")), R_OK), 0);
        assert_string_equal(json_string_value(json_object_get(json_object_get(o, "dataId"), "instrument")),
                            "LATISS");
        n += strcmp(json_string_value(json_object_get(o, "type")), type) == 0;
    }
    return n;
}

/* How many of the result's results[*].uri end with `tail`. */
static size_t results_ending(const json_t *res, const char *tail)
{
    size_t n = 0, i;
    json_t *r;
    json_array_foreach(json_object_get(res, "results"), i, r)
    {
        const char *uri = json_string_value(json_object_get(r, "uri"));
        n +=
            uri != NULL && strlen(uri) >= strlen(tail) && strcmp(uri + strlen(uri) - strlen(tail), tail) == 0;
    }
    return n;
}

static bool collection_exists(const ctx *c, const char *name)
{
    char *out = NULL;
    assert_int_equal(run_prog(&out, OCPS_BUTLER, "query-collections", c->repo, NULL), 0);
    bool found = false;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        found |= strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ' ';
    }
    free(out);
    return found;
}

/* --- tests --- */

static void calibrate_then_isr_and_quicklook_through_the_csc(void **state)
{
    ctx *c = *state;
    if (c->root == NULL) {
        skip(); /* a real pipetask is in PATH: the CSC would run it */
    }
    fx *f = &c->f;
    run bias, isr, ql;
    execute(f, &bias, "cpBias.yaml", "-j 2", "exposure.observation_type='bias'", "", "");
    assert_true(fx_run_until(f, or_has_job_id, &bias, 20));
    assert_int_equal(strlen(bias.job_id), 32);
    snprintf(c->bias_id, sizeof c->bias_id, "%s", bias.job_id);
    char with_bias[128];
    snprintf(with_bias, sizeof with_bias, "-i u/ocps/%s -j 2", bias.job_id);
    execute(f, &isr, "isr.yaml", with_bias,
            "exposure.observation_type='science' AND exposure.day_obs=20240624", bias.job_id, "postISRCCD");
    assert_true(fx_run_until(f, or_has_job_id, &isr, 20));
    execute(f, &ql, "quickLook.yaml", with_bias, "exposure = 2024062400010", bias.job_id, "quickLookPreview");
    run *runs[] = {&bias, &isr, &ql, NULL};
    wait_all(f, runs, 120);

    /* the master bias */
    json_t *res = job_result(f, bias.job_id);
    if (bias.ack != SAL_CMD_COMPLETE) {
        fail_msg("bias job: %s", json_dumps(res, 0));
    }
    assert_int_equal(bias.ack, SAL_CMD_COMPLETE);
    assert_string_equal(json_string_value(json_object_get(res, "phase")), "completed");
    if (outputs_of_type(res, bias.job_id, "bias") != 1) {
        fail_msg("bias job: %s", json_dumps(res, 0));
    }
    json_t *metrics = json_object_get(res, "metrics");
    assert_string_equal(json_string_value(json_object_get(metrics, "status")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(metrics, "raws")), 3);
    json_decref(res);

    /* ISR: two processed frames, found by ocps-butler in the output collection */
    res = job_result(f, isr.job_id);
    assert_int_equal(isr.ack, SAL_CMD_COMPLETE);
    assert_int_equal(json_array_size(json_object_get(res, "outputs")), 2);
    assert_int_equal(outputs_of_type(res, isr.job_id, "postISRCCD"), 2);
    char coll[128];
    snprintf(coll, sizeof coll, "u/ocps/%s", isr.job_id);
    char *out = NULL;
    assert_int_equal(run_prog(&out, OCPS_BUTLER, "query-datasets", c->repo, "postISRCCD", "--collections",
                              coll, "--json", NULL),
                     0);
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(res, "outputs"), i, o)
    {
        const char *path = json_string_value(json_object_get(o, "path"));
        const char *rel = path + strlen(c->repo) + 1;
        assert_non_null(strstr(out, rel));
    }
    free(out);
    json_decref(res);

    /* quick-look: only the preview is reported (output_dataset_types), a PNG */
    res = job_result(f, ql.job_id);
    assert_int_equal(ql.ack, SAL_CMD_COMPLETE);
    assert_int_equal(json_array_size(json_object_get(res, "outputs")), 1);
    assert_int_equal(outputs_of_type(res, ql.job_id, "quickLookPreview"), 1);
    const char *png =
        json_string_value(json_object_get(json_array_get(json_object_get(res, "outputs"), 0), "path"));
    size_t len = 0;
    char *bytes = tu_read_file(png, &len);
    assert_true(len > 8 && memcmp(bytes + 1, "PNG", 3) == 0);
    /* the retrieval step (ocps-butler retrieve-artifacts) put it in the
     * job's directory: a result, the same bytes; no postISRCCD there */
    char tail[1100];
    snprintf(tail, sizeof tail, "/%s/%s", ql.job_id, strrchr(png, '/') + 1);
    if (results_ending(res, tail) != 1 || results_ending(res, ".fits") != 0) {
        fail_msg("quick-look results: %s", json_dumps(json_object_get(res, "results"), 0));
    }
    char copy[2400];
    snprintf(copy, sizeof copy, "%s/%s", c->work, tail + 1);
    size_t copy_len = 0;
    char *copied = tu_read_file(copy, &copy_len);
    assert_true(copied != NULL && copy_len == len && memcmp(copied, bytes, len) == 0);
    free(copied);
    free(bytes);
    json_t *qlm = json_object_get(json_object_get(json_object_get(res, "metrics"), "tasks"), "quickLook");
    assert_true(json_number_value(json_object_get(qlm, "n_sources")) > 0);
    json_decref(res);
}

typedef struct bad_case {
    const char *pipeline;
    bool with_bias;
    const char *query;
    const char *reason;
    const char *config; /* instead of the bias input (NULL: none) */
} bad_case;

static void bad_input_fails_clearly_and_the_csc_stays_enabled(void **state)
{
    ctx *c = *state;
    if (c->root == NULL) {
        skip();
    }
    assert_true(c->bias_id[0] != '\0'); /* from the test before */
    fx *f = &c->f;
    const bad_case cases[] = {
        {"isr.yaml", true, "exposure.observation_type='flat'", "the data query selected no raw datasets",
         NULL},
        {"isr.yaml", true, "exposure.day_obs > AND", "data query: column 20", NULL},
        {"cpNothing.yaml", true, "", "unknown pipeline 'cpNothing.yaml'", NULL},
        {"isr.yaml", false, "exposure.observation_type='science'", "no bias calibration for exposure", NULL},
        {"quickLook.yaml", true, "exposure IN (2024062400011, 2024062500001)",
         "task isr, exposure 2024062500001", NULL},
        /* allowed by the default allowed_options (-j8 too), but a config file cannot be honoured here */
        {"cpBias.yaml", false, "exposure.observation_type='bias'", "-C is not supported by ocps-pipetask",
         "-j8 -C isr:overrides.py"},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    size_t mark = f->nrecords;
    run runs[N];
    run *pending[N + 1];
    char with_bias[128];
    snprintf(with_bias, sizeof with_bias, "-i u/ocps/%s", c->bias_id);
    for (size_t k = 0; k < N; k++) {
        const char *config = cases[k].config ? cases[k].config : cases[k].with_bias ? with_bias : "";
        execute(f, &runs[k], cases[k].pipeline, config, cases[k].query, "", "");
        pending[k] = &runs[k];
    }
    pending[N] = NULL;
    wait_all(f, pending, 120);
    for (size_t k = 0; k < N; k++) {
        assert_int_equal(runs[k].ack, SAL_CMD_COMPLETE); /* ended in error (failed_job_ack complete) */
        assert_non_null(strstr(runs[k].result, "\"phase\":\"error\""));
        if (strstr(runs[k].result, cases[k].reason) == NULL) { /* the commander learns why too */
            fail_msg("case %zu: final ack '%s' lacks '%s'", k, runs[k].result, cases[k].reason);
        }
        json_t *res = job_result(f, runs[k].job_id);
        assert_string_equal(json_string_value(json_object_get(res, "phase")), "error");
        assert_string_equal(json_string_value(json_object_get(res, "reason")), "pipeline_failed");
        const char *msg = json_string_value(json_object_get(json_object_get(res, "errorSummary"), "message"));
        if (msg == NULL || strstr(msg, cases[k].reason) == NULL) {
            fail_msg("case %zu: message '%s' lacks '%s'", k, msg ? msg : "(null)", cases[k].reason);
        }
        assert_int_equal(json_array_size(json_object_get(res, "outputs")), 0);
        json_decref(res);
        /* nothing registered, no files left */
        char coll[128], dir[1400];
        snprintf(coll, sizeof coll, "u/ocps/%s", runs[k].job_id);
        assert_false(collection_exists(c, coll));
        snprintf(dir, sizeof dir, "%s/u/ocps/%s", c->repo, runs[k].job_id);
        assert_int_equal(access(dir, F_OK), -1);
    }
    /* the CSC stayed ENABLED: no state change since */
    int t = sal_component_find_topic(f->comp, "logevent_summaryState");
    for (size_t i = mark; i < f->nrecords; i++) {
        assert_false(f->records[i].topic == t);
    }
    char result[512];
    assert_int_equal(fx_command(f, "setLogLevel", NULL, 10, result, sizeof result), SAL_CMD_COMPLETE);
    /* an operator's ocps-cmd: the final ack is CMD_COMPLETE, yet the job
     * did not complete, so its exit status is 1 and it says why */
    const char *transport = getenv("OCPS_TEST_TRANSPORT") != NULL ? getenv("OCPS_TEST_TRANSPORT") : "dds";
    char *argv[] = {OCPS_CMD,  "--transport", (char *)transport, "OCPS:1",
                    "execute", "--pipeline",  "cpNothing.yaml",  NULL};
    char *out = NULL;
    int status = tu_run(argv, &out);
    print_message("ocps-cmd -> %d:\n%s", status, out ? out : "");
    assert_int_equal(status, 1);
    assert_non_null(strstr(out, "execute CMD_COMPLETE"));
    assert_non_null(strstr(out, "ended error (pipeline_failed): "));
    assert_non_null(strstr(out, "unknown pipeline 'cpNothing.yaml'"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(calibrate_then_isr_and_quicklook_through_the_csc),
        cmocka_unit_test(bad_input_fails_clearly_and_the_csc_stays_enabled),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
