/*
 * butler__internal.h - shared inside processing/butler only: the
 * repository handle and the registry helpers the modules share.
 */
#ifndef BUTLER__INTERNAL_H
#define BUTLER__INTERNAL_H

#include <limits.h>
#include <stddef.h>

#include <sqlite3.h>

#include "ocps/butler.h"

struct butler_repo {
    char root[PATH_MAX]; /* absolute */
    sqlite3 *db;
};

/* printf into err[0..errlen) (errlen may be 0); always returns -1. */
int bl_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* BEGIN IMMEDIATE (waits for other writers up to the busy timeout). */
int bl_begin(butler_repo *repo, char *err, size_t errlen);
/* COMMIT; on failure the transaction is rolled back. */
int bl_commit(butler_repo *repo, char *err, size_t errlen);
/* ROLLBACK (ignores errors: used on failure paths). */
void bl_rollback(butler_repo *repo);

/* Register ds[0..n) (checksums already in ds[i].checksum) into run, made
 * a RUN collection if missing, inside the caller's transaction. */
int bl_register_in_txn(butler_repo *repo, const char *run, const butler_dataset *ds, size_t n, char *err,
                       size_t errlen);

/* The data ID of ds as the registry keys it:
 * "instrument=X[,exposure=N][,detector=N][,physical_filter=F]", the
 * filter for calibrations (no exposure) that have one, as flats. */
void bl_data_id(const butler_dataset *ds, char *out, size_t outlen);

/* 1 if path (relative) is registered, 0 if not, -1 on error. */
int bl_path_registered(butler_repo *repo, const char *path, char *err, size_t errlen);

#endif
