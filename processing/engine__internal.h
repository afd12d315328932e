/*
 * engine__internal.h - what the parts of the engine share (not a public
 * header): the engine and its records. engine.c keeps jobs, notifications,
 * scheduling, open/close and the API; engine_run.c starts runners, reads
 * their outcome and watches adopted ones.
 */
#ifndef ENGINE__INTERNAL_H
#define ENGINE__INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "engine__exec.h"
#include "engine__store.h"
#include "ocps/engine.h"

#define ENGINE_DEFAULT_MAX_RESULTS 1000
#define ENGINE_DEFAULT_POLL 0.5

/* A job and what the engine knows about its runner. */
typedef struct engine_rec {
    engine_store_record st;
    struct engine_proc *proc; /* runner started by this engine, or NULL */
    bool adopted;             /* runner of a previous engine, watched by polling */
    bool abort_requested;
} engine_rec;

/* A runner started by this engine (the handle is closed asynchronously). */
typedef struct engine_proc {
    uv_process_t handle;
    engine *e;
    engine_rec *rec; /* NULL once detached from its job */
} engine_proc;

/* A phase change waiting to be delivered (snapshot with own references). */
typedef struct engine_note {
    struct engine_note *next;
    engine_job job;
} engine_note;

struct engine {
    uv_loop_t *loop;
    char *work_root;
    char *runner;
    int max_concurrent;
    double abort_grace;
    size_t max_results;
    double poll_interval;
    engine_job_cb cb;
    void *arg;
    engine_store *store;
    engine_rec **recs; /* in creation order */
    size_t nrecs;
    size_t caprecs;
    engine_note *notes;
    engine_note *notes_tail;
    uv_timer_t notify_timer;
    uv_timer_t poll_timer;
    int open_handles; /* handles whose close callback has not run */
    bool closed;
    engine_close_cb close_cb; /* engine_close's, run once freed */
    void *close_arg;
};

/* CLOCK_REALTIME in seconds. */
double engine__now(void);

/* A non-final phase change: stored, then reported. */
void engine__change(engine *e, engine_rec *r, engine_phase phase);

/* The job ends at `ended` (0: now), once: later calls do nothing. */
void engine__finish_at(engine *e, engine_rec *r, engine_phase phase, engine_reason reason, int exit_code,
                       const char *message, double ended);

/* engine__finish_at, now. */
void engine__finish(engine *e, engine_rec *r, engine_phase phase, engine_reason reason, int exit_code,
                    const char *message);

/* The runner is gone: finish from its status file. `adopted`: nobody saw
 * it end, so a missing status means the job was lost. `why` describes how
 * the runner itself ended (our child) or is NULL. */
void engine__runner_gone(engine *e, engine_rec *r, bool adopted, const char *why);

/* Stop watching a runner (it keeps running); the handle closes on the loop. */
void engine__proc_close(engine_proc *p);

/* Start a QUEUED job; 0 if it now executes (else it has ended). Its start
 * is stored before the runner is spawned. */
int engine__start(engine *e, engine_rec *r);

/* Spawn the runner of a job whose start is stored (EXECUTING, runner pid
 * 0); 0 if it now executes (else it has ended). */
int engine__spawn(engine *e, engine_rec *r);

/* Follow the job's runner claim (engine__exec.h): watch its runner, or end
 * the job from its outcome. 1 if there was a claim, 0 if none. */
int engine__follow_claim(engine *e, engine_rec *r);

/* Make sure adopted runners are polled. */
void engine__watch(engine *e);

/* Release pending jobs, then start queued ones in creation order. */
void engine__schedule(engine *e);

/* One of the engine's handles is closed; the last one frees the engine. */
void engine__handle_closed(engine *e);

#endif
