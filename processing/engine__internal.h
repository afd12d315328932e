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
#include <stdint.h>

#include <uv.h>

#include "engine__exec.h"
#include "engine__store.h"
#include "ocps/engine.h"

#define ENGINE_DEFAULT_MAX_RESULTS 1000
#define ENGINE_DEFAULT_POLL 0.5

#define ENGINE_NPHASES (ENGINE_UNKNOWN + 1)
#define ENGINE_DEFAULT_RETENTION_INTERVAL 600.0

/* A live job (engine.c keeps only these in memory: not ended, or ended
 * and not yet published and delivered) and what the engine knows about
 * its runner. */
typedef struct engine_rec {
    engine_store_record st;
    struct engine_proc *proc; /* runner started by this engine, or NULL */
    bool adopted;             /* runner of a previous engine, watched by polling */
    bool reading;             /* its outcome (or claim) is being read on the thread pool (engine_outcome.c):
                                 not polled meanwhile */
    bool forgotten;           /* engine_job_forget: gone for the API, freed once its notes are delivered */
    /* UWS executor (engine_uws.c); slurm_active and slurm_resumed serve it too: handed over (holds a
     * slot), and found in the store (looked up by run_id before it is sent again) */
    bool uws_busy;            /* a request about it is in flight */
    bool uws_abort_sent;      /* the server accepted the abort */
    bool uws_poll_first;      /* the abort failed: a poll before it is sent again */
    bool uws_metrics_read;    /* ocps-engine: the ended job's metrics.json was read, or given up */
    int uws_metrics_tries;    /* its requests that failed (server down, 5xx, 401...) */
    int uws_put_failures;     /* its PUTs answered 500 and then not found by the lookup */
    char *uws_put_failure;    /* the last such answer (HTTP status and body excerpt), or NULL */
    double uws_next;          /* engine__mono() before which it is not asked (or sent to Slurm) again */
    double uws_backoff;       /* seconds, doubling while the server (or Slurm's controller) fails */
    bool slurm_active;        /* handed to Slurm (submitting or submitted), or (local and Slurm executors)
                                 being started on libuv's thread pool while QUEUED: holds a slot */
    bool starting;            /* local and Slurm executors: a step of its start is on the thread pool
                                 (engine_start.c) */
    bool slurm_resumed;       /* perhaps in Slurm already (found in the store without a Slurm id, or an
                                 sbatch whose answer was lost): look for it by name before sending it */
    double slurm_cancel_time; /* engine__mono() of the last scancel of the whole job for an abort (0: none) */
    bool slurm_in_poll;       /* its Slurm job id is in the squeue being run: that answer may judge it */
    bool slurm_retry;         /* sbatch failed for want of the controller: sent again at uws_next */
    bool slurm_seen;          /* Slurm has shown it since this engine opened (sbatch, squeue) */
    bool slurm_wait_poll;     /* its sbatch waits for a poll to see its prerequisites (has a slot) */
    double slurm_refused_since; /* engine__mono() of the first of its sbatch refusals by Slurm's
                                   accounting/QOS policy (0: none) */
    double slurm_never_since;   /* engine__mono() when a poll first showed it pending for a reason that
                                   never clears by itself (engine_slurm_never_starts); 0: not so */
    double abort_time;          /* when engine_job_abort asked (engine__mono) */
    bool unstored;              /* its latest change (or publication) is not in the store */
    bool unstored_listed;       /* its id is on e->unstored (it may have been written since) */
    struct engine_rec *prev;    /* in e->lists[listed] */
    struct engine_rec *next;
    int listed;   /* the phase whose list holds it, -1 none */
    int64_t rank; /* its 1-based place on that list is rank - list.base while the list is numbered */
    int notes;    /* its notifications not yet delivered */
    /* ids of PENDING jobs waiting for this one (engine_prereq.c; some may
     * have ended since) */
    char (*waiters)[ENGINE_JOB_ID_LEN + 1];
    size_t nwaiters;
    size_t capwaiters;
    /* while PENDING, per prerequisite (engine_prereq.c): known to have
     * ended as this job needs (a final phase does not change: not looked
     * up again), or this job is on its waiters; NULL until the first check */
    unsigned char *prereqs_met;
} engine_rec;

/* Live jobs of one phase, in creation order for PENDING and QUEUED. A job's
 * place on its list (the queue position) is kept as a rank: appending at the
 * tail and removing the head keep the ranks valid, anything else clears
 * `numbered` and the next lookup numbers the list again. */
typedef struct engine_list {
    engine_rec *head;
    engine_rec *tail;
    size_t n;
    int64_t base;  /* the rank of the last job removed from the head */
    bool numbered; /* every job's rank is valid */
} engine_list;

/* Live jobs by id: open addressing, linear probing (engine_index.c). */
typedef struct engine_index {
    engine_rec **slots; /* NULL empty, engine_index_tomb removed */
    size_t cap;         /* a power of two, or 0 */
    size_t used;        /* live + removed slots */
    size_t n;           /* live */
} engine_index;

/* Room for one more job (the next engine_index_put cannot fail): 0, or
 * -1 out of memory. */
int engine_index_reserve(engine_index *x);
/* 0, or -1 out of memory. r's id must not be in the index. */
int engine_index_put(engine_index *x, engine_rec *r);
engine_rec *engine_index_get(const engine_index *x, const char *id);
void engine_index_del(engine_index *x, const engine_rec *r);
void engine_index_free(engine_index *x);

/* One retention pass in flight (engine_retention.c). */
struct engine_retention_pass;

/* A runner started by this engine (the handle is closed asynchronously). */
typedef struct engine_proc {
    uv_poll_t poll; /* on pidfd: readable when the runner exits */
    int pid;
    int pidfd;
    engine *e;
    engine_rec *rec; /* NULL once detached from its job */
} engine_proc;

/* A phase change waiting to be delivered (snapshot with own references). */
typedef struct engine_note {
    struct engine_note *next;
    engine_job job;
    engine_rec *rec; /* its job, kept in memory until this is delivered */
} engine_note;

/* Room for a disk-full note (engine__disk_full_note). */
#define ENGINE_FULL_NOTE_MAX 120

/* What was read of an ended runner's outcome (engine__outcome_read). */
typedef struct engine_outcome {
    int rc;                          /* engine_exec_read_status's */
    engine_status st;                /* rc 0: the outcome (engine_status_clear) */
    char err[1400];                  /* rc not 0: why */
    char full[ENGINE_FULL_NOTE_MAX]; /* rc 0, a failed job: its disk-full note, or "" */
    bool started;                    /* no status: a claim says the job had started */
    char killed[160];                /* no status: what was left of its process group */
    int claim_step;                  /* no status: the step its claim says last started (0: none) */
} engine_outcome;

/* Work for libuv's thread pool done one item at a time, in order
 * (engine_serial.c): a hung work root holds one thread of the pool per
 * queue at most. An item embeds engine_serial_work first. */
typedef struct engine_serial_work engine_serial_work;
struct engine_serial_work {
    uv_work_t req;
    struct engine *e;
    struct engine_serial *queue;
    engine_serial_work *next;
    void (*run)(engine_serial_work *w);  /* on the pool: the item's own copies only */
    void (*done)(engine_serial_work *w); /* back on the loop (e may be closed): frees w */
    void (*drop)(engine_serial_work *w); /* engine_close, never run: frees w */
};

typedef struct engine_serial {
    engine_serial_work *head; /* waiting for the pool */
    engine_serial_work *tail;
    engine_serial_work *running; /* on the pool (an open handle), or NULL */
} engine_serial;

/* Queue w (run, done and drop set) after the items waiting in q; it goes
 * to the pool when none of q is there (not once the engine closes). */
void engine__serial_push(struct engine *e, engine_serial *q, engine_serial_work *w);

/* engine_close: drop the items of q not yet on the pool (the one there
 * comes back and is done). */
void engine__serial_drop(engine_serial *q);

/* The Slurm executor's state (engine_slurm.c). */
typedef struct engine_slurm {
    char *partition;
    double policy_refusal_limit; /* engine_slurm_options' (seconds, > 0) */
    char *account;
    char *qos;
    int cpus_per_job;
    char *memory;
    double time_limit;
    char **extra_options; /* NULL-terminated, owned */
    char *slurm_conf;
    uv_timer_t timer;            /* polling of submitted jobs */
    bool polling;                /* a squeue is running */
    struct engine_cmd *poll_cmd; /* that squeue (engine_slurm.c), stopped by engine_close */
    bool unreachable;            /* the last poll failed (warned once) */
    bool submit_unreachable;     /* a submission found no controller (warned once) */
    int running_cmds;            /* commands in flight */
    int held;                    /* jobs with slurm_wait_poll (a poll looks for them only then) */
} engine_slurm;

/* The UWS executor's state (engine_uws.c). */
typedef struct engine_uws {
    char *url; /* without a trailing '/' */
    char *token;
    bool abort_extension;
    double timeout;
    double max_backoff;
    struct engine_http *http;
    uv_timer_t timer; /* the tick: polls and retries */
    bool unreachable; /* warned once */
    bool full;        /* it refused a PUT (its line is full; warned once), no PUT accepted since */
    bool active;      /* executor uws: the timer and the client exist */
    /* writes of ended jobs' metrics.json, in order, one at a time on the thread pool */
    engine_serial writes;
} engine_uws;

struct engine {
    uv_loop_t *loop;
    engine_executor executor;
    engine_slurm slurm;
    engine_uws uws;
    char *work_root;
    char *store_path; /* for the retention pass's own read connection */
    bool store_moved; /* its file was found removed or replaced (reported once) */
    char *runner;
    int max_concurrent;
    size_t max_waiting;         /* PENDING + QUEUED at most for a submission, 0 none */
    unsigned long long refused; /* submissions refused by max_waiting */
    double abort_grace;
    size_t max_results;
    uint64_t job_log_max; /* bytes of a job's output kept in its log; 0: all */
    double poll_interval;
    engine_job_cb cb;
    void *arg;
    engine_store *store;
    engine_index index;     /* live jobs by id */
    size_t queued_active;   /* QUEUED jobs with slurm_active: they hold a slot (engine__set_active) */
    int starts;             /* local and Slurm starts with a step on the thread pool (engine__start_full) */
    engine_serial outcomes; /* jobs' outcomes to read (engine_outcome.c), in the order their ends were seen */
    uint64_t outcome_batch; /* the batch of the outcomes queued now (engine__outcome_batch) */
    engine_list lists[ENGINE_NPHASES]; /* live jobs by phase */
    engine_store_record scratch;       /* engine_job_get of an evicted job */
    double retention_max_age;          /* seconds, 0 off */
    size_t retention_max_jobs;         /* 0 off */
    uint64_t retention_max_bytes;      /* 0 off */
    double retention_interval;         /* seconds */
    engine_log_cb log;
    void *log_arg;
    uv_timer_t retention_timer;
    struct engine_retention_pass *retention_pass; /* NULL when none runs */
    engine_note *notes;
    engine_note *notes_tail;
    uv_timer_t notify_timer;
    uv_timer_t poll_timer;
    /* ids of jobs whose latest change the store could not record (a
     * failed write), written again every ENGINE_UNSTORED_RETRY seconds, at
     * engine_store_flush and at engine_close */
    char (*unstored)[ENGINE_JOB_ID_LEN + 1];
    size_t nunstored;
    size_t capunstored;
    uv_timer_t unstored_timer;
    /* the store refused a job's start (engine__start_unstored): no job
     * starts until unstored_timer tries again, after start_retry_ms
     * (doubled at each refusal, up to ENGINE_UNSTORED_RETRY; 0 once a
     * start is stored) */
    bool starts_waiting;
    uint64_t start_retry_ms;
    int open_handles; /* handles whose close callback has not run */
    bool closed;
    bool held;                /* start_later, or engine_hold: no job starts until engine_start */
    engine_close_cb close_cb; /* engine_close's, run once freed */
    void *close_arg;
    /* engine_batch_begin..end: the jobs submitted meanwhile (stored in the
     * open transaction, neither reported nor scheduled yet) */
    bool batching;
    /* an insert of the batch failed (SQLite may have rolled the whole
     * transaction back: a later insert would commit on its own): every
     * later submit of the batch fails, and so does its end */
    bool batch_broken;
    engine_rec **batch;
    size_t nbatch;
    size_t capbatch;
    /* ids of PENDING jobs to look at in the next scheduling step
     * (engine_prereq.c); checks_lost: one could not be added, look at all */
    char (*checks)[ENGINE_JOB_ID_LEN + 1];
    size_t nchecks;
    size_t capchecks;
    bool checks_lost;
    bool checks_woken; /* engine__prereq_wake added some (engine__schedule looks again) */
    bool releasing;    /* in engine__release_pending (not re-entrant) */
};

/* Start the periodic retention pass if a policy is set (engine_retention.c). */
void engine__retention_start(engine *e);

/* Report to the application's log hook (or stderr). */
void engine__log(engine *e, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* CLOCK_REALTIME in seconds: the wall time shown and stored (a job's
 * created, started and ended; the retention's cut-off against them). */
double engine__now(void);

/* CLOCK_MONOTONIC in seconds: every deadline and interval (polls,
 * retries and their backoff, an abort's escalation), which a step of the
 * wall clock (NTP, a VM restored) must neither hold back nor hasten. */
double engine__mono(void);

/* <workdir>/status.json of the job, where its runner records the outcome. */
void engine__status_path(const engine_rec *r, char *out, size_t outlen);

/* The runner's request for job r (everything but env and exit_with_job),
 * the same for every executor; status from engine__status_path. */
void engine__runner_request(const engine *e, const engine_rec *r, const char *status,
                            engine_exec_request *req);

/* Set r->slurm_active (handed to Slurm or to a UWS server: a QUEUED job
 * holding a slot), keeping e->queued_active the count of such jobs. */
void engine__set_active(engine *e, engine_rec *r, bool active);

/* Keep r on the list of its (possibly changed) phase. */
void engine__sync(engine *e, engine_rec *r);

/* A non-final phase change: stored, then reported. */
void engine__change(engine *e, engine_rec *r, engine_phase phase);

/* The job ends at `ended` (0: now), once: later calls do nothing. */
void engine__finish_at(engine *e, engine_rec *r, engine_phase phase, engine_reason reason, int exit_code,
                       const char *message, double ended);

/* engine__finish_at, now. */
void engine__finish(engine *e, engine_rec *r, engine_phase phase, engine_reason reason, int exit_code,
                    const char *message);

/* The runner is gone: finish from its status file, read on the loop
 * (engine_resume, or out of memory). `adopted`: nobody saw it end, so a
 * missing status means the job was lost. `why` describes how the runner
 * itself ended (our child) or is NULL. */
void engine__runner_gone(engine *e, engine_rec *r, bool adopted, const char *why);

/* An adopted runner of job r (EXECUTING) is gone: its outcome is read on
 * the thread pool (engine__outcome_queue, ENGINE_OUTCOME_ADOPTED), or on
 * the loop when out of memory. */
void engine__adopted_gone(engine *e, engine_rec *r);

/* Read the status file of a job from its directory workdir and, for a
 * failed job, whether the file system is full (o->full). No engine state:
 * callable on the thread pool. */
void engine__status_read(const char *workdir, engine_outcome *o);

/* engine__status_read, and without a status the step the claim says
 * was last started (o->claim_step): a Slurm job's end, whose runner ran
 * on another node. No engine state: callable on the thread pool. */
void engine__status_or_step_read(const char *workdir, engine_outcome *o);

/* " in step N (step 1 completed)" for a job that was in a later step of
 * several when it ended without an outcome (the first step's work is
 * done), else "": added to such a job's message. */
const char *engine__step_note(int step, char *buf, size_t len);

/* Read the outcome of a runner that ended from the job's directory
 * workdir: engine__status_read; without a status, the claim, and what is
 * left of the job's process group is killed. No engine state: callable on
 * the thread pool. */
void engine__outcome_read(const char *workdir, engine_outcome *o);

/* Finish job r from an outcome read (engine__outcome_read), as
 * engine__runner_gone does; o's status is released. */
void engine__outcome_finish(engine *e, engine_rec *r, engine_outcome *o, bool adopted, const char *why);

/* Finish job r from a status file read, with its disk-full note (o->full
 * of engine__status_read). */
void engine__finish_noted(engine *e, engine_rec *r, engine_status *st, const char *full);

/* What ended, so what is read (engine__outcome_queue). */
typedef enum engine_outcome_kind {
    ENGINE_OUTCOME_OWN,     /* our runner ended: engine__outcome_read */
    ENGINE_OUTCOME_ADOPTED, /* an adopted runner was found gone: engine__outcome_read */
    ENGINE_OUTCOME_SLURM,   /* Slurm ended the job: engine__status_or_step_read (engine__slurm_outcome) */
    ENGINE_OUTCOME_CLAIM,   /* our runner found the job claimed: the claim (engine__claimed_outcome) */
} engine_outcome_kind;

/* Read job r's outcome on the thread pool, one job at a time and in the
 * order their ends were seen, and finish it on the loop; meanwhile it
 * stays as it is (r->reading set, holding its slot). `why`: how our runner
 * ended (OWN), Slurm's state or NULL when the job left squeue (SLURM),
 * else NULL; p: our runner's watch (OWN, detached and stopped, closed once
 * the outcome is read) or NULL. 0, or -1 out of memory (nothing queued,
 * p not closed). */
int engine__outcome_queue(engine *e, engine_rec *r, engine_outcome_kind kind, const char *why,
                          struct engine_proc *p);

/* The outcomes queued from now on are a new batch: jobs whose ends were
 * seen together (one poll) are finished, and the waiting jobs released
 * and queued ones started, in one scheduling step once the batch's last
 * outcome is back. */
void engine__outcome_batch(engine *e);

/* engine_close: drop the outcomes not yet on the thread pool (their jobs
 * stay as they are in the store: the next engine follows their claims or
 * polls Slurm for them). */
void engine__outcome_close(engine *e);

/* "; ..." into out when the file system of dir is full now (space or
 * inodes), else "" (no engine state: callable on the thread pool). */
void engine__disk_full_note(const char *dir, char *out, size_t outlen);

/* Whether a runner's outcome is its job's own failure. */
bool engine__status_failed(const engine_status *st);

/* Stop watching a runner (it keeps running); the handle closes on the loop. */
void engine__proc_close(engine_proc *p);

/* Start a QUEUED job (engine_start.c): handed to a UWS server, or
 * (local executor) started off the loop, holding a slot meanwhile: its
 * directory is made and its claim read on libuv's thread pool, its start
 * stored (EXECUTING, runner pid 0) on the loop, its runner spawned on the
 * pool and watched on the loop; or (Slurm) its directory made and its
 * batch script written on the pool, then sbatch run from the loop
 * (engine__slurm_submit). 0 if under way (or executing), else it has
 * ended. */
int engine__start(engine *e, engine_rec *r);

/* Queue step 1 of r's start on the thread pool (local: directory and
 * claim; Slurm: directory and batch script, then engine__slurm_send),
 * r holding a slot (starting, slurm_active) meanwhile. 0, or -1 when it
 * could not be queued (r has then ended). */
int engine__start_prepare(engine *e, engine_rec *r);

/* No more local or Slurm start may be put on the thread pool now (so that
 * a hung work root cannot take all of libuv's threads): queued jobs wait. */
bool engine__start_full(const engine *e);

/* Spawn the runner of a job whose start is stored (EXECUTING, runner pid
 * 0), on the loop (engine_resume); 0 if it now executes (else it has
 * ended). */
int engine__spawn(engine *e, engine_rec *r);

/* Watch a runner just spawned for job r (stored EXECUTING): a uv_poll on
 * its pidfd, its pid stored and reported. r NULL: watched only to be
 * reaped. 0, or -1 if it could not be watched (then killed, and r ended). */
int engine__attach_runner(engine *e, engine_rec *r, int pid, int pidfd);

/* Store r's start (EXECUTING, started now, no runner yet); 0, or -1 when
 * the store refused it: r is then QUEUED as before (nothing has run, it
 * keeps its place), and starts wait (engine__start_unstored). */
int engine__store_start(engine *e, engine_rec *r);

/* The store refused job id's start (`why`): no job starts until the store
 * is tried again, after a delay (engine.c's unstored timer; a warning for
 * the first refusal only). */
void engine__start_unstored(engine *e, const char *id, const char *why);

/* A start was stored: starts no longer wait (said once, if they did). */
void engine__start_stored(engine *e);

/* Follow the job's runner claim (engine__exec.h): watch its runner, or end
 * the job from its outcome. 1 if there was a claim, 0 if none. */
int engine__follow_claim(engine *e, engine_rec *r);

/* engine__follow_claim with the claim read already: rc, c and err as
 * engine_exec_read_claim left them. The outcome of an EXECUTING job whose
 * claiming runner is gone is read on the thread pool (engine__adopted_gone),
 * of a QUEUED one on the loop. */
int engine__follow_read_claim(engine *e, engine_rec *r, int rc, const engine_claim *c, const char *err);

/* Our runner of job r found it claimed by another (read on the thread
 * pool: rc, c, err of engine_exec_read_claim): follow that claim, or end
 * the job when there is none. */
void engine__claimed_outcome(engine *e, engine_rec *r, int rc, const engine_claim *c, const char *err);

/* The job's environment: ours, the spec's env, JOB_ID, JOB_OUTPUT_DIR
 * (engine_exec_free_strv); NULL if out of memory. */
char **engine__job_env(const engine_rec *r);

/* Create a job's working directory dir with the spec's `dirs` (no engine
 * state: callable on the thread pool); 0 or -1 (message in err). */
int engine__prepare_dir(const char *dir, const json_t *dirs, char *err, size_t errlen);

/* The live job with this id, or NULL. */
engine_rec *engine__find(const engine *e, const char *id);

/* ---- Slurm executor (engine_slurm.c) ---- */

/* Copy the Slurm settings and set up the poll timer (one more handle). */
int engine__slurm_init(engine *e, const engine_options *o, char *err, size_t errlen);
/* Release the settings (after the timer has closed). */
void engine__slurm_free(engine *e);
/* Close the timer (engine_close). */
void engine__slurm_close(engine *e);
/* Hand a QUEUED job to Slurm (it stays QUEUED until Slurm runs it): its
 * directory and batch script are written on the thread pool
 * (engine__start_prepare), then engine__slurm_send. 0 if under way, else
 * it has ended. */
int engine__slurm_submit(engine *e, engine_rec *r);
/* Write the fixed batch script into directory workdir (no engine state:
 * callable on the thread pool); 0 or -1 (message in err). */
int engine__slurm_write_script(const char *workdir, char *err, size_t errlen);
/* r's directory and script are written: run sbatch (or first look for an
 * earlier submission, slurm_resumed), r keeping its slot; if that cannot
 * start, r ends. */
void engine__slurm_send(engine *e, engine_rec *r);
/* Abort a job handed to Slurm; 0 or -errno. */
int engine__slurm_abort(engine *e, engine_rec *r, char *err, size_t errlen);
/* The outcomes of a batch are all read (engine_outcome.c): the jobs held
 * until a poll judged their prerequisites are judged again now (one of
 * those may have just ended, and no poll may follow: nothing else to
 * watch), before the engine schedules. */
void engine__slurm_outcomes_done(engine *e);
/* A job found in the store with a Slurm job id: watch it again. */
void engine__slurm_adopt(engine *e, engine_rec *r);
/* Finish job r, which Slurm ended in `state` (NULL: it left squeue),
 * from its status file read on the thread pool (engine__status_read);
 * o's status is released. A status that could not be read for now is
 * read again after the next poll. */
void engine__slurm_outcome(engine *e, engine_rec *r, const char *state, engine_outcome *o);

/* ---- UWS executor (engine_uws.c) ---- */

/* With executor uws: copy the settings, start the HTTP client and the
 * tick (two more handles); otherwise nothing. */
int engine__uws_init(engine *e, const engine_options *o, char *err, size_t errlen);
/* Release the settings. */
void engine__uws_free(engine *e);
/* Drop requests in flight and the metrics.json writes not yet on the
 * thread pool, close the tick and the client (engine_close). */
void engine__uws_close(engine *e);
/* Submit a QUEUED job (it holds a slot meanwhile); 0 if handed over (or
 * retrying), else it has ended. */
int engine__uws_submit(engine *e, engine_rec *r);
/* Abort a job handed to the server; 0 or -errno. */
int engine__uws_abort(engine *e, engine_rec *r, char *err, size_t errlen);
/* A live job found in the store: polled again by its id, or looked up. */
void engine__uws_adopt(engine *e, engine_rec *r);

/* ---- prerequisites (engine_prereq.c) ---- */

/* A job entered memory (submitted or found in the store): if it waits
 * (PENDING), it is looked at in the next scheduling step. */
void engine__prereq_arrived(engine *e, engine_rec *r);
/* r ended, or (Slurm) got a Slurm job id: the jobs waiting for it are
 * looked at in the next scheduling step. */
void engine__prereq_wake(engine *e, engine_rec *r);
/* Release or fail the waiting jobs due for a look (engine__schedule). */
void engine__release_pending(engine *e);
/* Free r's list of waiting jobs. */
void engine__prereq_free(engine_rec *r);
/* Free the engine's jobs to look at (engine_free). */
void engine__prereq_close(engine *e);

/* Make sure adopted runners are polled. */
void engine__watch(engine *e);

/* Release pending jobs, then start queued ones in creation order. */
void engine__schedule(engine *e);

/* One of the engine's handles is closed; the last one frees the engine. */
void engine__handle_closed(engine *e);

#endif
