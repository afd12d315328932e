/* engine_outcome.c - reading the outcome of a local job whose runner
 * ended on libuv's thread pool, so that a hung work root (NFS) never
 * blocks the loop; see engine__internal.h. */
#include "engine__internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One ended runner's outcome: read on the thread pool (the worker touches
 * only this), its job found again by id and store sequence when back. At
 * most one is on the pool, so that a hung work root holds one more of
 * libuv's threads, and jobs end in the order their runners did. */
typedef struct engine_outcome_work {
    engine_serial_work serial; /* first: the queue's item */
    char id[ENGINE_JOB_ID_LEN + 1];
    int64_t seq;
    char *workdir;
    char why[96];
    engine_proc *proc; /* the runner's watch, closed with this */
    engine_outcome out;
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
    engine__outcome_read(w->workdir, &w->out);
}

/* The read is back: finish its job (if it is still there, executing). */
static void engine_outcome_done(engine_serial_work *sw)
{
    engine_outcome_work *w = (engine_outcome_work *)sw;
    engine *e = sw->e;
    engine_rec *r = e->closed ? NULL : engine__find(e, w->id);
    if (r != NULL && r->st.seq == w->seq && r->st.job.phase == ENGINE_EXECUTING) {
        engine__outcome_finish(e, r, &w->out, false, w->why);
        w->out.rc = -1; /* released by engine__outcome_finish */
    }
    engine_outcome_work_free(sw);
    if (!e->closed) {
        engine__schedule(e);
    }
}

int engine__outcome_queue(engine *e, engine_rec *r, const char *why, engine_proc *p)
{
    engine_outcome_work *w = calloc(1, sizeof *w);
    if (w == NULL || (w->workdir = strdup(r->st.job.workdir)) == NULL) {
        free(w);
        return -1;
    }
    w->serial.run = engine_outcome_step;
    w->serial.done = engine_outcome_done;
    w->serial.drop = engine_outcome_work_free;
    w->proc = p;
    w->seq = r->st.seq;
    w->out.rc = -1;
    memcpy(w->id, r->st.job.id, sizeof w->id);
    snprintf(w->why, sizeof w->why, "%s", why != NULL ? why : "");
    engine__serial_push(e, &e->outcomes, &w->serial);
    return 0;
}

void engine__outcome_close(engine *e)
{
    engine__serial_drop(&e->outcomes);
}
