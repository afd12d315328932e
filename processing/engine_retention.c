/*
 * engine_retention.c - the retention policy of the engine's history (see
 * engine_options): a periodic pass picks ended, published jobs from the
 * store, oldest first, with a read connection of its own on the libuv
 * thread pool (counting and summing a large history takes milliseconds),
 * and measures and removes their work directories there too, so the loop
 * never waits on the history or a large tree; the loop only leaves out the
 * jobs still in memory, records sizes and deletes the removed jobs' rows
 * (one transaction each), and logs what was removed.
 *
 * A pass: select and measure the history jobs whose disk use is not known
 * yet (only with a size limit), then select and remove the jobs past a
 * limit. At most ENGINE_RETENTION_BATCH jobs are handled per step; a pass
 * that filled its batch is followed by another soon after.
 *
 * Removal never leaves work_root: a job's directory must be
 * <work_root>/<job id>; it is opened without following a symlink, walked
 * with nftw(FTW_PHYS | FTW_DEPTH | FTW_MOUNT) (symlinks are removed, never
 * followed; other file systems are not entered), and a job path that is
 * not a directory is unlinked itself.
 */
#define _XOPEN_SOURCE 700
#include "engine__internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ENGINE_RETENTION_BATCH 500
/* The next pass after one that filled a batch. */
#define ENGINE_RETENTION_AGAIN_MS 1000
/* The first pass, soon after open (or a new policy), so that a CSC
 * restarted more often than the interval still applies it. */
#define ENGINE_RETENTION_FIRST_MS 5000

typedef struct engine_retention_item {
    char id[ENGINE_JOB_ID_LEN + 1];
    int64_t seq; /* the store's row: a later job with the same id is not this one */
    double ended;
    int64_t bytes; /* measured, or freed */
    int error;     /* errno of the first failure, 0 done */
} engine_retention_item;

/* What the thread pool does next. */
typedef enum engine_retention_step {
    ENGINE_RETENTION_SELECT_UNSIZED, /* history jobs not measured yet */
    ENGINE_RETENTION_MEASURE,        /* their disk use */
    ENGINE_RETENTION_SELECT_EXPIRED, /* history jobs past a limit */
    ENGINE_RETENTION_REMOVE          /* their directories */
} engine_retention_step;

struct engine_retention_pass {
    uv_work_t req;
    engine *e;
    engine_retention_step step;
    /* the worker's own copies */
    char *work_root;
    char *store_path;
    size_t max_jobs;
    uint64_t max_bytes;
    double ended_before; /* 0: no age limit */
    engine_retention_item *items;
    size_t n;
    size_t cap;
    size_t skipped; /* history jobs whose directory is not <work_root>/<id> */
    bool full;      /* a selection stopped at the batch size */
    bool again;     /* some step did: another pass soon */
    char error[512];
};

/* ---- on the thread pool ------------------------------------------------ */

/* nftw has no argument: per-thread totals. */
static _Thread_local int64_t engine_retention_bytes;
static _Thread_local int engine_retention_errno;

static int engine_retention_du(const char *path, const struct stat *sb, int type, struct FTW *f)
{
    (void)path;
    (void)f;
    if (type != FTW_NS) {
        engine_retention_bytes += (int64_t)sb->st_blocks * 512;
    }
    return 0;
}

static int engine_retention_rm(const char *path, const struct stat *sb, int type, struct FTW *f)
{
    (void)f;
    if (type != FTW_NS && type != FTW_DNR && type != FTW_DP) {
        engine_retention_bytes += (int64_t)sb->st_blocks * 512;
    }
    int rc = (type == FTW_DP || type == FTW_DNR) ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT && engine_retention_errno == 0) {
        engine_retention_errno = errno;
    }
    return 0;
}

/* The job's path under work_root, if its entry there is a directory (not
 * followed if a symlink): 1 directory, 0 something else, -1 gone. */
static int engine_retention_entry(int root, const char *id)
{
    struct stat st;
    if (fstatat(root, id, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return -1;
    }
    return S_ISDIR(st.st_mode) ? 1 : 0;
}

/* The name a selected job's directory is moved to before it is removed
 * (engine_retention_move_aside): no job has it. */
static void engine_retention_aside_name(const char *id, char *out, size_t outlen)
{
    snprintf(out, outlen, ".retention-%s", id);
}

static void engine_retention_one(const char *work_root, bool removing, int root, engine_retention_item *it)
{
    char name[ENGINE_JOB_ID_LEN + 16];
    if (removing) {
        engine_retention_aside_name(it->id, name, sizeof name);
    } else {
        snprintf(name, sizeof name, "%s", it->id);
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", work_root, name);
    engine_retention_bytes = 0;
    engine_retention_errno = 0;
    int kind = engine_retention_entry(root, name);
    if (kind == 1) {
        nftw(path, removing ? engine_retention_rm : engine_retention_du, 16,
             FTW_PHYS | FTW_DEPTH | FTW_MOUNT);
    } else if (kind == 0 && removing && unlinkat(root, name, 0) != 0 && errno != ENOENT) {
        engine_retention_errno = errno;
    }
    if (removing && engine_retention_errno == 0 && engine_retention_entry(root, name) >= 0) {
        engine_retention_errno = EBUSY; /* still there (another file system mounted in it?) */
    }
    it->bytes = engine_retention_bytes;
    it->error = engine_retention_errno;
}

static bool engine_retention_id_ok(const char *id)
{
    return strlen(id) == ENGINE_JOB_ID_LEN && strspn(id, "0123456789abcdef") == ENGINE_JOB_ID_LEN;
}

/* A history job from the store: kept unless its directory is not
 * <work_root>/<id> (counted, left alone). Stops (1) once a batch is
 * collected. */
static int engine_retention_collect(void *arg, const engine_store_history *h)
{
    struct engine_retention_pass *p = arg;
    size_t rootlen = strlen(p->work_root);
    if (!engine_retention_id_ok(h->id) || strncmp(h->workdir, p->work_root, rootlen) != 0 ||
        h->workdir[rootlen] != '/' || strcmp(h->workdir + rootlen + 1, h->id) != 0) {
        p->skipped++;
        return 0;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        engine_retention_item *v = realloc(p->items, cap * sizeof *v);
        if (v == NULL) {
            return 1;
        }
        p->items = v;
        p->cap = cap;
    }
    engine_retention_item *it = &p->items[p->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->id, sizeof it->id, "%s", h->id);
    it->seq = h->seq;
    it->ended = h->ended;
    p->full = p->n >= ENGINE_RETENTION_BATCH;
    return p->full ? 1 : 0;
}

/* Select the history jobs of this step with a read connection of the
 * pass's own. */
static void engine_retention_select(struct engine_retention_pass *p)
{
    engine_store *s = NULL;
    int64_t cut = 0;
    p->n = 0;
    p->skipped = 0;
    p->full = false;
    if (engine_store_open_reader(&s, p->store_path, p->error, sizeof p->error) != 0) {
        return;
    }
    if (p->step == ENGINE_RETENTION_SELECT_UNSIZED) {
        engine_store_history_unsized(s, engine_retention_collect, p, p->error, sizeof p->error);
    } else if (engine_store_history_cut(s, p->max_jobs, p->max_bytes, &cut, p->error, sizeof p->error) == 0) {
        engine_store_history_expired(s, p->ended_before, cut, engine_retention_collect, p, p->error,
                                     sizeof p->error);
    }
    engine_store_close(s);
}

static void engine_retention_work(uv_work_t *req)
{
    struct engine_retention_pass *p = req->data;
    p->error[0] = '\0';
    if (p->step == ENGINE_RETENTION_SELECT_UNSIZED || p->step == ENGINE_RETENTION_SELECT_EXPIRED) {
        engine_retention_select(p);
        return;
    }
    bool removing = p->step == ENGINE_RETENTION_REMOVE;
    int root = open(p->work_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; i < p->n; i++) {
        if (root < 0) {
            p->items[i].error = errno;
            continue;
        }
        engine_retention_one(p->work_root, removing, root, &p->items[i]);
    }
    if (root >= 0) {
        close(root);
    }
}

/* ---- on the loop ------------------------------------------------------- */

static void engine_retention_free(struct engine_retention_pass *p)
{
    if (p != NULL) {
        free(p->items);
        free(p->work_root);
        free(p->store_path);
        free(p);
    }
}

/* Leave out the selected jobs that are still in memory (published, their
 * notifications not yet delivered). */
static void engine_retention_drop_live(struct engine_retention_pass *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (engine_index_get(&p->e->index, p->items[i].id) == NULL) {
            p->items[k++] = p->items[i];
        }
    }
    p->n = k;
}

/* On the loop, just before the removal is queued: each selected job's
 * directory is renamed to its aside name, so that the worker removes only
 * what was selected, never the directory of a job made meanwhile under the
 * same id (ocps-engine: DELETE, then a PUT with that Idempotency-Key). A
 * directory already gone is nothing to remove (its aside name, left by a
 * pass that stopped midway, still is); another failure leaves the job
 * for a later pass. */
static void engine_retention_move_aside(struct engine_retention_pass *p)
{
    int root = open(p->work_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; i < p->n; i++) {
        char aside[ENGINE_JOB_ID_LEN + 16];
        engine_retention_aside_name(p->items[i].id, aside, sizeof aside);
        if (root < 0) {
            p->items[i].error = errno;
        } else if (renameat(root, p->items[i].id, root, aside) != 0 && errno != ENOENT) {
            p->items[i].error = errno;
        }
    }
    if (root >= 0) {
        close(root);
    }
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->items[i].error == 0) {
            p->items[k++] = p->items[i];
        } else {
            engine__log(p->e, ENGINE_LOG_WARNING, "retention: cannot move %s/%s aside: %s", p->work_root,
                        p->items[i].id, strerror(p->items[i].error));
        }
    }
    p->n = k;
}

static void engine_retention_after(uv_work_t *req, int status);
static void engine_retention_on_timer(uv_timer_t *t);

/* Hand the pass's next step to the thread pool; false if it could not be
 * queued. */
static bool engine_retention_queue(struct engine_retention_pass *p, engine_retention_step step)
{
    p->step = step;
    p->req.data = p;
    if (uv_queue_work(p->e->loop, &p->req, engine_retention_work, engine_retention_after) != 0) {
        return false;
    }
    p->e->open_handles++;
    return true;
}

/* The pass is over; one that filled a batch is followed by another soon. */
static void engine_retention_done(struct engine_retention_pass *p)
{
    engine *e = p->e;
    if (e->retention_pass == p) {
        e->retention_pass = NULL;
    }
    if (p->again && !e->closed) {
        uint64_t ms = (uint64_t)(e->retention_interval * 1000);
        uv_timer_start(&e->retention_timer, engine_retention_on_timer, ENGINE_RETENTION_AGAIN_MS,
                       ms > 0 ? ms : 1);
    }
    engine_retention_free(p);
}

static void engine_retention_log_skipped(const struct engine_retention_pass *p)
{
    if (p->skipped > 0) {
        engine__log(p->e, ENGINE_LOG_WARNING,
                    "retention: %zu job%s kept: %s directory is not %s/<job id> (another work_root?)",
                    p->skipped, p->skipped == 1 ? "" : "s", p->skipped == 1 ? "its" : "their", p->work_root);
    }
}

static void engine_retention_fmt_time(double t, char *out, size_t outlen)
{
    time_t s = (time_t)t;
    struct tm tm;
    if (gmtime_r(&s, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, outlen, "%.0f", t);
    }
}

/* Step 3: forget the removed jobs and say what went. */
static void engine_retention_removed(struct engine_retention_pass *p)
{
    engine *e = p->e;
    const char **ids = calloc(p->n ? p->n : 1, sizeof *ids);
    int64_t *seqs = calloc(p->n ? p->n : 1, sizeof *seqs);
    size_t n = 0;
    int64_t bytes = 0;
    double first = 0;
    double last = 0;
    for (size_t i = 0; ids != NULL && seqs != NULL && i < p->n; i++) {
        engine_retention_item *it = &p->items[i];
        if (it->error != 0) {
            engine__log(e, ENGINE_LOG_WARNING, "retention: cannot remove %s/%s: %s", e->work_root, it->id,
                        strerror(it->error));
            continue;
        }
        seqs[n] = it->seq;
        ids[n++] = it->id;
        bytes += it->bytes;
        first = (first == 0 || it->ended < first) ? it->ended : first;
        last = it->ended > last ? it->ended : last;
    }
    char err[512];
    if (n > 0 && engine_store_delete(e->store, ids, seqs, n, err, sizeof err) != 0) {
        engine__log(e, ENGINE_LOG_WARNING, "retention: %s", err);
    } else if (n > 0) {
        char a[32];
        char b[32];
        engine_retention_fmt_time(first, a, sizeof a);
        engine_retention_fmt_time(last, b, sizeof b);
        engine__log(e, ENGINE_LOG_INFO, "retention: removed %zu job%s (%.1f MB), ended %s to %s", n,
                    n == 1 ? "" : "s", (double)bytes / 1e6, a, b);
    }
    free(ids);
    free(seqs);
}

/* Step 2 on the loop: record the sizes measured. */
static void engine_retention_measured(struct engine_retention_pass *p)
{
    const char **ids = calloc(p->n ? p->n : 1, sizeof *ids);
    int64_t *bytes = calloc(p->n ? p->n : 1, sizeof *bytes);
    char err[512];
    for (size_t i = 0; ids != NULL && bytes != NULL && i < p->n; i++) {
        ids[i] = p->items[i].id;
        bytes[i] = p->items[i].bytes;
    }
    if (ids != NULL && bytes != NULL &&
        engine_store_set_disk_bytes(p->e->store, ids, bytes, p->n, err, sizeof err) != 0) {
        engine__log(p->e, ENGINE_LOG_WARNING, "retention: %s", err);
    }
    free(ids);
    free(bytes);
}

/* A step has ended on the thread pool: its result on the loop, then the
 * next step. */
static void engine_retention_after(uv_work_t *req, int status)
{
    struct engine_retention_pass *p = req->data;
    engine *e = p->e;
    if (e->closed || status != 0) {
        engine_retention_done(p);
        engine__handle_closed(e);
        return;
    }
    e->open_handles--; /* not the last: the engine is open */
    if (p->error[0] != '\0') {
        engine__log(e, ENGINE_LOG_WARNING, "retention: %s", p->error);
    }
    p->again = p->again || p->full;
    bool queued = false;
    switch (p->step) {
    case ENGINE_RETENTION_SELECT_UNSIZED:
        engine_retention_drop_live(p);
        queued =
            engine_retention_queue(p, p->n > 0 ? ENGINE_RETENTION_MEASURE : ENGINE_RETENTION_SELECT_EXPIRED);
        break;
    case ENGINE_RETENTION_MEASURE:
        engine_retention_measured(p);
        queued = engine_retention_queue(p, ENGINE_RETENTION_SELECT_EXPIRED);
        break;
    case ENGINE_RETENTION_SELECT_EXPIRED:
        engine_retention_log_skipped(p);
        engine_retention_drop_live(p);
        engine_retention_move_aside(p);
        queued = p->n > 0 && engine_retention_queue(p, ENGINE_RETENTION_REMOVE);
        break;
    case ENGINE_RETENTION_REMOVE:
        engine_retention_removed(p);
        break;
    }
    if (!queued) {
        engine_retention_done(p);
    }
}

static void engine_retention_on_timer(uv_timer_t *t)
{
    engine *e = t->data;
    if (e->closed || e->retention_pass != NULL) {
        return;
    }
    struct engine_retention_pass *p = calloc(1, sizeof *p);
    if (p == NULL || (p->work_root = strdup(e->work_root)) == NULL ||
        (p->store_path = strdup(e->store_path)) == NULL) {
        engine_retention_free(p);
        return;
    }
    p->e = e;
    p->max_jobs = e->retention_max_jobs;
    p->max_bytes = e->retention_max_bytes;
    p->ended_before = e->retention_max_age > 0 ? engine__now() - e->retention_max_age : 0;
    e->retention_pass = p;
    /* step 1 (with a size limit): measure what is not yet */
    if (!engine_retention_queue(p, p->max_bytes > 0 ? ENGINE_RETENTION_SELECT_UNSIZED
                                                    : ENGINE_RETENTION_SELECT_EXPIRED)) {
        engine_retention_done(p);
    }
}

void engine__retention_start(engine *e)
{
    if (e->retention_max_age <= 0 && e->retention_max_jobs == 0 && e->retention_max_bytes == 0) {
        return;
    }
    uint64_t ms = (uint64_t)(e->retention_interval * 1000);
    ms = ms > 0 ? ms : 1;
    uint64_t first = ms < ENGINE_RETENTION_FIRST_MS ? ms : ENGINE_RETENTION_FIRST_MS;
    uv_timer_start(&e->retention_timer, engine_retention_on_timer, first, ms);
}
