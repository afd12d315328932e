/*
 * test_uws_page.c - ocps-engine's status pages under load of history and
 * of requests (docs/uws.md): the list shows a bounded page of the ended
 * jobs, newest first, and links the older ones; a job page (log tail and
 * output listing read on the thread pool, the connection suspended
 * meanwhile) is answered to many clients at once, and the API is served
 * while they wait. The API's list of every job (GET /job) of a long
 * history is read and written on the thread pool too: the other requests
 * are answered meanwhile, and many lists at once leave the pool to the
 * other replies built there. The page's look is checked in Chromium by
 * uws_observe.py (uws_status_page).
 */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "bench_history_fill.h"
#include "test_util.h"
#include "uws_fixture.h"

/* Must match UWS_PAGE_MAX_ENDED (processing/uws/include/ocps/uws_status_page.h). */
#define PAGE 50
#define NJOBS (PAGE + 12)

static uws_fx fx;

static int setup(void **state)
{
    (void)state;
    const char *const extra[] = {"--max-concurrent", "4", NULL};
    return uws_fx_start(&fx, NULL, extra);
}

static int teardown(void **state)
{
    (void)state;
    uws_fx_stop(&fx);
    return 0;
}

/* The job ids of the rows (<tr id="job-ID") of `html`, in order, into
 * ids[max]; their number. */
static size_t page_rows(const char *html, char (*ids)[33], size_t max)
{
    size_t n = 0;
    for (const char *p = html; (p = strstr(p, "<tr id=\"job-")) != NULL && n < max; p += 12) {
        snprintf(ids[n++], 33, "%.32s", p + 12);
    }
    return n;
}

/* The "older jobs" link of `html`, a page served under the base path
 * (whose links stay under it), as a path below the base path; NULL if
 * none (malloc'd path). */
static char *older_link(const char *html)
{
    char href[300];
    snprintf(href, sizeof href, "href=\"%s/status?before=", fx.base_path);
    const char *p = strstr(html, href);
    if (p == NULL) {
        return NULL;
    }
    p += 6 + strlen(fx.base_path);
    const char *q = strchr(p, '"');
    return q != NULL ? strndup(p, (size_t)(q - p)) : NULL;
}

/* The page at `path` from the root of the server (not under the base
 * path), by curl (malloc'd body). */
static char *curl_page(const char *path)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", fx.base, path);
    char *file = tu_path_join(fx.root, "root-page.html");
    char *const argv[] = {"curl", "-s", "-f", "--max-time", "20", "-o", file, url, NULL};
    char *out = NULL;
    assert_int_equal(tu_run(argv, &out), 0);
    free(out);
    char *html = tu_read_file(file, NULL);
    assert_non_null(html);
    free(file);
    return html;
}

static void get(const char *path, uws_resp *r)
{
    assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, NULL, r), 0);
}

static void test_list_is_one_bounded_page(void **state)
{
    (void)state;
    static char ids[NJOBS][33];
    for (int i = 0; i < NJOBS; i++) {
        assert_int_equal(uws_fx_submit(&fx, "{\"argv\": [\"true\"], \"run_id\": \"page\"}", ids[i]), 0);
    }
    for (int i = 0; i < NJOBS; i++) {
        json_t *job = uws_fx_wait(&fx, ids[i], "completed", 60);
        assert_non_null(job);
        json_decref(job);
    }
    /* An ended job leaves the live list once published (right after its
     * end is reported): wait until the first page holds no live row. */
    uws_resp r;
    static char rows[NJOBS + 8][33];
    size_t n = 0;
    for (double until = tu_now() + 10; tu_now() < until; usleep(50000)) {
        get("/status", &r);
        assert_int_equal(r.status, 200);
        n = page_rows(r.body, rows, NJOBS + 8);
        if (n == PAGE) {
            break;
        }
        uws_resp_clear(&r);
    }
    /* the newest PAGE jobs, newest first */
    assert_int_equal(n, PAGE);
    for (size_t k = 0; k < PAGE; k++) {
        assert_string_equal(rows[k], ids[NJOBS - 1 - k]);
    }
    assert_non_null(strstr(r.body, "<h2>Live (0 of 0)</h2>"));
    /* served under the base path (all a proxy may expose), its links stay
     * under it; served at the root, at the root */
    char href[300];
    snprintf(href, sizeof href, "href=\"%s/status/job/%s\"", fx.base_path, ids[NJOBS - 1]);
    assert_non_null(strstr(r.body, href));
    assert_null(strstr(r.body, "href=\"/status"));
    char *root_page = curl_page("/status");
    snprintf(href, sizeof href, "href=\"/status/job/%s\"", ids[NJOBS - 1]);
    assert_non_null(strstr(root_page, href));
    assert_non_null(strstr(root_page, "href=\"/status?before="));
    free(root_page);
    char *older = older_link(r.body);
    assert_non_null(older);
    uws_resp_clear(&r);

    /* the next page: the rest, oldest last, no link further, one back */
    get(older, &r);
    assert_int_equal(r.status, 200);
    n = page_rows(r.body, rows, NJOBS + 8);
    assert_int_equal(n, NJOBS - PAGE);
    for (size_t k = 0; k < n; k++) {
        assert_string_equal(rows[k], ids[NJOBS - PAGE - 1 - k]);
    }
    assert_null(older_link(r.body));
    snprintf(href, sizeof href, "href=\"%s/status\"", fx.base_path);
    assert_non_null(strstr(r.body, href));
    assert_null(strstr(r.body, "<h2>Live"));
    uws_resp_clear(&r);
    free(older);

    /* a cursor that is not one */
    const char *bad[] = {"/status?before=", "/status?before=-3", "/status?before=12x", "/status?before=0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        get(bad[i], &r);
        assert_int_equal(r.status, 400);
        uws_resp_clear(&r);
    }
    /* past the oldest: an empty page */
    get("/status?before=1", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(page_rows(r.body, rows, NJOBS + 8), 0);
    uws_resp_clear(&r);
}

static void test_job_page_many_clients(void **state)
{
    (void)state;
    char id[33];
    assert_int_equal(
        uws_fx_submit(&fx,
                      "{\"command\": \"echo the page log line; echo x > $JOB_OUTPUT_DIR/out.txt; "
                      "exec sleep 300\"}",
                      id),
        0);
    json_t *job = uws_fx_wait(&fx, id, "executing", 30);
    assert_non_null(job);
    json_decref(job);
    /* the log line and the output are there before the pages are asked */
    char outfile[1200];
    snprintf(outfile, sizeof outfile, "%s/%s/out/out.txt", fx.work_root, id);
    for (double until = tu_now() + 20; access(outfile, F_OK) != 0 && tu_now() < until; usleep(20000)) {
    }
    enum { CLIENTS = 12 };
    char url[256];
    snprintf(url, sizeof url, "%s/status/job/%s", fx.base, id);
    int pids[CLIENTS];
    char *files[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        char name[64];
        snprintf(name, sizeof name, "page-%d.html", i);
        files[i] = tu_path_join(fx.root, name);
        char *const argv[] = {"curl", "-s", "--max-time", "20", "-o", files[i], url, NULL};
        pids[i] = tu_spawn(argv, NULL);
        assert_true(pids[i] > 0);
    }
    /* the API answers meanwhile */
    uws_resp r;
    char path[128];
    snprintf(path, sizeof path, "/job/%s", id);
    get(path, &r);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(tu_wait_exit(pids[i], 30), 0);
        char *html = tu_read_file(files[i], NULL);
        assert_non_null(html);
        assert_non_null(strstr(html, "the page log line"));
        assert_non_null(strstr(html, "/job/result/"));
        assert_non_null(strstr(html, "out.txt</a>"));
        assert_non_null(strstr(html, "<a href=\"/status\">all jobs</a>")); /* served at the root */
        free(html);
        free(files[i]);
    }
    /* served under the base path, its links stay under it */
    snprintf(path, sizeof path, "/status/job/%s", id);
    get(path, &r);
    assert_int_equal(r.status, 200);
    char all_jobs[300];
    snprintf(all_jobs, sizeof all_jobs, "<a href=\"%s/status\">all jobs</a>", fx.base_path);
    assert_non_null(strstr(r.body, all_jobs));
    snprintf(all_jobs, sizeof all_jobs, "href=\"%s/status/job/%s\"", fx.base_path, id);
    assert_non_null(strstr(r.body, all_jobs));
    uws_resp_clear(&r);
    /* an unknown job: 404 on the loop, nothing deferred */
    get("/status/job/0123456789abcdef0123456789abcdef", &r);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
    snprintf(path, sizeof path, "/job/%s", id);
    assert_int_equal(uws_fx_request(&fx, "DELETE", path, NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    uws_resp_clear(&r);
}

/* GET /job of a history of HISTORY jobs: every one, in creation order,
 * each the object GET /job/{id} answers; and while the list is being made
 * (a second or more), the engine answers other requests at once instead of
 * after it (it used to build the list on its loop, and number every queued
 * job by walking the queue). */
/* An engine of one test's own, killed after it whatever the outcome. */
static uws_fx extra_fx;

static int kill_extra(void **state)
{
    (void)state;
    return uws_fx_kill_if_running(&extra_fx);
}

enum { HISTORY = 60000 };

/* A store of HISTORY ended jobs and an engine on it (extra_fx): its
 * directory (to free), the jobs' ids in *ids (to free), the URL of its
 * GET /job in url. */
static char *history_start(char (**ids)[ENGINE_JOB_ID_LEN + 1], char url[256])
{
    char *root = bench_fill_engine_dir(HISTORY, false, ids);
    assert_non_null(root);
    assert_int_equal(uws_fx_start(&extra_fx, root, NULL), 0);
    snprintf(url, 256, "%s/api/v1/job", extra_fx.base);
    return root;
}

/* Stop the engine of history_start and free what it gave. */
static void history_stop(char (*ids)[ENGINE_JOB_ID_LEN + 1], char *root)
{
    uws_fx_stop(&extra_fx);
    free(ids);
    free(root);
}

/* A GET /job by curl in the background: its body and HTTP status code
 * written to files in root (numbered i). */
typedef struct list_call {
    int pid;
    char *body; /* the file of the body */
    char *code; /* the file of the status code */
} list_call;

static void list_call_start(list_call *c, const char *root, const char *url, int i)
{
    char name[64];
    snprintf(name, sizeof name, "body-%d.txt", i);
    c->body = tu_path_join(root, name);
    snprintf(name, sizeof name, "code-%d.txt", i);
    c->code = tu_path_join(root, name);
    char *const argv[] = {"curl",  "-s", "--max-time",   "120",       "-o",
                          c->body, "-w", "%{http_code}", (char *)url, NULL};
    c->pid = tu_spawn(argv, c->code);
    assert_true(c->pid > 0);
}

static void list_call_free(list_call *c)
{
    free(c->body);
    free(c->code);
}

static void test_api_list_of_a_long_history_holds_nothing_up(void **state)
{
    (void)state;
    char(*ids)[ENGINE_JOB_ID_LEN + 1] = NULL;
    char url[256];
    char *root = history_start(&ids, url);
    char *listed = tu_path_join(root, "list.json");
    double t0 = tu_now();
    char *const argv[] = {"curl", "-s", "--max-time", "120", "-o", listed, url, NULL};
    int pid = tu_spawn(argv, NULL);
    assert_true(pid > 0);
    /* one job asked again and again while the list is being made */
    char path[128];
    snprintf(path, sizeof path, "/job/%s", ids[HISTORY / 2]);
    uws_resp one = {0};
    int asked = 0;
    double worst = 0;
    int status = 0;
    pid_t done;
    while ((done = waitpid(pid, &status, WNOHANG)) == 0) {
        uws_resp r;
        double t1 = tu_now();
        assert_int_equal(uws_fx_request(&extra_fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
        double took = tu_now() - t1;
        assert_int_equal(r.status, 200);
        worst = took > worst ? took : worst;
        if (asked++ == 0) {
            one = r;
        } else {
            uws_resp_clear(&r);
        }
    }
    assert_int_equal(done, pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    double whole = tu_now() - t0;
    print_message("GET /job of %d jobs: %.2f s; GET /job/{id} meanwhile: %d times, the slowest %.3f s\n",
                  HISTORY, whole, asked, worst);
    assert_true(asked >= 3);
    assert_true(worst < whole / 4);

    json_error_t jerr;
    json_t *list = json_load_file(listed, 0, &jerr);
    assert_non_null(list);
    assert_int_equal(json_array_size(list), HISTORY);
    for (int i = 0; i < HISTORY; i++) {
        json_t *job = json_array_get(list, (size_t)i);
        assert_string_equal(json_string_value(json_object_get(job, "jobId")), ids[i]);
        assert_string_equal(json_string_value(json_object_get(job, "phase")), "completed");
    }
    assert_true(json_equal(json_array_get(list, HISTORY / 2), one.json));
    json_decref(list);
    uws_resp_clear(&one);
    free(listed);
    history_stop(ids, root);
}

/* LISTS GET /job of a long history at once take at most two of libuv's
 * four pool threads (half the pool), the others waiting their turn: a
 * reply built on the pool meanwhile (a job page) is answered at once
 * instead of after three lists (it used to wait for a pool thread), and
 * every list is whole and the same. */
enum { LISTS = 6 };

static void test_api_lists_at_once_leave_the_pool_to_others(void **state)
{
    (void)state;
    char(*ids)[ENGINE_JOB_ID_LEN + 1] = NULL;
    char url[256];
    char *root = history_start(&ids, url);
    char *files[LISTS];
    for (int i = 0; i < LISTS; i++) {
        char name[64];
        snprintf(name, sizeof name, "list-%d.json", i);
        files[i] = tu_path_join(root, name);
    }
    /* one list alone: the time a list takes */
    double t0 = tu_now();
    char *const argv0[] = {"curl", "-s", "-f", "--max-time", "120", "-o", files[0], url, NULL};
    assert_int_equal(tu_wait_exit(tu_spawn(argv0, NULL), 120), 0);
    double alone = tu_now() - t0;

    int pids[LISTS];
    t0 = tu_now();
    for (int i = 0; i < LISTS; i++) {
        char *const argv[] = {"curl", "-s", "-f", "--max-time", "120", "-o", files[i], url, NULL};
        pids[i] = tu_spawn(argv, NULL);
        assert_true(pids[i] > 0);
    }
    usleep(100000); /* every list asked before the page */
    /* the page of one job asked again and again while the lists are made */
    char path[128];
    snprintf(path, sizeof path, "/status/job/%s", ids[HISTORY / 2]);
    int asked = 0;
    int running = LISTS;
    double worst = 0;
    while (running > 0) {
        uws_resp r;
        double t1 = tu_now();
        assert_int_equal(uws_fx_request(&extra_fx, "GET", path, NULL, NULL, 0, NULL, &r), 0);
        double took = tu_now() - t1;
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, ids[HISTORY / 2]));
        uws_resp_clear(&r);
        worst = took > worst ? took : worst;
        asked++;
        for (int i = 0; i < LISTS; i++) {
            int status = 0;
            if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                pids[i] = 0;
                running--;
            }
        }
    }
    double whole = tu_now() - t0;
    print_message("%d GET /job of %d jobs at once: %.2f s (one alone %.2f s); "
                  "GET /status/job/{id} meanwhile: %d times, the slowest %.3f s\n",
                  LISTS, HISTORY, whole, alone, asked, worst);
    assert_true(asked >= 3);
    assert_true(worst < alone / 2);

    size_t len0 = 0;
    char *first = tu_read_file(files[0], &len0);
    assert_non_null(first);
    for (int i = 1; i < LISTS; i++) {
        size_t len = 0;
        char *other = tu_read_file(files[i], &len);
        assert_non_null(other);
        assert_true(len == len0 && memcmp(other, first, len0) == 0);
        free(other);
    }
    json_error_t jerr;
    json_t *list = json_loadb(first, len0, 0, &jerr);
    assert_non_null(list);
    assert_int_equal(json_array_size(list), HISTORY);
    for (int i = 0; i < HISTORY; i++) {
        json_t *job = json_array_get(list, (size_t)i);
        assert_string_equal(json_string_value(json_object_get(job, "jobId")), ids[i]);
    }
    json_decref(list);
    free(first);
    for (int i = 0; i < LISTS; i++) {
        free(files[i]);
    }
    history_stop(ids, root);
}

/* More lists at once than are made (half the pool's threads: `pool` / 2)
 * and may wait (16): the others are answered 503 at once, with a message,
 * and every list taken is whole. The engine runs with UV_THREADPOOL_SIZE
 * `pool` (NULL: libuv's default, 4). */
enum { FLOOD = 22 };

static void lists_flood(const char *pool, int made)
{
    char(*ids)[ENGINE_JOB_ID_LEN + 1] = NULL;
    char url[256];
    if (pool != NULL) {
        setenv("UV_THREADPOOL_SIZE", pool, 1); /* inherited by the engine */
    }
    char *root = history_start(&ids, url);
    unsetenv("UV_THREADPOOL_SIZE");
    list_call calls[FLOOD];
    for (int i = 0; i < FLOOD; i++) {
        list_call_start(&calls[i], root, url, i);
    }
    int taken = 0;
    int refused = 0;
    for (int i = 0; i < FLOOD; i++) {
        assert_int_equal(tu_wait_exit(calls[i].pid, 120), 0);
        char *code = tu_read_file(calls[i].code, NULL);
        size_t len = 0;
        char *body = tu_read_file(calls[i].body, &len);
        assert_non_null(code);
        assert_non_null(body);
        if (strcmp(code, "503") == 0) {
            assert_non_null(strstr(body, "too many GET /job lists at once"));
            refused++;
        } else {
            assert_string_equal(code, "200");
            json_error_t jerr;
            json_t *list = json_loadb(body, len, 0, &jerr);
            assert_non_null(list);
            assert_int_equal(json_array_size(list), HISTORY);
            json_decref(list);
            taken++;
        }
        free(code);
        free(body);
        list_call_free(&calls[i]);
    }
    print_message("%d GET /job of %d jobs at once, a pool of %s threads: %d answered, %d refused (503)\n",
                  FLOOD, HISTORY, pool != NULL ? pool : "4", taken, refused);
    assert_true(refused >= 1);
    assert_true(taken >= made + 16); /* more if a list ended before all were asked */
    history_stop(ids, root);
}

static void test_api_lists_beyond_the_waiting_limit_are_refused(void **state)
{
    (void)state;
    lists_flood(NULL, 2);
}

/* A larger pool makes more lists at once (8 threads: 4). */
static void test_api_lists_follow_the_pool_size(void **state)
{
    (void)state;
    lists_flood("8", 4);
}

/* The engine stopped (SIGTERM) while lists are made and others wait their
 * turn: it exits cleanly at once, and each list ends as one being made at
 * a stop always did: answered (200, or 503 "the service is shutting
 * down"), or its connection closed unanswered (the daemon stops once no
 * reply is in the making). */
static void test_api_lists_waiting_at_stop(void **state)
{
    (void)state;
    char(*ids)[ENGINE_JOB_ID_LEN + 1] = NULL;
    char url[256];
    char *root = history_start(&ids, url);
    list_call calls[LISTS];
    for (int i = 0; i < LISTS; i++) {
        list_call_start(&calls[i], root, url, i);
    }
    usleep(200000); /* every list asked: two made, four waiting */
    double t0 = tu_now();
    kill(extra_fx.pid, SIGTERM);
    assert_int_equal(tu_wait_exit(extra_fx.pid, 30), 0);
    double took = tu_now() - t0;
    extra_fx.pid = -1;
    int answered = 0;
    for (int i = 0; i < LISTS; i++) {
        int rc = tu_wait_exit(calls[i].pid, 30);
        char *code = tu_read_file(calls[i].code, NULL);
        assert_non_null(code);
        if (rc == 0) {
            assert_true(strcmp(code, "200") == 0 || strcmp(code, "503") == 0);
            answered++;
        } else {
            /* curl: an empty reply (52), or a reset (56: the daemon exited
             * before it read the request, whose bytes made the kernel reset
             * the connection; seen under ASan) */
            assert_true(rc == 52 || rc == 56);
        }
        free(code);
        list_call_free(&calls[i]);
    }
    print_message("%d GET /job, the engine stopped meanwhile: it exited in %.2f s, %d lists answered\n",
                  LISTS, took, answered);
    assert_true(took < 5);
    history_stop(ids, root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_is_one_bounded_page),
        cmocka_unit_test(test_job_page_many_clients),
        cmocka_unit_test_teardown(test_api_list_of_a_long_history_holds_nothing_up, kill_extra),
        cmocka_unit_test_teardown(test_api_lists_at_once_leave_the_pool_to_others, kill_extra),
        cmocka_unit_test_teardown(test_api_lists_waiting_at_stop, kill_extra),
        cmocka_unit_test_teardown(test_api_lists_beyond_the_waiting_limit_are_refused, kill_extra),
        cmocka_unit_test_teardown(test_api_lists_follow_the_pool_size, kill_extra),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
