#!/bin/sh
# README command 2: install the dependencies, then build and run the whole
# test suite twice: a normal build, and a build with AddressSanitizer and
# UndefinedBehaviorSanitizer; fuzzes the YAML and JSON-schema parsers for a
# bounded time. Also checks the formatting of the C sources.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
jobs=$(nproc)

"$here/install-deps.sh"

echo "== clang-format check"
cd "$top"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

echo "== build and test"
"$here/build.sh" "$top/build"
(cd "$top/build" && ctest --output-on-failure -j "$jobs")

echo "== fuzz the parsers (libFuzzer, bounded time)"
sh "$top/tests/fuzz/run.sh" "${OCPS_FUZZ_SECONDS:-30}"

echo "== build and test with ASan + UBSan"
"$here/build.sh" "$top/build-sanitize" -DOCPS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd "$top/build-sanitize" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j "$jobs")
