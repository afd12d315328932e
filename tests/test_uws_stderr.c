/*
 * test_uws_stderr.c - ocps-engine with its stderr on a pipe whose reader
 * has stalled (journald, a container log shipper): the request log never
 * blocks the loop, every request is answered; the lines that did not fit
 * are dropped and counted, and the count is written once the reader reads
 * again. A SIGTERM still stops it (its stopping message does not wait).
 */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "test_util.h"
#include "uws_fixture.h"

enum { FLOOD = 300 };

static uws_fx fx;
static int log_fd = -1; /* the read end of the engine's stderr (a FIFO) */

/* The engine started with stdout and stderr on a FIFO of four pages
 * (some 60 request lines; not one: a line is written only while a page
 * is free, so the note and the line after it need two) that this test
 * holds open for reading but does not read. */
static int setup(void **state)
{
    (void)state;
    char *root = tu_make_temp_dir();
    char *fifo = tu_path_join(root, "engine.log");
    int rc = mkfifo(fifo, 0600);
    if (rc == 0) {
        log_fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    }
    if (log_fd < 0 || fcntl(log_fd, F_SETPIPE_SZ, 16384) < 0) {
        rc = -1;
    }
    if (rc == 0) {
        rc = uws_fx_start(&fx, root, NULL);
    }
    free(fifo);
    free(root);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    uws_fx_kill_if_running(&fx);
    uws_fx_stop(&fx);
    if (log_fd >= 0) {
        close(log_fd);
        log_fd = -1;
    }
    return 0;
}

/* Append what the pipe holds to *all (malloc'd); wait up to `wait`
 * seconds for `until` to appear in it (NULL: read what is there). */
static void drain(char **all, size_t *len, const char *until, double wait)
{
    double end = tu_now() + wait;
    for (;;) {
        char chunk[65536];
        ssize_t n = read(log_fd, chunk, sizeof chunk);
        if (n > 0) {
            *all = realloc(*all, *len + (size_t)n + 1);
            assert_non_null(*all);
            memcpy(*all + *len, chunk, (size_t)n);
            *len += (size_t)n;
            (*all)[*len] = '\0';
            continue;
        }
        if (until == NULL || (*all != NULL && strstr(*all, until) != NULL) || tu_now() >= end) {
            return;
        }
        struct pollfd p = {.fd = log_fd, .events = POLLIN};
        poll(&p, 1, 50);
    }
}

/* GET a path of 150 x's (a long request line: the log keeps 199 bytes of
 * a path) n times; each must be answered (404) within 5 s. */
static void flood(const char *path, int n)
{
    const char *const quick[] = {"--max-time", "5", NULL};
    for (int i = 0; i < n; i++) {
        uws_resp r;
        assert_int_equal(uws_fx_request(&fx, "GET", path, NULL, NULL, 0, quick, &r), 0);
        if (r.status != 404) {
            fail_msg("request %d of %d: status %d (the engine waits for its stderr reader)", i + 1, n,
                     r.status);
        }
        uws_resp_clear(&r);
    }
}

static void long_path(char path[300])
{
    snprintf(path, 300, "/job/");
    memset(path + 5, 'x', 150);
    path[155] = '\0';
}

static void test_stalled_stderr_never_blocks_requests(void **state)
{
    (void)state;
    char path[300];
    long_path(path);
    const char *const quick[] = {"--max-time", "5", NULL};
    double t0 = tu_now();
    flood(path, FLOOD);
    assert_true(tu_now() - t0 < 120);

    /* The reader reads again: the next request's line comes after the count. */
    char *all = NULL;
    size_t len = 0;
    drain(&all, &len, NULL, 0);
    uws_resp r;
    assert_int_equal(uws_fx_request(&fx, "GET", "/job/after", NULL, NULL, 0, quick, &r), 0);
    assert_int_equal(r.status, 404);
    uws_resp_clear(&r);
    drain(&all, &len, "/job/after ", 10);
    assert_non_null(all);
    unsigned long whole = 0, dropped = 0;
    bool noted = false, after = false;
    for (char *line = strtok(all, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        int end = 0;
        unsigned long count = 0;
        sscanf(line, "%lu log lines dropped or cut short: stderr was not writable%n", &count, &end);
        if (strstr(line, path) != NULL) {
            /* a request's line is written once its answer has gone out,
             * so the last of the flood may come after the drain, after
             * the note */
            whole++;
        } else if (end > 0 && line[end] == '\0') {
            assert_false(noted || after);
            noted = true;
            dropped = count;
        } else if (strstr(line, " GET /api/v1/job/after 404 ") != NULL) {
            assert_true(noted);
            after = true;
        }
    }
    free(all);
    assert_true(noted && after);
    assert_true(whole > 0 && whole < FLOOD);
    assert_int_equal(whole + dropped, FLOOD); /* every request line written or counted */
}

/* The pipe filled to its last byte (here by the test), SIGTERM: the
 * engine says it stops and exits, not waiting for the reader. */
static void test_stalled_stderr_sigterm_stops(void **state)
{
    (void)state;
    char fifo[1100];
    snprintf(fifo, sizeof fifo, "%s/engine.log", fx.root);
    int w = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(w >= 0);
    char fill[4096];
    memset(fill, '.', sizeof fill);
    size_t chunk = sizeof fill;
    while (chunk > 0) { /* pages, then what room is left byte by byte */
        if (write(w, fill, chunk) < 0) {
            chunk /= 2;
        }
    }
    close(w);
    assert_int_equal(kill(fx.pid, SIGTERM), 0);
    if (tu_wait_exit(fx.pid, 10) < 0) {
        fail_msg("SIGTERM: ocps-engine still runs after 10 s (it waits for its stderr reader)");
    }
    fx.pid = -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stalled_stderr_never_blocks_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_stderr_sigterm_stops, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
