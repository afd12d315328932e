#!/bin/sh
# cmake --install puts everything in its FHS place under the prefix, and
# the installed programs run from there: ocps-csc reports the build's
# version (git describe at build time) and sal-info lists the interfaces.
#   install_layout.sh BUILD_DIR RELEASE...   (the embedded ts_xml releases)
set -eu
build=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/opt/ocps"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
status=0
fail() { echo "FAIL: $*"; status=1; }
for f in bin/ocps-csc bin/ocps-cmd bin/sal-info bin/ocps-butler bin/ocps-fakeraws bin/ocps-engine \
         libexec/ocps-c/ocps-job-runner; do
    [ -x "$prefix/$f" ] || fail "$f not installed (executable)"
done
for f in share/ocps-c/config/OCPS/v4/_init.yaml share/ocps-c/config/OCPS/v4/_summit.yaml \
         share/ocps-c/cyclonedds-loopback.xml share/man/man1/ocps-csc.1 share/man/man1/ocps-cmd.1 \
         share/doc/ocps-c/README.md share/doc/ocps-c/deployment.md \
         lib/systemd/system/ocps-csc@.service lib/sysusers.d/ocps-c.conf etc/ocps-c/site.env; do
    [ -f "$prefix/$f" ] || fail "$f not installed"
done
for rel in "$@"; do
    [ -f "$prefix/share/ocps-c/interfaces/v$rel/dds/sal_revCoded_OCPS.idl" ] || fail "v$rel IDL not installed"
    [ -f "$prefix/share/ocps-c/interfaces/v$rel/avro/OCPS/logevent_summaryState.json" ] \
        || fail "v$rel Avro schema of logevent_summaryState not installed"
done
# nothing of the build tree, the generator's C or the tests
find "$prefix" -name '*.c' -o -name '*.h' -o -name 'test_*' -o -name '*.a' | grep . && fail "build files installed"
version=$(cat "$build/version/ocps_version.txt")
got=$(env -i "$prefix/bin/ocps-csc" --version)
[ "$got" = "$version" ] || fail "installed ocps-csc --version: '$got', build version '$version'"
case "$version" in [0-9]*) ;; *) fail "version '$version' is not a Debian version" ;; esac
env -i "$prefix/bin/sal-info" > "$tmp/sal-info" 2>&1 || fail "installed sal-info failed: $(cat "$tmp/sal-info")"
env -i "$prefix/bin/ocps-cmd" --help | grep -q "usage: ocps-cmd" || fail "installed ocps-cmd --help"
# the installed ocps-engine finds the installed runner and runs a job
mkdir -p "$tmp/engine"
env -i "$prefix/bin/ocps-engine" --listen 127.0.0.1:0 --state-dir "$tmp/engine/state" \
    --work-root "$tmp/engine/work" --port-file "$tmp/engine/port" > "$tmp/engine/log" 2>&1 &
engine=$!
i=0
while [ ! -s "$tmp/engine/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ -s "$tmp/engine/port" ]; then
    url="http://127.0.0.1:$(cat "$tmp/engine/port")/api/v1/job"
    id=$(curl -s -X PUT -H 'Content-Type: application/json' -d '{"argv": ["true"]}' "$url" \
        | sed -n 's/^ *"jobId": "\([0-9a-f]*\)".*/\1/p')
    phase=
    i=0
    while [ -n "$id" ] && [ $i -lt 100 ]; do
        phase=$(curl -s "$url/$id/phase" | tr -d '"')
        case "$phase" in completed | error | aborted | unknown) break ;; esac
        sleep 0.1
        i=$((i + 1))
    done
    [ "$phase" = completed ] || fail "installed ocps-engine: job '$id' ended '$phase': $(curl -s "$url/$id" | grep message)"
else
    fail "installed ocps-engine did not listen: $(cat "$tmp/engine/log")"
fi
kill "$engine" 2> /dev/null || true
wait "$engine" 2> /dev/null || true
[ "$status" -eq 0 ] && echo "OK: version $version"
exit "$status"
