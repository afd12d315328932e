/*
 * sal_proc.h - run a short helper program (git) to completion, capturing
 * its output. Blocking: call it from a worker thread, never from the loop.
 */
#ifndef SAL_PROC_H
#define SAL_PROC_H

#include <stddef.h>

/* Run argv[0] (PATH lookup, no shell) with stdin from /dev/null; stdout
 * and stderr go into out (NUL-terminated, truncated to outlen - 1; trailing
 * newlines removed). Killed after timeout seconds. Returns the exit status,
 * 128+signal if killed, or -1 with the reason in out if it could not be
 * started. */
int sal_proc_run(char *const argv[], char *out, size_t outlen, double timeout);

/* sal_proc_capture: stdout was longer than max bytes (the child is killed). */
#define SAL_PROC_TOO_LONG (-2)

/* Run argv[0] as sal_proc_run does, keeping its standard output whole and
 * apart: *data (malloc'd, caller frees; a NUL after the *len bytes) gets
 * every byte of it, NUL bytes and final newlines included; stderr goes into
 * err (NUL-terminated, truncated, trailing newlines removed). Returns the
 * exit status, 128+signal if killed (timeout), SAL_PROC_TOO_LONG if stdout
 * exceeded max bytes, or -1 with the reason in err if it could not be
 * started or memory ran out. *data is NULL unless the status is >= 0. */
int sal_proc_capture(char *const argv[], size_t max, double timeout, char **data, size_t *len, char *err,
                     size_t errlen);

#endif
