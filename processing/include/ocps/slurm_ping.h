/*
 * slurm_ping.h - does the Slurm controller answer? `scontrol ping` run as a
 * child process on the caller's libuv loop (never blocking it), stopped
 * after a timeout. The OCPS application asks it before a start with
 * executor slurm is accepted (docs/slurm.md).
 */
#ifndef SLURM_PING_H
#define SLURM_PING_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

typedef struct slurm_ping slurm_ping;

/* The answer, on the loop: ok 1 when the controller answered, else 0 with
 * the reason in `message` (valid during the call only). */
typedef void (*slurm_ping_cb)(void *arg, int ok, const char *message);

/* Start `scontrol ping` with SLURM_CONF=slurm_conf (NULL or "": the
 * inherited environment's); cb runs once, at the latest `timeout` seconds
 * later (then the command is killed). 0, or -1 with a message in err (cb
 * is not called then). */
int slurm_ping_start(slurm_ping **out, uv_loop_t *loop, const char *slurm_conf, double timeout,
                     slurm_ping_cb cb, void *arg, char *err, size_t errlen);

/* Judge what `scontrol ping` printed (out, errout) and its exit status:
 * 1 if a controller is up (exit 0 and a line "Slurmctld(...) at HOST is
 * UP": the primary, or a backup while the primary is DOWN), with that line
 * in msg; else 0 with the reason in msg. */
int slurm_ping_judge(int status, bool timed_out, const char *out, const char *errout, char *msg,
                     size_t msglen);

/* Give up a ping whose answer is no longer wanted: the command is killed,
 * cb is not called, and `p` is freed on the loop once its handles have
 * closed. */
void slurm_ping_cancel(slurm_ping *p);

#endif
