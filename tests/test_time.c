/*
 * test_time: the TAI clock (csc/util/sal_time.h): leap-second table
 * parsing and fallback, TAI-UTC steps, the once-only expiry warning, the
 * CLOCK_TAI sanity check and the UTC <-> TAI round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ocps/sal_time.h"
#include "test_util.h"

/* 2017-01-01T00:00:00Z, when TAI-UTC became 37 s. */
#define LEAP_2017 1483228800.0

/* Three entries, expiring far in the future (NTP 5000000000, year 2058). */
static const char table_current[] = "#\n"
                                    "# test leap-second table\n"
                                    "#$\t3676924800\n"
                                    "#@\t5000000000\n"
                                    "3550089600\t35\t# 1 Jul 2012\n"
                                    "3644697600\t36\t# 1 Jul 2015\n"
                                    "3692217600\t37\t# 1 Jan 2017\n"
                                    "#h\t16edd0f0 3666784f 37db6bdd e74ced87 59af48f1\n";

/* The same entries, expired on 2020-06-20 (NTP 3801600000). */
static const char table_expired[] = "#@ 3801600000\n"
                                    "3644697600 36 # 1 Jul 2015\n"
                                    "3692217600 37 # 1 Jan 2017\n";

typedef struct warnings {
    int count;
    int expired;   /* messages about the table's expiry */
    int clock_tai; /* messages about CLOCK_TAI */
    char last[512];
} warnings;

static void collect(void *arg, const char *msg)
{
    warnings *w = arg;
    w->count++;
    if (strstr(msg, "expired") != NULL) {
        w->expired++;
    }
    if (strstr(msg, "CLOCK_TAI") != NULL) {
        w->clock_tai++;
    }
    snprintf(w->last, sizeof w->last, "%s", msg);
}

/* Write `len` bytes as a table file in a fresh temp dir; returns its path
 * and the dir in *dir (both malloc'd). */
static char *write_table(const char *data, size_t len, char **dir)
{
    *dir = tu_make_temp_dir();
    assert_non_null(*dir);
    char *path = tu_path_join(*dir, "leap-seconds.list");
    assert_int_equal(tu_write_file(path, data, len), 0);
    return path;
}

static void cleanup(char *path, char *dir)
{
    free(path);
    tu_remove_tree(dir);
    free(dir);
}

static double offset_at(const sal_clock *c, double utc)
{
    double offset = -1.0;
    assert_int_equal(sal_clock_tai_minus_utc(c, utc, &offset), 0);
    return offset;
}

/* A table in NTP format is read: entries, expiry, source, no note. */
static void test_parse_table_file(void **state)
{
    (void)state;
    char *dir;
    char *path = write_table(table_current, sizeof table_current - 1, &dir);
    sal_clock c;
    char err[256] = "x";
    assert_int_equal(sal_clock_init(&c, path, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(c.note, "");
    assert_false(c.builtin);
    assert_string_equal(c.source, path);
    assert_int_equal(c.nleaps, 3);
    assert_true(c.leaps[0].utc == 3550089600.0 - SAL_NTP_UNIX_OFFSET);
    assert_int_equal(c.leaps[0].offset, 35);
    assert_true(c.leaps[2].utc == LEAP_2017);
    assert_int_equal(c.leaps[2].offset, 37);
    assert_true(c.expires == 5000000000.0 - SAL_NTP_UNIX_OFFSET);
    sal_clock_fini(&c);
    cleanup(path, dir);
}

/* TAI-UTC steps at the leap second: 36 s on 2016-12-31, 37 s from 2017. */
static void test_offset_leap_step(void **state)
{
    (void)state;
    char *dir;
    char *path = write_table(table_current, sizeof table_current - 1, &dir);
    sal_clock c;
    assert_int_equal(sal_clock_init(&c, path, NULL, 0), 0);
    assert_true(offset_at(&c, LEAP_2017 - 86400.0) == 36.0);
    assert_true(offset_at(&c, LEAP_2017 - 0.001) == 36.0);
    assert_true(offset_at(&c, LEAP_2017) == 37.0);
    assert_true(offset_at(&c, LEAP_2017 + 86400.0) == 37.0);
    assert_true(offset_at(&c, 1435708800.0 - 1.0) == 35.0); /* 2015-06-30T23:59:59 */
    assert_true(sal_clock_tai_from_utc(&c, LEAP_2017 - 1.0) == LEAP_2017 - 1.0 + 36.0);
    assert_true(sal_clock_tai_from_utc(&c, LEAP_2017) == LEAP_2017 + 37.0);

    /* Before the table's first entry: an error, and the first offset. */
    double offset = 0.0;
    assert_int_equal(sal_clock_tai_minus_utc(&c, 1000000000.0, &offset), -1);
    assert_true(offset == 35.0);
    sal_clock_fini(&c);
    cleanup(path, dir);

    /* The built-in table, used by sal_time_tai_minus_utc. */
    assert_int_equal(sal_time_tai_minus_utc(LEAP_2017 - 1.0, &offset), 0);
    assert_true(offset == 36.0);
    assert_int_equal(sal_time_tai_minus_utc(LEAP_2017, &offset), 0);
    assert_true(offset == 37.0);
    assert_int_equal(sal_time_tai_minus_utc(63072000.0, &offset), 0); /* 1972-01-01 */
    assert_true(offset == 10.0);
    assert_int_equal(sal_time_tai_minus_utc(0.0, &offset), -1);
    assert_true(offset == 10.0);
    assert_int_equal(sal_time_tai_minus_utc(0.0, NULL), -1);
}

/* Past its expiry the table keeps giving 37 s and warns exactly once. */
static void test_expired_table_warns_once(void **state)
{
    (void)state;
    char *dir;
    char *path = write_table(table_expired, sizeof table_expired - 1, &dir);
    sal_clock c;
    warnings w = {0};
    assert_int_equal(sal_clock_init(&c, path, NULL, 0), 0);
    sal_clock_set_warn(&c, collect, &w);
    assert_true(sal_time_utc() > c.expires);
    for (int i = 0; i < 1000; i++) {
        double utc = sal_time_utc();
        double tai = sal_clock_tai(&c);
        assert_true(tai - utc > 37.0 - 1.1 && tai - utc < 37.0 + 1.1);
        assert_true(offset_at(&c, utc) == 37.0);
        assert_true(sal_clock_tai_from_utc(&c, utc) == utc + 37.0);
    }
    assert_int_equal(w.expired, 1);
    assert_int_equal(w.count, w.expired + w.clock_tai);
    assert_true(w.clock_tai <= 1);
    sal_clock_fini(&c);
    cleanup(path, dir);
}

/* Without a file the built-in table is used (37 s now), with a note. */
static void test_missing_file_falls_back(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir();
    assert_non_null(dir);
    char *path = tu_path_join(dir, "no-such-leap-seconds.list");
    sal_clock c;
    char err[256] = "";
    assert_int_equal(sal_clock_init(&c, path, err, sizeof err), 0);
    assert_true(c.builtin);
    assert_non_null(strstr(err, "built-in"));
    assert_non_null(strstr(c.note, "built-in"));
    assert_string_equal(c.source, "built-in table");
    assert_true(offset_at(&c, sal_time_utc()) == 37.0);
    assert_true(offset_at(&c, LEAP_2017 - 1.0) == 36.0);
    assert_true(c.expires > LEAP_2017);
    sal_clock_fini(&c);

    /* A directory, an empty file and a file of junk also fall back. */
    assert_int_equal(sal_clock_init(&c, dir, NULL, 0), 0);
    assert_true(c.builtin);
    char *empty = tu_path_join(dir, "empty.list");
    assert_int_equal(tu_write_file(empty, "", 0), 0);
    assert_int_equal(sal_clock_init(&c, empty, NULL, 0), 0);
    assert_true(c.builtin);
    static const char junk[] = "hello\n\x01\x02\xff\n-5 37\n";
    assert_int_equal(tu_write_file(empty, junk, sizeof junk - 1), 0);
    assert_int_equal(sal_clock_init(&c, empty, err, sizeof err), 0);
    assert_true(c.builtin);
    assert_non_null(strstr(err, "no valid entries"));
    assert_true(offset_at(&c, sal_time_utc()) == 37.0);
    sal_clock_fini(&c);

    assert_int_equal(sal_clock_init(NULL, NULL, err, sizeof err), -1);
    free(empty);
    cleanup(path, dir);
}

/* Malformed lines are skipped; the valid entries around them are kept. */
static void test_malformed_lines_ignored(void **state)
{
    (void)state;
    char buf[4096];
    size_t len = 0;
    static const char *const lines[] = {
        "#@ 5000000000\r\n", /* CRLF */
        "3550089600 35 # 1 Jul 2012\r\n",
        "garbage line\n",               /* junk */
        "3600000000\n",                 /* no offset */
        "3600000000 x35\n",             /* bad offset */
        "3600000000 35 trailing\n",     /* trailing junk */
        "-3600000000 35\n",             /* negative time */
        "99999999999999999999999 35\n", /* overflow */
        "1000 35\n",                    /* before 1972 */
        "3600000000 5000\n",            /* implausible offset */
        "3550089600 36\n",              /* not after the previous entry */
        "#@ not-a-number\n",            /* bad expiry */
        "   \t \n",                     /* blank: not counted */
        "3644697600 36 # 1 Jul 2015\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        size_t n = strlen(lines[i]);
        memcpy(buf + len, lines[i], n);
        len += n;
    }
    /* An overlong line (even one starting like an entry), then a NUL. */
    memcpy(buf + len, "3660000000 99", 13);
    len += 13;
    memset(buf + len, ' ', 1000);
    len += 1000;
    buf[len++] = '\n';
    memcpy(buf + len, "3670000000\0 99\n", 15);
    len += 15;
    /* The last line has no newline. */
    memcpy(buf + len, "3692217600 37", 13);
    len += 13;

    char *dir;
    char *path = write_table(buf, len, &dir);
    sal_clock c;
    char err[256] = "";
    assert_int_equal(sal_clock_init(&c, path, err, sizeof err), 0);
    assert_false(c.builtin);
    assert_int_equal(c.nleaps, 3);
    assert_int_equal(c.leaps[0].offset, 35);
    assert_int_equal(c.leaps[1].offset, 36);
    assert_int_equal(c.leaps[2].offset, 37);
    assert_true(c.leaps[2].utc == LEAP_2017);
    assert_true(c.expires == 5000000000.0 - SAL_NTP_UNIX_OFFSET);
    assert_non_null(strstr(err, "ignored 12 malformed line(s)"));
    sal_clock_fini(&c);
    cleanup(path, dir);
}

/* sal_clock_tai is UTC + 37 s here, whatever CLOCK_TAI says. */
static void test_clock_tai_is_utc_plus_37(void **state)
{
    (void)state;
    sal_clock c;
    warnings w = {0};
    char err[256];
    assert_int_equal(sal_clock_init(&c, NULL, err, sizeof err), 0);
    sal_clock_set_warn(&c, collect, &w);
    assert_int_equal(sal_clock_get_method(&c), SAL_CLOCK_UNDECIDED);
    for (int i = 0; i < 100; i++) {
        double tai = sal_clock_tai(&c);
        double expect = sal_time_utc() + 37.0;
        assert_true(tai > expect - 1.1 && tai < expect + 1.1);
    }
    assert_int_not_equal(sal_clock_get_method(&c), SAL_CLOCK_UNDECIDED);
    assert_true(w.clock_tai <= 1);

#ifdef CLOCK_TAI
    /* If the kernel's CLOCK_TAI is off (offset 0 here), it is not used,
     * and that was reported. */
    struct timespec ts;
    if (clock_gettime(CLOCK_TAI, &ts) == 0) {
        double system_tai = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
        double error = system_tai - (sal_time_utc() + 37.0);
        if (error < -1.1 || error > 1.1) {
            assert_int_equal(sal_clock_get_method(&c), SAL_CLOCK_UTC_PLUS_TABLE);
            assert_int_equal(w.clock_tai, 1);
        }
    }
#endif
    sal_clock_fini(&c);
}

/* utc_from_tai inverts tai_from_utc, around leap seconds too. */
static void test_utc_tai_round_trip(void **state)
{
    (void)state;
    sal_clock c;
    assert_int_equal(sal_clock_init(&c, NULL, NULL, 0), 0);
    const double utcs[] = {
        LEAP_2017 - 86400.0, LEAP_2017 - 1.0, LEAP_2017 - 0.5,    LEAP_2017 - 1e-6, LEAP_2017,
        LEAP_2017 + 0.25,    LEAP_2017 + 1.0, 1435708800.0 - 0.5, 1435708800.0,     1700000000.123456,
        1782604800.0 + 1,    2000000000.5,    915148800.0 - 0.75, sal_time_utc(),
    };
    for (size_t i = 0; i < sizeof utcs / sizeof utcs[0]; i++) {
        double tai = sal_clock_tai_from_utc(&c, utcs[i]);
        double back = sal_clock_utc_from_tai(&c, tai);
        if (back != utcs[i]) {
            fail_msg("utc %.9f -> tai %.9f -> utc %.9f", utcs[i], tai, back);
        }
    }
    /* And the TAI of the current time, read from the clock. */
    double tai = sal_clock_tai(&c);
    assert_true(sal_clock_tai_from_utc(&c, sal_clock_utc_from_tai(&c, tai)) == tai);
    sal_clock_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table_file),         cmocka_unit_test(test_offset_leap_step),
        cmocka_unit_test(test_expired_table_warns_once), cmocka_unit_test(test_missing_file_falls_back),
        cmocka_unit_test(test_malformed_lines_ignored),  cmocka_unit_test(test_clock_tai_is_utc_plus_37),
        cmocka_unit_test(test_utc_tai_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
