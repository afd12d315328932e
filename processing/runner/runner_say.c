/* runner_say.c - the runner's own lines in the job's log; see runner_say.h. */
#define _GNU_SOURCE /* open_memstream */
#include "runner_say.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ocps/sal_utf8.h"

/* s as a JSON string: a byte that does not begin a valid UTF-8 character
 * (a file name need not be UTF-8; JSON must be) becomes U+FFFD. */
void runner_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0';) {
        size_t n = sal_utf8_char_len(p);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
        } else if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p);
        } else {
            fwrite(p, 1, n, f);
        }
        p += n;
    }
    fputc('"', f);
}

/* One message of the runner on stderr (the job's log): "ocps-job-runner:
 * message" (with_pid: "ocps-job-runner[PID]: message"), or with
 * OCPS_LOG_FORMAT=json (set by the CSC that started it) one JSON object a
 * line, as the CSC's (csc/util/sal_logline.h): time, level, levelno, name,
 * pid, message. Written in one write. */
void runner_say(int levelno, bool with_pid, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *format = getenv("OCPS_LOG_FORMAT");
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    if (f == NULL) {
        return;
    }
    if (format != NULL && strcmp(format, "json") == 0) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        const char *level = levelno >= 40 ? "ERROR" : (levelno >= 30 ? "WARNING" : "INFO");
        fprintf(f, "{\"time\": \"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\", ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));
        fprintf(f, "\"level\": \"%s\", \"levelno\": %d, ", level, levelno);
        fprintf(f, "\"name\": \"ocps-job-runner\", \"pid\": %ld, \"message\": ", (long)getpid());
        runner_json_string(f, msg);
        fputs("}\n", f);
    } else if (with_pid) {
        fprintf(f, "ocps-job-runner[%ld]: %s\n", (long)getpid(), msg);
    } else {
        fprintf(f, "ocps-job-runner: %s\n", msg);
    }
    if (fclose(f) == 0) {
        fwrite(line, 1, len, stderr);
    }
    free(line);
}
