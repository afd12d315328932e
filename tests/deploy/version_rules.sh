#!/bin/sh
# The build's version (cmake/OcpsVersion.cmake) is a Debian version for
# whatever $OCPS_VERSION a build is given (a container build passes
# `git describe --tags --always`): dpkg refuses a version that does not
# start with a digit, and the image's install of its own package fails.
#   version_rules.sh SOURCE_DIR
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
check() { # OCPS_VERSION expected
    rm -f "$tmp/t"
    OCPS_VERSION=$1 cmake -DSOURCE_DIR="$src" -DBASE=0.1.0 -DOUT_H="$tmp/h" -DOUT_TXT="$tmp/t" \
        -P "$src/cmake/OcpsVersion.cmake"
    got=$(cat "$tmp/t")
    if [ "$got" != "$2" ]; then
        echo "FAIL: OCPS_VERSION='$1' gave '$got', expected '$2'"
        status=1
    fi
    if command -v dpkg > /dev/null && ! dpkg --validate-version "$got" 2> /dev/null; then
        echo "FAIL: OCPS_VERSION='$1' gave '$got', which dpkg refuses"
        status=1
    fi
}
check v0.1.0-3-g28571fa 0.1.0+3.g28571fa
check v1.0.0-12-gabcdef0-dirty 1.0.0+12.gabcdef0.dirty
check v0.2.0 0.2.0
check v0.2.0-dirty 0.2.0+dirty
check 28571fa 0.1.0+g28571fa
check a1b2c3d 0.1.0+ga1b2c3d
check a1b2c3d-dirty 0.1.0+ga1b2c3d.dirty
check 1.2.3 1.2.3
check "my build/1" 0.1.0+my.build.1
[ "$status" -eq 0 ] && echo "OK"
exit "$status"
