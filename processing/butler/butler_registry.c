/*
 * butler_registry.c - the repository's SQLite registry: create/open, the
 * schema, dataset types, RUN and CHAINED collections, registration and
 * removal of runs (butler.h).
 */
#include "butler__internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writers from several processes wait for each other this long (ms). */
#define BL_BUSY_TIMEOUT_MS 60000
/* Deepest nesting of chains followed. */
#define BL_MAX_CHAIN_DEPTH 32

static const char bl_pragmas[] = "PRAGMA foreign_keys=ON;"
                                 "PRAGMA synchronous=NORMAL;";

static const char bl_schema[] =
    "CREATE TABLE IF NOT EXISTS butler_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO butler_meta VALUES ('schema_version', '2');"
    "CREATE TABLE IF NOT EXISTS dataset_type (name TEXT PRIMARY KEY);"
    "INSERT OR IGNORE INTO dataset_type VALUES ('raw'), ('bias'), ('dark'), ('flat'), ('postISRCCD');"
    "CREATE TABLE IF NOT EXISTS collection ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " type TEXT NOT NULL CHECK (type IN ('RUN', 'CHAINED')));"
    "CREATE TABLE IF NOT EXISTS collection_chain ("
    " parent INTEGER NOT NULL REFERENCES collection(id) ON DELETE CASCADE,"
    " position INTEGER NOT NULL,"
    " child INTEGER NOT NULL REFERENCES collection(id) ON DELETE CASCADE,"
    " PRIMARY KEY (parent, position));"
    "CREATE INDEX IF NOT EXISTS collection_chain_child ON collection_chain(child);"
    "CREATE TABLE IF NOT EXISTS dataset ("
    " id INTEGER PRIMARY KEY,"
    " dataset_type TEXT NOT NULL REFERENCES dataset_type(name),"
    " run INTEGER NOT NULL REFERENCES collection(id),"
    " data_id TEXT NOT NULL,"
    " instrument TEXT NOT NULL,"
    " exposure INTEGER,"
    " detector INTEGER,"
    " day_obs INTEGER,"
    " seq_num INTEGER,"
    " physical_filter TEXT,"
    " observation_type TEXT,"
    " exposure_time REAL,"
    " obs_id TEXT,"
    " date_obs TEXT,"
    " path TEXT NOT NULL UNIQUE,"
    " checksum TEXT NOT NULL,"
    " UNIQUE (dataset_type, run, data_id));"
    "CREATE INDEX IF NOT EXISTS dataset_run ON dataset(run);"
    "CREATE INDEX IF NOT EXISTS dataset_exposure ON dataset(instrument, exposure, detector);"
    /* the owners of claimed runs (butler_claim_run) */
    BL_RUN_CLAIM_SCHEMA;

int bl_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int bl_exec(butler_repo *repo, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(repo->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        bl_fail(err, errlen, "%s: registry: %s", repo->root, msg ? msg : sqlite3_errmsg(repo->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int bl_begin(butler_repo *repo, char *err, size_t errlen)
{
    return bl_exec(repo, "BEGIN IMMEDIATE", err, errlen);
}

int bl_commit(butler_repo *repo, char *err, size_t errlen)
{
    if (bl_exec(repo, "COMMIT", err, errlen) != 0) {
        bl_rollback(repo);
        return -1;
    }
    return 0;
}

void bl_rollback(butler_repo *repo)
{
    if (!sqlite3_get_autocommit(repo->db)) {
        sqlite3_exec(repo->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

int bl_prepare(butler_repo *repo, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(repo->db, sql, -1, st, NULL) != SQLITE_OK) {
        return bl_fail(err, errlen, "%s: registry: %s", repo->root, sqlite3_errmsg(repo->db));
    }
    return 0;
}

int bl_step_error(butler_repo *repo, sqlite3_stmt *st, char *err, size_t errlen)
{
    bl_fail(err, errlen, "%s: registry: %s", repo->root, sqlite3_errmsg(repo->db));
    sqlite3_finalize(st);
    return -1;
}

/* ---- open and create --------------------------------------------------- */

static int bl_mkdirs(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        return bl_fail(err, errlen, "%s: path too long", path);
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0775) != 0 && errno != EEXIST) {
                return bl_fail(err, errlen, "%s: %s", buf, strerror(errno));
            }
            *p = '/';
        }
    }
    if (mkdir(buf, 0775) != 0 && errno != EEXIST) {
        return bl_fail(err, errlen, "%s: %s", buf, strerror(errno));
    }
    return 0;
}

static int bl_connect(const char *path, bool create, butler_repo **out, char *err, size_t errlen)
{
    butler_repo *repo = calloc(1, sizeof *repo);
    if (repo == NULL) {
        return bl_fail(err, errlen, "out of memory");
    }
    if (realpath(path, repo->root) == NULL) {
        bl_fail(err, errlen, "%s: %s", path, strerror(errno));
        free(repo);
        return -1;
    }
    char file[PATH_MAX + 32];
    snprintf(file, sizeof file, "%s/%s", repo->root, BUTLER_REGISTRY_FILE);
    struct stat st;
    if (!create && stat(file, &st) != 0) {
        bl_fail(err, errlen, "%s: not a repository (no %s)", path, BUTLER_REGISTRY_FILE);
        free(repo);
        return -1;
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(file, &repo->db, flags, NULL) != SQLITE_OK) {
        bl_fail(err, errlen, "%s: %s", file, repo->db ? sqlite3_errmsg(repo->db) : "cannot open");
        butler_close(repo);
        return -1;
    }
    sqlite3_busy_timeout(repo->db, BL_BUSY_TIMEOUT_MS);
    if (bl_exec(repo, bl_pragmas, err, errlen) != 0 ||
        (create && bl_exec(repo, "PRAGMA journal_mode=WAL", err, errlen) != 0)) {
        butler_close(repo);
        return -1;
    }
    *out = repo;
    return 0;
}

int butler_create(const char *path, butler_repo **out, char *err, size_t errlen)
{
    *out = NULL;
    if (bl_mkdirs(path, err, errlen) != 0) {
        return -1;
    }
    char file[PATH_MAX + 32];
    snprintf(file, sizeof file, "%s/%s", path, BUTLER_REGISTRY_FILE);
    struct stat st;
    if (stat(file, &st) == 0) {
        return bl_fail(err, errlen, "%s: already a repository", path);
    }
    butler_repo *repo;
    if (bl_connect(path, true, &repo, err, errlen) != 0) {
        return -1;
    }
    if (bl_begin(repo, err, errlen) != 0 || bl_exec(repo, bl_schema, err, errlen) != 0 ||
        bl_commit(repo, err, errlen) != 0) {
        bl_rollback(repo);
        butler_close(repo);
        return -1;
    }
    *out = repo;
    return 0;
}

int butler_open(const char *path, butler_repo **out, char *err, size_t errlen)
{
    *out = NULL;
    butler_repo *repo;
    if (bl_connect(path, false, &repo, err, errlen) != 0) {
        return -1;
    }
    sqlite3_stmt *st;
    if (bl_prepare(repo, "SELECT value FROM butler_meta WHERE key = 'schema_version'", &st, err, errlen) !=
        0) {
        bl_fail(err, errlen, "%s: not a repository (its registry has no schema)", path);
        butler_close(repo);
        return -1;
    }
    sqlite3_finalize(st);
    *out = repo;
    return 0;
}

void butler_close(butler_repo *repo)
{
    if (repo != NULL) {
        sqlite3_close(repo->db);
        free(repo);
    }
}

const char *butler_root(const butler_repo *repo)
{
    return repo->root;
}

/* ---- dataset types and collections ------------------------------------ */

static bool bl_valid_type_name(const char *name)
{
    if (name[0] == '\0' || strlen(name) >= sizeof(((butler_dataset *)0)->dataset_type)) {
        return false;
    }
    for (const char *c = name; *c; c++) {
        if (!(*c == '_' || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9'))) {
            return false;
        }
    }
    return true;
}

int butler_register_dataset_type(butler_repo *repo, const char *name, char *err, size_t errlen)
{
    if (!bl_valid_type_name(name)) {
        return bl_fail(err, errlen, "invalid dataset type name '%s' (letters, digits and _)", name);
    }
    sqlite3_stmt *st;
    if (bl_prepare(repo, "INSERT OR IGNORE INTO dataset_type VALUES (?)", &st, err, errlen) != 0) {
        return -1;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return bl_step_error(repo, st, err, errlen);
    }
    sqlite3_finalize(st);
    return 0;
}

int butler_list_dataset_types(butler_repo *repo, char ***names, size_t *n, char *err, size_t errlen)
{
    *names = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (bl_prepare(repo, "SELECT name FROM dataset_type ORDER BY name", &st, err, errlen) != 0) {
        return -1;
    }
    char **v = NULL;
    size_t count = 0;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            char **bigger = realloc(v, cap * sizeof *v);
            if (bigger == NULL) {
                break;
            }
            v = bigger;
        }
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if ((v[count] = strdup(name != NULL ? name : "")) == NULL) {
            break;
        }
        count++;
    }
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; i < count; i++) {
            free(v[i]);
        }
        free(v);
        if (rc == SQLITE_ROW) {
            sqlite3_finalize(st);
            return bl_fail(err, errlen, "out of memory");
        }
        return bl_step_error(repo, st, err, errlen);
    }
    sqlite3_finalize(st);
    *names = v;
    *n = count;
    return 0;
}

int bl_find_collection(butler_repo *repo, const char *name, long long *id, char type[8], char *err,
                       size_t errlen)
{
    sqlite3_stmt *st;
    if (bl_prepare(repo, "SELECT id, type FROM collection WHERE name = ?", &st, err, errlen) != 0) {
        return -1;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        snprintf(type, 8, "%s", (const char *)sqlite3_column_text(st, 1));
        sqlite3_finalize(st);
        return 1;
    }
    if (rc != SQLITE_DONE) {
        return bl_step_error(repo, st, err, errlen);
    }
    sqlite3_finalize(st);
    return 0;
}

int bl_insert_collection(butler_repo *repo, const char *name, const char *type, long long *id, char *err,
                         size_t errlen)
{
    if (name[0] == '\0' || strlen(name) >= sizeof(((butler_collection *)0)->name) || strchr(name, ',')) {
        return bl_fail(err, errlen, "invalid collection name '%s'", name);
    }
    sqlite3_stmt *st;
    if (bl_prepare(repo, "INSERT INTO collection (name, type) VALUES (?, ?)", &st, err, errlen) != 0) {
        return -1;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return bl_step_error(repo, st, err, errlen);
    }
    sqlite3_finalize(st);
    *id = sqlite3_last_insert_rowid(repo->db);
    return 0;
}

/* The id of RUN collection name, created if missing. */
static int bl_ensure_run(butler_repo *repo, const char *name, long long *id, char *err, size_t errlen)
{
    char type[8];
    int found = bl_find_collection(repo, name, id, type, err, errlen);
    if (found < 0) {
        return -1;
    }
    if (found == 0) {
        return bl_insert_collection(repo, name, "RUN", id, err, errlen);
    }
    if (strcmp(type, "RUN") != 0) {
        return bl_fail(err, errlen, "collection '%s' is %s, not a RUN", name, type);
    }
    return 0;
}

/* ---- registration ----------------------------------------------------- */

void bl_data_id(const butler_dataset *ds, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "instrument=%s", ds->instrument);
    if (ds->exposure != BUTLER_NONE && n >= 0 && (size_t)n < outlen) {
        n += snprintf(out + n, outlen - (size_t)n, ",exposure=%lld", ds->exposure);
    }
    if (ds->detector != BUTLER_NONE && n >= 0 && (size_t)n < outlen) {
        n += snprintf(out + n, outlen - (size_t)n, ",detector=%lld", ds->detector);
    }
    /* a calibration with a filter (a flat) has physical_filter among its
     * dimensions; a raw's filter follows from its exposure */
    if (ds->exposure == BUTLER_NONE && ds->physical_filter[0] != '\0' && n >= 0 && (size_t)n < outlen) {
        snprintf(out + n, outlen - (size_t)n, ",physical_filter=%s", ds->physical_filter);
    }
}

int bl_path_registered(butler_repo *repo, const char *path, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (bl_prepare(repo, "SELECT 1 FROM dataset WHERE path = ?", &st, err, errlen) != 0) {
        return -1;
    }
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return bl_step_error(repo, st, err, errlen);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW;
}

static void bl_bind_int_or_null(sqlite3_stmt *st, int i, long long v)
{
    if (v == BUTLER_NONE) {
        sqlite3_bind_null(st, i);
    } else {
        sqlite3_bind_int64(st, i, v);
    }
}

static void bl_bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v[0] == '\0') {
        sqlite3_bind_null(st, i);
    } else {
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    }
}

static bool bl_valid_relative_path(const char *path)
{
    if (path[0] == '\0' || path[0] == '/' || strstr(path, "//")) {
        return false;
    }
    for (const char *p = path; p; p = strchr(p, '/')) {
        p += (*p == '/');
        if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0')) {
            return false;
        }
    }
    return true;
}

static const char bl_insert_dataset[] =
    "INSERT INTO dataset (dataset_type, run, data_id, instrument, exposure, detector, day_obs, seq_num,"
    " physical_filter, observation_type, exposure_time, obs_id, date_obs, path, checksum)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

static int bl_insert_one(butler_repo *repo, sqlite3_stmt *st, long long run_id, const char *run,
                         const butler_dataset *ds, char *err, size_t errlen)
{
    char data_id[256];
    bl_data_id(ds, data_id, sizeof data_id);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, ds->dataset_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, run_id);
    sqlite3_bind_text(st, 3, data_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, ds->instrument, -1, SQLITE_STATIC);
    bl_bind_int_or_null(st, 5, ds->exposure);
    bl_bind_int_or_null(st, 6, ds->detector);
    bl_bind_int_or_null(st, 7, ds->day_obs);
    bl_bind_int_or_null(st, 8, ds->seq_num);
    bl_bind_text_or_null(st, 9, ds->physical_filter);
    bl_bind_text_or_null(st, 10, ds->observation_type);
    if (ds->exposure_time >= 0) {
        sqlite3_bind_double(st, 11, ds->exposure_time);
    }
    bl_bind_text_or_null(st, 12, ds->obs_id);
    bl_bind_text_or_null(st, 13, ds->date_obs);
    sqlite3_bind_text(st, 14, ds->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 15, ds->checksum, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE) {
        return 0;
    }
    if (sqlite3_extended_errcode(repo->db) == SQLITE_CONSTRAINT_UNIQUE) {
        if (strstr(sqlite3_errmsg(repo->db), "dataset.path")) {
            return bl_fail(err, errlen, "%s: already registered in the repository", ds->path);
        }
        return bl_fail(err, errlen, "%s: dataset %s {%s} already in run '%s'", ds->path, ds->dataset_type,
                       data_id, run);
    }
    if (sqlite3_extended_errcode(repo->db) == SQLITE_CONSTRAINT_FOREIGNKEY) {
        return bl_fail(err, errlen, "%s: unknown dataset type '%s' (register it first)", ds->path,
                       ds->dataset_type);
    }
    return bl_fail(err, errlen, "%s: registry: %s", ds->path, sqlite3_errmsg(repo->db));
}

int bl_register_in_txn(butler_repo *repo, const char *run, const butler_dataset *ds, size_t n, char *err,
                       size_t errlen)
{
    long long run_id;
    if (bl_ensure_run(repo, run, &run_id, err, errlen) != 0) {
        return -1;
    }
    sqlite3_stmt *st;
    if (bl_prepare(repo, bl_insert_dataset, &st, err, errlen) != 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ds[i].instrument[0] == '\0' || !bl_valid_relative_path(ds[i].path)) {
            sqlite3_finalize(st);
            return bl_fail(err, errlen, "%s: a dataset needs an instrument and a path inside the repository",
                           ds[i].path);
        }
        if (bl_insert_one(repo, st, run_id, run, &ds[i], err, errlen) != 0) {
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int butler_register(butler_repo *repo, const char *run, const butler_dataset *ds, size_t n, char *err,
                    size_t errlen)
{
    return butler_register_chained(repo, run, ds, n, NULL, NULL, 0, err, errlen);
}

/* ---- chains ------------------------------------------------------------- */

/* 1 if target is reachable from collection id through chains. */
static int bl_reaches(butler_repo *repo, long long id, long long target, int depth, char *err, size_t errlen)
{
    if (id == target) {
        return 1;
    }
    if (depth > BL_MAX_CHAIN_DEPTH) {
        return bl_fail(err, errlen, "collection chains nested deeper than %d", BL_MAX_CHAIN_DEPTH);
    }
    sqlite3_stmt *st;
    if (bl_prepare(repo, "SELECT child FROM collection_chain WHERE parent = ? ORDER BY position", &st, err,
                   errlen) != 0) {
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    int result = 0;
    while (result == 0 && sqlite3_step(st) == SQLITE_ROW) {
        result = bl_reaches(repo, sqlite3_column_int64(st, 0), target, depth + 1, err, errlen);
    }
    sqlite3_finalize(st);
    return result;
}

static int bl_define_chain_in_txn(butler_repo *repo, const char *name, const char *const *children,
                                  size_t nchildren, char *err, size_t errlen)
{
    long long parent;
    char type[8];
    int found = bl_find_collection(repo, name, &parent, type, err, errlen);
    if (found < 0 || (found == 0 && bl_insert_collection(repo, name, "CHAINED", &parent, err, errlen) != 0)) {
        return -1;
    }
    if (found == 1 && strcmp(type, "CHAINED") != 0) {
        return bl_fail(err, errlen, "collection '%s' is a %s, not a CHAINED collection", name, type);
    }
    sqlite3_stmt *st;
    if (bl_prepare(repo, "DELETE FROM collection_chain WHERE parent = ?", &st, err, errlen) != 0) {
        return -1;
    }
    sqlite3_bind_int64(st, 1, parent);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return bl_step_error(repo, st, err, errlen);
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < nchildren; i++) {
        long long child;
        char ctype[8];
        found = bl_find_collection(repo, children[i], &child, ctype, err, errlen);
        if (found <= 0) {
            return found < 0 ? -1
                             : bl_fail(err, errlen, "chain '%s': unknown collection '%s'", name, children[i]);
        }
        int cycle = bl_reaches(repo, child, parent, 0, err, errlen);
        if (cycle != 0) {
            return cycle < 0 ? -1
                             : bl_fail(err, errlen, "chain '%s': '%s' would make a cycle", name, children[i]);
        }
        if (bl_prepare(repo, "INSERT INTO collection_chain VALUES (?, ?, ?)", &st, err, errlen) != 0) {
            return -1;
        }
        sqlite3_bind_int64(st, 1, parent);
        sqlite3_bind_int64(st, 2, (long long)i);
        sqlite3_bind_int64(st, 3, child);
        if (sqlite3_step(st) != SQLITE_DONE) {
            return bl_step_error(repo, st, err, errlen);
        }
        sqlite3_finalize(st);
    }
    return 0;
}

int butler_define_chain(butler_repo *repo, const char *name, const char *const *children, size_t nchildren,
                        char *err, size_t errlen)
{
    if (bl_begin(repo, err, errlen) != 0) {
        return -1;
    }
    if (bl_define_chain_in_txn(repo, name, children, nchildren, err, errlen) != 0) {
        bl_rollback(repo);
        return -1;
    }
    return bl_commit(repo, err, errlen);
}

static char *bl_chain_children(butler_repo *repo, long long id, char *err, size_t errlen);

/* Define chain as children, or, if it exists as a CHAINED collection
 * already, keep its children: children[0] goes in front, the other
 * children missing from it are appended (as pipetask puts a new run in
 * front of an existing output chain). */
static int bl_extend_chain_in_txn(butler_repo *repo, const char *chain, const char *const *children,
                                  size_t nchildren, char *err, size_t errlen)
{
    long long id;
    char type[8];
    int found = bl_find_collection(repo, chain, &id, type, err, errlen);
    if (found <= 0 || strcmp(type, "CHAINED") != 0 || nchildren == 0) {
        return found < 0 ? -1 : bl_define_chain_in_txn(repo, chain, children, nchildren, err, errlen);
    }
    char *old = bl_chain_children(repo, id, err, errlen);
    size_t n_old = 1;
    for (const char *c = old ? old : ""; *c; c++) {
        n_old += *c == ',';
    }
    const char **merged = old ? malloc((n_old + nchildren) * sizeof *merged) : NULL;
    if (merged == NULL) {
        free(old);
        return old ? bl_fail(err, errlen, "out of memory") : -1;
    }
    size_t n = 0;
    merged[n++] = children[0];
    for (char *save = NULL, *name = strtok_r(old, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (strcmp(name, children[0]) != 0) {
            merged[n++] = name;
        }
    }
    for (size_t i = 1; i < nchildren; i++) {
        bool have = false;
        for (size_t k = 0; k < n && !have; k++) {
            have = strcmp(merged[k], children[i]) == 0;
        }
        if (!have) {
            merged[n++] = children[i];
        }
    }
    int rc = bl_define_chain_in_txn(repo, chain, merged, n, err, errlen);
    free(merged);
    free(old);
    return rc;
}

int butler_register_chained(butler_repo *repo, const char *run, const butler_dataset *ds, size_t n,
                            const char *chain, const char *const *children, size_t nchildren, char *err,
                            size_t errlen)
{
    butler_dataset *copy = malloc((n ? n : 1) * sizeof *copy);
    if (copy == NULL) {
        return bl_fail(err, errlen, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        copy[i] = ds[i];
        char file[PATH_MAX + 1100];
        snprintf(file, sizeof file, "%s/%s", repo->root, ds[i].path);
        if (butler_checksum_file(file, copy[i].checksum, sizeof copy[i].checksum, err, errlen) != 0) {
            free(copy);
            return -1;
        }
    }
    int rc = -1;
    if (bl_begin(repo, err, errlen) == 0) {
        rc = bl_register_in_txn(repo, run, copy, n, err, errlen);
        if (rc == 0 && chain != NULL) {
            rc = bl_extend_chain_in_txn(repo, chain, children, nchildren, err, errlen);
        }
        if (rc == 0) {
            rc = bl_commit(repo, err, errlen);
        } else {
            bl_rollback(repo);
        }
    }
    free(copy);
    return rc;
}

/* ---- listing ------------------------------------------------------------ */

/* The children of chain id, comma-separated (malloc'd). */
static char *bl_chain_children(butler_repo *repo, long long id, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (bl_prepare(repo,
                   "SELECT c.name FROM collection_chain cc JOIN collection c ON c.id = cc.child"
                   " WHERE cc.parent = ? ORDER BY cc.position",
                   &st, err, errlen) != 0) {
        return NULL;
    }
    sqlite3_bind_int64(st, 1, id);
    char *out = calloc(1, 1);
    size_t len = 0;
    while (out != NULL && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        size_t n = strlen(name);
        char *grown = realloc(out, len + n + 2);
        if (grown == NULL) {
            free(out);
            out = NULL;
            break;
        }
        out = grown;
        len += (size_t)sprintf(out + len, "%s%s", len ? "," : "", name);
    }
    sqlite3_finalize(st);
    if (out == NULL) {
        bl_fail(err, errlen, "out of memory");
    }
    return out;
}

int butler_list_collections(butler_repo *repo, butler_collection **out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (bl_prepare(repo, "SELECT id, name, type FROM collection ORDER BY name", &st, err, errlen) != 0) {
        return -1;
    }
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            butler_collection *grown = realloc(*out, cap * sizeof *grown);
            if (grown == NULL) {
                sqlite3_finalize(st);
                butler_collections_free(*out, *n);
                *out = NULL;
                *n = 0;
                return bl_fail(err, errlen, "out of memory");
            }
            *out = grown;
        }
        butler_collection *c = &(*out)[*n];
        snprintf(c->name, sizeof c->name, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(c->type, sizeof c->type, "%s", (const char *)sqlite3_column_text(st, 2));
        c->children = strcmp(c->type, "CHAINED") == 0
                          ? bl_chain_children(repo, sqlite3_column_int64(st, 0), err, errlen)
                          : calloc(1, 1);
        if (c->children == NULL) {
            sqlite3_finalize(st);
            butler_collections_free(*out, *n);
            *out = NULL;
            *n = 0;
            return -1;
        }
        (*n)++;
    }
    if (rc != SQLITE_DONE) {
        butler_collections_free(*out, *n);
        *out = NULL;
        *n = 0;
        return bl_step_error(repo, st, err, errlen);
    }
    sqlite3_finalize(st);
    return 0;
}

void butler_collections_free(butler_collection *c, size_t n)
{
    for (size_t i = 0; c != NULL && i < n; i++) {
        free(c[i].children);
    }
    free(c);
}

/* ---- removal -------------------------------------------------------------- */

typedef struct bl_paths {
    char **items;
    size_t n, cap;
} bl_paths;

static int bl_paths_add(bl_paths *p, const char *path)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        char **grown = realloc(p->items, cap * sizeof *grown);
        if (grown == NULL) {
            return -1;
        }
        p->items = grown;
        p->cap = cap;
    }
    p->items[p->n] = strdup(path);
    return p->items[p->n++] == NULL ? -1 : 0;
}

static void bl_paths_free(bl_paths *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i]);
    }
    free(p->items);
}

static int bl_remove_run_in_txn(butler_repo *repo, const char *name, bl_paths *paths, char *err,
                                size_t errlen)
{
    long long id;
    char type[8];
    int found = bl_find_collection(repo, name, &id, type, err, errlen);
    if (found <= 0) {
        return found < 0 ? -1 : bl_fail(err, errlen, "unknown collection '%s'", name);
    }
    if (strcmp(type, "RUN") != 0) {
        return bl_fail(err, errlen, "collection '%s' is %s, not a RUN", name, type);
    }
    sqlite3_stmt *st;
    if (bl_prepare(repo, "SELECT path FROM dataset WHERE run = ?", &st, err, errlen) != 0) {
        return -1;
    }
    sqlite3_bind_int64(st, 1, id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (bl_paths_add(paths, (const char *)sqlite3_column_text(st, 0)) != 0) {
            sqlite3_finalize(st);
            return bl_fail(err, errlen, "out of memory");
        }
    }
    sqlite3_finalize(st);
    static const char *const deletes[] = {"DELETE FROM dataset WHERE run = ?",
                                          "DELETE FROM collection WHERE id = ?"};
    for (size_t i = 0; i < 2; i++) {
        if (bl_prepare(repo, deletes[i], &st, err, errlen) != 0) {
            return -1;
        }
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_DONE) {
            return bl_step_error(repo, st, err, errlen);
        }
        sqlite3_finalize(st);
    }
    return 0;
}

/* Remove the file and the directories it leaves empty, up to the root. */
static void bl_unlink_file(const butler_repo *repo, const char *relative)
{
    char path[PATH_MAX + 1100];
    snprintf(path, sizeof path, "%s/%s", repo->root, relative);
    if (unlink(path) != 0) {
        return;
    }
    size_t rootlen = strlen(repo->root);
    for (char *slash = strrchr(path, '/'); slash && (size_t)(slash - path) > rootlen;
         slash = strrchr(path, '/')) {
        *slash = '\0';
        if (rmdir(path) != 0) {
            break;
        }
    }
}

int butler_remove_runs(butler_repo *repo, const char *const *runs, size_t nruns, char *err, size_t errlen)
{
    bl_paths paths = {0};
    if (bl_begin(repo, err, errlen) != 0) {
        return -1;
    }
    for (size_t i = 0; i < nruns; i++) {
        if (bl_remove_run_in_txn(repo, runs[i], &paths, err, errlen) != 0) {
            bl_rollback(repo);
            bl_paths_free(&paths);
            return -1;
        }
    }
    if (bl_commit(repo, err, errlen) != 0) {
        bl_paths_free(&paths);
        return -1;
    }
    for (size_t i = 0; i < paths.n; i++) {
        bl_unlink_file(repo, paths.items[i]);
    }
    bl_paths_free(&paths);
    return 0;
}
