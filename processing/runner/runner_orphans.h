/*
 * runner_orphans.h - processes a job left outside its process group.
 *
 * The runner is the subreaper of its job (PR_SET_CHILD_SUBREAPER): a
 * process of the job that left its process group (setsid, a daemon's
 * double fork) and was orphaned becomes the runner's child, so that it can
 * be found and ended with the job.
 */
#ifndef RUNNER_ORPHANS_H
#define RUNNER_ORPHANS_H

#include <sys/types.h>

/* Reap the runner's ended children other than `leader` (0: any). */
void runner_reap_others(pid_t leader);

/* End the runner's children (orphans of the job, found as their
 * subreaper): SIGTERM and SIGCONT, SIGKILL after `grace` seconds, reaped;
 * one line in the job's log when there were any. Returns when none is
 * left (or 5 s after the SIGKILLs). */
void runner_sweep_orphans(double grace);

#endif
