/*
 * sal_exit_grace.h - a program that is closing ends within a bound even when
 * work it cannot cancel holds its loop: a step on libuv's thread pool
 * blocked in a file system call on a mount that hangs (an NFS server that
 * stopped answering) keeps uv_run going, and libuv would also wait for that
 * thread at exit. What such steps were doing must be safe to lose (the
 * next start takes it up again); the grace only says how long to wait.
 */
#ifndef SAL_EXIT_GRACE_H
#define SAL_EXIT_GRACE_H

#include <stdbool.h>

#include <uv.h>

typedef struct sal_exit_grace {
    uv_timer_t timer;
    const char *program; /* named in the message */
    const int *exit_code;
    double seconds;
    bool started;
} sal_exit_grace;

/* Start the grace on loop, once the program has closed what it owns: if
 * the loop is still running `seconds` later, say so on stderr (naming
 * `program`) and end the process with _exit(*exit_code) at once (no atexit
 * handler, no wait for the thread pool). The timer does not keep the loop
 * alive. program and exit_code must outlive the grace. */
void sal_exit_grace_start(sal_exit_grace *g, uv_loop_t *loop, double seconds, const char *program,
                          const int *exit_code);

/* After uv_run has returned: close the grace's timer (if started) and run
 * the loop until it is closed. */
void sal_exit_grace_close(sal_exit_grace *g, uv_loop_t *loop);

#endif
