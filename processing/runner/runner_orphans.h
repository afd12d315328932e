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

#include <stdbool.h>
#include <sys/types.h>

#include "runner_log.h"

/* Reap the runner's ended children other than `leader` (0: any). */
void runner_reap_others(pid_t leader);

/* After the job's leader has ended, end what is left of the job by
 * `kill_at` (sal_clock_monotonic time): the rest of its process group `group`
 * (sent SIGTERM by the caller; group_killed: SIGKILL too already), and
 * the runner's children outside that group (orphans of the job, found as
 * their subreaper: SIGTERM and SIGCONT once when found, a line in the
 * job's log). At kill_at whatever is left gets SIGKILL, once. Reaps the
 * runner's children and keeps reading the job's output from `log`
 * meanwhile; returns when nothing is left, or 5 s after kill_at. */
void runner_sweep(pid_t group, bool group_killed, double kill_at, runner_log *log);

#endif
