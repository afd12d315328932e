/*
 * butler_ingest.c - raw ingest: LATISS primary headers read as obs_lsst
 * translates them, files checked with cfitsio, hard-linked or copied into
 * the repository, registered in one transaction; file checksums (butler.h).
 */
#include "butler__internal.h"
#include "ocps/sal_hash.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fitsio.h>

/* ---- checksum ------------------------------------------------------------ */

int butler_checksum_file(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return bl_fail(err, errlen, "%s: %s", path, strerror(errno));
    }
    uint64_t h = SAL_FNV1A64_INIT;
    unsigned char buf[65536];
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) != 0) {
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            int e = errno;
            close(fd);
            return bl_fail(err, errlen, "%s: %s", path, strerror(e));
        }
        h = sal_fnv1a64_update(h, buf, (size_t)got);
    }
    close(fd);
    snprintf(out, outlen, "fnv1a64:%016llx", (unsigned long long)h);
    return 0;
}

/* ---- headers ------------------------------------------------------------------ */

/* A string keyword of the current HDU; 0, or -1 (missing) when required. */
static int bi_key_string(fitsfile *f, const char *file, const char *key, bool required, char *out,
                         size_t outlen, char *err, size_t errlen)
{
    char value[FLEN_VALUE] = "";
    int status = 0;
    out[0] = '\0';
    if (fits_read_key(f, TSTRING, key, value, NULL, &status) != 0) {
        if (required) {
            return bl_fail(err, errlen, "%s: the primary header has no %s", file, key);
        }
        return 0;
    }
    snprintf(out, outlen, "%s", value);
    return 0;
}

static int bi_key_number(fitsfile *f, const char *file, const char *key, double *out, char *err,
                         size_t errlen)
{
    int status = 0;
    if (fits_read_key(f, TDOUBLE, key, out, NULL, &status) != 0) {
        return bl_fail(err, errlen, "%s: the primary header has no number %s", file, key);
    }
    return 0;
}

/* observation_type from IMGTYPE as obs_lsst does: lower case, object -> science. */
static void bi_observation_type(const char *imgtype, char *out, size_t outlen)
{
    size_t i = 0;
    for (; imgtype[i] && i + 1 < outlen; i++) {
        out[i] = (char)tolower((unsigned char)imgtype[i]);
    }
    out[i] = '\0';
    if (strcmp(out, "object") == 0) {
        snprintf(out, outlen, "science");
    }
}

/* "empty_1" -> "empty"; "" -> "unknown"; other names unchanged. */
static void bi_filter_part(const char *name, char *out, size_t outlen)
{
    const char *p = name + 6;
    if (strncmp(name, "empty_", 6) == 0 && *p != '\0') {
        while (isdigit((unsigned char)*p)) {
            p++;
        }
        if (*p == '\0') {
            snprintf(out, outlen, "empty");
            return;
        }
    }
    snprintf(out, outlen, "%s", name[0] ? name : "unknown");
}

/* DAYOBS: a string of eight digits YYYYMMDD. */
static int bi_day_obs(const char *file, const char *text, long long *out, char *err, size_t errlen)
{
    size_t n = strlen(text);
    bool digits = n == 8;
    for (size_t i = 0; digits && i < n; i++) {
        digits = isdigit((unsigned char)text[i]) != 0;
    }
    long long v = digits ? strtoll(text, NULL, 10) : 0;
    long long month = v / 100 % 100;
    long long day = v % 100;
    if (!digits || month < 1 || month > 12 || day < 1 || day > 31) {
        return bl_fail(err, errlen, "%s: DAYOBS '%s' is not a date YYYYMMDD", file, text);
    }
    *out = v;
    return 0;
}

static int bi_instrument(const char *file, const char *instrume, char *out, size_t outlen, char *err,
                         size_t errlen)
{
    if (strcmp(instrume, "LATISS") == 0 || strcmp(instrume, "LSST_ATISS") == 0) {
        snprintf(out, outlen, "LATISS");
        return 0;
    }
    return bl_fail(err, errlen, "%s: instrument '%s' is not supported (LATISS only)", file, instrume);
}

static int bi_read_primary(fitsfile *f, const char *file, butler_dataset *ds, char *err, size_t errlen)
{
    char instrume[FLEN_VALUE], dayobs[FLEN_VALUE], imgtype[FLEN_VALUE], filter[FLEN_VALUE],
        grating[FLEN_VALUE];
    double seqnum, exptime;
    if (bi_key_string(f, file, "INSTRUME", true, instrume, sizeof instrume, err, errlen) != 0 ||
        bi_key_string(f, file, "DAYOBS", true, dayobs, sizeof dayobs, err, errlen) != 0 ||
        bi_key_number(f, file, "SEQNUM", &seqnum, err, errlen) != 0 ||
        bi_key_string(f, file, "IMGTYPE", true, imgtype, sizeof imgtype, err, errlen) != 0 ||
        bi_key_number(f, file, "EXPTIME", &exptime, err, errlen) != 0 ||
        bi_key_string(f, file, "FILTER", false, filter, sizeof filter, err, errlen) != 0 ||
        bi_key_string(f, file, "GRATING", false, grating, sizeof grating, err, errlen) != 0 ||
        bi_key_string(f, file, "OBSID", false, ds->obs_id, sizeof ds->obs_id, err, errlen) != 0 ||
        bi_key_string(f, file, "DATE-OBS", false, ds->date_obs, sizeof ds->date_obs, err, errlen) != 0) {
        return -1;
    }
    if (bi_instrument(file, instrume, ds->instrument, sizeof ds->instrument, err, errlen) != 0 ||
        bi_day_obs(file, dayobs, &ds->day_obs, err, errlen) != 0) {
        return -1;
    }
    if (seqnum < 1 || seqnum > 99999 || seqnum != (double)(long long)seqnum) {
        return bl_fail(err, errlen, "%s: SEQNUM %g is not an integer in 1..99999", file, seqnum);
    }
    if (!(exptime >= 0)) {
        return bl_fail(err, errlen, "%s: EXPTIME %g is negative", file, exptime);
    }
    ds->seq_num = (long long)seqnum;
    ds->exposure = ds->day_obs * 100000 + ds->seq_num;
    ds->detector = 0;
    ds->exposure_time = exptime;
    bi_observation_type(imgtype, ds->observation_type, sizeof ds->observation_type);
    char f1[60], f2[60];
    bi_filter_part(filter, f1, sizeof f1);
    bi_filter_part(grating, f2, sizeof f2);
    snprintf(ds->physical_filter, sizeof ds->physical_filter, "%s~%s", f1, f2);
    snprintf(ds->dataset_type, sizeof ds->dataset_type, "raw");
    return 0;
}

/* Every HDU must be reachable, end within the file, and match its
 * CHECKSUM/DATASUM when it has them. */
static int bi_check_hdus(fitsfile *f, const char *file, char *err, size_t errlen)
{
    struct stat st;
    if (stat(file, &st) != 0) {
        return bl_fail(err, errlen, "%s: %s", file, strerror(errno));
    }
    int status = 0;
    int nhdus = 0;
    if (fits_get_num_hdus(f, &nhdus, &status) != 0) {
        return bl_fail(err, errlen, "%s: cannot count its HDUs (cfitsio status %d)", file, status);
    }
    LONGLONG end = 0;
    for (int i = 1; i <= nhdus; i++) {
        LONGLONG head, data;
        int type;
        int dataok = 0, hduok = 0;
        if (fits_movabs_hdu(f, i, &type, &status) != 0 ||
            fits_get_hduaddrll(f, &head, &data, &end, &status) != 0) {
            return bl_fail(err, errlen, "%s: HDU %d is unreadable (cfitsio status %d)", file, i, status);
        }
        if (end > (LONGLONG)st.st_size) {
            return bl_fail(err, errlen, "%s: truncated (HDU %d ends at byte %lld, the file has %lld)", file,
                           i, (long long)end, (long long)st.st_size);
        }
        if (fits_verify_chksum(f, &dataok, &hduok, &status) != 0 || dataok < 0 || hduok < 0) {
            return bl_fail(err, errlen, "%s: HDU %d fails its checksum", file, i);
        }
    }
    if (end != (LONGLONG)st.st_size) { /* a header cut short is not counted as an HDU */
        return bl_fail(err, errlen, "%s: truncated (%lld bytes after its %d complete HDUs)", file,
                       (long long)st.st_size - (long long)end, nhdus);
    }
    return 0;
}

int butler_read_raw_header(const char *file, butler_dataset *ds, char *err, size_t errlen)
{
    memset(ds, 0, sizeof *ds);
    ds->exposure = ds->day_obs = ds->seq_num = BUTLER_NONE;
    fitsfile *f = NULL;
    int status = 0;
    if (fits_open_diskfile(&f, file, READONLY, &status) != 0) {
        char text[FLEN_STATUS];
        fits_get_errstatus(status, text);
        fits_clear_errmsg();
        return bl_fail(err, errlen, "%s: not a readable FITS file (%s)", file, text);
    }
    int rc = bi_read_primary(f, file, ds, err, errlen);
    if (rc == 0) {
        rc = bi_check_hdus(f, file, err, errlen);
    }
    status = 0;
    fits_close_file(f, &status);
    fits_clear_errmsg();
    return rc;
}

/* ---- transfer ------------------------------------------------------------------ */

static int bi_mkdirs(const char *root, const char *relative_dir, char *err, size_t errlen)
{
    char path[PATH_MAX + 1100];
    int n = snprintf(path, sizeof path, "%s/", root);
    for (const char *p = relative_dir; n > 0 && (size_t)n < sizeof path - 1; p++) {
        if (*p == '/' || *p == '\0') {
            path[n] = '\0';
            if (mkdir(path, 0775) != 0 && errno != EEXIST) {
                return bl_fail(err, errlen, "%s: %s", path, strerror(errno));
            }
            if (*p == '\0') {
                return 0;
            }
        }
        path[n++] = *p;
    }
    return bl_fail(err, errlen, "%s: path too long", relative_dir);
}

static int bi_copy(const char *src, const char *dst, char *err, size_t errlen)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return bl_fail(err, errlen, "%s: %s", src, strerror(errno));
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0664);
    if (out < 0) {
        int e = errno;
        close(in);
        return bl_fail(err, errlen, "%s: %s", dst, strerror(e));
    }
    char buf[65536];
    ssize_t got;
    int rc = 0;
    while (rc == 0 && (got = read(in, buf, sizeof buf)) != 0) {
        if (got < 0) {
            rc = errno == EINTR ? 0 : bl_fail(err, errlen, "%s: %s", src, strerror(errno));
            continue;
        }
        for (ssize_t done = 0; rc == 0 && done < got;) {
            ssize_t w = write(out, buf + done, (size_t)(got - done));
            if (w < 0 && errno != EINTR) {
                rc = bl_fail(err, errlen, "%s: %s", dst, strerror(errno));
            }
            done += w > 0 ? w : 0;
        }
    }
    if (rc == 0 && fsync(out) != 0) {
        rc = bl_fail(err, errlen, "%s: %s", dst, strerror(errno));
    }
    close(in);
    if (close(out) != 0 && rc == 0) {
        rc = bl_fail(err, errlen, "%s: %s", dst, strerror(errno));
    }
    return rc;
}

/* Hard-link src (a symbolic link: its target) to <root>/<relative> (copy
 * when the link is refused), via
 * a temporary name so that the final name appears whole. */
static int bi_transfer(const char *root, const char *src, const char *relative, char *err, size_t errlen)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", relative);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        if (bi_mkdirs(root, dir, err, errlen) != 0) {
            return -1;
        }
    }
    char dst[PATH_MAX + 1100], tmp[PATH_MAX + 1200];
    snprintf(dst, sizeof dst, "%s/%s", root, relative);
    snprintf(tmp, sizeof tmp, "%s.ingest-%ld", dst, (long)getpid());
    unlink(tmp);
    /* a symbolic link given is followed: the repository holds the raw itself */
    if (linkat(AT_FDCWD, src, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) != 0 && bi_copy(src, tmp, err, errlen) != 0) {
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, dst) != 0) {
        int e = errno;
        unlink(tmp);
        return bl_fail(err, errlen, "%s: %s", dst, strerror(e));
    }
    return 0;
}

/* ---- ingest ---------------------------------------------------------------------- */

static const char *bi_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Read and check every file; fill ds[i] with its header, repository path
 * and checksum. Two files of the batch with one data ID are refused. */
static int bi_prepare(const char *const *files, size_t n, butler_dataset *ds, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (butler_read_raw_header(files[i], &ds[i], err, errlen) != 0 ||
            butler_checksum_file(files[i], ds[i].checksum, sizeof ds[i].checksum, err, errlen) != 0) {
            return -1;
        }
        const char *name = bi_basename(files[i]);
        if (name[0] == '\0' || name[0] == '.') {
            return bl_fail(err, errlen, "%s: not a file name", files[i]);
        }
        int len = snprintf(ds[i].path, sizeof ds[i].path, "%s/raw/%lld/%lld/%s", ds[i].instrument,
                           ds[i].day_obs, ds[i].exposure, name);
        if (len < 0 || (size_t)len >= sizeof ds[i].path) {
            return bl_fail(err, errlen, "%s: file name too long", files[i]);
        }
        for (size_t j = 0; j < i; j++) {
            if (ds[j].exposure == ds[i].exposure || strcmp(ds[j].path, ds[i].path) == 0) {
                return bl_fail(err, errlen, "%s: same exposure %lld as %s in this ingest", files[i],
                               ds[i].exposure, files[j]);
            }
        }
    }
    return 0;
}

/* Undo the transfers of files[0..n): remove what was placed. */
static void bi_unplace(const butler_repo *repo, const butler_dataset *ds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char dst[PATH_MAX + 1100];
        snprintf(dst, sizeof dst, "%s/%s", repo->root, ds[i].path);
        unlink(dst);
    }
}

/* Inside the write transaction (so that no other writer races for the
 * same paths): refuse registered paths, place the files, register them. */
static int bi_place_and_register(butler_repo *repo, const char *run, const char *const *files,
                                 butler_dataset *ds, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        int registered = bl_path_registered(repo, ds[i].path, err, errlen);
        if (registered != 0) {
            return registered < 0 ? -1
                                  : bl_fail(err, errlen, "%s: already ingested as %s", files[i], ds[i].path);
        }
    }
    size_t placed = 0;
    for (; placed < n; placed++) {
        if (bi_transfer(repo->root, files[placed], ds[placed].path, err, errlen) != 0) {
            bi_unplace(repo, ds, placed);
            return -1;
        }
    }
    char why[1024];
    if (bl_register_in_txn(repo, run, ds, n, why, sizeof why) != 0) {
        bi_unplace(repo, ds, n);
        /* name the source file rather than the repository path */
        for (size_t i = 0; i < n; i++) {
            if (strncmp(why, ds[i].path, strlen(ds[i].path)) == 0) {
                return bl_fail(err, errlen, "%s%s", files[i], why + strlen(ds[i].path));
            }
        }
        return bl_fail(err, errlen, "%s", why);
    }
    return 0;
}

int butler_ingest_raws(butler_repo *repo, const char *run, const char *const *files, size_t nfiles, char *err,
                       size_t errlen)
{
    if (nfiles == 0) {
        return bl_fail(err, errlen, "no files to ingest");
    }
    butler_dataset *ds = calloc(nfiles, sizeof *ds);
    if (ds == NULL) {
        return bl_fail(err, errlen, "out of memory");
    }
    int rc = bi_prepare(files, nfiles, ds, err, errlen);
    if (rc == 0) {
        rc = bl_begin(repo, err, errlen);
        if (rc == 0) {
            rc = bi_place_and_register(repo, run ? run : BUTLER_DEFAULT_RAW_RUN, files, ds, nfiles, err,
                                       errlen);
            if (rc == 0) {
                rc = bl_commit(repo, err, errlen);
                if (rc != 0) {
                    bi_unplace(repo, ds, nfiles);
                }
            } else {
                bl_rollback(repo);
            }
        }
    }
    free(ds);
    return rc;
}
