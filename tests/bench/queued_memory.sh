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
dir=$(mktemp -d)
engine_pid=
cleanup() {
    [ -n "$engine_pid" ] && kill "$engine_pid" 2>/dev/null && wait "$engine_pid" 2>/dev/null
    [ -s "$dir/holder.pid" ] && kill -9 -"$(cat "$dir/holder.pid")" 2>/dev/null
    sleep 0.3 # the holder's runner writes its status as it ends
    rm -rf "$dir"
}
trap cleanup EXIT
"$build/processing/ocps-engine" --listen 127.0.0.1:0 --state-dir "$dir/state" --work-root "$dir/work" \
    --port-file "$dir/port" --max-concurrent 1 --max-waiting 0 2>"$dir/engine.log" &
engine_pid=$!
i=0
while [ ! -s "$dir/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
url="http://127.0.0.1:$(cat "$dir/port")/api/v1/job"
curl -s -X PUT -H 'Content-Type: application/json' \
    -d "{\"command\": \"echo \$\$ > $dir/holder.pid; exec sleep 600\"}" "$url" >/dev/null
sleep 0.5
cat >"$dir/put.lua" <<'LUA'
wrk.method = "PUT"
wrk.body = '{"argv": ["true"], "run_id": "bench"}'
wrk.headers["Content-Type"] = "application/json"
LUA
rss() { awk '/^VmRSS/ {print $2}' "/proc/$engine_pid/status"; }
r0=$(rss)
wrk -t1 -c8 -d"${secs}s" -s "$dir/put.lua" "$url" >/dev/null
sleep 0.5
r1=$(rss)
n=$(curl -s "$url?phase=queued" | grep -o '"jobId"' | wc -l)
echo "$n jobs queued; resident set $r0 kB -> $r1 kB: $(( (r1 - r0) * 1024 / n )) bytes per queued job"
