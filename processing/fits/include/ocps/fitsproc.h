/*
 * fitsproc.h - FITS image processing on cfitsio for the OCPS's own
 * pipelines (issue 12): the LATISS amplifier geometry, instrument
 * signature removal (ISR), calibration combines (bias, dark, flat),
 * quick-look metrics with a PNG preview, provenance headers, and a small
 * helper that runs data units on N threads.
 *
 * Raws are multi-extension FITS files: a header-only primary HDU, then one
 * int32 image HDU per amplifier (usually RICE tile-compressed) carrying
 * DATASEC and DETSEC (ranges may be flipped, e.g. [509:1,1:2000]).
 * Outputs have a header-only primary HDU with provenance, then an "IMAGE"
 * float32 extension (and "MASK" for ISR), optionally tile-compressed.
 *
 * Every function returns 0 on success, or -1 with a message in err (of
 * errlen bytes). Metrics come back as a jansson object owned by the
 * caller. No global mutable state: calls may run on several threads at
 * once (cfitsio is built reentrant; every call opens its own handles).
 * See docs/fits-processing.md.
 */
#ifndef OCPS_FITSPROC_H
#define OCPS_FITSPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* ---- Geometry ---------------------------------------------------------- */

#define FP_MAX_AMPS 16

/* A 1-based FITS section "[x1:x2,y1:y2]"; x1 > x2 (or y1 > y2) means the
 * axis is flipped when the amplifier is placed in the detector. */
typedef struct fp_section {
    int x1, x2, y1, y2;
} fp_section;

/* One amplifier's layout in a raw file. */
typedef struct fp_amp {
    char name[16];      /* EXTNAME, e.g. "Segment10" */
    fp_section datasec; /* imaging pixels within the raw amplifier image */
    fp_section detsec;  /* where they go in the assembled detector */
    fp_section biassec; /* serial overscan (from BIASSEC, or the geometry) */
    double gain;        /* e-/ADU (nominal; 1 when unknown) */
    double read_noise;  /* e- (nominal) */
} fp_amp;

/* A detector: amplifier images of raw_nx x raw_ny, assembled into
 * det_nx x det_ny. */
typedef struct fp_geometry {
    char instrument[16];
    int n_amps;
    int raw_nx, raw_ny;       /* raw amplifier image size (576 x 2048 for ITL) */
    int prescan;              /* serial prescan columns (3) */
    int data_nx, data_ny;     /* imaging pixels per amplifier (509 x 2000) */
    int serial_overscan;      /* serial overscan columns (64) */
    int parallel_overscan;    /* parallel overscan rows (48) */
    int det_nx, det_ny;       /* assembled detector (4072 x 4000) */
    fp_amp amps[FP_MAX_AMPS]; /* in HDU order (HDU 2 is amps[0]) */
} fp_geometry;

/* The LATISS (ITL sensor) geometry: full size, or with small = true the
 * scaled-down one for tests (amplifiers of 72 x 256: 1 prescan, 63 x 250
 * imaging pixels, 8 overscan columns, 6 parallel-overscan rows). Returns
 * -1 for an unknown instrument. */
int fp_geometry_init(fp_geometry *geom, const char *instrument, bool small, char *err, size_t errlen);

/* Parse "[x1:x2,y1:y2]" into sec; -1 if malformed. */
int fp_section_parse(const char *text, fp_section *sec);

/* Format sec as "[x1:x2,y1:y2]" into buf. */
void fp_section_format(const fp_section *sec, char *buf, size_t len);

/* Read the amplifier layout of a raw file: EXTNAME, DATASEC, DETSEC and
 * BIASSEC of every image extension (BIASSEC, when present, overrides the
 * geometry's serial overscan), and the detector size from DETSIZE. geom
 * is filled from the file's INSTRUME geometry, then adjusted. */
int fp_geometry_read(const char *path, fp_geometry *geom, char *err, size_t errlen);

/* ---- Provenance -------------------------------------------------------- */

/* What the caller knows about the job; written into every output's primary
 * header as OCPSJOB, OCPSPIPE, OCPSTASK, OCPSVER, OCPSNIN and OCPSIN1..n
 * (input file base names). Any field may be NULL / 0. */
typedef struct fp_provenance {
    const char *job_id;
    const char *pipeline;
    const char *task_label;
    const char *software_version; /* NULL: this library's version */
    const char *const *inputs;
    size_t n_inputs;
} fp_provenance;

/* This library's version string (the project version). */
const char *fp_version(void);

/* ---- Output options ---------------------------------------------------- */

/* How outputs are stored: plain, or tile-compressed (RICE for integer
 * images, quantised RICE for float images with quantize_level, q=4 by
 * default when 0). */
typedef struct fp_output_opts {
    bool compress;
    float quantize_level;
} fp_output_opts;

/* ---- Synthetic raws (ocps-fakeraws) ------------------------------------ */

typedef enum fp_frame_type { FP_FRAME_BIAS, FP_FRAME_DARK, FP_FRAME_FLAT, FP_FRAME_SCIENCE } fp_frame_type;

/* What the generator writes. Sensor properties (gains, bias levels, read
 * noise, bias structure, dark rate, illumination) are fixed, so frames of
 * different runs calibrate each other; the seed drives noise and stars. */
typedef struct fp_fake_config {
    char instrument[16]; /* "LATISS" */
    fp_frame_type type;
    int count;       /* number of files */
    bool small;      /* scaled-down geometry */
    uint64_t seed;   /* same seed: byte-identical pixel data */
    char day_obs[9]; /* "YYYYMMDD" */
    int start_seq;   /* SEQNUM of the first file */
    double exptime;  /* < 0: the type's default (0, 60, 5, 30 s) */
    bool compress;   /* RICE tile compression (true in the tool) */
    int threads;     /* files written in parallel (0, 1: serial) */
} fp_fake_config;

/* The truth the generator injects (also in every file's headers: primary
 * FAK* keys, per-amplifier FAKGAIN, FAKBIAS, FAKRN, FAKBOFF). */
typedef struct fp_fake_truth {
    double gain[FP_MAX_AMPS];        /* e-/ADU */
    double bias_level[FP_MAX_AMPS];  /* ADU, whole amplifier */
    double bias_offset[FP_MAX_AMPS]; /* ADU, imaging region above the overscan */
    double read_noise[FP_MAX_AMPS];  /* e- */
    double dark_rate;                /* e-/s/pixel */
    double flat_level;               /* e- at illumination 1 in flats */
    double sky_level;                /* e- at illumination 1 in science frames */
    double star_fwhm;                /* pixels */
    int n_stars;                     /* per science frame */
    double saturation;               /* raw ADU clip level */
} fp_fake_truth;

/* Defaults: LATISS, bias, 1 file, full size, seed 1, day_obs 20240624,
 * sequence 1, default exposure time, compressed, serial. */
void fp_fake_config_default(fp_fake_config *cfg);

/* The generator's truth for geom. */
void fp_fake_truth_get(const fp_geometry *geom, fp_fake_truth *truth);

/* The smooth illumination pattern at assembled detector pixel (x, y)
 * (0-based): 1 at the centre, falling to 0.8 in the corners. */
double fp_fake_illumination(const fp_geometry *geom, double x, double y);

/* Write cfg->count raws into out_dir (created if missing) named after
 * OBSID (AT_O_<day_obs>_<seq:06>.fits), each with a sidecar
 * <name>.truth.json (truth values and, for science, the star list). The
 * paths written are returned in *paths (malloc'd array of malloc'd
 * strings; free with fp_free_paths) when paths is not NULL. */
int fp_fake_write(const fp_fake_config *cfg, const char *out_dir, char ***paths, char *err, size_t errlen);

/* Free an array returned by fp_fake_write. */
void fp_free_paths(char **paths, int n);

/* ---- ISR ---------------------------------------------------------------- */

typedef enum fp_overscan_method {
    FP_OVERSCAN_MEDIAN, /* per row: median of the serial overscan */
    FP_OVERSCAN_MEAN,   /* per row: mean of the serial overscan */
    FP_OVERSCAN_NONE    /* no overscan subtraction */
} fp_overscan_method;

/* Mask plane bits (the "MASK" extension of ISR outputs, int16). */
#define FP_MASK_BAD 0x1    /* flat <= flat_min, or not finite */
#define FP_MASK_SAT 0x2    /* raw value >= saturation */
#define FP_MASK_NODATA 0x4 /* no amplifier covers the pixel */

typedef struct fp_isr_config {
    fp_overscan_method overscan;
    const char *bias_path; /* master bias to subtract, or NULL */
    const char *dark_path; /* master dark (ADU/s) to scale by EXPTIME, or NULL */
    const char *flat_path; /* master flat (median 1) to divide by, or NULL */
    double saturation;     /* raw ADU; <= 0: no saturation check */
    double flat_min;       /* flat values below are BAD (and not divided) */
    fp_output_opts output;
} fp_isr_config;

/* Defaults: median overscan, no calibrations, saturation 100000 ADU,
 * flat_min 0.1, uncompressed. */
void fp_isr_config_default(fp_isr_config *cfg);

/* ISR of one raw into out_path: overscan by row, trim, assemble by DETSEC,
 * bias, dark x EXPTIME, flat, mask. *metrics (may be NULL) receives
 * {"task":"isr","output":..,"median":..,"n_saturated":..,"n_bad":..,
 * "width":..,"height":..,"seconds":..}. */
int fp_isr_run(const char *raw_path, const char *out_path, const fp_isr_config *cfg,
               const fp_provenance *prov, json_t **metrics, char *err, size_t errlen);

/* ---- Calibration combine ----------------------------------------------- */

typedef enum fp_combine_method {
    FP_COMBINE_MEDIAN,
    FP_COMBINE_SIGCLIP_MEAN /* mean after iterative clipping about the median */
} fp_combine_method;

typedef enum fp_calib_type { FP_CALIB_BIAS, FP_CALIB_DARK, FP_CALIB_FLAT } fp_calib_type;

typedef struct fp_combine_config {
    fp_calib_type type;
    fp_combine_method method;
    double clip_sigma; /* sigma-clipped mean: rejection threshold (3) */
    int clip_iter;     /* and iterations (3) */
    fp_overscan_method overscan;
    const char *bias_path; /* subtracted from every input (dark, flat), or NULL */
    const char *dark_path; /* scaled by EXPTIME and subtracted (flat), or NULL */
    int stripe_rows;       /* rows read per input at a time (64); memory is
                              n_inputs x stripe_rows x raw_nx floats per thread */
    int threads;           /* amplifiers combined in parallel (1) */
    fp_output_opts output;
} fp_combine_config;

/* Defaults: bias, median, 3 sigma x 3 iterations, median overscan, 64-row
 * stripes, 1 thread, uncompressed. */
void fp_combine_config_default(fp_combine_config *cfg, fp_calib_type type);

/* Combine raws into a master calibration at out_path: each input is
 * overscan-corrected by row, trimmed and (dark, flat) bias/dark-corrected;
 * darks are divided by EXPTIME (ADU/s); flats are scaled by their own
 * median before combining and the result normalised to median 1. The
 * inputs are read in row stripes (never whole). *metrics receives
 * {"task":"combine","type":..,"output":..,"n_inputs":..,
 * "mean_amp_median":..,"amps":[{name, median, sigma}],"seconds":..}; per-amplifier statistics are also in the
 * IMAGE header (AMPMEDnn, AMPSIGnn). */
int fp_combine_run(const char *const *inputs, size_t n_inputs, const char *out_path,
                   const fp_combine_config *cfg, const fp_provenance *prov, json_t **metrics, char *err,
                   size_t errlen);

/* ---- Quick-look ---------------------------------------------------------- */

typedef enum fp_stretch { FP_STRETCH_ASINH, FP_STRETCH_PERCENTILE } fp_stretch;

typedef struct fp_quicklook_config {
    double threshold_sigma; /* detection threshold above the median (5) */
    int min_pixels;         /* smallest source, pixels (5) */
    double saturation;      /* used when the input has no MASK (<= 0: none) */
    int bin;                /* preview binning factor (4) */
    fp_stretch stretch;
    double low_pct, high_pct; /* stretch limits, percent (0.5, 99.5) */
} fp_quicklook_config;

/* Defaults as noted above; asinh stretch. */
void fp_quicklook_config_default(fp_quicklook_config *cfg);

/* Quick-look of a processed image (the IMAGE extension of an ISR output,
 * or the first image HDU): *metrics receives {"task":"quicklook",
 * "median","robust_sigma","saturated_fraction","n_sources","fwhm_pixels",
 * "width","height"}; png_path (may be NULL) receives a binned 8-bit
 * grayscale preview. */
int fp_quicklook_run(const char *in_path, const char *png_path, const fp_quicklook_config *cfg,
                     json_t **metrics, char *err, size_t errlen);

/* ---- Statistics on float arrays ---------------------------------------- */

/* Median of v[0..n) (reorders v). NAN if n == 0. */
float fp_median_inplace(float *v, size_t n);

/* 1.4826 x the median absolute deviation about median (reorders v). */
float fp_robust_sigma_inplace(float *v, size_t n, float median);

/* ---- Parallel data units ------------------------------------------------ */

/* One data unit: 0 on success, or -1 with a message. */
typedef int (*fp_unit_fn)(void *ctx, size_t index, char *err, size_t errlen);

/* Run fn(ctx, i) for i in [0, n_units) on up to `threads` threads
 * (<= 1: in the calling thread). All units run even when one fails; the
 * lowest failing index's message is returned in err. */
int fp_parallel_run(size_t n_units, int threads, fp_unit_fn fn, void *ctx, char *err, size_t errlen);

/* ---- Image files --------------------------------------------------------- */

/* Read the first float image of path (the "IMAGE" extension when present)
 * into *pixels (malloc'd, caller frees), with its size. */
int fp_image_read(const char *path, float **pixels, int *nx, int *ny, char *err, size_t errlen);

#endif
