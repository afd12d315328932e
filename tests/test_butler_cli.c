/*
 * test_butler_cli: ocps-butler end to end as a separate process: create,
 * ingest-raws, query-datasets (--where, --json), query-collections,
 * collection-chain, remove-runs, labels through DAF_BUTLER_REPOSITORY_INDEX,
 * and the exit codes (0 success, 1 failure, 64 usage).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "butler_fakeraw.h"
#include "test_util.h"

typedef struct fixture {
    char *dir;
    char *repo;
    char *raws[3];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_make_temp_dir();
    f->repo = tu_path_join(f->dir, "repo");
    const char *types[] = {"BIAS", "BIAS", "OBJECT"};
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "raw%d.fits", i);
        f->raws[i] = tu_path_join(f->dir, name);
        bf_raw r = bf_raw_default("20240101", i + 1, types[i]);
        if (bf_write_raw(f->raws[i], &r) != 0) {
            return -1;
        }
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tu_remove_tree(f->dir);
    for (int i = 0; i < 3; i++) {
        free(f->raws[i]);
    }
    free(f->repo);
    free(f->dir);
    free(f);
    return 0;
}

/* Run ocps-butler with up to 8 arguments (NULL-terminated); returns the
 * exit status, the output in *out (caller frees). */
static int butler(char **out, const char *a1, ...)
{
    char *argv[16] = {OCPS_BUTLER, (char *)a1};
    va_list ap;
    va_start(ap, a1);
    for (int i = 2; a1 != NULL && i < 15; i++) {
        argv[i] = va_arg(ap, char *);
        if (argv[i] == NULL) {
            break;
        }
    }
    va_end(ap);
    char *output = NULL;
    int rc = tu_run(argv, &output);
    if (out != NULL) {
        *out = output;
    } else {
        free(output);
    }
    return rc;
}

static void create_and_ingest(fixture *f)
{
    assert_int_equal(butler(NULL, "create", f->repo, NULL), 0);
    char *out = NULL;
    int rc = butler(&out, "ingest-raws", f->repo, f->raws[0], f->raws[1], f->raws[2], NULL);
    if (rc != 0) {
        fail_msg("ingest-raws: %d %s", rc, out);
    }
    free(out);
}

static void test_create_ingest_query(void **state)
{
    fixture *f = *state;
    create_and_ingest(f);
    char *out = NULL;
    assert_int_equal(
        butler(&out, "query-datasets", f->repo, "raw", "--collections", "LATISS/raw/all", "--where",
               "exposure.observation_type = 'bias' AND exposure IN (2024010100001..2024010100003)", NULL),
        0);
    assert_non_null(strstr(out, "physical_filter"));
    assert_non_null(strstr(out, "2024010100001"));
    assert_non_null(strstr(out, "2024010100002"));
    assert_null(strstr(out, "2024010100003"));
    assert_non_null(strstr(out, "SDSSr_65mm~empty"));
    free(out);
    assert_int_equal(
        butler(&out, "query-datasets", f->repo, "raw", "--collections=LATISS/raw/all", "--json", NULL), 0);
    assert_non_null(strstr(out,
                           "{\"dataset_type\":\"raw\",\"run\":\"LATISS/raw/all\",\"instrument\":\"LATISS\","
                           "\"exposure\":2024010100003,"));
    assert_non_null(strstr(out, "\"observation_type\":\"science\""));
    free(out);
}

static void test_bad_where_names_the_position(void **state)
{
    fixture *f = *state;
    create_and_ingest(f);
    char *out = NULL;
    assert_int_equal(butler(&out, "query-datasets", f->repo, "raw", "--collections", "LATISS/raw/all",
                            "--where", "instrument = )", NULL),
                     1);
    assert_non_null(strstr(out, "--where: column 14: expected a value after '=', found ')'"));
    free(out);
    assert_int_equal(butler(&out, "query-datasets", f->repo, "raw", "--collections", "LATISS/raw/all",
                            "--where", "band = 'r'", NULL),
                     1);
    assert_non_null(strstr(out, "unknown identifier 'band'"));
    free(out);
}

static void test_bad_file_is_named(void **state)
{
    fixture *f = *state;
    assert_int_equal(butler(NULL, "create", f->repo, NULL), 0);
    char *bad = tu_path_join(f->dir, "bad.fits");
    tu_write_file(bad, "SIMPLE  = nonsense", 18);
    char *out = NULL;
    assert_int_equal(butler(&out, "ingest-raws", f->repo, f->raws[0], bad, NULL), 1);
    assert_non_null(strstr(out, bad));
    free(out);
    assert_int_equal(butler(&out, "query-collections", f->repo, NULL), 0);
    assert_null(strstr(out, "LATISS/raw/all")); /* nothing registered, not even the run */
    free(out);
    free(bad);
}

static void test_collections_chain_and_remove(void **state)
{
    fixture *f = *state;
    create_and_ingest(f);
    assert_int_equal(butler(NULL, "collection-chain", f->repo, "LATISS/defaults", "LATISS/raw/all", NULL), 0);
    char *out = NULL;
    assert_int_equal(butler(&out, "query-collections", f->repo, NULL), 0);
    assert_non_null(strstr(out, "LATISS/defaults  CHAINED  LATISS/raw/all"));
    assert_non_null(strstr(out, "LATISS/raw/all   RUN      -"));
    free(out);
    assert_int_equal(butler(&out, "query-collections", f->repo, "--json", NULL), 0);
    assert_non_null(
        strstr(out, "{\"name\":\"LATISS/defaults\",\"type\":\"CHAINED\",\"children\":[\"LATISS/raw/all\"]}"));
    free(out);
    assert_int_equal(butler(&out, "query-datasets", f->repo, "raw", "--collections", "LATISS/defaults", NULL),
                     0);
    assert_non_null(strstr(out, "2024010100002"));
    free(out);
    assert_int_equal(butler(&out, "remove-runs", f->repo, "LATISS/raw/all", NULL), 0);
    free(out);
    assert_int_equal(butler(&out, "query-datasets", f->repo, "raw", "--collections", "LATISS/defaults", NULL),
                     0);
    assert_null(strstr(out, "2024010100002"));
    free(out);
    assert_int_equal(butler(&out, "remove-runs", f->repo, "LATISS/raw/all", NULL), 1);
    assert_non_null(strstr(out, "unknown collection 'LATISS/raw/all'"));
    free(out);
}

static void test_label_through_index(void **state)
{
    fixture *f = *state;
    char *index = tu_path_join(f->dir, "index.yaml");
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "LATISS: %s\n", f->repo);
    tu_write_file(index, yaml, strlen(yaml));
    setenv("DAF_BUTLER_REPOSITORY_INDEX", index, 1);
    assert_int_equal(butler(NULL, "create", "LATISS", NULL), 0);
    assert_int_equal(butler(NULL, "ingest-raws", "LATISS", f->raws[2], NULL), 0);
    char *out = NULL;
    assert_int_equal(butler(&out, "query-datasets", "LATISS", "raw", "--collections", "LATISS/raw/all", NULL),
                     0);
    assert_non_null(strstr(out, "2024010100003"));
    free(out);
    /* a label the index lacks, then no index: each says why it was not found */
    assert_int_equal(butler(&out, "query-collections", "LSSTCam", NULL), 1);
    assert_non_null(strstr(out, "the butler 'LSSTCam' is neither a directory nor a label of "));
    free(out);
    unsetenv("DAF_BUTLER_REPOSITORY_INDEX");
    assert_int_equal(butler(&out, "query-collections", "LATISS", NULL), 1);
    assert_non_null(strstr(out, "DAF_BUTLER_REPOSITORY_INDEX is not set to name it as a label"));
    free(out);
    assert_int_equal(butler(&out, "query-datasets", f->repo, "raw", "--collections", "LATISS/raw/all", NULL),
                     0);
    assert_non_null(strstr(out, "2024010100003"));
    free(out);
    free(index);
}

static void test_usage_errors_exit_64(void **state)
{
    fixture *f = *state;
    assert_int_equal(butler(NULL, NULL), 64);
    assert_int_equal(butler(NULL, "frobnicate", f->repo, NULL), 64);
    assert_int_equal(butler(NULL, "create", NULL), 64);
    assert_int_equal(butler(NULL, "query-datasets", f->repo, "raw", NULL), 64); /* no --collections */
    assert_int_equal(butler(NULL, "query-datasets", f->repo, "raw", "--collections", NULL), 64);
    assert_int_equal(butler(NULL, "query-datasets", f->repo, "raw", "--bogus", NULL), 64);
    assert_int_equal(butler(NULL, "ingest-raws", f->repo, NULL), 64);
    char *out = NULL;
    assert_int_equal(butler(&out, "--help", NULL), 0);
    assert_non_null(strstr(out, "query-datasets REPO TYPE --collections"));
    free(out);
    assert_int_equal(butler(&out, "query-collections", f->dir, NULL), 1); /* not a repository */
    assert_non_null(strstr(out, "not a repository"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_ingest_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_where_names_the_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_file_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collections_chain_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_through_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors_exit_64, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
