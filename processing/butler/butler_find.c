/*
 * butler_find.c - dataset queries: collections flattened in order, the
 * --where expression translated with bound parameters, find-first
 * (butler.h).
 */
#include "butler__internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocps/butler_query.h"

/* Deepest nesting of chains followed. */
#define BF_MAX_DEPTH 32

/* Run ids in search order, each once. */
typedef struct bf_runs {
    long long *ids;
    size_t n, cap;
} bf_runs;

static int bf_runs_add(bf_runs *r, long long id)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->ids[i] == id) {
            return 0;
        }
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        long long *grown = realloc(r->ids, cap * sizeof *grown);
        if (grown == NULL) {
            return -1;
        }
        r->ids = grown;
        r->cap = cap;
    }
    r->ids[r->n++] = id;
    return 0;
}

/* Append the runs of collection id (itself, or its chain depth first). */
static int bf_flatten(butler_repo *repo, long long id, const char *type, bf_runs *runs, int depth, char *err,
                      size_t errlen)
{
    if (strcmp(type, "RUN") == 0) {
        return bf_runs_add(runs, id) == 0 ? 0 : bl_fail(err, errlen, "out of memory");
    }
    if (depth > BF_MAX_DEPTH) {
        return bl_fail(err, errlen, "collection chains nested deeper than %d", BF_MAX_DEPTH);
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(repo->db,
                           "SELECT c.id, c.type FROM collection_chain cc JOIN collection c ON c.id = cc.child"
                           " WHERE cc.parent = ? ORDER BY cc.position",
                           -1, &st, NULL) != SQLITE_OK) {
        return bl_fail(err, errlen, "%s: registry: %s", repo->root, sqlite3_errmsg(repo->db));
    }
    sqlite3_bind_int64(st, 1, id);
    int rc = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        char child_type[8];
        snprintf(child_type, sizeof child_type, "%s", (const char *)sqlite3_column_text(st, 1));
        rc = bf_flatten(repo, sqlite3_column_int64(st, 0), child_type, runs, depth + 1, err, errlen);
    }
    sqlite3_finalize(st);
    return rc;
}

static int bf_resolve(butler_repo *repo, const char *const *collections, size_t n, bf_runs *runs, char *err,
                      size_t errlen)
{
    if (n == 0) {
        return bl_fail(err, errlen, "no collections given");
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(repo->db, "SELECT id, type FROM collection WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        return bl_fail(err, errlen, "%s: registry: %s", repo->root, sqlite3_errmsg(repo->db));
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, collections[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
            rc = bl_fail(err, errlen, "unknown collection '%s'", collections[i]);
            break;
        }
        char type[8];
        snprintf(type, sizeof type, "%s", (const char *)sqlite3_column_text(st, 1));
        rc = bf_flatten(repo, sqlite3_column_int64(st, 0), type, runs, 0, err, errlen);
    }
    sqlite3_finalize(st);
    return rc;
}

/* A growable string. */
typedef struct bf_text {
    char *s;
    size_t len, cap;
    bool failed;
} bf_text;

static void bf_append(bf_text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->failed) {
        return;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap + n + 1) * 2;
        char *grown = realloc(t->s, cap);
        if (grown == NULL) {
            t->failed = true;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n + 1);
    t->len += n;
}

static const char bf_select[] =
    " SELECT d.id, d.dataset_type, d.instrument, d.exposure, d.detector, d.day_obs, d.seq_num,"
    " d.physical_filter, d.observation_type, d.exposure_time, d.obs_id, d.date_obs, c.name, d.path, "
    "d.checksum,"
    " d.data_id"
    " FROM dataset d JOIN search s ON s.run = d.run JOIN collection c ON c.id = d.run"
    " WHERE d.dataset_type = ?";

/* The statement's SQL: the search order as a VALUES list, the type, the
 * condition; parameters bound afterwards. */
static char *bf_sql(size_t nruns, const char *condition)
{
    bf_text t = {0};
    bf_append(&t, "WITH search(run, rank) AS (VALUES ");
    for (size_t i = 0; i < nruns; i++) {
        bf_append(&t, i ? ", (?, ?)" : "(?, ?)");
    }
    bf_append(&t, ")");
    bf_append(&t, bf_select);
    if (condition[0] != '\0') {
        bf_append(&t, " AND ");
        bf_append(&t, condition);
    }
    /* grouped by data ID (bl_data_id: a calibration's filter is part of it) */
    bf_append(&t, " ORDER BY d.instrument, d.exposure, d.detector,"
                  " CASE WHEN d.exposure IS NULL THEN d.physical_filter END, s.rank, d.id");
    if (t.failed) {
        free(t.s);
        return NULL;
    }
    return t.s;
}

static void bf_bind(sqlite3_stmt *st, const bf_runs *runs, const char *dataset_type, const butler_sql *where)
{
    int i = 1;
    for (size_t r = 0; r < runs->n; r++) {
        sqlite3_bind_int64(st, i++, runs->ids[r]);
        sqlite3_bind_int64(st, i++, (long long)r);
    }
    sqlite3_bind_text(st, i++, dataset_type, -1, SQLITE_STATIC);
    for (size_t p = 0; p < where->nparams; p++, i++) {
        const butler_param *bp = &where->params[p];
        if (bp->kind == BUTLER_PARAM_INT) {
            sqlite3_bind_int64(st, i, bp->i);
        } else if (bp->kind == BUTLER_PARAM_FLOAT) {
            sqlite3_bind_double(st, i, bp->f);
        } else {
            sqlite3_bind_text(st, i, bp->text, -1, SQLITE_STATIC);
        }
    }
}

static long long bf_int(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? BUTLER_NONE : sqlite3_column_int64(st, col);
}

static void bf_text_col(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    snprintf(out, outlen, "%s", v ? (const char *)v : "");
}

static void bf_row(sqlite3_stmt *st, butler_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    ds->id = sqlite3_column_int64(st, 0);
    bf_text_col(st, 1, ds->dataset_type, sizeof ds->dataset_type);
    bf_text_col(st, 2, ds->instrument, sizeof ds->instrument);
    ds->exposure = bf_int(st, 3);
    ds->detector = bf_int(st, 4);
    ds->day_obs = bf_int(st, 5);
    ds->seq_num = bf_int(st, 6);
    bf_text_col(st, 7, ds->physical_filter, sizeof ds->physical_filter);
    bf_text_col(st, 8, ds->observation_type, sizeof ds->observation_type);
    ds->exposure_time = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1.0 : sqlite3_column_double(st, 9);
    bf_text_col(st, 10, ds->obs_id, sizeof ds->obs_id);
    bf_text_col(st, 11, ds->date_obs, sizeof ds->date_obs);
    bf_text_col(st, 12, ds->run, sizeof ds->run);
    bf_text_col(st, 13, ds->path, sizeof ds->path);
    bf_text_col(st, 14, ds->checksum, sizeof ds->checksum);
}

/* Step through the rows; with find_first keep the first of each data ID
 * (rows come grouped by data ID, in search order). The data ID is made
 * from the row's columns, not read from the stored data_id, so rows of a
 * registry written before calibrations' data IDs had a filter group the
 * same way. */
static int bf_collect(butler_repo *repo, sqlite3_stmt *st, bool find_first, butler_dataset **rows,
                      size_t *nrows, char *err, size_t errlen)
{
    size_t cap = 0;
    char last[256] = "";
    bool have_last = false;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        butler_dataset row;
        bf_row(st, &row);
        char data_id[256];
        bl_data_id(&row, data_id, sizeof data_id);
        if (find_first && have_last && strcmp(last, data_id) == 0) {
            continue;
        }
        snprintf(last, sizeof last, "%s", data_id);
        have_last = true;
        if (*nrows == cap) {
            cap = cap ? cap * 2 : 64;
            butler_dataset *grown = realloc(*rows, cap * sizeof *grown);
            if (grown == NULL) {
                return bl_fail(err, errlen, "out of memory");
            }
            *rows = grown;
        }
        (*rows)[(*nrows)++] = row;
    }
    if (rc != SQLITE_DONE) {
        return bl_fail(err, errlen, "%s: registry: %s", repo->root, sqlite3_errmsg(repo->db));
    }
    return 0;
}

static int bf_run_query(butler_repo *repo, const bf_runs *runs, const char *dataset_type,
                        const butler_sql *where, bool find_first, butler_dataset **rows, size_t *nrows,
                        char *err, size_t errlen)
{
    char *sql = bf_sql(runs->n, where->sql);
    if (sql == NULL) {
        return bl_fail(err, errlen, "out of memory");
    }
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(repo->db, sql, -1, &st, NULL);
    free(sql);
    if (rc != SQLITE_OK) {
        return bl_fail(err, errlen, "%s: registry: %s", repo->root, sqlite3_errmsg(repo->db));
    }
    bf_bind(st, runs, dataset_type, where);
    rc = bf_collect(repo, st, find_first, rows, nrows, err, errlen);
    sqlite3_finalize(st);
    return rc;
}

int butler_query_datasets(butler_repo *repo, const char *dataset_type, const char *const *collections,
                          size_t ncollections, const char *where, bool find_first, butler_dataset **rows,
                          size_t *nrows, char *err, size_t errlen)
{
    *rows = NULL;
    *nrows = 0;
    butler_query *q = NULL;
    if (butler_query_parse(where ? where : "", &q, err, errlen) != 0) {
        return -1;
    }
    butler_sql sql;
    int rc = butler_query_to_sql(q, &sql, err, errlen);
    butler_query_free(q);
    if (rc != 0) {
        return -1;
    }
    bf_runs runs = {0};
    rc = bf_resolve(repo, collections, ncollections, &runs, err, errlen);
    if (rc == 0 && runs.n > 0) {
        rc = bf_run_query(repo, &runs, dataset_type, &sql, find_first, rows, nrows, err, errlen);
    }
    free(runs.ids);
    butler_sql_free(&sql);
    if (rc != 0) {
        free(*rows);
        *rows = NULL;
        *nrows = 0;
    }
    return rc;
}
