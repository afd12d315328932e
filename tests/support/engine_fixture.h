/*
 * engine_fixture.h - the job engine (processing/engine.h) on a loop of a
 * test's own, in a fresh temporary directory: a work root and a store in
 * it, every job callback copied into a list of events, the engine's log
 * kept, and the waits the engine tests share. cmocka's fail_msg ends a
 * test whose wait runs out.
 */
#ifndef ENGINE_FIXTURE_H
#define ENGINE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ocps/engine.h"

#define EFX_MAX_EVENTS 256

/* One job callback, copied. */
typedef struct efx_event {
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_phase phase;
    engine_reason reason;
    int exit_code;
    double started;
    double ended;
    char message[512];
    size_t nresults;
    size_t results_total;
    bool results_truncated;
    char first_result[512]; /* the first of job->results, or "" */
    int queue_position;
    char slurm_job_id[32];
    char slurm_nodes[256];
    char *meta; /* JSON text (sorted keys) or NULL */
} efx_event;

typedef struct efx efx;

struct efx {
    char *dir;           /* the temporary directory, removed by efx_free */
    char work_root[600]; /* dir/<work_sub> */
    char store[600];     /* dir/jobs.sqlite */
    uv_loop_t loop;
    engine *e;
    engine_options opts; /* efx_init's defaults: change them before efx_open */
    efx_event events[EFX_MAX_EVENTS];
    int nevents;
    bool publish_final;   /* mark final jobs published in the callback, as the CSC does */
    bool log_to_stderr;   /* also print the engine's log */
    int warnings;         /* log messages of level >= ENGINE_LOG_WARNING */
    char log[8192];       /* the engine's log, "<level> <message>" a line (cut when full) */
    size_t max_executing; /* most EXECUTING at once, sampled by efx_spin */
    void (*on_job)(efx *fx, const engine_job *job); /* a test's own extra hook, or NULL */
};

/* A 100 ms timer on a fixture's loop that records the loop's largest
 * stall: the longest gap between its ticks. */
typedef struct efx_meter {
    uv_timer_t timer;
    uint64_t last_ns;  /* uv_hrtime of its last tick (or its start) */
    double max_gap_ms; /* the largest gap so far */
    bool started;
} efx_meter;

/* Start m on fx's loop: it ticks every 100 ms from now. */
void efx_meter_start(efx *fx, efx_meter *m);

/* Stop m, counting the gap up to now too; the largest gap in ms. */
double efx_meter_stop(efx_meter *m);

/* Close m's timer if it was started (before efx_free). */
void efx_meter_close(efx_meter *m);

/* Make the temporary directory and the loop, and set opts: work_root
 * dir/work_sub, the store, `runner`, 4 at once, abort grace 1 s, 100
 * results, poll every 0.05 s, the log kept. Fails the test on error. */
void efx_init(efx *fx, const char *work_sub, const char *runner);

/* engine_open with fx->opts (fails the test if it cannot). */
void efx_open(efx *fx);

/* Close the engine (if open) and let the loop finish closing it. */
void efx_close(efx *fx);

/* efx_close, close the loop, remove the directory, forget the events
 * (fx itself is the caller's). */
void efx_free(efx *fx);

/* Forget the events recorded so far. */
void efx_clear_events(efx *fx);

/* Run the loop once without waiting, then sleep 2 ms. */
void efx_spin(efx *fx);

/* efx_spin for `seconds`. */
void efx_run_for(efx *fx, double seconds);

/* The index of the first event of job id in `phase`, or -1. */
int efx_find(const efx *fx, const char *id, engine_phase phase);

/* The index of job id's first final event, or -1. */
int efx_final(const efx *fx, const char *id);

/* How many final events job id had. */
int efx_count_final(const efx *fx, const char *id);

/* Job id's final event, waiting up to `timeout` s (fails the test
 * after, with the engine's log). */
const efx_event *efx_wait_final(efx *fx, const char *id, double timeout);

/* Job id's first event in `phase`, waiting up to `timeout` s. */
const efx_event *efx_wait_phase(efx *fx, const char *id, engine_phase phase, double timeout);

/* A new job id into id, submitted with spec (fails the test if refused). */
void efx_submit(efx *fx, char id[ENGINE_JOB_ID_LEN + 1], engine_job_spec spec);

/* efx_submit of `sh -c script`. */
void efx_submit_sh(efx *fx, char id[ENGINE_JOB_ID_LEN + 1], const char *script);

#endif
