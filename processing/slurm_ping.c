/*
 * slurm_ping.c - see slurm_ping.h. The controller answers when
 * `scontrol ping` exits 0 and one of its lines says "is UP" (the primary,
 * or a backup while the primary is down); anything else (exit status,
 * every controller DOWN, no answer before the timeout, scontrol missing)
 * is reported with what scontrol printed.
 */
#include "ocps/slurm_ping.h"
#include "ocps/child_cmd.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLURM_PING_OUT_MAX 4096

struct slurm_ping {
    child_cmd *cmd;
    slurm_ping_cb cb;
    void *arg;
};

/* The line of `text` that says " is UP" (the primary's or, while it is
 * down, a backup controller's), cut at its end in place; NULL if none. */
static char *slurm_ping_up_line(char *text)
{
    for (char *line = text; line != NULL && *line != '\0';) {
        char *end = strchr(line, '\n');
        if (end != NULL) {
            *end = '\0';
        }
        if (strstr(line, " is UP") != NULL) {
            return line + strspn(line, " ");
        }
        line = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

int slurm_ping_judge(int status, bool timed_out, const char *out, const char *errout, char *msg,
                     size_t msglen)
{
    char text[SLURM_PING_OUT_MAX];
    snprintf(text, sizeof text, "%s%s", out, errout);
    char first[SLURM_PING_OUT_MAX];
    const char *start = text + strspn(text, "\n ");
    snprintf(first, sizeof first, "%.*s", (int)strcspn(start, "\n"), start); /* it says what went wrong */
    char *up = !timed_out && status == 0 ? slurm_ping_up_line(text) : NULL;
    if (up != NULL) {
        snprintf(msg, msglen, "%s", up);
    } else if (timed_out) {
        snprintf(msg, msglen, "scontrol ping did not answer in time%s%s", first[0] ? ": " : "", first);
    } else {
        snprintf(msg, msglen, "scontrol ping exited with %d: %s", status, first[0] ? first : "(no output)");
    }
    return up != NULL ? 1 : 0;
}

/* scontrol has ended: the answer. */
static void slurm_ping_ended(void *arg, int status, bool timed_out, const char *out, const char *errout)
{
    slurm_ping *p = arg;
    char msg[SLURM_PING_OUT_MAX + 200];
    int up = slurm_ping_judge(status, timed_out, out, errout, msg, sizeof msg);
    p->cb(p->arg, up, msg);
    free(p);
}

int slurm_ping_start(slurm_ping **out, uv_loop_t *loop, const char *slurm_conf, double timeout,
                     slurm_ping_cb cb, void *arg, char *err, size_t errlen)
{
    *out = NULL;
    slurm_ping *p = calloc(1, sizeof *p);
    char **env = NULL;
    if (p != NULL && slurm_conf != NULL && slurm_conf[0] != '\0') {
        size_t len = strlen(slurm_conf) + sizeof "SLURM_CONF=";
        char *conf = malloc(len);
        if (conf != NULL) {
            snprintf(conf, len, "SLURM_CONF=%s", slurm_conf);
            char *extra[] = {conf, NULL};
            env = child_cmd_env(NULL, extra);
            free(conf);
        }
        if (env == NULL) {
            free(p);
            p = NULL;
        }
    }
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->cb = cb;
    p->arg = arg;
    char *argv[] = {"scontrol", "ping", NULL};
    int rc = child_cmd_start(&p->cmd, loop, argv, env, timeout > 0 ? timeout : 10, SLURM_PING_OUT_MAX / 2,
                             slurm_ping_ended, p, err, errlen);
    child_cmd_env_free(env);
    if (rc != 0) {
        free(p);
        return -1;
    }
    *out = p;
    return 0;
}

void slurm_ping_cancel(slurm_ping *p)
{
    if (p != NULL) {
        child_cmd_cancel(p->cmd); /* it will not call back */
        free(p);
    }
}
