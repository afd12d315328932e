/*
 * fp_isr.c - instrument signature removal of one raw: overscan by row,
 * trim, assembly by DETSEC, bias, dark, flat, saturation and mask.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp__internal.h"

void fp_isr_config_default(fp_isr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->overscan = FP_OVERSCAN_MEDIAN;
    cfg->saturation = 100000.0;
    cfg->flat_min = 0.1;
}

typedef struct fp_isr_state {
    fp_geometry geom;
    float *image;
    short *mask;
    float *bias, *dark, *flat;
    double exptime;
    long n_sat, n_bad;
} fp_isr_state;

static void fp_isr_free(fp_isr_state *s)
{
    free(s->image);
    free(s->mask);
    free(s->bias);
    free(s->dark);
    free(s->flat);
}

/* Read a calibration image of the detector's size (NULL path: none). */
static int fp_isr_load_calib(const char *path, const fp_geometry *g, float **pix, char *err, size_t errlen)
{
    int nx = 0, ny = 0;
    if (!path)
        return 0;
    if (fp_image_read(path, pix, &nx, &ny, err, errlen) != 0)
        return -1;
    if (nx != g->det_nx || ny != g->det_ny)
        return fp_fail(err, errlen, "calibration %s is %dx%d, the detector %dx%d", path, nx, ny, g->det_nx,
                       g->det_ny);
    return 0;
}

/* Rows of a raw read at a time. */
#define FP_ISR_BLOCK_ROWS 64

/* Buffers of one amplifier's rows: raw rows, overscan levels, a trimmed
 * row, and the overscan's median network. */
typedef struct fp_isr_rows {
    float *rows, *scratch, *out_row;
    double *level;
    fp_network net;
} fp_isr_rows;

/* Place trimmed data row j of amp (raw row values in raw) into the
 * detector image, walking the detector row in the direction DETSEC gives;
 * flag saturated pixels. */
static void fp_isr_place_row(fp_isr_state *s, const fp_amp *amp, int j, const float *out_row,
                             const float *raw, const fp_isr_config *cfg)
{
    int nx = fp_section_nx(&amp->datasec), x0, y, x1, y1;
    fp_amp_to_detector(amp, 0, j, &x0, &y);
    fp_amp_to_detector(amp, 1, j, &x1, &y1);
    const size_t base = (size_t)y * s->geom.det_nx;
    const int step = x1 - x0;
    for (int i = 0; i < nx; i++) {
        size_t p = base + (size_t)(x0 + step * i);
        s->image[p] = out_row[i];
        s->mask[p] = 0;
        if (cfg->saturation > 0 && raw[i] >= cfg->saturation) {
            s->mask[p] = FP_MASK_SAT;
            s->n_sat++;
        }
    }
}

/* Overscan-correct, trim and place one amplifier, FP_ISR_BLOCK_ROWS raw
 * rows at a time. */
static int fp_isr_amp(fp_isr_state *s, fitsfile *f, int a, const fp_isr_config *cfg, fp_isr_rows *b)
{
    const fp_geometry *g = &s->geom;
    const fp_amp *amp = &g->amps[a];
    int status = 0, ny = fp_section_ny(&amp->datasec);
    bool has_net = fp_network_median(&b->net, amp->biassec.x2 - amp->biassec.x1 + 1) == 0;
    for (int j0 = 0; j0 < ny; j0 += FP_ISR_BLOCK_ROWS) {
        int nrows = ny - j0 < FP_ISR_BLOCK_ROWS ? ny - j0 : FP_ISR_BLOCK_ROWS;
        if (fp_read_rows(f, a + 2, g->raw_nx, amp->datasec.y1 - 1 + j0, nrows, b->rows, &status))
            return status;
        fp_overscan_levels(b->rows, nrows, g->raw_nx, amp, cfg->overscan, has_net ? &b->net : NULL,
                           b->scratch, b->level);
        for (int r = 0; r < nrows; r++) {
            const float *row = b->rows + (size_t)r * g->raw_nx;
            fp_trim_row(row, amp, b->level[r], b->out_row);
            fp_isr_place_row(s, amp, j0 + r, b->out_row, row + amp->datasec.x1 - 1, cfg);
        }
    }
    return 0;
}

/* Bias, dark x EXPTIME and flat, pixel by pixel. */
static void fp_isr_calibrate(fp_isr_state *s, const fp_isr_config *cfg)
{
    size_t n = (size_t)s->geom.det_nx * s->geom.det_ny;
    for (size_t p = 0; p < n; p++) {
        if (s->mask[p] & FP_MASK_NODATA)
            continue;
        float v = s->image[p];
        if (s->bias)
            v -= s->bias[p];
        if (s->dark)
            v -= (float)(s->dark[p] * s->exptime);
        if (s->flat) {
            float fl = s->flat[p];
            if (!isfinite(fl) || fl < cfg->flat_min) {
                s->mask[p] |= FP_MASK_BAD;
                s->n_bad++;
            } else {
                v /= fl;
            }
        }
        s->image[p] = v;
    }
}

/* Median of the covered pixels (a strided sample of at most ~1e6). */
static double fp_isr_median(const fp_isr_state *s)
{
    size_t n = (size_t)s->geom.det_nx * s->geom.det_ny, stride = n / 1000000 + 1, m = 0;
    float *tmp = malloc(sizeof(float) * (n / stride + 1));
    if (!tmp)
        return NAN;
    for (size_t p = 0; p < n; p += stride)
        if (!(s->mask[p] & FP_MASK_NODATA))
            tmp[m++] = s->image[p];
    double med = fp_median_inplace(tmp, m);
    free(tmp);
    return med;
}

static const char *fp_overscan_name(fp_overscan_method m)
{
    return m == FP_OVERSCAN_MEAN ? "mean" : m == FP_OVERSCAN_NONE ? "none" : "median";
}

static int fp_isr_write(fp_isr_state *s, fitsfile *raw, const char *out_path, const fp_isr_config *cfg,
                        const fp_provenance *prov, char *err, size_t errlen)
{
    fitsfile *out = NULL;
    int status = 0;
    if (fp_output_create(out_path, prov, raw, &out, err, errlen) != 0)
        return -1;
    fits_update_key_str(out, "ISROVSC", (char *)fp_overscan_name(cfg->overscan), "overscan by row", &status);
    fits_update_key_log(out, "ISRBIAS", cfg->bias_path != NULL, "bias subtracted", &status);
    fits_update_key_log(out, "ISRDARK", cfg->dark_path != NULL, "dark subtracted", &status);
    fits_update_key_log(out, "ISRFLAT", cfg->flat_path != NULL, "flat divided", &status);
    fp_output_add_float(out, "IMAGE", s->image, s->geom.det_nx, s->geom.det_ny, &cfg->output, &status);
    fits_update_key_str(out, "BUNIT", "adu", "", &status);
    fp_output_add_short(out, "MASK", s->mask, s->geom.det_nx, s->geom.det_ny, &cfg->output, &status);
    fits_update_key_lng(out, "MP_BAD", 0, "mask bit: flat too low or not finite", &status);
    fits_update_key_lng(out, "MP_SAT", 1, "mask bit: raw value at or above saturation", &status);
    fits_update_key_lng(out, "MP_NO_DATA", 2, "mask bit: no amplifier covers the pixel", &status);
    return fp_output_finish(out, out_path, status, err, errlen);
}

static int fp_isr_process(fp_isr_state *s, fitsfile *f, const char *raw_path, const fp_isr_config *cfg,
                          char *err, size_t errlen)
{
    const fp_geometry *g = &s->geom;
    size_t n = (size_t)g->det_nx * g->det_ny;
    s->image = calloc(n, sizeof(float));
    s->mask = malloc(n * sizeof(short));
    size_t block = FP_ISR_BLOCK_ROWS, raw_nx = (size_t)g->raw_nx;
    fp_isr_rows *b = malloc(sizeof *b);
    float *buf = malloc(sizeof(float) * (block * raw_nx + (raw_nx + 1) * block + raw_nx));
    double *level = malloc(sizeof(double) * block);
    if (!s->image || !s->mask || !b || !buf || !level) {
        free(b);
        free(buf);
        free(level);
        return fp_fail(err, errlen, "out of memory");
    }
    /* scratch: the overscan (at most raw_nx columns) of a block, plus one row */
    *b = (fp_isr_rows){.rows = buf, .scratch = buf + block * raw_nx, .level = level};
    b->out_row = b->scratch + (raw_nx + 1) * block;
    for (size_t p = 0; p < n; p++)
        s->mask[p] = FP_MASK_NODATA;
    int status = 0;
    for (int a = 0; a < g->n_amps && status == 0; a++)
        status = fp_isr_amp(s, f, a, cfg, b);
    free(b);
    free(buf);
    free(level);
    if (status)
        return fp_fail_fits(err, errlen, status, "reading", raw_path);
    fp_isr_calibrate(s, cfg);
    return 0;
}

int fp_isr_run(const char *raw_path, const char *out_path, const fp_isr_config *cfg,
               const fp_provenance *prov, json_t **metrics, char *err, size_t errlen)
{
    fp_isr_state s = {0};
    fitsfile *f = NULL;
    int status = 0, rc = -1;
    double t0 = fp_now();
    if (fp_geometry_read(raw_path, &s.geom, err, errlen) != 0)
        return -1;
    if (fp_isr_load_calib(cfg->bias_path, &s.geom, &s.bias, err, errlen) != 0 ||
        fp_isr_load_calib(cfg->dark_path, &s.geom, &s.dark, err, errlen) != 0 ||
        fp_isr_load_calib(cfg->flat_path, &s.geom, &s.flat, err, errlen) != 0)
        goto out;
    if (fits_open_diskfile(&f, raw_path, READONLY, &status)) {
        fp_fail_fits(err, errlen, status, "opening", raw_path);
        goto out;
    }
    s.exptime = fp_read_exptime(f);
    if (fp_isr_process(&s, f, raw_path, cfg, err, errlen) != 0 ||
        fp_isr_write(&s, f, out_path, cfg, prov, err, errlen) != 0)
        goto out;
    if (metrics)
        *metrics =
            json_pack("{s:s,s:s,s:f,s:I,s:I,s:i,s:i,s:f}", "task", "isr", "output", out_path, "median",
                      fp_isr_median(&s), "n_saturated", (json_int_t)s.n_sat, "n_bad", (json_int_t)s.n_bad,
                      "width", s.geom.det_nx, "height", s.geom.det_ny, "seconds", fp_now() - t0);
    rc = 0;
out:
    if (f) {
        status = 0;
        fits_close_file(f, &status);
    }
    fp_isr_free(&s);
    return rc;
}
