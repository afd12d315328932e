/*
 * bench_fits_profile: one master-bias combine (or one read floor pass) of
 * existing raws, nothing else, for a profiler:
 *
 *   ocps-fakeraws --instrument LATISS --type bias --count 10 --out DIR
 *   perf record -- bench_fits_profile combine 1 DIR/AT_O_*.fits
 *   perf report --no-children
 *
 * Prints the wall and process CPU seconds. The master goes to
 * bench_fits_profile_bias.fits in the current directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fitsio.h>

#include "ocps/fitsproc.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Read every amplifier image of raw i with cfitsio, as the benchmark's floor. */
static int read_unit(void *ctx, size_t i, char *err, size_t errlen)
{
    char **paths = ctx;
    fitsfile *f = NULL;
    int status = 0, nhdu = 0, anynul = 0;
    long naxes[2] = {0, 0};
    float *buf = NULL;
    if (fits_open_file(&f, paths[i], READONLY, &status) == 0 && fits_get_num_hdus(f, &nhdu, &status) == 0)
        for (int h = 2; h <= nhdu && status == 0; h++) {
            fits_movabs_hdu(f, h, NULL, &status);
            fits_get_img_size(f, 2, naxes, &status);
            float *grown = realloc(buf, sizeof(float) * (size_t)(naxes[0] * naxes[1]));
            if (!grown)
                break;
            buf = grown;
            fits_read_img(f, TFLOAT, 1, naxes[0] * naxes[1], NULL, buf, &anynul, &status);
        }
    if (f) {
        int st = 0;
        fits_close_file(f, &st);
    }
    free(buf);
    if (status)
        snprintf(err, errlen, "cfitsio status %d reading %s", status, paths[i]);
    return status ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[1], "combine") != 0 && strcmp(argv[1], "floor") != 0)) {
        fprintf(stderr, "usage: bench_fits_profile combine|floor THREADS RAW...\n");
        return 2;
    }
    int threads = atoi(argv[2]), rc;
    char err[512];
    double wall = clock_s(CLOCK_MONOTONIC), cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (strcmp(argv[1], "floor") == 0) {
        rc = fp_parallel_run((size_t)(argc - 3), threads, read_unit, argv + 3, err, sizeof err);
    } else {
        fp_combine_config cfg;
        fp_combine_config_default(&cfg, FP_CALIB_BIAS);
        cfg.threads = threads;
        rc = fp_combine_run((const char *const *)(argv + 3), (size_t)(argc - 3),
                            "bench_fits_profile_bias.fits", &cfg, NULL, NULL, err, sizeof err);
    }
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        return 1;
    }
    printf("%s -j%d: %.3f s wall, %.3f s CPU\n", argv[1], threads, clock_s(CLOCK_MONOTONIC) - wall,
           clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu);
    return 0;
}
