/*
 * claim_write_fails.c - an LD_PRELOAD library for ocps-job-runner-dynamic:
 * the Nth "job ..." line written to a runner's claim
 * (OCPS_TEST_CLAIM_FAIL_AT=N) fails with ENOSPC, as on a disk that filled
 * between two steps of a job. Every other write goes to the C library's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int claim_lines_seen; /* this process's "job" lines written to a claim */

static int is_claim(int fd)
{
    char link[64];
    char path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) {
        return 0;
    }
    path[n] = '\0';
    const char *base = strrchr(path, '/');
    /* opened as runner.claim.PID, linked as runner.claim, then unlinked */
    return base != NULL && strncmp(base + 1, "runner.claim", 12) == 0;
}

ssize_t write(int fd, const void *buf, size_t len)
{
    ssize_t (*real)(int, const void *, size_t) =
        (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    const char *at = getenv("OCPS_TEST_CLAIM_FAIL_AT");
    if (at != NULL && len >= 4 && memcmp(buf, "job ", 4) == 0 && is_claim(fd) &&
        ++claim_lines_seen == atoi(at)) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, len);
}
