/*
 * test_uws_hung_mount.c - ocps-engine whose work root hangs like an NFS
 * mount whose server stopped answering (support/stallfs_fixture.h; the
 * state directory is elsewhere). Stopped while a job's start hangs on the
 * work root, it exits within its close grace instead of waiting for the
 * mount (a pod that never ends is never replaced), and the next engine
 * runs that job once the mount answers. While GET /job/{id} of a started
 * job and GET /job wait for the mount, every other request is answered
 * (the results walks are off the loop; a queued job has no files to
 * walk); so it is while a large result's transfer waits for the mount
 * in the middle (its parts are read off the loop). Exits 77 (skip) where
 * FUSE cannot be mounted.
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
    sfx_unstall(&c->sfs); /* an engine blocked on the work root can end */
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

/* A GET made in a child process (it may wait for the mount): its status
 * and body come back through a pipe. */
typedef struct bg_get {
    int pid;
    int fd;
} bg_get;

static void bg_start(bg_get *g, const uws_fx *fx, const char *path)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    g->pid = fork();
    assert_true(g->pid >= 0);
    if (g->pid == 0) {
        close(p[0]);
        static const char *const slow[] = {"-m", "60", NULL};
        uws_resp r = {0};
        int rc = uws_fx_request(fx, "GET", path, NULL, NULL, 0, slow, &r);
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

/* The text of `seq 1 n` (malloc'd), its length in *len. */
static char *seq_text(long n, size_t *len)
{
    size_t cap = (size_t)n * 9 + 1;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t k = 0;
    for (long i = 1; i <= n; i++) {
        k += (size_t)snprintf(text + k, cap - k, "%ld\n", i);
    }
    *len = k;
    return text;
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
    char *want = seq_text(lines, &want_len);
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
        cmocka_unit_test_setup_teardown(test_gets_wait_for_the_mount_alone, setup_one_at_a_time, teardown),
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
