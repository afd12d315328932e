/*
 * test_kafka_wire: an independent client checks what ocps-csc puts on the
 * Kafka wire. kcat (Debian) consumes the CSC's topics from the mock broker;
 * the test checks the message keys (salobj's exact strings), the Confluent
 * framing (magic byte, big-endian schema id), that the id is one the
 * registry gave out for the topic's subject, and that each payload decodes
 * with that registered schema (avro-c) into the values the CSC reported.
 * And a registry that already holds salobj 8's schemas for the release the
 * CSC speaks (ts_xml's own strings, from the vectors) gets no new version.
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
#include "ocps/sal_csc.h"
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

/* POST body to url; the JSON answer (NULL on failure). */
static json_t *http_post_json(const char *url, const char *body)
{
    CURL *curl = curl_easy_init();
    buf b = {0};
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    curl_slist_free_all(hdr);
    json_t *j = rc == CURLE_OK && b.data ? json_loads(b.data, 0, NULL) : NULL;
    free(b.data);
    return j;
}

static void subject_url(char *url, size_t len, const char *sal_name, const char *tail)
{
    snprintf(url, len, "%s/subjects/lsst.%s.OCPS.%s-value%s", getenv("LSST_SCHEMA_REGISTRY_URL"),
             getenv("LSST_TOPIC_SUBNAME"), sal_name, tail);
}

/* The broker, registry and Remote of one test, closed by its teardown
 * whatever the test's outcome. */
typedef struct wire_fx {
    fx infra;
    fx f;
    bool opened;
} wire_fx;

static int wire_teardown(void **state)
{
    wire_fx *w = *state;
    int rc = 0;
    if (w != NULL) {
        rc = w->opened ? fx_close(&w->f) : 0;
        fx_kafka_stop(&w->infra);
        free(w);
    }
    return rc;
}

/* salobj 8 ran first: the registry holds ts_xml's exact schema strings.
 * The CSC and a Remote then open every topic, go through a state cycle,
 * and every subject still has one version, the id the CSC writes with. */
static void registry_with_salobj_schemas_gets_no_new_version(void **state)
{
    (void)state;
#ifndef OCPS_AVRO_VECTOR_DIR
    skip(); /* no salobj 8 schemas (shared/vectors) beside the project */
#else
    const sal_component_info *comp = ocps_test_component();
    if (strcmp(fx_transport(), "kafka") != 0 || strcmp(comp->xml_version, OCPS_AVRO_VECTOR_RELEASE) != 0) {
        skip(); /* the vectors are ts_xml OCPS_AVRO_VECTOR_RELEASE's */
    }
    fx_env(CYCLONE_CONFIG);
    wire_fx *w = calloc(1, sizeof *w);
    *state = w;
    assert_int_equal(fx_kafka_start(&w->infra, comp), 0);
    char url[1024];
    int ids[64] = {0};
    assert_true(comp->ntopics <= 64);
    for (size_t i = 0; i < comp->ntopics; i++) {
        char name[512];
        snprintf(name, sizeof name, "%s/%s.json", OCPS_AVRO_VECTOR_DIR, comp->topics[i].sal_name);
        char *schema = tu_read_file(name, NULL);
        if (schema == NULL) {
            fail_msg("no vector %s", name);
        }
        json_t *body = json_pack("{s:s}", "schema", schema);
        char *text = json_dumps(body, JSON_COMPACT);
        subject_url(url, sizeof url, comp->topics[i].sal_name, "/versions");
        json_t *answer = http_post_json(url, text);
        assert_non_null(answer);
        ids[i] = (int)json_integer_value(json_object_get(answer, "id"));
        assert_true(ids[i] > 0);
        json_decref(answer);
        free(text);
        json_decref(body);
        free(schema);
    }

    fx *f = &w->f;
    assert_int_equal(fx_open(f, comp, 1, NULL), 0);
    w->opened = true;
    char *argv[] = {OCPS_CSC, "--duplicate-check", "0.2", "1", NULL};
    assert_int_equal(fx_start_csc(f, argv), 0);
    assert_true(fx_run_until(f, ready, NULL, 20));
    char result[256];
    static const char *const cycle[] = {"start", "enable", "disable", "standby"};
    for (size_t i = 0; i < sizeof cycle / sizeof cycle[0]; i++) {
        assert_int_equal(fx_command(f, cycle[i], NULL, 30, result, sizeof result), SAL_CMD_COMPLETE);
    }

    for (size_t i = 0; i < comp->ntopics; i++) {
        subject_url(url, sizeof url, comp->topics[i].sal_name, "/versions");
        json_t *versions = http_get_json(url);
        assert_non_null(versions);
        if (json_array_size(versions) != 1) {
            fail_msg("%s: %zu versions", comp->topics[i].sal_name, json_array_size(versions));
        }
        json_decref(versions);
        subject_url(url, sizeof url, comp->topics[i].sal_name, "/versions/latest");
        json_t *latest = http_get_json(url);
        assert_int_equal(json_integer_value(json_object_get(latest, "id")), ids[i]);
        json_decref(latest);
    }
#endif
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(summary_state_on_the_wire),
        cmocka_unit_test_teardown(registry_with_salobj_schemas_gets_no_new_version, wire_teardown),
    };
    int rc = cmocka_run_group_tests_name("kafka_wire", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
