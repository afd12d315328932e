/*
 * fp__png.h - PNG writing for the quick-look preview (internal).
 */
#ifndef OCPS_FP_PNG_H
#define OCPS_FP_PNG_H

/* Write width x height 8-bit gray pixels (row 0 on top) to path; 0 on
 * success, -1 on failure (nothing left behind). */
int fp_png_write_gray(const char *path, const unsigned char *pix, int width, int height);

#endif
