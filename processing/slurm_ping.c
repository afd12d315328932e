/*
 * slurm_ping.c - see slurm_ping.h. The controller answers when
 * `scontrol ping` exits 0 and says "is UP"; anything else (exit status,
 * "is DOWN", no answer before the timeout, scontrol missing) is reported
 * with what scontrol printed.
 */
#include "ocps/slurm_ping.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define SLURM_PING_OUT_MAX 4096

struct slurm_ping {
    uv_process_t proc;
    uv_pipe_t out;
    uv_pipe_t errout;
    uv_timer_t timer;
    int open;    /* handles not yet closed */
    int waiting; /* exit + 2 EOFs still to come */
    int status;
    bool timed_out;
    bool cancelled;
    bool answered;
    char text[SLURM_PING_OUT_MAX]; /* stdout and stderr */
    size_t len;
    slurm_ping_cb cb;
    void *arg;
};

static void slurm_ping_closed(uv_handle_t *h)
{
    slurm_ping *p = h->data;
    if (--p->open == 0) {
        free(p);
    }
}

/* The answer once the command has ended and its output is read. */
static void slurm_ping_answer(slurm_ping *p)
{
    if (!p->answered && !p->cancelled) {
        p->answered = true;
        p->text[p->len] = '\0';
        char *first = p->text + strspn(p->text, "\n "); /* its first line says it all */
        first[strcspn(first, "\n")] = '\0';
        char msg[SLURM_PING_OUT_MAX + 200];
        bool up = p->status == 0 && strstr(first, " is UP") != NULL;
        if (p->timed_out) {
            snprintf(msg, sizeof msg, "scontrol ping did not answer in time%s%s", first[0] ? ": " : "",
                     first);
        } else {
            snprintf(msg, sizeof msg, "scontrol ping exited with %d: %s", p->status,
                     first[0] ? first : "(no output)");
        }
        p->cb(p->arg, up ? 1 : 0, up ? first : msg);
    }
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->proc, slurm_ping_closed);
    uv_close((uv_handle_t *)&p->out, slurm_ping_closed);
    uv_close((uv_handle_t *)&p->errout, slurm_ping_closed);
    uv_close((uv_handle_t *)&p->timer, slurm_ping_closed);
}

static void slurm_ping_step(slurm_ping *p)
{
    if (--p->waiting == 0) {
        slurm_ping_answer(p);
    }
}

static void slurm_ping_on_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    slurm_ping *p = proc->data;
    p->status = term_signal != 0 ? 128 + term_signal : (int)exit_status;
    slurm_ping_step(p);
}

static void slurm_ping_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base != NULL ? suggested : 0;
}

/* stdout and stderr both go to text (what does not fit is dropped). */
static void slurm_ping_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    slurm_ping *p = s->data;
    size_t room = sizeof p->text - 1 - p->len;
    size_t take = n > 0 ? ((size_t)n < room ? (size_t)n : room) : 0;
    memcpy(p->text + p->len, buf->base, take);
    p->len += take;
    free(buf->base);
    if (n < 0) {
        uv_read_stop(s);
        slurm_ping_step(p);
    }
}

static void slurm_ping_on_timer(uv_timer_t *t)
{
    slurm_ping *p = t->data;
    p->timed_out = true;
    uv_process_kill(&p->proc, SIGKILL);
}

/* environ with SLURM_CONF replaced: a NULL-terminated array that borrows
 * environ's strings, and *conf_entry (both freed by the caller). */
static char **slurm_ping_env(const char *slurm_conf, char **conf_entry)
{
    size_t n = 0;
    while (environ[n] != NULL) {
        n++;
    }
    char **v = calloc(n + 2, sizeof *v);
    size_t len = strlen(slurm_conf) + sizeof "SLURM_CONF=";
    *conf_entry = malloc(len);
    if (v == NULL || *conf_entry == NULL) {
        free(v);
        free(*conf_entry);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "SLURM_CONF=", 11) != 0) {
            v[k++] = environ[i];
        }
    }
    snprintf(*conf_entry, len, "SLURM_CONF=%s", slurm_conf);
    v[k] = *conf_entry;
    return v;
}

int slurm_ping_start(slurm_ping **out, uv_loop_t *loop, const char *slurm_conf, double timeout,
                     slurm_ping_cb cb, void *arg, char *err, size_t errlen)
{
    *out = NULL;
    slurm_ping *p = calloc(1, sizeof *p);
    char *conf_entry = NULL;
    char **env = NULL;
    if (p == NULL || (slurm_conf != NULL && slurm_conf[0] != '\0' &&
                      (env = slurm_ping_env(slurm_conf, &conf_entry)) == NULL)) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->cb = cb;
    p->arg = arg;
    uv_pipe_init(loop, &p->out, 0);
    uv_pipe_init(loop, &p->errout, 0);
    uv_timer_init(loop, &p->timer);
    p->proc.data = p->out.data = p->errout.data = p->timer.data = p;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->errout},
    };
    char *argv[] = {"scontrol", "ping", NULL};
    uv_process_options_t o = {
        .file = argv[0],
        .args = argv,
        .env = env,
        .stdio = stdio,
        .stdio_count = 3,
        .exit_cb = slurm_ping_on_exit,
    };
    int rc = uv_spawn(loop, &p->proc, &o);
    free(env);
    free(conf_entry);
    p->open = 4;
    if (rc != 0) {
        snprintf(err, errlen, "cannot run scontrol: %s", uv_strerror(rc));
        p->answered = true; /* no callback */
        slurm_ping_answer(p);
        return -1;
    }
    p->waiting = 3;
    uv_read_start((uv_stream_t *)&p->out, slurm_ping_alloc, slurm_ping_on_read);
    uv_read_start((uv_stream_t *)&p->errout, slurm_ping_alloc, slurm_ping_on_read);
    uint64_t ms = timeout > 0 ? (uint64_t)(timeout * 1000) : 10000;
    uv_timer_start(&p->timer, slurm_ping_on_timer, ms, 0);
    *out = p;
    return 0;
}

void slurm_ping_cancel(slurm_ping *p)
{
    if (p == NULL || p->cancelled) {
        return;
    }
    p->cancelled = true;
    if (!p->answered) {
        uv_process_kill(&p->proc, SIGKILL);
    }
}
