/* sal_protocol.c - names of SAL states and ack codes; see sal_protocol.h. */
#include "ocps/sal_protocol.h"

#include <stddef.h>

static const char *const state_reprs[] = {
    "<State.UNKNOWN: 0>", "<State.DISABLED: 1>", "<State.ENABLED: 2>",
    "<State.FAULT: 3>",   "<State.OFFLINE: 4>",  "<State.STANDBY: 5>",
};

const char *sal_state_repr(int state)
{
    if (state < 1 || state > 5) {
        return state_reprs[0];
    }
    return state_reprs[state];
}

int sal_ack_slot(int ack)
{
    if (ack >= SAL_CMD_ACK && ack <= SAL_CMD_COMPLETE) {
        return ack - SAL_CMD_ACK;
    }
    if (ack <= SAL_CMD_NOPERM && ack >= SAL_CMD_TIMEOUT) {
        return 4 + (SAL_CMD_NOPERM - ack);
    }
    return -1;
}

int sal_ack_of_slot(int slot)
{
    return slot < 4 ? SAL_CMD_ACK + slot : SAL_CMD_NOPERM - (slot - 4);
}

const char *sal_ack_name(int ack)
{
    switch (ack) {
    case SAL_CMD_ACK:
        return "CMD_ACK";
    case SAL_CMD_INPROGRESS:
        return "CMD_INPROGRESS";
    case SAL_CMD_STALLED:
        return "CMD_STALLED";
    case SAL_CMD_COMPLETE:
        return "CMD_COMPLETE";
    case SAL_CMD_NOPERM:
        return "CMD_NOPERM";
    case SAL_CMD_NOACK:
        return "CMD_NOACK";
    case SAL_CMD_FAILED:
        return "CMD_FAILED";
    case SAL_CMD_ABORTED:
        return "CMD_ABORTED";
    case SAL_CMD_TIMEOUT:
        return "CMD_TIMEOUT";
    default:
        return "CMD_UNKNOWN";
    }
}
