#!/bin/sh
# Build every tests/fuzz/fuzz_*.c with clang's libFuzzer (+ASan/UBSan)
# against the project's parsers and the SAL number conversions, and run
# each for a bounded time.
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]   (default 20)
# Exits non-zero if a target crashes or finds a sanitizer error; the
# crashing input is left in build-fuzz/.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-20}
out="$top/build-fuzz"
mkdir -p "$out"
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
incs="-I$top/csc/config/include -I$top/csc/sal/include -I$top/csc/util/include $(pkg-config --cflags jansson yaml-0.1 libpcre2-8)"
libs="$(pkg-config --libs jansson yaml-0.1 libpcre2-8) -lm"
srcs="$(ls "$top"/csc/config/yaml_json*.c "$top"/csc/config/json_schema*.c)
$top/csc/sal/sal_sample.c $top/csc/sal/sal_interface.c $top/csc/sal/sal_json.c $top/csc/util/sal_time.c"
for f in "$top"/tests/fuzz/fuzz_*.c; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .c)
    corpus="$top/tests/fuzz/corpus/${name#fuzz_}"
    mkdir -p "$out/$name.corpus"
    echo "== $name ($secs s)"
    # shellcheck disable=SC2086
    clang $cflags $incs -o "$out/$name" "$f" $srcs $libs
    set -- "$out/$name.corpus"
    [ -d "$corpus" ] && set -- "$@" "$corpus"
    status=0
    (cd "$out" && "./$name" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$@" > "$out/$name.log" 2>&1) || status=$?
    tail -n 12 "$out/$name.log"
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $name failed (status $status); see $out/$name.log and the crash-* file in $out"
        failed=1
    fi
done
exit "${failed:-0}"
