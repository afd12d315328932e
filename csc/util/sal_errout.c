/*
 * sal_errout.c - lines on stderr that never wait (sal_errout.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "ocps/sal_errout.h"

#include "ocps/sal_clock.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The lines not written because stderr (a pipe or socket) was full, and
 * whether the last line written was cut short; under its lock, which also
 * keeps lines of different threads whole. Process-wide, as stderr is. */
typedef struct errout_state {
    pthread_mutex_t lock;
    unsigned long dropped;
    bool cut;
    double linger_until; /* sal_clock_monotonic(); 0: writes never wait */
} errout_state;

static errout_state stderr_out = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* How stderr is written: a pipe or socket whose reader may stall is never
 * waited for; a file, a terminal or a device is written as always. */
typedef enum out_kind { OUT_BLOCKING, OUT_PIPE, OUT_SOCKET } out_kind;

static out_kind stderr_kind(void)
{
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) {
        return OUT_BLOCKING;
    }
    if (S_ISFIFO(st.st_mode)) {
        return OUT_PIPE;
    }
    return S_ISSOCK(st.st_mode) ? OUT_SOCKET : OUT_BLOCKING;
}

/* Milliseconds writes may still wait for room (sal_errout_linger): 0
 * unless the program is ending. Called with stderr_out.lock held. */
static int linger_ms(void)
{
    double ms = (stderr_out.linger_until - sal_clock_monotonic()) * 1e3;
    return ms > 0 ? (int)ms + 1 : 0;
}

/* True if stderr has room (a pipe: at least one free buffer, so that a
 * write of up to PIPE_BUF bytes does not wait): now, or within what is
 * left of a linger. */
static bool stderr_writable(void)
{
    struct pollfd p = {.fd = STDERR_FILENO, .events = POLLOUT};
    int rc;
    do {
        rc = poll(&p, 1, linger_ms());
    } while (rc < 0 && errno == EINTR);
    return rc == 1 && (p.revents & POLLOUT) != 0;
}

/* Write one piece of text now: to a pipe at most PIPE_BUF bytes, and only
 * once poll says there is room (0: none); to a socket with MSG_DONTWAIT;
 * to a file, a terminal or a device as always (waiting). */
static ssize_t write_piece(out_kind kind, const char *text, size_t len)
{
    switch (kind) {
    case OUT_SOCKET:
        if (linger_ms() > 0 && !stderr_writable()) {
            return 0;
        }
        return send(STDERR_FILENO, text, len, MSG_DONTWAIT);
    case OUT_PIPE:
        return stderr_writable() ? write(STDERR_FILENO, text, len < PIPE_BUF ? len : PIPE_BUF) : 0;
    case OUT_BLOCKING:
        break;
    }
    return write(STDERR_FILENO, text, len);
}

/* Write what stderr takes of text (a pipe or socket: what it takes now,
 * never waiting); returns the bytes written. */
static size_t write_out(out_kind kind, const char *text, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write_piece(kind, text + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        done += (size_t)n;
    }
    return done;
}

/* The lines of text not wholly written (at least one). */
static unsigned long lines_left(const char *text, size_t len)
{
    unsigned long n = 0;
    for (const char *p = text; p < text + len; p++) {
        n += *p == '\n';
    }
    return n > 0 ? n : 1;
}

/* Write lines; the bytes written. Called with stderr_out.lock held. */
static size_t put_lines(out_kind kind, const char *text, size_t len)
{
    size_t n = write_out(kind, text, len);
    if (n > 0) {
        stderr_out.cut = n < len && text[n - 1] != '\n';
    }
    return n;
}

/* The plain line of sal_errout_write. */
static size_t plain_note(char *buf, size_t cap, unsigned long dropped)
{
    int n = snprintf(buf, cap, "%lu log lines dropped or cut short: stderr was not writable\n", dropped);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* Write lines, or count those that do not fit. Before the first written
 * after some were dropped, the note saying how many (after a newline
 * ending a line cut short). Called with stderr_out.lock held. */
static void write_locked(const char *text, size_t len, sal_errout_note_fn note)
{
    out_kind kind = stderr_kind();
    if (stderr_out.dropped > 0) {
        char line[8192];
        size_t at = 0;
        if (stderr_out.cut) {
            line[at++] = '\n';
        }
        at += (note != NULL ? note : plain_note)(line + at, sizeof line - at, stderr_out.dropped);
        if (put_lines(kind, line, at) < at) {
            stderr_out.dropped += lines_left(text, len);
            return;
        }
        stderr_out.dropped = 0;
    }
    size_t n = put_lines(kind, text, len);
    if (n < len) {
        stderr_out.dropped += lines_left(text + n, len - n);
    }
}

void sal_errout_write_noted(const char *text, size_t len, sal_errout_note_fn note)
{
    if (len == 0) {
        return;
    }
    pthread_mutex_lock(&stderr_out.lock);
    write_locked(text, len, note);
    pthread_mutex_unlock(&stderr_out.lock);
}

void sal_errout_write(const char *text, size_t len)
{
    sal_errout_write_noted(text, len, NULL);
}

void sal_errout_say(const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
    line[len++] = '\n';
    sal_errout_write(line, len);
}

void sal_errout_linger(double seconds)
{
    double until = sal_clock_monotonic() + (seconds > 0 && seconds < 3600 ? seconds : 0);
    pthread_mutex_lock(&stderr_out.lock);
    stderr_out.linger_until = until;
    pthread_mutex_unlock(&stderr_out.lock);
}
