/*
 * sal_dds.h - the Cyclone DDS transport, wire-compatible with salobj 7 on
 * OpenSplice: topics <Name>_<topic>_<revCode> of the types compiled from
 * sal_revCoded_<Name>.idl, partitions <prefix>.<Name>.cmd and .data, QoS
 * per topic kind as ts_ddsconfig's profiles, XCDR1 data representation.
 *
 * Environment: LSST_DDS_PARTITION_PREFIX (required), LSST_DDS_DOMAIN_ID
 * (default 0), LSST_DDS_INTERFACE (network interface name or address;
 * ignored when CYCLONEDDS_URI is set).
 */
#ifndef SAL_DDS_H
#define SAL_DDS_H

#include "ocps/sal_transport.h"

/* The operations of the DDS transport. */
extern const sal_transport_ops sal_dds_transport;

#endif
