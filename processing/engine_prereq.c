/*
 * engine_prereq.c - jobs that wait for prerequisites (PENDING).
 *
 * A waiting job is looked at when it arrives, then only when a job it
 * waits for ends (or, with Slurm, is given a Slurm job id), never at every
 * scheduling step: a long line of waiting jobs costs the jobs that run
 * nothing (bench_engine_pending). Each live job keeps the ids of the jobs
 * waiting for it; a job checked and still waiting joins the list of every
 * prerequisite that holds it back (once each), so that a prerequisite that
 * fails fails it at once, and one that ended as needed is remembered as met
 * (its record may be removed later, by DELETE or retention). Ids, not
 * pointers: a waiting job that ended or left memory meanwhile is simply
 * not found, or not PENDING, when its turn comes.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine__internal.h"

typedef char engine_id[ENGINE_JOB_ID_LEN + 1];

/* Append id to (*v)[0..*n); 0, or -1 out of memory. */
static int engine_ids_push(engine_id **v, size_t *n, size_t *cap, const char *id)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 8;
        engine_id *w = realloc(*v, c * sizeof *w);
        if (w == NULL) {
            return -1;
        }
        *v = w;
        *cap = c;
    }
    snprintf((*v)[(*n)++], sizeof **v, "%s", id);
    return 0;
}

/* Look at job `id` at the next scheduling step (engine__release_pending). */
static void engine_check_later(engine *e, const char *id)
{
    if (engine_ids_push(&e->checks, &e->nchecks, &e->capchecks, id) != 0) {
        e->checks_lost = true; /* out of memory: every waiting job is looked at */
    }
}

void engine__prereq_arrived(engine *e, engine_rec *r)
{
    if (r->st.job.phase == ENGINE_PENDING) {
        engine_check_later(e, r->st.job.id);
    }
}

void engine__prereq_wake(engine *e, engine_rec *r)
{
    e->checks_woken = e->checks_woken || r->nwaiters > 0;
    for (size_t i = 0; i < r->nwaiters && !e->checks_lost; i++) {
        engine_check_later(e, r->waiters[i]);
    }
    engine__prereq_free(r);
}

void engine__prereq_free(engine_rec *r)
{
    free(r->prereqs_met); /* its own checks are over: it ended, or it left PENDING */
    r->prereqs_met = NULL;
    free(r->waiters);
    r->waiters = NULL;
    r->nwaiters = 0;
    r->capwaiters = 0;
}

/* The phase of a prerequisite: 1 known (in *phase, *live if in memory), 0
 * unknown, -1 error. */
static int engine_prereq_phase(engine *e, const char *id, engine_phase *phase, engine_rec **live)
{
    engine_rec *p = engine__find(e, id);
    *live = p;
    if (p != NULL) {
        *phase = p->st.job.phase;
        return 1;
    }
    char err[512];
    int rc = engine_store_find_phase(e->store, id, phase, err, sizeof err);
    if (rc < 0) {
        engine__log(e, ENGINE_LOG_ERROR, "job %s: %s", id, err);
    }
    return rc;
}

/* Can a job wait for this live prerequisite as a Slurm dependency? With
 * the Slurm executor, once the prerequisite has a Slurm job id: then the
 * dependent job is submitted at once with --dependency, so a queued chain
 * goes on while the CSC is down. */
static bool engine_slurm_dependency(const engine *e, const engine_rec *p)
{
    return e->executor == ENGINE_EXECUTOR_SLURM && p != NULL && p->st.job.slurm_job_id[0] != '\0';
}

/* What a PENDING job knows of each of its prerequisites (prereqs_met). */
enum { ENGINE_PREREQ_UNSEEN = 0, ENGINE_PREREQ_MET = 1, ENGINE_PREREQ_WAITING = 2 };

/* Prerequisites of a PENDING job: 1 all done (or left to Slurm), 0
 * waiting (*kept: not on the waiters of every prerequisite it waits for,
 * so it must be looked at again at the next step), -1 failed (msg). A
 * prerequisite that ended as needed is not looked up again (its record
 * may be removed later); one still running gets the job on its waiters
 * once, so that the job is looked at as each of them ends. */
static int engine_check_prereqs(engine *e, engine_rec *r, bool *kept, char *msg, size_t msglen)
{
    const json_t *prereqs = json_object_get(r->st.spec, "prereqs");
    bool must = json_is_true(json_object_get(r->st.spec, "must_succeed"));
    size_t n = json_array_size(prereqs);
    if (r->prereqs_met == NULL && n > 0) {
        r->prereqs_met = calloc(n, 1);
    }
    unsigned char *seen = r->prereqs_met;
    int ready = 1;
    *kept = seen == NULL; /* out of memory: looked at at every step */
    for (size_t i = 0; i < n; i++) {
        if (seen != NULL && seen[i] == ENGINE_PREREQ_MET) {
            continue;
        }
        const char *id = json_string_value(json_array_get(prereqs, i));
        engine_phase phase = ENGINE_PENDING;
        engine_rec *live = NULL;
        int rc = strcmp(id, r->st.job.id) == 0 ? 0 : engine_prereq_phase(e, id, &phase, &live);
        if (rc == 0) {
            snprintf(msg, msglen, "prerequisite %s is unknown", id);
            return -1;
        }
        if (rc < 0) {
            ready = 0;
            *kept = true;
        } else if (!engine_phase_final(phase) && !engine_slurm_dependency(e, live)) {
            ready = 0;
            /* (a prerequisite woken for its Slurm id is a Slurm dependency
             * from then on: WAITING is never stale here) */
            if (seen == NULL || seen[i] == ENGINE_PREREQ_WAITING) {
                continue;
            }
            if (live != NULL &&
                engine_ids_push(&live->waiters, &live->nwaiters, &live->capwaiters, r->st.job.id) == 0) {
                seen[i] = ENGINE_PREREQ_WAITING;
            } else {
                *kept = true;
            }
        } else if (!engine_phase_final(phase)) {
            continue; /* a Slurm dependency (engine_slurm.c) waits for it */
        } else if (must && phase != ENGINE_COMPLETED) {
            snprintf(msg, msglen, "prerequisite %s ended %s", id, engine_phase_name(phase));
            return -1;
        } else if (seen != NULL) {
            seen[i] = ENGINE_PREREQ_MET; /* ended as needed: for good */
        }
    }
    return ready;
}

/* r checked: released, failed, or still waiting (on its prerequisites'
 * lists of waiters, or kept for the next step: false). */
static bool engine_check_one(engine *e, engine_rec *r)
{
    char msg[256];
    bool kept = false;
    int rc = engine_check_prereqs(e, r, &kept, msg, sizeof msg);
    if (rc > 0) {
        engine__change(e, r, ENGINE_QUEUED);
    } else if (rc < 0) {
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_PREREQUISITE, -1, msg);
    } else {
        return !kept;
    }
    free(r->prereqs_met); /* no longer waiting */
    r->prereqs_met = NULL;
    return true;
}

void engine__prereq_close(engine *e)
{
    free(e->checks);
    e->checks = NULL;
    e->nchecks = 0;
    e->capchecks = 0;
}

/* A job to check, by creation order. */
typedef struct engine_check_key {
    int64_t seq; /* INT64_MAX: no longer in memory (skipped anyway) */
    size_t at;   /* in e->checks */
} engine_check_key;

static int engine_check_key_cmp(const void *pa, const void *pb)
{
    const engine_check_key *a = pa;
    const engine_check_key *b = pb;
    if (a->seq != b->seq) {
        return a->seq < b->seq ? -1 : 1;
    }
    return a->at < b->at ? -1 : a->at > b->at;
}

/* The jobs to check in creation order, so that jobs released in one step
 * (several prerequisites ended in it: a poll of adopted runners, of Slurm)
 * are queued and reported in the order they were created, not in the
 * order of their prerequisites. Out of memory: left in the order woken. */
static void engine_sort_checks(engine *e)
{
    size_t n = e->nchecks;
    if (n < 2) {
        return;
    }
    engine_check_key *keys = malloc(n * sizeof *keys);
    engine_id *sorted = malloc(n * sizeof *sorted);
    if (keys != NULL && sorted != NULL) {
        bool in_order = true;
        for (size_t i = 0; i < n; i++) {
            const engine_rec *r = engine__find(e, e->checks[i]);
            keys[i] = (engine_check_key){r != NULL ? r->st.seq : INT64_MAX, i};
            in_order = in_order && (i == 0 || keys[i - 1].seq <= keys[i].seq);
        }
        if (!in_order) {
            qsort(keys, n, sizeof *keys, engine_check_key_cmp);
            for (size_t i = 0; i < n; i++) {
                memcpy(sorted[i], e->checks[keys[i].at], sizeof sorted[i]);
            }
            memcpy(e->checks, sorted, n * sizeof *sorted);
        }
    }
    free(sorted);
    free(keys);
}

void engine__release_pending(engine *e)
{
    assert(!e->releasing); /* i and kept below would go stale */
    e->releasing = true;
    if (e->checks_lost) {
        e->checks_lost = false;
        e->nchecks = 0;
        for (engine_rec *r = e->lists[ENGINE_PENDING].head; r != NULL; r = r->next) {
            engine_check_later(e, r->st.job.id);
        }
    }
    engine_sort_checks(e);
    /* checks may add more (a failed job's waiters): i goes to the end */
    size_t kept = 0;
    for (size_t i = 0; i < e->nchecks; i++) {
        engine_rec *r = engine__find(e, e->checks[i]);
        if (r != NULL && r->st.job.phase == ENGINE_PENDING && !engine_check_one(e, r)) {
            memmove(e->checks[kept++], e->checks[i], sizeof e->checks[i]);
        }
    }
    e->nchecks = kept;
    if (kept == 0 && e->capchecks > 256) { /* after a burst: give the memory back */
        engine__prereq_close(e);
    }
    e->releasing = false;
}
