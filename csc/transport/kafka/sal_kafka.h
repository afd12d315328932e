/*
 * sal_kafka.h - the Kafka transport, wire-compatible with ts_salobj 8
 * (librdkafka + schema registry over libcurl + Avro).
 *
 * - Topics lsst.<LSST_TOPIC_SUBNAME>.<Component>.<sal_name>, schemas under
 *   <topic>-value; every topic of the component is created at open when
 *   missing (1 partition, LSST_KAFKA_REPLICATION_FACTOR, compacted events);
 *   a broker that cannot create topics only makes the missing ones fail
 *   when a reader or writer of them is created.
 * - Each reader's and writer's schema is registered at its creation (HTTP,
 *   blocking for at most the registry timeout); messages are framed with
 *   the returned id and keyed as salobj keys them.
 * - Readers are assigned partitions directly (no consumer group): commands,
 *   ackcmd and telemetry from the high watermark, events from the last
 *   record (indexed components: the last LSST_MAX_HISTORY_READ records, or
 *   LSST_HISTORY_READ_CONFIG's entry, keeping the newest per salIndex), so
 *   late joiners see current state.
 * - One background thread polls the consumer and the producer and calls
 *   on_sample, on_error (delivery failures, once until a delivery succeeds)
 *   from there; on_matched is called when a reader is assigned or a writer
 *   is ready (Kafka has no discovery).
 * - write never waits for the broker: a full local queue is an error;
 *   during a broker outage librdkafka keeps and retries messages for 5 min.
 *
 * Environment: see sal_kafka_config.h.
 */
#ifndef SAL_KAFKA_H
#define SAL_KAFKA_H

#include "ocps/sal_transport.h"

extern const sal_transport_ops sal_kafka_transport;

#endif
