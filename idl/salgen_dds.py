"""salgen_dds: DDS IDL, validated per-topic files and revCodes as ts_sal 7.4.1 writes them."""

import hashlib
import os

from salgen_model import GenError, check_enumeration, int_literal

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
