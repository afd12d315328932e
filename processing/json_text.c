/*
 * json_text.c - JSON text of jansson values (see json_text.h). The layout
 * rules are jansson 2.14's dump.c: "[]" and "{}" when empty; with an
 * indent, a newline and depth * indent spaces after the opening bracket
 * and after each ",", and before the closing one; ": " between key and
 * value when indented, ":" when compact; reals as "%.17g" with ".0" added
 * when neither '.' nor 'e' is in it and the exponent without '+' and
 * leading zeros; control characters, '"' and '\\' escaped.
 */
#include "ocps/json_text.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool json_text_reserve(json_text_buf *b, size_t more)
{
    if (b->failed) {
        return false;
    }
    if (b->n + more + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + more + 1) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void json_text_put(json_text_buf *b, const char *s, size_t n)
{
    if (json_text_reserve(b, n)) {
        memcpy(b->p + b->n, s, n);
        b->n += n;
    }
}

/* A newline and depth levels of indentation (nothing when compact). */
static void json_text_newline(json_text_buf *b, int depth)
{
    if (b->indent <= 0) {
        return;
    }
    size_t spaces = (size_t)depth * (size_t)b->indent;
    if (json_text_reserve(b, spaces + 1)) {
        b->p[b->n++] = '\n';
        memset(b->p + b->n, ' ', spaces);
        b->n += spaces;
    }
}

/* Bytes a string may hold as they are (not a control character, '"' nor
 * '\\'): runs of them are copied at once. */
static bool json_text_plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\';
}

static void json_text_string(json_text_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    /* room for the quotes and the longest escaped form of every byte */
    if (!json_text_reserve(b, 6 * len + 2)) {
        return;
    }
    char *o = b->p + b->n;
    *o++ = '"';
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        while (run < len && json_text_plain((unsigned char)s[run])) {
            run++;
        }
        memcpy(o, s + i, run - i);
        o += run - i;
        if (run == len) {
            break;
        }
        unsigned char c = (unsigned char)s[run];
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *o++ = (char)c;
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        i = run + 1;
    }
    *o++ = '"';
    b->n = (size_t)(o - b->p);
}

/* jansson's jsonp_dtostr with precision 17 (a 24-byte buffer). */
static bool json_text_real(json_text_buf *b, double value)
{
    char buf[24];
    int ret = snprintf(buf, sizeof buf, "%.17g", value);
    if (ret < 0 || (size_t)ret >= sizeof buf) {
        return false;
    }
    size_t length = (size_t)ret;
    if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
        if (length + 3 >= sizeof buf) {
            return false;
        }
        buf[length++] = '.';
        buf[length++] = '0';
        buf[length] = '\0';
    }
    char *start = strchr(buf, 'e');
    if (start != NULL) {
        start++;
        char *end = start + 1;
        if (*start == '-') {
            start++;
        }
        while (*end == '0') {
            end++;
        }
        if (end != start) {
            memmove(start, end, length - (size_t)(end - buf));
            length -= (size_t)(end - start);
        }
    }
    json_text_put(b, buf, length);
    return true;
}

static void json_text_integer(json_text_buf *b, json_int_t v)
{
    char buf[24];
    char *p = buf + sizeof buf;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *--p = '-';
    }
    json_text_put(b, p, (size_t)(buf + sizeof buf - p));
}

/* After an array's or object's item at depth + 1: a comma and the next
 * item's line, or the closing bracket's line at depth. */
static void json_text_after_item(json_text_buf *b, bool more, int depth)
{
    if (more) {
        json_text_put(b, ",", 1);
        json_text_newline(b, depth + 1);
    } else {
        json_text_newline(b, depth);
    }
}

static bool json_text_value(json_text_buf *b, const json_t *v, int depth)
{
    if (depth > JSON_TEXT_MAX_DEPTH) {
        return false;
    }
    switch (json_typeof(v)) {
    case JSON_NULL:
        json_text_put(b, "null", 4);
        return true;
    case JSON_TRUE:
        json_text_put(b, "true", 4);
        return true;
    case JSON_FALSE:
        json_text_put(b, "false", 5);
        return true;
    case JSON_INTEGER:
        json_text_integer(b, json_integer_value(v));
        return true;
    case JSON_REAL:
        return json_text_real(b, json_real_value(v));
    case JSON_STRING:
        json_text_string(b, json_string_value(v), json_string_length(v));
        return true;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        json_text_put(b, "[", 1);
        if (n > 0) {
            json_text_newline(b, depth + 1);
        }
        for (size_t i = 0; i < n; i++) {
            if (!json_text_value(b, json_array_get(v, i), depth + 1)) {
                return false;
            }
            json_text_after_item(b, i + 1 < n, depth);
        }
        json_text_put(b, "]", 1);
        return true;
    }
    case JSON_OBJECT: {
        json_text_put(b, "{", 1);
        void *it = json_object_iter((json_t *)v);
        if (it != NULL) {
            json_text_newline(b, depth + 1);
        }
        while (it != NULL) {
            json_text_string(b, json_object_iter_key(it), json_object_iter_key_len(it));
            json_text_put(b, b->indent > 0 ? ": " : ":", b->indent > 0 ? 2 : 1);
            if (!json_text_value(b, json_object_iter_value(it), depth + 1)) {
                return false;
            }
            it = json_object_iter_next((json_t *)v, it);
            json_text_after_item(b, it != NULL, depth);
        }
        json_text_put(b, "}", 1);
        return true;
    }
    }
    return false;
}

char *json_text(const json_t *v, int indent, size_t *len)
{
    json_text_buf b = {.indent = indent > 31 ? 31 : indent};
    if (v == NULL || !json_text_value(&b, v, 0)) {
        b.failed = true;
    }
    return json_text_finish(&b, len);
}

void json_text_raw(json_text_buf *b, const char *text, size_t len)
{
    json_text_put(b, text, len);
}

void json_text_str(json_text_buf *b, const char *s, size_t len)
{
    json_text_string(b, s, len);
}

void json_text_real_value(json_text_buf *b, double value)
{
    if (!json_text_real(b, value)) {
        b->failed = true;
    }
}

void json_text_indent(json_text_buf *b, int depth)
{
    json_text_newline(b, depth);
}

void json_text_value_at(json_text_buf *b, const json_t *v, int depth)
{
    if (v == NULL || !json_text_value(b, v, depth)) {
        b->failed = true;
    }
}

char *json_text_finish(json_text_buf *b, size_t *len)
{
    char *text = NULL;
    if (json_text_reserve(b, 0)) {
        b->p[b->n] = '\0';
        text = b->p;
        if (len != NULL) {
            *len = b->n;
        }
    } else {
        free(b->p);
    }
    memset(b, 0, sizeof *b);
    return text;
}
