/*
 * ocps-engine: the job service. Serves the uws-api-server API
 * (docs/uws.md) with the project's job engine and its SQLite store; jobs
 * survive a restart of the service (running ones are re-adopted).
 *
 *   ocps-engine --listen ADDR:PORT --state-dir DIR --work-root DIR
 *               [--base-path /api/v1] [--token-file F] [--max-concurrent N]
 *               [--abort-grace SECONDS] [--max-body BYTES] [--port-file F]
 *               [--job-log-max MB] [--drain-timeout SECONDS] [--allow-unauthenticated]
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "ocps/engine.h"
#include "ocps/exe_path.h"
#include "ocps/sal_errout.h"
#include "ocps/sal_exit_grace.h"
#include "ocps/uws_service.h"

typedef struct cli {
    const char *listen;
    const char *state_dir;
    const char *work_root;
    const char *base_path;
    const char *token_file;
    bool allow_unauthenticated; /* a non-loopback --listen without a token (a trusted network) */
    const char *port_file;
    int max_concurrent;
    size_t max_waiting;
    double abort_grace;
    double job_log_max_mb; /* a job's ocps.log keeps this much of its output; 0 all */
    size_t max_body;
    double drain_timeout; /* a SIGTERM waits this long for running jobs to end; 0 not at all */
} cli;

typedef struct app {
    uv_loop_t *loop;
    engine *e;
    uws_service *svc;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    bool stopping;
    double drain_timeout;  /* --drain-timeout */
    bool draining;         /* a signal came: no new job, waiting for the running ones */
    uint64_t drain_end;    /* uv_now() at which the drain gives up (ms) */
    uv_timer_t drain_tick; /* the drain's progress log and its timeout */
    sal_exit_grace grace;  /* once stopping: how long closing may take */
    int exit_code;
} app;

/* Once stopping, how long the engine may take to close before the process
 * ends all the same: a job's start or outcome read blocked on a work root
 * that hangs (NFS) cannot be cancelled; the next start takes those jobs up
 * from the store. */
#define CLOSE_GRACE_SECONDS 10.0

/* The drain's progress is logged this often (ms) while jobs run. */
#define DRAIN_LOG_PERIOD_MS 30000
/* A drain's start names at most this many of the running jobs. */
#define DRAIN_LOG_IDS 8

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: ocps-engine --state-dir DIR --work-root DIR [--listen ADDR:PORT (127.0.0.1:8080)]\n"
        "                   [--base-path PATH (/api/v1)] [--token-file FILE] [--max-concurrent N (2)]\n"
        "                   [--max-waiting N (10000)] [--abort-grace SECONDS (1)] [--max-body BYTES "
        "(1048576)]\n"
        "                   [--port-file FILE] [--job-log-max MB (1000)] [--drain-timeout SECONDS (0)]\n"
        "                   [--allow-unauthenticated]\n"
        "Serves the uws-api-server API, /metrics, the /status page and /healthz (see docs/uws.md).\n"
        "--max-waiting: jobs waiting to run at most (0: no limit); PUT /job beyond it is answered 503.\n"
        "--job-log-max: MB (10^6 bytes) of a job's output kept in its ocps.log, its beginning and its\n"
        "  last MB (0: all).\n"
        "--drain-timeout: on SIGTERM/SIGINT, take no new job (PUT /job: 503) and wait up to SECONDS for\n"
        "  the running jobs to end before stopping (a second signal stops at once); 0: stop at once,\n"
        "  running jobs go on (detached) and are re-adopted at the next start.\n"
        "A non-loopback --listen needs --token-file, or --allow-unauthenticated: clients that send no\n"
        "  token (the Python OCPS, as for uws-api-server) on a network that only trusted clients reach.\n");
}

static int parse_cli(int argc, char **argv, cli *c)
{
    *c = (cli){.listen = "127.0.0.1:8080",
               .base_path = "/api/v1",
               .max_concurrent = 2,
               .max_waiting = 10000,
               .abort_grace = 1.0,
               .job_log_max_mb = 1000};
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(opt, "--allow-unauthenticated") == 0) {
            c->allow_unauthenticated = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ocps-engine: %s needs a value\n", opt);
            return -1;
        }
        const char *val = argv[++i];
        char *end = NULL;
        if (strcmp(opt, "--listen") == 0) {
            c->listen = val;
        } else if (strcmp(opt, "--state-dir") == 0) {
            c->state_dir = val;
        } else if (strcmp(opt, "--work-root") == 0) {
            c->work_root = val;
        } else if (strcmp(opt, "--base-path") == 0) {
            c->base_path = val;
        } else if (strcmp(opt, "--token-file") == 0) {
            c->token_file = val;
        } else if (strcmp(opt, "--port-file") == 0) {
            c->port_file = val;
        } else if (strcmp(opt, "--max-concurrent") == 0) {
            long n = strtol(val, &end, 10);
            if (*end != '\0' || n < 1 || n > 100000) {
                fprintf(stderr, "ocps-engine: --max-concurrent %s: expected an integer >= 1\n", val);
                return -1;
            }
            c->max_concurrent = (int)n;
        } else if (strcmp(opt, "--max-waiting") == 0) {
            long long n = strtoll(val, &end, 10);
            if (*end != '\0' || end == val || n < 0) {
                fprintf(stderr, "ocps-engine: --max-waiting %s: expected an integer >= 0 (0: no limit)\n",
                        val);
                return -1;
            }
            c->max_waiting = (size_t)n;
        } else if (strcmp(opt, "--abort-grace") == 0) {
            c->abort_grace = strtod(val, &end);
            if (*end != '\0' || end == val ||
                !(c->abort_grace >= 0 && c->abort_grace <= 3600)) { /* not NaN */
                fprintf(stderr, "ocps-engine: --abort-grace %s: expected seconds from 0 to 3600\n", val);
                return -1;
            }
        } else if (strcmp(opt, "--drain-timeout") == 0) {
            c->drain_timeout = strtod(val, &end);
            if (*end != '\0' || end == val || !(c->drain_timeout >= 0 && c->drain_timeout <= 86400)) {
                fprintf(stderr, "ocps-engine: --drain-timeout %s: expected seconds from 0 to 86400\n", val);
                return -1;
            }
        } else if (strcmp(opt, "--job-log-max") == 0) {
            c->job_log_max_mb = strtod(val, &end);
            if (*end != '\0' || end == val || !(c->job_log_max_mb >= 0 && c->job_log_max_mb <= 1e9)) {
                fprintf(stderr, "ocps-engine: --job-log-max %s: expected MB from 0 (no limit) to 1e9\n", val);
                return -1;
            }
        } else if (strcmp(opt, "--max-body") == 0) {
            long long n = strtoll(val, &end, 10);
            if (*end != '\0' || n < 1024) {
                fprintf(stderr, "ocps-engine: --max-body %s: expected bytes >= 1024\n", val);
                return -1;
            }
            c->max_body = (size_t)n;
        } else {
            fprintf(stderr, "ocps-engine: unknown option %s\n", opt);
            return -1;
        }
    }
    if (c->state_dir == NULL || c->work_root == NULL) {
        fprintf(stderr, "ocps-engine: --state-dir and --work-root are required\n");
        return -1;
    }
    if (c->base_path[0] != '\0' && c->base_path[0] != '/') {
        fprintf(stderr, "ocps-engine: --base-path must start with '/'\n");
        return -1;
    }
    return 0;
}

static void drain_check_soon(app *a);

static void on_job(void *arg, const engine_job *job)
{
    app *a = arg;
    uws_service_job_changed(a->svc, job);
    if (a->draining && engine_phase_final(job->phase)) {
        size_t running = engine_count(a->e, ENGINE_EXECUTING);
        sal_errout_say("ocps-engine: draining: job %s ended (%s); %zu still running", job->id,
                       engine_phase_name(job->phase), running);
        if (running == 0) {
            drain_check_soon(a);
        }
    }
}

/* The engine's messages on stderr, never waiting for a stalled reader. */
static void on_engine_log(void *arg, int level, const char *message)
{
    (void)arg;
    sal_errout_say("ocps-engine: %s%s",
                   level >= ENGINE_LOG_ERROR     ? "error: "
                   : level >= ENGINE_LOG_WARNING ? "warning: "
                                                 : "",
                   message);
}

/* Stop the service and the engine now: jobs still running go on
 * (detached) and are re-adopted at the next start. */
static void app_stop(app *a)
{
    a->stopping = true;
    sal_errout_linger(1.0); /* its last lines may wait (1 s in all) for a slow reader */
    size_t running = engine_count(a->e, ENGINE_EXECUTING);
    if (running > 0) {
        sal_errout_say(
            "ocps-engine: stopping (running jobs: %zu; they go on and are re-adopted at the next start)",
            running);
    } else {
        sal_errout_say("ocps-engine: stopping (no job runs)");
    }
    uws_service_close(a->svc);
    a->svc = NULL;
    engine_close(a->e, NULL, NULL);
    a->e = NULL;
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->drain_tick, NULL);
    sal_exit_grace_start(&a->grace, a->loop, CLOSE_GRACE_SECONDS, "ocps-engine", &a->exit_code);
}

/* The drain's timer: stop once no job runs or the timeout has come, else
 * say what is still awaited. */
static void on_drain_tick(uv_timer_t *t)
{
    app *a = t->data;
    if (a->stopping) {
        return;
    }
    size_t running = engine_count(a->e, ENGINE_EXECUTING);
    uint64_t now = uv_now(a->loop);
    if (running == 0) {
        sal_errout_say("ocps-engine: drained: no job runs");
        app_stop(a);
    } else if (now >= a->drain_end) {
        sal_errout_say("ocps-engine: drain timeout (--drain-timeout %g s): running jobs: %zu",
                       a->drain_timeout, running);
        app_stop(a);
    } else {
        uint64_t left = a->drain_end - now;
        sal_errout_say("ocps-engine: draining: running jobs: %zu, %.0f s left", running,
                       (double)left / 1000.0);
        uv_timer_start(&a->drain_tick, on_drain_tick, left < DRAIN_LOG_PERIOD_MS ? left : DRAIN_LOG_PERIOD_MS,
                       0);
    }
}

/* Look at the drain on the next loop turn (not from inside the engine's
 * callback: stopping closes the engine). */
static void drain_check_soon(app *a)
{
    if (!a->stopping) {
        uv_timer_start(&a->drain_tick, on_drain_tick, 0, 0);
    }
}

/* The ids of the running jobs named in the drain's first log line. */
typedef struct drain_ids {
    char text[DRAIN_LOG_IDS * 40 + 8];
    size_t len;
    size_t named;
} drain_ids;

/* Name a running job in the drain's first log line. */
static int drain_log_job(void *arg, const engine_job *job)
{
    drain_ids *ids = arg;
    if (job->phase == ENGINE_EXECUTING && ids->named++ < DRAIN_LOG_IDS) {
        int n = snprintf(ids->text + ids->len, sizeof ids->text - ids->len, " %s", job->id);
        if (n > 0 && (size_t)n < sizeof ids->text - ids->len) {
            ids->len += (size_t)n;
        }
    }
    return 0;
}

/* The first signal under --drain-timeout with jobs running: take no new
 * job, start no queued one, wait for the running ones. */
static void drain_start(app *a, int signum)
{
    a->draining = true;
    uws_service_drain(a->svc);
    engine_hold(a->e);
    size_t running = engine_count(a->e, ENGINE_EXECUTING);
    drain_ids ids = {.len = 0};
    engine_job_list_live(a->e, 0, drain_log_job, &ids);
    sal_errout_say(
        "ocps-engine: %s: draining: no new job is taken (PUT /job: 503), queued jobs wait for the next "
        "start; waiting up to %g s for the running jobs (%zu; a second signal stops at once):%s%s",
        signum == SIGTERM ? "SIGTERM" : "SIGINT", a->drain_timeout, running, ids.text,
        ids.named > DRAIN_LOG_IDS ? " ..." : "");
    a->drain_end = uv_now(a->loop) + (uint64_t)(a->drain_timeout * 1000.0);
    uint64_t first = (uint64_t)(a->drain_timeout * 1000.0);
    uv_timer_start(&a->drain_tick, on_drain_tick, first < DRAIN_LOG_PERIOD_MS ? first : DRAIN_LOG_PERIOD_MS,
                   0);
}

/* SIGTERM/SIGINT: stop, or with --drain-timeout and jobs running drain
 * first; a signal during the drain stops at once. */
static void on_signal(uv_signal_t *h, int signum)
{
    app *a = h->data;
    if (a->stopping) {
        return;
    }
    if (a->draining) {
        sal_errout_say("ocps-engine: %s during the drain: stopping now",
                       signum == SIGTERM ? "SIGTERM" : "SIGINT");
        app_stop(a);
    } else if (a->drain_timeout > 0 && engine_count(a->e, ENGINE_EXECUTING) > 0) {
        drain_start(a, signum);
    } else {
        app_stop(a);
    }
}

/* The length of path made absolute (as realpath will, but for links). */
static size_t absolute_length(const char *path)
{
    char cwd[PATH_MAX];
    if (path[0] == '/' || getcwd(cwd, sizeof cwd) == NULL) {
        return strlen(path);
    }
    return strlen(cwd) + 1 + strlen(path);
}

/* One ocps-engine per state directory: an exclusive lock on its
 * ocps-engine.lock, held while this process lives (not inherited by the
 * job runners it starts: they outlive it). 0, or -1 with a message. */
static int lock_state_dir(const char *state_dir)
{
    char path[PATH_MAX + 32];
    char holder[32];
    int fd;
    snprintf(path, sizeof path, "%s/ocps-engine.lock", state_dir);
    int rc = engine_lock_file(path, &fd, holder, sizeof holder);
    if (rc == EWOULDBLOCK) {
        fprintf(stderr, "ocps-engine: another ocps-engine%s%s%s uses --state-dir %s (it is locked)\n",
                holder[0] ? " (pid " : "", holder, holder[0] ? ")" : "", state_dir);
    } else if (rc != 0) {
        fprintf(stderr, "ocps-engine: %s: %s\n", path, strerror(rc));
    }
    return rc == 0 ? 0 : -1; /* fd stays open: the lock */
}

/* mkdir -p path, then its absolute path in out; 0, or -1 with a message
 * naming the option. */
static int make_dir(const char *option, const char *path, char out[PATH_MAX])
{
    char err[PATH_MAX + 64];
    if (engine_make_dirs(path, err, sizeof err) != 0) {
        fprintf(stderr, "ocps-engine: %s %s: %s\n", option, path, err);
        return -1;
    }
    if (realpath(path, out) == NULL) {
        fprintf(stderr, "ocps-engine: %s %s: %s\n", option, path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Write the port to path (atomically: a temporary, renamed); 0, or -1
 * with errno (nothing left behind). */
static int write_port_file(const char *path, unsigned port)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (f == NULL) {
        return -1;
    }
    bool written = fprintf(f, "%u\n", port) > 0;
    int saved = errno;
    if (fclose(f) != 0 || !written || rename(tmp, path) != 0) {
        saved = written ? errno : saved;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}

/* How long making and locking the state directory and making the work
 * root may each take at start-up, in seconds: a hung NFS mount never
 * answers (and a stat may still be answered from the client's cache while
 * the lock file's open waits for the server). */
#define START_DIRS_SECONDS 10

/* How long opening the job store (and resuming its jobs) and the
 * service's look at the jobs' directories may each take, in seconds.
 * Longer than the directories': a large store is legitimately slower
 * (SQLite reads every unfinished job, and may first recover the journal
 * of an engine that crashed; each live job's directory is looked at, one
 * NFS round trip or more each), while a hung mount never answers: a
 * generous limit only delays its report. */
#define START_JOBS_SECONDS 60

/* The start-up's stages, in order, each with its own limit. */
typedef enum start_stage {
    START_STATE_DIR, /* making --state-dir */
    START_LOCK,      /* locking it */
    START_WORK_ROOT, /* making --work-root */
    START_STORE,     /* opening the job store, resuming its jobs */
    START_SERVICE,   /* the service: the jobs' directories, then it listens */
    START_DONE
} start_stage;

/* The start-up's watchdog: main names each stage as it begins it; the
 * watchdog's thread exits the process when a stage has not finished
 * within its limit (a hung mount), saying which. */
typedef struct start_watch {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    pthread_t thread;
    const char *state_dir; /* as given: for the messages */
    const char *work_root;
    int jobs_seconds; /* the limit of START_STORE and START_SERVICE */
    start_stage stage;
} start_watch;

/* START_JOBS_SECONDS; for tests only, OCPS_ENGINE_TEST_START_LIMIT (1 to
 * START_JOBS_SECONDS) shortens it. */
static int start_jobs_seconds(void)
{
    const char *text = getenv("OCPS_ENGINE_TEST_START_LIMIT");
    char *end = NULL;
    long v = text != NULL ? strtol(text, &end, 10) : 0;
    bool valid = text != NULL && end != text && *end == '\0' && v >= 1 && v <= START_JOBS_SECONDS;
    return valid ? (int)v : START_JOBS_SECONDS;
}

/* Say which stage has not finished within `seconds`. */
static void start_refuse(const start_watch *w, start_stage stage, int seconds)
{
    static const char hung[] = "(a hung mount?); not starting";
    if (stage == START_STORE) {
        fprintf(stderr,
                "ocps-engine: opening the job store in --state-dir %s and resuming its jobs under "
                "--work-root %s has not finished in %d s %s\n",
                w->state_dir, w->work_root, seconds, hung);
    } else if (stage == START_SERVICE) {
        fprintf(stderr,
                "ocps-engine: looking at the jobs' directories under --work-root %s has not finished in "
                "%d s %s\n",
                w->work_root, seconds, hung);
    } else {
        bool root = stage == START_WORK_ROOT;
        fprintf(stderr, "ocps-engine: %s %s%s has not answered for %d s %s\n",
                root ? "--work-root" : "--state-dir", root ? w->work_root : w->state_dir,
                stage == START_LOCK ? " (its lock file)" : "", seconds, hung);
    }
}

/* The watchdog's thread: each stage in its limit, or the process exits 1. */
static void *start_watch_run(void *arg)
{
    start_watch *w = arg;
    pthread_mutex_lock(&w->lock);
    while (w->stage != START_DONE) {
        start_stage stage = w->stage;
        int seconds = stage < START_STORE ? START_DIRS_SECONDS : w->jobs_seconds;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += seconds;
        int wait = 0;
        while (w->stage == stage && wait != ETIMEDOUT) {
            wait = pthread_cond_timedwait(&w->cond, &w->lock, &until);
        }
        if (w->stage == stage) {
            start_refuse(w, stage, seconds);
            /* at once, without exit handlers: one that stops every thread
             * (LeakSanitizer's check) would wait for main, in the mount */
            _exit(1);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Main begins `stage` (START_DONE: the start-up is over). */
static void start_watch_next(start_watch *w, start_stage stage)
{
    pthread_mutex_lock(&w->lock);
    w->stage = stage;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Start watching c's start-up, at its first stage; 0, or -1 with a
 * message. */
static int start_watch_begin(start_watch *w, const cli *c)
{
    *w = (start_watch){
        .state_dir = c->state_dir, .work_root = c->work_root, .jobs_seconds = start_jobs_seconds()};
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc == 0) {
        rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        rc = rc == 0 ? pthread_cond_init(&w->cond, &attr) : rc;
        pthread_condattr_destroy(&attr);
    }
    if (rc == 0 && (rc = pthread_mutex_init(&w->lock, NULL)) != 0) {
        pthread_cond_destroy(&w->cond);
    }
    if (rc == 0 && (rc = pthread_create(&w->thread, NULL, start_watch_run, w)) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
    }
    if (rc != 0) {
        fprintf(stderr, "ocps-engine: cannot start a thread: %s\n", strerror(rc));
        return -1;
    }
    return 0;
}

/* The start-up is over (done or failed): the watchdog's thread ends. */
static void start_watch_end(start_watch *w)
{
    start_watch_next(w, START_DONE);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

/* Make --state-dir, lock it, make --work-root (their absolute paths in
 * state_dir and work_root), naming each stage to w: 0, or -1 with a
 * message. */
static int open_dirs(const cli *c, start_watch *w, char state_dir[PATH_MAX], char work_root[PATH_MAX])
{
    size_t root_max = ENGINE_WORK_ROOT_MAX;
    if (absolute_length(c->work_root) > root_max) {
        fprintf(stderr,
                "ocps-engine: --work-root %s: too long (%zu bytes as an absolute path; at most %zu)\n",
                c->work_root, absolute_length(c->work_root), root_max);
        return -1;
    }
    if (make_dir("--state-dir", c->state_dir, state_dir) != 0) {
        return -1;
    }
    start_watch_next(w, START_LOCK);
    if (lock_state_dir(state_dir) != 0) {
        return -1;
    }
    start_watch_next(w, START_WORK_ROOT);
    return make_dir("--work-root", c->work_root, work_root);
}

/* Open the engine on its store (runner `runner`) and its service on so,
 * naming each stage to w: 0, or -1 with a message (nothing left open). */
static int open_service(app *a, const cli *c, uws_service_options *so, start_watch *w, const char *store,
                        const char *runner)
{
    char err[1024];
    engine_options eo = {.work_root = c->work_root,
                         .store_path = store,
                         .runner = runner,
                         .max_concurrent = c->max_concurrent,
                         .max_waiting = c->max_waiting,
                         .abort_grace = c->abort_grace,
                         .job_log_max = (uint64_t)(c->job_log_max_mb * 1e6),
                         .log = on_engine_log,
                         .log_arg = a,
                         .start_later = true}; /* no job starts unless the service listens */
    start_watch_next(w, START_STORE);
    if (engine_open(&a->e, a->loop, &eo, on_job, a, err, sizeof err) != 0) {
        fprintf(stderr, "ocps-engine: %s\n", err);
        return -1;
    }
    start_watch_next(w, START_SERVICE);
    so->work_root = c->work_root;
    if (uws_service_open(&a->svc, a->loop, a->e, so, err, sizeof err) != 0) {
        fprintf(stderr, "ocps-engine: %s\n", err);
        engine_close(a->e, NULL, NULL);
        uv_run(a->loop, UV_RUN_DEFAULT);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli c;
    if (parse_cli(argc, argv, &c) != 0) {
        usage(stderr);
        return 2;
    }
    char token[4096];
    char err[1024];
    if (c.token_file != NULL &&
        engine_uws_read_token(c.token_file, token, sizeof token, err, sizeof err) != 0) {
        fprintf(stderr, "ocps-engine: --token-file %s\n", err);
        return 2;
    }
    uws_service_options so = {.listen = c.listen,
                              .base_path = c.base_path,
                              .token = c.token_file != NULL ? token : NULL,
                              .allow_unauthenticated = c.allow_unauthenticated,
                              .max_body = c.max_body};
    if (uws_service_check_options(&so, err, sizeof err) != 0) { /* before any job can start */
        fprintf(stderr, "ocps-engine: %s\n", err);
        return 2;
    }
    if (c.allow_unauthenticated && c.token_file == NULL) {
        fprintf(stderr,
                "ocps-engine: WARNING: --allow-unauthenticated: no bearer token is asked for; "
                "whoever reaches --listen %s can run commands as this account\n",
                c.listen);
    }
    signal(SIGPIPE, SIG_IGN);
    char store[PATH_MAX + 32];
    char runner[1024];
    /* Jobs see absolute paths (their working directory is their own). */
    char state_dir[PATH_MAX];
    char work_root[PATH_MAX];
    app a = {.loop = uv_default_loop(), .drain_timeout = c.drain_timeout};
    /* every step until it listens, watched: a hung mount would hold it
     * there, never listening and saying nothing, while a pod's probes fail */
    start_watch watch;
    if (start_watch_begin(&watch, &c) != 0) {
        return 1;
    }
    int rc = open_dirs(&c, &watch, state_dir, work_root);
    if (rc == 0) {
        c.work_root = work_root;
        snprintf(store, sizeof store, "%s/ocps-engine.sqlite", state_dir);
        exe_path_runner(runner, sizeof runner);
        rc = open_service(&a, &c, &so, &watch, store, runner);
    }
    start_watch_end(&watch);
    if (rc != 0) {
        return 1;
    }
    memset(token, 0, sizeof token);
    unsigned port = uws_service_port(a.svc);
    if (c.port_file != NULL && write_port_file(c.port_file, port) != 0) {
        /* whoever asked for it waits for it: stop (no job has started) rather than leave it waiting */
        fprintf(stderr, "ocps-engine: --port-file %s: %s\n", c.port_file, strerror(errno));
        uws_service_close(a.svc);
        engine_close(a.e, NULL, NULL);
        uv_run(a.loop, UV_RUN_DEFAULT);
        return 1;
    }
    fprintf(stderr, "ocps-engine: listening on port %u, base path \"%s\", runner %s\n", port, c.base_path,
            runner);
    engine_start(a.e);
    uv_timer_init(a.loop, &a.drain_tick);
    a.drain_tick.data = &a;
    uv_signal_init(a.loop, &a.sigint);
    uv_signal_init(a.loop, &a.sigterm);
    a.sigint.data = &a;
    a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_run(a.loop, UV_RUN_DEFAULT);
    sal_exit_grace_close(&a.grace, a.loop);
    uv_loop_close(a.loop);
    return a.exit_code;
}
