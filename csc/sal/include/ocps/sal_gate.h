/*
 * sal_gate.h - let a transport's thread run the runtime's callbacks while
 * the loop sleeps.
 *
 * A sample read by the transport normally crosses to the loop's thread
 * (inbox + uv_async). That wake-up is most of a command's round trip. A
 * gate removes it: the thread that owns the loop holds the gate at all
 * times except while it sleeps inside sal_gate_run; a transport thread
 * that delivers a sample then may take the gate (never waiting for it)
 * and run the runtime's callbacks itself, with the loop's state to itself,
 * exactly as the loop would have run them. When the gate is busy the
 * sample goes through the inbox as before, so plain uv_run stays correct
 * and order is kept.
 *
 * Everything a callback may do on the loop stays allowed (start timers,
 * spawn processes, write samples); the loop is woken afterwards to
 * re-read its timers and watchers when the visit started or ended a handle
 * or request or made its next timeout sooner (a later one it finds when
 * it wakes for the earlier). Closing a runtime from such a callback
 * is deferred to the loop (a transport cannot close from inside its own
 * delivery).
 */
#ifndef SAL_GATE_H
#define SAL_GATE_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

typedef struct sal_gate sal_gate;

/* A gate for `loop`, held by the calling thread, which must be the one
 * that runs the loop. */
int sal_gate_open(sal_gate **out, uv_loop_t *loop, char *err, size_t errlen);

/* uv_run for the owner: UV_RUN_DEFAULT, UV_RUN_ONCE or UV_RUN_NOWAIT,
 * opening the gate while the loop waits. Returns as uv_run does (uv_stop
 * is not supported: the loop ends when nothing is left to run). */
int sal_gate_run(sal_gate *g, uv_run_mode mode);

/* From a transport thread: take the gate if the loop sleeps in
 * sal_gate_run (true; then sal_gate_leave), or false at once. */
bool sal_gate_try_enter(sal_gate *g);

/* Give the gate back, waking the loop if the visit started or ended a
 * handle or request or made the next timeout sooner. A callback that
 * only sets a flag, or moves a timer later, does not wake it: an owner
 * waiting for such a flag in sal_gate_run(UV_RUN_ONCE) sees it when the
 * loop next wakes (its next timer at the latest). */
void sal_gate_leave(sal_gate *g);

/* Is the calling thread inside the gate through sal_gate_try_enter? */
bool sal_gate_inline(const sal_gate *g);

/* Close the gate once no runtime uses it: its handle closes on the loop,
 * and the gate is freed then (or when the sal_gate_run that saw it close
 * returns). NULL does nothing. */
void sal_gate_close(sal_gate *g);

#endif
