/*
 * test_engine_history: the engine keeps only live jobs in memory (issue
 * 11). An ended job whose result is published leaves memory and is read
 * back from the store (get, abort, prerequisites, restart), and the
 * retention policy removes only ended, published jobs, never anything
 * outside work_root, and says what it removed; it is off by default.
 * Every test has its own work root and store in a fresh temp dir.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "ocps/engine.h"
#include "engine_fixture.h"
#include "test_util.h"

/* With publish_final (as the application does): the job is still
 * readable, and published, during the callback. */
static void still_readable(efx *fx, const engine_job *job)
{
    if (fx->publish_final && engine_phase_final(job->phase)) {
        const engine_job *j = engine_job_get(fx->e, job->id);
        assert_non_null(j);
        assert_true(j->result_published);
    }
}

static int setup(void **state)
{
    efx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    efx_init(fx, "work", OCPS_JOB_RUNNER);
    fx->opts.max_results = 0; /* the engine's default */
    fx->on_job = still_readable;
    efx_open(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    efx *fx = *state;
    efx_free(fx);
    free(fx);
    return 0;
}

/* Wait for the job's final notification; returns its phase. */
static engine_phase fx_wait_final_phase(efx *fx, const char *id, double timeout)
{
    return efx_wait_final(fx, id, timeout)->phase;
}

/* Run a shell script as a job to its end and publish its result. */
static void fx_run_published(efx *fx, char id[ENGINE_JOB_ID_LEN + 1], const char *script)
{
    efx_submit_sh(fx, id, script);
    fx_wait_final_phase(fx, id, 10);
    if (!fx->publish_final) {
        assert_int_equal(engine_job_mark_published(fx->e, id), 0);
    }
}

static size_t fx_live_ended(const efx *fx)
{
    return engine_count(fx->e, ENGINE_COMPLETED) + engine_count(fx->e, ENGINE_ERROR) +
           engine_count(fx->e, ENGINE_ABORTED) + engine_count(fx->e, ENGINE_UNKNOWN);
}

static bool path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static bool job_dir_exists(const efx *fx, const char *id)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fx->work_root, id);
    return path_exists(path);
}

/* Reopen the engine with retention options (a pass every 50 ms). */
static void fx_reopen_retention(efx *fx, double max_age, size_t max_jobs, uint64_t max_bytes)
{
    efx_close(fx);
    fx->opts.retention_max_age = max_age;
    fx->opts.retention_max_jobs = max_jobs;
    fx->opts.retention_max_bytes = max_bytes;
    fx->opts.retention_interval = 0.05;
    efx_open(fx);
}

/* Wait until the job's directory is gone (or timeout); whether it went. */
static bool fx_wait_removed(efx *fx, const char *id, double timeout)
{
    double end = tu_now() + timeout;
    while (job_dir_exists(fx, id) || engine_job_get(fx->e, id) != NULL) {
        if (tu_now() > end) {
            return false;
        }
        efx_spin(fx);
    }
    return true;
}

/* ---- jobs leave memory, the store answers ------------------------------ */

static void test_evicted_get_reads_store(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit(fx, id,
               (engine_job_spec){.argv = (const char *[]){"sh", "-c", "echo x > out.txt; exit 3", NULL},
                                 .output_globs = (const char *[]){"*.txt", NULL}});
    assert_int_equal(fx_wait_final_phase(fx, id, 10), ENGINE_ERROR);
    assert_int_equal(engine_count(fx->e, ENGINE_ERROR), 1);
    assert_int_equal(engine_job_mark_published(fx->e, id), 0);
    assert_int_equal(fx_live_ended(fx), 0); /* evicted */
    const engine_job *j = engine_job_get(fx->e, id);
    assert_non_null(j);
    assert_string_equal(j->id, id);
    assert_int_equal(j->phase, ENGINE_ERROR);
    assert_int_equal(j->reason, ENGINE_REASON_PIPELINE_FAILED);
    assert_int_equal(j->exit_code, 3);
    assert_true(j->result_published);
    assert_int_equal(json_array_size(j->results), 1);
    assert_non_null(strstr(json_string_value(json_array_get(j->results, 0)), "out.txt"));
    assert_true(j->ended >= j->started && j->started > 0);
    /* publishing again is harmless */
    assert_int_equal(engine_job_mark_published(fx->e, id), 0);
}

static void test_published_in_callback_evicted_after_delivery(void **state)
{
    efx *fx = *state;
    fx->publish_final = true;
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(fx, id, "exit 0");
    assert_int_equal(fx_wait_final_phase(fx, id, 10), ENGINE_COMPLETED);
    assert_int_equal(fx_live_ended(fx), 0);
    const engine_job *j = engine_job_get(fx->e, id);
    assert_non_null(j);
    assert_int_equal(j->phase, ENGINE_COMPLETED);
    assert_int_equal(j->exit_code, 0);
}

static void test_abort_evicted_is_noop(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, id, "exit 0");
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, id, err, sizeof err), 0);
    assert_non_null(strstr(err, "had already ended (completed)")); /* read from the store */
    assert_int_equal(engine_job_get(fx->e, id)->phase, ENGINE_COMPLETED);
    char unknown[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, unknown);
    assert_int_equal(engine_job_abort(fx->e, unknown, err, sizeof err), -ENOENT);
}

static void test_prereq_on_evicted_completed_runs(void **state)
{
    efx *fx = *state;
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, a, "exit 0");
    assert_int_equal(fx_live_ended(fx), 0);
    efx_submit(fx, b,
               (engine_job_spec){.argv = (const char *[]){"true", NULL},
                                 .prereqs = (const char *[]){a, NULL},
                                 .prereq_must_succeed = true});
    assert_int_equal(fx_wait_final_phase(fx, b, 10), ENGINE_COMPLETED);
}

static void test_prereq_on_evicted_failed_fails(void **state)
{
    efx *fx = *state;
    char a[ENGINE_JOB_ID_LEN + 1];
    char b[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, a, "exit 1");
    assert_int_equal(fx_live_ended(fx), 0);
    efx_submit(fx, b,
               (engine_job_spec){.argv = (const char *[]){"true", NULL},
                                 .prereqs = (const char *[]){a, NULL},
                                 .prereq_must_succeed = true});
    assert_int_equal(fx_wait_final_phase(fx, b, 10), ENGINE_ERROR);
    const engine_job *j = engine_job_get(fx->e, b);
    assert_int_equal(j->reason, ENGINE_REASON_PREREQUISITE);
    assert_non_null(strstr(j->message, "ended error"));
    assert_false(job_dir_exists(fx, b)); /* never ran */
}

static void test_restart_loads_only_unpublished(void **state)
{
    efx *fx = *state;
    char ids[5][ENGINE_JOB_ID_LEN + 1];
    for (int i = 0; i < 4; i++) {
        fx_run_published(fx, ids[i], "exit 0");
    }
    efx_submit_sh(fx, ids[4], "exit 2");
    fx_wait_final_phase(fx, ids[4], 10);
    efx_close(fx);
    efx_clear_events(fx);
    efx_open(fx);
    efx_run_for(fx, 0.2);
    assert_int_equal(fx->nevents, 1); /* only the unpublished job is reported */
    assert_string_equal(fx->events[0].id, ids[4]);
    assert_int_equal(fx_live_ended(fx), 1);
    assert_int_equal(engine_count(fx->e, ENGINE_ERROR), 1);
    /* the others are history, still answered from the store */
    for (int i = 0; i < 4; i++) {
        const engine_job *j = engine_job_get(fx->e, ids[i]);
        assert_non_null(j);
        assert_int_equal(j->phase, ENGINE_COMPLETED);
    }
}

/* ---- retention --------------------------------------------------------- */

static void test_retention_off_by_default(void **state)
{
    efx *fx = *state;
    char ids[3][ENGINE_JOB_ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        fx_run_published(fx, ids[i], "head -c 100000 /dev/zero > big");
    }
    efx_close(fx);
    fx->opts.retention_interval = 0.05; /* passes would be frequent, but no limit is set */
    efx_open(fx);
    efx_run_for(fx, 0.5);
    for (int i = 0; i < 3; i++) {
        assert_true(job_dir_exists(fx, ids[i]));
        assert_non_null(engine_job_get(fx->e, ids[i]));
    }
    assert_string_equal(fx->log, "");
}

static void test_retention_by_count(void **state)
{
    efx *fx = *state;
    char old1[ENGINE_JOB_ID_LEN + 1];
    char old2[ENGINE_JOB_ID_LEN + 1];
    char kept[ENGINE_JOB_ID_LEN + 1];
    char unpub[ENGINE_JOB_ID_LEN + 1];
    char live[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, old1, "echo 1 > f");
    fx_run_published(fx, old2, "echo 2 > f");
    efx_submit_sh(fx, unpub, "echo 3 > f");
    fx_wait_final_phase(fx, unpub, 10);
    fx_run_published(fx, kept, "echo 4 > f");
    fx_reopen_retention(fx, 0, 1, 0);
    efx_submit_sh(fx, live, "echo 5 > f; sleep 30");
    assert_true(fx_wait_removed(fx, old1, 5));
    assert_true(fx_wait_removed(fx, old2, 5));
    efx_run_for(fx, 0.3);
    assert_true(job_dir_exists(fx, kept)); /* the newest published job is kept */
    assert_true(job_dir_exists(fx, unpub));
    assert_true(job_dir_exists(fx, live));
    assert_non_null(engine_job_get(fx->e, kept));
    assert_non_null(engine_job_get(fx->e, unpub));
    assert_non_null(strstr(fx->log, "retention: removed 2 jobs"));
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, live, err, sizeof err), 0);
    fx_wait_final_phase(fx, live, 10);
}

static void test_retention_by_age(void **state)
{
    efx *fx = *state;
    char old[ENGINE_JOB_ID_LEN + 1];
    char young[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, old, "exit 0");
    efx_run_for(fx, 1.2);
    fx_run_published(fx, young, "exit 0");
    fx_reopen_retention(fx, 1.0, 0, 0);
    assert_true(fx_wait_removed(fx, old, 5));
    assert_true(job_dir_exists(fx, young));
    assert_non_null(engine_job_get(fx->e, young));
    assert_non_null(strstr(fx->log, "retention: removed 1 job ("));
}

static void test_retention_by_size(void **state)
{
    efx *fx = *state;
    char ids[3][ENGINE_JOB_ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        fx_run_published(fx, ids[i], "head -c 200000 /dev/urandom > big");
    }
    char unpub[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(fx, unpub, "head -c 1000000 /dev/urandom > big");
    fx_wait_final_phase(fx, unpub, 10);
    /* three of ~208 kB each (with the runner's files) over a 450 kB limit:
     * the oldest goes; the unpublished 1 MB job is not counted nor touched */
    fx_reopen_retention(fx, 0, 0, 450000);
    assert_true(fx_wait_removed(fx, ids[0], 5));
    efx_run_for(fx, 0.3);
    assert_true(job_dir_exists(fx, ids[1]));
    assert_true(job_dir_exists(fx, ids[2]));
    assert_true(job_dir_exists(fx, unpub));
    assert_non_null(strstr(fx->log, "retention: removed 1 job (0.2 MB)"));
}

static void test_retention_never_follows_symlinks(void **state)
{
    efx *fx = *state;
    char outside[1024];
    char outdir[1024];
    char outfile[1100];
    snprintf(outside, sizeof outside, "%s/outside.txt", fx->dir);
    snprintf(outdir, sizeof outdir, "%s/outdir", fx->dir);
    snprintf(outfile, sizeof outfile, "%s/keep.txt", outdir);
    assert_int_equal(tu_write_file(outside, "precious\n", 9), 0);
    assert_int_equal(mkdir(outdir, 0755), 0);
    assert_int_equal(tu_write_file(outfile, "precious\n", 9), 0);
    char script[4096];
    snprintf(script, sizeof script, "ln -s %s link && ln -s %s linkdir && mkdir sub && ln -s %s sub/up",
             outside, outdir, fx->dir);
    char id[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, id, script);
    char keep[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, keep, "exit 0");
    fx_reopen_retention(fx, 0, 1, 0);
    assert_true(fx_wait_removed(fx, id, 5));
    assert_true(path_exists(outside));
    assert_true(path_exists(outfile));
    assert_true(path_exists(fx->store));
    assert_true(job_dir_exists(fx, keep));
    assert_non_null(strstr(fx->log, "retention: removed 1 job"));
}

static void test_retention_keeps_jobs_of_another_work_root(void **state)
{
    efx *fx = *state;
    char other[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, other, "echo 1 > f");
    char old_dir[1100];
    snprintf(old_dir, sizeof old_dir, "%s/%s", fx->work_root, other);
    /* the next engine's work_root is elsewhere: the stored job's directory
     * is not under it, and is left alone (reported) */
    snprintf(fx->work_root, sizeof fx->work_root, "%s/work2", fx->dir);
    fx_reopen_retention(fx, 0.01, 0, 0);
    char here[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, here, "echo 2 > f");
    efx_run_for(fx, 0.1);
    assert_true(fx_wait_removed(fx, here, 5));
    assert_true(path_exists(old_dir));
    assert_non_null(engine_job_get(fx->e, other));
    assert_non_null(strstr(fx->log, "retention: 1 job kept: its directory is not"));
}

/* ---- engine_job_list and engine_job_forget (ocps-engine, issue 14) ---- */

typedef struct listed {
    char ids[8][ENGINE_JOB_ID_LEN + 1];
    engine_phase phases[8];
    int n;
} listed;

static int on_listed(void *arg, const engine_job *job)
{
    listed *l = arg;
    assert_true(l->n < 8);
    snprintf(l->ids[l->n], sizeof l->ids[0], "%s", job->id);
    l->phases[l->n++] = job->phase;
    return 0;
}

static listed fx_list(efx *fx)
{
    listed l = {.n = 0};
    char err[256];
    assert_int_equal(engine_job_list(fx->e, on_listed, &l, err, sizeof err), 0);
    return l;
}

/* Every job, live or in the history, in creation order, in its phase. */
static void test_list_every_job_in_order(void **state)
{
    efx *fx = *state;
    char published[ENGINE_JOB_ID_LEN + 1];
    char ended[ENGINE_JOB_ID_LEN + 1];
    char running[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, published, "exit 0");
    efx_submit_sh(fx, ended, "exit 3");
    fx_wait_final_phase(fx, ended, 10);
    efx_submit_sh(fx, running, "sleep 30");
    efx_run_for(fx, 0.2);
    listed l = fx_list(fx);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.ids[0], published);
    assert_string_equal(l.ids[1], ended);
    assert_string_equal(l.ids[2], running);
    assert_int_equal(l.phases[0], ENGINE_COMPLETED);
    assert_int_equal(l.phases[1], ENGINE_ERROR);
    assert_int_equal(l.phases[2], ENGINE_EXECUTING);
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, running, err, sizeof err), 0);
    fx_wait_final_phase(fx, running, 10);
}

/* An ended job can be forgotten (published or not): unknown afterwards,
 * also after a restart; a live one cannot. */
static void test_forget(void **state)
{
    efx *fx = *state;
    char published[ENGINE_JOB_ID_LEN + 1];
    char ended[ENGINE_JOB_ID_LEN + 1];
    char running[ENGINE_JOB_ID_LEN + 1];
    char kept[ENGINE_JOB_ID_LEN + 1];
    char err[256];
    fx_run_published(fx, published, "exit 0");
    fx_run_published(fx, kept, "exit 0");
    efx_submit_sh(fx, ended, "exit 0");
    fx_wait_final_phase(fx, ended, 10);
    efx_submit_sh(fx, running, "sleep 30");
    efx_run_for(fx, 0.2);
    assert_int_equal(engine_job_forget(fx->e, running, err, sizeof err), -EBUSY);
    assert_non_null(strstr(err, "not ended"));
    assert_int_equal(engine_job_forget(fx->e, "0123456789abcdef0123456789abcdef", err, sizeof err), -ENOENT);
    assert_int_equal(engine_job_forget(fx->e, published, err, sizeof err), 0);
    assert_int_equal(engine_job_forget(fx->e, ended, err, sizeof err), 0);
    assert_null(engine_job_get(fx->e, published));
    assert_null(engine_job_get(fx->e, ended));
    assert_int_equal(engine_job_forget(fx->e, ended, err, sizeof err), -ENOENT);
    assert_int_equal(engine_job_abort(fx->e, published, err, sizeof err), -ENOENT);
    listed l = fx_list(fx);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ids[0], kept);
    assert_string_equal(l.ids[1], running);
    assert_int_equal(engine_job_abort(fx->e, running, err, sizeof err), 0);
    fx_wait_final_phase(fx, running, 10);
    efx_close(fx);
    efx_open(fx);
    efx_run_for(fx, 0.2);
    assert_null(engine_job_get(fx->e, published));
    assert_null(engine_job_get(fx->e, ended));
    assert_non_null(engine_job_get(fx->e, kept));
    assert_int_equal(fx_list(fx).n, 2);
}

/* engine_job_list_live: memory only, executing first; engine_job_list_history:
 * published jobs, newest first, in pages linked by a cursor. */
static void test_list_live_and_history_pages(void **state)
{
    efx *fx = *state;
    char hist[5][ENGINE_JOB_ID_LEN + 1];
    char queued[ENGINE_JOB_ID_LEN + 1];
    char running[ENGINE_JOB_ID_LEN + 1];
    char err[256];
    for (int i = 0; i < 5; i++) {
        fx_run_published(fx, hist[i], "exit 0");
    }
    engine_set_max_concurrent(fx->e, 1);
    efx_submit_sh(fx, running, "sleep 30");
    efx_submit_sh(fx, queued, "exit 0");
    efx_run_for(fx, 0.2);
    listed l = {.n = 0};
    engine_job_list_live(fx->e, 0, on_listed, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ids[0], running);
    assert_string_equal(l.ids[1], queued);
    assert_int_equal(l.phases[1], ENGINE_QUEUED);
    l.n = 0;
    engine_job_list_live(fx->e, 1, on_listed, &l);
    assert_int_equal(l.n, 1);
    /* pages of two: 4 3 | 2 1 | 0 */
    int64_t cursor = 0;
    int64_t next = -1;
    for (int page = 0; page < 3; page++) {
        l.n = 0;
        assert_int_equal(engine_job_list_history(fx->e, cursor, 2, on_listed, &l, &next, err, sizeof err), 0);
        assert_int_equal(l.n, page < 2 ? 2 : 1);
        for (int k = 0; k < l.n; k++) {
            assert_string_equal(l.ids[k], hist[4 - 2 * page - k]);
            assert_int_equal(l.phases[k], ENGINE_COMPLETED);
        }
        assert_true(page < 2 ? next > 0 : next == 0);
        cursor = next;
    }
    /* exactly one page left: no cursor past it */
    l.n = 0;
    assert_int_equal(engine_job_list_history(fx->e, 0, 5, on_listed, &l, &next, err, sizeof err), 0);
    assert_int_equal(l.n, 5);
    assert_int_equal(next, 0);
    assert_int_equal(engine_job_abort(fx->e, running, err, sizeof err), 0);
    efx_wait_final(fx, running, 10);
}

/* A spec's env may set JOB_OUTPUT_DIR and JOB_ID (defaults: the job's
 * directory and id). */
static void test_env_sets_job_id_and_output_dir(void **state)
{
    efx *fx = *state;
    char own[ENGINE_JOB_ID_LEN + 1];
    char dflt[ENGINE_JOB_ID_LEN + 1];
    efx_submit(
        fx, own,
        (engine_job_spec){
            .argv = (const char *[]){"sh", "-c",
                                     "test \"$JOB_OUTPUT_DIR\" = /x/y && test \"$JOB_ID\" = other", NULL},
            .env = (const char *[]){"JOB_OUTPUT_DIR=/x/y", "JOB_ID=other", NULL}});
    efx_submit_sh(fx, dflt,
                  "test \"$JOB_OUTPUT_DIR\" = \"$PWD\" && test \"$JOB_ID\" = \"$(basename \"$PWD\")\"");
    assert_int_equal(fx_wait_final_phase(fx, own, 10), ENGINE_COMPLETED);
    assert_int_equal(fx_wait_final_phase(fx, dflt, 10), ENGINE_COMPLETED);
}

/* A spec's dirs are made (parents first) when the job starts, not at
 * submission; a dir outside the job's directory is refused. */
static void test_spec_dirs_made_at_start(void **state)
{
    efx *fx = *state;
    char running[ENGINE_JOB_ID_LEN + 1];
    char waiting[ENGINE_JOB_ID_LEN + 1];
    char err[512];
    engine_set_max_concurrent(fx->e, 1);
    efx_submit_sh(fx, running, "sleep 30");
    efx_submit(fx, waiting,
               (engine_job_spec){.argv = (const char *[]){"sh", "-c", "test -d out && test -d a/b/c", NULL},
                                 .dirs = (const char *[]){"out", "a/b/c", NULL}});
    efx_run_for(fx, 0.2);
    const engine_job *job = engine_job_get(fx->e, waiting);
    assert_non_null(job);
    assert_int_equal(job->phase, ENGINE_QUEUED);
    assert_false(path_exists(job->workdir)); /* nothing made while it waits */
    assert_int_equal(engine_job_abort(fx->e, running, err, sizeof err), 0);
    assert_int_equal(fx_wait_final_phase(fx, waiting, 10), ENGINE_COMPLETED);
    static const char *const bad[] = {"/abs", "..", "../x", "a/../../x", "a/..", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char id[ENGINE_JOB_ID_LEN + 1];
        engine_new_job_id(fx->e, id);
        engine_job_spec spec = {.argv = (const char *[]){"true", NULL},
                                .dirs = (const char *[]){bad[i], NULL}};
        assert_int_equal(engine_job_submit(fx->e, id, &spec, err, sizeof err), -EINVAL);
    }
}

/* Group commit: jobs submitted in a batch are stored by its end, then
 * reported and run; a stored id is refused inside a batch without failing
 * the others; they survive a reopen. */
static void test_batch_submit(void **state)
{
    efx *fx = *state;
    char err[512];
    char ids[3][ENGINE_JOB_ID_LEN + 1];
    char old[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, old, "exit 0");
    assert_int_equal(engine_batch_end(fx->e, err, sizeof err), -EINVAL);
    assert_int_equal(engine_batch_begin(fx->e, err, sizeof err), 0);
    assert_int_equal(engine_batch_begin(fx->e, err, sizeof err), -EINVAL);
    engine_job_spec spec = {.argv = (const char *[]){"true", NULL}};
    for (int i = 0; i < 3; i++) {
        engine_new_job_id(fx->e, ids[i]);
        assert_int_equal(engine_job_submit(fx->e, ids[i], &spec, err, sizeof err), 0);
    }
    assert_int_equal(engine_job_submit(fx->e, old, &spec, err, sizeof err), -EEXIST);
    assert_int_equal(engine_batch_end(fx->e, err, sizeof err), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx_wait_final_phase(fx, ids[i], 10), ENGINE_COMPLETED);
    }
    efx_close(fx);
    efx_open(fx);
    efx_run_for(fx, 0.2);
    for (int i = 0; i < 3; i++) {
        const engine_job *j = engine_job_get(fx->e, ids[i]);
        assert_non_null(j);
        assert_int_equal(j->phase, ENGINE_COMPLETED);
    }
}

/* ---- the store's layout -------------------------------------------------- */

/* The layout of stores made before the store gave seq itself: seq
 * AUTOINCREMENT (its sqlite_sequence row), indexes of every job. */
static const char old_layout[] =
    "BEGIN;"
    "CREATE TABLE old ( seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, phase TEXT NOT NULL,"
    " reason TEXT NOT NULL, created REAL NOT NULL, started REAL NOT NULL DEFAULT 0, ended REAL NOT NULL"
    " DEFAULT 0, exit_code INTEGER NOT NULL DEFAULT -1, workdir TEXT NOT NULL, message TEXT NOT NULL DEFAULT"
    " '', spec TEXT NOT NULL, meta TEXT, results TEXT NOT NULL DEFAULT '[]', results_total INTEGER NOT NULL"
    " DEFAULT 0, results_truncated INTEGER NOT NULL DEFAULT 0, runner_pid INTEGER NOT NULL DEFAULT 0,"
    " runner_start_time INTEGER NOT NULL DEFAULT 0, result_published INTEGER NOT NULL DEFAULT 0,"
    " disk_bytes INTEGER NOT NULL DEFAULT -1, executor_id TEXT NOT NULL DEFAULT '', max_rss_kb INTEGER NOT"
    " NULL DEFAULT -1, executor_nodes TEXT NOT NULL DEFAULT '');"
    "INSERT INTO old SELECT seq, id, phase, reason, created, started, ended, exit_code, workdir, message,"
    " spec, meta, results, results_total, results_truncated, runner_pid, runner_start_time,"
    " result_published, disk_bytes, executor_id, max_rss_kb, executor_nodes FROM jobs;"
    "DROP TABLE jobs;"
    "DROP TABLE store_meta;"
    "ALTER TABLE old RENAME TO jobs;"
    "CREATE INDEX jobs_unpublished ON jobs(result_published, seq);"
    "CREATE INDEX jobs_unsized ON jobs(seq) WHERE result_published = 1 AND disk_bytes < 0;"
    "CREATE INDEX jobs_history ON jobs(result_published, ended, disk_bytes, seq);"
    "DELETE FROM sqlite_sequence;"
    "INSERT INTO sqlite_sequence (name, seq) VALUES ('jobs', 40);" /* the newest rows were deleted */
    "COMMIT;";

static int64_t store_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* An insert that fails in a batch so that SQLite rolls the whole
 * transaction back (as SQLITE_FULL or SQLITE_IOERR can; here a trigger's
 * RAISE(ROLLBACK) on the second job): the later jobs of the batch are
 * refused too, instead of each committing on its own outside the batch,
 * the batch's end fails, and none of its jobs is stored or run, before or
 * after a restart. */
static void test_batch_broken_by_a_rolled_back_insert(void **state)
{
    efx *fx = *state;
    char err[512];
    char ids[4][ENGINE_JOB_ID_LEN + 1];
    for (int i = 0; i < 4; i++) {
        engine_new_job_id(fx->e, ids[i]);
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->store, &db), SQLITE_OK);
    char sql[300];
    snprintf(sql, sizeof sql,
             "CREATE TRIGGER fail_one BEFORE INSERT ON jobs WHEN NEW.id = '%s'"
             " BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full (test)'); END",
             ids[1]);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    engine_job_spec spec = {.argv = (const char *[]){"true", NULL}};
    assert_int_equal(engine_batch_begin(fx->e, err, sizeof err), 0);
    assert_int_equal(engine_job_submit(fx->e, ids[0], &spec, err, sizeof err), 0);
    assert_int_equal(engine_job_submit(fx->e, ids[1], &spec, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "disk is full"));
    assert_int_equal(engine_job_submit(fx->e, ids[2], &spec, err, sizeof err), -EIO);
    assert_int_equal(engine_job_submit(fx->e, ids[3], &spec, err, sizeof err), -EIO);
    assert_int_equal(engine_batch_end(fx->e, err, sizeof err), -EIO);
    assert_int_equal(sqlite3_exec(db, "DROP TRIGGER fail_one", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_count(fx->store, "SELECT count(*) FROM jobs"), 0);
    efx_run_for(fx, 0.2);
    efx_close(fx);
    efx_open(fx);
    efx_run_for(fx, 0.5);
    for (int i = 0; i < 4; i++) {
        assert_null(engine_job_get(fx->e, ids[i]));
        assert_int_equal(efx_find(fx, ids[i], ENGINE_EXECUTING), -1);
    }
    /* the store takes a batch again */
    assert_int_equal(engine_batch_begin(fx->e, err, sizeof err), 0);
    assert_int_equal(engine_job_submit(fx->e, ids[2], &spec, err, sizeof err), 0);
    assert_int_equal(engine_batch_end(fx->e, err, sizeof err), 0);
    assert_int_equal(fx_wait_final_phase(fx, ids[2], 10), ENGINE_COMPLETED);
}

/* A job (shell `cmd`) ends completed while the store is held by another
 * connection (BEGIN EXCLUSIVE, past the busy timeout): that connection, to
 * COMMIT and close. */
static sqlite3 *end_with_store_locked(efx *fx, char id[ENGINE_JOB_ID_LEN + 1], const char *cmd)
{
    efx_submit_sh(fx, id, cmd);
    efx_wait_phase(fx, id, ENGINE_EXECUTING, 10);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->store, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(efx_wait_final(fx, id, 20)->phase, ENGINE_COMPLETED);
    return db;
}

/* A store write that fails (here the store is held by another connection
 * past the busy timeout when a job ends) is reported to the application
 * as ENGINE_LOG_STORE_FAILED (a CSC goes to FAULT), not only on stderr;
 * the job's end is still reported, and kept: once the store takes writes
 * again, the engine writes it by itself (every 5 s), so that a restart
 * does not report the job again (or run it). */
static void test_store_write_failure_reported(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    sqlite3 *db = end_with_store_locked(fx, id, "sleep 0.5");
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char want[80];
    snprintf(want, sizeof want, "%d job %s: ", ENGINE_LOG_STORE_FAILED, id);
    assert_non_null(strstr(fx->log, want));
    assert_non_null(strstr(fx->log, "locked"));
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = '%s' AND phase = 'completed'", id);
    assert_int_equal(store_count(fx->store, sql), 0); /* not written yet: it was refused */
    for (int i = 0; i < 80 && store_count(fx->store, sql) == 0; i++) {
        efx_run_for(fx, 0.1);
    }
    assert_int_equal(store_count(fx->store, sql), 1);
    assert_non_null(strstr(fx->log, "the job store recorded 1 job change it could not before"));
}

/* A job whose end the store refused, published and then forgotten (a UWS
 * DELETE) once the store takes writes again, before the engine's own
 * retry: both succeed at once (the end is written first), the job is gone
 * from the store and stays gone, and it is listed meanwhile (neither live
 * nor history would have shown it). */
static int list_count(void *arg, const engine_job *job)
{
    (void)job;
    (*(int *)arg)++;
    return 0;
}

static void test_unrecorded_end_then_forget(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    sqlite3 *db = end_with_store_locked(fx, id, "sleep 0.3");
    assert_int_equal(engine_job_mark_published(fx->e, id), -EIO); /* still refused */
    int live = 0;
    engine_job_list_live(fx->e, 100, list_count, &live);
    assert_int_equal(live, 1); /* published in memory, not in the store: still listed live */
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(engine_job_mark_published(fx->e, id), 0);
    char err[256];
    assert_int_equal(engine_job_forget(fx->e, id, err, sizeof err), 0);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = '%s'", id);
    assert_int_equal(store_count(fx->store, sql), 0);
    efx_run_for(fx, 5.5); /* past the retry */
    assert_int_equal(store_count(fx->store, sql), 0);
}

/* Another connection holds the store's write lock for a while (BEGIN
 * EXCLUSIVE, then COMMIT), on a thread of its own: a thread rather than a
 * forked child, which could inherit a SQLite mutex held by one of the
 * engine's threads at the fork. */
typedef struct store_holder {
    const char *path;
    int ms;
    int fds[2];     /* the holder writes 'y' once it holds the lock, else 'n' */
    int release[2]; /* written by the test to have it let go before ms (release_store) */
    bool ok;        /* it held the lock and committed */
    pthread_t thread;
} store_holder;

static void *store_holder_run(void *arg)
{
    store_holder *h = arg;
    sqlite3 *db = NULL;
    char held = sqlite3_open(h->path, &db) == SQLITE_OK &&
                        sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK
                    ? 'y'
                    : 'n';
    (void)!write(h->fds[1], &held, 1);
    struct pollfd p = {.fd = h->release[0], .events = POLLIN};
    (void)poll(&p, 1, h->ms);
    h->ok = held == 'y' && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    return NULL;
}

/* Start h holding the store for ms milliseconds; returns once it holds it. */
static void hold_store_briefly(const efx *fx, store_holder *h, int ms)
{
    h->path = fx->store;
    h->ms = ms;
    h->ok = false;
    assert_int_equal(pipe(h->fds), 0);
    assert_int_equal(pipe(h->release), 0);
    assert_int_equal(pthread_create(&h->thread, NULL, store_holder_run, h), 0);
    char held = 'n';
    assert_int_equal(read(h->fds[0], &held, 1), 1);
    assert_int_equal(held, 'y');
}

/* Have h let go of the store now, and wait until it has. */
static void release_store(store_holder *h)
{
    assert_int_equal(write(h->release[1], "r", 1), 1);
    assert_int_equal(pthread_join(h->thread, NULL), 0);
    close(h->fds[0]);
    close(h->fds[1]);
    close(h->release[0]);
    close(h->release[1]);
    assert_true(h->ok);
}

/* Wait (running the loop) until the engine has said its start could not
 * be stored; whether it has. */
static bool wait_start_refused(efx *fx)
{
    double until = tu_now() + 20;
    while (strstr(fx->log, "its start could not be stored") == NULL && tu_now() < until) {
        efx_spin(fx);
    }
    return strstr(fx->log, "its start could not be stored") != NULL;
}

/* The store's writer runs on the event loop. A short hold of the store by
 * another process is waited out (the job is taken). A longer one refuses
 * a burst of submissions in one callback (as 8 `execute`s read at once
 * reach the CSC), each with SQLite's reason, but the loop waits for the
 * lock once (0.25 s), not once per job (8 x 0.25 s): the heartbeats keep
 * their cadence. A job's end meanwhile is kept and written once the lock
 * is gone, and the store takes new jobs again. */
static void test_store_held_burst_waits_once(void **state)
{
    efx *fx = *state;
    char err[512];
    engine_job_spec spec = {.argv = (const char *[]){"true", NULL}};
    char brief[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, brief);
    store_holder holder;
    hold_store_briefly(fx, &holder, 100);
    assert_int_equal(engine_job_submit(fx->e, brief, &spec, err, sizeof err), 0);
    release_store(&holder);

    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(fx, id, "sleep 0.5");
    efx_wait_phase(fx, id, ENGINE_EXECUTING, 10);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->store, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    double start = tu_now();
    for (int i = 0; i < 8; i++) {
        char refused[ENGINE_JOB_ID_LEN + 1];
        engine_new_job_id(fx->e, refused);
        assert_int_equal(engine_job_submit(fx->e, refused, &spec, err, sizeof err), -EIO);
        assert_string_equal(err, "job store: insert: database is locked");
        assert_null(engine_job_get(fx->e, refused));
    }
    double blocked = tu_now() - start;
    assert_true(blocked < 0.6);
    assert_int_equal(efx_wait_final(fx, id, 20)->phase, ENGINE_COMPLETED);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    char again[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, again);
    assert_int_equal(engine_job_submit(fx->e, again, &spec, err, sizeof err), 0);
    assert_int_equal(fx_wait_final_phase(fx, again, 10), ENGINE_COMPLETED);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = '%s' AND phase = 'completed'", id);
    for (int i = 0; i < 80 && store_count(fx->store, sql) == 0; i++) {
        efx_run_for(fx, 0.1);
    }
    assert_int_equal(store_count(fx->store, sql), 1);
    assert_int_equal(store_count(fx->store, "SELECT count(*) FROM jobs"), 3); /* brief, id, again */
}

/* How many times `what` is in the engine's log. */
static int log_count(const efx *fx, const char *what)
{
    int n = 0;
    for (const char *p = strstr(fx->log, what); p != NULL; p = strstr(p + 1, what)) {
        n++;
    }
    return n;
}

/* Reopen the engine running one job at a time; submit n jobs: the first
 * `sleep 0.5`, the others `sleep 0.1`. Returns once the first executes. */
static void one_at_a_time_queue(efx *fx, char ids[][ENGINE_JOB_ID_LEN + 1], int n)
{
    efx_close(fx);
    fx->opts.max_concurrent = 1;
    efx_open(fx);
    for (int i = 0; i < n; i++) {
        efx_submit_sh(fx, ids[i], i == 0 ? "sleep 0.5" : "sleep 0.1");
    }
    efx_wait_phase(fx, ids[0], ENGINE_EXECUTING, 10);
}

/* Wait until the store has `want` jobs in `phase` (the engine writes the
 * changes it kept by itself); how many it has. */
static int64_t wait_stored(efx *fx, const char *phase, int64_t want)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE phase = '%s'", phase);
    for (int i = 0; i < 100 && store_count(fx->store, sql) != want; i++) {
        efx_run_for(fx, 0.1);
    }
    return store_count(fx->store, sql);
}

/* Queued jobs wait while another process holds the store's write lock
 * past the engine's busy wait (an operator's sqlite3, a backup) as a
 * slot frees: the start the store refuses neither runs nor fails the job
 * (before, every queued job ended ERROR "its start could not be stored",
 * one after the other). The job keeps its place, one warning says why,
 * and once the lock is gone every job runs to completed, once, in order;
 * the store then has them completed, so a restart runs none again. */
static void test_start_refused_by_held_store_waits(void **state)
{
    efx *fx = *state;
    enum { N = 5 };
    char ids[N][ENGINE_JOB_ID_LEN + 1];
    one_at_a_time_queue(fx, ids, N);
    store_holder holder;
    hold_store_briefly(fx, &holder, 30000); /* the first job ends meanwhile */
    assert_true(wait_start_refused(fx));
    release_store(&holder);
    double prev_started = 0;
    for (int i = 0; i < N; i++) {
        const efx_event *ev = efx_wait_final(fx, ids[i], 20);
        assert_int_equal(ev->phase, ENGINE_COMPLETED);
        assert_true(ev->started >= prev_started);
        prev_started = ev->started;
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(efx_count_final(fx, ids[i]), 1);
        assert_int_equal(efx_find(fx, ids[i], ENGINE_ERROR), -1);
    }
    assert_int_equal(log_count(fx, "its start could not be stored"), 1);
    assert_non_null(strstr(fx->log, "queued jobs start again"));
    assert_int_equal(wait_stored(fx, "completed", N), N);

    efx_close(fx);
    efx_clear_events(fx);
    efx_open(fx);
    efx_run_for(fx, 0.5);
    for (int i = 0; i < N; i++) {
        assert_int_equal(efx_find(fx, ids[i], ENGINE_EXECUTING), -1);
        assert_int_equal(efx_count_final(fx, ids[i]), 1); /* re-reported (not published), as it ended */
        assert_int_equal(fx->events[efx_final(fx, ids[i])].phase, ENGINE_COMPLETED);
    }
}

/* A job whose start the store refused can be aborted while it waits (it
 * ends ABORTED, never started); a hold (a draining service) meanwhile
 * keeps the others queued past the retry; after a restart they run once
 * and the aborted job stays aborted. */
static void test_start_refused_abort_hold_restart(void **state)
{
    efx *fx = *state;
    enum { N = 4 };
    char ids[N][ENGINE_JOB_ID_LEN + 1];
    one_at_a_time_queue(fx, ids, N);
    store_holder holder;
    hold_store_briefly(fx, &holder, 30000);
    efx_wait_final(fx, ids[0], 10);
    assert_true(wait_start_refused(fx));
    assert_int_equal(engine_job_get(fx->e, ids[1])->phase, ENGINE_QUEUED);
    assert_int_equal(engine_job_get(fx->e, ids[1])->queue_position, 1);
    char err[256];
    assert_int_equal(engine_job_abort(fx->e, ids[1], err, sizeof err), 0);
    const efx_event *ev = efx_wait_final(fx, ids[1], 5);
    assert_int_equal(ev->phase, ENGINE_ABORTED);
    assert_true(ev->started == 0);
    engine_hold(fx->e);
    release_store(&holder);
    efx_run_for(fx, 2.0); /* past the retry */
    for (int i = 2; i < N; i++) {
        assert_int_equal(efx_find(fx, ids[i], ENGINE_EXECUTING), -1);
        assert_int_equal(engine_job_get(fx->e, ids[i])->phase, ENGINE_QUEUED);
    }
    assert_int_equal(wait_stored(fx, "aborted", 1), 1);

    efx_close(fx);
    efx_clear_events(fx);
    efx_open(fx);
    for (int i = 2; i < N; i++) {
        assert_int_equal(efx_wait_final(fx, ids[i], 20)->phase, ENGINE_COMPLETED);
    }
    efx_run_for(fx, 0.3);
    assert_int_equal(efx_find(fx, ids[1], ENGINE_EXECUTING), -1);
    assert_int_equal(fx->events[efx_final(fx, ids[1])].phase, ENGINE_ABORTED);
    for (int i = 0; i < N; i++) {
        assert_true(efx_count_final(fx, ids[i]) <= 1);
    }
}

/* The store's file removed while the engine runs (what it writes then is
 * lost at close): reported as ENGINE_LOG_STORE_FAILED at the next change,
 * once, and no new job is taken. */
static void test_store_removed_reported(void **state)
{
    efx *fx = *state;
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(fx, id, "sleep 0.3");
    efx_wait_phase(fx, id, ENGINE_EXECUTING, 10);
    assert_int_equal(unlink(fx->store), 0);
    assert_int_equal(efx_wait_final(fx, id, 10)->phase, ENGINE_COMPLETED);
    char want[80];
    snprintf(want, sizeof want, "%d job %s: the job store's file was removed", ENGINE_LOG_STORE_FAILED, id);
    assert_non_null(strstr(fx->log, want));
    /* no new job: the store would not keep it (neither alone nor in a batch) */
    char second[ENGINE_JOB_ID_LEN + 1];
    engine_new_job_id(fx->e, second);
    const char *const argv[] = {"/bin/true", NULL};
    engine_job_spec spec = {.argv = argv};
    char err[512];
    assert_int_equal(engine_job_submit(fx->e, second, &spec, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "the job store's file was removed or replaced while open: no new job"));
    assert_int_equal(engine_batch_begin(fx->e, err, sizeof err), -EIO);
    assert_null(engine_job_get(fx->e, second));
    const char *end = strchr(strstr(fx->log, want), '\n');
    assert_non_null(end);
    assert_null(strstr(end, "was removed")); /* once */
}

/* Remove the store's file (and its WAL and shared memory), or with
 * `empty` leave it there empty, the engine being closed. */
static void lose_store(const efx *fx, bool empty)
{
    char path[PATH_MAX + 8];
    for (const char *suffix = "-wal"; suffix != NULL; suffix = suffix[1] == 'w' ? "-shm" : NULL) {
        snprintf(path, sizeof path, "%s%s", fx->store, suffix);
        unlink(path);
    }
    assert_int_equal(empty ? truncate(fx->store, 0) : unlink(fx->store), 0);
}

/* A store made anew beside job directories (its file removed or emptied
 * while the engine was stopped: the jobs of the store that was there are
 * neither reported nor resumed) is said at open; a store that was there,
 * or a new one beside no job, says nothing. */
static void test_new_store_beside_jobs_warns(void **state)
{
    efx *fx = *state;
    static const char warning[] = "was missing or empty and has been made anew";
    assert_int_equal(log_count(fx, warning), 0); /* no job yet */
    char id[ENGINE_JOB_ID_LEN + 1];
    efx_submit_sh(fx, id, "true");
    assert_int_equal(efx_wait_final(fx, id, 10)->phase, ENGINE_COMPLETED);
    efx_close(fx);
    efx_open(fx);
    assert_int_equal(log_count(fx, warning), 0); /* the store was there */
    efx_close(fx);
    lose_store(fx, false);
    efx_open(fx);
    assert_int_equal(log_count(fx, warning), 1);
    assert_non_null(strstr(fx->log, "holds 1 job directory: the jobs of the store that was there"));
    efx_close(fx);
    lose_store(fx, true);
    efx_open(fx);
    assert_int_equal(log_count(fx, warning), 2);
}

/* The cursor of the history's first page of one job: the newest
 * published job's seq (with at least two of them). */
static int64_t newest_seq(efx *fx)
{
    listed l = {.n = 0};
    int64_t next = 0;
    char err[256];
    assert_int_equal(engine_job_list_history(fx->e, 0, 1, on_listed, &l, &next, err, sizeof err), 0);
    assert_true(next > 0);
    return next;
}

/* A store of the earlier layout opens: converted in place, every job kept
 * (history, its order and pages, the job not published yet reported
 * again), and no seq it gave (40, its newest rows deleted) given again,
 * also after the newest job is deleted and the engine restarted. */
static void test_store_of_earlier_layout_converted(void **state)
{
    efx *fx = *state;
    char ids[3][ENGINE_JOB_ID_LEN + 1];
    char unpublished[ENGINE_JOB_ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        fx_run_published(fx, ids[i], "exit 0");
    }
    efx_submit_sh(fx, unpublished, "exit 2");
    fx_wait_final_phase(fx, unpublished, 10);
    efx_close(fx);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->store, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, old_layout, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(
        store_count(fx->store, "SELECT COUNT(*) FROM sqlite_master WHERE sql LIKE '%AUTOINCREMENT%'"), 1);

    efx_clear_events(fx);
    efx_open(fx);
    efx_run_for(fx, 0.2);
    assert_int_equal(
        store_count(fx->store, "SELECT COUNT(*) FROM sqlite_master WHERE sql LIKE '%AUTOINCREMENT%'"), 0);
    assert_int_equal(store_count(fx->store, "SELECT COUNT(*) FROM sqlite_master WHERE name IN"
                                            " ('jobs_unpublished', 'jobs_history')"),
                     0);
    assert_int_equal(fx->nevents, 1); /* the job not published, as after any restart */
    assert_string_equal(fx->events[0].id, unpublished);
    listed l = fx_list(fx);
    assert_int_equal(l.n, 4);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(l.ids[i], ids[i]);
        assert_int_equal(l.phases[i], ENGINE_COMPLETED);
        assert_non_null(engine_job_get(fx->e, ids[i]));
    }
    assert_int_equal(newest_seq(fx), 3);

    char fresh[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, fresh, "exit 0");
    int64_t seq = newest_seq(fx);
    assert_true(seq > 40);
    /* the newest job deleted, the engine restarted: its seq stays taken */
    char err[256];
    assert_int_equal(engine_job_forget(fx->e, fresh, err, sizeof err), 0);
    efx_close(fx);
    efx_open(fx);
    char next[ENGINE_JOB_ID_LEN + 1];
    fx_run_published(fx, next, "exit 0");
    assert_true(newest_seq(fx) > seq);
    assert_int_equal(fx_list(fx).n, 5);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_evicted_get_reads_store),
        T(test_published_in_callback_evicted_after_delivery),
        T(test_abort_evicted_is_noop),
        T(test_prereq_on_evicted_completed_runs),
        T(test_prereq_on_evicted_failed_fails),
        T(test_restart_loads_only_unpublished),
        T(test_retention_off_by_default),
        T(test_retention_by_count),
        T(test_retention_by_age),
        T(test_retention_by_size),
        T(test_retention_never_follows_symlinks),
        T(test_retention_keeps_jobs_of_another_work_root),
        T(test_list_every_job_in_order),
        T(test_forget),
        T(test_store_of_earlier_layout_converted),
        T(test_list_live_and_history_pages),
        T(test_spec_dirs_made_at_start),
        T(test_batch_submit),
        T(test_batch_broken_by_a_rolled_back_insert),
        T(test_env_sets_job_id_and_output_dir),
        T(test_store_write_failure_reported),
        T(test_unrecorded_end_then_forget),
        T(test_store_held_burst_waits_once),
        T(test_start_refused_by_held_store_waits),
        T(test_start_refused_abort_hold_restart),
        T(test_store_removed_reported),
        T(test_new_store_beside_jobs_warns),
    };
    return cmocka_run_group_tests_name("engine_history", tests, NULL, NULL);
}
