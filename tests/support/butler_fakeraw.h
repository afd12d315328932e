/*
 * butler_fakeraw.h - tiny LATISS-like raws for the butler tests, written
 * with cfitsio: a primary header with the keys real raws carry and two
 * small int32 image extensions, the second RICE-compressed.
 */
#ifndef BUTLER_FAKERAW_H
#define BUTLER_FAKERAW_H

/* The primary-header values of a raw (NULL strings are left out). */
typedef struct bf_raw {
    const char *instrume; /* "LATISS" */
    const char *dayobs;   /* "20240101" (written as a string, as real raws do) */
    int seqnum;
    const char *imgtype; /* "BIAS", "OBJECT", ... */
    double exptime;
    const char *filter;   /* "SDSSr_65mm" */
    const char *grating;  /* "empty_1" */
    const char *date_obs; /* TAI */
    const char *obsid;
    int checksums; /* write CHECKSUM and DATASUM in every HDU */
} bf_raw;

/* A default raw: LATISS, dayobs, seqnum, imgtype, EXPTIME 0 for biases
 * else 30, SDSSr_65mm~empty_1. */
bf_raw bf_raw_default(const char *dayobs, int seqnum, const char *imgtype);

/* Write r to path (replaced if it exists); 0 on success. */
int bf_write_raw(const char *path, const bf_raw *r);

/* Cut the file at path to size bytes; 0 on success. */
int bf_truncate(const char *path, long size);

#endif
