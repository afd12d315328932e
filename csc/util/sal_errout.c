/*
 * sal_errout.c - lines on stderr that never wait (sal_errout.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "ocps/sal_errout.h"

#include "ocps/sal_clock.h"

#include <errno.h>
#include <fcntl.h>
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

/* How stderr is written. A pipe or a terminal whose reader may stall is
 * written through a description of its own opened nonblocking (so that
 * neither another writer taking the room poll saw, nor a terminal's flow
 * control, can make a write wait); if that cannot be opened, a pipe is
 * written once poll says there is room, a terminal as always. A socket
 * is sent to with MSG_DONTWAIT; a file or another device is written as
 * always (waiting). */
typedef enum out_kind { OUT_BLOCKING, OUT_POLLED_PIPE, OUT_SOCKET, OUT_NONBLOCKING } out_kind;

typedef struct out_target {
    out_kind kind;
    int fd;    /* where to write: STDERR_FILENO or the description of our own */
    bool pipe; /* pieces of at most PIPE_BUF bytes, so that none is cut */
} out_target;

/* The lines not written because stderr (a pipe or socket) was full, and
 * whether the last line written was cut short; what stderr was found to
 * be (the file it is, how it is written); under its lock, which also
 * keeps lines of different threads whole. Process-wide, as stderr is. */
typedef struct errout_state {
    pthread_mutex_t lock;
    unsigned long dropped;
    bool cut;
    double linger_until; /* sal_clock_monotonic(); 0: writes never wait */
    bool known;          /* target, dev, ino, rdev: what stderr was */
    out_target target;
    dev_t dev;
    ino_t ino;
    dev_t rdev;
} errout_state;

static errout_state stderr_out = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A description of stderr's pipe or terminal of our own, nonblocking;
 * -1 if it cannot be opened (no /proc, no reader on the pipe). */
static int open_own(void)
{
    return open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

/* How to write stderr, the file st: found once per file stderr is (fd 2
 * may be pointed elsewhere by dup2). Called with stderr_out.lock held. */
static out_target stderr_target_of(const struct stat *st)
{
    if (stderr_out.known && st->st_dev == stderr_out.dev && st->st_ino == stderr_out.ino &&
        st->st_rdev == stderr_out.rdev) {
        return stderr_out.target;
    }
    if (stderr_out.known && stderr_out.target.fd != STDERR_FILENO) {
        close(stderr_out.target.fd);
    }
    out_target t = {.kind = OUT_BLOCKING, .fd = STDERR_FILENO, .pipe = S_ISFIFO(st->st_mode)};
    if (S_ISSOCK(st->st_mode)) {
        t.kind = OUT_SOCKET;
    } else if (t.pipe || (S_ISCHR(st->st_mode) && isatty(STDERR_FILENO))) {
        int own = open_own();
        t.kind = own >= 0 ? OUT_NONBLOCKING : t.pipe ? OUT_POLLED_PIPE : OUT_BLOCKING;
        t.fd = own >= 0 ? own : STDERR_FILENO;
    }
    stderr_out.known = true;
    stderr_out.target = t;
    stderr_out.dev = st->st_dev;
    stderr_out.ino = st->st_ino;
    stderr_out.rdev = st->st_rdev;
    return t;
}

/* How to write stderr now. Called with stderr_out.lock held. */
static out_target stderr_target(void)
{
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) {
        return (out_target){.kind = OUT_BLOCKING, .fd = STDERR_FILENO};
    }
    return stderr_target_of(&st);
}

/* Milliseconds writes may still wait for room (sal_errout_linger): 0
 * unless the program is ending. Called with stderr_out.lock held. */
static int linger_ms(void)
{
    double ms = (stderr_out.linger_until - sal_clock_monotonic()) * 1e3;
    return ms > 0 ? (int)ms + 1 : 0;
}

/* True if fd has room (a pipe: at least one free buffer, so that a write
 * of up to PIPE_BUF bytes fits): now, or within what is left of a linger. */
static bool fd_writable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int rc;
    do {
        rc = poll(&p, 1, linger_ms());
    } while (rc < 0 && errno == EINTR);
    return rc == 1 && (p.revents & POLLOUT) != 0;
}

/* Write one piece of text now (to a pipe at most PIPE_BUF bytes); 0 or
 * -1 (EAGAIN) if there is no room. While lingering, first wait for room. */
static ssize_t write_piece(const out_target *t, const char *text, size_t len)
{
    size_t piece = t->pipe && len > PIPE_BUF ? PIPE_BUF : len;
    switch (t->kind) {
    case OUT_SOCKET:
        if (linger_ms() > 0 && !fd_writable(t->fd)) {
            return 0;
        }
        return send(t->fd, text, len, MSG_DONTWAIT);
    case OUT_NONBLOCKING:
        if (linger_ms() > 0 && !fd_writable(t->fd)) {
            return 0;
        }
        return write(t->fd, text, piece);
    case OUT_POLLED_PIPE:
        return fd_writable(t->fd) ? write(t->fd, text, piece) : 0;
    case OUT_BLOCKING:
        break;
    }
    return write(t->fd, text, len);
}

/* Write what stderr takes of text (a pipe, a terminal or a socket: what
 * it takes now, never waiting, unless lingering); returns the bytes
 * written. */
static size_t write_out(const out_target *t, const char *text, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write_piece(t, text + done, len - done);
        if (n < 0 && (errno == EINTR || (errno == EAGAIN && linger_ms() > 0))) {
            continue; /* lingering: room poll saw was taken by another writer */
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
static size_t put_lines(const out_target *t, const char *text, size_t len)
{
    size_t n = write_out(t, text, len);
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
 * ending a line cut short), in one buffer with the text if it fits, so
 * that on a pipe both go or neither: a note is not written into room the
 * line after it does not fit. Called with stderr_out.lock held. */
static void write_locked(const char *text, size_t len, sal_errout_note_fn note)
{
    out_target t = stderr_target();
    size_t done = 0; /* of text */
    if (stderr_out.dropped > 0) {
        char buf[8192];
        size_t at = 0;
        if (stderr_out.cut) {
            buf[at++] = '\n';
        }
        at += (note != NULL ? note : plain_note)(buf + at, sizeof buf - at, stderr_out.dropped);
        size_t joined = len <= sizeof buf - at ? len : 0;
        memcpy(buf + at, text, joined);
        size_t n = put_lines(&t, buf, at + joined);
        if (n < at) {
            stderr_out.dropped += lines_left(text, len);
            return;
        }
        stderr_out.dropped = 0;
        if (joined == 0) {
            done = put_lines(&t, text, len);
        } else {
            done = n - at;
        }
    } else {
        done = put_lines(&t, text, len);
    }
    if (done < len) {
        stderr_out.dropped += lines_left(text + done, len - done);
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
