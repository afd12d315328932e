/*
 * sal_remote.h - the commanding side of SAL (salobj's Remote): command
 * writers with salobj's per-command seqNum ranges, an ackcmd reader that
 * matches acks by seqNum, identity and origin and honours INPROGRESS
 * timeouts, and event/telemetry readers that keep the latest sample (late
 * joiners included). Runs on a libuv loop like the rest of the runtime.
 */
#ifndef SAL_REMOTE_H
#define SAL_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "ocps/sal.h"
#include "ocps/sal_protocol.h"

typedef struct sal_remote sal_remote;

/* Progress of a command: every ack (final=false for INPROGRESS) and, on
 * timeout, a synthetic CMD_NOACK with final=true. `result` is valid only
 * during the call. */
typedef void (*sal_ack_cb)(void *arg, int ack, int error, const char *result, double timeout, bool final);

/* Open a Remote of `comp` index `index` (0 = all indices) over
 * `transport`; identity NULL means "<user>@<host>". */
int sal_remote_open(sal_remote **out, uv_loop_t *loop, const sal_component_info *comp, int32_t index,
                    const sal_transport_ops *transport, const char *identity, char *err, size_t errlen);

/* sal_remote_open whose transport waits at most open_timeout seconds for
 * what it connects to (a Kafka broker; 0: the transport's own bound): a
 * commander bounds it by how long it waits for the CSC. */
int sal_remote_open_within(sal_remote **out, uv_loop_t *loop, const sal_component_info *comp, int32_t index,
                           const sal_transport_ops *transport, const char *identity, double open_timeout,
                           char *err, size_t errlen);

/* Read an event or telemetry topic; cb (may be NULL) runs for each sample
 * and the latest is kept for sal_remote_last. */
int sal_remote_subscribe(sal_remote *r, const char *sal_name, sal_sample_cb cb, void *arg, char *err,
                         size_t errlen);

/* The latest sample read on `sal_name`, or NULL. */
const void *sal_remote_last(const sal_remote *r, const char *sal_name);

/* Prepare the writer of command `name` ("start") early, so discovery is
 * done by the time it is used. */
int sal_remote_prepare(sal_remote *r, const char *name, char *err, size_t errlen);

/* Has the CSC's reader of command `name` and its ackcmd writer been
 * discovered (over DDS 0.25 s ago or more, so that the CSC has also
 * discovered this writer and ackcmd reader)? Commands written before that
 * may be lost. */
bool sal_remote_ready(const sal_remote *r, const char *name);

/* A new sample of command `name` with empty fields (caller frees with
 * sal_sample_free on the topic, or passes it to sal_remote_command). */
void *sal_remote_new_command(sal_remote *r, const char *name);

/* Topic of command `name` or -1. */
int sal_remote_command_topic(const sal_remote *r, const char *name);

/* Send command `name`; `sample` stays the caller's. The final outcome is
 * reported through cb; `timeout` seconds without a final ack (extended by
 * INPROGRESS timeouts) gives CMD_NOACK. Writes the seqNum used into
 * *seqnum if not NULL. */
int sal_remote_command(sal_remote *r, const char *name, void *sample, double timeout, sal_ack_cb cb,
                       void *arg, int32_t *seqnum, char *err, size_t errlen);

/* The CSC's send time (private_sndStamp, TAI seconds) of the ack a
 * sal_ack_cb of `r` is being called with; 0 outside such a call and for a
 * CMD_NOACK of a timeout. */
double sal_remote_ack_sent(const sal_remote *r);

/* The runtime under the Remote. */
sal *sal_remote_sal(sal_remote *r);

/* Close (pending commands are dropped without callbacks): `r` is freed on
 * the loop once its runtime has closed, then cb(arg) runs (cb may be
 * NULL). `r` must not be used after this call. */
void sal_remote_close(sal_remote *r, sal_close_cb cb, void *arg);

#endif
