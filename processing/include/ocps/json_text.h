/*
 * json_text.h - the JSON text of a jansson value, byte for byte what
 * json_dumps writes with JSON_ENCODE_ANY and either JSON_COMPACT or
 * JSON_INDENT(n) (insertion order of keys, no escaping of '/' nor of
 * non-ASCII), at a fraction of its cost: json_dumps checks for cycles
 * with a hash table made for every call and a "%p" key printed for every
 * array and object; this encoder bounds the depth instead. Used where the
 * engine writes JSON per request (the store's columns, the API's replies).
 */
#ifndef JSON_TEXT_H
#define JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Nesting deeper than this fails (what a cycle would come to). */
#define JSON_TEXT_MAX_DEPTH 2048

/* The text of v, NUL-terminated, malloc'd (free()), its length in *len if
 * len is not NULL: compact (indent 0: "," and ":") or indented by
 * `indent` spaces (1-31) a level, as json_dumps. NULL if v is NULL, out of
 * memory, nested deeper than JSON_TEXT_MAX_DEPTH, or a real json_dumps
 * cannot write either (more than 23 characters). */
char *json_text(const json_t *v, int indent, size_t *len);

/* A text written in parts, for a document whose layout is known (some of
 * it written as it is): start with {0} and the indent, append, then
 * json_text_finish. A failure (out of memory, too deep) is remembered
 * and makes json_text_finish return NULL. */
typedef struct json_text_buf {
    char *p;
    size_t n;
    size_t cap;
    bool failed;
    int indent; /* 0: compact, else spaces a level (at most 31) */
} json_text_buf;

/* Text as it is. */
void json_text_raw(json_text_buf *b, const char *text, size_t len);
/* A JSON string of the bytes s[0..len). */
void json_text_str(json_text_buf *b, const char *s, size_t len);
/* A real as json_dumps writes it. */
void json_text_real_value(json_text_buf *b, double value);
/* A newline and depth levels of indentation (nothing when compact). */
void json_text_indent(json_text_buf *b, int depth);
/* v, nested `depth` levels deep (its inner lines indented from there). */
void json_text_value_at(json_text_buf *b, const json_t *v, int depth);
/* The text (NUL-terminated, malloc'd) and its length, or NULL if a part
 * failed; b is emptied either way. */
char *json_text_finish(json_text_buf *b, size_t *len);

#endif
