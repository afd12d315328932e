/* child_cmd.c - see child_cmd.h. */
#include "ocps/child_cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

typedef struct child_cmd_buf {
    char *data;
    size_t len;
} child_cmd_buf;

struct child_cmd {
    uv_process_t proc;
    uv_pipe_t out_pipe;
    uv_pipe_t err_pipe;
    uv_timer_t timer;
    child_cmd_buf out;
    child_cmd_buf err;
    size_t max_output;
    int open;    /* handles not yet closed */
    int waiting; /* exit + 2 EOFs still to come */
    int status;
    bool exited;
    bool timed_out;
    bool cancelled;
    child_cmd_cb cb;
    void *arg;
};

static void child_cmd_on_closed(uv_handle_t *h)
{
    child_cmd *c = h->data;
    if (--c->open > 0) {
        return;
    }
    if (c->cb != NULL && !c->cancelled) {
        c->cb(c->arg, c->status, c->timed_out, c->out.data != NULL ? c->out.data : "",
              c->err.data != NULL ? c->err.data : "");
    }
    free(c->out.data);
    free(c->err.data);
    free(c);
}

static void child_cmd_close_all(child_cmd *c)
{
    uv_close((uv_handle_t *)&c->proc, child_cmd_on_closed);
    uv_close((uv_handle_t *)&c->out_pipe, child_cmd_on_closed);
    uv_close((uv_handle_t *)&c->err_pipe, child_cmd_on_closed);
    uv_close((uv_handle_t *)&c->timer, child_cmd_on_closed);
}

static void child_cmd_step(child_cmd *c)
{
    if (--c->waiting == 0) {
        child_cmd_close_all(c);
    }
}

static void child_cmd_on_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    child_cmd *c = p->data;
    c->exited = true;
    c->status = term_signal != 0 ? 128 + term_signal : (int)exit_status;
    uv_timer_stop(&c->timer);
    child_cmd_step(c);
}

static void child_cmd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base != NULL ? suggested : 0;
}

static void child_cmd_append(child_cmd_buf *b, size_t max, const char *data, size_t n)
{
    if (b->len + n > max) {
        n = max > b->len ? max - b->len : 0; /* the rest is dropped */
    }
    char *d = realloc(b->data, b->len + n + 1);
    if (d == NULL) {
        return;
    }
    memcpy(d + b->len, data, n);
    b->len += n;
    d[b->len] = '\0';
    b->data = d;
}

static void child_cmd_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    child_cmd *c = s->data;
    if (n > 0) {
        child_cmd_append(s == (uv_stream_t *)&c->out_pipe ? &c->out : &c->err, c->max_output, buf->base,
                         (size_t)n);
    }
    free(buf->base);
    if (n < 0) {
        uv_read_stop(s);
        child_cmd_step(c);
    }
}

static void child_cmd_on_timer(uv_timer_t *t)
{
    child_cmd *c = t->data;
    c->timed_out = true;
    child_cmd_signal(c, SIGKILL);
}

int child_cmd_start(child_cmd **out, uv_loop_t *loop, char *const argv[], char *const env[], double timeout,
                    size_t max_output, child_cmd_cb cb, void *arg, char *err, size_t errlen)
{
    *out = NULL;
    child_cmd *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->cb = cb;
    c->arg = arg;
    c->max_output = max_output;
    uv_pipe_init(loop, &c->out_pipe, 0);
    uv_pipe_init(loop, &c->err_pipe, 0);
    uv_timer_init(loop, &c->timer);
    c->proc.data = c->out_pipe.data = c->err_pipe.data = c->timer.data = c;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out_pipe},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->err_pipe},
    };
    uv_process_options_t o = {
        .file = argv[0],
        .args = (char **)argv,
        .env = (char **)env,
        .stdio = stdio,
        .stdio_count = 3,
        .exit_cb = child_cmd_on_exit,
    };
    int rc = uv_spawn(loop, &c->proc, &o);
    c->open = 4;
    if (rc != 0) {
        snprintf(err, errlen, "cannot run %s: %s", argv[0], uv_strerror(rc));
        c->cancelled = true; /* no callback: the caller has the error */
        child_cmd_close_all(c);
        return rc;
    }
    c->waiting = 3;
    uv_read_start((uv_stream_t *)&c->out_pipe, child_cmd_alloc, child_cmd_on_read);
    uv_read_start((uv_stream_t *)&c->err_pipe, child_cmd_alloc, child_cmd_on_read);
    if (timeout > 0) {
        uv_timer_start(&c->timer, child_cmd_on_timer, (uint64_t)(timeout * 1000), 0);
    }
    *out = c;
    return 0;
}

void child_cmd_signal(child_cmd *c, int signum)
{
    if (c != NULL && !c->exited) {
        uv_process_kill(&c->proc, signum);
    }
}

bool child_cmd_exited(const child_cmd *c)
{
    return c == NULL || c->exited;
}

void child_cmd_cancel(child_cmd *c)
{
    if (c != NULL && !c->cancelled) {
        c->cancelled = true;
        child_cmd_signal(c, SIGKILL);
    }
}

/* Length of NAME in "NAME=VALUE" (the whole string if there is no '='). */
static size_t child_cmd_name_len(const char *s)
{
    const char *eq = strchr(s, '=');
    return eq != NULL ? (size_t)(eq - s) : strlen(s);
}

/* Is `s` replaced by an entry of extra at index >= from? */
static bool child_cmd_overridden(const char *s, char *const *extra, size_t from)
{
    size_t ls = child_cmd_name_len(s);
    for (size_t i = from; extra != NULL && extra[i] != NULL; i++) {
        if (child_cmd_name_len(extra[i]) == ls && strncmp(s, extra[i], ls) == 0) {
            return true;
        }
    }
    return false;
}

static size_t child_cmd_strv_len(char *const *v)
{
    size_t n = 0;
    while (v != NULL && v[n] != NULL) {
        n++;
    }
    return n;
}

char **child_cmd_env(char *const *base, char *const *extra)
{
    if (base == NULL) {
        base = environ;
    }
    size_t nbase = child_cmd_strv_len(base);
    size_t nextra = child_cmd_strv_len(extra);
    char **v = calloc(nbase + nextra + 1, sizeof *v);
    if (v == NULL) {
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < nbase + nextra; i++) {
        const char *s = i < nbase ? base[i] : extra[i - nbase];
        bool replaced =
            i < nbase ? child_cmd_overridden(s, extra, 0) : child_cmd_overridden(s, extra, i - nbase + 1);
        if (!replaced && (v[n] = strdup(s)) == NULL) {
            child_cmd_env_free(v);
            return NULL;
        }
        n += replaced ? 0 : 1;
    }
    return v;
}

void child_cmd_env_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++) {
        free(v[i]);
    }
    free(v);
}
