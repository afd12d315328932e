#!/usr/bin/env python3
"""salgen: generate SAL interface artefacts from ts_xml-format definitions.

Usage:
    salgen --xml-dir DIR --component NAME --xml-version VER --out DIR
           [--sal-version VER] [--no-c]

Writes into the output directory:
  dds/sal_revCoded_<NAME>.idl        the IDL salobj 7 loads (ts_sal 7 format)
  dds/validated/<NAME>_<topic>.idl   per-topic canonical IDL; md5 -> revCode
  dds/<NAME>_revCodes.txt            "<sal_name> <revCode>" in byte order
  avro/<NAME>/<sal_name>.json        schema exactly as salobj 8 registers it
  avro/<NAME>/indent4/<sal_name>.json  indent-4 form; md5 -> revCode
  avro/<NAME>_revCodes.txt           "<sal_name> <revCode>" in ts_xml order
  c/<NAME>_sal.h, c/<NAME>_sal.c     tables for the C runtime (need the
                                     idlc output of sal_revCoded_<NAME>.idl)

Build-time only; uses nothing but the Python 3 standard library.
"""

import argparse
import hashlib
import json
import os
import sys
import xml.etree.ElementTree as ET

SAL_VERSION_DEFAULT = "7.4.1"

# --------------------------------------------------------------------------
# Interface model


class GenError(Exception):
    pass


class Field:
    def __init__(self, name, idl_type, size, count, count_given, units, description):
        self.name = name
        self.idl_type = idl_type  # as written in the XML, spaces normalised
        self.size = size  # IDL_Size (int) or None
        self.count = count  # Count as ts_xml reads it (missing -> 1)
        self.count_given = count_given  # Count element text as int, or None
        self.units = units  # text or None
        self.description = description  # text or None


class Topic:
    def __init__(self, sal_name, kind, description, fields, enums):
        self.sal_name = sal_name
        self.kind = kind  # command, event, telemetry, ackcmd
        self.description = description  # the topic's own <Description> or None
        self.first_description = None  # first <Description> in the topic, any level
        self.fields = fields
        self.enums = enums  # [[(item, value text, value int)], ...] per <Enumeration>
        self.consts = []  # (const name, value text, value int) in IDL order


class Component:
    def __init__(self, name, indexed, index_enum, topics):
        self.name = name
        self.indexed = indexed
        self.index_enum = index_enum  # [(name, value text, value int)]
        self.topics = topics  # ts_xml ComponentInfo order


def _text(elem, tag):
    child = elem.find(tag)
    if child is None:
        return None
    return child.text


def parse_enum_text(text, index_quirk=False):
    """Parse an enumeration list the way ts_sal numbers it.

    "A, B, C" -> A=1, B=2, C=3 (numbering restarts for every element);
    "A=1, B=5" keeps the values as written. ts_sal refuses a mix. For
    IndexEnumeration ts_sal does not advance after an explicit value
    (index_quirk), so "A=5,B" gives B=5 as well.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    explicit = ["=" in p for p in parts]
    if not index_quirk and any(explicit) and not all(explicit):
        raise GenError(f"enumeration {text.strip()!r} mixes implicit and explicit values")
    items = []
    value = 1
    for part in parts:
        if "=" in part:
            name, val = (x.strip() for x in part.split("=", 1))
            try:
                value = int(val, 0)
            except ValueError:
                raise GenError(f"enumeration value {val!r} is not an integer") from None
            items.append((name, val, value))
            if not index_quirk:
                value += 1
        else:
            items.append((part, str(value), value))
            value += 1
    return items


def parse_topic(elem, kind, prefix):
    efdb = (_text(elem, "EFDB_Topic") or "").strip()
    if not efdb:
        raise GenError(f"a {kind} topic has no EFDB_Topic")
    if not efdb.startswith(prefix + "_"):
        raise GenError(f"topic {efdb!r} does not start with {prefix}_")
    sal_name = efdb[len(prefix) + 1 :]
    if kind == "command" and not sal_name.startswith("command_"):
        raise GenError(f"command topic {efdb!r} lacks the command_ prefix")
    if kind == "event" and not sal_name.startswith("logevent_"):
        raise GenError(f"event topic {efdb!r} lacks the logevent_ prefix")
    if kind == "telemetry" and sal_name.startswith(("command_", "logevent_")) or sal_name == "ackcmd":
        raise GenError(f"telemetry topic {efdb!r} has a reserved name")
    fields = []
    first_desc = None
    last_count = None
    for child in elem:
        if child.tag == "Description" and first_desc is None:
            first_desc = child.text or ""
        if child.tag != "item":
            continue
        name = (_text(child, "EFDB_Name") or "").strip()
        idl_type = " ".join((_text(child, "IDL_Type") or "").split())
        if not name or not idl_type:
            raise GenError(f"{sal_name}: an item lacks EFDB_Name or IDL_Type")
        size_text = (_text(child, "IDL_Size") or "").strip()
        count_text = (_text(child, "Count") or "").strip()
        try:
            size = int(size_text) if size_text else None
            count_given = int(count_text) if count_text else None
        except ValueError:
            raise GenError(f"{sal_name}.{name}: IDL_Size and Count must be integers") from None
        # ts_sal does not reset Count between items; ts_xml defaults it to 1.
        if count_given is not None:
            last_count = count_given
        desc = child.find("Description")
        if first_desc is None and desc is not None:
            first_desc = desc.text or ""
        fields.append(
            Field(
                name,
                idl_type,
                size,
                count_given if count_given is not None else 1,
                count_given if count_given is not None else last_count,
                _text(child, "Units"),
                desc.text if desc is not None else None,
            )
        )
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise GenError(f"{sal_name}: duplicate field names")
    enums = [parse_enum_text(e.text or "") for e in elem.findall("Enumeration")]
    topic = Topic(sal_name, kind, _text(elem, "Description"), fields, enums)
    topic.first_description = first_desc
    return topic


SET_TAGS = {
    "SALCommandSet": ("SALCommand", "command"),
    "SALEventSet": ("SALEvent", "event"),
    "SALTelemetrySet": ("SALTelemetry", "telemetry"),
}


def parse_file(path, prefix):
    """Entries of one XML file in document order: ("topic", Topic) or
    ("enum", items) for an <Enumeration> outside any topic."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise GenError(f"{path}: {e}") from None
    sets = [root] if root.tag in SET_TAGS else [c for c in root if c.tag in SET_TAGS]
    entries = []
    for s in sets:
        tag, kind = SET_TAGS[s.tag]
        for child in s:
            if child.tag == tag:
                entries.append(("topic", parse_topic(child, kind, prefix)))
            elif child.tag == "Enumeration":
                entries.append(("enum", parse_enum_text(child.text or "")))
    return entries


def read_subsystem(xml_dir, name):
    path = os.path.join(xml_dir, "SALSubsystems.xml")
    if not os.path.exists(path):
        raise GenError(f"{path} not found")
    root = ET.parse(path).getroot()
    for sub in root.findall("SALSubsystem"):
        if (_text(sub, "Name") or "").strip() == name:
            index_text = (_text(sub, "IndexEnumeration") or "").strip()
            generics = (_text(sub, "AddedGenerics") or "").strip()
            return index_text, generics
    raise GenError(f"component {name!r} is not in {path}")


def select_generics(xml_dir, generics_text):
    """Generic topic entries chosen by AddedGenerics, in SALGenerics order."""
    path = os.path.join(xml_dir, "SALGenerics.xml")
    if not os.path.exists(path):
        raise GenError(f"{path} not found")
    entries = parse_file(path, "SALGeneric")
    categories = {}
    root = ET.parse(path).getroot()
    for s in [root] + list(root):
        if s.tag in SET_TAGS:
            for child in s.findall(SET_TAGS[s.tag][0]):
                efdb = (_text(child, "EFDB_Topic") or "").strip()
                categories[efdb[len("SALGeneric_") :]] = (_text(child, "Category") or "").strip()
    generic_names = [t.sal_name for kind, t in entries if kind == "topic"]
    wanted = ["mandatory"] + [g.strip() for g in generics_text.split(",") if g.strip()]
    chosen = []  # SAL names in ts_xml ComponentInfo order
    for entry in wanted:
        matched = [n for n in generic_names if categories.get(n) == entry]
        if not matched:
            if entry not in generic_names:
                raise GenError(f"AddedGenerics entry {entry!r} names no category or generic topic")
            matched = [entry]
        chosen += [n for n in matched if n not in chosen]
    keep = set(chosen)
    entries = [(k, v) for k, v in entries if k == "enum" or v.sal_name in keep]
    return entries, chosen


def place_consts(comp, files):
    """Attach enumeration constants to topics where ts_sal 7 writes them.

    ts_sal parses Telemetry, Commands, Events, then the generics. A topic's
    own enumerations become <alias>_<item>. The first file-level
    enumeration(s) become <Name>_shared_<item> in the next topic that closes
    (or the file's last topic). The index enumeration goes to the last
    topic of the first file parsed.
    """
    shared_done = False
    index_done = not comp.index_enum
    for entries in files:
        topics = [v for k, v in entries if k == "topic"]
        if not topics:
            continue
        pending = []
        for kind, value in entries:
            if kind == "enum":
                if not shared_done:
                    pending += value
                continue
            t = value
            alias = t.sal_name
            for prefix in ("command_", "logevent_"):
                if alias.startswith(prefix):
                    alias = alias[len(prefix) :]
            for items in t.enums:
                t.consts += [(f"{alias}_{n}", vt, vi) for n, vt, vi in items]
            if pending:
                t.consts += [(f"{comp.name}_shared_{n}", vt, vi) for n, vt, vi in pending]
                pending = []
                shared_done = True
        if pending:
            topics[-1].consts += [(f"{comp.name}_shared_{n}", vt, vi) for n, vt, vi in pending]
            shared_done = True
        if not index_done:
            topics[-1].consts += [(f"indexEnumeration_{n}", vt, vi) for n, vt, vi in comp.index_enum]
            index_done = True


def load_component(xml_dir, name):
    index_text, generics_text = read_subsystem(xml_dir, name)
    indexed = index_text not in ("", "no")
    index_enum = []
    if indexed and index_text != "any":
        index_enum = parse_enum_text(index_text, index_quirk=True)

    generic_entries, generic_names = select_generics(xml_dir, generics_text)
    own = {}
    for suffix in ("Telemetry", "Commands", "Events"):
        path = os.path.join(xml_dir, name, f"{name}_{suffix}.xml")
        if os.path.exists(path) and os.path.getsize(path) > 0:
            own[suffix] = parse_file(path, name)

    by_name = {}
    topics = []

    def add(t):
        if t.sal_name in by_name:
            raise GenError(f"duplicate topic {t.sal_name}")
        by_name[t.sal_name] = t
        topics.append(t)

    generic_topics = {v.sal_name: v for k, v in generic_entries if k == "topic"}
    for n in generic_names:
        add(generic_topics[n])
    for suffix in ("Commands", "Events", "Telemetry"):
        for kind, value in own.get(suffix, []):
            if kind == "topic":
                add(value)
    if any(t.kind == "command" for t in topics):
        add(make_ackcmd())
    comp = Component(name, indexed, index_enum, topics)
    files = [own[s] for s in ("Telemetry", "Commands", "Events") if s in own] + [generic_entries]
    place_consts(comp, files)
    return comp


def make_ackcmd():
    specs = [
        ("ack", "long", "unitless", "Acknowledgement code"),
        ("error", "long", "unitless", "An error code; only relevant if ack=FAILED"),
        ("result", "string", "unitless", "Message"),
        ("identity", "string", "unitless", "private_identity field of the command being acknowledged"),
        ("origin", "long", "unitless", "private_origin field of the command being acknowledged"),
        (
            "cmdtype",
            "long",
            "unitless",
            "Index of command in alphabetical list of commands, with 0 being the first",
        ),
        (
            "timeout",
            "double",
            "second",
            "Estimated remaining duration of command; only relevant if ack=INPROGRESS",
        ),
    ]
    fields = [Field(n, t, None, 1, 1, u, d) for n, t, u, d in specs]
    return Topic("ackcmd", "ackcmd", "Command acknowledgement", fields, [])


# --------------------------------------------------------------------------
# DDS IDL in ts_sal 7 form

DDS_TYPES = {
    "boolean": "boolean",
    "byte": "octet",
    "octet": "octet",
    "short": "short",
    "unsigned short": "unsigned short",
    "int": "long",
    "long": "long",
    "unsigned int": "unsigned long",
    "unsigned long": "unsigned long",
    "long long": "long long",
    "unsigned long long": "unsigned long long",
    "float": "float",
    "double": "double",
}

PRIVATE_IDL = [
    ("string<8>", "private_revCode", " //private", "unitless", "Revision hashcode"),
    ("double", "private_sndStamp", "    //private", "second", "Time of instance publication"),
    ("double", "private_rcvStamp", "    //private", "second", "Time of instance reception"),
    ("long", "private_seqNum", "    //private", "unitless", "Sequence number"),
    ("string<128>", "private_identity", "    //private", "unitless", "Identity of publisher"),
    ("long", "private_origin", "    //private", "unitless", "PID of publisher"),
]

SALINDEX_DESC = "Index number for CSC with multiple instances"


def dds_type(field):
    t = field.idl_type
    if t in ("string", "char"):
        if field.size is not None and field.size > 1:
            return f"string<{field.size}>"
        return "string"
    if t not in DDS_TYPES:
        raise GenError(f"field {field.name}: unsupported IDL_Type {t!r}")
    return DDS_TYPES[t]


def dds_decl(field):
    """Field declarator; ts_sal carries Count over from the previous item."""
    count = field.count_given or 1
    if field.idl_type not in ("string", "char") and count > 1:
        return f"{field.name}[{count}]"
    return field.name


def const_lines(topic):
    return [f"const long long {name}={text};" for name, text, _ in topic.consts]


def validated_idl(comp, topic):
    name = f"{comp.name}_{topic.sal_name}"
    out = [f"struct {name} {{"]
    for typ, fname, comment, _, _ in PRIVATE_IDL:
        out.append(f"  {typ}\t{fname};{comment}")
    if topic.kind == "ackcmd":
        for f in topic.fields:
            typ = "string<256>" if f.name == "result" else dds_type(f)
            out.append(f"  {typ}\t{f.name};")
    else:
        for f in topic.fields:
            out.append(f"  {dds_type(f)}\t{dds_decl(f)};")
    out.append("};")
    out.append(f"#pragma keylist {name}")
    for line in const_lines(topic):
        out.append(f" {line}")
    return "\n".join(out) + "\n"


def revcode_of(text):
    return hashlib.md5(text.encode("utf-8")).hexdigest()[:8]


def idl_description(comp, topic, text):
    """Description text as ts_sal puts it into @Metadata comments: verbatim
    when it sits on one line, else a link to the topic's ts_xml page."""
    if text is None:
        return ""
    if "\n" in text:
        efdb = f"{comp.name}_{topic.sal_name}"
        anchor = efdb.split("_")[-1].lower()
        return (
            f"<A HREF=https://ts-xml.lsst.io/python/lsst/ts/xml/data/sal_interfaces/"
            f"{comp.name}.html#{anchor}>{comp.name}_{efdb}</A>"
        )
    return text


ACKCMD_FINAL = [
    ("long\t", "ack", "unitless", "unitless"),
    ("long\t", "error", "second", "second"),
    ("string", "result", "second", "second"),
    ("string", "identity", "unitless", "unitless"),
    ("long\t", "origin", "unitless", "unitless"),
    ("long\t", "cmdtype", "unitless", "unitless"),
    ("double", "timeout", "unitless", "unitless"),
]


def final_struct(comp, topic, rev):
    sname = f"{topic.sal_name}_{rev}"
    out = []
    if topic.kind == "ackcmd":
        out.append(f'struct {sname} {{  // @Metadata=(Description="unitless")')
        for typ, fname, comment, units, desc in PRIVATE_IDL:
            out.append(f'  {typ}\t{fname};{comment} // @Metadata=(Units="{units}",Description="{desc}")')
        if comp.indexed:
            out.append(f'\t  long\tsalIndex; // @Metadata=(Units="unitless",Description="{SALINDEX_DESC}")')
        for typ, fname, units, desc in ACKCMD_FINAL:
            out.append(f'\t  {typ}\t{fname}; // @Metadata=(Units="{units}",Description="{desc}")')
    else:
        first = topic.first_description
        desc = "No description provided" if first is None else idl_description(comp, topic, first)
        out.append(f'struct {sname} {{  // @Metadata=(Description="{desc}")')
        if comp.indexed:
            out.append(
                f'\t  long\tsalIndex;\t//private // @Metadata=(Units="unitless",Description="{SALINDEX_DESC}")'
            )
        for typ, fname, comment, units, desc in PRIVATE_IDL:
            out.append(f'\t  {typ}\t{fname};{comment} // @Metadata=(Units="{units}",Description="{desc}")')
        for f in topic.fields:
            units = f.units if f.units is not None else ""
            fdesc = idl_description(comp, topic, f.description)
            out.append(
                f'\t  {dds_type(f)}\t{dds_decl(f)}; // @Metadata=(Units="{units}",Description="{fdesc}")'
            )
    out.append("\t};")
    key = " salIndex" if comp.indexed else " "
    out.append(f"#pragma keylist {sname}{key}")
    for line in const_lines(topic):
        out.append(f"\t {line}")
    return out


def generate_dds(comp, xml_version, sal_version):
    """Return (validated files dict, revcodes dict, final idl text)."""
    validated = {}
    revcodes = {}
    for t in comp.topics:
        text = validated_idl(comp, t)
        validated[t.sal_name] = text
        revcodes[t.sal_name] = revcode_of(text)
    lines = [f"// SAL_VERSION={sal_version} XML_VERSION={xml_version}", f"module {comp.name} {{"]
    ordinary = sorted((t for t in comp.topics if t.kind != "ackcmd"), key=lambda t: f"{comp.name}_{t.sal_name}.idl".encode())
    for t in ordinary:
        lines += final_struct(comp, t, revcodes[t.sal_name])
    for t in comp.topics:
        if t.kind == "ackcmd":
            lines += final_struct(comp, t, revcodes[t.sal_name])
    lines.append("};")
    return validated, revcodes, "\n".join(lines) + "\n\n"


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
    for t in comp.topics:
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


# --------------------------------------------------------------------------
# C tables for the runtime

C_TYPES = {
    "boolean": "SAL_FIELD_BOOLEAN",
    "octet": "SAL_FIELD_OCTET",
    "short": "SAL_FIELD_SHORT",
    "unsigned short": "SAL_FIELD_USHORT",
    "long": "SAL_FIELD_LONG",
    "unsigned long": "SAL_FIELD_ULONG",
    "long long": "SAL_FIELD_LONGLONG",
    "unsigned long long": "SAL_FIELD_ULONGLONG",
    "float": "SAL_FIELD_FLOAT",
    "double": "SAL_FIELD_DOUBLE",
}

C_KINDS = {
    "command": "SAL_TOPIC_COMMAND",
    "event": "SAL_TOPIC_EVENT",
    "telemetry": "SAL_TOPIC_TELEMETRY",
    "ackcmd": "SAL_TOPIC_ACKCMD",
}


def c_string(text):
    """A C string literal for arbitrary text (split every 200 bytes)."""
    data = text.encode("utf-8")
    pieces = []
    cur = []
    for b in data:
        ch = chr(b)
        if ch == "\\":
            cur.append("\\\\")
        elif ch == '"':
            cur.append('\\"')
        elif ch == "\n":
            cur.append("\\n")
        elif 32 <= b < 127:
            cur.append(ch)
        else:
            cur.append(f"\\{b:03o}")
        if len(cur) >= 200:
            pieces.append('"' + "".join(cur) + '"')
            cur = []
    pieces.append('"' + "".join(cur) + '"')
    return "\n    ".join(pieces)


def c_field_rows(comp, topic, ctype):
    rows = []

    def row(name, kind, count, bound, private):
        flags = "SAL_FIELD_PRIVATE" if private else "0"
        rows.append(
            f'    {{"{name}", {kind}, {count}, {bound}, offsetof({ctype}, {name}), {flags}}},'
        )

    private = [
        ("private_revCode", "SAL_FIELD_STRING", 1, 8),
        ("private_sndStamp", "SAL_FIELD_DOUBLE", 1, 0),
        ("private_rcvStamp", "SAL_FIELD_DOUBLE", 1, 0),
        ("private_seqNum", "SAL_FIELD_LONG", 1, 0),
        ("private_identity", "SAL_FIELD_STRING", 1, 128),
        ("private_origin", "SAL_FIELD_LONG", 1, 0),
    ]
    if comp.indexed and topic.kind != "ackcmd":
        row("salIndex", "SAL_FIELD_LONG", 1, 0, True)
    for p in private:
        row(*p, True)
    if comp.indexed and topic.kind == "ackcmd":
        row("salIndex", "SAL_FIELD_LONG", 1, 0, True)
    for f in topic.fields:
        t = dds_type(f)
        if t.startswith("string"):
            bound = f.size if f.size is not None and f.size > 1 else 0
            row(f.name, "SAL_FIELD_STRING", 1, bound, False)
        else:
            row(f.name, C_TYPES[t], f.count, 0, False)
    return rows


def generate_c(comp, xml_version, sal_version, revcodes, avro, cname=None):
    """C tables for one release. `cname` names the table and its files
    (default: the component name), so several releases of one component
    can be linked into one program; the sample types are always the idlc
    ones, <Component>_<topic>_<revCode>, shared by releases that agree."""
    n = comp.name
    cn = cname or n
    avro_by_name = {a[0]: a for a in avro}
    topics = sorted(comp.topics, key=lambda t: t.sal_name.encode())
    h = [
        f"/* Generated by salgen from the {n} interface (ts_xml {xml_version}). Do not edit. */",
        f"#ifndef {cn.upper()}_SAL_H",
        f"#define {cn.upper()}_SAL_H",
        "",
        '#include "sal_interface.h"',
        f'#include "sal_revCoded_{n}.h"',
        "",
        f"/* The {n} component: topics in byte order of their SAL names. */",
        f"extern const sal_component_info {cn}_sal_component;",
        "",
    ]
    for i, t in enumerate(topics):
        h.append(f"#define {cn}_TOPIC_{t.sal_name} {i}")
    h.append("")
    for t in topics:
        ctype = f"{n}_{t.sal_name}_{revcodes[t.sal_name]}"
        h.append(f"typedef {ctype} {cn}_{t.sal_name};")
    h += ["", "#endif", ""]

    c = [
        f"/* Generated by salgen from the {n} interface (ts_xml {xml_version}). Do not edit. */",
        f'#include "{cn}_sal.h"',
        "#include <stddef.h>",
        "",
    ]
    for t in topics:
        ctype = f"{n}_{t.sal_name}_{revcodes[t.sal_name]}"
        c.append(f"static const sal_field_info fields_{t.sal_name}[] = {{")
        c += c_field_rows(comp, t, ctype)
        c.append("};")
        c.append("")
    c.append("static const sal_topic_info topics[] = {")
    for t in topics:
        rev = revcodes[t.sal_name]
        ctype = f"{n}_{t.sal_name}_{rev}"
        _, compact, _, avro_rev = avro_by_name[t.sal_name]
        c += [
            "    {",
            f'        .sal_name = "{t.sal_name}",',
            f"        .kind = {C_KINDS[t.kind]},",
            f'        .dds_revcode = "{rev}",',
            f'        .avro_revcode = {c_string(avro_rev) if avro_rev else "NULL"},',
            f"        .sample_size = sizeof({ctype}),",
            f"        .dds_descriptor = &{ctype}_desc,",
            f"        .fields = fields_{t.sal_name},",
            f"        .nfields = sizeof(fields_{t.sal_name}) / sizeof(fields_{t.sal_name}[0]),",
            f"        .avro_schema = {c_string(compact) if compact else 'NULL'},",
            "    },",
        ]
    c.append("};")
    c.append("")
    enums = [(n, v) for t in comp.topics for n, _, v in t.consts if not n.startswith("indexEnumeration_")]
    if enums:
        c.append("static const sal_enum_value enums[] = {")
        for name, value in enums:
            c.append(f'    {{"{name}", {value}}},')
        c.append("};")
    if comp.index_enum:
        c.append("static const sal_enum_value index_enum[] = {")
        for name, _, value in comp.index_enum:
            c.append(f'    {{"{name}", {value}}},')
        c.append("};")
    c += [
        "",
        f"const sal_component_info {cn}_sal_component = {{",
        f'    .name = "{n}",',
        f"    .indexed = {'true' if comp.indexed else 'false'},",
        f'    .xml_version = "{xml_version}",',
        f'    .sal_version = "{sal_version}",',
        "    .topics = topics,",
        f"    .ntopics = {len(topics)},",
        f"    .enums = {'enums' if enums else 'NULL'},",
        f"    .nenums = {len(enums)},",
        f"    .index_enum = {'index_enum' if comp.index_enum else 'NULL'},",
        f"    .nindex_enum = {len(comp.index_enum)},",
        "};",
        "",
    ]
    return "\n".join(h), "\n".join(c)


# --------------------------------------------------------------------------


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = text.encode("utf-8")
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return  # keep the timestamp: nothing changed
    except FileNotFoundError:
        pass
    with open(path, "wb") as f:
        f.write(data)


def main(argv=None):
    p = argparse.ArgumentParser(prog="salgen", description=__doc__.split("\n")[0])
    p.add_argument("--xml-dir", required=True, help="directory in ts_xml layout")
    p.add_argument("--component", required=True, help="SAL component name")
    p.add_argument("--xml-version", required=True, help="ts_xml version label")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--sal-version", default=SAL_VERSION_DEFAULT, help="SAL_VERSION in the IDL header")
    p.add_argument("--no-c", action="store_true", help="skip the C runtime tables")
    p.add_argument(
        "--c-name",
        help="name of the C table and its files (default: the component name); "
        "C_sal.[ch] defines C_sal_component",
    )
    args = p.parse_args(argv)
    try:
        comp = load_component(args.xml_dir, args.component)
        validated, revcodes, final = generate_dds(comp, args.xml_version, args.sal_version)
        avro = generate_avro(comp, lambda m: print(f"salgen: warning: {m}", file=sys.stderr))
    except (GenError, ET.ParseError, ValueError) as e:
        print(f"salgen: {e}", file=sys.stderr)
        return 1
    n = comp.name
    out = args.out
    for sal_name, text in validated.items():
        write(os.path.join(out, "dds", "validated", f"{n}_{sal_name}.idl"), text)
    write(os.path.join(out, "dds", f"sal_revCoded_{n}.idl"), final)
    write(
        os.path.join(out, "dds", f"{n}_revCodes.txt"),
        "".join(f"{k} {revcodes[k]}\n" for k in sorted(revcodes, key=str.encode)),
    )
    for sal_name, compact, indent4, _ in avro:
        if compact is None:
            continue
        write(os.path.join(out, "avro", n, f"{sal_name}.json"), compact)
        write(os.path.join(out, "avro", n, "indent4", f"{sal_name}.json"), indent4)
    write(os.path.join(out, "avro", f"{n}_revCodes.txt"), "".join(f"{a[0]} {a[3]}\n" for a in avro if a[3]))
    if not args.no_c:
        h, c = generate_c(comp, args.xml_version, args.sal_version, revcodes, avro, args.c_name)
        cn = args.c_name or n
        write(os.path.join(out, "c", f"{cn}_sal.h"), h)
        write(os.path.join(out, "c", f"{cn}_sal.c"), c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
