/*
 * sal_procstat.h - the fields of /proc/PID/stat that tell a process apart
 * from a later one with the same pid (its start time) and say whether it
 * still runs (its state), and where it belongs (its group and session).
 */
#ifndef SAL_PROCSTAT_H
#define SAL_PROCSTAT_H

/* What /proc/PID/stat says of a process. */
typedef struct sal_procstat {
    char state;               /* field 3: R, S, D, T, Z (zombie), X (dead) ... */
    long ppid;                /* field 4 */
    long pgrp;                /* field 5 */
    long session;             /* field 6 */
    unsigned long long start; /* field 22: start time, clock ticks after boot */
} sal_procstat;

/* Read /proc/PID/stat of pid into out: 0, or -1 with errno set (ENOENT:
 * no such process here; EINVAL: a line that cannot be parsed). */
int sal_procstat_read(long long pid, sal_procstat *out);

#endif
