/*
 * test_pipetask_cli: ocps-pipetask as a separate process on a butler-lite
 * repository of small synthetic LATISS raws (ocps-fakeraws --small):
 * argument errors (exit 2, metrics.json says why), -c overrides checked
 * against the task's fields and changing what runs, pipeline lookup (bare
 * name, path, $OCPS_PIPELINE_PATH, unknown), a successful run registered as
 * Butler does (RUN + CHAINED, found by ocps-butler), and a failed run that
 * registers and leaves nothing. The output run's claim: a run killed
 * while holding it is taken over by the next run with that output; a live
 * claim, or one from another host, is refused naming its owner. A low
 * soft descriptor limit is raised to the hard one.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "test_util.h"

#define FITSVERIFY "/usr/bin/fitsverify"

typedef struct fixture {
    char *dir;  /* the test's cwd (metrics.json lands here) */
    char *repo; /* a repository with 3 biases and 2 science raws */
    char old_cwd[1024];
} fixture;

/* Run a program with a NULL-terminated argument list; exit status, output in *out. */
static int runv(char **out, const char *prog, va_list ap)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)prog;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 39) {
        argv[n++] = (char *)a;
    }
    argv[n] = NULL;
    char *output = NULL;
    int rc = tu_run(argv, &output);
    if (out != NULL) {
        *out = output;
    } else {
        free(output);
    }
    return rc;
}

static int pipetask(char **out, ...)
{
    va_list ap;
    va_start(ap, out);
    int rc = runv(out, OCPS_PIPETASK, ap);
    va_end(ap);
    return rc;
}

static int butler(char **out, ...)
{
    va_list ap;
    va_start(ap, out);
    int rc = runv(out, OCPS_BUTLER, ap);
    va_end(ap);
    return rc;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    f->dir = tu_make_temp_dir();
    f->repo = tu_path_join(f->dir, "repo");
    if (getcwd(f->old_cwd, sizeof f->old_cwd) == NULL || chdir(f->dir) != 0) {
        return -1;
    }
    char *argv1[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "bias", "--count",
                     "3",           "--small",      "--out",  "raws",   NULL};
    char *argv2[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "science", "--count", "2",
                     "--small",     "--start-seq",  "10",     "--out",  "raws",    NULL};
    if (tu_run(argv1, NULL) != 0 || tu_run(argv2, NULL) != 0) {
        return -1;
    }
    char **names = NULL;
    int n = tu_list_files("raws", ".fits", &names);
    if (n != 5 || butler(NULL, "create", f->repo, NULL) != 0) {
        return -1;
    }
    char *argv[12] = {OCPS_BUTLER, "ingest-raws", f->repo};
    char paths[5][64];
    for (int i = 0; i < n; i++) {
        snprintf(paths[i], sizeof paths[i], "raws/%s", names[i]);
        argv[3 + i] = paths[i];
    }
    argv[3 + n] = NULL;
    tu_free_names(names, n);
    return tu_run(argv, NULL);
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (chdir(f->old_cwd) != 0) {
        return -1;
    }
    tu_remove_tree(f->dir);
    free(f->repo);
    free(f->dir);
    free(f);
    return 0;
}

static json_t *metrics(void)
{
    json_error_t e;
    json_t *m = json_load_file("metrics.json", 0, &e);
    assert_non_null(m);
    return m;
}

/* metrics.json says failed, with an error containing `what`. */
static void assert_failed_with(const char *what)
{
    json_t *m = metrics();
    assert_string_equal(json_string_value(json_object_get(m, "status")), "failed");
    const char *err = json_string_value(json_object_get(m, "error"));
    assert_non_null(err);
    if (strstr(err, what) == NULL) {
        fail_msg("error '%s' does not contain '%s'", err, what);
    }
    json_decref(m);
}

/* `pipetask run` of `pipeline` on the repository's raws with one more
 * option and its value: refused before anything is read (exit 2), with
 * `why` in metrics.json. */
static void refused(const fixture *f, const char *pipeline, const char *opt, const char *val, const char *why)
{
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", pipeline, "-i", "LATISS/raw/all", "-o", "u/x",
                              opt, val, NULL),
                     2);
    assert_failed_with(why);
}

static bool collection_exists(const fixture *f, const char *name)
{
    char *out = NULL;
    assert_int_equal(butler(&out, "query-collections", f->repo, NULL), 0);
    bool found = false;
    for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        found |= strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ' ';
    }
    free(out);
    return found;
}

static void argument_errors_exit_2_and_say_why(void **state)
{
    fixture *f = *state;
    char *out = NULL;
    assert_int_equal(pipetask(&out, "list", NULL), 2);
    assert_non_null(strstr(out, "expected the subcommand 'run'"));
    free(out);
    assert_int_equal(pipetask(&out, "run", "-p", "cpBias.yaml", "-i", "LATISS/raw/all", "-o", "u/x", NULL),
                     2);
    assert_non_null(strstr(out, "missing -b"));
    free(out);
    assert_failed_with("missing -b");
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "cpBias.yaml", "-o", "u/x", NULL), 2);
    assert_failed_with("missing -i");
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "cpBias.yaml", "-i", "LATISS/raw/all", "-o",
                              "u/x", "-j", "0", NULL),
                     2);
    assert_failed_with("-j: '0'");
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "cpBias.yaml", "-i", "LATISS/raw/all", "-o",
                              "u/x", "--frobnicate", NULL),
                     2);
    assert_failed_with("unknown option or argument '--frobnicate'");
    assert_int_equal(
        pipetask(NULL, "run", "-b", f->repo, "-p", "cpBias.yaml", "-i", "LATISS/raw/all", "-o", NULL), 2);
    assert_failed_with("-o needs a value");
    /* pipetask's flags and --name=value forms are understood */
    assert_int_equal(pipetask(NULL, "--long-log", "run", "--butler-config=/nonexistent/repo", "-p",
                              "cpBias.yaml", "--input=LATISS/raw/all", "-o", "u/x",
                              "--register-dataset-types", NULL),
                     1);
    assert_failed_with("/nonexistent/repo");
    assert_false(collection_exists(f, "u/x"));
    /* the options the CSC's default allowed_options lets through are
     * understood: -j8 (attached), flags with nothing to do here, ignored
     * ones said to be ignored; -C is refused with the reason */
    assert_int_equal(pipetask(&out, "run", "-b", "/nonexistent/repo", "-p", "cpBias.yaml", "-i",
                              "LATISS/raw/all", "-o", "u/x", "-j8", "--clobber-outputs", "--extend-run",
                              "--fail-fast", "--timeout", "60", NULL),
                     1);
    assert_failed_with("/nonexistent/repo"); /* got past the options */
    assert_non_null(strstr(out, "--fail-fast is accepted and ignored here"));
    assert_non_null(strstr(out, "--extend-run is accepted and ignored here"));
    assert_non_null(strstr(out, "--timeout is accepted and ignored here"));
    free(out);
    refused(f, "cpBias.yaml", "-j0", NULL, "-j: '0'");
    refused(f, "cpBias.yaml", "-C", "isr:overrides.py", "-C is not supported by ocps-pipetask");
}

static void overrides_are_checked_against_the_task_fields(void **state)
{
    fixture *f = *state;
    refused(f, "isr.yaml", "-c", "isr:doFoo=True", "unknown config field 'doFoo'");
    refused(f, "isr.yaml", "-c", "isr:saturation=lots", "saturation: 'lots' is not a number");
    refused(f, "isr.yaml", "-c", "isr:doBias=maybe", "doBias: 'maybe' is not a boolean");
    refused(f, "isr.yaml", "-c", "calibrate:doBias=False",
            "no task labelled 'calibrate' in the pipeline (tasks: isr)");
    refused(f, "isr.yaml", "-c", "isr-doBias", "expected label:field=value");
    /* without a bias in the inputs ISR fails; the override lets it run */
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "isr.yaml", "-i", "LATISS/raw/all", "-o",
                              "u/ovr", "-d", "exposure.observation_type='science'", NULL),
                     1);
    assert_failed_with("no bias calibration");
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "isr.yaml", "-i", "LATISS/raw/all", "-o",
                              "u/ovr", "-d", "exposure.observation_type='science'", "-c", "isr:doBias=False",
                              NULL),
                     0);
    json_t *m = metrics();
    assert_string_equal(json_string_value(json_object_get(m, "status")), "succeeded");
    assert_int_equal(json_array_size(json_object_get(m, "outputs")), 2);
    json_decref(m);
    /* the preview's binning follows -c quickLook:binSize (PNG width = 504 / bin) */
    const int bins[] = {4, 8};
    for (int b = 0; b < 2; b++) {
        char out_coll[32], ov1[32];
        snprintf(out_coll, sizeof out_coll, "u/bin%d", bins[b]);
        snprintf(ov1, sizeof ov1, "quickLook:binSize=%d", bins[b]);
        assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "quickLook.yaml", "-i", "LATISS/raw/all",
                                  "-o", out_coll, "-d", "exposure = 2024062400010", "-c", "isr:doBias=False",
                                  "-c", ov1, "-j", "2", NULL),
                         0);
        m = metrics();
        const char *png = NULL;
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(m, "outputs"), i, o)
        {
            if (strcmp(json_string_value(json_object_get(o, "dataset_type")), "quickLookPreview") == 0) {
                png = json_string_value(json_object_get(o, "path"));
            }
        }
        assert_non_null(png);
        size_t len = 0;
        char *bytes = tu_read_file(png, &len);
        assert_true(len > 24 && memcmp(bytes + 1, "PNG", 3) == 0);
        const unsigned char *w = (const unsigned char *)bytes + 16;
        long width = (long)w[0] << 24 | (long)w[1] << 16 | (long)w[2] << 8 | w[3];
        assert_int_equal(width, 504 / bins[b]);
        free(bytes);
        json_decref(m);
    }
}

static void pipelines_are_found_by_name_path_and_search_path(void **state)
{
    fixture *f = *state;
    /* unknown: exit 2, naming it and the shipped ones */
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "cpNothing.yaml", "-i", "LATISS/raw/all",
                              "-o", "u/p0", NULL),
                     2);
    assert_failed_with("unknown pipeline 'cpNothing.yaml'");
    /* a path: our own pipeline with a different output type */
    const char *yaml = "description: test\ninstrument: lsst.obs.lsst.Latiss\ntasks:\n  combine:\n"
                       "    class: lsst.cp.pipe.CalibCombineTask\n    config:\n      calibrationType: bias\n"
                       "      connections.outputData: myBias\n";
    mkdir("pipes", 0755);
    assert_int_equal(tu_write_file("pipes/mine.yaml", yaml, strlen(yaml)), 0);
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "pipes/mine.yaml", "-i", "LATISS/raw/all",
                              "-o", "u/p1", "-d", "exposure.observation_type='bias'", NULL),
                     0);
    char *out = NULL;
    assert_int_equal(butler(&out, "query-datasets", f->repo, "myBias", "--collections", "u/p1", NULL), 0);
    assert_non_null(strstr(out, "u/p1/run"));
    free(out);
    /* by bare name through $OCPS_PIPELINE_PATH */
    setenv("OCPS_PIPELINE_PATH", "/nonexistent:pipes", 1);
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "mine.yaml", "-i", "LATISS/raw/all", "-o",
                              "u/p2", "-d", "exposure.observation_type='bias'", NULL),
                     0);
    unsetenv("OCPS_PIPELINE_PATH");
    /* a shipped one by bare name, and by a path whose directory is elsewhere */
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p",
                              "/opt/lsst/cp_pipe/pipelines/Latiss/cpBias.yaml", "-i", "LATISS/raw/all", "-o",
                              "u/p3", "-d", "exposure.observation_type='bias'", NULL),
                     0);
    json_t *m = metrics();
    assert_non_null(strstr(json_string_value(json_object_get(m, "pipeline_path")), "/cpBias.yaml"));
    json_decref(m);
    /* a bad pipeline file names the problem */
    const char *bad =
        "tasks:\n  isr:\n    class: lsst.ip.isr.IsrTask\n    config:\n      doFlat: sometimes\n";
    assert_int_equal(tu_write_file("pipes/bad.yaml", bad, strlen(bad)), 0);
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "pipes/bad.yaml", "-i", "LATISS/raw/all",
                              "-o", "u/p4", NULL),
                     2);
    assert_failed_with("doFlat: expected a boolean");
}

static void a_run_registers_as_butler_does_and_a_failure_leaves_nothing(void **state)
{
    fixture *f = *state;
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "cpBias.yaml", "-i", "LATISS/raw/all", "-o",
                              "u/ocps/bias1", "-d", "exposure.observation_type='bias'", "-j", "2", NULL),
                     0);
    json_t *m = metrics();
    assert_string_equal(json_string_value(json_object_get(m, "status")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "summary"), "raws")), 3);
    json_t *o = json_array_get(json_object_get(m, "outputs"), 0);
    assert_string_equal(json_string_value(json_object_get(o, "dataset_type")), "bias");
    assert_string_equal(json_string_value(json_object_get(o, "collection")), "u/ocps/bias1/run");
    assert_int_equal(access(json_string_value(json_object_get(o, "path")), R_OK), 0);
    json_decref(m);
    char *out = NULL;
    assert_int_equal(butler(&out, "query-collections", f->repo, NULL), 0);
    char *line = strstr(out, "\nu/ocps/bias1 ");
    assert_non_null(line);
    line[strcspn(line + 1, "\n") + 1] = '\0';
    assert_non_null(strstr(line, " CHAINED "));
    assert_non_null(strstr(line, " u/ocps/bias1/run,LATISS/raw/all"));
    free(out);
    /* the combine refuses science frames among its inputs */
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "cpBias.yaml", "-i", "LATISS/raw/all", "-o",
                              "u/ocps/bias2", NULL),
                     1);
    assert_failed_with("is a 'science' exposure, not bias");
    assert_false(collection_exists(f, "u/ocps/bias2"));
    /* ISR finds the bias through the chain */
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "isr.yaml", "-i",
                              "LATISS/raw/all,u/ocps/bias1", "-o", "u/ocps/isr1", "-d",
                              "exposure.observation_type='science'", "-j", "2", NULL),
                     0);
    assert_int_equal(
        butler(&out, "query-datasets", f->repo, "postISRCCD", "--collections", "u/ocps/isr1", NULL), 0);
    assert_non_null(strstr(out, "2024062400010"));
    assert_non_null(strstr(out, "2024062400011"));
    free(out);
    /* every output is valid FITS (fitsverify, when installed) with provenance naming the pipeline */
    m = metrics();
    size_t i;
    json_array_foreach(json_object_get(m, "outputs"), i, o)
    {
        const char *path = json_string_value(json_object_get(o, "path"));
        size_t len = 0;
        char *bytes = tu_read_file(path, &len);
        assert_non_null(bytes);
        assert_true(len > 2880);
        bytes[2880] = '\0'; /* the primary header */
        assert_non_null(strstr(bytes, "OCPSPIPE= 'isr.yaml'"));
        assert_non_null(strstr(bytes, "OCPSTASK= 'isr     '"));              /* FITS pads strings to 8 */
        assert_non_null(strstr(bytes, "OCPSIN2 = 'bias_LATISS_det0.fits'")); /* the bias used */
        free(bytes);
        if (access(FITSVERIFY, X_OK) == 0) {
            char *argv[] = {FITSVERIFY, "-q", (char *)path, NULL}, *output = NULL;
            int rc = tu_run(argv, &output);
            if (rc != 0 || strstr(output, "verification OK") == NULL) {
                fail_msg("fitsverify %s: %d\n%s", path, rc, output ? output : "");
            }
            free(output);
        }
    }
    json_decref(m);
    /* the same output run again: refused before anything is written; the first run's files stay */
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "isr.yaml", "-i",
                              "LATISS/raw/all,u/ocps/bias1", "-o", "u/ocps/isr1", "-d",
                              "exposure.observation_type='science'", NULL),
                     1);
    assert_failed_with("output run u/ocps/isr1/run exists already");
    assert_int_equal(
        butler(&out, "query-datasets", f->repo, "postISRCCD", "--collections", "u/ocps/isr1", NULL), 0);
    assert_non_null(strstr(out, "2024062400011"));
    free(out);
    /* a failure in the second task removes the first task's files and registers nothing */
    char cpath[2048];
    snprintf(cpath, sizeof cpath, "%s/u/ocps/ql1", f->repo);
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "quickLook.yaml", "-i",
                              "LATISS/raw/all,u/ocps/bias1", "-o", "u/ocps/ql1", "-d",
                              "exposure.observation_type='science'", "-c", "quickLook:minPixels=5", "-c",
                              "quickLook:lowPercent=101", NULL),
                     2);
    assert_failed_with("lowPercent: must be 0..100");
    /* a corrupt raw (ingested whole, damaged afterwards): the failing data
     * unit is named, the other unit's output is removed, nothing registered */
    char *argv[] = {OCPS_FAKERAWS, "--instrument", "LATISS",   "--type", "science", "--count", "1",
                    "--small",     "--day-obs",    "20240625", "--out",  "raws2",   NULL};
    assert_int_equal(tu_run(argv, NULL), 0);
    assert_int_equal(butler(NULL, "ingest-raws", f->repo, "raws2/AT_O_20240625_000001.fits", NULL), 0);
    char raw[2048];
    snprintf(raw, sizeof raw, "%s/LATISS/raw/20240625/2024062500001/AT_O_20240625_000001.fits", f->repo);
    struct stat st;
    assert_int_equal(stat(raw, &st), 0);
    assert_int_equal(truncate(raw, st.st_size / 2), 0);
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "quickLook.yaml", "-i",
                              "LATISS/raw/all,u/ocps/bias1", "-o", "u/ocps/ql1", "-d",
                              "exposure IN (2024062400010, 2024062500001)", NULL),
                     1);
    assert_failed_with("task isr, exposure 2024062500001");
    assert_false(collection_exists(f, "u/ocps/ql1"));
    assert_false(collection_exists(f, "u/ocps/ql1/run"));
    assert_int_equal(access(cpath, F_OK), -1);
}

/* '[' and '(' (cfitsio's extended file name syntax) in the raws' file
 * names, the repository root and the output run are plain characters: the
 * raws are made, ingested, combined, calibrated and measured. */
static void brackets_in_file_names_are_literal(void **state)
{
    (void)state; /* works in the fixture's directory, on a repository of its own */
    char *argv1[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "bias",       "--count", "2",
                     "--small",     "--start-seq",  "40",     "--out",  "raws[1](b)", NULL};
    char *argv2[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "science",    "--count", "1",
                     "--small",     "--start-seq",  "50",     "--out",  "raws[1](b)", NULL};
    assert_int_equal(tu_run(argv1, NULL), 0);
    assert_int_equal(tu_run(argv2, NULL), 0);
    const char *names[] = {"AT_O_20240624_000040", "AT_O_20240624_000041", "AT_O_20240624_000050"};
    char paths[3][128];
    for (int i = 0; i < 3; i++) {
        char from[128];
        snprintf(from, sizeof from, "raws[1](b)/%s.fits", names[i]);
        snprintf(paths[i], sizeof paths[i], "raws[1](b)/%s[1](2).fits", names[i]);
        assert_int_equal(rename(from, paths[i]), 0);
    }
    const char *repo = "repo[1](b)";
    assert_int_equal(butler(NULL, "create", repo, NULL), 0);
    assert_int_equal(butler(NULL, "ingest-raws", repo, paths[0], paths[1], paths[2], NULL), 0);
    assert_int_equal(pipetask(NULL, "run", "-b", repo, "-p", "cpBias.yaml", "-i", "LATISS/raw/all", "-o",
                              "u/b[1](x)", "-d", "exposure.observation_type='bias'", NULL),
                     0);
    assert_int_equal(pipetask(NULL, "run", "-b", repo, "-p", "quickLook.yaml", "-i",
                              "LATISS/raw/all,u/b[1](x)", "-o", "u/q[1](x)", "-d",
                              "exposure.observation_type='science'", "-c", "isr:doDark=False", "-c",
                              "isr:doFlat=False", NULL),
                     0);
    json_t *m = metrics();
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(m, "outputs"), i, o)
    {
        assert_int_equal(access(json_string_value(json_object_get(o, "path")), R_OK), 0);
    }
    assert_int_equal(json_array_size(json_object_get(m, "outputs")), 2);
    json_decref(m);
}

/* The children of collection name as query-collections lists them (malloc'd). */
static char *chain_of(const fixture *f, const char *name)
{
    char *out = NULL;
    assert_int_equal(butler(&out, "query-collections", f->repo, NULL), 0);
    char want[256];
    snprintf(want, sizeof want, "\n%s ", name);
    char *line = strstr(out, want);
    assert_non_null(line);
    line[strcspn(line + 1, "\n") + 1] = '\0';
    char *children = strdup(strrchr(line, ' ') + 1); /* the last column */
    free(out);
    return children;
}

/* A second run into an existing output chain puts its run in front and
 * keeps the chain's earlier runs (as pipetask does). */
static void a_second_run_into_an_output_chain_keeps_the_first(void **state)
{
    fixture *f = *state;
    const char *runs[] = {"u/chain/run1", "u/chain/run2"};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "cpBias.yaml", "-i", "LATISS/raw/all",
                                  "-o", "u/chain", "--output-run", runs[k], "-d",
                                  "exposure.observation_type='bias'", NULL),
                         0);
    }
    char *children = chain_of(f, "u/chain");
    assert_string_equal(children, "u/chain/run2,u/chain/run1,LATISS/raw/all");
    free(children);
}

/* cpBias with -j 4 in a child whose RLIMIT_NOFILE is soft:hard (output
 * discarded); its exit status. */
static int pipetask_limited(const fixture *f, rlim_t soft, rlim_t hard, const char *output)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {soft, hard};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || freopen("/dev/null", "w", stdout) == NULL ||
            freopen("/dev/null", "w", stderr) == NULL) {
            _exit(127);
        }
        execl(OCPS_PIPETASK, OCPS_PIPETASK, "run", "-b", f->repo, "-p", "cpBias.yaml", "-i", "LATISS/raw/all",
              "-o", output, "-d", "exposure.observation_type='bias'", "-j", "4", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* A soft descriptor limit below what -j 4 threads holding every input
 * need is raised to the hard limit: the combine runs on all 4 threads. */
static void a_low_soft_descriptor_limit_is_raised(void **state)
{
    fixture *f = *state;
    assert_int_equal(pipetask_limited(f, 16, 1024, "u/fd-soft"), 0);
    json_t *m = metrics();
    json_t *unit =
        json_array_get(json_object_get(json_array_get(json_object_get(m, "tasks"), 0), "metrics"), 0);
    assert_int_equal(json_integer_value(json_object_get(unit, "threads")), 4);
    assert_int_equal(json_integer_value(json_object_get(unit, "inputs_kept_open")), 3);
    json_decref(m);
}

/* The file of the first output in dir/metrics.json if that run succeeded
 * (malloc'd), else NULL. */
static char *succeeded_output(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    json_error_t e;
    json_t *m = json_load_file(path, 0, &e);
    assert_non_null(m);
    char *file = NULL;
    if (strcmp(json_string_value(json_object_get(m, "status")), "succeeded") == 0) {
        json_t *o = json_array_get(json_object_get(m, "outputs"), 0);
        file = strdup(json_string_value(json_object_get(o, "path")));
    }
    json_decref(m);
    return file;
}

/* Two runs with the same output at once: one wins, the other is refused
 * and leaves the winner's registered file in place (a few rounds, as the
 * race is one of timing). */
static void concurrent_runs_with_one_output_keep_the_winners_file(void **state)
{
    fixture *f = *state;
    for (int round = 0; round < 4; round++) {
        char output[64];
        snprintf(output, sizeof output, "u/race%d", round);
        int pid[2];
        const char *dirs[2] = {"race_a", "race_b"};
        for (int k = 0; k < 2; k++) {
            mkdir(dirs[k], 0775);
            assert_int_equal(chdir(dirs[k]), 0);
            char *argv[] = {OCPS_PIPETASK, "run",         "-b", f->repo,
                            "-p",          "cpBias.yaml", "-i", "LATISS/raw/all",
                            "-o",          output,        "-d", "exposure.observation_type='bias'",
                            NULL};
            pid[k] = tu_spawn(argv, "/dev/null");
            assert_int_equal(chdir(f->dir), 0);
        }
        int wins = 0;
        for (int k = 0; k < 2; k++) {
            int rc = tu_wait_exit(pid[k], 60);
            wins += rc == 0;
            char *file = succeeded_output(dirs[k]);
            assert_true((rc == 0) == (file != NULL));
            if (file != NULL) {
                assert_int_equal(access(file, R_OK), 0);
            }
            free(file);
        }
        assert_int_equal(wins, 1);
        char *out = NULL;
        assert_int_equal(butler(&out, "query-datasets", f->repo, "bias", "--collections", output, NULL), 0);
        assert_non_null(strstr(out, "bias"));
        free(out);
    }
}

/* Wait (up to 60 s) until file exists while pid is still running. */
static void wait_for_file_while_running(const char *file, int pid)
{
    for (int i = 0; i < 6000 && access(file, F_OK) != 0; i++) {
        assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still running */
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(access(file, F_OK), 0);
}

/* An ocps-pipetask SIGKILLed while it holds its output run (as the OCPS's
 * abort kills a job): while it runs a second run with that output is
 * refused naming it; once it is dead the same command runs, replacing
 * the files the killed run left, and its outputs are registered. */
static void a_killed_run_is_taken_over_and_a_live_one_is_refused(void **state)
{
    fixture *f = *state;
    /* full-size raws: the run takes a few seconds */
    char *make[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "science", "--count", "2",
                    "--day-obs",   "20240627",     "-j",     "2",      "--out",   "bigraws", NULL};
    assert_int_equal(tu_run(make, NULL), 0);
    assert_int_equal(butler(NULL, "ingest-raws", f->repo, "bigraws/AT_O_20240627_000001.fits",
                            "bigraws/AT_O_20240627_000002.fits", NULL),
                     0);
    char *argv[] = {OCPS_PIPETASK, "run",
                    "-b",          f->repo,
                    "-p",          "quickLook.yaml",
                    "-i",          "LATISS/raw/all",
                    "-o",          "u/killed",
                    "-d",          "exposure.day_obs = 20240627",
                    "-c",          "isr:doBias=False",
                    "-j",          "1",
                    NULL};
    int pid = tu_spawn(argv, "killed.log");
    assert_true(pid > 0);
    char left[2048];
    snprintf(left, sizeof left,
             "%s/u/killed/run/postISRCCD/2024062700001/postISRCCD_LATISS_2024062700001_det0.fits", f->repo);
    wait_for_file_while_running(left, pid); /* created after the claim, before the work */
    /* stopped (alive, holding its claim) so that the refusal below does
     * not depend on how long the run would take on a loaded machine */
    assert_int_equal(kill(pid, SIGSTOP), 0);
    /* a live claim: refused, naming the owner and how to free the run */
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof host - 1), 0);
    char owner[512];
    snprintf(
        owner, sizeof owner,
        "output run u/killed/run exists already: it is claimed by pid %d on host %s, which is still running",
        pid, host);
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "quickLook.yaml", "-i", "LATISS/raw/all",
                              "-o", "u/killed", "-d", "exposure.day_obs = 20240627", "-c", "isr:doBias=False",
                              NULL),
                     1);
    assert_failed_with(owner);
    assert_failed_with("`ocps-butler remove-runs ");
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* the refusal took nothing from the live run */
    tu_kill(pid);
    assert_int_equal(access(left, F_OK), 0); /* the killed run left its files */
    char link[2048]; /* a symbolic link in the run's directory: neither followed nor removed */
    snprintf(link, sizeof link, "%s/u/killed/run/elsewhere", f->repo);
    assert_int_equal(symlink(f->repo, link), 0);
    /* the same command again: the dead run's claim and files are taken over */
    char *out = NULL;
    assert_int_equal(pipetask(&out, "run", "-b", f->repo, "-p", "quickLook.yaml", "-i", "LATISS/raw/all",
                              "-o", "u/killed", "-d", "exposure.day_obs = 20240627", "-c", "isr:doBias=False",
                              NULL),
                     0);
    assert_non_null(strstr(out, "taking over the output run u/killed/run"));
    free(out);
    struct stat lst;
    assert_int_equal(lstat(link, &lst), 0);
    assert_true(S_ISLNK(lst.st_mode));
    json_t *m = metrics();
    assert_string_equal(json_string_value(json_object_get(m, "status")), "succeeded");
    assert_int_equal(json_array_size(json_object_get(m, "outputs")), 4);
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(m, "outputs"), i, o)
    {
        assert_int_equal(access(json_string_value(json_object_get(o, "path")), R_OK), 0);
    }
    json_decref(m);
    assert_int_equal(butler(&out, "query-datasets", f->repo, "postISRCCD", "--collections", "u/killed", NULL),
                     0);
    assert_non_null(strstr(out, "2024062700001"));
    assert_non_null(strstr(out, "2024062700002"));
    free(out);
    /* a finished run is not taken over: it holds datasets */
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "quickLook.yaml", "-i", "LATISS/raw/all",
                              "-o", "u/killed", "-d", "exposure.day_obs = 20240627", "-c", "isr:doBias=False",
                              NULL),
                     1);
    assert_failed_with("output run u/killed/run exists already: it holds 4 datasets");
}

/* Write a RUN collection `run` claimed by pid on host with boot id into
 * the registry by hand (owner NULL: an empty run with no owner recorded,
 * as a claim made before owners were). */
static void write_claim(const fixture *f, const char *run, const char *host, const char *boot_id)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/butler.sqlite3", f->repo);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    char *sql = sqlite3_mprintf("INSERT INTO collection (name, type) VALUES (%Q, 'RUN');", run);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    if (host != NULL) {
        char ns[64] = "";
        assert_true(readlink("/proc/self/ns/pid", ns, sizeof ns - 1) > 0);
        sql = sqlite3_mprintf("INSERT INTO run_claim (run, host, boot_id, pid_ns, pid, start_time)"
                              " VALUES (%lld, %Q, %Q, %Q, 4242, 12345);",
                              (long long)sqlite3_last_insert_rowid(db), host, boot_id, ns);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_free(sql);
    }
    sqlite3_close(db);
}

/* `pipetask run -o output` of cpBias on the fixture's biases: its exit status. */
static int bias_run(const fixture *f, const char *output)
{
    return pipetask(NULL, "run", "-b", f->repo, "-p", "cpBias.yaml", "-i", "LATISS/raw/all", "-o", output,
                    "-d", "exposure.observation_type='bias'", NULL);
}

/* A claim whose owner cannot be checked from here (another host), or that
 * has no owner (made before owners were recorded), or that names this
 * host with another boot id (this host before a restart, or another
 * machine of the same name), is refused saying so. */
static void a_claim_from_another_host_is_refused_naming_it(void **state)
{
    fixture *f = *state;
    write_claim(f, "u/elsewhere/run", "other-node.example", "0f2c9a7e-0000-4000-8000-000000000001");
    assert_int_equal(bias_run(f, "u/elsewhere"), 1);
    assert_failed_with("output run u/elsewhere/run exists already: it is claimed by pid 4242 on host "
                       "other-node.example, another host: whether it is still running cannot be checked");
    assert_failed_with("`ocps-butler remove-runs ");
    write_claim(f, "u/old/run", NULL, NULL);
    assert_int_equal(bias_run(f, "u/old"), 1);
    assert_failed_with("output run u/old/run exists already: it is empty and has no owner recorded");
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof host - 1), 0);
    write_claim(f, "u/rebooted/run", host, "0f2c9a7e-0000-4000-8000-000000000002");
    assert_int_equal(bias_run(f, "u/rebooted"), 1);
    assert_failed_with(
        "on another boot of a host of this name (this host restarted since, or another machine "
        "of the same name): whether it is still running cannot be checked from here");
    assert_failed_with("`ocps-butler remove-runs ");
}

/* The robust sigma quick-look measured on science frame 10 with these overrides. */
static double quicklook_sigma(const fixture *f, const char *inputs, const char *output, const char *dark,
                              const char *flat)
{
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "quickLook.yaml", "-i", inputs, "-o", output,
                              "-d", "exposure = 2024062400010", "-c", dark, "-c", flat, NULL),
                     0);
    json_t *m = metrics();
    json_t *ql = json_object_get(json_object_get(json_object_get(m, "summary"), "tasks"), "quickLook");
    double sigma = json_number_value(json_object_get(ql, "robust_sigma"));
    json_decref(m);
    assert_true(sigma > 0);
    return sigma;
}

/* cpDark and cpFlat (each finding the bias), then ISR with dark and flat:
 * the flat removes the amplifiers' gain differences from the image. Runs
 * after the test that makes u/ocps/bias1. */
static void dark_and_flat_calibrate_and_flatten(void **state)
{
    fixture *f = *state;
    char *argv1[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "dark",  "--count", "3",
                     "--small",     "--start-seq",  "20",     "--out",  "raws3", NULL};
    char *argv2[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "flat",  "--count", "3",
                     "--small",     "--start-seq",  "30",     "--out",  "raws3", NULL};
    assert_int_equal(tu_run(argv1, NULL), 0);
    assert_int_equal(tu_run(argv2, NULL), 0);
    char *ingest[] = {OCPS_BUTLER,
                      "ingest-raws",
                      f->repo,
                      "raws3/AT_O_20240624_000020.fits",
                      "raws3/AT_O_20240624_000021.fits",
                      "raws3/AT_O_20240624_000022.fits",
                      "raws3/AT_O_20240624_000030.fits",
                      "raws3/AT_O_20240624_000031.fits",
                      "raws3/AT_O_20240624_000032.fits",
                      NULL};
    assert_int_equal(tu_run(ingest, NULL), 0);
    /* the flat needs the bias; without it: the reason */
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "cpFlat.yaml", "-i", "LATISS/raw/all", "-o",
                              "u/flat0", "-d", "exposure.observation_type='flat'", NULL),
                     1);
    assert_failed_with("no bias calibration");
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "cpDark.yaml", "-i",
                              "LATISS/raw/all,u/ocps/bias1", "-o", "u/dark1", "-d",
                              "exposure.observation_type='dark'", "-j", "2", NULL),
                     0);
    assert_int_equal(pipetask(NULL, "run", "-b", f->repo, "-p", "cpFlat.yaml", "-i",
                              "LATISS/raw/all,u/ocps/bias1", "-o", "u/flat1", "-d",
                              "exposure.observation_type='flat'", "-j", "2", NULL),
                     0);
    json_t *m = metrics();
    json_t *o = json_array_get(json_object_get(m, "outputs"), 0);
    assert_string_equal(json_string_value(json_object_get(o, "dataset_type")), "flat");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "data_id"), "physical_filter")),
                        "SDSSr_65mm~empty");
    json_decref(m);
    const char *all = "LATISS/raw/all,u/ocps/bias1,u/dark1,u/flat1";
    double plain = quicklook_sigma(f, all, "u/ql-plain", "isr:doDark=False", "isr:doFlat=False");
    double flat = quicklook_sigma(f, all, "u/ql-flat", "isr:doDark=True", "isr:doFlat=True");
    if (!(flat * 2 < plain)) {
        fail_msg("robust sigma %g with dark and flat, %g without: the flat did not flatten", flat, plain);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(argument_errors_exit_2_and_say_why),
        cmocka_unit_test(overrides_are_checked_against_the_task_fields),
        cmocka_unit_test(pipelines_are_found_by_name_path_and_search_path),
        cmocka_unit_test(a_run_registers_as_butler_does_and_a_failure_leaves_nothing),
        cmocka_unit_test(dark_and_flat_calibrate_and_flatten),
        cmocka_unit_test(concurrent_runs_with_one_output_keep_the_winners_file),
        cmocka_unit_test(a_killed_run_is_taken_over_and_a_live_one_is_refused),
        cmocka_unit_test(a_claim_from_another_host_is_refused_naming_it),
        cmocka_unit_test(brackets_in_file_names_are_literal),
        cmocka_unit_test(a_second_run_into_an_output_chain_keeps_the_first),
        cmocka_unit_test(a_low_soft_descriptor_limit_is_raised),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
