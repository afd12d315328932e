/*
 * ocps_cmd_repl.c - the commander's interactive mode. On a terminal it
 * uses libedit for line editing, history (~/.ocps_cmd_history) and tab
 * completion of commands, --fields and event names; from a pipe or file
 * it runs the lines as a script. Lines run one at a time; events print as
 * they arrive.
 *
 * readline's callback interface has no user argument, so the one REPL of
 * the process is reachable through `active` below: the only file-level
 * mutable state in the project, forced by that API.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "ocps_cmd_repl.h"
#include "ocps/sal_sample.h"

#define MAX_TOKENS 64

typedef struct line {
    struct line *next;
    char *text;
    bool too_long; /* cut at the buffer's size: refused, never run */
} line;

struct repl {
    cmdr *c;
    uv_handle_type input;
    uv_poll_t tty;  /* terminal input, fed to readline */
    uv_pipe_t pipe; /* script from a pipe */
    char partial[8192];
    size_t plen;
    bool overlong; /* the line being read no longer fits in partial */
    line *head;
    line *tail;
    bool busy;
    bool eof;
    bool exited; /* `exit` ran: the lines after it are not run */
    int failures;
    char history[512];
};

static repl *active;

static void push_line(repl *r, const char *text, size_t len)
{
    line *l = calloc(1, sizeof *l);
    if (l == NULL || (l->text = strndup(text, len)) == NULL) {
        free(l);
        return;
    }
    l->too_long = r->overlong;
    r->overlong = false;
    if (r->tail != NULL) {
        r->tail->next = l;
    } else {
        r->head = l;
    }
    r->tail = l;
}

/* Split a line into words: whitespace-separated, with '...' and "..."
 * quoting and backslash escapes. Returns the count or -1. */
static int tokenize(char *s, char **argv)
{
    int n = 0;
    char *out = s;
    while (*s != '\0') {
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        if (*s == '\0') {
            break;
        }
        if (n == MAX_TOKENS) {
            return -1;
        }
        argv[n++] = out;
        char quote = 0;
        while (*s != '\0' && (quote || (*s != ' ' && *s != '\t'))) {
            if (quote && *s == quote) {
                quote = 0;
            } else if (!quote && (*s == '"' || *s == '\'')) {
                quote = *s;
            } else if (*s == '\\' && s[1] != '\0' && quote != '\'') {
                *out++ = *++s;
            } else {
                *out++ = *s;
            }
            s++;
        }
        if (quote) {
            return -1;
        }
        if (*s != '\0') {
            s++;
        }
        *out++ = '\0';
    }
    return n;
}

static void help(cmdr *c)
{
    printf("commands (with --field value):\n");
    cmdr_list_topics(c->comp, stdout);
    printf("also: show EVENT (latest value), topics, help, exit\n");
}

/* Print the latest sample of event `name`; false (said on stderr) if the
 * component has no such event. */
static bool show(cmdr *c, const char *name)
{
    char full[160];
    snprintf(full, sizeof full, "logevent_%s", name);
    const char *sal_name = sal_component_find_topic(c->comp, full) >= 0 ? full : name;
    int topic = sal_component_find_topic(c->comp, sal_name);
    if (topic < 0 || c->comp->topics[topic].kind != SAL_TOPIC_EVENT) {
        fprintf(stderr, "ocps-cmd: %s has no event %s (`topics` lists them)\n", c->comp->name, name);
        return false;
    }
    const void *last = sal_remote_last(c->remote, sal_name);
    if (last == NULL) {
        printf("no %s received yet\n", sal_name);
        return true;
    }
    cmdr_print_sample(c, topic, last);
    return true;
}

/* Run one line; true if a command is now in flight. */
static bool run_line(repl *r, char *text)
{
    cmdr *c = r->c;
    char *argv[MAX_TOKENS];
    int n = tokenize(text, argv);
    if (n < 0) {
        fprintf(stderr, "ocps-cmd: cannot parse the line (unbalanced quotes or too many words)\n");
        r->failures++;
        return false;
    }
    if (n == 0 || argv[0][0] == '#') {
        return false;
    }
    if (strcmp(argv[0], "exit") == 0 || strcmp(argv[0], "quit") == 0) {
        r->exited = true;
        return false;
    }
    if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "topics") == 0) {
        help(c);
        return false;
    }
    if (strcmp(argv[0], "show") == 0) {
        if (n != 2) {
            fprintf(stderr, "ocps-cmd: usage: show EVENT\n");
            r->failures++;
        } else if (!show(c, argv[1])) {
            r->failures++;
        }
        return false;
    }
    if (cmdr_command_begin(c, argv[0], n - 1, argv + 1) != 0) {
        r->failures++;
        return false;
    }
    return true;
}

/* Run queued lines until one starts a command, one is `exit`, or none are
 * left. */
static void drain(repl *r)
{
    while (!r->busy && !r->exited && r->head != NULL) {
        line *l = r->head;
        r->head = l->next;
        if (r->head == NULL) {
            r->tail = NULL;
        }
        if (l->too_long) {
            fprintf(stderr,
                    "ocps-cmd: a line of the script is longer than %zu bytes: not run (\"%.40s...\")\n",
                    sizeof r->partial - 1, l->text);
            r->failures++;
        } else {
            r->busy = run_line(r, l->text);
        }
        free(l->text);
        free(l);
    }
    if (!r->busy && (r->exited || (r->eof && r->head == NULL))) {
        cmdr_finish(r->c, r->failures > 0 ? EXIT_FAILED : EXIT_OK);
    }
}

static void repl_next(cmdr *c, int status)
{
    repl *r = c->repl;
    if (r == NULL) {
        return;
    }
    r->failures += status != EXIT_OK;
    r->busy = false;
    drain(r);
}

/* --- terminal: libedit --- */

static void on_readline(char *text)
{
    repl *r = active;
    if (text == NULL) {
        r->eof = true;
        printf("\n");
    } else {
        if (*text != '\0') {
            add_history(text);
        }
        push_line(r, text, strlen(text));
        free(text);
    }
    drain(r);
}

static void on_tty(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)events;
    if (status == 0 && active != NULL) {
        rl_callback_read_char();
    }
}

static const char *const builtins[] = {"show", "topics", "help", "exit", NULL};

/* Candidates for the word being completed; set by complete(). */
static struct {
    const char *names[256];
    size_t n;
    size_t next;
} candidates;

static void add_candidate(const char *name)
{
    if (candidates.n < sizeof candidates.names / sizeof candidates.names[0]) {
        candidates.names[candidates.n++] = name;
    }
}

static char *generate(const char *text, int state)
{
    if (state == 0) {
        candidates.next = 0;
    }
    size_t len = strlen(text);
    while (candidates.next < candidates.n) {
        const char *name = candidates.names[candidates.next++];
        if (strncmp(name, text, len) == 0) {
            return strdup(name);
        }
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    const sal_component_info *comp = active->c->comp;
    candidates.n = 0;
    char first[128] = "";
    sscanf(rl_line_buffer, "%127s", first);
    for (size_t i = 0; i < comp->ntopics; i++) {
        const sal_topic_info *t = &comp->topics[i];
        if (start == 0 && t->kind == SAL_TOPIC_COMMAND) {
            add_candidate(t->sal_name + strlen("command_"));
        } else if (start > 0 && strcmp(first, "show") == 0 && t->kind == SAL_TOPIC_EVENT) {
            add_candidate(t->sal_name + strlen("logevent_"));
        }
    }
    if (start == 0) {
        for (size_t i = 0; builtins[i] != NULL; i++) {
            add_candidate(builtins[i]);
        }
    } else if (strncmp(text, "--", 2) == 0 || text[0] == '\0') {
        static char fields[64][160];
        char sal_name[160];
        snprintf(sal_name, sizeof sal_name, "command_%s", first);
        int t = sal_component_find_topic(comp, sal_name);
        size_t k = 0;
        for (size_t f = 0; t >= 0 && f < comp->topics[t].nfields && k < 64; f++) {
            const sal_field_info *fi = &comp->topics[t].fields[f];
            if (!(fi->flags & SAL_FIELD_PRIVATE)) {
                snprintf(fields[k], sizeof fields[k], "--%s", fi->name);
                add_candidate(fields[k++]);
            }
        }
    }
    rl_attempted_completion_over = 1;
    return rl_completion_matches(text, generate);
}

static int start_tty(repl *r)
{
    const char *home = getenv("HOME");
    if (home != NULL) {
        snprintf(r->history, sizeof r->history, "%s/.ocps_cmd_history", home);
        read_history(r->history);
    }
    rl_attempted_completion_function = complete;
    static char prompt[64];
    snprintf(prompt, sizeof prompt, "%s:%d> ", r->c->comp->name, sal_index(sal_remote_sal(r->c->remote)));
    rl_callback_handler_install(prompt, on_readline);
    uv_poll_init(&r->c->loop, &r->tty, STDIN_FILENO);
    return uv_poll_start(&r->tty, UV_READABLE, on_tty);
}

/* --- scripts: pipe or file --- */

static void take_bytes(repl *r, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            push_line(r, r->partial, r->plen);
            r->plen = 0;
        } else if (r->plen < sizeof r->partial - 1) {
            r->partial[r->plen++] = buf[i];
        } else {
            r->overlong = true;
        }
    }
}

static void take_eof(repl *r)
{
    if (r->plen > 0) {
        push_line(r, r->partial, r->plen);
        r->plen = 0;
    }
    r->eof = true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void on_pipe(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    repl *r = s->data;
    if (n > 0) {
        take_bytes(r, buf->base, (size_t)n);
    } else if (n < 0) {
        uv_read_stop(s);
        take_eof(r);
    }
    free(buf->base);
    drain(r);
}

static void read_file(repl *r)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(STDIN_FILENO, buf, sizeof buf)) > 0) {
        take_bytes(r, buf, (size_t)n);
    }
    take_eof(r);
}

static void repl_stop(cmdr *c);

int repl_start(cmdr *c)
{
    repl *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return EXIT_FAILED;
    }
    r->c = c;
    c->repl = r;
    c->on_command_done = repl_next;
    c->on_finish = repl_stop;
    active = r;
    r->input = uv_guess_handle(STDIN_FILENO);
    int rc = 0;
    if (r->input == UV_TTY) {
        rc = start_tty(r);
    } else if (r->input == UV_NAMED_PIPE) {
        uv_pipe_init(&c->loop, &r->pipe, 0);
        r->pipe.data = r;
        rc = uv_pipe_open(&r->pipe, STDIN_FILENO);
        if (rc == 0) {
            rc = uv_read_start((uv_stream_t *)&r->pipe, on_alloc, on_pipe);
        }
    } else {
        read_file(r);
        drain(r);
    }
    if (rc != 0) {
        fprintf(stderr, "ocps-cmd: cannot read stdin: %s\n", uv_strerror(rc));
        return EXIT_FAILED;
    }
    return -1;
}

static void free_repl(uv_handle_t *h)
{
    free(h->data);
}

static void repl_stop(cmdr *c)
{
    repl *r = c->repl;
    if (r == NULL) {
        return;
    }
    c->repl = NULL;
    active = NULL;
    while (r->head != NULL) {
        line *l = r->head;
        r->head = l->next;
        free(l->text);
        free(l);
    }
    if (r->input == UV_TTY) {
        rl_callback_handler_remove();
        if (r->history[0] != '\0') {
            write_history(r->history);
        }
        r->tty.data = r;
        uv_close((uv_handle_t *)&r->tty, free_repl);
    } else if (r->input == UV_NAMED_PIPE) {
        r->pipe.data = r;
        uv_close((uv_handle_t *)&r->pipe, free_repl);
    } else {
        free(r);
    }
}
