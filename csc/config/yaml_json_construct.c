/*
 * yaml_json_construct.c - SafeConstructor's conversions of scalar text to
 * values, as Python computes them (int(), float(), sexagesimal numbers,
 * datetime's limits), and Python's repr(float) for non-string keys.
 */
#include "yaml_json__internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SafeConstructor's conversions ------------------------------------- */

static int yj_is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

static void yj_strip(const char **s, size_t *n)
{
    while (*n > 0 && yj_is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && yj_is_space((*s)[*n - 1])) {
        (*n)--;
    }
}

static int yj_digit_value(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'z') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'Z') {
        return ch - 'A' + 10;
    }
    return 99;
}

char yj_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* Python's int(s, base) (s without underscores), negated if asked; 0, -1
 * if Python would raise ValueError, -2 if it does not fit in 64 bits. */
static int yj_py_int(const char *s, size_t n, int base, int negate, int64_t *out)
{
    static const char prefix[17] = {[2] = 'b', [8] = 'o', [16] = 'x'};
    uint64_t mag = 0, limit;
    int overflow = 0;
    size_t i = 0, digits = 0;
    yj_strip(&s, &n);
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        negate ^= s[0] == '-';
        i++;
    }
    if (prefix[base] && n - i >= 2 && s[i] == '0' && yj_lower(s[i + 1]) == prefix[base]) {
        i += 2;
    }
    for (; i < n; i++, digits++) {
        int d = yj_digit_value(s[i]);
        if (d >= base) {
            return -1;
        }
        if (mag > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) {
            overflow = 1;
        } else {
            mag = mag * (uint64_t)base + (uint64_t)d;
        }
    }
    if (digits == 0) {
        return -1;
    }
    limit = negate ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    if (overflow || mag > limit) {
        return -2;
    }
    *out = negate ? (mag == limit ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    return 0;
}

/* The digits of value with '_' removed (and lower-cased if asked), into a
 * malloc'd buffer; NULL when out of memory. */
static char *yj_clean_number(const char *s, size_t n, int lower, size_t *m)
{
    char *v = malloc(n + 1);
    size_t i;
    *m = 0;
    if (!v) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (s[i] != '_') {
            v[(*m)++] = lower ? yj_lower(s[i]) : s[i];
        }
    }
    v[*m] = '\0';
    return v;
}

/* 190:20:30: the parts converted by int(), each worth 60 times the next. */
static int yj_py_sexagesimal_int(const char *v, size_t m, int negate, int64_t *out)
{
    int64_t total = 0, base = 1;
    int base_overflow = 0;
    size_t end = m;
    for (;;) {
        size_t start = end;
        int64_t part, term;
        int rc;
        while (start > 0 && v[start - 1] != ':') {
            start--;
        }
        rc = yj_py_int(v + start, end - start, 10, 0, &part);
        if (rc != 0) {
            return rc;
        }
        if (part != 0 && (base_overflow || __builtin_mul_overflow(part, base, &term) ||
                          __builtin_add_overflow(total, term, &total))) {
            return -2;
        }
        if (start == 0) {
            break;
        }
        end = start - 1;
        base_overflow |= __builtin_mul_overflow(base, 60, &base);
    }
    if (negate && __builtin_sub_overflow((int64_t)0, total, &total)) {
        return -2;
    }
    *out = total;
    return 0;
}

/* SafeConstructor.construct_yaml_int: 0, -1 (invalid), -2 (too large). */
int yj_construct_int(const char *s, size_t n, int64_t *out)
{
    size_t m;
    char *buf = yj_clean_number(s, n, 0, &m);
    const char *v = buf;
    int negate = 0, rc;
    if (!buf) {
        return -3;
    }
    if (m > 0 && (v[0] == '-' || v[0] == '+')) {
        negate = v[0] == '-';
        v++;
        m--;
    }
    if (m == 0) {
        rc = -1;
    } else if (m == 1 && v[0] == '0') {
        *out = 0;
        rc = 0;
    } else if (m >= 2 && v[0] == '0' && v[1] == 'b') {
        rc = yj_py_int(v + 2, m - 2, 2, negate, out);
    } else if (m >= 2 && v[0] == '0' && v[1] == 'x') {
        rc = yj_py_int(v + 2, m - 2, 16, negate, out);
    } else if (v[0] == '0') {
        rc = yj_py_int(v, m, 8, negate, out);
    } else if (memchr(v, ':', m)) {
        rc = yj_py_sexagesimal_int(v, m, negate, out);
    } else {
        rc = yj_py_int(v, m, 10, negate, out);
    }
    free(buf);
    return rc;
}

static int yj_eat_digits_run(yj_cur *k)
{
    return yj_eat_all(k, YJ_DIGITS) > 0;
}

/* Python's float(s) (s without underscores): 0, -1 if Python would raise
 * ValueError. inf, infinity and nan are accepted (and are not finite). */
static int yj_py_float(const char *s, size_t n, double *out)
{
    static const char *const special[] = {"inf", "infinity", "nan", NULL};
    yj_cur k;
    char text[64], *copy;
    size_t i;
    int digits;
    yj_strip(&s, &n);
    k = (yj_cur){s, n, 0};
    yj_eat_in(&k, "-+");
    if (n - k.i <= 8) {
        for (i = 0; k.i + i < n; i++) {
            text[i] = yj_lower(s[k.i + i]);
        }
        if (yj_is_word(text, n - k.i, special)) {
            int negative = n > 0 && s[0] == '-';
            *out = text[0] == 'n' ? NAN : (negative ? -INFINITY : INFINITY);
            return 0;
        }
    }
    digits = yj_eat_digits_run(&k);
    if (yj_eat(&k, '.')) {
        digits |= yj_eat_digits_run(&k);
    }
    if (!digits) {
        return -1;
    }
    if (yj_eat_in(&k, "eE")) {
        yj_eat_in(&k, "-+");
        if (!yj_eat_digits_run(&k)) {
            return -1;
        }
    }
    if (!yj_at_end(&k)) {
        return -1;
    }
    copy = n < sizeof text ? text : malloc(n + 1);
    if (!copy) {
        return -3;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    *out = strtod(copy, NULL);
    if (copy != text) {
        free(copy);
    }
    return 0;
}

/* The parts of 190:20:30.15 converted by float(), as PyYAML adds them. */
static int yj_py_sexagesimal_float(const char *v, size_t m, double *out)
{
    double total = 0.0, base = 1.0;
    size_t end = m;
    for (;;) {
        size_t start = end;
        double part;
        int rc;
        while (start > 0 && v[start - 1] != ':') {
            start--;
        }
        rc = yj_py_float(v + start, end - start, &part);
        if (rc != 0) {
            return rc;
        }
        total += part * base;
        base *= 60.0;
        if (start == 0) {
            break;
        }
        end = start - 1;
    }
    *out = total;
    return 0;
}

/* SafeConstructor.construct_yaml_float: 0, -1 (invalid), -2 (not finite). */
int yj_construct_float(const char *s, size_t n, double *out)
{
    size_t m;
    char *buf = yj_clean_number(s, n, 1, &m);
    const char *v = buf;
    double sign = 1.0, value = 0.0;
    int rc;
    if (!buf) {
        return -3;
    }
    if (m > 0 && (v[0] == '-' || v[0] == '+')) {
        sign = v[0] == '-' ? -1.0 : 1.0;
        v++;
        m--;
    }
    if (m == 0) {
        rc = -1;
    } else if ((m == 4 && memcmp(v, ".inf", 4) == 0) || (m == 4 && memcmp(v, ".nan", 4) == 0)) {
        rc = -2;
    } else if (memchr(v, ':', m)) {
        rc = yj_py_sexagesimal_float(v, m, &value);
    } else {
        rc = yj_py_float(v, m, &value);
    }
    free(buf);
    if (rc == 0) {
        *out = sign * value;
        if (!isfinite(*out)) {
            rc = -2;
        }
    }
    return rc;
}

static int yj_is_leap(long year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* Whether Python's datetime accepts the fields of a matched timestamp. */
int yj_stamp_valid(const yj_stamp *t)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int dim;
    if (t->year < 1 || t->month < 1 || t->month > 12) {
        return 0;
    }
    dim = mdays[t->month - 1] + (t->month == 2 && yj_is_leap(t->year));
    if (t->day < 1 || t->day > dim) {
        return 0;
    }
    if (!t->has_time) {
        return 1;
    }
    return t->hour <= 23 && t->minute <= 59 && t->second <= 59 && t->tz_hour * 60 + t->tz_minute < 24 * 60;
}

/* ---- Python's repr(float) ---------------------------------------------- */

/* The shortest digits that read back as d: "d.ddde+XX" in buf. */
static void yj_shortest(double d, char *buf, size_t len)
{
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d) {
            return;
        }
    }
}

void yj_float_repr(double d, char *buf, size_t len)
{
    char sci[40], digits[24], out[64], *p = sci, *e;
    size_t nd = 0, pos = 0;
    int exp, decpt, i;
    yj_shortest(d, sci, sizeof sci);
    if (*p == '-') {
        out[pos++] = *p++;
    }
    e = strchr(p, 'e');
    for (; p < e && nd < sizeof digits - 1; p++) {
        if (*p != '.') {
            digits[nd++] = *p;
        }
    }
    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }
    digits[nd] = '\0';
    exp = atoi(e + 1);
    decpt = exp + 1;
    if (decpt <= -4 || decpt > 16) {
        snprintf(out + pos, sizeof out - pos, "%c%s%se%c%02d", digits[0], nd > 1 ? "." : "", digits + 1,
                 exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (decpt <= 0) {
        out[pos++] = '0';
        out[pos++] = '.';
        for (i = decpt; i < 0; i++) {
            out[pos++] = '0';
        }
        snprintf(out + pos, sizeof out - pos, "%s", digits);
    } else if ((size_t)decpt >= nd) {
        for (i = 0; i < decpt; i++) {
            out[pos++] = (size_t)i < nd ? digits[i] : '0';
        }
        snprintf(out + pos, sizeof out - pos, ".0");
    } else {
        snprintf(out + pos, sizeof out - pos, "%.*s.%s", decpt, digits, digits + decpt);
    }
    snprintf(buf, len, "%s", out);
}
