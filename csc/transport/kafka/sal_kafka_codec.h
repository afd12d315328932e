/*
 * sal_kafka_codec.h - internal to the Kafka transport: the salobj 8 wire
 * format of one topic (Confluent framing + Avro binary), message keys.
 *
 * Encoding follows the field order of the topic's Avro schema (the string
 * salobj registers, sal_topic_info.avro_schema) and takes each value by
 * name from the idlc sample struct through the field table. The two Kafka
 * stamps the struct lacks are computed: private_efdStamp = UTC of
 * private_sndStamp, private_kafkaStamp = private_sndStamp. private_identity
 * is the sample's whole identity (sal_sample_identity), not the struct's
 * string<128>, both ways.
 *
 * Decoding uses avro-c generically with the *writer's* schema and maps its
 * fields by name into a new sample: fields the writer lacks keep the
 * sample's defaults (0, "", false), extra writer fields are skipped.
 *
 * Nothing here does I/O or keeps global state; a codec or decoder is used
 * by one thread at a time.
 */
#ifndef SAL_KAFKA_CODEC_H
#define SAL_KAFKA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ocps/sal_interface.h"
#include "ocps/sal_time.h"

/* Confluent wire format v0: magic byte 0 + big-endian int32 schema id. */
#define SAL_KAFKA_MAGIC 0
#define SAL_KAFKA_PREFIX_LEN 5

/* A growable byte buffer. Zero-initialise; free with sal_kafka_buf_fini. */
typedef struct sal_kafka_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} sal_kafka_buf;

void sal_kafka_buf_fini(sal_kafka_buf *b);

/* Avro types a field of a salobj schema may have. */
typedef enum sal_kafka_avro_type {
    SAL_KAFKA_AVRO_NULL,
    SAL_KAFKA_AVRO_BOOLEAN,
    SAL_KAFKA_AVRO_INT,
    SAL_KAFKA_AVRO_LONG,
    SAL_KAFKA_AVRO_FLOAT,
    SAL_KAFKA_AVRO_DOUBLE,
    SAL_KAFKA_AVRO_STRING
} sal_kafka_avro_type;

/* Where the encoder takes a field's value from. */
typedef enum sal_kafka_source {
    SAL_KAFKA_SRC_SAMPLE,   /* the sample's field of the same name */
    SAL_KAFKA_SRC_EFD,      /* UTC of private_sndStamp */
    SAL_KAFKA_SRC_KAFKA,    /* private_sndStamp */
    SAL_KAFKA_SRC_IDENTITY, /* the sample's whole private_identity (sal_sample_identity) */
    SAL_KAFKA_SRC_DEFAULT   /* the sample has no such field: zero value */
} sal_kafka_source;

/* One field of the Avro record, in schema order. */
typedef struct sal_kafka_enc_field {
    sal_kafka_avro_type type; /* the item type for arrays */
    bool array;
    int union_null;  /* for ["null", T] (or [T, "null"]) unions: branch index of null, else -1 */
    int union_value; /* branch index of T, else -1 */
    int item_null;   /* the same for an array's items (ts_xml 20.1/20.2: ["float", "null"]) */
    int item_value;
    bool default_null; /* the schema's default is null (or none): a field not in the sample is null */
    sal_kafka_source source;
    const sal_field_info *field; /* SAL_KAFKA_SRC_SAMPLE only */
} sal_kafka_enc_field;

/* The encoder of one topic. */
typedef struct sal_kafka_codec {
    const sal_topic_info *topic;
    sal_kafka_enc_field *fields;
    size_t nfields;
    const sal_field_info *snd_stamp; /* private_sndStamp, or NULL */
} sal_kafka_codec;

/* Build the encoder of `topic` from an Avro record schema (JSON text; the
 * topic's avro_schema for our own writes). Fails with a message on a
 * schema this codec cannot write (unsupported types, not a record). */
int sal_kafka_codec_init(sal_kafka_codec *c, const sal_topic_info *topic, const char *schema_json, char *err,
                         size_t errlen);
void sal_kafka_codec_fini(sal_kafka_codec *c);

/* Encode `sample` framed with `schema_id` into out (replacing its
 * contents). clock converts private_sndStamp (TAI) to private_efdStamp. */
int sal_kafka_encode(const sal_kafka_codec *c, int32_t schema_id, const void *sample, const sal_clock *clock,
                     sal_kafka_buf *out, char *err, size_t errlen);

/* Split a framed message into schema id and Avro body; -EBADMSG (with a
 * message) when it is too short or the magic byte is wrong. */
int sal_kafka_frame_parse(const void *msg, size_t len, int32_t *schema_id, const uint8_t **body,
                          size_t *bodylen, char *err, size_t errlen);

/* Decodes one topic's samples written with one writer schema. */
typedef struct sal_kafka_decoder sal_kafka_decoder;

/* Parse the writer's schema (JSON text of length len) and map its fields
 * by name onto `topic`'s sample fields. */
int sal_kafka_decoder_new(sal_kafka_decoder **out, const sal_topic_info *topic, const char *writer_schema,
                          size_t len, char *err, size_t errlen);
void sal_kafka_decoder_free(sal_kafka_decoder *d);

/* Decode an Avro body (without the 5-byte prefix) into a new sample
 * (free with sal_sample_free). Fails with a message on malformed input or
 * a value that does not fit its field (e.g. a string into a number). */
int sal_kafka_decode(sal_kafka_decoder *d, const uint8_t *body, size_t len, void **sample, char *err,
                     size_t errlen);

/* The message key salobj writes for `topic` of a writer with SAL index
 * `index`: `{ "name": "OCPS", "index": 1, "topic": "ackcmd" }` (index only
 * for indexed components); "" (no key) for telemetry. Returns the key's
 * length, or -1 if it does not fit in buf. */
int sal_kafka_key(const sal_component_info *comp, const sal_topic_info *topic, int32_t index, char *buf,
                  size_t len);

#endif
