"""salgen_avro: Avro schemas and revCodes as ts_xml's generator (salobj 8) writes them."""

import json

from salgen_model import GenError, make_ackcmd
from salgen_dds import revcode_of

# --------------------------------------------------------------------------
# Avro schemas in ts_xml form (salobj 8)

AVRO_TYPES = {
    "boolean": ("boolean", False),
    "byte": ("int", 0),
    "short": ("int", 0),
    "int": ("int", 0),
    "long": ("int", 0),
    "long long": ("long", 0),
    "unsigned short": ("int", 0),
    "unsigned int": ("long", 0),
    "float": ("float", 0.0),
    "double": ("double", 0.0),
    "string": ("string", ""),
}

AVRO_PRIVATE = [
    ("private_sndStamp", "double", 0.0, "Time of instance publication", "second"),
    ("private_rcvStamp", "double", 0.0, "Time of instance reception", "second"),
    (
        "private_efdStamp",
        "double",
        0.0,
        "UTC time for EFD timestamp. An integer (the number of leap seconds) different from private_sndStamp.",
        "second",
    ),
    ("private_kafkaStamp", "double", 0.0, "TAI time at which the Kafka message was created.", "second"),
    ("private_seqNum", "int", 0, "Sequence number", "unitless"),
    ("private_revCode", "string", "", "Revision hashcode", "unitless"),
    (
        "private_identity",
        "string",
        "",
        "Identity of publisher: SAL component name for a CSC or user@host for a user",
        "unitless",
    ),
    ("private_origin", "int", 0, "Process ID of publisher", "unitless"),
]


def avro_field(name, typ, default, description, units):
    return {"name": name, "type": typ, "default": default, "description": description, "units": units}


def avro_schema(comp, topic):
    fields = []
    if comp.indexed:
        fields.append(
            avro_field("salIndex", "int", 0, "SAL index (only present for indexed SAL components)", "unitless")
        )
    for p in AVRO_PRIVATE:
        fields.append(avro_field(*p))
    for f in topic.fields:
        if f.idl_type not in AVRO_TYPES:
            raise GenError(f"{topic.sal_name}.{f.name}: IDL_Type {f.idl_type!r} has no Avro form")
        typ, default = AVRO_TYPES[f.idl_type]
        if f.count > 1 and typ != "string":
            typ = {"type": "array", "items": typ}
            default = [default] * f.count
        units = f.units if f.units is not None else "unitless"
        desc = f.description if f.description is not None else ""
        fields.append(avro_field(f.name, typ, default, desc, units))
    return {
        "type": "record",
        "name": topic.sal_name,
        "namespace": f"lsst.sal.{comp.name}",
        "fields": fields,
        "description": topic.description if topic.description is not None else "",
    }


def generate_avro(comp, warn):
    """Return [(sal_name, compact, indent4, revcode)] in ts_xml order.

    A topic with a type Avro cannot carry (unsigned long, char, ...: removed
    in ts_xml 20) gets (sal_name, None, None, None) and a warning, so an old
    interface still builds for DDS.
    """
    out = []
    topics = list(comp.topics)
    if not any(t.kind == "ackcmd" for t in topics):
        topics.append(make_ackcmd())  # ts_xml has ackcmd even without commands
    for t in topics:
        try:
            schema = avro_schema(comp, t)
        except GenError as e:
            warn(f"no Avro schema for {t.sal_name}: {e}")
            out.append((t.sal_name, None, None, None))
            continue
        compact = json.dumps(schema)
        indent4 = json.dumps(schema, indent=4)
        out.append((t.sal_name, compact, indent4, revcode_of(indent4)))
    return out
