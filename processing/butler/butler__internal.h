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

/* The run_claim table (docs/butler.md): who holds a run claimed by
 * butler_claim_run. In the schema of a new repository; added by the first
 * claim to a repository made before it (schema_version 1). */
#define BL_RUN_CLAIM_SCHEMA                                                                                  \
    "CREATE TABLE IF NOT EXISTS run_claim ("                                                                 \
    " run INTEGER PRIMARY KEY REFERENCES collection(id) ON DELETE CASCADE,"                                  \
    " host TEXT NOT NULL,"                                                                                   \
    " boot_id TEXT NOT NULL,"                                                                                \
    " pid_ns TEXT NOT NULL,"                                                                                 \
    " pid INTEGER NOT NULL,"                                                                                 \
    " start_time INTEGER NOT NULL);"

/* Run sql (several statements allowed); the registry's message on error. */
int bl_exec(butler_repo *repo, const char *sql, char *err, size_t errlen);
/* Prepare one statement; the registry's message on error. */
int bl_prepare(butler_repo *repo, const char *sql, sqlite3_stmt **st, char *err, size_t errlen);
/* Finalize st after a failed step; the registry's message; returns -1. */
int bl_step_error(butler_repo *repo, sqlite3_stmt *st, char *err, size_t errlen);

/* The id and type ("RUN"/"CHAINED") of a collection; 1 if found, 0 if
 * not, -1 on error. */
int bl_find_collection(butler_repo *repo, const char *name, long long *id, char type[8], char *err,
                       size_t errlen);
/* Insert a collection of type ("RUN"/"CHAINED") after checking its name. */
int bl_insert_collection(butler_repo *repo, const char *name, const char *type, long long *id, char *err,
                         size_t errlen);

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
