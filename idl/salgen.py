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
                raise GenError(f"AddedGenerics entry {entry!r} names no category or generic topic")
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
# DDS IDL as ts_sal 7.4.1 writes it (`salgenerator <C> validate` and
# `salgenerator <C> sal idl`).
#
# ts_sal does not parse XML: it reads every file line by line and looks at
# the first tag of each line (the text between the first "<" and ">") and
# the text after it up to the next "<". Its state (the current topic, item,
# alias, Count, ...) carries over from line to line, and the result depends
# on that, so it is reproduced here the same way rather than from the tree.

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


def dds_type(field):
    t = field.idl_type
    if t in ("string", "char"):
        if field.size is not None and field.size > 1:
            return f"string<{field.size}>"
        return "string"
    if t not in DDS_TYPES:
        raise GenError(f"field {field.name}: unsupported IDL_Type {t!r}")
    return DDS_TYPES[t]


def revcode_of(text):
    return hashlib.md5(text.encode("utf-8")).hexdigest()[:8]


# The IDL_Type words ts_sal accepts (after "unsigned"); "char" is not one.
TSSAL_TYPES = "boolean byte short int long longlong float double string unsigned const".split()
IDL_RESERVED = set(
    "abstract any attribute boolean case char component const consumes context custom dec default double "
    "emits enum eventtype exception exit factory false finder fixed float getraises home import in inout "
    "interface limit local long module multiple native object octet oneway out primarykey private provides "
    "public publishes raises readonly sequence setraises short string struct supports switch true "
    "truncatable typedef typeid typeprefix union unsigned uses valuebase valuetype void wchar wstring".split()
)

# The six private fields every topic starts with, and their metadata.
PRIVATE_TEMPLATE = [
    "string<8>\tprivate_revCode; //private",
    "double\tprivate_sndStamp;    //private",
    "double\tprivate_rcvStamp;    //private",
    "long\tprivate_seqNum;    //private",
    "string<128>\tprivate_identity;    //private",
    "long\tprivate_origin;    //private",
]
PRIVATE_METADATA = {
    "private_revCode": ("unitless", "Revision hashcode"),
    "private_sndStamp": ("second", "Time of instance publication"),
    "private_rcvStamp": ("second", "Time of instance reception"),
    "private_seqNum": ("unitless", "Sequence number"),
    "private_identity": ("unitless", "Identity of publisher"),
    "private_origin": ("unitless", "PID of publisher"),
}
# ackcmd's metadata in ts_sal 7: units and descriptions are placeholders.
ACKCMD_METADATA = {
    "ack": "unitless",
    "error": "second",
    "result": "second",
    "identity": "unitless",
    "origin": "unitless",
    "cmdtype": "unitless",
    "timeout": "unitless",
}
SALINDEX_ANNOTATION = (
    ' // @Metadata=(Units="unitless",Description="Index number for CSC with multiple instances")'
)


def tcl_split(text, chars):
    """Tcl `split`: every character of `chars` separates; "" gives []."""
    if text == "":
        return []
    out = [""]
    for ch in text:
        if ch in chars:
            out.append("")
        else:
            out[-1] += ch
    return out


def tcl_index(items, i):
    return items[i] if -len(items) <= i < len(items) else ""


def tag_of(rec):
    return tcl_index(tcl_split(rec, "<>"), 1)


def read_lines(path):
    """Lines as Tcl `gets` returns them (any end-of-line convention)."""
    with open(path, encoding="utf-8", newline=None) as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def tcl_gt1(text):
    """Tcl `expr {$x > 1}`: numerically when x is a number, else as strings."""
    v = int_literal(text)
    if v is None:
        try:
            v = float(text)
        except ValueError:
            return text > "1"
    return v > 1


def tcl_incr(text):
    v = int_literal(text)
    # ts_sal only increments after an implicit item; a value it could not
    # increment is never used (mixes are refused), so keep going.
    return str(v + 1) if v is not None else text


class TsSal7:
    """One component through ts_sal 7.4.1's validation and IDL steps."""

    def __init__(self, xml_dir, name, sal_version):
        self.xml_dir = xml_dir
        self.name = name
        self.sal_version = sal_version
        self.event_enum = {}  # alias -> ["item:text", ...] (EVENT_ENUM)
        self.edone = set()  # aliases whose constants are written (EDONE)
        self.metadata = {}  # (topic, key...) -> text (METADATA)
        self.templates = {}  # topic -> lines of idl-templates/<topic>.idl
        self.has_commands = False  # CMD_ALIASES(<C>) exists
        self.index_done = False  # IDXENUMDONE(<C>)
        self.keyed = False
        self.index_enum = []  # ["<id>:<name>", ...] (SYSDIC(<C>,IndexEnumeration))
        self.generics_used = []

    # -- SALSubsystems.xml and SALGenerics.xml (update_ts_xml_dictionary.tcl)

    def read_dictionary(self):
        categories = {}  # buildGenericCategories
        gname = ""
        for rec in read_lines(os.path.join(self.xml_dir, "SALGenerics.xml")):
            parts = tcl_split(rec, "<>")
            tag, value = tcl_index(parts, 1), tcl_index(parts, 2)
            if tag == "EFDB_Topic":
                gname = "_".join(value.split("_")[1:])
            if tag == "Category":
                categories.setdefault(value, []).append(gname)
        mandatory = ",".join(categories.get("mandatory", []))
        name = None
        used = {}
        for rec in read_lines(os.path.join(self.xml_dir, "SALSubsystems.xml")):  # parseSystemDictionary
            parts = tcl_split(rec, "<>")
            tag, value = tcl_index(parts, 1), tcl_index(parts, 2)
            if tag == "Name":
                name = value
            if name != self.name:
                continue
            if tag == "Description":
                used[name] = mandatory
            if tag == "AddedGenerics":  # addGenerics
                g = mandatory
                if value != "":
                    for t in value.split(","):
                        t = t.strip(" ")
                        g += "," + (",".join(categories[t]) if t in categories else t)
                used[name] = g
            if tag in ("Enumeration", "IndexEnumeration") and value not in ("", "no"):
                # "any" is an enumeration of one item, like any other list;
                # an explicit value does not move the counter on.
                self.keyed = True
                self.index_enum = []
                idx = "1"
                for i in value.split(","):
                    if "=" in i:
                        idx = i.split("=")[1].strip()
                        self.index_enum.append(f"{idx}:{i.split('=')[0].strip()}")
                    else:
                        self.index_enum.append(f"{idx}:{i}")
                        idx = tcl_incr(idx)
        self.generics_used = used.get(self.name, mandatory).split(",")

    def filter_generics(self):
        """<C>_Generics.xml: SALGenerics.xml without the generic commands
        and events the component does not use (processgenerics.tcl), with
        SALGeneric and SALVersion replaced everywhere."""
        src = read_lines(os.path.join(self.xml_dir, "SALGenerics.xml"))
        out = src[:2]
        pos = 2
        copyit = -1
        while pos < len(src):
            rec = src[pos]
            pos += 1
            tag = tag_of(rec)
            if tag not in ("SALCommand", "SALEvent"):
                out.append(rec)
                continue
            block = []
            t = tag
            while t != "/" + tag:
                if pos >= len(src):
                    raise GenError(f"SALGenerics.xml: <{tag}> is not closed on a line of its own")
                rec = src[pos]
                pos += 1
                t = tag_of(rec)
                block.append(rec)
                if t == "EFDB_Topic":
                    generic = "_".join(tcl_index(tcl_split(rec, "<>"), 2).split("_")[1:])
                    copyit = 1 if generic in self.generics_used else -1
            if copyit > -1:
                out.append(f"    <{tag}>")
                out += block
        return [r.replace("SALGeneric", self.name).replace("SALVersion", self.sal_version) for r in out]

    # -- one XML file (parseXML.tcl, parseXMLtoidl)

    def parse(self, lines, fname):
        subsys = fname.split("_")[0]
        fout = None  # the open template
        alias = "shared"
        tname = "none"
        tdesc = False
        intopic = False
        item = ""
        unit = ""
        typ = "unknown"
        isjarray = False
        desc = ""
        sdim = "1"
        idim = None
        seen = set()
        pos = 0

        def gets():
            nonlocal pos
            if pos >= len(lines):
                return None
            pos += 1
            return lines[pos - 1]

        while True:
            rec = gets()
            if rec is None:
                break
            st = rec.strip()
            if st[:4] == "<!--" and not st.endswith("-->"):
                skip = True
                while skip:
                    rec = gets()
                    if rec is None:
                        raise GenError(f"{fname}: unterminated comment")
                    if rec.strip().endswith("-->"):
                        skip = False
                        rec = gets() or ""
                        if rec.strip()[:4] == "<!--":
                            skip = True
            parts = tcl_split(rec, "<>")
            tag, value = tcl_index(parts, 1), tcl_index(parts, 2)
            if tag == "Enumeration" and tcl_index(parts, 3) != "/Enumeration":
                rec = gets()
                while rec is None or tag_of(rec) != "/Enumeration":
                    if rec is None:
                        raise GenError(f"{fname}: <Enumeration> is not closed")
                    value = f"{value} {rec}"
                    rec = gets()
            if tag in ("SALCommand", "SALEvent"):
                intopic = True
                alias = ""
            if tag == "SALTelemetry":
                intopic = True
            if tag == "Alias" and alias != value:
                raise GenError(f"{fname}: Alias {value} does not match its EFDB_Topic")
            if tag == "Subsystem":
                subsys = value
            if tag == "Enumeration":
                if "=" in value and any("=" not in p for p in value.split(",")):
                    raise GenError(f"enumeration {value.strip()!r} mixes implicit and explicit values")
                if intopic:
                    self.event_enum.setdefault(alias, []).append(f"{item}:{value}")
                else:
                    self.event_enum.setdefault(f"{subsys}_shared", []).append(f"generic_shared:{value}")
            if tag in ("/SALEvent", "/SALTelemetry"):
                intopic = False
            if tag == "/SALCommand":
                intopic = False
                self.has_commands = True
                self.metadata[(f"{subsys}_ackcmd", "description")] = "unitless"
                for f, (u, d) in PRIVATE_METADATA.items():
                    self.metadata[(f"{subsys}_ackcmd", f, "units")] = u
                    self.metadata[(f"{subsys}_ackcmd", f, "description")] = d
                for f, u in ACKCMD_METADATA.items():
                    self.metadata[(f"{subsys}_ackcmd", f, "units")] = u
                    self.metadata[(f"{subsys}_ackcmd", f, "description")] = u
            if tag == "EFDB_Topic":
                if fout is not None:
                    fout += ["};", f"#pragma keylist {tname}"]
                if value.lower() in seen:
                    raise GenError(f"{fname}: duplicate EFDB_Topic {value}")
                seen.add(value.lower())
                tname = value
                fout = self.templates[tname] = [f"struct {tname} {{"] + ["  " + p for p in PRIVATE_TEMPLATE]
                for f, (u, d) in PRIVATE_METADATA.items():
                    self.metadata[(tname, f, "units")] = u
                    self.metadata[(tname, f, "description")] = d
                tdesc = True
                self.metadata[(tname, "description")] = "No description provided"
                words = tname.split("_")
                alias = "_".join(words[2:] if tcl_index(words, 1) in ("command", "logevent") else words[1:])
            if tag == "EFDB_Name":
                item, unit, typ, isjarray, desc, sdim = value, "", "unknown", False, "", "1"
                if item.lower() in IDL_RESERVED:
                    raise GenError(f"{tname}: {item} is an IDL reserved word")
            if tag in ("/SALEvent", "/SALCommand", "/SALTelemetry"):
                self.enums_to_idl(subsys, alias, fout, fname)
            if tag == "IsJavaArray":
                isjarray = True
            if tag == "IDL_Type":
                typ = {"long long": "longlong", "unsigned long long": "unsigned longlong"}.get(value, value)
            if tag == "IDL_Size":
                sdim = value
            if tag == "Description":
                if tcl_index(tcl_split(rec, "/"), -1) != "Description>":
                    # not closed on its line: a link to the topic's page
                    anchor = tname.split("_")[-1].lower()
                    desc = (
                        f"<A HREF=https://ts-xml.lsst.io/python/lsst/ts/xml/data/sal_interfaces/"
                        f"{subsys}.html#{anchor}>{subsys}_{tname}</A>"
                    )
                else:
                    desc = value
                if tdesc:
                    # the first description after EFDB_Topic, wherever it is
                    self.metadata[(tname, "description")] = desc
                    tdesc = False
            if tag == "Count":
                idim = value
            if tag == "Units":
                unit = value.strip()
            if tag == "/item":
                words = typ.split()
                chk = tcl_index(words, 1) if tcl_index(words, 0) == "unsigned" else typ
                if chk not in TSSAL_TYPES:
                    raise GenError(f"{tname}.{item}: ts_sal 7 does not accept IDL_Type {typ!r}")
                if idim is None:
                    raise GenError(f"{fname}: ts_sal needs a Count in the file's first item ({item})")
                if typ in ("string", "char"):
                    declare = f"   string<{sdim}> {item};" if tcl_gt1(sdim) else f"   string {item};"
                elif tcl_gt1(idim) or isjarray:
                    # Count is not reset between items: a missing one repeats the last
                    declare = f"   {typ} {item}[{idim}];"
                else:
                    declare = f"   {typ} {item};"
                if fout is None:
                    raise GenError(f"{fname}: an item before any EFDB_Topic")
                fout.append("   " + declare.strip(" ;"))
                self.metadata[(tname, item, "description")] = desc
                self.metadata[(tname, item, "units")] = unit
        if fout is not None:
            fout += ["};", f"#pragma keylist {tname}"]
            self.enums_to_idl(subsys, alias, fout, fname)
            if self.keyed and not self.index_done:
                for e in self.index_enum:
                    parts = tcl_split(e.strip("{}"), ":")
                    name, value = tcl_index(parts, 1), tcl_index(parts, 0)
                    fout.append(f" const long long indexEnumeration_{name}={value};")
                self.index_done = True

    def enums_to_idl(self, subsys, alias, fout, fname):
        """A topic's enumerations (by alias), then the first pending shared
        ones, as constants numbered from 1 or as written."""
        for key, prefix in ((alias, alias), (f"{subsys}_shared", f"{subsys}_shared")):
            if key not in self.event_enum or key in self.edone:
                continue
            if fout is None:
                raise GenError(f"{fname}: an enumeration before any topic")
            for e in self.event_enum[key]:
                i = "1"
                for ident in tcl_split(tcl_index(tcl_split(e.strip("{}"), ":"), 1), ","):
                    if len(tcl_split(ident, "=")) > 1:
                        i = tcl_split(ident, "=")[1].strip()
                        ident = tcl_split(ident, "=")[0].strip()
                    fout.append(f" const long long {prefix}_{ident.strip(' ')}={i};")
                    i = tcl_incr(i)
            self.edone.add(key)

    # -- idl-templates/validated (checkidl.tcl)

    def checkidl(self, tname):
        template = self.templates[tname]
        out = []
        for rec in template:
            r = rec.strip("{")
            if r.strip() == "" or r[:1] == "#" or r[:2] == "//":
                continue
            if rec.strip() in ("}", "};"):
                out += ["};", f"#pragma keylist {tname}"]
                out += [line for line in template if "const " in line]
                break
            if rec[:6] == "struct":
                out.append(f"struct {tname} {{")
                out += ["  " + p for p in PRIVATE_TEMPLATE]
                continue
            words = rec.split()
            u = ""
            if words[0] == "unsigned":
                u = " unsigned"
                words = rec.strip()[9:].split()
            typ = words[0].split("<")[0].lower()
            if typ not in TSSAL_TYPES:
                raise GenError(f"{tname}: type {typ} not supported")
            if typ == "const":
                continue
            t, ident = words[0], tcl_index(words, 1)
            t = {"int": "long", "byte": "octet", "longlong": "long long"}.get(t, t)
            if t.startswith("string"):
                ident = ident.strip(";")
                size = tcl_index(tcl_split(t, "<>"), 1)
                v = f"  string<{size}>\t{ident}" if size else f"  string\t{ident}"
            else:
                parts = tcl_split(ident, "[]")
                ident = parts[0].strip(";")
                v = f"  {t}\t{ident}" if len(parts) == 1 else f"  {t}\t{ident}[{parts[1]}]"
            if ident.lower() in IDL_RESERVED:
                raise GenError(f"{tname}: {ident} is an IDL reserved word")
            if ident.split("_")[0] == "private":
                continue
            out.append(f" {u} {v.strip()};")
        return "\n".join(out) + "\n"

    def ackcmd_template(self):
        name = f"{self.name}_ackcmd"
        body = ["long\tack", "long\terror", "string<256>\tresult", "string\tidentity", "long\torigin"]
        body += ["long\tcmdtype", "double\ttimeout"]
        return (
            [f"struct {name} {{"]
            + ["  " + p for p in PRIVATE_TEMPLATE]
            + [f"\t  {b};" for b in body]
            + ["\t};", f"#pragma keylist {name}", ""]
        )

    # -- sal_<C>.idl and sal_revCoded_<C>.idl (gensimplesample.tcl makesalidl,
    #    activaterevcodes.tcl activeRevCodes)

    def sal_idl(self, validated):
        keyed = self.keyed
        lines = [f"module {self.name} {{"]
        for tname in sorted(validated, key=lambda n: (n + ".idl").encode()):
            name = "_".join(tname.split("_")[1:])
            if name == "ackcmd":
                continue
            lines.append(f"\tstruct {name} {{")
            if keyed:
                lines.append("\t  long\tsalIndex;\t//private")
            for rec in validated[tname].split("\n")[1:-1]:
                if tcl_index(rec.split(), 0) == "#pragma":
                    lines.append(f"\t#pragma keylist {name}" + (" salIndex" if keyed else ""))
                else:
                    lines.append("\t" + rec)
        if self.has_commands:
            lines.append("\tstruct ackcmd {")
            lines += ["  " + p for p in PRIVATE_TEMPLATE]
            if keyed:
                # genkeyedidl
                lines += ["\t  long\tsalIndex;", "\t  long\t\tack;"]
            else:
                # gennonkeyedidl: one tab fewer before "ack"
                lines += ["\t  long\tack;"]
            lines += ["\t  long\t\terror;", "\t  string\tresult;", "\t  string\tidentity;"]
            lines += ["\t  long\t\torigin;", "\t  long\t\tcmdtype;", "\t  double\ttimeout;", "\t};"]
            lines.append("\t#pragma keylist ackcmd salIndex" if keyed else "\t#pragma keylist ackcmd")
        lines += ["};", ""]
        return lines

    def revcoded_idl(self, sal_lines, revcodes, xml_version):
        out = [f"// SAL_VERSION={self.sal_version} XML_VERSION={xml_version}", sal_lines[0]]
        curtopic = None
        for rec in sal_lines[1:]:
            r2 = rec.strip("{}")
            words = r2.split()
            if rec.strip(" \t{};") == "":
                out.append(rec)
            elif words[0] == "struct":
                curtopic = f"{self.name}_{words[1]}"
                desc = self.metadata[(curtopic, "description")]
                out.append(f'struct {words[1]}_{revcodes[curtopic]} {{  // @Metadata=(Description="{desc}")')
            elif words[0] == "#pragma":
                ident = tcl_index(words, 2)
                if ident in ("command", "logevent"):
                    out.append(rec)
                else:
                    rest = " ".join(rec.split()[3:])
                    out.append(f"#pragma keylist {ident}_{revcodes[f'{self.name}_{ident}']} {rest}")
            elif words[0] == "const":
                out.append(rec)
            else:
                w = rec.split()
                if w[0] == "unsigned":
                    w = w[1:]
                if tcl_index(w, 1) == "long":
                    w = w[1:]
                item = tcl_split(tcl_index(w, 1), "[];")[0].strip()
                if item == "salIndex":
                    out.append(rec + SALINDEX_ANNOTATION)
                    continue
                try:
                    units = self.metadata[(curtopic, item, "units")]
                    desc = self.metadata[(curtopic, item, "description")]
                except KeyError:
                    raise GenError(f"{curtopic}: ts_sal has no metadata for {item}") from None
                out.append(f'{rec} // @Metadata=(Units="{units}",Description="{desc}")')
        return "\n".join(out) + "\n"

    def run(self, xml_version):
        """Return (validated text by topic, revCode by topic, final IDL,
        constants by topic) with topics named as in the component's IDL."""
        self.read_dictionary()
        for suffix in ("Telemetry", "Commands", "Events"):
            path = os.path.join(self.xml_dir, self.name, f"{self.name}_{suffix}.xml")
            if os.path.exists(path) and os.path.getsize(path) > 0:
                self.parse(read_lines(path), f"{self.name}_{suffix}.xml")
        self.parse(self.filter_generics(), f"{self.name}_Generics.xml")
        prefix = self.name + "_"
        if any(t.startswith(prefix + "command_") for t in self.templates):
            self.templates[prefix + "ackcmd"] = self.ackcmd_template()
        validated = {t: self.checkidl(t) for t in self.templates if t.startswith(prefix)}
        revcodes = {t: revcode_of(text) for t, text in validated.items()}
        final = self.revcoded_idl(self.sal_idl(validated), revcodes, xml_version)
        consts = {}
        for t, text in validated.items():
            rows = []
            for line in text.split("\n"):
                if line.startswith(" const long long "):
                    name, _, value = line[len(" const long long ") :].rstrip(";").partition("=")
                    rows.append((name, value, int_literal(value)))
            consts[t[len(prefix) :]] = rows
        strip = len(prefix)
        return (
            {t[strip:]: v for t, v in validated.items()},
            {t[strip:]: v for t, v in revcodes.items()},
            final,
            consts,
        )


def generate_dds(comp, xml_dir, xml_version, sal_version):
    """Return (validated files dict, revcodes dict, final idl text), and set
    each topic's constants and the component's index enumeration."""
    for t in comp.topics:
        for f in t.fields:
            dds_type(f)
        for text in t.enum_texts:
            check_enumeration(text)
    for text in comp.shared_enum_texts:
        check_enumeration(text)
    sal = TsSal7(xml_dir, comp.name, sal_version)
    validated, revcodes, final, consts = sal.run(xml_version)
    if sal.keyed != comp.indexed:
        raise GenError(f"{comp.name}: ts_sal and ts_xml disagree on whether the component is indexed")
    # The tree (ts_xml, Avro, C tables) and the line reading (ts_sal) must
    # see the same topics and fields; they differ when an XML file puts
    # several elements on one line, which ts_sal does not read.
    want = {t.sal_name: [f.name for f in t.fields] for t in comp.topics if t.kind != "ackcmd"}
    have = {}
    for name, text in validated.items():
        if name != "ackcmd":
            have[name] = [
                line.split("\t")[1].split("[")[0].rstrip(";") for line in text.split("\n")[7:] if "\t" in line
            ]
    if want != have:
        bad = sorted(set(want) ^ set(have)) or [n for n in want if want[n] != have.get(n)]
        raise GenError(
            f"{comp.name}: ts_sal reads the XML line by line and sees other topics or fields "
            f"({', '.join(bad[:5])}); put one element per line"
        )
    for t in comp.topics:
        t.consts = consts.get(t.sal_name, [])
    # For the runtime "any" allows every index: no list (the IDL's
    # indexEnumeration_any=1 is a ts_sal artefact).
    comp.index_enum = []
    if comp.index_text != "any":
        for e in sal.index_enum:
            ident, _, name = e.partition(":")
            comp.index_enum.append((name.split(":")[0].strip(), ident, int_literal(ident)))
    return validated, revcodes, final


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


# --------------------------------------------------------------------------
# C tables for the runtime


def check_c_values(comp):
    """The C tables hold enumeration values as integers; the IDL keeps the
    text (04 is octal, 0x05 hex, as IDL and C read them)."""
    for t in comp.topics:
        for name, text, value in t.consts:
            if value is None:
                raise GenError(f"{t.sal_name}: {name}={text} is not an integer the C tables can hold")
    for name, text, value in comp.index_enum:
        if value is None:
            raise GenError(f"IndexEnumeration {name}={text} is not an integer")


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
            "        .priv = {",
            f"            .salIndex = {f'(ptrdiff_t)offsetof({ctype}, salIndex)' if comp.indexed else '-1'},",
            f"            .revCode = offsetof({ctype}, private_revCode),",
            f"            .sndStamp = offsetof({ctype}, private_sndStamp),",
            f"            .rcvStamp = offsetof({ctype}, private_rcvStamp),",
            f"            .seqNum = offsetof({ctype}, private_seqNum),",
            f"            .identity = offsetof({ctype}, private_identity),",
            f"            .origin = offsetof({ctype}, private_origin),",
            "        },",
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
    except (GenError, ET.ParseError, ValueError) as e:
        print(f"salgen: {e}", file=sys.stderr)
        return 1
    n = comp.name
    out = args.out
    # Avro first: nothing in the DDS rules (enumerations above all) may stop it.
    avro = generate_avro(comp, lambda m: print(f"salgen: warning: {m}", file=sys.stderr))
    for sal_name, compact, indent4, _ in avro:
        if compact is None:
            continue
        write(os.path.join(out, "avro", n, f"{sal_name}.json"), compact)
        write(os.path.join(out, "avro", n, "indent4", f"{sal_name}.json"), indent4)
    write(os.path.join(out, "avro", f"{n}_revCodes.txt"), "".join(f"{a[0]} {a[3]}\n" for a in avro if a[3]))
    try:
        validated, revcodes, final = generate_dds(comp, args.xml_dir, args.xml_version, args.sal_version)
        if not args.no_c:
            check_c_values(comp)
    except (GenError, ET.ParseError, ValueError, OSError) as e:
        print(f"salgen: {e}", file=sys.stderr)
        return 1
    for sal_name, text in validated.items():
        write(os.path.join(out, "dds", "validated", f"{n}_{sal_name}.idl"), text)
    write(os.path.join(out, "dds", f"sal_revCoded_{n}.idl"), final)
    write(
        os.path.join(out, "dds", f"{n}_revCodes.txt"),
        "".join(f"{k} {revcodes[k]}\n" for k in sorted(revcodes, key=str.encode)),
    )
    if not args.no_c:
        h, c = generate_c(comp, args.xml_version, args.sal_version, revcodes, avro, args.c_name)
        cn = args.c_name or n
        write(os.path.join(out, "c", f"{cn}_sal.h"), h)
        write(os.path.join(out, "c", f"{cn}_sal.c"), c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
