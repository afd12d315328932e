/*
 * uws_job.h - an engine job as the uws-api-server job object (jobId,
 * runId, ownerId, phase, times as "YYYY-MM-DD HH:MM:SS+00:00",
 * executionDuration, destruction, parameters, results, errorSummary,
 * jobInfo), the engine's job spec of a parsed submission, and the result
 * files of a job (regular, non-hidden files under its output directory).
 */
#ifndef UWS_JOB_H
#define UWS_JOB_H

#include <stddef.h>

#include <jansson.h>

#include "ocps/engine.h"
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

/* The job's result files (absolute paths), sorted, at most
 * UWS_MAX_RESULTS: regular files only, no hidden file or directory, no
 * symbolic link followed. New array (empty if the directory is missing). */
json_t *uws_job_results(const char *workdir);

/* The job object of `job` (new reference, or NULL). `results` is
 * uws_job_results' array (borrowed). */
json_t *uws_job_object(const engine_job *job, json_t *results);

#endif
