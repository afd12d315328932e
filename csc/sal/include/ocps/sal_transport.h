/*
 * sal_transport.h - the interface every SAL transport (DDS, Kafka)
 * implements. The runtime (sal.c) owns all SAL logic; a transport only
 * moves samples of the generated topic structs to and from the wire.
 *
 * Threading: a transport may call the callbacks from its own threads. The
 * runtime queues what it is given and handles it on its event loop.
 */
#ifndef SAL_TRANSPORT_H
#define SAL_TRANSPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ocps/sal_interface.h"

typedef struct sal_transport sal_transport;

/* What went wrong in a transport, counted where it happens (any thread:
 * atomic, relaxed order is enough). Owned by the runtime, which passes it
 * in sal_transport_cbs and reads it for the CSC's /metrics. */
typedef struct sal_transport_stats {
    atomic_ullong write_failures;    /* write() refused a sample (nothing sent) */
    atomic_ullong delivery_failures; /* accepted samples the wire lost later (Kafka delivery reports) */
    atomic_ullong undecodable;       /* received messages dropped as undecodable (Kafka) */
    atomic_ullong read_errors;       /* failed reads of received samples (DDS take) */
    atomic_ullong connection_errors; /* client errors: broker down, connection lost (Kafka) */
} sal_transport_stats;

/* Add one to a counter of `stats` (NULL: nothing). */
#define SAL_TRANSPORT_COUNT(stats, field)                                                                    \
    do {                                                                                                     \
        if ((stats) != NULL) {                                                                               \
            atomic_fetch_add_explicit(&(stats)->field, 1, memory_order_relaxed);                             \
        }                                                                                                    \
    } while (0)

/* Callbacks from a transport into the runtime; callable from any thread. */
typedef struct sal_transport_cbs {
    /* A sample arrived for `topic` (index into comp->topics). Ownership of
     * `sample` (allocated as by sal_sample_new) passes to the runtime. */
    void (*on_sample)(void *arg, int topic, void *sample);
    /* The number of remote endpoints matched with our writer (is_writer)
     * or reader of `topic` changed: current count and the change. A
     * transport without discovery (Kafka) reports 1 once the endpoint is
     * usable; for a reader with a history read, once that history has
     * been delivered (after its samples). */
    void (*on_matched)(void *arg, int topic, bool is_writer, int32_t current, int32_t change);
    /* The transport failed in a way the CSC must report (FAULT). */
    void (*on_error)(void *arg, const char *message);
    void *arg;
    /* Counters the transport fills (NULL: none kept); outlives the transport. */
    sal_transport_stats *stats;
    /* Something an operator should know that needs no FAULT, e.g. a
     * message dropped as undecodable (NULL: not reported); the transport
     * limits how often. */
    void (*on_warning)(void *arg, const char *message);
    /* Seconds open may wait for what it connects to (Kafka: the broker's
     * metadata, each schema-registry request) before it gives up with
     * -EHOSTUNREACH; 0: the transport's own bound (Kafka: 10 s). Not a
     * callback: a setting of this open. */
    double open_timeout;
} sal_transport_cbs;

/* Which revCode a transport's peers expect in private_revCode. */
typedef enum sal_revcode_kind { SAL_REVCODE_DDS, SAL_REVCODE_AVRO } sal_revcode_kind;

/* The operations of one transport. Every function returns 0 or a negative
 * errno-style code and writes a message into err. */
typedef struct sal_transport_ops {
    const char *name;
    sal_revcode_kind revcode;
    /* Readers get the last event samples from the transport itself (Kafka's
     * compacted topics), so the runtime must not re-publish them when a
     * reader appears. */
    bool keeps_history;
    /* ackcmd readers use EXCLUSIVE ownership (DDS, as ts_ddsconfig): while
     * the writer of a killed CSC is still alive for them (until its lease
     * expires), they drop the acks of its restarted successor, so an ack
     * for a command of the earlier run must be repeated to be seen. */
    bool exclusive_acks;
    /* A CSC fills softwareVersions' salVersion and openSpliceVersion, as
     * salobj 7 does over DDS; salobj 8 (Kafka) leaves them empty. */
    bool sal_versions;
    /* A writer matched here is not yet matched at the peer (DDS: each side
     * learns of the other from its own discovery messages, and a volatile
     * reader drops a sample from a writer it does not know yet), so a
     * Remote waits briefly after the first match before its first write. */
    bool match_needs_grace;
    /* The runtime may run its callbacks on the thread that delivers a
     * sample (see sal_gate.h): delivery happens outside the transport's
     * locks, and writing from there is allowed. */
    bool inline_delivery;
    /* Bytes of private_identity the wire carries whole: SAL_IDENTITY_MAX
     * (Kafka's unbounded string); a longer identity is refused at open. 0:
     * the DDS IDL's string<128>, a longer identity cut to it at open. */
    size_t identity_max;
    /* The library under it and its version ("cyclonedds=0.10.2") into buf,
     * for softwareVersions.subsystemVersions; NULL: none. */
    void (*library_version)(char *buf, size_t len);
    /* Connect for `comp` with SAL index `index` (0: all indices);
     * -EHOSTUNREACH when what it connects to cannot be reached now (it may
     * come back: a CSC tries again, sal_csc_options.open_retry). */
    int (*open)(sal_transport **out, const sal_component_info *comp, int32_t index,
                const sal_transport_cbs *cbs, char *err, size_t errlen);
    /* Start delivering samples of `topic` through cbs->on_sample. */
    int (*reader_create)(sal_transport *t, int topic, char *err, size_t errlen);
    /* Prepare to write `topic`. */
    int (*writer_create)(sal_transport *t, int topic, char *err, size_t errlen);
    /* Write a sample; must not block for long (the runtime's loop calls it). */
    int (*write)(sal_transport *t, int topic, const void *sample, char *err, size_t errlen);
    /* Flush and disconnect; no callbacks run after it returns. */
    void (*close)(sal_transport *t);
} sal_transport_ops;

/* The transports built into this binary, by name ("dds", "kafka"); NULL
 * if unknown. Defined in csc/transport/transports.c. */
const sal_transport_ops *sal_transport_find(const char *name);

/* Comma-separated names of the built-in transports, for usage messages. */
const char *sal_transport_names(void);

#endif
