/*
 * bench_fits_combine: combine N (10) full-size LATISS raws into a master
 * bias and compare, in the same run, with
 *   - the floor: just reading every amplifier image with cfitsio
 *     (decompressing the RICE tiles), on 1 thread and on 2;
 *   - numpy: median(axis=0) of the same stack of raw amplifier images
 *     (read with astropy first, not timed in the median).
 * and ISR (overscan, trim, assembly, the master bias) of every raw, as
 * throughput of raw pixel data against the floor's.
 * Prints times and ratios; never fails on timing. Each of `rounds` rounds
 * measures floor, combine -j1, combine -j2, numpy and ISR again.
 *
 *   bench_fits_combine [N_RAWS [ROUNDS]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fitsio.h>
#include <jansson.h>

#include "ocps/fitsproc.h"
#include "test_util.h"

#define PYTHON "/usr/bin/python3"

/* Read every amplifier image of raw i (one data unit of the floor). */
static int read_unit(void *ctx, size_t i, char *err, size_t errlen)
{
    char **paths = ctx;
    fitsfile *f = NULL;
    int status = 0, nhdu = 0, anynul = 0;
    float *buf = malloc(sizeof(float) * 576 * 2048);
    if (!buf || fits_open_file(&f, paths[i], READONLY, &status) || fits_get_num_hdus(f, &nhdu, &status)) {
        free(buf);
        snprintf(err, errlen, "cannot read %s", paths[i]);
        return -1;
    }
    for (int h = 2; h <= nhdu && status == 0; h++) {
        fits_movabs_hdu(f, h, NULL, &status);
        fits_read_img(f, TFLOAT, 1, 576 * 2048, NULL, buf, &anynul, &status);
    }
    fits_close_file(f, &status);
    free(buf);
    if (status)
        snprintf(err, errlen, "cfitsio status %d reading %s", status, paths[i]);
    return status ? -1 : 0;
}

static double time_floor(char **paths, int n, int threads)
{
    char err[256];
    double t0 = tu_now();
    if (fp_parallel_run((size_t)n, threads, read_unit, paths, err, sizeof err) != 0) {
        fprintf(stderr, "floor: %s\n", err);
        exit(1);
    }
    return tu_now() - t0;
}

static double time_combine(char **paths, int n, int threads, const char *out)
{
    fp_combine_config cfg;
    char err[512];
    fp_combine_config_default(&cfg, FP_CALIB_BIAS);
    cfg.threads = threads;
    double t0 = tu_now();
    if (fp_combine_run((const char *const *)paths, (size_t)n, out, &cfg, NULL, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "combine: %s\n", err);
        exit(1);
    }
    return tu_now() - t0;
}

typedef struct isr_ctx {
    char **paths;
    const char *dir, *bias;
} isr_ctx;

static int isr_unit(void *ctx, size_t i, char *err, size_t errlen)
{
    isr_ctx *c = ctx;
    fp_isr_config cfg;
    char out[1024];
    fp_isr_config_default(&cfg);
    cfg.bias_path = c->bias;
    snprintf(out, sizeof out, "%s/isr_%zu.fits", c->dir, i);
    return fp_isr_run(c->paths[i], out, &cfg, NULL, NULL, err, errlen);
}

static double time_isr(isr_ctx *c, int n, int threads)
{
    char err[512];
    double t0 = tu_now();
    if (fp_parallel_run((size_t)n, threads, isr_unit, c, err, sizeof err) != 0) {
        fprintf(stderr, "isr: %s\n", err);
        exit(1);
    }
    return tu_now() - t0;
}

/* numpy's median time (and astropy's read time), or -1 if unavailable. */
static double time_numpy(char **paths, int n, double *read_s)
{
    char **argv = calloc((size_t)n + 3, sizeof *argv), *output = NULL;
    argv[0] = PYTHON;
    argv[1] = BENCH_NUMPY_SCRIPT;
    for (int i = 0; i < n; i++)
        argv[2 + i] = paths[i];
    int rc = tu_run(argv, &output);
    free(argv);
    double median_s = -1;
    json_t *j =
        rc == 0 && output ? json_loads(strchr(output, '{') ? strchr(output, '{') : output, 0, NULL) : NULL;
    if (j) {
        median_s = json_real_value(json_object_get(j, "median_s"));
        *read_s = json_real_value(json_object_get(j, "read_s"));
        json_decref(j);
    } else {
        fprintf(stderr, "numpy reference unavailable (%d): %s\n", rc, output ? output : "");
    }
    free(output);
    return median_s;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10, rounds = argc > 2 ? atoi(argv[2]) : 1;
    char *dir = tu_make_temp_dir(), err[512], out[1024], **paths = NULL;
    fp_fake_config cfg;
    fp_fake_config_default(&cfg);
    cfg.count = n;
    cfg.threads = 2;
    double t0 = tu_now();
    if (fp_fake_write(&cfg, dir, &paths, err, sizeof err) != 0) {
        fprintf(stderr, "ocps-fakeraws: %s\n", err);
        return 1;
    }
    printf("bench_fits_combine: %d full-size LATISS raws (16 x 576 x 2048 int32, RICE) written in %.2f s\n",
           n, tu_now() - t0);
    snprintf(out, sizeof out, "%s/bias.fits", dir);
    time_floor(paths, n, 1); /* warm the page cache */
    for (int r = 0; r < rounds; r++) {
        double np_read = 0;
        double floor1 = time_floor(paths, n, 1), floor2 = time_floor(paths, n, 2);
        double c1 = time_combine(paths, n, 1, out), c2 = time_combine(paths, n, 2, out);
        double npm = time_numpy(paths, n, &np_read);
        printf(
            "round %d: read floor %.3f s (-j2 %.3f s); combine -j1 %.3f s, -j2 %.3f s; numpy median %.3f s "
            "(astropy read %.3f s)\n",
            r + 1, floor1, floor2, c1, c2, npm, np_read);
        printf("round %d: combine/floor -j1 %.2f, -j2 %.2f; numpy/combine -j1 %.2f, -j2 %.2f; -j2 speed-up "
               "%.2f\n",
               r + 1, c1 / floor1, c2 / floor2, npm / c1, npm / c2, c1 / c2);
        isr_ctx ic = {paths, dir, out};
        double mb = n * 16.0 * 576 * 2048 * 4 / 1e6, i1 = time_isr(&ic, n, 1), i2 = time_isr(&ic, n, 2);
        printf("round %d: ISR -j1 %.3f s (%.0f MB/s), -j2 %.3f s (%.0f MB/s); read floor %.0f MB/s; "
               "ISR/floor -j1 %.2f\n",
               r + 1, i1, mb / i1, i2, mb / i2, mb / floor1, i1 / floor1);
        fflush(stdout);
    }
    fp_free_paths(paths, n);
    tu_remove_tree(dir);
    free(dir);
    return 0;
}
