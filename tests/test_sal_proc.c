/*
 * test_sal_proc: running a helper program from a worker thread
 * (csc/util/sal_proc.h) while the loop thread spawns other children, as the
 * CSC runs git on the thread pool while the engine starts job runners.
 * The pipe sal_proc_run reads must never leak into those children: a child
 * holding its write end keeps the read from seeing EOF, and the run (and a
 * pool thread) blocks until that child exits or the timeout passes.
 * And sal_proc_capture keeps a helper's standard output whole.
 */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ocps/sal_proc.h"
#include "test_util.h"

extern char **environ;

typedef struct runs {
    atomic_bool stop;
    long n;
    long failures;
    double worst; /* longest run, s */
} runs;

static void *run_helpers(void *arg)
{
    runs *r = arg;
    char *argv[] = {"true", NULL};
    char out[256];
    while (!atomic_load(&r->stop)) {
        double t0 = tu_now();
        int rc = sal_proc_run(argv, out, sizeof out, 20);
        double dt = tu_now() - t0;
        r->worst = dt > r->worst ? dt : r->worst;
        r->failures += rc != 0;
        r->n++;
    }
    return NULL;
}

/* The pipes /proc/<pid>/fd lists beyond stdin, stdout and stderr, as
 * "pipe:[inode]" strings joined by spaces. */
static void pipes_of(const char *pid, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/fd", pid);
    out[0] = '\0';
    DIR *d = opendir(path);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || atoi(e->d_name) <= 2) {
            continue;
        }
        char link[320];
        char target[64];
        snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0 && strncmp(target, "pipe:", 5) == 0) {
            target[n] = '\0';
            size_t used = strlen(out);
            snprintf(out + used, len - used, "%s ", target);
        }
    }
    closedir(d);
}

/* Pipes inherited from whoever started the test (ctest, a shell): every
 * child has them. */
static char inherited[4096];

/* How many pipes child `pid` holds that the test did not inherit. */
static int pipes_held(pid_t pid)
{
    char name[32];
    char held[4096];
    snprintf(name, sizeof name, "%d", (int)pid);
    pipes_of(name, held, sizeof held);
    int n = 0;
    for (char *tok = strtok(held, " "); tok != NULL; tok = strtok(NULL, " ")) {
        n += strstr(inherited, tok) == NULL;
    }
    return n;
}

/* Children spawned (plain posix_spawn, inheriting every fd not marked
 * close-on-exec) while another thread runs helpers: no child may hold a
 * helper's pipe, and no run may wait for such a child. */
static void concurrent_spawns_do_not_inherit_the_helper_pipe(void **state)
{
    (void)state;
    pipes_of("self", inherited, sizeof inherited);
    runs r = {.worst = 0};
    atomic_init(&r.stop, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_helpers, &r), 0);
    char *argv[] = {"sleep", "3", NULL};
    enum { MAX_LIVE = 64 };
    pid_t live[MAX_LIVE];
    int nlive = 0;
    long spawned = 0;
    int leaks = 0;
    double end = tu_now() + 8.0;
    while (tu_now() < end && leaks == 0) {
        if (nlive == MAX_LIVE) { /* stop the oldest */
            kill(live[0], SIGKILL);
            waitpid(live[0], NULL, 0);
            memmove(live, live + 1, sizeof live[0] * (MAX_LIVE - 1));
            nlive--;
        }
        pid_t pid;
        assert_int_equal(posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ), 0);
        live[nlive++] = pid;
        spawned++;
        /* the kernel wakes a vfork parent (posix_spawn) when the child's
         * exec has replaced its memory, a moment before it closes the
         * close-on-exec descriptors: look again after that moment; an
         * inherited pipe stays for the child's 3 s */
        if (pipes_held(pid) > 0) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            leaks += pipes_held(pid) > 0;
        }
    }
    atomic_store(&r.stop, true);
    pthread_join(th, NULL);
    for (int i = 0; i < nlive; i++) {
        kill(live[i], SIGKILL);
        waitpid(live[i], NULL, 0);
    }
    print_message("%ld children spawned, %ld helper runs, longest %.3f s, %d children holding a pipe\n",
                  spawned, r.n, r.worst, leaks);
    assert_true(r.n > 0);
    assert_int_equal(r.failures, 0);
    assert_int_equal(leaks, 0);
    assert_true(r.worst < 2.5); /* not the 3 s of the child's sleep */
}

/* sal_proc_capture keeps a helper's output whole, as git show of a
 * configuration file needs: NUL bytes and final newlines kept, stderr
 * apart, output over the bound refused rather than cut. */
static void capture_keeps_the_output_whole(void **state)
{
    (void)state;
    char *data;
    size_t len;
    char err[256];
    char *both[] = {"sh", "-c", "printf 'a\\000b\\n\\n'; echo warning >&2", NULL};
    assert_int_equal(sal_proc_capture(both, 100, 10, &data, &len, err, sizeof err), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "a\0b\n\n", 5);
    assert_int_equal(data[len], '\0');
    assert_string_equal(err, "warning");
    free(data);

    /* 70000 bytes, over one read and the first buffer, exactly the bound */
    char *big[] = {"sh", "-c", "head -c 70000 /dev/zero", NULL};
    assert_int_equal(sal_proc_capture(big, 70000, 10, &data, &len, err, sizeof err), 0);
    assert_int_equal(len, 70000);
    assert_int_equal(data[69999], '\0');
    free(data);
    assert_int_equal(sal_proc_capture(big, 69999, 10, &data, &len, err, sizeof err), SAL_PROC_TOO_LONG);
    assert_null(data);

    /* a failure keeps its stderr; a child that cannot be run says so */
    char *fails[] = {"sh", "-c", "echo bad ref >&2; exit 128", NULL};
    assert_int_equal(sal_proc_capture(fails, 100, 10, &data, &len, err, sizeof err), 128);
    assert_string_equal(err, "bad ref");
    free(data);
    /* an exit status over 128 is not a signal: the output is kept */
    char *high[] = {"sh", "-c", "printf out; exit 129", NULL};
    assert_int_equal(sal_proc_capture(high, 100, 10, &data, &len, err, sizeof err), 129);
    assert_non_null(data);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "out", 3);
    free(data);
    char *missing[] = {"/nonexistent/helper", NULL};
    assert_int_equal(sal_proc_capture(missing, 100, 10, &data, &len, err, sizeof err), -1);
    assert_null(data);
    assert_non_null(strstr(err, "cannot run /nonexistent/helper"));

    /* killed at the timeout */
    char *slow[] = {"sleep", "5", NULL};
    double t0 = tu_now();
    assert_int_equal(sal_proc_capture(slow, 100, 0.2, &data, &len, err, sizeof err), 128 + SIGKILL);
    assert_true(tu_now() - t0 < 2.0);
    assert_null(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(capture_keeps_the_output_whole),
        cmocka_unit_test(concurrent_spawns_do_not_inherit_the_helper_pipe),
    };
    return cmocka_run_group_tests_name("sal_proc", tests, NULL, NULL);
}
