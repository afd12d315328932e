/* transports.c - the registry of transports built into this binary. */
#include <string.h>

#include "dds/sal_dds.h"
#include "inproc/sal_inproc.h"
#include "kafka/sal_kafka.h"
#include "sal_transport.h"

static const sal_transport_ops *const transports[] = {
    &sal_dds_transport,
    &sal_kafka_transport,
    &sal_inproc_transport,
};

const sal_transport_ops *sal_transport_find(const char *name)
{
    for (size_t i = 0; i < sizeof transports / sizeof transports[0]; i++) {
        if (strcmp(transports[i]->name, name) == 0) {
            return transports[i];
        }
    }
    return NULL;
}

const char *sal_transport_names(void)
{
    return "dds, kafka, inproc";
}
