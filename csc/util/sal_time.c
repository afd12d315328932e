/*
 * sal_time.c - UTC and TAI clocks for SAL timestamps (see sal_time.h).
 */
#include "ocps/sal_time.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Longest line kept from a leap-second file; longer lines are ignored. */
#define LEAP_LINE_MAX 256
/* Most bytes read from a leap-second file (the real one is about 5 kB). */
#define LEAP_FILE_MAX_BYTES (1024 * 1024)
/* Plausible NTP seconds: 1972-01-01 (the table's start) to about 2200. */
#define NTP_MIN 2272060800ULL
#define NTP_MAX 9400000000ULL
/* Plausible TAI-UTC, seconds. */
#define OFFSET_LIMIT 1000ULL
/* CLOCK_TAI is trusted if within this of UTC + table (as ts_utils tai.py). */
#define CLOCK_TAI_TOLERANCE 1.1

/* The built-in table, from tzdata 2025b's leap-seconds.list. */
static const sal_leap_entry builtin_leaps[] = {
    {63072000.0, 10},   /* 1 Jan 1972 */
    {78796800.0, 11},   /* 1 Jul 1972 */
    {94694400.0, 12},   /* 1 Jan 1973 */
    {126230400.0, 13},  /* 1 Jan 1974 */
    {157766400.0, 14},  /* 1 Jan 1975 */
    {189302400.0, 15},  /* 1 Jan 1976 */
    {220924800.0, 16},  /* 1 Jan 1977 */
    {252460800.0, 17},  /* 1 Jan 1978 */
    {283996800.0, 18},  /* 1 Jan 1979 */
    {315532800.0, 19},  /* 1 Jan 1980 */
    {362793600.0, 20},  /* 1 Jul 1981 */
    {394329600.0, 21},  /* 1 Jul 1982 */
    {425865600.0, 22},  /* 1 Jul 1983 */
    {489024000.0, 23},  /* 1 Jul 1985 */
    {567993600.0, 24},  /* 1 Jan 1988 */
    {631152000.0, 25},  /* 1 Jan 1990 */
    {662688000.0, 26},  /* 1 Jan 1991 */
    {709948800.0, 27},  /* 1 Jul 1992 */
    {741484800.0, 28},  /* 1 Jul 1993 */
    {773020800.0, 29},  /* 1 Jul 1994 */
    {820454400.0, 30},  /* 1 Jan 1996 */
    {867715200.0, 31},  /* 1 Jul 1997 */
    {915148800.0, 32},  /* 1 Jan 1999 */
    {1136073600.0, 33}, /* 1 Jan 2006 */
    {1230768000.0, 34}, /* 1 Jan 2009 */
    {1341100800.0, 35}, /* 1 Jul 2012 */
    {1435708800.0, 36}, /* 1 Jul 2015 */
    {1483228800.0, 37}, /* 1 Jan 2017 */
};
#define BUILTIN_COUNT ((int)(sizeof builtin_leaps / sizeof builtin_leaps[0]))
/* Expiry of that table: 28 Jun 2026 (NTP 3991593600). */
#define BUILTIN_EXPIRES 1782604800.0

uint64_t sal_seconds_to_ms(double seconds)
{
    double ms = seconds * 1000;
    if (!(ms > 0)) {
        return 0;
    }
    return ms < 0x1p64 ? (uint64_t)ms : UINT64_MAX;
}

double sal_time_utc(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return (double)time(NULL);
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Index of the last entry with utc <= `utc`, or -1 if before the first. */
static int find_utc(const sal_leap_entry *leaps, int n, double utc)
{
    for (int i = n - 1; i >= 0; i--) {
        if (leaps[i].utc <= utc) {
            return i;
        }
    }
    return -1;
}

/* Index of the last entry whose start, in TAI, is <= `tai`, or -1. */
static int find_tai(const sal_leap_entry *leaps, int n, double tai)
{
    for (int i = n - 1; i >= 0; i--) {
        if (leaps[i].utc + leaps[i].offset <= tai) {
            return i;
        }
    }
    return -1;
}

int sal_time_tai_minus_utc(double utc, double *offset)
{
    if (offset == NULL) {
        return -1;
    }
    int i = find_utc(builtin_leaps, BUILTIN_COUNT, utc);
    *offset = builtin_leaps[i < 0 ? 0 : i].offset;
    return i < 0 ? -1 : 0;
}

/* ---- leap-second file parsing ---- */

static void append_note(sal_clock *c, const char *fmt, ...)
{
    size_t len = strlen(c->note);
    if (len + 3 >= sizeof c->note) {
        return;
    }
    if (len > 0) {
        memcpy(c->note + len, "; ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->note + len, sizeof c->note - len, fmt, ap);
    va_end(ap);
}

static void format_date(double unix_seconds, char *buf, size_t len)
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d", &tm) == 0) {
        snprintf(buf, len, "unix %.0f", unix_seconds);
    }
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static const char *skip_blanks(const char *p)
{
    while (is_blank(*p)) {
        p++;
    }
    return p;
}

/* Parse decimal digits at *pp (at least one, no sign) up to `limit`;
 * advances *pp. Returns 0, or -1 if there are no digits or it is too big. */
static int parse_uint(const char **pp, unsigned long long limit, unsigned long long *out)
{
    const char *p = *pp;
    unsigned long long v = 0;
    if (*p < '0' || *p > '9') {
        return -1;
    }
    while (*p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
        p++;
    }
    *pp = p;
    *out = v;
    return 0;
}

/* The rest of a line is empty or a comment. */
static int at_line_end(const char *p)
{
    p = skip_blanks(p);
    return *p == '\0' || *p == '#';
}

enum line_kind { LINE_SKIP, LINE_ENTRY, LINE_EXPIRY, LINE_JUNK };

/* Classify one line (without its newline) and parse it. */
static enum line_kind parse_line(const char *line, sal_leap_entry *entry, double *expiry)
{
    const char *p = skip_blanks(line);
    unsigned long long ntp, off;
    if (*p == '\0') {
        return LINE_SKIP;
    }
    if (*p == '#') {
        if (p[1] != '@') {
            return LINE_SKIP; /* comment, #$ (last update), #h (hash) */
        }
        p = skip_blanks(p + 2);
        if (parse_uint(&p, NTP_MAX, &ntp) != 0 || ntp < NTP_MIN || !at_line_end(p)) {
            return LINE_JUNK;
        }
        *expiry = (double)ntp - SAL_NTP_UNIX_OFFSET;
        return LINE_EXPIRY;
    }
    if (parse_uint(&p, NTP_MAX, &ntp) != 0 || ntp < NTP_MIN || !is_blank(*p)) {
        return LINE_JUNK;
    }
    p = skip_blanks(p);
    int negative = 0;
    if (*p == '-' || *p == '+') {
        negative = *p == '-';
        p++;
    }
    if (parse_uint(&p, OFFSET_LIMIT, &off) != 0 || !at_line_end(p)) {
        return LINE_JUNK;
    }
    entry->utc = (double)ntp - SAL_NTP_UNIX_OFFSET;
    entry->offset = negative ? -(int)off : (int)off;
    return LINE_ENTRY;
}

/* Read a leap-second file into c->leaps / c->expires. Returns 0 if it gave
 * at least one entry, else -1 with a note saying why. */
static int load_file(sal_clock *c, const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        append_note(c, "leap-second file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[LEAP_LINE_MAX];
    size_t total = 0;
    int ignored = 0, overflow = 0, too_big = 0;
    double expiry = 0.0;
    c->nleaps = 0;
    for (;;) {
        size_t len = 0;
        int ch, overlong = 0;
        while ((ch = getc(f)) != EOF && ch != '\n') {
            if (++total > LEAP_FILE_MAX_BYTES) {
                too_big = 1;
                break;
            }
            if (ch == '\0' || len + 1 >= sizeof line) {
                overlong = 1; /* NUL bytes make a line junk, like overlong ones */
            } else {
                line[len++] = (char)ch;
            }
        }
        if (too_big || (ch == EOF && len == 0 && !overlong)) {
            break;
        }
        line[len] = '\0';
        sal_leap_entry e;
        enum line_kind kind = overlong ? LINE_JUNK : parse_line(line, &e, &expiry);
        if (kind == LINE_ENTRY) {
            if (c->nleaps > 0 && e.utc <= c->leaps[c->nleaps - 1].utc) {
                ignored++; /* out of order or duplicate */
            } else if (c->nleaps == SAL_LEAP_MAX) {
                overflow = 1;
            } else {
                c->leaps[c->nleaps++] = e;
            }
        } else if (kind == LINE_JUNK) {
            ignored++;
        }
        if (ch == EOF) {
            break;
        }
    }
    int read_error = ferror(f);
    int saved_errno = errno;
    fclose(f);

    if (read_error) {
        append_note(c, "leap-second file %s: read error: %s", path, strerror(saved_errno));
    } else if (too_big) {
        append_note(c, "leap-second file %s: larger than %d bytes", path, LEAP_FILE_MAX_BYTES);
    } else if (overflow) {
        append_note(c, "leap-second file %s: more than %d entries", path, SAL_LEAP_MAX);
    } else if (c->nleaps == 0) {
        append_note(c, "leap-second file %s: no valid entries", path);
    }
    if (read_error || too_big || overflow || c->nleaps == 0) {
        c->nleaps = 0;
        return -1;
    }
    c->expires = expiry;
    snprintf(c->source, sizeof c->source, "%s", path);
    if (ignored > 0) {
        append_note(c, "leap-second file %s: ignored %d malformed line(s)", path, ignored);
    }
    if (expiry == 0.0) {
        append_note(c, "leap-second file %s: no expiry (#@) line", path);
    }
    return 0;
}

static void use_builtin(sal_clock *c)
{
    memcpy(c->leaps, builtin_leaps, sizeof builtin_leaps);
    c->nleaps = BUILTIN_COUNT;
    c->expires = BUILTIN_EXPIRES;
    c->builtin = true;
    snprintf(c->source, sizeof c->source, "built-in table");
    char date[32];
    format_date(BUILTIN_EXPIRES, date, sizeof date);
    append_note(c, "using the built-in leap-second table (TAI-UTC %d s, expires %s)",
                builtin_leaps[BUILTIN_COUNT - 1].offset, date);
}

int sal_clock_init(sal_clock *c, const char *leap_file, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (c == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "sal_clock_init: no clock");
        }
        return -1;
    }
    memset(c, 0, sizeof *c);
    atomic_init(&c->method, SAL_CLOCK_UNDECIDED);
    atomic_init(&c->warned_expired, false);
    if (load_file(c, leap_file != NULL ? leap_file : SAL_LEAP_FILE_DEFAULT) != 0) {
        use_builtin(c);
    }
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", c->note);
    }
    return 0;
}

void sal_clock_set_warn(sal_clock *c, sal_clock_warn_fn warn, void *arg)
{
    c->warn = warn;
    c->warn_arg = arg;
}

static void emit_warning(const sal_clock *c, const char *fmt, ...)
{
    if (c->warn == NULL) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->warn(c->warn_arg, msg);
}

int sal_clock_tai_minus_utc(const sal_clock *c, double utc, double *offset)
{
    if (c == NULL || offset == NULL || c->nleaps <= 0) {
        return -1;
    }
    int i = find_utc(c->leaps, c->nleaps, utc);
    *offset = c->leaps[i < 0 ? 0 : i].offset;
    return i < 0 ? -1 : 0;
}

double sal_clock_tai_from_utc(const sal_clock *c, double utc)
{
    double offset = 0.0;
    (void)sal_clock_tai_minus_utc(c, utc, &offset);
    return utc + offset;
}

double sal_clock_utc_from_tai(const sal_clock *c, double tai)
{
    if (c == NULL || c->nleaps <= 0) {
        return tai;
    }
    int i = find_tai(c->leaps, c->nleaps, tai);
    return tai - c->leaps[i < 0 ? 0 : i].offset;
}

/* Choose how sal_clock_tai reads TAI (once; concurrent first calls agree). */
static sal_clock_method choose_method(sal_clock *c)
{
    sal_clock_method chosen = SAL_CLOCK_UTC_PLUS_TABLE;
    double error = 0.0;
    int disagrees = 0;
#ifdef CLOCK_TAI
    struct timespec ts;
    double before = sal_time_utc();
    int rc = clock_gettime(CLOCK_TAI, &ts);
    double after = sal_time_utc();
    if (rc == 0) {
        double system_tai = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
        error = system_tai - sal_clock_tai_from_utc(c, 0.5 * (before + after));
        if (error >= -CLOCK_TAI_TOLERANCE && error <= CLOCK_TAI_TOLERANCE) {
            chosen = SAL_CLOCK_SYSTEM_TAI;
        } else {
            disagrees = 1;
        }
    }
#endif
    int expected = SAL_CLOCK_UNDECIDED;
    if (!atomic_compare_exchange_strong(&c->method, &expected, (int)chosen)) {
        return (sal_clock_method)expected; /* another thread chose first */
    }
    if (disagrees) {
        double offset = 0.0;
        (void)sal_clock_tai_minus_utc(c, sal_time_utc(), &offset);
        emit_warning(
            c,
            "clock_gettime(CLOCK_TAI) is off by %.1f s from UTC + leap-second table (kernel TAI offset "
            "not set?); using UTC + %.0f s",
            error, offset);
    }
    return chosen;
}

double sal_clock_tai(sal_clock *c)
{
    double utc = sal_time_utc();
    sal_clock_method method = (sal_clock_method)atomic_load(&c->method);
    if (method == SAL_CLOCK_UNDECIDED) {
        method = choose_method(c);
    }
    double tai = 0.0;
    int have_tai = 0;
#ifdef CLOCK_TAI
    if (method == SAL_CLOCK_SYSTEM_TAI) {
        struct timespec ts;
        if (clock_gettime(CLOCK_TAI, &ts) == 0) {
            tai = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
            have_tai = 1;
        }
    }
#endif
    if (!have_tai) {
        tai = sal_clock_tai_from_utc(c, utc);
    }
    if (c->expires > 0.0 && utc > c->expires && !atomic_load(&c->warned_expired) &&
        !atomic_exchange(&c->warned_expired, true)) {
        char date[32];
        format_date(c->expires, date, sizeof date);
        emit_warning(
            c,
            "leap-second table (%s) expired on %s; still using TAI-UTC = %d s (update tzdata for a newer "
            "table)",
            c->source, date, c->leaps[c->nleaps - 1].offset);
    }
    return tai;
}

sal_clock_method sal_clock_get_method(const sal_clock *c)
{
    return (sal_clock_method)atomic_load(&c->method);
}

void sal_clock_fini(sal_clock *c)
{
    if (c != NULL) {
        memset(c, 0, sizeof *c);
    }
}
