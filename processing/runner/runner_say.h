/*
 * runner_say.h - the runner's own lines in the job's log, and JSON text.
 */
#ifndef RUNNER_SAY_H
#define RUNNER_SAY_H

#include <stdbool.h>
#include <stdio.h>

/* s as a JSON string on f: quotes, backslashes and control characters
 * escaped; a byte that does not begin a valid UTF-8 character (a file name
 * need not be UTF-8; JSON must be) becomes U+FFFD. */
void runner_json_string(FILE *f, const char *s);

/* One message of the runner on stderr (the job's log): "ocps-job-runner:
 * message" (with_pid: "ocps-job-runner[PID]: message"), or with
 * OCPS_LOG_FORMAT=json one JSON object a line; levelno as Python's
 * logging (20 INFO, 30 WARNING, 40 ERROR). Written in one write. */
void runner_say(int levelno, bool with_pid, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
