/*
 * ocps_run.h - an execute command sent to the OCPS from a test's Remote
 * (sal_fixture.h) and every answer it got: the job id of its INPROGRESS
 * ack, each ack, the final one. Shared by the process tests and benches.
 */
#ifndef OCPS_RUN_H
#define OCPS_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sal_fixture.h"

#define OR_MAX_ACKS 64

typedef struct or_run {
    bool done;         /* the final ack has been read */
    int ack;           /* its code */
    char result[4096]; /* its result */
    char job_id[64];   /* from the first INPROGRESS ack ({"job_id": ...}) */
    int32_t seqnum;    /* the command's private_seqNum */
    fx_ack acks[OR_MAX_ACKS];
    size_t nacks; /* acks read (acks[] keeps the first OR_MAX_ACKS) */
    double sent_at;
    double done_at;
} or_run;

/* The fields of an execute; NULL ones are sent empty (and fields the
 * interface does not have are left out). */
typedef struct or_fields {
    const char *pipeline;
    const char *config;
    const char *data_query;
    const char *prereq_jobs;
    const char *output_dataset_types;
} or_fields;

/* sal_ack_cb for an or_run (arg). */
void or_on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final);

/* Reset r and send execute with `x`, waiting first (at most 10 s) until
 * the Remote can; returns once written: 0, or -1 with the reason on
 * stderr. timeout: the command's, in seconds. */
int or_execute(fx *f, or_run *r, const or_fields *x, double timeout);

/* Did r's job complete? Its final ack is CMD_COMPLETE and its summary's
 * phase "completed" (a job that ended in error also ends CMD_COMPLETE,
 * failed_job_ack's default). */
bool or_job_completed(const or_run *r);

/* fx_run_until predicates: the final ack of one run (arg), a job id or the
 * final ack of one run, the final acks of a NULL-terminated or_run *[]. */
bool or_done(fx *f, void *arg);
bool or_has_job_id(fx *f, void *arg);
bool or_all_done(fx *f, void *arg);

/* fx_run_until predicate: every run of the array arg (ended by an entry
 * whose ack is -1) has its final ack. */
bool or_runs_done(fx *f, void *arg);

/* fx_run_until predicate: the CSC's last summaryState is ENABLED and
 * execute can be sent (sal_remote_prepare'd by the caller). */
bool or_enabled_ready(fx *f, void *arg);

/* Wait up to timeout s for a summaryState ENABLED event at record index
 * from or later: 0, or -1. */
int or_wait_enabled(fx *f, size_t from, double timeout);

/* Prepare execute and abort_job on f's Remote and wait up to timeout s
 * until both can be sent: true if they can. */
bool or_commands_ready(fx *f, double timeout);

/* Run the loop until r's final ack has been read, up to timeout s: true
 * if it came. */
bool or_wait_done(fx *f, or_run *r, double timeout);

/* The string field `name` of f's i-th record ("" if it has none). */
const char *or_record_string(const fx *f, size_t i, const char *name);

/* How many job_result events read so far name job id; *first is the
 * record index of the first (-1: none). */
int or_job_results(const fx *f, const char *id, long *first);

/* Wait up to timeout s for job id's job_result, then read `settle` s
 * more (on Kafka a duplicate may come later, on another topic): the
 * record index of the only one, -1 if none came, -2 if more than one. */
long or_one_result(fx *f, const char *id, double timeout, double settle);

/* The result JSON of the job_result at record i (a new reference; NULL if
 * it is not JSON). */
json_t *or_result_json(const fx *f, long i);

/* Does one of a job_result's results[*].uri end with `tail`? */
bool or_result_lists(const json_t *res, const char *tail);

/* The arguments (one per line) the retrieval step gives `butler` for job
 * job_id of LATISS with output types "verify*Stats, bias", into buf. */
void or_retrieval_argv(char *buf, size_t len, const char *job_id);

#endif
