/*
 * yaml_json_resolve.c - PyYAML's implicit resolvers (YAML 1.1): which tag a
 * plain scalar gets (null, bool, int, float, timestamp, merge, value or
 * str), matched by hand-written equivalents of PyYAML's regular
 * expressions, and the tags SafeConstructor knows.
 */
#include "yaml_json__internal.h"

#include <string.h>

/* ---- the resolver's regular expressions -------------------------------- */

int yj_at_end(const yj_cur *k)
{
    return k->i == k->n;
}

int yj_eat(yj_cur *k, char ch)
{
    if (k->i < k->n && k->s[k->i] == ch) {
        k->i++;
        return 1;
    }
    return 0;
}

int yj_in(char ch, const char *set)
{
    return ch != '\0' && strchr(set, ch) != NULL;
}

int yj_eat_in(yj_cur *k, const char *set)
{
    if (k->i < k->n && yj_in(k->s[k->i], set)) {
        k->i++;
        return 1;
    }
    return 0;
}

size_t yj_eat_all(yj_cur *k, const char *set)
{
    size_t start = k->i;
    while (yj_eat_in(k, set)) {
    }
    return k->i - start;
}

/* Greedily min..max decimal digits into *value; 0 if fewer than min. */
static int yj_eat_number(yj_cur *k, size_t min, size_t max, long *value)
{
    size_t count = 0;
    *value = 0;
    while (count < max && k->i < k->n && yj_in(k->s[k->i], YJ_DIGITS)) {
        *value = *value * 10 + (k->s[k->i] - '0');
        k->i++;
        count++;
    }
    return count >= min;
}

/* (?::[0-5]?[0-9])+ */
static int yj_eat_sexagesimal(yj_cur *k)
{
    int groups = 0;
    while (yj_eat(k, ':')) {
        if (k->i + 1 < k->n && yj_in(k->s[k->i], "012345") && yj_in(k->s[k->i + 1], YJ_DIGITS)) {
            k->i += 2;
        } else if (!yj_eat_in(k, YJ_DIGITS)) {
            return 0;
        }
        groups++;
    }
    return groups > 0;
}

/* (?:[eE][-+][0-9]+)? */
static void yj_eat_exponent(yj_cur *k)
{
    size_t start = k->i;
    if (yj_eat_in(k, "eE") && yj_eat_in(k, "-+") && yj_eat_all(k, YJ_DIGITS) > 0) {
        return;
    }
    k->i = start;
}

int yj_is_word(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++) {
        if (strlen(*words) == n && memcmp(s, *words, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static int yj_match_bool(const char *s, size_t n)
{
    static const char *const words[] = {"yes",  "Yes",  "YES",   "no",    "No",    "NO", "true",
                                        "True", "TRUE", "false", "False", "FALSE", "on", "On",
                                        "ON",   "off",  "Off",   "OFF",   NULL};
    return yj_is_word(s, n, words);
}

static int yj_match_null(const char *s, size_t n)
{
    static const char *const words[] = {"~", "null", "Null", "NULL", "", NULL};
    return yj_is_word(s, n, words);
}

/* After the '.' of a float: \.(?:inf|Inf|INF), unsigned \.(?:nan|NaN|NAN)
 * or unsigned \.[0-9][0-9_]*(?:[eE][-+][0-9]+)? */
static int yj_match_float_dot(yj_cur *k, int signed_)
{
    static const char *const inf[] = {"inf", "Inf", "INF", NULL};
    static const char *const nan[] = {"nan", "NaN", "NAN", NULL};
    const char *rest = k->s + k->i;
    size_t n = k->n - k->i;
    if (yj_is_word(rest, n, inf)) {
        return 1;
    }
    if (signed_) {
        return 0;
    }
    if (yj_is_word(rest, n, nan)) {
        return 1;
    }
    if (!yj_eat_in(k, YJ_DIGITS)) {
        return 0;
    }
    yj_eat_all(k, YJ_DIGITS_U);
    yj_eat_exponent(k);
    return yj_at_end(k);
}

static int yj_match_float(const char *s, size_t n)
{
    yj_cur k = {s, n, 0};
    int signed_ = yj_eat_in(&k, "-+");
    if (yj_eat(&k, '.')) {
        return yj_match_float_dot(&k, signed_);
    }
    if (!yj_eat_in(&k, YJ_DIGITS)) {
        return 0;
    }
    yj_eat_all(&k, YJ_DIGITS_U);
    if (yj_eat(&k, '.')) {
        yj_eat_all(&k, YJ_DIGITS_U);
        yj_eat_exponent(&k);
        return yj_at_end(&k);
    }
    if (!yj_eat_sexagesimal(&k) || !yj_eat(&k, '.')) {
        return 0;
    }
    yj_eat_all(&k, YJ_DIGITS_U);
    return yj_at_end(&k);
}

static int yj_match_int(const char *s, size_t n)
{
    yj_cur k = {s, n, 0};
    yj_eat_in(&k, "-+");
    if (yj_eat(&k, '0')) {
        if (yj_at_end(&k)) {
            return 1;
        }
        if (yj_eat(&k, 'b')) {
            return yj_eat_all(&k, "01_") > 0 && yj_at_end(&k);
        }
        if (yj_eat(&k, 'x')) {
            return yj_eat_all(&k, "0123456789abcdefABCDEF_") > 0 && yj_at_end(&k);
        }
        return yj_eat_all(&k, "01234567_") > 0 && yj_at_end(&k);
    }
    if (!yj_eat_in(&k, "123456789")) {
        return 0;
    }
    yj_eat_all(&k, YJ_DIGITS_U);
    if (yj_at_end(&k)) {
        return 1;
    }
    return yj_eat_sexagesimal(&k) && yj_at_end(&k);
}

/* The time part of a timestamp: (?:[Tt]|[ \t]+)H?H:MM:SS(?:\.[0-9]*)?
 * (?:[ \t]*(?:Z|[-+]H?H(?::MM)?))? up to the end. */
static int yj_match_time(yj_cur *k, yj_stamp *t)
{
    size_t before_tz;
    if (!yj_eat_in(k, "Tt") && yj_eat_all(k, " \t") == 0) {
        return 0;
    }
    if (!yj_eat_number(k, 1, 2, &t->hour) || !yj_eat(k, ':') || !yj_eat_number(k, 2, 2, &t->minute) ||
        !yj_eat(k, ':') || !yj_eat_number(k, 2, 2, &t->second)) {
        return 0;
    }
    t->has_time = 1;
    if (yj_eat(k, '.')) {
        yj_eat_all(k, YJ_DIGITS);
    }
    before_tz = k->i;
    yj_eat_all(k, " \t");
    if (yj_eat_in(k, "-+")) {
        if (!yj_eat_number(k, 1, 2, &t->tz_hour)) {
            return 0;
        }
        if (yj_eat(k, ':') && !yj_eat_number(k, 2, 2, &t->tz_minute)) {
            return 0;
        }
    } else if (!yj_eat(k, 'Z')) {
        k->i = before_tz;
    }
    return yj_at_end(k);
}

/* The resolver's timestamp regex (strict: a date alone needs two-digit
 * month and day) or the constructor's (not strict). */
int yj_match_timestamp(const char *s, size_t n, int strict, yj_stamp *t)
{
    yj_cur k = {s, n, 0};
    size_t month_at, day_at, month_digits, day_digits;
    memset(t, 0, sizeof *t);
    if (!yj_eat_number(&k, 4, 4, &t->year) || !yj_eat(&k, '-')) {
        return 0;
    }
    month_at = k.i;
    if (!yj_eat_number(&k, 1, 2, &t->month)) {
        return 0;
    }
    month_digits = k.i - month_at;
    if (!yj_eat(&k, '-')) {
        return 0;
    }
    day_at = k.i;
    if (!yj_eat_number(&k, 1, 2, &t->day)) {
        return 0;
    }
    day_digits = k.i - day_at;
    if (yj_at_end(&k)) {
        return !strict || (month_digits == 2 && day_digits == 2);
    }
    return yj_match_time(&k, t);
}

/* Python's re '$' also matches before a final newline. */
size_t yj_match_len(const char *s, size_t n)
{
    return n > 0 && s[n - 1] == '\n' ? n - 1 : n;
}

/* PyYAML's implicit resolvers, tried in its order, chosen by first char. */
enum yj_tag yj_resolve(const char *s, size_t n)
{
    size_t m = yj_match_len(s, n);
    yj_stamp t;
    char first = n > 0 ? s[0] : '\0';
    if (n == 0) {
        return YJ_T_NULL;
    }
    if (yj_in(first, "yYnNtTfFoO") && yj_match_bool(s, m)) {
        return YJ_T_BOOL;
    }
    if (yj_in(first, "-+0123456789.") && yj_match_float(s, m)) {
        return YJ_T_FLOAT;
    }
    if (yj_in(first, "-+0123456789") && yj_match_int(s, m)) {
        return YJ_T_INT;
    }
    if (first == '<' && m == 2 && s[1] == '<') {
        return YJ_T_MERGE;
    }
    if (yj_in(first, "~nN") && m > 0 && yj_match_null(s, m)) {
        return YJ_T_NULL;
    }
    if (yj_in(first, YJ_DIGITS) && yj_match_timestamp(s, m, 1, &t)) {
        return YJ_T_TIMESTAMP;
    }
    if (first == '=' && m == 1) {
        return YJ_T_VALUE;
    }
    return YJ_T_STR;
}

enum yj_tag yj_tag_of(const yaml_char_t *tag)
{
    static const struct {
        const char *name;
        enum yj_tag tag;
    } known[] = {{"str", YJ_T_STR},      {"int", YJ_T_INT},       {"float", YJ_T_FLOAT},
                 {"bool", YJ_T_BOOL},    {"null", YJ_T_NULL},     {"timestamp", YJ_T_TIMESTAMP},
                 {"merge", YJ_T_MERGE},  {"value", YJ_T_VALUE},   {"seq", YJ_T_SEQ},
                 {"map", YJ_T_MAP},      {"binary", YJ_T_NOJSON}, {"omap", YJ_T_NOJSON},
                 {"pairs", YJ_T_NOJSON}, {"set", YJ_T_NOJSON}};
    const char *name = (const char *)tag;
    size_t plen = strlen(YJ_TAG_PREFIX), i;
    if (!name || strcmp(name, "!") == 0) {
        return YJ_T_NONE;
    }
    if (strncmp(name, YJ_TAG_PREFIX, plen) != 0) {
        return YJ_T_UNKNOWN;
    }
    for (i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name + plen, known[i].name) == 0) {
            return known[i].tag;
        }
    }
    return YJ_T_UNKNOWN;
}
