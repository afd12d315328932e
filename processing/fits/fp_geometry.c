/*
 * fp_geometry.c - the LATISS amplifier geometry and FITS sections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp__internal.h"

/* HDU order of real LATISS raws: Segment10..17, then Segment07..00. */
static void fp_amp_name(int index, char *buf, size_t len)
{
    unsigned digit = (unsigned)(index < 8 ? index : 15 - index) % 10u;
    snprintf(buf, len, "Segment%c%u", index < 8 ? '1' : '0', digit);
}

/* DATASEC, DETSEC and the serial overscan of amplifier `index`. */
static void fp_amp_layout(fp_geometry *g, int index)
{
    fp_amp *a = &g->amps[index];
    fp_amp_name(index, a->name, sizeof a->name);
    a->datasec = (fp_section){g->prescan + 1, g->prescan + g->data_nx, 1, g->data_ny};
    int k = index < 8 ? index : 15 - index;
    a->detsec.x1 = g->data_nx * (k + 1);
    a->detsec.x2 = g->data_nx * k + 1;
    if (index < 8) {
        a->detsec.y1 = 1;
        a->detsec.y2 = g->data_ny;
    } else {
        a->detsec.y1 = 2 * g->data_ny;
        a->detsec.y2 = g->data_ny + 1;
    }
    a->biassec = (fp_section){g->prescan + g->data_nx + 1, g->raw_nx, 1, g->data_ny};
    a->gain = 1.0;
    a->read_noise = 0.0;
}

int fp_geometry_init(fp_geometry *geom, const char *instrument, bool small, char *err, size_t errlen)
{
    if (strcmp(instrument, "LATISS") != 0 && strcmp(instrument, "LSST_ATISS") != 0)
        return fp_fail(err, errlen, "unknown instrument '%s' (known: LATISS)", instrument);
    memset(geom, 0, sizeof *geom);
    snprintf(geom->instrument, sizeof geom->instrument, "LATISS");
    geom->n_amps = 16;
    if (small) {
        geom->raw_nx = 72;
        geom->raw_ny = 256;
        geom->prescan = 1;
        geom->data_nx = 63;
        geom->data_ny = 250;
    } else {
        geom->raw_nx = 576;
        geom->raw_ny = 2048;
        geom->prescan = 3;
        geom->data_nx = 509;
        geom->data_ny = 2000;
    }
    geom->serial_overscan = geom->raw_nx - geom->prescan - geom->data_nx;
    geom->parallel_overscan = geom->raw_ny - geom->data_ny;
    geom->det_nx = 8 * geom->data_nx;
    geom->det_ny = 2 * geom->data_ny;
    for (int i = 0; i < geom->n_amps; i++)
        fp_amp_layout(geom, i);
    return 0;
}

int fp_section_parse(const char *text, fp_section *sec)
{
    int n = 0;
    if (!text || sscanf(text, " [%d:%d,%d:%d]%n", &sec->x1, &sec->x2, &sec->y1, &sec->y2, &n) != 4 || n == 0)
        return -1;
    if (sec->x1 < 1 || sec->x2 < 1 || sec->y1 < 1 || sec->y2 < 1)
        return -1;
    return 0;
}

void fp_section_format(const fp_section *sec, char *buf, size_t len)
{
    snprintf(buf, len, "[%d:%d,%d:%d]", sec->x1, sec->x2, sec->y1, sec->y2);
}

int fp_section_nx(const fp_section *s)
{
    return abs(s->x2 - s->x1) + 1;
}

int fp_section_ny(const fp_section *s)
{
    return abs(s->y2 - s->y1) + 1;
}

void fp_amp_to_detector(const fp_amp *amp, int i, int j, int *x, int *y)
{
    const fp_section *d = &amp->detsec;
    *x = d->x1 <= d->x2 ? d->x1 - 1 + i : d->x1 - 1 - i;
    *y = d->y1 <= d->y2 ? d->y1 - 1 + j : d->y1 - 1 - j;
}

/* A section-valued key of the current HDU; 1 if present and parsed, 0 if
 * absent, -1 if malformed. */
static int fp_read_section_key(fitsfile *f, const char *key, fp_section *sec)
{
    char value[FLEN_VALUE];
    int status = 0;
    if (fits_read_key(f, TSTRING, key, value, NULL, &status) != 0)
        return 0;
    return fp_section_parse(value, sec) == 0 ? 1 : -1;
}

/* Read one amplifier HDU's keys into amp, checking them against geom. */
static int fp_read_amp(fitsfile *f, const char *path, fp_geometry *geom, int index, char *err, size_t errlen)
{
    fp_amp *a = &geom->amps[index];
    int status = 0;
    long naxes[2] = {0, 0};
    int naxis = 0;
    char extname[FLEN_VALUE] = "";
    if (fits_movabs_hdu(f, index + 2, NULL, &status) || fits_get_img_dim(f, &naxis, &status) ||
        fits_get_img_size(f, 2, naxes, &status))
        return fp_fail_fits(err, errlen, status, "reading amplifier HDU of", path);
    if (naxis != 2 || naxes[0] != geom->raw_nx || naxes[1] != geom->raw_ny)
        return fp_fail(err, errlen, "%s: HDU %d is %ldx%ld, expected %dx%d", path, index + 2, naxes[0],
                       naxes[1], geom->raw_nx, geom->raw_ny);
    if (fits_read_key(f, TSTRING, "EXTNAME", extname, NULL, &status) == 0) {
        if (strlen(extname) >= sizeof a->name)
            return fp_fail(err, errlen, "%s: HDU %d: EXTNAME '%s' is longer than %zu characters", path,
                           index + 2, extname, sizeof a->name - 1);
        memcpy(a->name, extname, strlen(extname) + 1);
    }
    status = 0;
    if (fp_read_section_key(f, "DATASEC", &a->datasec) < 0 ||
        fp_read_section_key(f, "DETSEC", &a->detsec) < 0)
        return fp_fail(err, errlen, "%s: HDU %d has a malformed DATASEC or DETSEC", path, index + 2);
    int has_bias = fp_read_section_key(f, "BIASSEC", &a->biassec);
    if (has_bias < 0)
        return fp_fail(err, errlen, "%s: HDU %d has a malformed BIASSEC", path, index + 2);
    const fp_section *d = &a->datasec, *t = &a->detsec;
    if (d->x1 > d->x2 || d->y1 > d->y2 || d->x2 > geom->raw_nx || d->y2 > geom->raw_ny ||
        fp_section_nx(d) != fp_section_nx(t) || fp_section_ny(d) != fp_section_ny(t))
        return fp_fail(err, errlen, "%s: HDU %d: DATASEC and DETSEC disagree", path, index + 2);
    if (a->biassec.x2 > geom->raw_nx || a->biassec.x1 > a->biassec.x2)
        return fp_fail(err, errlen, "%s: HDU %d: bad overscan section", path, index + 2);
    return 0;
}

int fp_geometry_read(const char *path, fp_geometry *geom, char *err, size_t errlen)
{
    fitsfile *f = NULL;
    int status = 0, nhdu = 0;
    if (fits_open_diskfile(&f, path, READONLY, &status))
        return fp_fail_fits(err, errlen, status, "opening", path);
    char instrument[FLEN_VALUE] = "";
    fp_read_primary_string(f, "INSTRUME", instrument, sizeof instrument);
    long naxes[2] = {0, 0};
    int rc = -1;
    if (fits_get_num_hdus(f, &nhdu, &status) || nhdu < 2 || fits_movabs_hdu(f, 2, NULL, &status) ||
        fits_get_img_size(f, 2, naxes, &status)) {
        fp_fail(err, errlen, "%s: not a raw with amplifier extensions", path);
        goto out;
    }
    if (fp_geometry_init(geom, instrument, naxes[0] != 576, err, errlen) != 0)
        goto out;
    if (nhdu - 1 != geom->n_amps) {
        fp_fail(err, errlen, "%s: %d amplifier HDUs, expected %d", path, nhdu - 1, geom->n_amps);
        goto out;
    }
    for (int i = 0; i < geom->n_amps; i++)
        if (fp_read_amp(f, path, geom, i, err, errlen) != 0)
            goto out;
    char detsize[FLEN_VALUE] = "";
    fp_read_primary_string(f, "DETSIZE", detsize, sizeof detsize);
    fp_section ds;
    if (detsize[0] && fp_section_parse(detsize, &ds) == 0) {
        geom->det_nx = fp_section_nx(&ds);
        geom->det_ny = fp_section_ny(&ds);
    }
    for (int i = 0; i < geom->n_amps; i++) {
        const fp_section *t = &geom->amps[i].detsec;
        int xmax = t->x1 > t->x2 ? t->x1 : t->x2, ymax = t->y1 > t->y2 ? t->y1 : t->y2;
        if (xmax > geom->det_nx || ymax > geom->det_ny) {
            fp_fail(err, errlen, "%s: DETSEC of %s outside DETSIZE", path, geom->amps[i].name);
            goto out;
        }
    }
    rc = 0;
out:
    status = 0;
    fits_close_file(f, &status);
    return rc;
}
