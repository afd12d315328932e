/* sal_remote.c - see sal_remote.h. */
#include "ocps/sal_remote.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ocps/sal_clock.h"
#include "ocps/sal_csc.h"
#include "ocps/sal_time.h"
#include "ocps/sal_user.h"

typedef struct pending {
    struct pending *next;
    sal_remote *remote;
    int32_t seqnum;
    sal_ack_cb cb;
    void *arg;
    uv_timer_t timer;
} pending;

typedef struct reader_state {
    sal_sample_cb cb;
    void *arg;
    void *last;
} reader_state;

/* Seconds a command's DDS writer stays matched before it is used
 * (sal_remote_ready). */
#define SAL_REMOTE_MATCH_GRACE 0.25

struct sal_remote {
    sal *sal;
    const sal_component_info *comp;
    int t_ackcmd;
    /* ackcmd's fields, resolved at open (read for every ack) */
    const sal_field_info *f_identity, *f_origin, *f_ack, *f_error, *f_timeout, *f_result;
    reader_state *readers; /* per topic */
    int32_t *next_seq;     /* per topic, commands only */
    double *ready_since;   /* per topic: monotonic s when first seen matched, 0 not (sal_remote_ready) */
    int32_t *seq_lo;
    int32_t *seq_hi;
    pending *pending;
    /* one ended command's entry kept, its timer open and stopped, for the
     * next command: no handle closed and opened per command, so a command
     * sent from an ack callback on a transport thread leaves the loop's
     * next timeout as late as it was and the loop asleep (sal_gate) */
    pending *spare;
    double ack_sent; /* private_sndStamp of the ack being delivered (sal_remote_ack_sent) */
    bool closing;
    sal_close_cb close_cb; /* sal_remote_close's */
    void *close_arg;
};

static void free_pending(uv_handle_t *h)
{
    free(h->data);
}

static void unlink_pending(sal_remote *r, pending *p)
{
    for (pending **pp = &r->pending; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    uv_timer_stop(&p->timer);
    if (r->spare == NULL && !r->closing) {
        r->spare = p;
    } else {
        uv_close((uv_handle_t *)&p->timer, free_pending);
    }
}

static void on_command_timeout(uv_timer_t *t)
{
    pending *p = t->data;
    sal_remote *r = p->remote;
    sal_ack_cb cb = p->cb;
    void *arg = p->arg;
    unlink_pending(r, p);
    cb(arg, SAL_CMD_NOACK, 1, "No ack received in time", 0.0, true);
}

static bool is_final(int ack)
{
    return ack != SAL_CMD_INPROGRESS && ack != SAL_CMD_ACK;
}

/* as sal_sample_get_i32, the field resolved */
static int32_t field_i32(const sal_field_info *f, const void *sample)
{
    int32_t v = 0;
    if (f != NULL && f->type == SAL_FIELD_LONG) {
        memcpy(&v, (const char *)sample + f->offset, sizeof v);
    }
    return v;
}

static void on_ackcmd(void *arg, int topic, const void *sample)
{
    sal_remote *r = arg;
    const sal_topic_info *t = &r->comp->topics[topic];
    const char *identity = r->f_identity != NULL ? sal_field_get_string(r->f_identity, sample) : NULL;
    if (identity == NULL || strcmp(identity, sal_identity(r->sal)) != 0 ||
        field_i32(r->f_origin, sample) != sal_origin(r->sal)) {
        return; /* someone else's command */
    }
    int32_t seqnum = sal_sample_seqnum(t, sample);
    pending *p = r->pending;
    while (p != NULL && p->seqnum != seqnum) {
        p = p->next;
    }
    if (p == NULL) {
        return;
    }
    int ack = field_i32(r->f_ack, sample);
    int error = field_i32(r->f_error, sample);
    double timeout = r->f_timeout != NULL ? sal_field_get_number(r->f_timeout, sample, 0) : 0;
    const char *result = r->f_result != NULL ? sal_field_get_string(r->f_result, sample) : NULL;
    bool final = is_final(ack);
    sal_ack_cb cb = p->cb;
    void *cb_arg = p->arg;
    if (final) {
        unlink_pending(r, p);
    } else if (ack == SAL_CMD_INPROGRESS && timeout > 0) {
        /* salobj: INPROGRESS extends the remaining time by ackcmd.timeout */
        uint64_t left = uv_timer_get_due_in(&p->timer);
        uint64_t more = sal_seconds_to_ms(timeout); /* from the wire: any double */
        uv_timer_start(&p->timer, on_command_timeout, more < UINT64_MAX - left ? left + more : UINT64_MAX, 0);
    }
    r->ack_sent = sal_sample_snd_stamp(t, sample);
    cb(cb_arg, ack, error, result ? result : "", timeout, final);
    r->ack_sent = 0;
}

double sal_remote_ack_sent(const sal_remote *r)
{
    return r->ack_sent;
}

static void init_seq_ranges(sal_remote *r)
{
    size_t ncmd = 0;
    for (size_t i = 0; i < r->comp->ntopics; i++) {
        ncmd += r->comp->topics[i].kind == SAL_TOPIC_COMMAND;
    }
    if (ncmd == 0) {
        return;
    }
    int32_t inc = (int32_t)(INT32_MAX / (int64_t)ncmd);
    /* each Remote of the process starts elsewhere: two of one identity
     * opened in the same second would otherwise number alike and take
     * each other's acks */
    static unsigned opened;
    unsigned n = __atomic_add_fetch(&opened, 1, __ATOMIC_RELAXED);
    unsigned seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16) ^ (n * 0x9E3779B9u);
    size_t k = 0;
    for (size_t i = 0; i < r->comp->ntopics; i++) {
        if (r->comp->topics[i].kind != SAL_TOPIC_COMMAND) {
            continue;
        }
        r->seq_lo[i] = (int32_t)k * inc + 1;
        r->seq_hi[i] = (int32_t)(k + 1) * inc;
        r->next_seq[i] = r->seq_lo[i] + (int32_t)(rand_r(&seed) % inc);
        k++;
    }
}

int sal_remote_open(sal_remote **out, uv_loop_t *loop, const sal_component_info *comp, int32_t index,
                    const sal_transport_ops *ops, const char *identity, char *err, size_t errlen)
{
    return sal_remote_open_within(out, loop, comp, index, ops, identity, 0, err, errlen);
}

int sal_remote_open_within(sal_remote **out, uv_loop_t *loop, const sal_component_info *comp, int32_t index,
                           const sal_transport_ops *ops, const char *identity, double open_timeout, char *err,
                           size_t errlen)
{
    *out = NULL;
    sal_remote *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->comp = comp;
    r->readers = calloc(comp->ntopics, sizeof *r->readers);
    r->next_seq = calloc(comp->ntopics, sizeof *r->next_seq);
    r->ready_since = calloc(comp->ntopics, sizeof *r->ready_since);
    r->seq_lo = calloc(comp->ntopics, sizeof *r->seq_lo);
    r->seq_hi = calloc(comp->ntopics, sizeof *r->seq_hi);
    if (r->readers == NULL || r->next_seq == NULL || r->ready_since == NULL || r->seq_lo == NULL ||
        r->seq_hi == NULL) {
        snprintf(err, errlen, "out of memory");
        sal_remote_close(r, NULL, NULL);
        return -ENOMEM;
    }
    char me[256];
    if (identity == NULL) {
        sal_user_at_host(me, sizeof me);
        identity = me;
    }
    int rc = sal_open_within(&r->sal, loop, comp, index, ops, identity, open_timeout, err, errlen);
    if (rc != 0) {
        r->sal = NULL;
        sal_remote_close(r, NULL, NULL);
        return rc;
    }
    init_seq_ranges(r);
    r->t_ackcmd = sal_component_find_topic(comp, "ackcmd");
    if (r->t_ackcmd >= 0) {
        const sal_topic_info *ack = &comp->topics[r->t_ackcmd];
        r->f_identity = sal_topic_field(ack, "identity");
        r->f_origin = sal_topic_field(ack, "origin");
        r->f_ack = sal_topic_field(ack, "ack");
        r->f_error = sal_topic_field(ack, "error");
        r->f_timeout = sal_topic_field(ack, "timeout");
        r->f_result = sal_topic_field(ack, "result");
        rc = sal_reader_add(r->sal, r->t_ackcmd, on_ackcmd, r, err, errlen);
        if (rc != 0) {
            sal_remote_close(r, NULL, NULL);
            return rc;
        }
    }
    *out = r;
    return 0;
}

static void on_topic_sample(void *arg, int topic, const void *sample)
{
    sal_remote *r = arg;
    reader_state *rs = &r->readers[topic];
    const sal_topic_info *t = &r->comp->topics[topic];
    void *copy = sal_sample_dup(t, sample);
    if (copy != NULL) {
        sal_sample_free(t, rs->last);
        rs->last = copy;
    }
    if (rs->cb != NULL) {
        rs->cb(rs->arg, topic, sample);
    }
}

int sal_remote_subscribe(sal_remote *r, const char *sal_name, sal_sample_cb cb, void *arg, char *err,
                         size_t errlen)
{
    int t = sal_component_find_topic(r->comp, sal_name);
    if (t < 0 || r->comp->topics[t].kind == SAL_TOPIC_COMMAND || t == r->t_ackcmd) {
        snprintf(err, errlen, "%s has no event or telemetry topic %s", r->comp->name, sal_name);
        return -EINVAL;
    }
    r->readers[t].cb = cb;
    r->readers[t].arg = arg;
    return sal_reader_add(r->sal, t, on_topic_sample, r, err, errlen);
}

const void *sal_remote_last(const sal_remote *r, const char *sal_name)
{
    int t = sal_component_find_topic(r->comp, sal_name);
    return t < 0 ? NULL : r->readers[t].last;
}

int sal_remote_command_topic(const sal_remote *r, const char *name)
{
    /* looked up for every command: the name put together without snprintf */
    static const char prefix[] = "command_";
    char sal_name[128];
    size_t n = strlen(name);
    if (n >= sizeof sal_name - (sizeof prefix - 1)) {
        return -1;
    }
    memcpy(sal_name, prefix, sizeof prefix - 1);
    memcpy(sal_name + sizeof prefix - 1, name, n + 1);
    return sal_component_find_topic(r->comp, sal_name);
}

int sal_remote_prepare(sal_remote *r, const char *name, char *err, size_t errlen)
{
    int t = sal_remote_command_topic(r, name);
    if (t < 0) {
        snprintf(err, errlen, "%s has no command %s", r->comp->name, name);
        return -EINVAL;
    }
    return sal_writer_add(r->sal, t, err, errlen);
}

bool sal_remote_ready(const sal_remote *r, const char *name)
{
    int t = sal_remote_command_topic(r, name);
    if (t < 0 || sal_matched(r->sal, t, true) <= 0 || sal_matched(r->sal, r->t_ackcmd, false) <= 0) {
        if (t >= 0) {
            r->ready_since[t] = 0;
        }
        return false;
    }
    /* matched here is not yet matched there (DDS): the CSC learns of this
     * writer (and of the ackcmd reader) from discovery messages it handles
     * apart from data, and a volatile reader drops a command from a writer
     * it does not know yet (a fresh writer of a running commander matches
     * at once; seen as commands lost under load) */
    if (!sal_match_needs_grace(r->sal)) {
        return true; /* a log (Kafka) or one process (inproc): no such race */
    }
    double now = sal_clock_monotonic();
    if (r->ready_since[t] == 0) {
        r->ready_since[t] = now;
    }
    return now - r->ready_since[t] >= SAL_REMOTE_MATCH_GRACE;
}

void *sal_remote_new_command(sal_remote *r, const char *name)
{
    int t = sal_remote_command_topic(r, name);
    return t < 0 ? NULL : sal_sample_new(&r->comp->topics[t]);
}

int sal_remote_command(sal_remote *r, const char *name, void *sample, double timeout, sal_ack_cb cb,
                       void *arg, int32_t *seqnum, char *err, size_t errlen)
{
    int t = sal_remote_command_topic(r, name);
    if (t < 0) {
        snprintf(err, errlen, "%s has no command %s", r->comp->name, name);
        return -EINVAL;
    }
    if (r->closing) {
        snprintf(err, errlen, "the Remote is closing");
        return -EINVAL;
    }
    pending *p = r->spare;
    if (p != NULL) {
        r->spare = NULL;
    } else if ((p = calloc(1, sizeof *p)) != NULL) {
        uv_timer_init(sal_loop(r->sal), &p->timer);
        p->timer.data = p;
    } else {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int32_t seq = r->next_seq[t];
    r->next_seq[t] = seq >= r->seq_hi[t] ? r->seq_lo[t] : seq + 1;
    sal_sample_set_seqnum(&r->comp->topics[t], sample, seq);
    /* waiting before the write: nothing left to do after it (the ack may
     * come while this thread still finishes the write) */
    p->remote = r;
    p->seqnum = seq;
    p->cb = cb;
    p->arg = arg;
    uv_timer_start(&p->timer, on_command_timeout, sal_seconds_to_ms(timeout), 0);
    p->next = r->pending;
    r->pending = p;
    int rc = sal_write(r->sal, t, sample, SAL_WRITE_KEEP_SEQNUM, err, errlen);
    if (rc != 0) {
        unlink_pending(r, p);
        return rc;
    }
    if (seqnum != NULL) {
        *seqnum = seq;
    }
    return 0;
}

sal *sal_remote_sal(sal_remote *r)
{
    return r->sal;
}

/* The runtime under a closing Remote has closed: free the Remote. */
static void remote_closed(void *arg)
{
    sal_remote *r = arg;
    sal_close_cb cb = r->close_cb;
    void *cb_arg = r->close_arg;
    free(r->readers);
    free(r->next_seq);
    free(r->ready_since);
    free(r->seq_lo);
    free(r->seq_hi);
    free(r);
    if (cb != NULL) {
        cb(cb_arg);
    }
}

void sal_remote_close(sal_remote *r, sal_close_cb cb, void *arg)
{
    if (r == NULL) {
        if (cb != NULL) {
            cb(arg);
        }
        return;
    }
    r->close_cb = cb;
    r->close_arg = arg;
    r->closing = true;
    while (r->pending != NULL) {
        unlink_pending(r, r->pending);
    }
    if (r->spare != NULL) {
        uv_close((uv_handle_t *)&r->spare->timer, free_pending);
        r->spare = NULL;
    }
    if (r->readers != NULL) {
        for (size_t i = 0; i < r->comp->ntopics; i++) {
            sal_sample_free(&r->comp->topics[i], r->readers[i].last);
        }
        memset(r->readers, 0, r->comp->ntopics * sizeof *r->readers); /* no callbacks from now on */
    }
    sal_close(r->sal, remote_closed, r);
}
