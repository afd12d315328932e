#!/bin/sh
# container_image.sh - build the container image (deploy/container/
# Containerfile) with podman, then run what it holds as a container runtime
# would: its entrypoint, user, working directory and environment, on its own
# root file system. Checks:
#   * the image builds from this tree (both stages: the package is built in
#     the first, installed on a clean Debian 12 in the second);
#   * every program of the package finds its libraries in the image;
#   * the entrypoint refuses to start without RUN_ARG (exit 64);
#   * the CSC started by the entrypoint (RUN_ARG=1, as the image's user) is
#     commanded from this host over DDS by the build's ocps-cmd: start,
#     enable, an execute of cpBias.yaml that the image's own ocps-pipetask
#     runs on a repository made by the image's ocps-fakeraws and
#     ocps-butler, a completed job_result, then exitControl, after which
#     the container's process ends with status 0;
#   * on the image's own transport (Kafka), with the build's test broker
#     and schema registry when it has them: start, standby, exitControl,
#     status 0, and its log lines JSON as the image sets.
#
#   tests/deploy/container_image.sh BUILD_DIR
#
# Needs root, podman (with buildah's chroot isolation, so no OCI runtime is
# needed to build), git and, when no debian:12-slim image is at hand and
# none can be pulled, mmdebstrap: the base image is then made from Debian's
# archive (a minbase bookworm; what the Containerfile installs is the
# same). The container's processes run under chroot in a private mount
# namespace (their /proc and /dev the host's) and share the host's network,
# as a pod's containers share one: the OCI runtime is not used, since it
# may not be allowed to set a container's limits where the tests run.
# deploy/test.sh runs it. Leaves the base image behind (later runs reuse
# it), nothing else.
set -eu
build=$(cd "${1:?usage: container_image.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
xml=${OCPS_TS_XML_DIR:-$top/../shared/ts_xml}
tag="localhost/ocps-c:check$$"
work=$(mktemp -d)
cid=
csc=
registry_pid=
root=
# every process running in the container's file system (the CSC, its jobs)
stop_container() {
    [ -n "$root" ] || return 0
    for p in /proc/[0-9]*; do
        if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then
            kill -9 "${p#/proc/}" 2>/dev/null || true
        fi
    done
}
# (set -e holds here too: every step may fail without ending it)
cleanup() {
    stop_container
    if [ -n "$csc" ]; then wait "$csc" 2>/dev/null || true; fi
    if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; fi # the broker ends with our stdin
    if [ -n "$cid" ]; then
        podman umount "$cid" >/dev/null 2>&1 || true
        podman rm -f "$cid" >/dev/null 2>&1 || true
    fi
    podman rmi -f "$tag" >/dev/null 2>&1 || true
    podman image prune -f >/dev/null 2>&1 || true # the build stage's layers
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    exit 1
}

echo "-- the base image, debian:12-slim"
if ! podman image exists debian:12-slim; then
    if ! timeout 30 podman pull -q docker.io/library/debian:12-slim >/dev/null 2>&1; then
        echo "   (no registry reachable: made from Debian's archive with mmdebstrap)"
        mmdebstrap --quiet --variant=minbase bookworm "$work/rootfs.tar"
        podman import -q "$work/rootfs.tar" localhost/debian:12-slim >/dev/null
        rm -f "$work/rootfs.tar"
    fi
fi

echo "-- podman build (the build context: this tree's files and the ts_xml releases, side by side)"
mkdir -p "$work/ctx/ocps-c" "$work/ctx/shared"
(cd "$top" && git ls-files -z | xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$work/ctx/ocps-c"
cp -r "$xml" "$work/ctx/shared/ts_xml"
version=$(git -C "$top" describe --tags --always 2>/dev/null || echo check)
t0=$(date +%s)
if ! podman build -q --pull=never --isolation chroot -f ocps-c/deploy/container/Containerfile -t "$tag" \
    --build-arg OCPS_VERSION="$version" "$work/ctx" >"$work/build.log" 2>&1; then
    tail -n 60 "$work/build.log"
    fail "podman build"
fi
echo "   built in $(($(date +%s) - t0)) s"

# The image's configuration, as a runtime reads it.
fmt() { podman image inspect --format "$1" "$tag"; }
user=$(fmt '{{.Config.User}}')
workdir=$(fmt '{{.Config.WorkingDir}}')
entrypoint=$(fmt '{{range .Config.Entrypoint}}{{.}} {{end}}')
fmt '{{range .Config.Env}}{{println .}}{{end}}' | sed '/^$/d' >"$work/image.env"
case "$user" in
*[!0-9:]* | "" | 0 | 0:*) fail "the image runs as '$user', not as a numeric unprivileged user" ;;
esac
cid=$(podman create "$tag")
root=$(podman mount "$cid")

# run [VAR=VALUE...] -- COMMAND...: in the container's file system, as its
# user, in its working directory, with its environment and these variables
# (no value may hold a blank: $envs is split into one word per line).
run() {
    envs=$(cat "$work/image.env")
    while [ "$1" != "--" ]; do
        envs="$envs
$1"
        shift
    done
    shift
    # shellcheck disable=SC2016 # expanded by the inner shell
    unshare --mount --fork sh -c '
        root=$1 user=$2 dir=$3 envs=$4
        shift 4
        mount --rbind /dev "$root/dev" && mount -t proc proc "$root/proc" || exit 125
        set -f
        exec chroot --userspec="$user" --groups= "$root" /usr/bin/env -i $envs /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$dir" "$@"
    ' run "$root" "$user" "$workdir" "$envs" "$@"
}

echo "-- every program of the package finds its libraries"
for p in $(run -- sh -c 'dpkg -L ocps-c | grep -E "^/usr/(bin|lib/ocps-c|libexec)/" || true'); do
    [ -f "$root$p" ] && [ -x "$root$p" ] || continue
    if run -- ldd "$p" 2>&1 | grep -q "not found"; then
        run -- ldd "$p" | grep "not found"
        fail "$p lacks a library in the image"
    fi
    n=$((${n:-0} + 1))
done
[ "${n:-0}" -ge 5 ] || fail "only ${n:-0} programs of the package were found in the image"
echo "   $n programs"

echo "-- the entrypoint without RUN_ARG"
status=0
# shellcheck disable=SC2086 # the entrypoint's words
run -- $entrypoint >"$work/norun.log" 2>&1 || status=$?
[ "$status" -eq 64 ] && grep -q RUN_ARG "$work/norun.log" || {
    cat "$work/norun.log"
    fail "the entrypoint without RUN_ARG: exit $status (64 expected, naming RUN_ARG)"
}
echo "   exit 64: $(grep RUN_ARG "$work/norun.log" | head -n 1)"

echo "-- a repository made by the image's ocps-fakeraws and ocps-butler"
run -- sh -c 'ocps-fakeraws --instrument LATISS --type bias --count 3 --small --out /tmp/raws >/dev/null &&
    ocps-butler create /tmp/repo >/dev/null && ocps-butler ingest-raws /tmp/repo /tmp/raws/*.fits >/dev/null &&
    echo "LATISS: /tmp/repo" >/tmp/repositories.yaml' || fail "making a repository in the image"
cp "$top/deploy/cyclonedds-loopback.xml" "$root/tmp/cyclonedds.xml"

echo "-- the CSC by the entrypoint (RUN_ARG=1, DDS), commanded from this host"
prefix="img$$"
# shellcheck disable=SC2086 # the entrypoint's words
run RUN_ARG=1 OCPS_TRANSPORT=dds LSST_SITE=demo LSST_DDS_PARTITION_PREFIX="$prefix" \
    CYCLONEDDS_URI=file:///tmp/cyclonedds.xml DAF_BUTLER_REPOSITORY_INDEX=/tmp/repositories.yaml \
    TINI_SUBREAPER=1 -- $entrypoint >"$work/csc.log" 2>&1 &
csc=$!
cmd() {
    CYCLONEDDS_URI="file://$top/deploy/cyclonedds-loopback.xml" LSST_DDS_PARTITION_PREFIX="$prefix" \
        OCPS_TRANSPORT=dds "$build/csc/ocps-cmd" --discovery 30 OCPS:1 "$@"
}
for c in start enable; do
    cmd "$c" >"$work/cmd.log" 2>&1 || {
        cat "$work/cmd.log" "$work/csc.log"
        fail "ocps-cmd $c"
    }
    echo "   $c: $(tail -n 1 "$work/cmd.log")"
done
cmd execute --pipeline cpBias.yaml --data_query "exposure.observation_type='bias'" >"$work/exec.log" 2>&1 || {
    cat "$work/exec.log"
    tail -n 40 "$work/csc.log"
    fail "execute"
}
job=$(sed -n 's/.*"job_id": *"\([0-9a-f]\{32\}\)".*/\1/p' "$work/exec.log" | head -n 1)
[ -n "$job" ] || fail "execute named no job: $(cat "$work/exec.log")"
cmd show job_result --json --timeout 10 >"$work/result.json" 2>&1 || fail "show job_result: $(cat "$work/result.json")"
python3 - "$work/result.json" "$job" <<'EOF' || fail "job_result of $job"
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8") if l.startswith("{")]
result = json.loads(json.loads(lines[-1])["fields"]["result"])
ok = result.get("jobId") == sys.argv[2] and result.get("phase") == "completed" and result.get("outputs")
print(f"   job_result: job {result.get('jobId')} {result.get('phase')}, {len(result.get('outputs') or [])} outputs")
sys.exit(0 if ok else 1)
EOF
[ -n "$(find "$root/tmp/repo/u/ocps/$job" -name '*.fits' 2>/dev/null | head -n 1)" ] ||
    fail "no output of the job in the image's repository (u/ocps/$job)"
for c in disable standby exitControl; do
    cmd "$c" >"$work/cmd.log" 2>&1 || fail "ocps-cmd $c: $(cat "$work/cmd.log")"
done
status=0
wait "$csc" || status=$?
csc=
[ "$status" -eq 0 ] || {
    tail -n 40 "$work/csc.log"
    fail "the container's process ended with status $status after exitControl"
}
echo "   exitControl: the container's process ended with status 0"

# The image's own transport (OCPS_TRANSPORT=kafka in its environment), with
# the build's test broker and schema registry, when the build has them.
broker="$build/tests/kafka/ocps-mock-broker"
registry="$build/tests/kafka/ocps-schema-registry"
if [ -x "$broker" ] && [ -x "$registry" ]; then
    echo "-- the CSC by the entrypoint (RUN_ARG=1) on the image's transport, Kafka (the build's test broker)"
    sub="img$$"
    "$build/csc/sal-info" --transport kafka |
        awk -v s="$sub" '$3 ~ /^(ackcmd|command_|logevent_)/ {print "lsst." s ".OCPS." $3}' >"$work/topics"
    [ -s "$work/topics" ] || fail "sal-info --transport kafka listed no topic"
    mkfifo "$work/broker.in"
    "$broker" --topics-file "$work/topics" <"$work/broker.in" >"$work/broker.out" 2>&1 &
    exec 3>"$work/broker.in" # the broker runs until this closes
    "$registry" --port 0 >"$work/registry.out" 2>&1 &
    registry_pid=$!
    i=0
    while { ! grep -q '^BOOTSTRAP ' "$work/broker.out" || ! grep -q '^LISTENING ' "$work/registry.out"; } &&
        [ $i -lt 300 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    addr=$(sed -n 's/^BOOTSTRAP //p' "$work/broker.out")
    url=$(sed -n 's/^LISTENING //p' "$work/registry.out")
    [ -n "$addr" ] && [ -n "$url" ] || fail "the test broker or registry did not start"
    kafka_env="LSST_TOPIC_SUBNAME=$sub LSST_KAFKA_BROKER_ADDR=$addr LSST_SCHEMA_REGISTRY_URL=$url"
    # the mock broker's consumer setting (tests/kafka/mock_consumer.yaml),
    # for the container's CSC (a copy in its /tmp) and for this host's ocps-cmd
    cp "$top/tests/kafka/mock_consumer.yaml" "$root/tmp/ocps-mock-consumer.yaml"
    chmod 0644 "$root/tmp/ocps-mock-consumer.yaml"
    # shellcheck disable=SC2086 # the entrypoint's words; one word per variable
    run RUN_ARG=1 LSST_SITE=demo $kafka_env LSST_KAFKA_CONSUMER_CONFIGURATION=/tmp/ocps-mock-consumer.yaml \
        TINI_SUBREAPER=1 -- $entrypoint >"$work/csc-kafka.log" 2>&1 &
    csc=$!
    for c in start standby exitControl; do
        # shellcheck disable=SC2086 # one word per variable
        env OCPS_TRANSPORT=kafka $kafka_env LSST_KAFKA_CONSUMER_CONFIGURATION="$top/tests/kafka/mock_consumer.yaml" \
            "$build/csc/ocps-cmd" --discovery 30 OCPS:1 "$c" >"$work/cmd.log" 2>&1 || {
            cat "$work/cmd.log"
            tail -n 40 "$work/csc-kafka.log"
            fail "ocps-cmd $c over Kafka"
        }
        echo "   $c: $(grep CMD_ "$work/cmd.log" | tail -n 1)"
    done
    status=0
    wait "$csc" || status=$?
    csc=
    exec 3>&-
    kill "$registry_pid" 2>/dev/null || true
    registry_pid=
    [ "$status" -eq 0 ] || fail "the container's process ended with status $status after exitControl (Kafka)"
    grep -q '"level"' "$work/csc-kafka.log" || fail "the image's CSC did not log JSON (OCPS_LOG_FORMAT=json)"
    echo "   exitControl: ended with status 0; its log lines are JSON, as the image sets"
fi
echo "OK"
