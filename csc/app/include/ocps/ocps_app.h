/*
 * ocps_app.h - what makes the CSC an OCPS: the execute and abort_job
 * commands on the job engine, the job_id and job_result events, periodic
 * CMD_INPROGRESS acks while jobs live, final acks with a compact summary,
 * re-adoption of jobs after a restart, and simulation mode.
 */
#ifndef OCPS_APP_H
#define OCPS_APP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "ocps/engine.h"
#include "ocps/sal_csc.h"

typedef struct ocps_app ocps_app;

/* Create the application for SAL index `index`; runner is the path of
 * ocps-job-runner. */
int ocps_app_open(ocps_app **out, uv_loop_t *loop, const sal_component_info *comp, int32_t index,
                  int simulation_mode, const char *runner, char *err, size_t errlen);

/* The embedded ocps-pipetask's path: jobs run it instead of the
 * configured `pipetask` when that is a bare name not found in $PATH (a
 * configured path is always used as it is). Empty or NULL: never. */
void ocps_app_set_embedded_pipetask(ocps_app *a, const char *path);

/* The embedded ocps-butler's path: with the embedded ocps-pipetask, a
 * retrieve_command whose program is "butler" runs it (the repository is
 * then butler-lite). Empty or NULL: such jobs get no retrieval step. */
void ocps_app_set_embedded_butler(ocps_app *a, const char *path);

/* Register execute and abort_job with the CSC. */
int ocps_app_attach(ocps_app *a, sal_csc *csc, char *err, size_t errlen);

/* The CSC's configure hook: read the settings for our index and open the
 * job engine (re-adopting jobs of an earlier run). Index 101 (RA) instead
 * connects to Redis (ocps_ra_configure) and returns SAL_CONFIGURE_PENDING.
 * With executor slurm it first asks the Slurm controller (scontrol ping,
 * on the loop) and returns SAL_CONFIGURE_PENDING; the start then ends with sal_csc_configure_done:
 * failed, naming the problem, when the controller does not answer. */
int ocps_app_configure(ocps_app *a, json_t *config, char *err, size_t errlen);

/* Upper bounds (seconds) of the job duration histogram's buckets (+Inf
 * is implied). */
#define OCPS_APP_DURATION_BUCKETS 12
extern const double ocps_app_duration_buckets[OCPS_APP_DURATION_BUCKETS];

/* The jobs the engine reported ended since the start, counted when it
 * reports them (for the CSC's /metrics). */
typedef struct ocps_app_job_stats {
    unsigned long long ended[ENGINE_UNKNOWN + 1];          /* by final phase */
    unsigned long long buckets[OCPS_APP_DURATION_BUCKETS]; /* cumulative, run time <= bound */
    unsigned long long count;
    double sum; /* seconds */
} ocps_app_job_stats;

const ocps_app_job_stats *ocps_app_get_job_stats(const ocps_app *a);

/* The job engine (NULL before the first start, and for index 101). */
const engine *ocps_app_engine(const ocps_app *a);

/* A backend the configuration uses, as last seen: up 1 or 0. */
typedef struct ocps_app_backend {
    const char *name; /* "redis", "uws" or "slurm" */
    int up;
} ocps_app_backend;

/* The configured backends (at most 3) into out; how many. */
size_t ocps_app_backends(const ocps_app *a, ocps_app_backend out[3]);

/* Called once a closed application has been freed. */
typedef void (*ocps_app_close_cb)(void *arg);

/* Close (call it from the CSC's closing hook, or after a failed open):
 * timers stop, the engine closes (running jobs keep running and are
 * re-adopted by the next CSC), commands in flight are released; `a` is
 * freed on the loop once all that has closed, then cb(arg) runs (cb may be
 * NULL). `a` must not be used after this call. */
void ocps_app_close(ocps_app *a, ocps_app_close_cb cb, void *arg);

#endif
