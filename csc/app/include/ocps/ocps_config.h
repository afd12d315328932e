/*
 * ocps_config.h - the OCPS CSC's configuration: its JSON schema (title
 * "OCPS v4", ocps_config_schema.yaml) and the settings read from a
 * validated configuration for one SAL index.
 */
#ifndef OCPS_CONFIG_H
#define OCPS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "ocps/sal_interface.h"

/* The schema text (YAML), embedded at build time. */
extern const char ocps_config_schema[];

/* The config package: $DM_CONFIG_OCPS_DIR/OCPS/v4. */
#define OCPS_CONFIG_PKG "dm_config_ocps"

typedef enum ocps_executor_kind {
    OCPS_EXECUTOR_LOCAL,
    OCPS_EXECUTOR_SLURM,
    OCPS_EXECUTOR_UWS
} ocps_executor_kind;

/* At most this many words in slurm.extra_options. */
#define OCPS_SLURM_MAX_EXTRA 16

/* Settings of executor slurm (empty / 0: Slurm's default). */
typedef struct ocps_slurm_config {
    char partition[128];
    char account[128];
    char qos[128];
    int cpus_per_job;
    char memory[32];
    double time_limit; /* seconds, 0 from max_job_duration */
    char extra_options[OCPS_SLURM_MAX_EXTRA][256];
    size_t n_extra;
    char work_root[1024]; /* empty: work_root */
    char slurm_conf[1024];
} ocps_slurm_config;

/* Settings for one SAL index. Strings are copies owned by the struct. */
typedef struct ocps_config {
    bool has_instance; /* an instances[] block applies (not for RA, 101) */
    char instance[64];
    char url[1024];
    double poll_interval;
    char butler[1024];
    char input_collection[1024];
    char output_glob[1024];
    ocps_executor_kind executor;
    bool uws_reference; /* uws_api: uws-api-server (else ocps-engine) */
    ocps_slurm_config slurm;
    int max_concurrent_jobs;
    int max_waiting_jobs; /* 0: no limit */
    double max_job_duration;
    double inprogress_interval;
    double final_ack_min_delay; /* s from an execute's first CMD_INPROGRESS to its final ack, at least */
    char work_root[1024];
    char job_store[1024];
    int result_max_bytes;
    int max_results;
    double job_log_max_mb; /* a job's ocps.log keeps this much of its output; 0 all */
    char pipetask[1024];
    bool prereq_must_succeed;
    bool failed_job_ack_failed; /* failed_job_ack: failed (else complete, the Python OCPS's) */
    double abort_grace;
    double simulation_duration;
    double retention_max_age_days; /* retention of ended, published jobs; 0 off */
    long long retention_max_jobs;
    double retention_max_gb;
    double retention_interval;  /* seconds */
    json_t *command;            /* argv template (array of strings), owned reference */
    json_t *allowed_options;    /* options allowed in execute.config (array), owned reference */
    json_t *retrieve_command;   /* argv template of the retrieval step after pipetask (array of
                                 * strings, empty: none), owned reference */
    bool embedded_pipetask;     /* pipetask is the embedded ocps-pipetask (set by the app) */
    char embedded_butler[1024]; /* ocps-butler (set by the app): with embedded_pipetask, what a
                                 * retrieve_command program "butler" runs; "": no retrieval */
} ocps_config;

/* Read the settings for SAL index `index` from a configuration validated
 * (with defaults) against ocps_config_schema. Fails with a message when no
 * or several instances[] blocks name the index, or a block's instance name
 * does not match it. Index 101 (RA) needs no block. */
int ocps_config_from_json(int32_t index, json_t *config, ocps_config *out, char *err, size_t errlen);

/* The configuration's name of an executor ("local", "slurm", "uws"). */
const char *ocps_executor_name(ocps_executor_kind kind);

/* Release the references a configuration holds (and zero it). */
void ocps_config_clear(ocps_config *c);

#endif
