/*
 * sal_inproc.h - the in-process transport: moves samples between
 * transports opened in the same process (a CSC and its Remotes in one
 * test program), as nng's inproc transport does for sockets.
 *
 * A process-wide bus holds, per topic (component name, SAL topic name and
 * DDS revCode, i.e. the DDS topic name), the readers and writers opened on
 * it. A write copies the sample (sal_sample_dup) to every reader of its
 * topic that wants its salIndex (a reader opened with index 0 takes all)
 * and hands each copy to that reader's runtime through on_sample, before
 * write returns: readers see a writer's samples in write order. Every
 * reader matches every writer of its topic, its own transport's included
 * (as DDS endpoints of one participant match), and each match or unmatch
 * is reported through on_matched as Cyclone reports it: one call per
 * endpoint pair, with the new count. Closing a transport unmatches its
 * endpoints; no callback reaches it after close returns.
 *
 * No history (keeps_history false: the runtime re-publishes events to late
 * joiners, as on DDS), no ownership (exclusive_acks false), DDS revCodes.
 * No environment is read. Callbacks run on the writing thread, under the
 * bus lock; the runtime's callbacks only queue and wake its loop.
 *
 * The bus is the one global of the transports: the transport interface
 * gives open() no context to carry an explicit bus, and a process-wide
 * bus is what "in process" means. Transports of different processes
 * never meet.
 */
#ifndef SAL_INPROC_H
#define SAL_INPROC_H

#include <stdint.h>

#include "ocps/sal_transport.h"

/* The operations of the in-process transport ("inproc"). */
extern const sal_transport_ops sal_inproc_transport;

/* Report a transport failure (on_error) to every open inproc transport of
 * component `name` with SAL index `index` (any index when -1), as a
 * broken DDS or Kafka connection would: the CSC goes to FAULT. Returns
 * how many transports were told. For tests. */
int sal_inproc_report_error(const char *name, int32_t index, const char *message);

/* The next `count` writes of topic `sal_name` (e.g. "logevent_job_result";
 * any component and index) fail with `error` (< 0): -EAGAIN as a
 * transport that cannot take them for now (Kafka's queue full while the
 * broker is away), -EIO as one that never will; count 0 stops it. For
 * tests. */
void sal_inproc_fail_writes(const char *sal_name, int count, int error);

/* The next `count` writes of topic `sal_name` reach every reader twice, as
 * Kafka delivers a message that a producer sent again after a lost ack;
 * count 0 stops it. For tests. */
void sal_inproc_repeat_writes(const char *sal_name, int count);

/* Endpoints currently on the bus (readers + writers of every topic); 0
 * once every inproc transport is closed. For tests. */
int sal_inproc_endpoints(void);

#endif
