/*
 * engine_retention.c - the retention policy of the engine's history (see
 * engine_options): a periodic pass on the loop picks ended, published jobs
 * from the store, oldest first; their work directories are measured and
 * removed on the libuv thread pool, so the loop never waits on a large
 * tree; their rows are then deleted and what was removed is logged.
 *
 * A pass: measure the history jobs whose disk use is not known yet (only
 * with a size limit), then remove the jobs past a limit. At most
 * ENGINE_RETENTION_BATCH jobs are handled per step; the next pass goes on.
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

#define ENGINE_RETENTION_BATCH 1000
/* The first pass, soon after open (or a new policy), so that a CSC
 * restarted more often than the interval still applies it. */
#define ENGINE_RETENTION_FIRST_MS 5000

typedef struct engine_retention_item {
    char id[ENGINE_JOB_ID_LEN + 1];
    double ended;
    int64_t bytes; /* measured, or freed */
    int error;     /* errno of the first failure, 0 done */
} engine_retention_item;

struct engine_retention_pass {
    uv_work_t req;
    engine *e;
    char *work_root; /* the worker's own copy */
    bool removing;   /* false: measuring */
    engine_retention_item *items;
    size_t n;
    size_t cap;
    size_t skipped; /* history jobs whose directory is not <work_root>/<id> */
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

static void engine_retention_one(const struct engine_retention_pass *p, int root, engine_retention_item *it)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", p->work_root, it->id);
    engine_retention_bytes = 0;
    engine_retention_errno = 0;
    int kind = engine_retention_entry(root, it->id);
    if (kind == 1) {
        nftw(path, p->removing ? engine_retention_rm : engine_retention_du, 16,
             FTW_PHYS | FTW_DEPTH | FTW_MOUNT);
    } else if (kind == 0 && p->removing && unlinkat(root, it->id, 0) != 0 && errno != ENOENT) {
        engine_retention_errno = errno;
    }
    if (p->removing && engine_retention_errno == 0 && engine_retention_entry(root, it->id) >= 0) {
        engine_retention_errno = EBUSY; /* still there (another file system mounted in it?) */
    }
    it->bytes = engine_retention_bytes;
    it->error = engine_retention_errno;
}

static void engine_retention_work(uv_work_t *req)
{
    struct engine_retention_pass *p = req->data;
    int root = open(p->work_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; i < p->n; i++) {
        if (root < 0) {
            p->items[i].error = errno;
            continue;
        }
        engine_retention_one(p, root, &p->items[i]);
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
        free(p);
    }
}

static bool engine_retention_id_ok(const char *id)
{
    return strlen(id) == ENGINE_JOB_ID_LEN && strspn(id, "0123456789abcdef") == ENGINE_JOB_ID_LEN;
}

/* A history job from the store: kept for the worker unless it is still in
 * memory or its directory is not <work_root>/<id> (counted, left alone).
 * Stops (1) once a batch is collected. */
static int engine_retention_collect(void *arg, const engine_store_history *h)
{
    struct engine_retention_pass *p = arg;
    engine *e = p->e;
    size_t rootlen = strlen(e->work_root);
    if (engine_index_get(&e->index, h->id) != NULL) {
        return 0;
    }
    if (!engine_retention_id_ok(h->id) || strncmp(h->workdir, e->work_root, rootlen) != 0 ||
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
    it->ended = h->ended;
    return p->n >= ENGINE_RETENTION_BATCH ? 1 : 0;
}

static void engine_retention_after(uv_work_t *req, int status);

/* Hand the collected jobs to the thread pool; false if there are none. */
static bool engine_retention_queue(struct engine_retention_pass *p)
{
    if (p->n == 0) {
        return false;
    }
    p->req.data = p;
    if (uv_queue_work(p->e->loop, &p->req, engine_retention_work, engine_retention_after) != 0) {
        return false;
    }
    p->e->open_handles++;
    return true;
}

static void engine_retention_done(struct engine_retention_pass *p)
{
    if (p->e->retention_pass == p) {
        p->e->retention_pass = NULL;
    }
    engine_retention_free(p);
}

/* Step 2: the jobs past a limit, removed on the thread pool. */
static void engine_retention_remove(struct engine_retention_pass *p)
{
    engine *e = p->e;
    char err[512];
    int64_t cut = 0;
    double before = e->retention_max_age > 0 ? engine__now() - e->retention_max_age : 0;
    p->n = 0;
    p->skipped = 0;
    p->removing = true;
    if (engine_store_history_cut(e->store, e->retention_max_jobs, e->retention_max_bytes, &cut, err,
                                 sizeof err) != 0 ||
        engine_store_history_expired(e->store, before, cut, engine_retention_collect, p, err, sizeof err) !=
            0) {
        engine__log(e, ENGINE_LOG_WARNING, "retention: %s", err);
        p->n = 0;
    }
    if (p->skipped > 0) {
        engine__log(e, ENGINE_LOG_WARNING,
                    "retention: %zu job%s kept: %s directory is not %s/<job id> (another work_root?)",
                    p->skipped, p->skipped == 1 ? "" : "s", p->skipped == 1 ? "its" : "their", e->work_root);
    }
    if (!engine_retention_queue(p)) {
        engine_retention_done(p);
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
    size_t n = 0;
    int64_t bytes = 0;
    double first = 0;
    double last = 0;
    for (size_t i = 0; ids != NULL && i < p->n; i++) {
        engine_retention_item *it = &p->items[i];
        if (it->error != 0) {
            engine__log(e, ENGINE_LOG_WARNING, "retention: cannot remove %s/%s: %s", e->work_root, it->id,
                        strerror(it->error));
            continue;
        }
        ids[n++] = it->id;
        bytes += it->bytes;
        first = (first == 0 || it->ended < first) ? it->ended : first;
        last = it->ended > last ? it->ended : last;
    }
    char err[512];
    if (n > 0 && engine_store_delete(e->store, ids, n, err, sizeof err) != 0) {
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
}

static void engine_retention_after(uv_work_t *req, int status)
{
    struct engine_retention_pass *p = req->data;
    engine *e = p->e;
    char err[512];
    if (e->closed || status != 0) {
        engine_retention_done(p);
        engine__handle_closed(e);
        return;
    }
    e->open_handles--; /* not the last: the engine is open */
    if (p->removing) {
        engine_retention_removed(p);
        engine_retention_done(p);
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (engine_store_set_disk_bytes(e->store, p->items[i].id, p->items[i].bytes, err, sizeof err) != 0) {
            engine__log(e, ENGINE_LOG_WARNING, "retention: %s", err);
            break;
        }
    }
    engine_retention_remove(p);
}

static void engine_retention_on_timer(uv_timer_t *t)
{
    engine *e = t->data;
    char err[512];
    if (e->closed || e->retention_pass != NULL) {
        return;
    }
    struct engine_retention_pass *p = calloc(1, sizeof *p);
    if (p == NULL || (p->work_root = strdup(e->work_root)) == NULL) {
        engine_retention_free(p);
        return;
    }
    p->e = e;
    e->retention_pass = p;
    if (e->retention_max_bytes > 0) { /* step 1: measure what is not yet */
        if (engine_store_history_unsized(e->store, engine_retention_collect, p, err, sizeof err) != 0) {
            engine__log(e, ENGINE_LOG_WARNING, "retention: %s", err);
            p->n = 0;
        }
        if (engine_retention_queue(p)) {
            return;
        }
    }
    engine_retention_remove(p);
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
