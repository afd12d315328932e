/*
 * json_schema__internal.h - what the files of the JSON Schema validator
 * share (not a public header: json_schema.h is). See json_schema.c for the
 * layout.
 */
#ifndef JSON_SCHEMA__INTERNAL_H
#define JSON_SCHEMA__INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include <jansson.h>

#include "ocps/json_schema.h"

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

/* ---- json_schema_values.c ---- */

/* A growable string; after a failed allocation oom is set and it stays
 * as it was (js_ds_str gives ""). */
typedef struct dstr {
    char *p;
    size_t len, cap;
    int oom;
} dstr;

void js_ds_putn(dstr *d, const char *s, size_t n);
void js_ds_puts(dstr *d, const char *s);
void js_ds_putc(dstr *d, char c);
/* Short printf (at most 63 bytes). */
void js_ds_printf(dstr *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *js_ds_str(const dstr *d);
void js_ds_free(dstr *d);
/* Copy src into dst[size], cut at a UTF-8 character boundary. */
void js_copy_trunc(char *dst, size_t size, const char *src);
/* Length of a key obtained from json_object_foreach (keys may hold NULs). */
size_t js_key_len(const char *key);
int js_hexval(int c);
/* Python's repr of the string s[0..n), and of a JSON value (shortened). */
void js_repr_str(dstr *d, const char *s, size_t n);
void js_repr(dstr *d, const json_t *v);
/* Fill err: message from fmt (%s string, %S repr of a string, %r repr of a
 * json_t, %d int), path and keyword. */
void js_set_error(json_schema_error *err, const char *kw, const char *path, const char *fmt, va_list ap);
long double js_num_value(const json_t *v);
int js_is_integral(const json_t *v);
/* JSON Schema equality: numbers by value, objects regardless of order. */
int js_value_equal(const json_t *a, const json_t *b, int depth);
/* Unicode code points of UTF-8 text. */
size_t js_utf8_length(const char *s, size_t n);

/* ---- json_schema_regex.c ---- */

/* An ECMA-262 regular expression compiled with PCRE2. */
typedef struct js_regex js_regex;
/* Compile the ECMA-262 pattern pat[0..n); NULL with why ("... at offset N"
 * in pat) if it is not one (or uses what PCRE2 cannot do). */
js_regex *js_regex_compile(const char *pat, size_t n, char *why, size_t whysz);
/* 1 if the regex matches somewhere in s[0..n), 0 if not, -1 with why if
 * the match could not finish (a match, depth or heap limit was reached). */
int js_regex_search(const js_regex *re, const char *s, size_t n, char *why, size_t whysz);
void js_regex_free(js_regex *re);

/* ---- json_schema_format.c ---- */

/* 1 if the string conforms to the format (or the format is unknown). */
int js_format_ok(const char *format, const json_t *str);

/* ---- json_schema.c: compiled schemas ---- */

typedef struct pattern_prop {
    js_regex *re;
    const char *key; /* the pattern */
    json_t *schema;
} pattern_prop;

typedef struct node {
    json_t *schema;
    char *base;  /* base URI in effect */
    char *where; /* JSON pointer in the schema document, for messages */
    const char *ref;
    json_t *ref_target;
    js_regex *pattern; /* "pattern", compiled */
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

/* The compiled node of a schema object, NULL if it has none. */
node *js_lookup(const json_schema *s, const json_t *schema);

#endif
