/*
 * uws_job.h - an engine job as the uws-api-server job object (jobId,
 * runId, ownerId, phase, times as "YYYY-MM-DD HH:MM:SS+00:00",
 * executionDuration, destruction, parameters, results, errorSummary,
 * jobInfo), the engine's job spec of a parsed submission, and the result
 * files of a job (regular, non-hidden files under its output directory).
 */
#ifndef UWS_JOB_H
#define UWS_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ocps/engine.h"
#include "ocps/json_text.h"
#include "ocps/uws_request.h"

/* Result files listed at most per job. */
#define UWS_MAX_RESULTS 1000

/* The output directory relative to the job's workdir: made by the engine
 * when the job starts (engine_job_spec.dirs), not at submission. */
#define UWS_JOB_OUTPUT_SUBDIR "out"

/* The job's output directory (JOB_OUTPUT_DIR) and source directory
 * (JOB_SOURCE_DIR): <workdir>/out and <workdir>/src. */
void uws_job_output_dir(const char *workdir, char *out, size_t outlen);
void uws_job_source_dir(const char *workdir, char *out, size_t outlen);

/* The engine meta of a submission: {"uws": {"run_id", "command",
 * "environment", "shell"}} where environment is the full list the job
 * sees (ours first, then the caller's). NULL if out of memory. */
json_t *uws_job_meta(const uws_submit *s, const char *job_id, const char *workdir);

/* The argv the engine runs for a submission: argv itself, or, when a git
 * `url` is given, a fixed bash prelude that clones it into JOB_SOURCE_DIR
 * (tolerating a failed clone as the reference does) and then execs argv.
 * New reference, or NULL. */
json_t *uws_job_run_argv(const uws_submit *s);

/* What runs as the second step of a job given the extension then_argv
 * (s->then_argv not NULL): a fixed sh prelude that changes to
 * $JOB_OUTPUT_DIR (the files the step writes at "." are the job's
 * results), then execs then_argv. New reference, or NULL. */
json_t *uws_job_run_then(const uws_submit *s);

/* The job's result files (absolute paths), sorted, at most
 * UWS_MAX_RESULTS: regular files only, no hidden file or directory, no
 * symbolic link followed, no path that is not valid UTF-8 (left out, the
 * others listed). New array (empty if the directory is missing). */
json_t *uws_job_results(const char *workdir);

/* Whether the job may have files: false for one that waits to start
 * (queued, pending) or ended without having run (its directory is made
 * when it starts), so that its answers never touch the work root. */
bool uws_job_has_files(const engine_job *job);

/* uws_job_results of the job's directory, or an empty array, without
 * touching it, where uws_job_has_files is false. */
json_t *uws_job_results_of(const engine_job *job);

/* What a listing of result files depends on: the directories it read,
 * each with its device, inode and modification time (taken before it was
 * read), or the absence of the output directory. */
typedef struct uws_results_stamp uws_results_stamp;

/* uws_job_results, and in *stamp what it depends on (free with
 * uws_results_stamp_free), or NULL when the listing cannot be revalidated
 * that way: more than 16 directories, the walk stopped early, or a
 * directory modified less than 0.1 s before the walk (its time could
 * stay the same through another change). */
json_t *uws_job_results_stamped(const char *workdir, uws_results_stamp **stamp);

/* Would a new walk find the same files? One stat per directory read:
 * each must still be the same directory with the same modification time
 * (an entry added, removed or renamed changes it). */
bool uws_results_unchanged(const uws_results_stamp *stamp);

/* Free a stamp (NULL allowed). */
void uws_results_stamp_free(uws_results_stamp *stamp);

/* The job's runId: its meta's uws.run_id, or its id (borrowed). */
const char *uws_job_run_id(const engine_job *job);

/* The job object of `job` (new reference, or NULL). `results` is
 * uws_job_results' array (borrowed). */
json_t *uws_job_object(const engine_job *job, json_t *results);

/* The text of uws_job_object's object, byte for byte as json_dumps with
 * JSON_INDENT(2) writes it, without making the object (the API's answer
 * for one job). NULL where uws_job_object would fail (out of memory, a
 * message that is not UTF-8, no command). malloc'd, its length in *len. */
char *uws_job_text(const engine_job *job, json_t *results, size_t *len);

/* uws_job_text's object appended to b (indent 2) as a value nested
 * `depth` levels deep, e.g. 1 for an item of the GET /job list. false, b
 * untouched, where uws_job_text would return NULL before writing. */
bool uws_job_text_at(json_text_buf *b, const engine_job *job, json_t *results, int depth);

#endif
