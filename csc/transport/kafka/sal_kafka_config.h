/*
 * sal_kafka_config.h - internal to the Kafka transport: the environment
 * salobj 8 reads (ts_salobj sal_info.py) and the librdkafka configurations
 * built from it.
 *
 * | variable                               | default                    |
 * |----------------------------------------|----------------------------|
 * | LSST_TOPIC_SUBNAME                     | required                   |
 * | LSST_KAFKA_BROKER_ADDR                 | broker:29092               |
 * | LSST_SCHEMA_REGISTRY_URL               | http://schema-registry:8081|
 * | LSST_KAFKA_SECURITY_USERNAME/_PASSWORD | unset (SASL only if both)  |
 * | LSST_KAFKA_SECURITY_PROTOCOL           | SASL_PLAINTEXT             |
 * | LSST_KAFKA_SECURITY_MECHANISM          | SCRAM-SHA-512              |
 * | LSST_KAFKA_REPLICATION_FACTOR          | 1                          |
 * | LSST_KAFKA_PRODUCER_WAIT_ACKS          | 1                          |
 * | LSST_KAFKA_BROKER_CLIENT_CONFIGURATION | YAML for every client      |
 * | LSST_KAFKA_PRODUCER_CONFIGURATION      | YAML for the producer      |
 * | LSST_KAFKA_CONSUMER_CONFIGURATION      | YAML for the consumer      |
 *
 * Merge order as salobj: built-in settings, then the producer/consumer
 * YAML, then the broker-client settings (bootstrap, SASL, broker-client
 * YAML), which win.
 */
#ifndef SAL_KAFKA_CONFIG_H
#define SAL_KAFKA_CONFIG_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* The environment, copied at open. Free with sal_kafka_env_fini. */
typedef struct sal_kafka_env {
    char *subname;
    char *broker;
    char *registry_url;
    char *username; /* NULL unless both username and password are set */
    char *password;
    char *protocol;
    char *mechanism;
    int replication;
    char *acks;
    char *broker_yaml; /* paths, or NULL */
    char *producer_yaml;
    char *consumer_yaml;
} sal_kafka_env;

/* Read and check the environment. Fails with a message naming the
 * variable (e.g. LSST_TOPIC_SUBNAME unset). */
int sal_kafka_env_read(sal_kafka_env *e, char *err, size_t errlen);
void sal_kafka_env_fini(sal_kafka_env *e);

/* Which client a configuration is for. */
typedef enum sal_kafka_role { SAL_KAFKA_PRODUCER, SAL_KAFKA_CONSUMER } sal_kafka_role;

/* A librdkafka configuration: `builtin` (NULL-terminated key, value
 * pairs), then the role's YAML file, then the broker-client settings.
 * NULL with a message on a bad YAML file or a property librdkafka
 * rejects. */
rd_kafka_conf_t *sal_kafka_conf_new(const sal_kafka_env *e, sal_kafka_role role, const char *const *builtin,
                                    char *err, size_t errlen);

/* The configuration of the transport's producer or consumer: its own
 * settings (acks from the environment, group.id `group` for the consumer;
 * librdkafka's defaults otherwise, fetch.wait.max.ms included) merged
 * as sal_kafka_conf_new does. NULL with a message on failure. */
rd_kafka_conf_t *sal_kafka_client_conf(const sal_kafka_env *e, sal_kafka_role role, const char *group,
                                       char *err, size_t errlen);

#endif
