/*
 * ocps_cmd.h - internals shared by the commander's one-shot modes
 * (ocps_cmd.c) and its interactive mode (ocps_cmd_repl.c).
 */
#ifndef OCPS_CMD_H
#define OCPS_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "ocps/sal_remote.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_NOPERM = 2, EXIT_TIMEOUT = 3, EXIT_USAGE = 64 };

typedef enum mode { MODE_COMMAND, MODE_WATCH, MODE_SHOW, MODE_INTERACTIVE } mode;

typedef struct repl repl;

typedef struct cmdr {
    uv_loop_t loop;
    sal_remote *remote;
    const sal_component_info *comp;
    const char *xml_version; /* --xml-version, or NULL */
    mode mode;
    char *command;     /* command in flight (malloc'd name) */
    void *sample;      /* its sample */
    const char *show;  /* event for MODE_SHOW */
    char *show_text;   /* the newest sample read so far (by its write time), printed */
    double show_stamp; /* its private_sndStamp */
    double timeout;    /* command / show timeout */
    double duration;   /* watch duration, <= 0: until interrupted */
    double discovery;  /* seconds to wait for the CSC */
    bool json;
    int status;
    bool finished; /* cmdr_finish ran */
    bool sent;
    bool answered;    /* a non-final ack came (the CSC is there, the command runs) */
    int heartbeats;   /* heartbeats of the target's index read since start (a command) */
    bool alive;       /* one of them was recent, or a second one came: the CSC runs */
    bool csc_started; /* a live heartbeat of it (under 5 s old): its command readers are
                       * at work (Kafka: commands wait for it) */
    uv_timer_t poll;
    uv_timer_t deadline;
    uv_signal_t sigint;
    double started;
    repl *repl; /* interactive mode state */
    /* Whoever drives the session (ocps_cmd_repl.c for interactive mode):
     * the command in flight ended with exit status `status` (NULL: finish
     * the session with it), and the session is finishing. */
    void (*on_command_done)(struct cmdr *c, int status);
    void (*on_finish)(struct cmdr *c);
} cmdr;

/* The exit status for a failure (a negative errno) to set up the Remote,
 * its readers or writers: a configuration error (-EINVAL) or an identity
 * longer than the transport carries (-E2BIG) is EXIT_USAGE,
 * out of memory EXIT_FAILED, anything else (the transport not reached, a
 * Kafka topic no CSC created) EXIT_TIMEOUT, as when no CSC is found:
 * nothing was sent. */
int cmdr_setup_status(int rc);

/* Print one sample (human form or a JSON line). */
void cmdr_print_sample(cmdr *c, int topic, const void *sample);

/* Check command `name` and fill its sample from --FIELD VALUE pairs; needs
 * no transport, so usage errors come before connecting. 0 or an exit
 * status. */
int cmdr_command_prepare(cmdr *c, const char *name, int argc, char **argv);

/* Send the prepared command once the CSC has been discovered; 0 or an
 * exit status. */
int cmdr_command_start(cmdr *c);

/* Subscribe for watch/show/interactive; no `names` means every event (and
 * telemetry for watch). 0 or an exit status. */
int cmdr_subscribe(cmdr *c, int n, char **names);

/* Start command `name` with --FIELD VALUE pairs; the outcome comes to
 * cmdr_command_done. Returns 0, or an exit status if it could not start. */
int cmdr_command_begin(cmdr *c, const char *name, int argc, char **argv);

/* Called when the command in flight ends with exit status `status`. */
void cmdr_command_done(cmdr *c, int status);

/* Close everything, once (later calls do nothing); uv_run returns afterwards. */
void cmdr_finish(cmdr *c, int status);

/* Is `name` (without its "--") one of ocps-cmd's own long options? */
bool cmdr_is_own_option(const char *name);

/* Read the target's heartbeats while a command is in flight: without one
 * within --discovery seconds the command ends early (no CSC runs). */
int cmdr_watch_heartbeat(cmdr *c);

/* Print the commands (with --fields) and events of the component. */
void cmdr_list_topics(const sal_component_info *comp, FILE *out);

#endif
