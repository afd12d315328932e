#!/bin/sh
# Build every tests/fuzz/fuzz_*.c with clang's libFuzzer (+ASan/UBSan) and
# run each for a bounded time, from its seed corpus tests/fuzz/corpus/<name>.
#   tests/fuzz/run.sh [SECONDS_PER_TARGET [TARGET...]]   (default 20 s, every target)
# The targets are built by CMake (-DOCPS_FUZZ=ON, target `fuzzers`) in
# build-fuzz/cmake, with every library instrumented: the Kafka decoder's
# target needs the generated OCPS interface tables, which only the CMake
# build makes. Exits non-zero if a target crashes, leaks or finds a
# sanitizer error; the crashing input is left in build-fuzz/.
# OCPS_FUZZ_SEED=N fixes libFuzzer's seed and OCPS_FUZZ_RUNS=N bounds each
# target by executions instead of time: with both, a run is repeatable (the
# test script uses them so that CI checks the same inputs every time and a
# new finding comes from a long campaign, not from a CI run's luck).
# A long campaign: docs/fuzzing.md.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-20}
[ $# -gt 0 ] && shift
out="$top/build-fuzz"
mkdir -p "$out"
echo "== build the fuzz targets ($out/cmake)"
cmake -S "$top" -B "$out/cmake" -DCMAKE_C_COMPILER=clang -DOCPS_FUZZ=ON -DOCPS_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$out/cmake.log" 2>&1 || { cat "$out/cmake.log"; exit 1; }
cmake --build "$out/cmake" -j "$(nproc)" --target fuzzers >> "$out/cmake.log" 2>&1 || { tail -n 40 "$out/cmake.log"; exit 1; }
if [ $# -eq 0 ]; then
    for f in "$top"/tests/fuzz/fuzz_*.c; do
        set -- "$@" "$(basename "$f" .c)"
    done
fi
for name in "$@"; do
    name=fuzz_${name#fuzz_}
    corpus="$top/tests/fuzz/corpus/${name#fuzz_}"
    mkdir -p "$out/$name.corpus"
    echo "== $name ($secs s)"
    dirs="$out/$name.corpus"
    [ -d "$corpus" ] && dirs="$dirs $corpus"
    status=0
    bound="-max_total_time=$secs"
    [ -n "${OCPS_FUZZ_RUNS:-}" ] && bound="-runs=$OCPS_FUZZ_RUNS"
    [ -n "${OCPS_FUZZ_SEED:-}" ] && bound="$bound -seed=$OCPS_FUZZ_SEED"
    # shellcheck disable=SC2086
    (cd "$out" && "$out/cmake/fuzz/$name" $bound -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 $dirs > "$out/$name.log" 2>&1) || status=$?
    tail -n 12 "$out/$name.log"
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $name failed (status $status); see $out/$name.log and the crash-* file in $out"
        failed=1
    fi
done
exit "${failed:-0}"
