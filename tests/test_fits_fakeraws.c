/*
 * test_fits_fakeraws: the synthetic raw generator (ocps-fakeraws) is
 * deterministic and writes headers that follow the rules of real LATISS
 * raws (primary keys, amplifier order, DATASEC/DETSEC, no BIASSEC, RICE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fitsio.h>

#include "test_fits_util.h"
#include "test_util.h"

/* Pixel data of every amplifier HDU of path (malloc'd, n values). */
static int32_t *read_all_pixels(const char *path, size_t *n)
{
    fitsfile *f = NULL;
    int status = 0, nhdu = 0;
    assert_int_equal(fits_open_file(&f, path, READONLY, &status), 0);
    fits_get_num_hdus(f, &nhdu, &status);
    size_t per = 0, total = 0;
    int32_t *all = NULL;
    for (int h = 2; h <= nhdu; h++) {
        long naxes[2];
        int anynul = 0;
        fits_movabs_hdu(f, h, NULL, &status);
        fits_get_img_size(f, 2, naxes, &status);
        per = (size_t)naxes[0] * naxes[1];
        all = realloc(all, sizeof(int32_t) * (total + per));
        fits_read_img(f, TINT, 1, (LONGLONG)per, NULL, all + total, &anynul, &status);
        total += per;
    }
    assert_int_equal(status, 0);
    fits_close_file(f, &status);
    *n = total;
    return all;
}

static void test_same_seed_same_pixels(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir();
    char **a = tf_fake(dir, "a", FP_FRAME_SCIENCE, 2, 42, 1);
    char **b = tf_fake(dir, "b", FP_FRAME_SCIENCE, 2, 42, 1);
    char **c = tf_fake(dir, "c", FP_FRAME_SCIENCE, 2, 43, 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    for (int i = 0; i < 2; i++) {
        size_t na, nb, nc;
        int32_t *pa = read_all_pixels(a[i], &na), *pb = read_all_pixels(b[i], &nb),
                *pc = read_all_pixels(c[i], &nc);
        assert_int_equal(na, 16 * 72 * 256);
        assert_int_equal(na, nb);
        assert_memory_equal(pa, pb, na * sizeof(int32_t));
        assert_int_equal(na, nc);
        assert_true(memcmp(pa, pc, na * sizeof(int32_t)) != 0);
        free(pa);
        free(pb);
        free(pc);
    }
    /* the two files of one run differ (their own noise) */
    size_t n0, n1;
    int32_t *p0 = read_all_pixels(a[0], &n0), *p1 = read_all_pixels(a[1], &n1);
    assert_true(memcmp(p0, p1, n0 * sizeof(int32_t)) != 0);
    free(p0);
    free(p1);
    fp_free_paths(a, 2);
    fp_free_paths(b, 2);
    fp_free_paths(c, 2);
    tu_remove_tree(dir);
    free(dir);
}

static void expect_key(fitsfile *f, const char *key, const char *value)
{
    char v[FLEN_VALUE] = "";
    int status = 0;
    assert_int_equal(fits_read_key(f, TSTRING, key, v, NULL, &status), 0);
    assert_string_equal(v, value);
}

/* The real layout: Segment1k = [63(k+1):63k+1,1:250], Segment0k =
 * [63(k+1):63k+1,500:251] (small geometry). */
static void expect_amp(fitsfile *f, int hdu_index)
{
    int k = hdu_index < 8 ? hdu_index : 15 - hdu_index, status = 0;
    char name[32], detsec[64], dummy[FLEN_VALUE];
    snprintf(name, sizeof name, "Segment%d%d", hdu_index < 8 ? 1 : 0, k);
    if (hdu_index < 8)
        snprintf(detsec, sizeof detsec, "[%d:%d,1:250]", 63 * (k + 1), 63 * k + 1);
    else
        snprintf(detsec, sizeof detsec, "[%d:%d,500:251]", 63 * (k + 1), 63 * k + 1);
    assert_int_equal(fits_movabs_hdu(f, hdu_index + 2, NULL, &status), 0);
    expect_key(f, "EXTNAME", name);
    expect_key(f, "DATASEC", "[2:64,1:250]");
    expect_key(f, "DETSEC", detsec);
    assert_int_not_equal(fits_read_key(f, TSTRING, "BIASSEC", dummy, NULL, &status), 0);
    status = 0;
    assert_true(fits_is_compressed_image(f, &status));
    int bitpix = 0;
    long naxes[2];
    fits_get_img_type(f, &bitpix, &status);
    fits_get_img_size(f, 2, naxes, &status);
    assert_int_equal(bitpix, LONG_IMG);
    assert_int_equal(naxes[0], 72);
    assert_int_equal(naxes[1], 256);
}

static void test_headers_follow_real_raws(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir();
    char **p = tf_fake(dir, "raw", FP_FRAME_DARK, 1, 7, 169);
    assert_non_null(p);
    assert_non_null(strstr(p[0], "AT_O_20240624_000169.fits"));
    fitsfile *f = NULL;
    int status = 0, nhdu = 0;
    assert_int_equal(fits_open_file(&f, p[0], READONLY, &status), 0);
    expect_key(f, "INSTRUME", "LATISS");
    expect_key(f, "OBSID", "AT_O_20240624_000169");
    expect_key(f, "DAYOBS", "20240624");
    expect_key(f, "IMGTYPE", "DARK");
    expect_key(f, "FILTER", "SDSSr_65mm");
    expect_key(f, "GRATING", "empty_1");
    expect_key(f, "DETSIZE", "[1:504,1:500]");
    char card[FLEN_CARD] = "";
    assert_int_equal(fits_read_card(f, "DAYOBS", card, &status), 0);
    assert_int_equal(strncmp(card, "DAYOBS  = '20240624'", 20), 0); /* a string, as real raws */
    long seq = 0;
    double exptime = 0;
    fits_read_key(f, TLONG, "SEQNUM", &seq, NULL, &status);
    fits_read_key(f, TDOUBLE, "EXPTIME", &exptime, NULL, &status);
    assert_int_equal(status, 0);
    assert_int_equal(seq, 169);
    assert_true(exptime > 0);
    char date[FLEN_VALUE] = "";
    fits_read_key(f, TSTRING, "DATE-OBS", date, NULL, &status);
    /* day_obs rolls over at 12:00 TAI: sequence 169 starts after midnight */
    assert_int_equal(strncmp(date, "2024-06-25T0", 12), 0);
    fits_get_num_hdus(f, &nhdu, &status);
    assert_int_equal(nhdu, 17);
    for (int i = 0; i < 16; i++)
        expect_amp(f, i);
    fits_close_file(f, &status);
    fp_free_paths(p, 1);
    tu_remove_tree(dir);
    free(dir);
}

/* The tool, as the checks call it, and its refusals. */
static void test_cli(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir(), out[1024], *output = NULL;
    snprintf(out, sizeof out, "%s/raws", dir);
    char *ok[] = {OCPS_FAKERAWS, "--instrument", "LATISS",      "--type", "flat",   "--count",
                  "3",           "--small",      "--out",       out,      "--seed", "5",
                  "--day-obs",   "20240101",     "--start-seq", "10",     NULL};
    assert_int_equal(tu_run(ok, &output), 0);
    assert_non_null(strstr(output, "AT_O_20240101_000012.fits"));
    free(output);
    char **names = NULL;
    assert_int_equal(tu_list_files(out, ".fits", &names), 3);
    tu_free_names(names, 3);
    /* sequence numbers are those ingest takes: 1..99999 */
    char *seq0[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type",      "bias", "--count", "1",
                    "--small",     "--out",        out,      "--start-seq", "0",    NULL};
    output = NULL;
    assert_int_not_equal(tu_run(seq0, &output), 0);
    assert_non_null(strstr(output, "1..99999"));
    free(output);
    char *seq_last[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type",      "bias",  "--count", "1",
                        "--small",     "--out",        out,      "--start-seq", "99999", NULL};
    output = NULL;
    assert_int_equal(tu_run(seq_last, &output), 0);
    assert_non_null(strstr(output, "AT_O_"));
    free(output);
    char *seq_past[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type",      "bias",  "--count", "2",
                        "--small",     "--out",        out,      "--start-seq", "99999", NULL};
    assert_int_not_equal(tu_run(seq_past, NULL), 0);
    char *bad_type[] = {OCPS_FAKERAWS, "--instrument", "LATISS", "--type", "sky", "--count",
                        "1",           "--out",        out,      NULL};
    assert_int_equal(tu_run(bad_type, NULL), 2);
    char *bad_inst[] = {OCPS_FAKERAWS, "--instrument", "HSC", "--type", "bias", "--count",
                        "1",           "--out",        out,   NULL};
    output = NULL;
    assert_int_equal(tu_run(bad_inst, &output), 1);
    assert_non_null(strstr(output, "HSC"));
    free(output);
    tu_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_pixels),
        cmocka_unit_test(test_headers_follow_real_raws),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
