/*
 * json_schema.c - JSON Schema draft-7 validation over jansson (see
 * json_schema.h for the scope).
 *
 * Compilation walks every subschema once, checks keyword types, translates
 * and compiles the regular expressions and resolves every $ref to the
 * subschema it names; the result is a table from schema object to compiled
 * node. Validation then walks schema and instance together, reporting the
 * first error; branches that are only probed (anyOf, oneOf, not, if,
 * contains) run "quiet": no message is built and no default is inserted.
 *
 * Regular expressions: ECMA-262 patterns are translated to POSIX extended
 * ones for regcomp. Matching is byte-oriented (the C/POSIX LC_CTYPE is
 * assumed): "." and negated classes match one byte, non-ASCII literals are
 * kept as grouped UTF-8 sequences. Strings are matched up to a NUL.
 */
#include "json_schema.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Levels of subschema nesting accepted at compile time. */
#define MAX_SCHEMA_DEPTH 64
/* Nested validate() calls (subschemas and $ref hops) at validation time. */
#define MAX_VALIDATE_DEPTH 128
/* Total validate() calls allowed for one json_schema_validate: recursive
 * schemas under anyOf/oneOf/not could otherwise take exponential time. */
#define MAX_VALIDATE_STEPS 2000000
/* Nesting followed when comparing or printing instance values. */
#define MAX_VALUE_DEPTH 256
/* Longest repr of a value inside an error message. */
#define REPR_LIMIT 160
/* Rough upper bound on the size of a translated regex after expanding
 * bounded repetitions, to keep regcomp fast and small. */
#define REGEX_COST_LIMIT 20000
#define REGEX_MAX_GROUPS 64

/* ------------------------------------------------------------------ */
/* Growable strings                                                     */

typedef struct dstr {
    char *p;
    size_t len, cap;
    int oom;
} dstr;

static void ds_putn(dstr *d, const char *s, size_t n)
{
    if (d->oom) {
        return;
    }
    if (d->len + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 64;
        while (cap < d->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(d->p, cap);
        if (!p) {
            d->oom = 1;
            return;
        }
        d->p = p;
        d->cap = cap;
    }
    memcpy(d->p + d->len, s, n);
    d->len += n;
    d->p[d->len] = '\0';
}

static void ds_puts(dstr *d, const char *s)
{
    ds_putn(d, s, strlen(s));
}

static void ds_putc(dstr *d, char c)
{
    ds_putn(d, &c, 1);
}

static void ds_printf(dstr *d, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ds_putn(d, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    }
}

static const char *ds_str(const dstr *d)
{
    return d->p && !d->oom ? d->p : "";
}

static void ds_free(dstr *d)
{
    free(d->p);
    d->p = NULL;
    d->len = d->cap = 0;
    d->oom = 0;
}

static void copy_trunc(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        /* do not cut a UTF-8 sequence in half */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Length of a key obtained from json_object_foreach (keys may hold NULs). */
static size_t key_len(const char *key)
{
    return json_object_iter_key_len(json_object_key_to_iter(key));
}

/* ------------------------------------------------------------------ */
/* Python-like repr of JSON values, for messages                        */

static void repr_str(dstr *d, const char *s, size_t n)
{
    char q = (memchr(s, '\'', n) && !memchr(s, '"', n)) ? '"' : '\'';
    ds_putc(d, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == (unsigned char)q) {
            ds_putc(d, '\\');
            ds_putc(d, (char)c);
        } else if (c == '\n') {
            ds_puts(d, "\\n");
        } else if (c == '\r') {
            ds_puts(d, "\\r");
        } else if (c == '\t') {
            ds_puts(d, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            ds_printf(d, "\\x%02x", c);
        } else {
            ds_putc(d, (char)c);
        }
    }
    ds_putc(d, q);
}

/* Python's repr of a float: shortest round-trip digits, exponent form
 * outside [1e-4, 1e16). */
static void repr_real(dstr *d, double x)
{
    if (isnan(x)) {
        ds_puts(d, "nan");
        return;
    }
    if (isinf(x)) {
        ds_puts(d, x < 0 ? "-inf" : "inf");
        return;
    }
    char buf[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, x);
        if (strtod(buf, NULL) == x) {
            break;
        }
    }
    const char *s = buf;
    if (*s == '-') {
        ds_putc(d, '-');
        s++;
    }
    char digits[24];
    size_t nd = 0;
    for (; *s && *s != 'e' && nd < sizeof digits - 1; s++) {
        if (isdigit((unsigned char)*s)) {
            digits[nd++] = *s;
        }
    }
    digits[nd] = '\0';
    int e = *s == 'e' ? atoi(s + 1) : 0;
    if (e >= 16 || e < -4) {
        ds_putc(d, digits[0]);
        if (nd > 1) {
            ds_putc(d, '.');
            ds_puts(d, digits + 1);
        }
        ds_printf(d, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (e < 0) {
        ds_puts(d, "0.");
        for (int i = 0; i < -e - 1; i++) {
            ds_putc(d, '0');
        }
        ds_puts(d, digits);
    } else {
        for (int i = 0; i <= e; i++) {
            ds_putc(d, (size_t)i < nd ? digits[i] : '0');
        }
        ds_putc(d, '.');
        ds_puts(d, (size_t)e + 1 < nd ? digits + e + 1 : "0");
    }
}

static void repr_value(dstr *d, const json_t *v, int depth, size_t limit)
{
    if (d->len > limit || depth > MAX_VALUE_DEPTH) {
        ds_puts(d, "...");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        int first = 1;
        ds_putc(d, '{');
        json_object_foreach((json_t *)v, key, val)
        {
            if (!first) {
                ds_puts(d, ", ");
            }
            first = 0;
            repr_str(d, key, key_len(key));
            ds_puts(d, ": ");
            repr_value(d, val, depth + 1, limit);
            if (d->len > limit) {
                break;
            }
        }
        ds_putc(d, '}');
        break;
    }
    case JSON_ARRAY:
        ds_putc(d, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) {
                ds_puts(d, ", ");
            }
            repr_value(d, json_array_get(v, i), depth + 1, limit);
            if (d->len > limit) {
                break;
            }
        }
        ds_putc(d, ']');
        break;
    case JSON_STRING:
        repr_str(d, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        ds_printf(d, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        repr_real(d, json_real_value(v));
        break;
    case JSON_TRUE:
        ds_puts(d, "True");
        break;
    case JSON_FALSE:
        ds_puts(d, "False");
        break;
    case JSON_NULL:
        ds_puts(d, "None");
        break;
    }
}

/* repr of v appended to d, shortened with "..." when long. */
static void repr(dstr *d, const json_t *v)
{
    dstr t = {0};
    repr_value(&t, v, 0, REPR_LIMIT);
    if (t.len > REPR_LIMIT) {
        size_t n = REPR_LIMIT - 3;
        while (n > 0 && ((unsigned char)t.p[n] & 0xC0) == 0x80) {
            n--;
        }
        ds_putn(d, t.p, n);
        ds_puts(d, "...");
    } else {
        ds_puts(d, ds_str(&t));
    }
    ds_free(&t);
}

/*
 * Message formatting: %s a C string, %S the repr of a C string, %r the
 * repr of a json_t, %d an int.
 */
static void vformat(dstr *d, const char *fmt, va_list ap)
{
    for (const char *f = fmt; *f; f++) {
        if (*f != '%' || !f[1]) {
            ds_putc(d, *f);
            continue;
        }
        f++;
        if (*f == 's') {
            ds_puts(d, va_arg(ap, const char *));
        } else if (*f == 'S') {
            const char *s = va_arg(ap, const char *);
            repr_str(d, s, strlen(s));
        } else if (*f == 'r') {
            repr(d, va_arg(ap, const json_t *));
        } else if (*f == 'd') {
            ds_printf(d, "%d", va_arg(ap, int));
        } else {
            ds_putc(d, *f);
        }
    }
}

static void set_error(json_schema_error *err, const char *kw, const char *path, const char *fmt, va_list ap)
{
    dstr d = {0};
    vformat(&d, fmt, ap);
    copy_trunc(err->message, sizeof err->message, d.oom ? "out of memory" : ds_str(&d));
    copy_trunc(err->path, sizeof err->path, path);
    copy_trunc(err->keyword, sizeof err->keyword, kw);
    ds_free(&d);
}

/* ------------------------------------------------------------------ */
/* Numbers and equality                                                 */

static long double num_value(const json_t *v)
{
    return json_is_integer(v) ? (long double)json_integer_value(v) : (long double)json_real_value(v);
}

static int is_integral(const json_t *v)
{
    if (json_is_integer(v)) {
        return 1;
    }
    double x = json_real_value(v);
    return json_is_real(v) && isfinite(x) && floor(x) == x;
}

static int num_equal(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        return json_integer_value(a) == json_integer_value(b);
    }
    return num_value(a) == num_value(b);
}

static int value_equal(const json_t *a, const json_t *b, int depth)
{
    if (depth > MAX_VALUE_DEPTH) {
        return 0;
    }
    if (json_is_number(a) && json_is_number(b)) {
        return num_equal(a, b);
    }
    if (json_typeof(a) != json_typeof(b)) {
        return 0;
    }
    if (json_is_string(a)) {
        size_t n = json_string_length(a);
        return n == json_string_length(b) && memcmp(json_string_value(a), json_string_value(b), n) == 0;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) {
            return 0;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!value_equal(json_array_get(a, i), json_array_get(b, i), depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    if (json_is_object(a)) {
        const char *key;
        json_t *va;
        if (json_object_size(a) != json_object_size(b)) {
            return 0;
        }
        json_object_foreach((json_t *)a, key, va)
        {
            json_t *vb = json_object_getn(b, key, key_len(key));
            if (!vb || !value_equal(va, vb, depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    return 1; /* true, false, null */
}

/* Count Unicode code points of UTF-8 text (jansson guarantees UTF-8). */
static size_t utf8_length(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            count++;
        }
    }
    return count;
}

/* ------------------------------------------------------------------ */
/* ECMA-262 regular expressions to POSIX ERE                            */

typedef struct rx {
    const char *p;
    size_t n, i;
    dstr out;
    char why[160];
    /* cost accounting per open group */
    long cost[REGEX_MAX_GROUPS + 1];
    long last; /* cost of the last atom, 0 if nothing to quantify */
    int depth;
} rx;

typedef struct charset {
    unsigned char bits[32];
    dstr alts; /* "|seq|seq" for non-ASCII members */
} charset;

static int rx_fail(rx *r, const char *why)
{
    snprintf(r->why, sizeof r->why, "%s at offset %zu", why, r->i);
    return -1;
}

static void cs_add(charset *cs, unsigned c)
{
    cs->bits[c >> 3] |= (unsigned char)(1u << (c & 7));
}

static int cs_has(const charset *cs, unsigned c)
{
    return (cs->bits[c >> 3] >> (c & 7)) & 1;
}

static void cs_add_class(charset *cs, char letter)
{
    int neg = isupper((unsigned char)letter) != 0;
    char l = (char)tolower((unsigned char)letter);
    for (unsigned c = 1; c < 256; c++) {
        int in;
        if (l == 'd') {
            in = c >= '0' && c <= '9';
        } else if (l == 'w') {
            in = c < 128 && (isalnum((int)c) || c == '_');
        } else {
            in = c == ' ' || (c >= '\t' && c <= '\r'); /* ASCII white space */
        }
        if (in != neg) {
            cs_add(cs, c);
        }
    }
}

static int utf8_encode(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode the UTF-8 sequence at r->i (advancing); invalid bytes are taken
 * one at a time. */
static unsigned long rx_utf8(rx *r)
{
    const unsigned char *s = (const unsigned char *)r->p + r->i;
    size_t left = r->n - r->i;
    int len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1;
    if ((size_t)len > left) {
        len = 1;
    }
    unsigned long cp = len == 1 ? s[0] : s[0] & (0x3F >> (len - 1));
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) {
            r->i++;
            return s[0];
        }
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    r->i += (size_t)len;
    return cp;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static long rx_hex(rx *r, int count)
{
    long v = 0;
    if (r->i + (size_t)count > r->n) {
        return -1;
    }
    for (int k = 0; k < count; k++) {
        int h = hexval((unsigned char)r->p[r->i + (size_t)k]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    r->i += (size_t)count;
    return v;
}

/* \uXXXX (with surrogate pairs); r->i is after the 'u'. */
static long rx_unicode_escape(rx *r)
{
    long v = rx_hex(r, 4);
    if (v >= 0xD800 && v <= 0xDBFF && r->i + 6 <= r->n && r->p[r->i] == '\\' && r->p[r->i + 1] == 'u') {
        size_t save = r->i;
        r->i += 2;
        long lo = rx_hex(r, 4);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            return 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        }
        r->i = save;
    }
    if (v >= 0xD800 && v <= 0xDFFF) {
        return -2;
    }
    return v;
}

enum { ESC_CHAR, ESC_CLASS };

/* Parse the escape after a backslash (r->i is after it). Sets *cp for a
 * character or *cls to the class letter (d, D, w, W, s, S). */
static int rx_escape(rx *r, int in_class, unsigned long *cp, char *cls)
{
    if (r->i >= r->n) {
        return rx_fail(r, "\\ at end of pattern");
    }
    char c = r->p[r->i];
    if (strchr("dDwWsS", c)) {
        r->i++;
        *cls = c;
        return ESC_CLASS;
    }
    static const char simple[] = "t\tn\nv\vf\fr\r";
    const char *m = strchr(simple, c);
    if (m && (m - simple) % 2 == 0) {
        r->i++;
        *cp = (unsigned char)m[1];
        return ESC_CHAR;
    }
    if (c == 'b' && in_class) {
        r->i++;
        *cp = 8;
        return ESC_CHAR;
    }
    if (c == 'b' || c == 'B') {
        return rx_fail(r, "word boundary assertions (\\b, \\B) are not supported");
    }
    if (c >= '0' && c <= '9') {
        return rx_fail(r, c == '0' ? "NUL characters (\\0) are not supported"
                                   : "backreferences are not supported");
    }
    if (c == 'k') {
        return rx_fail(r, "named backreferences are not supported");
    }
    if (c == 'p' || c == 'P') {
        return rx_fail(r, "Unicode property escapes are not supported");
    }
    if (c == 'c' && r->i + 1 < r->n && isalpha((unsigned char)r->p[r->i + 1])) {
        *cp = (unsigned long)(r->p[r->i + 1] % 32);
        r->i += 2;
        return ESC_CHAR;
    }
    if (c == 'x' || c == 'u') {
        r->i++;
        long v = c == 'x' ? rx_hex(r, 2) : rx_unicode_escape(r);
        if (v == -1) {
            return rx_fail(r, c == 'x' ? "bad \\x escape" : "bad \\u escape");
        }
        if (v == -2) {
            return rx_fail(r, "lone surrogate in \\u escape");
        }
        if (v == 0) {
            return rx_fail(r, "NUL characters are not supported");
        }
        *cp = (unsigned long)v;
        return ESC_CHAR;
    }
    if (isalnum((unsigned char)c)) {
        /* \A, \Z, \z, ... of other dialects (an error in unicode mode) */
        return rx_fail(r, "unknown escape (\\A, \\Z, \\z and the like are not ECMA-262)");
    }
    *cp = rx_utf8(r); /* identity escape */
    return ESC_CHAR;
}

static void rx_literal(dstr *o, unsigned long cp)
{
    char buf[4];
    if (cp < 0x80) {
        if (strchr("^.[$()|*+?{\\", (int)cp)) {
            ds_putc(o, '\\');
        }
        ds_putc(o, (char)cp);
        return;
    }
    int n = utf8_encode(cp, buf);
    ds_putc(o, '(');
    ds_putn(o, buf, (size_t)n);
    ds_putc(o, ')');
}

/* Emit a bracket expression matching exactly the bytes of the set. */
static void emit_bytes(dstr *o, const charset *cs)
{
    int count = 0;
    unsigned only = 0;
    for (unsigned c = 1; c < 256; c++) {
        if (cs_has(cs, c)) {
            count++;
            only = c;
        }
    }
    if (count == 1) {
        if (only < 0x80) {
            rx_literal(o, only);
        } else {
            ds_putc(o, '[');
            ds_putc(o, (char)only);
            ds_putc(o, ']');
        }
        return;
    }
    ds_putc(o, '[');
    size_t start = o->len;
    if (cs_has(cs, ']')) {
        ds_putc(o, ']');
    }
    for (unsigned c = 1; c < 256; c++) {
        if (cs_has(cs, c) && !strchr("]^-[", (int)c)) {
            ds_putc(o, (char)c);
        }
    }
    int dash_done = 0;
    if (cs_has(cs, '^') && o->len == start) {
        /* '^' must not come first: put '-' (literal when first) before it */
        if (cs_has(cs, '-')) {
            ds_putc(o, '-');
            dash_done = 1;
        } else if (cs_has(cs, '[')) {
            ds_putc(o, '[');
            ds_putc(o, '^');
            ds_putc(o, ']');
            return;
        }
    }
    if (cs_has(cs, '^')) {
        ds_putc(o, '^');
    }
    if (cs_has(cs, '[')) {
        ds_putc(o, '[');
    }
    if (cs_has(cs, '-') && !dash_done) {
        ds_putc(o, '-');
    }
    ds_putc(o, ']');
}

static void emit_charset(dstr *o, const charset *cs)
{
    int empty = 1;
    for (unsigned c = 1; c < 256 && empty; c++) {
        empty = !cs_has(cs, c);
    }
    if (empty && cs->alts.len == 0) {
        /* matches nothing: the complement of every byte */
        charset all = {{0}, {0}};
        for (unsigned c = 1; c < 256; c++) {
            cs_add(&all, c);
        }
        ds_puts(o, "[^");
        dstr tmp = {0};
        emit_bytes(&tmp, &all);
        ds_putn(o, tmp.p + 1, tmp.len - 1);
        o->oom |= tmp.oom;
        ds_free(&tmp);
        return;
    }
    if (cs->alts.len == 0) {
        emit_bytes(o, cs);
        return;
    }
    ds_putc(o, '(');
    if (!empty) {
        emit_bytes(o, cs);
        ds_puts(o, ds_str(&cs->alts));
    } else {
        ds_putn(o, cs->alts.p + 1, cs->alts.len - 1);
    }
    ds_putc(o, ')');
}

static void cs_add_cp(charset *cs, unsigned long cp)
{
    if (cp < 0x80) {
        cs_add(cs, (unsigned)cp);
        return;
    }
    char buf[4];
    int n = utf8_encode(cp, buf);
    ds_putc(&cs->alts, '|');
    ds_putn(&cs->alts, buf, (size_t)n);
}

/* One class member: a character (returns ESC_CHAR) or a class escape. */
static int rx_class_atom(rx *r, unsigned long *cp, char *cls)
{
    if (r->p[r->i] == '\\') {
        r->i++;
        return rx_escape(r, 1, cp, cls);
    }
    *cp = rx_utf8(r);
    return ESC_CHAR;
}

static int rx_class_range(rx *r, charset *cs, unsigned long lo, int *neg_ok)
{
    unsigned long hi;
    char cls;
    r->i++; /* '-' */
    int k = rx_class_atom(r, &hi, &cls);
    if (k < 0) {
        return -1;
    }
    if (k == ESC_CLASS) { /* [a-\d]: '-' is literal (Annex B) */
        cs_add_cp(cs, lo);
        cs_add(cs, '-');
        cs_add_class(cs, cls);
        return 0;
    }
    if (lo > hi) {
        return rx_fail(r, "range out of order in character class");
    }
    if (hi >= 0x80) {
        if (lo != hi) {
            return rx_fail(r, "ranges of non-ASCII characters in character classes are not supported");
        }
        *neg_ok = 0;
        cs_add_cp(cs, lo);
        return 0;
    }
    for (unsigned long c = lo; c <= hi; c++) {
        cs_add(cs, (unsigned)c);
    }
    return 0;
}

static int rx_class(rx *r)
{
    charset cs = {{0}, {0}};
    int negate = 0, neg_ok = 1, rc = 0;
    r->i++; /* '[' */
    if (r->i < r->n && r->p[r->i] == '^') {
        negate = 1;
        r->i++;
    }
    while (rc == 0) {
        if (r->i >= r->n) {
            rc = rx_fail(r, "missing ] in character class");
            break;
        }
        if (r->p[r->i] == ']') {
            r->i++;
            break;
        }
        unsigned long cp;
        char cls;
        int k = rx_class_atom(r, &cp, &cls);
        if (k < 0) {
            rc = -1;
        } else if (k == ESC_CLASS) {
            cs_add_class(&cs, cls);
        } else if (r->i + 1 < r->n && r->p[r->i] == '-' && r->p[r->i + 1] != ']') {
            rc = rx_class_range(r, &cs, cp, &neg_ok);
        } else {
            neg_ok &= cp < 0x80;
            cs_add_cp(&cs, cp);
        }
    }
    if (rc == 0 && negate) {
        if (!neg_ok) {
            rc = rx_fail(r, "non-ASCII characters in negated character classes are not supported");
        } else {
            for (unsigned c = 1; c < 256; c++) {
                cs.bits[c >> 3] ^= (unsigned char)(1u << (c & 7));
            }
            cs.bits[0] &= (unsigned char)~1u;
        }
    }
    if (rc == 0) {
        emit_charset(&r->out, &cs);
    }
    ds_free(&cs.alts);
    return rc;
}

static int rx_add_cost(rx *r, long c)
{
    r->cost[r->depth] += c;
    if (r->cost[r->depth] > REGEX_COST_LIMIT) {
        return rx_fail(r, "regular expression too large");
    }
    return 0;
}

/* {n}, {n,}, {n,m}: returns 1 if one was parsed (r->i after it). */
static int rx_braces(rx *r, long *lo, long *hi)
{
    size_t i = r->i + 1;
    long a = 0, b;
    int nd = 0;
    while (i < r->n && isdigit((unsigned char)r->p[i]) && nd < 9) {
        a = a * 10 + (r->p[i++] - '0');
        nd++;
    }
    if (nd == 0 || i >= r->n) {
        return 0;
    }
    b = a;
    if (r->p[i] == ',') {
        i++;
        b = -1;
        nd = 0;
        long v = 0;
        while (i < r->n && isdigit((unsigned char)r->p[i]) && nd < 9) {
            v = v * 10 + (r->p[i++] - '0');
            nd++;
        }
        if (nd) {
            b = v;
        }
    }
    if (i >= r->n || r->p[i] != '}') {
        return 0;
    }
    r->i = i + 1;
    *lo = a;
    *hi = b;
    return 1;
}

static int rx_quantifier(rx *r)
{
    char c = r->p[r->i];
    long lo = 0, hi = -1;
    size_t at = r->i;
    if (c == '{') {
        if (!rx_braces(r, &lo, &hi)) {
            return 1; /* a literal '{' */
        }
    } else {
        r->i++;
    }
    if (r->last == 0) {
        r->i = at;
        return rx_fail(r, "nothing to repeat");
    }
    if (c == '{') {
        if (hi >= 0 && lo > hi) {
            return rx_fail(r, "numbers out of order in {} quantifier");
        }
        if (lo > 255 || hi > 255) {
            return rx_fail(r, "repetition counts above 255 are not supported");
        }
        ds_printf(&r->out, "{%ld", lo);
        if (hi != lo) {
            ds_putc(&r->out, ',');
            if (hi >= 0) {
                ds_printf(&r->out, "%ld", hi);
            }
        }
        ds_putc(&r->out, '}');
    } else {
        ds_putc(&r->out, c);
    }
    if (r->i < r->n && r->p[r->i] == '?') {
        r->i++; /* lazy: the same language for a search */
    }
    long times = (hi > lo ? hi : lo + 1);
    int rc = rx_add_cost(r, r->last * (times > 1 ? times - 1 : 0));
    r->last = 0;
    return rc;
}

static int rx_group_open(rx *r)
{
    r->i++;
    if (r->i < r->n && r->p[r->i] == '?') {
        const char *q = r->p + r->i;
        size_t left = r->n - r->i;
        if (left >= 2 && q[1] == ':') {
            r->i += 2;
        } else if (left >= 3 && q[1] == '<' && q[2] != '=' && q[2] != '!') {
            size_t k = 2;
            while (k < left && (isalnum((unsigned char)q[k]) || q[k] == '_' || q[k] == '$')) {
                k++;
            }
            if (k == 2 || k >= left || q[k] != '>') {
                return rx_fail(r, "bad group name");
            }
            r->i += k + 1;
        } else {
            return rx_fail(r, "lookahead/lookbehind assertions are not supported");
        }
    }
    if (r->depth >= REGEX_MAX_GROUPS) {
        return rx_fail(r, "groups nested too deeply");
    }
    r->depth++;
    r->cost[r->depth] = 0;
    r->last = 0;
    ds_putc(&r->out, '(');
    return 0;
}

static int rx_group_close(rx *r)
{
    if (r->depth == 0) {
        return rx_fail(r, "unmatched )");
    }
    long c = r->cost[r->depth] + 1;
    r->depth--;
    r->i++;
    ds_putc(&r->out, ')');
    r->last = c;
    return rx_add_cost(r, c);
}

static int rx_atom_done(rx *r, long cost)
{
    r->last = cost;
    return rx_add_cost(r, cost);
}

static int rx_step(rx *r)
{
    char c = r->p[r->i];
    switch (c) {
    case '\\': {
        unsigned long cp;
        char cls;
        r->i++;
        int k = rx_escape(r, 0, &cp, &cls);
        if (k < 0) {
            return -1;
        }
        if (k == ESC_CLASS) {
            charset cs = {{0}, {0}};
            cs_add_class(&cs, cls);
            emit_charset(&r->out, &cs);
        } else {
            rx_literal(&r->out, cp);
        }
        return rx_atom_done(r, 1);
    }
    case '[':
        return rx_class(r) < 0 ? -1 : rx_atom_done(r, 1);
    case '(':
        return rx_group_open(r);
    case ')':
        return rx_group_close(r);
    case '|':
        r->i++;
        r->last = 0;
        ds_putc(&r->out, '|');
        return 0;
    case '*':
    case '+':
    case '?':
        return rx_quantifier(r);
    case '{': {
        int k = rx_quantifier(r);
        if (k != 1) {
            return k;
        }
        r->i++; /* not a quantifier: a literal '{' */
        ds_puts(&r->out, "\\{");
        return rx_atom_done(r, 1);
    }
    case '.':
        r->i++;
        ds_puts(&r->out, "[^\n\r]");
        return rx_atom_done(r, 1);
    case '^':
    case '$':
        r->i++;
        ds_putc(&r->out, c);
        r->last = 0;
        return 0;
    default:
        rx_literal(&r->out, rx_utf8(r));
        return rx_atom_done(r, 1);
    }
}

/* Translate; 0 with *out (caller frees) or -1 with why. */
static int ecma_to_ere(const char *pat, size_t n, char **out, char *why, size_t whysz)
{
    rx r;
    memset(&r, 0, sizeof r);
    r.p = pat;
    r.n = n;
    int rc = 0;
    if (memchr(pat, '\0', n)) {
        rc = rx_fail(&r, "NUL characters are not supported");
    }
    while (rc == 0 && r.i < r.n) {
        rc = rx_step(&r);
    }
    if (rc == 0 && r.depth != 0) {
        rc = rx_fail(&r, "missing )");
    }
    if (rc == 0 && r.out.oom) {
        rc = rx_fail(&r, "out of memory");
    }
    if (rc != 0) {
        copy_trunc(why, whysz, r.why);
        ds_free(&r.out);
        return -1;
    }
    *out = r.out.p ? r.out.p : strdup("");
    return *out ? 0 : -1;
}

/* Translate and compile an ECMA-262 regex; 0 or -1 with why. */
static int regex_compile(regex_t *re, const char *pat, size_t n, char *why, size_t whysz)
{
    char *ere = NULL;
    if (ecma_to_ere(pat, n, &ere, why, whysz) != 0) {
        return -1;
    }
    int rc = regcomp(re, ere, REG_EXTENDED | REG_NOSUB);
    free(ere);
    if (rc != 0) {
        char buf[128];
        regerror(rc, re, buf, sizeof buf);
        snprintf(why, whysz, "%s", buf);
        return -1;
    }
    return 0;
}

static int regex_search(const regex_t *re, const char *s)
{
    return regexec(re, s, 0, NULL, 0) == 0;
}

/* ------------------------------------------------------------------ */
/* Formats                                                              */

static int ndigits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int fmt_date(const char *s, size_t n)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (n != 10 || s[4] != '-' || s[7] != '-') {
        return 0;
    }
    int y = ndigits(s, 4), m = ndigits(s + 5, 2), d = ndigits(s + 8, 2);
    if (y < 0 || m < 1 || m > 12 || d < 1) {
        return 0;
    }
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

static int fmt_time(const char *s, size_t n)
{
    if (n < 9 || s[2] != ':' || s[5] != ':') {
        return 0;
    }
    int h = ndigits(s, 2), m = ndigits(s + 3, 2), sec = ndigits(s + 6, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60) {
        return 0;
    }
    size_t i = 8;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && isdigit((unsigned char)s[i])) {
            i++;
        }
        if (i == start) {
            return 0;
        }
    }
    if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z')) {
        return 1;
    }
    if (i + 6 != n || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':') {
        return 0;
    }
    int oh = ndigits(s + i + 1, 2), om = ndigits(s + i + 4, 2);
    return oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

static int fmt_date_time(const char *s, size_t n)
{
    return n > 11 && (s[10] == 'T' || s[10] == 't') && fmt_date(s, 10) && fmt_time(s + 11, n - 11);
}

static int fmt_email(const char *s, size_t n)
{
    const char *at = strrchr(s, '@');
    if (!at || at == s || (size_t)(at - s) + 1 >= n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int fmt_ipv4(const char *s, size_t n)
{
    int parts = 0;
    size_t i = 0;
    while (i <= n) {
        size_t start = i;
        int v = 0;
        while (i < n && isdigit((unsigned char)s[i]) && i - start < 3) {
            v = v * 10 + (s[i++] - '0');
        }
        size_t len = i - start;
        if (len == 0 || v > 255 || (len > 1 && s[start] == '0')) {
            return 0;
        }
        parts++;
        if (i == n) {
            break;
        }
        if (s[i] != '.' || parts == 4) {
            return 0;
        }
        i++;
    }
    return parts == 4;
}

static int fmt_ipv6(const char *s, size_t n)
{
    unsigned char buf[16];
    return n <= 45 && inet_pton(AF_INET6, s, buf) == 1;
}

static int fmt_hostname(const char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '.') {
        n--;
    }
    if (n == 0 || n > 253) {
        return 0;
    }
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-') {
                return 0;
            }
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)s[i]) && s[i] != '-') {
            return 0;
        }
        if (label == 0 && s[i] == '-') {
            return 0;
        }
        label++;
    }
    return 1;
}

static int fmt_json_pointer(const char *s, size_t n)
{
    if (n > 0 && s[0] != '/') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1'))) {
            return 0;
        }
    }
    return 1;
}

static int fmt_regex(const char *s, size_t n)
{
    regex_t re;
    char why[160];
    if (regex_compile(&re, s, n, why, sizeof why) != 0) {
        return 0;
    }
    regfree(&re);
    return 1;
}

static int uri_char(int c, const char *extra)
{
    if (c <= 0 || c >= 0x7f) {
        return 0;
    }
    return isalnum(c) || strchr("-._~!$&'()*+,;=", c) || strchr(extra, c);
}

/* Characters of s[0..n): unreserved, sub-delims, %HH and extra. */
static int uri_chars(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n || hexval((unsigned char)s[i + 1]) < 0 || hexval((unsigned char)s[i + 2]) < 0) {
                return 0;
            }
            i += 2;
        } else if (!uri_char((unsigned char)s[i], extra)) {
            return 0;
        }
    }
    return 1;
}

static int uri_host_port(const char *s, size_t n)
{
    size_t hend = n;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) {
            return 0;
        }
        size_t len = (size_t)(close - s) - 1;
        char ip[64];
        if (len >= sizeof ip) {
            return 0;
        }
        memcpy(ip, s + 1, len);
        ip[len] = '\0';
        if (!(len > 0 && (ip[0] == 'v' || ip[0] == 'V')) && !fmt_ipv6(ip, len)) {
            return 0;
        }
        hend = (size_t)(close - s) + 1;
        if (hend < n && s[hend] != ':') {
            return 0;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon) {
            hend = (size_t)(colon - s);
        }
        if (!uri_chars(s, hend, "")) {
            return 0;
        }
    }
    for (size_t i = hend + 1; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int uri_authority(const char *s, size_t n)
{
    size_t at = n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '@') {
            at = i;
        }
    }
    if (at < n) {
        if (!uri_chars(s, at, ":")) {
            return 0;
        }
        return uri_host_port(s + at + 1, n - at - 1);
    }
    return uri_host_port(s, n);
}

static int fmt_uri_any(const char *s, size_t n, int relative_ok)
{
    size_t i = 0;
    if (isalpha((unsigned char)s[0])) {
        i = 1;
        while (i < n && (isalnum((unsigned char)s[i]) || strchr("+-.", s[i]))) {
            i++;
        }
    }
    if (i > 0 && i < n && s[i] == ':') {
        i++;
    } else {
        if (!relative_ok) {
            return 0;
        }
        size_t seg = strcspn(s, "/?#");
        if (memchr(s, ':', seg)) {
            return 0;
        }
        i = 0;
    }
    const char *rest = s + i;
    if (rest[0] == '/' && rest[1] == '/') {
        size_t len = strcspn(rest + 2, "/?#");
        if (!uri_authority(rest + 2, len)) {
            return 0;
        }
        rest += 2 + len;
    }
    size_t plen = strcspn(rest, "?#");
    if (!uri_chars(rest, plen, ":@/")) {
        return 0;
    }
    rest += plen;
    if (*rest == '?') {
        size_t qlen = strcspn(rest + 1, "#");
        if (!uri_chars(rest + 1, qlen, ":@/?")) {
            return 0;
        }
        rest += 1 + qlen;
    }
    if (*rest == '#') {
        return uri_chars(rest + 1, strlen(rest + 1), ":@/?");
    }
    return 1;
}

static int fmt_uri(const char *s, size_t n)
{
    return fmt_uri_any(s, n, 0);
}

static int fmt_uri_reference(const char *s, size_t n)
{
    return fmt_uri_any(s, n, 1);
}

static const struct format {
    const char *name;
    int (*check)(const char *s, size_t n);
} formats[] = {
    {"date-time", fmt_date_time},
    {"date", fmt_date},
    {"time", fmt_time},
    {"email", fmt_email},
    {"ipv4", fmt_ipv4},
    {"ipv6", fmt_ipv6},
    {"hostname", fmt_hostname},
    {"json-pointer", fmt_json_pointer},
    {"regex", fmt_regex},
    {"uri", fmt_uri},
    {"uri-reference", fmt_uri_reference},
};

/* 1 if s conforms to the format (or the format is unknown). */
static int format_ok(const char *format, const json_t *str)
{
    const char *s = json_string_value(str);
    size_t n = json_string_length(str);
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(formats[i].name, format) == 0) {
            return strlen(s) == n && formats[i].check(s, n);
        }
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Compiled schema                                                      */

typedef struct pattern_prop {
    regex_t re;
    const char *key;
    json_t *schema;
} pattern_prop;

typedef struct node {
    json_t *schema;
    char *base;  /* base URI in effect */
    char *where; /* JSON pointer in the schema document, for messages */
    const char *ref;
    json_t *ref_target;
    int has_pattern;
    regex_t pattern;
    pattern_prop *pats;
    size_t npats;
} node;

typedef struct id_entry {
    char *uri;
    json_t *schema;
} id_entry;

struct json_schema {
    json_t *root;
    node **nodes;
    size_t nnodes, capnodes;
    size_t *table; /* open addressing: node index + 1, 0 = empty */
    size_t tcap;
    id_entry *ids;
    size_t nids, capids;
};

static size_t ptr_hash(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x ^ (x >> 29));
}

static node *lookup(const json_schema *s, const json_t *schema)
{
    if (!s->tcap) {
        return NULL;
    }
    for (size_t h = ptr_hash(schema) & (s->tcap - 1);; h = (h + 1) & (s->tcap - 1)) {
        size_t k = s->table[h];
        if (k == 0) {
            return NULL;
        }
        if (s->nodes[k - 1]->schema == schema) {
            return s->nodes[k - 1];
        }
    }
}

static int table_insert(json_schema *s, size_t index)
{
    if ((s->nnodes + 1) * 2 > s->tcap) {
        size_t cap = s->tcap ? s->tcap * 2 : 64;
        size_t *t = calloc(cap, sizeof *t);
        if (!t) {
            return -1;
        }
        free(s->table);
        s->table = t;
        s->tcap = cap;
        for (size_t i = 0; i < s->nnodes; i++) {
            if (i != index) {
                size_t h = ptr_hash(s->nodes[i]->schema) & (cap - 1);
                while (t[h]) {
                    h = (h + 1) & (cap - 1);
                }
                t[h] = i + 1;
            }
        }
    }
    size_t h = ptr_hash(s->nodes[index]->schema) & (s->tcap - 1);
    while (s->table[h]) {
        h = (h + 1) & (s->tcap - 1);
    }
    s->table[h] = index + 1;
    return 0;
}

static node *node_add(json_schema *s, json_t *schema)
{
    if (s->nnodes == s->capnodes) {
        size_t cap = s->capnodes ? s->capnodes * 2 : 32;
        node **nodes = realloc(s->nodes, cap * sizeof *nodes);
        if (!nodes) {
            return NULL;
        }
        s->nodes = nodes;
        s->capnodes = cap;
    }
    node *n = calloc(1, sizeof *n);
    if (!n) {
        return NULL;
    }
    n->schema = schema;
    s->nodes[s->nnodes] = n;
    if (table_insert(s, s->nnodes) != 0) {
        free(n);
        return NULL;
    }
    s->nnodes++;
    return n;
}

static void node_free(node *n)
{
    if (n->has_pattern) {
        regfree(&n->pattern);
    }
    for (size_t i = 0; i < n->npats; i++) {
        regfree(&n->pats[i].re);
    }
    free(n->pats);
    free(n->base);
    free(n->where);
    free(n);
}

/* ------------------------------------------------------------------ */
/* URIs for $id and $ref                                                */

static size_t scheme_len(const char *u)
{
    size_t i = 0;
    if (!isalpha((unsigned char)u[0])) {
        return 0;
    }
    while (isalnum((unsigned char)u[i]) || (u[i] && strchr("+-.", u[i]))) {
        i++;
    }
    return u[i] == ':' ? i + 1 : 0;
}

static char *cat3(const char *a, size_t na, const char *b, const char *c)
{
    size_t nb = strlen(b), nc = strlen(c);
    char *r = malloc(na + nb + nc + 1);
    if (r) {
        memcpy(r, a, na);
        memcpy(r + na, b, nb);
        memcpy(r + na + nb, c, nc);
        r[na + nb + nc] = '\0';
    }
    return r;
}

/* RFC 3986 reference resolution (without dot-segment removal). */
static char *uri_resolve(const char *base, const char *ref)
{
    if (scheme_len(ref) || !base[0]) {
        return strdup(ref);
    }
    size_t nobase = strcspn(base, "#");
    if (ref[0] == '#' || ref[0] == '\0') {
        return cat3(base, nobase, ref, "");
    }
    size_t sl = scheme_len(base);
    if (ref[0] == '/' && ref[1] == '/') {
        return cat3(base, sl, ref, "");
    }
    size_t auth_end = sl;
    if (base[sl] == '/' && base[sl + 1] == '/') {
        auth_end = sl + 2 + strcspn(base + sl + 2, "/?#");
    }
    if (ref[0] == '/') {
        return cat3(base, auth_end, ref, "");
    }
    size_t path_end = auth_end + strcspn(base + auth_end, "?#");
    size_t dir = path_end;
    while (dir > auth_end && base[dir - 1] != '/') {
        dir--;
    }
    if (dir == auth_end && auth_end > sl) {
        return cat3(base, auth_end, "/", ref);
    }
    return cat3(base, dir, ref, "");
}

/* Drop an empty trailing fragment ("x#" is "x"). */
static void strip_empty_fragment(char *u)
{
    size_t n = strlen(u);
    if (n && u[n - 1] == '#') {
        u[n - 1] = '\0';
    }
}

static int id_register(json_schema *s, const char *uri, json_t *schema)
{
    if (s->nids == s->capids) {
        size_t cap = s->capids ? s->capids * 2 : 8;
        id_entry *ids = realloc(s->ids, cap * sizeof *ids);
        if (!ids) {
            return -1;
        }
        s->ids = ids;
        s->capids = cap;
    }
    char *u = strdup(uri);
    if (!u) {
        return -1;
    }
    strip_empty_fragment(u);
    s->ids[s->nids].uri = u;
    s->ids[s->nids].schema = schema;
    s->nids++;
    return 0;
}

static json_t *id_lookup(const json_schema *s, const char *uri, size_t n)
{
    for (size_t i = 0; i < s->nids; i++) {
        if (strlen(s->ids[i].uri) == n && memcmp(s->ids[i].uri, uri, n) == 0) {
            return s->ids[i].schema;
        }
    }
    return NULL;
}

static void ids_free(json_schema *s)
{
    for (size_t i = 0; i < s->nids; i++) {
        free(s->ids[i].uri);
    }
    free(s->ids);
    s->ids = NULL;
    s->nids = s->capids = 0;
}

/* Decode %HH in place. */
static void percent_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        int h1, h2;
        if (r[0] == '%' && (h1 = hexval((unsigned char)r[1])) >= 0 &&
            (h2 = hexval((unsigned char)r[2])) >= 0) {
            *w++ = (char)(h1 * 16 + h2);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Follow a JSON pointer (already percent-decoded) from doc. */
static json_t *pointer_get(json_t *doc, const char *ptr)
{
    json_t *cur = doc;
    const char *p = ptr;
    char tok[512];
    while (cur && *p == '/') {
        p++;
        size_t n = 0;
        for (; *p && *p != '/'; p++) {
            char c = *p;
            if (c == '~' && (p[1] == '0' || p[1] == '1')) {
                c = p[1] == '0' ? '~' : '/';
                p++;
            } else if (c == '~') {
                return NULL;
            }
            if (n + 1 >= sizeof tok) {
                return NULL;
            }
            tok[n++] = c;
        }
        tok[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, tok, n);
        } else if (json_is_array(cur)) {
            char *end;
            if (n == 0 || n > 9 || (n > 1 && tok[0] == '0') || !isdigit((unsigned char)tok[0])) {
                return NULL;
            }
            unsigned long idx = strtoul(tok, &end, 10);
            cur = *end ? NULL : json_array_get(cur, idx);
        } else {
            return NULL;
        }
    }
    return *p ? NULL : cur;
}

/* ------------------------------------------------------------------ */
/* Compilation                                                          */

typedef struct cctx {
    json_schema *s;
    json_schema_error *err;
    dstr path; /* JSON pointer of the current schema location */
} cctx;

static int cfail(cctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(c->err, "$schema", ds_str(&c->path), fmt, ap);
    va_end(ap);
    return -1;
}

static size_t cpush(cctx *c, const char *seg)
{
    size_t old = c->path.len;
    ds_putc(&c->path, '/');
    for (const char *p = seg; *p; p++) {
        if (*p == '~') {
            ds_puts(&c->path, "~0");
        } else if (*p == '/') {
            ds_puts(&c->path, "~1");
        } else {
            ds_putc(&c->path, *p);
        }
    }
    return old;
}

static size_t cpush_index(cctx *c, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", i);
    return cpush(c, buf);
}

static void cpop(cctx *c, size_t old)
{
    if (c->path.p && old <= c->path.len) {
        c->path.len = old;
        c->path.p[old] = '\0';
    }
}

static int compile_schema(cctx *c, json_t *sch, const char *base, int depth);

static int compile_sub(cctx *c, json_t *sch, const char *seg, const node *n, int depth)
{
    size_t old = cpush(c, seg);
    int rc = compile_schema(c, sch, n->base, depth + 1);
    cpop(c, old);
    return rc;
}

static int compile_array_of_schemas(cctx *c, json_t *arr, const node *n, int depth, int nonempty)
{
    if (!json_is_array(arr) || (nonempty && json_array_size(arr) == 0)) {
        return cfail(c, nonempty ? "must be a non-empty array of schemas" : "must be an array of schemas");
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        size_t old = cpush_index(c, i);
        int rc = compile_schema(c, json_array_get(arr, i), n->base, depth + 1);
        cpop(c, old);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

static int compile_object_of_schemas(cctx *c, json_t *obj, const node *n, int depth)
{
    const char *key;
    json_t *val;
    if (!json_is_object(obj)) {
        return cfail(c, "must be an object of schemas");
    }
    json_object_foreach(obj, key, val)
    {
        if (compile_sub(c, val, key, n, depth)) {
            return -1;
        }
    }
    return 0;
}

static int check_string_array(cctx *c, json_t *arr)
{
    if (!json_is_array(arr)) {
        return cfail(c, "must be an array of strings");
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (!json_is_string(json_array_get(arr, i))) {
            return cfail(c, "must be an array of strings");
        }
    }
    return 0;
}

static int type_known(const char *t)
{
    static const char *const names[] = {"null", "boolean", "object", "array", "number", "string", "integer"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(t, names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int compile_type(cctx *c, json_t *v)
{
    if (json_is_string(v)) {
        return type_known(json_string_value(v)) ? 0
                                                : cfail(c, "%S is not a valid type", json_string_value(v));
    }
    if (!json_is_array(v)) {
        return cfail(c, "must be a type name or an array of type names");
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *t = json_array_get(v, i);
        if (!json_is_string(t) || !type_known(json_string_value(t))) {
            return cfail(c, "%r is not a valid type", t);
        }
    }
    return 0;
}

static int compile_regex(cctx *c, regex_t *re, const char *pat, size_t n)
{
    char why[160];
    if (regex_compile(re, pat, n, why, sizeof why) != 0) {
        return cfail(c, "invalid regular expression %S: %s", pat, why);
    }
    return 0;
}

static int compile_pattern_props(cctx *c, node *n, json_t *obj, int depth)
{
    const char *key;
    json_t *val;
    if (compile_object_of_schemas(c, obj, n, depth)) {
        return -1;
    }
    n->pats = calloc(json_object_size(obj) + 1, sizeof *n->pats);
    if (!n->pats) {
        return cfail(c, "out of memory");
    }
    json_object_foreach(obj, key, val)
    {
        size_t old = cpush(c, key);
        int rc = compile_regex(c, &n->pats[n->npats].re, key, key_len(key));
        cpop(c, old);
        if (rc) {
            return -1;
        }
        n->pats[n->npats].key = key;
        n->pats[n->npats].schema = val;
        n->npats++;
    }
    return 0;
}

static int compile_dependencies(cctx *c, node *n, json_t *obj, int depth)
{
    const char *key;
    json_t *val;
    if (!json_is_object(obj)) {
        return cfail(c, "must be an object");
    }
    json_object_foreach(obj, key, val)
    {
        size_t old = cpush(c, key);
        int rc = json_is_array(val) ? check_string_array(c, val) : compile_schema(c, val, n->base, depth + 1);
        cpop(c, old);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

static int is_nonneg_int(const json_t *v)
{
    return json_is_number(v) && is_integral(v) && num_value(v) >= 0;
}

/* Check one keyword of node n (the location path already names it). */
static int compile_keyword(cctx *c, node *n, const char *kw, json_t *v, int depth)
{
    static const char *const single[] = {
        "additionalItems", "contains", "additionalProperties", "propertyNames", "if", "then", "else", "not"};
    static const char *const counts[] = {"maxLength", "minLength",     "maxItems",
                                         "minItems",  "maxProperties", "minProperties"};
    static const char *const limits[] = {"maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"};
    static const char *const strings[] = {"$schema", "$id", "$comment", "title", "description", "format"};
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
        if (strcmp(kw, single[i]) == 0) {
            return compile_schema(c, v, n->base, depth + 1);
        }
    }
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        if (strcmp(kw, counts[i]) == 0) {
            return is_nonneg_int(v) ? 0 : cfail(c, "%r is not a non-negative integer", v);
        }
    }
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        if (strcmp(kw, limits[i]) == 0) {
            return json_is_number(v) ? 0 : cfail(c, "%r is not of type 'number'", v);
        }
    }
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (strcmp(kw, strings[i]) == 0) {
            return json_is_string(v) ? 0 : cfail(c, "%r is not of type 'string'", v);
        }
    }
    if (strcmp(kw, "$ref") == 0) {
        if (!json_is_string(v)) {
            return cfail(c, "%r is not of type 'string'", v);
        }
        n->ref = json_string_value(v);
        return 0;
    }
    if (strcmp(kw, "type") == 0) {
        return compile_type(c, v);
    }
    if (strcmp(kw, "enum") == 0) {
        return json_is_array(v) ? 0 : cfail(c, "%r is not of type 'array'", v);
    }
    if (strcmp(kw, "multipleOf") == 0) {
        return json_is_number(v) && num_value(v) > 0 ? 0 : cfail(c, "%r is not a number greater than 0", v);
    }
    if (strcmp(kw, "pattern") == 0) {
        if (!json_is_string(v)) {
            return cfail(c, "%r is not of type 'string'", v);
        }
        if (compile_regex(c, &n->pattern, json_string_value(v), json_string_length(v))) {
            return -1;
        }
        n->has_pattern = 1;
        return 0;
    }
    if (strcmp(kw, "items") == 0) {
        return json_is_array(v) ? compile_array_of_schemas(c, v, n, depth, 0)
                                : compile_schema(c, v, n->base, depth + 1);
    }
    if (strcmp(kw, "required") == 0) {
        return check_string_array(c, v);
    }
    if (strcmp(kw, "properties") == 0 || strcmp(kw, "definitions") == 0) {
        return compile_object_of_schemas(c, v, n, depth);
    }
    if (strcmp(kw, "patternProperties") == 0) {
        return compile_pattern_props(c, n, v, depth);
    }
    if (strcmp(kw, "dependencies") == 0) {
        return compile_dependencies(c, n, v, depth);
    }
    if (strcmp(kw, "allOf") == 0 || strcmp(kw, "anyOf") == 0 || strcmp(kw, "oneOf") == 0) {
        return compile_array_of_schemas(c, v, n, depth, 1);
    }
    return 0; /* const, default, examples, unknown keywords */
}

static int compile_schema(cctx *c, json_t *sch, const char *base, int depth)
{
    if (json_is_boolean(sch)) {
        return 0;
    }
    if (!json_is_object(sch)) {
        return cfail(c, "%r is not of type 'object', 'boolean'", sch);
    }
    if (depth > MAX_SCHEMA_DEPTH) {
        return cfail(c, "schema nested too deeply (more than %d levels)", MAX_SCHEMA_DEPTH);
    }
    if (lookup(c->s, sch)) {
        return 0;
    }
    node *n = node_add(c->s, sch);
    if (!n) {
        return cfail(c, "out of memory");
    }
    json_t *id = json_object_get(sch, "$id");
    n->base = json_is_string(id) ? uri_resolve(base, json_string_value(id)) : strdup(base);
    n->where = strdup(ds_str(&c->path));
    if (!n->base || !n->where) {
        return cfail(c, "out of memory");
    }
    if (json_is_string(id) && id_register(c->s, n->base, sch) != 0) {
        return cfail(c, "out of memory");
    }
    const char *key;
    json_t *val;
    json_object_foreach(sch, key, val)
    {
        size_t old = cpush(c, key);
        int rc = compile_keyword(c, n, key, val, depth);
        cpop(c, old);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

/* Resolve one $ref to the subschema it names. */
static int resolve_ref(cctx *c, node *n)
{
    char *abs = uri_resolve(n->base, n->ref);
    if (!abs) {
        return cfail(c, "out of memory");
    }
    strip_empty_fragment(abs);
    json_t *target = id_lookup(c->s, abs, strlen(abs));
    char *hash = strchr(abs, '#');
    size_t doclen = hash ? (size_t)(hash - abs) : strlen(abs);
    json_t *resource = target ? NULL : id_lookup(c->s, abs, doclen);
    int rc = 0;
    if (!target && !resource) {
        rc = cfail(c, "remote $ref not supported: %s", abs);
    } else if (!target && hash && hash[1] != '/') {
        rc = cfail(c, "unresolvable $ref: %S", n->ref);
    } else if (!target) {
        percent_decode(hash + 1);
        target = pointer_get(resource, hash + 1);
        if (!target) {
            rc = cfail(c, "unresolvable $ref: %S", n->ref);
        }
    }
    if (rc == 0 && !lookup(c->s, target)) {
        abs[doclen] = '\0';
        rc = compile_schema(c, target, abs, 0);
    }
    if (rc == 0) {
        n->ref_target = target;
    }
    free(abs);
    return rc;
}

static int resolve_refs(cctx *c)
{
    /* resolving may compile more nodes; they are appended and visited too */
    for (size_t i = 0; i < c->s->nnodes; i++) {
        node *n = c->s->nodes[i];
        if (!n->ref) {
            continue;
        }
        cpop(c, 0);
        ds_puts(&c->path, n->where);
        size_t old = cpush(c, "$ref");
        int rc = resolve_ref(c, n);
        cpop(c, old);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

/* A chain of schemas that are only $ref, coming back on itself, can never
 * be evaluated. */
static int check_ref_loops(cctx *c)
{
    for (size_t i = 0; i < c->s->nnodes; i++) {
        const node *n = c->s->nodes[i];
        size_t steps = 0;
        while (n && n->ref_target && steps <= c->s->nnodes) {
            n = lookup(c->s, n->ref_target);
            steps++;
        }
        if (steps > c->s->nnodes) {
            cpop(c, 0);
            ds_puts(&c->path, c->s->nodes[i]->where);
            return cfail(c, "$ref loop: %S refers back to itself", c->s->nodes[i]->ref);
        }
    }
    return 0;
}

json_schema *json_schema_compile(json_t *schema, json_schema_error *err)
{
    json_schema_error local;
    cctx c = {NULL, err ? err : &local, {0}};
    memset(c.err, 0, sizeof *c.err);
    if (!schema) {
        cfail(&c, "no schema");
        return NULL;
    }
    json_schema *s = calloc(1, sizeof *s);
    if (!s) {
        cfail(&c, "out of memory");
        return NULL;
    }
    c.s = s;
    s->root = json_incref(schema);
    json_t *id = json_is_object(schema) ? json_object_get(schema, "$id") : NULL;
    int rc = id_register(s, json_is_string(id) ? json_string_value(id) : "", schema);
    rc = rc ? cfail(&c, "out of memory") : compile_schema(&c, schema, "", 0);
    if (rc == 0) {
        rc = resolve_refs(&c);
    }
    if (rc == 0) {
        rc = check_ref_loops(&c);
    }
    ds_free(&c.path);
    ids_free(s);
    if (rc != 0) {
        json_schema_free(s);
        return NULL;
    }
    memset(c.err, 0, sizeof *c.err);
    return s;
}

void json_schema_free(json_schema *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->nnodes; i++) {
        node_free(s->nodes[i]);
    }
    free(s->nodes);
    free(s->table);
    ids_free(s);
    json_decref(s->root);
    free(s);
}

const char *json_schema_title(const json_schema *s)
{
    if (!s || !json_is_object(s->root)) {
        return NULL;
    }
    return json_string_value(json_object_get(s->root, "title"));
}

/* ------------------------------------------------------------------ */
/* Validation                                                           */

typedef struct vctx {
    const json_schema *s;
    unsigned flags;
    json_schema_error *err;
    int quiet;   /* probing a branch: no messages, no defaults */
    int aborted; /* a limit was hit: everything fails, the message stays */
    int depth;
    long steps;
    char path[1024];
    size_t plen;
} vctx;

static int vfail(vctx *v, const char *kw, const char *fmt, ...)
{
    if (v->quiet || v->aborted) {
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    set_error(v->err, kw, v->path, fmt, ap);
    va_end(ap);
    return -1;
}

static size_t vpush(vctx *v, const char *key)
{
    size_t old = v->plen;
    char *p = v->path;
    size_t n = v->plen, cap = sizeof v->path - 1;
    if (n < cap) {
        p[n++] = '/';
    }
    for (const char *k = key; *k && n < cap; k++) {
        if (*k == '~' || *k == '/') {
            if (n + 2 > cap) {
                break;
            }
            p[n++] = '~';
            p[n++] = *k == '~' ? '0' : '1';
        } else {
            p[n++] = *k;
        }
    }
    p[n] = '\0';
    v->plen = n;
    return old;
}

static size_t vpush_index(vctx *v, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", i);
    return vpush(v, buf);
}

static void vpop(vctx *v, size_t old)
{
    v->plen = old;
    v->path[old] = '\0';
}

static int validate(vctx *v, json_t *sch, json_t *inst);

static int validate_at(vctx *v, json_t *sch, json_t *inst, const char *key)
{
    size_t old = vpush(v, key);
    int rc = validate(v, sch, inst);
    vpop(v, old);
    return rc;
}

static int validate_at_index(vctx *v, json_t *sch, json_t *inst, size_t i)
{
    size_t old = vpush_index(v, i);
    int rc = validate(v, sch, inst);
    vpop(v, old);
    return rc;
}

/* 1 if inst is valid under sch, probing quietly. */
static int probe(vctx *v, json_t *sch, json_t *inst)
{
    int quiet = v->quiet;
    v->quiet = 1;
    int rc = validate(v, sch, inst);
    v->quiet = quiet;
    return rc == 0;
}

static int type_matches(const char *t, const json_t *inst)
{
    switch (t[0]) {
    case 'n':
        return t[1] == 'u' && t[2] == 'l' ? json_is_null(inst) : json_is_number(inst);
    case 'b':
        return json_is_boolean(inst);
    case 'o':
        return json_is_object(inst);
    case 'a':
        return json_is_array(inst);
    case 's':
        return json_is_string(inst);
    case 'i':
        return json_is_number(inst) && is_integral(inst);
    default:
        return 0;
    }
}

static int check_type(vctx *v, json_t *type, json_t *inst)
{
    if (json_is_string(type)) {
        if (type_matches(json_string_value(type), inst)) {
            return 0;
        }
        return vfail(v, "type", "%r is not of type %S", inst, json_string_value(type));
    }
    dstr names = {0};
    for (size_t i = 0; i < json_array_size(type); i++) {
        const char *t = json_string_value(json_array_get(type, i));
        if (type_matches(t, inst)) {
            ds_free(&names);
            return 0;
        }
        if (i) {
            ds_puts(&names, ", ");
        }
        repr_str(&names, t, strlen(t));
    }
    int rc = vfail(v, "type", "%r is not of type %s", inst, ds_str(&names));
    ds_free(&names);
    return rc;
}

static int check_generic(vctx *v, json_t *sch, json_t *inst)
{
    json_t *k;
    if ((k = json_object_get(sch, "type")) && check_type(v, k, inst)) {
        return -1;
    }
    if ((k = json_object_get(sch, "enum"))) {
        size_t i;
        for (i = 0; i < json_array_size(k); i++) {
            if (value_equal(json_array_get(k, i), inst, 0)) {
                break;
            }
        }
        if (i == json_array_size(k)) {
            return vfail(v, "enum", "%r is not one of %r", inst, k);
        }
    }
    if ((k = json_object_get(sch, "const")) && !value_equal(k, inst, 0)) {
        return vfail(v, "const", "%r was expected", k);
    }
    return 0;
}

static int not_multiple(const json_t *inst, const json_t *m)
{
    if (json_is_integer(inst) && json_is_integer(m)) {
        return json_integer_value(inst) % json_integer_value(m) != 0;
    }
    long double q = num_value(inst) / num_value(m);
    if (!isfinite((double)q)) {
        return 1;
    }
    long double r = q - roundl(q);
    return fabsl(r) > 1e-9L * (fabsl(q) > 1 ? fabsl(q) : 1);
}

static int check_number(vctx *v, json_t *sch, json_t *inst)
{
    json_t *k;
    long double x = num_value(inst);
    if ((k = json_object_get(sch, "multipleOf")) && not_multiple(inst, k)) {
        return vfail(v, "multipleOf", "%r is not a multiple of %r", inst, k);
    }
    if ((k = json_object_get(sch, "maximum")) && x > num_value(k)) {
        return vfail(v, "maximum", "%r is greater than the maximum of %r", inst, k);
    }
    if ((k = json_object_get(sch, "exclusiveMaximum")) && x >= num_value(k)) {
        return vfail(v, "exclusiveMaximum", "%r is greater than or equal to the maximum of %r", inst, k);
    }
    if ((k = json_object_get(sch, "minimum")) && x < num_value(k)) {
        return vfail(v, "minimum", "%r is less than the minimum of %r", inst, k);
    }
    if ((k = json_object_get(sch, "exclusiveMinimum")) && x <= num_value(k)) {
        return vfail(v, "exclusiveMinimum", "%r is less than or equal to the minimum of %r", inst, k);
    }
    return 0;
}

static int check_string(vctx *v, const node *n, json_t *inst)
{
    json_t *sch = n->schema, *k;
    size_t len = utf8_length(json_string_value(inst), json_string_length(inst));
    if ((k = json_object_get(sch, "maxLength")) && (long double)len > num_value(k)) {
        return vfail(v, "maxLength", "%r is too long", inst);
    }
    if ((k = json_object_get(sch, "minLength")) && (long double)len < num_value(k)) {
        return vfail(v, "minLength", "%r is too short", inst);
    }
    if (n->has_pattern && !regex_search(&n->pattern, json_string_value(inst))) {
        return vfail(v, "pattern", "%r does not match %r", inst, json_object_get(sch, "pattern"));
    }
    if ((k = json_object_get(sch, "format")) && !format_ok(json_string_value(k), inst)) {
        return vfail(v, "format", "%r is not a %r", inst, k);
    }
    return 0;
}

static int check_items(vctx *v, json_t *sch, json_t *inst)
{
    json_t *items = json_object_get(sch, "items");
    size_t n = json_array_size(inst);
    if (!items) {
        return 0;
    }
    if (!json_is_array(items)) {
        for (size_t i = 0; i < n; i++) {
            if (validate_at_index(v, items, json_array_get(inst, i), i)) {
                return -1;
            }
        }
        return 0;
    }
    size_t ntuple = json_array_size(items);
    for (size_t i = 0; i < n && i < ntuple; i++) {
        if (validate_at_index(v, json_array_get(items, i), json_array_get(inst, i), i)) {
            return -1;
        }
    }
    json_t *add = json_object_get(sch, "additionalItems");
    if (!add || n <= ntuple) {
        return 0;
    }
    if (json_is_false(add)) {
        dstr extra = {0};
        for (size_t i = ntuple; i < n; i++) {
            ds_puts(&extra, i > ntuple ? ", " : "");
            repr(&extra, json_array_get(inst, i));
        }
        int rc = vfail(v, "additionalItems", "Additional items are not allowed (%s %s unexpected)",
                       ds_str(&extra), n - ntuple == 1 ? "was" : "were");
        ds_free(&extra);
        return rc;
    }
    for (size_t i = ntuple; i < n; i++) {
        if (validate_at_index(v, add, json_array_get(inst, i), i)) {
            return -1;
        }
    }
    return 0;
}

static int check_array(vctx *v, json_t *sch, json_t *inst)
{
    json_t *k;
    size_t n = json_array_size(inst);
    if (check_items(v, sch, inst)) {
        return -1;
    }
    if ((k = json_object_get(sch, "maxItems")) && (long double)n > num_value(k)) {
        return vfail(v, "maxItems", "%r is too long", inst);
    }
    if ((k = json_object_get(sch, "minItems")) && (long double)n < num_value(k)) {
        return vfail(v, "minItems", "%r is too short", inst);
    }
    if (json_is_true(json_object_get(sch, "uniqueItems"))) {
        for (size_t i = 0; i < n; i++) {
            for (size_t j = i + 1; j < n; j++) {
                if (value_equal(json_array_get(inst, i), json_array_get(inst, j), 0)) {
                    return vfail(v, "uniqueItems", "%r has non-unique elements", inst);
                }
            }
        }
    }
    if ((k = json_object_get(sch, "contains"))) {
        for (size_t i = 0; i < n; i++) {
            if (probe(v, k, json_array_get(inst, i))) {
                return 0;
            }
        }
        return vfail(v, "contains", "%r does not contain items matching the given schema", inst);
    }
    return 0;
}

/* The "default" of a property subschema, looking through $ref. */
static json_t *default_of(const json_schema *s, json_t *sub)
{
    for (int hops = 0; json_is_object(sub) && hops < 16; hops++) {
        json_t *d = json_object_get(sub, "default");
        if (d) {
            return d;
        }
        const node *n = lookup(s, sub);
        sub = n ? n->ref_target : NULL;
    }
    return NULL;
}

static int apply_defaults(vctx *v, json_t *props, json_t *inst)
{
    const char *key;
    json_t *sub;
    json_object_foreach(props, key, sub)
    {
        json_t *d;
        if (json_object_getn(inst, key, key_len(key)) || !(d = default_of(v->s, sub))) {
            continue;
        }
        if (json_object_setn_new(inst, key, key_len(key), json_deep_copy(d)) != 0) {
            return vfail(v, "default", "cannot insert the default of %S", key);
        }
    }
    return 0;
}

static int matches_pattern_prop(const node *n, const char *key)
{
    for (size_t i = 0; i < n->npats; i++) {
        if (regex_search(&n->pats[i].re, key)) {
            return 1;
        }
    }
    return 0;
}

static int is_additional(const node *n, json_t *props, const char *key)
{
    return !(props && json_object_getn(props, key, key_len(key))) && !matches_pattern_prop(n, key);
}

static int additional_false(vctx *v, const node *n, json_t *props, json_t *inst)
{
    const char *key;
    json_t *val;
    dstr extra = {0};
    size_t count = 0;
    json_object_foreach(inst, key, val)
    {
        if (is_additional(n, props, key)) {
            ds_puts(&extra, count++ ? ", " : "");
            repr_str(&extra, key, strlen(key));
        }
    }
    int rc = 0;
    if (count && n->npats) {
        dstr pats = {0};
        for (size_t i = 0; i < n->npats; i++) {
            ds_puts(&pats, i ? ", " : "");
            repr_str(&pats, n->pats[i].key, strlen(n->pats[i].key));
        }
        rc = vfail(v, "additionalProperties", "%s %s not match any of the regexes: %s", ds_str(&extra),
                   count == 1 ? "does" : "do", ds_str(&pats));
        ds_free(&pats);
    } else if (count) {
        rc = vfail(v, "additionalProperties", "Additional properties are not allowed (%s %s unexpected)",
                   ds_str(&extra), count == 1 ? "was" : "were");
    }
    ds_free(&extra);
    return rc;
}

static int check_additional(vctx *v, const node *n, json_t *inst)
{
    json_t *add = json_object_get(n->schema, "additionalProperties");
    json_t *props = json_object_get(n->schema, "properties");
    const char *key;
    json_t *val;
    if (!add || json_is_true(add)) {
        return 0;
    }
    if (json_is_false(add)) {
        return additional_false(v, n, props, inst);
    }
    json_object_foreach(inst, key, val)
    {
        if (is_additional(n, props, key) && validate_at(v, add, val, key)) {
            return -1;
        }
    }
    return 0;
}

static int check_properties(vctx *v, const node *n, json_t *inst)
{
    json_t *props = json_object_get(n->schema, "properties");
    const char *key;
    json_t *sub;
    json_object_foreach(props, key, sub)
    {
        json_t *val = json_object_getn(inst, key, key_len(key));
        if (val && validate_at(v, sub, val, key)) {
            return -1;
        }
    }
    for (size_t i = 0; i < n->npats; i++) {
        json_t *val;
        json_object_foreach(inst, key, val)
        {
            if (regex_search(&n->pats[i].re, key) && validate_at(v, n->pats[i].schema, val, key)) {
                return -1;
            }
        }
    }
    return 0;
}

static int check_dependencies(vctx *v, json_t *deps, json_t *inst)
{
    const char *key;
    json_t *dep;
    json_object_foreach(deps, key, dep)
    {
        if (!json_object_getn(inst, key, key_len(key))) {
            continue;
        }
        if (!json_is_array(dep)) {
            if (validate(v, dep, inst)) {
                return -1;
            }
            continue;
        }
        for (size_t i = 0; i < json_array_size(dep); i++) {
            json_t *name = json_array_get(dep, i);
            if (!json_object_getn(inst, json_string_value(name), json_string_length(name))) {
                return vfail(v, "dependencies", "%r is a dependency of %S", name, key);
            }
        }
    }
    return 0;
}

static int check_property_names(vctx *v, json_t *names, json_t *inst)
{
    const char *key;
    json_t *val;
    json_object_foreach(inst, key, val)
    {
        json_t *str = json_stringn(key, key_len(key));
        int rc = str ? validate(v, names, str) : vfail(v, "propertyNames", "out of memory");
        json_decref(str);
        if (rc) {
            return -1;
        }
    }
    return 0;
}

static int check_object(vctx *v, const node *n, json_t *inst)
{
    json_t *sch = n->schema, *k;
    size_t size;
    json_t *props = json_object_get(sch, "properties");
    if (props && (v->flags & JSON_SCHEMA_APPLY_DEFAULTS) && !v->quiet && apply_defaults(v, props, inst)) {
        return -1;
    }
    size = json_object_size(inst);
    if ((k = json_object_get(sch, "maxProperties")) && (long double)size > num_value(k)) {
        return vfail(v, "maxProperties", "%r has too many properties", inst);
    }
    if ((k = json_object_get(sch, "minProperties")) && (long double)size < num_value(k)) {
        return vfail(v, "minProperties", "%r does not have enough properties", inst);
    }
    if (check_additional(v, n, inst)) {
        return -1;
    }
    k = json_object_get(sch, "required");
    for (size_t i = 0; i < json_array_size(k); i++) {
        json_t *name = json_array_get(k, i);
        if (!json_object_getn(inst, json_string_value(name), json_string_length(name))) {
            return vfail(v, "required", "%r is a required property", name);
        }
    }
    if (check_properties(v, n, inst)) {
        return -1;
    }
    if ((k = json_object_get(sch, "dependencies")) && check_dependencies(v, k, inst)) {
        return -1;
    }
    if ((k = json_object_get(sch, "propertyNames")) && check_property_names(v, k, inst)) {
        return -1;
    }
    return 0;
}

/* Validate the chosen branch again, for real, when defaults apply. */
static int commit_branch(vctx *v, json_t *sch, json_t *inst)
{
    if (v->quiet || !(v->flags & JSON_SCHEMA_APPLY_DEFAULTS)) {
        return 0;
    }
    return validate(v, sch, inst);
}

static int check_any_one(vctx *v, json_t *sch, json_t *inst)
{
    json_t *k;
    if ((k = json_object_get(sch, "anyOf"))) {
        size_t i;
        for (i = 0; i < json_array_size(k) && !probe(v, json_array_get(k, i), inst); i++) {
        }
        if (i == json_array_size(k)) {
            return vfail(v, "anyOf", "%r is not valid under any of the given schemas", inst);
        }
        if (commit_branch(v, json_array_get(k, i), inst)) {
            return -1;
        }
    }
    if ((k = json_object_get(sch, "oneOf"))) {
        json_t *first = NULL;
        for (size_t i = 0; i < json_array_size(k); i++) {
            json_t *sub = json_array_get(k, i);
            if (!probe(v, sub, inst)) {
                continue;
            }
            if (first) {
                return vfail(v, "oneOf", "%r is valid under each of %r, %r", inst, first, sub);
            }
            first = sub;
        }
        if (!first) {
            return vfail(v, "oneOf", "%r is not valid under any of the given schemas", inst);
        }
        if (commit_branch(v, first, inst)) {
            return -1;
        }
    }
    return 0;
}

static int check_applicators(vctx *v, json_t *sch, json_t *inst)
{
    json_t *k;
    if ((k = json_object_get(sch, "if"))) {
        json_t *branch = json_object_get(sch, probe(v, k, inst) ? "then" : "else");
        if (branch && validate(v, branch, inst)) {
            return -1;
        }
    }
    if ((k = json_object_get(sch, "allOf"))) {
        for (size_t i = 0; i < json_array_size(k); i++) {
            if (validate(v, json_array_get(k, i), inst)) {
                return -1;
            }
        }
    }
    if (check_any_one(v, sch, inst)) {
        return -1;
    }
    if ((k = json_object_get(sch, "not")) && probe(v, k, inst)) {
        return vfail(v, "not", "%r should not be valid under %r", inst, k);
    }
    return 0;
}

static int validate_node(vctx *v, const node *n, json_t *inst)
{
    if (n->ref_target) {
        return validate(v, n->ref_target, inst); /* draft 7: siblings ignored */
    }
    if (check_generic(v, n->schema, inst)) {
        return -1;
    }
    if (json_is_number(inst) && check_number(v, n->schema, inst)) {
        return -1;
    }
    if (json_is_string(inst) && check_string(v, n, inst)) {
        return -1;
    }
    if (json_is_array(inst) && check_array(v, n->schema, inst)) {
        return -1;
    }
    if (json_is_object(inst) && check_object(v, n, inst)) {
        return -1;
    }
    return check_applicators(v, n->schema, inst);
}

static int validate(vctx *v, json_t *sch, json_t *inst)
{
    if (json_is_true(sch)) {
        return 0;
    }
    if (json_is_false(sch)) {
        return vfail(v, "false", "False schema does not allow %r", inst);
    }
    const node *n = lookup(v->s, sch);
    if (!n) {
        return vfail(v, "$ref", "internal error: schema not compiled");
    }
    if (v->aborted) {
        return -1;
    }
    if (v->depth >= MAX_VALIDATE_DEPTH || ++v->steps > MAX_VALIDATE_STEPS) {
        /* reported even inside a probe, and final: "not" must not turn a
         * runaway recursion into a success */
        v->quiet = 0;
        if (v->depth >= MAX_VALIDATE_DEPTH) {
            vfail(v, "$ref", "maximum validation depth (%d) exceeded (recursive schema or instance too deep)",
                  MAX_VALIDATE_DEPTH);
        } else {
            vfail(v, "$ref", "validation too complex (more than %d steps; recursive schema?)",
                  MAX_VALIDATE_STEPS);
        }
        v->aborted = 1;
        return -1;
    }
    v->depth++;
    int rc = validate_node(v, n, inst);
    v->depth--;
    return rc;
}

int json_schema_validate(const json_schema *s, json_t *instance, unsigned flags, json_schema_error *err)
{
    json_schema_error local;
    vctx *v = calloc(1, sizeof *v);
    if (!err) {
        err = &local;
    }
    memset(err, 0, sizeof *err);
    if (!v) {
        copy_trunc(err->message, sizeof err->message, "out of memory");
        return -1;
    }
    v->s = s;
    v->flags = flags;
    v->err = err;
    int rc;
    if (!s || !instance) {
        copy_trunc(err->message, sizeof err->message, "no schema or no instance");
        rc = -1;
    } else {
        rc = validate(v, s->root, instance);
        rc = v->aborted ? -1 : rc;
    }
    free(v);
    return rc;
}
