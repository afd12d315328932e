/*
 * engine_uws.c - the UWS executor: jobs of a server with the
 * uws-api-server API (lsst-dm/uws-api-server, or ocps-engine), over the
 * asynchronous HTTP client of engine_http.c (see engine.h,
 * engine_uws_options).
 *
 * A QUEUED job handed to the server holds a slot (slurm_active) while its
 * PUT is in flight; once the server has answered with its jobId, the id is
 * stored and the job is EXECUTING until a poll sees it end. run_id is the
 * engine's job id, so that a submission whose answer was lost (server
 * down, 5xx, the CSC killed) is looked up by run_id before it is sent
 * again (slurm_resumed). A tick (four per poll_interval, only while jobs
 * are handed over) polls each job one poll_interval after it was last
 * asked, and retries; a failing server is retried with
 * per-job exponential backoff, with one warning until it answers again.
 * When ocps-engine's job has ended, its metrics.json (GET
 * .../job/{jobId}/metrics, an extension) is copied into the job's own
 * directory before the end is taken, so that the job_result tells its
 * outputs as for a job run here.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "engine__http.h"
#include "engine__internal.h"
#include "ocps/sal_utf8.h"

#define ENGINE_UWS_TICK_MIN 0.05
#define ENGINE_UWS_DEFAULT_TIMEOUT 10.0
#define ENGINE_UWS_DEFAULT_BACKOFF 30.0
/* Requests in flight at most: more wait for the next tick, so that a burst
 * of jobs neither exceeds the server's connections nor queues requests
 * there until they time out (a PUT that timed out is looked up, and one
 * still queued at the server would not be found: sent twice). */
#define ENGINE_UWS_MAX_INFLIGHT 16

typedef enum engine_uws_kind { UWS_PUT, UWS_LOOKUP, UWS_POLL, UWS_ABORT, UWS_METRICS } engine_uws_kind;

/* What a request's callback needs (copied by the HTTP client). */
typedef struct engine_uws_arg {
    engine *e;
    char id[ENGINE_JOB_ID_LEN + 1];
    engine_uws_kind kind;
} engine_uws_arg;

static double engine_uws_interval(const engine *e)
{
    return e->poll_interval > ENGINE_UWS_TICK_MIN ? e->poll_interval : ENGINE_UWS_TICK_MIN;
}

/* ---- set-up ------------------------------------------------------------- */

static void engine_uws_on_timer_closed(uv_handle_t *h)
{
    engine__handle_closed(h->data);
}

static void engine_uws_on_http_closed(void *arg)
{
    engine__handle_closed(arg);
}

int engine_uws_read_token(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = fgets(out, (int)outlen, f);
    fclose(f);
    const char *p = line != NULL ? out + strspn(out, " \t") : "";
    size_t n = strcspn(p, "\r\n");
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
        n--;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s: no token in its first line", path);
        return -1;
    }
    memmove(out, p, n);
    out[n] = '\0';
    return 0;
}

int engine__uws_init(engine *e, const engine_options *o, char *err, size_t errlen)
{
    engine_uws *u = &e->uws;
    if (o->executor != ENGINE_EXECUTOR_UWS) {
        return 0;
    }
    const char *url = o->uws.url;
    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
        snprintf(err, errlen, "executor uws: url must be an http:// or https:// URL, not \"%s\"",
                 url ? url : "");
        return -1;
    }
    if ((u->url = strdup(url)) == NULL ||
        (o->uws.token != NULL && (u->token = strdup(o->uws.token)) == NULL) ||
        engine_http_open(&u->http, e->loop) != 0) {
        snprintf(err, errlen, "executor uws: out of memory");
        return -1;
    }
    size_t n = strlen(u->url);
    while (n > 0 && u->url[n - 1] == '/') {
        u->url[--n] = '\0';
    }
    u->abort_extension = o->uws.abort_extension;
    u->timeout = o->uws.timeout > 0 ? o->uws.timeout : ENGINE_UWS_DEFAULT_TIMEOUT;
    u->max_backoff = o->uws.max_backoff > 0 ? o->uws.max_backoff : ENGINE_UWS_DEFAULT_BACKOFF;
    uv_timer_init(e->loop, &u->timer);
    u->timer.data = e;
    e->open_handles += 2; /* the timer and the client */
    u->active = true;
    return 0;
}

void engine__uws_free(engine *e)
{
    free(e->uws.url);
    free(e->uws.token);
    memset(&e->uws, 0, sizeof e->uws);
}

void engine__uws_close(engine *e)
{
    engine_uws *u = &e->uws;
    engine__serial_drop(&u->writes);
    if (!u->active) {
        return;
    }
    uv_close((uv_handle_t *)&u->timer, engine_uws_on_timer_closed);
    engine_http_close(u->http, engine_uws_on_http_closed, e);
    u->http = NULL;
}

/* ---- requests ----------------------------------------------------------- */

/* A PUT answered 503 by ocps-engine (the server with the abort extension)
 * was refused whole (its --max-waiting line is full): nothing was created,
 * so the next try is the PUT again, with backoff, not a lookup of the
 * server's whole job list; the server is not unreachable (it answers).
 * Any other failed PUT may have created the job. */
static bool engine_uws_refused(const engine *e, long status)
{
    return e->uws.abort_extension && status == 503;
}

static void engine_uws_done(void *arg, long status, const char *body, size_t len, const char *curl_error);
static bool engine_uws_pump(engine *e);

/* Send a request about job r; false if it could not even be started. */
static bool engine_uws_send(engine *e, engine_rec *r, engine_uws_kind kind, const char *method,
                            const char *path, const char *ctype, const char *body)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", e->uws.url, path);
    engine_uws_arg a = {.e = e, .kind = kind};
    snprintf(a.id, sizeof a.id, "%s", r->st.job.id);
    /* ocps-engine takes a PUT's key as the job's id: a PUT sent again after
     * its answer was lost gets that job back, not a second one */
    char key[64];
    snprintf(key, sizeof key, "Idempotency-Key: %s", r->st.job.id);
    if (engine_http_request(e->uws.http, method, url, ctype, body, e->uws.token, kind == UWS_PUT ? key : NULL,
                            e->uws.timeout, engine_uws_done, &a, sizeof a) != 0) {
        return false;
    }
    r->uws_busy = true;
    r->uws_next = engine__mono() + engine_uws_interval(e); /* asked again one interval after this */
    return true;
}

/* Ask about r again after a backoff that doubles while it fails. */
static void engine_uws_backoff(engine *e, engine_rec *r)
{
    double b = r->uws_backoff > 0 ? r->uws_backoff * 2 : engine_uws_interval(e);
    r->uws_backoff = b < e->uws.max_backoff ? b : e->uws.max_backoff;
    r->uws_next = engine__mono() + r->uws_backoff;
}

/* The start of a server's answer for a message or a log line: at most
 * outlen - 1 bytes of it as valid UTF-8 text on one line (cut at a
 * character; each byte that begins none and each control character '?',
 * line breaks and tabs ' '), so that the job message it goes into stays a
 * valid JSON string and a log line stays one line. */
static const char *engine_uws_excerpt(const char *body, char *out, size_t outlen)
{
    sal_utf8_sanitize(body != NULL ? body : "", out, outlen);
    for (char *p = out; *p != '\0'; p++) {
        *p = *p == '\n' || *p == '\t' ? ' ' : *p;
    }
    return out;
}

/* The server failed (no answer, 5xx, nonsense): try again later. */
static void engine_uws_retry_later(engine *e, engine_rec *r, const char *what, long status, const char *body,
                                   const char *curl_error)
{
    if (!e->uws.unreachable) {
        e->uws.unreachable = true;
        if (status > 0) {
            char excerpt[201];
            engine__log(e, ENGINE_LOG_WARNING,
                        "UWS server %s: %s answered HTTP %ld: %s; retrying with backoff", e->uws.url, what,
                        status, engine_uws_excerpt(body, excerpt, sizeof excerpt));
        } else {
            engine__log(e, ENGINE_LOG_WARNING, "UWS server %s: %s: %s; retrying with backoff", e->uws.url,
                        what, curl_error != NULL ? curl_error : "no answer");
        }
    }
    engine_uws_backoff(e, r);
}

/* ocps-engine refused r's PUT (engine_uws_refused): it answers, but takes
 * no job for now; sent again with backoff. */
static void engine_uws_retry_refused(engine *e, engine_rec *r, const char *body)
{
    if (!e->uws.full) {
        e->uws.full = true;
        char excerpt[201];
        engine__log(e, ENGINE_LOG_WARNING,
                    "UWS server %s takes no new job for now: %s; retrying with backoff", e->uws.url,
                    engine_uws_excerpt(body, excerpt, sizeof excerpt));
    }
    engine_uws_backoff(e, r);
}

static void engine_uws_answered(engine *e, engine_rec *r)
{
    r->uws_backoff = 0;
    if (e->uws.unreachable) {
        e->uws.unreachable = false;
        engine__log(e, ENGINE_LOG_INFO, "UWS server %s answers again", e->uws.url);
    }
}

/* The job's second step when its PUT /job carries it as then_argv
 * (ocps-engine's extension; not in a custom uws_body nor in simulation
 * mode), else NULL. */
static json_t *engine_uws_then_sent(const engine *e, const json_t *spec)
{
    json_t *then = json_object_get(spec, "then");
    bool plain = json_string_value(json_object_get(spec, "simulate")) == NULL &&
                 !json_is_object(json_object_get(spec, "uws_body"));
    return e->uws.abort_extension && plain && json_is_array(then) ? then : NULL;
}

/* PUT /job: the spec's uws_body, or {"argv", "environment"} (and
 * "then_argv", ocps-engine's extension, for a second step); run_id is our
 * id. A simulated job sleeps and exits as the runner would: argv on
 * ocps-engine, and on the reference (no argv) the command
 * "sleep N; exit C" (digits only), never the job's real command. */
static char *engine_uws_put_body(const engine *e, const engine_rec *r)
{
    json_t *spec = r->st.spec;
    const char *sim = json_string_value(json_object_get(spec, "simulate"));
    json_t *custom = sim == NULL ? json_object_get(spec, "uws_body") : NULL;
    json_t *body = json_is_object(custom) ? json_deep_copy(custom) : json_object();
    if (body == NULL) {
        return NULL;
    }
    if (!json_is_object(custom)) {
        json_t *env = json_array();
        json_t *item;
        size_t i;
        json_array_foreach(json_object_get(spec, "env"), i, item)
        {
            const char *kv = json_string_value(item);
            const char *eq = kv != NULL ? strchr(kv, '=') : NULL;
            if (eq != NULL) {
                json_array_append_new(
                    env, json_pack("{s:s%, s:s}", "name", kv, (size_t)(eq - kv), "value", eq + 1));
            }
        }
        char secs[32] = "0";
        char code[32] = "0";
        if (sim != NULL && sscanf(sim, "%31[0-9.]:%31[0-9]", secs, code) >= 1 && !e->uws.abort_extension) {
            char command[80];
            snprintf(command, sizeof command, "sleep %s; exit %s", secs, code);
            json_object_set_new(body, "command", json_string(command));
        } else if (sim != NULL) {
            /* simulation mode: the server sleeps and exits as the runner would */
            json_object_set_new(body, "argv",
                                json_pack("[s,s,s,s,s,s]", "sh", "-c", "sleep \"$1\"; exit \"$2\"",
                                          "ocps-simulate", secs, code));
        } else {
            json_object_set(body, "argv", json_object_get(spec, "argv"));
            json_t *then = engine_uws_then_sent(e, spec);
            if (then != NULL) {
                json_object_set(body, "then_argv", then);
            }
        }
        json_object_set_new(body, "environment", env);
    }
    json_object_set_new(body, "run_id", json_string(r->st.job.id));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

static void engine_uws_send_submit(engine *e, engine_rec *r)
{
    if (r->slurm_resumed) {
        /* only the jobs with our run_id from ocps-engine (its extension);
         * the reference ignores the filter and lists all, searched alike */
        char path[128];
        snprintf(path, sizeof path, "/job?run_id=%s", r->st.job.id);
        if (!engine_uws_send(e, r, UWS_LOOKUP, "GET", path, NULL, NULL)) {
            engine_uws_retry_later(e, r, "GET /job", 0, "", "cannot start a request");
        }
        return;
    }
    char *body = engine_uws_put_body(e, r);
    if (body == NULL || !engine_uws_send(e, r, UWS_PUT, "PUT", "/job", "application/json", body)) {
        engine_uws_retry_later(e, r, "PUT /job", 0, "", "cannot start a request");
    }
    free(body);
}

static void engine_uws_send_abort(engine *e, engine_rec *r)
{
    char path[128];
    bool ok;
    if (e->uws.abort_extension) {
        snprintf(path, sizeof path, "/job/%s/phase", r->st.job.executor_id);
        ok = engine_uws_send(e, r, UWS_ABORT, "POST", path, "application/x-www-form-urlencoded",
                             "PHASE=ABORT");
    } else {
        snprintf(path, sizeof path, "/job/%s", r->st.job.executor_id);
        ok = engine_uws_send(e, r, UWS_ABORT, "DELETE", path, NULL, NULL);
    }
    if (!ok) {
        engine_uws_retry_later(e, r, "abort", 0, "", "cannot start a request");
    }
}

/* ---- answers ------------------------------------------------------------ */

static void engine_uws_watch(engine *e);

/* The server took the job: it executes, its id stored with the phase in
 * one write (engine_store_update). */
static void engine_uws_submitted(engine *e, engine_rec *r, const char *uws_id)
{
    snprintf(r->st.job.executor_id, sizeof r->st.job.executor_id, "%s", uws_id);
    engine__set_active(e, r, false);
    r->slurm_resumed = false;
    r->uws_next = engine__mono() + engine_uws_interval(e);
    r->st.job.started = engine__now();
    snprintf(r->st.job.message, sizeof r->st.job.message, "UWS job %s", uws_id);
    engine__change(e, r, ENGINE_EXECUTING);
    if (r->st.abort_requested) {
        engine_uws_send_abort(e, r);
    }
    engine_uws_watch(e);
}

static bool engine_uws_id_ok(const char *id)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n == 0 || n >= sizeof(((engine_job *)0)->executor_id)) {
        return false;
    }
    return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == n;
}

static void engine_uws_end(engine *e, engine_rec *r, engine_phase phase, engine_reason reason, int code,
                           const char *message)
{
    engine__set_active(e, r, false);
    engine__finish(e, r, phase, reason, code, message);
    engine__schedule(e);
}

static void engine_uws_on_put(engine *e, engine_rec *r, long status, const char *body)
{
    char msg[600];
    char excerpt[401];
    if (status == 200) {
        json_t *obj = json_loads(body, 0, NULL);
        const char *id = json_string_value(json_object_get(obj, "jobId"));
        if (engine_uws_id_ok(id)) {
            engine_uws_submitted(e, r, id);
        } else {
            snprintf(msg, sizeof msg, "the UWS server answered PUT /job without a usable jobId: %s",
                     engine_uws_excerpt(body, excerpt, 301));
            engine_uws_end(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, msg);
        }
        json_decref(obj);
    } else if (status >= 400 && status < 500) {
        snprintf(msg, sizeof msg, "the UWS server refused the job (HTTP %ld): %s", status,
                 engine_uws_excerpt(body, excerpt, sizeof excerpt));
        engine_uws_end(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, msg);
    } else {
        r->slurm_resumed = true; /* it may have been created: look it up before sending it again */
    }
}

/* A PUT answered 500 (the server's application failed it: the reference
 * answers so for a job it cannot make, e.g. a value its job template
 * cannot carry) and then not found by the lookup is sent again at most
 * this many times; the job then fails with the server's answer. No
 * answer, 502, 503 and 504 (the server, or the way to it, is down) are
 * retried without a limit. */
#define ENGINE_UWS_PUT_FAILURES_MAX 5

static void engine_uws_on_lookup(engine *e, engine_rec *r, const char *body)
{
    json_t *list = json_loads(body, 0, NULL);
    const char *found = NULL;
    size_t i;
    json_t *job;
    json_array_foreach(list, i, job)
    {
        const char *run_id = json_string_value(json_object_get(job, "runId"));
        if (run_id != NULL && strcmp(run_id, r->st.job.id) == 0) {
            found = json_string_value(json_object_get(job, "jobId"));
        }
    }
    if (engine_uws_id_ok(found)) {
        engine_uws_answered(e, r);
        engine_uws_submitted(e, r, found);
    } else if (r->st.abort_requested) {
        engine_uws_answered(e, r);
        engine_uws_end(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED,
                       "aborted before it was submitted");
    } else if (r->uws_put_failures >= ENGINE_UWS_PUT_FAILURES_MAX) {
        char msg[600];
        snprintf(msg, sizeof msg, "the UWS server failed the job's PUT /job %d times; the last answer: %s",
                 r->uws_put_failures, r->uws_put_failure != NULL ? r->uws_put_failure : "");
        engine__log(e, ENGINE_LOG_WARNING, "Job %s: %s", r->st.job.id, msg);
        engine_uws_end(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1, msg);
    } else {
        /* not made: the PUT again now, its backoff and the server's
         * warning kept (the lookup answering does not mean the PUT will) */
        r->slurm_resumed = false;
        engine_uws_send_submit(e, r);
    }
    json_decref(list);
}

/* ocps-engine's job has ended: ask for its metrics.json first (the end is
 * taken at the next poll, once it has been read or found missing). */
static bool engine_uws_metrics_first(engine *e, engine_rec *r, const char *phase)
{
    if (!e->uws.abort_extension || r->uws_metrics_read || phase == NULL ||
        (strcmp(phase, "completed") != 0 && strcmp(phase, "error") != 0 && strcmp(phase, "aborted") != 0)) {
        return false;
    }
    char path[128];
    snprintf(path, sizeof path, "/job/%s/metrics", r->st.job.executor_id);
    if (!engine_uws_send(e, r, UWS_METRICS, "GET", path, NULL, NULL)) {
        engine__log(e, ENGINE_LOG_WARNING, "Job %s: cannot ask %s for its metrics.json; ending without it",
                    r->st.job.id, e->uws.url);
        return false;
    }
    return true;
}

/* An answer about the metrics that settles them: read (200), none (404,
 * 410; 400 from a server without the extension), or too large. Anything
 * else (no answer, 5xx, 401, 403, 408, 429...) is tried again, at most
 * ENGINE_UWS_METRICS_TRIES times. */
#define ENGINE_UWS_METRICS_TRIES 5

static bool engine_uws_metrics_settled(long status, bool too_large)
{
    return status == 200 || status == 400 || status == 404 || status == 410 || too_large;
}

/* The write of an ended job's metrics.json on libuv's thread pool (its
 * directory is under the work root, which may hang like an NFS mount):
 * the worker has copies only; the job is found again by id and store
 * sequence when it is back. One write is on the pool at a time, the
 * others wait in order (e->uws.writes, engine_serial.c): a hung work root
 * holds one of libuv's threads (4 by default, shared with the rest of the
 * process: configuration loads, DNS lookups, retention). */
typedef struct engine_uws_metrics_write {
    engine_serial_work serial; /* first: the queue's item */
    char id[ENGINE_JOB_ID_LEN + 1];
    int64_t seq;
    char *workdir;
    char *body;
    size_t len;
    int error; /* errno of the failed write, 0 written */
} engine_uws_metrics_write;

/* Written whole to a temporary name, on disk, then renamed. */
static void engine_uws_metrics_work(engine_serial_work *sw)
{
    engine_uws_metrics_write *w = (engine_uws_metrics_write *)sw;
    char path[ENGINE_WORKDIR_MAX + 64];
    char tmp[ENGINE_WORKDIR_MAX + 64];
    snprintf(path, sizeof path, "%s/metrics.json", w->workdir);
    snprintf(tmp, sizeof tmp, "%s/.metrics.json.tmp", w->workdir);
    /* the job's directory under the work root (made here: the job ran elsewhere) */
    bool dir = mkdir(w->workdir, 0755) == 0 || errno == EEXIST;
    FILE *f = dir ? fopen(tmp, "we") : NULL;
    bool ok = f != NULL && fwrite(w->body, 1, w->len, f) == w->len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = f != NULL && fclose(f) == 0 && ok; /* on disk before the end is stored */
    if (!ok || rename(tmp, path) != 0) {
        w->error = errno != 0 ? errno : EIO;
        unlink(tmp);
    }
}

/* Dropped at engine_close (never written): its job stays in the store as
 * it is, and is polled again by the next engine. */
static void engine_uws_metrics_free(engine_serial_work *sw)
{
    engine_uws_metrics_write *w = (engine_uws_metrics_write *)sw;
    free(w->workdir);
    free(w->body);
    free(w);
}

/* Back on the loop: the job, busy with the write, is free again and ends
 * at the next tick (with its metrics.json, or without if the write failed). */
static void engine_uws_metrics_written(engine_serial_work *sw)
{
    engine_uws_metrics_write *w = (engine_uws_metrics_write *)sw;
    engine *e = sw->e;
    if (w->error != 0) {
        engine__log(e, ENGINE_LOG_WARNING, "Job %s: cannot keep its metrics.json in %s: %s", w->id,
                    w->workdir, strerror(w->error));
    }
    engine_rec *r = e->closed ? NULL : engine__find(e, w->id);
    if (r != NULL && r->st.seq == w->seq) {
        r->uws_busy = false;
        r->uws_next = 0;
    }
    engine_uws_metrics_free(sw);
}

/* Queue the write of r's metrics.json after those waiting (the job busy
 * meanwhile); false if it could not be queued (out of memory). */
static bool engine_uws_keep_metrics(engine *e, engine_rec *r, const char *body, size_t len)
{
    engine_uws_metrics_write *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return false;
    }
    w->seq = r->st.seq;
    memcpy(w->id, r->st.job.id, sizeof w->id);
    w->workdir = strdup(r->st.job.workdir);
    w->body = malloc(len > 0 ? len : 1);
    w->len = len;
    w->serial.run = engine_uws_metrics_work;
    w->serial.done = engine_uws_metrics_written;
    w->serial.drop = engine_uws_metrics_free;
    if (w->workdir == NULL || w->body == NULL) {
        engine_uws_metrics_free(&w->serial);
        return false;
    }
    memcpy(w->body, body, len);
    r->uws_busy = true; /* it ends once the file is written */
    engine__serial_push(e, &e->uws.writes, &w->serial);
    return true;
}

/* The metrics.json of ocps-engine's job into the job's directory (written
 * whole, then renamed, on the thread pool); none (404, or a server without
 * the extension: 400) or too large: the job ends without it. */
static void engine_uws_on_metrics(engine *e, engine_rec *r, long status, const char *body, size_t len,
                                  const char *curl_error)
{
    r->uws_metrics_read = true;
    r->uws_next = 0; /* the end, at the next tick */
    if (status != 200) {
        if (status > 0 && status != 404) {
            char excerpt[201];
            engine__log(e, ENGINE_LOG_WARNING, "Job %s: its metrics.json was not read from %s: HTTP %ld %s",
                        r->st.job.id, e->uws.url, status, engine_uws_excerpt(body, excerpt, sizeof excerpt));
        } else if (status <= 0) {
            engine__log(e, ENGINE_LOG_WARNING, "Job %s: its metrics.json was not read from %s: %s",
                        r->st.job.id, e->uws.url, curl_error != NULL ? curl_error : "no answer");
        }
        return;
    }
    if (!engine_uws_keep_metrics(e, r, body != NULL ? body : "", body != NULL ? len : 0)) {
        engine__log(e, ENGINE_LOG_WARNING, "Job %s: cannot keep its metrics.json in %s: out of memory",
                    r->st.job.id, r->st.job.workdir);
    }
}

/* Why the server's job failed: ocps-engine's jobInfo.reason where it is
 * one a failed job can have (e.g. infrastructure: its directory or runner
 * could not be made); the reference gives none: the pipeline failed. */
static engine_reason engine_uws_error_reason(json_t *obj)
{
    const char *name = json_string_value(json_object_get(json_object_get(obj, "jobInfo"), "reason"));
    int reason = engine_reason_from_name(name);
    switch (reason) {
    case ENGINE_REASON_TIMEOUT:
    case ENGINE_REASON_INFRASTRUCTURE:
    case ENGINE_REASON_PREREQUISITE:
    case ENGINE_REASON_LOST:
        return (engine_reason)reason;
    default:
        return ENGINE_REASON_PIPELINE_FAILED;
    }
}

/* Was r sent with a second step (then_argv) that the server's job object
 * does not show? An ocps-engine older than the extension ignores the key:
 * its job completes without having run the step. */
static bool engine_uws_step_ignored(const engine *e, const engine_rec *r, json_t *obj)
{
    return engine_uws_then_sent(e, r->st.spec) != NULL &&
           !json_is_array(json_object_get(json_object_get(obj, "parameters"), "then_argv"));
}

/* The server's job object: its results, and its end. */
static void engine_uws_apply(engine *e, engine_rec *r, json_t *obj)
{
    const char *phase = json_string_value(json_object_get(obj, "phase"));
    json_t *rss = json_object_get(json_object_get(obj, "jobInfo"), "maxRssKb");
    if (json_is_integer(rss)) { /* ocps-engine's, measured by its runner */
        r->st.job.max_rss_kb = (long long)json_integer_value(rss);
    }
    if (engine_uws_metrics_first(e, r, phase)) {
        return;
    }
    json_t *results = json_object_get(obj, "results");
    if (json_is_array(results)) {
        json_t *paths = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(results, i, item)
        {
            json_t *uri = json_object_get(item, "uri");
            if (json_is_string(uri) && i < (e->max_results ? e->max_results : ENGINE_DEFAULT_MAX_RESULTS)) {
                json_array_append(paths, uri);
            }
        }
        json_decref(r->st.job.results);
        r->st.job.results = paths;
        r->st.job.results_total = json_array_size(results);
        r->st.job.results_truncated = json_array_size(paths) < json_array_size(results);
    }
    json_t *code = json_object_get(json_object_get(obj, "jobInfo"), "exitCode");
    const char *why = json_string_value(json_object_get(json_object_get(obj, "errorSummary"), "message"));
    char msg[512];
    if (phase == NULL) {
        return;
    }
    if (strcmp(phase, "completed") == 0 && engine_uws_step_ignored(e, r, obj)) {
        engine__log(e, ENGINE_LOG_WARNING,
                    "Job %s: the UWS server's job %s shows no then_argv: it ran no second step", r->st.job.id,
                    r->st.job.executor_id);
        engine_uws_end(e, r, ENGINE_ERROR, ENGINE_REASON_INFRASTRUCTURE, -1,
                       "step 1 of 2 completed, but the UWS server ran no step 2: it ignored then_argv (an "
                       "ocps-engine older than this CSC?); upgrade ocps-engine, or set retrieve_command: [] "
                       "to run jobs without the retrieval");
    } else if (strcmp(phase, "completed") == 0) {
        engine_uws_end(e, r, ENGINE_COMPLETED, ENGINE_REASON_SUCCESS, 0, "");
    } else if (strcmp(phase, "error") == 0) {
        snprintf(msg, sizeof msg, "%s", why != NULL && why[0] != '\0' ? why : "the UWS job failed");
        engine_uws_end(e, r, ENGINE_ERROR, engine_uws_error_reason(obj),
                       json_is_integer(code) ? (int)json_integer_value(code) : 1, msg);
    } else if (strcmp(phase, "aborted") == 0) {
        engine_uws_end(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED, "aborted");
    } else if (strcmp(phase, "unknown") == 0) {
        snprintf(msg, sizeof msg, "the UWS server lost track of job %s", r->st.job.executor_id);
        engine_uws_end(e, r, ENGINE_UNKNOWN, ENGINE_REASON_LOST, -1, msg);
    }
}

static void engine_uws_on_poll(engine *e, engine_rec *r, long status, const char *body)
{
    char msg[256];
    if (status == 200) {
        json_t *obj = json_loads(body, 0, NULL);
        if (!json_is_string(json_object_get(obj, "phase"))) {
            /* no job object (an HTML page of a proxy, the reference's {}
             * when it failed to read the job): a failed request, retried
             * with a warning, not a job still running */
            json_decref(obj);
            engine_uws_retry_later(e, r, "GET /job/{id} (no job object)", status, body, NULL);
            return;
        }
        engine_uws_answered(e, r);
        engine_uws_apply(e, r, obj);
        json_decref(obj);
    } else if (status == 404) {
        engine_uws_answered(e, r);
        if (r->st.abort_requested) {
            engine_uws_end(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED,
                           "aborted (deleted from the UWS server)");
        } else {
            snprintf(msg, sizeof msg, "the UWS server no longer knows job %s", r->st.job.executor_id);
            engine_uws_end(e, r, ENGINE_UNKNOWN, ENGINE_REASON_LOST, -1, msg);
        }
    }
}

static void engine_uws_on_abort(engine *e, engine_rec *r, long status)
{
    if (e->uws.abort_extension && (status == 200 || status == 303)) {
        r->uws_abort_sent = true; /* a poll sees it aborted */
        r->uws_next = 0;
    } else if (status == 200 || status == 404) {
        engine_uws_end(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED,
                       "aborted (deleted from the UWS server)");
    }
}

/* A PUT answered 500 counts towards ENGINE_UWS_PUT_FAILURES_MAX (the
 * lookup that follows decides); other failures start the count again. */
static void engine_uws_note_put_failure(engine_rec *r, long status, const char *body)
{
    if (status != 500) {
        r->uws_put_failures = 0;
        return;
    }
    char excerpt[301];
    char text[400];
    snprintf(text, sizeof text, "HTTP 500: %s", engine_uws_excerpt(body, excerpt, sizeof excerpt));
    char *copy = strdup(text);
    if (copy != NULL) {
        free(r->uws_put_failure);
        r->uws_put_failure = copy;
    }
    r->uws_put_failures++;
}

static void engine_uws_done(void *arg, long status, const char *body, size_t len, const char *curl_error)
{
    engine_uws_arg *a = arg;
    engine *e = a->e;
    engine_rec *r = e->closed ? NULL : engine__find(e, a->id);
    if (r == NULL) {
        return;
    }
    r->uws_busy = false;
    bool too_large = status == 0 && curl_error != NULL && strcmp(curl_error, ENGINE_HTTP_TOO_LARGE) == 0;
    if (a->kind == UWS_METRICS && (engine_uws_metrics_settled(status, too_large) ||
                                   ++r->uws_metrics_tries >= ENGINE_UWS_METRICS_TRIES)) {
        if (status > 0) {
            engine_uws_answered(e, r);
        }
        if (!engine_phase_final(r->st.job.phase)) {
            engine_uws_on_metrics(e, r, status, body, len, curl_error);
        }
        engine_uws_pump(e);
        return;
    }
    static const char *const what[] = {"PUT /job", "GET /job", "GET /job/{id}", "abort",
                                       "GET /job/{id}/metrics"};
    bool transient =
        status == 0 || status >= 500 || (status >= 400 && status != 404 && a->kind != UWS_PUT) ||
        a->kind == UWS_METRICS ||                                  /* not settled: again, after a backoff */
        (a->kind == UWS_POLL && status != 200 && status != 404) || /* a redirect, 204... */
        (a->kind == UWS_PUT && status != 200 && status < 400);     /* a redirect, 204...: not taken */
    if (a->kind == UWS_PUT && engine_uws_refused(e, status)) {
        if (r->st.abort_requested) { /* nothing created: nothing to abort on the server */
            engine_uws_end(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED,
                           "aborted before it was submitted");
            engine_uws_pump(e);
            return;
        }
        engine_uws_retry_refused(e, r, body); /* nothing created: the PUT again, no lookup */
        return;
    }
    if (transient || (a->kind == UWS_LOOKUP && status != 200)) {
        engine_uws_retry_later(e, r, what[a->kind], status, body, curl_error);
        /* an abort the server keeps failing does not stop the polls: the
         * next request is a poll, which sees the job end on its own */
        r->uws_poll_first = a->kind == UWS_ABORT;
        if (a->kind == UWS_PUT) {
            r->slurm_resumed = true; /* it may exist: look it up before sending it again */
            engine_uws_note_put_failure(r, status, body);
        }
        return;
    }
    if (a->kind == UWS_PUT && e->uws.full) {
        e->uws.full = false;
        engine__log(e, ENGINE_LOG_INFO, "UWS server %s takes new jobs again", e->uws.url);
    }
    if (a->kind != UWS_LOOKUP && a->kind != UWS_POLL) { /* those are judged by what they hold */
        engine_uws_answered(e, r);
    }
    if (engine_phase_final(r->st.job.phase)) {
        engine_uws_pump(e);
        return;
    }
    switch (a->kind) {
    case UWS_PUT:
        engine_uws_on_put(e, r, status, body);
        break;
    case UWS_LOOKUP:
        engine_uws_on_lookup(e, r, body);
        break;
    case UWS_POLL:
        engine_uws_on_poll(e, r, status, body);
        break;
    case UWS_ABORT:
        engine_uws_on_abort(e, r, status);
        break;
    case UWS_METRICS: /* answered above, or failed (transient) */
        break;
    }
    if (!e->closed) {
        engine_uws_pump(e); /* a slot for the next request that is due */
    }
}

/* ---- the tick ----------------------------------------------------------- */

static void engine_uws_one(engine *e, engine_rec *r, double now)
{
    if (r->uws_busy || now < r->uws_next || engine_phase_final(r->st.job.phase) ||
        engine_http_pending(e->uws.http) >= ENGINE_UWS_MAX_INFLIGHT) {
        return;
    }
    if (r->st.job.executor_id[0] == '\0') {
        if (r->slurm_active) {
            engine_uws_send_submit(e, r);
        }
        return;
    }
    if (r->st.abort_requested && !r->uws_abort_sent && !r->uws_poll_first) {
        engine_uws_send_abort(e, r);
        return;
    }
    r->uws_poll_first = false; /* the abort again after this poll */
    char path[128];
    snprintf(path, sizeof path, "/job/%s", r->st.job.executor_id);
    if (!engine_uws_send(e, r, UWS_POLL, "GET", path, NULL, NULL)) {
        engine_uws_retry_later(e, r, "GET /job/{id}", 0, "", "cannot start a request");
    }
}

/* Send what is due, up to the in-flight limit; whether any job is still
 * handed over. Sending never changes a job's phase (answers come later;
 * a request that cannot start is retried later), so the lists can be
 * walked as they are. A queued job is handed over only while it holds a
 * slot (slurm_active, counted in e->queued_active): with none, the queue
 * (which may be long) is not walked. */
static bool engine_uws_pump(engine *e)
{
    bool handed = false;
    double now = engine__mono();
    for (int p = ENGINE_QUEUED; p <= ENGINE_EXECUTING; p++) {
        if (p == ENGINE_QUEUED && e->queued_active == 0) {
            continue;
        }
        for (engine_rec *r = e->lists[p].head; r != NULL; r = r->next) {
            if (r->slurm_active || r->st.job.executor_id[0] != '\0') {
                handed = true;
                if (engine_http_pending(e->uws.http) < ENGINE_UWS_MAX_INFLIGHT) {
                    engine_uws_one(e, r, now);
                }
            }
        }
    }
    return handed;
}

static void engine_uws_on_timer(uv_timer_t *t)
{
    engine *e = t->data;
    if (!e->closed && !engine_uws_pump(e) && engine_http_pending(e->uws.http) == 0) {
        uv_timer_stop(&e->uws.timer);
    }
}

static void engine_uws_watch(engine *e)
{
    if (!e->closed && e->uws.active && !uv_is_active((uv_handle_t *)&e->uws.timer)) {
        /* four ticks an interval: each job is asked every 1 to 1.25 intervals */
        uint64_t ms = (uint64_t)ceil(engine_uws_interval(e) * 250);
        uv_timer_start(&e->uws.timer, engine_uws_on_timer, ms, ms);
    }
}

/* ---- the engine's calls ------------------------------------------------- */

int engine__uws_submit(engine *e, engine_rec *r)
{
    engine__set_active(e, r, true);
    r->uws_next = 0;
    r->uws_backoff = 0;
    if (engine_http_pending(e->uws.http) < ENGINE_UWS_MAX_INFLIGHT) {
        engine_uws_send_submit(e, r);
    } /* else the tick sends it */
    engine_uws_watch(e);
    return 0;
}

int engine__uws_abort(engine *e, engine_rec *r, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    r->st.abort_requested = true; /* engine_job_abort returned before if it was */
    r->abort_time = engine__mono();
    if (r->st.job.executor_id[0] == '\0') {
        if (!r->uws_busy && !r->slurm_resumed) {
            engine_uws_end(e, r, ENGINE_ABORTED, ENGINE_REASON_ABORTED, ENGINE_EXIT_ABORTED,
                           "aborted before it was submitted");
        } else if (!r->uws_busy && !r->slurm_active) {
            /* adopted at a restart, perhaps sent before it, waiting for a
             * slot: looked up now (found: aborted there; not: ended), not
             * once a slot frees */
            engine__set_active(e, r, true);
            r->uws_next = 0;
            engine_uws_watch(e);
        }
        return 0; /* the answer to its PUT (or lookup) decides */
    }
    if (!r->uws_busy) {
        engine_uws_send_abort(e, r);
    }
    engine_uws_watch(e);
    return 0;
}

void engine__uws_adopt(engine *e, engine_rec *r)
{
    if (r->st.job.executor_id[0] != '\0') {
        /* the server took it: executing (a store written by an earlier
         * version, which stored the id and the phase in two writes, may
         * still say QUEUED), polled by its id, never submitted again */
        if (r->st.job.phase == ENGINE_QUEUED) {
            r->st.job.phase = ENGINE_EXECUTING;
            if (r->st.job.started <= 0) {
                r->st.job.started = engine__now();
            }
        }
        r->uws_next = 0;
        engine_uws_watch(e);
    } else if (r->st.job.phase == ENGINE_QUEUED || r->st.job.phase == ENGINE_EXECUTING) {
        r->st.job.phase = ENGINE_QUEUED; /* it may have been submitted: looked up first */
        r->slurm_resumed = true;
    }
}
