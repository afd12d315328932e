/*
 * test_uws_hung_mount.c - ocps-engine whose work root hangs like an NFS
 * mount whose server stopped answering (support/stallfs_fixture.h; the
 * state directory is elsewhere). Stopped while a job's start hangs on the
 * work root, it exits within its close grace instead of waiting for the
 * mount (a pod that never ends is never replaced), and the next engine
 * runs that job once the mount answers. Started while it hangs (from the
 * first step, or only for a later one: the job store, the jobs'
 * directories), it says so and exits instead of hanging unseen. While GET /job/{id} of a started
 * job and GET /job wait for the mount, every other request is answered
 * (the results walks are off the loop; a queued job has no files to
 * walk), and a poll of a running job whose answer is kept checks it
 * again off the loop. DELETE and the abort extension of a running job
 * kill it at once and hold up no other request; so it is while a large
 * result's transfer waits for the mount in the middle (its parts are read
 * off the loop). Exits 77 (skip) where FUSE cannot be mounted.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "stallfs_fixture.h"
#include "test_util.h"
#include "uws_fixture.h"

/* The stall ends by itself after this long; the engine must have exited
 * well before (its close grace is 10 s). */
#define STALL_SECONDS 40.0
#define EXIT_WITHIN_SECONDS 20.0

/* A request that would block must be answered within this long. */
#define PROMPT_SECONDS 1.0

typedef struct ctx {
    stallfs_fx sfs;
    uws_fx fx;
    const char *opts[5];
    int child; /* a client process to end at teardown, or 0 */
} ctx;

static int setup_opts(void **state, const char *const *more)
{
    ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    *state = c;
    char err[512];
    if (sfx_start(&c->sfs, OCPS_STALLFS, err, sizeof err) != 0) {
        fprintf(stderr, "sfx_start: %s\n", err);
        return -1;
    }
    c->opts[0] = "--work-root"; /* after the fixture's own: this one counts */
    c->opts[1] = c->sfs.mount;
    for (size_t i = 0; more != NULL && more[i] != NULL && i < 2; i++) {
        c->opts[2 + i] = more[i];
    }
    return uws_fx_start(&c->fx, NULL, c->opts);
}

static int setup(void **state)
{
    return setup_opts(state, NULL);
}

/* One job runs at a time: the second one submitted stays queued. */
static int setup_one_at_a_time(void **state)
{
    static const char *const one[] = {"--max-concurrent", "1", NULL};
    return setup_opts(state, one);
}

static int teardown(void **state)
{
    ctx *c = *state;
    if (c->child > 0) { /* a failed test left it waiting */
        tu_kill(c->child);
    }
    unsetenv("OCPS_ENGINE_TEST_START_LIMIT"); /* a failed test left it set */
    sfx_unstall(&c->sfs);                     /* an engine blocked on the work root can end */
    uws_fx_stop(&c->fx);
    sfx_stop(&c->sfs);
    free(c);
    return 0;
}

/* SIGTERM while a job's start hangs on the work root: exit within the
 * grace; the job, accepted and stored but not started, completes under
 * the next engine once the mount answers. */
static void test_stop_while_work_root_hangs(void **state)
{
    ctx *c = *state;
    assert_int_equal(sfx_stall_for(&c->sfs, STALL_SECONDS), 0);
    char id[33];
    assert_int_equal(uws_fx_submit(&c->fx, "{\"argv\": [\"true\"]}", id), 0);
    struct timespec pause = {0, 500 * 1000 * 1000};
    nanosleep(&pause, NULL); /* its start is on the thread pool, waiting for the mount */

    bool still_stalled = false;
    int status = sfx_sigterm_wait(&c->sfs, c->fx.pid, EXIT_WITHIN_SECONDS, &still_stalled);
    c->fx.pid = -1;
    assert_int_equal(status, 0);
    assert_true(still_stalled);

    sfx_unstall(&c->sfs);
    assert_int_equal(uws_fx_restart(&c->fx, c->opts), 0);
    json_t *job = uws_fx_wait(&c->fx, id, NULL, 30);
    assert_non_null(job);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    json_decref(job);
}

/* Start the engine (with `extra` options after the fixture's) while the
 * mount hangs: it must exit within 16 s, its log saying `want`. */
static void assert_start_refused(ctx *c, const char *const *extra, const char *want)
{
    double t0 = tu_now();
    assert_int_equal(uws_fx_restart(&c->fx, extra), -1); /* it exited, or listened not in 20 s */
    double took = tu_now() - t0;
    char log[1100];
    snprintf(log, sizeof log, "%s/engine.log", c->fx.root);
    char *text = tu_read_file(log, NULL);
    assert_non_null(text);
    if (strstr(text, want) == NULL || took > 16) {
        fail_msg("after %.1f s, the log says:\n%s", took, text);
    }
    free(text);
    assert_true(sfx_stalled(&c->sfs));
}

/* Started while the work root (or the state directory) hangs: the engine
 * says which directory did not answer and exits after 10 s, instead of
 * hanging in its start-up, never listening and saying nothing; once the
 * mount answers it starts. */
static void test_start_while_work_root_hangs(void **state)
{
    ctx *c = *state;
    uws_fx_kill(&c->fx);
    assert_int_equal(sfx_stall_for(&c->sfs, STALL_SECONDS), 0);
    char want[900];
    snprintf(want, sizeof want, "--work-root %s has not answered for 10 s (a hung mount?); not starting",
             c->sfs.mount);
    assert_start_refused(c, c->opts, want);

    char state_dir[700];
    snprintf(state_dir, sizeof state_dir, "%s/state", c->sfs.mount);
    const char *const on_mount[] = {"--work-root", c->sfs.mount, "--state-dir", state_dir, NULL};
    snprintf(want, sizeof want, "--state-dir %s has not answered for 10 s (a hung mount?); not starting",
             state_dir);
    assert_start_refused(c, on_mount, want);

    sfx_unstall(&c->sfs);
    assert_int_equal(uws_fx_restart(&c->fx, c->opts), 0);
    char id[33];
    assert_int_equal(uws_fx_submit(&c->fx, "{\"argv\": [\"true\"]}", id), 0);
    json_t *job = uws_fx_wait(&c->fx, id, NULL, 30);
    assert_non_null(job);
    assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    json_decref(job);
}

/* A GET made in a child process (it may wait for the mount): its status
 * and body come back through a pipe. */
typedef struct bg_get {
    int pid;
    int fd;
} bg_get;

/* A request (`method`, with the form `form` when not NULL) made in a child
 * process: it may wait for the mount. */
static void bg_request(bg_get *g, const uws_fx *fx, const char *method, const char *path, const char *form)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    g->pid = fork();
    assert_true(g->pid >= 0);
    if (g->pid == 0) {
        close(p[0]);
        static const char *const slow[] = {"-m", "60", NULL};
        uws_resp r = {0};
        int rc = uws_fx_request(fx, method, path, form != NULL ? "application/x-www-form-urlencoded" : NULL,
                                form, form != NULL ? strlen(form) : 0, slow, &r);
        FILE *out = fdopen(p[1], "w");
        if (out != NULL) {
            fprintf(out, "%d\n%s", rc == 0 ? r.status : 0, r.body != NULL ? r.body : "");
            fclose(out);
        }
        _exit(0);
    }
    close(p[1]);
    g->fd = p[0];
}

static void bg_start(bg_get *g, const uws_fx *fx, const char *path)
{
    bg_request(g, fx, "GET", path, NULL);
}

/* The child's answer: its status, and its body (malloc'd). */
static int bg_finish_text(bg_get *g, char **text)
{
    FILE *in = fdopen(g->fd, "r");
    assert_non_null(in);
    int status = 0;
    if (fscanf(in, "%d\n", &status) != 1) {
        status = 0;
    }
    size_t cap = 4096;
    size_t len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, in)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    fclose(in);
    assert_true(tu_wait_exit(g->pid, 30) >= 0);
    *text = buf;
    return status;
}

/* ... its body parsed as JSON (owned). */
static int bg_finish(bg_get *g, json_t **body)
{
    char *text = NULL;
    int status = bg_finish_text(g, &text);
    json_error_t jerr;
    *body = json_loads(text, 0, &jerr);
    free(text);
    return status;
}

/* A request answered promptly: `status` within PROMPT_SECONDS (curl gives
 * up after that, so a request that waits for the mount fails here). */
static void assert_prompt_status(const uws_fx *fx, const char *method, const char *path, const char *body,
                                 int status)
{
    static const char *const quick[] = {"-m", "1", NULL};
    uws_fx at = *fx;
    if (strcmp(path, "/healthz") == 0) {
        at.base_path[0] = '\0'; /* the probe is outside the base path */
    }
    uws_resp r = {0};
    double t0 = tu_now();
    int rc = uws_fx_request(&at, method, path, body != NULL ? "application/json" : NULL, body,
                            body != NULL ? strlen(body) : 0, quick, &r);
    double took = tu_now() - t0;
    print_message("%s %s while the work root hangs: %d after %.3f s\n", method, path, r.status, took);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, status);
    assert_true(took < PROMPT_SECONDS + 0.2);
    uws_resp_clear(&r);
}

static void assert_prompt(const uws_fx *fx, const char *method, const char *path, const char *body)
{
    assert_prompt_status(fx, method, path, body, 200);
}

static const char *job_phase(const json_t *job)
{
    return json_string_value(json_object_get(job, "phase"));
}

/* GET /job/{id} of a started job and GET /job wait for the hung work
 * root on the thread pool; meanwhile PUT /job, GET /healthz and GET of a
 * queued job (no files: nothing to walk) are answered at once. Once the
 * mount answers, the waiting GETs get the job's results. */
static void test_gets_wait_for_the_mount_alone(void **state)
{
    ctx *c = *state;
    char running[33];
    char queued[33];
    assert_int_equal(
        uws_fx_submit(
            &c->fx, "{\"argv\": [\"sh\", \"-c\", \"echo x > \\\"$JOB_OUTPUT_DIR/a.txt\\\"; exec sleep 30\"]}",
            running),
        0);
    json_t *job = uws_fx_wait(&c->fx, running, "executing", 20);
    assert_non_null(job);
    json_decref(job);
    assert_int_equal(uws_fx_submit(&c->fx, "{\"argv\": [\"true\"]}", queued), 0);
    struct timespec settle = {1, 200 * 1000 * 1000}; /* a.txt written; no kept answer holds (1 s) */
    nanosleep(&settle, NULL);

    assert_int_equal(sfx_stall_for(&c->sfs, STALL_SECONDS), 0);
    char path[64];
    snprintf(path, sizeof path, "/job/%s", running);
    bg_get one;
    bg_get list;
    bg_get result;
    bg_get log;
    bg_start(&one, &c->fx, path);
    bg_start(&list, &c->fx, "/job");
    snprintf(path, sizeof path, "/job/result/%s/0", running);
    bg_start(&result, &c->fx, path);
    snprintf(path, sizeof path, "/job/%s/log", running); /* beyond the pool's share: waits its turn */
    bg_start(&log, &c->fx, path);
    struct timespec pause = {0, 500 * 1000 * 1000};
    nanosleep(&pause, NULL); /* both wait for the mount */

    assert_prompt(&c->fx, "GET", "/healthz", NULL);
    assert_prompt(&c->fx, "PUT", "/job", "{\"argv\": [\"true\"]}");
    snprintf(path, sizeof path, "/job/%s", queued);
    assert_prompt(&c->fx, "GET", path, NULL);
    snprintf(path, sizeof path, "/job/%s/results", queued);
    assert_prompt(&c->fx, "GET", path, NULL);
    snprintf(path, sizeof path, "/job/result/%s/0", queued);
    assert_prompt_status(&c->fx, "GET", path, NULL, 404);
    snprintf(path, sizeof path, "/job/%s/log", queued);
    assert_prompt_status(&c->fx, "GET", path, NULL, 404);
    snprintf(path, sizeof path, "/job/%s/phase", running); /* a client polling the phase */
    assert_prompt(&c->fx, "GET", path, NULL);
    snprintf(path, sizeof path, "/job/%s/parameters", running);
    assert_prompt(&c->fx, "GET", path, NULL);
    assert_prompt(&c->fx, "GET", "/healthz", NULL);
    assert_true(sfx_stalled(&c->sfs));

    sfx_unstall(&c->sfs);
    json_t *got = NULL;
    assert_int_equal(bg_finish(&one, &got), 200);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "jobId")), running);
    assert_string_equal(job_phase(got), "executing");
    json_t *results = json_object_get(got, "results");
    assert_int_equal(json_array_size(results), 1);
    const char *file = json_string_value(json_object_get(json_array_get(results, 0), "uri"));
    assert_non_null(file);
    assert_non_null(strstr(file, "/a.txt"));
    json_decref(got);

    assert_int_equal(bg_finish(&list, &got), 200);
    assert_true(json_is_array(got));
    /* both jobs asked before it; the one PUT meanwhile may or may not be listed */
    size_t i;
    json_t *item;
    size_t seen = 0;
    json_array_foreach(got, i, item)
    {
        const char *id = json_string_value(json_object_get(item, "jobId"));
        assert_non_null(id);
        size_t n = json_array_size(json_object_get(item, "results"));
        if (strcmp(id, running) == 0) {
            assert_int_equal(n, 1);
            seen++;
        } else {
            assert_string_equal(job_phase(item), "queued");
            assert_int_equal(n, 0);
            seen += strcmp(id, queued) == 0;
        }
    }
    assert_int_equal(seen, 2);
    json_decref(got);

    char *text = NULL;
    assert_int_equal(bg_finish_text(&result, &text), 200);
    assert_string_equal(text, "x\n");
    free(text);
    assert_int_equal(bg_finish_text(&log, &text), 200);
    free(text);

    snprintf(path, sizeof path, "/job/%s", running);
    uws_resp r = {0};
    assert_int_equal(uws_fx_request(&c->fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
}

/* A job whose process sleeps 30 s (its pid written outside the work root,
 * no file of the work root held open: it can end while the mount hangs),
 * executing once this returns; its id and that pid. */
static void start_sleeper(const ctx *c, const char *tag, char id[33], int *pid)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"argv\": [\"sh\", \"-c\", \"echo $$ > %s/%s.tmp && mv %s/%s.tmp %s/%s.pid && "
             "exec sleep 30 </dev/null >/dev/null 2>&1\"]}",
             c->fx.root, tag, c->fx.root, tag, c->fx.root, tag);
    assert_int_equal(uws_fx_submit(&c->fx, body, id), 0);
    char file[1200];
    snprintf(file, sizeof file, "%s/%s.pid", c->fx.root, tag);
    double until = tu_now() + 20;
    char *text = NULL;
    while ((text = tu_read_file(file, NULL)) == NULL && tu_now() < until) {
        usleep(50 * 1000);
    }
    assert_non_null(text);
    assert_int_equal(sscanf(text, "%d", pid), 1);
    free(text);
    json_t *job = uws_fx_wait(&c->fx, id, "executing", 20);
    assert_non_null(job);
    json_decref(job);
}

/* Has process pid ended (gone, or a zombie its parent has not reaped yet)? */
static bool process_ended(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    char *text = tu_read_file(path, NULL);
    if (text == NULL) {
        return true;
    }
    const char *paren = strrchr(text, ')');
    bool ended = paren != NULL && (paren[2] == 'Z' || paren[2] == 'X');
    free(text);
    return ended;
}

/* ... within `seconds`. */
static bool process_ended_within(int pid, double seconds)
{
    double until = tu_now() + seconds;
    while (!process_ended(pid)) {
        if (tu_now() >= until) {
            return false;
        }
        usleep(20 * 1000);
    }
    return true;
}

/* GET /job/{id} answers 404 within `seconds`, and its directory has gone
 * from the work root (looked at on the backing directory). */
static void assert_gone_within(const ctx *c, const char *id, double seconds)
{
    char path[64];
    char dir[700];
    snprintf(path, sizeof path, "/job/%s", id);
    snprintf(dir, sizeof dir, "%s/%s", c->sfs.backing, id);
    double until = tu_now() + seconds;
    int status = 0;
    bool dir_left = true;
    while (tu_now() < until) {
        uws_resp r = {0};
        assert_int_equal(uws_fx_request(&c->fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
        status = r.status;
        uws_resp_clear(&r);
        dir_left = access(dir, F_OK) == 0;
        if (status == 404 && !dir_left) {
            return;
        }
        usleep(100 * 1000);
    }
    print_message("job %s: GET %d, directory %s\n", id, status, dir_left ? "left" : "gone");
    fail();
}

/* Is job `id` in GET /job? */
static bool listed(const uws_fx *fx, const char *id)
{
    uws_resp r = {0};
    assert_int_equal(uws_fx_request(fx, "GET", "/job", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    bool found = false;
    size_t i;
    json_t *item;
    json_array_foreach(r.json, i, item)
    {
        found |= strcmp(json_string_value(json_object_get(item, "jobId")), id) == 0;
    }
    uws_resp_clear(&r);
    return found;
}

/* Started when the mount hangs only for a later step of the start-up
 * (the directories answer): the service's look at a stored job's
 * directory (its .uws-deleted mark), or the job store on a --state-dir
 * on the mount. The engine says which step has not finished and exits,
 * instead of hanging unseen; once the mount answers it starts, the job
 * still running. OCPS_ENGINE_TEST_START_LIMIT shortens the limit of these
 * steps (60 s) to 3 s. */
static void test_start_while_later_step_hangs(void **state)
{
    ctx *c = *state;
    char id[33];
    int pid = 0;
    start_sleeper(c, "later", id, &pid);
    uws_fx_kill(&c->fx); /* its job runs on */
    assert_int_equal(setenv("OCPS_ENGINE_TEST_START_LIMIT", "3", 1), 0);
    assert_int_equal(sfx_stall_paths(&c->sfs, ".uws-deleted"), 0);
    char want[2000];
    snprintf(want, sizeof want,
             "ocps-engine: looking at the jobs' directories under --work-root %s has not finished in 3 s "
             "(a hung mount?); not starting",
             c->sfs.mount);
    assert_start_refused(c, c->opts, want);

    char state_dir[700];
    snprintf(state_dir, sizeof state_dir, "%s/state", c->sfs.mount);
    const char *const on_mount[] = {"--work-root", c->sfs.mount, "--state-dir", state_dir, NULL};
    assert_int_equal(sfx_stall_paths(&c->sfs, "ocps-engine.sqlite"), 0);
    snprintf(
        want, sizeof want,
        "ocps-engine: opening the job store in --state-dir %s and resuming its jobs under --work-root %s "
        "has not finished in 3 s (a hung mount?); not starting",
        state_dir, c->sfs.mount);
    assert_start_refused(c, on_mount, want);
    unsetenv("OCPS_ENGINE_TEST_START_LIMIT");

    sfx_unstall(&c->sfs);
    assert_int_equal(uws_fx_restart(&c->fx, c->opts), 0);
    json_t *job = uws_fx_wait(&c->fx, id, "executing", 5);
    assert_non_null(job);
    json_decref(job);
    char path[64];
    snprintf(path, sizeof path, "/job/%s", id);
    uws_resp r = {0};
    assert_int_equal(uws_fx_request(&c->fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    assert_true(process_ended_within(pid, 5.0));
}

/* DELETE of a running job while the work root hangs (as the CSC's
 * abort_job during an NFS hang): its process ends at once, and the
 * service goes on answering (/healthz, the job already 404, DELETE of a
 * queued job, which has no files); that DELETE waits, for its mark (what
 * makes the deletion survive a restart), and so does the DELETE of an
 * ended job, whose files are moved aside before it is forgotten (the job
 * 404 meanwhile). Once the mount answers: 200, every job is gone with its
 * directory, and stays gone after the engine is killed and started
 * again. */
static void test_delete_while_mount_hangs(void **state)
{
    ctx *c = *state;
    char ended[33];
    char running[33];
    char queued[33];
    int pid = 0;
    assert_int_equal(uws_fx_submit(&c->fx, "{\"argv\": [\"true\"]}", ended), 0);
    json_t *job = uws_fx_wait(&c->fx, ended, "completed", 20);
    assert_non_null(job);
    json_decref(job);
    start_sleeper(c, "delete", running, &pid);
    assert_int_equal(uws_fx_submit(&c->fx, "{\"argv\": [\"true\"]}", queued), 0); /* one at a time */
    struct timespec settle = {1, 200 * 1000 * 1000};                              /* no kept answer holds */
    nanosleep(&settle, NULL);

    assert_int_equal(sfx_stall_for(&c->sfs, STALL_SECONDS), 0);
    char path[64];
    snprintf(path, sizeof path, "/job/%s", running);
    bg_get del;
    bg_request(&del, &c->fx, "DELETE", path, NULL);
    assert_true(process_ended_within(pid, 2.0)); /* the abort did not wait for the mount */
    assert_prompt(&c->fx, "GET", "/healthz", NULL);
    assert_prompt_status(&c->fx, "GET", path, NULL, 404);
    snprintf(path, sizeof path, "/job/%s", ended);
    bg_get del_ended; /* its files are moved aside first: it waits for the mount */
    bg_request(&del_ended, &c->fx, "DELETE", path, NULL);
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_prompt_status(&c->fx, "GET", path, NULL, 404); /* gone for the API meanwhile */
    snprintf(path, sizeof path, "/job/%s", queued);
    assert_prompt(&c->fx, "DELETE", path, NULL);
    assert_prompt_status(&c->fx, "GET", path, NULL, 404);
    assert_prompt(&c->fx, "GET", "/healthz", NULL);
    assert_true(sfx_stalled(&c->sfs));

    sfx_unstall(&c->sfs);
    json_t *got = NULL;
    assert_int_equal(bg_finish(&del, &got), 200);
    assert_string_equal(json_string_value(json_object_get(got, "status")), "Success");
    json_decref(got);
    assert_int_equal(bg_finish(&del_ended, &got), 200);
    assert_string_equal(json_string_value(json_object_get(got, "status")), "Success");
    json_decref(got);
    /* answered 200: the deletion holds even if the engine dies now */
    uws_fx_kill(&c->fx);
    assert_int_equal(uws_fx_restart(&c->fx, c->opts), 0);
    assert_gone_within(c, running, 20);
    assert_gone_within(c, ended, 5);
    assert_gone_within(c, queued, 5);
    assert_false(listed(&c->fx, running));
    assert_false(listed(&c->fx, ended));
    assert_false(listed(&c->fx, queued));
}

/* POST /job/{id}/phase PHASE=ABORT of a running job while the work root
 * hangs: its process ends at once and the service goes on answering; the
 * 303's job object (a results walk) waits for the mount alone. Once it
 * answers, the job is aborted and kept. */
static void test_abort_phase_while_mount_hangs(void **state)
{
    ctx *c = *state;
    char id[33];
    int pid = 0;
    start_sleeper(c, "abort", id, &pid);
    struct timespec settle = {1, 200 * 1000 * 1000}; /* no kept answer holds */
    nanosleep(&settle, NULL);

    assert_int_equal(sfx_stall_for(&c->sfs, STALL_SECONDS), 0);
    char path[64];
    snprintf(path, sizeof path, "/job/%s/phase", id);
    bg_get abort;
    bg_request(&abort, &c->fx, "POST", path, "PHASE=ABORT");
    assert_true(process_ended_within(pid, 2.0));
    assert_prompt(&c->fx, "GET", "/healthz", NULL);
    assert_prompt(&c->fx, "GET", path, NULL); /* the phase needs no walk */
    assert_prompt(&c->fx, "GET", "/healthz", NULL);
    assert_true(sfx_stalled(&c->sfs));

    sfx_unstall(&c->sfs);
    json_t *got = NULL;
    assert_int_equal(bg_finish(&abort, &got), 303);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "jobId")), id);
    json_decref(got);
    json_t *job = uws_fx_wait(&c->fx, id, "aborted", 20);
    assert_non_null(job);
    assert_string_equal(job_phase(job), "aborted");
    json_decref(job);
}

/* A client polling a running job: its answer, kept between polls, is
 * checked again on the thread pool, never on the loop, so that a poll
 * just after the work root hangs does not stall every request. After the
 * mount answers, the poll that waited gets the job with its result. */
static void test_kept_answer_checked_off_the_loop(void **state)
{
    ctx *c = *state;
    char running[33];
    assert_int_equal(
        uws_fx_submit(
            &c->fx, "{\"argv\": [\"sh\", \"-c\", \"echo x > \\\"$JOB_OUTPUT_DIR/a.txt\\\"; exec sleep 30\"]}",
            running),
        0);
    json_t *job = uws_fx_wait(&c->fx, running, "executing", 20);
    assert_non_null(job);
    json_decref(job);
    struct timespec settle = {1, 200 * 1000 * 1000}; /* a.txt written long enough ago to be trusted */
    nanosleep(&settle, NULL);
    char path[64];
    snprintf(path, sizeof path, "/job/%s", running);
    uws_resp r = {0};
    assert_int_equal(uws_fx_request(&c->fx, "GET", path, NULL, NULL, 0, NULL, &r), 0); /* walked, kept */
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "results")), 1);
    uws_resp_clear(&r);

    assert_int_equal(sfx_stall_for(&c->sfs, STALL_SECONDS), 0);
    bg_get polls[3];
    for (size_t i = 0; i < 3; i++) { /* within the kept answer's second, then after */
        bg_start(&polls[i], &c->fx, path);
        struct timespec gap = {0, 300 * 1000 * 1000};
        nanosleep(&gap, NULL);
    }
    assert_prompt(&c->fx, "GET", "/healthz", NULL);
    snprintf(path, sizeof path, "/job/%s/phase", running);
    assert_prompt(&c->fx, "GET", path, NULL);
    assert_true(sfx_stalled(&c->sfs));

    sfx_unstall(&c->sfs);
    for (size_t i = 0; i < 3; i++) {
        json_t *got = NULL;
        assert_int_equal(bg_finish(&polls[i], &got), 200);
        assert_non_null(got);
        assert_string_equal(job_phase(got), "executing");
        assert_int_equal(json_array_size(json_object_get(got, "results")), 1);
        json_decref(got);
    }
}

/* A job that wrote one result and completed, then the mount stalled and
 * its DELETE sent in a child: once this returns, the DELETE waits for
 * the mount to move the job's directory aside. The job's id and path. */
static void delete_while_moving_aside(ctx *c, char ended[33], char path[64], bg_get *del)
{
    assert_int_equal(uws_fx_submit(&c->fx,
                                   "{\"argv\": [\"sh\", \"-c\", \"echo x > \\\"$JOB_OUTPUT_DIR/a.txt\\\"\"]}",
                                   ended),
                     0);
    json_t *job = uws_fx_wait(&c->fx, ended, "completed", 20);
    assert_non_null(job);
    json_decref(job);
    assert_int_equal(sfx_stall_for(&c->sfs, STALL_SECONDS), 0);
    snprintf(path, 64, "/job/%s", ended);
    bg_request(del, &c->fx, "DELETE", path, NULL);
    struct timespec pause = {0, 500 * 1000 * 1000};
    nanosleep(&pause, NULL);
}

/* An ended job's DELETE killed with the engine while its files wait for
 * the mount to be moved aside: the job is not forgotten yet, so the next
 * engine still has it, with its files (never a forgotten job whose
 * directory a new job with its id would find); a DELETE then ends it. */
static void test_delete_killed_while_moving_aside(void **state)
{
    ctx *c = *state;
    char ended[33];
    char path[64];
    bg_get del;
    delete_while_moving_aside(c, ended, path, &del);
    assert_prompt_status(&c->fx, "GET", path, NULL, 404);
    uws_fx_kill(&c->fx);
    char *text = NULL;
    assert_int_not_equal(bg_finish_text(&del, &text), 200); /* never answered */
    free(text);
    sfx_unstall(&c->sfs);

    assert_int_equal(uws_fx_restart(&c->fx, c->opts), 0);
    uws_resp r = {0};
    assert_int_equal(uws_fx_request(&c->fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(job_phase(r.json), "completed");
    assert_int_equal(json_array_size(json_object_get(r.json, "results")), 1);
    uws_resp_clear(&r);
    assert_int_equal(uws_fx_request(&c->fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    assert_gone_within(c, ended, 5);
}

/* SIGTERM while an ended job's DELETE waits for the mount, which answers
 * within the close grace: the engine, being closed, does not forget the
 * job (it would use the closed engine), it exits 0, and the next engine
 * still has the job with its files. */
static void test_stop_while_delete_waits(void **state)
{
    ctx *c = *state;
    char ended[33];
    char path[64];
    bg_get del;
    delete_while_moving_aside(c, ended, path, &del);
    assert_int_equal(kill(c->fx.pid, SIGTERM), 0);
    struct timespec pause = {0, 500 * 1000 * 1000}; /* the engine closes, the DELETE still waiting */
    nanosleep(&pause, NULL);
    sfx_unstall(&c->sfs);
    assert_int_equal(tu_wait_exit(c->fx.pid, 15), 0);
    c->fx.pid = -1;
    char *text = NULL;
    assert_int_not_equal(bg_finish_text(&del, &text), 200);
    free(text);

    assert_int_equal(uws_fx_restart(&c->fx, c->opts), 0);
    uws_resp r = {0};
    assert_int_equal(uws_fx_request(&c->fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "results")), 1);
    uws_resp_clear(&r);
}

/* A GET of a large file in a child process: it reads the first bytes,
 * says so, waits for the go, then reads the rest and says whether the
 * reply was 200 with the Content-Length and the bytes of `want`. */
typedef struct bg_transfer {
    int pid;
    int started; /* the child writes a byte once the first bytes came */
    int go;      /* the child reads on once a byte comes */
    int verdict; /* then writes "STATUS LENGTH SAME\n" */
} bg_transfer;

static void transfer_child(const uws_fx *fx, const char *path, const char *want, size_t want_len,
                           const bg_transfer *t)
{
    uws_raw raw;
    char line[8];
    uws_resp r = {0};
    char clen[64];
    snprintf(clen, sizeof clen, "\r\nContent-Length: %zu\r\n", want_len);
    /* a small receive buffer: the server cannot send far ahead */
    if (uws_raw_get(&raw, fx, path, 8192) != 0 || uws_raw_read(&raw, 65536, 20) != 0 ||
        write(t->started, "s\n", 2) != 2 || tu_read_line(t->go, line, sizeof line, 60) != 0 ||
        uws_raw_read(&raw, SIZE_MAX, 60) != 0 || uws_raw_reply(&raw, &r) != 0) {
        dprintf(t->verdict, "0 0 0\n");
        _exit(0);
    }
    bool same = r.len == want_len && memcmp(r.body, want, want_len) == 0 && strstr(r.headers, clen) != NULL;
    dprintf(t->verdict, "%d %zu %d\n", r.status, r.len, same ? 1 : 0);
    _exit(0);
}

static void bg_transfer_start(bg_transfer *t, const uws_fx *fx, const char *path, const char *want,
                              size_t want_len)
{
    int started[2];
    int go[2];
    int verdict[2];
    assert_int_equal(pipe(started), 0);
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(verdict), 0);
    t->pid = fork();
    assert_true(t->pid >= 0);
    if (t->pid == 0) {
        bg_transfer mine = {0, started[1], go[0], verdict[1]};
        transfer_child(fx, path, want, want_len, &mine);
    }
    close(started[1]);
    close(go[0]);
    close(verdict[1]);
    t->started = started[0];
    t->go = go[1];
    t->verdict = verdict[0];
}

/* A job's large result (19 MB) is being sent when the work root hangs:
 * its next bytes wait for the mount on the thread pool, alone; /healthz,
 * a job's phase and a queued job are answered at once. Once the mount
 * answers, the whole file arrives, byte for byte. */
static void test_file_transfer_waits_for_the_mount_alone(void **state)
{
    ctx *c = *state;
    const long lines = 2500000;
    char done[33];
    char running[33];
    char queued[33];
    char path[96];
    assert_int_equal(
        uws_fx_submit(&c->fx,
                      "{\"argv\": [\"sh\", \"-c\", \"seq 1 2500000 > \\\"$JOB_OUTPUT_DIR/big.fits\\\"\"]}",
                      done),
        0);
    json_t *job = uws_fx_wait(&c->fx, done, NULL, 60);
    assert_non_null(job);
    assert_string_equal(job_phase(job), "completed");
    json_decref(job);
    assert_int_equal(uws_fx_submit(&c->fx, "{\"argv\": [\"sleep\", \"30\"]}", running), 0);
    json_decref(uws_fx_wait(&c->fx, running, "executing", 20));
    assert_int_equal(uws_fx_submit(&c->fx, "{\"argv\": [\"true\"]}", queued), 0);

    size_t want_len = 0;
    char *want = uws_seq_text(lines, &want_len);
    assert_non_null(want);
    bg_transfer t;
    snprintf(path, sizeof path, "/job/result/%s/0", done);
    bg_transfer_start(&t, &c->fx, path, want, want_len);
    c->child = t.pid;
    char line[128];
    assert_int_equal(tu_read_line(t.started, line, sizeof line, 20), 0); /* the first bytes came */
    assert_int_equal(sfx_stall_for(&c->sfs, STALL_SECONDS), 0);
    assert_int_equal(write(t.go, "g\n", 2), 2); /* the client reads on: the next bytes need the mount */
    struct timespec pause = {0, 500 * 1000 * 1000};
    nanosleep(&pause, NULL);

    assert_prompt(&c->fx, "GET", "/healthz", NULL);
    snprintf(path, sizeof path, "/job/%s/phase", running);
    assert_prompt(&c->fx, "GET", path, NULL);
    snprintf(path, sizeof path, "/job/%s", queued);
    assert_prompt(&c->fx, "GET", path, NULL);
    assert_prompt(&c->fx, "PUT", "/job", "{\"argv\": [\"true\"]}");
    assert_prompt(&c->fx, "GET", "/healthz", NULL);
    assert_true(sfx_stalled(&c->sfs));

    sfx_unstall(&c->sfs);
    assert_int_equal(tu_read_line(t.verdict, line, sizeof line, 60), 0);
    int status = 0;
    size_t got = 0;
    int same = 0;
    assert_int_equal(sscanf(line, "%d %zu %d", &status, &got, &same), 3);
    assert_int_equal(status, 200);
    assert_int_equal(got, want_len);
    assert_int_equal(same, 1);
    assert_true(tu_wait_exit(t.pid, 30) >= 0);
    c->child = 0;
    close(t.started);
    close(t.go);
    close(t.verdict);
    free(want);
}

int main(void)
{
    if (sfx_unavailable(OCPS_STALLFS)) {
        return SFX_UNAVAILABLE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stop_while_work_root_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_while_work_root_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_while_later_step_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gets_wait_for_the_mount_alone, setup_one_at_a_time, teardown),
        cmocka_unit_test_setup_teardown(test_kept_answer_checked_off_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_while_mount_hangs, setup_one_at_a_time, teardown),
        cmocka_unit_test_setup_teardown(test_abort_phase_while_mount_hangs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_killed_while_moving_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_while_delete_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_transfer_waits_for_the_mount_alone, setup_one_at_a_time,
                                        teardown),
    };
    /* OCPS_TEST_FILTER=NAME runs only that test (a cmocka pattern) */
    const char *filter = getenv("OCPS_TEST_FILTER");
    if (filter != NULL && *filter != '\0') {
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
