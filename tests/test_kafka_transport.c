/*
 * test_kafka_transport: the Kafka transport speaks ts_salobj 8's wire.
 *
 * - The codec reproduces the worked 58-byte summaryState message of the
 *   salobj 8 contract (§2.5) and writes every OCPS and Widget topic (arrays,
 *   telemetry, a non-indexed component) byte-identically to avro-c; every
 *   topic round-trips through the decoder.
 * - Decoding maps by name with the writer's schema: missing fields keep
 *   defaults, extra fields are skipped, int → long promotion works, bad
 *   input is refused.
 * - Keys are byte-identical to salobj's f-strings.
 * - The environment and YAML settings reach librdkafka as salobj merges them.
 * - With the test fixtures (ocps-mock-broker, ocps-schema-registry, paths
 *   from OCPS_MOCK_BROKER / OCPS_SCHEMA_REGISTRY at build or run time): a
 *   CSC-side and a Remote-side transport exchange events, commands and
 *   acks; an event written before the reader starts is read as history; a
 *   command written before the CSC reads is not; the registry receives the
 *   generated schemas (and ts_xml 28.0.1's vectors when the interface is
 *   built from that release); a broker outage neither blocks writes nor
 *   loses them.
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

#define WAIT_TIMEOUT 20.0

static const sal_component_info *ocps; /* the release Kafka speaks by default */
static const sal_component_info *widget = &Widget_sal_component;

static const sal_topic_info *topic_of(const sal_component_info *comp, const char *name)
{
    int i = sal_component_find_topic(comp, name);
    assert_true(i >= 0);
    return &comp->topics[i];
}

static void init_clock(sal_clock *c)
{
    char note[256];
    assert_int_equal(sal_clock_init(c, NULL, note, sizeof note), 0);
}

static void set_num(const sal_topic_info *t, void *s, const char *f, double v)
{
    char err[256];
    if (sal_sample_set_number(t, s, f, 0, v, err, sizeof err) != 0) {
        fail_msg("%s.%s: %s", t->sal_name, f, err);
    }
}

static void set_str(const sal_topic_info *t, void *s, const char *f, const char *v)
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
static size_t avro_c_encode(const char *schema_json, const sal_topic_info *t, const void *s,
                            const sal_clock *clock, void (*extra)(avro_value_t *), char *out, size_t len)
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

static void assert_samples_equal(const sal_topic_info *t, const void *a, const void *b)
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
static char *edited_schema(const sal_topic_info *t, void (*edit)(json_t *fields))
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

static void add_fields(json_t *fields)
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

static void set_extras(avro_value_t *rec)
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

static void writer_lacks_fields(void **state)
{
    (void)state;
    const sal_topic_info *t = topic_of(ocps, "logevent_summaryState");
    char *schema = edited_schema(t, drop_fields);
    void *s = summary_state_sample(t);
    sal_clock clock;
    init_clock(&clock);
    sal_kafka_codec c;
    char err[256];
    sal_kafka_buf buf = {0};
    assert_int_equal(sal_kafka_codec_init(&c, t, schema, err, sizeof err), 0);
    assert_int_equal(sal_kafka_encode(&c, 9, s, &clock, &buf, err, sizeof err), 0);
    assert_int_equal(buf.len, 58 - 1 - 2); /* no summaryState, no private_origin */
    void *back = decode_with(t, schema, (const char *)buf.data + 5, buf.len - 5);
    assert_int_equal(sal_sample_get_i32(t, back, "summaryState"), 0);
    assert_int_equal(sal_sample_get_i32(t, back, "private_origin"), 0);
    assert_int_equal(sal_sample_get_i32(t, back, "private_seqNum"), 7);
    assert_string_equal(sal_sample_get_string(t, back, "private_identity"), "OCPS:1");
    assert_true(sal_sample_get_number(t, back, "private_sndStamp", 0) == 1767225637.25);
    sal_sample_free(t, back);
    sal_kafka_buf_fini(&buf);
    sal_kafka_codec_fini(&c);
    sal_clock_fini(&clock);
    sal_sample_free(t, s);
    free(schema);
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

static void clear_kafka_env(void)
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
    sal_transport_cbs cbs = {no_cb_sample, no_cb_matched, no_cb_error, NULL};
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

/* ---- (e) with the broker and registry fixtures ---- */

typedef struct child {
    int pid;
    int in;
    int out;
} child;

static const char *fixture_path(const char *env, const char *builtin)
{
    const char *p = getenv(env);
    return p != NULL && *p != '\0' ? p : builtin;
}

static bool child_start(child *ch, char *const argv[])
{
    ch->pid = tu_spawn_piped(argv, &ch->in, &ch->out);
    return ch->pid > 0;
}

static char *child_line(child *ch, double timeout)
{
    char line[4096];
    return tu_read_line(ch->out, line, sizeof line, timeout) == 0 ? strdup(line) : NULL;
}

static void child_command(child *ch, const char *cmd)
{
    size_t n = strlen(cmd);
    assert_true(write(ch->in, cmd, n) == (ssize_t)n && write(ch->in, "\n", 1) == 1);
    char *reply = child_line(ch, WAIT_TIMEOUT);
    assert_non_null(reply);
    if (strcmp(reply, "OK") != 0) {
        fail_msg("%s -> %s", cmd, reply);
    }
    free(reply);
}

/* The text after `prefix` on the child's first line (malloc'd). */
static char *child_announce(child *ch, const char *prefix)
{
    char *line = child_line(ch, WAIT_TIMEOUT);
    assert_non_null(line);
    assert_true(strncmp(line, prefix, strlen(prefix)) == 0);
    char *v = strdup(line + strlen(prefix));
    free(line);
    return v;
}

static void child_stop(child *ch)
{
    close(ch->in);
    close(ch->out);
    kill(ch->pid, SIGTERM);
    if (tu_wait_exit(ch->pid, 10) < 0) {
        tu_kill(ch->pid);
    }
}

/* What a transport handed to its callbacks. */
typedef struct received {
    const sal_component_info *comp;
    pthread_mutex_t lock;
    int topics[64];
    void *samples[64];
    int n;
    int matched;
    int errors;
} received;

static void rx_sample(void *arg, int topic, void *sample)
{
    received *r = arg;
    pthread_mutex_lock(&r->lock);
    if (r->n < 64) {
        r->topics[r->n] = topic;
        r->samples[r->n++] = sample;
    } else {
        sal_sample_free(&r->comp->topics[topic], sample);
    }
    pthread_mutex_unlock(&r->lock);
}

static void rx_matched(void *arg, int topic, bool is_writer, int32_t current, int32_t change)
{
    received *r = arg;
    (void)topic;
    (void)is_writer;
    pthread_mutex_lock(&r->lock);
    r->matched += current == 1 && change == 1;
    pthread_mutex_unlock(&r->lock);
}

static void rx_error(void *arg, const char *message)
{
    received *r = arg;
    fprintf(stderr, "transport error: %s\n", message);
    pthread_mutex_lock(&r->lock);
    r->errors++;
    pthread_mutex_unlock(&r->lock);
}

/* Wait for the next sample of `topic` (others are discarded); malloc'd
 * sample or NULL on timeout. */
static void *rx_wait(received *r, int topic, double timeout)
{
    double end = tu_now() + timeout;
    while (tu_now() < end) {
        pthread_mutex_lock(&r->lock);
        for (int i = 0; i < r->n; i++) {
            void *s = r->samples[i];
            bool match = r->topics[i] == topic;
            if (!match) {
                sal_sample_free(&r->comp->topics[r->topics[i]], s);
            }
            memmove(&r->topics[i], &r->topics[i + 1], (size_t)(r->n - i - 1) * sizeof r->topics[0]);
            memmove(&r->samples[i], &r->samples[i + 1], (size_t)(r->n - i - 1) * sizeof r->samples[0]);
            r->n--;
            i--;
            if (match) {
                pthread_mutex_unlock(&r->lock);
                return s;
            }
        }
        pthread_mutex_unlock(&r->lock);
        usleep(2000);
    }
    return NULL;
}

static void rx_clear(received *r)
{
    for (int i = 0; i < r->n; i++) {
        sal_sample_free(&r->comp->topics[r->topics[i]], r->samples[i]);
    }
    r->n = 0;
    pthread_mutex_destroy(&r->lock);
}

typedef struct kafka_env {
    child broker;
    child registry;
    char *registry_url;
    char subname[64];
    sal_transport *csc;
    sal_transport *remote;
    received csc_rx;
    received remote_rx;
    child slow; /* a slow registry, while a test runs one */
    bool slow_started;
} kafka_env;

static int fixtures_setup(void **state)
{
    const char *broker = fixture_path("OCPS_MOCK_BROKER",
#ifdef OCPS_MOCK_BROKER
                                      OCPS_MOCK_BROKER
#else
                                      NULL
#endif
    );
    const char *registry = fixture_path("OCPS_SCHEMA_REGISTRY",
#ifdef OCPS_SCHEMA_REGISTRY
                                        OCPS_SCHEMA_REGISTRY
#else
                                        NULL
#endif
    );
    if (broker == NULL || registry == NULL) {
        *state = NULL;
        return 0;
    }
    kafka_env *k = calloc(1, sizeof *k);
    snprintf(k->subname, sizeof k->subname, "test%d", (int)getpid());
    char *const rargv[] = {(char *)registry, NULL};
    char *const bargv[] = {(char *)broker, NULL};
    assert_true(child_start(&k->registry, rargv));
    assert_true(child_start(&k->broker, bargv));
    k->registry_url = child_announce(&k->registry, "LISTENING ");
    char *bootstrap = child_announce(&k->broker, "BOOTSTRAP ");
    for (size_t i = 0; i < ocps->ntopics; i++) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "create lsst.%s.OCPS.%s", k->subname, ocps->topics[i].sal_name);
        child_command(&k->broker, cmd);
    }
    clear_kafka_env();
    setenv("LSST_TOPIC_SUBNAME", k->subname, 1);
    setenv("LSST_KAFKA_BROKER_ADDR", bootstrap, 1);
    setenv("LSST_SCHEMA_REGISTRY_URL", k->registry_url, 1);
    free(bootstrap);
    *state = k;
    return 0;
}

static int fixtures_teardown(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        return 0;
    }
    child_stop(&k->broker);
    child_stop(&k->registry);
    if (k->slow_started) { /* its test failed */
        child_stop(&k->slow);
    }
    free(k->registry_url);
    free(k);
    clear_kafka_env();
    return 0;
}

static sal_transport *open_index(received *rx, int32_t index)
{
    rx->comp = ocps;
    pthread_mutex_init(&rx->lock, NULL);
    sal_transport_cbs cbs = {rx_sample, rx_matched, rx_error, rx};
    sal_transport *t = NULL;
    char err[512];
    if (sal_kafka_transport.open(&t, ocps, index, &cbs, err, sizeof err) != 0) {
        fail_msg("open: %s", err);
    }
    return t;
}

static sal_transport *open_side(received *rx)
{
    return open_index(rx, 1);
}

static void create(sal_transport *t, const char *name, bool reader)
{
    char err[512];
    int topic = sal_component_find_topic(ocps, name);
    int rc = reader ? sal_kafka_transport.reader_create(t, topic, err, sizeof err)
                    : sal_kafka_transport.writer_create(t, topic, err, sizeof err);
    if (rc != 0) {
        fail_msg("%s %s: %s", reader ? "reader" : "writer", name, err);
    }
}

/* A sample with the private fields the runtime would set. */
static void *new_sample_index(const char *name, int32_t seqnum, const char *identity, int32_t index)
{
    const sal_topic_info *t = topic_of(ocps, name);
    void *s = sal_sample_new(t);
    sal_clock clock;
    init_clock(&clock);
    set_num(t, s, "private_sndStamp", sal_clock_tai(&clock));
    sal_clock_fini(&clock);
    set_num(t, s, "salIndex", index);
    set_num(t, s, "private_seqNum", seqnum);
    set_num(t, s, "private_origin", getpid());
    set_str(t, s, "private_identity", identity);
    set_str(t, s, "private_revCode", t->avro_revcode);
    return s;
}

static void *new_sample(const char *name, int32_t seqnum, const char *identity)
{
    return new_sample_index(name, seqnum, identity, 1);
}

static double write_sample(sal_transport *t, const char *name, void *s)
{
    char err[512];
    double start = tu_now();
    if (sal_kafka_transport.write(t, sal_component_find_topic(ocps, name), s, err, sizeof err) != 0) {
        fail_msg("write %s: %s", name, err);
    }
    double took = tu_now() - start;
    sal_sample_free(topic_of(ocps, name), s);
    return took;
}

static void *expect_sample(received *rx, const char *name, int32_t seqnum)
{
    void *s = rx_wait(rx, sal_component_find_topic(ocps, name), WAIT_TIMEOUT);
    if (s == NULL) {
        fail_msg("no %s received", name);
    }
    assert_int_equal(sal_sample_get_i32(topic_of(ocps, name), s, "private_seqNum"), seqnum);
    return s;
}

/* The latest schema the registry holds for a topic's subject (malloc'd). */
static char *registry_schema(const kafka_env *k, const char *sal_name)
{
    char url[512];
    snprintf(url, sizeof url, "%s/subjects/lsst.%s.OCPS.%s-value/versions/latest", k->registry_url,
             k->subname, sal_name);
    char *argv[] = {"curl", "-sf", url, NULL};
    char *out = NULL;
    assert_int_equal(tu_run(argv, &out), 0);
    json_t *root = json_loads(out, 0, NULL);
    free(out);
    const char *s = json_string_value(json_object_get(root, "schema"));
    char *copy = s ? strdup(s) : NULL;
    json_decref(root);
    return copy;
}

static void expect_schema_file(const char *dir, const char *sal_name, const char *got)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", dir, sal_name);
    size_t len;
    char *want = tu_read_file(path, &len);
    if (want == NULL) {
        fail_msg("cannot read %s", path);
    }
    while (len > 0 && (want[len - 1] == '\n' || want[len - 1] == '\r')) {
        want[--len] = '\0';
    }
    if (strcmp(want, got) != 0) {
        fail_msg("the registry's %s schema differs from %s", sal_name, path);
    }
    free(want);
}

static void check_registry(const kafka_env *k)
{
    static const char *const names[] = {"logevent_summaryState", "command_start", "ackcmd"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *got = registry_schema(k, names[i]);
        assert_non_null(got);
        assert_string_equal(got, topic_of(ocps, names[i])->avro_schema);
#ifdef OCPS_AVRO_GEN_DIR
        expect_schema_file(OCPS_AVRO_GEN_DIR, names[i], got);
#endif
#ifdef OCPS_AVRO_VECTOR_DIR
        if (strcmp(ocps->xml_version, "28.0.1") == 0) {
            expect_schema_file(OCPS_AVRO_VECTOR_DIR, names[i], got);
        }
#endif
        free(got);
    }
}

/* n command -> ackcmd round trips between the two transports. */
static void command_round_trips(kafka_env *k, int n)
{
    const sal_topic_info *ack = topic_of(ocps, "ackcmd");
    double start = tu_now(), worst = 0;
    for (int i = 0; i < n; i++) {
        double t0 = tu_now();
        write_sample(k->remote, "command_start", new_sample("command_start", 1000 + i, "user@host"));
        sal_sample_free(topic_of(ocps, "command_start"),
                        expect_sample(&k->csc_rx, "command_start", 1000 + i));
        write_sample(k->csc, "ackcmd", new_sample("ackcmd", 1000 + i, "OCPS:1"));
        sal_sample_free(ack, expect_sample(&k->remote_rx, "ackcmd", 1000 + i));
        double dt = tu_now() - t0;
        worst = dt > worst ? dt : worst;
    }
    double mean = (tu_now() - start) / n;
    fprintf(stderr, "command -> ackcmd round trip over the mock broker: mean %.2f ms, worst %.2f ms (%d)\n",
            mean * 1e3, worst * 1e3, n);
    assert_true(mean < 0.05); /* salobj asserts >= 20 round trips per second */
}

static void csc_and_remote(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    k->csc = open_side(&k->csc_rx);
    create(k->csc, "logevent_summaryState", false);
    create(k->csc, "ackcmd", false);
    /* an event written before any reader: history for late joiners */
    void *s = new_sample("logevent_summaryState", 1, "OCPS:1");
    set_num(topic_of(ocps, "logevent_summaryState"), s, "summaryState", 5);
    write_sample(k->csc, "logevent_summaryState", s);

    k->remote = open_side(&k->remote_rx);
    create(k->remote, "command_start", false);
    create(k->remote, "ackcmd", true);
    create(k->remote, "logevent_summaryState", true);
    s = expect_sample(&k->remote_rx, "logevent_summaryState", 1);
    assert_int_equal(sal_sample_get_i32(topic_of(ocps, "logevent_summaryState"), s, "summaryState"), 5);
    sal_sample_free(topic_of(ocps, "logevent_summaryState"), s);

    /* a command sent before the CSC reads is not seen (salobj: high watermark) */
    write_sample(k->remote, "command_start", new_sample("command_start", 100, "user@host"));
    usleep(200000);
    create(k->csc, "command_start", true);
    s = new_sample("command_start", 101, "user@host");
    set_str(topic_of(ocps, "command_start"), s, "configurationOverride", "b\xc3\xa9ta.yaml");
    write_sample(k->remote, "command_start", s);
    s = expect_sample(&k->csc_rx, "command_start", 101);
    assert_string_equal(sal_sample_get_string(topic_of(ocps, "command_start"), s, "configurationOverride"),
                        "b\xc3\xa9ta.yaml");
    assert_string_equal(sal_sample_get_string(topic_of(ocps, "command_start"), s, "private_identity"),
                        "user@host");
    sal_sample_free(topic_of(ocps, "command_start"), s);

    const sal_topic_info *ack = topic_of(ocps, "ackcmd");
    s = new_sample("ackcmd", 101, "OCPS:1");
    set_num(ack, s, "ack", 303);
    set_str(ack, s, "identity", "user@host");
    set_str(ack, s, "result", "Done");
    write_sample(k->csc, "ackcmd", s);
    s = expect_sample(&k->remote_rx, "ackcmd", 101);
    assert_int_equal(sal_sample_get_i32(ack, s, "ack"), 303);
    assert_string_equal(sal_sample_get_string(ack, s, "result"), "Done");
    sal_sample_free(ack, s);

    /* a later state change reaches the running reader */
    s = new_sample("logevent_summaryState", 2, "OCPS:1");
    set_num(topic_of(ocps, "logevent_summaryState"), s, "summaryState", 1);
    write_sample(k->csc, "logevent_summaryState", s);
    s = expect_sample(&k->remote_rx, "logevent_summaryState", 2);
    sal_sample_free(topic_of(ocps, "logevent_summaryState"), s);

    check_registry(k);
    assert_true(k->csc_rx.matched >= 3 && k->remote_rx.matched >= 3);
    command_round_trips(k, 200);
}

static void broker_outage(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    child_command(&k->broker, "down 1");
    void *s = new_sample("logevent_summaryState", 3, "OCPS:1");
    set_num(topic_of(ocps, "logevent_summaryState"), s, "summaryState", 2);
    double took = write_sample(k->csc, "logevent_summaryState", s);
    assert_true(took < 0.05); /* write does not wait for the broker */
    usleep(1000000);
    child_command(&k->broker, "up 1");
    s = rx_wait(&k->remote_rx, sal_component_find_topic(ocps, "logevent_summaryState"), 60.0);
    assert_non_null(s);
    assert_int_equal(sal_sample_get_i32(topic_of(ocps, "logevent_summaryState"), s, "private_seqNum"), 3);
    sal_sample_free(topic_of(ocps, "logevent_summaryState"), s);
}

/* Indexed components read the last LSST_MAX_HISTORY_READ records and keep
 * the newest per salIndex: a Remote of OCPS:1 gets OCPS:1's state even when
 * OCPS:2 wrote last. */
static void indexed_history(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    const sal_topic_info *ss = topic_of(ocps, "logevent_summaryState");
    received rx2 = {0}, rx1 = {0}, rx0 = {0};
    sal_transport *csc2 = open_index(&rx2, 2);
    create(csc2, "logevent_summaryState", false);
    void *s = new_sample_index("logevent_summaryState", 77, "OCPS:2", 2);
    set_num(ss, s, "summaryState", 3);
    write_sample(csc2, "logevent_summaryState", s);
    s = rx_wait(&k->remote_rx, sal_component_find_topic(ocps, "logevent_summaryState"), WAIT_TIMEOUT);
    assert_non_null(s); /* the running reader sees it (the runtime filters indices) */
    sal_sample_free(ss, s);

    sal_transport *late1 = open_index(&rx1, 1);
    create(late1, "logevent_summaryState", true);
    s = expect_sample(&rx1, "logevent_summaryState", 3);
    assert_int_equal(sal_sample_get_i32(ss, s, "salIndex"), 1);
    sal_sample_free(ss, s);
    usleep(300000);
    assert_null(rx_wait(&rx1, sal_component_find_topic(ocps, "logevent_summaryState"), 0.1));

    sal_transport *late0 = open_index(&rx0, 0);
    create(late0, "logevent_summaryState", true);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        s = rx_wait(&rx0, sal_component_find_topic(ocps, "logevent_summaryState"), WAIT_TIMEOUT);
        assert_non_null(s);
        seen |= sal_sample_get_i32(ss, s, "salIndex");
        sal_sample_free(ss, s);
    }
    assert_int_equal(seen, 1 | 2);
    sal_kafka_transport.close(late0);
    sal_kafka_transport.close(late1);
    sal_kafka_transport.close(csc2);
    assert_int_equal(rx0.errors + rx1.errors + rx2.errors, 0);
    rx_clear(&rx0);
    rx_clear(&rx1);
    rx_clear(&rx2);
}

/* A peer built from another schema version (an extra field, salIndex a
 * long): the reader fetches that schema by id and maps fields by name. */
static void foreign_writer_schema(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    const sal_topic_info *ss = topic_of(ocps, "logevent_summaryState");
    char *schema = edited_schema(ss, add_fields);
    sal_kafka_registry *reg;
    char err[512], subject[256];
    assert_int_equal(sal_kafka_registry_new(&reg, k->registry_url, err, sizeof err), 0);
    snprintf(subject, sizeof subject, "lsst.%s.OCPS.logevent_summaryState-value", k->subname);
    int32_t id = -1;
    if (sal_kafka_registry_register(reg, subject, schema, &id, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    int32_t own = -1;
    assert_int_equal(sal_kafka_registry_register(reg, subject, ss->avro_schema, &own, err, sizeof err), 0);
    assert_int_not_equal(id, own);
    char *fetched = NULL;
    assert_int_equal(sal_kafka_registry_fetch(reg, id, &fetched, err, sizeof err), 0);
    assert_string_equal(fetched, schema);
    free(fetched);
    assert_int_equal(sal_kafka_registry_fetch(reg, 999999, &fetched, err, sizeof err), -EIO);
    assert_non_null(strstr(err, "404"));
    sal_kafka_registry_free(reg);

    void *s = new_sample("logevent_summaryState", 4, "OCPS:1");
    set_num(ss, s, "summaryState", 4);
    sal_clock clock;
    init_clock(&clock);
    char body[4096];
    size_t n = avro_c_encode(schema, ss, s, &clock, set_extras, body + 5, sizeof body - 5);
    sal_clock_fini(&clock);
    body[0] = 0;
    body[1] = (char)(id >> 24);
    body[2] = (char)(id >> 16);
    body[3] = (char)(id >> 8);
    body[4] = (char)id;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char bootstrap[256];
    snprintf(bootstrap, sizeof bootstrap, "%s", getenv("LSST_KAFKA_BROKER_ADDR"));
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(p);
    char topic[256];
    snprintf(topic, sizeof topic, "lsst.%s.OCPS.logevent_summaryState", k->subname);
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(body, n + 5),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(p, 10000), 0);
    rd_kafka_destroy(p);
    void *back = expect_sample(&k->remote_rx, "logevent_summaryState", 4);
    assert_samples_equal(ss, s, back);
    sal_sample_free(ss, back);
    sal_sample_free(ss, s);
    free(schema);
}

/* Put a framed message on a topic with a plain librdkafka producer. */
static void produce_raw(const char *topic, const void *value, size_t len)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", getenv("LSST_KAFKA_BROKER_ADDR"), err, sizeof err),
        RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE((void *)value, len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     0);
    assert_int_equal(rd_kafka_flush(p, 10000), 0);
    rd_kafka_destroy(p);
}

/* How many subjects a registry holds. */
static size_t registry_subjects(const char *url)
{
    char u[512];
    snprintf(u, sizeof u, "%s/subjects", url);
    char *argv[] = {"curl", "-sf", u, NULL};
    char *out = NULL;
    assert_int_equal(tu_run(argv, &out), 0);
    json_t *list = json_loads(out, 0, NULL);
    free(out);
    size_t n = json_array_size(list);
    json_decref(list);
    return n;
}

#define SLOW_FETCH_S 4.0

/* One command -> ackcmd round trip; its duration. */
static double command_round_trip(sal_transport *csc, received *crx, sal_transport *remote, received *rrx,
                                 int32_t seq)
{
    double t0 = tu_now();
    write_sample(remote, "command_start", new_sample("command_start", seq, "user@host"));
    sal_sample_free(topic_of(ocps, "command_start"), expect_sample(crx, "command_start", seq));
    write_sample(csc, "ackcmd", new_sample("ackcmd", seq, "OCPS:1"));
    sal_sample_free(topic_of(ocps, "ackcmd"), expect_sample(rrx, "ackcmd", seq));
    return tu_now() - t0;
}

/* Every schema is registered at open; a writer schema the registry is
 * slow to give (SLOW_FETCH_S) holds up only the messages of its topic,
 * which then arrive in order: commands and acks on other topics keep
 * their round trip meanwhile. */
static void slow_schema_fetch_holds_only_its_topic(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    const char *registry = fixture_path("OCPS_SCHEMA_REGISTRY",
#ifdef OCPS_SCHEMA_REGISTRY
                                        OCPS_SCHEMA_REGISTRY
#else
                                        NULL
#endif
    );
    char delay[32];
    snprintf(delay, sizeof delay, "%g", SLOW_FETCH_S);
    char *const rargv[] = {(char *)registry, "--fetch-delay", delay, NULL};
    assert_true(child_start(&k->slow, rargv));
    k->slow_started = true;
    char *url = child_announce(&k->slow, "LISTENING ");
    char sub[80], cmd[300];
    snprintf(sub, sizeof sub, "%sslow", k->subname);
    for (size_t i = 0; i < ocps->ntopics; i++) {
        snprintf(cmd, sizeof cmd, "create lsst.%s.OCPS.%s", sub, ocps->topics[i].sal_name);
        child_command(&k->broker, cmd);
    }
    setenv("LSST_TOPIC_SUBNAME", sub, 1);
    setenv("LSST_SCHEMA_REGISTRY_URL", url, 1);
    received crx = {0}, rrx = {0};
    sal_transport *csc = open_side(&crx);
    assert_int_equal(registry_subjects(url), ocps->ntopics); /* before any reader or writer */
    sal_transport *remote = open_side(&rrx);
    create(csc, "command_start", true);
    create(csc, "logevent_heartbeat", true);
    create(csc, "ackcmd", false);
    create(remote, "command_start", false);
    create(remote, "ackcmd", true);
    create(remote, "logevent_heartbeat", false);

    command_round_trip(csc, &crx, remote, &rrx, 1999); /* the first one after an assignment is slow */

    /* a heartbeat from a writer of another schema version, then one of ours */
    const sal_topic_info *hb = topic_of(ocps, "logevent_heartbeat");
    char *schema = edited_schema(hb, add_fields);
    sal_kafka_registry *reg;
    char err[512], subject[300];
    assert_int_equal(sal_kafka_registry_new(&reg, url, err, sizeof err), 0);
    snprintf(subject, sizeof subject, "lsst.%s.OCPS.logevent_heartbeat-value", sub);
    int32_t id = -1;
    if (sal_kafka_registry_register(reg, subject, schema, &id, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    sal_kafka_registry_free(reg);
    void *s = new_sample("logevent_heartbeat", 50, "OCPS:1");
    sal_clock clock;
    init_clock(&clock);
    char body[4096];
    size_t n = avro_c_encode(schema, hb, s, &clock, set_extras, body + 5, sizeof body - 5);
    sal_clock_fini(&clock);
    sal_sample_free(hb, s);
    free(schema);
    body[0] = 0;
    body[1] = (char)(id >> 24);
    body[2] = (char)(id >> 16);
    body[3] = (char)(id >> 8);
    body[4] = (char)id;
    char topic[300];
    snprintf(topic, sizeof topic, "lsst.%s.OCPS.logevent_heartbeat", sub);
    double sent = tu_now();
    produce_raw(topic, body, n + 5);
    write_sample(remote, "logevent_heartbeat", new_sample("logevent_heartbeat", 51, "OCPS:1"));

    /* commands and acks meanwhile */
    double worst = 0;
    int trips = 0;
    while (tu_now() - sent < SLOW_FETCH_S / 2) {
        double dt = command_round_trip(csc, &crx, remote, &rrx, 2000 + trips);
        worst = dt > worst ? dt : worst;
        trips++;
    }
    fprintf(stderr, "while a writer schema took %.0f s to fetch: %d command round trips, worst %.3f s\n",
            SLOW_FETCH_S, trips, worst);
    assert_true(trips >= 10);
    assert_true(worst < 0.25);

    /* the held heartbeats arrive once the schema is there, in order */
    void *first = expect_sample(&crx, "logevent_heartbeat", 50);
    double arrived = tu_now() - sent;
    sal_sample_free(hb, first);
    sal_sample_free(hb, expect_sample(&crx, "logevent_heartbeat", 51));
    fprintf(stderr, "the held heartbeats arrived after %.2f s\n", arrived);
    assert_true(arrived >= SLOW_FETCH_S - 0.5);

    double start = tu_now();
    sal_kafka_transport.close(csc);
    sal_kafka_transport.close(remote);
    assert_true(tu_now() - start < 5.0);
    assert_int_equal(crx.errors + rrx.errors, 0);
    rx_clear(&crx);
    rx_clear(&rrx);
    setenv("LSST_TOPIC_SUBNAME", k->subname, 1);
    setenv("LSST_SCHEMA_REGISTRY_URL", k->registry_url, 1);
    child_stop(&k->slow);
    k->slow_started = false;
    free(url);
}

/* The mock broker cannot create topics (CreateTopics times out): open
 * warns and goes on; only an endpoint of a missing topic fails. */
static void missing_topic_not_created(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    char sub[80], cmd[300], err[512];
    snprintf(sub, sizeof sub, "%sx", k->subname);
    snprintf(cmd, sizeof cmd, "create lsst.%s.OCPS.ackcmd", sub);
    child_command(&k->broker, cmd);
    setenv("LSST_TOPIC_SUBNAME", sub, 1);
    received rx = {0};
    double start = tu_now();
    sal_transport *t = open_side(&rx);
    fprintf(stderr, "open with a broker that cannot create topics took %.1f s\n", tu_now() - start);
    setenv("LSST_TOPIC_SUBNAME", k->subname, 1);
    create(t, "ackcmd", true);
    int topic = sal_component_find_topic(ocps, "command_start");
    assert_int_equal(sal_kafka_transport.writer_create(t, topic, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "does not exist"));
    assert_non_null(strstr(err, "CreateTopics"));
    sal_kafka_transport.close(t);
    assert_int_equal(rx.errors, 0);
    rx_clear(&rx);
}

static void close_both(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    double start = tu_now();
    sal_kafka_transport.close(k->csc);
    sal_kafka_transport.close(k->remote);
    fprintf(stderr, "closing both transports took %.3f s\n", tu_now() - start);
    assert_int_equal(k->csc_rx.errors, 0);
    assert_int_equal(k->remote_rx.errors, 0);
    rx_clear(&k->csc_rx);
    rx_clear(&k->remote_rx);
}

int main(void)
{
    char err[256];
    ocps = ocps_interface_select("kafka", NULL, err, sizeof err);
    if (ocps == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const struct CMUnitTest codec[] = {
        cmocka_unit_test(worked_example),          cmocka_unit_test(round_trip_ocps),
        cmocka_unit_test(round_trip_widget),       cmocka_unit_test(writer_lacks_fields),
        cmocka_unit_test(writer_has_extra_fields), cmocka_unit_test(bad_input_is_refused),
        cmocka_unit_test(keys_match_salobj),       cmocka_unit_test(environment),
    };
    const struct CMUnitTest wire[] = {
        cmocka_unit_test(csc_and_remote),
        cmocka_unit_test(broker_outage),
        cmocka_unit_test(indexed_history),
        cmocka_unit_test(foreign_writer_schema),
        cmocka_unit_test(slow_schema_fetch_holds_only_its_topic),
        cmocka_unit_test(missing_topic_not_created),
        cmocka_unit_test(close_both),
    };
    int failed = cmocka_run_group_tests_name("kafka codec", codec, NULL, NULL);
    failed += cmocka_run_group_tests_name("kafka transport", wire, fixtures_setup, fixtures_teardown);
    curl_global_cleanup();
    return failed;
}
