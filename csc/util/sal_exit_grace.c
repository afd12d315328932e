/*
 * sal_exit_grace.c - a bounded wait for a closing program (sal_exit_grace.h).
 */
#include "ocps/sal_exit_grace.h"

#include "ocps/sal_errout.h"

#include <stdbool.h>
#include <unistd.h>

static void sal_exit_grace_expired(uv_timer_t *t)
{
    sal_exit_grace *g = t->data;
    sal_errout_linger(1.0); /* the last line: may wait a little for a slow reader */
    sal_errout_say("%s: still closing %g s after it was asked to stop (a step waiting for a file system "
                   "that does not answer?); exiting without waiting for it: its work is taken up again "
                   "at the next start",
                   g->program, g->seconds);
    _exit(*g->exit_code);
}

void sal_exit_grace_start(sal_exit_grace *g, uv_loop_t *loop, double seconds, const char *program,
                          const int *exit_code)
{
    if (g->started) {
        return;
    }
    g->program = program;
    g->exit_code = exit_code;
    g->seconds = seconds;
    uv_timer_init(loop, &g->timer);
    g->timer.data = g;
    uv_timer_start(&g->timer, sal_exit_grace_expired, (uint64_t)(seconds * 1000.0), 0);
    uv_unref((uv_handle_t *)&g->timer);
    g->started = true;
}

void sal_exit_grace_close(sal_exit_grace *g, uv_loop_t *loop)
{
    if (!g->started) {
        return;
    }
    uv_close((uv_handle_t *)&g->timer, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    g->started = false;
}
