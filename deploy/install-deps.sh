#!/bin/sh
# Install every build, run and test dependency of ocps-c from Debian 12 packages.
# Idempotent: packages already present are left as they are. Needs root (or sudo).
set -eu

PACKAGES="
build-essential cmake pkg-config git python3 clang-format
cyclonedds-dev cyclonedds-tools
libfastrtps-dev fastddsgen
librdkafka-dev libavro-dev libjansson-dev libcurl4-openssl-dev libcfitsio-dev
libuv1-dev libyaml-dev libsqlite3-dev libmicrohttpd-dev libedit-dev libpcre2-dev
libcmocka-dev libfaketime valgrind json-schema-test-suite clang libclang-rt-14-dev kcat tmux wrk libssl-dev
libpng-dev python3-astropy python3-numpy fitsverify
slurmctld slurmd slurm-client munge slurm-wlm-basic-plugins
libhiredis-dev redis-server redis-tools
libfuse3-dev fuse3
dpkg-dev file man-db groff-base iproute2 passwd systemd python3-yaml
chromium python3-prometheus-client python3-jsonschema nodejs
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

# npm (deploy_k8s_schemas): Debian's package, unless the nodejs installed
# brings its own (NodeSource's provides npm and conflicts with Debian's)
if ! command -v npm >/dev/null 2>&1; then
    missing="$missing npm"
fi

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
