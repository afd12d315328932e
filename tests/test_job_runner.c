/*
 * test_job_runner: ocps-job-runner's output capture stays inside the job's
 * directory. The runner is run directly (no CSC or engine check in front)
 * with a corpus of patterns that try to reach out - "..", "../x",
 * absolute paths, ".*" and escaped dots that match "..", symlinks to files
 * and directories outside - in a job directory that also holds ordinary
 * outputs and symlinks that stay inside. Every listed result must resolve
 * inside the job directory, nothing outside may be counted, and the
 * ordinary outputs must still be listed.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "test_util.h"

typedef struct fixture {
    char *dir;             /* temp root: outside.fits, jobs/ */
    char *jobs;            /* <dir>/jobs: A (this job) and B (another job) */
    char *workdir;         /* <dir>/jobs/A */
    char *real_dir;        /* realpath of workdir */
    char status[PATH_MAX]; /* <dir>/status.json: the runner's --status */
    char log[PATH_MAX];    /* <dir>/runner.log: its --log */
    char claim[PATH_MAX];  /* <workdir>/runner.claim */
    const char *log_max;   /* --log-max for run_runner_job, or NULL */
    const char *grace;     /* --grace for run_runner_job (default 1) */
} fixture;

static void path_printf(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, len, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < len);
}

static void make_file(const fixture *fx, const char *rel)
{
    char p[PATH_MAX];
    path_printf(p, sizeof p, "%s/%s", fx->dir, rel);
    assert_int_equal(tu_write_file(p, "x\n", 2), 0);
}

static void make_dir(const fixture *fx, const char *rel)
{
    char p[PATH_MAX];
    path_printf(p, sizeof p, "%s/%s", fx->dir, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void make_link(const fixture *fx, const char *target, const char *rel)
{
    char p[PATH_MAX];
    path_printf(p, sizeof p, "%s/%s", fx->dir, rel);
    assert_int_equal(symlink(target, p), 0);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->dir = tu_make_temp_dir();
    assert_non_null(fx->dir);
    fx->jobs = tu_path_join(fx->dir, "jobs");
    fx->workdir = tu_path_join(fx->jobs, "A");
    make_dir(fx, "jobs");
    make_dir(fx, "jobs/A");
    make_dir(fx, "jobs/A/sub");
    make_dir(fx, "jobs/B");
    make_file(fx, "outside.fits");
    make_file(fx, "jobs/B/secret.fits");
    make_file(fx, "jobs/A/a.fits");
    make_file(fx, "jobs/A/.hidden.fits");
    make_file(fx, "jobs/A/sub/b.fits");
    /* symlinks that stay inside: listed */
    make_link(fx, "a.fits", "jobs/A/link_in.fits");
    make_link(fx, "sub", "jobs/A/dir_in");
    /* symlinks that point out: never listed */
    make_link(fx, "/etc/passwd", "jobs/A/link_out.fits");
    make_link(fx, "../../outside.fits", "jobs/A/link_rel_out.fits");
    make_link(fx, "/etc", "jobs/A/dir_out");
    make_link(fx, "../B", "jobs/A/dir_sib");
    make_link(fx, "..", "jobs/A/up");
    make_link(fx, "/nonexistent/ocps/x.fits", "jobs/A/dangling.fits");
    path_printf(fx->status, sizeof fx->status, "%s/status.json", fx->dir);
    path_printf(fx->log, sizeof fx->log, "%s/runner.log", fx->dir);
    path_printf(fx->claim, sizeof fx->claim, "%s/runner.claim", fx->workdir);
    fx->real_dir = realpath(fx->workdir, NULL);
    assert_non_null(fx->real_dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tu_remove_tree(fx->dir);
    free(fx->dir);
    free(fx->jobs);
    free(fx->workdir);
    free(fx->real_dir);
    free(fx);
    return 0;
}

/* The runner's command line up to its options of choice: the fixture's
 * directory, status file and log, --timeout and --grace; returns how many
 * entries of argv it filled (11). */
static size_t runner_head(const fixture *fx, const char **argv, const char *timeout, const char *grace)
{
    const char *head[] = {OCPS_JOB_RUNNER, "--workdir", fx->workdir, "--status", fx->status, "--log",
                          fx->log,         "--timeout", timeout,     "--grace",  grace};
    memcpy(argv, head, sizeof head);
    return sizeof head / sizeof head[0];
}

/* Run the runner on `job` (NULL-terminated argv) with these globs; returns
 * status.json parsed. */
static json_t *run_runner_job(const fixture *fx, const char *const *globs, const char *const *job)
{
    const char *argv[128];
    size_t n = runner_head(fx, argv, "10", fx->grace != NULL ? fx->grace : "1");
    if (fx->log_max != NULL) {
        argv[n++] = "--log-max";
        argv[n++] = fx->log_max;
    }
    for (size_t i = 0; globs[i] != NULL; i++) {
        assert_true(n + 5 < sizeof argv / sizeof argv[0]);
        argv[n++] = "--glob";
        argv[n++] = globs[i];
    }
    argv[n++] = "--";
    for (size_t i = 0; job[i] != NULL; i++) {
        assert_true(n + 2 < sizeof argv / sizeof argv[0]);
        argv[n++] = job[i];
    }
    argv[n] = NULL;
    char *out = NULL;
    int rc = tu_run((char *const *)argv, &out);
    if (rc != 0) {
        fail_msg("ocps-job-runner exited %d: %s", rc, out ? out : "");
    }
    free(out);
    json_error_t e;
    json_t *j = json_load_file(fx->status, 0, &e);
    if (j == NULL) {
        fail_msg("status.json: %s", e.text);
    }
    return j;
}

/* Run the runner on `true` with these globs. */
static json_t *run_runner(const fixture *fx, const char *const *globs)
{
    const char *job[] = {"true", NULL};
    return run_runner_job(fx, globs, job);
}

/* Every result resolves strictly inside the job directory; returns the
 * number of results. */
static size_t check_all_inside(const fixture *fx, json_t *status)
{
    json_t *results = json_object_get(status, "results");
    assert_true(json_is_array(results));
    size_t n = json_array_size(results);
    size_t root = strlen(fx->real_dir);
    for (size_t i = 0; i < n; i++) {
        const char *p = json_string_value(json_array_get(results, i));
        assert_non_null(p);
        char *real = realpath(p, NULL);
        if (real == NULL || strncmp(real, fx->real_dir, root) != 0 || real[root] != '/') {
            fail_msg("captured %s (real path %s), outside %s", p, real ? real : "(none)", fx->real_dir);
        }
        free(real);
        print_message("  captured %s\n", p + strlen(fx->workdir));
    }
    /* the count covers what is listed and nothing else */
    assert_int_equal(json_integer_value(json_object_get(status, "results_total")), (json_int_t)n);
    return n;
}

static bool listed(const fixture *fx, json_t *status, const char *rel)
{
    char want[PATH_MAX];
    path_printf(want, sizeof want, "%s/%s", fx->workdir, rel);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(status, "results"), i, v)
    {
        if (strcmp(json_string_value(v), want) == 0) {
            return true;
        }
    }
    return false;
}

/* Patterns that try to reach outside the job directory capture nothing
 * outside it. */
static void escapes_capture_nothing(void **state)
{
    fixture *fx = *state;
    static const char *const escapes[] = {
        "../../../../etc/passwd",
        "../*",
        "../B/*",
        "../../*",
        "a/../../x",
        "sub/../../B/secret.fits",
        "sub/../../*",
        "*/../../*",
        "/etc/passwd",
        "/etc/host*",
        "../../etc/host*",
        "..",
        ".",
        ".*",
        ".*/*",
        ".?/*",
        "\\.\\./*",
        ".[.]/*",
        "link_out.fits",
        "link_rel_out.fits",
        "dir_out/*",
        "dir_out/passwd",
        "dir_sib/*",
        "up/*",
        "up/B/*",
        "dir_*/*",
        "dangling.fits",
        NULL,
    };
    json_t *status = run_runner(fx, escapes);
    /* ".*" and "dir_*" patterns also match files inside: those may be listed */
    check_all_inside(fx, status);
    json_decref(status);
}

/* Ordinary patterns still capture the job's outputs, symlinks that stay
 * inside included; links that point out are left out. */
static void outputs_inside_are_captured(void **state)
{
    fixture *fx = *state;
    static const char *const globs[] = {"*", "*/*", ".h*", NULL};
    char script[PATH_MAX];
    path_printf(script, sizeof script, "%s/ocps-slurm.sh", fx->workdir);
    assert_int_equal(tu_write_file(script, "exec \"$@\"\n", 9), 0);
    json_t *status = run_runner(fx, globs);
    check_all_inside(fx, status);
    assert_false(listed(fx, status, "ocps-slurm.sh")); /* the Slurm executor's batch script */
    assert_false(listed(fx, status, "runner.claim"));
    assert_true(listed(fx, status, "a.fits"));
    assert_true(listed(fx, status, "sub"));
    assert_true(listed(fx, status, "sub/b.fits"));
    assert_true(listed(fx, status, "link_in.fits"));
    assert_true(listed(fx, status, "dir_in/b.fits"));
    assert_true(listed(fx, status, ".hidden.fits"));
    assert_false(listed(fx, status, "link_out.fits"));
    assert_false(listed(fx, status, "link_rel_out.fits"));
    assert_false(listed(fx, status, "dir_out"));
    assert_false(listed(fx, status, "dir_sib/secret.fits"));
    assert_false(listed(fx, status, "up"));
    json_decref(status);
}

/* An output whose name is not UTF-8 (a file name need not be) keeps the
 * job's outcome: status.json stays valid JSON (the engine reads it back),
 * the name listed with U+FFFD for each bad byte, the exit code the job's. */
static void non_utf8_names_keep_the_outcome(void **state)
{
    fixture *fx = *state;
    make_file(fx, "jobs/A/bad\xff\xfe name\x01.fits");
    make_file(fx, "jobs/A/caf\xc3\xa9.fits"); /* valid UTF-8: as it is */
    static const char *const globs[] = {"*.fits", NULL};
    const char *job[] = {"sh", "-c", "exit 3", NULL};
    json_t *status = run_runner_job(fx, globs, job); /* fails if status.json is not JSON */
    assert_int_equal(json_integer_value(json_object_get(status, "exit_code")), 3);
    assert_true(listed(fx, status, "bad\xef\xbf\xbd\xef\xbf\xbd name\x01.fits"));
    assert_true(listed(fx, status, "caf\xc3\xa9.fits"));
    json_decref(status);
}

/* Is pid running (not gone, not a zombie)? */
static bool running(int pid)
{
    char stat_path[64];
    snprintf(stat_path, sizeof stat_path, "/proc/%d/stat", pid);
    char *st = tu_read_file(stat_path, NULL);
    bool r = st != NULL && strstr(st, ") Z ") == NULL;
    free(st);
    return r;
}

/* Run `sh -c script` under the runner (no globs), check its exit code;
 * returns the seconds the runner took. */
static double run_script(const fixture *fx, const char *script, int exit_code)
{
    const char *job[] = {"sh", "-c", script, NULL};
    static const char *const none[] = {NULL};
    double t0 = tu_now();
    json_t *status = run_runner_job(fx, none, job);
    double took = tu_now() - t0;
    assert_int_equal(json_integer_value(json_object_get(status, "exit_code")), exit_code);
    json_decref(status);
    return took;
}

/* The pid a job wrote into path. */
static int read_pid(const char *path)
{
    char *text = tu_read_file(path, NULL);
    assert_non_null(text);
    int pid = atoi(text);
    free(text);
    assert_true(pid > 0);
    return pid;
}

/* A job whose leader ends leaving a background child (one that ignores
 * SIGTERM, too) leaves nothing running: the runner stops the rest of its
 * group (SIGTERM, SIGKILL after --grace) before it writes status.json,
 * and the leader's own exit code is the job's. */
static void nothing_outlives_the_job(void **state)
{
    fixture *fx = *state;
    char pidfile[PATH_MAX];
    path_printf(pidfile, sizeof pidfile, "%s/child.pid", fx->dir);
    char script[PATH_MAX + 128];
    snprintf(script, sizeof script, "(trap '' TERM; exec sleep 300) & echo $! > %s; exit 4", pidfile);
    double took = run_script(fx, script, 4);
    assert_false(running(read_pid(pidfile))); /* gone (or a zombie awaiting its new parent's wait) */
    assert_true(took < 5);                    /* --grace 1, not the child's 300 s */
}

/* The job's log through the runner's pipe (--log-max): a process that
 * left the job's group (setsid) and keeps the job's stdout open does not
 * hold the runner, which ends with the job and keeps what was written. */
static void an_escaped_writer_does_not_hold_the_runner(void **state)
{
    fixture *fx = *state;
    fx->log_max = "100000";
    char pidfile[PATH_MAX];
    path_printf(pidfile, sizeof pidfile, "%s/escaped.pid", fx->dir);
    char script[PATH_MAX + 128];
    snprintf(script, sizeof script,
             "setsid sh -c 'echo $$ > %s; exec sleep 30' & echo from the job; sleep 0.2", pidfile);
    double took = run_script(fx, script, 0);
    kill(read_pid(pidfile), SIGKILL);
    assert_true(took < 3); /* not the escaped sleep's 30 s */
    char log[PATH_MAX];
    path_printf(log, sizeof log, "%s/runner.log", fx->dir);
    char *out = tu_read_file(log, NULL);
    assert_non_null(out);
    assert_non_null(strstr(out, "from the job\n"));
    free(out);
}

/* Run the runner in a private mount namespace on a 256 KiB tmpfs holding
 * the job's directory: `fill` (shell) runs there first, then the runner
 * with `job` (shell); its exit status, status.json and runner.claim are
 * copied out to fx->dir (status.copy, claim.copy). Returns the runner's
 * exit status, or -1 if this machine does not allow the namespace (not
 * root, no unshare). */
static int run_on_small_disk(const fixture *fx, const char *fill, const char *job)
{
    char script[4 * PATH_MAX + 1024];
    snprintf(script, sizeof script,
             "set -u; m=%s/mnt; mkdir -p $m; mount -t tmpfs -o size=256k tmpfs $m || exit 99; "
             "mkdir $m/job; cd $m/job; %s; "
             "%s --workdir $m/job --status $m/job/status.json --log %s/log --timeout 10 --grace 1 -- "
             "sh -c '%s'; echo $? > %s/rc; cp status.json %s/status.copy; cp runner.claim %s/claim.copy; "
             "exit 0",
             fx->dir, fill, OCPS_JOB_RUNNER, fx->dir, job, fx->dir, fx->dir, fx->dir);
    char *argv[] = {"unshare", "--mount", "sh", "-c", script, NULL};
    char *out = NULL;
    int rc = tu_run(argv, &out);
    free(out);
    if (rc != 0) {
        return -1;
    }
    char path[PATH_MAX];
    path_printf(path, sizeof path, "%s/rc", fx->dir);
    char *text = tu_read_file(path, NULL);
    assert_non_null(text);
    rc = atoi(text);
    free(text);
    return rc;
}

/* A disk already full when the job is to start: the runner cannot make
 * its claim, so the job does not run, and its exit status says why
 * (4: no space; the engine reports "the job did not run"). */
static void a_full_disk_runs_nothing(void **state)
{
    fixture *fx = *state;
    char ran[PATH_MAX + 16];
    path_printf(ran, sizeof ran, "%s/ran", fx->dir);
    char job[PATH_MAX + 32];
    snprintf(job, sizeof job, "touch %s", ran);
    int rc = run_on_small_disk(fx, "head -c 1000000 /dev/zero > ../filler 2>/dev/null || true", job);
    if (rc < 0) {
        skip();
    }
    assert_int_equal(rc, 4);
    assert_int_equal(access(ran, F_OK), -1);
}

/* A job that fills the disk itself: its outcome is still recorded (the
 * status file's space was reserved before it ran), and the claim holds
 * the job's line (so a killed runner's leftovers can be found). */
static void a_job_filling_the_disk_keeps_its_outcome(void **state)
{
    fixture *fx = *state;
    int rc = run_on_small_disk(fx, "true", "head -c 1000000 /dev/zero > filler; exit 3");
    if (rc < 0) {
        skip();
    }
    assert_int_equal(rc, 0);
    char path[PATH_MAX];
    path_printf(path, sizeof path, "%s/status.copy", fx->dir);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 3);
    json_decref(j);
    path_printf(path, sizeof path, "%s/claim.copy", fx->dir);
    char *text = tu_read_file(path, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "\njob "));
    free(text);
}

/* The wall clock stepped an hour forward while the job ran (libfaketime
 * in the dynamically linked runner, its offset read from a file the job
 * writes halfway): the status still gives the job's real duration. */
static void a_clock_step_does_not_stretch_the_duration(void **state)
{
#ifndef OCPS_LIBFAKETIME
    (void)state;
    print_message("libfaketime was not found at configure time (Debian: libfaketime)\n");
    skip();
#else
    fixture *fx = *state;
    char offset[PATH_MAX];
    const char *asan = getenv("ASAN_OPTIONS");
    char *saved_asan = asan ? strdup(asan) : NULL;
    assert_int_equal(tu_faketime_start(OCPS_LIBFAKETIME, 0, offset, sizeof offset), 0);
    char script[PATH_MAX + 128];
    snprintf(script, sizeof script,
             "echo clock=$(date +%%s); sleep 0.3; echo +3600 > '%s'; sleep 0.3; echo clock=$(date +%%s)",
             offset);
    const char *argv[] = {OCPS_JOB_RUNNER_DYNAMIC,
                          "--workdir",
                          fx->workdir,
                          "--status",
                          fx->status,
                          "--log",
                          fx->log,
                          "--timeout",
                          "10",
                          "--grace",
                          "1",
                          "--",
                          "sh",
                          "-c",
                          script,
                          NULL};
    char *out = NULL;
    int rc = tu_run((char *const *)argv, &out);
    tu_faketime_stop();
    unlink(offset);
    if (saved_asan != NULL) {
        setenv("ASAN_OPTIONS", saved_asan, 1);
    } else {
        unsetenv("ASAN_OPTIONS");
    }
    free(saved_asan);
    if (rc != 0) {
        fail_msg("the runner exited %d: %s", rc, out ? out : "");
    }
    free(out);
    /* the step happened: the job's own clock moved by an hour */
    char *text = tu_read_file(fx->log, NULL);
    assert_non_null(text);
    const char *first = strstr(text, "clock=");
    const char *second = first != NULL ? strstr(first + 6, "clock=") : NULL;
    assert_non_null(second);
    long step = atol(second + 6) - atol(first + 6);
    free(text);
    print_message("the job's clock moved %ld s\n", step);
    assert_true(step >= 3600);
    json_t *st = json_load_file(fx->status, 0, NULL);
    assert_non_null(st);
    double started = json_number_value(json_object_get(st, "started"));
    double ended = json_number_value(json_object_get(st, "ended"));
    print_message("started %.3f, ended %.3f: %.3f s\n", started, ended, ended - started);
    assert_true(ended - started >= 0.5);
    assert_true(ended - started < 30);
    json_decref(st);
#endif
}

/* A stopped job that handles SIGTERM gets it when aborted: the runner
 * continues the group after its SIGTERM, so the job's handler runs at
 * once instead of a SIGKILL at the end of the grace period. */
static void a_stopped_job_is_continued_to_end(void **state)
{
    fixture *fx = *state;
    const char *argv[16];
    size_t n = runner_head(fx, argv, "0", "20");
    char ready[PATH_MAX];
    path_printf(ready, sizeof ready, "%s/ready", fx->dir);
    char script[PATH_MAX + 128];
    snprintf(script, sizeof script,
             "trap 'echo cleaned up; exit 7' TERM; echo > \"%s\"; while :; do sleep 0.05; done", ready);
    const char *tail[] = {"--", "sh", "-c", script, NULL};
    memcpy(argv + n, tail, sizeof tail);
    int pid = tu_spawn((char *const *)argv, "/dev/null");
    assert_true(pid > 0);
    long job = 0;
    double end = tu_now() + 5;
    while (job <= 0 && tu_now() < end) {
        char *text = tu_read_file(fx->claim, NULL);
        const char *line = text != NULL ? strstr(text, "\njob ") : NULL;
        job = line != NULL ? atol(line + 5) : 0;
        free(text);
        usleep(10000);
    }
    assert_true(job > 0);
    while (access(ready, F_OK) != 0 && tu_now() < end + 5) { /* the shell has set its trap */
        usleep(10000);
    }
    assert_int_equal(access(ready, F_OK), 0);
    assert_int_equal(kill(-(pid_t)job, SIGSTOP), 0);
    double t0 = tu_now();
    assert_int_equal(kill(pid, SIGTERM), 0);
    int wstatus = 0;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(tu_now() - t0 < 5); /* not the 20 s grace */
    json_error_t e;
    json_t *j = json_load_file(fx->status, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 7);
    assert_true(json_is_true(json_object_get(j, "aborted")));
    json_decref(j);
    char *out = tu_read_file(fx->log, NULL);
    assert_non_null(out);
    assert_non_null(strstr(out, "cleaned up"));
    free(out);
}

/* A job that starts a daemon (a new session, outside the job's process
 * group, a child of its own) and ends: the daemon and its child end with
 * the job, found by the runner as their subreaper, as a Kubernetes Job's
 * pod takes everything with it. */
static void a_daemon_of_the_job_ends_with_it(void **state)
{
    fixture *fx = *state;
    char a[PATH_MAX];
    char b[PATH_MAX];
    path_printf(a, sizeof a, "%s/inner.pid", fx->dir);
    path_printf(b, sizeof b, "%s/daemon.pid", fx->dir);
    char script[3 * PATH_MAX + 256];
    snprintf(script, sizeof script,
             "setsid sh -c 'sleep 300 & echo $! > %s; exec sleep 301' </dev/null >/dev/null 2>&1 & "
             "echo $! > %s; while [ ! -s %s ]; do sleep 0.02; done; exit 0",
             a, b, a);
    double took = run_script(fx, script, 0);
    int pids[2] = {read_pid(a), read_pid(b)};
    bool left = running(pids[0]) || running(pids[1]);
    kill(pids[0], SIGKILL);
    kill(pids[1], SIGKILL);
    assert_false(left);
    assert_true(took < 5);
}

/* What a job leaves that ends at once on SIGTERM (a background `sleep`)
 * does not keep the runner for the grace period (10 s here), whether the
 * job ended by itself or was aborted: the runner reaps what it inherits
 * as the job's subreaper, so no zombie keeps the group alive. */
static void leftovers_that_end_at_once_do_not_wait_the_grace(void **state)
{
    fixture *fx = *state;
    fx->grace = "10";
    double took = run_script(fx, "sleep 30 & exit 0", 0);
    print_message("ended by itself, a background sleep left: %.2f s\n", took);
    assert_true(took < 5);
    const char *argv[16];
    size_t n = runner_head(fx, argv, "0", "10");
    const char *tail[] = {"--", "sh", "-c", "sleep 100 & sleep 100; true", NULL};
    memcpy(argv + n, tail, sizeof tail);
    unlink(fx->claim);
    int pid = tu_spawn((char *const *)argv, "/dev/null");
    assert_true(pid > 0);
    double end = tu_now() + 5;
    char *text = NULL;
    while ((text == NULL || strstr(text, "\njob ") == NULL) && tu_now() < end) {
        free(text);
        usleep(10000);
        text = tu_read_file(fx->claim, NULL);
    }
    assert_non_null(text);
    free(text);
    usleep(200000); /* both sleeps run */
    double t0 = tu_now();
    assert_int_equal(kill(pid, SIGTERM), 0);
    int rc = tu_wait_exit(pid, 15);
    took = tu_now() - t0;
    print_message("aborted: %.2f s\n", took);
    assert_true(rc >= 0);
    assert_true(took < 5);
}

/* A daemon of the job (outside its group) that traps SIGTERM gets one
 * SIGTERM, then SIGKILL after the grace period (2 s): not a SIGTERM every
 * round, which many programs take as "quit at once". */
static void a_daemon_gets_one_sigterm(void **state)
{
    fixture *fx = *state;
    fx->grace = "2";
    char terms[PATH_MAX];
    char ready[PATH_MAX];
    path_printf(terms, sizeof terms, "%s/terms", fx->dir);
    path_printf(ready, sizeof ready, "%s/ready", fx->dir);
    char script[3 * PATH_MAX + 256];
    snprintf(script, sizeof script,
             "setsid sh -c 'trap \"echo term >> %s\" TERM; echo > %s; while :; do sleep 0.05; done' "
             "</dev/null >/dev/null 2>&1 & while [ ! -e %s ]; do sleep 0.02; done; exit 0",
             terms, ready, ready);
    double took = run_script(fx, script, 0);
    char *text = tu_read_file(terms, NULL);
    assert_non_null(text);
    int n = 0;
    for (const char *p = text; (p = strstr(p, "term")) != NULL; p += 4) {
        n++;
    }
    free(text);
    print_message("SIGTERMs taken: %d, runner %.2f s\n", n, took);
    assert_int_equal(n, 1);
    assert_true(took >= 1.5 && took < 6);
}

/* With a bounded log the runner reads the job's output until nothing of
 * the job is left: a background process that writes 3 MB while it ends
 * (its SIGTERM handler) finishes, instead of blocking on a full pipe
 * until SIGKILL. */
static void output_written_while_ending_is_kept(void **state)
{
    fixture *fx = *state;
    fx->grace = "5";
    fx->log_max = "100000000";
    char done[PATH_MAX];
    char ready[PATH_MAX];
    path_printf(done, sizeof done, "%s/done", fx->dir);
    path_printf(ready, sizeof ready, "%s/ready", fx->dir);
    char script[3 * PATH_MAX + 256];
    snprintf(script, sizeof script,
             "(trap 'head -c 3000000 /dev/zero; echo > %s; exit 0' TERM; echo > %s; "
             "while :; do sleep 0.05; done) & while [ ! -e %s ]; do sleep 0.02; done; exit 0",
             done, ready, ready);
    double took = run_script(fx, script, 0);
    struct stat st;
    assert_int_equal(stat(fx->log, &st), 0);
    print_message("runner %.2f s, log %lld bytes\n", took, (long long)st.st_size);
    assert_int_equal(access(done, F_OK), 0);
    assert_true(st.st_size >= 3000000);
    assert_true(took < 4);
}

/* Start the runner on `true` (argv from runner_head) with SIGCHLD
 * ignored (ign) and at most nofile descriptors (0: as it is), as a
 * launcher might leave them; its wait status. */
static int run_runner_launched(const fixture *fx, const char *log_max, bool ign, rlim_t nofile)
{
    const char *argv[20];
    size_t n = runner_head(fx, argv, "5", "1");
    if (log_max != NULL) {
        argv[n++] = "--log-max";
        argv[n++] = log_max;
    }
    const char *tail[] = {"--", "true", NULL};
    memcpy(argv + n, tail, sizeof tail);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (ign) {
            signal(SIGCHLD, SIG_IGN);
        }
        if (nofile > 0) {
            struct rlimit r = {nofile, nofile};
            setrlimit(RLIMIT_NOFILE, &r);
        }
        execv(argv[0], (char *const *)argv);
        _exit(126);
    }
    int rc = tu_wait_exit(pid, 20);
    if (rc < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return rc;
}

/* A runner started with SIGCHLD ignored (a launcher's setting inherited
 * through exec) still sees its job end, instead of waiting for ever. */
static void an_ignored_sigchld_is_not_inherited(void **state)
{
    fixture *fx = *state;
    assert_int_equal(run_runner_launched(fx, NULL, true, 0), 0);
    json_t *st = json_load_file(fx->status, 0, NULL);
    assert_non_null(st);
    assert_int_equal(json_integer_value(json_object_get(st, "exit_code")), 0);
    json_decref(st);
}

/* Out of descriptors for the log's pipe: the job does not run, and the
 * runner says why in status.json (it crashed on a double free). */
static void no_descriptor_for_the_log_pipe_is_told(void **state)
{
    fixture *fx = *state;
    int rc = run_runner_launched(fx, "1000000", false, 5);
    print_message("runner exit %d\n", rc);
    assert_true(rc >= 0 && rc < 128);
    json_t *st = json_load_file(fx->status, 0, NULL);
    assert_non_null(st);
    const char *why = json_string_value(json_object_get(st, "spawn_error"));
    print_message("spawn_error: %s\n", why ? why : "(none)");
    assert_non_null(why);
    assert_non_null(strstr(why, "pipe"));
    assert_int_equal(json_integer_value(json_object_get(st, "exit_code")), 127);
    json_decref(st);
}

/* A descriptor the runner's parent left open without CLOEXEC (as Cyclone's
 * sockets are in the CSC) is closed in the runner, which outlives the CSC:
 * while the runner supervises a job, /proc/<runner>/fd has no such entry,
 * though the same path names an open descriptor of this process. */
static void inherited_descriptors_are_closed(void **state)
{
    fixture *fx = *state;
    int fd = open("/etc/hostname", O_RDONLY); /* no O_CLOEXEC */
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, 57), 57);
    close(fd);
    const char *argv[16];
    const char *tail[] = {"--", "sleep", "1", NULL};
    memcpy(argv + runner_head(fx, argv, "10", "1"), tail, sizeof tail);
    int pid = tu_spawn((char *const *)argv, "/dev/null");
    close(57);
    assert_true(pid > 0);
    double end = tu_now() + 5;
    while (access(fx->claim, F_OK) != 0 && tu_now() < end) {
        usleep(10000);
    }
    assert_int_equal(access(fx->claim, F_OK), 0);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/57", pid);
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof target - 1);
    tu_kill(pid);
    assert_int_equal(n, -1);
    assert_int_equal(readlink("/proc/self/fd/0", target, sizeof target - 1) > 0, 1);
}

/* The runner's own exit status: 0 once the outcome is recorded, or with
 * --exit-status job the job's code (for Slurm's state and dependencies). */
static void exit_status_job_is_the_jobs_code(void **state)
{
    fixture *fx = *state;
    for (int with = 0; with < 2; with++) {
        unlink(fx->claim);
        const char *argv[20];
        size_t n = runner_head(fx, argv, "10", "1");
        const char *job[] = {"--exit-status", with ? "job" : "status", "--", "sh", "-c", "exit 6", NULL};
        memcpy(argv + n, job, sizeof job);
        assert_int_equal(tu_run((char *const *)argv, NULL), with ? 6 : 0);
        json_error_t e;
        json_t *j = json_load_file(fx->status, 0, &e);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 6);
        json_decref(j);
    }
}

/* Run the runner with --glob '*.json', the second step `then` (sh -c)
 * after the first `first` (sh -c), --timeout `timeout` (and fx->log_max);
 * status.json parsed, the wall time it took in *secs. */
static json_t *run_two_steps(const fixture *fx, const char *first, const char *then, const char *timeout,
                             double *secs)
{
    unlink(fx->claim);
    const char *argv[40];
    size_t n = runner_head(fx, argv, timeout, "1");
    if (fx->log_max != NULL) {
        argv[n++] = "--log-max";
        argv[n++] = fx->log_max;
    }
    const char *rest[] = {"--glob", "*.json", "--then", "sh", "--then", "-c", "--then",
                          then,     "--",     "sh",     "-c", first,    NULL};
    memcpy(argv + n, rest, sizeof rest);
    double t0 = tu_now();
    char *out = NULL;
    int rc = tu_run((char *const *)argv, &out);
    *secs = tu_now() - t0;
    if (rc != 0) {
        fail_msg("ocps-job-runner exited %d: %s", rc, out ? out : "");
    }
    free(out);
    json_t *j = json_load_file(fx->status, 0, NULL);
    assert_non_null(j);
    return j;
}

static long status_int(const json_t *j, const char *key)
{
    return (long)json_integer_value(json_object_get(j, key));
}

/* --then: a second step once the first exited 0 (the OCPS's butler
 * retrieve-artifacts after pipetask), run as the first (its job line in
 * the claim); its outcome is the job's (status.json "step" says which
 * ended it), and the outputs are matched after it. A failed first step
 * runs no second; a failed second fails the job; both share --timeout;
 * a SIGTERM (abort) while the second runs stops it. */
static void a_second_step_runs_after_success(void **state)
{
    fixture *fx = *state;
    double secs;
    json_t *j = run_two_steps(fx, "echo 1 > one.json", "echo 2 > two.json", "10", &secs);
    assert_int_equal(status_int(j, "exit_code"), 0);
    assert_int_equal(status_int(j, "step"), 2);
    assert_int_equal(status_int(j, "steps"), 2);
    assert_true(listed(fx, j, "one.json") && listed(fx, j, "two.json"));
    json_decref(j);
    char *claim = tu_read_file(fx->claim, NULL);
    assert_non_null(claim);
    const char *second = strstr(claim, "\njob ");
    assert_non_null(second);
    assert_non_null(strstr(second + 1, "\njob ")); /* a job line per step, the last one followed */
    free(claim);

    unlink(fx->status);
    char two[PATH_MAX];
    path_printf(two, sizeof two, "%s/two.json", fx->workdir);
    unlink(two);
    j = run_two_steps(fx, "exit 4", "echo 2 > two.json", "10", &secs);
    assert_int_equal(status_int(j, "exit_code"), 4);
    assert_int_equal(status_int(j, "step"), 1);
    assert_false(listed(fx, j, "two.json"));
    assert_int_equal(access(two, F_OK), -1);
    json_decref(j);

    j = run_two_steps(fx, "true", "exit 5", "10", &secs);
    assert_int_equal(status_int(j, "exit_code"), 5);
    assert_int_equal(status_int(j, "step"), 2);
    json_decref(j);

    /* one --timeout for both: 1.5 s in the first, the second stopped at 3 s */
    j = run_two_steps(fx, "sleep 1.5", "sleep 20", "3", &secs);
    assert_true(json_is_true(json_object_get(j, "timed_out")));
    assert_int_equal(status_int(j, "step"), 2);
    assert_true(secs < 8);
    json_decref(j);

    /* an abort (the runner's SIGTERM) while the second step runs */
    j = run_two_steps(fx, "true", "kill -TERM $PPID; sleep 20", "30", &secs);
    assert_true(json_is_true(json_object_get(j, "aborted")));
    assert_int_equal(status_int(j, "step"), 2);
    assert_true(secs < 8);
    json_decref(j);

    /* an abort while the first runs: no second step */
    unlink(two);
    j = run_two_steps(fx, "kill -TERM $PPID; sleep 20", "echo 2 > two.json", "30", &secs);
    assert_true(json_is_true(json_object_get(j, "aborted")));
    assert_int_equal(status_int(j, "step"), 1);
    assert_int_equal(access(two, F_OK), -1);
    json_decref(j);
}

/* Run `first` then `then` with --log-max 100000 (the job's exit code must
 * be exit_code); the log (freed by the caller, its length in *len) and
 * how many of its bytes are among `counted` (the steps' own output). */
static char *two_steps_log(fixture *fx, const char *first, const char *then, long exit_code,
                           const char *counted, size_t *len, size_t *n)
{
    fx->log_max = "100000";
    unlink(fx->log);
    double secs;
    json_t *j = run_two_steps(fx, first, then, "10", &secs);
    assert_int_equal(status_int(j, "exit_code"), exit_code);
    json_decref(j);
    *len = 0;
    char *log = tu_read_file(fx->log, len);
    assert_non_null(log);
    *n = 0;
    for (size_t i = 0; i < *len; i++) {
        *n += log[i] != '\0' && strchr(counted, log[i]) != NULL;
    }
    return log;
}

/* --log-max bounds the job's output in its log, both steps together: 80 kB
 * from each step with a limit of 100 kB keeps at most 100 kB of it (the
 * runner's own lines aside), with the second step's last bytes. */
static void the_log_limit_covers_both_steps(void **state)
{
    fixture *fx = *state;
    size_t len;
    size_t job_bytes;
    char *log = two_steps_log(fx, "head -c 80000 /dev/zero | tr '\\0' a",
                              "head -c 79999 /dev/zero | tr '\\0' b; echo END", 0, "ab", &len, &job_bytes);
    print_message("log %zu bytes, %zu of them the job's a and b\n", len, job_bytes);
    assert_true(job_bytes <= 100000);
    assert_non_null(strstr(log, "END\n")); /* the second step's tail kept */
    free(log);
}

/* The disk filled while step 1 ran, so step 2's line cannot be added to
 * the claim (ENOSPC from an LD_PRELOAD library): step 2 does not run, but
 * step 1 did, and the status says so. The runner does not exit 4 ("no
 * space: the job did not run", which the engine would report). */
static void a_claim_failure_in_step_2_keeps_step_1(void **state)
{
    fixture *fx = *state;
    char ran[PATH_MAX + 16];
    path_printf(ran, sizeof ran, "%s/ran", fx->dir);
    char first[PATH_MAX + 32];
    snprintf(first, sizeof first, "touch %s", ran);
    const char *asan = getenv("ASAN_OPTIONS");
    char preload[PATH_MAX + 16];
    char asan_options[512];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", OCPS_CLAIM_WRITE_FAILS);
    snprintf(asan_options, sizeof asan_options, "ASAN_OPTIONS=%s%sverify_asan_link_order=0", asan ? asan : "",
             asan && asan[0] ? ":" : "");
    const char *argv[32] = {"env", preload, asan_options, "OCPS_TEST_CLAIM_FAIL_AT=2"};
    size_t n = 4 + runner_head(fx, argv + 4, "10", "1");
    argv[4] = OCPS_JOB_RUNNER_DYNAMIC_BUILD; /* the C library's write is interposed */
    const char *tail[] = {"--exit-status", "job", "--then", "true", "--", "sh", "-c", first, NULL};
    memcpy(argv + n, tail, sizeof tail);
    char *out = NULL;
    int rc = tu_run((char *const *)argv, &out);
    print_message("runner exit %d: %s\n", rc, out ? out : "");
    free(out);
    assert_int_equal(access(ran, F_OK), 0); /* step 1 ran */
    assert_int_not_equal(rc, 4);
    assert_int_not_equal(rc, 5);
    assert_int_not_equal(rc, 0); /* a job whose second step did not run did not succeed */
    json_t *j = json_load_file(fx->status, 0, NULL);
    assert_non_null(j);
    assert_int_equal(status_int(j, "step"), 2);
    const char *err = json_string_value(json_object_get(j, "spawn_error"));
    assert_non_null(err);
    assert_non_null(strstr(err, strerror(ENOSPC)));
    json_decref(j);
}

/* A first step that writes past --log-max does not leave the second
 * without room: the retrieval's error (its last line) is in the log, and
 * the two together stay within the limit. */
static void the_second_step_keeps_room_in_the_log(void **state)
{
    fixture *fx = *state;
    size_t len;
    size_t job_bytes;
    char *log = two_steps_log(fx, "head -c 300000 /dev/zero | tr '\\0' a",
                              "echo 'butler: no such collection' >&2; exit 3", 3, "a", &len, &job_bytes);
    print_message("log %zu bytes, %zu of them step 1's\n", len, job_bytes);
    assert_non_null(strstr(log, "butler: no such collection\n"));
    assert_true(job_bytes + strlen("butler: no such collection\n") <= 100000);
    free(log);
}

/* With --exit-status job, a job stopped at its --timeout whose program
 * catches SIGTERM and exits 0 did not succeed: the runner exits 128+SIGTERM
 * (Slurm then does not run its afterok dependants); status.json keeps the
 * program's 0 and says timed_out. */
static void exit_status_job_is_not_zero_when_timed_out(void **state)
{
    fixture *fx = *state;
    const char *argv[20];
    size_t n = runner_head(fx, argv, "0.5", "2");
    const char *job[] = {
        "--exit-status", "job", "--", "sh", "-c", "trap 'exit 0' TERM; sleep 30 & wait", NULL};
    memcpy(argv + n, job, sizeof job);
    assert_int_equal(tu_run((char *const *)argv, NULL), 128 + SIGTERM);
    json_error_t e;
    json_t *j = json_load_file(fx->status, 0, &e);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 0);
    assert_true(json_is_true(json_object_get(j, "timed_out")));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(escapes_capture_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(outputs_inside_are_captured, setup, teardown),
        cmocka_unit_test_setup_teardown(non_utf8_names_keep_the_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(nothing_outlives_the_job, setup, teardown),
        cmocka_unit_test_setup_teardown(inherited_descriptors_are_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(an_escaped_writer_does_not_hold_the_runner, setup, teardown),
        cmocka_unit_test_setup_teardown(a_stopped_job_is_continued_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(a_clock_step_does_not_stretch_the_duration, setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_disk_runs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(a_daemon_of_the_job_ends_with_it, setup, teardown),
        cmocka_unit_test_setup_teardown(leftovers_that_end_at_once_do_not_wait_the_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(a_daemon_gets_one_sigterm, setup, teardown),
        cmocka_unit_test_setup_teardown(output_written_while_ending_is_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(an_ignored_sigchld_is_not_inherited, setup, teardown),
        cmocka_unit_test_setup_teardown(no_descriptor_for_the_log_pipe_is_told, setup, teardown),
        cmocka_unit_test_setup_teardown(a_job_filling_the_disk_keeps_its_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(exit_status_job_is_the_jobs_code, setup, teardown),
        cmocka_unit_test_setup_teardown(exit_status_job_is_not_zero_when_timed_out, setup, teardown),
        cmocka_unit_test_setup_teardown(a_second_step_runs_after_success, setup, teardown),
        cmocka_unit_test_setup_teardown(the_log_limit_covers_both_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(the_second_step_keeps_room_in_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(a_claim_failure_in_step_2_keeps_step_1, setup, teardown),
    };
    return cmocka_run_group_tests_name("job_runner", tests, NULL, NULL);
}
