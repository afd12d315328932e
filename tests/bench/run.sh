#!/bin/sh
# Build (Release) and run every benchmark; results go to stdout.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
"$top/deploy/build.sh" "$top/build-bench" -DCMAKE_BUILD_TYPE=Release
"$top/build-bench/tests/bench/bench_command_rtt" "${1:-1000}"
# both measured as ddsperf measures itself (3 s a round, per-second
# medians), with two busy processes and without
"$top/build-bench/tests/bench/bench_command_rtt" 3s 5 2 free
"$top/build-bench/tests/bench/bench_command_rtt" 3s 5 0 free
# under load, with each end placed the same for the command and ddsperf
# (placing needs two CPUs)
if [ "$(nproc)" -ge 2 ]; then
    for placement in same cross free; do
        "$top/build-bench/tests/bench/bench_command_rtt" 300 5 2 "$placement"
    done
fi
"$top/build-bench/tests/bench/bench_csc_cpu" 10
"$top/build-bench/tests/bench/bench_jobs" 200
"$top/build-bench/tests/bench/bench_kafka_rtt" 300
# the CSC on the Slurm executor vs raw sbatch on a private cluster (needs
# Slurm and root); 50 jobs a round, 5 rounds, 1,000 jobs tracked for 30 s
"$top/build-bench/tests/bench/bench_slurm" 50 5 1000 30
# the engine's memory and per-call cost against a history of up to 100000 jobs
"$top/build-bench/tests/bench/bench_engine_history" 2000
# what up to 30000 waiting (PENDING) jobs cost 300 trivial jobs that run
"$top/build-bench/tests/bench/bench_engine_pending" 300
# FITS master bias against the cfitsio read floor and numpy, ISR MB/s, -j1/-j2 (issue 12)
"$top/build-bench/tests/bench/bench_fits_combine" 10 4
# ocps-engine's HTTP API under wrk, next to a static libmicrohttpd responder
"$top/build-bench/tests/bench/bench_uws" 3 3 32
# the CSC's CPU while it polls 1000 jobs on ocps-engine (executor uws)
"$top/build-bench/tests/bench/bench_uws_csc" 1000 1 10
# kill -9 campaign: the CSC killed at random moments (most within 300 ms of
# an execute); prints the counts of jobs, runs, job_result and final acks
# (about 5 s a trial on DDS; OCPS_KILL9_SEED repeats a campaign).
OCPS_KILL9_SEED="${OCPS_KILL9_SEED:-random}" OCPS_KILL9_TRIALS="${OCPS_KILL9_TRIALS:-100}" "$top/build-bench/tests/test_ocps_kill9"
OCPS_TEST_TRANSPORT=kafka OCPS_KILL9_SEED="${OCPS_KILL9_SEED:-random}" OCPS_KILL9_TRIALS="${OCPS_KILL9_TRIALS:-100}" \
    "$top/build-bench/tests/test_ocps_kill9"
