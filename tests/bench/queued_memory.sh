#!/bin/sh
# queued_memory.sh - the memory of a waiting job in ocps-engine (docs/uws.md,
# --max-waiting): a fresh engine whose only slot is held by a sleeping job,
# `wrk -t1 -c8 -d SECONDS` of PUT /job with {"argv": ["true"]} (every job
# stays queued), then the engine's resident set before and after, the
# number of queued jobs (GET /job?phase=queued) and the growth per job.
#
#   tests/bench/queued_memory.sh BUILD_DIR [SECONDS (2)]
set -eu
build=$(cd "${1:?usage: queued_memory.sh BUILD_DIR [SECONDS]}" && pwd)
secs=${2:-2}
. "$(dirname "$0")/held_engine.sh"
held_engine_start "$build"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$engine_pid/status"; }
r0=$(rss)
wrk -t1 -c8 -d"${secs}s" -s "$dir/put.lua" "$url" >/dev/null
sleep 0.5
r1=$(rss)
n=$(curl -s "$url?phase=queued" | grep -o '"jobId"' | wc -l)
[ "$n" -gt 0 ] || { echo "queued_memory.sh: no job was queued" >&2; exit 1; }
echo "$n jobs queued; resident set $r0 kB -> $r1 kB: $(( (r1 - r0) * 1024 / n )) bytes per queued job"
