/*
 * test_inproc_cmd_queues: how a CSC runs the commands it reads, with a
 * generic CSC on its own thread whose handlers hold commands until the
 * test finishes them: commands of one topic run one at a time in arrival
 * order; a topic registered concurrent runs them all at once and they end
 * in any order; a busy topic holds up no other; 100 wait at most, the
 * next is refused; a command without handler is refused; Remotes on three
 * threads get every answer, and two Remotes of one identity each their
 * own; and stopping the CSC leaves the commands in flight without a final
 * ack, as salobj does.
 *
 * The Remote and the CSC share one bus, so what the CSC writes reaches the
 * Remote in the order written: once the ack of a later command is read,
 * the CSC has read (and queued or run) every command sent before it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ocps_test_iface.h"
#include "inproc/sal_inproc.h"
#include "inproc_csc.h"
#include "ocps/ocps_interface.h"
#include "ocps/sal_csc.h"
#include "sal_fixture.h"
#include "test_util.h"

#define MAX_CMDS 128

/* The CSC's side: used on the CSC's thread, read by the test through
 * ct_call only. */
typedef struct handlers {
    unsigned execute_flags;  /* 0: one at a time; SAL_CMD_CONCURRENT */
    bool execute_handled;    /* false: execute has no handler */
    bool abort_job_at_once;  /* abort_job: complete at once (else hold it) */
    bool execute_echoes;     /* execute: complete at once with its pipeline as result */
    sal_cmd *held[MAX_CMDS]; /* running, not finished, in dispatch order */
    int nheld;
    char order[MAX_CMDS][16]; /* execute.pipeline of each command run, in order */
    int nrun;
} handlers;

/* The test's side: one command sent and what came back for it. */
typedef struct sent {
    char name[32];
    int acks[4];
    int nacks;
    bool done;
    int final_ack;
    char result[256];
    int final_rank; /* 1 for the first command to end, 2 for the next... */
} sent;

typedef struct echo_wait {
    bool done;
    char result[64];
} echo_wait;

typedef struct ctx {
    fx f;
    csc_thread *csc;
    handlers h;
    sent cmds[MAX_CMDS + 8];
    int ncmds;
    int finals; /* final acks read so far */
    /* a second Remote and the answers it and f wait for: here, not on a
     * test's stack, so that a failed assertion leaves nothing on the bus
     * that points into it (teardown closes other) */
    fx other;
    echo_wait mine;
    echo_wait theirs;
    sal_transport *raw; /* a writer of commands as another program's (teardown closes it) */
} ctx;

/* --- the CSC's handlers --- */

static void hold(void *arg, sal_cmd *cmd)
{
    handlers *h = arg;
    const sal_topic_info *t = &ocps_test_component()->topics[sal_cmd_topic(cmd)];
    const char *pipeline = sal_sample_get_string(t, sal_cmd_data(cmd), "pipeline");
    if (pipeline != NULL && h->nrun < MAX_CMDS) {
        snprintf(h->order[h->nrun++], sizeof h->order[0], "%s", pipeline);
    }
    h->held[h->nheld++] = cmd;
    sal_cmd_in_progress(cmd, 60, "held"); /* the Remote sees it run */
}

static void abort_job(void *arg, sal_cmd *cmd)
{
    handlers *h = arg;
    if (h->abort_job_at_once) {
        sal_cmd_complete(cmd);
    } else {
        hold(h, cmd);
    }
}

static void echo(void *arg, sal_cmd *cmd)
{
    (void)arg;
    const sal_topic_info *t = &ocps_test_component()->topics[sal_cmd_topic(cmd)];
    sal_cmd_finish(cmd, SAL_CMD_COMPLETE, sal_sample_get_string(t, sal_cmd_data(cmd), "pipeline"));
}

static void register_handlers(void *arg, sal_csc *csc)
{
    handlers *h = arg;
    char err[256];
    if (h->execute_echoes) {
        assert_int_equal(sal_csc_add_command(csc, "execute", echo, h, SAL_CMD_CONCURRENT, err, sizeof err),
                         0);
    } else if (h->execute_handled) {
        assert_int_equal(sal_csc_add_command(csc, "execute", hold, h, h->execute_flags, err, sizeof err), 0);
    }
    assert_int_equal(sal_csc_add_command(csc, "abort_job", abort_job, h, 0, err, sizeof err), 0);
}

static void release_held(void *arg)
{
    handlers *h = arg;
    for (int i = 0; i < h->nheld; i++) {
        sal_cmd_release(h->held[i]); /* the CSC is stopping: no ack */
    }
    h->nheld = 0;
}

/* Finish (CMD_COMPLETE) the held command at position `i` (-1: the last). */
typedef struct finish_req {
    handlers *h;
    int i;
} finish_req;

static void finish_at(void *arg, sal_csc *csc)
{
    (void)csc;
    finish_req *r = arg;
    handlers *h = r->h;
    int i = r->i < 0 ? h->nheld - 1 : r->i;
    sal_cmd *cmd = h->held[i];
    memmove(&h->held[i], &h->held[i + 1], (size_t)(h->nheld - i - 1) * sizeof h->held[0]);
    h->nheld--;
    sal_cmd_complete(cmd); /* may run the next of its topic at once */
}

static void finish(ctx *c, int i)
{
    finish_req r = {&c->h, i};
    assert_int_equal(ct_call(c->csc, finish_at, &r), 0);
}

static void finish_all_in_order(void *arg, sal_csc *csc)
{
    handlers *h = arg;
    finish_req r = {h, 0};
    while (h->nheld > 0) {
        finish_at(&r, csc);
    }
}

typedef struct counts {
    handlers *h;
    int nheld;
    int nrun;
    char order[MAX_CMDS * 17];
} counts;

static void read_counts(void *arg, sal_csc *csc)
{
    (void)csc;
    counts *k = arg;
    k->nheld = k->h->nheld;
    k->nrun = k->h->nrun;
    k->order[0] = '\0';
    for (int i = 0; i < k->h->nrun; i++) {
        strcat(k->order, i ? "," : "");
        strcat(k->order, k->h->order[i]);
    }
}

static counts csc_counts(ctx *c)
{
    counts k = {.h = &c->h};
    assert_int_equal(ct_call(c->csc, read_counts, &k), 0);
    return k;
}

/* --- set-up --- */

/* A CSC whose handlers are as `how` says. */
static int start(void **state, handlers how)
{
    ctx *c = calloc(1, sizeof *c);
    *state = c;
    c->h = how;
    if (fx_open_transport(&c->f, ocps_test_component(), 1, NULL, &sal_inproc_transport) != 0) {
        return -1;
    }
    ct_options o;
    ct_options_init(&o, ocps_test_component());
    o.setup = register_handlers;
    o.closing = release_held;
    o.arg = &c->h;
    c->csc = ct_start(&o);
    return c->csc != NULL && fx_wait_event(&c->f, "logevent_summaryState", 0, 10) >= 0 ? 0 : -1;
}

static int setup_serial(void **state)
{
    return start(state, (handlers){.execute_handled = true, .abort_job_at_once = true});
}

static int setup_concurrent(void **state)
{
    return start(
        state,
        (handlers){.execute_flags = SAL_CMD_CONCURRENT, .execute_handled = true, .abort_job_at_once = true});
}

static int setup_unhandled(void **state)
{
    return start(state, (handlers){.abort_job_at_once = true});
}

static int setup_serial_holding_aborts(void **state)
{
    return start(state, (handlers){.execute_handled = true});
}

static int setup_echo(void **state)
{
    return start(state, (handlers){.execute_echoes = true, .abort_job_at_once = true});
}

static int teardown(void **state)
{
    ctx *c = *state;
    int code = c->csc != NULL ? ct_stop(c->csc) : 0;
    if (c->other.comp != NULL) {
        fx_close(&c->other);
    }
    if (c->raw != NULL) {
        sal_inproc_transport.close(c->raw);
    }
    int rc = fx_close(&c->f);
    free(c);
    return code == 0 && sal_inproc_endpoints() == 0 ? rc : -1;
}

/* --- the Remote's side --- */

typedef struct ack_arg {
    ctx *c;
    sent *s;
} ack_arg;

static ack_arg ack_args[MAX_CMDS + 8];

static void on_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)timeout;
    ack_arg *a = arg;
    sent *s = a->s;
    if (s->nacks < 4) {
        s->acks[s->nacks++] = ack;
    }
    if (final) {
        s->done = true;
        s->final_ack = ack;
        s->final_rank = ++a->c->finals;
        snprintf(s->result, sizeof s->result, "%s", result);
    }
}

static bool ready(fx *f, void *arg)
{
    return sal_remote_ready(f->remote, arg);
}

/* Send command `name` (execute: with pipeline `tag`); returns its record. */
static sent *send_cmd(ctx *c, const char *name, const char *tag)
{
    fx *f = &c->f;
    char err[256];
    sal_remote_prepare(f->remote, name, err, sizeof err);
    assert_true(fx_run_until(f, ready, (void *)name, 10));
    int t = sal_remote_command_topic(f->remote, name);
    void *s = sal_remote_new_command(f->remote, name);
    if (tag != NULL) {
        assert_int_equal(sal_sample_set_string(&f->comp->topics[t], s, "pipeline", tag, err, sizeof err), 0);
    }
    assert_true(c->ncmds < MAX_CMDS + 8);
    sent *rec = &c->cmds[c->ncmds];
    ack_args[c->ncmds] = (ack_arg){c, rec};
    snprintf(rec->name, sizeof rec->name, "%s", name);
    assert_int_equal(
        sal_remote_command(f->remote, name, s, 60, on_ack, &ack_args[c->ncmds], NULL, err, sizeof err), 0);
    c->ncmds++;
    sal_sample_free(&f->comp->topics[t], s);
    return rec;
}

static bool is_done(fx *f, void *arg)
{
    (void)f;
    return ((sent *)arg)->done;
}

static bool has_ack(fx *f, void *arg)
{
    (void)f;
    return ((sent *)arg)->nacks > 0;
}

/* Every command sent so far has been read by the CSC: a setLogLevel sent
 * now is answered after them. */
static void barrier(ctx *c)
{
    sent *s = send_cmd(c, "setLogLevel", NULL);
    assert_true(fx_run_until(&c->f, is_done, s, 10));
    assert_int_equal(s->final_ack, SAL_CMD_COMPLETE);
}

/* --- tests --- */

static void one_topic_runs_one_command_at_a_time_in_order(void **state)
{
    ctx *c = *state;
    sent *a = send_cmd(c, "execute", "a");
    sent *b = send_cmd(c, "execute", "b");
    sent *x = send_cmd(c, "execute", "c");
    barrier(c);
    /* a runs; b and c wait, unanswered */
    assert_int_equal(a->nacks, 1);
    assert_int_equal(a->acks[0], SAL_CMD_INPROGRESS);
    assert_int_equal(b->nacks, 0);
    assert_int_equal(x->nacks, 0);
    assert_int_equal(csc_counts(c).nrun, 1);
    /* finishing a runs b at once, and only b */
    finish(c, 0);
    assert_true(fx_run_until(&c->f, has_ack, b, 10));
    assert_true(a->done);
    assert_int_equal(a->final_ack, SAL_CMD_COMPLETE);
    assert_int_equal(b->acks[0], SAL_CMD_INPROGRESS);
    assert_int_equal(x->nacks, 0);
    finish(c, 0);
    assert_true(fx_run_until(&c->f, has_ack, x, 10));
    finish(c, 0);
    assert_true(fx_run_until(&c->f, is_done, x, 10));
    assert_true(a->final_rank < b->final_rank && b->final_rank < x->final_rank);
    assert_string_equal(csc_counts(c).order, "a,b,c");
}

static bool all_running(fx *f, void *arg)
{
    (void)f;
    ctx *c = arg;
    for (int i = 0; i < c->ncmds; i++) {
        if (strcmp(c->cmds[i].name, "execute") == 0 && c->cmds[i].nacks == 0) {
            return false;
        }
    }
    return true;
}

static void concurrent_commands_run_together_and_end_in_any_order(void **state)
{
    ctx *c = *state;
    sent *a = send_cmd(c, "execute", "a");
    sent *b = send_cmd(c, "execute", "b");
    sent *x = send_cmd(c, "execute", "c");
    assert_true(fx_run_until(&c->f, all_running, c, 10));
    assert_int_equal(csc_counts(c).nheld, 3);
    finish(c, -1); /* c first, then b, then a */
    finish(c, -1);
    finish(c, -1);
    assert_true(fx_run_until(&c->f, is_done, a, 10));
    assert_true(b->done && x->done);
    assert_true(x->final_rank < b->final_rank && b->final_rank < a->final_rank);
    assert_int_equal(a->final_ack, SAL_CMD_COMPLETE);
    assert_string_equal(csc_counts(c).order, "a,b,c");
}

static void a_busy_topic_holds_up_no_other(void **state)
{
    ctx *c = *state;
    sent *a = send_cmd(c, "execute", "a");
    sent *b = send_cmd(c, "execute", "b");
    sent *abort = send_cmd(c, "abort_job", NULL);
    sent *start = send_cmd(c, "start", NULL);
    assert_true(fx_run_until(&c->f, is_done, start, 10));
    assert_true(fx_run_until(&c->f, is_done, abort, 10));
    assert_int_equal(abort->final_ack, SAL_CMD_COMPLETE);
    assert_int_equal(start->final_ack, SAL_CMD_COMPLETE);
    assert_false(a->done);
    assert_int_equal(b->nacks, 0); /* still waiting behind a */
    finish(c, 0);
    finish(c, 0);
    assert_true(fx_run_until(&c->f, is_done, b, 10));
}

static void a_hundred_wait_and_the_next_is_refused(void **state)
{
    ctx *c = *state;
    sent *first = send_cmd(c, "execute", "0");
    for (int i = 1; i <= 100; i++) {
        char tag[8];
        snprintf(tag, sizeof tag, "%d", i);
        send_cmd(c, "execute", tag);
    }
    sent *extra = send_cmd(c, "execute", "101");
    barrier(c);
    assert_int_equal(first->nacks, 1); /* running */
    assert_true(extra->done);
    assert_int_equal(extra->final_ack, SAL_CMD_FAILED);
    assert_string_equal(extra->result, "Failed: too many commands queued");
    for (int i = 1; i <= 100; i++) {
        assert_int_equal(c->cmds[i].nacks, 0); /* queued */
    }
    /* all of them run, in order, once each is finished */
    assert_int_equal(ct_call(c->csc, finish_all_in_order, &c->h), 0);
    assert_true(fx_run_until(&c->f, is_done, &c->cmds[100], 10));
    for (int i = 0; i <= 100; i++) {
        assert_int_equal(c->cmds[i].final_ack, SAL_CMD_COMPLETE);
        if (i > 0) {
            assert_true(c->cmds[i].final_rank > c->cmds[i - 1].final_rank);
        }
    }
    counts k = csc_counts(c);
    assert_int_equal(k.nrun, 101);
    assert_true(strncmp(k.order, "0,1,2,3,", 8) == 0);
    assert_non_null(strstr(k.order, ",99,100"));
}

static void a_command_without_handler_is_refused(void **state)
{
    ctx *c = *state;
    sent *s = send_cmd(c, "execute", "a");
    assert_true(fx_run_until(&c->f, is_done, s, 10));
    assert_int_equal(s->final_ack, SAL_CMD_FAILED);
    assert_string_equal(s->result, "Failed: This command is not supported");
}

static bool ackcmd_writer_gone(fx *f, void *arg)
{
    (void)arg;
    int t = sal_component_find_topic(f->comp, "ackcmd");
    return sal_matched(sal_remote_sal(f->remote), t, false) == 0;
}

/* salobj's CSC closes its command readers, cancelling the command tasks,
 * and its ackcmd writer together: a command running or queued when it
 * stops gets no final ack, and the commander times out (CMD_NOACK). The
 * CSC here does the same: sal_csc_close releases what the application
 * holds and drops the queues without writing an ack. */
static void stopping_leaves_commands_in_flight_unanswered(void **state)
{
    ctx *c = *state;
    sent *running = send_cmd(c, "execute", "a");
    sent *queued1 = send_cmd(c, "execute", "b");
    sent *queued2 = send_cmd(c, "execute", "c");
    sent *other = send_cmd(c, "abort_job", NULL); /* held too, on its own topic */
    assert_true(fx_run_until(&c->f, has_ack, other, 10));
    assert_int_equal(csc_counts(c).nheld, 2);
    assert_int_equal(ct_stop(c->csc), 0);
    c->csc = NULL;
    /* everything the CSC wrote is read before its writers are seen to go */
    assert_true(fx_run_until(&c->f, ackcmd_writer_gone, NULL, 10));
    assert_int_equal(running->nacks, 1); /* INPROGRESS only */
    assert_int_equal(other->nacks, 1);
    assert_int_equal(queued1->nacks, 0);
    assert_int_equal(queued2->nacks, 0);
    assert_false(running->done || other->done || queued1->done || queued2->done);
}

/* A Remote keeps an ended command's entry for the next one: after an
 * answered command and after timed-out ones, a command still gets its own
 * answer or, with nobody answering, CMD_NOACK at its own timeout. */
static sent *send_timed(ctx *c, const char *name, double timeout)
{
    fx *f = &c->f;
    char err[256];
    int t = sal_remote_command_topic(f->remote, name);
    void *s = sal_remote_new_command(f->remote, name);
    sent *rec = &c->cmds[c->ncmds];
    ack_args[c->ncmds] = (ack_arg){c, rec};
    snprintf(rec->name, sizeof rec->name, "%s", name);
    assert_int_equal(
        sal_remote_command(f->remote, name, s, timeout, on_ack, &ack_args[c->ncmds], NULL, err, sizeof err),
        0);
    c->ncmds++;
    sal_sample_free(&f->comp->topics[t], s);
    return rec;
}

static void reused_command_entries_still_time_out(void **state)
{
    ctx *c = *state;
    sent *answered = send_cmd(c, "execute", "a"); /* refused at once: a final ack */
    assert_true(fx_run_until(&c->f, is_done, answered, 10));
    assert_int_equal(answered->final_ack, SAL_CMD_FAILED);
    assert_int_equal(ct_stop(c->csc), 0);
    c->csc = NULL;
    assert_true(fx_run_until(&c->f, ackcmd_writer_gone, NULL, 10));
    for (int i = 0; i < 3; i++) {
        double t0 = tu_now();
        sent *lost = send_timed(c, "execute", 0.2);
        assert_true(fx_run_until(&c->f, is_done, lost, 10));
        assert_int_equal(lost->final_ack, SAL_CMD_NOACK);
        assert_int_equal(lost->nacks, 1);
        double took = tu_now() - t0;
        assert_true(took >= 0.15 && took < 5); /* at its own timeout, not at once */
    }
}

static void on_echo(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)ack;
    (void)error;
    (void)timeout;
    echo_wait *w = arg;
    if (final) {
        w->done = true;
        snprintf(w->result, sizeof w->result, "%s", result);
    }
}

static bool echoed(fx *f, void *arg)
{
    (void)f;
    return ((echo_wait *)arg)->done;
}

static void execute_echo(fx *f, const char *tag, echo_wait *w)
{
    char err[256];
    sal_remote_prepare(f->remote, "execute", err, sizeof err);
    assert_true(fx_run_until(f, ready, "execute", 10));
    int t = sal_remote_command_topic(f->remote, "execute");
    void *s = sal_remote_new_command(f->remote, "execute");
    assert_int_equal(
        sal_sample_set_string(&ocps_test_component()->topics[t], s, "pipeline", tag, err, sizeof err), 0);
    assert_int_equal(sal_remote_command(f->remote, "execute", s, 10, on_echo, w, NULL, err, sizeof err), 0);
    sal_sample_free(&ocps_test_component()->topics[t], s);
}

/* Two Remotes of one process and one identity (user@host) match acks by
 * identity, origin and seqNum: they must not number their commands alike,
 * or each takes the other's answers. */
static void remotes_of_one_identity_get_their_own_answers(void **state)
{
    ctx *c = *state;
    fx *other = &c->other;
    assert_int_equal(fx_open_transport(other, ocps_test_component(), 1, NULL, &sal_inproc_transport), 0);
    assert_string_equal(sal_identity(sal_remote_sal(other->remote)),
                        sal_identity(sal_remote_sal(c->f.remote)));
    execute_echo(&c->f, "mine", &c->mine);
    execute_echo(other, "theirs", &c->theirs);
    assert_true(fx_run_until(&c->f, echoed, &c->mine, 10));
    assert_true(fx_run_until(other, echoed, &c->theirs, 10));
    assert_string_equal(c->mine.result, "mine");
    assert_string_equal(c->theirs.result, "theirs");
}

/* --- Remotes on several threads --- */

#define PER_REMOTE 200

typedef struct remote_run {
    const char *identity;
    int finals;
    int complete;
    bool ok;
} remote_run;

static void count_ack(void *arg, int ack, int error, const char *result, double timeout, bool final)
{
    (void)error;
    (void)result;
    (void)timeout;
    remote_run *r = arg;
    if (final) {
        r->finals++;
        r->complete += ack == SAL_CMD_COMPLETE;
    }
}

static bool all_answered(fx *f, void *arg)
{
    (void)f;
    return ((remote_run *)arg)->finals == PER_REMOTE;
}

/* A Remote on its own thread and loop sends PER_REMOTE abort_jobs at once
 * and waits for their answers. */
static void *remote_thread(void *arg)
{
    remote_run *r = arg;
    fx f;
    char err[256];
    if (fx_open_transport(&f, ocps_test_component(), 1, r->identity, &sal_inproc_transport) != 0) {
        return NULL;
    }
    sal_remote_prepare(f.remote, "abort_job", err, sizeof err);
    if (fx_run_until(&f, ready, "abort_job", 10)) {
        int t = sal_remote_command_topic(f.remote, "abort_job");
        void *s = sal_remote_new_command(f.remote, "abort_job");
        for (int i = 0; i < PER_REMOTE; i++) {
            sal_remote_command(f.remote, "abort_job", s, 30, count_ack, r, NULL, err, sizeof err);
        }
        sal_sample_free(&ocps_test_component()->topics[t], s);
        r->ok = fx_run_until(&f, all_answered, r, 30);
    }
    fx_close(&f);
    return NULL;
}

static void remotes_on_several_threads_get_every_answer(void **state)
{
    ctx *c = *state;
    /* of the default identity, found on each thread */
    remote_run runs[3] = {{.identity = NULL}, {.identity = NULL}, {.identity = NULL}}; /* user@host */
    pthread_t threads[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_create(&threads[i], NULL, remote_thread, &runs[i]), 0);
    }
    /* and this thread's Remote commands meanwhile */
    sent *a = send_cmd(c, "execute", "a");
    assert_true(fx_run_until(&c->f, has_ack, a, 10));
    finish(c, 0);
    assert_true(fx_run_until(&c->f, is_done, a, 10));
    for (int i = 0; i < 3; i++) {
        pthread_join(threads[i], NULL);
        assert_true(runs[i].ok);
        assert_int_equal(runs[i].finals, PER_REMOTE);
        assert_int_equal(runs[i].complete, PER_REMOTE);
    }
    assert_int_equal(a->final_ack, SAL_CMD_COMPLETE);
}

/* --- a commander's identity, whole or refused --- */

static void raw_sample(void *arg, int topic, void *sample)
{
    const sal_component_info *comp = arg;
    sal_sample_free(&comp->topics[topic], sample);
}

static void raw_matched(void *arg, int topic, bool is_writer, int32_t current, int32_t change)
{
    (void)arg, (void)topic, (void)is_writer, (void)current, (void)change;
}

static void raw_error(void *arg, const char *message)
{
    (void)arg;
    fprintf(stderr, "raw transport: %s\n", message);
}

/* setLogLevel as a commander of `identity` (len bytes) sends it: the
 * private fields set by hand, as a Kafka reader hands them over. */
static void send_as(ctx *c, int32_t seqnum, const char *identity, size_t len)
{
    const sal_component_info *comp = ocps_test_component();
    char err[256];
    int t = sal_component_find_topic(comp, "command_setLogLevel");
    if (c->raw == NULL) {
        sal_transport_cbs cbs = {raw_sample, raw_matched, raw_error, (void *)comp, NULL, NULL, 0};
        assert_int_equal(sal_inproc_transport.open(&c->raw, comp, 1, &cbs, err, sizeof err), 0);
        assert_int_equal(sal_inproc_transport.writer_create(c->raw, t, err, sizeof err), 0);
    }
    const sal_topic_info *ti = &comp->topics[t];
    void *s = sal_sample_new(ti);
    sal_sample_set_i32(ti, s, "salIndex", 1);
    sal_sample_set_i32(ti, s, "private_seqNum", seqnum);
    sal_sample_set_i32(ti, s, "private_origin", 4242);
    assert_int_equal(sal_sample_set_number(ti, s, "private_sndStamp", 0, tu_now() + 37, err, sizeof err), 0);
    sal_sample_set_identity(ti, s, identity, len);
    assert_int_equal(sal_inproc_transport.write(c->raw, t, s, err, sizeof err), 0);
    sal_sample_free(ti, s);
}

/* Every ack on the bus, whoever it answers. */
typedef struct any_acks {
    const sal_topic_info *topic;
    int n;
    int32_t seqnum[8];
    int ack[8];
    char result[8][256];
    char identity[8][SAL_IDENTITY_MAX + 1];
} any_acks;

static void on_any_ack(void *arg, int topic, const void *sample)
{
    (void)topic;
    any_acks *a = arg;
    if (a->n < 8) {
        a->seqnum[a->n] = sal_sample_seqnum(a->topic, sample);
        a->ack[a->n] = sal_sample_get_i32(a->topic, sample, "ack");
        snprintf(a->result[a->n], sizeof a->result[0], "%s",
                 sal_sample_get_string(a->topic, sample, "result"));
        snprintf(a->identity[a->n], sizeof a->identity[0], "%s",
                 sal_sample_get_string(a->topic, sample, "identity"));
        a->n++;
    }
}

typedef struct final_of {
    any_acks *acks;
    int32_t seqnum;
    int index; /* of its final ack, once read */
} final_of;

static bool has_final(fx *f, void *arg)
{
    (void)f;
    final_of *w = arg;
    for (int i = 0; i < w->acks->n; i++) {
        if (w->acks->seqnum[i] == w->seqnum && w->acks->ack[i] != SAL_CMD_ACK &&
            w->acks->ack[i] != SAL_CMD_INPROGRESS) {
            w->index = i;
            return true;
        }
    }
    return false;
}

/* A commander's identity longer than the DDS IDL's 128 bytes, as Kafka
 * delivers it (salobj 8: an unbounded string), is echoed whole in its
 * acks, so that its Remote matches them. One longer than the
 * SAL_IDENTITY_MAX bytes the runtime carries is not cut (its acks would
 * match nothing): the command is refused with CMD_FAILED and the reason,
 * echoing the identity's first SAL_IDENTITY_MAX bytes, all that was kept. */
static void long_identity_is_echoed_whole_or_refused(void **state)
{
    ctx *c = *state;
    fx *f = &c->f;
    any_acks *acks = calloc(1, sizeof *acks);
    int ackcmd = sal_component_find_topic(f->comp, "ackcmd");
    acks->topic = &f->comp->topics[ackcmd];
    char err[256];
    assert_int_equal(sal_reader_add(sal_remote_sal(f->remote), ackcmd, on_any_ack, acks, err, sizeof err), 0);
    char *id = malloc(1101);
    memset(id, 'h', 1100);
    memcpy(id, "script@", 7);
    id[1100] = '\0';

    send_as(c, 7001, id, 200);
    final_of w = {acks, 7001, -1};
    assert_true(fx_run_until(f, has_final, &w, 10));
    assert_int_equal(acks->ack[w.index], SAL_CMD_COMPLETE);
    assert_int_equal(strlen(acks->identity[w.index]), 200);
    assert_memory_equal(acks->identity[w.index], id, 200);

    send_as(c, 7002, id, SAL_IDENTITY_MAX);
    w = (final_of){acks, 7002, -1};
    assert_true(fx_run_until(f, has_final, &w, 10));
    assert_int_equal(acks->ack[w.index], SAL_CMD_COMPLETE);
    assert_int_equal(strlen(acks->identity[w.index]), SAL_IDENTITY_MAX);

    size_t mark = f->nrecords;
    send_as(c, 7003, id, 1100);
    w = (final_of){acks, 7003, -1};
    assert_true(fx_run_until(f, has_final, &w, 10));
    assert_int_equal(acks->ack[w.index], SAL_CMD_FAILED);
    assert_string_equal(acks->result[w.index], "Failed: the commander's identity (private_identity) is 1100 "
                                               "bytes, longer than the 1024 this CSC accepts");
    assert_int_equal(strlen(acks->identity[w.index]), SAL_IDENTITY_MAX);
    assert_memory_equal(acks->identity[w.index], id, SAL_IDENTITY_MAX);
    long log = fx_wait_event(f, "logevent_logMessage", mark, 5);
    assert_true(log >= 0);
    const char *message =
        sal_sample_get_string(&f->comp->topics[f->records[log].topic], f->records[log].sample, "message");
    assert_non_null(strstr(message, "Refusing command_setLogLevel with private_seqNum=7003: the commander's "
                                    "identity (private_identity) is 1100 bytes"));
    free(id);
    free(acks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(one_topic_runs_one_command_at_a_time_in_order, setup_serial,
                                        teardown),
        cmocka_unit_test_setup_teardown(concurrent_commands_run_together_and_end_in_any_order,
                                        setup_concurrent, teardown),
        cmocka_unit_test_setup_teardown(a_busy_topic_holds_up_no_other, setup_serial, teardown),
        cmocka_unit_test_setup_teardown(a_hundred_wait_and_the_next_is_refused, setup_serial, teardown),
        cmocka_unit_test_setup_teardown(a_command_without_handler_is_refused, setup_unhandled, teardown),
        cmocka_unit_test_setup_teardown(reused_command_entries_still_time_out, setup_unhandled, teardown),
        cmocka_unit_test_setup_teardown(remotes_on_several_threads_get_every_answer, setup_serial, teardown),
        cmocka_unit_test_setup_teardown(remotes_of_one_identity_get_their_own_answers, setup_echo, teardown),
        cmocka_unit_test_setup_teardown(long_identity_is_echoed_whole_or_refused, setup_serial, teardown),
        cmocka_unit_test_setup_teardown(stopping_leaves_commands_in_flight_unanswered,
                                        setup_serial_holding_aborts, teardown),
    };
    return cmocka_run_group_tests_name("inproc_cmd_queues", tests, NULL, NULL);
}
