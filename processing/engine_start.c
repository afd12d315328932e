/* engine_start.c - starting a QUEUED job; the local and Slurm executors'
 * starts run their file-system work on libuv's thread pool, so that a
 * hung work root (NFS) never blocks the loop; see engine__internal.h. */
#include "engine__internal.h"
#include "ocps/child_cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Starts with a step on the thread pool at once, at most: one, so that a
 * hung work root holds one of libuv's threads (4 by default, shared with
 * the rest of the process), and jobs start (and are reported EXECUTING,
 * or handed to sbatch) in the order they were picked. A start is a mkdir,
 * a read and a posix_spawn (Slurm: a mkdir and a small write): one at a
 * time is fast enough. */
#define ENGINE_STARTS_MAX 1

/* One start's step on the thread pool: everything the worker reads
 * is copied here (it never touches the engine or the job's record); the
 * job is found again by id and store sequence when the step is back. */
typedef struct engine_start_work {
    uv_work_t req;
    engine *e;
    char id[ENGINE_JOB_ID_LEN + 1];
    int64_t seq;
    int step;   /* 1: make the directory, read the claim; 2: spawn the runner */
    bool slurm; /* step 1 of a Slurm submission: make the directory, write the batch script */
    char *workdir;
    json_t *spec; /* a deep copy of the job's spec */
    /* step 2 */
    char *runner;
    char *status_path;
    char *log_path;
    char **env;
    engine_exec_request request; /* pointing into the copies above */
    /* results */
    int rc; /* step 1: 0 or -1 (directory, script); step 2: engine_exec_spawn's */
    int claim_rc;
    engine_claim claim;
    int pid;
    int pidfd;
    char err[1400];
} engine_start_work;

bool engine__start_full(const engine *e)
{
    return e->executor != ENGINE_EXECUTOR_UWS && e->starts >= ENGINE_STARTS_MAX;
}

static void engine_start_work_free(engine_start_work *w)
{
    free(w->workdir);
    json_decref(w->spec);
    free(w->runner);
    free(w->status_path);
    free(w->log_path);
    child_cmd_env_free(w->env);
    free(w);
}

/* The live record of the job w starts, or NULL (ended and gone, or the
 * engine is closing). */
static engine_rec *engine_start_rec(const engine_start_work *w)
{
    if (w->e->closed) {
        return NULL;
    }
    engine_rec *r = engine__find(w->e, w->id);
    return r != NULL && r->st.seq == w->seq && r->starting ? r : NULL;
}

/* The step is back: one start fewer on the pool (the queue moves on),
 * one handle fewer (the last one frees a closing engine: nothing of e
 * after this). */
static void engine_start_work_done(engine_start_work *w)
{
    engine *e = w->e;
    engine_start_work_free(w);
    e->starts--;
    if (!e->closed) {
        engine__schedule(e);
    }
    engine__handle_closed(e);
}

static void engine_start_step(uv_work_t *req)
{
    engine_start_work *w = req->data;
    if (w->step == 1) {
        w->rc = engine__prepare_dir(w->workdir, json_object_get(w->spec, "dirs"), w->err, sizeof w->err);
        if (w->rc == 0 && w->slurm) {
            w->rc = engine__slurm_write_script(w->workdir, w->err, sizeof w->err);
        } else if (w->rc == 0) {
            w->claim_rc = engine_exec_read_claim(w->workdir, &w->claim, w->err, sizeof w->err);
        }
    } else {
        w->rc = engine_exec_spawn(&w->request, &w->pid, &w->pidfd, w->err, sizeof w->err);
    }
}

static void engine_start_after(uv_work_t *req, int status);

static int engine_start_queue(engine *e, engine_start_work *w)
{
    w->req.data = w;
    if (uv_queue_work(e->loop, &w->req, engine_start_step, engine_start_after) != 0) {
        return -1;
    }
    e->open_handles++;
    e->starts++;
    return 0;
}

/* Step 2's copy of the runner's request for job r (step 1's fields set). */
static int engine_start_copy_request(engine_start_work *w, const engine *e, const engine_rec *r)
{
    char status[ENGINE_WORKDIR_MAX + 64];
    engine__status_path(r, status, sizeof status);
    w->runner = strdup(e->runner);
    w->status_path = strdup(status);
    w->log_path = strdup(r->st.job.log_path);
    w->env = engine__job_env(r);
    if (w->runner == NULL || w->status_path == NULL || w->log_path == NULL || w->env == NULL) {
        return -1;
    }
    engine_exec_request *q = &w->request;
    engine__runner_request(e, r, status, q);
    q->runner = w->runner;
    q->workdir = w->workdir;
    q->status_path = w->status_path;
    q->log_path = w->log_path;
    q->globs = json_object_get(w->spec, "globs");
    q->simulate = json_string_value(json_object_get(w->spec, "simulate"));
    q->argv = json_object_get(w->spec, "argv");
    q->then = json_object_get(w->spec, "then");
    q->env = w->env;
    return 0;
}

/* Step 1 is back for job r (still QUEUED, holding its slot): follow a
 * claim found, or store the start and queue step 2. */
static void engine_start_prepared(engine *e, engine_rec *r, engine_start_work *w)
{
    r->starting = false;
    engine__set_active(e, r, false);
    if (e->held) {
        return; /* engine_hold meanwhile: it stays queued, nothing has run */
    }
    if (w->rc != 0) {
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, w->err);
        return;
    }
    if (engine__follow_read_claim(e, r, w->claim_rc, &w->claim, w->err) != 0) {
        return; /* a runner already has it (or had: it has ended) */
    }
    if (engine__store_start(e, r) != 0) {
        return;
    }
    engine__sync(e, r); /* on the EXECUTING list (holds its slot), reported once its runner is watched */
    engine_start_work *w2 = calloc(1, sizeof *w2);
    if (w2 != NULL) {
        *w2 = (engine_start_work){
            .e = e, .seq = w->seq, .step = 2, .workdir = w->workdir, .spec = w->spec, .pidfd = -1};
        memcpy(w2->id, w->id, sizeof w2->id);
        w->workdir = NULL; /* now w2's */
        w->spec = NULL;
    }
    if (w2 == NULL || engine_start_copy_request(w2, e, r) != 0 || engine_start_queue(e, w2) != 0) {
        if (w2 != NULL) {
            engine_start_work_free(w2);
        }
        r->st.job.started = 0;
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1,
                       "its runner could not be started: out of memory");
        return;
    }
    r->starting = true;
}

/* A Slurm submission's step 1 is back for job r (still QUEUED, holding
 * its slot): sbatch (or the lookup of an earlier submission) on the loop,
 * still holding the slot. */
static void engine_start_prepared_slurm(engine *e, engine_rec *r, const engine_start_work *w)
{
    r->starting = false;
    if (e->held) {
        engine__set_active(e, r, false); /* engine_hold meanwhile: it stays queued, nothing was sent */
        return;
    }
    if (w->rc != 0) {
        engine__set_active(e, r, false);
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, w->err);
        return;
    }
    engine__slurm_send(e, r);
}

/* Job r's runner could not be spawned (w->err says why): it has ended,
 * ABORTED if an abort was asked meanwhile (nothing ran), else ERROR. */
static void engine_start_failed(engine *e, engine_rec *r, const engine_start_work *w)
{
    r->st.job.started = 0;
    if (!r->st.abort_requested) {
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, w->err);
        return;
    }
    char msg[sizeof w->err + 64];
    snprintf(msg, sizeof msg, "aborted while its runner was being started, which failed: %s", w->err);
    engine__finish(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED, msg);
}

/* Step 2 is back: watch the runner (an abort asked meanwhile is sent to
 * it now), or end the job if it could not be spawned. */
static void engine_start_spawned(engine *e, engine_start_work *w)
{
    engine_rec *r = engine_start_rec(w);
    if (r != NULL) {
        r->starting = false;
    }
    if (w->rc != 0) {
        if (r != NULL) {
            engine_start_failed(e, r, w);
        }
        return;
    }
    if (e->closed) {
        close(w->pidfd); /* as engine_close leaves runners: it keeps running, a new engine follows it */
        return;
    }
    if (r == NULL || engine_phase_final(r->st.job.phase)) { /* cannot happen: stop it */
        engine_exec_kill(w->pid, SIGTERM);
        engine__attach_runner(e, NULL, w->pid, w->pidfd);
        return;
    }
    if (engine__attach_runner(e, r, w->pid, w->pidfd) == 0 && r->st.abort_requested) {
        engine_exec_kill(w->pid, SIGTERM); /* asked while it was being spawned */
    }
}

static void engine_start_after(uv_work_t *req, int status)
{
    (void)status; /* never cancelled */
    engine_start_work *w = req->data;
    engine *e = w->e;
    if (w->step == 1) {
        engine_rec *r = engine_start_rec(w);
        if (r != NULL && r->st.job.phase == ENGINE_QUEUED && w->slurm) {
            engine_start_prepared_slurm(e, r, w);
        } else if (r != NULL && r->st.job.phase == ENGINE_QUEUED) {
            engine_start_prepared(e, r, w);
        } else if (r != NULL) { /* aborted meanwhile: it has ended */
            r->starting = false;
            engine__set_active(e, r, false);
        }
    } else {
        engine_start_spawned(e, w);
    }
    engine_start_work_done(w);
}

int engine__start_prepare(engine *e, engine_rec *r)
{
    engine_start_work *w = calloc(1, sizeof *w);
    if (w != NULL) {
        *w = (engine_start_work){
            .e = e, .seq = r->st.seq, .step = 1, .slurm = e->executor == ENGINE_EXECUTOR_SLURM, .pidfd = -1};
        memcpy(w->id, r->st.job.id, sizeof w->id);
        w->workdir = strdup(r->st.job.workdir);
        w->spec = json_deep_copy(r->st.spec);
    }
    if (w == NULL || w->workdir == NULL || w->spec == NULL || engine_start_queue(e, w) != 0) {
        if (w != NULL) {
            engine_start_work_free(w);
        }
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1,
                       "it could not be started: out of memory");
        return -1;
    }
    r->starting = true;
    engine__set_active(e, r, true);
    return 0;
}

int engine__start(engine *e, engine_rec *r)
{
    if (e->executor == ENGINE_EXECUTOR_SLURM) {
        return engine__slurm_submit(e, r);
    }
    if (e->executor == ENGINE_EXECUTOR_UWS) {
        return engine__uws_submit(e, r);
    }
    return engine__start_prepare(e, r);
}
