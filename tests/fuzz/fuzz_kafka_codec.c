/*
 * fuzz_kafka_codec: libFuzzer target for the Kafka transport's decoder
 * (csc/transport/kafka/sal_kafka_codec.c): the bytes of a Kafka message and
 * the writer's Avro schema both come from the network (broker, registry).
 *
 * Input: byte 0 picks an embedded OCPS release, byte 1 one of its topics,
 * byte 2 the mode:
 *   bit 0 clear: the rest is a message written with the topic's own
 *                schema (the decoder is kept across inputs, as the
 *                transport keeps one per schema id);
 *   bit 0 set:   the rest is a writer schema (JSON), a NUL byte, then the
 *                message: a schema that differs from ours (fields renamed,
 *                missing, extra, promoted, arrays, unions) or is no schema;
 *   bit 1 set:   the message is Confluent-framed (magic byte + schema id),
 *                else a bare Avro body.
 * Every failure must explain itself. A decoded sample must encode with our
 * schema, that message must decode again, and encoding that second sample
 * must give the same bytes (the codec is stable after one round).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "OCPS_interfaces.h"
#include "kafka/sal_kafka_codec.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RELEASES 8
#define MAX_TOPICS 128

static sal_clock clock_;
static bool clock_ready;
/* Our own decoder and encoder of each topic, made on first use. */
static sal_kafka_decoder *own_decoder[MAX_RELEASES][MAX_TOPICS];
static sal_kafka_codec own_codec[MAX_RELEASES][MAX_TOPICS];
static bool own_ready[MAX_RELEASES][MAX_TOPICS];

static void fail_silently(int rc, const char *err)
{
    if (rc != 0 && err[0] == '\0') {
        abort(); /* every failure explains itself */
    }
}

/* Free the cache at exit, so that LeakSanitizer's final check sees no
 * memory still held by it. */
static void own_free(void)
{
    for (size_t r = 0; r < MAX_RELEASES; r++) {
        for (size_t t = 0; t < MAX_TOPICS; t++) {
            if (own_ready[r][t]) {
                sal_kafka_decoder_free(own_decoder[r][t]);
                sal_kafka_codec_fini(&own_codec[r][t]);
                own_ready[r][t] = false;
            }
        }
    }
    sal_clock_fini(&clock_);
}

static bool own_setup(size_t r, size_t t, const sal_topic_info *topic)
{
    char err[512];
    if (!own_ready[r][t]) {
        err[0] = '\0';
        if (sal_kafka_codec_init(&own_codec[r][t], topic, topic->avro_schema, err, sizeof err) != 0 ||
            sal_kafka_decoder_new(&own_decoder[r][t], topic, topic->avro_schema, strlen(topic->avro_schema),
                                  err, sizeof err) != 0) {
            abort(); /* our own schemas always work */
        }
        own_ready[r][t] = true;
    }
    return true;
}

/* Encode a decoded sample with our schema; 0 with out filled. */
static void encode(size_t r, size_t t, const void *sample, sal_kafka_buf *out)
{
    char err[512] = "";
    if (sal_kafka_encode(&own_codec[r][t], 42, sample, &clock_, out, err, sizeof err) != 0) {
        abort(); /* any sample encodes */
    }
}

static void round_trip(size_t r, size_t t, const sal_topic_info *topic, const void *sample)
{
    sal_kafka_buf e1 = {0};
    sal_kafka_buf e2 = {0};
    char err[512] = "";
    encode(r, t, sample, &e1);
    int32_t id;
    const uint8_t *body;
    size_t len;
    void *again = NULL;
    if (sal_kafka_frame_parse(e1.data, e1.len, &id, &body, &len, err, sizeof err) != 0 || id != 42 ||
        sal_kafka_decode(own_decoder[r][t], body, len, &again, err, sizeof err) != 0) {
        abort(); /* what we write, we read */
    }
    encode(r, t, again, &e2);
    if (e1.len != e2.len || memcmp(e1.data, e2.data, e1.len) != 0) {
        abort(); /* stable after one round */
    }
    sal_sample_free(topic, again);
    sal_kafka_buf_fini(&e1);
    sal_kafka_buf_fini(&e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    if (!clock_ready) {
        char note[256];
        sal_clock_init(&clock_, NULL, note, sizeof note);
        clock_ready = true;
        atexit(own_free);
    }
    const sal_interface_set *set = &OCPS_sal_interfaces;
    size_t r = data[0] % set->nreleases;
    const sal_component_info *comp = set->releases[r];
    size_t t = data[1] % comp->ntopics;
    const sal_topic_info *topic = &comp->topics[t];
    unsigned mode = data[2];
    if (r >= MAX_RELEASES || t >= MAX_TOPICS || topic->avro_schema == NULL) {
        return 0;
    }
    own_setup(r, t, topic);
    const uint8_t *msg = data + 3;
    size_t msglen = size - 3;

    char err[512] = "";
    sal_kafka_decoder *d = own_decoder[r][t];
    sal_kafka_decoder *writer = NULL;
    if (mode & 1) {
        const uint8_t *nul = memchr(msg, '\0', msglen);
        if (nul == NULL) {
            return 0;
        }
        int rc =
            sal_kafka_decoder_new(&writer, topic, (const char *)msg, (size_t)(nul - msg), err, sizeof err);
        fail_silently(rc, err);
        if (rc != 0) {
            return 0;
        }
        d = writer;
        msglen -= (size_t)(nul - msg) + 1;
        msg = nul + 1;
    }
    const uint8_t *body = msg;
    size_t bodylen = msglen;
    if (mode & 2) {
        int32_t id;
        int rc = sal_kafka_frame_parse(msg, msglen, &id, &body, &bodylen, err, sizeof err);
        fail_silently(rc, err);
        if (rc != 0) {
            sal_kafka_decoder_free(writer);
            return 0;
        }
    }
    void *sample = NULL;
    int rc = sal_kafka_decode(d, body, bodylen, &sample, err, sizeof err);
    fail_silently(rc, err);
    if (rc == 0) {
        round_trip(r, t, topic, sample);
        sal_sample_free(topic, sample);
    }
    sal_kafka_decoder_free(writer);
    return 0;
}
