/* ocps_ra.c - see ocps_ra.h. */
#include "ocps/ocps_ra.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ocps/ocps_job.h"
#include "ocps/ocps_redis.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_pytext.h"
#include "ocps/sal_utf8.h"

#define RA_CONFIG_MAX 8192  /* execute.config, as for the other indices */
#define RA_MAX_KEYS 64      /* key/value pairs in one execute */
#define RA_KEY_MAX 256      /* bytes of a key */
#define RA_MAX_WAITS 8      /* completion records one execute waits for */
#define RA_MESSAGE_MAX 1500 /* bytes of a failure's reason */
#define RA_ID_LEN 32

/* Settings from the configuration's rapid_analysis block. */
typedef struct ra_settings {
    double command_timeout;
    double connect_timeout;
    int max_value_bytes;
    bool completion_wait;
    double completion_timeout;
    double completion_poll_interval;
} ra_settings;

typedef struct ra_job ra_job;

/* One LPUSH of a job. */
typedef struct ra_push {
    ra_job *job;
    size_t index;
} ra_push;

/* A completion record waited for: HGET <hash> <visit>. */
typedef struct ra_wait {
    char hash[RA_KEY_MAX + 64];
    char visit[64];
    char key[RA_KEY_MAX + 1]; /* the pushed key it answers */
    bool found;
    char count[64];
} ra_wait;

/* PUSH_UNKNOWN: sent, but no answer came (timed out, connection lost):
 * Redis may have run it */
enum { PUSH_PENDING, PUSH_DONE, PUSH_FAILED, PUSH_UNKNOWN };

struct ra_job {
    ra_job *next;
    ocps_ra *ra;
    sal_cmd *cmd; /* NULL once answered or released */
    char id[RA_ID_LEN + 1];
    int32_t seqnum;
    char identity[SAL_IDENTITY_MAX + 1];
    char redis_address[300]; /* where it was pushed (ra->redis may be gone or another by its end) */
    double created;          /* UTC seconds */
    size_t n;
    char **keys;
    char **values;
    int *state;
    long long *length;
    char **error;
    ra_push *pushes;
    size_t outstanding; /* replies still to come (pushes and polls) */
    ra_wait waits[RA_MAX_WAITS];
    size_t nwaits;
    bool waiting;
    uint64_t wait_started_ns;
    double waited;
    bool timed_out;
    char poll_error[200]; /* the last completion poll's failure ("" after one answered) */
    bool finished;
    uv_timer_t timer; /* completion polls */
    bool timer_closed;
};

struct ocps_ra {
    uv_loop_t *loop;
    sal_csc *csc;
    const sal_component_info *comp;
    ocps_topics tp;
    ocps_redis *redis;
    ra_settings s;
    bool configuring; /* a start waits for the first PING */
    bool down_logged; /* the current outage has been logged */
    ra_job *jobs;
    bool closing;
    bool redis_closed;
    ocps_ra_close_cb close_cb;
    void *close_arg;
};

static void ra_maybe_free(ocps_ra *ra);

/* --- helpers --- */

static double now_utc(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 32 lower-case hex digits from the system's random source. */
static int new_id(char out[RA_ID_LEN + 1])
{
    unsigned char b[RA_ID_LEN / 2];
    if (uv_random(NULL, NULL, b, sizeof b, 0, NULL) != 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof b; i++) {
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    }
    return 0;
}

/* The text pushed for a JSON number: an integer as written, a real as
 * Python's repr (str) writes it (100.0, 1500.0, 1e-05), as the Python
 * OCPS pushes it. */
static void number_text(const json_t *v, char *out, size_t len)
{
    if (json_is_integer(v)) {
        snprintf(out, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    }
    sal_py_float_text(json_real_value(v), out, len);
}

/* What an ack says is cut to OCPS_ACK_TEXT_MAX bytes, at a character
 * boundary, with "..." (job_result and logMessage keep the whole text). */
#define RA_ACK_MAX OCPS_ACK_TEXT_MAX

static void cap_text(char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max) {
        return;
    }
    memcpy(s + sal_utf8_cut(s, max - 3), "...", 4);
}

/* CMD_FAILED with "Failed: <text>", the whole ack within RA_ACK_MAX. */
static void ra_fail(sal_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ra_fail(sal_cmd *cmd, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cap_text(text, RA_ACK_MAX - strlen("Failed: "));
    sal_cmd_fail(cmd, "%s", text);
}

/* --- job records --- */

static void job_free(ra_job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->keys[i]);
        free(j->values[i]);
        free(j->error[i]);
    }
    free(j->keys);
    free(j->values);
    free(j->state);
    free(j->length);
    free(j->error);
    free(j->pushes);
    free(j);
}

static void job_unlink(ocps_ra *ra, ra_job *j)
{
    for (ra_job **pp = &ra->jobs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            return;
        }
    }
}

/* Free a job once it has been answered, its timer closed and no reply is
 * still to come. */
static void job_maybe_free(ra_job *j)
{
    if (j->finished && j->timer_closed && j->outstanding == 0) {
        ocps_ra *ra = j->ra;
        job_unlink(ra, j);
        job_free(j);
        ra_maybe_free(ra);
    }
}

static void job_timer_closed(uv_handle_t *h)
{
    ra_job *j = h->data;
    j->timer_closed = true;
    job_maybe_free(j);
}

static void job_discarded(uv_handle_t *h)
{
    job_free(h->data);
}

/* Free a job that was never linked nor started (once its timer closed). */
static void job_discard(ra_job *j)
{
    j->finished = true;
    uv_close((uv_handle_t *)&j->timer, job_discarded);
}

static ra_job *job_new(ocps_ra *ra, size_t n)
{
    ra_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        return NULL;
    }
    j->ra = ra;
    j->keys = calloc(n ? n : 1, sizeof *j->keys);
    j->values = calloc(n ? n : 1, sizeof *j->values);
    j->state = calloc(n ? n : 1, sizeof *j->state);
    j->length = calloc(n ? n : 1, sizeof *j->length);
    j->error = calloc(n ? n : 1, sizeof *j->error);
    j->pushes = calloc(n ? n : 1, sizeof *j->pushes);
    if (!j->keys || !j->values || !j->state || !j->length || !j->error || !j->pushes) {
        job_free(j);
        return NULL;
    }
    uv_timer_init(ra->loop, &j->timer);
    j->timer.data = j;
    return j;
}

/* --- validation of execute.config --- */

/* Parse config into the job's keys and values; nothing is pushed when this
 * fails. Returns the job (NULL with a reason in err). */
static ra_job *parse_config(ocps_ra *ra, const char *config, char *err, size_t errlen)
{
    char why[200];
    if (!sal_text_check(config, RA_CONFIG_MAX, "\t\n\r", why, sizeof why)) {
        snprintf(err, errlen, "execute.config %s; nothing was pushed", why);
        return NULL;
    }
    json_error_t jerr;
    json_t *obj = json_loads(config, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (obj == NULL) {
        snprintf(err, errlen,
                 "execute.config is not valid JSON (%.200s at line %d, column %d); nothing was pushed",
                 jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(obj)) {
        snprintf(err, errlen,
                 "execute.config must be a JSON object of Redis list keys and values, e.g. "
                 "{\"LSSTCam-FROM-OCS_DONUTPAIR\": \"2025111500227,2025111500228\"}; nothing was pushed");
        json_decref(obj);
        return NULL;
    }
    size_t n = json_object_size(obj);
    if (n == 0 || n > RA_MAX_KEYS) {
        snprintf(err, errlen, "execute.config must hold 1 to %d keys (it has %zu); nothing was pushed",
                 RA_MAX_KEYS, n);
        json_decref(obj);
        return NULL;
    }
    ra_job *j = job_new(ra, n);
    if (j == NULL) {
        snprintf(err, errlen, "out of memory");
        json_decref(obj);
        return NULL;
    }
    const char *key;
    json_t *value;
    size_t i = 0;
    int rc = 0;
    json_object_foreach(obj, key, value) /* in the object's order */
    {
        char text[64];
        const char *v = NULL;
        if (key[0] == '\0') {
            snprintf(err, errlen, "execute.config: key %zu is empty; nothing was pushed", i + 1);
            rc = -1;
        } else if (!sal_text_check(key, RA_KEY_MAX, NULL, why, sizeof why)) {
            snprintf(err, errlen, "execute.config: key %zu %s; nothing was pushed", i + 1, why);
            rc = -1;
        } else if (json_is_string(value)) {
            v = json_string_value(value);
            if (!sal_text_check(v, (size_t)ra->s.max_value_bytes, NULL, why, sizeof why)) {
                snprintf(err, errlen, "execute.config: the value of %.256s %s; nothing was pushed", key, why);
                rc = -1;
            }
        } else if (json_is_number(value)) {
            number_text(value, text, sizeof text);
            v = text;
        } else {
            snprintf(err, errlen,
                     "execute.config: the value of %.256s must be a string or a number (it is %s); nothing "
                     "was pushed",
                     key,
                     json_is_object(value)  ? "an object"
                     : json_is_array(value) ? "an array"
                     : json_is_null(value)  ? "null"
                                            : "a boolean");
            rc = -1;
        }
        if (rc != 0) {
            break;
        }
        j->keys[i] = strdup(key);
        j->values[i] = strdup(v);
        if (j->keys[i] == NULL || j->values[i] == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        j->n = ++i;
    }
    json_decref(obj);
    if (rc != 0) {
        job_discard(j);
        return NULL;
    }
    return j;
}

/* The key of Rapid Analysis's queue that it answers with a completion
 * record: a donut pair (rubintv_production's AOS donut pipeline, then
 * sendZernikeCountToMTAOS). No consumer reads MTAOS's single-image key
 * (-FROM-OCS_CWFS) or the focus sweep's with a record to wait for. */
#define RA_AOS_KEY "-FROM-OCS_DONUTPAIR"

/* Rapid Analysis stores LSSTComCamSim's records under the visit plus this
 * (the simulated ids' year 702X, which the OCS does not know of). */
#define RA_COMCAMSIM_VISIT_OFFSET 5000000000000LL

/* The record's field for a visit of the value: as written, or shifted as
 * Rapid Analysis shifts LSSTComCamSim's. False if it cannot be kept. */
static bool wait_visit(const char *instrument, size_t ilen, const char *v, size_t vlen, char *out,
                       size_t outlen)
{
    if (vlen == 0 || vlen >= outlen) {
        return false;
    }
    snprintf(out, outlen, "%.*s", (int)vlen, v);
    static const char sim[] = "LSSTComCamSim";
    if (ilen == sizeof sim - 1 && strncmp(instrument, sim, ilen) == 0) {
        char *end;
        errno = 0;
        long long id = strtoll(out, &end, 10);
        if (*end == '\0' && errno == 0 && id >= 0 && id <= LLONG_MAX - RA_COMCAMSIM_VISIT_OFFSET) {
            snprintf(out, outlen, "%lld", id + RA_COMCAMSIM_VISIT_OFFSET);
        }
    }
    return true;
}

/* The completion records to wait for: one per donut-pair key. */
static void find_waits(ra_job *j)
{
    size_t alen = strlen(RA_AOS_KEY);
    for (size_t i = 0; i < j->n && j->nwaits < RA_MAX_WAITS; i++) {
        const char *k = j->keys[i];
        size_t klen = strlen(k);
        if (klen <= alen || strcmp(k + klen - alen, RA_AOS_KEY) != 0) {
            continue;
        }
        ra_wait *w = &j->waits[j->nwaits];
        /* <INSTRUMENT>_WEP_PROCESSING_RESULT, field: the (intra-focal) visit */
        size_t ilen = klen - alen;
        for (size_t c = 0; c < ilen && c < sizeof w->hash - 32; c++) {
            w->hash[c] = (char)toupper((unsigned char)k[c]);
        }
        snprintf(w->hash + (ilen < sizeof w->hash - 32 ? ilen : sizeof w->hash - 32), 32,
                 "_WEP_PROCESSING_RESULT");
        const char *v = j->values[i] + strspn(j->values[i], " ");
        if (!wait_visit(k, ilen, v, strcspn(v, ", "), w->visit, sizeof w->visit)) {
            continue;
        }
        snprintf(w->key, sizeof w->key, "%s", k);
        j->nwaits++;
    }
}

/* --- ending a job --- */

static json_t *job_result_json(const ra_job *j, const char *phase, const char *reason, int exit_code,
                               const char *message)
{
    ocps_ra *ra = j->ra;
    json_t *pushed = json_array();
    json_t *not_pushed = json_array();
    for (size_t i = 0; i < j->n; i++) {
        if (j->state[i] == PUSH_DONE) {
            json_array_append_new(pushed, json_pack("{s:s, s:s, s:I}", "key", j->keys[i], "value",
                                                    j->values[i], "list_length", (json_int_t)j->length[i]));
        } else {
            json_array_append_new(not_pushed, json_pack("{s:s, s:s, s:b}", "key", j->keys[i], "error",
                                                        j->error[i] ? j->error[i] : "not sent",
                                                        "may_have_been_pushed", j->state[i] == PUSH_UNKNOWN));
        }
    }
    json_t *completion = json_null();
    if (j->nwaits > 0 && ra->s.completion_wait) {
        completion = json_array();
        for (size_t w = 0; w < j->nwaits; w++) {
            const ra_wait *x = &j->waits[w];
            json_array_append_new(completion,
                                  json_pack("{s:s, s:s, s:s, s:b, s:o}", "key", x->key, "hash", x->hash,
                                            "visit", x->visit, "found", x->found, "zernike_count",
                                            x->found ? json_string(x->count) : json_null()));
        }
    }
    double ended = now_utc();
    char run_id[16]; /* str(seqNum), as the other indices' and the Python OCPS's run_id */
    snprintf(run_id, sizeof run_id, "%d", (int)j->seqnum);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:o, s:f, s:o, s:o, s:o, s:o, "
                     "s:{s:s}}",
                     "jobId", j->id, "job_id", j->id, "runId", run_id, "ownerId", j->identity, "phase", phase,
                     "reason", reason, "exit_code", exit_code, "backend", "rapid_analysis", "redis",
                     j->redis_address, "creationTime", ocps_job_iso_time(j->created), "endTime",
                     ocps_job_iso_time(ended), "executionDuration", ended - j->created, "pushed", pushed,
                     "not_pushed", not_pushed, "completion", completion, "completion_wait_time",
                     j->waiting ? json_real(j->waited) : json_null(), "errorSummary", "message", message);
}

static void write_job_result(ocps_ra *ra, const ra_job *j, int exit_code, const char *result)
{
    const sal_topic_info *ti = &ra->comp->topics[ra->tp.job_result];
    void *s = sal_sample_new(ti);
    char err[256] = "out of memory";
    int rc = s == NULL ? -1 : 0;
    if (rc == 0) {
        rc = sal_field_set_string(ti, ra->tp.result_job_id, s, j->id, err, sizeof err);
    }
    if (rc == 0) {
        rc = sal_field_set_number(ti, ra->tp.result_exit_code, s, 0, exit_code, err, sizeof err);
    }
    if (rc == 0) {
        rc = sal_field_set_string(ti, ra->tp.result_result, s, result, err, sizeof err);
    }
    if (rc == 0 && sal_csc_write(ra->csc, "logevent_job_result", s, SAL_WRITE_FORCE) != 0) {
        snprintf(err, sizeof err, "the write failed");
        rc = -1;
    }
    if (rc != 0) {
        SAL_LOG(ra->csc, SAL_LOG_ERROR, "Job %s: job_result not written: %s", j->id, err);
    }
    sal_sample_free(ti, s);
}

/* s ended before the first byte that begins no whole UTF-8 character:
 * text that snprintf cut inside a character stays valid JSON and SAL. */
static void keep_whole_chars(char *s)
{
    size_t i = 0;
    size_t n;
    while (s[i] != '\0' && (n = sal_utf8_char_len((const unsigned char *)s + i)) > 0) {
        i += n;
    }
    s[i] = '\0';
}

/* "k1 (length 3), k2 (length 1)" of the pushed keys, bounded. */
static void pushed_list(const ra_job *j, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < j->n && used < len; i++) {
        if (j->state[i] != PUSH_DONE) {
            continue;
        }
        int w = snprintf(out + used, len - used, "%s%s (list length %lld)", used ? ", " : "", j->keys[i],
                         j->length[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    if (out[0] == '\0') {
        snprintf(out, len, "none");
    }
    keep_whole_chars(out);
}

/* Write job_result, then the final ack: COMPLETE when every push was
 * acknowledged (and every awaited record came), else FAILED with why. */
static void finish(ra_job *j)
{
    ocps_ra *ra = j->ra;
    if (j->finished) {
        return;
    }
    j->finished = true;
    uv_timer_stop(&j->timer);
    size_t done = 0;
    char first_error[400] = "";
    for (size_t i = 0; i < j->n; i++) {
        if (j->state[i] == PUSH_DONE) {
            done++;
        } else if (first_error[0] == '\0') {
            snprintf(first_error, sizeof first_error, "%s: %s: %s",
                     j->state[i] == PUSH_UNKNOWN ? "unknown whether pushed" : "not pushed", j->keys[i],
                     j->error[i] ? j->error[i] : "not sent");
        }
    }
    char message[RA_MESSAGE_MAX];
    char pushed[RA_MESSAGE_MAX / 2];
    pushed_list(j, pushed, sizeof pushed);
    const char *phase = "completed";
    const char *reason = "success";
    int exit_code = 0;
    message[0] = '\0';
    if (done < j->n) {
        phase = "error";
        reason = "redis";
        exit_code = 1;
        /* the counts and the first failure first: an ack keeps only the start */
        snprintf(message, sizeof message, "pushed %zu of %zu keys; %s; pushed: %s", done, j->n, first_error,
                 pushed);
    } else if (j->timed_out) {
        phase = "error";
        reason = "timeout";
        exit_code = 1;
        size_t used = 0;
        for (size_t w = 0; w < j->nwaits && used < sizeof message; w++) {
            if (!j->waits[w].found) {
                int n = snprintf(message + used, sizeof message - used, "%sno %s record for visit %s",
                                 used ? "; " : "", j->waits[w].hash, j->waits[w].visit);
                used += n > 0 ? (size_t)n : 0;
            }
        }
        if (used < sizeof message) {
            snprintf(message + used, sizeof message - used,
                     " within %.1f s (completion_timeout)%s%s; every key was pushed: %s",
                     ra->s.completion_timeout, j->poll_error[0] ? "; the last poll: " : "", j->poll_error,
                     pushed);
        }
    }
    keep_whole_chars(message);
    json_t *res = job_result_json(j, phase, reason, exit_code, message);
    char *text = res != NULL ? json_dumps(res, JSON_COMPACT) : NULL;
    write_job_result(ra, j, exit_code, text != NULL ? text : "{}");
    free(text);
    json_decref(res);
    SAL_LOG(ra->csc, exit_code == 0 ? SAL_LOG_INFO : SAL_LOG_WARNING, "Job %s ended: phase=%s reason=%s%s%s",
            j->id, phase, reason, message[0] ? ": " : "", message);
    if (j->cmd != NULL) {
        if (exit_code == 0) {
            json_t *keys = json_array();
            json_t *lengths = json_array();
            for (size_t i = 0; i < j->n; i++) {
                json_array_append_new(keys, json_string(j->keys[i]));
                json_array_append_new(lengths, json_integer(j->length[i]));
            }
            /* the keys and lengths when they fit in an ack, else fewer details */
            json_t *summary =
                json_pack("{s:s, s:s, s:I, s:o, s:o}", "job_id", j->id, "phase", phase, "pushed_count",
                          (json_int_t)j->n, "pushed", keys, "list_lengths", lengths);
            char *st = summary != NULL ? json_dumps(summary, JSON_COMPACT) : NULL;
            for (const char *drop = "pushed"; st != NULL && strlen(st) > RA_ACK_MAX && drop != NULL;
                 drop = strcmp(drop, "pushed") == 0 ? "list_lengths" : NULL) {
                json_object_del(summary, drop);
                free(st);
                st = json_dumps(summary, JSON_COMPACT);
            }
            sal_cmd_finish(j->cmd, SAL_CMD_COMPLETE, st != NULL ? st : "Done");
            free(st);
            json_decref(summary);
        } else {
            ra_fail(j->cmd, "%s", message);
        }
        j->cmd = NULL;
    }
    uv_close((uv_handle_t *)&j->timer, job_timer_closed);
}

/* --- the completion wait --- */

static void poll_waits(uv_timer_t *t);

/* The next poll after completion_poll_interval, or at the deadline if that
 * comes first (that poll's answer then decides). */
static void schedule_poll(ra_job *j)
{
    double left = j->ra->s.completion_timeout - j->waited;
    double delay = j->ra->s.completion_poll_interval < left ? j->ra->s.completion_poll_interval : left;
    uv_timer_start(&j->timer, poll_waits, delay > 0 ? (uint64_t)(delay * 1000) : 0, 0);
}

/* The reply of HGET for the first record not found yet (arg: the job;
 * poll_waits asks for one record at a time). */
/* Keep text as the job's last poll failure, cut at a character so that
 * the reason it goes into stays whole (keep_whole_chars). */
static void set_poll_error(ra_job *j, const char *text)
{
    size_t n = strlen(text);
    if (n >= sizeof j->poll_error) {
        n = sal_utf8_cut(text, sizeof j->poll_error - 1);
    }
    memcpy(j->poll_error, text, n);
    j->poll_error[n] = '\0';
}

static void on_poll_reply(void *arg, const ocps_redis_reply *reply, const char *failure)
{
    ra_job *j = arg;
    j->outstanding--;
    if (j->finished) {
        job_maybe_free(j);
        return;
    }
    ra_wait *w = NULL;
    for (size_t i = 0; i < j->nwaits; i++) {
        if (!j->waits[i].found) {
            w = &j->waits[i];
            break;
        }
    }
    if (w != NULL && reply != NULL && reply->kind == OCPS_REDIS_STRING) {
        w->found = true;
        j->poll_error[0] = '\0';
        snprintf(w->count, sizeof w->count, "%.*s", (int)(reply->len < 63 ? reply->len : 63), reply->str);
        SAL_LOG(j->ra->csc, SAL_LOG_INFO, "Job %s: Rapid Analysis reported %s %s = %s after %.1f s", j->id,
                w->hash, w->visit, w->count, (uv_hrtime() - j->wait_started_ns) / 1e9);
    } else if (w != NULL && reply != NULL && reply->kind == OCPS_REDIS_ERROR) {
        /* the record cannot be read (WRONGTYPE, NOAUTH, LOADING...): said
         * once, and kept for the timeout's reason */
        char said[sizeof w->hash + sizeof w->visit + 512];
        snprintf(said, sizeof said, "HGET %s %s: %.*s", w->hash, w->visit,
                 (int)(reply->len < 400 ? reply->len : 400), reply->str);
        char before[sizeof j->poll_error];
        memcpy(before, j->poll_error, sizeof before);
        set_poll_error(j, said);
        if (strcmp(before, j->poll_error) != 0) {
            SAL_LOG(j->ra->csc, SAL_LOG_WARNING, "Job %s: completion poll %s", j->id, said);
        }
    } else if (failure != NULL) {
        SAL_LOG(j->ra->csc, SAL_LOG_DEBUG, "Job %s: completion poll failed: %s", j->id, failure);
        set_poll_error(j, failure);
    } else {
        j->poll_error[0] = '\0'; /* answered: no record yet */
    }
    bool all = true;
    for (size_t i = 0; i < j->nwaits; i++) {
        all = all && j->waits[i].found;
    }
    j->waited = (uv_hrtime() - j->wait_started_ns) / 1e9;
    if (all) {
        finish(j);
    } else if (w != NULL && w->found) {
        poll_waits(&j->timer); /* the next record at once */
    } else if (j->waited >= j->ra->s.completion_timeout) {
        j->timed_out = true;
        finish(j);
    } else {
        schedule_poll(j);
    }
}

/* Ask for the first record not found yet (HGET <hash> <visit>). */
static void poll_waits(uv_timer_t *t)
{
    ra_job *j = t->data;
    for (size_t i = 0; i < j->nwaits; i++) {
        ra_wait *w = &j->waits[i];
        if (w->found) {
            continue;
        }
        const char *argv[] = {"HGET", w->hash, w->visit};
        char err[600];
        /* no client while a failed start left none: polled again after the next one */
        if (j->ra->redis != NULL &&
            ocps_redis_command(j->ra->redis, 3, argv, NULL, on_poll_reply, j, err, sizeof err) == 0) {
            j->outstanding++;
            return;
        }
        /* Redis is down: try again until the time is up */
        if (j->ra->redis != NULL) {
            set_poll_error(j, err);
        }
        j->waited = (uv_hrtime() - j->wait_started_ns) / 1e9;
        if (j->waited >= j->ra->s.completion_timeout) {
            j->timed_out = true;
            finish(j);
        } else {
            schedule_poll(j);
        }
        return;
    }
}

/* --- pushing --- */

static void pushes_done(ra_job *j)
{
    bool all = true;
    for (size_t i = 0; i < j->n; i++) {
        all = all && j->state[i] == PUSH_DONE;
    }
    if (all && j->ra->s.completion_wait && j->nwaits > 0) {
        j->waiting = true;
        j->wait_started_ns = uv_hrtime();
        poll_waits(&j->timer);
        return;
    }
    finish(j);
}

static void on_push_reply(void *arg, const ocps_redis_reply *reply, const char *failure)
{
    ra_push *p = arg;
    ra_job *j = p->job;
    size_t i = p->index;
    j->outstanding--;
    if (reply != NULL && reply->kind == OCPS_REDIS_INTEGER) {
        j->state[i] = PUSH_DONE;
        j->length[i] = reply->integer;
    } else {
        /* no reply at all: sent, and perhaps run (a caller who sends it
         * again may queue the visit twice) */
        j->state[i] = reply == NULL ? PUSH_UNKNOWN : PUSH_FAILED;
        char text[400];
        if (reply != NULL && reply->kind == OCPS_REDIS_ERROR) {
            snprintf(text, sizeof text, "Redis refused it: %.*s", (int)(reply->len < 300 ? reply->len : 300),
                     reply->str);
        } else {
            snprintf(text, sizeof text, "%s", failure != NULL ? failure : "unexpected reply");
        }
        j->error[i] = strdup(text);
    }
    if (j->finished) {
        job_maybe_free(j);
        return;
    }
    bool pending = false;
    for (size_t k = 0; k < j->n; k++) {
        pending = pending || j->state[k] == PUSH_PENDING;
    }
    if (!pending) {
        pushes_done(j);
    }
}

/* --- commands --- */

void ocps_ra_execute(ocps_ra *ra, sal_cmd *cmd, const char *config)
{
    char err[2048];
    if (sal_csc_check_enabled(ra->csc, "execute", err, sizeof err) != 0) {
        ra_fail(cmd, "%s", err);
        return;
    }
    ra_job *j = parse_config(ra, config, err, sizeof err);
    if (j == NULL) {
        ra_fail(cmd, "%s", err);
        return;
    }
    if (!ocps_redis_up(ra->redis)) {
        ra_fail(cmd,
                "Redis at %s is not reachable (%s); nothing was pushed. The CSC stays ENABLED and reconnects",
                ra->redis != NULL ? ocps_redis_address(ra->redis) : "?",
                ra->redis != NULL ? ocps_redis_down_reason(ra->redis) : "not configured");
        job_discard(j);
        return;
    }
    if (new_id(j->id) != 0) {
        snprintf(j->id, sizeof j->id, "%016llx%016llx", (unsigned long long)uv_hrtime(),
                 (unsigned long long)(now_utc() * 1e6));
    }
    j->cmd = cmd;
    j->seqnum = sal_cmd_seqnum(cmd);
    snprintf(j->identity, sizeof j->identity, "%s", sal_cmd_identity(cmd));
    keep_whole_chars(j->identity);
    snprintf(j->redis_address, sizeof j->redis_address, "%s", ocps_redis_address(ra->redis));
    j->created = now_utc();
    j->next = ra->jobs;
    ra->jobs = j;
    find_waits(j);
    char text[128];
    snprintf(text, sizeof text, "{\"job_id\": \"%s\"}", j->id);
    /* the pushes' replies, then (waiting) the polls up to the deadline and
     * the last poll's reply, each reply within command_timeout */
    double timeout = ra->s.command_timeout + 5 +
                     (ra->s.completion_wait ? ra->s.completion_timeout + ra->s.command_timeout : 0);
    sal_cmd_in_progress(cmd, timeout, text);
    /* the job_id event */
    const sal_topic_info *ti = &ra->comp->topics[ra->tp.job_id];
    void *s = sal_sample_new(ti);
    if (s != NULL) {
        sal_field_set_string(ti, ra->tp.id_event_name, s, "cmd_execute", err, sizeof err);
        sal_field_set_number(ti, ra->tp.id_seq_num, s, 0, j->seqnum, err, sizeof err);
        sal_field_set_string(ti, ra->tp.id_job_id, s, j->id, err, sizeof err);
        sal_csc_write(ra->csc, "logevent_job_id", s, SAL_WRITE_FORCE);
    }
    sal_sample_free(ti, s);
    SAL_LOG(ra->csc, SAL_LOG_INFO, "Job %s created for %s (seqNum %d): %zu key(s) to push to Redis, first %s",
            j->id, j->identity, j->seqnum, j->n, j->keys[0]);
    /* every LPUSH is sent now, in the object's order (one connection, so
     * Redis applies them in that order) */
    for (size_t i = 0; i < j->n; i++) {
        j->pushes[i] = (ra_push){j, i};
        const char *argv[] = {"LPUSH", j->keys[i], j->values[i]};
        if (ocps_redis_command(ra->redis, 3, argv, NULL, on_push_reply, &j->pushes[i], err, sizeof err) ==
            0) {
            j->outstanding++;
        } else {
            j->state[i] = PUSH_FAILED;
            j->error[i] = strdup(err);
        }
    }
    if (j->outstanding == 0) {
        pushes_done(j);
    }
}

void ocps_ra_abort_job(ocps_ra *ra, sal_cmd *cmd, const char *job_id)
{
    char err[1024];
    if (sal_csc_check_enabled(ra->csc, "abort_job", err, sizeof err) != 0) {
        ra_fail(cmd, "%s", err);
        return;
    }
    (void)job_id;
    ra_fail(
        cmd, "%s",
        ra->s.completion_wait
            ? "abort_job is not supported by index 101 (Rapid Analysis): its processing cannot be stopped "
              "from here; an execute ends when the completion record comes or completion_timeout passes"
            : "abort_job is not supported by index 101 (Rapid Analysis): an execute ends as soon as "
              "Redis has acknowledged its pushes, and Rapid Analysis's processing cannot be stopped from "
              "here; there is nothing to abort");
}

/* --- connection --- */

static void on_redis_state(void *arg, bool up, const char *reason)
{
    ocps_ra *ra = arg;
    if (ra->configuring) {
        ra->configuring = false;
        if (up) {
            ra->down_logged = false;
            SAL_LOG(ra->csc, SAL_LOG_INFO, "Connected to Redis at %s (AUTH and PING answered)",
                    ocps_redis_address(ra->redis));
            sal_csc_configure_done(ra->csc, NULL);
        } else {
            char failure[800];
            snprintf(failure, sizeof failure, "Redis at %s (REDIS_HOST, REDIS_PORT) did not answer PING: %s",
                     ocps_redis_address(ra->redis), reason);
            cap_text(failure, RA_ACK_MAX - strlen("Failed: "));
            ocps_redis *r = ra->redis;
            ra->redis = NULL;
            ocps_redis_close(r, NULL, NULL);
            sal_csc_configure_done(ra->csc, failure);
        }
        return;
    }
    if (up && ra->down_logged) {
        ra->down_logged = false;
        SAL_LOG(ra->csc, SAL_LOG_INFO, "Redis at %s is back; execute works again",
                ocps_redis_address(ra->redis));
    } else if (!up && !ra->down_logged) {
        ra->down_logged = true;
        SAL_LOG(ra->csc, SAL_LOG_WARNING,
                "Redis at %s is down (%s): execute fails until it answers again; the CSC stays ENABLED and "
                "reconnects",
                ocps_redis_address(ra->redis), reason);
    }
}

static void read_settings(json_t *config, ra_settings *s)
{
    json_t *b = json_object_get(config, "rapid_analysis");
    s->command_timeout = json_number_value(json_object_get(b, "command_timeout"));
    s->connect_timeout = json_number_value(json_object_get(b, "connect_timeout"));
    s->max_value_bytes = (int)json_number_value(json_object_get(b, "max_value_bytes"));
    s->completion_wait = json_is_true(json_object_get(b, "completion_wait"));
    s->completion_timeout = json_number_value(json_object_get(b, "completion_timeout"));
    s->completion_poll_interval = json_number_value(json_object_get(b, "completion_poll_interval"));
    /* a configuration validated with defaults has them all; guard anyway */
    s->command_timeout = s->command_timeout > 0 ? s->command_timeout : 10;
    s->connect_timeout = s->connect_timeout > 0 ? s->connect_timeout : 5;
    s->max_value_bytes = s->max_value_bytes > 0 ? s->max_value_bytes : 1024;
    s->completion_timeout = s->completion_timeout > 0 ? s->completion_timeout : 120;
    s->completion_poll_interval = s->completion_poll_interval > 0 ? s->completion_poll_interval : 0.5;
}

int ocps_ra_configure(ocps_ra *ra, json_t *config, char *err, size_t errlen)
{
    const char *host = getenv("REDIS_HOST");
    const char *port_text = getenv("REDIS_PORT");
    const char *password = getenv("REDIS_PASSWORD");
    if (host == NULL || host[0] == '\0') {
        snprintf(err, errlen,
                 "REDIS_HOST is not set: index 101 (Rapid Analysis) needs REDIS_HOST, REDIS_PASSWORD "
                 "and optionally REDIS_PORT (default 6379)");
        return -1;
    }
    if (password == NULL || password[0] == '\0') {
        snprintf(err, errlen,
                 "REDIS_PASSWORD is not set: index 101 (Rapid Analysis) needs REDIS_HOST, "
                 "REDIS_PASSWORD and optionally REDIS_PORT (default 6379)");
        return -1;
    }
    long port = 6379;
    if (port_text != NULL && port_text[0] != '\0') {
        char *end;
        errno = 0;
        port = strtol(port_text, &end, 10);
        if (*end != '\0' || errno != 0 || port < 1 || port > 65535) {
            snprintf(err, errlen, "REDIS_PORT=%.32s is not a port number (1 to 65535)", port_text);
            return -1;
        }
    }
    read_settings(config, &ra->s);
    ocps_redis *old = ra->redis;
    ra->redis = NULL;
    ocps_redis_close(old, NULL, NULL); /* a new start connects afresh */
    ocps_redis_options o = {
        .host = host,
        .port = (int)port,
        .password = password,
        .connect_timeout = ra->s.connect_timeout,
        .command_timeout = ra->s.command_timeout,
        .backoff_min = 0.2,
        .backoff_max = 2, /* back within 2 s of Redis coming back */
    };
    ra->configuring = true;
    if (ocps_redis_open(&ra->redis, ra->loop, &o, on_redis_state, ra, err, errlen) != 0) {
        ra->configuring = false;
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "REDIS_HOST/REDIS_PORT/REDIS_PASSWORD: %s", why);
        return -1;
    }
    SAL_LOG(ra->csc, SAL_LOG_INFO, "Connecting to Redis at %s (Rapid Analysis)",
            ocps_redis_address(ra->redis));
    return SAL_CONFIGURE_PENDING;
}

/* --- life cycle --- */

int ocps_ra_open(ocps_ra **out, uv_loop_t *loop, sal_csc *csc, const sal_component_info *comp,
                 const ocps_topics *tp, char *err, size_t errlen)
{
    ocps_ra *ra = calloc(1, sizeof *ra);
    if (ra == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ra->loop = loop;
    ra->csc = csc;
    ra->comp = comp;
    ra->tp = *tp;
    *out = ra;
    return 0;
}

static void ra_maybe_free(ocps_ra *ra)
{
    if (ra->closing && ra->redis_closed && ra->jobs == NULL) {
        ocps_ra_close_cb cb = ra->close_cb;
        void *arg = ra->close_arg;
        free(ra);
        if (cb != NULL) {
            cb(arg);
        }
    }
}

static void redis_closed(void *arg)
{
    ocps_ra *ra = arg;
    ra->redis_closed = true;
    ra_maybe_free(ra);
}

void ocps_ra_close(ocps_ra *ra, ocps_ra_close_cb cb, void *arg)
{
    if (ra == NULL) {
        if (cb != NULL) {
            cb(arg);
        }
        return;
    }
    if (ra->closing) {
        return;
    }
    ra->closing = true;
    ra->close_cb = cb;
    ra->close_arg = arg;
    for (ra_job *j = ra->jobs; j != NULL; j = j->next) {
        if (j->cmd != NULL) {
            sal_cmd_release(j->cmd);
            j->cmd = NULL;
        }
    }
    for (ra_job *j = ra->jobs; j != NULL; j = j->next) {
        if (!j->finished) {
            j->finished = true;
            uv_timer_stop(&j->timer);
            uv_close((uv_handle_t *)&j->timer, job_timer_closed);
        }
    }
    /* last: waiting replies end now, and `ra` may be freed in it */
    ocps_redis *r = ra->redis;
    ra->redis = NULL;
    ocps_redis_close(r, redis_closed, ra);
}

int ocps_ra_redis_up(const ocps_ra *ra)
{
    return ra->redis == NULL ? -1 : ocps_redis_up(ra->redis) ? 1 : 0;
}
