/*
 * test_kafka_transport: the Kafka transport speaks ts_salobj 8's wire.
 *
 * - The codec: see test_kafka_codec.c (run first, in the same program).
 * - With the test fixtures (ocps-mock-broker, ocps-schema-registry, paths
 *   from OCPS_MOCK_BROKER / OCPS_SCHEMA_REGISTRY at build or run time): a
 *   CSC-side and a Remote-side transport exchange events, commands and
 *   acks; an event written before the reader starts is read as history; a
 *   command written before the CSC reads is not; the registry receives the
 *   generated schemas (and ts_xml 28.0.1's vectors when the interface is
 *   built from that release); a broker outage neither blocks writes nor
 *   loses them; what is written right after a new reader is ready is read
 *   (50 new transports in a row).
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

#define WAIT_TIMEOUT 20.0

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
    int warnings;
    char warning[1024]; /* the last one */
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

static void rx_warning(void *arg, const char *message)
{
    received *r = arg;
    pthread_mutex_lock(&r->lock);
    r->warnings++;
    snprintf(r->warning, sizeof r->warning, "%s", message);
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
    /* fetch.wait.max.ms 10: the mock holds an empty Fetch that long, even when data arrives */
    setenv("LSST_KAFKA_CONSUMER_CONFIGURATION", OCPS_MOCK_CONSUMER_CONFIG, 1);
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
    sal_transport_cbs cbs = {rx_sample, rx_matched, rx_error, rx, NULL, rx_warning, 0};
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
    assert_true(took < 0.5); /* write does not wait for the broker (down for 6 s) */
    usleep(6000000);
    child_command(&k->broker, "up 1");
    double up = tu_now();
    s = rx_wait(&k->remote_rx, sal_component_find_topic(ocps, "logevent_summaryState"), 60.0);
    assert_non_null(s);
    /* reconnect.backoff.max.ms 1000: back within a few seconds of the
     * broker, not librdkafka's 10 s backoff (6.4 s after this outage) */
    fprintf(stderr, "delivered %.2f s after the broker came back\n", tu_now() - up);
    assert_true(tu_now() - up < 3.0);
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

static int matched_count(received *r);

/* Opens OCPS:INDEX with LSST_HISTORY_READ_CONFIG naming a file of TEXT
 * (NULL: a file that does not exist) and reads the history of EVENT: the
 * salIndex of what it delivered once matched (0: nothing). */
static int32_t history_index_with_config(const char *text, int32_t index, const char *event)
{
    char *dir = tu_make_temp_dir();
    char *path = tu_path_join(dir, "history.yaml");
    if (text != NULL) {
        assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
    }
    setenv("LSST_HISTORY_READ_CONFIG", path, 1);
    received rx = {0};
    sal_transport *t = open_index(&rx, index);
    create(t, event, true);
    double end = tu_now() + WAIT_TIMEOUT;
    while (matched_count(&rx) < 1 && tu_now() < end) {
        usleep(1000);
    }
    assert_int_equal(matched_count(&rx), 1);
    const sal_topic_info *ti = topic_of(ocps, event);
    void *s = rx_wait(&rx, sal_component_find_topic(ocps, event), 0.3);
    int32_t got = s != NULL ? sal_sample_get_i32(ti, s, "salIndex") : 0;
    if (s != NULL) {
        sal_sample_free(ti, s);
    }
    sal_kafka_transport.close(t);
    assert_int_equal(rx.errors, 0);
    rx_clear(&rx);
    unsetenv("LSST_HISTORY_READ_CONFIG");
    tu_remove_tree(dir);
    free(path);
    free(dir);
    return got;
}

/* LSST_HISTORY_READ_CONFIG (salobj 8): a YAML file of component name to
 * history depth, for indexed components. OCPS: 1 reads only the newest
 * record, so a late OCPS:2 misses its state when OCPS:1 wrote last; an
 * entry for another component, or no file, leaves the depth at 500. A
 * file that is not such a mapping fails the open, naming the file. */
static void history_read_config(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    const char *event = "logevent_softwareVersions";
    received rx1 = {0}, rx2 = {0};
    sal_transport *csc1 = open_index(&rx1, 1), *csc2 = open_index(&rx2, 2);
    create(csc1, event, false);
    create(csc2, event, false);
    write_sample(csc2, event, new_sample_index(event, 1, "OCPS:2", 2));
    sal_kafka_transport.close(csc2); /* delivered before OCPS:1 writes */
    write_sample(csc1, event, new_sample_index(event, 1, "OCPS:1", 1));
    sal_kafka_transport.close(csc1);
    rx_clear(&rx1);
    rx_clear(&rx2);

    assert_int_equal(history_index_with_config("Test: 1\nOCPS: 5\n", 2, event), 2);
    assert_int_equal(history_index_with_config("OCPS: 1\n", 2, event), 0);
    assert_int_equal(history_index_with_config("OCPS: 1\n", 1, event), 1);
    assert_int_equal(history_index_with_config("Test: 1\n", 2, event), 2);
    assert_int_equal(history_index_with_config(NULL, 2, event), 2);

    static const struct {
        const char *text, *why;
    } bad[] = {
        {"- OCPS\n", "expected a mapping of component name"},
        {"OCPS: many\n", "OCPS must be a number of records"},
        {"OCPS: -1\n", "OCPS must be a number of records"},
        {"OCPS: [1\n", "history.yaml"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *dir = tu_make_temp_dir();
        char *path = tu_path_join(dir, "history.yaml");
        assert_int_equal(tu_write_file(path, bad[i].text, strlen(bad[i].text)), 0);
        setenv("LSST_HISTORY_READ_CONFIG", path, 1);
        received rx = {0};
        rx.comp = ocps;
        pthread_mutex_init(&rx.lock, NULL);
        sal_transport_cbs cbs = {rx_sample, rx_matched, rx_error, &rx, NULL, rx_warning, 0};
        sal_transport *t = NULL;
        char err[512] = "";
        assert_int_not_equal(sal_kafka_transport.open(&t, ocps, 2, &cbs, err, sizeof err), 0);
        fprintf(stderr, "%s", bad[i].text);
        fprintf(stderr, "  -> %s\n", err);
        assert_non_null(strstr(err, "LSST_HISTORY_READ_CONFIG"));
        assert_non_null(strstr(err, bad[i].why));
        unsetenv("LSST_HISTORY_READ_CONFIG");
        pthread_mutex_destroy(&rx.lock);
        tu_remove_tree(dir);
        free(path);
        free(dir);
    }
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
    if (sal_kafka_registry_register(reg, subject, schema, 0, &id, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    int32_t own = -1;
    assert_int_equal(sal_kafka_registry_register(reg, subject, ss->avro_schema, 0, &own, err, sizeof err), 0);
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

/* Put n messages on a topic with a plain librdkafka producer, in one
 * batch (they reach a consumer together); a NULL value is a tombstone. */
static void produce_raw_batch(const char *topic, const void *const *values, const size_t *lens, size_t n)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", getenv("LSST_KAFKA_BROKER_ADDR"), err, sizeof err),
        RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "linger.ms", "50", err, sizeof err), RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic),
                                           RD_KAFKA_V_VALUE((void *)values[i], lens[i]),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                         0);
    }
    assert_int_equal(rd_kafka_flush(p, 10000), 0);
    rd_kafka_destroy(p);
}

/* Put a framed message on a topic with a plain librdkafka producer. */
static void produce_raw(const char *topic, const void *value, size_t len)
{
    produce_raw_batch(topic, &value, &len, 1);
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
    assert_int_equal(tu_registry_subjects(url), (long)ocps->ntopics); /* before any reader or writer */
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
    if (sal_kafka_registry_register(reg, subject, schema, 0, &id, err, sizeof err) != 0) {
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
    assert_true(worst < SLOW_FETCH_S / 4); /* not held up by the fetch */

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

static void *rx_take(received *r, int topic, int32_t seq, double timeout);
static int matched_count(received *r);

/* A message that cannot be decoded (not Confluent-framed Avro, an unknown
 * schema id) on a command topic is dropped, and the transport tells the
 * runtime with a warning (which a CSC turns into a WARNING logMessage, so
 * that operators learn why a command got no ack), not an error; a good
 * command after it is read. */
static void undecodable_messages_are_told(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    received rx = {0};
    sal_transport *t = open_side(&rx);
    create(t, "command_start", true);
    int topic = sal_component_find_topic(ocps, "command_start");
    usleep(300000); /* the reader's assignment */
    char name[300];
    snprintf(name, sizeof name, "lsst.%s.OCPS.command_start", k->subname);
    produce_raw(name, "garbage", 7);
    const unsigned char unknown_id[] = {0, 0x7f, 0xff, 0xff, 0xf0, 2, 4};
    produce_raw(name, unknown_id, sizeof unknown_id);
    sal_transport *w = open_side(&rx);
    create(w, "command_start", false);
    write_sample(w, "command_start", new_sample("command_start", 4242, "user@host"));
    void *s = rx_take(&rx, topic, 4242, 15);
    assert_non_null(s);
    sal_sample_free(topic_of(ocps, "command_start"), s);
    pthread_mutex_lock(&rx.lock);
    int warnings = rx.warnings;
    char last[1024];
    snprintf(last, sizeof last, "%s", rx.warning);
    pthread_mutex_unlock(&rx.lock);
    fprintf(stderr, "warnings: %d, the last: %s\n", warnings, last);
    assert_true(warnings >= 1);
    assert_non_null(strstr(last, "dropped an undecodable message of"));
    assert_non_null(strstr(last, "command_start"));
    assert_int_equal(rx.errors, 0);
    sal_kafka_transport.close(w);
    sal_kafka_transport.close(t);
    rx_clear(&rx);
}

/* A tombstone (no value: payload NULL, length 0) that arrives while an
 * earlier message of its topic waits for its writer schema is held behind
 * it with nothing to copy (memcpy from NULL was undefined: an
 * OCPS_SANITIZE build aborted), then dropped in its turn; a good message
 * after both is read. */
static void tombstone_held_behind_unknown_schema(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    received rx = {0};
    sal_transport *t = open_side(&rx);
    create(t, "command_enable", true);
    int topic = sal_component_find_topic(ocps, "command_enable");
    usleep(300000); /* the reader's assignment */
    char name[300];
    snprintf(name, sizeof name, "lsst.%s.OCPS.command_enable", k->subname);
    static const unsigned char unknown_id[] = {0, 0x7f, 0xff, 0xff, 0xf1, 2, 4};
    const void *values[] = {unknown_id, NULL};
    const size_t lens[] = {sizeof unknown_id, 0};
    produce_raw_batch(name, values, lens,
                      2); /* the schema fetch (a 404) is under way when the tombstone comes */
    sal_transport *w = open_side(&rx);
    create(w, "command_enable", false);
    write_sample(w, "command_enable", new_sample("command_enable", 4343, "user@host"));
    void *s = rx_take(&rx, topic, 4343, 15);
    assert_non_null(s);
    sal_sample_free(topic_of(ocps, "command_enable"), s);
    assert_int_equal(rx.errors, 0);
    sal_kafka_transport.close(w);
    sal_kafka_transport.close(t);
    rx_clear(&rx);
}

/* A history read whose last record cannot be decoded ends there: a late
 * reader of an event gets the newest good record and its match at once,
 * not when a later record comes. The last record: a wrong magic byte, an
 * unknown writer schema id (dropped when the fetch fails), a tombstone,
 * and an unknown id with a tombstone behind it (held, then dropped). */
static void history_ends_at_undecodable_record(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    static const unsigned char unknown_id[] = {0, 0x7f, 0xff, 0xff, 0xf2, 2, 4};
    const struct {
        const char *what;
        const void *values[2];
        size_t lens[2];
        size_t n;
    } last[] = {
        {"a wrong magic byte", {"garbage"}, {7}, 1},
        {"an unknown schema id", {unknown_id}, {sizeof unknown_id}, 1},
        {"a tombstone", {NULL}, {0}, 1},
        {"an unknown schema id, then a tombstone", {unknown_id, NULL}, {sizeof unknown_id, 0}, 2},
    };
    const char *event = "logevent_logLevel";
    int topic = sal_component_find_topic(ocps, event);
    char name[300];
    snprintf(name, sizeof name, "lsst.%s.OCPS.%s", k->subname, event);
    received wrx = {0};
    sal_transport *watch = open_side(&wrx); /* sees the good records on the broker */
    create(watch, event, true);
    create(k->csc, event, false);
    int32_t seq = 6000;
    for (size_t i = 0; i < sizeof last / sizeof last[0]; i++) {
        for (int j = 0; j < 3; j++) {
            write_sample(k->csc, event, new_sample(event, ++seq, "OCPS:1"));
        }
        void *s = rx_take(&wrx, topic, seq, WAIT_TIMEOUT);
        assert_non_null(s);
        sal_sample_free(&ocps->topics[topic], s);
        produce_raw_batch(name, last[i].values, last[i].lens, last[i].n);

        received rx = {0};
        sal_transport *late = open_side(&rx);
        double t0 = tu_now();
        create(late, event, true);
        while (matched_count(&rx) < 1 && tu_now() - t0 < 3.0) {
            usleep(1000);
        }
        double matched_after = tu_now() - t0;
        s = rx_take(&rx, topic, seq, 1.0);
        fprintf(stderr, "history ending with %s: matched after %.3f s, newest good record %s\n", last[i].what,
                matched_after, s != NULL ? "read" : "NOT read");
        if (matched_count(&rx) != 1 || s == NULL) {
            fail_msg("history ending with %s: %s", last[i].what,
                     s == NULL ? "the newest good record was not read" : "the reader was not matched");
        }
        sal_sample_free(&ocps->topics[topic], s);
        assert_int_equal(rx.errors, 0);
        sal_kafka_transport.close(late);
        rx_clear(&rx);
    }
    sal_kafka_transport.close(watch);
    assert_int_equal(wrx.errors, 0);
    rx_clear(&wrx);
}

/* Take the sample of `topic` with private_seqNum `seq` (others stay);
 * NULL on timeout. */
static void *rx_take(received *r, int topic, int32_t seq, double timeout)
{
    double end = tu_now() + timeout;
    do {
        pthread_mutex_lock(&r->lock);
        for (int i = 0; i < r->n; i++) {
            void *s = r->samples[i];
            if (r->topics[i] == topic &&
                sal_sample_get_i32(&ocps->topics[topic], s, "private_seqNum") == seq) {
                memmove(&r->topics[i], &r->topics[i + 1], (size_t)(r->n - i - 1) * sizeof r->topics[0]);
                memmove(&r->samples[i], &r->samples[i + 1], (size_t)(r->n - i - 1) * sizeof r->samples[0]);
                r->n--;
                pthread_mutex_unlock(&r->lock);
                return s;
            }
        }
        pthread_mutex_unlock(&r->lock);
        usleep(1000);
    } while (tu_now() < end);
    return NULL;
}

static int matched_count(received *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->matched;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A message written as soon as a new transport's readers are ready (all
 * the command readers, as a CSC has, and the heartbeat reader once its
 * history is delivered) is read, every time: a command (its reader starts
 * at the end, of an empty topic or not) and a heartbeat. */
static void written_after_ready_is_read(void **state)
{
    kafka_env *k = *state;
    if (k == NULL) {
        skip();
    }
    enum { RUNS = 50 };
    double lat[RUNS];
    int32_t seq = 5000;
    create(k->csc, "logevent_heartbeat", false);
    write_sample(k->csc, "logevent_heartbeat", new_sample("logevent_heartbeat", seq++, "OCPS:1"));
    for (int run = 0; run < RUNS; run++) {
        received rx = {0};
        sal_transport *t = open_side(&rx);
        int nread = 0;
        for (size_t i = 0; i < ocps->ntopics; i++) {
            if (ocps->topics[i].kind == SAL_TOPIC_COMMAND) {
                create(t, ocps->topics[i].sal_name, true);
                nread++;
            }
        }
        create(t, "logevent_heartbeat", true);
        nread++;
        double end = tu_now() + WAIT_TIMEOUT;
        while (matched_count(&rx) < nread && tu_now() < end) {
            usleep(500);
        }
        assert_int_equal(matched_count(&rx), nread);
        void *h = rx_take(&rx, sal_component_find_topic(ocps, "logevent_heartbeat"), seq - 1, 1.0);
        assert_non_null(h);
        sal_sample_free(topic_of(ocps, "logevent_heartbeat"), h);
        double t0 = tu_now();
        int32_t c = seq++, b = seq++;
        write_sample(k->remote, "command_start", new_sample("command_start", c, "user@host"));
        write_sample(k->csc, "logevent_heartbeat", new_sample("logevent_heartbeat", b, "OCPS:1"));
        void *s = rx_take(&rx, sal_component_find_topic(ocps, "command_start"), c, 5.0);
        if (s != NULL) {
            sal_sample_free(topic_of(ocps, "command_start"), s);
        }
        void *s2 = rx_take(&rx, sal_component_find_topic(ocps, "logevent_heartbeat"), b, 5.0);
        if (s2 != NULL) {
            sal_sample_free(topic_of(ocps, "logevent_heartbeat"), s2);
        }
        lat[run] = tu_now() - t0;
        sal_kafka_transport.close(t);
        rx_clear(&rx);
        if (s == NULL || s2 == NULL) {
            fail_msg("run %d: %s written right after the readers were ready was not read in 5 s", run,
                     s == NULL ? "a command" : "a heartbeat");
        }
    }
    qsort(lat, RUNS, sizeof *lat, cmp_dbl);
    fprintf(
        stderr,
        "written right after a new reader was ready, %d runs: read after min %.3f, median %.3f, max %.3f s\n",
        RUNS, lat[0], lat[RUNS / 2], lat[RUNS - 1]);
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
    size_t ncodec;
    const struct CMUnitTest *codec = kafka_codec_tests(&ncodec);
    const struct CMUnitTest wire[] = {
        cmocka_unit_test(csc_and_remote),
        cmocka_unit_test(broker_outage),
        cmocka_unit_test(indexed_history),
        cmocka_unit_test(history_read_config),
        cmocka_unit_test(foreign_writer_schema),
        cmocka_unit_test(slow_schema_fetch_holds_only_its_topic),
        cmocka_unit_test(missing_topic_not_created),
        cmocka_unit_test(written_after_ready_is_read),
        cmocka_unit_test(undecodable_messages_are_told),
        cmocka_unit_test(tombstone_held_behind_unknown_schema),
        cmocka_unit_test(history_ends_at_undecodable_record),
        cmocka_unit_test(close_both),
    };
    int failed = _cmocka_run_group_tests("kafka codec", codec, ncodec, NULL, NULL);
    failed += cmocka_run_group_tests_name("kafka transport", wire, fixtures_setup, fixtures_teardown);
    curl_global_cleanup();
    return failed;
}
