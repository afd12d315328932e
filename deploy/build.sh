#!/bin/sh
# Configure and build ocps-c into a build directory.
#   deploy/build.sh [BUILD_DIR] [extra cmake -D options...]
# Installs the Debian dependencies first (deploy/install-deps.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=${1:-"$top/build"}
[ $# -gt 0 ] && shift
"$here/install-deps.sh"
cmake -S "$top" -B "$build" "$@"
cmake --build "$build" -j "$(nproc)"
