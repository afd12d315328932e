/*
 * test_fits_isr: instrument signature removal. Overscan subtraction leaves
 * the injected data-minus-overscan offset (zero-mean noise around it);
 * amplifiers land where DETSEC says, flipped ones included; BIASSEC
 * overrides the geometry; a science frame calibrated with master bias,
 * dark and flat made from the generator's frames recovers the flat sky;
 * saturation and uncovered pixels are flagged in the MASK plane.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>
#include <fitsio.h>

#include "test_fits_util.h"
#include "test_util.h"

typedef tf_fx fx;

static int setup(void **state)
{
    *state = tf_fx_new();
    return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    tf_fx_free(*state);
    return 0;
}

/* ISR of raw into dir/name with cfg; returns the IMAGE (and MASK). */
static float *isr(fx *f, const char *raw, const fp_isr_config *cfg, const char *name, short **mask)
{
    char out[1024], err[512] = "";
    tf_path(out, sizeof out, f->dir, name);
    fp_provenance prov = {
        .job_id = "job-2", .pipeline = "isr.yaml", .task_label = "isr", .inputs = &raw, .n_inputs = 1};
    json_t *metrics = NULL;
    int rc = fp_isr_run(raw, out, cfg, &prov, &metrics, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "fp_isr_run: %s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(json_string_value(json_object_get(metrics, "task")), "isr");
    json_decref(metrics);
    fitsfile *ff = NULL;
    int status = 0, nx = 0, ny = 0, anynul = 0;
    float *img = NULL;
    assert_int_equal(fp_image_read(out, &img, &nx, &ny, err, sizeof err), 0);
    assert_int_equal(nx, f->geom.det_nx);
    assert_int_equal(ny, f->geom.det_ny);
    if (mask) {
        *mask = malloc(sizeof(short) * (size_t)nx * ny);
        fits_open_file(&ff, out, READONLY, &status);
        fits_movnam_hdu(ff, IMAGE_HDU, "MASK", 0, &status);
        fits_read_img(ff, TSHORT, 1, (LONGLONG)nx * ny, NULL, *mask, &anynul, &status);
        fits_close_file(ff, &status);
        assert_int_equal(status, 0);
    }
    return img;
}

/* Bias frames: after overscan subtraction by row (median or mean), each
 * amplifier is the injected offset plus zero-mean noise. */
static void test_overscan_subtraction_zero_mean(void **state)
{
    fx *f = *state;
    char **raws = tf_fake(f->dir, "bias", FP_FRAME_BIAS, 1, 21, 1);
    fp_isr_config cfg;
    fp_isr_config_default(&cfg);
    for (int m = 0; m < 2; m++) {
        cfg.overscan = m ? FP_OVERSCAN_MEAN : FP_OVERSCAN_MEDIAN;
        float *img = isr(f, raws[0], &cfg, "bias_isr.fits", NULL);
        for (int a = 0; a < 16; a++) /* per-row overscan noise of one frame: ~0.15 ADU per amplifier */
            assert_float_equal(tf_amp_mean(&f->geom, a, img) - f->truth.bias_offset[a], 0.0, 0.6);
        double sum = 0;
        for (int a = 0; a < 16; a++)
            sum += tf_amp_mean(&f->geom, a, img) - f->truth.bias_offset[a];
        assert_float_equal(sum / 16, 0.0, 0.15);
        free(img);
    }
    fp_free_paths(raws, 1);
}

/* A raw made by hand: amplifier a's data pixel (i, j) holds
 * 100000 (a+1) + 256 j + i, overscan and prescan hold `over`. */
static void write_coded_raw(const char *path, const fp_geometry *g, float over, const char *amp0_biassec)
{
    fitsfile *ff = NULL;
    int status = 0;
    char name[1100], sec[64];
    snprintf(name, sizeof name, "!%s", path);
    fits_create_file(&ff, name, &status);
    fits_create_img(ff, BYTE_IMG, 0, NULL, &status);
    fits_write_key_str(ff, "INSTRUME", "LATISS", "", &status);
    fits_write_key_str(ff, "DETSIZE", "[1:504,1:500]", "", &status);
    int32_t *pix = malloc(sizeof(int32_t) * (size_t)g->raw_nx * g->raw_ny);
    long naxes[2] = {g->raw_nx, g->raw_ny};
    for (int a = 0; a < 16; a++) {
        const fp_amp *amp = &g->amps[a];
        for (int y = 0; y < g->raw_ny; y++)
            for (int x = 0; x < g->raw_nx; x++) {
                int i = x - (amp->datasec.x1 - 1), j = y;
                int in = i >= 0 && i < g->data_nx && j < g->data_ny;
                pix[(size_t)y * g->raw_nx + x] = in ? 100000 * (a + 1) + 256 * j + i : (int32_t)over;
            }
        fits_create_img(ff, LONG_IMG, 2, naxes, &status);
        fits_write_key_str(ff, "EXTNAME", (char *)amp->name, "", &status);
        fp_section_format(&amp->datasec, sec, sizeof sec);
        fits_write_key_str(ff, "DATASEC", sec, "", &status);
        fp_section_format(&amp->detsec, sec, sizeof sec);
        fits_write_key_str(ff, "DETSEC", sec, "", &status);
        if (a == 0 && amp0_biassec)
            fits_write_key_str(ff, "BIASSEC", (char *)amp0_biassec, "", &status);
        fits_write_img(ff, TINT, 1, (LONGLONG)g->raw_nx * g->raw_ny, pix, &status);
    }
    fits_close_file(ff, &status);
    assert_int_equal(status, 0);
    free(pix);
}

/* Every detector pixel holds the value of the amplifier and data pixel the
 * real layout puts there: Segment1k at x = 63(k+1)-1-i, y = j; Segment0k
 * at x = 63(k+1)-1-i, y = 499-j (x flipped, top row also y flipped). */
static void test_assembly_follows_detsec(void **state)
{
    fx *f = *state;
    char raw[1024];
    write_coded_raw(tf_path(raw, sizeof raw, f->dir, "coded.fits"), &f->geom, 0.0f, NULL);
    fp_isr_config cfg;
    fp_isr_config_default(&cfg);
    cfg.saturation = 0;
    short *mask = NULL;
    float *img = isr(f, raw, &cfg, "coded_isr.fits", &mask);
    for (int y = 0; y < 500; y++)
        for (int x = 0; x < 504; x++) {
            int k = x / 63, i = 63 * (k + 1) - 1 - x;
            int a = y < 250 ? k : 15 - k, j = y < 250 ? y : 499 - y;
            float expect = (float)(100000 * (a + 1) + 256 * j + i);
            if (img[(size_t)y * 504 + x] != expect)
                fail_msg("pixel (%d,%d): %g, expected %g (amp %d, i %d, j %d)", x, y,
                         img[(size_t)y * 504 + x], expect, a, i, j);
            assert_int_equal(mask[(size_t)y * 504 + x], 0);
        }
    free(img);
    free(mask);
}

/* A BIASSEC key overrides the geometry's serial overscan. */
static void test_biassec_overrides_geometry(void **state)
{
    fx *f = *state;
    char raw[1024];
    write_coded_raw(tf_path(raw, sizeof raw, f->dir, "coded.fits"), &f->geom, 7.0f, "[1:1,1:250]");
    fitsfile *ff = NULL;
    int status = 0;
    /* the geometry's overscan columns of amp 0 now hold 1000: only the prescan column holds 7 */
    fits_open_file(&ff, raw, READWRITE, &status);
    fits_movabs_hdu(ff, 2, NULL, &status);
    int32_t big[8] = {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000};
    for (long y = 1; y <= 256; y++) {
        long fp[2] = {65, y}, lp[2] = {72, y};
        fits_write_subset(ff, TINT, fp, lp, big, &status);
    }
    fits_close_file(ff, &status);
    assert_int_equal(status, 0);
    fp_isr_config cfg;
    fp_isr_config_default(&cfg);
    cfg.saturation = 0;
    float *img = isr(f, raw, &cfg, "coded_isr.fits", NULL);
    /* Segment10, data pixel (0, 0) at detector (62, 0) */
    assert_float_equal(img[62], 100000.0 - 7.0, 1e-3);
    /* other amplifiers: the geometry's overscan (7) */
    assert_float_equal(img[63 + 62], 200000.0 - 7.0, 1e-3);
    free(img);
}

/* M = median over the detector of illumination / gain: the sky of a frame
 * flat-fielded by a median-1 flat comes out at sky x M ADU. */
static double flat_median(const fx *f)
{
    const fp_geometry *g = &f->geom;
    size_t n = (size_t)g->det_nx * g->det_ny;
    float *v = malloc(sizeof(float) * n);
    for (int y = 0; y < g->det_ny; y++)
        for (int x = 0; x < g->det_nx; x++) {
            int a = y < g->data_ny ? x / g->data_nx : 15 - x / g->data_nx;
            v[(size_t)y * g->det_nx + x] = (float)(fp_fake_illumination(g, x, y) / f->truth.gain[a]);
        }
    double m = fp_median_inplace(v, n);
    free(v);
    return m;
}

/* Master bias, dark and flat from generated frames; the ISR of a science
 * frame is a flat sky (stars aside) at sky x M, the same on every amplifier. */
/* The output's primary header carries the raw's observation time with
 * its time scale: DATE-OBS, MJD-OBS and TIMESYS (TAI). */
static void assert_obs_time_copied(fx *f, const char *name)
{
    char out[1024], value[FLEN_VALUE];
    tf_path(out, sizeof out, f->dir, name);
    fitsfile *ff = NULL;
    int status = 0;
    double mjd = 0;
    assert_int_equal(fits_open_diskfile(&ff, out, READONLY, &status), 0);
    assert_int_equal(fits_read_key_str(ff, "TIMESYS", value, NULL, &status), 0);
    assert_string_equal(value, "TAI");
    assert_int_equal(fits_read_key_str(ff, "DATE-OBS", value, NULL, &status), 0);
    assert_int_equal(fits_read_key_dbl(ff, "MJD-OBS", &mjd, NULL, &status), 0);
    assert_true(mjd > 50000);
    fits_close_file(ff, &status);
}

static void test_science_recovers_sky(void **state)
{
    fx *f = *state;
    char **b = tf_fake(f->dir, "bias", FP_FRAME_BIAS, 5, 31, 1);
    char **d = tf_fake(f->dir, "dark", FP_FRAME_DARK, 3, 32, 10);
    char **fl = tf_fake(f->dir, "flat", FP_FRAME_FLAT, 4, 33, 20);
    char **s = tf_fake(f->dir, "sci", FP_FRAME_SCIENCE, 1, 34, 30);
    char bias[1024], dark[1024], flat[1024], err[512];
    fp_combine_config cc;
    fp_combine_config_default(&cc, FP_CALIB_BIAS);
    tf_path(bias, sizeof bias, f->dir, "bias.fits");
    tf_path(dark, sizeof dark, f->dir, "dark.fits");
    tf_path(flat, sizeof flat, f->dir, "flat.fits");
    assert_int_equal(fp_combine_run((const char *const *)b, 5, bias, &cc, NULL, NULL, err, sizeof err), 0);
    fp_combine_config_default(&cc, FP_CALIB_DARK);
    cc.bias_path = bias;
    assert_int_equal(fp_combine_run((const char *const *)d, 3, dark, &cc, NULL, NULL, err, sizeof err), 0);
    fp_combine_config_default(&cc, FP_CALIB_FLAT);
    cc.bias_path = bias;
    cc.dark_path = dark;
    assert_int_equal(fp_combine_run((const char *const *)fl, 4, flat, &cc, NULL, NULL, err, sizeof err), 0);
    fp_isr_config cfg;
    fp_isr_config_default(&cfg);
    cfg.bias_path = bias;
    cfg.dark_path = dark;
    cfg.flat_path = flat;
    float *img = isr(f, s[0], &cfg, "sci_isr.fits", NULL);
    assert_obs_time_copied(f, "sci_isr.fits");
    double sky = f->truth.sky_level * flat_median(f);
    for (int a = 0; a < 16; a++) /* medians: stars cover < 2% of an amplifier */
        assert_float_equal(tf_amp_median(&f->geom, a, img, NULL), sky, 0.01 * sky);
    free(img);
    fp_free_paths(b, 5);
    fp_free_paths(d, 3);
    fp_free_paths(fl, 4);
    fp_free_paths(s, 1);
}

/* Raw values at or above the saturation level are flagged SAT. */
static void test_saturation_mask(void **state)
{
    fx *f = *state;
    char **raws = tf_fake(f->dir, "flat", FP_FRAME_FLAT, 1, 41, 1);
    fp_isr_config cfg;
    fp_isr_config_default(&cfg);
    short *mask = NULL;
    float *img = isr(f, raws[0], &cfg, "unsat.fits", &mask);
    size_t n = (size_t)f->geom.det_nx * f->geom.det_ny, sat = 0;
    for (size_t p = 0; p < n; p++)
        sat += (mask[p] & FP_MASK_SAT) != 0;
    assert_int_equal(sat, 0);
    free(img);
    free(mask);
    cfg.saturation = 1.0; /* every raw value is above 1 ADU */
    img = isr(f, raws[0], &cfg, "sat.fits", &mask);
    for (size_t p = 0; p < n; p++)
        assert_int_equal(mask[p], FP_MASK_SAT);
    free(img);
    free(mask);
    fp_free_paths(raws, 1);
}

/* A flat too low is BAD in the mask and the pixel is left undivided. */
static void test_bad_flat_pixels_masked(void **state)
{
    fx *f = *state;
    char **raws = tf_fake(f->dir, "flat", FP_FRAME_FLAT, 3, 42, 1);
    char flat[1024], err[512];
    fp_combine_config cc;
    fp_combine_config_default(&cc, FP_CALIB_FLAT);
    tf_path(flat, sizeof flat, f->dir, "flat.fits");
    assert_int_equal(fp_combine_run((const char *const *)raws, 3, flat, &cc, NULL, NULL, err, sizeof err), 0);
    fp_isr_config cfg;
    fp_isr_config_default(&cfg);
    cfg.flat_path = flat;
    cfg.flat_min = 0.97; /* the corners' illumination is down to 0.8 */
    short *mask = NULL;
    float *img = isr(f, raws[0], &cfg, "flat_isr.fits", &mask);
    size_t corner = 0, centre = (size_t)250 * 504 + 252;
    assert_true(mask[corner] & FP_MASK_BAD);
    assert_false(mask[centre] & FP_MASK_BAD);
    free(img);
    free(mask);
    fp_free_paths(raws, 3);
}

/* A missing calibration, or one of the wrong size, is refused with its name. */
static void test_refuses_missing_calibration(void **state)
{
    fx *f = *state;
    char **raws = tf_fake(f->dir, "bias", FP_FRAME_BIAS, 1, 43, 1);
    char out[1024], err[512] = "";
    fp_isr_config cfg;
    fp_isr_config_default(&cfg);
    cfg.bias_path = "/nonexistent/bias.fits";
    assert_int_equal(
        fp_isr_run(raws[0], tf_path(out, sizeof out, f->dir, "x.fits"), &cfg, NULL, NULL, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "/nonexistent/bias.fits"));
    assert_int_equal(access(out, F_OK), -1);
    fp_free_paths(raws, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_overscan_subtraction_zero_mean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assembly_follows_detsec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_biassec_overrides_geometry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_science_recovers_sky, setup, teardown),
        cmocka_unit_test_setup_teardown(test_saturation_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_flat_pixels_masked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_missing_calibration, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
