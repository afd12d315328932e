/*
 * sal_csc__internal.h - what the parts of the generic CSC share (not a
 * public header): the CSC and command structs and the functions one part
 * calls in another. sal_csc.c holds the state machine, events, start-up,
 * heartbeat and life cycle; sal_csc_cmd.c the command objects, their
 * per-topic queues and acks; sal_csc_start.c the start/configuration flow.
 */
#ifndef SAL_CSC__INTERNAL_H
#define SAL_CSC__INTERNAL_H

#include "ocps/sal_auth.h"
#include "ocps/sal_config.h"
#include "ocps/sal_csc.h"

#define QUEUE_MAX 100

struct sal_cmd {
    sal_csc *csc;
    int topic;
    void *data;
    int32_t seqnum;
    int32_t origin;
    char identity[SAL_IDENTITY_MAX + 1]; /* whole: Kafka carries more than DDS's 128 bytes */
    struct sal_cmd *next;                /* in its topic's queue */
    bool running;
    sal_ack_lease lease; /* what its CMD_INPROGRESS acks have given */
};

/* A command taken, as far as telling it from a copy of it goes. */
#define RECENT_COMMANDS 32
/* commands kept while the start-up's duplicate check runs (as a topic's
 * queue: more are dropped) */
#define SAL_CSC_EARLY_MAX 100
typedef struct recent_command {
    double snd_stamp;
    uint64_t identity_hash;
    int32_t seqnum;
    int32_t origin;
} recent_command;

typedef struct command_slot {
    sal_cmd_handler handler; /* NULL: generic or unsupported */
    void *arg;
    unsigned flags;
    sal_cmd *queue_head; /* waiting, FIFO */
    sal_cmd *queue_tail;
    size_t queued;
    bool busy;
    sal_csc_cmd_stats stats;
    /* the last commands taken (a ring): one delivered again is dropped */
    recent_command recent[RECENT_COMMANDS];
    unsigned nrecent;
    unsigned recent_next;
} command_slot;

struct sal_csc {
    uv_loop_t *loop;
    const sal_component_info *comp;
    sal *sal;
    sal_csc_options opts;
    sal_csc_hooks hooks;
    command_slot *slots; /* per topic */
    sal_state state;
    int log_level;
    bool faulting;
    bool started;
    bool stopping;
    int exit_code;
    uv_timer_t heartbeat;
    uv_timer_t startup;
    uv_timer_t shutdown;
    int handles_open; /* freed when the last closes (handle_gone) */
    sal_auth auth;
    bool auth_enabled;
    char override[1024];
    int t_ackcmd;
    int t_heartbeat;
    int t_error_code;
    int t_log_level;
    /* fields resolved at open (written for every command; NULL: the
     * interface lacks it, and it is left out) */
    struct {
        const sal_field_info *ack, *error, *result, *identity, *origin, *cmdtype, *timeout;
    } ackf;
    void *ack_sample;              /* every ack is written from it (sal_sample_new_lent; free()) */
    const sal_field_info *f_level; /* logevent_logLevel.level */
    /* configuration (configurable CSCs) */
    sal_config *config;
    uv_timer_t config_poll;            /* scans the config dir while in STANDBY */
    uv_timer_t start_slow;             /* INPROGRESS for a start that takes a while */
    bool start_busy;                   /* a start is loading its configuration */
    bool start_scan;                   /* the next scan to end is a start's: written in any state */
    sal_cmd *start_cmd;                /* the start command waiting for it (NULL: the --state chain) */
    bool configure_pending;            /* hooks.configure answered SAL_CONFIGURE_PENDING */
    struct sal_config_result *pending; /* its files and version, for configurationApplied (owned) */
    bool warned_not_git;
    bool warned_site; /* the site overlay checked (and warned about) once */
    /* the --state chain run at start-up */
    const char *const *chain;
    double check_started;  /* TAI when the duplicate check began */
    uint64_t check_begun;  /* uv_now() then */
    uint64_t check_until;  /* uv_now() when the check ends at the latest (--duplicate-check) */
    uint64_t hold_until;   /* uv_now() before which the start-up does not end (a test hook), or 0 */
    bool heard_other_live; /* Kafka history: another writer's heartbeat too recent to rule it out */
    int32_t namesake;      /* origin of a live instance of this index heard after start-up, told once */
    int32_t heard_origin;  /* that writer's origin and the seqNum of its last heartbeat seen */
    int32_t heard_seq;
    double heard_sent;    /* and its send time (TAI) */
    bool own_read_back;   /* Kafka: a heartbeat of this process came back through its reader */
    double own_read_sent; /* the send time (TAI) of the newest one that came back */
    bool warned_unread;   /* logged that the check outlasts --duplicate-check */
    /* commands read before the start-up ended (during the duplicate
     * check): run once it has, dropped if this instance quits */
    struct {
        int topic;
        void *sample; /* owned */
    } early[SAL_CSC_EARLY_MAX];
    size_t nearly;
    sal_csc_stats stats;
};

/* do_transition: the transition continues asynchronously */
#define TRANSITION_PENDING 1

/* Index of topic sal_name in the component, or -1. */
int sal_csc__topic_of(const sal_csc *c, const char *sal_name);

/* sal_csc_write for a topic already resolved (its index). */
int sal_csc__write_topic(sal_csc *c, int topic, void *sample, unsigned flags);

/* Event helpers (sal_csc.c): a new sample of sal_name (NULL when the
 * interface lacks the topic), a string field set when the topic has it, and
 * write-then-free. */
void *sal_csc__new_sample(sal_csc *c, const char *sal_name, int *topic);
void sal_csc__set_str(sal_csc *c, int topic, void *s, const char *field, const char *value);
void sal_csc__write_and_free(sal_csc *c, const char *sal_name, int topic, void *s, unsigned flags);

/* Change the summary state and write what goes with it (sal_csc.c). */
void sal_csc__set_state(sal_csc *c, sal_state new_state);

/* Run the rest of the --state chain (start, enable, exitControl) (sal_csc.c). */
void sal_csc__run_chain(sal_csc *c);

/* Run a command: the application's handler or a generic one (sal_csc.c). */
void sal_csc__dispatch(sal_csc *c, sal_cmd *cmd);

/* Release a command without acking it (sal_csc_cmd.c). */
void sal_csc__free_cmd(sal_cmd *cmd);

/* A command sample arrived: queue it on its topic, keeping the sample as
 * the command's data (sal_csc_cmd.c). */
void sal_csc__on_command(void *arg, int topic, void *sample);

/* Drop every queued command, unacknowledged, at stop (sal_csc_cmd.c). */
void sal_csc__drop_queued(sal_csc *c);

/* Run the commands read while the start-up's duplicate check ran, in the
 * order they came. */
void sal_csc__run_early(sal_csc *c);

/* The STANDBY scan timer: refresh configurationsAvailable (sal_csc_start.c). */
void sal_csc__config_poll_cb(uv_timer_t *timer);

/* End of a start: ack the command (or go on with the --state chain)
 * (sal_csc_start.c). */
void sal_csc__start_done(sal_csc *c, const char *failure);

/* Begin STANDBY -> DISABLED; 0 when done now, TRANSITION_PENDING when the
 * configuration is being read, -1 with the ack result in err
 * (sal_csc_start.c). */
int sal_csc__begin_start(sal_csc *c, const char *override, sal_cmd *cmd, char *err, size_t errlen);

#endif
