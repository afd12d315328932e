/*
 * test_stallfs: the hung-mount fixture (support/stallfs_fixture.h) does
 * what the tests that use it rely on: files pass through to the backing
 * directory; while stalled, a call under the mount blocks until the stall
 * is released, then completes, and, as on a hard NFS mount, only a fatal
 * signal ends the wait; a stall of the paths with a name holds up no
 * other path; stopping leaves no mount. Exits 77 (skip)
 * where FUSE cannot be mounted.
 */
#include <errno.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
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

#include "stallfs_fixture.h"
#include "test_util.h"

static int setup(void **state)
{
    stallfs_fx *s = calloc(1, sizeof *s);
    assert_non_null(s);
    char err[512];
    int rc = sfx_start(s, OCPS_STALLFS, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "sfx_start: %s\n", err);
        sfx_stop(s);
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    stallfs_fx *s = *state;
    sfx_stop(s);
    free(s);
    return 0;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A file written through the mount is in the backing directory. */
static void test_passes_through(void **state)
{
    stallfs_fx *s = *state;
    char path[700];
    snprintf(path, sizeof path, "%s/f", s->mount);
    assert_int_equal(tu_write_file(path, "hello\n", 6), 0);
    snprintf(path, sizeof path, "%s/f", s->backing);
    char *text = tu_read_file(path, NULL);
    assert_non_null(text);
    assert_string_equal(text, "hello\n");
    free(text);
}

/* mkdir under a stalled mount returns only when the stall ends. */
static void test_mkdir_blocks_while_stalled(void **state)
{
    stallfs_fx *s = *state;
    char path[700];
    snprintf(path, sizeof path, "%s/d", s->mount);
    assert_int_equal(sfx_stall_for(s, 1.0), 0);
    assert_true(sfx_stalled(s));
    double t0 = tu_now();
    assert_int_equal(mkdir(path, 0755), 0);
    double took = tu_now() - t0;
    printf("# mkdir under the stalled mount took %.3f s\n", took);
    assert_true(took > 0.8);
    assert_false(sfx_stalled(s));
    snprintf(path, sizeof path, "%s/d", s->backing);
    assert_true(is_dir(path));
    sfx_unstall(s);
    t0 = tu_now();
    snprintf(path, sizeof path, "%s/e", s->mount);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_true(tu_now() - t0 < 0.5);
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* A process blocked on the stalled mount: a signal it handles does not
 * end its wait (it is still there after it); SIGKILL does, at once,
 * while the mount still hangs (the process's exit is not held up). */
static void test_only_a_fatal_signal_ends_a_wait(void **state)
{
    stallfs_fx *s = *state;
    char path[700];
    snprintf(path, sizeof path, "%s/k", s->mount);
    assert_int_equal(sfx_stall_for(s, 20.0), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART */
        sigaction(SIGUSR1, &sa, NULL);
        _exit(mkdir(path, 0755) == 0 ? 0 : errno == EINTR ? 3 : 4);
    }
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_int_equal(kill(pid, SIGUSR1), 0);
    nanosleep(&pause, NULL);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still blocked */
    double t0 = tu_now();
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status = tu_wait_exit(pid, 5.0);
    double took = tu_now() - t0;
    printf("# SIGKILL of a process blocked on the stalled mount: status %d after %.3f s\n", status, took);
    assert_true(sfx_stalled(s));
    assert_int_equal(status, 128 + SIGKILL);
    assert_true(took < 2.0);
    sfx_unstall(s);
}

/* sfx_stall_paths stalls only the paths containing its name: a stat of
 * a path with the name waits until the stall is released, then answers,
 * while calls on other paths under the mount are answered at once. */
static void test_stall_paths_with_a_name(void **state)
{
    stallfs_fx *s = *state;
    char slow[700];
    char fast[700];
    snprintf(fast, sizeof fast, "%s/d", s->mount);
    assert_int_equal(mkdir(fast, 0755), 0);
    snprintf(slow, sizeof slow, "%s/d/.slow-mark", s->mount);
    assert_int_equal(tu_write_file(slow, "", 0), 0);
    assert_int_equal(sfx_stall_paths(s, ".slow-mark"), 0);
    assert_true(sfx_stalled(s));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct stat st;
        _exit(stat(slow, &st) == 0 ? 0 : 4);
    }
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    double t0 = tu_now();
    struct stat st; /* not in d: the child's lookup holds d's lock */
    assert_int_equal(stat(fast, &st), 0);
    snprintf(fast, sizeof fast, "%s/e", s->mount);
    assert_int_equal(mkdir(fast, 0755), 0);
    double took = tu_now() - t0;
    printf("# stat and mkdir of other paths took %.3f s\n", took);
    assert_true(took < 2.0); /* answered (stalled, they would wait until the release below) */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still blocked */
    sfx_unstall(s);
    assert_int_equal(tu_wait_exit(pid, 5.0), 0);
}

/* sfx_stop unmounts: the mount point is gone from /proc/self/mounts. */
static void test_stop_unmounts(void **state)
{
    stallfs_fx *s = *state;
    char mount[600];
    snprintf(mount, sizeof mount, "%s", s->mount);
    char needle[700];
    snprintf(needle, sizeof needle, " %s ", mount);
    assert_int_equal(sfx_stall(s), 0);
    sfx_stop(s);
    char *mounts = tu_read_file("/proc/self/mounts", NULL);
    assert_non_null(mounts);
    assert_null(strstr(mounts, needle));
    free(mounts);
}

int main(void)
{
    if (sfx_unavailable(OCPS_STALLFS)) {
        return SFX_UNAVAILABLE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passes_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_blocks_while_stalled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_a_fatal_signal_ends_a_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall_paths_with_a_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_unmounts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
