/*
 * engine.c - the OCPS job engine (see engine.h): jobs in memory, mirrored
 * in the store (engine_store.c) before anything is reported; runners
 * started and watched through engine_exec.c.
 *
 * Phase changes are queued as snapshots and delivered from a 0 ms timer,
 * so the application's callback never runs inside one of its own calls
 * into the engine (no re-entrancy), and always after the change is stored.
 */
#include "ocps/engine.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine__internal.h"
#include "ocps/sal_errout.h"
#include "ocps/sal_utf8.h"

double engine__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double engine__mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void engine__log(engine *e, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (e->log != NULL) {
        e->log(e->log_arg, level, msg);
    } else {
        sal_errout_say("ocps engine: %s", msg); /* never waits for a stalled reader */
    }
}

/* An error about job id that cannot be returned to the caller; a failed
 * store write is ENGINE_LOG_STORE_FAILED. */
static void engine_report(engine *e, int level, const char *id, const char *msg)
{
    if (id[0] == '\0') {
        engine__log(e, level, "%s", msg);
    } else {
        engine__log(e, level, "job %s: %s", id, msg);
    }
}

bool engine_phase_final(engine_phase phase)
{
    return phase == ENGINE_COMPLETED || phase == ENGINE_ERROR || phase == ENGINE_ABORTED ||
           phase == ENGINE_UNKNOWN;
}

/* ---- jobs in memory ---------------------------------------------------- */

/* Only live jobs are in memory: indexed by id, and on the list of their
 * phase (PENDING and QUEUED in creation order), so that no call costs
 * more with a longer history. An ended job leaves memory once its result
 * is published and its notifications are delivered; the store keeps it. */

static engine_rec *engine_find(const engine *e, const char *id)
{
    return engine_index_get(&e->index, id);
}

engine_rec *engine__find(const engine *e, const char *id)
{
    return engine_find(e, id);
}

static void engine_list_unlink(engine *e, engine_rec *r)
{
    if (r->listed < 0) {
        return;
    }
    engine_list *l = &e->lists[r->listed];
    if (r->listed == ENGINE_QUEUED && r->slurm_active) {
        e->queued_active--;
    }
    if (r == l->head) {
        l->base = r->rank; /* the next one's place becomes 1 */
    } else if (r != l->tail) {
        l->numbered = false;
    }
    *(r->prev != NULL ? &r->prev->next : &l->head) = r->next;
    *(r->next != NULL ? &r->next->prev : &l->tail) = r->prev;
    r->prev = r->next = NULL;
    r->listed = -1;
    l->n--;
}

/* Onto the list of its phase, after the last job created before it. */
static void engine_list_insert(engine *e, engine_rec *r)
{
    engine_list *l = &e->lists[r->st.job.phase];
    engine_rec *after = l->tail;
    while (after != NULL && after->st.seq > r->st.seq) {
        after = after->prev;
    }
    if (after == l->tail) {
        r->rank = (after != NULL ? after->rank : l->base) + 1;
    } else {
        l->numbered = false;
    }
    r->prev = after;
    r->next = after != NULL ? after->next : l->head;
    *(r->next != NULL ? &r->next->prev : &l->tail) = r;
    *(after != NULL ? &after->next : &l->head) = r;
    r->listed = (int)r->st.job.phase;
    l->n++;
    if (r->listed == ENGINE_QUEUED && r->slurm_active) {
        e->queued_active++;
    }
}

void engine__set_active(engine *e, engine_rec *r, bool active)
{
    if (r->slurm_active != active && r->listed == ENGINE_QUEUED) {
        if (active) {
            e->queued_active++;
        } else {
            e->queued_active--;
        }
    }
    r->slurm_active = active;
}

void engine__sync(engine *e, engine_rec *r)
{
    if (r->listed != (int)r->st.job.phase) {
        engine_list_unlink(e, r);
        engine_list_insert(e, r);
    }
}

static int engine_add(engine *e, engine_rec *r)
{
    if (engine_index_put(&e->index, r) != 0) {
        return -1;
    }
    r->listed = -1;
    engine_list_insert(e, r);
    engine__prereq_arrived(e, r);
    return 0;
}

static void engine_rec_free(engine_rec *r)
{
    engine__prereq_free(r);
    engine_store_record_clear(&r->st);
    free(r->uws_put_failure);
    free(r);
}

/* Forget a job that is no longer live (the store keeps it). */
static void engine_evict(engine *e, engine_rec *r)
{
    engine_list_unlink(e, r);
    engine_index_del(&e->index, r);
    if (r->proc != NULL) {
        r->proc->rec = NULL;
    }
    engine_rec_free(r);
}

static void engine_maybe_evict(engine *e, engine_rec *r)
{
    if (r->notes == 0 && !r->unstored && r->st.job.result_published && engine_phase_final(r->st.job.phase)) {
        engine_evict(e, r);
    }
}

/* 1-based position among QUEUED jobs, 0 if not queued: from the job's rank,
 * numbering the queue once after a job left from its middle (so that listing
 * every job costs one walk of the queue, not one per job). */
static int engine_queue_position(engine *e, const engine_rec *r)
{
    if (r->st.job.phase != ENGINE_QUEUED || r->listed != ENGINE_QUEUED) {
        return 0;
    }
    engine_list *l = &e->lists[ENGINE_QUEUED];
    if (!l->numbered) {
        int64_t k = l->base;
        for (engine_rec *q = l->head; q != NULL; q = q->next) {
            q->rank = ++k;
        }
        l->numbered = true;
    }
    return (int)(r->rank - l->base);
}

/* Jobs holding a slot: executing, and queued jobs handed over to Slurm or
 * a UWS server, or (local executor) being started (counted as they are
 * handed over and taken back, so that a long queue costs nothing here). */
static size_t engine_count_executing(const engine *e)
{
#ifndef NDEBUG
    size_t active = 0;
    for (const engine_rec *q = e->lists[ENGINE_QUEUED].head; q != NULL; q = q->next) {
        active += q->slurm_active ? 1 : 0;
    }
    assert(active == e->queued_active);
#endif
    return engine_count(e, ENGINE_EXECUTING) + e->queued_active;
}

/* The oldest queued job not yet handed to an executor, or NULL. */
static engine_rec *engine_next_queued(const engine *e)
{
    engine_rec *q = e->lists[ENGINE_QUEUED].head;
    while (q != NULL && q->slurm_active) {
        q = q->next;
    }
    return q;
}

/* ---- notifications ----------------------------------------------------- */

static void engine_note_free(engine_note *n)
{
    json_decref(n->job.meta);
    json_decref(n->job.argv);
    json_decref(n->job.results);
    free(n);
}

static void engine_on_notify(uv_timer_t *t)
{
    engine *e = t->data;
    while (e->notes != NULL && !e->closed) {
        engine_note *n = e->notes;
        e->notes = n->next;
        if (e->notes == NULL) {
            e->notes_tail = NULL;
        }
        if (e->cb != NULL) {
            e->cb(e->arg, &n->job);
        }
        engine_rec *r = n->rec;
        engine_note_free(n);
        r->notes--;
        engine_maybe_evict(e, r);
    }
}

/* Queue a snapshot of the job for the callback. */
static void engine_notify(engine *e, engine_rec *r)
{
    engine_note *n = malloc(sizeof *n); /* every member set below: not zeroed first */
    if (n == NULL) {
        engine_report(e, ENGINE_LOG_ERROR, r->st.job.id, "out of memory: phase change not reported");
        return;
    }
    n->next = NULL;
    n->job = r->st.job; /* workdir and log_path: r's, kept until it is delivered */
    n->job.queue_position = engine_queue_position(e, r);
    n->rec = r;
    r->notes++;
    json_incref(n->job.meta);
    json_incref(n->job.argv);
    json_incref(n->job.results);
    if (e->notes_tail != NULL) {
        e->notes_tail->next = n;
    } else {
        e->notes = n;
    }
    e->notes_tail = n;
    if (!e->closed) {
        uv_timer_start(&e->notify_timer, engine_on_notify, 0, 0);
    }
}

/* Has the store's file gone (reported once, with the job `id` or "")? */
static bool engine_store_gone(engine *e, const char *id)
{
    if (e->store != NULL && !e->store_moved && engine_store_moved(e->store)) {
        e->store_moved = true; /* said once: every later change is lost too */
        engine_report(e, ENGINE_LOG_STORE_FAILED, id,
                      "the job store's file was removed or replaced while open: changes are no longer kept");
    }
    return e->store_moved;
}

int engine_store_check(engine *e, char *err, size_t errlen)
{
    if (e == NULL || !engine_store_gone(e, "")) {
        return 0;
    }
    snprintf(err, errlen,
             "the job store's file was removed or replaced while open: no new job is taken until the "
             "engine is restarted");
    return -EIO;
}

#define ENGINE_UNSTORED_RETRY 5.0 /* seconds */

static void engine_on_unstored_timer(uv_timer_t *t);

/* r's latest change could not be written: kept, and written again later
 * (engine_store_flush). */
static void engine_keep_unstored(engine *e, engine_rec *r)
{
    r->unstored = true;
    if (r->unstored_listed) {
        return;
    }
    if (e->nunstored == e->capunstored) {
        size_t cap = e->capunstored ? 2 * e->capunstored : 16;
        void *p = realloc(e->unstored, cap * sizeof *e->unstored);
        if (p == NULL) {
            r->unstored = false; /* not kept: as before, the store is behind */
            return;
        }
        e->unstored = p;
        e->capunstored = cap;
    }
    memcpy(e->unstored[e->nunstored++], r->st.job.id, sizeof e->unstored[0]);
    r->unstored_listed = true;
    if (!e->closed && !uv_is_active((uv_handle_t *)&e->unstored_timer)) {
        uint64_t ms = (uint64_t)(ENGINE_UNSTORED_RETRY * 1000);
        uv_timer_start(&e->unstored_timer, engine_on_unstored_timer, ms, ms);
    }
}

/* Write r (its mutable fields, then its publication): 0, or -1 with a
 * message. */
static int engine_store_rec(engine *e, const engine_rec *r, char *err, size_t errlen)
{
    if (engine_store_update(e->store, &r->st, err, errlen) != 0) {
        return -1;
    }
    if (r->st.job.result_published && engine_store_mark_published(e->store, r->st.job.id, err, errlen) != 0) {
        return -1;
    }
    return 0;
}

int engine_store_flush(engine *e, size_t *written, char *err, size_t errlen)
{
    size_t done = 0;
    size_t kept = 0;
    if (written != NULL) {
        *written = 0;
    }
    if (e == NULL || e->nunstored == 0) {
        return 0;
    }
    if (e->store == NULL) {
        snprintf(err, errlen, "engine closed");
        return -EIO;
    }
    /* written in order until one fails; that one goes last, so that a job
     * whose own write keeps failing does not hold back the others */
    char failed[ENGINE_JOB_ID_LEN + 1] = "";
    for (size_t i = 0; i < e->nunstored; i++) {
        engine_rec *r = engine_find(e, e->unstored[i]);
        if (r == NULL) {
            continue;
        }
        if (!r->unstored || r->forgotten) { /* written since, or its row deleted */
            r->unstored = false;
            r->unstored_listed = false;
            engine_maybe_evict(e, r);
            continue;
        }
        if (failed[0] == '\0' && engine_store_rec(e, r, err, errlen) == 0) {
            r->unstored = false;
            r->unstored_listed = false;
            done++;
            engine_maybe_evict(e, r);
            continue;
        }
        if (failed[0] == '\0') {
            memcpy(failed, e->unstored[i], sizeof failed);
            continue;
        }
        memmove(e->unstored[kept++], e->unstored[i], sizeof e->unstored[0]); /* not tried */
    }
    if (failed[0] != '\0') {
        memcpy(e->unstored[kept++], failed, sizeof failed);
    }
    e->nunstored = kept;
    if (kept == 0 && !e->starts_waiting && !e->closed) {
        uv_timer_stop(&e->unstored_timer);
    }
    if (written != NULL) {
        *written = done;
    }
    if (failed[0] != '\0') {
        size_t n = strlen(err);
        snprintf(err + n, errlen > n ? errlen - n : 0, " (%zu job change%s not recorded)", kept,
                 kept == 1 ? "" : "s");
        return -EIO;
    }
    return 0;
}

/* The unstored changes written again, then the start the store refused
 * tried again (the queue's head); the timer stops when neither is left. */
static void engine_on_unstored_timer(uv_timer_t *t)
{
    engine *e = t->data;
    char err[600];
    size_t written = 0;
    int rc = engine_store_flush(e, &written, err, sizeof err);
    if (written > 0) {
        engine__log(e, ENGINE_LOG_INFO, "the job store recorded %zu job change%s it could not before%s",
                    written, written == 1 ? "" : "s", rc == 0 ? "" : "; others are still not recorded");
    }
    if (e->starts_waiting) {
        e->starts_waiting = false;
        engine__schedule(e); /* refused again: engine__start_unstored waits longer */
    }
    if (e->nunstored == 0 && !e->starts_waiting && !e->closed) {
        uv_timer_stop(t);
    }
}

/* The first retry of a refused start: the store's writes fail at once for
 * a second after a lock wait ran out (engine_store.c). */
#define ENGINE_START_RETRY_FIRST_MS 1000

void engine__start_unstored(engine *e, const char *id, const char *why)
{
    uint64_t most = (uint64_t)(ENGINE_UNSTORED_RETRY * 1000);
    if (e->start_retry_ms == 0) {
        e->start_retry_ms = ENGINE_START_RETRY_FIRST_MS;
        engine__log(e, ENGINE_LOG_WARNING,
                    "job %s: its start could not be stored (%s): it stays queued, and no job starts until "
                    "the job store takes writes again (tried again in %.0f s, then every %.0f s at most)",
                    id, why, ENGINE_START_RETRY_FIRST_MS / 1000.0, ENGINE_UNSTORED_RETRY);
    } else {
        e->start_retry_ms = 2 * e->start_retry_ms < most ? 2 * e->start_retry_ms : most;
    }
    e->starts_waiting = true;
    if (!e->closed) {
        uv_timer_start(&e->unstored_timer, engine_on_unstored_timer, e->start_retry_ms, most);
    }
}

void engine__start_stored(engine *e)
{
    if (e->start_retry_ms != 0) {
        e->start_retry_ms = 0;
        engine__log(e, ENGINE_LOG_INFO, "the job store takes writes again: queued jobs start again");
    }
}

static void engine_persist(engine *e, engine_rec *r)
{
    char err[512];
    if (e->store != NULL && engine_store_update(e->store, &r->st, err, sizeof err) != 0) {
        engine_keep_unstored(e, r);
        engine_report(e, ENGINE_LOG_STORE_FAILED, r->st.job.id, err);
    } else {
        if (e->store != NULL && !r->st.job.result_published) {
            r->unstored = false; /* all written now (the id left on the list is passed over) */
        }
        engine_store_gone(e, r->st.job.id);
    }
}

/* A non-final phase change: stored, then reported. */
void engine__change(engine *e, engine_rec *r, engine_phase phase)
{
    r->st.job.phase = phase;
    engine__sync(e, r);
    engine_persist(e, r);
    engine_notify(e, r);
}

/* Copy a message into dst (dstlen > 4 bytes). A longer one is cut at a UTF-8
 * character boundary (the job's message is later packed as a JSON string,
 * which must stay valid UTF-8) and ends in "..." to show it was shortened. */
static void engine_copy_message(char *dst, size_t dstlen, const char *src)
{
    static const char more[] = "...";
    size_t n = strlen(src);
    if (n < dstlen) {
        memcpy(dst, src, n + 1);
        return;
    }
    size_t keep = sal_utf8_cut(src, dstlen - sizeof more);
    memcpy(dst, src, keep);
    memcpy(dst + keep, more, sizeof more);
}

/* The job ends at `ended` (0: now), once: later calls do nothing. */
void engine__finish_at(engine *e, engine_rec *r, engine_phase phase, engine_reason reason, int exit_code,
                       const char *message, double ended)
{
    engine_job *j = &r->st.job;
    if (engine_phase_final(j->phase)) {
        return;
    }
    j->phase = phase;
    j->reason = reason;
    j->exit_code = exit_code;
    j->ended = ended > 0 ? ended : engine__now();
    if (j->started > 0 && j->ended < j->started) { /* another clock, or a clock step */
        j->ended = j->started;
    }
    engine_copy_message(j->message, sizeof j->message, message != NULL ? message : "");
    r->adopted = false;
    engine__sync(e, r);
    engine_persist(e, r);
    engine_notify(e, r);
    engine__prereq_wake(e, r);
}

void engine__finish(engine *e, engine_rec *r, engine_phase phase, engine_reason reason, int exit_code,
                    const char *message)
{
    engine__finish_at(e, r, phase, reason, exit_code, message, 0);
}

/* ---- scheduling -------------------------------------------------------- */

/* Release pending jobs, then start queued ones in creation order (none
 * while a refused start waits: engine__start_unstored). */
void engine__schedule(engine *e)
{
    if (e->closed || e->held) {
        return;
    }
    /* a job that ends as it is started (it cannot be) wakes the jobs
     * waiting for it: they are looked at in another pass */
    do {
        e->checks_woken = false;
        engine__release_pending(e);
        engine_rec *r;
        while (!e->starts_waiting && engine_count_executing(e) < (size_t)e->max_concurrent &&
               !engine__start_full(e) && (r = engine_next_queued(e)) != NULL) {
            engine__start(e, r);
            if (r->st.job.phase == ENGINE_QUEUED && !r->slurm_active) { /* cannot happen: never loop on it */
                engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, "could not be started");
            }
            engine__sync(e, r);
        }
    } while (e->checks_woken);
}

/* ---- adopted runners --------------------------------------------------- */

static void engine_on_poll(uv_timer_t *t)
{
    engine *e = t->data;
    size_t watching = 0;
    bool ended = false;
    engine_rec *next;
    engine__outcome_batch(e); /* the runners found gone now end together */
    for (engine_rec *r = e->lists[ENGINE_EXECUTING].head; r != NULL; r = next) {
        next = r->next;
        if (!r->adopted || r->reading) {
            continue;
        }
        if (engine_exec_probe(r->st.runner_pid, r->st.runner_start_time) != 0) {
            watching++; /* alive, or cannot tell now (out of descriptors): at the next poll */
        } else {
            engine__adopted_gone(e, r); /* its outcome is read off the loop, then it ends */
            ended = true;
        }
    }
    if (watching == 0) {
        uv_timer_stop(t);
    }
    if (ended) {
        engine__schedule(e);
    }
}

/* Make sure adopted runners are polled. */
void engine__watch(engine *e)
{
    if (!e->closed && !uv_is_active((uv_handle_t *)&e->poll_timer)) {
        uint64_t ms = (uint64_t)(e->poll_interval * 1000);
        uv_timer_start(&e->poll_timer, engine_on_poll, ms > 0 ? ms : 1, ms > 0 ? ms : 1);
    }
}

/* The unpublished jobs found in the store at open, in creation order. */
typedef struct engine_found {
    engine *e;
    engine_rec **recs;
    size_t n;
    size_t cap;
} engine_found;

/* A job found in the store at open: kept (handled by engine_resume once the
 * query is done). Returns 0 to go on. */
/* The store keeps one executor id: Slurm's job id or the UWS server's. */
static void engine_executor_ids(engine_executor executor, engine_job *j)
{
    if (executor == ENGINE_EXECUTOR_UWS) {
        j->slurm_job_id[0] = '\0';
    } else {
        j->executor_id[0] = '\0';
    }
}

static int engine_adopt(void *arg, engine_store_record *st)
{
    engine_found *f = arg;
    engine_executor_ids(f->e->executor, &st->job);
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 16;
        engine_rec **v = realloc(f->recs, cap * sizeof *v);
        if (v == NULL) {
            engine_report(f->e, ENGINE_LOG_ERROR, st->job.id, "out of memory: job not re-adopted");
            engine_store_record_clear(st);
            return 0;
        }
        f->recs = v;
        f->cap = cap;
    }
    engine_rec *r = calloc(1, sizeof *r);
    if (r != NULL) {
        r->st = *st;
    }
    if (r == NULL || engine_add(f->e, r) != 0) {
        engine_report(f->e, ENGINE_LOG_ERROR, st->job.id, "out of memory: job not re-adopted");
        if (r != NULL) {
            engine_rec_free(r);
        } else {
            engine_store_record_clear(st);
        }
        return 0;
    }
    f->recs[f->n++] = r;
    return 0;
}

static int engine_abort_live(engine *e, engine_rec *r, char *err, size_t errlen);

/* A job found with an abort asked for by the last engine (stored) and not
 * ended: asked again of its executor (the last engine may have stopped
 * before its executor took it: a UWS server or Slurm's controller that
 * did not answer). */
static void engine_abort_again(engine *e, engine_rec *r)
{
    if (!r->st.abort_requested || engine_phase_final(r->st.job.phase)) {
        return;
    }
    r->st.abort_requested = false;
    char err[512];
    if (engine_abort_live(e, r, err, sizeof err) != 0) {
        engine_report(e, ENGINE_LOG_WARNING, r->st.job.id, err);
    }
}

/* After loading, every job is reported as found: ended ones, live runners
 * (watched again), waiting ones; jobs whose runner is gone end from its
 * outcome. A job whose start was stored without a runner pid (the last
 * engine stopped while starting it) follows its runner's claim, or gets a
 * runner now: if the one started before claims the job first, the new one
 * refuses and the engine follows the claim (engine_on_exit). */
static void engine_resume(engine *e, engine_rec *const *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        engine_rec *r = recs[i];
        engine_job *j = &r->st.job;
        if (e->executor == ENGINE_EXECUTOR_UWS && !engine_phase_final(j->phase)) {
            engine__uws_adopt(e, r); /* polled again by its UWS id, or submitted (after a lookup) */
            engine_notify(e, r);
        } else if (!engine_phase_final(j->phase) && j->slurm_job_id[0] != '\0') {
            engine__slurm_adopt(e, r);
            engine_notify(e, r);
        } else if (j->phase == ENGINE_QUEUED && e->executor == ENGINE_EXECUTOR_SLURM) {
            r->slurm_resumed = true; /* it may have been submitted before the store knew */
            engine_notify(e, r);
        } else if (j->phase != ENGINE_EXECUTING) {
            engine_notify(e, r);
        } else if (r->st.runner_pid == 0) {
            if (engine__follow_claim(e, r) == 0) {
                engine__spawn(e, r);
            }
        } else if (engine_exec_probe(r->st.runner_pid, r->st.runner_start_time) != 0) {
            r->adopted = true; /* alive, or cannot tell now: watched */
            engine__watch(e);
            engine_notify(e, r);
        } else {
            engine__runner_gone(e, r, true, NULL);
        }
        engine__sync(e, r);
    }
    /* once every found job is resumed (a slurm_resumed one is looked up
     * before it is sent again): an abort can end a job and schedule */
    for (size_t i = 0; i < n; i++) {
        engine_abort_again(e, recs[i]);
    }
}

/* What runs this engine's jobs, as kept in the store: "local", "slurm",
 * or "uws <url>". */
static void engine_executor_identity(const engine *e, char *out, size_t outlen)
{
    switch (e->executor) {
    case ENGINE_EXECUTOR_UWS:
        snprintf(out, outlen, "uws %s", e->uws.url != NULL ? e->uws.url : "");
        break;
    case ENGINE_EXECUTOR_SLURM:
        snprintf(out, outlen, "slurm");
        break;
    default:
        snprintf(out, outlen, "local");
        break;
    }
}

/* The store's unfinished jobs run on the executor that took them: with
 * another one (local <-> slurm <-> uws, or another UWS server) a running
 * job would be run again (its process, Slurm job or server job unknown
 * to the new one) or reported lost while it runs on. So the engine does
 * not open on a store whose live jobs another executor runs; with none
 * live, the store is marked with this executor. 0, or -1 with why. */
static int engine_check_executor(engine *e, engine_rec *const *recs, size_t n, char *err, size_t errlen)
{
    char now[1100];
    char before[1100] = "";
    engine_executor_identity(e, now, sizeof now);
    int found = engine_store_get_setting(e->store, "executor", before, sizeof before, err, errlen);
    if (found < 0) {
        return -1;
    }
    size_t live = 0;
    for (size_t i = 0; i < n; i++) {
        live += engine_phase_final(recs[i]->st.job.phase) ? 0 : 1;
    }
    if (found == 1 && strcmp(before, now) == 0) {
        return 0;
    }
    if (found == 1 && live > 0) {
        snprintf(err, errlen,
                 "the job store holds %zu unfinished job%s of another executor (%.300s; this one is "
                 "%.300s): they would be run again or lost. Run with that executor until they have "
                 "ended (or abort them), then change it",
                 live, live == 1 ? "" : "s", before, now);
        return -1;
    }
    return engine_store_set_setting(e->store, "executor", now, err, errlen);
}

/* ---- open and close ---------------------------------------------------- */

int engine_lock_file(const char *lock_path, int *fd, char *holder, size_t holderlen)
{
    if (holderlen > 0) {
        holder[0] = '\0';
    }
    *fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    bool writable = *fd >= 0;
    if (*fd < 0 && errno == EACCES) {
        /* left by another account (an earlier run as root): flock needs
         * no write access; only the pid is not written */
        *fd = open(lock_path, O_RDONLY | O_CLOEXEC);
        if (*fd < 0) {
            return EACCES; /* not there, and its directory not writable: say that */
        }
    }
    if (*fd < 0) {
        return errno;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int why = errno;
        ssize_t n = holderlen > 1 ? pread(*fd, holder, holderlen - 1, 0) : 0;
        if (holderlen > 0) {
            holder[n > 0 ? n : 0] = '\0';
            holder[strcspn(holder, "\n")] = '\0';
        }
        close(*fd);
        *fd = -1;
        return why;
    }
    char line[32];
    int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (writable && ftruncate(*fd, 0) == 0) {
        ssize_t w = pwrite(*fd, line, (size_t)len, 0);
        (void)w; /* the lock holds either way; another's message only lacks the pid */
    }
    return 0;
}

int engine_make_dirs(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    if (path[0] == '\0' || snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(err, errlen, "path %s: %s", path[0] == '\0' ? "\"\"" : path,
                 path[0] == '\0' ? "empty" : "too long");
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create %s: %s", buf, strerror(errno));
                return -1;
            }
            *p = c;
            struct stat st;
            errno = 0;
            if (c == '\0' && (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))) {
                snprintf(err, errlen, "%s is not a directory%s%s", buf, errno != 0 ? ": " : "",
                         errno != 0 ? strerror(errno) : "");
                return -1;
            }
            if (c == '\0') {
                return 0;
            }
        }
    }
}

/* Mark work_root as the top of unrelated directory trees (FS_TOPDIR_FL,
 * `chattr +T`): ext4's Orlov allocator then places each job's directory,
 * and so the inodes of its files, in a block group of its own choosing
 * instead of work_root's group. Without a journal, ext4 steps over every
 * inode freed in the last half minute in the group it allocates from, and
 * the group of a directory such as /tmp is where other programs' temporary
 * files come and go. A hint only: file systems without the flag (ioctl
 * errors), a work_root the CSC does not own and a shared one (sticky or
 * writable by all) are left alone, and nothing is logged. */
static void engine_mark_topdir(const char *work_root)
{
    int fd = open(work_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    /* only a directory of the CSC's own, not a shared one such as /tmp
     * (a CSC run as root could change it for every other program) */
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & (S_ISVTX | S_IWOTH)) != 0) {
        close(fd);
        return;
    }
    int flags = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_TOPDIR_FL) == 0) {
        flags |= FS_TOPDIR_FL;
        (void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    close(fd);
}

static void engine_free(engine *e)
{
    for (int p = 0; p < ENGINE_NPHASES; p++) {
        while (e->lists[p].head != NULL) {
            engine_rec *r = e->lists[p].head;
            engine_list_unlink(e, r);
            engine_rec_free(r);
        }
    }
    engine_index_free(&e->index);
    engine_store_record_clear(&e->scratch);
    while (e->notes != NULL) {
        engine_note *n = e->notes;
        e->notes = n->next;
        engine_note_free(n);
    }
    engine_store_close(e->store);
    free(e->batch);
    free(e->unstored);
    engine__prereq_close(e);
    engine__slurm_free(e);
    engine__uws_free(e);
    free(e->work_root);
    free(e->store_path);
    free(e->runner);
    engine_close_cb cb = e->close_cb;
    void *arg = e->close_arg;
    free(e);
    if (cb != NULL) {
        cb(arg);
    }
}

/* One of the engine's handles is closed; the last one frees the engine. */
void engine__handle_closed(engine *e)
{
    if (--e->open_handles == 0) {
        engine_free(e);
    }
}

static void engine_on_timer_closed(uv_handle_t *h)
{
    engine__handle_closed(h->data);
}

static void engine_apply_retention(engine *e, const engine_options *o)
{
    e->retention_max_age = o->retention_max_age > 0 ? o->retention_max_age : 0;
    e->retention_max_jobs = o->retention_max_jobs;
    e->retention_max_bytes = o->retention_max_bytes;
    e->retention_interval =
        o->retention_interval > 0 ? o->retention_interval : ENGINE_DEFAULT_RETENTION_INTERVAL;
}

static void engine_apply_job_limits(engine *e, const engine_options *o)
{
    e->abort_grace = o->abort_grace > 0 ? o->abort_grace : 0;
    e->max_results = o->max_results > 0 ? o->max_results : ENGINE_DEFAULT_MAX_RESULTS;
    e->job_log_max = o->job_log_max;
}

static void engine_apply_options(engine *e, const engine_options *o)
{
    e->max_concurrent = o->max_concurrent >= 1 ? o->max_concurrent : 1;
    e->max_waiting = o->max_waiting;
    engine_apply_job_limits(e, o);
    e->poll_interval = o->poll_interval > 0 ? o->poll_interval : ENGINE_DEFAULT_POLL;
    engine_apply_retention(e, o);
    e->log = o->log;
    e->log_arg = o->log_arg;
}

/* How many directories under work_root are named as jobs are. */
static size_t engine_count_job_dirs(const char *work_root)
{
    size_t n = 0;
    DIR *d = opendir(work_root);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        n += engine_job_id_valid(de->d_name) && (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN);
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* A store made anew (its file missing or empty before the open) beside a
 * work root holding job directories: the jobs of the store that was there
 * are not reported or resumed, so say so. */
static void engine_warn_new_store(engine *e, bool existed)
{
    size_t dirs = existed ? 0 : engine_count_job_dirs(e->work_root);
    if (dirs > 0) {
        engine__log(e, ENGINE_LOG_WARNING,
                    "job store %s was missing or empty and has been made anew, but %s holds %zu job "
                    "director%s: the jobs of the store that was there are not reported or resumed",
                    e->store_path, e->work_root, dirs, dirs == 1 ? "y" : "ies");
    }
}

/* Allocate the engine and open its store (no handles yet). */
static engine *engine_create(uv_loop_t *loop, const engine_options *opts, char *err, size_t errlen)
{
    if (loop == NULL || opts == NULL || opts->work_root == NULL || opts->store_path == NULL ||
        opts->runner == NULL) {
        snprintf(err, errlen, "engine: loop, work_root, store_path and runner are required");
        return NULL;
    }
    /* every job's directory is <work_root>/<id>: refused here, not at each submission */
    size_t root_max = ENGINE_WORK_ROOT_MAX;
    if (strlen(opts->work_root) > root_max) {
        snprintf(err, errlen, "engine: work_root is too long (%zu bytes; at most %zu)",
                 strlen(opts->work_root), root_max);
        return NULL;
    }
    if (engine_make_dirs(opts->work_root, err, errlen) != 0) {
        return NULL;
    }
    engine *e = calloc(1, sizeof *e);
    if (e == NULL || (e->work_root = strdup(opts->work_root)) == NULL ||
        (e->store_path = strdup(opts->store_path)) == NULL || (e->runner = strdup(opts->runner)) == NULL) {
        snprintf(err, errlen, "engine: out of memory");
        if (e != NULL) {
            engine_free(e);
        }
        return NULL;
    }
    e->loop = loop;
    engine_apply_options(e, opts);
    engine_mark_topdir(e->work_root); /* a hint, silently (see there) */
    struct stat st;
    bool existed = stat(opts->store_path, &st) == 0 && st.st_size > 0;
    if (engine_store_open(&e->store, opts->store_path, err, errlen) != 0) {
        engine_free(e);
        return NULL;
    }
    engine_warn_new_store(e, existed);
    if (engine_store_unlocked(e->store)) {
        engine__log(e, ENGINE_LOG_WARNING,
                    "job store %s: its file system does not lock files; nothing stops a second engine on it",
                    opts->store_path);
    }
    return e;
}

int engine_open(engine **out, uv_loop_t *loop, const engine_options *opts, engine_job_cb cb, void *arg,
                char *err, size_t errlen)
{
    *out = NULL;
    engine *e = engine_create(loop, opts, err, errlen);
    if (e == NULL) {
        return -1;
    }
    e->cb = cb;
    e->arg = arg;
    uv_timer_init(loop, &e->notify_timer);
    uv_timer_init(loop, &e->poll_timer);
    uv_timer_init(loop, &e->retention_timer);
    uv_timer_init(loop, &e->unstored_timer);
    e->notify_timer.data = e;
    e->poll_timer.data = e;
    e->retention_timer.data = e;
    e->unstored_timer.data = e;
    e->open_handles = 4;
    if (engine__slurm_init(e, opts, err, errlen) != 0 || engine__uws_init(e, opts, err, errlen) != 0) {
        engine_close(e, NULL, NULL);
        return -1;
    }
    engine_found found = {.e = e};
    if (engine_store_load_unpublished(e->store, engine_adopt, &found, err, errlen) != 0) {
        free(found.recs);
        engine_close(e, NULL, NULL); /* freed once the loop has closed the handles */
        return -1;
    }
    if (engine_check_executor(e, found.recs, found.n, err, errlen) != 0) {
        free(found.recs);
        engine_close(e, NULL, NULL);
        return -1;
    }
    e->held = true; /* nothing starts before every found job is resumed */
    engine_resume(e, found.recs, found.n);
    free(found.recs);
    e->held = opts->start_later;
    engine__schedule(e);
    engine__retention_start(e);
    *out = e;
    return 0;
}

void engine_start(engine *e)
{
    if (e != NULL && e->held) {
        e->held = false;
        engine__schedule(e);
    }
}

void engine_hold(engine *e)
{
    if (e != NULL) {
        e->held = true;
    }
}

void engine_close(engine *e, engine_close_cb cb, void *arg)
{
    if (e == NULL || e->closed) {
        if (e == NULL && cb != NULL) {
            cb(arg);
        }
        return;
    }
    e->closed = true;
    e->close_cb = cb;
    e->close_arg = arg;
    for (int p = 0; p < ENGINE_NPHASES; p++) {
        for (engine_rec *r = e->lists[p].head; r != NULL; r = r->next) {
            if (r->proc != NULL) {
                engine__proc_close(r->proc); /* the runner keeps running */
            }
        }
    }
    engine__outcome_close(e); /* the one being read is an open handle */
    if (e->nunstored > 0) {
        char err[600];
        if (engine_store_flush(e, NULL, err, sizeof err) != 0) {
            engine__log(e, ENGINE_LOG_ERROR, "closing: the job store could not record: %s", err);
        }
    }
    engine_store_close(e->store);
    e->store = NULL;
    uv_close((uv_handle_t *)&e->notify_timer, engine_on_timer_closed);
    uv_close((uv_handle_t *)&e->unstored_timer, engine_on_timer_closed);
    uv_close((uv_handle_t *)&e->poll_timer, engine_on_timer_closed);
    uv_close((uv_handle_t *)&e->retention_timer, engine_on_timer_closed);
    engine__slurm_close(e);
    engine__uws_close(e);
}

/* ---- API --------------------------------------------------------------- */

void engine_new_job_id(engine *e, char out[ENGINE_JOB_ID_LEN + 1])
{
    (void)e;
    /* 48 bits of milliseconds since the epoch, then 80 random bits (as a
     * UUIDv7): unique and not guessable as before, and a new id sorts after
     * the ids of the jobs before it, so that the store's index of ids grows
     * at its end (one page written per commit) instead of at a random page
     * for every job */
    unsigned char b[ENGINE_JOB_ID_LEN / 2];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    for (size_t i = 0; i < 6; i++) {
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    }
    size_t got = 6;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0 && errno != EINTR) {
            break;
        }
        got += n > 0 ? (size_t)n : 0;
    }
    if (got < sizeof b) { /* no getrandom: fall back on the clock (unique, not secret) */
        uint64_t x = (uint64_t)now.tv_sec * 1000000007u ^ (uint64_t)now.tv_nsec ^ ((uint64_t)getpid() << 40);
        for (size_t i = got; i < sizeof b; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            b[i] = (unsigned char)(x >> 56);
        }
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof b; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[ENGINE_JOB_ID_LEN] = '\0';
}

bool engine_job_id_valid(const char *id)
{
    if (id == NULL || strlen(id) != ENGINE_JOB_ID_LEN) {
        return false;
    }
    for (const char *p = id; *p != '\0'; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* A JSON array of the strings of a NULL-terminated vector (may be NULL). */
static json_t *engine_json_strv(const char *const *v, const char *what, char *err, size_t errlen)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && v != NULL && v[i] != NULL; i++) {
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            snprintf(err, errlen, "%s[%zu] is not valid UTF-8", what, i);
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static int engine_check_simulate(const char *s)
{
    char *end;
    double secs = strtod(s, &end);
    if (end == s || *end != ':' || !(secs >= 0)) {
        return -1;
    }
    const char *code = end + 1;
    long c = strtol(code, &end, 10);
    return (end == code || *end != '\0' || c < 0 || c > 255) ? -1 : 0;
}

/* Validate the parts of a spec that JSON does not. */
static int engine_check_spec(const engine_job_spec *s, char *err, size_t errlen)
{
    if (s->simulate != NULL && engine_check_simulate(s->simulate) != 0) {
        snprintf(err, errlen, "simulate must be SECONDS:EXITCODE, not \"%s\"", s->simulate);
        return -1;
    }
    if (s->simulate == NULL && (s->argv == NULL || s->argv[0] == NULL || s->argv[0][0] == '\0')) {
        snprintf(err, errlen, "argv is empty");
        return -1;
    }
    if (s->then_argv != NULL && s->then_argv[0] != NULL && s->then_argv[0][0] == '\0') {
        snprintf(err, errlen, "then_argv[0] is empty");
        return -1;
    }
    for (size_t i = 0; s->env != NULL && s->env[i] != NULL; i++) {
        if (strchr(s->env[i], '=') == NULL || s->env[i][0] == '=') {
            snprintf(err, errlen, "env entry \"%s\" is not NAME=VALUE", s->env[i]);
            return -1;
        }
    }
    for (size_t i = 0; s->output_globs != NULL && s->output_globs[i] != NULL; i++) {
        if (s->output_globs[i][0] == '\0' || s->output_globs[i][0] == '/') {
            snprintf(err, errlen, "output glob \"%s\" must be relative to the job's directory",
                     s->output_globs[i]);
            return -1;
        }
    }
    for (size_t i = 0; s->dirs != NULL && s->dirs[i] != NULL; i++) {
        const char *d = s->dirs[i];
        size_t n = strlen(d);
        if (n == 0 || d[0] == '/' || strcmp(d, "..") == 0 || strncmp(d, "../", 3) == 0 ||
            strstr(d, "/../") != NULL || (n >= 3 && strcmp(d + n - 3, "/..") == 0)) {
            snprintf(err, errlen, "directory \"%s\" must be relative to the job's directory, without ..", d);
            return -1;
        }
    }
    for (size_t i = 0; s->prereqs != NULL && s->prereqs[i] != NULL; i++) {
        if (!engine_job_id_valid(s->prereqs[i])) {
            snprintf(err, errlen, "prerequisite \"%s\" is not a job id", s->prereqs[i]);
            return -1;
        }
    }
    return 0;
}

/* o[key] = the optional string vector v (absent when NULL or empty);
 * -1 with a message in err for a bad one (what names it). */
static int engine_spec_put_strv(json_t *o, const char *key, const char *const *v, const char *what, char *err,
                                size_t errlen)
{
    if (v == NULL || v[0] == NULL) {
        return 0;
    }
    json_t *a = engine_json_strv(v, what, err, errlen);
    if (a == NULL) {
        return -1;
    }
    if (json_object_set_new_nocheck(o, key, a) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The stored spec (JSON) of a checked engine_job_spec. */
static json_t *engine_spec_json(const engine_job_spec *s, char *err, size_t errlen)
{
    /* built key by key (constant keys, unchecked), in the order and with
     * the values json_pack("{s:O, s:O, s:O, s:f, s:O, s:b, s:s?, s:i}")
     * gave, without parsing a format per job */
    json_t *argv = engine_json_strv(s->argv, "argv", err, errlen);
    json_t *env = engine_json_strv(s->env, "env", err, errlen);
    json_t *globs = engine_json_strv(s->output_globs, "output_globs", err, errlen);
    json_t *prereqs = engine_json_strv(s->prereqs, "prereqs", err, errlen);
    bool lists = argv != NULL && env != NULL && globs != NULL && prereqs != NULL;
    json_t *simulate = !lists ? NULL : s->simulate != NULL ? json_string(s->simulate) : json_null();
    if (simulate == NULL) { /* a list's error is in err already */
        if (lists) {
            snprintf(err, errlen, "bad job spec (simulate must be UTF-8)");
        }
        json_decref(argv);
        json_decref(env);
        json_decref(globs);
        json_decref(prereqs);
        return NULL;
    }
    json_t *o = json_object();
    /* each set steals its value, also when it fails (then o is dropped) */
    int rc = json_object_set_new_nocheck(o, "argv", argv);
    rc |= json_object_set_new_nocheck(o, "env", env);
    rc |= json_object_set_new_nocheck(o, "globs", globs);
    rc |= json_object_set_new_nocheck(o, "max_duration",
                                      json_real(s->max_duration > 0 ? s->max_duration : 0.0));
    rc |= json_object_set_new_nocheck(o, "prereqs", prereqs);
    rc |= json_object_set_new_nocheck(o, "must_succeed", json_boolean(s->prereq_must_succeed));
    rc |= json_object_set_new_nocheck(o, "simulate", simulate);
    rc |= json_object_set_new_nocheck(o, "cpus", json_integer(s->cpus > 0 ? s->cpus : 0));
    if (rc == 0 && s->uws_body != NULL) {
        rc = json_object_set_nocheck(o, "uws_body", s->uws_body);
    }
    if ((rc == 0 && engine_spec_put_strv(o, "then", s->then_argv, "then_argv", err, errlen) != 0) ||
        (rc == 0 && engine_spec_put_strv(o, "dirs", s->dirs, "dirs", err, errlen) != 0)) {
        json_decref(o);
        return NULL;
    }
    if (o == NULL || rc != 0) {
        json_decref(o);
        snprintf(err, errlen, "bad job spec (max_duration not finite), or out of memory");
        return NULL;
    }
    return o;
}

/* A new job record in its first phase (not stored yet) in *out: 0, or
 * -ENOMEM, -ENAMETOOLONG (the work root is too long for the job's
 * directory) or -EINVAL (a spec that cannot be stored), with a message. */
static int engine_new_rec(engine *e, const char *id, const engine_job_spec *spec, engine_rec **out, char *err,
                          size_t errlen)
{
    engine_rec *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    engine_job *j = &r->st.job;
    char workdir[ENGINE_WORKDIR_MAX + 2];
    if (snprintf(workdir, sizeof workdir, "%s/%s", e->work_root, id) >= (int)sizeof workdir - 1) {
        snprintf(err, errlen, "work_root path too long");
        engine_rec_free(r);
        return -ENAMETOOLONG;
    }
    int rc = 0;
    if (engine_store_set_workdir(j, workdir) != 0) {
        rc = -ENOMEM;
    } else if ((r->st.spec = engine_spec_json(spec, err, errlen)) == NULL) {
        rc = err[0] != '\0' ? -EINVAL : -ENOMEM; /* engine_spec_json says what is wrong, not OOM */
    }
    if (rc != 0) {
        if (rc == -ENOMEM) {
            snprintf(err, errlen, "out of memory");
        }
        engine_rec_free(r);
        return rc;
    }
    snprintf(j->id, sizeof j->id, "%s", id);
    bool has_prereqs = spec->prereqs != NULL && spec->prereqs[0] != NULL;
    j->phase = has_prereqs ? ENGINE_PENDING : ENGINE_QUEUED;
    j->reason = ENGINE_REASON_NONE;
    j->created = engine__now();
    j->exit_code = -1;
    j->max_rss_kb = -1;
    j->meta = json_incref(spec->meta);
    j->argv = json_incref(json_object_get(r->st.spec, "argv"));
    j->results = json_array();
    if (j->results == NULL) {
        snprintf(err, errlen, "out of memory");
        engine_rec_free(r);
        return -ENOMEM;
    }
    *out = r;
    return 0;
}

/* Jobs waiting to run as max_waiting counts them: pending ones, and the
 * queued ones the free slots will not take at the next scheduling step
 * (queued jobs handed to Slurm or a UWS server, or being started, hold a
 * slot: bounded by max_concurrent; jobs of an open batch are scheduled when it ends). */
static size_t engine_waiting(const engine *e)
{
    size_t busy = e->lists[ENGINE_EXECUTING].n + e->queued_active;
    size_t free = busy < (size_t)e->max_concurrent ? (size_t)e->max_concurrent - busy : 0;
    size_t queued = e->lists[ENGINE_QUEUED].n - e->queued_active;
    return e->lists[ENGINE_PENDING].n + (queued > free ? queued - free : 0);
}

int engine_job_submit(engine *e, const char *id, const engine_job_spec *spec, char *err, size_t errlen)
{
    err[0] = '\0';
    if (e == NULL || e->closed || spec == NULL) {
        snprintf(err, errlen, "engine closed");
        return -EINVAL;
    }
    if (!engine_job_id_valid(id)) {
        snprintf(err, errlen, "job id \"%s\" is not %d lower-case hex characters", id ? id : "",
                 ENGINE_JOB_ID_LEN);
        return -EINVAL;
    }
    if (engine_find(e, id) != NULL) {
        snprintf(err, errlen, "job %s already exists", id);
        return -EEXIST;
    }
    if (engine_check_spec(spec, err, errlen) != 0) {
        return -EINVAL;
    }
    if (e->executor == ENGINE_EXECUTOR_UWS && !e->uws.abort_extension && spec->then_argv != NULL &&
        spec->then_argv[0] != NULL) {
        /* ocps-engine takes it (its extension then_argv); never dropped unseen on the reference */
        snprintf(err, errlen, "executor uws on uws-api-server runs no second step (then_argv)");
        return -EINVAL;
    }
    if (!e->batching && engine_store_check(e, err, errlen) != 0) { /* a batch checked at its begin */
        return -EIO;
    }
    if (e->batching && e->batch_broken) {
        snprintf(err, errlen, "the store failed on an earlier job of this batch");
        return -EIO;
    }
    size_t waiting = engine_waiting(e);
    if (e->max_waiting > 0 && waiting >= e->max_waiting) {
        engine_phase phase;
        if (engine_store_find_phase(e->store, id, &phase, err, errlen) > 0) {
            snprintf(err, errlen, "job %s already exists", id); /* an ended job: not refused for the line */
            return -EEXIST;
        }
        e->refused++;
        snprintf(err, errlen, "too many jobs wait to run (%zu; the limit is %zu): try again later", waiting,
                 e->max_waiting);
        return -EAGAIN;
    }
    engine_rec *r = NULL;
    int rc = engine_new_rec(e, id, spec, &r, err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (e->batching && e->nbatch == e->capbatch) {
        size_t cap = e->capbatch ? 2 * e->capbatch : 64;
        engine_rec **v = realloc(e->batch, cap * sizeof *v);
        if (v == NULL) {
            snprintf(err, errlen, "out of memory");
            engine_rec_free(r);
            return -ENOMEM;
        }
        e->batch = v;
        e->capbatch = cap;
    }
    /* the index grows (if it must) before the insert: a job stored is
     * added in memory too, never left in the store of a refused submission */
    if (engine_index_reserve(&e->index) != 0) {
        snprintf(err, errlen, "out of memory");
        engine_rec_free(r);
        return -ENOMEM;
    }
    /* an id stored already (an ended job of the history) fails the insert:
     * the id is UNIQUE, no lookup needed first */
    rc = engine_store_insert(e->store, &r->st, err, errlen);
    if (rc != 0) {
        engine_rec_free(r);
        if (e->batching && rc != -EEXIST) {
            /* (a UNIQUE refusal ends only its statement) */
            e->batch_broken = true; /* makes the batch fail */
        }
        return rc == -EEXIST ? -EEXIST : -EIO;
    }
    (void)engine_add(e, r); /* cannot fail: the index has room */
    if (e->batching) {
        e->batch[e->nbatch++] = r; /* reported and scheduled once committed */
        return 0;
    }
    engine_notify(e, r);
    engine__schedule(e);
    return 0;
}

int engine_batch_begin(engine *e, char *err, size_t errlen)
{
    if (e == NULL || e->closed || e->batching) {
        snprintf(err, errlen, e != NULL && e->batching ? "a batch is open already" : "engine closed");
        return -EINVAL;
    }
    if (engine_store_check(e, err, errlen) != 0 || engine_store_begin(e->store, err, errlen) != 0) {
        return -EIO;
    }
    e->batching = true;
    e->batch_broken = false;
    e->nbatch = 0;
    return 0;
}

int engine_batch_end(engine *e, char *err, size_t errlen)
{
    if (e == NULL || !e->batching) {
        snprintf(err, errlen, "no batch is open");
        return -EINVAL;
    }
    e->batching = false;
    bool complete = !e->batch_broken;
    if (!complete) {
        snprintf(err, errlen, "the store failed on a job of this batch");
    }
    if (!complete || engine_store_commit(e->store, err, errlen) != 0) {
        engine_store_rollback(e->store);
        for (size_t i = 0; i < e->nbatch; i++) {
            if (e->batch[i] != NULL) {
                engine_evict(e, e->batch[i]); /* never reported, never started */
            }
        }
        e->nbatch = 0;
        return -EIO;
    }
    for (size_t i = 0; i < e->nbatch; i++) {
        engine_notify(e, e->batch[i]);
    }
    e->nbatch = 0;
    engine__schedule(e);
    return 0;
}

/* Abort r (live, not ended, no abort asked yet) the way its executor
 * runs it: 0 (asked, or ended already), or a negative errno with a
 * message (nothing asked). */
static int engine_abort_live(engine *e, engine_rec *r, char *err, size_t errlen)
{
    engine_phase now = r->st.job.phase;
    /* slurm_resumed: found in the store, perhaps sent before the store
     * knew; the lookup that comes before sending it again decides */
    bool handed = e->executor != ENGINE_EXECUTOR_LOCAL && (r->slurm_active || r->slurm_resumed);
    if (e->executor == ENGINE_EXECUTOR_UWS && (handed || r->st.job.executor_id[0] != '\0')) {
        return engine__uws_abort(e, r, err, errlen);
    }
    if (handed || r->st.job.slurm_job_id[0] != '\0') {
        return engine__slurm_abort(e, r, err, errlen);
    }
    if (now == ENGINE_PENDING || now == ENGINE_QUEUED) {
        engine__finish(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED,
                       "aborted before it started");
        engine__schedule(e);
    } else if (now == ENGINE_EXECUTING) {
        /* stored before the signal: the runner's "aborted" is then always
         * known as ours, also by an engine restarted in between (which asks
         * again); a SIGTERM nobody asked for here is not an abort */
        r->st.abort_requested = true;
        engine_persist(e, r);
        int rc = r->proc != NULL ? engine_exec_kill(r->proc->pid, SIGTERM)
                                 : engine_exec_signal(r->st.runner_pid, r->st.runner_start_time, SIGTERM);
        if (rc != 0 && rc != UV_ESRCH && rc != -ESRCH) {
            r->st.abort_requested = false;
            engine_persist(e, r);
            snprintf(err, errlen, "cannot signal the runner of job %s: %s", r->st.job.id, strerror(-rc));
            return rc; /* not asked: a later abort tries again */
        }
    }
    return 0;
}

int engine_job_abort(engine *e, const char *id, char *err, size_t errlen)
{
    if (e == NULL || e->closed) {
        snprintf(err, errlen, "engine closed");
        return -EINVAL;
    }
    if (errlen > 0) {
        err[0] = '\0';
    }
    engine_rec *r = engine_find(e, id);
    if (r == NULL) {
        /* only in the store: one lookup by id in the ids' index */
        engine_phase ended = ENGINE_UNKNOWN;
        int stored =
            id != NULL && e->store != NULL ? engine_store_find_phase(e->store, id, &ended, err, errlen) : 0;
        if (stored == 1) { /* an ended job of an earlier run */
            snprintf(err, errlen, "job %s had already ended (%s)", id, engine_phase_name(ended));
            return 0;
        }
        if (stored < 0) {
            return -EIO;
        }
        snprintf(err, errlen, "unknown job %s", id ? id : "(null)");
        return -ENOENT;
    }
    engine_phase now = r->st.job.phase;
    if (engine_phase_final(now)) {
        snprintf(err, errlen, "job %s had already ended (%s)", id, engine_phase_name(now));
        return 0;
    }
    if (r->st.abort_requested) {
        snprintf(err, errlen, "job %s is already being aborted", id);
        return 0;
    }
    int rc = engine_abort_live(e, r, err, errlen);
    if (rc == 0 && r->st.abort_requested && !engine_phase_final(r->st.job.phase)) {
        engine_persist(e, r); /* a restart asks again (engine_resume) */
    }
    return rc;
}

/* A job no longer in memory, read from the store into e->scratch. */
static const engine_job *engine_job_stored(engine *e, const char *id)
{
    char err[512];
    engine_store_record_clear(&e->scratch);
    if (e->store == NULL || !engine_job_id_valid(id)) {
        return NULL;
    }
    int rc = engine_store_get(e->store, id, &e->scratch, err, sizeof err);
    if (rc < 0) {
        engine_report(e, ENGINE_LOG_ERROR, id, err);
    }
    engine_executor_ids(e->executor, &e->scratch.job);
    return rc > 0 ? &e->scratch.job : NULL;
}

const engine_job *engine_job_get(engine *e, const char *id)
{
    if (e == NULL) {
        return NULL;
    }
    engine_rec *r = engine_find(e, id);
    if (r == NULL) {
        return engine_job_stored(e, id);
    }
    if (r->forgotten) {
        return NULL;
    }
    r->st.job.queue_position = engine_queue_position(e, r);
    return &r->st.job;
}

int64_t engine_job_seq(engine *e, const char *id)
{
    if (e == NULL || engine_job_get(e, id) == NULL) {
        return 0;
    }
    const engine_rec *r = engine_find(e, id);
    return r != NULL ? r->st.seq : e->scratch.seq; /* engine_job_get read it into scratch */
}

/* mark_published of a job no longer in memory (published before). */
static int engine_mark_stored(engine *e, const char *id)
{
    char err[512];
    engine_phase phase;
    int rc = engine_store_find_phase(e->store, id, &phase, err, sizeof err);
    if (rc <= 0) {
        if (rc < 0) {
            engine_report(e, ENGINE_LOG_ERROR, id, err);
        }
        return rc < 0 ? -EIO : -ENOENT;
    }
    if (!engine_phase_final(phase)) {
        return -EBUSY;
    }
    if (engine_store_mark_published(e->store, id, err, sizeof err) != 0) {
        engine_report(e, ENGINE_LOG_STORE_FAILED, id, err);
        return -EIO;
    }
    return 0;
}

int engine_job_mark_published(engine *e, const char *id)
{
    char err[512];
    if (e == NULL || e->closed || id == NULL) {
        return -EINVAL;
    }
    engine_rec *r = engine_find(e, id);
    if (r == NULL) {
        return engine_mark_stored(e, id);
    }
    if (!engine_phase_final(r->st.job.phase)) {
        return -EBUSY;
    }
    r->st.job.result_published = true; /* published: not again, even if not stored yet */
    if (r->unstored) {                 /* its change first, then the publication */
        if (engine_store_rec(e, r, err, sizeof err) != 0) {
            return -EIO; /* kept: written again later */
        }
        r->unstored = false;
        engine_maybe_evict(e, r);
        return 0;
    }
    if (engine_store_mark_published(e->store, id, err, sizeof err) != 0) {
        engine_keep_unstored(e, r);
        engine_report(e, ENGINE_LOG_STORE_FAILED, id, err);
        return -EIO;
    }
    engine_maybe_evict(e, r);
    return 0;
}

int engine_job_forget(engine *e, const char *id, char *err, size_t errlen)
{
    if (e == NULL || e->closed || id == NULL) {
        snprintf(err, errlen, "engine closed");
        return -EINVAL;
    }
    engine_rec *r = engine_find(e, id);
    if (r != NULL && r->forgotten) {
        snprintf(err, errlen, "unknown job %s", id);
        return -ENOENT;
    }
    int rc = engine_job_mark_published(e, id);
    if (rc == -ENOENT) {
        snprintf(err, errlen, "unknown job %s", id);
        return rc;
    }
    if (rc == -EBUSY) {
        snprintf(err, errlen, "job %s has not ended", id);
        return rc;
    }
    if (rc != 0) {
        snprintf(err, errlen, "job store: cannot mark job %s", id);
        return rc;
    }
    const char *ids[1] = {id};
    if (engine_store_delete(e->store, ids, NULL, 1, err, errlen) != 0) {
        return -EIO;
    }
    r = engine_find(e, id); /* still in memory while its notifications wait */
    if (r != NULL) {
        r->forgotten = true;
    }
    return 0;
}

/* engine_job_list's walk over the store. */
typedef struct engine_list_walk {
    engine *e;
    engine_job_list_cb cb;
    void *arg;
} engine_list_walk;

static int engine_list_row(void *arg, engine_store_record *rec)
{
    engine_list_walk *w = arg;
    engine_rec *r = engine_find(w->e, rec->job.id);
    engine_executor_ids(w->e->executor, &rec->job);
    int stop = 0;
    if (r == NULL) {
        stop = w->cb(w->arg, &rec->job);
    } else if (!r->forgotten) {
        r->st.job.queue_position = engine_queue_position(w->e, r);
        stop = w->cb(w->arg, &r->st.job);
    }
    engine_store_record_clear(rec);
    return stop;
}

int engine_job_list(engine *e, engine_job_list_cb cb, void *arg, char *err, size_t errlen)
{
    if (e == NULL || e->closed || cb == NULL) {
        snprintf(err, errlen, "engine closed");
        return -EINVAL;
    }
    engine_list_walk w = {e, cb, arg};
    return engine_store_load_all(e->store, engine_list_row, &w, err, errlen) == 0 ? 0 : -EIO;
}

struct engine_job_lister {
    char *store_path;
    engine_executor executor;
};

engine_job_lister *engine_job_lister_new(const engine *e)
{
    engine_job_lister *l = calloc(1, sizeof *l);
    if (l == NULL || e == NULL || (l->store_path = strdup(e->store_path)) == NULL) {
        free(l);
        return NULL;
    }
    l->executor = e->executor;
    return l;
}

typedef struct engine_lister_walk {
    const engine_job_lister *l;
    engine_job_list_cb cb;
    void *arg;
    int64_t last; /* seq of the last row read */
    size_t rows;  /* read in this page */
    bool stopped; /* cb returned non-zero */
} engine_lister_walk;

static int engine_lister_row(void *arg, engine_store_record *rec)
{
    engine_lister_walk *w = arg;
    w->last = rec->seq;
    w->rows++;
    engine_executor_ids(w->l->executor, &rec->job);
    w->stopped = w->cb(w->arg, &rec->job) != 0;
    engine_store_record_clear(rec);
    return w->stopped;
}

/* Rows a page: each page is one short read transaction, so a long walk
 * (a directory listing per job in GET /job) never holds the WAL back. */
#define ENGINE_LISTER_PAGE 256

int engine_job_lister_walk(engine_job_lister *l, engine_job_list_cb cb, void *arg, char *err, size_t errlen)
{
    engine_store *s = NULL;
    if (l == NULL || cb == NULL) {
        snprintf(err, errlen, "no lister");
        return -EINVAL;
    }
    if (engine_store_open_reader(&s, l->store_path, err, errlen) != 0) {
        return -EIO;
    }
    engine_lister_walk w = {.l = l, .cb = cb, .arg = arg};
    int rc = 0;
    do {
        w.rows = 0;
        rc = engine_store_page(s, w.last, ENGINE_LISTER_PAGE, engine_lister_row, &w, err, errlen);
    } while (rc == 0 && !w.stopped && w.rows == ENGINE_LISTER_PAGE);
    engine_store_close(s);
    return rc == 0 ? 0 : -EIO;
}

void engine_job_lister_free(engine_job_lister *l)
{
    if (l != NULL) {
        free(l->store_path);
        free(l);
    }
}

void engine_job_list_live(engine *e, size_t max, engine_job_list_cb cb, void *arg)
{
    static const engine_phase order[] = {ENGINE_EXECUTING, ENGINE_QUEUED,  ENGINE_PENDING, ENGINE_COMPLETED,
                                         ENGINE_ERROR,     ENGINE_ABORTED, ENGINE_UNKNOWN};
    if (e == NULL || e->closed || cb == NULL) {
        return;
    }
    size_t n = 0;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        int pos = 0; /* the queue position, counted along the QUEUED list */
        for (engine_rec *r = e->lists[order[k]].head; r != NULL; r = r->next) {
            pos++;
            if (r->forgotten || (r->st.job.result_published && !r->unstored)) { /* else not in the history */
                continue; /* gone, or listed with the history */
            }
            if (max > 0 && n == max) {
                return;
            }
            n++;
            r->st.job.queue_position =
                order[k] == ENGINE_QUEUED && r->st.job.phase == ENGINE_QUEUED ? pos : 0;
            if (cb(arg, &r->st.job) != 0) {
                return;
            }
        }
    }
}

/* engine_job_list_history's walk: the page, and whether there is more. */
typedef struct engine_history_walk {
    engine *e;
    engine_job_list_cb cb;
    void *arg;
    size_t max;
    size_t n;
    int64_t last; /* seq of the last job passed to cb */
    bool more;
    bool stopped;
} engine_history_walk;

static int engine_history_row(void *arg, engine_store_record *rec)
{
    engine_history_walk *w = arg;
    if (w->n == w->max) {
        w->more = true; /* one row past the page */
        engine_store_record_clear(rec);
        return 1;
    }
    w->n++;
    w->last = rec->seq;
    engine_rec *r = engine_find(w->e, rec->job.id); /* published, notifications not yet delivered */
    engine_executor_ids(w->e->executor, &rec->job);
    int stop = 0;
    if (r == NULL) {
        stop = w->cb(w->arg, &rec->job);
    } else if (!r->forgotten) {
        stop = w->cb(w->arg, &r->st.job);
    }
    engine_store_record_clear(rec);
    w->stopped = stop != 0;
    return stop;
}

int engine_job_list_history(engine *e, int64_t before, size_t max, engine_job_list_cb cb, void *arg,
                            int64_t *next, char *err, size_t errlen)
{
    *next = 0;
    if (e == NULL || e->closed || cb == NULL || max == 0) {
        snprintf(err, errlen, e == NULL || e->closed ? "engine closed" : "bad arguments");
        return -EINVAL;
    }
    engine_history_walk w = {e, cb, arg, max, 0, 0, false, false};
    if (engine_store_history_page(e->store, before, max + 1, engine_history_row, &w, err, errlen) != 0) {
        return -EIO;
    }
    *next = w.more && !w.stopped ? w.last : 0;
    return 0;
}

size_t engine_count(const engine *e, engine_phase phase)
{
    if (e == NULL || (unsigned)phase >= ENGINE_NPHASES) {
        return 0;
    }
    return e->lists[phase].n;
}

int engine_backend_up(const engine *e)
{
    switch (e->executor) {
    case ENGINE_EXECUTOR_SLURM:
        return e->slurm.unreachable ? 0 : 1;
    case ENGINE_EXECUTOR_UWS:
        return e->uws.unreachable ? 0 : 1;
    case ENGINE_EXECUTOR_LOCAL:
        break;
    }
    return -1;
}

engine_executor engine_get_executor(const engine *e)
{
    return e->executor;
}

void engine_set_max_concurrent(engine *e, int max_concurrent)
{
    if (e == NULL) {
        return;
    }
    e->max_concurrent = max_concurrent >= 1 ? max_concurrent : 1;
    engine__schedule(e);
}

void engine_set_max_waiting(engine *e, size_t max_waiting)
{
    if (e != NULL) {
        e->max_waiting = max_waiting;
    }
}

engine_waiting_info engine_get_waiting(const engine *e)
{
    engine_waiting_info w = {0};
    if (e != NULL) {
        w.waiting = engine_waiting(e);
        w.max_waiting = e->max_waiting;
        w.refused = e->refused;
    }
    return w;
}

void engine_set_job_limits(engine *e, const engine_options *o)
{
    if (e != NULL && o != NULL) {
        engine_apply_job_limits(e, o);
    }
}

void engine_set_retention(engine *e, const engine_options *o)
{
    if (e == NULL || e->closed || o == NULL) {
        return;
    }
    engine_apply_retention(e, o);
    uv_timer_stop(&e->retention_timer);
    engine__retention_start(e);
}
