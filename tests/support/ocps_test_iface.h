/*
 * ocps_test_iface.h - the OCPS interface a test speaks: the embedded
 * release of the transport under test (OCPS_TEST_TRANSPORT), or the one
 * OCPS_XML_VERSION names. The CSC started by the test inherits the same
 * environment, so both sides speak the same release.
 */
#ifndef OCPS_TEST_IFACE_H
#define OCPS_TEST_IFACE_H

#include <stdio.h>
#include <stdlib.h>

#include "ocps/ocps_interface.h"
#include "sal_fixture.h"

static inline const sal_component_info *ocps_test_component(void)
{
    char err[512];
    const sal_component_info *c = ocps_interface_select(fx_transport(), NULL, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "test: %s\n", err);
        abort();
    }
    return c;
}

#endif
