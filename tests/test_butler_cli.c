/*
 * test_butler_cli: ocps-butler end to end as a separate process: create,
 * ingest-raws, query-datasets (--where, --json), query-collections,
 * collection-chain, remove-runs, retrieve-artifacts (copies checked by
 * fitsverify), labels through DAF_BUTLER_REPOSITORY_INDEX,
 * and the exit codes (0 success, 1 failure, 64 usage).
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

/* --- retrieve-artifacts --- */

#define FITSVERIFY "/usr/bin/fitsverify"

/* The "path" values of query-datasets --json of the raws, at most 3. */
static size_t raw_paths(const fixture *f, char paths[3][1024])
{
    char *out = NULL;
    assert_int_equal(
        butler(&out, "query-datasets", f->repo, "raw", "--collections", "LATISS/raw/all", "--json", NULL), 0);
    size_t n = 0;
    for (const char *p = strstr(out, "\"path\":\""); p != NULL && n < 3; p = strstr(p + 1, "\"path\":\"")) {
        const char *v = p + 8;
        size_t len = strcspn(v, "\"");
        snprintf(paths[n++], 1024, "%.*s", (int)len, v);
    }
    free(out);
    return n;
}

/* Are the files a and b the same bytes? */
static bool same_bytes(const char *a, const char *b)
{
    size_t na = 0;
    size_t nb = 0;
    char *x = tu_read_file(a, &na);
    char *y = tu_read_file(b, &nb);
    bool same = x != NULL && y != NULL && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* As `butler retrieve-artifacts` (what an OCPS job runs after pipetask):
 * the datasets of the collections whose type matches a --dataset-type
 * glob are copied (--transfer copy) or hard-linked (auto) into DEST, by
 * file name (--no-preserve-path) or under their repository path; the
 * copies are the repository's bytes and pass fitsverify; an existing
 * destination file fails (exit 1), an unknown transfer is a usage error. */
static void test_retrieve_artifacts(void **state)
{
    fixture *f = *state;
    create_and_ingest(f);
    char paths[3][1024];
    assert_int_equal(raw_paths(f, paths), 3);
    char *dest = tu_path_join(f->dir, "job");
    char *out = NULL;
    assert_int_equal(butler(&out, "retrieve-artifacts", f->repo, dest, "--collections", "LATISS/raw/all",
                            "--dataset-type", "verify*Stats", "--dataset-type", "r?w", "--transfer", "copy",
                            "--no-preserve-path", NULL),
                     0);
    char expect[1200];
    snprintf(expect, sizeof expect, "Number of artifacts retrieved into destination %s: 3\n", dest);
    assert_non_null(strstr(out, expect));
    free(out);
    bool verify = access(FITSVERIFY, X_OK) == 0;
    for (int i = 0; i < 3; i++) {
        char src[4200];
        char dst[4200];
        snprintf(src, sizeof src, "%s/%s", f->repo, paths[i]);
        const char *base = strrchr(paths[i], '/') != NULL ? strrchr(paths[i], '/') + 1 : paths[i];
        snprintf(dst, sizeof dst, "%s/%s", dest, base);
        assert_true(same_bytes(src, dst));
        struct stat st;
        assert_int_equal(stat(dst, &st), 0);
        struct stat sst;
        assert_int_equal(stat(src, &sst), 0);
        assert_true(st.st_ino != sst.st_ino); /* a copy */
        if (verify) {                         /* an independent reader of the copy */
            char *argv[] = {FITSVERIFY, "-q", "-e", dst, NULL};
            char *text = NULL;
            int rc = tu_run(argv, &text);
            if (rc != 0) {
                fail_msg("fitsverify %s: %d %s", dst, rc, text ? text : "");
            }
            free(text);
        }
    }
    if (!verify) {
        print_message("fitsverify not installed: copies compared byte for byte only\n");
    }
    /* again: the files are there already */
    assert_int_equal(butler(&out, "retrieve-artifacts", f->repo, dest, "--collections", "LATISS/raw/all",
                            "--dataset-type", "raw", "--no-preserve-path", NULL),
                     1);
    assert_non_null(strstr(out, "File exists"));
    free(out);
    /* a type that has no dataset there: nothing, not an error */
    assert_int_equal(butler(&out, "retrieve-artifacts", f->repo, dest, "--collections", "LATISS/raw/all",
                            "--dataset-type", "bias,dark", NULL),
                     0);
    snprintf(expect, sizeof expect, "Number of artifacts retrieved into destination %s: 0\n", dest);
    assert_non_null(strstr(out, expect));
    free(out);
    /* auto, repository paths kept: hard links on the same file system */
    char *dest2 = tu_path_join(f->dir, "job2");
    assert_int_equal(butler(&out, "retrieve-artifacts", f->repo, dest2, "--collections", "LATISS/raw/all",
                            "--transfer", "auto", NULL),
                     0);
    free(out);
    for (int i = 0; i < 3; i++) {
        char src[4200];
        char dst[4200];
        snprintf(src, sizeof src, "%s/%s", f->repo, paths[i]);
        snprintf(dst, sizeof dst, "%s/%s", dest2, paths[i]);
        assert_true(same_bytes(src, dst));
        struct stat st;
        struct stat sst;
        assert_int_equal(stat(dst, &st), 0);
        assert_int_equal(stat(src, &sst), 0);
        assert_true(st.st_ino == sst.st_ino && st.st_dev == sst.st_dev); /* the repository's file */
    }
    assert_int_equal(butler(&out, "retrieve-artifacts", f->repo, dest2, "--collections", "LATISS/raw/all",
                            "--transfer", "move", NULL),
                     64);
    free(out);
    assert_int_equal(butler(&out, "retrieve-artifacts", f->repo, dest2, NULL), 64); /* no --collections */
    free(out);
    free(dest);
    free(dest2);
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
        cmocka_unit_test_setup_teardown(test_retrieve_artifacts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
