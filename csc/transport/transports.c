/* transports.c - the registry of transports built into this binary; the
 * table comes from the build options (OCPS_TRANSPORT_DDS, ..._KAFKA). */
#include <string.h>

#include "ocps/sal_transport.h"
#include "sal_transport_table.h"

static const sal_transport_ops *const transports[] = {SAL_TRANSPORT_TABLE};

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
    return SAL_TRANSPORT_NAMES;
}
