/*
 * ocps_interface.h - the OCPS interfaces built into the programs and the
 * SAL indices of OCPS.
 *
 * The build embeds several real ts_xml releases of OCPS (OCPS_XML_RELEASES);
 * each transport speaks its default release (DDS: the last DDS-era one,
 * Kafka: the current one) unless another is chosen with --xml-version or
 * OCPS_XML_VERSION.
 */
#ifndef OCPS_INTERFACE_H
#define OCPS_INTERFACE_H

#include <stddef.h>
#include <stdint.h>

#include "ocps/sal_interface.h"

/* Environment variable choosing the release when no option does. */
#define OCPS_XML_VERSION_ENV "OCPS_XML_VERSION"

/* Every embedded release. */
const sal_interface_set *ocps_interfaces(void);

/* The release to speak on `transport`: `xml_version` if given, else
 * $OCPS_XML_VERSION, else the transport's default. NULL with a message
 * naming the embedded releases when it is not built in. */
const sal_component_info *ocps_interface_select(const char *transport, const char *xml_version, char *err,
                                                size_t errlen);

/* OCPS's SAL indices as deployments use them (ts_xml's SalIndex enum:
 * 1 LATISS, 2 LSSTComCam, 3 LSSTCam, 101 RA), whatever a release's
 * IndexEnumeration lists. Sets *n. */
const sal_enum_value *ocps_indices(size_t *n);

/* Name of an OCPS SAL index ("LATISS"), or NULL when it is not one. */
const char *ocps_index_name(int32_t index);

/* The index named `name` (case-sensitive, as ts_xml spells it), or -1. */
int32_t ocps_index_of(const char *name);

#endif
