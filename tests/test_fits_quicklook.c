/*
 * test_fits_quicklook: quick-look of a flat-fielded synthetic science
 * frame finds the injected stars and their FWHM, measures the sky, and
 * writes a valid PNG preview of the binned size; the saturated fraction
 * comes from the MASK plane. Also the parallel helper behind -j N.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_fits_util.h"
#include "test_util.h"

typedef struct fx {
    char *dir;
    fp_geometry geom;
    fp_fake_truth truth;
    char isr[1024];
} fx;

/* A science frame through ISR with a master flat (the amplifiers' gain
 * steps would otherwise look like sources). */
static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char flat[1024], err[512] = "";
    f->dir = tu_make_temp_dir();
    fp_geometry_init(&f->geom, "LATISS", true, NULL, 0);
    fp_fake_truth_get(&f->geom, &f->truth);
    char **fl = tf_fake(f->dir, "flat", FP_FRAME_FLAT, 3, 51, 1);
    char **sci = tf_fake(f->dir, "sci", FP_FRAME_SCIENCE, 1, 52, 10);
    fp_combine_config cc;
    fp_combine_config_default(&cc, FP_CALIB_FLAT);
    tf_path(flat, sizeof flat, f->dir, "flat.fits");
    if (!fl || !sci ||
        fp_combine_run((const char *const *)fl, 3, flat, &cc, NULL, NULL, err, sizeof err) != 0)
        return -1;
    fp_isr_config ic;
    fp_isr_config_default(&ic);
    ic.flat_path = flat;
    tf_path(f->isr, sizeof f->isr, f->dir, "sci_isr.fits");
    if (fp_isr_run(sci[0], f->isr, &ic, NULL, NULL, err, sizeof err) != 0)
        return -1;
    fp_free_paths(fl, 3);
    fp_free_paths(sci, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static json_t *quicklook_of(const char *path, const fp_quicklook_config *cfg, const char *png)
{
    json_t *m = NULL;
    char err[512] = "";
    int rc = fp_quicklook_run(path, png, cfg, &m, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "fp_quicklook_run: %s\n", err);
    assert_int_equal(rc, 0);
    return m;
}

static json_t *quicklook(fx *f, const fp_quicklook_config *cfg, const char *png)
{
    return quicklook_of(f->isr, cfg, png);
}

/* The injected stars (15, +-1) with FWHM within 10% of 4 pixels. */
static void test_finds_stars_and_fwhm(void **state)
{
    fx *f = *state;
    fp_quicklook_config cfg;
    fp_quicklook_config_default(&cfg);
    json_t *m = quicklook(f, &cfg, NULL);
    int n = (int)json_integer_value(json_object_get(m, "n_sources"));
    double fwhm = json_real_value(json_object_get(m, "fwhm_pixels"));
    printf("# %d sources (injected %d), FWHM %.3f px (injected %.3f)\n", n, f->truth.n_stars, fwhm,
           f->truth.star_fwhm);
    assert_in_range(n, f->truth.n_stars - 1, f->truth.n_stars + 1);
    assert_float_equal(fwhm, f->truth.star_fwhm, 0.1 * f->truth.star_fwhm);
    json_decref(m);
}

/* Sky median near the flat-fielded sky, robust sigma near its noise. */
static void test_sky_statistics(void **state)
{
    fx *f = *state;
    fp_quicklook_config cfg;
    fp_quicklook_config_default(&cfg);
    json_t *m = quicklook(f, &cfg, NULL);
    double median = json_real_value(json_object_get(m, "median"));
    double sigma = json_real_value(json_object_get(m, "robust_sigma"));
    /* sky 800 e- x illumination ~0.95 / gain ~1.06, normalised by the flat's median */
    assert_true(median > 600 && median < 900);
    /* Poisson + read noise of ~800 e- in ADU: ~27 */
    assert_true(sigma > 18 && sigma < 40);
    assert_float_equal(json_real_value(json_object_get(m, "saturated_fraction")), 0.0, 1e-12);
    json_decref(m);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The preview: PNG signature, IHDR first, 8-bit gray of ceil(504/4) x ceil(500/4). */
static void test_png_preview(void **state)
{
    fx *f = *state;
    char png[1024];
    fp_quicklook_config cfg;
    fp_quicklook_config_default(&cfg);
    for (int s = 0; s < 2; s++) {
        cfg.stretch = s ? FP_STRETCH_PERCENTILE : FP_STRETCH_ASINH;
        json_t *m = quicklook(f, &cfg, tf_path(png, sizeof png, f->dir, "preview.png"));
        assert_string_equal(json_string_value(json_object_get(m, "preview")), png);
        json_decref(m);
        size_t len = 0;
        unsigned char *data = (unsigned char *)tu_read_file(png, &len);
        assert_non_null(data);
        assert_true(len > 33);
        assert_memory_equal(data, "\x89PNG\r\n\x1a\n", 8);
        assert_int_equal(be32(data + 8), 13);
        assert_memory_equal(data + 12, "IHDR", 4);
        assert_int_equal(be32(data + 16), 126);
        assert_int_equal(be32(data + 20), 125);
        assert_int_equal(data[24], 8); /* bit depth */
        assert_int_equal(data[25], 0); /* grayscale */
        assert_memory_equal(data + len - 8, "IEND", 4);
        free(data);
    }
}

/* With saturation flagged in ISR, the saturated fraction is that of the mask. */
static void test_saturated_fraction_from_mask(void **state)
{
    fx *f = *state;
    char **sci = tf_fake(f->dir, "sci2", FP_FRAME_SCIENCE, 1, 53, 11);
    char err[512], out[1024];
    fp_isr_config ic;
    fp_isr_config_default(&ic);
    ic.saturation = 1.0;
    tf_path(out, sizeof out, f->dir, "sat_isr.fits");
    assert_int_equal(fp_isr_run(sci[0], out, &ic, NULL, NULL, err, sizeof err), 0);
    fp_quicklook_config cfg;
    fp_quicklook_config_default(&cfg);
    json_t *m = quicklook_of(out, &cfg, NULL);
    assert_float_equal(json_real_value(json_object_get(m, "saturated_fraction")), 1.0, 1e-12);
    json_decref(m);
    fp_free_paths(sci, 1);
}

typedef struct count_ctx {
    int hits[64];
} count_ctx;

static int count_unit(void *ctx, size_t i, char *err, size_t errlen)
{
    count_ctx *c = ctx;
    c->hits[i]++;
    if (i == 40 || i == 50) {
        snprintf(err, errlen, "unit %zu failed", i);
        return -1;
    }
    return 0;
}

/* Every unit runs once on any number of threads; the lowest failure is reported. */
static void test_parallel_runs_every_unit(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 4; threads++) {
        count_ctx c = {{0}};
        char err[128] = "";
        assert_int_equal(fp_parallel_run(64, threads, count_unit, &c, err, sizeof err), -1);
        assert_string_equal(err, "unit 40 failed");
        for (int i = 0; i < 64; i++)
            assert_int_equal(c.hits[i], 1);
        assert_int_equal(fp_parallel_run(40, threads, count_unit, &c, err, sizeof err), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_stars_and_fwhm),
        cmocka_unit_test(test_sky_statistics),
        cmocka_unit_test(test_png_preview),
        cmocka_unit_test(test_saturated_fraction_from_mask),
        cmocka_unit_test(test_parallel_runs_every_unit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
