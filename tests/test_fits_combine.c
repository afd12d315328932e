/*
 * test_fits_combine: master bias, dark and flat from small synthetic raws
 * recover the generator's truth; combining in row stripes (and on two
 * threads) gives exactly the whole-image result; outputs carry provenance;
 * under a descriptor limit too low for every input on every thread the
 * result is the same, and a limit leaving nothing fails saying so.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
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

/* Combine paths[0..n) with cfg into dir/name; returns the image. */
static float *combine(fx *f, char **paths, int n, const fp_combine_config *cfg, const char *name,
                      json_t **metrics)
{
    char out[1024], err[512] = "";
    float *img = NULL;
    int nx, ny;
    tf_path(out, sizeof out, f->dir, name);
    fp_provenance prov = {.job_id = "job-1",
                          .pipeline = "cpBias.yaml",
                          .task_label = "cpBiasCombine",
                          .inputs = (const char *const *)paths,
                          .n_inputs = (size_t)n};
    int rc = fp_combine_run((const char *const *)paths, (size_t)n, out, cfg, &prov, metrics, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "fp_combine_run: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(fp_image_read(out, &img, &nx, &ny, err, sizeof err), 0);
    assert_int_equal(nx, f->geom.det_nx);
    assert_int_equal(ny, f->geom.det_ny);
    return img;
}

/* Overscan-corrected master bias = the injected data-minus-overscan offset
 * per amplifier; without overscan correction = level + offset (means per
 * amplifier: the data are integers, so medians move in steps of 0.5). */
static void test_master_bias_recovers_bias_structure(void **state)
{
    fx *f = *state;
    char **raws = tf_fake(f->dir, "bias", FP_FRAME_BIAS, 5, 11, 1);
    assert_non_null(raws);
    fp_combine_config cfg;
    fp_combine_config_default(&cfg, FP_CALIB_BIAS);
    json_t *metrics = NULL;
    float *bias = combine(f, raws, 5, &cfg, "bias.fits", &metrics);
    cfg.overscan = FP_OVERSCAN_NONE;
    float *raw_bias = combine(f, raws, 5, &cfg, "bias_raw.fits", NULL);
    for (int a = 0; a < 16; a++) {
        /* the 8-column overscan of the small geometry leaves ~0.07 ADU of noise per amplifier */
        assert_float_equal(tf_amp_mean(&f->geom, a, bias), f->truth.bias_offset[a], 0.3);
        assert_float_equal(tf_amp_mean(&f->geom, a, raw_bias),
                           f->truth.bias_level[a] + f->truth.bias_offset[a], 0.6);
    }
    json_t *amps = json_object_get(metrics, "amps");
    assert_int_equal(json_array_size(amps), 16);
    assert_string_equal(json_string_value(json_object_get(json_array_get(amps, 0), "name")), "Segment10");
    assert_float_equal(json_real_value(json_object_get(json_array_get(amps, 0), "median")),
                       f->truth.bias_offset[0], 0.6); /* the median of integer-valued data */
    assert_int_equal(json_integer_value(json_object_get(metrics, "n_inputs")), 5);
    json_decref(metrics);
    free(bias);
    free(raw_bias);
    fp_free_paths(raws, 5);
}

/* Sigma-clipped mean agrees with the injected structure too. */
static void test_sigclip_mean_bias(void **state)
{
    fx *f = *state;
    char **raws = tf_fake(f->dir, "bias", FP_FRAME_BIAS, 5, 12, 1);
    fp_combine_config cfg;
    fp_combine_config_default(&cfg, FP_CALIB_BIAS);
    cfg.method = FP_COMBINE_SIGCLIP_MEAN;
    float *bias = combine(f, raws, 5, &cfg, "bias_clip.fits", NULL);
    for (int a = 0; a < 16; a++)
        assert_float_equal(tf_amp_mean(&f->geom, a, bias), f->truth.bias_offset[a], 0.3);
    free(bias);
    fp_free_paths(raws, 5);
}

/* Master dark, bias-subtracted and per second: dark_rate / gain. */
static void test_dark_rate_recovered(void **state)
{
    fx *f = *state;
    char **braws = tf_fake(f->dir, "bias", FP_FRAME_BIAS, 5, 13, 1);
    char **draws = tf_fake(f->dir, "dark", FP_FRAME_DARK, 3, 14, 10);
    fp_combine_config cfg;
    fp_combine_config_default(&cfg, FP_CALIB_BIAS);
    free(combine(f, braws, 5, &cfg, "bias.fits", NULL));
    char bias_path[1024];
    fp_combine_config_default(&cfg, FP_CALIB_DARK);
    cfg.bias_path = tf_path(bias_path, sizeof bias_path, f->dir, "bias.fits");
    float *dark = combine(f, draws, 3, &cfg, "dark.fits", NULL);
    for (int a = 0; a < 16; a++) {
        double expect = f->truth.dark_rate / f->truth.gain[a];
        assert_float_equal(tf_amp_median(&f->geom, a, dark, NULL), expect, 0.03 * expect);
    }
    free(dark);
    fp_free_paths(braws, 5);
    fp_free_paths(draws, 3);
}

/* The master flat has median 1 and follows illumination / gain. */
static void test_flat_normalised_recovers_pattern(void **state)
{
    fx *f = *state;
    char **raws = tf_fake(f->dir, "flat", FP_FRAME_FLAT, 4, 15, 20);
    fp_combine_config cfg;
    fp_combine_config_default(&cfg, FP_CALIB_FLAT);
    float *flat = combine(f, raws, 4, &cfg, "flat.fits", NULL);
    const fp_geometry *g = &f->geom;
    size_t n = (size_t)g->det_nx * g->det_ny;
    float *truth = malloc(sizeof(float) * n), *tmp = malloc(sizeof(float) * n);
    for (int a = 0; a < 16; a++)
        for (int j = 0; j < g->data_ny; j++)
            for (int i = 0; i < g->data_nx; i++) {
                int x = g->amps[a].detsec.x1 - 1 - i;
                int y = a < 8 ? j : g->amps[a].detsec.y1 - 1 - j;
                truth[(size_t)y * g->det_nx + x] = (float)(fp_fake_illumination(g, x, y) / f->truth.gain[a]);
            }
    memcpy(tmp, truth, sizeof(float) * n);
    float tmed = fp_median_inplace(tmp, n);
    memcpy(tmp, flat, sizeof(float) * n);
    assert_float_equal(fp_median_inplace(tmp, n), 1.0, 1e-4);
    double worst = 0;
    for (size_t p = 0; p < n; p++) {
        tmp[p] = flat[p] / (truth[p] / tmed) - 1.0f;
    }
    for (int a = 0; a < 16; a++) {
        double r = fabs(tf_amp_median(g, a, tmp, NULL));
        worst = r > worst ? r : worst;
    }
    assert_true(worst < 0.003); /* per amplifier: the pattern within 0.3% */
    double sum2 = 0;
    for (size_t p = 0; p < n; p++)
        sum2 += (double)tmp[p] * tmp[p];
    assert_true(sqrt(sum2 / n) < 0.01); /* per pixel: within the noise of 4 flats */
    free(truth);
    free(tmp);
    free(flat);
    fp_free_paths(raws, 4);
}

/* Row stripes of any height, and two threads, give the whole-image result. */
static void test_stripes_equal_whole_image(void **state)
{
    fx *f = *state;
    char **raws = tf_fake(f->dir, "bias", FP_FRAME_BIAS, 4, 16, 1);
    fp_combine_config cfg;
    fp_combine_config_default(&cfg, FP_CALIB_BIAS);
    cfg.stripe_rows = f->geom.raw_ny; /* whole amplifier images at once */
    float *whole = combine(f, raws, 4, &cfg, "whole.fits", NULL);
    cfg.stripe_rows = 7;
    float *striped = combine(f, raws, 4, &cfg, "striped.fits", NULL);
    cfg.stripe_rows = 1;
    cfg.threads = 2;
    float *threaded = combine(f, raws, 4, &cfg, "threaded.fits", NULL);
    size_t n = (size_t)f->geom.det_nx * f->geom.det_ny;
    assert_memory_equal(whole, striped, n * sizeof(float));
    assert_memory_equal(whole, threaded, n * sizeof(float));
    free(whole);
    free(striped);
    free(threaded);
    fp_free_paths(raws, 4);
}

/* Provenance keys in the primary header: job, pipeline, task, version, inputs. */
static void test_provenance_headers(void **state)
{
    fx *f = *state;
    char **raws = tf_fake(f->dir, "bias", FP_FRAME_BIAS, 3, 17, 5);
    fp_combine_config cfg;
    fp_combine_config_default(&cfg, FP_CALIB_BIAS);
    cfg.output.compress = true;
    free(combine(f, raws, 3, &cfg, "prov.fits", NULL));
    char path[1024], v[FLEN_VALUE];
    fitsfile *ff = NULL;
    int status = 0;
    long nin = 0;
    assert_int_equal(fits_open_file(&ff, tf_path(path, sizeof path, f->dir, "prov.fits"), READONLY, &status),
                     0);
    fits_read_key(ff, TSTRING, "OCPSJOB", v, NULL, &status);
    assert_string_equal(v, "job-1");
    fits_read_key(ff, TSTRING, "OCPSPIPE", v, NULL, &status);
    assert_string_equal(v, "cpBias.yaml");
    fits_read_key(ff, TSTRING, "OCPSTASK", v, NULL, &status);
    assert_string_equal(v, "cpBiasCombine");
    fits_read_key(ff, TSTRING, "OCPSVER", v, NULL, &status);
    assert_string_equal(v, fp_version());
    fits_read_key(ff, TLONG, "OCPSNIN", &nin, NULL, &status);
    assert_int_equal(nin, 3);
    fits_read_key(ff, TSTRING, "OCPSIN3", v, NULL, &status);
    assert_string_equal(v, "AT_O_20240624_000007.fits");
    fits_read_key(ff, TSTRING, "INSTRUME", v, NULL, &status);
    assert_string_equal(v, "LATISS");
    assert_int_equal(status, 0);
    assert_int_equal(fits_movnam_hdu(ff, IMAGE_HDU, "IMAGE", 0, &status), 0);
    assert_true(fits_is_compressed_image(ff, &status));
    fits_close_file(ff, &status);
    fp_free_paths(raws, 3);
}

/* Inputs of different layouts, and no inputs, are refused with a reason. */
static void test_refuses_bad_inputs(void **state)
{
    fx *f = *state;
    char **raws = tf_fake(f->dir, "bias", FP_FRAME_BIAS, 2, 18, 1);
    fitsfile *ff = NULL;
    int status = 0;
    /* the second raw's Segment10 is not flipped in x */
    fits_open_file(&ff, raws[1], READWRITE, &status);
    fits_movabs_hdu(ff, 2, NULL, &status);
    fits_update_key_str(ff, "DETSEC", "[1:63,1:250]", NULL, &status);
    fits_close_file(ff, &status);
    assert_int_equal(status, 0);
    char out[1024], err[512] = "";
    fp_combine_config cc;
    fp_combine_config_default(&cc, FP_CALIB_BIAS);
    assert_int_equal(fp_combine_run((const char *const *)raws, 2, tf_path(out, sizeof out, f->dir, "x.fits"),
                                    &cc, NULL, NULL, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "differs"));
    assert_int_equal(fp_combine_run((const char *const *)raws, 0, out, &cc, NULL, NULL, err, sizeof err), -1);
    fp_combine_config_default(&cc, FP_CALIB_DARK);
    assert_int_equal(fp_combine_run((const char *const *)raws, 1, out, &cc, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "EXPTIME"));
    fp_free_paths(raws, 2);
}

/* Descriptors open in this process. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    assert_non_null(d);
    for (struct dirent *e = readdir(d); e; e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

/* fp_combine_run in a child process whose RLIMIT_NOFILE (soft and hard)
 * is `limit`: 0 on success; the metrics (or {"error": message}) in *m. */
static int combine_limited(fx *f, char **paths, int n, const fp_combine_config *cfg, const char *name,
                           long limit, json_t **m)
{
    char out[1024], mpath[1100];
    tf_path(out, sizeof out, f->dir, name);
    snprintf(mpath, sizeof mpath, "%s.json", out);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
        char err[512] = "setrlimit failed";
        json_t *metrics = NULL;
        int rc =
            setrlimit(RLIMIT_NOFILE, &rl) != 0 || fp_combine_run((const char *const *)paths, (size_t)n, out,
                                                                 cfg, NULL, &metrics, err, sizeof err) != 0;
        if (rc)
            metrics = json_pack("{s:s}", "error", err);
        json_dump_file(metrics, mpath, 0);
        _exit(rc);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    json_error_t je;
    *m = json_load_file(mpath, 0, &je);
    assert_non_null(*m);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static long metric(const json_t *m, const char *key)
{
    return (long)json_integer_value(json_object_get(m, key));
}

/* More inputs than the descriptor limit lets every thread hold (then more
 * than it lets one hold): the combine succeeds on fewer threads (then
 * opening inputs stripe by stripe), pixel for pixel as without the limit.
 * A limit leaving no descriptor fails, naming RLIMIT_NOFILE. */
static void test_combine_within_descriptor_limit(void **state)
{
    fx *f = *state;
    enum { N = 30 };
    char **raws = tf_fake(f->dir, "bias", FP_FRAME_BIAS, N, 19, 1);
    assert_non_null(raws);
    fp_combine_config cfg;
    fp_combine_config_default(&cfg, FP_CALIB_BIAS);
    cfg.stripe_rows = 7;
    cfg.threads = 4;
    json_t *m = NULL;
    float *ref = combine(f, raws, N, &cfg, "ref.fits", &m);
    assert_int_equal(metric(m, "threads"), 4);
    assert_int_equal(metric(m, "inputs_kept_open"), N);
    json_decref(m);
    size_t npix = (size_t)f->geom.det_nx * f->geom.det_ny;
    long open = open_fds();
    static const struct {
        const char *name;
        long headroom; /* descriptors over those open */
        bool all_kept; /* every input stays open (on fewer threads) */
    } cases[] = {{"fewer_threads.fits", 2 * N, true}, {"reopened.fits", N / 2, false}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        assert_int_equal(combine_limited(f, raws, N, &cfg, cases[c].name, open + cases[c].headroom, &m), 0);
        if (cases[c].all_kept) {
            assert_in_range(metric(m, "threads"), 1, 3);
            assert_int_equal(metric(m, "inputs_kept_open"), N);
        } else {
            assert_in_range(metric(m, "inputs_kept_open"), 0, N - 1);
        }
        json_decref(m);
        char out[1024], err[512];
        float *img = NULL;
        int nx, ny;
        assert_int_equal(
            fp_image_read(tf_path(out, sizeof out, f->dir, cases[c].name), &img, &nx, &ny, err, sizeof err),
            0);
        assert_memory_equal(ref, img, npix * sizeof(float));
        free(img);
    }
    assert_int_equal(combine_limited(f, raws, N, &cfg, "none.fits", open + 1, &m), 1);
    const char *err = json_string_value(json_object_get(m, "error"));
    assert_non_null(err);
    assert_non_null(strstr(err, "RLIMIT_NOFILE"));
    json_decref(m);
    free(ref);
    fp_free_paths(raws, N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_master_bias_recovers_bias_structure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigclip_mean_bias, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dark_rate_recovered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flat_normalised_recovers_pattern, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stripes_equal_whole_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provenance_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_bad_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_combine_within_descriptor_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
