/*
 * fp__internal.h - helpers shared by the fitsproc sources (not public).
 */
#ifndef OCPS_FP_INTERNAL_H
#define OCPS_FP_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include <fitsio.h>

#include "ocps/fitsproc.h"

/* Format a message into err (if not NULL); returns -1. */
int fp_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A cfitsio error: "<what> <path>: <cfitsio text>"; returns -1. */
int fp_fail_fits(char *err, size_t errlen, int status, const char *what, const char *path);

/* Monotonic seconds. */
double fp_now(void);

/* Data pixel (i, j) of amp (0-based within its data section) to the
 * assembled detector pixel (0-based). */
void fp_amp_to_detector(const fp_amp *amp, int i, int j, int *x, int *y);

/* Width and height of a section (absolute). */
int fp_section_nx(const fp_section *s);
int fp_section_ny(const fp_section *s);

/* Read rows [row0, row0+nrows) (0-based) of HDU `hdu` (1-based, primary =
 * 1) of f into buf (nrows x raw_nx floats). */
int fp_read_rows(fitsfile *f, int hdu, int raw_nx, int row0, int nrows, float *buf, int *status);

/* Overscan-correct raw rows in buf (nrows x raw_nx, first row is raw row
 * row0) and copy the data section into out (nrows x data_nx), for rows
 * inside the data section only; returns the number of data rows written
 * (the rows of [row0, row0+nrows) inside DATASEC, assumed contiguous from
 * DATASEC's first row). scratch holds at least raw_nx floats. */
void fp_overscan_row(const float *row, const fp_amp *amp, fp_overscan_method method, float *scratch,
                     float *out_row);

/* A comparator network on up to FP_NETWORK_MAX_WIRES wires: comparator p
 * leaves the smaller value on wire a[p] and the larger on b[p]. */
#define FP_NETWORK_MAX_WIRES 64
#define FP_NETWORK_MAX_PAIRS 1024 /* Batcher's network on 64 wires has 543 */
typedef struct fp_network {
    int n_wires, n_pairs;
    unsigned char a[FP_NETWORK_MAX_PAIRS], b[FP_NETWORK_MAX_PAIRS];
} fp_network;

/* A sorting network on n wires (Batcher's merge-exchange); -1 if n is 0
 * or more than FP_NETWORK_MAX_WIRES. */
int fp_network_sort(fp_network *net, int n);

/* The same, pruned to the comparators the median wires ((n-1)/2 and n/2)
 * depend on. */
int fp_network_median(fp_network *net, int n);

/* Apply net pixel-wise to n_wires arrays of len floats, wire k at
 * base + k * stride. */
void fp_network_apply(const fp_network *net, float *base, size_t stride, size_t len);

/* After fp_network_apply of a median (or sorting) network: the median of
 * every pixel into out[0..len) (the mean of the two middle wires for an
 * even count, as fp_median_inplace). */
void fp_network_median_of(const fp_network *net, const float *base, size_t stride, size_t len, float *out);

/* Overscan level of each of nrows raw rows (raw_nx floats each) into
 * level[0..nrows): the median (by net, a median network on the overscan
 * width, when given; else row by row) or mean of the row's serial
 * overscan, 0 for FP_OVERSCAN_NONE. scratch holds overscan width x nrows
 * floats plus nrows. Same values as fp_overscan_row. */
void fp_overscan_levels(const float *rows, int nrows, int raw_nx, const fp_amp *amp,
                        fp_overscan_method method, const fp_network *net, float *scratch, double *level);

/* The data section of one raw row less its overscan level, into out_row. */
void fp_trim_row(const float *row, const fp_amp *amp, double level, float *out_row);

/* Open a new output file (overwritten if present) with a header-only
 * primary HDU carrying provenance and, when src (may be NULL) is given,
 * its primary observation keys (INSTRUME, OBSID, DAYOBS, ...). */
int fp_output_create(const char *path, const fp_provenance *prov, fitsfile *src, fitsfile **out, char *err,
                     size_t errlen);

/* Close an output written with the given cfitsio status; on any error
 * the file is removed (no partial output) and -1 returned. */
int fp_output_finish(fitsfile *out, const char *path, int status, char *err, size_t errlen);

/* Append an image extension named extname (FLOAT_IMG float data, or
 * SHORT_IMG for mask data) honouring opts. */
int fp_output_add_float(fitsfile *out, const char *extname, const float *data, int nx, int ny,
                        const fp_output_opts *opts, int *status);
int fp_output_add_short(fitsfile *out, const char *extname, const short *data, int nx, int ny,
                        const fp_output_opts *opts, int *status);

/* Open a processed image (IMAGE extension, or the first image HDU) and
 * read it whole. */
int fp_read_image_hdu(fitsfile *f, const char *extname, float **pixels, int *nx, int *ny, int *status);

/* The k-th smallest of v[0..n) (reorders v). */
float fp_select_k(float *v, size_t n, size_t k);

/* Per-pixel combine of v[0..n) (reorders v). */
float fp_combine_values(float *v, int n, fp_combine_method method, double clip_sigma, int clip_iter);

/* Provenance keys into the current HDU. */
void fp_write_provenance(fitsfile *f, const fp_provenance *prov, int *status);

/* The value of a string key of the primary HDU (empty if absent). */
void fp_read_primary_string(fitsfile *f, const char *key, char *buf, size_t len);

/* EXPTIME of the primary HDU (0 if absent). */
double fp_read_exptime(fitsfile *f);

#endif
