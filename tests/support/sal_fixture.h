/*
 * sal_fixture.h - drive a CSC process over real DDS from a test: start
 * ocps-csc as a child with a private partition prefix and a loopback-only
 * Cyclone configuration, record every event it writes through a Remote,
 * and send commands synchronously.
 */
#ifndef SAL_FIXTURE_H
#define SAL_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "ocps/sal_remote.h"

typedef struct fx_record {
    int topic;
    void *sample;
    double at; /* tu_now() when read */
} fx_record;

typedef struct fx {
    uv_loop_t loop;
    sal_gate *gate; /* the Remote's transport threads run its callbacks while fx_run_* sleeps */
    const sal_component_info *comp;
    sal_remote *remote;
    int csc_pid;
    char log_path[256];
    fx_record *records;
    size_t nrecords;
    size_t cap;
    /* Kafka (OCPS_TEST_TRANSPORT=kafka): fixtures this fx started */
    int broker_pid;
    int broker_in;  /* the broker's stdin (commands) */
    int broker_out; /* its stdout (replies) */
    int registry_pid;
} fx;

/* The transport the tests run over: $OCPS_TEST_TRANSPORT, default "dds".
 * With "kafka", the first fx_open of a test starts a mock broker (with the
 * component's topics) and a schema-registry fixture and points the
 * LSST_* variables at them, and sets OCPS_TRANSPORT=kafka for the ocps-csc
 * and ocps-cmd processes the test starts. */
const char *fx_transport(void);

/* The test schema registry's program (ocps-schema-registry), or NULL in a
 * build without Kafka. */
const char *fx_schema_registry_program(void);

/* Start a mock broker with comp's topics and a schema registry now, for
 * this test's partition prefix, so that fx_open uses them rather than
 * starting its own (a test can then prepare the registry first). `f` only
 * holds the processes: stop them with fx_kafka_stop. */
int fx_kafka_start(fx *f, const sal_component_info *comp);

/* Stop what fx_kafka_start started. */
void fx_kafka_stop(fx *f);

/* Send a command line to the mock broker ("down 1", "up 1"); 0 on "OK". */
int fx_broker_command(fx *f, const char *command);

/* Point DDS at loopback (CYCLONEDDS_URI=file://<cyclone_config>) with a
 * partition prefix unique to this process and call; LSST_SITE=test and
 * DM_CONFIG_OCPS_DIR=deploy/config (the shipped configuration). */
void fx_env(const char *cyclone_config);

/* Init the loop and a Remote of comp index `index` recording every event. */
int fx_open(fx *f, const sal_component_info *comp, int32_t index, const char *identity);

/* Like fx_open, over `ops` whatever OCPS_TEST_TRANSPORT says, starting
 * no fixture (the in-process tests: ops is the inproc transport). */
int fx_open_transport(fx *f, const sal_component_info *comp, int32_t index, const char *identity,
                      const sal_transport_ops *ops);

/* Spawn `argv` (an ocps-csc command line) with output to a log file. */
int fx_start_csc(fx *f, char *const argv[]);

/* Run the loop until pred(arg) is true or `timeout` seconds pass. */
bool fx_run_until(fx *f, bool (*pred)(fx *f, void *arg), void *arg, double timeout);

/* Run the loop for `seconds`. */
void fx_run_for(fx *f, double seconds);

/* Wait for the first record of sal_name at or after record `from`; returns
 * its index or -1. */
long fx_wait_event(fx *f, const char *sal_name, size_t from, double timeout);

/* fx_wait_event for a record written by the CSC process f->csc_pid (its
 * origin): a CSC stopped before it (SIGTERM: its OFFLINE summaryState) may
 * still be heard after `from`. */
long fx_wait_csc_event(fx *f, const char *sal_name, size_t from, double timeout);

/* Wait for the first record of sal_name at or after record `from` whose
 * int32 `field` differs from that of the last record of sal_name before
 * `from` (any value if there is none); returns its index or -1. Copies of
 * that last record are skipped: a CSC writes its events again when a new
 * reader matches (late joiners), and every reader of the topic reads them. */
long fx_wait_change(fx *f, const char *sal_name, const char *field, size_t from, double timeout);

/* Send a command (NULL sample: empty fields); waits for the final ack.
 * Returns the ack code (CMD_NOACK on timeout); result copied into result. */
int fx_command(fx *f, const char *name, void *sample, double timeout, char *result, size_t resultlen);

/* One ack of a command, as received. */
typedef struct fx_ack {
    int ack;
    char result[2048];
    double timeout;
    double at; /* tu_now() when read */
} fx_ack;

/* Like fx_command, keeping every ack (up to max) in acks[*nacks]. */
int fx_command_acks(fx *f, const char *name, void *sample, double timeout, fx_ack *acks, size_t max,
                    size_t *nacks);

/* Send command `name` with one string field set; returns the ack. */
int fx_command_str(fx *f, const char *name, const char *field, const char *value, double timeout,
                   char *result, size_t resultlen);

/* The usual test set-up: fx_env, a Remote of OCPS:1 recording events, and
 * `ocps-csc` started as `csc --duplicate-check 0.2 1`; waits for its first
 * summaryState. Returns a calloc'd fx (NULL on failure); fx_teardown frees. */
fx *fx_setup_csc(const sal_component_info *comp, const char *csc, const char *cyclone_config);

/* fx_close and free; the cmocka teardown result. */
int fx_teardown(fx *f);

/* int32 field of a record's sample. */
int32_t fx_i32(const fx *f, size_t record, const char *field);

/* The heartbeats recorded from record `from` on: their number, the largest
 * gap between two consecutive ones as the CSC sent them (private_sndStamp:
 * its loop's cadence) and as they arrived here (adds the transport's and
 * this process's delays). */
int fx_heartbeat_gaps(const fx *f, size_t from, double *sent_gap, double *arrival_gap);

/* Stop the CSC (SIGTERM; SIGKILL if it has not exited in 5 s), close the
 * Remote, free. Returns -1 (and prints the CSC's log) if the CSC had to be
 * killed or its log holds a sanitizer report, else 0. */
int fx_close(fx *f);

#endif
