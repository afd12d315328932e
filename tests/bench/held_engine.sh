# held_engine.sh - sourced by profile_uws_put.sh and queued_memory.sh: start
# a fresh ocps-engine (in a new temporary directory $dir) whose only slot is
# held by a sleeping job, so that every job PUT afterwards stays queued
# (as bench_uws's PUT case), and write $dir/put.lua, wrk's PUT /job of
# {"argv": ["true"]}. Sets dir, engine_pid and url; removes it all at exit.
#
#   . tests/bench/held_engine.sh; held_engine_start BUILD_DIR
held_engine_cleanup() {
    [ -n "$engine_pid" ] && kill "$engine_pid" 2>/dev/null && wait "$engine_pid" 2>/dev/null
    [ -s "$dir/holder.pid" ] && kill -9 -"$(cat "$dir/holder.pid")" 2>/dev/null
    sleep 0.3 # the holder's runner writes its status as it ends
    rm -rf "$dir"
}

held_engine_start() {
    dir=$(mktemp -d)
    engine_pid=
    trap held_engine_cleanup EXIT
    "$1/processing/ocps-engine" --listen 127.0.0.1:0 --state-dir "$dir/state" --work-root "$dir/work" \
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
}
