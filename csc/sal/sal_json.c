/* sal_json.c - see sal_json.h. */
#include "ocps/sal_json.h"

#include <stdint.h>
#include <string.h>

#include "ocps/sal_sample.h"

static json_t *element(const sal_topic_info *topic, const sal_field_info *f, const void *sample, size_t i)
{
    double v = sal_sample_get_number(topic, sample, f->name, i);
    const char *at = (const char *)sample + f->offset + i * sizeof(int64_t);
    int64_t s;
    uint64_t u;
    switch (f->type) {
    case SAL_FIELD_LONGLONG: /* exactly, not through a double */
        memcpy(&s, at, sizeof s);
        return json_integer((json_int_t)s);
    case SAL_FIELD_ULONGLONG: /* JSON integers here are int64: larger ones as reals */
        memcpy(&u, at, sizeof u);
        return u <= (uint64_t)INT64_MAX ? json_integer((json_int_t)u) : json_real((double)u);
    case SAL_FIELD_BOOLEAN:
        return json_boolean(v != 0);
    case SAL_FIELD_FLOAT:
    case SAL_FIELD_DOUBLE:
        return json_real(v);
    case SAL_FIELD_STRING:
        return json_string(sal_sample_get_string(topic, sample, f->name));
    default:
        return json_integer((json_int_t)v);
    }
}

json_t *sal_sample_to_json(const sal_topic_info *topic, const void *sample, bool with_private)
{
    json_t *obj = json_object();
    if (obj == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < topic->nfields; i++) {
        const sal_field_info *f = &topic->fields[i];
        if ((f->flags & SAL_FIELD_PRIVATE) && !with_private) {
            continue;
        }
        json_t *value;
        if (f->count > 1) {
            value = json_array();
            for (size_t k = 0; k < f->count && value != NULL; k++) {
                json_array_append_new(value, element(topic, f, sample, k));
            }
        } else {
            value = element(topic, f, sample, 0);
        }
        if (value == NULL) {
            /* strings that are not UTF-8 cannot be JSON strings */
            value = json_null();
        }
        json_object_set_new(obj, f->name, value);
    }
    return obj;
}
