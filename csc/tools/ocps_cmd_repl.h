/*
 * ocps_cmd_repl.h - the commander's interactive mode: lines from stdin
 * (with line editing, history and completion on a terminal) run one at a
 * time through the session (ocps_cmd.h), which reports back through the
 * cmdr callbacks this sets.
 */
#ifndef OCPS_CMD_REPL_H
#define OCPS_CMD_REPL_H

#include "ocps_cmd.h"

/* Start reading lines for session `c`; returns -1 (keep running) or an
 * exit status when stdin cannot be read. */
int repl_start(cmdr *c);

#endif
