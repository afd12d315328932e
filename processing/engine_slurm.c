/*
 * engine_slurm.c - the Slurm executor (see engine__internal.h and
 * docs/slurm.md). A job handed to Slurm runs the same ocps-job-runner as a
 * local job, as the batch step of a Slurm job: sbatch is given a fixed
 * two-line script (written into the job's workdir) that execs its
 * arguments, and the runner's command line follows the script name as
 * sbatch arguments, so no argument is ever parsed by a shell.
 *
 * sbatch, squeue and scancel run as child processes (uv_spawn with pipes):
 * the loop never waits for the controller. Submitted jobs are polled with
 * one squeue for all of them on a timer. The Slurm job id is stored as soon
 * as sbatch returns it; a job found in the store without one (the previous
 * engine died between sbatch and the store) is looked up by its Slurm job
 * name (ocps-<job id>) before it is submitted again, and the runner's claim
 * file refuses a second run in any case.
 */
#include "engine__internal.h"
#include "ocps/child_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENGINE_SLURM_SCRIPT "ocps-slurm.sh"
#define ENGINE_SLURM_OUT_MAX (1024 * 1024)
#define ENGINE_SLURM_POLL_MIN 0.2
#define ENGINE_SLURM_RETRY_MAX 30.0     /* seconds between submissions while the controller is away */
#define ENGINE_SLURM_NEVER_CONFIRM 5.0  /* seconds a never-start reason stands before the job is ended */
#define ENGINE_SLURM_POLICY_LIMIT 600.0 /* default seconds an accounting/QOS policy refusal is retried */

/* ---- child processes with captured output ------------------------------- */

typedef struct engine_cmd engine_cmd;

/* A command's end: status is its exit status (or 128+signal, or -1 when it
 * could not start); out and errout are NUL-terminated captures. */
typedef void (*engine_cmd_done)(engine *e, engine_cmd *c, int status, const char *out, const char *errout);

struct engine_cmd {
    engine *e;
    child_cmd *cmd;
    engine_cmd_done done;
    char job_id[ENGINE_JOB_ID_LEN + 1]; /* the job it is about (a Slurm id for scancel, "" for a poll) */
};

/* The command has ended and its output is read. */
static void engine_cmd_ended(void *arg, int status, bool timed_out, const char *out, const char *errout)
{
    (void)timed_out; /* no time limit: Slurm's commands have their own */
    engine_cmd *c = arg;
    engine *e = c->e;
    e->slurm.running_cmds--;
    if (e->slurm.poll_cmd == c) {
        e->slurm.poll_cmd = NULL;
    }
    if (!e->closed && c->done != NULL) {
        c->done(e, c, status, out, errout);
    }
    free(c);
    engine__handle_closed(e);
}

/* The environment of a Slurm command: `base` (or ours) with SLURM_CONF set
 * when configured. child_cmd_env_free. */
static char **engine_cmd_env(const engine *e, char *const *base)
{
    char conf[1200];
    char *extra[] = {conf, NULL};
    if (e->slurm.slurm_conf == NULL) {
        extra[0] = NULL;
    } else {
        snprintf(conf, sizeof conf, "SLURM_CONF=%s", e->slurm.slurm_conf);
    }
    return child_cmd_env(base, extra);
}

/* Run argv (argv[0] looked up in PATH); done runs on the loop when it has
 * ended and its output is read. The command, or NULL when it could not
 * start (done is not called then; message in err). */
static engine_cmd *engine_cmd_start(engine *e, char *const *argv, char *const *env, engine_cmd_done done,
                                    const char *job_id, char *err, size_t errlen)
{
    engine_cmd *c = calloc(1, sizeof *c);
    char **cenv = engine_cmd_env(e, env);
    if (c == NULL || cenv == NULL) {
        free(c);
        child_cmd_env_free(cenv);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->e = e;
    c->done = done;
    snprintf(c->job_id, sizeof c->job_id, "%s", job_id != NULL ? job_id : "");
    int rc = child_cmd_start(&c->cmd, e->loop, argv, cenv, 0, ENGINE_SLURM_OUT_MAX, engine_cmd_ended, c, err,
                             errlen);
    child_cmd_env_free(cenv);
    if (rc != 0) {
        free(c); /* the caller handles the failure */
        return NULL;
    }
    e->open_handles++;
    e->slurm.running_cmds++;
    return c;
}

/* engine_cmd_start: 0 or -1. */
static int engine_cmd_run(engine *e, char *const *argv, char *const *env, engine_cmd_done done,
                          const char *job_id, char *err, size_t errlen)
{
    return engine_cmd_start(e, argv, env, done, job_id, err, errlen) != NULL ? 0 : -1;
}

/* ---- settings ---------------------------------------------------------- */

static int engine_slurm_dup(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL || src[0] == '\0') {
        return 0;
    }
    *dst = strdup(src);
    return *dst != NULL ? 0 : -1;
}

int engine__slurm_init(engine *e, const engine_options *o, char *err, size_t errlen)
{
    engine_slurm *s = &e->slurm;
    uv_timer_init(e->loop, &s->timer);
    s->timer.data = e;
    e->open_handles++;
    e->executor = o->executor;
    const engine_slurm_options *so = &o->slurm;
    s->cpus_per_job = so->cpus_per_job;
    s->time_limit = so->time_limit;
    s->policy_refusal_limit =
        so->policy_refusal_limit > 0 ? so->policy_refusal_limit : ENGINE_SLURM_POLICY_LIMIT;
    int rc = engine_slurm_dup(&s->partition, so->partition) | engine_slurm_dup(&s->account, so->account) |
             engine_slurm_dup(&s->qos, so->qos) | engine_slurm_dup(&s->memory, so->memory) |
             engine_slurm_dup(&s->slurm_conf, so->slurm_conf);
    size_t n = 0;
    while (so->extra_options != NULL && so->extra_options[n] != NULL) {
        n++;
    }
    s->extra_options = calloc(n + 1, sizeof *s->extra_options);
    for (size_t i = 0; s->extra_options != NULL && i < n; i++) {
        rc |= engine_slurm_dup(&s->extra_options[i], so->extra_options[i]);
    }
    if (rc != 0 || s->extra_options == NULL) {
        snprintf(err, errlen, "engine: out of memory");
        return -1;
    }
    return 0;
}

void engine__slurm_free(engine *e)
{
    engine_slurm *s = &e->slurm;
    free(s->partition);
    free(s->account);
    free(s->qos);
    free(s->memory);
    free(s->slurm_conf);
    engine_exec_free_strv(s->extra_options);
    memset(s, 0, sizeof *s);
}

static void engine_slurm_on_timer_closed(uv_handle_t *h)
{
    engine__handle_closed(h->data);
}

void engine__slurm_close(engine *e)
{
    engine_cmd *poll = e->slurm.poll_cmd;
    if (poll != NULL) {
        child_cmd_signal(poll->cmd, SIGTERM); /* a squeue waiting for a slow controller */
    }
    uv_close((uv_handle_t *)&e->slurm.timer, engine_slurm_on_timer_closed);
}

/* ---- polling ----------------------------------------------------------- */

static void engine_slurm_on_timer(uv_timer_t *t);
static bool engine_slurm_retry_due(engine *e);

static void engine_slurm_watch(engine *e)
{
    if (!e->closed && !uv_is_active((uv_handle_t *)&e->slurm.timer)) {
        double iv = e->poll_interval > ENGINE_SLURM_POLL_MIN ? e->poll_interval : ENGINE_SLURM_POLL_MIN;
        uint64_t ms = (uint64_t)(iv * 1000);
        uv_timer_start(&e->slurm.timer, engine_slurm_on_timer, ms, ms);
    }
}

/* One squeue line: "ID|STATE|REASON|NAME|NODES" (the node list last: it
 * is the only field that may be long). */
typedef struct engine_slurm_line {
    char id[32];
    char state[32];
    char reason[64];
    char name[64];
    char nodes[256];
} engine_slurm_line;

static void engine_slurm_field(const char **p, char *dst, size_t dstlen)
{
    const char *end = strpbrk(*p, "|\n");
    size_t n = end != NULL ? (size_t)(end - *p) : strlen(*p);
    snprintf(dst, dstlen, "%.*s", (int)n, *p);
    *p = end != NULL && *end == '|' ? end + 1 : *p + n;
}

/* Find the line of Slurm job `id` in squeue's output: 1 found, 0 not. */
static int engine_slurm_find_line(const char *out, const char *id, engine_slurm_line *l)
{
    size_t idlen = strlen(id);
    for (const char *p = out; p != NULL && *p != '\0';) {
        if (strncmp(p, id, idlen) == 0 && p[idlen] == '|') {
            engine_slurm_field(&p, l->id, sizeof l->id);
            engine_slurm_field(&p, l->state, sizeof l->state);
            engine_slurm_field(&p, l->reason, sizeof l->reason);
            engine_slurm_field(&p, l->name, sizeof l->name);
            engine_slurm_field(&p, l->nodes, sizeof l->nodes);
            return 1;
        }
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    return 0;
}

static bool engine_slurm_state_is(const char *state, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        if (strcmp(state, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

static const char *const engine_slurm_waiting[] = {
    "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", NULL};
static const char *const engine_slurm_running[] = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT",
                                                   "STOPPED", "RESIZING",   NULL};

static int engine_slurm_prereq_failed(engine *e, const engine_rec *r, char *msg, size_t msglen);

/* The job ended in Slurm in `state` (NULL: it left squeue): its runner's
 * status file is read on the thread pool (engine__slurm_outcome finishes
 * it), the job holding its slot and left out of the polls meanwhile. */
static void engine_slurm_finish(engine *e, engine_rec *r, const char *state)
{
    if (engine__outcome_queue(e, r, ENGINE_OUTCOME_SLURM, state, NULL) != 0) {
        engine_outcome o; /* out of memory: read here */
        engine__status_or_step_read(r->st.job.workdir, &o);
        engine__slurm_outcome(e, r, state, &o);
    }
}

/* What Slurm said of the job's end: "STATE" or "STATE: Reason" (the
 * reason of the last poll, when it says more than None/NonZeroExitCode);
 * "" for a job that left squeue. */
static void engine_slurm_said(const engine_rec *r, const char *state, char *buf, size_t len)
{
    const char *why = r->st.job.slurm_reason;
    bool telling = why[0] != '\0' && strcmp(why, "None") != 0 && strcmp(why, "NonZeroExitCode") != 0;
    if (state == NULL || state[0] == '\0') {
        buf[0] = '\0';
    } else if (telling) {
        snprintf(buf, len, "%s: %s", state, why);
    } else {
        snprintf(buf, len, "%s", state);
    }
}

/* The note added to the message of a job that failed on its own (its
 * runner's outcome) when Slurm's end explains it (OUT_OF_MEMORY after a
 * signal 9, a NODE_FAIL, a reason other than NonZeroExitCode): "; Slurm:
 * STATE: Reason", after the disk-full note; else that note alone. */
static void engine_slurm_end_note(const engine_rec *r, const char *state, const char *full, char *buf,
                                  size_t len)
{
    char said[160];
    engine_slurm_said(r, state, said, sizeof said);
    bool plain = said[0] == '\0' || strcmp(said, "COMPLETED") == 0 || strcmp(said, "FAILED") == 0;
    snprintf(buf, len, "%s%s%s", full, plain ? "" : "; Slurm: ", plain ? "" : said);
}

/* The runner's status file is the truth for the exit code and outputs
 * when Slurm did not end the job itself (time limit, scancel, node
 * failure...). A status file that cannot be read for now (no descriptor
 * or memory left) is read again after the next poll: the job stays live
 * meanwhile. */
void engine__slurm_outcome(engine *e, engine_rec *r, const char *state, engine_outcome *o)
{
    char msg[800];
    char said[160];
    int rc = o->rc;
    engine_status *st = &o->st;
    if (rc == -EAGAIN) { /* as engine__outcome_finish does for a local job */
        engine__log(e, ENGINE_LOG_WARNING, "Job %s: %s; reading it again shortly", r->st.job.id, o->err);
        engine_slurm_watch(e);
        return;
    }
    const char *s = state != NULL ? state : "";
    engine_slurm_said(r, state, said, sizeof said);
    char step[64]; /* ended by Slurm in a later step: the first completed */
    engine__step_note(rc == 0 ? st->step : o->claim_step, step, sizeof step);
    engine__set_active(e, r, false);
    if (rc == 0 && st->ended > 0 && r->st.job.started <= 0) {
        r->st.job.started = st->started;
    }
    if (rc == 0) {
        r->st.job.max_rss_kb = st->max_rss_kb; /* also when Slurm ended the job (TIMEOUT, scancel) */
    }
    if (r->st.job.started <= 0) {
        r->st.job.started = engine__now();
    }
    bool never_started = r->st.job.phase == ENGINE_QUEUED;
    if (rc == 0 && !st->aborted) {
        /* it ended on its own: its outcome, whatever came after (with
         * Slurm's word when that explains a failure) */
        char note[ENGINE_FULL_NOTE_MAX + 200];
        engine_slurm_end_note(r, state, o->full, note, sizeof note);
        engine__finish_noted(e, r, st, note);
    } else if (strcmp(s, "TIMEOUT") == 0) {
        snprintf(msg, sizeof msg, "Slurm ended it at its time limit (TIMEOUT)%s", step);
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_TIMEOUT, rc == 0 ? st->exit_code : -1, msg);
    } else if (r->st.abort_requested) {
        engine__finish(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED,
                       never_started ? "aborted before it started (scancel)" : "aborted (scancel)");
    } else if (strcmp(s, "CANCELLED") == 0 && engine_slurm_prereq_failed(e, r, msg, sizeof msg)) {
        /* kill_invalid_depend: Slurm cancels a job whose dependency failed */
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof msg - n, "; Slurm cancelled it (CANCELLED)");
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_PREREQUISITE, -1, msg);
    } else if (strcmp(s, "CANCELLED") == 0) {
        snprintf(msg, sizeof msg, "cancelled in Slurm, not by OCPS (scancel from outside)%s", step);
        engine__finish(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED, msg);
    } else if (rc == 0) { /* the runner got a SIGTERM nobody here sent: Slurm's (preemption, a node going) */
        snprintf(msg, sizeof msg, "stopped by a signal from outside OCPS%s (Slurm: %s)", step,
                 said[0] != '\0' ? said : "gone");
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, st->exit_code, msg);
    } else if (engine_slurm_state_is(s, (const char *const[]){"NODE_FAIL", "BOOT_FAIL", "PREEMPTED",
                                                              "DEADLINE", "FAILED", NULL})) {
        snprintf(msg, sizeof msg, "Slurm ended it (%s)%s before the runner recorded an outcome", said, step);
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, msg);
    } else if (strcmp(s, "OUT_OF_MEMORY") == 0) {
        snprintf(msg, sizeof msg, "Slurm ended it: out of memory (%s)%s", said, step);
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_PIPELINE_FAILED, -1, msg);
    } else {
        snprintf(msg, sizeof msg, "Slurm job %s %s%s%s without an outcome from its runner (%.300s)",
                 r->st.job.slurm_job_id, state != NULL ? "ended " : "left Slurm's queue", said, step, o->err);
        engine__finish(e, r, ENGINE_UNKNOWN, ENGINE_REASON_LOST, -1, msg);
    }
    if (rc == 0) {
        engine_status_clear(st);
        o->rc = -1;
    }
}

static void engine_slurm_set(char *dst, size_t dstlen, const char *src, bool *changed)
{
    if (strncmp(dst, src, dstlen) != 0) {
        snprintf(dst, dstlen, "%s", src);
        *changed = true;
    }
}

static void engine_slurm_cancel(engine *e, const char *slurm_id, bool term_batch);

/* A pending reason that says Slurm will never start the job unless an
 * administrator changes a limit or the job's request: it exceeds a
 * partition's limits (PartitionTimeLimit when its --time is over MaxTime;
 * not PartitionNodeLimit, which Slurm also gives while the nodes it needs
 * are DOWN or DRAINED, nor PartitionConfig), asks for features no node has
 * (BadConstraints), names an account or QOS that is not valid, or exceeds
 * a per-job limit of its association or QOS (Assoc/QOSMax...PerJob...,
 * QOSMin...). Limits on all of a user's jobs together (AssocGrp...,
 * QOSMaxJobsPerUser...) clear as jobs end and are not among them. */
static bool engine_slurm_never_starts(const char *reason)
{
    static const char *const never[] = {"PartitionTimeLimit", "BadConstraints", "InvalidAccount",
                                        "InvalidQOS", NULL};
    if (engine_slurm_state_is(reason, never)) {
        return true;
    }
    bool per_job_max = (strncmp(reason, "AssocMax", 8) == 0 || strncmp(reason, "QOSMax", 6) == 0) &&
                       strstr(reason, "PerJob") != NULL;
    return per_job_max || strncmp(reason, "QOSMin", 6) == 0;
}

/* A waiting job in reason `reason` (a never-start one, seen at this poll):
 * true once the reason has stood for ENGINE_SLURM_NEVER_CONFIRM seconds
 * (a later poll confirms it): the job is then cancelled in Slurm and ends
 * ERROR / infrastructure with Slurm's reason, freeing its slot (an
 * aborted one ends as aborted once Slurm has cancelled it). */
static bool engine_slurm_end_never_starting(engine *e, engine_rec *r, const char *state, const char *reason)
{
    double now = engine__mono();
    if (r->slurm_never_since <= 0) {
        r->slurm_never_since = now;
        return false;
    }
    if (now - r->slurm_never_since < ENGINE_SLURM_NEVER_CONFIRM || r->st.abort_requested) {
        return false;
    }
    char msg[600];
    snprintf(msg, sizeof msg,
             "Slurm will never start it (%s: %s): its request exceeds a limit of the cluster (e.g. --time "
             "over the partition's MaxTime: see slurm.time_limit); cancelled",
             state, reason);
    engine_slurm_cancel(e, r->st.job.slurm_job_id, false);
    engine__set_active(e, r, false);
    engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, msg);
    return true;
}

/* Apply one squeue line to a job handed to Slurm. */
static void engine_slurm_apply(engine *e, engine_rec *r, const engine_slurm_line *l)
{
    engine_job *j = &r->st.job;
    bool changed = false;
    r->slurm_seen = true;
    engine_slurm_set(j->slurm_state, sizeof j->slurm_state, l->state, &changed);
    if (strcmp(l->nodes, "(null)") != 0 && l->nodes[0] != '\0') {
        engine_slurm_set(j->slurm_nodes, sizeof j->slurm_nodes, l->nodes, &changed);
    }
    if (engine_slurm_state_is(l->state, engine_slurm_waiting) &&
        strcmp(l->reason, "DependencyNeverSatisfied") == 0) {
        engine_slurm_cancel(e, j->slurm_job_id, false);
        engine__set_active(e, r, false);
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_PREREQUISITE, -1,
                       "a prerequisite did not succeed (Slurm: DependencyNeverSatisfied); cancelled");
    } else if (engine_slurm_state_is(l->state, engine_slurm_waiting) &&
               engine_slurm_never_starts(l->reason) &&
               engine_slurm_end_never_starting(e, r, l->state, l->reason)) {
        return; /* ended */
    } else if (engine_slurm_state_is(l->state, engine_slurm_waiting)) {
        if (!engine_slurm_never_starts(l->reason)) {
            r->slurm_never_since = 0; /* it may start: waited for anew if the reason comes back */
        }
        engine_slurm_set(j->slurm_reason, sizeof j->slurm_reason, l->reason, &changed);
        if (changed && j->phase == ENGINE_QUEUED) {
            snprintf(j->message, sizeof j->message, "Slurm job %s %s (%s)", j->slurm_job_id, l->state,
                     l->reason);
            engine__change(e, r, ENGINE_QUEUED);
        }
    } else if (engine_slurm_state_is(l->state, engine_slurm_running)) {
        if (j->phase == ENGINE_QUEUED) {
            j->slurm_reason[0] = '\0';
            j->message[0] = '\0';
            j->started = engine__now();
            engine__set_active(e, r, false); /* now counted as executing */
            engine__change(e, r, ENGINE_EXECUTING);
        }
    } else {
        /* ended: Slurm's reason (JobLaunchFailure, OutOfMemory...) goes
         * into the job's message (engine_slurm_said) */
        snprintf(j->slurm_reason, sizeof j->slurm_reason, "%s", l->reason);
        engine_slurm_finish(e, r, l->state);
    }
}

/* The second step of an abort: scancel (SIGKILL after Slurm's KillWait)
 * once the grace period has passed. */
static void engine_slurm_kill_late(engine *e, engine_rec *r);

static bool engine_slurm_release_held(engine *e);

static void engine_slurm_poll_done(engine *e, engine_cmd *c, int status, const char *out, const char *errout)
{
    (void)c;
    e->slurm.polling = false;
    bool all_gone = status != 0 && strstr(errout, "Invalid job id") != NULL;
    if (status != 0 && !all_gone) {
        if (!e->slurm.unreachable) {
            e->slurm.unreachable = true;
            engine__log(e, ENGINE_LOG_WARNING,
                        "Slurm is not answering (squeue exited with %d: %.300s); jobs stay as they are "
                        "and polling goes on",
                        status, errout);
        }
        return;
    }
    if (e->slurm.unreachable) {
        e->slurm.unreachable = false;
        engine__log(e, ENGINE_LOG_INFO, "Slurm answers again; polling resumed");
    }
    bool ended = false;
    engine__outcome_batch(e); /* the jobs seen ended now end together */
    /* running jobs first: a prerequisite's end is known when its waiting
     * jobs are looked at (engine_slurm_finish, in this order) */
    static const int phases[] = {ENGINE_EXECUTING, ENGINE_QUEUED};
    for (size_t k = 0; k < sizeof phases / sizeof phases[0]; k++) {
        engine_rec *next;
        for (engine_rec *r = e->lists[phases[k]].head; r != NULL; r = next) {
            next = r->next;
            /* a job submitted while this squeue ran is not in its answer */
            if (!r->slurm_in_poll || r->st.job.slurm_job_id[0] == '\0' ||
                engine_phase_final(r->st.job.phase)) {
                continue;
            }
            r->slurm_in_poll = false;
            engine_slurm_line l;
            char name[64];
            snprintf(name, sizeof name, "ocps-%s", r->st.job.id);
            /* a Slurm job id with another name is not ours: a slurmctld that
             * crashed before saving its state forgets jobs and reuses ids */
            if (engine_slurm_find_line(out, r->st.job.slurm_job_id, &l) && strcmp(l.name, name) == 0) {
                engine_slurm_apply(e, r, &l);
            } else {
                engine_slurm_finish(e, r, NULL);
            }
            if (engine_phase_final(r->st.job.phase)) {
                ended = true;
            } else {
                engine_slurm_kill_late(e, r);
            }
        }
    }
    ended = engine_slurm_release_held(e) || ended;
    if (ended) {
        engine__schedule(e);
    }
}

/* The Slurm job ids being watched, comma-separated, each job marked as
 * in this poll; NULL if none. */
static char *engine_slurm_ids(engine *e)
{
    size_t cap = 64;
    size_t len = 0;
    char *ids = malloc(cap);
    if (ids == NULL) {
        return NULL;
    }
    ids[0] = '\0';
    for (int p = ENGINE_QUEUED; p <= ENGINE_EXECUTING; p++) {
        for (engine_rec *r = e->lists[p].head; r != NULL; r = r->next) {
            const char *id = r->st.job.slurm_job_id;
            size_t n = r->reading ? 0 : strlen(id); /* ended: its outcome is being read */
            r->slurm_in_poll = n > 0;
            if (n == 0) {
                continue;
            }
            if (len + n + 2 > cap) {
                cap = 2 * (len + n + 2);
                char *v = realloc(ids, cap);
                if (v == NULL) {
                    free(ids);
                    return NULL;
                }
                ids = v;
            }
            len += (size_t)sprintf(ids + len, "%s%s", len > 0 ? "," : "", id);
        }
    }
    if (len == 0) {
        free(ids);
        return NULL;
    }
    return ids;
}

static void engine_slurm_on_timer(uv_timer_t *t)
{
    engine *e = t->data;
    bool retries = engine_slurm_retry_due(e);
    if (e->slurm.polling) {
        return;
    }
    char *ids = engine_slurm_ids(e);
    if (ids == NULL) {
        if (!retries) {
            uv_timer_stop(t);
        }
        return;
    }
    /* --me: the controller sends only our jobs (REQUEST_JOB_USER_INFO);
     * with more than one -j id squeue would otherwise load the whole
     * cluster's job table and filter it itself */
    char *argv[] = {"squeue", "--me", "-h", "-t", "all", "-j", ids, "-o", "%i|%T|%r|%j|%N", NULL};
    char err[256];
    if ((e->slurm.poll_cmd =
             engine_cmd_start(e, argv, NULL, engine_slurm_poll_done, NULL, err, sizeof err)) != NULL) {
        e->slurm.polling = true;
    } else if (!e->slurm.unreachable) {
        e->slurm.unreachable = true;
        engine__log(e, ENGINE_LOG_WARNING, "Slurm polling: %s", err);
    }
    free(ids);
}

/* ---- submission -------------------------------------------------------- */

/* The fixed batch script: it execs its arguments (the runner's command
 * line, given to sbatch after the script), so nothing is parsed by a shell.
 * Written on the thread pool (engine_start.c) before sbatch runs. */
int engine__slurm_write_script(const char *workdir, char *err, size_t errlen)
{
    static const char script[] = "#!/bin/sh\n"
                                 "# ocps: run the job's runner with the arguments given to sbatch\n"
                                 "exec \"$@\"\n";
    char path[ENGINE_WORKDIR_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", workdir, ENGINE_SLURM_SCRIPT);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0 || write(fd, script, sizeof script - 1) != (ssize_t)(sizeof script - 1) || close(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return 0;
}

/* sbatch's argv (strings owned by the returned vector; engine_exec_free_strv). */
typedef struct engine_slurm_argv {
    char **v;
    size_t n;
    size_t cap;
    bool failed;
} engine_slurm_argv;

static void engine_slurm_push(engine_slurm_argv *a, const char *s)
{
    if (a->failed || s == NULL) {
        return;
    }
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        char **v = realloc(a->v, cap * sizeof *v);
        if (v == NULL) {
            a->failed = true;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    if ((a->v[a->n] = strdup(s)) == NULL) {
        a->failed = true;
        return;
    }
    a->v[++a->n] = NULL;
}

static void engine_slurm_push_opt(engine_slurm_argv *a, const char *opt, const char *val)
{
    if (val != NULL && val[0] != '\0') {
        engine_slurm_push(a, opt);
        engine_slurm_push(a, val);
    }
}

/* Slurm's time limit in minutes (rounded up, at least 1) for a job. */
static long engine_slurm_minutes(const engine *e, const engine_rec *r)
{
    double secs = e->slurm.time_limit;
    double max = json_number_value(json_object_get(r->st.spec, "max_duration"));
    if (secs <= 0 && max > 0) {
        secs = max + 2 * e->abort_grace + 60; /* the runner enforces max_duration itself */
    }
    return secs > 0 ? (long)((secs + 59.999) / 60.0) : 0;
}

/* --dependency=afterok:ID:ID (afterany without prereq_must_succeed) for
 * the prerequisites that Slurm still has: live jobs with a Slurm job id.
 * Ended prerequisites were checked by the engine. */
static void engine_slurm_push_dependency(engine_slurm_argv *a, const engine *e, const engine_rec *r)
{
    const json_t *prereqs = json_object_get(r->st.spec, "prereqs");
    bool must = json_is_true(json_object_get(r->st.spec, "must_succeed"));
    char dep[2048];
    size_t len = (size_t)snprintf(dep, sizeof dep, "--dependency=%s", must ? "afterok" : "afterany");
    size_t base = len;
    for (size_t i = 0; i < json_array_size(prereqs); i++) {
        const engine_rec *p = engine__find(e, json_string_value(json_array_get(prereqs, i)));
        if (p == NULL || engine_phase_final(p->st.job.phase) || p->st.job.slurm_job_id[0] == '\0' ||
            len + strlen(p->st.job.slurm_job_id) + 2 >= sizeof dep) {
            continue;
        }
        len += (size_t)snprintf(dep + len, sizeof dep - len, ":%s", p->st.job.slurm_job_id);
    }
    if (len > base) {
        engine_slurm_push(a, dep);
    }
}

static void engine_slurm_push_options(engine_slurm_argv *a, const engine *e, const engine_rec *r)
{
    char buf[1200];
    snprintf(buf, sizeof buf, "ocps-%s", r->st.job.id);
    engine_slurm_push_opt(a, "--job-name", buf);
    engine_slurm_push_opt(a, "--comment", r->st.job.id);
    engine_slurm_push_opt(a, "--chdir", r->st.job.workdir);
    engine_slurm_push_opt(a, "--output", r->st.job.log_path);
    engine_slurm_push(a, "--open-mode=append");
    /* a requeued job could not run again (its runner's claim refuses a
     * second run): Slurm reports NODE_FAIL or PREEMPTED instead */
    engine_slurm_push(a, "--no-requeue");
    /* the job's environment is sbatch's (JOB_ID, the spec's variables):
     * said here, as a site's SBATCH_EXPORT=NONE would drop it */
    engine_slurm_push(a, "--export=ALL");
    engine_slurm_push_opt(a, "--partition", e->slurm.partition);
    engine_slurm_push_opt(a, "--account", e->slurm.account);
    engine_slurm_push_opt(a, "--qos", e->slurm.qos);
    engine_slurm_push_opt(a, "--mem", e->slurm.memory);
    int cpus = (int)json_integer_value(json_object_get(r->st.spec, "cpus")); /* the job's own, e.g. -j N */
    if (cpus <= 0) {
        cpus = e->slurm.cpus_per_job;
    }
    if (cpus > 0) {
        snprintf(buf, sizeof buf, "%d", cpus);
        engine_slurm_push_opt(a, "--cpus-per-task", buf);
    }
    long minutes = engine_slurm_minutes(e, r);
    if (minutes > 0) {
        snprintf(buf, sizeof buf, "%ld", minutes);
        engine_slurm_push_opt(a, "--time", buf);
    }
    for (size_t i = 0; e->slurm.extra_options[i] != NULL; i++) {
        engine_slurm_push(a, e->slurm.extra_options[i]);
    }
    engine_slurm_push_dependency(a, e, r);
}

/* sbatch --parsable [options] SCRIPT RUNNER-ARGV... */
static char **engine_slurm_sbatch_argv(const engine *e, const engine_rec *r, const char *script)
{
    char status[1200];
    engine__status_path(r, status, sizeof status);
    engine_exec_request req;
    engine__runner_request(e, r, status, &req);
    req.exit_with_job = true; /* Slurm's state and afterok dependencies follow the job's exit code */
    engine_exec_numbers nums;
    char **runner = engine_exec_runner_argv(&req, &nums);
    engine_slurm_argv a = {0};
    engine_slurm_push(&a, "sbatch");
    engine_slurm_push(&a, "--parsable");
    engine_slurm_push_options(&a, e, r);
    engine_slurm_push(&a, script);
    for (size_t i = 0; runner != NULL && runner[i] != NULL; i++) {
        engine_slurm_push(&a, runner[i]);
    }
    if (runner == NULL || a.failed) {
        free(runner);
        engine_exec_free_strv(a.v);
        return NULL;
    }
    free(runner);
    return a.v;
}

/* The job of a finished command, if it is still handed to Slurm. */
static engine_rec *engine_slurm_rec_of(engine *e, const engine_cmd *c)
{
    engine_rec *r = engine__find(e, c->job_id);
    return r != NULL && !engine_phase_final(r->st.job.phase) ? r : NULL;
}

static void engine_slurm_fail(engine *e, engine_rec *r, const char *what, int status, const char *errout)
{
    char msg[600];
    size_t n = strlen(errout);
    while (n > 0 && (errout[n - 1] == '\n' || errout[n - 1] == ' ')) {
        n--;
    }
    snprintf(msg, sizeof msg, "%s failed (exit status %d): %.*s", what, status, (int)(n < 400 ? n : 400),
             errout);
    engine__set_active(e, r, false);
    engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, msg);
    engine__schedule(e);
}

/* Did sbatch's controller refuse the job for want of capacity for now
 * (Slurm 22.05's texts): its job table full (after sbatch's own retries
 * of about 2 minutes), or a QOS/association submit limit (too many jobs
 * of the user queued)? No job was made. */
static bool engine_slurm_capacity_refusal(const char *errout)
{
    static const char *const signs[] = {"Slurm job queue full", "Unable to create job record, try again",
                                        "Job violates accounting/QOS policy", NULL};
    for (size_t i = 0; signs[i] != NULL; i++) {
        if (strstr(errout, signs[i]) != NULL) {
            return true;
        }
    }
    return false;
}

/* Has sbatch's "Job violates accounting/QOS policy" refusal of r (errout)
 * now lasted policy_refusal_limit? Slurm gives it for a submit limit (which
 * clears as jobs end: retried) and for a job its QOS never allows (with
 * DenyOnLimit): after the limit the job ends rather than wait for ever.
 * Notes the first such refusal. */
static bool engine_slurm_policy_refusal_final(engine *e, engine_rec *r, const char *errout)
{
    if (strstr(errout, "Job violates accounting/QOS policy") == NULL) {
        return false;
    }
    double now = engine__mono();
    if (r->slurm_refused_since <= 0) {
        r->slurm_refused_since = now;
    }
    return now - r->slurm_refused_since >= e->slurm.policy_refusal_limit;
}

/* Did a Slurm command fail for want of the controller (down, restarting,
 * overloaded, its authentication daemon away) or of its capacity for now
 * rather than because of the job? Such a submission is tried again; any
 * other failure ends the job. */
static bool engine_slurm_transient(int status, const char *errout)
{
    static const char *const signs[] = {"Unable to contact slurm controller",
                                        "Socket timed out",
                                        "temporarily unable",
                                        "Transport endpoint is not connected",
                                        "Zero Bytes were transmitted or received",
                                        "Communication connection failure",
                                        "Connection refused",
                                        "Protocol authentication error",
                                        NULL};
    if (status == 0) {
        return false;
    }
    if (engine_slurm_capacity_refusal(errout)) {
        return true;
    }
    for (size_t i = 0; signs[i] != NULL; i++) {
        if (strstr(errout, signs[i]) != NULL) {
            return true;
        }
    }
    return false;
}

/* Did the command fail before its request left (no connection to the
 * controller)? Then an sbatch certainly made no job; after a time-out or
 * a broken connection it may have. */
static bool engine_slurm_not_sent(const char *errout)
{
    return strstr(errout, "connect failure") != NULL || strstr(errout, "Connection refused") != NULL ||
           engine_slurm_capacity_refusal(errout); /* refused, not made */
}

/* The submission of r found no controller: r keeps its slot and stays
 * QUEUED with a message saying so, and is sent again after a backoff
 * (1 s, doubling to ENGINE_SLURM_RETRY_MAX), first looking for the job by
 * name if the failed command may have reached the controller. */
static void engine_slurm_retry_later(engine *e, engine_rec *r, const char *what, int status,
                                     const char *errout, bool maybe_sent)
{
    size_t n = strcspn(errout, "\n");
    if (!e->slurm.submit_unreachable) {
        e->slurm.submit_unreachable = true;
        engine__log(e, ENGINE_LOG_WARNING,
                    "%s exited with %d: %.*s; jobs stay queued and are submitted once Slurm answers", what,
                    status, (int)(n < 300 ? n : 300), errout);
    }
    double b = r->uws_backoff > 0 && !r->st.abort_requested ? 2 * r->uws_backoff : 1.0; /* an abort: soon */
    r->uws_backoff = b < ENGINE_SLURM_RETRY_MAX ? b : ENGINE_SLURM_RETRY_MAX;
    r->uws_next = engine__mono() + r->uws_backoff;
    r->slurm_retry = true;
    r->slurm_resumed = r->slurm_resumed || maybe_sent; /* then looked up by name before it is sent */
    /* the refusal's last line names Slurm's reason (queue full: the
     * first line says so already) */
    const char *why = errout;
    bool capacity = engine_slurm_capacity_refusal(errout);
    if (capacity && strstr(errout, "Job violates accounting/QOS policy") != NULL) {
        why = strstr(errout, "Job violates accounting/QOS policy");
        n = strcspn(why, "\n");
    }
    snprintf(r->st.job.message, sizeof r->st.job.message,
             "not submitted yet: %s (%.*s); trying again in %.0f s",
             capacity ? "Slurm takes no more jobs for now" : "Slurm's controller does not answer",
             (int)(n < 200 ? n : 200), why, r->uws_backoff);
    engine__change(e, r, ENGINE_QUEUED); /* reported with the message */
    engine_slurm_watch(e);
}

static int engine_slurm_lookup(engine *e, engine_rec *r, char *err, size_t errlen);
static int engine_slurm_sbatch(engine *e, engine_rec *r, char *err, size_t errlen);
static bool engine_slurm_end_if_prereq_failed(engine *e, engine_rec *r);

/* Submit again the jobs whose backoff has passed (engine_slurm_retry_later);
 * true if any still waits for its turn. A lookup that cannot even start
 * ends its job, which reschedules and changes the queue: the walk stops
 * there and goes on at the next tick. */
static bool engine_slurm_retry_due(engine *e)
{
    bool waiting = false;
    double now = engine__mono();
    for (engine_rec *r = e->lists[ENGINE_QUEUED].head; r != NULL; r = r->next) {
        if (!r->slurm_retry) {
            continue;
        }
        if (now < r->uws_next) {
            waiting = true;
            continue;
        }
        r->slurm_retry = false;
        if (!r->slurm_resumed && engine_slurm_end_if_prereq_failed(e, r)) {
            return true;
        }
        char err[600];
        int rc = r->slurm_resumed ? engine_slurm_lookup(e, r, err, sizeof err)
                                  : engine_slurm_sbatch(e, r, err, sizeof err);
        if (rc != 0) {
            engine_slurm_fail(e, r, "sbatch", -1, err);
            return true;
        }
    }
    return waiting;
}

static void engine_slurm_cancel(engine *e, const char *slurm_id, bool term_batch);

/* A Slurm job id is known for the job: store it first, then watch it. */
static void engine_slurm_submitted(engine *e, engine_rec *r, const char *slurm_id)
{
    char err[512];
    snprintf(r->st.job.slurm_job_id, sizeof r->st.job.slurm_job_id, "%s", slurm_id);
    snprintf(r->st.job.slurm_state, sizeof r->st.job.slurm_state, "PENDING");
    r->slurm_seen = true; /* Slurm has just given (or shown) its id */
    if (e->store != NULL &&
        engine_store_set_executor_id(e->store, r->st.job.id, slurm_id, err, sizeof err) != 0) {
        engine__log(e, ENGINE_LOG_ERROR, "job %s: Slurm job %s: %s; cancelled", r->st.job.id, slurm_id, err);
        engine_slurm_cancel(e, slurm_id, false);
        engine_slurm_fail(e, r, "storing the Slurm job id", -1, err);
        return;
    }
    if (r->st.abort_requested) { /* aborted while it was being submitted: ends once Slurm has cancelled it */
        engine_slurm_cancel(e, slurm_id, false);
        r->slurm_cancel_time = engine__mono();
        snprintf(r->st.job.message, sizeof r->st.job.message,
                 "Slurm job %s submitted; being cancelled (abort)", slurm_id);
        engine__change(e, r, ENGINE_QUEUED);
        engine_slurm_watch(e);
        return;
    }
    r->uws_backoff = 0;
    if (e->slurm.submit_unreachable) {
        e->slurm.submit_unreachable = false;
        engine__log(e, ENGINE_LOG_INFO, "Slurm takes submissions again");
    }
    snprintf(r->st.job.message, sizeof r->st.job.message, "Slurm job %s submitted", slurm_id);
    engine__change(e, r, ENGINE_QUEUED);
    engine__prereq_wake(e, r); /* its waiting jobs can be submitted with --dependency */
    engine_slurm_watch(e);
    engine__schedule(e); /* jobs that wait for this one can now be submitted with a dependency */
}

/* An aborted job that Slurm certainly never got. */
static void engine_slurm_aborted_unsent(engine *e, engine_rec *r)
{
    r->slurm_retry = false;
    engine__set_active(e, r, false);
    engine__finish(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED,
                   "aborted before it was submitted");
    engine__schedule(e);
}

static void engine_slurm_sbatch_done(engine *e, engine_cmd *c, int status, const char *out,
                                     const char *errout)
{
    engine_rec *r = engine_slurm_rec_of(e, c);
    char id[32] = "";
    sscanf(out, "%31[0-9]", id); /* "ID" or "ID;CLUSTER" */
    if (r == NULL) {
        if (status == 0 && id[0] != '\0') {
            engine_slurm_cancel(e, id, false); /* its job is gone meanwhile */
        }
        return;
    }
    if (!r->st.abort_requested && engine_slurm_policy_refusal_final(e, r, errout)) {
        const char *line = strstr(errout, "Job violates accounting/QOS policy");
        char why[400];
        snprintf(why, sizeof why,
                 "%.*s; refused so for %.0f s: a submit limit that did not clear, or a job its QOS does not "
                 "allow",
                 (int)strcspn(line, "\n"), line, e->slurm.policy_refusal_limit);
        engine_slurm_fail(e, r, "sbatch", status, why);
        return;
    }
    if (engine_slurm_transient(status, errout)) {
        bool maybe_sent = !engine_slurm_not_sent(errout);
        if (r->st.abort_requested && !maybe_sent) {
            engine_slurm_aborted_unsent(e, r);
            return;
        }
        engine_slurm_retry_later(e, r, "sbatch", status, errout,
                                 maybe_sent); /* an abort: the lookup decides */
        return;
    }
    if (status != 0 || id[0] == '\0') {
        engine_slurm_fail(e, r, "sbatch", status, errout[0] != '\0' ? errout : out);
        return;
    }
    engine_slurm_submitted(e, r, id);
}

/* A live prerequisite of r with a Slurm job id that Slurm has not shown
 * since this engine opened (one found in the store): its id, else NULL.
 * Slurm may have purged it (MinJobAge) while the CSC was down, and takes a
 * dependency on an id it does not know as satisfied. */
static const char *engine_slurm_unseen_prereq(const engine *e, const engine_rec *r)
{
    const json_t *prereqs = json_object_get(r->st.spec, "prereqs");
    for (size_t i = 0; i < json_array_size(prereqs); i++) {
        const engine_rec *p = engine__find(e, json_string_value(json_array_get(prereqs, i)));
        if (p != NULL && !engine_phase_final(p->st.job.phase) && p->st.job.slurm_job_id[0] != '\0' &&
            !p->slurm_seen) {
            return p->st.job.id;
        }
    }
    return NULL;
}

/* Hold r's submission (it keeps its slot) until a poll has judged its
 * prerequisites: engine_slurm_release_held. */
static void engine_slurm_hold(engine *e, engine_rec *r, const char *prereq)
{
    r->slurm_wait_poll = true;
    e->slurm.held++;
    snprintf(r->st.job.message, sizeof r->st.job.message,
             "not submitted yet: waiting for Slurm to report on prerequisite %s", prereq);
    engine__change(e, r, ENGINE_QUEUED); /* reported with the message */
    engine_slurm_watch(e);
}

static int engine_slurm_sbatch(engine *e, engine_rec *r, char *err, size_t errlen)
{
    const char *unseen = engine_slurm_unseen_prereq(e, r);
    if (unseen != NULL) {
        engine_slurm_hold(e, r, unseen);
        return 0;
    }
    char script[ENGINE_WORKDIR_MAX + 64]; /* written by engine__slurm_submit's step on the pool */
    snprintf(script, sizeof script, "%s/%s", r->st.job.workdir, ENGINE_SLURM_SCRIPT);
    char **argv = engine_slurm_sbatch_argv(e, r, script);
    char **env = engine__job_env(r);
    int rc = -1;
    if (argv == NULL || env == NULL) {
        snprintf(err, errlen, "out of memory");
    } else {
        rc = engine_cmd_run(e, argv, env, engine_slurm_sbatch_done, r->st.job.id, err, errlen);
    }
    engine_exec_free_strv(argv);
    engine_exec_free_strv(env);
    return rc;
}

static int engine_slurm_prereq_failed(engine *e, const engine_rec *r, char *msg, size_t msglen);

/* A job about to be sent from a callback (a lookup's answer, a retry)
 * whose prerequisite has ended badly meanwhile: ended ERROR / prerequisite
 * (Slurm, no longer knowing the prerequisite, would run it), true. */
static bool engine_slurm_end_if_prereq_failed(engine *e, engine_rec *r)
{
    char msg[600];
    if (!engine_slurm_prereq_failed(e, r, msg, sizeof msg)) {
        return false;
    }
    r->slurm_retry = false;
    engine__set_active(e, r, false);
    engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_PREREQUISITE, -1, msg);
    engine__schedule(e);
    return true;
}

/* The lookup of an earlier submission (squeue --name) has answered. */
static void engine_slurm_lookup_done(engine *e, engine_cmd *c, int status, const char *out,
                                     const char *errout)
{
    engine_rec *r = engine_slurm_rec_of(e, c);
    if (r == NULL) {
        return;
    }
    if (engine_slurm_transient(status, errout)) { /* also when aborted: only the answer tells */
        engine_slurm_retry_later(e, r, "squeue (looking for an earlier submission)", status, errout, true);
        return;
    }
    if (status != 0) {
        engine_slurm_fail(e, r, "looking for an earlier submission (squeue)", status, errout);
        return;
    }
    r->slurm_resumed = false; /* answered: in Slurm or not */
    char id[32] = "";
    if (sscanf(out, "%31[0-9]", id) == 1) {
        engine__log(e, ENGINE_LOG_WARNING,
                    "job %s: found already submitted as Slurm job %s; not submitted again", r->st.job.id, id);
        engine_slurm_submitted(e, r, id); /* cancelled there if it was aborted meanwhile */
        return;
    }
    if (r->st.abort_requested) { /* aborted while it waited to be sent again: never submitted */
        engine_slurm_aborted_unsent(e, r);
        return;
    }
    if (engine_slurm_end_if_prereq_failed(e, r)) {
        return;
    }
    char err[600];
    if (engine_slurm_sbatch(e, r, err, sizeof err) != 0) {
        engine_slurm_fail(e, r, "sbatch", -1, err);
    }
}

/* Look for a Slurm job named after this job (a submission whose id was
 * never stored). */
static int engine_slurm_lookup(engine *e, engine_rec *r, char *err, size_t errlen)
{
    char name[64];
    snprintf(name, sizeof name, "ocps-%s", r->st.job.id);
    /* --me: only our jobs, as a poll */
    char *argv[] = {"squeue", "--me", "-h", "-t", "all", "--name", name, "-o", "%i", NULL};
    return engine_cmd_run(e, argv, NULL, engine_slurm_lookup_done, r->st.job.id, err, errlen);
}

/* A prerequisite that ended badly since the job was released (then
 * Slurm would not know it any more): 1 and the message, else 0. */
static int engine_slurm_prereq_failed(engine *e, const engine_rec *r, char *msg, size_t msglen)
{
    const json_t *prereqs = json_object_get(r->st.spec, "prereqs");
    if (!json_is_true(json_object_get(r->st.spec, "must_succeed"))) {
        return 0;
    }
    for (size_t i = 0; i < json_array_size(prereqs); i++) {
        const char *id = json_string_value(json_array_get(prereqs, i));
        const engine_job *p = engine_job_get(e, id);
        if (p != NULL && engine_phase_final(p->phase) && p->phase != ENGINE_COMPLETED) {
            snprintf(msg, msglen, "prerequisite %s ended %s", id, engine_phase_name(p->phase));
            return 1;
        }
    }
    return 0;
}

int engine__slurm_submit(engine *e, engine_rec *r)
{
    char err[1400];
    if (engine_slurm_prereq_failed(e, r, err, sizeof err)) {
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_PREREQUISITE, -1, err);
        return -1;
    }
    return engine__start_prepare(e, r); /* then engine__slurm_send */
}

void engine__slurm_send(engine *e, engine_rec *r)
{
    if (!r->slurm_resumed && engine_slurm_end_if_prereq_failed(e, r)) {
        return; /* a prerequisite ended badly while its directory was written */
    }
    char err[1400];
    int rc = r->slurm_resumed ? engine_slurm_lookup(e, r, err, sizeof err)
                              : engine_slurm_sbatch(e, r, err, sizeof err);
    if (rc != 0) {
        engine__set_active(e, r, false);
        engine__finish(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, err);
    }
}

/* The oldest held job whose prerequisites Slurm has all shown (or which
 * ended meanwhile), or NULL. */
static engine_rec *engine_slurm_next_releasable(const engine *e)
{
    for (engine_rec *r = e->lists[ENGINE_QUEUED].head; r != NULL; r = r->next) {
        if (r->slurm_wait_poll && engine_slurm_unseen_prereq(e, r) == NULL) {
            return r;
        }
    }
    return NULL;
}

/* After a poll: submit the held jobs whose prerequisites it has judged,
 * or end them if one of those did not succeed. True if a job ended. */
static bool engine_slurm_release_held(engine *e)
{
    bool ended = false;
    engine_rec *r;
    while (e->slurm.held > 0 && (r = engine_slurm_next_releasable(e)) != NULL) {
        r->slurm_wait_poll = false;
        e->slurm.held--;
        char err[1400];
        if (engine_slurm_end_if_prereq_failed(e, r)) {
            ended = true;
        } else if (engine_slurm_sbatch(e, r, err, sizeof err) != 0) {
            engine_slurm_fail(e, r, "sbatch", -1, err);
            ended = true;
        }
    }
    return ended;
}

void engine__slurm_outcomes_done(engine *e)
{
    (void)engine_slurm_release_held(e); /* engine__schedule follows */
}

void engine__slurm_adopt(engine *e, engine_rec *r)
{
    engine__set_active(e, r, r->st.job.phase == ENGINE_QUEUED);
    engine_slurm_watch(e);
}

/* ---- abort ------------------------------------------------------------- */

static void engine_slurm_cancel_done(engine *e, engine_cmd *c, int status, const char *out,
                                     const char *errout)
{
    (void)out;
    if (status != 0 && strstr(errout, "already completing or completed") == NULL &&
        strstr(errout, "Invalid job id") == NULL) {
        engine__log(e, ENGINE_LOG_WARNING, "scancel %s exited with %d: %.300s", c->job_id, status, errout);
    }
}

/* scancel: SIGTERM to the batch step only (the runner, which stops the job
 * and records it as aborted), or the whole job (Slurm's TERM, KILL). */
static void engine_slurm_cancel(engine *e, const char *slurm_id, bool term_batch)
{
    char *term[] = {"scancel", "--batch", "--signal=TERM", (char *)slurm_id, NULL};
    char *all[] = {"scancel", (char *)slurm_id, NULL};
    char err[256];
    if (engine_cmd_run(e, term_batch ? term : all, NULL, engine_slurm_cancel_done, slurm_id, err,
                       sizeof err) != 0) {
        engine__log(e, ENGINE_LOG_WARNING, "scancel %s: %s", slurm_id, err);
    }
}

static void engine_slurm_kill_late(engine *e, engine_rec *r)
{
    double last = r->slurm_cancel_time > 0 ? r->slurm_cancel_time : r->abort_time;
    if (r->st.abort_requested && engine__mono() - last > e->abort_grace + 1.0) {
        r->slurm_cancel_time = engine__mono(); /* again until Slurm has ended it: a scancel may be lost */
        engine_slurm_cancel(e, r->st.job.slurm_job_id, false);
    }
}

int engine__slurm_abort(engine *e, engine_rec *r, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    r->st.abort_requested = true; /* engine_job_abort returned before if it was */
    r->abort_time = engine__mono();
    const char *id = r->st.job.slurm_job_id;
    if (id[0] == '\0' && r->slurm_wait_poll) { /* held before its sbatch: never sent */
        r->slurm_wait_poll = false;
        e->slurm.held--;
        engine_slurm_aborted_unsent(e, r);
        return 0;
    }
    if (id[0] == '\0' && r->starting && !r->slurm_resumed) { /* its script being written: never sent */
        engine_slurm_aborted_unsent(e, r);
        return 0;
    }
    if (id[0] == '\0' && r->slurm_retry) { /* waiting to be sent again */
        if (!r->slurm_resumed) {
            engine_slurm_aborted_unsent(e, r); /* nothing in Slurm */
        } else {
            r->uws_next = r->abort_time; /* perhaps in Slurm: looked up at once, cancelled if found */
            engine_slurm_watch(e);
        }
        return 0;
    }
    if (id[0] == '\0') {
        char why[600];
        if (!r->slurm_active && r->slurm_resumed && engine_slurm_lookup(e, r, why, sizeof why) == 0) {
            engine__set_active(e, r, true); /* found in the store, waiting for a slot: looked up now */
        }
        return 0; /* being submitted or looked up: cancelled once Slurm answers */
    }
    if (r->st.job.phase == ENGINE_QUEUED) {
        /* ended once Slurm reports it cancelled: a scancel that fails is sent again */
        engine_slurm_cancel(e, id, false);
        r->slurm_cancel_time = r->abort_time;
        return 0;
    }
    engine_slurm_cancel(e, id, true);
    return 0;
}
