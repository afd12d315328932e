/*
 * json_schema.h - JSON Schema draft-7 validation over jansson.
 *
 * Scope: the validation vocabulary of draft 7 (boolean schemas, type, enum,
 * const, the numeric, string, array and object keywords, dependencies,
 * propertyNames, if/then/else, allOf/anyOf/oneOf/not, definitions) and
 * $ref within one document: "#", JSON pointers ("#/definitions/x", with ~0,
 * ~1 and percent-encoding) and "$id"-based base URI changes inside the
 * document. Remote references are rejected at compile time ("remote $ref
 * not supported: <uri>"). "pattern" and "patternProperties" take ECMA-262
 * regular expressions with Unicode semantics, matched with PCRE2 under
 * match limits: a pattern that is not ECMA-262 is rejected at compile time,
 * one that backtracks without end fails validation. "format" is an
 * annotation, not checked, as in salobj (jsonschema's Draft7Validator without
 * a format_checker); with JSON_SCHEMA_CHECK_FORMATS the formats uri,
 * uri-reference, date-time, date, time, email, ipv4, ipv6, hostname,
 * json-pointer and regex are checked (other formats are still ignored, as
 * draft 7 allows). Error messages read like Python jsonschema's. "default"
 * is only used with JSON_SCHEMA_APPLY_DEFAULTS.
 *
 * Keywords of one schema are checked in a fixed order (type, enum, const,
 * number, string, array, object keywords with additionalProperties before
 * required, then the applicators), so the first error reported is
 * deterministic whatever the key order of the schema document.
 */
#ifndef JSON_SCHEMA_H
#define JSON_SCHEMA_H

#include <jansson.h>

typedef struct json_schema json_schema;

#define JSON_SCHEMA_APPLY_DEFAULTS 1u
/* Assert "format" (jsonschema's FormatChecker); without it, as in salobj,
 * "format" is only an annotation. */
#define JSON_SCHEMA_CHECK_FORMATS 2u

typedef struct json_schema_error {
    char message[512]; /* jsonschema-like text, e.g. "'sal_index' is a required property" */
    char path[256];    /* JSON pointer of the offending instance value, "" for the root */
    char keyword[32];  /* the failing keyword, e.g. "additionalProperties" */
} json_schema_error;

/* Compile a draft-7 schema (the object is json_incref'd, not copied). NULL
 * with err->message on an invalid schema (e.g. a bad regex, an unresolvable
 * $ref, wrong keyword types); err->path is then the JSON pointer of the bad
 * place in the schema. err may be NULL. */
json_schema *json_schema_compile(json_t *schema, json_schema_error *err);

/* Validate; 0 if valid, -1 with err filled for the first error found
 * (deterministic order). With JSON_SCHEMA_APPLY_DEFAULTS, before checking an
 * object against "properties", insert a deep copy of each property
 * subschema's "default" for keys missing from the object (recursively, so
 * nested defaults apply too), then validate. err may be NULL. */
int json_schema_validate(const json_schema *s, json_t *instance, unsigned flags, json_schema_error *err);

/* Validate as json_schema_validate, the string values listed in timestamps
 * (a JSON array, compared by identity: the YAML timestamps that
 * yaml_json_load_*_timestamps collected) being dates, not strings, as
 * salobj's PyYAML reads them: they are of no JSON type (every "type"
 * fails, with a message saying to quote them), equal to no "enum" or
 * "const" value, and the string keywords skip them. NULL: none. */
int json_schema_validate_timestamps(const json_schema *s, json_t *instance, unsigned flags,
                                    const json_t *timestamps, json_schema_error *err);

/* Release a compiled schema (and its reference to the schema document).
 * NULL is allowed. */
void json_schema_free(json_schema *s);

/* The schema's "title" (NULL if none). */
const char *json_schema_title(const json_schema *s);

#endif
