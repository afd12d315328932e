/*
 * fuzz_sal_numbers: libFuzzer target for the number conversions of the SAL
 * runtime (csc/sal/sal_sample.h, sal_json.h, csc/util/sal_time.h). The
 * first 8 bytes of the input are a double stored into a field of every
 * type; the whole input is also text for sal_sample_set_from_text. No value
 * may trip a sanitizer (UBSan's float-cast-overflow catches an out-of-range
 * conversion), and an accepted integer must read back as given.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ocps/sal_json.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_time.h"

typedef struct numbers {
    uint8_t b;
    uint8_t o[2];
    int16_t s[2];
    uint16_t us[2];
    int32_t l[2];
    uint32_t ul[2];
    int64_t ll[2];
    uint64_t ull[2];
    float f[2];
    double d[2];
} numbers;

static const sal_field_info fields[] = {
    {"b", SAL_FIELD_BOOLEAN, 1, 0, offsetof(numbers, b), 0},
    {"o", SAL_FIELD_OCTET, 2, 0, offsetof(numbers, o), 0},
    {"s", SAL_FIELD_SHORT, 2, 0, offsetof(numbers, s), 0},
    {"us", SAL_FIELD_USHORT, 2, 0, offsetof(numbers, us), 0},
    {"l", SAL_FIELD_LONG, 2, 0, offsetof(numbers, l), 0},
    {"ul", SAL_FIELD_ULONG, 2, 0, offsetof(numbers, ul), 0},
    {"ll", SAL_FIELD_LONGLONG, 2, 0, offsetof(numbers, ll), 0},
    {"ull", SAL_FIELD_ULONGLONG, 2, 0, offsetof(numbers, ull), 0},
    {"f", SAL_FIELD_FLOAT, 2, 0, offsetof(numbers, f), 0},
    {"d", SAL_FIELD_DOUBLE, 2, 0, offsetof(numbers, d), 0},
};

static const sal_topic_info topic = {
    .sal_name = "numbers",
    .kind = SAL_TOPIC_TELEMETRY,
    .sample_size = sizeof(numbers),
    .fields = fields,
    .nfields = sizeof fields / sizeof fields[0],
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Store v into every field; an accepted integer must read back as v. */
static void store_everywhere(numbers *n, double v)
{
    char err[256];
    for (size_t i = 0; i < topic.nfields; i++) {
        const sal_field_info *f = &fields[i];
        err[0] = '\0';
        int rc = sal_field_set_number(&topic, f, n, 0, v, err, sizeof err);
        if (rc != 0 && err[0] == '\0') {
            abort(); /* every refusal explains itself */
        }
        bool integer =
            f->type != SAL_FIELD_BOOLEAN && f->type != SAL_FIELD_FLOAT && f->type != SAL_FIELD_DOUBLE;
        if (rc == 0 && integer && sal_field_get_number(f, n, 0) != v) {
            abort(); /* an accepted integer reads back exactly */
        }
    }
    volatile int64_t i64 = sal_double_to_i64(v);
    volatile uint64_t ms = sal_seconds_to_ms(v);
    (void)i64;
    (void)ms;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    numbers n;
    memset(&n, 0, sizeof n);
    char err[256];
    if (size >= 3) {
        /* small multiples of powers of two: the edges (2^63, 2^64 - 2048,
         * -2^63 ...) are reached at once, not by chance over 64 bits */
        int16_t m;
        memcpy(&m, data, sizeof m);
        store_everywhere(&n, ldexp((double)m, data[2] % 80 - 8));
    }
    if (size >= sizeof(double)) {
        double v;
        memcpy(&v, data, sizeof v);
        store_everywhere(&n, v);
    }
    char text[128];
    size_t len = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, len);
    text[len] = '\0';
    for (size_t i = 0; i < topic.nfields; i++) {
        err[0] = '\0';
        if (sal_sample_set_from_text(&topic, &n, fields[i].name, text, err, sizeof err) != 0 &&
            err[0] == '\0') {
            abort();
        }
    }
    json_t *j = sal_sample_to_json(&topic, &n, true);
    char *dump = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_ALLOW_NUL) : NULL;
    free(dump);
    json_decref(j);
    return 0;
}
