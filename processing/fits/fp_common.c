/*
 * fp_common.c - errors, statistics, row reading with overscan correction,
 * output files with provenance, and the parallel helper.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fp__internal.h"

#ifndef FP_VERSION
#define FP_VERSION "0.0.0"
#endif

const char *fp_version(void)
{
    return FP_VERSION;
}

int fp_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int fp_fail_fits(char *err, size_t errlen, int status, const char *what, const char *path)
{
    char text[FLEN_STATUS] = "";
    fits_get_errstatus(status, text);
    return fp_fail(err, errlen, "%s %s: %s (cfitsio status %d)", what, path ? path : "", text, status);
}

double fp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- statistics ---- */

static void fp_swap(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* The k-th smallest of v[0..n) (Hoare's selection; reorders v). */
float fp_select_k(float *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (hi > lo) {
        float pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                fp_swap(&v[i], &v[j]);
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return v[k];
}

/* Sort a short array (insertion sort). */
static void fp_sort_small(float *v, int n)
{
    for (int i = 1; i < n; i++) {
        float x = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}

float fp_median_inplace(float *v, size_t n)
{
    if (n == 0)
        return NAN;
    if (n <= 32) {
        fp_sort_small(v, (int)n);
        return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
    }
    float hi = fp_select_k(v, n, n / 2);
    if (n % 2)
        return hi;
    float lo = v[0];
    for (size_t i = 1; i < n / 2; i++)
        if (v[i] > lo)
            lo = v[i];
    return 0.5f * (lo + hi);
}

float fp_robust_sigma_inplace(float *v, size_t n, float median)
{
    for (size_t i = 0; i < n; i++)
        v[i] = fabsf(v[i] - median);
    return 1.4826f * fp_median_inplace(v, n);
}

/* Order of two floats for qsort. */
static int fp_float_order(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Sort v in place: insertion sort for short stacks, qsort for deep ones. */
static void fp_sort(float *v, int n)
{
    if (n <= 64)
        fp_sort_small(v, n);
    else
        qsort(v, (size_t)n, sizeof *v, fp_float_order);
}

/* Mean of the values of v (sorted in place, any n) within k sigma of the
 * median, iterated. */
static float fp_sigclip_mean(float *v, int n, double k, int iter)
{
    fp_sort(v, n);
    int lo = 0, hi = n;
    double mean = 0.0;
    for (int it = 0; it <= iter; it++) {
        double sum = 0.0, sum2 = 0.0;
        int m = hi - lo;
        for (int i = lo; i < hi; i++) {
            sum += v[i];
            sum2 += (double)v[i] * v[i];
        }
        mean = sum / m;
        if (it == iter || m < 3)
            break;
        double var = (sum2 - sum * mean) / (m - 1);
        double sd = var > 0 ? sqrt(var) : 0.0;
        double med = m % 2 ? v[lo + m / 2] : 0.5 * (v[lo + m / 2 - 1] + v[lo + m / 2]);
        int nlo = lo, nhi = hi;
        while (nlo < nhi && v[nlo] < med - k * sd)
            nlo++;
        while (nhi > nlo && v[nhi - 1] > med + k * sd)
            nhi--;
        if ((nlo == lo && nhi == hi) || nhi - nlo < 1)
            break;
        lo = nlo;
        hi = nhi;
    }
    return (float)mean;
}

float fp_combine_values(float *v, int n, fp_combine_method method, double clip_sigma, int clip_iter)
{
    if (n <= 0)
        return NAN;
    if (method == FP_COMBINE_SIGCLIP_MEAN)
        return fp_sigclip_mean(v, n, clip_sigma, clip_iter);
    return fp_median_inplace(v, (size_t)n);
}

/* ---- raw rows and overscan ---- */

int fp_read_rows(fitsfile *f, int hdu, int raw_nx, int row0, int nrows, float *buf, int *status)
{
    long fpixel[2] = {1, row0 + 1}, lpixel[2] = {raw_nx, row0 + nrows}, inc[2] = {1, 1};
    int anynul = 0;
    if (fits_movabs_hdu(f, hdu, NULL, status))
        return *status;
    return fits_read_subset(f, TFLOAT, fpixel, lpixel, inc, NULL, buf, &anynul, status);
}

/* Overscan level of one raw row (the original, row-by-row way). */
static double fp_overscan_level(const float *row, const fp_amp *amp, fp_overscan_method method,
                                float *scratch)
{
    if (method == FP_OVERSCAN_NONE)
        return 0.0;
    int n = 0;
    for (int x = amp->biassec.x1 - 1; x < amp->biassec.x2; x++)
        scratch[n++] = row[x];
    if (method == FP_OVERSCAN_MEAN) {
        double sum = 0.0;
        for (int i = 0; i < n; i++)
            sum += scratch[i];
        return n ? sum / n : 0.0;
    }
    return fp_median_inplace(scratch, (size_t)n);
}

void fp_trim_row(const float *row, const fp_amp *amp, double level, float *out_row)
{
    int nx = fp_section_nx(&amp->datasec);
    const float *src = row + amp->datasec.x1 - 1;
    for (int i = 0; i < nx; i++)
        out_row[i] = (float)(src[i] - level);
}

void fp_overscan_row(const float *row, const fp_amp *amp, fp_overscan_method method, float *scratch,
                     float *out_row)
{
    fp_trim_row(row, amp, fp_overscan_level(row, amp, method, scratch), out_row);
}

void fp_overscan_levels(const float *rows, int nrows, int raw_nx, const fp_amp *amp,
                        fp_overscan_method method, const fp_network *net, float *scratch, double *level)
{
    int width = amp->biassec.x2 - amp->biassec.x1 + 1;
    if (method != FP_OVERSCAN_MEDIAN || !net || net->n_wires != width) {
        for (int r = 0; r < nrows; r++)
            level[r] = fp_overscan_level(rows + (size_t)r * raw_nx, amp, method, scratch);
        return;
    }
    /* column c of the overscan as wire c, rows side by side */
    const float *src = rows + amp->biassec.x1 - 1;
    for (int r = 0; r < nrows; r++)
        for (int c = 0; c < width; c++)
            scratch[(size_t)c * nrows + r] = src[(size_t)r * raw_nx + c];
    fp_network_apply(net, scratch, (size_t)nrows, (size_t)nrows);
    float *med = scratch + (size_t)width * nrows;
    fp_network_median_of(net, scratch, (size_t)nrows, (size_t)nrows, med);
    for (int r = 0; r < nrows; r++)
        level[r] = med[r];
}

/* ---- headers ---- */

void fp_read_primary_string(fitsfile *f, const char *key, char *buf, size_t len)
{
    int status = 0, hdu = 0;
    char value[FLEN_VALUE] = "";
    fits_get_hdu_num(f, &hdu);
    if (fits_movabs_hdu(f, 1, NULL, &status) == 0 &&
        fits_read_key(f, TSTRING, key, value, NULL, &status) == 0)
        snprintf(buf, len, "%s", value);
    else if (len)
        buf[0] = '\0';
    status = 0;
    fits_movabs_hdu(f, hdu, NULL, &status);
}

double fp_read_exptime(fitsfile *f)
{
    int status = 0, hdu = 0;
    double t = 0.0;
    fits_get_hdu_num(f, &hdu);
    if (fits_movabs_hdu(f, 1, NULL, &status) || fits_read_key(f, TDOUBLE, "EXPTIME", &t, NULL, &status))
        t = 0.0;
    status = 0;
    fits_movabs_hdu(f, hdu, NULL, &status);
    return t;
}

static const char *fp_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* A string key, written only when value is set. */
static void fp_key_str(fitsfile *f, const char *key, const char *value, const char *comment, int *status)
{
    if (value && *value)
        fits_update_key_longstr(f, key, value, comment, status);
}

void fp_write_provenance(fitsfile *f, const fp_provenance *prov, int *status)
{
    fits_write_key_longwarn(f, status);
    if (prov) {
        fp_key_str(f, "OCPSJOB", prov->job_id, "OCPS job id", status);
        fp_key_str(f, "OCPSPIPE", prov->pipeline, "pipeline", status);
        fp_key_str(f, "OCPSTASK", prov->task_label, "task label", status);
    }
    const char *ver = prov && prov->software_version ? prov->software_version : fp_version();
    fp_key_str(f, "OCPSVER", ver, "ocps-c fitsproc version", status);
    long n = prov ? (long)prov->n_inputs : 0;
    fits_update_key_lng(f, "OCPSNIN", n, "number of inputs", status);
    for (long i = 0; i < n; i++) {
        char key[FLEN_KEYWORD];
        snprintf(key, sizeof key, i < 99 ? "OCPSIN%ld" : "HIERARCH OCPSIN%ld", i + 1);
        fp_key_str(f, key, fp_basename(prov->inputs[i]), "input file", status);
    }
    fits_write_date(f, status);
}

/* Primary keys of raws carried into outputs. */
static const char *const fp_obs_keys[] = {"INSTRUME", "TELESCOP", "OBSID",  "DAYOBS",  "SEQNUM",
                                          "IMGTYPE",  "EXPTIME",  "FILTER", "GRATING", "DATE-OBS",
                                          "MJD-OBS",  "TIMESYS",  "DETSIZE"};

static void fp_copy_obs_keys(fitsfile *src, fitsfile *dst, int *status)
{
    int hdu = 0, st = 0;
    fits_get_hdu_num(src, &hdu);
    if (fits_movabs_hdu(src, 1, NULL, &st))
        return;
    for (size_t i = 0; i < sizeof fp_obs_keys / sizeof fp_obs_keys[0]; i++) {
        char card[FLEN_CARD];
        st = 0;
        if (fits_read_card(src, fp_obs_keys[i], card, &st) == 0)
            fits_write_record(dst, card, status);
    }
    st = 0;
    fits_movabs_hdu(src, hdu, NULL, &st);
}

int fp_output_create(const char *path, const fp_provenance *prov, fitsfile *src, fitsfile **out, char *err,
                     size_t errlen)
{
    int status = 0;
    *out = NULL;
    /* path is a plain file name (no cfitsio extended syntax, so '[' or '('
     * in it are literal); a file there (e.g. the empty one ocps-pipetask
     * created for this output) is replaced */
    if (unlink(path) != 0 && errno != ENOENT) {
        fp_fail(err, errlen, "cannot replace %s: %s", path, strerror(errno));
        return -1;
    }
    if (fits_create_diskfile(out, path, &status) || fits_create_img(*out, BYTE_IMG, 0, NULL, &status))
        goto fail;
    if (src)
        fp_copy_obs_keys(src, *out, &status);
    fp_write_provenance(*out, prov, &status);
    if (status)
        goto fail;
    return 0;
fail:
    fp_fail_fits(err, errlen, status, "creating", path);
    if (*out) {
        int st = 0;
        fits_delete_file(*out, &st);
        *out = NULL;
    }
    return -1;
}

int fp_output_finish(fitsfile *out, const char *path, int status, char *err, size_t errlen)
{
    int st = 0;
    if (status != 0) {
        fp_fail_fits(err, errlen, status, "writing", path);
        fits_delete_file(out, &st); /* closes and removes it */
        return -1;
    }
    if (fits_close_file(out, &status) != 0) {
        fp_fail_fits(err, errlen, status, "writing", path);
        remove(path);
        return -1;
    }
    return 0;
}

/* Set up (or turn off) tile compression for the next image. */
static void fp_output_compression(fitsfile *out, const fp_output_opts *opts, int nx, int *status)
{
    if (opts && opts->compress) {
        long tile[2] = {nx, 1};
        fits_set_compression_type(out, RICE_1, status);
        fits_set_tile_dim(out, 2, tile, status);
        fits_set_quantize_level(out, opts->quantize_level > 0 ? opts->quantize_level : 4.0f, status);
        fits_set_quantize_method(out, SUBTRACTIVE_DITHER_1, status);
        fits_set_dither_seed(out, 1, status);
    } else {
        fits_set_compression_type(out, 0, status);
    }
}

/* Header keys reserved in every image extension written. */
#define FP_OUTPUT_SPARE_KEYS 64

static int fp_output_add(fitsfile *out, const char *extname, int bitpix, int datatype, const void *data,
                         int nx, int ny, const fp_output_opts *opts, int *status)
{
    long naxes[2] = {nx, ny};
    fp_output_compression(out, opts, nx, status);
    fits_create_img(out, bitpix, 2, naxes, status);
    /* room for the keys callers add after the data (BUNIT, statistics):
     * a key added to a full header would move all the data behind it */
    fits_set_hdrsize(out, FP_OUTPUT_SPARE_KEYS, status);
    fits_update_key_str(out, "EXTNAME", extname, "", status);
    fits_write_img(out, datatype, 1, (LONGLONG)nx * ny, (void *)data, status);
    return *status;
}

int fp_output_add_float(fitsfile *out, const char *extname, const float *data, int nx, int ny,
                        const fp_output_opts *opts, int *status)
{
    return fp_output_add(out, extname, FLOAT_IMG, TFLOAT, data, nx, ny, opts, status);
}

int fp_output_add_short(fitsfile *out, const char *extname, const short *data, int nx, int ny,
                        const fp_output_opts *opts, int *status)
{
    return fp_output_add(out, extname, SHORT_IMG, TSHORT, data, nx, ny, opts, status);
}

int fp_read_image_hdu(fitsfile *f, const char *extname, float **pixels, int *nx, int *ny, int *status)
{
    int naxis = 0, nhdu = 0, type = 0;
    long naxes[2] = {0, 0};
    *pixels = NULL;
    if (extname && fits_movnam_hdu(f, IMAGE_HDU, (char *)extname, 0, status) != 0) {
        *status = 0;
        fits_get_num_hdus(f, &nhdu, status);
        for (int h = 1; h <= nhdu && *status == 0; h++) {
            fits_movabs_hdu(f, h, &type, status);
            fits_get_img_dim(f, &naxis, status);
            if (type == IMAGE_HDU && naxis == 2)
                break;
        }
    }
    if (fits_get_img_dim(f, &naxis, status) || fits_get_img_size(f, 2, naxes, status))
        return *status;
    if (naxis != 2)
        return *status = BAD_NAXIS;
    *nx = (int)naxes[0];
    *ny = (int)naxes[1];
    *pixels = malloc(sizeof(float) * (size_t)naxes[0] * (size_t)naxes[1]);
    if (!*pixels)
        return *status = MEMORY_ALLOCATION;
    int anynul = 0;
    fits_read_img(f, TFLOAT, 1, (LONGLONG)naxes[0] * naxes[1], NULL, *pixels, &anynul, status);
    if (*status) {
        free(*pixels);
        *pixels = NULL;
    }
    return *status;
}

int fp_image_read(const char *path, float **pixels, int *nx, int *ny, char *err, size_t errlen)
{
    fitsfile *f = NULL;
    int status = 0;
    if (fits_open_diskfile(&f, path, READONLY, &status))
        return fp_fail_fits(err, errlen, status, "opening", path);
    fp_read_image_hdu(f, "IMAGE", pixels, nx, ny, &status);
    int st = 0;
    fits_close_file(f, &st);
    if (status)
        return fp_fail_fits(err, errlen, status, "reading image of", path);
    return 0;
}

/* ---- parallel data units ---- */

typedef struct fp_pool {
    pthread_mutex_t lock;
    size_t next, n_units;
    fp_unit_fn fn;
    void *ctx;
    size_t failed_index; /* n_units when none failed */
    char *err;
    size_t errlen;
} fp_pool;

static void *fp_pool_worker(void *arg)
{
    fp_pool *p = arg;
    char msg[1024];
    for (;;) {
        pthread_mutex_lock(&p->lock);
        size_t i = p->next < p->n_units ? p->next++ : p->n_units;
        pthread_mutex_unlock(&p->lock);
        if (i >= p->n_units)
            return NULL;
        msg[0] = '\0';
        if (p->fn(p->ctx, i, msg, sizeof msg) != 0) {
            pthread_mutex_lock(&p->lock);
            if (i < p->failed_index) {
                p->failed_index = i;
                fp_fail(p->err, p->errlen, "%s", msg[0] ? msg : "data unit failed");
            }
            pthread_mutex_unlock(&p->lock);
        }
    }
}

int fp_parallel_run(size_t n_units, int threads, fp_unit_fn fn, void *ctx, char *err, size_t errlen)
{
    fp_pool p = {.next = 0,
                 .n_units = n_units,
                 .fn = fn,
                 .ctx = ctx,
                 .failed_index = n_units,
                 .err = err,
                 .errlen = errlen};
    if (threads > (int)n_units)
        threads = (int)n_units;
    if (threads <= 1) {
        pthread_mutex_init(&p.lock, NULL);
        fp_pool_worker(&p);
        pthread_mutex_destroy(&p.lock);
        return p.failed_index < n_units ? -1 : 0;
    }
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (!tids)
        return fp_fail(err, errlen, "out of memory");
    pthread_mutex_init(&p.lock, NULL);
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&tids[started], NULL, fp_pool_worker, &p) != 0)
            break;
    if (started == 0)
        fp_pool_worker(&p);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&p.lock);
    free(tids);
    return p.failed_index < n_units ? -1 : 0;
}
