/*
 * sal_errout.c - lines on stderr that never wait (sal_errout.h).
 */
#define _GNU_SOURCE /* pwritev2, RWF_NOWAIT */
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
#include <sys/uio.h>
#include <unistd.h>

/* How stderr is written, so that no write waits for a reader that has
 * stalled, nor for one whose room another writer of the same pipe has
 * just taken (poll said there was room, then a blocking write would
 * wait):
 * - a pipe with RWF_NOWAIT (pwritev2) where the kernel takes it for
 *   pipes; else through a nonblocking description of its own, opened
 *   through /proc/self/fd/2 (which needs the pipe's owner, or a
 *   privilege); else written once poll says there is room;
 * - a terminal (flow control, a stalled ssh session) through a
 *   nonblocking description of its own; else as always (waiting);
 * - a socket with MSG_DONTWAIT;
 * - a file or another device as always (waiting). */
typedef enum out_kind {
    OUT_BLOCKING,
    OUT_POLLED_PIPE,
    OUT_SOCKET,
    OUT_NONBLOCKING,
    OUT_NOWAIT_PIPE
} out_kind;

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
    bool no_nowait_pipes; /* the kernel refused RWF_NOWAIT on a pipe */
} errout_state;

static errout_state stderr_out = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Forget what stderr was (closing the description of our own): fd 2 was
 * pointed elsewhere, or closed. Called with stderr_out.lock held. */
static void forget_target(void)
{
    if (stderr_out.known && stderr_out.target.fd != STDERR_FILENO) {
        close(stderr_out.target.fd);
    }
    stderr_out.known = false;
}

/* How to write a pipe or terminal without RWF_NOWAIT: through a
 * nonblocking description of our own, else the fallback of its kind. */
static out_target own_or_fallback(bool pipe)
{
    int own = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (own >= 0) {
        return (out_target){.kind = OUT_NONBLOCKING, .fd = own, .pipe = pipe};
    }
    return (out_target){.kind = pipe ? OUT_POLLED_PIPE : OUT_BLOCKING, .fd = STDERR_FILENO, .pipe = pipe};
}

/* How to write stderr, the file st: found once per file stderr is (fd 2
 * may be pointed elsewhere by dup2). Called with stderr_out.lock held. */
static out_target stderr_target_of(const struct stat *st)
{
    if (stderr_out.known && st->st_dev == stderr_out.dev && st->st_ino == stderr_out.ino &&
        st->st_rdev == stderr_out.rdev) {
        return stderr_out.target;
    }
    forget_target();
    bool pipe = S_ISFIFO(st->st_mode);
    out_target t = {.kind = OUT_BLOCKING, .fd = STDERR_FILENO, .pipe = pipe};
    if (S_ISSOCK(st->st_mode)) {
        t.kind = OUT_SOCKET;
    } else if (pipe && !stderr_out.no_nowait_pipes) {
        t.kind = OUT_NOWAIT_PIPE;
    } else if (pipe || (S_ISCHR(st->st_mode) && isatty(STDERR_FILENO))) {
        t = own_or_fallback(pipe);
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
        forget_target();
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
 * -1 (EAGAIN) if there is no room. A polled pipe asks poll first; the
 * other ways that never wait do while lingering (waiting for room then).
 * A kernel that refuses RWF_NOWAIT on pipes turns *t (and what is kept
 * of stderr) to the next way. */
static ssize_t write_piece(out_target *t, const char *text, size_t len)
{
    if (t->kind == OUT_BLOCKING) {
        return write(t->fd, text, len);
    }
    if ((t->kind == OUT_POLLED_PIPE || linger_ms() > 0) && !fd_writable(t->fd)) {
        return 0;
    }
    size_t piece = t->pipe && len > PIPE_BUF ? PIPE_BUF : len;
    if (t->kind == OUT_SOCKET) {
        return send(t->fd, text, len, MSG_DONTWAIT);
    }
    if (t->kind != OUT_NOWAIT_PIPE) { /* a description of our own, or a polled pipe */
        return write(t->fd, text, piece);
    }
    struct iovec iov = {.iov_base = (void *)text, .iov_len = piece};
    ssize_t n = pwritev2(t->fd, &iov, 1, -1, RWF_NOWAIT);
    if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)) {
        stderr_out.no_nowait_pipes = true;
        *t = own_or_fallback(true);
        stderr_out.target = *t;
        return write_piece(t, text, len);
    }
    return n;
}

/* Write what stderr takes of text (a pipe, a terminal or a socket: what
 * it takes now, never waiting, unless lingering); returns the bytes
 * written. */
static size_t write_out(out_target *t, const char *text, size_t len)
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
static size_t put_lines(out_target *t, const char *text, size_t len)
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
        /* on a pipe, joined only if both go in one write of at most
         * PIPE_BUF bytes: a line that would go whole or not at all alone
         * is not cut because the note came before it */
        size_t room = t.pipe ? (PIPE_BUF > at ? PIPE_BUF - at : 0) : sizeof buf - at;
        size_t joined = len <= room ? len : 0;
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
