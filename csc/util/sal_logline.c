/*
 * sal_logline.c - text or JSON log lines on stderr (sal_logline.h).
 */
#include "ocps/sal_logline.h"

#include "ocps/sal_errout.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static sal_log_format log_format = SAL_LOG_FORMAT_TEXT;

int sal_log_format_parse(const char *name, sal_log_format *out)
{
    if (name == NULL || *name == '\0' || strcmp(name, "text") == 0) {
        *out = SAL_LOG_FORMAT_TEXT;
        return 0;
    }
    if (strcmp(name, "json") == 0) {
        *out = SAL_LOG_FORMAT_JSON;
        return 0;
    }
    return -1;
}

void sal_log_format_set(sal_log_format format)
{
    log_format = format;
}

sal_log_format sal_log_format_get(void)
{
    return log_format;
}

const char *sal_log_level_name(int level)
{
    if (level >= 50) {
        return "CRITICAL";
    }
    if (level >= 40) {
        return "ERROR";
    }
    if (level >= 30) {
        return "WARNING";
    }
    if (level >= 20) {
        return "INFO";
    }
    return "DEBUG";
}

/* A line being built; what does not fit is cut (the line stays valid JSON). */
typedef struct line_buf {
    char text[8192];
    size_t len;
    size_t limit; /* room kept for the closing of the object */
} line_buf;

static void put(line_buf *b, const char *s, size_t n)
{
    if (b->len + n > b->limit) {
        n = b->limit - b->len;
    }
    memcpy(b->text + b->len, s, n);
    b->len += n;
}

static void put_str(line_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* A JSON string: quotes, backslashes and control characters escaped;
 * other bytes (UTF-8) as they are. Never cut inside an escape. */
static void put_json_string(line_buf *b, const char *s)
{
    put_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char esc[8];
        size_t n;
        switch (*p) {
        case '"':
            n = (size_t)snprintf(esc, sizeof esc, "\\\"");
            break;
        case '\\':
            n = (size_t)snprintf(esc, sizeof esc, "\\\\");
            break;
        case '\n':
            n = (size_t)snprintf(esc, sizeof esc, "\\n");
            break;
        case '\t':
            n = (size_t)snprintf(esc, sizeof esc, "\\t");
            break;
        case '\r':
            n = (size_t)snprintf(esc, sizeof esc, "\\r");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
            } else {
                esc[0] = (char)*p;
                n = 1;
            }
        }
        if (b->len + n + 1 > b->limit) {
            break;
        }
        put(b, esc, n);
    }
    b->limit += 1; /* the closing quote always fits */
    put_str(b, "\"");
    b->limit -= 1;
}

static void put_field_str(line_buf *b, const char *key, const char *value)
{
    put_str(b, ", ");
    put_json_string(b, key);
    put_str(b, ": ");
    put_json_string(b, value);
}

static void put_field_int(line_buf *b, const char *key, long value)
{
    char num[32];
    snprintf(num, sizeof num, "%ld", value);
    put_str(b, ", ");
    put_json_string(b, key);
    put_str(b, ": ");
    put_str(b, num);
}

static void format_line(line_buf *b, int level, const char *name, const char *file, const char *func,
                        int line, const char *message);

/* The line saying how many lines were dropped, in the log's format. */
static size_t dropped_note(char *buf, size_t cap, unsigned long dropped)
{
    char message[128];
    snprintf(message, sizeof message, "%lu log lines dropped or cut short: stderr was not writable", dropped);
    line_buf note = {.len = 0};
    format_line(&note, SAL_LOGLINE_WARNING, "log", NULL, NULL, 0, message);
    size_t n = note.len < cap ? note.len : cap;
    memcpy(buf, note.text, n);
    return n;
}

/* Write one line to stderr without ever waiting for a pipe or socket. */
static void emit(const char *text, size_t len)
{
    sal_errout_write_noted(text, len, dropped_note);
}

void sal_log_line(int level, const char *name, const char *file, const char *func, int line,
                  const char *message)
{
    line_buf b = {.len = 0};
    format_line(&b, level, name, file, func, line, message);
    emit(b.text, b.len);
}

/* The line of sal_log_line in b (which may already hold some bytes). */
static void format_line(line_buf *b, int level, const char *name, const char *file, const char *func,
                        int line, const char *message)
{
    b->limit = sizeof b->text - 3; /* "}\n" and a terminator */
    if (log_format == SAL_LOG_FORMAT_TEXT) {
        put_str(b, sal_log_level_name(level));
        put_str(b, " ");
        put_str(b, name);
        put_str(b, ": ");
        put_str(b, message);
        b->limit += 1;
        put_str(b, "\n");
    } else {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        char when[96];
        snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000));
        put_str(b, "{\"time\": ");
        put_json_string(b, when);
        put_field_str(b, "level", sal_log_level_name(level));
        put_field_int(b, "levelno", level);
        put_field_str(b, "name", name);
        put_field_int(b, "pid", (long)getpid());
        if (file != NULL) {
            put_field_str(b, "file", file);
            put_field_str(b, "function", func != NULL ? func : "");
            put_field_int(b, "line", line);
        }
        put_field_str(b, "message", message); /* last: a cut message keeps the rest */
        b->limit += 2;
        put_str(b, "}\n");
    }
}

void sal_log_say(int level, const char *name, const char *fmt, ...)
{
    char message[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (log_format == SAL_LOG_FORMAT_JSON) {
        sal_log_line(level, name, NULL, NULL, 0, message);
    } else {
        line_buf b = {.len = 0, .limit = sizeof b.text - 1};
        put_str(&b, name);
        put_str(&b, ": ");
        put_str(&b, message);
        b.limit += 1;
        put_str(&b, "\n");
        emit(b.text, b.len);
    }
}
