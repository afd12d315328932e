/* sal_kafka_config.c - environment and librdkafka settings; see sal_kafka_config.h. */
#include "sal_kafka_config.h"
#include "ocps/sal_env.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ocps/yaml_json.h"

/* A copy of getenv(name), or of def when unset or empty (def may be NULL). */
static char *env_dup(const char *name, const char *def, bool *oom)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        v = def;
    }
    if (v == NULL) {
        return NULL;
    }
    char *copy = strdup(v);
    if (copy == NULL) {
        *oom = true;
    }
    return copy;
}

static int read_replication(sal_kafka_env *e, char *err, size_t errlen)
{
    long n;
    int rc =
        sal_env_int("LSST_KAFKA_REPLICATION_FACTOR", 1, 1, 32767, "a replication factor", &n, err, errlen);
    e->replication = (int)n;
    return rc;
}

int sal_kafka_env_read(sal_kafka_env *e, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    bool oom = false;
    e->subname = env_dup("LSST_TOPIC_SUBNAME", NULL, &oom);
    if (e->subname == NULL && !oom) {
        snprintf(err, errlen,
                 "LSST_TOPIC_SUBNAME must be set (the Kafka topic sub-name, e.g. sal: topics are "
                 "lsst.<subname>.<Component>.<topic>)");
        return -EINVAL;
    }
    e->broker = env_dup("LSST_KAFKA_BROKER_ADDR", "broker:29092", &oom);
    e->registry_url = env_dup("LSST_SCHEMA_REGISTRY_URL", "http://schema-registry:8081", &oom);
    const char *user = getenv("LSST_KAFKA_SECURITY_USERNAME");
    const char *pass = getenv("LSST_KAFKA_SECURITY_PASSWORD");
    if (user != NULL && *user != '\0' && pass != NULL && *pass != '\0') {
        e->username = env_dup("LSST_KAFKA_SECURITY_USERNAME", NULL, &oom);
        e->password = env_dup("LSST_KAFKA_SECURITY_PASSWORD", NULL, &oom);
        e->protocol = env_dup("LSST_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT", &oom);
        e->mechanism = env_dup("LSST_KAFKA_SECURITY_MECHANISM", "SCRAM-SHA-512", &oom);
    }
    e->acks = env_dup("LSST_KAFKA_PRODUCER_WAIT_ACKS", "1", &oom);
    e->broker_yaml = env_dup("LSST_KAFKA_BROKER_CLIENT_CONFIGURATION", NULL, &oom);
    e->producer_yaml = env_dup("LSST_KAFKA_PRODUCER_CONFIGURATION", NULL, &oom);
    e->consumer_yaml = env_dup("LSST_KAFKA_CONSUMER_CONFIGURATION", NULL, &oom);
    int rc = oom ? -ENOMEM : read_replication(e, err, errlen);
    if (oom) {
        snprintf(err, errlen, "out of memory");
    }
    if (rc != 0) {
        sal_kafka_env_fini(e);
    }
    return rc;
}

void sal_kafka_env_fini(sal_kafka_env *e)
{
    char **all[] = {&e->subname,     &e->broker,        &e->registry_url, &e->username,
                    &e->password,    &e->protocol,      &e->mechanism,    &e->acks,
                    &e->broker_yaml, &e->producer_yaml, &e->consumer_yaml};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        free(*all[i]);
        *all[i] = NULL;
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, const char *from, char *err,
                    size_t errlen)
{
    char msg[256];
    if (rd_kafka_conf_set(conf, key, value, msg, sizeof msg) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "Kafka setting %s=%s%s%s: %s", key, value, from ? " from " : "",
                 from ? from : "", msg);
        return -EINVAL;
    }
    return 0;
}

/* A YAML scalar as librdkafka wants it: ints, floats and bools as text. */
static int yaml_value_text(json_t *v, char *buf, size_t len)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(buf, len, "%s", json_string_value(v));
        return 0;
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    case JSON_REAL:
        snprintf(buf, len, "%.17g", json_real_value(v));
        return 0;
    case JSON_TRUE:
        snprintf(buf, len, "true");
        return 0;
    case JSON_FALSE:
        snprintf(buf, len, "false");
        return 0;
    default:
        return -EINVAL;
    }
}

static int conf_merge_yaml(rd_kafka_conf_t *conf, const char *path, const char *var, char *err, size_t errlen)
{
    if (path == NULL) {
        return 0;
    }
    char why[1024];
    json_t *root = yaml_json_load_file(path, why, sizeof why);
    if (root == NULL) {
        snprintf(err, errlen, "%s: %s", var, why); /* which setting named the file (why names it) */
        return -EINVAL;
    }
    int rc = 0;
    if (!json_is_object(root) && !json_is_null(root)) {
        snprintf(err, errlen, "%s: expected a mapping of librdkafka settings", path);
        rc = -EINVAL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(json_is_object(root) ? root : NULL, key, v)
    {
        char text[1024];
        if (rc != 0) {
            break;
        }
        if (yaml_value_text(v, text, sizeof text) != 0) {
            snprintf(err, errlen, "%s: %s must be a string, number or boolean", path, key);
            rc = -EINVAL;
        } else {
            rc = conf_set(conf, key, text, path, err, errlen);
        }
    }
    json_decref(root);
    return rc;
}

/* salobj's get_broker_client_configuration(). */
static int conf_broker_client(rd_kafka_conf_t *conf, const sal_kafka_env *e, char *err, size_t errlen)
{
    int rc = conf_set(conf, "bootstrap.servers", e->broker, "LSST_KAFKA_BROKER_ADDR", err, errlen);
    if (rc == 0 && e->username != NULL) {
        const char *sasl[][3] = {
            {"sasl.username", e->username, "LSST_KAFKA_SECURITY_USERNAME"},
            {"sasl.password", e->password, "LSST_KAFKA_SECURITY_PASSWORD"},
            {"security.protocol", e->protocol, "LSST_KAFKA_SECURITY_PROTOCOL"},
            {"sasl.mechanism", e->mechanism, "LSST_KAFKA_SECURITY_MECHANISM"},
        };
        for (size_t i = 0; rc == 0 && i < sizeof sasl / sizeof sasl[0]; i++) {
            rc = conf_set(conf, sasl[i][0], sasl[i][1], sasl[i][2], err, errlen);
        }
    }
    return rc == 0
               ? conf_merge_yaml(conf, e->broker_yaml, "LSST_KAFKA_BROKER_CLIENT_CONFIGURATION", err, errlen)
               : rc;
}

rd_kafka_conf_t *sal_kafka_conf_new(const sal_kafka_env *e, sal_kafka_role role, const char *const *builtin,
                                    char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && builtin != NULL && builtin[i] != NULL; i += 2) {
        rc = conf_set(conf, builtin[i], builtin[i + 1], NULL, err, errlen);
    }
    if (rc == 0) {
        bool producer = role == SAL_KAFKA_PRODUCER;
        rc = conf_merge_yaml(conf, producer ? e->producer_yaml : e->consumer_yaml,
                             producer ? "LSST_KAFKA_PRODUCER_CONFIGURATION"
                                      : "LSST_KAFKA_CONSUMER_CONFIGURATION",
                             err, errlen);
    }
    if (rc == 0) {
        rc = conf_broker_client(conf, e, err, errlen);
    }
    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

rd_kafka_conf_t *sal_kafka_client_conf(const sal_kafka_env *e, sal_kafka_role role, const char *group,
                                       char *err, size_t errlen)
{
    /* key, value pairs; the YAML files and broker-client settings may override them.
     * reconnect.backoff.max.ms 1000 (librdkafka: 10000): after a broker
     * outage clients are back within about a second, not ten (a 5 s outage
     * left watchers 16 s without a heartbeat).
     * message.timeout.ms 0 (librdkafka and salobj: 300000): a message waits
     * for a broker that is away as long as it takes, not 5 minutes (then
     * lost), bounded by the queue (100000 messages, 128 MiB; a full queue
     * fails the write, which is logged).
     * max.in.flight.requests.per.connection 1 (librdkafka: 1000000): with
     * acks=1 and no idempotence (salobj's), a retried request could land
     * after a newer one, and a topic's last record (what a late joiner
     * reads: summaryState) would be stale; messages queued meanwhile go in
     * the next request, so a burst still leaves in few of them.
     * fetch.wait.max.ms is left at librdkafka's 500 (salobj's too): a broker
     * answers a Fetch as soon as data arrives, so a lower value buys no
     * latency and costs an idle consumer a Fetch per broker that often. The
     * tests' mock broker is not woken by new data: their fixtures set 10
     * through LSST_KAFKA_CONSUMER_CONFIGURATION (tests/kafka/mock_consumer.yaml). */
    const char *const producer[] = {"acks",
                                    e->acks,
                                    "max.in.flight.requests.per.connection",
                                    "1",
                                    "linger.ms",
                                    "0",
                                    "message.timeout.ms",
                                    "0",
                                    "queue.buffering.max.messages",
                                    "100000",
                                    "queue.buffering.max.kbytes",
                                    "131072",
                                    "allow.auto.create.topics",
                                    "false",
                                    "log.connection.close",
                                    "false",
                                    "reconnect.backoff.max.ms",
                                    "1000",
                                    NULL};
    const char *const consumer[] = {"group.id",
                                    group,
                                    "enable.auto.commit",
                                    "false",
                                    "auto.offset.reset",
                                    "earliest",
                                    "allow.auto.create.topics",
                                    "false",
                                    "enable.partition.eof",
                                    "false",
                                    "log.connection.close",
                                    "false",
                                    "reconnect.backoff.max.ms",
                                    "1000",
                                    NULL};
    return sal_kafka_conf_new(e, role, role == SAL_KAFKA_PRODUCER ? producer : consumer, err, errlen);
}
