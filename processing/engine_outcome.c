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
    uv_work_t req;
    engine *e;
    struct engine_outcome_work *next;
    char id[ENGINE_JOB_ID_LEN + 1];
    int64_t seq;
    char *workdir;
    char why[96];
    engine_proc *proc; /* the runner's watch, closed with this */
    engine_outcome out;
} engine_outcome_work;

static void engine_outcome_work_free(engine_outcome_work *w)
{
    if (w->out.rc == 0) {
        engine_status_clear(&w->out.st);
    }
    if (w->proc != NULL) {
        engine__proc_close(w->proc);
    }
    free(w->workdir);
    free(w);
}

static void engine_outcome_step(uv_work_t *req)
{
    engine_outcome_work *w = req->data;
    engine__outcome_read(w->workdir, &w->out);
}

static void engine_outcome_after(uv_work_t *req, int status);

/* Put the head of the queue on the thread pool if none is there. */
static void engine_outcome_next(engine *e)
{
    while (!e->closed && !e->outcome_reading && e->outcomes_head != NULL) {
        engine_outcome_work *w = e->outcomes_head;
        w->req.data = w;
        if (uv_queue_work(e->loop, &w->req, engine_outcome_step, engine_outcome_after) == 0) {
            e->open_handles++;
            e->outcome_reading = true;
            return;
        }
        /* cannot happen (a valid loop and callback): read it here */
        e->outcomes_head = w->next;
        if (e->outcomes_head == NULL) {
            e->outcomes_tail = NULL;
        }
        engine_rec *r = engine__find(e, w->id);
        if (r != NULL && r->st.seq == w->seq && r->st.job.phase == ENGINE_EXECUTING) {
            engine__runner_gone(e, r, false, w->why);
        }
        engine_outcome_work_free(w);
    }
}

/* The read is back: finish its job (if it is still there, executing),
 * then the next one goes to the pool. */
static void engine_outcome_after(uv_work_t *req, int status)
{
    (void)status; /* never cancelled */
    engine_outcome_work *w = req->data;
    engine *e = w->e;
    e->outcome_reading = false;
    e->outcomes_head = w->next;
    if (e->outcomes_head == NULL) {
        e->outcomes_tail = NULL;
    }
    engine_rec *r = e->closed ? NULL : engine__find(e, w->id);
    if (r != NULL && r->st.seq == w->seq && r->st.job.phase == ENGINE_EXECUTING) {
        engine__outcome_finish(e, r, &w->out, false, w->why);
        w->out.rc = -1; /* released by engine__outcome_finish */
    }
    engine_outcome_work_free(w);
    if (!e->closed) {
        engine_outcome_next(e);
        engine__schedule(e);
    }
    engine__handle_closed(e); /* the last one frees a closing engine: nothing of e after this */
}

int engine__outcome_queue(engine *e, engine_rec *r, const char *why, engine_proc *p)
{
    engine_outcome_work *w = calloc(1, sizeof *w);
    if (w == NULL || (w->workdir = strdup(r->st.job.workdir)) == NULL) {
        free(w);
        return -1;
    }
    w->e = e;
    w->proc = p;
    w->seq = r->st.seq;
    w->out.rc = -1;
    memcpy(w->id, r->st.job.id, sizeof w->id);
    snprintf(w->why, sizeof w->why, "%s", why != NULL ? why : "");
    if (e->outcomes_tail != NULL) {
        e->outcomes_tail->next = w;
    } else {
        e->outcomes_head = w;
    }
    e->outcomes_tail = w;
    engine_outcome_next(e);
    return 0;
}

void engine__outcome_close(engine *e)
{
    engine_outcome_work **link = &e->outcomes_head;
    if (e->outcome_reading && *link != NULL) {
        link = &(*link)->next; /* the one on the pool frees itself when back */
    }
    engine_outcome_work *w = *link;
    *link = NULL;
    e->outcomes_tail = e->outcome_reading ? e->outcomes_head : NULL;
    while (w != NULL) {
        engine_outcome_work *next = w->next;
        engine_outcome_work_free(w);
        w = next;
    }
}
