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

typedef struct json_text_buf {
    char *p;
    size_t n;
    size_t cap;
    bool failed;
    int indent;
} json_text_buf;

static bool json_text_reserve(json_text_buf *b, size_t more)
{
    if (b->failed) {
        return false;
    }
    if (b->n + more + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 256;
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

static void json_text_string(json_text_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!json_text_reserve(b, len + 2)) {
        return;
    }
    b->p[b->n++] = '"';
    size_t run = 0; /* start of the bytes not copied yet */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        json_text_put(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        json_text_put(b, esc, n);
    }
    json_text_put(b, s + run, len - run);
    json_text_put(b, "\"", 1);
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
            if (i + 1 < n) {
                json_text_put(b, ",", 1);
                json_text_newline(b, depth + 1);
            } else {
                json_text_newline(b, depth);
            }
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
            if (it != NULL) {
                json_text_put(b, ",", 1);
                json_text_newline(b, depth + 1);
            } else {
                json_text_newline(b, depth);
            }
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
    if (v == NULL || !json_text_reserve(&b, 0) || !json_text_value(&b, v, 0) || b.failed) {
        free(b.p);
        return NULL;
    }
    b.p[b.n] = '\0';
    if (len != NULL) {
        *len = b.n;
    }
    return b.p;
}
