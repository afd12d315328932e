/*
 * test_uws_restart.c - ocps-engine killed with SIGKILL and started again
 * on the same state: every job survives (ended ones as they were, running
 * ones re-adopted and finished), and a deletion accepted before the kill
 * is carried out after it, even when the run before was killed between
 * moving a deleted job's files aside and forgetting it. A long queue is taken up again in one walk: an
 * engine finding 40,000 queued jobs listens within seconds (it used to
 * number each by walking the queue: about 40 s here). A store removed
 * under a running engine takes no more jobs. A job that failed on a full
 * disk says so.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "bench_history_fill.h"
#include "test_util.h"
#include "uws_fixture.h"

static uws_fx fx;

static int setup(void **state)
{
    (void)state;
    return uws_fx_start(&fx, NULL, NULL);
}

static int teardown(void **state)
{
    (void)state;
    uws_fx_stop(&fx);
    return 0;
}

static const char *phase_of(json_t *job)
{
    return json_string_value(json_object_get(job, "phase"));
}

static int read_pids(const char *tag, int pids[2])
{
    char file[1200];
    snprintf(file, sizeof file, "%s/%s.pids", fx.root, tag);
    double until = tu_now() + 30;
    char *text = NULL;
    while ((text = tu_read_file(file, NULL)) == NULL && tu_now() < until) {
        usleep(50 * 1000);
    }
    int n = text != NULL ? sscanf(text, "%d %d", &pids[0], &pids[1]) : 0;
    free(text);
    return n == 2 ? 0 : -1;
}

static bool gone_within(int pid, double seconds)
{
    double until = tu_now() + seconds;
    while (tu_now() < until) {
        if (kill(pid, 0) != 0) {
            return true;
        }
        usleep(50 * 1000);
    }
    return false;
}

static void test_jobs_survive_sigkill(void **state)
{
    (void)state;
    char done[33];
    char running[33];
    char deleted[33];
    assert_int_equal(
        uws_fx_submit(&fx, "{\"command\": \"echo a > $JOB_OUTPUT_DIR/a\", \"run_id\": \"A\"}", done), 0);
    json_t *job = uws_fx_wait(&fx, done, NULL, 30);
    assert_string_equal(phase_of(job), "completed");
    json_decref(job);
    char body[2048];
    snprintf(body, sizeof body,
             "{\"command\": \"sleep 2 & echo $$ $! > %s/run.pids.tmp; mv %s/run.pids.tmp %s/run.pids; wait; "
             "echo b > $JOB_OUTPUT_DIR/b\", \"run_id\": \"B\"}",
             fx.root, fx.root, fx.root);
    assert_int_equal(uws_fx_submit(&fx, body, running), 0);
    /* a job that ignores SIGTERM, deleted just before the kill */
    snprintf(body, sizeof body,
             "{\"command\": \"trap '' TERM; sleep 300 & echo $$ $! > %s/del.pids.tmp; mv %s/del.pids.tmp "
             "%s/del.pids; wait\"}",
             fx.root, fx.root, fx.root);
    assert_int_equal(uws_fx_submit(&fx, body, deleted), 0);
    int run_pids[2];
    int del_pids[2];
    assert_int_equal(read_pids("run", run_pids), 0);
    assert_int_equal(read_pids("del", del_pids), 0);
    char path[128];
    snprintf(path, sizeof path, "/job/%s", deleted);
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);

    uws_fx_kill(&fx);
    assert_int_equal(kill(run_pids[0], 0), 0); /* the job outlives the service */
    assert_int_equal(uws_fx_restart(&fx, NULL), 0);

    job = uws_fx_wait(&fx, done, NULL, 10);
    assert_non_null(job);
    assert_string_equal(phase_of(job), "completed");
    assert_string_equal(json_string_value(json_object_get(job, "runId")), "A");
    assert_int_equal(json_array_size(json_object_get(job, "results")), 1);
    json_decref(job);
    job = uws_fx_wait(&fx, running, NULL, 30);
    assert_non_null(job);
    assert_string_equal(phase_of(job), "completed");
    assert_string_equal(json_string_value(json_object_get(job, "runId")), "B");
    assert_int_equal(json_array_size(json_object_get(job, "results")), 1);
    json_decref(job);

    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
    assert_true(gone_within(del_pids[0], 15));
    assert_true(gone_within(del_pids[1], 15));
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", fx.work_root, deleted);
    double until = tu_now() + 10;
    while (access(dir, F_OK) == 0 && tu_now() < until) {
        usleep(50 * 1000);
    }
    assert_int_not_equal(access(dir, F_OK), 0);
    assert_int_equal(uws_fx_count(&fx), 2);

    /* a second kill and start: the same two jobs */
    uws_fx_kill(&fx);
    assert_int_equal(uws_fx_restart(&fx, NULL), 0);
    assert_int_equal(uws_fx_count(&fx), 2);
}

/* The store's seq of job `id` (the engine stopped). */
static long long stored_seq(const char *id)
{
    char store[1200];
    snprintf(store, sizeof store, "%s/ocps-engine.sqlite", fx.state_dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(store, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT seq FROM jobs WHERE id = ?1", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return seq;
}

/* GET /job/{id}'s status once it is `want` and `dir` is gone (within
 * 10 s), or the last one. */
static int status_once_removed(const char *id, int want, const char *dir)
{
    char path[64];
    snprintf(path, sizeof path, "/job/%s", id);
    int status = 0;
    for (double until = tu_now() + 10; tu_now() < until; usleep(50 * 1000)) {
        uws_resp r = {0};
        assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
        status = r.status;
        uws_resp_clear(&r);
        if (status == want && access(dir, F_OK) != 0) {
            break;
        }
    }
    return status;
}

/* The state a crash leaves between the two steps of a deletion: the
 * job's directory already moved aside (.gone-<id>.seq<seq>.run<run>, its
 * .uws-deleted mark with it), the job not yet forgotten in the store. The
 * next engine finishes the deletion: the job is gone (404, not listed)
 * and so is the directory, instead of the job coming back without its
 * files. The same with the name versions before the seq made,
 * .gone-<id>.<ns> (still there in a work root upgraded in place); a job
 * made with the same id after such a move stays. */
static void test_deletion_moved_aside_is_finished(void **state)
{
    (void)state;
    char id[33];
    char kept[33];
    char moved[33];
    static const char files[] = "{\"argv\": [\"sh\", \"-c\", \"echo x > \\\"$JOB_OUTPUT_DIR/a.txt\\\"\"]}";
    assert_int_equal(uws_fx_submit(&fx, files, id), 0);
    assert_int_equal(uws_fx_submit(&fx, "{\"argv\": [\"true\"]}", kept), 0);
    assert_int_equal(uws_fx_submit(&fx, files, moved), 0);
    const char *const all[] = {id, kept, moved};
    for (size_t i = 0; i < 3; i++) {
        json_t *job = uws_fx_wait(&fx, all[i], "completed", 20);
        assert_non_null(job);
        json_decref(job);
    }
    int before = uws_fx_count(&fx);
    uws_fx_kill(&fx);
    char moved_dir[1200];
    char moved_gone[1300];
    snprintf(moved_dir, sizeof moved_dir, "%s/%s", fx.work_root, moved);
    snprintf(moved_gone, sizeof moved_gone, "%s/.gone-%s.seq%lld.run0123456789abcdef", fx.work_root, moved,
             stored_seq(moved));
    assert_int_equal(rename(moved_dir, moved_gone), 0);
    char dir[1200];
    char gone[1300];
    snprintf(dir, sizeof dir, "%s/%s", fx.work_root, id);
    struct timespec at; /* an older name: after the job was made, before the next engine */
    clock_gettime(CLOCK_REALTIME, &at);
    snprintf(gone, sizeof gone, "%s/.gone-%s.%lld%09ld", fx.work_root, id, (long long)at.tv_sec, at.tv_nsec);
    assert_int_equal(rename(dir, gone), 0);
    /* and the files of an older job with kept's id (an Idempotency-Key
     * used again), moved aside before kept was made: kept stays */
    char older[1300];
    snprintf(older, sizeof older, "%s/.gone-%s.%lld000000000", fx.work_root, kept,
             (long long)time(NULL) - 3600);
    assert_int_equal(mkdir(older, 0755), 0);

    assert_int_equal(uws_fx_restart(&fx, NULL), 0);
    assert_int_equal(status_once_removed(moved, 404, moved_gone), 404);
    assert_int_not_equal(access(moved_gone, F_OK), 0);
    assert_int_equal(status_once_removed(id, 404, gone), 404);
    assert_int_not_equal(access(gone, F_OK), 0);
    assert_int_equal(status_once_removed(kept, 200, older), 200);
    assert_int_not_equal(access(older, F_OK), 0);
    assert_int_equal(uws_fx_count(&fx), before - 2); /* the other jobs stay */
    char path[64];
    uws_resp r = {0};
    snprintf(path, sizeof path, "/job/%s", kept);
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
}

/* An engine of one test's own, killed after it whatever the outcome. */
static uws_fx extra_fx;

static int kill_extra(void **state)
{
    (void)state;
    return uws_fx_kill_if_running(&extra_fx);
}

enum { QUEUED = 40000 };

static void test_restart_with_a_long_queue(void **state)
{
    (void)state;
    char(*ids)[ENGINE_JOB_ID_LEN + 1] = NULL;
    char *root = bench_fill_engine_dir(QUEUED, true, &ids);
    assert_non_null(root);
    const char *const extra[] = {"--max-concurrent", "1", NULL};
    double t0 = tu_now();
    assert_int_equal(uws_fx_start(&extra_fx, root, extra), 0);
    double listening = tu_now() - t0;
    print_message("%d queued jobs: listening after %.2f s\n", QUEUED, listening);
    assert_true(listening < 15);
    /* the last one is still queued, and known */
    char path[128];
    snprintf(path, sizeof path, "/job/%s", ids[QUEUED - 1]);
    uws_resp r;
    assert_int_equal(uws_fx_request(&extra_fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(phase_of(r.json), "queued");
    uws_resp_clear(&r);
    uws_fx_stop(&extra_fx);
    free(ids);
    free(root);
}

/* Run ocps-engine with these options; its exit status and output. */
static int run_engine(const char *const *opts, char **output)
{
    char *argv[32] = {OCPS_ENGINE};
    size_t n = 1;
    for (; opts[n - 1] != NULL && n < 31; n++) {
        argv[n] = (char *)opts[n - 1];
    }
    argv[n] = NULL;
    return tu_run(argv, output);
}

static const char *job_phase(uws_fx *f, const char *id)
{
    static char phase[32];
    char path[128];
    snprintf(path, sizeof path, "/job/%s", id);
    uws_resp r;
    assert_int_equal(uws_fx_request(f, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    snprintf(phase, sizeof phase, "%s", phase_of(r.json));
    uws_resp_clear(&r);
    return phase;
}

/* One ocps-engine per state directory, and an engine that cannot serve
 * starts no job: a second one on the same state (locked), one with a bad
 * --listen, one whose --work-root is a file or too long all exit with a
 * message, and the first engine's queued job stays queued. */
static void test_one_engine_per_state_dir(void **state)
{
    (void)state;
    const char *const one[] = {"--max-concurrent", "1", NULL};
    assert_int_equal(uws_fx_start(&extra_fx, NULL, one), 0);
    char sleeper[33];
    char queued[33];
    assert_int_equal(uws_fx_submit(&extra_fx, "{\"argv\": [\"sleep\", \"30\"]}", sleeper), 0);
    json_decref(uws_fx_wait(&extra_fx, sleeper, "executing", 10));
    assert_int_equal(uws_fx_submit(&extra_fx, "{\"argv\": [\"true\"]}", queued), 0);
    assert_string_equal(job_phase(&extra_fx, queued), "queued");
    char *out = NULL;
    const char *const bad_listen[] = {"--listen",    "127.0.0.1:80a",    "--state-dir", extra_fx.state_dir,
                                      "--work-root", extra_fx.work_root, NULL};
    assert_int_equal(run_engine(bad_listen, &out), 2);
    assert_non_null(strstr(out, "--listen 127.0.0.1:80a"));
    free(out);
    const char *const second[] = {"--listen",    "127.0.0.1:0",      "--state-dir", extra_fx.state_dir,
                                  "--work-root", extra_fx.work_root, NULL};
    assert_int_equal(run_engine(second, &out), 1);
    char expect[128];
    snprintf(expect, sizeof expect, "another ocps-engine (pid %d) uses --state-dir", extra_fx.pid);
    assert_non_null(strstr(out, expect));
    free(out);
    usleep(300 * 1000);
    assert_string_equal(job_phase(&extra_fx, queued), "queued");
    /* a work root that is a file; one too long (nothing made) */
    char *file = tu_path_join(extra_fx.root, "afile");
    char *other = tu_path_join(extra_fx.root, "other-state");
    assert_int_equal(tu_write_file(file, "x", 1), 0);
    const char *const file_root[] = {"--listen",    "127.0.0.1:0", "--state-dir", other,
                                     "--work-root", file,          NULL};
    assert_int_equal(run_engine(file_root, &out), 1);
    assert_non_null(strstr(out, "is not a directory"));
    free(out);
    char long_root[1200];
    int n = snprintf(long_root, sizeof long_root, "%s/long", extra_fx.root);
    while (n < 1000) {
        n += snprintf(long_root + n, sizeof long_root - (size_t)n, "/%s",
                      "dddddddddddddddddddddddddddddddddddddddd");
    }
    const char *const long_work[] = {"--listen",    "127.0.0.1:0", "--state-dir", other,
                                     "--work-root", long_root,     NULL};
    assert_int_equal(run_engine(long_work, &out), 1);
    assert_non_null(strstr(out, "too long"));
    free(out);
    char *top = tu_path_join(extra_fx.root, "long");
    assert_int_equal(access(top, F_OK), -1);
    free(top);
    free(other);
    free(file);
    /* an engine that cannot listen (the port is taken) starts no queued
     * job: the engine makes a job's directory when it starts it */
    uws_fx_kill(&extra_fx); /* the lock goes with it; the sleeper runs on */
    char taken[32];
    snprintf(taken, sizeof taken, "127.0.0.1:%u", fx.port);
    const char *const no_port[] = {"--listen",         taken,         "--state-dir",
                                   extra_fx.state_dir, "--work-root", extra_fx.work_root,
                                   "--max-concurrent", "4",           NULL};
    assert_int_equal(run_engine(no_port, &out), 1);
    assert_non_null(strstr(out, "cannot listen on"));
    free(out);
    char *queued_dir = tu_path_join(extra_fx.work_root, queued);
    assert_int_equal(access(queued_dir, F_OK), -1);
    free(queued_dir);
    assert_int_equal(uws_fx_restart(&extra_fx, one), 0);
    uws_resp r;
    char path[128];
    snprintf(path, sizeof path, "/job/%s", sleeper);
    assert_int_equal(uws_fx_request(&extra_fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    uws_resp_clear(&r);
    uws_fx_stop(&extra_fx);
}

/* The store's file removed while the engine runs: a PUT is refused (500,
 * saying why; nothing made) rather than answered 200 for a job no store
 * keeps, and /metrics says the store is not ok. */
static void test_a_removed_store_takes_no_job(void **state)
{
    (void)state;
    assert_int_equal(uws_fx_start(&extra_fx, NULL, NULL), 0);
    char first[33];
    assert_int_equal(uws_fx_submit(&extra_fx, "{\"argv\": [\"true\"]}", first), 0);
    json_decref(uws_fx_wait(&extra_fx, first, "completed", 10));
    tu_remove_tree(extra_fx.state_dir);
    uws_resp r;
    const char *body = "{\"argv\": [\"touch\", \"ran\"]}";
    assert_int_equal(
        uws_fx_request(&extra_fx, "PUT", "/job", "application/json", body, strlen(body), NULL, &r), 0);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.body, "removed or replaced"));
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&extra_fx, "GET", "/metrics", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\nocps_engine_store_ok 0\n"));
    uws_resp_clear(&r);
    usleep(300 * 1000);
    /* only the first job's directory: the refused one was never started */
    int dirs = 0;
    DIR *d = opendir(extra_fx.work_root);
    assert_non_null(d);
    for (struct dirent *de = readdir(d); de != NULL; de = readdir(d)) {
        dirs += de->d_name[0] != '.';
    }
    closedir(d);
    assert_int_equal(dirs, 1);
    uws_fx_stop(&extra_fx);
}

/* The engine in a private mount namespace with a 512 KiB tmpfs over its
 * work root (root and unshare needed: else skipped): a job that fails
 * because it filled the disk ends in error saying the file system is full,
 * not only its exit code; one that fails with room left does not. */
static void test_a_full_disk_is_named(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir();
    assert_non_null(dir);
    char *wrap = tu_path_join(dir, "small-disk");
    static const char script[] =
        "#!/bin/sh\n"
        "exec unshare --mount --propagation private sh -c '"
        "w=; p=; for a; do [ \"$p\" = --work-root ] && w=$a; p=$a; done; "
        "mkdir -p \"$w\" && mount -t tmpfs -o size=512k tmpfs \"$w\" || exit 99; exec \"$@\"' sh \"$@\"\n";
    assert_int_equal(tu_write_file(wrap, script, strlen(script)), 0);
    assert_int_equal(chmod(wrap, 0755), 0);
    /* can this machine make a private mount namespace with a tmpfs? */
    char *probe_argv[] = {
        "unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt",
        NULL};
    char *out = NULL;
    int probe = tu_run(probe_argv, &out);
    free(out);
    if (probe != 0) {
        tu_remove_tree(dir);
        free(wrap);
        free(dir);
        print_message("no private mount namespace with a tmpfs here (root and unshare are needed)\n");
        skip();
    }
    const char *before = getenv("OCPS_UWS_WRAP");
    char *saved = before != NULL ? strdup(before) : NULL;
    setenv("OCPS_UWS_WRAP", wrap, 1);
    int rc = uws_fx_start(&extra_fx, NULL, NULL);
    if (saved != NULL) {
        setenv("OCPS_UWS_WRAP", saved, 1);
    } else {
        unsetenv("OCPS_UWS_WRAP");
    }
    free(saved);
    tu_remove_tree(dir);
    free(wrap);
    free(dir);
    assert_int_equal(rc, 0);
    char full[33];
    char roomy[33];
    assert_int_equal(uws_fx_submit(&extra_fx,
                                   "{\"argv\": [\"sh\", \"-c\", \"head -c 2000000 /dev/zero > fill || "
                                   "exit 1; exit 0\"]}",
                                   full),
                     0);
    json_t *job = uws_fx_wait(&extra_fx, full, NULL, 20);
    assert_non_null(job);
    assert_string_equal(phase_of(job), "error");
    const char *msg = json_string_value(json_object_get(json_object_get(job, "errorSummary"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "exited with code 1; the file system of its directory is full ("));
    json_decref(job);
    /* room again (the filler removed): a failure is only its exit code */
    char fill[1200];
    snprintf(fill, sizeof fill, "/job/%s", full);
    uws_resp r;
    assert_int_equal(uws_fx_request(&extra_fx, "DELETE", fill, NULL, NULL, 0, NULL, &r), 0);
    uws_resp_clear(&r);
    /* its directory is removed in the background: seen from the engine's
     * mount namespace */
    char seen[1400];
    snprintf(seen, sizeof seen, "/proc/%d/root%s/%s", extra_fx.pid, extra_fx.work_root, full);
    for (int i = 0; i < 100 && access(seen, F_OK) == 0; i++) {
        usleep(50 * 1000);
    }
    assert_int_equal(access(seen, F_OK), -1);
    assert_int_equal(uws_fx_submit(&extra_fx, "{\"argv\": [\"sh\", \"-c\", \"exit 1\"]}", roomy), 0);
    job = uws_fx_wait(&extra_fx, roomy, NULL, 20);
    assert_non_null(job);
    msg = json_string_value(json_object_get(json_object_get(job, "errorSummary"), "message"));
    assert_string_equal(msg, "exited with code 1");
    json_decref(job);
    uws_fx_stop(&extra_fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_survive_sigkill),
        cmocka_unit_test(test_deletion_moved_aside_is_finished),
        cmocka_unit_test_teardown(test_restart_with_a_long_queue, kill_extra),
        cmocka_unit_test_teardown(test_one_engine_per_state_dir, kill_extra),
        cmocka_unit_test_teardown(test_a_removed_store_takes_no_job, kill_extra),
        cmocka_unit_test_teardown(test_a_full_disk_is_named, kill_extra),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
