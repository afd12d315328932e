#!/bin/sh
# profile_uws_put.sh - where the CPU of one PUT /job of ocps-engine goes
# (docs/performance.md, bench_uws): a fresh engine whose only slot is held
# by a sleeping job (as bench_uws's PUT case), `wrk -t1 -cN -d4s` of PUT
# /job with {"argv": ["true"]}; prints the engine's CPU per request (user +
# system, /proc/<pid>/stat) and, with `perf`, a breakdown of `perf record
# --call-graph dwarf` of the engine by what each sample was doing (the
# first of the listed functions found on its stack). With `sched`, where
# the engine's and wrk's time went over 3 s of the run (/proc/<pid>/schedstat:
# on a CPU, waiting for one on the run queue, neither: asleep, e.g. in
# epoll_wait) and the engine's context switches per PUT (/proc/<pid>/status):
# whether the engine is short of CPU or waits for something.
#
#   tests/bench/profile_uws_put.sh BUILD_DIR [cpu|perf|sched] [CONNECTIONS]
set -eu
usage="usage: profile_uws_put.sh BUILD_DIR [cpu|perf|sched] [CONNECTIONS]"
build=$(cd "${1:?$usage}" && pwd)
mode=${2:-cpu}
connections=${3:-32}
case "$mode:$connections" in
cpu:[1-9]* | perf:[1-9]* | sched:[1-9]*) ;;
*) echo "$usage" >&2 && exit 2 ;;
esac
. "$(dirname "$0")/held_engine.sh"
held_engine_start "$build"
ticks() { awk '{print $14 + $15}' "/proc/$engine_pid/stat"; }
t0=$(ticks)
if [ "$mode" = perf ]; then
    perf record -q -F 2000 --call-graph dwarf,16384 -o "$dir/perf.data" -p "$engine_pid" -- sleep 4 \
        >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.3
fi
wrk -t1 "-c$connections" -d4s -s "$dir/put.lua" "$url" >"$dir/wrk.txt" &
wrk_pid=$!
if [ "$mode" = sched ]; then
    # ns on a CPU and ns waiting for one, summed over the threads of the
    # engine and of wrk, then the wall clock
    sched() { { cat "/proc/$engine_pid/task"/*/schedstat | awk '{o += $1; w += $2} END {print o, w}';
        cat "/proc/$wrk_pid/task"/*/schedstat | awk '{o += $1; w += $2} END {print o, w}'; } |
        awk 'NR == 1 {eo = $1; ew = $2} NR == 2 {wo = $1; ww = $2} END {print eo, ew, wo, ww}'; }
    switches() { awk '/^voluntary_ctxt/ {v = $2} /^nonvoluntary_ctxt/ {n = $2} END {print v, n}' \
        "/proc/$engine_pid/status"; }
    sleep 0.5
    s0="$(sched) $(date +%s%N) $(switches) $(awk '{print $10}' "/proc/$engine_pid/stat")"
    sleep 3
    s1="$(sched) $(date +%s%N) $(switches) $(awk '{print $10}' "/proc/$engine_pid/stat")"
fi
wait "$wrk_pid"
t1=$(ticks)
[ "$mode" = perf ] && wait "$perf_pid"
n=$(awk '/requests in/ {print $1}' "$dir/wrk.txt")
hz=$(getconf CLK_TCK)
echo "$n PUTs, $(awk '/Requests\/sec/ {print $2}' "$dir/wrk.txt") req/s;" \
    "engine CPU $(echo "$t0 $t1 $n $hz" | awk '{printf "%.1f", ($2 - $1) / $4 * 1e6 / $3}') us per PUT"
if [ "$mode" = sched ]; then
    rate=$(awk '/Requests\/sec/ {print $2}' "$dir/wrk.txt")
    echo "$s0 $s1 $rate" | awk '{
        w = $13 - $5
        printf "engine: on a CPU %.0f %%, waiting for one %.0f %%, asleep %.0f %% (of one core);", \
            100 * ($9 - $1) / w, 100 * ($10 - $2) / w, 100 - 100 * ($9 - $1 + $10 - $2) / w
        printf " per PUT %.2f voluntary, %.2f forced switches, %.2f page faults\n", \
            ($14 - $6) / ($17 * w / 1e9), ($15 - $7) / ($17 * w / 1e9), ($16 - $8) / ($17 * w / 1e9)
        printf "wrk:    on a CPU %.0f %%, waiting for one %.0f %%\n", 100 * ($11 - $3) / w, 100 * ($12 - $4) / w }'
fi
[ "$mode" = perf ] || exit 0
perf script -i "$dir/perf.data" 2>/dev/null | python3 -c '
import sys
cats = [
    ("store: commit (WAL write, checkpoint)", ["engine_store_commit", "engine_batch_begin"]),
    ("store: insert (SQLite)", ["sqlite3_step"]),
    ("store: insert (spec, meta as JSON text)", ["engine_store_bind"]),
    ("engine: spec JSON, job record", ["engine_new_rec", "engine_spec_json"]),
    ("engine: submit, other", ["engine_job_submit"]),
    ("engine: notification", ["engine_notify", "engine__schedule"]),
    ("reply: JSON text", ["uws_reply_new_job", "uws_job_text"]),
    ("reply: MHD response", ["uws_response", "uws_send", "MHD_queue_response"]),
    ("request: body, meta, env", ["uws_submit_parse", "uws_job_meta", "uws_env_strv", "uws_argv_strv"]),
    ("request: job id", ["engine_new_job_id"]),
    ("request: other", ["uws_put_job", "uws_on_request"]),
    ("request log", ["uws_on_completed", "uws_log_flush"]),
    ("kernel: send (sendmsg)", ["sendmsg", "writev"]),
    ("kernel: receive", ["__libc_recv", "recvfrom"]),
    ("kernel: epoll (suspend/resume, wait)", ["epoll_ctl", "epoll_wait"]),
    ("libmicrohttpd, other", ["MHD_run"]),
    ("loop, other", ["uv_run"]),
]
count = {}
total = 0
for sample in sys.stdin.read().split("\n\n"):
    lines = sample.strip().split("\n")
    if len(lines) < 2 or "ocps-engine" not in lines[0]:
        continue
    total += 1
    stack = " ".join(lines[1:])
    name = next((c for c, keys in cats if any(k in stack for k in keys)), "other")
    count[name] = count.get(name, 0) + 1
for name in [c for c, _ in cats] + ["other"]:
    if name in count:
        print("  %-42s %5.1f %%" % (name, 100.0 * count[name] / total))
print("  (%d samples)" % total)
'
