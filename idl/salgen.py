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
                                     (the cameras' .avsc topics included)
  avro/<NAME>/indent4/<sal_name>.json  indent-4 form; md5 -> revCode
  avro/<NAME>_revCodes.txt           "<sal_name> <revCode>" in ts_xml order
  c/<NAME>_sal.h, c/<NAME>_sal.c     tables for the C runtime (need the
                                     idlc output of sal_revCoded_<NAME>.idl)

Build-time only; uses nothing but the Python 3 standard library.
"""

import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import argparse
import os
import xml.etree.ElementTree as ET

from salgen_model import GenError, SAL_VERSION_DEFAULT, load_component
from salgen_dds import generate_dds
from salgen_avro import generate_avro
from salgen_c import check_c_values, generate_c

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
    # Avro first: nothing in the DDS rules (enumerations above all) may stop
    # it; and an input ts_xml refuses still gets its DDS output (ts_sal's).
    try:
        avro = generate_avro(
            comp, lambda m: print(f"salgen: warning: {m}", file=sys.stderr), args.xml_version
        )
    except GenError as e:
        print(f"salgen: no Avro schemas: {e}", file=sys.stderr)
        avro = None
    for sal_name, compact, indent4, _ in avro or []:
        if compact is None:
            continue
        write(os.path.join(out, "avro", n, f"{sal_name}.json"), compact)
        write(os.path.join(out, "avro", n, "indent4", f"{sal_name}.json"), indent4)
    if avro is not None:
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
    if avro is None:
        return 1
    if not args.no_c:
        h, c = generate_c(comp, args.xml_version, args.sal_version, revcodes, avro, args.c_name)
        cn = args.c_name or n
        write(os.path.join(out, "c", f"{cn}_sal.h"), h)
        write(os.path.join(out, "c", f"{cn}_sal.c"), c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
