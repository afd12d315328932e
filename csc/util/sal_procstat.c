/*
 * sal_procstat.c - /proc/PID/stat (sal_procstat.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "ocps/sal_procstat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sal_procstat_read(long long pid, sal_procstat *out)
{
    char path[64];
    char buf[1024];
    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name (field 2) is in parentheses and may hold anything:
     * the fields that follow start after its last ')' */
    const char *p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 1, " %c %ld %ld %ld", &out->state, &out->ppid, &out->pgrp, &out->session) != 4) {
        errno = EINVAL;
        return -1;
    }
    for (int field = 2; p != NULL && field < 22; field++) {
        p = strchr(p + 1, ' ');
    }
    if (p == NULL) {
        errno = EINVAL;
        return -1;
    }
    out->start = strtoull(p + 1, NULL, 10);
    return 0;
}
