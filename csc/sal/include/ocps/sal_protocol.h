/*
 * sal_protocol.h - the constants SAL peers share: summary states, ackcmd
 * codes and log levels (salobj's State, SalRetCode and Python logging
 * levels), and their printable names. Both sides use them: the CSC
 * (sal_csc.h) and its clients (sal_remote.h, the commander).
 */
#ifndef SAL_PROTOCOL_H
#define SAL_PROTOCOL_H

/* Summary states (salobj State). */
typedef enum sal_state {
    SAL_STATE_DISABLED = 1,
    SAL_STATE_ENABLED = 2,
    SAL_STATE_FAULT = 3,
    SAL_STATE_OFFLINE = 4,
    SAL_STATE_STANDBY = 5
} sal_state;

/* ackcmd codes (salobj SalRetCode). */
enum {
    SAL_CMD_ACK = 300,
    SAL_CMD_INPROGRESS = 301,
    SAL_CMD_STALLED = 302,
    SAL_CMD_COMPLETE = 303,
    SAL_CMD_NOPERM = -300,
    SAL_CMD_NOACK = -301,
    SAL_CMD_FAILED = -302,
    SAL_CMD_ABORTED = -303,
    SAL_CMD_TIMEOUT = -304
};

/* Python logging levels used by logLevel/logMessage. */
enum {
    SAL_LOG_DEBUG = 10,
    SAL_LOG_INFO = 20,
    SAL_LOG_WARNING = 30,
    SAL_LOG_ERROR = 40,
    SAL_LOG_CRITICAL = 50
};

/* salobj's repr of a state, "<State.STANDBY: 5>". */
const char *sal_state_repr(int state);

/* The ack codes as dense slots 0..SAL_ACK_SLOTS-1 (for counters): ACK,
 * INPROGRESS, STALLED, COMPLETE, NOPERM, NOACK, FAILED, ABORTED, TIMEOUT;
 * -1 for another value. sal_ack_of_slot is the inverse. */
#define SAL_ACK_SLOTS 9
int sal_ack_slot(int ack);
int sal_ack_of_slot(int slot);

/* "CMD_COMPLETE" etc. for an ack code. */
const char *sal_ack_name(int ack);

#endif
