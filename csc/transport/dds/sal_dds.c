/* sal_dds.c - the Cyclone DDS transport; see sal_dds.h. */
#include "sal_dds.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dds/dds.h>
#include <dds/version.h>

#include "ocps/sal_env.h"
#include "ocps/sal_sample.h"

/* samples one take may return: fewer means the reader is empty now */
#define TAKE_MAX 4

typedef struct endpoint_arg {
    struct sal_transport *t;
    int topic;
    void *spare[TAKE_MAX]; /* the reader's next samples to take into (its listener's alone) */
} endpoint_arg;

struct sal_transport {
    const sal_component_info *comp;
    int32_t index;
    sal_transport_cbs cbs;
    dds_entity_t participant;
    dds_entity_t pub[2]; /* 0: cmd partition, 1: data partition */
    dds_entity_t sub[2];
    dds_entity_t *topics;
    dds_entity_t *readers;
    dds_entity_t *writers;
    endpoint_arg *args;
    char partition[2][256];
};

enum { PART_CMD = 0, PART_DATA = 1 };

static void on_subscription_matched(dds_entity_t reader, const dds_subscription_matched_status_t status,
                                    void *arg);

static int dds_fail(char *err, size_t errlen, const char *what, dds_return_t rc)
{
    snprintf(err, errlen, "%s: %s", what, dds_strretcode(rc));
    return rc < 0 ? rc : -EIO;
}

static bool interface_name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 64) {
        return false;
    }
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && strchr("._:-", *s) == NULL) {
            return false;
        }
    }
    return true;
}

static int read_domain(dds_domainid_t *domain, char *err, size_t errlen)
{
    long v;
    int rc = sal_env_int("LSST_DDS_DOMAIN_ID", 0, 0, 232, "a domain id", &v, err, errlen);
    *domain = (dds_domainid_t)v;
    return rc;
}

/* Map LSST_DDS_INTERFACE to a Cyclone domain configuration, unless the
 * user configured Cyclone directly with CYCLONEDDS_URI. */
static int configure_domain(dds_domainid_t domain, char *err, size_t errlen)
{
    const char *iface = getenv("LSST_DDS_INTERFACE");
    if (getenv("CYCLONEDDS_URI") != NULL || iface == NULL || *iface == '\0' || strcmp(iface, "AUTO") == 0) {
        return 0;
    }
    if (!interface_name_ok(iface)) {
        snprintf(err, errlen, "LSST_DDS_INTERFACE=%s is not an interface name or address", iface);
        return -EINVAL;
    }
    char xml[512];
    bool is_addr = isdigit((unsigned char)iface[0]) || strchr(iface, ':') != NULL;
    snprintf(xml, sizeof xml,
             "<CycloneDDS><Domain><General><Interfaces><NetworkInterface %s=\"%s\"/></Interfaces>"
             "</General></Domain></CycloneDDS>",
             is_addr ? "address" : "name", iface);
    dds_entity_t d = dds_create_domain(domain, xml);
    if (d < 0 && d != DDS_RETCODE_PRECONDITION_NOT_MET) {
        return dds_fail(err, errlen, "dds_create_domain", d);
    }
    return 0;
}

static int transport_open(sal_transport **out, const sal_component_info *comp, int32_t index,
                          const sal_transport_cbs *cbs, char *err, size_t errlen)
{
    *out = NULL;
    const char *prefix = getenv("LSST_DDS_PARTITION_PREFIX");
    if (prefix == NULL || *prefix == '\0') {
        snprintf(err, errlen,
                 "LSST_DDS_PARTITION_PREFIX must be set (the DDS partition prefix, e.g. summit)");
        return -EINVAL;
    }
    if (strlen(prefix) > 128) {
        snprintf(err, errlen, "LSST_DDS_PARTITION_PREFIX is longer than 128 characters");
        return -EINVAL;
    }
    dds_domainid_t domain;
    int rc = read_domain(&domain, err, errlen);
    if (rc == 0) {
        rc = configure_domain(domain, err, errlen);
    }
    if (rc != 0) {
        return rc;
    }
    sal_transport *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    t->comp = comp;
    t->index = index;
    t->cbs = *cbs;
    t->topics = calloc(comp->ntopics, sizeof *t->topics);
    t->readers = calloc(comp->ntopics, sizeof *t->readers);
    t->writers = calloc(comp->ntopics, sizeof *t->writers);
    t->args = calloc(comp->ntopics, sizeof *t->args);
    if (t->topics == NULL || t->readers == NULL || t->writers == NULL || t->args == NULL) {
        snprintf(err, errlen, "out of memory");
        t->participant = 0;
        sal_dds_transport.close(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < comp->ntopics; i++) {
        t->args[i].t = t;
        t->args[i].topic = (int)i;
    }
    snprintf(t->partition[PART_CMD], sizeof t->partition[PART_CMD], "%s.%s.cmd", prefix, comp->name);
    snprintf(t->partition[PART_DATA], sizeof t->partition[PART_DATA], "%s.%s.data", prefix, comp->name);
    t->participant = dds_create_participant(domain, NULL, NULL);
    if (t->participant < 0) {
        rc = dds_fail(err, errlen, "dds_create_participant", t->participant);
        t->participant = 0;
        sal_dds_transport.close(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* QoS shared by topics, readers and writers of a topic kind (ts_ddsconfig
 * QoS.xml profiles as salobj 7 uses them). */
/* The ackcmd writer's ownership strength: seconds since 2020-01-01 when it
 * is created, so that a restarted CSC outranks the one it replaces. ackcmd
 * readers are EXCLUSIVE (ts_ddsconfig): of several writers of one instance
 * they accept the strongest, and among equals the one the reader's tie-break
 * prefers, even if it is dead until its lease expires; Cyclone 0.10 readers
 * were seen never to accept the new writer after two CSCs were killed within
 * one lease (test_ocps_kill9). Strength is not a request/offered policy, so
 * salobj's readers match it as before; it only matters when two writers of
 * one SAL index exist, where the newest CSC is the one to hear. */
static int32_t ack_strength(void)
{
    const time_t epoch_2020 = 1577836800;
    time_t now = time(NULL);
    return now > epoch_2020 ? (int32_t)(now - epoch_2020) : 0;
}

static dds_qos_t *kind_qos(sal_topic_kind kind)
{
    dds_qos_t *q = dds_create_qos();
    dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, DDS_MSECS(100));
    dds_qset_history(q, DDS_HISTORY_KEEP_LAST, 100);
    dds_qset_durability(q, kind == SAL_TOPIC_EVENT ? DDS_DURABILITY_TRANSIENT : DDS_DURABILITY_VOLATILE);
    dds_qset_durability_service(q, 0, DDS_HISTORY_KEEP_LAST, 100, DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED,
                                DDS_LENGTH_UNLIMITED);
    dds_qset_ownership(q, kind == SAL_TOPIC_ACKCMD ? DDS_OWNERSHIP_EXCLUSIVE : DDS_OWNERSHIP_SHARED);
    dds_qset_destination_order(q, DDS_DESTINATIONORDER_BY_RECEPTION_TIMESTAMP);
    dds_qset_liveliness(q, DDS_LIVELINESS_AUTOMATIC, DDS_INFINITY);
    dds_qset_deadline(q, DDS_INFINITY);
    dds_qset_latency_budget(q, 0);
    dds_qset_lifespan(q, DDS_INFINITY);
    dds_qset_transport_priority(q, 0);
    dds_data_representation_id_t xcdr1 = DDS_DATA_REPRESENTATION_XCDR1;
    dds_qset_data_representation(q, 1, &xcdr1);
    return q;
}

static int ensure_topic(sal_transport *t, int topic, char *err, size_t errlen)
{
    if (t->topics[topic] > 0) {
        return 0;
    }
    const sal_topic_info *ti = &t->comp->topics[topic];
    char name[256];
    snprintf(name, sizeof name, "%s_%s_%s", t->comp->name, ti->sal_name, ti->dds_revcode);
    dds_qos_t *q = kind_qos(ti->kind);
    dds_entity_t tp = dds_create_topic(t->participant, ti->dds_descriptor, name, q, NULL);
    dds_delete_qos(q);
    if (tp < 0) {
        return dds_fail(err, errlen, "dds_create_topic", tp);
    }
    t->topics[topic] = tp;
    return 0;
}

static int partition_of(const sal_topic_info *ti)
{
    return ti->kind == SAL_TOPIC_COMMAND ? PART_CMD : PART_DATA;
}

static dds_qos_t *group_qos(const char *partition)
{
    dds_qos_t *q = dds_create_qos();
    dds_qset_presentation(q, DDS_PRESENTATION_INSTANCE, false, false);
    dds_qset_partition1(q, partition);
    return q;
}

static int ensure_group(sal_transport *t, bool publisher, int part, char *err, size_t errlen)
{
    dds_entity_t *slot = publisher ? &t->pub[part] : &t->sub[part];
    if (*slot > 0) {
        return 0;
    }
    dds_qos_t *q = group_qos(t->partition[part]);
    dds_entity_t e = publisher ? dds_create_publisher(t->participant, q, NULL)
                               : dds_create_subscriber(t->participant, q, NULL);
    dds_delete_qos(q);
    if (e < 0) {
        return dds_fail(err, errlen, publisher ? "dds_create_publisher" : "dds_create_subscriber", e);
    }
    *slot = e;
    return 0;
}

static void on_data_available(dds_entity_t reader, void *arg)
{
    endpoint_arg *ea = arg;
    const sal_topic_info *ti = &ea->t->comp->topics[ea->topic];
    /* Cyclone runs one listener call of a reader at a time: the spare
     * samples, kept between calls, are only this one's. A take that
     * returns fewer than it could has emptied the reader (what arrives
     * later calls the listener again), so a single command costs one take,
     * and a sample is allocated only to replace one handed on. */
    for (;;) {
        void *buf[TAKE_MAX];
        for (int i = 0; i < TAKE_MAX; i++) {
            if (ea->spare[i] == NULL && (ea->spare[i] = calloc(1, sal_sample_size(ti))) == NULL) {
                return;
            }
            buf[i] = ea->spare[i];
        }
        dds_sample_info_t info[TAKE_MAX];
        dds_return_t n = dds_take(reader, buf, info, TAKE_MAX, TAKE_MAX);
        if (n < 0) {
            SAL_TRANSPORT_COUNT(ea->t->cbs.stats, read_errors);
            return;
        }
        for (int i = 0; i < n; i++) {
            if (!info[i].valid_data) {
                sal_sample_clear(ti, ea->spare[i]); /* what an invalid sample set: zeroed again */
                continue;
            }
            void *sample = ea->spare[i];
            ea->spare[i] = NULL;
            sal_sample_identity_from_struct(ti, sample); /* the wire's string<128> */
            ea->t->cbs.on_sample(ea->t->cbs.arg, ea->topic, sample);
        }
        if (n < TAKE_MAX) {
            return;
        }
    }
}

static int transport_reader_create(sal_transport *t, int topic, char *err, size_t errlen)
{
    if (t->readers[topic] > 0) {
        return 0;
    }
    const sal_topic_info *ti = &t->comp->topics[topic];
    int part = partition_of(ti);
    int rc = ensure_topic(t, topic, err, errlen);
    if (rc == 0) {
        rc = ensure_group(t, false, part, err, errlen);
    }
    if (rc != 0) {
        return rc;
    }
    dds_qos_t *q = kind_qos(ti->kind);
    dds_listener_t *l = dds_create_listener(&t->args[topic]);
    dds_lset_data_available(l, on_data_available);
    dds_lset_subscription_matched(l, on_subscription_matched);
    dds_entity_t r = dds_create_reader(t->sub[part], t->topics[topic], q, l);
    dds_delete_listener(l);
    dds_delete_qos(q);
    if (r < 0) {
        return dds_fail(err, errlen, "dds_create_reader", r);
    }
    t->readers[topic] = r;
    return 0;
}

static void on_publication_matched(dds_entity_t writer, const dds_publication_matched_status_t status,
                                   void *arg)
{
    (void)writer;
    endpoint_arg *ea = arg;
    ea->t->cbs.on_matched(ea->t->cbs.arg, ea->topic, true, status.current_count, status.current_count_change);
}

static void on_subscription_matched(dds_entity_t reader, const dds_subscription_matched_status_t status,
                                    void *arg)
{
    (void)reader;
    endpoint_arg *ea = arg;
    ea->t->cbs.on_matched(ea->t->cbs.arg, ea->topic, false, status.current_count,
                          status.current_count_change);
}

static int transport_writer_create(sal_transport *t, int topic, char *err, size_t errlen)
{
    if (t->writers[topic] > 0) {
        return 0;
    }
    const sal_topic_info *ti = &t->comp->topics[topic];
    int part = partition_of(ti);
    int rc = ensure_topic(t, topic, err, errlen);
    if (rc == 0) {
        rc = ensure_group(t, true, part, err, errlen);
    }
    if (rc != 0) {
        return rc;
    }
    dds_qos_t *q = kind_qos(ti->kind);
    dds_qset_writer_data_lifecycle(q, true);
    if (ti->kind == SAL_TOPIC_ACKCMD) {
        dds_qset_ownership_strength(q, ack_strength());
    }
    dds_listener_t *l = dds_create_listener(&t->args[topic]);
    dds_lset_publication_matched(l, on_publication_matched);
    dds_entity_t w = dds_create_writer(t->pub[part], t->topics[topic], q, l);
    dds_delete_listener(l);
    dds_delete_qos(q);
    if (w < 0) {
        return dds_fail(err, errlen, "dds_create_writer", w);
    }
    t->writers[topic] = w;
    return 0;
}

static int transport_write(sal_transport *t, int topic, const void *sample, char *err, size_t errlen)
{
    if (t->writers[topic] <= 0) {
        int rc = transport_writer_create(t, topic, err, errlen);
        if (rc != 0) {
            SAL_TRANSPORT_COUNT(t->cbs.stats, write_failures);
            return rc;
        }
    }
    dds_return_t rc = dds_write(t->writers[topic], sample);
    if (rc != DDS_RETCODE_OK) {
        SAL_TRANSPORT_COUNT(t->cbs.stats, write_failures);
        return dds_fail(err, errlen, "dds_write", rc);
    }
    return 0;
}

static void transport_close(sal_transport *t)
{
    if (t == NULL) {
        return;
    }
    if (t->participant > 0) {
        dds_delete(t->participant); /* waits for running listeners */
    }
    free(t->topics);
    free(t->readers);
    free(t->writers);
    if (t->args != NULL) {
        for (size_t i = 0; i < t->comp->ntopics; i++) {
            for (int k = 0; k < TAKE_MAX; k++) {
                sal_sample_free(&t->comp->topics[i], t->args[i].spare[k]);
            }
        }
    }
    free(t->args);
    free(t);
}

static void dds_library_version(char *buf, size_t len)
{
    snprintf(buf, len, "cyclonedds=%s", DDS_VERSION);
}

const sal_transport_ops sal_dds_transport = {
    .name = "dds",
    .library_version = dds_library_version,
    .revcode = SAL_REVCODE_DDS,
    .exclusive_acks = true,
    .sal_versions = true,
    .match_needs_grace = true,
    .inline_delivery = true, /* listeners run outside the reader's lock; writing from them is allowed */
    .open = transport_open,
    .reader_create = transport_reader_create,
    .writer_create = transport_writer_create,
    .write = transport_write,
    .close = transport_close,
};
