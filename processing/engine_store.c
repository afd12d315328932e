/*
 * engine_store.c - SQLite job store (see engine_store.h).
 */
#include "engine__store.h"

#include "ocps/json_text.h"
#include "ocps/sal_clock.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

/* The writer runs on the event loop. Another process holding the store's
 * write lock (an operator's sqlite3, a backup tool; this engine's own
 * readers never block it in WAL mode) is waited for up to BUSY_MS; once a
 * wait has run out, the writes of the next BUSY_QUIET_MS fail at once, so
 * that a burst of writes (8 `execute`s read in one callback) stalls the
 * loop BUSY_MS in all, not BUSY_MS each. */
#define ENGINE_STORE_BUSY_MS 250
#define ENGINE_STORE_BUSY_QUIET_MS 1000

struct engine_store {
    sqlite3 *db;
    sqlite3_stmt *insert;
    sqlite3_stmt *update;
    sqlite3_stmt *publish;
    sqlite3_stmt *unpublished;
    sqlite3_stmt *find;
    sqlite3_stmt *exists;
    sqlite3_stmt *get;
    sqlite3_stmt *begin; /* BEGIN IMMEDIATE and COMMIT, prepared once (a batch of PUTs each) */
    sqlite3_stmt *commit;
    int64_t last_seq;         /* the highest seq ever given (never reused) */
    int64_t busy_since_ms;    /* the writer's current wait began (monotonic ms) */
    int64_t busy_quiet_until; /* until then (monotonic ms) the writer does not wait */
    int lock_fd;              /* <path>.lock, flock'ed while open; -1: none */
    bool unlocked;            /* its file system refused the lock: open without it */
};

/* The table of jobs under a name (a rebuild makes it as jobs_new). seq is
 * the rowid, without AUTOINCREMENT: the store gives it (last_seq), so
 * that an insert writes no sqlite_sequence row; store_meta keeps the
 * highest seq deleted, so that none is given again after a restart. */
#define ENGINE_STORE_TABLE(name)                                                                             \
    "CREATE TABLE IF NOT EXISTS " name " ("                                                                  \
    " seq INTEGER PRIMARY KEY,"                                                                              \
    " id TEXT NOT NULL UNIQUE,"                                                                              \
    " phase TEXT NOT NULL,"                                                                                  \
    " reason TEXT NOT NULL,"                                                                                 \
    " created REAL NOT NULL,"                                                                                \
    " started REAL NOT NULL DEFAULT 0,"                                                                      \
    " ended REAL NOT NULL DEFAULT 0,"                                                                        \
    " exit_code INTEGER NOT NULL DEFAULT -1,"                                                                \
    " workdir TEXT NOT NULL,"                                                                                \
    " message TEXT NOT NULL DEFAULT '',"                                                                     \
    " spec TEXT NOT NULL,"                                                                                   \
    " meta TEXT,"                                                                                            \
    " results TEXT NOT NULL DEFAULT '[]',"                                                                   \
    " results_total INTEGER NOT NULL DEFAULT 0,"                                                             \
    " results_truncated INTEGER NOT NULL DEFAULT 0,"                                                         \
    " runner_pid INTEGER NOT NULL DEFAULT 0,"                                                                \
    " runner_start_time INTEGER NOT NULL DEFAULT 0,"                                                         \
    " result_published INTEGER NOT NULL DEFAULT 0,"                                                          \
    " disk_bytes INTEGER NOT NULL DEFAULT -1,"                                                               \
    " executor_id TEXT NOT NULL DEFAULT '',"                                                                 \
    " max_rss_kb INTEGER NOT NULL DEFAULT -1,"                                                               \
    " executor_nodes TEXT NOT NULL DEFAULT '',"                                                              \
    " abort_requested INTEGER NOT NULL DEFAULT 0);"

static const char engine_store_schema[] = "PRAGMA journal_mode=WAL;"
                                          "PRAGMA cache_size=-1024;" /* 1 MiB: RSS bounded (issue 11) */
                                          "PRAGMA synchronous=NORMAL;";
static const char engine_store_jobs_table[] = ENGINE_STORE_TABLE("jobs");
static const char engine_store_meta_table[] =
    "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)";
/* Text settings of the store's user, e.g. the executor its live jobs run on. */
static const char engine_store_settings_table[] =
    "CREATE TABLE IF NOT EXISTS store_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)";

/* Added after the first release: run on its own, "duplicate column" ignored
 * (a store made before has them only from these). */
static const char engine_store_add_disk_bytes[] =
    "ALTER TABLE jobs ADD COLUMN disk_bytes INTEGER NOT NULL DEFAULT -1";
/* The executor's job id (Slurm), added for the Slurm executor. */
static const char engine_store_add_executor_id[] =
    "ALTER TABLE jobs ADD COLUMN executor_id TEXT NOT NULL DEFAULT ''";
/* What the runner measured (max RSS) and where Slurm ran the job, added
 * with them. */
static const char engine_store_add_max_rss[] =
    "ALTER TABLE jobs ADD COLUMN max_rss_kb INTEGER NOT NULL DEFAULT -1";
static const char engine_store_add_executor_nodes[] =
    "ALTER TABLE jobs ADD COLUMN executor_nodes TEXT NOT NULL DEFAULT ''";
/* An abort asked for and not yet seen through, kept across a restart. */
static const char engine_store_add_abort_requested[] =
    "ALTER TABLE jobs ADD COLUMN abort_requested INTEGER NOT NULL DEFAULT 0";
/* The indexes besides the ids'. Every one is partial, so that a new job
 * (not published) is written to one of them only, at its end (seq grows):
 * the live jobs (loaded at start); the history by creation (its pages,
 * the count cut); the history jobs not measured yet; the history by end
 * time with the disk use (expiry, the sum). The history ones lead with
 * result_published, as the indexes of every job did, for the same plans
 * (seeks). Those indexes of stores made before go. */
static const char engine_store_indexes[] =
    "DROP INDEX IF EXISTS jobs_unpublished;"
    "DROP INDEX IF EXISTS jobs_history;"
    "CREATE INDEX IF NOT EXISTS jobs_live ON jobs(seq) WHERE result_published = 0;"
    "CREATE INDEX IF NOT EXISTS jobs_done ON jobs(result_published, seq) WHERE result_published = 1;"
    "CREATE INDEX IF NOT EXISTS jobs_unsized ON jobs(seq) WHERE result_published = 1 AND disk_bytes < 0;"
    "CREATE INDEX IF NOT EXISTS jobs_ended ON jobs(result_published, ended, disk_bytes)"
    " WHERE result_published = 1;";

#define ENGINE_STORE_COLUMNS                                                                                 \
    "seq, id, phase, reason, created, started, ended, exit_code, workdir, message, spec, meta, results, "    \
    "results_total, results_truncated, runner_pid, runner_start_time, result_published, executor_id, "       \
    "max_rss_kb, executor_nodes, abort_requested"

static const char engine_store_sql_insert[] =
    "INSERT INTO jobs (seq, id, phase, reason, created, started, ended, exit_code, workdir, message, spec, "
    "meta,"
    " results, results_total, results_truncated, runner_pid, runner_start_time)"
    " VALUES (?19, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
static const char engine_store_sql_update[] =
    "UPDATE jobs SET phase = ?2, reason = ?3, started = ?5, ended = ?6, exit_code = ?7, message = ?9,"
    " results = ?12, results_total = ?13, results_truncated = ?14, runner_pid = ?15,"
    " runner_start_time = ?16, max_rss_kb = ?17, executor_nodes = ?18, abort_requested = ?20,"
    " executor_id = COALESCE(NULLIF(?19, ''), executor_id) WHERE id = ?1";
static const char engine_store_sql_publish[] = "UPDATE jobs SET result_published = 1 WHERE id = ?1";
static const char engine_store_sql_unpublished[] =
    "SELECT " ENGINE_STORE_COLUMNS " FROM jobs WHERE result_published = 0 ORDER BY seq";
static const char engine_store_sql_find[] = "SELECT phase FROM jobs WHERE id = ?1";
/* whether the id is stored: read from the ids' index alone (covering) */
static const char engine_store_sql_exists[] = "SELECT 1 FROM jobs WHERE id = ?1";
static const char engine_store_sql_get[] = "SELECT " ENGINE_STORE_COLUMNS " FROM jobs WHERE id = ?1";

static const char *const engine_phase_names[] = {"pending", "queued",  "executing", "completed",
                                                 "error",   "aborted", "unknown"};
static const char *const engine_reason_names[] = {"none",    "success", "pipeline_failed", "timeout",
                                                  "aborted", "lost",    "infrastructure",  "prerequisite"};

const char *engine_phase_name(engine_phase phase)
{
    if ((unsigned)phase < sizeof engine_phase_names / sizeof engine_phase_names[0]) {
        return engine_phase_names[phase];
    }
    return "invalid";
}

const char *engine_reason_name(engine_reason reason)
{
    if ((unsigned)reason < sizeof engine_reason_names / sizeof engine_reason_names[0]) {
        return engine_reason_names[reason];
    }
    return "invalid";
}

static int engine_name_index(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; name != NULL && i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int engine_phase_from_name(const char *name)
{
    return engine_name_index(engine_phase_names, sizeof engine_phase_names / sizeof engine_phase_names[0],
                             name);
}

int engine_reason_from_name(const char *name)
{
    return engine_name_index(engine_reason_names, sizeof engine_reason_names / sizeof engine_reason_names[0],
                             name);
}

static int engine_store_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "job store: %s: %s", what, db != NULL ? sqlite3_errmsg(db) : "out of memory");
    return -1;
}

static int engine_store_prepare(engine_store *s, char *err, size_t errlen)
{
    struct {
        const char *sql;
        sqlite3_stmt **stmt;
    } list[] = {
        {engine_store_sql_insert, &s->insert},
        {engine_store_sql_update, &s->update},
        {engine_store_sql_publish, &s->publish},
        {engine_store_sql_unpublished, &s->unpublished},
        {engine_store_sql_find, &s->find},
        {engine_store_sql_get, &s->get},
        {engine_store_sql_exists, &s->exists},
        {"BEGIN IMMEDIATE", &s->begin},
        {"COMMIT", &s->commit},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        if (sqlite3_prepare_v3(s->db, list[i].sql, -1, SQLITE_PREPARE_PERSISTENT, list[i].stmt, NULL) !=
            SQLITE_OK) {
            return engine_store_fail(s->db, "prepare", err, errlen);
        }
    }
    return 0;
}

static int engine_store_scalar(engine_store *s, const char *sql, const int64_t *params, int nparams,
                               int64_t *out, char *err, size_t errlen);

/* A store made when seq was AUTOINCREMENT (every insert wrote its
 * sqlite_sequence row): the table rebuilt without it (SQLite cannot drop
 * it in place), rows, ids and seqs unchanged, in one transaction; the last
 * seq it gave is kept in store_meta. 0, or -1 with a message (the store is
 * as it was). */
static int engine_store_migrate(engine_store *s, const char *path, char *err, size_t errlen)
{
    int64_t old = 0;
    if (engine_store_scalar(s,
                            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'jobs'"
                            " AND sql LIKE '%AUTOINCREMENT%'",
                            NULL, 0, &old, err, errlen) != 0) {
        return -1;
    }
    if (old == 0) {
        return 0;
    }
    static const char *const steps[] = {
        "BEGIN IMMEDIATE",
        (ENGINE_STORE_TABLE("jobs_new")),
        ("INSERT INTO jobs_new (" ENGINE_STORE_COLUMNS ", disk_bytes)"
         " SELECT " ENGINE_STORE_COLUMNS ", disk_bytes FROM jobs ORDER BY seq"),
        ("INSERT INTO store_meta (key, value) SELECT 'seq_floor', seq FROM sqlite_sequence"
         " WHERE name = 'jobs' ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)"),
        "DROP TABLE jobs",
        "ALTER TABLE jobs_new RENAME TO jobs",
        "COMMIT",
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (sqlite3_exec(s->db, steps[i], NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(err, errlen, "job store %s: cannot convert it to this version's layout: %s", path,
                     sqlite3_errmsg(s->db));
            engine_store_rollback(s);
            return -1;
        }
    }
    return 0;
}

/* An empty store (no database, no lock), or NULL with a message. */
static engine_store *engine_store_new(char *err, size_t errlen)
{
    engine_store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "job store: out of memory");
        return NULL;
    }
    s->lock_fd = -1;
    return s;
}

/* The writer's busy handler (see ENGINE_STORE_BUSY_MS): 1 to try the lock
 * again after a short sleep, 0 to fail the statement (SQLITE_BUSY). */
static int engine_store_on_busy(void *arg, int count)
{
    static const int delays_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50};
    engine_store *s = arg;
    int64_t now = (int64_t)(sal_clock_monotonic() * 1e3);
    if (count == 0) {
        if (now < s->busy_quiet_until) {
            return 0;
        }
        s->busy_since_ms = now;
    }
    int64_t left = s->busy_since_ms + ENGINE_STORE_BUSY_MS - now;
    if (left <= 0) {
        s->busy_quiet_until = now + ENGINE_STORE_BUSY_QUIET_MS;
        return 0;
    }
    size_t n = sizeof delays_ms / sizeof delays_ms[0];
    int delay = delays_ms[(size_t)count < n ? (size_t)count : n - 1];
    sqlite3_sleep(delay < left ? delay : (int)left);
    return 1;
}

/* One engine per store: an exclusive lock on <path>.lock, released when
 * the process ends however it ends. Two engines on one store would both
 * run its queued jobs and give the same seq twice. 0, or -1 with a
 * message. */
static int engine_store_lock(engine_store *s, const char *path, char *err, size_t errlen)
{
    char lock[PATH_MAX + 8];
    char holder[32];
    if (snprintf(lock, sizeof lock, "%s.lock", path) >= (int)sizeof lock) {
        snprintf(err, errlen, "job store %s: path too long", path);
        return -1;
    }
    int rc = engine_lock_file(lock, &s->lock_fd, holder, sizeof holder);
    if (rc == ENOLCK || rc == EOPNOTSUPP || rc == ENOTSUP) {
        s->unlocked = true; /* a file system that refuses locks (NFS whose lock daemon is away) */
        return 0;
    }
    if (rc == EWOULDBLOCK) {
        snprintf(err, errlen, "job store %s is in use by another engine%s%s%s", path,
                 holder[0] ? " (pid " : "", holder, holder[0] ? ")" : "");
    } else if (rc != 0) {
        snprintf(err, errlen, "job store %s: %s", lock, strerror(rc));
    }
    return rc == 0 ? 0 : -1;
}

int engine_store_open(engine_store **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    engine_store *s = engine_store_new(err, errlen);
    if (s == NULL) {
        return -1;
    }
    if (engine_store_lock(s, path, err, errlen) != 0) {
        engine_store_close(s);
        return -1;
    }
    int rc =
        sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "job store %s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        engine_store_close(s);
        return -1;
    }
    /* a write that fails on the lock is ENGINE_LOG_STORE_FAILED, or a
     * refused submission */
    sqlite3_busy_handler(s->db, engine_store_on_busy, s);
    const char *const schema[] = {engine_store_schema, engine_store_jobs_table, engine_store_meta_table,
                                  engine_store_settings_table};
    for (size_t i = 0; i < sizeof schema / sizeof schema[0]; i++) {
        char *msg = NULL;
        if (sqlite3_exec(s->db, schema[i], NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "job store %s: %s", path, msg ? msg : "schema failed");
            sqlite3_free(msg);
            engine_store_close(s);
            return -1;
        }
    }
    static const struct {
        const char *sql;
        const char *what;
    } added[] = {
        {engine_store_add_disk_bytes, "add column disk_bytes"},
        {engine_store_add_executor_id, "add column executor_id"},
        {engine_store_add_max_rss, "add column max_rss_kb"},
        {engine_store_add_executor_nodes, "add column executor_nodes"},
        {engine_store_add_abort_requested, "add column abort_requested"},
    };
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++) {
        if (sqlite3_exec(s->db, added[i].sql, NULL, NULL, NULL) != SQLITE_OK &&
            strstr(sqlite3_errmsg(s->db), "duplicate column") == NULL) {
            engine_store_fail(s->db, added[i].what, err, errlen);
            engine_store_close(s);
            return -1;
        }
    }
    if (engine_store_migrate(s, path, err, errlen) != 0) {
        engine_store_close(s);
        return -1;
    }
    if (sqlite3_exec(s->db, engine_store_indexes, NULL, NULL, NULL) != SQLITE_OK) {
        engine_store_fail(s->db, "create index", err, errlen);
        engine_store_close(s);
        return -1;
    }
    if (engine_store_scalar(s,
                            "SELECT MAX(COALESCE((SELECT MAX(seq) FROM jobs), 0),"
                            " COALESCE((SELECT value FROM store_meta WHERE key = 'seq_floor'), 0))",
                            NULL, 0, &s->last_seq, err, errlen) != 0) {
        engine_store_close(s);
        return -1;
    }
    if (engine_store_prepare(s, err, errlen) != 0) {
        engine_store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void engine_store_close(engine_store *s)
{
    if (s == NULL) {
        return;
    }
    sqlite3_finalize(s->insert);
    sqlite3_finalize(s->update);
    sqlite3_finalize(s->publish);
    sqlite3_finalize(s->unpublished);
    sqlite3_finalize(s->find);
    sqlite3_finalize(s->exists);
    sqlite3_finalize(s->get);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_close(s->db);
    if (s->lock_fd >= 0) {
        close(s->lock_fd); /* after the database: the next engine finds it closed */
    }
    free(s);
}

/* Bind a JSON value as compact text (NULL -> SQL NULL). */
static int engine_store_bind_json(sqlite3_stmt *st, int idx, const json_t *v)
{
    if (v == NULL) {
        return sqlite3_bind_null(st, idx);
    }
    size_t len = 0;
    char *text = json_text(v, 0, &len);
    if (text == NULL) {
        return SQLITE_NOMEM;
    }
    return sqlite3_bind_text(st, idx, text, (int)len, free);
}

/* The parameters shared by insert and update (?1..?16). The record's
 * strings are bound without a copy (SQLITE_STATIC): both callers step the
 * statement and clear its bindings before they return. */
static int engine_store_bind(sqlite3_stmt *st, const engine_store_record *r)
{
    const engine_job *j = &r->job;
    int rc = SQLITE_OK;
    rc |= sqlite3_bind_text(st, 1, j->id, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(st, 2, engine_phase_name(j->phase), -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(st, 3, engine_reason_name(j->reason), -1, SQLITE_STATIC);
    rc |= sqlite3_bind_double(st, 4, j->created);
    rc |= sqlite3_bind_double(st, 5, j->started);
    rc |= sqlite3_bind_double(st, 6, j->ended);
    rc |= sqlite3_bind_int(st, 7, j->exit_code);
    rc |= sqlite3_bind_text(st, 8, j->workdir, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(st, 9, j->message, -1, SQLITE_STATIC);
    rc |= engine_store_bind_json(st, 10, r->spec);
    rc |= engine_store_bind_json(st, 11, j->meta);
    if (j->results != NULL && json_array_size(j->results) > 0) {
        rc |= engine_store_bind_json(st, 12, j->results);
    } else {
        rc |= sqlite3_bind_text(st, 12, "[]", -1, SQLITE_STATIC);
    }
    rc |= sqlite3_bind_int64(st, 13, (sqlite3_int64)j->results_total);
    rc |= sqlite3_bind_int(st, 14, j->results_truncated ? 1 : 0);
    rc |= sqlite3_bind_int(st, 15, r->runner_pid);
    rc |= sqlite3_bind_int64(st, 16, (sqlite3_int64)r->runner_start_time);
    return rc;
}

/* Step a write statement to completion and reset it. */
static int engine_store_exec(engine_store *s, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE) {
        ret = engine_store_fail(s->db, what, err, errlen);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int engine_store_insert(engine_store *s, engine_store_record *rec, char *err, size_t errlen)
{
    int64_t seq = s->last_seq + 1;
    if ((engine_store_bind(s->insert, rec) | sqlite3_bind_int64(s->insert, 19, seq)) != SQLITE_OK) {
        sqlite3_reset(s->insert);
        sqlite3_clear_bindings(s->insert);
        return engine_store_fail(s->db, "bind", err, errlen);
    }
    if (sqlite3_step(s->insert) != SQLITE_DONE) {
        bool exists = sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE;
        int ret = exists ? -EEXIST : engine_store_fail(s->db, "insert", err, errlen);
        if (exists) {
            snprintf(err, errlen, "job %s already exists", rec->job.id);
        }
        sqlite3_reset(s->insert);
        sqlite3_clear_bindings(s->insert);
        return ret;
    }
    sqlite3_reset(s->insert);
    sqlite3_clear_bindings(s->insert);
    s->last_seq = seq;
    rec->seq = seq;
    return 0;
}

int engine_store_begin(engine_store *s, char *err, size_t errlen)
{
    int rc = sqlite3_step(s->begin);
    int ret = rc == SQLITE_DONE ? 0 : engine_store_fail(s->db, "begin", err, errlen);
    sqlite3_reset(s->begin); /* after the message, as in engine_store_commit */
    return ret;
}

int engine_store_commit(engine_store *s, char *err, size_t errlen)
{
    int rc = sqlite3_step(s->commit);
    int ret = rc == SQLITE_DONE ? 0 : engine_store_fail(s->db, "commit", err, errlen);
    sqlite3_reset(s->commit); /* after the message: a reset reports the error again */
    return ret;
}

void engine_store_rollback(engine_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

int engine_store_update(engine_store *s, const engine_store_record *rec, char *err, size_t errlen)
{
    /* the executor's id (the UWS server's or Slurm's) goes with the phase
     * in one statement; an empty one keeps the stored id */
    const char *executor_id = rec->job.executor_id[0] != '\0' ? rec->job.executor_id : rec->job.slurm_job_id;
    if ((engine_store_bind(s->update, rec) | sqlite3_bind_int64(s->update, 17, rec->job.max_rss_kb) |
         sqlite3_bind_text(s->update, 18, rec->job.slurm_nodes, -1, SQLITE_TRANSIENT) |
         sqlite3_bind_text(s->update, 19, executor_id, -1, SQLITE_STATIC) |
         sqlite3_bind_int(s->update, 20, rec->abort_requested ? 1 : 0)) != SQLITE_OK) {
        sqlite3_reset(s->update);
        sqlite3_clear_bindings(s->update);
        return engine_store_fail(s->db, "bind", err, errlen);
    }
    return engine_store_exec(s, s->update, "update", err, errlen);
}

int engine_store_mark_published(engine_store *s, const char *id, char *err, size_t errlen)
{
    sqlite3_bind_text(s->publish, 1, id, -1, SQLITE_TRANSIENT);
    return engine_store_exec(s, s->publish, "mark published", err, errlen);
}

/* A JSON column (NULL or unparsable -> NULL). */
static json_t *engine_store_column_json(sqlite3_stmt *st, int col)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    if (text == NULL) {
        return NULL;
    }
    return json_loads(text, JSON_DECODE_ANY, NULL);
}

static void engine_store_column_str(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    snprintf(out, outlen, "%s", text != NULL ? text : "");
}

/* Fill rec from the current row of the unpublished query: 0, or -1 out
 * of memory for its paths (rec is cleared then: a job without its
 * directory must not be used, its files would resolve under /). */
static int engine_store_read_row(sqlite3_stmt *st, engine_store_record *rec)
{
    memset(rec, 0, sizeof *rec);
    engine_job *j = &rec->job;
    rec->seq = sqlite3_column_int64(st, 0);
    engine_store_column_str(st, 1, j->id, sizeof j->id);
    int phase = engine_phase_from_name((const char *)sqlite3_column_text(st, 2));
    int reason = engine_reason_from_name((const char *)sqlite3_column_text(st, 3));
    j->phase = phase < 0 ? ENGINE_UNKNOWN : (engine_phase)phase;
    j->reason = reason < 0 ? ENGINE_REASON_NONE : (engine_reason)reason;
    j->created = sqlite3_column_double(st, 4);
    j->started = sqlite3_column_double(st, 5);
    j->ended = sqlite3_column_double(st, 6);
    j->exit_code = sqlite3_column_int(st, 7);
    const char *workdir = (const char *)sqlite3_column_text(st, 8);
    if (engine_store_set_workdir(j, workdir != NULL ? workdir : "") != 0) {
        return -1; /* nothing else is held yet */
    }
    engine_store_column_str(st, 9, j->message, sizeof j->message);
    rec->spec = engine_store_column_json(st, 10);
    j->meta = engine_store_column_json(st, 11);
    j->results = engine_store_column_json(st, 12);
    if (!json_is_array(j->results)) {
        json_decref(j->results);
        j->results = json_array();
    }
    j->results_total = (size_t)sqlite3_column_int64(st, 13);
    j->results_truncated = sqlite3_column_int(st, 14) != 0;
    rec->runner_pid = sqlite3_column_int(st, 15);
    rec->runner_start_time = (uint64_t)sqlite3_column_int64(st, 16);
    j->result_published = sqlite3_column_int(st, 17) != 0;
    engine_store_column_str(st, 18, j->slurm_job_id, sizeof j->slurm_job_id);
    j->max_rss_kb = sqlite3_column_int64(st, 19);
    engine_store_column_str(st, 20, j->slurm_nodes, sizeof j->slurm_nodes);
    rec->abort_requested = sqlite3_column_int(st, 21) != 0;
    engine_store_column_str(st, 18, j->executor_id, sizeof j->executor_id);
    if (!json_is_object(rec->spec)) {
        json_decref(rec->spec);
        rec->spec = json_object();
    }
    j->argv = json_incref(json_object_get(rec->spec, "argv"));
    return 0;
}

/* Step st, each row to cb (until it returns non-zero); the caller resets
 * or finalizes st: 0, or -1 with `what` failed in err. */
static int engine_store_step_rows(engine_store *s, sqlite3_stmt *st, const char *what, engine_store_row_cb cb,
                                  void *arg, char *err, size_t errlen)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        engine_store_record rec;
        if (engine_store_read_row(st, &rec) != 0) {
            snprintf(err, errlen, "%s: out of memory", what);
            return -1;
        }
        if (cb(arg, &rec) != 0) {
            return 0;
        }
    }
    return rc == SQLITE_DONE ? 0 : engine_store_fail(s->db, what, err, errlen);
}

int engine_store_load_unpublished(engine_store *s, engine_store_row_cb cb, void *arg, char *err,
                                  size_t errlen)
{
    int ret = engine_store_step_rows(s, s->unpublished, "load", cb, arg, err, errlen);
    sqlite3_reset(s->unpublished);
    return ret;
}

/* engine_store_step_rows, then finalize st. */
static int engine_store_each_row(engine_store *s, sqlite3_stmt *st, const char *what, engine_store_row_cb cb,
                                 void *arg, char *err, size_t errlen)
{
    int ret = engine_store_step_rows(s, st, what, cb, arg, err, errlen);
    sqlite3_finalize(st);
    return ret;
}

int engine_store_load_all(engine_store *s, engine_store_row_cb cb, void *arg, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT " ENGINE_STORE_COLUMNS " FROM jobs ORDER BY seq", -1, &st, NULL) !=
        SQLITE_OK) {
        return engine_store_fail(s->db, "prepare", err, errlen);
    }
    return engine_store_each_row(s, st, "list", cb, arg, err, errlen);
}

int engine_store_page(engine_store *s, int64_t after, size_t max, engine_store_row_cb cb, void *arg,
                      char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " ENGINE_STORE_COLUMNS " FROM jobs WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        return engine_store_fail(s->db, "prepare", err, errlen);
    }
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, max < (size_t)INT64_MAX ? (sqlite3_int64)max : INT64_MAX);
    return engine_store_each_row(s, st, "list", cb, arg, err, errlen);
}

int engine_store_history_page(engine_store *s, int64_t before, size_t max, engine_store_row_cb cb, void *arg,
                              char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " ENGINE_STORE_COLUMNS " FROM jobs INDEXED BY jobs_done"
                           " WHERE result_published = 1 AND seq < ?1 ORDER BY seq DESC LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        return engine_store_fail(s->db, "prepare", err, errlen);
    }
    sqlite3_bind_int64(st, 1, before > 0 ? before : INT64_MAX);
    sqlite3_bind_int64(st, 2, max < (size_t)INT64_MAX ? (sqlite3_int64)max : INT64_MAX);
    return engine_store_each_row(s, st, "history page", cb, arg, err, errlen);
}

int engine_store_find_phase(engine_store *s, const char *id, engine_phase *phase, char *err, size_t errlen)
{
    sqlite3_stmt *st = phase != NULL ? s->find : s->exists;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        if (phase != NULL) {
            int p = engine_phase_from_name((const char *)sqlite3_column_text(st, 0));
            *phase = p < 0 ? ENGINE_UNKNOWN : (engine_phase)p;
        }
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        ret = engine_store_fail(s->db, "find", err, errlen);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int engine_store_get(engine_store *s, const char *id, engine_store_record *rec, char *err, size_t errlen)
{
    sqlite3_bind_text(s->get, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s->get);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        ret = engine_store_read_row(s->get, rec) == 0 ? 1 : -1;
        if (ret < 0) {
            snprintf(err, errlen, "get: out of memory");
        }
    } else if (rc != SQLITE_DONE) {
        ret = engine_store_fail(s->db, "get", err, errlen);
    }
    sqlite3_reset(s->get);
    sqlite3_clear_bindings(s->get);
    return ret;
}

/* ---- history (retention) ----------------------------------------------- */

/* Run `sql` with parameters ?1 (a double, if `ended`) then integers, and
 * pass each row (seq, id, workdir, ended, disk_bytes) to cb. */
typedef struct engine_store_params {
    const double *ended;
    int64_t ints[2];
    int nints;
} engine_store_params;

static int engine_store_history_query(engine_store *s, const char *sql, const engine_store_params *p,
                                      engine_store_history_cb cb, void *arg, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return engine_store_fail(s->db, "prepare", err, errlen);
    }
    int k = 1;
    if (p->ended != NULL) {
        sqlite3_bind_double(st, k++, *p->ended);
    }
    for (int i = 0; i < p->nints; i++) {
        sqlite3_bind_int64(st, k++, p->ints[i]);
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        engine_store_history h;
        memset(&h, 0, sizeof h);
        h.seq = sqlite3_column_int64(st, 0);
        engine_store_column_str(st, 1, h.id, sizeof h.id);
        engine_store_column_str(st, 2, h.workdir, sizeof h.workdir);
        h.ended = sqlite3_column_double(st, 3);
        h.disk_bytes = sqlite3_column_int64(st, 4);
        if (cb(arg, &h) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    int ret = rc == SQLITE_DONE ? 0 : engine_store_fail(s->db, "history", err, errlen);
    sqlite3_finalize(st);
    return ret;
}

#define ENGINE_STORE_HISTORY_COLUMNS "seq, id, workdir, ended, disk_bytes"

int engine_store_history_unsized(engine_store *s, engine_store_history_cb cb, void *arg, char *err,
                                 size_t errlen)
{
    engine_store_params p = {.nints = 0};
    return engine_store_history_query(s,
                                      "SELECT " ENGINE_STORE_HISTORY_COLUMNS
                                      " FROM jobs INDEXED BY jobs_unsized"
                                      " WHERE result_published = 1 AND disk_bytes < 0 ORDER BY seq",
                                      &p, cb, arg, err, errlen);
}

int engine_store_set_disk_bytes(engine_store *s, const char *const *ids, const int64_t *bytes, size_t n,
                                char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE jobs SET disk_bytes = ?2 WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        return engine_store_fail(s->db, "prepare", err, errlen);
    }
    int ret = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK
                  ? 0
                  : engine_store_fail(s->db, "begin", err, errlen);
    for (size_t i = 0; ret == 0 && i < n; i++) {
        sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, bytes[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            ret = engine_store_fail(s->db, "set disk_bytes", err, errlen);
        }
        sqlite3_reset(st);
    }
    if (ret == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        ret = engine_store_fail(s->db, "commit", err, errlen);
    }
    if (ret != 0) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_finalize(st);
    return ret;
}

bool engine_store_moved(engine_store *s)
{
    int moved = 0;
    return sqlite3_file_control(s->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved != 0;
}

bool engine_store_unlocked(const engine_store *s)
{
    return s->unlocked;
}

int engine_store_open_reader(engine_store **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    engine_store *s = engine_store_new(err, errlen);
    if (s == NULL) {
        return -1;
    }
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "job store %s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        engine_store_close(s);
        return -1;
    }
    sqlite3_busy_timeout(s->db, 2000);
    sqlite3_exec(s->db, "PRAGMA cache_size=-256", NULL, NULL, NULL);
    *out = s;
    return 0;
}

/* One integer from a query with int64 parameters; 0 if no row. */
static int engine_store_scalar(engine_store *s, const char *sql, const int64_t *params, int nparams,
                               int64_t *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return engine_store_fail(s->db, "prepare", err, errlen);
    }
    for (int i = 0; i < nparams; i++) {
        sqlite3_bind_int64(st, i + 1, params[i]);
    }
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    int ret = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : engine_store_fail(s->db, "query", err, errlen);
    sqlite3_finalize(st);
    return ret;
}

/* Size cut: walk the history oldest first until what is left fits. */
typedef struct engine_store_size_walk {
    int64_t left;
    int64_t max;
    int64_t cut;
} engine_store_size_walk;

static int engine_store_size_step(void *arg, const engine_store_history *h)
{
    engine_store_size_walk *w = arg;
    if (w->left <= w->max) {
        return 1;
    }
    w->left -= h->disk_bytes > 0 ? h->disk_bytes : 0;
    w->cut = h->seq;
    return 0;
}

int engine_store_history_cut(engine_store *s, size_t max_jobs, uint64_t max_bytes, int64_t *cut, char *err,
                             size_t errlen)
{
    *cut = 0;
    int64_t n = 0;
    if (max_jobs > 0) {
        if (engine_store_scalar(s, "SELECT COUNT(*) FROM jobs WHERE result_published = 1", NULL, 0, &n, err,
                                errlen) != 0) {
            return -1;
        }
        int64_t excess[] = {n - (int64_t)max_jobs - 1};
        if (excess[0] >= 0 &&
            engine_store_scalar(
                s, "SELECT seq FROM jobs WHERE result_published = 1 ORDER BY seq LIMIT 1 OFFSET ?1", excess,
                1, cut, err, errlen) != 0) {
            return -1;
        }
    }
    if (max_bytes > 0) {
        engine_store_size_walk w = {.max = (int64_t)max_bytes};
        if (engine_store_scalar(s,
                                "SELECT COALESCE(SUM(disk_bytes), 0) FROM jobs WHERE result_published = 1"
                                " AND disk_bytes > 0",
                                NULL, 0, &w.left, err, errlen) != 0) {
            return -1;
        }
        engine_store_params none = {.nints = 0};
        if (w.left > w.max &&
            engine_store_history_query(s,
                                       "SELECT " ENGINE_STORE_HISTORY_COLUMNS
                                       " FROM jobs WHERE result_published = 1 ORDER BY seq",
                                       &none, engine_store_size_step, &w, err, errlen) != 0) {
            return -1;
        }
        *cut = w.cut > *cut ? w.cut : *cut;
    }
    return 0;
}

int engine_store_history_expired(engine_store *s, double ended_before, int64_t cut,
                                 engine_store_history_cb cb, void *arg, char *err, size_t errlen)
{
    engine_store_params p = {.ended = &ended_before, .ints = {cut}, .nints = 1};
    return engine_store_history_query(s,
                                      "SELECT " ENGINE_STORE_HISTORY_COLUMNS
                                      " FROM jobs WHERE result_published = 1 AND ended < ?1"
                                      " UNION SELECT " ENGINE_STORE_HISTORY_COLUMNS
                                      " FROM jobs WHERE result_published = 1 AND seq <= ?2 ORDER BY seq",
                                      &p, cb, arg, err, errlen);
}

int engine_store_get_setting(engine_store *s, const char *key, char *out, size_t outlen, char *err,
                             size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM store_settings WHERE key = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        return engine_store_fail(s->db, "prepare", err, errlen);
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : engine_store_fail(s->db, "query", err, errlen);
    if (ret == 1) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        snprintf(out, outlen, "%s", v != NULL ? (const char *)v : "");
    }
    sqlite3_finalize(st);
    return ret;
}

int engine_store_set_setting(engine_store *s, const char *key, const char *value, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO store_settings (key, value) VALUES (?1, ?2)"
                           " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           -1, &st, NULL) != SQLITE_OK) {
        return engine_store_fail(s->db, "prepare", err, errlen);
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int ret = sqlite3_step(st) == SQLITE_DONE ? 0 : engine_store_fail(s->db, "write setting", err, errlen);
    sqlite3_finalize(st);
    return ret;
}

int engine_store_delete(engine_store *s, const char *const *ids, const int64_t *seqs, size_t n, char *err,
                        size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(
            s->db, "DELETE FROM jobs WHERE id = ?1 AND result_published = 1 AND (?2 IS NULL OR seq = ?2)", -1,
            &st, NULL) != SQLITE_OK) {
        return engine_store_fail(s->db, "prepare", err, errlen);
    }
    int ret = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    if (ret == 0) {
        /* no seq given so far is given again, even if the newest rows go */
        int64_t floor[] = {s->last_seq};
        int64_t none;
        ret = engine_store_scalar(s,
                                  "INSERT INTO store_meta (key, value) VALUES ('seq_floor', ?1)"
                                  " ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
                                  floor, 1, &none, err, errlen);
    }
    for (size_t i = 0; ret == 0 && i < n; i++) {
        sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_TRANSIENT);
        if (seqs != NULL) {
            sqlite3_bind_int64(st, 2, seqs[i]);
        } else {
            sqlite3_bind_null(st, 2);
        }
        ret = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
        sqlite3_reset(st);
    }
    if (ret == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        ret = -1;
    }
    if (ret != 0) {
        engine_store_fail(s->db, "delete", err, errlen);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_finalize(st);
    return ret;
}

/* The paths of a job that has none (out of memory, too long). */
static const char engine_store_no_path[] = "";

int engine_store_set_workdir(engine_job *job, const char *workdir)
{
    static const char log[] = "/ocps.log";
    size_t n = strlen(workdir);
    char *paths = n <= ENGINE_WORKDIR_MAX ? malloc(2 * n + sizeof log + 1) : NULL;
    if (paths == NULL) {
        job->workdir = engine_store_no_path;
        job->log_path = engine_store_no_path;
        return -1;
    }
    memcpy(paths, workdir, n + 1);
    memcpy(paths + n + 1, workdir, n);
    memcpy(paths + 2 * n + 1, log, sizeof log);
    job->workdir = paths;
    job->log_path = paths + n + 1;
    return 0;
}

void engine_store_record_clear(engine_store_record *rec)
{
    if (rec->job.workdir != engine_store_no_path) {
        free((char *)rec->job.workdir); /* with log_path */
    }
    rec->job.workdir = NULL;
    rec->job.log_path = NULL;
    json_decref(rec->job.meta);
    json_decref(rec->job.argv);
    json_decref(rec->job.results);
    json_decref(rec->spec);
    rec->job.meta = NULL;
    rec->job.argv = NULL;
    rec->job.results = NULL;
    rec->spec = NULL;
}

int engine_store_set_executor_id(engine_store *s, const char *id, const char *executor_id, char *err,
                                 size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE jobs SET executor_id = ?2 WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        return engine_store_fail(s->db, "prepare executor id", err, errlen);
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, executor_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return engine_store_fail(s->db, "store executor id", err, errlen);
    }
    return 0;
}
