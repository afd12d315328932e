/*
 * butler_fakeraw.c - tiny LATISS-like raws for the butler tests.
 */
#include "butler_fakeraw.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <fitsio.h>

bf_raw bf_raw_default(const char *dayobs, int seqnum, const char *imgtype)
{
    bf_raw r = {"LATISS", dayobs, seqnum, imgtype, 30.0, "SDSSr_65mm", "empty_1", "2024-01-01T20:00:00.000",
                NULL,     0};
    if (strcmp(imgtype, "BIAS") == 0) {
        r.exptime = 0.0;
    }
    return r;
}

static void bf_key(fitsfile *f, const char *key, const char *value, int *status)
{
    if (value != NULL) {
        fits_write_key(f, TSTRING, key, (void *)value, NULL, status);
    }
}

static void bf_write_primary(fitsfile *f, const bf_raw *r, int *status)
{
    char obsid[64];
    fits_create_img(f, BYTE_IMG, 0, NULL, status);
    bf_key(f, "INSTRUME", r->instrume, status);
    bf_key(f, "TELESCOP", "LSST AuxTelescope", status);
    if (r->obsid == NULL && r->dayobs != NULL) {
        snprintf(obsid, sizeof obsid, "AT_O_%s_%06d", r->dayobs, r->seqnum);
        bf_key(f, "OBSID", obsid, status);
    } else {
        bf_key(f, "OBSID", r->obsid, status);
    }
    bf_key(f, "DAYOBS", r->dayobs, status);
    int seq = r->seqnum;
    fits_write_key(f, TINT, "SEQNUM", &seq, NULL, status);
    bf_key(f, "IMGTYPE", r->imgtype, status);
    double exptime = r->exptime;
    fits_write_key(f, TDOUBLE, "EXPTIME", &exptime, NULL, status);
    bf_key(f, "FILTER", r->filter, status);
    bf_key(f, "GRATING", r->grating, status);
    bf_key(f, "DATE-OBS", r->date_obs, status);
    bf_key(f, "TIMESYS", "TAI", status);
}

static void bf_write_amp(fitsfile *f, int compressed, int base, int checksums, int *status)
{
    long naxes[2] = {16, 8};
    int pixels[16 * 8];
    for (int i = 0; i < 16 * 8; i++) {
        pixels[i] = base + i % 13;
    }
    if (compressed) {
        fits_set_compression_type(f, RICE_1, status);
    }
    fits_create_img(f, LONG_IMG, 2, naxes, status);
    fits_write_img(f, TINT, 1, 16 * 8, pixels, status);
    if (compressed) {
        fits_set_compression_type(f, NOCOMPRESS, status);
    }
    if (checksums) {
        fits_write_chksum(f, status);
    }
}

int bf_write_raw(const char *path, const bf_raw *r)
{
    fitsfile *f = NULL;
    int status = 0;
    unlink(path);
    if (fits_create_diskfile(&f, path, &status) != 0) {
        return -1;
    }
    bf_write_primary(f, r, &status);
    if (r->checksums) {
        fits_write_chksum(f, &status);
    }
    bf_write_amp(f, 0, 1000 + r->seqnum, r->checksums, &status);
    bf_write_amp(f, 1, 2000 + r->seqnum, r->checksums, &status);
    int close_status = 0;
    fits_close_file(f, &close_status);
    return status == 0 && close_status == 0 ? 0 : -1;
}

int bf_truncate(const char *path, long size)
{
    return truncate(path, size);
}
