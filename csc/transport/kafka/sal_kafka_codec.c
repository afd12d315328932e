/* sal_kafka_codec.c - salobj 8 framing, Avro binary, keys; see sal_kafka_codec.h. */
#include "sal_kafka_codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <jansson.h>

#include "ocps/sal_sample.h"
#include "ocps/sal_utf8.h"

/* ---- buffer ---- */

void sal_kafka_buf_fini(sal_kafka_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int buf_reserve(sal_kafka_buf *b, size_t n)
{
    if (b->len + n <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) {
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_put(sal_kafka_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0) {
        return -ENOMEM;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    return 0;
}

/* Avro long/int: zig-zag, then base-128 varint, low group first. */
static int put_varint(sal_kafka_buf *b, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = z & 0x7f;
        z >>= 7;
        tmp[n++] = byte | (z ? 0x80 : 0);
    } while (z);
    return buf_put(b, tmp, n);
}

static int put_le(sal_kafka_buf *b, uint64_t bits, size_t n)
{
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) {
        tmp[i] = (uint8_t)(bits >> (8 * i));
    }
    return buf_put(b, tmp, n);
}

static int put_float(sal_kafka_buf *b, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return put_le(b, bits, 4);
}

static int put_double(sal_kafka_buf *b, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return put_le(b, bits, 8);
}

static int put_string(sal_kafka_buf *b, const char *s, size_t n)
{
    int rc = put_varint(b, (int64_t)n);
    return rc ? rc : buf_put(b, s, n);
}

/* ---- schema → encoder plan ---- */

static int avro_type_parse(const char *name, sal_kafka_avro_type *type)
{
    static const struct {
        const char *name;
        sal_kafka_avro_type type;
    } map[] = {
        {"null", SAL_KAFKA_AVRO_NULL},     {"boolean", SAL_KAFKA_AVRO_BOOLEAN},
        {"int", SAL_KAFKA_AVRO_INT},       {"long", SAL_KAFKA_AVRO_LONG},
        {"float", SAL_KAFKA_AVRO_FLOAT},   {"double", SAL_KAFKA_AVRO_DOUBLE},
        {"string", SAL_KAFKA_AVRO_STRING},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(map[i].name, name) == 0) {
            *type = map[i].type;
            return 0;
        }
    }
    return -EINVAL;
}

/* A union of null and a primitive type T, either order: its branches. */
static int null_union_parse(json_t *type, sal_kafka_avro_type *t, int *null_branch, int *value_branch)
{
    *null_branch = *value_branch = -1;
    if (!json_is_array(type) || json_array_size(type) != 2) {
        return -EINVAL;
    }
    for (int i = 0; i < 2; i++) {
        const char *name = json_string_value(json_array_get(type, (size_t)i));
        if (name != NULL && strcmp(name, "null") == 0) {
            *null_branch = i;
        } else if (name != NULL && avro_type_parse(name, t) == 0) {
            *value_branch = i;
        }
    }
    return *null_branch >= 0 && *value_branch >= 0 ? 0 : -EINVAL;
}

/* A field type: "T", {"type": "array", "items": "T" or a null union},
 * or a null union of either. */
static int field_type_parse(json_t *type, sal_kafka_enc_field *f, bool in_union)
{
    if (json_is_string(type)) {
        return avro_type_parse(json_string_value(type), &f->type);
    }
    if (json_is_object(type)) {
        const char *kind = json_string_value(json_object_get(type, "type"));
        json_t *items = json_object_get(type, "items");
        if (kind == NULL || strcmp(kind, "array") != 0) {
            return -EINVAL;
        }
        f->array = true;
        if (json_is_array(items)) {
            return null_union_parse(items, &f->type, &f->item_null, &f->item_value);
        }
        return json_is_string(items) ? avro_type_parse(json_string_value(items), &f->type) : -EINVAL;
    }
    if (json_is_array(type) && !in_union && json_array_size(type) == 2) {
        for (int i = 0; i < 2; i++) {
            json_t *branch = json_array_get(type, (size_t)i);
            if (json_is_string(branch) && strcmp(json_string_value(branch), "null") == 0) {
                f->union_null = i;
            } else {
                f->union_value = i;
                if (field_type_parse(branch, f, true) != 0) {
                    return -EINVAL;
                }
            }
        }
        return f->union_null >= 0 && f->union_value >= 0 ? 0 : -EINVAL;
    }
    return -EINVAL;
}

static void field_source(sal_kafka_enc_field *f, const sal_topic_info *topic, const char *name)
{
    f->field = sal_topic_field(topic, name);
    if (f->field != NULL && sal_field_is_identity(topic, f->field)) {
        f->source = SAL_KAFKA_SRC_IDENTITY;
    } else if (f->field != NULL) {
        f->source = SAL_KAFKA_SRC_SAMPLE;
    } else if (strcmp(name, "private_efdStamp") == 0) {
        f->source = SAL_KAFKA_SRC_EFD;
    } else if (strcmp(name, "private_kafkaStamp") == 0) {
        f->source = SAL_KAFKA_SRC_KAFKA;
    } else {
        f->source = SAL_KAFKA_SRC_DEFAULT;
    }
}

static int plan_fields(sal_kafka_codec *c, json_t *fields, char *err, size_t errlen)
{
    c->nfields = json_array_size(fields);
    c->fields = calloc(c->nfields ? c->nfields : 1, sizeof *c->fields);
    if (c->fields == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < c->nfields; i++) {
        json_t *jf = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(jf, "name"));
        sal_kafka_enc_field *f = &c->fields[i];
        f->union_null = f->union_value = f->item_null = f->item_value = -1;
        json_t *def = json_object_get(jf, "default");
        f->default_null = def == NULL || json_is_null(def);
        if (name == NULL || field_type_parse(json_object_get(jf, "type"), f, false) != 0) {
            snprintf(err, errlen, "%s: Avro field %zu (%s) has a type the Kafka transport cannot write",
                     c->topic->sal_name, i, name ? name : "?");
            return -EINVAL;
        }
        field_source(f, c->topic, name);
        if ((f->source == SAL_KAFKA_SRC_SAMPLE || f->source == SAL_KAFKA_SRC_IDENTITY) &&
            (f->field->type == SAL_FIELD_STRING) != (f->type == SAL_KAFKA_AVRO_STRING)) {
            snprintf(err, errlen, "%s: field %s is a %s in the sample but %s in the Avro schema",
                     c->topic->sal_name, name, sal_field_type_name(f->field->type),
                     f->type == SAL_KAFKA_AVRO_STRING ? "a string" : "a number");
            return -EINVAL;
        }
    }
    return 0;
}

int sal_kafka_codec_init(sal_kafka_codec *c, const sal_topic_info *topic, const char *schema_json, char *err,
                         size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->topic = topic;
    if (schema_json == NULL) {
        snprintf(err, errlen, "%s has no Avro schema", topic->sal_name);
        return -EINVAL;
    }
    json_error_t jerr;
    json_t *root = json_loads(schema_json, 0, &jerr);
    json_t *fields = json_object_get(root, "fields");
    int rc;
    if (!json_is_array(fields)) {
        snprintf(err, errlen, "%s: the Avro schema is not a record: %s", topic->sal_name,
                 root ? "no fields" : jerr.text);
        rc = -EINVAL;
    } else {
        rc = plan_fields(c, fields, err, errlen);
    }
    json_decref(root);
    if (rc != 0) {
        sal_kafka_codec_fini(c);
        return rc;
    }
    c->snd_stamp = sal_topic_field(topic, "private_sndStamp");
    return 0;
}

void sal_kafka_codec_fini(sal_kafka_codec *c)
{
    free(c->fields);
    c->fields = NULL;
    c->nfields = 0;
}

/* ---- encoding ---- */

/* Element i of a numeric field as int64 and double. */
static void field_get(const sal_field_info *f, const void *sample, size_t i, int64_t *iv, double *dv)
{
    const char *p = (const char *)sample + f->offset;
    *iv = 0;
    switch (f->type) {
    case SAL_FIELD_BOOLEAN:
        *iv = ((const bool *)p)[i];
        break;
    case SAL_FIELD_OCTET:
        *iv = ((const uint8_t *)p)[i];
        break;
    case SAL_FIELD_SHORT:
        *iv = ((const int16_t *)p)[i];
        break;
    case SAL_FIELD_USHORT:
        *iv = ((const uint16_t *)p)[i];
        break;
    case SAL_FIELD_LONG:
        *iv = ((const int32_t *)p)[i];
        break;
    case SAL_FIELD_ULONG:
        *iv = ((const uint32_t *)p)[i];
        break;
    case SAL_FIELD_LONGLONG:
        *iv = ((const int64_t *)p)[i];
        break;
    case SAL_FIELD_ULONGLONG:
        *iv = (int64_t)((const uint64_t *)p)[i];
        break;
    case SAL_FIELD_FLOAT:
        *dv = ((const float *)p)[i];
        *iv = sal_double_to_i64(*dv); /* NaN, inf and 1e300 are valid floats */
        return;
    case SAL_FIELD_DOUBLE:
        *dv = ((const double *)p)[i];
        *iv = sal_double_to_i64(*dv);
        return;
    case SAL_FIELD_STRING:
        *iv = 0;
        break;
    }
    *dv = (double)*iv;
}

static const char *field_string(const sal_field_info *f, const void *sample, size_t *len)
{
    const char *p = (const char *)sample + f->offset;
    const char *s = f->bound > 0 ? p : *(char *const *)p;
    if (s == NULL) {
        s = "";
    }
    *len = f->bound > 0 ? strnlen(s, f->bound) : strlen(s);
    return s;
}

static int put_scalar(sal_kafka_buf *b, sal_kafka_avro_type type, int64_t iv, double dv)
{
    switch (type) {
    case SAL_KAFKA_AVRO_NULL:
        return 0;
    case SAL_KAFKA_AVRO_BOOLEAN:
        return buf_put(b, &(uint8_t){iv != 0}, 1);
    case SAL_KAFKA_AVRO_INT:
        return put_varint(b, (int32_t)iv);
    case SAL_KAFKA_AVRO_LONG:
        return put_varint(b, iv);
    case SAL_KAFKA_AVRO_FLOAT:
        return put_float(b, (float)dv);
    case SAL_KAFKA_AVRO_DOUBLE:
        return put_double(b, dv);
    case SAL_KAFKA_AVRO_STRING:
        return put_string(b, "", 0);
    }
    return -EINVAL;
}

/* Element i of a field that comes from the sample. */
static int put_element(sal_kafka_buf *b, const sal_kafka_enc_field *f, const void *sample, size_t i)
{
    if (f->type == SAL_KAFKA_AVRO_STRING) {
        size_t n;
        const char *s = field_string(f->field, sample, &n);
        return put_string(b, s, n);
    }
    int64_t iv;
    double dv;
    field_get(f->field, sample, i, &iv, &dv);
    return put_scalar(b, f->type, iv, dv);
}

static int put_sample_field(sal_kafka_buf *b, const sal_kafka_enc_field *f, const void *sample)
{
    size_t count = f->field->type == SAL_FIELD_STRING ? 1 : f->field->count;
    if (!f->array) {
        return put_element(b, f, sample, 0);
    }
    int rc = put_varint(b, (int64_t)count);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (f->item_value >= 0) {
            rc = put_varint(b, f->item_value);
        }
        rc = rc ? rc : put_element(b, f, sample, i);
    }
    return rc ? rc : put_varint(b, 0);
}

static double snd_stamp(const sal_kafka_codec *c, const void *sample)
{
    double v = 0.0;
    if (c->snd_stamp != NULL) {
        memcpy(&v, (const char *)sample + c->snd_stamp->offset, sizeof v);
    }
    return v;
}

static int put_field(sal_kafka_buf *b, const sal_kafka_codec *c, const sal_kafka_enc_field *f,
                     const void *sample, const sal_clock *clock)
{
    if (f->union_value >= 0) {
        /* a field the sample lacks takes the schema's default: null, or
         * the value branch's zero (ts_xml 20.1/20.2: ["double", "null"]
         * with default 0.0) */
        int branch = f->source == SAL_KAFKA_SRC_DEFAULT && f->default_null ? f->union_null : f->union_value;
        int rc = put_varint(b, branch);
        if (rc != 0 || branch == f->union_null) {
            return rc;
        }
    }
    double tai;
    switch (f->source) {
    case SAL_KAFKA_SRC_SAMPLE:
        return put_sample_field(b, f, sample);
    case SAL_KAFKA_SRC_IDENTITY: {
        const char *id = sal_sample_identity(c->topic, sample);
        return put_string(b, id, strlen(id));
    }
    case SAL_KAFKA_SRC_EFD:
        tai = snd_stamp(c, sample);
        return put_scalar(b, f->type, 0, tai != 0.0 ? sal_clock_utc_from_tai(clock, tai) : 0.0);
    case SAL_KAFKA_SRC_KAFKA:
        return put_scalar(b, f->type, 0, snd_stamp(c, sample));
    case SAL_KAFKA_SRC_DEFAULT:
        return f->array ? put_varint(b, 0) : put_scalar(b, f->type, 0, 0.0);
    }
    return -EINVAL;
}

int sal_kafka_encode(const sal_kafka_codec *c, int32_t schema_id, const void *sample, const sal_clock *clock,
                     sal_kafka_buf *out, char *err, size_t errlen)
{
    out->len = 0;
    uint8_t prefix[SAL_KAFKA_PREFIX_LEN] = {SAL_KAFKA_MAGIC, (uint8_t)((uint32_t)schema_id >> 24),
                                            (uint8_t)((uint32_t)schema_id >> 16),
                                            (uint8_t)((uint32_t)schema_id >> 8), (uint8_t)schema_id};
    int rc = buf_put(out, prefix, sizeof prefix);
    for (size_t i = 0; rc == 0 && i < c->nfields; i++) {
        rc = put_field(out, c, &c->fields[i], sample, clock);
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot encode: out of memory", c->topic->sal_name);
    }
    return rc;
}

int sal_kafka_frame_parse(const void *msg, size_t len, int32_t *schema_id, const uint8_t **body,
                          size_t *bodylen, char *err, size_t errlen)
{
    const uint8_t *p = msg;
    if (p == NULL || len <= SAL_KAFKA_PREFIX_LEN || p[0] != SAL_KAFKA_MAGIC) {
        snprintf(err, errlen, "not a Confluent Avro message (%zu bytes%s)", len,
                 p != NULL && len > 0 && p[0] != SAL_KAFKA_MAGIC ? ", bad magic byte" : "");
        return -EBADMSG;
    }
    *schema_id = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
    *body = p + SAL_KAFKA_PREFIX_LEN;
    *bodylen = len - SAL_KAFKA_PREFIX_LEN;
    return 0;
}

/* ---- checking a body before avro-c reads it ----
 *
 * avro-c 1.11 trusts the lengths in a message: a string or bytes length is
 * allocated before the bytes are read (a negative or huge length from the
 * network asks for up to 2^63 bytes), the allocation leaks when the message
 * ends early, and an array of zero-size items (null, an empty record) may
 * claim 2^62 of them. So every message is first walked against the
 * writer's schema here: lengths must fit what is left of the message,
 * union and enum indices must exist, array and map items are limited to
 * what the message could hold, nesting to BODY_MAX_DEPTH. A message that
 * passes can be read by avro-c without a short read. */

#define BODY_MAX_DEPTH 32
#define BODY_ZERO_SIZE_ITEMS 4096 /* items of zero bytes a message may hold */

typedef struct body_cursor {
    const uint8_t *p;
    const uint8_t *end;
    size_t budget; /* array and map items left */
} body_cursor;

static int body_varint(body_cursor *c, int64_t *v)
{
    uint64_t z = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (c->p == c->end) {
            return -1;
        }
        uint8_t byte = *c->p++;
        z |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *v = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

static int body_skip(body_cursor *c, int64_t n)
{
    if (n < 0 || (uint64_t)n > (uint64_t)(c->end - c->p)) {
        return -1;
    }
    c->p += n;
    return 0;
}

static int body_check(avro_schema_t s, body_cursor *c, int depth);

/* The blocks of an array (items) or a map (values, each after a key). */
static int body_blocks(avro_schema_t items, bool map, body_cursor *c, int depth)
{
    for (;;) {
        int64_t count;
        if (body_varint(c, &count) != 0) {
            return -1;
        }
        if (count == 0) {
            return 0;
        }
        if (count < 0) {
            int64_t bytes;
            if (count == INT64_MIN || body_varint(c, &bytes) != 0 || bytes < 0) {
                return -1;
            }
            count = -count;
        }
        if ((uint64_t)count > c->budget) {
            return -1;
        }
        c->budget -= (size_t)count;
        for (int64_t i = 0; i < count; i++) {
            int64_t keylen;
            if (map && (body_varint(c, &keylen) != 0 || body_skip(c, keylen) != 0)) {
                return -1;
            }
            if (body_check(items, c, depth + 1) != 0) {
                return -1;
            }
        }
    }
}

static int body_check(avro_schema_t s, body_cursor *c, int depth)
{
    int64_t v;
    if (s == NULL || depth > BODY_MAX_DEPTH) {
        return -1;
    }
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        return body_skip(c, 1);
    case AVRO_INT32:
    case AVRO_INT64:
        return body_varint(c, &v);
    case AVRO_FLOAT:
        return body_skip(c, 4);
    case AVRO_DOUBLE:
        return body_skip(c, 8);
    case AVRO_STRING:
    case AVRO_BYTES:
        return body_varint(c, &v) != 0 ? -1 : body_skip(c, v);
    case AVRO_FIXED:
        return body_skip(c, avro_schema_fixed_size(s));
    case AVRO_ENUM:
        return body_varint(c, &v) != 0 || v < 0 || v >= avro_schema_enum_number_of_symbols(s) ? -1 : 0;
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
            if (body_check(avro_schema_record_field_get_by_index(s, (int)i), c, depth + 1) != 0) {
                return -1;
            }
        }
        return 0;
    case AVRO_ARRAY:
        return body_blocks(avro_schema_array_items(s), false, c, depth);
    case AVRO_MAP:
        return body_blocks(avro_schema_map_values(s), true, c, depth);
    case AVRO_UNION:
        if (body_varint(c, &v) != 0 || v < 0 || (uint64_t)v >= avro_schema_union_size(s)) {
            return -1;
        }
        return body_check(avro_schema_union_branch(s, (int)v), c, depth + 1);
    case AVRO_LINK:
        return body_check(avro_schema_link_target(s), c, depth + 1);
    }
    return -1;
}

/* 0 when avro-c can read body with the writer's schema without running
 * out of bytes or allocating more than the message could hold. */
static int body_valid(avro_schema_t schema, const uint8_t *body, size_t len)
{
    body_cursor c = {body, body + len, len + BODY_ZERO_SIZE_ITEMS};
    return body_check(schema, &c, 0);
}

/* avro-c builds a value of a writer's schema recursively, so a record that
 * contains itself (a named type used inside its own definition) overflows
 * the stack even before a message is read, and deep nesting costs stack
 * too. salobj's schemas are flat records: a writer schema that refers to a
 * named type by name (avro-c's links) or nests more than BODY_MAX_DEPTH
 * levels is refused. */
static bool schema_acceptable(avro_schema_t s, int depth)
{
    if (s == NULL || depth > BODY_MAX_DEPTH) {
        return false;
    }
    switch (avro_typeof(s)) {
    case AVRO_LINK:
        return false;
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
            if (!schema_acceptable(avro_schema_record_field_get_by_index(s, (int)i), depth + 1)) {
                return false;
            }
        }
        return true;
    case AVRO_ARRAY:
        return schema_acceptable(avro_schema_array_items(s), depth + 1);
    case AVRO_MAP:
        return schema_acceptable(avro_schema_map_values(s), depth + 1);
    case AVRO_UNION:
        for (size_t i = 0; i < avro_schema_union_size(s); i++) {
            if (!schema_acceptable(avro_schema_union_branch(s, (int)i), depth + 1)) {
                return false;
            }
        }
        return true;
    default:
        return true;
    }
}

/* avro-c 1.11 leaks the part of a schema it has built when a named type is
 * defined again inside itself ({"name":"a", ... {"type":"record","name":"a"}}),
 * once per schema. Such a schema is refused before avro-c parses it: no
 * record, enum or fixed name may be defined twice. Names are compared by
 * their last dotted component, because avro-c resolves ".a", "ns.a" and "a"
 * in namespace "ns" in ways this check must not guess; SAL schemas define
 * one record and no other named type, so nothing real is refused. */
static const char *short_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot != NULL ? dot + 1 : name;
}

static bool names_defined_once(json_t *j, json_t *seen)
{
    if (json_is_array(j)) {
        size_t i;
        json_t *item;
        json_array_foreach(j, i, item)
        {
            if (!names_defined_once(item, seen)) {
                return false;
            }
        }
        return true;
    }
    if (!json_is_object(j)) {
        return true;
    }
    const char *type = json_string_value(json_object_get(j, "type"));
    const char *name = json_string_value(json_object_get(j, "name"));
    if (type != NULL && name != NULL &&
        (strcmp(type, "record") == 0 || strcmp(type, "enum") == 0 || strcmp(type, "fixed") == 0)) {
        name = short_name(name);
        if (json_object_get(seen, name) != NULL) {
            return false;
        }
        json_object_set_new(seen, name, json_true());
    }
    const char *key;
    json_t *value;
    json_object_foreach(j, key, value)
    {
        if (!names_defined_once(value, seen)) {
            return false;
        }
    }
    return true;
}

static bool schema_names_ok(const char *text, size_t len)
{
    json_t *root = json_loadb(text, len, 0, NULL);
    json_t *seen = json_object();
    bool ok = root == NULL || (seen != NULL && names_defined_once(root, seen)); /* avro-c reports bad JSON */
    json_decref(seen);
    json_decref(root);
    return ok;
}

/* ---- decoding ---- */

struct sal_kafka_decoder {
    const sal_topic_info *topic;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    avro_reader_t reader;
    const sal_field_info **map; /* by writer field index; NULL = skip */
    size_t nfields;
};

void sal_kafka_decoder_free(sal_kafka_decoder *d)
{
    if (d == NULL) {
        return;
    }
    if (d->iface != NULL) {
        avro_value_decref(&d->value);
        avro_value_iface_decref(d->iface);
    }
    if (d->reader != NULL) {
        avro_reader_free(d->reader);
    }
    if (d->schema != NULL) {
        avro_schema_decref(d->schema);
    }
    free(d->map);
    free(d);
}

static int decoder_map_fields(sal_kafka_decoder *d, char *err, size_t errlen)
{
    d->nfields = avro_schema_record_size(d->schema);
    d->map = calloc(d->nfields ? d->nfields : 1, sizeof *d->map);
    if (d->map == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->nfields; i++) {
        const char *name = avro_schema_record_field_name(d->schema, (int)i);
        d->map[i] = name ? sal_topic_field(d->topic, name) : NULL;
    }
    return 0;
}

int sal_kafka_decoder_new(sal_kafka_decoder **out, const sal_topic_info *topic, const char *writer_schema,
                          size_t len, char *err, size_t errlen)
{
    *out = NULL;
    sal_kafka_decoder *d = calloc(1, sizeof *d);
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->topic = topic;
    if (!schema_names_ok(writer_schema, len)) {
        snprintf(err, errlen, "%s: writer schema defines a named type twice", topic->sal_name);
        sal_kafka_decoder_free(d);
        return -EINVAL;
    }
    if (avro_schema_from_json_length(writer_schema, len, &d->schema) != 0) {
        snprintf(err, errlen, "%s: writer schema rejected by avro-c: %s", topic->sal_name, avro_strerror());
        d->schema = NULL;
        sal_kafka_decoder_free(d);
        return -EINVAL;
    }
    if (!is_avro_record(d->schema)) {
        snprintf(err, errlen, "%s: writer schema is not a record", topic->sal_name);
        sal_kafka_decoder_free(d);
        return -EINVAL;
    }
    if (!schema_acceptable(d->schema, 0)) {
        snprintf(err, errlen, "%s: writer schema is recursive or nested more than %d levels", topic->sal_name,
                 BODY_MAX_DEPTH);
        sal_kafka_decoder_free(d);
        return -EINVAL;
    }
    d->iface = avro_generic_class_from_schema(d->schema);
    if (d->iface == NULL || avro_generic_value_new(d->iface, &d->value) != 0) {
        snprintf(err, errlen, "%s: avro-c: %s", topic->sal_name, avro_strerror());
        if (d->iface != NULL) {
            avro_value_iface_decref(d->iface);
            d->iface = NULL;
        }
        sal_kafka_decoder_free(d);
        return -EINVAL;
    }
    d->reader = avro_reader_memory(NULL, 0);
    int rc = d->reader == NULL ? -ENOMEM : decoder_map_fields(d, err, errlen);
    if (rc != 0) {
        if (d->reader == NULL) {
            snprintf(err, errlen, "out of memory");
        }
        sal_kafka_decoder_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* Element i of a numeric field from an int64 or a double. */
static void field_set(const sal_field_info *f, void *sample, size_t i, bool is_int, int64_t iv, double dv)
{
    char *p = (char *)sample + f->offset;
    if (!is_int) {
        iv = sal_double_to_i64(dv); /* a writer's double for our integer field */
    } else {
        dv = (double)iv;
    }
    switch (f->type) {
    case SAL_FIELD_BOOLEAN:
        ((bool *)p)[i] = is_int ? iv != 0 : dv != 0.0;
        break;
    case SAL_FIELD_OCTET:
        ((uint8_t *)p)[i] = (uint8_t)iv;
        break;
    case SAL_FIELD_SHORT:
        ((int16_t *)p)[i] = (int16_t)iv;
        break;
    case SAL_FIELD_USHORT:
        ((uint16_t *)p)[i] = (uint16_t)iv;
        break;
    case SAL_FIELD_LONG:
        ((int32_t *)p)[i] = (int32_t)iv;
        break;
    case SAL_FIELD_ULONG:
        ((uint32_t *)p)[i] = (uint32_t)iv;
        break;
    case SAL_FIELD_LONGLONG:
        ((int64_t *)p)[i] = iv;
        break;
    case SAL_FIELD_ULONGLONG:
        ((uint64_t *)p)[i] = (uint64_t)iv;
        break;
    case SAL_FIELD_FLOAT:
        ((float *)p)[i] = (float)dv;
        break;
    case SAL_FIELD_DOUBLE:
        ((double *)p)[i] = dv;
        break;
    case SAL_FIELD_STRING:
        break;
    }
}

/* Copy a string into a field; a bounded field keeps at most `bound`
 * bytes, cut at a UTF-8 character boundary. private_identity is kept
 * whole (sal_sample_set_identity), beside the struct's string<128>. */
static int string_set(const sal_topic_info *t, const sal_field_info *f, void *sample, const char *s, size_t n)
{
    char *p = (char *)sample + f->offset;
    if (sal_field_is_identity(t, f)) {
        sal_sample_set_identity(t, sample, s, n);
        return 0;
    }
    if (f->bound > 0) {
        if (n > f->bound) {
            n = sal_utf8_cut(s, f->bound);
        }
        memcpy(p, s, n);
        p[n] = '\0';
        return 0;
    }
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        return -ENOMEM;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    free(*(char **)p);
    *(char **)p = copy;
    return 0;
}

static int store_scalar(const sal_topic_info *t, avro_value_t *v, const sal_field_info *f, void *sample,
                        size_t i)
{
    int32_t i32;
    int64_t i64;
    float fl;
    double db;
    int bo;
    const char *s;
    size_t size;
    bool is_string = f->type == SAL_FIELD_STRING;
    /* A getter the value's class lacks returns EINVAL and stores nothing. */
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        if (avro_value_get_boolean(v, &bo) != 0) {
            return -EINVAL;
        }
        i64 = bo;
        break;
    case AVRO_INT32:
        if (avro_value_get_int(v, &i32) != 0) {
            return -EINVAL;
        }
        i64 = i32;
        break;
    case AVRO_INT64:
        if (avro_value_get_long(v, &i64) != 0) {
            return -EINVAL;
        }
        break;
    case AVRO_FLOAT:
        if (is_string || avro_value_get_float(v, &fl) != 0) {
            return -EINVAL;
        }
        field_set(f, sample, i, false, 0, fl);
        return 0;
    case AVRO_DOUBLE:
        if (is_string || avro_value_get_double(v, &db) != 0) {
            return -EINVAL;
        }
        field_set(f, sample, i, false, 0, db);
        return 0;
    case AVRO_STRING:
        if (!is_string || avro_value_get_string(v, &s, &size) != 0) { /* size counts the NUL */
            return -EINVAL;
        }
        return string_set(t, f, sample, s, size > 0 ? size - 1 : 0);
    default:
        return -EINVAL;
    }
    if (is_string) {
        return -EINVAL;
    }
    field_set(f, sample, i, true, i64, 0.0);
    return 0;
}

static int store_value(const sal_topic_info *t, avro_value_t *v, const sal_field_info *f, void *sample)
{
    avro_value_t branch;
    if (avro_value_get_type(v) == AVRO_UNION) {
        if (avro_value_get_current_branch(v, &branch) != 0) {
            return -EINVAL;
        }
        v = &branch;
    }
    if (avro_value_get_type(v) != AVRO_ARRAY) {
        return store_scalar(t, v, f, sample, 0);
    }
    size_t n;
    if (avro_value_get_size(v, &n) != 0) {
        return -EINVAL;
    }
    size_t count = f->type == SAL_FIELD_STRING ? 1 : f->count;
    for (size_t i = 0; i < n && i < count; i++) {
        avro_value_t elem, elem_branch;
        avro_value_t *e = &elem;
        int rc = avro_value_get_by_index(v, i, &elem, NULL);
        if (rc == 0 && avro_value_get_type(&elem) == AVRO_UNION) { /* ["float", "null"] items */
            rc = avro_value_get_current_branch(&elem, &elem_branch);
            e = &elem_branch;
        }
        if (rc == 0) {
            rc = store_scalar(t, e, f, sample, i);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int sal_kafka_decode(sal_kafka_decoder *d, const uint8_t *body, size_t len, void **sample, char *err,
                     size_t errlen)
{
    *sample = NULL;
    if (body_valid(d->schema, body, len) != 0) {
        snprintf(err, errlen, "%s: cannot decode %zu bytes: not an Avro record of the writer's schema",
                 d->topic->sal_name, len);
        return -EBADMSG;
    }
    avro_value_reset(&d->value);
    avro_reader_memory_set_source(d->reader, (const char *)body, (int64_t)len);
    if (avro_value_read(d->reader, &d->value) != 0) {
        snprintf(err, errlen, "%s: cannot decode %zu bytes: %s", d->topic->sal_name, len, avro_strerror());
        return -EBADMSG;
    }
    void *s = sal_sample_new(d->topic);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->nfields; i++) {
        avro_value_t fv;
        if (d->map[i] == NULL) {
            continue;
        }
        int rc = avro_value_get_by_index(&d->value, i, &fv, NULL);
        if (rc == 0) {
            rc = store_value(d->topic, &fv, d->map[i], s);
        }
        if (rc != 0) {
            snprintf(err, errlen, "%s: field %s: the writer's type does not fit the %s field",
                     d->topic->sal_name, d->map[i]->name, sal_field_type_name(d->map[i]->type));
            sal_sample_free(d->topic, s);
            return -EBADMSG;
        }
    }
    *sample = s;
    return 0;
}

/* ---- keys ---- */

int sal_kafka_key(const sal_component_info *comp, const sal_topic_info *topic, int32_t index, char *buf,
                  size_t len)
{
    int n;
    if (topic->kind == SAL_TOPIC_TELEMETRY) {
        n = snprintf(buf, len, "%s", "");
    } else if (comp->indexed) {
        n = snprintf(buf, len, "{ \"name\": \"%s\", \"index\": %d, \"topic\": \"%s\" }", comp->name,
                     (int)index, topic->sal_name);
    } else {
        n = snprintf(buf, len, "{ \"name\": \"%s\", \"topic\": \"%s\" }", comp->name, topic->sal_name);
    }
    return n < 0 || (size_t)n >= len ? -1 : n;
}
