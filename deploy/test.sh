#!/bin/sh
# README command 2: install the dependencies, then build and run the whole
# test suite three times: a normal build (GCC), a Clang Release (-O3) build,
# and a build with AddressSanitizer and UndefinedBehaviorSanitizer; also
# builds (without testing) a GCC Release (-O3) build, whose optimiser finds
# warnings the others do not, and every other level of GCC (-O1, -Os, -Og)
# and Clang (-O0, -O1, -O2, -Os). Every build treats warnings as errors
# (OCPS_WERROR). Fuzzes the parsers of untrusted input (YAML, JSON Schema,
# SAL numbers, the Kafka decoder, the execute fields; docs/fuzzing.md) for a
# bounded time, runs the in-process tests (ctest -R inproc) under ThreadSanitizer,
# checks the formatting of the C sources, and builds the container image
# (podman) and commands the CSC it holds from this host.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
jobs=$(nproc)

"$here/install-deps.sh"

echo "== clang-format check"
cd "$top"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

echo "== build and test"
"$here/build.sh" "$top/build" -DOCPS_WERROR=ON
(cd "$top/build" && ctest --output-on-failure -j "$jobs")

echo "== GCC Release (-O3) build"
"$here/build.sh" "$top/build-gcc-release" -DOCPS_WERROR=ON -DCMAKE_C_COMPILER=gcc \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O3 -DNDEBUG"

echo "== warnings at the other optimisation levels (build only)"
# GCC's optimiser-dependent warnings change with the level (-Os found a
# format truncation the others did not); every target, tests included.
for cl in gcc:-O1 gcc:-Os gcc:-Og clang:-O0 clang:-O1 clang:-O2 clang:-Os; do
    cc=${cl%%:*}
    level=${cl#*:}
    dir="$top/build-levels-$cc$level"
    echo "-- $cc $level"
    cmake -S "$top" -B "$dir" -DOCPS_WERROR=ON -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="$level -DNDEBUG" >/dev/null
    cmake --build "$dir" -j "$jobs" >/dev/null
    rm -rf "$dir"
done

echo "== Clang Release (-O3) build and test"
"$here/build.sh" "$top/build-clang-release" -DOCPS_WERROR=ON -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O3 -DNDEBUG"
(cd "$top/build-clang-release" && ctest --output-on-failure -j "$jobs")

echo "== fuzz the parsers (libFuzzer, a fixed seed and a bounded number of runs)"
OCPS_FUZZ_SEED=${OCPS_FUZZ_SEED:-1} OCPS_FUZZ_RUNS=${OCPS_FUZZ_RUNS:-200000} \
    sh "$top/tests/fuzz/run.sh" "${OCPS_FUZZ_SECONDS:-30}"

echo "== build and test with ASan + UBSan"
"$here/build.sh" "$top/build-sanitize" -DOCPS_WERROR=ON -DOCPS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd "$top/build-sanitize" && ASAN_OPTIONS=detect_leaks=1:handle_abort=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j "$jobs")

echo "== build with ThreadSanitizer and run the in-process tests"
# The CSC, its Remotes, libuv's thread pool and the inproc transport share
# one process in those tests, so TSan sees all their threads; three rounds,
# as races depend on timing. Only their targets are built: on 2 cores about
# 15 s to configure and build, 10 s for the rounds. TSan wants the address
# layout of a kernel with low mmap randomisation: run without ASLR where
# the kernel allows it.
cmake -S "$top" -B "$top/build-tsan" -DOCPS_WERROR=ON -DOCPS_TSAN=ON -DCMAKE_BUILD_TYPE=Debug
cmake --build "$top/build-tsan" -j "$jobs" --target inproc_tests
norandom=""
if setarch "$(uname -m)" -R true 2>/dev/null; then
    norandom="setarch $(uname -m) -R"
fi
# tests/tsan.supp: a false report of libuv's descriptor reuse (see there).
# handle_abort: an abort (libuv aborts without a word) prints its stack.
(cd "$top/build-tsan" && TSAN_OPTIONS="halt_on_error=1 handle_abort=1 second_deadlock_stack=1 suppressions=$top/tests/tsan.supp" \
    $norandom ctest --output-on-failure -j "$jobs" -R inproc --repeat until-fail:3)

echo "== the container image (podman): built from this tree, its CSC commanded from this host"
# podman and mmdebstrap only here (the base image is made from Debian's
# archive where no registry is reachable); with their recommends.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if ! command -v podman >/dev/null 2>&1 || ! command -v mmdebstrap >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman mmdebstrap >/dev/null
fi
$SUDO sh "$top/tests/deploy/container_image.sh" "$top/build"
