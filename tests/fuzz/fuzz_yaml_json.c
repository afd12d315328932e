/*
 * fuzz_yaml_json: libFuzzer target for yaml_json_load (csc/config). Any
 * input must give either a value or an error message, without crashing,
 * leaking or tripping a sanitizer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ocps/yaml_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    json_t *value = yaml_json_load((const char *)data, size, err, sizeof err);
    if (!value && err[0] == '\0') {
        abort(); /* every failure must explain itself */
    }
    json_decref(value);
    return 0;
}
