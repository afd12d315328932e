/*
 * fuzz_json_schema.c - libFuzzer target for csc/config/json_schema.c.
 *
 * The input is a schema and an instance, separated by the first NUL byte
 * (or, when there is none, the first newline). Both are parsed with
 * jansson, which caps nesting depth itself (2048 levels); the schema is
 * compiled and the instance validated with and without defaults.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "ocps/json_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *load(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    return json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                      &jerr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *sep = memchr(data, '\0', size);
    if (!sep) {
        sep = memchr(data, '\n', size);
    }
    size_t schema_len = sep ? (size_t)(sep - data) : size;
    size_t rest = sep ? size - schema_len - 1 : 0;
    json_t *schema = load(data, schema_len);
    if (!schema) {
        return 0;
    }
    json_schema_error err;
    json_schema *s = json_schema_compile(schema, &err);
    json_decref(schema); /* the compiled schema holds its own reference */
    if (!s) {
        return 0;
    }
    (void)json_schema_title(s);
    json_t *inst = sep ? load(sep + 1, rest) : json_null();
    if (inst) {
        (void)json_schema_validate(s, inst, 0, &err);
        (void)json_schema_validate(s, inst, JSON_SCHEMA_CHECK_FORMATS, &err);
        json_t *copy = json_deep_copy(inst);
        if (copy) {
            (void)json_schema_validate(s, copy, JSON_SCHEMA_APPLY_DEFAULTS, &err);
            /* validating again after defaults were inserted must not crash either */
            (void)json_schema_validate(s, copy, JSON_SCHEMA_APPLY_DEFAULTS, &err);
            json_decref(copy);
        }
        json_decref(inst);
    }
    json_schema_free(s);
    return 0;
}
