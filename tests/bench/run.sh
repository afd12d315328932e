#!/bin/sh
# Build (Release) and run every benchmark; results go to stdout.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
"$top/deploy/build.sh" "$top/build-bench" -DCMAKE_BUILD_TYPE=Release
"$top/build-bench/tests/bench/bench_command_rtt" "${1:-1000}"
"$top/build-bench/tests/bench/bench_csc_cpu" 10
"$top/build-bench/tests/bench/bench_jobs" 200
"$top/build-bench/tests/bench/bench_kafka_rtt" 300
