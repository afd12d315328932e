/*
 * inproc_csc.h - a CSC on its own thread and libuv loop inside the test
 * program, on the inproc transport: the in-process counterpart of running
 * ocps-csc as a child process. The test drives it through a Remote on its
 * own loop (fx_open_transport with sal_inproc_transport) and sees it only
 * through SAL, as a commander would, except through ct_call, which runs a
 * function on the CSC's loop and waits for it.
 */
#ifndef INPROC_CSC_H
#define INPROC_CSC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <uv.h>

#include "ocps/sal_csc.h"
#include "sal_fixture.h"

typedef struct ct_options {
    const sal_component_info *comp;
    /* The CSC's options; ct_start sets the transport to inproc. */
    sal_csc_options csc;
    /* Run the OCPS application (execute, abort_job, its configure hook)
     * with this ocps-job-runner; NULL: a generic CSC. */
    const char *ocps_runner;
    /* All called on the CSC's thread, with `arg`; any may be NULL.
     * setup: after sal_csc_open (and the application's commands), before
     * sal_csc_start, e.g. to register command handlers. configure: the
     * configure hook of a generic CSC (NULL accepts). closing: the CSC is
     * stopping (release the commands a handler holds). */
    void (*setup)(void *arg, sal_csc *csc);
    int (*configure)(void *arg, json_t *config, char *err, size_t errlen);
    void (*closing)(void *arg);
    void *arg;
} ct_options;

typedef struct csc_thread csc_thread;

/* Defaults for a test CSC of `comp` with SAL index 1: ct_options zeroed,
 * sal_csc_options_init, no duplicate check, OCPS's indices, 50 ms
 * shutdown delay. */
void ct_options_init(ct_options *o, const sal_component_info *comp);

/* The OCPS CSC as ocps-csc runs it: the application with `runner`, its
 * configuration schema, read from `config_dir` (--configdir). */
void ct_options_ocps(ct_options *o, const sal_component_info *comp, const char *runner,
                     const char *config_dir);

/* A temporary dm_config_ocps tree, <root>/OCPS/v4, with an _init.yaml for
 * index 1 and a _test.yaml (LSST_SITE=test) holding work_root <root>/jobs,
 * pipetask `pipetask`, inprogress_interval 1, simulation_duration 0.2 and
 * `extra` (YAML lines, may be NULL). Returns root (free it after
 * tu_remove_tree); the directory is <root>/OCPS/v4. */
char *ct_ocps_config(const char *pipetask, const char *extra);

/* Open and start the CSC on a new thread; returns once sal_csc_start has
 * run, or NULL (with a message on stderr) if anything failed. */
csc_thread *ct_start(const ct_options *o);

/* Run fn(arg, csc) on the CSC's loop and wait until it returns. Returns 0,
 * or -1 without running fn once the CSC is stopping. */
int ct_call(csc_thread *t, void (*fn)(void *arg, sal_csc *csc), void *arg);

/* The CSC's summary state (read on its loop); 0 once it is stopping. */
sal_state ct_state(csc_thread *t);

/* Has the CSC's loop ended (exitControl, a failed start, ct_stop)? */
bool ct_finished(csc_thread *t);

/* Stop the CSC as SIGTERM does (unless it is stopping already) and return
 * at once: its loop ends when its last handle and request have ended. */
void ct_signal(csc_thread *t);

/* ct_signal, then wait for the CSC's thread and free everything. Returns
 * its exit code (-1 for NULL). */
int ct_stop(csc_thread *t);

/* Occupies every thread of libuv's pool (UV_THREADPOOL_SIZE must be
 * CT_POOL_SIZE, set before the first loop runs), so that work a CSC queues
 * (its configuration read) waits until ct_pool_release. */
#define CT_POOL_SIZE 4

typedef struct ct_pool_hold {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running;
    int finished;
    bool release;
    uv_work_t work[CT_POOL_SIZE];
} ct_pool_hold;

/* Queue the holding work on `loop` and wait until all of it runs. */
void ct_pool_fill(ct_pool_hold *h, uv_loop_t *loop);

/* Let the holding work end. */
void ct_pool_release(ct_pool_hold *h);

/* fx_run_until predicate: every holding work item has finished (arg is the
 * ct_pool_hold); then ct_pool_fini. */
bool ct_pool_empty(fx *f, void *arg);

/* Release the hold's lock and condition. */
void ct_pool_fini(ct_pool_hold *h);

#endif
