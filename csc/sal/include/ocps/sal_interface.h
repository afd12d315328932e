/*
 * sal_interface.h - description of a SAL component's interface.
 *
 * salgen (idl/salgen.py) writes one constant sal_component_info per
 * component. The runtime and both transports read topics, fields and
 * revCodes from it; nothing here depends on DDS or Kafka headers.
 *
 * Samples are the C structs idlc generates from sal_revCoded_<Name>.idl:
 * unbounded strings are `char *`, bounded strings are `char[bound + 1]`,
 * arrays are fixed C arrays. Field offsets index into those structs.
 */
#ifndef SAL_INTERFACE_H
#define SAL_INTERFACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The four kinds of SAL topic. */
typedef enum sal_topic_kind {
    SAL_TOPIC_COMMAND,
    SAL_TOPIC_EVENT,
    SAL_TOPIC_TELEMETRY,
    SAL_TOPIC_ACKCMD
} sal_topic_kind;

/* Field types, as in the DDS IDL. */
typedef enum sal_field_type {
    SAL_FIELD_BOOLEAN,   /* bool */
    SAL_FIELD_OCTET,     /* uint8_t */
    SAL_FIELD_SHORT,     /* int16_t */
    SAL_FIELD_USHORT,    /* uint16_t */
    SAL_FIELD_LONG,      /* int32_t */
    SAL_FIELD_ULONG,     /* uint32_t */
    SAL_FIELD_LONGLONG,  /* int64_t */
    SAL_FIELD_ULONGLONG, /* uint64_t */
    SAL_FIELD_FLOAT,     /* float */
    SAL_FIELD_DOUBLE,    /* double */
    SAL_FIELD_STRING     /* char * (bound 0) or char[bound + 1] */
} sal_field_type;

/* Field flag: a private field (salIndex, private_*) set by the runtime. */
#define SAL_FIELD_PRIVATE 1u

/* One field of a topic's sample struct. */
typedef struct sal_field_info {
    const char *name;
    sal_field_type type;
    uint32_t count; /* array length; 1 for scalars and strings */
    uint32_t bound; /* string bound; 0 = unbounded (char *) */
    size_t offset;  /* offsetof() in the sample struct */
    unsigned flags; /* SAL_FIELD_PRIVATE or 0 */
} sal_field_info;

/* Where the private fields are in a topic's sample struct (offsetof), so
 * the runtime sets and reads them without looking them up by name. */
typedef struct sal_private_offsets {
    ptrdiff_t salIndex; /* int32_t; -1 when the component is not indexed */
    size_t revCode;     /* char[9] */
    size_t sndStamp;    /* double, TAI */
    size_t rcvStamp;    /* double, TAI */
    size_t seqNum;      /* int32_t */
    size_t identity;    /* char[129] */
    size_t origin;      /* int32_t, the writer's pid */
} sal_private_offsets;

/* One topic. */
typedef struct sal_topic_info {
    const char *sal_name; /* command_x, logevent_x, x, ackcmd */
    sal_topic_kind kind;
    const char *dds_revcode;      /* ts_sal 7 revCode (DDS type and topic names) */
    const char *avro_revcode;     /* ts_xml Avro revCode (Kafka private_revCode);
                                   * NULL when the topic has no Avro form */
    size_t sample_size;           /* sizeof the sample struct */
    const void *dds_descriptor;   /* const dds_topic_descriptor_t * */
    const sal_field_info *fields; /* in DDS IDL order */
    size_t nfields;
    const char *avro_schema; /* the exact string salobj 8 registers, or NULL */
    sal_private_offsets priv;
} sal_topic_info;

/* One enumeration constant. */
typedef struct sal_enum_value {
    const char *name;
    int64_t value;
} sal_enum_value;

/* A whole component. Topics are sorted by strcmp of sal_name, so a
 * command's index in `topics` is the ackcmd `cmdtype` salobj sends. */
typedef struct sal_component_info {
    const char *name;
    bool indexed;
    const char *xml_version;
    const char *sal_version;
    const sal_topic_info *topics;
    size_t ntopics;
    const sal_enum_value *enums; /* <Enumeration> constants */
    size_t nenums;
    const sal_enum_value *index_enum; /* allowed SAL indices, if listed */
    size_t nindex_enum;
} sal_component_info;

/* The release a transport uses unless another is chosen. */
typedef struct sal_interface_default {
    const char *transport;   /* "dds", "kafka", ... */
    const char *xml_version; /* one of the set's releases */
} sal_interface_default;

/* Every release of one component built into a program (salgen_interfaces
 * in cmake/Salgen.cmake): one binary speaks the release its transport
 * expects, or another chosen at start-up. */
typedef struct sal_interface_set {
    const char *name;
    const sal_component_info *const *releases;
    size_t nreleases;
    const sal_interface_default *defaults;
    size_t ndefaults;
} sal_interface_set;

/* The release `xml_version` of a set or, when it is NULL or empty, the
 * default release of `transport`. NULL with a message naming the releases
 * built in when there is none. */
const sal_component_info *sal_interface_select(const sal_interface_set *set, const char *transport,
                                               const char *xml_version, char *err, size_t errlen);

/* The default release of `transport` in a set, or NULL. */
const char *sal_interface_default_version(const sal_interface_set *set, const char *transport);

/* Find a topic by SAL name; returns its index or -1. */
int sal_component_find_topic(const sal_component_info *comp, const char *sal_name);

/* Is `index` a valid SAL index for this component? Non-indexed: only 0.
 * Indexed with an index enumeration: one of its values; otherwise > 0. */
bool sal_component_index_allowed(const sal_component_info *comp, int32_t index);

/* Name of the index enumeration entry for `index`, or NULL. */
const char *sal_component_index_name(const sal_component_info *comp, int32_t index);

/* Number of user (non-private) fields of a topic. */
size_t sal_topic_user_field_count(const sal_topic_info *topic);

/* Printable name of a topic kind ("command", "event", ...). */
const char *sal_topic_kind_name(sal_topic_kind kind);

/* Printable IDL name of a field type ("long", "string", ...). */
const char *sal_field_type_name(sal_field_type type);

#endif
