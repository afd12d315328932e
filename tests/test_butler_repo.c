/*
 * test_butler_repo: the butler-lite repository (processing/butler): raw
 * header rules, ingest all-or-nothing with bad files and duplicates,
 * queries, chained collections and find-first, removal of runs, label
 * resolution, concurrent writers from several processes, and output run
 * claims: taken over from a dead owner (by exactly one of several
 * claimers), refused while the owner lives, and refused in a repository
 * made before claims had owners; a run claimed inside a taken-over run's
 * directory while the takeover removes leftovers keeps its files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "butler_fakeraw.h"
#include "ocps/butler.h"
#include "test_util.h"

typedef struct fixture {
    char *dir;  /* temporary directory */
    char *root; /* dir/repo */
    butler_repo *repo;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = tu_make_temp_dir();
    f->root = tu_path_join(f->dir, "repo");
    char err[512];
    if (butler_create(f->root, &f->repo, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    butler_close(f->repo);
    tu_remove_tree(f->dir);
    free(f->root);
    free(f->dir);
    free(f);
    return 0;
}

/* Write a raw named name in the fixture's directory; returns its path. */
static char *make_raw(fixture *f, const char *name, const bf_raw *r)
{
    char *path = tu_path_join(f->dir, name);
    assert_int_equal(bf_write_raw(path, r), 0);
    return path;
}

static size_t count(fixture *f, const char *type, const char *collection, const char *where)
{
    butler_dataset *rows = NULL;
    size_t n = 0;
    char err[512];
    const char *cols[] = {collection};
    if (butler_query_datasets(f->repo, type, cols, 1, where, false, &rows, &n, err, sizeof err) != 0) {
        if (strncmp(err, "unknown collection", 18) == 0) {
            return 0; /* nothing was ever registered in it */
        }
        fail_msg("query %s: %s", where ? where : "", err);
    }
    free(rows);
    return n;
}

static int count_files(const char *dir)
{
    char **names;
    int n = tu_list_files(dir, ".fits", &names);
    if (n > 0) {
        tu_free_names(names, n);
    }
    return n;
}

static void test_header_rules(void **state)
{
    fixture *f = *state;
    bf_raw r = bf_raw_default("20240101", 7, "OBJECT");
    r.date_obs = "2024-01-02T03:00:00.000"; /* after midnight: day_obs stays DAYOBS */
    char *path = make_raw(f, "science.fits", &r);
    butler_dataset ds;
    char err[512];
    assert_int_equal(butler_read_raw_header(path, &ds, err, sizeof err), 0);
    assert_string_equal(ds.instrument, "LATISS");
    assert_string_equal(ds.dataset_type, "raw");
    assert_string_equal(ds.observation_type, "science");
    assert_int_equal(ds.exposure, 2024010100007LL);
    assert_int_equal(ds.day_obs, 20240101);
    assert_int_equal(ds.seq_num, 7);
    assert_int_equal(ds.detector, 0);
    assert_string_equal(ds.physical_filter, "SDSSr_65mm~empty");
    assert_string_equal(ds.obs_id, "AT_O_20240101_000007");
    assert_string_equal(ds.date_obs, "2024-01-02T03:00:00.000");
    assert_true(ds.exposure_time == 30.0);
    free(path);
}

static void test_imgtype_mapping(void **state)
{
    fixture *f = *state;
    const char *in[] = {"BIAS", "DARK", "FLAT", "OBJECT", "ENGTEST", "CWFS"};
    const char *out[] = {"bias", "dark", "flat", "science", "engtest", "cwfs"};
    for (size_t i = 0; i < 6; i++) {
        bf_raw r = bf_raw_default("20240101", (int)i + 1, in[i]);
        r.instrume = i == 0 ? "LSST_ATISS" : "LATISS"; /* the 2018 name */
        r.grating = i == 1 ? "holo4_003" : "empty_1";
        char *path = make_raw(f, "t.fits", &r);
        butler_dataset ds;
        char err[512];
        assert_int_equal(butler_read_raw_header(path, &ds, err, sizeof err), 0);
        assert_string_equal(ds.observation_type, out[i]);
        assert_string_equal(ds.instrument, "LATISS");
        assert_string_equal(ds.physical_filter, i == 1 ? "SDSSr_65mm~holo4_003" : "SDSSr_65mm~empty");
        free(path);
    }
}

static void test_missing_key_is_named(void **state)
{
    fixture *f = *state;
    bf_raw r = bf_raw_default("20240101", 1, "BIAS");
    r.dayobs = NULL;
    char *path = make_raw(f, "nodayobs.fits", &r);
    butler_dataset ds;
    char err[512];
    assert_int_equal(butler_read_raw_header(path, &ds, err, sizeof err), -1);
    assert_non_null(strstr(err, "nodayobs.fits: the primary header has no DAYOBS"));
    free(path);
}

static void test_ingest_and_query(void **state)
{
    fixture *f = *state;
    const char *types[] = {"BIAS", "BIAS", "FLAT", "OBJECT"};
    const char *days[] = {"20240101", "20240101", "20240102", "20240102"};
    char *files[4];
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "raw%d.fits", i);
        bf_raw r = bf_raw_default(days[i], i + 1, types[i]);
        files[i] = make_raw(f, name, &r);
    }
    char err[1024];
    assert_int_equal(butler_ingest_raws(f->repo, NULL, (const char *const *)files, 4, err, sizeof err), 0);
    assert_int_equal(count(f, "raw", "LATISS/raw/all", NULL), 4);
    assert_int_equal(count(f, "raw", "LATISS/raw/all", "exposure.observation_type = 'bias'"), 2);
    assert_int_equal(
        count(f, "raw", "LATISS/raw/all", "exposure.day_obs = 20240102 AND instrument = 'LATISS'"), 2);
    assert_int_equal(
        count(f, "raw", "LATISS/raw/all", "exposure IN (2024010100001, 2024010200003..2024010200004)"), 3);
    assert_int_equal(count(f, "raw", "LATISS/raw/all", "exposure.exposure_time > 0"), 2);
    assert_int_equal(count(f, "raw", "LATISS/raw/all", "seq_num IN (1..4:2)"), 2);
    assert_int_equal(count(f, "bias", "LATISS/raw/all", NULL), 0);

    butler_dataset *rows = NULL;
    size_t n = 0;
    const char *cols[] = {"LATISS/raw/all"};
    assert_int_equal(butler_query_datasets(f->repo, "raw", cols, 1, "exposure = 2024010200004", false, &rows,
                                           &n, err, sizeof err),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].path, "LATISS/raw/20240102/2024010200004/raw3.fits");
    assert_string_equal(rows[0].run, "LATISS/raw/all");
    assert_int_equal(strncmp(rows[0].checksum, "fnv1a64:", 8), 0);
    char sum[40];
    assert_int_equal(butler_checksum_file(files[3], sum, sizeof sum, err, sizeof err), 0);
    assert_string_equal(rows[0].checksum, sum);
    char *stored = tu_path_join(f->root, rows[0].path);
    struct stat st;
    assert_int_equal(stat(stored, &st), 0);
    free(stored);
    free(rows);
    for (int i = 0; i < 4; i++) {
        free(files[i]);
    }
}

/* A raw given as a relative symbolic link: the repository holds the file
 * itself (a regular file with the raw's bytes), not the link. */
static void test_symlinked_raw_is_ingested_as_a_file(void **state)
{
    fixture *f = *state;
    bf_raw r = bf_raw_default("20240101", 7, "BIAS");
    char *file = make_raw(f, "target.fits", &r);
    char *links = tu_path_join(f->dir, "links");
    assert_int_equal(mkdir(links, 0775), 0);
    char *link_path = tu_path_join(links, "linked.fits");
    assert_int_equal(symlink("../target.fits", link_path), 0);
    char err[1024];
    const char *files[] = {link_path};
    if (butler_ingest_raws(f->repo, NULL, files, 1, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    char *stored = tu_path_join(f->root, "LATISS/raw/20240101/2024010100007/linked.fits");
    struct stat st;
    assert_int_equal(lstat(stored, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    char sum[40], want[40];
    assert_int_equal(butler_checksum_file(stored, sum, sizeof sum, err, sizeof err), 0);
    assert_int_equal(butler_checksum_file(file, want, sizeof want, err, sizeof err), 0);
    assert_string_equal(sum, want);
    free(stored);
    free(link_path);
    free(links);
    free(file);
}

/* A batch with a bad file: refused, the file named, nothing registered or left in the repository. */
static void check_bad_batch(fixture *f, const char *bad_name, const char *want)
{
    bf_raw r = bf_raw_default("20240103", 1, "BIAS");
    char *good = make_raw(f, "good.fits", &r);
    char *bad = tu_path_join(f->dir, bad_name);
    const char *files[] = {good, bad};
    char err[1024];
    assert_int_equal(butler_ingest_raws(f->repo, NULL, files, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, bad));
    assert_non_null(strstr(err, want));
    assert_int_equal(count(f, "raw", "LATISS/raw/all", NULL), 0);
    char *dir = tu_path_join(f->root, "LATISS/raw/20240103/2024010300001");
    assert_true(count_files(dir) <= 0);
    free(dir);
    free(good);
    free(bad);
}

static void test_truncated_file_refused(void **state)
{
    fixture *f = *state;
    /* A collection must exist to query: make the default run with one raw elsewhere. */
    bf_raw r = bf_raw_default("20240104", 2, "BIAS");
    char *path = make_raw(f, "trunc.fits", &r);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(bf_truncate(path, (long)st.st_size - 2880 - 100), 0);
    check_bad_batch(f, "trunc.fits", "");
    free(path);
}

static void test_file_cut_in_its_data_refused(void **state)
{
    fixture *f = *state;
    bf_raw r = bf_raw_default("20240104", 3, "BIAS");
    char *path = make_raw(f, "cut.fits", &r);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(bf_truncate(path, (long)st.st_size - 100), 0);
    check_bad_batch(f, "cut.fits", "truncated");
    free(path);
}

static void test_checksum_mismatch_refused(void **state)
{
    fixture *f = *state;
    bf_raw r = bf_raw_default("20240104", 4, "BIAS");
    r.checksums = 1;
    char *path = make_raw(f, "sum.fits", &r);
    butler_dataset ds;
    char err[1024];
    assert_int_equal(butler_read_raw_header(path, &ds, err, sizeof err), 0);
    /* flip one pixel byte of the first (uncompressed) amplifier: HDU 2's data starts at 2 * 2880 */
    size_t len = 0;
    char *bytes = tu_read_file(path, &len);
    assert_true(len > 2 * 2880 + 10);
    bytes[2 * 2880 + 10] ^= 0x01;
    assert_int_equal(tu_write_file(path, bytes, len), 0);
    free(bytes);
    check_bad_batch(f, "sum.fits", "HDU 2 fails its checksum");
    free(path);
}

static void test_non_fits_file_refused(void **state)
{
    fixture *f = *state;
    char *path = tu_path_join(f->dir, "notes.fits");
    assert_int_equal(tu_write_file(path, "hello, not a FITS file\n", 23), 0);
    check_bad_batch(f, "notes.fits", "not a readable FITS file");
    free(path);
}

static void test_duplicate_ingest_refused(void **state)
{
    fixture *f = *state;
    bf_raw r = bf_raw_default("20240105", 9, "DARK");
    char *path = make_raw(f, "dark.fits", &r);
    const char *files[] = {path};
    char err[1024];
    assert_int_equal(butler_ingest_raws(f->repo, NULL, files, 1, err, sizeof err), 0);
    assert_int_equal(butler_ingest_raws(f->repo, NULL, files, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "already"));
    /* the same exposure under another file name: the data ID conflicts */
    char *copy = make_raw(f, "dark-again.fits", &r);
    files[0] = copy;
    assert_int_equal(butler_ingest_raws(f->repo, NULL, files, 1, err, sizeof err), -1);
    assert_non_null(
        strstr(err, "dark-again.fits: dataset raw {instrument=LATISS,exposure=2024010500009,detector=0} "
                    "already in run 'LATISS/raw/all'"));
    assert_int_equal(count(f, "raw", "LATISS/raw/all", NULL), 1);
    char *dir = tu_path_join(f->root, "LATISS/raw/20240105/2024010500009");
    assert_int_equal(count_files(dir), 1);
    free(dir);
    free(copy);
    free(path);
}

static void test_injection_stays_literal(void **state)
{
    fixture *f = *state;
    bf_raw r = bf_raw_default("20240101", 1, "BIAS");
    char *path = make_raw(f, "b.fits", &r);
    const char *files[] = {path};
    char err[1024];
    assert_int_equal(butler_ingest_raws(f->repo, NULL, files, 1, err, sizeof err), 0);
    assert_int_equal(count(f, "raw", "LATISS/raw/all", "instrument = \"LATISS' OR '1'='1\""), 0);
    assert_int_equal(count(f, "raw", "LATISS/raw/all", "instrument = 'x; DROP TABLE dataset; --'"), 0);
    assert_int_equal(count(f, "raw", "LATISS/raw/all", NULL), 1);
    free(path);
}

/* A calibration product of type (no exposure in its data ID, filter ""
 * for none) written into the repo. */
static void register_calib_of(fixture *f, const char *run, const char *name, const char *type,
                              const char *filter)
{
    char *dir = tu_path_join(f->root, "calib");
    mkdir(dir, 0775);
    char rel[256];
    snprintf(rel, sizeof rel, "calib/%s", name);
    char *file = tu_path_join(f->root, rel);
    assert_int_equal(tu_write_file(file, name, strlen(name)), 0);
    butler_dataset ds = {0};
    snprintf(ds.dataset_type, sizeof ds.dataset_type, "%s", type);
    snprintf(ds.instrument, sizeof ds.instrument, "LATISS");
    snprintf(ds.physical_filter, sizeof ds.physical_filter, "%s", filter);
    ds.exposure = ds.day_obs = ds.seq_num = BUTLER_NONE;
    ds.detector = 0;
    ds.exposure_time = -1;
    snprintf(ds.path, sizeof ds.path, "%s", rel);
    char err[512];
    if (butler_register(f->repo, run, &ds, 1, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    free(file);
    free(dir);
}

/* A bias (no filter) written into the repo. */
static void register_calib(fixture *f, const char *run, const char *name)
{
    register_calib_of(f, run, name, "bias", "");
}

/* The filters of the flats find-first gives in collections, sorted, joined by ','. */
static void flat_filters(fixture *f, const char *const *collections, size_t n, char *out, size_t len)
{
    butler_dataset *rows = NULL;
    size_t nrows = 0;
    char err[512];
    if (butler_query_datasets(f->repo, "flat", collections, n, NULL, true, &rows, &nrows, err, sizeof err) !=
        0) {
        fail_msg("%s", err);
    }
    out[0] = '\0';
    for (size_t i = 0; i < nrows; i++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s@%s", i ? "," : "", rows[i].physical_filter, rows[i].run);
    }
    free(rows);
}

/* A flat's data ID has its physical filter: flats of two filters share a
 * run and do not hide each other in a find-first search, also in a
 * registry written before (data_id without the filter). */
static void test_flats_of_two_filters(void **state)
{
    fixture *f = *state;
    register_calib_of(f, "u/f1/run", "flat-g.fits", "flat", "SDSSg_65mm~empty");
    register_calib_of(f, "u/f1/run", "flat-r.fits", "flat", "SDSSr_65mm~empty");
    register_calib_of(f, "u/f2/run", "flat-r2.fits", "flat", "SDSSr_65mm~empty");
    const char *search[] = {"u/f2/run", "u/f1/run"};
    char got[512];
    flat_filters(f, search, 2, got, sizeof got);
    assert_string_equal(got, "SDSSg_65mm~empty@u/f1/run,SDSSr_65mm~empty@u/f2/run");
    /* as an earlier version stored them (which allowed one flat per run) */
    char *db_path = tu_path_join(f->root, BUTLER_REGISTRY_FILE);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE dataset SET data_id = 'instrument=LATISS,detector=0'"
                                  " WHERE path != 'calib/flat-r.fits'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    free(db_path);
    flat_filters(f, search, 2, got, sizeof got);
    assert_string_equal(got, "SDSSg_65mm~empty@u/f1/run,SDSSr_65mm~empty@u/f2/run");
}

static void test_chains_and_find_first(void **state)
{
    fixture *f = *state;
    register_calib(f, "u/ocps/a/run", "bias-a.fits");
    register_calib(f, "u/ocps/b/run", "bias-b.fits");
    char err[512];
    const char *a[] = {"u/ocps/a/run"};
    const char *b[] = {"u/ocps/b/run", "u/ocps/a"};
    assert_int_equal(butler_define_chain(f->repo, "u/ocps/a", a, 1, err, sizeof err), 0);
    assert_int_equal(butler_define_chain(f->repo, "u/ocps/b", b, 2, err, sizeof err), 0);

    butler_dataset *rows = NULL;
    size_t n = 0;
    const char *search[] = {"u/ocps/b"};
    assert_int_equal(
        butler_query_datasets(f->repo, "bias", search, 1, NULL, true, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].run, "u/ocps/b/run");
    free(rows);
    assert_int_equal(
        butler_query_datasets(f->repo, "bias", search, 1, NULL, false, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].run, "u/ocps/b/run");
    assert_string_equal(rows[1].run, "u/ocps/a/run");
    free(rows);
    const char *reversed[] = {"u/ocps/a", "u/ocps/b"};
    assert_int_equal(
        butler_query_datasets(f->repo, "bias", reversed, 2, NULL, true, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].run, "u/ocps/a/run");
    free(rows);

    /* a cycle, an unknown child and a RUN redefined as a chain are refused */
    const char *cycle[] = {"u/ocps/b"};
    assert_int_equal(butler_define_chain(f->repo, "u/ocps/a", cycle, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "cycle"));
    const char *unknown[] = {"nope"};
    assert_int_equal(butler_define_chain(f->repo, "u/ocps/c", unknown, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown collection 'nope'"));
    assert_int_equal(butler_define_chain(f->repo, "u/ocps/a/run", a, 0, err, sizeof err), -1);

    butler_collection *c = NULL;
    assert_int_equal(butler_list_collections(f->repo, &c, &n, err, sizeof err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(c[2].name, "u/ocps/b");
    assert_string_equal(c[2].type, "CHAINED");
    assert_string_equal(c[2].children, "u/ocps/b/run,u/ocps/a");
    assert_string_equal(c[3].type, "RUN");
    butler_collections_free(c, n);
}

/* Outputs and their output chain in one transaction: a chain that cannot
 * be defined leaves neither the run nor its datasets. */
static void test_register_chained_is_all_or_nothing(void **state)
{
    fixture *f = *state;
    char *dir = tu_path_join(f->root, "calib");
    mkdir(dir, 0775);
    char *file = tu_path_join(f->root, "calib/out.fits");
    assert_int_equal(tu_write_file(file, "x", 1), 0);
    butler_dataset ds = {0};
    snprintf(ds.dataset_type, sizeof ds.dataset_type, "bias");
    snprintf(ds.instrument, sizeof ds.instrument, "LATISS");
    ds.exposure = ds.day_obs = ds.seq_num = BUTLER_NONE;
    ds.exposure_time = -1;
    snprintf(ds.path, sizeof ds.path, "calib/out.fits");
    char err[512];
    const char *bad[] = {"u/ocps/j1/run", "no/such/input"};
    assert_int_equal(
        butler_register_chained(f->repo, "u/ocps/j1/run", &ds, 1, "u/ocps/j1", bad, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown collection 'no/such/input'"));
    butler_collection *c = NULL;
    size_t n = 0;
    assert_int_equal(butler_list_collections(f->repo, &c, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    butler_collections_free(c, n);
    const char *good[] = {"u/ocps/j1/run"};
    assert_int_equal(
        butler_register_chained(f->repo, "u/ocps/j1/run", &ds, 1, "u/ocps/j1", good, 1, err, sizeof err), 0);
    const char *search[] = {"u/ocps/j1"};
    butler_dataset *rows = NULL;
    assert_int_equal(
        butler_query_datasets(f->repo, "bias", search, 1, NULL, true, &rows, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].run, "u/ocps/j1/run");
    free(rows);
    free(file);
    free(dir);
}

static void test_remove_runs(void **state)
{
    fixture *f = *state;
    register_calib(f, "r1", "one.fits");
    register_calib(f, "r2", "two.fits");
    char err[512];
    const char *children[] = {"r1", "r2"};
    assert_int_equal(butler_define_chain(f->repo, "chain", children, 2, err, sizeof err), 0);
    const char *bad[] = {"r1", "chain"};
    assert_int_equal(butler_remove_runs(f->repo, bad, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "'chain' is CHAINED"));
    assert_int_equal(count(f, "bias", "r1", NULL), 1); /* nothing removed */

    const char *runs[] = {"r1"};
    assert_int_equal(butler_remove_runs(f->repo, runs, 1, err, sizeof err), 0);
    char *gone = tu_path_join(f->root, "calib/one.fits");
    struct stat st;
    assert_int_equal(stat(gone, &st), -1);
    free(gone);
    butler_collection *c = NULL;
    size_t n = 0;
    assert_int_equal(butler_list_collections(f->repo, &c, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].children, "r2");
    butler_collections_free(c, n);
    assert_int_equal(count(f, "bias", "chain", NULL), 1);
    assert_int_equal(butler_remove_runs(f->repo, runs, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown collection 'r1'"));
}

static void test_unknown_collection_and_type(void **state)
{
    fixture *f = *state;
    butler_dataset *rows = NULL;
    size_t n = 0;
    char err[512];
    const char *cols[] = {"nowhere"};
    assert_int_equal(butler_query_datasets(f->repo, "raw", cols, 1, NULL, false, &rows, &n, err, sizeof err),
                     -1);
    assert_string_equal(err, "unknown collection 'nowhere'");
    butler_dataset ds = {0};
    snprintf(ds.dataset_type, sizeof ds.dataset_type, "calexp");
    snprintf(ds.instrument, sizeof ds.instrument, "LATISS");
    snprintf(ds.path, sizeof ds.path, "x.fits");
    char *file = tu_path_join(f->root, "x.fits");
    tu_write_file(file, "x", 1);
    assert_int_equal(butler_register(f->repo, "run", &ds, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown dataset type 'calexp'"));
    assert_int_equal(butler_register_dataset_type(f->repo, "calexp", err, sizeof err), 0);
    assert_int_equal(butler_register(f->repo, "run", &ds, 1, err, sizeof err), 0);
    snprintf(ds.path, sizeof ds.path, "../outside.fits");
    assert_int_equal(butler_register(f->repo, "run", &ds, 1, err, sizeof err), -1);
    free(file);
}

static void test_label_resolution(void **state)
{
    fixture *f = *state;
    char *index = tu_path_join(f->dir, "repos.yaml");
    char yaml[1024];
    snprintf(yaml, sizeof yaml, "LATISS: %s\nembargo: file://%s/butler.yaml\nremote: s3://bucket/repo\n",
             f->root, f->root);
    assert_int_equal(tu_write_file(index, yaml, strlen(yaml)), 0);
    setenv("DAF_BUTLER_REPOSITORY_INDEX", index, 1);
    char out[1024], err[512];
    assert_int_equal(butler_resolve_label("LATISS", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, f->root);
    assert_int_equal(butler_resolve_label("embargo", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, f->root);
    assert_int_equal(butler_resolve_label("/some/path", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/some/path");
    assert_int_equal(butler_resolve_label("remote", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "only local repositories"));
    butler_repo *repo = NULL;
    assert_int_equal(butler_resolve_label("LATISS", out, sizeof out, err, sizeof err), 0);
    assert_int_equal(butler_open(out, &repo, err, sizeof err), 0);
    butler_close(repo);
    unsetenv("DAF_BUTLER_REPOSITORY_INDEX");
    assert_int_equal(butler_resolve_label("LATISS", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "LATISS");
    free(index);
}

static void test_open_and_create_errors(void **state)
{
    fixture *f = *state;
    butler_repo *repo = NULL;
    char err[512];
    assert_int_equal(butler_create(f->root, &repo, err, sizeof err), -1);
    assert_non_null(strstr(err, "already a repository"));
    assert_int_equal(butler_open(f->dir, &repo, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a repository"));
}

/* Write a file (and its directories) at rel inside the repository. */
static void write_repo_file(fixture *f, const char *rel)
{
    char *path = tu_path_join(f->root, rel);
    for (char *slash = strchr(path + strlen(f->root) + 1, '/'); slash != NULL;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0775);
        *slash = '/';
    }
    assert_int_equal(tu_write_file(path, rel, strlen(rel)), 0);
    free(path);
}

static bool repo_file_exists(fixture *f, const char *rel)
{
    char *path = tu_path_join(f->root, rel);
    bool exists = access(path, F_OK) == 0;
    free(path);
    return exists;
}

/* A bias registered into run at rel (its file written first). */
static void register_file(fixture *f, const char *run, const char *rel)
{
    write_repo_file(f, rel);
    butler_dataset ds = {0};
    snprintf(ds.dataset_type, sizeof ds.dataset_type, "bias");
    snprintf(ds.instrument, sizeof ds.instrument, "LATISS");
    ds.exposure = ds.day_obs = ds.seq_num = BUTLER_NONE;
    ds.exposure_time = -1;
    snprintf(ds.path, sizeof ds.path, "%s", rel);
    char err[512];
    if (butler_register(f->repo, run, &ds, 1, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
}

/* Child: claim run in a connection of its own and write a file into the
 * run's directory, then exit (leaving the claim). Returns its pid, reaped. */
static pid_t claim_and_die(fixture *f, const char *run, const char *leftover)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        butler_repo *repo;
        char err[512];
        int rc = butler_open(f->root, &repo, err, sizeof err) == 0 &&
                         butler_claim_run(repo, run, NULL, err, sizeof err) == 0
                     ? 0
                     : 1;
        butler_close(repo);
        if (rc == 0) {
            write_repo_file(f, leftover);
        }
        _exit(rc);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return pid;
}

/* A claim whose owner has exited is taken over: its owner is replaced,
 * the files it left in the run's directory are removed, and registered
 * files and another collection's directory there are kept. A claim whose
 * owner is alive (this process) is refused naming it. */
static void test_claim_of_a_dead_owner_is_taken_over(void **state)
{
    fixture *f = *state;
    pid_t dead = claim_and_die(f, "u/dead/run", "u/dead/run/postISRCCD/1/left.fits");
    register_file(f, "u/dead/run/sub", "u/dead/run/sub/kept.fits");
    register_file(f, "elsewhere", "u/dead/run/registered.fits");
    butler_claim_info info;
    char err[512];
    assert_int_equal(butler_claim_run(f->repo, "u/dead/run", &info, err, sizeof err), 0);
    assert_true(info.taken_over);
    assert_int_equal(info.owner.pid, dead);
    assert_non_null(strstr(info.reason, "which is no longer running"));
    assert_false(repo_file_exists(f, "u/dead/run/postISRCCD/1/left.fits"));
    assert_false(repo_file_exists(f, "u/dead/run/postISRCCD"));
    assert_true(repo_file_exists(f, "u/dead/run/sub/kept.fits"));
    assert_true(repo_file_exists(f, "u/dead/run/registered.fits"));
    /* now held by this process, alive */
    assert_int_equal(butler_claim_run(f->repo, "u/dead/run", &info, err, sizeof err), 1);
    assert_false(info.taken_over);
    assert_int_equal(info.owner.pid, getpid());
    char want[512];
    snprintf(want, sizeof want, "it is claimed by pid %ld on host %s, which is still running", (long)getpid(),
             info.owner.host);
    assert_string_equal(info.reason, want);
    /* a run holding datasets is not taken over, whoever claimed it */
    claim_and_die(f, "u/full/run", "u/full/run/x.fits");
    register_file(f, "u/full/run", "u/full/run/y.fits");
    assert_int_equal(butler_claim_run(f->repo, "u/full/run", &info, err, sizeof err), 1);
    assert_string_equal(info.reason, "it holds 1 dataset");
}

enum { TAKERS = 4 };

/* Several processes take over one dead claim at once: exactly one wins
 * (each stays alive until all have tried). */
static void test_one_of_racing_takers_wins(void **state)
{
    fixture *f = *state;
    claim_and_die(f, "u/race/run", "u/race/run/left.fits");
    int results[2], go[2];
    assert_int_equal(pipe(results), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pids[TAKERS];
    for (int k = 0; k < TAKERS; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            close(results[0]);
            close(go[1]);
            butler_repo *repo;
            char err[512];
            char rc = 'e';
            if (butler_open(f->root, &repo, err, sizeof err) == 0) {
                rc = (char)('0' + butler_claim_run(repo, "u/race/run", NULL, err, sizeof err));
                butler_close(repo);
            }
            char c;
            _exit(write(results[1], &rc, 1) == 1 && read(go[0], &c, 1) >= 0 ? 0 : 1);
        }
    }
    close(results[1]);
    close(go[0]);
    int wins = 0, refused = 0;
    for (int k = 0; k < TAKERS; k++) {
        char rc;
        assert_int_equal(read(results[0], &rc, 1), 1);
        wins += rc == '0';
        refused += rc == '1';
    }
    close(go[1]); /* the takers may exit now */
    for (int k = 0; k < TAKERS; k++) {
        assert_int_equal(waitpid(pids[k], NULL, 0), pids[k]);
    }
    close(results[0]);
    assert_int_equal(wins, 1);
    assert_int_equal(refused, TAKERS - 1);
}

/* A claim of a nested run that another process attempts while a takeover
 * sweeps leftovers: the takeover's connection is traced, and when it has
 * just asked whether the nested run's directory belongs to a collection
 * (it does not yet), the other process is told to claim the nested run
 * and write a file in it; the takeover waits up to a second for that. */
typedef struct nested_race {
    int go;     /* write end: the other process claims now */
    int done;   /* read end: it has claimed and written its file */
    bool fired; /* the takeover asked about the nested directory */
} nested_race;

/* The race the next connection opened is traced for: the SQLite
 * auto-extension that installs the trace has no argument of its own. */
static nested_race *traced_race;

static int on_statement_done(unsigned type, void *ctx, void *stmt, void *x)
{
    (void)x;
    nested_race *r = ctx;
    if (type != SQLITE_TRACE_PROFILE || r->fired) {
        return 0;
    }
    char *sql = sqlite3_expanded_sql(stmt);
    if (sql != NULL && strstr(sql, "FROM collection") != NULL && strstr(sql, "'u/x/nested'") != NULL) {
        r->fired = true;
        char c = 'g';
        if (write(r->go, &c, 1) == 1) {
            struct pollfd pfd = {.fd = r->done, .events = POLLIN};
            poll(&pfd, 1, 1000);
        }
    }
    sqlite3_free(sql);
    return 0;
}

static int trace_new_connection(sqlite3 *db, char **errmsg, const sqlite3_api_routines *api)
{
    (void)errmsg;
    (void)api;
    sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, on_statement_done, traced_race);
    return SQLITE_OK;
}

/* Child: once told, claim u/x/nested in a connection of its own and write
 * a file into it (not registered yet, as a pipetask's outputs before it
 * registers them); reports 'w' when written, 'e' if refused. */
static void nested_claimer(fixture *f, int go, int done)
{
    char c;
    if (read(go, &c, 1) != 1) {
        _exit(1);
    }
    butler_repo *repo = NULL;
    char err[512];
    int rc = butler_open(f->root, &repo, err, sizeof err) == 0 &&
                     butler_claim_run(repo, "u/x/nested", NULL, err, sizeof err) == 0
                 ? 0
                 : 1;
    butler_close(repo);
    if (rc == 0) {
        write_repo_file(f, "u/x/nested/new.fits");
    }
    c = rc == 0 ? 'w' : 'e';
    _exit(write(done, &c, 1) == 1 ? rc : 1);
}

/* Taking over u/x removes its leftovers but not the file of the run
 * u/x/nested that another process claims and writes while the takeover
 * looks through u/x/ (the claim waits for the takeover to finish). */
static void test_a_run_claimed_during_a_takeover_keeps_its_files(void **state)
{
    fixture *f = *state;
    claim_and_die(f, "u/x", "u/x/left.fits");
    char *nested_dir = tu_path_join(f->root, "u/x/nested");
    assert_int_equal(mkdir(nested_dir, 0775), 0);
    free(nested_dir);
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        close(done[0]);
        nested_claimer(f, go[0], done[1]);
    }
    close(go[0]);
    close(done[1]);
    nested_race race = {.go = go[1], .done = done[0]};
    traced_race = &race;
    assert_int_equal(sqlite3_auto_extension((void (*)(void))trace_new_connection), SQLITE_OK);
    butler_repo *taker;
    char err[512];
    int opened = butler_open(f->root, &taker, err, sizeof err);
    sqlite3_cancel_auto_extension((void (*)(void))trace_new_connection);
    traced_race = NULL;
    assert_int_equal(opened, 0);
    butler_claim_info info;
    assert_int_equal(butler_claim_run(taker, "u/x", &info, err, sizeof err), 0);
    butler_close(taker);
    close(go[1]);
    char c = 0;
    assert_int_equal(read(done[0], &c, 1), 1);
    close(done[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(info.taken_over);
    assert_true(race.fired);
    assert_int_equal(c, 'w');
    assert_false(repo_file_exists(f, "u/x/left.fits"));
    assert_true(repo_file_exists(f, "u/x/nested/new.fits"));
}

/* A repository made before claims recorded their owner (schema_version 1,
 * no run_claim table) opens; its empty runs are refused as before, and a
 * new claim adds the table. */
static void test_claims_in_a_repository_without_owners(void **state)
{
    fixture *f = *state;
    butler_close(f->repo);
    f->repo = NULL;
    char *db_path = tu_path_join(f->root, "butler.sqlite3");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE run_claim;"
                                  "UPDATE butler_meta SET value = '1' WHERE key = 'schema_version';"
                                  "INSERT INTO collection (name, type) VALUES ('u/old/run', 'RUN');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char err[512];
    assert_int_equal(butler_open(f->root, &f->repo, err, sizeof err), 0);
    butler_claim_info info;
    assert_int_equal(butler_claim_run(f->repo, "u/old/run", &info, err, sizeof err), 1);
    assert_false(info.has_owner);
    assert_non_null(strstr(info.reason, "no owner recorded"));
    assert_int_equal(butler_claim_run(f->repo, "u/new/run", &info, err, sizeof err), 0);
    assert_false(info.taken_over);
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT value, (SELECT count(*) FROM run_claim) FROM butler_meta"
                                        " WHERE key = 'schema_version'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "2");
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(db_path);
}

enum { WRITERS = 8, PER_WRITER = 50 };

/* Child k: its own connection, 50 registrations, each its own transaction. */
static int writer(const char *root, int k)
{
    butler_repo *repo;
    char err[512];
    if (butler_open(root, &repo, err, sizeof err) != 0) {
        fprintf(stderr, "writer %d: %s\n", k, err);
        return 1;
    }
    char run[64];
    snprintf(run, sizeof run, "u/ocps/w%d/run", k);
    for (int i = 0; i < PER_WRITER; i++) {
        butler_dataset ds = {0};
        snprintf(ds.dataset_type, sizeof ds.dataset_type, "postISRCCD");
        snprintf(ds.instrument, sizeof ds.instrument, "LATISS");
        ds.exposure = 2024010100000LL + i;
        ds.detector = 0;
        ds.day_obs = 20240101;
        ds.seq_num = i;
        ds.exposure_time = 1;
        snprintf(ds.path, sizeof ds.path, "w%d-%d.fits", k, i);
        char file[2200];
        snprintf(file, sizeof file, "%s/%s", root, ds.path);
        FILE *fp = fopen(file, "w");
        if (fp == NULL) {
            return 1;
        }
        fprintf(fp, "%d %d\n", k, i);
        fclose(fp);
        if (butler_register(repo, run, &ds, 1, err, sizeof err) != 0) {
            fprintf(stderr, "writer %d: %s\n", k, err);
            butler_close(repo);
            return 1;
        }
    }
    butler_close(repo);
    return 0;
}

static void test_concurrent_writers(void **state)
{
    fixture *f = *state;
    pid_t pids[WRITERS];
    for (int k = 0; k < WRITERS; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            _exit(writer(f->root, k));
        }
    }
    for (int k = 0; k < WRITERS; k++) {
        int status;
        assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    for (int k = 0; k < WRITERS; k++) {
        char run[64];
        snprintf(run, sizeof run, "u/ocps/w%d/run", k);
        assert_int_equal(count(f, "postISRCCD", run, NULL), PER_WRITER);
    }
    char *db_path = tu_path_join(f->root, "butler.sqlite3");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM dataset", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), WRITERS * PER_WRITER);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(db_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imgtype_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlinked_raw_is_ingested_as_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_cut_in_its_data_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_mismatch_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_fits_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_ingest_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injection_stays_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chains_and_find_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flats_of_two_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_collection_and_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_chained_is_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_resolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_and_create_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_of_a_dead_owner_is_taken_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_of_racing_takers_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_run_claimed_during_a_takeover_keeps_its_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_claims_in_a_repository_without_owners, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
