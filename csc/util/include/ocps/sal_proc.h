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

#endif
