/*
 * engine_store.h - the durable job store of the engine: one SQLite table
 * of jobs (WAL, synchronous=NORMAL), prepared statements. Calls are made
 * on the loop thread; each is one short statement.
 */
#ifndef ENGINE_STORE_H
#define ENGINE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ocps/engine.h"

/* A job as stored. job.meta, job.argv, job.results and spec are owned
 * references, job.workdir (with job.log_path) is owned memory (all
 * released with engine_store_record_clear). */
typedef struct engine_store_record {
    engine_job job;
    json_t *spec; /* {"argv", "env", "globs", "max_duration", "prereqs", "must_succeed", "simulate"} */
    int64_t seq;  /* creation order (assigned by engine_store_insert) */
    int runner_pid;
    uint64_t runner_start_time; /* /proc/<pid>/stat field 22 */
    bool abort_requested;       /* engine_job_abort asked (kept, so a restart asks again) */
} engine_store_record;

typedef struct engine_store engine_store;

/* Open (create) the store at path, locked for this engine: another engine
 * on it is refused ("is in use by another engine (pid N)"). */
int engine_store_open(engine_store **out, const char *path, char *err, size_t errlen);
void engine_store_close(engine_store *s);

/* Has the store's file been removed or replaced since it was opened (what
 * is written now is lost when the engine closes)? */
bool engine_store_moved(engine_store *s);

/* Did the store's file system refuse the lock (it was opened without)? */
bool engine_store_unlocked(const engine_store *s);

/* Insert a new job (sets rec->seq): 0, -EEXIST if its id is stored
 * already, -1 on another error (each with a message). */
int engine_store_insert(engine_store *s, engine_store_record *rec, char *err, size_t errlen);

/* A write transaction around the next inserts (BEGIN IMMEDIATE), its
 * commit, its rollback; 0 or -1 with a message. */
int engine_store_begin(engine_store *s, char *err, size_t errlen);
int engine_store_commit(engine_store *s, char *err, size_t errlen);
void engine_store_rollback(engine_store *s);

/* Write the mutable fields (phase, reason, times, exit code, message,
 * results, runner, max RSS, Slurm node list, and the executor's id when
 * rec has one) of rec->job.id. */
int engine_store_update(engine_store *s, const engine_store_record *rec, char *err, size_t errlen);

int engine_store_mark_published(engine_store *s, const char *id, char *err, size_t errlen);

/* Every job whose result was not published, in creation order. cb takes
 * ownership of the record's references; a non-zero return stops. */
typedef int (*engine_store_row_cb)(void *arg, engine_store_record *rec);
int engine_store_load_unpublished(engine_store *s, engine_store_row_cb cb, void *arg, char *err,
                                  size_t errlen);

/* Every job, in creation order (cb as for engine_store_load_unpublished). */
int engine_store_load_all(engine_store *s, engine_store_row_cb cb, void *arg, char *err, size_t errlen);

/* At most `max` jobs created after `after` (a seq; 0: from the first),
 * in creation order, each to cb: one statement, so one short read
 * transaction. 0, or -1 with a message. */
int engine_store_page(engine_store *s, int64_t after, size_t max, engine_store_row_cb cb, void *arg,
                      char *err, size_t errlen);

/* A page of the history: jobs whose result was published and whose seq is
 * below `before` (0: any), newest first, at most `max` (an index seek; cb
 * as for engine_store_load_unpublished, rec->seq set). */
int engine_store_history_page(engine_store *s, int64_t before, size_t max, engine_store_row_cb cb, void *arg,
                              char *err, size_t errlen);

/* The phase of job `id` (phase NULL: only whether it is stored, read from
 * the ids' index alone): 1 found, 0 unknown, -1 error. */
int engine_store_find_phase(engine_store *s, const char *id, engine_phase *phase, char *err, size_t errlen);

/* Job `id` into rec (owned references): 1 found, 0 unknown, -1 error. */
int engine_store_get(engine_store *s, const char *id, engine_store_record *rec, char *err, size_t errlen);

/* ---- history: ended jobs whose result was published (retention) ---- */

typedef struct engine_store_history {
    int64_t seq;
    char id[ENGINE_JOB_ID_LEN + 1];
    char workdir[1024];
    double ended;
    int64_t disk_bytes; /* disk use of its work directory, -1 not measured yet */
} engine_store_history;

/* cb's non-zero return stops. */
typedef int (*engine_store_history_cb)(void *arg, const engine_store_history *h);

/* The history jobs whose disk use is not measured, oldest first (until cb
 * stops). */
int engine_store_history_unsized(engine_store *s, engine_store_history_cb cb, void *arg, char *err,
                                 size_t errlen);
/* Record the measured disk use of these jobs (one transaction). */
int engine_store_set_disk_bytes(engine_store *s, const char *const *ids, const int64_t *bytes, size_t n,
                                char *err, size_t errlen);

/* A read-only connection to the store at `path`, for queries run away
 * from the loop (WAL: they never wait for the loop's writes, nor it for
 * them). Close with engine_store_close. */
int engine_store_open_reader(engine_store **out, const char *path, char *err, size_t errlen);

/* The creation order (seq) at and below which history jobs must go so that
 * at most max_jobs of them are left and their measured disk use is at most
 * max_bytes (each 0 = no limit); 0 if none must. */
int engine_store_history_cut(engine_store *s, size_t max_jobs, uint64_t max_bytes, int64_t *cut, char *err,
                             size_t errlen);

/* The history jobs that ended before ended_before or have seq <= cut,
 * oldest first (until cb stops). */
int engine_store_history_expired(engine_store *s, double ended_before, int64_t cut,
                                 engine_store_history_cb cb, void *arg, char *err, size_t errlen);

/* Delete the rows of these history jobs (one transaction); with seqs (or
 * NULL), only the row of each id that has that seq (not a later job that
 * took the id again). */
int engine_store_delete(engine_store *s, const char *const *ids, const int64_t *seqs, size_t n, char *err,
                        size_t errlen);

/* The text setting `key` into out: 1 found, 0 none, -1 with a message. */
int engine_store_get_setting(engine_store *s, const char *key, char *out, size_t outlen, char *err,
                             size_t errlen);

/* Set the text setting `key` (written at once, outside any batch). */
int engine_store_set_setting(engine_store *s, const char *key, const char *value, char *err, size_t errlen);

/* Record the executor's id of job `id` (the Slurm job id), durably. */
int engine_store_set_executor_id(engine_store *s, const char *id, const char *executor_id, char *err,
                                 size_t errlen);

/* Release the record's references. */
void engine_store_record_clear(engine_store_record *rec);

/* Set job's workdir and its log_path (<workdir>/ocps.log) in one
 * allocation owned by the record: 0, or -1 (too long, or out of memory;
 * both are "" then). */
int engine_store_set_workdir(engine_job *job, const char *workdir);

/* Phase and reason from their names (engine_phase_name); -1 if unknown. */
int engine_phase_from_name(const char *name);
int engine_reason_from_name(const char *name);

#endif
