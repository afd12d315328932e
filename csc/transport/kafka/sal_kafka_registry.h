/*
 * sal_kafka_registry.h - internal to the Kafka transport: the few calls of
 * the Confluent schema-registry REST API salobj 8 makes (libcurl).
 *
 * Calls block for at most the registry timeout (10 s, or the bound a call
 * is given) and may be made from several threads; they are serialised on
 * one connection.
 */
#ifndef SAL_KAFKA_REGISTRY_H
#define SAL_KAFKA_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

typedef struct sal_kafka_registry sal_kafka_registry;

/* A client of the registry at `url` (e.g. http://schema-registry:8081). */
int sal_kafka_registry_new(sal_kafka_registry **out, const char *url, char *err, size_t errlen);
void sal_kafka_registry_free(sal_kafka_registry *r);

/* POST /subjects/<subject>/versions {"schema": <schema>}: register (or
 * find) the schema and return its global id, waiting at most timeout_ms
 * (0: the registry timeout, 10 s). Any HTTP error, including 409
 * (incompatible) and 422 (invalid), fails with the registry's message; no
 * answer in time fails with -EHOSTUNREACH. */
int sal_kafka_registry_register(sal_kafka_registry *r, const char *subject, const char *schema,
                                long timeout_ms, int32_t *id, char *err, size_t errlen);

/* GET /schemas/ids/<id>: the schema text (malloc'd, caller frees). */
int sal_kafka_registry_fetch(sal_kafka_registry *r, int32_t id, char **schema, char *err, size_t errlen);

/* Make the request in progress, and every later one, fail at once (from
 * any thread): for closing while a request may be waiting on the registry. */
void sal_kafka_registry_cancel(sal_kafka_registry *r);

#endif
