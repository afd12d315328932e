/*
 * uws_service.c - the uws-api-server API over libmicrohttpd on a libuv
 * loop (see uws_service.h and docs/uws.md).
 *
 * libmicrohttpd runs without threads, in epoll mode, driven by the loop
 * (processing/uvmhd, shared with the CSC's /metrics). A
 * request is answered in the call that completes it (engine calls are
 * short store statements), on the MHD call after the headers (answering on
 * the first call would make MHD 0.9.75 close keep-alive connections), but
 * for a request with a body that its headers already refuse (no bearer
 * token, no route for its method, too large): answered on the first call,
 * before any of the body is accepted (uws_reply_before_body);
 * a reply that needs file reads under the work root (a job's results
 * walk, its files, its status page; every GET /job list) is built on
 * libuv's thread pool instead, its connection suspended until then
 * (uws_defer): at most walks_max of them are on the pool at once (of
 * which lists_max GET /job lists), the others wait their turn, so that a
 * hung work root (an NFS mount whose server stopped answering) stalls
 * those requests alone, never the loop nor the whole pool; the kept
 * answers of running jobs are checked there too (uws_recheck_tick). A job
 * that has not started has no files: its answers touch no file. A file's
 * bytes (a result, a log) are read there too, a part at a time in turn
 * with the walks (uws_stream): a work root that hangs in the middle of a
 * transfer stalls that transfer alone.
 */
#define _XOPEN_SOURCE 700
#include "ocps/uws_service.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "ocps/json_text.h"
#include "ocps/sal_clock.h"
#include "ocps/sal_errout.h"
#include "ocps/sal_utf8.h"
#include "ocps/uws_job.h"
#include "ocps/uws_metrics.h"
#include "ocps/uws_request.h"
#include "ocps/uws_status_page.h"
#include "ocps/uv_mhd.h"

#define UWS_DEFAULT_MAX_BODY (1024 * 1024)
#define UWS_DELETED_MARK ".uws-deleted"
/* <work_root>/.gone-<id>.seq<seq>.run<run>: a deleted job's files, being removed */
#define UWS_GONE_PREFIX ".gone-"
#define UWS_RUN_LEN 16 /* hex digits of a run's token (uws_run_token) */
#define UWS_CACHE_SLOTS 256
/* One client address may hold at most 1/UWS_PER_ADDRESS_SHARE of the
 * connections. */
#define UWS_PER_ADDRESS_SHARE 4

/* Seconds a live job's kept answer is used at most before the output
 * directory is walked again (bounds what a filesystem whose directory
 * times cannot be trusted could hide). */
#define UWS_LIVE_CACHE_MAX_AGE 1.0
/* A live job's kept answer is trusted for this long after its output
 * directories were last found unchanged; they are checked again on the
 * thread pool every UWS_LIVE_RECHECK_EVERY, never on the loop (a stat on
 * a hung work root would stall every request). So a GET /job/{id} of a
 * running job lists its results as they were at most this long ago. */
#define UWS_LIVE_TRUSTED_FOR 0.3
#define UWS_LIVE_RECHECK_EVERY_MS 200

/* The size of libuv's thread pool as libuv reads it (UV_THREADPOOL_SIZE,
 * 4 by default, at most 1024, 0 means 1). */
static unsigned uws_pool_size(void)
{
    const char *v = getenv("UV_THREADPOOL_SIZE");
    long n = v != NULL ? strtol(v, NULL, 10) : 4;
    return n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
}

/* Replies that read under the work root (GET /job lists, results walks,
 * job pages) made on the pool at once: all but a quarter of its threads
 * (3 of 4), at least 1, so that a hung work root, which holds each of
 * them until it answers, leaves threads to the engine's job starts and
 * outcome reads. More wait their turn, in order, their connections
 * suspended. */
static unsigned uws_walks_max(void)
{
    unsigned n = uws_pool_size();
    unsigned rest = n / 4 > 0 ? n / 4 : 1;
    return n > rest ? n - rest : 1;
}

/* ... of which GET /job lists: half the pool's threads (2 of 4), at least
 * 1 (a list of 60,000 jobs holds a thread 0.4-2 s), so that the pool is
 * never theirs alone and a job's walk is not held up by long lists. */
static unsigned uws_lists_max(void)
{
    unsigned n = uws_pool_size() / 2;
    return n > 0 ? n : 1;
}
/* GET /job lists waiting at most: one more is answered 503 at once, so that
 * clients that retry lists cannot fill the connection limit with
 * suspended connections (a client that left is not noticed while its
 * connection is suspended). */
#define UWS_LISTS_WAIT_MAX 16
/* A file (a result, a log, metrics) up to this size is read whole on the
 * thread pool with its open; a larger one is sent a part of this size at
 * a time, each read on the pool in turn with the walks, the next one read
 * ahead (uws_stream): at most two parts in memory per connection. */
#define UWS_FILE_PART (256 * 1024)
/* The block libmicrohttpd asks a streamed file's parts for at most (its
 * buffer, one per response). */
#define UWS_FILE_BLOCK (64 * 1024)
/* The Retry-After (seconds) of a 503 that asks to try again later (a full
 * waiting line, too many lists): a hint for generic HTTP clients. */
#define UWS_RETRY_AFTER 1
/* ... and of a PUT refused while the service drains (uws_service_drain):
 * a new service takes jobs once this one has stopped, not in a second. */
#define UWS_DRAIN_RETRY_AFTER 10

/* The JSON of a job, by the last two hex digits of its id (direct-
 * mapped: random ones; the first are the creation time), so that polling costs no store read, directory walk
 * nor encoding. An ended job's answer no longer changes. A live job's holds while its phase and times are the
 * same, its output directories have the same modification times (stamp, checked on the thread pool:
 * uws_recheck_tick) and it is younger than UWS_LIVE_CACHE_MAX_AGE. */
typedef struct uws_cached {
    char id[ENGINE_JOB_ID_LEN + 1];
    struct MHD_Response *resp; /* headers set: queued as it is (MHD counts its users) */
    size_t len;
    bool live;
    engine_phase phase;
    double started;
    double made;              /* sal_clock_monotonic() */
    double checked;           /* ... when the stamp was last found to hold (before its stats) */
    unsigned long gen;        /* which keep this is (0: none), matched when a check comes back */
    uws_results_stamp *stamp; /* NULL while being checked (lent to the check) */
} uws_cached;

struct uws_service {
    uv_loop_t *loop;
    engine *e;
    uv_mhd *http; /* the daemon on the loop */
    int handles;  /* check, idle and recheck handles not yet closed */
    char base_path[256];
    char work_root[1024];
    char *token;
    size_t max_body;
    /* Jobs whose deletion was asked while they ran: gone for the API,
     * deleted once ended. */
    char (*deleting)[ENGINE_JOB_ID_LEN + 1];
    size_t ndeleting;
    size_t capdeleting;
    /* Job directories with work-root operations in flight (a DELETE's
     * mark, a forgotten job's move aside): their ids are not taken by a
     * new job meanwhile. */
    struct uws_busy_dir *busy;
    size_t nbusy;
    size_t capbusy;
    unsigned moving; /* files being moved back on the pool (uws_move_run), and the start's scan of
                        moved-aside directories (uws_gone_scan): freed after them */
    uws_cached cache[UWS_CACHE_SLOTS];
    unsigned long cache_gen;        /* the last uws_cached.gen given */
    uv_timer_t recheck;             /* live kept answers checked again (uws_recheck_start) */
    struct uws_recheck *rechecking; /* that check, on the thread pool (counted in walks) */
    uws_metrics *metrics;
    unsigned deferred;  /* replies being built on the thread pool or waiting (their connections suspended),
                           and file parts being read or waiting (uws_stream) */
    unsigned walks;     /* ... of which reading under the work root, on the pool (at most walks_max) */
    unsigned walks_max; /* uws_walks_max() */
    unsigned lists;     /* ... of which GET /job lists (at most lists_max) */
    unsigned lists_max; /* uws_lists_max() */
    struct uws_deferred *walks_wait; /* ... and those waiting for their turn, oldest first */
    struct uws_deferred *walks_wait_tail;
    unsigned lists_waiting;    /* GET /job lists on walks_wait (at most UWS_LISTS_WAIT_MAX) */
    bool closing;              /* uws_service_close was called */
    bool draining;             /* uws_service_drain was called: PUT /job is refused */
    char run[UWS_RUN_LEN + 1]; /* this run's token (uws_run_token): in the .gone- names it makes */
    atomic_bool lists_stop;    /* ... and the GET /job lists being made stop (read on the thread pool) */
    /* PUT /job requests of this loop turn, submitted in one transaction by
     * the check handle (uws_flush_puts) */
    uv_check_t check;
    uv_idle_t idle; /* active while PUTs wait: the loop polls without blocking, so the check phase comes */
    struct uws_put *puts;
    struct uws_put *puts_tail;
    /* The request log, written once per MHD_run (one write for all the
     * requests it answered, not one each). */
    char log[16384];
    size_t loglen;
    time_t log_second; /* the second log_when shows */
    char log_when[32];
};

/* A PUT /job waiting for the group commit of its loop turn (its
 * connection suspended): the job to submit, then the outcome. */
typedef struct uws_put {
    struct uws_put *next;
    struct MHD_Connection *conn;
    struct uws_request *rq;
    char id[ENGINE_JOB_ID_LEN + 1];
    bool keyed; /* id is the request's Idempotency-Key */
    bool busy;  /* ... of a deleted job whose files are being removed: not submitted (503) */
    json_t *meta;
    json_t *run;
    json_t *then; /* NULL, or the second step (the extension then_argv, as uws_job_run_then) */
    char **envv;
    char **argv;
    char **then_argv; /* NULL, or then's words */
    int rc;
    char err[1024];
} uws_put;

/* A reply built on the thread pool: work(arg, reply) runs there (file
 * I/O; it must touch nothing but arg and reply), then release(arg, reply)
 * on the loop (reply: as work left it, or a refusal if work never ran). */
typedef struct uws_reply uws_reply;
typedef void (*uws_defer_work)(void *arg, uws_reply *r);
typedef void (*uws_defer_release)(void *arg, uws_reply *r);
typedef struct uws_call uws_call;
typedef void (*uws_handler)(const uws_call *c, uws_reply *r);

/* What a handler answers. */
struct uws_reply {
    unsigned status;
    const char *content_type;
    char *body; /* malloc'd (or NULL) */
    size_t len;
    int fd; /* >= 0: send this file of `len` bytes instead of body (uws_stream: read off the loop) */
    char location[512];
    char allow[48];            /* the Allow header of a 405; empty: none */
    unsigned retry_after;      /* seconds: a Retry-After header (a 503 of a full line); 0 none */
    struct MHD_Response *kept; /* a kept response (headers set; borrowed) sent instead of body */
    uws_put *put;              /* set instead: the submission waits for its turn's group commit */
    /* set instead of the above: the reply is built by work(defer_arg) off the loop */
    uws_defer_work defer_work;
    uws_defer_release defer_release;
    void *defer_arg;
};

/* A reply in the making on the thread pool, its connection suspended. */
typedef struct uws_deferred {
    uv_work_t req;
    uws_service *s;
    struct MHD_Connection *conn;
    struct uws_request *rq;
    uws_reply reply;
    struct uws_stream *stream; /* set instead of reply: a part of this file to read (conn, rq unused) */
    bool walk;                 /* reads under the work root (counted in s->walks while on the pool) */
    bool list;                 /* ... a GET /job list */
    struct uws_deferred *next; /* in s->walks_wait */
} uws_deferred;

/* A file sent a part at a time (libmicrohttpd's content reader,
 * uws_stream_reader), each part read on the thread pool, never on the
 * loop: `part` is handed out while `next` is read (one read ahead); when
 * the next bytes are not read yet, the connection is suspended until they
 * are. Freed once libmicrohttpd is done with it (the reply sent, or the
 * client gone) and no read is in flight. */
typedef enum uws_next_state {
    UWS_NEXT_NONE,    /* no read asked */
    UWS_NEXT_READING, /* on the pool, or waiting its turn */
    UWS_NEXT_READ,    /* next_len bytes at next_at, or next_errno */
} uws_next_state;

typedef struct uws_stream {
    uws_deferred read; /* its read (read.stream: this one; a walk) */
    struct MHD_Connection *conn;
    int fd;
    uint64_t size; /* the file's size at its open: the Content-Length */
    char *part;    /* bytes [part_at, part_at + part_len) of the file */
    uint64_t part_at;
    size_t part_len;
    char *next; /* bytes [next_at, next_at + next_len) once read */
    uint64_t next_at;
    size_t next_len;
    int next_errno; /* the read failed, or the file ended sooner */
    uws_next_state next_state;
    bool suspended; /* the connection waits for next */
    bool left;      /* libmicrohttpd is done with it: freed once its read is over */
} uws_stream;

/* One request (MHD's per-connection request context). */
typedef struct uws_request {
    char *body;
    size_t len;
    bool answered; /* on the first call, from the headers (uws_reply_before_body) */
    bool overflow;
    bool overflow_unanswered; /* a body without Content-Length ran over: 400 once it has been read */
    bool started;             /* the first call (headers) is over */
    bool parked;              /* a PUT waiting for its group commit */
    uws_deferred *deferred;   /* the reply is being built off the loop */
    bool ready;               /* ... and is ready in `reply` (the connection was resumed) */
    uws_reply reply;
    double t0;
    char method[12];
    char path[200];
    unsigned status;
    size_t bytes;
    const char *route; /* the route's name for the metrics (static) */
    /* a request with a body: the verdict of its headers (token checked,
     * route resolved on the first call), used once the body has arrived */
    uws_handler handler;
    uws_route resolved;
} uws_request;

/* Defined below, used before. */
static void uws_run(uws_service *s);
static void uws_walks_next(uws_service *s);
static void uws_free_if_done(uws_service *s);
static int uws_forget_now(uws_service *s, const char *id, engine_phase phase, char *err, size_t errlen);

/* ---- small helpers ------------------------------------------------------ */

static void uws_reply_text(uws_reply *r, unsigned status, const char *text)
{
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
    r->body = strdup(text);
    r->len = r->body != NULL ? strlen(r->body) : 0;
}

/* 503 with text and Retry-After: the service is busy, try again later. */
static void uws_reply_try_later(uws_reply *r, const char *text)
{
    uws_reply_text(r, 503, text);
    r->retry_after = UWS_RETRY_AFTER;
}

/* A JSON reply (steals v), indented as the reference's job replies. */
static void uws_reply_json(uws_reply *r, unsigned status, json_t *v)
{
    size_t len = 0;
    r->body = json_text(v, 2, &len); /* as json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY) */
    json_decref(v);
    if (r->body == NULL) {
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    r->status = status;
    r->content_type = "application/json";
    r->len = len;
}

static bool uws_id_syntax(const char *id)
{
    size_t n = strlen(id);
    if (n != ENGINE_JOB_ID_LEN) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

static int uws_hex_digit(char c)
{
    return c >= 'a' ? c - 'a' + 10 : c - '0';
}

static bool uws_deleting(const uws_service *s, const char *id)
{
    for (size_t i = 0; i < s->ndeleting; i++) {
        if (strcmp(s->deleting[i], id) == 0) {
            return true;
        }
    }
    return false;
}

static int uws_deleting_add(uws_service *s, const char *id)
{
    if (uws_deleting(s, id)) {
        return 0;
    }
    if (s->ndeleting == s->capdeleting) {
        size_t cap = s->capdeleting ? s->capdeleting * 2 : 16;
        void *p = realloc(s->deleting, cap * sizeof *s->deleting);
        if (p == NULL) {
            return -1;
        }
        s->deleting = p;
        s->capdeleting = cap;
    }
    snprintf(s->deleting[s->ndeleting++], ENGINE_JOB_ID_LEN + 1, "%s", id);
    return 0;
}

static void uws_deleting_remove(uws_service *s, const char *id)
{
    for (size_t i = 0; i < s->ndeleting; i++) {
        if (strcmp(s->deleting[i], id) == 0) {
            memmove(s->deleting[i], s->deleting[s->ndeleting - 1], sizeof s->deleting[i]);
            s->ndeleting--;
            return;
        }
    }
}

/* The job as the API sees it: NULL if unknown or being deleted. */
static const engine_job *uws_find(uws_service *s, const char *id)
{
    if (!uws_id_syntax(id) || uws_deleting(s, id)) {
        return NULL;
    }
    return engine_job_get(s->e, id);
}

/* The answer for one job with these results (borrowed): its text
 * written directly, or through the object where that fails (for the same
 * outcome). */
static void uws_reply_job(uws_reply *r, unsigned status, const engine_job *job, json_t *results)
{
    size_t len = 0;
    char *text = uws_job_text(job, results, &len);
    if (text == NULL) {
        uws_reply_json(r, status, uws_job_object(job, results));
        return;
    }
    r->status = status;
    r->content_type = "application/json";
    r->body = text;
    r->len = len;
}

/* The answer for a job just stored: one that has not started has no
 * results, its directory is made when it starts (no walk, no open). */
static void uws_reply_new_job(uws_reply *r, const engine_job *job)
{
    json_t *results = uws_job_results_of(job);
    if (results == NULL) {
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    uws_reply_job(r, 200, job, results);
    json_decref(results);
}

/* ---- deletion of job directories (off the loop) ------------------------- */

typedef struct uws_rm {
    uv_work_t req;
    char path[1200]; /* a job directory, or its moved-aside name (uws_move_aside) */
} uws_rm;

static int uws_rm_one(const char *path, const struct stat *sb, int type, struct FTW *f)
{
    (void)sb;
    (void)f;
    (void)(type == FTW_DP ? rmdir(path) : unlink(path));
    return 0;
}

static void uws_rm_work(uv_work_t *req)
{
    uws_rm *rm = req->data;
    nftw(rm->path, uws_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void uws_rm_after(uv_work_t *req, int status)
{
    (void)status;
    free(req->data);
}

/* A job's directory, <work_root>/<id>, into out. */
static void uws_job_dir(const uws_service *s, const char *id, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", s->work_root, id);
}

/* Remove directory `path` in the thread pool. */
static void uws_remove_path(uws_service *s, const char *path)
{
    uws_rm *rm = calloc(1, sizeof *rm);
    if (rm == NULL) {
        return;
    }
    snprintf(rm->path, sizeof rm->path, "%s", path);
    rm->req.data = rm;
    if (uv_queue_work(s->loop, &rm->req, uws_rm_work, uws_rm_after) != 0) {
        free(rm);
    }
}

/* A token of this run, into out (UWS_RUN_LEN hex digits): random, so
 * that no other run (before a restart or a reboot) has it. */
static void uws_run_token(char out[UWS_RUN_LEN + 1])
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x) { /* unique enough, not secret */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        x = ((uint64_t)getpid() << 40) ^ (uint64_t)now.tv_sec * 1000000007u ^ (uint64_t)now.tv_nsec;
    }
    snprintf(out, UWS_RUN_LEN + 1, "%016llx", (unsigned long long)x);
}

/* Move <work_root>/<id> aside, to a hidden name no job has, so that the
 * id is free once it is done (an Idempotency-Key may make a new job with
 * it while the old files are being removed, or after a crash left them):
 * the path moved to in `gone`, "" when nothing was moved. `dir` is its
 * directory (uws_job_dir). The name holds the job's store seq (which job
 * of that id it was: a later one has another) and the run's token (which
 * run moved it), not a time: the wall clock may step. On the thread
 * pool: it waits for the work root. */
static void uws_move_aside(const char *work_root, const char *id, int64_t seq, const char *run,
                           const char *dir, char *gone, size_t len)
{
    gone[0] = '\0';
    char to[1200];
    snprintf(to, sizeof to, "%s/" UWS_GONE_PREFIX "%s.seq%lld.run%s", work_root, id, (long long)seq, run);
    if (uws_id_syntax(id) && rename(dir, to) == 0) {
        snprintf(gone, len, "%s", to);
    }
}

static bool uws_dir_busy(const uws_service *s, const char *id);

/* At the start, what earlier runs moved aside (<work_root>/.gone-<id>.
 * seq<seq>.run<run>) and left (a stop or a crash before its removal),
 * listed on the thread pool. A job still stored whose directory it was
 * (the seq in the name: a job made later with the same id, by an
 * Idempotency-Key, has another) was being deleted when the run ended (the
 * mark of a running job's DELETE answered 200 went with its directory):
 * it is forgotten on the loop, or, still live, aborted and deleted once
 * it ends (its directory kept until then). Then the directories of jobs
 * that are gone are removed on the pool. One that this run moved (its
 * token in the name) is left to this run's deletion. Names that versions
 * before the seq made, .gone-<id>.<ns> (a wall-clock time), are judged by
 * that time as they were: a job created after it is another one. */
typedef struct uws_gone_dir {
    char name[256];
    char id[ENGINE_JOB_ID_LEN + 1]; /* "": not a name uws_move_aside makes */
    int64_t seq;                    /* the deleted job's store seq, from its name; 0: an older name */
    char run[UWS_RUN_LEN + 1];      /* the token of the run that moved it */
    double moved;                   /* an older name's UTC unix seconds */
    bool remove;
} uws_gone_dir;

typedef struct uws_gone_scan {
    uv_work_t req;
    uws_service *s;
    char path[1024];
    uws_gone_dir *dirs;
    size_t n;
    size_t cap;
} uws_gone_scan;

/* The time of a moved-aside name's suffix: seconds, then 9 digits of
 * nanoseconds (uws_move_aside); -1 if it is not that. */
static double uws_gone_time(const char *digits)
{
    size_t n = strlen(digits);
    if (n <= 9 || n > 30 || strspn(digits, "0123456789") != n) {
        return -1;
    }
    char sec[32];
    memcpy(sec, digits, n - 9);
    sec[n - 9] = '\0';
    return strtod(sec, NULL) + strtod(digits + n - 9, NULL) / 1e9;
}

/* The seq and run token of a moved-aside name's suffix, "seq<seq>.run<run>"
 * (uws_move_aside): 0, or -1 if it is not that. */
static int uws_gone_seq_run(const char *suffix, uws_gone_dir *d)
{
    if (strncmp(suffix, "seq", 3) != 0) {
        return -1;
    }
    size_t digits = strspn(suffix + 3, "0123456789");
    const char *run = suffix + 3 + digits;
    if (digits == 0 || digits > 18 || strncmp(run, ".run", 4) != 0 || strlen(run + 4) != UWS_RUN_LEN ||
        strspn(run + 4, "0123456789abcdef") != UWS_RUN_LEN) {
        return -1;
    }
    d->seq = strtoll(suffix + 3, NULL, 10);
    memcpy(d->run, run + 4, UWS_RUN_LEN + 1);
    return 0;
}

/* d_name, a .gone- name, into d. */
static void uws_gone_parse(const char *name, uws_gone_dir *d)
{
    size_t k = strlen(UWS_GONE_PREFIX);
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    const char *suffix = strlen(name) > k + ENGINE_JOB_ID_LEN ? name + k + ENGINE_JOB_ID_LEN : "";
    if (suffix[0] == '.' &&
        (uws_gone_seq_run(suffix + 1, d) == 0 || (d->moved = uws_gone_time(suffix + 1)) >= 0)) {
        memcpy(d->id, name + k, ENGINE_JOB_ID_LEN);
        d->id[ENGINE_JOB_ID_LEN] = '\0';
    }
    d->remove = d->id[0] == '\0' || !uws_id_syntax(d->id);
}

static void uws_gone_scan_work(uv_work_t *req)
{
    uws_gone_scan *g = req->data;
    DIR *d = opendir(g->path);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, UWS_GONE_PREFIX, strlen(UWS_GONE_PREFIX)) != 0) {
            continue;
        }
        if (g->n == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 16;
            void *p = realloc(g->dirs, cap * sizeof *g->dirs);
            if (p == NULL) {
                break;
            }
            g->dirs = p;
            g->cap = cap;
        }
        uws_gone_parse(de->d_name, &g->dirs[g->n++]);
    }
    if (d != NULL) {
        closedir(d);
    }
}

/* On the pool: the directories marked for removal. */
static void uws_gone_remove_work(uv_work_t *req)
{
    uws_gone_scan *g = req->data;
    for (size_t i = 0; i < g->n; i++) {
        if (g->dirs[i].remove) {
            char path[sizeof g->path + sizeof g->dirs[i].name + 2];
            snprintf(path, sizeof path, "%s/%s", g->path, g->dirs[i].name);
            nftw(path, uws_rm_one, 16, FTW_DEPTH | FTW_PHYS);
        }
    }
}

static void uws_gone_free(uv_work_t *req, int status)
{
    (void)status;
    uws_gone_scan *g = req->data;
    free(g->dirs);
    free(g);
}

/* The job of moved-aside directory d: true if d can be removed now. */
static bool uws_gone_settle(uws_service *s, const uws_gone_dir *d)
{
    if (strcmp(d->run, s->run) == 0 || uws_dir_busy(s, d->id) || uws_deleting(s, d->id)) {
        return false; /* this run's, or this run is deleting it: its own removal */
    }
    int64_t seq = d->seq != 0 ? engine_job_seq(s->e, d->id) : 0;
    const engine_job *job = engine_job_get(s->e, d->id);
    /* gone, or another job since (made with its id by an Idempotency-Key):
     * another seq; for an older name, created after its time (which a
     * wall clock stepped back between the two makes wrong) */
    if (job == NULL || (d->seq != 0 ? seq != d->seq : job->created > d->moved)) {
        return true;
    }
    char err[512];
    if (!engine_phase_final(job->phase)) {
        if (uws_deleting_add(s, d->id) == 0 && engine_job_abort(s->e, d->id, err, sizeof err) != 0) {
            sal_errout_say("ocps-engine: delete %s: %s", d->id, err);
        }
        return false;
    }
    engine_phase counted = job->result_published ? job->phase : ENGINE_EXECUTING;
    if (uws_forget_now(s, d->id, counted, err, sizeof err) != 0) {
        sal_errout_say("ocps-engine: job %s, moved aside by an earlier run, stays: %s", d->id, err);
        return false;
    }
    return true;
}

/* Back on the loop: the jobs settled, then the removal. */
static void uws_gone_scan_after(uv_work_t *req, int status)
{
    (void)status;
    uws_gone_scan *g = req->data;
    uws_service *s = g->s;
    s->moving--;
    bool any = false;
    for (size_t i = 0; i < g->n && !s->closing; i++) {
        if (!g->dirs[i].remove) {
            g->dirs[i].remove = uws_gone_settle(s, &g->dirs[i]);
        }
        any |= g->dirs[i].remove;
    }
    if (s->closing || !any || uv_queue_work(s->loop, &g->req, uws_gone_remove_work, uws_gone_free) != 0) {
        uws_gone_free(&g->req, 0);
    }
    if (s->closing) {
        uws_free_if_done(s);
    }
}

static void uws_gone_scan_start(uws_service *s)
{
    uws_gone_scan *g = calloc(1, sizeof *g);
    if (g == NULL) {
        return;
    }
    g->s = s;
    g->req.data = g;
    snprintf(g->path, sizeof g->path, "%s", s->work_root);
    if (uv_queue_work(s->loop, &g->req, uws_gone_scan_work, uws_gone_scan_after) != 0) {
        free(g);
        return;
    }
    s->moving++;
}

/* ---- deletion under the work root, off the loop -------------------------- */

/* A job directory with work-root operations in flight: the .uws-deleted
 * mark of a DELETE being written, then (the job ended) its forgetting
 * (uws_forget_begin: moved aside, then forgotten), in that order (a mark
 * written after the move would make the directory again). */
typedef struct uws_busy_dir {
    char id[ENGINE_JOB_ID_LEN + 1];
    bool marking;                       /* its mark is being written (uws_mark_run) */
    bool discard;                       /* ended meanwhile: forgotten once the mark is written */
    engine_phase discard_phase;         /* ... its phase as the metrics counted it */
    bool moving;                        /* its files moved back (uws_move_run) */
    struct uws_forget_work *forgetting; /* being forgotten (uws_forget_begin), or NULL */
} uws_busy_dir;

static void uws_busy_done(uws_service *s, uws_busy_dir *b);

static uws_busy_dir *uws_busy_find(const uws_service *s, const char *id)
{
    for (size_t i = 0; i < s->nbusy; i++) {
        if (strcmp(s->busy[i].id, id) == 0) {
            return &s->busy[i];
        }
    }
    return NULL;
}

/* The entry of `id`, added if it has none (NULL: out of memory). Valid
 * until the next uws_busy_get or uws_busy_settle. */
static uws_busy_dir *uws_busy_get(uws_service *s, const char *id)
{
    uws_busy_dir *b = uws_busy_find(s, id);
    if (b != NULL) {
        return b;
    }
    if (s->nbusy == s->capbusy) {
        size_t cap = s->capbusy ? s->capbusy * 2 : 16;
        void *p = realloc(s->busy, cap * sizeof *s->busy);
        if (p == NULL) {
            return NULL;
        }
        s->busy = p;
        s->capbusy = cap;
    }
    b = &s->busy[s->nbusy++];
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%s", id);
    return b;
}

/* b's id is free again once nothing is in flight for it. */
static void uws_busy_settle(uws_service *s, uws_busy_dir *b)
{
    if (!b->marking && !b->discard && !b->moving && b->forgetting == NULL) {
        *b = s->busy[--s->nbusy];
    }
}

/* On the thread pool, the files of job `id`, which could not be
 * forgotten, moved back from `back`; its id stays busy meanwhile. */
typedef struct uws_move {
    uv_work_t req;
    uws_service *s;
    char id[ENGINE_JOB_ID_LEN + 1];
    char work_root[1024];
    char back[1200];
} uws_move;

static void uws_move_run(uv_work_t *req)
{
    uws_move *m = req->data;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/%s", m->work_root, m->id);
    (void)rename(m->back, dir);
}

/* Back on the loop: the id is free. */
static void uws_move_after(uv_work_t *req, int status)
{
    (void)status;
    uws_move *m = req->data;
    uws_service *s = m->s;
    uws_busy_dir *b = uws_busy_find(s, m->id);
    if (b != NULL) {
        b->moving = false;
        uws_busy_done(s, b);
    }
    free(m);
    s->moving--;
    if (s->closing) {
        uws_free_if_done(s);
    }
}

/* Start moving the files of job `id` back from `back`; b: its busy
 * entry, or NULL. */
static void uws_move_start(uws_service *s, const char *id, uws_busy_dir *b, const char *back)
{
    uws_move *m = calloc(1, sizeof *m);
    if (m != NULL) {
        m->s = s;
        m->req.data = m;
        snprintf(m->id, sizeof m->id, "%s", id);
        snprintf(m->work_root, sizeof m->work_root, "%s", s->work_root);
        snprintf(m->back, sizeof m->back, "%s", back);
        if (uv_queue_work(s->loop, &m->req, uws_move_run, uws_move_after) == 0) {
            s->moving++;
            if (b != NULL) {
                b->moving = true;
            }
            return;
        }
        free(m);
    }
    if (b != NULL) { /* its files stay (out of memory): the id is free */
        uws_busy_settle(s, b);
    }
}

/* Is the directory of job `id` being written or removed (a new job with
 * its id must wait)? */
static bool uws_dir_busy(const uws_service *s, const char *id)
{
    return uws_busy_find(s, id) != NULL;
}

static bool uws_marked_deleted(const char *workdir)
{
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", workdir, UWS_DELETED_MARK);
    return stat(path, &st) == 0;
}

/* The headers of r on resp. */
static void uws_response_headers(struct MHD_Response *resp, const uws_reply *r)
{
    if (r->content_type != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    }
    if (r->retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof secs, "%u", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "Origin, X-Requested-With, Content-Type, Accept, Authorization");
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "POST, PUT, DELETE, OPTIONS, GET");
    if (r->location[0] != '\0') {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    }
    if (r->allow[0] != '\0') {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    }
    if (r->status == 401) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    }
}

/* The MHD response of r (a body, no fd) with its headers (r's body handed
 * over), or NULL (r's body freed). */
static struct MHD_Response *uws_response(uws_reply *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->len, r->body != NULL ? r->body : (char *)"",
                                        r->body != NULL ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(r->body);
        return NULL;
    }
    r->body = NULL;
    uws_response_headers(resp, r);
    return resp;
}

static uws_cached *uws_cache_slot(uws_service *s, const char *id)
{
    return &s->cache[(unsigned)(uws_hex_digit(id[ENGINE_JOB_ID_LEN - 2]) * 16 +
                                uws_hex_digit(id[ENGINE_JOB_ID_LEN - 1])) %
                     UWS_CACHE_SLOTS];
}

static void uws_cache_clear(uws_cached *c)
{
    if (c->resp != NULL) {
        MHD_destroy_response(c->resp);
    }
    uws_results_stamp_free(c->stamp);
    memset(c, 0, sizeof *c);
}

/* ---- live kept answers, checked again off the loop --------------------- */

/* One check of the live kept answers: their stamps, lent by the cache
 * (uws_cached.stamp NULL meanwhile), compared on the thread pool. */
typedef struct uws_recheck_item {
    unsigned slot;
    unsigned long gen;
    uws_results_stamp *stamp;
    double at; /* when its stats began */
    bool holds;
} uws_recheck_item;

typedef struct uws_recheck {
    uv_work_t req;
    uws_service *s;
    size_t n;
    uws_recheck_item items[UWS_CACHE_SLOTS];
} uws_recheck;

static void uws_recheck_run(uv_work_t *req)
{
    uws_recheck *k = req->data;
    for (size_t i = 0; i < k->n; i++) {
        k->items[i].at = sal_clock_monotonic();
        k->items[i].holds = uws_results_unchanged(k->items[i].stamp);
    }
}

/* Back on the loop: an answer that still holds is trusted from when it
 * was checked; one that changed is dropped (the next GET walks). */
static void uws_recheck_done(uv_work_t *req, int status)
{
    uws_recheck *k = req->data;
    uws_service *s = k->s;
    s->rechecking = NULL;
    s->walks--;
    for (size_t i = 0; i < k->n; i++) {
        const uws_recheck_item *it = &k->items[i];
        uws_cached *c = &s->cache[it->slot];
        if (c->gen != it->gen) { /* dropped or replaced meanwhile */
            uws_results_stamp_free(it->stamp);
            continue;
        }
        c->stamp = it->stamp;
        if (status == 0 && it->holds) {
            c->checked = it->at;
        } else {
            uws_cache_clear(c);
        }
    }
    free(k);
    uws_walks_next(s);
    if (s->closing) {
        uws_free_if_done(s);
    }
}

/* Lend the stamps of the live kept answers still young enough to be used
 * to a check on the pool: NULL if there are none (or no memory). */
static uws_recheck *uws_recheck_collect(uws_service *s)
{
    double now = sal_clock_monotonic();
    uws_recheck *k = NULL;
    for (unsigned i = 0; i < UWS_CACHE_SLOTS; i++) {
        uws_cached *c = &s->cache[i];
        if (!c->live || c->stamp == NULL || now - c->made >= UWS_LIVE_CACHE_MAX_AGE) {
            continue;
        }
        if (k == NULL && (k = calloc(1, sizeof *k)) == NULL) {
            return NULL;
        }
        k->items[k->n] = (uws_recheck_item){.slot = i, .gen = c->gen, .stamp = c->stamp};
        c->stamp = NULL;
        k->n++;
    }
    return k;
}

/* Every UWS_LIVE_RECHECK_EVERY_MS: check the live kept answers on the pool
 * (as one of the walks: with the pool's share taken, not now, and the
 * answers age until GETs walk again); with none, the timer stops. */
static void uws_recheck_tick(uv_timer_t *t)
{
    uws_service *s = t->data;
    if (s->rechecking != NULL || s->closing || s->walks >= s->walks_max) {
        return;
    }
    uws_recheck *k = uws_recheck_collect(s);
    if (k == NULL) {
        uv_timer_stop(t);
        return;
    }
    k->s = s;
    k->req.data = k;
    if (uv_queue_work(s->loop, &k->req, uws_recheck_run, uws_recheck_done) != 0) {
        for (size_t i = 0; i < k->n; i++) {
            s->cache[k->items[i].slot].stamp = k->items[i].stamp;
        }
        free(k);
        return;
    }
    s->rechecking = k;
    s->walks++;
}

/* A live answer was kept: check the kept answers from now on. */
static void uws_recheck_start(uws_service *s)
{
    if (!s->closing && !uv_is_active((uv_handle_t *)&s->recheck)) {
        uv_timer_start(&s->recheck, uws_recheck_tick, UWS_LIVE_RECHECK_EVERY_MS, UWS_LIVE_RECHECK_EVERY_MS);
    }
}

static void uws_cache_drop(uws_service *s, const char *id)
{
    uws_cached *c = uws_cache_slot(s, id);
    if (strcmp(c->id, id) == 0) {
        uws_cache_clear(c);
    }
}

/* Does the kept answer of live job `job` still hold? Its job is the same
 * and its directories were found unchanged recently (uws_recheck_start):
 * nothing is read here. */
static bool uws_cache_live_holds(const uws_cached *c, const engine_job *job)
{
    double now = sal_clock_monotonic();
    return c->live && strcmp(c->id, job->id) == 0 && job->phase == c->phase && job->started == c->started &&
           !engine_phase_final(job->phase) && now - c->made < UWS_LIVE_CACHE_MAX_AGE &&
           now - c->checked < UWS_LIVE_TRUSTED_FOR;
}

/* The kept answer into r. */
static bool uws_cache_reply(const uws_cached *c, uws_reply *r)
{
    r->kept = c->resp;
    r->len = c->len;
    r->status = 200;
    return true;
}

/* Keep r's answer for job `job` (ended, or live with its stamp, taken,
 * made by a walk that began at `walked`): the same response is sent
 * again, headers and all. */
static void uws_cache_keep(uws_service *s, uws_cached *c, const engine_job *job, const uws_reply *r,
                           uws_results_stamp *stamp, double walked)
{
    uws_reply copy = *r;
    copy.body = malloc(r->len + 1);
    copy.fd = -1;
    struct MHD_Response *resp = NULL;
    if (copy.body != NULL) {
        memcpy(copy.body, r->body, r->len + 1);
        resp = uws_response(&copy);
    }
    if (resp == NULL) {
        uws_results_stamp_free(stamp);
        return;
    }
    uws_cache_clear(c);
    memcpy(c->id, job->id, ENGINE_JOB_ID_LEN + 1);
    c->resp = resp;
    c->len = r->len;
    c->live = !engine_phase_final(job->phase);
    c->phase = job->phase;
    c->started = job->started;
    c->made = sal_clock_monotonic();
    c->checked = walked;
    c->gen = ++s->cache_gen;
    c->stamp = stamp;
    if (c->live) {
        uws_recheck_start(s);
    }
}

/* Job id (ended) is gone from the store and the API: 0, or -1 with a
 * message when the store could not delete it (it is listed again). Its
 * files are not touched (a job that never started has none; else
 * uws_forget_begin moved them aside first). `phase`: as the metrics
 * counted it (a phase not final: not counted as ended yet). */
static int uws_forget_now(uws_service *s, const char *id, engine_phase phase, char *err, size_t errlen)
{
    uws_cache_drop(s, id);
    uws_deleting_remove(s, id);
    if (engine_job_forget(s->e, id, err, errlen) != 0) {
        return -1;
    }
    uws_metrics_job_forgotten(s->metrics, phase);
    return 0;
}

static void uws_reply_deleted(uws_reply *r);
static void uws_not_found(uws_reply *r, const char *id);
static int uws_defer_detached(uws_service *s, uws_defer_work work, uws_defer_release release, void *arg);

/* Forgetting an ended job with files: its directory moved aside on the
 * thread pool (in turn with the walks), then the job deleted from the
 * store on the loop, then what was moved removed. A stop or a crash at
 * any point leaves the job with its files, or a .gone- name that the next
 * start sweeps: never a forgotten job's files where a new job with its id
 * (an Idempotency-Key) would find them. Gone for the API meanwhile
 * (s->deleting), its id busy. */
typedef struct uws_forget_work {
    uws_service *s;
    char id[ENGINE_JOB_ID_LEN + 1];
    char work_root[1024];
    int64_t seq;               /* its store seq (engine_job_seq), in the name it is moved to */
    char run[UWS_RUN_LEN + 1]; /* the service's token (uws_run_token), in that name too */
    char gone[1200];           /* where its directory went; "": not moved */
    int error;                 /* an errno: its directory could not be looked at, or removed */
    bool ran;                  /* the move was tried */
    bool answer;               /* a DELETE waits for the outcome (else it is logged) */
    engine_phase phase;        /* as the metrics counted it (uws_forget_now) */
} uws_forget_work;

static void uws_forget_run(void *arg, uws_reply *r)
{
    uws_forget_work *w = arg;
    char dir[1100];
    struct stat st;
    w->ran = true;
    snprintf(dir, sizeof dir, "%s/%s", w->work_root, w->id);
    uws_move_aside(w->work_root, w->id, w->seq, w->run, dir, w->gone, sizeof w->gone);
    if (w->gone[0] == '\0' && lstat(dir, &st) == 0) {    /* there but not movable (a mount point) */
        nftw(dir, uws_rm_one, 16, FTW_DEPTH | FTW_PHYS); /* emptied before the job is forgotten */
        if (rmdir(dir) != 0 && errno != ENOENT && errno != EBUSY) { /* EBUSY: a mount point, empty */
            w->error = errno;
        }
    } else if (w->gone[0] == '\0' && errno != ENOENT) {
        w->error = errno; /* a soft mount that timed out, say: not taken for "none" */
    }
    uws_reply_deleted(r);
}

/* Back on the loop: forgotten, then its files removed; or, the store
 * failing, listed again with its files moved back. */
static void uws_forget_release(void *arg, uws_reply *r)
{
    uws_forget_work *w = arg;
    uws_service *s = w->s;
    uws_busy_dir *b = uws_busy_find(s, w->id);
    if (b != NULL) {
        b->forgetting = NULL;
    }
    char err[512] = "its directory could not be moved aside";
    if (w->error != 0) {
        snprintf(err, sizeof err, "its directory could not be looked at: %s", strerror(w->error));
    } else if (s->closing) { /* the engine is being closed: the next one has the job, with its files */
        snprintf(err, sizeof err, "the service is stopping");
    }
    if (!w->ran || w->error != 0 || s->closing || uws_forget_now(s, w->id, w->phase, err, sizeof err) != 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "job %s could not be deleted: %s", w->id, err);
        if (w->answer) { /* listed again: a DELETE may be sent again */
            uws_deleting_remove(s, w->id);
            free(r->body);
            r->body = NULL;
            uws_reply_text(r, 500, msg);
        } else if (uws_deleting_add(s, w->id) == 0) {
            /* its DELETE was answered 200: it stays gone for the API, and
             * its mark (in its directory, moved back if it was moved)
             * has the next start delete it */
            uws_metrics_job_forgotten(s->metrics, w->phase);
            sal_errout_say("ocps-engine: %s; it is deleted at the next start", msg);
        } else {
            sal_errout_say("ocps-engine: %s", msg);
        }
        if (w->gone[0] != '\0') {
            uws_move_start(s, w->id, b, w->gone); /* back where its files are served from */
        } else if (b != NULL) {
            uws_busy_done(s, b);
        }
    } else {
        if (w->gone[0] != '\0') {
            uws_remove_path(s, w->gone);
        }
        if (b != NULL) {
            uws_busy_done(s, b); /* its id is free: the old files are elsewhere, or removed */
        }
    }
    free(w);
}

/* Start forgetting ended job `id` (with files, or maybe: one that ran):
 * r the reply of the DELETE that waits for it, or NULL; `phase` as the
 * metrics counted it. After a mark being written, if there is one. */
static void uws_forget_begin(uws_service *s, const char *id, engine_phase phase, uws_reply *r)
{
    if (s->closing) { /* the next engine deletes it (its mark), or it stays listed */
        if (r != NULL) {
            uws_reply_try_later(r, "the service is stopping");
        }
        return;
    }
    uws_busy_dir *b = uws_busy_get(s, id);
    if (b != NULL && (b->forgetting != NULL || (r != NULL && b->marking))) { /* gone for the API already */
        if (r != NULL) {
            uws_not_found(r, id);
        }
        return;
    }
    if (b != NULL && r != NULL && b->moving) {
        char text[256];
        snprintf(text, sizeof text, "job %s is being restored after a failed deletion: try again in a moment",
                 id);
        uws_reply_try_later(r, text);
        return;
    }
    if (b != NULL && (b->marking || b->moving)) { /* its mark first, or its files back (uws_busy_done) */
        b->discard = true;
        b->discard_phase = phase;
        return;
    }
    uws_forget_work *w = b != NULL ? calloc(1, sizeof *w) : NULL;
    if (w == NULL || uws_deleting_add(s, id) != 0) {
        free(w);
        if (b != NULL) {
            uws_busy_settle(s, b);
        }
        if (r != NULL) {
            uws_reply_text(r, 500, "out of memory");
        } else {
            sal_errout_say("ocps-engine: job %s ended after its DELETE, but stays: out of memory", id);
        }
        return;
    }
    w->s = s;
    snprintf(w->id, sizeof w->id, "%s", id);
    snprintf(w->work_root, sizeof w->work_root, "%s", s->work_root);
    w->seq = engine_job_seq(s->e, id);
    snprintf(w->run, sizeof w->run, "%s", s->run);
    w->phase = phase;
    w->answer = r != NULL;
    b->forgetting = w;
    if (r != NULL) {
        r->defer_work = uws_forget_run;
        r->defer_release = uws_forget_release;
        r->defer_arg = w;
        return;
    }
    if (uws_defer_detached(s, uws_forget_run, uws_forget_release, w) != 0) {
        b->forgetting = NULL;
        uws_deleting_remove(s, id);
        uws_busy_settle(s, b);
        free(w);
        sal_errout_say("ocps-engine: job %s ended after its DELETE, but stays: out of memory", id);
    }
}

/* What was in flight for b's id is over: its forgetting, if it ended
 * meanwhile (uws_forget_begin), else its id is free once nothing else is
 * (b is not used after). */
static void uws_busy_done(uws_service *s, uws_busy_dir *b)
{
    if (b->discard && !b->marking && !b->moving && b->forgetting == NULL) {
        char id[ENGINE_JOB_ID_LEN + 1];
        snprintf(id, sizeof id, "%s", b->id);
        b->discard = false;
        uws_forget_begin(s, id, b->discard_phase, NULL);
        b = uws_busy_find(s, id);
    }
    if (b != NULL) {
        uws_busy_settle(s, b);
    }
}

void uws_service_job_changed(uws_service *s, const engine_job *job)
{
    if (s == NULL || !engine_phase_final(job->phase)) {
        return;
    }
    uws_metrics_job_ended(s->metrics, job);
    char id[ENGINE_JOB_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", job->id);
    engine_phase phase = job->phase;
    if (engine_job_get(s->e, id) == NULL) { /* forgotten by its DELETE as it ended (it had not started) */
        uws_metrics_job_forgotten(s->metrics, phase);
        return;
    }
    uws_busy_dir *b = uws_busy_find(s, id);
    if (b != NULL && b->forgetting != NULL) { /* its DELETE is forgetting it: counted as ended now */
        b->forgetting->phase = phase;
        return;
    }
    /* no file is looked at here: a mark left by an earlier run was found
     * at the start (uws_resume_one) */
    if (uws_deleting(s, id)) {
        uws_forget_begin(s, id, phase, NULL);
    } else {
        engine_job_mark_published(s->e, id);
    }
}

/* ---- handlers ----------------------------------------------------------- */

/* What a handler sees of its request. */
struct uws_call {
    uws_service *s;
    struct MHD_Connection *conn;
    const uws_route *route;
    const char *body;
    size_t len;
};

/* GET {base}/job[?phase=]: the list is read from the store and written on
 * the thread pool, so that a long history does not stall the loop (every
 * job's results are a walk of its directory). It holds the jobs committed
 * as it reads them (a page at a time: one committed meanwhile may or may
 * not be in it), but for those being deleted when it was asked. */
typedef struct uws_list_work {
    uws_service *s; /* for the metrics, on the loop */
    engine_job_lister *lister;
    const char *phase;               /* static, or NULL: every phase */
    char run_id[UWS_RUN_ID_MAX + 1]; /* "": every runId */
    char (*hidden)[ENGINE_JOB_ID_LEN + 1];
    size_t nhidden;
    json_text_buf b;
    size_t n;
    bool store_ok;
    bool ran;     /* uws_list_run ran (a list refused at once did not read the store) */
    bool stopped; /* the service is closing */
} uws_list_work;

static int uws_list_item(void *arg, const engine_job *job)
{
    uws_list_work *w = arg;
    if (atomic_load_explicit(&w->s->lists_stop, memory_order_relaxed)) {
        w->stopped = true;
        return -1;
    }
    for (size_t i = 0; i < w->nhidden; i++) {
        if (strcmp(w->hidden[i], job->id) == 0) {
            return 0;
        }
    }
    if (w->phase != NULL && strcmp(w->phase, engine_phase_name(job->phase)) != 0) {
        return 0;
    }
    if (w->run_id[0] != '\0' && strcmp(w->run_id, uws_job_run_id(job)) != 0) {
        return 0; /* before its results are read */
    }
    /* the bytes of json_dumps(list, JSON_INDENT(2)), one item at a time
     * (a job that has not started: [], its directory not touched) */
    json_t *results = uws_job_results_of(job);
    json_text_raw(&w->b, w->n == 0 ? "[" : ",", 1);
    json_text_indent(&w->b, 1);
    if (!uws_job_text_at(&w->b, job, results, 1)) {
        w->b.failed = true; /* where the job object fails too (test_uws_job_text) */
    }
    json_decref(results);
    w->n++;
    return w->b.failed ? -1 : 0;
}

static void uws_list_run(void *arg, uws_reply *r)
{
    uws_list_work *w = arg;
    char err[512] = "";
    w->ran = true;
    /* a list whose turn came after uws_service_close is not walked */
    w->stopped = atomic_load_explicit(&w->s->lists_stop, memory_order_relaxed);
    w->store_ok = w->stopped || engine_job_lister_walk(w->lister, uws_list_item, w, err, sizeof err) == 0;
    if (!w->store_ok) {
        uws_reply_text(r, 500, err);
        return;
    }
    if (w->stopped) {
        uws_reply_try_later(r, "the service is shutting down"); /* a restart may follow */
        return;
    }
    if (w->n == 0) {
        json_text_raw(&w->b, "[", 1);
    } else {
        json_text_indent(&w->b, 0);
    }
    json_text_raw(&w->b, "]", 1);
    size_t len = 0;
    char *text = json_text_finish(&w->b, &len);
    if (text == NULL) {
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    r->status = 200;
    r->content_type = "application/json";
    r->body = text;
    r->len = len;
}

static void uws_list_release(void *arg, uws_reply *r)
{
    (void)r;
    uws_list_work *w = arg;
    if (w->ran) {
        uws_metrics_store(w->s->metrics, w->store_ok);
    }
    engine_job_lister_free(w->lister);
    free(w->hidden);
    free(json_text_finish(&w->b, NULL));
    free(w);
}

static void uws_get_jobs(const uws_call *c, uws_reply *r)
{
    char err[512];
    const char *phase;
    const char *run_id;
    const char *value = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "phase");
    if (uws_phase_filter_parse(value, &phase, err, sizeof err) != 0 ||
        uws_run_id_filter_parse(MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "run_id"),
                                &run_id, err, sizeof err) != 0) {
        uws_reply_text(r, 400, err);
        return;
    }
    uws_service *s = c->s;
    uws_list_work *w = calloc(1, sizeof *w);
    if (w == NULL || (w->lister = engine_job_lister_new(s->e)) == NULL ||
        (s->ndeleting > 0 && (w->hidden = malloc(s->ndeleting * sizeof *w->hidden)) == NULL)) {
        if (w != NULL) {
            engine_job_lister_free(w->lister);
        }
        free(w);
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    w->s = s;
    w->phase = phase;
    snprintf(w->run_id, sizeof w->run_id, "%s", run_id != NULL ? run_id : "");
    w->b.indent = 2;
    if (s->ndeleting > 0) {
        memcpy(w->hidden, s->deleting, s->ndeleting * sizeof *w->hidden);
        w->nhidden = s->ndeleting;
    }
    r->defer_work = uws_list_run;
    r->defer_release = uws_list_release;
    r->defer_arg = w;
}

static int uws_mkdir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* NAME=VALUE strings of the meta's environment (NULL-terminated). */
static char **uws_env_strv(json_t *env)
{
    size_t n = json_array_size(env);
    char **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; v != NULL && i < n; i++) {
        json_t *item = json_array_get(env, i);
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *value = json_string_value(json_object_get(item, "value"));
        size_t len = strlen(name) + strlen(value) + 2;
        if ((v[i] = malloc(len)) == NULL) {
            break;
        }
        snprintf(v[i], len, "%s=%s", name, value);
    }
    return v;
}

static char **uws_argv_strv(json_t *argv)
{
    size_t n = json_array_size(argv);
    char **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; v != NULL && i < n; i++) {
        v[i] = (char *)json_string_value(json_array_get(argv, i));
    }
    return v;
}

static void uws_free_strv(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        free(v[i]);
    }
    free(v);
}

/* PUT {base}/job */
static void uws_put_free(uws_put *p)
{
    free(p->argv);
    free(p->then_argv);
    uws_free_strv(p->envv);
    json_decref(p->run);
    json_decref(p->then);
    json_decref(p->meta);
    free(p);
}

/* The request's query, written again as a form (libmicrohttpd keeps it
 * decoded): what Tornado's get_argument reads besides a form body. */
typedef struct uws_query {
    char *text;
    size_t len;
    size_t cap;
    bool too_long;
} uws_query;

#define UWS_QUERY_MAX (3 * UWS_MAX_STRING + 4096) /* every byte of a longest value %-encoded */

static void uws_query_put(uws_query *q, const char *s, size_t n, bool encode)
{
    for (size_t i = 0; i < n && !q->too_long; i++) {
        unsigned char c = (unsigned char)s[i];
        if (q->len + 4 > q->cap) {
            size_t cap = q->cap ? 2 * q->cap : 256;
            char *t = cap <= UWS_QUERY_MAX ? realloc(q->text, cap) : NULL;
            if (t == NULL) {
                q->too_long = true;
                return;
            }
            q->text = t;
            q->cap = cap;
        }
        if (!encode || isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            q->text[q->len++] = (char)c;
        } else {
            q->len += (size_t)snprintf(q->text + q->len, 4, "%%%02X", c);
        }
    }
}

static enum MHD_Result uws_query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    uws_query *q = cls;
    if (q->len > 0) {
        uws_query_put(q, "&", 1, false);
    }
    uws_query_put(q, key, strlen(key), true);
    if (value != NULL) {
        uws_query_put(q, "=", 1, false);
        uws_query_put(q, value, strlen(value), true);
    }
    return q->too_long ? MHD_NO : MHD_YES;
}

/* PUT {base}/job: parsed here, submitted with the other PUTs of the loop
 * turn in one store transaction (uws_flush_puts), answered then. */
static void uws_put_job(const uws_call *c, uws_reply *r)
{
    char err[1024];
    uws_submit sub;
    const char *ctype = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    uws_query query = {0};
    MHD_get_connection_values(c->conn, MHD_GET_ARGUMENT_KIND, uws_query_arg, &query);
    if (query.too_long) {
        free(query.text);
        uws_reply_text(r, 400, "the query is too long");
        return;
    }
    if (query.text != NULL) {
        query.text[query.len] = '\0';
    }
    int rc = uws_submit_parse(ctype, c->body, c->len, query.text, &sub, err, sizeof err);
    free(query.text);
    if (rc != 0) {
        uws_reply_text(r, 400, err);
        return;
    }
    const char *key = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, UWS_IDEMPOTENCY_KEY);
    if (key != NULL && !engine_job_id_valid(key)) {
        uws_submit_clear(&sub);
        uws_reply_text(r, 400, UWS_IDEMPOTENCY_KEY ": must be a job id (32 lower-case hex characters)");
        return;
    }
    uws_put *p = calloc(1, sizeof *p);
    if (p != NULL) {
        char workdir[1100];
        if (key != NULL) {
            snprintf(p->id, sizeof p->id, "%s", key); /* a repeated PUT finds its job (uws_flush_puts) */
            p->keyed = true;
        } else {
            engine_new_job_id(c->s->e, p->id);
        }
        uws_job_dir(c->s, p->id, workdir, sizeof workdir);
        p->meta = uws_job_meta(&sub, p->id, workdir);
        p->run = uws_job_run_argv(&sub);
        p->envv = uws_env_strv(json_object_get(json_object_get(p->meta, "uws"), "environment"));
        p->argv = uws_argv_strv(p->run);
        if (sub.then_argv != NULL && (p->then = uws_job_run_then(&sub)) != NULL) {
            p->then_argv = uws_argv_strv(p->then);
        }
    }
    bool then_failed = p != NULL && sub.then_argv != NULL && p->then_argv == NULL;
    uws_submit_clear(&sub);
    if (p == NULL || p->meta == NULL || p->run == NULL || p->envv == NULL || p->argv == NULL || then_failed) {
        if (p != NULL) {
            uws_put_free(p);
        }
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    r->put = p;
}

/* The answer for `job` with these results (borrowed): the whole job
 * (property NULL) or one of its properties. */
static void uws_reply_results(uws_reply *r, const engine_job *job, const char *property, json_t *results)
{
    bool whole = property == NULL;
    if (whole && results != NULL) {
        uws_reply_job(r, 200, job, results);
        return;
    }
    json_t *obj = uws_job_object(job, results);
    if (obj != NULL && !whole) {
        json_t *prop = json_incref(json_object_get(obj, property));
        json_decref(obj);
        obj = prop;
    }
    uws_reply_json(r, 200, obj);
}

/* GET /job/{id}[/{property}] of a job with files, made on the thread pool
 * (a walk of its results: a hung work root stalls this request alone)
 * from a copy of the job as it was asked for; kept back on the loop while
 * the job is still the same. */
typedef struct uws_found_work {
    uws_service *s;
    engine_job job; /* a copy: workdir, log_path, meta, argv and results owned */
    char *workdir;
    char *log_path;
    char property[sizeof((uws_route *)NULL)->property]; /* "": the whole job */
    bool stamped;                                       /* a live job's whole answer: kept with its stamp */
    unsigned status;                                    /* 0: 200; else this status (then never kept) */
    bool ran;
    double walked; /* sal_clock_monotonic() when the walk began */
    uws_results_stamp *stamp;
} uws_found_work;

static void uws_found_free(uws_found_work *w)
{
    free(w->workdir);
    free(w->log_path);
    json_decref(w->job.meta);
    json_decref(w->job.argv);
    json_decref(w->job.results);
    uws_results_stamp_free(w->stamp);
    free(w);
}

static json_t *uws_json_copy(const json_t *v, bool *failed)
{
    json_t *copy = v != NULL ? json_deep_copy(v) : NULL;
    *failed |= v != NULL && copy == NULL;
    return copy;
}

/* A copy of job for uws_found_run (NULL: out of memory). */
static uws_found_work *uws_found_new(uws_service *s, const engine_job *job, const char *property)
{
    uws_found_work *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return NULL;
    }
    w->s = s;
    w->job = *job;
    w->workdir = strdup(job->workdir);
    w->log_path = strdup(job->log_path != NULL ? job->log_path : "");
    w->job.workdir = w->workdir;
    w->job.log_path = w->log_path;
    bool failed = w->workdir == NULL || w->log_path == NULL;
    w->job.meta = uws_json_copy(job->meta, &failed);
    w->job.argv = uws_json_copy(job->argv, &failed);
    w->job.results = uws_json_copy(job->results, &failed);
    snprintf(w->property, sizeof w->property, "%s", property != NULL ? property : "");
    if (failed) {
        uws_found_free(w);
        return NULL;
    }
    return w;
}

static void uws_found_run(void *arg, uws_reply *r)
{
    uws_found_work *w = arg;
    w->ran = true;
    w->walked = sal_clock_monotonic();
    json_t *results = uws_job_results_stamped(w->job.workdir, w->stamped ? &w->stamp : NULL);
    uws_reply_results(r, &w->job, w->property[0] != '\0' ? w->property : NULL, results);
    json_decref(results);
    if (w->status != 0 && r->status == 200) {
        r->status = w->status;
    }
}

/* Back on the loop: keep the whole answer (an ended job's, or a live
 * one's with its stamp) if the job is still the one it was made of. */
static void uws_found_release(void *arg, uws_reply *r)
{
    uws_found_work *w = arg;
    uws_service *s = w->s;
    bool ended = engine_phase_final(w->job.phase);
    bool keep = w->ran && !s->closing && w->property[0] == '\0' && r->status == 200 && r->body != NULL &&
                (ended || w->stamp != NULL);
    const engine_job *now = keep ? uws_find(s, w->job.id) : NULL;
    if (now != NULL && now->phase == w->job.phase && now->started == w->job.started) {
        uws_cache_keep(s, uws_cache_slot(s, w->job.id), &w->job, r, w->stamp, w->walked);
        w->stamp = NULL; /* the kept answer's */
    }
    uws_found_free(w);
}

/* Job `job` (whole, or its `property` when not NULL) as GET /job/{id}
 * answers it: from the kept answer while it holds (only if `borrow`: r
 * then borrows it, so r must be sent before the loop turn ends); for a
 * job that has not started, or a property other than its results (its
 * phase, parameters), made here (nothing touched);
 * else made on the thread pool (r->defer_work: a walk of its results)
 * and kept. */
static void uws_reply_found(uws_service *s, const engine_job *job, const char *property, bool borrow,
                            uws_reply *r)
{
    bool whole = property == NULL;
    uws_cached *cached = whole ? uws_cache_slot(s, job->id) : NULL;
    if (borrow && cached != NULL && strcmp(cached->id, job->id) == 0 &&
        (!cached->live || uws_cache_live_holds(cached, job)) && uws_cache_reply(cached, r)) {
        return;
    }
    bool needs_results = whole || strcmp(property, "results") == 0;
    if (!needs_results || !uws_job_has_files(job)) { /* nothing to walk: answered here, not kept */
        json_t *results = json_array();
        uws_reply_results(r, job, property, results);
        json_decref(results);
        return;
    }
    uws_found_work *w = uws_found_new(s, job, property);
    if (w == NULL) {
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    w->stamped = whole && !engine_phase_final(job->phase);
    r->defer_work = uws_found_run;
    r->defer_release = uws_found_release;
    r->defer_arg = w;
}

/* A PUT whose Idempotency-Key is a job's id already: that job (200) if it
 * is the same submission (the same run_id and command: a client sending
 * again a PUT whose answer it lost), else 409; 503 while the job is being
 * deleted (its process still ending): gone for the API, but its id is
 * not free yet. */
static void uws_reply_same_job(uws_service *s, const uws_put *p, uws_reply *r)
{
    if (uws_deleting(s, p->id)) {
        char text[256];
        snprintf(text, sizeof text,
                 UWS_IDEMPOTENCY_KEY " %s names a job being deleted (its process is ending): try again "
                                     "in a moment",
                 p->id);
        uws_reply_try_later(r, text);
        return;
    }
    const engine_job *job = engine_job_get(s->e, p->id);
    const char *run_id = json_string_value(json_object_get(json_object_get(p->meta, "uws"), "run_id"));
    json_t *then = json_object_get(json_object_get(p->meta, "uws"), "then_argv");
    json_t *job_then = job != NULL ? json_object_get(json_object_get(job->meta, "uws"), "then_argv") : NULL;
    if (job != NULL && run_id != NULL && strcmp(uws_job_run_id(job), run_id) == 0 &&
        json_equal(job->argv, p->run) && (then == NULL ? job_then == NULL : json_equal(then, job_then))) {
        /* as GET /job/{id}, but made afresh: this answer is sent later (once
         * the group commit is over), and a kept one may be freed meanwhile
         * (its slot taken by another job, a DELETE) */
        uws_reply_found(s, job, NULL, false, r);
        return;
    }
    char text[256];
    snprintf(text, sizeof text,
             UWS_IDEMPOTENCY_KEY " %s names another job (a different run_id or command), or a deleted one",
             p->id);
    uws_reply_text(r, 409, text);
}

/* Submit the waiting PUTs in one transaction (the engine's batch), then
 * answer each: 200 and the job once committed, 500 otherwise. */
static void uws_flush_puts(uws_service *s)
{
    uws_put *list = s->puts;
    s->puts = s->puts_tail = NULL;
    uv_check_stop(&s->check);
    uv_idle_stop(&s->idle);
    if (list == NULL) {
        return;
    }
    char err[1024];
    bool batch = engine_batch_begin(s->e, err, sizeof err) == 0; /* else one transaction each */
    /* the engine makes the job's directory and out/ when it starts the job:
     * no mkdir in the request (the cost of most of it) */
    static const char *const dirs[] = {UWS_JOB_OUTPUT_SUBDIR, NULL};
    for (uws_put *p = list; p != NULL; p = p->next) {
        if (p->keyed && uws_dir_busy(s, p->id)) { /* a deleted job's files are being removed */
            p->busy = true;
            p->rc = -EBUSY;
            snprintf(p->err, sizeof p->err,
                     UWS_IDEMPOTENCY_KEY " %s names a job being deleted (its files are being removed): try "
                                         "again in a moment",
                     p->id);
            continue;
        }
        engine_job_spec spec = {.argv = (const char *const *)p->argv,
                                .then_argv = (const char *const *)p->then_argv,
                                .env = (const char *const *)p->envv,
                                .meta = p->meta,
                                .dirs = dirs};
        p->rc = engine_job_submit(s->e, p->id, &spec, p->err, sizeof p->err);
    }
    if (batch && engine_batch_end(s->e, err, sizeof err) != 0) {
        for (uws_put *p = list; p != NULL; p = p->next) {
            if (p->rc == 0) {
                p->rc = -EIO;
                snprintf(p->err, sizeof p->err, "%s", err);
            }
        }
    }
    uws_put *next;
    for (uws_put *p = list; p != NULL; p = next) {
        next = p->next;
        uws_reply r = {.fd = -1};
        const engine_job *job = p->rc == 0 ? engine_job_get(s->e, p->id) : NULL;
        if (p->rc == 0) {
            uws_metrics_job_submitted(s->metrics);
        }
        if (p->busy) {
            uws_reply_try_later(&r, p->err);
        } else if (p->rc == -EEXIST && p->keyed) {
            uws_reply_same_job(s, p, &r);
        } else if (job == NULL) {
            /* a full waiting line (--max-waiting): 503, as a busy server */
            if (p->rc == -EAGAIN) {
                uws_reply_try_later(&r, p->err);
            } else {
                uws_reply_text(&r, 500, p->rc == 0 ? "job created but not found" : p->err);
            }
        } else {
            uws_reply_new_job(&r, job);
        }
        p->rq->reply = r;
        p->rq->ready = true;
        p->rq->parked = false;
        MHD_resume_connection(p->conn);
        uws_put_free(p);
    }
}

static void uws_on_idle(uv_idle_t *h)
{
    (void)h;
}

static void uws_on_check(uv_check_t *h)
{
    uws_service *s = h->data;
    uws_flush_puts(s);
    uws_run(s); /* answer them */
}

/* Suspend the connection of PUT p until the end of the loop turn. */
static enum MHD_Result uws_park(uws_service *s, struct MHD_Connection *conn, struct uws_request *rq,
                                uws_put *p)
{
    p->conn = conn;
    p->rq = rq;
    rq->parked = true;
    MHD_suspend_connection(conn);
    if (s->puts_tail != NULL) {
        s->puts_tail->next = p;
    } else {
        s->puts = p;
        uv_check_start(&s->check, uws_on_check);
        uv_idle_start(&s->idle, uws_on_idle);
    }
    s->puts_tail = p;
    return MHD_YES;
}

/* The message that job `id` (as the path names it: any bytes) is not
 * found, valid UTF-8: a byte that begins no valid character, or a control
 * character, is shown as '?'. */
static void uws_not_found_text(const char *id, char *msg, size_t len)
{
    char shown[UWS_MAX_ID + 1];
    sal_utf8_sanitize(id, shown, sizeof shown);
    snprintf(msg, len, "job %s not found", shown);
}

/* 404 for job `id`: the message as a JSON string (the reference's 404 is
 * JSON). */
static void uws_not_found(uws_reply *r, const char *id)
{
    char msg[256];
    uws_not_found_text(id, msg, sizeof msg);
    uws_reply_json(r, 404, json_string(msg));
}

/* GET {base}/job/{id} and {base}/job/{id}/{property} */
static void uws_get_job(const uws_call *c, uws_reply *r)
{
    bool whole = c->route->kind == UWS_ROUTE_JOB;
    uws_cached *cached = whole && uws_id_syntax(c->route->id) ? uws_cache_slot(c->s, c->route->id) : NULL;
    if (cached != NULL && !cached->live && strcmp(cached->id, c->route->id) == 0 &&
        !uws_deleting(c->s, c->route->id) && uws_cache_reply(cached, r)) {
        return; /* an ended job: no engine call */
    }
    const engine_job *job = uws_find(c->s, c->route->id);
    if (job == NULL) {
        uws_not_found(r, c->route->id);
        return;
    }
    uws_reply_found(c->s, job, whole ? NULL : c->route->property, true, r);
}

/* The answer of a DELETE that succeeded. */
static void uws_reply_deleted(uws_reply *r)
{
    uws_reply_json(r, 200, json_pack("{sssssi}", "status", "Success", "message", "", "code", 200));
}

/* The .uws-deleted mark of a running job being deleted, written on the
 * thread pool (the work root may hang); the DELETE is answered once it is
 * written, so that its 200 means the deletion survives a restart. */
typedef struct uws_mark_work {
    uws_service *s;
    char id[ENGINE_JOB_ID_LEN + 1];
    char workdir[ENGINE_WORKDIR_MAX + 1];
} uws_mark_work;

/* Create the mark in workdir and make it durable (the file and its
 * directory entry); 0, or an errno. */
static int uws_mark_write(const char *workdir)
{
    char mark[ENGINE_WORKDIR_MAX + sizeof UWS_DELETED_MARK + 2];
    snprintf(mark, sizeof mark, "%s/%s", workdir, UWS_DELETED_MARK);
    if (uws_mkdir(workdir) != 0) { /* made when the job started: gone only if removed by hand */
        return errno;
    }
    int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || fsync(fd) != 0) {
        int rc = errno;
        if (fd >= 0) {
            close(fd);
        }
        return rc;
    }
    if (close(fd) != 0) {
        return errno;
    }
    int dir = open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        return errno;
    }
    int rc = fsync(dir) == 0 || errno == EINVAL ? 0 : errno; /* EINVAL: a directory it cannot sync */
    close(dir);
    return rc;
}

static void uws_mark_run(void *arg, uws_reply *r)
{
    uws_mark_work *w = arg;
    int rc = uws_mark_write(w->workdir);
    if (rc == 0) {
        uws_reply_deleted(r);
        return;
    }
    char msg[ENGINE_WORKDIR_MAX + 512];
    snprintf(msg, sizeof msg,
             "job %s is aborted and is deleted once it has ended, but its deletion could not be recorded "
             "(%s/%s: %s): after a restart of the service it would be listed again",
             w->id, w->workdir, UWS_DELETED_MARK, strerror(rc));
    uws_reply_text(r, 500, msg);
}

/* Back on the loop: the directory is free for its removal (the job may
 * have ended and been forgotten meanwhile). */
static void uws_mark_release(void *arg, uws_reply *r)
{
    (void)r;
    uws_mark_work *w = arg;
    uws_service *s = w->s;
    uws_busy_dir *b = uws_busy_find(s, w->id);
    if (b != NULL) {
        b->marking = false;
        uws_busy_done(s, b);
    }
    free(w);
}

/* DELETE {base}/job/{id} of live job `job` (id: its id): aborted at once
 * (a running job's process group gets SIGTERM now, whatever the work root
 * does) and gone for the API; a job that ends as it is aborted (it had not
 * started) is forgotten here, in the store; a running one's mark is
 * written off the loop, the answer with it (while the work root hangs,
 * this DELETE alone waits). */
static void uws_delete_live(const uws_call *c, const engine_job *job, const char *id, uws_reply *r)
{
    char err[512];
    engine_phase was = job->phase;
    uws_mark_work *w = calloc(1, sizeof *w);
    if (w == NULL || uws_deleting_add(c->s, id) != 0) {
        free(w);
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    w->s = c->s;
    snprintf(w->id, sizeof w->id, "%s", id);
    snprintf(w->workdir, sizeof w->workdir, "%s", job->workdir);
    if (engine_job_abort(c->s->e, id, err, sizeof err) != 0) {
        sal_errout_say("ocps-engine: delete %s: %s", id, err);
    }
    job = engine_job_get(c->s->e, id);
    if (job != NULL && engine_phase_final(job->phase)) { /* it had not started: no files */
        free(w);
        if (uws_forget_now(c->s, id, was, err, sizeof err) != 0) {
            char msg[700];
            snprintf(msg, sizeof msg, "job %s is aborted but could not be deleted: %s", id, err);
            uws_reply_text(r, 500, msg);
            return;
        }
        uws_reply_deleted(r);
        return;
    }
    uws_busy_dir *b = uws_busy_get(c->s, id);
    if (b == NULL) {
        free(w);
        uws_reply_text(r, 500, "out of memory: the job is aborted, and deleted once it has ended");
        return;
    }
    b->marking = true;
    r->defer_work = uws_mark_run;
    r->defer_release = uws_mark_release;
    r->defer_arg = w;
}

/* DELETE {base}/job/{id}: the job and its files are gone (a running job is
 * killed, then deleted once it has ended). An ended job's directory is
 * moved aside off the loop, then the job deleted from the store and the
 * DELETE answered (while the work root hangs, this DELETE alone waits);
 * one that never started has none: deleted at once. */
static void uws_delete_job(const uws_call *c, uws_reply *r)
{
    char err[512];
    const engine_job *job = uws_find(c->s, c->route->id);
    if (job == NULL) {
        uws_not_found(r, c->route->id); /* JSON, as GET's */
        return;
    }
    char id[ENGINE_JOB_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", job->id);
    if (!engine_phase_final(job->phase)) {
        uws_delete_live(c, job, id, r);
        return;
    }
    /* its end not reported yet: counted as ended when it is
     * (uws_service_job_changed), not before */
    engine_phase counted = job->result_published ? job->phase : ENGINE_EXECUTING;
    /* a job that never started may have a directory all the same (its
     * start step made it, or a runner that could not be watched wrote its
     * claim there): moved aside too, but for one aborted while queued */
    if (uws_job_has_files(job) || job->phase != ENGINE_ABORTED) {
        uws_forget_begin(c->s, id, counted, r);
        return;
    }
    if (uws_forget_now(c->s, id, counted, err, sizeof err) != 0) {
        char msg[700];
        snprintf(msg, sizeof msg, "job %s could not be deleted: %s", id, err);
        uws_reply_text(r, 500, msg);
        return;
    }
    uws_reply_deleted(r);
}

/* POST {base}/job/{id}/phase with PHASE=ABORT (UWS 1.1): the job ends as
 * aborted and stays, with its files; 303 to the job, with the job object
 * as it was once the abort was asked (its results walked off the loop). */
static void uws_post_phase(const uws_call *c, uws_reply *r)
{
    char err[512];
    const engine_job *job = uws_find(c->s, c->route->id);
    if (job == NULL) {
        uws_not_found(r, c->route->id);
        return;
    }
    if (uws_phase_action_parse(c->body, c->len, err, sizeof err) != 0) {
        uws_reply_text(r, 400, err);
        return;
    }
    if (engine_job_abort(c->s->e, c->route->id, err, sizeof err) != 0) {
        uws_reply_text(r, 500, err);
        return;
    }
    job = engine_job_get(c->s->e, c->route->id);
    snprintf(r->location, sizeof r->location, "%s/job/%s", c->s->base_path, c->route->id);
    if (job == NULL) {
        uws_reply_json(r, 303, json_null());
        return;
    }
    /* the job as GET /job/{id} makes it (a results walk on the thread
     * pool: the abort above is done already, this answer alone waits for
     * a hung work root), never a kept answer (its status is not 200) */
    uws_reply_found(c->s, job, NULL, false, r);
    if (r->defer_work == uws_found_run) {
        ((uws_found_work *)r->defer_arg)->status = 303;
    } else if (r->status == 200) {
        r->status = 303;
    }
}

static const char *uws_mime(const char *path)
{
    static const char *const types[][2] = {
        {".txt", "text/plain"},          {".log", "text/plain"}, {".json", "application/json"},
        {".yaml", "application/x-yaml"}, {".html", "text/html"}, {".csv", "text/csv"},
        {".png", "image/png"},           {".jpg", "image/jpeg"}, {".fits", "application/fits"},
        {".gz", "application/gzip"},
    };
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t k = strlen(types[i][0]);
        if (n > k && strcasecmp(path + n - k, types[i][0]) == 0) {
            return types[i][1];
        }
    }
    return "application/octet-stream";
}

/* GET {base}/job/result/{id}/{index}, {base}/job/{id}/metrics and
 * {base}/job/{id}/log of a job with files: the file found and opened on
 * the thread pool (a hung work root stalls this request alone). */
typedef struct uws_file_work {
    char workdir[ENGINE_WORKDIR_MAX + 1];
    char path[1200]; /* the file; "": the result at `index` of the job's listing */
    long index;
    const char *content_type; /* static; NULL: by the file's name */
    const char *missing;      /* static: the text of the 404 */
} uws_file_work;

/* A regular file at path, opened (no link followed): its fd and size,
 * or -1. */
static int uws_open_regular(const char *path, size_t *len)
{
    int fd = path != NULL ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) : -1;
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
    }
    *len = fd >= 0 ? (size_t)st.st_size : 0;
    return fd;
}

/* Read up to len bytes at off into buf (on the thread pool): 0 with the
 * bytes read in *got (fewer at the end of the file), or an errno. */
static int uws_pread_full(int fd, char *buf, size_t len, uint64_t off, size_t *got)
{
    *got = 0;
    while (*got < len) {
        ssize_t n = pread(fd, buf + *got, len - *got, (off_t)(off + *got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? errno : 0;
        }
        *got += (size_t)n;
    }
    return 0;
}

/* The file of fd (len bytes, at most UWS_FILE_PART) read whole into r's
 * body; fd closed. A file that ended sooner is sent as it is. */
static void uws_file_read_whole(int fd, size_t len, uws_reply *r)
{
    char *body = malloc(len + 1);
    size_t got = 0;
    int err = body != NULL ? uws_pread_full(fd, body, len, 0, &got) : ENOMEM;
    close(fd);
    if (err != 0) {
        free(body);
        uws_reply_text(r, 500, err == ENOMEM ? "out of memory" : "the file could not be read");
        return;
    }
    body[got] = '\0';
    r->body = body;
    r->len = got;
}

static void uws_file_run(void *arg, uws_reply *r)
{
    uws_file_work *w = arg;
    json_t *results = NULL;
    const char *path = w->path;
    if (path[0] == '\0') {
        results = uws_job_results(w->workdir);
        long index = w->index < 0 ? w->index + (long)json_array_size(results) : w->index;
        path = index >= 0 ? json_string_value(json_array_get(results, (size_t)index)) : NULL;
    }
    size_t len = 0;
    int fd = uws_open_regular(path, &len);
    if (fd < 0) {
        uws_reply_text(r, 404, w->missing);
    } else {
        r->status = 200;
        r->content_type = w->content_type != NULL ? w->content_type : uws_mime(path);
        r->len = len;
        if (len <= UWS_FILE_PART) {
            uws_file_read_whole(fd, len, r);
        } else {
            r->fd = fd; /* sent a part at a time (uws_stream) */
        }
    }
    json_decref(results);
}

static void uws_file_release(void *arg, uws_reply *r)
{
    (void)r;
    free(arg);
}

/* r: w's file made on the thread pool (w taken), or a 500. */
static void uws_reply_file(uws_reply *r, uws_file_work *w)
{
    if (w == NULL) {
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    r->defer_work = uws_file_run;
    r->defer_release = uws_file_release;
    r->defer_arg = w;
}

/* GET {base}/job/result/{id}/{index}: a file of the job's listing only
 * (none for a job that has not started: nothing touched). */
static void uws_get_result(const uws_call *c, uws_reply *r)
{
    static const char missing[] = "Result file not found.";
    const engine_job *job = uws_find(c->s, c->route->id);
    if (job == NULL || !uws_job_has_files(job)) {
        uws_reply_text(r, 404, missing);
        return;
    }
    uws_file_work *w = calloc(1, sizeof *w);
    if (w != NULL) {
        snprintf(w->workdir, sizeof w->workdir, "%s", job->workdir);
        w->index = c->route->index;
        w->missing = missing;
    }
    uws_reply_file(r, w);
}

/* Extension: GET {base}/job/{id}/metrics, the job's metrics.json (what
 * the embedded ocps-pipetask reports: outputs, summary), and
 * {base}/job/{id}/log, its ocps.log; 404 while there is none (a job that
 * has not started: nothing touched). A CSC that hands its jobs here reads
 * them for its job_result. */
static void uws_get_job_file(const uws_call *c, uws_reply *r)
{
    const engine_job *job = uws_find(c->s, c->route->id);
    if (job == NULL) {
        uws_not_found(r, c->route->id);
        return;
    }
    bool metrics = strcmp(c->route->property, "metrics") == 0;
    const char *missing = metrics ? "No metrics for this job." : "No log for this job.";
    uws_file_work *w = calloc(1, sizeof *w);
    int n = w == NULL ? 0
            : metrics ? snprintf(w->path, sizeof w->path, "%s/metrics.json", job->workdir)
                      : snprintf(w->path, sizeof w->path, "%s", job->log_path);
    if (w != NULL &&
        (n <= 0 || (size_t)n >= sizeof w->path || job->workdir[0] == '\0' || !uws_job_has_files(job))) {
        free(w);
        uws_reply_text(r, 404, missing);
        return;
    }
    if (w != NULL) {
        w->content_type = metrics ? "application/json" : "text/plain; charset=utf-8";
        w->missing = missing;
    }
    uws_reply_file(r, w);
}

static void uws_options(const uws_call *c, uws_reply *r)
{
    (void)c;
    r->status = 204;
}

/* GET /metrics and {base}/metrics: the Prometheus text format. */
static void uws_get_metrics(const uws_call *c, uws_reply *r)
{
    char err[512];
    if (engine_store_check(c->s->e, err, sizeof err) != 0) {
        uws_metrics_store(c->s->metrics, false); /* gone for good: no job is taken */
    }
    r->body = uws_metrics_render(c->s->metrics, c->s->e, &r->len);
    if (r->body == NULL) {
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void uws_reply_html(uws_reply *r, char *html, size_t len)
{
    r->status = 200;
    r->content_type = "text/html; charset=utf-8";
    r->body = html;
    r->len = len;
}

static bool uws_page_hidden(void *arg, const char *id)
{
    return uws_deleting(arg, id);
}

/* The path the status pages were asked for under: "" at the root, else
 * the base path (behind a proxy that shows only the base path, a link to
 * /status would not be reached). */
static const char *uws_page_prefix(const uws_call *c)
{
    return c->route->under_base ? c->s->base_path : "";
}

/* GET /status[?before=CURSOR]: the job list page (a page of the history). */
static void uws_get_status(const uws_call *c, uws_reply *r)
{
    char err[512];
    size_t len = 0;
    long long before = 0;
    const char *value = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "before");
    if (value != NULL) {
        char *end = NULL;
        errno = 0;
        before = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || before <= 0) {
            uws_reply_text(r, 400, "before must be a positive integer (the cursor of a page)");
            return;
        }
    }
    char *html = uws_page_jobs(c->s->e, (int64_t)before, uws_page_prefix(c), uws_page_hidden, c->s, &len, err,
                               sizeof err);
    uws_metrics_store(c->s->metrics, html != NULL);
    if (html == NULL) {
        uws_reply_text(r, 500, err);
        return;
    }
    uws_reply_html(r, html, len);
}

/* The job page, rendered on the thread pool (it reads the log tail and
 * lists the output directory). */
static void uws_status_job_work(void *arg, uws_reply *r)
{
    size_t len = 0;
    char *html = uws_job_page_render(arg, &len);
    if (html == NULL) {
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    uws_reply_html(r, html, len);
}

static void uws_status_job_release(void *arg, uws_reply *r)
{
    (void)r;
    uws_job_page_free(arg);
}

/* GET /status/job/{id}: the page of one job. */
static void uws_get_status_job(const uws_call *c, uws_reply *r)
{
    const engine_job *job = uws_find(c->s, c->route->id);
    if (job == NULL) {
        char msg[256];
        uws_not_found_text(c->route->id, msg, sizeof msg);
        uws_reply_text(r, 404, msg);
        return;
    }
    uws_job_page *page = uws_job_page_new(job, c->s->base_path, uws_page_prefix(c));
    if (page == NULL) {
        uws_reply_text(r, 500, "out of memory");
        return;
    }
    r->defer_work = uws_status_job_work;
    r->defer_release = uws_status_job_release;
    r->defer_arg = page;
}

/* ---- routing: every route of the service, in one place ------------------ */

typedef struct uws_route_entry {
    uws_route_kind kind;
    const char *property; /* NULL: any (or none) */
    const char *method;
    uws_handler handler;
} uws_route_entry;

static const uws_route_entry uws_routes[] = {
    {UWS_ROUTE_JOBS, NULL, "GET", uws_get_jobs},
    {UWS_ROUTE_JOBS, NULL, "PUT", uws_put_job},
    {UWS_ROUTE_JOB, NULL, "GET", uws_get_job},
    {UWS_ROUTE_JOB, NULL, "DELETE", uws_delete_job},
    {UWS_ROUTE_PROPERTY, "metrics", "GET", uws_get_job_file},
    {UWS_ROUTE_PROPERTY, "log", "GET", uws_get_job_file},
    {UWS_ROUTE_PROPERTY, NULL, "GET", uws_get_job},
    {UWS_ROUTE_PROPERTY, "phase", "POST", uws_post_phase},
    {UWS_ROUTE_RESULT, NULL, "GET", uws_get_result},
};

/* The routes outside the API (GET only), at the root and under the base
 * path: {suffix of the path, its name, handler}; a name ending in "_job"
 * takes a job id after the suffix. */
typedef struct uws_page_entry {
    const char *path;
    const char *name;
    uws_handler handler;
} uws_page_entry;

static const uws_page_entry uws_pages[] = {
    {"/metrics", "metrics", uws_get_metrics},
    {"/status", "status", uws_get_status},
    {"/status/", "status", uws_get_status},
    {"/status/job/", "status_job", uws_get_status_job},
};

static const char *const uws_route_names[] = {
    [UWS_ROUTE_JOBS] = "jobs",
    [UWS_ROUTE_JOB] = "job",
    [UWS_ROUTE_PROPERTY] = "property",
    [UWS_ROUTE_RESULT] = "result",
};

/* The page `url` names (root or under the base path), its job id into
 * route->id; NULL if none. */
static const uws_page_entry *uws_page_match(const uws_service *s, const char *url, uws_route *route)
{
    size_t bl = strlen(s->base_path);
    const char *rest[2] = {url, strncmp(url, s->base_path, bl) == 0 && bl > 0 ? url + bl : NULL};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; rest[k] != NULL && i < sizeof uws_pages / sizeof uws_pages[0]; i++) {
            const uws_page_entry *p = &uws_pages[i];
            size_t n = strlen(p->path);
            bool with_id = strcmp(p->name, "status_job") == 0;
            if (with_id ? strncmp(rest[k], p->path, n) == 0 && strlen(rest[k] + n) <= UWS_MAX_ID &&
                              strchr(rest[k] + n, '/') == NULL
                        : strcmp(rest[k], p->path) == 0) {
                memset(route, 0, sizeof *route);
                snprintf(route->id, sizeof route->id, "%s", with_id ? rest[k] + n : "");
                route->under_base = k == 1;
                return p;
            }
        }
    }
    return NULL;
}

static bool uws_route_takes(const uws_route_entry *e, const uws_route *route)
{
    return e->kind == route->kind && (e->property == NULL || strcmp(e->property, route->property) == 0);
}

/* The Allow header of a 405 on `route`: the methods uws_routes takes there,
 * in the table's order, then OPTIONS (every API route answers it). */
static void uws_allow_for(const uws_route *route, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof uws_routes / sizeof uws_routes[0]; i++) {
        const uws_route_entry *e = &uws_routes[i];
        if (uws_route_takes(e, route) && strstr(out, e->method) == NULL) {
            n += (size_t)snprintf(out + n, cap - n, "%s, ", e->method);
        }
    }
    snprintf(out + n, cap - n, "OPTIONS");
}

/* The handler of `method` on `url` (its route into *route, its name for
 * the metrics into rq->route), or NULL with r answered: 404 for a path
 * that names nothing (400 for a known route with a bad part), 405 for a
 * method its route does not take. Needs neither the body nor the engine,
 * so that it can be asked as soon as the headers have arrived. */
static uws_handler uws_resolve(const uws_service *s, const char *method, const char *url, uws_request *rq,
                               uws_route *route, uws_reply *r)
{
    char err[512];
    const uws_page_entry *page = uws_page_match(s, url, route);
    if (page != NULL) {
        rq->route = page->name;
        if (strcmp(method, "GET") == 0) {
            return page->handler;
        }
        if (strcmp(method, "OPTIONS") == 0) {
            return uws_options;
        }
        snprintf(r->allow, sizeof r->allow, "GET, OPTIONS");
        uws_reply_text(r, 405, "Method Not Allowed");
        return NULL;
    }
    int rc = uws_route_parse(s->base_path, url, route, err, sizeof err);
    if (rc == 400) {
        uws_reply_json(r, 400, json_string(err)); /* as the reference: a JSON string */
        return NULL;
    }
    if (rc != 0) {
        uws_reply_text(r, (unsigned)rc, err);
        return NULL;
    }
    rq->route = uws_route_names[route->kind];
    if (strcmp(method, "OPTIONS") == 0) {
        return uws_options;
    }
    for (size_t i = 0; i < sizeof uws_routes / sizeof uws_routes[0]; i++) {
        const uws_route_entry *e = &uws_routes[i];
        if (uws_route_takes(e, route) && strcmp(e->method, method) == 0) {
            return e->handler;
        }
    }
    uws_allow_for(route, r->allow, sizeof r->allow);
    uws_reply_text(r, 405, "Method Not Allowed");
    return NULL;
}

/* Answer the request (its body, if any, read whole) into r. */
static void uws_dispatch(uws_service *s, struct MHD_Connection *conn, const char *method, const char *url,
                         uws_request *rq, uws_reply *r)
{
    uws_route route;
    uws_handler handler = uws_resolve(s, method, url, rq, &route, r);
    if (handler != NULL) {
        uws_call call = {s, conn, &route, rq->body, rq->len};
        handler(&call, r);
    }
}

/* ---- libmicrohttpd ------------------------------------------------------ */

static bool uws_authorized(const uws_service *s, struct MHD_Connection *conn, const char *method)
{
    if (s->token == NULL || strcmp(method, "OPTIONS") == 0) {
        return true;
    }
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        return false;
    }
    h += 7;
    size_t n = strlen(h);
    size_t m = strlen(s->token);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < m; i++) {
        diff |= (unsigned)(unsigned char)s->token[i] ^ (unsigned)(unsigned char)(i < n ? h[i] : 0);
    }
    return diff == 0;
}

static struct MHD_Response *uws_stream_response(uws_service *s, struct MHD_Connection *conn, uws_reply *r);

static enum MHD_Result uws_send(uws_service *s, struct MHD_Connection *conn, uws_request *rq, uws_reply *r)
{
    struct MHD_Response *resp = r->kept != NULL ? r->kept
                                : r->fd >= 0    ? uws_stream_response(s, conn, r)
                                                : uws_response(r);
    if (resp == NULL) {
        return MHD_NO;
    }
    rq->status = r->status;
    rq->bytes = r->len;
    uws_metrics_request(s->metrics, rq->route != NULL ? rq->route : "unknown", rq->method, r->status);
    enum MHD_Result rc = MHD_queue_response(conn, r->status, resp);
    if (r->kept == NULL) {
        MHD_destroy_response(resp);
    }
    return rc;
}

/* ---- replies built off the loop (the connection suspended) -------------- */

static void uws_stream_read(uws_stream *st);
static void uws_stream_read_done(uws_stream *st, int status);
static void uws_stream_free(uws_stream *st);

static void uws_defer_run(uv_work_t *req)
{
    uws_deferred *d = req->data;
    if (d->stream != NULL) {
        uws_stream_read(d->stream);
    } else {
        d->reply.defer_work(d->reply.defer_arg, &d->reply);
    }
}

/* d's reply (built, or failed) waits in the request, the connection
 * resumes and MHD calls uws_on_request again, which sends it. */
static void uws_defer_answer(uws_deferred *d)
{
    uws_service *s = d->s;
    uws_request *rq = d->rq;
    d->reply.defer_release(d->reply.defer_arg, &d->reply);
    d->reply.defer_work = NULL;
    d->reply.defer_release = NULL;
    d->reply.defer_arg = NULL;
    if (rq == NULL) { /* uws_defer_detached: nobody waits for the reply */
        free(d->reply.body);
        free(d);
        s->deferred--;
        return;
    }
    rq->reply = d->reply;
    rq->ready = true;
    rq->deferred = NULL;
    MHD_resume_connection(d->conn);
    free(d);
    s->deferred--;
}

static void uws_defer_done(uv_work_t *req, int status);

/* d could not go on the pool: a reply answered 500, a file part failed. */
static void uws_defer_fail(uws_deferred *d)
{
    if (d->stream != NULL) {
        uws_stream_read_done(d->stream, UV_EINVAL);
        return;
    }
    uws_reply_text(&d->reply, 500, "the reply could not be built");
    uws_defer_answer(d);
}

/* Can d go on the pool now? */
static bool uws_walk_fits(const uws_service *s, const uws_deferred *d)
{
    return s->walks < s->walks_max && (!d->list || s->lists < s->lists_max);
}

/* Start the walks waiting for their turn that fit, oldest first (a list
 * waiting for another list to end holds up no job walk behind it). */
static void uws_walks_next(uws_service *s)
{
    uws_deferred **at = &s->walks_wait;
    uws_deferred *prev = NULL;
    while (*at != NULL && s->walks < s->walks_max) {
        uws_deferred *d = *at;
        if (!uws_walk_fits(s, d)) {
            prev = d;
            at = &d->next;
            continue;
        }
        *at = d->next;
        if (s->walks_wait_tail == d) {
            s->walks_wait_tail = prev;
        }
        d->next = NULL;
        s->lists_waiting -= d->list;
        if (d->stream != NULL && d->stream->left) { /* its client is gone: nothing to read */
            uws_stream_free(d->stream);
            s->deferred--;
        } else if (uv_queue_work(s->loop, &d->req, uws_defer_run, uws_defer_done) == 0) {
            s->walks++;
            s->lists += d->list;
        } else {
            uws_defer_fail(d);
        }
    }
}

/* Back on the loop: answer, and start the next walk if this was one. */
static void uws_defer_done(uv_work_t *req, int status)
{
    uws_deferred *d = req->data;
    uws_service *s = d->s;
    if (d->walk) {
        s->walks--;
        s->lists -= d->list;
        uws_walks_next(s); /* before the answer: s->deferred stays > 0 while walks wait */
    }
    if (d->stream != NULL) {
        uws_stream_read_done(d->stream, status);
    } else {
        if (status != 0 && d->reply.status == 0) {
            uws_reply_text(&d->reply, 500, "the reply could not be built");
        }
        uws_defer_answer(d);
    }
    if (s->closing) {
        uws_free_if_done(s);
    } else {
        uws_run(s);
    }
}

/* Put d on the pool now, or (a walk that does not fit) at the end of
 * the waiting line; 0, or -1 when libuv refused it. */
static int uws_pool_queue(uws_service *s, uws_deferred *d)
{
    if (d->walk && !uws_walk_fits(s, d)) {
        if (s->walks_wait_tail != NULL) {
            s->walks_wait_tail->next = d;
        } else {
            s->walks_wait = d;
        }
        s->walks_wait_tail = d;
        s->lists_waiting += d->list;
        return 0;
    }
    if (uv_queue_work(s->loop, &d->req, uws_defer_run, uws_defer_done) != 0) {
        return -1;
    }
    s->walks += d->walk;
    s->lists += d->list;
    return 0;
}

/* work(arg, reply) on the pool in turn with the walks, then release(arg,
 * reply) on the loop, with no request waiting for the reply (dropped);
 * s->deferred counts it (the service is freed after it). 0, or -1:
 * nothing queued. */
static int uws_defer_detached(uws_service *s, uws_defer_work work, uws_defer_release release, void *arg)
{
    uws_deferred *d = calloc(1, sizeof *d);
    if (d == NULL) {
        return -1;
    }
    d->s = s;
    d->req.data = d;
    d->reply.fd = -1;
    d->reply.defer_work = work;
    d->reply.defer_release = release;
    d->reply.defer_arg = arg;
    d->walk = true;
    if (uws_pool_queue(s, d) != 0) {
        free(d);
        return -1;
    }
    s->deferred++;
    return 0;
}

/* Does r's work read (or write) under the work root? */
static bool uws_defer_walks(const uws_reply *r)
{
    return r->defer_work == uws_list_run || r->defer_work == uws_found_run || r->defer_work == uws_file_run ||
           r->defer_work == uws_status_job_work || r->defer_work == uws_mark_run ||
           r->defer_work == uws_forget_run;
}

/* Suspend the connection and build r (r->defer_work) on the thread pool
 * (a walk under the work root once fewer than walks_max are there); if
 * that cannot be, build it here. */
static enum MHD_Result uws_defer(uws_service *s, struct MHD_Connection *conn, uws_request *rq, uws_reply *r)
{
    bool list = r->defer_work == uws_list_run;
    bool walk = uws_defer_walks(r);
    /* those waiting cannot fit (uws_walks_next ran when the counts went
     * down): waiting behind them keeps the order */
    bool waits = walk && (s->walks >= s->walks_max || (list && s->lists >= s->lists_max));
    if (waits && list && s->lists_waiting >= UWS_LISTS_WAIT_MAX) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "too many GET /job lists at once (%u being made, %u waiting): try again later", s->lists,
                 s->lists_waiting);
        r->defer_release(r->defer_arg, r);
        r->defer_work = NULL;
        r->defer_release = NULL;
        r->defer_arg = NULL;
        uws_reply_try_later(r, msg);
        return uws_send(s, conn, rq, r);
    }
    uws_deferred *d = calloc(1, sizeof *d);
    if (d != NULL) {
        d->s = s;
        d->conn = conn;
        d->rq = rq;
        d->reply = *r;
        d->req.data = d;
        d->walk = walk;
        d->list = list;
        MHD_suspend_connection(conn);
        if (uws_pool_queue(s, d) == 0) {
            rq->deferred = d;
            s->deferred++;
            return MHD_YES;
        }
        MHD_resume_connection(conn);
        free(d);
    }
    r->defer_work(r->defer_arg, r);
    r->defer_release(r->defer_arg, r);
    return uws_send(s, conn, rq, r);
}

/* ---- file bodies read off the loop, a part at a time -------------------- */

static void uws_stream_free(uws_stream *st)
{
    close(st->fd);
    free(st->part);
    free(st->next);
    free(st);
}

/* On the thread pool: the next part (it touches only st's next_*, fd and
 * size, which the loop leaves alone while it reads). */
static void uws_stream_read(uws_stream *st)
{
    uint64_t left = st->size - st->next_at;
    size_t want = left < UWS_FILE_PART ? (size_t)left : UWS_FILE_PART;
    st->next_errno = uws_pread_full(st->fd, st->next, want, st->next_at, &st->next_len);
    if (st->next_errno == 0 && st->next_len < want) {
        st->next_errno = EIO; /* the file is shorter than its Content-Length now */
    }
}

/* Ask for the part after st->part, on the pool in turn with the walks
 * (s->deferred counts it: the service is not freed before it is over).
 * 0, or -1. */
static int uws_stream_read_next(uws_stream *st)
{
    uws_service *s = st->read.s;
    if (st->next == NULL && (st->next = malloc(UWS_FILE_PART)) == NULL) {
        return -1;
    }
    st->next_at = st->part_at + st->part_len;
    st->next_len = 0;
    st->next_errno = 0;
    if (uws_pool_queue(s, &st->read) != 0) {
        return -1;
    }
    st->next_state = UWS_NEXT_READING;
    s->deferred++;
    return 0;
}

/* Back on the loop: the part is read (or failed); a connection that waits
 * for it resumes, a stream libmicrohttpd is done with is freed. */
static void uws_stream_read_done(uws_stream *st, int status)
{
    st->read.s->deferred--;
    st->next_state = UWS_NEXT_READ;
    if (status != 0 && st->next_errno == 0) {
        st->next_errno = EIO;
    }
    if (st->left) {
        uws_stream_free(st);
        return;
    }
    if (st->suspended) {
        st->suspended = false;
        MHD_resume_connection(st->conn);
    }
}

/* libmicrohttpd's content reader (on the loop): the bytes at pos from the
 * part read; if it is used up, the next one once read, else the
 * connection is suspended until it is (uws_stream_read_done), which
 * libmicrohttpd allows from here (its content reader may return 0 only
 * so). The part after is read ahead as soon as this one is handed out. */
static ssize_t uws_stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    uws_stream *st = cls;
    if (pos >= st->part_at + st->part_len) {
        if (st->next_state == UWS_NEXT_NONE && uws_stream_read_next(st) != 0) {
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (st->next_state == UWS_NEXT_READING) {
            st->suspended = true;
            MHD_suspend_connection(st->conn);
            return 0;
        }
        if (st->next_errno != 0 || st->next_at != pos) {
            return MHD_CONTENT_READER_END_WITH_ERROR; /* the client sees fewer bytes than announced */
        }
        char *used = st->part;
        st->part = st->next;
        st->part_at = st->next_at;
        st->part_len = st->next_len;
        st->next = used;
        st->next_state = UWS_NEXT_NONE;
    }
    if (pos < st->part_at) {
        return MHD_CONTENT_READER_END_WITH_ERROR; /* never: libmicrohttpd asks in order */
    }
    size_t at = (size_t)(pos - st->part_at);
    size_t n = st->part_len - at < max ? st->part_len - at : max;
    memcpy(buf, st->part + at, n);
    if (st->next_state == UWS_NEXT_NONE && st->part_at + st->part_len < st->size) {
        (void)uws_stream_read_next(st); /* failed: asked again when needed */
    }
    return (ssize_t)n;
}

/* libmicrohttpd is done with the stream (the reply sent, the client gone,
 * the daemon stopped): freed now, or once its read is over. */
static void uws_stream_end(void *cls)
{
    uws_stream *st = cls;
    if (st->next_state == UWS_NEXT_READING) {
        st->left = true;
        return;
    }
    uws_stream_free(st);
}

/* The response of r's file (r->fd, r->len bytes) sent from parts read
 * on the pool, with r's headers (the fd handed over), or NULL (closed). */
static struct MHD_Response *uws_stream_response(uws_service *s, struct MHD_Connection *conn, uws_reply *r)
{
    uws_stream *st = calloc(1, sizeof *st);
    struct MHD_Response *resp = NULL;
    if (st != NULL) {
        st->read.s = s;
        st->read.req.data = &st->read;
        st->read.stream = st;
        st->read.walk = true;
        st->conn = conn;
        st->fd = r->fd;
        st->size = (uint64_t)r->len;
        resp = MHD_create_response_from_callback(st->size, UWS_FILE_BLOCK, uws_stream_reader, st,
                                                 uws_stream_end);
    }
    if (resp == NULL) {
        free(st);
        close(r->fd);
        r->fd = -1;
        return NULL;
    }
    r->fd = -1;
    uws_response_headers(resp, r);
    return resp;
}

static size_t uws_on_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return uws_unescape(s);
}

/* GET /healthz (root only, open with or without a token): 200 "ok" while
 * the service answers, for a liveness or readiness probe; also while it
 * drains (its body says so): clients that follow their jobs through a
 * Kubernetes Service reach a pod only while it is ready. */
static void uws_get_healthz(const uws_service *s, const char *method, uws_reply *r)
{
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        uws_reply_text(r, 200, s->draining ? "ok draining: no new job is taken\n" : "ok\n");
    } else {
        snprintf(r->allow, sizeof r->allow, "GET, HEAD");
        uws_reply_text(r, 405, "Method Not Allowed");
    }
}

/* src into dst (dstlen > 0, cut to fit), each control character '?'. */
static void uws_copy_printable(char *dst, size_t dstlen, const char *src)
{
    size_t n = 0;
    for (; src[n] != '\0' && n + 1 < dstlen; n++) {
        unsigned char c = (unsigned char)src[n];
        dst[n] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    dst[n] = '\0';
}

/* Keep the method and path of rq for its log line, printable: a path's
 * %0a, decoded, must not start a line of its own in the request log. */
static void uws_request_name(uws_request *rq, const char *method, const char *url)
{
    uws_copy_printable(rq->method, sizeof rq->method, method);
    uws_copy_printable(rq->path, sizeof rq->path, url);
}

/* A body over --max-body is read (and dropped) up to this many times the
 * limit for its 400 to be answered; beyond, the connection is closed. */
#define UWS_OVERFLOW_READ_FACTOR 4

/* The 400 of a body over --max-body. */
static void uws_reply_too_large(const uws_service *s, uws_reply *r)
{
    char msg[128];
    snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->max_body);
    uws_reply_text(r, 400, msg);
}

/* The 401 of a request without the bearer token. */
static void uws_reply_unauthorized(uws_request *rq, uws_reply *r)
{
    rq->route = "unauthorized";
    uws_reply_text(r, 401, "a valid bearer token is required (Authorization: Bearer ...)");
}

/* Does the request announce a body (a Content-Length other than 0, or a
 * Transfer-Encoding)? */
static bool uws_announces_body(struct MHD_Connection *conn)
{
    const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return te != NULL || (clen != NULL && strtoull(clen, NULL, 10) > 0);
}

/* On the first call (the headers only), for a request that announces a
 * body: the answer its headers decide, into r (true), so that it goes
 * before any of the body is accepted (no 100 Continue; libmicrohttpd
 * reads none of it and closes the connection after the answer): 401
 * without the token, 404 or 405 where no route takes the method, 400 for a
 * Content-Length over --max-body. false: the body is to be read. A request
 * without a body is answered on the next call, as every other (answering
 * on the first call would close a keep-alive connection). */
static bool uws_reply_before_body(uws_service *s, struct MHD_Connection *conn, const char *method,
                                  const char *url, uws_request *rq, uws_reply *r)
{
    if (!uws_announces_body(conn)) {
        return false;
    }
    if (strcmp(url, "/healthz") == 0) { /* reads no body */
        rq->route = "healthz";
        uws_get_healthz(s, method, r);
        return true;
    }
    if (!uws_authorized(s, conn, method)) {
        uws_reply_unauthorized(rq, r);
        return true;
    }
    rq->handler = uws_resolve(s, method, url, rq, &rq->resolved, r);
    if (rq->handler == NULL) {
        return true;
    }
    const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen != NULL && strtoull(clen, NULL, 10) > s->max_body) {
        uws_reply_too_large(s, r);
        return true;
    }
    return false;
}

static enum MHD_Result uws_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version, const char *upload_data,
                                      size_t *upload_data_size, void **con_cls)
{
    (void)version;
    uws_service *s = cls;
    uws_request *rq = *con_cls;
    uws_reply r = {.fd = -1};
    if (rq == NULL) {
        rq = calloc(1, sizeof *rq);
        if (rq == NULL) {
            return MHD_NO;
        }
        rq->t0 = sal_clock_monotonic();
        uws_request_name(rq, method, url);
        *con_cls = rq;
        if (uws_reply_before_body(s, conn, method, url, rq, &r)) {
            rq->answered = true;
            return uws_send(s, conn, rq, &r);
        }
        return MHD_YES;
    }
    if (rq->answered) { /* on the first call: none of the body is read */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->overflow) {
            /* read and dropped until the body ends; a client that goes on
             * sending far beyond the limit loses its connection */
            rq->len += n;
            return rq->len / UWS_OVERFLOW_READ_FACTOR <= s->max_body ? MHD_YES : MHD_NO;
        }
        if (rq->len + n > s->max_body) {
            /* a chunked body (no Content-Length): libmicrohttpd queues no
             * answer during an upload (a queued one would close the
             * connection unanswered), so the 400 goes when it has ended */
            rq->overflow = true;
            rq->overflow_unanswered = true;
            rq->len += n;
            free(rq->body);
            rq->body = NULL;
            return MHD_YES;
        }
        char *p = realloc(rq->body, rq->len + n + 1);
        if (p == NULL) {
            return MHD_NO;
        }
        memcpy(p + rq->len, upload_data, n);
        rq->body = p;
        rq->len += n;
        rq->body[rq->len] = '\0';
        return MHD_YES;
    }
    if (rq->overflow_unanswered) {
        rq->overflow_unanswered = false;
        uws_reply_too_large(s, &r);
        return uws_send(s, conn, rq, &r);
    }
    if (rq->overflow || rq->deferred != NULL || rq->parked) {
        return MHD_YES; /* answered already, or being answered off the loop or in a batch */
    }
    if (rq->ready) { /* built off the loop or in a batch, the connection resumed */
        rq->ready = false;
        r = rq->reply;
        memset(&rq->reply, 0, sizeof rq->reply);
        rq->reply.fd = -1;
        if (r.defer_work != NULL) { /* a PUT answered with its job as it is: walked off the loop */
            return uws_defer(s, conn, rq, &r);
        }
        return uws_send(s, conn, rq, &r);
    }
    if (rq->handler != NULL) { /* judged on its headers: the token and the route are known */
        uws_call call = {s, conn, &rq->resolved, rq->body, rq->len};
        rq->handler(&call, &r);
    } else if (strcmp(url, "/healthz") == 0) { /* the probe: no token, no job data */
        rq->route = "healthz";
        uws_get_healthz(s, method, &r);
    } else if (!uws_authorized(s, conn, method)) {
        uws_reply_unauthorized(rq, &r);
    } else {
        uws_dispatch(s, conn, method, url, rq, &r);
    }
    if (r.defer_work != NULL) {
        return uws_defer(s, conn, rq, &r);
    }
    if (r.put != NULL && s->closing) { /* no more group commits: nothing created */
        uws_put_free(r.put);
        r.put = NULL;
        uws_reply_try_later(&r, "the service is shutting down");
    } else if (r.put != NULL && s->draining) {
        uws_put_free(r.put);
        r.put = NULL;
        uws_reply_try_later(&r, "the service is draining (it stops once its running jobs have ended): "
                                "no new job is taken; try again later");
        r.retry_after = UWS_DRAIN_RETRY_AFTER;
    }
    if (r.put != NULL) {
        return uws_park(s, conn, rq, r.put);
    }
    return uws_send(s, conn, rq, &r);
}

/* Write out the request log (stderr), never waiting for a stalled pipe or
 * socket reader: the lines that do not fit are dropped and counted. */
static void uws_log_flush(uws_service *s)
{
    sal_errout_write(s->log, s->loglen);
    s->loglen = 0;
}

/* One line per request: time, client, method, path, status, bytes, ms
 * (buffered until the end of the MHD_run that answered it). */
static void uws_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                             enum MHD_RequestTerminationCode toe)
{
    uws_service *s = cls;
    uws_request *rq = *con_cls;
    if (rq == NULL) {
        return;
    }
    char addr[INET6_ADDRSTRLEN] = "-";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci != NULL && ci->client_addr != NULL) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr, sizeof addr);
        } else if (sa->sa_family == AF_INET6) {
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr,
                      sizeof addr);
        }
    }
    time_t now = time(NULL);
    if (now != s->log_second || s->log_when[0] == '\0') {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(s->log_when, sizeof s->log_when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        s->log_second = now;
    }
    char line[512];
    int n = snprintf(line, sizeof line, "%s %s %s %s %u %zu %.3fms%s\n", s->log_when, addr, rq->method,
                     rq->path, rq->status, rq->bytes, (sal_clock_monotonic() - rq->t0) * 1e3,
                     toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (incomplete)");
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (s->loglen + len > sizeof s->log) {
        uws_log_flush(s);
    }
    memcpy(s->log + s->loglen, line, len);
    s->loglen += len;
    if (rq->ready) { /* built, never sent (the daemon stopped) */
        free(rq->reply.body);
        if (rq->reply.fd >= 0) {
            close(rq->reply.fd);
        }
    }
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

/* Let MHD work now (e.g. send what a resumed connection waits for). */
static void uws_run(uws_service *s)
{
    uv_mhd_run(s->http);
}

/* After every MHD_run: write the request log of what it answered. */
static void uws_after_run(void *arg)
{
    uws_log_flush(arg);
}

/* Jobs whose deletion a previous run accepted: gone for the API; abort
 * them again (idempotent), they are deleted once ended (an ended one whose
 * end was not published: when the engine reports it again). */
static int uws_resume_one(void *arg, const engine_job *job)
{
    uws_service *s = arg;
    uws_metrics_job_seed(s->metrics, job);
    if ((!engine_phase_final(job->phase) || !job->result_published) && uws_marked_deleted(job->workdir)) {
        uws_deleting_add(s, job->id);
    }
    return 0;
}

/* The listen address of o into ss; 0, or -1 with a message. */
static int uws_listen_address(const uws_service_options *o, struct sockaddr_storage *ss, char *err,
                              size_t errlen)
{
    bool loopback = false;
    if (uv_mhd_parse_listen(o->listen, "--listen", ss, &loopback, err, errlen) != 0) {
        return -1;
    }
    if (!loopback && (o->token == NULL || o->token[0] == '\0') && !o->allow_unauthenticated) {
        snprintf(err, errlen,
                 "--listen %s is not a loopback address: a bearer token (--token-file) is required "
                 "(or --allow-unauthenticated, for a network that only trusted clients reach)",
                 o->listen);
        return -1;
    }
    return 0;
}

int uws_service_check_options(const uws_service_options *o, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    return uws_listen_address(o, &ss, err, errlen);
}

int uws_service_open(uws_service **out, uv_loop_t *loop, engine *e, const uws_service_options *o, char *err,
                     size_t errlen)
{
    *out = NULL;
    struct sockaddr_storage ss;
    if (uws_listen_address(o, &ss, err, errlen) != 0) {
        return -1;
    }
    uws_service *s = calloc(1, sizeof *s);
    if (s == NULL || (s->metrics = uws_metrics_new()) == NULL ||
        (o->token != NULL && (s->token = strdup(o->token)) == NULL)) {
        if (s != NULL) {
            uws_metrics_free(s->metrics);
        }
        free(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    atomic_init(&s->lists_stop, false);
    s->loop = loop;
    uws_run_token(s->run);
    s->e = e;
    s->walks_max = uws_walks_max();
    s->lists_max = uws_lists_max();
    s->max_body = o->max_body ? o->max_body : UWS_DEFAULT_MAX_BODY;
    snprintf(s->base_path, sizeof s->base_path, "%s", o->base_path != NULL ? o->base_path : "/api/v1");
    size_t bl = strlen(s->base_path);
    while (bl > 0 && s->base_path[bl - 1] == '/') {
        s->base_path[--bl] = '\0';
    }
    snprintf(s->work_root, sizeof s->work_root, "%s", o->work_root);
    unsigned max_conn = o->max_connections ? o->max_connections : 256u;
    /* one address holds at most a quarter: slow clients there (a client
     * sending a header line every few seconds is never idle) cannot take
     * every connection from the others */
    unsigned per_ip = max_conn / UWS_PER_ADDRESS_SHARE > 0 ? max_conn / UWS_PER_ADDRESS_SHARE : 1;
    struct MHD_Daemon *daemon = MHD_start_daemon(
        uv_mhd_flags(&ss) | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, uws_on_request, s, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, uws_on_completed, s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_CONNECTION_LIMIT, max_conn,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_UNESCAPE_CALLBACK, uws_on_unescape, s, MHD_OPTION_END);
    if (uv_mhd_attach(&s->http, loop, daemon, uws_after_run, s) != 0) {
        snprintf(err, errlen, "cannot listen on %s (in use, or not an address of this host)", o->listen);
        uws_metrics_free(s->metrics);
        free(s->token);
        free(s);
        return -1;
    }
    uv_check_init(loop, &s->check);
    uv_idle_init(loop, &s->idle);
    uv_timer_init(loop, &s->recheck);
    s->check.data = s;
    s->idle.data = s;
    s->recheck.data = s;
    s->handles = 3;
    char lerr[256];
    if (engine_job_list(e, uws_resume_one, s, lerr, sizeof lerr) != 0) {
        sal_errout_say("ocps-engine: %s", lerr);
    }
    for (size_t i = 0; i < s->ndeleting; i++) {
        engine_job_abort(e, s->deleting[i], lerr, sizeof lerr);
    }
    uws_gone_scan_start(s);
    uws_run(s);
    *out = s;
    return 0;
}

unsigned uws_service_port(const uws_service *s)
{
    return uv_mhd_port(s->http);
}

/* The daemon has stopped: free the service. */
static void uws_on_http_closed(void *arg)
{
    uws_service *s = arg;
    uws_log_flush(s);
    for (size_t i = 0; i < UWS_CACHE_SLOTS; i++) {
        uws_cache_clear(&s->cache[i]);
    }
    free(s->deleting);
    free(s->busy);
    uws_metrics_free(s->metrics);
    free(s->token);
    free(s);
}

/* Once its handles have closed, no reply is being built off the loop nor
 * file part read (no connection is suspended), no directory is being
 * moved aside and no kept answer checked: stop the daemon (which frees
 * the file streams left), then free the service. */
static void uws_free_if_done(uws_service *s)
{
    if (s->handles == 0 && s->deferred == 0 && s->moving == 0 && s->rechecking == NULL && s->http != NULL) {
        uv_mhd *http = s->http;
        s->http = NULL;
        uv_mhd_close(http, uws_on_http_closed, s);
    }
}

static void uws_on_closed(uv_handle_t *h)
{
    uws_service *s = h->data;
    s->handles--;
    uws_free_if_done(s);
}

void uws_service_drain(uws_service *s)
{
    s->draining = true;
}

void uws_service_close(uws_service *s)
{
    if (s == NULL) {
        return;
    }
    s->closing = true;
    atomic_store(&s->lists_stop, true);
    uws_flush_puts(s); /* committed, their connections resumed */
    /* and answered before the daemon stops: a resumed connection's reply
     * is queued in one run and may be written only in the next (a PUT now
     * is refused: 503, nothing created) */
    for (int i = 0; i < 3; i++) {
        uws_run(s);
    }
    uv_mhd_quiesce(s->http);
    uv_close((uv_handle_t *)&s->check, uws_on_closed);
    uv_close((uv_handle_t *)&s->idle, uws_on_closed);
    uv_close((uv_handle_t *)&s->recheck, uws_on_closed);
}
