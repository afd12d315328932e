#!/usr/bin/env python3
"""salgen_merge: one IDL holding the sample types of several releases.

    salgen_merge --out FILE IDL [IDL ...]

Each IDL is a sal_revCoded_<Name>.idl that salgen wrote for one ts_xml
release of the same component. A type is named <topic>_<revCode>, and the
revCode is a digest of the type's fields, so two releases that agree on a
topic have the same struct: it is kept once. Constants are left out (they
differ between releases and no sample type needs them). The result is
compiled once by idlc, so a program can embed several releases without
duplicate symbols.
"""
import argparse
import os
import re
import sys

STRUCT = re.compile(r"^struct (\w+) \{")
MODULE = re.compile(r"^module (\w+) \{$")


def read_types(path):
    """(module, [(type name, text of struct and keylist)]) of one IDL file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    module = None
    types = []
    cur = None
    for line in lines:
        m = MODULE.match(line)
        if m:
            module = m.group(1)
            continue
        m = STRUCT.match(line)
        if m:
            cur = [m.group(1), [line]]
            continue
        if cur is None:
            continue
        cur[1].append(line)
        if line.startswith("#pragma keylist"):
            types.append((cur[0], "\n".join(cur[1])))
            cur = None
    if module is None:
        raise ValueError(f"{path}: no module")
    if cur is not None:
        raise ValueError(f"{path}: struct {cur[0]} has no keylist")
    return module, types


def merge(paths):
    module = None
    seen = {}
    order = []
    for path in paths:
        mod, types = read_types(path)
        if module is not None and mod != module:
            raise ValueError(f"{path}: module {mod}, expected {module}")
        module = mod
        for name, text in types:
            if name not in seen:
                seen[name] = text
                order.append(name)
    out = [f"// Sample types of {module}, merged by salgen_merge from {len(paths)} release(s).", f"module {module} {{"]
    out += [seen[name] for name in order]
    out += ["};", ""]
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="salgen_merge", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output IDL file")
    p.add_argument("idl", nargs="+", help="sal_revCoded_<Name>.idl files")
    args = p.parse_args(argv)
    try:
        text = merge(args.idl)
    except (OSError, ValueError) as e:
        print(f"salgen_merge: {e}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    try:
        with open(args.out, encoding="utf-8") as f:
            if f.read() == text:
                return 0  # keep the timestamp
    except FileNotFoundError:
        pass
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
