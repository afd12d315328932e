#!/bin/sh
# Container entrypoint of ocps-csc, with salobj's convention: the CSC's
# command line (the SAL index, then options) is in RUN_ARG, as phalanx's
# charts/csc sets it (env RUN_ARG: 1, or "1 --state enabled"). Arguments
# given to the container replace RUN_ARG. RUN_ARG is split into words at
# blanks, never glob-expanded.
set -eu
if [ "$#" -gt 0 ]; then
    exec ocps-csc "$@"
fi
if [ -z "${RUN_ARG:-}" ]; then
    echo "ocps-entrypoint: RUN_ARG must hold the SAL index and options (e.g. RUN_ARG=1)" >&2
    exit 64
fi
set -f
# shellcheck disable=SC2086 # word splitting of RUN_ARG is the convention
exec ocps-csc $RUN_ARG
