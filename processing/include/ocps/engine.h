/*
 * engine.h - the OCPS job engine: jobs with UWS phases, a FIFO scheduler
 * with a concurrency limit and prerequisites, a durable job store (SQLite,
 * WAL) and executors (local processes, or Slurm batch jobs: see
 * docs/slurm.md). It knows nothing about SAL:
 * the application gives it argv, environment and opaque metadata, and is
 * told about every phase change.
 *
 * Everything runs on one libuv loop; no call blocks on a job. Jobs run
 * under `ocps-job-runner` (processing/runner), a small detached supervisor
 * in its own session that starts the job in its own process group and
 * working directory, enforces the maximum duration, captures outputs by
 * glob and records the outcome in <workdir>/status.json. So jobs outlive
 * the CSC, and a restarted engine re-adopts them from the store.
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

/* UWS phases. */
typedef enum engine_phase {
    ENGINE_PENDING,   /* created; waiting for prerequisites */
    ENGINE_QUEUED,    /* waiting for a free slot */
    ENGINE_EXECUTING, /* the process runs */
    ENGINE_COMPLETED, /* ended with exit status 0 */
    ENGINE_ERROR,     /* ended otherwise (see reason) */
    ENGINE_ABORTED,   /* stopped by engine_job_abort */
    ENGINE_UNKNOWN    /* lost track (see reason "lost") */
} engine_phase;

/* Why a job ended. */
typedef enum engine_reason {
    ENGINE_REASON_NONE,            /* not ended */
    ENGINE_REASON_SUCCESS,         /* exit status 0 */
    ENGINE_REASON_PIPELINE_FAILED, /* non-zero exit or killed by a signal */
    ENGINE_REASON_TIMEOUT,         /* ran past its maximum duration */
    ENGINE_REASON_ABORTED,         /* engine_job_abort */
    ENGINE_REASON_LOST,            /* the process vanished while nobody watched */
    ENGINE_REASON_INFRASTRUCTURE,  /* could not be started (spawn, workdir, runner) */
    ENGINE_REASON_PREREQUISITE     /* a prerequisite failed, was aborted or is unknown */
} engine_reason;

/* Exit code reported for an aborted job. */
#define ENGINE_EXIT_ABORTED 255
/* Job ids: 32 lower-case hex characters. */
#define ENGINE_JOB_ID_LEN 32
/* The longest work directory of a job (work root, '/', id), in bytes. */
#define ENGINE_WORKDIR_MAX 1023
/* The longest work root (engine_open refuses a longer one), in bytes. */
#define ENGINE_WORK_ROOT_MAX (ENGINE_WORKDIR_MAX - 1 - ENGINE_JOB_ID_LEN)

/* What to run. The engine copies everything it is given. */
typedef struct engine_job_spec {
    const char *const *argv;         /* NULL-terminated; argv[0] is looked up in PATH; never a shell */
    const char *const *env;          /* NULL-terminated NAME=VALUE added to the CSC's environment;
                                      * JOB_ID and JOB_OUTPUT_DIR here replace the defaults (the
                                      * job id, the workdir) */
    const char *const *output_globs; /* NULL-terminated glob patterns, relative to the workdir */
    double max_duration;             /* seconds; <= 0: no limit */
    const char *const *prereqs;      /* NULL-terminated job ids that must end first (may be NULL) */
    bool prereq_must_succeed;        /* a prerequisite that did not complete fails this job */
    json_t *meta;                    /* application data kept with the job (incref'd; may be NULL) */
    const char *simulate;            /* NULL, or "SECONDS:EXITCODE": the runner sleeps and exits
                                      * with that code instead of running argv (simulation mode) */
    int cpus;                        /* Slurm executor: --cpus-per-task of this job; 0: the
                                      * executor's cpus_per_job */
    json_t *uws_body;                /* executor uws: the body of PUT /job (e.g. the reference
                                      * server's command + environment; incref'd); NULL: the argv
                                      * extension {"argv", "environment"} from argv and env */
    const char *const *then_argv;    /* NULL-terminated, or NULL: a second step, run as argv is
                                      * (same directory, log and environment, the rest of
                                      * max_duration) once argv exited 0; the job's outcome is
                                      * then its outcome (executor uws: sent to ocps-engine
                                      * as its extension then_argv, which runs it in the
                                      * job's output directory; refused for the reference) */
    const char *const *dirs;         /* NULL-terminated directories relative to the workdir
                                      * ("out", "a/b"; no "..", not absolute) created with the
                                      * workdir when the job starts, before it runs (may be NULL;
                                      * not with executor uws) */
} engine_job_spec;

/* A job as the engine knows it (read-only for the application). */
typedef struct engine_job {
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_phase phase;
    engine_reason reason;
    double created;         /* UTC unix seconds */
    double started;         /* 0 if it never ran */
    double ended;           /* 0 if not ended */
    int exit_code;          /* 0; the process's code; 128+signal; 255 aborted; -1 unknown */
    const char *workdir;    /* the job's directory (at most ENGINE_WORKDIR_MAX bytes; owned by the engine,
                             * never changes) */
    const char *log_path;   /* <workdir>/ocps.log (as workdir) */
    char message[512];      /* detail for humans (e.g. why it could not start) */
    json_t *meta;           /* the spec's meta */
    json_t *argv;           /* JSON array of the argv run */
    json_t *results;        /* JSON array of captured output paths (bounded) */
    size_t results_total;   /* how many matched in all */
    bool results_truncated; /* results lists only the first max_results */
    bool result_published;  /* engine_job_mark_published was called */
    int queue_position;     /* 1-based while QUEUED, else 0 */
    long long max_rss_kb;   /* largest resident set of one of the job's processes (kB, from the
                             * runner's wait4: the job and its descendants that were waited
                             * for); -1 unknown (not ended, or no status file) */
    /* Slurm executor only (empty strings otherwise): */
    char slurm_job_id[32]; /* Slurm's job id once submitted */
    char slurm_state[32];  /* last state seen (PENDING, RUNNING, COMPLETED...) */
    char slurm_reason[64]; /* Slurm's reason while pending (Resources, Dependency...), or at its end */
    char slurm_nodes[256]; /* node list it ran on */
    /* UWS executor only: */
    char executor_id[64]; /* the UWS server's jobId once submitted ("" before) */
} engine_job;

/* Phase changes. `job` is valid only during the call. */
typedef void (*engine_job_cb)(void *arg, const engine_job *job);

/* Levels of engine_log_cb, as Python logging (and SAL logMessage) has them. */
enum { ENGINE_LOG_DEBUG = 10, ENGINE_LOG_INFO = 20, ENGINE_LOG_WARNING = 30, ENGINE_LOG_ERROR = 40 };
/* A store write failed (disk full, I/O error, the store locked or gone):
 * what the engine reports is then ahead of what it has recorded (a job's
 * end may be reported again after a restart). An application should stop
 * taking work until an operator has looked (a CSC goes to FAULT). */
#define ENGINE_LOG_STORE_FAILED 50

/* What the engine has to say that is not a phase change (e.g. what the
 * retention policy removed); runs on the loop. */
typedef void (*engine_log_cb)(void *arg, int level, const char *message);

/* Where jobs run. */
typedef enum engine_executor {
    ENGINE_EXECUTOR_LOCAL, /* a runner process on this host */
    ENGINE_EXECUTOR_SLURM, /* the same runner, as a Slurm batch job (sbatch) */
    ENGINE_EXECUTOR_UWS    /* a job of a UWS server (uws-api-server API; ocps-engine): docs/uws.md */
} engine_executor;

/* The UWS executor's settings. Jobs are submitted with PUT {url}/job
 * (run_id = the engine's job id, so that a submission whose answer was
 * lost is found again), polled with GET {url}/job/{jobId} every
 * poll_interval, aborted with POST {url}/job/{jobId}/phase PHASE=ABORT
 * (abort_extension) or DELETE {url}/job/{jobId}. Unreachable server or
 * 5xx: retried with backoff (a warning once, then one when it is back);
 * a 4xx answer to PUT ends the job (ERROR, infrastructure, the server's
 * message). All requests are asynchronous (libcurl multi on the loop). */
typedef struct engine_uws_options {
    const char *url;      /* base URL, e.g. http://uws-server/api/v1 */
    const char *token;    /* bearer token, or NULL */
    bool abort_extension; /* the server is ocps-engine: POST .../phase PHASE=ABORT, then_argv */
    double timeout;       /* seconds per request (default 10) */
    double max_backoff;   /* seconds between retries at most (default 30) */
} engine_uws_options;

/* A bearer token from a file (a mounted secret): its first line without
 * surrounding blanks, into out; 0, or -1 with a message (unreadable, no
 * token). Used for engine_uws_options.token and by ocps-engine. */
int engine_uws_read_token(const char *path, char *out, size_t outlen, char *err, size_t errlen);

/* The Slurm executor's settings (NULL / 0: Slurm's default). */
typedef struct engine_slurm_options {
    const char *partition;
    const char *account;
    const char *qos;
    int cpus_per_job;                 /* --cpus-per-task */
    const char *memory;               /* --mem, e.g. "4G" */
    double time_limit;                /* seconds; rounded up to whole minutes (--time) */
    const char *const *extra_options; /* NULL-terminated sbatch options, already validated */
    const char *slurm_conf;           /* SLURM_CONF for sbatch/squeue/scancel, or NULL (inherited) */
    /* Seconds sbatch's "Job violates accounting/QOS policy" refusal is
     * retried before the job ends ERROR (0: 600). Slurm gives that text
     * both for a submit limit that clears as other jobs end and for a job
     * larger or longer than its QOS allows (DenyOnLimit), which never
     * clears. */
    double policy_refusal_limit;
} engine_slurm_options;

typedef struct engine_options {
    const char *work_root;  /* one directory per job: <work_root>/<job_id> (created) */
    const char *store_path; /* SQLite file (created) */
    const char *runner;     /* path of ocps-job-runner */
    int max_concurrent;     /* executing at once (>= 1) */
    /* Jobs waiting to run (PENDING, and QUEUED ones beyond the free
     * slots; one handed to Slurm or a UWS server holds a slot) at most;
     * 0: no limit. A
     * submission beyond it is refused (engine_job_submit: -EAGAIN) and
     * changes nothing; jobs found in the store at engine_open always come
     * back, even beyond it. Bounds the memory of the waiting line. */
    size_t max_waiting;
    double abort_grace; /* seconds between SIGTERM and SIGKILL on abort */
    size_t max_results; /* captured outputs listed at most */
    /* Bytes of a job's output (stdout and stderr) kept in its log: its
     * beginning and its last MiB at most, with a line on what was left
     * out (ocps-job-runner --log-max); 0: all of it. */
    uint64_t job_log_max;
    double poll_interval; /* seconds between checks of adopted jobs (default 0.5) */
    /* Retention of the history (ended jobs whose result was published),
     * each 0 = off, all off by default: a periodic pass removes the work
     * directory and the stored row of the oldest such jobs (by creation)
     * while one limit is exceeded. Live and unpublished jobs are never
     * touched, nor anything outside work_root. A removed job is unknown
     * afterwards (engine_job_get NULL, a prerequisite on it fails). */
    double retention_max_age;     /* seconds since the job ended */
    size_t retention_max_jobs;    /* ended, published jobs kept */
    uint64_t retention_max_bytes; /* disk use (as du) of their work directories */
    double retention_interval;    /* seconds between passes (default 600) */
    engine_log_cb log;            /* NULL: stderr */
    void *log_arg;
    engine_executor executor;   /* ENGINE_EXECUTOR_LOCAL by default */
    engine_slurm_options slurm; /* for ENGINE_EXECUTOR_SLURM (copied) */
    engine_uws_options uws;     /* for ENGINE_EXECUTOR_UWS (copied) */
    /* Start no queued job at engine_open: only once engine_start is
     * called (e.g. once a service is listening: a start that fails after
     * engine_open then runs nothing). */
    bool start_later;
} engine_options;

typedef struct engine engine;

/* mkdir -p path (mode 0755); 0 if it is a directory then, else -1 with a
 * message in err ("... is not a directory", "cannot create ...: ...", an
 * empty or too long path). engine_open makes its work_root with it. */
int engine_make_dirs(const char *path, char *err, size_t errlen);

/* An exclusive lock on the file lock_path (created if missing), held while
 * *fd stays open (close it to release; the process's end releases it too;
 * not inherited across exec), with this process's pid written into the
 * file (when it may be written). 0; or an errno value: EWOULDBLOCK if it is
 * held through another open of the file (another process's, or another in
 * this one), the holder's pid (if it wrote one) then in holder ("" if
 * not); *fd is -1 on error. */
int engine_lock_file(const char *lock_path, int *fd, char *holder, size_t holderlen);

/* Open the engine: create work_root and the store, then re-adopt the jobs
 * of a previous run whose results were not published: running ones are
 * watched again, queued ones re-queued, ended ones reported (a vanished
 * process ends as ENGINE_UNKNOWN / lost). A job is never run twice: a job
 * whose start was stored but whose runner was not (the previous engine
 * died in between) follows the runner that claimed it. cb runs on the loop
 * for every phase change, and once for every re-adopted job in the phase
 * it was found in (after engine_open returns). */
int engine_open(engine **out, uv_loop_t *loop, const engine_options *opts, engine_job_cb cb, void *arg,
                char *err, size_t errlen);

/* Start the queued jobs of an engine opened with start_later, or held
 * by engine_hold (nothing for one that is neither). */
void engine_start(engine *e);

/* Start no more jobs (a service draining before it stops): queued and
 * pending ones stay in the store for the next engine_open, running ones
 * go on and are watched as before. engine_start undoes it. */
void engine_hold(engine *e);

/* A new job id (32 hex characters + NUL): the creation time in
 * milliseconds (12 hex digits), then 80 random bits; ids made later sort
 * after (unless the clock goes back). */
void engine_new_job_id(engine *e, char out[ENGINE_JOB_ID_LEN + 1]);

/* Is id a job id as engine_job_submit takes it (32 lower-case hex)? */
bool engine_job_id_valid(const char *id);

/* Create job `id` (from engine_new_job_id) from `spec`; it is stored
 * before this returns. It waits for its prerequisites (PENDING), then for
 * a slot (QUEUED, FIFO), then runs. An unknown prerequisite id ends it at
 * once (ERROR, reason prerequisite). Errors, each with a message and
 * nothing stored: -EAGAIN while max_waiting jobs wait already; -EINVAL a
 * bad id or spec; -EEXIST the id is taken; -ENOMEM out of memory (outside
 * a batch, a job stored before memory ran out is found at the next
 * engine_open); -ENAMETOOLONG the job's directory would be too long; -EIO
 * the store (a write failed, or its file is gone: engine_store_check). */
int engine_job_submit(engine *e, const char *id, const engine_job_spec *spec, char *err, size_t errlen);

/* 0 while the store's file is the one opened; -EIO with a message (and
 * ENGINE_LOG_STORE_FAILED reported once) once it was found removed or
 * replaced: nothing the engine changes is kept any more, so new jobs are
 * refused (engine_job_submit, engine_batch_begin) until a new engine is
 * opened. Costs one stat of the store's path. */
int engine_store_check(engine *e, char *err, size_t errlen);

/* Write what the store could not record: a job's change or publication
 * whose write failed (disk full, the store locked) is kept in memory and
 * written again every 5 s, here, and at engine_close, so that a restart
 * after the cause is gone neither reports the job again nor runs it. 0
 * when nothing is left (*written: how many were written now), -EIO with
 * the reason and how many are left otherwise. A job's start the store
 * refuses is not kept so: the job stays QUEUED (nothing ran, it keeps its
 * place) and no job starts until the engine tries the start again, after
 * 1 s, then up to every 5 s (one ENGINE_LOG_WARNING). */
int engine_store_flush(engine *e, size_t *written, char *err, size_t errlen);

/* Group commit: the jobs engine_job_submit accepts between
 * engine_batch_begin and engine_batch_end are stored in one transaction,
 * and exist (are reported, scheduled, and found again after a restart)
 * only once engine_batch_end has committed it. Nothing but
 * engine_new_job_id and engine_job_submit may be called in between, so
 * that no other write joins the transaction. Both return 0, or -EIO with a
 * message: begin, no batch is open; end, the batch's jobs are not stored
 * and the engine forgets them. */
int engine_batch_begin(engine *e, char *err, size_t errlen);
int engine_batch_end(engine *e, char *err, size_t errlen);

/* Abort a job: a queued or pending one ends at once; a running one gets
 * SIGTERM (its process group), SIGKILL after abort_grace (with Slurm:
 * scancel --batch --signal=TERM, then scancel); logs and outputs stay.
 * Idempotent: aborting an ended job, or one being aborted, does nothing and
 * returns 0 with err saying so ("job ID had already ended (PHASE)"; err is
 * "" when the abort was started). Unknown id: -ENOENT with a message; a
 * store error: -EIO. */
int engine_job_abort(engine *e, const char *id, char *err, size_t errlen);

/* The job with this id, or NULL. Valid until the next engine call. Only
 * live jobs are kept in memory (not ended, or ended and not published);
 * an ended, published job is read back from the store. */
const engine_job *engine_job_get(engine *e, const char *id);

/* The store's sequence number of the job with this id (as engine_job_get
 * finds it), or 0 if there is none. The store gives each job its own,
 * never given again (also across restarts, and once the job is
 * forgotten): it tells a job from a later one made with the same id,
 * whatever the wall clock did. */
int64_t engine_job_seq(engine *e, const char *id);

/* Record that the application published the job's final result (so a
 * restart does not report it again); the job then leaves memory once its
 * notifications are delivered. 0 (again) for a job already published. */
int engine_job_mark_published(engine *e, const char *id);

/* Forget an ended job: its stored row goes and it is unknown afterwards
 * (engine_job_get NULL, not listed); a phase change already queued may
 * still be delivered. Its work directory is left to the caller. -EBUSY
 * (with a message) if it has not ended, -ENOENT if unknown. */
int engine_job_forget(engine *e, const char *id, char *err, size_t errlen);

/* engine_job_list's callback: `job` is valid only during the call; a
 * non-zero return stops the walk. It must not call into the engine. */
typedef int (*engine_job_list_cb)(void *arg, const engine_job *job);

/* Every job the engine knows (live and history), in creation order: one
 * read of the store (the live ones as in memory). */
int engine_job_list(engine *e, engine_job_list_cb cb, void *arg, char *err, size_t errlen);

/* A walk of every stored job away from the loop (GET /job of a long
 * history must not stall it). Made on the loop; engine_job_lister_walk then
 * runs on any one thread at a time and touches nothing of the engine: it
 * reads the store through its own read-only connection, in creation order,
 * a page of jobs at a time (each page one short read transaction: a job
 * committed or changed during the walk may be seen either way), each as
 * stored (a live job's queue_position is 0). NULL if out of memory. */
typedef struct engine_job_lister engine_job_lister;
engine_job_lister *engine_job_lister_new(const engine *e);

/* The walk (cb as for engine_job_list): 0, or -EIO with a message. */
int engine_job_lister_walk(engine_job_lister *l, engine_job_list_cb cb, void *arg, char *err, size_t errlen);

/* Free a lister (NULL allowed), on any thread, once its walk is over. */
void engine_job_lister_free(engine_job_lister *l);

/* The live jobs (those in memory: not ended, or ended and not yet
 * published), executing ones first, then queued, pending and ended ones,
 * each in creation order, at most `max` of them (0: all). No store read.
 * cb as for engine_job_list. */
void engine_job_list_live(engine *e, size_t max, engine_job_list_cb cb, void *arg);

/* One page of the history (ended jobs whose result was published), newest
 * first: at most `max` jobs created before the cursor `before` (0: from
 * the newest; else a *next of an earlier call). One bounded read of the
 * store (an index seek, whatever the length of the history). *next is the
 * cursor of the following page, 0 if there is none. cb as for
 * engine_job_list. */
int engine_job_list_history(engine *e, int64_t before, size_t max, engine_job_list_cb cb, void *arg,
                            int64_t *next, char *err, size_t errlen);

/* Number of jobs in memory in `phase` (for a final phase: ended jobs not
 * yet published). */
size_t engine_count(const engine *e, engine_phase phase);

/* The executor's backend as last seen: -1 none (the local executor), 1
 * answering, 0 not (the latest request to the UWS server, or the latest
 * squeue, failed). */
int engine_backend_up(const engine *e);

/* The executor the engine was opened with. */
engine_executor engine_get_executor(const engine *e);

/* Change the concurrency limit (a new configuration). */
void engine_set_max_concurrent(engine *e, int max_concurrent);

/* Change max_waiting (engine_options); jobs waiting beyond a lowered limit
 * stay. */
void engine_set_max_waiting(engine *e, size_t max_waiting);

/* Change abort_grace, max_results and job_log_max (engine_options) for the
 * jobs started from now on (and aborts from now on). */
void engine_set_job_limits(engine *e, const engine_options *o);

/* The line of waiting jobs against its bound (max_waiting). */
typedef struct engine_waiting_info {
    size_t waiting;             /* jobs waiting, as max_waiting counts them */
    size_t max_waiting;         /* the bound, 0 none */
    unsigned long long refused; /* submissions refused by it since engine_open */
} engine_waiting_info;
engine_waiting_info engine_get_waiting(const engine *e);

/* Change the retention policy (a new configuration): the fields
 * retention_* of `o`, the others are ignored. */
void engine_set_retention(engine *e, const engine_options *o);

/* Lower-case UWS phase name ("completed"...) and reason name ("success"...). */
const char *engine_phase_name(engine_phase phase);
const char *engine_reason_name(engine_reason reason);

/* Is the phase final? */
bool engine_phase_final(engine_phase phase);

/* Called once a closed engine has been freed. */
typedef void (*engine_close_cb)(void *arg);

/* Stop watching and close the store; running jobs keep running and are
 * re-adopted by the next engine_open. `e` is freed on the loop once its
 * handles have closed, then cb(arg) runs (cb may be NULL); `e` must not be
 * used after this call. */
void engine_close(engine *e, engine_close_cb cb, void *arg);

#endif
