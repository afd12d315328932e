#!/bin/bash
# bench_jobs_ab.sh - bench_jobs of two checkouts, alternating, on the
# same machine (docs/performance.md, "Jobs on the local engine").
#
#   tests/bench/bench_jobs_ab.sh NEW OLD COND PAIRS OUTDIR
#
# NEW, OLD: checkouts, each built in NEW/build and OLD/build (targets
# bench_jobs ocps-csc ocps-job-runner fake-pipetask). COND: busy (two
# `while :; do :; done` shells beside the pair), churn (one loop that
# makes and removes 30 files under /tmp) or idle (neither). Each run is
# `bench_jobs 200 5` between two `uptime`s, saved whole as
# OUTDIR/COND-{new,old}N.txt; odd pairs run NEW first, even pairs OLD
# first; 35 s pass between runs, so that the inodes a run's removal of
# its tree freed are older than ext4's 30 s (dirty_expire_centisecs).
# The helper processes are stopped by their pids after each pair.
set -u
new=$1 old=$2 cond=$3 npairs=$4 out=$5
mkdir -p "$out"
one() { # checkout file
    { uptime; (cd "$1" && build/tests/bench/bench_jobs 200 5 2>&1); uptime; } > "$2" 2>&1
    grep -E "load|median|CPU per job" "$2"
}
for i in $(seq "$npairs"); do
    pids=""
    if [ "$cond" = busy ]; then
        timeout 900 sh -c 'while :; do :; done' & pids="$pids $!"
        timeout 900 sh -c 'while :; do :; done' & pids="$pids $!"
    elif [ "$cond" = churn ]; then
        timeout 900 sh -c 'd=/tmp/bench-churn.$$; while :; do mkdir -p $d;
            for f in 0 1 2 3 4 5 6 7 8 9; do : > $d/a$f; : > $d/b$f; : > $d/c$f; done; rm -rf $d; done' &
        pids="$pids $!"
    fi
    sleep 2
    if [ $((i % 2)) = 1 ]; then
        one "$new" "$out/$cond-new$i.txt"; sleep 35; one "$old" "$out/$cond-old$i.txt"
    else
        one "$old" "$out/$cond-old$i.txt"; sleep 35; one "$new" "$out/$cond-new$i.txt"
    fi
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    sleep 35
done
