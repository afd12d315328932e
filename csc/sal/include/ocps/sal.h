/*
 * sal.h - the SAL runtime: one `sal` per component instance per process
 * (salobj's SalInfo). It creates readers and writers over a transport,
 * fills the private fields of every sample it writes (revCode, TAI
 * sndStamp, seqNum, identity, origin, salIndex), writes events only when
 * they changed unless forced, filters what it reads by SAL index, and runs
 * every callback on its libuv loop. Not thread-safe: use it from the loop.
 */
#ifndef SAL_H
#define SAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "ocps/sal_gate.h"

#include "ocps/sal_interface.h"
#include "ocps/sal_sample.h"
#include "ocps/sal_time.h"
#include "ocps/sal_transport.h"

typedef struct sal sal;

/* Called on the loop for each sample read; `sample` is valid only during
 * the call (copy it with sal_sample_dup to keep it). */
typedef void (*sal_sample_cb)(void *arg, int topic, const void *sample);

/* As sal_sample_cb, but the callback owns `sample` and frees it with
 * sal_sample_free when done (for readers that keep what they read). */
typedef void (*sal_sample_keep_cb)(void *arg, int topic, void *sample);

/* Called on the loop when a transport reports a fatal problem. */
typedef void (*sal_error_cb)(void *arg, const char *message);

/* Write flags. */
#define SAL_WRITE_FORCE 1u       /* write an event even if unchanged */
#define SAL_WRITE_KEEP_SEQNUM 2u /* keep the caller's private_seqNum (commands, ackcmd) */

/* Open a runtime for `comp` with SAL index `index` on `loop`. identity NULL
 * means "<Name>" or "<Name>:<index>" (a CSC); a commander passes user@host.
 * A longer identity than the transport carries (identity_max) is refused
 * on Kafka (-E2BIG, over SAL_IDENTITY_MAX bytes) and cut to 128 bytes on
 * DDS, as before.
 * Returns 0 or a negative code with a message in err. */
int sal_open(sal **out, uv_loop_t *loop, const sal_component_info *comp, int32_t index,
             const sal_transport_ops *transport, const char *identity, char *err, size_t errlen);

/* sal_open whose transport waits at most open_timeout seconds for what it
 * connects to (sal_transport_cbs.open_timeout; 0: the transport's own). */
int sal_open_within(sal **out, uv_loop_t *loop, const sal_component_info *comp, int32_t index,
                    const sal_transport_ops *transport, const char *identity, double open_timeout, char *err,
                    size_t errlen);

/* Read `topic`; cb runs for every accepted sample (right salIndex). */
int sal_reader_add(sal *s, int topic, sal_sample_cb cb, void *arg, char *err, size_t errlen);

/* sal_reader_add whose callback is given each accepted sample to keep (no
 * copy made for it); samples not accepted are freed as before. */
int sal_reader_add_keeping(sal *s, int topic, sal_sample_keep_cb cb, void *arg, char *err, size_t errlen);

/* Prepare to write `topic`. */
int sal_writer_add(sal *s, int topic, char *err, size_t errlen);

/* Write a sample of `topic` after filling its private fields. Events are
 * skipped (returning 0) when their user fields equal the last written
 * sample, unless SAL_WRITE_FORCE; telemetry, commands and ackcmd are always
 * written. The runtime keeps a copy of the last event sample written. */
int sal_write(sal *s, int topic, void *sample, unsigned flags, char *err, size_t errlen);

/* How many writes of a topic sal_track_own_writes keeps. */
#define SAL_OWN_WRITES 64

/* Keep the send times of the last SAL_OWN_WRITES samples written to
 * `topic`, so that sal_is_own_sample tells this process's samples from
 * another's with the same origin (the pid: two containers each running
 * their CSC as pid 1). 0, or -EINVAL/-ENOMEM. */
int sal_track_own_writes(sal *s, int topic);

/* Whether a sample of `topic` that was read was written by this process:
 * its origin is this process's and, when the topic is tracked, its send
 * time is one of the kept writes' (or older than all of them, which cannot
 * be told apart). */
bool sal_is_own_sample(const sal *s, int topic, const void *sample);

/* The last event sample written to `topic` by this runtime, or NULL (also
 * for commands, ackcmd and telemetry, which are not kept). */
const void *sal_last_written(const sal *s, int topic);

/* Late joiners on transports without history (DDS): when a new reader
 * matches an event writer, write the last sample of that event again.
 * Requests are gathered briefly, so a burst of new readers causes one
 * round (one duplicate per event for existing readers). Off by default;
 * never on a transport that keeps_history. */
void sal_republish_events(sal *s, bool on);

#define SAL_OTHER_WRITERS_MAX 32

/* Do ackcmd readers drop a restarted writer's acks for a while (the
 * transport's exclusive_acks)? */
bool sal_acks_exclusive(const sal *s);

/* Does a CSC fill softwareVersions' salVersion and openSpliceVersion on
 * this transport (the transport's sal_versions)? */
bool sal_reports_sal_versions(const sal *s);

/* Does the transport keep history (Kafka)? Then a reader's match count
 * (sal_matched with writer=false) becomes 1 once the history read of an
 * event topic has been delivered, not when a writer is discovered. */
bool sal_keeps_history(const sal *s);

/* Is a writer matched here possibly not yet matched at the peer (the
 * transport's match_needs_grace)? */
bool sal_match_needs_grace(const sal *s);

/* How many remote readers (writer=true) or writers (writer=false) are
 * matched with our endpoint of `topic`, as last reported on the loop. */
int32_t sal_matched(const sal *s, int topic, bool writer);

/* From now on, count the distinct writers (origin and SAL index) whose
 * samples of `topic` this reader dropped for carrying another SAL index
 * (at most SAL_OTHER_WRITERS_MAX are told apart). */
void sal_count_other_indices(sal *s, int topic);

/* How many such writers of `topic` were heard (sal_count_other_indices). */
int sal_other_index_writers(const sal *s, int topic);

/* Report fatal transport problems to cb (on the loop). */
void sal_set_error_cb(sal *s, sal_error_cb cb, void *arg);

/* Report transport warnings (no FAULT: e.g. an undecodable message
 * dropped) to cb (on the loop). */
void sal_set_warning_cb(sal *s, sal_error_cb cb, void *arg);

/* What this runtime did, counted as it happens (read on the loop; the
 * transport's counters are atomics filled from its threads). */
typedef struct sal_stats {
    unsigned long long written[SAL_TOPIC_ACKCMD + 1]; /* samples written, by sal_topic_kind (events
                                                       * skipped as unchanged are not) */
    unsigned long long read_inline; /* samples whose callback ran on the transport's thread (gate) */
    unsigned long long read_queued; /* samples that went through the inbox to the loop */
    sal_transport_stats transport;
} sal_stats;

/* This runtime's counters. */
const sal_stats *sal_get_stats(const sal *s);

/* Accessors. */
const sal_component_info *sal_component(const sal *s);
int32_t sal_index(const sal *s);
const char *sal_identity(const sal *s);
int32_t sal_origin(const sal *s);
const char *sal_transport_name(const sal *s);
sal_clock *sal_get_clock(sal *s);
uv_loop_t *sal_loop(const sal *s);

/* Current TAI, unix seconds. */
double sal_now_tai(sal *s);

/* Called once a closed object has been freed. */
typedef void (*sal_close_cb)(void *arg);

/* Close: stop reading and flush now; `s` is freed once its handles have
 * closed on the loop, then cb(arg) runs (cb may be NULL). `s` must not be
 * used after this call. The rule of every closable object here: x_close
 * starts closing, memory is freed only on the loop, then the callback. */
void sal_close(sal *s, sal_close_cb cb, void *arg);

/* Let the transport's threads run this runtime's callbacks through `gate`
 * while its loop sleeps in sal_gate_run (see sal_gate.h); ignored for a
 * transport without inline_delivery. NULL: always through the loop. The
 * gate must outlive the runtime. */
void sal_set_gate(sal *s, sal_gate *gate);

#endif
