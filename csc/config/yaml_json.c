/*
 * yaml_json.c - YAML to jansson as PyYAML's yaml.safe_load reads it; the
 * rules and the known differences are in yaml_json.h.
 *
 * libyaml's events are read by a recursive descent (at most
 * YAML_JSON_MAX_DEPTH frames deep); each node is resolved and constructed
 * as soon as it is complete. Aliases share the anchored value.
 */
#include "yaml_json.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#define YJ_TAG_PREFIX "tag:yaml.org,2002:"
#define YJ_DIGITS "0123456789"
#define YJ_DIGITS_U "0123456789_"
#define YJ_NO_SLOT SIZE_MAX

/* A node's tag: unresolved, one SafeConstructor knows, or neither. */
enum yj_tag {
    YJ_T_NONE,
    YJ_T_STR,
    YJ_T_INT,
    YJ_T_FLOAT,
    YJ_T_BOOL,
    YJ_T_NULL,
    YJ_T_TIMESTAMP,
    YJ_T_MERGE,
    YJ_T_VALUE,
    YJ_T_SEQ,
    YJ_T_MAP,
    YJ_T_NOJSON,
    YJ_T_UNKNOWN
};

/* What a node may be used as: data anywhere, or only a mapping key (PyYAML
 * has no constructor for the merge << and value = tags). */
enum yj_kind { YJ_DATA, YJ_MERGE_KEY, YJ_VALUE_KEY };

typedef struct yj_node {
    json_t *value; /* owned reference */
    enum yj_kind kind;
    int height; /* collections nested inside, itself included */
    yaml_mark_t mark;
} yj_node;

typedef struct yj_anchor {
    json_t *value; /* NULL while the anchored node is being read */
    size_t nodes;
    int height;
    enum yj_kind kind;
} yj_anchor;

typedef struct yj_ctx {
    yaml_parser_t parser;
    const char *text;
    size_t len;
    const char *path; /* NULL for text in memory */
    char *err;
    size_t errlen;
    int failed;
    json_t *anchor_index; /* anchor name -> index into anchors */
    yj_anchor *anchors;
    size_t nanchors;
    size_t anchor_cap;
    size_t nodes;
    int depth;
} yj_ctx;

/* A cursor over text[0..n) for the resolver's regular expressions. */
typedef struct yj_cur {
    const char *s;
    size_t n;
    size_t i;
} yj_cur;

typedef struct yj_stamp {
    long year, month, day, hour, minute, second, tz_hour, tz_minute;
    int has_time;
} yj_stamp;

static int yj_parse_node(yj_ctx *c, yaml_event_t *ev, yj_node *out);

/* ---- errors ---------------------------------------------------------- */

static void yj_vfail(yj_ctx *c, const yaml_mark_t *mark, const char *fmt, va_list ap)
{
    char msg[512];
    if (c->failed) {
        return;
    }
    c->failed = 1;
    if (!c->err || c->errlen == 0) {
        return;
    }
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (mark) {
        snprintf(c->err, c->errlen, "%s%sline %zu, column %zu: %s", c->path ? c->path : "",
                 c->path ? ": " : "", mark->line + 1, mark->column + 1, msg);
    } else {
        snprintf(c->err, c->errlen, "%s%s%s", c->path ? c->path : "", c->path ? ": " : "", msg);
    }
}

static int yj_fail(yj_ctx *c, yaml_mark_t mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    yj_vfail(c, &mark, fmt, ap);
    va_end(ap);
    return -1;
}

static int yj_fail_plain(yj_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    yj_vfail(c, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

/* The line and column of a byte offset (libyaml's reader errors have none). */
static yaml_mark_t yj_mark_at(const yj_ctx *c, size_t offset)
{
    yaml_mark_t m = {0, 0, 0};
    size_t i;
    if (offset > c->len) {
        offset = c->len;
    }
    for (i = 0; i < offset; i++) {
        if (c->text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)c->text[i] & 0xC0) != 0x80) {
            m.column++;
        }
    }
    m.index = offset;
    return m;
}

static int yj_parser_error(yj_ctx *c)
{
    const yaml_parser_t *p = &c->parser;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR) {
        return yj_fail_plain(c, "out of memory");
    }
    if (p->error == YAML_READER_ERROR) {
        yaml_mark_t m = yj_mark_at(c, p->problem_offset);
        if (p->problem_value != -1) {
            return yj_fail(c, m, "%s: #%X", problem, (unsigned)p->problem_value);
        }
        return yj_fail(c, m, "%s", problem);
    }
    if (p->context && p->context_mark.line != p->problem_mark.line) {
        return yj_fail(c, p->problem_mark, "%s (from line %zu, column %zu), %s", p->context,
                       p->context_mark.line + 1, p->context_mark.column + 1, problem);
    }
    if (p->context) {
        return yj_fail(c, p->problem_mark, "%s, %s", p->context, problem);
    }
    return yj_fail(c, p->problem_mark, "%s", problem);
}

static int yj_next(yj_ctx *c, yaml_event_t *ev)
{
    if (yaml_parser_parse(&c->parser, ev)) {
        return 0;
    }
    return yj_parser_error(c);
}

/* A scalar for messages: at most 60 bytes (cut at a character boundary),
 * control characters shown as '?'. */
typedef struct yj_excerpt {
    char text[68];
} yj_excerpt;

static yj_excerpt yj_show(const char *s, size_t n)
{
    yj_excerpt e;
    size_t len = n, i;
    if (len > 60) {
        len = 60;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80) {
            len--;
        }
    }
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        e.text[i] = ch < 0x20 || ch == 0x7F ? '?' : (char)ch;
    }
    snprintf(e.text + len, sizeof e.text - len, "%s", len < n ? "..." : "");
    return e;
}

static yj_excerpt yj_show_tag(const yaml_char_t *tag)
{
    return yj_show((const char *)tag, strlen((const char *)tag));
}

/* ---- the resolver's regular expressions -------------------------------- */

static int yj_at_end(const yj_cur *k)
{
    return k->i == k->n;
}

static int yj_eat(yj_cur *k, char ch)
{
    if (k->i < k->n && k->s[k->i] == ch) {
        k->i++;
        return 1;
    }
    return 0;
}

static int yj_in(char ch, const char *set)
{
    return ch != '\0' && strchr(set, ch) != NULL;
}

static int yj_eat_in(yj_cur *k, const char *set)
{
    if (k->i < k->n && yj_in(k->s[k->i], set)) {
        k->i++;
        return 1;
    }
    return 0;
}

static size_t yj_eat_all(yj_cur *k, const char *set)
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

static int yj_is_word(const char *s, size_t n, const char *const *words)
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
static int yj_match_timestamp(const char *s, size_t n, int strict, yj_stamp *t)
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
static size_t yj_match_len(const char *s, size_t n)
{
    return n > 0 && s[n - 1] == '\n' ? n - 1 : n;
}

/* PyYAML's implicit resolvers, tried in its order, chosen by first char. */
static enum yj_tag yj_resolve(const char *s, size_t n)
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

static enum yj_tag yj_tag_of(const yaml_char_t *tag)
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

static char yj_lower(char ch)
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
static int yj_construct_int(const char *s, size_t n, int64_t *out)
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
static int yj_construct_float(const char *s, size_t n, double *out)
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
static int yj_stamp_valid(const yj_stamp *t)
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

static void yj_float_repr(double d, char *buf, size_t len)
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

/* ---- scalars ------------------------------------------------------------- */

static int yj_oom(yj_ctx *c)
{
    return yj_fail_plain(c, "out of memory");
}

static int yj_make_string(yj_ctx *c, const char *s, size_t n, yaml_mark_t mark, yj_node *out)
{
    out->value = json_stringn(s, n);
    if (!out->value) {
        return yj_fail(c, mark, "string is not valid UTF-8");
    }
    return 0;
}

static int yj_make_bool(yj_ctx *c, const char *s, size_t n, yaml_mark_t mark, yj_node *out)
{
    static const char *const yes[] = {"yes", "true", "on", NULL};
    static const char *const no[] = {"no", "false", "off", NULL};
    char low[8];
    size_t i;
    if (n < sizeof low) {
        for (i = 0; i < n; i++) {
            low[i] = yj_lower(s[i]);
        }
        if (yj_is_word(low, n, yes) || yj_is_word(low, n, no)) {
            out->value = json_boolean(yj_is_word(low, n, yes));
            return 0;
        }
    }
    return yj_fail(c, mark, "invalid boolean '%s'", yj_show(s, n).text);
}

static int yj_make_int(yj_ctx *c, const char *s, size_t n, yaml_mark_t mark, yj_node *out)
{
    int64_t v = 0;
    int rc = yj_construct_int(s, n, &v);
    if (rc == -1) {
        return yj_fail(c, mark, "invalid integer '%s'", yj_show(s, n).text);
    }
    if (rc == -2) {
        return yj_fail(c, mark, "integer '%s' does not fit in 64 bits", yj_show(s, n).text);
    }
    if (rc != 0) {
        return yj_oom(c);
    }
    out->value = json_integer((json_int_t)v);
    return out->value ? 0 : yj_oom(c);
}

static int yj_make_float(yj_ctx *c, const char *s, size_t n, yaml_mark_t mark, yj_node *out)
{
    double v = 0.0;
    int rc = yj_construct_float(s, n, &v);
    if (rc == -1) {
        return yj_fail(c, mark, "invalid float '%s'", yj_show(s, n).text);
    }
    if (rc == -2) {
        return yj_fail(c, mark, "float '%s' is not finite: JSON has no infinity or NaN", yj_show(s, n).text);
    }
    if (rc != 0) {
        return yj_oom(c);
    }
    out->value = json_real(v);
    return out->value ? 0 : yj_oom(c);
}

static int yj_make_timestamp(yj_ctx *c, const char *s, size_t n, yaml_mark_t mark, yj_node *out)
{
    yj_stamp t;
    if (!yj_match_timestamp(s, yj_match_len(s, n), 0, &t) || !yj_stamp_valid(&t)) {
        return yj_fail(c, mark, "invalid timestamp '%s'", yj_show(s, n).text);
    }
    return yj_make_string(c, s, n, mark, out);
}

static int yj_construct_scalar(yj_ctx *c, enum yj_tag tag, const yaml_event_t *ev, yj_node *out)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    yaml_mark_t mark = ev->start_mark;
    switch (tag) {
    case YJ_T_NULL:
        out->value = json_null();
        return 0;
    case YJ_T_BOOL:
        return yj_make_bool(c, s, n, mark, out);
    case YJ_T_INT:
        return yj_make_int(c, s, n, mark, out);
    case YJ_T_FLOAT:
        return yj_make_float(c, s, n, mark, out);
    case YJ_T_TIMESTAMP:
        return yj_make_timestamp(c, s, n, mark, out);
    case YJ_T_MERGE:
    case YJ_T_VALUE:
        out->kind = tag == YJ_T_MERGE ? YJ_MERGE_KEY : YJ_VALUE_KEY;
        return yj_make_string(c, s, n, mark, out);
    case YJ_T_SEQ:
        return yj_fail(c, mark, "expected a sequence node, but found scalar");
    case YJ_T_MAP:
        return yj_fail(c, mark, "expected a mapping node, but found scalar");
    case YJ_T_NOJSON:
        return yj_fail(c, mark, "the tag '%s' has no JSON equivalent", yj_show_tag(ev->data.scalar.tag).text);
    case YJ_T_UNKNOWN:
        return yj_fail(c, mark, "could not determine a constructor for the tag '%s'",
                       yj_show_tag(ev->data.scalar.tag).text);
    default:
        return yj_make_string(c, s, n, mark, out);
    }
}

/* ---- anchors, counting ------------------------------------------------- */

static int yj_count(yj_ctx *c, size_t nodes, yaml_mark_t mark)
{
    if (nodes > YAML_JSON_MAX_NODES - c->nodes) {
        return yj_fail(c, mark, "more than %u nodes (counting alias expansions)", YAML_JSON_MAX_NODES);
    }
    c->nodes += nodes;
    return 0;
}

static int yj_anchor_open(yj_ctx *c, const yaml_char_t *name, yaml_mark_t mark, size_t *slot)
{
    json_t *index;
    *slot = YJ_NO_SLOT;
    if (!name) {
        return 0;
    }
    if (json_object_get(c->anchor_index, (const char *)name)) {
        return yj_fail(c, mark, "found duplicate anchor '%s'", (const char *)name);
    }
    if (c->nanchors == c->anchor_cap) {
        size_t cap = c->anchor_cap ? 2 * c->anchor_cap : 16;
        yj_anchor *grown = realloc(c->anchors, cap * sizeof *grown);
        if (!grown) {
            return yj_oom(c);
        }
        c->anchors = grown;
        c->anchor_cap = cap;
    }
    index = json_integer((json_int_t)c->nanchors);
    if (!index || json_object_set_new(c->anchor_index, (const char *)name, index) != 0) {
        return yj_fail(c, mark, "invalid anchor name");
    }
    c->anchors[c->nanchors] = (yj_anchor){NULL, 0, 0, YJ_DATA};
    *slot = c->nanchors++;
    return 0;
}

static void yj_anchor_close(yj_ctx *c, size_t slot, const yj_node *node, size_t nodes_before)
{
    yj_anchor *a;
    if (slot == YJ_NO_SLOT) {
        return;
    }
    a = &c->anchors[slot];
    a->value = json_incref(node->value);
    a->nodes = c->nodes - nodes_before;
    a->height = node->height;
    a->kind = node->kind;
}

static int yj_alias(yj_ctx *c, const yaml_event_t *ev, yj_node *out)
{
    const char *name = (const char *)ev->data.alias.anchor;
    json_t *index = json_object_get(c->anchor_index, name);
    const yj_anchor *a;
    if (!index) {
        return yj_fail(c, ev->start_mark, "found undefined alias '%s'", name);
    }
    a = &c->anchors[json_integer_value(index)];
    if (!a->value) {
        return yj_fail(c, ev->start_mark,
                       "alias '%s' is inside its own anchor: JSON has no recursive structures", name);
    }
    if (yj_count(c, a->nodes, ev->start_mark) != 0) {
        return -1;
    }
    if (c->depth + a->height > YAML_JSON_MAX_DEPTH) {
        return yj_fail(c, ev->start_mark, "nesting deeper than %d levels", YAML_JSON_MAX_DEPTH);
    }
    out->value = json_incref(a->value);
    out->height = a->height;
    out->kind = a->kind;
    return 0;
}

static int yj_scalar(yj_ctx *c, const yaml_event_t *ev, yj_node *out)
{
    size_t before = c->nodes, slot;
    enum yj_tag tag = yj_tag_of(ev->data.scalar.tag);
    if (yj_count(c, 1, ev->start_mark) != 0 ||
        yj_anchor_open(c, ev->data.scalar.anchor, ev->start_mark, &slot)) {
        return -1;
    }
    /* A plain scalar, or any scalar tagged "!", goes through the resolvers
     * (PyYAML's parser; libyaml marks an empty "!" scalar not implicit). */
    if (tag == YJ_T_NONE && (ev->data.scalar.plain_implicit || ev->data.scalar.tag)) {
        tag = yj_resolve((const char *)ev->data.scalar.value, ev->data.scalar.length);
    } else if (tag == YJ_T_NONE) {
        tag = YJ_T_STR;
    }
    if (yj_construct_scalar(c, tag, ev, out) != 0) {
        return -1;
    }
    yj_anchor_close(c, slot, out, before);
    return 0;
}

/* ---- collections ----------------------------------------------------- */

static int yj_require_data(yj_ctx *c, const yj_node *node)
{
    if (node->kind == YJ_DATA) {
        return 0;
    }
    return yj_fail(c, node->mark, "could not determine a constructor for the tag 'tag:yaml.org,2002:%s'",
                   node->kind == YJ_MERGE_KEY ? "merge" : "value");
}

static int yj_check_collection_tag(yj_ctx *c, const yaml_char_t *tag, enum yj_tag want, yaml_mark_t mark)
{
    const char *found = want == YJ_T_SEQ ? "sequence" : "mapping";
    switch (yj_tag_of(tag)) {
    case YJ_T_NONE:
        return 0;
    case YJ_T_SEQ:
    case YJ_T_MAP:
        if (yj_tag_of(tag) == want) {
            return 0;
        }
        return yj_fail(c, mark, "expected a %s node, but found %s", want == YJ_T_SEQ ? "mapping" : "sequence",
                       found);
    case YJ_T_STR:
    case YJ_T_INT:
    case YJ_T_FLOAT:
    case YJ_T_BOOL:
    case YJ_T_NULL:
    case YJ_T_TIMESTAMP:
        return yj_fail(c, mark, "expected a scalar node, but found %s", found);
    case YJ_T_NOJSON:
        return yj_fail(c, mark, "the tag '%s' has no JSON equivalent", yj_show_tag(tag).text);
    default:
        return yj_fail(c, mark, "could not determine a constructor for the tag '%s'", yj_show_tag(tag).text);
    }
}

/* The common start of a collection: tag, count, depth, anchor. */
static int yj_collection_start(yj_ctx *c, const yaml_char_t *tag, const yaml_char_t *anchor, enum yj_tag want,
                               yaml_mark_t mark, size_t *slot)
{
    if (yj_check_collection_tag(c, tag, want, mark) != 0 || yj_count(c, 1, mark) != 0) {
        return -1;
    }
    if (c->depth >= YAML_JSON_MAX_DEPTH) {
        return yj_fail(c, mark, "nesting deeper than %d levels", YAML_JSON_MAX_DEPTH);
    }
    return yj_anchor_open(c, anchor, mark, slot);
}

/* Read the next node of a collection into *child; 1 at the end event. */
static int yj_next_child(yj_ctx *c, yaml_event_type_t end, yj_node *child)
{
    yaml_event_t ev;
    if (yj_next(c, &ev) != 0) {
        return -1;
    }
    if (ev.type == end) {
        yaml_event_delete(&ev);
        return 1;
    }
    return yj_parse_node(c, &ev, child);
}

static int yj_sequence_items(yj_ctx *c, json_t *array, int *height)
{
    for (;;) {
        yj_node child;
        int rc = yj_next_child(c, YAML_SEQUENCE_END_EVENT, &child);
        if (rc != 0) {
            return rc > 0 ? 0 : -1;
        }
        if (yj_require_data(c, &child) != 0) {
            json_decref(child.value);
            return -1;
        }
        if (child.height > *height) {
            *height = child.height;
        }
        if (json_array_append_new(array, child.value) != 0) {
            return yj_oom(c);
        }
    }
}

static int yj_sequence(yj_ctx *c, const yaml_event_t *ev, yj_node *out)
{
    size_t before = c->nodes, slot;
    int height = 0, rc;
    json_t *array;
    if (yj_collection_start(c, ev->data.sequence_start.tag, ev->data.sequence_start.anchor, YJ_T_SEQ,
                            ev->start_mark, &slot) != 0) {
        return -1;
    }
    array = json_array();
    if (!array) {
        return yj_oom(c);
    }
    c->depth++;
    rc = yj_sequence_items(c, array, &height);
    c->depth--;
    if (rc != 0) {
        json_decref(array);
        return -1;
    }
    out->value = array;
    out->height = height + 1;
    yj_anchor_close(c, slot, out, before);
    return 0;
}

/* A mapping being read: its own pairs, and the mappings merged into it in
 * PyYAML's order (later ones override earlier ones). */
typedef struct yj_map {
    json_t *own;
    json_t *merges;
    int height;
} yj_map;

static int yj_add_merge(yj_ctx *c, yj_map *m, const yj_node *value)
{
    size_t i, n;
    if (json_is_object(value->value)) {
        /* Its pairs become this mapping's: one level less. */
        if (value->height - 1 > m->height) {
            m->height = value->height - 1;
        }
        return json_array_append(m->merges, value->value) != 0 ? yj_oom(c) : 0;
    }
    if (!json_is_array(value->value)) {
        return yj_fail(c, value->mark,
                       "expected a mapping or list of mappings for merging, but found scalar");
    }
    n = json_array_size(value->value);
    for (i = 0; i < n; i++) {
        json_t *item = json_array_get(value->value, i);
        if (!json_is_object(item)) {
            return yj_fail(c, value->mark, "expected a mapping for merging, but found %s",
                           json_is_array(item) ? "sequence" : "scalar");
        }
    }
    /* The first mapping of the sequence wins: merge it last. */
    for (i = n; i > 0; i--) {
        if (json_array_append(m->merges, json_array_get(value->value, i - 1)) != 0) {
            return yj_oom(c);
        }
    }
    if (value->height - 2 > m->height) {
        m->height = value->height - 2;
    }
    return 0;
}

/* The text of a scalar key as Python's str() prints its value. */
static int yj_key_text(yj_ctx *c, const yj_node *key, char *buf, size_t len, const char **text, size_t *n)
{
    const json_t *v = key->value;
    switch (json_typeof(v)) {
    case JSON_STRING:
        *text = json_string_value(v);
        *n = json_string_length(v);
        return 0;
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        yj_float_repr(json_real_value(v), buf, len);
        break;
    case JSON_TRUE:
        snprintf(buf, len, "True");
        break;
    case JSON_FALSE:
        snprintf(buf, len, "False");
        break;
    case JSON_NULL:
        snprintf(buf, len, "None");
        break;
    default:
        return yj_fail(c, key->mark, "found unhashable key: a %s cannot be a JSON object key",
                       json_is_array(v) ? "sequence" : "mapping");
    }
    *text = buf;
    *n = strlen(buf);
    return 0;
}

static int yj_add_pair(yj_ctx *c, yj_map *m, const yj_node *key)
{
    char buf[64];
    const char *text = NULL;
    size_t n = 0;
    yj_node value;
    int rc;
    if (yj_key_text(c, key, buf, sizeof buf, &text, &n) != 0) {
        return -1;
    }
    rc = yj_next_child(c, YAML_MAPPING_END_EVENT, &value);
    if (rc != 0) {
        return rc > 0 ? yj_fail(c, key->mark, "mapping key without a value") : -1;
    }
    if (yj_require_data(c, &value) != 0) {
        json_decref(value.value);
        return -1;
    }
    if (value.height > m->height) {
        m->height = value.height;
    }
    return json_object_setn_new(m->own, text, n, value.value) != 0 ? yj_oom(c) : 0;
}

static int yj_add_merge_pair(yj_ctx *c, yj_map *m, const yj_node *key)
{
    yj_node value;
    int rc = yj_next_child(c, YAML_MAPPING_END_EVENT, &value);
    if (rc != 0) {
        return rc > 0 ? yj_fail(c, key->mark, "mapping key without a value") : -1;
    }
    rc = yj_add_merge(c, m, &value);
    json_decref(value.value);
    return rc;
}

static int yj_mapping_pairs(yj_ctx *c, yj_map *m)
{
    for (;;) {
        yj_node key;
        int rc = yj_next_child(c, YAML_MAPPING_END_EVENT, &key);
        if (rc != 0) {
            return rc > 0 ? 0 : -1;
        }
        rc = key.kind == YJ_MERGE_KEY ? yj_add_merge_pair(c, m, &key) : yj_add_pair(c, m, &key);
        json_decref(key.value);
        if (rc != 0) {
            return -1;
        }
    }
}

static int yj_update(json_t *dst, json_t *src)
{
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(src, key, klen, v)
    {
        if (json_object_setn(dst, key, klen, v) != 0) {
            return -1;
        }
    }
    return 0;
}

/* The mapping's value: merged pairs first, its own pairs override them. */
static json_t *yj_map_finish(yj_ctx *c, yj_map *m)
{
    json_t *result;
    size_t i;
    if (json_array_size(m->merges) == 0) {
        return json_incref(m->own);
    }
    result = json_object();
    if (!result) {
        yj_oom(c);
        return NULL;
    }
    for (i = 0; i < json_array_size(m->merges); i++) {
        if (yj_update(result, json_array_get(m->merges, i)) != 0) {
            break;
        }
    }
    if (i < json_array_size(m->merges) || yj_update(result, m->own) != 0) {
        json_decref(result);
        yj_oom(c);
        return NULL;
    }
    return result;
}

static int yj_mapping(yj_ctx *c, const yaml_event_t *ev, yj_node *out)
{
    size_t before = c->nodes, slot;
    yj_map m = {NULL, NULL, 0};
    int rc = -1;
    if (yj_collection_start(c, ev->data.mapping_start.tag, ev->data.mapping_start.anchor, YJ_T_MAP,
                            ev->start_mark, &slot) != 0) {
        return -1;
    }
    m.own = json_object();
    m.merges = json_array();
    if (!m.own || !m.merges) {
        yj_oom(c);
    } else {
        c->depth++;
        rc = yj_mapping_pairs(c, &m);
        c->depth--;
    }
    if (rc == 0) {
        out->value = yj_map_finish(c, &m);
        out->height = m.height + 1;
        rc = out->value ? 0 : -1;
    }
    json_decref(m.own);
    json_decref(m.merges);
    if (rc == 0) {
        yj_anchor_close(c, slot, out, before);
    }
    return rc;
}

/* Build the node that starts with *ev; takes ownership of the event. */
static int yj_parse_node(yj_ctx *c, yaml_event_t *ev, yj_node *out)
{
    int rc;
    memset(out, 0, sizeof *out);
    out->mark = ev->start_mark;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        rc = yj_alias(c, ev, out);
        break;
    case YAML_SCALAR_EVENT:
        rc = yj_scalar(c, ev, out);
        break;
    case YAML_SEQUENCE_START_EVENT:
        rc = yj_sequence(c, ev, out);
        break;
    case YAML_MAPPING_START_EVENT:
        rc = yj_mapping(c, ev, out);
        break;
    default:
        rc = yj_fail(c, ev->start_mark, "unexpected YAML event %d", (int)ev->type);
        break;
    }
    yaml_event_delete(ev);
    if (rc != 0) {
        json_decref(out->value);
        out->value = NULL;
    }
    return rc;
}

/* ---- documents --------------------------------------------------------- */

static int yj_expect(yj_ctx *c, yaml_event_type_t type)
{
    yaml_event_t ev;
    int ok;
    if (yj_next(c, &ev) != 0) {
        return -1;
    }
    ok = ev.type == type;
    if (!ok) {
        yj_fail(c, ev.start_mark, "unexpected YAML event %d", (int)ev.type);
    }
    yaml_event_delete(&ev);
    return ok ? 0 : -1;
}

/* After the first document: only the end of the stream may follow. */
static int yj_stream_end(yj_ctx *c)
{
    yaml_event_t ev;
    int rc = 0;
    if (yj_expect(c, YAML_DOCUMENT_END_EVENT) != 0 || yj_next(c, &ev) != 0) {
        return -1;
    }
    if (ev.type != YAML_STREAM_END_EVENT) {
        rc =
            yj_fail(c, ev.start_mark, "expected a single document in the stream, but found another document");
    }
    yaml_event_delete(&ev);
    return rc;
}

static json_t *yj_document(yj_ctx *c)
{
    yaml_event_t ev;
    yj_node root;
    if (yj_expect(c, YAML_STREAM_START_EVENT) != 0 || yj_next(c, &ev) != 0) {
        return NULL;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return json_null();
    }
    yaml_event_delete(&ev);
    if (yj_next(c, &ev) != 0 || yj_parse_node(c, &ev, &root) != 0) {
        return NULL;
    }
    if (yj_require_data(c, &root) != 0 || yj_stream_end(c) != 0) {
        json_decref(root.value);
        return NULL;
    }
    return root.value;
}

static void yj_ctx_free(yj_ctx *c)
{
    size_t i;
    for (i = 0; i < c->nanchors; i++) {
        json_decref(c->anchors[i].value);
    }
    free(c->anchors);
    json_decref(c->anchor_index);
    yaml_parser_delete(&c->parser);
}

static json_t *yj_load(const char *text, size_t len, const char *path, char *err, size_t errlen)
{
    yj_ctx c;
    json_t *root = NULL;
    locale_t cloc, old = (locale_t)0;
    memset(&c, 0, sizeof c);
    c.text = text ? text : "";
    c.len = len;
    c.path = path;
    c.err = err;
    c.errlen = errlen;
    if (err && errlen > 0) {
        err[0] = '\0';
    }
    if (len > YAML_JSON_MAX_INPUT) {
        yj_fail_plain(&c, "input of %zu bytes is larger than the limit of %u bytes", len,
                      YAML_JSON_MAX_INPUT);
        return NULL;
    }
    if (!text && len > 0) {
        yj_fail_plain(&c, "no input text");
        return NULL;
    }
    if (!yaml_parser_initialize(&c.parser)) {
        yj_oom(&c);
        return NULL;
    }
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)c.text, len);
    /* strtod and snprintf in the C locale whatever the program's is. */
    cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (cloc) {
        old = uselocale(cloc);
    }
    c.anchor_index = json_object();
    if (c.anchor_index) {
        root = yj_document(&c);
    } else {
        yj_oom(&c);
    }
    if (cloc) {
        uselocale(old);
        freelocale(cloc);
    }
    yj_ctx_free(&c);
    return root;
}

json_t *yaml_json_load(const char *text, size_t len, char *err, size_t errlen)
{
    return yj_load(text, len, NULL, err, errlen);
}

/* The whole file into a malloc'd buffer; -1 on a read error, -2 if it is
 * larger than YAML_JSON_MAX_INPUT. */
static int yj_read_all(FILE *f, char **buf, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *data = malloc(cap);
    while (data) {
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (n > YAML_JSON_MAX_INPUT || ferror(f) || got == 0) {
            break;
        }
        if (n == cap) {
            char *grown = realloc(data, cap * 2);
            if (!grown) {
                free(data);
                data = NULL;
                break;
            }
            data = grown;
            cap *= 2;
        }
    }
    if (!data) {
        errno = ENOMEM;
        return -1;
    }
    if (ferror(f) || n > YAML_JSON_MAX_INPUT) {
        free(data);
        return ferror(f) ? -1 : -2;
    }
    *buf = data;
    *len = n;
    return 0;
}

json_t *yaml_json_load_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    json_t *root;
    int rc;
    if (!f) {
        if (err && errlen > 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        }
        return NULL;
    }
    rc = yj_read_all(f, &buf, &len);
    if (rc != 0) {
        if (err && errlen > 0 && rc == -2) {
            snprintf(err, errlen, "%s: larger than the limit of %u bytes", path, YAML_JSON_MAX_INPUT);
        } else if (err && errlen > 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
        }
        fclose(f);
        return NULL;
    }
    fclose(f);
    root = yj_load(buf, len, path, err, errlen);
    free(buf);
    return root;
}
