/* ocps_app.c - see ocps_app.h. */
#include "ocps/ocps_app.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ocps/engine.h"
#include "ocps/ocps_config.h"
#include "ocps/ocps_job.h"
#include "ocps/ocps_ra.h"
#include "ocps/ocps_topics.h"
#include "ocps/sal_clock.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_utf8.h"
#include "ocps/ocps_root_probe.h"
#include "ocps/slurm_ping.h"

#define SIM_FAULT_CODE 2
#define SIM_FAULT_REPORT "404 Simulation cannot contact execution service" /* the Python OCPS's */
#define STORE_FAULT_CODE 3 /* a write to the job store failed (disk full, I/O error, locked) */
/* Seconds a start waits for the Slurm controller's answer (scontrol ping). */
#define SLURM_PING_TIMEOUT 10.0
/* Seconds the first start waits for work_root and the job store's
 * directory to answer before it opens the engine on them. */
#define ROOT_PROBE_TIMEOUT 10.0
/* bytes of a commander's identity an execute may carry (checked: UTF-8, no
 * control characters): all the runtime carries (Kafka; DDS carries 128) */
#define OCPS_IDENTITY_MAX SAL_IDENTITY_MAX

/* A job whose execute command waits for its final ack. */
typedef struct pending {
    struct pending *next;
    char id[ENGINE_JOB_ID_LEN + 1];
    sal_cmd *cmd;   /* NULL for a job re-adopted after a restart: then */
    int32_t seqnum; /* its execute, from the job's meta, answered detached */
    int32_t origin;
    char identity[SAL_IDENTITY_MAX + 1];
    sal_ack_lease lease; /* of its detached CMD_INPROGRESS acks */
    double whole_until;  /* sal_clock_monotonic() until which each of them gives the whole wait */
    double first_ack_at; /* sal_clock_monotonic() of its first CMD_INPROGRESS (0: none sent) */
} pending;

/* A final ack for the execute of a job adopted after a restart, sent again
 * later on DDS: salobj's ackcmd readers use EXCLUSIVE ownership, so until
 * the dead CSC's participant lease expires (10 s by default) they drop the
 * new CSC's acks. A Remote ignores a repeated final ack. Transports
 * without that problem (Kafka) get the final ack once. */
typedef struct late_ack {
    struct late_ack *next;
    int32_t seqnum;
    int32_t origin;
    char identity[SAL_IDENTITY_MAX + 1];
    int ack;
    char *result;
    int repeats_left;
} late_ack;

#define LATE_ACK_PERIOD_MS 6000
#define LATE_ACK_REPEATS 3
/* How long the repeated acks above may go unseen */
#define LATE_ACK_WINDOW_S (LATE_ACK_PERIOD_MS * LATE_ACK_REPEATS / 1000.0)

/* A finished job waiting to be published (handled outside engine calls). */
typedef struct finished {
    struct finished *next;
    char id[ENGINE_JOB_ID_LEN + 1];
    int tries;  /* writes of its job_result that failed */
    double due; /* held: sal_clock_monotonic() from which it may be published */
} finished;

/* A job_result the transport refused (e.g. Kafka's queue full while the
 * broker is away) is written again this often; the job stays unpublished
 * meanwhile (a restart publishes it too), its execute unanswered. */
#define RESULT_RETRY_MS 5000

/* The metrics.json of the job at the head of the queue, being read and
 * parsed on the thread pool. */
typedef struct metrics_read {
    uv_work_t req;
    struct ocps_app *app;
    char path[1200];
    json_t *metrics; /* the thread's result, handed over in its after-callback */
} metrics_read;

struct ocps_app {
    uv_loop_t *loop;
    const sal_component_info *comp;
    int32_t index;
    int simulation_mode;
    char runner[1024];
    char embedded_pipetask[1024]; /* ocps-pipetask, used when no pipetask is found */
    char embedded_butler[1024];   /* ocps-butler, the retrieval's butler with ocps-pipetask */
    sal_csc *csc;
    engine *engine;
    ocps_ra *ra; /* index 101: the Rapid Analysis backend, no engine */
    ocps_config config;
    bool configured;
    slurm_ping *ping;       /* the Slurm controller is being asked during a start */
    ocps_config candidate;  /* the configuration that start applies once it answers */
    ocps_root_probe *probe; /* the first start asks whether the engine's directories answer; kept
                               while their stat hangs past the timeout */
    pending *pending;
    finished *finished_head;
    finished *finished_tail;
    finished *unwritten; /* jobs whose job_result write failed: again at the next retry */
    finished *held;      /* jobs that ended sooner than final_ack_min_delay after their first ack */
    uv_timer_t progress; /* re-sends CMD_INPROGRESS */
    uv_timer_t publish;  /* publishes finished jobs */
    uv_timer_t late;     /* repeats final acks of adopted jobs */
    uv_timer_t hold;     /* publishes held jobs once they are due */
    uv_timer_t fault;    /* FAULT for a failed store write, outside the engine call */
    char fault_report[600];
    metrics_read *reading; /* the head's metrics.json is being read: publishing waits */
    late_ack *late_acks;
    ocps_topics tp; /* topics and fields, resolved at open */
    bool closing;
    int closing_parts;          /* handles and engine still closing */
    ocps_app_close_cb close_cb; /* ocps_app_close's */
    void *close_arg;
    ocps_app_job_stats job_stats;
    int slurm_ping; /* the latest start's scontrol ping: -1 none, 0 failed, 1 answered */
};

const double ocps_app_duration_buckets[OCPS_APP_DURATION_BUCKETS] = {1,   5,    10,   30,   60,    300,
                                                                     900, 1800, 3600, 7200, 14400, 43200};

/* A job ended: into the counters and the histogram. */
static void count_ended(ocps_app *a, const engine_job *job)
{
    ocps_app_job_stats *st = &a->job_stats;
    if ((int)job->phase < 0 || job->phase > ENGINE_UNKNOWN) {
        return;
    }
    st->ended[job->phase]++;
    double d = job->started > 0 && job->ended >= job->started ? job->ended - job->started : 0;
    for (size_t i = 0; i < OCPS_APP_DURATION_BUCKETS; i++) {
        if (d <= ocps_app_duration_buckets[i]) {
            st->buckets[i]++;
        }
    }
    st->count++;
    st->sum += d;
}

/* --- helpers --- */

/* A string field of a command, "" when the release lacks it (f NULL). */
static const char *field(const sal_field_info *f, const void *sample)
{
    const char *s = f != NULL ? sal_field_get_string(f, sample) : NULL;
    return s ? s : "";
}

static pending *find_pending(ocps_app *a, const char *id, bool unlink)
{
    for (pending **pp = &a->pending; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            pending *p = *pp;
            if (unlink) {
                *pp = p->next;
            }
            return p;
        }
    }
    return NULL;
}

static double ack_timeout(const ocps_app *a)
{
    return 3 * a->config.inprogress_interval;
}

static void in_progress_text(const engine_job *job, char *out, size_t len)
{
    out[0] = '\0';
    if (job == NULL) {
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "job_id", json_string(ocps_job_shown_id(job)));
    json_object_set_new(o, "phase", json_string(engine_phase_name(job->phase)));
    if (job->phase == ENGINE_QUEUED) {
        json_object_set_new(o, "queue_position", json_integer(job->queue_position));
    }
    /* the engine's message for a job still on its way (e.g. "Slurm job 12
     * PENDING (Resources)": why it waits), cut so that the whole text stays
     * within OCPS_ACK_TEXT_MAX; one line, as before */
    size_t limit = OCPS_ACK_TEXT_MAX < len - 1 ? OCPS_ACK_TEXT_MAX : len - 1;
    char *text = ocps_json_fit_message(o, job->message, limit, JSON_PRESERVE_ORDER);
    json_decref(o);
    snprintf(out, len, "%s", text != NULL ? text : "");
    free(text);
}

/* --- publishing a finished job --- */

/* The final ack of an execute whose job ended: CMD_COMPLETE when it
 * completed, and (failed_job_ack complete, the Python OCPS's answer) when it
 * ended in error; CMD_ABORTED when aborted; CMD_FAILED when lost
 * (its outcome is not known), for a simulated fault, and (failed_job_ack
 * failed) for an error. */
static int final_ack_code(const ocps_app *a, const engine_job *job, bool simulated_fault)
{
    switch (job->phase) {
    case ENGINE_COMPLETED:
        return SAL_CMD_COMPLETE;
    case ENGINE_ABORTED:
        return SAL_CMD_ABORTED;
    case ENGINE_ERROR:
        return a->config.failed_job_ack_failed || simulated_fault ? SAL_CMD_FAILED : SAL_CMD_COMPLETE;
    default:
        return SAL_CMD_FAILED;
    }
}

/* Never silently dropped: a result that cannot be built becomes a short
 * fixed one, and any failure is logged. */
/* The log of a job a UWS server ran: ocps-engine serves it at
 * {url}/job/{jobId}/log; the reference server has none (""). NULL for a
 * job run here or by Slurm (its ocps.log is ours). */
static const char *uws_log_uri(const ocps_app *a, const engine_job *job, char *buf, size_t len)
{
    if (a->config.executor != OCPS_EXECUTOR_UWS || job->executor_id[0] == '\0') {
        return NULL;
    }
    if (a->config.uws_reference) {
        return "";
    }
    size_t n = strlen(a->config.url);
    while (n > 0 && a->config.url[n - 1] == '/') {
        n--;
    }
    snprintf(buf, len, "%.*s/job/%s/log", (int)n, a->config.url, job->executor_id);
    return buf;
}

/* Write job's job_result: 0; -EAGAIN if it may be taken later (the
 * transport refused it for now, or memory ran out), logged on the first
 * try only (tries: how many failed before); -EIO if it never will be
 * (logged). */
static int write_job_result(ocps_app *a, const engine_job *job, const json_t *metrics, int tries)
{
    const sal_topic_info *ti = &a->comp->topics[a->tp.job_result];
    void *s = sal_sample_new(ti);
    char log[1200];
    char *result = ocps_job_result_json(job, metrics, uws_log_uri(a, job, log, sizeof log),
                                        (size_t)a->config.result_max_bytes);
    char fallback[256];
    if (result == NULL) {
        SAL_LOG(a->csc, SAL_LOG_ERROR, "Job %s: could not build its full result; writing a short one",
                job->id);
        snprintf(fallback, sizeof fallback,
                 "{\"jobId\":\"%.64s\",\"job_id\":\"%.64s\",\"phase\":\"%s\",\"reason\":\"%s\","
                 "\"exit_code\":%d,\"truncated\":true}",
                 ocps_job_shown_id(job), ocps_job_shown_id(job), engine_phase_name(job->phase),
                 engine_reason_name(job->reason), job->exit_code);
    }
    char err[256] = "out of memory";
    int rc = s == NULL ? -EAGAIN : 0;
    if (rc == 0) {
        rc = sal_field_set_string(ti, a->tp.result_job_id, s, ocps_job_shown_id(job), err, sizeof err);
    }
    if (rc == 0) {
        rc = sal_field_set_number(ti, a->tp.result_exit_code, s, 0, job->exit_code, err, sizeof err);
    }
    if (rc == 0) {
        rc = sal_field_set_string(ti, a->tp.result_result, s, result != NULL ? result : fallback, err,
                                  sizeof err);
    }
    rc = rc != 0 && rc != -EAGAIN ? -EIO : rc;
    if (rc == 0) {
        int w = sal_csc_write(a->csc, "logevent_job_result", s, SAL_WRITE_FORCE);
        if (w != 0) {
            snprintf(err, sizeof err, "the write failed (%s)", strerror(-w));
            rc = w == -EAGAIN || w == -ENOMEM ? -EAGAIN : -EIO;
        }
    }
    if (rc == -EAGAIN && tries == 0) {
        SAL_LOG(a->csc, SAL_LOG_ERROR,
                "Job %s: job_result not written: %s; written again every %d s until it is", job->id, err,
                RESULT_RETRY_MS / 1000);
    } else if (rc == -EIO) {
        SAL_LOG(a->csc, SAL_LOG_ERROR, "Job %s: job_result not written: %s", job->id, err);
    } else if (rc == 0 && tries > 0) {
        SAL_LOG(a->csc, SAL_LOG_INFO, "Job %s: job_result written (%d earlier tries failed)", job->id, tries);
    }
    free(result);
    sal_sample_free(ti, s);
    return rc;
}

static void late_cb(uv_timer_t *t)
{
    ocps_app *a = t->data;
    for (late_ack **pp = &a->late_acks; *pp != NULL;) {
        late_ack *l = *pp;
        sal_csc_ack_detached(a->csc, a->tp.execute, l->seqnum, l->identity, l->origin, l->ack, l->result,
                             0.0);
        if (--l->repeats_left > 0) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        free(l->result);
        free(l);
    }
    if (a->late_acks == NULL) {
        uv_timer_stop(&a->late);
    }
}

static void repeat_later(ocps_app *a, int32_t seqnum, const char *identity, int32_t origin, int ack,
                         const char *result)
{
    late_ack *l = calloc(1, sizeof *l);
    if (l == NULL || (l->result = strdup(result)) == NULL) {
        free(l);
        return;
    }
    l->seqnum = seqnum;
    l->origin = origin;
    snprintf(l->identity, sizeof l->identity, "%s", identity ? identity : "");
    l->ack = ack;
    l->repeats_left = LATE_ACK_REPEATS;
    l->next = a->late_acks;
    a->late_acks = l;
    if (!uv_is_active((uv_handle_t *)&a->late)) {
        uv_timer_start(&a->late, late_cb, LATE_ACK_PERIOD_MS, LATE_ACK_PERIOD_MS);
    }
}

static void send_final_ack(ocps_app *a, const engine_job *job, bool simulated_fault)
{
    pending *p = find_pending(a, job->id, true);
    char *summary = ocps_job_summary_json(job);
    int ack = final_ack_code(a, job, simulated_fault);
    if (p != NULL && p->cmd != NULL) {
        sal_cmd_finish(p->cmd, ack, summary ? summary : "");
    } else if (job->meta != NULL) {
        /* a job of an earlier run: its commander may still be waiting */
        json_t *m = job->meta;
        int32_t seqnum = (int32_t)json_integer_value(json_object_get(m, "seq_num"));
        const char *identity = json_string_value(json_object_get(m, "identity"));
        int32_t origin = (int32_t)json_integer_value(json_object_get(m, "origin"));
        sal_csc_ack_detached(a->csc, a->tp.execute, seqnum, identity, origin, ack, summary ? summary : "",
                             0.0);
        if (sal_acks_exclusive(sal_csc_sal(a->csc))) {
            repeat_later(a, seqnum, identity, origin, ack, summary ? summary : "");
        }
    }
    free(summary);
    free(p);
}

/* The simulated pipelines, as the Python OCPS's: true.yaml and false.yaml
 * end with exit code 0 and a result of true and false; fault.yaml takes
 * the CSC to FAULT (its job exits 2). */
static const char *const sim_pipelines[] = {"true.yaml", "false.yaml", "fault.yaml"};
static const int sim_exit_codes[] = {0, 0, 2};

/* The index in sim_pipelines of pipeline in simulation mode, else -1. */
static int sim_pipeline(const ocps_app *a, const char *pipeline)
{
    for (int i = 0; a->simulation_mode != 0 && i < 3; i++) {
        if (strcmp(pipeline, sim_pipelines[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* Publish f's job: its job_result, then its final ack. false if the
 * job_result was not written (nothing else done: f is tried again). */
static bool publish(ocps_app *a, finished *f, const json_t *metrics)
{
    const engine_job *job = engine_job_get(a->engine, f->id);
    if (job == NULL || job->result_published) {
        return true;
    }
    if (write_job_result(a, job, metrics, f->tries) == -EAGAIN) {
        f->tries++;
        return false;
    } /* else written, or never will be (logged): published, answered */
    const char *id = f->id;
    /* what the final ack needs, kept: marking the job published lets the
     * engine forget it (reading it back would cost a store query) */
    engine_job ended = *job;
    /* a failed pipeline says why in metrics.json: the log line and the
     * final ack carry its first line too, not only the exit code */
    const char *why = json_string_value(json_object_get(metrics, "error"));
    if (why != NULL && why[0] != '\0' && job->phase != ENGINE_COMPLETED) {
        char text[sizeof ended.message + 8];
        int n = snprintf(text, sizeof text, "%s%s%.*s", job->message, job->message[0] ? ": " : "",
                         (int)strcspn(why, "\n"), why);
        if (n >= (int)sizeof ended.message) { /* cut where a character begins */
            text[sal_utf8_cut(text, sizeof ended.message - 1)] = '\0';
        }
        memcpy(ended.message, text, sizeof ended.message);
    }
    SAL_LOG(a->csc, job->phase == ENGINE_COMPLETED ? SAL_LOG_INFO : SAL_LOG_WARNING,
            "Job %s ended: phase=%s reason=%s exit_code=%d%s%s", job->id, engine_phase_name(job->phase),
            engine_reason_name(job->reason), job->exit_code, ended.message[0] ? ": " : "", ended.message);
    ended.argv = NULL;
    ended.results = NULL;
    ended.workdir = ""; /* the engine's, gone once the job is forgotten */
    ended.log_path = "";
    json_incref(ended.meta);
    const char *pipeline = ended.meta ? json_string_value(json_object_get(ended.meta, "pipeline")) : NULL;
    bool fault = pipeline != NULL && sim_pipeline(a, pipeline) == 2;
    if (fault) { /* as the Python OCPS: FAULT first, then the command fails */
        sal_csc_fault(a->csc, SIM_FAULT_CODE, SIM_FAULT_REPORT, "");
    }
    send_final_ack(a, &ended, fault);
    /* marked last: a CSC killed between the writes and the mark publishes
     * both again after its restart (twice, never not at all) */
    engine_job_mark_published(a->engine, id);
    json_decref(ended.meta);
    return true;
}

/* f at the tail of the queue of jobs to publish. */
static void finished_append(ocps_app *a, finished *f)
{
    f->next = NULL;
    if (a->finished_tail != NULL) {
        a->finished_tail->next = f;
    } else {
        a->finished_head = f;
    }
    a->finished_tail = f;
}

/* f published, or kept on a->unwritten for the retry. */
static void publish_done(ocps_app *a, finished *f, bool written)
{
    if (written) {
        free(f);
        return;
    }
    f->next = a->unwritten;
    a->unwritten = f;
}

static void metrics_read_work(uv_work_t *req)
{
    metrics_read *r = req->data;
    r->metrics = ocps_job_metrics_load(r->path);
}

static void publish_queued(ocps_app *a);
static void publish_cb(uv_timer_t *t);
static void part_closed(void *arg);

/* The head's metrics.json is read: publish it and go on with the queue
 * (or, closing, count this part as closed). */
static void metrics_read_done(uv_work_t *req, int status)
{
    (void)status;
    metrics_read *r = req->data;
    ocps_app *a = r->app;
    a->reading = NULL;
    if (a->closing) {
        json_decref(r->metrics);
        free(r);
        part_closed(a);
        return;
    }
    finished *f = a->finished_head;
    a->finished_head = f->next;
    if (a->finished_head == NULL) {
        a->finished_tail = NULL;
    }
    publish_done(a, f, publish(a, f, r->metrics));
    json_decref(r->metrics);
    free(r);
    publish_queued(a);
}

/* Start reading the metrics.json of the job at the head of the queue on
 * the thread pool, if it has one: true if publishing must wait for it. */
static bool metrics_read_start(ocps_app *a, const char *id)
{
    const engine_job *job = engine_job_get(a->engine, id);
    metrics_read *r = NULL;
    if (job == NULL || job->result_published || (r = calloc(1, sizeof *r)) == NULL ||
        !ocps_job_metrics_path(job, r->path, sizeof r->path)) {
        free(r);
        return false;
    }
    r->app = a;
    r->req.data = r;
    if (uv_queue_work(a->loop, &r->req, metrics_read_work, metrics_read_done) != 0) {
        free(r);
        return false; /* published without its metrics */
    }
    a->reading = r;
    return true;
}

/* --- the final ack's minimum delay --- */

/* When f's job may be published: final_ack_min_delay after the first
 * CMD_INPROGRESS this process sent for its execute (0: at once; none was
 * sent, or no delay is configured). salobj's Remote forgets a command as
 * it reads its final ack; a script that sends execute with
 * set_start(wait_done=False) and then waits with next_ackcmd fails if both
 * acks come in one read. Its job_result waits too: the job_result, the
 * final ack and the job's published mark stay one step (a CSC killed
 * between them publishes both again after its restart), and the script
 * reads the job_result after the final ack. */
static double publish_due(ocps_app *a, const finished *f)
{
    const pending *p = find_pending(a, f->id, false);
    if (p == NULL || p->first_ack_at <= 0 || a->config.final_ack_min_delay <= 0) {
        return 0;
    }
    return p->first_ack_at + a->config.final_ack_min_delay;
}

static void hold_cb(uv_timer_t *t);

/* The hold timer for the earliest held job. libuv's loop time (cached,
 * possibly a coarse clock) may lag sal_clock_monotonic: hold_cb checks
 * again and arms anew for what is not yet due. */
static void hold_arm(ocps_app *a)
{
    if (a->held == NULL || a->closing) {
        return;
    }
    double first = a->held->due;
    for (const finished *f = a->held->next; f != NULL; f = f->next) {
        first = f->due < first ? f->due : first;
    }
    double wait = first - sal_clock_monotonic();
    uint64_t ms = wait > 0 ? (uint64_t)(wait * 1000.0) + 1 : 0;
    uv_timer_start(&a->hold, hold_cb, ms, 0);
}

/* f held until due, after those held before it. */
static void hold(ocps_app *a, finished *f, double due)
{
    f->due = due;
    f->next = NULL;
    finished **pp = &a->held;
    while (*pp != NULL) {
        pp = &(*pp)->next;
    }
    *pp = f;
    hold_arm(a);
}

/* The held jobs that are due, to the queue in the order they ended, and
 * published. */
static void hold_cb(uv_timer_t *t)
{
    ocps_app *a = t->data;
    double now = sal_clock_monotonic();
    for (finished **pp = &a->held; *pp != NULL;) {
        finished *f = *pp;
        if (f->due > now) {
            pp = &f->next;
            continue;
        }
        *pp = f->next;
        finished_append(a, f);
    }
    hold_arm(a);
    publish_queued(a);
}

/* Publish the finished jobs in the order they ended, each no sooner than
 * publish_due (one held meanwhile is published when due; those behind it
 * do not wait for it); a job's metrics.json is read off the loop first (it
 * may be large), the rest waits for it. */
static void publish_queued(ocps_app *a)
{
    while (a->finished_head != NULL && !a->closing && a->reading == NULL) {
        finished *f = a->finished_head;
        double due = publish_due(a, f);
        if (due > 0 && due > sal_clock_monotonic()) {
            a->finished_head = f->next;
            if (a->finished_head == NULL) {
                a->finished_tail = NULL;
            }
            hold(a, f, due);
            continue;
        }
        if (metrics_read_start(a, f->id)) {
            return;
        }
        a->finished_head = f->next;
        if (a->finished_head == NULL) {
            a->finished_tail = NULL;
        }
        publish_done(a, f, publish(a, f, NULL));
    }
    if (a->finished_head == NULL && a->reading == NULL && a->unwritten != NULL && !a->closing) {
        uv_timer_start(&a->publish, publish_cb, RESULT_RETRY_MS, 0);
    }
}

/* Publish what finished, the unwritten job_results again first. */
static void publish_cb(uv_timer_t *t)
{
    ocps_app *a = t->data;
    while (a->unwritten != NULL) { /* at the tail: the head's metrics.json may be being read */
        finished *f = a->unwritten;
        a->unwritten = f->next;
        finished_append(a, f);
    }
    publish_queued(a);
}

static void write_job_id(ocps_app *a, int32_t seqnum, const char *id)
{
    const sal_topic_info *ti = &a->comp->topics[a->tp.job_id];
    void *s = sal_sample_new(ti);
    char err[256];
    if (s != NULL) {
        sal_field_set_string(ti, a->tp.id_event_name, s, "cmd_execute", err, sizeof err);
        sal_field_set_number(ti, a->tp.id_seq_num, s, 0, seqnum, err, sizeof err);
        sal_field_set_string(ti, a->tp.id_job_id, s, id, err, sizeof err);
        sal_csc_write(a->csc, "logevent_job_id", s, SAL_WRITE_FORCE);
    }
    sal_sample_free(ti, s);
}

/* CMD_INPROGRESS for the execute of p's job: its Remote is to wait
 * ack_timeout from now (each ack moves its deadline there, no further).
 * A re-adopted job's acks give the whole wait each while they may go
 * unseen (late_ack: DDS's EXCLUSIVE ackcmd readers drop a restarted
 * CSC's acks for a while): a Remote that missed the first would otherwise
 * get only the small extensions after it. */
static void send_in_progress(ocps_app *a, pending *p, const engine_job *job)
{
    char text[256];
    in_progress_text(job, text, sizeof text);
    if (p->cmd != NULL) {
        sal_cmd_in_progress(p->cmd, ack_timeout(a), text);
    } else {
        double now = sal_clock_monotonic();
        if (now < p->whole_until) {
            p->lease.until = 0; /* as if it were the first */
        }
        double timeout = sal_ack_lease_extend(&p->lease, now, ack_timeout(a));
        sal_csc_ack_detached(a->csc, a->tp.execute, p->seqnum, p->identity, p->origin, SAL_CMD_INPROGRESS,
                             text, timeout);
    }
}

/* A running or waiting job of an earlier run of the CSC (the engine reports
 * each once at open): its execute is answered as if this process had
 * received it, since the CSC may have died before it did: CMD_INPROGRESS
 * with the job id (then every inprogress_interval, see progress_cb) and
 * the job_id event (again, with the same content, if it was written
 * before). Its final ack is sent by send_final_ack. */
static void announce_adopted(ocps_app *a, const engine_job *job)
{
    const json_t *m = job->meta;
    if (!json_is_integer(json_object_get(m, "seq_num"))) {
        return; /* not an execute's job */
    }
    pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return;
    }
    snprintf(p->id, sizeof p->id, "%s", job->id);
    p->seqnum = (int32_t)json_integer_value(json_object_get(m, "seq_num"));
    p->origin = (int32_t)json_integer_value(json_object_get(m, "origin"));
    const char *identity = json_string_value(json_object_get(m, "identity"));
    snprintf(p->identity, sizeof p->identity, "%s", identity != NULL ? identity : "");
    if (sal_acks_exclusive(sal_csc_sal(a->csc))) {
        p->whole_until = sal_clock_monotonic() + LATE_ACK_WINDOW_S;
    }
    p->next = a->pending;
    a->pending = p;
    send_in_progress(a, p, job);
    p->first_ack_at = sal_clock_monotonic();
    write_job_id(a, p->seqnum, ocps_job_shown_id(job));
    SAL_LOG(a->csc, SAL_LOG_INFO, "Job %s of %s (seqNum %d) re-adopted: %s", p->id, p->identity, p->seqnum,
            engine_phase_name(job->phase));
}

/* Engine callback: phase changes. Final ones are published from a timer,
 * after the engine call that caused them has returned. */
static void on_job(void *arg, const engine_job *job)
{
    ocps_app *a = arg;
    if (a->csc != NULL && !engine_phase_final(job->phase)) {
        SAL_LOG(a->csc, SAL_LOG_DEBUG, "Job %s is %s", job->id, engine_phase_name(job->phase));
        if (find_pending(a, job->id, false) == NULL) {
            announce_adopted(a, job);
        }
        return;
    }
    count_ended(a, job);
    finished *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return;
    }
    snprintf(f->id, sizeof f->id, "%s", job->id);
    finished_append(a, f);
    uv_timer_start(&a->publish, publish_cb, 0, 0);
}

/* --- periodic INPROGRESS --- */

static void progress_cb(uv_timer_t *t)
{
    ocps_app *a = t->data;
    for (pending *p = a->pending; p != NULL; p = p->next) {
        const engine_job *job = engine_job_get(a->engine, p->id);
        if (job != NULL && !engine_phase_final(job->phase)) {
            send_in_progress(a, p, job);
        }
    }
}

/* --- execute --- */

static void read_fields(const ocps_app *a, const void *sample, ocps_execute *x)
{
    x->pipeline = field(a->tp.ex_pipeline, sample);
    x->version = field(a->tp.ex_version, sample);
    x->config = field(a->tp.ex_config, sample);
    x->data_query = field(a->tp.ex_data_query, sample);
    x->prereq_jobs = field(a->tp.ex_prereq_jobs, sample);
    x->output_dataset_types = field(a->tp.ex_output_dataset_types, sample);
}

static const char *simulation_exit(const ocps_app *a, const char *pipeline, char *buf, size_t len)
{
    int i = sim_pipeline(a, pipeline);
    if (i < 0) {
        return NULL;
    }
    snprintf(buf, len, "%g:%d", a->config.simulation_duration, sim_exit_codes[i]);
    return buf;
}

/* The job id the CSC shows (ocps_job_shown_id): in simulation mode
 * "<pipeline>-<id>", as the Python OCPS's simulated ids begin. */
static void shown_id(const ocps_app *a, const char *pipeline, const char *id, char *out, size_t len)
{
    int i = sim_pipeline(a, pipeline);
    snprintf(out, len, "%s%s%s", i >= 0 ? sim_pipelines[i] : "", i >= 0 ? "-" : "", id);
}

/* The engine's id of a shown id (shown_id): without its simulated
 * pipeline's "<name>-" (also after a restart without --simulate: an
 * engine id is hex, so nothing else begins so). */
static const char *engine_id_of(const char *id)
{
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(sim_pipelines[i]);
        if (strncmp(id, sim_pipelines[i], n) == 0 && id[n] == '-') {
            return id + n + 1;
        }
    }
    return id;
}

/* prereq_jobs with each item's simulated "<name>-" left out (the ids the
 * CSC showed), into buf (len bytes) when it has any. */
static const char *engine_prereqs(const char *list, char *buf, size_t len)
{
    if (strchr(list, '-') == NULL || strlen(list) >= len) {
        return list;
    }
    size_t o = 0;
    bool item_start = true;
    for (const char *p = list; *p != '\0';) {
        if (item_start && *p != ' ') {
            const char *id = engine_id_of(p);
            item_start = false;
            if (id != p) {
                p = id;
                continue;
            }
        }
        item_start = *p == ',' || (item_start && *p == ' ');
        buf[o++] = *p++;
    }
    buf[o] = '\0';
    return buf;
}

static json_t *job_meta(const ocps_app *a, sal_cmd *cmd, const ocps_execute *x, const char *id,
                        json_t *environment)
{
    json_t *m = json_pack(
        "{s:s, s:i, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "identity", sal_cmd_identity(cmd),
        "origin", sal_cmd_origin(cmd), "seq_num", sal_cmd_seqnum(cmd), "sal_index", a->index, "pipeline",
        x->pipeline, "version", x->version, "config", x->config, "data_query", x->data_query, "prereq_jobs",
        x->prereq_jobs, "output_dataset_types", x->output_dataset_types, "environment", environment);
    int sim = sim_pipeline(a, x->pipeline);
    if (m != NULL && sim >= 0) {
        char shown[64];
        shown_id(a, x->pipeline, id, shown, sizeof shown);
        json_object_set_new(m, "shown_id", json_string(shown));
        if (sim < 2) {
            json_object_set_new(m, "simulated_result", json_boolean(sim == 0));
        }
    }
    return m;
}

/* Submit the job; 0, or -1 with the failure text. */
static int submit(ocps_app *a, sal_cmd *cmd, const ocps_execute *x, const char *id, char *err, size_t errlen)
{
    char sim[64];
    const char *simulate = NULL;
    if (a->simulation_mode != 0 && (simulate = simulation_exit(a, x->pipeline, sim, sizeof sim)) == NULL) {
        snprintf(err, errlen,
                 "Unknown (simulated) pipeline: %.200s (simulation mode runs true.yaml, false.yaml "
                 "or fault.yaml)",
                 x->pipeline);
        return -1;
    }
    ocps_job_plan plan;
    if (ocps_job_plan_build(&a->config, x, id, &plan, err, errlen) != 0) {
        return -1;
    }
    engine_job_spec spec = {
        .argv = (const char *const *)plan.argv,
        .env = (const char *const *)plan.env,
        .output_globs = (const char *const *)plan.globs,
        .then_argv = (const char *const *)plan.then_argv,
        .max_duration = a->config.max_job_duration,
        .prereqs = (const char *const *)plan.prereqs,
        .prereq_must_succeed = a->config.prereq_must_succeed,
        .meta = job_meta(a, cmd, x, id, plan.environment),
        .simulate = simulate,
        .cpus = plan.processes, /* Slurm: -j N asks for N CPUs; else slurm.cpus_per_job */
    };
    if (spec.meta != NULL && plan.then_argv != NULL) { /* shown in job_result's parameters */
        json_t *retrieve = json_array();
        for (size_t i = 0; plan.then_argv[i] != NULL; i++) {
            json_array_append_new(retrieve, json_string(plan.then_argv[i]));
        }
        json_object_set_new(spec.meta, "retrieve_command", retrieve);
    }
    if (a->config.executor == OCPS_EXECUTOR_UWS && a->config.uws_reference &&
        (spec.uws_body = ocps_job_uws_reference_body(&plan, err, errlen)) == NULL) {
        json_decref(spec.meta);
        ocps_job_plan_free(&plan);
        return -1;
    }
    char eerr[512];
    int rc = engine_job_submit(a->engine, id, &spec, eerr, sizeof eerr);
    json_decref(spec.meta);
    json_decref(spec.uws_body);
    ocps_job_plan_free(&plan);
    if (rc != 0) {
        /* a full waiting line (max_waiting_jobs) is not a failure of the infrastructure */
        snprintf(err, errlen, "could not create the job%s: %s", rc == -EAGAIN ? "" : " (infrastructure)",
                 eerr);
        return -1;
    }
    return 0;
}

static void on_execute(void *arg, sal_cmd *cmd)
{
    ocps_app *a = arg;
    char err[1024];
    ocps_execute x;
    read_fields(a, sal_cmd_data(cmd), &x);
    char why[96];
    if (!sal_text_check(sal_cmd_identity(cmd), OCPS_IDENTITY_MAX, NULL, why, sizeof why)) {
        /* kept with the job (its final ack after a restart goes to it), as
         * JSON, which takes only UTF-8 */
        sal_cmd_fail(cmd, "execute: the commander's identity (private_identity) %s", why);
        return;
    }
    if (a->ra != NULL) {
        ocps_ra_execute(a->ra, cmd, x.config);
        return;
    }
    char prereqs[4097];
    x.prereq_jobs = engine_prereqs(x.prereq_jobs, prereqs, sizeof prereqs);
    if (sal_csc_check_enabled(a->csc, "execute", err, sizeof err) != 0 ||
        ocps_execute_validate(&x, err, sizeof err) != 0) {
        sal_cmd_fail(cmd, "%s", err);
        return;
    }
    char config[8193];
    char query[16385];
    ocps_execute_flatten(&x, config, query);
    if (a->engine == NULL) {
        sal_cmd_fail(cmd, "the job engine is not available (configure with start)");
        return;
    }
    pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        sal_cmd_fail(cmd, "out of memory");
        return;
    }
    engine_new_job_id(a->engine, p->id);
    p->cmd = cmd;
    p->next = a->pending;
    a->pending = p;
    if (submit(a, cmd, &x, p->id, err, sizeof err) != 0) {
        find_pending(a, p->id, true);
        free(p);
        sal_cmd_fail(cmd, "%s", err);
        return;
    }
    char shown[64];
    shown_id(a, x.pipeline, p->id, shown, sizeof shown);
    char text[256];
    snprintf(text, sizeof text, "{\"job_id\": \"%s\"}", shown);
    sal_cmd_in_progress(cmd, ack_timeout(a), text);
    p->first_ack_at = sal_clock_monotonic(); /* after the write: the final ack waits from here */
    write_job_id(a, sal_cmd_seqnum(cmd), shown);
    SAL_LOG(a->csc, SAL_LOG_INFO, "Job %s created for %s (seqNum %d): pipeline=%s", p->id,
            sal_cmd_identity(cmd), sal_cmd_seqnum(cmd), x.pipeline);
}

/* --- abort_job --- */

static void on_abort_job(void *arg, sal_cmd *cmd)
{
    ocps_app *a = arg;
    char err[1024];
    const char *id = sal_field_get_string(a->tp.abort_job_id, sal_cmd_data(cmd));
    if (a->ra != NULL) {
        ocps_ra_abort_job(a->ra, cmd, id);
        return;
    }
    if (sal_csc_check_enabled(a->csc, "abort_job", err, sizeof err) != 0) {
        sal_cmd_fail(cmd, "%s", err);
        return;
    }
    /* engine_job_abort alone: a job only in the store is found by its id
     * (no row read), so the command's cost does not follow the history */
    char why[160] = "is missing";
    bool text = id != NULL && sal_text_check(id, SIZE_MAX, NULL, why, sizeof why);
    const char *engine_id = text ? engine_id_of(id) : id;
    int rc = !text || strlen(engine_id) > ENGINE_JOB_ID_LEN || a->engine == NULL
                 ? -ENOENT
                 : engine_job_abort(a->engine, engine_id, err, sizeof err);
    if (rc == -ENOENT && !text) { /* not echoed: the ack must stay valid text */
        sal_cmd_fail(cmd, "No such job id: job_id %s", why);
        return;
    }
    if (rc == -ENOENT) {
        size_t n = strlen(id);
        sal_cmd_fail(cmd, "No such job id: %.*s", (int)sal_utf8_cut(id, n < 64 ? n : 64), id);
        return;
    }
    if (rc != 0) {
        sal_cmd_fail(cmd, "%s", err);
        return;
    }
    if (err[0] != '\0') { /* ended, or being aborted: nothing done, and the ack says why */
        char done[1100];
        snprintf(done, sizeof done, "Done: nothing to abort: %s", err);
        SAL_LOG(a->csc, SAL_LOG_INFO, "Abort of job %s requested by %s: nothing to abort: %s", id,
                sal_cmd_identity(cmd), err);
        sal_cmd_finish(cmd, SAL_CMD_COMPLETE, done);
        return;
    }
    SAL_LOG(a->csc, SAL_LOG_INFO, "Abort of job %s requested by %s", id, sal_cmd_identity(cmd));
    sal_cmd_complete(cmd);
}

/* --- life cycle --- */

int ocps_app_open(ocps_app **out, uv_loop_t *loop, const sal_component_info *comp, int32_t index,
                  int simulation_mode, const char *runner, char *err, size_t errlen)
{
    ocps_topics tp;
    int rc = ocps_topics_resolve(comp, &tp, err, errlen);
    if (rc != 0) {
        return rc;
    }
    ocps_app *a = calloc(1, sizeof *a);
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    a->tp = tp;
    a->loop = loop;
    a->slurm_ping = -1;
    a->comp = comp;
    a->index = index;
    a->simulation_mode = simulation_mode;
    snprintf(a->runner, sizeof a->runner, "%s", runner);
    uv_timer_init(loop, &a->progress);
    uv_timer_init(loop, &a->publish);
    uv_timer_init(loop, &a->late);
    uv_timer_init(loop, &a->fault);
    uv_timer_init(loop, &a->hold);
    a->progress.data = a->publish.data = a->late.data = a->fault.data = a->hold.data = a;
    *out = a;
    return 0;
}

int ocps_app_attach(ocps_app *a, sal_csc *csc, char *err, size_t errlen)
{
    a->csc = csc;
    if (a->index == OCPS_RA_INDEX && ocps_ra_open(&a->ra, a->loop, csc, a->comp, &a->tp, err, errlen) != 0) {
        return -1;
    }
    int rc = sal_csc_add_command(csc, "execute", on_execute, a, SAL_CMD_CONCURRENT, err, errlen);
    if (rc == 0) {
        rc = sal_csc_add_command(csc, "abort_job", on_abort_job, a, SAL_CMD_CONCURRENT, err, errlen);
    }
    return rc;
}

static void store_fault_cb(uv_timer_t *t)
{
    ocps_app *a = t->data;
    if (a->csc != NULL && sal_csc_state(a->csc) != SAL_STATE_FAULT) {
        sal_csc_fault(a->csc, STORE_FAULT_CODE, a->fault_report, "");
    }
}

/* The engine's own messages (e.g. what retention removed) as logMessage; a
 * failed store write takes the CSC to FAULT (errorCode STORE_FAULT_CODE):
 * results may be reported again after a restart, and new work would add
 * to what is not recorded. Later failures are logged as errors. */
static void on_engine_log(void *arg, int level, const char *message)
{
    ocps_app *a = arg;
    if (level < ENGINE_LOG_STORE_FAILED) {
        SAL_LOG(a->csc, level, "%s", message);
        return;
    }
    /* in STANDBY no new work is taken, and a start says why it fails:
     * no FAULT after a failed start */
    if (a->csc == NULL || sal_csc_state(a->csc) == SAL_STATE_FAULT ||
        sal_csc_state(a->csc) == SAL_STATE_STANDBY || uv_is_active((uv_handle_t *)&a->fault)) {
        SAL_LOG(a->csc, SAL_LOG_ERROR, "job store: %s", message);
        return;
    }
    snprintf(a->fault_report, sizeof a->fault_report, "The job store could not record a change: %s", message);
    uv_timer_start(&a->fault, store_fault_cb, 0, 0); /* not inside the engine's call */
}

/* The configuration's limits of each job (abort grace, results listed,
 * log kept) for the engine. */
static void job_limits(const ocps_app *a, engine_options *o)
{
    o->abort_grace = a->config.abort_grace;
    o->max_results = (size_t)a->config.max_results;
    o->job_log_max = (uint64_t)(a->config.job_log_max_mb * 1e6);
}

/* The configuration's retention of the job history (days, GB) for the engine. */
static void retention_options(const ocps_app *a, engine_options *o)
{
    o->retention_max_age = a->config.retention_max_age_days * 86400.0;
    o->retention_max_jobs = a->config.retention_max_jobs > 0 ? (size_t)a->config.retention_max_jobs : 0;
    o->retention_max_bytes = (uint64_t)(a->config.retention_max_gb * 1e9);
    o->retention_interval = a->config.retention_interval;
}

static const char *empty_null(const char *s)
{
    return s[0] != '\0' ? s : NULL;
}

/* The configuration's slurm block for the engine; `extra` receives the
 * extra sbatch options (NULL-terminated, pointing into a->config). */
static void slurm_options(const ocps_app *a, engine_options *o, const char **extra)
{
    const ocps_slurm_config *s = &a->config.slurm;
    o->executor = ENGINE_EXECUTOR_SLURM;
    o->poll_interval = 1.0;
    if (s->work_root[0] != '\0') {
        o->work_root = s->work_root;
    }
    for (size_t i = 0; i < s->n_extra; i++) {
        extra[i] = s->extra_options[i];
    }
    o->slurm = (engine_slurm_options){
        .partition = empty_null(s->partition),
        .account = empty_null(s->account),
        .qos = empty_null(s->qos),
        .cpus_per_job = s->cpus_per_job,
        .memory = empty_null(s->memory),
        .time_limit = s->time_limit,
        .extra_options = extra,
        .slurm_conf = empty_null(s->slurm_conf),
    };
}

/* The job store the engine opens with configuration c. */
static void store_path(const ocps_app *a, const ocps_config *c, char *store, size_t len)
{
    if (c->job_store[0] != '\0') {
        snprintf(store, len, "%s", c->job_store);
    } else {
        snprintf(store, len, "%s/jobs-%d.sqlite", c->work_root, a->index);
    }
}

static int open_engine(ocps_app *a, char *err, size_t errlen)
{
    char token[4096] = "";
    char store[1200];
    store_path(a, &a->config, store, sizeof store);
    engine_options o = {
        .work_root = a->config.work_root,
        .store_path = store,
        .runner = a->runner,
        .max_concurrent = a->config.max_concurrent_jobs,
        .max_waiting = (size_t)a->config.max_waiting_jobs,
        .poll_interval = 0.5,
        .log = on_engine_log,
        .log_arg = a,
    };
    retention_options(a, &o);
    job_limits(a, &o);
    const char *extra[OCPS_SLURM_MAX_EXTRA + 1] = {NULL};
    if (a->config.executor == OCPS_EXECUTOR_SLURM) {
        slurm_options(a, &o, extra);
    }
    if (a->config.executor == OCPS_EXECUTOR_UWS) { /* the instance's server (docs/uws.md) */
        o.executor = ENGINE_EXECUTOR_UWS;
        o.poll_interval = a->config.poll_interval;
        o.uws = (engine_uws_options){.url = a->config.url, .abort_extension = !a->config.uws_reference};
        /* a bearer token (an ocps-engine beyond loopback needs one) from a
         * file, e.g. a mounted secret: never in the public configuration */
        const char *token_file = getenv("OCPS_UWS_TOKEN_FILE");
        if (token_file != NULL && token_file[0] != '\0') {
            char terr[1200];
            if (engine_uws_read_token(token_file, token, sizeof token, terr, sizeof terr) != 0) {
                snprintf(err, errlen, "OCPS_UWS_TOKEN_FILE %s", terr);
                return -1;
            }
            o.uws.token = token;
        }
    }
    int rc = engine_open(&a->engine, a->loop, &o, on_job, a, err, errlen);
    memset(token, 0, sizeof token); /* the engine holds its copy */
    return rc;
}

void ocps_app_set_embedded_pipetask(ocps_app *a, const char *path)
{
    snprintf(a->embedded_pipetask, sizeof a->embedded_pipetask, "%s", path != NULL ? path : "");
}

void ocps_app_set_embedded_butler(ocps_app *a, const char *path)
{
    snprintf(a->embedded_butler, sizeof a->embedded_butler, "%s", path != NULL ? path : "");
}

/* Is `name` (no '/') an executable in one of $PATH's directories? */
static bool in_path(const char *name)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path != NULL ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
        char file[4200];
        snprintf(file, sizeof file, "%s/%s", d, name);
        if (access(file, X_OK) == 0) {
            return true;
        }
    }
    return false;
}

/* Without a real pipetask (the configured name, not a path, is not in
 * $PATH), jobs run the embedded ocps-pipetask, which speaks the same
 * command line. A configured path is always used as it is. */
static void choose_pipetask(ocps_app *a, ocps_config *c)
{
    const char *base = strrchr(c->pipetask, '/') != NULL ? strrchr(c->pipetask, '/') + 1 : c->pipetask;
    c->embedded_pipetask = strcmp(base, "ocps-pipetask") == 0; /* configured by its path */
    /* its repository is butler-lite: the retrieval's "butler" is ocps-butler */
    snprintf(c->embedded_butler, sizeof c->embedded_butler, "%s", a->embedded_butler);
    if (strchr(c->pipetask, '/') != NULL || in_path(c->pipetask) || a->embedded_pipetask[0] == '\0') {
        return;
    }
    SAL_LOG(a->csc, SAL_LOG_INFO, "no %s in PATH: jobs run the embedded ocps-pipetask (%s)", c->pipetask,
            a->embedded_pipetask);
    snprintf(c->pipetask, sizeof c->pipetask, "%s", a->embedded_pipetask);
    c->embedded_pipetask = true;
}

/* Make `parsed` (owned) the configuration: open the engine (first start)
 * or change what can change without a restart. */
static int apply_config(ocps_app *a, ocps_config *parsed, char *err, size_t errlen)
{
    ocps_config_clear(&a->config);
    a->config = *parsed;
    memset(parsed, 0, sizeof *parsed);
    if (a->engine == NULL) {
        if (open_engine(a, err, errlen) != 0) {
            return -1;
        }
        /* what the engine could not record while it took up the jobs of an
         * earlier run (e.g. the end of one whose runner finished meanwhile):
         * this start fails as a later one would (its STORE_FAILED came while
         * STANDBY, where no FAULT is raised); the next start tries again */
        size_t written = 0;
        char serr[512];
        if (engine_store_flush(a->engine, &written, serr, sizeof serr) != 0) {
            snprintf(err, errlen, "the job store cannot record what it found at start: %s", serr);
            return -1;
        }
    }
    engine_set_max_concurrent(a->engine, a->config.max_concurrent_jobs);
    engine_set_max_waiting(a->engine, (size_t)a->config.max_waiting_jobs);
    engine_options retention = {0};
    retention_options(a, &retention);
    engine_set_retention(a->engine, &retention);
    engine_options limits = {0};
    job_limits(a, &limits);
    engine_set_job_limits(a->engine, &limits);
    uint64_t every = (uint64_t)(a->config.inprogress_interval * 1000);
    uv_timer_start(&a->progress, progress_cb, every, every);
    SAL_LOG(a->csc, SAL_LOG_INFO,
            "Configured: executor=%s%s, max_concurrent_jobs=%d, max_waiting_jobs=%d, work_root=%s%s%s",
            ocps_executor_name(a->config.executor),
            a->config.executor != OCPS_EXECUTOR_UWS ? ""
            : a->config.uws_reference               ? ", uws_api=uws-api-server"
                                                    : ", uws_api=ocps-engine",
            a->config.max_concurrent_jobs, a->config.max_waiting_jobs, a->config.work_root,
            a->config.has_instance ? ", butler=" : "", a->config.has_instance ? a->config.butler : "");
    return 0;
}

/* The Slurm controller's answer to the ping of a start. */
static void on_slurm_ping(void *arg, int ok, const char *message)
{
    ocps_app *a = arg;
    a->ping = NULL;
    a->slurm_ping = ok ? 1 : 0;
    char err[2048];
    if (sal_csc_state(a->csc) != SAL_STATE_STANDBY) {
        /* the start failed meanwhile (a FAULT): nothing of it is applied
         * (the engine not opened, no configuration kept) */
        ocps_config_clear(&a->candidate);
        sal_csc_configure_done(a->csc, "the summary state changed while the Slurm controller was asked");
        return;
    }
    if (!ok) {
        /* no slurm.conf anywhere: Slurm looks for the controller in DNS and
         * says so; say where the file is given */
        const char *conf = getenv("SLURM_CONF");
        bool no_conf = a->candidate.slurm.slurm_conf[0] == '\0' && (conf == NULL || conf[0] == '\0') &&
                       (strstr(message, "resolve_ctls_from_dns_srv") != NULL ||
                        strstr(message, "configuration source") != NULL);
        snprintf(
            err, sizeof err, "the Slurm controller is not reachable (executor slurm): %.1800s%s", message,
            no_conf ? " (no slurm.conf was found: set slurm.slurm_conf in the configuration, or SLURM_CONF)"
                    : "");
        ocps_config_clear(&a->candidate);
        sal_csc_configure_done(a->csc, err);
        return;
    }
    SAL_LOG(a->csc, SAL_LOG_DEBUG, "Slurm: %s", message);
    if (apply_config(a, &a->candidate, err, sizeof err) != 0) {
        ocps_config_clear(&a->candidate);
        sal_csc_configure_done(a->csc, err);
        return;
    }
    sal_csc_configure_done(a->csc, NULL);
}

/* Does the job command template run {pipetask}? */
static bool uses_pipetask(const json_t *command)
{
    size_t i;
    const json_t *word;
    json_array_foreach(command, i, word)
    {
        const char *w = json_string_value(word);
        if (w != NULL && strstr(w, "{pipetask}") != NULL) {
            return true;
        }
    }
    return command == NULL;
}

/* What the engine was opened with (work_root, job_store, executor, its
 * server, the slurm block) cannot change while the CSC runs: a start that
 * would change it fails naming the setting, rather than succeed and report
 * a configuration that is not the one in effect. */
static bool restart_only_change(const ocps_app *a, const ocps_config *p, char *err, size_t errlen)
{
    const ocps_config *c = &a->config;
    char what[1100] = "";
    if (a->engine == NULL) {
        return false; /* the first start opens the engine with it */
    }
    if (strcmp(p->work_root, c->work_root) != 0) {
        snprintf(what, sizeof what, "work_root %.500s -> %.500s", c->work_root, p->work_root);
    } else if (strcmp(p->job_store, c->job_store) != 0) {
        snprintf(what, sizeof what, "job_store \"%.500s\" -> \"%.500s\"", c->job_store, p->job_store);
    } else if (p->executor != c->executor) {
        snprintf(what, sizeof what, "executor %s -> %s", ocps_executor_name(c->executor),
                 ocps_executor_name(p->executor));
    } else if (p->executor == OCPS_EXECUTOR_UWS && strcmp(p->url, c->url) != 0) {
        snprintf(what, sizeof what, "the UWS server (url %.500s -> %.500s)", c->url, p->url);
    } else if (p->executor == OCPS_EXECUTOR_UWS && p->uws_reference != c->uws_reference) {
        snprintf(what, sizeof what, "the UWS server's API (uws_api %s -> %s)",
                 c->uws_reference ? "uws-api-server" : "ocps-engine",
                 p->uws_reference ? "uws-api-server" : "ocps-engine");
    } else if (memcmp(&p->slurm, &c->slurm, sizeof p->slurm) != 0) {
        snprintf(what, sizeof what, "the slurm block (a setting under slurm)");
    } else {
        return false;
    }
    snprintf(err, errlen,
             "%s: this setting is fixed while the CSC runs (its engine and jobs use it); restart the CSC "
             "to apply it, or start with a configuration that keeps it",
             what);
    return true;
}

/* The rest of a start once its configuration passed the checks:
 * executor slurm asks the controller first (scontrol ping on the loop;
 * SAL_CONFIGURE_PENDING), else it is applied now. parsed is taken. */
static int configure_go_on(ocps_app *a, ocps_config *parsed, char *err, size_t errlen)
{
    if (parsed->executor != OCPS_EXECUTOR_SLURM || a->csc == NULL) {
        return apply_config(a, parsed, err, errlen);
    }
    if (slurm_ping_start(&a->ping, a->loop, parsed->slurm.slurm_conf, SLURM_PING_TIMEOUT, on_slurm_ping, a,
                         err, errlen) != 0) {
        ocps_config_clear(parsed);
        return -1;
    }
    ocps_config_clear(&a->candidate);
    a->candidate = *parsed;
    memset(parsed, 0, sizeof *parsed);
    return SAL_CONFIGURE_PENDING;
}

/* The first start's directories answered, or did not within the timeout
 * (the probe is kept then: the next start waits for the same stat). */
static void on_root_probe(void *arg, bool answered, const char *path)
{
    ocps_app *a = arg;
    char err[2048];
    if (answered) {
        ocps_root_probe_close(a->probe);
        a->probe = NULL;
    }
    if (sal_csc_state(a->csc) != SAL_STATE_STANDBY) {
        ocps_config_clear(&a->candidate);
        sal_csc_configure_done(a->csc, "the summary state changed while the work root was asked");
        return;
    }
    if (!answered) {
        snprintf(err, sizeof err,
                 "%.1200s has not answered for %.0f s (a hung mount?): the engine is not opened on it; start "
                 "again once it answers",
                 path, ocps_root_probe_age(a->probe));
        ocps_config_clear(&a->candidate);
        sal_csc_configure_done(a->csc, err);
        return;
    }
    ocps_config parsed = a->candidate;
    memset(&a->candidate, 0, sizeof a->candidate);
    int rc = configure_go_on(a, &parsed, err, sizeof err);
    if (rc != SAL_CONFIGURE_PENDING) {
        ocps_config_clear(&parsed);
        sal_csc_configure_done(a->csc, rc == 0 ? NULL : err);
    }
}

int ocps_app_configure(ocps_app *a, json_t *config, char *err, size_t errlen)
{
    if (a->ra != NULL) {
        return ocps_ra_configure(a->ra, config, err, errlen); /* SAL_CONFIGURE_PENDING */
    }
    ocps_config parsed;
    if (ocps_config_from_json(a->index, config, &parsed, err, errlen) != 0) {
        return -1;
    }
    if (restart_only_change(a, &parsed, err, errlen)) {
        ocps_config_clear(&parsed);
        return -1;
    }
    char serr[512];
    if (a->engine != NULL && engine_store_check(a->engine, serr, sizeof serr) != 0) {
        /* the recovery from the store's FAULT would run new jobs that no
         * store records (a restart would neither re-adopt nor find them) */
        snprintf(err, errlen, "%s; restart the CSC to open a new job store", serr);
        ocps_config_clear(&parsed);
        return -1;
    }
    size_t written = 0;
    if (a->engine != NULL && engine_store_flush(a->engine, &written, serr, sizeof serr) != 0) {
        /* the store's FAULT is not over: a restart would report those jobs
         * again (or run one whose start alone was stored) */
        snprintf(err, errlen, "the job store still cannot record what it could not before: %s", serr);
        ocps_config_clear(&parsed);
        return -1;
    }
    if (written > 0) {
        SAL_LOG(a->csc, SAL_LOG_INFO, "job store: recorded %zu job change%s it could not before", written,
                written == 1 ? "" : "s");
    }
    choose_pipetask(a, &parsed);
    if (parsed.executor == OCPS_EXECUTOR_LOCAL && uses_pipetask(parsed.command) && a->simulation_mode == 0 &&
        parsed.pipetask[0] == '/' && access(parsed.pipetask, X_OK) != 0) {
        /* here, unlike Slurm's nodes or a UWS server, what jobs will run is known */
        snprintf(err, errlen, "pipetask %.1100s cannot be run: %s", parsed.pipetask, strerror(errno));
        ocps_config_clear(&parsed);
        return -1;
    }
    if (a->ping != NULL) {
        ocps_config_clear(&parsed);
        snprintf(err, errlen, "a start is already waiting for the Slurm controller");
        return -1;
    }
    if (ocps_root_probe_waiting(a->probe)) {
        ocps_config_clear(&parsed);
        snprintf(err, errlen, "a start is already waiting for work_root and the job store to answer");
        return -1;
    }
    if (ocps_root_probe_busy(a->probe)) {
        /* an earlier start's stat still hangs: wait for that one again */
        ocps_root_probe_rearm(a->probe, ROOT_PROBE_TIMEOUT, on_root_probe, a);
        ocps_config_clear(&a->candidate);
        a->candidate = parsed;
        return SAL_CONFIGURE_PENDING;
    }
    ocps_root_probe_close(a->probe); /* the last one answered */
    a->probe = NULL;
    if (a->engine == NULL && a->csc != NULL) {
        /* the first start: the engine opens on work_root and the job store
         * on the loop; ask first, on the thread pool, whether they answer */
        char store[1200];
        store_path(a, &parsed, store, sizeof store);
        const char *root = parsed.executor == OCPS_EXECUTOR_SLURM && parsed.slurm.work_root[0] != '\0'
                               ? parsed.slurm.work_root
                               : parsed.work_root;
        const char *paths[] = {root, store};
        if (ocps_root_probe_start(&a->probe, a->loop, paths, 2, ROOT_PROBE_TIMEOUT, on_root_probe, a, err,
                                  errlen) != 0) {
            ocps_config_clear(&parsed);
            return -1;
        }
        ocps_config_clear(&a->candidate);
        a->candidate = parsed;
        return SAL_CONFIGURE_PENDING;
    }
    return configure_go_on(a, &parsed, err, errlen);
}

/* Free the application once its timers and engine have closed. */
static void free_app(ocps_app *a)
{
    while (a->finished_head != NULL) {
        finished *f = a->finished_head;
        a->finished_head = f->next;
        free(f);
    }
    while (a->unwritten != NULL) {
        finished *f = a->unwritten;
        a->unwritten = f->next;
        free(f);
    }
    while (a->held != NULL) {
        finished *f = a->held;
        a->held = f->next;
        free(f);
    }
    while (a->late_acks != NULL) {
        late_ack *l = a->late_acks;
        a->late_acks = l->next;
        free(l->result);
        free(l);
    }
    ocps_config_clear(&a->config);
    ocps_config_clear(&a->candidate);
    ocps_app_close_cb cb = a->close_cb;
    void *arg = a->close_arg;
    free(a);
    if (cb != NULL) {
        cb(arg);
    }
}

static void part_closed(void *arg)
{
    ocps_app *a = arg;
    if (--a->closing_parts == 0) {
        free_app(a);
    }
}

static void timer_closed(uv_handle_t *h)
{
    part_closed(h->data);
}

void ocps_app_close(ocps_app *a, ocps_app_close_cb cb, void *arg)
{
    if (a == NULL) {
        if (cb != NULL) {
            cb(arg);
        }
        return;
    }
    if (a->closing) {
        return;
    }
    a->closing = true;
    slurm_ping_cancel(a->ping); /* a start in progress: its answer is not wanted */
    a->ping = NULL;
    ocps_root_probe_close(a->probe); /* likewise (a stat that hangs is not waited for) */
    a->probe = NULL;
    a->close_cb = cb;
    a->close_arg = arg;
    /* five timers, the engine, the RA backend and a metrics.json being read */
    a->closing_parts = a->reading != NULL ? 8 : 7;
    if (a->reading != NULL) {
        uv_cancel((uv_req_t *)&a->reading->req); /* its after-callback still runs */
    }
    uv_close((uv_handle_t *)&a->progress, timer_closed);
    uv_close((uv_handle_t *)&a->publish, timer_closed);
    uv_close((uv_handle_t *)&a->late, timer_closed);
    uv_close((uv_handle_t *)&a->fault, timer_closed);
    uv_close((uv_handle_t *)&a->hold, timer_closed); /* held jobs: published after a restart */
    while (a->pending != NULL) {
        pending *p = a->pending;
        a->pending = p->next;
        if (p->cmd != NULL) {
            sal_cmd_release(p->cmd);
        }
        free(p);
    }
    engine *e = a->engine;
    a->engine = NULL;
    ocps_ra *ra = a->ra;
    a->ra = NULL;
    ocps_ra_close(ra, part_closed, a);
    engine_close(e, part_closed, a); /* running jobs keep running */
}

const ocps_app_job_stats *ocps_app_get_job_stats(const ocps_app *a)
{
    return &a->job_stats;
}

const engine *ocps_app_engine(const ocps_app *a)
{
    return a->engine;
}

size_t ocps_app_backends(const ocps_app *a, ocps_app_backend out[3])
{
    size_t n = 0;
    int redis = a->ra != NULL ? ocps_ra_redis_up(a->ra) : -1;
    if (redis >= 0) {
        out[n++] = (ocps_app_backend){"redis", redis};
    }
    if (a->engine != NULL && engine_get_executor(a->engine) == ENGINE_EXECUTOR_UWS) {
        out[n++] = (ocps_app_backend){"uws", engine_backend_up(a->engine)};
    }
    bool slurm = a->engine != NULL && engine_get_executor(a->engine) == ENGINE_EXECUTOR_SLURM;
    if (slurm || a->slurm_ping == 0) {
        /* a failed ping at the latest start says more than the engine's
         * last squeue (the engine may be absent or of another executor) */
        out[n++] = (ocps_app_backend){"slurm", a->slurm_ping == 0 ? 0 : engine_backend_up(a->engine)};
    }
    return n;
}
