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
