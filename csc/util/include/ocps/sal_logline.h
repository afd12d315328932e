/*
 * sal_logline.h - the log lines a program writes on stderr: plain text, or
 * one JSON object a line (for journald, Loki, Kubernetes log collectors).
 *
 * The format is process-wide: set it once at start-up, before any thread
 * starts (ocps-csc: --log-format, else $OCPS_LOG_FORMAT).
 */
#ifndef SAL_LOGLINE_H
#define SAL_LOGLINE_H

#include <stddef.h>

typedef enum sal_log_format {
    SAL_LOG_FORMAT_TEXT = 0, /* "LEVEL NAME: message" */
    SAL_LOG_FORMAT_JSON = 1  /* {"time": ..., "level": ..., "name": ..., "message": ...} */
} sal_log_format;

/* Python logging levels (the SAL_LOG_* of sal_protocol.h, for modules
 * below the SAL runtime). */
enum {
    SAL_LOGLINE_DEBUG = 10,
    SAL_LOGLINE_INFO = 20,
    SAL_LOGLINE_WARNING = 30,
    SAL_LOGLINE_ERROR = 40,
    SAL_LOGLINE_CRITICAL = 50
};

/* The environment variable naming the format ("text" or "json"). */
#define SAL_LOG_FORMAT_ENV "OCPS_LOG_FORMAT"

/* "text" or "json" (NULL or "" is text); returns -1 for another name. */
int sal_log_format_parse(const char *name, sal_log_format *out);
void sal_log_format_set(sal_log_format format);
sal_log_format sal_log_format_get(void);

/* Write one log line to stderr, in one write. level is a Python logging
 * level (10 DEBUG ... 50 CRITICAL); name the logger (the component);
 * file, func and line where it was logged (file NULL: not given). The JSON
 * object has "time" (UTC, ISO 8601 with milliseconds), "level" (the name),
 * "levelno", "name", "message", "pid" and, when given, "file",
 * "function", "line". A message is one line: JSON escapes newlines.
 * Never waits for a pipe or socket whose reader stalls: a line that does
 * not fit is dropped (or cut short) and counted, and the next line written
 * is preceded by "N log lines dropped or cut short: stderr was not
 * writable" (name "log"). Files and terminals are written as always.
 * Safe from any thread. */
void sal_log_line(int level, const char *name, const char *file, const char *func, int line,
                  const char *message);

/* A message of a module without a component (a transport): in text
 * "NAME: message", as such messages always were; in JSON as sal_log_line
 * (no file, function or line). printf-style. */
void sal_log_say(int level, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The name of a Python logging level: DEBUG, INFO, WARNING, ERROR, CRITICAL. */
const char *sal_log_level_name(int level);

#endif
