/* engine_run.c - starting a job's runner and reading its outcome; see
 * engine__internal.h. */
#include "engine__internal.h"
#include "ocps/child_cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* ---- outcome of a runner ----------------------------------------------- */

void engine__status_path(const engine_rec *r, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/status.json", r->st.job.workdir);
}

void engine__runner_request(const engine *e, const engine_rec *r, const char *status,
                            engine_exec_request *req)
{
    *req = (engine_exec_request){
        .runner = e->runner,
        .workdir = r->st.job.workdir,
        .status_path = status,
        .log_path = r->st.job.log_path,
        .timeout = json_number_value(json_object_get(r->st.spec, "max_duration")),
        .grace = e->abort_grace,
        .globs = json_object_get(r->st.spec, "globs"),
        .max_results = e->max_results,
        .log_max = e->job_log_max,
        .simulate = json_string_value(json_object_get(r->st.spec, "simulate")),
        .argv = json_object_get(r->st.spec, "argv"),
        .then = json_object_get(r->st.spec, "then"),
    };
}

static void engine_take_results(engine_rec *r, engine_status *st)
{
    json_decref(r->st.job.results);
    r->st.job.results = st->results;
    st->results = NULL;
    r->st.job.results_total = st->results_total;
    r->st.job.results_truncated = st->results_truncated;
    r->st.job.max_rss_kb = st->max_rss_kb;
}

/* A failed job's file system is full when less than this (or an eighth of
 * a small one) is free to it: most likely why it failed, said with its
 * exit status. (The runner's reserved status file, 16 KiB, is given back
 * once the outcome is written, so a full disk has about that much free.) */
#define ENGINE_DISK_FULL_BYTES (1024 * 1024)

void engine__disk_full_note(const char *dir, char *out, size_t outlen)
{
    struct statvfs v;
    out[0] = '\0';
    if (dir == NULL || dir[0] == '\0' || statvfs(dir, &v) != 0 || (v.f_flag & ST_RDONLY) != 0) {
        return; /* a read-only one reports nothing free */
    }
    uint64_t unit = v.f_frsize != 0 ? v.f_frsize : v.f_bsize;
    uint64_t avail = (uint64_t)v.f_bavail * unit;
    uint64_t size = (uint64_t)v.f_blocks * unit;
    bool no_space = avail < ENGINE_DISK_FULL_BYTES && avail < size / 8;
    bool no_inodes = v.f_files > 0 && v.f_favail == 0 && v.f_ffree == 0; /* some report no count */
    char kib[40];
    snprintf(kib, sizeof kib, "%llu KiB", (unsigned long long)(avail / 1024));
    if (no_space || no_inodes) {
        snprintf(out, outlen, "; the file system of its directory is full (%s%s%s free)", no_space ? kib : "",
                 no_space && no_inodes ? " and " : "", no_inodes ? "no inode" : "");
    }
}

/* Whether a runner's outcome is its job's own failure (the case where a
 * full file system is named as the likely cause). */
bool engine__status_failed(const engine_status *st)
{
    return st->spawn_error[0] == '\0' && !st->aborted && !st->timed_out && st->exit_code != 0;
}

/* "step N of M (step 1 completed)" then sep when a later step of a job of
 * several ended it (the first step's work is done), else "". */
static const char *engine_step_prefix(const engine_status *st, const char *sep, char *buf, size_t len)
{
    buf[0] = '\0';
    if (st->steps > 1 && st->step > 1) {
        snprintf(buf, len, "step %d of %d (step 1 completed)%s", st->step, st->steps, sep);
    }
    return buf;
}

/* The phase, reason and message of a runner's outcome; full: the disk-full
 * note of a failed job (engine__disk_full_note). */
static void engine_classify(const engine_rec *r, const engine_status *st, const char *full,
                            engine_phase *phase, engine_reason *reason, int *exit_code, char *msg,
                            size_t msglen)
{
    *phase = ENGINE_ERROR;
    *exit_code = st->exit_code;
    msg[0] = '\0';
    char step[64];
    if (st->spawn_error[0] != '\0') {
        *reason = ENGINE_REASON_INFRASTRUCTURE;
        snprintf(msg, msglen, "%s%s", engine_step_prefix(st, ": ", step, sizeof step), st->spawn_error);
        return;
    }
    engine_step_prefix(st, " ", step, sizeof step);
    if (st->aborted && r->st.abort_requested) {
        *phase = ENGINE_ABORTED;
        *reason = ENGINE_REASON_ABORTED;
        *exit_code = ENGINE_EXIT_ABORTED;
        snprintf(msg, msglen, "aborted");
    } else if (st->aborted) { /* its runner got a SIGTERM the engine did not send */
        *reason = ENGINE_REASON_INFRASTRUCTURE;
        *exit_code = ENGINE_EXIT_ABORTED;
        snprintf(msg, msglen,
                 "stopped by a SIGTERM the engine did not send (a shutdown, an operator's kill)");
    } else if (st->timed_out) {
        *reason = ENGINE_REASON_TIMEOUT;
        snprintf(msg, msglen, "%sexceeded its maximum duration of %g s", step,
                 json_number_value(json_object_get(r->st.spec, "max_duration")));
    } else if (st->exit_code == 0) {
        *phase = ENGINE_COMPLETED;
        *reason = ENGINE_REASON_SUCCESS;
    } else if (st->signal != 0) {
        *reason = ENGINE_REASON_PIPELINE_FAILED;
        snprintf(msg, msglen, "%skilled by signal %d%s", step, st->signal, full);
    } else {
        *reason = ENGINE_REASON_PIPELINE_FAILED;
        snprintf(msg, msglen, "%sexited with code %d%s", step, st->exit_code, full);
    }
}

void engine__finish_noted(engine *e, engine_rec *r, engine_status *st, const char *full)
{
    char msg[600];
    engine_phase phase;
    engine_reason reason;
    int exit_code;
    engine_classify(r, st, full, &phase, &reason, &exit_code, msg, sizeof msg);
    engine_take_results(r, st);
    engine__finish_at(e, r, phase, reason, exit_code, msg, st->ended);
}

/* After a runner died without an outcome: kill what is left of its job's
 * process group (the job's leader died with the runner, PR_SET_PDEATHSIG,
 * but not its children) and say so in out. Whether the job had started.
 * No engine state: callable on the thread pool. */
static bool engine_kill_orphans(const char *workdir, char *out, size_t outlen)
{
    char err[1300];
    engine_claim c;
    out[0] = '\0';
    if (engine_exec_read_claim(workdir, &c, err, sizeof err) != 0 || c.job_pid <= 0) {
        return false;
    }
    int n = engine_exec_kill_job_group(&c);
    char step[64];
    engine__step_note(c.job_lines, step, sizeof step);
    if (n > 0) {
        snprintf(out, outlen, "%s; %d process%s left in the job's process group %d killed", step, n,
                 n == 1 ? "" : "es", c.job_pid);
    } else {
        snprintf(out, outlen, "%s; no process left in the job's process group %d", step, c.job_pid);
    }
    return true;
}

const char *engine__step_note(int step, char *buf, size_t len)
{
    buf[0] = '\0';
    if (step > 1) {
        snprintf(buf, len, " in step %d (step 1 completed)", step);
    }
    return buf;
}

void engine__status_or_step_read(const char *workdir, engine_outcome *o)
{
    engine__status_read(workdir, o);
    if (o->rc != 0 && o->rc != -EAGAIN) {
        char err[1300];
        engine_claim c;
        o->claim_step = engine_exec_read_claim(workdir, &c, err, sizeof err) == 0 ? c.job_lines : 0;
    }
}

void engine__status_read(const char *workdir, engine_outcome *o)
{
    char path[ENGINE_WORKDIR_MAX + 64];
    memset(o, 0, sizeof *o);
    snprintf(path, sizeof path, "%s/status.json", workdir);
    o->rc = engine_exec_read_status(path, &o->st, o->err, sizeof o->err);
    if (o->rc == 0 && engine__status_failed(&o->st)) {
        engine__disk_full_note(workdir, o->full, sizeof o->full);
    }
}

void engine__outcome_read(const char *workdir, engine_outcome *o)
{
    engine__status_read(workdir, o);
    if (o->rc != 0 && o->rc != -EAGAIN) {
        o->started = engine_kill_orphans(workdir, o->killed, sizeof o->killed);
    }
}

void engine__outcome_finish(engine *e, engine_rec *r, engine_outcome *o, bool adopted, const char *why)
{
    if (o->rc == 0) {
        engine__finish_noted(e, r, &o->st, o->full);
        engine_status_clear(&o->st);
        return;
    }
    if (o->rc == -EAGAIN) {
        /* this process is out of descriptors or memory: the outcome is
         * on disk, read at the next poll (the job stays executing) */
        engine__log(e, ENGINE_LOG_WARNING, "Job %s: %s; reading it again shortly", r->st.job.id, o->err);
        r->adopted = true;
        engine__watch(e);
        return;
    }
    char msg[1800];
    if (r->st.abort_requested) {
        snprintf(msg, sizeof msg, "aborted; the runner ended without recording an outcome%s", o->killed);
        engine__finish(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED, msg);
    } else if (o->rc == -ENOENT && (adopted || o->started)) {
        snprintf(msg, sizeof msg, "the runner (pid %d) %s%s%s without recording an outcome%s",
                 r->st.runner_pid, why != NULL ? "ended (" : "vanished", why != NULL ? why : "",
                 why != NULL ? ")" : "", o->killed);
        engine__finish(e, r, ENGINE_UNKNOWN, ENGINE_REASON_LOST, -1, msg);
    } else {
        snprintf(msg, sizeof msg, "%s%s%s%s", o->err, why ? "; runner " : "", why ? why : "", o->killed);
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, msg);
    }
}

/* The runner is gone: finish from its status file, read on the loop. */
void engine__runner_gone(engine *e, engine_rec *r, bool adopted, const char *why)
{
    engine_outcome o;
    engine__outcome_read(r->st.job.workdir, &o);
    engine__outcome_finish(e, r, &o, adopted, why);
}

void engine__adopted_gone(engine *e, engine_rec *r)
{
    r->adopted = false; /* not polled while its outcome is read */
    if (engine__outcome_queue(e, r, ENGINE_OUTCOME_ADOPTED, NULL, NULL) != 0) {
        engine__runner_gone(e, r, true, NULL); /* out of memory: read here */
    }
}

/* ---- starting runners -------------------------------------------------- */

static void engine_on_proc_closed(uv_handle_t *h)
{
    engine_proc *p = h->data;
    engine *e = p->e;
    close(p->pidfd);
    free(p);
    engine__handle_closed(e);
}

void engine__proc_close(engine_proc *p)
{
    if (p->rec != NULL) {
        p->rec->proc = NULL;
        p->rec = NULL;
    }
    uv_close((uv_handle_t *)&p->poll, engine_on_proc_closed);
}

/* The runner's pidfd is readable: it has exited. */
static void engine_on_exit(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    engine_proc *p = h->data;
    engine *e = p->e;
    engine_rec *r = p->rec;
    int64_t exit_status = 0;
    int term_signal = 0;
    if (engine_exec_reap(p->pid, &exit_status, &term_signal) != 0) {
        return; /* not yet */
    }
    if (r == NULL) {
        engine__proc_close(p);
        return;
    }
    engine__outcome_batch(e);
    /* detached from the job; its descriptor is kept until the outcome is read */
    uv_poll_stop(&p->poll);
    p->rec = NULL;
    r->proc = NULL;
    if (term_signal == 0 && exit_status == ENGINE_RUNNER_EXIT_CLAIMED) {
        engine__proc_close(p);
        /* another runner (of a CSC that died while starting it) has the job:
         * its claim is read on the thread pool (engine__claimed_outcome) */
        r->st.runner_pid = 0;
        r->st.runner_start_time = 0;
        if (engine__outcome_queue(e, r, ENGINE_OUTCOME_CLAIM, NULL, NULL) != 0) {
            char err[1300];
            engine_claim c;
            int rc = engine_exec_read_claim(r->st.job.workdir, &c, err, sizeof err); /* out of memory */
            engine__claimed_outcome(e, r, rc, &c, err);
        }
        engine__schedule(e);
        return;
    }
    char why[96];
    if (term_signal == 0 &&
        (exit_status == ENGINE_RUNNER_EXIT_NO_SPACE || exit_status == ENGINE_RUNNER_EXIT_SETUP)) {
        engine__proc_close(p);
        char msg[1400];
        snprintf(msg, sizeof msg, "the job did not run: its runner could not %s in %s%s",
                 exit_status == ENGINE_RUNNER_EXIT_NO_SPACE ? "write its files (no space left on the device)"
                                                            : "write its files",
                 r->st.job.workdir,
                 exit_status == ENGINE_RUNNER_EXIT_NO_SPACE ? "" : " (the reason is in ocps.log)");
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, msg);
        engine__schedule(e);
        return;
    }
    if (term_signal != 0) {
        snprintf(why, sizeof why, "killed by signal %d", term_signal);
    } else {
        snprintf(why, sizeof why, "exited with status %lld", (long long)exit_status);
    }
    if (engine__outcome_queue(e, r, ENGINE_OUTCOME_OWN, why, p) != 0) {
        engine__runner_gone(e, r, false, why); /* out of memory: read here */
        engine__proc_close(p);
    }
    engine__schedule(e);
}

/* The runner's environment: ours, the spec's env, JOB_ID, JOB_OUTPUT_DIR
 * (each unless the spec's env sets it). */
char **engine__job_env(const engine_rec *r)
{
    json_t *env = json_object_get(r->st.spec, "env");
    size_t n = json_is_array(env) ? json_array_size(env) : 0;
    char **extra = calloc(n + 3, sizeof *extra);
    if (extra == NULL) {
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        extra[k++] = strdup(json_string_value(json_array_get(env, i)));
    }
    bool own_id = false;
    bool own_output_dir = false;
    for (size_t i = 0; i < n; i++) {
        const char *v = json_string_value(json_array_get(env, i));
        own_id = own_id || (v != NULL && strncmp(v, "JOB_ID=", 7) == 0);
        own_output_dir = own_output_dir || (v != NULL && strncmp(v, "JOB_OUTPUT_DIR=", 15) == 0);
    }
    size_t len = strlen(r->st.job.workdir) + 32;
    extra[k] = own_id ? NULL : malloc(len);
    if (extra[k] != NULL) {
        snprintf(extra[k++], len, "JOB_ID=%s", r->st.job.id);
    }
    extra[k] = own_output_dir ? NULL : malloc(len);
    if (extra[k] != NULL) {
        snprintf(extra[k++], len, "JOB_OUTPUT_DIR=%s", r->st.job.workdir);
    }
    char **all = child_cmd_env(NULL, extra);
    engine_exec_free_strv(extra);
    return all;
}

/* The job's working directory dir, mode 0755, and its spec's `dirs`
 * under it (no engine state: callable on libuv's thread pool). A stale
 * status file there is removed by the runner that claims the job, never
 * by the engine: it may be the outcome of a runner the engine lost track
 * of. */
int engine__prepare_dir(const char *dir, const json_t *dirs, char *err, size_t errlen)
{
    if ((mkdir(dir, 0755) != 0 && errno != EEXIST) || chmod(dir, 0755) != 0) {
        snprintf(err, errlen, "cannot create working directory %s: %s", dir, strerror(errno));
        return -1;
    }
    /* the spec's directories (checked relative, without ..), parents first */
    for (size_t i = 0; i < json_array_size(dirs); i++) {
        const char *d = json_string_value(json_array_get(dirs, i));
        char path[2200];
        if (d == NULL || snprintf(path, sizeof path, "%s/%s", dir, d) >= (int)sizeof path) {
            snprintf(err, errlen, "job directory %zu: bad or too long", i);
            return -1;
        }
        for (char *p = path + strlen(dir) + 1;; p++) {
            bool end = *p == '\0';
            if (*p == '/' || end) {
                *p = '\0';
                if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                    snprintf(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
                    return -1;
                }
                if (end) {
                    break;
                }
                *p = '/';
            }
        }
    }
    return 0;
}

/* Follow the claim read (rc, c, err of engine_exec_read_claim): watch its
 * runner when alive, else end the job from its outcome, read on the
 * thread pool when `later` and the job is EXECUTING (else on the loop).
 * 1 if there was a claim (the job executes or has ended, or its outcome
 * is being read), 0 if there is none. */
static int engine_follow(engine *e, engine_rec *r, int rc, const engine_claim *c, const char *err, bool later)
{
    if (rc == -ENOENT) {
        return 0;
    }
    if (rc != 0) {
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, err);
        return 1;
    }
    if (r->st.job.started <= 0) {
        r->st.job.started = engine__now();
    }
    r->st.runner_pid = c->runner_pid;
    r->st.runner_start_time = c->runner_start;
    if (!engine_exec_alive(c->runner_pid, c->runner_start)) {
        if (later && r->st.job.phase == ENGINE_EXECUTING) {
            engine__adopted_gone(e, r);
        } else {
            engine__runner_gone(e, r, true, NULL);
        }
        return 1;
    }
    r->adopted = true;
    engine__change(e, r, ENGINE_EXECUTING); /* stores the runner, then reports */
    engine__watch(e);
    if (r->st.abort_requested) {
        engine_exec_signal(c->runner_pid, c->runner_start, SIGTERM);
    }
    return 1;
}

/* The job's runner claim (engine__exec.h), if any: its runner is watched
 * when alive, else the job ends from its status (both read on the loop:
 * engine_resume). 1 if there was a claim (the job executes or has ended),
 * 0 if there is none. */
int engine__follow_claim(engine *e, engine_rec *r)
{
    char err[1300];
    engine_claim c;
    int rc = engine_exec_read_claim(r->st.job.workdir, &c, err, sizeof err);
    return engine_follow(e, r, rc, &c, err, false);
}

int engine__follow_read_claim(engine *e, engine_rec *r, int rc, const engine_claim *c, const char *err)
{
    return engine_follow(e, r, rc, c, err, true);
}

void engine__claimed_outcome(engine *e, engine_rec *r, int rc, const engine_claim *c, const char *err)
{
    if (engine_follow(e, r, rc, c, err, true) == 0) {
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1,
                       "the runner found the job claimed, but there is no claim to follow");
    }
}

static int engine_spawn_runner(engine *e, engine_rec *r, int *pid, int *pidfd, char *err, size_t errlen)
{
    char status[1200];
    engine__status_path(r, status, sizeof status);
    char **env = engine__job_env(r);
    if (env == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    engine_exec_request req;
    engine__runner_request(e, r, status, &req);
    req.env = env;
    int rc = engine_exec_spawn(&req, pid, pidfd, err, errlen);
    child_cmd_env_free(env);
    return rc;
}

/* Test hook: with OCPS_ENGINE_TEST_EXIT_AFTER_SPAWN=<code> in its
 * environment, the process exits with that code right after a runner was
 * spawned and before anything more is stored: the crash that must not make
 * a job run twice (tests/test_engine.c). */
static void engine_test_exit_after_spawn(void)
{
    const char *code = getenv("OCPS_ENGINE_TEST_EXIT_AFTER_SPAWN");
    if (code != NULL && code[0] != '\0') {
        _exit(atoi(code));
    }
}

int engine__attach_runner(engine *e, engine_rec *r, int pid, int pidfd)
{
    engine_proc *p = calloc(1, sizeof *p);
    int rc = p != NULL ? uv_poll_init(e->loop, &p->poll, pidfd) : UV_ENOMEM;
    if (rc != 0) {
        /* not watchable: stop it now rather than lose it */
        kill(pid, SIGKILL);
        int64_t code;
        int sig;
        while (engine_exec_reap(pid, &code, &sig) != 0) {
            usleep(1000);
        }
        close(pidfd);
        free(p);
        if (r != NULL) {
            char err[200];
            snprintf(err, sizeof err, "cannot watch the runner: %s", uv_strerror(rc));
            r->st.job.started = 0;
            engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, err);
        }
        return -1;
    }
    e->open_handles++;
    p->e = e;
    p->pid = pid;
    p->pidfd = pidfd;
    p->poll.data = p;
    uv_poll_start(&p->poll, UV_READABLE, engine_on_exit);
    if (r == NULL) {
        return 0; /* watched only to be reaped */
    }
    engine_test_exit_after_spawn(); /* the start is stored: a new engine follows the claim */
    p->rec = r;
    r->proc = p;
    r->st.runner_pid = pid;
    char state;
    if (engine_exec_start_time(pid, &r->st.runner_start_time, &state) != 0) {
        r->st.runner_start_time = 0;
    }
    engine__change(e, r, ENGINE_EXECUTING);
    return 0;
}

/* Start the runner of a job whose start is stored (EXECUTING, no runner
 * pid), on the loop (engine_resume); 0 if it now executes (else it has
 * ended). */
int engine__spawn(engine *e, engine_rec *r)
{
    char err[1400];
    int pid = 0;
    int pidfd = -1;
    if (engine_spawn_runner(e, r, &pid, &pidfd, err, sizeof err) != 0) {
        r->st.job.started = 0;
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, err);
        return -1;
    }
    return engine__attach_runner(e, r, pid, pidfd);
}

int engine__store_start(engine *e, engine_rec *r)
{
    engine_phase phase = r->st.job.phase; /* restored if the store refuses */
    double started = r->st.job.started;
    int pid = r->st.runner_pid;
    uint64_t pid_start = r->st.runner_start_time;
    r->st.job.phase = ENGINE_EXECUTING;
    r->st.job.started = engine__now(); /* before the runner can record its end */
    r->st.runner_pid = 0;
    r->st.runner_start_time = 0;
    char serr[512];
    if (e->store != NULL && engine_store_update(e->store, &r->st, serr, sizeof serr) != 0) {
        /* not run, not failed: QUEUED as the store still has it, tried
         * again once the store takes writes (a lock held by another
         * process, a full disk) */
        r->st.job.phase = phase;
        r->st.job.started = started;
        r->st.runner_pid = pid;
        r->st.runner_start_time = pid_start;
        engine__start_unstored(e, r->st.job.id, serr);
        return -1;
    }
    engine__start_stored(e);
    return 0;
}
