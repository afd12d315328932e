/* engine_outcome.c - reading the outcome of a job while the engine runs
 * (our runner ended, an adopted runner was found gone, Slurm ended the
 * job, our runner found the job claimed) on libuv's thread pool, so that
 * a hung work root (NFS) never blocks the loop; see engine__internal.h. */
#include "engine__internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One job's outcome: read on the thread pool (the worker touches only
 * this), its job found again by id and store sequence when back. At most
 * one is on the pool, so that a hung work root holds one more of libuv's
 * threads, and jobs end in the order their ends were seen. */
typedef struct engine_outcome_work {
    engine_serial_work serial; /* first: the queue's item */
    engine_outcome_kind kind;
    uint64_t batch; /* e->outcome_batch when queued */
    char id[ENGINE_JOB_ID_LEN + 1];
    int64_t seq;
    char *workdir;
    bool has_why;
    char why[96];      /* OWN: how the runner ended; SLURM: Slurm's state (has_why) */
    engine_proc *proc; /* OWN: the runner's watch, closed with this */
    engine_outcome out;
    /* CLAIM: the claim read */
    int claim_rc;
    engine_claim claim;
    char claim_err[1300];
} engine_outcome_work;

static void engine_outcome_work_free(engine_serial_work *sw)
{
    engine_outcome_work *w = (engine_outcome_work *)sw;
    if (w->out.rc == 0) {
        engine_status_clear(&w->out.st);
    }
    if (w->proc != NULL) {
        engine__proc_close(w->proc);
    }
    free(w->workdir);
    free(w);
}

static void engine_outcome_step(engine_serial_work *sw)
{
    engine_outcome_work *w = (engine_outcome_work *)sw;
    switch (w->kind) {
    case ENGINE_OUTCOME_SLURM:
        engine__status_or_step_read(w->workdir, &w->out);
        break;
    case ENGINE_OUTCOME_CLAIM:
        w->claim_rc = engine_exec_read_claim(w->workdir, &w->claim, w->claim_err, sizeof w->claim_err);
        break;
    case ENGINE_OUTCOME_OWN:
    case ENGINE_OUTCOME_ADOPTED:
        engine__outcome_read(w->workdir, &w->out);
        break;
    }
}

/* Apply what was read to r (live, its read back). */
static void engine_outcome_apply(engine *e, engine_rec *r, engine_outcome_work *w)
{
    switch (w->kind) {
    case ENGINE_OUTCOME_SLURM:
        engine__slurm_outcome(e, r, w->has_why ? w->why : NULL, &w->out);
        break;
    case ENGINE_OUTCOME_CLAIM:
        engine__claimed_outcome(e, r, w->claim_rc, &w->claim, w->claim_err);
        return; /* no status was read */
    case ENGINE_OUTCOME_OWN:
    case ENGINE_OUTCOME_ADOPTED:
        engine__outcome_finish(e, r, &w->out, w->kind == ENGINE_OUTCOME_ADOPTED, w->has_why ? w->why : NULL);
        break;
    }
    w->out.rc = -1; /* the status is released */
}

/* Whether the next outcome to come back is of batch `batch`. */
static bool engine_outcome_batch_goes_on(const engine *e, uint64_t batch)
{
    const engine_serial_work *next = e->outcomes.running != NULL ? e->outcomes.running : e->outcomes.head;
    return next != NULL && ((const engine_outcome_work *)next)->batch == batch;
}

/* The read is back: finish its job (if it is still there, not ended);
 * schedule once the last of its batch is back. */
static void engine_outcome_done(engine_serial_work *sw)
{
    engine_outcome_work *w = (engine_outcome_work *)sw;
    engine *e = sw->e;
    engine_rec *r = e->closed ? NULL : engine__find(e, w->id);
    if (r != NULL && r->st.seq == w->seq && r->reading) {
        r->reading = false;
        if (!engine_phase_final(r->st.job.phase)) {
            engine_outcome_apply(e, r, w);
        }
    }
    uint64_t batch = w->batch;
    engine_outcome_work_free(sw);
    if (!e->closed && !engine_outcome_batch_goes_on(e, batch)) {
        engine__slurm_outcomes_done(e);
        engine__schedule(e);
    }
}

int engine__outcome_queue(engine *e, engine_rec *r, engine_outcome_kind kind, const char *why, engine_proc *p)
{
    engine_outcome_work *w = calloc(1, sizeof *w);
    if (w == NULL || (w->workdir = strdup(r->st.job.workdir)) == NULL) {
        free(w);
        return -1;
    }
    w->serial.run = engine_outcome_step;
    w->serial.done = engine_outcome_done;
    w->serial.drop = engine_outcome_work_free;
    w->kind = kind;
    w->batch = e->outcome_batch;
    w->proc = p;
    w->seq = r->st.seq;
    w->out.rc = -1;
    memcpy(w->id, r->st.job.id, sizeof w->id);
    w->has_why = why != NULL;
    snprintf(w->why, sizeof w->why, "%s", why != NULL ? why : "");
    r->reading = true;
    engine__serial_push(e, &e->outcomes, &w->serial);
    return 0;
}

void engine__outcome_batch(engine *e)
{
    e->outcome_batch++;
}

void engine__outcome_close(engine *e)
{
    engine__serial_drop(&e->outcomes);
}
