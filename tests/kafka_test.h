/*
 * kafka_test.h - what the two halves of test kafka_transport share: the
 * codec tests (test_kafka_codec.c) and the tests with the broker and
 * registry fixtures (test_kafka_transport.c).
 */
#ifndef KAFKA_TEST_H
#define KAFKA_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <cmocka.h>
#include <jansson.h>

#include "ocps/sal_interface.h"
#include "ocps/sal_time.h"

/* The OCPS release Kafka speaks by default (set by main). */
extern const sal_component_info *ocps;

/* Topic `name` of comp (asserts it exists). */
const sal_topic_info *topic_of(const sal_component_info *comp, const char *name);

/* A TAI clock for the codec. */
void init_clock(sal_clock *c);

/* Set a number field, failing the test on error. */
void set_num(const sal_topic_info *t, void *s, const char *f, double v);

/* Set a string field, failing the test on error. */
void set_str(const sal_topic_info *t, void *s, const char *f, const char *v);

/* Encode sample s of topic t with avro-c from schema_json, the reference
 * encoder; returns the length written to out. */
size_t avro_c_encode(const char *schema_json, const sal_topic_info *t, const void *s, const sal_clock *clock,
                     void (*extra)(avro_value_t *), char *out, size_t len);

/* Assert two samples of t have equal fields. */
void assert_samples_equal(const sal_topic_info *t, const void *a, const void *b);

/* t's schema with its fields edited by `edit` (a new string). */
char *edited_schema(const sal_topic_info *t, void (*edit)(json_t *fields));

/* Unset the Kafka and registry environment variables. */
void clear_kafka_env(void);

/* An edit for edited_schema: fields a writer has and the reader lacks. */
void add_fields(json_t *fields);

/* Fill those extra fields in an avro-c record (for avro_c_encode). */
void set_extras(avro_value_t *rec);

/* The codec tests (no broker). */
const struct CMUnitTest *kafka_codec_tests(size_t *n);

#endif
