/*
 * json_schema_values.c - the validator's text and value helpers: growable
 * strings, Python-like repr of JSON values for messages (as Python
 * jsonschema words them), error formatting, and numeric comparison and
 * equality of JSON values (1 == 1.0, as JSON Schema wants).
 */
#include "json_schema__internal.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocps/sal_utf8.h"

/* ------------------------------------------------------------------ */
/* Growable strings                                                     */

void js_ds_putn(dstr *d, const char *s, size_t n)
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

void js_ds_puts(dstr *d, const char *s)
{
    js_ds_putn(d, s, strlen(s));
}

void js_ds_putc(dstr *d, char c)
{
    js_ds_putn(d, &c, 1);
}

void js_ds_printf(dstr *d, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) {
        js_ds_putn(d, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
    }
}

const char *js_ds_str(const dstr *d)
{
    return d->p && !d->oom ? d->p : "";
}

void js_ds_free(dstr *d)
{
    free(d->p);
    d->p = NULL;
    d->len = d->cap = 0;
    d->oom = 0;
}

void js_copy_trunc(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = sal_utf8_cut(src, size - 1);
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Length of a key obtained from json_object_foreach (keys may hold NULs). */
size_t js_key_len(const char *key)
{
    return json_object_iter_key_len(json_object_key_to_iter(key));
}

int js_hexval(int c)
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

/* ------------------------------------------------------------------ */
/* Python-like repr of JSON values, for messages                        */

void js_repr_str(dstr *d, const char *s, size_t n)
{
    char q = (memchr(s, '\'', n) && !memchr(s, '"', n)) ? '"' : '\'';
    js_ds_putc(d, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == (unsigned char)q) {
            js_ds_putc(d, '\\');
            js_ds_putc(d, (char)c);
        } else if (c == '\n') {
            js_ds_puts(d, "\\n");
        } else if (c == '\r') {
            js_ds_puts(d, "\\r");
        } else if (c == '\t') {
            js_ds_puts(d, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            js_ds_printf(d, "\\x%02x", c);
        } else {
            js_ds_putc(d, (char)c);
        }
    }
    js_ds_putc(d, q);
}

/* Python's repr of a float: shortest round-trip digits, exponent form
 * outside [1e-4, 1e16). */
static void repr_real(dstr *d, double x)
{
    if (isnan(x)) {
        js_ds_puts(d, "nan");
        return;
    }
    if (isinf(x)) {
        js_ds_puts(d, x < 0 ? "-inf" : "inf");
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
        js_ds_putc(d, '-');
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
        js_ds_putc(d, digits[0]);
        if (nd > 1) {
            js_ds_putc(d, '.');
            js_ds_puts(d, digits + 1);
        }
        js_ds_printf(d, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    } else if (e < 0) {
        js_ds_puts(d, "0.");
        for (int i = 0; i < -e - 1; i++) {
            js_ds_putc(d, '0');
        }
        js_ds_puts(d, digits);
    } else {
        for (int i = 0; i <= e; i++) {
            js_ds_putc(d, (size_t)i < nd ? digits[i] : '0');
        }
        js_ds_putc(d, '.');
        js_ds_puts(d, (size_t)e + 1 < nd ? digits + e + 1 : "0");
    }
}

/* Python's repr of a JSON value (True, None, 1.0, {'a': [1]}), stopping
 * with "..." past limit bytes. */
static void repr_value(dstr *d, const json_t *v, int depth, size_t limit)
{
    if (d->len > limit || depth > MAX_VALUE_DEPTH) {
        js_ds_puts(d, "...");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        int first = 1;
        js_ds_putc(d, '{');
        json_object_foreach((json_t *)v, key, val)
        {
            if (!first) {
                js_ds_puts(d, ", ");
            }
            first = 0;
            js_repr_str(d, key, js_key_len(key));
            js_ds_puts(d, ": ");
            repr_value(d, val, depth + 1, limit);
            if (d->len > limit) {
                break;
            }
        }
        js_ds_putc(d, '}');
        break;
    }
    case JSON_ARRAY:
        js_ds_putc(d, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) {
                js_ds_puts(d, ", ");
            }
            repr_value(d, json_array_get(v, i), depth + 1, limit);
            if (d->len > limit) {
                break;
            }
        }
        js_ds_putc(d, ']');
        break;
    case JSON_STRING:
        js_repr_str(d, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        js_ds_printf(d, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        repr_real(d, json_real_value(v));
        break;
    case JSON_TRUE:
        js_ds_puts(d, "True");
        break;
    case JSON_FALSE:
        js_ds_puts(d, "False");
        break;
    case JSON_NULL:
        js_ds_puts(d, "None");
        break;
    }
}

/* repr of v appended to d, shortened with "..." when long. */
void js_repr(dstr *d, const json_t *v)
{
    dstr t = {0};
    repr_value(&t, v, 0, REPR_LIMIT);
    if (t.len > REPR_LIMIT) {
        size_t n = sal_utf8_cut(t.p, REPR_LIMIT - 3);
        js_ds_putn(d, t.p, n);
        js_ds_puts(d, "...");
    } else {
        js_ds_puts(d, js_ds_str(&t));
    }
    js_ds_free(&t);
}

/*
 * Message formatting: %s a C string, %S the repr of a C string, %r the
 * repr of a json_t, %d an int.
 */
static void vformat(dstr *d, const char *fmt, va_list ap)
{
    for (const char *f = fmt; *f; f++) {
        if (*f != '%' || !f[1]) {
            js_ds_putc(d, *f);
            continue;
        }
        f++;
        if (*f == 's') {
            js_ds_puts(d, va_arg(ap, const char *));
        } else if (*f == 'S') {
            const char *s = va_arg(ap, const char *);
            js_repr_str(d, s, strlen(s));
        } else if (*f == 'r') {
            js_repr(d, va_arg(ap, const json_t *));
        } else if (*f == 'd') {
            js_ds_printf(d, "%d", va_arg(ap, int));
        } else {
            js_ds_putc(d, *f);
        }
    }
}

void js_set_error(json_schema_error *err, const char *kw, const char *path, const char *fmt, va_list ap)
{
    dstr d = {0};
    vformat(&d, fmt, ap);
    js_copy_trunc(err->message, sizeof err->message, d.oom ? "out of memory" : js_ds_str(&d));
    js_copy_trunc(err->path, sizeof err->path, path);
    js_copy_trunc(err->keyword, sizeof err->keyword, kw);
    js_ds_free(&d);
}

/* ------------------------------------------------------------------ */
/* Numbers and equality                                                 */

long double js_num_value(const json_t *v)
{
    return json_is_integer(v) ? (long double)json_integer_value(v) : (long double)json_real_value(v);
}

/* An integer, or a real with no fraction (1.0 is an "integer"). */
int js_is_integral(const json_t *v)
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
    return js_num_value(a) == js_num_value(b);
}

int js_value_equal(const json_t *a, const json_t *b, int depth)
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
            if (!js_value_equal(json_array_get(a, i), json_array_get(b, i), depth + 1)) {
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
            json_t *vb = json_object_getn(b, key, js_key_len(key));
            if (!vb || !js_value_equal(va, vb, depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    return 1; /* true, false, null */
}

/* Count Unicode code points of UTF-8 text (jansson guarantees UTF-8). */
size_t js_utf8_length(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            count++;
        }
    }
    return count;
}
