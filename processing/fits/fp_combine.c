/*
 * fp_combine.c - master bias, dark and flat from raws, read in row
 * stripes so memory stays bounded however many inputs there are.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "fp__internal.h"
#include "fp__rice.h"

/* cfitsio's limit on files open at once (NMAXFILES in its internal header
 * fitsio2.h; 300 in cfitsio before 3.45, the lowest it has been). */
#if defined(__has_include)
#if __has_include(<fitsio2.h>)
#include <fitsio2.h>
#endif
#endif
#ifndef NMAXFILES
#define NMAXFILES 300
#endif

/* Descriptors (and cfitsio files) a combine leaves to the rest of the
 * process: the output, a calibration, the registry, logs. */
#define FP_FD_RESERVE 8

void fp_combine_config_default(fp_combine_config *cfg, fp_calib_type type)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->type = type;
    cfg->method = FP_COMBINE_MEDIAN;
    cfg->clip_sigma = 3.0;
    cfg->clip_iter = 3;
    cfg->overscan = FP_OVERSCAN_MEDIAN;
    cfg->stripe_rows = 64;
    cfg->threads = 1;
}

/* One handle on every input. */
typedef struct fp_handles {
    fitsfile **f; /* n */
    struct fp_handles *next;
} fp_handles;

static void fp_handles_close(fp_handles *h, size_t n)
{
    for (size_t k = 0; h && k < n; k++) {
        int st = 0;
        if (h->f[k])
            fits_close_file(h->f[k], &st);
    }
    if (h)
        free(h->f);
    free(h);
}

/* Open input `path` read-only; a failure for want of descriptors says so
 * and names the limit. */
static int fp_input_open(fitsfile **f, const char *path, char *err, size_t errlen)
{
    int status = 0;
    errno = 0;
    if (fits_open_diskfile(f, path, READONLY, &status) == 0)
        return 0;
    *f = NULL;
    struct rlimit rl;
    if ((errno == EMFILE || errno == ENFILE) && getrlimit(RLIMIT_NOFILE, &rl) == 0)
        return fp_fail(err, errlen,
                       "opening %s: too many open files (RLIMIT_NOFILE %llu descriptors%s); raise the limit "
                       "(ulimit -n) or lower -j",
                       path, (unsigned long long)rl.rlim_cur, errno == ENFILE ? ", or the system's" : "");
    return fp_fail_fits(err, errlen, status, "opening", path);
}

/* Handles on inputs [0, kept) of n (the others NULL: opened per stripe). */
static fp_handles *fp_handles_open(const char *const *inputs, size_t n, size_t kept, char *err, size_t errlen)
{
    fp_handles *h = calloc(1, sizeof *h);
    if (h)
        h->f = calloc(n, sizeof *h->f);
    if (!h || !h->f) {
        free(h);
        fp_fail(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t k = 0; k < kept && k < n; k++) {
        if (fp_input_open(&h->f[k], inputs[k], err, errlen) != 0) {
            fp_handles_close(h, n);
            return NULL;
        }
    }
    return h;
}

/* Descriptors open in this process now: /proc/self/fd's entries (less
 * the directory's own), else a scan of the first `limit`. */
static long fp_open_fds(long limit)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    if (d) {
        for (struct dirent *e = readdir(d); e; e = readdir(d))
            n += e->d_name[0] != '.';
        closedir(d);
        return n > 0 ? n - 1 : 0;
    }
    for (int fd = 0; fd < limit && fd < 65536; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* Files a combine may hold open at once: what RLIMIT_NOFILE leaves over
 * the descriptors open now, and what cfitsio allows, less a reserve.
 * *limit, *open: the descriptor limit and use (for messages). */
static long fp_files_budget(long *limit, long *open)
{
    struct rlimit rl;
    *limit = LONG_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)LONG_MAX)
        *limit = (long)rl.rlim_cur;
    *open = fp_open_fds(*limit);
    long fds = *limit - *open - FP_FD_RESERVE, files = NMAXFILES - FP_FD_RESERVE;
    return fds < files ? fds : files;
}

typedef struct fp_combine_job {
    const char *const *inputs;
    size_t n;
    const fp_combine_config *cfg;
    fp_geometry geom;
    double *exptime; /* per input */
    double *scale;   /* per input multiplier (flats: 1 / median) */
    float *bias, *dark;
    float *out; /* det_nx x det_ny */
    /* open handles of the inputs, passed from one amplifier to the next
     * (a thread takes a set, or opens one when none is free) */
    pthread_mutex_t lock;
    fp_handles *free_handles;
    int threads; /* amplifiers combined at once */
    size_t kept; /* inputs a set keeps open (n, unless over the budget) */
} fp_combine_job;

/* Where data row j of amp lands in the detector: the offset of its first
 * pixel and the step to the next (+1 or -1, as DETSEC gives). */
static void fp_row_placement(const fp_geometry *g, const fp_amp *amp, int j, size_t *first, ptrdiff_t *step)
{
    int x0, y, x1, y1;
    fp_amp_to_detector(amp, 0, j, &x0, &y);
    fp_amp_to_detector(amp, 1, j, &x1, &y1);
    *first = (size_t)y * g->det_nx + (size_t)x0;
    *step = x1 - x0;
}

/* A trimmed, overscan-corrected data row j of input k, amp a: bias, dark
 * x EXPTIME, then the input's scale (and 1 / EXPTIME for darks). */
static void fp_calibrate_row(const fp_combine_job *job, size_t k, int a, int j, float *out_row)
{
    const fp_amp *amp = &job->geom.amps[a];
    int nx = fp_section_nx(&amp->datasec);
    double per_s = job->cfg->type == FP_CALIB_DARK ? 1.0 / job->exptime[k] : 1.0;
    float mult = (float)(per_s * job->scale[k]);
    if (!job->bias && !job->dark) {
        if (mult != 1.0f)
            for (int i = 0; i < nx; i++)
                out_row[i] *= mult;
        return;
    }
    size_t first;
    ptrdiff_t step;
    fp_row_placement(&job->geom, amp, j, &first, &step);
    const float dark_t = (float)job->exptime[k];
    for (int i = 0; i < nx; i++) {
        size_t p = first + (size_t)(step * i);
        float v = out_row[i];
        if (job->bias)
            v -= job->bias[p];
        if (job->dark)
            v -= job->dark[p] * dark_t;
        out_row[i] = v * mult;
    }
}

/* One raw row of input k, amp a, data row j: overscan, bias, dark, scale. */
static void fp_correct_row(const fp_combine_job *job, size_t k, int a, int j, const float *row,
                           float *scratch, float *out_row)
{
    fp_overscan_row(row, &job->geom.amps[a], job->cfg->overscan, scratch, out_row);
    fp_calibrate_row(job, k, a, j, out_row);
}

/* Per-thread buffers of one amplifier's combine. */
typedef struct fp_stripe {
    fp_handles *handles;
    fitsfile **f;            /* handles->f */
    float *rows;             /* stripe x raw_nx raw rows of one input */
    float *data;             /* n x stripe x data_nx (corrected) */
    float *vals;             /* n */
    float *scratch;          /* overscan width x stripe + stripe, or raw_nx */
    double *level;           /* stripe: overscan levels */
    fp_network overscan_net; /* median network on the overscan width */
    fp_network stack_net;    /* median (or, sigma-clipping, sorting) network on n */
    fp_rice_hdu *tiles;      /* n: how each input's HDU of this amplifier is read */
    fp_rice_buf rice;        /* buffers of the RICE fast path */
    bool has_overscan_net, has_stack_net;
} fp_stripe;

static void fp_stripe_free(fp_stripe *s, fp_combine_job *job)
{
    if (s->handles) {
        pthread_mutex_lock(&job->lock);
        s->handles->next = job->free_handles;
        job->free_handles = s->handles;
        pthread_mutex_unlock(&job->lock);
    }
    free(s->rows);
    free(s->data);
    free(s->vals);
    free(s->scratch);
    free(s->level);
    free(s->tiles);
    fp_rice_buf_free(&s->rice);
}

/* A free set of input handles, or a new one. */
static fp_handles *fp_handles_take(fp_combine_job *job, char *err, size_t errlen)
{
    pthread_mutex_lock(&job->lock);
    fp_handles *h = job->free_handles;
    if (h)
        job->free_handles = h->next;
    pthread_mutex_unlock(&job->lock);
    return h ? h : fp_handles_open(job->inputs, job->n, job->kept, err, errlen);
}

/* Buffers, networks and the inputs' handles for amplifier a. */
static int fp_stripe_open(fp_stripe *s, fp_combine_job *job, int a, char *err, size_t errlen)
{
    const fp_geometry *g = &job->geom;
    const fp_amp *amp = &g->amps[a];
    size_t rows = (size_t)job->cfg->stripe_rows, width = (size_t)(amp->biassec.x2 - amp->biassec.x1 + 1);
    size_t scratch = (width + 1) * rows > (size_t)g->raw_nx ? (width + 1) * rows : (size_t)g->raw_nx;
    memset(s, 0, sizeof *s);
    s->rows = malloc(sizeof(float) * rows * (size_t)g->raw_nx);
    s->data = malloc(sizeof(float) * job->n * rows * (size_t)g->raw_nx);
    s->vals = malloc(sizeof(float) * job->n);
    s->scratch = malloc(sizeof(float) * scratch);
    s->level = malloc(sizeof(double) * rows);
    s->tiles = calloc(job->n, sizeof *s->tiles);
    if (!s->rows || !s->data || !s->vals || !s->scratch || !s->level || !s->tiles)
        return fp_fail(err, errlen, "out of memory");
    s->has_overscan_net = fp_network_median(&s->overscan_net, (int)width) == 0;
    s->has_stack_net = job->cfg->method == FP_COMBINE_MEDIAN
                           ? fp_network_median(&s->stack_net, (int)job->n) == 0
                           : fp_network_sort(&s->stack_net, (int)job->n) == 0;
    s->handles = fp_handles_take(job, err, errlen);
    if (!s->handles)
        return -1;
    s->f = s->handles->f;
    return 0;
}

/* Read rows [j0, j0+nrows) of amp a of input k and correct them into
 * s->data (input k's rows at k * nrows * data_nx). */
static int fp_stripe_read(fp_combine_job *job, fp_stripe *s, size_t k, int a, int j0, int nrows, char *err,
                          size_t errlen)
{
    const fp_geometry *g = &job->geom;
    const fp_amp *amp = &g->amps[a];
    int nx = fp_section_nx(&amp->datasec);
    char msg[512];
    fitsfile *f = s->f[k];
    if (!f && fp_input_open(&f, job->inputs[k], err, errlen) != 0)
        return -1; /* an input not kept open: opened for this stripe */
    int rc = fp_rice_read_rows(f, a + 2, &s->tiles[k], &s->rice, g->raw_nx, amp->datasec.y1 - 1 + j0, nrows,
                               s->rows, msg, sizeof msg);
    if (f != s->f[k]) {
        int st = 0;
        fits_close_file(f, &st);
    }
    if (rc)
        return fp_fail(err, errlen, "reading %s: %s", job->inputs[k], msg);
    fp_overscan_levels(s->rows, nrows, g->raw_nx, amp, job->cfg->overscan,
                       s->has_overscan_net ? &s->overscan_net : NULL, s->scratch, s->level);
    for (int r = 0; r < nrows; r++) {
        float *out_row = s->data + (k * nrows + r) * (size_t)nx;
        fp_trim_row(s->rows + (size_t)r * g->raw_nx, amp, s->level[r], out_row);
        fp_calibrate_row(job, k, a, j0 + r, out_row);
    }
    return 0;
}

/* The median of the stack's row (wires sorted by the median network) into
 * its detector row. */
static void fp_place_median(const fp_network *net, const float *row, size_t stride, int nx, float *dst,
                            ptrdiff_t step)
{
    int n = net->n_wires;
    const float *lo = row + (size_t)((n - 1) / 2) * stride, *hi = row + (size_t)(n / 2) * stride;
    if (n % 2) {
        for (int i = 0; i < nx; i++)
            dst[step * i] = hi[i];
        return;
    }
    for (int i = 0; i < nx; i++)
        dst[step * i] = 0.5f * (lo[i] + hi[i]);
}

/* Combine one row of the stack (input k's pixels at row + k * stride)
 * into its detector row, pixel by pixel (sigma clipping, deep stacks). */
static void fp_place_combined(fp_combine_job *job, fp_stripe *s, const float *row, size_t stride, int nx,
                              float *dst, ptrdiff_t step)
{
    size_t n = job->n;
    for (int i = 0; i < nx; i++) {
        for (size_t k = 0; k < n; k++)
            s->vals[k] = row[k * stride + i];
        dst[step * i] =
            fp_combine_values(s->vals, (int)n, job->cfg->method, job->cfg->clip_sigma, job->cfg->clip_iter);
    }
}

/* Combine data rows [j0, j0+nrows) of amplifier a. */
static int fp_combine_stripe(fp_combine_job *job, fp_stripe *s, int a, int j0, int nrows, char *err,
                             size_t errlen)
{
    const fp_geometry *g = &job->geom;
    const fp_amp *amp = &g->amps[a];
    int nx = fp_section_nx(&amp->datasec);
    for (size_t k = 0; k < job->n; k++)
        if (fp_stripe_read(job, s, k, a, j0, nrows, err, errlen) != 0)
            return -1;
    size_t stride = (size_t)nrows * nx;
    bool median = job->cfg->method == FP_COMBINE_MEDIAN && s->has_stack_net;
    for (int r = 0; r < nrows; r++) {
        float *row = s->data + (size_t)r * nx; /* input k's row: row + k * stride */
        size_t first;
        ptrdiff_t step;
        fp_row_placement(g, amp, j0 + r, &first, &step);
        if (s->has_stack_net)
            fp_network_apply(&s->stack_net, row, stride, (size_t)nx);
        if (median)
            fp_place_median(&s->stack_net, row, stride, nx, job->out + first, step);
        else
            fp_place_combined(job, s, row, stride, nx, job->out + first, step);
    }
    return 0;
}

static int fp_combine_amp(void *ctx, size_t a, char *err, size_t errlen)
{
    fp_combine_job *job = ctx;
    fp_stripe s;
    int rc = fp_stripe_open(&s, job, (int)a, err, errlen);
    int ny = fp_section_ny(&job->geom.amps[a].datasec);
    for (int j0 = 0; rc == 0 && j0 < ny; j0 += job->cfg->stripe_rows) {
        int nrows = ny - j0 < job->cfg->stripe_rows ? ny - j0 : job->cfg->stripe_rows;
        rc = fp_combine_stripe(job, &s, (int)a, j0, nrows, err, errlen);
    }
    fp_stripe_free(&s, job);
    return rc;
}

/* A flat's level: the median of a sample of its corrected rows. */
static int fp_flat_level(fp_combine_job *job, size_t k, double *level, char *err, size_t errlen)
{
    const fp_geometry *g = &job->geom;
    fitsfile *f = NULL;
    int status = 0, step = g->data_ny / 16 > 0 ? g->data_ny / 16 : 1;
    size_t cap = (size_t)g->n_amps * (g->data_ny / step + 1) * g->raw_nx, m = 0;
    float *vals = malloc(sizeof(float) * cap), *row = malloc(sizeof(float) * 3 * (size_t)g->raw_nx);
    if (!vals || !row) {
        free(vals);
        free(row);
        return fp_fail(err, errlen, "out of memory");
    }
    if (fits_open_diskfile(&f, job->inputs[k], READONLY, &status) == 0) {
        for (int a = 0; a < g->n_amps && status == 0; a++) {
            const fp_amp *amp = &g->amps[a];
            int nx = fp_section_nx(&amp->datasec);
            for (int j = step / 2; j < fp_section_ny(&amp->datasec) && status == 0; j += step) {
                if (fp_read_rows(f, a + 2, g->raw_nx, amp->datasec.y1 - 1 + j, 1, row, &status))
                    break;
                fp_correct_row(job, k, a, j, row, row + g->raw_nx, vals + m);
                m += (size_t)nx;
            }
        }
        int st = 0;
        fits_close_file(f, &st);
    }
    *level = fp_median_inplace(vals, m);
    free(vals);
    free(row);
    if (status)
        return fp_fail_fits(err, errlen, status, "reading", job->inputs[k]);
    if (!(*level > 0))
        return fp_fail(err, errlen, "flat %s has no positive level", job->inputs[k]);
    return 0;
}

/* Geometry of every input (the same), exposure times, flat scales. */
static int fp_combine_prepare(fp_combine_job *job, char *err, size_t errlen)
{
    if (fp_geometry_read(job->inputs[0], &job->geom, err, errlen) != 0)
        return -1;
    for (size_t k = 0; k < job->n; k++) {
        fp_geometry g;
        fitsfile *f = NULL;
        int status = 0;
        if (fp_geometry_read(job->inputs[k], &g, err, errlen) != 0)
            return -1;
        if (memcmp(&g, &job->geom, sizeof g) != 0)
            return fp_fail(err, errlen, "%s: amplifier layout differs from %s", job->inputs[k],
                           job->inputs[0]);
        if (fits_open_diskfile(&f, job->inputs[k], READONLY, &status))
            return fp_fail_fits(err, errlen, status, "opening", job->inputs[k]);
        job->exptime[k] = fp_read_exptime(f);
        fits_close_file(f, &status);
        job->scale[k] = 1.0;
        if (job->cfg->type == FP_CALIB_DARK && !(job->exptime[k] > 0))
            return fp_fail(err, errlen, "dark %s has EXPTIME %g", job->inputs[k], job->exptime[k]);
    }
    return 0;
}

static int fp_load_calib(const char *path, const fp_geometry *g, float **pix, char *err, size_t errlen)
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

/* Median and robust sigma of amplifier a's region of the output (every
 * pixel of small amplifiers, a regular sample of about 2e5 otherwise). */
static void fp_amp_stats(const fp_combine_job *job, int a, float *buf, double *med, double *sigma)
{
    const fp_amp *amp = &job->geom.amps[a];
    int nx = fp_section_nx(&amp->datasec), ny = fp_section_ny(&amp->datasec);
    int step = (int)sqrt((double)nx * ny / 2e5);
    step = step < 1 ? 1 : step;
    size_t m = 0;
    for (int j = 0; j < ny; j += step)
        for (int i = 0; i < nx; i += step) {
            int x, y;
            fp_amp_to_detector(amp, i, j, &x, &y);
            buf[m++] = job->out[(size_t)y * job->geom.det_nx + x];
        }
    *med = fp_median_inplace(buf, m);
    *sigma = fp_robust_sigma_inplace(buf, m, (float)*med);
}

/* Flats: divide by the median of the covered pixels. */
static int fp_normalise_flat(fp_combine_job *job, char *err, size_t errlen)
{
    const fp_geometry *g = &job->geom;
    size_t n = (size_t)g->det_nx * g->det_ny;
    float *tmp = malloc(sizeof(float) * n);
    if (!tmp)
        return fp_fail(err, errlen, "out of memory");
    memcpy(tmp, job->out, sizeof(float) * n);
    float med = fp_median_inplace(tmp, n);
    free(tmp);
    if (!(med > 0))
        return fp_fail(err, errlen, "combined flat has median %g", med);
    for (size_t p = 0; p < n; p++)
        job->out[p] /= med;
    return 0;
}

static const char *fp_calib_name(fp_calib_type t)
{
    return t == FP_CALIB_DARK ? "dark" : t == FP_CALIB_FLAT ? "flat" : "bias";
}

/* Per-amplifier statistics into IMAGE header keys and a JSON array. */
static json_t *fp_combine_stats(fp_combine_job *job, fitsfile *out, int *status)
{
    const fp_geometry *g = &job->geom;
    json_t *amps = json_array();
    float *buf = malloc(sizeof(float) * (size_t)g->raw_nx * g->raw_ny);
    for (int a = 0; buf && a < g->n_amps; a++) {
        double med, sig;
        char key[32], comment[80];
        fp_amp_stats(job, a, buf, &med, &sig);
        snprintf(key, sizeof key, "AMPMED%02d", a + 1);
        snprintf(comment, sizeof comment, "median of %s", g->amps[a].name);
        fits_update_key_dbl(out, key, med, -8, comment, status);
        snprintf(key, sizeof key, "AMPSIG%02d", a + 1);
        snprintf(comment, sizeof comment, "robust sigma of %s", g->amps[a].name);
        fits_update_key_dbl(out, key, sig, -8, comment, status);
        json_array_append_new(
            amps, json_pack("{s:s,s:f,s:f}", "name", g->amps[a].name, "median", med, "sigma", sig));
    }
    free(buf);
    return amps;
}

static int fp_combine_write(fp_combine_job *job, const char *out_path, const fp_provenance *prov,
                            json_t **amps, char *err, size_t errlen)
{
    const fp_combine_config *cfg = job->cfg;
    fitsfile *out = NULL, *first = NULL;
    int status = 0;
    if (fp_output_create(out_path, prov, NULL, &out, err, errlen) != 0)
        return -1;
    if (fits_open_diskfile(&first, job->inputs[0], READONLY, &status) == 0) {
        static const char *const keys[] = {"INSTRUME", "FILTER", "GRATING", "DETSIZE"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            char card[FLEN_CARD];
            int st = 0;
            if (fits_read_card(first, keys[i], card, &st) == 0)
                fits_write_record(out, card, &status);
        }
        int st = 0;
        fits_close_file(first, &st);
    }
    fits_update_key_str(out, "CALIBTYP", (char *)fp_calib_name(cfg->type), "calibration type", &status);
    fits_update_key_str(out, "CMBMETH", cfg->method == FP_COMBINE_MEDIAN ? "median" : "sigclip_mean",
                        "combine method", &status);
    fits_update_key_lng(out, "NCOMBINE", (long)job->n, "number of inputs combined", &status);
    fp_output_add_float(out, "IMAGE", job->out, job->geom.det_nx, job->geom.det_ny, &cfg->output, &status);
    fits_update_key_str(out, "BUNIT",
                        cfg->type == FP_CALIB_DARK   ? "adu/s"
                        : cfg->type == FP_CALIB_FLAT ? ""
                                                     : "adu",
                        "", &status);
    *amps = fp_combine_stats(job, out, &status);
    return fp_output_finish(out, out_path, status, err, errlen);
}

/* Close the handle sets the threads left. */
static void fp_combine_close_handles(fp_combine_job *job)
{
    while (job->free_handles) {
        fp_handles *h = job->free_handles;
        job->free_handles = h->next;
        fp_handles_close(h, job->n);
    }
}

/* Threads and inputs kept open within the files the process may open
 * (fp_files_budget): every input open on every thread when they fit (the
 * common case, fastest); else fewer threads, each with every input open;
 * else every thread keeps what its share allows open and opens the rest
 * stripe by stripe (one at a time). Fails, naming the limits, when not
 * even one input can be opened. */
static int fp_combine_plan(fp_combine_job *job, int threads, char *err, size_t errlen)
{
    long limit, open, budget = fp_files_budget(&limit, &open);
    long t = threads < 1 ? 1 : threads > job->geom.n_amps ? job->geom.n_amps : threads, n = (long)job->n;
    if (budget < 1)
        return fp_fail(
            err, errlen,
            "no file descriptor left to read the inputs: %ld of RLIMIT_NOFILE %ld are open, %d kept "
            "in reserve (cfitsio opens at most %d files); raise the limit (ulimit -n)",
            open, limit, FP_FD_RESERVE, NMAXFILES);
    if (budget >= t * n) {
        job->threads = (int)t;
        job->kept = job->n;
    } else if (budget >= n) {
        job->threads = (int)(budget / n);
        job->kept = job->n;
    } else {
        job->threads = (int)(budget < t ? budget : t);
        job->kept = (size_t)(budget / job->threads - 1); /* and one opened per stripe */
    }
    return 0;
}

static int fp_combine_scales(fp_combine_job *job, char *err, size_t errlen)
{
    for (size_t k = 0; job->cfg->type == FP_CALIB_FLAT && k < job->n; k++) {
        double level = 0.0;
        if (fp_flat_level(job, k, &level, err, errlen) != 0)
            return -1;
        job->scale[k] = 1.0 / level;
    }
    return 0;
}

int fp_combine_run(const char *const *inputs, size_t n_inputs, const char *out_path,
                   const fp_combine_config *cfg, const fp_provenance *prov, json_t **metrics, char *err,
                   size_t errlen)
{
    if (n_inputs == 0)
        return fp_fail(err, errlen, "nothing to combine");
    if (cfg->stripe_rows < 1)
        return fp_fail(err, errlen, "stripe_rows must be at least 1");
    double t0 = fp_now();
    fp_combine_job job = {.inputs = inputs, .n = n_inputs, .cfg = cfg};
    json_t *amps = NULL;
    int rc = -1;
    pthread_mutex_init(&job.lock, NULL);
    job.exptime = calloc(n_inputs, sizeof(double));
    job.scale = calloc(n_inputs, sizeof(double));
    if (!job.exptime || !job.scale) {
        fp_fail(err, errlen, "out of memory");
        goto out;
    }
    if (fp_combine_prepare(&job, err, errlen) != 0 ||
        fp_load_calib(cfg->bias_path, &job.geom, &job.bias, err, errlen) != 0 ||
        fp_load_calib(cfg->dark_path, &job.geom, &job.dark, err, errlen) != 0 ||
        fp_combine_scales(&job, err, errlen) != 0)
        goto out;
    job.out = calloc((size_t)job.geom.det_nx * job.geom.det_ny, sizeof(float));
    if (!job.out) {
        fp_fail(err, errlen, "out of memory");
        goto out;
    }
    if (fp_combine_plan(&job, cfg->threads, err, errlen) != 0)
        goto out;
    rc = fp_parallel_run((size_t)job.geom.n_amps, job.threads, fp_combine_amp, &job, err, errlen);
    fp_combine_close_handles(&job); /* before the output is written */
    if (rc != 0)
        goto out;
    rc = -1;
    if (cfg->type == FP_CALIB_FLAT && fp_normalise_flat(&job, err, errlen) != 0)
        goto out;
    if (fp_combine_write(&job, out_path, prov, &amps, err, errlen) != 0)
        goto out;
    if (metrics) {
        double med = 0.0;
        json_t *a;
        size_t i;
        json_array_foreach(amps, i, a) med += json_real_value(json_object_get(a, "median"));
        *metrics = json_pack("{s:s,s:s,s:s,s:I,s:f,s:O,s:I,s:I,s:f}", "task", "combine", "type",
                             fp_calib_name(cfg->type), "output", out_path, "n_inputs", (json_int_t)n_inputs,
                             "mean_amp_median", med / (double)json_array_size(amps), "amps", amps, "threads",
                             (json_int_t)job.threads, "inputs_kept_open", (json_int_t)job.kept, "seconds",
                             fp_now() - t0);
    }
    rc = 0;
out:
    fp_combine_close_handles(&job);
    pthread_mutex_destroy(&job.lock);
    json_decref(amps);
    free(job.exptime);
    free(job.scale);
    free(job.bias);
    free(job.dark);
    free(job.out);
    return rc;
}
