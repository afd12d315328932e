/*
 * bench_engine_pending: what waiting jobs cost the jobs that run.
 *
 * P jobs wait (PENDING) for one prerequisite that sleeps; meanwhile N
 * trivial jobs (argv {"true"}, WINDOW at once) are submitted and run to
 * their end. Every submission and every end schedules the engine, so a
 * scheduler that looks at every waiting job makes each of the N jobs cost
 * in proportion to P. Printed for P = 0, 1000, 10000, 30000: the N jobs'
 * wall time per job and its ratio to P = 0 (goal: about 1), each P in a
 * process of its own.
 *
 *   bench_engine_pending [N]   (default 300)
 *
 * Never fails on timing.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "ocps/engine.h"
#include "test_util.h"

#define WINDOW 4

typedef struct bench {
    uv_loop_t loop;
    engine *e;
    long ended; /* final notifications seen */
} bench;

static void on_job(void *arg, const engine_job *job)
{
    bench *b = arg;
    if (engine_phase_final(job->phase)) {
        b->ended++;
        engine_job_mark_published(b->e, job->id);
    }
}

static int submit(bench *b, const char *const *argv, const char *const *prereqs, char *id)
{
    char err[512];
    engine_job_spec spec = {.argv = argv, .prereqs = prereqs, .prereq_must_succeed = true};
    engine_new_job_id(b->e, id);
    if (engine_job_submit(b->e, id, &spec, err, sizeof err) != 0) {
        fprintf(stderr, "submit: %s\n", err);
        return -1;
    }
    return 0;
}

static void wait_ended(bench *b, long ended)
{
    while (b->ended < ended) {
        uv_run(&b->loop, UV_RUN_ONCE);
    }
}

/* b's loop and an engine on it with its store and work root in dir
 * (WINDOW + 1 slots): 0, or -1 with a message. */
static int bench_open(bench *b, const char *dir)
{
    char work_root[1100];
    char store[1100];
    char err[512];
    snprintf(work_root, sizeof work_root, "%s/work", dir);
    snprintf(store, sizeof store, "%s/jobs.sqlite", dir);
    engine_options opts = {.work_root = work_root,
                           .store_path = store,
                           .runner = OCPS_JOB_RUNNER,
                           .max_concurrent = WINDOW + 1,
                           .abort_grace = 1,
                           .poll_interval = 0.5};
    uv_loop_init(&b->loop);
    if (engine_open(&b->e, &b->loop, &opts, on_job, b, err, sizeof err) != 0) {
        fprintf(stderr, "engine_open: %s\n", err);
        return -1;
    }
    return 0;
}

/* The N jobs' wall time per job (seconds) with p jobs waiting, or < 0. */
static double run(const char *dir, int p, int n)
{
    static const char *const sleep_argv[] = {"sleep", "600", NULL};
    static const char *const true_argv[] = {"true", NULL};
    char err[512];
    bench b = {0};
    if (bench_open(&b, dir) != 0) {
        return -1;
    }
    char first[ENGINE_JOB_ID_LEN + 1];
    char id[ENGINE_JOB_ID_LEN + 1];
    const char *prereqs[] = {first, NULL};
    if (submit(&b, sleep_argv, NULL, first) != 0) {
        return -1;
    }
    for (int i = 0; i < p; i++) {
        if (submit(&b, true_argv, prereqs, id) != 0) {
            return -1;
        }
    }
    uv_run(&b.loop, UV_RUN_NOWAIT);
    double t0 = tu_now();
    long submitted = 0;
    while (submitted < n) {
        while (submitted < n && submitted - b.ended < WINDOW) {
            if (submit(&b, true_argv, NULL, id) != 0) {
                return -1;
            }
            submitted++;
        }
        uv_run(&b.loop, UV_RUN_ONCE);
    }
    wait_ended(&b, n);
    double per_job = (tu_now() - t0) / n;
    /* the sleeper aborted: every waiting job fails its prerequisite */
    engine_job_abort(b.e, first, err, sizeof err);
    wait_ended(&b, n + 1 + p);
    engine_close(b.e, NULL, NULL);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);
    return per_job;
}

/* K trivial jobs and, if `waiter`, a job waiting for all of them: the K
 * jobs' wall time per job (seconds), or < 0. */
static double run_waiter(const char *dir, int k, bool waiter)
{
    static const char *const true_argv[] = {"true", NULL};
    bench b = {0};
    if (bench_open(&b, dir) != 0) {
        return -1;
    }
    char(*ids)[ENGINE_JOB_ID_LEN + 1] = calloc((size_t)k, sizeof *ids);
    const char **prereqs = calloc((size_t)k + 1, sizeof *prereqs);
    if (ids == NULL || prereqs == NULL) {
        return -1;
    }
    double t0 = tu_now();
    for (int i = 0; i < k; i++) {
        if (submit(&b, true_argv, NULL, ids[i]) != 0) {
            return -1;
        }
        prereqs[i] = ids[i];
    }
    char last[ENGINE_JOB_ID_LEN + 1];
    if (waiter && submit(&b, true_argv, prereqs, last) != 0) {
        return -1;
    }
    wait_ended(&b, k + (waiter ? 1 : 0));
    double per_job = (tu_now() - t0) / k;
    engine_close(b.e, NULL, NULL);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    uv_loop_close(&b.loop);
    free(prereqs);
    free(ids);
    return per_job;
}

/* run() (p >= 0) or run_waiter(-p, with a waiter if n) in a child
 * process; its result through a pipe. */
static double run_child(const char *dir, int p, int n)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        double v = p >= 0 ? run(dir, p, n) : run_waiter(dir, -p, n != 0);
        ssize_t w = write(fds[1], &v, sizeof v);
        _exit(w == (ssize_t)sizeof v ? 0 : 1);
    }
    close(fds[1]);
    double v = -1;
    if (pid < 0 || read(fds[0], &v, sizeof v) != (ssize_t)sizeof v) {
        v = -1;
    }
    close(fds[0]);
    if (pid > 0) {
        waitpid(pid, NULL, 0);
    }
    return v;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 300;
    static const int sizes[] = {0, 1000, 10000, 30000};
    enum { NSIZES = sizeof sizes / sizeof sizes[0] };
    char *dir = tu_make_temp_dir();
    if (dir == NULL || n < 1) {
        return 1;
    }
    double base = 0;
    printf("%d trivial jobs (%d at once) while P jobs wait for a sleeping one\n", n, WINDOW);
    printf("    %8s %12s %14s\n", "P", "ms per job", "ratio to P=0");
    for (int i = 0; i < NSIZES; i++) {
        char sub[1024];
        snprintf(sub, sizeof sub, "%s/p%d", dir, sizes[i]);
        mkdir(sub, 0755);
        double v = run_child(sub, sizes[i], n);
        if (v <= 0) {
            return 1;
        }
        if (i == 0) {
            base = v;
        }
        printf("    %8d %12.3f %14.2f\n", sizes[i], v * 1e3, v / base);
        fflush(stdout);
    }
    static const int waits[] = {500, 2000, 4000};
    printf("K jobs (%d at once) and one job waiting for all of them\n", WINDOW + 1);
    printf("    %8s %12s %14s\n", "K", "ms per job", "ratio to none");
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        double v[2];
        for (int with = 0; with < 2; with++) {
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/k%d-%d", dir, waits[i], with);
            mkdir(sub, 0755);
            if ((v[with] = run_child(sub, -waits[i], with)) <= 0) {
                return 1;
            }
        }
        printf("    %8d %12.3f %14.2f\n", waits[i], v[1] * 1e3, v[1] / v[0]);
        fflush(stdout);
    }
    tu_remove_tree(dir);
    free(dir);
    return 0;
}
