/*
 * test_kafka_codec: the first half of test kafka_transport (no broker).
 * - The codec reproduces the worked 58-byte summaryState message of the
 *   salobj 8 contract (§2.5) and writes every OCPS and Widget topic (arrays,
 *   telemetry, a non-indexed component) byte-identically to avro-c; every
 *   topic round-trips through the decoder.
 * - Decoding maps by name with the writer's schema: missing fields keep
 *   defaults, extra fields are skipped, int -> long promotion works, bad
 *   input is refused.
 * - Lengths in a message are checked before avro-c reads it; recursive
 *   writer schemas are refused.
 * - Keys are byte-identical to salobj's f-strings.
 * - The environment and YAML settings reach librdkafka as salobj merges them.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <avro.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "Widget_sal.h"
#include "kafka/sal_kafka.h"
#include "kafka/sal_kafka_codec.h"
#include "kafka/sal_kafka_config.h"
#include "kafka/sal_kafka_registry.h"
#include "ocps/ocps_interface.h"
#include "ocps/sal_sample.h"
#include "test_util.h"

#include "kafka_test.h"

const sal_component_info *ocps; /* the release Kafka speaks by default */
static const sal_component_info *widget = &Widget_sal_component;

const sal_topic_info *topic_of(const sal_component_info *comp, const char *name)
{
    int i = sal_component_find_topic(comp, name);
    assert_true(i >= 0);
    return &comp->topics[i];
}

void init_clock(sal_clock *c)
{
    char note[256];
    assert_int_equal(sal_clock_init(c, NULL, note, sizeof note), 0);
}

void set_num(const sal_topic_info *t, void *s, const char *f, double v)
{
    char err[256];
    if (sal_sample_set_number(t, s, f, 0, v, err, sizeof err) != 0) {
        fail_msg("%s.%s: %s", t->sal_name, f, err);
    }
}

void set_str(const sal_topic_info *t, void *s, const char *f, const char *v)
{
    char err[256];
    if (sal_sample_set_string(t, s, f, v, err, sizeof err) != 0) {
        fail_msg("%s.%s: %s", t->sal_name, f, err);
    }
}

/* ---- (a) the worked example ---- */

static void *summary_state_sample(const sal_topic_info *t)
{
    void *s = sal_sample_new(t);
    set_num(t, s, "salIndex", 1);
    set_num(t, s, "private_sndStamp", 1767225637.25);
    set_num(t, s, "private_seqNum", 7);
    set_str(t, s, "private_revCode", "9aceaf80");
    set_str(t, s, "private_identity", "OCPS:1");
    set_num(t, s, "private_origin", 4242);
    set_num(t, s, "summaryState", 5);
    return s;
}

static void worked_example(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x00, 0x00, 0x00, 0x00, 0x7b, 0x02, 0x00, 0x00, 0x50, 0x49, 0x6e, 0x55, 0xda, 0x41, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x40, 0x6e, 0x55, 0xda, 0x41,
        0x00, 0x00, 0x50, 0x49, 0x6e, 0x55, 0xda, 0x41, 0x0e, 0x10, 0x39, 0x61, 0x63, 0x65, 0x61,
        0x66, 0x38, 0x30, 0x0c, 0x4f, 0x43, 0x50, 0x53, 0x3a, 0x31, 0xa4, 0x42, 0x0a,
    };
    assert_int_equal(sizeof want, 58);
    const sal_topic_info *t = topic_of(ocps, "logevent_summaryState");
    void *s = summary_state_sample(t);
    sal_clock clock;
    init_clock(&clock);
    sal_kafka_codec c;
    char err[256];
    assert_int_equal(sal_kafka_codec_init(&c, t, t->avro_schema, err, sizeof err), 0);
    sal_kafka_buf buf = {0};
    assert_int_equal(sal_kafka_encode(&c, 123, s, &clock, &buf, err, sizeof err), 0);
    assert_int_equal(buf.len, sizeof want);
    assert_memory_equal(buf.data, want, sizeof want);
    sal_kafka_buf_fini(&buf);
    sal_kafka_codec_fini(&c);
    sal_clock_fini(&clock);
    sal_sample_free(t, s);
}

/* ---- (b) every topic: byte-identical to avro-c, and round trips ---- */

/* Deterministic, distinct values for every field (valid for its type). */
static void fill_sample(const sal_topic_info *t, void *s)
{
    char err[256];
    for (size_t i = 0; i < t->nfields; i++) {
        const sal_field_info *f = &t->fields[i];
        if (f->type == SAL_FIELD_STRING) {
            char v[64];
            snprintf(v, sizeof v, "v%zu-\xc3\xa9", i);
            if (f->bound > 0 && strlen(v) > f->bound) {
                v[f->bound] = '\0';
            }
            assert_int_equal(sal_sample_set_string(t, s, f->name, v, err, sizeof err), 0);
            continue;
        }
        for (size_t j = 0; j < f->count; j++) {
            double v = (double)(i * 3 + j + 1);
            if (f->type == SAL_FIELD_BOOLEAN) {
                v = (i + j) % 2;
            } else if (f->type == SAL_FIELD_FLOAT || f->type == SAL_FIELD_DOUBLE) {
                v += 0.5;
            } else if (f->type == SAL_FIELD_SHORT || f->type == SAL_FIELD_LONG ||
                       f->type == SAL_FIELD_LONGLONG) {
                v = -v;
            }
            if (strcmp(f->name, "private_sndStamp") == 0) {
                v = 1767225637.25;
            }
            if (sal_sample_set_number(t, s, f->name, j, v, err, sizeof err) != 0) {
                fail_msg("%s.%s: %s", t->sal_name, f->name, err);
            }
        }
    }
}

/* Set an avro-c scalar from element j of a sample field. */
static void avro_set_scalar(avro_value_t *v, const sal_topic_info *t, const void *s, const sal_field_info *f,
                            size_t j)
{
    double d = sal_sample_get_number(t, s, f->name, j);
    switch (avro_value_get_type(v)) {
    case AVRO_STRING:
        avro_value_set_string(v, sal_sample_get_string(t, s, f->name));
        break;
    case AVRO_INT32:
        avro_value_set_int(v, (int32_t)d);
        break;
    case AVRO_INT64:
        avro_value_set_long(v, (int64_t)d);
        break;
    case AVRO_FLOAT:
        avro_value_set_float(v, (float)d);
        break;
    case AVRO_DOUBLE:
        avro_value_set_double(v, d);
        break;
    case AVRO_BOOLEAN:
        avro_value_set_boolean(v, d != 0.0);
        break;
    default:
        fail_msg("%s.%s: unexpected Avro type", t->sal_name, f->name);
    }
}

/* Fill an avro-c record by field name from a sample (stamps computed). */
static void avro_fill(avro_value_t *rec, const sal_topic_info *t, const void *s, const sal_clock *clock)
{
    size_t n = 0; /* cmocka's failing assert does not return, but the compiler cannot tell */
    assert_int_equal(avro_value_get_size(rec, &n), 0);
    double tai = sal_sample_get_number(t, s, "private_sndStamp", 0);
    for (size_t i = 0; i < n; i++) {
        avro_value_t fv;
        const char *name;
        assert_int_equal(avro_value_get_by_index(rec, i, &fv, &name), 0);
        const sal_field_info *f = sal_topic_field(t, name);
        if (strcmp(name, "private_efdStamp") == 0) {
            avro_value_set_double(&fv, sal_clock_utc_from_tai(clock, tai));
        } else if (strcmp(name, "private_kafkaStamp") == 0) {
            avro_value_set_double(&fv, tai);
        } else if (f == NULL) {
            continue; /* extra field: left at avro-c's zero value */
        } else if (avro_value_get_type(&fv) == AVRO_ARRAY) {
            for (size_t j = 0; j < f->count; j++) {
                avro_value_t elem;
                assert_int_equal(avro_value_append(&fv, &elem, NULL), 0);
                avro_set_scalar(&elem, t, s, f, j);
            }
        } else {
            avro_set_scalar(&fv, t, s, f, 0);
        }
    }
}

/* avro-c's encoding of a sample with the given schema (body only). */
size_t avro_c_encode(const char *schema_json, const sal_topic_info *t, const void *s, const sal_clock *clock,
                     void (*extra)(avro_value_t *), char *out, size_t len)
{
    avro_schema_t schema;
    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &schema) != 0) {
        fail_msg("%s: avro-c rejects the schema: %s", t->sal_name, avro_strerror());
    }
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t rec;
    assert_int_equal(avro_generic_value_new(iface, &rec), 0);
    avro_fill(&rec, t, s, clock);
    if (extra != NULL) {
        extra(&rec);
    }
    avro_writer_t w = avro_writer_memory(out, (int64_t)len);
    assert_int_equal(avro_value_write(w, &rec), 0);
    size_t n = (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    return n;
}

void assert_samples_equal(const sal_topic_info *t, const void *a, const void *b)
{
    for (size_t i = 0; i < t->nfields; i++) {
        const sal_field_info *f = &t->fields[i];
        if (f->type == SAL_FIELD_STRING) {
            assert_string_equal(sal_sample_get_string(t, a, f->name), sal_sample_get_string(t, b, f->name));
            continue;
        }
        for (size_t j = 0; j < f->count; j++) {
            double x = sal_sample_get_number(t, a, f->name, j), y = sal_sample_get_number(t, b, f->name, j);
            if (x != y) {
                fail_msg("%s.%s[%zu]: %g != %g", t->sal_name, f->name, j, x, y);
            }
        }
    }
}

static void round_trip_component(const sal_component_info *comp)
{
    sal_clock clock;
    init_clock(&clock);
    char err[256];
    for (size_t k = 0; k < comp->ntopics; k++) {
        const sal_topic_info *t = &comp->topics[k];
        void *s = sal_sample_new(t);
        fill_sample(t, s);
        sal_kafka_codec c;
        sal_kafka_buf buf = {0};
        if (sal_kafka_codec_init(&c, t, t->avro_schema, err, sizeof err) != 0) {
            fail_msg("%s", err);
        }
        assert_int_equal(sal_kafka_encode(&c, 0x01020304, s, &clock, &buf, err, sizeof err), 0);
        int32_t id;
        const uint8_t *body;
        size_t len;
        assert_int_equal(sal_kafka_frame_parse(buf.data, buf.len, &id, &body, &len, err, sizeof err), 0);
        assert_int_equal(id, 0x01020304);
        static char want[1 << 16];
        size_t n = avro_c_encode(t->avro_schema, t, s, &clock, NULL, want, sizeof want);
        if (n != len || memcmp(want, body, n) != 0) {
            fail_msg("%s: encoding differs from avro-c's (%zu vs %zu bytes)", t->sal_name, len, n);
        }
        sal_kafka_decoder *d;
        assert_int_equal(
            sal_kafka_decoder_new(&d, t, t->avro_schema, strlen(t->avro_schema), err, sizeof err), 0);
        void *back;
        if (sal_kafka_decode(d, body, len, &back, err, sizeof err) != 0) {
            fail_msg("%s", err);
        }
        assert_samples_equal(t, s, back);
        sal_sample_free(t, back);
        sal_kafka_decoder_free(d);
        sal_kafka_buf_fini(&buf);
        sal_kafka_codec_fini(&c);
        sal_sample_free(t, s);
    }
    sal_clock_fini(&clock);
}

static void round_trip_ocps(void **state)
{
    (void)state;
    round_trip_component(ocps);
}

static void round_trip_widget(void **state)
{
    (void)state;
    bool arrays = false, telemetry = false;
    for (size_t k = 0; k < widget->ntopics; k++) {
        telemetry |= widget->topics[k].kind == SAL_TOPIC_TELEMETRY;
        for (size_t i = 0; i < widget->topics[k].nfields; i++) {
            arrays |= widget->topics[k].fields[i].count > 1;
        }
    }
    assert_true(arrays && telemetry);
    round_trip_component(widget);
}

/* ---- (c) schema resolution by name ---- */

/* The topic's schema with `edit` applied to its fields array. */
char *edited_schema(const sal_topic_info *t, void (*edit)(json_t *fields))
{
    json_t *root = json_loads(t->avro_schema, 0, NULL);
    assert_non_null(root);
    edit(json_object_get(root, "fields"));
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

static void drop_fields(json_t *fields)
{
    for (size_t i = json_array_size(fields); i-- > 0;) {
        const char *name = json_string_value(json_object_get(json_array_get(fields, i), "name"));
        if (strcmp(name, "summaryState") == 0 || strcmp(name, "private_origin") == 0) {
            json_array_remove(fields, i);
        }
    }
}

void add_fields(json_t *fields)
{
    json_array_insert_new(fields, 1, json_pack("{s:s, s:s}", "name", "extra_s", "type", "string"));
    json_array_insert_new(
        fields, 3,
        json_pack("{s:s, s:{s:s, s:s}}", "name", "extra_a", "type", "type", "array", "items", "double"));
    json_array_append_new(fields, json_pack("{s:s, s:s}", "name", "extra_l", "type", "long"));
    json_array_append_new(fields, json_pack("{s:s, s:[s, s]}", "name", "extra_u", "type", "null", "double"));
    /* a promotion: the writer's salIndex is a long */
    json_object_set_new(json_array_get(fields, 0), "type", json_string("long"));
}

void set_extras(avro_value_t *rec)
{
    avro_value_t v, elem, branch;
    assert_int_equal(avro_value_get_by_name(rec, "extra_s", &v, NULL), 0);
    avro_value_set_string(&v, "hello");
    assert_int_equal(avro_value_get_by_name(rec, "extra_a", &v, NULL), 0);
    for (int i = 0; i < 3; i++) {
        avro_value_append(&v, &elem, NULL);
        avro_value_set_double(&elem, i + 0.25);
    }
    assert_int_equal(avro_value_get_by_name(rec, "extra_l", &v, NULL), 0);
    avro_value_set_long(&v, -123456789012LL);
    assert_int_equal(avro_value_get_by_name(rec, "extra_u", &v, NULL), 0);
    avro_value_set_branch(&v, 1, &branch);
    avro_value_set_double(&branch, 2.5);
}

static void *decode_with(const sal_topic_info *t, const char *schema, const char *body, size_t len)
{
    char err[256];
    sal_kafka_decoder *d;
    if (sal_kafka_decoder_new(&d, t, schema, strlen(schema), err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    void *back = NULL;
    if (sal_kafka_decode(d, (const uint8_t *)body, len, &back, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    sal_kafka_decoder_free(d);
    return back;
}

/* A sample of topic t encoded by the codec with t's schema edited. */
typedef struct edited_case {
    const sal_topic_info *t;
    char *schema;
    void *s;
    sal_clock clock;
    sal_kafka_codec c;
    sal_kafka_buf buf;
} edited_case;

static void edited_case_encode(edited_case *k, const sal_topic_info *t, void (*edit)(json_t *fields),
                               void *sample)
{
    char err[256];
    memset(k, 0, sizeof *k);
    k->t = t;
    k->schema = edited_schema(t, edit);
    k->s = sample;
    init_clock(&k->clock);
    if (sal_kafka_codec_init(&k->c, t, k->schema, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(sal_kafka_encode(&k->c, 9, k->s, &k->clock, &k->buf, err, sizeof err), 0);
}

/* The case's message read back by the decoder (sal_sample_free it). */
static void *edited_case_decode(const edited_case *k)
{
    return decode_with(k->t, k->schema, (const char *)k->buf.data + 5, k->buf.len - 5);
}

static void edited_case_fini(edited_case *k)
{
    sal_kafka_buf_fini(&k->buf);
    sal_kafka_codec_fini(&k->c);
    sal_clock_fini(&k->clock);
    sal_sample_free(k->t, k->s);
    free(k->schema);
}

static void writer_lacks_fields(void **state)
{
    (void)state;
    const sal_topic_info *t = topic_of(ocps, "logevent_summaryState");
    edited_case k;
    edited_case_encode(&k, t, drop_fields, summary_state_sample(t));
    assert_int_equal(k.buf.len, 58 - 1 - 2); /* no summaryState, no private_origin */
    void *back = edited_case_decode(&k);
    assert_int_equal(sal_sample_get_i32(t, back, "summaryState"), 0);
    assert_int_equal(sal_sample_get_i32(t, back, "private_origin"), 0);
    assert_int_equal(sal_sample_get_i32(t, back, "private_seqNum"), 7);
    assert_string_equal(sal_sample_get_string(t, back, "private_identity"), "OCPS:1");
    assert_true(sal_sample_get_number(t, back, "private_sndStamp", 0) == 1767225637.25);
    sal_sample_free(t, back);
    edited_case_fini(&k);
}

static void writer_has_extra_fields(void **state)
{
    (void)state;
    const sal_topic_info *t = topic_of(ocps, "logevent_summaryState");
    char *schema = edited_schema(t, add_fields);
    void *s = summary_state_sample(t);
    sal_clock clock;
    init_clock(&clock);
    char body[4096];
    size_t n = avro_c_encode(schema, t, s, &clock, set_extras, body, sizeof body);
    void *back = decode_with(t, schema, body, n);
    assert_samples_equal(t, s, back);
    sal_sample_free(t, back);
    /* our encoder writes the same schema too (extras at their defaults) */
    sal_kafka_codec c;
    char err[256];
    sal_kafka_buf buf = {0};
    assert_int_equal(sal_kafka_codec_init(&c, t, schema, err, sizeof err), 0);
    assert_int_equal(sal_kafka_encode(&c, 9, s, &clock, &buf, err, sizeof err), 0);
    back = decode_with(t, schema, (const char *)buf.data + 5, buf.len - 5);
    assert_samples_equal(t, s, back);
    sal_sample_free(t, back);
    sal_kafka_buf_fini(&buf);
    sal_kafka_codec_fini(&c);
    sal_clock_fini(&clock);
    sal_sample_free(t, s);
    free(schema);
}

/* ts_xml 20.1.0 and 20.2.0 (field_info.py AVRO_TYPES): float and double
 * are ["float", "null"] and ["double", "null"] with default 0.0, array
 * items too. */
static json_t *nullable_floats(json_t *type)
{
    const char *name = json_string_value(type);
    if (name != NULL && (strcmp(name, "float") == 0 || strcmp(name, "double") == 0)) {
        return json_pack("[s, s]", name, "null");
    }
    if (json_is_object(type)) {
        json_t *items = nullable_floats(json_object_get(type, "items"));
        if (items != NULL) {
            json_t *t = json_deep_copy(type);
            json_object_set_new(t, "items", items);
            return t;
        }
    }
    return NULL;
}

static void fields_of_20_1(json_t *fields)
{
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        json_t *t = nullable_floats(json_object_get(f, "type"));
        if (t != NULL) {
            json_object_set_new(f, "type", t);
        }
    }
    /* a field the sample lacks: its default, 0.0, not null */
    json_array_append_new(fields, json_pack("{s:s, s:[s, s], s:f}", "name", "extra_d", "type", "double",
                                            "null", "default", 0.0));
}

/* The value (through its union, if any) of field `name` read by avro-c. */
static avro_value_t value_of(avro_value_t *rec, const char *name, avro_value_t *branch, int *which)
{
    avro_value_t v;
    assert_int_equal(avro_value_get_by_name(rec, name, &v, NULL), 0);
    *which = -1;
    if (avro_value_get_type(&v) == AVRO_UNION) {
        assert_int_equal(avro_value_get_discriminant(&v, which), 0);
        assert_int_equal(avro_value_get_current_branch(&v, branch), 0);
        return *branch;
    }
    return v;
}

/* The case's message as avro-c's generic reader reads it. */
typedef struct avro_c_read {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_reader_t reader;
    avro_value_t rec;
} avro_c_read;

static void avro_c_read_case(avro_c_read *a, const edited_case *k)
{
    assert_int_equal(avro_schema_from_json_length(k->schema, strlen(k->schema), &a->schema), 0);
    a->iface = avro_generic_class_from_schema(a->schema);
    assert_int_equal(avro_generic_value_new(a->iface, &a->rec), 0);
    a->reader = avro_reader_memory((const char *)k->buf.data + 5, (int64_t)k->buf.len - 5);
    assert_int_equal(avro_value_read(a->reader, &a->rec), 0);
}

static void avro_c_read_fini(avro_c_read *a)
{
    avro_reader_free(a->reader);
    avro_value_decref(&a->rec);
    avro_value_iface_decref(a->iface);
    avro_schema_decref(a->schema);
}

static void nullable_floats_of_ts_xml_20_1(void **state)
{
    (void)state;
    const sal_topic_info *t = topic_of(widget, "position");
    void *s = sal_sample_new(t);
    fill_sample(t, s);
    edited_case k;
    edited_case_encode(&k, t, fields_of_20_1, s);
    /* avro-c reads every float and double through its union's value branch */
    avro_c_read a;
    avro_c_read_case(&a, &k);
    avro_value_t *rec = &a.rec;
    avro_value_t branch, elem, item;
    int which;
    double d = -1.0;
    avro_value_t v = value_of(rec, "private_sndStamp", &branch, &which);
    assert_int_equal(which, 0);
    assert_int_equal(avro_value_get_double(&v, &d), 0);
    assert_true(d == 1767225637.25);
    v = value_of(rec, "xyz", &branch, &which);
    assert_int_equal(which, -1); /* an array of unions */
    size_t n = 0;
    assert_int_equal(avro_value_get_size(&v, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(avro_value_get_by_index(&v, 1, &elem, NULL), 0);
    assert_int_equal(avro_value_get_discriminant(&elem, &which), 0);
    assert_int_equal(which, 0);
    assert_int_equal(avro_value_get_current_branch(&elem, &item), 0);
    assert_int_equal(avro_value_get_double(&item, &d), 0);
    assert_true(d == sal_sample_get_number(t, s, "xyz", 1));
    v = value_of(rec, "extra_d", &branch, &which);
    assert_int_equal(which, 0);
    assert_int_equal(avro_value_get_double(&v, &d), 0);
    assert_true(d == 0.0);
    avro_c_read_fini(&a);
    /* and our decoder reads it back whole */
    void *back = edited_case_decode(&k);
    assert_samples_equal(t, s, back);
    sal_sample_free(t, back);
    edited_case_fini(&k);
}

/* The other order, ["null", T] (the cameras' .avsc form), as array items,
 * and a field the sample lacks whose default is null: the items carry
 * branch 1, the missing field the null branch. */
static void fields_null_first(json_t *fields)
{
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        if (strcmp(json_string_value(json_object_get(f, "name")), "xyz") == 0) {
            json_object_set_new(f, "type",
                                json_pack("{s:s, s:[s, s]}", "type", "array", "items", "null", "double"));
        }
    }
    json_array_append_new(
        fields, json_pack("{s:s, s:[s, s], s:n}", "name", "extra_n", "type", "null", "double", "default"));
}

static void null_first_union_items(void **state)
{
    (void)state;
    const sal_topic_info *t = topic_of(widget, "position");
    void *s = sal_sample_new(t);
    fill_sample(t, s);
    edited_case k;
    edited_case_encode(&k, t, fields_null_first, s);
    avro_c_read a;
    avro_c_read_case(&a, &k);
    avro_value_t *rec = &a.rec;
    avro_value_t branch, elem, item;
    int which = -1;
    double d = -1.0;
    avro_value_t v = value_of(rec, "xyz", &branch, &which);
    assert_int_equal(avro_value_get_by_index(&v, 2, &elem, NULL), 0);
    assert_int_equal(avro_value_get_discriminant(&elem, &which), 0);
    assert_int_equal(which, 1);
    assert_int_equal(avro_value_get_current_branch(&elem, &item), 0);
    assert_int_equal(avro_value_get_double(&item, &d), 0);
    assert_true(d == sal_sample_get_number(t, s, "xyz", 2));
    value_of(rec, "extra_n", &branch, &which);
    assert_int_equal(which, 0);
    assert_int_equal(avro_value_get_type(&branch), AVRO_NULL);
    avro_c_read_fini(&a);
    void *back = edited_case_decode(&k);
    assert_samples_equal(t, s, back);
    sal_sample_free(t, back);
    edited_case_fini(&k);
}

static void bad_input_is_refused(void **state)
{
    (void)state;
    const sal_topic_info *t = topic_of(ocps, "logevent_summaryState");
    char err[256];
    int32_t id;
    const uint8_t *body;
    size_t len;
    static const uint8_t bad_magic[] = {1, 0, 0, 0, 1, 2};
    static const uint8_t too_short[] = {0, 0, 0, 0, 1};
    assert_int_equal(sal_kafka_frame_parse(bad_magic, sizeof bad_magic, &id, &body, &len, err, sizeof err),
                     -EBADMSG);
    assert_int_equal(sal_kafka_frame_parse(too_short, sizeof too_short, &id, &body, &len, err, sizeof err),
                     -EBADMSG);
    sal_kafka_decoder *d;
    assert_int_equal(sal_kafka_decoder_new(&d, t, t->avro_schema, strlen(t->avro_schema), err, sizeof err),
                     0);
    static const uint8_t truncated[] = {0x02, 0x00, 0x00, 0x50};
    void *back;
    assert_int_equal(sal_kafka_decode(d, truncated, sizeof truncated, &back, err, sizeof err), -EBADMSG);
    assert_null(back);
    sal_kafka_decoder_free(d);
    /* a writer whose summaryState is a string does not fit */
    const char *str_schema = "{\"type\":\"record\",\"name\":\"x\",\"fields\":[{\"name\":\"summaryState\","
                             "\"type\":\"string\"}]}";
    assert_int_equal(sal_kafka_decoder_new(&d, t, str_schema, strlen(str_schema), err, sizeof err), 0);
    static const uint8_t str_body[] = {0x02, 'x'};
    assert_int_equal(sal_kafka_decode(d, str_body, sizeof str_body, &back, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "summaryState"));
    sal_kafka_decoder_free(d);
    assert_int_not_equal(sal_kafka_decoder_new(&d, t, "{not json", 9, err, sizeof err), 0);
}

/* Avro's zig-zag varint of v into p; returns its length. */
static size_t zigzag(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    do {
        p[n] = (uint8_t)(z & 0x7f);
        z >>= 7;
        p[n] |= z ? 0x80 : 0;
        n++;
    } while (z);
    return n;
}

static int decode_raw(const sal_topic_info *t, const char *schema, const uint8_t *body, size_t len)
{
    char err[256] = "";
    sal_kafka_decoder *d;
    assert_int_equal(sal_kafka_decoder_new(&d, t, schema, strlen(schema), err, sizeof err), 0);
    void *back = NULL;
    int rc = sal_kafka_decode(d, body, len, &back, err, sizeof err);
    if (rc == 0) {
        sal_sample_free(t, back);
    } else {
        assert_null(back);
        assert_true(err[0] != '\0');
    }
    sal_kafka_decoder_free(d);
    return rc;
}

/* Where `needle` (n bytes) first is in `hay` (len bytes), or NULL. */
static uint8_t *find_bytes(uint8_t *hay, size_t len, const void *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(hay + i, needle, n) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

/* A command_start of a commander whose identity is `len` bytes of id,
 * encoded with the generated schema. */
static sal_kafka_buf encode_identity(const sal_topic_info *t, const char *id, size_t len)
{
    void *s = sal_sample_new(t);
    set_num(t, s, "salIndex", 1);
    set_num(t, s, "private_sndStamp", 1767225637.25);
    set_num(t, s, "private_seqNum", 7);
    sal_sample_set_identity(t, s, id, len);
    sal_clock clock;
    init_clock(&clock);
    sal_kafka_codec c;
    char err[256];
    sal_kafka_buf buf = {0};
    assert_int_equal(sal_kafka_codec_init(&c, t, t->avro_schema, err, sizeof err), 0);
    assert_int_equal(sal_kafka_encode(&c, 9, s, &clock, &buf, err, sizeof err), 0);
    sal_kafka_codec_fini(&c);
    sal_clock_fini(&clock);
    sal_sample_free(t, s);
    return buf;
}

/* private_identity is an unbounded string on Kafka (salobj 8), whereas
 * the sample struct holds the DDS IDL's string<128>: a 200-byte identity
 * is written and read whole (the struct keeps its first 128 bytes for
 * DDS); one longer than SAL_IDENTITY_MAX is read as its first
 * SAL_IDENTITY_MAX bytes with its length, for the CSC to refuse it. */
static void identity_whole_both_ways(void **state)
{
    (void)state;
    const sal_topic_info *t = topic_of(ocps, "command_start");
    char *id = malloc(1101);
    memset(id, 'h', 1100);
    memcpy(id, "script@", 7);
    id[1100] = '\0';
    sal_kafka_buf buf = encode_identity(t, id, 200);
    uint8_t want[2 + 200] = {0x90, 0x03}; /* zig-zag varint of 200, then the bytes */
    memcpy(want + 2, id, 200);
    assert_non_null(find_bytes(buf.data, buf.len, want, sizeof want));
    void *back = decode_with(t, t->avro_schema, (const char *)buf.data + 5, buf.len - 5);
    assert_int_equal(strlen(sal_sample_identity(t, back)), 200);
    assert_memory_equal(sal_sample_identity(t, back), id, 200);
    assert_int_equal(sal_sample_identity_length(t, back), 200);
    assert_string_equal(sal_sample_get_string(t, back, "private_identity"), sal_sample_identity(t, back));
    const char *field = sal_field_get_string(sal_topic_field(t, "private_identity"), back);
    assert_int_equal(strlen(field), 128);
    assert_memory_equal(field, id, 128);
    sal_sample_free(t, back);
    sal_kafka_buf_fini(&buf);

    /* 1100 bytes (another writer's): the 1024 the codec writes, lengthened */
    buf = encode_identity(t, id, SAL_IDENTITY_MAX);
    uint8_t *at = find_bytes(buf.data, buf.len, id, SAL_IDENTITY_MAX);
    assert_non_null(at);
    uint8_t len1024[2];
    assert_int_equal(zigzag(len1024, SAL_IDENTITY_MAX), 2);
    assert_memory_equal(at - 2, len1024, 2);
    size_t head = (size_t)(at - 2 - buf.data);
    size_t tail = buf.len - head - 2 - SAL_IDENTITY_MAX;
    uint8_t *longer = malloc(buf.len + 100);
    memcpy(longer, buf.data, head);
    size_t n = head + zigzag(longer + head, 1100);
    memcpy(longer + n, id, 1100);
    memcpy(longer + n + 1100, at + SAL_IDENTITY_MAX, tail);
    back = decode_with(t, t->avro_schema, (const char *)longer + 5, n + 1100 + tail - 5);
    assert_int_equal(sal_sample_identity_length(t, back), 1100);
    assert_int_equal(strlen(sal_sample_identity(t, back)), SAL_IDENTITY_MAX);
    assert_memory_equal(sal_sample_identity(t, back), id, SAL_IDENTITY_MAX);
    assert_int_equal(sal_sample_seqnum(t, back), 7);
    sal_sample_free(t, back);
    free(longer);
    sal_kafka_buf_fini(&buf);
    free(id);
}

/* Found by tests/fuzz/fuzz_kafka_codec: avro-c allocates a string's length
 * before reading it, so a negative or huge length from the network asked
 * for up to 2^63 bytes and a message cut short leaked the allocation (the
 * sanitizer build sees both); an array of nulls could claim 2^40 items.
 * Such messages are refused before avro-c reads them. */
static void lengths_are_checked(void **state)
{
    (void)state;
    const sal_topic_info *t = topic_of(ocps, "logevent_summaryState");
    const char *str = "{\"type\":\"record\",\"name\":\"x\",\"fields\":[{\"name\":\"private_identity\","
                      "\"type\":\"string\"}]}";
    const char *nulls = "{\"type\":\"record\",\"name\":\"x\",\"fields\":[{\"name\":\"a\","
                        "\"type\":{\"type\":\"array\",\"items\":\"null\"}}]}";
    uint8_t b[32];
    size_t n = zigzag(b, 2);
    memcpy(b + n, "ab", 2);
    assert_int_equal(decode_raw(t, str, b, n + 2), 0);        /* a good one */
    assert_int_equal(decode_raw(t, str, b, n + 1), -EBADMSG); /* cut short: leaked */
    n = zigzag(b, -1);
    assert_int_equal(decode_raw(t, str, b, n), -EBADMSG);
    n = zigzag(b, -342);
    assert_int_equal(decode_raw(t, str, b, n + 8), -EBADMSG);
    n = zigzag(b, INT64_C(1) << 41); /* beyond ASan's largest allocation */
    assert_int_equal(decode_raw(t, str, b, n + 4), -EBADMSG);
    n = zigzag(b, INT64_C(1) << 40);
    b[n++] = 0;
    assert_int_equal(decode_raw(t, nulls, b, n), -EBADMSG);
    n = zigzag(b, 3); /* three nulls are fine */
    b[n++] = 0;
    assert_int_equal(decode_raw(t, nulls, b, n), 0);
}

/* Found by tests/fuzz/fuzz_kafka_codec: a writer schema whose record
 * contains itself made avro-c recurse until the stack overflowed when the
 * decoder was made. Recursive (and very deep) writer schemas are refused. */
static void recursive_writer_schema_is_refused(void **state)
{
    (void)state;
    const sal_topic_info *t = topic_of(ocps, "logevent_summaryState");
    const char *schemas[] = {
        "{\"type\":\"record\",\"name\":\"OCPS\",\"fields\":[{\"name\":\"ll\",\"type\":{\"type\":\"OCPS\"}}]}",
        "{\"type\":\"record\",\"name\":\"n\",\"fields\":[{\"name\":\"next\",\"type\":[\"null\",\"n\"]}]}",
    };
    char err[256];
    sal_kafka_decoder *d = NULL;
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        err[0] = '\0';
        assert_int_equal(sal_kafka_decoder_new(&d, t, schemas[i], strlen(schemas[i]), err, sizeof err),
                         -EINVAL);
        assert_null(d);
        assert_non_null(strstr(err, "recursive"));
    }
    /* 40 nested arrays */
    char deep[2048] = "{\"type\":\"record\",\"name\":\"x\",\"fields\":[{\"name\":\"a\",\"type\":";
    for (int i = 0; i < 40; i++) {
        strcat(deep, "{\"type\":\"array\",\"items\":");
    }
    strcat(deep, "\"int\"");
    for (int i = 0; i < 40; i++) {
        strcat(deep, "}");
    }
    strcat(deep, "}]}");
    assert_int_equal(sal_kafka_decoder_new(&d, t, deep, strlen(deep), err, sizeof err), -EINVAL);
    /* a named type defined again inside itself: avro-c leaked the partial
     * schema (LeakSanitizer in the sanitizer build) */
    const char *redefined = "{\"type\":\"record\",\"name\":\"a\",\"fields\":[{\"name\":\"x\",\"type\":"
                            "{\"type\":\"record\",\"name\":\"a\",\"fields\":[]}}]}";
    assert_int_equal(sal_kafka_decoder_new(&d, t, redefined, strlen(redefined), err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "twice"));
    /* the same name spelled with a namespace (found by the fuzzer: ".a" is "a") */
    const char *respelled[] = {
        "{\"type\":\"record\",\"name\":\".a\",\"fields\":[{\"name\":\"x\",\"type\":"
        "{\"type\":\"record\",\"name\":\"a\",\"fields\":[]}}]}",
        "{\"type\":\"record\",\"name\":\"a\",\"namespace\":\"n\",\"fields\":[{\"name\":\"x\",\"type\":"
        "{\"type\":\"record\",\"name\":\"n.a\",\"fields\":[]}}]}",
    };
    for (size_t i = 0; i < sizeof respelled / sizeof respelled[0]; i++) {
        assert_int_equal(sal_kafka_decoder_new(&d, t, respelled[i], strlen(respelled[i]), err, sizeof err),
                         -EINVAL);
        assert_null(d);
        assert_non_null(strstr(err, "twice"));
    }
}

/* ---- (d) keys ---- */

static void keys_match_salobj(void **state)
{
    (void)state;
    char key[256];
    static const struct {
        const char *topic;
        const char *want;
    } ocps_keys[] = {
        {"logevent_summaryState",
         "{ \"name\": \"OCPS\", \"index\": 1, \"topic\": \"logevent_summaryState\" }"},
        {"command_execute", "{ \"name\": \"OCPS\", \"index\": 1, \"topic\": \"command_execute\" }"},
        {"ackcmd", "{ \"name\": \"OCPS\", \"index\": 1, \"topic\": \"ackcmd\" }"},
    };
    for (size_t i = 0; i < sizeof ocps_keys / sizeof ocps_keys[0]; i++) {
        int n = sal_kafka_key(ocps, topic_of(ocps, ocps_keys[i].topic), 1, key, sizeof key);
        assert_int_equal(n, (int)strlen(ocps_keys[i].want));
        assert_string_equal(key, ocps_keys[i].want);
    }
    assert_true(sal_kafka_key(ocps, topic_of(ocps, "ackcmd"), 0, key, sizeof key) > 0);
    assert_string_equal(key, "{ \"name\": \"OCPS\", \"index\": 0, \"topic\": \"ackcmd\" }");
    assert_true(sal_kafka_key(widget, topic_of(widget, "logevent_summaryState"), 0, key, sizeof key) > 0);
    assert_string_equal(key, "{ \"name\": \"Widget\", \"topic\": \"logevent_summaryState\" }");
    for (size_t k = 0; k < widget->ntopics; k++) {
        if (widget->topics[k].kind == SAL_TOPIC_TELEMETRY) {
            assert_int_equal(sal_kafka_key(widget, &widget->topics[k], 0, key, sizeof key), 0);
        }
    }
    assert_int_equal(sal_kafka_key(ocps, topic_of(ocps, "ackcmd"), 1, key, 10), -1);
}

/* ---- environment and librdkafka settings ---- */

void clear_kafka_env(void)
{
    static const char *const vars[] = {"LSST_TOPIC_SUBNAME",
                                       "LSST_KAFKA_BROKER_ADDR",
                                       "LSST_SCHEMA_REGISTRY_URL",
                                       "LSST_KAFKA_SECURITY_USERNAME",
                                       "LSST_KAFKA_SECURITY_PASSWORD",
                                       "LSST_KAFKA_SECURITY_PROTOCOL",
                                       "LSST_KAFKA_SECURITY_MECHANISM",
                                       "LSST_KAFKA_REPLICATION_FACTOR",
                                       "LSST_KAFKA_PRODUCER_WAIT_ACKS",
                                       "LSST_KAFKA_BROKER_CLIENT_CONFIGURATION",
                                       "LSST_KAFKA_PRODUCER_CONFIGURATION",
                                       "LSST_KAFKA_CONSUMER_CONFIGURATION",
                                       "LSST_MAX_HISTORY_READ"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        unsetenv(vars[i]);
    }
}

static void conf_expect(rd_kafka_conf_t *conf, const char *name, const char *want)
{
    char v[512];
    size_t n = sizeof v;
    assert_int_equal(rd_kafka_conf_get(conf, name, v, &n), RD_KAFKA_CONF_OK);
    if (strcmp(v, want) != 0) {
        fail_msg("%s = %s, expected %s", name, v, want);
    }
}

static void no_cb_sample(void *arg, int topic, void *sample)
{
    (void)arg;
    (void)topic;
    (void)sample;
    fail_msg("unexpected sample");
}

static void no_cb_matched(void *arg, int topic, bool is_writer, int32_t current, int32_t change)
{
    (void)arg;
    (void)topic;
    (void)is_writer;
    (void)current;
    (void)change;
}

static void no_cb_error(void *arg, const char *message)
{
    (void)arg;
    fail_msg("unexpected error: %s", message);
}

static void environment(void **state)
{
    (void)state;
    clear_kafka_env();
    char err[512];
    sal_transport *t = NULL;
    sal_transport_cbs cbs = {no_cb_sample, no_cb_matched, no_cb_error, NULL, NULL, NULL, 0};
    assert_int_equal(sal_kafka_transport.open(&t, ocps, 1, &cbs, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "LSST_TOPIC_SUBNAME"));
    assert_string_equal(sal_kafka_transport.name, "kafka");
    assert_int_equal(sal_kafka_transport.revcode, SAL_REVCODE_AVRO);
    assert_ptr_equal(sal_transport_find("kafka"), &sal_kafka_transport);

    sal_kafka_env e;
    setenv("LSST_TOPIC_SUBNAME", "sal", 1);
    setenv("LSST_KAFKA_SECURITY_USERNAME", "ts-salkafka", 1);
    assert_int_equal(sal_kafka_env_read(&e, err, sizeof err), 0);
    assert_string_equal(e.broker, "broker:29092");
    assert_string_equal(e.registry_url, "http://schema-registry:8081");
    assert_null(e.username); /* only with both username and password */
    assert_string_equal(e.acks, "1");
    assert_int_equal(e.replication, 1);
    sal_kafka_env_fini(&e);

    char *dir = tu_make_temp_dir();
    char *broker_yaml = tu_path_join(dir, "broker.yaml");
    char *producer_yaml = tu_path_join(dir, "producer.yaml");
    const char *b = "linger.ms: 7\nsocket.keepalive.enable: true\n";
    const char *p = "linger.ms: 3\nbatch.num.messages: 5\nacks: all\n";
    assert_int_equal(tu_write_file(broker_yaml, b, strlen(b)), 0);
    assert_int_equal(tu_write_file(producer_yaml, p, strlen(p)), 0);
    setenv("LSST_KAFKA_SECURITY_PASSWORD", "secret", 1);
    setenv("LSST_KAFKA_BROKER_ADDR", "localhost:9092", 1);
    setenv("LSST_KAFKA_REPLICATION_FACTOR", "3", 1);
    setenv("LSST_KAFKA_BROKER_CLIENT_CONFIGURATION", broker_yaml, 1);
    setenv("LSST_KAFKA_PRODUCER_CONFIGURATION", producer_yaml, 1);
    assert_int_equal(sal_kafka_env_read(&e, err, sizeof err), 0);
    assert_int_equal(e.replication, 3);
    const char *const builtin[] = {"linger.ms", "0", "acks", "1", NULL};
    rd_kafka_conf_t *conf = sal_kafka_conf_new(&e, SAL_KAFKA_PRODUCER, builtin, err, sizeof err);
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    conf_expect(conf, "bootstrap.servers", "localhost:9092");
    conf_expect(conf, "sasl.username", "ts-salkafka");
    conf_expect(conf, "security.protocol", "sasl_plaintext");
    conf_expect(conf, "linger.ms", "7");          /* broker-client YAML wins */
    conf_expect(conf, "batch.num.messages", "5"); /* producer YAML over built-in */
    conf_expect(conf, "acks", "-1");
    conf_expect(conf, "socket.keepalive.enable", "true");
    rd_kafka_conf_destroy(conf);
    /* the consumer does not take the producer's file */
    conf = sal_kafka_conf_new(&e, SAL_KAFKA_CONSUMER, NULL, err, sizeof err);
    assert_non_null(conf);
    conf_expect(conf, "batch.num.messages", "10000");
    rd_kafka_conf_destroy(conf);
    sal_kafka_env_fini(&e);

    const char *bad = "no.such.property: 1\n";
    assert_int_equal(tu_write_file(producer_yaml, bad, strlen(bad)), 0);
    assert_int_equal(sal_kafka_env_read(&e, err, sizeof err), 0);
    assert_null(sal_kafka_conf_new(&e, SAL_KAFKA_PRODUCER, NULL, err, sizeof err));
    assert_non_null(strstr(err, "no.such.property"));
    sal_kafka_env_fini(&e);
    setenv("LSST_KAFKA_REPLICATION_FACTOR", "zero", 1);
    assert_int_equal(sal_kafka_env_read(&e, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "LSST_KAFKA_REPLICATION_FACTOR"));
    clear_kafka_env();
    tu_remove_tree(dir);
    free(broker_yaml);
    free(producer_yaml);
    free(dir);
}

/* The transport's own client settings (sal_kafka_client_conf), under the
 * YAML files. */
static void client_settings(void **state)
{
    (void)state;
    clear_kafka_env();
    setenv("LSST_TOPIC_SUBNAME", "sal", 1);
    char err[512];
    sal_kafka_env e;
    assert_int_equal(sal_kafka_env_read(&e, err, sizeof err), 0);
    rd_kafka_conf_t *conf = sal_kafka_client_conf(&e, SAL_KAFKA_PRODUCER, NULL, err, sizeof err);
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    conf_expect(conf, "acks", "1");
    conf_expect(conf, "max.in.flight.requests.per.connection", "1");
    conf_expect(conf, "message.timeout.ms", "0");
    conf_expect(conf, "reconnect.backoff.max.ms", "1000");
    rd_kafka_conf_destroy(conf);
    conf = sal_kafka_client_conf(&e, SAL_KAFKA_CONSUMER, "ocps-c-test", err, sizeof err);
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    conf_expect(conf, "group.id", "ocps-c-test");
    conf_expect(conf, "enable.auto.commit", "false");
    conf_expect(conf, "enable.partition.eof", "false");
    conf_expect(conf, "reconnect.backoff.max.ms", "1000");
    /* librdkafka's fetch.wait.max.ms (500): an idle consumer does not ask a
     * real broker for data every 10 ms */
    rd_kafka_conf_t *defaults = rd_kafka_conf_new();
    char wait[64];
    size_t n = sizeof wait;
    assert_int_equal(rd_kafka_conf_get(defaults, "fetch.wait.max.ms", wait, &n), RD_KAFKA_CONF_OK);
    rd_kafka_conf_destroy(defaults);
    conf_expect(conf, "fetch.wait.max.ms", wait);
    rd_kafka_conf_destroy(conf);
    sal_kafka_env_fini(&e);
    /* 10 where the test fixtures give the mock broker's file */
    setenv("LSST_KAFKA_CONSUMER_CONFIGURATION", OCPS_MOCK_CONSUMER_CONFIG, 1);
    assert_int_equal(sal_kafka_env_read(&e, err, sizeof err), 0);
    conf = sal_kafka_client_conf(&e, SAL_KAFKA_CONSUMER, "ocps-c-test", err, sizeof err);
    if (conf == NULL) {
        fail_msg("%s", err);
    }
    conf_expect(conf, "fetch.wait.max.ms", "10");
    conf_expect(conf, "group.id", "ocps-c-test");
    rd_kafka_conf_destroy(conf);
    sal_kafka_env_fini(&e);
    clear_kafka_env();
}

const struct CMUnitTest *kafka_codec_tests(size_t *n)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(worked_example),          cmocka_unit_test(round_trip_ocps),
        cmocka_unit_test(round_trip_widget),       cmocka_unit_test(writer_lacks_fields),
        cmocka_unit_test(writer_has_extra_fields), cmocka_unit_test(nullable_floats_of_ts_xml_20_1),
        cmocka_unit_test(null_first_union_items),  cmocka_unit_test(bad_input_is_refused),
        cmocka_unit_test(lengths_are_checked),     cmocka_unit_test(recursive_writer_schema_is_refused),
        cmocka_unit_test(keys_match_salobj),       cmocka_unit_test(environment),
        cmocka_unit_test(client_settings),         cmocka_unit_test(identity_whole_both_ways),
    };
    *n = sizeof tests / sizeof tests[0];
    return tests;
}
