#!/bin/sh
# README command 1: install the dependencies, build, then do real work on
# the embedded default: make a butler-lite repository of synthetic LATISS
# raws (ocps-fakeraws --small: 5 biases, 2 science frames), start the OCPS
# CSC (index 1) on DDS, kept on this machine, with the local job engine,
# drive it with the commander through a state cycle, execute cpBias.yaml,
# then quickLook.yaml (ISR + quick-look) with prereq_jobs on the bias job,
# print both job_results and where the preview PNG is.
# OCPS_DEMO_DIR (default /tmp/ocps-demo) holds the repository and the jobs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
"$here/build.sh" "$top/build"
bin="$top/build/csc"
proc="$top/build/processing"
demo="${OCPS_DEMO_DIR:-/tmp/ocps-demo}"

export CYCLONEDDS_URI="file://$here/cyclonedds-loopback.xml"
export LSST_DDS_PARTITION_PREFIX="demo$$"
export LSST_SITE="${LSST_SITE:-demo}"
export DM_CONFIG_OCPS_DIR="${DM_CONFIG_OCPS_DIR:-$here/config}"

echo "== a repository of synthetic LATISS raws in $demo/repo"
rm -rf "$demo/repo" "$demo/raws"
mkdir -p "$demo"
"$proc/fits/ocps-fakeraws" --instrument LATISS --type bias --count 5 --small --out "$demo/raws" >/dev/null
"$proc/fits/ocps-fakeraws" --instrument LATISS --type science --count 2 --small --start-seq 10 \
    --out "$demo/raws" >/dev/null
"$proc/butler/ocps-butler" create "$demo/repo"
"$proc/butler/ocps-butler" ingest-raws "$demo/repo" "$demo"/raws/*.fits
# The site config says butler: LATISS; the label resolves as Butler does.
echo "LATISS: $demo/repo" >"$demo/repositories.yaml"
export DAF_BUTLER_REPOSITORY_INDEX="$demo/repositories.yaml"

echo "== ocps-csc 1 (DDS, partition prefix $LSST_DDS_PARTITION_PREFIX)"
"$bin/ocps-csc" 1 &
csc=$!
"$bin/ocps-cmd" OCPS:1 watch logevent_summaryState logevent_job_result logevent_logMessage --duration 60 &
watch=$!
trap 'kill $csc $watch 2>/dev/null || true' EXIT HUP INT PIPE TERM
sleep 4
for cmd in start enable; do
    echo "== ocps-cmd OCPS:1 $cmd"
    "$bin/ocps-cmd" OCPS:1 "$cmd"
    sleep 0.5
done

# The job id is in the final ack's result: {"job_id":"<32 hex>",...}.
job_id() {
    sed -n 's/.*"job_id": *"\([0-9a-f]\{32\}\)".*/\1/p' | head -n 1
}
echo "== ocps-cmd OCPS:1 execute --pipeline cpBias.yaml --config '-j 2' --data_query \"exposure.observation_type='bias'\""
out=$("$bin/ocps-cmd" OCPS:1 execute --pipeline cpBias.yaml --config "-j 2" \
    --data_query "exposure.observation_type='bias'") || true
echo "$out"
bias=$(echo "$out" | job_id)
echo "== ocps-cmd OCPS:1 execute --pipeline quickLook.yaml --prereq_jobs $bias --config '-i u/ocps/$bias -j 2' ..."
out=$("$bin/ocps-cmd" OCPS:1 execute --pipeline quickLook.yaml --prereq_jobs "$bias" \
    --config "-i u/ocps/$bias -j 2" --data_query "exposure.observation_type='science'") || true
echo "$out"
ql=$(echo "$out" | job_id)
echo "== ocps-cmd OCPS:1 show job_result (the last one)"
"$bin/ocps-cmd" OCPS:1 show job_result || true
echo "== ocps-butler query-datasets $demo/repo quickLookPreview --collections u/ocps/$ql"
"$proc/butler/ocps-butler" query-datasets "$demo/repo" quickLookPreview --collections "u/ocps/$ql" || true
for png in $(find "$demo/repo/u/ocps/$ql" -name '*.png' 2>/dev/null); do
    echo "== preview picture: $png"
done
echo "== the job's metrics.json is beside its log (job_result \"log\")"

for cmd in disable standby exitControl; do
    echo "== ocps-cmd OCPS:1 $cmd"
    "$bin/ocps-cmd" OCPS:1 "$cmd"
    sleep 0.5
done
status=0
wait $csc || status=$?
echo "== ocps-csc exited with status $status"
kill $watch 2>/dev/null || true
wait $watch 2>/dev/null || true
trap - EXIT HUP INT PIPE TERM
