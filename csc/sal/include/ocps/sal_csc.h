/*
 * sal_csc.h - generic Commandable SAL Component behaviour, as salobj 7/8's
 * BaseCsc/ConfigurableCsc: the summary-state machine and its commands,
 * heartbeat, start-up events, logLevel/setLogLevel, logMessage for the
 * CSC's own log records, softwareVersions, simulationMode, errorCode and
 * fault(), exitControl, authorization (when the interface has setAuthList
 * and LSST_DDS_ENABLE_AUTHLIST=1) and the duplicate-instance check.
 *
 * Everything runs on one libuv loop. A CSC-specific command is a handler
 * that receives a sal_cmd and must finish it exactly once (now or later).
 */
#ifndef SAL_CSC_H
#define SAL_CSC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "ocps/sal.h"
#include "ocps/sal_protocol.h"

typedef struct sal_csc sal_csc;
typedef struct sal_cmd sal_cmd;

/* Handler of a CSC-specific command; must end with sal_cmd_finish (or a
 * shorthand) now or later, on the loop. */
typedef void (*sal_cmd_handler)(void *arg, sal_cmd *cmd);

/* Flag for sal_csc_add_command: commands of this topic may run at the same
 * time (otherwise they run one at a time in arrival order). */
#define SAL_CMD_CONCURRENT 1u

/* Application hooks; any may be NULL. */
typedef struct sal_csc_hooks {
    /* During start (STANDBY -> DISABLED): apply the validated configuration
     * (borrowed; json_incref to keep it). For a CSC without a schema it is
     * an empty object. Fail with a message to stay in STANDBY (ack
     * "Failed: <message>"). An application that must ask something slow
     * first (a batch controller, a server) returns SAL_CONFIGURE_PENDING
     * and later calls sal_csc_configure_done on the loop; the start
     * command is acked then (INPROGRESS meanwhile). */
    int (*configure)(void *arg, json_t *config, char *err, size_t errlen);
    /* After each summary state change (old is 0 for the initial state). */
    void (*state_changed)(void *arg, sal_state old_state, sal_state new_state);
    /* The CSC is shutting down: close the application's handles. */
    void (*closing)(void *arg);
    /* The CSC has closed and been freed; `exit_code` is the process's
     * (0 after exitControl, 2 another instance running, as given to
     * sal_csc_close otherwise). */
    void (*closed)(void *arg, int exit_code);
    void *arg;
} sal_csc_hooks;

/* hooks.configure's answer: the configuration is being applied; the
 * application calls sal_csc_configure_done once it is. */
#define SAL_CONFIGURE_PENDING 1

/* End a configuration the hook left pending: `failure` NULL goes on to
 * DISABLED (configurationApplied, the start acked COMPLETE), otherwise the
 * CSC stays in STANDBY and the start fails with "Failed: <failure>".
 * Does nothing when no configuration is pending. */
void sal_csc_configure_done(sal_csc *c, const char *failure);

/* Start-up options (salobj's command line). */
typedef struct sal_csc_options {
    int32_t index; /* SAL index (0 for non-indexed components) */
    /* The component's SAL indices when the application knows them (e.g.
     * ts_xml's SalIndex enum, which numbers entries that a release's
     * IndexEnumeration lists without numbers, or not at all); NULL: the
     * interface's index enumeration. */
    const sal_enum_value *indices;
    size_t nindices;
    const sal_transport_ops *transport; /* required (see sal_transport_find) */
    sal_state initial_state;            /* state to reach at start (default STANDBY) */
    const char *override;               /* configurationOverride for that start */
    int log_level;                      /* initial level (default 20, INFO) */
    int simulation_mode;                /* written in simulationMode */
    const char *csc_version;            /* softwareVersions.cscVersion */
    const char *subsystem_versions;     /* softwareVersions.subsystemVersions */
    double heartbeat_interval;          /* seconds (default 1) */
    double duplicate_check;             /* at most this many seconds to watch for another instance
                                           (default 3; <0 off; ends early when none can exist) */
    double shutdown_delay;              /* seconds between exitControl's ack and exit (default 1) */
    double open_retry;                  /* seconds to keep trying a transport that cannot be reached
                                           at start-up (-EHOSTUNREACH: broker or registry down,
                                           5xx), backoff
                                           1 s doubling to 15 s (default 600; 0: fail at once) */
    bool no_republish;                  /* do not re-publish events to late joiners (DDS) */
    /* Configurable CSCs (the interface has configurationApplied): */
    const char *config_schema;     /* JSON schema (YAML or JSON text); NULL: not configurable */
    const char *config_dir;        /* --configdir; NULL: $<PKG>_DIR/<Name>/<schema version> */
    const char *config_pkg;        /* e.g. "dm_config_ocps" */
    const char *config_other_info; /* configurationApplied.otherInfo */
} sal_csc_options;

/* Fill `o` with the defaults above. */
void sal_csc_options_init(sal_csc_options *o);

/* Create a CSC for `comp` on `loop` (opens the transport). */
int sal_csc_open(sal_csc **out, uv_loop_t *loop, const sal_component_info *comp, const sal_csc_options *opts,
                 const sal_csc_hooks *hooks, char *err, size_t errlen);

/* Handle `name` ("execute" for command_execute). */
int sal_csc_add_command(sal_csc *c, const char *name, sal_cmd_handler handler, void *arg, unsigned flags,
                        char *err, size_t errlen);

/* Begin the start-up sequence (readers, logLevel, heartbeat, duplicate
 * check, simulationMode, softwareVersions, summaryState, errorCode, then
 * the transitions to the initial state). Returns at once. */
int sal_csc_start(sal_csc *c, char *err, size_t errlen);

/* Current summary state. */
sal_state sal_csc_state(const sal_csc *c);

/* 0 if ENABLED; otherwise -1 and why in err, as salobj's
 * assert_enabled(action) words it: "execute not allowed in
 * state=<State.DISABLED: 1>", or in FAULT "execute not allowed in Fault
 * state: errorCode=2, errorReport='...'" (action NULL or "": "Not allowed"). */
int sal_csc_check_enabled(const sal_csc *c, const char *action, char *err, size_t errlen);

/* Go to FAULT: errorCode (forced), a CRITICAL log, summaryState=3. */
void sal_csc_fault(sal_csc *c, int code, const char *report, const char *traceback);

/* The errorCodes the runtime itself faults with (an application uses
 * others): the transport failed; another live instance of this SAL index
 * was heard after start-up (a frozen CSC and its replacement). */
#define SAL_CSC_ERROR_TRANSPORT 1
#define SAL_CSC_ERROR_DUPLICATE 4

/* Log a record: to stderr and, at or above the log level, as logMessage. */
void sal_csc_log(sal_csc *c, int level, const char *file, const char *func, int line, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
#define SAL_LOG(c, level, ...) sal_csc_log((c), (level), __FILE__, __func__, __LINE__, __VA_ARGS__)

/* Write an event or telemetry sample of `sal_name` (events only when
 * changed unless SAL_WRITE_FORCE). */
int sal_csc_write(sal_csc *c, const char *sal_name, void *sample, unsigned flags);

/* What the CSC did, counted as it happens (for the CSC's /metrics). */
typedef struct sal_csc_stats {
    unsigned long long heartbeats;          /* heartbeat events written */
    unsigned long long acks[SAL_ACK_SLOTS]; /* ackcmd written, by sal_ack_slot (INPROGRESS too) */
} sal_csc_stats;

/* Per command topic: samples received (every one delivered while the CSC
 * runs, also those ignored before it started) and final acks written, by
 * sal_ack_slot (a detached ack of a re-adopted job counts as final). */
typedef struct sal_csc_cmd_stats {
    unsigned long long received;
    unsigned long long final[SAL_ACK_SLOTS];
} sal_csc_cmd_stats;

const sal_csc_stats *sal_csc_get_stats(const sal_csc *c);

/* The counters of command topic `topic` (NULL for another kind of topic). */
const sal_csc_cmd_stats *sal_csc_command_stats(const sal_csc *c, int topic);

/* The component this CSC speaks and its SAL index. */
const sal_component_info *sal_csc_component(const sal_csc *c);
int32_t sal_csc_index(const sal_csc *c);

/* The runtime under this CSC. */
sal *sal_csc_sal(sal_csc *c);

/* Close: hooks.closing runs now (the application closes its handles), the
 * CSC's handles and transport close, and once they have, on the loop, the
 * CSC is freed and hooks.closed(arg, exit_code) runs. The CSC closes
 * itself this way too (exitControl, another instance found), so the
 * application learns of every end through hooks.closed. `c` must not be
 * used after that. A second call does nothing. */
void sal_csc_close(sal_csc *c, int exit_code);

/* Leave on a signal (SIGTERM from Kubernetes or systemd, ^C): summaryState
 * OFFLINE is written, so that LOVE and scripts see the CSC go, not only
 * its heartbeats stop, then the CSC closes (exit code 0) after
 * opts.shutdown_delay, as after exitControl. Closes at once if it has not
 * started, a start is loading its configuration, it is OFFLINE already, or
 * on a second call. */
void sal_csc_exit(sal_csc *c);

/* --- commands in progress --- */

/* The command's sample (a struct of its topic). */
const void *sal_cmd_data(const sal_cmd *cmd);
/* Topic index of the command. */
int sal_cmd_topic(const sal_cmd *cmd);
/* private_seqNum / private_identity / private_origin of the command. */
int32_t sal_cmd_seqnum(const sal_cmd *cmd);
const char *sal_cmd_identity(const sal_cmd *cmd);
int32_t sal_cmd_origin(const sal_cmd *cmd);
/* The CSC the command belongs to. */
sal_csc *sal_cmd_csc(const sal_cmd *cmd);

/* How far a commander's wait for a command has been extended: salobj
 * (and ocps-cmd) add each CMD_INPROGRESS ack's timeout to their wait, so
 * an ack repeated with the same timeout would push the deadline further
 * each time. Zero before the first CMD_INPROGRESS. */
typedef struct sal_ack_lease {
    double until; /* sal_clock_monotonic() seconds */
} sal_ack_lease;

/* The timeout to send in a CMD_INPROGRESS ack that asks the commander to
 * wait `wait` seconds from `now` (sal_clock_monotonic()): all of it in the
 * first ack, then only what it adds to the deadline already given (0 when
 * none). */
double sal_ack_lease_extend(sal_ack_lease *lease, double now, double wait);

/* Send CMD_INPROGRESS: the commander is to wait `wait` seconds from now
 * for the answer (repeated, each ack moves the deadline to `wait` from
 * then, sal_ack_lease_extend). */
void sal_cmd_in_progress(sal_cmd *cmd, double wait, const char *result);

/* Send the final ack and release the command. error is 0 for COMPLETE and
 * 1 for failure codes, as salobj does. */
void sal_cmd_finish(sal_cmd *cmd, int ack, const char *result);

/* Final ack CMD_COMPLETE, result "Done". */
void sal_cmd_complete(sal_cmd *cmd);

/* Final ack CMD_FAILED, result "Failed: <formatted message>". */
void sal_cmd_fail(sal_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Release a command without acknowledging it (the CSC is stopping). */
void sal_cmd_release(sal_cmd *cmd);

/* Write an ackcmd for a command this process no longer holds, e.g. the
 * execute of a job re-adopted after a restart: the command's topic
 * index, private_seqNum, private_identity and private_origin as received.
 * error is set from the code as sal_cmd_finish does. */
void sal_csc_ack_detached(sal_csc *c, int topic, int32_t seqnum, const char *identity, int32_t origin,
                          int ack, const char *result, double timeout);

#endif
