/*
 * bench_engine_history: what the job engine costs as its history grows
 * (issue 11: only live jobs in memory, the history in the store).
 *
 * (a) Memory: VmRSS of this process with the engine open and idle, then
 *     after N real jobs (argv {"true"}, several at once) have run and had
 *     their result published, as the application does from the callback.
 * (b) Per-call cost against the history: the store is filled with H ended,
 *     published jobs (through the engine_store API, in a child process so
 *     that filling does not count in this RSS) for H = 10, 1000,
 *     10000, 100000; then engine_open, submitting a job (stored and its
 *     runner started), engine_job_abort and engine_job_get of history jobs
 *     are timed (medians) and RSS measured at the end, each size in a
 *     process of its own. The ratio of the 100000 cost
 *     to the 10 cost is printed (goal: about 1).
 *
 *   bench_engine_history [N [memory]]   (default 2000; "memory": (a) only)
 *
 * Never fails on timing.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>
#include <uv.h>

#include "bench_history_fill.h"
#include "ocps/engine.h"
#include "test_util.h"

#define WINDOW 32   /* jobs submitted and not yet ended, at most */
#define SAMPLES 201 /* timed calls per measure */

static const char *const true_argv[] = {"true", NULL};

typedef struct bench {
    uv_loop_t loop;
    engine *e;
    engine_options opts;
    char work_root[1100];
    char store[1100];
    long ended; /* final notifications seen */
} bench;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* VmRSS of this process in kB. */
static long rss_kb(void)
{
    char *s = tu_read_file("/proc/self/status", NULL);
    const char *p = s != NULL ? strstr(s, "VmRSS:") : NULL;
    long kb = p != NULL ? strtol(p + 6, NULL, 10) : -1;
    free(s);
    return kb;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* The application's part: publish every ended job from the callback. */
static void on_job(void *arg, const engine_job *job)
{
    bench *b = arg;
    if (engine_phase_final(job->phase)) {
        b->ended++;
        engine_job_mark_published(b->e, job->id);
    }
}

static void bench_init(bench *b, const char *dir, int max_concurrent)
{
    memset(b, 0, sizeof *b);
    uv_loop_init(&b->loop);
    snprintf(b->work_root, sizeof b->work_root, "%s/work", dir);
    snprintf(b->store, sizeof b->store, "%s/jobs.sqlite", dir);
    b->opts = (engine_options){.work_root = b->work_root,
                               .store_path = b->store,
                               .runner = OCPS_JOB_RUNNER,
                               .max_concurrent = max_concurrent,
                               .abort_grace = 1,
                               .poll_interval = 0.5};
}

static int bench_open(bench *b)
{
    char err[512];
    if (engine_open(&b->e, &b->loop, &b->opts, on_job, b, err, sizeof err) != 0) {
        fprintf(stderr, "engine_open: %s\n", err);
        return -1;
    }
    return 0;
}

static void bench_close(bench *b)
{
    engine_close(b->e, NULL, NULL);
    b->e = NULL;
    uv_run(&b->loop, UV_RUN_DEFAULT);
}

static int bench_submit(bench *b, char id[ENGINE_JOB_ID_LEN + 1])
{
    char err[512];
    engine_job_spec spec = {.argv = true_argv};
    engine_new_job_id(b->e, id);
    if (engine_job_submit(b->e, id, &spec, err, sizeof err) != 0) {
        fprintf(stderr, "submit: %s\n", err);
        return -1;
    }
    return 0;
}

/* Run the loop until `ended` final notifications have been seen. */
static void bench_wait_ended(bench *b, long ended)
{
    while (b->ended < ended) {
        uv_run(&b->loop, UV_RUN_ONCE);
    }
    uv_run(&b->loop, UV_RUN_NOWAIT);
}

/* (a) RSS idle, then after n jobs. */
static int bench_memory(const char *dir, int n)
{
    bench b;
    bench_init(&b, dir, 8);
    if (bench_open(&b) != 0) {
        return -1;
    }
    uv_run(&b.loop, UV_RUN_NOWAIT);
    long idle = rss_kb();
    double t0 = now();
    long submitted = 0;
    char id[ENGINE_JOB_ID_LEN + 1];
    while (submitted < n) {
        while (submitted < n && submitted - b.ended < WINDOW) {
            if (bench_submit(&b, id) != 0) {
                return -1;
            }
            submitted++;
        }
        uv_run(&b.loop, UV_RUN_ONCE);
    }
    bench_wait_ended(&b, n);
    double secs = now() - t0;
    long after = rss_kb();
    size_t live = 0;
    for (int p = ENGINE_PENDING; p <= ENGINE_UNKNOWN; p++) {
        live += engine_count(b.e, (engine_phase)p);
    }
    printf("(a) memory: %d jobs (argv true, 8 at once) in %.1f s (%.0f jobs/s); jobs left in memory: %zu\n",
           n, secs, n / secs, live);
    printf(
        "    VmRSS idle %.1f MB, after %.1f MB, difference %+.2f MB (goal: within 2 MB); SQLite heap %.2f MB "
        "(its page cache: 1 MiB at most, PRAGMA cache_size)\n",
        idle / 1024.0, after / 1024.0, (after - idle) / 1024.0, sqlite3_memory_used() / 1048576.0);
    bench_close(&b);
    uv_loop_close(&b.loop);
    return 0;
}

/* bench_history_fill in a child process, so that what filling the store
 * allocates does not count in this process's RSS; the ids are drawn in
 * this process (the child's generator is seeded from them). */
static int bench_fill(const char *store_path, const char *work_root, int h,
                      char (*ids)[ENGINE_JOB_ID_LEN + 1])
{
    for (int i = 0; i < h; i++) {
        engine_new_job_id(NULL, ids[i]);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        _exit(bench_history_fill(store_path, work_root, h, ids) == 0 ? 0 : 1);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return -1;
    }
    return 0;
}

typedef struct cost {
    int h;
    double fill_s;
    double open_ms;
    double submit_us;
    double abort_us;
    double get_us;
    double get_live_us;
    long rss_kb;    /* what the engine added: VmRSS at the end less before engine_open */
    long sqlite_kb; /* of which SQLite's heap (mostly its page cache, 2 MB at most by default) */
} cost;

/* (b) one history size. */
static int bench_history(const char *dir, int h, cost *c)
{
    char(*ids)[ENGINE_JOB_ID_LEN + 1] = calloc((size_t)h, sizeof *ids);
    double *v = calloc(SAMPLES, sizeof *v);
    bench b;
    bench_init(&b, dir, 4);
    memset(c, 0, sizeof *c);
    c->h = h;
    double t0 = now();
    if (ids == NULL || v == NULL || bench_fill(b.store, b.work_root, h, ids) != 0) {
        return -1;
    }
    c->fill_s = now() - t0;
    long rss_before = rss_kb(); /* the bench's own ids and buffers are allocated */
    /* engine_open (and close): median of 5 */
    for (int i = 0; i < 5; i++) {
        t0 = now();
        if (bench_open(&b) != 0) {
            return -1;
        }
        v[i] = now() - t0;
        if (i < 4) {
            bench_close(&b);
        }
    }
    c->open_ms = median(v, 5) * 1e3;
    /* submit + schedule (the job is stored and its runner spawned) */
    char live[ENGINE_JOB_ID_LEN + 1];
    int nsub = 21;
    for (int i = 0; i < nsub; i++) {
        t0 = now();
        if (bench_submit(&b, live) != 0) {
            return -1;
        }
        v[i] = now() - t0;
        bench_wait_ended(&b, b.ended + 1);
    }
    c->submit_us = median(v, nsub) * 1e6;
    /* abort of a history job (idempotent: 0) and get of one, at random */
    char err[256];
    unsigned seed = 12345;
    for (int i = 0; i < SAMPLES; i++) {
        const char *id = ids[rand_r(&seed) % h];
        t0 = now();
        engine_job_abort(b.e, id, err, sizeof err);
        v[i] = now() - t0;
    }
    c->abort_us = median(v, SAMPLES) * 1e6;
    for (int i = 0; i < SAMPLES; i++) {
        const char *id = ids[rand_r(&seed) % h];
        t0 = now();
        const engine_job *j = engine_job_get(b.e, id);
        v[i] = now() - t0;
        if (j == NULL || j->phase != ENGINE_COMPLETED) {
            fprintf(stderr, "history job %s not found\n", id);
            return -1;
        }
    }
    c->get_us = median(v, SAMPLES) * 1e6;
    /* get of a live job (a queued one: no slot) */
    engine_set_max_concurrent(b.e, 1);
    char running[ENGINE_JOB_ID_LEN + 1];
    engine_job_spec sleeper = {.argv = (const char *const[]){"sleep", "10", NULL}};
    engine_new_job_id(b.e, running);
    engine_job_submit(b.e, running, &sleeper, err, sizeof err);
    bench_submit(&b, live);
    for (int i = 0; i < SAMPLES; i++) {
        t0 = now();
        engine_job_get(b.e, live);
        v[i] = now() - t0;
    }
    c->get_live_us = median(v, SAMPLES) * 1e6;
    engine_job_abort(b.e, live, err, sizeof err);
    engine_job_abort(b.e, running, err, sizeof err);
    bench_wait_ended(&b, b.ended + 2);
    c->rss_kb = rss_kb() - rss_before;
    c->sqlite_kb = (long)(sqlite3_memory_used() / 1024);
    bench_close(&b);
    uv_loop_close(&b.loop);
    free(ids);
    free(v);
    return 0;
}

/* bench_history in a child process of its own, so that each history
 * size starts from the same RSS. */
static int bench_history_child(const char *dir, int h, cost *c)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        int rc = bench_history(dir, h, c);
        if (rc == 0 && write(fds[1], c, sizeof *c) != (ssize_t)sizeof *c) {
            rc = -1;
        }
        _exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = pid > 0 ? read(fds[0], c, sizeof *c) : -1;
    close(fds[0]);
    int status = 0;
    if (pid > 0) {
        waitpid(pid, &status, 0);
    }
    return got == (ssize_t)sizeof *c && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    static const int sizes[] = {10, 1000, 10000, 100000};
    enum { NSIZES = sizeof sizes / sizeof sizes[0] };
    char *dir = tu_make_temp_dir();
    if (dir == NULL) {
        return 1;
    }
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/mem", dir);
    if (bench_memory(sub, n) != 0) {
        return 1;
    }
    if (argc > 2 && strcmp(argv[2], "memory") == 0) {
        tu_remove_tree(dir);
        free(dir);
        return 0;
    }
    cost c[NSIZES];
    printf("(b) cost against the history (ended, published jobs in the store; medians)\n");
    printf("    %8s %9s %9s %11s %10s %10s %11s %9s %9s\n", "history", "fill s", "open ms", "submit us",
           "abort us", "get us", "get live us", "+RSS MB", "SQLite MB");
    for (int i = 0; i < NSIZES; i++) {
        snprintf(sub, sizeof sub, "%s/h%d", dir, sizes[i]);
        mkdir(sub, 0755);
        if (bench_history_child(sub, sizes[i], &c[i]) != 0) {
            return 1;
        }
        printf("    %8d %9.2f %9.2f %11.1f %10.1f %10.1f %11.2f %9.2f %9.2f\n", c[i].h, c[i].fill_s,
               c[i].open_ms, c[i].submit_us, c[i].abort_us, c[i].get_us, c[i].get_live_us,
               c[i].rss_kb / 1024.0, c[i].sqlite_kb / 1024.0);
        fflush(stdout);
    }
    const cost *lo = &c[0];
    const cost *hi = &c[NSIZES - 1];
    printf("    ratio %d/%d: open %.2f, submit %.2f, abort %.2f, get %.2f, get live %.2f (goal: about 1)\n",
           hi->h, lo->h, hi->open_ms / lo->open_ms, hi->submit_us / lo->submit_us,
           hi->abort_us / lo->abort_us, hi->get_us / lo->get_us, hi->get_live_us / lo->get_live_us);
    printf("    RSS the engine added, %d vs %d: %+.2f MB (SQLite %+.2f MB; goal: within 2 MB)\n", hi->h,
           lo->h, (hi->rss_kb - lo->rss_kb) / 1024.0, (hi->sqlite_kb - lo->sqlite_kb) / 1024.0);
    tu_remove_tree(dir);
    free(dir);
    return 0;
}
