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

#endif
