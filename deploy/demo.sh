#!/bin/sh
# README command 1: install the dependencies, build, then run the main job
# on its embedded default: start the OCPS CSC (index 1) on DDS, kept on this
# machine, with the local job engine; drive it with the commander through a
# state cycle, execute a demo pipeline job and print its job_result and
# every command, ack and event.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
"$here/build.sh" "$top/build"
bin="$top/build/csc"

export CYCLONEDDS_URI="file://$here/cyclonedds-loopback.xml"
export LSST_DDS_PARTITION_PREFIX="demo$$"
export LSST_SITE="${LSST_SITE:-demo}"
export DM_CONFIG_OCPS_DIR="${DM_CONFIG_OCPS_DIR:-$here/config}"

echo "== ocps-csc 1 (DDS, partition prefix $LSST_DDS_PARTITION_PREFIX)"
"$bin/ocps-csc" 1 &
csc=$!
"$bin/ocps-cmd" OCPS:1 watch --duration 30 &
watch=$!
trap 'kill $csc $watch 2>/dev/null || true' EXIT INT TERM
sleep 4
for cmd in start enable; do
    echo "== ocps-cmd OCPS:1 $cmd"
    "$bin/ocps-cmd" OCPS:1 "$cmd"
    sleep 0.5
done
echo "== ocps-cmd OCPS:1 execute --pipeline cpBias.yaml --config '-j 2' --data_query \"instrument='LATISS'\""
"$bin/ocps-cmd" OCPS:1 execute --pipeline cpBias.yaml --config "-j 2" --data_query "instrument='LATISS'"
sleep 1
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
trap - EXIT INT TERM
