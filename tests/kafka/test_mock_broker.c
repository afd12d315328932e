/*
 * test_mock_broker: the ocps-mock-broker fixture. Topics are pre-created
 * with 1 partition (from --topic and --topics-file), a message makes the
 * round trip through librdkafka, a message produced while broker 1 is down
 * is delivered after "up", and the process exits cleanly on quit, stdin EOF
 * and SIGTERM.
 *
 * OCPS_TEST_WRAPPER (e.g. "valgrind --error-exitcode=99 --leak-check=full")
 * is put in front of the broker's command line; a clean exit is status 0.
 */
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "test_util.h"

#ifndef OCPS_MOCK_BROKER
#define OCPS_MOCK_BROKER "ocps-mock-broker"
#endif

#define START_TIMEOUT 30.0 /* seconds; generous for valgrind */
#define MAX_ARGS 32

extern char **environ;

/* ---- the broker process, with pipes on stdin and stdout ---- */

typedef struct child {
    int pid;
    int in;        /* the child's stdin */
    int out;       /* the child's stdout */
    char *wrapper; /* strtok'd copy of OCPS_TEST_WRAPPER */
} child;

/* argv = OCPS_TEST_WRAPPER words + OCPS_MOCK_BROKER + args (NULL-ended). */
static void build_argv(child *ch, char **argv, char *const args[])
{
    int n = 0;
    const char *w = getenv("OCPS_TEST_WRAPPER");
    ch->wrapper = strdup(w != NULL ? w : "");
    char *save;
    for (char *t = strtok_r(ch->wrapper, " ", &save); t != NULL && n < MAX_ARGS / 2;
         t = strtok_r(NULL, " ", &save)) {
        argv[n++] = t;
    }
    argv[n++] = OCPS_MOCK_BROKER;
    for (int i = 0; args[i] != NULL && n < MAX_ARGS - 1; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
}

static void child_start(child *ch, char *const args[])
{
    char *argv[MAX_ARGS];
    memset(ch, 0, sizeof *ch);
    build_argv(ch, argv, args);
    ch->pid = tu_spawn_piped(argv, &ch->in, &ch->out);
    assert_true(ch->pid > 0);
}

/* The next line of the child's stdout without its '\n' (malloc'd), or NULL
 * on EOF or timeout. */
static char *child_read_line(child *ch, double timeout)
{
    char line[4096];
    return tu_read_line(ch->out, line, sizeof line, timeout) == 0 ? strdup(line) : NULL;
}

/* Send one command; returns its reply line (malloc'd) or NULL. */
static char *child_command(child *ch, const char *cmd)
{
    size_t n = strlen(cmd);
    if (write(ch->in, cmd, n) != (ssize_t)n || write(ch->in, "\n", 1) != 1) {
        return NULL;
    }
    return child_read_line(ch, START_TIMEOUT);
}

static void expect_reply(child *ch, const char *cmd, const char *want_prefix)
{
    char *line = child_command(ch, cmd);
    assert_non_null(line);
    if (strncmp(line, want_prefix, strlen(want_prefix)) != 0) {
        fail_msg("'%s' -> '%s', expected '%s...'", cmd, line, want_prefix);
    }
    free(line);
}

/* The bootstrap servers from the "BOOTSTRAP ..." line (malloc'd). */
static char *child_bootstrap(child *ch)
{
    char *line = child_read_line(ch, START_TIMEOUT);
    assert_non_null(line);
    assert_true(strncmp(line, "BOOTSTRAP 127.0.0.1:", 20) == 0);
    char *servers = strdup(line + 10);
    free(line);
    return servers;
}

/* Close our ends and wait for the exit status. */
static int child_finish(child *ch, double timeout)
{
    if (ch->in >= 0) {
        close(ch->in);
    }
    close(ch->out);
    free(ch->wrapper);
    int rc = tu_wait_exit(ch->pid, timeout);
    if (rc < 0) {
        tu_kill(ch->pid);
    }
    return rc;
}

/* ---- Kafka clients ---- */

/* What a producer saw (its opaque). */
typedef struct deliveries {
    int ok;
    int failed;
    int errors; /* client errors, e.g. "all brokers down" */
} deliveries;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    deliveries *d = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        d->ok++;
    } else {
        d->failed++;
    }
}

/* Connection errors are expected during the outage: count them (when the
 * handle has a deliveries opaque) instead of logging them. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)err;
    (void)reason;
    deliveries *d = opaque;
    if (d != NULL) {
        d->errors++;
    }
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fail_msg("%s=%s: %s", name, value, err);
    }
}

static rd_kafka_conf_t *base_conf(const char *bootstrap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "reconnect.backoff.ms", "20");
    set(conf, "reconnect.backoff.max.ms", "200");
    set(conf, "log_level", "2"); /* connection failures are logged at 3 */
    rd_kafka_conf_set_error_cb(conf, on_error);
    return conf;
}

static rd_kafka_t *new_producer(const char *bootstrap, deliveries *d)
{
    char err[256];
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    set(conf, "linger.ms", "0");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, d);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(rk);
    return rk;
}

/* A consumer with partition 0 of topic assigned from the beginning (no
 * group join: the mock's first join takes 3 s). */
static rd_kafka_t *new_consumer(const char *bootstrap, const char *topic)
{
    char err[256];
    char group[64];
    snprintf(group, sizeof group, "ocps-test-%d", (int)getpid());
    rd_kafka_conf_t *conf = base_conf(bootstrap);
    set(conf, "group.id", group); /* required by rd_kafka_assign; never joined */
    set(conf, "enable.auto.commit", "false");
    set(conf, "fetch.wait.max.ms", "10"); /* the mock holds empty fetches this long */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    return rk;
}

static void close_consumer(rd_kafka_t *rk)
{
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static void produce(rd_kafka_t *rk, const char *topic, const char *text)
{
    rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                              RD_KAFKA_V_VALUE((void *)text, strlen(text)),
                                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* The next message's payload (malloc'd), or NULL after timeout seconds. */
static char *consume(rd_kafka_t *rk, double timeout)
{
    double end = tu_now() + timeout;
    while (tu_now() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        if (m == NULL) {
            continue;
        }
        char *text = m->err ? NULL : strndup(m->payload, m->len);
        rd_kafka_message_destroy(m);
        if (text != NULL) {
            return text;
        }
    }
    return NULL;
}

/* Partition count of topic per the cluster's metadata, or -1 if absent. */
static int partition_count(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md;
    assert_int_equal(rd_kafka_metadata(rk, 1, NULL, &md, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int n = -1;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) == 0) {
            n = md->topics[i].partition_cnt;
        }
    }
    rd_kafka_metadata_destroy(md);
    return n;
}

/* ---- tests ---- */

static void expect_message(rd_kafka_t *consumer, const char *want, double timeout)
{
    char *got = consume(consumer, timeout);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* Produce and consume on a pre-created topic, then across an outage. */
static void test_round_trip_and_outage(void **state)
{
    (void)state;
    char *dir = tu_make_temp_dir();
    char *file = tu_path_join(dir, "topics.txt");
    const char topics[] = "# topics\nlsst.test.file_one\n\n  lsst.test.file_two  \n";
    assert_int_equal(tu_write_file(file, topics, sizeof topics - 1), 0);
    child ch;
    child_start(&ch, (char *[]){"--brokers", "1", "--topic", "lsst.test.rt", "--topics-file", file, NULL});
    char *bootstrap = child_bootstrap(&ch);

    deliveries d = {0, 0, 0};
    rd_kafka_t *prod = new_producer(bootstrap, &d);
    assert_int_equal(partition_count(prod, "lsst.test.rt"), 1);
    assert_int_equal(partition_count(prod, "lsst.test.file_one"), 1);
    assert_int_equal(partition_count(prod, "lsst.test.file_two"), 1);
    rd_kafka_t *cons = new_consumer(bootstrap, "lsst.test.rt");

    produce(prod, "lsst.test.rt", "first");
    assert_int_equal(rd_kafka_flush(prod, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(d.ok, 1);
    expect_message(cons, "first", 5.0);

    expect_reply(&ch, "down 1", "OK");
    produce(prod, "lsst.test.rt", "during outage");
    rd_kafka_poll(prod, 500);
    assert_int_equal(d.ok + d.failed, 1); /* held back, not failed */
    assert_true(d.errors > 0);            /* the client saw the outage */
    assert_null(consume(cons, 0.3));

    expect_reply(&ch, "up 1", "OK");
    double t0 = tu_now();
    assert_int_equal(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(d.ok, 2);
    expect_message(cons, "during outage", 10.0);
    print_message("outage message delivered %.2f s after up\n", tu_now() - t0);

    close_consumer(cons);
    rd_kafka_destroy(prod);
    expect_reply(&ch, "quit", "OK");
    assert_int_equal(child_finish(&ch, START_TIMEOUT), 0);
    free(bootstrap);
    tu_remove_tree(dir);
    free(file);
    free(dir);
}

/* create/down/up replies, errors, and exit on stdin EOF. */
static void test_commands_and_eof(void **state)
{
    (void)state;
    child ch;
    child_start(&ch, (char *[]){"--brokers", "2", NULL});
    char *bootstrap = child_bootstrap(&ch);
    assert_non_null(strchr(bootstrap, ','));

    expect_reply(&ch, "create lsst.test.three 3", "OK");
    expect_reply(&ch, "create lsst.test.one", "OK");
    expect_reply(&ch, "create lsst.test.one", "ERR ");
    expect_reply(&ch, "create bad/name", "ERR ");
    expect_reply(&ch, "create lsst.test.x zero", "ERR ");
    expect_reply(&ch, "create", "ERR ");
    expect_reply(&ch, "down 9", "ERR ");
    expect_reply(&ch, "up", "ERR ");
    expect_reply(&ch, "down 2", "OK");
    expect_reply(&ch, "up 2", "OK");
    expect_reply(&ch, "frobnicate", "ERR ");

    deliveries d = {0, 0, 0};
    rd_kafka_t *prod = new_producer(bootstrap, &d);
    assert_int_equal(partition_count(prod, "lsst.test.three"), 3);
    assert_int_equal(partition_count(prod, "lsst.test.one"), 1);
    rd_kafka_destroy(prod);

    close(ch.in);
    ch.in = -1;
    assert_int_equal(child_finish(&ch, START_TIMEOUT), 0);
    free(bootstrap);
}

static void test_sigterm(void **state)
{
    (void)state;
    child ch;
    child_start(&ch, (char *[]){NULL});
    free(child_bootstrap(&ch));
    kill(ch.pid, SIGTERM);
    assert_int_equal(child_finish(&ch, START_TIMEOUT), 0);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(tu_run((char *[]){OCPS_MOCK_BROKER, "--brokers", "0", NULL}, &out), 2);
    assert_non_null(strstr(out, "usage"));
    free(out);
    assert_int_equal(tu_run((char *[]){OCPS_MOCK_BROKER, "--topics-file", "/nonexistent/x", NULL}, &out), 2);
    free(out);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_outage),
        cmocka_unit_test(test_commands_and_eof),
        cmocka_unit_test(test_sigterm),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
