"""salgen_model: the interface model, read from ts_xml XML as a tree (as ts_xml reads it)."""

import os
import xml.etree.ElementTree as ET

SAL_VERSION_DEFAULT = "7.4.1"

# --------------------------------------------------------------------------
# Interface model (the XML read as a tree, as ts_xml reads it)


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
    def __init__(self, sal_name, kind, description, fields, enum_texts):
        self.sal_name = sal_name
        self.kind = kind  # command, event, telemetry, ackcmd
        self.description = description  # the topic's own <Description> or None
        self.fields = fields
        self.enum_texts = enum_texts  # text of every <Enumeration> in the topic
        self.consts = []  # (const name, value text, value int) as the DDS IDL has them


class Component:
    def __init__(self, name, indexed, topics, shared_enum_texts):
        self.name = name
        self.indexed = indexed
        self.index_enum = []  # [(name, value text, value int)], set with the DDS IDL
        self.topics = topics  # ts_xml ComponentInfo order
        self.shared_enum_texts = shared_enum_texts


def _text(elem, tag):
    child = elem.find(tag)
    if child is None:
        return None
    return child.text


def int_literal(text):
    """An integer written as IDL, C and Tcl 8 read it (decimal, 0x hex,
    leading-0 octal), or None."""
    t = text.strip()
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    try:
        if t[:2] in ("0x", "0X"):
            return sign * int(t[2:], 16)
        if len(t) > 1 and t[0] == "0":
            return sign * int(t[1:], 8)
        return sign * int(t, 10)
    except ValueError:
        return None


def check_enumeration(text):
    """ts_sal refuses an enumeration that mixes "A" and "B=2" items (once
    any item has "=", every comma-separated part needs one). The values
    themselves are never checked: they are copied into the IDL as written."""
    if "=" in text and any("=" not in part for part in text.split(",")):
        raise GenError(f"enumeration {text.strip()!r} mixes implicit and explicit values")


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
    for child in elem:
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
        desc = child.find("Description")
        fields.append(
            Field(
                name,
                idl_type,
                size,
                count_given if count_given is not None else 1,
                count_given,
                _text(child, "Units"),
                desc.text if desc is not None else None,
            )
        )
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise GenError(f"{sal_name}: duplicate field names")
    # ts_sal takes every <Enumeration> in the topic, an item's too.
    enum_texts = [e.text or "" for e in elem.iter("Enumeration")]
    return Topic(sal_name, kind, _text(elem, "Description"), fields, enum_texts)


SET_TAGS = {
    "SALCommandSet": ("SALCommand", "command"),
    "SALEventSet": ("SALEvent", "event"),
    "SALTelemetrySet": ("SALTelemetry", "telemetry"),
}


def parse_file(path, prefix):
    """Entries of one XML file in document order: ("topic", Topic) or
    ("enum", text) for an <Enumeration> outside any topic."""
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
                entries.append(("enum", child.text or ""))
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
                why = ""
                if not any(categories.values()):
                    # ts_xml before 10.1: no <Category>, <Generics>yes</Generics>
                    why = (
                        f" ({path} gives its topics no <Category>: a ts_xml release before 10.1, "
                        "which ts_sal 7 cannot build either)"
                    )
                raise GenError(f"AddedGenerics entry {entry!r} names no category or generic topic{why}")
            matched = [entry]
        chosen += [n for n in matched if n not in chosen]
    keep = set(chosen)
    entries = [(k, v) for k, v in entries if k == "enum" or v.sal_name in keep]
    return entries, chosen


def load_component(xml_dir, name):
    """The component as ts_xml sees it: topics in ComponentInfo order
    (generics by AddedGenerics, then Commands, Events, Telemetry), ackcmd
    last when there are commands (DDS has no ackcmd without them)."""
    index_text, generics_text = read_subsystem(xml_dir, name)
    indexed = index_text not in ("", "no")

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
    shared = [v for entries in list(own.values()) + [generic_entries] for k, v in entries if k == "enum"]
    comp = Component(name, indexed, topics, shared)
    comp.index_text = index_text
    comp.xml_dir = xml_dir  # the Avro schemas read the cameras' .avsc files beside it
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
