/*
 * fp_quicklook.c - quick-look metrics (median, robust sigma, saturated
 * fraction, sources and their FWHM) and the binned PNG preview.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp__internal.h"
#include "fp__png.h"

void fp_quicklook_config_default(fp_quicklook_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->threshold_sigma = 5.0;
    cfg->min_pixels = 5;
    cfg->saturation = 0.0;
    cfg->bin = 4;
    cfg->stretch = FP_STRETCH_ASINH;
    cfg->low_pct = 0.5;
    cfg->high_pct = 99.5;
}

typedef struct fp_ql {
    float *img;
    short *mask; /* may be NULL */
    int nx, ny;
    double median, sigma;
} fp_ql;

static int fp_ql_valid(const fp_ql *q, size_t p)
{
    return (!q->mask || !(q->mask[p] & FP_MASK_NODATA)) && isfinite(q->img[p]);
}

/* Median and robust sigma of the valid pixels. */
static int fp_ql_stats(fp_ql *q)
{
    size_t n = (size_t)q->nx * q->ny, m = 0;
    float *tmp = malloc(sizeof(float) * n);
    if (!tmp)
        return -1;
    for (size_t p = 0; p < n; p++)
        if (fp_ql_valid(q, p))
            tmp[m++] = q->img[p];
    q->median = fp_median_inplace(tmp, m);
    q->sigma = fp_robust_sigma_inplace(tmp, m, (float)q->median);
    free(tmp);
    return 0;
}

static double fp_ql_saturated_fraction(const fp_ql *q, double saturation)
{
    size_t n = (size_t)q->nx * q->ny, valid = 0, sat = 0;
    for (size_t p = 0; p < n; p++) {
        if (!fp_ql_valid(q, p))
            continue;
        valid++;
        if (q->mask ? (q->mask[p] & FP_MASK_SAT) != 0 : (saturation > 0 && q->img[p] >= saturation))
            sat++;
    }
    return valid ? (double)sat / (double)valid : 0.0;
}

/* Adaptive (Gaussian-weighted) second moments about (*xc, *yc): returns
 * the Gaussian sigma, or -1 if they do not converge. */
static double fp_adaptive_sigma(const fp_ql *q, double *xc, double *yc, double s)
{
    for (int it = 0; it < 50; it++) {
        int r = (int)ceil(4.0 * s);
        double sw = 0, sx = 0, sy = 0, sr = 0;
        for (int y = (int)*yc - r; y <= (int)*yc + r; y++) {
            for (int x = (int)*xc - r; x <= (int)*xc + r; x++) {
                if (x < 0 || y < 0 || x >= q->nx || y >= q->ny || !fp_ql_valid(q, (size_t)y * q->nx + x))
                    continue;
                double dx = x - *xc, dy = y - *yc, r2 = dx * dx + dy * dy;
                double w = exp(-r2 / (2 * s * s)) * (q->img[(size_t)y * q->nx + x] - q->median);
                sw += w;
                sx += w * dx;
                sy += w * dy;
                sr += w * r2;
            }
        }
        if (!(sw > 0))
            return -1;
        *xc += sx / sw;
        *yc += sy / sw;
        double s_new = sqrt(sr / sw); /* 2 x the per-axis weighted variance */
        if (!(s_new > 0.3 && s_new < 50))
            return -1;
        if (fabs(s_new - s) < 1e-4)
            return s_new;
        s = s_new;
    }
    return s;
}

/* Flood-fill the component of pixels above thr from seed; returns its
 * size and its peak in *peak. */
static size_t fp_ql_component(const fp_ql *q, unsigned char *seen, size_t *stack, size_t seed, double thr,
                              size_t *peak)
{
    size_t top = 0, count = 0;
    stack[top++] = seed;
    seen[seed] = 1;
    *peak = seed;
    while (top) {
        size_t p = stack[--top];
        count++;
        if (q->img[p] > q->img[*peak])
            *peak = p;
        int x = (int)(p % (size_t)q->nx), y = (int)(p / (size_t)q->nx);
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int xx = x + dx, yy = y + dy;
                if (xx < 0 || yy < 0 || xx >= q->nx || yy >= q->ny)
                    continue;
                size_t n = (size_t)yy * q->nx + xx;
                if (!seen[n] && fp_ql_valid(q, n) && q->img[n] > thr) {
                    seen[n] = 1;
                    stack[top++] = n;
                }
            }
    }
    return count;
}

/* Sources: connected components above threshold; FWHM median over them. */
static int fp_ql_sources(const fp_ql *q, const fp_quicklook_config *cfg, int *n_sources, double *fwhm)
{
    size_t n = (size_t)q->nx * q->ny;
    unsigned char *seen = calloc(n, 1);
    size_t *stack = malloc(sizeof(size_t) * n);
    float *fw = malloc(sizeof(float) * (n / 4 + 1));
    if (!seen || !stack || !fw) {
        free(seen);
        free(stack);
        free(fw);
        return -1;
    }
    double thr = q->median + cfg->threshold_sigma * q->sigma;
    size_t nf = 0;
    *n_sources = 0;
    for (size_t p = 0; p < n; p++) {
        if (seen[p] || !fp_ql_valid(q, p) || q->img[p] <= thr)
            continue;
        size_t peak;
        size_t size = fp_ql_component(q, seen, stack, p, thr, &peak);
        if ((int)size < cfg->min_pixels)
            continue;
        (*n_sources)++;
        double xc = (double)(peak % (size_t)q->nx), yc = (double)(peak / (size_t)q->nx);
        double s = fp_adaptive_sigma(q, &xc, &yc, fmax(1.0, sqrt((double)size / M_PI) / 2.0));
        if (s > 0)
            fw[nf++] = (float)(2.0 * sqrt(2.0 * log(2.0)) * s);
    }
    *fwhm = nf ? fp_median_inplace(fw, nf) : NAN;
    free(seen);
    free(stack);
    free(fw);
    return 0;
}

/* The value at percentile pct of v[0..n) (reorders v). */
static float fp_percentile(float *v, size_t n, double pct)
{
    return fp_select_k(v, n, (size_t)(pct / 100.0 * (double)(n - 1) + 0.5));
}

/* Binned means (NaN where a block has no valid pixel). */
static float *fp_ql_bin(const fp_ql *q, int bin, int *bw, int *bh)
{
    *bw = (q->nx + bin - 1) / bin;
    *bh = (q->ny + bin - 1) / bin;
    float *b = malloc(sizeof(float) * (size_t)*bw * *bh);
    for (int by = 0; b && by < *bh; by++)
        for (int bx = 0; bx < *bw; bx++) {
            double sum = 0;
            int cnt = 0;
            for (int y = by * bin; y < (by + 1) * bin && y < q->ny; y++)
                for (int x = bx * bin; x < (bx + 1) * bin && x < q->nx; x++)
                    if (fp_ql_valid(q, (size_t)y * q->nx + x)) {
                        sum += q->img[(size_t)y * q->nx + x];
                        cnt++;
                    }
            b[(size_t)by * *bw + bx] = cnt ? (float)(sum / cnt) : NAN;
        }
    return b;
}

static int fp_ql_preview(const fp_ql *q, const fp_quicklook_config *cfg, const char *png_path)
{
    int bw, bh, bin = cfg->bin > 0 ? cfg->bin : 1, rc = -1;
    float *b = fp_ql_bin(q, bin, &bw, &bh);
    size_t n = (size_t)bw * bh, m = 0;
    float *tmp = malloc(sizeof(float) * n);
    unsigned char *pix = malloc(n);
    if (!b || !tmp || !pix)
        goto out;
    for (size_t p = 0; p < n; p++)
        if (isfinite(b[p]))
            tmp[m++] = b[p];
    double lo = m ? fp_percentile(tmp, m, cfg->low_pct) : 0,
           hi = m ? fp_percentile(tmp, m, cfg->high_pct) : 1;
    if (!(hi > lo))
        hi = lo + 1;
    double soft = (hi - lo) / 20.0;
    for (int y = 0; y < bh; y++)
        for (int x = 0; x < bw; x++) {
            double v = b[(size_t)y * bw + x], t;
            if (!isfinite(v))
                t = 0;
            else if (cfg->stretch == FP_STRETCH_ASINH)
                t = asinh(fmax(v - lo, 0) / soft) / asinh((hi - lo) / soft);
            else
                t = (v - lo) / (hi - lo);
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            pix[(size_t)(bh - 1 - y) * bw + x] = (unsigned char)(t * 255.0 + 0.5);
        }
    rc = fp_png_write_gray(png_path, pix, bw, bh);
out:
    free(b);
    free(tmp);
    free(pix);
    return rc;
}

/* The MASK extension as shorts, when the file has one. */
static short *fp_ql_read_mask(fitsfile *f, int nx, int ny)
{
    int status = 0, anynul = 0;
    long naxes[2] = {0, 0};
    if (fits_movnam_hdu(f, IMAGE_HDU, "MASK", 0, &status) || fits_get_img_size(f, 2, naxes, &status) ||
        naxes[0] != nx || naxes[1] != ny)
        return NULL;
    short *m = malloc(sizeof(short) * (size_t)nx * ny);
    if (m && fits_read_img(f, TSHORT, 1, (LONGLONG)nx * ny, NULL, m, &anynul, &status)) {
        free(m);
        m = NULL;
    }
    return m;
}

int fp_quicklook_run(const char *in_path, const char *png_path, const fp_quicklook_config *cfg,
                     json_t **metrics, char *err, size_t errlen)
{
    fp_ql q = {0};
    fitsfile *f = NULL;
    int status = 0, rc = -1, n_src = 0;
    double fwhm = NAN;
    if (fits_open_diskfile(&f, in_path, READONLY, &status) ||
        fp_read_image_hdu(f, "IMAGE", &q.img, &q.nx, &q.ny, &status)) {
        fp_fail_fits(err, errlen, status, "reading", in_path);
        goto out;
    }
    q.mask = fp_ql_read_mask(f, q.nx, q.ny);
    if (fp_ql_stats(&q) != 0 || fp_ql_sources(&q, cfg, &n_src, &fwhm) != 0) {
        fp_fail(err, errlen, "out of memory");
        goto out;
    }
    if (png_path && fp_ql_preview(&q, cfg, png_path) != 0) {
        fp_fail(err, errlen, "cannot write the preview %s", png_path);
        goto out;
    }
    if (metrics) {
        *metrics = json_pack("{s:s,s:s,s:f,s:f,s:f,s:i,s:o,s:i,s:i}", "task", "quicklook", "input", in_path,
                             "median", q.median, "robust_sigma", q.sigma, "saturated_fraction",
                             fp_ql_saturated_fraction(&q, cfg->saturation), "n_sources", n_src, "fwhm_pixels",
                             isfinite(fwhm) ? json_real(fwhm) : json_null(), "width", q.nx, "height", q.ny);
        if (png_path)
            json_object_set_new(*metrics, "preview", json_string(png_path));
    }
    rc = 0;
out:
    if (f) {
        status = 0;
        fits_close_file(f, &status);
    }
    free(q.img);
    free(q.mask);
    return rc;
}
