/* ocps_interface.c - embedded OCPS releases and OCPS's SAL indices. */
#include "ocps/ocps_interface.h"

#include <stdlib.h>
#include <string.h>

#include "OCPS_interfaces.h"

static const sal_enum_value indices[] = {
    {"LATISS", 1},
    {"LSSTComCam", 2},
    {"LSSTCam", 3},
    {"RA", 101},
};

const sal_interface_set *ocps_interfaces(void)
{
    return &OCPS_sal_interfaces;
}

const sal_component_info *ocps_interface_select(const char *transport, const char *xml_version, char *err,
                                                size_t errlen)
{
    const char *want = xml_version;
    if (want == NULL || want[0] == '\0') {
        want = getenv(OCPS_XML_VERSION_ENV);
    }
    return sal_interface_select(&OCPS_sal_interfaces, transport, want, err, errlen);
}

const sal_enum_value *ocps_indices(size_t *n)
{
    *n = sizeof indices / sizeof indices[0];
    return indices;
}

const char *ocps_index_name(int32_t index)
{
    for (size_t i = 0; i < sizeof indices / sizeof indices[0]; i++) {
        if (indices[i].value == index) {
            return indices[i].name;
        }
    }
    return NULL;
}

int32_t ocps_index_of(const char *name)
{
    for (size_t i = 0; i < sizeof indices / sizeof indices[0]; i++) {
        if (strcmp(indices[i].name, name) == 0) {
            return (int32_t)indices[i].value;
        }
    }
    return -1;
}
