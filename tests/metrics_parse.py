#!/usr/bin/python3
"""Parse Prometheus text exposition (stdin) with prometheus_client, the
reference parser, and print its samples as one JSON object:
"name{label=value,...}" (labels sorted) -> value. Every family must have a
HELP and a TYPE line. Exit 77 (skip) without prometheus_client (Debian's
python3-prometheus-client), 1 if the text does not parse."""
import json
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("prometheus_client is missing (apt-get install python3-prometheus-client)", file=sys.stderr)
    sys.exit(77)

text = sys.stdin.read()
helps = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
types = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
out = {}
try:
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
        # prometheus_client strips _total from counter family names
        if fam.name not in helps and fam.name + "_total" not in helps:
            raise ValueError(f"family {fam.name} has no HELP line")
        if fam.name not in types and fam.name + "_total" not in types:
            raise ValueError(f"family {fam.name} has no TYPE line")
except ValueError as e:
    print(f"metrics_parse: {e}", file=sys.stderr)
    sys.exit(1)
json.dump(out, sys.stdout, sort_keys=True)
