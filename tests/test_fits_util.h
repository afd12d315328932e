/*
 * test_fits_util.h - helpers shared by the test_fits_* programs:
 * synthetic raws in a temp dir and small image checks (static, header
 * only, so every test program stays one file plus this one).
 */
#ifndef TEST_FITS_UTIL_H
#define TEST_FITS_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocps/fitsproc.h"
#include "test_util.h"

/* A test's temporary directory and the small LATISS geometry with the
 * generator's truth. */
typedef struct tf_fx {
    char *dir;
    fp_geometry geom;
    fp_fake_truth truth;
} tf_fx;

/* A new fixture (a fresh temporary directory), or NULL. */
static inline tf_fx *tf_fx_new(void)
{
    tf_fx *f = calloc(1, sizeof *f);
    if (f == NULL || (f->dir = tu_make_temp_dir()) == NULL) {
        free(f);
        return NULL;
    }
    fp_geometry_init(&f->geom, "LATISS", true, NULL, 0);
    fp_fake_truth_get(&f->geom, &f->truth);
    return f;
}

/* Remove the directory and free the fixture. */
static inline void tf_fx_free(tf_fx *f)
{
    tu_remove_tree(f->dir);
    free(f->dir);
    free(f);
}

/* Write `count` small synthetic raws of `type` into dir/sub; the paths
 * (fp_free_paths them) or NULL on failure (message printed). */
static inline char **tf_fake(const char *dir, const char *sub, fp_frame_type type, int count, uint64_t seed,
                             int start_seq)
{
    fp_fake_config cfg;
    char out[1024], err[512] = "";
    char **paths = NULL;
    fp_fake_config_default(&cfg);
    cfg.type = type;
    cfg.count = count;
    cfg.small = true;
    cfg.seed = seed;
    cfg.start_seq = start_seq;
    snprintf(out, sizeof out, "%s/%s", dir, sub);
    if (fp_fake_write(&cfg, out, &paths, err, sizeof err) != 0) {
        fprintf(stderr, "fp_fake_write: %s\n", err);
        return NULL;
    }
    return paths;
}

/* "dir/name" in a static-free caller buffer. */
static inline const char *tf_path(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

/* Median of amplifier a's region of an assembled image (0-based detector
 * pixels), minus `sub` per pixel if sub is not NULL. */
static inline double tf_amp_median(const fp_geometry *g, int a, const float *img, const float *sub)
{
    const fp_amp *amp = &g->amps[a];
    int nx = g->data_nx, ny = g->data_ny,
        x0 = amp->detsec.x1 < amp->detsec.x2 ? amp->detsec.x1 : amp->detsec.x2;
    int y0 = amp->detsec.y1 < amp->detsec.y2 ? amp->detsec.y1 : amp->detsec.y2;
    float *v = malloc(sizeof(float) * (size_t)nx * ny);
    size_t m = 0;
    for (int y = y0 - 1; y < y0 - 1 + ny; y++)
        for (int x = x0 - 1; x < x0 - 1 + nx; x++) {
            size_t p = (size_t)y * g->det_nx + x;
            v[m++] = img[p] - (sub ? sub[p] : 0.0f);
        }
    double med = fp_median_inplace(v, m);
    free(v);
    return med;
}

/* Mean of amplifier a's region of an assembled image. */
static inline double tf_amp_mean(const fp_geometry *g, int a, const float *img)
{
    const fp_amp *amp = &g->amps[a];
    int x0 = amp->detsec.x1 < amp->detsec.x2 ? amp->detsec.x1 : amp->detsec.x2;
    int y0 = amp->detsec.y1 < amp->detsec.y2 ? amp->detsec.y1 : amp->detsec.y2;
    double sum = 0;
    for (int y = y0 - 1; y < y0 - 1 + g->data_ny; y++)
        for (int x = x0 - 1; x < x0 - 1 + g->data_nx; x++)
            sum += img[(size_t)y * g->det_nx + x];
    return sum / ((double)g->data_nx * g->data_ny);
}

#endif
