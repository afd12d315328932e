/*
 * fp_fake.c - the synthetic raw generator behind ocps-fakeraws: LATISS
 * layout, fixed sensor truth, seeded noise and stars.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fp__internal.h"

/* ---- deterministic random numbers (splitmix64 + xoshiro256**) ---- */

typedef struct fp_rng {
    uint64_t s[4];
    double spare;
    int has_spare;
} fp_rng;

static uint64_t fp_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void fp_rng_seed(fp_rng *r, uint64_t seed, uint64_t stream, uint64_t sub)
{
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ULL) ^ (sub * 0xABC98388FB8FAC03ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = fp_splitmix(&x);
    r->has_spare = 0;
}

static uint64_t fp_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t fp_rng_next(fp_rng *r)
{
    uint64_t *s = r->s, result = fp_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = fp_rotl(s[3], 45);
    return result;
}

/* Uniform in (0, 1). */
static double fp_rng_uniform(fp_rng *r)
{
    return ((fp_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal (Box-Muller, both values used). */
static double fp_rng_normal(fp_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u = fp_rng_uniform(r), v = fp_rng_uniform(r);
    double m = sqrt(-2.0 * log(u));
    r->spare = m * sin(2.0 * M_PI * v);
    r->has_spare = 1;
    return m * cos(2.0 * M_PI * v);
}

/* ---- truth ---- */

static const double fp_gain[16] = {1.05, 1.12, 0.98, 1.20, 1.08, 0.95, 1.15, 1.02,
                                   1.10, 0.97, 1.18, 1.04, 0.92, 1.13, 1.00, 1.07};

void fp_fake_truth_get(const fp_geometry *geom, fp_fake_truth *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < geom->n_amps && i < FP_MAX_AMPS; i++) {
        t->gain[i] = fp_gain[i];
        t->bias_level[i] = 12000.0 + 150.0 * i + 37.0 * (i % 3);
        t->bias_offset[i] = 1.5 + 0.25 * i;
        t->read_noise[i] = 4.5 + 0.2 * (i % 5);
    }
    t->dark_rate = 0.5;
    t->flat_level = 20000.0;
    t->sky_level = 800.0;
    t->star_fwhm = 4.0;
    t->n_stars = geom->raw_nx < 576 ? 15 : 150;
    t->saturation = 100000.0;
}

double fp_fake_illumination(const fp_geometry *geom, double x, double y)
{
    double cx = 0.5 * (geom->det_nx - 1), cy = 0.5 * (geom->det_ny - 1);
    double dx = (x - cx) / cx, dy = (y - cy) / cy;
    return 1.0 - 0.1 * (dx * dx + dy * dy);
}

void fp_fake_config_default(fp_fake_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->instrument, sizeof cfg->instrument, "LATISS");
    cfg->type = FP_FRAME_BIAS;
    cfg->count = 1;
    cfg->seed = 1;
    snprintf(cfg->day_obs, sizeof cfg->day_obs, "20240624");
    cfg->start_seq = 1;
    cfg->exptime = -1.0;
    cfg->compress = true;
    cfg->threads = 1;
}

static double fp_default_exptime(fp_frame_type type)
{
    static const double t[] = {0.0, 60.0, 5.0, 30.0};
    return t[type];
}

static const char *fp_imgtype(fp_frame_type type)
{
    static const char *const names[] = {"BIAS", "DARK", "FLAT", "OBJECT"};
    return names[type];
}

/* ---- one frame ---- */

typedef struct fp_star {
    double x, y, flux;
} fp_star;

typedef struct fp_frame {
    const fp_fake_config *cfg;
    const fp_geometry *geom;
    fp_fake_truth truth;
    int index, seq;
    double exptime;
    fp_star *stars;
    int n_stars;
    float *signal; /* e- per detector pixel, det_nx x det_ny */
} fp_frame;

/* Star positions away from edges and each other; fluxes 2e4..1e5 e-. */
static int fp_make_stars(fp_frame *fr)
{
    fp_rng r;
    const fp_geometry *g = fr->geom;
    fp_rng_seed(&r, fr->cfg->seed, (uint64_t)fr->index + 1, 1000);
    fr->stars = calloc((size_t)fr->truth.n_stars, sizeof *fr->stars);
    if (!fr->stars)
        return -1;
    double margin = 15.0, min_sep = 30.0;
    for (int tries = 0; fr->n_stars < fr->truth.n_stars && tries < 100000; tries++) {
        fp_star s = {margin + fp_rng_uniform(&r) * (g->det_nx - 2 * margin),
                     margin + fp_rng_uniform(&r) * (g->det_ny - 2 * margin), 2e4 + 8e4 * fp_rng_uniform(&r)};
        int ok = 1;
        for (int i = 0; i < fr->n_stars && ok; i++)
            ok = hypot(s.x - fr->stars[i].x, s.y - fr->stars[i].y) >= min_sep;
        if (ok)
            fr->stars[fr->n_stars++] = s;
    }
    return 0;
}

static void fp_render_star(fp_frame *fr, const fp_star *s)
{
    const fp_geometry *g = fr->geom;
    double sigma = fr->truth.star_fwhm / (2.0 * sqrt(2.0 * log(2.0)));
    double norm = s->flux / (2.0 * M_PI * sigma * sigma);
    int r = (int)ceil(6.0 * sigma);
    for (int y = (int)s->y - r; y <= (int)s->y + r; y++) {
        for (int x = (int)s->x - r; x <= (int)s->x + r; x++) {
            if (x < 0 || y < 0 || x >= g->det_nx || y >= g->det_ny)
                continue;
            double dx = x - s->x, dy = y - s->y;
            fr->signal[(size_t)y * g->det_nx + x] +=
                (float)(norm * exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)));
        }
    }
}

/* The expected signal in e- per detector pixel. */
static int fp_make_signal(fp_frame *fr)
{
    const fp_geometry *g = fr->geom;
    size_t n = (size_t)g->det_nx * g->det_ny;
    fr->signal = calloc(n, sizeof(float));
    if (!fr->signal)
        return -1;
    fp_frame_type type = fr->cfg->type;
    if (type == FP_FRAME_SCIENCE) {
        if (fp_make_stars(fr) != 0)
            return -1;
        for (int i = 0; i < fr->n_stars; i++)
            fp_render_star(fr, &fr->stars[i]);
    }
    double level = type == FP_FRAME_FLAT      ? fr->truth.flat_level
                   : type == FP_FRAME_SCIENCE ? fr->truth.sky_level
                                              : 0;
    double dark = fr->truth.dark_rate * fr->exptime;
    for (int y = 0; y < g->det_ny; y++) {
        for (int x = 0; x < g->det_nx; x++) {
            float *p = &fr->signal[(size_t)y * g->det_nx + x];
            double illum = fp_fake_illumination(g, x, y);
            *p = (float)((*p + level) * illum + dark);
        }
    }
    return 0;
}

/* Raw ADU of one amplifier image. */
static void fp_make_amp(const fp_frame *fr, int a, int32_t *pix)
{
    const fp_geometry *g = fr->geom;
    const fp_amp *amp = &g->amps[a];
    const fp_fake_truth *t = &fr->truth;
    fp_rng r;
    fp_rng_seed(&r, fr->cfg->seed, (uint64_t)fr->index + 1, (uint64_t)a + 1);
    const fp_section *d = &amp->datasec;
    for (int y = 0; y < g->raw_ny; y++) {
        for (int x = 0; x < g->raw_nx; x++) {
            double e = 0.0, adu = t->bias_level[a];
            if (x >= d->x1 - 1 && x < d->x2 && y >= d->y1 - 1 && y < d->y2) {
                int dx, dy;
                fp_amp_to_detector(amp, x - (d->x1 - 1), y - (d->y1 - 1), &dx, &dy);
                e = fr->signal[(size_t)dy * g->det_nx + dx];
                adu += t->bias_offset[a];
            }
            double sd = sqrt(t->read_noise[a] * t->read_noise[a] + e);
            adu += (e + sd * fp_rng_normal(&r)) / t->gain[a];
            adu = floor(adu + 0.5);
            if (adu < 0)
                adu = 0;
            if (adu > t->saturation)
                adu = t->saturation;
            pix[(size_t)y * g->raw_nx + x] = (int32_t)adu;
        }
    }
}

/* DATE-OBS (TAI) and MJD-OBS: 22:00 on day_obs plus 45 s per sequence
 * number (wrapping before noon of the next day, so day_obs holds). */
static void fp_date_obs(const char *day_obs, int seq, char *buf, size_t len, double *mjd)
{
    struct tm tm = {0};
    int ymd = atoi(day_obs);
    tm.tm_year = ymd / 10000 - 1900;
    tm.tm_mon = ymd / 100 % 100 - 1;
    tm.tm_mday = ymd % 100;
    tm.tm_hour = 22;
    time_t t = timegm(&tm) + (time_t)((seq > 0 ? seq - 1 : 0) % 1280) * 45;
    struct tm out;
    gmtime_r(&t, &out);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.000", out.tm_year + 1900, out.tm_mon + 1, out.tm_mday,
             out.tm_hour, out.tm_min, out.tm_sec);
    *mjd = (double)t / 86400.0 + 40587.0;
}

static void fp_write_primary(fitsfile *f, const fp_frame *fr, int *status)
{
    const fp_fake_config *c = fr->cfg;
    const fp_geometry *g = fr->geom;
    char obsid[64], date[96], detsize[64];
    double mjd = 0.0;
    snprintf(obsid, sizeof obsid, "AT_O_%s_%06d", c->day_obs, fr->seq);
    fp_date_obs(c->day_obs, fr->seq, date, sizeof date, &mjd);
    fp_section ds = {1, g->det_nx, 1, g->det_ny};
    fp_section_format(&ds, detsize, sizeof detsize);
    fits_create_img(f, BYTE_IMG, 0, NULL, status);
    fits_write_key_str(f, "INSTRUME", "LATISS", "instrument", status);
    fits_write_key_str(f, "TELESCOP", "LSST AuxTelescope", "telescope", status);
    fits_write_key_str(f, "OBSID", obsid, "observation id", status);
    fits_write_key_str(f, "DAYOBS", (char *)c->day_obs, "observing day (rolls over at 12:00 TAI)", status);
    fits_write_key_lng(f, "SEQNUM", fr->seq, "sequence number within the day", status);
    fits_write_key_str(f, "IMGTYPE", (char *)fp_imgtype(c->type), "image type", status);
    fits_write_key_dbl(f, "EXPTIME", fr->exptime, -6, "exposure time (s)", status);
    fits_write_key_str(f, "FILTER", "SDSSr_65mm", "filter", status);
    fits_write_key_str(f, "GRATING", "empty_1", "grating / disperser", status);
    fits_write_key_str(f, "DATE-OBS", date, "start of exposure (TAI)", status);
    fits_write_key_str(f, "TIMESYS", "TAI", "time scale", status);
    fits_write_key_dbl(f, "MJD-OBS", mjd, -12, "start of exposure (MJD, TAI)", status);
    fits_write_key_str(f, "DETSIZE", detsize, "detector size", status);
    fits_write_key_lng(f, "FAKSEED", (long)c->seed, "ocps-fakeraws: random seed", status);
    fits_write_key_dbl(f, "FAKDARK", fr->truth.dark_rate, -6, "ocps-fakeraws: dark current (e-/s/pixel)",
                       status);
    fits_write_key_dbl(f, "FAKFLAT", fr->truth.flat_level, -6, "ocps-fakeraws: flat level (e-)", status);
    fits_write_key_dbl(f, "FAKSKY", fr->truth.sky_level, -6, "ocps-fakeraws: sky level (e-)", status);
    fits_write_key_dbl(f, "FAKFWHM", fr->truth.star_fwhm, -6, "ocps-fakeraws: star FWHM (pixels)", status);
    fits_write_key_lng(f, "FAKNSTAR", c->type == FP_FRAME_SCIENCE ? fr->n_stars : 0, "ocps-fakeraws: stars",
                       status);
    fits_write_key_dbl(f, "FAKSAT", fr->truth.saturation, -6, "ocps-fakeraws: raw clip level (ADU)", status);
    fits_write_key_str(f, "FAKILLUM", "1-0.1*(dx^2+dy^2)", "illumination, dx,dy in [-1,1] from centre",
                       status);
}

static void fp_write_amp(fitsfile *f, const fp_frame *fr, int a, const int32_t *pix, int *status)
{
    const fp_geometry *g = fr->geom;
    const fp_amp *amp = &g->amps[a];
    long naxes[2] = {g->raw_nx, g->raw_ny};
    char sec[64];
    if (fr->cfg->compress) {
        long tile[2] = {g->raw_nx, 1};
        fits_set_compression_type(f, RICE_1, status);
        fits_set_tile_dim(f, 2, tile, status);
    } else {
        fits_set_compression_type(f, 0, status);
    }
    fits_create_img(f, LONG_IMG, 2, naxes, status);
    fits_write_key_str(f, "EXTNAME", (char *)amp->name, "amplifier", status);
    fp_section_format(&amp->datasec, sec, sizeof sec);
    fits_write_key_str(f, "DATASEC", sec, "imaging pixels", status);
    fp_section_format(&amp->detsec, sec, sizeof sec);
    fits_write_key_str(f, "DETSEC", sec, "place in the detector", status);
    fits_write_key_lng(f, "DTM1_1", -1, "detector transformation", status);
    fits_write_key_lng(f, "DTM2_2", a < 8 ? 1 : -1, "detector transformation", status);
    fits_write_key_dbl(f, "FAKGAIN", fr->truth.gain[a], -6, "ocps-fakeraws: gain (e-/ADU)", status);
    fits_write_key_dbl(f, "FAKBIAS", fr->truth.bias_level[a], -8, "ocps-fakeraws: bias level (ADU)", status);
    fits_write_key_dbl(f, "FAKBOFF", fr->truth.bias_offset[a], -6, "ocps-fakeraws: data - overscan (ADU)",
                       status);
    fits_write_key_dbl(f, "FAKRN", fr->truth.read_noise[a], -6, "ocps-fakeraws: read noise (e-)", status);
    fits_write_img(f, TINT, 1, (LONGLONG)g->raw_nx * g->raw_ny, (void *)pix, status);
}

static int fp_write_truth_json(const fp_frame *fr, const char *path, char *err, size_t errlen)
{
    const fp_fake_truth *t = &fr->truth;
    json_t *amps = json_array(), *stars = json_array();
    for (int a = 0; a < fr->geom->n_amps; a++)
        json_array_append_new(amps, json_pack("{s:s,s:f,s:f,s:f,s:f}", "name", fr->geom->amps[a].name, "gain",
                                              t->gain[a], "bias_level", t->bias_level[a], "bias_offset",
                                              t->bias_offset[a], "read_noise", t->read_noise[a]));
    for (int i = 0; i < fr->n_stars; i++)
        json_array_append_new(stars, json_pack("{s:f,s:f,s:f}", "x", fr->stars[i].x, "y", fr->stars[i].y,
                                               "flux_e", fr->stars[i].flux));
    json_t *root =
        json_pack("{s:s,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:s,s:o,s:o}", "type", fp_imgtype(fr->cfg->type), "seed",
                  (json_int_t)fr->cfg->seed, "exptime", fr->exptime, "dark_rate", t->dark_rate, "flat_level",
                  t->flat_level, "sky_level", t->sky_level, "star_fwhm", t->star_fwhm, "saturation",
                  t->saturation, "illumination", "1-0.1*(dx^2+dy^2)", "amps", amps, "stars", stars);
    int rc =
        json_dump_file(root, path, JSON_INDENT(1)) == 0 ? 0 : fp_fail(err, errlen, "cannot write %s", path);
    json_decref(root);
    return rc;
}

static int fp_write_frame(fp_frame *fr, const char *path, char *err, size_t errlen)
{
    const fp_geometry *g = fr->geom;
    int rc = -1, status = 0;
    fitsfile *f = NULL;
    int32_t *pix = malloc(sizeof(int32_t) * (size_t)g->raw_nx * g->raw_ny);
    if (!pix || fp_make_signal(fr) != 0) {
        fp_fail(err, errlen, "out of memory");
        goto out;
    }
    /* a plain file name (no cfitsio extended syntax); an older raw of that
     * name is replaced */
    if (unlink(path) != 0 && errno != ENOENT) {
        fp_fail(err, errlen, "cannot replace %s: %s", path, strerror(errno));
        goto out;
    }
    if (fits_create_diskfile(&f, path, &status) == 0)
        fp_write_primary(f, fr, &status);
    for (int a = 0; a < g->n_amps && status == 0; a++) {
        fp_make_amp(fr, a, pix);
        fp_write_amp(f, fr, a, pix, &status);
    }
    if (f)
        fits_close_file(f, &status);
    if (status) {
        fp_fail_fits(err, errlen, status, "writing", path);
        goto out;
    }
    char tpath[4200];
    snprintf(tpath, sizeof tpath, "%.*s.truth.json", (int)(strlen(path) - 5), path);
    rc = fp_write_truth_json(fr, tpath, err, errlen);
out:
    free(pix);
    free(fr->signal);
    free(fr->stars);
    return rc;
}

typedef struct fp_fake_job {
    const fp_fake_config *cfg;
    fp_geometry geom;
    char **paths;
} fp_fake_job;

static int fp_fake_unit(void *ctx, size_t i, char *err, size_t errlen)
{
    fp_fake_job *job = ctx;
    fp_frame fr = {.cfg = job->cfg, .geom = &job->geom, .index = (int)i, .seq = job->cfg->start_seq + (int)i};
    fp_fake_truth_get(&job->geom, &fr.truth);
    fr.exptime = job->cfg->exptime >= 0 ? job->cfg->exptime : fp_default_exptime(job->cfg->type);
    return fp_write_frame(&fr, job->paths[i], err, errlen);
}

void fp_free_paths(char **paths, int n)
{
    if (!paths)
        return;
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

static int fp_check_fake_config(const fp_fake_config *cfg, char *err, size_t errlen)
{
    if (cfg->count < 1)
        return fp_fail(err, errlen, "--count must be at least 1");
    if ((int)cfg->type < 0 || cfg->type > FP_FRAME_SCIENCE)
        return fp_fail(err, errlen, "unknown frame type");
    if (strlen(cfg->day_obs) != 8 || strspn(cfg->day_obs, "0123456789") != 8)
        return fp_fail(err, errlen, "day_obs must be YYYYMMDD, not '%s'", cfg->day_obs);
    /* ingest takes SEQNUM 1..99999 */
    if (cfg->start_seq < 1 || cfg->start_seq > 99999 - (cfg->count - 1))
        return fp_fail(err, errlen, "sequence numbers must stay within 1..99999 (--start-seq %d, --count %d)",
                       cfg->start_seq, cfg->count);
    return 0;
}

int fp_fake_write(const fp_fake_config *cfg, const char *out_dir, char ***paths, char *err, size_t errlen)
{
    fp_fake_job job = {.cfg = cfg};
    if (paths)
        *paths = NULL;
    if (fp_check_fake_config(cfg, err, errlen) != 0 ||
        fp_geometry_init(&job.geom, cfg->instrument, cfg->small, err, errlen) != 0)
        return -1;
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST)
        return fp_fail(err, errlen, "cannot create %s: %s", out_dir, strerror(errno));
    job.paths = calloc((size_t)cfg->count, sizeof *job.paths);
    if (!job.paths)
        return fp_fail(err, errlen, "out of memory");
    for (int i = 0; i < cfg->count; i++) {
        size_t len = strlen(out_dir) + 64;
        job.paths[i] = malloc(len);
        if (!job.paths[i]) {
            fp_free_paths(job.paths, cfg->count);
            return fp_fail(err, errlen, "out of memory");
        }
        snprintf(job.paths[i], len, "%s/AT_O_%s_%06d.fits", out_dir, cfg->day_obs, cfg->start_seq + i);
    }
    int rc = fp_parallel_run((size_t)cfg->count, cfg->threads, fp_fake_unit, &job, err, errlen);
    if (rc == 0 && paths)
        *paths = job.paths;
    else
        fp_free_paths(job.paths, cfg->count);
    return rc;
}
