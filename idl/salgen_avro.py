"""salgen_avro: Avro schemas and revCodes as ts_xml's generator (salobj 8) writes them."""

import json
import os

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



def avro_types(xml_version):
    """ts_xml's SAL-to-Avro table of that release (field_info.py AVRO_TYPES):
    20.0.0 made a SAL long an Avro long; 20.1.0 and 20.2.0 made float and
    double the unions ["float", "null"] and ["double", "null"]; from 20.3.0
    on (and for the DDS-era releases, which had no Avro) the table above."""
    parts = (xml_version or "").lstrip("v").split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return AVRO_TYPES
    types = dict(AVRO_TYPES)
    if (major, minor) == (20, 0):
        types["long"] = ("long", 0)
    elif (major, minor) in ((20, 1), (20, 2)):
        types["float"] = (["float", "null"], 0.0)
        types["double"] = (["double", "null"], 0.0)
    return types


# The private fields ts_xml adds to every topic, by SAL type (topic_info.py),
# after salIndex for an indexed component.
AVRO_PRIVATE = [
    ("private_sndStamp", "double", "Time of instance publication", "second"),
    ("private_rcvStamp", "double", "Time of instance reception", "second"),
    (
        "private_efdStamp",
        "double",
        "UTC time for EFD timestamp. An integer (the number of leap seconds) different from private_sndStamp.",
        "second",
    ),
    ("private_kafkaStamp", "double", "TAI time at which the Kafka message was created.", "second"),
    ("private_seqNum", "long", "Sequence number", "unitless"),
    ("private_revCode", "string", "Revision hashcode", "unitless"),
    (
        "private_identity",
        "string",
        "Identity of publisher: SAL component name for a CSC or user@host for a user",
        "unitless",
    ),
    ("private_origin", "long", "Process ID of publisher", "unitless"),
]
AVRO_SAL_INDEX = ("salIndex", "long", "SAL index (only present for indexed SAL components)", "unitless")


def avro_field(name, typ, default, description, units):
    return {"name": name, "type": typ, "default": default, "description": description, "units": units}


def private_fields(comp, types=AVRO_TYPES):
    fields = []
    for name, sal_type, description, units in ([AVRO_SAL_INDEX] if comp.indexed else []) + AVRO_PRIVATE:
        fields.append(avro_field(name, *types[sal_type], description, units))
    return fields


def check_private_names(comp, topic):
    """ts_xml refuses an item named as a private field it adds (salIndex only
    when the component is indexed): its record would have two fields of that
    name, which no registry accepts."""
    private = {f["name"] for f in private_fields(comp)}
    for f in topic.fields:
        if f.name in private:
            raise GenError(
                f"{comp.name} {topic.sal_name}: field {f.name} already found "
                "(ts_xml adds a private field of that name; its generator refuses the topic)"
            )


def avro_schema(comp, topic, types=AVRO_TYPES):
    fields = private_fields(comp, types)
    for f in topic.fields:
        if f.idl_type not in types:
            raise GenError(f"{topic.sal_name}.{f.name}: IDL_Type {f.idl_type!r} has no Avro form")
        typ, default = types[f.idl_type]
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


# --------------------------------------------------------------------------
# Hand-written .avsc topics (the cameras, from ts_xml 28)
#
# ts_xml's ComponentInfo adds, for these three components only, one
# telemetry topic per data/interfaces/<NAME>/*.avsc file, after ackcmd.
# TopicInfo.from_avro reads each file with fastavro's load_schema, which
# rebuilds every dict in its own key order, renames the record
# (name = the file name up to its first dot, namespace = the part of the
# record's full name before its last dot, added as the last key) and
# appends the private fields after the file's fields.

AVSC_COMPONENTS = ("ATCamera", "CCCamera", "MTCamera")

# fastavro's _schema_common: keys its parser takes out of a dict and sets
# again after the others (the rest keep their order in the file).
FASTAVRO_RESERVED = {"type", "name", "namespace", "fields", "items", "size", "symbols", "values", "doc"}
FASTAVRO_FIELD_OPTIONAL = ("doc", "aliases", "default")  # a set in fastavro: no defined order
FASTAVRO_PRIMITIVES = {"boolean", "bytes", "double", "float", "int", "long", "null", "string"}
# Avro types ts_xml's FieldInfo accepts as a SAL type (the first non-null
# member of a union).
AVSC_FIELD_TYPES = {"boolean", "int", "long", "float", "double", "string"}


def avsc_dir(xml_dir, name):
    """ts_xml keeps sal_interfaces/ and interfaces/ side by side in data/."""
    return os.path.join(xml_dir, os.pardir, "interfaces", name)


def _as_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def fastavro_default_matches(default, typ):
    """fastavro's check of a field default against one primitive type."""
    checks = {
        "null": lambda d: d is None,
        "boolean": lambda d: isinstance(d, bool),
        "string": lambda d: isinstance(d, str),
        "bytes": lambda d: isinstance(d, str),
        "double": lambda d: isinstance(_as_float(d), float),
        "float": lambda d: isinstance(_as_float(d), float),
        "int": lambda d: isinstance(d, int),
        "long": lambda d: isinstance(d, int),
    }
    return checks.get(typ, lambda d: True)(default)


def avsc_field(field, where):
    """One field as fastavro parses it: other keys in file order, then doc,
    aliases, default, name, type. Only primitive types and unions of them
    (what ts_xml's FieldInfo can take) are accepted."""
    if not isinstance(field, dict) or not isinstance(field.get("name"), str) or "type" not in field:
        raise GenError(f"{where}: a field lacks a name or a type")
    name = field["name"]
    if "description" not in field:
        raise GenError(f"{where}: field {name} has no description (ts_xml requires one)")
    optional = [k for k in FASTAVRO_FIELD_OPTIONAL if k in field]
    if len(optional) > 1:
        raise GenError(
            f"{where}: field {name} has {' and '.join(optional)}: fastavro orders them by "
            "Python's per-process string hashing, so ts_xml's schema has no fixed form"
        )
    if not isinstance(field.get("aliases", []), list):
        raise GenError(f"{where}: field {name}: aliases must be a list")
    typ = field["type"]
    members = typ if isinstance(typ, list) else [typ]
    if not all(isinstance(m, str) and m in FASTAVRO_PRIMITIVES for m in members):
        raise GenError(f"{where}: field {name}: type {json.dumps(typ)} is not a primitive type or a union of them")
    sal_type = next((m for m in members if m != "null"), "null")
    if sal_type not in AVSC_FIELD_TYPES:
        raise GenError(f"{where}: field {name}: ts_xml has no SAL type for {sal_type!r}")
    if "default" in field and not any(fastavro_default_matches(field["default"], m) for m in members):
        raise GenError(f"{where}: field {name}: default {json.dumps(field['default'])} does not match its type")
    out = {k: v for k, v in field.items() if k not in FASTAVRO_FIELD_OPTIONAL + ("name", "type")}
    for k in optional:
        out[k] = field[k]
    out["name"] = name
    out["type"] = typ
    return out


def avsc_schema(comp, path, sal_name):
    """The schema ts_xml registers for one .avsc file."""
    where = f"{comp.name} {os.path.basename(path)}"
    try:
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise GenError(f"{path}: {e}") from None
    if not isinstance(schema, dict) or schema.get("type") not in ("record", "error"):
        raise GenError(f"{where}: not an Avro record")
    name = schema.get("name")
    if not isinstance(name, str) or not name:
        raise GenError(f"{where}: the record has no name")
    if "." in name:
        full_name = name
    elif schema.get("namespace"):
        full_name = f"{schema['namespace']}.{name}"
    else:
        full_name = name
    fields = [avsc_field(f, where) for f in schema.get("fields", [])]
    out = {k: v for k, v in schema.items() if k not in FASTAVRO_RESERVED}
    out["type"] = schema["type"]
    if "doc" in schema:
        out["doc"] = schema["doc"]
    out["name"] = sal_name
    out["fields"] = fields + private_fields(comp)
    out["namespace"] = ".".join(full_name.split(".")[:-1])
    names = [f["name"] for f in out["fields"]]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise GenError(f"{where}: field {n} appears twice (the private fields included)")
    return out


def avsc_topics(comp, warn):
    """[(sal_name, schema)] of the component's .avsc files. ts_xml takes them
    in directory order (Path.glob); salgen sorts them by file name. A file
    ts_xml would refuse (its whole component with it) is left out with a
    warning, so that the other topics (and the DDS output) are still made."""
    if comp.name not in AVSC_COMPONENTS or getattr(comp, "xml_dir", None) is None:
        return []
    d = avsc_dir(comp.xml_dir, comp.name)
    if not os.path.isdir(d):
        return []
    files = sorted(f for f in os.listdir(d) if f.endswith(".avsc") and not f.startswith("."))
    out = []
    for f in files:
        sal_name = f.split(".")[0]
        try:
            if any(n == sal_name for n, _ in out):
                # ts_xml keeps the one its directory listing gives last
                raise GenError(f"{comp.name} {f}: another .avsc file is also topic {sal_name}")
            out.append((sal_name, avsc_schema(comp, os.path.join(d, f), sal_name)))
        except GenError as e:
            warn(f"no Avro schema from {f}: {e}")
    return out


def encoded(sal_name, schema):
    compact = json.dumps(schema)
    indent4 = json.dumps(schema, indent=4)
    return (sal_name, compact, indent4, revcode_of(indent4))


def generate_avro(comp, warn, xml_version=None):
    """Return [(sal_name, compact, indent4, revcode)] in ts_xml order, with
    the types of ts_xml release xml_version (avro_types).

    A topic with a type Avro cannot carry (unsigned long, char, ...: removed
    in ts_xml 20) gets (sal_name, None, None, None) and a warning, so an old
    interface still builds for DDS. So does a topic with an item named as a
    private field, and a bad .avsc file is left out (ts_xml refuses the
    whole component in both cases).
    """
    out = []
    types = avro_types(xml_version)
    topics = list(comp.topics)
    if not any(t.kind == "ackcmd" for t in topics):
        topics.append(make_ackcmd())  # ts_xml has ackcmd even without commands
    for t in topics:
        try:
            check_private_names(comp, t)
            schema = avro_schema(comp, t, types)
        except GenError as e:
            warn(f"no Avro schema for {t.sal_name}: {e}")
            out.append((t.sal_name, None, None, None))
            continue
        out.append(encoded(t.sal_name, schema))
    # ts_xml keys its topics by name: an .avsc topic named as an XML topic
    # (ATCamera's power) replaces that topic's schema where it stands.
    index = {a[0]: i for i, a in enumerate(out)}
    comp.avsc_names = set()
    for n, s in avsc_topics(comp, warn):
        comp.avsc_names.add(n)
        if n in index:
            out[index[n]] = encoded(n, s)
        else:
            out.append(encoded(n, s))
    return out
