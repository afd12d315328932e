/*
 * runner_log.h - a job's stdout and stderr into its log file, bounded.
 *
 * Without a limit the job writes the log file itself (its stdout and
 * stderr are the file). With one, they are a pipe the runner reads: the
 * first bytes of the output go to the file as they come, up to the limit
 * less a tail; past that point the runner keeps only the latest bytes (the
 * tail, at most 1 MiB) and appends them when the job has ended, after a
 * line saying how many bytes were left out. The file then holds at most
 * the limit plus the runner's own lines, however much the job writes, and
 * the job never waits for the disk more than it would writing the file.
 */
#ifndef RUNNER_LOG_H
#define RUNNER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct runner_log {
    int fd;         /* the log file (O_APPEND) */
    int pipe_r;     /* the job's output, read by the runner; -1: none or at its end */
    int pipe_w;     /* the job's end, closed in the runner once the job runs */
    uint64_t max;   /* bytes of the job's output kept; 0: no limit, no pipe */
    uint64_t head;  /* bytes written as they came (up to max - tail_cap) */
    uint64_t total; /* bytes the job wrote */
    char last;      /* the last byte written to the file */
    bool capped;    /* the output went past the head */
    char *tail;     /* ring of the latest bytes past the head */
    size_t tail_cap;
    size_t tail_len;
    size_t tail_pos; /* where the next byte goes */
} runner_log;

/* Open the log file `path` for appending; with max > 0 also the pipe.
 * 0, or an errno value with a message in err. */
int runner_log_open(runner_log *l, const char *path, uint64_t max, char *err, size_t errlen);

/* The descriptor the job gets as stdout and stderr. */
int runner_log_job_fd(const runner_log *l);

/* The job runs: the runner lets go of the job's end of the pipe. */
void runner_log_started(runner_log *l);

/* Read one chunk of what the job wrote (call when pipe_r is readable):
 * 1 read, 0 nothing there now, -1 at its end (pipe_r is -1 then). */
int runner_log_pump(runner_log *l);

/* Wait up to ms milliseconds for the job's output and take a chunk of it
 * if some came (so that a writer never stalls on a full pipe while the
 * runner waits); without a pipe, sleep. */
void runner_log_wait(runner_log *l, int ms);

/* Take what is left in the pipe without waiting (a process that escaped
 * the job's group may hold it open), append the tail with a line on what
 * was left out, close everything. */
void runner_log_finish(runner_log *l);

#endif
