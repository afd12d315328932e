#!/bin/sh
# runner_log_cap.sh BUILD_DIR [RUNS [BYTES [LIMIT]]]: a job writing BYTES
# (default 2e9) of zeros under ocps-job-runner, with its log bounded to
# LIMIT bytes (default 1e8: --log-max) and unbounded (the reference, the
# job writing the file itself), alternated RUNS times (default 5) in one
# scratch directory under TMPDIR; prints each pair's wall times, the log
# sizes, and min/median/max of the ratio bounded/unbounded.
set -eu
build=${1:?usage: runner_log_cap.sh BUILD_DIR [RUNS [BYTES [LIMIT]]]}
runs=${2:-5}
bytes=${3:-2000000000}
limit=${4:-100000000}
runner="$build/processing/ocps-job-runner"
dir=$(mktemp -d "${TMPDIR:-/tmp}/ocps-logcap-XXXXXX")
trap 'rm -rf "$dir"' EXIT
one() { # one run with --log-max $1; prints seconds and log size
    rm -rf "$dir/w" "$dir/log" && mkdir "$dir/w"
    t0=$(date +%s.%N)
    "$runner" --workdir "$dir/w" --status "$dir/s.json" --log "$dir/log" --timeout 0 --grace 1 \
        --log-max "$1" -- sh -c "head -c $bytes /dev/zero" 2>/dev/null
    t1=$(date +%s.%N)
    echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') $(stat -c %s "$dir/log")"
}
ratios=""
i=1
while [ "$i" -le "$runs" ]; do
    set -- $(one "$limit"); bounded=$1; bsize=$2
    set -- $(one 0); whole=$1; wsize=$2
    r=$(awk -v a="$bounded" -v b="$whole" 'BEGIN {printf "%.2f", a / b}')
    echo "run $i: bounded ${bounded} s (log $bsize bytes), unbounded ${whole} s (log $wsize bytes), ratio $r"
    ratios="$ratios $r"
    i=$((i + 1))
done
echo "$ratios" | tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {printf "ratio bounded/unbounded: min %s, median %s, max %s\n", v[1], v[int((NR+1)/2)], v[NR]}'
