/*
 * sal_errout.h - whole lines on stderr that never wait for a stalled
 * reader. When stderr is a pipe, a socket (journald, a container log
 * shipper, 2> fifo) or a terminal (flow control, a stalled ssh session)
 * whose reader stops reading, what does not fit now is dropped and
 * counted instead of blocking the caller (an event loop); the next line
 * written is preceded by a line saying how many were dropped. A pipe is
 * written with RWF_NOWAIT, so that another writer of the same pipe
 * cannot make a write wait either (a kernel without it for pipes: through
 * a nonblocking description of its own, opened through /proc/self/fd/2,
 * which needs the pipe's owner; else once poll says there is room); a
 * terminal through such a description of its own (else waiting). That
 * description is closed at the first line written after fd 2 is closed
 * or pointed elsewhere. Files and other devices are written as always
 * (waiting). Process-wide, as stderr is; safe from several threads.
 */
#ifndef SAL_ERROUT_H
#define SAL_ERROUT_H

#include <stddef.h>

/* Formats the line saying that `dropped` lines were dropped or cut short
 * into buf (at most cap bytes, ending in a newline); returns its length. */
typedef size_t (*sal_errout_note_fn)(char *buf, size_t cap, unsigned long dropped);

/* Write text (one or more whole lines, each ending in '\n') to stderr
 * without waiting for a pipe or socket; the lines that do not fit are
 * dropped and counted. The count is reported before the next lines
 * written, as "N log lines dropped or cut short: stderr was not writable". */
void sal_errout_write(const char *text, size_t len);

/* sal_errout_write, the count reported in the line that note formats
 * (NULL: the plain line of sal_errout_write). */
void sal_errout_write_noted(const char *text, size_t len, sal_errout_note_fn note);

/* Format one message (a newline is added) and write it with sal_errout_write;
 * cut at 4 KiB. */
void sal_errout_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The program is ending: from now on, writes to a pipe or socket may wait
 * for room, until `seconds` from now in all, so that its last lines (why
 * it stops, and the count of lines dropped before) reach a reader that is
 * slow rather than stopped. */
void sal_errout_linger(double seconds);

#endif
