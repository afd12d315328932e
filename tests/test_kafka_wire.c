/*
 * test_kafka_wire: an independent client checks what ocps-csc puts on the
 * Kafka wire. kcat (Debian) consumes the CSC's topics from the mock broker;
 * the test checks the message keys (salobj's exact strings), the Confluent
 * framing (magic byte, big-endian schema id), that the id is one the
 * registry gave out for the topic's subject, and that each payload decodes
 * with that registered schema (avro-c) into the values the CSC reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "ocps_test_iface.h"
#include "sal_csc.h"
#include "sal_fixture.h"
#include "test_util.h"

typedef struct buf {
    char *data;
    size_t len;
} buf;

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    char *more = realloc(b->data, b->len + size * n + 1);
    if (more == NULL) {
        return 0;
    }
    b->data = more;
    memcpy(b->data + b->len, ptr, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* GET url; the JSON body (NULL on failure). */
static json_t *http_get_json(const char *url)
{
    CURL *curl = curl_easy_init();
    buf b = {0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    json_t *j = rc == CURLE_OK && b.data ? json_loads(b.data, 0, NULL) : NULL;
    free(b.data);
    return j;
}

/* One kcat record: key and payload. */
typedef struct record {
    char key[512];
    unsigned char *payload;
    size_t len;
} record;

/* Consume every record of a topic with kcat: -f '%k\n%S\n%s' gives the
 * key, the payload size and the raw payload. Returns the count. */
static int kcat_topic(const char *topic, record *out, int max)
{
    char *argv[] = {"kcat", "-C",          "-b", getenv("LSST_KAFKA_BROKER_ADDR"),
                    "-t",   (char *)topic, "-o", "beginning",
                    "-e",   "-q",          "-f", "%k\n%S\n%s",
                    NULL};
    char *text = NULL;
    size_t len = 0;
    int rc = tu_run(argv, &text);
    if (rc != 0 || text == NULL) {
        free(text);
        return -1;
    }
    len = strlen(text); /* payloads may hold NUL bytes: walk by sizes below */
    (void)len;
    int n = 0;
    char *p = text;
    while (n < max && *p != '\0') {
        char *nl = strchr(p, '\n');
        if (nl == NULL) {
            break;
        }
        snprintf(out[n].key, sizeof out[n].key, "%.*s", (int)(nl - p), p);
        p = nl + 1;
        nl = strchr(p, '\n');
        if (nl == NULL) {
            break;
        }
        out[n].len = (size_t)atol(p);
        p = nl + 1;
        out[n].payload = malloc(out[n].len);
        memcpy(out[n].payload, p, out[n].len);
        p += out[n].len;
        n++;
    }
    free(text);
    return n;
}

static bool ready(fx *f, void *arg)
{
    (void)arg;
    return sal_remote_last(f->remote, "logevent_summaryState") != NULL &&
           sal_remote_last(f->remote, "logevent_softwareVersions") != NULL;
}

static void summary_state_on_the_wire(void **state)
{
    (void)state;
    if (strcmp(fx_transport(), "kafka") != 0) {
        skip();
    }
    fx *f = fx_setup_csc(ocps_test_component(), OCPS_CSC, CYCLONE_CONFIG);
    assert_non_null(f);
    assert_true(fx_run_until(f, ready, NULL, 20));
    char result[256];
    assert_int_equal(fx_command(f, "start", NULL, 30, result, sizeof result), SAL_CMD_COMPLETE);
    fx_run_for(f, 1.0);

    char topic[256];
    snprintf(topic, sizeof topic, "lsst.%s.OCPS.logevent_summaryState", getenv("LSST_TOPIC_SUBNAME"));
    record recs[64];
    int n = kcat_topic(topic, recs, 64);
    assert_true(n >= 2); /* STANDBY, then DISABLED */
    char url[1024];
    snprintf(url, sizeof url, "%s/subjects/%s-value/versions/latest", getenv("LSST_SCHEMA_REGISTRY_URL"),
             topic);
    json_t *latest = http_get_json(url);
    assert_non_null(latest);
    int registered_id = (int)json_integer_value(json_object_get(latest, "id"));
    json_decref(latest);
    int t = sal_component_find_topic(ocps_test_component(), "logevent_summaryState");
    const sal_topic_info *ti = &ocps_test_component()->topics[t];
    int last_state = 0;
    for (int i = 0; i < n; i++) {
        /* salobj's key, byte for byte */
        assert_string_equal(recs[i].key,
                            "{ \"name\": \"OCPS\", \"index\": 1, \"topic\": \"logevent_summaryState\" }");
        /* Confluent framing */
        assert_true(recs[i].len > 5);
        assert_int_equal(recs[i].payload[0], 0);
        int id = (recs[i].payload[1] << 24) | (recs[i].payload[2] << 16) | (recs[i].payload[3] << 8) |
                 recs[i].payload[4];
        assert_int_equal(id, registered_id);
        /* decodes with the schema the registry holds under that id */
        snprintf(url, sizeof url, "%s/schemas/ids/%d", getenv("LSST_SCHEMA_REGISTRY_URL"), id);
        json_t *sj = http_get_json(url);
        const char *schema_text = json_string_value(json_object_get(sj, "schema"));
        assert_non_null(schema_text);
        assert_string_equal(schema_text, ti->avro_schema);
        avro_schema_t schema;
        assert_int_equal(avro_schema_from_json_length(schema_text, strlen(schema_text), &schema), 0);
        avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
        avro_value_t value;
        avro_generic_value_new(iface, &value);
        avro_reader_t reader =
            avro_reader_memory((const char *)recs[i].payload + 5, (int64_t)(recs[i].len - 5));
        assert_int_equal(avro_value_read(reader, &value), 0);
        avro_value_t field;
        int32_t v = 0; /* defined even if a getter fails: cmocka's asserts are not noreturn */
        assert_int_equal(avro_value_get_by_name(&value, "salIndex", &field, NULL), 0);
        assert_int_equal(avro_value_get_int(&field, &v), 0);
        assert_int_equal(v, 1);
        assert_int_equal(avro_value_get_by_name(&value, "summaryState", &field, NULL), 0);
        assert_int_equal(avro_value_get_int(&field, &last_state), 0);
        const char *rev;
        size_t revlen;
        assert_int_equal(avro_value_get_by_name(&value, "private_revCode", &field, NULL), 0);
        assert_int_equal(avro_value_get_string(&field, &rev, &revlen), 0);
        assert_string_equal(rev, ti->avro_revcode);
        double snd = 0;
        double efd = 0;
        assert_int_equal(avro_value_get_by_name(&value, "private_sndStamp", &field, NULL), 0);
        assert_int_equal(avro_value_get_double(&field, &snd), 0);
        assert_int_equal(avro_value_get_by_name(&value, "private_efdStamp", &field, NULL), 0);
        assert_int_equal(avro_value_get_double(&field, &efd), 0);
        assert_true(snd - efd > 36.5 && snd - efd < 37.5); /* TAI - UTC */
        avro_reader_free(reader);
        avro_value_decref(&value);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
        json_decref(sj);
        free(recs[i].payload);
    }
    assert_int_equal(last_state, SAL_STATE_DISABLED);
    assert_int_equal(fx_teardown(f), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(summary_state_on_the_wire),
    };
    int rc = cmocka_run_group_tests_name("kafka_wire", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
