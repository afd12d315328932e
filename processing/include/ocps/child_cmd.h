/*
 * child_cmd.h - a short command run as a child process on a libuv loop,
 * never blocking it: stdin /dev/null, its stdout and stderr read into
 * memory, an optional time limit, one callback once it has ended and
 * everything it wrote is read. The engine's Slurm commands (sbatch,
 * squeue, scancel) and the start's `scontrol ping` run this way.
 */
#ifndef CHILD_CMD_H
#define CHILD_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

typedef struct child_cmd child_cmd;

/* The command has ended: status is its exit code, or 128 + the signal
 * that killed it; timed_out tells that the time limit killed it; out and
 * err are what it wrote (NUL-terminated, cut at max_output bytes each),
 * valid during the call. Runs on the loop once its handles have closed;
 * the command is freed right after. */
typedef void (*child_cmd_cb)(void *arg, int status, bool timed_out, const char *out, const char *err);

/* Run argv (argv[0] looked up in PATH) with env (a complete environment,
 * NULL: ours), killed with SIGKILL after timeout seconds (<= 0: no
 * limit). 0, or a negative errno with a message in err (cb is not called
 * then, and nothing is left to free). */
int child_cmd_start(child_cmd **out, uv_loop_t *loop, char *const argv[], char *const env[], double timeout,
                    size_t max_output, child_cmd_cb cb, void *arg, char *err, size_t errlen);

/* An environment for a child: `base` (NULL: this process's environ) with
 * the NAME=VALUE entries of `extra` (NULL-terminated; may be NULL) added;
 * an entry of extra replaces every entry of the same NAME in base and any
 * earlier one in extra. The strings are copies, owned by the vector: free
 * with child_cmd_env_free. NULL if out of memory. */
char **child_cmd_env(char *const *base, char *const *extra);

/* Free a vector from child_cmd_env (NULL is fine). */
void child_cmd_env_free(char **v);

/* Send the command a signal (if it still runs). */
void child_cmd_signal(child_cmd *c, int signum);

/* Has the command exited (its output may still be being read)? */
bool child_cmd_exited(const child_cmd *c);

/* No longer wanted: SIGKILL, and cb is not called; freed on the loop. */
void child_cmd_cancel(child_cmd *c);

#endif
