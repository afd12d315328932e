#!/bin/sh
# plot.sh - the benchmark outputs saved in docs/perf/ as SVG plots for
# docs/performance.md (gnuplot: apt-get install gnuplot-nox).
#
#   tests/bench/plot.sh [DIR]      # DIR: default docs/perf of this checkout
#
# Reads, when present (each file one saved run, as the bench printed it):
#   DIR/bench_command_rtt-*.txt     -> DIR/command_rtt.svg
#   DIR/bench_jobs-*.txt            -> DIR/jobs.svg
#   DIR/bench_engine_history-*.txt  -> DIR/engine_history.svg
#   DIR/soak_csc-*.txt              -> DIR/soak_rss.svg
#   DIR/bench_uws-*.txt             -> DIR/uws.svg
#   DIR/bench_kafka_rtt-*.txt       -> DIR/kafka_rtt.svg
# The numbers are taken from the lines the benches print (round lines,
# the history table); nothing is computed but what is plotted.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=$(cd "${1:-$here/../../docs/perf}" && pwd)
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
term='set terminal svg size 860,460 dynamic enhanced font "sans,11" background rgb "white"'
# clustered bars, the key below, y from 0 (the bar charts' common settings)
histograms='set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key outside bottom center horizontal
set yrange [0:*]'
term_tall='set terminal svg size 900,540 dynamic enhanced font "sans,11" background rgb "white"'

have() { ls "$dir"/"$1"-*.txt >/dev/null 2>&1; }

# "run N" from a file name ...-runN.txt (else the file's order)
runs() { ls "$dir"/"$1"-*.txt | sort; }

# --- bench_command_rtt: per round, command median and p90, ddsperf listener and waitset (us)
if have bench_command_rtt; then
    n=0
    for f in $(runs bench_command_rtt); do
        n=$((n + 1))
        # "  round 1: command 123.4 (p90 150.2), ddsperf listener 100.1, waitset 130.0[, ...]"
        sed -n 's/^  round \([0-9]*\): command \([0-9.]*\) (p90 \([0-9.]*\)), ddsperf listener \([0-9.]*\), waitset \([0-9.]*\).*$/\1 \2 \3 \4 \5/p' "$f" |
            awk -v run="$n" '{ printf "\"%d.%d\" %s %s %s %s\n", run, $1, $2, $3, $4, $5 }'
    done >"$tmp/rtt.dat"
    gnuplot <<GP
$term
set output "$dir/command_rtt.svg"
set title "bench\\\_command\\\_rtt: SAL command round trip over DDS vs ddsperf (full round trips, medians)"
set ylabel "microseconds"
set xlabel "run.round"
$histograms
set grid ytics
plot "$tmp/rtt.dat" using 2:xtic(1) title "command median", \
     "" using 3 title "command p90", \
     "" using 4 title "ddsperf listener", \
     "" using 5 title "ddsperf waitset"
GP
    echo "plot.sh: $dir/command_rtt.svg ($n runs)"
fi

# --- bench_jobs: per round, OCPS jobs/s and the bare loop's, and their ratio
if have bench_jobs; then
    n=0
    for f in $(runs bench_jobs); do
        n=$((n + 1))
        # "  round 1: OCPS 300.1 jobs/s, bare 400.2/s, ratio OCPS/bare 0.75"
        sed -n 's|^  round \([0-9]*\): OCPS \([0-9.]*\) jobs/s, bare \([0-9.]*\)/s, ratio OCPS/bare \([0-9.]*\)$|\1 \2 \3 \4|p' "$f" |
            awk -v run="$n" '{ printf "\"%d.%d\" %s %s %s\n", run, $1, $2, $3, $4 }'
    done >"$tmp/jobs.dat"
    gnuplot <<GP
$term
set output "$dir/jobs.svg"
set title "bench\\\_jobs: trivial jobs through ocps-csc vs a bare posix\\\_spawn+waitpid loop"
set ylabel "jobs per second"
set y2label "ratio OCPS / bare"
set xlabel "run.round"
$histograms
set y2range [0:*]
set y2tics 0.2
set ytics nomirror
set grid ytics
plot "$tmp/jobs.dat" using 2:xtic(1) title "OCPS (execute to final ack, 8 at a time)", \
     "" using 3 title "bare loop", \
     "" using 0:4 axes x1y2 with points pt 7 ps 1.5 lc rgb "black" title "ratio (right axis)", \
     0.5 axes x1y2 with lines dt 2 lc rgb "gray40" title "target ratio 0.5"
GP
    echo "plot.sh: $dir/jobs.svg ($n runs)"
fi

# --- bench_engine_history: per-call cost and added RSS against the history size
if have bench_engine_history; then
    n=0
    : >"$tmp/hist.plot"
    for f in $(runs bench_engine_history); do
        n=$((n + 1))
        # the (b) table: history, fill s, open ms, submit us, abort us, get us, get live us, +RSS MB, SQLite MB
        awk '/^\(b\)/ { t = 1; next } t && $1 ~ /^[0-9]+$/ && NF == 9 { print } /ratio/ { t = 0 }' "$f" \
            >"$tmp/hist$n.dat"
    done
    gnuplot <<GP
$term_tall
set output "$dir/engine_history.svg"
set multiplot layout 1,2 title "bench\\\_engine\\\_history: engine cost against the history in the store (medians)"
set logscale x
set logscale y
set xlabel "ended jobs in the store"
set ylabel "microseconds (log)"
set grid
set key outside bottom center horizontal maxrows 3 font ",9"
set format x "10^{%L}"
plot for [i=1:$n] sprintf("$tmp/hist%d.dat", i) using 1:4 with linespoints lc 1 pt 7 title (i == 1 ? "submit" : ""), \
     for [i=1:$n] sprintf("$tmp/hist%d.dat", i) using 1:5 with linespoints lc 2 pt 5 title (i == 1 ? "abort (history job)" : ""), \
     for [i=1:$n] sprintf("$tmp/hist%d.dat", i) using 1:6 with linespoints lc 3 pt 9 title (i == 1 ? "get (history job)" : ""), \
     for [i=1:$n] sprintf("$tmp/hist%d.dat", i) using 1:7 with linespoints lc 4 pt 11 title (i == 1 ? "get (live job)" : ""), \
     for [i=1:$n] sprintf("$tmp/hist%d.dat", i) using 1:(\$3 * 1000) with linespoints lc 5 pt 13 title (i == 1 ? "engine\\\_open" : "")
unset logscale y
set ylabel "MB"
set yrange [0:*]
plot for [i=1:$n] sprintf("$tmp/hist%d.dat", i) using 1:8 with linespoints lc 1 pt 7 title (i == 1 ? "RSS the engine added" : ""), \
     for [i=1:$n] sprintf("$tmp/hist%d.dat", i) using 1:9 with linespoints lc 2 pt 5 title (i == 1 ? "of which SQLite" : "")
unset multiplot
GP
    echo "plot.sh: $dir/engine_history.svg ($n runs)"
fi

# --- soak_csc: the CSC's RSS sampled every RSS_PERIOD s (the first at the start)
if have soak_csc; then
    n=0
    for f in $(runs soak_csc); do
        n=$((n + 1))
        # "  CSC RSS every 60 s (MB): 10.1 10.2 ..."
        sed -n 's/^  CSC RSS every \([0-9]*\) s (MB):\(.*\)$/\1\2/p' "$f" |
            awk '{ for (i = 2; i <= NF; i++) print (i - 2) * $1 / 60.0, $i }' >"$tmp/soak$n.dat"
        # "  of which anonymous (heap, stacks; RssAnon) every 60 s (MB): ..." (newer runs)
        sed -n 's/^  of which anonymous (heap, stacks; RssAnon) every \([0-9]*\) s (MB):\(.*\)$/\1\2/p' "$f" |
            awk '{ for (i = 2; i <= NF; i++) print (i - 2) * $1 / 60.0, $i }' >"$tmp/anon$n.dat"
        # the run's title: transport, length, rates (its "soak over" line)
        sed -n 's/^soak over \(.*\)$/\1/p' "$f" | head -1 >"$tmp/soak$n.title"
    done
    gnuplot <<GP
$term
set output "$dir/soak_rss.svg"
set title "soak\\\_csc: the CSC's resident memory under a steady load"
set xlabel "minutes since the start"
set ylabel "RSS (MB)"
set yrange [0:*]
set grid
set key outside bottom center horizontal
plot for [i=1:$n] sprintf("$tmp/soak%d.dat", i) using 1:2 with linespoints pt 7 \\
     title sprintf("run %d: %s", i, system(sprintf("cat $tmp/soak%d.title", i))), \\
     for [i=1:$n] sprintf("$tmp/anon%d.dat", i) using 1:2 with lines dt 2 \\
     title sprintf("run %d: anonymous part (heap, stacks)", i)
GP
    echo "plot.sh: $dir/soak_rss.svg ($n runs)"
fi

# --- bench_uws: requests per second of each case, every run of every file
if have bench_uws; then
    n=0
    for f in $(runs bench_uws); do
        n=$((n + 1))
        # "run 2:" then "  static GET    68985 req/s  p50 ..." (the summary lines have no "p50 " + digits)
        awk -v file="$n" '
            /^run [0-9]+:$/ { run = $2; sub(":", "", run); next }
            run != "" && / req\/s  p50 / {
                line = $0; sub(/^  /, "", line)
                split(line, w, / +[0-9]+ req\/s/); name = w[1]
                for (i = 1; i <= NF; i++) if ($(i + 1) == "req/s") v = $i
                if (name == "static GET") sg = v
                else if (name ~ /ended/) ge = v
                else if (name ~ /running/) gr = v
                else if (name == "static PUT") sp = v
                else if (name ~ /PUT/) { printf "\"%d.%s\" %s %s %s %s %s\n", file, run, sg, ge, gr, sp, v; run = "" }
            }' "$f"
    done >"$tmp/uws.dat"
    gnuplot <<GP
$term
set output "$dir/uws.svg"
set title "bench\\\_uws: ocps-engine vs a static libmicrohttpd responder (wrk -c32, loopback)"
set ylabel "requests per second"
set xlabel "file.run"
$histograms
set grid ytics
plot "$tmp/uws.dat" using 2:xtic(1) title "static GET", \\
     "" using 3 title "GET /job/(id), ended job", \\
     "" using 4 title "GET /job/(id), running job", \\
     "" using 5 title "static PUT", \\
     "" using 6 title "PUT /job"
GP
    echo "plot.sh: $dir/uws.svg ($n files)"
fi

# --- bench_kafka_rtt: per run, the command's and the references' round trips (medians, ms)
if have bench_kafka_rtt; then
    n=0
    for f in $(runs bench_kafka_rtt); do
        n=$((n + 1))
        # "  mean 15.42 ms, median 11.79 ms" (the command), "raw librdkafka ... median 10.78 ms",
        # "raw ping-pong ... median 22.10 ms"
        awk -v run="$n" '
            /^  mean .* median / { cmd = $5 }
            /^raw librdkafka produce->consume/ { raw = $(NF - 1) }
            /^raw ping-pong/ { pp = $(NF - 1) }
            END { if (cmd != "") printf "\"run %d\" %s %s %s\n", run, cmd, raw, pp }' "$f"
    done >"$tmp/kafka.dat"
    gnuplot <<GP
$term
set output "$dir/kafka_rtt.svg"
set title "bench\\\_kafka\\\_rtt: SAL command round trip over Kafka (mock broker) vs raw librdkafka (medians)"
set ylabel "milliseconds"
$histograms
set grid ytics
plot "$tmp/kafka.dat" using 2:xtic(1) title "command + ack", \\
     "" using 3 title "raw produce->consume trip", \\
     "" using 4 title "raw ping-pong (two trips)"
GP
    echo "plot.sh: $dir/kafka_rtt.svg ($n runs)"
fi
