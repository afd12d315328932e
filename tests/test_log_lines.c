/*
 * test_log_lines: the log lines on stderr (csc/util/sal_logline.h). In
 * JSON, every line is one object that a JSON parser reads back with the
 * message unchanged, whatever it holds (quotes, backslashes, newlines,
 * control characters, UTF-8), and a message too long for a line is cut
 * with the line still valid JSON; in text, the line is as before
 * ("LEVEL NAME: message"). On a pipe or socket whose reader does not
 * read, on a terminal whose output is held (flow control, a stalled ssh
 * connection), and on a pipe another writer keeps full, logging never
 * waits: lines that do not fit are dropped and, once stderr takes lines
 * again, one line says how many.
 */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "ocps/sal_errout.h"
#include "ocps/sal_logline.h"

/* Run sal_log_line with stderr sent to a temporary file; returns what was
 * written (malloc'd). */
static char *capture(int level, const char *name, const char *file, const char *func, int line,
                     const char *message)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    sal_log_line(level, name, file, func, line, message);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long size = ftell(tmp);
    rewind(tmp);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, tmp), (size_t)size);
    text[size] = '\0';
    fclose(tmp);
    return text;
}

/* The one line of text as a JSON object. */
static json_t *parse_line(const char *text)
{
    size_t len = strlen(text);
    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');
    assert_null(memchr(text, '\n', len - 1)); /* one line */
    json_error_t jerr;
    json_t *obj = json_loadb(text, len, 0, &jerr);
    if (obj == NULL) {
        fail_msg("not JSON (%s): %s", jerr.text, text);
    }
    assert_true(json_is_object(obj));
    return obj;
}

static const char *str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        fail_msg("no string %s", key);
    }
    return json_string_value(v);
}

static void test_json_fields(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_JSON);
    char *text = capture(30, "OCPS", "csc/sal/sal_csc.c", "on_command", 42, "Ignoring command_start");
    json_t *obj = parse_line(text);
    assert_string_equal(str(obj, "level"), "WARNING");
    assert_int_equal(json_integer_value(json_object_get(obj, "levelno")), 30);
    assert_string_equal(str(obj, "name"), "OCPS");
    assert_string_equal(str(obj, "message"), "Ignoring command_start");
    assert_string_equal(str(obj, "file"), "csc/sal/sal_csc.c");
    assert_string_equal(str(obj, "function"), "on_command");
    assert_int_equal(json_integer_value(json_object_get(obj, "line")), 42);
    assert_int_equal(json_integer_value(json_object_get(obj, "pid")), getpid());
    /* UTC, ISO 8601 with milliseconds: 2026-12-01T16:35:16.887Z */
    const char *t = str(obj, "time");
    assert_int_equal(strlen(t), 24);
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[19], '.');
    assert_int_equal(t[23], 'Z');
    json_decref(obj);
    free(text);

    /* no place given: no file, function or line */
    text = capture(40, "ocps-csc", NULL, NULL, 0, "cannot start");
    obj = parse_line(text);
    assert_string_equal(str(obj, "level"), "ERROR");
    assert_null(json_object_get(obj, "file"));
    assert_null(json_object_get(obj, "line"));
    json_decref(obj);
    free(text);
}

static void test_json_message_round_trip(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_JSON);
    const char *message = "quote \" backslash \\ newline \n tab \t cr \r bell \a esc \x1b del \x7f "
                          "UTF-8 \xc3\xa9t\xc3\xa9 \xe2\x9c\x93 {\"a\": [1]}";
    char *text = capture(20, "na\"me\n", "f\\ile", "fu\tnc", 7, message);
    json_t *obj = parse_line(text);
    assert_string_equal(str(obj, "message"), message);
    assert_string_equal(str(obj, "name"), "na\"me\n");
    assert_string_equal(str(obj, "file"), "f\\ile");
    assert_string_equal(str(obj, "function"), "fu\tnc");
    json_decref(obj);
    free(text);
}

static void test_json_long_message_cut(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_JSON);
    /* 20000 characters, each needing an escape: cut, never inside one */
    size_t n = 20000;
    char *message = malloc(n + 1);
    assert_non_null(message);
    for (size_t i = 0; i < n; i++) {
        message[i] = i % 2 ? '"' : '\n';
    }
    message[n] = '\0';
    char *text = capture(20, "OCPS", NULL, NULL, 0, message);
    assert_true(strlen(text) <= 8192);
    json_t *obj = parse_line(text);
    const char *got = str(obj, "message");
    assert_true(strlen(got) > 1000);
    assert_true(strlen(got) < n);
    assert_memory_equal(got, message, strlen(got)); /* a prefix of the message */
    json_decref(obj);
    free(text);
    free(message);
}

static void test_text_format(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_TEXT);
    char *text = capture(40, "OCPS", "x.c", "f", 1, "OCPS:1 with origin=7 quitting");
    assert_string_equal(text, "ERROR OCPS: OCPS:1 with origin=7 quitting\n");
    free(text);
    text = capture(10, "OCPS", NULL, NULL, 0, "debug");
    assert_string_equal(text, "DEBUG OCPS: debug\n");
    free(text);
}

/* sal_log_say: printf-style, "NAME: message" in text (the transports'
 * messages as they always were), an object without a place in JSON. */
static char *capture_say(const char *name, const char *fmt, const char *arg)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    sal_log_say(SAL_LOGLINE_WARNING, name, fmt, arg);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long size = ftell(tmp);
    rewind(tmp);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, tmp), (size_t)size);
    fclose(tmp);
    return text;
}

static void test_say(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_TEXT);
    char *text = capture_say("sal_kafka", "closing with %s messages not delivered", "3");
    assert_string_equal(text, "sal_kafka: closing with 3 messages not delivered\n");
    free(text);
    sal_log_format_set(SAL_LOG_FORMAT_JSON);
    text = capture_say("sal_kafka", "%s: dropped an undecodable message", "lsst.sal.OCPS.ackcmd \"x\"");
    json_t *obj = parse_line(text);
    assert_string_equal(str(obj, "name"), "sal_kafka");
    assert_string_equal(str(obj, "level"), "WARNING");
    assert_string_equal(str(obj, "message"), "lsst.sal.OCPS.ackcmd \"x\": dropped an undecodable message");
    assert_null(json_object_get(obj, "file"));
    json_decref(obj);
    free(text);
}

static void test_format_names(void **state)
{
    (void)state;
    sal_log_format f = SAL_LOG_FORMAT_JSON;
    assert_int_equal(sal_log_format_parse("text", &f), 0);
    assert_int_equal(f, SAL_LOG_FORMAT_TEXT);
    assert_int_equal(sal_log_format_parse("json", &f), 0);
    assert_int_equal(f, SAL_LOG_FORMAT_JSON);
    assert_int_equal(sal_log_format_parse(NULL, &f), 0);
    assert_int_equal(f, SAL_LOG_FORMAT_TEXT);
    assert_int_equal(sal_log_format_parse("JSON ", &f), -1);
    assert_int_equal(sal_log_format_parse("yaml", &f), -1);
}

/* A stderr whose reader stalls: a pipe, a stream socket (journald), a
 * terminal (here a pseudo-terminal in raw mode whose master is not read). */
typedef enum stall_kind { STALL_PIPE, STALL_SOCKET, STALL_TTY } stall_kind;

enum { FLOOD_LINES = 2000 };

/* The message of flood line i: "line NNNNN " and x up to size bytes (line
 * 0 short, so that a pipe holds an odd number of pieces of long lines). */
static void flood_message(char *out, size_t size, int i)
{
    size = i == 0 ? 20 : size;
    int n = snprintf(out, size + 1, "line %05d ", i);
    memset(out + n, 'x', size - (size_t)n);
    out[size] = '\0';
}

/* The child: FLOOD_LINES lines of `size` bytes to `log_fd` as stderr; says
 * so on done_fd; once told on go_fd (the parent drained the pipe), one
 * line more. */
static void flood_child(int log_fd, int done_fd, int go_fd, size_t size)
{
    if (dup2(log_fd, STDERR_FILENO) < 0) {
        _exit(2);
    }
    char message[8192];
    for (int i = 0; i < FLOOD_LINES; i++) {
        flood_message(message, size, i);
        sal_log_line(SAL_LOGLINE_INFO, "flood", NULL, NULL, 0, message);
    }
    char c = 'd';
    if (write(done_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1) {
        _exit(3);
    }
    sal_log_line(SAL_LOGLINE_INFO, "flood", NULL, NULL, 0, "after");
    _exit(0);
}

/* Append what fd has (up to EOF, or EIO: a pseudo-terminal's master whose
 * slave is closed; or until it has nothing now if nonblocking) to *buf. */
static void read_into(int fd, char **buf, size_t *len, bool nonblocking)
{
    assert_int_equal(fcntl(fd, F_SETFL, nonblocking ? O_NONBLOCK : 0), 0);
    for (;;) {
        char chunk[65536];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n <= 0) {
            assert_true(n == 0 || (nonblocking && errno == EAGAIN) || errno == EIO);
            return;
        }
        *buf = realloc(*buf, *len + (size_t)n + 1);
        assert_non_null(*buf);
        memcpy(*buf + *len, chunk, (size_t)n);
        *len += (size_t)n;
        (*buf)[*len] = '\0';
    }
}

/* What the log pipe holds now, then (the child told on go_fd to write its
 * last line) what it holds up to EOF; the child must exit 0. Malloc'd. */
static char *read_let_finish(int log_fd, int go_fd, pid_t pid)
{
    char *all = calloc(1, 1);
    size_t len = 0;
    read_into(log_fd, &all, &len, true);
    assert_int_equal(write(go_fd, "g", 1), 1);
    read_into(log_fd, &all, &len, false);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return all;
}

/* Run the flood with stderr on a stalled pipe or socket: the child must
 * finish its lines within 10 s (it never waits for the reader); returns
 * all it wrote (malloc'd), read after the flood. */
static char *flood(stall_kind kind, size_t size, bool *sized)
{
    *sized = false;
    int log_fds[2], done[2], go[2];
    if (kind == STALL_PIPE) {
        assert_int_equal(pipe(log_fds), 0);
        *sized = fcntl(log_fds[1], F_SETPIPE_SZ, 65536) == 65536; /* 16 pages */
    } else if (kind == STALL_SOCKET) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, log_fds), 0);
    } else {
        log_fds[0] = posix_openpt(O_RDWR | O_NOCTTY);
        assert_true(log_fds[0] >= 0);
        assert_int_equal(grantpt(log_fds[0]), 0);
        assert_int_equal(unlockpt(log_fds[0]), 0);
        log_fds[1] = open(ptsname(log_fds[0]), O_RDWR | O_NOCTTY);
        assert_true(log_fds[1] >= 0);
        struct termios tio;
        assert_int_equal(tcgetattr(log_fds[1], &tio), 0);
        cfmakeraw(&tio); /* lines as written, no \r added */
        assert_int_equal(tcsetattr(log_fds[1], TCSANOW, &tio), 0);
    }
    assert_int_equal(pipe(done), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(log_fds[0]);
        close(done[0]);
        close(go[1]);
        flood_child(log_fds[1], done[1], go[0], size);
    }
    close(log_fds[1]);
    close(done[1]);
    close(go[0]);
    struct pollfd p = {.fd = done[0], .events = POLLIN};
    if (poll(&p, 1, 10000) != 1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("logging waited for a reader that does not read (lines of %zu bytes)", size);
    }
    char *all = read_let_finish(log_fds[0], go[1], pid);
    close(log_fds[0]);
    close(done[0]);
    close(go[1]);
    return all;
}

/* The message of one line of the given format, in out; false if the line
 * is not a whole line of that format. */
static bool line_message(const char *line, char *out, size_t outlen)
{
    if (sal_log_format_get() == SAL_LOG_FORMAT_TEXT) {
        const char *colon = strstr(line, ": ");
        if (colon == NULL) {
            return false;
        }
        snprintf(out, outlen, "%s", colon + 2);
        return true;
    }
    json_t *obj = json_loads(line, 0, NULL);
    json_t *m = json_object_get(obj, "message");
    bool ok = json_is_string(m);
    if (ok) {
        snprintf(out, outlen, "%s", json_string_value(m));
    }
    json_decref(obj);
    return ok;
}

/* What a flood wrote: its first lines whole and in order, perhaps the next
 * one cut short, a line saying how many were dropped (those cut short
 * included) so that none is unaccounted for, then the line after. Returns
 * whether a line was cut short. */
static bool check_flood(char *all, size_t size)
{
    char expected[8192], got[8192];
    int whole = 0;
    unsigned long dropped = 0;
    bool noted = false, cut = false, after = false;
    size_t len = strlen(all);
    assert_true(len > 0 && all[len - 1] == '\n');
    for (char *line = strtok(all, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        assert_false(after); /* the line after is the last */
        bool parsed = line_message(line, got, sizeof got);
        flood_message(expected, size, whole);
        if (parsed && strcmp(got, expected) == 0 && !noted && !cut) {
            whole++;
        } else if (parsed && sscanf(got, "%lu log lines dropped or cut short: stderr was not writable",
                                    &dropped) == 1) {
            assert_false(noted);
            noted = true;
        } else if (parsed && strcmp(got, "after") == 0) {
            after = true;
        } else {
            assert_false(cut || noted); /* at most one line cut, just before the note */
            cut = true;
        }
    }
    assert_true(noted && after);
    assert_true(whole > 0 && whole < FLOOD_LINES);
    assert_int_equal((unsigned long)whole + dropped, FLOOD_LINES);
    return cut;
}

/* What a flood wrote to a terminal, whose room comes back in bits (a
 * pseudo-terminal's buffer is freed as its data moves on to the master):
 * runs of whole lines in order, between them pieces of lines cut short and
 * lines saying how many were dropped; every flood line whole or counted by
 * a whole note before the next line written; then the line after. */
static void check_flood_pieces(char *all, size_t size)
{
    char expected[8192], got[8192];
    int whole = 0;
    unsigned long noted = 0;
    bool after = false;
    for (char *line = strtok(all, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        assert_false(after); /* the line after is the last */
        bool parsed = line_message(line, got, sizeof got);
        flood_message(expected, size, whole + (int)noted);
        unsigned long count = 0;
        int end = 0;
        if (parsed &&
            sscanf(got, "%lu log lines dropped or cut short: stderr was not writable%n", &count, &end) == 1 &&
            end > 0 && got[end] == '\0') {
            noted += count;
        } else if (parsed && strcmp(got, "after") == 0) {
            after = true;
        } else if (parsed && strlen(got) == strlen(expected) && strncmp(got, "line ", 5) == 0) {
            assert_string_equal(got, expected); /* whole, and the one due */
            whole++;
        } /* else a piece of a line cut short */
    }
    assert_true(after);
    assert_true(whole > 0 && noted > 0);
    assert_int_equal((unsigned long)whole + noted, FLOOD_LINES);
}

static void test_full_pipe_drops_lines(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_TEXT);
    bool sized;
    char *all = flood(STALL_PIPE, 100, &sized);
    assert_false(check_flood(all, 100));
    free(all);
}

static void test_full_pipe_long_lines(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_TEXT); /* longer than PIPE_BUF: written in pieces */
    bool sized;
    char *all = flood(STALL_PIPE, 6000, &sized);
    bool cut = check_flood(all, 6000);
    if (sized) { /* 15 pages taken, the 16th by the first piece of the next line */
        assert_true(cut);
    }
    free(all);
}

static void test_full_socket_drops_lines_json(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_JSON);
    bool sized;
    char *all = flood(STALL_SOCKET, 300, &sized);
    check_flood(all, 300);
    free(all);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wait for a byte on fd (a child's "done"); false after 10 s. */
static bool await_byte(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    return poll(&p, 1, 10000) == 1 && read(fd, &c, 1) == 1;
}

/* A line shorter than a pipe takes at once (PIPE_BUF) goes whole or not
 * at all, also when the note of lines dropped before it comes first and
 * the two together are longer: the child's stderr is a pipe of 16 pages
 * that the test fills; line A is dropped; the test frees one page; line
 * B (4000-odd bytes) is written after the note. Neither may be cut. */
static void test_note_does_not_cut_the_line_after_it(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_TEXT);
    int log_fds[2], done[2], go[2];
    assert_int_equal(pipe(log_fds), 0);
    if (fcntl(log_fds[1], F_SETPIPE_SZ, 65536) != 65536) {
        close(log_fds[0]);
        close(log_fds[1]);
        skip();
    }
    char page[4096];
    memset(page, 'f', sizeof page);
    page[sizeof page - 1] = '\n';
    for (int i = 0; i < 16; i++) { /* every page of the pipe taken */
        assert_int_equal(write(log_fds[1], page, sizeof page), (ssize_t)sizeof page);
    }
    assert_int_equal(pipe(done), 0);
    assert_int_equal(pipe(go), 0);
    char b[4100];
    memset(b, 'b', 4050);
    b[4050] = '\0';
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (dup2(log_fds[1], STDERR_FILENO) < 0) {
            _exit(2);
        }
        char c = 'd';
        sal_log_line(SAL_LOGLINE_INFO, "flood", NULL, NULL, 0, "line A");
        if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) {
            _exit(3);
        }
        sal_log_line(SAL_LOGLINE_INFO, "flood", NULL, NULL, 0, b);
        if (write(done[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) {
            _exit(3);
        }
        sal_log_line(SAL_LOGLINE_INFO, "flood", NULL, NULL, 0, "after");
        _exit(0);
    }
    close(log_fds[1]);
    close(done[1]);
    close(go[0]);
    assert_true(await_byte(done[0]));
    assert_int_equal(read(log_fds[0], page, sizeof page), (ssize_t)sizeof page); /* one page free */
    assert_int_equal(write(go[1], "g", 1), 1);
    assert_true(await_byte(done[0]));
    char *all = read_let_finish(log_fds[0], go[1], pid);
    int whole = 0;
    unsigned long noted = 0;
    char got[8192];
    for (char *line = strtok(all, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        unsigned long count = 0;
        bool parsed = line[0] != 'f' && line_message(line, got, sizeof got);
        if (line[0] == 'f') {
            assert_int_equal(strlen(line), sizeof page - 1); /* the test's own */
        } else if (parsed && sscanf(got, "%lu log lines dropped", &count) == 1) {
            noted += count;
        } else if (parsed && (strcmp(got, b) == 0 || strcmp(got, "line A") == 0)) {
            whole++;
        } else if (!parsed || strcmp(got, "after") != 0) {
            fail_msg("a line cut short: %.60s... (%zu bytes)", line, strlen(line));
        }
    }
    assert_int_equal((unsigned long)whole + noted, 2);
    free(all);
    close(log_fds[0]);
    close(done[0]);
    close(go[1]);
}

/* A terminal that takes no more (its reader stalled: ^S, a stalled ssh
 * connection): lines are dropped, not waited for (4 MB of lines: the
 * pseudo-terminal's buffers take far less). */
static void test_stalled_terminal_drops_lines(void **state)
{
    (void)state;
    int probe = posix_openpt(O_RDWR | O_NOCTTY);
    if (probe < 0) {
        print_message("no pseudo-terminal here (%s): skipped\n", strerror(errno));
        skip();
    }
    close(probe);
    sal_log_format_set(SAL_LOG_FORMAT_TEXT);
    bool sized;
    char *all = flood(STALL_TTY, 2000, &sized);
    check_flood_pieces(all, 2000);
    free(all);
}

/* Another process writing to the same pipe (a shell's other commands, a
 * child sharing the log) takes the room that poll saw: the write must not
 * then wait for the reader. The racer's blocking writes fill the pipe as
 * soon as the slow reader frees a page, while the logging child writes
 * line after line; the child is sampled, and must never be seen asleep in
 * write(2) (waiting for room). */
typedef struct pipe_race {
    int rfd, wfd;
    atomic_bool stop;
    atomic_bool racer_done;
} pipe_race;

static void *race_writer(void *arg)
{
    pipe_race *r = arg;
    char page[4096];
    memset(page, 'r', sizeof page);
    page[sizeof page - 1] = '\n';
    while (!atomic_load(&r->stop)) {
        if (write(r->wfd, page, sizeof page) < 0 && errno != EINTR) {
            break;
        }
    }
    atomic_store(&r->racer_done, true);
    return NULL;
}

static void *race_reader(void *arg)
{
    pipe_race *r = arg;
    struct timespec slow = {0, 20 * 1000 * 1000};
    while (!atomic_load(&r->stop)) {
        nanosleep(&slow, NULL);
        char page[4096];
        if (read(r->rfd, page, sizeof page) < 0 && errno != EINTR) {
            break;
        }
    }
    return NULL;
}

/* True if pid sleeps interruptibly (waits) inside write(2) or
 * pwritev2(2); *readable: whether its system call could be read. */
static bool asleep_in_write(pid_t pid, bool *readable)
{
    char path[64], text[256];
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
    FILE *f = fopen(path, "r");
    *readable = false;
    if (f == NULL) {
        return false;
    }
    long nr = -2;
    bool got = fgets(text, sizeof text, f) != NULL;
    fclose(f);
    *readable = got && (strncmp(text, "running", 7) == 0 || sscanf(text, "%ld", &nr) == 1);
    if (!got || (nr != SYS_write && nr != SYS_pwritev2)) {
        return false;
    }
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    got = fgets(text, sizeof text, f) != NULL;
    fclose(f);
    const char *paren = got ? strrchr(text, ')') : NULL;
    return paren != NULL && paren[1] == ' ' && paren[2] == 'S';
}

/* Fork a child whose stderr is the write end of a new pipe (log_fds), with
 * a second pipe (done) to say it is done: 0 in the child (the read ends
 * closed), its pid in the parent. */
static pid_t fork_logging_child(int log_fds[2], int done[2])
{
    assert_int_equal(pipe(log_fds), 0);
    assert_int_equal(pipe(done), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(log_fds[0]);
        close(done[0]);
        if (dup2(log_fds[1], STDERR_FILENO) < 0) {
            _exit(2);
        }
    }
    return pid;
}

static void test_racing_writer_never_makes_a_write_wait(void **state)
{
    (void)state;
    sal_log_format_set(SAL_LOG_FORMAT_TEXT);
    int log_fds[2], done[2];
    pid_t pid = fork_logging_child(log_fds, done);
    if (pid == 0) {
        char message[128];
        double end = mono_now() + 1.5;
        for (int i = 0; mono_now() < end; i++) {
            flood_message(message, 100, i % FLOOD_LINES);
            sal_log_line(SAL_LOGLINE_INFO, "flood", NULL, NULL, 0, message);
        }
        _exit(write(done[1], "d", 1) == 1 ? 0 : 3);
    }
    close(done[1]);
    pipe_race race = {.rfd = log_fds[0], .wfd = log_fds[1]};
    pthread_t writer, reader;
    assert_int_equal(pthread_create(&writer, NULL, race_writer, &race), 0);
    assert_int_equal(pthread_create(&reader, NULL, race_reader, &race), 0);
    int seen = 0, samples = 0, readable = 0;
    struct pollfd p = {.fd = done[0], .events = POLLIN};
    double give_up = mono_now() + 20;
    while (poll(&p, 1, 1) == 0 && mono_now() < give_up) {
        bool read_it = false;
        samples++;
        seen += asleep_in_write(pid, &read_it);
        readable += read_it;
    }
    atomic_store(&race.stop, true);
    assert_int_equal(fcntl(log_fds[0], F_SETFL, O_NONBLOCK), 0);
    while (!atomic_load(&race.racer_done)) { /* let the racer's last write in */
        char page[4096];
        if (read(log_fds[0], page, sizeof page) <= 0) {
            poll(NULL, 0, 1);
        }
    }
    pthread_join(writer, NULL);
    pthread_join(reader, NULL);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(log_fds[0]);
    close(log_fds[1]);
    close(done[0]);
    if (seen > 0) {
        fail_msg("the logging child was asleep in write(2) in %d of %d samples", seen, samples);
    }
    if (readable == 0) { /* no /proc/PID/syscall here (ptrace rules): nothing was checked */
        print_message("the child's system calls could not be read: skipped\n");
        skip();
    }
}

/* A program that stops (sal_errout_linger) waits a while for room for
 * its last lines: a reader that is slow, not stopped, gets why it stopped
 * and the count of what was dropped before. */
static void test_last_words_wait_for_a_slow_reader(void **state)
{
    (void)state;
    int log_fds[2], done[2];
    pid_t pid = fork_logging_child(log_fds, done);
    if (pid == 0) {
        char message[128];
        for (int i = 0; i < FLOOD_LINES; i++) { /* 200 KB: the pipe fills */
            flood_message(message, 100, i);
            sal_log_line(SAL_LOGLINE_INFO, "flood", NULL, NULL, 0, message);
        }
        char c = 'd';
        if (write(done[1], &c, 1) != 1) {
            _exit(3);
        }
        sal_errout_linger(5.0);
        sal_log_line(SAL_LOGLINE_ERROR, "flood", NULL, NULL, 0, "last words");
        _exit(0);
    }
    close(log_fds[1]);
    close(done[1]);
    char c;
    assert_int_equal(read(done[0], &c, 1), 1);
    double t0 = mono_now();
    struct timespec slow = {0, 300 * 1000 * 1000}; /* a slow reader */
    nanosleep(&slow, NULL);
    char *all = calloc(1, 1);
    size_t len = 0;
    read_into(log_fds[0], &all, &len, false);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(mono_now() - t0 < 4.0);
    const char *note = strstr(all, "log lines dropped or cut short");
    const char *last = strstr(all, "last words");
    assert_non_null(note);
    assert_non_null(last);
    assert_true(note < last);
    free(all);
    close(log_fds[0]);
    close(done[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_json_message_round_trip),
        cmocka_unit_test(test_json_long_message_cut),
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_say),
        cmocka_unit_test(test_full_pipe_drops_lines),
        cmocka_unit_test(test_full_pipe_long_lines),
        cmocka_unit_test(test_full_socket_drops_lines_json),
        cmocka_unit_test(test_note_does_not_cut_the_line_after_it),
        cmocka_unit_test(test_stalled_terminal_drops_lines),
        cmocka_unit_test(test_racing_writer_never_makes_a_write_wait),
        cmocka_unit_test(test_last_words_wait_for_a_slow_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
