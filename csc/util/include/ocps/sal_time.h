/*
 * sal_time.h - UTC and TAI clocks for SAL timestamps.
 *
 * SAL timestamps (private_sndStamp, private_rcvStamp, logMessage timestamp)
 * are TAI as unix seconds. This mirrors Rubin's ts_utils tai.py with two
 * deliberate differences:
 *
 * - Past the leap-second table's expiry the last known TAI-UTC offset is
 *   kept (37 s since 2017-01-01) and a warning is reported once; tai.py
 *   refuses to compute TAI then. No leap second has been announced since
 *   2017, and a newer table file overrides.
 * - TAI-UTC changes in one integer step at the leap second. tai.py smears
 *   the step linearly over the UTC day before it, so during that one day
 *   (the last was 2016-12-31) the two differ by up to 1 s.
 *
 * The current TAI comes from clock_gettime(CLOCK_TAI) only if that agrees
 * within 1.1 s with UTC plus the table offset (as tai.py checks); on hosts
 * whose kernel TAI offset is 0 (CLOCK_TAI == UTC) it is UTC + offset.
 *
 * All state lives in a sal_clock; there is no global mutable state.
 */
#ifndef SAL_TIME_H
#define SAL_TIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The system leap-second file (NTP format, as distributed by tzdata). */
#define SAL_LEAP_FILE_DEFAULT "/usr/share/zoneinfo/leap-seconds.list"

/* Most entries a leap-second table holds (the real one has 28 in 2025). */
#define SAL_LEAP_MAX 64

/* Seconds from the NTP epoch (1900-01-01) to the unix epoch. */
#define SAL_NTP_UNIX_OFFSET 2208988800.0

/* How sal_clock_tai gets the current TAI. */
typedef enum sal_clock_method {
    SAL_CLOCK_UNDECIDED = 0, /* not chosen yet (before the first sal_clock_tai) */
    SAL_CLOCK_SYSTEM_TAI,    /* clock_gettime(CLOCK_TAI) */
    SAL_CLOCK_UTC_PLUS_TABLE /* CLOCK_REALTIME + TAI-UTC from the table */
} sal_clock_method;

/* One step of the table: from UTC unix time `utc` on, TAI-UTC = `offset` s. */
typedef struct sal_leap_entry {
    double utc;
    int offset;
} sal_leap_entry;

/* Warning sink: msg is valid only during the call. */
typedef void (*sal_clock_warn_fn)(void *arg, const char *msg);

/* A TAI clock. Embed it anywhere; set it up with sal_clock_init. After
 * init and sal_clock_set_warn, sal_clock_tai may be called from several
 * threads at once (its only mutable state is atomic). Treat the fields
 * as read-only. */
typedef struct sal_clock {
    sal_leap_entry leaps[SAL_LEAP_MAX]; /* ascending by utc */
    int nleaps;                         /* >= 1 after init */
    double expires;                     /* table expiry, UTC unix seconds; 0 = not given */
    bool builtin;                       /* the built-in table is in use */
    char source[256];                   /* file the table came from, or "built-in table" */
    char note[256];                     /* init note (fallback, ignored lines), or "" */
    sal_clock_warn_fn warn;             /* may be NULL */
    void *warn_arg;
    atomic_int method;          /* a sal_clock_method; chosen by the first sal_clock_tai */
    atomic_bool warned_expired; /* the expiry warning was reported */
} sal_clock;

/* Current UTC as unix seconds (CLOCK_REALTIME). */
double sal_time_utc(void);

/* A duration in seconds as whole milliseconds for a timer, without
 * undefined behaviour whatever it is (a timeout read from the wire): NaN
 * and negative give 0, huge values and +inf saturate at UINT64_MAX (a
 * libuv timer that never fires). */
uint64_t sal_seconds_to_ms(double seconds);

/* TAI-UTC in seconds at UTC unix time `utc`, from the built-in table (the
 * last offset is kept past its expiry). Returns 0, or -1 if offset is NULL
 * or utc is before 1972-01-01, when integer leap seconds began (then
 * *offset is still set, to the 1972 value of 10 s). */
int sal_time_tai_minus_utc(double utc, double *offset);

/* Set up a clock: load the leap-second table from leap_file (NULL = the
 * system file SAL_LEAP_FILE_DEFAULT). If the file is missing, unreadable
 * or holds no valid entry, the built-in table is used. Malformed lines
 * are ignored. Returns 0 (and -1 only if c is NULL); err (may be NULL)
 * receives "" or a note worth logging, also kept in c->note. */
int sal_clock_init(sal_clock *c, const char *leap_file, char *err, size_t errlen);

/* Set the warning sink (NULL to drop warnings). Call before sharing the
 * clock between threads. Warnings: the table expired (once per clock),
 * CLOCK_TAI disagrees with UTC + table (once, when the method is chosen). */
void sal_clock_set_warn(sal_clock *c, sal_clock_warn_fn warn, void *arg);

/* Current TAI as unix seconds. The first call chooses the method (see
 * sal_clock_get_method). Never fails: past the table's expiry the last
 * offset is used and a warning reported once. */
double sal_clock_tai(sal_clock *c);

/* The method sal_clock_tai uses (SAL_CLOCK_UNDECIDED before its first call). */
sal_clock_method sal_clock_get_method(const sal_clock *c);

/* TAI-UTC in seconds at UTC unix time `utc`, from the clock's table. Returns
 * 0, or -1 if an argument is NULL or utc is before the first entry (then
 * *offset is set to the first entry's offset). */
int sal_clock_tai_minus_utc(const sal_clock *c, double utc, double *offset);

/* TAI unix seconds for UTC unix seconds `utc` (integer steps, no smear;
 * before the table's first entry its offset is used). */
double sal_clock_tai_from_utc(const sal_clock *c, double utc);

/* UTC unix seconds for TAI unix seconds `tai`: the inverse of
 * sal_clock_tai_from_utc (e.g. for Kafka's private_efdStamp). */
double sal_clock_utc_from_tai(const sal_clock *c, double tai);

/* Release a clock (nothing is allocated; the struct is cleared). */
void sal_clock_fini(sal_clock *c);

#endif
