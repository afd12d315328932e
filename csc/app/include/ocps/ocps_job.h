/*
 * ocps_job.h - from an execute command to a job, and from a finished job
 * to its published result: field validation, the job's argv (the Rubin
 * job script's pipetask command line, or a configured template) and
 * environment, and the job_result JSON (one documented shape).
 */
#ifndef OCPS_JOB_H
#define OCPS_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ocps/engine.h"
#include "ocps/ocps_config.h"

/* The longest text of an ack's result this application writes, in bytes:
 * ts_sal's ackcmd IDL (validated/<C>_ackcmd.idl) declares result as
 * string<256>, though the revCoded IDL salobj 7 registers is unbounded; a
 * peer built to the former reads these too. */
#define OCPS_ACK_TEXT_MAX 255

/* The execute fields (pointers into the command sample; absent fields of
 * an older interface are ""). */
typedef struct ocps_execute {
    const char *pipeline;
    const char *version;
    const char *config;
    const char *data_query;
    const char *prereq_jobs;
    const char *output_dataset_types;
} ocps_execute;

/* Check every field: valid UTF-8, within its length limit, no control
 * characters (but tab, newline and carriage return in config and
 * data_query); pipeline not empty; prereq_jobs a comma-separated list of
 * job ids; output_dataset_types confined (ocps_output_globs_check). The
 * message names the field. */
int ocps_execute_validate(const ocps_execute *x, char *err, size_t errlen);

/* A validated x's config and data_query with each tab, newline and
 * carriage return made a space, as the Python OCPS's YAML job template
 * folds them (a script's `config: >` block ends in a newline), and a
 * backslash before a line break left out with it (the lines joined):
 * copied into config_buf (8193 bytes) and query_buf (16385 bytes) when they
 * have any. */
void ocps_execute_flatten(ocps_execute *x, char config_buf[8193], char query_buf[16385]);

/* Check a comma-separated list of output glob patterns, which must stay
 * inside the job's directory: none may be an absolute path, and no
 * '/'-separated component may match ".." as glob matches it (so "..",
 * ".*", ".?" and "\.\." are refused; "*" and "[.]." never match ".."
 * because glob matches a leading '.' only explicitly). 0, or -1 with the
 * reason in err, prefixed by `name`. */
int ocps_output_globs_check(const char *name, const char *list, char *err, size_t errlen);

/* A job ready to submit; free with ocps_job_plan_free. */
typedef struct ocps_job_plan {
    char **argv;      /* NULL-terminated */
    char **env;       /* NULL-terminated NAME=VALUE */
    char **globs;     /* NULL-terminated */
    char **then_argv; /* NULL-terminated retrieval step (retrieve_command), or NULL: none */
    char **prereqs;
    json_t *environment; /* [{"name":..., "value":...}] for the result */
    int processes;       /* N of -j N / --processes N in execute.config, else 0 (CPUs per Slurm job) */
    char split_word[96]; /* a config word that RUN_OPTIONS cannot carry whole ('...', cut), or "" */
} ocps_job_plan;

/* Build the argv and environment of job `job_id`: config words split by
 * POSIX quoting without expansion and checked against the allowed
 * options; the argv from the configured command template. */
int ocps_job_plan_build(const ocps_config *cfg, const ocps_execute *x, const char *job_id,
                        ocps_job_plan *plan, char *err, size_t errlen);

/* A UTC time as job_result gives it ("2026-12-01T16:58:54.988Z"); JSON
 * null for t <= 0 (never happened). */
json_t *ocps_job_iso_time(double t);

/* The body of PUT /job for the reference UWS server (uws-api-server, as
 * the Python OCPS sends it): the uws_scripts command, its git url and ref,
 * and the IMAGE_TAG, PIPELINE_URL, BUTLER_REPO, RUN_OPTIONS, OUTPUT_GLOB
 * and DATA_QUERY values of the plan's environment. NULL with a message if
 * a value holds what that server's job template does not escape (", \,
 * a line break, {{ or {%), or a config word would not reach pipetask
 * whole through the script's unquoted $RUN_OPTIONS (plan->split_word). */
json_t *ocps_job_uws_reference_body(const ocps_job_plan *plan, char *err, size_t errlen);

/* Release a plan. */
void ocps_job_plan_free(ocps_job_plan *plan);

/* The path of a finished job's metrics.json (what the embedded
 * ocps-pipetask writes in the work directory) into path: true if the file
 * exists. */
bool ocps_job_metrics_path(const engine_job *job, char *path, size_t len);

/* metrics.json parsed (a new reference), or NULL if it is missing, larger
 * than 16 MiB or not a JSON object. Reads and parses the file: call it off
 * the loop (it touches nothing shared). */
json_t *ocps_job_metrics_load(const char *path);

/* The job_result `result` JSON text of a finished job (malloc'd; NULL only
 * when out of memory), with what `metrics` (ocps_job_metrics_load's, or
 * NULL: a real pipetask writes none) tells, always built: what the job lacks (its metadata,
 * argv, times) is null, text that is not UTF-8 has U+FFFD in its place.
 * At most max_bytes long (any max_bytes of 1024 or more): listed outputs
 * are halved until it fits (results_truncated), then parameters.command
 * and .environment become null, then ownerId, log and errorSummary.message
 * are cut to 128 bytes, then ownerId and log are null and the message
 * empty (truncated: true from the second step); what remains is bounded.
 * log_uri: the log's URI (a UWS server's log URL), "" for none (null), or
 * NULL for the file URI of job->log_path. */
char *ocps_job_result_json(const engine_job *job, const json_t *metrics, const char *log_uri,
                           size_t max_bytes);

/* The compact summary for the final ack (malloc'd JSON): job id, phase,
 * reason, exit code, output collection. */
char *ocps_job_summary_json(const engine_job *job);

/* o printed by json_dumps(o, flags) with "message": message added last,
 * the message cut (at a character) so that the text is at most limit bytes
 * (malloc'd; NULL on failure). With the message empty the text may still
 * exceed limit. Changes o. */
char *ocps_json_fit_message(json_t *o, const char *message, size_t limit, size_t flags);

/* The id the CSC shows for job (acks, events, results): the engine's id,
 * or what its metadata's "shown_id" says (simulation mode: "true.yaml-<id>",
 * as the Python OCPS's simulated job ids begin with the pipeline). */
const char *ocps_job_shown_id(const engine_job *job);

/* "u/ocps/<id>" into out. */
void ocps_output_collection(const char *job_id, char *out, size_t len);

#endif
